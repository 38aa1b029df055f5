using System.CommandLine;
using System.Globalization;
using Radlads.Cpu;
using Radlads.Models;

namespace Radlads.Cli.Commands;

/// <summary>`radlads info`: what a checkpoint is and what it costs to run.</summary>
internal static class InfoCommand
{
    public static Command Create(CliContext io)
    {
        var model = CommonOptions.Model();
        var command = new Command("info", "Describe a model: architecture, variant, parameters, dtype, and recurrent-state bytes per sequence vs KV-cache bytes per token.")
        {
            model,
        };
        command.SetAction(parse =>
        {
            // Weights are memory-mapped, so loading on the CPU backend reads headers, not gigabytes.
            using var lm = CausalLM.Load(parse.GetValue(model)!, new CpuBackend());
            Write(io.Output, lm);
            return 0;
        });
        return command;
    }

    internal static void Write(TextWriter o, CausalLM lm)
    {
        var c = lm.Config;
        var inv = CultureInfo.InvariantCulture;
        string name = c.Architecture switch
        {
            Architecture.Qwen2 => "Qwen2 (softmax attention, KV cache)",
            Architecture.Rwkv6Qwen2 => "RAD-RWKV6 (linear-attention RNN)",
            _ => "RAD-RWKV7 (linear-attention RNN)",
        };
        o.WriteLine($"model:          {Path.GetFullPath(lm.Directory)}");
        o.WriteLine($"architecture:   {c.ModelType}: {name}");
        o.WriteLine(string.Create(inv, $"shape:          {c.NumHiddenLayers} layers, hidden {c.HiddenSize}, {c.NumAttentionHeads} heads × {c.HeadDim} (KV heads {c.NumKeyValueHeads}), MLP {c.IntermediateSize}, vocab {c.VocabSize}"));
        o.WriteLine(string.Create(inv, $"parameters:     {lm.ParameterCount:N0} ({lm.WeightDType} weights{(lm.TiedEmbeddings ? ", tied embeddings" : "")})"));
        o.WriteLine(string.Create(inv, $"norm / rope:    rms_norm_eps {c.RmsNormEps:G}, rope {(c.UseRope ? $"on (θ = {c.RopeTheta:G})" : "off")}"));
        var groups = lm.LayerSummaries.Select((s, i) => (s, i)).GroupBy(p => p.s);
        foreach (var g in groups)
        {
            var layers = g.Select(p => p.i).ToArray();
            string range = layers.Length == 1 ? $"layer {layers[0]}" : $"layers {Ranges(layers)}";
            o.WriteLine($"mixer:          {range}: {g.Key}");
        }

        var (stateBytes, cacheBytes) = lm.MemoryCost;
        // What the teacher's KV cache would cost for the same shape: K and V of every layer, fp32 as we store them.
        long teacherCache = 2L * c.NumHiddenLayers * c.NumKeyValueHeads * c.HeadDim * sizeof(float);
        if (stateBytes > 0)
        {
            o.WriteLine(string.Create(inv, $"state:          {stateBytes:N0} bytes per sequence (fp32), constant at any context length"));
        }

        if (cacheBytes > 0)
        {
            o.WriteLine(string.Create(inv, $"kv cache:       {cacheBytes:N0} bytes per token (fp32; {cacheBytes / 2:N0} in bf16)"));
        }

        if (c.Architecture != Architecture.Qwen2)
        {
            o.WriteLine(string.Create(inv,
                $"vs attention:   a Qwen2 of this shape caches {teacherCache:N0} bytes per token; the state equals its cache at {(double)stateBytes / teacherCache:F0} tokens"));
        }

        if (lm.UnusedTensors.Count > 0)
        {
            o.WriteLine($"unused tensors: {lm.UnusedTensors.Count} ({string.Join(", ", lm.UnusedTensors.Take(6))}{(lm.UnusedTensors.Count > 6 ? ", …" : "")})");
        }

        o.WriteLine($"cuda gemms:     {Radlads.Cuda.CudaBackend.ProbeGemmLibrary()}");
        o.WriteLine($"tokenizer:      {(File.Exists(Path.Combine(lm.Directory, "tokenizer.json")) ? "tokenizer.json" : "none (score --tokens and info still work)")}");
    }

    private static string Ranges(int[] layers)
    {
        var parts = new List<string>();
        int start = layers[0];
        for (int i = 1; i <= layers.Length; i++)
        {
            if (i == layers.Length || layers[i] != layers[i - 1] + 1)
            {
                int end = layers[i - 1];
                parts.Add(start == end ? $"{start}" : $"{start}-{end}");
                if (i < layers.Length)
                {
                    start = layers[i];
                }
            }
        }

        return string.Join(", ", parts);
    }
}
