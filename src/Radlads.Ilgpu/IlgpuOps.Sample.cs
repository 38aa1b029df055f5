using ILGPU;
using Radlads.Generation;
using Radlads.Ilgpu.Kernels;
using Radlads.Ops;

namespace Radlads.Ilgpu;

/// <summary>Token sampling on the accelerator (<see cref="SamplingKernels"/>): only ids come back to the host.</summary>
internal sealed partial class IlgpuOps
{
    public void Sample(Tensor logits, int allowedVocabulary, ReadOnlySpan<SampleRow> rows, Span<int> ids)
    {
        SampleChecks.Check(logits, allowedVocabulary, rows, ids);
        int b = rows.Length;
        if (b == 0)
        {
            return;
        }

        var parameters = new double[b * SamplingKernels.ParameterCount];
        for (int r = 0; r < b; r++)
        {
            var p = rows[r];
            var o = r * SamplingKernels.ParameterCount;
            parameters[o] = p.Temperature;
            parameters[o + 1] = p.TopK;
            parameters[o + 2] = p.TopP;
            parameters[o + 3] = p.MinP;
            parameters[o + 4] = p.Uniform;
        }

        var codes = new int[b];
        using (var scope = backend.Enter())
        {
            var view = backend.UploadSampleParameters(parameters);
            var output = backend.SampleIds(b);
            QueueSample(logits, allowedVocabulary, b, view, output);
            backend.DownloadIds(output, codes);
        }

        for (int r = 0; r < b; r++)
        {
            ids[r] = DecodeSampled(codes[r], r, b, allowedVocabulary);
        }
    }

    /// <summary>
    /// Queues sampling over the first <paramref name="rows"/> rows of <paramref name="logits"/>, its parameters
    /// (<see cref="SamplingKernels.ParameterCount"/> doubles per row) and output codes on the accelerator: the eager op's
    /// buffers, or a recorded step's step buffer. Two launches whose shapes depend on the vocabulary only (a recorded
    /// step reads the options from device memory): <see cref="SamplingKernels.SampleScan"/> over
    /// <see cref="SamplingKernels.Blocks"/>(n) groups per row, then <see cref="SamplingKernels.SampleFinish{TFma}"/>, a
    /// group per row. The scratch is uninitialised (each kernel reads only what this call's scan or finish wrote) and
    /// comes from the block cache: inside a recording its blocks are reserved for the recorded graph, so a replay finds
    /// them still there. Caller holds Enter.
    /// </summary>
    internal void QueueSample(Tensor logits, int allowedVocabulary, int rows, ArrayView<double> parameters, ArrayView<int> codes)
    {
        if (GroupSize > SamplingKernels.MaxGroupSize)
        {
            throw new NotSupportedException(
                $"Sample: groups of {GroupSize} threads exceed the sampling kernels' {SamplingKernels.MaxGroupSize} (IlgpuDevice.GroupSize is at most 256)");
        }

        int n = allowedVocabulary;
        int blocks = SamplingKernels.Blocks(n);
        // Units of the whole-row path: rows · n u64; per (row, chunk) a SampleScanStats (16 bytes) and a slab of
        // TopKBound candidate keys; each held in an fp32 tensor of as many bytes.
        using var units = backend.AllocateUninitialized(rows, 2 * n);
        using var stats = backend.AllocateUninitialized(rows, blocks * 4);
        using var candidates = backend.AllocateUninitialized(rows, blocks * SamplingKernels.TopKBound * 2);
        var statsView = I(stats).Bytes.Cast<SampleScanStats>();
        var candidatesView = I(candidates).Bytes.Cast<ulong>();
        K.SampleScan(S, Groups((long)rows * blocks, nameof(Sample)), F(logits), logits.RowLength, n, parameters, blocks, statsView, candidatesView);
        K.SampleFinish(S, Groups(rows, nameof(Sample)), F(logits), logits.RowLength, n, parameters, SamplingMath.UnitShift(n),
            I(units).Bytes.Cast<ulong>(), codes, statsView, candidatesView, blocks);
    }

    /// <summary>The id a Sample kernel wrote for row <paramref name="row"/> of <paramref name="rows"/>, or the error its code stands for.</summary>
    internal static int DecodeSampled(int code, int row, int rows, int allowedVocabulary) => code switch
    {
        >= 0 => code,
        -1 => throw SampleChecks.AllBanned(row, rows, allowedVocabulary),
        _ => throw SampleChecks.NonFinite(row, rows, (-code - 2) / 2, isNaN: (-code - 2) % 2 == 0),
    };
}
