using System.Runtime.Intrinsics;
using Radlads.Generation;

namespace Radlads.Conversion;

/// <summary>
/// <c>torch.nn.init.orthogonal_</c> as the RADLADS trainer calls it (<c>ortho_init(x, scale)</c> in [TR]), in float64:
/// a Gaussian matrix [rows, cols] is orthonormalised along its smaller side (the rows when rows &lt; cols, else the
/// columns), giving the Q of its QR decomposition with a positive diagonal in R, which is exactly what torch's
/// sign-corrected QR returns for the same Gaussian matrix. The result is multiplied by
/// <c>scale · gain</c>, with the trainer's <c>gain = √(rows/cols)</c> when rows &gt; cols and 1 otherwise.
/// </summary>
/// <remarks>
/// The orthonormalisation is classical Gram–Schmidt applied twice per vector ("twice is enough"), which is as
/// accurate as Householder QR for these well-conditioned Gaussian matrices. Dot products use a fixed summation
/// order (two 2-lane accumulators, no fused multiply-add) so a seed gives the same bits on every machine, given
/// the same <see cref="Math.Log(double)"/>, <see cref="Math.Sin"/> and <see cref="Math.Cos"/> results in
/// <see cref="GaussianSource"/>.
/// </remarks>
public static class Orthogonal
{
    // Work below this many multiply-adds per pass stays on one thread.
    private const long ParallelThreshold = 1 << 18;
    private const int ElementChunk = 4096;

    /// <summary>The [rows, cols] matrix, row-major, in float32.</summary>
    public static float[] Create(int rows, int cols, double scale, Xoshiro256StarStar rng)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(rows);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(cols);
        ArgumentNullException.ThrowIfNull(rng);
        long total = (long)rows * cols;
        if (total > Array.MaxLength)
        {
            throw new ArgumentOutOfRangeException(nameof(rows), $"a [{rows}, {cols}] matrix is too large");
        }

        var gaussian = new GaussianSource(rng);
        var g = new double[total];
        for (long i = 0; i < total; i++)
        {
            g[i] = gaussian.Next();
        }

        // torch transposes a wide matrix, orthonormalises the columns of the tall one, and transposes back.
        bool wide = rows < cols;
        int count = wide ? rows : cols;   // vectors to orthonormalise
        int length = wide ? cols : rows;  // their length
        double[] vectors;
        if (wide)
        {
            vectors = g; // row i of G is vector i, already contiguous
        }
        else
        {
            vectors = new double[total];
            for (int i = 0; i < rows; i++)
            {
                for (int j = 0; j < cols; j++)
                {
                    vectors[((long)j * rows) + i] = g[((long)i * cols) + j];
                }
            }
        }

        Orthonormalise(vectors, count, length);
        double factor = scale * (rows > cols ? Math.Sqrt((double)rows / cols) : 1.0);
        var result = new float[total];
        for (int i = 0; i < rows; i++)
        {
            for (int j = 0; j < cols; j++)
            {
                double q = wide ? vectors[((long)i * cols) + j] : vectors[((long)j * rows) + i];
                result[((long)i * cols) + j] = (float)(q * factor);
            }
        }

        return result;
    }

    /// <summary>Orthonormalises <paramref name="count"/> contiguous vectors of <paramref name="length"/> in place, in order.</summary>
    internal static void Orthonormalise(double[] vectors, int count, int length)
    {
        if (count > length)
        {
            throw new ArgumentException($"{count} vectors of length {length} cannot be orthonormal");
        }

        var coefficients = new double[count];
        for (int j = 0; j < count; j++)
        {
            var v = vectors.AsMemory(j * length, length);
            for (int pass = 0; pass < 2 && j > 0; pass++)
            {
                Project(vectors, j, length, v, coefficients);
            }

            double norm = Math.Sqrt(Dot(v.Span, v.Span));
            if (!(norm > 0) || !double.IsFinite(norm))
            {
                throw new InvalidOperationException($"vector {j} of {count} became linearly dependent during orthogonalisation");
            }

            var span = v.Span;
            for (int e = 0; e < span.Length; e++)
            {
                span[e] /= norm;
            }
        }
    }

    /// <summary>v ← v − Σ_{i&lt;j} (q_i·v) q_i with every q_i·v taken from the same v (classical Gram–Schmidt).</summary>
    private static void Project(double[] vectors, int j, int length, Memory<double> v, double[] coefficients)
    {
        bool parallel = (long)j * length >= ParallelThreshold;
        if (parallel)
        {
            Parallel.For(0, j, i => coefficients[i] = Dot(vectors.AsSpan(i * length, length), v.Span));
        }
        else
        {
            for (int i = 0; i < j; i++)
            {
                coefficients[i] = Dot(vectors.AsSpan(i * length, length), v.Span);
            }
        }

        // Each element subtracts the projections in the order i = 0, 1, …, so chunks are independent and the
        // result does not depend on how they are scheduled.
        int chunks = (length + ElementChunk - 1) / ElementChunk;
        void Subtract(int chunk)
        {
            int from = chunk * ElementChunk;
            int to = Math.Min(length, from + ElementChunk);
            var target = v.Span[from..to];
            for (int i = 0; i < j; i++)
            {
                double c = coefficients[i];
                var q = vectors.AsSpan((i * length) + from, to - from);
                for (int e = 0; e < target.Length; e++)
                {
                    target[e] -= c * q[e];
                }
            }
        }

        if (parallel && chunks > 1)
        {
            Parallel.For(0, chunks, Subtract);
        }
        else
        {
            for (int chunk = 0; chunk < chunks; chunk++)
            {
                Subtract(chunk);
            }
        }
    }

    /// <summary>A dot product with a fixed summation order on every machine: two 2-lane accumulators, then the tail.</summary>
    internal static double Dot(ReadOnlySpan<double> a, ReadOnlySpan<double> b)
    {
        var acc0 = Vector128<double>.Zero;
        var acc1 = Vector128<double>.Zero;
        int i = 0;
        for (; i <= a.Length - 4; i += 4)
        {
            acc0 += Vector128.Create(a.Slice(i, 2)) * Vector128.Create(b.Slice(i, 2));
            acc1 += Vector128.Create(a.Slice(i + 2, 2)) * Vector128.Create(b.Slice(i + 2, 2));
        }

        var acc = acc0 + acc1;
        double sum = acc.GetElement(0) + acc.GetElement(1);
        for (; i < a.Length; i++)
        {
            sum += a[i] * b[i];
        }

        return sum;
    }
}
