using Radlads.Cuda;
using Radlads.Ops;
using Radlads.Tests.Models;

namespace Radlads.Tests.Ops;

/// <summary>
/// Wkv7 prefill (T &gt; 1: <c>wkv7_tile_f32</c> with 1 and 2 rows per thread and 8 or 16 lanes a row) against T
/// one-token calls (<c>wkv7_decode_f32</c>, what generation runs): outputs and final state must be bit-identical, so a prompt fed as one prefill leaves exactly the state that
/// feeding it token by token leaves. Skipped without a GPU.
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
