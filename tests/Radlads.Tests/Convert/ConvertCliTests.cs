using System.Globalization;
using System.Text.RegularExpressions;
using Radlads.Checkpoints;
using Radlads.Cli.Commands;
using Radlads.Conversion;
using Radlads.Tests.Checkpoints;
using Radlads.Tests.Cli;
using Radlads.Tests.Models;
using Radlads.Tokenization;

namespace Radlads.Tests.Convert;

/// <summary>`radlads convert` on the command line: progress, summary, the demo-teacher round trip, and its errors.</summary>
public sealed partial class ConvertCliTests(ITestOutputHelper log)
{
    private static string DemoTeacher => Path.Combine(Radlads.Tests.Models.Fixtures.RepositoryRoot, "models", "demo-teacher");

    [GeneratedRegex(@"writing model\.safetensors: (\d+)/(\d+) tensors, done in")]
    private static partial Regex ProgressLine();

    [Fact]
    public void PrintsProgressAndASummaryOnStandardError()
    {
        using var dir = new TempDir();
        string output = Path.Combine(dir.Path, "student");
        var (exit, stdout, error) = CliRunner.Run("convert", "--teacher", Fixtures.Directory("qwen2-tied"), "--arch", "rad-rwkv7", "--output", output, "--seed", "3");
        Assert.True(exit == 0, error);
        Assert.Equal("", stdout);
        var progress = ProgressLine().Match(error);
        Assert.True(progress.Success, error);
        // 3 + 12 per layer copied, 14 per layer new, 3 layers.
        Assert.Equal("81", progress.Groups[1].Value);
        Assert.Equal("81", progress.Groups[2].Value);
        Assert.Contains($"student:        rwkv7qwen2 (rad-rwkv7), variant B (balanced keys, ×N^-1/2), in {output}", error, StringComparison.Ordinal);
        Assert.Contains("ranks:          Rw=32, Ra=32, Rv=32, Rg=32 (calc_lora_rank)", error, StringComparison.Ordinal);
        Assert.Contains("+25,600 untied lm_head (a copy of the embedding)", error, StringComparison.Ordinal);
        Assert.Contains("tensors:        39 copied from the teacher (same bytes), 42 initialised (seed 3)", error, StringComparison.Ordinal);
        Assert.Contains(string.Create(CultureInfo.InvariantCulture, $"model.safetensors {new FileInfo(Path.Combine(output, "model.safetensors")).Length:N0} bytes (bf16)"), error, StringComparison.Ordinal);
        Assert.Contains("ranks:", error, StringComparison.Ordinal);
    }

    [Fact]
    public void RankOptionsOverrideTheFormula()
    {
        using var dir = new TempDir();
        string output = Path.Combine(dir.Path, "student");
        var (exit, _, error) = CliRunner.Run("convert", "--teacher", Fixtures.Directory("qwen2"), "--arch", "rad-rwkv6", "--output", output,
            "--lora-rank-tokenshift", "8", "--lora-rank-decay", "12", "--dtype", "f32");
        Assert.True(exit == 0, error);
        Assert.Contains("ranks:          Rm=8, Rd=12 (calc_lora_rank except --lora-rank-tokenshift, --lora-rank-decay)", error, StringComparison.Ordinal);
        Assert.Contains("converted BF16 → f32", error, StringComparison.Ordinal);
        var (_, info, _) = CliRunner.Run("info", "--model", output);
        Assert.Contains("RAD-RWKV6 (token shift on, Rm=8, Rd=12, gate FullRank, no norm)", info, StringComparison.Ordinal);
        Assert.Contains("F32 weights", info, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("rad-rwkv7")]
    [InlineData("rad-rwkv6")]
    public void DemoTeacherConvertsLoadsAndScores(string arch)
    {
        // The round trip of issue #7 on the 19M-parameter demo teacher: convert, load, score 64 tokens of English.
        using var dir = new TempDir();
        string output = Path.Combine(dir.Path, "student");
        var (exit, _, error) = CliRunner.Run("convert", "--teacher", DemoTeacher, "--arch", arch, "--output", output);
        Assert.True(exit == 0, error);
        log.WriteLine(error);
        var ids = QwenTokenizer.FromDirectory(DemoTeacher).Encode(
            "The old man walked slowly down the road to the village. He had not seen his brother for many years, and he wondered " +
            "whether the house would still be standing. When he reached the gate, a young woman came out to meet him and asked who " +
            "he was, and why he had come so far on foot in the rain.");
        Assert.True(ids.Length >= 64, $"{ids.Length} tokens");
        string tokens = string.Join(",", ids.Take(64));
        double teacher = Perplexity(DemoTeacher, tokens);
        double student = Perplexity(output, tokens);
        log.WriteLine(string.Create(CultureInfo.InvariantCulture, $"perplexity over 63 scored tokens: teacher {teacher:F4}, unaligned {arch} student {student:F4}"));
        Assert.True(double.IsFinite(student) && student > 1, $"student perplexity {student}");
        Assert.NotEqual(teacher, student);
    }

    [Fact]
    public void ANonEmptyOutputFolderNeedsForceAndThenGetsTheStudent()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.File("notes.txt"), "keep me");
        File.WriteAllBytes(dir.File("model-00001-of-00002.safetensors"), [1, 2, 3]);
        var error = CliRunner.AssertUserError(CliRunner.Run("convert", "--teacher", Fixtures.Directory("qwen2"), "--arch", "rad-rwkv7", "--output", dir.Path));
        Assert.Contains("folder exists and is not empty (2 entries); pass --force", error, StringComparison.Ordinal);

        var (exit, _, summary) = CliRunner.Run("convert", "--teacher", Fixtures.Directory("qwen2"), "--arch", "rad-rwkv7", "--output", dir.Path, "--force");
        Assert.True(exit == 0, summary);
        Assert.Contains("left in place in the output folder: model-00001-of-00002.safetensors", summary, StringComparison.Ordinal);
        Assert.Equal("keep me", File.ReadAllText(dir.File("notes.txt")));
        using var model = Radlads.Models.CausalLM.Load(dir.Path, new Radlads.Cpu.CpuBackend());
        Assert.Equal(Radlads.Models.Architecture.Rwkv7Qwen2, model.Config.Architecture);
        Assert.DoesNotContain(Directory.GetFiles(dir.Path), f => Path.GetFileName(f).StartsWith('.'));
    }

    [Fact]
    public void AnEmptyOutputFolderIsUsedAndNoTemporaryFolderStays()
    {
        using var dir = new TempDir();
        string output = Path.Combine(dir.Path, "student");
        Directory.CreateDirectory(output);
        var (exit, _, error) = CliRunner.Run("convert", "--teacher", Fixtures.Directory("qwen2"), "--arch", "rad-rwkv6", "--output", output);
        Assert.True(exit == 0, error);
        Assert.Equal(["student"], Directory.GetFileSystemEntries(dir.Path).Select(Path.GetFileName));
        Assert.Equal(
            ["config.json", "generation_config.json", "model.safetensors", "tokenizer.json"],
            Directory.GetFiles(output).Select(Path.GetFileName).Order(StringComparer.Ordinal));
    }

    [Fact]
    public void TheDefaultOutputFolderSitsNextToTheTeacher()
    {
        string root = Path.GetFullPath(Path.Combine(Path.GetTempPath(), "models"));
        Assert.Equal(Path.Combine(root, "demo-teacher-rad-rwkv7"),
            ConvertCommand.DefaultOutput(Path.Combine(root, "demo-teacher"), StudentArchitecture.RadRwkv7, StudentVariant.Balanced));
        Assert.Equal(Path.Combine(root, "demo-teacher-rad-rwkv6-groupnorm"),
            ConvertCommand.DefaultOutput(Path.Combine(root, "demo-teacher") + Path.DirectorySeparatorChar, StudentArchitecture.RadRwkv6, StudentVariant.GroupNorm));
    }

    [Fact]
    public void ConvertWithoutOutputWritesTheDefaultFolder()
    {
        using var teacher = new FixtureCopy("qwen2");
        string expected = teacher.Directory + "-rad-rwkv7";
        try
        {
            var (exit, _, error) = CliRunner.Run("convert", "--teacher", teacher.Directory, "--arch", "rad-rwkv7");
            Assert.True(exit == 0, error);
            Assert.True(File.Exists(Path.Combine(expected, "model.safetensors")));
        }
        finally
        {
            if (Directory.Exists(expected))
            {
                Directory.Delete(expected, recursive: true);
            }
        }
    }

    [Fact]
    public void ARadRwkvCheckpointIsNotATeacher()
    {
        using var dir = new TempDir();
        var error = CliRunner.AssertUserError(CliRunner.Run("convert", "--teacher", Fixtures.Directory("rwkv7"), "--arch", "rad-rwkv6", "--output", Path.Combine(dir.Path, "s")));
        Assert.Contains("model_type 'rwkv7qwen2' is not a Qwen2 teacher", error, StringComparison.Ordinal);
        Assert.Empty(Directory.GetFileSystemEntries(dir.Path));
    }

    [Fact]
    public void AMissingTeacherFolderIsAUserError()
    {
        var error = CliRunner.AssertUserError(CliRunner.Run("convert", "--teacher", Path.Combine(Path.GetTempPath(), $"no-such-{Guid.NewGuid():N}"), "--arch", "rad-rwkv7"));
        Assert.Contains("folder not found", error, StringComparison.Ordinal);
    }

    [Fact]
    public void TheTeachersOwnFolderIsNotAnOutput()
    {
        var error = CliRunner.AssertUserError(CliRunner.Run("convert", "--teacher", Fixtures.Directory("qwen2"), "--arch", "rad-rwkv7", "--output", Fixtures.Directory("qwen2"), "--force"));
        Assert.Contains("is the teacher's folder", error, StringComparison.Ordinal);
    }

    [Fact]
    public void AnOutputThatIsAFileIsAUserError()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.File("file"), "x");
        var error = CliRunner.AssertUserError(CliRunner.Run("convert", "--teacher", Fixtures.Directory("qwen2"), "--arch", "rad-rwkv7", "--output", dir.File("file")));
        Assert.Contains("is a file", error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("rad-rwkv7", "--lora-rank-decay", "0", "--lora-rank-decay 0: a LoRA rank must be between 1 and 65536")]
    [InlineData("rad-rwkv6", "--lora-rank-gate", "64", "--lora-rank-gate does not apply to rad-rwkv6")]
    [InlineData("rad-rwkv7", "--lora-rank-tokenshift", "32", "--lora-rank-tokenshift does not apply to rad-rwkv7")]
    public void InvalidRanksAreUserErrors(string arch, string option, string value, string message)
    {
        using var dir = new TempDir();
        var error = CliRunner.AssertUserError(CliRunner.Run("convert", "--teacher", Fixtures.Directory("qwen2"), "--arch", arch, "--output", Path.Combine(dir.Path, "s"), option, value));
        Assert.Contains(message, error, StringComparison.Ordinal);
        Assert.Empty(Directory.GetFileSystemEntries(dir.Path));
    }

    [Fact]
    public void ATeacherWithAnOutputBiasCannotBeConverted()
    {
        using var teacher = new FixtureCopy("qwen2");
        AddTensors(teacher, [new TensorToWrite("model.layers.0.self_attn.o_proj.bias", DType.BF16, [64], new byte[128])]);
        using var dir = new TempDir();
        var error = CliRunner.AssertUserError(CliRunner.Run("convert", "--teacher", teacher.Directory, "--arch", "rad-rwkv7", "--output", Path.Combine(dir.Path, "s")));
        Assert.Contains("model.layers.0.self_attn.o_proj.bias; RAD-RWKV students have no output bias", error, StringComparison.Ordinal);
    }

    private static void AddTensors(FixtureCopy copy, TensorToWrite[] extra)
    {
        var tensors = new List<TensorToWrite>();
        copy.EditTensors(t =>
        {
            tensors.Add(t);
            return t;
        });
        SafetensorsWriter.Write(copy.WeightsPath, tensors.Concat(extra));
    }

    private static double Perplexity(string model, string tokens)
    {
        var (exit, output, error) = CliRunner.Run("score", "--model", model, "--backend", "cpu", "--tokens", tokens);
        Assert.True(exit == 0, error);
        var last = output.Split('\n', StringSplitOptions.RemoveEmptyEntries)[^1];
        Assert.StartsWith("tokens scored: 63,", last, StringComparison.Ordinal);
        return double.Parse(last[(last.LastIndexOf(' ') + 1)..], CultureInfo.InvariantCulture);
    }
}
