using ILGPU;

namespace Radlads.Ilgpu.Kernels;

/// <summary>
/// Kernels with reductions: explicitly grouped, written for any group size that is a multiple of the warp size
/// and any warp size (32 on NVIDIA, 4 on ILGPU's default CPU simulator), so the same code runs on every accelerator.
/// </summary>
public static class GroupedKernels
{
    /// <summary>Shared floats for a group reduction: one per warp.</summary>
    public const int MaxWarpsPerGroup = 256;

    /// <summary>Largest group the kernels with a shared partial-sum tile accept.</summary>
    public const int MaxGroupSize = 1024;

    /// <summary>One group per row of x [T, C]: y = w ⊙ x / sqrt(mean(x²) + eps). y may alias x.</summary>
    public static void RmsNorm(ArrayView<float> x, WeightView weight, float eps, int c, ArrayView<float> y) =>
        RmsNormRow(x, default, false, weight, eps, c, y);

    /// <summary>
    /// The body of <see cref="RmsNorm"/> and <see cref="FusedKernels.AddRmsNorm"/> (one loop and group sum, so the
    /// same bits): with <paramref name="add"/>, x = x + branch is written back first and normalised.
    /// </summary>
    internal static void RmsNormRow(ArrayView<float> x, ArrayView<float> branch, bool add, WeightView weight, float eps, int c,
        ArrayView<float> y)
    {
        var scratch = SharedMemory.Allocate<float>(MaxWarpsPerGroup);
        int o = Grid.IdxX * c;
        float sum = 0f;
        for (int i = Group.IdxX; i < c; i += Group.DimX)
        {
            float v = x[o + i];
            if (add)
            {
                v += branch[o + i];
                x[o + i] = v;
            }

            sum += v * v;
        }

        sum = KernelMath.GroupSum(sum, scratch);
        float inv = 1f / MathF.Sqrt((sum / c) + eps);
        for (int i = Group.IdxX; i < c; i += Group.DimX)
        {
            y[o + i] = x[o + i] * inv * weight.Load(i);
        }
    }

    /// <summary>One group per (row, group) of x [T, G·D]: mean, then biased variance, both fp32. y may alias x.</summary>
    public static void GroupNorm(ArrayView<float> x, WeightView weight, WeightView bias, int groups, int d, float eps, ArrayView<float> y)
    {
        var scratch = SharedMemory.Allocate<float>(MaxWarpsPerGroup);
        int item = Grid.IdxX;
        int g = item % groups;
        int o = item * d;
        float sum = 0f;
        for (int i = Group.IdxX; i < d; i += Group.DimX)
        {
            sum += x[o + i];
        }

        float mean = KernelMath.GroupSum(sum, scratch) / d;
        float variance = 0f;
        for (int i = Group.IdxX; i < d; i += Group.DimX)
        {
            float e = x[o + i] - mean;
            variance += e * e;
        }

        variance = KernelMath.GroupSum(variance, scratch) / d;
        float inv = 1f / MathF.Sqrt(variance + eps);
        for (int i = Group.IdxX; i < d; i += Group.DimX)
        {
            int p = (g * d) + i;
            y[o + i] = ((x[o + i] - mean) * inv * weight.Load(p)) + bias.Load(p);
        }
    }

    /// <summary>
    /// RAD-RWKV7 keys, one group per (token, head): κ = normalize(k or k ⊙ k_k) with eps 1e-12, removal = −κ,
    /// replacement = κ ⊙ a, k̃ = k ⊙ (1 − w + a) (balanced) or k ⊙ (1 + (a − 1) ⊙ k_a) (stock).
    /// </summary>
    public static void Rwkv7Keys(ArrayView<float> k, ArrayView<float> w, ArrayView<float> a, WeightView keyScale, WeightView iclrMix,
        int width, int n, int balanced, ArrayView<float> removal, ArrayView<float> replacement, ArrayView<float> kTilde) =>
        Rwkv7KeysHead(k, w, a, keyScale, iclrMix, width, n, balanced != 0 ? 1 : 0, removal, replacement, kTilde, default, default, default);

    /// <summary>
    /// The body of <see cref="Rwkv7Keys"/> and <see cref="FusedKernels.Rwkv7KeysValueResidual"/> (one loop and group
    /// sum, so the same bits). Flags: bit 0 balanced keys; bit 1 also v ← v + (vFirst − v) ⊙ nu on the same (token, head).
    /// </summary>
    internal static void Rwkv7KeysHead(ArrayView<float> k, ArrayView<float> w, ArrayView<float> a, WeightView keyScale,
        WeightView iclrMix, int width, int n, int flags, ArrayView<float> removal, ArrayView<float> replacement,
        ArrayView<float> kTilde, ArrayView<float> v, ArrayView<float> vFirst, ArrayView<float> nu)
    {
        var scratch = SharedMemory.Allocate<float>(MaxWarpsPerGroup);
        int item = Grid.IdxX;
        int heads = width / n;
        int h = item % heads;
        int o = item * n;
        int balanced = flags & 1;
        float sum = 0f;
        for (int i = Group.IdxX; i < n; i += Group.DimX)
        {
            float kappa = balanced != 0 ? k[o + i] : k[o + i] * keyScale.Load((h * n) + i);
            sum += kappa * kappa;
        }

        float inv = 1f / MathF.Max(MathF.Sqrt(KernelMath.GroupSum(sum, scratch)), 1e-12f);
        for (int i = Group.IdxX; i < n; i += Group.DimX)
        {
            int p = o + i;
            float kj = k[p];
            float ai = a[p];
            float kappa = (balanced != 0 ? kj : kj * keyScale.Load((h * n) + i)) * inv;
            kTilde[p] = balanced != 0 ? kj * (1f - w[p] + ai) : kj * (1f + ((ai - 1f) * iclrMix.Load((h * n) + i)));
            removal[p] = -kappa;
            replacement[p] = kappa * ai;
            if ((flags & 2) != 0)
            {
                float vi = v[p];
                v[p] = vi + ((vFirst[p] - vi) * nu[p]);
            }
        }
    }

    /// <summary>
    /// MatMul with W [M, K] (Linear, y = x·Wᵀ + b): one warp per output row j, lanes striding over K, four tokens at a
    /// time so each weight element is loaded once per four tokens. Grid: ⌈M / warps per group⌉ groups.
    /// </summary>
    public static void MatMulOutIn(ArrayView<float> x, WeightView weight, WeightView bias, int hasBias, int tokens, int k, int m, ArrayView<float> y)
    {
        int warps = Group.DimX / Warp.WarpSize;
        int j = (Grid.IdxX * warps) + Warp.WarpIdx;
        if (j >= m)
        {
            return;
        }

        int lane = Warp.LaneIdx;
        long row = (long)j * k;
        float b = hasBias != 0 ? bias.Load(j) : 0f;
        for (int t0 = 0; t0 < tokens; t0 += 4)
        {
            int count = IntrinsicMath.Min(4, tokens - t0);
            int x0 = t0 * k;
            float a0 = 0f, a1 = 0f, a2 = 0f, a3 = 0f;
            for (int kk = lane; kk < k; kk += Warp.WarpSize)
            {
                float wv = weight.Load(row + kk);
                a0 += wv * x[x0 + kk];
                if (count > 1)
                {
                    a1 += wv * x[x0 + k + kk];
                    if (count > 2)
                    {
                        a2 += wv * x[x0 + (2 * k) + kk];
                        if (count > 3)
                        {
                            a3 += wv * x[x0 + (3 * k) + kk];
                        }
                    }
                }
            }

            // Only as many reductions as tokens in this chunk (the count is the same for the whole warp).
            a0 = KernelMath.WarpSum(a0);
            if (count > 1)
            {
                a1 = KernelMath.WarpSum(a1);
                if (count > 2)
                {
                    a2 = KernelMath.WarpSum(a2);
                    if (count > 3)
                    {
                        a3 = KernelMath.WarpSum(a3);
                    }
                }
            }

            if (lane == 0)
            {
                y[(t0 * m) + j] = a0 + b;
                if (count > 1)
                {
                    y[((t0 + 1) * m) + j] = a1 + b;
                }

                if (count > 2)
                {
                    y[((t0 + 2) * m) + j] = a2 + b;
                }

                if (count > 3)
                {
                    y[((t0 + 3) * m) + j] = a3 + b;
                }
            }
        }
    }

    /// <summary>
    /// MatMul with W [K, M] (LoRA factors, y = x·W + b): a group covers one token row and one warp-wide block of
    /// output columns; its warps split K, each lane owns a column (consecutive lanes read consecutive weights), and
    /// the partial sums meet in shared memory. Grid: T · ⌈M / warp size⌉ groups.
    /// </summary>
    public static void MatMulInOut(ArrayView<float> x, WeightView weight, WeightView bias, int hasBias, int tokens, int k, int m, ArrayView<float> y)
    {
        var partial = SharedMemory.Allocate<float>(MaxGroupSize);
        int width = Warp.WarpSize;
        int parts = Group.DimX / width;
        int blocks = (m + width - 1) / width;
        int t = Grid.IdxX / blocks;
        int column = ((Grid.IdxX % blocks) * width) + Warp.LaneIdx;
        int part = Warp.WarpIdx;
        float acc = 0f;
        if (column < m)
        {
            int xo = t * k;
            for (int kk = part; kk < k; kk += parts)
            {
                acc += x[xo + kk] * weight.Load(((long)kk * m) + column);
            }
        }

        partial[Group.IdxX] = acc;
        Group.Barrier();
        if (part == 0 && column < m)
        {
            float sum = hasBias != 0 ? bias.Load(column) : 0f;
            for (int p = 0; p < parts; p++)
            {
                sum += partial[(p * width) + Warp.LaneIdx];
            }

            y[(t * m) + column] = sum;
        }
    }

    /// <summary>
    /// Attention, step 2 of 3: softmax in place over the first length = start + t + 1 scores of each (t, head) row of
    /// scores [rows·H, L]; one group per row.
    /// </summary>
    public static void AttentionSoftmax(ArrayView<float> scores, int heads, int stride, int start)
    {
        var scratch = SharedMemory.Allocate<float>(MaxWarpsPerGroup);
        int row = Grid.IdxX;
        int t = row / heads;
        int length = start + t + 1;
        int o = row * stride;
        float top = float.NegativeInfinity;
        for (int j = Group.IdxX; j < length; j += Group.DimX)
        {
            top = MathF.Max(top, scores[o + j]);
        }

        top = KernelMath.GroupMax(top, scratch);
        float sum = 0f;
        for (int j = Group.IdxX; j < length; j += Group.DimX)
        {
            float e = MathF.Exp(scores[o + j] - top);
            scores[o + j] = e;
            sum += e;
        }

        sum = KernelMath.GroupSum(sum, scratch);
        for (int j = Group.IdxX; j < length; j += Group.DimX)
        {
            scores[o + j] = scores[o + j] / sum;
        }
    }

    /// <summary>
    /// Generalised delta rule of RAD-RWKV7, state S [H, N_v, N_k] value-major, one warp per state row (h, i); lanes
    /// stride over j, so the row is read and written with consecutive addresses and stays in the state tensor:
    /// sa = Σ_j a_j S[i,j]; S[i,j] ← S[i,j]·w_j + k_j·v_i + sa·b_j; y_i = Σ_j S[i,j]·r_j, for t = 0 .. T − 1.
    /// Rows are independent, so no group barrier is needed. Grid: ⌈H·N / warps per group⌉ groups. gated ≠ 0
    /// (<see cref="Ops.IOps.Wkv7DecodeScaleGate"/>): y_i = (y_i · scale) · gate_i, rounded as
    /// <see cref="FusedKernels.ScaleMultiply"/> rounds it; gate [T, H·N] like y (otherwise a dummy, never read).
    /// </summary>
    public static void Wkv7(ArrayView<float> r, ArrayView<float> w, ArrayView<float> k, ArrayView<float> v, ArrayView<float> a,
        ArrayView<float> b, ArrayView<float> state, int tokens, int heads, int n, ArrayView<float> y, float scale, ArrayView<float> gate,
        int gated)
    {
        int warps = Group.DimX / Warp.WarpSize;
        int row = (Grid.IdxX * warps) + Warp.WarpIdx;
        if (row >= heads * n)
        {
            return;
        }

        int h = row / n;
        int i = row % n;
        int lane = Warp.LaneIdx;
        long s = ((long)h * n * n) + ((long)i * n);
        int width = heads * n;
        for (int t = 0; t < tokens; t++)
        {
            int o = (t * width) + (h * n);
            float sa = 0f;
            for (int j = lane; j < n; j += Warp.WarpSize)
            {
                sa += a[o + j] * state[s + j];
            }

            sa = KernelMath.WarpSum(sa);
            float vi = v[o + i];
            float acc = 0f;
            for (int j = lane; j < n; j += Warp.WarpSize)
            {
                float value = (state[s + j] * w[o + j]) + (k[o + j] * vi) + (sa * b[o + j]);
                state[s + j] = value;
                acc += value * r[o + j];
            }

            acc = KernelMath.WarpSum(acc);
            if (lane == 0)
            {
                y[o + i] = gated != 0 ? ScaledGated(acc, scale, gate[o + i]) : acc;
            }
        }
    }

    /// <summary>(acc · scale) · g with both products rounded to fp32, as <see cref="FusedKernels.ScaleMultiply"/>.</summary>
    internal static float ScaledGated(float acc, float scale, float g)
    {
        float scaled = acc * scale;
        return scaled * g;
    }
}
