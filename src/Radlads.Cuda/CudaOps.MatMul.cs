using Radlads.Checkpoints;
using Radlads.Ops;

namespace Radlads.Cuda;

internal sealed unsafe partial class CudaOps
{
    private const int Tile = 64;

    public void MatMul(Tensor x, Tensor weight, Tensor? bias, Tensor y, WeightLayout layout = WeightLayout.OutIn)
    {
        backend.Enter();
        var w = C(weight);
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

        var (pb, bType) = bias is null ? (0UL, 0) : Param(bias, m);
        if (t == 0 || m == 0)
        {
            return;
        }

        ulong px = P(x), pw = w.Pointer, py = P(y);
        int dtype = (int)w.DType;
        if (t == 1 && layout == WeightLayout.OutIn)
        {
            // Decode: one warp per output row, streaming the weights with 16-byte loads where alignment allows.
            int perLoad = w.DType == DType.F32 ? 4 : 8;
            bool vector = k % perLoad == 0 && pw % 16 == 0 && px % 16 == 0;
            var function = vector ? K.GemvVector[dtype] : K.GemvScalar[dtype];
            void** g = stackalloc void*[] { &px, &pw, &pb, &bType, &py, &k, &m };
            const int rowsPerBlock = (int)Threads / 32;
            backend.Launch(function, vector ? "gemv_vec" : "gemv_scalar", (uint)((m + rowsPerBlock - 1) / rowsPerBlock), 1, Threads, 0, g);
            return;
        }

        var tiled = layout == WeightLayout.OutIn ? K.MatMulOutIn[dtype] : K.MatMulInOut[dtype];
        // gridDim.y is at most 65535: very long prefills go in slices of rows.
        const int maxRowsPerLaunch = 65535 * Tile;
        ulong xs = px, ys = py;
        int rows = 0;
        void** a = stackalloc void*[] { &xs, &pw, &pb, &bType, &ys, &rows, &k, &m };
        for (int start = 0; start < t; start += maxRowsPerLaunch)
        {
            rows = Math.Min(maxRowsPerLaunch, t - start);
            xs = px + ((ulong)start * (ulong)k * sizeof(float));
            ys = py + ((ulong)start * (ulong)m * sizeof(float));
            backend.Launch(tiled, "matmul_tiled", (uint)((m + Tile - 1) / Tile), (uint)((rows + Tile - 1) / Tile), Threads, 0, a);
        }
    }
}
