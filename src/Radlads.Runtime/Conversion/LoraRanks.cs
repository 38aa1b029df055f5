namespace Radlads.Conversion;

/// <summary>Rank overrides given by the user; null means "use the RADLADS formula".</summary>
public sealed record LoraRankOverrides
{
    /// <summary>v6 token-shift (ddlerp) LoRA rank Rm; <c>--lora-rank-tokenshift</c>.</summary>
    public int? TokenShift { get; init; }

    /// <summary>Decay LoRA rank: v6 Rd, v7 Rw; <c>--lora-rank-decay</c>.</summary>
    public int? Decay { get; init; }

    /// <summary>v7 in-context learning rate LoRA rank Ra; <c>--lora-rank-iclr</c>.</summary>
    public int? Iclr { get; init; }

    /// <summary>v7 value-residual mix LoRA rank Rv; <c>--lora-rank-value-residual-mix</c>.</summary>
    public int? ValueResidualMix { get; init; }

    /// <summary>v7 low-rank gate rank Rg; <c>--lora-rank-gate</c>.</summary>
    public int? Gate { get; init; }
}

/// <summary>
/// The LoRA ranks of a student. Ranks an architecture does not have are 0: v6 has TokenShift (Rm) and Decay (Rd);
/// v7 has Decay (Rw), Iclr (Ra), ValueResidualMix (Rv) and Gate (Rg).
/// </summary>
public sealed record LoraRanks(int TokenShift, int Decay, int Iclr, int ValueResidualMix, int Gate)
{
    /// <summary>The largest rank an override may ask for (far above any released checkpoint's).</summary>
    public const int MaxRank = 65536;

    /// <summary>
    /// <c>calc_lora_rank(e, m) = max(1, round(C^e·m/32))·32</c> of [TR]/[HF7] (spec §4.1). Python's round() rounds
    /// halves to even, as <see cref="MidpointRounding.ToEven"/> does.
    /// </summary>
    public static int Calc(int hidden, double exponent, double multiplier)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(hidden);
        return Math.Max(1, (int)Math.Round(Math.Pow(hidden, exponent) * multiplier / 32, MidpointRounding.ToEven)) * 32;
    }

    /// <summary>
    /// The ranks for a student of <paramref name="architecture"/> with hidden size <paramref name="hidden"/>:
    /// v7 Rw = Ra = calc(0.5, 1.8), Rv = calc(0.5, 1.3), Rg = calc(0.8, 0.6) ([TR]/[HF7]); v6 Rm = Rd = calc(0.5, 1.8)
    /// (the trainer at release, spec §3.1, not the HF config defaults 32/64). Each may be overridden; an override
    /// outside [1, <see cref="MaxRank"/>] or for a rank the architecture does not have is a <see cref="RadladsException"/>.
    /// </summary>
    public static LoraRanks Resolve(StudentArchitecture architecture, int hidden, LoraRankOverrides? overrides = null)
    {
        overrides ??= new LoraRankOverrides();
        Check("--lora-rank-tokenshift", overrides.TokenShift, architecture == StudentArchitecture.RadRwkv6, architecture);
        Check("--lora-rank-decay", overrides.Decay, true, architecture);
        Check("--lora-rank-iclr", overrides.Iclr, architecture == StudentArchitecture.RadRwkv7, architecture);
        Check("--lora-rank-value-residual-mix", overrides.ValueResidualMix, architecture == StudentArchitecture.RadRwkv7, architecture);
        Check("--lora-rank-gate", overrides.Gate, architecture == StudentArchitecture.RadRwkv7, architecture);
        int wide = Calc(hidden, 0.5, 1.8);
        return architecture switch
        {
            StudentArchitecture.RadRwkv6 => new LoraRanks(overrides.TokenShift ?? wide, overrides.Decay ?? wide, 0, 0, 0),
            StudentArchitecture.RadRwkv7 => new LoraRanks(
                0,
                overrides.Decay ?? wide,
                overrides.Iclr ?? wide,
                overrides.ValueResidualMix ?? Calc(hidden, 0.5, 1.3),
                overrides.Gate ?? Calc(hidden, 0.8, 0.6)),
            _ => throw new ArgumentOutOfRangeException(nameof(architecture)),
        };
    }

    /// <summary>"Rm=32, Rd=32" (v6) or "Rw=32, Ra=32, Rv=32, Rg=64" (v7).</summary>
    public string Describe(StudentArchitecture architecture) => architecture == StudentArchitecture.RadRwkv6
        ? $"Rm={TokenShift}, Rd={Decay}"
        : $"Rw={Decay}, Ra={Iclr}, Rv={ValueResidualMix}, Rg={Gate}";

    private static void Check(string option, int? value, bool applies, StudentArchitecture architecture)
    {
        if (value is not int rank)
        {
            return;
        }

        if (!applies)
        {
            throw new RadladsException(
                $"{option} does not apply to {architecture.CliName()} " +
                (architecture == StudentArchitecture.RadRwkv6
                    ? "(its ranks are --lora-rank-tokenshift and --lora-rank-decay)"
                    : "(its ranks are --lora-rank-decay, --lora-rank-iclr, --lora-rank-value-residual-mix and --lora-rank-gate)"));
        }

        if (rank < 1 || rank > MaxRank)
        {
            throw new RadladsException($"{option} {rank}: a LoRA rank must be between 1 and {MaxRank}");
        }
    }
}
