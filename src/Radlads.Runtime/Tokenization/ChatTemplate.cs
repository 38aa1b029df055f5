namespace Radlads.Tokenization;

/// <summary>One chat turn.</summary>
public sealed record ChatMessage(string Role, string Content);

/// <summary>Qwen's ChatML: &lt;|im_start|&gt;role\ncontent&lt;|im_end|&gt;\n …, ending with &lt;|im_start|&gt;assistant\n for generation.</summary>
public static class ChatTemplate
{
    public static string Format(IEnumerable<ChatMessage> messages, bool addGenerationPrompt = true) => throw new NotImplementedException();
}
