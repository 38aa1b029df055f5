using BenchmarkDotNet.Running;

BenchmarkSwitcher.FromAssembly(typeof(Radlads.Bench.CpuOpsBenchmarks).Assembly).Run(args);
