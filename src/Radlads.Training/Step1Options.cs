namespace Radlads.Training;

/// <summary>Choices for <see cref="Step1Objective.Open"/>; none yet change the maths (reserved so callers need not change).</summary>
public sealed record Step1Options;
