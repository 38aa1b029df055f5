using Radlads.Cpu;

namespace Radlads.Tests.Ops;

/// <summary>The CPU reference backend against the float64 definitions.</summary>
public sealed class CpuOpConformanceTests() : OpConformanceTests(new CpuBackend());
