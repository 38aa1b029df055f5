namespace Radlads.Training;

/// <summary>
/// The loss or the gradient norm was NaN or infinite: the step was not applied, nothing was saved over the last good
/// checkpoint, and the message says which step and how to continue.
/// </summary>
public sealed class TrainingDivergedException(string message) : RadladsException(message);
