using Radlads.Ops;

namespace Radlads.Models;

/// <summary>
/// A decode step of one sequence recorded by an <see cref="IStepCapture"/> backend, with the tensors it reads and
/// writes outside its own scratch: the residual stream, its normalised copy, the branch output and the logits.
/// The recording ends with a Sample of the logits over <see cref="AllowedVocabulary"/> ids (skipped when a replay
/// wants the logits). Owned by the <see cref="SequenceState"/> it was recorded for.
/// </summary>
internal sealed class CapturedDecode : IDisposable
{
    private readonly (KvCacheState Cache, Tensor Keys, Tensor Values)[] caches;
    private readonly int lastPosition;

    // caches: the state's KV caches, reserved for the recording's position. The recording writes and reads these
    // tensors, so it serves positions below the smallest capacity, and only while no cache was reallocated.
    public CapturedDecode(IBackend backend, int hidden, int vocab, int allowedVocabulary, IReadOnlyList<KvCacheState> caches)
    {
        AllowedVocabulary = allowedVocabulary;
        this.caches = caches.Select(c => (c, c.Keys, c.Values)).ToArray();
        lastPosition = caches.Count == 0 ? int.MaxValue : caches.Min(c => c.Capacity) - 1;
        Hidden = backend.AllocateUninitialized(1, hidden);
        Normed = backend.AllocateUninitialized(1, hidden);
        Branch = backend.AllocateUninitialized(1, hidden);
        Selected = backend.AllocateUninitialized(1, hidden);
        Logits = backend.AllocateUninitialized(1, vocab);
    }

    public Tensor Hidden { get; }

    public Tensor Normed { get; }

    public Tensor Branch { get; }

    public Tensor Selected { get; }

    public Tensor Logits { get; }

    /// <summary>The vocabulary size the recorded Sample draws from.</summary>
    public int AllowedVocabulary { get; }

    public ICapturedStep? Recording { get; set; }

    /// <summary>Whether the recorded KV cache rows still hold <paramref name="state"/>'s next token (see the constructor).</summary>
    public bool Covers(SequenceState state) =>
        state.Position <= lastPosition && caches.All(c => ReferenceEquals(c.Cache.Keys, c.Keys) && ReferenceEquals(c.Cache.Values, c.Values));

    public void Dispose()
    {
        Recording?.Dispose();
        Hidden.Dispose();
        Normed.Dispose();
        Branch.Dispose();
        Selected.Dispose();
        Logits.Dispose();
    }
}
