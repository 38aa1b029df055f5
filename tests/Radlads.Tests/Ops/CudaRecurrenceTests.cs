using Radlads.Cuda;
using Radlads.Ops;
using Radlads.Tests.Models;

namespace Radlads.Tests.Ops;

/// <summary>
/// Wkv7 prefill on CUDA. The scan (T &gt; 1: <c>wkv7_tile_f32</c> with 1 and 2 rows per thread and 8 or 16 lanes a row)
/// against T one-token calls (<c>wkv7_decode_f32</c>, what generation runs): outputs and final state must be
/// bit-identical, so a prompt fed as one prefill leaves exactly the state that feeding it token by token leaves. The
/// chunked kernels (<c>wkv7_chunk_prep_f32</c> + <c>wkv7_chunk_scan_f32</c>, the default for long prompts) against the
/// recurrence in float64. Skipped without a GPU.
/// </summary>
public sealed class CudaRecurrenceTests : IDisposable
{
    private readonly List<IDisposable> owned = [];
    private CudaBackend? backend;

    private CudaBackend Backend => backend ??= CudaAvailability.Backend();

    public void Dispose()
    {
        foreach (var d in owned)
        {
            d.Dispose();
        }

        backend?.Dispose();
    }

    private Tensor In(float[] values, params int[] shape)
    {
        var t = Backend.FromFloats(values, shape);
        owned.Add(t);
        return t;
    }

    private Tensor Out(params int[] shape)
    {
        var t = Backend.Allocate(shape);
        owned.Add(t);
        Backend.Upload(Enumerable.Repeat(float.NaN, (int)t.ElementCount).ToArray(), t);
        return t;
    }

    private float[] Read(Tensor t)
    {
        var values = new float[t.ElementCount];
        Backend.Download(t, values);
        return values;
    }

    private static void BitIdentical(float[] expected, float[] actual, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
        {
            Assert.False(float.IsNaN(actual[i]) || float.IsInfinity(actual[i]), $"{what}[{i}] = {actual[i]}");
            if (BitConverter.SingleToInt32Bits(expected[i]) != BitConverter.SingleToInt32Bits(actual[i]))
            {
                Assert.Fail($"{what}[{i}]: prefill {actual[i]:R} differs from token-by-token {expected[i]:R}");
            }
        }
    }

    [Theory]
    [InlineData(2, 3, 16)]
    [InlineData(17, 2, 32)]
    [InlineData(64, 2, 40)]
    [InlineData(65, 4, 64)]
    [InlineData(300, 2, 128)]
    // Chunk and group borders of earlier kernels (9, 18, 29, 32 tokens) and a head dim that leaves rows of a block
    // past N (N = 20).
    [InlineData(9, 2, 128)]
    [InlineData(10, 1, 128)]
    [InlineData(19, 3, 64)]
    [InlineData(29, 2, 40)]
    [InlineData(30, 2, 40)]
    [InlineData(33, 3, 20)]
    // wkv7_tile_f32 (CudaOps.Wkv7TileGeometry): chunks of 16 tokens at N ≤ 128 and 8 above, groups of 8 tokens for
    // the y reduction (partial groups), every keys-per-lane level (N = 16, 40/64, 128, 200/256: NE 1, 2, 4, 8), a
    // head dim past which NE rounds up (200), blocks of 16 or 32 rows with rows past N.
    [InlineData(15, 2, 128)]
    [InlineData(16, 2, 128)]
    [InlineData(17, 2, 128)]
    [InlineData(31, 1, 128)]
    [InlineData(7, 2, 256)]
    [InlineData(9, 1, 256)]
    [InlineData(20, 1, 200)]
    [InlineData(2049, 2, 64)]
    public void Wkv7PrefillIsBitIdenticalToDecode(int t, int heads, int n)
    {
        // The scan: the chunked kernels take long prompts at head dims 64 and 128 by default (tests below).
        Backend.Wkv7Chunked = false;
        foreach (var (rows, lanes) in new[] { (2, 8), (1, 8), (2, 16) })
        {
            var (defaultRows, defaultLanes) = (Backend.Wkv7TileRows, Backend.Wkv7TileLanes);
            (Backend.Wkv7TileRows, Backend.Wkv7TileLanes) = (rows, lanes);
            try
            {
                PrefillAgainstDecode(t, heads, n, $"R {rows} L {lanes}");
            }
            finally
            {
                (Backend.Wkv7TileRows, Backend.Wkv7TileLanes) = (defaultRows, defaultLanes);
            }
        }
    }

    /// <summary>
    /// The chunked Wkv7 (chunks of 16 tokens) against the recurrence in float64 (NaiveOps.Wkv7), outputs NaN-poisoned
    /// first: the shortest prompt it takes (32 tokens), padded last chunks (33, 47, 2,049), a whole last chunk (48), both
    /// head dims, many heads (28: the 7B layer), a long prompt, and chunks whose decay leaves fp32's safe range (w = 1e-4
    /// on half the channels of tokens 16–31: γ over the chunk ~1e-32, so that chunk runs token by token in the scan
    /// kernel) between chunks that do not; each with the scan in blocks of 32 and of 16 state rows
    /// (RADLADS_WKV7_SCAN_ROWS). Where the two geometries split phase A's K into as many slices and spread a row over as
    /// many lanes on the token-by-token path, every output is summed in the same order, so they must agree bit for bit.
    /// </summary>
    [Theory]
    [InlineData(32, 2, 64, false)]
    [InlineData(33, 3, 64, false)]
    [InlineData(47, 2, 128, false)]
    [InlineData(48, 1, 128, false)]
    [InlineData(300, 2, 128, false)]
    [InlineData(2049, 2, 64, false)]
    [InlineData(2049, 2, 128, false)]
    [InlineData(64, 28, 128, false)]
    [InlineData(40, 2, 64, true)]
    [InlineData(50, 1, 128, true)]
    public void Wkv7ChunkedMatchesTheRecurrence(int t, int heads, int n, bool smallDecay)
    {
        var (r, w, k, v, removal, replacement, s0) = ChunkedInputs(new TestData(31), 1, t, heads, n, smallDecay);
        int a = heads * n;
        var expectedState = s0.Select(x => (double)x).ToArray();
        var expected = NaiveOps.Wkv7(r, w, k, v, removal, replacement, expectedState, t, heads, n);
        float[]? firstY = null, firstState = null;
        (int KeyGroups, int Lanes)? firstOrder = null;
        foreach (int rows in CudaOps.Wkv7ChunkScanRowChoices)
        {
            int threads = Backend.Kernels.Wkv7ChunkScanThreads[(n, rows)];
            var order = (KeyGroups: CudaOps.Wkv7ChunkScanKeyGroups(rows, threads), Lanes: threads / rows);
            var (y, state) = WithScanRows(rows, () =>
            {
                var state = In(s0, heads, n, n);
                var y = Out(t, a);
                long before = Backend.Wkv7ChunkedLaunches;
                Backend.Ops.Wkv7(In(r, t, a), In(w, t, a), In(k, t, a), In(v, t, a), In(removal, t, a), In(replacement, t, a), state, y);
                Assert.Equal(before + 1, Backend.Wkv7ChunkedLaunches);
                return (Read(y), Read(state));
            });
            double yError = Compare.MaxErrorRelativeToMax(expected, y);
            double stateError = Compare.MaxErrorRelativeToMax(expectedState, state);
            CudaModelTests.Report($"wkv7 chunked T {t} H {heads} N {n} R {rows}{(smallDecay ? " (small decays)" : "")}: y {yError:G3}, state {stateError:G3} × max");
            Assert.True(yError <= Tolerances.ChunkedRecurrenceRelativeToMax, $"rows {rows} y: {yError:G3} × max |y|");
            Assert.True(stateError <= Tolerances.ChunkedRecurrenceRelativeToMax, $"rows {rows} state: {stateError:G3} × max |state|");
            if (firstY is null)
            {
                (firstY, firstState, firstOrder) = (y, state, order);
            }
            else if (order == firstOrder)
            {
                BitIdentical(firstY, y, $"y, {rows} rows a block against {CudaOps.Wkv7ChunkScanRowChoices[0]}");
                BitIdentical(firstState!, state, $"state, {rows} rows a block against {CudaOps.Wkv7ChunkScanRowChoices[0]}");
            }
        }
    }

    private void WithScanRows(int rows, Action run) => WithScanRows(rows, () =>
    {
        run();
        return 0;
    });

    private T WithScanRows<T>(int rows, Func<T> run)
    {
        int before = Backend.Wkv7ChunkScanRows;
        Backend.Wkv7ChunkScanRows = rows;
        try
        {
            return run();
        }
        finally
        {
            Backend.Wkv7ChunkScanRows = before;
        }
    }

    /// <summary>
    /// The training forward (IBackwardOps.Wkv7Sequences: several windows in one launch, a grid row each) takes the
    /// chunked kernels too; each window must equal its own Wkv7 call bit for bit, as with the scan.
    /// </summary>
    [Theory]
    [InlineData(32)]
    [InlineData(16)]
    public void Wkv7ChunkedSequencesEqualSingleCalls(int rows) => WithScanRows(rows, () =>
    {
        const int sequences = 3, t = 40, heads = 2, n = 64, a = heads * n;
        var (r, w, k, v, removal, replacement, s0) = ChunkedInputs(new TestData(37), sequences, t, heads, n, smallDecay: false);
        var batchedState = In(s0, sequences * heads, n, n);
        var batchedY = Out(sequences * t, a);
        long before = Backend.Wkv7ChunkedLaunches;
        Backend.BackwardOps.Wkv7Sequences(sequences, In(r, sequences * t, a), In(w, sequences * t, a), In(k, sequences * t, a),
            In(v, sequences * t, a), In(removal, sequences * t, a), In(replacement, sequences * t, a), batchedState, batchedY);
        Assert.Equal(before + 1, Backend.Wkv7ChunkedLaunches);
        var ys = Read(batchedY);
        var states = Read(batchedState);
        for (int i = 0; i < sequences; i++)
        {
            float[] Window(float[] x) => x.AsSpan(i * t * a, t * a).ToArray();
            var state = In(s0.AsSpan(i * heads * n * n, heads * n * n).ToArray(), heads, n, n);
            var y = Out(t, a);
            Backend.Ops.Wkv7(In(Window(r), t, a), In(Window(w), t, a), In(Window(k), t, a), In(Window(v), t, a),
                In(Window(removal), t, a), In(Window(replacement), t, a), state, y);
            BitIdentical(Read(y), ys.AsSpan(i * t * a, t * a).ToArray(), $"window {i} y");
            BitIdentical(Read(state), states.AsSpan(i * heads * n * n, heads * n * n).ToArray(), $"window {i} state");
        }
    });

    /// <summary>
    /// IOps.Rwkv7RopeKeysWkv7 takes the prep that forms the keys (one wkv7_chunk_prep_keys launch, no composed ops), and a
    /// chunk whose γ is not a number (a NaN decay pre-activation at the last token of chunk 1, head 1) runs token by token
    /// from the r, w, k̃, a, b that prep wrote for it: y and the state must have the composed ops' bits wherever those are
    /// numbers (chunk 0, and chunk 1's 15 tokens before the NaN in that head), and be NaN where they are.
    /// </summary>
    [Fact]
    public void PromptKeysPrepRunsAFlaggedChunkTokenByToken()
    {
        const int t = 48, heads = 2, kvHeads = 1, n = 64, a = heads * n, kv = kvHeads * n;
        var data = new TestData(41);
        float[] r = data.Normal(t * a), k = data.Normal(t * kv), v = data.Normal(t * kv), zw = data.Normal(t * a), za = data.Normal(t * a);
        float[] zv = data.Normal(t * a), first = data.Normal(t * a), w0 = data.Normal(a), a0 = data.Normal(a), v0 = data.Normal(a);
        float[] s0 = data.Normal(heads * n * n, 0.5f);
        zw[(31 * a) + n + 5] = float.NaN;

        (float[] Y, float[] State) Run(bool fused)
        {
            bool before = Backend.FuseRopeKeysWkv7Prompt;
            Backend.FuseRopeKeysWkv7Prompt = fused;
            try
            {
                long launches = Backend.RopeKeysWkv7PromptLaunches;
                var state = In(s0, heads, n, n);
                var y = Out(t, a);
                Backend.Ops.Rwkv7RopeKeysWkv7(In(r, t, a), In(k, t, kv), In(v, t, kv), heads, kvHeads, n, true, 11, 1e6f, In(zw, t, a), In(w0, a),
                    In(za, t, a), In(a0, a), null, null, true, In(zv, t, a), In(v0, a), In(first, t, a), Out(t, a), Out(t, a), Out(t, a), Out(t, a),
                    Out(t, a), Out(t, a), state, y);
                Assert.Equal(launches + (fused ? 1 : 0), Backend.RopeKeysWkv7PromptLaunches);
                return (Read(y), Read(state));
            }
            finally
            {
                Backend.FuseRopeKeysWkv7Prompt = before;
            }
        }

        var composed = Run(false);
        var got = Run(true);
        int flaggedNumbers = 0;
        foreach (var (expected, actual, what) in new[] { (composed.Y, got.Y, "y"), (composed.State, got.State, "state") })
        {
            for (int i = 0; i < expected.Length; i++)
            {
                if (float.IsNaN(expected[i]))
                {
                    Assert.True(float.IsNaN(actual[i]), $"{what}[{i}] = {actual[i]}, the composed ops give NaN");
                    continue;
                }

                Assert.True(BitConverter.SingleToInt32Bits(expected[i]) == BitConverter.SingleToInt32Bits(actual[i]),
                    $"{what}[{i}] = {actual[i]:G9}, the composed ops give {expected[i]:G9}");
                int token = i / a, head = i % a / n;
                if (what == "y" && token is >= 16 and < 31 && head == 1)
                {
                    flaggedNumbers++;
                }
            }
        }

        // The flagged chunk's rows before the NaN were computed (token by token) and compared, not skipped as NaN.
        Assert.Equal(15 * n, flaggedNumbers);
        Assert.True(float.IsNaN(got.Y[(40 * a) + n]), "the NaN decay reaches the later rows of its head");
    }

    /// <summary>Wkv7 inputs as the model makes them: w ∈ (0.545, 1), a = −κ and b = κ ⊙ iclr with κ a unit vector per head.</summary>
    private static (float[] R, float[] W, float[] K, float[] V, float[] Removal, float[] Replacement, float[] State) ChunkedInputs(
        TestData data, int sequences, int t, int heads, int n, bool smallDecay)
    {
        int a = heads * n, rows = sequences * t;
        var r = data.Normal(rows * a);
        var w = data.Uniform(rows * a, 0.545f, 1f);
        var k = data.Normal(rows * a, 0.3f);
        var v = data.Normal(rows * a);
        var (removal, replacement) = data.Wkv7Keys(rows * a, n);

        if (smallDecay)
        {
            for (int token = 16; token < Math.Min(32, t); token++)
            {
                for (int j = 0; j < a; j += 2)
                {
                    w[(token * a) + j] = 1e-4f;
                }
            }
        }

        return (r, w, k, v, removal, replacement, data.Normal(sequences * heads * n * n, 0.5f));
    }

    private void PrefillAgainstDecode(int t, int heads, int n, string kernel)
    {
        var data = new TestData(29);
        int a = heads * n;
        var r = data.Normal(t * a);
        var w = data.Uniform(t * a, 0.545f, 1f);
        var k = data.Normal(t * a, 0.3f);
        var v = data.Normal(t * a);
        var removal = data.Normal(t * a, 0.1f);
        var replacement = data.Normal(t * a, 0.1f);
        var s0 = data.Normal(heads * n * n, 0.5f);

        var prefillState = In(s0, heads, n, n);
        var prefillY = Out(t, a);
        Backend.Ops.Wkv7(In(r, t, a), In(w, t, a), In(k, t, a), In(v, t, a), In(removal, t, a), In(replacement, t, a), prefillState, prefillY);

        var decodeState = In(s0, heads, n, n);
        var decodeY = new float[t * a];
        var y1 = Out(1, a);
        for (int p = 0; p < t; p++)
        {
            float[] Row(float[] x) => x.AsSpan(p * a, a).ToArray();
            Backend.Ops.Wkv7(In(Row(r), 1, a), In(Row(w), 1, a), In(Row(k), 1, a), In(Row(v), 1, a), In(Row(removal), 1, a),
                In(Row(replacement), 1, a), decodeState, y1);
            Read(y1).CopyTo(decodeY, p * a);
        }

        BitIdentical(decodeY, Read(prefillY), $"wkv7 output ({kernel})");
        BitIdentical(Read(decodeState), Read(prefillState), $"wkv7 state ({kernel})");
        // The state moved: a test of a no-op would pass the comparison above.
        Assert.NotEqual(s0, Read(prefillState));
    }
}
