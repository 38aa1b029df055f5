using Radlads.Ops;

namespace Radlads.Ilgpu;

/// <summary>
/// The fused decode ops, one launch each (<see cref="Kernels.FusedKernels"/>), with the same fp32 results as the op
/// sequences they replace on this backend. <see cref="IOps.RopeExpandRows"/> keeps the interface default (the batched
/// decode rows; ILGPU runs batch 1 through <see cref="RopeExpand"/>). With <see cref="IlgpuBackend.Unfused"/>
/// (RADLADS_ILGPU_FUSED=0, the baseline) each runs as its op sequence, the interface default.
/// </summary>
internal sealed partial class IlgpuOps
{
    public void AddRmsNorm(Tensor h, Tensor branch, Tensor weight, float eps, Tensor y)
    {
        if (ReferenceEquals(h, y))
        {
            throw new ArgumentException("AddRmsNorm: y must not alias h (h keeps the residual stream)");
        }

        SameCount(h, branch, nameof(AddRmsNorm));
        int c = h.RowLength;
        int rows = h.RowCount;
        if (weight.ElementCount < c)
        {
            throw new ArgumentException($"AddRmsNorm: weight {weight.ShapeText} is shorter than rows of {c}");
        }

        Fits(y, h.ElementCount, nameof(AddRmsNorm));
        if (rows == 0 || c == 0)
        {
            return;
        }

        if (backend.Unfused)
        {
            Add(h, branch, h);
            RmsNorm(h, weight, eps, y);
            return;
        }

        using var scope = backend.Enter();
        K.AddRmsNorm(S, Groups(rows, nameof(AddRmsNorm)), F(h), F(branch), I(weight).Weight(Device), eps, c, F(y));
    }

    public void ScaleMultiply(Tensor a, float s, Tensor b, Tensor y)
    {
        FusedOpChecks.ScaleMultiply(a, b, y);
        if (backend.Unfused)
        {
            Scale(a, s, y);
            Multiply(y, b, y);
            return;
        }

        long n = a.ElementCount;
        if (n > 0)
        {
            using var scope = backend.Enter();
            K.ScaleMultiply(S, Extent(n, nameof(ScaleMultiply)), F(a), s, F(b), F(y));
        }
    }

    public void ExpandKv(Tensor k, Tensor v, int heads, int kvHeads, int headDim, Tensor kh, Tensor vh)
    {
        FusedOpChecks.ExpandKv(k, v, heads, kvHeads, headDim, kh, vh);
        if (backend.Unfused)
        {
            RepeatKv(k, kvHeads, headDim, heads / kvHeads, kh);
            RepeatKv(v, kvHeads, headDim, heads / kvHeads, vh);
            return;
        }

        long n = (long)k.RowCount * heads * headDim;
        if (n > 0)
        {
            using var scope = backend.Enter();
            K.ExpandKv(S, Extent(n, nameof(ExpandKv)), F(k), F(v), kvHeads, headDim, heads / kvHeads, F(kh), F(vh));
        }
    }

    public void RopeExpand(Tensor r, Tensor k, Tensor? v, int heads, int kvHeads, int headDim, int startPosition, float theta,
        Tensor? kh, Tensor? vh)
    {
        FusedOpChecks.RopeExpand(nameof(RopeExpand), r, k, v, heads, kvHeads, headDim, kh, vh);
        if (backend.Unfused)
        {
            Rope(r, heads, headDim, startPosition, theta);
            Rope(k, kvHeads, headDim, startPosition, theta);
            if (kh is not null)
            {
                RepeatKv(k, kvHeads, headDim, heads / kvHeads, kh);
                RepeatKv(v!, kvHeads, headDim, heads / kvHeads, vh!);
            }

            return;
        }

        int tokens = r.RowCount;
        int half = headDim / 2;
        if (tokens == 0 || half == 0)
        {
            return;
        }

        using var scope = backend.Enter();
        long pairs = (long)tokens * kvHeads * half;
        // The position exactly as Rope reads it (eager: a device zero and the start; recorded: the step buffer).
        var (cos, sin, position, offset) = backend.Recording
            ? backend.RecordedRope(theta, headDim, startPosition, tokens)
            : backend.RopeTable(theta, headDim, startPosition, tokens);
        var dummy = Device.DummyFloats.View;
        bool expand = kh is not null;
        K.RopeExpand(S, Extent(pairs, nameof(RopeExpand)), F(r), F(k), expand ? F(v!) : dummy, cos, sin, position, offset,
            heads, kvHeads, headDim, expand ? 1 : 0, expand ? F(kh!) : dummy, expand ? F(vh!) : dummy);
    }
}
