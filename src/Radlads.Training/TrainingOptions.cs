using System.Globalization;

namespace Radlads.Training;

/// <summary>
/// Everything that shapes a training run (rad-rwkv-spec §7.3–7.5). Defaults are RADLADS step 1
/// (<c>configs/distill1.yaml</c>): ctx 512, 32 sequences per step, 100M tokens, LR 1e-3 → 1e-5 quarter cosine after
/// 50 warm-up steps, AdamW β (0.9, 0.95), ε 1e-8, no weight decay, global-norm clip 1.0. Stored in every checkpoint;
/// a resume must use the same values (<see cref="Differences"/>).
/// </summary>
public sealed record TrainingOptions
{
    /// <summary>Tokens per training window (the sampler reads ctx + 1 and step 1 uses the first ctx).</summary>
    public int CtxLen { get; init; } = 512;

    /// <summary>Sequences (windows) per optimiser step.</summary>
    public int Batch { get; init; } = 32;

    /// <summary>Token budget: training ends once steps × ctx × batch reaches it.</summary>
    public long TokenBudget { get; init; } = 100_000_000;

    public double LrInit { get; init; } = 1e-3;

    public double LrFinal { get; init; } = 1e-5;

    /// <summary>Optimiser steps whose LR is multiplied by 0.01 + 0.99·step/warmup.</summary>
    public int WarmupSteps { get; init; } = 50;

    public float Beta1 { get; init; } = 0.9f;

    public float Beta2 { get; init; } = 0.95f;

    public float Eps { get; init; } = 1e-8f;

    public float WeightDecay { get; init; }

    /// <summary>Global gradient-norm clip (torch.nn.utils.clip_grad_norm_ max_norm); 0 turns clipping off.</summary>
    public double ClipNorm { get; init; } = 1.0;

    /// <summary>Offset of the sampler's sample counter: another seed draws another window sequence.</summary>
    public long Seed { get; init; }

    /// <summary>Optimiser steps between checkpoints (a checkpoint is also written at the end and on Ctrl-C).</summary>
    public int CheckpointEvery { get; init; } = 100;

    /// <summary>Tokens one optimiser step consumes: ctx × batch.</summary>
    public long TokensPerStep => (long)CtxLen * Batch;

    /// <summary>Optimiser steps until the budget is reached: ⌈budget / (ctx × batch)⌉.</summary>
    public long TotalSteps => (TokenBudget + TokensPerStep - 1) / TokensPerStep;

    /// <summary>Throws a <see cref="RadladsException"/> naming the first option that is out of range.</summary>
    public void Validate()
    {
        Require(CtxLen >= 1, $"--ctx-len must be at least 1, got {CtxLen}");
        Require(Batch >= 1, $"--batch must be at least 1, got {Batch}");
        Require((long)CtxLen * Batch <= int.MaxValue, $"--ctx-len × --batch must stay below 2^31 tokens per step, got {(long)CtxLen * Batch}");
        Require(TokenBudget >= 1, $"--tokens must be at least 1, got {TokenBudget}");
        Require(double.IsFinite(LrInit) && LrInit >= 0, $"--lr-init must be a finite number ≥ 0, got {LrInit}");
        Require(double.IsFinite(LrFinal) && LrFinal >= 0, $"--lr-final must be a finite number ≥ 0, got {LrFinal}");
        Require(WarmupSteps >= 0, $"--warmup-steps must be ≥ 0, got {WarmupSteps}");
        Require(Beta1 is >= 0 and < 1 && Beta2 is >= 0 and < 1, $"AdamW betas must be in [0, 1), got ({Beta1}, {Beta2})");
        Require(float.IsFinite(Eps) && Eps > 0, $"AdamW eps must be > 0, got {Eps}");
        Require(double.IsFinite(ClipNorm) && ClipNorm >= 0, $"the clip norm must be ≥ 0, got {ClipNorm}");
        Require(Seed >= 0, $"--seed must be ≥ 0, got {Seed}");
        Require(CheckpointEvery >= 1, $"--checkpoint-every must be at least 1 step, got {CheckpointEvery}");
    }

    /// <summary>"name: checkpoint value, now value" for every field that differs from <paramref name="other"/>.</summary>
    public IReadOnlyList<string> Differences(TrainingOptions other)
    {
        var list = new List<string>();
        void Check<T>(string name, T a, T b)
        {
            if (!EqualityComparer<T>.Default.Equals(a, b))
            {
                list.Add(string.Create(CultureInfo.InvariantCulture, $"{name}: checkpoint {a}, now {b}"));
            }
        }

        Check("--ctx-len", CtxLen, other.CtxLen);
        Check("--batch", Batch, other.Batch);
        Check("--tokens", TokenBudget, other.TokenBudget);
        Check("--lr-init", LrInit, other.LrInit);
        Check("--lr-final", LrFinal, other.LrFinal);
        Check("--warmup-steps", WarmupSteps, other.WarmupSteps);
        Check("beta1", Beta1, other.Beta1);
        Check("beta2", Beta2, other.Beta2);
        Check("eps", Eps, other.Eps);
        Check("weight decay", WeightDecay, other.WeightDecay);
        Check("clip norm", ClipNorm, other.ClipNorm);
        Check("--seed", Seed, other.Seed);
        return list;
    }

    private static void Require(bool condition, string message)
    {
        if (!condition)
        {
            throw new RadladsException(message);
        }
    }
}
