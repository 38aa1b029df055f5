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
        int kvh = h / (heads / kvHeads);
        int tid = Group.IdxX;
        int threads = Group.DimX;
        int length = position[0] + start + t + 1;
        long qo = (long)row * n;
        long kvStride = (long)kvHeads * n;
        long kvo = (long)kvh * n;
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
        for (int j0 = 0; j0 < length; j0 += threads)
        {
            int j = j0 + tid;
            float s = float.NegativeInfinity;
            if (j < length)
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

            // The first block holds position 0, so the maximum is finite from the first block on.
            float next = MathF.Max(top, KernelMath.GroupMax(s, scratch));
            float p = j < length ? MathF.Exp(s - next) : 0f;
            probabilities[tid] = p;
            float correction = MathF.Exp(top - next);
            sum = (sum * correction) + KernelMath.GroupSum(p, scratch);
            top = next;
            int count = IntrinsicMath.Min(threads, length - j0);
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
        for (int i = tid; i < n; i += threads)
        {
            float total = output[i];
            if (n < threads)
            {
                for (int r = 1; r < slices; r++)
                {
                    total += output[(r * n) + i];
                }
            }

            y[qo + i] = total / sum;
        }
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
