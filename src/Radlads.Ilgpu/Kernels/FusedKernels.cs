using ILGPU;
using ILGPU.Runtime;

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
    public static void AddRmsNorm(ArrayView<float> h, ArrayView<float> branch, WeightView weight, float eps, int c, ArrayView<float> y) =>
        GroupedKernels.RmsNormRow(h, branch, true, weight, eps, c, y);

    /// <summary>
    /// <see cref="GroupedKernels.Rwkv7Keys"/> (the same loops and group sum, so the same bits) and, with
    /// <paramref name="flags"/> bit 1 set, the value residual v ← v + (vFirst − v) ⊙ nu of
    /// <see cref="ElementwiseKernels.Rwkv7ValueResidual"/> on the same (token, head), in one launch. Bit 0: balanced keys.
    /// </summary>
    public static void Rwkv7KeysValueResidual(ArrayView<float> k, ArrayView<float> w, ArrayView<float> a, WeightView keyScale,
        WeightView iclrMix, int width, int n, int flags, ArrayView<float> removal, ArrayView<float> replacement,
        ArrayView<float> kTilde, ArrayView<float> v, ArrayView<float> vFirst, ArrayView<float> nu) =>
        GroupedKernels.Rwkv7KeysHead(k, w, a, keyScale, iclrMix, width, n, flags, removal, replacement, kTilde, v, vFirst, nu);

    /// <summary>
    /// The MLP's gate/up GEMVs and SwiGLU for one token: a group's warps form 2P row slots of
    /// <paramref name="warpsPerRow"/> warps (slots [0, P) rows of W_gate, [P, 2P) the same rows of W_up), each row summed
    /// exactly as <see cref="GemvKernels.GemvOutIn{TW}"/> sums it with that many warps per row (+ 0f for the absent
    /// bias); the sums meet in shared memory and y = σ(g)·g·u as <see cref="ElementwiseKernels.SwiGlu"/> rounds it.
    /// W as 16-byte chunks (K a multiple of 8, f32: 4; W and x aligned). Grid: ⌈F / P⌉ groups, 2P ≥ 2 slots a group.
    /// </summary>
    public static void GateUpSwiGlu<TW>(ArrayView<Floats4> x, ArrayView<Words4> wGate, ArrayView<Words4> wUp, int chunks, int f,
        int warpsPerRow, ArrayView<float> y)
        where TW : struct, IWeightWords =>
        GateUpSwiGluRows<TW>(x.AsAligned16(), wGate, wUp, chunks, f, warpsPerRow, y);

    /// <summary>The largest C <see cref="NormGateUpSwiGlu{TW}"/> keeps in shared memory (16 KB of x).</summary>
    public const int MaxNormGemvC = 4096;

    /// <summary>
    /// The MLP's norm fused into <see cref="GateUpSwiGlu{TW}"/> (T = 1, C ≤ <see cref="MaxNormGemvC"/>): every group
    /// computes s = h + branch (add = 0: s = h, the first layer's plain norm) and x = w ⊙ s / sqrt(mean(s²) + eps) for the
    /// whole row itself, with the loops and group sum of <see cref="GroupedKernels.RmsNormRow"/> (launched with the same
    /// group size, so the same bits as <see cref="AddRmsNorm"/>), into shared memory, then sums its rows exactly as
    /// GateUpSwiGlu does, reading x there. h is updated in place, so each group counts itself in counter[0] after its
    /// reads, and the last group to count writes h = s and normed = x and sets the counter back to 0 (zero between
    /// launches and replays). Each group reads 2·C floats of h and branch instead of C of x, for one launch fewer.
    /// </summary>
    public static void NormGateUpSwiGlu<TW>(ArrayView<float> h, ArrayView<float> branch, int add, WeightView normWeight, float eps,
        ArrayView<float> normed, ArrayView<int> counter, ArrayView<Words4> wGate, ArrayView<Words4> wUp, int c, int f, int warpsPerRow,
        ArrayView<float> y)
        where TW : struct, IWeightWords
    {
        var x = SharedMemory.Allocate<Floats4>(MaxNormGemvC / 4);
        ResidualNormToShared(h, branch, add, normWeight, eps, c, normed, counter, x.Cast<float>());
        GateUpSwiGluRows<TW>(x, wGate, wUp, c / default(TW).PerLoad, f, warpsPerRow, y);
    }

    /// <summary>
    /// The mixer's input norm fused into its first projection (q): the norm of <see cref="NormGateUpSwiGlu{TW}"/>, then
    /// the rows of <see cref="GemvKernels.GemvOutIn{TW}"/> reading x from shared memory (the same bits as AddRmsNorm, or
    /// RmsNorm with add = 0, then MatMul); k and v then read the normed row the last group wrote.
    /// </summary>
    public static void NormGemvOutIn<TW>(ArrayView<float> h, ArrayView<float> branch, int add, WeightView normWeight, float eps,
        ArrayView<float> normed, ArrayView<int> counter, ArrayView<Words4> weight, WeightView bias, int hasBias, int c, int m,
        int warpsPerRow, ArrayView<float> y)
        where TW : struct, IWeightWords
    {
        var x = SharedMemory.Allocate<Floats4>(MaxNormGemvC / 4);
        ResidualNormToShared(h, branch, add, normWeight, eps, c, normed, counter, x.Cast<float>());
        GemvKernels.GemvOutInRows<TW>(x, weight, bias, hasBias, c / default(TW).PerLoad, m, warpsPerRow, y);
    }

    /// <summary>
    /// The norm of <see cref="NormGateUpSwiGlu{TW}"/> and <see cref="NormGemvOutIn{TW}"/>: x [C] (shared) = RmsNorm(h + branch) as RmsNormRow computes it;
    /// the group that counts last in counter[0] writes h and normed for the row and resets the counter.
    /// </summary>
    internal static void ResidualNormToShared(ArrayView<float> h, ArrayView<float> branch, int add, WeightView weight, float eps, int c,
        ArrayView<float> normed, ArrayView<int> counter, ArrayView<float> x)
    {
        var scratch = SharedMemory.Allocate<float>(GroupedKernels.MaxWarpsPerGroup);
        var last = SharedMemory.Allocate<int>(1);
        float sum = 0f;
        for (int i = Group.IdxX; i < c; i += Group.DimX)
        {
            float v = h[i];
            if (add != 0)
            {
                v += branch[i];
            }

            sum += v * v;
        }

        sum = KernelMath.GroupSum(sum, scratch);
        float inv = 1f / MathF.Sqrt((sum / c) + eps);
        for (int i = Group.IdxX; i < c; i += Group.DimX)
        {
            float v = h[i];
            if (add != 0)
            {
                v += branch[i];
            }

            x[i] = v * inv * weight.Load(i);
        }

        // x complete; this group's reads of h and branch are done.
        Group.Barrier();
        if (Group.IdxX == 0)
        {
            MemoryFence.DeviceLevel();
            int before = Atomic.Add(ref counter[0], 1);
            last[0] = before == Grid.DimX - 1 ? 1 : 0;
            if (last[0] != 0)
            {
                counter[0] = 0;
            }
        }

        Group.Barrier();
        if (last[0] == 0)
        {
            return;
        }

        MemoryFence.DeviceLevel();
        for (int i = Group.IdxX; i < c; i += Group.DimX)
        {
            if (add != 0)
            {
                h[i] += branch[i];
            }

            normed[i] = x[i];
        }
    }

    /// <summary>The body of <see cref="GateUpSwiGlu{TW}"/> and <see cref="NormGateUpSwiGlu{TW}"/>: x in global or shared memory.</summary>
    internal static void GateUpSwiGluRows<TW>(ArrayView<Floats4> xs, ArrayView<Words4> wGate, ArrayView<Words4> wUp, int chunks, int f,
        int warpsPerRow, ArrayView<float> y)
        where TW : struct, IWeightWords
    {
        var partial = SharedMemory.Allocate<float>(GroupedKernels.MaxWarpsPerGroup);
        var sums = SharedMemory.Allocate<float>(GroupedKernels.MaxWarpsPerGroup);
        var words = default(TW);
        int warps = Group.DimX / Warp.WarpSize;
        int pairs = warps / warpsPerRow / 2;
        int slot = Warp.WarpIdx / warpsPerRow;
        int part = Warp.WarpIdx % warpsPerRow;
        int row = (Grid.IdxX * pairs) + (slot % pairs);
        bool valid = row < f;
        var w = (slot < pairs ? wGate : wUp).AsAligned16();
        long o = (long)(valid ? row : 0) * chunks;
        int stride = Warp.WarpSize * warpsPerRow;
        int c = (part * Warp.WarpSize) + Warp.LaneIdx;
        float acc = valid ? GemvKernels.OutInRowPart(words, w, xs, o, c, stride, chunks) : 0f;

        acc = KernelMath.WarpSum(acc);
        if (Warp.IsFirstLane)
        {
            partial[Warp.WarpIdx] = acc;
        }

        Group.Barrier();
        if (part == 0 && Warp.IsFirstLane)
        {
            float total = partial[Warp.WarpIdx];
            for (int i = 1; i < warpsPerRow; i++)
            {
                total += partial[Warp.WarpIdx + i];
            }

            sums[slot] = total + 0f;
        }

        Group.Barrier();
        if (Group.IdxX < pairs)
        {
            int j = (Grid.IdxX * pairs) + Group.IdxX;
            if (j < f)
            {
                float g = sums[Group.IdxX];
                y[j] = KernelMath.Sigmoid(g) * g * sums[pairs + Group.IdxX];
            }
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

    /// <summary>
    /// <see cref="Ops.IOps.Rwkv7RopeKeysValueResidualRows"/> for one row: one group per query head h. The group rotates
    /// r's head h in place and writes kh, vh of head h (k's KV head h / groups rotated from k, which is only read: the
    /// group's query heads would race on an in-place rotation), with the position, tables and
    /// <see cref="KernelMath.RopePair"/> of <see cref="RopeExpand"/>; then, after a group barrier, the keys and residual
    /// of <see cref="GroupedKernels.Rwkv7KeysHead"/> on kh, vh. The same expressions as RoPE, RepeatKv and
    /// <see cref="Rwkv7KeysValueResidual"/>, so the same bits. Flags as Rwkv7KeysValueResidual.
    /// </summary>
    public static void Rwkv7RopeKeys(RopeKeysViews x, ArrayView<float> cos, ArrayView<float> sin, ArrayView<int> position, int offset,
        int kvHeads, int groups, int n, WeightView keyScale, WeightView iclrMix, int flags)
    {
        int h = Grid.IdxX;
        int half = n / 2;
        int row = position[0] + offset;
        int o = h * n;
        int ko = h / groups * n;
        for (int i = Group.IdxX; i < half; i += Group.DimX)
        {
            float c = cos[(row * half) + i];
            float s = sin[(row * half) + i];
            var (qa, qb) = KernelMath.RopePair(x.R[o + i], x.R[o + i + half], c, s);
            x.R[o + i] = qa;
            x.R[o + i + half] = qb;
            var (ka, kb) = KernelMath.RopePair(x.K[ko + i], x.K[ko + i + half], c, s);
            x.Kh[o + i] = ka;
            x.Kh[o + i + half] = kb;
            x.Vh[o + i] = x.V[ko + i];
            x.Vh[o + i + half] = x.V[ko + i + half];
        }

        Group.Barrier();
        GroupedKernels.Rwkv7KeysHead(x.Kh, x.W, x.A, keyScale, iclrMix, kvHeads * groups * n, n, flags, x.Removal, x.Replacement, x.KTilde,
            x.Vh, x.VFirst, x.Nu);
    }
}

/// <summary>The activations of <see cref="FusedKernels.Rwkv7RopeKeys"/> (one row each), in one argument.</summary>
public struct RopeKeysViews
{
    public ArrayView<float> R;
    public ArrayView<float> K;
    public ArrayView<float> V;
    public ArrayView<float> Kh;
    public ArrayView<float> Vh;
    public ArrayView<float> W;
    public ArrayView<float> A;
    public ArrayView<float> Removal;
    public ArrayView<float> Replacement;
    public ArrayView<float> KTilde;
    public ArrayView<float> VFirst;
    public ArrayView<float> Nu;
}
