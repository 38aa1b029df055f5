namespace Radlads.Tests.Models;

/// <summary>Paths of the committed golden fixtures (tests/golden, copied next to the test binary).</summary>
public static class Fixtures
{
    /// <summary>Every fixture: both qwen2 heads, RAD-RWKV6 with and without RoPE/token shift, RAD-RWKV7 variants B and G.</summary>
    public static readonly string[] Names = ["qwen2", "qwen2-tied", "rwkv6", "rwkv6-rope", "rwkv7", "rwkv7-groupnorm"];

    public static TheoryData<string> All => new(Names);

    public static string Directory(string name) => Path.Combine(AppContext.BaseDirectory, "golden", name);

    /// <summary>The repository root (the folder holding Radlads.sln), found by walking up from the test binary.</summary>
    public static string RepositoryRoot
    {
        get
        {
            for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            {
                if (File.Exists(Path.Combine(d.FullName, "Radlads.sln")))
                {
                    return d.FullName;
                }
            }

            throw new InvalidOperationException("Radlads.sln not found above " + AppContext.BaseDirectory);
        }
    }
}
