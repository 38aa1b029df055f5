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
    /// memory), the group takes the block's maximum, rescales the running sum and output by e^(old max − new max) and
    /// adds e^(s − max) and Σ p·v (each thread owns output elements i ≡ thread mod group size). Any group and head size
    /// up to <see cref="MaxHeadDim"/>. Grid: T · H groups.
    /// </summary>
    public static void AttentionFused(ArrayView<float> q, ArrayView<float> kCache, ArrayView<float> vCache, int heads, int kvHeads, int n,
        int start, float scale, ArrayView<float> y)
    {
        var qs = SharedMemory.Allocate<float>(MaxHeadDim);
        var output = SharedMemory.Allocate<float>(MaxHeadDim);
        var probabilities = SharedMemory.Allocate<float>(GroupedKernels.MaxGroupSize);
        var scratch = SharedMemory.Allocate<float>(GroupedKernels.MaxWarpsPerGroup);
        int row = Grid.IdxX;
        int h = row % heads;
        int t = row / heads;
        int kvh = h / (heads / kvHeads);
        int tid = Group.IdxX;
        int threads = Group.DimX;
        int length = start + t + 1;
        long qo = (long)row * n;
        long kvStride = (long)kvHeads * n;
        long kvo = (long)kvh * n;
        for (int i = tid; i < n; i += threads)
        {
            qs[i] = q[qo + i];
            output[i] = 0f;
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
                float dot = 0f;
                for (int d = 0; d < n; d++)
                {
                    dot += qs[d] * kCache[ko + d];
                }

                s = dot * scale;
            }

            // The first block holds position 0, so the maximum is finite from the first block on.
            float next = MathF.Max(top, KernelMath.GroupMax(s, scratch));
            float p = j < length ? MathF.Exp(s - next) : 0f;
            probabilities[tid] = p;
            float correction = MathF.Exp(top - next);
            sum = (sum * correction) + KernelMath.GroupSum(p, scratch);
            top = next;
            int count = IntrinsicMath.Min(threads, length - j0);
            for (int i = tid; i < n; i += threads)
            {
                float acc = output[i] * correction;
                long vo = ((long)j0 * kvStride) + kvo + i;
                for (int jj = 0; jj < count; jj++)
                {
                    acc += probabilities[jj] * vCache[vo + (jj * kvStride)];
                }

                output[i] = acc;
            }
        }

        for (int i = tid; i < n; i += threads)
        {
            y[qo + i] = output[i] / sum;
        }
    }
}
