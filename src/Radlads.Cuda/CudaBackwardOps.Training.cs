using System.Runtime.InteropServices;
using Radlads.Ops;

namespace Radlads.Cuda;

internal sealed unsafe partial class CudaBackwardOps
{
    // SumOfSquares: at most this many blocks of partial sums, a fixed number for a given element count, so the
    // result is the same on every run and every GPU.
    private const int SumBlocks = 1024;

    public double AlignmentLoss(Tensor teacher, Tensor student, float gradScale, Tensor? dStudent)
    {
        backend.Enter();
        const string op = nameof(AlignmentLoss);
        int c = student.RowLength;
        int tokens = student.RowCount;
        if (teacher.RowLength != c || teacher.RowCount != tokens)
        {
            throw new ArgumentException($"AlignmentLoss: teacher {teacher.ShapeText} and student {student.ShapeText} differ");
        }

        long n = (long)tokens * c;
        ulong pt = In(teacher, n, op, "teacher"), ps = In(student, n, op, "student"), pd = Out(dStudent, n, op, "dStudent");
        if (n == 0)
        {
            return 0;
        }

        // Per-token errors in fp64 (two floats each), then their sum by one block in a fixed order.
        using var errors = Scratch(tokens, 2);
        ulong pe = P(errors);
        void** a = stackalloc void*[] { &pt, &ps, &c, &gradScale, &pd, &pe };
        backend.Launch(K.AlignmentLoss, "alignment_loss_f32", (uint)tokens, 1, Threads, 0, a);
        return SumDoubles(pe, tokens);
    }

    public void Fill(Tensor x, float value)
    {
        backend.Enter();
        long n = x.ElementCount;
        ulong px = Out(x, n, nameof(Fill), "x");
        void** a = stackalloc void*[] { &px, &value, &n };
        Elementwise(K.Fill, "fill_f32", n, a);
    }

    public double SumOfSquares(Tensor x)
    {
        backend.Enter();
        long n = x.ElementCount;
        ulong px = In(x, n, nameof(SumOfSquares), "x");
        if (n == 0)
        {
            return 0;
        }

        int blocks = (int)Math.Min((n + Threads - 1) / Threads, SumBlocks);
        using var partial = Scratch(blocks, 2);
        ulong pp = P(partial);
        void** a = stackalloc void*[] { &px, &n, &pp };
        backend.Launch(K.SumOfSquares, "sum_of_squares_f32", (uint)blocks, 1, Threads, 0, a);
        return SumDoubles(pp, blocks);
    }

    /// <summary>Σ of <paramref name="count"/> doubles at <paramref name="values"/> on the device (sum_double), read back to the host.</summary>
    private double SumDoubles(ulong values, long count)
    {
        using var result = Scratch(2);
        SumDoublesInto(values, count, P(result));
        Span<float> bits = stackalloc float[2];
        backend.Download(result, bits);
        return MemoryMarshal.Cast<float, double>(bits)[0];
    }

    /// <summary>sum_double of <paramref name="count"/> doubles into the double at <paramref name="result"/>, left on the device.</summary>
    private void SumDoublesInto(ulong values, long count, ulong result)
    {
        void** a = stackalloc void*[] { &values, &count, &result };
        backend.Launch(K.SumDouble, "sum_double", 1, 1, Threads, 0, a);
    }

    /// <summary>SumOfSquares's two launches for n &gt; 0 elements at px, the result left at <paramref name="result"/>.</summary>
    private void SumOfSquaresInto(ulong px, long n, ulong partial, ulong result)
    {
        int blocks = (int)Math.Min((n + Threads - 1) / Threads, SumBlocks);
        void** a = stackalloc void*[] { &px, &n, &partial };
        backend.Launch(K.SumOfSquares, "sum_of_squares_f32", (uint)blocks, 1, Threads, 0, a);
        SumDoublesInto(partial, blocks, result);
    }

    // The same kernels as SumOfSquares per tensor (so the same bits), each result left in its slot of one device
    // buffer; one download for all. The partial sums' scratch is reused: the stream runs the launches in order.
    public void SumsOfSquares(IReadOnlyList<Tensor> xs, Span<double> sums)
    {
        backend.Enter();
        if (sums.Length != xs.Count)
        {
            throw new ArgumentException($"SumsOfSquares: {xs.Count} tensors but room for {sums.Length} sums");
        }

        if (xs.Count == 0)
        {
            return;
        }

        using var results = backend.Allocate(xs.Count, 2); // zeroed: an empty tensor's sum is 0
        using var partial = Scratch(SumBlocks, 2);
        ulong pp = P(partial), presults = P(results);
        for (int i = 0; i < xs.Count; i++)
        {
            long n = xs[i].ElementCount;
            ulong px = In(xs[i], n, nameof(SumsOfSquares), $"xs[{i}]");
            if (n == 0)
            {
                continue;
            }

            SumOfSquaresInto(px, n, pp, presults + ((ulong)i * sizeof(double)));
        }

        var bits = new float[xs.Count * 2];
        backend.Download(results, bits);
        MemoryMarshal.Cast<float, double>(bits).CopyTo(sums);
    }

    public void AdamW(Tensor param, Tensor grad, Tensor m, Tensor v, float lr, float beta1, float beta2, float eps,
        float weightDecay, float gradScale, int step)
    {
        backend.Enter();
        const string op = nameof(AdamW);
        if (step < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(step), step, "AdamW: step counts from 1 (the first update is step 1)");
        }

        long n = param.ElementCount;
        ulong pp = Out(param, n, op, "param"), pg = In(grad, n, op, "grad"), pm = Out(m, n, op, "m"), pv = Out(v, n, op, "v");

        // The scalars as torch computes them from Python floats (double), rounded to fp32 once.
        float decay = (float)(1.0 - ((double)lr * weightDecay));
        float oneMinusBeta1 = (float)(1.0 - beta1);
        float oneMinusBeta2 = (float)(1.0 - beta2);
        float stepSize = (float)(lr / (1.0 - Math.Pow(beta1, step)));
        float correction2Sqrt = (float)Math.Sqrt(1.0 - Math.Pow(beta2, step));
        void** a = stackalloc void*[]
        {
            &pp, &pg, &pm, &pv, &decay, &beta1, &oneMinusBeta1, &beta2, &oneMinusBeta2, &stepSize, &correction2Sqrt, &eps, &gradScale, &n,
        };
        Elementwise(K.AdamW, "adamw_f32", n, a);
    }
}
