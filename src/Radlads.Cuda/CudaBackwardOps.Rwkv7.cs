using Radlads.Ops;

namespace Radlads.Cuda;

internal sealed unsafe partial class CudaBackwardOps
{
    // log w = −e^−0.5 · σ(z), rounded to fp32 as the CPU reference rounds it.
    private static readonly float Rwkv7DecayScale = (float)-Math.Exp(-0.5);

    public void Rwkv7DecayBackward(Tensor z, Tensor w0, Tensor dw, Tensor dz, Tensor? dW0)
    {
        backend.Enter();
        const string op = nameof(Rwkv7DecayBackward);
        int a = z.RowLength;
        long n = z.ElementCount;
        var (pb, bType) = Param(w0, a, op, "w0");
        ulong pz = In(z, n, op, "z"), pg = In(dw, n, op, "dw"), pdz = Out(dz, n, op, "dz"), pdb = Out(dW0, a, op, "dW0");
        float scale = Rwkv7DecayScale;
        void** args = stackalloc void*[] { &pz, &pb, &bType, &scale, &pg, &pdz, &n, &a };
        Elementwise(K.Rwkv7DecayBackward, "rwkv7_decay_backward_f32", n, args);
        ColumnSum(pdz, 0, 0, 0, z.RowCount, a, pdb, 0);
    }

    public void Rwkv7KeysBackward(Tensor k, Tensor w, Tensor a, Tensor? keyScale, Tensor? iclrMix, int headDim, bool balanced,
        Tensor dRemoval, Tensor dReplacement, Tensor dKTilde, Tensor dk, Tensor? dw, Tensor da, Tensor? dKeyScale,
        Tensor? dIclrMix)
    {
        backend.Enter();
        const string op = nameof(Rwkv7KeysBackward);
        int width = k.RowLength;
        if (headDim <= 0 || width % headDim != 0)
        {
            throw new ArgumentException($"Rwkv7KeysBackward: k {k.ShapeText} does not split into heads of {headDim}");
        }

        if (!balanced && (keyScale is null || iclrMix is null))
        {
            throw new ArgumentException("Rwkv7KeysBackward: stock keys need k_k and k_a");
        }

        long n = k.ElementCount;
        int tokens = k.RowCount;
        ulong pk = In(k, n, op, "k"), pw = In(w, n, op, "w"), pa = In(a, n, op, "a");
        ulong prem = In(dRemoval, n, op, "dRemoval"), prep = In(dReplacement, n, op, "dReplacement"), pkt = In(dKTilde, n, op, "dKTilde");
        ulong pdk = Out(dk, n, op, "dk"), pdw = Out(dw, n, op, "dw"), pda = Out(da, n, op, "da");
        var (pkk, kkType) = balanced ? (0UL, 0) : Param(keyScale!, width, op, "k_k");
        var (pka, kaType) = balanced ? (0UL, 0) : Param(iclrMix!, width, op, "k_a");
        ulong pdkk = balanced ? 0 : Out(dKeyScale, width, op, "dKeyScale");
        ulong pdka = balanced ? 0 : Out(dIclrMix, width, op, "dIclrMix");
        long warps = (long)tokens * (width / headDim);
        if (warps == 0)
        {
            return;
        }

        // The weight gradients' terms (du ⊙ k, dk̃ ⊙ k ⊙ (a − 1)) go to scratch, then a column sum each.
        using var termsKk = pdkk == 0 ? null : Scratch(tokens, width);
        using var termsKa = pdka == 0 ? null : Scratch(tokens, width);
        ulong pgkk = termsKk is null ? 0 : P(termsKk), pgka = termsKa is null ? 0 : P(termsKa);
        int isBalanced = balanced ? 1 : 0;
        void** args = stackalloc void*[]
        {
            &pk, &pw, &pa, &pkk, &kkType, &pka, &kaType, &tokens, &width, &headDim, &isBalanced, &prem, &prep, &pkt, &pdk, &pdw, &pda, &pgkk, &pgka,
        };
        backend.Launch(K.Rwkv7KeysBackward, "rwkv7_keys_backward_f32", WarpBlocks(warps), 1, Threads, 0, args);
        ColumnSum(pgkk, 0, 0, 0, tokens, width, pdkk, 0);
        ColumnSum(pgka, 0, 0, 0, tokens, width, pdka, 0);
    }

    // y = v + (vFirst − v) ⊙ nu
    public void Rwkv7ValueResidualBackward(Tensor v, Tensor vFirst, Tensor nu, Tensor dy, Tensor? dv, Tensor? dVFirst, Tensor? dNu)
    {
        backend.Enter();
        const string op = nameof(Rwkv7ValueResidualBackward);
        long n = v.ElementCount;
        ulong pv = In(v, n, op, "v"), pf = In(vFirst, n, op, "vFirst"), pn = In(nu, n, op, "nu"), pg = In(dy, n, op, "dy");
        ulong pdv = Out(dv, n, op, "dv"), pdf = Out(dVFirst, n, op, "dVFirst"), pdn = Out(dNu, n, op, "dNu");
        void** a = stackalloc void*[] { &pv, &pf, &pn, &pg, &pdv, &pdf, &pdn, &n };
        Elementwise(K.Rwkv7ValueResidualBackward, "rwkv7_value_residual_backward_f32", n, a);
    }

    public void Wkv7Backward(Tensor r, Tensor w, Tensor k, Tensor v, Tensor a, Tensor b, Tensor initialState, Tensor dy,
        Tensor? dFinalState, Tensor dr, Tensor dw, Tensor dk, Tensor dv, Tensor da, Tensor db, Tensor? dInitialState)
    {
        backend.Enter();
        const string op = nameof(Wkv7Backward);
        int width = r.RowLength;
        int tokens = r.RowCount;
        if (initialState.Shape.Length != 3 || initialState.Shape[1] != initialState.Shape[2] || initialState.Shape[0] * initialState.Shape[1] != width)
        {
            throw new ArgumentException($"Wkv7Backward: state {initialState.ShapeText} does not match rows of {width}");
        }

        int heads = initialState.Shape[0];
        int n = initialState.Shape[1];
        long count = (long)tokens * width;
        long states = initialState.ElementCount;
        ulong pr = In(r, count, op, "r"), pw = In(w, count, op, "w"), pk = In(k, count, op, "k"), pv = In(v, count, op, "v");
        ulong pa = In(a, count, op, "a"), pb = In(b, count, op, "b"), pg = In(dy, count, op, "dy");
        ulong ps = In(initialState, states, op, "initialState"), pf = dFinalState is null ? 0 : In(dFinalState, states, op, "dFinalState");
        ulong pdr = Out(dr, count, op, "dr"), pdw = Out(dw, count, op, "dw"), pdk = Out(dk, count, op, "dk"), pdv = Out(dv, count, op, "dv");
        ulong pda = Out(da, count, op, "da"), pdb = Out(db, count, op, "db"), pdi = Out(dInitialState, states, op, "dInitialState");
        uint shared = RecurrenceShared(op, n, ((long)n * (n + 1)) + (4L * n));
        if (heads == 0 || n == 0)
        {
            return;
        }

        using var scratch = RecurrenceScratch(heads, tokens, n);
        ulong pscratch = P(scratch);
        void** args = stackalloc void*[]
        {
            &pr, &pw, &pk, &pv, &pa, &pb, &ps, &pg, &pf, &pdr, &pdw, &pdk, &pdv, &pda, &pdb, &pdi, &tokens, &heads, &n, &pscratch,
        };
        backend.Launch(K.Wkv7Backward, "wkv7_backward_f32", (uint)heads, 1, (uint)n, shared, args);
    }
}
