namespace Radlads.Tests;

public class SmokeTests
{
    [Fact]
    public void ExceptionKeepsMessage() => Assert.Equal("x", new RadladsException("x").Message);
}
