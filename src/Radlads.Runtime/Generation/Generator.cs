using System.Diagnostics;
using Radlads.Models;
using Radlads.Tokenization;

namespace Radlads.Generation;

/// <summary>Why generation ended.</summary>
public enum FinishReason
{
    /// <summary>A stop token or stop string was produced.</summary>
    Stop,

    /// <summary><see cref="GenerationOptions.MaxTokens"/> tokens were generated.</summary>
    Length,

    /// <summary>The caller cancelled.</summary>
    Cancelled,
}

/// <summary>Counts and timings of one generation, for the tokens/s line.</summary>
public sealed record GenerationStats(int PromptTokens, int GeneratedTokens, TimeSpan Prefill, TimeSpan Decode, FinishReason FinishReason)
{
    /// <summary>Prompt tokens per second of prefill.</summary>
    public double PrefillTokensPerSecond => PromptTokens / Math.Max(Prefill.TotalSeconds, 1e-9);

    /// <summary>Generated tokens per second, counting from the first sampled token (time to first token is prefill).</summary>
    public double DecodeTokensPerSecond => Math.Max(GeneratedTokens - 1, 0) / Math.Max(Decode.TotalSeconds, 1e-9);
}

/// <summary>
/// Streams text from a model: prefill the prompt in one forward pass, then sample, decode and feed back one
/// token at a time. Text is released as complete UTF-8 characters that cannot be part of a stop string.
/// </summary>
public sealed class Generator(CausalLM model, QwenTokenizer tokenizer)
{
    public CausalLM Model { get; } = model;

    public QwenTokenizer Tokenizer { get; } = tokenizer;

    /// <summary>Stats of the last completed <see cref="Generate"/> call.</summary>
    public GenerationStats? LastStats { get; private set; }

    /// <summary>
    /// Continues <paramref name="state"/> with <paramref name="prompt"/> and yields text pieces as they become final.
    /// The state advances by the prompt and every generated token except a final stop token.
    /// </summary>
    public IEnumerable<string> Generate(SequenceState state, IReadOnlyList<int> prompt, GenerationOptions options, CancellationToken cancellation = default)
    {
        options.Validate();
        if (prompt.Count == 0)
        {
            throw new RadladsException("the prompt is empty: give at least one token (with --chat an empty message still has template tokens)");
        }

        var sampler = new Sampler(options.Sampling);
        var decoder = Tokenizer.CreateStreamingDecoder(skipSpecialTokens: true);
        var stops = new StopStringMatcher(options.StopStrings);
        var history = new List<int>(prompt);
        int allowed = Math.Min(Tokenizer.VocabularySize, Model.Config.VocabSize);
        var clock = Stopwatch.StartNew();
        int token = Next(state, prompt.ToArray(), sampler, history, allowed);
        var prefill = clock.Elapsed;
        clock.Restart();
        int generated = 0;
        var reason = FinishReason.Length;
        while (generated < options.MaxTokens)
        {
            if (cancellation.IsCancellationRequested)
            {
                reason = FinishReason.Cancelled;
                break;
            }

            generated++;
            if (options.StopTokens.Contains(token))
            {
                reason = FinishReason.Stop;
                break;
            }

            history.Add(token);
            var text = stops.Push(decoder.Push(token));
            if (text.Length > 0)
            {
                yield return text;
            }

            if (stops.Stopped)
            {
                reason = FinishReason.Stop;
                break;
            }

            if (generated < options.MaxTokens)
            {
                token = Next(state, [token], sampler, history, allowed);
            }
        }

        var rest = stops.Push(decoder.Flush()) + stops.Flush();
        if (rest.Length > 0)
        {
            yield return rest;
        }

        LastStats = new GenerationStats(prompt.Count, generated, prefill, clock.Elapsed, reason);
    }

    /// <summary>
    /// Runs <paramref name="tokens"/> and picks the next token. Without a repetition penalty the backend samples where the
    /// logits are (<see cref="CausalLM.ForwardSample(SequenceState, ReadOnlySpan{int}, Ops.SampleRow, int)"/>: on a GPU only the id comes back); with one, the logits come to
    /// the host for <see cref="Sampler.Sample"/>. Both consume the same random numbers, so a seed gives the same text.
    /// </summary>
    private int Next(SequenceState state, int[] tokens, Sampler sampler, List<int> history, int allowed)
    {
        if (sampler.NeedsLogits)
        {
            var logits = Model.Forward(state, tokens);
            return sampler.Sample(logits, allowed, System.Runtime.InteropServices.CollectionsMarshal.AsSpan(history));
        }

        return Model.ForwardSample(state, tokens, sampler.NextRow(), allowed);
    }

    /// <summary>
    /// The model's stop tokens: eos_token_id of generation_config.json and config.json, plus the ChatML
    /// end-of-turn and end-of-text tokens when the tokenizer has them.
    /// </summary>
    public static IReadOnlyCollection<int> DefaultStopTokens(CausalLM model, QwenTokenizer tokenizer)
    {
        var stops = new HashSet<int>(model.Config.EosTokenIds);
        foreach (var id in GenerationConfig.EosTokenIds(model.Directory))
        {
            stops.Add(id);
        }

        foreach (var name in new[] { "<|im_end|>", "<|endoftext|>" })
        {
            if (tokenizer.TokenToId(name) is int id)
            {
                stops.Add(id);
            }
        }

        return stops;
    }
}
