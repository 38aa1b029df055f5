using Radlads.Ops;

namespace Radlads.Models;

/// <summary>
/// RAD-RWKV6 time mix (spec §3.2): ddlerp token shift, teacher q/k/v/o, LoRA decay clamped at −5,
/// sigmoid gate, optional RoPE, GQA, k·(1−w) balancing, GLA recurrence read after the update, no bonus.
/// State per sequence: S [H, N, N] fp32 (key-major) and the shift vector [1, C].
/// </summary>
internal sealed class Rwkv6Mixer : IMixer
{
    private static readonly string[] MixOrder = ["r", "k", "v", "w", "g"];

    private readonly ModelConfig config;
    private readonly IBackend backend;
    private readonly Projections p;
    private readonly Gate gate;
    private readonly Tensor? mixX;
    private readonly Tensor? mixes;
    private readonly Tensor? mixW1;
    private readonly Tensor? mixW2;
    private readonly Tensor decay;
    private readonly Tensor decayW1;
    private readonly Tensor decayW2;
    private readonly Tensor? lnWeight;
    private readonly Tensor? lnBias;

    public Rwkv6Mixer(WeightLoader w, string prefix, ModelConfig config)
    {
        this.config = config;
        backend = w.Backend;
        int c = config.HiddenSize;
        int a = Width;
        p = new Projections(w, prefix, config);
        if (config.UseTokenShift)
        {
            int packed = w.Columns(prefix + "time_maa_w1");
            if (packed % 5 != 0)
            {
                throw new RadladsException($"tensor '{prefix}time_maa_w1' in {w.Checkpoint.Directory} has {packed} columns, expected 5 × the token-shift LoRA rank");
            }

            MixRank = packed / 5;
            mixW1 = w.Matrix(prefix + "time_maa_w1", c, packed);
            mixW2 = w.Matrix(prefix + "time_maa_w2", 5, MixRank, c);
            mixX = w.Vector(prefix + "time_maa_x", c);
            mixes = w.Stack(MixOrder.Select(m => prefix + "time_maa_" + m).ToArray(), c);
        }

        DecayRank = w.Columns(prefix + "time_decay_w1");
        decay = w.Vector(prefix + "time_decay", a);
        decayW1 = w.Matrix(prefix + "time_decay_w1", c, DecayRank);
        decayW2 = w.Matrix(prefix + "time_decay_w2", DecayRank, a);
        gate = new Gate(w, prefix, c, a);
        GroupNorm = config.GroupNormAttention || w.Has(prefix + "ln_x.weight");
        if (GroupNorm)
        {
            lnWeight = w.Vector(prefix + "ln_x.weight", a);
            lnBias = w.Vector(prefix + "ln_x.bias", a);
        }
    }

    public int MixRank { get; }

    public int DecayRank { get; }

    public bool GroupNorm { get; }

    public GateKind GateKind => gate.Kind;

    private int Width => config.NumAttentionHeads * config.HeadDim;

    public (long StateBytes, long CacheBytesPerToken) MemoryCost =>
        (((long)config.NumAttentionHeads * config.HeadDim * config.HeadDim + config.HiddenSize) * sizeof(float), 0);

    /// <summary>Token shift (ddlerp) reads x before the projections: the model runs the input norm first.</summary>
    public bool TakesPendingNorm => !config.UseTokenShift;

    public bool LeavesBandwidthIdle => true;

    public Tensor OutputWeight => p.Output;

    public LayerState CreateState() => new([
        backend.Allocate(config.NumAttentionHeads, config.HeadDim, config.HeadDim),
        backend.Allocate(1, config.HiddenSize)]);

    public void Forward(ForwardPass pass, Tensor x, Tensor y)
    {
        var ops = pass.Ops;
        int t = pass.Rows;
        int c = config.HiddenSize;
        int h = config.NumAttentionHeads;
        int n = config.HeadDim;
        int a = Width;

        // 1. Token shift (ddlerp): x_r, x_k, x_v, x_w, x_g.
        Tensor xr = x, xk = x, xv = x, xw = x, xg = x;
        if (config.UseTokenShift)
        {
            var delta = pass.Scratch(t, c);
            int d = pass.DecodeCount;
            if (d > 0)
            {
                ops.TokenShiftRows(x.Rows(0, d), pass.DecodeLayerTensors(1), delta.Rows(0, d));
            }

            foreach (var s in pass.OtherSegments)
            {
                ops.TokenShift(x.Rows(s.RowStart, s.RowCount), s.State.Layers[pass.Layer].Tensors[1], delta.Rows(s.RowStart, s.RowCount));
            }

            var xx = pass.Scratch(t, c);
            ops.MixShift(x, delta, mixX!, xx);
            var lora = pass.Scratch(t, 5 * MixRank);
            ops.MatMul(xx, mixW1!, null, lora, WeightLayout.InOut);
            ops.Tanh(lora, lora);
            var mixed = pass.Scratch(5 * t, c);
            ops.Rwkv6Ddlerp(x, delta, lora, mixW2!, mixes!, mixed);
            (xr, xk, xv, xw, xg) = (mixed.Rows(0, t), mixed.Rows(t, t), mixed.Rows(2 * t, t), mixed.Rows(3 * t, t), mixed.Rows(4 * t, t));
        }

        // 2. Projections.
        var (r, k, v) = p.Project(pass, config, xr, xk, xv);

        // 3. Decay w = exp(max(−exp(d0 + tanh(x_w·W1)·W2), −5)).
        var w = pass.Lora(xw, decayW1, decayW2, LoraInner.Tanh, LoraOuter.Rwkv6Decay, decay);

        // 4. Gate.
        var g = gate.Compute(pass, xg, a);

        // 5. RoPE (before GQA expansion), then expand k and v to H heads.
        var (kh, vh) = Projections.RopeAndExpand(pass, config, r, k, v);

        // 6. State balancing k ← k ⊙ (1 − w).
        if (config.BalanceState)
        {
            ops.Rwkv6BalanceKeys(kh, w, kh);
        }

        // 7. GLA recurrence with r scaled by N^−1/2.
        var o = pass.Scratch(t, a);
        float scale = 1f / MathF.Sqrt(n);
        int decode = pass.DecodeCount;
        if (decode > 0)
        {
            ops.Wkv6Decode(r.Rows(0, decode), kh.Rows(0, decode), vh.Rows(0, decode), w.Rows(0, decode), pass.DecodeLayerTensors(0), scale,
                o.Rows(0, decode));
        }

        foreach (var s in pass.OtherSegments)
        {
            ops.Wkv6(r.Rows(s.RowStart, s.RowCount), kh.Rows(s.RowStart, s.RowCount), vh.Rows(s.RowStart, s.RowCount),
                w.Rows(s.RowStart, s.RowCount), s.State.Layers[pass.Layer].Tensors[0], scale, o.Rows(s.RowStart, s.RowCount));
        }

        // 8. Output: optional GroupNorm (ablation), gate, o_proj.
        if (GroupNorm)
        {
            ops.GroupNorm(o, lnWeight!, lnBias!, h, n * 1e-5f, o);
        }

        p.OutputProjection(pass, o, g, y);
    }

    public void Dispose()
    {
        p.Dispose();
        gate.Dispose();
        foreach (var t in new[] { mixX, mixes, mixW1, mixW2, decay, decayW1, decayW2, lnWeight, lnBias })
        {
            t?.Dispose();
        }
    }
}
