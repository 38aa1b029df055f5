using System.Runtime.InteropServices;
using Radlads.Generation;
using Radlads.Ops;

namespace Radlads.Cuda;

/// <summary>Token sampling on the GPU (kernels/sampling.cu): the logits stay on the device, only ids come back.</summary>
internal sealed unsafe partial class CudaOps
{
    private const uint SampleThreads = 512; // SAMPLE_THREADS = SCAN_THREADS in sampling.cu
    private const int SampleChunk = 1024;   // SAMPLE_CHUNK: ids per block of sample_scan_f32
    private const int SampleTopKBound = 1024; // SAMPLE_TOPK_BOUND: the largest top-k served from the candidates

    public void Sample(Tensor logits, int allowedVocabulary, ReadOnlySpan<SampleRow> rows, Span<int> ids)
    {
        SampleChecks.Check(logits, allowedVocabulary, rows, ids);
        backend.Enter();
        int b = rows.Length;
        if (b == 0)
        {
            return;
        }

        if (backend.Recording)
        {
            throw new InvalidOperationException("Sample cannot be part of a recorded step yet (it returns ids to the host)");
        }

        // Parameters: the record struct's layout is not fixed, so pack them as sampling.cu's SampleRow (24 bytes).
        var packed = new byte[b * 24];
        for (int r = 0; r < b; r++)
        {
            var p = rows[r];
            var span = packed.AsSpan(r * 24, 24);
            MemoryMarshal.Write(span, p.Temperature);
            MemoryMarshal.Write(span[4..], p.TopK);
            MemoryMarshal.Write(span[8..], p.TopP);
            MemoryMarshal.Write(span[12..], p.MinP);
            MemoryMarshal.Write(span[16..], p.Uniform);
        }

        ulong buffer = backend.SampleBuffer(b);
        ulong pp = buffer, pi = buffer + (ulong)(b * 24);
        var driver = backend.Device.Driver;
        fixed (byte* h = packed)
        {
            driver.CopyHostToDeviceAsync(pp, h, packed.Length, backend.Stream);
        }

        QueueSample(logits, allowedVocabulary, b, pp, pi);
        var codes = new int[b];
        fixed (int* h = codes)
        {
            driver.CopyDeviceToHostAsync(h, pi, (long)b * sizeof(int), backend.Stream);
            backend.Synchronize();
        }

        for (int r = 0; r < b; r++)
        {
            ids[r] = DecodeSampled(codes[r], r, b, allowedVocabulary);
        }
    }

    /// <summary>
    /// Queues sampling over the first rows of <paramref name="logits"/>: parameters (sampling.cu's SampleRow, 24 bytes
    /// each) at <paramref name="parameters"/>, ids or error codes to <paramref name="ids"/>, both device addresses. A
    /// row with a negative temperature is skipped (a recorded step replayed without sampling). Two launches whose
    /// shapes depend on the vocabulary only (a recorded step reads the options from device memory):
    /// sample_scan_f32 over ⌈n / SampleChunk⌉ blocks per row (checks, maximum, each block's top-k candidates), then
    /// sample_finish_f32, one block per row (greedy and top-k ≤ SampleTopKBound on the candidates; else the
    /// whole-row radix select of sample_f32). RADLADS_CUDA_SAMPLE=block launches sample_f32 alone (the old path).
    /// </summary>
    internal void QueueSample(Tensor logits, int allowedVocabulary, int rows, ulong parameters, ulong ids)
    {
        int n = allowedVocabulary;
        // Units scratch of the whole-row path: rows · n u64, held in an fp32 block of twice the element count.
        using var units = backend.AllocateUninitialized(rows, 2 * n);
        ulong pl = P(logits), pu = P(units), pp = parameters, pi = ids;
        long stride = logits.RowLength;
        int shift = SamplingMath.UnitShift(n);
        if (SingleBlockSample)
        {
            void** a = stackalloc void*[] { &pl, &stride, &n, &pp, &shift, &pu, &pi };
            backend.Launch(K.Sample, "sample_f32", (uint)rows, 1, SampleThreads, 0, a);
            return;
        }

        int blocks = SampleBlocks(n);
        // Per (row, block): ScanStats (16 bytes = 4 floats) and a slab of SampleTopKBound candidate keys (u64 = 2 floats).
        using var stats = backend.AllocateUninitialized(rows, blocks * 4);
        using var candidates = backend.AllocateUninitialized(rows, blocks * SampleTopKBound * 2);
        ulong ps = P(stats), pc = P(candidates);
        void** scan = stackalloc void*[] { &pl, &stride, &n, &pp, &ps, &pc };
        backend.Launch(K.SampleScan, "sample_scan_f32", (uint)blocks, (uint)rows, SampleThreads, 0, scan);
        void** finish = stackalloc void*[] { &pl, &stride, &n, &pp, &shift, &pu, &pi, &ps, &pc, &blocks };
        backend.Launch(K.SampleFinish, "sample_finish_f32", (uint)rows, 1, SampleThreads, 0, finish);
    }

    /// <summary>Blocks per row of sample_scan_f32: one per SampleChunk ids.</summary>
    internal static int SampleBlocks(int n) => (n + SampleChunk - 1) / SampleChunk;

    /// <summary>Whether QueueSample launches the single-block sample_f32 instead (RADLADS_CUDA_SAMPLE=block; for timing comparisons).</summary>
    internal static bool SingleBlockSample { get; set; } = Environment.GetEnvironmentVariable("RADLADS_CUDA_SAMPLE") == "block";

    /// <summary>The id in a code written by sample_f32, or the exception its error code stands for.</summary>
    internal static int DecodeSampled(int code, int row, int rows, int allowedVocabulary)
    {
        if (code >= 0)
        {
            return code;
        }

        if (code == -1)
        {
            throw SampleChecks.AllBanned(row, rows, allowedVocabulary);
        }

        throw SampleChecks.NonFinite(row, rows, (-code - 2) / 2, isNaN: (-code - 2) % 2 == 0);
    }
}
