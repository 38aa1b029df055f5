using System.Runtime.InteropServices;
using Radlads.Checkpoints;
using Radlads.Ops;

namespace Radlads.Models;

/// <summary>
/// Models with random bf16 weights at the real Qwen2.5 shapes (spec §1), built in memory without a checkpoint
/// file: what the benchmarks run. The RAD-RWKV7 variant is the paper's (balanced keys, no GroupNorm,
/// low-rank gate, RoPE on) with LoRA ranks from the reference code's rule (rounded to multiples of 32); the
/// RAD-RWKV6 one is the released form (ddlerp token shift, balanced keys, full-rank sigmoid gate, no RoPE) with
/// Rm = Rd = calc(0.5, 1.8), the trainer's ranks at release (spec §3, NOTES "convert").
/// Weights are drawn uniformly from ±0.05 (norm weights are 1), enough to keep every activation finite.
/// </summary>
public static class SyntheticModel
{
    /// <summary>Shape names: the Qwen2.5 sizes and a tiny one for tests.</summary>
    public static IReadOnlyList<string> Shapes { get; } = ["tiny", "0.5b", "1.5b", "7b", "32b"];

    /// <summary>The short shape name of <paramref name="shape"/>: "qwen2.5-7b" and "7b" are the same shape.</summary>
    public static string Normalize(string shape)
    {
        ArgumentNullException.ThrowIfNull(shape);
        string s = shape.Trim().ToLowerInvariant();
        s = s.StartsWith("qwen2.5-", StringComparison.Ordinal) ? s["qwen2.5-".Length..] : s;
        return Shapes.Contains(s) ? s
            : throw new RadladsException($"unknown model shape '{shape}' (known: tiny, {string.Join(", ", Shapes.Skip(1).Select(x => "qwen2.5-" + x))}; the qwen2.5- prefix may be left out)");
    }

    /// <summary>The configuration of shape <paramref name="shape"/> (see <see cref="Shapes"/>) for qwen2, rwkv6qwen2 or rwkv7qwen2.</summary>
    public static ModelConfig Config(string shape, Architecture architecture)
    {
        // C, H, KVH, N, L, F, V, tied (spec §1).
        (int c, int h, int kv, int n, int l, int f, int v, bool tied) = Normalize(shape) switch
        {
            "tiny" => (64, 2, 1, 32, 2, 128, 512, true),
            "0.5b" => (896, 14, 2, 64, 24, 4864, 151936, true),
            "1.5b" => (1536, 12, 2, 128, 28, 8960, 151936, true),
            "7b" => (3584, 28, 4, 128, 28, 18944, 152064, false),
            _ => (5120, 40, 8, 128, 64, 27648, 152064, false), // 32b
        };
        bool v6 = architecture == Architecture.Rwkv6Qwen2;
        return new ModelConfig
        {
            ModelType = architecture switch { Architecture.Qwen2 => "qwen2", Architecture.Rwkv6Qwen2 => "rwkv6qwen2", _ => "rwkv7qwen2" },
            Architecture = architecture,
            HiddenSize = c,
            IntermediateSize = f,
            NumAttentionHeads = h,
            NumKeyValueHeads = kv,
            NumHiddenLayers = l,
            VocabSize = v,
            HeadDim = n,
            RmsNormEps = 1e-6,
            RopeTheta = 1e6,
            TieWordEmbeddings = tied,
            UseRope = !v6,
            UseTokenShift = v6,
            BalanceState = true,
            GroupNormAttention = false,
            GateRankType = v6 ? 1 : 2,
        };
    }

    /// <summary>A LoRA rank by the reference rule: round(C^exponent · multiplier / 32) · 32, at least 32.</summary>
    public static int LoraRank(int hidden, double exponent, double multiplier) =>
        Math.Max(1, (int)Math.Round(Math.Pow(hidden, exponent) * multiplier / 32, MidpointRounding.ToEven)) * 32;

    /// <summary>Every tensor of a checkpoint of <paramref name="config"/>: name and shape (matrices 2-D, vectors 1-D).</summary>
    public static IReadOnlyList<(string Name, int[] Shape)> Tensors(ModelConfig config)
    {
        int c = config.HiddenSize, a = config.NumAttentionHeads * config.HeadDim, kv = config.NumKeyValueHeads * config.HeadDim;
        int f = config.IntermediateSize;
        var list = new List<(string, int[])> { ("model.embed_tokens.weight", [config.VocabSize, c]), ("model.norm.weight", [c]) };
        if (!config.TieWordEmbeddings)
        {
            list.Add(("lm_head.weight", [config.VocabSize, c]));
        }

        int rw = LoraRank(c, 0.5, 1.8), rv = LoraRank(c, 0.5, 1.3), rg = LoraRank(c, 0.8, 0.6);
        for (int l = 0; l < config.NumHiddenLayers; l++)
        {
            string p = $"model.layers.{l}.";
            list.Add((p + "input_layernorm.weight", [c]));
            list.Add((p + "post_attention_layernorm.weight", [c]));
            list.Add((p + "mlp.gate_proj.weight", [f, c]));
            list.Add((p + "mlp.up_proj.weight", [f, c]));
            list.Add((p + "mlp.down_proj.weight", [c, f]));
            string s = p + "self_attn.";
            list.Add((s + "q_proj.weight", [a, c]));
            list.Add((s + "q_proj.bias", [a]));
            list.Add((s + "k_proj.weight", [kv, c]));
            list.Add((s + "k_proj.bias", [kv]));
            list.Add((s + "v_proj.weight", [kv, c]));
            list.Add((s + "v_proj.bias", [kv]));
            list.Add((s + "o_proj.weight", [c, a]));
            if (config.Architecture == Architecture.Rwkv7Qwen2)
            {
                // Layer 0's v0/v1/v2 are in real checkpoints but unused (spec §4.1): kept for the same file, not read.
                foreach (var (name, rank) in new[] { ("w", rw), ("a", rw), ("v", rv) })
                {
                    list.Add((s + name + "0", [a]));
                    list.Add((s + name + "1", [c, rank]));
                    list.Add((s + name + "2", [rank, a]));
                }

                list.Add((s + "g1", [c, rg]));
                list.Add((s + "g2", [rg, a]));
            }
            else if (config.Architecture == Architecture.Rwkv6Qwen2)
            {
                // Spec §3.1 / §6.2: ddlerp token shift (5 packed LoRAs), decay LoRA, full-rank gate.
                list.Add((s + "gate.weight", [a, c]));
                foreach (var mix in new[] { "x", "r", "k", "v", "w", "g" })
                {
                    list.Add((s + "time_maa_" + mix, [c]));
                }

                list.Add((s + "time_maa_w1", [c, 5 * rw]));
                list.Add((s + "time_maa_w2", [5, rw, c]));
                list.Add((s + "time_decay", [a]));
                list.Add((s + "time_decay_w1", [c, rw]));
                list.Add((s + "time_decay_w2", [rw, a]));
            }
        }

        return list;
    }

    /// <summary>
    /// A model of <paramref name="config"/> on <paramref name="backend"/> with random bf16 weights (seeded).
    /// The host copy of the weights is one pool of random values that every tensor views at its own offset.
    /// </summary>
    public static CausalLM Create(ModelConfig config, IBackend backend, int seed = 1)
    {
        var tensors = Tensors(config);
        long largest = tensors.Max(t => Bytes(t.Shape));
        var pool = new HostPool(largest + 4096, Math.Max(config.HiddenSize, config.NumAttentionHeads * config.HeadDim), seed);
        try
        {
            var random = new Random(seed);
            var data = new List<TensorData>(tensors.Count);
            foreach (var (name, shape) in tensors)
            {
                long bytes = Bytes(shape);
                unsafe
                {
                    byte* pointer = name.EndsWith("norm.weight", StringComparison.Ordinal)
                        ? pool.Ones
                        : pool.Random + (random.NextInt64((pool.RandomBytes - bytes) / 16 + 1) * 16);
                    data.Add(new TensorData(name, DType.BF16, shape, pointer, bytes));
                }
            }

            var checkpoint = Checkpoint.FromMemory($"synthetic {config.ModelType} ({config.NumHiddenLayers} layers, hidden {config.HiddenSize})", data, pool);
            return CausalLM.Create(checkpoint.Directory, config, checkpoint, backend);
        }
        catch
        {
            pool.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Bytes a batch-1 decode step must move through device memory at least, as this runtime stores things:
    /// every weight it reads once (bf16 matrices, fp32 vectors; for an untied model one embedding row), and the
    /// per-sequence memory: RAD-RWKV7 state read and written (fp32), or the fp32 KV cache of
    /// <paramref name="context"/> tokens read plus one row written per layer.
    /// </summary>
    public static (long Weights, long State) DecodeBytes(ModelConfig config, int context)
    {
        long weights = 0;
        foreach (var (name, shape) in Tensors(config))
        {
            if (config.Architecture == Architecture.Rwkv7Qwen2 && name.StartsWith("model.layers.0.self_attn.v", StringComparison.Ordinal)
                && name.Length == "model.layers.0.self_attn.v0".Length)
            {
                continue;
            }

            if (name == "model.embed_tokens.weight" && !config.TieWordEmbeddings)
            {
                weights += 2L * config.HiddenSize;
                continue;
            }

            weights += shape.Length == 1 ? 4L * shape[0] : Bytes(shape);
        }

        long layers = config.NumHiddenLayers;
        long state = config.Architecture == Architecture.Qwen2
            ? layers * 2 * (context + 1L) * config.NumKeyValueHeads * config.HeadDim * sizeof(float)
            : layers * 2 * (((long)config.NumAttentionHeads * config.HeadDim * config.HeadDim) + (config.UseTokenShift ? config.HiddenSize : 0)) * sizeof(float);
        return (weights, state);
    }

    /// <summary>
    /// Floating-point operations of a prefill of <paramref name="tokens"/> tokens from a fresh state (the last
    /// token's logits only, as <c>Forward(state, ids)</c>), multiply and add counted as two:
    /// <c>Gemm</c> = 2·T·(elements of every layer matrix the forward multiplies by: q/k/v/o, gate/up/down, the RWKV7
    /// LoRA factors except layer 0's unused v1/v2) + 2·C·V for the head's one row; <c>Sequence</c> = the token mixing
    /// outside the GEMMs: causal softmax attention 2·H·N·T(T+1) per layer (QKᵀ and PV over the T(T+1)/2 visible
    /// pairs), or the wkv7 scan 9·H·N²·T per layer (S·a, the decay, the a·bᵀ and v·kᵀ updates, S·r). Norms,
    /// elementwise ops, RoPE and softmax's exponentials are not counted (O(T·C), below 1 % at these shapes).
    /// </summary>
    public static (double Gemm, double Sequence) PrefillFlops(ModelConfig config, int tokens)
    {
        double matrixElements = 0;
        foreach (var (name, shape) in Tensors(config))
        {
            if (shape.Length != 2 || !name.StartsWith("model.layers.", StringComparison.Ordinal))
            {
                continue;
            }

            if (config.Architecture == Architecture.Rwkv7Qwen2 && name is "model.layers.0.self_attn.v1" or "model.layers.0.self_attn.v2")
            {
                continue;
            }

            matrixElements += (double)shape[0] * shape[1];
        }

        double t = tokens, h = config.NumAttentionHeads, n = config.HeadDim, layers = config.NumHiddenLayers;
        double gemm = (2 * t * matrixElements) + (2.0 * config.HiddenSize * config.VocabSize);
        double sequence = config.Architecture == Architecture.Qwen2
            ? layers * 2 * h * n * t * (t + 1)
            : layers * 9 * h * n * n * t;
        return (gemm, sequence);
    }

    /// <summary>
    /// Device bytes the weights of <paramref name="config"/> take once loaded: every tensor as stored (bf16), as
    /// <see cref="IBackend.LoadWeight"/> copies it (vectors are read as fp32) (RAD-RWKV7 layer 0's unused v0/v1/v2 are not loaded).
    /// </summary>
    public static long WeightBytes(ModelConfig config) => Tensors(config)
        .Where(t => !(config.Architecture == Architecture.Rwkv7Qwen2 && t.Name.StartsWith("model.layers.0.self_attn.v", StringComparison.Ordinal)
            && t.Name.Length == "model.layers.0.self_attn.v0".Length))
        .Sum(t => t.Shape.Length == 1 ? 4L * t.Shape[0] : Bytes(t.Shape)); // vectors are held as fp32

    /// <summary>
    /// Device bytes one sequence's state holds at <paramref name="context"/> tokens, as this runtime stores it:
    /// the fp32 recurrent state (and token-shift vectors) of a RAD-RWKV model, or the fp32 KV cache of a Qwen2,
    /// whose capacity grows by doubling (<see cref="LayerState"/>), so up to twice the rows in use.
    /// </summary>
    public static long StateBytes(ModelConfig config, int context)
    {
        ArgumentNullException.ThrowIfNull(config);
        long layers = config.NumHiddenLayers;
        if (config.Architecture != Architecture.Qwen2)
        {
            return DecodeBytes(config, context).State / 2;
        }

        return layers * 2L * context * config.NumKeyValueHeads * config.HeadDim * sizeof(float);
    }

    private static long Bytes(int[] shape) => shape.Aggregate(2L, (p, d) => p * d);

    /// <summary>Native memory holding random bf16 values and a run of bf16 ones.</summary>
    private sealed unsafe class HostPool : IDisposable
    {
        private byte* memory;

        public HostPool(long randomBytes, int ones, int seed)
        {
            RandomBytes = (randomBytes + 15) / 16 * 16;
            long total = RandomBytes + (2L * ones);
            memory = (byte*)NativeMemory.AlignedAlloc((nuint)total, 64);
            var values = (ushort*)memory;
            long count = RandomBytes / 2;
            const long chunk = 1 << 20;
            Parallel.For(0, (count + chunk - 1) / chunk, block =>
            {
                // SplitMix64 per block: fast, seeded, independent of the thread schedule.
                ulong s = (ulong)seed * 0x9E3779B97F4A7C15UL + (ulong)block;
                long end = Math.Min(count, (block + 1) * chunk);
                for (long i = block * chunk; i < end; i++)
                {
                    s += 0x9E3779B97F4A7C15UL;
                    ulong z = s;
                    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
                    z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
                    z ^= z >> 31;
                    float u = ((float)(z >> 40) * (1f / (1 << 24)) * 2f) - 1f;
                    values[i] = Bf16.FromSingle(u * 0.05f);
                }
            });
            var one = Bf16.FromSingle(1f);
            new Span<ushort>(memory + RandomBytes, ones).Fill(one);
        }

        public long RandomBytes { get; }

        public byte* Random => memory;

        public byte* Ones => memory + RandomBytes;

        public void Dispose()
        {
            if (memory != null)
            {
                NativeMemory.AlignedFree(memory);
                memory = null;
            }
        }
    }
}
