namespace Radlads.Native;

/// <summary>A CUDA driver or NVRTC call returned an error. The message names the call and the error.</summary>
public sealed class CudaException : Exception
{
    public CudaException(string call, int code, string errorName, string errorText)
        : base($"{call} failed: {errorName} ({code}): {errorText}")
    {
        Call = call;
        Code = code;
        ErrorName = errorName;
    }

    public CudaException(string message)
        : base(message)
    {
        Call = "";
        ErrorName = "";
    }

    public CudaException(string message, Exception inner)
        : base(message, inner)
    {
        Call = "";
        ErrorName = "";
    }

    /// <summary>The entry point that failed, e.g. <c>cuMemAlloc_v2</c>.</summary>
    public string Call { get; }

    /// <summary>The CUresult / nvrtcResult value.</summary>
    public int Code { get; }

    /// <summary>The symbolic name, e.g. <c>CUDA_ERROR_OUT_OF_MEMORY</c>.</summary>
    public string ErrorName { get; }
}

/// <summary>
/// CUDA cannot be used on this machine: a library is missing, an entry point is absent, or there is no device.
/// The message says which, with the library names that were probed.
/// </summary>
public sealed class CudaUnavailableException : Exception
{
    public CudaUnavailableException(string message)
        : base(message)
    {
    }

    public CudaUnavailableException(string message, Exception inner)
        : base(message, inner)
    {
    }
}
