using Radlads.Ops;

namespace Radlads.Cuda;

internal sealed unsafe partial class CudaBackwardOps
{
    // CpuBackwardOps.StateCheckpointInterval; kernels/backward_rwkv*.cu use the same (#define CHECKPOINT).
    private const int StateCheckpointInterval = 16;

    public void Rwkv6DdlerpBackward(Tensor delta, Tensor lora, Tensor w2, Tensor mixes, Tensor dOutputs, Tensor? dx,
        Tensor? dDelta, Tensor? dLora, Tensor? dW2, Tensor? dMixes)
    {
        backend.Enter();
        const string op = nameof(Rwkv6DdlerpBackward);
        int c = delta.RowLength;
        int tokens = delta.RowCount;
        if (w2.Shape.Length != 3 || w2.Shape[0] != 5 || w2.Shape[2] != c)
        {
            throw new ArgumentException($"Rwkv6DdlerpBackward: w2 {w2.ShapeText} is not [5, R, {c}]");
        }

        int rank = w2.Shape[1];
        if (lora.RowLength != 5 * rank || lora.RowCount != tokens || dOutputs.ElementCount != 5L * tokens * c
            || mixes.ElementCount != 5 * c || (dx is not null && dx.ElementCount != delta.ElementCount)
            || (dDelta is not null && dDelta.ElementCount != delta.ElementCount)
            || (dLora is not null && dLora.ElementCount != lora.ElementCount)
            || (dW2 is not null && dW2.ElementCount != w2.ElementCount) || (dMixes is not null && dMixes.ElementCount != 5 * c))
        {
            throw new ArgumentException($"Rwkv6DdlerpBackward: delta {delta.ShapeText}, lora {lora.ShapeText}, mixes {mixes.ShapeText}, " +
                $"dOutputs {dOutputs.ShapeText}");
        }

        long n = (long)tokens * c;
        var w = C(w2);
        ulong pw = w.Pointer;
        int wType = (int)w.DType;
        var (pm, mType) = Param(mixes, 5 * c, op, "mixes");
        ulong pd = In(delta, n, op, "delta"), pl = In(lora, lora.ElementCount, op, "lora"), pg = In(dOutputs, 5 * n, op, "dOutputs");
        ulong pdx = Out(dx, n, op, "dx"), pdd = Out(dDelta, n, op, "dDelta"), pdl = Out(dLora, lora.ElementCount, op, "dLora");
        ulong pdw = Out(dW2, w2.ElementCount, op, "dW2"), pdm = Out(dMixes, 5 * c, op, "dMixes");
        if (n == 0)
        {
            return;
        }

        if (pdx != 0 || pdd != 0)
        {
            void** a = stackalloc void*[] { &pl, &pw, &wType, &pm, &mType, &pg, &tokens, &c, &rank, &pdx, &pdd };
            Elementwise(K.Rwkv6DdlerpBackwardInputs, "rwkv6_ddlerp_backward_inputs_f32", n, a);
        }

        if (pdl != 0 && rank > 0)
        {
            void** a = stackalloc void*[] { &pd, &pw, &wType, &pg, &tokens, &c, &rank, &pdl };
            backend.Launch(K.Rwkv6DdlerpBackwardLora, "rwkv6_ddlerp_backward_lora_f32", WarpBlocks((long)tokens * 5 * rank), 1, Threads, 0, a);
        }

        if (pdw != 0 && rank > 0)
        {
            void** a = stackalloc void*[] { &pd, &pl, &pg, &tokens, &c, &rank, &pdw };
            Elementwise(K.Rwkv6DdlerpBackwardW2, "rwkv6_ddlerp_backward_w2_f32", 5L * rank * c, a);
        }

        // dMixes[i] += Σ_t dOutputs_i[t] ⊙ delta[t], the five i as the launch's batches.
        ColumnSum(pg, n, pd, 0, tokens, c, pdm, c, 5);
    }

    public void Rwkv6DecayBackward(Tensor d, Tensor bias, Tensor dw, Tensor dd, Tensor? dBias)
    {
        backend.Enter();
        const string op = nameof(Rwkv6DecayBackward);
        int a = d.RowLength;
        long n = d.ElementCount;
        var (pb, bType) = Param(bias, a, op, "bias");
        ulong pd = In(d, n, op, "d"), pg = In(dw, n, op, "dw"), pdd = Out(dd, n, op, "dd"), pdb = Out(dBias, a, op, "dBias");
        void** args = stackalloc void*[] { &pd, &pb, &bType, &pg, &pdd, &n, &a };
        Elementwise(K.Rwkv6DecayBackward, "rwkv6_decay_backward_f32", n, args);
        ColumnSum(pdd, 0, 0, 0, d.RowCount, a, pdb, 0);
    }

    // y = k ⊙ (1 − w)
    public void Rwkv6BalanceKeysBackward(Tensor k, Tensor w, Tensor dy, Tensor? dk, Tensor? dw)
    {
        backend.Enter();
        const string op = nameof(Rwkv6BalanceKeysBackward);
        long n = k.ElementCount;
        ulong pk = In(k, n, op, "k"), pw = In(w, n, op, "w"), pg = In(dy, n, op, "dy");
        ulong pdk = Out(dk, n, op, "dk"), pdw = Out(dw, n, op, "dw");
        void** a = stackalloc void*[] { &pk, &pw, &pg, &pdk, &pdw, &n };
        Elementwise(K.Rwkv6BalanceKeysBackward, "rwkv6_balance_keys_backward_f32", n, a);
    }

    public void Wkv6Backward(Tensor r, Tensor k, Tensor v, Tensor w, Tensor initialState, float scale, Tensor dy,
        Tensor? dFinalState, Tensor dr, Tensor dk, Tensor dv, Tensor dw, Tensor? dInitialState)
    {
        backend.Enter();
        const string op = nameof(Wkv6Backward);
        int width = r.RowLength;
        int tokens = r.RowCount;
        if (initialState.Shape.Length != 3 || initialState.Shape[1] != initialState.Shape[2] || initialState.Shape[0] * initialState.Shape[1] != width)
        {
            throw new ArgumentException($"Wkv6Backward: state {initialState.ShapeText} does not match rows of {width}");
        }

        int heads = initialState.Shape[0];
        int n = initialState.Shape[1];
        long count = (long)tokens * width;
        long states = initialState.ElementCount;
        ulong pr = In(r, count, op, "r"), pk = In(k, count, op, "k"), pv = In(v, count, op, "v"), pw = In(w, count, op, "w");
        ulong pg = In(dy, count, op, "dy"), ps = In(initialState, states, op, "initialState");
        ulong pf = dFinalState is null ? 0 : In(dFinalState, states, op, "dFinalState");
        ulong pdr = Out(dr, count, op, "dr"), pdk = Out(dk, count, op, "dk"), pdv = Out(dv, count, op, "dv"), pdw = Out(dw, count, op, "dw");
        ulong pdi = Out(dInitialState, states, op, "dInitialState");
        uint shared = RecurrenceShared(op, n, (long)n * (n + 1));
        if (heads == 0 || n == 0)
        {
            return;
        }

        using var scratch = RecurrenceScratch(heads, tokens, n);
        ulong pscratch = P(scratch);
        void** a = stackalloc void*[] { &pr, &pk, &pv, &pw, &ps, &scale, &pg, &pf, &pdr, &pdk, &pdv, &pdw, &pdi, &tokens, &heads, &n, &pscratch };
        backend.Launch(K.Wkv6Backward, "wkv6_backward_f32", (uint)heads, 1, (uint)n, shared, a);
    }

    /// <summary>Dynamic shared memory of a recurrence's backward, checked against the device (one thread per row: N ≤ 1024).</summary>
    private uint RecurrenceShared(string op, int n, long floats)
    {
        long bytes = floats * sizeof(float);
        if (n > 1024 || bytes > K.MaxDynamicShared)
        {
            throw new NotSupportedException(
                $"{op}: a head of {n} needs {bytes:N0} bytes of shared memory; {backend.Device.Name} allows {K.MaxDynamicShared:N0} per block");
        }

        return (uint)bytes;
    }

    /// <summary>The recomputed states of every head: (chunks + 17)·N² floats per head (checkpoints, then one chunk's states).</summary>
    private Tensor RecurrenceScratch(int heads, int tokens, int n)
    {
        int chunks = (tokens + StateCheckpointInterval - 1) / StateCheckpointInterval;
        return Scratch(heads * (chunks + StateCheckpointInterval + 1), n, n);
    }
}
