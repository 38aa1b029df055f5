namespace Radlads.Training;

/// <summary>
/// The RADLADS learning rate (rad-rwkv-spec §7.4, [TR] <c>on_train_batch_start</c> / <c>get_lr_progress</c>), for
/// the optimiser step that follows <c>stepsDone</c> completed steps:
/// <code>
/// tokens = stepsDone × ctx × batch,  warmup_tokens = warmup_steps × ctx × batch
/// p      = clamp((tokens − warmup_tokens) / (budget − warmup_tokens), 0, 1)     (lr_wait 0, lr_endpoint 1)
/// lr     = lr_final + (lr_init − lr_final)·cos(π/2 · p)                          (a quarter cosine, 1 → 0)
/// lr    *= 0.01 + 0.99 · stepsDone / warmup_steps     while stepsDone &lt; warmup_steps
/// </code>
/// The LR stays lr_init through the warm-up (p = 0 there) and falls to lr_final as the budget is reached.
/// </summary>
public static class LearningRateSchedule
{
    public static double At(long stepsDone, TrainingOptions o)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(stepsDone);
        double tokens = (double)stepsDone * o.TokensPerStep;
        double warmupTokens = (double)o.WarmupSteps * o.TokensPerStep;
        double span = o.TokenBudget - warmupTokens;
        double progress = span <= 0 ? 1 : Math.Clamp((tokens - warmupTokens) / span, 0, 1);
        double lr = o.LrFinal + ((o.LrInit - o.LrFinal) * Math.Cos(Math.PI / 2 * progress));
        if (stepsDone < o.WarmupSteps)
        {
            lr *= 0.01 + (0.99 * stepsDone / o.WarmupSteps);
        }

        return lr;
    }
}
