using Radlads.Checkpoints;
using Radlads.Conversion;
using Radlads.Ops;

namespace Radlads.Training;

/// <summary>Writes a student folder: trained parameters from the backend, everything else from the student it started from.</summary>
internal static class StudentWriter
{
    private const int ChunkElements = 1 << 16;

    public static void Write(IBackend backend, Checkpoint student, string studentDir, string teacherDir, IReadOnlyList<Parameter> parameters,
        string outputDirectory, bool overwrite)
    {
        ArgumentNullException.ThrowIfNull(outputDirectory);
        string output = Path.TrimEndingDirectorySeparator(Path.GetFullPath(outputDirectory));
        foreach (var (dir, what) in new[] { (studentDir, "the student being trained (its weights are read while writing)"), (teacherDir, "the teacher's") })
        {
            if (string.Equals(Path.TrimEndingDirectorySeparator(Path.GetFullPath(dir)), output, StringComparison.Ordinal))
            {
                throw new RadladsException($"cannot write the trained student to {output}: it is {what} folder; choose another folder");
            }
        }

        if (File.Exists(output))
        {
            throw new RadladsException($"cannot write the trained student to {output}: it is a file; give a folder");
        }

        bool hasFiles = Directory.Exists(output) && Directory.EnumerateFileSystemEntries(output).Any();
        if (hasFiles && !overwrite)
        {
            throw new RadladsException($"cannot write the trained student to {output}: the folder is not empty; choose a new folder or allow overwriting it");
        }

        var trained = parameters.ToDictionary(p => p.Name, StringComparer.Ordinal);
        var sources = new List<TensorSource>();
        foreach (var name in student.Names)
        {
            var data = student.Get(name);
            if (trained.TryGetValue(name, out var parameter))
            {
                if (parameter.Value.ElementCount != data.ElementCount)
                {
                    throw new InvalidOperationException($"{name}: parameter of {parameter.Value.ElementCount} elements for a tensor of {data.ElementCount}");
                }

                if (data.DType is not (DType.BF16 or DType.F32))
                {
                    throw new RadladsException($"{name} in {studentDir} is {data.DType}; trained tensors are written as bf16 or f32 (convert the student with --dtype bf16 or f32)");
                }

                sources.Add(new TensorSource(name, data.DType, data.Shape, stream => WriteParameter(backend, parameter.Value, data.DType, stream)));
            }
            else
            {
                sources.Add(new TensorSource(name, data.DType, data.Shape, stream => StudentConverter.CopyTeacher(stream, student.Get(name), data.DType)));
            }
        }

        var missing = trained.Keys.Where(n => !student.Contains(n)).ToArray();
        if (missing.Length > 0)
        {
            throw new InvalidOperationException($"parameters not in the student checkpoint: {string.Join(", ", missing)}");
        }

        string target = hasFiles ? output : StudentConverter.StagingFolder(output);
        Directory.CreateDirectory(target);
        try
        {
            SafetensorsWriter.Write(Path.Combine(target, Checkpoint.SingleFileName), sources, new Dictionary<string, string> { ["format"] = "pt" });
            foreach (var name in StudentConverter.CopiedFileNames)
            {
                var from = Path.Combine(studentDir, name);
                if (File.Exists(from))
                {
                    StudentConverter.WriteAtomically(Path.Combine(target, name), temporary => File.Copy(from, temporary));
                }
            }

            // config.json last: an overwrite that fails midway leaves the old config.
            StudentConverter.WriteAtomically(Path.Combine(target, "config.json"), temporary => File.Copy(Path.Combine(studentDir, "config.json"), temporary));
            if (!hasFiles)
            {
                if (Directory.Exists(output))
                {
                    Directory.Delete(output); // empty (checked), so the rename can take its place
                }

                Directory.Move(target, output);
            }
        }
        catch
        {
            if (!hasFiles)
            {
                StudentConverter.TryDeleteFolder(target);
            }

            throw;
        }
    }

    private static void WriteParameter(IBackend backend, Tensor value, DType dtype, Stream stream)
    {
        var values = new float[value.ElementCount];
        backend.Download(value, values);
        foreach (var e in values)
        {
            if (!float.IsFinite(e))
            {
                throw new RadladsException("a trained parameter holds NaN or Inf; the student is not written (restart from the last good checkpoint with a lower learning rate)");
            }
        }

        StudentConverter.WriteFloats(stream, values, dtype, new byte[ChunkElements * dtype.Size()]);
    }
}
