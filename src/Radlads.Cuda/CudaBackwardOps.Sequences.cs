using Radlads.Ops;

namespace Radlads.Cuda;

/// <summary>
/// The batched recurrences: the single-sequence kernels (wkv6_f32, wkv7_f32 and their backward) with a grid of
/// (H, S) blocks, block (h, s) taking sequence s's rows and state heads. One launch instead of S: S·H blocks keep
/// the GPU busy where H (6 for the demo teacher) leave it almost idle.
/// </summary>
internal sealed unsafe partial class CudaBackwardOps
{
    /// <summary>Head sizes the register-held prefill kernels (wkv6_rows_f32, wkv7_tile_f32) take.</summary>
    private const int RowsMaxHeadDim = 256;

    public void Wkv6Sequences(int sequences, Tensor r, Tensor k, Tensor v, Tensor w, Tensor state, float scale, Tensor y)
    {
        backend.Enter();
        const string op = nameof(Wkv6Sequences);
        var (tokens, heads, n) = SequenceShape(op, sequences, r, state);
        long count = (long)r.RowCount * r.RowLength;
        ulong pr = In(r, count, op, "r"), pk = In(k, count, op, "k"), pv = In(v, count, op, "v"), pw = In(w, count, op, "w");
        ulong ps = Out(state, state.ElementCount, op, "state"), py = Out(y, count, op, "y");
        uint shared = ForwardShared(op, n, ((long)n * n) + (3L * n));
        if (tokens == 0 || heads == 0 || n == 0)
        {
            return;
        }

        if (tokens > 1 && n <= RowsMaxHeadDim)
        {
            // The prefill kernel CudaOps.Wkv6 runs for one sequence (a warp per value column), with a grid row per
            // sequence: each window bit-identical to its own Wkv6 call, as the inference forward computes it.
            var (blocks, chunk, staged) = CudaOps.RowsGeometry(heads, n, 3);
            void** rows = stackalloc void*[] { &pr, &pk, &pv, &pw, &ps, &scale, &tokens, &heads, &n, &chunk, &py };
            backend.Launch(backend.Kernels.Wkv6Rows, "wkv6_rows_f32", blocks, (uint)sequences, 256, staged, rows);
            return;
        }

        void** a = stackalloc void*[] { &pr, &pk, &pv, &pw, &ps, &scale, &tokens, &heads, &n, &py };

        backend.Launch(backend.Kernels.Wkv6, "wkv6_f32", (uint)heads, (uint)sequences, (uint)n, shared, a);
    }

    public void Wkv6BackwardSequences(int sequences, Tensor r, Tensor k, Tensor v, Tensor w, Tensor initialState, float scale,
        Tensor dy, Tensor dr, Tensor dk, Tensor dv, Tensor dw)
    {
        backend.Enter();
        const string op = nameof(Wkv6BackwardSequences);
        var (tokens, heads, n) = SequenceShape(op, sequences, r, initialState);
        long count = (long)r.RowCount * r.RowLength;
        ulong pr = In(r, count, op, "r"), pk = In(k, count, op, "k"), pv = In(v, count, op, "v"), pw = In(w, count, op, "w");
        ulong pg = In(dy, count, op, "dy"), ps = In(initialState, initialState.ElementCount, op, "initialState");
        ulong pf = 0, pdi = 0;
        ulong pdr = Out(dr, count, op, "dr"), pdk = Out(dk, count, op, "dk"), pdv = Out(dv, count, op, "dv"), pdw = Out(dw, count, op, "dw");
        uint shared = RecurrenceShared(op, n, (long)n * (n + 1));
        if (tokens == 0 || heads == 0 || n == 0)
        {
            return;
        }

        using var scratch = RecurrenceScratch(sequences * heads, tokens, n);
        ulong pscratch = P(scratch);
        void** a = stackalloc void*[] { &pr, &pk, &pv, &pw, &ps, &scale, &pg, &pf, &pdr, &pdk, &pdv, &pdw, &pdi, &tokens, &heads, &n, &pscratch };
        backend.Launch(K.Wkv6Backward, "wkv6_backward_f32", (uint)heads, (uint)sequences, (uint)n, shared, a);
    }

    public void Wkv7Sequences(int sequences, Tensor r, Tensor w, Tensor k, Tensor v, Tensor a, Tensor b, Tensor state, Tensor y)
    {
        backend.Enter();
        const string op = nameof(Wkv7Sequences);
        var (tokens, heads, n) = SequenceShape(op, sequences, r, state);
        long count = (long)r.RowCount * r.RowLength;
        ulong pr = In(r, count, op, "r"), pw = In(w, count, op, "w"), pk = In(k, count, op, "k"), pv = In(v, count, op, "v");
        ulong pa = In(a, count, op, "a"), pb = In(b, count, op, "b");
        ulong ps = Out(state, state.ElementCount, op, "state"), py = Out(y, count, op, "y");
        if (tokens == 0 || heads == 0 || n == 0)
        {
            return;
        }

        if (n <= RowsMaxHeadDim)
        {
            // The kernel CudaOps.Wkv7 runs for one sequence (bit-identical to the decode kernel at T = 1), with a grid
            // row per sequence: each window bit-identical to its own Wkv7 call.
            CudaOps.LaunchWkv7Prefill(backend, pr, pw, pk, pv, pa, pb, ps, tokens, heads, n, py, sequences);
            return;
        }

        uint shared = ForwardShared(op, n, ((long)n * (n + 1)) + (5L * n));
        void** args = stackalloc void*[] { &pr, &pw, &pk, &pv, &pa, &pb, &ps, &tokens, &heads, &n, &py };
        backend.Launch(backend.Kernels.Wkv7, "wkv7_f32", (uint)heads, (uint)sequences, (uint)n, shared, args);
    }

    public void Wkv7BackwardSequences(int sequences, Tensor r, Tensor w, Tensor k, Tensor v, Tensor a, Tensor b, Tensor initialState,
        Tensor dy, Tensor dr, Tensor dw, Tensor dk, Tensor dv, Tensor da, Tensor db)
    {
        backend.Enter();
        const string op = nameof(Wkv7BackwardSequences);
        var (tokens, heads, n) = SequenceShape(op, sequences, r, initialState);
        long count = (long)r.RowCount * r.RowLength;
        ulong pr = In(r, count, op, "r"), pw = In(w, count, op, "w"), pk = In(k, count, op, "k"), pv = In(v, count, op, "v");
        ulong pa = In(a, count, op, "a"), pb = In(b, count, op, "b"), pg = In(dy, count, op, "dy");
        ulong ps = In(initialState, initialState.ElementCount, op, "initialState");
        ulong pf = 0, pdi = 0;
        ulong pdr = Out(dr, count, op, "dr"), pdw = Out(dw, count, op, "dw"), pdk = Out(dk, count, op, "dk"), pdv = Out(dv, count, op, "dv");
        ulong pda = Out(da, count, op, "da"), pdb = Out(db, count, op, "db");
        uint shared = RecurrenceShared(op, n, ((long)n * (n + 1)) + (4L * n));
        if (tokens == 0 || heads == 0 || n == 0)
        {
            return;
        }

        using var scratch = RecurrenceScratch(sequences * heads, tokens, n);
        ulong pscratch = P(scratch);
        void** args = stackalloc void*[]
        {
            &pr, &pw, &pk, &pv, &pa, &pb, &ps, &pg, &pf, &pdr, &pdw, &pdk, &pdv, &pda, &pdb, &pdi, &tokens, &heads, &n, &pscratch,
        };
        backend.Launch(K.Wkv7Backward, "wkv7_backward_f32", (uint)heads, (uint)sequences, (uint)n, shared, args);
    }

    /// <summary>Rows per sequence, heads per sequence and head size of a batched recurrence; r's rows must be H·N wide.</summary>
    private static (int Tokens, int Heads, int N) SequenceShape(string op, int sequences, Tensor r, Tensor state)
    {
        var (length, heads) = RecurrenceSequences.Split(op, sequences, r, state);
        int n = state.Shape[1];
        if (state.Shape[2] != n || (long)heads * n != r.RowLength)
        {
            throw new ArgumentException($"{op}: state {state.ShapeText} [S·H, N, N] does not match rows of {r.RowLength} (H·N)");
        }

        return (length, heads, n);
    }

    /// <summary>Dynamic shared memory of a forward recurrence kernel, checked against its opt-in maximum.</summary>
    private uint ForwardShared(string op, int n, long floats)
    {
        long bytes = floats * sizeof(float);
        if (n > 1024 || bytes > backend.Kernels.MaxDynamicShared)
        {
            throw new NotSupportedException(
                $"{op}: a head of {n} needs {bytes:N0} bytes of shared memory; {backend.Device.Name} allows {backend.Kernels.MaxDynamicShared:N0} per block");
        }

        return (uint)bytes;
    }
}
