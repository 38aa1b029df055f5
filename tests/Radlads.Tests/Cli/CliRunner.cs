namespace Radlads.Tests.Cli;

/// <summary>Runs the `radlads` command line in-process and captures what it prints.</summary>
public static class CliRunner
{
    public static (int Exit, string Output, string Error) Run(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int exit = Radlads.Cli.Cli.Run(args, output, error);
        return (exit, output.ToString(), error.ToString());
    }

    /// <summary>A user error: exit code 1 and a single "error: …" line, no stack trace.</summary>
    public static string AssertUserError((int Exit, string Output, string Error) result)
    {
        Assert.Equal(1, result.Exit);
        // --backend auto may add one line saying why it fell back to the CPU; the error is the other line.
        var lines = result.Error.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Where(l => !l.StartsWith(Radlads.Cli.CommonOptions.AutoNotePrefix, StringComparison.Ordinal)).ToArray();
        Assert.Single(lines);
        Assert.StartsWith("error: ", lines[0], StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", result.Error, StringComparison.Ordinal);
        return lines[0];
    }
}
