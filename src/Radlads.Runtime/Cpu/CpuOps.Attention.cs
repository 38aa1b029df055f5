using Radlads.Ops;
using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;

namespace Radlads.Cpu;

public sealed partial class CpuOps
{
    public void Rope(Tensor x, int heads, int headDim, int startPosition, float theta)
    {
        if (x.RowLength != heads * headDim || headDim % 2 != 0)
        {
            throw new ArgumentException($"Rope: {x.ShapeText} is not [T, {heads}·{headDim}] with an even head dim");
        }

        int half = headDim / 2;
        // Angles in double: the float64 references see no rounding here, and fp32 angles lose digits at long positions.
        var inverseFrequency = new double[half];
        for (int i = 0; i < half; i++)
        {
            inverseFrequency[i] = Math.Pow(theta, -2.0 * i / headDim);
        }

        var xs = F(x);
        int width = x.RowLength;
        var cos = new float[half];
        var sin = new float[half];
        for (int t = 0; t < x.RowCount; t++)
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
                    float a = v[i];
                    float b = v[i + half];
                    v[i] = (a * cos[i]) - (b * sin[i]);
                    v[i + half] = (b * cos[i]) + (a * sin[i]);
                }
            }
        }
    }

    public void RepeatKv(Tensor x, int kvHeads, int headDim, int groups, Tensor y)
    {
        if (x.RowLength != kvHeads * headDim || y.RowLength != kvHeads * groups * headDim || x.RowCount != y.RowCount)
        {
            throw new ArgumentException($"RepeatKv: x {x.ShapeText}, y {y.ShapeText} for {kvHeads} KV heads × {groups}");
        }

        var xs = F(x);
        var ys = F(y);
        for (int t = 0; t < x.RowCount; t++)
        {
            for (int h = 0; h < kvHeads * groups; h++)
            {
                xs.Slice((t * x.RowLength) + (h / groups * headDim), headDim)
                    .CopyTo(ys.Slice((t * y.RowLength) + (h * headDim), headDim));
            }
        }
    }

    public void Attention(Tensor q, Tensor kCache, Tensor vCache, int heads, int kvHeads, int headDim, int startPosition, Tensor y)
    {
        int tokens = q.RowCount;
        int kvWidth = kvHeads * headDim;
        int width = heads * headDim;
        if (q.RowLength != width || kCache.RowLength != kvWidth || vCache.RowLength != kvWidth
            || startPosition + tokens > kCache.RowCount || heads % kvHeads != 0)
        {
            throw new ArgumentException($"Attention: q {q.ShapeText}, cache {kCache.ShapeText}, start {startPosition}");
        }

        int groups = heads / kvHeads;
        float scale = 1f / MathF.Sqrt(headDim);
        var qc = Cpu(q);
        var kc = Cpu(kCache);
        var vc = Cpu(vCache);
        var yc = Cpu(y);
        For(tokens * heads, (long)(startPosition + tokens) * headDim * 2, item =>
        {
            int t = item / heads;
            int h = item % heads;
            int kvh = h / groups;
            int length = startPosition + t + 1;
            var qs = qc.Floats.Slice((t * width) + (h * headDim), headDim);
            var ks = kc.Floats;
            var vs = vc.Floats;
            var scores = new float[length];
            for (int j = 0; j < length; j++)
            {
                scores[j] = TensorPrimitives.Dot(qs, ks.Slice((j * kvWidth) + (kvh * headDim), headDim)) * scale;
            }

            TensorPrimitives.SoftMax(scores, scores);
            var output = yc.Floats.Slice((t * width) + (h * headDim), headDim);
            output.Clear();
            for (int j = 0; j < length; j++)
            {
                TensorPrimitives.MultiplyAdd(vs.Slice((j * kvWidth) + (kvh * headDim), headDim), scores[j], output, output);
            }
        });
    }
}
