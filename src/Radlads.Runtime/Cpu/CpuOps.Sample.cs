using Radlads.Generation;
using Radlads.Ops;

namespace Radlads.Cpu;

/// <summary>Token sampling: the reference every GPU kernel must match id for id.</summary>
public sealed partial class CpuOps
{
    // One work buffer set per thread: the op may be called from several generation threads.
    [ThreadStatic]
    private static RowSampler? rowSampler;

    public void Sample(Tensor logits, int allowedVocabulary, ReadOnlySpan<SampleRow> rows, Span<int> ids)
    {
        SampleChecks.Check(logits, allowedVocabulary, rows, ids);
        var sampler = rowSampler ??= new RowSampler();
        var all = F(logits);
        int v = logits.RowLength;
        for (int r = 0; r < rows.Length; r++)
        {
            var row = all.Slice(r * v, allowedVocabulary);
            ids[r] = sampler.Sample(row, rows[r], r, rows.Length);
        }
    }
}
