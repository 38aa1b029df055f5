using System.Diagnostics;
using System.Globalization;
using Radlads.Models;
using Radlads.Ops;

namespace Radlads.Cli.Bench;

/// <summary>
/// The serving scenario of RADLADS appendix E (spec §8.5): 32 requests at once, 8k/7k/6k tokens in and 256/1k/2k out,
/// where the paper measured RAD-RWKV7 over its teacher at 1.61×, 2.77× and 3.41× with vLLM on one H100.
/// <para>Requests: the paper's lengths times --serving-scale, each drawn from ±1/16 around it (seeded, the same for
/// every architecture), all arriving at time 0. Scheduler: continuous batching with chunked prefill, as vLLM's
/// default: every step runs one token for each decoding request first, then gives the rest of a token budget
/// (<see cref="BenchOptions.ServingStepTokens"/>) to prompts in arrival order; a request whose prompt ends in a step
/// takes its first token from that step's logits, and leaves the batch (its state freed) after its last token.
/// Tokens are chosen greedily on the device (only the ids come back), as a server samples. Every request is admitted at once (32 slots):
/// with fewer requests than slots, a waiting queue would never form, so this is the simplest scheduler that is
/// honest here. KV caches are reserved for the whole request on admission (no growth copies mid-run).</para>
/// </summary>
internal sealed class ServingScenario(CausalLM model, ServingScenario.Shape scenario, BenchOptions options, BenchRunner runner)
{
    /// <summary>A scenario: its name in the paper's table, tokens in and out, and the paper's speed-up.</summary>
    internal sealed record Shape(string Name, int TokensIn, int TokensOut, double PaperSpeedup);

    /// <summary>The three rows of the paper's table 13.</summary>
    public static IReadOnlyList<Shape> Paper { get; } =
    [
        new("8k in / 256 out", 8192, 256, 1.61),
        new("7k in / 1k out", 7168, 1024, 2.77),
        new("6k in / 2k out", 6144, 2048, 3.41),
    ];

    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    /// <summary>The rows of <see cref="Paper"/> that --serving-rows selects, in table order.</summary>
    public static IReadOnlyList<Shape> Selected(BenchOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        return [.. options.ServingRows.Distinct().Order().Select(i => Paper[i - 1])];
    }

    /// <summary>The requests' (tokens in, tokens out) for <paramref name="shape"/>: the same for every architecture.</summary>
    public static (int In, int Out)[] Requests(Shape shape, BenchOptions options)
    {
        ArgumentNullException.ThrowIfNull(shape);
        ArgumentNullException.ThrowIfNull(options);
        var random = new Random(options.Seed * 7919 + shape.TokensIn);
        int Draw(int nominal) => Math.Max(1, (int)Math.Round(nominal * options.ServingScale * (1 + ((random.NextDouble() * 2) - 1) / 16)));
        return Enumerable.Range(0, options.ServingRequests).Select(_ => (Draw(shape.TokensIn), Draw(shape.TokensOut))).ToArray();
    }

    public BenchRow Run(BenchRow row)
    {
        var config = model.Config;
        var requests = Requests(scenario, options);
        string name = options.ServingScale == 1 ? scenario.Name : string.Create(Inv, $"{scenario.Name} × {options.ServingScale:G3}");
        row = row with { Batch = requests.Length, Tokens = requests.Sum(r => (long)r.Out), Note = name };
        long need = requests.Sum(r => SyntheticModel.StateBytes(config, r.In + r.Out + 1))
            + BenchRunner.Workspace(config, options.ServingStepTokens + requests.Length, requests.Length, requests.Max(r => r.In + r.Out));
        var (available, total) = runner.Available();
        if (need > available)
        {
            return row with { Status = "does not fit", Note = name + ": " + BenchRunner.FitNote(need, available, total, "the KV caches/states and workspace") };
        }

        var random = new Random(options.Seed);
        var prompts = requests.Select(r => Enumerable.Range(0, r.In).Select(_ => random.Next(config.VocabSize)).ToArray()).ToArray();
        long mem0 = runner.Allocated();
        model.Backend.ResetPeakMemory();
        var states = new SequenceState?[requests.Length];
        var fed = new int[requests.Length];      // prompt tokens already run
        var produced = new int[requests.Length]; // output tokens chosen
        var next = new int[requests.Length];     // the token to feed next while decoding
        int finished = 0;
        long steps = 0;
        var clock = Stopwatch.StartNew();
        try
        {
            for (int i = 0; i < requests.Length; i++)
            {
                states[i] = model.CreateState();
                states[i]!.Reserve(requests[i].In + requests[i].Out + 1);
            }

            var greedy = Enumerable.Repeat(SampleRow.Greedy, requests.Length).ToArray();
            var batchStates = new List<SequenceState>();
            var batchTokens = new List<int[]>();
            var who = new List<int>();
            while (finished < requests.Length)
            {
                batchStates.Clear();
                batchTokens.Clear();
                who.Clear();
                int budget = options.ServingStepTokens;
                for (int i = 0; i < requests.Length && budget > 0; i++)
                {
                    if (states[i] is { } s && fed[i] == requests[i].In)
                    {
                        batchStates.Add(s);
                        batchTokens.Add([next[i]]);
                        who.Add(i);
                        budget--;
                    }
                }

                for (int i = 0; i < requests.Length && budget > 0; i++)
                {
                    if (states[i] is { } s && fed[i] < requests[i].In)
                    {
                        int chunk = Math.Min(budget, requests[i].In - fed[i]);
                        batchStates.Add(s);
                        batchTokens.Add(prompts[i][fed[i]..(fed[i] + chunk)]);
                        who.Add(i);
                        budget -= chunk;
                    }
                }

                var ids = model.ForwardSample(batchStates, batchTokens, greedy.AsSpan(0, batchStates.Count), config.VocabSize);
                steps++;
                for (int j = 0; j < who.Count; j++)
                {
                    int i = who[j];
                    if (fed[i] < requests[i].In)
                    {
                        fed[i] += batchTokens[j].Length;
                        if (fed[i] < requests[i].In)
                        {
                            continue; // more of the prompt to run; these logits are not a token yet
                        }
                    }

                    next[i] = ids[j];
                    if (++produced[i] == requests[i].Out)
                    {
                        states[i]!.Dispose();
                        states[i] = null;
                        finished++;
                    }
                }
            }
        }
        finally
        {
            foreach (var s in states)
            {
                s?.Dispose();
            }
        }

        double seconds = clock.Elapsed.TotalSeconds;
        long outTokens = requests.Sum(r => (long)r.Out);
        var info = model.Backend.MemoryInfo();
        long stateBytes = requests.Sum(r => SyntheticModel.StateBytes(config, r.In + r.Out + 1));
        return row with
        {
            WallSeconds = seconds,
            TokensPerSecond = outTokens / seconds,
            StateBytes = stateBytes,
            PeakBytes = info?.PeakAllocatedBytes,
            WorkspaceBytes = info is null ? null : Math.Max(0, info.PeakAllocatedBytes - mem0 - stateBytes),
            Note = string.Create(Inv,
                $"{name}: {requests.Length} requests, {requests.Sum(r => (long)r.In)} tokens in, {outTokens} out, {steps} steps of ≤ {options.ServingStepTokens} tokens; paper {scenario.PaperSpeedup:F2}×"),
        };
    }
}
