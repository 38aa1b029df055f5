using Radlads.Checkpoints;

namespace Radlads.Tests.Checkpoints;

public class Bf16Tests
{
    private static ushort[] AllPatterns() => [.. Enumerable.Range(0, 65536).Select(i => (ushort)i)];

    private static uint Definition(ushort bits) => (uint)bits << 16;

    [Fact]
    public void ToSingle_span_matches_the_definition_for_every_bit_pattern()
    {
        var source = AllPatterns();
        var destination = new float[source.Length];
        Bf16.ToSingle(source, destination);
        for (var i = 0; i < source.Length; i++)
        {
            Assert.Equal(Definition(source[i]), BitConverter.SingleToUInt32Bits(destination[i]));
            Assert.Equal(float.IsNaN(destination[i]), (source[i] & 0x7FFF) > 0x7F80);
        }
    }

    [Theory]
    [InlineData(0, 0)]
    [InlineData(1, 1)]
    [InlineData(3, 7)]
    [InlineData(5, 15)]
    [InlineData(0, 16)]
    [InlineData(1, 17)]
    [InlineData(7, 40)]
    [InlineData(9, 65527)]
    public void ToSingle_span_handles_unaligned_starts_and_scalar_tails(int start, int length)
    {
        var source = AllPatterns().AsSpan(start, length);
        var destination = new float[length + 3];
        destination.AsSpan().Fill(-1f);
        Bf16.ToSingle(source, destination);
        for (var i = 0; i < length; i++)
        {
            Assert.Equal(Definition(source[i]), BitConverter.SingleToUInt32Bits(destination[i]));
        }

        Assert.All(destination[length..], value => Assert.Equal(-1f, value));
    }

    [Fact]
    public void ToSingle_scalar_matches_the_definition_for_every_bit_pattern()
    {
        foreach (var bits in AllPatterns())
        {
            Assert.Equal(Definition(bits), BitConverter.SingleToUInt32Bits(Bf16.ToSingle(bits)));
        }
    }

    [Fact]
    public void ToSingle_rejects_a_short_destination() =>
        Assert.Throws<ArgumentException>(() => Bf16.ToSingle(new ushort[4], new float[3]));

    [Fact]
    public void FromSingle_is_exact_on_every_bf16_value_and_keeps_nan_nan()
    {
        foreach (var bits in AllPatterns())
        {
            var value = Bf16.ToSingle(bits);
            var back = Bf16.FromSingle(value);
            if (float.IsNaN(value))
            {
                Assert.True(float.IsNaN(Bf16.ToSingle(back)), $"0x{bits:X4} became 0x{back:X4}");
                Assert.Equal(bits & 0x8000, back & 0x8000);
            }
            else
            {
                Assert.Equal(bits, back);
            }
        }
    }

    [Theory]
    [InlineData(0x3F808000u, (ushort)0x3F80)] // 1 + 2^-8: a tie, mantissa even → down
    [InlineData(0x3F818000u, (ushort)0x3F82)] // a tie, mantissa odd → up to even
    [InlineData(0x3F808001u, (ushort)0x3F81)] // just above half → up
    [InlineData(0x3F807FFFu, (ushort)0x3F80)] // just below half → down
    [InlineData(0xBF818000u, (ushort)0xBF82)] // negative tie → to even
    [InlineData(0x00008000u, (ushort)0x0000)] // subnormal tie → even zero
    [InlineData(0x00018000u, (ushort)0x0002)] // subnormal tie, odd → up
    [InlineData(0x80000000u, (ushort)0x8000)] // -0 stays -0
    [InlineData(0x7F7FFFFFu, (ushort)0x7F80)] // float.MaxValue overflows to +inf
    [InlineData(0xFF7FFFFFu, (ushort)0xFF80)] // -float.MaxValue overflows to -inf
    [InlineData(0x7F7F8000u, (ushort)0x7F80)] // tie at the top, odd → +inf
    [InlineData(0x7F7E8000u, (ushort)0x7F7E)] // tie at the top, even → stays finite
    [InlineData(0x7F800000u, (ushort)0x7F80)] // +inf
    [InlineData(0xFF800000u, (ushort)0xFF80)] // -inf
    public void FromSingle_rounds_to_nearest_even(uint single, ushort expected) =>
        Assert.Equal(expected, Bf16.FromSingle(BitConverter.UInt32BitsToSingle(single)));

    [Theory]
    [InlineData(0x7FC00000u)] // quiet NaN
    [InlineData(0x7F800001u)] // NaN whose payload is only in the low bits: naive rounding gives +inf
    [InlineData(0x7FFFFFFFu)] // all-ones payload: naive rounding wraps to -0
    [InlineData(0xFF800001u)] // negative NaN
    public void FromSingle_keeps_nan_nan_and_its_sign(uint single)
    {
        var result = Bf16.FromSingle(BitConverter.UInt32BitsToSingle(single));
        Assert.True(float.IsNaN(Bf16.ToSingle(result)), $"0x{single:X8} became 0x{result:X4}");
        Assert.Equal(single >> 31, (uint)result >> 15);
    }

    [Fact]
    public void FromSingle_span_matches_scalar()
    {
        float[] values = [0f, 1f, -2.5f, 1.00390625f, float.NaN, float.PositiveInfinity, 3.14159f, 1e-40f];
        var result = new ushort[values.Length];
        Bf16.FromSingle(values, result);
        Assert.Equal(values.Select(Bf16.FromSingle), result);
    }
}
