using System.Text.RegularExpressions;
using Radlads.Checkpoints;
using Radlads.Conversion;
using Radlads.Cpu;
using Radlads.Models;
using Radlads.Ops;
using Radlads.Tests.Convert;
using Radlads.Tests.Models;
using Radlads.Tests.Ops;
using Radlads.Training;
using static Radlads.Tests.Ops.NaiveOps;

namespace Radlads.Tests.Training;

/// <summary>
/// Step 1 (attention alignment) through <see cref="Step1Objective"/> on the tiny golden fixtures: the qwen2 teacher
/// (C 64, H 4, KVH 2 so GQA groups of 2, N 16, 3 layers, RoPE θ 1e6) and the spec-built random students (RAD-RWKV6 with
/// token shift and a full gate; RAD-RWKV6 with RoPE, GroupNorm, a low-rank gate and no token shift; RAD-RWKV7 variants
/// B and G), whose configs are given the teacher's θ where they differ.
/// </summary>
public sealed class Step1ObjectiveTests
{
    private const string Teacher = "qwen2";

    public static TheoryData<string> Students => new("rwkv6", "rwkv6-rope", "rwkv7", "rwkv7-groupnorm");

    /// <summary>A copy of a golden student with the teacher's rope_theta (the fixtures were built with 1e4 or 1e6).</summary>
    private static FixtureCopy StudentFor(string student)
    {
        var copy = new FixtureCopy(student);
        copy.EditConfig(text => Regex.Replace(text, "\"rope_theta\": [0-9.e+]+", "\"rope_theta\": 1000000.0"));
        return copy;
    }

    private static float[] Read(IBackend backend, Tensor t)
    {
        var values = new float[t.ElementCount];
        backend.Download(t, values);
        return values;
    }

    /// <summary>The teacher's per-layer (input_layernorm output, attention output) on fresh windows, as float arrays.</summary>
    private static (List<float[]> Inputs, List<float[]> Outputs) Taps(CausalLM model, int[] tokens, int windows, int length)
    {
        var inputs = new List<float[]>();
        var outputs = new List<float[]>();
        model.ForwardLayers(tokens, windows, length, (l, x, y) =>
        {
            Assert.Equal(inputs.Count, l);
            inputs.Add(Read(model.Backend, x));
            outputs.Add(Read(model.Backend, y));
        });
        return (inputs, outputs);
    }

    [Theory]
    [InlineData("rwkv6", 2, 5)]
    [InlineData("rwkv6-rope", 2, 5)]
    [InlineData("rwkv7", 2, 5)]
    [InlineData("rwkv7-groupnorm", 2, 5)]
    [InlineData("rwkv6", 3, 1)]
    [InlineData("rwkv7", 3, 1)]
    [InlineData("rwkv7-groupnorm", 1, 17)]
    public void GradientsMatchFiniteDifferencesOfTheFloat64Student(string student, int windows, int length)
    {
        using var copy = StudentFor(student);
        using var objective = Step1Objective.Open(new CpuBackend(), Fixtures.Directory(Teacher), copy.Directory);
        CheckGradients(objective, $"{student} {windows}×{length}", windows, length);
    }

    /// <summary>
    /// Converted students start with zero LoRA factors and gates; moved off that point (every parameter + N(0, 0.1)),
    /// the RAD-RWKV6 GroupNorm variant (no k·(1−w) balancing) and both RAD-RWKV7 variants check as the golden ones.
    /// </summary>
    [Theory]
    [InlineData(StudentArchitecture.RadRwkv6, StudentVariant.GroupNorm)]
    [InlineData(StudentArchitecture.RadRwkv7, StudentVariant.Balanced)]
    public void GradientsOfAMovedConvertedStudentMatchFiniteDifferences(StudentArchitecture architecture, StudentVariant variant)
    {
        using var converted = ConvertedStudent.FromFixture(Teacher, architecture, variant);
        var backend = new CpuBackend();
        using var objective = Step1Objective.Open(backend, Fixtures.Directory(Teacher), converted.Directory);
        var data = new TestData(308);
        foreach (var p in objective.Parameters)
        {
            var noise = data.Normal((int)p.Value.ElementCount, 0.1f);
            backend.Upload(Read(backend, p.Value).Zip(noise, (a, b) => a + b).ToArray(), p.Value);
        }

        CheckGradients(objective, $"converted {architecture} {variant}", 2, 4);
    }

    private static void CheckGradients(Step1Objective objective, string what, int windows, int length)
    {
        var backend = new CpuBackend();
        var tokens = new TestData(301).Ints(windows * length, 400);
        double loss = objective.ForwardBackward(tokens, windows, length);

        List<float[]> inputs, outputs;
        using (var teacher = CausalLM.Load(Fixtures.Directory(Teacher), backend))
        {
            (inputs, outputs) = Taps(teacher, tokens, windows, length);
        }

        var values = objective.Parameters.ToDictionary(p => p.Name, p => ToDouble(Read(backend, p.Value)));
        var naive = new NaiveStudent(objective.StudentConfig, windows, length, values);
        var x = inputs.Select(ToDouble).ToList();
        var o = outputs.Select(ToDouble).ToList();
        double Loss() => naive.Loss(x, o);
        double expected = Loss();
        Assert.True(expected > 0.01, $"loss {expected}: the student should not match the teacher yet");
        Assert.Equal(expected, loss, expected * Tolerances.RecurrenceRelative);

        // Every parameter tensor, a few elements each (all of a small one): d(mean loss)/dθ by central differences.
        var pick = new Random(302);
        foreach (var p in objective.Parameters)
        {
            var theta = values[p.Name];
            var indices = theta.Length <= 4 ? Enumerable.Range(0, theta.Length).ToArray()
                : Enumerable.Range(0, 4).Select(_ => pick.Next(theta.Length)).Distinct().ToArray();
            var fd = indices.Select(i =>
            {
                var one = new[] { theta[i] };
                var g = FiniteDifferences.Gradient(one, () =>
                {
                    theta[i] = one[0];
                    return Loss();
                });
                theta[i] = one[0];
                return g[0];
            }).ToArray();
            // The floor scales with the whole tensor's gradient (the sampled elements may all be small ones, whose finite
            // differences carry the double rounding of the loss, ~1e-16·L/h ≈ 1e-10·L).
            var grad = Read(backend, p.Grad);
            double scale = Math.Max(fd.Max(Math.Abs), grad.Max(v => Math.Abs((double)v)));
            Assert.True(scale > 0, $"{what} d{p.Name}: the gradient is zero everywhere");
            for (int j = 0; j < indices.Length; j++)
            {
                double actual = grad[indices[j]];
                double bound = (Tolerances.Step1GradientRelative * Math.Abs(fd[j])) + (Tolerances.Step1GradientRelativeToMax * scale);
                Assert.True(double.IsFinite(actual) && Math.Abs(actual - fd[j]) <= bound,
                    $"{what} d{p.Name}[{indices[j]}]: expected {fd[j]:G9} got {actual:G9} (bound {bound:G3}, tensor scale {scale:G3})");
            }
        }
    }

    [Theory]
    [MemberData(nameof(Students))]
    public void TheTrainingForwardIsTheInferenceMixerBitForBit(string student)
    {
        var backend = new CpuBackend();
        const int Windows = 2, Length = 7;
        var tokens = new TestData(303).Ints(Windows * Length, 400);
        using var model = CausalLM.Load(Fixtures.Directory(student), backend);
        // The inference student on its own residual stream: each layer's mixer input and output.
        var (inputs, outputs) = Taps(model, tokens, Windows, Length);
        using var checkpoint = Checkpoint.Open(Fixtures.Directory(student));
        var source = new CheckpointParameterSource(checkpoint);
        using var pass = new StudentPass(backend, backend.BackwardOps, Windows, Length);
        var saved = new List<IDisposable>();
        try
        {
            for (int l = 0; l < model.Config.NumHiddenLayers; l++)
            {
                StudentMixer mixer = model.Config.Architecture == Architecture.Rwkv6Qwen2
                    ? new Rwkv6StudentMixer(backend, source, model.Config, l)
                    : new Rwkv7StudentMixer(backend, source, model.Config, l);
                saved.Add(mixer);
                var x = backend.FromFloats(inputs[l], Windows * Length, model.Config.HiddenSize);
                var y = backend.Allocate(Windows * Length, model.Config.HiddenSize);
                saved.Add(x);
                saved.Add(y);
                saved.Add(mixer.Forward(pass, x, y));
                Assert.True(outputs[l].AsSpan().SequenceEqual(Read(backend, y)), $"{student} layer {l}: training forward differs from inference");
            }
        }
        finally
        {
            foreach (var d in saved)
            {
                d.Dispose();
            }
        }
    }

    /// <summary>
    /// The invariant behind the teacher side: what <see cref="CausalLM.ForwardLayers"/> hands over per layer is the
    /// teacher's input_layernorm output and its own Qwen2 attention of that input (float64 here), and tapping does not
    /// change the normal forward.
    /// </summary>
    [Fact]
    public void TeacherTapsAreTheNormalisedInputAndTheTeachersAttentionOutput()
    {
        var backend = new CpuBackend();
        const int Windows = 2, Length = 6;
        var tokens = new TestData(304).Ints(Windows * Length, 400);
        using var model = CausalLM.Load(Fixtures.Directory(Teacher), backend);
        float[] before;
        using (var state = model.CreateState())
        {
            before = model.Forward(state, tokens.AsSpan(0, Length), allLogits: true);
        }

        var (inputs, outputs) = Taps(model, tokens, Windows, Length);
        using (var state = model.CreateState())
        {
            Assert.Equal(before, model.Forward(state, tokens.AsSpan(0, Length), allLogits: true));
        }

        var c = model.Config;
        using var checkpoint = Checkpoint.Open(Fixtures.Directory(Teacher));
        var embed = checkpoint.ReadFloat32("model.embed_tokens.weight", c.VocabSize, c.HiddenSize);
        var h0 = tokens.SelectMany(t => embed.AsSpan(t * c.HiddenSize, c.HiddenSize).ToArray()).ToArray();
        var norm0 = RmsNorm(h0, checkpoint.ReadVector("model.layers.0.input_layernorm.weight", c.HiddenSize), c.HiddenSize, c.RmsNormEps);
        Compare.Close(norm0, inputs[0], Tolerances.OpRelative, Tolerances.OpAbsolute, "layer 0 input");

        int kv = c.NumKeyValueHeads * c.HeadDim;
        int a = c.NumAttentionHeads * c.HeadDim;
        for (int l = 0; l < c.NumHiddenLayers; l++)
        {
            string p = $"model.layers.{l}.self_attn.";
            var x = ToDouble(inputs[l]);
            double[] Proj(string name, int m) => MatMul(x, ToDouble(checkpoint.ReadFloat32(p + name + ".weight", m, c.HiddenSize)),
                ToDouble(checkpoint.ReadVector(p + name + ".bias", m)), Windows * Length, c.HiddenSize, m, true);
            var (q, k, v) = (Proj("q_proj", a), Proj("k_proj", kv), Proj("v_proj", kv));
            var o = new List<double>();
            for (int w = 0; w < Windows; w++)
            {
                var qw = Rope(Rows(q, w * Length, Length, a), Length, c.NumAttentionHeads, c.HeadDim, 0, c.RopeTheta);
                var kw = Rope(Rows(k, w * Length, Length, kv), Length, c.NumKeyValueHeads, c.HeadDim, 0, c.RopeTheta);
                o.AddRange(AttentionDouble(qw, kw, Rows(v, w * Length, Length, kv), Length, c.NumAttentionHeads, c.NumKeyValueHeads, c.HeadDim));
            }

            var y = MatMul(o.ToArray(), ToDouble(checkpoint.ReadFloat32(p + "o_proj.weight", c.HiddenSize, a)), null, Windows * Length, a, c.HiddenSize, true);
            Compare.Close(y, outputs[l], Tolerances.OpRelative, Tolerances.OpAbsolute, $"layer {l} attention output");
        }
    }

    /// <summary>Causal GQA softmax attention of one window from position 0, float64.</summary>
    private static double[] AttentionDouble(double[] q, double[] k, double[] v, int t, int heads, int kvHeads, int n)
    {
        var y = new double[t * heads * n];
        int g = heads / kvHeads;
        for (int p = 0; p < t; p++)
        {
            for (int h = 0; h < heads; h++)
            {
                var scores = new double[p + 1];
                for (int j = 0; j <= p; j++)
                {
                    double s = 0;
                    for (int i = 0; i < n; i++)
                    {
                        s += q[(p * heads * n) + (h * n) + i] * k[(j * kvHeads * n) + (h / g * n) + i];
                    }

                    scores[j] = s / Math.Sqrt(n);
                }

                double max = scores.Max();
                double sum = scores.Sum(s => Math.Exp(s - max));
                for (int j = 0; j <= p; j++)
                {
                    double pj = Math.Exp(scores[j] - max) / sum;
                    for (int i = 0; i < n; i++)
                    {
                        y[(p * heads * n) + (h * n) + i] += pj * v[(j * kvHeads * n) + (h / g * n) + i];
                    }
                }
            }
        }

        return y;
    }

    /// <summary>
    /// Windows are independent sequences: the loss of a batch is the mean of the windows' losses and the gradient the
    /// mean of their gradients; a second call adds the same gradient again (the loop zeroes between steps).
    /// </summary>
    [Theory]
    [InlineData("rwkv6")]
    [InlineData("rwkv7")]
    public void WindowsAreIndependentAndGradientsAccumulate(string student)
    {
        using var copy = StudentFor(student);
        var backend = new CpuBackend();
        const int Length = 6;
        var tokens = new TestData(305).Ints(2 * Length, 400);
        float[][] Run(Step1Objective o, ReadOnlySpan<int> t, int windows, out double loss)
        {
            loss = o.ForwardBackward(t, windows, Length);
            return o.Parameters.Select(p => Read(backend, p.Grad)).ToArray();
        }

        using var both = Step1Objective.Open(backend, Fixtures.Directory(Teacher), copy.Directory);
        using var first = Step1Objective.Open(backend, Fixtures.Directory(Teacher), copy.Directory);
        using var second = Step1Objective.Open(backend, Fixtures.Directory(Teacher), copy.Directory);
        var gBoth = Run(both, tokens, 2, out double lBoth);
        var g1 = Run(first, tokens.AsSpan(0, Length), 1, out double l1);
        var g2 = Run(second, tokens.AsSpan(Length), 1, out double l2);
        Assert.Equal((l1 + l2) / 2, lBoth, 1e-12 * lBoth);
        // The per-layer parts: one per student layer, their mean the loss.
        Assert.Equal(both.StudentConfig.NumHiddenLayers, both.LayerLosses.Count);
        Assert.Equal(lBoth, both.LayerLosses.Average(), 1e-12 * lBoth);
        Assert.All(both.LayerLosses, part => Assert.True(part > 0 && double.IsFinite(part), $"layer loss {part}"));
        for (int i = 0; i < gBoth.Length; i++)
        {
            var mean = g1[i].Zip(g2[i], (a, b) => ((double)a + b) / 2).ToArray();
            Compare.Gradient(mean, gBoth[i], Tolerances.OpRelative, Tolerances.OpRelative, $"{student} d{both.Parameters[i].Name} (2 windows vs each alone)",
                mayBeZero: true);
        }

        var again = Run(both, tokens, 2, out double lAgain);
        Assert.Equal(lBoth, lAgain);
        for (int i = 0; i < gBoth.Length; i++)
        {
            Compare.Gradient(gBoth[i].Select(v => 2.0 * v).ToArray(), again[i], Tolerances.OpRelative, Tolerances.OpRelative,
                $"{student} d{both.Parameters[i].Name} after two calls", mayBeZero: true);
        }
    }

    /// <summary>
    /// The step's FLOP estimate on the fixture pair (teacher C 64, A 64, KV width 32, intermediate 160, 3 layers; student
    /// N 16, H 4), counted by hand: teacher matrices 64·(64 + 32 + 32) + 64·64 + 3·64·160 = 43,008 per layer, 2·43,008 +
    /// 2·64·(L + 1) per layer and token; recurrence 48·16²·4 = 49,152 per layer; student matrices 6 per element.
    /// </summary>
    [Fact]
    public void FlopsPerTokenCountsTeacherStudentAndRecurrence()
    {
        using var copy = StudentFor("rwkv7");
        using var objective = Step1Objective.Open(new CpuBackend(), Fixtures.Directory(Teacher), copy.Directory);
        double studentMatrices = objective.Parameters.Where(p => p.Value.Shape.Length == 2).Sum(p => (double)p.Value.ElementCount);
        Assert.True(studentMatrices > 0);
        Assert.Equal((3 * ((2 * 43_008) + (2 * 64 * 6))) + (6 * studentMatrices) + (3 * 49_152), objective.FlopsPerToken(5));
        Assert.Equal(3 * 2 * 64 * 100, objective.FlopsPerToken(105) - objective.FlopsPerToken(5));
    }

    /// <summary>
    /// Profiled (the CPU backend wrapped in <see cref="ProfilingBackend"/>, as `distill --profile` does), a step gives
    /// the same loss and gradients bit for bit, and the table names the teacher's forward ops, the student's batched
    /// recurrences (one call per layer for all windows) and the backward ops.
    /// </summary>
    [Theory]
    [InlineData("rwkv7", "Wkv7")]
    [InlineData("rwkv6", "Wkv6")]
    public void ProfiledStepMatchesAndTimesEveryOpKind(string student, string recurrence)
    {
        using var copy = StudentFor(student);
        const int Windows = 3, Length = 5, Layers = 3;
        var tokens = new TestData(307).Ints(Windows * Length, 400);
        var plainBackend = new CpuBackend();
        var profiled = new ProfilingBackend(new CpuBackend());
        using var plain = Step1Objective.Open(plainBackend, Fixtures.Directory(Teacher), copy.Directory);
        using var timed = Step1Objective.Open(profiled, Fixtures.Directory(Teacher), copy.Directory);
        Assert.Equal(plain.ForwardBackward(tokens, Windows, Length), timed.ForwardBackward(tokens, Windows, Length));
        for (int i = 0; i < plain.Parameters.Count; i++)
        {
            Assert.Equal(Read(plainBackend, plain.Parameters[i].Grad), Read(profiled, timed.Parameters[i].Grad));
        }

        var report = profiled.Profile.Report().ToDictionary(r => r.Op, r => r.Calls);
        Assert.Equal(Layers, report[recurrence + "Sequences"]);
        Assert.Equal(Layers, report[recurrence + "BackwardSequences"]);
        Assert.False(report.ContainsKey(recurrence + "Backward"), "the training step should batch its windows");
        Assert.True(report["MatMulBackward"] > Layers);
        Assert.Equal(Layers, report["AlignmentLoss"]);
        Assert.True(report.ContainsKey("AddRmsNormMatMulShared"), "the teacher's forward is timed too");
    }

    [Theory]
    [InlineData(StudentArchitecture.RadRwkv7, StudentVariant.Balanced)]
    [InlineData(StudentArchitecture.RadRwkv7, StudentVariant.GroupNorm)]
    [InlineData(StudentArchitecture.RadRwkv6, StudentVariant.Balanced)]
    public void TrainedStudentIsWrittenLoadsAndRunsWithTheTrainedWeights(StudentArchitecture architecture, StudentVariant variant)
    {
        using var converted = ConvertedStudent.FromFixture(Teacher, architecture, variant, dtype: DType.F32);
        var backend = new CpuBackend();
        const int Windows = 2, Length = 5;
        var data = new TestData(306);
        using var objective = Step1Objective.Open(backend, Fixtures.Directory(Teacher), converted.Directory);
        double firstLoss = 0, lastLoss = 0;
        for (int step = 0; step < 3; step++)
        {
            double loss = objective.ForwardBackward(data.Ints(Windows * Length, 400), Windows, Length);
            (firstLoss, lastLoss) = (step == 0 ? loss : firstLoss, loss);
            // Plain SGD, then zero the gradients.
            foreach (var p in objective.Parameters)
            {
                var value = Read(backend, p.Value);
                var grad = Read(backend, p.Grad);
                for (int i = 0; i < value.Length; i++)
                {
                    value[i] -= 0.5f * grad[i];
                }

                backend.Upload(value, p.Value);
                backend.Upload(new float[grad.Length], p.Grad);
            }
        }

        Assert.True(double.IsFinite(lastLoss) && lastLoss > 0);
        using var temp = new Checkpoints.TempDir();
        string output = Path.Combine(temp.Path, "trained");
        objective.WriteStudent(output);
        Assert.True(File.Exists(Path.Combine(output, "config.json")));
        Assert.True(File.Exists(Path.Combine(output, "tokenizer.json")));

        // The written student loads; on its own residual stream, every layer's mixer output is the output of the
        // in-memory trained mixer on the same input (f32 checkpoint: bit for bit) and differs from the untrained one.
        using var model = CausalLM.Load(output, backend);
        var tokens = data.Ints(Windows * Length, 400);
        var (inputs, outputs) = Taps(model, tokens, Windows, Length);
        using var original = Checkpoint.Open(converted.Directory);
        var originalSource = new CheckpointParameterSource(original);
        // One pass each: a RAD-RWKV7 pass carries its own layer 0's v_first.
        using var pass = new StudentPass(backend, backend.BackwardOps, Windows, Length);
        using var beforePass = new StudentPass(backend, backend.BackwardOps, Windows, Length);
        var keep = new List<IDisposable>();
        try
        {
            for (int l = 0; l < model.Config.NumHiddenLayers; l++)
            {
                var x = backend.FromFloats(inputs[l], Windows * Length, model.Config.HiddenSize);
                var trained = backend.Allocate(Windows * Length, model.Config.HiddenSize);
                var untrained = backend.Allocate(Windows * Length, model.Config.HiddenSize);
                StudentMixer before = architecture == StudentArchitecture.RadRwkv6
                    ? new Rwkv6StudentMixer(backend, originalSource, model.Config, l)
                    : new Rwkv7StudentMixer(backend, originalSource, model.Config, l);
                keep.AddRange([x, trained, untrained, before]);
                keep.Add(objective.Mixers[l].Forward(pass, x, trained));
                keep.Add(before.Forward(beforePass, x, untrained));
                Assert.True(outputs[l].AsSpan().SequenceEqual(Read(backend, trained)), $"layer {l}: written student differs from the trained parameters");
                Assert.False(outputs[l].AsSpan().SequenceEqual(Read(backend, untrained)), $"layer {l}: training changed nothing");
            }
        }
        finally
        {
            foreach (var d in keep)
            {
                d.Dispose();
            }
        }

        // Untrained tensors are the student's bytes.
        using var written = Checkpoint.Open(output);
        Assert.Equal(original.Names, written.Names);
        foreach (var name in original.Names.Where(n => !objective.Parameters.Any(p => p.Name == n)))
        {
            Assert.True(Bytes(original.Get(name)).SequenceEqual(Bytes(written.Get(name))), name);
        }

        // Writing over a non-empty folder needs overwrite; the student's own and the teacher's folders are refused.
        var error = Assert.Throws<RadladsException>(() => objective.WriteStudent(output));
        Assert.Contains("not empty", error.Message, StringComparison.Ordinal);
        objective.WriteStudent(output, overwrite: true);
        Assert.Contains("student being trained", Assert.Throws<RadladsException>(() => objective.WriteStudent(converted.Directory, overwrite: true)).Message,
            StringComparison.Ordinal);
        Assert.Contains("teacher", Assert.Throws<RadladsException>(() => objective.WriteStudent(Fixtures.Directory(Teacher), overwrite: true)).Message,
            StringComparison.Ordinal);
        Assert.True(lastLoss < firstLoss, $"SGD did not lower the loss ({firstLoss} → {lastLoss})");
    }

    [Fact]
    public void ABf16StudentIsWrittenAsTheParametersRoundedToBf16()
    {
        using var converted = ConvertedStudent.FromFixture(Teacher, StudentArchitecture.RadRwkv7);
        var backend = new CpuBackend();
        using var objective = Step1Objective.Open(backend, Fixtures.Directory(Teacher), converted.Directory);
        var data = new TestData(307);
        foreach (var p in objective.Parameters)
        {
            backend.Upload(data.Normal((int)p.Value.ElementCount, 0.1f), p.Value);
        }

        using var temp = new Checkpoints.TempDir();
        objective.WriteStudent(temp.Path); // an empty folder is filled
        using var written = Checkpoint.Open(temp.Path);
        foreach (var p in objective.Parameters)
        {
            var expected = Read(backend, p.Value).Select(Bf16.FromSingle).ToArray();
            var tensor = written.Get(p.Name);
            Assert.Equal(DType.BF16, tensor.DType);
            Assert.True(System.Runtime.InteropServices.MemoryMarshal.Cast<byte, ushort>(Bytes(tensor)).SequenceEqual(expected), p.Name);
        }
    }

    private static unsafe byte[] Bytes(TensorData data) => new ReadOnlySpan<byte>(data.Pointer, checked((int)data.ByteLength)).ToArray();

    [Fact]
    public void OpenNamesWhatIsWrong()
    {
        var backend = new CpuBackend();
        using var copy = StudentFor("rwkv7");
        string Error(Action open) => Assert.Throws<RadladsException>(open).Message;
        Assert.Contains("not a qwen2 teacher", Error(() => Step1Objective.Open(backend, copy.Directory, copy.Directory)), StringComparison.Ordinal);
        Assert.Contains("not a RAD-RWKV student", Error(() => Step1Objective.Open(backend, Fixtures.Directory(Teacher), Fixtures.Directory(Teacher))),
            StringComparison.Ordinal);
        Assert.Contains("does not exist", Error(() => Step1Objective.Open(backend, Fixtures.Directory(Teacher), Path.Combine(copy.Directory, "nope"))),
            StringComparison.Ordinal);
        var demo = Path.Combine(Fixtures.RepositoryRoot, "models", "demo-teacher");
        var mismatch = Error(() => Step1Objective.Open(backend, demo, copy.Directory));
        Assert.Contains("was not converted from teacher", mismatch, StringComparison.Ordinal);
        Assert.Contains("hidden_size: teacher 384, student 64", mismatch, StringComparison.Ordinal);
        Assert.Contains("cannot train", Error(() => Step1Objective.Open(new NoBackward(backend), Fixtures.Directory(Teacher), copy.Directory)),
            StringComparison.Ordinal);

        using var objective = Step1Objective.Open(backend, Fixtures.Directory(Teacher), copy.Directory);
        Assert.Contains("outside the teacher's vocabulary", Error(() => objective.ForwardBackward([1, 2, 400], 1, 3)), StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => objective.ForwardBackward([1, 2, 3], 2, 2));
        Assert.Throws<ArgumentException>(() => objective.ForwardBackward([], 0, 0));
    }

    [Fact]
    public void DisposeReleasesTheObjective()
    {
        var backend = new CpuBackend();
        using var copy = StudentFor("rwkv6");
        var objective = Step1Objective.Open(backend, Fixtures.Directory(Teacher), copy.Directory);
        Assert.NotEmpty(objective.Parameters);
        objective.Dispose();
        objective.Dispose();
        Assert.Throws<ObjectDisposedException>(() => objective.ForwardBackward([1], 1, 1));
    }

    /// <summary>A backend that cannot train: the CPU backend without its backward ops.</summary>
    private sealed class NoBackward(CpuBackend inner) : IBackend
    {
        public string Name => "nobackward";

        public string Description => "test";

        public IOps Ops => inner.Ops;

        public Tensor Allocate(params int[] shape) => inner.Allocate(shape);

        public Tensor LoadWeight(TensorData data) => inner.LoadWeight(data);

        public Tensor FromFloats(ReadOnlySpan<float> values, params int[] shape) => inner.FromFloats(values, shape);

        public void Upload(ReadOnlySpan<float> source, Tensor destination) => inner.Upload(source, destination);

        public void Download(Tensor source, Span<float> destination) => inner.Download(source, destination);

        public void Copy(Tensor source, Tensor destination) => inner.Copy(source, destination);

        public void Dispose()
        {
        }
    }
}
