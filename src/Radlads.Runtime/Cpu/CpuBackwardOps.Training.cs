using System.Globalization;
using Radlads.Ops;
using static Radlads.Cpu.CpuOps;

namespace Radlads.Cpu;

/// <summary>The training ops of <see cref="IBackwardOps"/> (the step-1 alignment loss, fill, sum of squares, AdamW).</summary>
public sealed partial class CpuBackwardOps
{
    /// <summary>Elements per parallel chunk of the element-wise training ops.</summary>
    private const int TrainingChunk = 1 << 16;

    public double AlignmentLoss(Tensor teacher, Tensor student, float gradScale, Tensor? dStudent)
    {
        if (teacher.ElementCount != student.ElementCount || teacher.RowLength != student.RowLength
            || (dStudent is not null && dStudent.ElementCount != student.ElementCount))
        {
            throw new ArgumentException($"AlignmentLoss: teacher {teacher.ShapeText}, student {student.ShapeText}, dStudent {dStudent?.ShapeText} do not fit");
        }

        int t = student.RowCount;
        int c = student.RowLength;
        double sqrtC = Math.Sqrt(c);
        var perRow = new double[t];
        var tc = Cpu(teacher);
        var sc = Cpu(student);
        var dc = dStudent is null ? null : Cpu(dStudent);
        For(t, c, i =>
        {
            var te = tc.Floats.Slice(i * c, c);
            var st = sc.Floats.Slice(i * c, c);
            // e_t = ‖s − t‖₂ / √C, the squares summed in fp64.
            double ss = 0;
            for (int j = 0; j < c; j++)
            {
                double e = (double)st[j] - te[j];
                ss += e * e;
            }

            double norm = Math.Sqrt(ss);
            perRow[i] = norm / sqrtC;
            if (dc is not null)
            {
                // ∂e_t/∂s = (s − t) / (‖s − t‖·√C); 0 where the row's difference is exactly 0 (torch's subgradient).
                var d = dc.Floats.Slice(i * c, c);
                double factor = norm > 0 ? gradScale / (norm * sqrtC) : 0;
                for (int j = 0; j < c; j++)
                {
                    d[j] = (float)(((double)st[j] - te[j]) * factor);
                }
            }
        });

        double sum = 0;
        foreach (var e in perRow)
        {
            sum += e;
        }

        return sum;
    }

    public void Fill(Tensor x, float value)
    {
        RequireF32(x, "Fill");
        Cpu(x).Floats.Fill(value);
    }

    public void SumsOfSquares(IReadOnlyList<Tensor> xs, Span<double> sums)
    {
        if (sums.Length != xs.Count)
        {
            throw new ArgumentException($"SumsOfSquares: {xs.Count} tensors but room for {sums.Length} sums");
        }

        for (int i = 0; i < xs.Count; i++)
        {
            sums[i] = SumOfSquares(xs[i]);
        }
    }

    public double SumOfSquares(Tensor x)
    {
        RequireF32(x, "SumOfSquares");
        var xc = Cpu(x);
        int n = checked((int)x.ElementCount);
        int chunks = (n + TrainingChunk - 1) / TrainingChunk;
        var partial = new double[chunks];

        // Each chunk sums in its own fixed order and the partial sums are added in chunk order, so the result does
        // not depend on the thread count or scheduling (the loop's resume test needs bit-identical grad norms).
        For(chunks, TrainingChunk, c =>
        {
            var span = xc.Floats.Slice(c * TrainingChunk, Math.Min(TrainingChunk, n - (c * TrainingChunk)));
            double sum = 0;
            foreach (float value in span)
            {
                sum += (double)value * value;
            }

            partial[c] = sum;
        });
        double total = 0;
        foreach (double p in partial)
        {
            total += p;
        }

        return total;
    }

    public void AdamW(Tensor param, Tensor grad, Tensor m, Tensor v, float lr, float beta1, float beta2, float eps,
        float weightDecay, float gradScale, int step)
    {
        RequireF32(param, "AdamW param");
        RequireF32(grad, "AdamW grad");
        RequireF32(m, "AdamW m");
        RequireF32(v, "AdamW v");
        if (grad.ElementCount != param.ElementCount || m.ElementCount != param.ElementCount || v.ElementCount != param.ElementCount)
        {
            throw new ArgumentException($"AdamW: param {param.ShapeText}, grad {grad.ShapeText}, m {m.ShapeText}, v {v.ShapeText} must have the same element count");
        }

        if (step < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(step), step, "AdamW: step counts from 1");
        }

        // torch.optim.AdamW (_single_tensor_adamw) takes betas and weight decay as Python floats (float64), computes
        // 1 − β, the bias corrections and the step size in float64 and hands them to the fp32 kernels as scalars,
        // which cast them to float. The betas arrive here as float: their shortest decimal (0.9f → "0.9") gives back
        // the float64 the user wrote, so 1 − β1 is (float)0.09999999999999998 = 0.1f as in torch, not 1 − 0.9f.
        double b1 = AsWritten(beta1);
        double b2 = AsWritten(beta2);
        double biasCorrection1 = 1 - Math.Pow(b1, step);
        double biasCorrection2 = 1 - Math.Pow(b2, step);
        float stepSize = (float)(lr / biasCorrection1);
        float biasCorrection2Sqrt = (float)Math.Sqrt(biasCorrection2);
        float decay = (float)(1 - (lr * AsWritten(weightDecay)));
        float beta2f = (float)b2;
        float oneMinusBeta1 = (float)(1 - b1);
        float oneMinusBeta2 = (float)(1 - b2);
        var pc = Cpu(param);
        var gc = Cpu(grad);
        var mc = Cpu(m);
        var vc = Cpu(v);
        int n = checked((int)param.ElementCount);
        int chunks = (n + TrainingChunk - 1) / TrainingChunk;
        For(chunks, TrainingChunk, c =>
        {
            int start = c * TrainingChunk;
            int count = Math.Min(TrainingChunk, n - start);
            var p = pc.Floats.Slice(start, count);
            var g = gc.Floats.Slice(start, count);
            var mm = mc.Floats.Slice(start, count);
            var vv = vc.Floats.Slice(start, count);
            for (int i = 0; i < count; i++)
            {
                float gi = gradScale * g[i];                     // torch: grads scaled in place by clip_grad_norm_
                float pi = p[i] * decay;                          // param.mul_(1 − lr·wd)
                // exp_avg.lerp_(grad, 1 − β1): torch's vectorised lerp is fma(w, end − self, self) for w < 0.5
                float mi = oneMinusBeta1 < 0.5f
                    ? MathF.FusedMultiplyAdd(oneMinusBeta1, gi - mm[i], mm[i])
                    : MathF.FusedMultiplyAdd(oneMinusBeta1 - 1, gi - mm[i], gi);
                float vi = (vv[i] * beta2f) + (oneMinusBeta2 * gi * gi);   // exp_avg_sq.mul_(β2).addcmul_(g, g, 1 − β2)
                float denom = (MathF.Sqrt(vi) / biasCorrection2Sqrt) + eps; // (exp_avg_sq.sqrt() / √bc2).add_(eps)
                p[i] = pi + (-stepSize * mi / denom);             // param.addcdiv_(exp_avg, denom, value=−step_size)
                mm[i] = mi;
                vv[i] = vi;
            }
        });
    }

    /// <summary>The float64 of a float's shortest round-trip decimal: the value a user typed as 0.9 or 0.95.</summary>
    private static double AsWritten(float x) =>
        double.Parse(x.ToString("R", CultureInfo.InvariantCulture), CultureInfo.InvariantCulture);

    private static void RequireF32(Tensor x, string what)
    {
        if (x.DType != Checkpoints.DType.F32)
        {
            throw new ArgumentException($"{what}: needs an fp32 tensor, got {x.DType} {x.ShapeText}");
        }
    }
}
