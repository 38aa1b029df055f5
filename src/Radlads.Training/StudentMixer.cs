using Radlads.Models;
using Radlads.Ops;

namespace Radlads.Training;

/// <summary>
/// A trainable RAD-RWKV time mix of one layer: fp32 master parameters (named as in the student checkpoint), a forward
/// through <see cref="IOps"/> that performs the same ops in the same order as the inference mixer (so its output is
/// the inference output, bit for bit, given the same weights and input) and keeps what the backward reads, and the
/// backward through <see cref="IBackwardOps"/>. The mixer input x is the teacher's input_layernorm output in step 1.
/// </summary>
internal abstract class StudentMixer : IDisposable
{
    private readonly List<Parameter> parameters = [];
    private readonly List<Tensor> owned = [];

    protected StudentMixer(IBackend backend, IParameterSource source, ModelConfig config, int layer)
    {
        Backend = backend;
        Source = source;
        Config = config;
        Layer = layer;
        Prefix = $"model.layers.{layer}.self_attn.";
    }

    public int Layer { get; }

    public string Prefix { get; }

    /// <summary>The trained tensors of this layer, in a fixed order.</summary>
    public IReadOnlyList<Parameter> Parameters => parameters;

    protected IBackend Backend { get; }

    protected IParameterSource Source { get; }

    protected ModelConfig Config { get; }

    protected int Heads => Config.NumAttentionHeads;

    protected int KvHeads => Config.NumKeyValueHeads;

    protected int HeadDim => Config.HeadDim;

    protected int Width => Config.NumAttentionHeads * Config.HeadDim;

    protected int KvWidth => Config.NumKeyValueHeads * Config.HeadDim;

    protected int Hidden => Config.HiddenSize;

    /// <summary>
    /// Runs the mixer on x [Rows, C] into y [Rows, C] and returns what the backward needs, as a <see cref="Scratch"/>
    /// subclass the caller disposes after <see cref="Backward"/> (it may reference x, which the caller keeps alive).
    /// </summary>
    public abstract Scratch Forward(StudentPass pass, Tensor x, Tensor y);

    /// <summary>
    /// Adds ∂loss/∂θ into every parameter's gradient from dy = ∂loss/∂y [Rows, C]. dx [Rows, C], when given, is written
    /// with ∂loss/∂x (step 1 does not need it: x is the frozen teacher's).
    /// </summary>
    public abstract void Backward(StudentPass pass, Scratch saved, Tensor dy, Tensor? dx);

    /// <summary>A parameter <c>Prefix + name</c> of <paramref name="shape"/> (the stored shape may differ only by 1-dims).</summary>
    protected Parameter Load(string name, params int[] shape)
    {
        string full = Prefix + name;
        long count = 1;
        foreach (var d in shape)
        {
            count *= d;
        }

        var stored = Source.Shape(full);
        var squeezed = stored.Where(d => d != 1).ToArray();
        if (!squeezed.SequenceEqual(shape.Where(d => d != 1)))
        {
            throw new RadladsException($"{full} has shape [{string.Join(", ", stored)}], expected [{string.Join(", ", shape)}]");
        }

        var values = Source.Read(full, count);
        var value = Backend.FromFloats(values, shape);
        var p = new Parameter(full, value, Backend.Allocate(shape));
        parameters.Add(p);
        return p;
    }

    /// <summary>Several stored vectors of <paramref name="length"/> as one [names, length] tensor whose rows are the parameters.</summary>
    protected (Tensor Value, Tensor Grad, Parameter[] Rows) LoadStack(IReadOnlyList<string> names, int length)
    {
        var values = new float[names.Count * length];
        for (int i = 0; i < names.Count; i++)
        {
            Source.Read(Prefix + names[i], length).CopyTo(values, i * length);
        }

        var value = Own(Backend.FromFloats(values, names.Count, length));
        var grad = Own(Backend.Allocate(names.Count, length));
        var rows = new Parameter[names.Count];
        for (int i = 0; i < names.Count; i++)
        {
            // Views: the optimiser updates the rows in place, the ops read the whole stack.
            rows[i] = new Parameter(Prefix + names[i], value.Rows(i, 1), grad.Rows(i, 1));
            parameters.Add(rows[i]);
        }

        return (value, grad, rows);
    }

    protected bool Has(string name) => Source.Has(Prefix + name);

    /// <summary>The second dimension of a stored 2-D tensor: LoRA ranks come from shapes, as the loader reads them.</summary>
    protected int Columns(string name)
    {
        var shape = Source.Shape(Prefix + name);
        if (shape.Length != 2)
        {
            throw new RadladsException($"{Prefix + name} has shape [{string.Join(", ", shape)}], expected 2 dimensions");
        }

        return shape[1];
    }

    private Tensor Own(Tensor t)
    {
        owned.Add(t);
        return t;
    }

    // ---- Pieces shared by both mixers.

    /// <summary>LoRA branch of the forward: hidden = act(x·A) [Rows, R], y = hidden·B [Rows, M] (A, B stored in×out).</summary>
    protected static (Tensor Hidden, Tensor Y) Lora(StudentPass pass, Scratch s, Tensor x, Parameter a, Parameter b, Action<Tensor, Tensor>? activation)
    {
        var hidden = s.New(pass.Rows, a.Value.Shape[1]);
        pass.Ops.MatMul(x, a.Value, null, hidden, WeightLayout.InOut);
        activation?.Invoke(hidden, hidden);
        var y = s.New(pass.Rows, b.Value.Shape[1]);
        pass.Ops.MatMul(hidden, b.Value, null, y, WeightLayout.InOut);
        return (hidden, y);
    }

    /// <summary>
    /// Backward of <see cref="Lora"/> from dy [Rows, M]; activation: 't' tanh, 's' sigmoid, none. dx [Rows, C] is written
    /// when given.
    /// </summary>
    protected static void LoraBackward(StudentPass pass, Scratch s, Tensor x, Tensor hidden, Parameter a, Parameter b, Tensor dy, char activation, Tensor? dx)
    {
        var dHidden = s.New(hidden.Shape);
        pass.Back.MatMulBackward(hidden, b.Value, dy, dHidden, b.Grad, null, WeightLayout.InOut);
        if (activation == 't')
        {
            pass.Back.TanhBackward(hidden, dHidden, dHidden);
        }
        else if (activation == 's')
        {
            pass.Back.SigmoidBackward(hidden, dHidden, dHidden);
        }

        pass.Back.MatMulBackward(x, a.Value, dHidden, dx, a.Grad, null, WeightLayout.InOut);
    }

    /// <summary>
    /// Backward of y = og·oᵀ (+ ob) with og = on ⊙ g, or og = on without a gate (both mixers end so): accumulates o's
    /// (and ob's) gradient and returns ∂L/∂on [T, A] and ∂L/∂g (null without a gate), both in <paramref name="b"/>.
    /// </summary>
    protected static (Tensor DOn, Tensor? DG) OutputBackward(StudentPass pass, Scratch b, Tensor on, Tensor? g, Tensor og, Parameter o,
        Parameter? ob, Tensor dy)
    {
        int t = pass.Rows, a = o.Value.Shape[1]; // o_proj [C, A]
        var dOg = b.New(t, a);
        pass.Back.MatMulBackward(og, o.Value, dy, dOg, o.Grad, ob?.Grad);
        if (g is null)
        {
            return (dOg, null);
        }

        var dOn = b.New(t, a);
        var dG = b.New(t, a);
        pass.Back.MultiplyBackward(on, g, dOg, dOn, dG);
        return (dOn, dG);
    }

    /// <summary>Accumulates one part of ∂loss/∂x: the first part is written into dx, later parts are added.</summary>
    protected static void AddInputGradient(StudentPass pass, Scratch s, Tensor? dx, ref bool started, Action<Tensor?> part)
    {
        if (dx is null)
        {
            part(null);
            return;
        }

        if (!started)
        {
            part(dx);
            started = true;
            return;
        }

        var piece = s.New(dx.Shape);
        part(piece);
        pass.Ops.Add(dx, piece, dx);
    }

    public void Dispose()
    {
        foreach (var p in parameters)
        {
            p.Dispose();
        }

        foreach (var t in owned)
        {
            t.Dispose();
        }
    }
}

/// <summary>The output gate of a RAD-RWKV mixer for training (same kinds and ops as the inference <c>Gate</c>).</summary>
internal sealed class TrainingGate
{
    private readonly Parameter? full;
    private readonly Parameter? down;
    private readonly Parameter? up;

    private TrainingGate(GateKind kind, Parameter? full, Parameter? down, Parameter? up)
    {
        Kind = kind;
        this.full = full;
        this.down = down;
        this.up = up;
    }

    public GateKind Kind { get; }

    public static TrainingGate Load(Func<string, bool> has, Func<string, int> columns, Func<string, int[], Parameter> load, int hidden, int width)
    {
        if (has("gate.weight"))
        {
            return new TrainingGate(GateKind.FullRank, load("gate.weight", [width, hidden]), null, null);
        }

        if (has("g1") || has("g2"))
        {
            int rank = columns("g1");
            return new TrainingGate(GateKind.LowRank, null, load("g1", [hidden, rank]), load("g2", [rank, width]));
        }

        return new TrainingGate(GateKind.None, null, null, null);
    }

    /// <summary>g [Rows, A] from x [Rows, C] (null without a gate); <paramref name="hidden"/> is the low-rank σ(x·g1).</summary>
    public Tensor? Forward(StudentPass pass, Scratch s, Tensor x, int width, out Tensor? hidden)
    {
        hidden = null;
        switch (Kind)
        {
            case GateKind.FullRank:
                var g = s.New(pass.Rows, width);
                pass.Ops.MatMul(x, full!.Value, null, g);
                pass.Ops.Sigmoid(g, g);
                return g;
            case GateKind.LowRank:
                var hg = s.New(pass.Rows, down!.Value.Shape[1]);
                pass.Ops.MatMul(x, down.Value, null, hg, WeightLayout.InOut);
                pass.Ops.Sigmoid(hg, hg);
                var y = s.New(pass.Rows, width);
                pass.Ops.MatMul(hg, up!.Value, null, y, WeightLayout.InOut);
                hidden = hg;
                return y;
            default:
                return null;
        }
    }

    /// <summary>From dg = ∂loss/∂g; dx written when given. Not called without a gate.</summary>
    public void Backward(StudentPass pass, Scratch s, Tensor x, Tensor? g, Tensor? hidden, Tensor? dg, Tensor? dx)
    {
        switch (Kind)
        {
            case GateKind.FullRank:
                var dPre = s.New(g!.Shape);
                pass.Back.SigmoidBackward(g, dg!, dPre);
                pass.Back.MatMulBackward(x, full!.Value, dPre, dx, full.Grad, null);
                break;
            case GateKind.LowRank:
                var dHidden = s.New(hidden!.Shape);
                pass.Back.MatMulBackward(hidden, up!.Value, dg!, dHidden, up.Grad, null, WeightLayout.InOut);
                pass.Back.SigmoidBackward(hidden, dHidden, dHidden);
                pass.Back.MatMulBackward(x, down!.Value, dHidden, dx, down.Grad, null, WeightLayout.InOut);
                break;
            default:
                throw new InvalidOperationException("no gate to differentiate");
        }
    }
}
