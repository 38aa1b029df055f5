namespace Radlads.Cuda;

/// <summary>The kernel that runs Wkv7 for T &gt; 1 (both give the bits of T decode steps).</summary>
internal enum Wkv7PrefillKernel
{
    /// <summary>wkv7_tile_f32: a thread holds R rows × 4·NE keys, 8 lanes a row, 16 tokens staged at a time.</summary>
    Tile,

    /// <summary>wkv7_rows_f32: a warp per value row (the previous kernel, kept for before/after timings).</summary>
    Rows,
}
