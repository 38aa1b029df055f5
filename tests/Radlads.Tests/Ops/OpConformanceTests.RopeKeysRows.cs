using Radlads.Ops;

namespace Radlads.Tests.Ops;

/// <summary>
/// IOps.Rwkv7RopeKeysValueResidualRows (RAD-RWKV7's RoPE + GQA expansion + keys + value residual for one-token rows):
/// on each backend the fused call must give exactly the bits of RopeExpandRows then Rwkv7KeysValueResidual on that
/// backend (r rotated, kh, vh, removal, replacement, k̃; k is consumed and not compared), write every output
/// (NaN-poisoned first), and agree with the CPU backend's composition within the op tolerance. Shapes: batch 1 and
/// several rows at spread positions (0, past ILGPU's first RoPE table, past 100,000), 70 rows (two CUDA launches of 64),
/// GQA groups 1, 2 and 7 (the 7B layout 28/4 scaled down), head dims 8, 40 (a pair count that is no multiple of 32),
/// 64, 128, 256 and 320 (CUDA's two-op fallback); layer 0 (no residual) and later; balanced and stock keys.
/// </summary>
public abstract partial class OpConformanceTests
{
    /// <summary>
    /// (sequences, heads, kvHeads, N, balanced, residual) of the one-token RoPE-keys ops' tests: the 7B layer at batch 1,
    /// the 0.5B layer 0, GQA group 1, group 7 with N = 40 (pairs no multiple of 32; value rows no multiple of 8), head dims
    /// 8, 256 and 320 (CUDA's two-op fallback), several rows at spread positions, and 70 rows (two CUDA launches of 64).
    /// </summary>
    public static TheoryData<int, int, int, int, bool, bool> RopeKeysRowsShapes() => new()
    {
        { 1, 28, 4, 128, true, true },
        { 1, 14, 2, 64, true, false },
        { 1, 2, 2, 64, false, true },
        { 3, 4, 2, 128, false, false },
        { 3, 7, 1, 40, true, true },
        { 2, 2, 1, 8, false, true },
        { 2, 2, 1, 256, true, true },
        { 1, 2, 1, 320, true, true },
        { 70, 2, 1, 64, true, true },
    };

    [Theory]
    [MemberData(nameof(RopeKeysRowsShapes))]
    public void Rwkv7RopeKeysValueResidualRows(int sequences, int heads, int kvHeads, int n, bool balanced, bool residual)
    {
        var data = new TestData(80 + (sequences * 131) + (heads * 1009) + (kvHeads * 7) + (n * 17) + (balanced ? 3 : 0) + (residual ? 5 : 0));
        int a = heads * n, kv = kvHeads * n;
        var (inputs, positions) = RopeKeysRowsInputs(data, sequences, heads, kvHeads, n);

        // Runs on `on` and reads back r, kh, vh, removal, replacement, k̃.
        float[][] Run(IBackend on, List<IDisposable> keep, bool fused)
        {
            var io = new RunTensors(on, keep);
            Tensor T(float[] x, params int[] shape) => io.Of(x, shape);
            Tensor Poisoned() => io.Poisoned(sequences, a);
            var (r, k, v) = (T(inputs[0], sequences, a), T(inputs[1], sequences, kv), T(inputs[2], sequences, kv));
            var (w, rate) = (T(inputs[3], sequences, a), T(inputs[4], sequences, a));
            var (kk, ka) = balanced ? (null, null) : (T(inputs[5], a), T(inputs[6], a));
            var (first, nu) = residual ? (T(inputs[7], sequences, a), T(inputs[8], sequences, a)) : (null, null);
            var (kh, vh, removal, replacement, kTilde) = (Poisoned(), Poisoned(), Poisoned(), Poisoned(), Poisoned());
            if (fused)
            {
                on.Ops.Rwkv7RopeKeysValueResidualRows(r, k, v, heads, kvHeads, n, positions, 1e6f, w, rate, kk, ka, balanced, kh, vh, removal,
                    replacement, kTilde, first, nu);
            }
            else
            {
                on.Ops.RopeExpandRows(r, k, v, heads, kvHeads, n, positions, 1e6f, kh, vh);
                on.Ops.Rwkv7KeysValueResidual(kh, w, rate, kk, ka, n, balanced, removal, replacement, kTilde, vh, first, nu);
            }

            return io.Read([r, kh, vh, removal, replacement, kTilde]);
        }

        string[] names = ["r", "kh", "vh", "removal", "replacement", "k~"];
        FusedGivesTheBitsOfItsOps(Run, "rwkv7_rope_keys_rows", o => names[o], Tolerances.OpRelative, Tolerances.OpAbsolute);
    }

    /// <summary>
    /// One-token rows' inputs of the RoPE + keys ops: r, k, v, w, a (the in-context rate), k_k, k_a, v_first, ν; row 0's
    /// first KV head is zero (the keys' eps guard, in every query head of its group); positions spread past ILGPU's
    /// first RoPE table and past 100,000.
    /// </summary>
    private static (float[][] Inputs, int[] Positions) RopeKeysRowsInputs(TestData data, int sequences, int heads, int kvHeads, int n)
    {
        int a = heads * n, count = sequences * a, kv = sequences * kvHeads * n;
        float[][] inputs =
        [
            data.Normal(count), data.Normal(kv), data.Normal(kv), data.Uniform(count, 0.55f, 1f), data.Uniform(count, 0, 1),
            data.Uniform(a, 0.5f, 1.2f), data.Uniform(a, 0.5f, 1.5f), data.Normal(count), data.Uniform(count, 0, 1),
        ];
        Array.Clear(inputs[1], 0, n);
        var positions = Enumerable.Range(0, sequences).Select(b => b switch { 0 => 5, 1 => 100003, 2 => 4097, _ => (b * 7919) % 120000 }).ToArray();
        return (inputs, positions);
    }

    [Fact]
    public void Rwkv7RopeKeysValueResidualRowsRejectsMismatchedShapes()
    {
        var x = In(new float[16], 1, 16);
        var kv = In(new float[8], 1, 8);
        var e = Assert.Throws<ArgumentException>(() => Ops.Rwkv7RopeKeysValueResidualRows(x, kv, kv, 2, 1, 8, [0, 1], 1e6f, x, x, null, null,
            true, Out(1, 16), Out(1, 16), Out(1, 16), Out(1, 16), Out(1, 16), null, null));
        Assert.Contains("one row per sequence", e.Message, StringComparison.Ordinal);
        e = Assert.Throws<ArgumentException>(() => Ops.Rwkv7RopeKeysValueResidualRows(x, kv, kv, 2, 1, 8, [0], 1e6f, x, x, null, null,
            true, Out(1, 16), Out(1, 16), Out(1, 16), Out(1, 16), Out(1, 16), x, null));
        Assert.Contains("vFirst and nu", e.Message, StringComparison.Ordinal);
        e = Assert.Throws<ArgumentException>(() => Ops.Rwkv7RopeKeysValueResidualRows(x, kv, kv, 2, 1, 8, [0], 1e6f, x, x, null, null,
            false, Out(1, 16), Out(1, 16), Out(1, 16), Out(1, 16), Out(1, 16), null, null));
        Assert.Contains("k_k and k_a", e.Message, StringComparison.Ordinal);
    }
}
