namespace Radlads.Bench;

/// <summary>Finds files of the repository the benchmarks run from (tests/data, models/).</summary>
internal static class Repository
{
    public static string Path(params string[] parts)
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(System.IO.Path.Combine(dir.FullName, "Radlads.sln")))
            {
                return System.IO.Path.Combine([dir.FullName, .. parts]);
            }
        }

        throw new InvalidOperationException("run the benchmarks from inside the repository (Radlads.sln not found above " + AppContext.BaseDirectory + ")");
    }
}
