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

        int n = allowedVocabulary;
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

        // Units scratch: rows · n u64, held in an fp32 tensor of twice the element count.
        using var units = backend.Allocate(b, 2 * n);
        var codes = new int[b];
        using (var scope = backend.Enter())
        {
            var view = backend.UploadSampleParameters(parameters);
            var output = backend.SampleIds(b);
            K.Sample(S, Groups(b, nameof(Sample)), F(logits), logits.RowLength, n, view, SamplingMath.UnitShift(n),
                I(units).Bytes.Cast<ulong>(), output);
            backend.DownloadIds(output, codes);
        }

        for (int r = 0; r < b; r++)
        {
            int code = codes[r];
            if (code >= 0)
            {
                ids[r] = code;
            }
            else if (code == -1)
            {
                throw SampleChecks.AllBanned(r, b, n);
            }
            else
            {
                throw SampleChecks.NonFinite(r, b, (-code - 2) / 2, isNaN: (-code - 2) % 2 == 0);
            }
        }
    }
}
