using ILGPU;
using ILGPU.Runtime.Cuda;
using Radlads.Generation;

namespace Radlads.Ilgpu.Kernels;

/// <summary>
/// Token sampling (IOps.Sample), one group per row, the same algorithm as kernels/sampling.cu and the same arithmetic
/// as the CPU reference: it calls <see cref="SamplingMath"/> itself (portable exp, units, keys, targets), so the three
/// backends pick the same id. Top-k, top-p and the draw are radix selects over 64-bit keys whose histogram bins are
/// integer sums (shared-memory atomics in any order give the same bins). Results in ids[row]: the id, or -1 (all
/// −Infinity), −2 − 2·id (NaN at id), −3 − 2·id (+Infinity at id), as in sampling.cu.
/// </summary>
public static class SamplingKernels
{
    /// <summary>Parameters per row in <c>parameters</c>: temperature, top-k, top-p, min-p, uniform (all exact as doubles).</summary>
    public const int ParameterCount = 5;

    private const ulong UnitsMask = 0x3fff_ffff_ffff_ffffUL;
    private const ulong MinPFail = 0x8000_0000_0000_0000UL;
    private const int MeasureCount = 0;
    private const int MeasureUnits = 1;
    private const int MeasureDraw = 2;

    /// <summary>
    /// Group per row of logits [rows, stride]; units: scratch of rows · n; shift = SamplingMath.UnitShift(n).
    /// <typeparamref name="TFma"/> supplies the fused multiply-add of <see cref="Exp{TFma}"/> for the accelerator.
    /// </summary>
    public static void Sample<TFma>(ArrayView<float> allLogits, int stride, int n, ArrayView<double> parameters, int shift,
        ArrayView<ulong> allUnits, ArrayView<int> ids)
        where TFma : struct, IFusedMultiplyAdd
    {
        var hist = SharedMemory.Allocate<ulong>(256);
        var partial = SharedMemory.Allocate<ulong>(GroupedKernels.MaxGroupSize);
        var result = SharedMemory.Allocate<ulong>(2);
        int row = Grid.IdxX;
        int tid = Group.IdxX;
        var logits = allLogits.SubView((long)row * stride, n);
        var units = allUnits.SubView((long)row * n, n);
        float temperature = (float)parameters[(row * ParameterCount) + 0];
        int topK = (int)parameters[(row * ParameterCount) + 1];
        float topP = (float)parameters[(row * ParameterCount) + 2];
        float minP = (float)parameters[(row * ParameterCount) + 3];
        double uniform = parameters[(row * ParameterCount) + 4];
        if (temperature < 0f)
        {
            // A recorded step replayed for its logits only (uniform across the group; eager calls never pass this).
            return;
        }

        // Check and find the largest logit (encoded as its key: the smallest key is the largest logit, lowest id).
        const ulong none = ulong.MaxValue;
        ulong bad = none, best = none, finite = 0;
        for (int id = tid; id < n; id += Group.DimX)
        {
            float l = logits[id];
            if (float.IsNaN(l) || l == float.PositiveInfinity)
            {
                bad = (ulong)id < bad ? (ulong)id : bad;
            }
            else if (l != float.NegativeInfinity)
            {
                ulong key = SamplingMath.Key(l, id);
                best = key < best ? key : best;
                finite++;
            }
        }

        bad = GroupMin(bad, partial);
        best = GroupMin(best, partial);
        finite = GroupSum(finite, partial);
        if (bad != none)
        {
            if (tid == 0)
            {
                int b = (int)bad;
                ids[row] = float.IsNaN(logits[b]) ? -2 - (2 * b) : -3 - (2 * b);
            }

            return;
        }

        if (finite == 0)
        {
            if (tid == 0)
            {
                ids[row] = -1;
            }

            return;
        }

        int bestId = (int)(uint)best;
        float top = logits[bestId];
        if (temperature == 0f)
        {
            // Greedy: the smallest key is the lowest id holding the largest logit (−0 and +0 share a key).
            if (tid == 0)
            {
                ids[row] = bestId;
            }

            return;
        }

        ulong topKKey = none;
        if (topK > 0 && (ulong)topK < finite)
        {
            topKKey = Select(logits, units, n, MeasureCount, 0, (ulong)topK, hist, result);
        }

        double inverseT = 1.0 / temperature;
        double scale = BitConverter.Int64BitsToDouble((long)(shift + 1023) << 52);
        double minPd = minP;
        ulong total = 0;
        for (int id = tid; id < n; id += Group.DimX)
        {
            float l = logits[id];
            ulong u = 0;
            if (l != float.NegativeInfinity && SamplingMath.Key(l, id) <= topKKey)
            {
                double w = Exp<TFma>(((double)l - top) * inverseT);
                u = (ulong)(w * scale);
                total += u;
                if (minPd > 0.0 && w < minPd)
                {
                    u |= MinPFail;
                }
            }

            units[id] = u;
        }

        Group.Barrier();
        total = GroupSum(total, partial);

        ulong nucleusKey = none;
        if (topP < 1f)
        {
            nucleusKey = Select(logits, units, n, MeasureUnits, 0, SamplingMath.NucleusTarget(topP, total), hist, result);
        }

        ulong kept = 0;
        for (int id = tid; id < n; id += Group.DimX)
        {
            ulong u = units[id];
            if ((u & MinPFail) == 0 && SamplingMath.Key(logits[id], id) <= nucleusKey)
            {
                kept += u & UnitsMask;
            }
        }

        kept = GroupSum(kept, partial);
        ulong chosen = Select(logits, units, n, MeasureDraw, nucleusKey, SamplingMath.DrawTarget(uniform, kept), hist, result);
        if (tid == 0)
        {
            ids[row] = (int)(uint)chosen;
        }
    }

    /// <summary>
    /// <see cref="SamplingMath.Exp"/> operation for operation (a test compares them on the host), with the fused
    /// multiply-adds of <typeparamref name="TFma"/>: ILGPU has no intrinsic for <see cref="Math.FusedMultiplyAdd(double, double, double)"/>
    /// and would leave it an unresolved external function in the PTX, so CUDA emits <c>fma.rn.f64</c> itself.
    /// </summary>
    public static double Exp<TFma>(double x)
        where TFma : struct, IFusedMultiplyAdd
    {
        if (!(x >= SamplingMath.ExpCutoff))
        {
            return 0.0;
        }

        if (x > 0.0)
        {
            x = 0.0;
        }

        double t = x * 1.4426950408889634;
        double k = Math.Floor(t);
        if (t > k + 0.5)
        {
            k += 1.0;
        }

        double r = default(TFma).Fma(-k, 6.93147180369123816490e-01, x);
        r = default(TFma).Fma(-k, 1.90821492927058770002e-10, r);
        double p = 1.6059043836821613e-10;
        p = default(TFma).Fma(p, r, 2.08767569878681e-09);
        p = default(TFma).Fma(p, r, 2.505210838544172e-08);
        p = default(TFma).Fma(p, r, 2.755731922398589e-07);
        p = default(TFma).Fma(p, r, 2.7557319223985893e-06);
        p = default(TFma).Fma(p, r, 2.48015873015873e-05);
        p = default(TFma).Fma(p, r, 0.0001984126984126984);
        p = default(TFma).Fma(p, r, 0.001388888888888889);
        p = default(TFma).Fma(p, r, 0.008333333333333333);
        p = default(TFma).Fma(p, r, 0.041666666666666664);
        p = default(TFma).Fma(p, r, 0.16666666666666666);
        p = default(TFma).Fma(p, r, 0.5);
        p = default(TFma).Fma(p, r, 1.0);
        p = default(TFma).Fma(p, r, 1.0);
        return p * BitConverter.Int64BitsToDouble((long)((int)k + 1023) << 52);
    }

    /// <summary>The smallest key whose prefix measure reaches target: 8-bit digits from the top, the id's unused top byte skipped.</summary>
    private static ulong Select(ArrayView<float> logits, ArrayView<ulong> units, int n, int measure, ulong bound, ulong target,
        ArrayView<ulong> hist, ArrayView<ulong> result)
    {
        int tid = Group.IdxX;
        ulong prefix = 0, mask = 0, before = 0;
        for (int pass = 0; pass < 7; pass++)
        {
            int shift = pass < 4 ? 56 - (8 * pass) : 16 - (8 * (pass - 4));
            for (int i = tid; i < 256; i += Group.DimX)
            {
                hist[i] = 0;
            }

            Group.Barrier();
            for (int id = tid; id < n; id += Group.DimX)
            {
                float l = logits[id];
                ulong key = SamplingMath.Key(l, id);
                if ((key & mask) != prefix)
                {
                    continue;
                }

                ulong m;
                if (measure == MeasureCount)
                {
                    m = l != float.NegativeInfinity ? 1UL : 0UL;
                }
                else
                {
                    ulong u = units[id];
                    m = measure == MeasureDraw && ((u & MinPFail) != 0 || key > bound) ? 0UL : u & UnitsMask;
                }

                if (m != 0)
                {
                    Atomic.Add(ref hist[(int)((key >> shift) & 255)], m);
                }
            }

            Group.Barrier();
            if (tid == 0)
            {
                ulong cum = before;
                int digit = 255;
                for (int d = 0; d < 256; d++)
                {
                    if (cum + hist[d] >= target)
                    {
                        digit = d;
                        break;
                    }

                    cum += hist[d];
                }

                result[0] = prefix | ((ulong)digit << shift);
                result[1] = cum;
            }

            Group.Barrier();
            prefix = result[0];
            before = result[1];
            mask |= 255UL << shift;
            Group.Barrier();
        }

        return prefix;
    }

    private static ulong GroupSum(ulong v, ArrayView<ulong> partial)
    {
        partial[Group.IdxX] = v;
        Group.Barrier();
        ulong t = 0;
        for (int i = 0; i < Group.DimX; i++)
        {
            t += partial[i];
        }

        Group.Barrier();
        return t;
    }

    private static ulong GroupMin(ulong v, ArrayView<ulong> partial)
    {
        partial[Group.IdxX] = v;
        Group.Barrier();
        ulong t = ulong.MaxValue;
        for (int i = 0; i < Group.DimX; i++)
        {
            t = partial[i] < t ? partial[i] : t;
        }

        Group.Barrier();
        return t;
    }
}

/// <summary>a · b + c for <see cref="SamplingKernels.Exp{TFma}"/>, chosen per accelerator when the kernel is loaded.</summary>
public interface IFusedMultiplyAdd
{
    double Fma(double a, double b, double c);
}

/// <summary>CUDA: PTX <c>fma.rn.f64</c> (rounded once, as <see cref="Math.FusedMultiplyAdd(double, double, double)"/>).</summary>
public readonly struct PtxFusedMultiplyAdd : IFusedMultiplyAdd
{
    public double Fma(double a, double b, double c)
    {
        CudaAsm.Emit("fma.rn.f64 %0, %1, %2, %3;", out double r, a, b, c);
        return r;
    }
}

/// <summary>The CPU simulator (and host-side tests): .NET's <see cref="Math.FusedMultiplyAdd(double, double, double)"/>.</summary>
public readonly struct HostFusedMultiplyAdd : IFusedMultiplyAdd
{
    public double Fma(double a, double b, double c) => Math.FusedMultiplyAdd(a, b, c);
}

/// <summary>
/// OpenCL: a · b + c as written (the compiler may or may not fuse it, so the last bit of a weight, and with odds near
/// 2^-40 a drawn token, may differ from the CPU). ILGPU 1.5.3 offers no OpenCL fma intrinsic.
/// </summary>
public readonly struct PlainMultiplyAdd : IFusedMultiplyAdd
{
    public double Fma(double a, double b, double c) => (a * b) + c;
}
