using Radlads.Cpu;
using Radlads.Models;
using Radlads.Ops;
using Radlads.Training;
using static Radlads.Tests.Ops.NaiveOps;

namespace Radlads.Tests.Ops;

/// <summary>
/// Whole-mixer gradient checks for step 1 of the distillation (spec §7.2): a tiny RAD-RWKV7 and RAD-RWKV6 time mix
/// (C 16, H 2, N 8, KVH 1 so GQA groups of 2, small LoRA ranks) runs forward in fp32 through <see cref="IOps"/> and
/// backward through <see cref="IBackwardOps"/>, composed by the trainer's own mixers (<see cref="Rwkv7StudentMixer"/>,
/// <see cref="Rwkv6StudentMixer"/>); the loss is the
/// step-1 loss, mean over tokens of ‖o_teacher − o_student‖₂ / √C (the L2 norm, not squared), against a random
/// teacher output. The same mixer written with the float64 ops of <see cref="NaiveOps"/> gives ∂loss/∂θ by central
/// finite differences for every parameter element, the input x, and (v7) v_first. Training starts each window from
/// a zero state (and, v6, a zero shift state), as here.
/// </summary>
public sealed class MixerBackwardTests : IDisposable
{
    private const int T = 6, C = 16, H = 2, N = 8, KVH = 1, Groups = H / KVH, A = H * N, KV = KVH * N;
    private const double Theta = 1e4;

    private static readonly string[] Mixes = ["r", "k", "v", "w", "g"];

    private readonly CpuBackend backend = new();
    private readonly List<Tensor> owned = [];

    private IBackwardOps Back => backend.BackwardOps;

    /// <summary>Named parameters: float64 values (perturbed by finite differences) that are exactly fp32 numbers.</summary>
    private sealed class Parameters(TestData data)
    {
        public List<string> Names { get; } = [];

        public Dictionary<string, double[]> Values { get; } = [];

        public Dictionary<string, int[]> Shapes { get; } = [];

        public double[] this[string name] => Values[name];

        public void Normal(string name, float std, params int[] shape) => Add(name, data.Normal(shape.Aggregate(1, (p, d) => p * d), std), shape);

        public void Uniform(string name, float low, float high, params int[] shape) =>
            Add(name, data.Uniform(shape.Aggregate(1, (p, d) => p * d), low, high), shape);

        private void Add(string name, float[] values, int[] shape)
        {
            Names.Add(name);
            Values[name] = ToDouble(values);
            Shapes[name] = shape;
        }
    }

    private Tensor Z(params int[] shape)
    {
        var t = backend.Allocate(shape);
        owned.Add(t);
        return t;
    }

    private Tensor In(double[] values, params int[] shape)
    {
        var t = backend.FromFloats(values.Select(v => (float)v).ToArray(), shape);
        owned.Add(t);
        return t;
    }

    private static float[] Read(Tensor t) => ((CpuTensor)t).Floats.ToArray();

    /// <summary>The step-1 loss in float64: mean over tokens of ‖teacher − student‖₂ / √C.</summary>
    private static double StepOneLoss(double[] student, double[] teacher)
    {
        double loss = 0;
        for (int t = 0; t < T; t++)
        {
            double ss = 0;
            for (int i = 0; i < C; i++)
            {
                double e = teacher[(t * C) + i] - student[(t * C) + i];
                ss += e * e;
            }

            loss += Math.Sqrt(ss) / Math.Sqrt(C);
        }

        return loss / T;
    }

    /// <summary>The step-1 loss of an fp32 student output and ∂loss/∂student = −(teacher − student) / (T·√C·‖·‖).</summary>
    private static (double Loss, float[] Gradient) StepOneLossAndGradient(float[] student, double[] teacher)
    {
        var gradient = new float[T * C];
        double loss = 0;
        for (int t = 0; t < T; t++)
        {
            double ss = 0;
            for (int i = 0; i < C; i++)
            {
                double e = teacher[(t * C) + i] - student[(t * C) + i];
                ss += e * e;
            }

            double norm = Math.Sqrt(ss);
            loss += norm / Math.Sqrt(C);
            for (int i = 0; i < C; i++)
            {
                gradient[(t * C) + i] = (float)(-(teacher[(t * C) + i] - student[(t * C) + i]) / (T * Math.Sqrt(C) * norm));
            }
        }

        return (loss / T, gradient);
    }

    private static void CheckAll(Parameters p, Func<double> loss, Dictionary<string, float[]> analytic, string mixer)
    {
        Assert.Equal(p.Names.Count, analytic.Count);
        foreach (var name in p.Names)
        {
            var expected = FiniteDifferences.Gradient(p[name], loss);
            Compare.Gradient(expected, analytic[name], Tolerances.MixerGradientRelative, Tolerances.MixerGradientRelativeToMax, $"{mixer} d{name}");
        }
    }

    // ---------------------------------------------------------------- RAD-RWKV7

    private static Parameters Rwkv7Parameters(bool balanced, bool groupNorm)
    {
        const int Rw = 4, Ra = 4, Rv = 3, Rg = 5;
        var p = new Parameters(new TestData(balanced ? 201 : 202));
        p.Normal("x", 1f, T, C);
        p.Normal("v_first", 1f, T, A);
        p.Normal("q_proj.weight", 0.3f, A, C);
        p.Normal("q_proj.bias", 0.1f, A);
        p.Normal("k_proj.weight", 0.3f, KV, C);
        p.Normal("k_proj.bias", 0.1f, KV);
        p.Normal("v_proj.weight", 0.3f, KV, C);
        p.Normal("v_proj.bias", 0.1f, KV);
        p.Normal("o_proj.weight", 0.3f, C, A);
        p.Uniform("w0", -3f, 1f, A);
        p.Normal("w1", 0.3f, C, Rw);
        p.Normal("w2", 0.3f, Rw, A);
        p.Uniform("a0", -1f, 1f, A);
        p.Normal("a1", 0.3f, C, Ra);
        p.Normal("a2", 0.3f, Ra, A);
        p.Uniform("v0", -1f, 1f, A);
        p.Normal("v1", 0.3f, C, Rv);
        p.Normal("v2", 0.3f, Rv, A);
        p.Normal("g1", 0.3f, C, Rg);
        p.Normal("g2", 0.3f, Rg, A);
        if (!balanced)
        {
            p.Uniform("k_k", 0.5f, 1.2f, A);
            p.Uniform("k_a", 0.5f, 1.5f, A);
        }

        if (groupNorm)
        {
            p.Uniform("ln_x.weight", 0.5f, 1.5f, A);
            p.Normal("ln_x.bias", 0.1f, A);
        }

        return p;
    }

    /// <summary>RAD-RWKV7 time mix of a layer ≥ 1 (spec §4.2), float64, from the parameters (x and v_first included).</summary>
    private static double[] Rwkv7Forward(Parameters p, bool balanced, bool groupNorm)
    {
        var x = p["x"];
        int Rank(string name) => p.Shapes[name][1];
        var r = MatMul(x, p["q_proj.weight"], p["q_proj.bias"], T, C, A, true);
        var k = MatMul(x, p["k_proj.weight"], p["k_proj.bias"], T, C, KV, true);
        var vRaw = MatMul(x, p["v_proj.weight"], p["v_proj.bias"], T, C, KV, true);
        var w = Rwkv7Decay(MatMul(Tanh(MatMul(x, p["w1"], null, T, C, Rank("w1"), false)), p["w2"], null, T, Rank("w1"), A, false), p["w0"]);
        var iclr = AddSigmoid(MatMul(MatMul(x, p["a1"], null, T, C, Rank("a1"), false), p["a2"], null, T, Rank("a1"), A, false), p["a0"]);
        var g = MatMul(Sigmoid(MatMul(x, p["g1"], null, T, C, Rank("g1"), false)), p["g2"], null, T, Rank("g1"), A, false);
        r = Rope(r, T, H, N, 0, Theta);
        k = Rope(k, T, KVH, N, 0, Theta);
        var kh = RepeatKv(k, T, KVH, N, Groups);
        var vh = RepeatKv(vRaw, T, KVH, N, Groups);
        var (removal, replacement, kTilde) = Rwkv7Keys(kh, w, iclr, balanced ? null : p["k_k"], balanced ? null : p["k_a"], A, N, balanced);
        var nu = AddSigmoid(MatMul(MatMul(x, p["v1"], null, T, C, Rank("v1"), false), p["v2"], null, T, Rank("v1"), A, false), p["v0"]);
        var v = Rwkv7ValueResidual(vh, p["v_first"], nu);
        var o = Wkv7(r, w, kTilde, v, removal, replacement, new double[H * N * N], T, H, N);
        o = groupNorm ? GroupNorm(o, p["ln_x.weight"], p["ln_x.bias"], A, H, N * 1e-5f) : Map(o, e => e * (1f / MathF.Sqrt(N)));
        return MatMul(Zip(o, g, (a, b) => a * b), p["o_proj.weight"], null, T, A, C, true);
    }

    /// <summary>
    /// The same mixer in fp32 through the trainer's <see cref="Rwkv7StudentMixer"/> (layer 1, so the value residual
    /// reads v_first), forward through IOps and backward through IBackwardOps; returns the loss and ∂loss/∂(every
    /// parameter, x, v_first).
    /// </summary>
    private (double Loss, Dictionary<string, float[]> Gradients) Rwkv7Backward(Parameters p, double[] teacher, bool balanced, bool groupNorm)
    {
        var config = Config(Architecture.Rwkv7Qwen2, rope: true, balanced, groupNorm, tokenShift: false);
        using var mixer = new Rwkv7StudentMixer(backend, new DictionarySource(p, 1), config, 1);
        var pass = new StudentPass(backend, Back, 1, T) { ValueFirst = In(p["v_first"], T, A), ValueFirstGradient = Z(T, A) };
        var (loss, gradients) = Run(mixer, pass, p, teacher);
        gradients["v_first"] = Read(pass.ValueFirstGradient);
        return (loss, gradients);
    }

    /// <summary>Forward, the step-1 loss against <paramref name="teacher"/>, backward with ∂loss/∂x; gradients by short name.</summary>
    private (double Loss, Dictionary<string, float[]> Gradients) Run(StudentMixer mixer, StudentPass pass, Parameters p, double[] teacher)
    {
        var x = In(p["x"], T, C);
        var y = Z(T, C);
        using var saved = mixer.Forward(pass, x, y);
        var (loss, dOutput) = StepOneLossAndGradient(Read(y), teacher);
        var dx = Z(T, C);
        backend.Upload(Enumerable.Repeat(float.NaN, T * C).ToArray(), dx); // must be written in full
        mixer.Backward(pass, saved, In(ToDouble(dOutput), T, C), dx);
        var gradients = mixer.Parameters.ToDictionary(q => q.Name[mixer.Prefix.Length..], q => Read(q.Grad));
        gradients["x"] = Read(dx);
        return (loss, gradients);
    }

    private static ModelConfig Config(Architecture architecture, bool rope, bool balanced, bool groupNorm, bool tokenShift) => new()
    {
        ModelType = architecture == Architecture.Rwkv7Qwen2 ? "rwkv7qwen2" : "rwkv6qwen2",
        Architecture = architecture,
        HiddenSize = C,
        IntermediateSize = 1,
        NumAttentionHeads = H,
        NumKeyValueHeads = KVH,
        NumHiddenLayers = 2,
        VocabSize = 1,
        HeadDim = N,
        RopeTheta = Theta,
        UseRope = rope,
        BalanceState = balanced,
        GroupNormAttention = groupNorm,
        UseTokenShift = tokenShift,
    };

    /// <summary>The test's parameters as the student checkpoint of layer <paramref name="layer"/> would hold them.</summary>
    private sealed class DictionarySource(Parameters p, int layer) : IParameterSource
    {
        private readonly string prefix = $"model.layers.{layer}.self_attn.";

        private string Short(string name) => name.StartsWith(prefix, StringComparison.Ordinal) ? name[prefix.Length..] : "";

        public bool Has(string name) => p.Values.ContainsKey(Short(name));

        public int[] Shape(string name) => p.Shapes[Short(name)];

        public float[] Read(string name, long count)
        {
            var values = p[Short(name)];
            Assert.Equal(count, values.Length);
            return values.Select(v => (float)v).ToArray();
        }
    }

    [Theory]
    [InlineData(true, false)]
    [InlineData(false, true)]
    public void Rwkv7MixerGradientsMatchFiniteDifferences(bool balanced, bool groupNorm)
    {
        var p = Rwkv7Parameters(balanced, groupNorm);
        var teacher = ToDouble(new TestData(203).Normal(T * C));
        var (loss, gradients) = Rwkv7Backward(p, teacher, balanced, groupNorm);
        double Loss() => StepOneLoss(Rwkv7Forward(p, balanced, groupNorm), teacher);
        Assert.Equal(Loss(), loss, Tolerances.OpRelative * Loss());
        CheckAll(p, Loss, gradients, balanced ? "rwkv7 B" : "rwkv7 G");
    }

    // ---------------------------------------------------------------- RAD-RWKV6

    private static Parameters Rwkv6Parameters()
    {
        const int Rm = 3, Rd = 4;
        var p = new Parameters(new TestData(204));
        p.Normal("x", 1f, T, C);
        p.Normal("q_proj.weight", 0.3f, A, C);
        p.Normal("q_proj.bias", 0.1f, A);
        p.Normal("k_proj.weight", 0.3f, KV, C);
        p.Normal("k_proj.bias", 0.1f, KV);
        p.Normal("v_proj.weight", 0.3f, KV, C);
        p.Normal("v_proj.bias", 0.1f, KV);
        p.Normal("o_proj.weight", 0.3f, C, A);
        p.Normal("gate.weight", 0.3f, A, C);
        p.Uniform("time_maa_x", 0f, 1f, C);
        foreach (var m in Mixes)
        {
            p.Uniform("time_maa_" + m, -0.5f, 0.5f, C);
        }

        p.Normal("time_maa_w1", 0.3f, C, 5 * Rm);
        p.Normal("time_maa_w2", 0.3f, 5, Rm, C);
        // d0 + LoRA spans about [−3.6, 3.1]: −exp(d) passes the −5 clamp at d ≈ 1.61, so both regimes occur.
        p.Uniform("time_decay", -3f, 2.5f, A);
        p.Normal("time_decay_w1", 0.3f, C, Rd);
        p.Normal("time_decay_w2", 0.3f, Rd, A);
        return p;
    }

    /// <summary>RAD-RWKV6 time mix (spec §3.2) with token shift from a zero shift state, float64.</summary>
    private static double[] Rwkv6Forward(Parameters p, bool rope) => Rwkv6Forward(p, rope, out _);

    private static double[] Rwkv6Forward(Parameters p, bool rope, out double[] decay)
    {
        var x = p["x"];
        int rm = p.Shapes["time_maa_w2"][1];
        int rd = p.Shapes["time_decay_w1"][1];
        var (delta, _) = TokenShift(x, new double[C], T, C);
        var xx = MixShift(x, delta, p["time_maa_x"]);
        var lora = Tanh(MatMul(xx, p["time_maa_w1"], null, T, C, 5 * rm, false));
        var mixed = Rwkv6Ddlerp(x, delta, lora, p["time_maa_w2"], Mixes.SelectMany(m => p["time_maa_" + m]).ToArray(), T, C, rm);
        double[] Part(int i) => Rows(mixed, i * T, T, C);
        var r = MatMul(Part(0), p["q_proj.weight"], p["q_proj.bias"], T, C, A, true);
        var k = MatMul(Part(1), p["k_proj.weight"], p["k_proj.bias"], T, C, KV, true);
        var v = MatMul(Part(2), p["v_proj.weight"], p["v_proj.bias"], T, C, KV, true);
        var w = Rwkv6Decay(MatMul(Tanh(MatMul(Part(3), p["time_decay_w1"], null, T, C, rd, false)), p["time_decay_w2"], null, T, rd, A, false), p["time_decay"]);
        decay = w;
        var g = Sigmoid(MatMul(Part(4), p["gate.weight"], null, T, C, A, true));
        if (rope)
        {
            r = Rope(r, T, H, N, 0, Theta);
            k = Rope(k, T, KVH, N, 0, Theta);
        }

        var kb = Rwkv6BalanceKeys(RepeatKv(k, T, KVH, N, Groups), w);
        var o = Wkv6(r, kb, RepeatKv(v, T, KVH, N, Groups), w, new double[H * N * N], T, H, N, 1f / MathF.Sqrt(N));
        return MatMul(Zip(o, g, (a, b) => a * b), p["o_proj.weight"], null, T, A, C, true);
    }

    /// <summary>The same mixer through the trainer's <see cref="Rwkv6StudentMixer"/> (token shift, full gate, balancing).</summary>
    private (double Loss, Dictionary<string, float[]> Gradients) Rwkv6Backward(Parameters p, double[] teacher, bool rope)
    {
        var config = Config(Architecture.Rwkv6Qwen2, rope, balanced: true, groupNorm: false, tokenShift: true);
        using var mixer = new Rwkv6StudentMixer(backend, new DictionarySource(p, 0), config, 0);
        using var pass = new StudentPass(backend, Back, 1, T);
        return Run(mixer, pass, p, teacher);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Rwkv6MixerWithTokenShiftGradientsMatchFiniteDifferences(bool rope)
    {
        var p = Rwkv6Parameters();
        var teacher = ToDouble(new TestData(205).Normal(T * C));
        var (loss, gradients) = Rwkv6Backward(p, teacher, rope);
        Rwkv6Forward(p, rope, out var decay);
        Assert.Contains(decay, e => e == Math.Exp(-5));
        Assert.Contains(decay, e => e > Math.Exp(-5));
        double Loss() => StepOneLoss(Rwkv6Forward(p, rope), teacher);
        Assert.Equal(Loss(), loss, Tolerances.OpRelative * Loss());
        CheckAll(p, Loss, gradients, rope ? "rwkv6 (rope)" : "rwkv6");
    }

    public void Dispose()
    {
        foreach (var t in owned)
        {
            t.Dispose();
        }

        backend.Dispose();
    }
}
