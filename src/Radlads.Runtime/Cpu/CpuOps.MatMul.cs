using System.Buffers;
using Radlads.Ops;
using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;

namespace Radlads.Cpu;

public sealed partial class CpuOps
{
    // Output columns per task in the InOut (LoRA) layout: a converted weight slice stays in L1.
    private const int InOutColumnBlock = 256;

    public void MatMul(Tensor x, Tensor weight, Tensor? bias, Tensor y, WeightLayout layout = WeightLayout.OutIn)
    {
        var w = Cpu(weight);
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

        float[]? biasCopy = bias is null ? null : Row0(bias, m).ToArray();
        var xs = Cpu(x);
        var ys = Cpu(y);
        if (layout == WeightLayout.OutIn)
        {
            MatMulOutIn(xs, w, biasCopy, ys, t, k, m);
        }
        else
        {
            MatMulInOut(xs, w, biasCopy, ys, t, k, m);
        }
    }

    // y[t, j] = Σ_k x[t, k]·W[j, k]: each task converts a few weight rows once and reuses them for every token.
    private static void MatMulOutIn(CpuTensor x, CpuTensor w, float[]? bias, CpuTensor y, int t, int k, int m)
    {
        const int RowsPerTask = 16;
        int tasks = (m + RowsPerTask - 1) / RowsPerTask;
        For(tasks, (long)RowsPerTask * k * t, task =>
        {
            var row = w.IsFloat32 ? null : ArrayPool<float>.Shared.Rent(k);
            var xs = x.Floats;
            var ys = y.Floats;
            int end = Math.Min(m, (task + 1) * RowsPerTask);
            for (int j = task * RowsPerTask; j < end; j++)
            {
                ReadOnlySpan<float> wr;
                if (row is null)
                {
                    wr = w.Float32Range((long)j * k, k);
                }
                else
                {
                    w.ReadRange((long)j * k, row.AsSpan(0, k));
                    wr = row.AsSpan(0, k);
                }

                float b = bias is null ? 0f : bias[j];
                for (int i = 0; i < t; i++)
                {
                    ys[(i * m) + j] = TensorPrimitives.Dot(xs.Slice(i * k, k), wr) + b;
                }
            }

            if (row is not null)
            {
                ArrayPool<float>.Shared.Return(row);
            }
        });
    }

    // y[t, :] = Σ_k x[t, k]·W[k, :], accumulated row by row of W over a block of output columns.
    private static void MatMulInOut(CpuTensor x, CpuTensor w, float[]? bias, CpuTensor y, int t, int k, int m)
    {
        int blocks = (m + InOutColumnBlock - 1) / InOutColumnBlock;
        For(blocks, (long)InOutColumnBlock * k * t, block =>
        {
            int start = block * InOutColumnBlock;
            int width = Math.Min(InOutColumnBlock, m - start);
            var buffer = ArrayPool<float>.Shared.Rent(width);
            var wr = buffer.AsSpan(0, width);
            var xs = x.Floats;
            var ys = y.Floats;
            for (int i = 0; i < t; i++)
            {
                var yr = ys.Slice((i * m) + start, width);
                if (bias is null)
                {
                    yr.Clear();
                }
                else
                {
                    bias.AsSpan(start, width).CopyTo(yr);
                }
            }

            for (int kk = 0; kk < k; kk++)
            {
                w.ReadRange(((long)kk * m) + start, wr);
                for (int i = 0; i < t; i++)
                {
                    var yr = ys.Slice((i * m) + start, width);
                    TensorPrimitives.MultiplyAdd(wr, xs[(i * k) + kk], yr, yr);
                }
            }

            ArrayPool<float>.Shared.Return(buffer);
        });
    }
}
