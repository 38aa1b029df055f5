using System.Text;

namespace Radlads.Tokenization;

/// <summary>One chat turn.</summary>
public sealed record ChatMessage(string Role, string Content);

/// <summary>Qwen's ChatML: &lt;|im_start|&gt;role\ncontent&lt;|im_end|&gt;\n …, ending with &lt;|im_start|&gt;assistant\n for generation.</summary>
/// <remarks>
/// A plain ChatML formatter. It matches Qwen2.5's chat template for conversations without tools, with one
/// deliberate difference: when the first message is not a system message, Qwen2.5's template inserts the system
/// prompt "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."; this formatter inserts nothing,
/// so callers that want a system prompt pass one. Roles and contents are written as given, without escaping:
/// a content holding "&lt;|im_end|&gt;" is encoded as that special token.
/// </remarks>
public static class ChatTemplate
{
    public static string Format(IEnumerable<ChatMessage> messages, bool addGenerationPrompt = true)
    {
        ArgumentNullException.ThrowIfNull(messages);
        var sb = new StringBuilder();
        foreach (ChatMessage m in messages)
        {
            sb.Append("<|im_start|>").Append(m.Role).Append('\n').Append(m.Content).Append("<|im_end|>\n");
        }

        if (addGenerationPrompt)
        {
            sb.Append("<|im_start|>assistant\n");
        }

        return sb.ToString();
    }
}
