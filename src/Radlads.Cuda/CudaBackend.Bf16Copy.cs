namespace Radlads.Cuda;

/// <summary>
/// A bf16 copy of one fp32 activation, written by the kernel that wrote the activation itself, for the cuBLASLt
/// MatMul that reads it next (prefill: SwiGLU's output [T, F] before the MLP's down projection, the norms' outputs
/// before q/k/v and gate/up; their own rounding would read the 4-byte values again). The copy is valid only at the
/// backend entry right after the one that made it: every op, zeroed allocation, upload, copy or replay is an entry
/// (<see cref="Enter"/>), so anything that could have written the activation in between makes the copy stale, and the
/// next entry after that gives its block back. Uninitialized allocations write nothing and are not entries (the model
/// allocates the GEMM's outputs between the norm and the GEMM); one that hands out the block under the copy's source
/// drops the copy (<see cref="DropBf16CopyOfBlock"/>). Never made while recording a step (a block held past the
/// recording would be one the graph writes).
/// </summary>
public sealed partial class CudaBackend
{
    private CudaTensor? bf16Copy;
    private ulong bf16CopySource;
    private int bf16CopyRows;
    private int bf16CopyColumns;
    private long bf16CopyEntry;

    /// <summary>How many kept copies a MatMul has taken (tests check that the path ran).</summary>
    internal long Bf16CopiesTaken { get; private set; }

    /// <summary>How many entries (<see cref="Enter"/>) this backend has had: the clock of <see cref="KeepBf16Copy"/>.</summary>
    internal long Entries { get; private set; }

    /// <summary>
    /// Keeps <paramref name="copy"/> (bf16 bits of <paramref name="source"/> [rows, columns], row-major, in a block
    /// from <see cref="AllocateUninitialized"/>, already written by work queued on the stream) for the next entry.
    /// The backend owns the block from now on.
    /// </summary>
    internal void KeepBf16Copy(CudaTensor source, CudaTensor copy)
    {
        DropBf16Copy();
        bf16Copy = copy;
        bf16CopySource = source.Pointer;
        bf16CopyRows = source.RowCount;
        bf16CopyColumns = source.RowLength;
        bf16CopyEntry = Entries;
    }

    /// <summary>
    /// The kept bf16 copy of <paramref name="x"/> when this entry (the caller has just called <see cref="Enter"/>)
    /// is the one right after the copy was made and <paramref name="x"/> is the same fp32 tensor (address and
    /// shape); the caller then owns the block. Otherwise null.
    /// </summary>
    internal CudaTensor? TakeBf16Copy(CudaTensor x)
    {
        if (bf16Copy is null || Entries != bf16CopyEntry + 1 || x.DType != Checkpoints.DType.F32 || x.Pointer != bf16CopySource
            || x.RowCount != bf16CopyRows || x.RowLength != bf16CopyColumns)
        {
            return null;
        }

        var copy = bf16Copy;
        bf16Copy = null;
        Bf16CopiesTaken++;
        return copy;
    }

    /// <summary>
    /// Whether prefill ops write bf16 copies of their outputs for the next GEMM (default on; RADLADS_BF16_COPIES=0 turns
    /// it off, for A/B timings: each GEMM then rounds its input itself, the same bits). Tests compare both.
    /// </summary>
    internal bool Bf16Copies { get; set; } = Environment.GetEnvironmentVariable("RADLADS_BF16_COPIES") != "0";

    /// <summary>Whether an op may make a bf16 copy now (copies on, not while recording a step).</summary>
    internal bool CanKeepBf16Copy => Bf16Copies && recording is null;

    /// <summary>Whether a copy is kept now (tests: decode makes none).</summary>
    internal bool HasBf16Copy => bf16Copy is not null;

    /// <summary>
    /// Drops the kept copy when its source lies in [<paramref name="start"/>, start + <paramref name="bytes"/>): a block
    /// just handed out again, so the source tensor was freed and the address now belongs to a new tensor.
    /// </summary>
    private void DropBf16CopyOfBlock(ulong start, long bytes)
    {
        if (bf16Copy is not null && bf16CopySource >= start && bf16CopySource < start + (ulong)bytes)
        {
            DropBf16Copy();
        }
    }

    private void DropBf16Copy()
    {
        var copy = bf16Copy;
        bf16Copy = null;
        copy?.Dispose();
    }
}
