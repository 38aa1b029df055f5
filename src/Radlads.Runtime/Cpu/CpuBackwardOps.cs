using Radlads.Ops;
using static Radlads.Cpu.CpuOps;
using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;

namespace Radlads.Cpu;

/// <summary>
/// The CPU reference of <see cref="IBackwardOps"/>: fp32 with fp32 accumulation (double for GroupNorm's statistics,
/// as in the forward), clear loops first, parallel over rows or heads where they are independent, vectorised with
/// TensorPrimitives where it stays readable. Each method quotes the forward line it differentiates. Split by op
/// family into partial files; this one holds the generic ops (MatMul, elementwise, RoPE, GQA, GroupNorm, token shift).
/// </summary>
public sealed partial class CpuBackwardOps : IBackwardOps
{
    private static CpuTensor Cpu(Tensor t) => (CpuTensor)t;

    public void MatMulBackward(Tensor x, Tensor weight, Tensor dy, Tensor? dx, Tensor? dWeight, Tensor? dBias,
        WeightLayout layout = WeightLayout.OutIn)
    {
        if (weight.Shape.Length != 2)
        {
            throw new ArgumentException($"MatMulBackward: weight must be 2-D, got {weight.ShapeText}");
        }

        int k = x.RowLength;
        int t = x.RowCount;
        (int m, int kw) = layout == WeightLayout.OutIn ? (weight.Shape[0], weight.Shape[1]) : (weight.Shape[1], weight.Shape[0]);
        if (kw != k || dy.RowLength != m || dy.RowCount != t || (dx is not null && dx.ElementCount != (long)t * k)
            || (dWeight is not null && dWeight.ElementCount != weight.ElementCount) || (dBias is not null && dBias.ElementCount != m))
        {
            throw new ArgumentException($"MatMulBackward: x {x.ShapeText}, weight {weight.ShapeText} ({layout}), dy {dy.ShapeText}, " +
                $"dx {dx?.ShapeText}, dWeight {dWeight?.ShapeText}, dBias {dBias?.ShapeText} do not fit");
        }

        var xc = Cpu(x);
        var gc = Cpu(dy);
        if (dx is not null)
        {
            var wc = Cpu(weight);
            float[]? converted = wc.IsFloat32 ? null : Row0(weight, m * k).ToArray();
            var dxc = Cpu(dx);
            For(t, (long)m * k, i =>
            {
                ReadOnlySpan<float> w = converted ?? wc.Float32Range(0, m * k);
                var g = gc.Floats.Slice(i * m, m);
                var row = dxc.Floats.Slice(i * k, k);
                if (layout == WeightLayout.OutIn)
                {
                    // y[i, j] = Σ_k x[i, k]·W[j, k]  ⇒  dx[i, :] = Σ_j dy[i, j]·W[j, :]
                    row.Clear();
                    for (int j = 0; j < m; j++)
                    {
                        TensorPrimitives.MultiplyAdd(w.Slice(j * k, k), g[j], row, row);
                    }
                }
                else
                {
                    // y[i, j] = Σ_k x[i, k]·W[k, j]  ⇒  dx[i, kk] = dy[i, :]·W[kk, :]
                    for (int kk = 0; kk < k; kk++)
                    {
                        row[kk] = TensorPrimitives.Dot(g, w.Slice(kk * m, m));
                    }
                }
            });
        }

        if (dWeight is not null)
        {
            var dwc = Cpu(dWeight);
            if (layout == WeightLayout.OutIn)
            {
                // dW[j, :] += Σ_i dy[i, j]·x[i, :]
                For(m, (long)t * k, j =>
                {
                    var row = dwc.Floats.Slice(j * k, k);
                    for (int i = 0; i < t; i++)
                    {
                        TensorPrimitives.MultiplyAdd(xc.Floats.Slice(i * k, k), gc.Floats[(i * m) + j], row, row);
                    }
                });
            }
            else
            {
                // dW[kk, :] += Σ_i x[i, kk]·dy[i, :]
                For(k, (long)t * m, kk =>
                {
                    var row = dwc.Floats.Slice(kk * m, m);
                    for (int i = 0; i < t; i++)
                    {
                        TensorPrimitives.MultiplyAdd(gc.Floats.Slice(i * m, m), xc.Floats[(i * k) + kk], row, row);
                    }
                });
            }
        }

        if (dBias is not null)
        {
            // y = … + b  ⇒  db += Σ_i dy[i, :]
            var db = F(dBias);
            for (int i = 0; i < t; i++)
            {
                TensorPrimitives.Add(gc.Floats.Slice(i * m, m), db, db);
            }
        }
    }

    // y = s·x
    public void ScaleBackward(Tensor dy, float s, Tensor dx)
    {
        SameCount(dy, dx, nameof(ScaleBackward));
        TensorPrimitives.Multiply(F(dy), s, F(dx));
    }

    // y = a ⊙ b
    public void MultiplyBackward(Tensor a, Tensor b, Tensor dy, Tensor? da, Tensor? db)
    {
        SameCount(a, dy, nameof(MultiplyBackward));
        SameCount(b, dy, nameof(MultiplyBackward));
        if (db is not null)
        {
            SameCount(db, dy, nameof(MultiplyBackward));
            TensorPrimitives.Multiply(F(dy), F(a), F(db));
        }

        if (da is not null)
        {
            SameCount(da, dy, nameof(MultiplyBackward));
            TensorPrimitives.Multiply(F(dy), F(b), F(da));
        }
    }

    // y = tanh(x)  ⇒  dy/dx = 1 − y²
    public void TanhBackward(Tensor y, Tensor dy, Tensor dx)
    {
        SameCount(y, dy, nameof(TanhBackward));
        SameCount(y, dx, nameof(TanhBackward));
        var ys = F(y);
        var g = F(dy);
        var d = F(dx);
        for (int i = 0; i < ys.Length; i++)
        {
            d[i] = g[i] * (1f - (ys[i] * ys[i]));
        }
    }

    // y = σ(x)  ⇒  dy/dx = y·(1 − y)
    public void SigmoidBackward(Tensor y, Tensor dy, Tensor dx)
    {
        SameCount(y, dy, nameof(SigmoidBackward));
        SameCount(y, dx, nameof(SigmoidBackward));
        var ys = F(y);
        var g = F(dy);
        var d = F(dx);
        for (int i = 0; i < ys.Length; i++)
        {
            d[i] = g[i] * ys[i] * (1f - ys[i]);
        }
    }

    // y = σ(x + bias), bias broadcast over rows
    public void AddSigmoidBackward(Tensor y, Tensor dy, Tensor dx, Tensor? dBias)
    {
        SigmoidBackward(y, dy, dx);
        if (dBias is not null)
        {
            int c = y.RowLength;
            if (dBias.ElementCount != c)
            {
                throw new ArgumentException($"AddSigmoidBackward: dBias {dBias.ShapeText} for rows of {c}");
            }

            var d = F(dx);
            var db = F(dBias);
            for (int r = 0; r < y.RowCount; r++)
            {
                TensorPrimitives.Add(d.Slice(r * c, c), db, db);
            }
        }
    }

    // y = silu(gate) ⊙ up, silu(g) = g·σ(g)
    public void SwiGluBackward(Tensor gate, Tensor up, Tensor dy, Tensor? dGate, Tensor? dUp)
    {
        SameCount(gate, up, nameof(SwiGluBackward));
        SameCount(gate, dy, nameof(SwiGluBackward));
        var g = F(gate);
        var u = F(up);
        var d = F(dy);
        var dg = dGate is null ? [] : F(dGate);
        var du = dUp is null ? [] : F(dUp);
        for (int i = 0; i < g.Length; i++)
        {
            float s = 1f / (1f + MathF.Exp(-g[i]));
            if (dUp is not null)
            {
                du[i] = d[i] * g[i] * s;
            }

            if (dGate is not null)
            {
                // d silu/dg = σ(g) + g·σ(g)·(1 − σ(g))
                dg[i] = d[i] * u[i] * s * (1f + (g[i] * (1f - s)));
            }
        }
    }

    public void RopeBackward(Tensor dx, int heads, int headDim, int startPosition, float theta)
    {
        if (dx.RowLength != heads * headDim || headDim % 2 != 0)
        {
            throw new ArgumentException($"RopeBackward: {dx.ShapeText} is not [T, {heads}·{headDim}] with an even head dim");
        }

        int half = headDim / 2;
        // Angles in double, as the forward computes them.
        var inverseFrequency = new double[half];
        for (int i = 0; i < half; i++)
        {
            inverseFrequency[i] = Math.Pow(theta, -2.0 * i / headDim);
        }

        var xs = F(dx);
        int width = dx.RowLength;
        var cos = new float[half];
        var sin = new float[half];
        for (int t = 0; t < dx.RowCount; t++)
        {
            double position = startPosition + t;
            for (int i = 0; i < half; i++)
            {
                (double s, double c) = Math.SinCos(position * inverseFrequency[i]);
                cos[i] = (float)c;
                sin[i] = (float)s;
            }

            for (int h = 0; h < heads; h++)
            {
                var v = xs.Slice((t * width) + (h * headDim), headDim);
                for (int i = 0; i < half; i++)
                {
                    // Forward: y_a = a·cos − b·sin, y_b = b·cos + a·sin (a rotation R); backward applies Rᵀ.
                    float ga = v[i];
                    float gb = v[i + half];
                    v[i] = (ga * cos[i]) + (gb * sin[i]);
                    v[i + half] = (gb * cos[i]) - (ga * sin[i]);
                }
            }
        }
    }

    // y head h = x head ⌊h / groups⌋
    public void RepeatKvBackward(Tensor dy, int kvHeads, int headDim, int groups, Tensor dx)
    {
        if (dx.RowLength != kvHeads * headDim || dy.RowLength != kvHeads * groups * headDim || dx.RowCount != dy.RowCount)
        {
            throw new ArgumentException($"RepeatKvBackward: dy {dy.ShapeText}, dx {dx.ShapeText} for {kvHeads} KV heads × {groups}");
        }

        var g = F(dy);
        var d = F(dx);
        for (int t = 0; t < dx.RowCount; t++)
        {
            for (int j = 0; j < kvHeads; j++)
            {
                var target = d.Slice((t * dx.RowLength) + (j * headDim), headDim);
                g.Slice((t * dy.RowLength) + (j * groups * headDim), headDim).CopyTo(target);
                for (int q = 1; q < groups; q++)
                {
                    TensorPrimitives.Add(g.Slice((t * dy.RowLength) + (((j * groups) + q) * headDim), headDim), target, target);
                }
            }
        }
    }

    public void GroupNormBackward(Tensor x, Tensor weight, Tensor dy, int groups, float eps, Tensor? dx, Tensor? dWeight,
        Tensor? dBias)
    {
        int width = x.RowLength;
        if (width % groups != 0 || dy.ElementCount != x.ElementCount || (dx is not null && dx.ElementCount != x.ElementCount))
        {
            throw new ArgumentException($"GroupNormBackward: x {x.ShapeText}, dy {dy.ShapeText}, dx {dx?.ShapeText}, {groups} groups");
        }

        int d = width / groups;
        var w = Row0(weight, width);
        var xs = F(x);
        var g = F(dy);
        var dxs = dx is null ? [] : F(dx);
        var dw = dWeight is null ? [] : F(dWeight);
        var db = dBias is null ? [] : F(dBias);
        var xhat = new double[d];
        for (int r = 0; r < x.RowCount; r++)
        {
            for (int q = 0; q < groups; q++)
            {
                int start = (r * width) + (q * d);
                // Forward: y = (x − μ)·(var + eps)^−½ ⊙ weight + bias, μ and var (biased) over the group.
                double mean = 0;
                for (int i = 0; i < d; i++)
                {
                    mean += xs[start + i];
                }

                mean /= d;
                double variance = 0;
                for (int i = 0; i < d; i++)
                {
                    variance += (xs[start + i] - mean) * (xs[start + i] - mean);
                }

                variance /= d;
                double inv = 1.0 / Math.Sqrt(variance + eps);
                double meanG = 0, meanGX = 0;
                for (int i = 0; i < d; i++)
                {
                    int c = (q * d) + i;
                    xhat[i] = (xs[start + i] - mean) * inv;
                    double gi = (double)g[start + i] * w[c];
                    meanG += gi;
                    meanGX += gi * xhat[i];
                    if (dWeight is not null)
                    {
                        dw[c] += (float)(g[start + i] * xhat[i]);
                    }

                    if (dBias is not null)
                    {
                        db[c] += g[start + i];
                    }
                }

                meanG /= d;
                meanGX /= d;
                if (dx is not null)
                {
                    for (int i = 0; i < d; i++)
                    {
                        double gi = (double)g[start + i] * w[(q * d) + i];
                        dxs[start + i] = (float)(inv * (gi - meanG - (xhat[i] * meanGX)));
                    }
                }
            }
        }
    }

    public void TokenShiftBackward(Tensor dDelta, Tensor? dFinalState, Tensor dx, Tensor? dInitialState)
    {
        int c = dDelta.RowLength;
        int tokens = dDelta.RowCount;
        if (dx.ElementCount != dDelta.ElementCount || (dFinalState is not null && dFinalState.ElementCount != c)
            || (dInitialState is not null && dInitialState.ElementCount != c))
        {
            throw new ArgumentException($"TokenShiftBackward: dDelta {dDelta.ShapeText}, dx {dx.ShapeText}, " +
                $"dFinalState {dFinalState?.ShapeText}, dInitialState {dInitialState?.ShapeText}");
        }

        var g = F(dDelta);
        var d = F(dx);
        // delta[0] = s₀ − x[0]: the initial shift state receives dDelta[0] (read before dx may overwrite it).
        if (dInitialState is not null)
        {
            if (tokens == 0)
            {
                F(dInitialState).Clear();
            }
            else
            {
                g[..c].CopyTo(F(dInitialState));
            }
        }

        // delta[t] = x[t−1] − x[t]: x[t] appears with − in delta[t] and with + in delta[t+1]; the last row is also the
        // final shift state. Going forwards, dx[t] overwrites dDelta[t] only after its last read.
        for (int t = 0; t < tokens; t++)
        {
            var next = t + 1 < tokens ? g.Slice((t + 1) * c, c) : dFinalState is null ? [] : F(dFinalState);
            var row = d.Slice(t * c, c);
            if (next.IsEmpty)
            {
                TensorPrimitives.Negate(g.Slice(t * c, c), row);
            }
            else
            {
                TensorPrimitives.Subtract(next, g.Slice(t * c, c), row);
            }
        }
    }

    // y = x + delta ⊙ mix
    public void MixShiftBackward(Tensor delta, Tensor mix, Tensor dy, Tensor? dx, Tensor? dDelta, Tensor? dMix)
    {
        int c = dy.RowLength;
        SameCount(delta, dy, nameof(MixShiftBackward));
        var m = Row0(mix, c);
        var g = F(dy);
        var ds = F(delta);
        if (dMix is not null)
        {
            var dm = F(dMix);
            for (int t = 0; t < dy.RowCount; t++)
            {
                TensorPrimitives.FusedMultiplyAdd(g.Slice(t * c, c), ds.Slice(t * c, c), dm, dm);
            }
        }

        if (dx is not null)
        {
            SameCount(dx, dy, nameof(MixShiftBackward));
            g.CopyTo(F(dx));
        }

        if (dDelta is not null)
        {
            SameCount(dDelta, dy, nameof(MixShiftBackward));
            var dd = F(dDelta);
            for (int t = 0; t < dy.RowCount; t++)
            {
                TensorPrimitives.Multiply(g.Slice(t * c, c), m, dd.Slice(t * c, c));
            }
        }
    }
}
