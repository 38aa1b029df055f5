using Radlads.Ops;

namespace Radlads.Cpu;

/// <summary>
/// The batched recurrences of <see cref="IBackwardOps"/> on the CPU: one single-sequence call per sequence on its
/// rows and state heads, so each sequence's result is that call's, bit for bit (each call is parallel over heads).
/// </summary>
public sealed partial class CpuBackwardOps
{
    private static readonly CpuOps Forward = new();

    public void Wkv6Sequences(int sequences, Tensor r, Tensor k, Tensor v, Tensor w, Tensor state, float scale, Tensor y)
    {
        var (length, heads) = RecurrenceSequences.Split(nameof(Wkv6Sequences), sequences, r, state);
        for (int s = 0; s < sequences; s++)
        {
            Tensor Rows(Tensor t) => t.Rows(s * length, length);
            Forward.Wkv6(Rows(r), Rows(k), Rows(v), Rows(w), state.Rows(s * heads, heads), scale, Rows(y));
        }
    }

    public void Wkv6BackwardSequences(int sequences, Tensor r, Tensor k, Tensor v, Tensor w, Tensor initialState, float scale,
        Tensor dy, Tensor dr, Tensor dk, Tensor dv, Tensor dw)
    {
        var (length, heads) = RecurrenceSequences.Split(nameof(Wkv6BackwardSequences), sequences, r, initialState);
        for (int s = 0; s < sequences; s++)
        {
            Tensor Rows(Tensor t) => t.Rows(s * length, length);
            Wkv6Backward(Rows(r), Rows(k), Rows(v), Rows(w), initialState.Rows(s * heads, heads), scale, Rows(dy), null,
                Rows(dr), Rows(dk), Rows(dv), Rows(dw), null);
        }
    }

    public void Wkv7Sequences(int sequences, Tensor r, Tensor w, Tensor k, Tensor v, Tensor a, Tensor b, Tensor state, Tensor y)
    {
        var (length, heads) = RecurrenceSequences.Split(nameof(Wkv7Sequences), sequences, r, state);
        for (int s = 0; s < sequences; s++)
        {
            Tensor Rows(Tensor t) => t.Rows(s * length, length);
            Forward.Wkv7(Rows(r), Rows(w), Rows(k), Rows(v), Rows(a), Rows(b), state.Rows(s * heads, heads), Rows(y));
        }
    }

    public void Wkv7BackwardSequences(int sequences, Tensor r, Tensor w, Tensor k, Tensor v, Tensor a, Tensor b, Tensor initialState,
        Tensor dy, Tensor dr, Tensor dw, Tensor dk, Tensor dv, Tensor da, Tensor db)
    {
        var (length, heads) = RecurrenceSequences.Split(nameof(Wkv7BackwardSequences), sequences, r, initialState);
        for (int s = 0; s < sequences; s++)
        {
            Tensor Rows(Tensor t) => t.Rows(s * length, length);
            Wkv7Backward(Rows(r), Rows(w), Rows(k), Rows(v), Rows(a), Rows(b), initialState.Rows(s * heads, heads), Rows(dy), null,
                Rows(dr), Rows(dw), Rows(dk), Rows(dv), Rows(da), Rows(db), null);
        }
    }
}
