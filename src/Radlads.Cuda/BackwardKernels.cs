using Radlads.Native;

namespace Radlads.Cuda;

/// <summary>The CUfunction of every backward and training kernel (kernels/backward*.cu), resolved once per backend.</summary>
internal sealed class BackwardKernels
{
    public BackwardKernels(KernelLibrary library)
    {
        ColumnSum = library.Function("backward.cu", "column_sum_f32");
        ScaleBackward = library.Function("backward.cu", "scale_backward_f32");
        MultiplyBackward = library.Function("backward.cu", "multiply_backward_f32");
        TanhBackward = library.Function("backward.cu", "tanh_backward_f32");
        SigmoidBackward = library.Function("backward.cu", "sigmoid_backward_f32");
        SwiGluBackward = library.Function("backward.cu", "swiglu_backward_f32");
        RopeBackward = library.Function("backward.cu", "rope_backward_f32");
        RepeatKvBackward = library.Function("backward.cu", "repeat_kv_backward_f32");
        GroupNormBackward = library.Function("backward.cu", "group_norm_backward_f32");
        TokenShiftBackward = library.Function("backward.cu", "token_shift_backward_f32");
        MixShiftBackward = library.Function("backward.cu", "mix_shift_backward_f32");
        MatMulBackwardWeight = library.Function("backward_matmul.cu", "matmul_backward_weight_f32");
        MatMulBackwardWeightReduce = library.Function("backward_matmul.cu", "matmul_backward_weight_reduce_f32");
        Rwkv6DdlerpBackwardInputs = library.Function("backward_rwkv6.cu", "rwkv6_ddlerp_backward_inputs_f32");
        Rwkv6DdlerpBackwardLora = library.Function("backward_rwkv6.cu", "rwkv6_ddlerp_backward_lora_f32");
        Rwkv6DdlerpBackwardW2 = library.Function("backward_rwkv6.cu", "rwkv6_ddlerp_backward_w2_f32");
        Rwkv6DecayBackward = library.Function("backward_rwkv6.cu", "rwkv6_decay_backward_f32");
        Rwkv6BalanceKeysBackward = library.Function("backward_rwkv6.cu", "rwkv6_balance_keys_backward_f32");
        Wkv6Backward = library.Function("backward_rwkv6.cu", "wkv6_backward_f32");
        Rwkv7DecayBackward = library.Function("backward_rwkv7.cu", "rwkv7_decay_backward_f32");
        Rwkv7KeysBackward = library.Function("backward_rwkv7.cu", "rwkv7_keys_backward_f32");
        Rwkv7ValueResidualBackward = library.Function("backward_rwkv7.cu", "rwkv7_value_residual_backward_f32");
        Wkv7Backward = library.Function("backward_rwkv7.cu", "wkv7_backward_f32");
        AlignmentLoss = library.Function("backward_training.cu", "alignment_loss_f32");
        SumDouble = library.Function("backward_training.cu", "sum_double");
        SumOfSquares = library.Function("backward_training.cu", "sum_of_squares_f32");
        Fill = library.Function("backward_training.cu", "fill_f32");
        AdamW = library.Function("backward_training.cu", "adamw_f32");

        // The recurrences keep a head's state gradient in shared memory: allow them the device's opt-in maximum.
        var device = library.Device;
        MaxDynamicShared = device.MaxSharedMemoryPerBlockOptin;
        device.Driver.SetFunctionAttribute(Wkv6Backward, FunctionAttribute.MaxDynamicSharedSizeBytes, MaxDynamicShared);
        device.Driver.SetFunctionAttribute(Wkv7Backward, FunctionAttribute.MaxDynamicSharedSizeBytes, MaxDynamicShared);
    }

    public int MaxDynamicShared { get; }

    public nint ColumnSum { get; }

    public nint ScaleBackward { get; }

    public nint MultiplyBackward { get; }

    public nint TanhBackward { get; }

    public nint SigmoidBackward { get; }

    public nint SwiGluBackward { get; }

    public nint RopeBackward { get; }

    public nint RepeatKvBackward { get; }

    public nint GroupNormBackward { get; }

    public nint TokenShiftBackward { get; }

    public nint MixShiftBackward { get; }

    public nint MatMulBackwardWeight { get; }

    public nint MatMulBackwardWeightReduce { get; }

    public nint Rwkv6DdlerpBackwardInputs { get; }

    public nint Rwkv6DdlerpBackwardLora { get; }

    public nint Rwkv6DdlerpBackwardW2 { get; }

    public nint Rwkv6DecayBackward { get; }

    public nint Rwkv6BalanceKeysBackward { get; }

    public nint Wkv6Backward { get; }

    public nint Rwkv7DecayBackward { get; }

    public nint Rwkv7KeysBackward { get; }

    public nint Rwkv7ValueResidualBackward { get; }

    public nint Wkv7Backward { get; }

    public nint AlignmentLoss { get; }

    public nint SumDouble { get; }

    public nint SumOfSquares { get; }

    public nint Fill { get; }

    public nint AdamW { get; }
}
