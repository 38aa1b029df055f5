using Radlads.Checkpoints;

namespace Radlads.Tests.Models;

/// <summary>A temporary copy of a golden fixture that a test may break: edit config.json or rewrite tensors.</summary>
public sealed class FixtureCopy : IDisposable
{
    public FixtureCopy(string name)
        : this(Fixtures.Directory(name), name)
    {
    }

    private FixtureCopy(string source, string name)
    {
        Directory = Path.Combine(Path.GetTempPath(), $"radlads-{name}-{Guid.NewGuid():N}");
        System.IO.Directory.CreateDirectory(Directory);
        foreach (var file in System.IO.Directory.GetFiles(source))
        {
            File.Copy(file, Path.Combine(Directory, Path.GetFileName(file)));
        }
    }

    /// <summary>A copy of any model folder (its files, not subfolders).</summary>
    public static FixtureCopy Of(string directory) => new(directory, Path.GetFileName(Path.TrimEndingDirectorySeparator(directory)));

    public string Directory { get; }

    public string ConfigPath => Path.Combine(Directory, "config.json");

    public string WeightsPath => Path.Combine(Directory, "model.safetensors");

    public void EditConfig(Func<string, string> edit) => File.WriteAllText(ConfigPath, edit(File.ReadAllText(ConfigPath)));

    /// <summary>Rewrites model.safetensors; <paramref name="edit"/> returns null to drop a tensor.</summary>
    public unsafe void EditTensors(Func<TensorToWrite, TensorToWrite?> edit)
    {
        var tensors = new List<TensorToWrite>();
        using (var checkpoint = Checkpoint.Open(Directory))
        {
            foreach (var name in checkpoint.Names)
            {
                var data = checkpoint.Get(name);
                var bytes = new ReadOnlySpan<byte>(data.Pointer, checked((int)data.ByteLength)).ToArray();
                if (edit(new TensorToWrite(name, data.DType, data.Shape, bytes)) is TensorToWrite kept)
                {
                    tensors.Add(kept);
                }
            }
        }

        SafetensorsWriter.Write(WeightsPath, tensors);
    }

    public void Dispose()
    {
        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
