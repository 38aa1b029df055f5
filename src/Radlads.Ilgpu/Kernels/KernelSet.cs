using System.Diagnostics;
using ILGPU;
using ILGPU.Runtime;

namespace Radlads.Ilgpu.Kernels;

/// <summary>
/// Every kernel of the backend, loaded (compiled by ILGPU to the accelerator's code, and for CUDA JIT-compiled by the
/// driver) once, eagerly, when the accelerator is opened, so that no op pays a compile on its first call.
/// </summary>
internal sealed class KernelSet
{
    public KernelSet(Accelerator accelerator)
    {
        var watch = Stopwatch.StartNew();
        var a = accelerator;
        Add = a.LoadAutoGroupedKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>>(ElementwiseKernels.Add);
        Multiply = a.LoadAutoGroupedKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>>(ElementwiseKernels.Multiply);
        Scale = a.LoadAutoGroupedKernel<Index1D, ArrayView<float>, float, ArrayView<float>>(ElementwiseKernels.Scale);
        Tanh = a.LoadAutoGroupedKernel<Index1D, ArrayView<float>, ArrayView<float>>(ElementwiseKernels.Tanh);
        Sigmoid = a.LoadAutoGroupedKernel<Index1D, ArrayView<float>, ArrayView<float>>(ElementwiseKernels.Sigmoid);
        AddSigmoid = a.LoadAutoGroupedKernel<Index1D, ArrayView<float>, WeightView, int, ArrayView<float>>(ElementwiseKernels.AddSigmoid);
        SwiGlu = a.LoadAutoGroupedKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>>(ElementwiseKernels.SwiGlu);
        Embedding = a.LoadAutoGroupedKernel<Index1D, WeightView, ArrayView<int>, int, ArrayView<float>>(ElementwiseKernels.Embedding);
        RepeatKv = a.LoadAutoGroupedKernel<Index1D, ArrayView<float>, int, int, int, ArrayView<float>>(ElementwiseKernels.RepeatKv);
        AppendKv = a.LoadAutoGroupedKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, ArrayView<int>, int>(
            ElementwiseKernels.AppendKv);
        Rope = a.LoadAutoGroupedKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>, int, int, int>(ElementwiseKernels.Rope);
        TokenShift = a.LoadAutoGroupedKernel<Index1D, ArrayView<float>, ArrayView<float>, int, ArrayView<float>>(ElementwiseKernels.TokenShift);
        MixShift = a.LoadAutoGroupedKernel<Index1D, ArrayView<float>, ArrayView<float>, WeightView, int, ArrayView<float>>(ElementwiseKernels.MixShift);
        Rwkv6Ddlerp = a.LoadAutoGroupedKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, WeightView, WeightView, int, int, int, ArrayView<float>>(
            ElementwiseKernels.Rwkv6Ddlerp);
        Rwkv6Decay = a.LoadAutoGroupedKernel<Index1D, ArrayView<float>, WeightView, int, ArrayView<float>>(ElementwiseKernels.Rwkv6Decay);
        Rwkv6BalanceKeys = a.LoadAutoGroupedKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>>(ElementwiseKernels.Rwkv6BalanceKeys);
        Rwkv7Decay = a.LoadAutoGroupedKernel<Index1D, ArrayView<float>, WeightView, float, int, ArrayView<float>>(ElementwiseKernels.Rwkv7Decay);
        Rwkv7ValueResidual = a.LoadAutoGroupedKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>>(
            ElementwiseKernels.Rwkv7ValueResidual);
        AttentionScores = a.LoadAutoGroupedKernel<Index1D, ArrayView<float>, ArrayView<float>, int, int, int, int, int, float, ArrayView<float>>(
            SequenceKernels.AttentionScores);
        AttentionOutput = a.LoadAutoGroupedKernel<Index1D, ArrayView<float>, ArrayView<float>, int, int, int, int, int, ArrayView<float>>(
            SequenceKernels.AttentionOutput);
        Wkv6 = a.LoadAutoGroupedKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, float, int, int, int, ArrayView<float>>(
            SequenceKernels.Wkv6);
        MatMulOutInDot = a.LoadAutoGroupedKernel<Index1D, ArrayView<float>, WeightView, WeightView, int, int, int, ArrayView<float>>(
            SequenceKernels.MatMulOutInDot);
        MatMulInOutDot = a.LoadAutoGroupedKernel<Index1D, ArrayView<float>, WeightView, WeightView, int, int, int, ArrayView<float>>(
            SequenceKernels.MatMulInOutDot);
        Wkv7Rows = a.LoadAutoGroupedKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int, ArrayView<float>, float, ArrayView<float>, int>(
            SequenceKernels.Wkv7Rows);
        RmsNorm = a.LoadKernel<ArrayView<float>, WeightView, float, int, ArrayView<float>>(GroupedKernels.RmsNorm);
        GroupNorm = a.LoadKernel<ArrayView<float>, WeightView, WeightView, int, int, float, ArrayView<float>>(GroupedKernels.GroupNorm);
        Rwkv7Keys = a.LoadKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, WeightView, WeightView, int, int, int, ArrayView<float>, ArrayView<float>, ArrayView<float>>(
            GroupedKernels.Rwkv7Keys);
        MatMulOutIn = a.LoadKernel<ArrayView<float>, WeightView, WeightView, int, int, int, int, ArrayView<float>>(GroupedKernels.MatMulOutIn);
        MatMulInOut = a.LoadKernel<ArrayView<float>, WeightView, WeightView, int, int, int, int, ArrayView<float>>(GroupedKernels.MatMulInOut);
        AttentionSoftmax = a.LoadKernel<ArrayView<float>, int, int, int>(GroupedKernels.AttentionSoftmax);
        Wkv7 = a.LoadKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int, ArrayView<float>, float, ArrayView<float>, int>(
            GroupedKernels.Wkv7);
        SampleScan = a.LoadKernel<ArrayView<float>, int, int, ArrayView<double>, int, ArrayView<SampleScanStats>, ArrayView<ulong>>(SamplingKernels.SampleScan);
        SampleFinish = a.AcceleratorType switch
        {
            AcceleratorType.Cuda => a.LoadKernel<ArrayView<float>, int, int, ArrayView<double>, int, ArrayView<ulong>, ArrayView<int>, ArrayView<SampleScanStats>, ArrayView<ulong>, int>(
                SamplingKernels.SampleFinish<PtxFusedMultiplyAdd>),
            AcceleratorType.CPU => a.LoadKernel<ArrayView<float>, int, int, ArrayView<double>, int, ArrayView<ulong>, ArrayView<int>, ArrayView<SampleScanStats>, ArrayView<ulong>, int>(
                SamplingKernels.SampleFinish<HostFusedMultiplyAdd>),
            _ => a.LoadKernel<ArrayView<float>, int, int, ArrayView<double>, int, ArrayView<ulong>, ArrayView<int>, ArrayView<SampleScanStats>, ArrayView<ulong>, int>(
                SamplingKernels.SampleFinish<PlainMultiplyAdd>),
        };
        GemvOutIn =
        [
            a.LoadKernel<ArrayView<Floats4>, ArrayView<Words4>, WeightView, int, int, int, int, ArrayView<float>>(GemvKernels.GemvOutIn<F32Words>),
            a.LoadKernel<ArrayView<Floats4>, ArrayView<Words4>, WeightView, int, int, int, int, ArrayView<float>>(GemvKernels.GemvOutIn<F16Words>),
            a.LoadKernel<ArrayView<Floats4>, ArrayView<Words4>, WeightView, int, int, int, int, ArrayView<float>>(GemvKernels.GemvOutIn<Bf16Words>),
        ];
        GemvInOut =
        [
            a.LoadKernel<ArrayView<float>, ArrayView<Words4>, WeightView, int, int, int, int, int, int, ArrayView<float>, ArrayView<float>>(GemvKernels.GemvInOut<F32Words>),
            a.LoadKernel<ArrayView<float>, ArrayView<Words4>, WeightView, int, int, int, int, int, int, ArrayView<float>, ArrayView<float>>(GemvKernels.GemvInOut<F16Words>),
            a.LoadKernel<ArrayView<float>, ArrayView<Words4>, WeightView, int, int, int, int, int, int, ArrayView<float>, ArrayView<float>>(GemvKernels.GemvInOut<Bf16Words>),
        ];
        GemvSplits = a.LoadAutoGroupedKernel<Index1D, ArrayView<float>, WeightView, int, int, int, ArrayView<float>>(GemvKernels.GemvSplits);
        MatMulTiled = a.LoadKernel<ArrayView<float>, WeightView, WeightView, int, int, int, int, int, ArrayView<float>>(TiledKernels.MatMulTiled);
        AttentionFused = a.LoadKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int, ArrayView<int>, int, float, ArrayView<float>>(
            AttentionKernels.AttentionFused);
        AttentionDecodeSplit = a.LoadKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int, ArrayView<int>, int, int, int, float, ArrayView<float>>(
            AttentionKernels.AttentionDecodeSplit);
        AttentionDecodeCombine = a.LoadKernel<ArrayView<float>, int, int, ArrayView<int>, int, int, int, ArrayView<float>>(AttentionKernels.AttentionDecodeCombine);
        Empty = a.LoadAutoGroupedKernel<Index1D, int>(ProbeKernels.Empty);
        LoraDown =
        [
            a.LoadKernel<ArrayView<float>, LoraTable, ArrayView<float>, ArrayView<int>, int, int, int, int>(LoraKernels.LoraDown<F32Words>),
            a.LoadKernel<ArrayView<float>, LoraTable, ArrayView<float>, ArrayView<int>, int, int, int, int>(LoraKernels.LoraDown<F16Words>),
            a.LoadKernel<ArrayView<float>, LoraTable, ArrayView<float>, ArrayView<int>, int, int, int, int>(LoraKernels.LoraDown<Bf16Words>),
        ];
        LoraUp =
        [
            a.LoadKernel<LoraTable, float, int>(LoraKernels.LoraUp<F32Words>),
            a.LoadKernel<LoraTable, float, int>(LoraKernels.LoraUp<F16Words>),
            a.LoadKernel<LoraTable, float, int>(LoraKernels.LoraUp<Bf16Words>),
        ];
        AddRmsNorm = a.LoadKernel<ArrayView<float>, ArrayView<float>, WeightView, float, int, ArrayView<float>>(FusedKernels.AddRmsNorm);
        ScaleMultiply = a.LoadAutoGroupedKernel<Index1D, ArrayView<float>, float, ArrayView<float>, ArrayView<float>>(FusedKernels.ScaleMultiply);
        ExpandKv = a.LoadAutoGroupedKernel<Index1D, ArrayView<float>, ArrayView<float>, int, int, int, ArrayView<float>, ArrayView<float>>(FusedKernels.ExpandKv);
        RopeExpand = a.LoadAutoGroupedKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>, int, int, int, int, int,
            ArrayView<float>, ArrayView<float>>(FusedKernels.RopeExpand);
        Rwkv7KeysValueResidual = a.LoadKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, WeightView, WeightView, int, int, int,
            ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>>(FusedKernels.Rwkv7KeysValueResidual);
        Rwkv7RopeKeys = a.LoadKernel<RopeKeysViews, ArrayView<float>, ArrayView<float>, ArrayView<int>, int, int, int, int, WeightView, WeightView, int>(
            FusedKernels.Rwkv7RopeKeys);
        GateUpSwiGlu =
        [
            a.LoadKernel<ArrayView<Floats4>, ArrayView<Words4>, ArrayView<Words4>, int, int, int, ArrayView<float>>(FusedKernels.GateUpSwiGlu<F32Words>),
            a.LoadKernel<ArrayView<Floats4>, ArrayView<Words4>, ArrayView<Words4>, int, int, int, ArrayView<float>>(FusedKernels.GateUpSwiGlu<F16Words>),
            a.LoadKernel<ArrayView<Floats4>, ArrayView<Words4>, ArrayView<Words4>, int, int, int, ArrayView<float>>(FusedKernels.GateUpSwiGlu<Bf16Words>),
        ];
        NormGateUpSwiGlu =
        [
            a.LoadKernel<ArrayView<float>, ArrayView<float>, int, WeightView, float, ArrayView<float>, ArrayView<int>, ArrayView<Words4>, ArrayView<Words4>,
                int, int, int, ArrayView<float>>(FusedKernels.NormGateUpSwiGlu<F32Words>),
            a.LoadKernel<ArrayView<float>, ArrayView<float>, int, WeightView, float, ArrayView<float>, ArrayView<int>, ArrayView<Words4>, ArrayView<Words4>,
                int, int, int, ArrayView<float>>(FusedKernels.NormGateUpSwiGlu<F16Words>),
            a.LoadKernel<ArrayView<float>, ArrayView<float>, int, WeightView, float, ArrayView<float>, ArrayView<int>, ArrayView<Words4>, ArrayView<Words4>,
                int, int, int, ArrayView<float>>(FusedKernels.NormGateUpSwiGlu<Bf16Words>),
        ];
        NormGemvOutIn =
        [
            a.LoadKernel<ArrayView<float>, ArrayView<float>, int, WeightView, float, ArrayView<float>, ArrayView<int>, ArrayView<Words4>, WeightView,
                int, int, int, int, ArrayView<float>>(FusedKernels.NormGemvOutIn<F32Words>),
            a.LoadKernel<ArrayView<float>, ArrayView<float>, int, WeightView, float, ArrayView<float>, ArrayView<int>, ArrayView<Words4>, WeightView,
                int, int, int, int, ArrayView<float>>(FusedKernels.NormGemvOutIn<F16Words>),
            a.LoadKernel<ArrayView<float>, ArrayView<float>, int, WeightView, float, ArrayView<float>, ArrayView<int>, ArrayView<Words4>, WeightView,
                int, int, int, int, ArrayView<float>>(FusedKernels.NormGemvOutIn<Bf16Words>),
        ];
        CompileTime = watch.Elapsed;
    }

    /// <summary>How many kernels were loaded (a generic kernel counts once per weight dtype).</summary>
    public const int Count = 66;

    /// <summary>Wall time of loading (compiling) all of them.</summary>
    public TimeSpan CompileTime { get; }

    public Action<AcceleratorStream, Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>> Add { get; }

    public Action<AcceleratorStream, Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>> Multiply { get; }

    public Action<AcceleratorStream, Index1D, ArrayView<float>, float, ArrayView<float>> Scale { get; }

    public Action<AcceleratorStream, Index1D, ArrayView<float>, ArrayView<float>> Tanh { get; }

    public Action<AcceleratorStream, Index1D, ArrayView<float>, ArrayView<float>> Sigmoid { get; }

    public Action<AcceleratorStream, Index1D, ArrayView<float>, WeightView, int, ArrayView<float>> AddSigmoid { get; }

    public Action<AcceleratorStream, Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>> SwiGlu { get; }

    public Action<AcceleratorStream, Index1D, WeightView, ArrayView<int>, int, ArrayView<float>> Embedding { get; }

    public Action<AcceleratorStream, Index1D, ArrayView<float>, int, int, int, ArrayView<float>> RepeatKv { get; }

    public Action<AcceleratorStream, Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>, int, int, int> Rope { get; }

    public Action<AcceleratorStream, Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, ArrayView<int>, int> AppendKv { get; }

    public Action<AcceleratorStream, Index1D, ArrayView<float>, ArrayView<float>, int, ArrayView<float>> TokenShift { get; }

    public Action<AcceleratorStream, Index1D, ArrayView<float>, ArrayView<float>, WeightView, int, ArrayView<float>> MixShift { get; }

    public Action<AcceleratorStream, Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, WeightView, WeightView, int, int, int, ArrayView<float>> Rwkv6Ddlerp { get; }

    public Action<AcceleratorStream, Index1D, ArrayView<float>, WeightView, int, ArrayView<float>> Rwkv6Decay { get; }

    public Action<AcceleratorStream, Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>> Rwkv6BalanceKeys { get; }

    public Action<AcceleratorStream, Index1D, ArrayView<float>, WeightView, float, int, ArrayView<float>> Rwkv7Decay { get; }

    public Action<AcceleratorStream, Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>> Rwkv7ValueResidual { get; }

    public Action<AcceleratorStream, Index1D, ArrayView<float>, ArrayView<float>, int, int, int, int, int, float, ArrayView<float>> AttentionScores { get; }

    public Action<AcceleratorStream, Index1D, ArrayView<float>, ArrayView<float>, int, int, int, int, int, ArrayView<float>> AttentionOutput { get; }

    public Action<AcceleratorStream, Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, float, int, int, int, ArrayView<float>> Wkv6 { get; }

    public Action<AcceleratorStream, Index1D, ArrayView<float>, WeightView, WeightView, int, int, int, ArrayView<float>> MatMulOutInDot { get; }

    public Action<AcceleratorStream, Index1D, ArrayView<float>, WeightView, WeightView, int, int, int, ArrayView<float>> MatMulInOutDot { get; }

    public Action<AcceleratorStream, Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int, ArrayView<float>, float, ArrayView<float>, int> Wkv7Rows { get; }

    public Action<AcceleratorStream, KernelConfig, ArrayView<float>, WeightView, float, int, ArrayView<float>> RmsNorm { get; }

    public Action<AcceleratorStream, KernelConfig, ArrayView<float>, WeightView, WeightView, int, int, float, ArrayView<float>> GroupNorm { get; }

    public Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, WeightView, WeightView, int, int, int, ArrayView<float>, ArrayView<float>, ArrayView<float>> Rwkv7Keys { get; }

    public Action<AcceleratorStream, KernelConfig, ArrayView<float>, WeightView, WeightView, int, int, int, int, ArrayView<float>> MatMulOutIn { get; }

    public Action<AcceleratorStream, KernelConfig, ArrayView<float>, WeightView, WeightView, int, int, int, int, ArrayView<float>> MatMulInOut { get; }

    public Action<AcceleratorStream, KernelConfig, ArrayView<float>, int, int, int> AttentionSoftmax { get; }

    /// <summary>The decode GEMV (W [M, K], 16-byte loads), indexed by <see cref="Checkpoints.DType"/> (F32, F16, BF16).</summary>
    public Action<AcceleratorStream, KernelConfig, ArrayView<Floats4>, ArrayView<Words4>, WeightView, int, int, int, int, ArrayView<float>>[] GemvOutIn { get; }

    /// <summary>The decode GEMV for W [K, M] (LoRA factors, 16-byte loads), indexed by dtype as <see cref="GemvOutIn"/>.</summary>
    public Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<Words4>, WeightView, int, int, int, int, int, int, ArrayView<float>, ArrayView<float>>[] GemvInOut { get; }

    public Action<AcceleratorStream, Index1D, ArrayView<float>, WeightView, int, int, int, ArrayView<float>> GemvSplits { get; }

    public Action<AcceleratorStream, KernelConfig, ArrayView<float>, WeightView, WeightView, int, int, int, int, int, ArrayView<float>> MatMulTiled { get; }

    public Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int, ArrayView<int>, int, float, ArrayView<float>> AttentionFused { get; }

    public Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int, ArrayView<int>, int, int, int, float, ArrayView<float>> AttentionDecodeSplit { get; }

    public Action<AcceleratorStream, KernelConfig, ArrayView<float>, int, int, ArrayView<int>, int, int, int, ArrayView<float>> AttentionDecodeCombine { get; }

    public Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, WeightView, float, int, ArrayView<float>> AddRmsNorm { get; }

    public Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, WeightView, WeightView, int, int, int, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>> Rwkv7KeysValueResidual { get; }

    public Action<AcceleratorStream, KernelConfig, RopeKeysViews, ArrayView<float>, ArrayView<float>, ArrayView<int>, int, int, int, int, WeightView, WeightView, int> Rwkv7RopeKeys { get; }

    /// <summary><see cref="FusedKernels.GateUpSwiGlu{TW}"/> per weight dtype (f32, f16, bf16).</summary>
    public Action<AcceleratorStream, KernelConfig, ArrayView<Floats4>, ArrayView<Words4>, ArrayView<Words4>, int, int, int, ArrayView<float>>[] GateUpSwiGlu { get; }

    /// <summary><see cref="FusedKernels.NormGateUpSwiGlu{TW}"/> per weight dtype (f32, f16, bf16).</summary>
    public Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, int, WeightView, float, ArrayView<float>, ArrayView<int>, ArrayView<Words4>, ArrayView<Words4>, int, int, int, ArrayView<float>>[] NormGateUpSwiGlu { get; }

    /// <summary><see cref="FusedKernels.NormGemvOutIn{TW}"/> per weight dtype (f32, f16, bf16).</summary>
    public Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, int, WeightView, float, ArrayView<float>, ArrayView<int>, ArrayView<Words4>, WeightView, int, int, int, int, ArrayView<float>>[] NormGemvOutIn { get; }

    public Action<AcceleratorStream, Index1D, ArrayView<float>, float, ArrayView<float>, ArrayView<float>> ScaleMultiply { get; }

    public Action<AcceleratorStream, Index1D, ArrayView<float>, ArrayView<float>, int, int, int, ArrayView<float>, ArrayView<float>> ExpandKv { get; }

    public Action<AcceleratorStream, Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>, int, int, int, int, int, ArrayView<float>, ArrayView<float>> RopeExpand { get; }

    /// <summary>LoraSet's first launch (all A_i, split K, inner on the last group's write), indexed by dtype as <see cref="GemvOutIn"/>.</summary>
    public Action<AcceleratorStream, KernelConfig, ArrayView<float>, LoraTable, ArrayView<float>, ArrayView<int>, int, int, int, int>[] LoraDown { get; }

    /// <summary>LoraSet's second launch (all B_i, outer on the write), indexed by dtype as <see cref="GemvOutIn"/>.</summary>
    public Action<AcceleratorStream, KernelConfig, LoraTable, float, int>[] LoraUp { get; }

    /// <summary>A kernel that does nothing: measures the host cost of one launch.</summary>
    public Action<AcceleratorStream, Index1D, int> Empty { get; }

    public Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int, ArrayView<float>, float, ArrayView<float>, int> Wkv7 { get; }

    /// <summary><see cref="SamplingKernels.SampleScan"/>: groups = chunks · rows.</summary>
    public Action<AcceleratorStream, KernelConfig, ArrayView<float>, int, int, ArrayView<double>, int, ArrayView<SampleScanStats>, ArrayView<ulong>> SampleScan { get; }

    /// <summary><see cref="SamplingKernels.SampleFinish{TFma}"/> with the accelerator's fused multiply-add: a group per row.</summary>
    public Action<AcceleratorStream, KernelConfig, ArrayView<float>, int, int, ArrayView<double>, int, ArrayView<ulong>, ArrayView<int>, ArrayView<SampleScanStats>, ArrayView<ulong>, int> SampleFinish { get; }
}
