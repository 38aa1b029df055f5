using Radlads.Models;
using static Radlads.Tests.Ops.NaiveOps;

namespace Radlads.Tests.Training;

/// <summary>
/// The step-1 student in float64, written from the spec (§3.2, §4.2, §7.2) with the ops of <see cref="Ops.NaiveOps"/>:
/// every layer's RAD-RWKV6/7 mixer on the teacher's normalised inputs, windows independent from zero state, RAD-RWKV7's
/// v_first from student layer 0, and the mean over layers, windows and positions of ‖o_T − o_S‖₂/√C. Parameters are
/// looked up by their checkpoint names and perturbed in place by finite differences.
/// </summary>
internal sealed class NaiveStudent(ModelConfig config, int windows, int length, Dictionary<string, double[]> parameters)
{
    private int C => config.HiddenSize;

    private int H => config.NumAttentionHeads;

    private int Kvh => config.NumKeyValueHeads;

    private int N => config.HeadDim;

    private int A => H * N;

    private int Rows => windows * length;

    public Dictionary<string, double[]> Parameters { get; } = parameters;

    /// <summary>Mean step-1 loss over every layer, given the teacher's per-layer inputs and attention outputs [Rows, C].</summary>
    public double Loss(IReadOnlyList<double[]> inputs, IReadOnlyList<double[]> teacherOutputs)
    {
        double sum = 0;
        double[]? vFirst = null;
        for (int l = 0; l < config.NumHiddenLayers; l++)
        {
            var y = config.Architecture == Architecture.Rwkv7Qwen2 ? Rwkv7(l, inputs[l], ref vFirst) : Rwkv6(l, inputs[l]);
            sum += AlignmentLoss(teacherOutputs[l], y, C);
        }

        return sum / ((double)config.NumHiddenLayers * Rows);
    }

    private bool Has(int l, string name) => Parameters.ContainsKey($"model.layers.{l}.self_attn.{name}");

    private double[] P(int l, string name) => Parameters[$"model.layers.{l}.self_attn.{name}"];

    private double[]? Opt(int l, string name) => Has(l, name) ? P(l, name) : null;

    /// <summary>Columns of a [in, rank] LoRA factor.</summary>
    private int Rank(int l, string name, int rows) => P(l, name).Length / rows;

    /// <summary>f applied to each window's rows of the given [Rows, width_i] arrays, results concatenated.</summary>
    private double[] PerWindow(Func<double[][], double[]> f, int[] widths, params double[][] xs)
    {
        var result = new List<double>();
        for (int w = 0; w < windows; w++)
        {
            var slices = xs.Select((x, i) => Rows(x, w * length, length, widths[i])).ToArray();
            result.AddRange(f(slices));
        }

        return result.ToArray();
    }

    private double[] RopeRows(double[] x, int heads) =>
        config.UseRope ? PerWindow(s => Rope(s[0], length, heads, N, 0, config.RopeTheta), [heads * N], x) : x;

    private double[]? GateOf(int l, double[] x)
    {
        if (Has(l, "gate.weight"))
        {
            return Sigmoid(MatMul(x, P(l, "gate.weight"), null, Rows, C, A, true));
        }

        if (Has(l, "g1"))
        {
            int rg = Rank(l, "g1", C);
            return MatMul(Sigmoid(MatMul(x, P(l, "g1"), null, Rows, C, rg, false)), P(l, "g2"), null, Rows, rg, A, false);
        }

        return null;
    }

    private double[] Output(int l, double[] o, double[]? g)
    {
        var og = g is null ? o : Zip(o, g, (a, b) => a * b);
        return MatMul(og, P(l, "o_proj.weight"), Opt(l, "o_proj.bias"), Rows, A, C, true);
    }

    private double[] Rwkv7(int l, double[] x, ref double[]? vFirst)
    {
        int kv = Kvh * N;
        var r = MatMul(x, P(l, "q_proj.weight"), Opt(l, "q_proj.bias"), Rows, C, A, true);
        var k = MatMul(x, P(l, "k_proj.weight"), Opt(l, "k_proj.bias"), Rows, C, kv, true);
        var vRaw = MatMul(x, P(l, "v_proj.weight"), Opt(l, "v_proj.bias"), Rows, C, kv, true);
        int rw = Rank(l, "w1", C);
        var w = Rwkv7Decay(MatMul(Tanh(MatMul(x, P(l, "w1"), null, Rows, C, rw, false)), P(l, "w2"), null, Rows, rw, A, false), P(l, "w0"));
        int ra = Rank(l, "a1", C);
        var iclr = AddSigmoid(MatMul(MatMul(x, P(l, "a1"), null, Rows, C, ra, false), P(l, "a2"), null, Rows, ra, A, false), P(l, "a0"));
        var g = GateOf(l, x);
        r = RopeRows(r, H);
        k = RopeRows(k, Kvh);
        var kh = RepeatKv(k, Rows, Kvh, N, H / Kvh);
        var vh = RepeatKv(vRaw, Rows, Kvh, N, H / Kvh);
        bool balanced = config.BalanceState;
        var (removal, replacement, kTilde) = Rwkv7Keys(kh, w, iclr, balanced ? null : P(l, "k_k"), balanced ? null : P(l, "k_a"), A, N, balanced);
        double[] v;
        if (l == 0)
        {
            v = vh;
            vFirst = vh;
        }
        else
        {
            int rv = Rank(l, "v1", C);
            var nu = AddSigmoid(MatMul(MatMul(x, P(l, "v1"), null, Rows, C, rv, false), P(l, "v2"), null, Rows, rv, A, false), P(l, "v0"));
            v = Rwkv7ValueResidual(vh, vFirst!, nu);
        }

        int[] widths = [A, A, A, A, A, A];
        var o = PerWindow(s => Wkv7(s[0], s[1], s[2], s[3], s[4], s[5], new double[H * N * N], length, H, N), widths, r, w, kTilde, v, removal, replacement);
        o = Has(l, "ln_x.weight") ? GroupNorm(o, P(l, "ln_x.weight"), P(l, "ln_x.bias"), A, H, N * 1e-5f) : Map(o, e => e * (1f / MathF.Sqrt(N)));
        return Output(l, o, g);
    }

    private double[] Rwkv6(int l, double[] x)
    {
        int kv = Kvh * N;
        double[] xr = x, xk = x, xv = x, xw = x, xg = x;
        if (config.UseTokenShift)
        {
            int rm = Rank(l, "time_maa_w1", C) / 5;
            var delta = PerWindow(s => TokenShift(s[0], new double[C], length, C).Delta, [C], x);
            var xx = MixShift(x, delta, P(l, "time_maa_x"));
            var lora = Tanh(MatMul(xx, P(l, "time_maa_w1"), null, Rows, C, 5 * rm, false));
            var mixes = new[] { "r", "k", "v", "w", "g" }.SelectMany(m => P(l, "time_maa_" + m)).ToArray();
            var mixed = Rwkv6Ddlerp(x, delta, lora, P(l, "time_maa_w2"), mixes, Rows, C, rm);
            (xr, xk, xv, xw, xg) = (Rows(mixed, 0, Rows, C), Rows(mixed, Rows, Rows, C), Rows(mixed, 2 * Rows, Rows, C),
                Rows(mixed, 3 * Rows, Rows, C), Rows(mixed, 4 * Rows, Rows, C));
        }

        var r = MatMul(xr, P(l, "q_proj.weight"), Opt(l, "q_proj.bias"), Rows, C, A, true);
        var k = MatMul(xk, P(l, "k_proj.weight"), Opt(l, "k_proj.bias"), Rows, C, kv, true);
        var v = MatMul(xv, P(l, "v_proj.weight"), Opt(l, "v_proj.bias"), Rows, C, kv, true);
        int rd = Rank(l, "time_decay_w1", C);
        var w = Rwkv6Decay(MatMul(Tanh(MatMul(xw, P(l, "time_decay_w1"), null, Rows, C, rd, false)), P(l, "time_decay_w2"), null, Rows, rd, A, false),
            P(l, "time_decay"));
        var g = GateOf(l, xg);
        r = RopeRows(r, H);
        k = RopeRows(k, Kvh);
        var kh = RepeatKv(k, Rows, Kvh, N, H / Kvh);
        var vh = RepeatKv(v, Rows, Kvh, N, H / Kvh);
        if (config.BalanceState)
        {
            kh = Rwkv6BalanceKeys(kh, w);
        }

        var o = PerWindow(s => Wkv6(s[0], s[1], s[2], s[3], new double[H * N * N], length, H, N, 1f / MathF.Sqrt(N)), [A, A, A, A], r, kh, vh, w);
        if (Has(l, "ln_x.weight"))
        {
            o = GroupNorm(o, P(l, "ln_x.weight"), P(l, "ln_x.bias"), A, H, N * 1e-5f);
        }

        return Output(l, o, g);
    }
}
