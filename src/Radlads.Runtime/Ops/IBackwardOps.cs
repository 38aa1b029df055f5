namespace Radlads.Ops;

/// <summary>
/// The hand-derived backward of every op a RAD-RWKV student mixer uses (issue #7, step 1), one method per forward
/// op of <see cref="IOps"/>, named <c>&lt;Op&gt;Backward</c>, with the same layouts (wkv6 state key-major
/// [H, N_k, N_v], wkv7 state value-major [H, N_v, N_k]) and the same letters (T, C, H, KVH, N, A = H·N, R).
/// The CPU backend is the reference; a GPU backend implements the same contract.
/// <para>
/// Naming: for a forward output y, <c>dy</c> is ∂L/∂y, the gradient arriving from above; <c>dX</c> is ∂L/∂X.
/// The backward takes the forward's inputs (and, where cheaper, its output) as they were; the caller keeps them.
/// </para>
/// <para>
/// <b>The accumulation rule.</b> Gradients of <b>weights</b> (parameters: matrices, biases, mixes, norms) are
/// <b>accumulated</b>: dW += …, so one buffer sums over sequences, micro-batches and every use; the caller zeroes it
/// once per optimiser step. Gradients of <b>inputs</b> (activations) are <b>written</b>: every element is
/// overwritten, so the buffer need not be cleared; where an activation feeds several ops the caller adds the parts.
/// One exception, named in its doc: <see cref="Rwkv7ValueResidualBackward"/> accumulates into d(v_first), because
/// v_first is shared by every later layer like a parameter. A gradient output passed as null is not computed
/// (a frozen weight, or an input nothing upstream needs). Gradient buffers are fp32; weights may be bf16/f16/f32.
/// </para>
/// <para>
/// Aliasing: an input gradient may be written over <c>dy</c> where its doc says so; weight gradients never alias
/// anything.
/// </para>
/// </summary>
public interface IBackwardOps
{
    /// <summary>
    /// Backward of <see cref="IOps.MatMul"/>. x [T, K], dy [T, M].
    /// OutIn (y = x·Wᵀ + b, W [M, K]): dx = dy·W, dWeight += dyᵀ·x [M, K].
    /// InOut (y = x·W + b, W [K, M]): dx = dy·Wᵀ, dWeight += xᵀ·dy [K, M].
    /// Both: dBias += Σ_t dy[t] [M]. dx [T, K] is written and must not alias dy or x.
    /// </summary>
    void MatMulBackward(Tensor x, Tensor weight, Tensor dy, Tensor? dx, Tensor? dWeight, Tensor? dBias,
        WeightLayout layout = WeightLayout.OutIn);

    /// <summary>Backward of y = s·x: dx = s·dy (written; may alias dy).</summary>
    void ScaleBackward(Tensor dy, float s, Tensor dx);

    /// <summary>
    /// Backward of y = a ⊙ b: da = dy ⊙ b, db = dy ⊙ a (both written, same shapes). db is computed first, so da may
    /// alias dy; db may alias dy only when da is null.
    /// </summary>
    void MultiplyBackward(Tensor a, Tensor b, Tensor dy, Tensor? da, Tensor? db);

    /// <summary>Backward of y = tanh(x) from the forward output: dx = dy ⊙ (1 − y²) (written; may alias dy).</summary>
    void TanhBackward(Tensor y, Tensor dy, Tensor dx);

    /// <summary>Backward of y = σ(x) from the forward output: dx = dy ⊙ y ⊙ (1 − y) (written; may alias dy).</summary>
    void SigmoidBackward(Tensor y, Tensor dy, Tensor dx);

    /// <summary>
    /// Backward of y = σ(x + bias) from the forward output y [T, C]: dx = dy ⊙ y ⊙ (1 − y) [T, C] (written; may alias
    /// dy); dBias += Σ_t dx[t] [C].
    /// </summary>
    void AddSigmoidBackward(Tensor y, Tensor dy, Tensor dx, Tensor? dBias);

    /// <summary>
    /// Backward of SwiGLU y = silu(gate) ⊙ up with silu(g) = g·σ(g): dUp = dy ⊙ silu(gate),
    /// dGate = dy ⊙ up ⊙ σ(gate)·(1 + gate·(1 − σ(gate))). gate, up, dy, dGate, dUp [T, F]; both written, neither
    /// may alias an input.
    /// </summary>
    void SwiGluBackward(Tensor gate, Tensor up, Tensor dy, Tensor? dGate, Tensor? dUp);

    /// <summary>
    /// Backward of <see cref="IOps.Rope"/>, in place on the gradient dx [T, heads·N] (dy on entry, dx on exit): RoPE
    /// is a rotation of each pair (i, i + N/2) by angle (startPosition + t)·theta^(−2i/N), so its backward is the
    /// rotation by the negative angle (the transpose).
    /// </summary>
    void RopeBackward(Tensor dx, int heads, int headDim, int startPosition, float theta);

    /// <summary>
    /// Backward of <see cref="IOps.RepeatKv"/>: KV head j receives the sum over its group, dx head j = Σ_{g&lt;groups}
    /// dy head (j·groups + g). dy [T, KVH·groups·N], dx [T, KVH·N] (written; must not alias dy).
    /// </summary>
    void RepeatKvBackward(Tensor dy, int kvHeads, int headDim, int groups, Tensor dx);

    /// <summary>
    /// Backward of <see cref="IOps.GroupNorm"/> from its input x [T, G·D] (mean and variance are recomputed in
    /// double, as the forward does): with x̂ = (x − μ)·r, r = 1/√(var + eps) per group and ĝ = dy ⊙ weight,
    /// dx = r·(ĝ − mean(ĝ) − x̂·mean(ĝ ⊙ x̂)) (written; may alias dy); dWeight += Σ_t dy ⊙ x̂; dBias += Σ_t dy.
    /// </summary>
    void GroupNormBackward(Tensor x, Tensor weight, Tensor dy, int groups, float eps, Tensor? dx, Tensor? dWeight,
        Tensor? dBias);

    /// <summary>
    /// Backward of <see cref="IOps.TokenShift"/> for one sequence: delta[t] = x[t−1] − x[t] with x[−1] = the initial
    /// shift state s₀, and the final shift state x[T−1]. dDelta [T, C] gives
    /// dx[t] = −dDelta[t] + dDelta[t+1] (t &lt; T−1), dx[T−1] = −dDelta[T−1] + dFinalState (written; may alias dDelta);
    /// dInitialState = dDelta[0] [1, C] (written).
    /// Training (issue #7) starts every window from s₀ = 0, which is not trained, and discards the final state: pass
    /// null for both (null dFinalState means zero). They exist for truncated backpropagation across windows.
    /// </summary>
    void TokenShiftBackward(Tensor dDelta, Tensor? dFinalState, Tensor dx, Tensor? dInitialState);

    /// <summary>
    /// Backward of <see cref="IOps.MixShift"/> y = x + delta ⊙ mix (mix [C] broadcast): dx = dy, dDelta = dy ⊙ mix
    /// (both written, [T, C]); dMix += Σ_t dy ⊙ delta [C].
    /// </summary>
    void MixShiftBackward(Tensor delta, Tensor mix, Tensor dy, Tensor? dx, Tensor? dDelta, Tensor? dMix);

    /// <summary>
    /// Backward of <see cref="IOps.Rwkv6Ddlerp"/>: outputs_i = x + delta ⊙ m_i, m_i = mixes[i] + lora_i·w2[i], for
    /// i = r, k, v, w, g. delta [T, C]; lora [T, 5R] (the tanh'd LoRA hidden); w2 [5, R, C]; mixes [5, C];
    /// dOutputs [5·T, C] (rows i·T.. as the forward writes them).
    /// Written: dx = Σ_i dOutputs_i [T, C]; dDelta = Σ_i dOutputs_i ⊙ m_i [T, C]; dLora[:, i·R + r] = (dOutputs_i ⊙
    /// delta)·w2[i, r] [T, 5R]. Accumulated: dW2[i, r] += Σ_t lora[t, i·R + r]·(dOutputs_i ⊙ delta)[t] [5, R, C];
    /// dMixes[i] += Σ_t (dOutputs_i ⊙ delta)[t] [5, C].
    /// </summary>
    void Rwkv6DdlerpBackward(Tensor delta, Tensor lora, Tensor w2, Tensor mixes, Tensor dOutputs, Tensor? dx,
        Tensor? dDelta, Tensor? dLora, Tensor? dW2, Tensor? dMixes);

    /// <summary>
    /// Backward of <see cref="IOps.Rwkv6Decay"/> w = exp(max(−exp(bias + d), −5)), from its input d [T, A] (w is
    /// recomputed). Where the clamp is inactive, ∂w/∂d = w·(−exp(bias + d)) = w·log w; where it is active
    /// (−exp(bias + d) &lt; −5) w is constant and the gradient is zero. At the boundary (−exp(·) = −5 exactly) the
    /// gradient passes, torch.clamp's subgradient, which the RADLADS trainer's <c>decay_states_log.clamp(-5)</c>
    /// uses. NaN stays NaN. dd = dw ⊙ ∂w/∂d (written; may alias dw); dBias += Σ_t dd [A].
    /// </summary>
    void Rwkv6DecayBackward(Tensor d, Tensor bias, Tensor dw, Tensor dd, Tensor? dBias);

    /// <summary>
    /// Backward of <see cref="IOps.Rwkv6BalanceKeys"/> y = k ⊙ (1 − w): dk = dy ⊙ (1 − w), dw = −dy ⊙ k (both
    /// written, [T, A]; either may alias dy, not each other).
    /// </summary>
    void Rwkv6BalanceKeysBackward(Tensor k, Tensor w, Tensor dy, Tensor? dk, Tensor? dw);

    /// <summary>
    /// Backward through time of <see cref="IOps.Wkv6"/> for one sequence, per head: S_t = diag(w_t)·S_{t−1} +
    /// k_tᵀv_t, y_t = scale·r_t·S_t, state [H, N_k, N_v] key-major. r, k, v, w, dy [T, H·N]; initialState [H, N, N]
    /// is the state the forward started from (read only). dFinalState [H, N, N] is ∂L/∂S_T (null = zero, as in
    /// training, where the final state is discarded).
    /// Written: dr, dk, dv, dw [T, H·N]; dInitialState [H, N, N] = ∂L/∂S_0 (null: not computed). No output may alias
    /// an input.
    /// States are recomputed, not stored by the forward: one forward sweep keeps S every
    /// <c>16</c> steps, then each 16-step chunk is recomputed from its checkpoint while going backwards, so memory is
    /// (T/16 + 17)·N² floats per head and work O(T·N²) per head (about three forward sweeps).
    /// </summary>
    void Wkv6Backward(Tensor r, Tensor k, Tensor v, Tensor w, Tensor initialState, float scale, Tensor dy,
        Tensor? dFinalState, Tensor dr, Tensor dk, Tensor dv, Tensor dw, Tensor? dInitialState);

    /// <summary>
    /// Backward of <see cref="IOps.Rwkv7Decay"/> w = exp(−e^−0.5·σ(w0 + z)) from its input z [T, A] (w recomputed):
    /// dz = dw ⊙ w ⊙ (−e^−0.5)·σ(1 − σ) (written; may alias dw); dW0 += Σ_t dz [A].
    /// </summary>
    void Rwkv7DecayBackward(Tensor z, Tensor w0, Tensor dw, Tensor dz, Tensor? dW0);

    /// <summary>
    /// Backward of <see cref="IOps.Rwkv7Keys"/> for both variants, from the forward inputs k, w, a [T, A] (κ is
    /// recomputed). With u = k (balanced) or k ⊙ k_k (stock) per head of N, ρ = max(‖u‖, 1e-12), κ = u/ρ:
    /// dκ = −dRemoval + dReplacement ⊙ a; if ‖u‖ ≥ 1e-12, du = (dκ − κ·(κ·dκ))/‖u‖, else (eps guard active, κ = u/eps
    /// is linear) du = dκ/1e-12 — F.normalize's clamp_min subgradient, the boundary counting as the norm path.
    /// Balanced (k̃ = k ⊙ (1 − w + a)): dk = dKTilde ⊙ (1 − w + a) + du; dw = −dKTilde ⊙ k;
    /// da = dReplacement ⊙ κ + dKTilde ⊙ k.
    /// Stock (k̃ = k ⊙ (1 + (a − 1) ⊙ k_a)): dk = dKTilde ⊙ (1 + (a − 1) ⊙ k_a) + du ⊙ k_k; dw = 0 (w unused);
    /// da = dReplacement ⊙ κ + dKTilde ⊙ k ⊙ k_a; dKeyScale += Σ_t du ⊙ k [A]; dIclrMix += Σ_t dKTilde ⊙ k ⊙ (a − 1) [A].
    /// dk, dw, da [T, A] are written (dw may be null); dKeyScale, dIclrMix are accumulated (stock only).
    /// </summary>
    void Rwkv7KeysBackward(Tensor k, Tensor w, Tensor a, Tensor? keyScale, Tensor? iclrMix, int headDim, bool balanced,
        Tensor dRemoval, Tensor dReplacement, Tensor dKTilde, Tensor dk, Tensor? dw, Tensor da, Tensor? dKeyScale,
        Tensor? dIclrMix);

    /// <summary>
    /// Backward of <see cref="IOps.Rwkv7ValueResidual"/> y = v + (vFirst − v) ⊙ nu, all [T, A]:
    /// dv = dy ⊙ (1 − nu) and dNu = dy ⊙ (vFirst − v) are written (either may alias dy); dVFirst += dy ⊙ nu is
    /// <b>accumulated</b>: v_first (layer 0's value) is read by every later layer, so its gradient sums over them like a
    /// weight's.
    /// </summary>
    void Rwkv7ValueResidualBackward(Tensor v, Tensor vFirst, Tensor nu, Tensor dy, Tensor? dv, Tensor? dVFirst,
        Tensor? dNu);

    /// <summary>
    /// Backward through time of <see cref="IOps.Wkv7"/> (the generalised delta rule) for one sequence, per head,
    /// state [H, N_v, N_k] value-major: sa_i = Σ_j a_j S[i,j]; S'[i,j] = S[i,j]·w_j + k_j·v_i + sa_i·b_j;
    /// y_i = Σ_j S'[i,j]·r_j. With G = ∂L/∂S' (from y and from the future): G += dyᵀr; dr = Σ_i dy_i S'[i,:];
    /// dw = Σ_i G[i,:] ⊙ S[i,:]; dk = Σ_i v_i G[i,:]; dv_i = G[i,:]·k; dsa_i = G[i,:]·b; db = Σ_i sa_i G[i,:];
    /// da = Σ_i dsa_i S[i,:]; ∂L/∂S = G ⊙ w + dsaᵀa.
    /// r, w, k, v, a, b, dy [T, H·N]; initialState [H, N, N] read only; dFinalState ∂L/∂S_T (null = zero).
    /// Written: dr, dw, dk, dv, da, db [T, H·N]; dInitialState [H, N, N] (null: not computed). No output may alias an
    /// input.
    /// States are recomputed as in <see cref="Wkv6Backward"/>: checkpoints every 16 steps, chunks recomputed going
    /// backwards, (T/16 + 17)·N² floats per head, O(T·N²) work per head.
    /// </summary>
    void Wkv7Backward(Tensor r, Tensor w, Tensor k, Tensor v, Tensor a, Tensor b, Tensor initialState, Tensor dy,
        Tensor? dFinalState, Tensor dr, Tensor dw, Tensor dk, Tensor dv, Tensor da, Tensor db, Tensor? dInitialState);

    // ---- Batched recurrences: training's windows are independent sequences of equal length; one call runs them all
    // (a GPU launches every (sequence, head) at once instead of H blocks per window). Sequence s is rows
    // [s·L, (s+1)·L) of every [S·L, H·N] tensor and state heads [s·H, (s+1)·H) of a [S·H, N, N] state. Each equals,
    // bit for bit on the CPU, one single-sequence call per sequence.

    /// <summary>
    /// <see cref="IOps.Wkv6"/> over <paramref name="sequences"/> sequences: r, k, v, w, y [S·L, H·N], state [S·H, N_k, N_v]
    /// (each sequence's initial state in, its final state out).
    /// </summary>
    void Wkv6Sequences(int sequences, Tensor r, Tensor k, Tensor v, Tensor w, Tensor state, float scale, Tensor y);

    /// <summary>
    /// <see cref="Wkv6Backward"/> over <paramref name="sequences"/> sequences (layout as <see cref="Wkv6Sequences"/>),
    /// with ∂L/∂S_T = 0 and no ∂L/∂S_0: training's windows discard their final states and start from zero.
    /// </summary>
    void Wkv6BackwardSequences(int sequences, Tensor r, Tensor k, Tensor v, Tensor w, Tensor initialState, float scale,
        Tensor dy, Tensor dr, Tensor dk, Tensor dv, Tensor dw);

    /// <summary>
    /// <see cref="IOps.Wkv7"/> over <paramref name="sequences"/> sequences: r, w, k, v, a, b, y [S·L, H·N], state
    /// [S·H, N_v, N_k] (each sequence's initial state in, its final state out).
    /// </summary>
    void Wkv7Sequences(int sequences, Tensor r, Tensor w, Tensor k, Tensor v, Tensor a, Tensor b, Tensor state, Tensor y);

    /// <summary>
    /// <see cref="Wkv7Backward"/> over <paramref name="sequences"/> sequences (layout as <see cref="Wkv7Sequences"/>),
    /// with ∂L/∂S_T = 0 and no ∂L/∂S_0.
    /// </summary>
    void Wkv7BackwardSequences(int sequences, Tensor r, Tensor w, Tensor k, Tensor v, Tensor a, Tensor b, Tensor initialState,
        Tensor dy, Tensor dr, Tensor dw, Tensor dk, Tensor dv, Tensor da, Tensor db);

    // ---- Training ops (issue #7): the step-1 loss and the optimiser, so parameters, gradients and moments stay on
    // the device. Reductions return a double to the host (one synchronisation each).

    /// <summary>
    /// The step-1 alignment loss of one layer. teacher, student [T, C] (the post-o_proj attention outputs).
    /// Per token t: e_t = ‖student[t] − teacher[t]‖₂ / √C (the norm, not its square). Returns Σ_t e_t (summed in
    /// fp64). When <paramref name="dStudent"/> is given it is written [T, C]: gradScale · (student[t] − teacher[t]) /
    /// (‖student[t] − teacher[t]‖₂·√C), and 0 for a row whose difference is exactly 0 (the norm's subgradient that
    /// torch.linalg.norm's backward takes). The caller passes gradScale = 1 / (tokens · layers) for the mean.
    /// dStudent may alias student.
    /// </summary>
    double AlignmentLoss(Tensor teacher, Tensor student, float gradScale, Tensor? dStudent);

    /// <summary>Sets every element of an fp32 tensor to <paramref name="value"/> (zeroing gradients).</summary>
    void Fill(Tensor x, float value);

    /// <summary>Σ x² over every element of an fp32 tensor, accumulated in fp64 (the global gradient norm's parts).</summary>
    double SumOfSquares(Tensor x);

    /// <summary>
    /// <see cref="SumOfSquares"/> of every tensor: <paramref name="sums"/>[i] = SumOfSquares(xs[i]) bit for bit, with one
    /// synchronisation on a GPU instead of one per tensor (the global gradient norm over all parameters each step).
    /// </summary>
    void SumsOfSquares(IReadOnlyList<Tensor> xs, Span<double> sums);

    /// <summary>
    /// One AdamW step on an fp32 parameter, exactly torch.optim.AdamW (foreach=False, amsgrad=False, maximize=False):
    /// g = gradScale·grad; param ← param·(1 − lr·weightDecay); m ← β1·m + (1 − β1)·g; v ← β2·v + (1 − β2)·g²;
    /// param ← param − (lr / (1 − β1^step)) · m / (√v / √(1 − β2^step) + eps). step counts from 1. gradScale carries
    /// the global-norm clip coefficient (1 when not clipping). param, grad, m, v have the same element count; grad is
    /// read only.
    /// </summary>
    void AdamW(Tensor param, Tensor grad, Tensor m, Tensor v, float lr, float beta1, float beta2, float eps,
        float weightDecay, float gradScale, int step);
}
