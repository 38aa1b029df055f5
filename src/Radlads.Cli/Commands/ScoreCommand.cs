using System.CommandLine;
using System.Globalization;
using Radlads.Data;
using Radlads.IO;
using Radlads.Models;
using Radlads.Tokenization;

namespace Radlads.Cli.Commands;

/// <summary>`radlads score`: per-token negative log-likelihood and perplexity of a text under the model.</summary>
internal static class ScoreCommand
{
    // Tokens per forward call: bounds the activation memory of long inputs; the state carries across chunks.
    private const int ChunkTokens = 512;

    public static Command Create(CliContext io)
    {
        var model = CommonOptions.Model();
        var backend = CommonOptions.Backend();
        var ilgpuDevice = CommonOptions.IlgpuDevice();
        var text = CommonOptions.Text("Text to score.");
        var file = CommonOptions.File("UTF-8 file to score.");
        var tokens = new Option<string?>("--tokens") { Description = "Comma-separated token ids to score (no tokenizer needed), e.g. 1,2,3." };
        var dump = new Option<FileInfo?>("--dump-logits") { Description = "Write the float32 logits of every position, shape [T, vocab], as a NumPy .npy file." };
        var tokenFile = new Option<FileInfo?>("--token-file")
        {
            Description = "Score a token file (radlads data tokenize) in consecutive non-overlapping windows, each from a fresh state; prints the perplexity over all windows.",
        };
        var window = new Option<int>("--window") { Description = "Tokens per window with --token-file.", DefaultValueFactory = _ => 512 };
        var maxWindows = new Option<int?>("--max-windows") { Description = "Score only the first N windows of --token-file." };
        var profile = CommonOptions.Profile();
        var command = new Command("score", "Print the negative log-likelihood of every token and the perplexity of the whole input.")
        {
            model, text, file, tokens, tokenFile, window, maxWindows, dump, backend, ilgpuDevice, profile,
        };
        command.SetAction(parse =>
        {
            string directory = parse.GetValue(model)!;
            int given = (parse.GetValue(text) is null ? 0 : 1) + (parse.GetValue(file) is null ? 0 : 1) + (parse.GetValue(tokens) is null ? 0 : 1)
                + (parse.GetValue(tokenFile) is null ? 0 : 1);
            if (given != 1)
            {
                throw new RadladsException("score: give exactly one of --text, --file, --tokens or --token-file");
            }

            if (parse.GetValue(tokenFile) is FileInfo corpus)
            {
                if (parse.GetValue(dump) is not null)
                {
                    throw new RadladsException("score: --dump-logits works with --text, --file or --tokens, not with --token-file");
                }

                using var windowedDevice = CommonOptions.CreateBackend(parse.GetValue(backend)!, parse.GetValue(profile), io.Error, parse.GetValue(ilgpuDevice)!);
                using var windowed = CausalLM.Load(directory, windowedDevice);
                ScoreWindows(io, windowed, corpus, parse.GetValue(window), parse.GetValue(maxWindows));
                CommonOptions.ReportProfile(windowed.Backend, io.Error);
                return 0;
            }

            QwenTokenizer? tokenizer = null;
            int[] ids;
            if (parse.GetValue(tokens) is string list)
            {
                ids = ParseIds(list);
                if (File.Exists(Path.Combine(directory, "tokenizer.json")))
                {
                    tokenizer = QwenTokenizer.FromDirectory(directory);
                }
            }
            else
            {
                tokenizer = QwenTokenizer.FromDirectory(directory);
                ids = tokenizer.Encode(CommonOptions.ReadText(parse.GetValue(text), parse.GetValue(file), "score"));
            }

            if (ids.Length == 0)
            {
                throw new RadladsException("score: the input has no tokens");
            }

            using var device = CommonOptions.CreateBackend(parse.GetValue(backend)!, parse.GetValue(profile), io.Error, parse.GetValue(ilgpuDevice)!);
            using var lm = CausalLM.Load(directory, device);
            int vocab = lm.Config.VocabSize;
            var logits = new float[(long)ids.Length * vocab];
            using (var state = lm.CreateState())
            {
                for (int start = 0; start < ids.Length; start += ChunkTokens)
                {
                    int count = Math.Min(ChunkTokens, ids.Length - start);
                    lm.Forward(state, ids.AsSpan(start, count), allLogits: true).CopyTo(logits, (long)start * vocab);
                    if (ids.Length > ChunkTokens)
                    {
                        io.Error.Write($"\rscored {start + count}/{ids.Length} tokens");
                    }
                }
            }

            if (ids.Length > ChunkTokens)
            {
                io.Error.WriteLine();
            }

            Report(io.Output, ids, logits, vocab, tokenizer);
            CommonOptions.ReportProfile(lm.Backend, io.Error);
            if (parse.GetValue(dump) is FileInfo npy)
            {
                Npy.WriteFloat32(npy.FullName, logits, ids.Length, vocab);
                io.Error.WriteLine($"logits [{ids.Length}, {vocab}] written to {npy.FullName}");
            }

            return 0;
        });
        return command;
    }

    // Windows per forward call: several sequences in one batch let the weights be read once for more rows.
    private const int WindowsPerBatch = 4;

    /// <summary>
    /// The test-split protocol of the demo teacher (models/demo/README.md): consecutive non-overlapping windows
    /// of <paramref name="window"/> tokens from token 0, the last partial window dropped, each from a fresh
    /// state; positions 1 .. window−1 of each window are scored.
    /// </summary>
    private static void ScoreWindows(CliContext io, CausalLM lm, FileInfo path, int window, int? maxWindows)
    {
        if (window < 2)
        {
            throw new RadladsException($"--window must be at least 2, got {window}");
        }

        if (maxWindows is < 1)
        {
            throw new RadladsException($"--max-windows must be at least 1, got {maxWindows}");
        }

        if (!path.Exists)
        {
            throw new RadladsException($"--token-file {path.FullName}: file not found");
        }

        using var corpus = TokenFile.Open(path.FullName);
        if (corpus.VocabularySize > lm.Config.VocabSize)
        {
            throw new RadladsException(
                $"{path.FullName}: token ids go up to {corpus.VocabularySize - 1}, but the model's vocabulary has {lm.Config.VocabSize} rows; was it tokenized with this model's tokenizer?");
        }

        long available = corpus.Count / window;
        if (available == 0)
        {
            throw new RadladsException($"{path.FullName}: {corpus.Count} tokens are fewer than one window of {window}");
        }

        int windows = (int)Math.Min(available, maxWindows ?? long.MaxValue);
        int vocab = lm.Config.VocabSize;
        double sum = 0;
        long scored = 0;
        var clock = System.Diagnostics.Stopwatch.StartNew();
        for (int first = 0; first < windows; first += WindowsPerBatch)
        {
            int count = Math.Min(WindowsPerBatch, windows - first);
            var ids = new int[count][];
            var states = new SequenceState[count];
            for (int i = 0; i < count; i++)
            {
                ids[i] = new int[window];
                corpus.CopyTo((long)(first + i) * window, ids[i]);
                states[i] = lm.CreateState();
            }

            var logits = lm.Forward(states, ids, allLogits: true);
            for (int i = 0; i < count; i++)
            {
                foreach (var nll in NegativeLogLikelihoods(ids[i], logits[i], vocab))
                {
                    sum += nll;
                    scored++;
                }

                states[i].Dispose();
            }

            io.Error.Write(string.Create(CultureInfo.InvariantCulture,
                $"\rwindow {first + count}/{windows}, perplexity so far {Math.Exp(sum / scored):F4}, {scored / clock.Elapsed.TotalSeconds:F0} tokens/s"));
        }

        io.Error.WriteLine();
        io.Output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"windows: {windows} × {window} tokens from {path.FullName} ({available} available)"));
        io.Output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"tokens scored: {scored}, mean nll: {sum / scored:F4} nats, perplexity: {Math.Exp(sum / scored):F4}"));
    }

    /// <summary>NLL of token t is −log softmax(logits[t − 1])[ids[t]]; the first token has no prediction.</summary>
    internal static double[] NegativeLogLikelihoods(int[] ids, float[] logits, int vocab)
    {
        var nll = new double[Math.Max(ids.Length - 1, 0)];
        for (int t = 1; t < ids.Length; t++)
        {
            var row = logits.AsSpan((t - 1) * vocab, vocab);
            double max = double.NegativeInfinity;
            foreach (var v in row)
            {
                max = Math.Max(max, v);
            }

            double sum = 0;
            foreach (var v in row)
            {
                sum += Math.Exp(v - max);
            }

            nll[t - 1] = -(row[ids[t]] - max - Math.Log(sum));
        }

        return nll;
    }

    private static void Report(TextWriter output, int[] ids, float[] logits, int vocab, QwenTokenizer? tokenizer)
    {
        var nll = NegativeLogLikelihoods(ids, logits, vocab);
        var c = CultureInfo.InvariantCulture;
        output.WriteLine("position\ttoken_id\tnll\ttoken");
        output.WriteLine(string.Create(c, $"0\t{ids[0]}\t-\t{Show(tokenizer, ids[0])}"));
        for (int t = 1; t < ids.Length; t++)
        {
            output.WriteLine(string.Create(c, $"{t}\t{ids[t]}\t{nll[t - 1]:F4}\t{Show(tokenizer, ids[t])}"));
        }

        if (nll.Length == 0)
        {
            output.WriteLine("only one token: nothing to predict, no perplexity");
            return;
        }

        double mean = nll.Average();
        output.WriteLine(string.Create(c, $"tokens scored: {nll.Length}, mean nll: {mean:F4} nats, perplexity: {Math.Exp(mean):F4}"));
    }

    private static string Show(QwenTokenizer? tokenizer, int id) =>
        tokenizer is null || id >= tokenizer.VocabularySize ? "" : Escape(tokenizer.Decode([id]));

    /// <summary>Token text on one line: control characters shown as escapes.</summary>
    private static string Escape(string text)
    {
        var builder = new System.Text.StringBuilder(text.Length + 2);
        builder.Append('"');
        foreach (char ch in text)
        {
            builder.Append(ch switch
            {
                '\n' => "\\n",
                '\t' => "\\t",
                '\r' => "\\r",
                '"' => "\\\"",
                '\\' => "\\\\",
                _ when char.IsControl(ch) => $"\\u{(int)ch:x4}",
                _ => ch.ToString(),
            });
        }

        return builder.Append('"').ToString();
    }

    private static int[] ParseIds(string list)
    {
        var parts = list.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        var ids = new int[parts.Length];
        for (int i = 0; i < parts.Length; i++)
        {
            if (!int.TryParse(parts[i], NumberStyles.None, CultureInfo.InvariantCulture, out ids[i]))
            {
                throw new RadladsException($"--tokens: '{parts[i]}' is not a token id (expected comma-separated non-negative integers)");
            }
        }

        return ids;
    }
}
