using Radlads.Ops;
using static Radlads.Cpu.CpuOps;

namespace Radlads.Cpu;

/// <summary>The training ops of <see cref="IBackwardOps"/> (loss, fill, norms, AdamW): filled in by the trainer work of issue #7.</summary>
public sealed partial class CpuBackwardOps
{
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

    public void Fill(Tensor x, float value) => throw new NotImplementedException("Fill: not written yet (issue #7)");

    public double SumOfSquares(Tensor x) => throw new NotImplementedException("SumOfSquares: not written yet (issue #7)");

    public void AdamW(Tensor param, Tensor grad, Tensor m, Tensor v, float lr, float beta1, float beta2, float eps,
        float weightDecay, float gradScale, int step) => throw new NotImplementedException("AdamW: not written yet (issue #7)");
}
