namespace Radlads;

/// <summary>
/// An error caused by the user's input (a file, a folder, an option), not by a bug.
/// The message is one line that names the file, tensor, field or option and says what was
/// expected, so the CLI prints it without a stack trace and exits non-zero.
/// </summary>
public class RadladsException : Exception
{
    public RadladsException(string message) : base(message) { }

    public RadladsException(string message, Exception inner) : base(message, inner) { }
}
