namespace Radlads.Models;

/// <summary>The model families the runtime loads, named by their <c>model_type</c>.</summary>
public enum Architecture
{
    /// <summary><c>qwen2</c>: the teacher, softmax attention with a KV cache.</summary>
    Qwen2,

    /// <summary><c>rwkv6qwen2</c>: RAD-RWKV6.</summary>
    Rwkv6Qwen2,

    /// <summary><c>rwkv7qwen2</c>: RAD-RWKV7.</summary>
    Rwkv7Qwen2,
}
