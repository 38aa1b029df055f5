using System.Diagnostics;
using System.Globalization;

namespace Radlads.Ops;

/// <summary>
/// Wraps another <see cref="IOps"/> and counts calls and wall time per op (Llm.cs's TimeLlm), so a run can say
/// where its time goes without touching model code. Time is measured on the host around each call: exact for
/// the CPU backend. An asynchronous GPU backend passes <paramref name="synchronize"/> (waits for its stream): it runs
/// before and after every op, so each op's time is its GPU time plus one launch and wait (a few µs), not the host's
/// enqueue time.
/// </summary>
public sealed partial class ProfilingOps(IOps inner, Action? synchronize = null) : IOps
{
    private readonly Dictionary<string, (long Calls, long Ticks)> stats = [];
    private (long Calls, long Ticks) prefillMixing;

    /// <summary>
    /// Token mixing over more than one token (Wkv6, Wkv7, Rwkv7RopeKeysWkv7 — a RAD-RWKV7 prompt's recurrence with its
    /// keys —, Attention with T &gt; 1: prefill, not decode): calls and total time, also counted in <see cref="Report"/>
    /// under each op.
    /// </summary>
    public (long Calls, TimeSpan Total) PrefillMixing =>
        (prefillMixing.Calls, TimeSpan.FromSeconds(prefillMixing.Ticks / (double)Stopwatch.Frequency));

    /// <summary><see cref="PrefillMixing"/> as one line.</summary>
    public string FormatPrefillMixing()
    {
        var (calls, total) = PrefillMixing;
        const string Label = "prefill token mixing (Wkv6, Wkv7, Rwkv7RopeKeysWkv7, Attention with T > 1)";
        return calls == 0
            ? Label + ": no calls"
            : string.Create(CultureInfo.InvariantCulture,
                $"{Label}: {total.TotalMilliseconds:F1} ms in {calls} calls, {total.TotalMilliseconds * 1000 / calls:F1} µs per call");
    }

    /// <summary>Per op: calls and total time, slowest first.</summary>
    public IReadOnlyList<(string Op, long Calls, TimeSpan Total)> Report() =>
        stats.Select(p => (p.Key, p.Value.Calls, TimeSpan.FromSeconds(p.Value.Ticks / (double)Stopwatch.Frequency)))
            .OrderByDescending(r => r.Item3).ToArray();

    /// <summary>The report as an aligned table (op, calls, total ms, mean µs, share).</summary>
    public string FormatReport()
    {
        var rows = Report();
        double all = rows.Sum(r => r.Total.TotalMilliseconds);
        int width = Math.Max(20, rows.Count == 0 ? 0 : rows.Max(r => r.Op.Length)); // backward op names run longer
        var lines = new List<string> { $"{"op".PadRight(width)} {"calls",8} {"total ms",10} {"mean µs",10} {"share",7}" };
        foreach (var (op, calls, total) in rows)
        {
            lines.Add(string.Create(CultureInfo.InvariantCulture,
                $"{op.PadRight(width)} {calls,8} {total.TotalMilliseconds,10:F1} {total.TotalMilliseconds * 1000 / calls,10:F1} {total.TotalMilliseconds / all,7:P1}"));
        }

        return string.Join(Environment.NewLine, lines);
    }

    // A hint, passed through untimed.
    public void Prefetch(params Tensor[][] groups) => inner.Prefetch(groups);

    public void BeginBeside() => inner.BeginBeside();

    public void EndBeside() => inner.EndBeside();

    public void JoinBeside() => inner.JoinBeside();

    private long Start()
    {
        synchronize?.Invoke();
        return Stopwatch.GetTimestamp();
    }

    private void Time(string op, long start)
    {
        synchronize?.Invoke();
        long elapsed = Stopwatch.GetTimestamp() - start;
        stats.TryGetValue(op, out var s);
        stats[op] = (s.Calls + 1, s.Ticks + elapsed);
    }

    private void Mixing(string op, long start, int tokens)
    {
        long before = stats.TryGetValue(op, out var s) ? s.Ticks : 0;
        Time(op, start);
        if (tokens > 1)
        {
            prefillMixing = (prefillMixing.Calls + 1, prefillMixing.Ticks + (stats[op].Ticks - before));
        }
    }

    public void Embedding(Tensor table, ReadOnlySpan<int> ids, Tensor y)
    {
        long start = Start();
        inner.Embedding(table, ids, y);
        Time(nameof(Embedding), start);
    }

    public void RmsNorm(Tensor x, Tensor weight, float eps, Tensor y)
    {
        long start = Start();
        inner.RmsNorm(x, weight, eps, y);
        Time(nameof(RmsNorm), start);
    }

    public void AddRmsNorm(Tensor h, Tensor branch, Tensor weight, float eps, Tensor y)
    {
        long start = Start();
        inner.AddRmsNorm(h, branch, weight, eps, y);
        Time(nameof(AddRmsNorm), start);
    }

    public void MatMulShared(Tensor x, IReadOnlyList<Tensor> weights, IReadOnlyList<Tensor?> biases, IReadOnlyList<Tensor> outputs)
    {
        long start = Start();
        inner.MatMulShared(x, weights, biases, outputs);
        Time(nameof(MatMulShared), start);
    }

    public void LoraSet(Tensor x, ReadOnlySpan<LoraBranch> branches)
    {
        long start = Start();
        inner.LoraSet(x, branches);
        Time(nameof(LoraSet), start);
    }

    public void AddRmsNormMatMulSharedLoraSet(Tensor h, Tensor? branch, Tensor normWeight, float eps, Tensor normed, IReadOnlyList<Tensor> weights,
        IReadOnlyList<Tensor?> biases, IReadOnlyList<Tensor> outputs, ReadOnlySpan<LoraBranch> branches)
    {
        long start = Start();
        inner.AddRmsNormMatMulSharedLoraSet(h, branch, normWeight, eps, normed, weights, biases, outputs, branches);
        Time(nameof(AddRmsNormMatMulSharedLoraSet), start);
    }

    public void MatMul(Tensor x, Tensor weight, Tensor? bias, Tensor y, WeightLayout layout = WeightLayout.OutIn)
    {
        long start = Start();
        inner.MatMul(x, weight, bias, y, layout);
        Time(nameof(MatMul), start);
    }

    public void Add(Tensor a, Tensor b, Tensor y)
    {
        long start = Start();
        inner.Add(a, b, y);
        Time(nameof(Add), start);
    }

    public void Multiply(Tensor a, Tensor b, Tensor y)
    {
        long start = Start();
        inner.Multiply(a, b, y);
        Time(nameof(Multiply), start);
    }

    public void Scale(Tensor x, float s, Tensor y)
    {
        long start = Start();
        inner.Scale(x, s, y);
        Time(nameof(Scale), start);
    }

    public void Tanh(Tensor x, Tensor y)
    {
        long start = Start();
        inner.Tanh(x, y);
        Time(nameof(Tanh), start);
    }

    public void Sigmoid(Tensor x, Tensor y)
    {
        long start = Start();
        inner.Sigmoid(x, y);
        Time(nameof(Sigmoid), start);
    }

    public void AddSigmoid(Tensor x, Tensor bias, Tensor y)
    {
        long start = Start();
        inner.AddSigmoid(x, bias, y);
        Time(nameof(AddSigmoid), start);
    }

    public void SwiGlu(Tensor gate, Tensor up, Tensor y)
    {
        long start = Start();
        inner.SwiGlu(gate, up, y);
        Time(nameof(SwiGlu), start);
    }

    public void Rope(Tensor x, int heads, int headDim, int startPosition, float theta)
    {
        long start = Start();
        inner.Rope(x, heads, headDim, startPosition, theta);
        Time(nameof(Rope), start);
    }

    public void RepeatKv(Tensor x, int kvHeads, int headDim, int groups, Tensor y)
    {
        long start = Start();
        inner.RepeatKv(x, kvHeads, headDim, groups, y);
        Time(nameof(RepeatKv), start);
    }

    public void GroupNorm(Tensor x, Tensor weight, Tensor bias, int groups, float eps, Tensor y)
    {
        long start = Start();
        inner.GroupNorm(x, weight, bias, groups, eps, y);
        Time(nameof(GroupNorm), start);
    }

    public void Attention(Tensor q, Tensor kCache, Tensor vCache, int heads, int kvHeads, int headDim, int startPosition, Tensor y)
    {
        long start = Start();
        inner.Attention(q, kCache, vCache, heads, kvHeads, headDim, startPosition, y);
        Mixing(nameof(Attention), start, q.RowCount);
    }

    public void TokenShift(Tensor x, Tensor shiftState, Tensor delta)
    {
        long start = Start();
        inner.TokenShift(x, shiftState, delta);
        Time(nameof(TokenShift), start);
    }

    public void MixShift(Tensor x, Tensor delta, Tensor mix, Tensor y)
    {
        long start = Start();
        inner.MixShift(x, delta, mix, y);
        Time(nameof(MixShift), start);
    }

    public void Rwkv6Ddlerp(Tensor x, Tensor delta, Tensor lora, Tensor w2, Tensor mixes, Tensor outputs)
    {
        long start = Start();
        inner.Rwkv6Ddlerp(x, delta, lora, w2, mixes, outputs);
        Time(nameof(Rwkv6Ddlerp), start);
    }

    public void Rwkv6Decay(Tensor d, Tensor bias, Tensor w)
    {
        long start = Start();
        inner.Rwkv6Decay(d, bias, w);
        Time(nameof(Rwkv6Decay), start);
    }

    public void Rwkv6BalanceKeys(Tensor k, Tensor w, Tensor y)
    {
        long start = Start();
        inner.Rwkv6BalanceKeys(k, w, y);
        Time(nameof(Rwkv6BalanceKeys), start);
    }

    public void Wkv6(Tensor r, Tensor k, Tensor v, Tensor w, Tensor state, float scale, Tensor y)
    {
        long start = Start();
        inner.Wkv6(r, k, v, w, state, scale, y);
        Mixing(nameof(Wkv6), start, r.RowCount);
    }

    public void Rwkv7Decay(Tensor z, Tensor w0, Tensor w)
    {
        long start = Start();
        inner.Rwkv7Decay(z, w0, w);
        Time(nameof(Rwkv7Decay), start);
    }

    public void Rwkv7Keys(Tensor k, Tensor w, Tensor a, Tensor? keyScale, Tensor? iclrMix, int headDim, bool balanced, Tensor removal, Tensor replacement, Tensor kTilde)
    {
        long start = Start();
        inner.Rwkv7Keys(k, w, a, keyScale, iclrMix, headDim, balanced, removal, replacement, kTilde);
        Time(nameof(Rwkv7Keys), start);
    }

    public void Rwkv7ValueResidual(Tensor v, Tensor vFirst, Tensor nu, Tensor y)
    {
        long start = Start();
        inner.Rwkv7ValueResidual(v, vFirst, nu, y);
        Time(nameof(Rwkv7ValueResidual), start);
    }

    public void Wkv7(Tensor r, Tensor w, Tensor k, Tensor v, Tensor a, Tensor b, Tensor state, Tensor y)
    {
        long start = Start();
        inner.Wkv7(r, w, k, v, a, b, state, y);
        Mixing(nameof(Wkv7), start, r.RowCount);
    }

    public void Sample(Tensor logits, int allowedVocabulary, ReadOnlySpan<SampleRow> rows, Span<int> ids)
    {
        long start = Stopwatch.GetTimestamp();
        inner.Sample(logits, allowedVocabulary, rows, ids);
        Time(nameof(Sample), start);
    }

    public void RopeRows(Tensor x, int heads, int headDim, ReadOnlySpan<int> positions, float theta)
    {
        long start = Start();
        inner.RopeRows(x, heads, headDim, positions, theta);
        Time(nameof(RopeRows), start);
    }

    public void ScatterRows(Tensor x, IReadOnlyList<Tensor> destinations, ReadOnlySpan<int> rows)
    {
        long start = Start();
        inner.ScatterRows(x, destinations, rows);
        Time(nameof(ScatterRows), start);
    }

    public void AppendKv(Tensor k, Tensor v, Tensor kCache, Tensor vCache, int position)
    {
        long start = Start();
        inner.AppendKv(k, v, kCache, vCache, position);
        Time(nameof(AppendKv), start);
    }

    public void AttentionDecode(Tensor q, IReadOnlyList<Tensor> kCaches, IReadOnlyList<Tensor> vCaches, ReadOnlySpan<int> lengths,
        int heads, int kvHeads, int headDim, Tensor y)
    {
        long start = Start();
        inner.AttentionDecode(q, kCaches, vCaches, lengths, heads, kvHeads, headDim, y);
        Time(nameof(AttentionDecode), start);
    }

    public void Wkv6Decode(Tensor r, Tensor k, Tensor v, Tensor w, IReadOnlyList<Tensor> states, float scale, Tensor y)
    {
        long start = Start();
        inner.Wkv6Decode(r, k, v, w, states, scale, y);
        Time(nameof(Wkv6Decode), start);
    }

    public void Wkv7Decode(Tensor r, Tensor w, Tensor k, Tensor v, Tensor a, Tensor b, IReadOnlyList<Tensor> states, Tensor y)
    {
        long start = Start();
        inner.Wkv7Decode(r, w, k, v, a, b, states, y);
        Time(nameof(Wkv7Decode), start);
    }

    public void TokenShiftRows(Tensor x, IReadOnlyList<Tensor> shiftStates, Tensor delta)
    {
        long start = Start();
        inner.TokenShiftRows(x, shiftStates, delta);
        Time(nameof(TokenShiftRows), start);
    }
}
