using Radlads.Ops;

namespace Radlads.Models;

/// <summary>
/// A residual norm the model has not run yet: h = h + Branch (h alone when Branch is null: the first layer), then
/// Normed = RmsNorm(h) with Weight. The mixer's projections or the MLP's gate/up run it inside their GEMVs
/// (IOps.AddRmsNormMatMulShared, IOps.AddRmsNormGateUpSwiGlu): one launch fewer each on the CUDA decode path.
/// H, Branch, Normed [T, C]; Weight [C].
/// </summary>
internal sealed record PendingNorm(Tensor H, Tensor? Branch, Tensor Weight, float Eps, Tensor Normed);
