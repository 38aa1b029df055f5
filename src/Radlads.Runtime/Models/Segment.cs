namespace Radlads.Models;

/// <summary>
/// The rows of a forward batch that belong to one sequence: rows [RowStart, RowStart + RowCount) of every
/// [T_total, ·] activation, at absolute positions StartPosition …
/// </summary>
internal readonly record struct Segment(SequenceState State, int RowStart, int RowCount, int StartPosition);
