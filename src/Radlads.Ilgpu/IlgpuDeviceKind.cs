namespace Radlads.Ilgpu;

/// <summary>Which ILGPU accelerator the backend runs on (<c>--ilgpu-device</c>).</summary>
public enum IlgpuDeviceKind
{
    /// <summary>The best one available: CUDA, then OpenCL, then the CPU simulator.</summary>
    Auto,

    /// <summary>An NVIDIA GPU through ILGPU's own PTX backend and the CUDA driver API.</summary>
    Cuda,

    /// <summary>An OpenCL 2.0+ device (ILGPU's OpenCL C backend).</summary>
    OpenCL,

    /// <summary>ILGPU's CPU accelerator: a multi-threaded GPU simulator, slow, for tests and debugging.</summary>
    Cpu,
}

public static class IlgpuDeviceKinds
{
    /// <summary>The spellings of <c>--ilgpu-device</c>.</summary>
    public static readonly string[] Names = ["auto", "cuda", "opencl", "cpu"];

    public static IlgpuDeviceKind Parse(string name) => name.ToLowerInvariant() switch
    {
        "auto" => IlgpuDeviceKind.Auto,
        "cuda" => IlgpuDeviceKind.Cuda,
        "opencl" => IlgpuDeviceKind.OpenCL,
        "cpu" => IlgpuDeviceKind.Cpu,
        _ => throw new RadladsException($"--ilgpu-device must be auto, cuda, opencl or cpu, got '{name}'"),
    };

    public static string Name(this IlgpuDeviceKind kind) => kind switch
    {
        IlgpuDeviceKind.Cuda => "cuda",
        IlgpuDeviceKind.OpenCL => "opencl",
        IlgpuDeviceKind.Cpu => "cpu",
        _ => "auto",
    };
}
