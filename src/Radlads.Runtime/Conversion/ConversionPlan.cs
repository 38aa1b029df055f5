using Radlads.Checkpoints;
using Radlads.Models;

namespace Radlads.Conversion;

/// <summary>Where a student tensor's values come from.</summary>
public enum TensorOrigin
{
    /// <summary>Copied from a teacher tensor (same values; same bytes when the dtypes agree).</summary>
    Teacher,

    /// <summary>A new RWKV parameter, initialised by the spec's rule.</summary>
    Init,
}

/// <summary>One tensor of the student checkpoint and how to produce it.</summary>
public sealed class StudentTensor
{
    private StudentTensor(string name, int[] shape, TensorOrigin origin, string source)
    {
        Name = name;
        Shape = shape;
        Origin = origin;
        Source = source;
    }

    public string Name { get; }

    public int[] Shape { get; }

    public TensorOrigin Origin { get; }

    /// <summary>The teacher tensor's name (<see cref="TensorOrigin.Teacher"/>) or the init rule, e.g. "orthogonal × 0.1".</summary>
    public string Source { get; }

    public long ElementCount => Shapes.ElementCount(Shape) ?? throw new InvalidOperationException($"{Name}: invalid shape");

    /// <summary>Every element equals this value (zeros, ones, 0.85…), written without materialising the tensor.</summary>
    internal float? Constant { get; private init; }

    /// <summary>Computes the values (formulas, random draws), row-major.</summary>
    internal Func<float[]>? Generate { get; private init; }

    internal static StudentTensor Copy(string name, string teacherName, int[] shape) => new(name, shape, TensorOrigin.Teacher, teacherName);

    internal static StudentTensor Fill(string name, int[] shape, float value) =>
        new(name, shape, TensorOrigin.Init, value == 0 ? "zeros" : $"constant {value.ToString(System.Globalization.CultureInfo.InvariantCulture)}") { Constant = value };

    internal static StudentTensor Computed(string name, int[] shape, string rule, Func<float[]> generate) =>
        new(name, shape, TensorOrigin.Init, rule) { Generate = generate };
}

/// <summary>
/// The student's tensors, in no particular order (the writer sorts them): teacher copies (spec §5: q/k/v/o with the
/// q/k/v biases under the same names, MLP, norms, embeddings, an untied <c>lm_head</c>) and the new RWKV parameters
/// with their init rules (§3.1 for RAD-RWKV6, §4.1 for RAD-RWKV7), named and shaped per §6.2.
/// Building the plan reads no tensor data but checks that every teacher tensor exists with the expected shape.
/// </summary>
public sealed class ConversionPlan
{
    /// <summary>Orthogonal LoRA B matrices are scaled by this ([TR] <c>ortho_init(x, 0.1)</c>).</summary>
    public const double OrthogonalScale = 0.1;

    /// <summary>v6 LoRA B matrices (<c>time_maa_w2</c>, <c>time_decay_w2</c>) are drawn from U(−0.01, 0.01).</summary>
    public const double UniformBound = 0.01;

    private readonly List<StudentTensor> tensors = [];

    private ConversionPlan(ModelConfig teacher, StudentArchitecture architecture, StudentVariant variant, LoraRanks ranks)
    {
        Teacher = teacher;
        Architecture = architecture;
        Variant = variant;
        Ranks = ranks;
    }

    public ModelConfig Teacher { get; }

    public StudentArchitecture Architecture { get; }

    public StudentVariant Variant { get; }

    public LoraRanks Ranks { get; }

    public IReadOnlyList<StudentTensor> Tensors => tensors;

    /// <summary>True when the teacher ties its head to the embedding: the student's <c>lm_head.weight</c> is a copy of it.</summary>
    public bool TiedTeacher { get; private set; }

    /// <summary>Teacher parameters the student copies (the teacher's own count: a tied head is not counted twice).</summary>
    public long TeacherParameters { get; private set; }

    /// <summary>Teacher tensors the student does not use, e.g. a stored <c>rotary_emb.inv_freq</c>.</summary>
    public IReadOnlyList<string> IgnoredTeacherTensors { get; private set; } = [];

    public long StudentParameters => tensors.Sum(t => t.ElementCount);

    /// <summary>Parameters of the new RWKV tensors.</summary>
    public long NewParameters => tensors.Where(t => t.Origin == TensorOrigin.Init).Sum(t => t.ElementCount);

    /// <summary>Plans the student of <paramref name="architecture"/> from an open teacher checkpoint.</summary>
    public static ConversionPlan Build(
        ModelConfig teacher, Checkpoint checkpoint, StudentArchitecture architecture, StudentVariant variant, LoraRanks ranks, ulong seed)
    {
        ArgumentNullException.ThrowIfNull(teacher);
        ArgumentNullException.ThrowIfNull(checkpoint);
        ArgumentNullException.ThrowIfNull(ranks);
        if (teacher.Architecture != Models.Architecture.Qwen2)
        {
            throw new RadladsException($"{checkpoint.Directory}: model_type '{teacher.ModelType}' is not a Qwen2 teacher; convert takes a qwen2 checkpoint");
        }

        int c = teacher.HiddenSize;
        int a = teacher.NumAttentionHeads * teacher.HeadDim;
        if (architecture == StudentArchitecture.RadRwkv7 && c != a)
        {
            // [HF7] sizes the per-channel vectors by C and [TR] by H·N (spec §4.1); the runtime accepts only C = H·N.
            throw new RadladsException(
                $"{checkpoint.Directory}: rad-rwkv7 needs hidden_size ({c}) = num_attention_heads × head_dim ({a}), as every Qwen2.5 teacher has");
        }

        var plan = new ConversionPlan(teacher, architecture, variant, ranks);
        plan.AddTeacherTensors(checkpoint);
        for (int layer = 0; layer < teacher.NumHiddenLayers; layer++)
        {
            string prefix = $"model.layers.{layer}.self_attn.";
            if (architecture == StudentArchitecture.RadRwkv6)
            {
                plan.AddRwkv6(prefix, layer, seed);
            }
            else
            {
                plan.AddRwkv7(prefix, layer, seed);
            }

            if (variant == StudentVariant.GroupNorm)
            {
                plan.tensors.Add(StudentTensor.Fill(prefix + "ln_x.weight", [a], 1f));
                plan.tensors.Add(StudentTensor.Fill(prefix + "ln_x.bias", [a], 0f));
            }
        }

        return plan;
    }

    private void AddTeacherTensors(Checkpoint checkpoint)
    {
        var t = Teacher;
        int c = t.HiddenSize, v = t.VocabSize, f = t.IntermediateSize;
        int a = t.NumAttentionHeads * t.HeadDim, kv = t.NumKeyValueHeads * t.HeadDim;
        var used = new HashSet<string>(StringComparer.Ordinal);
        void Copy(string name, params int[] shape)
        {
            checkpoint.Get(name, shape); // exists, with this shape and a supported dtype
            used.Add(name);
            TeacherParameters += Shapes.ElementCount(shape)!.Value;
            tensors.Add(StudentTensor.Copy(name, name, shape));
        }

        Copy("model.embed_tokens.weight", v, c);
        Copy("model.norm.weight", c);
        // The same rule as the runtime's loader: tied when the config says so or when there is no head tensor.
        TiedTeacher = t.TieWordEmbeddings || !checkpoint.Contains("lm_head.weight");
        if (TiedTeacher)
        {
            // Spec §5: the student trains untied; its head starts as a copy of the embedding.
            tensors.Add(StudentTensor.Copy("lm_head.weight", "model.embed_tokens.weight", [v, c]));
        }
        else
        {
            Copy("lm_head.weight", v, c);
        }

        for (int layer = 0; layer < t.NumHiddenLayers; layer++)
        {
            string p = $"model.layers.{layer}.";
            Copy(p + "input_layernorm.weight", c);
            Copy(p + "post_attention_layernorm.weight", c);
            Copy(p + "mlp.gate_proj.weight", f, c);
            Copy(p + "mlp.up_proj.weight", f, c);
            Copy(p + "mlp.down_proj.weight", c, f);
            Copy(p + "self_attn.q_proj.weight", a, c);
            Copy(p + "self_attn.q_proj.bias", a);
            Copy(p + "self_attn.k_proj.weight", kv, c);
            Copy(p + "self_attn.k_proj.bias", kv);
            Copy(p + "self_attn.v_proj.weight", kv, c);
            Copy(p + "self_attn.v_proj.bias", kv);
            Copy(p + "self_attn.o_proj.weight", c, a);
            if (checkpoint.Contains(p + "self_attn.o_proj.bias"))
            {
                throw new RadladsException(
                    $"{checkpoint.Directory}: the teacher has {p}self_attn.o_proj.bias; RAD-RWKV students have no output bias (attention_output_bias false), so the student could not reproduce this teacher");
            }
        }

        IgnoredTeacherTensors = checkpoint.Names.Where(n => !used.Contains(n)).ToArray();
    }

    private void AddRwkv6(string p, int layer, ulong seed)
    {
        var t = Teacher;
        int c = t.HiddenSize, a = t.NumAttentionHeads * t.HeadDim, layers = t.NumHiddenLayers;
        int rm = Ranks.TokenShift, rd = Ranks.Decay;
        tensors.Add(StudentTensor.Fill(p + "gate.weight", [a, c], 0f));
        tensors.Add(StudentTensor.Fill(p + "time_maa_x", [1, 1, c], 1f));
        foreach (var mix in new[] { "r", "k", "v", "w", "g" })
        {
            tensors.Add(StudentTensor.Fill(p + "time_maa_" + mix, [1, 1, c], 0f));
        }

        tensors.Add(StudentTensor.Fill(p + "time_maa_w1", [c, 5 * rm], 0f));
        tensors.Add(Uniform(p + "time_maa_w2", [5, rm, c], seed));
        tensors.Add(StudentTensor.Computed(p + "time_decay", [1, 1, a], "−6 + 5·(n/(A−1))^(0.7 + 1.3·l/(L−1))",
            () => InitRules.Rwkv6TimeDecay(layer, layers, a)));
        tensors.Add(StudentTensor.Fill(p + "time_decay_w1", [c, rd], 0f));
        tensors.Add(Uniform(p + "time_decay_w2", [rd, a], seed));
    }

    private void AddRwkv7(string p, int layer, ulong seed)
    {
        var t = Teacher;
        int c = t.HiddenSize, a = t.NumAttentionHeads * t.HeadDim, layers = t.NumHiddenLayers;
        tensors.Add(StudentTensor.Computed(p + "w0", [1, 1, a], "−7 + 5·(n/(A−1))^(0.85 + (l/(L−1))^0.5) + 0.5",
            () => InitRules.Rwkv7W0(layer, layers, a)));
        AddLora(p + "w1", p + "w2", c, Ranks.Decay, a, seed);
        tensors.Add(StudentTensor.Fill(p + "a0", [1, 1, a], 0f));
        AddLora(p + "a1", p + "a2", c, Ranks.Iclr, a, seed);
        // Layer 0 never reads v0/v1/v2, but HF allocates them in every layer (spec §6.2); they get the same init.
        tensors.Add(StudentTensor.Fill(p + "v0", [1, 1, a], 1f));
        AddLora(p + "v1", p + "v2", c, Ranks.ValueResidualMix, a, seed);
        AddLora(p + "g1", p + "g2", c, Ranks.Gate, a, seed);
        tensors.Add(StudentTensor.Fill(p + "k_k", [1, 1, a], 0.85f));
        tensors.Add(StudentTensor.Fill(p + "k_a", [1, 1, a], 1f));
        tensors.Add(StudentTensor.Fill(p + "r_k", [t.NumAttentionHeads, t.HeadDim], 0f));
    }

    /// <summary>A = 0 [in, rank]; B = orthogonal × 0.1 [rank, out].</summary>
    private void AddLora(string down, string up, int input, int rank, int output, ulong seed)
    {
        tensors.Add(StudentTensor.Fill(down, [input, rank], 0f));
        tensors.Add(StudentTensor.Computed(up, [rank, output], "orthogonal × 0.1",
            () => Orthogonal.Create(rank, output, OrthogonalScale, TensorRng.For(seed, up))));
    }

    private static StudentTensor Uniform(string name, int[] shape, ulong seed) =>
        StudentTensor.Computed(name, shape, "U(−0.01, 0.01)",
            () => InitRules.Uniform(checked((int)Shapes.ElementCount(shape)!.Value), -UniformBound, UniformBound, TensorRng.For(seed, name)));
}
