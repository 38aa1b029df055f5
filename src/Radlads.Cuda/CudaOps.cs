using Radlads.Checkpoints;
using Radlads.Ops;

namespace Radlads.Cuda;

/// <summary>
/// <see cref="IOps"/> on the GPU: each op checks its shapes as the CPU reference does, then queues one kernel
/// (rarely two) on the backend's stream. Launch arguments are unmanaged locals whose addresses go in a
/// <c>stackalloc</c>'d array: a launch allocates nothing. Split by op family like the CPU reference and
/// kernels/*.cu; this file holds the row-wise and elementwise ops.
/// </summary>
internal sealed unsafe partial class CudaOps(CudaBackend backend) : IOps
{
    private const uint Threads = 256;

    private Kernels K => backend.Kernels;

    private static CudaTensor C(Tensor t) => CudaBackend.Cuda(t);

    private static ulong P(Tensor t) => C(t).Pointer;

    /// <summary>Blocks for a grid-stride loop over <paramref name="n"/> elements.</summary>
    private uint Blocks(long n) => (uint)Math.Min((n + Threads - 1) / Threads, backend.Device.MultiprocessorCount * 32L);

    /// <summary>A small parameter vector of any dtype: its pointer and dtype code, checked to hold <paramref name="length"/> elements.</summary>
    private static (ulong Pointer, int DType) Param(Tensor t, int length)
    {
        if (t.ElementCount != length)
        {
            throw new ArgumentException($"expected {length} elements, got {t.ShapeText}");
        }

        var c = C(t);
        return (c.Pointer, (int)c.DType);
    }

    private static void SameCount(Tensor a, Tensor b, string op)
    {
        if (a.ElementCount != b.ElementCount)
        {
            throw new ArgumentException($"{op}: shapes {a.ShapeText} and {b.ShapeText} differ");
        }
    }

    private static void Fits(Tensor y, long count, string op)
    {
        if (y.ElementCount < count)
        {
            throw new ArgumentException($"{op}: output {y.ShapeText} holds fewer than {count} elements");
        }
    }

    private static void Float32(Tensor t, string op)
    {
        if (t.DType != DType.F32)
        {
            throw new InvalidOperationException($"{op}: tensor {t.ShapeText} is {t.DType}, not F32");
        }
    }

    private void Elementwise(nint function, string name, long n, void** arguments)
    {
        if (n > 0)
        {
            backend.Launch(function, name, Blocks(n), 1, Threads, 0, arguments);
        }
    }

    public void Embedding(Tensor table, ReadOnlySpan<int> ids, Tensor y)
    {
        backend.Enter();
        var t = C(table);
        int vocab = t.RowCount;
        int c = t.RowLength;
        for (int i = 0; i < ids.Length; i++)
        {
            int id = ids[i];
            if ((uint)id >= (uint)vocab)
            {
                throw new RadladsException($"token id {id} at position {i} is outside the model's vocabulary [0, {vocab})");
            }
        }

        Fits(y, (long)ids.Length * c, nameof(Embedding));
        Float32(y, nameof(Embedding));
        if (ids.Length == 0 || c == 0)
        {
            return;
        }

        ulong pt = t.Pointer, pi = backend.UploadIds(ids), py = P(y);
        int dtype = (int)t.DType, tokens = ids.Length;
        void** a = stackalloc void*[] { &pt, &dtype, &pi, &py, &tokens, &c };
        Elementwise(K.Embedding, "embedding_f32", (long)tokens * c, a);
    }

    public void RmsNorm(Tensor x, Tensor weight, float eps, Tensor y)
    {
        backend.Enter();
        int c = x.RowLength;
        int rows = x.RowCount;
        NormShapes(x, weight, y, nameof(RmsNorm));
        if (rows == 0 || c == 0)
        {
            return;
        }

        var w = C(weight);
        ulong px = P(x), pw = w.Pointer, py = P(y);
        int dtype = (int)w.DType;
        var (threads, vec) = NormGeometry(c, px, py, py);
        if (NormBf16CopyFor(y, rows, c) is { } copy)
        {
            ulong pyb = copy.Pointer;
            void** withCopy = stackalloc void*[] { &px, &pw, &dtype, &eps, &py, &pyb, &c, &vec };
            backend.Launch(K.RmsNormBf16, "rms_norm_bf16_f32", (uint)rows, 1, threads, 0, withCopy);
            backend.KeepBf16Copy(C(y), copy);
            return;
        }

        void** a = stackalloc void*[] { &px, &pw, &dtype, &eps, &py, &c, &vec };
        backend.Launch(K.RmsNorm, "rms_norm_f32", (uint)rows, 1, threads, 0, a);
    }

    public void AddRmsNorm(Tensor h, Tensor branch, Tensor weight, float eps, Tensor y)
    {
        backend.Enter();
        int c = h.RowLength;
        int rows = h.RowCount;
        SameCount(h, branch, nameof(AddRmsNorm));
        NormShapes(h, weight, y, nameof(AddRmsNorm));
        if (P(y) == P(h))
        {
            throw new ArgumentException("AddRmsNorm: y must not alias h (h keeps the residual stream)");
        }

        if (rows == 0 || c == 0)
        {
            return;
        }

        var w = C(weight);
        ulong ph = P(h), pb = P(branch), pw = w.Pointer, py = P(y);
        int dtype = (int)w.DType;
        var (threads, vec) = NormGeometry(c, ph, pb, py);
        if (NormBf16CopyFor(y, rows, c) is { } copy)
        {
            ulong pyb = copy.Pointer;
            void** withCopy = stackalloc void*[] { &ph, &pb, &pw, &dtype, &eps, &py, &pyb, &c, &vec };
            backend.Launch(K.AddRmsNormBf16, "add_rms_norm_bf16_f32", (uint)rows, 1, threads, 0, withCopy);
            backend.KeepBf16Copy(C(y), copy);
            return;
        }

        void** a = stackalloc void*[] { &ph, &pb, &pw, &dtype, &eps, &py, &c, &vec };
        backend.Launch(K.AddRmsNorm, "add_rms_norm_f32", (uint)rows, 1, threads, 0, a);
    }

    /// <summary>
    /// Prefill (see <see cref="Bf16CopyFor"/>): the block for the bf16 copy of the norm's output y that
    /// rms_norm_bf16_f32 / add_rms_norm_bf16_f32 write beside y, for the mixer's q/k/v (<see cref="MatMulShared"/>) or
    /// the MLP's gate/up (<see cref="GateUpSwiGlu"/>) that read y next; on an H200 at 7B, T = 2048, their own rounding
    /// of y (f32_to_bf16_pairs) took 12.8 µs, twice a layer. Only when y is exactly the rows the kernel writes
    /// ([rows, c]: the copy must be all of y). Null at decode (T below GemmMinRows): the plain kernel, as before.
    /// The next GEMM's weights are not known here: with f16/f32 weights the copy is written and dropped unused
    /// (2 bytes an element: ~15 MB at 7B, T = 2048, a few µs by bandwidth, beside the much slower built-in GEMM).
    /// </summary>
    private CudaTensor? NormBf16CopyFor(Tensor y, int rows, int c) =>
        y.Shape.Length == 2 && y.RowCount == rows && y.RowLength == c ? Bf16CopyFor(y) : null;

    private static void NormShapes(Tensor x, Tensor weight, Tensor y, string op)
    {
        if (weight.ElementCount < x.RowLength)
        {
            throw new ArgumentException($"{op}: weight {weight.ShapeText} is shorter than rows of {x.RowLength}");
        }

        Fits(y, x.ElementCount, op);
    }

    /// <summary>
    /// Block size and path of rms_norm_f32 / add_rms_norm_f32: the vector path (rows of float4s held in registers,
    /// NORM_VEC = 4 of them a thread) needs C % 4 == 0 and 16-byte aligned rows; its block is just large enough.
    /// </summary>
    internal static (uint Threads, int Vector) NormGeometry(int c, ulong p0, ulong p1, ulong p2)
    {
        const int normVec = 4, maxThreads = 1024;
        bool vector = c % 4 == 0 && p0 % 16 == 0 && p1 % 16 == 0 && p2 % 16 == 0 && c / 4 <= normVec * maxThreads;
        if (!vector)
        {
            return (Threads, 0);
        }

        int needed = (c / 4 + normVec - 1) / normVec;
        return ((uint)Math.Clamp((needed + 31) / 32 * 32, 32, maxThreads), 1);
    }

    public void Add(Tensor a, Tensor b, Tensor y)
    {
        backend.Enter();
        SameCount(a, b, nameof(Add));
        long n = a.ElementCount;
        Fits(y, n, nameof(Add));
        ulong pa = P(a), pb = P(b), py = P(y);
        void** args = stackalloc void*[] { &pa, &pb, &py, &n };
        Elementwise(K.Add, "add_f32", n, args);
    }

    public void Multiply(Tensor a, Tensor b, Tensor y)
    {
        backend.Enter();
        SameCount(a, b, nameof(Multiply));
        long n = a.ElementCount;
        Fits(y, n, nameof(Multiply));
        ulong pa = P(a), pb = P(b), py = P(y);
        void** args = stackalloc void*[] { &pa, &pb, &py, &n };
        Elementwise(K.Multiply, "multiply_f32", n, args);
    }

    public void Scale(Tensor x, float s, Tensor y)
    {
        backend.Enter();
        long n = x.ElementCount;
        Fits(y, n, nameof(Scale));
        ulong px = P(x), py = P(y);
        void** args = stackalloc void*[] { &px, &s, &py, &n };
        Elementwise(K.Scale, "scale_f32", n, args);
    }

    public void Tanh(Tensor x, Tensor y) => Unary(K.Tanh, "tanh_f32", x, y);

    public void Sigmoid(Tensor x, Tensor y) => Unary(K.Sigmoid, "sigmoid_f32", x, y);

    private void Unary(nint function, string name, Tensor x, Tensor y)
    {
        backend.Enter();
        long n = x.ElementCount;
        Fits(y, n, name);
        ulong px = P(x), py = P(y);
        void** args = stackalloc void*[] { &px, &py, &n };
        Elementwise(function, name, n, args);
    }

    public void AddSigmoid(Tensor x, Tensor bias, Tensor y)
    {
        backend.Enter();
        int c = x.RowLength;
        var (pb, dtype) = Param(bias, c);
        long n = x.ElementCount;
        Fits(y, n, nameof(AddSigmoid));
        ulong px = P(x), py = P(y);
        void** args = stackalloc void*[] { &px, &pb, &dtype, &py, &n, &c };
        Elementwise(K.AddSigmoid, "add_sigmoid_f32", n, args);
    }

    public void SwiGlu(Tensor gate, Tensor up, Tensor y)
    {
        backend.Enter();
        SameCount(gate, up, nameof(SwiGlu));
        long n = gate.ElementCount;
        Fits(y, n, nameof(SwiGlu));
        ulong pg = P(gate), pu = P(up), py = P(y);
        void** args = stackalloc void*[] { &pg, &pu, &py, &n };
        Elementwise(K.SwiGlu, "swiglu_f32", n, args);
    }

    public void GroupNorm(Tensor x, Tensor weight, Tensor bias, int groups, float eps, Tensor y)
    {
        backend.Enter();
        int width = x.RowLength;
        if (groups <= 0 || width % groups != 0)
        {
            throw new ArgumentException($"GroupNorm: row of {width} does not split into {groups} groups");
        }

        int d = width / groups;
        var (pw, wType) = Param(weight, width);
        var (pb, bType) = Param(bias, width);
        Fits(y, x.ElementCount, nameof(GroupNorm));
        int rows = x.RowCount;
        long warps = (long)rows * groups;
        if (warps == 0 || d == 0)
        {
            return;
        }

        ulong px = P(x), py = P(y);
        void** args = stackalloc void*[] { &px, &pw, &wType, &pb, &bType, &rows, &groups, &d, &eps, &py };
        const uint block = 128;
        backend.Launch(K.GroupNorm, "group_norm_f32", (uint)((warps * 32 + block - 1) / block), 1, block, 0, args);
    }
}
