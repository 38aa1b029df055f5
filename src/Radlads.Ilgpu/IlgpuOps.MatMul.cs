using Radlads.Ops;

namespace Radlads.Ilgpu;

internal sealed partial class IlgpuOps
{
    public void MatMul(Tensor x, Tensor weight, Tensor? bias, Tensor y, WeightLayout layout = WeightLayout.OutIn)
    {
        var w = I(weight);
        if (weight.Shape.Length != 2)
        {
            throw new ArgumentException($"MatMul: weight must be 2-D, got {weight.ShapeText}");
        }

        int k = x.RowLength;
        int t = x.RowCount;
        (int m, int kw) = layout == WeightLayout.OutIn ? (weight.Shape[0], weight.Shape[1]) : (weight.Shape[1], weight.Shape[0]);
        if (kw != k || y.RowLength != m || y.RowCount != t)
        {
            throw new ArgumentException($"MatMul: x {x.ShapeText}, weight {weight.ShapeText} ({layout}), y {y.ShapeText} do not fit");
        }

        var b = bias is null ? None : Param(bias, m);
        int hasBias = bias is null ? 0 : 1;
        if (t == 0 || m == 0)
        {
            return;
        }

        using var scope = backend.Enter();
        if (backend.ThreadPerOutputKernels)
        {
            var dot = layout == WeightLayout.OutIn ? K.MatMulOutInDot : K.MatMulInOutDot;
            dot(S, Extent((long)t * m, nameof(MatMul)), F(x), w.Weight(Device), b, hasBias, k, m, F(y));
        }
        else if (layout == WeightLayout.OutIn)
        {
            // One warp per output row.
            int warps = GroupSize / Device.WarpSize;
            K.MatMulOutIn(S, Groups((m + warps - 1) / warps, nameof(MatMul)), F(x), w.Weight(Device), b, hasBias, t, k, m, F(y));
        }
        else
        {
            // One group per (token, warp-wide block of columns).
            long blocks = (m + Device.WarpSize - 1) / Device.WarpSize;
            K.MatMulInOut(S, Groups(t * blocks, nameof(MatMul)), F(x), w.Weight(Device), b, hasBias, t, k, m, F(y));
        }
    }
}
