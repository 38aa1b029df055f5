using ILGPU;

namespace Radlads.Ilgpu.Kernels;

/// <summary>Causal GQA attention in one launch (online softmax), replacing the three-launch scores/softmax/output path.</summary>
public static class AttentionKernels
{
    /// <summary>Largest head dim the fused kernel takes (its query and output live in shared memory).</summary>
    public const int MaxHeadDim = 512;

    /// <summary>
    /// One group per (token t, head h): y[t, h] = Σ_{j ≤ start + t} softmax_j(q·k_j · scale) v_j with k, v of KV head
    /// ⌊h / groups⌋. The positions go in blocks of one per thread: each thread scores its position (q from shared
    /// memory), the group takes the block's maximum, rescales the running sums by e^(old max − new max) and adds
    /// e^(s − max). For Σ p·v the group splits into ⌊threads / N⌋ slices (at least one) that take every slice-th position
    /// of the block; thread (slice, i) keeps its running sum for output element i (and i + threads, … when N exceeds the
    /// group) in shared memory, and the slices are added in order at the end. Any group size and N up to
    /// <see cref="MaxHeadDim"/>. Grid: T · H groups, whatever the position. Row t sits at position[0] + start + t: eager
    /// calls pass a device zero and their start, a recorded decode step the step buffer's position and its start relative
    /// to the recording's (as <see cref="ElementwiseKernels.Rope"/>), so a replay attends to the replayed length.
    /// </summary>
    public static void AttentionFused(ArrayView<float> q, ArrayView<float> kCache, ArrayView<float> vCache, int heads, int kvHeads, int n,
        ArrayView<int> position, int start, float scale, ArrayView<float> y)
    {
        var qs = SharedMemory.Allocate<float>(MaxHeadDim);
        var output = SharedMemory.Allocate<float>(GroupedKernels.MaxGroupSize);
        var probabilities = SharedMemory.Allocate<float>(GroupedKernels.MaxGroupSize);
        var scratch = SharedMemory.Allocate<float>(GroupedKernels.MaxWarpsPerGroup);
        int row = Grid.IdxX;
        int h = row % heads;
        int t = row / heads;
        int length = position[0] + start + t + 1;
        var softmax = Attend(qs, output, probabilities, scratch, q, (long)row * n, kCache, vCache, (long)(h / (heads / kvHeads)) * n,
            (long)kvHeads * n, n, 0, length, scale);
        for (int i = Group.IdxX; i < n; i += Group.DimX)
        {
            y[((long)row * n) + i] = Unnormalised(output, n, i) / softmax.Sum;
        }
    }

    /// <summary>
    /// Decode (one token), split over the cache as flash decoding: group (h, s) of H · <paramref name="splits"/> takes
    /// positions [s·chunk, min((s + 1)·chunk, length)) of head h with <see cref="AttentionFused"/>'s online softmax and
    /// writes partial[h, s] = (max, Σ e^(score − max), Σ e^(score − max)·v [N]) for <see cref="AttentionDecodeCombine"/>.
    /// length = position[0] + start + 1, read on the device as in <see cref="AttentionFused"/>; the grid is sized for the
    /// cache's rows (what a recorded step may reach), and groups past the live length return at once. Many groups per
    /// head instead of one: at 0.5B (14 heads) the fused kernel left most of a GPU idle.
    /// </summary>
    public static void AttentionDecodeSplit(ArrayView<float> q, ArrayView<float> kCache, ArrayView<float> vCache, int heads, int kvHeads, int n,
        ArrayView<int> position, int start, int chunk, int splits, float scale, ArrayView<float> partial)
    {
        var qs = SharedMemory.Allocate<float>(MaxHeadDim);
        var output = SharedMemory.Allocate<float>(GroupedKernels.MaxGroupSize);
        var probabilities = SharedMemory.Allocate<float>(GroupedKernels.MaxGroupSize);
        var scratch = SharedMemory.Allocate<float>(GroupedKernels.MaxWarpsPerGroup);
        int h = Grid.IdxX % heads;
        int split = Grid.IdxX / heads;
        int length = position[0] + start + 1;
        int from = split * chunk;
        if (from >= length)
        {
            return; // the whole group: past the live length (the combine reads only live splits)
        }

        var softmax = Attend(qs, output, probabilities, scratch, q, (long)h * n, kCache, vCache, (long)(h / (heads / kvHeads)) * n,
            (long)kvHeads * n, n, from, IntrinsicMath.Min(from + chunk, length), scale);
        long o = ((long)h * splits + split) * (n + 2);
        if (Group.IdxX == 0)
        {
            partial[o] = softmax.Top;
            partial[o + 1] = softmax.Sum;
        }

        for (int i = Group.IdxX; i < n; i += Group.DimX)
        {
            partial[o + 2 + i] = Unnormalised(output, n, i);
        }
    }

    /// <summary>
    /// Combines <see cref="AttentionDecodeSplit"/>'s live splits of head h = group: y[h, i] = Σ_s e^(max_s − M)·acc_s[i] /
    /// Σ_s e^(max_s − M)·sum_s with M the largest max_s, the splits added in order.
    /// </summary>
    public static void AttentionDecodeCombine(ArrayView<float> partial, int heads, int n, ArrayView<int> position, int start, int chunk, int splits,
        ArrayView<float> y)
    {
        int h = Grid.IdxX;
        int length = position[0] + start + 1;
        int live = IntrinsicMath.Min(splits, (length + chunk - 1) / chunk);
        long o = (long)h * splits * (n + 2);
        float top = float.NegativeInfinity;
        for (int s = 0; s < live; s++)
        {
            top = MathF.Max(top, partial[o + ((long)s * (n + 2))]);
        }

        float total = 0f;
        for (int s = 0; s < live; s++)
        {
            long p = o + ((long)s * (n + 2));
            total += partial[p + 1] * MathF.Exp(partial[p] - top);
        }

        for (int i = Group.IdxX; i < n; i += Group.DimX)
        {
            float acc = 0f;
            for (int s = 0; s < live; s++)
            {
                long p = o + ((long)s * (n + 2));
                acc += partial[p + 2 + i] * MathF.Exp(partial[p] - top);
            }

            y[((long)h * n) + i] = acc / total;
        }
    }

    /// <summary>The running maximum and sum of an online softmax.</summary>
    private struct Softmax
    {
        public float Top;
        public float Sum;
    }

    /// <summary>
    /// The online softmax of one query row (q[qo …]) over cached positions [from, to) of the KV head at kvo, as
    /// <see cref="AttentionFused"/> describes: every thread of the group must call it (barriers). Leaves Σ e^(s − max)·v
    /// in <paramref name="output"/> (read it with <see cref="Unnormalised"/>) and returns the maximum and Σ e^(s − max).
    /// </summary>
    private static Softmax Attend(ArrayView<float> qs, ArrayView<float> output, ArrayView<float> probabilities, ArrayView<float> scratch,
        ArrayView<float> q, long qo, ArrayView<float> kCache, ArrayView<float> vCache, long kvo, long kvStride, int n, int from, int to, float scale)
    {
        int tid = Group.IdxX;
        int threads = Group.DimX;
        // Slices of the position block for Σ p·v: thread (slice, i) with i < N; with N ≥ threads one slice, i = tid + r·threads.
        int slices = IntrinsicMath.Max(1, threads / n);
        int slice = tid / n;
        int lane = tid % n;
        bool accumulates = n >= threads || slice < slices;
        for (int i = tid; i < n; i += threads)
        {
            qs[i] = q[qo + i];
        }

        if (n >= threads)
        {
            for (int i = tid; i < n; i += threads)
            {
                output[i] = 0f;
            }
        }
        else if (accumulates)
        {
            output[tid] = 0f;
        }

        Group.Barrier();
        float top = float.NegativeInfinity;
        float sum = 0f;
        for (int j0 = from; j0 < to; j0 += threads)
        {
            int j = j0 + tid;
            float s = float.NegativeInfinity;
            if (j < to)
            {
                long ko = ((long)j * kvStride) + kvo;
                float d0 = 0f, d1 = 0f, d2 = 0f, d3 = 0f;
                int d = 0;
                for (; d + 3 < n; d += 4)
                {
                    d0 += qs[d] * kCache[ko + d];
                    d1 += qs[d + 1] * kCache[ko + d + 1];
                    d2 += qs[d + 2] * kCache[ko + d + 2];
                    d3 += qs[d + 3] * kCache[ko + d + 3];
                }

                for (; d < n; d++)
                {
                    d0 += qs[d] * kCache[ko + d];
                }

                s = (d0 + d1 + (d2 + d3)) * scale;
            }

            // The first block holds position `from` < to, so the maximum is finite from the first block on.
            float next = MathF.Max(top, KernelMath.GroupMax(s, scratch));
            float p = j < to ? MathF.Exp(s - next) : 0f;
            probabilities[tid] = p;
            float correction = MathF.Exp(top - next);
            sum = (sum * correction) + KernelMath.GroupSum(p, scratch);
            top = next;
            int count = IntrinsicMath.Min(threads, to - j0);
            if (n >= threads)
            {
                for (int i = tid; i < n; i += threads)
                {
                    output[i] = (output[i] * correction) + WeightedValues(probabilities, vCache, ((long)j0 * kvStride) + kvo + i, kvStride, 0, 1, count);
                }
            }
            else if (accumulates)
            {
                output[tid] = (output[tid] * correction) + WeightedValues(probabilities, vCache, ((long)j0 * kvStride) + kvo + lane, kvStride, slice, slices, count);
            }
        }

        Group.Barrier();
        var result = default(Softmax);
        result.Top = top;
        result.Sum = sum;
        return result;
    }

    /// <summary>Σ e^(s − max)·v of output element i that <see cref="Attend"/> left in shared memory (its slices added in order).</summary>
    private static float Unnormalised(ArrayView<float> output, int n, int i)
    {
        float total = output[i];
        int slices = IntrinsicMath.Max(1, Group.DimX / n);
        if (n < Group.DimX)
        {
            for (int r = 1; r < slices; r++)
            {
                total += output[(r * n) + i];
            }
        }

        return total;
    }

    /// <summary>Σ p[jj] · v[o + jj·stride] over jj = first, first + step, … &lt; count, four loads in flight.</summary>
    private static float WeightedValues(ArrayView<float> probabilities, ArrayView<float> vCache, long o, long stride, int first, int step, int count)
    {
        float a0 = 0f, a1 = 0f, a2 = 0f, a3 = 0f;
        int jj = first;
        for (; jj + (3 * step) < count; jj += 4 * step)
        {
            float v0 = vCache[o + (jj * stride)];
            float v1 = vCache[o + ((jj + step) * stride)];
            float v2 = vCache[o + ((jj + (2 * step)) * stride)];
            float v3 = vCache[o + ((jj + (3 * step)) * stride)];
            a0 += probabilities[jj] * v0;
            a1 += probabilities[jj + step] * v1;
            a2 += probabilities[jj + (2 * step)] * v2;
            a3 += probabilities[jj + (3 * step)] * v3;
        }

        for (; jj < count; jj += step)
        {
            a0 += probabilities[jj] * vCache[o + (jj * stride)];
        }

        return a0 + a1 + (a2 + a3);
    }
}
