using Radlads.Cpu;
using Radlads.Ops;

namespace Radlads.Tests.Ops;

/// <summary>
/// The fused ops (IOps.RopeExpand, RopeExpandRows, ExpandKv, ScaleMultiply): on each backend the fused call must give
/// exactly the bits of the ops it replaces (Rope/RopeRows on r and k, then RepeatKv on k and v; Scale then Multiply)
/// run on the same backend, write every output (NaN-poisoned first), and match the float64 definitions. Shapes:
/// T = 1, 2, 5; (H, KVH) = (2, 2), (6, 2), (14, 2), (28, 4) (MHA, and the GQA groups of Qwen2.5 0.5B, and 7B);
/// N = 64, 128; start positions 0 and 100,000.
/// </summary>
public abstract partial class OpConformanceTests
{
    public static TheoryData<int, int, int, int, int> RopeExpandShapes()
    {
        var data = new TheoryData<int, int, int, int, int>();
        foreach (int t in new[] { 1, 2, 5 })
        {
            foreach (var (h, kvh) in new[] { (2, 2), (6, 2), (14, 2), (28, 4) })
            {
                foreach (int n in new[] { 64, 128 })
                {
                    foreach (int start in new[] { 0, 100000 })
                    {
                        data.Add(t, h, kvh, n, start);
                    }
                }
            }
        }

        // Prefill-sized calls (T·KVH·N/2 ≥ 65,536): the CUDA backend's thread per KV-head pair (rope_expand_f32 with per = groups).
        data.Add(300, 28, 4, 128, 0);
        data.Add(300, 28, 4, 128, 100000);
        data.Add(1100, 14, 2, 64, 7);
        return data;
    }

    [Theory]
    [MemberData(nameof(RopeExpandShapes))]
    public void RopeExpand(int t, int heads, int kvHeads, int n, int start)
    {
        var (r, k, v) = RopeExpandInputs(HashCode.Combine(50, t, heads, kvHeads, n, start), t, heads, kvHeads, n);
        var fused = RunRopeExpand(r, k, v, t, heads, kvHeads, n, expand: true,
            (rt, kt, vt, kh, vh) => Ops.RopeExpand(rt, kt, vt, heads, kvHeads, n, start, 1e6f, kh, vh));
        var unfused = RunRopeExpand(r, k, v, t, heads, kvHeads, n, expand: true, (rt, kt, vt, kh, vh) =>
        {
            Ops.Rope(rt, heads, n, start, 1e6f);
            Ops.Rope(kt, kvHeads, n, start, 1e6f);
            Ops.RepeatKv(kt, kvHeads, n, heads / kvHeads, kh!);
            Ops.RepeatKv(vt!, kvHeads, n, heads / kvHeads, vh!);
        });
        SameBits(unfused, fused, "rope_expand");
        CheckRopeExpand(fused, r, k, v, t, heads, kvHeads, n, [.. Enumerable.Repeat(start, t).Select((s, i) => s + i)], expand: true);
    }

    [Theory]
    [InlineData(1, 2, 2, 64)]
    [InlineData(2, 6, 2, 128)]
    [InlineData(5, 14, 2, 64)]
    [InlineData(5, 28, 4, 128)]
    [InlineData(33, 14, 2, 64)]
    [InlineData(70, 6, 2, 64)] // crosses the CUDA launch table (64 rows)
    public void RopeExpandRows(int sequences, int heads, int kvHeads, int n)
    {
        var (r, k, v) = RopeExpandInputs(HashCode.Combine(51, sequences, heads, kvHeads, n), sequences, heads, kvHeads, n);
        // Per-row positions: 0, a long one, and a spread up past 100,000.
        var positions = Enumerable.Range(0, sequences).Select(b => b switch { 0 => 0, 1 => 100000, _ => (b * 7919) % 120000 }).ToArray();
        var fused = RunRopeExpand(r, k, v, sequences, heads, kvHeads, n, expand: true,
            (rt, kt, vt, kh, vh) => Ops.RopeExpandRows(rt, kt, vt, heads, kvHeads, n, positions, 1e6f, kh, vh));
        var unfused = RunRopeExpand(r, k, v, sequences, heads, kvHeads, n, expand: true, (rt, kt, vt, kh, vh) =>
        {
            Ops.RopeRows(rt, heads, n, positions, 1e6f);
            Ops.RopeRows(kt, kvHeads, n, positions, 1e6f);
            Ops.RepeatKv(kt, kvHeads, n, heads / kvHeads, kh!);
            Ops.RepeatKv(vt!, kvHeads, n, heads / kvHeads, vh!);
        });
        SameBits(unfused, fused, "rope_expand_rows");
        CheckRopeExpand(fused, r, k, v, sequences, heads, kvHeads, n, positions, expand: true);
    }

    [Theory]
    [InlineData(1, 14, 2, 64, 100000, false)]
    [InlineData(5, 28, 4, 128, 7, false)]
    [InlineData(3, 6, 2, 64, 0, true)]
    [InlineData(70, 2, 2, 128, 0, true)]
    public void RopeExpandWithoutExpansionIsRopeOnQueryAndKey(int t, int heads, int kvHeads, int n, int start, bool rows)
    {
        // Qwen2's use: its KV cache takes k at KVH heads, rotated; v, kh and vh are null.
        var (r, k, v) = RopeExpandInputs(HashCode.Combine(52, t, heads, kvHeads, n, start, rows), t, heads, kvHeads, n);
        var positions = Enumerable.Range(0, t).Select(i => start + (i * 977)).ToArray();
        var fused = RunRopeExpand(r, k, v, t, heads, kvHeads, n, expand: false, (rt, kt, _, _, _) =>
        {
            if (rows)
            {
                Ops.RopeExpandRows(rt, kt, null, heads, kvHeads, n, positions, 1e6f, null, null);
            }
            else
            {
                Ops.RopeExpand(rt, kt, null, heads, kvHeads, n, start, 1e6f, null, null);
            }
        });
        var unfused = RunRopeExpand(r, k, v, t, heads, kvHeads, n, expand: false, (rt, kt, _, _, _) =>
        {
            if (rows)
            {
                Ops.RopeRows(rt, heads, n, positions, 1e6f);
                Ops.RopeRows(kt, kvHeads, n, positions, 1e6f);
            }
            else
            {
                Ops.Rope(rt, heads, n, start, 1e6f);
                Ops.Rope(kt, kvHeads, n, start, 1e6f);
            }
        });
        SameBits(unfused, fused, "rope_expand (RoPE only)");
        CheckRopeExpand(fused, r, k, v, t, heads, kvHeads, n, rows ? positions : [.. Enumerable.Range(start, t)], expand: false);
    }

    [Theory]
    [InlineData(1, 2, 2, 64)]
    [InlineData(2, 14, 2, 64)]
    [InlineData(5, 28, 4, 128)]
    [InlineData(3, 6, 2, 8)]
    public void ExpandKv(int t, int heads, int kvHeads, int n)
    {
        var (_, k, v) = RopeExpandInputs(HashCode.Combine(53, t, heads, kvHeads, n), t, heads, kvHeads, n);
        int width = heads * n, kvWidth = kvHeads * n, groups = heads / kvHeads;
        var (kh, vh) = (Out(t, width), Out(t, width));
        Ops.ExpandKv(In(k, t, kvWidth), In(v, t, kvWidth), heads, kvHeads, n, kh, vh);
        var (kh1, vh1) = (Out(t, width), Out(t, width));
        Ops.RepeatKv(In(k, t, kvWidth), kvHeads, n, groups, kh1);
        Ops.RepeatKv(In(v, t, kvWidth), kvHeads, n, groups, vh1);
        SameBits([Read(kh1), Read(vh1)], [Read(kh), Read(vh)], "expand_kv");
        Check(NaiveOps.RepeatKv([.. k.Select(x => (double)x)], t, kvHeads, n, groups), kh, "expand_kv kh");
        Check(NaiveOps.RepeatKv([.. v.Select(x => (double)x)], t, kvHeads, n, groups), vh, "expand_kv vh");
    }

    [Theory]
    [InlineData(1, 1, 0.125f)]
    [InlineData(1, 896, 0.125f)]
    [InlineData(3, 1000, 0.08838835f)]
    [InlineData(5, 3584, 0.08838835f)]
    public void ScaleMultiply(int t, int c, float s)
    {
        var data = new TestData(HashCode.Combine(54, t, c));
        var a = data.Normal(t * c, 2f);
        var b = data.Normal(t * c, 2f);
        var y = Out(t, c);
        Ops.ScaleMultiply(In(a, t, c), s, In(b, t, c), y);
        var inPlace = In(a, t, c);
        Ops.ScaleMultiply(inPlace, s, In(b, t, c), inPlace); // RAD-RWKV7's o ← (o · N^−1/2) ⊙ g
        var unfused = In(a, t, c);
        Ops.Scale(unfused, s, unfused);
        Ops.Multiply(unfused, In(b, t, c), unfused);
        var expected = Read(unfused);
        SameBits([expected], [Read(y)], "scale_multiply");
        SameBits([expected], [Read(inPlace)], "scale_multiply in place");
        Check([.. a.Zip(b, (p, q) => (double)p * s * q)], y, "scale_multiply");
    }

    [Fact]
    public void FusedOpsRejectShapesThatDoNotFit()
    {
        var r = Out(2, 4 * 8);
        var k = Out(2, 2 * 8);
        var v = Out(2, 2 * 8);
        var kh = Out(2, 4 * 8);
        var vh = Out(2, 4 * 8);
        // Heads not a multiple of KV heads, an odd head dim, r of the wrong width, kh of the wrong width, v without kh/vh.
        var e = Assert.Throws<ArgumentException>(() => Ops.RopeExpand(r, k, v, 3, 2, 8, 0, 1e6f, kh, vh));
        Assert.Contains("multiple of KV heads", e.Message, StringComparison.Ordinal);
        e = Assert.Throws<ArgumentException>(() => Ops.RopeExpand(Out(2, 4 * 7), Out(2, 2 * 7), v, 4, 2, 7, 0, 1e6f, kh, vh));
        Assert.Contains("even head dim", e.Message, StringComparison.Ordinal);
        e = Assert.Throws<ArgumentException>(() => Ops.RopeExpand(k, k, v, 4, 2, 8, 0, 1e6f, kh, vh));
        Assert.Contains("RopeExpand: r [2, 16]", e.Message, StringComparison.Ordinal);
        e = Assert.Throws<ArgumentException>(() => Ops.RopeExpand(r, k, v, 4, 2, 8, 0, 1e6f, k, vh));
        Assert.Contains("kh [2, 16]", e.Message, StringComparison.Ordinal);
        e = Assert.Throws<ArgumentException>(() => Ops.RopeExpand(r, k, v, 4, 2, 8, 0, 1e6f, null, null));
        Assert.Contains("together", e.Message, StringComparison.Ordinal);
        e = Assert.Throws<ArgumentException>(() => Ops.RopeExpandRows(r, k, v, 4, 2, 8, [0, 1, 2], 1e6f, kh, vh));
        Assert.Contains("one row per sequence", e.Message, StringComparison.Ordinal);
        e = Assert.Throws<ArgumentException>(() => Ops.RopeExpandRows(r, Out(3, 16), v, 4, 2, 8, [0, 1], 1e6f, kh, vh));
        Assert.Contains("RopeExpandRows", e.Message, StringComparison.Ordinal);
        e = Assert.Throws<ArgumentException>(() => Ops.ExpandKv(k, Out(2, 8), 4, 2, 8, kh, vh));
        Assert.Contains("ExpandKv: v [2, 8]", e.Message, StringComparison.Ordinal);
        e = Assert.Throws<ArgumentException>(() => Ops.ScaleMultiply(r, 0.5f, k, r));
        Assert.Contains("ScaleMultiply", e.Message, StringComparison.Ordinal);
    }

    private (float[] R, float[] K, float[] V) RopeExpandInputs(int seed, int t, int heads, int kvHeads, int n)
    {
        var data = new TestData(seed);
        return (data.Normal(t * heads * n), data.Normal(t * kvHeads * n), data.Normal(t * kvHeads * n));
    }

    /// <summary>
    /// Uploads r, k, v, poisons kh and vh (when <paramref name="expand"/>), runs <paramref name="op"/> and returns r, k
    /// (both rotated in place), and kh, vh, v (v must be left as it was).
    /// </summary>
    private float[][] RunRopeExpand(float[] r, float[] k, float[] v, int t, int heads, int kvHeads, int n, bool expand,
        Action<Tensor, Tensor, Tensor?, Tensor?, Tensor?> op)
    {
        var (rt, kt, vt) = (In(r, t, heads * n), In(k, t, kvHeads * n), In(v, t, kvHeads * n));
        var kh = expand ? Out(t, heads * n) : null;
        var vh = expand ? Out(t, heads * n) : null;
        op(rt, kt, vt, kh, vh);
        return expand ? [Read(rt), Read(kt), Read(kh!), Read(vh!), Read(vt)] : [Read(rt), Read(kt), Read(vt)];
    }

    /// <summary>The fused outputs against the float64 definitions (r, k rotated at the given row positions; kh, vh expanded).</summary>
    private static void CheckRopeExpand(float[][] outputs, float[] r, float[] k, float[] v, int t, int heads, int kvHeads, int n,
        int[] positions, bool expand)
    {
        int width = heads * n, kvWidth = kvHeads * n;
        double[] Rotate(float[] x, int h, int w) => [.. Enumerable.Range(0, t)
            .SelectMany(row => NaiveOps.Rope(x[(row * w)..((row + 1) * w)], 1, h, n, positions[row], 1e6))];
        var kRotated = Rotate(k, kvHeads, kvWidth);
        CloseToDefinition(Rotate(r, heads, width), outputs[0], "rope_expand r");
        CloseToDefinition(kRotated, outputs[1], "rope_expand k");
        if (expand)
        {
            CloseToDefinition(NaiveOps.RepeatKv(kRotated, t, kvHeads, n, heads / kvHeads), outputs[2], "rope_expand kh");
            CloseToDefinition(NaiveOps.RepeatKv([.. v.Select(x => (double)x)], t, kvHeads, n, heads / kvHeads), outputs[3], "rope_expand vh");
        }

        SameBits([v], [outputs[^1]], "rope_expand leaves v");
    }

    private static void CloseToDefinition(double[] expected, float[] actual, string what) =>
        Compare.Close(expected, actual, Tolerances.OpRelative, Tolerances.OpAbsolute, what);

    /// <summary>
    /// What every "a fused op gives the bits of its ops" test checks. <paramref name="run"/>(on, keep, fused) builds the
    /// inputs on a backend (tensors it allocates go to keep), runs the fused op or its composition, and reads back the
    /// outputs. On this backend the fused call must give the composition's bits with every output written (inputs
    /// poisoned with NaN by run), and agree with the CPU backend's composition within the tolerance. When this backend
    /// refuses the composition (NotSupportedException: e.g. a head too large for its recurrence), the fused call must
    /// refuse it with the same message, not compute something else.
    /// </summary>
    private void FusedGivesTheBitsOfItsOps(Func<IBackend, List<IDisposable>, bool, float[][]> run, string name, Func<int, string> output,
        double relative, double absolute)
    {
        float[][] composed;
        try
        {
            composed = run(Backend, owned, false);
        }
        catch (NotSupportedException unsupported)
        {
            var e = Assert.Throws<NotSupportedException>(() => run(Backend, owned, true));
            Assert.Equal(unsupported.Message, e.Message);
            return;
        }

        var got = run(Backend, owned, true);
        SameBits(composed, got, name);
        using var cpu = new CpuBackend();
        var cpuOwned = new List<IDisposable>();
        var reference = run(cpu, cpuOwned, false);
        for (int o = 0; o < reference.Length; o++)
        {
            Compare.Close(reference[o], got[o], relative, absolute, $"{name} {output(o)} vs CPU");
        }

        foreach (var t in cpuOwned)
        {
            t.Dispose();
        }
    }

    /// <summary>
    /// The tensors of one <see cref="FusedGivesTheBitsOfItsOps"/> run on a backend (this one or the CPU reference): inputs
    /// uploaded and kept for disposal, outputs NaN-poisoned, results read back in order.
    /// </summary>
    private sealed class RunTensors(IBackend on, List<IDisposable> keep)
    {
        public Tensor Of(float[] values, params int[] shape)
        {
            var t = on.FromFloats(values, shape);
            keep.Add(t);
            return t;
        }

        public Tensor Poisoned(params int[] shape) => Of(Enumerable.Repeat(float.NaN, shape.Aggregate(1, (p, d) => p * d)).ToArray(), shape);

        public float[][] Read(IEnumerable<Tensor> tensors) => [.. tensors.Select(t =>
        {
            var values = new float[t.ElementCount];
            on.Download(t, values);
            return values;
        })];
    }

    /// <summary>Each actual output has exactly the bits of the expected one, and no NaN (every element written).</summary>
    private static void SameBits(float[][] expected, float[][] actual, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int o = 0; o < expected.Length; o++)
        {
            Assert.Equal(expected[o].Length, actual[o].Length);
            for (int i = 0; i < expected[o].Length; i++)
            {
                float e = expected[o][i], a = actual[o][i];
                Assert.False(float.IsNaN(a), $"{what}: output {o} element {i} is NaN (not written)");
                Assert.True(BitConverter.SingleToInt32Bits(e) == BitConverter.SingleToInt32Bits(a),
                    $"{what}: output {o} element {i} is {a:G9}, the unfused ops give {e:G9}");
            }
        }
    }
}
