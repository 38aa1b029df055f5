using Radlads.Cpu;
using Radlads.Ops;

namespace Radlads.Tests.Ops;

public sealed class ProfilingOpsTests
{
    [Fact]
    public void EveryOpIsForwardedSoTheWrappedBackendsFusedKernelsRun()
    {
        // An IOps member with a default body (RopeExpand, ScaleMultiply, the *Rows ops …) that ProfilingOps does not
        // implement would run the default composition of the wrapped backend's other ops: the profile would show
        // (and time) the unfused launches instead of what an unprofiled run does.
        var map = typeof(ProfilingOps).GetInterfaceMap(typeof(IOps));
        var missing = map.TargetMethods.Where(m => m.DeclaringType != typeof(ProfilingOps)).Select(m => m.Name).ToArray();
        Assert.True(missing.Length == 0, $"ProfilingOps does not forward: {string.Join(", ", missing)}");
    }

    [Fact]
    public void AFusedOpIsTimedUnderItsOwnName()
    {
        using var cpu = new CpuBackend();
        var profiled = new ProfilingOps(cpu.Ops);
        using var a = cpu.FromFloats([1f, 2f, 3f], 1, 3);
        using var b = cpu.FromFloats([4f, 5f, 6f], 1, 3);
        profiled.ScaleMultiply(a, 0.5f, b, a);
        var values = new float[3];
        cpu.Download(a, values);
        Assert.Equal([2f, 5f, 9f], values);
        Assert.Equal(["ScaleMultiply"], profiled.Report().Select(r => r.Op));
    }
}
