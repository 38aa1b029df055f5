namespace Radlads.Ops;

/// <summary>
/// A backend that can record the ops of one decode step once and replay the recording for later tokens (CUDA
/// graphs), so that a step costs one launch instead of hundreds. What changes from token to token are the token
/// ids and the position: while recording, <see cref="IOps.Embedding"/> must be called with the ids given to
/// <see cref="Capture"/> and positions given to <see cref="IOps.Rope"/> count from the given position; a replay
/// reads the new ids and position. Everything else (weights, state, scratch) is bound to the memory the recorded
/// ops used, so a recording belongs to one sequence state and the tensors it was recorded with.
/// </summary>
public interface IStepCapture
{
    /// <summary>False when recording is switched off (for comparison, or by RADLADS_CUDA_GRAPHS=0 / RADLADS_ILGPU_GRAPHS=0).</summary>
    bool CaptureEnabled { get; }

    /// <summary>
    /// Whether a recorded step may hold softmax attention over a KV cache (<see cref="IOps.AppendKv"/> and
    /// <see cref="IOps.Attention"/> at T = 1 reading the replay's position). A recording then covers the positions that
    /// fit the caches it was recorded with (<see cref="ICapturedStep.CanReplayAt"/>); the caller reserves ahead.
    /// </summary>
    bool RecordsAttention => false;

    /// <summary>
    /// Records the ops <paramref name="body"/> queues, without running them. Scratch memory the body allocates
    /// and frees stays reserved for the recording until it is disposed. With <paramref name="sampleLogits"/> [1, V],
    /// the recording ends with <see cref="IOps.Sample"/> of that row over the first <paramref name="allowedVocabulary"/>
    /// ids, its parameters read from the step buffer like the ids (see <see cref="ICapturedStep.ReplaySample"/>).
    /// </summary>
    ICapturedStep Capture(ReadOnlySpan<int> ids, int position, Action body, Tensor? sampleLogits = null, int allowedVocabulary = 0);
}

/// <summary>A recorded step (see <see cref="IStepCapture"/>).</summary>
public interface ICapturedStep : IDisposable
{
    /// <summary>Queues the recorded ops with these token ids (as many as recorded) at this position (a recorded sample is skipped).</summary>
    void Replay(ReadOnlySpan<int> ids, int position);

    /// <summary>
    /// Runs the recorded ops, including the recorded <see cref="IOps.Sample"/> with <paramref name="row"/>, and returns
    /// the id it picked (the only value that comes back to the host). Throws as <see cref="IOps.Sample"/> does for
    /// non-finite logits, and <see cref="InvalidOperationException"/> when the step was recorded without a sample.
    /// </summary>
    int ReplaySample(ReadOnlySpan<int> ids, int position, SampleRow row);

    /// <summary>
    /// Whether a replay at <paramref name="position"/> computes what the recorded ops would there. False where the
    /// recording baked in something that only covers positions up to a limit (the ILGPU backend's RoPE table, the rows
    /// of a KV cache): the caller then records the step again at that position.
    /// </summary>
    bool CanReplayAt(int position) => true;
}
