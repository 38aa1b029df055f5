namespace Radlads.Training;

/// <summary>One completed optimiser step, as the CSV log and the progress bar show it.</summary>
/// <param name="Step">Steps completed (1 for the first).</param>
/// <param name="Tokens">Tokens trained on after this step.</param>
/// <param name="Loss">The objective's mean loss over the batch.</param>
/// <param name="LearningRate">The LR this step used (after warm-up and schedule).</param>
/// <param name="GradNorm">Global gradient norm before clipping.</param>
/// <param name="TokensPerSecond">This step's tokens over its wall time.</param>
/// <param name="Seconds">Training wall time so far, over every resumed run.</param>
public sealed record TrainingStep(long Step, long Tokens, double Loss, double LearningRate, double GradNorm, double TokensPerSecond, double Seconds);

/// <summary>How a run ended.</summary>
public enum TrainingOutcome
{
    /// <summary>The token budget was reached; the final checkpoint is written.</summary>
    Completed,

    /// <summary>Stopped on request (Ctrl-C) after a finished step; a checkpoint to resume from is written.</summary>
    Interrupted,
}

/// <summary>What the loop tells its host (progress bar, plots) while it runs. Every method has a no-op default.</summary>
public interface ITrainingObserver
{
    /// <summary>Before the first step of this run (after a resume: the state it continues from).</summary>
    void Started(TrainingOptions options, TrainingState state, long magicPrime) { }

    void StepDone(TrainingStep step) { }

    /// <summary>A checkpoint was written (periodic, final or on interruption).</summary>
    void CheckpointWritten(string path, long bytes, TrainingState state) { }
}
