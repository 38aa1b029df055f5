using Radlads.Ops;
using Radlads.Tests.Ops;
using Radlads.Training;

namespace Radlads.Tests.Training;

/// <summary>
/// A linear regression through the training ops, small enough for the loop's tests to run in milliseconds: each token
/// id has a fixed random feature vector x [K]; the model is y = x·Wᵀ + b (MatMul, W [M, K], b [M]); the target is the
/// same map with fixed weights W*, b*; loss = mean over tokens of Σ_j (y − y*)². The gradient goes through
/// MatMulBackward. <see cref="PoisonAtCall"/> makes one call's loss NaN or its gradient infinite (the NaN-stop tests).
/// </summary>
public sealed class ToyObjective : ITrainingObjective
{
    public const int Vocabulary = 50;
    private const int K = 6;

    private readonly IBackend _backend;
    private readonly IBackwardOps _ops;
    private readonly float[] _features;
    private readonly float[] _targetWeight;
    private readonly float[] _targetBias;
    private int _calls;

    public ToyObjective(IBackend backend, int outputs = 3, float targetScale = 1f)
    {
        _backend = backend;
        _ops = backend.BackwardOps!;
        var data = new TestData(42);
        _features = data.Normal(Vocabulary * K);
        _targetWeight = data.Normal(outputs * K, targetScale);
        _targetBias = data.Normal(outputs, targetScale);
        M = outputs;
        Parameters =
        [
            new Parameter("toy.weight", backend.FromFloats(new TestData(7).Normal(outputs * K, 0.1f), outputs, K), backend.Allocate(outputs, K)),
            new Parameter("toy.bias", backend.Allocate(outputs), backend.Allocate(outputs)),
        ];
    }

    public enum Poison
    {
        None,
        NanLoss,
        InfiniteGradient,
    }

    public int M { get; }

    /// <summary>1-based call of <see cref="ForwardBackward"/> to poison (0: none).</summary>
    public int PoisonAtCall { get; init; }

    public Poison PoisonKind { get; init; } = Poison.NanLoss;

    public IReadOnlyList<Parameter> Parameters { get; }

    public double ForwardBackward(ReadOnlySpan<int> tokens, int sequences, int length)
    {
        _calls++;
        int n = sequences * length;
        Assert.Equal(n, tokens.Length);
        var x = new float[n * K];
        var target = new double[n * M];
        for (int t = 0; t < n; t++)
        {
            Assert.InRange(tokens[t], 0, Vocabulary - 1);
            _features.AsSpan(tokens[t] * K, K).CopyTo(x.AsSpan(t * K, K));
            for (int j = 0; j < M; j++)
            {
                double sum = _targetBias[j];
                for (int k = 0; k < K; k++)
                {
                    sum += (double)x[(t * K) + k] * _targetWeight[(j * K) + k];
                }

                target[(t * M) + j] = sum;
            }
        }

        using var xt = _backend.FromFloats(x, n, K);
        using var y = _backend.Allocate(n, M);
        _backend.Ops.MatMul(xt, Parameters[0].Value, Parameters[1].Value, y);
        var yv = new float[n * M];
        _backend.Download(y, yv);
        double loss = 0;
        var dy = new float[n * M];
        for (int i = 0; i < yv.Length; i++)
        {
            double diff = yv[i] - target[i];
            loss += diff * diff;
            dy[i] = (float)(2 * diff / n);
        }

        if (_calls == PoisonAtCall && PoisonKind == Poison.InfiniteGradient)
        {
            dy[0] = float.PositiveInfinity;
        }

        using var dyt = _backend.FromFloats(dy, n, M);
        _ops.MatMulBackward(xt, Parameters[0].Value, dyt, null, Parameters[0].Grad, Parameters[1].Grad);
        double mean = _calls == PoisonAtCall && PoisonKind == Poison.NanLoss ? double.NaN : loss / n;
        _layerLosses = [0.5 * mean, 1.5 * mean];
        return mean;
    }

    private double[] _layerLosses = [0, 0];

    /// <summary>Two made-up "layer" parts of the loss (½ and 1½ of it: their mean is the loss), for the per-layer log.</summary>
    public IReadOnlyList<double> LayerLosses => _layerLosses;

    public float[] Values(int index)
    {
        var values = new float[Parameters[index].Value.ElementCount];
        _backend.Download(Parameters[index].Value, values);
        return values;
    }

    public void Dispose()
    {
        foreach (var p in Parameters)
        {
            p.Dispose();
        }
    }
}
