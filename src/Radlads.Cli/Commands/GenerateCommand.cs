using System.CommandLine;
using System.Globalization;
using Radlads.Generation;
using Radlads.Models;
using Radlads.Tokenization;

namespace Radlads.Cli.Commands;

/// <summary>`radlads generate`: stream a continuation (or a chat reply) to the console.</summary>
internal static class GenerateCommand
{
    public static Command Create(CliContext io)
    {
        var model = CommonOptions.Model();
        var backend = CommonOptions.Backend();
        var ilgpuDevice = CommonOptions.IlgpuDevice();
        var prompt = new Option<string>("--prompt", "-p") { Description = "Text to continue (with --chat: the user message).", DefaultValueFactory = _ => "Once upon a time" };
        var chat = new Option<bool>("--chat") { Description = "Wrap the prompt in the ChatML template (<|im_start|>user … <|im_end|>) and print only the reply." };
        var system = new Option<string?>("--system") { Description = "System message for --chat." };
        var maxTokens = new Option<int>("--max-tokens", "-n") { Description = "Most tokens to generate.", DefaultValueFactory = _ => 256 };
        var temperature = new Option<float>("--temperature", "-t") { Description = "Sampling temperature; 0 = greedy (always the most likely token).", DefaultValueFactory = _ => 0.7f };
        var topK = new Option<int>("--top-k") { Description = "Sample among the K most likely tokens; 0 = no limit.", DefaultValueFactory = _ => 20 };
        var topP = new Option<float>("--top-p") { Description = "Nucleus sampling: the smallest set of tokens with probability ≥ P; 1 = off.", DefaultValueFactory = _ => 0.8f };
        var minP = new Option<float>("--min-p") { Description = "Drop tokens less likely than MIN_P × the most likely one; 0 = off.", DefaultValueFactory = _ => 0f };
        var repetition = new Option<float>("--repetition-penalty") { Description = "Penalise tokens of the last 64 (CTRL rule); 1 = off.", DefaultValueFactory = _ => 1f };
        var seed = new Option<ulong?>("--seed", "-s") { Description = "Seed for reproducible sampling (same seed, same output)." };
        var stop = new Option<string[]>("--stop") { Description = "Stop when this text appears (repeatable); the model's stop tokens always apply.", AllowMultipleArgumentsPerToken = false };
        var stateIn = new Option<FileInfo?>("--state-in") { Description = "Continue from a state saved with --state-out (the prompt is appended to it)." };
        var profile = CommonOptions.Profile();
        var stateOut = new Option<FileInfo?>("--state-out") { Description = "Save the sequence state (recurrent state or KV cache) after generating, to resume later." };
        var command = new Command("generate", "Generate text from a prompt, streaming tokens as they are produced; prints tokens/s at the end.")
        {
            model, prompt, chat, system, maxTokens, temperature, topK, topP, minP, repetition, seed, stop, backend, ilgpuDevice, stateIn, stateOut, profile,
        };
        command.SetAction(parse =>
        {
            var options = new GenerationOptions
            {
                MaxTokens = parse.GetValue(maxTokens),
                StopStrings = parse.GetValue(stop) ?? [],
                Sampling = new SamplingOptions
                {
                    Temperature = parse.GetValue(temperature),
                    TopK = parse.GetValue(topK),
                    TopP = parse.GetValue(topP),
                    MinP = parse.GetValue(minP),
                    RepetitionPenalty = parse.GetValue(repetition),
                    Seed = parse.GetValue(seed),
                },
            };
            options.Validate();
            string directory = parse.GetValue(model)!;
            var tokenizer = QwenTokenizer.FromDirectory(directory);
            using var device = CommonOptions.CreateBackend(parse.GetValue(backend)!, parse.GetValue(profile), io.Error, parse.GetValue(ilgpuDevice)!);
            using var lm = CausalLM.Load(directory, device);
            options = options with { StopTokens = Generator.DefaultStopTokens(lm, tokenizer) };
            string text = parse.GetValue(prompt)!;
            bool isChat = parse.GetValue(chat);
            if (isChat)
            {
                var messages = new List<ChatMessage>();
                if (parse.GetValue(system) is string s)
                {
                    messages.Add(new ChatMessage("system", s));
                }

                messages.Add(new ChatMessage("user", text));
                text = ChatTemplate.Format(messages, addGenerationPrompt: true);
            }

            var state = parse.GetValue(stateIn) is FileInfo input ? SequenceState.Load(lm, input.FullName) : lm.CreateState();
            using var cancel = new CancellationTokenSource();
            ConsoleCancelEventHandler onCancel = (_, e) =>
            {
                e.Cancel = true;
                cancel.Cancel();
            };
            Console.CancelKeyPress += onCancel;
            try
            {
                if (!isChat)
                {
                    io.Output.Write(text);
                }

                var generator = new Generator(lm, tokenizer);
                foreach (var piece in generator.Generate(state, tokenizer.Encode(text), options, cancel.Token))
                {
                    io.Output.Write(piece);
                    io.Output.Flush();
                }

                io.Output.WriteLine();
                var stats = generator.LastStats!;
                io.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"[{lm.Backend.Name}] prompt {stats.PromptTokens} tokens in {stats.Prefill.TotalSeconds:F3} s ({stats.PrefillTokensPerSecond:F1} tokens/s); " +
                    $"generated {stats.GeneratedTokens} tokens in {stats.Decode.TotalSeconds:F3} s ({stats.DecodeTokensPerSecond:F1} tokens/s); finish: {stats.FinishReason.ToString().ToLowerInvariant()}"));
                CommonOptions.ReportProfile(lm.Backend, io.Error);
                if (parse.GetValue(stateOut) is FileInfo output)
                {
                    state.Save(output.FullName);
                    io.Error.WriteLine($"state after {state.Position} tokens saved to {output.FullName} ({state.SizeBytes:N0} bytes)");
                }
            }
            finally
            {
                Console.CancelKeyPress -= onCancel;
                state.Dispose();
            }

            return 0;
        });
        return command;
    }
}
