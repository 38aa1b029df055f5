using Radlads.Ops;

namespace Radlads.Models;

/// <summary>
/// RAD-RWKV7 time mix (spec §4.2): no token shift, teacher q/k/v/o, LoRA decay / in-context rate / value
/// residual / gate, RoPE on r and k, GQA, removal key κ and replacement key k̃ (balanced variant B or stock
/// variant G), generalised delta rule, then ×N^−1/2 (B) or GroupNorm (G), gate and o_proj.
/// State per sequence: S [H, N, N] fp32 (value-major, the kernel form).
/// </summary>
internal sealed class Rwkv7Mixer : IMixer
{
    private readonly ModelConfig config;
    private readonly IBackend backend;
    private readonly Projections p;
    private readonly Gate gate;
    private readonly Tensor w0, w1, w2, a0, a1, a2;
    private readonly Tensor? v0, v1, v2, keyScale, iclrMix, lnWeight, lnBias;

    public Rwkv7Mixer(WeightLoader w, string prefix, ModelConfig config, bool firstLayer)
    {
        this.config = config;
        backend = w.Backend;
        int c = config.HiddenSize;
        int a = Width;
        if (c != a)
        {
            // [HF7] sizes these vectors by C and [TR] by H·N; they agree only when C = H·N (all Qwen2.5 sizes).
            throw new RadladsException($"{w.Checkpoint.Directory}: rwkv7qwen2 needs hidden_size ({c}) = num_attention_heads × head_dim ({a})");
        }

        p = new Projections(w, prefix, config);
        DecayRank = w.Columns(prefix + "w1");
        IclrRank = w.Columns(prefix + "a1");
        w0 = w.Vector(prefix + "w0", a);
        w1 = w.Matrix(prefix + "w1", c, DecayRank);
        w2 = w.Matrix(prefix + "w2", DecayRank, a);
        a0 = w.Vector(prefix + "a0", a);
        a1 = w.Matrix(prefix + "a1", c, IclrRank);
        a2 = w.Matrix(prefix + "a2", IclrRank, a);
        FirstLayer = firstLayer;
        if (!firstLayer)
        {
            // Layer 0's v0/v1/v2 exist in checkpoints but are never used (spec §4.1).
            ValueRank = w.Columns(prefix + "v1");
            v0 = w.Vector(prefix + "v0", a);
            v1 = w.Matrix(prefix + "v1", c, ValueRank);
            v2 = w.Matrix(prefix + "v2", ValueRank, a);
        }

        Balanced = config.BalanceState;
        if (!Balanced)
        {
            keyScale = w.Vector(prefix + "k_k", a);
            iclrMix = w.Vector(prefix + "k_a", a);
        }

        GroupNorm = config.GroupNormAttention || w.Has(prefix + "ln_x.weight");
        if (GroupNorm)
        {
            lnWeight = w.Vector(prefix + "ln_x.weight", a);
            lnBias = w.Vector(prefix + "ln_x.bias", a);
        }

        gate = new Gate(w, prefix, c, a);
    }

    public int DecayRank { get; }

    public int IclrRank { get; }

    public int ValueRank { get; }

    public bool FirstLayer { get; }

    public bool Balanced { get; }

    public bool GroupNorm { get; }

    public GateKind GateKind => gate.Kind;

    public int GateRank => gate.Rank;

    private int Width => config.NumAttentionHeads * config.HeadDim;

    public (long StateBytes, long CacheBytesPerToken) MemoryCost =>
        ((long)config.NumAttentionHeads * config.HeadDim * config.HeadDim * sizeof(float), 0);

    /// <summary>The projections are the first read of x (no token shift).</summary>
    public bool TakesPendingNorm => true;

    public bool LeavesBandwidthIdle => true;

    public Tensor OutputWeight => p.Output;

    public LayerState CreateState() => new([backend.Allocate(config.NumAttentionHeads, config.HeadDim, config.HeadDim)]);

    public void Forward(ForwardPass pass, Tensor x, Tensor y)
    {
        var ops = pass.Ops;
        int t = pass.Rows;
        int h = config.NumAttentionHeads;
        int n = config.HeadDim;
        int a = Width;

        // 2–4 (and 8's ν). Every LoRA branch reads x: one LoraSet for all of them (two launches on the CUDA decode path).
        //   decay w = exp(−e^−0.5 · σ(w0 + tanh(x·w1)·w2));
        //   in-context learning rate a = σ(a0 + (x·a1)·a2): no activation inside this LoRA;
        //   value residual ν = σ(v0 + (x·v1)·v2), not in layer 0;
        //   low-rank gate g = σ(x·g1)·g2 (sigmoid inside, output unbounded); the full-rank gate is a MatMul below.
        //   A pass of prompt chunks only (no one-token rows) leaves w, a and ν as their pre-activations z: the prompt op
        //   below (Rwkv7RopeKeysWkv7) applies the offsets and activations itself, as it forms the keys (the same bits).
        int d = pass.DecodeCount;
        bool promptOnly = d == 0 && pass.OtherSegments.All(s => s.RowCount > 1);
        var decay = promptOnly ? pass.LoraBranch(w1, w2, LoraInner.Tanh, LoraOuter.None, null)
            : pass.LoraBranch(w1, w2, LoraInner.Tanh, LoraOuter.Rwkv7Decay, w0);
        var rate = pass.LoraBranch(a1, a2, LoraInner.None, promptOnly ? LoraOuter.None : LoraOuter.AddSigmoid, promptOnly ? null : a0);
        LoraBranch? residual = FirstLayer ? null
            : pass.LoraBranch(v1!, v2!, LoraInner.None, promptOnly ? LoraOuter.None : LoraOuter.AddSigmoid, promptOnly ? null : v0);
        var lowRankGate = gate.LowRankBranch(pass);
        // A prompt's low-rank gate is read only after the recurrence (10–11): its LoRA runs beside the recurrence
        // (IOps.BeginBeside; CUDA: on a second stream, in the SMs the latency-bound scan leaves idle).
        bool gateBeside = promptOnly && lowRankGate is not null;
        LoraBranch[] branches = [decay, rate, .. residual is { } nuBranch ? [nuBranch] : Array.Empty<LoraBranch>(),
            .. lowRankGate is { } gateBranch && !gateBeside ? [gateBranch] : Array.Empty<LoraBranch>()];

        // 1. Projections, with the LoRA set in one op (both only read x): on the CUDA decode path the LoRA down
        // projections then run in the q/k/v GEMV's launch, one kernel boundary fewer; at prefill the LoRA down GEMMs
        // read the bf16 copy of x that the input norm wrote for q/k/v, instead of rounding x again.
        var (r, k, vRaw) = p.ProjectWithLoras(pass, config, x, branches);
        if (gateBeside)
        {
            // x is not written again in this layer, and nothing before the join reads g.
            ops.BeginBeside();
            try
            {
                ops.LoraSet(x, [lowRankGate!.Value]);
            }
            finally
            {
                ops.EndBeside();
            }
        }

        var w = decay.Y;
        var iclr = rate.Y;
        var g = lowRankGate is { } lr ? lr.Y : gate.Compute(pass, x, a);

        // 5–6. RoPE on r and k only, before GQA; then query head h reads KV head ⌊h/G⌋.
        // 7. Removal key κ (fed as a = −κ, b = κ⊙a) and replacement key k̃.
        // 8. Value residual: layer 0 publishes v_first; later layers lerp v towards it by ν = σ(v0 + (x·v1)·v2).
        // 9. Generalised delta rule, per sequence. Without GroupNorm the output is then × N^−1/2 and gated (10–11).
        //    One-token pieces (the decode rows, a lone decode token) take 5–8 in one call
        //    (Rwkv7RopeKeysValueResidualRows: one launch on CUDA and ILGPU), and of a gated model without GroupNorm 5–11
        //    (Rwkv7RopeKeysWkv7Rows: one launch on CUDA, the head's keys kept on chip); prompt chunks take RopeExpand,
        //    then keys and residual in one call (Rwkv7KeysValueResidual), then Wkv7 and ScaleMultiply below.
        if (!FirstLayer && pass.ValueFirst is null)
        {
            throw new InvalidOperationException("RAD-RWKV7 layer ran before layer 0 produced v_first");
        }

        var removal = pass.Scratch(t, a);
        var replacement = pass.Scratch(t, a);
        var kTilde = pass.Scratch(t, a);
        var vFirst = FirstLayer ? null : pass.ValueFirst;
        var nu = FirstLayer ? null : residual!.Value.Y;
        var o = pass.Scratch(t, a);
        float scale = 1f / MathF.Sqrt(n);
        bool fuseOutput = !GroupNorm && g is not null;
        Tensor kh, v;
        bool ropePieces = config.UseRope && (d > 0 || pass.OtherSegments.Any(s => s.RowCount == 1));

        // One-token rows [start, start + count) at these positions with these states: 5–8, or 5–11 when fused.
        void OneToken(int start, int count, ReadOnlySpan<int> positions, IReadOnlyList<Tensor> states)
        {
            var (rows, kvRows) = (r.Rows(start, count), k.Rows(start, count));
            int kvh = config.NumKeyValueHeads;
            float theta = (float)config.RopeTheta;
            if (fuseOutput)
            {
                ops.Rwkv7RopeKeysWkv7Rows(rows, kvRows, vRaw.Rows(start, count), h, kvh, n, positions, theta, w.Rows(start, count),
                    iclr.Rows(start, count), keyScale, iclrMix, Balanced, kh.Rows(start, count), v.Rows(start, count), removal.Rows(start, count),
                    replacement.Rows(start, count), kTilde.Rows(start, count), vFirst?.Rows(start, count), nu?.Rows(start, count), states, scale,
                    g!.Rows(start, count), o.Rows(start, count));
                return;
            }

            ops.Rwkv7RopeKeysValueResidualRows(rows, kvRows, vRaw.Rows(start, count), h, kvh, n, positions, theta, w.Rows(start, count),
                iclr.Rows(start, count), keyScale, iclrMix, Balanced, kh.Rows(start, count), v.Rows(start, count), removal.Rows(start, count),
                replacement.Rows(start, count), kTilde.Rows(start, count), vFirst?.Rows(start, count), nu?.Rows(start, count));
        }

        if (promptOnly)
        {
            // 2–9 per prompt chunk in one call (on CUDA the keys are formed inside the recurrence's chunk preparation).
            // Layer 0's v is v_first itself; w is formed in place of its pre-activation.
            if (FirstLayer)
            {
                pass.ValueFirst?.Dispose();
                pass.ValueFirst = backend.AllocateUninitialized(t, a);
            }

            (kh, v) = (pass.Scratch(t, a), FirstLayer ? pass.ValueFirst! : pass.Scratch(t, a));
            foreach (var s in pass.OtherSegments)
            {
                var (start, count) = (s.RowStart, s.RowCount);
                Tensor Rows(Tensor x) => x.Rows(start, count);
                ops.Rwkv7RopeKeysWkv7(Rows(r), Rows(k), Rows(vRaw), h, config.NumKeyValueHeads, n, config.UseRope, s.StartPosition,
                    (float)config.RopeTheta, Rows(w), w0, Rows(iclr), a0, keyScale, iclrMix, Balanced, nu is null ? null : Rows(nu),
                    FirstLayer ? null : v0, vFirst is null ? null : Rows(vFirst), Rows(kh), Rows(v), Rows(w), Rows(removal),
                    Rows(replacement), Rows(kTilde), s.State.Layers[pass.Layer].Tensors[0], Rows(o));
            }
        }
        else if (!ropePieces)
        {
            (kh, v) = Projections.RopeAndExpand(pass, config, r, k, vRaw);
            ops.Rwkv7KeysValueResidual(kh, w, iclr, keyScale, iclrMix, n, Balanced, removal, replacement, kTilde, v, vFirst, nu);
        }
        else
        {
            // Layer 0's v (every row written by the pieces below, nothing to lerp) is v_first itself: no copy after it.
            if (FirstLayer)
            {
                pass.ValueFirst?.Dispose();
                pass.ValueFirst = backend.AllocateUninitialized(t, a);
            }

            (kh, v) = (pass.Scratch(t, a), FirstLayer ? pass.ValueFirst! : pass.Scratch(t, a));
            if (d > 0)
            {
                OneToken(0, d, pass.DecodePositions, pass.DecodeLayerTensors(0));
            }

            foreach (var s in pass.OtherSegments)
            {
                var (start, count) = (s.RowStart, s.RowCount);
                if (count == 1)
                {
                    OneToken(start, 1, [s.StartPosition], [s.State.Layers[pass.Layer].Tensors[0]]);
                    continue;
                }

                ops.RopeExpand(r.Rows(start, count), k.Rows(start, count), vRaw.Rows(start, count), h, config.NumKeyValueHeads, n,
                    s.StartPosition, (float)config.RopeTheta, kh.Rows(start, count), v.Rows(start, count));
                ops.Rwkv7KeysValueResidual(kh.Rows(start, count), w.Rows(start, count), iclr.Rows(start, count), keyScale, iclrMix, n, Balanced,
                    removal.Rows(start, count), replacement.Rows(start, count), kTilde.Rows(start, count), v.Rows(start, count),
                    vFirst?.Rows(start, count), nu?.Rows(start, count));
            }
        }

        // 9 for what the calls above did not take: prompt chunks (Wkv7, scaled below), one-token pieces of an ungated or
        // GroupNorm model (Wkv7Decode / Wkv7) and of a gated one without RoPE (Wkv7DecodeScaleGate).
        bool fused = fuseOutput && ropePieces;
        var unscaled = new List<Segment>();
        if (d > 0 && !fused)
        {
            if (fuseOutput)
            {
                ops.Wkv7DecodeScaleGate(r.Rows(0, d), w.Rows(0, d), kTilde.Rows(0, d), v.Rows(0, d), removal.Rows(0, d), replacement.Rows(0, d),
                    pass.DecodeLayerTensors(0), scale, g!.Rows(0, d), o.Rows(0, d));
            }
            else
            {
                ops.Wkv7Decode(r.Rows(0, d), w.Rows(0, d), kTilde.Rows(0, d), v.Rows(0, d), removal.Rows(0, d), replacement.Rows(0, d),
                    pass.DecodeLayerTensors(0), o.Rows(0, d));
            }
        }

        foreach (var s in pass.OtherSegments)
        {
            var (start, count) = (s.RowStart, s.RowCount);
            if (promptOnly)
            {
                unscaled.Add(s);
                continue;
            }

            if (fused && count == 1)
            {
                continue;
            }

            var state = s.State.Layers[pass.Layer].Tensors[0];
            if (fuseOutput && count == 1)
            {
                ops.Wkv7DecodeScaleGate(r.Rows(start, 1), w.Rows(start, 1), kTilde.Rows(start, 1), v.Rows(start, 1), removal.Rows(start, 1),
                    replacement.Rows(start, 1), [state], scale, g!.Rows(start, 1), o.Rows(start, 1));
                continue;
            }

            ops.Wkv7(r.Rows(start, count), w.Rows(start, count), kTilde.Rows(start, count), v.Rows(start, count), removal.Rows(start, count),
                replacement.Rows(start, count), state, o.Rows(start, count));
            unscaled.Add(s);
        }

        if (FirstLayer && !ReferenceEquals(v, pass.ValueFirst))
        {
            pass.ValueFirst?.Dispose();
            // Uninitialized: the copy fills it. A zero-fill is a memset node in a recorded step, and at 0.5B the graph
            // sat idle ~0.38 ms between that memset and the copy (CUPTI trace, H200, 2026-11-27).
            pass.ValueFirst = backend.AllocateUninitialized(t, a);
            backend.Copy(v, pass.ValueFirst);
        }

        // 10–11. Output normalisation (GroupNorm, or × N^−1/2 fused with the gate), gate, o_proj. No bonus: r_k is ignored.
        if (gateBeside)
        {
            ops.JoinBeside();
        }

        if (GroupNorm)
        {
            ops.GroupNorm(o, lnWeight!, lnBias!, h, n * 1e-5f, o);
            p.OutputProjection(pass, o, g, y);
        }
        else if (!fuseOutput || unscaled.Count == pass.Segments.Count)
        {
            // Nothing fused (no gate, or only prompt chunks): one ScaleMultiply (or Scale) over all rows, with its bf16
            // copy for o_proj on cuBLASLt.
            p.OutputProjection(pass, o, g, y, scale);
        }
        else
        {
            foreach (var s in unscaled)
            {
                ops.ScaleMultiply(o.Rows(s.RowStart, s.RowCount), scale, g!.Rows(s.RowStart, s.RowCount), o.Rows(s.RowStart, s.RowCount));
            }

            p.OutputProjection(pass, o, null, y);
        }
    }

    public void Dispose()
    {
        p.Dispose();
        gate.Dispose();
        foreach (var t in new[] { w0, w1, w2, a0, a1, a2, v0, v1, v2, keyScale, iclrMix, lnWeight, lnBias })
        {
            t?.Dispose();
        }
    }
}
