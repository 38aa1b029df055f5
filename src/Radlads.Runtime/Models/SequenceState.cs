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

    /// <summary>The decode step recorded for this sequence by a backend that records steps (CUDA graphs), if any.</summary>
    internal CapturedDecode? Captured { get; set; }

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

    /// <summary>
    /// Makes room for <paramref name="positions"/> tokens in every KV cache now (a no-op for recurrent state), so a
    /// server can claim a request's memory when it admits it instead of growing (and copying) caches on the way.
    /// </summary>
    public void Reserve(int positions)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(positions);
        foreach (var layer in Layers)
        {
            layer.Reserve(Model.Backend, positions);
        }
    }

    /// <summary>
    /// For benchmarks: moves the sequence to <paramref name="position"/> as if that many tokens had been read,
    /// without running the model. KV caches grow to hold <paramref name="position"/> + <paramref name="headroom"/>
    /// rows and the rows between the old and the new position are filled with values drawn uniformly from
    /// [−1, 1) by <paramref name="random"/>; recurrent state is left as it is (an RNN's per-token work does not
    /// depend on the position; only the RoPE angles do).
    /// </summary>
    public void FastForward(int position, int headroom, Random random)
    {
        ArgumentNullException.ThrowIfNull(random);
        ArgumentOutOfRangeException.ThrowIfLessThan(position, Position);
        ArgumentOutOfRangeException.ThrowIfNegative(headroom);
        // One block of random values, uploaded again and again: the values only have to be finite and not zero.
        var block = new float[1 << 20];
        for (int i = 0; i < block.Length; i++)
        {
            block[i] = (random.NextSingle() * 2) - 1;
        }

        foreach (var layer in Layers)
        {
            layer.Reserve(Model.Backend, position + headroom);
            for (int i = 0; i < layer.Tensors.Length; i++)
            {
                var tensor = layer.Tensors[i];
                int from = layer.UsedRows(i, Position);
                int to = layer.UsedRows(i, position);
                int rowsPerUpload = Math.Max(1, block.Length / Math.Max(1, tensor.RowLength));
                for (int row = from; row < to; row += rowsPerUpload)
                {
                    int rows = Math.Min(rowsPerUpload, to - row);
                    Model.Backend.Upload(block.AsSpan(0, rows * tensor.RowLength), tensor.Rows(row, rows));
                }
            }
        }

        Captured?.Dispose();
        Captured = null;
        Position = position;
    }

    public static SequenceState Load(CausalLM model, string path)
    {
        using var stream = File.OpenRead(path);
        return Load(model, stream, path);
    }

    public void Dispose()
    {
        Captured?.Dispose();
        Captured = null;
        foreach (var layer in Layers)
        {
            layer.Dispose();
        }
    }
}
