using System.CommandLine;
using System.Globalization;
using System.Runtime.ExceptionServices;
using Radlads.Cli.Data;
using Radlads.Data;
using Radlads.Tokenization;

namespace Radlads.Cli.Commands;

/// <summary>`radlads data`: tokenize text corpora into token files (<see cref="TokenFile"/>) and describe them.</summary>
internal static class DataCommand
{
    /// <summary>The token written after every document.</summary>
    public const string Separator = "<|endoftext|>";

    // A batch is read while the previous one is tokenized; these bound the memory that takes.
    private const int BatchDocuments = 4096;
    private const long BatchChars = 8 << 20;

    public static Command Create(CliContext io)
    {
        var command = new Command("data", "Prepare training data: tokenize corpora into token files and describe token files.");
        command.Subcommands.Add(CreateTokenize(io));
        command.Subcommands.Add(CreateInfo(io));
        return command;
    }

    private static Command CreateTokenize(CliContext io)
    {
        var tokenizerOption = new Option<string>("--tokenizer", "-t")
        {
            Description = "Folder with tokenizer.json (a model folder will do), or the tokenizer.json file itself.",
            Required = true,
        };
        var inputOption = new Option<string[]>("--input", "-i")
        {
            Description = "A corpus file; repeat for several, read in the order given. .jsonl: one JSON object per line with the " +
                "document in the --text-field field (blank lines skipped); any other extension: UTF-8 text, the whole file one document.",
            Required = true,
        };
        var outputOption = new Option<string>("--output", "-o")
        {
            Description = "The token file to write (replaced only once it is complete), e.g. corpus.bin.",
            Required = true,
        };
        var fieldOption = new Option<string>("--text-field")
        {
            Description = "The field of each .jsonl object that holds the document text.",
            DefaultValueFactory = _ => "text",
        };
        var command = new Command("tokenize",
            $"Tokenize corpus files in parallel into a token file: the ids of every document followed by {Separator}, in input order.")
        {
            tokenizerOption, inputOption, outputOption, fieldOption,
        };
        command.SetAction(parse => Tokenize(io, parse.GetValue(tokenizerOption)!, parse.GetValue(inputOption)!, parse.GetValue(outputOption)!, parse.GetValue(fieldOption)!));
        return command;
    }

    private static int Tokenize(CliContext io, string tokenizerPath, string[] inputs, string output, string textField)
    {
        string outputPath = Path.GetFullPath(output);
        long totalBytes = 0;
        foreach (string input in inputs)
        {
            if (Directory.Exists(input))
            {
                throw new RadladsException($"--input {input}: is a folder; give the corpus files themselves");
            }

            if (!File.Exists(input))
            {
                throw new RadladsException($"--input {input}: file not found");
            }

            if (string.Equals(Path.GetFullPath(input), outputPath, StringComparison.Ordinal))
            {
                throw new RadladsException($"--output {output}: is also an --input; write the token file somewhere else");
            }

            totalBytes += new FileInfo(input).Length;
        }

        if (Directory.Exists(outputPath))
        {
            throw new RadladsException($"--output {output}: is a folder; give the token file's name, e.g. {Path.Combine(output, "corpus.bin")}");
        }

        if (!Directory.Exists(Path.GetDirectoryName(outputPath)))
        {
            throw new RadladsException($"--output {output}: folder {Path.GetDirectoryName(outputPath)} does not exist");
        }

        var tokenizer = LoadTokenizer(tokenizerPath);
        int separator = tokenizer.TokenToId(Separator)
            ?? throw new RadladsException($"--tokenizer {tokenizerPath}: the tokenizer has no {Separator} token, which the token file puts after every document");

        bool terminal = ReferenceEquals(io.Error, Console.Error) && !Console.IsErrorRedirected;
        using var writer = new TokenFileWriter(outputPath, tokenizer.VocabularySize, separator);
        using var progress = new TokenizeProgress(io.Error, terminal, totalBytes);
        TokenizeAll(inputs.SelectMany(input => CorpusDocuments.Read(input, textField)), tokenizer, writer, progress);
        writer.Commit();
        progress.Finish();

        double seconds = progress.Elapsed.TotalSeconds;
        io.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{writer.DocumentCount:N0} documents, {writer.Count:N0} tokens (separators included) in {seconds:F2} s " +
            $"({(seconds > 0 ? writer.Count / seconds : 0):N0} tokens/s); wrote {writer.Path} ({new FileInfo(writer.Path).Length:N0} bytes, " +
            $"{(writer.BytesPerToken == 2 ? "uint16" : "uint32")} tokens)"));
        return 0;
    }

    /// <summary>
    /// Tokenizes documents on all cores and writes them in input order. The next batch is read on another thread
    /// while the current one is tokenized, so reading and JSON parsing overlap the tokenizer.
    /// </summary>
    private static void TokenizeAll(IEnumerable<Document> documents, QwenTokenizer tokenizer, TokenFileWriter writer, TokenizeProgress progress)
    {
        using var source = documents.GetEnumerator();
        var next = Task.Run(() => ReadBatch(source));
        try
        {
            while (true)
            {
                var batch = next.GetAwaiter().GetResult();
                if (batch.Count == 0)
                {
                    return;
                }

                next = Task.Run(() => ReadBatch(source));
                var ids = new int[batch.Count][];
                try
                {
                    Parallel.For(0, batch.Count, i =>
                    {
                        ids[i] = tokenizer.Encode(batch[i].Text);
                        progress.Add(1, ids[i].Length + 1, batch[i].InputBytes);
                    });
                }
                catch (AggregateException e) when (e.InnerExceptions.Count == 1)
                {
                    ExceptionDispatchInfo.Throw(e.InnerExceptions[0]);
                }

                foreach (int[] document in ids)
                {
                    writer.WriteDocument(document);
                }
            }
        }
        finally
        {
            // The reader must be done with the enumerator before it is disposed; its own error, if any, is moot now.
            try
            {
                next.Wait();
            }
            catch (AggregateException)
            {
            }
        }
    }

    private static List<Document> ReadBatch(IEnumerator<Document> source)
    {
        var batch = new List<Document>();
        long chars = 0;
        while (batch.Count < BatchDocuments && chars < BatchChars && source.MoveNext())
        {
            batch.Add(source.Current);
            chars += source.Current.Text.Length;
        }

        return batch;
    }

    private static QwenTokenizer LoadTokenizer(string path)
    {
        if (File.Exists(path))
        {
            return QwenTokenizer.FromFile(path);
        }

        if (Directory.Exists(path))
        {
            return QwenTokenizer.FromDirectory(path);
        }

        throw new RadladsException($"--tokenizer {path}: not found (give a folder with tokenizer.json, or the tokenizer.json file)");
    }

    private static Command CreateInfo(CliContext io)
    {
        var fileArgument = new Argument<string>("file") { Description = "A token file, e.g. one written by radlads data tokenize." };
        var validateOption = new Option<bool>("--validate")
        {
            Description = "Also read every token: check each id is below the vocabulary size and count the separators.",
        };
        var command = new Command("info", "Print a token file's header and statistics: tokens, documents, mean document length, the first ids.")
        {
            fileArgument, validateOption,
        };
        command.SetAction(parse =>
        {
            string path = parse.GetValue(fileArgument)!;
            if (!File.Exists(path))
            {
                throw new RadladsException($"{path}: file not found");
            }

            using var file = TokenFile.Open(path);
            var first = new int[(int)Math.Min(20, file.Count)];
            file.CopyTo(0, first);
            var o = io.Output;
            var c = CultureInfo.InvariantCulture;
            o.WriteLine(string.Create(c, $"file:           {file.Path} ({new FileInfo(file.Path).Length:N0} bytes)"));
            o.WriteLine(string.Create(c, $"format:         RDLSTOK1 version 1, {(file.BytesPerToken == 2 ? "uint16" : "uint32")} tokens ({file.BytesPerToken} bytes each) from byte 64"));
            o.WriteLine(string.Create(c, $"tokens:         {file.Count:N0} (separators included)"));
            o.WriteLine(string.Create(c, $"vocabulary:     {file.VocabularySize:N0} (ids 0 to {file.VocabularySize - 1})"));
            o.WriteLine(string.Create(c, $"separator:      {file.SeparatorId} (after every document)"));
            o.WriteLine(file.DocumentCount == 0
                ? "documents:      0"
                : string.Create(c, $"documents:      {file.DocumentCount:N0}, mean {(double)file.Count / file.DocumentCount:F1} tokens each (separator included)"));
            o.WriteLine(first.Length == 0 ? "first ids:      (none)" : $"first ids:      {string.Join(",", first)}{(file.Count > first.Length ? ",…" : "")}");
            if (parse.GetValue(validateOption))
            {
                file.Validate();
                o.WriteLine(string.Create(c, $"validated:      every id is below {file.VocabularySize:N0}; {CountSeparators(file):N0} separators"));
            }

            return 0;
        });
        return command;
    }

    private static long CountSeparators(TokenFile file)
    {
        const int Chunk = 1 << 20;
        long count = 0;
        for (long start = 0; start < file.Count; start += Chunk)
        {
            int length = (int)Math.Min(Chunk, file.Count - start);
            count += file.BytesPerToken == 2
                ? file.UInt16Tokens(start, length).Count((ushort)file.SeparatorId)
                : file.UInt32Tokens(start, length).Count((uint)file.SeparatorId);
        }

        return count;
    }
}
