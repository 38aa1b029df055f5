using Radlads.Models;

namespace Radlads.Cli.Bench;

/// <summary>What `radlads bench` measures (see <see cref="BenchCommand"/> for the option each field comes from).</summary>
internal sealed record BenchOptions
{
    /// <summary>Synthetic shapes (short names: tiny, 0.5b, 1.5b, 7b, 32b).</summary>
    public IReadOnlyList<string> Shapes { get; init; } = [];

    /// <summary>Real checkpoint folders.</summary>
    public IReadOnlyList<string> Models { get; init; } = [];

    public IReadOnlyList<Architecture> Architectures { get; init; } = [Architecture.Qwen2, Architecture.Rwkv6Qwen2, Architecture.Rwkv7Qwen2];

    public IReadOnlyList<int> Contexts { get; init; } = [];

    public IReadOnlyList<int> Batches { get; init; } = [];

    /// <summary>The context every sequence of the batched-decode measurement is at.</summary>
    public int BatchContext { get; init; }

    /// <summary>Prompt length of the prefill / time-to-first-token measurement.</summary>
    public int PrefillTokens { get; init; }

    /// <summary>Timed decode steps per configuration.</summary>
    public int DecodeTokens { get; init; }

    /// <summary>Untimed decode steps first (the first one records the CUDA graph).</summary>
    public int Warmup { get; init; }

    public bool Serving { get; init; }

    /// <summary>Request lengths of the serving scenario are the paper's times this.</summary>
    public double ServingScale { get; init; } = 1;

    public int ServingRequests { get; init; } = 32;

    /// <summary>Rows of the paper's serving table to run (1-based: 1 = 8k in / 256 out, 2 = 7k / 1k, 3 = 6k / 2k).</summary>
    public IReadOnlyList<int> ServingRows { get; init; } = [1, 2, 3];

    /// <summary>Tokens one serving step may run (decode rows + prefill chunks), as vLLM's max_num_batched_tokens.</summary>
    public int ServingStepTokens { get; init; } = 2048;

    /// <summary>Pretend the device holds at most this many bytes (plans and reports as on a smaller card).</summary>
    public long? MemoryLimit { get; init; }

    public bool Quick { get; init; }

    public int Seed { get; init; } = 1;
}
