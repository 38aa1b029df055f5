using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using Radlads.Checkpoints;

namespace Radlads.Conversion;

/// <summary>
/// The student's <c>config.json</c> (spec §6.3): every field of the teacher's Qwen2 config, kept in place, with
/// the RAD-RWKV fields set or added.
/// </summary>
public static class StudentConfig
{
    /// <summary>The config text (2-space indented JSON, as Hugging Face writes it, with a final newline).</summary>
    public static string Build(string teacherConfigJson, string teacherConfigPath, ConversionPlan plan, DType dtype)
    {
        ArgumentNullException.ThrowIfNull(plan);
        JsonObject config;
        try
        {
            config = JsonNode.Parse(teacherConfigJson) as JsonObject
                ?? throw new RadladsException($"{teacherConfigPath}: expected a JSON object");
        }
        catch (JsonException e)
        {
            throw new RadladsException($"{teacherConfigPath}: not valid JSON ({e.Message})");
        }

        bool v6 = plan.Architecture == StudentArchitecture.RadRwkv6;
        string family = v6 ? "rwkv6qwen2" : "rwkv7qwen2";
        string classes = v6 ? "RWKV6Qwen2" : "RWKV7Qwen2";
        var ranks = plan.Ranks;
        config["architectures"] = new JsonArray($"{classes}ForCausalLM");
        config["model_type"] = family;
        // The trust_remote_code classes of the released checkpoints; their .py files are not ours to ship (docs/NOTES.md).
        config["auto_map"] = new JsonObject
        {
            ["AutoConfig"] = $"configuration_{family}.{classes}Config",
            ["AutoModelForCausalLM"] = $"modeling_{family}.{classes}ForCausalLM",
        };
        config["tie_word_embeddings"] = false;
        config["attention_bias"] = true;
        config["attention_output_bias"] = false;
        config["use_rope"] = !v6;
        config["use_tokenshift"] = v6;
        config["gate_rank_type"] = v6 ? 1 : 2;
        config["balance_state"] = plan.Variant == StudentVariant.Balanced;
        config["groupnorm_att"] = plan.Variant == StudentVariant.GroupNorm;
        if (v6)
        {
            config["lora_rank_tokenshift"] = ranks.TokenShift;
            config["lora_rank_decay"] = ranks.Decay;
        }
        else
        {
            config["num_attention_layers"] = 0;
            config["lora_rank_decay"] = ranks.Decay;
            config["lora_rank_iclr"] = ranks.Iclr;
            config["lora_rank_value_residual_mix"] = ranks.ValueResidualMix;
            config["lora_rank_gate"] = ranks.Gate;
        }

        string torchDtype = dtype switch
        {
            DType.BF16 => "bfloat16",
            DType.F32 => "float32",
            DType.F16 => "float16",
            _ => throw new ArgumentOutOfRangeException(nameof(dtype)),
        };
        config["torch_dtype"] = torchDtype;
        if (config.ContainsKey("dtype"))
        {
            config["dtype"] = torchDtype; // transformers ≥ 5 writes this name
        }

        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true, IndentSize = 2, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            config.WriteTo(writer);
        }

        return Encoding.UTF8.GetString(buffer.ToArray()) + "\n";
    }
}
