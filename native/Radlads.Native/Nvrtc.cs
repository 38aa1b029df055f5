using System.Runtime.InteropServices;
using System.Text;

namespace Radlads.Native;

/// <summary>What NVRTC produced: a CUBIN for the exact architecture, or PTX for the driver to JIT.</summary>
public sealed record CompiledImage(byte[] Image, bool IsCubin, string Log);

/// <summary>
/// NVRTC, the CUDA runtime compiler, loaded at run time through <see cref="LibraryProbe"/>. Every call is checked;
/// a failed compile throws <see cref="CudaException"/> with the compiler log.
/// NVRTC needs its builtins library (libnvrtc-builtins) beside it at compile time; it loads that itself.
/// </summary>
public sealed unsafe class Nvrtc
{
    private const int Success = 0;

    private static readonly Lazy<Nvrtc> Shared = new(() => new Nvrtc(), LazyThreadSafetyMode.ExecutionAndPublication);

    private readonly delegate* unmanaged<int*, int*, int> nvrtcVersion;
    private readonly delegate* unmanaged<int*, int> nvrtcGetNumSupportedArchs;
    private readonly delegate* unmanaged<int*, int> nvrtcGetSupportedArchs;
    private readonly delegate* unmanaged<nint*, byte*, byte*, int, byte**, byte**, int> nvrtcCreateProgram;
    private readonly delegate* unmanaged<nint, int, byte**, int> nvrtcCompileProgram;
    private readonly delegate* unmanaged<nint, nuint*, int> nvrtcGetProgramLogSize;
    private readonly delegate* unmanaged<nint, byte*, int> nvrtcGetProgramLog;
    private readonly delegate* unmanaged<nint, nuint*, int> nvrtcGetCUBINSize;
    private readonly delegate* unmanaged<nint, byte*, int> nvrtcGetCUBIN;
    private readonly delegate* unmanaged<nint, nuint*, int> nvrtcGetPTXSize;
    private readonly delegate* unmanaged<nint, byte*, int> nvrtcGetPTX;
    private readonly delegate* unmanaged<nint*, int> nvrtcDestroyProgram;
    private readonly delegate* unmanaged<int, byte*> nvrtcGetErrorString;

    private Nvrtc()
    {
        if (!LibraryProbe.TryLoad(LibraryProbe.NvrtcCandidates(), out var library, out var name, out var tried))
        {
            throw new CudaUnavailableException(
                $"NVRTC (the CUDA runtime compiler) was not found (tried {tried}); install the CUDA runtime compiler package (e.g. cuda-nvrtc-13-0) or set RADLADS_NVRTC to its path");
        }

        LibraryName = name;
        nint Get(string symbol) => NativeLibrary.TryGetExport(library, symbol, out var p)
            ? p
            : throw new CudaUnavailableException($"{name} has no entry point {symbol}: NVRTC 11.2 or newer is needed");

        nvrtcVersion = (delegate* unmanaged<int*, int*, int>)Get("nvrtcVersion");
        nvrtcGetNumSupportedArchs = (delegate* unmanaged<int*, int>)Get("nvrtcGetNumSupportedArchs");
        nvrtcGetSupportedArchs = (delegate* unmanaged<int*, int>)Get("nvrtcGetSupportedArchs");
        nvrtcCreateProgram = (delegate* unmanaged<nint*, byte*, byte*, int, byte**, byte**, int>)Get("nvrtcCreateProgram");
        nvrtcCompileProgram = (delegate* unmanaged<nint, int, byte**, int>)Get("nvrtcCompileProgram");
        nvrtcGetProgramLogSize = (delegate* unmanaged<nint, nuint*, int>)Get("nvrtcGetProgramLogSize");
        nvrtcGetProgramLog = (delegate* unmanaged<nint, byte*, int>)Get("nvrtcGetProgramLog");
        nvrtcGetCUBINSize = (delegate* unmanaged<nint, nuint*, int>)Get("nvrtcGetCUBINSize");
        nvrtcGetCUBIN = (delegate* unmanaged<nint, byte*, int>)Get("nvrtcGetCUBIN");
        nvrtcGetPTXSize = (delegate* unmanaged<nint, nuint*, int>)Get("nvrtcGetPTXSize");
        nvrtcGetPTX = (delegate* unmanaged<nint, byte*, int>)Get("nvrtcGetPTX");
        nvrtcDestroyProgram = (delegate* unmanaged<nint*, int>)Get("nvrtcDestroyProgram");
        nvrtcGetErrorString = (delegate* unmanaged<int, byte*>)Get("nvrtcGetErrorString");

        int major, minor;
        Check(nvrtcVersion(&major, &minor), "nvrtcVersion");
        Version = new Version(major, minor);
        int count;
        Check(nvrtcGetNumSupportedArchs(&count), "nvrtcGetNumSupportedArchs");
        var archs = new int[count];
        fixed (int* p = archs)
        {
            Check(nvrtcGetSupportedArchs(p), "nvrtcGetSupportedArchs");
        }

        SupportedArchitectures = archs;
    }

    /// <summary>The process-wide NVRTC; throws <see cref="CudaUnavailableException"/> when it cannot be loaded.</summary>
    public static Nvrtc Instance => Shared.Value;

    public string LibraryName { get; }

    public Version Version { get; }

    /// <summary>Compute capabilities NVRTC can emit SASS for, as 10·major + minor (e.g. 90).</summary>
    public IReadOnlyList<int> SupportedArchitectures { get; }

    public string ErrorText(int result) => Marshal.PtrToStringUTF8((nint)nvrtcGetErrorString(result)) ?? $"nvrtcResult {result}";

    private void Check(int result, string call)
    {
        if (result != Success)
        {
            throw new CudaException(call, result, ErrorText(result), ErrorText(result));
        }
    }

    /// <summary>
    /// Compiles one translation unit. <paramref name="headers"/> are (include name, contents) pairs served to
    /// <c>#include "name"</c>. With <paramref name="cubin"/> the options must name a real architecture
    /// (<c>--gpu-architecture=sm_XY</c>) and the result is a CUBIN; otherwise PTX.
    /// </summary>
    public CompiledImage Compile(string source, string name, IReadOnlyList<(string Name, string Text)> headers,
        IReadOnlyList<string> options, bool cubin)
    {
        var pinned = new List<GCHandle>();
        byte* Utf8(string s)
        {
            var handle = GCHandle.Alloc(Encoding.UTF8.GetBytes(s + "\0"), GCHandleType.Pinned);
            pinned.Add(handle);
            return (byte*)handle.AddrOfPinnedObject();
        }

        nint program = 0;
        try
        {
            var headerTexts = new nint[headers.Count];
            var headerNames = new nint[headers.Count];
            for (int i = 0; i < headers.Count; i++)
            {
                headerTexts[i] = (nint)Utf8(headers[i].Text);
                headerNames[i] = (nint)Utf8(headers[i].Name);
            }

            var optionPointers = options.Select(o => (nint)Utf8(o)).ToArray();
            fixed (nint* texts = headerTexts, names = headerNames, opts = optionPointers)
            {
                Check(nvrtcCreateProgram(&program, Utf8(source), Utf8(name), headers.Count, (byte**)texts, (byte**)names), "nvrtcCreateProgram");
                int compiled = nvrtcCompileProgram(program, optionPointers.Length, (byte**)opts);
                string log = Log(program);
                if (compiled != Success)
                {
                    throw new CudaException(
                        $"nvrtcCompileProgram({name}) failed: {ErrorText(compiled)} with options [{string.Join(' ', options)}]:\n{log}");
                }

                nuint size;
                byte[] image;
                if (cubin)
                {
                    Check(nvrtcGetCUBINSize(program, &size), "nvrtcGetCUBINSize");
                    image = new byte[(int)size];
                    fixed (byte* p = image)
                    {
                        Check(nvrtcGetCUBIN(program, p), "nvrtcGetCUBIN");
                    }
                }
                else
                {
                    Check(nvrtcGetPTXSize(program, &size), "nvrtcGetPTXSize");
                    image = new byte[(int)size];
                    fixed (byte* p = image)
                    {
                        Check(nvrtcGetPTX(program, p), "nvrtcGetPTX");
                    }
                }

                return new CompiledImage(image, cubin, log);
            }
        }
        finally
        {
            if (program != 0)
            {
                nvrtcDestroyProgram(&program);
            }

            foreach (var handle in pinned)
            {
                handle.Free();
            }
        }
    }

    private string Log(nint program)
    {
        nuint size;
        Check(nvrtcGetProgramLogSize(program, &size), "nvrtcGetProgramLogSize");
        var bytes = new byte[(int)size + 1];
        fixed (byte* p = bytes)
        {
            Check(nvrtcGetProgramLog(program, p), "nvrtcGetProgramLog");
        }

        return Encoding.UTF8.GetString(bytes).TrimEnd('\0').Trim();
    }
}
