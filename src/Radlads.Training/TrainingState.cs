namespace Radlads.Training;

/// <summary>
/// Where a run stands between optimiser steps: everything besides the tensors that a checkpoint must hold for a
/// resume to continue exactly. The sampler is deterministic in (seed, <see cref="SamplesDrawn"/>) and step 1 draws no
/// other random numbers, so the sample counter is the run's whole random state.
/// </summary>
public sealed record TrainingState
{
    /// <summary>Optimiser steps completed (AdamW's step counter is this + 1 on the next step).</summary>
    public long Step { get; init; }

    /// <summary>Tokens trained on: steps × ctx × batch.</summary>
    public long TokensSeen { get; init; }

    /// <summary>Windows drawn from the sampler so far (its counter).</summary>
    public long SamplesDrawn { get; init; }

    /// <summary>Training wall time so far, summed over resumed runs (the CSV's seconds column continues from it).</summary>
    public double Seconds { get; init; }

    /// <summary>Loss of the last completed step (NaN before the first).</summary>
    public double LastLoss { get; init; } = double.NaN;
}
