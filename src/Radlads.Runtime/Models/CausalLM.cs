using Radlads.Checkpoints;
using Radlads.Ops;

namespace Radlads.Models;

/// <summary>
/// A loaded decoder (qwen2, rwkv6qwen2 or rwkv7qwen2) on one backend. The body is shared (spec §2):
/// h = Embed[token]; per layer h += Mixer(RMSNorm(h)); h += MLP(RMSNorm(h)); logits = RMSNorm(h)·LMHeadᵀ.
/// Only the mixer differs. Per-sequence memory lives in <see cref="SequenceState"/>.
/// </summary>
public sealed class CausalLM : IDisposable
{
    private readonly Checkpoint checkpoint;
    private readonly Tensor embedding;
    private readonly Tensor head;
    private readonly Tensor finalNorm;
    private readonly Tensor[] inputNorms;
    private readonly Tensor[] postNorms;
    private readonly IMixer[] mixers;
    private readonly Mlp[] mlps;

    private CausalLM(string directory, ModelConfig config, Checkpoint checkpoint, IBackend backend)
    {
        Directory = directory;
        Config = config;
        this.checkpoint = checkpoint;
        Backend = backend;
        var w = new WeightLoader(checkpoint, backend);
        int c = config.HiddenSize;
        int layers = config.NumHiddenLayers;
        embedding = w.Matrix("model.embed_tokens.weight", config.VocabSize, c);
        TiedEmbeddings = config.TieWordEmbeddings || !w.Has("lm_head.weight");
        head = TiedEmbeddings ? embedding : w.Matrix("lm_head.weight", config.VocabSize, c);
        finalNorm = w.Vector("model.norm.weight", c);
        inputNorms = new Tensor[layers];
        postNorms = new Tensor[layers];
        mixers = new IMixer[layers];
        mlps = new Mlp[layers];
        for (int l = 0; l < layers; l++)
        {
            string prefix = $"model.layers.{l}.";
            inputNorms[l] = w.Vector(prefix + "input_layernorm.weight", c);
            postNorms[l] = w.Vector(prefix + "post_attention_layernorm.weight", c);
            mixers[l] = CreateMixer(w, prefix + "self_attn.", l);
            mlps[l] = new Mlp(w, prefix + "mlp.", config);
        }

        ParameterCount = w.ParameterCount;
        UnusedTensors = checkpoint.Names.Where(n => !w.Used.Contains(n)).OrderBy(n => n, StringComparer.Ordinal).ToArray();
        WeightDType = checkpoint.Get("model.embed_tokens.weight").DType;
    }

    public string Directory { get; }

    public ModelConfig Config { get; }

    public IBackend Backend { get; }

    public long ParameterCount { get; }

    /// <summary>True when logits use the embedding matrix (no lm_head.weight, or tie_word_embeddings).</summary>
    public bool TiedEmbeddings { get; }

    public DType WeightDType { get; }

    /// <summary>Tensors in the checkpoint that the forward pass does not read (e.g. r_k, layer-0 v0/v1/v2).</summary>
    public IReadOnlyList<string> UnusedTensors { get; }

    /// <summary>Identifies the shapes a saved state must match.</summary>
    public string Fingerprint =>
        $"{Config.ModelType} L{Config.NumHiddenLayers} C{Config.HiddenSize} H{Config.NumAttentionHeads} KV{Config.NumKeyValueHeads} N{Config.HeadDim} V{Config.VocabSize}";

    /// <summary>Loads config.json and the safetensors weights of <paramref name="directory"/>.</summary>
    public static CausalLM Load(string directory, IBackend backend)
    {
        if (!System.IO.Directory.Exists(directory))
        {
            throw new RadladsException($"model folder '{directory}' does not exist");
        }

        var config = ModelConfig.Load(directory);
        var checkpoint = Checkpoint.Open(directory);
        try
        {
            return new CausalLM(directory, config, checkpoint, backend);
        }
        catch
        {
            checkpoint.Dispose();
            throw;
        }
    }

    /// <summary>
    /// A model from a configuration and a checkpoint already open (e.g. <see cref="Checkpoint.FromMemory"/>); the
    /// model owns the checkpoint from here on and disposes it. <paramref name="directory"/> names it in messages.
    /// </summary>
    public static CausalLM Create(string directory, ModelConfig config, Checkpoint checkpoint, IBackend backend)
    {
        try
        {
            return new CausalLM(directory, config, checkpoint, backend);
        }
        catch
        {
            checkpoint.Dispose();
            throw;
        }
    }

    /// <summary>Describes each layer's mixer for `radlads info`.</summary>
    public IReadOnlyList<string> LayerSummaries => mixers.Select(Describe).ToArray();

    /// <summary>Recurrent state bytes per sequence and KV-cache bytes per token, as this runtime stores them (fp32).</summary>
    public (long StateBytes, long CacheBytesPerToken) MemoryCost =>
        (mixers.Sum(m => m.MemoryCost.StateBytes), mixers.Sum(m => m.MemoryCost.CacheBytesPerToken));

    public SequenceState CreateState() => new(this, mixers.Select(m => m.CreateState()).ToArray());

    /// <summary>
    /// Feeds <paramref name="tokens"/> to one sequence and advances its state. Returns logits [T, V] when
    /// <paramref name="allLogits"/>, else the last position's [V].
    /// </summary>
    public float[] Forward(SequenceState state, ReadOnlySpan<int> tokens, bool allLogits = false) =>
        Forward([state], [tokens.ToArray()], allLogits)[0];

    /// <summary>
    /// Feeds several independent sequences at once (each with its own state and any number of tokens).
    /// Per-token work (projections, MLP) runs on all rows together; recurrences and attention per sequence.
    /// </summary>
    public float[][] Forward(IReadOnlyList<SequenceState> states, IReadOnlyList<int[]> tokens, bool allLogits = false)
    {
        var (segments, rows) = Segments(states, tokens);
        if (states.Count == 1 && rows == 1 && !allLogits && StepCapture is { } capture)
        {
            return [DecodeCaptured(states[0], tokens[0][0], capture)];
        }

        int c = Config.HiddenSize;
        var allTokens = tokens.SelectMany(t => t).ToArray();
        using (var h = Backend.AllocateUninitialized(rows, c))
        {
            using var normed = Backend.AllocateUninitialized(rows, c);
            using var branch = Backend.AllocateUninitialized(rows, c);
            using var headNormed = HeadReadsEveryRow(segments, rows) ? Backend.AllocateUninitialized(rows, c) : null;
            Body(segments, allTokens, h, normed, branch, headNormed);
            foreach (var s in segments)
            {
                s.State.Position += s.RowCount;
            }

            return Logits(h, segments, allLogits, headNormed);
        }
    }

    /// <summary>
    /// Feeds <paramref name="tokens"/> to one sequence, advances its state and picks the next token with
    /// <see cref="IOps.Sample"/> where the logits are: on a GPU backend only the id crosses the bus. The same token as
    /// <see cref="Generation.Sampler.Sample"/> on the downloaded logits (without repetition penalty) for the same row.
    /// </summary>
    public int ForwardSample(SequenceState state, ReadOnlySpan<int> tokens, SampleRow row, int allowedVocabulary)
    {
        var list = new[] { tokens.ToArray() };
        var (segments, rows) = Segments([state], list);
        Span<int> id = stackalloc int[1];
        if (rows == 1 && StepCapture is { } capture)
        {
            // The recorded step ends with the Sample: one graph launch per token, and 4 bytes back.
            var step = Recorded(state, tokens[0], capture, allowedVocabulary);
            int token = step.Recording!.ReplaySample([tokens[0]], state.Position, row);
            state.Position += 1;
            return token;
        }

        int c = Config.HiddenSize;
        using (var h = Backend.AllocateUninitialized(rows, c))
        {
            using var selected = Backend.AllocateUninitialized(1, c);
            bool headNormed = HeadReadsEveryRow(segments, rows);
            using (var normed = Backend.AllocateUninitialized(rows, c))
            using (var branch = Backend.AllocateUninitialized(rows, c))
            {
                Body(segments, list[0], h, normed, branch, headNormed ? selected : null);
            }

            state.Position += rows;
            using var logits = Backend.AllocateUninitialized(1, Config.VocabSize);
            HeadLogits(h, segments, allLogits: false, selected, logits, headNormed);
            Backend.Ops.Sample(logits, allowedVocabulary, [row], id);
            return id[0];
        }
    }

    /// <summary>
    /// Feeds several independent sequences at once (as <see cref="Forward(IReadOnlyList{SequenceState}, IReadOnlyList{int[]}, bool)"/>)
    /// and picks each sequence's next token from its last position with <see cref="IOps.Sample"/> and its own row, where
    /// the logits are: on a GPU backend only the ids cross the bus (a batch of 32 at V = 152k would otherwise copy and check
    /// 19 MB per step). One sequence takes <see cref="ForwardSample(SequenceState, ReadOnlySpan{int}, SampleRow, int)"/>.
    /// </summary>
    public int[] ForwardSample(IReadOnlyList<SequenceState> states, IReadOnlyList<int[]> tokens, ReadOnlySpan<SampleRow> rows, int allowedVocabulary)
    {
        ArgumentNullException.ThrowIfNull(states);
        ArgumentNullException.ThrowIfNull(tokens);
        if (rows.Length != states.Count)
        {
            throw new ArgumentException($"ForwardSample: {rows.Length} sample rows for {states.Count} sequences");
        }

        if (states.Count == 1)
        {
            return [ForwardSample(states[0], tokens.Count == 1 ? tokens[0] : throw new ArgumentException("one token list per state"), rows[0], allowedVocabulary)];
        }

        var (segments, count) = Segments(states, tokens);
        int c = Config.HiddenSize;
        var ids = new int[segments.Count];
        using (var h = Backend.AllocateUninitialized(count, c))
        {
            using var selected = Backend.AllocateUninitialized(segments.Count, c);
            bool headNormed = HeadReadsEveryRow(segments, count);
            using (var normed = Backend.AllocateUninitialized(count, c))
            using (var branch = Backend.AllocateUninitialized(count, c))
            {
                Body(segments, [.. tokens.SelectMany(t => t)], h, normed, branch, headNormed ? selected : null);
            }

            foreach (var s in segments)
            {
                s.State.Position += s.RowCount;
            }

            using var logits = Backend.AllocateUninitialized(segments.Count, Config.VocabSize);
            HeadLogits(h, segments, allLogits: false, selected, logits, headNormed);
            Backend.Ops.Sample(logits, allowedVocabulary, rows, ids);
        }

        return ids;
    }

    /// <summary>Checks a batch and lays its sequences out as row segments.</summary>
    private (List<Segment> Segments, int Rows) Segments(IReadOnlyList<SequenceState> states, IReadOnlyList<int[]> tokens)
    {
        if (states.Count != tokens.Count || states.Count == 0)
        {
            throw new ArgumentException("one token list per state, at least one state");
        }

        var segments = new List<Segment>(states.Count);
        int rows = 0;
        for (int i = 0; i < states.Count; i++)
        {
            if (tokens[i].Length == 0)
            {
                throw new RadladsException("cannot run the model on an empty token list");
            }

            if (!ReferenceEquals(states[i].Model, this))
            {
                throw new ArgumentException("a state belongs to another model");
            }

            if (states.Take(i).Any(s => ReferenceEquals(s, states[i])))
            {
                throw new ArgumentException("the same state appears twice in one batch");
            }

            segments.Add(new Segment(states[i], rows, tokens[i].Length, states[i].Position));
            rows += tokens[i].Length;
        }

        return (segments, rows);
    }

    /// <summary>The capture interface of the backend when a decode step of this model can be recorded and replayed.</summary>
    private IStepCapture? StepCapture =>
        Backend is IStepCapture { CaptureEnabled: true } capture
        && (capture.RecordsAttention || mixers.All(m => m is not Qwen2Attention)) ? capture : null;

    /// <summary>
    /// Runs <paramref name="sequences"/> fresh, independent windows of <paramref name="length"/> tokens each
    /// (<paramref name="tokens"/> row-major, each window from position 0 and an empty cache/zero state) through every
    /// layer, and after each layer's mixer calls <paramref name="tap"/>(layer, x, y) with the mixer's input
    /// x = input_layernorm(h) and its output y (after o_proj, before the residual add), both [sequences·length, C],
    /// window after window. The tensors are reused by the next layer: copy what must outlive the call. No final norm,
    /// no logits. This is the teacher forward of distillation step 1 (spec §7.1); normal inference does not use it.
    /// </summary>
    public void ForwardLayers(ReadOnlySpan<int> tokens, int sequences, int length, Action<int, Tensor, Tensor> tap)
    {
        ArgumentNullException.ThrowIfNull(tap);
        if (sequences <= 0 || length <= 0 || tokens.Length != (long)sequences * length)
        {
            throw new ArgumentException($"ForwardLayers: {tokens.Length} tokens for {sequences} sequences of {length}");
        }

        var states = new SequenceState[sequences];
        try
        {
            var segments = new List<Segment>(sequences);
            for (int i = 0; i < sequences; i++)
            {
                states[i] = CreateState();
                segments.Add(new Segment(states[i], i * length, length, 0));
            }

            int rows = sequences * length;
            using var h = Backend.AllocateUninitialized(rows, Config.HiddenSize);
            using var normed = Backend.AllocateUninitialized(rows, Config.HiddenSize);
            using var branch = Backend.AllocateUninitialized(rows, Config.HiddenSize);
            Body(segments, tokens.ToArray(), h, normed, branch, tap: tap);
        }
        finally
        {
            foreach (var s in states)
            {
                s?.Dispose();
            }
        }
    }

    /// <summary>
    /// Embedding, every layer, and the residual stream left in <paramref name="h"/> [T, C]. <paramref name="headNormed"/>,
    /// when given (the head reads every row of h: one token a sequence), also receives the final norm of h [T, C]: the
    /// last residual add runs fused into it (one launch instead of an add, a row copy and a norm; the same sums).
    /// <paramref name="tap"/>, when given, sees each layer's mixer input and output (<see cref="ForwardLayers"/>).
    /// </summary>
    private void Body(List<Segment> segments, int[] allTokens, Tensor h, Tensor normed, Tensor branch,
        Tensor? headNormed = null, Action<int, Tensor, Tensor>? tap = null)
    {
        var ops = Backend.Ops;
        using var pass = new ForwardPass(Backend, segments, 0);
        ops.Embedding(embedding, allTokens, h);
        float eps = (float)Config.RmsNormEps;

        // Each residual add is fused into the norm that follows it, and that norm is handed to the mixer's q/k/v or the
        // MLP's gate/up (ForwardPass.BeginNorm), which run it with their GEMVs (one launch on the CUDA decode path,
        // the two ops elsewhere). The last layer's MLP add stays alone: the final norm runs on the selected rows only.
        PendingNorm? norm = mixers.Length > 0 ? new(h, null, inputNorms[0], eps, normed) : null;
        for (int l = 0; l < mixers.Length; l++)
        {
            pass.Layer = l;
            pass.Ahead = mixers[l].LeavesBandwidthIdle ? [[mixers[l].OutputWeight], .. mlps[l].WeightsInReadOrder] : null;
            pass.BeginNorm(norm!, mixers[l].TakesPendingNorm);
            mixers[l].Forward(pass, normed, branch);
            pass.EndNorm("the mixer");
            tap?.Invoke(l, normed, branch);
            pass.BeginNorm(new PendingNorm(h, branch, postNorms[l], eps, normed), consumerTakes: true);
            mlps[l].Forward(pass, normed, branch);
            pass.EndNorm("the MLP");
            if (l + 1 < mixers.Length)
            {
                norm = new PendingNorm(h, branch, inputNorms[l + 1], eps, normed);
            }
            else if (headNormed is not null)
            {
                ops.AddRmsNorm(h, branch, finalNorm, eps, headNormed);
            }
            else
            {
                ops.Add(h, branch, h);
            }

            pass.EndLayer();
        }

        if (mixers.Length == 0 && headNormed is not null)
        {
            ops.RmsNorm(h, finalNorm, eps, headNormed);
        }
    }

    /// <summary>One token of one sequence through a recorded step (recorded on the state's first such call).</summary>
    private float[] DecodeCaptured(SequenceState state, int token, IStepCapture capture)
    {
        var logits = DecodeCapturedLogits(state, token, capture);
        var host = new float[Config.VocabSize];
        Backend.Download(logits, host);
        CheckFinite(host, Config.VocabSize);
        return host;
    }

    /// <summary>Replays (recording first if needed) the state's decode step; returns its logits [1, V] on the device.</summary>
    private Tensor DecodeCapturedLogits(SequenceState state, int token, IStepCapture capture)
    {
        var step = Recorded(state, token, capture, state.Captured?.AllowedVocabulary ?? Config.VocabSize);
        step.Recording!.Replay([token], state.Position);
        state.Position += 1;
        return step.Logits;
    }

    /// <summary>
    /// The state's recorded decode step, ending with a Sample over <paramref name="allowedVocabulary"/> ids: recorded on
    /// first use, and again if a caller samples over another vocabulary size (a kernel argument of the recording) or the
    /// recording cannot serve this position (<see cref="ICapturedStep.CanReplayAt"/>; a KV cache full or reallocated).
    /// </summary>
    private CapturedDecode Recorded(SequenceState state, int token, IStepCapture capture, int allowedVocabulary)
    {
        if ((uint)token >= (uint)embedding.RowCount)
        {
            throw new RadladsException($"token id {token} at position 0 is outside the model's vocabulary [0, {embedding.RowCount})");
        }

        if (state.Captured is { } existing && existing.AllowedVocabulary == allowedVocabulary && existing.Covers(state)
            && existing.Recording!.CanReplayAt(state.Position))
        {
            return existing;
        }

        state.Captured?.Dispose();
        state.Captured = null;
        // KV caches grow outside the recording (a reallocation cannot be recorded), by doubling: the recording then
        // serves every position up to the capacity, and is made again only when a cache grows (log₂ times).
        var caches = state.Layers.OfType<KvCacheState>().ToArray();
        foreach (var cache in caches)
        {
            cache.Reserve(Backend, state.Position + 1);
        }

        var step = new CapturedDecode(Backend, Config.HiddenSize, Config.VocabSize, allowedVocabulary, caches);
        try
        {
            List<Segment> segments = [new Segment(state, 0, 1, state.Position)];
            step.Recording = capture.Capture([token], state.Position, () =>
            {
                Body(segments, [token], step.Hidden, step.Normed, step.Branch, step.Selected);
                HeadLogits(step.Hidden, segments, allLogits: false, step.Selected, step.Logits, normed: true);
            }, step.Logits, allowedVocabulary);
        }
        catch
        {
            step.Dispose();
            throw;
        }

        state.Captured = step;
        return step;
    }

    /// <summary>
    /// Whether the head reads every row of h (one token a sequence), so that Body can write the final norm itself, fused
    /// with the last residual add (its headNormed), instead of an add, a row copy and a norm.
    /// </summary>
    private static bool HeadReadsEveryRow(List<Segment> segments, int rows) => segments.Count == rows;

    /// <summary>
    /// Final RMSNorm and LM head of the selected rows of h into <paramref name="logits"/> [rows, V]; with
    /// <paramref name="normed"/>, <paramref name="selected"/> already holds them normed (Body's headNormed) and only the head runs.
    /// </summary>
    private void HeadLogits(Tensor h, List<Segment> segments, bool allLogits, Tensor selected, Tensor logits, bool normed = false)
    {
        if (normed)
        {
            Backend.Ops.MatMul(selected, head, null, logits);
            return;
        }

        if (allLogits)
        {
            Backend.Copy(h, selected);
        }
        else
        {
            for (int i = 0; i < segments.Count; i++)
            {
                Backend.Copy(h.Rows(segments[i].RowStart + segments[i].RowCount - 1, 1), selected.Rows(i, 1));
            }
        }

        Backend.Ops.RmsNorm(selected, finalNorm, (float)Config.RmsNormEps, selected);
        Backend.Ops.MatMul(selected, head, null, logits);
    }

    /// <summary>
    /// The head's logits of the selected rows of h, downloaded and checked; <paramref name="headNormed"/>: those rows
    /// already normed by Body (every row of h selected).
    /// </summary>
    private float[][] Logits(Tensor h, List<Segment> segments, bool allLogits, Tensor? headNormed = null)
    {
        int c = Config.HiddenSize;
        int v = Config.VocabSize;
        int rows = allLogits ? h.RowCount : segments.Count;
        using var selected = headNormed is null ? Backend.AllocateUninitialized(rows, c) : null;
        using var logits = Backend.AllocateUninitialized(rows, v);
        HeadLogits(h, segments, allLogits, headNormed ?? selected!, logits, normed: headNormed is not null);
        var host = new float[(long)rows * v];
        Backend.Download(logits, host);
        CheckFinite(host, v);
        var result = new float[segments.Count][];
        for (int i = 0; i < segments.Count; i++)
        {
            var (start, count) = allLogits ? (segments[i].RowStart, segments[i].RowCount) : (i, 1);
            result[i] = host.AsSpan(start * v, count * v).ToArray();
        }

        return result;
    }

    private static void CheckFinite(float[] logits, int vocab)
    {
        for (int i = 0; i < logits.Length; i++)
        {
            if (!float.IsFinite(logits[i]))
            {
                throw new RadladsException(
                    $"the model produced a non-finite logit ({logits[i]}) at row {i / vocab}, token id {i % vocab}: the weights or the input overflow fp32; check the checkpoint for NaN/Inf values");
            }
        }
    }

    private IMixer CreateMixer(WeightLoader w, string prefix, int layer)
    {
        bool trailingAttention = layer >= Config.NumHiddenLayers - Config.NumAttentionLayers;
        return Config.Architecture switch
        {
            Architecture.Qwen2 => new Qwen2Attention(w, prefix, Config),
            // Hybrid checkpoints keep softmax attention in their last layers: flagged in config, or inferred
            // from a layer without RWKV tensors (spec §6.4).
            Architecture.Rwkv6Qwen2 when trailingAttention || !w.Has(prefix + "time_decay") => new Qwen2Attention(w, prefix, Config),
            Architecture.Rwkv7Qwen2 when trailingAttention || !w.Has(prefix + "w0") => new Qwen2Attention(w, prefix, Config),
            Architecture.Rwkv6Qwen2 => new Rwkv6Mixer(w, prefix, Config),
            Architecture.Rwkv7Qwen2 => new Rwkv7Mixer(w, prefix, Config, layer == 0),
            _ => throw new InvalidOperationException(Config.Architecture.ToString()),
        };
    }

    private static string Describe(IMixer mixer) => mixer switch
    {
        Qwen2Attention => "softmax attention (KV cache)",
        Rwkv6Mixer m => $"RAD-RWKV6 (token shift {(m.MixRank > 0 ? $"on, Rm={m.MixRank}" : "off")}, Rd={m.DecayRank}, gate {m.GateKind}, {(m.GroupNorm ? "GroupNorm" : "no norm")})",
        Rwkv7Mixer m => $"RAD-RWKV7 variant {Variant(m)} (Rw={m.DecayRank}, Ra={m.IclrRank}, Rv={(m.FirstLayer ? "unused in layer 0" : m.ValueRank.ToString(System.Globalization.CultureInfo.InvariantCulture))}, gate {m.GateKind}{(m.GateKind == GateKind.LowRank ? $" Rg={m.GateRank}" : "")})",
        _ => mixer.GetType().Name,
    };

    private static string Variant(Rwkv7Mixer m) => (m.Balanced, m.GroupNorm) switch
    {
        (true, false) => "B (balanced keys, ×N^-1/2)",
        (false, true) => "G (stock keys, GroupNorm)",
        (true, true) => "mixed (balanced keys, GroupNorm)",
        (false, false) => "mixed (stock keys, ×N^-1/2)",
    };

    public void Dispose()
    {
        embedding.Dispose();
        if (!TiedEmbeddings)
        {
            head.Dispose();
        }

        finalNorm.Dispose();
        foreach (var d in inputNorms.Concat(postNorms).Cast<IDisposable>().Concat(mixers).Concat(mlps))
        {
            d.Dispose();
        }

        checkpoint.Dispose();
    }
}
