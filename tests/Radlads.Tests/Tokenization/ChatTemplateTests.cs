using Radlads.Tokenization;

namespace Radlads.Tests.Tokenization;

public class ChatTemplateTests
{
    [Fact]
    public void SystemUserWithGenerationPrompt() => Assert.Equal(
        "<|im_start|>system\nYou are terse.<|im_end|>\n<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\n",
        ChatTemplate.Format([new("system", "You are terse."), new("user", "Hi!")]));

    [Fact]
    public void NoDefaultSystemPromptIsInserted() => Assert.Equal(
        "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n",
        ChatTemplate.Format([new("user", "Hi")]));

    [Fact]
    public void MultiTurnWithoutGenerationPrompt() => Assert.Equal(
        "<|im_start|>user\nA\nB<|im_end|>\n<|im_start|>assistant\nC<|im_end|>\n<|im_start|>user\n<|im_end|>\n",
        ChatTemplate.Format([new("user", "A\nB"), new("assistant", "C"), new("user", "")], addGenerationPrompt: false));

    [Fact]
    public void EmptyConversation()
    {
        Assert.Equal("<|im_start|>assistant\n", ChatTemplate.Format([]));
        Assert.Equal("", ChatTemplate.Format([], addGenerationPrompt: false));
    }

    [Fact]
    public void EncodesToChatMlIds()
    {
        int[] ids = TestData.Qwen.Encode(ChatTemplate.Format([new("user", "Hi")]));
        Assert.Equal([151644, 872, 198, 13048, 151645, 198, 151644, 77091, 198], ids);
    }
}
