namespace Radlads.Ops;

/// <summary>
/// Every op the three architectures need, named after the maths. Each backend implements all of them;
/// the CPU backend is the reference the others are tested against.
/// Letters: T = tokens (rows), C = hidden size, H = query heads, KVH = KV heads, N = head dim,
/// A = H·N, V = vocab, F = MLP size, R = a LoRA rank, S = KV-cache capacity.
/// Activations and state are fp32; weights may be bf16, f16 or f32. Unless stated, an output may alias
/// an input of the same shape.
/// </summary>
public interface IOps
{
    /// <summary>y[t] = table[ids[t]]. table [V, C] (any dtype), y [T, C].</summary>
    void Embedding(Tensor table, ReadOnlySpan<int> ids, Tensor y);

    /// <summary>Qwen2 RMSNorm per row in fp32: y = w ⊙ x / sqrt(mean(x²) + eps). x, y [T, C]; w [C].</summary>
    void RmsNorm(Tensor x, Tensor weight, float eps, Tensor y);

    /// <summary>
    /// The residual add fused into the norm after it: h = h + branch (written back), then y = RmsNorm(h). h, branch,
    /// y [T, C]; w [C]. y may alias branch, never h (h carries the residual stream on). The default is the two ops.
    /// </summary>
    void AddRmsNorm(Tensor h, Tensor branch, Tensor weight, float eps, Tensor y)
    {
        if (ReferenceEquals(h, y))
        {
            throw new ArgumentException("AddRmsNorm: y must not alias h (h keeps the residual stream)");
        }

        Add(h, branch, h);
        RmsNorm(h, weight, eps, y);
    }

    /// <summary>
    /// y = x·Wᵀ + b (layout OutIn, W [M, K]) or y = x·W + b (layout InOut, W [K, M]).
    /// x [T, K], bias [M] or null, y [T, M]. fp32 accumulation. y must not alias x.
    /// </summary>
    void MatMul(Tensor x, Tensor weight, Tensor? bias, Tensor y, WeightLayout layout = WeightLayout.OutIn);

    /// <summary>
    /// Several <see cref="MatMul"/>s (layout OutIn) that read the same x: y_i = x·W_iᵀ + b_i, e.g. q/k/v or the MLP's
    /// gate and up. A backend may run them as one kernel; the default runs them one by one.
    /// </summary>
    void MatMulShared(Tensor x, IReadOnlyList<Tensor> weights, IReadOnlyList<Tensor?> biases, IReadOnlyList<Tensor> outputs)
    {
        if (weights.Count != biases.Count || weights.Count != outputs.Count)
        {
            throw new ArgumentException($"MatMulShared: {weights.Count} weights, {biases.Count} biases, {outputs.Count} outputs");
        }

        for (int i = 0; i < weights.Count; i++)
        {
            MatMul(x, weights[i], biases[i], outputs[i]);
        }
    }

    /// <summary>
    /// Up to four LoRA branches that read the same x [T, C] (RAD-RWKV7's decay, in-context rate, value residual and
    /// low-rank gate): per branch y = outer(inner(x·A)·B), see <see cref="LoraBranch"/>. A backend may run them all in
    /// two kernels (the CUDA decode path); the default is the composition of the existing ops
    /// (<see cref="LoraSetReference"/>), which is the CPU reference. Outputs must not alias x or any input.
    /// </summary>
    void LoraSet(Tensor x, ReadOnlySpan<LoraBranch> branches)
    {
        LoraSetChecks.Check(x, branches);
        LoraSetReference.Run(this, x, branches);
    }

    /// <summary>y = a + b, elementwise, same shapes.</summary>
    void Add(Tensor a, Tensor b, Tensor y);

    /// <summary>y = a ⊙ b, elementwise, same shapes.</summary>
    void Multiply(Tensor a, Tensor b, Tensor y);

    /// <summary>y = s · x.</summary>
    void Scale(Tensor x, float s, Tensor y);

    /// <summary>
    /// y = (s · a) ⊙ b, each product rounded to fp32 as <see cref="Scale"/> then <see cref="Multiply"/> round it (RAD-RWKV7's
    /// balanced output o × N^−1/2 ⊙ g in one launch). y may alias a, not b. The default is exactly those two ops.
    /// </summary>
    void ScaleMultiply(Tensor a, float s, Tensor b, Tensor y)
    {
        FusedOpChecks.ScaleMultiply(a, b, y);
        Scale(a, s, y);
        Multiply(y, b, y);
    }

    /// <summary>y = tanh(x).</summary>
    void Tanh(Tensor x, Tensor y);

    /// <summary>y = σ(x).</summary>
    void Sigmoid(Tensor x, Tensor y);

    /// <summary>y = σ(x + bias), bias [C] broadcast over rows of x [T, C].</summary>
    void AddSigmoid(Tensor x, Tensor bias, Tensor y);

    /// <summary>SwiGLU: y = silu(gate) ⊙ up. gate, up, y [T, F].</summary>
    void SwiGlu(Tensor gate, Tensor up, Tensor y);

    /// <summary>
    /// The MLP's first half in one call: y = silu(x·W_gateᵀ) ⊙ (x·W_upᵀ). x [T, C]; W_gate, W_up [F, C] (OutIn, no
    /// bias); y, upScratch [T, F]. upScratch holds x·W_upᵀ on the unfused path (its contents afterwards are undefined);
    /// the caller passes it so no op allocates inside a recorded step. Neither may alias x or each other. The default is
    /// <see cref="MatMulShared"/> into (y, upScratch) then <see cref="SwiGlu"/>; a backend may run it as one launch
    /// (the CUDA decode path) with the same per-row sums.
    /// </summary>
    void GateUpSwiGlu(Tensor x, Tensor wGate, Tensor wUp, Tensor y, Tensor upScratch)
    {
        FusedOpChecks.GateUpSwiGlu(x, wGate, wUp, y, upScratch);
        MatMulShared(x, [wGate, wUp], [null, null], [y, upScratch]);
        SwiGlu(y, upScratch, y);
    }

    /// <summary>
    /// The norm before the mixer's projections fused into them: h = h + branch (written back; with branch null h is
    /// left as it is: the first layer's plain RmsNorm), normed = RmsNorm(h), then <see cref="MatMulShared"/> of normed
    /// into outputs. normed [T, C] is written too (other branches read it). normed may alias branch, never h; outputs
    /// must not alias h, branch or normed. The default is exactly <see cref="AddRmsNorm"/> (or <see cref="RmsNorm"/>)
    /// then <see cref="MatMulShared"/>; a backend may run it as one launch with the same bits (the CUDA decode path).
    /// </summary>
    void AddRmsNormMatMulShared(Tensor h, Tensor? branch, Tensor normWeight, float eps, Tensor normed,
        IReadOnlyList<Tensor> weights, IReadOnlyList<Tensor?> biases, IReadOnlyList<Tensor> outputs)
    {
        FusedOpChecks.ResidualNorm(nameof(AddRmsNormMatMulShared), h, branch, normed, outputs);
        ResidualNorm(this, h, branch, normWeight, eps, normed);
        MatMulShared(normed, weights, biases, outputs);
    }

    /// <summary>
    /// The norm before the MLP fused into its gate/up: h and normed as in <see cref="AddRmsNormMatMulShared"/>, then
    /// <see cref="GateUpSwiGlu"/> of normed into y (upScratch as there). The default is exactly those ops.
    /// </summary>
    void AddRmsNormGateUpSwiGlu(Tensor h, Tensor? branch, Tensor normWeight, float eps, Tensor normed, Tensor wGate, Tensor wUp,
        Tensor y, Tensor upScratch)
    {
        FusedOpChecks.ResidualNorm(nameof(AddRmsNormGateUpSwiGlu), h, branch, normed, [y, upScratch]);
        ResidualNorm(this, h, branch, normWeight, eps, normed);
        GateUpSwiGlu(normed, wGate, wUp, y, upScratch);
    }

    /// <summary>
    /// The whole SwiGLU MLP after its residual norm: <see cref="AddRmsNormGateUpSwiGlu"/> into act (upScratch as
    /// there), then y = act · W_downᵀ (W_down [C, F] OutIn, no bias). h, normed and y are the results; act and upScratch
    /// are the op's scratch, whose contents afterwards a backend may leave in another form. The default is exactly those
    /// two ops (act then holds the SwiGLU); the CUDA decode path can run it as one persistent kernel with the same bits,
    /// and CUDA prefill on cuBLASLt keeps gate, up and act in bf16 there (y within bf16 rounding of the default).
    /// </summary>
    void AddRmsNormMlp(Tensor h, Tensor? branch, Tensor normWeight, float eps, Tensor normed, Tensor wGate, Tensor wUp, Tensor wDown,
        Tensor act, Tensor upScratch, Tensor y)
    {
        FusedOpChecks.ResidualNormMlp(h, branch, normed, wGate, wUp, wDown, act, upScratch, y);
        AddRmsNormGateUpSwiGlu(h, branch, normWeight, eps, normed, wGate, wUp, act, upScratch);
        MatMul(act, wDown, null, y);
    }

    /// <summary>
    /// The unfused first half of <see cref="AddRmsNormMatMulShared"/> and <see cref="AddRmsNormGateUpSwiGlu"/>:
    /// <see cref="AddRmsNorm"/>, or <see cref="RmsNorm"/> of h when branch is null.
    /// </summary>
    static void ResidualNorm(IOps ops, Tensor h, Tensor? branch, Tensor normWeight, float eps, Tensor normed)
    {
        if (branch is null)
        {
            ops.RmsNorm(h, normWeight, eps, normed);
        }
        else
        {
            ops.AddRmsNorm(h, branch, normWeight, eps, normed);
        }
    }

    /// <summary>
    /// Qwen rotate-half RoPE in place on x [T, heads·N]: row t is at position startPosition + t;
    /// pair (i, i + N/2) rotates by angle position · theta^(−2i/N).
    /// </summary>
    void Rope(Tensor x, int heads, int headDim, int startPosition, float theta);

    /// <summary>GQA expansion: y head h = x head ⌊h / groups⌋. x [T, KVH·N], y [T, KVH·groups·N]. y must not alias x.</summary>
    void RepeatKv(Tensor x, int kvHeads, int headDim, int groups, Tensor y);

    /// <summary>
    /// RoPE and GQA in one call: <see cref="Rope"/> in place on r [T, H·N] and on k [T, KVH·N] (row t at
    /// startPosition + t), then kh, vh [T, H·N] ← <see cref="RepeatKv"/> of the rotated k and of v (G = H / KVH).
    /// k stays rotated (Qwen2's KV cache takes it). With v, kh and vh null it is RoPE on r and k only.
    /// kh, vh must not alias r, k or v. A recorded step reads the position at replay, as <see cref="Rope"/> does.
    /// The default is exactly that composition; a backend may run it as one launch with the same fp32 results.
    /// </summary>
    void RopeExpand(Tensor r, Tensor k, Tensor? v, int heads, int kvHeads, int headDim, int startPosition, float theta,
        Tensor? kh, Tensor? vh)
    {
        FusedOpChecks.RopeExpand(nameof(RopeExpand), r, k, v, heads, kvHeads, headDim, kh, vh);
        Rope(r, heads, headDim, startPosition, theta);
        Rope(k, kvHeads, headDim, startPosition, theta);
        if (kh is not null)
        {
            RepeatKv(k, kvHeads, headDim, heads / kvHeads, kh);
            RepeatKv(v!, kvHeads, headDim, heads / kvHeads, vh!);
        }
    }

    /// <summary>
    /// The GQA expansion of a model without RoPE in one call: kh, vh [T, H·N] ← <see cref="RepeatKv"/> of k and v
    /// [T, KVH·N]. The default is those two ops.
    /// </summary>
    void ExpandKv(Tensor k, Tensor v, int heads, int kvHeads, int headDim, Tensor kh, Tensor vh)
    {
        FusedOpChecks.ExpandKv(k, v, heads, kvHeads, headDim, kh, vh);
        RepeatKv(k, kvHeads, headDim, heads / kvHeads, kh);
        RepeatKv(v, kvHeads, headDim, heads / kvHeads, vh);
    }

    /// <summary>
    /// GroupNorm per row: the row of x [T, G·D] splits into G groups of D; each is normalised with its own
    /// mean and variance (fp32, biased variance), then y = norm ⊙ weight + bias (weight, bias [G·D]).
    /// </summary>
    void GroupNorm(Tensor x, Tensor weight, Tensor bias, int groups, float eps, Tensor y);

    /// <summary>
    /// Causal softmax attention against a KV cache for one sequence. q [T, H·N]; kCache, vCache [S, KVH·N]
    /// hold positions 0 .. startPosition + T − 1 (this step's keys already written). Query row t sits at
    /// position startPosition + t and attends to cache rows 0 .. startPosition + t; scale N^−1/2;
    /// query head h reads KV head ⌊h / (H/KVH)⌋. y [T, H·N].
    /// </summary>
    void Attention(Tensor q, Tensor kCache, Tensor vCache, int heads, int kvHeads, int headDim, int startPosition, Tensor y);

    /// <summary>
    /// RWKV token shift for one sequence: delta[t] = x[t−1] − x[t] with x[−1] = shiftState; afterwards
    /// shiftState = x[T−1]. x, delta [T, C]; shiftState [1, C].
    /// </summary>
    void TokenShift(Tensor x, Tensor shiftState, Tensor delta);

    /// <summary>y = x + delta ⊙ mix, mix [C] broadcast over rows (RAD-RWKV6 ddlerp pre-mix xx = x + Δ ⊙ µx).</summary>
    void MixShift(Tensor x, Tensor delta, Tensor mix, Tensor y);

    /// <summary>
    /// RAD-RWKV6 ddlerp, the five data-dependent lerps in LoRA order r, k, v, w, g:
    /// for i in 0..4, outputs rows [i·T, (i+1)·T) = x + delta ⊙ (mixes[i] + lora[:, i·R:(i+1)·R] · w2[i]).
    /// x, delta [T, C]; lora [T, 5R] (already tanh'd); w2 [5, R, C]; mixes [5, C]; outputs [5·T, C].
    /// </summary>
    void Rwkv6Ddlerp(Tensor x, Tensor delta, Tensor lora, Tensor w2, Tensor mixes, Tensor outputs);

    /// <summary>RAD-RWKV6 decay: w = exp(max(−exp(bias + d), −5)). d, w [T, A]; bias [A].</summary>
    void Rwkv6Decay(Tensor d, Tensor bias, Tensor w);

    /// <summary>RAD-RWKV6 state balancing: y = k ⊙ (1 − w). k, w, y [T, A].</summary>
    void Rwkv6BalanceKeys(Tensor k, Tensor w, Tensor y);

    /// <summary>
    /// GLA recurrence of RAD-RWKV6 for one sequence, per head, state S [H, N_k, N_v] fp32 (key-major):
    /// S ← diag(w_t)·S + k_tᵀ v_t, then y_t = (scale · r_t) · S. r, k, v, w, y [T, H·N].
    /// </summary>
    void Wkv6(Tensor r, Tensor k, Tensor v, Tensor w, Tensor state, float scale, Tensor y);

    /// <summary>RAD-RWKV7 decay: w = exp(−e^−0.5 · σ(w0 + z)). z, w [T, A]; w0 [A].</summary>
    void Rwkv7Decay(Tensor z, Tensor w0, Tensor w);

    /// <summary>
    /// RAD-RWKV7 removal and replacement keys, per head of N (fp32, ‖·‖ with eps 1e-12):
    /// balanced: κ = k/‖k‖, k̃ = k ⊙ (1 − w + a);
    /// stock (keyScale = k_k, iclrMix = k_a): κ = normalize(k ⊙ k_k), k̃ = k ⊙ (1 + (a − 1) ⊙ k_a).
    /// Writes the recurrence inputs removal = −κ and replacement = κ ⊙ a, and kTilde.
    /// k, w, a, removal, replacement, kTilde [T, A]; keyScale, iclrMix [A] or null when balanced.
    /// </summary>
    void Rwkv7Keys(Tensor k, Tensor w, Tensor a, Tensor? keyScale, Tensor? iclrMix, int headDim, bool balanced,
        Tensor removal, Tensor replacement, Tensor kTilde);

    /// <summary>Value residual: y = v + (vFirst − v) ⊙ nu. All [T, A].</summary>
    void Rwkv7ValueResidual(Tensor v, Tensor vFirst, Tensor nu, Tensor y);

    /// <summary>
    /// RAD-RWKV7's steps 7 and 8 in one call: <see cref="Rwkv7Keys"/>, then (vFirst and nu given: every layer but the
    /// first) v ← <see cref="Rwkv7ValueResidual"/>(v, vFirst, nu) in place. v, vFirst, nu [T, A] like k. A backend may
    /// run it as one launch; the default is exactly those two ops (the CPU reference).
    /// </summary>
    void Rwkv7KeysValueResidual(Tensor k, Tensor w, Tensor a, Tensor? keyScale, Tensor? iclrMix, int headDim, bool balanced,
        Tensor removal, Tensor replacement, Tensor kTilde, Tensor v, Tensor? vFirst, Tensor? nu)
    {
        FusedOpChecks.KeysValueResidual(k, w, a, keyScale, iclrMix, headDim, balanced, v, vFirst, nu);
        Rwkv7Keys(k, w, a, keyScale, iclrMix, headDim, balanced, removal, replacement, kTilde);
        if (vFirst is not null)
        {
            Rwkv7ValueResidual(v, vFirst, nu!, v);
        }
    }

    /// <summary>
    /// Generalised delta rule of RAD-RWKV7 for one sequence, per head, state S [H, N_v, N_k] fp32 (value-major):
    /// sa_i = Σ_j a_j S[i,j]; S[i,j] ← S[i,j]·w_j + k_j·v_i + sa_i·b_j; y_i = Σ_j S[i,j]·r_j.
    /// r, w, k, v, a (= −κ), b (= κ ⊙ iclr), y [T, H·N].
    /// </summary>
    void Wkv7(Tensor r, Tensor w, Tensor k, Tensor v, Tensor a, Tensor b, Tensor state, Tensor y);

    /// <summary>
    /// Picks one token id per row of logits [B, V] (ids ≥ <paramref name="allowedVocabulary"/> are never chosen) into
    /// <paramref name="ids"/> [B], on the host, with the semantics of <see cref="Generation.Sampler"/> after its
    /// repetition penalty (see <see cref="Generation.SamplingMath"/> for the exact definition every backend follows):
    /// temperature 0 is argmax with the lowest id on ties; otherwise top-k → softmax(logits / T) → top-p → min-p → one
    /// draw with <see cref="SampleRow.Uniform"/>. Only the ids cross to the host. A NaN or +Infinity logit, or a row of
    /// −Infinity only, throws a <see cref="RadladsException"/> naming the row and token.
    /// </summary>
    void Sample(Tensor logits, int allowedVocabulary, ReadOnlySpan<SampleRow> rows, Span<int> ids);

    // Multi-sequence decode: B independent sequences, one token each, row b of every [B, ·] activation belongs to
    // sequence b. The defaults loop over the single-sequence ops (the ILGPU backend uses them unchanged); the CPU
    // backend runs the same loop in parallel over sequences, the CUDA backend one launch for all sequences.

    /// <summary>
    /// <see cref="Rope"/> with a position per row: row b of x [B, heads·N] sits at <paramref name="positions"/>[b].
    /// </summary>
    void RopeRows(Tensor x, int heads, int headDim, ReadOnlySpan<int> positions, float theta)
    {
        DecodeRowChecks.Rows(nameof(RopeRows), x, positions.Length);
        for (int b = 0; b < positions.Length; b++)
        {
            Rope(x.Rows(b, 1), heads, headDim, positions[b], theta);
        }
    }

    /// <summary>
    /// <see cref="RopeExpand"/> with a position per row (row b of r, k [B, ·] at <paramref name="positions"/>[b]):
    /// <see cref="RopeRows"/> on r and k, then the expansion. The default is exactly that composition.
    /// </summary>
    void RopeExpandRows(Tensor r, Tensor k, Tensor? v, int heads, int kvHeads, int headDim, ReadOnlySpan<int> positions, float theta,
        Tensor? kh, Tensor? vh)
    {
        FusedOpChecks.RopeExpand(nameof(RopeExpandRows), r, k, v, heads, kvHeads, headDim, kh, vh);
        DecodeRowChecks.Rows(nameof(RopeExpandRows), r, positions.Length);
        RopeRows(r, heads, headDim, positions, theta);
        RopeRows(k, kvHeads, headDim, positions, theta);
        if (kh is not null)
        {
            RepeatKv(k, kvHeads, headDim, heads / kvHeads, kh);
            RepeatKv(v!, kvHeads, headDim, heads / kvHeads, vh!);
        }
    }

    /// <summary>
    /// RAD-RWKV7's steps 5–8 for one-token rows in one call: <see cref="RopeExpandRows"/>(r, k, v → kh, vh) at each row's
    /// position, then <see cref="Rwkv7KeysValueResidual"/>(kh, …, vh, vFirst, nu) (vFirst and nu null in layer 0). r, kh,
    /// vh, w, a, removal, replacement, kTilde, vFirst, nu [B, H·N]; k, v [B, KVH·N]; keyScale, iclrMix [H·N] or null when
    /// balanced. Outputs: r rotated in place, kh, vh (with the residual), removal, replacement, kTilde. k is consumed:
    /// its contents afterwards are unspecified (this default rotates it in place; a one-launch kernel only reads it,
    /// since the query heads of a group would otherwise race on it). The default is exactly those two ops (the CPU
    /// reference).
    /// </summary>
    void Rwkv7RopeKeysValueResidualRows(Tensor r, Tensor k, Tensor v, int heads, int kvHeads, int headDim, ReadOnlySpan<int> positions,
        float theta, Tensor w, Tensor a, Tensor? keyScale, Tensor? iclrMix, bool balanced, Tensor kh, Tensor vh, Tensor removal,
        Tensor replacement, Tensor kTilde, Tensor? vFirst, Tensor? nu)
    {
        FusedOpChecks.RopeKeysValueResidualRows(r, k, v, heads, kvHeads, headDim, positions, w, a, keyScale, iclrMix, balanced, kh, vh,
            vFirst, nu);
        RopeExpandRows(r, k, v, heads, kvHeads, headDim, positions, theta, kh, vh);
        Rwkv7KeysValueResidual(kh, w, a, keyScale, iclrMix, headDim, balanced, removal, replacement, kTilde, vh, vFirst, nu);
    }

    /// <summary>
    /// Scatter: row <paramref name="rows"/>[b] of <paramref name="destinations"/>[b] ← row b of x, e.g. this step's
    /// key of each sequence into its KV cache. x [B, W]; destinations[b] [S_b, W] with rows[b] &lt; S_b.
    /// </summary>
    void ScatterRows(Tensor x, IReadOnlyList<Tensor> destinations, ReadOnlySpan<int> rows)
    {
        DecodeRowChecks.Scatter(x, destinations, rows);
        for (int b = 0; b < rows.Length; b++)
        {
            // x · 1 is x exactly in IEEE fp32 (NaN stays NaN): a copy with the ops every backend has.
            Scale(x.Rows(b, 1), 1f, destinations[b].Rows(rows[b], 1));
        }
    }

    /// <summary>
    /// KV cache append for one sequence: rows <paramref name="position"/> .. position + T − 1 of
    /// <paramref name="kCache"/> and <paramref name="vCache"/> [S, W] ← k and v [T, W]. The position is a sequence
    /// position like <see cref="Rope"/>'s start: a recorded decode step (<see cref="IStepCapture"/>) reads it at replay,
    /// so the rows written follow the replayed position. The default is the exact copy <see cref="ScatterRows"/> makes.
    /// </summary>
    void AppendKv(Tensor k, Tensor v, Tensor kCache, Tensor vCache, int position)
    {
        DecodeRowChecks.AppendKv(k, v, kCache, vCache, position);
        int tokens = k.RowCount;
        // x · 1 is x exactly in IEEE fp32 (NaN stays NaN): a copy with the ops every backend has.
        Scale(k, 1f, kCache.Rows(position, tokens));
        Scale(v, 1f, vCache.Rows(position, tokens));
    }

    /// <summary>
    /// Decode attention for B sequences, one query row each: q [B, H·N]; kCaches[b], vCaches[b] [S_b, KVH·N] hold
    /// positions 0 .. lengths[b] − 1 of sequence b (this step's key and value, at lengths[b] − 1, already written);
    /// row b attends to all of them (scale N^−1/2, query head h reads KV head ⌊h / (H/KVH)⌋). y [B, H·N].
    /// Equals <see cref="Attention"/> per row with startPosition = lengths[b] − 1.
    /// </summary>
    void AttentionDecode(Tensor q, IReadOnlyList<Tensor> kCaches, IReadOnlyList<Tensor> vCaches, ReadOnlySpan<int> lengths,
        int heads, int kvHeads, int headDim, Tensor y)
    {
        DecodeRowChecks.Attention(q, kCaches, vCaches, lengths, y);
        for (int b = 0; b < lengths.Length; b++)
        {
            Attention(q.Rows(b, 1), kCaches[b], vCaches[b], heads, kvHeads, headDim, lengths[b] - 1, y.Rows(b, 1));
        }
    }

    /// <summary>
    /// <see cref="Wkv6"/> for B sequences, one token each: r, k, v, w, y [B, H·N]; states[b] [H, N, N] is sequence
    /// b's state, updated in place.
    /// </summary>
    void Wkv6Decode(Tensor r, Tensor k, Tensor v, Tensor w, IReadOnlyList<Tensor> states, float scale, Tensor y)
    {
        DecodeRowChecks.Rows(nameof(Wkv6Decode), r, states.Count);
        for (int b = 0; b < states.Count; b++)
        {
            Wkv6(r.Rows(b, 1), k.Rows(b, 1), v.Rows(b, 1), w.Rows(b, 1), states[b], scale, y.Rows(b, 1));
        }
    }

    /// <summary>
    /// <see cref="Wkv7"/> for B sequences, one token each: r, w, k, v, a, b, y [B, H·N]; states[i] [H, N, N] is
    /// sequence i's state, updated in place.
    /// </summary>
    void Wkv7Decode(Tensor r, Tensor w, Tensor k, Tensor v, Tensor a, Tensor b, IReadOnlyList<Tensor> states, Tensor y)
    {
        DecodeRowChecks.Rows(nameof(Wkv7Decode), r, states.Count);
        for (int i = 0; i < states.Count; i++)
        {
            Wkv7(r.Rows(i, 1), w.Rows(i, 1), k.Rows(i, 1), v.Rows(i, 1), a.Rows(i, 1), b.Rows(i, 1), states[i], y.Rows(i, 1));
        }
    }

    /// <summary>
    /// RAD-RWKV7's balanced output in the decode epilogue: <see cref="Wkv7Decode"/>, then y ← (<paramref name="scale"/> · y) ⊙
    /// <paramref name="gate"/> as <see cref="ScaleMultiply"/> rounds it (scale = N^−1/2). gate [B, H·N] like y, not aliasing
    /// y. A backend may write the scaled, gated y from the recurrence kernel itself (one launch instead of two); the default
    /// is exactly those two ops (the CPU reference).
    /// </summary>
    void Wkv7DecodeScaleGate(Tensor r, Tensor w, Tensor k, Tensor v, Tensor a, Tensor b, IReadOnlyList<Tensor> states, float scale,
        Tensor gate, Tensor y)
    {
        FusedOpChecks.Wkv7DecodeScaleGate(r, states, gate, y);
        Wkv7Decode(r, w, k, v, a, b, states, y);
        ScaleMultiply(y, scale, gate, y);
    }

    /// <summary>
    /// RAD-RWKV7's steps 5–11 for one-token rows of a gated model without GroupNorm, in one call:
    /// <see cref="Rwkv7RopeKeysValueResidualRows"/> (arguments as there), then <see cref="Wkv7DecodeScaleGate"/>(r, w,
    /// kTilde, vh, removal, replacement, states, scale, gate, y). Outputs: y, the states (updated in place) and vh (v
    /// with the residual; layer 0 copies it to v_first). r, k, kh, removal, replacement and kTilde are workspace: their
    /// contents afterwards are unspecified (a one-launch kernel keeps those vectors on chip). The default is exactly
    /// those two ops (the CPU reference).
    /// </summary>
    void Rwkv7RopeKeysWkv7Rows(Tensor r, Tensor k, Tensor v, int heads, int kvHeads, int headDim, ReadOnlySpan<int> positions,
        float theta, Tensor w, Tensor a, Tensor? keyScale, Tensor? iclrMix, bool balanced, Tensor kh, Tensor vh, Tensor removal,
        Tensor replacement, Tensor kTilde, Tensor? vFirst, Tensor? nu, IReadOnlyList<Tensor> states, float scale, Tensor gate, Tensor y)
    {
        FusedOpChecks.RopeKeysWkv7Rows(r, k, v, heads, kvHeads, headDim, positions, w, a, keyScale, iclrMix, balanced, kh, vh, vFirst, nu,
            states, gate, y);
        Rwkv7RopeKeysValueResidualRows(r, k, v, heads, kvHeads, headDim, positions, theta, w, a, keyScale, iclrMix, balanced, kh, vh,
            removal, replacement, kTilde, vFirst, nu);
        Wkv7DecodeScaleGate(r, w, kTilde, vh, removal, replacement, states, scale, gate, y);
    }

    /// <summary>
    /// RAD-RWKV7's steps 2–9 for a prompt chunk of one sequence in one call, from the LoRA set's pre-activations (its
    /// decay, rate and residual branches with <see cref="LoraOuter.None"/>):
    /// w ← <see cref="Rwkv7Decay"/>(decayZ, w0); rateZ ← <see cref="AddSigmoid"/>(rateZ, a0) (the in-context rate a);
    /// with residualZ (layers after the first) residualZ ← AddSigmoid(residualZ, v0) (ν);
    /// <see cref="RopeExpand"/>(r, k, v, heads, kvHeads, headDim, startPosition, theta, kh, vh) (with <paramref name="rope"/>;
    /// otherwise <see cref="ExpandKv"/>(k, v, heads, kvHeads, headDim, kh, vh));
    /// <see cref="Rwkv7KeysValueResidual"/>(kh, w, a, keyScale, iclrMix, headDim, balanced, removal, replacement, kTilde,
    /// vh, vFirst, ν); <see cref="Wkv7"/>(r, w, kTilde, vh, removal, replacement, state, y).
    /// Outputs: y, the state (in place) and vh (v with the residual; layer 0 keeps it as v_first). r, k, decayZ, rateZ,
    /// residualZ, kh, w, removal, replacement and kTilde are workspace, unspecified afterwards (the CUDA prefill forms
    /// the keys inside the recurrence's chunk preparation and never writes them). r, kh, vh, w, removal, replacement,
    /// kTilde, decayZ, rateZ, residualZ, vFirst, y [T, H·N]; k, v [T, KVH·N]; w0, a0, v0, keyScale, iclrMix [H·N]. w may
    /// be decayZ itself (the decay formed in place). The default is exactly those ops (the CPU reference).
    /// </summary>
    void Rwkv7RopeKeysWkv7(Tensor r, Tensor k, Tensor v, int heads, int kvHeads, int headDim, bool rope, int startPosition, float theta,
        Tensor decayZ, Tensor w0, Tensor rateZ, Tensor a0, Tensor? keyScale, Tensor? iclrMix, bool balanced, Tensor? residualZ,
        Tensor? v0, Tensor? vFirst, Tensor kh, Tensor vh, Tensor w, Tensor removal, Tensor replacement, Tensor kTilde, Tensor state,
        Tensor y)
    {
        FusedOpChecks.RopeKeysWkv7(r, k, v, heads, kvHeads, headDim, rope, decayZ, w0, rateZ, a0, keyScale, iclrMix, balanced, residualZ,
            v0, vFirst, kh, vh, w, removal, replacement, kTilde, state, y);
        FusedOpCompositions.RopeKeysWkv7(this, r, k, v, heads, kvHeads, headDim, rope, startPosition, theta, decayZ, w0, rateZ, a0, keyScale,
            iclrMix, balanced, residualZ, v0, vFirst, kh, vh, w, removal, replacement, kTilde, state, y);
    }

    /// <summary>
    /// <see cref="TokenShift"/> for B sequences, one token each: delta[b] = shiftStates[b] − x[b], then
    /// shiftStates[b] = x[b]. x, delta [B, C]; shiftStates[b] [1, C].
    /// </summary>
    void TokenShiftRows(Tensor x, IReadOnlyList<Tensor> shiftStates, Tensor delta)
    {
        DecodeRowChecks.Rows(nameof(TokenShiftRows), x, shiftStates.Count);
        for (int b = 0; b < shiftStates.Count; b++)
        {
            TokenShift(x.Rows(b, 1), shiftStates[b], delta.Rows(b, 1));
        }
    }

    /// <summary>
    /// The residual norm, then the q/k/v projections and a LoRA set that both read its output (RAD-RWKV7's decode step):
    /// <see cref="AddRmsNormMatMulShared"/>(h, branch, normWeight, eps, normed, weights, biases, outputs), then
    /// <see cref="LoraSet"/>(normed, branches). The default is exactly those two ops; the CUDA decode path runs the LoRA
    /// down projections inside the q/k/v GEMV's launch (same bits, one launch fewer).
    /// </summary>
    void AddRmsNormMatMulSharedLoraSet(Tensor h, Tensor? branch, Tensor normWeight, float eps, Tensor normed, IReadOnlyList<Tensor> weights,
        IReadOnlyList<Tensor?> biases, IReadOnlyList<Tensor> outputs, ReadOnlySpan<LoraBranch> branches)
    {
        AddRmsNormMatMulShared(h, branch, normWeight, eps, normed, weights, biases, outputs);
        LoraSet(normed, branches);
    }

    /// <summary>
    /// A hint: these weights are read soon, in this order; the tensors of one group are read together (one GEMV over
    /// all of them, row by row). A backend with a cache may start loading as much of them as its cache holds while the
    /// ops queued before it leave memory idle (CUDA: an L2 bulk prefetch on a side stream, decode only, by default for
    /// weights of more than 4 L2s; RADLADS_PREFETCH_L2 sets its share of the L2). Changes no result; the default does nothing.
    /// </summary>
    void Prefetch(params Tensor[][] groups)
    {
    }

    /// <summary>
    /// A hint: the ops queued from here to <see cref="EndBeside"/> may run beside the ops queued after it, until
    /// <see cref="JoinBeside"/> (CUDA prefill: on a second stream, while a latency-bound recurrence leaves SMs idle).
    /// The caller guarantees that the ops in between neither read nor write what the beside ops write, and write
    /// nothing the beside ops read, until the join. Changes no result; the default runs everything in order.
    /// </summary>
    void BeginBeside()
    {
    }

    /// <summary>Ends the ops that <see cref="BeginBeside"/> began; the ops after this may run beside them.</summary>
    void EndBeside()
    {
    }

    /// <summary>The ops after this run after everything queued before it, the beside ops included.</summary>
    void JoinBeside()
    {
    }
}
