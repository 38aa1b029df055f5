using System.Runtime.InteropServices;
using System.Text.Json;
using Radlads.Checkpoints;
using Radlads.Conversion;
using Radlads.Cpu;
using Radlads.Models;
using Radlads.Tests.Checkpoints;
using Radlads.Tests.Cli;
using Radlads.Tests.Models;

namespace Radlads.Tests.Convert;

/// <summary>
/// `radlads convert` on the two Qwen2 golden fixtures (untied and tied): the student loads, keeps the teacher's
/// bytes, has the names and shapes of the spec-built golden students, and starts from the spec's init values.
/// </summary>
public sealed class ConvertTests
{
    public static TheoryData<string, StudentArchitecture, StudentVariant> AllConversions()
    {
        var data = new TheoryData<string, StudentArchitecture, StudentVariant>();
        foreach (var teacher in new[] { "qwen2", "qwen2-tied" })
        {
            foreach (var architecture in new[] { StudentArchitecture.RadRwkv6, StudentArchitecture.RadRwkv7 })
            {
                foreach (var variant in new[] { StudentVariant.Balanced, StudentVariant.GroupNorm })
                {
                    data.Add(teacher, architecture, variant);
                }
            }
        }

        return data;
    }

    public static TheoryData<string> Teachers => new("qwen2", "qwen2-tied");

    [Theory]
    [MemberData(nameof(AllConversions))]
    public void TheStudentLoadsRunsAndInfoShowsItsVariantAndRanks(string teacher, StudentArchitecture architecture, StudentVariant variant)
    {
        using var student = ConvertedStudent.FromFixture(teacher, architecture, variant);
        using (var model = CausalLM.Load(student.Directory, new CpuBackend()))
        {
            Assert.Equal(architecture == StudentArchitecture.RadRwkv6 ? Radlads.Models.Architecture.Rwkv6Qwen2 : Radlads.Models.Architecture.Rwkv7Qwen2, model.Config.Architecture);
            Assert.False(model.TiedEmbeddings);
            using var state = model.CreateState();
            var logits = model.Forward(state, GoldenLogitsTests.Tokens(teacher), allLogits: true);
            Assert.All(logits, v => Assert.True(float.IsFinite(v)));
        }

        var (exit, output, error) = CliRunner.Run("info", "--model", student.Directory);
        Assert.True(exit == 0, error);
        // C = 64: every calc_lora_rank value is max(1, round(…)) · 32 = 32.
        string expected = (architecture, variant) switch
        {
            (StudentArchitecture.RadRwkv6, StudentVariant.Balanced) => "layers 0-2: RAD-RWKV6 (token shift on, Rm=32, Rd=32, gate FullRank, no norm)",
            (StudentArchitecture.RadRwkv6, _) => "layers 0-2: RAD-RWKV6 (token shift on, Rm=32, Rd=32, gate FullRank, GroupNorm)",
            (_, StudentVariant.Balanced) => "layers 1-2: RAD-RWKV7 variant B (balanced keys, ×N^-1/2) (Rw=32, Ra=32, Rv=32, gate LowRank Rg=32)",
            _ => "layers 1-2: RAD-RWKV7 variant G (stock keys, GroupNorm) (Rw=32, Ra=32, Rv=32, gate LowRank Rg=32)",
        };
        Assert.Contains(expected, output, StringComparison.Ordinal);
        Assert.DoesNotContain("tied embeddings", output, StringComparison.Ordinal);
    }

    [Theory]
    [MemberData(nameof(AllConversions))]
    public void ConfigJsonKeepsTheTeachersFieldsAndSetsTheRadRwkvOnes(string teacher, StudentArchitecture architecture, StudentVariant variant)
    {
        using var student = ConvertedStudent.FromFixture(teacher, architecture, variant);
        using var teacherConfig = JsonDocument.Parse(File.ReadAllText(Path.Combine(Fixtures.Directory(teacher), "config.json")));
        using var config = JsonDocument.Parse(File.ReadAllText(Path.Combine(student.Directory, "config.json")));
        var c = config.RootElement;
        bool v6 = architecture == StudentArchitecture.RadRwkv6;
        var changed = new HashSet<string> { "architectures", "model_type", "tie_word_embeddings", "torch_dtype" };
        foreach (var field in teacherConfig.RootElement.EnumerateObject().Where(f => !changed.Contains(f.Name)))
        {
            Assert.Equal(field.Value.GetRawText(), c.GetProperty(field.Name).GetRawText());
        }

        Assert.Equal(v6 ? "rwkv6qwen2" : "rwkv7qwen2", c.GetProperty("model_type").GetString());
        Assert.Equal(v6 ? "RWKV6Qwen2ForCausalLM" : "RWKV7Qwen2ForCausalLM", c.GetProperty("architectures")[0].GetString());
        Assert.False(c.GetProperty("tie_word_embeddings").GetBoolean());
        Assert.Equal("bfloat16", c.GetProperty("torch_dtype").GetString());
        Assert.Equal(!v6, c.GetProperty("use_rope").GetBoolean());
        Assert.Equal(v6, c.GetProperty("use_tokenshift").GetBoolean());
        Assert.Equal(v6 ? 1 : 2, c.GetProperty("gate_rank_type").GetInt32());
        Assert.Equal(variant == StudentVariant.Balanced, c.GetProperty("balance_state").GetBoolean());
        Assert.Equal(variant == StudentVariant.GroupNorm, c.GetProperty("groupnorm_att").GetBoolean());
        Assert.False(c.GetProperty("attention_output_bias").GetBoolean());
        var rankKeys = v6
            ? new[] { "lora_rank_tokenshift", "lora_rank_decay" }
            : ["lora_rank_decay", "lora_rank_iclr", "lora_rank_value_residual_mix", "lora_rank_gate"];
        Assert.All(rankKeys, key => Assert.Equal(32, c.GetProperty(key).GetInt32()));
        foreach (var file in new[] { "tokenizer.json", "generation_config.json" })
        {
            Assert.Equal(File.ReadAllBytes(Path.Combine(Fixtures.Directory(teacher), file)), File.ReadAllBytes(Path.Combine(student.Directory, file)));
        }
    }

    [Theory]
    [MemberData(nameof(AllConversions))]
    public void CopiedTensorsAreBitIdenticalToTheTeachers(string teacher, StudentArchitecture architecture, StudentVariant variant)
    {
        using var student = ConvertedStudent.FromFixture(teacher, architecture, variant);
        using var t = Checkpoint.Open(Fixtures.Directory(teacher));
        using var s = Checkpoint.Open(student.Directory);
        bool tied = !t.Contains("lm_head.weight");
        Assert.Equal(teacher == "qwen2-tied", tied);
        var expected = new List<string> { "model.embed_tokens.weight", "model.norm.weight", "lm_head.weight" };
        for (int l = 0; l < 3; l++)
        {
            expected.AddRange(new[]
            {
                "input_layernorm.weight", "post_attention_layernorm.weight", "mlp.gate_proj.weight", "mlp.up_proj.weight", "mlp.down_proj.weight",
                "self_attn.q_proj.weight", "self_attn.q_proj.bias", "self_attn.k_proj.weight", "self_attn.k_proj.bias",
                "self_attn.v_proj.weight", "self_attn.v_proj.bias", "self_attn.o_proj.weight",
            }.Select(n => $"model.layers.{l}.{n}"));
        }

        Assert.Equal(expected.Order(StringComparer.Ordinal),
            student.Result.Plan.Tensors.Where(x => x.Origin == TensorOrigin.Teacher).Select(x => x.Name).Order(StringComparer.Ordinal));
        foreach (var name in expected)
        {
            // A tied teacher's head is its embedding: the student's untied head starts as a copy of it.
            string source = name == "lm_head.weight" && tied ? "model.embed_tokens.weight" : name;
            Assert.Equal(Bytes(t.Get(source)), Bytes(s.Get(name)));
            Assert.Equal(t.Get(source).Shape, s.Get(name).Shape);
            Assert.Equal(DType.BF16, s.Get(name).DType);
        }
    }

    [Theory]
    [InlineData("qwen2", StudentArchitecture.RadRwkv6, StudentVariant.Balanced, "rwkv6")]
    [InlineData("qwen2", StudentArchitecture.RadRwkv7, StudentVariant.Balanced, "rwkv7")]
    [InlineData("qwen2-tied", StudentArchitecture.RadRwkv7, StudentVariant.GroupNorm, "rwkv7-groupnorm")]
    public void NamesAndShapesEqualThoseOfTheGoldenStudentsBuiltFromTheSpec(string teacher, StudentArchitecture architecture, StudentVariant variant, string golden)
    {
        // The golden students (tests/golden/make_golden.py) were written from the spec by other code, with ranks
        // Rm 8, Rd 12 (v6) and Rw 8, Ra 12, Rv 4, Rg 20 (v7); the same ranks must give the same tensors.
        var ranks = architecture == StudentArchitecture.RadRwkv6
            ? new LoraRankOverrides { TokenShift = 8, Decay = 12 }
            : new LoraRankOverrides { Decay = 8, Iclr = 12, ValueResidualMix = 4, Gate = 20 };
        using var student = ConvertedStudent.FromFixture(teacher, architecture, variant, ranks: ranks);
        using var reference = Checkpoint.Open(Fixtures.Directory(golden));
        using var ours = Checkpoint.Open(student.Directory);
        // The tied golden student has no head tensor; ours is always untied.
        var expectedNames = reference.Names.Append("lm_head.weight").Distinct().Order(StringComparer.Ordinal).ToArray();
        Assert.Equal(expectedNames, ours.Names.ToArray());
        foreach (var name in reference.Names)
        {
            Assert.True(reference.Get(name).Shape.SequenceEqual(ours.Get(name).Shape),
                $"{name}: golden {reference.Get(name).ShapeText}, converted {ours.Get(name).ShapeText}");
        }
    }

    [Theory]
    [MemberData(nameof(Teachers))]
    public void Rwkv7InitValuesAreThoseOfTheSpec(string teacher)
    {
        foreach (var variant in new[] { StudentVariant.Balanced, StudentVariant.GroupNorm })
        {
            using var student = ConvertedStudent.FromFixture(teacher, StudentArchitecture.RadRwkv7, variant);
            using var s = Checkpoint.Open(student.Directory);
            const int L = 3, C = 64, H = 4, N = 16;
            for (int l = 0; l < L; l++)
            {
                string p = $"model.layers.{l}.self_attn.";
                // w0[n] = −7 + 5·(n/(C−1))^(0.85 + (l/(L−1))^0.5) + 0.5, the +0.5 added in float32 as the trainer does.
                var w0 = s.ReadVector(p + "w0", C);
                for (int n = 0; n < C; n++)
                {
                    float speed = (float)(-7.0 + (5.0 * Math.Pow(n / (double)(C - 1), 0.85 + Math.Sqrt(l / (double)(L - 1)))));
                    Assert.Equal(Bf16Round(speed + 0.5f), w0[n]);
                }

                Assert.Equal(-6.5f, w0[0]);
                Assert.Equal(-1.5f, w0[C - 1]);
                AssertAll(s, p + "a0", 0f);
                AssertAll(s, p + "v0", 1f);
                AssertAll(s, p + "k_k", Bf16Round(0.85f));
                AssertAll(s, p + "k_a", 1f);
                AssertAll(s, p + "r_k", 0f);
                Assert.Equal([H, N], s.Get(p + "r_k").Shape);
                foreach (var (down, up) in new[] { ("w1", "w2"), ("a1", "a2"), ("v1", "v2"), ("g1", "g2") })
                {
                    AssertAll(s, p + down, 0f);
                    AssertOrthogonalRows(s.ReadFloat32(p + up, 32, C), 32, C, Tolerances.OrthogonalGramBf16, p + up);
                }

                Assert.Equal(variant == StudentVariant.GroupNorm, s.Contains(p + "ln_x.weight"));
                if (variant == StudentVariant.GroupNorm)
                {
                    AssertAll(s, p + "ln_x.weight", 1f);
                    AssertAll(s, p + "ln_x.bias", 0f);
                    Assert.Equal([C], s.Get(p + "ln_x.weight").Shape);
                }
            }
        }
    }

    [Theory]
    [MemberData(nameof(Teachers))]
    public void Rwkv6InitValuesAreThoseOfTheSpec(string teacher)
    {
        using var student = ConvertedStudent.FromFixture(teacher, StudentArchitecture.RadRwkv6);
        using var s = Checkpoint.Open(student.Directory);
        const int L = 3, C = 64, A = 64, R = 32;
        for (int l = 0; l < L; l++)
        {
            string p = $"model.layers.{l}.self_attn.";
            // time_decay[n] = −6 + 5·(n/(A−1))^(0.7 + 1.3·l/(L−1)).
            var decay = s.ReadVector(p + "time_decay", A);
            for (int n = 0; n < A; n++)
            {
                Assert.Equal(Bf16Round((float)(-6 + (5 * Math.Pow(n / (double)(A - 1), 0.7 + (1.3 * l / (L - 1)))))), decay[n]);
            }

            Assert.Equal(-6f, decay[0]);
            Assert.Equal(-1f, decay[A - 1]);
            Assert.Equal([1, 1, A], s.Get(p + "time_decay").Shape);
            AssertAll(s, p + "gate.weight", 0f);
            Assert.Equal([A, C], s.Get(p + "gate.weight").Shape);
            AssertAll(s, p + "time_maa_x", 1f);
            foreach (var mix in new[] { "r", "k", "v", "w", "g" })
            {
                AssertAll(s, p + "time_maa_" + mix, 0f);
            }

            AssertAll(s, p + "time_maa_w1", 0f);
            AssertAll(s, p + "time_decay_w1", 0f);
            Assert.Equal([C, 5 * R], s.Get(p + "time_maa_w1").Shape);
            Assert.Equal([5, R, C], s.Get(p + "time_maa_w2").Shape);
            Assert.Equal([R, A], s.Get(p + "time_decay_w2").Shape);
            foreach (var name in new[] { "time_maa_w2", "time_decay_w2" })
            {
                var values = s.ReadFloat32(p + name, s.Get(p + name).Shape);
                float bound = Bf16Round(0.01f); // 0.0100097656: U(−0.01, 0.01) rounded to bf16
                Assert.All(values, v => Assert.InRange(v, -bound, bound));
                // U(−0.01, 0.01): mean 0, standard deviation 0.01/√3 ≈ 0.00577.
                double mean = values.Average(v => (double)v);
                double sd = Math.Sqrt(values.Average(v => (v - mean) * (v - mean)));
                Assert.InRange(mean, -0.001, 0.001);
                Assert.InRange(sd, 0.0052, 0.0063);
            }

            Assert.False(s.Contains(p + "ln_x.weight"));
        }
    }

    [Theory]
    [MemberData(nameof(Teachers))]
    public void Rwkv6TokenShiftIsAnExactNoOpAtInit(string teacher)
    {
        // time_maa_w1 = 0 and λ = 0 make x_r = x_k = x_v = x_w = x_g = x exactly: the logits equal those of the
        // same student with token shift switched off, bit for bit, however many tokens it has seen.
        using var student = ConvertedStudent.FromFixture(teacher, StudentArchitecture.RadRwkv6);
        using var noShift = CopyOf(student.Directory);
        noShift.EditConfig(text => text.Replace("\"use_tokenshift\": true", "\"use_tokenshift\": false", StringComparison.Ordinal));
        var tokens = GoldenLogitsTests.Tokens(teacher);
        using var shifted = CausalLM.Load(student.Directory, new CpuBackend());
        using var plain = CausalLM.Load(noShift.Directory, new CpuBackend());
        Assert.True(shifted.Config.UseTokenShift);
        Assert.False(plain.Config.UseTokenShift);
        Assert.Equal(Logits(plain, tokens), Logits(shifted, tokens));
    }

    [Theory]
    [MemberData(nameof(Teachers))]
    public void Rwkv6GateIsOneHalfEverywhereAtInit(string teacher)
    {
        // σ(0) = 0.5: the student equals one without a gate whose o_proj is halved (scaling by ½ is exact in bf16 and
        // fp32, so the logits agree bit for bit).
        using var student = ConvertedStudent.FromFixture(teacher, StudentArchitecture.RadRwkv6);
        using var halved = CopyOf(student.Directory);
        halved.EditTensors(t => t.Name.EndsWith("self_attn.gate.weight", StringComparison.Ordinal) ? null
            : t.Name.EndsWith("self_attn.o_proj.weight", StringComparison.Ordinal) ? t with { Data = HalveBf16(t.Data) }
            : t);
        var tokens = GoldenLogitsTests.Tokens(teacher);
        using var gated = CausalLM.Load(student.Directory, new CpuBackend());
        using var ungated = CausalLM.Load(halved.Directory, new CpuBackend());
        Assert.Equal("gate FullRank", GateOf(gated));
        Assert.Equal("gate None", GateOf(ungated));
        Assert.Equal(Logits(ungated, tokens), Logits(gated, tokens));
    }

    [Theory]
    [InlineData(StudentArchitecture.RadRwkv6)]
    [InlineData(StudentArchitecture.RadRwkv7)]
    public void TheSameSeedGivesTheSameBytesAndAnotherSeedChangesOnlyTheRandomTensors(StudentArchitecture architecture)
    {
        using var first = ConvertedStudent.FromFixture("qwen2", architecture, seed: 7);
        using var again = ConvertedStudent.FromFixture("qwen2", architecture, seed: 7);
        using var other = ConvertedStudent.FromFixture("qwen2", architecture, seed: 8);
        Assert.Equal(File.ReadAllBytes(first.WeightsPath), File.ReadAllBytes(again.WeightsPath));
        Assert.Equal(File.ReadAllText(Path.Combine(first.Directory, "config.json")), File.ReadAllText(Path.Combine(again.Directory, "config.json")));
        Assert.NotEqual(File.ReadAllBytes(first.WeightsPath), File.ReadAllBytes(other.WeightsPath));

        using var a = Checkpoint.Open(first.Directory);
        using var b = Checkpoint.Open(other.Directory);
        var random = first.Result.Plan.Tensors.Where(t => t.Source is "orthogonal × 0.1" or "U(−0.01, 0.01)").Select(t => t.Name).ToHashSet();
        Assert.Equal(architecture == StudentArchitecture.RadRwkv6 ? 6 : 12, random.Count);
        foreach (var name in a.Names)
        {
            Assert.Equal(!random.Contains(name), Bytes(a.Get(name)).SequenceEqual(Bytes(b.Get(name))));
        }
    }

    [Fact]
    public void Float32OutputHoldsTheTeachersValuesExactlyAndTighterOrthogonality()
    {
        using var student = ConvertedStudent.FromFixture("qwen2", StudentArchitecture.RadRwkv7, dtype: DType.F32);
        using var t = Checkpoint.Open(Fixtures.Directory("qwen2"));
        using var s = Checkpoint.Open(student.Directory);
        Assert.All(s.Names, name => Assert.Equal(DType.F32, s.Get(name).DType));
        Assert.Equal(t.ReadFloat32("model.layers.1.self_attn.q_proj.weight", 64, 64), s.ReadFloat32("model.layers.1.self_attn.q_proj.weight", 64, 64));
        AssertOrthogonalRows(s.ReadFloat32("model.layers.2.self_attn.g2", 32, 64), 32, 64, Tolerances.OrthogonalGramF32, "g2");
        Assert.Contains("\"torch_dtype\": \"float32\"", File.ReadAllText(Path.Combine(student.Directory, "config.json")), StringComparison.Ordinal);
        Assert.Equal(DType.BF16, student.Result.ConvertedFrom);
        using var model = CausalLM.Load(student.Directory, new CpuBackend());
        Assert.Equal(DType.F32, model.WeightDType);
    }

    [Fact]
    public void ALoraRankAboveTheWidthGetsTheTrainersGain()
    {
        // ortho_init multiplies by √(rows/cols) when rows > cols: g2 [96, 64] has orthonormal columns × 0.1·√1.5.
        using var student = ConvertedStudent.FromFixture("qwen2", StudentArchitecture.RadRwkv7, dtype: DType.F32,
            ranks: new LoraRankOverrides { Gate = 96 });
        using var s = Checkpoint.Open(student.Directory);
        var g2 = s.ReadFloat32("model.layers.0.self_attn.g2", 96, 64);
        for (int i = 0; i < 64; i++)
        {
            for (int j = 0; j < 64; j++)
            {
                double dot = 0;
                for (int r = 0; r < 96; r++)
                {
                    dot += (double)g2[(r * 64) + i] * g2[(r * 64) + j];
                }

                Assert.Equal(i == j ? 0.015 : 0, dot, Tolerances.OrthogonalGramF32);
            }
        }
    }

    [Fact]
    public void NothingIsWrittenWhenATeacherTensorIsMissing()
    {
        using var teacher = new FixtureCopy("qwen2");
        teacher.EditTensors(t => t.Name == "model.layers.1.mlp.up_proj.weight" ? null : t);
        using var root = new TempDir();
        string output = Path.Combine(root.Path, "student");
        var error = CliRunner.AssertUserError(CliRunner.Run("convert", "--teacher", teacher.Directory, "--arch", "rad-rwkv7", "--output", output));
        Assert.Contains("'model.layers.1.mlp.up_proj.weight' not found", error, StringComparison.Ordinal);
        Assert.False(Directory.Exists(output));
        Assert.Empty(Directory.GetFileSystemEntries(root.Path));
    }

    private static byte[] Bytes(TensorData data)
    {
        unsafe
        {
            return new ReadOnlySpan<byte>(data.Pointer, checked((int)data.ByteLength)).ToArray();
        }
    }

    private static float Bf16Round(float value) => Bf16.ToSingle(Bf16.FromSingle(value));

    private static void AssertAll(Checkpoint checkpoint, string name, float expected)
    {
        var values = checkpoint.ReadFloat32(name, checkpoint.Get(name).Shape);
        Assert.True(values.All(v => v.Equals(expected)), $"{name}: expected every element to be {expected}");
    }

    /// <summary>W [rows, cols] with rows ≤ cols: W·Wᵀ = 0.01·I (orthonormal rows × 0.1).</summary>
    internal static void AssertOrthogonalRows(float[] w, int rows, int cols, double tolerance, string what)
    {
        double worst = 0;
        for (int i = 0; i < rows; i++)
        {
            for (int j = 0; j < rows; j++)
            {
                double dot = 0;
                for (int k = 0; k < cols; k++)
                {
                    dot += (double)w[(i * cols) + k] * w[(j * cols) + k];
                }

                worst = Math.Max(worst, Math.Abs(dot - (i == j ? 0.01 : 0)));
            }
        }

        Assert.True(worst <= tolerance, $"{what}: max |W·Wᵀ − 0.01·I| = {worst:G3} > {tolerance:G3}");
    }

    private static FixtureCopy CopyOf(string directory) => FixtureCopy.Of(directory);

    private static float[] Logits(CausalLM model, int[] tokens)
    {
        using var state = model.CreateState();
        return model.Forward(state, tokens, allLogits: true);
    }

    private static string GateOf(CausalLM model) => model.LayerSummaries[0].Contains("gate FullRank", StringComparison.Ordinal) ? "gate FullRank"
        : model.LayerSummaries[0].Contains("gate None", StringComparison.Ordinal) ? "gate None" : model.LayerSummaries[0];

    private static byte[] HalveBf16(byte[] data)
    {
        var bits = MemoryMarshal.Cast<byte, ushort>(data.AsSpan()).ToArray();
        for (int i = 0; i < bits.Length; i++)
        {
            float value = Bf16.ToSingle(bits[i]);
            ushort halved = Bf16.FromSingle(value * 0.5f);
            Assert.Equal(value * 0.5f, Bf16.ToSingle(halved)); // exact: no weight is near the subnormal range
            bits[i] = halved;
        }

        return MemoryMarshal.AsBytes(bits.AsSpan()).ToArray();
    }
}
