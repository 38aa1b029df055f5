using System.Text.Json;

namespace Radlads.Models;

/// <summary>
/// The fields of a Hugging Face <c>config.json</c> that the three architectures use (spec §6.3).
/// LoRA ranks are not here: they are read from tensor shapes because configs disagree with the weights.
/// </summary>
public sealed record ModelConfig
{
    public required string ModelType { get; init; }

    public required Architecture Architecture { get; init; }

    public required int HiddenSize { get; init; }

    public required int IntermediateSize { get; init; }

    public required int NumAttentionHeads { get; init; }

    public required int NumKeyValueHeads { get; init; }

    public required int NumHiddenLayers { get; init; }

    public required int VocabSize { get; init; }

    public required int HeadDim { get; init; }

    public double RmsNormEps { get; init; } = 1e-6;

    public double RopeTheta { get; init; } = 10000;

    public bool TieWordEmbeddings { get; init; }

    public int? MaxPositionEmbeddings { get; init; }

    public int? BosTokenId { get; init; }

    public IReadOnlyList<int> EosTokenIds { get; init; } = [];

    public string? TorchDtype { get; init; }

    // RAD-RWKV flags with the HF defaults of [HF6] / [HF7] (spec §6.3).

    /// <summary>RoPE on r and k: default false for both RWKV types; qwen2 always uses RoPE.</summary>
    public bool UseRope { get; init; }

    /// <summary>RAD-RWKV6 ddlerp token shift (default true); RAD-RWKV7 has none.</summary>
    public bool UseTokenShift { get; init; } = true;

    /// <summary>k·(1−w) (v6) / k·(1−w+a) with κ = k/‖k‖ (v7). Default true; authoritative for the v7 variant.</summary>
    public bool BalanceState { get; init; } = true;

    /// <summary>GroupNorm `ln_x` after the recurrence (also implied by the presence of ln_x tensors).</summary>
    public bool GroupNormAttention { get; init; }

    /// <summary>Gate type from config (1 full rank, 2 low rank, 0 none); the loader trusts the tensors present.</summary>
    public int? GateRankType { get; init; }

    /// <summary>Trailing layers that keep softmax attention (hybrid models).</summary>
    public int NumAttentionLayers { get; init; }

    /// <summary>Reads and checks <c>config.json</c> in <paramref name="directory"/>.</summary>
    public static ModelConfig Load(string directory)
    {
        var path = Path.Combine(directory, "config.json");
        if (!File.Exists(path))
        {
            throw new RadladsException($"{path}: not found; a model folder needs config.json next to its safetensors files");
        }

        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(File.ReadAllText(path));
        }
        catch (JsonException e)
        {
            throw new RadladsException($"{path}: not valid JSON ({e.Message})");
        }

        using (doc)
        {
            return Parse(doc.RootElement, path);
        }
    }

    internal static ModelConfig Parse(JsonElement root, string path)
    {
        if (root.ValueKind != JsonValueKind.Object)
        {
            throw new RadladsException($"{path}: expected a JSON object");
        }

        var reader = new ConfigReader(root, path);
        string modelType = reader.RequiredString("model_type");
        var architecture = modelType switch
        {
            "qwen2" => Architecture.Qwen2,
            "rwkv6qwen2" => Architecture.Rwkv6Qwen2,
            "rwkv7qwen2" => Architecture.Rwkv7Qwen2,
            _ => throw new RadladsException(
                $"{path}: model_type '{modelType}' is not supported (supported: qwen2, rwkv6qwen2, rwkv7qwen2)"),
        };

        int hidden = reader.PositiveInt("hidden_size");
        int heads = reader.PositiveInt("num_attention_heads");
        int kvHeads = reader.OptionalPositiveInt("num_key_value_heads") ?? heads;
        int headDim = reader.OptionalPositiveInt("head_dim") ?? (hidden % heads == 0 ? hidden / heads
            : throw new RadladsException($"{path}: hidden_size {hidden} is not a multiple of num_attention_heads {heads}; set head_dim"));
        if (heads % kvHeads != 0)
        {
            throw new RadladsException($"{path}: num_attention_heads {heads} is not a multiple of num_key_value_heads {kvHeads}");
        }

        if (headDim % 2 != 0)
        {
            throw new RadladsException($"{path}: head dim {headDim} must be even for RoPE");
        }

        int layers = reader.PositiveInt("num_hidden_layers");
        int attentionLayers = reader.OptionalInt("num_attention_layers") ?? 0;
        if (attentionLayers < 0 || attentionLayers > layers)
        {
            throw new RadladsException($"{path}: num_attention_layers {attentionLayers} must be in [0, {layers}]");
        }

        return new ModelConfig
        {
            ModelType = modelType,
            Architecture = architecture,
            HiddenSize = hidden,
            IntermediateSize = reader.PositiveInt("intermediate_size"),
            NumAttentionHeads = heads,
            NumKeyValueHeads = kvHeads,
            NumHiddenLayers = layers,
            VocabSize = reader.PositiveInt("vocab_size"),
            HeadDim = headDim,
            RmsNormEps = reader.OptionalPositiveDouble("rms_norm_eps") ?? 1e-6,
            RopeTheta = reader.OptionalPositiveDouble("rope_theta") ?? 10000,
            TieWordEmbeddings = reader.OptionalBool("tie_word_embeddings") ?? false,
            MaxPositionEmbeddings = reader.OptionalPositiveInt("max_position_embeddings"),
            BosTokenId = reader.OptionalInt("bos_token_id"),
            EosTokenIds = reader.IntOrIntList("eos_token_id"),
            TorchDtype = reader.OptionalString("torch_dtype"),
            UseRope = architecture == Architecture.Qwen2 || (reader.OptionalBool("use_rope") ?? false),
            UseTokenShift = architecture == Architecture.Rwkv6Qwen2 && (reader.OptionalBool("use_tokenshift") ?? true),
            BalanceState = reader.OptionalBool("balance_state") ?? true,
            GroupNormAttention = reader.OptionalBool("groupnorm_att") ?? false,
            GateRankType = reader.OptionalInt("gate_rank_type"),
            NumAttentionLayers = attentionLayers,
        };
    }
}
