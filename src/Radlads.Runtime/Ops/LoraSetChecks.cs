using Radlads.Checkpoints;

namespace Radlads.Ops;

/// <summary>The argument checks of <see cref="IOps.LoraSet"/>, shared by every backend so they fail alike.</summary>
public static class LoraSetChecks
{
    /// <summary>The most branches one <see cref="IOps.LoraSet"/> call takes (RAD-RWKV7: decay, in-context rate, value residual, gate).</summary>
    public const int MaxBranches = 4;

    /// <summary>
    /// Throws an <see cref="ArgumentException"/> unless there are 1..<see cref="MaxBranches"/> branches, every shape fits
    /// x [T, C] (A [C, R], B [R, M], Hidden [T, R], Y [T, M], Offset [M] exactly when the outer op needs one), Hidden and
    /// Y are fp32, and no Hidden or Y shares memory with x, with a weight or offset, or with another Hidden or Y.
    /// </summary>
    public static void Check(Tensor x, ReadOnlySpan<LoraBranch> branches)
    {
        if (branches.Length is < 1 or > MaxBranches)
        {
            throw new ArgumentException($"LoraSet: {branches.Length} branches; pass 1 to {MaxBranches} (call it again for more)");
        }

        if (x.Shape.Length != 2)
        {
            throw new ArgumentException($"LoraSet: x {x.ShapeText} must be [T, C]");
        }

        int t = x.RowCount;
        int c = x.RowLength;
        for (int i = 0; i < branches.Length; i++)
        {
            var b = branches[i];
            if (b.Down is null || b.Up is null || b.Hidden is null || b.Y is null)
            {
                throw new ArgumentException($"LoraSet: branch {i} lacks a tensor (Down, Up, Hidden and Y are required)");
            }

            if (b.Down.Shape.Length != 2 || b.Up.Shape.Length != 2 || b.Down.Shape[0] != c || b.Up.Shape[0] != b.Down.Shape[1])
            {
                throw new ArgumentException(
                    $"LoraSet: branch {i}: A {b.Down.ShapeText} and B {b.Up.ShapeText} do not chain from x {x.ShapeText}; expected A [{c}, R] and B [R, M] (in×out)");
            }

            int r = b.Down.Shape[1];
            int m = b.Up.Shape[1];
            if (b.Hidden.RowCount != t || b.Hidden.RowLength != r || b.Y.RowCount != t || b.Y.RowLength != m)
            {
                throw new ArgumentException(
                    $"LoraSet: branch {i}: hidden {b.Hidden.ShapeText} and y {b.Y.ShapeText} must be [{t}, {r}] and [{t}, {m}]");
            }

            if (b.Hidden.DType != DType.F32 || b.Y.DType != DType.F32)
            {
                throw new ArgumentException($"LoraSet: branch {i}: hidden and y must be F32, got {b.Hidden.DType} and {b.Y.DType}");
            }

            if (!Enum.IsDefined(b.Inner) || !Enum.IsDefined(b.Outer))
            {
                throw new ArgumentException($"LoraSet: branch {i}: unknown inner {b.Inner} or outer {b.Outer}");
            }

            if (b.Outer == LoraOuter.None ? b.Offset is not null : b.Offset is null || b.Offset.ElementCount != m)
            {
                throw new ArgumentException(b.Outer == LoraOuter.None
                    ? $"LoraSet: branch {i}: an offset was given but the outer op is None; pass null or pick the op that uses it"
                    : $"LoraSet: branch {i}: {b.Outer} needs an offset of {m} elements, got {b.Offset?.ShapeText ?? "null"}");
            }

            foreach (var output in (ReadOnlySpan<Tensor>)[b.Hidden, b.Y])
            {
                string name = ReferenceEquals(output, b.Hidden) ? "hidden" : "y";
                if (output.Overlaps(x))
                {
                    throw new ArgumentException($"LoraSet: branch {i}: {name} shares memory with x; give it its own tensor");
                }

                for (int j = 0; j < branches.Length; j++)
                {
                    var other = branches[j];
                    if (output.Overlaps(other.Down) || output.Overlaps(other.Up) || (other.Offset is { } o && output.Overlaps(o))
                        || (j != i && (output.Overlaps(other.Hidden) || output.Overlaps(other.Y))))
                    {
                        throw new ArgumentException($"LoraSet: branch {i}: {name} shares memory with an input or an output of branch {j}; give every output its own tensor");
                    }
                }
            }

            if (b.Hidden.Overlaps(b.Y))
            {
                throw new ArgumentException($"LoraSet: branch {i}: hidden and y share memory; give each its own tensor");
            }
        }
    }
}
