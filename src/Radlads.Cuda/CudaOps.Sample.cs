using System.Runtime.InteropServices;
using Radlads.Generation;
using Radlads.Ops;

namespace Radlads.Cuda;

/// <summary>Token sampling on the GPU (kernels/sampling.cu): the logits stay on the device, only ids come back.</summary>
internal sealed unsafe partial class CudaOps
{
    private const uint SampleThreads = 512; // SAMPLE_THREADS in sampling.cu

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
    /// Queues sample_f32 over the first rows of <paramref name="logits"/>: parameters (sampling.cu's SampleRow, 24 bytes
    /// each) at <paramref name="parameters"/>, ids or error codes to <paramref name="ids"/>, both device addresses. A
    /// row with a negative temperature is skipped (a recorded step replayed without sampling).
    /// </summary>
    internal void QueueSample(Tensor logits, int allowedVocabulary, int rows, ulong parameters, ulong ids)
    {
        int n = allowedVocabulary;
        // Units scratch: rows · n u64, held in an fp32 block of twice the element count.
        using var units = backend.AllocateUninitialized(rows, 2 * n);
        ulong pl = P(logits), pu = P(units), pp = parameters, pi = ids;
        long stride = logits.RowLength;
        int shift = SamplingMath.UnitShift(n);
        void** a = stackalloc void*[] { &pl, &stride, &n, &pp, &shift, &pu, &pi };
        backend.Launch(K.Sample, "sample_f32", (uint)rows, 1, SampleThreads, 0, a);
    }

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
