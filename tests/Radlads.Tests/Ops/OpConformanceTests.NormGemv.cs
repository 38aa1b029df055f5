using Radlads.Checkpoints;
using Radlads.Cuda;
using Radlads.Ilgpu;
using Radlads.Ops;

namespace Radlads.Tests.Ops;

/// <summary>
/// The residual norm fused into the GEMVs after it (IOps.AddRmsNormMatMulShared, AddRmsNormGateUpSwiGlu): on each
/// backend the fused call must give exactly the bits of the ops it replaces (AddRmsNorm, or RmsNorm without a branch,
/// then MatMulShared or GateUpSwiGlu) for h, normed and every output, write every output (NaN-poisoned first), and
/// match the float64 definitions. Shapes: T = 1 (the GPU's one-launch path) and several decode rows (the two ops);
/// C = 64, 896, 3,584 (Qwen2.5 0.5B and 7B), 1,032 (a multiple of 8 but not of 64), 67 (odd: scalar GEMV and the
/// norm's strided loop) and 4,100 (a norm block larger than the GEMV's); one to three matrices with and without biases
/// (Qwen2's q/k/v have them); bf16, f16 and f32 weights; with a branch and without (the first layer's plain norm).
/// </summary>
public abstract partial class OpConformanceTests
{
    /// <summary>
    /// How many fused norm + GEMV kernels the backend has launched, where it has them (CUDA; ILGPU's warp kernels); null
    /// where the ops are the IOps default.
    /// </summary>
    private long? NormGemvLaunches => Backend switch
    {
        CudaBackend cuda => cuda.NormGemvLaunches,
        IlgpuBackend ilgpu when !ilgpu.Unfused && !ilgpu.ThreadPerOutputKernels && !ilgpu.Baseline => ilgpu.NormGemvLaunches,
        _ => null,
    };

    [Theory]
    [InlineData(DType.BF16, 1, 64, 3, true, true, true)]
    [InlineData(DType.BF16, 1, 896, 3, true, true, true)]
    [InlineData(DType.BF16, 1, 3584, 3, false, true, true)]
    [InlineData(DType.F16, 1, 896, 2, false, false, true)]
    [InlineData(DType.F32, 1, 64, 1, true, true, true)]
    [InlineData(DType.BF16, 1, 1032, 1, false, false, true)]
    [InlineData(DType.BF16, 3, 896, 3, true, true, false)] // several decode rows: AddRmsNorm then MatMulShared
    [InlineData(DType.F32, 2, 64, 2, true, false, false)]
    [InlineData(DType.BF16, 1, 67, 3, true, true, false)]
    [InlineData(DType.BF16, 1, 4100, 1, false, true, false)] // the norm's 288 threads exceed the GEMV block's 256
    public void AddRmsNormMatMulShared(DType dtype, int t, int c, int count, bool withBias, bool withBranch, bool fusedOnGpu)
    {
        var data = new TestData(HashCode.Combine(81, dtype, t, c, count, withBias, withBranch));
        var (h, b, normWeight, nwr) = ResidualNormInputs(data, t, c, dtype);
        int[] ms = [.. new[] { c >= 896 ? 128 : 96, 40, 24 }.Take(count)];
        var weights = new List<Tensor>();
        var rounded = new List<float[]>();
        var biases = new List<float[]?>();
        foreach (int m in ms)
        {
            weights.Add(Weight(data.Normal(m * c, 0.05f), dtype, out var wr, m, c));
            rounded.Add(wr);
            biases.Add(withBias ? data.Normal(m) : null);
        }

        var biasTensors = biases.Select(v => v is null ? null : In(v, v.Length)).ToArray();
        long? before = NormGemvLaunches;
        var ht = In(h, t, c);
        var normed = Out(t, c);
        var outputs = ms.Select(m => Out(t, m)).ToArray();
        Ops.AddRmsNormMatMulShared(ht, withBranch ? In(b, t, c) : null, normWeight, 1e-6f, normed, weights, biasTensors, outputs);
        if (before is { } launched)
        {
            Assert.Equal(launched + (fusedOnGpu ? 1 : 0), NormGemvLaunches);
        }

        var (h2, normed2) = UnfusedResidualNorm(h, b, withBranch, normWeight, t, c);
        var outputs2 = ms.Select(m => Out(t, m)).ToArray();
        Ops.MatMulShared(normed2, weights, biasTensors, outputs2);
        SameBits([Read(h2), Read(normed2), .. outputs2.Select(Read)], [Read(ht), Read(normed), .. outputs.Select(Read)], "add_rms_norm_matmul_shared");

        var x = CheckResidualNorm(h, b, withBranch, nwr, t, c, ht, normed, "add_rms_norm_matmul_shared");
        for (int i = 0; i < ms.Length; i++)
        {
            Check(NaiveOps.MatMul(x, rounded[i], biases[i], t, c, ms[i], true), outputs[i], $"add_rms_norm_matmul_shared output {i}");
        }
    }

    [Theory]
    [InlineData(DType.BF16, 1, 64, 160, true, true)]
    [InlineData(DType.BF16, 1, 896, 200, true, true)]
    [InlineData(DType.BF16, 1, 3584, 64, true, true)]
    [InlineData(DType.F16, 1, 896, 64, false, true)]
    [InlineData(DType.F32, 1, 64, 200, true, true)]
    [InlineData(DType.BF16, 1, 1032, 33, false, true)]
    [InlineData(DType.BF16, 1, 64, 9000, true, true)] // enough rows that ILGPU fuses on a GPU with many SMs too
    [InlineData(DType.BF16, 3, 64, 160, true, false)] // several decode rows: AddRmsNorm then GateUpSwiGlu
    [InlineData(DType.F16, 1, 67, 64, true, false)]
    public void AddRmsNormGateUpSwiGlu(DType dtype, int t, int c, int f, bool withBranch, bool fusedOnGpu)
    {
        var data = new TestData(HashCode.Combine(82, dtype, t, c, f, withBranch));
        var (h, b, normWeight, nwr) = ResidualNormInputs(data, t, c, dtype);
        var wg = Weight(data.Normal(f * c, 0.05f), dtype, out var gr, f, c);
        var wu = Weight(data.Normal(f * c, 0.05f), dtype, out var ur, f, c);
        long? before = NormGemvLaunches;
        var ht = In(h, t, c);
        var normed = Out(t, c);
        var y = Out(t, f);
        // ILGPU fuses only where its GateUpSwiGlu plan does: a small F on a GPU with many SMs stays two GEMVs.
        bool fused = fusedOnGpu && (Backend is not IlgpuBackend ilgpu || ((IlgpuOps)ilgpu.Ops).FusesNormGateUp(ht, normWeight, wg, wu));
        Ops.AddRmsNormGateUpSwiGlu(ht, withBranch ? In(b, t, c) : null, normWeight, 1e-5f, normed, wg, wu, y, Out(t, f));
        if (before is { } launched)
        {
            Assert.Equal(launched + (fused ? 1 : 0), NormGemvLaunches);
        }

        var (h2, normed2) = UnfusedResidualNorm(h, b, withBranch, normWeight, t, c, 1e-5f);
        var y2 = Out(t, f);
        Ops.GateUpSwiGlu(normed2, wg, wu, y2, Out(t, f));
        SameBits([Read(h2), Read(normed2), Read(y2)], [Read(ht), Read(normed), Read(y)], "add_rms_norm_gate_up_swiglu");

        // y against float64 in two steps, as GateUpSwiGlu is checked: the GEMVs of the backend's normed, then SwiGLU of those sums.
        var x = CheckResidualNorm(h, b, withBranch, nwr, t, c, ht, normed, "add_rms_norm_gate_up_swiglu", 1e-5);
        var (g1, u1) = (Out(t, f), Out(t, f));
        Ops.MatMulShared(normed, [wg, wu], [null, null], [g1, u1]);
        Check(NaiveOps.MatMul(x, gr, null, t, c, f, true), g1, "add_rms_norm_gate_up_swiglu gate");
        Check(NaiveOps.MatMul(x, ur, null, t, c, f, true), u1, "add_rms_norm_gate_up_swiglu up");
        var (gate, up) = (Read(g1), Read(u1));
        CloseToDefinition([.. gate.Select((v, i) => v * NaiveOps.Sigmoid(v) * up[i])], Read(y), "add_rms_norm_gate_up_swiglu");
    }

    [Fact]
    public void AddRmsNormMatMulSharedRejectsAliasedOutputs()
    {
        var data = new TestData(83);
        var h = In(data.Normal(64), 1, 64);
        var branch = In(data.Normal(64), 1, 64);
        var nw = In(data.Uniform(64, 0.5f, 1.5f), 64);
        var w = Weight(data.Normal(8 * 64), DType.BF16, out _, 8, 64);
        var e = Assert.Throws<ArgumentException>(() => Ops.AddRmsNormMatMulShared(h, branch, nw, 1e-6f, h, [w], [null], [Out(1, 8)]));
        Assert.Contains("normed must not alias h", e.Message, StringComparison.Ordinal);
        var normed = Out(1, 64);
        e = Assert.Throws<ArgumentException>(() => Ops.AddRmsNormGateUpSwiGlu(h, branch, nw, 1e-6f, normed, w, w, branch, Out(1, 8)));
        Assert.Contains("aliases h, branch or normed", e.Message, StringComparison.Ordinal);
        e = Assert.Throws<ArgumentException>(() => Ops.AddRmsNormMatMulShared(h, In(data.Normal(32), 1, 32), nw, 1e-6f, normed, [w], [null], [Out(1, 8)]));
        Assert.Contains("one shape", e.Message, StringComparison.Ordinal);
    }

    private (float[] H, float[] B, Tensor NormWeight, float[] Rounded) ResidualNormInputs(TestData data, int t, int c, DType dtype)
    {
        var h = data.Normal(t * c, 2f);
        var b = data.Normal(t * c, 1f);
        var nw = Weight(data.Uniform(c, 0.5f, 1.5f), dtype, out var nwr, c);
        return (h, b, nw, nwr);
    }

    /// <summary>The unfused norm on this backend: AddRmsNorm (or RmsNorm without a branch) into a fresh normed.</summary>
    private (Tensor H, Tensor Normed) UnfusedResidualNorm(float[] h, float[] b, bool withBranch, Tensor normWeight, int t, int c, float eps = 1e-6f)
    {
        var ht = In(h, t, c);
        var normed = Out(t, c);
        if (withBranch)
        {
            Ops.AddRmsNorm(ht, In(b, t, c), normWeight, eps, normed);
        }
        else
        {
            Ops.RmsNorm(ht, normWeight, eps, normed);
        }

        return (ht, normed);
    }

    /// <summary>h is h + b exactly (h alone without a branch), normed its RmsNorm by float64; returns normed as read.</summary>
    private float[] CheckResidualNorm(float[] h, float[] b, bool withBranch, float[] nwr, int t, int c, Tensor ht, Tensor normed, string what,
        double eps = 1e-6)
    {
        var sum = withBranch ? h.Zip(b, (p, q) => p + q).ToArray() : h;
        Assert.Equal(sum, Read(ht));
        Check(NaiveOps.RmsNorm(sum, nwr, c, eps), normed, what + " normed");
        return Read(normed);
    }
}
