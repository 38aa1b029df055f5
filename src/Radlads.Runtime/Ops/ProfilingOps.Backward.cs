namespace Radlads.Ops;

/// <summary>
/// The backward and training ops (<see cref="IBackwardOps"/>) timed like the forward ops, into the same table, so a
/// training run's profile shows forward, backward, loss and optimiser side by side.
/// </summary>
public sealed partial class ProfilingOps : IBackwardOps
{
    private IBackwardOps? backward;

    private IBackwardOps Inner => backward ?? throw new InvalidOperationException("this profiled backend has no backward ops");

    /// <summary>Times <paramref name="ops"/> too (once; the backend's backward ops do not change).</summary>
    public ProfilingOps WithBackward(IBackwardOps ops)
    {
        backward ??= ops;
        return this;
    }

    public void MatMulBackward(Tensor x, Tensor weight, Tensor dy, Tensor? dx, Tensor? dWeight, Tensor? dBias,
        WeightLayout layout = WeightLayout.OutIn)
    {
        long start = Start();
        Inner.MatMulBackward(x, weight, dy, dx, dWeight, dBias, layout);
        Time(nameof(MatMulBackward), start);
    }

    public void ScaleBackward(Tensor dy, float s, Tensor dx)
    {
        long start = Start();
        Inner.ScaleBackward(dy, s, dx);
        Time(nameof(ScaleBackward), start);
    }

    public void MultiplyBackward(Tensor a, Tensor b, Tensor dy, Tensor? da, Tensor? db)
    {
        long start = Start();
        Inner.MultiplyBackward(a, b, dy, da, db);
        Time(nameof(MultiplyBackward), start);
    }

    public void TanhBackward(Tensor y, Tensor dy, Tensor dx)
    {
        long start = Start();
        Inner.TanhBackward(y, dy, dx);
        Time(nameof(TanhBackward), start);
    }

    public void SigmoidBackward(Tensor y, Tensor dy, Tensor dx)
    {
        long start = Start();
        Inner.SigmoidBackward(y, dy, dx);
        Time(nameof(SigmoidBackward), start);
    }

    public void AddSigmoidBackward(Tensor y, Tensor dy, Tensor dx, Tensor? dBias)
    {
        long start = Start();
        Inner.AddSigmoidBackward(y, dy, dx, dBias);
        Time(nameof(AddSigmoidBackward), start);
    }

    public void SwiGluBackward(Tensor gate, Tensor up, Tensor dy, Tensor? dGate, Tensor? dUp)
    {
        long start = Start();
        Inner.SwiGluBackward(gate, up, dy, dGate, dUp);
        Time(nameof(SwiGluBackward), start);
    }

    public void RopeBackward(Tensor dx, int heads, int headDim, int startPosition, float theta)
    {
        long start = Start();
        Inner.RopeBackward(dx, heads, headDim, startPosition, theta);
        Time(nameof(RopeBackward), start);
    }

    public void RepeatKvBackward(Tensor dy, int kvHeads, int headDim, int groups, Tensor dx)
    {
        long start = Start();
        Inner.RepeatKvBackward(dy, kvHeads, headDim, groups, dx);
        Time(nameof(RepeatKvBackward), start);
    }

    public void GroupNormBackward(Tensor x, Tensor weight, Tensor dy, int groups, float eps, Tensor? dx,
        Tensor? dWeight, Tensor? dBias)
    {
        long start = Start();
        Inner.GroupNormBackward(x, weight, dy, groups, eps, dx, dWeight, dBias);
        Time(nameof(GroupNormBackward), start);
    }

    public void TokenShiftBackward(Tensor dDelta, Tensor? dFinalState, Tensor dx, Tensor? dInitialState)
    {
        long start = Start();
        Inner.TokenShiftBackward(dDelta, dFinalState, dx, dInitialState);
        Time(nameof(TokenShiftBackward), start);
    }

    public void MixShiftBackward(Tensor delta, Tensor mix, Tensor dy, Tensor? dx, Tensor? dDelta, Tensor? dMix)
    {
        long start = Start();
        Inner.MixShiftBackward(delta, mix, dy, dx, dDelta, dMix);
        Time(nameof(MixShiftBackward), start);
    }

    public void Rwkv6DdlerpBackward(Tensor delta, Tensor lora, Tensor w2, Tensor mixes, Tensor dOutputs, Tensor? dx,
        Tensor? dDelta, Tensor? dLora, Tensor? dW2, Tensor? dMixes)
    {
        long start = Start();
        Inner.Rwkv6DdlerpBackward(delta, lora, w2, mixes, dOutputs, dx, dDelta, dLora, dW2, dMixes);
        Time(nameof(Rwkv6DdlerpBackward), start);
    }

    public void Rwkv6DecayBackward(Tensor d, Tensor bias, Tensor dw, Tensor dd, Tensor? dBias)
    {
        long start = Start();
        Inner.Rwkv6DecayBackward(d, bias, dw, dd, dBias);
        Time(nameof(Rwkv6DecayBackward), start);
    }

    public void Rwkv6BalanceKeysBackward(Tensor k, Tensor w, Tensor dy, Tensor? dk, Tensor? dw)
    {
        long start = Start();
        Inner.Rwkv6BalanceKeysBackward(k, w, dy, dk, dw);
        Time(nameof(Rwkv6BalanceKeysBackward), start);
    }

    public void Wkv6Backward(Tensor r, Tensor k, Tensor v, Tensor w, Tensor initialState, float scale, Tensor dy,
        Tensor? dFinalState, Tensor dr, Tensor dk, Tensor dv, Tensor dw, Tensor? dInitialState)
    {
        long start = Start();
        Inner.Wkv6Backward(r, k, v, w, initialState, scale, dy, dFinalState, dr, dk, dv, dw, dInitialState);
        Time(nameof(Wkv6Backward), start);
    }

    public void Rwkv7DecayBackward(Tensor z, Tensor w0, Tensor dw, Tensor dz, Tensor? dW0)
    {
        long start = Start();
        Inner.Rwkv7DecayBackward(z, w0, dw, dz, dW0);
        Time(nameof(Rwkv7DecayBackward), start);
    }

    public void Rwkv7KeysBackward(Tensor k, Tensor w, Tensor a, Tensor? keyScale, Tensor? iclrMix, int headDim,
        bool balanced, Tensor dRemoval, Tensor dReplacement, Tensor dKTilde, Tensor dk, Tensor? dw, Tensor da,
        Tensor? dKeyScale, Tensor? dIclrMix)
    {
        long start = Start();
        Inner.Rwkv7KeysBackward(k, w, a, keyScale, iclrMix, headDim, balanced, dRemoval, dReplacement, dKTilde, dk, dw, da, dKeyScale, dIclrMix);
        Time(nameof(Rwkv7KeysBackward), start);
    }

    public void Rwkv7ValueResidualBackward(Tensor v, Tensor vFirst, Tensor nu, Tensor dy, Tensor? dv, Tensor? dVFirst,
        Tensor? dNu)
    {
        long start = Start();
        Inner.Rwkv7ValueResidualBackward(v, vFirst, nu, dy, dv, dVFirst, dNu);
        Time(nameof(Rwkv7ValueResidualBackward), start);
    }

    public void Wkv7Backward(Tensor r, Tensor w, Tensor k, Tensor v, Tensor a, Tensor b, Tensor initialState, Tensor dy,
        Tensor? dFinalState, Tensor dr, Tensor dw, Tensor dk, Tensor dv, Tensor da, Tensor db, Tensor? dInitialState)
    {
        long start = Start();
        Inner.Wkv7Backward(r, w, k, v, a, b, initialState, dy, dFinalState, dr, dw, dk, dv, da, db, dInitialState);
        Time(nameof(Wkv7Backward), start);
    }

    public void Wkv6Sequences(int sequences, Tensor r, Tensor k, Tensor v, Tensor w, Tensor state, float scale,
        Tensor y)
    {
        long start = Start();
        Inner.Wkv6Sequences(sequences, r, k, v, w, state, scale, y);
        Time(nameof(Wkv6Sequences), start);
    }

    public void Wkv6BackwardSequences(int sequences, Tensor r, Tensor k, Tensor v, Tensor w, Tensor initialState,
        float scale, Tensor dy, Tensor dr, Tensor dk, Tensor dv, Tensor dw)
    {
        long start = Start();
        Inner.Wkv6BackwardSequences(sequences, r, k, v, w, initialState, scale, dy, dr, dk, dv, dw);
        Time(nameof(Wkv6BackwardSequences), start);
    }

    public void Wkv7Sequences(int sequences, Tensor r, Tensor w, Tensor k, Tensor v, Tensor a, Tensor b, Tensor state,
        Tensor y)
    {
        long start = Start();
        Inner.Wkv7Sequences(sequences, r, w, k, v, a, b, state, y);
        Time(nameof(Wkv7Sequences), start);
    }

    public void Wkv7BackwardSequences(int sequences, Tensor r, Tensor w, Tensor k, Tensor v, Tensor a, Tensor b,
        Tensor initialState, Tensor dy, Tensor dr, Tensor dw, Tensor dk, Tensor dv, Tensor da, Tensor db)
    {
        long start = Start();
        Inner.Wkv7BackwardSequences(sequences, r, w, k, v, a, b, initialState, dy, dr, dw, dk, dv, da, db);
        Time(nameof(Wkv7BackwardSequences), start);
    }

    public double AlignmentLoss(Tensor teacher, Tensor student, float gradScale, Tensor? dStudent)
    {
        long start = Start();
        var result = Inner.AlignmentLoss(teacher, student, gradScale, dStudent);
        Time(nameof(AlignmentLoss), start);
        return result;
    }

    public void Fill(Tensor x, float value)
    {
        long start = Start();
        Inner.Fill(x, value);
        Time(nameof(Fill), start);
    }

    public void SumsOfSquares(IReadOnlyList<Tensor> xs, Span<double> sums)
    {
        long start = Start();
        Inner.SumsOfSquares(xs, sums);
        Time(nameof(SumsOfSquares), start);
    }

    public double SumOfSquares(Tensor x)
    {
        long start = Start();
        var result = Inner.SumOfSquares(x);
        Time(nameof(SumOfSquares), start);
        return result;
    }

    public void AdamW(Tensor param, Tensor grad, Tensor m, Tensor v, float lr, float beta1, float beta2, float eps,
        float weightDecay, float gradScale, int step)
    {
        long start = Start();
        Inner.AdamW(param, grad, m, v, lr, beta1, beta2, eps, weightDecay, gradScale, step);
        Time(nameof(AdamW), start);
    }
}
