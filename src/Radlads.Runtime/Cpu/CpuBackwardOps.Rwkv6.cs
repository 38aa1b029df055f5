using Radlads.Ops;
using static Radlads.Cpu.CpuOps;
using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;

namespace Radlads.Cpu;

public sealed partial class CpuBackwardOps
{
    // The recurrences' backward keeps the state every this many steps and recomputes the steps in between (the
    // RADLADS wind kernels save every 16 steps too).
    internal const int StateCheckpointInterval = 16;

    private const float Rwkv6LogDecayFloor = -5f;

    public void Rwkv6DdlerpBackward(Tensor delta, Tensor lora, Tensor w2, Tensor mixes, Tensor dOutputs, Tensor? dx,
        Tensor? dDelta, Tensor? dLora, Tensor? dW2, Tensor? dMixes)
    {
        int c = delta.RowLength;
        int tokens = delta.RowCount;
        if (w2.Shape.Length != 3 || w2.Shape[0] != 5 || w2.Shape[2] != c)
        {
            throw new ArgumentException($"Rwkv6DdlerpBackward: w2 {w2.ShapeText} is not [5, R, {c}]");
        }

        int rank = w2.Shape[1];
        if (lora.RowLength != 5 * rank || lora.RowCount != tokens || dOutputs.ElementCount != 5L * tokens * c
            || mixes.ElementCount != 5 * c || (dx is not null && dx.ElementCount != delta.ElementCount)
            || (dDelta is not null && dDelta.ElementCount != delta.ElementCount)
            || (dLora is not null && dLora.ElementCount != lora.ElementCount)
            || (dW2 is not null && dW2.ElementCount != w2.ElementCount) || (dMixes is not null && dMixes.ElementCount != 5 * c))
        {
            throw new ArgumentException($"Rwkv6DdlerpBackward: delta {delta.ShapeText}, lora {lora.ShapeText}, mixes {mixes.ShapeText}, " +
                $"dOutputs {dOutputs.ShapeText}");
        }

        var weights = Row0(w2, 5 * rank * c).ToArray();
        var mix = Row0(mixes, 5 * c).ToArray();
        var dc = Cpu(delta);
        var lc = Cpu(lora);
        var gc = Cpu(dOutputs);

        // Forward: outputs_i[t] = x[t] + delta[t] ⊙ m_i[t], m_i[t] = mixes[i] + Σ_r lora[t, i·R + r]·w2[i, r].
        // dm_i[t] = dOutputs_i[t] ⊙ delta[t], shared by dLora, dW2 and dMixes.
        var dm = new float[5 * tokens * c];
        for (int i = 0; i < 5; i++)
        {
            for (int t = 0; t < tokens; t++)
            {
                TensorPrimitives.Multiply(gc.Floats.Slice(((i * tokens) + t) * c, c), dc.Floats.Slice(t * c, c), dm.AsSpan(((i * tokens) + t) * c, c));
            }
        }

        // Per token: dx = Σ_i dOutputs_i, dDelta = Σ_i dOutputs_i ⊙ m_i, dLora[t, i·R + r] = dm_i[t]·w2[i, r].
        var dxc = dx is null ? null : Cpu(dx);
        var ddc = dDelta is null ? null : Cpu(dDelta);
        var dlc = dLora is null ? null : Cpu(dLora);
        For(tokens, 5L * rank * c * 2, t =>
        {
            var m = new float[c];
            var dxr = dxc is null ? [] : dxc.Floats.Slice(t * c, c);
            var ddr = ddc is null ? [] : ddc.Floats.Slice(t * c, c);
            dxr.Clear();
            ddr.Clear();
            for (int i = 0; i < 5; i++)
            {
                var g = gc.Floats.Slice(((i * tokens) + t) * c, c);
                if (dxc is not null)
                {
                    TensorPrimitives.Add(g, dxr, dxr);
                }

                if (ddc is not null)
                {
                    mix.AsSpan(i * c, c).CopyTo(m);
                    for (int r = 0; r < rank; r++)
                    {
                        TensorPrimitives.MultiplyAdd(weights.AsSpan(((i * rank) + r) * c, c), lc.Floats[(t * 5 * rank) + (i * rank) + r], m, m);
                    }

                    TensorPrimitives.FusedMultiplyAdd(g, m, ddr, ddr);
                }

                if (dlc is not null)
                {
                    for (int r = 0; r < rank; r++)
                    {
                        dlc.Floats[(t * 5 * rank) + (i * rank) + r] =
                            TensorPrimitives.Dot(dm.AsSpan(((i * tokens) + t) * c, c), weights.AsSpan(((i * rank) + r) * c, c));
                    }
                }
            }
        });

        // Per LoRA row (i, r): dW2[i, r] += Σ_t lora[t, i·R + r]·dm_i[t].
        if (dW2 is not null)
        {
            var dwc = Cpu(dW2);
            For(5 * rank, (long)tokens * c, ir =>
            {
                int i = ir / rank;
                var row = dwc.Floats.Slice(ir * c, c);
                for (int t = 0; t < tokens; t++)
                {
                    TensorPrimitives.MultiplyAdd(dm.AsSpan(((i * tokens) + t) * c, c), lc.Floats[(t * 5 * rank) + ir], row, row);
                }
            });
        }

        // dMixes[i] += Σ_t dm_i[t].
        if (dMixes is not null)
        {
            var dmx = F(dMixes);
            for (int i = 0; i < 5; i++)
            {
                for (int t = 0; t < tokens; t++)
                {
                    TensorPrimitives.Add(dm.AsSpan(((i * tokens) + t) * c, c), dmx.Slice(i * c, c), dmx.Slice(i * c, c));
                }
            }
        }
    }

    public void Rwkv6DecayBackward(Tensor d, Tensor bias, Tensor dw, Tensor dd, Tensor? dBias)
    {
        int a = d.RowLength;
        SameCount(d, dw, nameof(Rwkv6DecayBackward));
        SameCount(d, dd, nameof(Rwkv6DecayBackward));
        var b = Row0(bias, a);
        var ds = F(d);
        var g = F(dw);
        var o = F(dd);
        var db = dBias is null ? [] : F(dBias);
        if (dBias is not null && dBias.ElementCount != a)
        {
            throw new ArgumentException($"Rwkv6DecayBackward: dBias {dBias.ShapeText} for rows of {a}");
        }

        for (int t = 0; t < d.RowCount; t++)
        {
            for (int i = 0; i < a; i++)
            {
                int j = (t * a) + i;
                // Forward: w = exp(max(−exp(bias + d), −5)). Unclamped: ∂w/∂d = w·(−exp(bias + d)) = w·log w.
                // Clamped (log w < −5): w = e^−5 is constant, gradient 0. At log w = −5 exactly the gradient passes
                // (torch.clamp's subgradient). NaN in, NaN out, as in the forward.
                float logDecay = -MathF.Exp(b[i] + ds[j]);
                float grad = logDecay < Rwkv6LogDecayFloor ? 0f : g[j] * MathF.Exp(logDecay) * logDecay;
                o[j] = grad;
                if (dBias is not null)
                {
                    db[i] += grad;
                }
            }
        }
    }

    // y = k ⊙ (1 − w)
    public void Rwkv6BalanceKeysBackward(Tensor k, Tensor w, Tensor dy, Tensor? dk, Tensor? dw)
    {
        SameCount(k, w, nameof(Rwkv6BalanceKeysBackward));
        SameCount(k, dy, nameof(Rwkv6BalanceKeysBackward));
        var ks = F(k);
        var ws = F(w);
        var g = F(dy);
        var dks = dk is null ? [] : F(dk);
        var dws = dw is null ? [] : F(dw);
        for (int i = 0; i < ks.Length; i++)
        {
            float gi = g[i];
            if (dk is not null)
            {
                dks[i] = gi * (1f - ws[i]);
            }

            if (dw is not null)
            {
                dws[i] = -gi * ks[i];
            }
        }
    }

    public void Wkv6Backward(Tensor r, Tensor k, Tensor v, Tensor w, Tensor initialState, float scale, Tensor dy,
        Tensor? dFinalState, Tensor dr, Tensor dk, Tensor dv, Tensor dw, Tensor? dInitialState)
    {
        int width = r.RowLength;
        int tokens = r.RowCount;
        if (initialState.Shape.Length != 3 || initialState.Shape[1] != initialState.Shape[2] || initialState.Shape[0] * initialState.Shape[1] != width)
        {
            throw new ArgumentException($"Wkv6Backward: state {initialState.ShapeText} does not match rows of {width}");
        }

        foreach (var t in new[] { k, v, w, dy, dr, dk, dv, dw })
        {
            SameCount(r, t, nameof(Wkv6Backward));
        }

        CheckState(initialState, dFinalState, dInitialState, nameof(Wkv6Backward));
        int heads = initialState.Shape[0];
        int n = initialState.Shape[1];
        var rc = Cpu(r);
        var kc = Cpu(k);
        var vc = Cpu(v);
        var wc = Cpu(w);
        var gc = Cpu(dy);
        var drc = Cpu(dr);
        var dkc = Cpu(dk);
        var dvc = Cpu(dv);
        var dwc = Cpu(dw);
        var s0 = Cpu(initialState);
        var sT = dFinalState is null ? null : Cpu(dFinalState);
        var ds0 = dInitialState is null ? null : Cpu(dInitialState);
        For(heads, (long)tokens * n * n * 8, h =>
        {
            int nn = n * n;

            // Forward line: S[i,:] = w_i·S[i,:] + k_i·v (row i = key i), exactly as CpuOps.Wkv6 computes it.
            void Step(Span<float> s, int t)
            {
                int o = (t * width) + (h * n);
                for (int i = 0; i < n; i++)
                {
                    var row = s.Slice(i * n, n);
                    TensorPrimitives.Multiply(row, wc.Floats[o + i], row);
                    TensorPrimitives.MultiplyAdd(vc.Floats.Slice(o, n), kc.Floats[o + i], row, row);
                }
            }

            // One step backwards. G = ∂L/∂S_t on entry, ∂L/∂S_{t−1} on exit.
            // y_t = scale·r_t·S_t:        G += scale·r_tᵀ·dy_t, dr_t[i] = scale·S_t[i,:]·dy_t
            // S_t = diag(w_t)·S_{t−1} + k_tᵀ·v_t:  dk_t[i] = G[i,:]·v_t, dv_t = Σ_i k_t[i]·G[i,:],
            //                                    dw_t[i] = G[i,:]·S_{t−1}[i,:], ∂L/∂S_{t−1}[i,:] = w_t[i]·G[i,:]
            void Back(ReadOnlySpan<float> previous, ReadOnlySpan<float> current, Span<float> g, int t)
            {
                int o = (t * width) + (h * n);
                var dys = gc.Floats.Slice(o, n);
                var vs = vc.Floats.Slice(o, n);
                var dvs = dvc.Floats.Slice(o, n);
                dvs.Clear();
                for (int i = 0; i < n; i++)
                {
                    var gr = g.Slice(i * n, n);
                    TensorPrimitives.MultiplyAdd(dys, scale * rc.Floats[o + i], gr, gr);
                    drc.Floats[o + i] = scale * TensorPrimitives.Dot(current.Slice(i * n, n), dys);
                    dkc.Floats[o + i] = TensorPrimitives.Dot(gr, vs);
                    dwc.Floats[o + i] = TensorPrimitives.Dot(gr, previous.Slice(i * n, n));
                    TensorPrimitives.MultiplyAdd(gr, kc.Floats[o + i], dvs, dvs);
                    TensorPrimitives.Multiply(gr, wc.Floats[o + i], gr);
                }
            }

            var gradient = new float[nn];
            sT?.Floats.Slice(h * nn, nn).CopyTo(gradient);
            ThroughTime(s0.Floats.Slice(h * nn, nn), tokens, nn, Step, Back, gradient);
            if (ds0 is not null)
            {
                gradient.CopyTo(ds0.Floats.Slice(h * nn, nn));
            }
        });
    }

    private delegate void StateStep(Span<float> state, int t);

    private delegate void StateBack(ReadOnlySpan<float> previous, ReadOnlySpan<float> current, Span<float> gradient, int t);

    /// <summary>
    /// Backpropagation through time for one head with recomputed states: a forward sweep from the initial state keeps
    /// the state before every <see cref="StateCheckpointInterval"/>-th step; then, chunk by chunk from the end, the
    /// chunk's states are recomputed from its checkpoint and <paramref name="back"/> runs on each step in reverse.
    /// <paramref name="gradient"/> holds ∂L/∂S_T on entry and ∂L/∂S_0 on exit.
    /// </summary>
    private static void ThroughTime(ReadOnlySpan<float> initial, int tokens, int size, StateStep step, StateBack back, Span<float> gradient)
    {
        const int K = StateCheckpointInterval;
        int chunks = (tokens + K - 1) / K;
        var checkpoints = new float[chunks * size];
        var s = initial.ToArray();
        for (int t = 0; t < tokens; t++)
        {
            if (t % K == 0)
            {
                s.CopyTo(checkpoints.AsSpan(t / K * size, size));
            }

            step(s, t);
        }

        var states = new float[(K + 1) * size];
        for (int c = chunks - 1; c >= 0; c--)
        {
            int t0 = c * K;
            int length = Math.Min(K, tokens - t0);
            checkpoints.AsSpan(c * size, size).CopyTo(states);
            for (int j = 0; j < length; j++)
            {
                states.AsSpan(j * size, size).CopyTo(states.AsSpan((j + 1) * size, size));
                step(states.AsSpan((j + 1) * size, size), t0 + j);
            }

            for (int j = length - 1; j >= 0; j--)
            {
                back(states.AsSpan(j * size, size), states.AsSpan((j + 1) * size, size), gradient, t0 + j);
            }
        }
    }

    private static void CheckState(Tensor initialState, Tensor? dFinalState, Tensor? dInitialState, string op)
    {
        if ((dFinalState is not null && dFinalState.ElementCount != initialState.ElementCount)
            || (dInitialState is not null && dInitialState.ElementCount != initialState.ElementCount))
        {
            throw new ArgumentException($"{op}: state {initialState.ShapeText}, dFinalState {dFinalState?.ShapeText}, dInitialState {dInitialState?.ShapeText}");
        }
    }
}
