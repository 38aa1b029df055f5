using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using Radlads.Checkpoints;
using Radlads.Conversion;

namespace Radlads.Cli.Commands;

/// <summary>`radlads convert`: a RAD-RWKV student checkpoint initialised from a Qwen2 teacher (RADLADS step 0).</summary>
internal static class ConvertCommand
{
    public static Command Create(CliContext io)
    {
        var teacher = new Option<string>("--teacher", "-t")
        {
            Description = "The Qwen2 teacher's folder (config.json with model_type qwen2, *.safetensors, tokenizer files).",
            Required = true,
        };
        var arch = new Option<string>("--arch", "-a")
        {
            Description = "The student: rad-rwkv7 (RWKV7Qwen2) or rad-rwkv6 (RWKV6Qwen2).",
            Required = true,
        };
        arch.AcceptOnlyFromAmong("rad-rwkv7", "rad-rwkv6");
        var variant = new Option<string>("--variant")
        {
            Description = "balanced: k·(1−w[+a]) state balancing, no norm (the paper's variant B, and RAD-RWKV6 as released); " +
                "groupnorm: stock keys with a GroupNorm ln_x after the recurrence (variant G; an ablation for rad-rwkv6).",
            DefaultValueFactory = _ => "balanced",
        };
        variant.AcceptOnlyFromAmong("balanced", "groupnorm");
        var output = new Option<string?>("--output", "-o")
        {
            Description = "The student's folder. Default: next to the teacher, named TEACHER-ARCH (plus -groupnorm). Must not exist or be empty, unless --force.",
        };
        var force = new Option<bool>("--force") { Description = "Write into a non-empty --output folder, replacing the student's files there." };
        var seed = new Option<ulong>("--seed")
        {
            Description = "Seed of the random inits (orthogonal and uniform LoRA matrices); the same seed gives byte-identical files.",
            DefaultValueFactory = _ => 0,
        };
        var dtype = new Option<string>("--dtype")
        {
            Description = "Dtype of every tensor written: bf16 (as the trainer saves) or f32.",
            DefaultValueFactory = _ => "bf16",
        };
        dtype.AcceptOnlyFromAmong("bf16", "f32");
        var rankTokenShift = RankOption("--lora-rank-tokenshift", "rad-rwkv6 token-shift LoRA rank Rm (default calc_lora_rank(0.5, 1.8)).");
        var rankDecay = RankOption("--lora-rank-decay", "Decay LoRA rank: Rd for rad-rwkv6, Rw for rad-rwkv7 (default calc_lora_rank(0.5, 1.8)).");
        var rankIclr = RankOption("--lora-rank-iclr", "rad-rwkv7 in-context learning rate LoRA rank Ra (default calc_lora_rank(0.5, 1.8)).");
        var rankValue = RankOption("--lora-rank-value-residual-mix", "rad-rwkv7 value-residual LoRA rank Rv (default calc_lora_rank(0.5, 1.3)).");
        var rankGate = RankOption("--lora-rank-gate", "rad-rwkv7 gate LoRA rank Rg (default calc_lora_rank(0.8, 0.6)).");
        var command = new Command("convert",
            "Build a RAD-RWKV student from a Qwen2 teacher as RADLADS does: teacher q/k/v/o (with biases), MLP, norms and embeddings copied, " +
            "an untied lm_head, and every new RWKV parameter initialised by the spec's rules. Writes a Hugging Face checkpoint folder.")
        {
            teacher, arch, variant, output, force, seed, dtype, rankTokenShift, rankDecay, rankIclr, rankValue, rankGate,
        };
        command.SetAction(parse =>
        {
            var architecture = parse.GetValue(arch) == "rad-rwkv6" ? StudentArchitecture.RadRwkv6 : StudentArchitecture.RadRwkv7;
            var studentVariant = parse.GetValue(variant) == "groupnorm" ? StudentVariant.GroupNorm : StudentVariant.Balanced;
            string teacherDir = parse.GetValue(teacher)!;
            var options = new ConversionOptions
            {
                TeacherDirectory = teacherDir,
                OutputDirectory = parse.GetValue(output) ?? DefaultOutput(teacherDir, architecture, studentVariant),
                Architecture = architecture,
                Variant = studentVariant,
                Seed = parse.GetValue(seed),
                DType = parse.GetValue(dtype) == "f32" ? DType.F32 : DType.BF16,
                Force = parse.GetValue(force),
                RankOverrides = new LoraRankOverrides
                {
                    TokenShift = parse.GetValue(rankTokenShift),
                    Decay = parse.GetValue(rankDecay),
                    Iclr = parse.GetValue(rankIclr),
                    ValueResidualMix = parse.GetValue(rankValue),
                    Gate = parse.GetValue(rankGate),
                },
            };
            bool terminal = ReferenceEquals(io.Error, Console.Error) && !Console.IsErrorRedirected;
            var progress = new Progress(io.Error, terminal);
            ConversionResult result;
            try
            {
                result = StudentConverter.Convert(options, progress.Report);
            }
            finally
            {
                progress.End();
            }

            WriteSummary(io.Error, options, result);
            return 0;
        });
        return command;
    }

    /// <summary>TEACHER-rad-rwkv7 (or -rad-rwkv6, plus -groupnorm) beside the teacher's folder.</summary>
    internal static string DefaultOutput(string teacherDir, StudentArchitecture architecture, StudentVariant variant)
    {
        string full = Path.TrimEndingDirectorySeparator(Path.GetFullPath(teacherDir));
        string name = $"{Path.GetFileName(full)}-{architecture.CliName()}{(variant == StudentVariant.GroupNorm ? "-groupnorm" : "")}";
        return Path.Combine(Path.GetDirectoryName(full) ?? full, name);
    }

    private static Option<int?> RankOption(string name, string description) => new(name) { Description = description };

    private static void WriteSummary(TextWriter e, ConversionOptions options, ConversionResult r)
    {
        var inv = CultureInfo.InvariantCulture;
        var plan = r.Plan;
        var t = plan.Teacher;
        bool v6 = plan.Architecture == StudentArchitecture.RadRwkv6;
        string variant = (v6, plan.Variant) switch
        {
            (false, StudentVariant.Balanced) => "variant B (balanced keys, ×N^-1/2)",
            (false, _) => "variant G (stock keys, GroupNorm)",
            (true, StudentVariant.Balanced) => "k·(1−w) balancing, no norm",
            (true, _) => "GroupNorm ln_x, no balancing (ablation)",
        };
        var overridden = new[]
        {
            ("--lora-rank-tokenshift", options.RankOverrides.TokenShift), ("--lora-rank-decay", options.RankOverrides.Decay),
            ("--lora-rank-iclr", options.RankOverrides.Iclr), ("--lora-rank-value-residual-mix", options.RankOverrides.ValueResidualMix),
            ("--lora-rank-gate", options.RankOverrides.Gate),
        }.Where(p => p.Item2 is not null).Select(p => p.Item1).ToArray();
        int copied = plan.Tensors.Count(x => x.Origin == TensorOrigin.Teacher);
        int initialised = plan.Tensors.Count - copied;
        long head = plan.TiedTeacher ? (long)t.VocabSize * t.HiddenSize : 0;
        string dtype = r.DType == DType.BF16 ? "bf16" : "f32";
        e.WriteLine($"student:        {plan.Architecture.ModelType()} ({plan.Architecture.CliName()}), {variant}, in {r.OutputDirectory}");
        e.WriteLine(string.Create(inv, $"teacher:        {Path.GetFullPath(options.TeacherDirectory)}: {t.NumHiddenLayers} layers, hidden {t.HiddenSize}, {t.NumAttentionHeads} heads × {t.HeadDim} (KV heads {t.NumKeyValueHeads}, kept: k/v stay {t.NumKeyValueHeads * t.HeadDim} wide){(plan.TiedTeacher ? ", tied embeddings" : "")}"));
        e.WriteLine($"ranks:          {plan.Ranks.Describe(plan.Architecture)} ({(overridden.Length == 0 ? "calc_lora_rank" : "calc_lora_rank except " + string.Join(", ", overridden))})");
        string untied = head > 0 ? string.Create(inv, $", +{head:N0} untied lm_head (a copy of the embedding)") : "";
        e.WriteLine(string.Create(inv,
            $"parameters:     teacher {plan.TeacherParameters:N0} → student {plan.StudentParameters:N0}: +{plan.NewParameters:N0} new RWKV parameters{untied}"));
        e.WriteLine(string.Create(inv,
            $"tensors:        {copied} copied from the teacher ({(r.ConvertedFrom is DType from ? $"converted {from} → {dtype}" : "same bytes")}), {initialised} initialised (seed {options.Seed})"));
        if (plan.IgnoredTeacherTensors.Count > 0)
        {
            e.WriteLine($"ignored:        {plan.IgnoredTeacherTensors.Count} teacher tensors the student does not use ({string.Join(", ", plan.IgnoredTeacherTensors.Take(4))}{(plan.IgnoredTeacherTensors.Count > 4 ? ", …" : "")})");
        }

        e.WriteLine(string.Create(inv,
            $"output:         model.safetensors {r.ModelBytes:N0} bytes ({dtype}), {r.OutputBytes:N0} bytes in all with config.json{(r.CopiedFiles.Count > 0 ? ", " + string.Join(", ", r.CopiedFiles) : "")}"));
        if (r.LeftoverFiles.Count > 0)
        {
            e.WriteLine($"note:           left in place in the output folder: {string.Join(", ", r.LeftoverFiles)} (the loader reads model.safetensors first)");
        }

        e.WriteLine(string.Create(inv, $"time:           {r.Elapsed.TotalSeconds:F1} s"));
    }

    /// <summary>
    /// "writing model.safetensors: 123/456 tensors": redrawn in place on a terminal (at most 10 times a second), and
    /// printed once, when complete, otherwise.
    /// </summary>
    private sealed class Progress(TextWriter error, bool terminal)
    {
        private readonly Stopwatch clock = Stopwatch.StartNew();
        private TimeSpan lastDraw = TimeSpan.MinValue;
        private bool open;

        public void Report(int written, int total)
        {
            bool final = written == total;
            if (terminal && (final || clock.Elapsed - lastDraw >= TimeSpan.FromMilliseconds(100)))
            {
                lastDraw = clock.Elapsed;
                error.Write($"\rwriting model.safetensors: {written}/{total} tensors");
                open = true;
            }

            if (final)
            {
                if (!terminal)
                {
                    error.Write($"writing model.safetensors: {written}/{total} tensors");
                }

                error.WriteLine(string.Create(CultureInfo.InvariantCulture, $", done in {clock.Elapsed.TotalSeconds:F1} s"));
                open = false;
            }
        }

        /// <summary>Ends an unfinished line, so an error message starts on its own line.</summary>
        public void End()
        {
            if (open)
            {
                error.WriteLine();
                open = false;
            }
        }
    }
}
