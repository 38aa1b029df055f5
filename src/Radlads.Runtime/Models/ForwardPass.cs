using Radlads.Ops;

namespace Radlads.Models;

/// <summary>What one forward call shares across layers: the segments, the backend, and RAD-RWKV7's v_first.</summary>
internal sealed class ForwardPass(IBackend backend, IReadOnlyList<Segment> segments, int layerIndex) : IDisposable
{
    private readonly List<Tensor> scratch = [];

    public IBackend Backend { get; } = backend;

    public IOps Ops => Backend.Ops;

    public IReadOnlyList<Segment> Segments { get; } = segments;

    public int Rows { get; } = segments.Sum(s => s.RowCount);

    /// <summary>
    /// Rows [0, DecodeCount) hold DecodeCount ≥ 2 sequences of one token each, segment i on row i (a decode batch, or
    /// the decode part of a continuous-batching step): the mixers run each per-sequence op once for all these rows
    /// (IOps.RopeRows, AttentionDecode, Wkv7Decode …) and go one by one only through <see cref="OtherSegments"/> (prompt
    /// chunks). 0 when fewer than two segments lead with one token: a single sequence keeps the per-segment path (its
    /// steps can be recorded as a CUDA graph).
    /// </summary>
    public int DecodeCount { get; } = LeadingDecodeRows(segments);

    /// <summary>The segments after the first <see cref="DecodeCount"/>, run one by one.</summary>
    public IEnumerable<Segment> OtherSegments => Segments.Skip(DecodeCount);

    /// <summary>The absolute position of each of the first <see cref="DecodeCount"/> sequences.</summary>
    public int[] DecodePositions => decodePositions ??= [.. Segments.Take(DecodeCount).Select(s => s.StartPosition)];

    private int[]? decodePositions;

    /// <summary>Tensor <paramref name="index"/> of the current layer's state of each of the first <see cref="DecodeCount"/> sequences.</summary>
    public Tensor[] DecodeLayerTensors(int index) => [.. Segments.Take(DecodeCount).Select(s => s.State.Layers[Layer].Tensors[index])];

    private static int LeadingDecodeRows(IReadOnlyList<Segment> segments)
    {
        int d = 0;
        while (d < segments.Count && segments[d].RowCount == 1 && segments[d].RowStart == d)
        {
            d++;
        }

        return d >= 2 ? d : 0;
    }

    /// <summary>Index of the layer being run (set by the model before each mixer call).</summary>
    public int Layer { get; set; } = layerIndex;

    /// <summary>RAD-RWKV7 value of layer 0 for each token [T, A], read by every later layer.</summary>
    public Tensor? ValueFirst { get; set; }

    private PendingNorm? pendingNorm;

    /// <summary>
    /// The weights the current layer reads after its q/k/v projections (o_proj, then the MLP's), in read order, groups
    /// read together; set by the model before each mixer. <see cref="PrefetchAhead"/> hands them to IOps.Prefetch.
    /// </summary>
    public Tensor[][]? Ahead { get; set; }

    /// <summary>
    /// A decode step asks the backend to bring <see cref="Ahead"/> into its cache while the mixer's latency-bound ops
    /// run. Called by the mixers right after the q/k/v projections (<see cref="Projections.Project"/>), whose reads fill
    /// memory bandwidth until then.
    /// </summary>
    public void PrefetchAhead()
    {
        if (Ahead is { } weights && StreamsWeights)
        {
            Ahead = null;
            Ops.Prefetch(weights);
        }
    }

    /// <summary>
    /// Whether this is a decode step (at most 16 rows): each weight is streamed once and read by a GEMV, so the step is
    /// memory-bound; above that the GEMMs reuse each weight enough that prefetching or overlapping buys nothing.
    /// </summary>
    public bool StreamsWeights => Rows <= 16;

    /// <summary>
    /// Hands the norm that writes the next mixer's or MLP's input to it: that input is <see cref="PendingNorm.Normed"/>
    /// and the consumer's first op runs the norm with its GEMVs (<see cref="TakeNorm"/>). When the consumer reads its
    /// input otherwise first (<paramref name="consumerTakes"/> false: RAD-RWKV6's token shift), the norm runs here.
    /// </summary>
    public void BeginNorm(PendingNorm norm, bool consumerTakes)
    {
        if (pendingNorm is not null)
        {
            throw new InvalidOperationException("a residual norm is still pending: the layer before did not run it");
        }

        if (consumerTakes)
        {
            pendingNorm = norm;
        }
        else
        {
            IOps.ResidualNorm(Ops, norm.H, norm.Branch, norm.Weight, norm.Eps, norm.Normed);
        }
    }

    /// <summary>The pending norm when it writes <paramref name="x"/> (the caller now runs it); else null.</summary>
    public PendingNorm? TakeNorm(Tensor x)
    {
        if (pendingNorm is not { } norm || !ReferenceEquals(norm.Normed, x))
        {
            return null;
        }

        pendingNorm = null;
        return norm;
    }

    /// <summary>Throws when <paramref name="consumer"/> returned without running the norm <see cref="BeginNorm"/> handed it.</summary>
    public void EndNorm(string consumer)
    {
        if (pendingNorm is not null)
        {
            throw new InvalidOperationException($"{consumer} did not run the residual norm of its input");
        }
    }

    /// <summary>An fp32 tensor that lives until the current layer ends; contents undefined (ops write their outputs in full).</summary>
    public Tensor Scratch(params int[] shape)
    {
        var t = Backend.AllocateUninitialized(shape);
        scratch.Add(t);
        return t;
    }

    /// <summary>
    /// A LoRA branch y = outer(inner(x·A)·B) with its scratch: hidden [T, R] and y [T, M] live until the layer ends.
    /// A [C, R] and B [R, M] are stored in×out. Run it with others that read the same x in one
    /// <see cref="IOps.LoraSet"/>, or alone with <see cref="Lora"/>.
    /// </summary>
    public LoraBranch LoraBranch(Tensor a, Tensor b, LoraInner inner = LoraInner.None, LoraOuter outer = LoraOuter.None, Tensor? offset = null) =>
        new(a, b, Scratch(Rows, a.Shape[1]), Scratch(Rows, b.Shape[1]), inner, outer, offset);

    /// <summary>One LoRA branch (<see cref="LoraBranch"/>) as its own <see cref="IOps.LoraSet"/>; returns y [T, M].</summary>
    public Tensor Lora(Tensor x, Tensor a, Tensor b, LoraInner inner = LoraInner.None, LoraOuter outer = LoraOuter.None, Tensor? offset = null)
    {
        var branch = LoraBranch(a, b, inner, outer, offset);
        Ops.LoraSet(x, [branch]);
        return branch.Y;
    }

    /// <summary>Frees the scratch tensors of the layer that just ran.</summary>
    public void EndLayer()
    {
        foreach (var t in scratch)
        {
            t.Dispose();
        }

        scratch.Clear();
    }

    public void Dispose()
    {
        EndLayer();
        ValueFirst?.Dispose();
    }
}
