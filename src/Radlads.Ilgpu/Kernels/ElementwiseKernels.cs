using ILGPU;

namespace Radlads.Ilgpu.Kernels;

/// <summary>
/// One thread per output element (implicitly grouped kernels, launched over the element count). Each element is
/// read before it is written by the same thread, so outputs may alias inputs.
/// </summary>
public static class ElementwiseKernels
{
    public static void Add(Index1D i, ArrayView<float> a, ArrayView<float> b, ArrayView<float> y) => y[i] = a[i] + b[i];

    public static void Multiply(Index1D i, ArrayView<float> a, ArrayView<float> b, ArrayView<float> y) => y[i] = a[i] * b[i];

    public static void Scale(Index1D i, ArrayView<float> x, float s, ArrayView<float> y) => y[i] = x[i] * s;

    public static void Tanh(Index1D i, ArrayView<float> x, ArrayView<float> y) => y[i] = KernelMath.Tanh(x[i]);

    public static void Sigmoid(Index1D i, ArrayView<float> x, ArrayView<float> y) => y[i] = KernelMath.Sigmoid(x[i]);

    /// <summary>y = σ(x + bias[column]).</summary>
    public static void AddSigmoid(Index1D i, ArrayView<float> x, WeightView bias, int c, ArrayView<float> y) =>
        y[i] = KernelMath.Sigmoid(x[i] + bias.Load(i % c));

    /// <summary>y = silu(gate) ⊙ up = (σ(g)·g)·u.</summary>
    public static void SwiGlu(Index1D i, ArrayView<float> gate, ArrayView<float> up, ArrayView<float> y)
    {
        float g = gate[i];
        y[i] = KernelMath.Sigmoid(g) * g * up[i];
    }

    /// <summary>y[t, j] = table[ids[t], j]; the host has checked every id against the vocabulary.</summary>
    public static void Embedding(Index1D i, WeightView table, ArrayView<int> ids, int c, ArrayView<float> y)
    {
        int t = i / c;
        y[i] = table.Load(((long)ids[t] * c) + (i % c));
    }

    /// <summary>y head h = x head ⌊h / groups⌋. x [T, KVH·N], y [T, KVH·groups·N].</summary>
    public static void RepeatKv(Index1D idx, ArrayView<float> x, int kvHeads, int n, int groups, ArrayView<float> y)
    {
        int heads = kvHeads * groups;
        int i = idx % n;
        int r = idx / n;
        int h = r % heads;
        int t = r / heads;
        y[idx] = x[(t * kvHeads * n) + (h / groups * n) + i];
    }

    /// <summary>
    /// Rotate-half RoPE in place on x [T, heads·N]: token t at row position[0] + offset + t of the cos and sin tables
    /// [P, N/2] (computed on the host in float64 and rounded to fp32, as the CPU reference does). Eager calls pass a device zero and their start as offset; a recorded decode step passes the step
    /// buffer, where each replay writes its position, and its start relative to the recording's. One kernel for both,
    /// so a replay computes exactly what the eager op does.
    /// </summary>
    public static void Rope(Index1D idx, ArrayView<float> x, ArrayView<float> cos, ArrayView<float> sin, ArrayView<int> position, int offset, int heads, int n)
    {
        int half = n / 2;
        int i = idx % half;
        int th = idx / half;
        int h = th % heads;
        int t = th / heads;
        int o = (t * heads * n) + (h * n);
        int row = position[0] + offset + t;
        float c = cos[(row * half) + i];
        float s = sin[(row * half) + i];
        var (first, second) = KernelMath.RopePair(x[o + i], x[o + i + half], c, s);
        x[o + i] = first;
        x[o + i + half] = second;
    }

    /// <summary>
    /// KV cache append: row position[0] + offset + t of kCache and vCache [S, W] ← row t of k and v [T, W]; one thread
    /// per element of k. The position as <see cref="Rope"/> takes it (eager: a device zero and the start; recorded: the
    /// step buffer and the start relative to the recording's), so a replay writes the replayed position's row.
    /// </summary>
    public static void AppendKv(Index1D idx, ArrayView<float> k, ArrayView<float> v, ArrayView<float> kCache, ArrayView<float> vCache, int w,
        ArrayView<int> position, int offset)
    {
        int t = idx / w;
        int i = idx % w;
        long o = ((long)(position[0] + offset + t) * w) + i;
        kCache[o] = k[idx];
        vCache[o] = v[idx];
    }

    /// <summary>delta[t] = x[t−1] − x[t] with x[−1] = state. The host then copies x[T−1] into the state.</summary>
    public static void TokenShift(Index1D i, ArrayView<float> x, ArrayView<float> state, int c, ArrayView<float> delta)
    {
        float previous = i < c ? state[i] : x[i - c];
        delta[i] = previous - x[i];
    }

    /// <summary>y = x + delta ⊙ mix, mix [C].</summary>
    public static void MixShift(Index1D i, ArrayView<float> x, ArrayView<float> delta, WeightView mix, int c, ArrayView<float> y) =>
        y[i] = (delta[i] * mix.Load(i % c)) + x[i];

    /// <summary>outputs[(i·T + t)·C + j] = x + delta ⊙ (mixes[i] + lora[t, i·R : (i+1)·R] · w2[i]), i = 0..4.</summary>
    public static void Rwkv6Ddlerp(Index1D idx, ArrayView<float> x, ArrayView<float> delta, ArrayView<float> lora, WeightView w2,
        WeightView mixes, int tokens, int c, int rank, ArrayView<float> outputs)
    {
        int j = idx % c;
        int rest = idx / c;
        int t = rest % tokens;
        int i = rest / tokens;
        float mix = mixes.Load((i * c) + j);
        int l = (t * 5 * rank) + (i * rank);
        for (int r = 0; r < rank; r++)
        {
            mix += w2.Load((((long)i * rank) + r) * c + j) * lora[l + r];
        }

        outputs[idx] = (delta[(t * c) + j] * mix) + x[(t * c) + j];
    }

    /// <summary>w = exp(max(−exp(bias + d), −5)); a NaN passes the clamp so that a broken run shows.</summary>
    public static void Rwkv6Decay(Index1D i, ArrayView<float> d, WeightView bias, int a, ArrayView<float> w)
    {
        float logDecay = -MathF.Exp(bias.Load(i % a) + d[i]);
        w[i] = MathF.Exp(float.IsNaN(logDecay) ? logDecay : MathF.Max(logDecay, -5f));
    }

    /// <summary>y = k ⊙ (1 − w).</summary>
    public static void Rwkv6BalanceKeys(Index1D i, ArrayView<float> k, ArrayView<float> w, ArrayView<float> y) => y[i] = k[i] * (1f - w[i]);

    /// <summary>w = exp(scale · σ(w0 + z)), scale = −e^−0.5 rounded to fp32 on the host as the CPU rounds it.</summary>
    public static void Rwkv7Decay(Index1D i, ArrayView<float> z, WeightView w0, float scale, int a, ArrayView<float> w) =>
        w[i] = MathF.Exp(KernelMath.Sigmoid(z[i] + w0.Load(i % a)) * scale);

    /// <summary>y = v + (vFirst − v) ⊙ nu.</summary>
    public static void Rwkv7ValueResidual(Index1D i, ArrayView<float> v, ArrayView<float> vFirst, ArrayView<float> nu, ArrayView<float> y)
    {
        float vi = v[i];
        y[i] = vi + ((vFirst[i] - vi) * nu[i]);
    }
}
