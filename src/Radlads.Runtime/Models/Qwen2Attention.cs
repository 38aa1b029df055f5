using Radlads.Ops;

namespace Radlads.Models;

/// <summary>Qwen2 softmax attention with RoPE, GQA and a KV cache per sequence.</summary>
internal sealed class Qwen2Attention : IMixer
{
    private const int InitialCacheRows = 64;

    private readonly ModelConfig config;
    private readonly IBackend backend;
    private readonly Projections p;

    public Qwen2Attention(WeightLoader w, string prefix, ModelConfig config)
    {
        this.config = config;
        backend = w.Backend;
        p = new Projections(w, prefix, config);
    }

    private int KvWidth => config.NumKeyValueHeads * config.HeadDim;

    public (long StateBytes, long CacheBytesPerToken) MemoryCost => (0, 2L * KvWidth * sizeof(float));

    /// <summary>The projections are the first read of x.</summary>
    public bool TakesPendingNorm => true;

    public bool LeavesBandwidthIdle => false;

    public Tensor OutputWeight => p.Output;

    public LayerState CreateState() =>
        new KvCacheState(backend.Allocate(InitialCacheRows, KvWidth), backend.Allocate(InitialCacheRows, KvWidth));

    public void Forward(ForwardPass pass, Tensor x, Tensor y)
    {
        var ops = pass.Ops;
        int h = config.NumAttentionHeads;
        int kvh = config.NumKeyValueHeads;
        int n = config.HeadDim;
        var (q, k, v) = p.Project(pass, config, x, x, x);
        var o = pass.Scratch(pass.Rows, h * n);
        float theta = (float)config.RopeTheta;
        int d = pass.DecodeCount;
        if (d > 0)
        {
            // One token for each of the first d sequences: RoPE, cache append and attention each once for all d rows.
            var caches = new KvCacheState[d];
            var lengths = new int[d];
            for (int i = 0; i < d; i++)
            {
                var s = pass.Segments[i];
                caches[i] = (KvCacheState)s.State.Layers[pass.Layer];
                caches[i].Reserve(backend, s.StartPosition + 1);
                lengths[i] = s.StartPosition + 1;
            }

            var keys = caches.Select(c => c.Keys).ToArray();
            var values = caches.Select(c => c.Values).ToArray();
            var (qd, kd) = (q.Rows(0, d), k.Rows(0, d));
            ops.RopeExpandRows(qd, kd, null, h, kvh, n, pass.DecodePositions, theta, null, null); // RoPE on q and k only
            ops.ScatterRows(kd, keys, pass.DecodePositions);
            ops.ScatterRows(v.Rows(0, d), values, pass.DecodePositions);
            ops.AttentionDecode(qd, keys, values, lengths, h, kvh, n, o.Rows(0, d));
        }

        foreach (var s in pass.OtherSegments)
        {
            var cache = (KvCacheState)s.State.Layers[pass.Layer];
            cache.Reserve(backend, s.StartPosition + s.RowCount);
            var qs = q.Rows(s.RowStart, s.RowCount);
            var ks = k.Rows(s.RowStart, s.RowCount);
            ops.RopeExpand(qs, ks, null, h, kvh, n, s.StartPosition, theta, null, null); // RoPE on q and k only
            // An op rather than a copy to cache rows: a recorded decode step writes the rows of the replayed position.
            ops.AppendKv(ks, v.Rows(s.RowStart, s.RowCount), cache.Keys, cache.Values, s.StartPosition);
            ops.Attention(qs, cache.Keys, cache.Values, h, kvh, n, s.StartPosition, o.Rows(s.RowStart, s.RowCount));
        }

        p.OutputProjection(pass, o, null, y);
    }

    public void Dispose() => p.Dispose();
}
