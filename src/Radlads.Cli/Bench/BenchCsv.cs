using System.Globalization;
using System.Text;

namespace Radlads.Cli.Bench;

/// <summary>The CSV form of <see cref="BenchRow"/> (RFC 4180 quoting), shared with the Python peers in bench/peers/.</summary>
public static class BenchCsv
{
    /// <summary>The header line's columns, in order. bench/peers/common.py writes the same list.</summary>
    public static IReadOnlyList<string> Columns { get; } =
    [
        "source", "card", "backend", "arch", "shape", "measure", "context", "batch", "tokens", "ms_per_token", "tokens_per_s",
        "ttft_ms", "wall_s", "bytes_per_step", "roofline", "roofline_fraction", "weights_bytes", "state_bytes",
        "workspace_bytes", "peak_bytes", "status", "note",
    ];

    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    public static void Write(string path, IEnumerable<BenchRow> rows)
    {
        var text = new StringBuilder();
        text.Append(string.Join(',', Columns)).Append('\n');
        foreach (var r in rows)
        {
            string[] fields =
            [
                r.Source, r.Card, r.Backend, r.Arch, r.Shape, r.Measure, Int(r.Context), Int(r.Batch), Long(r.Tokens),
                BenchRow.Format(r.MsPerToken, "R"), BenchRow.Format(r.TokensPerSecond, "R"), BenchRow.Format(r.TtftMs, "R"),
                BenchRow.Format(r.WallSeconds, "R"), Long(r.BytesPerStep), BenchRow.Format(r.Roofline, "R"),
                BenchRow.Format(r.RooflineFraction, "R"), Long(r.WeightsBytes), Long(r.StateBytes), Long(r.WorkspaceBytes),
                Long(r.PeakBytes), r.Status, r.Note,
            ];
            text.Append(string.Join(',', fields.Select(Quote))).Append('\n');
        }

        File.WriteAllText(path, text.ToString(), new UTF8Encoding(false));
    }

    /// <summary>Reads a file written by <see cref="Write"/> or a peer; a header that differs is an error naming the file.</summary>
    public static List<BenchRow> Read(string path)
    {
        var lines = Parse(File.ReadAllText(path));
        if (lines.Count == 0 || !lines[0].SequenceEqual(Columns))
        {
            throw new RadladsException($"{path}: not a bench CSV: the header must be '{string.Join(',', Columns)}'");
        }

        var rows = new List<BenchRow>();
        for (int n = 1; n < lines.Count; n++)
        {
            var f = lines[n];
            if (f.Count == 1 && f[0].Length == 0)
            {
                continue;
            }

            if (f.Count != Columns.Count)
            {
                throw new RadladsException($"{path}: line {n + 1} has {f.Count} fields, expected {Columns.Count}");
            }

            try
            {
                rows.Add(new BenchRow
                {
                    Source = f[0],
                    Card = f[1],
                    Backend = f[2],
                    Arch = f[3],
                    Shape = f[4],
                    Measure = f[5],
                    Context = (int?)ParseLong(f[6]),
                    Batch = (int?)ParseLong(f[7]),
                    Tokens = ParseLong(f[8]),
                    MsPerToken = ParseDouble(f[9]),
                    TokensPerSecond = ParseDouble(f[10]),
                    TtftMs = ParseDouble(f[11]),
                    WallSeconds = ParseDouble(f[12]),
                    BytesPerStep = ParseLong(f[13]),
                    Roofline = ParseDouble(f[14]),
                    RooflineFraction = ParseDouble(f[15]),
                    WeightsBytes = ParseLong(f[16]),
                    StateBytes = ParseLong(f[17]),
                    WorkspaceBytes = ParseLong(f[18]),
                    PeakBytes = ParseLong(f[19]),
                    Status = f[20],
                    Note = f[21],
                });
            }
            catch (FormatException e)
            {
                throw new RadladsException($"{path}: line {n + 1}: {e.Message}");
            }
        }

        return rows;
    }

    private static string Int(int? v) => v?.ToString(Inv) ?? "";

    private static string Long(long? v) => v?.ToString(Inv) ?? "";

    private static long? ParseLong(string s) => s.Length == 0 ? null : (long)double.Parse(s, NumberStyles.Float, Inv);

    private static double? ParseDouble(string s) => s.Length == 0 ? null : double.Parse(s, NumberStyles.Float, Inv);

    private static string Quote(string field) =>
        field.IndexOfAny([',', '"', '\n', '\r']) < 0 ? field : "\"" + field.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";

    /// <summary>Splits CSV text into records of fields (quoted fields may hold commas, quotes and newlines).</summary>
    private static List<List<string>> Parse(string text)
    {
        var records = new List<List<string>>();
        var record = new List<string>();
        var field = new StringBuilder();
        bool quoted = false, any = false;
        for (int i = 0; i < text.Length; i++)
        {
            char c = text[i];
            any = true;
            if (quoted)
            {
                if (c == '"' && i + 1 < text.Length && text[i + 1] == '"')
                {
                    field.Append('"');
                    i++;
                }
                else if (c == '"')
                {
                    quoted = false;
                }
                else
                {
                    field.Append(c);
                }
            }
            else if (c == '"')
            {
                quoted = true;
            }
            else if (c == ',')
            {
                record.Add(field.ToString());
                field.Clear();
            }
            else if (c == '\n')
            {
                record.Add(field.ToString().TrimEnd('\r'));
                field.Clear();
                records.Add(record);
                record = [];
                any = false;
            }
            else
            {
                field.Append(c);
            }
        }

        if (any)
        {
            record.Add(field.ToString());
            records.Add(record);
        }

        return records;
    }
}
