using System.Globalization;
using Radlads.Cpu;
using Radlads.IO;
using Radlads.Models;
using Radlads.Tests.Models;
using Radlads.Tokenization;

namespace Radlads.Tests.Cli;

/// <summary>The command-line contract: the options named in the issue, what they print, and their errors.</summary>
public sealed class CliTests
{
    private static string Dir(string name) => Fixtures.Directory(name);

    [Theory]
    [MemberData(nameof(Fixtures.All), MemberType = typeof(Fixtures))]
    public void InfoDescribesEveryFixture(string name)
    {
        var (exit, output, error) = CliRunner.Run("info", "--model", Dir(name));
        Assert.True(exit == 0, error);
        Assert.Contains($"architecture:   {(name.StartsWith("qwen2", StringComparison.Ordinal) ? "qwen2" : name.StartsWith("rwkv6", StringComparison.Ordinal) ? "rwkv6qwen2" : "rwkv7qwen2")}", output, StringComparison.Ordinal);
        Assert.Contains("parameters:", output, StringComparison.Ordinal);
        Assert.Contains("BF16 weights", output, StringComparison.Ordinal);
        // Found or not, the line says which (this machine may have no cuBLASLt; the GPU machine has 13).
        Assert.Matches(@"cuda gemms:     (cuBLASLt \d+\.\d+\.\d+ \(.+\): prefill|cuBLASLt was not found \(tried .*libcublasLt)", output);
        Assert.Contains(name.StartsWith("qwen2", StringComparison.Ordinal) ? "kv cache:       768 bytes per token" : "bytes per sequence", output, StringComparison.Ordinal);
    }

    [Fact]
    public void InfoShowsTheRwkv7VariantAndTheStateVersusKvCacheComparison()
    {
        var (_, output, _) = CliRunner.Run("info", "--model", Dir("rwkv7-groupnorm"));
        Assert.Contains("variant G (stock keys, GroupNorm)", output, StringComparison.Ordinal);
        // 3 layers × 4 heads × 16 × 16 × 4 bytes.
        Assert.Contains("state:          12,288 bytes per sequence", output, StringComparison.Ordinal);
        Assert.Contains("caches 768 bytes per token", output, StringComparison.Ordinal);
    }

    [Fact]
    public void InfoWorksWithoutTokenizerFiles()
    {
        using var copy = new FixtureCopy("rwkv6");
        File.Delete(Path.Combine(copy.Directory, "tokenizer.json"));
        var (exit, output, error) = CliRunner.Run("info", "--model", copy.Directory);
        Assert.True(exit == 0, error);
        Assert.Contains("tokenizer:      none", output, StringComparison.Ordinal);
    }

    [Fact]
    public void ScoreTokensPrintsNllAndPerplexityThatAgreeWithTheReferenceLogits()
    {
        var tokens = GoldenLogitsTests.Tokens("qwen2");
        var (exit, output, error) = CliRunner.Run("score", "--model", Dir("qwen2"), "--tokens", string.Join(",", tokens), "--backend", "cpu");
        Assert.True(exit == 0, error);
        var (reference, _) = Npy.ReadFloat64(Path.Combine(Dir("qwen2"), "logits.npy"));
        double sum = 0;
        for (int t = 1; t < tokens.Length; t++)
        {
            var row = reference.AsSpan((t - 1) * 400, 400);
            double max = row.ToArray().Max();
            double logSum = Math.Log(row.ToArray().Sum(v => Math.Exp(v - max))) + max;
            sum += logSum - row[tokens[t]];
        }

        double expected = Math.Exp(sum / (tokens.Length - 1));
        var last = output.Split('\n', StringSplitOptions.RemoveEmptyEntries)[^1];
        Assert.StartsWith($"tokens scored: {tokens.Length - 1}, mean nll:", last, StringComparison.Ordinal);
        double perplexity = double.Parse(last[(last.LastIndexOf(' ') + 1)..], CultureInfo.InvariantCulture);
        Assert.Equal(expected, perplexity, expected * 1e-3);
    }

    [Fact]
    public void ScoreTokenFileAveragesFreshWindows()
    {
        var tokens = GoldenLogitsTests.Tokens("rwkv6");
        var path = Path.Combine(Path.GetTempPath(), $"radlads-windows-{Guid.NewGuid():N}.bin");
        try
        {
            using (var writer = new Radlads.Data.TokenFileWriter(path, 384, 381))
            {
                writer.WriteDocument(tokens[..21]);
                writer.Commit();
            }

            // 22 tokens (21 + separator) make 5 windows of 4; --max-windows 3 scores the first three.
            // On the CPU backend: the printed numbers are compared to four decimals with the CPU's.
            var (exit, output, error) = CliRunner.Run("score", "--model", Dir("rwkv6"), "--token-file", path, "--window", "4", "--max-windows", "3", "--backend", "cpu");
            Assert.True(exit == 0, error);
            using var model = CausalLM.Load(Dir("rwkv6"), new CpuBackend());
            var nll = new List<double>();
            for (int w = 0; w < 3; w++)
            {
                using var state = model.CreateState();
                var ids = tokens[(w * 4)..((w * 4) + 4)];
                nll.AddRange(Radlads.Cli.Commands.ScoreCommand.NegativeLogLikelihoods(ids, model.Forward(state, ids, allLogits: true), 400));
            }

            Assert.Contains("windows: 3 × 4 tokens", output, StringComparison.Ordinal);
            Assert.Contains(string.Create(CultureInfo.InvariantCulture, $"tokens scored: 9, mean nll: {nll.Average():F4} nats, perplexity: {Math.Exp(nll.Average()):F4}"), output, StringComparison.Ordinal);
            Assert.Contains("--window must be at least 2", CliRunner.AssertUserError(CliRunner.Run("score", "--model", Dir("rwkv6"), "--token-file", path, "--window", "1")), StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void ScoreWorksOnAFolderWithoutTokenizerFiles()
    {
        using var copy = new FixtureCopy("rwkv7");
        File.Delete(Path.Combine(copy.Directory, "tokenizer.json"));
        var (exit, output, error) = CliRunner.Run("score", "--model", copy.Directory, "--tokens", "1, 2,3");
        Assert.True(exit == 0, error);
        Assert.Contains("tokens scored: 2", output, StringComparison.Ordinal);
    }

    [Fact]
    public void ScoreDumpsLogitsAsNpy()
    {
        var tokens = GoldenLogitsTests.Tokens("rwkv6");
        var path = Path.Combine(Path.GetTempPath(), $"radlads-logits-{Guid.NewGuid():N}.npy");
        try
        {
            var (exit, _, error) = CliRunner.Run("score", "--model", Dir("rwkv6"), "--tokens", string.Join(",", tokens), "--dump-logits", path, "--backend", "cpu");
            Assert.True(exit == 0, error);
            var (values, shape) = Npy.ReadFloat64(path);
            Assert.Equal([tokens.Length, 400], shape);
            using var model = CausalLM.Load(Dir("rwkv6"), new CpuBackend());
            using var state = model.CreateState();
            var logits = model.Forward(state, tokens, allLogits: true);
            Assert.Equal(logits.Select(v => (double)v), values);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void ScoreTextUsesTheTokenizer()
    {
        var (exit, output, error) = CliRunner.Run("score", "--model", Dir("rwkv7"), "--text", "The river starts in the hills.");
        Assert.True(exit == 0, error);
        Assert.Contains("perplexity:", output, StringComparison.Ordinal);
        Assert.Contains("\t\" the\"", output, StringComparison.Ordinal);
        Assert.Contains("tokens scored: 13,", output, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("score", "--model", "{rwkv7}", "--tokens", "1,x,3", "'x' is not a token id")]
    [InlineData("score", "--model", "{rwkv7}", "--tokens", "1,999", "outside the model's vocabulary")]
    [InlineData("score", "--model", "{rwkv7}", "--text", "a", "exactly one of --text, --file, --tokens or --token-file")]
    [InlineData("generate", "--model", "{rwkv7}", "--top-p", "1.5", "--top-p")]
    [InlineData("info", "--model", "/nonexistent/model", "", "", "does not exist")]
    public void UserErrorsAreOneLine(string command, string o1, string v1, string o2, string v2, string expected)
    {
        var args = new List<string> { command, o1, v1.Replace("{rwkv7}", Dir("rwkv7"), StringComparison.Ordinal) };
        if (o2.Length > 0)
        {
            args.Add(o2);
            args.Add(v2);
        }

        if (command == "score" && o2 == "--text")
        {
            args.Add("--tokens");
            args.Add("1");
        }

        var line = CliRunner.AssertUserError(CliRunner.Run([.. args]));
        Assert.Contains(expected, line, StringComparison.Ordinal);
    }

    [Fact]
    public void BackendCudaRunsOrSaysWhatIsMissing()
    {
        string[] score = ["score", "--model", Dir("rwkv7"), "--tokens", "1,5,9,30,200,7,7,12"];
        var result = CliRunner.Run([.. score, "--backend", "cuda"]);
        if (CudaAvailability.Unavailable is not null)
        {
            var line = CliRunner.AssertUserError(result);
            Assert.Contains("--backend cuda: CUDA is not available: ", line, StringComparison.Ordinal);
            return;
        }

        Assert.True(result.Exit == 0, result.Error);
        var cpu = CliRunner.Run([.. score, "--backend", "cpu"]);
        Assert.Equal(0, cpu.Exit);
        static double Perplexity(string output) =>
            double.Parse(output[(output.LastIndexOf("perplexity: ", StringComparison.Ordinal) + 12)..].Trim(), CultureInfo.InvariantCulture);
        double expected = Perplexity(cpu.Output);
        double actual = Perplexity(result.Output);
        // `--backend cuda` takes cuBLASLt for the prompt when it is installed.
        bool gemmLibrary;
        using (var probe = CudaAvailability.Backend())
        {
            gemmLibrary = probe.HasGemmLibrary;
        }

        double bound = gemmLibrary ? Tolerances.BackendPerplexityGemmLibraryRelative : Tolerances.BackendPerplexityRelative;
        Assert.True(Math.Abs(actual - expected) <= bound * expected, $"perplexity {actual} on CUDA, {expected} on the CPU");
    }

    [Fact]
    public void BenchDecodeRunsATinyModelOnTheCpuAndWritesItsTable()
    {
        var path = Path.Combine(Path.GetTempPath(), $"radlads-bench-{Guid.NewGuid():N}.md");
        try
        {
            var (exit, output, error) = CliRunner.Run("bench-decode", "--backend", "cpu", "--shape", "tiny", "--arch", "rwkv7,qwen2",
                "--tokens", "2", "--warmup", "1", "--context", "5,40", "--prefill", "3", "--sample", "both", "--markdown", path);
            Assert.True(exit == 0, error);
            var rows = output.Split('\n').Where(l => l.StartsWith("| tiny |", StringComparison.Ordinal)).ToArray();
            Assert.Equal(8, rows.Length);
            Assert.Contains("| tiny | qwen2 | 40 | n/a | n/a | host |", rows[6], StringComparison.Ordinal);
            Assert.Contains("| tiny | qwen2 | 40 | n/a | n/a | device |", rows[7], StringComparison.Ordinal);
            Assert.Equal(File.ReadAllLines(path).Where(l => l.StartsWith("| tiny |", StringComparison.Ordinal)), rows);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void BenchDecodePrefillRowsCountFlopsAndSayWhenThereIsNoGemmRate()
    {
        var (exit, output, error) = CliRunner.Run("bench-decode", "--backend", "cpu", "--shape", "tiny", "--arch", "qwen2",
            "--tokens", "1", "--warmup", "0", "--context", "5", "--prefill", "2", "--prefill-bench", "8");
        Assert.True(exit == 0, error);
        Assert.Contains("| shape | arch | prefill tokens | GEMMs | ms | tokens/s | GFLOP (GEMM + mixing) | TFLOP/s | of GEMM rate |", output, StringComparison.Ordinal);
        var row = Assert.Single(output.Split('\n'), l => l.StartsWith("| tiny | qwen2 | 8 | cpu |", StringComparison.Ordinal));
        // No GPU, no GEMM rate to compare with: the fractions say so rather than print a number.
        Assert.EndsWith("| n/a | n/a |", row.TrimEnd(), StringComparison.Ordinal);
    }

    [Fact]
    public void BackendAutoSaysWhyItUsesTheCpu()
    {
        var result = CliRunner.Run("score", "--model", Dir("rwkv7"), "--tokens", "1,5,9");
        Assert.True(result.Exit == 0, result.Error);
        var notes = result.Error.Split('\n').Where(l => l.StartsWith(Radlads.Cli.CommonOptions.AutoNotePrefix, StringComparison.Ordinal)).ToArray();
        if (CudaAvailability.Unavailable is not null)
        {
            Assert.Single(notes);
            Assert.Contains("CUDA is not available", notes[0], StringComparison.Ordinal);
            Assert.EndsWith("using the CPU backend", notes[0].TrimEnd(), StringComparison.Ordinal);
        }
        else
        {
            // CUDA runs: at most the one line saying it runs without cuBLASLt.
            Assert.All(notes, n => Assert.Contains("cuBLASLt", n, StringComparison.Ordinal));
            Assert.True(notes.Length <= 1, string.Join("\n", notes));
        }
    }

    [Fact]
    public void TokenizeMatchesTheLibraryWholeAndByLine()
    {
        var tokenizer = QwenTokenizer.FromDirectory(Dir("rwkv7"));
        const string Text = "one line\nsecond  line\r\n";
        var (exit, output, error) = CliRunner.Run("tokenize", "--model", Dir("rwkv7"), "--text", Text);
        Assert.True(exit == 0, error);
        Assert.Equal(string.Join(",", tokenizer.Encode(Text)), output.TrimEnd('\n'));
        (exit, output, _) = CliRunner.Run("tokenize", "--model", Dir("rwkv7"), "--text", Text, "--lines");
        Assert.Equal(0, exit);
        Assert.Equal([string.Join(",", tokenizer.Encode("one line")), string.Join(",", tokenizer.Encode("second  line"))],
            output.Split('\n', StringSplitOptions.RemoveEmptyEntries));
    }

    [Fact]
    public void TokenizeReadsAFileByteForByte()
    {
        var path = Path.Combine(Path.GetTempPath(), $"radlads-text-{Guid.NewGuid():N}.txt");
        try
        {
            File.WriteAllBytes(path, [0xEF, 0xBB, 0xBF, (byte)'h', (byte)'i', (byte)'\n']);
            var (exit, output, error) = CliRunner.Run("tokenize", "--model", Dir("rwkv7"), "--file", path);
            Assert.True(exit == 0, error);
            var tokenizer = QwenTokenizer.FromDirectory(Dir("rwkv7"));
            Assert.Equal(string.Join(",", tokenizer.Encode("\uFEFFhi\n")), output.TrimEnd('\n'));
            File.WriteAllBytes(path, [0xFF, 0xFE, 0x41]);
            Assert.Contains("not valid UTF-8", CliRunner.AssertUserError(CliRunner.Run("tokenize", "--model", Dir("rwkv7"), "--file", path)), StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void TokenizeNeedsOnlyTheTokenizerFile()
    {
        var dir = Path.Combine(Path.GetTempPath(), $"radlads-tok-{Guid.NewGuid():N}");
        Directory.CreateDirectory(dir);
        try
        {
            File.Copy(Path.Combine(Dir("rwkv7"), "tokenizer.json"), Path.Combine(dir, "tokenizer.json"));
            var (exit, output, error) = CliRunner.Run("tokenize", "--model", dir, "--text", "hello");
            Assert.True(exit == 0, error);
            Assert.Matches("^[0-9,]+\n$", output);
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Fact]
    public void GreedyGenerateIsTheArgmaxChainAndReportsTokensPerSecond()
    {
        var (exit, output, error) = CliRunner.Run("generate", "--model", Dir("rwkv7"), "--prompt", "The river", "--temperature", "0", "--max-tokens", "12", "--backend", "cpu");
        Assert.True(exit == 0, error);
        Assert.Contains("tokens/s", error, StringComparison.Ordinal);

        var tokenizer = QwenTokenizer.FromDirectory(Dir("rwkv7"));
        using var model = CausalLM.Load(Dir("rwkv7"), new CpuBackend());
        using var state = model.CreateState();
        var logits = model.Forward(state, tokenizer.Encode("The river"));
        var generated = new List<int>();
        var stops = Radlads.Generation.Generator.DefaultStopTokens(model, tokenizer);
        for (int i = 0; i < 12; i++)
        {
            int best = 0;
            for (int j = 1; j < tokenizer.VocabularySize; j++)
            {
                best = logits[j] > logits[best] ? j : best;
            }

            if (stops.Contains(best))
            {
                break;
            }

            generated.Add(best);
            logits = model.Forward(state, [best]);
        }

        Assert.Equal("The river" + tokenizer.Decode(generated, skipSpecialTokens: true) + "\n", output);
    }

    [Fact]
    public void SeededSamplingIsReproducibleAndStateFilesResume()
    {
        string[] common = ["generate", "--model", Dir("rwkv6"), "--prompt", "Water", "--max-tokens", "10", "--seed", "7", "--temperature", "1"];
        var first = CliRunner.Run(common);
        var second = CliRunner.Run(common);
        Assert.True(first.Exit == 0, first.Error);
        Assert.Equal(first.Output, second.Output);

        var path = Path.Combine(Path.GetTempPath(), $"radlads-gen-{Guid.NewGuid():N}.state");
        try
        {
            var saved = CliRunner.Run([.. common, "--state-out", path]);
            Assert.True(saved.Exit == 0, saved.Error);
            Assert.Contains("saved to", saved.Error, StringComparison.Ordinal);
            var resumed = CliRunner.Run("generate", "--model", Dir("rwkv6"), "--state-in", path, "--prompt", " and", "--max-tokens", "5", "--temperature", "0");
            Assert.True(resumed.Exit == 0, resumed.Error);
            Assert.StartsWith(" and", resumed.Output, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void ChatModePrintsOnlyTheReplyAndStopStringsCutTheText()
    {
        var (exit, output, error) = CliRunner.Run("generate", "--model", Dir("rwkv7"), "--chat", "--system", "Be brief.", "--prompt", "Hi", "--temperature", "0", "--max-tokens", "20");
        Assert.True(exit == 0, error);
        Assert.DoesNotContain("<|im_start|>", output, StringComparison.Ordinal);
        var full = CliRunner.Run("generate", "--model", Dir("rwkv7"), "--prompt", "The", "--temperature", "0", "--max-tokens", "30").Output;
        // Stop at a piece of the greedy continuation: the output ends just before it.
        string continuation = full["The".Length..].TrimEnd('\n');
        string stop = continuation.Substring(continuation.Length / 2, 2);
        var cut = CliRunner.Run("generate", "--model", Dir("rwkv7"), "--prompt", "The", "--temperature", "0", "--max-tokens", "30", "--stop", stop);
        Assert.Equal(0, cut.Exit);
        Assert.Equal("The" + continuation[..continuation.IndexOf(stop, StringComparison.Ordinal)] + "\n", cut.Output);
        Assert.Contains("finish: stop", cut.Error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("generate", "--max-tokens")]
    [InlineData("score", "--dump-logits")]
    [InlineData("tokenize", "--lines")]
    [InlineData("info", "--model")]
    public void HelpExplainsEveryCommand(string command, string option)
    {
        var (exit, output, _) = CliRunner.Run(command, "--help");
        Assert.Equal(0, exit);
        Assert.Contains(option, output, StringComparison.Ordinal);
    }
}
