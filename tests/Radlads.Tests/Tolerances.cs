namespace Radlads.Tests;

/// <summary>
/// Every numeric tolerance the tests use, in one place, each with the reason it is what it is.
/// An error is compared as |actual − expected| ≤ Absolute + Relative · |expected| unless stated.
/// Recorded decode steps (CUDA graphs, CudaGraphTests / IlgpuGraphTests) have no tolerance: they run the eager path's
/// kernels on the same inputs, and Qwen2's recorded attention derives the eager call's split of the cache from the
/// replayed length, so logits and state are compared bit for bit.
/// </summary>
public static class Tolerances
{
    /// <summary>
    /// A CPU op in fp32 against the float64 definition in <see cref="Ops.NaiveOps"/>: each output is a sum
    /// of at most a few hundred fp32 products, so rounding stays within ~1e-5 relative; transcendental
    /// functions in TensorPrimitives are accurate to a few ulp.
    /// </summary>
    public const double OpRelative = 2e-5;

    /// <summary>Absolute floor for <see cref="OpRelative"/>: outputs near zero after cancellation.</summary>
    public const double OpAbsolute = 2e-5;

    /// <summary>
    /// Floor for <see cref="OpRelative"/> on long dot products (the MLP down projection, K = F up to 4,864), × the
    /// largest |expected| element of the output: an fp32 sum of K terms carries rounding of ~√K · 2^−24 times the
    /// terms' magnitudes, which an element that cancels to far below its neighbours keeps (seen: 7.5e-5 relative on
    /// one of 3,584 elements at K = 1,088 on the ILGPU CPU accelerator; ~4e-6 of the row's largest).
    /// </summary>
    public const double LongDotRelativeToMax = 2e-5;

    /// <summary>
    /// <see cref="Radlads.Ops.IOps.LoraSet"/> against its float64 composition, per element of hidden and y: two chained
    /// fp32 sums, of up to C = 3584 terms (x·A) and then R = 416 (h·B), with the inputs scaled so both are O(1). The first
    /// sum's rounding (~6e-8 · √3584 ≈ 4e-6 of its O(1) partial sums, in any order: split-K on the GPU) carries through the
    /// second at about the same size, and the outer ops' slopes are ≤ 1 (σ′ ≤ 1/4, the decays' ≤ 1/e); so ~5e-6, and
    /// 5e-5 leaves a factor of ~10.
    /// </summary>
    public const double LoraSetRelative = 5e-5;

    /// <summary>Absolute floor for <see cref="LoraSetRelative"/>: outputs of the plain (outer none) branches that cancel near zero.</summary>
    public const double LoraSetAbsolute = 5e-5;

    /// <summary>
    /// Recurrences (wkv6, wkv7) accumulate state over up to 70 steps in fp32; errors grow roughly with
    /// the step count, so they get 10× the single-op budget.
    /// </summary>
    public const double RecurrenceRelative = 2e-4;

    /// <summary>Absolute floor for <see cref="RecurrenceRelative"/>.</summary>
    public const double RecurrenceAbsolute = 2e-4;

    /// <summary>
    /// The chunked Wkv7 prefill (kernels/wkv7_chunked.cu) against the recurrence in float64, × max |expected| of y or of
    /// the state. It is fp32 throughout, but sums each chunk's contributions as matrix products of 16-token blocks (and a
    /// triangular inverse) instead of one token at a time, so its rounding is not the scan's. Measured under kernel
    /// emulation (scripts/kernel-emulation/run-wkv7-chunked.sh, T ≤ 40, the mma reading its operands' top 19 bits as the
    /// tensor cores do): ≤ 3.3e-7 × max; on the H200 up to T = 2,049: ≤ 5.4e-7 (y), 2.4e-7 (state); the state is
    /// contracted by the decays, so the error does not grow with T. 1e-5 leaves a factor of ~20 for other cards.
    /// </summary>
    public const double ChunkedRecurrenceRelativeToMax = 1e-5;

    /// <summary>
    /// A backward op's fp32 gradient against central finite differences of its float64 forward
    /// (<see cref="Ops.BackwardTests"/>), per element, relative part. The finite differences are exact to ~1e-9
    /// (step 1e-6 in double); the fp32 side rounds each product (6e-8) over sums of at most a few dozen terms, and
    /// tanh/sigmoid gradients taken from the forward output lose digits where 1 − y² or y(1 − y) is small (1e-4
    /// relative for y = ±0.999). Worst seen (tanh): 0.23 × the bound with (1e-5, 1e-6), so ~20× margin here.
    /// </summary>
    public const double GradientRelative = 5e-5;

    /// <summary>
    /// Floor for <see cref="GradientRelative"/>, × the largest |expected| element of the same tensor: elements that
    /// cancel to near zero carry the absolute rounding of their larger neighbours.
    /// </summary>
    public const double GradientRelativeToMax = 5e-6;

    /// <summary>
    /// Backward of a recurrence (wkv6, wkv7) through up to 40 steps from a non-zero state: every gradient is a sum
    /// over the future of fp32 products through recomputed states, and its rounding grows with T. Worst seen at
    /// T ≤ 40: 0.07 × the bound with (1e-5, 1e-6); twice the single-op budget leaves room for longer sequences.
    /// </summary>
    public const double RecurrenceGradientRelative = 1e-4;

    /// <summary>Floor for <see cref="RecurrenceGradientRelative"/>, × max |expected| of the tensor.</summary>
    public const double RecurrenceGradientRelativeToMax = 1e-5;

    /// <summary>
    /// A whole mixer's parameter gradients of the step-1 loss (<see cref="Ops.MixerBackwardTests"/>): about 30 fp32
    /// ops forward and back, a 6-step recurrence, GroupNorm, and the L2 norm of the loss, whose gradient divides by
    /// the per-token error. Worst seen (rwkv6 time_maa_x, a sum over every token and channel): 0.51 × the bound
    /// with (1e-5, 1e-6), so ~20× margin here.
    /// </summary>
    public const double MixerGradientRelative = 1e-4;

    /// <summary>Floor for <see cref="MixerGradientRelative"/>, × max |expected| of the parameter's gradient.</summary>
    public const double MixerGradientRelativeToMax = 1e-5;

    /// <summary>
    /// The whole step-1 objective's parameter gradients (<see cref="Training.Step1ObjectiveTests"/>) against finite
    /// differences of the float64 student: as <see cref="MixerGradientRelative"/> (the same ops), now at C = 64 over three
    /// layers with RAD-RWKV7's v_first carrying layer 0's gradient from the later layers.
    /// </summary>
    public const double Step1GradientRelative = 1e-4;

    /// <summary>Floor for <see cref="Step1GradientRelative"/>, × max |gradient| of the whole tensor (the sampled elements may all be small).</summary>
    public const double Step1GradientRelativeToMax = 1e-5;

    /// <summary>
    /// The step-1 loss and gradients on CUDA against the CPU reference (<see cref="Training.CudaStep1Tests"/>), relative
    /// and × max |CPU gradient| of the tensor: both are fp32 with different summation orders through three layers of
    /// forward and backward (the recurrence gradients sum over up to 40 steps). Not yet measured on a GPU: a first
    /// bound, 10× <see cref="RecurrenceGradientRelative"/>; tighten it once the CUDA backward has run.
    /// </summary>
    public const double CudaStep1Relative = 1e-3;

    /// <summary>
    /// Golden logits (issue #2): max |ours − reference| ≤ 1e-4 · max |reference logit|. The references are
    /// float64 from the same bf16 weights; ours run in fp32, whose ~6e-8 relative rounding accumulates
    /// over a few layers to well under this bound.
    /// </summary>
    public const double GoldenLogitsRelativeToMax = 1e-4;

    /// <summary>
    /// Two fp32 runs of the same model that group the work differently (prefill vs token-by-token,
    /// one pass vs split prompt, batched vs alone) sum in different orders; they agree to a few ulp of the
    /// largest logit.
    /// </summary>
    public const double ConsistencyRelativeToMax = 1e-5;

    /// <summary>
    /// The perplexity `radlads score` prints from CUDA logits against the one from CPU logits (relative). The
    /// logits agree to about <see cref="ConsistencyRelativeToMax"/> × max |logit| (~1e-4 nats for logits near 10),
    /// and exp(mean NLL) carries that error over as a relative one; the value is printed with 4 decimals.
    /// </summary>
    public const double BackendPerplexityRelative = 1e-4;

    /// <summary>
    /// The same, when the CUDA run's prefill GEMMs take cuBLASLt (the default when it is installed: bf16 activations
    /// from two rows). On the six fixtures that moves logits by 0.3–1.5 % of max |logit| (the CPU emulation in
    /// Bf16GemmEmulationTests); on the rwkv7 fixture's 8-token CLI score the perplexity moved by 0.17 % (H200,
    /// 2026-11-27). 1 % leaves room and still catches a wrong kernel (those move perplexity by factors).
    /// </summary>
    public const double BackendPerplexityGemmLibraryRelative = 1e-2;

    /// <summary>
    /// An orthogonal × 0.1 LoRA matrix W [R, C] stored in bf16 (convert): max |W·Wᵀ − 0.01·I|. Rounding each element to
    /// bf16 changes it by up to 2^−9 relative, which moves an entry of W·Wᵀ by about 0.01 · 2^−9 · √(2/C) (a random-sign
    /// sum over C products), ~1.5e-6 for C = 64; the bound leaves a factor of about 60 and is 1 % of the diagonal.
    /// </summary>
    public const double OrthogonalGramBf16 = 1e-4;

    /// <summary>The same in f32: the float64 orthogonalisation is exact to ~1e-16 and rounding to fp32 adds ~1e-9.</summary>
    public const double OrthogonalGramF32 = 1e-8;

    /// <summary>
    /// A CUDA backward op against the CPU reference (<see cref="Ops.CudaBackwardConformanceTests"/>), both fp32: the
    /// same maths summed in other orders (64×64 tiles against row loops, eight-warp column sums against sequential
    /// ones, warp trees against TensorPrimitives) and with FMA contraction on the GPU. Each output is a sum of at most
    /// ~900 terms (MatMul dx at K = 896), so the difference stays at a few 1e-7 of the largest term; GroupNorm's
    /// statistics are double on both. Per element, relative part.
    /// </summary>
    public const double CudaBackwardRelative = 2e-5;

    /// <summary>Floor for <see cref="CudaBackwardRelative"/>, × max |CPU element| of the tensor (elements that cancel).</summary>
    public const double CudaBackwardRelativeToMax = 2e-6;

    /// <summary>
    /// The wkv6/wkv7 backward on CUDA against the CPU: both recompute the states from 16-step checkpoints in fp32, but
    /// sum the N-term dot products in other orders (and with FMA), and every gradient carries those differences back
    /// through up to 65 steps; the same budget as a recurrence gradient against finite differences.
    /// </summary>
    public const double CudaRecurrenceBackwardRelative = RecurrenceGradientRelative;

    /// <summary>Floor for <see cref="CudaRecurrenceBackwardRelative"/>, × max |CPU element| of the tensor.</summary>
    public const double CudaRecurrenceBackwardRelativeToMax = RecurrenceGradientRelativeToMax;

    /// <summary>
    /// The alignment loss (a double) against its float64 definition: the squares of the exact fp32 differences are
    /// summed in fp64 on both sides, in other orders (~1e-15 relative); 1e-12 leaves room.
    /// </summary>
    public const double CudaLossRelative = 1e-12;

    /// <summary>
    /// The alignment loss gradient (fp32) against its float64 definition: the fp32 difference, the fp32 factor
    /// gradScale/(‖·‖·√C) and their product are each rounded once (≤ 3 × 6e-8 relative).
    /// </summary>
    public const double CudaLossGradientRelative = 1e-6;

    /// <summary>
    /// SumOfSquares (fp64 accumulation of fp32 squares) against a sequential double sum of up to 1e6 terms: both round
    /// in double, the sequential one by up to ~n·1.1e-16 in the worst case (~1e-13 typically).
    /// </summary>
    public const double CudaSumOfSquaresRelative = 1e-11;

    /// <summary>
    /// AdamW on CUDA against the doc comment's formula in fp32 with each operation rounded once (IEEE division and
    /// square root on both, no FMA on either): expected bit-equal; 5e-7 is ~4 ulp, room for a host scalar rounded the
    /// other way. Also the bound (relative and × max) against the CPU reference, which may order the formula differently.
    /// </summary>
    public const double CudaAdamWRelative = 5e-7;

    /// <summary>
    /// Σ x² accumulated in float64 (<see cref="Radlads.Ops.IBackwardOps.SumOfSquares"/>) against a float64 sum in
    /// another order: each square of a float is exact in double, so only the summation order differs (~1e-16 per add
    /// over up to ~10^5 terms).
    /// </summary>
    public const double SumOfSquaresRelative = 1e-12;

    /// <summary>
    /// The fp32 AdamW against the same maths in float64 over a few steps (m, v and the parameter, per element,
    /// relative to |expected| plus this × max |expected|): each element sees about a dozen fp32 roundings per step
    /// (6e-8 each), and the step is lr-sized next to the parameter, so errors stay near 1e-6 relative.
    /// </summary>
    public const double AdamWRelative = 2e-6;

    /// <summary>
    /// The CPU AdamW (+ clip, + schedule) against real torch.optim.AdamW (tests/golden/adamw): the same fp32 operations
    /// in the same order except where torch's vectorised kernels and ours differ in fusing (lerp's fma, a division by a
    /// scalar), so a few ulp (1.2e-7 each) per step at most.
    /// </summary>
    public const double AdamWTorchRelative = 1e-6;

    /// <summary>
    /// The unit roundoff of bf16 (8 significant bits): rounding x to bf16 for the cuBLASLt GEMMs moves each element by
    /// at most 2^−8 of itself, so an output of x·W moves by at most 2^−8 · Σ_k |x_k·w_k|. The cuBLASLt MatMul tests check
    /// that bound per element against the float64 product of the unrounded x (a rigorous bound, not a fit).
    /// </summary>
    public const double Bf16UnitRoundoff = 1.0 / 256;

    /// <summary>
    /// The cuBLASLt MatMul against the float64 product of the bf16-rounded x (the exact result of what it is asked
    /// to compute): bf16 × bf16 products are exact in fp32, the sums are fp32 in an order cuBLASLt picks (tensor-core
    /// fragments, split-K), so 5× the single-op budget.
    /// </summary>
    public const double Bf16GemmRelative = 1e-4;

    /// <summary>Absolute floor for <see cref="Bf16GemmRelative"/>.</summary>
    public const double Bf16GemmAbsolute = 1e-4;

    /// <summary>
    /// Whole-model logits when every prefill GEMM with bf16 weights rounds its activations to bf16 (the CUDA
    /// backend's cuBLASLt path), against the golden references and against fp32 token-by-token decode. Each GEMM
    /// output moves by ~2^−8/√3 of its RMS (random-sign rounding errors), and the errors of ~7 GEMMs per layer add up
    /// over the layers. Measured on the CPU emulation (<see cref="Models.Bf16GemmEmulationTests"/>), 24 tokens of the
    /// six fixtures (3 layers, hidden 64, random weights), with the MLP's gate and up also rounded to bf16 as CUDA's
    /// prefill MLP keeps them (CudaOps.Bf16PrefillMlp): 0.0044 (qwen2) to 0.0142 (rwkv6-rope) × max |logit| (without
    /// that rounding 0.0031 to 0.0154); the bound is ~3× the worst. Prefill == decode comparisons on that path use this bound instead of
    /// <see cref="ConsistencyRelativeToMax"/>: the two sides no longer compute the same sums (decode's GEMVs keep fp32
    /// activations). On CUDA that path also runs the qwen2 fixtures' prefill attention on the tensor cores (bf16 Q, K, V
    /// and P; head dim 16), which the CPU emulation does not model: its error per attention output is ~1e-2 of the
    /// values (<see cref="Bf16AttentionAbsolute"/>), the same order as a bf16 GEMM's.
    /// </summary>
    public const double Bf16GemmLogitsRelativeToMax = 5e-2;

    /// <summary>
    /// Prefill attention on CUDA's tensor cores (attention_prefill_tc_N: Q, K, V and the softmax probabilities P rounded
    /// to bf16, fp32 accumulation, online softmax and 1/l in fp32) against float64 attention of the unrounded fp32
    /// inputs, for the harness's unit-normal q, k, v: |actual − expected| ≤ this + <see cref="Bf16AttentionRelative"/> ·
    /// |expected|. Each rounding is ≤ 2^−8 relative (<see cref="Bf16UnitRoundoff"/>): V's moves y by ≤ 2^−8 · |v| (the
    /// relative part), P's by ≤ 2^−8 · max |v_j − y|, and Q's and K's move a score s = q·k/√N by about 2^−8 · √(2/3) ≈ 0.003
    /// (random-sign, unit-normal q and k; 4σ ≈ 0.013), which moves y by that × |v_j − y| (up to ~4 for few keys). Measured
    /// under the CPU emulation (scripts/kernel-emulation/run-attention-tc.sh, 189 shapes, T = 1 … 130, N = 16 … 128): worst
    /// |error| / (1 + |expected|) = 0.0102; the bound is ~3× that. An indexing or masking fault moves y by O(1).
    /// </summary>
    public const double Bf16AttentionAbsolute = 1.0 / 32;

    /// <summary>Relative part of <see cref="Bf16AttentionAbsolute"/> (V's own bf16 rounding, 2^−8, with a factor of 4).</summary>
    public const double Bf16AttentionRelative = 1.0 / 64;
}
