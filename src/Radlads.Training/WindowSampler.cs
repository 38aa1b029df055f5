using System.Globalization;
using Radlads.Data;

namespace Radlads.Training;

/// <summary>
/// The LinearAttentionArena window sampler of RADLADS (rad-rwkv-spec §7.5, [TR] <c>src/dataset.py</c>): sample
/// number ii (1, 2, 3, … plus the seed offset) is the window of ctx + 1 tokens starting at
/// <c>(⌊φ·P⌋ · ii³ mod P) · ctx</c>, φ = (√5 − 1)/2, P the magic prime: the largest prime ≡ 2 (mod 3) below
/// datalen/ctx − 1. Cubing modulo such a prime is a bijection, so P consecutive samples visit every one of the P
/// windows once in a scrambled order. The sequence depends only on (file length, ctx, seed, sample counter), so the
/// counter in the checkpoint is the whole sampler state.
/// </summary>
public sealed class WindowSampler
{
    private readonly TokenFile _data;
    private readonly int[] _window;

    public WindowSampler(TokenFile data, int ctxLen, long seed)
    {
        ArgumentNullException.ThrowIfNull(data);
        ArgumentOutOfRangeException.ThrowIfLessThan(ctxLen, 1);
        ArgumentOutOfRangeException.ThrowIfNegative(seed);
        _data = data;
        CtxLen = ctxLen;
        Seed = seed;
        MagicPrime = FindMagicPrime(data.Count, ctxLen) ?? throw new RadladsException(string.Create(CultureInfo.InvariantCulture,
            $"--data {data.Path}: {data.Count:N0} tokens are too few for windows of --ctx-len {ctxLen}: the sampler needs a prime " +
            $"≡ 2 (mod 3) below tokens/ctx − 1, so more than {3L * ctxLen:N0} tokens; tokenize more text or lower --ctx-len"));
        Factor = (long)Math.Floor(MagicPrime * ((Math.Sqrt(5) - 1) / 2));
        _window = new int[ctxLen + 1];
    }

    public int CtxLen { get; }

    public long Seed { get; }

    /// <summary>P: the number of distinct windows the sampler visits.</summary>
    public long MagicPrime { get; }

    /// <summary>⌊φ·P⌋ (computed as [TR]'s <c>int(magic_prime * factor)</c> in float64).</summary>
    public long Factor { get; }

    /// <summary>Token offset of the window of global sample <paramref name="counter"/> (0-based; ii = 1 + seed + counter).</summary>
    public long WindowStart(long counter)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(counter);
        UInt128 ii = (UInt128)(ulong)(1 + Seed + counter) % (ulong)MagicPrime;
        UInt128 p = (ulong)MagicPrime;
        UInt128 cube = ii * ii % p * ii % p;
        return (long)(ulong)((ulong)Factor * cube % p) * CtxLen;
    }

    /// <summary>
    /// Fills <paramref name="tokens"/> (sequences × ctx) with the first ctx tokens of the windows of samples
    /// <paramref name="counter"/> … counter + sequences − 1, one row each (step 1 does not use the (ctx+1)-th token,
    /// which a next-token loss would).
    /// </summary>
    public void Fill(long counter, int sequences, Span<int> tokens)
    {
        if (tokens.Length != sequences * CtxLen)
        {
            throw new ArgumentException($"tokens holds {tokens.Length} ids, need {sequences} × {CtxLen}");
        }

        for (int s = 0; s < sequences; s++)
        {
            _data.CopyTo(WindowStart(counter + s), _window);
            _window.AsSpan(0, CtxLen).CopyTo(tokens.Slice(s * CtxLen, CtxLen));
        }
    }

    /// <summary>The largest prime P ≡ 2 (mod 3) with P &lt; dataLength/ctxLen − 1 (i.e. (P + 1)·ctx &lt; dataLength), or null.</summary>
    public static long? FindMagicPrime(long dataLength, int ctxLen)
    {
        // (P + 1)·ctx < dataLength  ⇔  P ≤ ⌈dataLength/ctx⌉ − 2
        long limit = ((dataLength + ctxLen - 1) / ctxLen) - 2;
        for (long p = limit; p >= 2; p--)
        {
            if (p % 3 == 2 && IsPrime(p))
            {
                return p;
            }
        }

        return null;
    }

    /// <summary>Deterministic trial division (P stays below ~10^10 for any corpus, so ≤ 10^5 divisions).</summary>
    public static bool IsPrime(long n)
    {
        if (n < 2)
        {
            return false;
        }

        if (n % 2 == 0)
        {
            return n == 2;
        }

        for (long d = 3; d * d <= n; d += 2)
        {
            if (n % d == 0)
            {
                return false;
            }
        }

        return true;
    }
}
