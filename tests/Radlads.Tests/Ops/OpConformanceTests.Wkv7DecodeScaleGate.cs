using Radlads.Ops;

namespace Radlads.Tests.Ops;

/// <summary>
/// IOps.Wkv7DecodeScaleGate (RAD-RWKV7's balanced output × N^−1/2 ⊙ g in the wkv7 decode epilogue): on each backend
/// the fused call must give exactly the bits of Wkv7Decode then ScaleMultiply on that backend (y and the updated
/// states), write every output (NaN-poisoned first), and agree with the CPU backend's composition within the
/// recurrence tolerance. Shapes: batch 1 (the recorded single-sequence path: CUDA's wkv7_decode_f32), several sequences
/// (wkv7_decode_rows_f32), 70 sequences (two 64-row chunks), head dims 8, 40 (idle lanes), 64, 128, 256 (8 a lane) and
/// 320 (beyond CUDA's Wkv7, which refuses it: the fused op must refuse it with the same message).
/// </summary>
public abstract partial class OpConformanceTests
{
    [Theory]
    [InlineData(1, 3, 64)]
    [InlineData(1, 4, 128)]
    [InlineData(1, 2, 256)]
    [InlineData(1, 1, 320)]
    [InlineData(3, 2, 128)]
    [InlineData(2, 2, 40)]
    [InlineData(2, 1, 320)]
    [InlineData(70, 1, 8)]
    public void Wkv7DecodeScaleGate(int sequences, int heads, int n)
    {
        var data = new TestData(70 + (sequences * 131) + (heads * 1009) + (n * 17));
        int a = heads * n;
        int count = sequences * a;
        var (r, w, k, v, removal, replacement, s0) = Wkv7DecodeInputs(data, sequences, heads, n);
        var gate = data.Normal(count); // the low-rank gate σ(x·g1)·g2 is unbounded, of either sign
        float scale = 1f / MathF.Sqrt(n);

        // Runs on `on` (this backend or the CPU reference) and reads back y then each state.
        static float[][] Run(IBackend on, List<IDisposable> keep, bool fused, int sequences, int heads, int n, float[][] inputs,
            float[][] s0, float scale)
        {
            int a = heads * n;
            var io = new RunTensors(on, keep);
            Tensor T(float[] x, params int[] shape) => io.Of(x, shape);

            var (rt, wt, kt, vt, at, bt, gt) = (T(inputs[0], sequences, a), T(inputs[1], sequences, a), T(inputs[2], sequences, a),
                T(inputs[3], sequences, a), T(inputs[4], sequences, a), T(inputs[5], sequences, a), T(inputs[6], sequences, a));
            var states = s0.Select(s => T(s, heads, n, n)).ToArray();
            var y = io.Poisoned(sequences, a);
            if (fused)
            {
                on.Ops.Wkv7DecodeScaleGate(rt, wt, kt, vt, at, bt, states, scale, gt, y);
            }
            else
            {
                on.Ops.Wkv7Decode(rt, wt, kt, vt, at, bt, states, y);
                on.Ops.ScaleMultiply(y, scale, gt, y);
            }

            return io.Read([y, .. states]);
        }

        float[][] inputs = [r, w, k, v, removal, replacement, gate];
        FusedGivesTheBitsOfItsOps((on, keep, fused) => Run(on, keep, fused, sequences, heads, n, inputs, s0, scale), "wkv7_decode_scale_gate",
            o => o == 0 ? "y" : $"state {o - 1}", Tolerances.RecurrenceRelative, Tolerances.RecurrenceAbsolute);
    }

    [Fact]
    public void Wkv7DecodeScaleGateRejectsAGateAliasingYOrOfTheWrongSize()
    {
        var x = In(new float[16], 1, 16);
        var state = In(new float[2 * 8 * 8], 2, 8, 8);
        var y = Out(1, 16);
        var e = Assert.Throws<ArgumentException>(() => Ops.Wkv7DecodeScaleGate(x, x, x, x, x, x, [state], 0.5f, y, y));
        Assert.Contains("gate must not alias y", e.Message, StringComparison.Ordinal);
        e = Assert.Throws<ArgumentException>(() => Ops.Wkv7DecodeScaleGate(x, x, x, x, x, x, [state], 0.5f, In(new float[8], 1, 8), y));
        Assert.Contains("Wkv7DecodeScaleGate", e.Message, StringComparison.Ordinal);
        e = Assert.Throws<ArgumentException>(() => Ops.Wkv7DecodeScaleGate(x, x, x, x, x, x, [state, state], 0.5f, In(new float[16], 1, 16), y));
        Assert.Contains("one row per sequence", e.Message, StringComparison.Ordinal);
    }
}
