namespace Radlads.Cli;

/// <summary>Where commands write: standard output for results, standard error for progress and statistics.</summary>
public sealed record CliContext(TextWriter Output, TextWriter Error);
