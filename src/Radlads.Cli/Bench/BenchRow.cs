using System.Globalization;

namespace Radlads.Cli.Bench;

/// <summary>
/// One measured figure of `radlads bench` or a peer script, one CSV line (columns: <see cref="BenchCsv.Columns"/>).
/// <para><see cref="Measure"/> is one of: <c>roofline_copy</c> (<see cref="Roofline"/> = device-to-device copy,
/// bytes read + written, GB/s), <c>roofline_gemm</c> (<see cref="Roofline"/> = bf16-weight GEMM rate, TFLOP/s),
/// <c>prefill</c> (a prompt of <see cref="Tokens"/> tokens from a fresh state; <see cref="TtftMs"/> = time to the
/// first token's logits; fraction of the GEMM rate), <c>decode</c> (batch 1 at <see cref="Context"/>; fraction of
/// the copy bandwidth), <c>batched_decode</c> (<see cref="Batch"/> sequences, one token each per step, each with its
/// own state; <see cref="TokensPerSecond"/> counts all of them), <c>serving</c> (the appendix-E scenario;
/// <see cref="WallSeconds"/>).</para>
/// Empty fields are figures that do not apply; <see cref="Status"/> is <c>ok</c>, <c>does not fit</c> or <c>error</c>.
/// </summary>
public sealed record BenchRow
{
    public string Source { get; init; } = "radlads";

    public string Card { get; init; } = "";

    public string Backend { get; init; } = "";

    /// <summary>qwen2, rwkv6 or rwkv7 (empty for roofline rows).</summary>
    public string Arch { get; init; } = "";

    public string Shape { get; init; } = "";

    public string Measure { get; init; } = "";

    public int? Context { get; init; }

    public int? Batch { get; init; }

    /// <summary>Tokens timed (prompt length for prefill; scenario name for serving lives in <see cref="Note"/>).</summary>
    public long? Tokens { get; init; }

    public double? MsPerToken { get; init; }

    public double? TokensPerSecond { get; init; }

    public double? TtftMs { get; init; }

    public double? WallSeconds { get; init; }

    /// <summary>Bytes a step must move (decode rows): weights + state or KV cache read, as the runtime stores them.</summary>
    public long? BytesPerStep { get; init; }

    /// <summary>The roofline figure itself (roofline rows): GB/s or TFLOP/s.</summary>
    public double? Roofline { get; init; }

    /// <summary>The measured rate as a fraction of the roofline of the same card in the same run (0.56 = 56 %).</summary>
    public double? RooflineFraction { get; init; }

    public long? WeightsBytes { get; init; }

    public long? StateBytes { get; init; }

    public long? WorkspaceBytes { get; init; }

    public long? PeakBytes { get; init; }

    public string Status { get; init; } = "ok";

    public string Note { get; init; } = "";

    public bool Ok => Status == "ok";

    internal static string Format(double? v, string format) => v is double d ? d.ToString(format, CultureInfo.InvariantCulture) : "";
}
