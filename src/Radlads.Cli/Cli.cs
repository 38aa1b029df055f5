using System.CommandLine;
using Radlads.Cli.Commands;

namespace Radlads.Cli;

/// <summary>The `radlads` command line: builds the commands and turns user errors into one-line messages.</summary>
public static class Cli
{
    /// <summary>Exit code for a user error (bad file, bad option): the message says what to do.</summary>
    public const int UserError = 1;

    public static int Run(string[] args, TextWriter output, TextWriter error)
    {
        var root = new RootCommand(
            "Radlads: run RAD-RWKV (rwkv6qwen2, rwkv7qwen2) and Qwen2 language models from Hugging Face checkpoints.\n" +
            "The model commands take --model DIR (a folder with config.json, *.safetensors and tokenizer.json);\n" +
            "without it the small model embedded in models/ is used.");
        var context = new CliContext(output, error);
        root.Subcommands.Add(GenerateCommand.Create(context));
        root.Subcommands.Add(ScoreCommand.Create(context));
        root.Subcommands.Add(TokenizeCommand.Create(context));
        root.Subcommands.Add(InfoCommand.Create(context));
        root.Subcommands.Add(DataCommand.Create(context));
        root.Subcommands.Add(ConvertCommand.Create(context));
        root.Subcommands.Add(DistillCommand.Create(context));
        root.Subcommands.Add(Bench.BenchCommand.Create(context));
        root.Subcommands.Add(BenchDecodeCommand.Create(context));
        var parse = root.Parse(args);
        try
        {
            return parse.Invoke(new InvocationConfiguration { Output = output, Error = error, EnableDefaultExceptionHandler = false });
        }
        catch (RadladsException e)
        {
            error.WriteLine($"error: {e.Message}");
            return UserError;
        }
        catch (OutOfMemoryException)
        {
            error.WriteLine("error: out of memory: the model or the input is too large for this machine; try a smaller model, fewer tokens or a machine with more memory");
            return UserError;
        }
    }
}
