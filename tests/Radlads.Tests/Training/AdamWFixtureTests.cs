using System.Text.Json.Nodes;
using Radlads.Cpu;
using Radlads.Ops;
using Radlads.Tests.Ops;
using Radlads.Training;

namespace Radlads.Tests.Training;

/// <summary>
/// The C# step (global norm through SumOfSquares, <see cref="GradientClip"/>, <see cref="LearningRateSchedule"/>, AdamW)
/// replayed on the gradients of tests/golden/adamw/adamw.json, against the parameters, m and v that real
/// torch.optim.AdamW(foreach=False) with torch.nn.utils.clip_grad_norm_ produced after every step.
/// </summary>
public sealed class AdamWFixtureTests
{
    private static readonly string FixturePath = Path.Combine(AppContext.BaseDirectory, "golden", "adamw", "adamw.json");

    [Fact]
    public void CpuStepsMatchTorchAdamW()
    {
        Assert.SkipWhen(!File.Exists(FixturePath),
            "tests/golden/adamw/adamw.json is not there yet: run `python3 tests/golden/adamw/make_adamw.py` on a machine with PyTorch (CPU is enough), commit the JSON and rebuild");
        var root = JsonNode.Parse(File.ReadAllText(FixturePath))!;
        var o = root["options"]!;
        var options = new TrainingOptions
        {
            CtxLen = o["ctx_len"]!.GetValue<int>(),
            Batch = o["batch"]!.GetValue<int>(),
            TokenBudget = o["token_budget"]!.GetValue<long>(),
            LrInit = o["lr_init"]!.GetValue<double>(),
            LrFinal = o["lr_final"]!.GetValue<double>(),
            WarmupSteps = o["warmup_steps"]!.GetValue<int>(),
            Beta1 = (float)o["beta1"]!.GetValue<double>(),
            Beta2 = (float)o["beta2"]!.GetValue<double>(),
            Eps = (float)o["eps"]!.GetValue<double>(),
            WeightDecay = (float)o["weight_decay"]!.GetValue<double>(),
            ClipNorm = o["clip_norm"]!.GetValue<double>(),
        };
        using var backend = new CpuBackend();
        var ops = backend.BackwardOps;
        var shapes = root["shapes"]!.AsArray().Select(s => s!.AsArray().Select(d => d!.GetValue<int>()).ToArray()).ToArray();
        var initial = root["initial"]!.AsArray();
        var parameters = shapes.Select((s, i) => backend.FromFloats(Floats(initial[i]!), s)).ToArray();
        var m = shapes.Select(s => backend.Allocate(s)).ToArray();
        var v = shapes.Select(s => backend.Allocate(s)).ToArray();
        var steps = root["steps"]!.AsArray();
        Assert.Equal(options.TotalSteps, steps.Count);
        int clipped = 0;
        for (int step = 0; step < steps.Count; step++)
        {
            var s = steps[step]!;
            var grads = s["grads"]!.AsArray().Select((g, i) => backend.FromFloats(Floats(g!), shapes[i])).ToArray();
            double norm = Math.Sqrt(grads.Sum(ops.SumOfSquares));
            Assert.Equal(s["grad_norm"]!.GetValue<double>(), norm, Tolerances.AdamWTorchRelative * norm); // torch: fp32 norm of norms
            double lr = LearningRateSchedule.At(step, options);
            Assert.Equal(s["lr_schedule"]!.GetValue<double>(), lr, 1e-15 * lr);
            Assert.Equal((float)s["lr"]!.GetValue<double>(), (float)lr);
            float clip = GradientClip.Coefficient(norm, options.ClipNorm);
            clipped += clip < 1 ? 1 : 0;
            for (int i = 0; i < shapes.Length; i++)
            {
                ops.AdamW(parameters[i], grads[i], m[i], v[i], (float)lr, options.Beta1, options.Beta2, options.Eps, options.WeightDecay, clip, step + 1);
                Check(s["params"]![i]!, parameters[i], backend, $"step {step + 1} param {i}");
                Check(s["exp_avg"]![i]!, m[i], backend, $"step {step + 1} exp_avg {i}");
                Check(s["exp_avg_sq"]![i]!, v[i], backend, $"step {step + 1} exp_avg_sq {i}");
            }
        }

        Assert.InRange(clipped, 1, steps.Count - 1); // the fixture covers clipped and unclipped steps
    }

    private static void Check(JsonNode expected, Tensor actual, IBackend backend, string what)
    {
        var values = new float[actual.ElementCount];
        backend.Download(actual, values);
        var e = Floats(expected);
        Compare.Close(e, values, Tolerances.AdamWTorchRelative, Tolerances.AdamWTorchRelative * e.Max(Math.Abs), what);
    }

    private static float[] Floats(JsonNode node) => node.AsArray().Select(x => (float)x!.GetValue<double>()).ToArray();
}
