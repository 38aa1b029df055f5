using Radlads.Checkpoints;
using Radlads.Conversion;
using Radlads.Tests.Models;

namespace Radlads.Tests.Convert;

/// <summary>A student converted from a teacher into a fresh temporary folder, deleted on dispose.</summary>
public sealed class ConvertedStudent : IDisposable
{
    private readonly string root;

    public ConvertedStudent(string teacherDirectory, StudentArchitecture architecture, StudentVariant variant = StudentVariant.Balanced,
        ulong seed = 0, DType dtype = DType.BF16, LoraRankOverrides? ranks = null)
    {
        root = System.IO.Directory.CreateTempSubdirectory("radlads-convert-").FullName;
        Teacher = teacherDirectory;
        Result = StudentConverter.Convert(new ConversionOptions
        {
            TeacherDirectory = teacherDirectory,
            OutputDirectory = Path.Combine(root, "student"),
            Architecture = architecture,
            Variant = variant,
            Seed = seed,
            DType = dtype,
            RankOverrides = ranks ?? new LoraRankOverrides(),
        });
    }

    /// <summary>Converts a golden fixture (qwen2 or qwen2-tied).</summary>
    public static ConvertedStudent FromFixture(string fixture, StudentArchitecture architecture, StudentVariant variant = StudentVariant.Balanced,
        ulong seed = 0, DType dtype = DType.BF16, LoraRankOverrides? ranks = null) =>
        new(Fixtures.Directory(fixture), architecture, variant, seed, dtype, ranks);

    public string Teacher { get; }

    public ConversionResult Result { get; }

    public string Directory => Result.OutputDirectory;

    public string WeightsPath => Path.Combine(Directory, "model.safetensors");

    public void Dispose()
    {
        try
        {
            System.IO.Directory.Delete(root, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
