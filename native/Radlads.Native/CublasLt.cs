using System.Runtime.InteropServices;

namespace Radlads.Native;

/// <summary>cudaDataType values used here (library_types.h).</summary>
public enum CudaDataType
{
    R32F = 0,
    R16F = 2,
    R16BF = 14,
}

/// <summary>cublasComputeType_t values used here (cublas_api.h).</summary>
public enum CublasComputeType
{
    /// <summary>CUBLAS_COMPUTE_32F: fp32 accumulation (bf16/f16 inputs run on the tensor cores).</summary>
    Compute32F = 68,
}

/// <summary>cublasLtMatmulDescAttributes_t values used here (cublasLt.h).</summary>
public enum MatmulDescAttribute
{
    /// <summary>int32 cublasOperation_t.</summary>
    TransA = 3,

    /// <summary>int32 cublasOperation_t.</summary>
    TransB = 4,

    /// <summary>uint32 cublasLtEpilogue_t.</summary>
    Epilogue = 7,

    /// <summary>const void*: a bias of the output's type (fp32 here), one per row of D.</summary>
    BiasPointer = 8,
}

/// <summary>cublasLtMatmulPreferenceAttributes_t values used here.</summary>
public enum MatmulPreferenceAttribute
{
    /// <summary>uint64.</summary>
    MaxWorkspaceBytes = 1,

    /// <summary>uint32, default 256: the alignment the heuristic may assume of A's pointer.</summary>
    MinAlignmentABytes = 5,

    MinAlignmentBBytes = 6,

    MinAlignmentCBytes = 7,

    MinAlignmentDBytes = 8,
}

/// <summary>cublasOperation_t.</summary>
public enum CublasOperation
{
    None = 0,
    Transpose = 1,
}

/// <summary>cublasLtEpilogue_t values used here.</summary>
public enum CublasLtEpilogue : uint
{
    Default = 1,
    Bias = 4,
}

/// <summary>cublasLtMatmulAlgo_t: 64 opaque bytes the heuristic fills in.</summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct CublasLtMatmulAlgo
{
    public fixed ulong Data[8];
}

/// <summary>cublasLtMatmulHeuristicResult_t.</summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct CublasLtHeuristicResult
{
    public CublasLtMatmulAlgo Algo;
    public nuint WorkspaceSize;
    public int State;
    public float WavesCount;
    public fixed int Reserved[4];
}

/// <summary>
/// cuBLASLt (the GEMM library of the CUDA toolkit), loaded at run time through <see cref="LibraryProbe"/> like the
/// driver and NVRTC: entry points as unmanaged function pointers, every call checked, an error naming the call and
/// cuBLAS's status name and text (e.g. <c>cublasLtMatmul failed: CUBLAS_STATUS_NOT_SUPPORTED (15): …</c>).
/// Only what the bf16 prefill GEMMs need: handle, matmul descriptor and its attributes, matrix layouts, heuristic
/// preference, the heuristic, and the matmul. cuBLASLt runs on the calling thread's current context (the
/// device's primary context, which <see cref="CudaDevice.MakeCurrent"/> binds).
/// </summary>
public sealed unsafe class CublasLt
{
    private const int Success = 0;

    /// <summary>CUBLAS_STATUS_NOT_SUPPORTED: the heuristic has no kernel for this problem.</summary>
    public const int StatusNotSupported = 15;

    private static readonly Lazy<CublasLt> Shared = new(() => new CublasLt(), LazyThreadSafetyMode.ExecutionAndPublication);

    private readonly delegate* unmanaged<nint*, int> cublasLtCreate;
    private readonly delegate* unmanaged<nint, int> cublasLtDestroy;
    private readonly delegate* unmanaged<nuint> cublasLtGetVersion;
    private readonly delegate* unmanaged<int, byte*> cublasLtGetStatusName;
    private readonly delegate* unmanaged<int, byte*> cublasLtGetStatusString;
    private readonly delegate* unmanaged<nint*, int, int, int> cublasLtMatmulDescCreate;
    private readonly delegate* unmanaged<nint, int> cublasLtMatmulDescDestroy;
    private readonly delegate* unmanaged<nint, int, void*, nuint, int> cublasLtMatmulDescSetAttribute;
    private readonly delegate* unmanaged<nint*, int, ulong, ulong, long, int> cublasLtMatrixLayoutCreate;
    private readonly delegate* unmanaged<nint, int> cublasLtMatrixLayoutDestroy;
    private readonly delegate* unmanaged<nint*, int> cublasLtMatmulPreferenceCreate;
    private readonly delegate* unmanaged<nint, int> cublasLtMatmulPreferenceDestroy;
    private readonly delegate* unmanaged<nint, int, void*, nuint, int> cublasLtMatmulPreferenceSetAttribute;
    private readonly delegate* unmanaged<nint, nint, nint, nint, nint, nint, nint, int, CublasLtHeuristicResult*, int*, int> cublasLtMatmulAlgoGetHeuristic;
    private readonly delegate* unmanaged<nint, nint, void*, ulong, nint, ulong, nint, void*, ulong, nint, ulong, nint, CublasLtMatmulAlgo*, ulong, nuint, nint, int> cublasLtMatmul;

    private CublasLt()
    {
        if (!LibraryProbe.TryLoad(LibraryProbe.CublasLtCandidates(), out var library, out var name, out var tried))
        {
            throw new CudaUnavailableException(
                $"cuBLASLt was not found (tried {tried}); install the CUDA cuBLAS runtime package (e.g. libcublas-13-0) or set RADLADS_CUBLASLT to its path");
        }

        LibraryName = name;
        nint Get(string symbol) => NativeLibrary.TryGetExport(library, symbol, out var p)
            ? p
            : throw new CudaUnavailableException($"{name} has no entry point {symbol}: cuBLASLt 12 or newer is needed");

        cublasLtCreate = (delegate* unmanaged<nint*, int>)Get("cublasLtCreate");
        cublasLtDestroy = (delegate* unmanaged<nint, int>)Get("cublasLtDestroy");
        cublasLtGetVersion = (delegate* unmanaged<nuint>)Get("cublasLtGetVersion");
        // Present from cuBLAS 11.4 on; without them errors carry the status number and our own name for it.
        if (NativeLibrary.TryGetExport(library, "cublasLtGetStatusName", out var statusName))
        {
            cublasLtGetStatusName = (delegate* unmanaged<int, byte*>)statusName;
        }

        if (NativeLibrary.TryGetExport(library, "cublasLtGetStatusString", out var statusString))
        {
            cublasLtGetStatusString = (delegate* unmanaged<int, byte*>)statusString;
        }

        cublasLtMatmulDescCreate = (delegate* unmanaged<nint*, int, int, int>)Get("cublasLtMatmulDescCreate");
        cublasLtMatmulDescDestroy = (delegate* unmanaged<nint, int>)Get("cublasLtMatmulDescDestroy");
        cublasLtMatmulDescSetAttribute = (delegate* unmanaged<nint, int, void*, nuint, int>)Get("cublasLtMatmulDescSetAttribute");
        cublasLtMatrixLayoutCreate = (delegate* unmanaged<nint*, int, ulong, ulong, long, int>)Get("cublasLtMatrixLayoutCreate");
        cublasLtMatrixLayoutDestroy = (delegate* unmanaged<nint, int>)Get("cublasLtMatrixLayoutDestroy");
        cublasLtMatmulPreferenceCreate = (delegate* unmanaged<nint*, int>)Get("cublasLtMatmulPreferenceCreate");
        cublasLtMatmulPreferenceDestroy = (delegate* unmanaged<nint, int>)Get("cublasLtMatmulPreferenceDestroy");
        cublasLtMatmulPreferenceSetAttribute = (delegate* unmanaged<nint, int, void*, nuint, int>)Get("cublasLtMatmulPreferenceSetAttribute");
        cublasLtMatmulAlgoGetHeuristic = (delegate* unmanaged<nint, nint, nint, nint, nint, nint, nint, int, CublasLtHeuristicResult*, int*, int>)Get("cublasLtMatmulAlgoGetHeuristic");
        cublasLtMatmul = (delegate* unmanaged<nint, nint, void*, ulong, nint, ulong, nint, void*, ulong, nint, ulong, nint, CublasLtMatmulAlgo*, ulong, nuint, nint, int>)Get("cublasLtMatmul");

        ulong version = cublasLtGetVersion();
        // CUBLAS_VERSION = 10000·major + 100·minor + patch (e.g. 130001 for 13.0.1).
        Version = new Version((int)(version / 10000), (int)(version / 100 % 100), (int)(version % 100));
    }

    /// <summary>The process-wide cuBLASLt; throws <see cref="CudaUnavailableException"/> when it cannot be loaded.</summary>
    public static CublasLt Instance => Shared.Value;

    /// <summary>Loads cuBLASLt if it is there; <paramref name="reason"/> says why not otherwise.</summary>
    public static bool TryGet(out CublasLt? library, out string reason)
    {
        try
        {
            library = Shared.Value;
            reason = "";
            return true;
        }
        catch (CudaUnavailableException e)
        {
            library = null;
            reason = e.Message;
            return false;
        }
    }

    /// <summary>The library file that was loaded, e.g. <c>/usr/local/cuda/lib64/libcublasLt.so.13</c>.</summary>
    public string LibraryName { get; }

    public Version Version { get; }

    public string StatusName(int status)
    {
        if (cublasLtGetStatusName != null && cublasLtGetStatusName(status) is var p && p != null)
        {
            return Marshal.PtrToStringUTF8((nint)p) ?? $"cublasStatus {status}";
        }

        return status switch
        {
            0 => "CUBLAS_STATUS_SUCCESS",
            1 => "CUBLAS_STATUS_NOT_INITIALIZED",
            3 => "CUBLAS_STATUS_ALLOC_FAILED",
            7 => "CUBLAS_STATUS_INVALID_VALUE",
            8 => "CUBLAS_STATUS_ARCH_MISMATCH",
            11 => "CUBLAS_STATUS_MAPPING_ERROR",
            13 => "CUBLAS_STATUS_EXECUTION_FAILED",
            14 => "CUBLAS_STATUS_INTERNAL_ERROR",
            15 => "CUBLAS_STATUS_NOT_SUPPORTED",
            16 => "CUBLAS_STATUS_LICENSE_ERROR",
            _ => $"cublasStatus {status}",
        };
    }

    public string StatusText(int status) =>
        cublasLtGetStatusString != null && cublasLtGetStatusString(status) is var p && p != null
            ? Marshal.PtrToStringUTF8((nint)p) ?? "unknown status"
            : "unknown status";

    /// <summary>Throws <see cref="CudaException"/> naming <paramref name="call"/> unless the status is CUBLAS_STATUS_SUCCESS.</summary>
    public void Check(int status, string call)
    {
        if (status != Success)
        {
            throw new CudaException(call, status, StatusName(status), StatusText(status));
        }
    }

    // ---- handle ----

    public nint Create()
    {
        nint handle;
        Check(cublasLtCreate(&handle), "cublasLtCreate");
        return handle;
    }

    /// <summary>Release path: returns the status instead of throwing.</summary>
    public int Destroy(nint handle) => cublasLtDestroy(handle);

    // ---- matmul descriptor ----

    public nint MatmulDescCreate(CublasComputeType compute, CudaDataType scale)
    {
        nint desc;
        Check(cublasLtMatmulDescCreate(&desc, (int)compute, (int)scale), "cublasLtMatmulDescCreate");
        return desc;
    }

    public int MatmulDescDestroy(nint desc) => cublasLtMatmulDescDestroy(desc);

    /// <summary>Sets an attribute whose value is <paramref name="value"/>'s bytes (int32, uint32 or a pointer, as the attribute says).</summary>
    public void MatmulDescSetAttribute<T>(nint desc, MatmulDescAttribute attribute, T value)
        where T : unmanaged
    {
        Check(cublasLtMatmulDescSetAttribute(desc, (int)attribute, &value, (nuint)sizeof(T)), $"cublasLtMatmulDescSetAttribute({attribute})");
    }

    // ---- matrix layouts ----

    /// <summary>A column-major <paramref name="rows"/> × <paramref name="columns"/> matrix with leading dimension <paramref name="ld"/>.</summary>
    public nint MatrixLayoutCreate(CudaDataType type, ulong rows, ulong columns, long ld)
    {
        nint layout;
        Check(cublasLtMatrixLayoutCreate(&layout, (int)type, rows, columns, ld), "cublasLtMatrixLayoutCreate");
        return layout;
    }

    public int MatrixLayoutDestroy(nint layout) => cublasLtMatrixLayoutDestroy(layout);

    // ---- heuristic preference ----

    public nint MatmulPreferenceCreate()
    {
        nint preference;
        Check(cublasLtMatmulPreferenceCreate(&preference), "cublasLtMatmulPreferenceCreate");
        return preference;
    }

    public int MatmulPreferenceDestroy(nint preference) => cublasLtMatmulPreferenceDestroy(preference);

    public void MatmulPreferenceSetAttribute<T>(nint preference, MatmulPreferenceAttribute attribute, T value)
        where T : unmanaged
    {
        Check(cublasLtMatmulPreferenceSetAttribute(preference, (int)attribute, &value, (nuint)sizeof(T)), $"cublasLtMatmulPreferenceSetAttribute({attribute})");
    }

    /// <summary>
    /// Up to <paramref name="most"/> of the heuristic's algorithms for D = op(A)·op(B) (+ C, + epilogue), best first
    /// (those it reports as usable); empty when it has none for this problem (CUBLAS_STATUS_NOT_SUPPORTED or no result):
    /// the caller then uses another GEMM. Other errors throw.
    /// </summary>
    public CublasLtHeuristicResult[] MatmulAlgoGetHeuristics(nint handle, nint desc, nint a, nint b, nint c, nint d, nint preference, int most)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(most, 1);
        var results = new CublasLtHeuristicResult[most];
        int count = 0;
        int status;
        fixed (CublasLtHeuristicResult* p = results)
        {
            status = cublasLtMatmulAlgoGetHeuristic(handle, desc, a, b, c, d, preference, most, p, &count);
        }

        if (status == StatusNotSupported)
        {
            return [];
        }

        Check(status, "cublasLtMatmulAlgoGetHeuristic");
        return results.Take(count).Where(r => r.State == Success).ToArray();
    }

    /// <summary>D = α·op(A)·op(B) + β·C (+ epilogue), queued on <paramref name="stream"/>; α and β are host fp32 scalars.</summary>
    public void Matmul(nint handle, nint desc, float alpha, ulong a, nint aLayout, ulong b, nint bLayout, float beta,
        ulong c, nint cLayout, ulong d, nint dLayout, in CublasLtMatmulAlgo algo, ulong workspace, nuint workspaceBytes, nint stream)
    {
        fixed (CublasLtMatmulAlgo* pAlgo = &algo)
        {
            Check(cublasLtMatmul(handle, desc, &alpha, a, aLayout, b, bLayout, &beta, c, cLayout, d, dLayout, pAlgo, workspace, workspaceBytes, stream), "cublasLtMatmul");
        }
    }
}
