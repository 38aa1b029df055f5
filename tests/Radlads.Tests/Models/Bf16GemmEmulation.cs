using Radlads.Checkpoints;
using Radlads.Cpu;
using Radlads.Ops;

namespace Radlads.Tests.Models;

/// <summary>
/// The CPU reference with the numerics of the CUDA backend's cuBLASLt path: a MatMul with bf16 weights and at least
/// <see cref="MinRows"/> rows first rounds x to bf16 (nearest even, as the f32_to_bf16 kernel), then multiplies in
/// fp32 as usual. Everything else is the CPU backend. It lets the model-level tolerances of that path be measured
/// here, without a GPU (<see cref="Bf16GemmEmulationTests"/>).
/// </summary>
internal sealed class Bf16GemmEmulation(int minRows) : IBackend
{
    private readonly CpuBackend cpu = new();

    public int MinRows { get; } = minRows;

    public string Name => "cpu-bf16-gemm";

    public string Description => $"CPU with bf16-rounded MatMul activations from {MinRows} rows";

    public IOps Ops => new RoundingOps(this);

    public Tensor Allocate(params int[] shape) => cpu.Allocate(shape);

    public Tensor LoadWeight(TensorData data) => cpu.LoadWeight(data);

    public Tensor FromFloats(ReadOnlySpan<float> values, params int[] shape) => cpu.FromFloats(values, shape);

    public void Upload(ReadOnlySpan<float> source, Tensor destination) => cpu.Upload(source, destination);

    public void Download(Tensor source, Span<float> destination) => cpu.Download(source, destination);

    public void Copy(Tensor source, Tensor destination) => cpu.Copy(source, destination);

    public void Dispose() => cpu.Dispose();

    /// <summary>x rounded to bf16 and widened back: the values cuBLASLt multiplies.</summary>
    public static float[] RoundToBf16(ReadOnlySpan<float> x)
    {
        var y = new float[x.Length];
        for (int i = 0; i < x.Length; i++)
        {
            y[i] = BitConverter.UInt32BitsToSingle((uint)Bf16.FromSingle(x[i]) << 16);
        }

        return y;
    }

    private sealed class RoundingOps(Bf16GemmEmulation owner) : IOps
    {
        private readonly IOps inner = owner.cpu.Ops;

        private Tensor Rounded(Tensor x)
        {
            var values = new float[x.ElementCount];
            owner.cpu.Download(x, values);
            return owner.cpu.FromFloats(RoundToBf16(values), x.Shape);
        }

        public void MatMul(Tensor x, Tensor weight, Tensor? bias, Tensor y, WeightLayout layout = WeightLayout.OutIn)
        {
            if (weight.DType != DType.BF16 || x.RowCount < owner.MinRows)
            {
                inner.MatMul(x, weight, bias, y, layout);
                return;
            }

            using var rounded = Rounded(x);
            inner.MatMul(rounded, weight, bias, y, layout);
        }

        /// <summary>
        /// CUDA's prefill MLP on cuBLASLt (CudaOps.Bf16PrefillMlp): gate and up from the bf16-rounded normed, each
        /// rounded to bf16 as their GEMMs write them, the SwiGLU in fp32, act rounded for the down GEMM.
        /// </summary>
        public void AddRmsNormMlp(Tensor h, Tensor? branch, Tensor normWeight, float eps, Tensor normed, Tensor wGate, Tensor wUp,
            Tensor wDown, Tensor act, Tensor upScratch, Tensor y)
        {
            FusedOpChecks.ResidualNormMlp(h, branch, normed, wGate, wUp, wDown, act, upScratch, y);
            IOps.ResidualNorm(this, h, branch, normWeight, eps, normed);
            MatMul(normed, wGate, null, act);
            MatMul(normed, wUp, null, upScratch);
            if (h.RowCount >= owner.MinRows && wGate.DType == DType.BF16 && wUp.DType == DType.BF16 && wDown.DType == DType.BF16)
            {
                RoundInPlace(act);
                RoundInPlace(upScratch);
            }

            SwiGlu(act, upScratch, act);
            MatMul(act, wDown, null, y);
        }

        private void RoundInPlace(Tensor x)
        {
            using var rounded = Rounded(x);
            owner.cpu.Copy(rounded, x);
        }

        public void MatMulShared(Tensor x, IReadOnlyList<Tensor> weights, IReadOnlyList<Tensor?> biases, IReadOnlyList<Tensor> outputs)
        {
            for (int i = 0; i < weights.Count; i++)
            {
                MatMul(x, weights[i], biases[i], outputs[i]);
            }
        }

        public void Embedding(Tensor table, ReadOnlySpan<int> ids, Tensor y) => inner.Embedding(table, ids, y);

        public void RmsNorm(Tensor x, Tensor weight, float eps, Tensor y) => inner.RmsNorm(x, weight, eps, y);

        public void Add(Tensor a, Tensor b, Tensor y) => inner.Add(a, b, y);

        public void Multiply(Tensor a, Tensor b, Tensor y) => inner.Multiply(a, b, y);

        public void Scale(Tensor x, float s, Tensor y) => inner.Scale(x, s, y);

        public void Tanh(Tensor x, Tensor y) => inner.Tanh(x, y);

        public void Sigmoid(Tensor x, Tensor y) => inner.Sigmoid(x, y);

        public void AddSigmoid(Tensor x, Tensor bias, Tensor y) => inner.AddSigmoid(x, bias, y);

        public void SwiGlu(Tensor gate, Tensor up, Tensor y) => inner.SwiGlu(gate, up, y);

        public void Rope(Tensor x, int heads, int headDim, int startPosition, float theta) => inner.Rope(x, heads, headDim, startPosition, theta);

        public void AppendKv(Tensor k, Tensor v, Tensor kCache, Tensor vCache, int position) => inner.AppendKv(k, v, kCache, vCache, position);

        public void RepeatKv(Tensor x, int kvHeads, int headDim, int groups, Tensor y) => inner.RepeatKv(x, kvHeads, headDim, groups, y);

        public void GroupNorm(Tensor x, Tensor weight, Tensor bias, int groups, float eps, Tensor y) => inner.GroupNorm(x, weight, bias, groups, eps, y);

        public void Attention(Tensor q, Tensor kCache, Tensor vCache, int heads, int kvHeads, int headDim, int startPosition, Tensor y) =>
            inner.Attention(q, kCache, vCache, heads, kvHeads, headDim, startPosition, y);

        public void TokenShift(Tensor x, Tensor shiftState, Tensor delta) => inner.TokenShift(x, shiftState, delta);

        public void MixShift(Tensor x, Tensor delta, Tensor mix, Tensor y) => inner.MixShift(x, delta, mix, y);

        public void Rwkv6Ddlerp(Tensor x, Tensor delta, Tensor lora, Tensor w2, Tensor mixes, Tensor outputs) => inner.Rwkv6Ddlerp(x, delta, lora, w2, mixes, outputs);

        public void Rwkv6Decay(Tensor d, Tensor bias, Tensor w) => inner.Rwkv6Decay(d, bias, w);

        public void Rwkv6BalanceKeys(Tensor k, Tensor w, Tensor y) => inner.Rwkv6BalanceKeys(k, w, y);

        public void Wkv6(Tensor r, Tensor k, Tensor v, Tensor w, Tensor state, float scale, Tensor y) => inner.Wkv6(r, k, v, w, state, scale, y);

        public void Sample(Tensor logits, int allowedVocabulary, ReadOnlySpan<SampleRow> rows, Span<int> ids) =>
            inner.Sample(logits, allowedVocabulary, rows, ids);

        public void Rwkv7Decay(Tensor z, Tensor w0, Tensor w) => inner.Rwkv7Decay(z, w0, w);

        public void Rwkv7Keys(Tensor k, Tensor w, Tensor a, Tensor? keyScale, Tensor? iclrMix, int headDim, bool balanced,
            Tensor removal, Tensor replacement, Tensor kTilde) => inner.Rwkv7Keys(k, w, a, keyScale, iclrMix, headDim, balanced, removal, replacement, kTilde);

        public void Rwkv7ValueResidual(Tensor v, Tensor vFirst, Tensor nu, Tensor y) => inner.Rwkv7ValueResidual(v, vFirst, nu, y);

        public void Wkv7(Tensor r, Tensor w, Tensor k, Tensor v, Tensor a, Tensor b, Tensor state, Tensor y) => inner.Wkv7(r, w, k, v, a, b, state, y);
    }
}
