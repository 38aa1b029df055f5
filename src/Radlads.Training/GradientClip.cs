namespace Radlads.Training;

/// <summary>
/// Global gradient-norm clipping as torch.nn.utils.clip_grad_norm_: norm = ‖all gradients‖₂ (one vector over every
/// parameter), coefficient = max_norm / (norm + 1e-6), applied only when it is below 1. The loop hands the
/// coefficient to AdamW as its gradient scale instead of rescaling the gradients in place.
/// </summary>
public static class GradientClip
{
    /// <summary>The factor the gradients are multiplied by: 1 when <paramref name="maxNorm"/> is 0 (off) or not exceeded.</summary>
    public static float Coefficient(double norm, double maxNorm)
    {
        if (maxNorm <= 0)
        {
            return 1f;
        }

        // torch does this in fp32 tensors: clip_coef = max_norm / (total_norm + 1e-6), clamped to at most 1.
        float coefficient = (float)maxNorm / ((float)norm + 1e-6f);
        return coefficient < 1f ? coefficient : 1f;
    }
}
