using Radlads.Checkpoints;
using Radlads.Models;
using Radlads.Ops;

namespace Radlads.Training;

/// <summary>
/// Step 1 of RADLADS, attention hidden-state alignment (spec §7.1, §7.2): the frozen qwen2 teacher runs its normal
/// forward; beside each teacher attention a trainable RAD-RWKV student mixer reads the same input (the teacher's
/// input_layernorm output) and the loss is the mean over layers, windows and positions of ‖o_T − o_S‖₂/√C on the
/// mixer outputs after o_proj. The residual stream is the teacher's, so the layers are independent except for
/// RAD-RWKV7's v_first (student layer 0's value, read by every later student layer): layer 0's activations are kept
/// until every later layer has added its gradient for v_first, then layer 0's backward runs last, so the gradient is
/// exact. Every other layer runs forward and backward while the teacher's forward is at that layer, so memory holds
/// the teacher, the parameters, and the activations of at most two student layers.
/// </summary>
public sealed class Step1Objective : ITrainingObjective
{
    private readonly IBackend backend;
    private readonly IBackwardOps backward;
    private readonly CausalLM teacher;
    private readonly Checkpoint studentCheckpoint;
    private readonly StudentMixer[] mixers;
    private readonly Parameter[] parameters;
    private bool disposed;

    private Step1Objective(IBackend backend, IBackwardOps backward, CausalLM teacher, string studentDirectory, ModelConfig studentConfig,
        Checkpoint studentCheckpoint)
    {
        this.backend = backend;
        this.backward = backward;
        this.teacher = teacher;
        this.studentCheckpoint = studentCheckpoint;
        StudentDirectory = studentDirectory;
        StudentConfig = studentConfig;
        var source = new CheckpointParameterSource(studentCheckpoint);
        mixers = new StudentMixer[studentConfig.NumHiddenLayers];
        try
        {
            for (int l = 0; l < mixers.Length; l++)
            {
                mixers[l] = CreateMixer(backend, source, studentConfig, l);
            }
        }
        catch
        {
            foreach (var m in mixers)
            {
                m?.Dispose();
            }

            throw;
        }

        parameters = mixers.SelectMany(m => m.Parameters).ToArray();
    }

    /// <summary>The teacher's folder.</summary>
    public string TeacherDirectory => teacher.Directory;

    /// <summary>The folder the student was read from (its config, tokenizer files and untrained tensors are copied from here).</summary>
    public string StudentDirectory { get; }

    public ModelConfig TeacherConfig => teacher.Config;

    public ModelConfig StudentConfig { get; }

    public IReadOnlyList<Parameter> Parameters => parameters;

    /// <summary>The student mixers, layer by layer (tests run them on chosen inputs).</summary>
    internal IReadOnlyList<StudentMixer> Mixers => mixers;

    internal IBackwardOps BackwardOps => backward;

    /// <summary>Elements in every trained parameter.</summary>
    public long ParameterCount => parameters.Sum(p => p.Value.ElementCount);

    /// <summary>
    /// Estimated FLOPs of one training token at windows of <paramref name="length"/> (multiply-add = 2), the
    /// model-FLOPs convention (what the maths needs, not what a kernel happens to do):
    /// the frozen teacher's forward, 2·P per token over its layers' matrices (q, k, v, o, gate, up, down) plus causal
    /// attention 2·A·(L + 1) per layer (QKᵀ and PV over (L + 1)/2 keys on average); the student mixers' matrices
    /// 6·P (forward, dx, dW; the input projections' dx is skipped in step 1, a small overcount); and each recurrence
    /// per head and token ≈ 10·N² forward + 38·N² backward (two recomputing sweeps of the state, the row and column
    /// passes), i.e. 48·N²·H per layer. Element-wise ops, norms and the loss are left out (memory-bound, ≪ 1 %).
    /// </summary>
    public double FlopsPerToken(int length)
    {
        var t = TeacherConfig;
        int a = t.NumAttentionHeads * t.HeadDim;
        int kv = t.NumKeyValueHeads * t.HeadDim;
        double teacherMatrices = ((double)t.HiddenSize * (a + kv + kv)) + ((double)a * t.HiddenSize) + (3.0 * t.HiddenSize * t.IntermediateSize);
        double teacherLayer = (2 * teacherMatrices) + (2.0 * a * (length + 1));
        double studentMatrices = parameters.Where(p => p.Value.Shape.Length == 2).Sum(p => (double)p.Value.ElementCount);
        var s = StudentConfig;
        double recurrence = 48.0 * s.HeadDim * s.HeadDim * s.NumAttentionHeads;
        return (t.NumHiddenLayers * teacherLayer) + (6 * studentMatrices) + (s.NumHiddenLayers * recurrence);
    }

    /// <summary>
    /// Loads the teacher (qwen2) and the student (rwkv6qwen2 or rwkv7qwen2, e.g. from <c>radlads convert</c>) of the
    /// same shape onto <paramref name="backend"/>, which must be able to train (<see cref="IBackend.BackwardOps"/>).
    /// The trained student tensors become fp32 master copies on the backend; the teacher keeps its stored dtype.
    /// </summary>
    public static Step1Objective Open(IBackend backend, string teacherDirectory, string studentDirectory)
    {
        ArgumentNullException.ThrowIfNull(backend);
        var backward = backend.BackwardOps ?? throw new RadladsException(
            $"the {backend.Name} backend cannot train (it has no backward ops); train with --backend cpu (the reference) or a backend that has them");
        if (!Directory.Exists(teacherDirectory))
        {
            throw new RadladsException($"teacher folder '{teacherDirectory}' does not exist");
        }

        if (!Directory.Exists(studentDirectory))
        {
            throw new RadladsException($"student folder '{studentDirectory}' does not exist; make one with `radlads convert --teacher {teacherDirectory} --output DIR`");
        }

        var teacherConfig = ModelConfig.Load(teacherDirectory);
        var studentConfig = ModelConfig.Load(studentDirectory);
        CheckPair(teacherDirectory, teacherConfig, studentDirectory, studentConfig);
        var checkpoint = Checkpoint.Open(studentDirectory);
        try
        {
            CheckStudentLayers(studentDirectory, studentConfig, checkpoint);
            var model = CausalLM.Load(teacherDirectory, backend);
            try
            {
                return new Step1Objective(backend, backward, model, Path.GetFullPath(studentDirectory), studentConfig, checkpoint);
            }
            catch
            {
                model.Dispose();
                throw;
            }
        }
        catch
        {
            checkpoint.Dispose();
            throw;
        }
    }

    private static void CheckPair(string teacherDir, ModelConfig t, string studentDir, ModelConfig s)
    {
        if (t.Architecture != Architecture.Qwen2)
        {
            throw new RadladsException($"teacher {teacherDir}: model_type '{t.ModelType}' is not a qwen2 teacher; step 1 distils a qwen2 model into its converted student");
        }

        if (s.Architecture is not (Architecture.Rwkv6Qwen2 or Architecture.Rwkv7Qwen2))
        {
            throw new RadladsException($"student {studentDir}: model_type '{s.ModelType}' is not a RAD-RWKV student (rwkv6qwen2 or rwkv7qwen2); make one with `radlads convert --teacher {teacherDir}`");
        }

        var mismatches = new List<string>();
        void Same(string field, object a, object b)
        {
            if (!Equals(a, b))
            {
                mismatches.Add($"{field}: teacher {a}, student {b}");
            }
        }

        Same("hidden_size", t.HiddenSize, s.HiddenSize);
        Same("num_hidden_layers", t.NumHiddenLayers, s.NumHiddenLayers);
        Same("num_attention_heads", t.NumAttentionHeads, s.NumAttentionHeads);
        Same("num_key_value_heads", t.NumKeyValueHeads, s.NumKeyValueHeads);
        Same("head_dim", t.HeadDim, s.HeadDim);
        Same("vocab_size", t.VocabSize, s.VocabSize);
        if (s.UseRope)
        {
            Same("rope_theta", t.RopeTheta, s.RopeTheta);
        }

        if (mismatches.Count > 0)
        {
            throw new RadladsException($"student {studentDir} was not converted from teacher {teacherDir} ({string.Join("; ", mismatches)}); convert this teacher with `radlads convert`");
        }

        if (s.NumAttentionLayers > 0)
        {
            throw new RadladsException($"student {studentDir}: hybrid students (num_attention_layers {s.NumAttentionLayers}) are not supported by step 1; convert without attention layers");
        }
    }

    private static void CheckStudentLayers(string studentDir, ModelConfig s, Checkpoint checkpoint)
    {
        string marker = s.Architecture == Architecture.Rwkv6Qwen2 ? "time_decay" : "w0";
        for (int l = 0; l < s.NumHiddenLayers; l++)
        {
            string name = $"model.layers.{l}.self_attn.{marker}";
            if (!checkpoint.Contains(name))
            {
                throw new RadladsException($"student {studentDir}: layer {l} has no '{name}' (a softmax-attention layer?); step 1 needs a RAD-RWKV mixer in every layer");
            }
        }
    }

    private static StudentMixer CreateMixer(IBackend backend, IParameterSource source, ModelConfig config, int layer) => config.Architecture switch
    {
        Architecture.Rwkv6Qwen2 => new Rwkv6StudentMixer(backend, source, config, layer),
        Architecture.Rwkv7Qwen2 => new Rwkv7StudentMixer(backend, source, config, layer),
        _ => throw new InvalidOperationException(config.Architecture.ToString()),
    };

    public double ForwardBackward(ReadOnlySpan<int> tokens, int sequences, int length)
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        if (sequences <= 0 || length <= 0 || tokens.Length != (long)sequences * length)
        {
            throw new ArgumentException($"ForwardBackward: {tokens.Length} tokens for {sequences} sequences of {length} (expected sequences × length, both > 0)");
        }

        int vocab = TeacherConfig.VocabSize;
        for (int i = 0; i < tokens.Length; i++)
        {
            if ((uint)tokens[i] >= (uint)vocab)
            {
                throw new RadladsException($"token id {tokens[i]} (sequence {i / length}, position {i % length}) is outside the teacher's vocabulary [0, {vocab}); tokenise the data with this teacher's tokenizer");
            }
        }

        int layers = mixers.Length;
        double count = (double)layers * sequences * length;
        float gradScale = (float)(1 / count);
        double sum = 0;
        var parts = new double[layers];
        using var pass = new StudentPass(backend, backward, sequences, length);
        Scratch? deferred = null;
        Tensor? deferredInput = null;
        Tensor? deferredGradient = null;
        try
        {
            teacher.ForwardLayers(tokens, sequences, length, (l, x, teacherOutput) =>
            {
                // RAD-RWKV7 layer 0: its value is v_first, so its backward waits for every later layer's part of
                // ∂loss/∂v_first; it keeps its own copy of the teacher's input, which the teacher reuses.
                bool defer = l == 0 && StudentConfig.Architecture == Architecture.Rwkv7Qwen2;
                var input = x;
                if (defer)
                {
                    deferredInput = backend.AllocateUninitialized(x.Shape);
                    backend.Copy(x, deferredInput);
                    input = deferredInput;
                }

                Tensor? y = backend.AllocateUninitialized(pass.Rows, StudentConfig.HiddenSize);
                Scratch? saved = null;
                try
                {
                    saved = mixers[l].Forward(pass, input, y);
                    // dy is written over the student output (the loss reads each row before writing it).
                    double layerLoss = backward.AlignmentLoss(teacherOutput, y, gradScale, y);
                    if (!double.IsFinite(layerLoss))
                    {
                        throw new RadladsException($"step 1: the loss of layer {l} is {layerLoss}: the student's weights or activations overflowed; lower the learning rate or restart from the last good checkpoint");
                    }

                    sum += layerLoss;
                    parts[l] = layerLoss / ((double)sequences * length);
                    if (defer)
                    {
                        (deferred, deferredGradient, saved, y) = (saved, y, null, null);
                        return;
                    }

                    mixers[l].Backward(pass, saved, y, null);
                }
                finally
                {
                    saved?.Dispose();
                    y?.Dispose();
                }
            });

            if (deferred is not null)
            {
                mixers[0].Backward(pass, deferred, deferredGradient!, null);
            }
        }
        finally
        {
            deferred?.Dispose();
            deferredGradient?.Dispose();
            deferredInput?.Dispose();
        }

        layerLosses = parts;
        return sum / count;
    }

    private double[] layerLosses = [];

    /// <summary>Each layer's mean ‖o_T − o_S‖₂/√C over the last batch's tokens (their mean is the step's loss).</summary>
    public IReadOnlyList<double> LayerLosses => layerLosses.Length == mixers.Length ? layerLosses : new double[mixers.Length];

    /// <summary>
    /// Writes the student with the trained parameters' current values (in the dtype each tensor has in the student
    /// checkpoint; bf16 rounds to nearest even) and every other tensor, config.json and the tokenizer files copied from
    /// <see cref="StudentDirectory"/>. A new or empty folder is assembled beside it and renamed when complete; an
    /// existing student folder is replaced file by file (config.json last) only with <paramref name="overwrite"/>.
    /// </summary>
    public void WriteStudent(string outputDirectory, bool overwrite = false)
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        StudentWriter.Write(backend, studentCheckpoint, StudentDirectory, TeacherDirectory, parameters, outputDirectory, overwrite);
    }

    public void Dispose()
    {
        if (disposed)
        {
            return;
        }

        disposed = true;
        foreach (var m in mixers)
        {
            m.Dispose();
        }

        teacher.Dispose();
        studentCheckpoint.Dispose();
    }
}
