using Radlads.Ops;

namespace Radlads.Cuda;

internal sealed unsafe partial class CudaOps
{
    // wkv6_rows_f32 keeps up to 8 elements of a state column per lane.
    private const int Wkv6RowsMaxHeadDim = 256;

    /// <summary>
    /// Launch shape of the staged recurrence kernel wkv6_rows_f32 (r, k, w: 3 vectors a token; the rule takes any count,
    /// e.g. 5 for r, w, k, a, b), 256 threads: 8 rows of one head a block, so H·⌈N/8⌉ blocks; a chunk of tokens whose
    /// (vectors·N + 8)·chunk staged floats (the head's vectors and the block's 8 values) are at most 6,144 per buffer, so
    /// the two buffers fit the 48 KiB every launch may use without opting in (N = 128: 15 tokens for 3 vectors, 9 for 5, 41 KiB).
    /// </summary>
    internal static (uint Blocks, int Chunk, uint SharedBytes) RowsGeometry(int heads, int n, int vectorsPerToken)
    {
        int perToken = (vectorsPerToken * n) + 8;
        int chunk = Math.Clamp(256 * 24 / perToken, 1, 32);
        return ((uint)(heads * ((n + 7) / 8)), chunk, (uint)(2 * perToken * chunk * sizeof(float)));
    }

    public void TokenShift(Tensor x, Tensor shiftState, Tensor delta)
    {
        backend.Enter();
        int c = x.RowLength;
        if (shiftState.ElementCount != c || delta.ElementCount != x.ElementCount)
        {
            throw new ArgumentException($"TokenShift: x {x.ShapeText}, state {shiftState.ShapeText}, delta {delta.ShapeText}");
        }

        int tokens = x.RowCount;
        if (tokens == 0 || c == 0)
        {
            return;
        }

        ulong px = P(x), ps = P(shiftState), pd = P(delta);
        void** a = stackalloc void*[] { &px, &ps, &pd, &tokens, &c };
        Elementwise(K.TokenShift, "token_shift_f32", (long)tokens * c, a);
        // Queued after the kernel, so every delta has read the old state first.
        backend.Device.Driver.CopyDeviceToDeviceAsync(ps, px + ((ulong)(tokens - 1) * (ulong)c * sizeof(float)), (long)c * sizeof(float), backend.Stream);
    }

    public void MixShift(Tensor x, Tensor delta, Tensor mix, Tensor y)
    {
        backend.Enter();
        int c = x.RowLength;
        var (pm, mType) = Param(mix, c);
        long n = x.ElementCount;
        Fits(delta, n, nameof(MixShift));
        Fits(y, n, nameof(MixShift));
        ulong px = P(x), pd = P(delta), py = P(y);
        void** a = stackalloc void*[] { &px, &pd, &pm, &mType, &py, &n, &c };
        Elementwise(K.MixShift, "mix_shift_f32", n, a);
    }

    public void Rwkv6Ddlerp(Tensor x, Tensor delta, Tensor lora, Tensor w2, Tensor mixes, Tensor outputs)
    {
        backend.Enter();
        int c = x.RowLength;
        int tokens = x.RowCount;
        if (w2.Shape.Length != 3 || w2.Shape[0] != 5 || w2.Shape[2] != c)
        {
            throw new ArgumentException($"Rwkv6Ddlerp: w2 {w2.ShapeText} is not [5, R, {c}]");
        }

        int rank = w2.Shape[1];
        if (lora.RowLength != 5 * rank || lora.RowCount != tokens || outputs.RowCount != 5 * tokens || mixes.ElementCount != 5 * c)
        {
            throw new ArgumentException($"Rwkv6Ddlerp: lora {lora.ShapeText}, mixes {mixes.ShapeText}, outputs {outputs.ShapeText}");
        }

        var (pm, mType) = Param(mixes, 5 * c);
        var w = C(w2);
        ulong px = P(x), pd = P(delta), pl = P(lora), pw = w.Pointer, po = P(outputs);
        int wType = (int)w.DType;
        void** a = stackalloc void*[] { &px, &pd, &pl, &pw, &wType, &pm, &mType, &tokens, &c, &rank, &po };
        Elementwise(K.Rwkv6Ddlerp, "rwkv6_ddlerp_f32", 5L * tokens * c, a);
    }

    public void Rwkv6Decay(Tensor d, Tensor bias, Tensor w)
    {
        backend.Enter();
        int width = d.RowLength;
        var (pb, bType) = Param(bias, width);
        long n = d.ElementCount;
        Fits(w, n, nameof(Rwkv6Decay));
        ulong pd = P(d), pw = P(w);
        void** a = stackalloc void*[] { &pd, &pb, &bType, &pw, &n, &width };
        Elementwise(K.Rwkv6Decay, "rwkv6_decay_f32", n, a);
    }

    public void Rwkv6BalanceKeys(Tensor k, Tensor w, Tensor y)
    {
        backend.Enter();
        SameCount(k, w, nameof(Rwkv6BalanceKeys));
        long n = k.ElementCount;
        Fits(y, n, nameof(Rwkv6BalanceKeys));
        ulong pk = P(k), pw = P(w), py = P(y);
        void** a = stackalloc void*[] { &pk, &pw, &py, &n };
        Elementwise(K.Rwkv6BalanceKeys, "rwkv6_balance_keys_f32", n, a);
    }

    public void Wkv6(Tensor r, Tensor k, Tensor v, Tensor w, Tensor state, float scale, Tensor y)
    {
        backend.Enter();
        int width = r.RowLength;
        int tokens = r.RowCount;
        if (state.Shape.Length != 3 || state.Shape[1] != state.Shape[2] || state.Shape[0] * state.Shape[1] != width)
        {
            throw new ArgumentException($"Wkv6: state {state.ShapeText} does not match rows of {width}");
        }

        int heads = state.Shape[0];
        int n = state.Shape[1];
        RecurrenceInputs("Wkv6", tokens * (long)width, r, k, v, w, y);
        uint shared = RecurrenceShared("Wkv6", n, ((long)n * n) + (3L * n));
        if (tokens == 0 || heads == 0)
        {
            return;
        }

        ulong pr = P(r), pk = P(k), pv = P(v), pw = P(w), ps = P(state), py = P(y);
        if (tokens > 1 && n <= Wkv6RowsMaxHeadDim)
        {
            // Prefill: a warp per value column, H·N warps instead of H blocks, the per-token vectors staged in shared
            // memory a chunk at a time. T = 1 (decode) stays on the block per head until the rows kernel is measured at
            // least as fast there.
            var (blocks, chunk, staged) = RowsGeometry(heads, n, 3);
            void** rows = stackalloc void*[] { &pr, &pk, &pv, &pw, &ps, &scale, &tokens, &heads, &n, &chunk, &py };
            backend.Launch(K.Wkv6Rows, "wkv6_rows_f32", blocks, 1, Threads, staged, rows);
            return;
        }

        void** a = stackalloc void*[] { &pr, &pk, &pv, &pw, &ps, &scale, &tokens, &heads, &n, &py };

        backend.Launch(K.Wkv6, "wkv6_f32", (uint)heads, 1, (uint)n, shared, a);
    }

    /// <summary>Every recurrence input and the output hold T·A elements.</summary>
    private static void RecurrenceInputs(string op, long count, params ReadOnlySpan<Tensor> tensors)
    {
        foreach (var t in tensors)
        {
            if (t.ElementCount != count)
            {
                throw new ArgumentException($"{op}: {t.ShapeText} does not hold {count} elements");
            }
        }
    }

    /// <summary>Dynamic shared memory for one head's state, checked against the device (one thread per row: N ≤ 1024).</summary>
    private uint RecurrenceShared(string op, int n, long floats)
    {
        long bytes = floats * sizeof(float);
        if (n > 1024 || bytes > K.MaxDynamicShared)
        {
            throw new NotSupportedException(
                $"{op}: a head of {n} needs {bytes:N0} bytes of shared memory; {backend.Device.Name} allows {K.MaxDynamicShared:N0} per block");
        }

        return (uint)bytes;
    }
}
