using System.Text;

namespace Radlads.Models;

/// <summary>
/// Everything one sequence carries between forward calls: per-layer recurrent state (RWKV) or KV cache
/// (attention) and the number of tokens consumed, which is the RoPE position of the next token.
/// A snapshot (<see cref="Clone"/>, <see cref="Save(Stream)"/>) can be resumed later; the model is not part of it.
/// </summary>
public sealed class SequenceState : IDisposable
{
    private const string Magic = "RADLADS-STATE";
    private const int FormatVersion = 1;

    internal SequenceState(CausalLM model, LayerState[] layers)
    {
        Model = model;
        Layers = layers;
    }

    public CausalLM Model { get; }

    /// <summary>Tokens consumed so far.</summary>
    public int Position { get; internal set; }

    internal LayerState[] Layers { get; }

    /// <summary>Bytes of memory this state holds now (fp32).</summary>
    public long SizeBytes => Layers.Sum(l => l.Tensors.Sum(t => t.ElementCount * sizeof(float)));

    /// <summary>An independent copy: continuing either one leaves the other untouched.</summary>
    public SequenceState Clone()
    {
        var copy = new SequenceState(Model, Layers.Select(l => l.Clone(Model.Backend)).ToArray()) { Position = Position };
        return copy;
    }

    /// <summary>Writes the state (only the used rows of KV caches) with a fingerprint of the model.</summary>
    public void Save(Stream stream)
    {
        using var writer = new BinaryWriter(stream, Encoding.UTF8, leaveOpen: true);
        writer.Write(Magic);
        writer.Write(FormatVersion);
        writer.Write(Model.Fingerprint);
        writer.Write(Position);
        writer.Write(Layers.Length);
        foreach (var layer in Layers)
        {
            writer.Write(layer.Tensors.Length);
            for (int i = 0; i < layer.Tensors.Length; i++)
            {
                var tensor = layer.Tensors[i];
                int rows = layer.UsedRows(i, Position);
                writer.Write(rows);
                writer.Write(tensor.RowLength);
                var values = new float[tensor.ElementCount];
                Model.Backend.Download(tensor, values);
                var bytes = System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan(0, rows * tensor.RowLength));
                writer.Write(bytes);
            }
        }
    }

    /// <summary>Saves to a file atomically (temporary file + rename).</summary>
    public void Save(string path)
    {
        var temporary = path + ".tmp-" + Environment.ProcessId;
        using (var stream = File.Create(temporary))
        {
            Save(stream);
        }

        File.Move(temporary, path, overwrite: true);
    }

    /// <summary>Reads a state written by <see cref="Save(Stream)"/> for the same model.</summary>
    public static SequenceState Load(CausalLM model, Stream stream, string source = "stream")
    {
        using var reader = new BinaryReader(stream, Encoding.UTF8, leaveOpen: true);
        try
        {
            if (reader.ReadString() != Magic)
            {
                throw new RadladsException($"{source}: not a Radlads state file");
            }

            int version = reader.ReadInt32();
            if (version != FormatVersion)
            {
                throw new RadladsException($"{source}: state format version {version}, this build reads {FormatVersion}");
            }

            string fingerprint = reader.ReadString();
            if (fingerprint != model.Fingerprint)
            {
                throw new RadladsException($"{source}: state was saved for model '{fingerprint}', not '{model.Fingerprint}'");
            }

            var state = model.CreateState();
            state.Position = reader.ReadInt32();
            int layers = reader.ReadInt32();
            if (layers != state.Layers.Length || state.Position < 0)
            {
                throw new RadladsException($"{source}: {layers} layers at position {state.Position}, expected {state.Layers.Length}");
            }

            foreach (var layer in state.Layers)
            {
                layer.Reserve(model.Backend, state.Position);
                int count = reader.ReadInt32();
                if (count != layer.Tensors.Length)
                {
                    throw new RadladsException($"{source}: a layer has {count} tensors, expected {layer.Tensors.Length}");
                }

                for (int i = 0; i < count; i++)
                {
                    var tensor = layer.Tensors[i];
                    int rows = reader.ReadInt32();
                    int rowLength = reader.ReadInt32();
                    if (rowLength != tensor.RowLength || rows != layer.UsedRows(i, state.Position))
                    {
                        throw new RadladsException($"{source}: tensor of {rows}×{rowLength}, expected {layer.UsedRows(i, state.Position)}×{tensor.RowLength}");
                    }

                    var values = new float[rows * rowLength];
                    var bytes = System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan());
                    if (reader.Read(bytes) != bytes.Length)
                    {
                        throw new RadladsException($"{source}: truncated state file");
                    }

                    model.Backend.Upload(values, rows == tensor.RowCount ? tensor : tensor.Rows(0, rows));
                }
            }

            return state;
        }
        catch (EndOfStreamException)
        {
            throw new RadladsException($"{source}: truncated state file");
        }
    }

    public static SequenceState Load(CausalLM model, string path)
    {
        using var stream = File.OpenRead(path);
        return Load(model, stream, path);
    }

    public void Dispose()
    {
        foreach (var layer in Layers)
        {
            layer.Dispose();
        }
    }
}
