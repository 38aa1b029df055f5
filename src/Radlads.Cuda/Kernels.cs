using Radlads.Checkpoints;
using Radlads.Native;

namespace Radlads.Cuda;

/// <summary>The CUfunction of every kernel the backend launches, resolved once per device.</summary>
internal sealed class Kernels
{
    public Kernels(KernelLibrary library)
    {
        Library = library;
        Add = library.Function("elementwise.cu", "add_f32");
        Multiply = library.Function("elementwise.cu", "multiply_f32");
        Scale = library.Function("elementwise.cu", "scale_f32");
        Tanh = library.Function("elementwise.cu", "tanh_f32");
        Sigmoid = library.Function("elementwise.cu", "sigmoid_f32");
        AddSigmoid = library.Function("elementwise.cu", "add_sigmoid_f32");
        SwiGlu = library.Function("elementwise.cu", "swiglu_f32");
        SwiGluBf16 = library.Function("elementwise.cu", "swiglu_bf16_f32");
        SwiGluBf16Bf16 = library.Function("elementwise.cu", "swiglu_bf16_bf16");
        Embedding = library.Function("embedding.cu", "embedding_f32");
        RmsNorm = library.Function("norms.cu", "rms_norm_f32");
        AddRmsNorm = library.Function("norms.cu", "add_rms_norm_f32");
        RmsNormBf16 = library.Function("norms.cu", "rms_norm_bf16_f32");
        AddRmsNormBf16 = library.Function("norms.cu", "add_rms_norm_bf16_f32");
        GroupNorm = library.Function("norms.cu", "group_norm_f32");
        MatMulOutIn = [library.Function("matmul.cu", "matmul_outin_f32"), library.Function("matmul.cu", "matmul_outin_f16"), library.Function("matmul.cu", "matmul_outin_bf16")];
        MatMulInOut = [library.Function("matmul.cu", "matmul_inout_f32"), library.Function("matmul.cu", "matmul_inout_f16"), library.Function("matmul.cu", "matmul_inout_bf16")];
        string[] dtypes = ["f32", "f16", "bf16"];
        GemvVector = [.. dtypes.Select(d => new[] { 1, 2, 4, 8 }.Select(w => library.Function("matmul.cu", $"gemv_{d}_vec{w}")).ToArray())];
        GemvGroup = [.. dtypes.Select(d => new[] { 1, 2, 4, 8 }.Select(w => library.Function("matmul.cu", $"gemv_group_{d}_vec{w}")).ToArray())];
        GateUpSwiGlu = [.. dtypes.Select(d => new[] { 1, 2, 4, 8 }.Select(w => library.Function("matmul.cu", $"gate_up_swiglu_{d}_vec{w}")).ToArray())];
        GemvGroupLoraDownBf16 = [.. new[] { 1, 2, 4, 8 }.Select(w => library.Function("matmul.cu", $"gemv_group_lora_down_bf16_vec{w}"))];
        NormGemvGroup = [.. dtypes.Select(d => new[] { 1, 2, 4, 8 }.Select(w => library.Function("matmul.cu", $"norm_gemv_group_{d}_vec{w}")).ToArray())];
        NormGateUpSwiGlu = [.. dtypes.Select(d => new[] { 1, 2, 4, 8 }.Select(w => library.Function("matmul.cu", $"norm_gate_up_swiglu_{d}_vec{w}")).ToArray())];
        MlpDecodeBf16 = [.. new[] { 0, 1, 2 }.Select(g => new[] { 0, 1, 2, 3 }.Select(d => library.Function("matmul.cu", $"mlp_decode_bf16_g{g}_d{d}")).ToArray())];
        MlpStreamBf16 = [.. new[] { 0, 1, 2 }.Select(g => new[] { 0, 1, 2, 3 }.Select(d => library.Function("matmul.cu", $"mlp_stream_bf16_g{g}_d{d}")).ToArray())];
        GemvScalar = [.. dtypes.Select(d => library.Function("matmul.cu", $"gemv_{d}_scalar"))];
        GemvInOutVector = [.. dtypes.Select(d => library.Function("matmul.cu", $"gemv_inout_{d}_vec"))];
        GemvInOutScalar = [.. dtypes.Select(d => library.Function("matmul.cu", $"gemv_inout_{d}_scalar"))];
        LoraDownF16 = library.Function("lora.cu", "lora_down_f16");
        LoraDownBf16 = library.Function("lora.cu", "lora_down_bf16");
        LoraUpF16L4 = library.Function("lora.cu", "lora_up_f16_l4");
        LoraUpF16L8 = library.Function("lora.cu", "lora_up_f16_l8");
        LoraUpBf16L4 = library.Function("lora.cu", "lora_up_bf16_l4");
        LoraUpBf16L8 = library.Function("lora.cu", "lora_up_bf16_l8");
        LoraInnerBf16 = library.Function("lora.cu", "lora_inner_bf16");
        PrefetchL2 = library.Function("prefetch.cu", "prefetch_l2");
        ToBf16 = library.Function("matmul.cu", "f32_to_bf16");
        ToBf16Pairs = library.Function("matmul.cu", "f32_to_bf16_pairs");
        ParamToF32 = library.Function("matmul.cu", "param_to_f32");
        Rope = library.Function("attention.cu", "rope_f32");
        RepeatKv = library.Function("attention.cu", "repeat_kv_f32");
        RopeExpand = library.Function("attention.cu", "rope_expand_f32");
        ExpandKv = library.Function("attention.cu", "expand_kv_f32");
        ScaleMultiply = library.Function("elementwise.cu", "scale_multiply_f32");
        ScaleMultiplyBf16 = library.Function("elementwise.cu", "scale_multiply_bf16_f32");
        AppendKv = library.Function("attention.cu", "append_kv_f32");
        Attention = library.Function("attention.cu", "attention_f32");
        AttentionSplit = library.Function("attention.cu", "attention_split_f32");
        AttentionPrefill = library.Function("attention.cu", "attention_prefill_f32");
        AttentionCombine = library.Function("attention.cu", "attention_combine_f32");
        AttentionPrefillTc = [.. TensorCoreAttentionHeadDims.Select(n => library.Function("attention.cu", $"attention_prefill_tc_{n}"))];
        AttentionKvToBf16 = library.Function("attention.cu", "attention_kv_to_bf16");
        TokenShift = library.Function("rwkv6.cu", "token_shift_f32");
        MixShift = library.Function("rwkv6.cu", "mix_shift_f32");
        Rwkv6Ddlerp = library.Function("rwkv6.cu", "rwkv6_ddlerp_f32");
        Rwkv6Decay = library.Function("rwkv6.cu", "rwkv6_decay_f32");
        Rwkv6BalanceKeys = library.Function("rwkv6.cu", "rwkv6_balance_keys_f32");
        Wkv6 = library.Function("rwkv6.cu", "wkv6_f32");
        Wkv6Rows = library.Function("rwkv6.cu", "wkv6_rows_f32");
        Rwkv7Decay = library.Function("rwkv7.cu", "rwkv7_decay_f32");
        Rwkv7Keys = library.Function("rwkv7.cu", "rwkv7_keys_f32");
        Rwkv7KeysValueResidual = library.Function("rwkv7.cu", "rwkv7_keys_vres_f32");
        Rwkv7RopeKeysRows = library.Function("rwkv7.cu", "rwkv7_rope_keys_rows_f32");
        Rwkv7ValueResidual = library.Function("rwkv7.cu", "rwkv7_value_residual_f32");
        Wkv7 = library.Function("rwkv7.cu", "wkv7_f32");
        Wkv7Decode = library.Function("rwkv7.cu", "wkv7_decode_f32");
        Wkv7Tile = CudaOps.Wkv7TileKernels.ToDictionary(x => x, x => library.Function("rwkv7.cu", $"wkv7_tile_f32_ne{x.Ne}_r{x.Rows}_l{x.Lanes}"));
        Wkv7ChunkPrep = CudaOps.Wkv7ChunkedHeadDims.ToDictionary(n => n, n => library.Function("wkv7_chunked.cu", $"wkv7_chunk_prep_f32_n{n}"));
        Wkv7ChunkPrepKeys = CudaOps.Wkv7ChunkedHeadDims.ToDictionary(n => n, n => library.Function("wkv7_chunked.cu", $"wkv7_chunk_prep_keys_f32_n{n}"));
        RopeTable = library.Function("wkv7_chunked.cu", "rope_table_f32");
        Wkv7ChunkScan = CudaOps.Wkv7ChunkedHeadDims.SelectMany(n => CudaOps.Wkv7ChunkScanRowChoices.Select(rows => (n, rows)))
            .ToDictionary(x => x, x => library.Function("wkv7_chunked.cu", $"wkv7_chunk_scan_f32_n{x.n}{(x.rows == 32 ? "" : $"_r{x.rows}")}"));
        Sample = library.Function("sampling.cu", "sample_f32");
        SampleScan = library.Function("sampling.cu", "sample_scan_f32");
        SampleFinish = library.Function("sampling.cu", "sample_finish_f32");

        // Kernels whose dynamic shared memory may pass the 48 KB default get the device's opt-in maximum, less their own
        // static shared arrays (which come out of the same per-block budget: asking for the whole maximum beside them is
        // refused).
        var device = library.Device;
        MaxDynamicShared = device.MaxSharedMemoryPerBlockOptin;
        void AllowMaxShared(nint f) => device.Driver.SetFunctionAttribute(f, FunctionAttribute.MaxDynamicSharedSizeBytes,
            MaxDynamicShared - device.Driver.GetFunctionAttribute(f, FunctionAttribute.SharedSizeBytes));

        // The recurrences keep a head's whole state in shared memory.
        AllowMaxShared(Wkv6);
        AllowMaxShared(Wkv7);
        // The tiled prefill scan double-buffers 16 tokens of five vectors: 86 KB at head dim 128.
        foreach (var f in Wkv7Tile.Values)
        {
            AllowMaxShared(f);
        }

        // The chunked Wkv7 prefill: 56 KB (prep) and 141 KB (scan: two staged chunk records; 108 KB in blocks of 16 rows)
        // at head dim 128.
        foreach (var f in Wkv7ChunkPrep.Values.Concat(Wkv7ChunkPrepKeys.Values).Concat(Wkv7ChunkScan.Values))
        {
            AllowMaxShared(f);
        }

        // A scan kernel's block size is its launch bound (the kernel picks its warps: Wkv7cScan<N, R, W>).
        Wkv7ChunkScanThreads = Wkv7ChunkScan.ToDictionary(x => x.Key, x => device.Driver.GetFunctionAttribute(x.Value, FunctionAttribute.MaxThreadsPerBlock));

        // The persistent MLP keeps the normed row in shared memory: C floats, past 48 KB from C = 12,288.
        foreach (var f in MlpDecodeBf16.SelectMany(byDown => byDown))
        {
            AllowMaxShared(f);
        }

        // The streamed MLP's ring of weight stages takes most of an SM's shared memory.
        foreach (var f in MlpStreamBf16.SelectMany(byDown => byDown))
        {
            AllowMaxShared(f);
        }

        // Prefill attention stages 16 query rows and 32 keys and values: 82 KB at head dim 256.
        AllowMaxShared(AttentionPrefill);
        // The tensor-core prefill double-buffers its tiles: 70 KB at head dim 128 (past the 48 KB default).
        for (int i = 0; i < AttentionPrefillTc.Length; i++)
        {
            int bytes = TensorCoreAttentionSharedWords(TensorCoreAttentionHeadDims[i]) * sizeof(uint);
            if (bytes <= MaxDynamicShared)
            {
                device.Driver.SetFunctionAttribute(AttentionPrefillTc[i], FunctionAttribute.MaxDynamicSharedSizeBytes, bytes);
            }
        }
    }

    /// <summary>The head dims attention_prefill_tc_N is compiled for (kernels/attention.cu), in the order of <see cref="AttentionPrefillTc"/>.</summary>
    public static readonly int[] TensorCoreAttentionHeadDims = [16, 32, 64, 128];

    public KernelLibrary Library { get; }

    /// <summary>attention_prefill_tc_N for each of <see cref="TensorCoreAttentionHeadDims"/>.</summary>
    public nint[] AttentionPrefillTc { get; }

    /// <summary>attention_kv_to_bf16: the bf16 K and transposed V that attention_prefill_tc_N reads.</summary>
    public nint AttentionKvToBf16 { get; }

    /// <summary>
    /// Dynamic shared memory of attention_prefill_tc_N in 32-bit words: two stages of a K tile [64][N/2 + 4] and a
    /// transposed V tile [N][36] (kernels/attention.cu).
    /// </summary>
    public static int TensorCoreAttentionSharedWords(int headDim) => 2 * ((64 * ((headDim / 2) + 4)) + (headDim * 36));

    public int MaxDynamicShared { get; }

    public nint Add { get; }

    public nint Multiply { get; }

    public nint Scale { get; }

    public nint Tanh { get; }

    public nint Sigmoid { get; }

    public nint AddSigmoid { get; }

    public nint SwiGlu { get; }

    /// <summary>swiglu_f32 that also writes a bf16 copy of y (prefill: the MLP down projection's cuBLASLt input).</summary>
    public nint SwiGluBf16 { get; }

    /// <summary>swiglu_bf16_bf16: SwiGLU of bf16 gate and up into bf16 act (the prefill MLP of CudaOps.Mlp.cs).</summary>
    public nint SwiGluBf16Bf16 { get; }

    public nint Embedding { get; }

    public nint RmsNorm { get; }

    public nint AddRmsNorm { get; }

    /// <summary>rms_norm_f32 that also writes a bf16 copy of y (prefill: the q/k/v cuBLASLt input).</summary>
    public nint RmsNormBf16 { get; }

    /// <summary>add_rms_norm_f32 that also writes a bf16 copy of y (prefill: the q/k/v or MLP gate/up cuBLASLt input).</summary>
    public nint AddRmsNormBf16 { get; }

    public nint GroupNorm { get; }

    /// <summary>Indexed by <see cref="DType"/> (F32, F16, BF16).</summary>
    public nint[] MatMulOutIn { get; }

    public nint[] MatMulInOut { get; }

    /// <summary>By dtype, then by warps per row (1, 2, 4, 8).</summary>
    public nint[][] GemvVector { get; }

    /// <summary>By dtype, then by warps per row (1, 2, 4, 8): up to three matrices sharing x.</summary>
    public nint[][] GemvGroup { get; }

    /// <summary>gate_up_swiglu_{dtype}_vec{1,2,4,8}: IOps.GateUpSwiGlu at T = 1, [dtype][log2 warps per row].</summary>
    public nint[][] GateUpSwiGlu { get; }

    /// <summary>norm_gemv_group_{dtype}_vec{1,2,4,8}: IOps.AddRmsNormMatMulShared at T = 1, as <see cref="GemvGroup"/>.</summary>
    public nint[][] NormGemvGroup { get; }

    /// <summary>norm_gate_up_swiglu_{dtype}_vec{1,2,4,8}: IOps.AddRmsNormGateUpSwiGlu at T = 1, as <see cref="GateUpSwiGlu"/>.</summary>
    public nint[][] NormGateUpSwiGlu { get; }

    /// <summary>
    /// mlp_decode_bf16_g{0,1,2}_d{0,1,2,3}: IOps.AddRmsNormMlp at T = 1 in one persistent launch, by gate/up level (the
    /// level of <see cref="GateUpSwiGlu"/>) and down level (of <see cref="GemvVector"/>).
    /// </summary>
    public nint[][] MlpDecodeBf16 { get; }

    /// <summary>
    /// mlp_stream_bf16_g{0,1,2}_d{0,1,2,3}: the same as <see cref="MlpDecodeBf16"/> (same levels, same bits) with the
    /// weights streamed into a shared-memory ring by bulk copies (sm_90).
    /// </summary>
    public nint[][] MlpStreamBf16 { get; }

    public nint[] GemvScalar { get; }

    public nint[] GemvInOutVector { get; }

    public nint[] GemvInOutScalar { get; }

    /// <summary>LoraSet at decode, first factors of every branch (x · A_i, inner on the write), by weight dtype.</summary>
    public nint LoraDownF16 { get; }

    public nint LoraDownBf16 { get; }

    /// <summary>LoraSet at decode, second factors (hidden_i · B_i, outer on the write), 4 or 8 lanes of 8 columns per block.</summary>
    public nint LoraUpF16L4 { get; }

    public nint LoraUpF16L8 { get; }

    public nint LoraUpBf16L4 { get; }

    public nint LoraUpBf16L8 { get; }

    /// <summary>Prefill LoraSet: inner (tanh/σ/none) in place on hidden [T, R] and its bf16 copy for the up GEMM.</summary>
    public nint LoraInnerBf16 { get; }

    public nint PrefetchL2 { get; }

    /// <summary>gemv_group_lora_down_bf16_vec{1,2,4,8} (matmul.cu): q/k/v and LoraSet's down projections in one launch.</summary>
    public nint[] GemvGroupLoraDownBf16 { get; }

    /// <summary>fp32 → bf16 (round to nearest even) for the cuBLASLt GEMMs: one element, or two per thread and step.</summary>
    public nint ToBf16 { get; }

    public nint ToBf16Pairs { get; }

    /// <summary>A parameter vector of any dtype → fp32 (cuBLASLt's bias epilogue reads fp32 for an fp32 output).</summary>
    public nint ParamToF32 { get; }

    public nint Rope { get; }

    public nint RepeatKv { get; }

    public nint RopeExpand { get; }

    public nint ExpandKv { get; }

    public nint ScaleMultiply { get; }

    /// <summary>scale_multiply_f32 that also writes a bf16 copy of y (prefill: o_proj's cuBLASLt input).</summary>
    public nint ScaleMultiplyBf16 { get; }

    public nint AppendKv { get; }

    public nint Attention { get; }

    public nint AttentionSplit { get; }

    /// <summary>Attention for T &gt; 1: 16 query rows per block against shared-memory tiles of 32 keys.</summary>
    public nint AttentionPrefill { get; }

    public nint AttentionCombine { get; }

    public nint TokenShift { get; }

    public nint MixShift { get; }

    public nint Rwkv6Ddlerp { get; }

    public nint Rwkv6Decay { get; }

    public nint Rwkv6BalanceKeys { get; }

    public nint Wkv6 { get; }

    /// <summary>Wkv6 for T &gt; 1: a warp per value column, H·N warps.</summary>
    public nint Wkv6Rows { get; }

    public nint Rwkv7Decay { get; }

    public nint Rwkv7Keys { get; }

    public nint Rwkv7KeysValueResidual { get; }

    public nint Rwkv7RopeKeysRows { get; }

    public nint Rwkv7ValueResidual { get; }

    public nint Wkv7 { get; }

    public nint Wkv7Decode { get; }

    /// <summary>Wkv7 for T &gt; 1, register-tiled: wkv7_tile_f32_ne{NE}_r{R}_l{L} by (NE, R, L), see CudaOps.Wkv7TileGeometry.</summary>
    public Dictionary<(int Ne, int Rows, int Lanes), nint> Wkv7Tile { get; }

    /// <summary>wkv7_chunk_prep_f32_n{N} (kernels/wkv7_chunked.cu) by head dim N (<see cref="CudaOps.Wkv7ChunkedHeadDims"/>).</summary>
    public Dictionary<int, nint> Wkv7ChunkPrep { get; }

    /// <summary>wkv7_chunk_prep_keys_f32_n{N} (IOps.Rwkv7RopeKeysWkv7: the prep that forms the keys itself) by head dim N.</summary>
    public Dictionary<int, nint> Wkv7ChunkPrepKeys { get; }

    /// <summary>rope_table_f32: a prompt chunk's RoPE (cos, sin) table (<see cref="CudaBackend.RopeTable"/>).</summary>
    public nint RopeTable { get; }

    /// <summary>wkv7_chunk_scan_f32_n{N} (blocks of 32 state rows) and _n{N}_r16 (16) by head dim N and rows a block.</summary>
    public Dictionary<(int N, int Rows), nint> Wkv7ChunkScan { get; }

    /// <summary>Threads of a block of each <see cref="Wkv7ChunkScan"/> kernel (its launch bound, read from the module).</summary>
    public Dictionary<(int N, int Rows), int> Wkv7ChunkScanThreads { get; }

    public nint Sample { get; }

    public nint SampleScan { get; }

    public nint SampleFinish { get; }
}
