using ILGPU;
using Radlads.Checkpoints;
using Radlads.Ilgpu.Kernels;
using Radlads.Ops;

namespace Radlads.Ilgpu;

/// <summary>
/// The fused decode ops, one launch each (<see cref="Kernels.FusedKernels"/>), with the same fp32 results as the op
/// sequences they replace on this backend (Wkv7DecodeScaleGate: one launch a sequence instead of two). <see cref="IOps.RopeExpandRows"/> keeps the interface default (the batched
/// decode rows; ILGPU runs batch 1 through <see cref="RopeExpand"/>). With <see cref="IlgpuBackend.Unfused"/>
/// (RADLADS_ILGPU_FUSED=0, the baseline) each runs as its op sequence, the interface default.
/// </summary>
internal sealed partial class IlgpuOps
{
    public void AddRmsNorm(Tensor h, Tensor branch, Tensor weight, float eps, Tensor y)
    {
        if (ReferenceEquals(h, y))
        {
            throw new ArgumentException("AddRmsNorm: y must not alias h (h keeps the residual stream)");
        }

        SameCount(h, branch, nameof(AddRmsNorm));
        int c = h.RowLength;
        int rows = h.RowCount;
        if (weight.ElementCount < c)
        {
            throw new ArgumentException($"AddRmsNorm: weight {weight.ShapeText} is shorter than rows of {c}");
        }

        Fits(y, h.ElementCount, nameof(AddRmsNorm));
        if (rows == 0 || c == 0)
        {
            return;
        }

        if (backend.Unfused)
        {
            Add(h, branch, h);
            RmsNorm(h, weight, eps, y);
            return;
        }

        using var scope = backend.Enter();
        K.AddRmsNorm(S, Groups(rows, nameof(AddRmsNorm)), F(h), F(branch), I(weight).Weight(Device), eps, c, F(y));
    }

    /// <summary>One launch of <see cref="Kernels.FusedKernels.Rwkv7KeysValueResidual"/>: the same bits as Rwkv7Keys then Rwkv7ValueResidual.</summary>
    public void Rwkv7KeysValueResidual(Tensor k, Tensor w, Tensor a, Tensor? keyScale, Tensor? iclrMix, int headDim, bool balanced,
        Tensor removal, Tensor replacement, Tensor kTilde, Tensor v, Tensor? vFirst, Tensor? nu)
    {
        FusedOpChecks.KeysValueResidual(k, w, a, keyScale, iclrMix, headDim, balanced, v, vFirst, nu);
        if (backend.Unfused)
        {
            Rwkv7Keys(k, w, a, keyScale, iclrMix, headDim, balanced, removal, replacement, kTilde);
            if (vFirst is not null)
            {
                Rwkv7ValueResidual(v, vFirst, nu!, v);
            }

            return;
        }

        int width = k.RowLength;

        var kk = balanced ? None : Param(keyScale!, width);
        var ka = balanced ? None : Param(iclrMix!, width);
        long n = k.ElementCount;
        Fits(removal, n, nameof(Rwkv7KeysValueResidual));
        Fits(replacement, n, nameof(Rwkv7KeysValueResidual));
        Fits(kTilde, n, nameof(Rwkv7KeysValueResidual));
        long items = (long)k.RowCount * (width / headDim);
        if (items == 0)
        {
            return;
        }

        // Layer 0 has no residual: v itself stands in for vFirst and nu (never read with bit 1 clear).
        int flags = (balanced ? 1 : 0) | (vFirst is null ? 0 : 2);
        using var scope = backend.Enter();
        K.Rwkv7KeysValueResidual(S, Groups(items, nameof(Rwkv7KeysValueResidual)), F(k), F(w), F(a), kk, ka, width, headDim, flags,
            F(removal), F(replacement), F(kTilde), F(v), F(vFirst ?? v), F(nu ?? v));
    }

    /// <summary>
    /// Whether GateUpSwiGlu runs as one launch for x [T, K] (T = 1, 16-byte chunks, the warp kernels, two or more row
    /// slots a group), with the warps per row MatMul picks for F rows and the row pairs a group takes.
    /// </summary>
    private (bool Fused, int PerRow, int Pairs) GateUpPlan(Tensor x, IlgpuTensor g, IlgpuTensor u, int k, int f)
    {
        int warps = GroupSize / Device.WarpSize;
        long wanted = 8L * Math.Max(1, Device.Accelerator.NumMultiprocessors);
        int perRow = 1;
        while (perRow < 8 && warps % (perRow * 2) == 0 && (f + (warps / perRow) - 1) / (warps / perRow) < wanted)
        {
            perRow *= 2;
        }

        bool fused = !backend.Unfused && !backend.ThreadPerOutputKernels && !backend.Baseline && x.RowCount == 1 && f > 0 && k > 0
            && g.DType == u.DType && VectorLoads(I(x), g, k) && VectorLoads(I(x), u, k) && warps / perRow >= 2;
        return (fused, perRow, warps / perRow / 2);
    }

    /// <summary>
    /// Per row one launch of <see cref="Kernels.FusedKernels.Rwkv7RopeKeys"/> (a group per query head; the RoPE table
    /// and position as <see cref="RopeExpand"/> reads them, so one row may be recorded): the same bits as RopeExpandRows
    /// then Rwkv7KeysValueResidual; k is only read.
    /// </summary>
    public void Rwkv7RopeKeysValueResidualRows(Tensor r, Tensor k, Tensor v, int heads, int kvHeads, int headDim, ReadOnlySpan<int> positions,
        float theta, Tensor w, Tensor a, Tensor? keyScale, Tensor? iclrMix, bool balanced, Tensor kh, Tensor vh, Tensor removal,
        Tensor replacement, Tensor kTilde, Tensor? vFirst, Tensor? nu)
    {
        FusedOpChecks.RopeKeysValueResidualRows(r, k, v, heads, kvHeads, headDim, positions, w, a, keyScale, iclrMix, balanced, kh, vh,
            vFirst, nu);
        if (backend.Unfused)
        {
            ((IOps)this).RopeExpandRows(r, k, v, heads, kvHeads, headDim, positions, theta, kh, vh);
            Rwkv7KeysValueResidual(kh, w, a, keyScale, iclrMix, headDim, balanced, removal, replacement, kTilde, vh, vFirst, nu);
            return;
        }

        if (positions.Length > 1 && backend.Recording)
        {
            throw new InvalidOperationException("Rwkv7RopeKeysValueResidualRows: several rows cannot be part of a recorded step (their positions change every step)");
        }

        int width = heads * headDim, kvWidth = kvHeads * headDim;
        long n = (long)r.RowCount * width;
        Fits(removal, n, nameof(Rwkv7RopeKeysValueResidualRows));
        Fits(replacement, n, nameof(Rwkv7RopeKeysValueResidualRows));
        Fits(kTilde, n, nameof(Rwkv7RopeKeysValueResidualRows));
        if (width == 0)
        {
            return;
        }

        var kk = balanced ? None : Param(keyScale!, width);
        var ka = balanced ? None : Param(iclrMix!, width);
        int flags = (balanced ? 1 : 0) | (vFirst is null ? 0 : 2);
        using var scope = backend.Enter();
        for (int b = 0; b < positions.Length; b++)
        {
            ArrayView<float> Row(Tensor t, int length) => F(t).SubView((long)b * length, length);
            var views = new RopeKeysViews
            {
                R = Row(r, width),
                K = Row(k, kvWidth),
                V = Row(v, kvWidth),
                Kh = Row(kh, width),
                Vh = Row(vh, width),
                W = Row(w, width),
                A = Row(a, width),
                Removal = Row(removal, width),
                Replacement = Row(replacement, width),
                KTilde = Row(kTilde, width),
                VFirst = Row(vFirst ?? vh, width),
                Nu = Row(nu ?? vh, width),
            };

            // The position exactly as Rope reads it (eager: a device zero and the start; recorded: the step buffer).
            var (cos, sin, position, offset) = backend.Recording
                ? backend.RecordedRope(theta, headDim, positions[b], 1)
                : backend.RopeTable(theta, headDim, positions[b], 1);
            K.Rwkv7RopeKeys(S, Groups(heads, nameof(Rwkv7RopeKeysValueResidualRows)), views, cos, sin, position, offset, kvHeads,
                heads / kvHeads, headDim, kk, ka, flags);
        }
    }

    /// <summary>
    /// T = 1 with 16-byte chunks (the <see cref="MatMul"/> decode GEMV's condition) and two or more rows a group: one
    /// launch of <see cref="Kernels.FusedKernels.GateUpSwiGlu{TW}"/> with the warps per row MatMul picks for F rows, so
    /// the same bits as the two GEMVs then SwiGlu. Otherwise the interface default (MatMulShared into y and upScratch,
    /// then SwiGlu).
    /// </summary>
    public void GateUpSwiGlu(Tensor x, Tensor wGate, Tensor wUp, Tensor y, Tensor upScratch)
    {
        FusedOpChecks.GateUpSwiGlu(x, wGate, wUp, y, upScratch);
        int k = x.RowLength;
        int f = wGate.Shape[0];
        var g = I(wGate);
        var u = I(wUp);
        var (fused, perRow, pairs) = GateUpPlan(x, g, u, k, f);
        if (!fused)
        {
            ((IOps)this).MatMulShared(x, [wGate, wUp], [null, null], [y, upScratch]);
            SwiGlu(y, upScratch, y);
            return;
        }

        int chunks = k / (g.DType == DType.F32 ? 4 : 8);
        var xs = I(x).Floats.SubView(0, k).Cast<Floats4>();
        using var scope = backend.Enter();
        K.GateUpSwiGlu[(int)g.DType](S, Groups((f + pairs - 1) / pairs, nameof(GateUpSwiGlu)), xs, g.Bytes.Cast<Words4>(),
            u.Bytes.Cast<Words4>(), chunks, f, perRow, F(y));
    }

    public void ScaleMultiply(Tensor a, float s, Tensor b, Tensor y)
    {
        FusedOpChecks.ScaleMultiply(a, b, y);
        if (backend.Unfused)
        {
            Scale(a, s, y);
            Multiply(y, b, y);
            return;
        }

        long n = a.ElementCount;
        if (n > 0)
        {
            using var scope = backend.Enter();
            K.ScaleMultiply(S, Extent(n, nameof(ScaleMultiply)), F(a), s, F(b), F(y));
        }
    }

    /// <summary>
    /// Per sequence one launch of the Wkv7 kernel that writes y as (y · scale) ⊙ gate (ILGPU runs Wkv7Decode as a loop
    /// over sequences too): the same bits as Wkv7Decode then ScaleMultiply, one launch instead of two at batch 1.
    /// </summary>
    public void Wkv7DecodeScaleGate(Tensor r, Tensor w, Tensor k, Tensor v, Tensor a, Tensor b, IReadOnlyList<Tensor> states, float scale,
        Tensor gate, Tensor y)
    {
        FusedOpChecks.Wkv7DecodeScaleGate(r, states, gate, y);
        if (backend.Unfused)
        {
            ((IOps)this).Wkv7Decode(r, w, k, v, a, b, states, y);
            ScaleMultiply(y, scale, gate, y);
            return;
        }

        int width = r.RowLength;
        for (int i = 0; i < states.Count; i++)
        {
            var state = states[i];
            if (state.Shape.Length != 3 || state.Shape[1] != state.Shape[2] || state.Shape[0] * state.Shape[1] != width)
            {
                throw new ArgumentException($"Wkv7DecodeScaleGate: state {i} {state.ShapeText} does not match rows of {width}");
            }

            RecurrenceInputs(nameof(Wkv7DecodeScaleGate), width, r.Rows(i, 1), w.Rows(i, 1), k.Rows(i, 1), v.Rows(i, 1), a.Rows(i, 1),
                b.Rows(i, 1), gate.Rows(i, 1), y.Rows(i, 1));
            if (width > 0)
            {
                LaunchWkv7(r.Rows(i, 1), w.Rows(i, 1), k.Rows(i, 1), v.Rows(i, 1), a.Rows(i, 1), b.Rows(i, 1), state, 1, state.Shape[0],
                    state.Shape[1], y.Rows(i, 1), scale, gate.Rows(i, 1));
            }
        }
    }

    public void ExpandKv(Tensor k, Tensor v, int heads, int kvHeads, int headDim, Tensor kh, Tensor vh)
    {
        FusedOpChecks.ExpandKv(k, v, heads, kvHeads, headDim, kh, vh);
        if (backend.Unfused)
        {
            RepeatKv(k, kvHeads, headDim, heads / kvHeads, kh);
            RepeatKv(v, kvHeads, headDim, heads / kvHeads, vh);
            return;
        }

        long n = (long)k.RowCount * heads * headDim;
        if (n > 0)
        {
            using var scope = backend.Enter();
            K.ExpandKv(S, Extent(n, nameof(ExpandKv)), F(k), F(v), kvHeads, headDim, heads / kvHeads, F(kh), F(vh));
        }
    }

    public void RopeExpand(Tensor r, Tensor k, Tensor? v, int heads, int kvHeads, int headDim, int startPosition, float theta,
        Tensor? kh, Tensor? vh)
    {
        FusedOpChecks.RopeExpand(nameof(RopeExpand), r, k, v, heads, kvHeads, headDim, kh, vh);
        if (backend.Unfused)
        {
            Rope(r, heads, headDim, startPosition, theta);
            Rope(k, kvHeads, headDim, startPosition, theta);
            if (kh is not null)
            {
                RepeatKv(k, kvHeads, headDim, heads / kvHeads, kh);
                RepeatKv(v!, kvHeads, headDim, heads / kvHeads, vh!);
            }

            return;
        }

        int tokens = r.RowCount;
        int half = headDim / 2;
        if (tokens == 0 || half == 0)
        {
            return;
        }

        using var scope = backend.Enter();
        long pairs = (long)tokens * kvHeads * half;
        // The position exactly as Rope reads it (eager: a device zero and the start; recorded: the step buffer).
        var (cos, sin, position, offset) = backend.Recording
            ? backend.RecordedRope(theta, headDim, startPosition, tokens)
            : backend.RopeTable(theta, headDim, startPosition, tokens);
        var dummy = Device.DummyFloats.View;
        bool expand = kh is not null;
        K.RopeExpand(S, Extent(pairs, nameof(RopeExpand)), F(r), F(k), expand ? F(v!) : dummy, cos, sin, position, offset,
            heads, kvHeads, headDim, expand ? 1 : 0, expand ? F(kh!) : dummy, expand ? F(vh!) : dummy);
    }
}
