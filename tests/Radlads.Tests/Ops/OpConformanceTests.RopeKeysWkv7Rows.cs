using Radlads.Ops;

namespace Radlads.Tests.Ops;

/// <summary>
/// IOps.Rwkv7RopeKeysWkv7Rows (RAD-RWKV7's RoPE + GQA expansion + keys + value residual + delta rule + scale and gate,
/// for one-token rows): on each backend the fused call must give exactly the bits of Rwkv7RopeKeysValueResidualRows then
/// Wkv7DecodeScaleGate on that backend for its outputs (y, the updated states, vh), write every output (NaN-poisoned
/// first), and agree with the CPU backend's composition within the recurrence tolerance. r, k, kh, removal,
/// replacement and k̃ are workspace and not compared. Shapes: the 7B and 0.5B layers at batch 1 (CUDA's recorded path,
/// a block per 8 value rows of a head), several rows at spread positions, 70 rows (two CUDA launches of 64), GQA groups
/// 1, 2 and 7, head dims 8, 40 (value rows no multiple of 8, pairs no multiple of 32), 64, 128, 256 and 320 (beyond
/// CUDA's decode kernels: the fused op must fall back, or refuse with the composition's message); layer 0 (no residual)
/// and later; balanced and stock keys.
/// </summary>
public abstract partial class OpConformanceTests
{
    [Theory]
    [MemberData(nameof(RopeKeysRowsShapes))]
    public void Rwkv7RopeKeysWkv7Rows(int sequences, int heads, int kvHeads, int n, bool balanced, bool residual)
    {
        var data = new TestData(90 + (sequences * 131) + (heads * 1009) + (kvHeads * 7) + (n * 17) + (balanced ? 3 : 0) + (residual ? 5 : 0));
        int a = heads * n, kv = kvHeads * n;
        int count = sequences * a;
        var (inputs, positions) = RopeKeysRowsInputs(data, sequences, heads, kvHeads, n);
        var gateValues = data.Normal(count); // the gate σ(x·g1)·g2: unbounded, of either sign
        var s0 = Enumerable.Range(0, sequences).Select(_ => data.Normal(heads * n * n, 0.5f)).ToArray();
        float scale = 1f / MathF.Sqrt(n);

        // Runs on `on` and reads back y, vh, then each state.
        float[][] Run(IBackend on, List<IDisposable> keep, bool fused)
        {
            var io = new RunTensors(on, keep);
            Tensor T(float[] x, params int[] shape) => io.Of(x, shape);
            Tensor Poisoned() => io.Poisoned(sequences, a);
            var (r, k, v) = (T(inputs[0], sequences, a), T(inputs[1], sequences, kv), T(inputs[2], sequences, kv));
            var (w, rate, gate) = (T(inputs[3], sequences, a), T(inputs[4], sequences, a), T(gateValues, sequences, a));
            var (kk, ka) = balanced ? (null, null) : (T(inputs[5], a), T(inputs[6], a));
            var (first, nu) = residual ? (T(inputs[7], sequences, a), T(inputs[8], sequences, a)) : (null, null);
            var (kh, vh, removal, replacement, kTilde, y) = (Poisoned(), Poisoned(), Poisoned(), Poisoned(), Poisoned(), Poisoned());
            var states = s0.Select(s => T(s, heads, n, n)).ToArray();
            if (fused)
            {
                on.Ops.Rwkv7RopeKeysWkv7Rows(r, k, v, heads, kvHeads, n, positions, 1e6f, w, rate, kk, ka, balanced, kh, vh, removal,
                    replacement, kTilde, first, nu, states, scale, gate, y);
            }
            else
            {
                on.Ops.Rwkv7RopeKeysValueResidualRows(r, k, v, heads, kvHeads, n, positions, 1e6f, w, rate, kk, ka, balanced, kh, vh, removal,
                    replacement, kTilde, first, nu);
                on.Ops.Wkv7DecodeScaleGate(r, w, kTilde, vh, removal, replacement, states, scale, gate, y);
            }

            return io.Read([y, vh, .. states]);
        }

        FusedGivesTheBitsOfItsOps(Run, "rwkv7_rope_keys_wkv7_rows", o => o switch { 0 => "y", 1 => "vh", _ => $"state {o - 2}" },
            Tolerances.RecurrenceRelative, Tolerances.RecurrenceAbsolute);
    }

    [Fact]
    public void Rwkv7RopeKeysWkv7RowsRejectsMismatchedShapes()
    {
        var x = In(new float[16], 1, 16);
        var kv = In(new float[8], 1, 8);
        var state = In(new float[2 * 8 * 8], 2, 8, 8);
        var e = Assert.Throws<ArgumentException>(() => Ops.Rwkv7RopeKeysWkv7Rows(x, kv, kv, 2, 1, 8, [0, 1], 1e6f, x, x, null, null,
            true, Out(1, 16), Out(1, 16), Out(1, 16), Out(1, 16), Out(1, 16), null, null, [state], 0.5f, x, Out(1, 16)));
        Assert.Contains("one row per sequence", e.Message, StringComparison.Ordinal);
        e = Assert.Throws<ArgumentException>(() => Ops.Rwkv7RopeKeysWkv7Rows(x, kv, kv, 2, 1, 8, [0], 1e6f, x, x, null, null,
            true, Out(1, 16), Out(1, 16), Out(1, 16), Out(1, 16), Out(1, 16), null, null, [state, state], 0.5f, x, Out(1, 16)));
        Assert.Contains("one row per sequence", e.Message, StringComparison.Ordinal);
        var y = Out(1, 16);
        e = Assert.Throws<ArgumentException>(() => Ops.Rwkv7RopeKeysWkv7Rows(x, kv, kv, 2, 1, 8, [0], 1e6f, x, x, null, null,
            true, Out(1, 16), Out(1, 16), Out(1, 16), Out(1, 16), Out(1, 16), null, null, [state], 0.5f, y, y));
        Assert.Contains("gate must not alias y", e.Message, StringComparison.Ordinal);
        e = Assert.Throws<ArgumentException>(() => Ops.Rwkv7RopeKeysWkv7Rows(x, kv, kv, 2, 1, 8, [0], 1e6f, x, x, null, null,
            false, Out(1, 16), Out(1, 16), Out(1, 16), Out(1, 16), Out(1, 16), null, null, [state], 0.5f, x, Out(1, 16)));
        Assert.Contains("k_k and k_a", e.Message, StringComparison.Ordinal);
    }
}
