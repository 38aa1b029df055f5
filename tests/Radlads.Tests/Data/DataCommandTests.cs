using System.Text;
using System.Text.Json;
using Radlads.Data;
using Radlads.Tests.Checkpoints;
using Radlads.Tests.Cli;
using Radlads.Tests.Models;
using Radlads.Tokenization;

namespace Radlads.Tests.Data;

/// <summary>`radlads data tokenize` and `radlads data info`, run in-process on the tiny test tokenizer.</summary>
public sealed class DataCommandTests
{
    private static string TokenizerDirectory => Fixtures.Directory("rwkv7");

    private static QwenTokenizer Tokenizer => QwenTokenizer.FromDirectory(TokenizerDirectory);

    private static int Separator => Tokenizer.TokenToId("<|endoftext|>")!.Value;

    private static int[] ReadAll(string path)
    {
        using var file = TokenFile.Open(path);
        var ids = new int[file.Count];
        file.CopyTo(0, ids);
        return ids;
    }

    private static int[] Expected(IEnumerable<string> documents)
    {
        var tokenizer = Tokenizer;
        int separator = Separator;
        return [.. documents.SelectMany(d => tokenizer.Encode(d).Append(separator))];
    }

    private static string JsonLine(string text, string field = "text") =>
        JsonSerializer.Serialize(new Dictionary<string, object> { ["id"] = 7, [field] = text, ["meta"] = new[] { 1, 2 } });

    [Fact]
    public void TokenizeWritesEachDocumentsIdsThenTheSeparatorInInputOrder()
    {
        using var dir = new TempDir();
        string[] first = ["Hello world", "", "The river flows.\nSecond line\r\nthird", "naïve café — 東京 🙂", "ends with <|im_end|> inside", "  spaces  "];
        File.WriteAllText(dir.File("first.jsonl"),
            "\uFEFF" + JsonLine(first[0]) + "\n\n" + JsonLine(first[1]) + "\r\n" + string.Join("\n", first[2..].Select(t => JsonLine(t))) + "\n   \n");
        const string Plain = "A plain text file.\r\nIt is one document, newlines and all.\n\n";
        File.WriteAllText(dir.File("second.txt"), "\uFEFF" + Plain);
        var many = Enumerable.Range(0, 5000).Select(i => $"document {i}: " + new string('a', i % 37) + (i % 3 == 0 ? " the end." : "")).ToArray();
        File.WriteAllLines(dir.File("third.jsonl"), many.Select(t => JsonLine(t)));
        string output = dir.File("corpus.bin");

        var (exit, stdout, error) = CliRunner.Run("data", "tokenize", "--tokenizer", TokenizerDirectory,
            "--input", dir.File("first.jsonl"), "-i", dir.File("second.txt"), "--input", dir.File("third.jsonl"), "--output", output);
        Assert.True(exit == 0, error);
        Assert.Equal("", stdout);

        string[] documents = [.. first, Plain, .. many];
        Assert.Equal(Expected(documents), ReadAll(output));
        using (var file = TokenFile.Open(output))
        {
            Assert.Equal(documents.Length, file.DocumentCount);
            Assert.Equal(Separator, file.SeparatorId);
            Assert.Equal(Tokenizer.VocabularySize, file.VocabularySize);
            Assert.Equal(2, file.BytesPerToken);
            file.Validate();
        }

        // Not a terminal: no redraws, a plain final progress line and the summary.
        Assert.DoesNotContain('\r', error);
        var lines = error.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(2, lines.Length);
        Assert.Contains("100.0%", lines[0], StringComparison.Ordinal);
        Assert.Contains($"{documents.Length:N0} docs", lines[0], StringComparison.Ordinal);
        Assert.StartsWith($"{documents.Length:N0} documents, {Expected(documents).Length:N0} tokens", lines[1], StringComparison.Ordinal);
        Assert.Contains("tokens/s", lines[1], StringComparison.Ordinal);
        Assert.Contains($"wrote {output} ({new FileInfo(output).Length:N0} bytes", lines[1], StringComparison.Ordinal);
        Assert.Equal([output], Directory.GetFiles(dir.Path, "*.bin*"));
    }

    [Fact]
    public void TheTextFieldAndTheTokenizerFileCanBeNamed()
    {
        using var dir = new TempDir();
        File.WriteAllLines(dir.File("c.jsonl"), [JsonLine("first", "content"), JsonLine("second", "content")]);
        var (exit, _, error) = CliRunner.Run("data", "tokenize", "-t", Path.Combine(TokenizerDirectory, "tokenizer.json"),
            "-i", dir.File("c.jsonl"), "-o", dir.File("c.bin"), "--text-field", "content");
        Assert.True(exit == 0, error);
        Assert.Equal(Expected(["first", "second"]), ReadAll(dir.File("c.bin")));
    }

    [Theory]
    [InlineData("{\"text\": \"broken\"", "not valid JSON")]
    [InlineData("[\"text\"]", "expected a JSON object, got an array")]
    [InlineData("{\"body\": \"no text field\"}", "no \"text\" field (name the text field with --text-field)")]
    [InlineData("{\"text\": 42}", "field \"text\" is a number, not a string")]
    [InlineData("{\"text\": null}", "field \"text\" is null, not a string")]
    public void AMalformedJsonLineIsAnErrorNamingTheFileAndLine(string badLine, string reason)
    {
        using var dir = new TempDir();
        string input = dir.File("bad.jsonl");
        File.WriteAllText(input, JsonLine("fine") + "\n\n" + badLine + "\n" + JsonLine("never read") + "\n");
        string output = dir.File("out.bin");
        File.WriteAllText(output, "previous corpus");

        string message = CliRunner.AssertUserError(CliRunner.Run("data", "tokenize", "--tokenizer", TokenizerDirectory, "--input", input, "--output", output));
        Assert.StartsWith($"error: {input}, line 3: ", message, StringComparison.Ordinal);
        Assert.Contains(reason, message, StringComparison.Ordinal);
        Assert.Equal("previous corpus", File.ReadAllText(output)); // the old output survives a failed run
        Assert.Equal(2, Directory.GetFiles(dir.Path).Length); // and no temporary file is left
    }

    [Fact]
    public void InvalidUtf8IsAnError()
    {
        using var dir = new TempDir();
        File.WriteAllBytes(dir.File("bad.txt"), [(byte)'o', (byte)'k', 0xFF]);
        File.WriteAllBytes(dir.File("bad.jsonl"), [.. Encoding.UTF8.GetBytes(JsonLine("fine") + "\n{\"text\": \""), 0xC3, (byte)'"', (byte)'}', (byte)'\n']);
        Assert.Equal($"error: {dir.File("bad.txt")}: not valid UTF-8 text",
            CliRunner.AssertUserError(CliRunner.Run("data", "tokenize", "-t", TokenizerDirectory, "-i", dir.File("bad.txt"), "-o", dir.File("o.bin"))));
        Assert.Equal($"error: {dir.File("bad.jsonl")}, line 2: not valid UTF-8 text",
            CliRunner.AssertUserError(CliRunner.Run("data", "tokenize", "-t", TokenizerDirectory, "-i", dir.File("bad.jsonl"), "-o", dir.File("o.bin"))));
        Assert.False(File.Exists(dir.File("o.bin")));
    }

    [Fact]
    public void MissingInputsAndBadPathsAreErrorsNamingTheOption()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.File("ok.txt"), "fine");
        string missing = dir.File("missing.jsonl");
        Assert.Equal($"error: --input {missing}: file not found",
            CliRunner.AssertUserError(CliRunner.Run("data", "tokenize", "-t", TokenizerDirectory, "-i", dir.File("ok.txt"), "-i", missing, "-o", dir.File("o.bin"))));
        Assert.Contains("--output", CliRunner.AssertUserError(CliRunner.Run("data", "tokenize", "-t", TokenizerDirectory, "-i", dir.File("ok.txt"),
            "-o", Path.Combine(dir.Path, "no-such-folder", "o.bin"))), StringComparison.Ordinal);
        Assert.Contains("is also an --input", CliRunner.AssertUserError(CliRunner.Run("data", "tokenize", "-t", TokenizerDirectory, "-i", dir.File("ok.txt"),
            "-o", dir.File("ok.txt"))), StringComparison.Ordinal);
        Assert.Contains("--tokenizer", CliRunner.AssertUserError(CliRunner.Run("data", "tokenize", "-t", dir.File("nothing-here"), "-i", dir.File("ok.txt"),
            "-o", dir.File("o.bin"))), StringComparison.Ordinal);
        Assert.Equal("fine", File.ReadAllText(dir.File("ok.txt")));
        Assert.False(File.Exists(dir.File("o.bin")));

        var (exit, _, error) = CliRunner.Run("data", "tokenize", "-t", TokenizerDirectory, "-o", dir.File("o.bin"));
        Assert.NotEqual(0, exit);
        Assert.Contains("--input", error, StringComparison.Ordinal);
    }

    [Fact]
    public void ATokenizerWithoutEndOfTextIsAnError()
    {
        using var dir = new TempDir();
        string json = File.ReadAllText(Path.Combine(TokenizerDirectory, "tokenizer.json")).Replace("<|endoftext|>", "<|eot|>", StringComparison.Ordinal);
        File.WriteAllText(dir.File("tokenizer.json"), json);
        File.WriteAllText(dir.File("a.txt"), "text");
        string message = CliRunner.AssertUserError(CliRunner.Run("data", "tokenize", "-t", dir.Path, "-i", dir.File("a.txt"), "-o", dir.File("o.bin")));
        Assert.Equal($"error: --tokenizer {dir.Path}: the tokenizer has no <|endoftext|> token, which the token file puts after every document", message);
    }

    [Fact]
    public void InfoPrintsTheHeaderAndStatistics()
    {
        using var dir = new TempDir();
        string[] documents = ["The river flows past the old mill.", "A second, longer document about the sea and the sky above it.", "Third."];
        File.WriteAllLines(dir.File("c.jsonl"), documents.Select(t => JsonLine(t)));
        string path = dir.File("c.bin");
        Assert.Equal(0, CliRunner.Run("data", "tokenize", "-t", TokenizerDirectory, "-i", dir.File("c.jsonl"), "-o", path).Exit);
        var ids = Expected(documents);

        var (exit, output, error) = CliRunner.Run("data", "info", path, "--validate");
        Assert.True(exit == 0, error);
        var lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(
        [
            $"file:           {path} ({64 + (2 * ids.Length):N0} bytes)",
            "format:         RDLSTOK1 version 1, uint16 tokens (2 bytes each) from byte 64",
            $"tokens:         {ids.Length:N0} (separators included)",
            $"vocabulary:     {Tokenizer.VocabularySize} (ids 0 to {Tokenizer.VocabularySize - 1})",
            $"separator:      {Separator} (after every document)",
            $"documents:      3, mean {ids.Length / 3.0:F1} tokens each (separator included)",
            $"first ids:      {string.Join(",", ids.Take(20))},…",
            $"validated:      every id is below {Tokenizer.VocabularySize}; 3 separators",
        ], lines);

        Assert.DoesNotContain("validated", CliRunner.Run("data", "info", path).Output, StringComparison.Ordinal);
    }

    [Fact]
    public void InfoOnABadFileIsAnErrorNamingIt()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.File("not-tokens.bin"), "{\"text\": \"this is json, not a token file, and long enough for a header\"}");
        Assert.Equal($"error: {dir.File("not-tokens.bin")}: not a Radlads token file (starts with \"{{\"text\":\", expected \"RDLSTOK1\")",
            CliRunner.AssertUserError(CliRunner.Run("data", "info", dir.File("not-tokens.bin"))));
        Assert.Contains("file not found", CliRunner.AssertUserError(CliRunner.Run("data", "info", dir.File("missing.bin"))), StringComparison.Ordinal);

        string bad = TokenFileTests.Write(dir, "bad-id.bin", 384, 381, [1, 2]);
        using (var stream = new FileStream(bad, FileMode.Open))
        {
            stream.Position = 64;
            stream.Write(BitConverter.GetBytes((ushort)400));
        }

        Assert.Contains("token 0 is id 400, not below the vocabulary size 384", CliRunner.AssertUserError(CliRunner.Run("data", "info", bad)), StringComparison.Ordinal);
    }
}
