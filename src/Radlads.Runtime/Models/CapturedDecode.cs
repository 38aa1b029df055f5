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
    public CapturedDecode(IBackend backend, int hidden, int vocab, int allowedVocabulary)
    {
        AllowedVocabulary = allowedVocabulary;
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
