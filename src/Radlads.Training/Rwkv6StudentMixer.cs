using Radlads.Models;
using Radlads.Ops;

namespace Radlads.Training;

/// <summary>
/// RAD-RWKV6 time mix for training (spec §3.2; the same ops in the same order as the inference <c>Rwkv6Mixer</c>),
/// with its backward. Trained: q/k/v/o (with the biases present), the gate, time_decay with its LoRA, and with token
/// shift time_maa_x, time_maa_{r,k,v,w,g}, time_maa_w1/w2; ln_x in the GroupNorm ablation. The five static mixes are
/// rows of one [5, C] tensor (the ddlerp op reads them stacked); each row is its own parameter.
/// </summary>
internal sealed class Rwkv6StudentMixer : StudentMixer
{
    private static readonly string[] MixOrder = ["time_maa_r", "time_maa_k", "time_maa_v", "time_maa_w", "time_maa_g"];

    private readonly Parameter q, k, v, o, decay, decayW1, decayW2;
    private readonly Parameter? qb, kb, vb, ob, mixX, mixW1, mixW2, lnWeight, lnBias;
    private readonly Tensor? mixes, mixesGrad;
    private readonly TrainingGate gate;
    private readonly bool tokenShift;
    private readonly bool groupNorm;
    private readonly int mixRank;

    public Rwkv6StudentMixer(IBackend backend, IParameterSource source, ModelConfig config, int layer)
        : base(backend, source, config, layer)
    {
        int c = Hidden;
        int a = Width;
        q = Load("q_proj.weight", a, c);
        qb = Has("q_proj.bias") ? Load("q_proj.bias", a) : null;
        k = Load("k_proj.weight", KvWidth, c);
        kb = Has("k_proj.bias") ? Load("k_proj.bias", KvWidth) : null;
        v = Load("v_proj.weight", KvWidth, c);
        vb = Has("v_proj.bias") ? Load("v_proj.bias", KvWidth) : null;
        o = Load("o_proj.weight", c, a);
        ob = Has("o_proj.bias") ? Load("o_proj.bias", c) : null;
        tokenShift = config.UseTokenShift;
        if (tokenShift)
        {
            int packed = Columns("time_maa_w1");
            if (packed % 5 != 0)
            {
                throw new RadladsException($"{Prefix}time_maa_w1 has {packed} columns, expected 5 × the token-shift LoRA rank");
            }

            mixRank = packed / 5;
            mixX = Load("time_maa_x", c);
            (mixes, mixesGrad, _) = LoadStack(MixOrder, c);
            mixW1 = Load("time_maa_w1", c, packed);
            mixW2 = Load("time_maa_w2", 5, mixRank, c);
        }

        int rd = Columns("time_decay_w1");
        decay = Load("time_decay", a);
        decayW1 = Load("time_decay_w1", c, rd);
        decayW2 = Load("time_decay_w2", rd, a);
        gate = TrainingGate.Load(Has, Columns, Load, c, a);
        groupNorm = config.GroupNormAttention || Has("ln_x.weight");
        if (groupNorm)
        {
            lnWeight = Load("ln_x.weight", a);
            lnBias = Load("ln_x.bias", a);
        }
    }

    private float Eps => HeadDim * 1e-5f;

    private sealed class Saved(IBackend backend) : Scratch(backend)
    {
        public Tensor X = null!, Xr = null!, Xk = null!, Xv = null!, Xw = null!, Xg = null!;
        public Tensor? Delta, Xx, MixLora;
        public Tensor Hd = null!, D = null!, W = null!, R = null!, Kh = null!, Kb = null!, Vh = null!, O = null!, On = null!, Og = null!;
        public Tensor? G, Hg;
    }

    public override Scratch Forward(StudentPass pass, Tensor x, Tensor y)
    {
        var ops = pass.Ops;
        int t = pass.Rows;
        int c = Hidden;
        int a = Width;
        var s = new Saved(pass.Backend) { X = x };

        // 1. Token shift (ddlerp) from a zero shift state per window: x_r, x_k, x_v, x_w, x_g.
        (s.Xr, s.Xk, s.Xv, s.Xw, s.Xg) = (x, x, x, x, x);
        if (tokenShift)
        {
            s.Delta = s.New(t, c);
            for (int i = 0; i < pass.Windows; i++)
            {
                using var shift = pass.Backend.Allocate(1, c);
                ops.TokenShift(pass.Window(x, i), shift, pass.Window(s.Delta, i));
            }

            s.Xx = s.New(t, c);
            ops.MixShift(x, s.Delta, mixX!.Value, s.Xx);
            s.MixLora = s.New(t, 5 * mixRank);
            ops.MatMul(s.Xx, mixW1!.Value, null, s.MixLora, WeightLayout.InOut);
            ops.Tanh(s.MixLora, s.MixLora);
            var mixed = s.New(5 * t, c);
            ops.Rwkv6Ddlerp(x, s.Delta, s.MixLora, mixW2!.Value, mixes!, mixed);
            (s.Xr, s.Xk, s.Xv, s.Xw, s.Xg) = (mixed.Rows(0, t), mixed.Rows(t, t), mixed.Rows(2 * t, t), mixed.Rows(3 * t, t), mixed.Rows(4 * t, t));
        }

        // 2. Projections (shared when the inputs are one tensor, as the inference mixer does).
        var r = s.New(t, a);
        var kRaw = s.New(t, KvWidth);
        var vRaw = s.New(t, KvWidth);
        if (!tokenShift)
        {
            ops.MatMulShared(x, [q.Value, k.Value, v.Value], [qb?.Value, kb?.Value, vb?.Value], [r, kRaw, vRaw]);
        }
        else
        {
            ops.MatMul(s.Xr, q.Value, qb?.Value, r);
            ops.MatMul(s.Xk, k.Value, kb?.Value, kRaw);
            ops.MatMul(s.Xv, v.Value, vb?.Value, vRaw);
        }

        // 3. Decay w = exp(max(−exp(d0 + tanh(x_w·W1)·W2), −5)); d kept for the backward.
        (s.Hd, s.D) = Lora(pass, s, s.Xw, decayW1, decayW2, ops.Tanh);
        s.W = s.New(t, a);
        ops.Rwkv6Decay(s.D, decay.Value, s.W);

        // 4. Gate.
        s.G = gate.Forward(pass, s, s.Xg, a, out s.Hg);

        // 5. RoPE (in place) before GQA, then expand k and v to H heads.
        if (Config.UseRope)
        {
            for (int i = 0; i < pass.Windows; i++)
            {
                ops.Rope(pass.Window(r, i), Heads, HeadDim, 0, (float)Config.RopeTheta);
                ops.Rope(pass.Window(kRaw, i), KvHeads, HeadDim, 0, (float)Config.RopeTheta);
            }
        }

        int groups = Heads / KvHeads;
        s.R = r;
        s.Kh = s.New(t, a);
        s.Vh = s.New(t, a);
        ops.RepeatKv(kRaw, KvHeads, HeadDim, groups, s.Kh);
        ops.RepeatKv(vRaw, KvHeads, HeadDim, groups, s.Vh);

        // 6. State balancing k ← k ⊙ (1 − w) (out of place: the backward reads k).
        s.Kb = s.Kh;
        if (Config.BalanceState)
        {
            s.Kb = s.New(t, a);
            ops.Rwkv6BalanceKeys(s.Kh, s.W, s.Kb);
        }

        // 7. GLA recurrence, r scaled by N^−1/2, each window from a zero state (all windows in one call).
        s.O = s.New(t, a);
        float scale = 1f / MathF.Sqrt(HeadDim);
        using (var state = pass.Backend.Allocate(pass.Windows * Heads, HeadDim, HeadDim))
        {
            pass.Back.Wkv6Sequences(pass.Windows, s.R, s.Kb, s.Vh, s.W, state, scale, s.O);
        }

        // 8. Optional GroupNorm, gate, o_proj.
        s.On = s.O;
        if (groupNorm)
        {
            s.On = s.New(t, a);
            ops.GroupNorm(s.O, lnWeight!.Value, lnBias!.Value, Heads, Eps, s.On);
        }

        s.Og = s.On;
        if (s.G is not null)
        {
            s.Og = s.New(t, a);
            ops.Multiply(s.On, s.G, s.Og);
        }

        ops.MatMul(s.Og, o.Value, ob?.Value, y);
        return s;
    }

    public override void Backward(StudentPass pass, Scratch saved, Tensor dy, Tensor? dx)
    {
        var s = (Saved)saved;
        var ops = pass.Ops;
        var back = pass.Back;
        int t = pass.Rows;
        int c = Hidden;
        int a = Width;
        using var b = new Scratch(pass.Backend);

        // 8. o_proj, gate, GroupNorm.
        var (dOn, dG) = OutputBackward(pass, b, s.On, s.G, s.Og, o, ob, dy);

        Tensor dO = dOn;
        if (groupNorm)
        {
            dO = b.New(t, a);
            back.GroupNormBackward(s.O, lnWeight!.Value, dOn, Heads, Eps, dO, lnWeight.Grad, lnBias!.Grad);
        }

        // 7. Recurrence.
        var (dR, dKb, dVh, dWRecurrence) = (b.New(t, a), b.New(t, a), b.New(t, a), b.New(t, a));
        float scale = 1f / MathF.Sqrt(HeadDim);
        using (var zero = pass.Backend.Allocate(pass.Windows * Heads, HeadDim, HeadDim))
        {
            back.Wkv6BackwardSequences(pass.Windows, s.R, s.Kb, s.Vh, s.W, zero, scale, dO, dR, dKb, dVh, dWRecurrence);
        }

        // 6. Balancing.
        var dKh = dKb;
        var dW = dWRecurrence;
        if (Config.BalanceState)
        {
            dKh = b.New(t, a);
            var dWBalance = b.New(t, a);
            back.Rwkv6BalanceKeysBackward(s.Kh, s.W, dKb, dKh, dWBalance);
            dW = b.New(t, a);
            ops.Add(dWRecurrence, dWBalance, dW);
        }

        // 5. GQA, RoPE.
        int groups = Heads / KvHeads;
        var (dK, dV) = (b.New(t, KvWidth), b.New(t, KvWidth));
        back.RepeatKvBackward(dKh, KvHeads, HeadDim, groups, dK);
        back.RepeatKvBackward(dVh, KvHeads, HeadDim, groups, dV);
        if (Config.UseRope)
        {
            for (int i = 0; i < pass.Windows; i++)
            {
                back.RopeBackward(pass.Window(dK, i), KvHeads, HeadDim, 0, (float)Config.RopeTheta);
                back.RopeBackward(pass.Window(dR, i), Heads, HeadDim, 0, (float)Config.RopeTheta);
            }
        }

        var dD = b.New(t, a);
        back.Rwkv6DecayBackward(s.D, decay.Value, dW, dD, decay.Grad);

        if (!tokenShift)
        {
            // Every branch reads x itself: its gradient is the sum of the parts.
            bool started = false;
            AddInputGradient(pass, b, dx, ref started, part => LoraBackward(pass, b, s.X, s.Hd, decayW1, decayW2, dD, 't', part));
            if (s.G is not null)
            {
                AddInputGradient(pass, b, dx, ref started, part => gate.Backward(pass, b, s.X, s.G, s.Hg, dG, part));
            }

            AddInputGradient(pass, b, dx, ref started, part => back.MatMulBackward(s.X, q.Value, dR, part, q.Grad, qb?.Grad));
            AddInputGradient(pass, b, dx, ref started, part => back.MatMulBackward(s.X, k.Value, dK, part, k.Grad, kb?.Grad));
            AddInputGradient(pass, b, dx, ref started, part => back.MatMulBackward(s.X, v.Value, dV, part, v.Grad, vb?.Grad));
            return;
        }

        // 4–2. The five ddlerp outputs' gradients land in one [5T, C] buffer in the forward's row order r, k, v, w, g
        // (zero-filled: without a gate its rows stay 0).
        var dMixed = b.Zeros(5 * t, c);
        LoraBackward(pass, b, s.Xw, s.Hd, decayW1, decayW2, dD, 't', dMixed.Rows(3 * t, t));
        if (s.G is not null)
        {
            gate.Backward(pass, b, s.Xg, s.G, s.Hg, dG, dMixed.Rows(4 * t, t));
        }

        back.MatMulBackward(s.Xr, q.Value, dR, dMixed.Rows(0, t), q.Grad, qb?.Grad);
        back.MatMulBackward(s.Xk, k.Value, dK, dMixed.Rows(t, t), k.Grad, kb?.Grad);
        back.MatMulBackward(s.Xv, v.Value, dV, dMixed.Rows(2 * t, t), v.Grad, vb?.Grad);

        // 1. ddlerp, its LoRA, the pre-mix and the token shift.
        var (dXDdlerp, dDeltaDdlerp, dLora) = (b.New(t, c), b.New(t, c), b.New(t, 5 * mixRank));
        back.Rwkv6DdlerpBackward(s.Delta!, s.MixLora!, mixW2!.Value, mixes!, dMixed, dXDdlerp, dDeltaDdlerp, dLora, mixW2.Grad, mixesGrad);
        back.TanhBackward(s.MixLora!, dLora, dLora);
        var dXx = b.New(t, c);
        back.MatMulBackward(s.Xx!, mixW1!.Value, dLora, dXx, mixW1.Grad, null, WeightLayout.InOut);
        var (dXMix, dDeltaMix) = (b.New(t, c), b.New(t, c));
        back.MixShiftBackward(s.Delta!, mixX!.Value, dXx, dXMix, dDeltaMix, mixX.Grad);
        if (dx is null)
        {
            return;
        }

        var dDelta = b.New(t, c);
        ops.Add(dDeltaDdlerp, dDeltaMix, dDelta);
        var dXShift = b.New(t, c);
        for (int i = 0; i < pass.Windows; i++)
        {
            back.TokenShiftBackward(pass.Window(dDelta, i), null, pass.Window(dXShift, i), null);
        }

        ops.Add(dXDdlerp, dXMix, dx);
        ops.Add(dx, dXShift, dx);
    }
}
