using ILGPU;

namespace Radlads.Ilgpu.Kernels;

/// <summary>
/// The fused decode ops (<see cref="Ops.IOps.AddRmsNorm"/>, <see cref="Ops.IOps.ScaleMultiply"/>,
/// <see cref="Ops.IOps.RopeExpand"/>, <see cref="Ops.IOps.ExpandKv"/>): each computes with exactly the expressions of the
/// kernels it replaces (<see cref="GroupedKernels.RmsNorm"/> after <see cref="ElementwiseKernels.Add"/>,
/// <see cref="ElementwiseKernels.Scale"/> then <see cref="ElementwiseKernels.Multiply"/>, <see cref="ElementwiseKernels.Rope"/>
/// and <see cref="ElementwiseKernels.RepeatKv"/>), so fused and unfused give the same bits on one accelerator.
/// </summary>
public static class FusedKernels
{
    /// <summary>
    /// One group per row of h [T, C]: h = h + branch (written back), then y = w ⊙ h / sqrt(mean(h²) + eps), the sums in
    /// the order of <see cref="GroupedKernels.RmsNorm"/> (launched with the same group size). y may alias branch (each
    /// element is read by the thread that writes it), never h.
    /// </summary>
    public static void AddRmsNorm(ArrayView<float> h, ArrayView<float> branch, WeightView weight, float eps, int c, ArrayView<float> y)
    {
        var scratch = SharedMemory.Allocate<float>(GroupedKernels.MaxWarpsPerGroup);
        int o = Grid.IdxX * c;
        float sum = 0f;
        for (int i = Group.IdxX; i < c; i += Group.DimX)
        {
            float v = h[o + i] + branch[o + i];
            h[o + i] = v;
            sum += v * v;
        }

        sum = KernelMath.GroupSum(sum, scratch);
        float inv = 1f / MathF.Sqrt((sum / c) + eps);
        for (int i = Group.IdxX; i < c; i += Group.DimX)
        {
            y[o + i] = h[o + i] * inv * weight.Load(i);
        }
    }

    /// <summary>y = (a · s) ⊙ b, each product rounded to fp32 as Scale then Multiply round it. y may alias a.</summary>
    public static void ScaleMultiply(Index1D i, ArrayView<float> a, float s, ArrayView<float> b, ArrayView<float> y)
    {
        float scaled = a[i] * s;
        y[i] = scaled * b[i];
    }

    /// <summary>kh, vh head h = k, v head ⌊h / groups⌋: one thread per element of kh [T, KVH·groups·N].</summary>
    public static void ExpandKv(Index1D idx, ArrayView<float> k, ArrayView<float> v, int kvHeads, int n, int groups,
        ArrayView<float> kh, ArrayView<float> vh)
    {
        int heads = kvHeads * groups;
        int i = idx % n;
        int r = idx / n;
        int h = r % heads;
        int t = r / heads;
        int source = (t * kvHeads * n) + (h / groups * n) + i;
        kh[idx] = k[source];
        vh[idx] = v[source];
    }

    /// <summary>
    /// Rotate-half RoPE in place on r [T, H·N] and k [T, KVH·N], then (expand ≠ 0) kh, vh [T, H·N] = the G = H / KVH
    /// copies of the rotated k and of v. One thread per (token, KV head, pair i): it rotates its k pair and the pair of
    /// each of the KV head's G query heads, and writes the copies, so no thread reads an element another one writes.
    /// Positions, tables and arithmetic (<see cref="KernelMath.RopePair"/>) are those of <see cref="ElementwiseKernels.Rope"/>
    /// (row position[0] + offset + t).
    /// </summary>
    public static void RopeExpand(Index1D idx, ArrayView<float> r, ArrayView<float> k, ArrayView<float> v, ArrayView<float> cos,
        ArrayView<float> sin, ArrayView<int> position, int offset, int heads, int kvHeads, int n, int expand,
        ArrayView<float> kh, ArrayView<float> vh)
    {
        int half = n / 2;
        int i = idx % half;
        int tg = idx / half;
        int g = tg % kvHeads;
        int t = tg / kvHeads;
        int row = position[0] + offset + t;
        float c = cos[(row * half) + i];
        float s = sin[(row * half) + i];
        int ko = (t * kvHeads * n) + (g * n);
        var (ka, kb) = KernelMath.RopePair(k[ko + i], k[ko + i + half], c, s);
        k[ko + i] = ka;
        k[ko + i + half] = kb;
        float va = 0f;
        float vb = 0f;
        if (expand != 0)
        {
            va = v[ko + i];
            vb = v[ko + i + half];
        }

        int groups = heads / kvHeads;
        for (int j = 0; j < groups; j++)
        {
            int ro = (t * heads * n) + (((g * groups) + j) * n);
            var (qa, qb) = KernelMath.RopePair(r[ro + i], r[ro + i + half], c, s);
            r[ro + i] = qa;
            r[ro + i + half] = qb;
            if (expand != 0)
            {
                kh[ro + i] = ka;
                kh[ro + i + half] = kb;
                vh[ro + i] = va;
                vh[ro + i + half] = vb;
            }
        }
    }
}
