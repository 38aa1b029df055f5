using Radlads.Ops;

namespace Radlads.Cuda;

/// <summary>
/// The RoPE table of a prompt chunk (rope_table_f32: (cos, sin) of pair i at position start + t, [T][N/2] as float2),
/// computed once and kept while the same chunk runs through the layers: every layer's wkv7_chunk_prep_keys reads it
/// instead of evaluating float64 pow and sincos per (token, head, pair).
/// </summary>
public sealed unsafe partial class CudaBackend
{
    private Tensor? ropeTable;
    private (int Start, int Tokens, int HeadDim, float Theta) ropeTableKey;

    /// <summary>
    /// The table for positions start … start + tokens − 1 at this head dim and θ, queued on the stream if it is not the
    /// one kept (the one it replaces is released in stream order, after the launches that read it).
    /// </summary>
    internal Tensor RopeTable(int start, int tokens, int headDim, float theta)
    {
        var key = (start, tokens, headDim, theta);
        if (ropeTable is not null && ropeTableKey == key)
        {
            return ropeTable;
        }

        ropeTable?.Dispose();
        ropeTable = null;
        var table = AllocateUninitialized(tokens, headDim);
        ulong p = Cuda(table).Pointer;
        int n = headDim;
        void** args = stackalloc void*[] { &p, &start, &tokens, &n, &theta };
        long pairs = (long)tokens * (headDim / 2);
        Launch(Kernels.RopeTable, "rope_table_f32", (uint)Math.Min((pairs + 255) / 256, Device.MultiprocessorCount * 32L), 1, 256, 0, args);
        (ropeTable, ropeTableKey) = (table, key);
        return table;
    }
}
