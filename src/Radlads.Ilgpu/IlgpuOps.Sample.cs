using ILGPU;
using Radlads.Generation;
using Radlads.Ops;

namespace Radlads.Ilgpu;

/// <summary>Token sampling on the accelerator (<see cref="Kernels.SamplingKernels"/>): only ids come back to the host.</summary>
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

        var parameters = new double[b * Kernels.SamplingKernels.ParameterCount];
        for (int r = 0; r < b; r++)
        {
            var p = rows[r];
            var o = r * Kernels.SamplingKernels.ParameterCount;
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
    /// Queues the Sample kernel over the first <paramref name="rows"/> rows of <paramref name="logits"/>, its parameters
    /// (<see cref="Kernels.SamplingKernels.ParameterCount"/> doubles per row) and output codes on the accelerator: the
    /// eager op's buffers, or a recorded step's step buffer. Caller holds Enter.
    /// </summary>
    internal void QueueSample(Tensor logits, int allowedVocabulary, int rows, ArrayView<double> parameters, ArrayView<int> codes)
    {
        int n = allowedVocabulary;
        // Units scratch: rows · n u64, held in an fp32 tensor of twice the element count.
        using var units = backend.Allocate(rows, 2 * n);
        K.Sample(S, Groups(rows, nameof(Sample)), F(logits), logits.RowLength, n, parameters, SamplingMath.UnitShift(n),
            I(units).Bytes.Cast<ulong>(), codes);
    }

    /// <summary>The id a Sample kernel wrote for row <paramref name="row"/> of <paramref name="rows"/>, or the error its code stands for.</summary>
    internal static int DecodeSampled(int code, int row, int rows, int allowedVocabulary) => code switch
    {
        >= 0 => code,
        -1 => throw SampleChecks.AllBanned(row, rows, allowedVocabulary),
        _ => throw SampleChecks.NonFinite(row, rows, (-code - 2) / 2, isNaN: (-code - 2) % 2 == 0),
    };
}
