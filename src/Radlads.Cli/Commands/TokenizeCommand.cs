using System.CommandLine;
using Radlads.Tokenization;

namespace Radlads.Cli.Commands;

/// <summary>`radlads tokenize`: print token ids, comma-separated.</summary>
internal static class TokenizeCommand
{
    public static Command Create(CliContext io)
    {
        var model = CommonOptions.Model();
        model.Description = "Folder with tokenizer.json (the model weights are not needed).";
        var text = CommonOptions.Text("Text to tokenize.");
        var file = CommonOptions.File("UTF-8 file to tokenize, byte for byte.");
        var lines = new Option<bool>("--lines") { Description = "Tokenize each input line on its own and print one line of ids per input line." };
        var command = new Command("tokenize", "Print the token ids of a text as the model's tokenizer produces them.") { model, text, file, lines };
        command.SetAction(parse =>
        {
            var tokenizer = QwenTokenizer.FromDirectory(parse.GetValue(model)!);
            string input = CommonOptions.ReadText(parse.GetValue(text), parse.GetValue(file), "tokenize");
            if (parse.GetValue(lines))
            {
                var split = input.Split('\n');
                // A final newline ends the last line rather than starting an empty one.
                int count = split.Length > 1 && split[^1].Length == 0 ? split.Length - 1 : split.Length;
                for (int i = 0; i < count; i++)
                {
                    io.Output.WriteLine(string.Join(",", tokenizer.Encode(split[i].TrimEnd('\r'))));
                }
            }
            else
            {
                io.Output.WriteLine(string.Join(",", tokenizer.Encode(input)));
            }

            return 0;
        });
        return command;
    }
}
