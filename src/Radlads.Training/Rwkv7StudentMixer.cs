using Radlads.Models;
using Radlads.Ops;

namespace Radlads.Training;

/// <summary>
/// RAD-RWKV7 time mix for training (spec §4.2; the same ops in the same order as the inference <c>Rwkv7Mixer</c>),
/// with its backward. Trained: q/k/v/o (with the biases present), w0/w1/w2, a0/a1/a2, v0/v1/v2 (layers ≥ 1), the gate
/// (g1/g2 or gate.weight), k_k/k_a (variant G), ln_x (GroupNorm). Tensors the forward never reads (r_k, layer 0's
/// v0/v1/v2, k_k/k_a in variant B) get no gradient, so they are not parameters: they are copied unchanged, as torch's
/// AdamW skips a parameter whose grad is None.
/// </summary>
internal sealed class Rwkv7StudentMixer : StudentMixer
{
    private readonly Parameter q, k, v, o, w0, w1, w2, a0, a1, a2;
    private readonly Parameter? qb, kb, vb, ob, v0, v1, v2, keyScale, iclrMix, lnWeight, lnBias;
    private readonly TrainingGate gate;
    private readonly bool balanced;
    private readonly bool groupNorm;

    public Rwkv7StudentMixer(IBackend backend, IParameterSource source, ModelConfig config, int layer)
        : base(backend, source, config, layer)
    {
        int c = Hidden;
        int a = Width;
        if (c != a)
        {
            throw new RadladsException($"rwkv7qwen2 needs hidden_size ({c}) = num_attention_heads × head_dim ({a})");
        }

        q = Load("q_proj.weight", a, c);
        qb = Has("q_proj.bias") ? Load("q_proj.bias", a) : null;
        k = Load("k_proj.weight", KvWidth, c);
        kb = Has("k_proj.bias") ? Load("k_proj.bias", KvWidth) : null;
        v = Load("v_proj.weight", KvWidth, c);
        vb = Has("v_proj.bias") ? Load("v_proj.bias", KvWidth) : null;
        o = Load("o_proj.weight", c, a);
        ob = Has("o_proj.bias") ? Load("o_proj.bias", c) : null;
        int rw = Columns("w1");
        w0 = Load("w0", a);
        w1 = Load("w1", c, rw);
        w2 = Load("w2", rw, a);
        int ra = Columns("a1");
        a0 = Load("a0", a);
        a1 = Load("a1", c, ra);
        a2 = Load("a2", ra, a);
        if (layer > 0)
        {
            int rv = Columns("v1");
            v0 = Load("v0", a);
            v1 = Load("v1", c, rv);
            v2 = Load("v2", rv, a);
        }

        balanced = config.BalanceState;
        if (!balanced)
        {
            keyScale = Load("k_k", a);
            iclrMix = Load("k_a", a);
        }

        groupNorm = config.GroupNormAttention || Has("ln_x.weight");
        if (groupNorm)
        {
            lnWeight = Load("ln_x.weight", a);
            lnBias = Load("ln_x.bias", a);
        }

        gate = TrainingGate.Load(Has, Columns, Load, c, a);
    }

    private float Eps => HeadDim * 1e-5f;

    private float OutputScale => 1f / MathF.Sqrt(HeadDim);

    private sealed class Saved(IBackend backend) : Scratch(backend)
    {
        public Tensor X = null!, Hw = null!, Z = null!, W = null!, Ha = null!, Iclr = null!, R = null!, Kh = null!, Vh = null!;
        public Tensor Removal = null!, Replacement = null!, KTilde = null!, V = null!, O = null!, On = null!, Og = null!;
        public Tensor? G, Hg, Hv, Nu;
    }

    public override Scratch Forward(StudentPass pass, Tensor x, Tensor y)
    {
        var ops = pass.Ops;
        int t = pass.Rows;
        int a = Width;
        var s = new Saved(pass.Backend) { X = x };

        // 1. Projections (one shared call, as the inference mixer makes it).
        var r = s.New(t, a);
        var kRaw = s.New(t, KvWidth);
        var vRaw = s.New(t, KvWidth);
        ops.MatMulShared(x, [q.Value, k.Value, v.Value], [qb?.Value, kb?.Value, vb?.Value], [r, kRaw, vRaw]);

        // 2. Decay w = exp(−e^−0.5 · σ(w0 + tanh(x·w1)·w2)); z kept for the backward.
        (s.Hw, s.Z) = Lora(pass, s, x, w1, w2, ops.Tanh);
        s.W = s.New(t, a);
        ops.Rwkv7Decay(s.Z, w0.Value, s.W);

        // 3. In-context learning rate a = σ(a0 + (x·a1)·a2), in place (the backward reads the output).
        (s.Ha, s.Iclr) = Lora(pass, s, x, a1, a2, null);
        ops.AddSigmoid(s.Iclr, a0.Value, s.Iclr);

        // 4. Gate.
        s.G = gate.Forward(pass, s, x, a, out s.Hg);

        // 5–6. RoPE on r and k (in place: the backward needs only the rotated values), then GQA.
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

        // 7. Removal key κ (as a = −κ, b = κ⊙a) and replacement key k̃.
        (s.Removal, s.Replacement, s.KTilde) = (s.New(t, a), s.New(t, a), s.New(t, a));
        ops.Rwkv7Keys(s.Kh, s.W, s.Iclr, keyScale?.Value, iclrMix?.Value, HeadDim, balanced, s.Removal, s.Replacement, s.KTilde);

        // 8. Value residual: layer 0 publishes v_first; later layers lerp towards it by ν = σ(v0 + (x·v1)·v2).
        if (Layer == 0)
        {
            s.V = s.Vh;
            pass.ValueFirst = s.Vh;
            pass.ValueFirstGradient?.Dispose();
            pass.ValueFirstGradient = pass.Backend.Allocate(t, a);
        }
        else
        {
            var vFirst = pass.ValueFirst ?? throw new InvalidOperationException("RAD-RWKV7 layer ran before layer 0 produced v_first");
            (s.Hv, s.Nu) = Lora(pass, s, x, v1!, v2!, null);
            ops.AddSigmoid(s.Nu, v0!.Value, s.Nu);
            s.V = s.New(t, a);
            ops.Rwkv7ValueResidual(s.Vh, vFirst, s.Nu, s.V);
        }

        // 9. Generalised delta rule, each window from a zero state (all windows in one call).
        s.O = s.New(t, a);
        using (var state = pass.Backend.Allocate(pass.Windows * Heads, HeadDim, HeadDim))
        {
            pass.Back.Wkv7Sequences(pass.Windows, s.R, s.W, s.KTilde, s.V, s.Removal, s.Replacement, state, s.O);
        }

        // 10–11. Output normalisation, gate, o_proj.
        if (groupNorm)
        {
            s.On = s.New(t, a);
            ops.GroupNorm(s.O, lnWeight!.Value, lnBias!.Value, Heads, Eps, s.On);
        }
        else
        {
            s.On = s.New(t, a);
            ops.Scale(s.O, OutputScale, s.On);
        }

        if (s.G is not null)
        {
            s.Og = s.New(t, a);
            ops.Multiply(s.On, s.G, s.Og);
        }
        else
        {
            s.Og = s.On;
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
        int a = Width;
        using var b = new Scratch(pass.Backend);

        // 11. o_proj and gate.
        var (dOn, dG) = OutputBackward(pass, b, s.On, s.G, s.Og, o, ob, dy);

        // 10. Output normalisation.
        var dO = b.New(t, a);
        if (groupNorm)
        {
            back.GroupNormBackward(s.O, lnWeight!.Value, dOn, Heads, Eps, dO, lnWeight.Grad, lnBias!.Grad);
        }
        else
        {
            back.ScaleBackward(dOn, OutputScale, dO);
        }

        // 9. Recurrence, per window from its zero initial state.
        var (dR, dWRecurrence, dKTilde, dV, dRemoval, dReplacement) = (b.New(t, a), b.New(t, a), b.New(t, a), b.New(t, a), b.New(t, a), b.New(t, a));
        using (var zero = pass.Backend.Allocate(pass.Windows * Heads, HeadDim, HeadDim))
        {
            back.Wkv7BackwardSequences(pass.Windows, s.R, s.W, s.KTilde, s.V, s.Removal, s.Replacement, zero, dO,
                dR, dWRecurrence, dKTilde, dV, dRemoval, dReplacement);
        }

        bool started = false;

        // 8. Value residual. Layer 0's value is v_first: every later layer's gradient for it was accumulated already.
        var dVh = b.New(t, a);
        if (Layer == 0)
        {
            ops.Add(dV, pass.ValueFirstGradient!, dVh);
        }
        else
        {
            var dNu = b.New(t, a);
            back.Rwkv7ValueResidualBackward(s.Vh, pass.ValueFirst!, s.Nu!, dV, dVh, pass.ValueFirstGradient, dNu);
            var dZv = b.New(t, a);
            back.AddSigmoidBackward(s.Nu!, dNu, dZv, v0!.Grad);
            AddInputGradient(pass, b, dx, ref started, part => LoraBackward(pass, b, s.X, s.Hv!, v1!, v2!, dZv, ' ', part));
        }

        // 7. Keys.
        var (dKh, dWKeys, dIclr) = (b.New(t, a), b.New(t, a), b.New(t, a));
        back.Rwkv7KeysBackward(s.Kh, s.W, s.Iclr, keyScale?.Value, iclrMix?.Value, HeadDim, balanced, dRemoval, dReplacement, dKTilde,
            dKh, dWKeys, dIclr, keyScale?.Grad, iclrMix?.Grad);
        var dW = b.New(t, a);
        ops.Add(dWRecurrence, dWKeys, dW);

        // 6–5. GQA, RoPE.
        int groups = Heads / KvHeads;
        var (dK, dVRaw) = (b.New(t, KvWidth), b.New(t, KvWidth));
        back.RepeatKvBackward(dKh, KvHeads, HeadDim, groups, dK);
        back.RepeatKvBackward(dVh, KvHeads, HeadDim, groups, dVRaw);
        if (Config.UseRope)
        {
            for (int i = 0; i < pass.Windows; i++)
            {
                back.RopeBackward(pass.Window(dK, i), KvHeads, HeadDim, 0, (float)Config.RopeTheta);
                back.RopeBackward(pass.Window(dR, i), Heads, HeadDim, 0, (float)Config.RopeTheta);
            }
        }

        // 4. Gate.
        if (s.G is not null)
        {
            AddInputGradient(pass, b, dx, ref started, part => gate.Backward(pass, b, s.X, s.G, s.Hg, dG, part));
        }

        // 3. In-context learning rate.
        var dZa = b.New(t, a);
        back.AddSigmoidBackward(s.Iclr, dIclr, dZa, a0.Grad);
        AddInputGradient(pass, b, dx, ref started, part => LoraBackward(pass, b, s.X, s.Ha, a1, a2, dZa, ' ', part));

        // 2. Decay.
        var dZ = b.New(t, a);
        back.Rwkv7DecayBackward(s.Z, w0.Value, dW, dZ, w0.Grad);
        AddInputGradient(pass, b, dx, ref started, part => LoraBackward(pass, b, s.X, s.Hw, w1, w2, dZ, 't', part));

        // 1. Projections.
        AddInputGradient(pass, b, dx, ref started, part => back.MatMulBackward(s.X, q.Value, dR, part, q.Grad, qb?.Grad));
        AddInputGradient(pass, b, dx, ref started, part => back.MatMulBackward(s.X, k.Value, dK, part, k.Grad, kb?.Grad));
        AddInputGradient(pass, b, dx, ref started, part => back.MatMulBackward(s.X, v.Value, dVRaw, part, v.Grad, vb?.Grad));
    }
}
