using Radlads.Ops;

namespace Radlads.Models;

/// <summary>
/// A layer's sequence mixer: softmax attention (qwen2), RAD-RWKV6 or RAD-RWKV7 time mix.
/// Per-token work runs on all rows of the batch at once; recurrences and attention run per segment.
/// </summary>
internal interface IMixer : IDisposable
{
    /// <summary>Fresh per-sequence memory for this layer (zero state, empty cache).</summary>
    LayerState CreateState();

    /// <summary>Bytes of per-sequence state (RNN) and per-token cache (attention), fp32 as this runtime keeps them.</summary>
    (long StateBytes, long CacheBytesPerToken) MemoryCost { get; }

    /// <summary>
    /// Whether Forward's first read of x is <see cref="Projections.Project"/> of x for q, k and v alike, which runs the
    /// pending input norm (<see cref="ForwardPass.BeginNorm"/>) with the projections; otherwise the model runs it first.
    /// </summary>
    bool TakesPendingNorm { get; }

    /// <summary>The output projection o_proj [C, A], read after the token mixing (a decode step prefetches it: <see cref="ForwardPass.Ahead"/>).</summary>
    Tensor OutputWeight { get; }

    /// <summary>
    /// Whether the token mixing between the projections and o_proj reads little memory (a recurrence over its small
    /// state), so a decode step may have the backend prefetch the weights after it meanwhile (<see cref="ForwardPass.Ahead"/>).
    /// Attention reads the KV cache there, and a prefetch only competes with it.
    /// </summary>
    bool LeavesBandwidthIdle { get; }

    /// <summary>x: input_layernorm output [T, C]; y: mixer output after o_proj [T, C].</summary>
    void Forward(ForwardPass pass, Tensor x, Tensor y);
}
