using ILGPU;

namespace Radlads.Ilgpu.Kernels;

/// <summary>Attention steps 1 and 3 and the Wkv6 recurrence: one thread per independent output, no reductions.</summary>
public static class SequenceKernels
{
    /// <summary>
    /// Attention, step 1 of 3: scores[(t·H + h)·L + j] = (q[t, h] · k[j, h / groups]) · scale for j ≤ start + t
    /// (longer rows are left unwritten and never read). Launched over rows·H·L.
    /// </summary>
    public static void AttentionScores(Index1D idx, ArrayView<float> q, ArrayView<float> kCache, int heads, int kvHeads, int n,
        int stride, int start, float scale, ArrayView<float> scores)
    {
        int j = idx % stride;
        int row = idx / stride;
        int h = row % heads;
        int t = row / heads;
        if (j > start + t)
        {
            return;
        }

        int kvh = h / (heads / kvHeads);
        int qo = row * n;
        long ko = ((long)j * kvHeads * n) + (kvh * n);
        float dot = 0f;
        for (int d = 0; d < n; d++)
        {
            dot += q[qo + d] * kCache[ko + d];
        }

        scores[idx] = dot * scale;
    }

    /// <summary>
    /// Attention, step 3 of 3: y[t, h, i] = Σ_{j ≤ start + t} p[t, h, j] · v[j, h / groups, i]. Launched over rows·H·N;
    /// consecutive threads read consecutive elements of a value row.
    /// </summary>
    public static void AttentionOutput(Index1D idx, ArrayView<float> scores, ArrayView<float> vCache, int heads, int kvHeads, int n,
        int stride, int start, ArrayView<float> y)
    {
        int i = idx % n;
        int row = idx / n;
        int h = row % heads;
        int t = row / heads;
        int kvh = h / (heads / kvHeads);
        int length = start + t + 1;
        int po = row * stride;
        long vo = (kvh * n) + i;
        long vStride = (long)kvHeads * n;
        float acc = 0f;
        for (int j = 0; j < length; j++)
        {
            acc += scores[po + j] * vCache[vo + (j * vStride)];
        }

        y[idx] = acc;
    }

    /// <summary>
    /// GLA recurrence of RAD-RWKV6, state S [H, N_k, N_v] key-major, one thread per value column (h, j), which owns
    /// S[:, j] (consecutive threads touch consecutive addresses): S[i,j] ← w_i·S[i,j] + k_i·v_j, then
    /// y_j = Σ_i (scale·r_i)·S[i,j], for t = 0 .. T − 1. Launched over H·N.
    /// </summary>
    public static void Wkv6(Index1D idx, ArrayView<float> r, ArrayView<float> k, ArrayView<float> v, ArrayView<float> w,
        ArrayView<float> state, float scale, int tokens, int heads, int n, ArrayView<float> y)
    {
        int h = idx / n;
        int j = idx % n;
        long s = ((long)h * n * n) + j;
        int width = heads * n;
        for (int t = 0; t < tokens; t++)
        {
            int o = (t * width) + (h * n);
            float vj = v[o + j];
            float acc = 0f;
            for (int i = 0; i < n; i++)
            {
                long p = s + ((long)i * n);
                float value = (state[p] * w[o + i]) + (k[o + i] * vj);
                state[p] = value;
                acc += scale * r[o + i] * value;
            }

            y[o + j] = acc;
        }
    }

    /// <summary>
    /// MatMul with W [M, K], one thread per output (t, j) computing the whole dot product: no warp shuffles or barriers,
    /// which is what ILGPU's CPU simulator runs fastest (a GPU prefers <see cref="GroupedKernels.MatMulOutIn"/>).
    /// Launched over T·M.
    /// </summary>
    public static void MatMulOutInDot(Index1D idx, ArrayView<float> x, WeightView weight, WeightView bias, int hasBias, int k, int m, ArrayView<float> y)
    {
        int t = idx / m;
        int j = idx % m;
        long row = (long)j * k;
        int xo = t * k;
        float acc = 0f;
        for (int kk = 0; kk < k; kk++)
        {
            acc += weight.Load(row + kk) * x[xo + kk];
        }

        y[idx] = acc + (hasBias != 0 ? bias.Load(j) : 0f);
    }

    /// <summary>
    /// The Wkv7 recurrence with one thread per state row (h, i) and serial loops over j: the CPU simulator's variant of
    /// <see cref="GroupedKernels.Wkv7"/> (same maths, no warp shuffles, the same optional scale and gate). Launched over H·N.
    /// </summary>
    public static void Wkv7Rows(Index1D row, ArrayView<float> r, ArrayView<float> w, ArrayView<float> k, ArrayView<float> v, ArrayView<float> a,
        ArrayView<float> b, ArrayView<float> state, int tokens, int heads, int n, ArrayView<float> y, float scale, ArrayView<float> gate,
        int gated)
    {
        int h = row / n;
        int i = row % n;
        long s = ((long)h * n * n) + ((long)i * n);
        int width = heads * n;
        for (int t = 0; t < tokens; t++)
        {
            int o = (t * width) + (h * n);
            float sa = 0f;
            for (int j = 0; j < n; j++)
            {
                sa += a[o + j] * state[s + j];
            }

            float vi = v[o + i];
            float acc = 0f;
            for (int j = 0; j < n; j++)
            {
                float value = (state[s + j] * w[o + j]) + (k[o + j] * vi) + (sa * b[o + j]);
                state[s + j] = value;
                acc += value * r[o + j];
            }

            y[o + i] = gated != 0 ? GroupedKernels.ScaledGated(acc, scale, gate[o + i]) : acc;
        }
    }

    /// <summary>
    /// MatMul with W [K, M] (y = x·W + b), one thread per output (t, j): the CPU simulator's variant of
    /// <see cref="GroupedKernels.MatMulInOut"/> (no barrier). Launched over T·M.
    /// </summary>
    public static void MatMulInOutDot(Index1D idx, ArrayView<float> x, WeightView weight, WeightView bias, int hasBias, int k, int m, ArrayView<float> y)
    {
        int t = idx / m;
        int j = idx % m;
        int xo = t * k;
        float acc = 0f;
        for (int kk = 0; kk < k; kk++)
        {
            acc += x[xo + kk] * weight.Load(((long)kk * m) + j);
        }

        y[idx] = acc + (hasBias != 0 ? bias.Load(j) : 0f);
    }
}
