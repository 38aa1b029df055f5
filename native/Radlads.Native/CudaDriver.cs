using System.Runtime.InteropServices;

namespace Radlads.Native;

/// <summary>CUdevice_attribute values used here (cuda.h).</summary>
public enum DeviceAttribute
{
    MaxThreadsPerBlock = 1,
    MaxSharedMemoryPerBlock = 8,
    WarpSize = 10,
    MultiprocessorCount = 16,
    ComputeCapabilityMajor = 75,
    ComputeCapabilityMinor = 76,
    L2CacheSize = 38,
    MaxSharedMemoryPerBlockOptin = 97,
}

/// <summary>CUfunction_attribute values used here (cuda.h).</summary>
public enum FunctionAttribute
{
    MaxThreadsPerBlock = 0,
    SharedSizeBytes = 1,
    NumRegisters = 4,
    MaxDynamicSharedSizeBytes = 8,
    PreferredSharedMemoryCarveout = 9,
}

/// <summary>
/// The CUDA driver API (libcuda), loaded at run time through <see cref="LibraryProbe"/> with every entry point
/// bound as an unmanaged function pointer. Every wrapper checks the CUresult and throws
/// <see cref="CudaException"/> naming the call and the error. One instance per process (<see cref="Instance"/>);
/// <c>cuInit</c> runs once when it is created.
/// </summary>
public sealed unsafe class CudaDriver
{
    private const int Success = 0;

    private static readonly Lazy<CudaDriver> Shared = new(() => new CudaDriver(), LazyThreadSafetyMode.ExecutionAndPublication);

    private readonly delegate* unmanaged<uint, int> cuInit;
    private readonly delegate* unmanaged<int*, int> cuDriverGetVersion;
    private readonly delegate* unmanaged<int*, int> cuDeviceGetCount;
    private readonly delegate* unmanaged<int*, int, int> cuDeviceGet;
    private readonly delegate* unmanaged<byte*, int, int, int> cuDeviceGetName;
    private readonly delegate* unmanaged<int*, int, int, int> cuDeviceGetAttribute;
    private readonly delegate* unmanaged<nuint*, int, int> cuDeviceTotalMem;
    private readonly delegate* unmanaged<nint*, int, int> cuDevicePrimaryCtxRetain;
    private readonly delegate* unmanaged<int, int> cuDevicePrimaryCtxRelease;
    private readonly delegate* unmanaged<nint, int> cuCtxSetCurrent;
    private readonly delegate* unmanaged<nint*, int> cuCtxGetCurrent;
    private readonly delegate* unmanaged<int> cuCtxSynchronize;
    private readonly delegate* unmanaged<ulong*, nuint, int> cuMemAlloc;
    private readonly delegate* unmanaged<ulong, int> cuMemFree;
    private readonly delegate* unmanaged<nuint*, nuint*, int> cuMemGetInfo;
    private readonly delegate* unmanaged<ulong, void*, nuint, int> cuMemcpyHtoD;
    private readonly delegate* unmanaged<void*, ulong, nuint, int> cuMemcpyDtoH;
    private readonly delegate* unmanaged<ulong, void*, nuint, nint, int> cuMemcpyHtoDAsync;
    private readonly delegate* unmanaged<void*, ulong, nuint, nint, int> cuMemcpyDtoHAsync;
    private readonly delegate* unmanaged<ulong, ulong, nuint, nint, int> cuMemcpyDtoDAsync;
    private readonly delegate* unmanaged<ulong, uint, nuint, nint, int> cuMemsetD32Async;
    private readonly delegate* unmanaged<nint*, uint, int> cuStreamCreate;
    private readonly delegate* unmanaged<nint*, uint, int, int> cuStreamCreateWithPriority;
    private readonly delegate* unmanaged<int*, int*, int> cuCtxGetStreamPriorityRange;
    private readonly delegate* unmanaged<nint, int> cuStreamDestroy;
    private readonly delegate* unmanaged<nint, int> cuStreamSynchronize;
    private readonly delegate* unmanaged<nint*, uint, int> cuEventCreate;
    private readonly delegate* unmanaged<nint, int> cuEventDestroy;
    private readonly delegate* unmanaged<nint, nint, int> cuEventRecord;
    private readonly delegate* unmanaged<nint, nint, uint, int> cuStreamWaitEvent;
    private readonly delegate* unmanaged<nint, int> cuEventSynchronize;
    private readonly delegate* unmanaged<float*, nint, nint, int> cuEventElapsedTime;
    private readonly delegate* unmanaged<nint*, void*, int> cuModuleLoadData;
    private readonly delegate* unmanaged<nint, int> cuModuleUnload;
    private readonly delegate* unmanaged<nint*, nint, byte*, int> cuModuleGetFunction;
    private readonly delegate* unmanaged<nint, uint, uint, uint, uint, uint, uint, uint, nint, void**, void**, int> cuLaunchKernel;
    private readonly delegate* unmanaged<LaunchConfig*, nint, void**, void**, int> cuLaunchKernelEx;
    private readonly delegate* unmanaged<nint, int, int, int> cuFuncSetAttribute;
    private readonly delegate* unmanaged<int*, int, nint, int> cuFuncGetAttribute;
    private readonly delegate* unmanaged<int*, nint, int, nuint, int> cuOccupancyMaxActiveBlocksPerMultiprocessor;
    private readonly delegate* unmanaged<void**, nuint, int> cuMemAllocHost;
    private readonly delegate* unmanaged<void*, int> cuMemFreeHost;
    private readonly delegate* unmanaged<ulong*, void*, uint, int> cuMemHostGetDevicePointer;
    private readonly delegate* unmanaged<nint, int, int> cuStreamBeginCapture;
    private readonly delegate* unmanaged<nint, nint*, int> cuStreamEndCapture;
    private readonly delegate* unmanaged<nint, int*, int> cuStreamIsCapturing;
    private readonly delegate* unmanaged<nint*, nint, ulong, int> cuGraphInstantiateWithFlags;
    private readonly delegate* unmanaged<nint, nint, int> cuGraphLaunch;
    private readonly delegate* unmanaged<nint, int> cuGraphExecDestroy;
    private readonly delegate* unmanaged<nint, int> cuGraphDestroy;
    private readonly delegate* unmanaged<int, byte**, int> cuGetErrorName;
    private readonly delegate* unmanaged<int, byte**, int> cuGetErrorString;

    private CudaDriver()
    {
        if (!LibraryProbe.TryLoad(LibraryProbe.DriverCandidates(), out var library, out var name, out var tried))
        {
            throw new CudaUnavailableException(
                $"the CUDA driver library was not found (tried {tried}); install the NVIDIA driver or set RADLADS_CUDA_DRIVER to its path");
        }

        LibraryName = name;
        nint Get(string symbol) => NativeLibrary.TryGetExport(library, symbol, out var p)
            ? p
            : throw new CudaUnavailableException($"{name} has no entry point {symbol}: the NVIDIA driver is too old for this build");

        cuInit = (delegate* unmanaged<uint, int>)Get("cuInit");
        cuDriverGetVersion = (delegate* unmanaged<int*, int>)Get("cuDriverGetVersion");
        cuDeviceGetCount = (delegate* unmanaged<int*, int>)Get("cuDeviceGetCount");
        cuDeviceGet = (delegate* unmanaged<int*, int, int>)Get("cuDeviceGet");
        cuDeviceGetName = (delegate* unmanaged<byte*, int, int, int>)Get("cuDeviceGetName");
        cuDeviceGetAttribute = (delegate* unmanaged<int*, int, int, int>)Get("cuDeviceGetAttribute");
        cuDeviceTotalMem = (delegate* unmanaged<nuint*, int, int>)Get("cuDeviceTotalMem_v2");
        cuDevicePrimaryCtxRetain = (delegate* unmanaged<nint*, int, int>)Get("cuDevicePrimaryCtxRetain");
        cuDevicePrimaryCtxRelease = (delegate* unmanaged<int, int>)Get("cuDevicePrimaryCtxRelease_v2");
        cuCtxSetCurrent = (delegate* unmanaged<nint, int>)Get("cuCtxSetCurrent");
        cuCtxGetCurrent = (delegate* unmanaged<nint*, int>)Get("cuCtxGetCurrent");
        cuCtxSynchronize = (delegate* unmanaged<int>)Get("cuCtxSynchronize");
        cuMemAlloc = (delegate* unmanaged<ulong*, nuint, int>)Get("cuMemAlloc_v2");
        cuMemFree = (delegate* unmanaged<ulong, int>)Get("cuMemFree_v2");
        cuMemGetInfo = (delegate* unmanaged<nuint*, nuint*, int>)Get("cuMemGetInfo_v2");
        cuMemcpyHtoD = (delegate* unmanaged<ulong, void*, nuint, int>)Get("cuMemcpyHtoD_v2");
        cuMemcpyDtoH = (delegate* unmanaged<void*, ulong, nuint, int>)Get("cuMemcpyDtoH_v2");
        cuMemcpyHtoDAsync = (delegate* unmanaged<ulong, void*, nuint, nint, int>)Get("cuMemcpyHtoDAsync_v2");
        cuMemcpyDtoHAsync = (delegate* unmanaged<void*, ulong, nuint, nint, int>)Get("cuMemcpyDtoHAsync_v2");
        cuMemcpyDtoDAsync = (delegate* unmanaged<ulong, ulong, nuint, nint, int>)Get("cuMemcpyDtoDAsync_v2");
        cuMemsetD32Async = (delegate* unmanaged<ulong, uint, nuint, nint, int>)Get("cuMemsetD32Async");
        cuStreamCreate = (delegate* unmanaged<nint*, uint, int>)Get("cuStreamCreate");
        cuStreamCreateWithPriority = (delegate* unmanaged<nint*, uint, int, int>)Get("cuStreamCreateWithPriority");
        cuCtxGetStreamPriorityRange = (delegate* unmanaged<int*, int*, int>)Get("cuCtxGetStreamPriorityRange");
        cuStreamDestroy = (delegate* unmanaged<nint, int>)Get("cuStreamDestroy_v2");
        cuStreamSynchronize = (delegate* unmanaged<nint, int>)Get("cuStreamSynchronize");
        cuEventCreate = (delegate* unmanaged<nint*, uint, int>)Get("cuEventCreate");
        cuEventDestroy = (delegate* unmanaged<nint, int>)Get("cuEventDestroy_v2");
        cuEventRecord = (delegate* unmanaged<nint, nint, int>)Get("cuEventRecord");
        cuStreamWaitEvent = (delegate* unmanaged<nint, nint, uint, int>)Get("cuStreamWaitEvent");
        cuEventSynchronize = (delegate* unmanaged<nint, int>)Get("cuEventSynchronize");
        cuEventElapsedTime = (delegate* unmanaged<float*, nint, nint, int>)Get("cuEventElapsedTime");
        cuModuleLoadData = (delegate* unmanaged<nint*, void*, int>)Get("cuModuleLoadData");
        cuModuleUnload = (delegate* unmanaged<nint, int>)Get("cuModuleUnload");
        cuModuleGetFunction = (delegate* unmanaged<nint*, nint, byte*, int>)Get("cuModuleGetFunction");
        cuLaunchKernel = (delegate* unmanaged<nint, uint, uint, uint, uint, uint, uint, uint, nint, void**, void**, int>)Get("cuLaunchKernel");
        // CUDA 11.8 and later; older drivers launch without programmatic dependencies.
        cuLaunchKernelEx = NativeLibrary.TryGetExport(library, "cuLaunchKernelEx", out var launchEx) ? (delegate* unmanaged<LaunchConfig*, nint, void**, void**, int>)launchEx : null;
        cuFuncSetAttribute = (delegate* unmanaged<nint, int, int, int>)Get("cuFuncSetAttribute");
        cuFuncGetAttribute = (delegate* unmanaged<int*, int, nint, int>)Get("cuFuncGetAttribute");
        cuOccupancyMaxActiveBlocksPerMultiprocessor = (delegate* unmanaged<int*, nint, int, nuint, int>)Get("cuOccupancyMaxActiveBlocksPerMultiprocessor");
        cuMemAllocHost = (delegate* unmanaged<void**, nuint, int>)Get("cuMemAllocHost_v2");
        cuMemFreeHost = (delegate* unmanaged<void*, int>)Get("cuMemFreeHost");
        cuMemHostGetDevicePointer = (delegate* unmanaged<ulong*, void*, uint, int>)Get("cuMemHostGetDevicePointer_v2");
        cuStreamBeginCapture = (delegate* unmanaged<nint, int, int>)Get("cuStreamBeginCapture_v2");
        cuStreamEndCapture = (delegate* unmanaged<nint, nint*, int>)Get("cuStreamEndCapture");
        cuStreamIsCapturing = (delegate* unmanaged<nint, int*, int>)Get("cuStreamIsCapturing");
        cuGraphInstantiateWithFlags = (delegate* unmanaged<nint*, nint, ulong, int>)Get("cuGraphInstantiateWithFlags");
        cuGraphLaunch = (delegate* unmanaged<nint, nint, int>)Get("cuGraphLaunch");
        cuGraphExecDestroy = (delegate* unmanaged<nint, int>)Get("cuGraphExecDestroy");
        cuGraphDestroy = (delegate* unmanaged<nint, int>)Get("cuGraphDestroy");
        cuGetErrorName = (delegate* unmanaged<int, byte**, int>)Get("cuGetErrorName");
        cuGetErrorString = (delegate* unmanaged<int, byte**, int>)Get("cuGetErrorString");

        int result = cuInit(0);
        if (result != Success)
        {
            throw new CudaUnavailableException($"cuInit failed: {ErrorName(result)} ({result}): {ErrorText(result)} (driver library {name})");
        }

        int version;
        Check(cuDriverGetVersion(&version), "cuDriverGetVersion");
        DriverVersion = version;
        int count;
        Check(cuDeviceGetCount(&count), "cuDeviceGetCount");
        DeviceCount = count;
    }

    /// <summary>
    /// The process-wide driver, initialised on first use. Throws <see cref="CudaUnavailableException"/> when the
    /// library is missing or cuInit fails (the same exception on every call).
    /// </summary>
    public static CudaDriver Instance => Shared.Value;

    /// <summary>The library file that was loaded, e.g. <c>libcuda.so.1</c>.</summary>
    public string LibraryName { get; }

    /// <summary>1000·major + 10·minor, e.g. 13000 for CUDA 13.0.</summary>
    public int DriverVersion { get; }

    public string DriverVersionText => $"{DriverVersion / 1000}.{DriverVersion % 1000 / 10}";

    public int DeviceCount { get; }

    // ---- errors ----

    public string ErrorName(int result)
    {
        byte* text = null;
        return cuGetErrorName(result, &text) == Success && text != null ? Marshal.PtrToStringUTF8((nint)text) ?? "?" : $"CUresult {result}";
    }

    public string ErrorText(int result)
    {
        byte* text = null;
        return cuGetErrorString(result, &text) == Success && text != null ? Marshal.PtrToStringUTF8((nint)text) ?? "?" : "unknown error";
    }

    /// <summary>Throws <see cref="CudaException"/> naming <paramref name="call"/> unless <paramref name="result"/> is CUDA_SUCCESS.</summary>
    public void Check(int result, string call)
    {
        if (result != Success)
        {
            throw new CudaException(call, result, ErrorName(result), ErrorText(result));
        }
    }

    // ---- devices and contexts ----

    public int Device(int ordinal)
    {
        int device;
        Check(cuDeviceGet(&device, ordinal), "cuDeviceGet");
        return device;
    }

    public string DeviceName(int device)
    {
        byte* name = stackalloc byte[256];
        Check(cuDeviceGetName(name, 256, device), "cuDeviceGetName");
        return Marshal.PtrToStringUTF8((nint)name) ?? "";
    }

    public int GetAttribute(int device, DeviceAttribute attribute)
    {
        int value;
        Check(cuDeviceGetAttribute(&value, (int)attribute, device), "cuDeviceGetAttribute");
        return value;
    }

    public long TotalMemory(int device)
    {
        nuint bytes;
        Check(cuDeviceTotalMem(&bytes, device), "cuDeviceTotalMem_v2");
        return (long)bytes;
    }

    public nint PrimaryContextRetain(int device)
    {
        nint context;
        Check(cuDevicePrimaryCtxRetain(&context, device), "cuDevicePrimaryCtxRetain");
        return context;
    }

    public int PrimaryContextRelease(int device) => cuDevicePrimaryCtxRelease(device);

    public void SetCurrentContext(nint context) => Check(cuCtxSetCurrent(context), "cuCtxSetCurrent");

    /// <summary>cuCtxSetCurrent, returning the CUresult (release paths must not throw).</summary>
    public int TrySetCurrentContext(nint context) => cuCtxSetCurrent(context);

    public nint CurrentContext()
    {
        nint context;
        Check(cuCtxGetCurrent(&context), "cuCtxGetCurrent");
        return context;
    }

    public void Synchronize()
    {
        Interlocked.Increment(ref hostWaits);
        Check(cuCtxSynchronize(), "cuCtxSynchronize");
    }

    // The host-side calls that can leave the device idle, counted for diagnostics (`bench-decode --prefill-bench`
    // prints them for its timed pass): a wait stops the host from queueing more work, and cuMemFree waits for the
    // device implicitly.
    private long hostWaits, allocations, frees;

    /// <summary>Context, stream and event waits, cuMemAlloc and cuMemFree calls so far (all threads).</summary>
    public (long Waits, long Allocations, long Frees) HostCalls =>
        (Interlocked.Read(ref hostWaits), Interlocked.Read(ref allocations), Interlocked.Read(ref frees));

    // ---- memory ----

    public ulong Allocate(long bytes)
    {
        ulong pointer;
        Interlocked.Increment(ref allocations);
        Check(cuMemAlloc(&pointer, (nuint)Math.Max(bytes, 1)), "cuMemAlloc_v2");
        return pointer;
    }

    /// <summary>cuMemFree_v2, returning the CUresult (release paths must not throw).</summary>
    public int Free(ulong pointer)
    {
        Interlocked.Increment(ref frees);
        return cuMemFree(pointer);
    }

    /// <summary>Free and total bytes of the current context's device.</summary>
    public (long Free, long Total) MemoryInfo()
    {
        nuint free, total;
        Check(cuMemGetInfo(&free, &total), "cuMemGetInfo_v2");
        return ((long)free, (long)total);
    }

    /// <summary>Page-locked host memory (cuMemAllocHost_v2): copies from it are true DMA and may be captured in a graph.</summary>
    public void* AllocateHost(long bytes)
    {
        void* pointer;
        Check(cuMemAllocHost(&pointer, (nuint)Math.Max(bytes, 1)), "cuMemAllocHost_v2");
        return pointer;
    }

    /// <summary>
    /// The device address of page-locked host memory from <see cref="AllocateHost"/> (cuMemHostGetDevicePointer_v2): a
    /// kernel's stores to it land in host memory, visible to the host once the kernel has completed and the host has
    /// synchronised with it.
    /// </summary>
    public ulong HostDevicePointer(void* host)
    {
        ulong pointer;
        Check(cuMemHostGetDevicePointer(&pointer, host, 0), "cuMemHostGetDevicePointer_v2");
        return pointer;
    }

    /// <summary>cuMemFreeHost, returning the CUresult (release paths must not throw).</summary>
    public int FreeHost(void* pointer) => cuMemFreeHost(pointer);

    public void CopyHostToDevice(ulong destination, void* source, long bytes) =>
        Check(cuMemcpyHtoD(destination, source, (nuint)bytes), "cuMemcpyHtoD_v2");

    public void CopyDeviceToHost(void* destination, ulong source, long bytes) =>
        Check(cuMemcpyDtoH(destination, source, (nuint)bytes), "cuMemcpyDtoH_v2");

    public void CopyHostToDeviceAsync(ulong destination, void* source, long bytes, nint stream) =>
        Check(cuMemcpyHtoDAsync(destination, source, (nuint)bytes, stream), "cuMemcpyHtoDAsync_v2");

    public void CopyDeviceToHostAsync(void* destination, ulong source, long bytes, nint stream) =>
        Check(cuMemcpyDtoHAsync(destination, source, (nuint)bytes, stream), "cuMemcpyDtoHAsync_v2");

    public void CopyDeviceToDeviceAsync(ulong destination, ulong source, long bytes, nint stream) =>
        Check(cuMemcpyDtoDAsync(destination, source, (nuint)bytes, stream), "cuMemcpyDtoDAsync_v2");

    public void SetAsync(ulong destination, uint value, long count32, nint stream) =>
        Check(cuMemsetD32Async(destination, value, (nuint)count32, stream), "cuMemsetD32Async");

    // ---- streams and events ----

    /// <summary>A stream that does not synchronise with the legacy default stream (CU_STREAM_NON_BLOCKING).</summary>
    public nint CreateStream()
    {
        nint stream;
        Check(cuStreamCreate(&stream, 1), "cuStreamCreate");
        return stream;
    }

    /// <summary>
    /// A non-blocking stream whose pending blocks the scheduler dispatches before those of lower-priority streams
    /// (cuStreamCreateWithPriority with the context's greatest priority; kernels captured from it keep it in a graph).
    /// </summary>
    public nint CreateHighPriorityStream()
    {
        nint stream;
        Check(cuStreamCreateWithPriority(&stream, 1, GreatestPriority), "cuStreamCreateWithPriority");
        return stream;
    }

    public int DestroyStream(nint stream) => cuStreamDestroy(stream);

    public void SynchronizeStream(nint stream)
    {
        Interlocked.Increment(ref hostWaits);
        Check(cuStreamSynchronize(stream), "cuStreamSynchronize");
    }

    /// <summary>An event; <paramref name="timing"/> false: CU_EVENT_DISABLE_TIMING (cheaper, for ordering only).</summary>
    public nint CreateEvent(bool timing = true)
    {
        nint ev;
        Check(cuEventCreate(&ev, timing ? 0u : 2u), "cuEventCreate");
        return ev;
    }

    public int DestroyEvent(nint ev) => cuEventDestroy(ev);

    public void RecordEvent(nint ev, nint stream) => Check(cuEventRecord(ev, stream), "cuEventRecord");

    /// <summary>Work queued on <paramref name="stream"/> after this waits for <paramref name="ev"/>'s recorded point (cuStreamWaitEvent; captured as a graph edge).</summary>
    public void WaitEvent(nint stream, nint ev) => Check(cuStreamWaitEvent(stream, ev, 0), "cuStreamWaitEvent");

    public void SynchronizeEvent(nint ev)
    {
        Interlocked.Increment(ref hostWaits);
        Check(cuEventSynchronize(ev), "cuEventSynchronize");
    }

    public float ElapsedMilliseconds(nint start, nint end)
    {
        float ms;
        Check(cuEventElapsedTime(&ms, start, end), "cuEventElapsedTime");
        return ms;
    }

    // ---- graphs ----

    /// <summary>
    /// Starts recording the work queued on <paramref name="stream"/> into a graph (cuStreamBeginCapture_v2) in
    /// relaxed mode: other threads may keep calling the driver, and allocations are allowed while recording.
    /// </summary>
    public void BeginCapture(nint stream) => Check(cuStreamBeginCapture(stream, 2), "cuStreamBeginCapture_v2");

    /// <summary>Whether <paramref name="stream"/> is being recorded into a graph (cuStreamIsCapturing: active or invalidated).</summary>
    public bool IsCapturing(nint stream)
    {
        int status;
        Check(cuStreamIsCapturing(stream, &status), "cuStreamIsCapturing");
        return status != 0;
    }

    /// <summary>Ends the recording and returns the CUgraph (cuStreamEndCapture).</summary>
    public nint EndCapture(nint stream)
    {
        nint graph;
        Check(cuStreamEndCapture(stream, &graph), "cuStreamEndCapture");
        return graph;
    }

    /// <summary>cuStreamEndCapture ignoring the result: ends a recording that failed part-way.</summary>
    public void AbandonCapture(nint stream)
    {
        nint graph = 0;
        if (cuStreamEndCapture(stream, &graph) == Success && graph != 0)
        {
            cuGraphDestroy(graph);
        }
    }

    public nint InstantiateGraph(nint graph)
    {
        nint exec;
        Check(cuGraphInstantiateWithFlags(&exec, graph, 0), "cuGraphInstantiateWithFlags");
        return exec;
    }

    public void LaunchGraph(nint exec, nint stream) => Check(cuGraphLaunch(exec, stream), "cuGraphLaunch");

    public int DestroyGraph(nint graph) => cuGraphDestroy(graph);

    public int DestroyGraphExec(nint exec) => cuGraphExecDestroy(exec);

    // ---- modules and launches ----

    public nint LoadModule(ReadOnlySpan<byte> image)
    {
        nint module;
        fixed (byte* p = image)
        {
            Check(cuModuleLoadData(&module, p), "cuModuleLoadData");
        }

        return module;
    }

    public int UnloadModule(nint module) => cuModuleUnload(module);

    public nint GetFunction(nint module, string name)
    {
        nint function;
        var bytes = System.Text.Encoding.UTF8.GetBytes(name + "\0");
        fixed (byte* p = bytes)
        {
            int result = cuModuleGetFunction(&function, module, p);
            if (result != Success)
            {
                throw new CudaException($"cuModuleGetFunction({name})", result, ErrorName(result), ErrorText(result));
            }
        }

        return function;
    }

    public void SetFunctionAttribute(nint function, FunctionAttribute attribute, int value) =>
        Check(cuFuncSetAttribute(function, (int)attribute, value), "cuFuncSetAttribute");

    public int GetFunctionAttribute(nint function, FunctionAttribute attribute)
    {
        int value;
        Check(cuFuncGetAttribute(&value, (int)attribute, function), "cuFuncGetAttribute");
        return value;
    }

    /// <summary>How many blocks of <paramref name="blockThreads"/> threads and this much dynamic shared memory fit on one SM at once.</summary>
    public int MaxActiveBlocksPerMultiprocessor(nint function, int blockThreads, int dynamicSharedBytes)
    {
        int blocks;
        Check(cuOccupancyMaxActiveBlocksPerMultiprocessor(&blocks, function, blockThreads, (nuint)dynamicSharedBytes),
            "cuOccupancyMaxActiveBlocksPerMultiprocessor");
        return blocks;
    }

    /// <summary>Whether <see cref="LaunchProgrammatic"/> and <see cref="LaunchCooperative"/> are available (cuLaunchKernelEx, CUDA 11.8 and later).</summary>
    public bool HasLaunchEx => cuLaunchKernelEx != null;

    /// <summary>
    /// cuLaunchKernelEx with CU_LAUNCH_ATTRIBUTE_COOPERATIVE: every block of the grid is resident at once (the driver
    /// refuses a grid that cannot be), so the kernel may wait for all of them at a grid barrier. Recorded into graphs
    /// like any launch. With <paramref name="programmatic"/>, also with programmatic stream serialisation (as
    /// <see cref="LaunchProgrammatic"/>): the grid may begin while the previous kernel finishes.
    /// </summary>
    public void LaunchCooperative(nint function, uint gridX, uint blockX, uint sharedBytes, nint stream, void** arguments, string name,
        bool programmatic = false) =>
        LaunchWithAttribute(2 /* CU_LAUNCH_ATTRIBUTE_COOPERATIVE */, function, gridX, 1, 1, blockX, 1, 1, sharedBytes, stream, arguments,
            $"{name}, cooperative{(programmatic ? ", programmatic" : "")}, {gridX} blocks of {blockX} threads",
            secondAttributeId: programmatic ? ProgrammaticStreamSerialization : 0);

    /// <summary>
    /// cuLaunchKernelEx with programmatic stream serialisation (CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION,
    /// compute capability 9.0 and later): the kernel may begin while the previous kernel in the stream is finishing;
    /// it must execute griddepcontrol.wait before touching memory that kernel reads or writes.
    /// </summary>
    public void LaunchProgrammatic(nint function, uint gridX, uint gridY, uint gridZ, uint blockX, uint blockY, uint blockZ,
        uint sharedBytes, nint stream, void** arguments, string name) =>
        LaunchWithAttribute(ProgrammaticStreamSerialization, function, gridX, gridY, gridZ, blockX, blockY, blockZ,
            sharedBytes, stream, arguments, name);

    /// <summary>
    /// A plain launch whose blocks the scheduler dispatches before pending blocks of normal-priority kernels
    /// (CU_LAUNCH_ATTRIBUTE_PRIORITY with the context's greatest priority; kept as the node's priority when captured).
    /// </summary>
    public void LaunchHighPriority(nint function, uint gridX, uint gridY, uint gridZ, uint blockX, uint blockY, uint blockZ,
        uint sharedBytes, nint stream, void** arguments, string name) =>
        LaunchWithAttribute(0, function, gridX, gridY, gridZ, blockX, blockY, blockZ, sharedBytes, stream, arguments, name, highPriority: true);

    private const int ProgrammaticStreamSerialization = 6; // CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION
    private const int PriorityAttribute = 8;               // CU_LAUNCH_ATTRIBUTE_PRIORITY

    private int? greatestPriority;

    /// <summary>The context's greatest (numerically lowest) stream priority.</summary>
    private int GreatestPriority
    {
        get
        {
            if (greatestPriority is null)
            {
                int least, greatest;
                Check(cuCtxGetStreamPriorityRange(&least, &greatest), "cuCtxGetStreamPriorityRange");
                greatestPriority = greatest;
            }

            return greatestPriority.Value;
        }
    }

    /// <summary>
    /// cuLaunchKernelEx with launch attributes <paramref name="attributeId"/> and <paramref name="secondAttributeId"/>
    /// (value 1; 0: none) and, when <paramref name="highPriority"/>, the greatest priority; the error names <paramref name="what"/>.
    /// </summary>
    private void LaunchWithAttribute(int attributeId, nint function, uint gridX, uint gridY, uint gridZ, uint blockX, uint blockY, uint blockZ,
        uint sharedBytes, nint stream, void** arguments, string what, bool highPriority = false, int secondAttributeId = 0)
    {
        var attributes = stackalloc LaunchAttribute[3];
        uint count = 0;
        foreach (int id in (ReadOnlySpan<int>)[attributeId, secondAttributeId])
        {
            if (id != 0)
            {
                attributes[count] = default;
                attributes[count].Id = id;
                attributes[count].Value = 1;
                count++;
            }
        }

        if (highPriority)
        {
            attributes[count] = default;
            attributes[count].Id = PriorityAttribute;
            attributes[count].Value = GreatestPriority;
            count++;
        }

        var config = new LaunchConfig
        {
            GridX = gridX,
            GridY = gridY,
            GridZ = gridZ,
            BlockX = blockX,
            BlockY = blockY,
            BlockZ = blockZ,
            SharedBytes = sharedBytes,
            Stream = stream,
            Attributes = attributes,
            AttributeCount = count,
        };
        int result = cuLaunchKernelEx(&config, function, arguments, null);
        if (result != Success)
        {
            throw new CudaException($"cuLaunchKernelEx({what})", result, ErrorName(result), ErrorText(result));
        }
    }

    /// <summary>CUlaunchConfig (cuda.h).</summary>
    [StructLayout(LayoutKind.Sequential)]
    private struct LaunchConfig
    {
        public uint GridX, GridY, GridZ, BlockX, BlockY, BlockZ, SharedBytes;
        public nint Stream;
        public LaunchAttribute* Attributes;
        public uint AttributeCount;
    }

    /// <summary>CUlaunchAttribute (cuda.h): a 4-byte id padded to 8, then a 64-byte value union.</summary>
    [StructLayout(LayoutKind.Explicit, Size = 72)]
    private struct LaunchAttribute
    {
        [FieldOffset(0)]
        public int Id;

        [FieldOffset(8)]
        public int Value;
    }

    public void Launch(nint function, uint gridX, uint gridY, uint gridZ, uint blockX, uint blockY, uint blockZ,
        uint sharedBytes, nint stream, void** arguments, string name)
    {
        int result = cuLaunchKernel(function, gridX, gridY, gridZ, blockX, blockY, blockZ, sharedBytes, stream, arguments, null);
        if (result != Success)
        {
            throw new CudaException($"cuLaunchKernel({name})", result, ErrorName(result), ErrorText(result));
        }
    }
}
