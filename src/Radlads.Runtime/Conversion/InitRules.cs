namespace Radlads.Conversion;

/// <summary>
/// The deterministic initial values of the new RWKV parameters (spec §3.1, §4.1), computed as the RADLADS trainer
/// does ([TR] <c>TMix_qwen2rwkv6.__init__</c>, <c>TMix_qwen2rwkv7.reset_parameters</c>): the formula in float64
/// (Python floats), stored in a float32 tensor, later cast to the checkpoint's dtype.
/// </summary>
public static class InitRules
{
    /// <summary>
    /// <c>l/(L−1)</c>, the trainer's <c>ratio_0_to_1</c>. With one layer (L = 1) the trainer divides by zero; we take
    /// 0, so the only layer gets the first layer's curve.
    /// </summary>
    public static double LayerRatio(int layer, int layers) => layers <= 1 ? 0 : (double)layer / (layers - 1);

    /// <summary><c>n/(A−1)</c> over the channels; with a single channel (A = 1) the trainer divides by zero; we take 0.</summary>
    public static double ChannelRatio(int channel, int channels) => channels <= 1 ? 0 : (double)channel / (channels - 1);

    /// <summary>
    /// RAD-RWKV6 <c>time_decay[n] = −6 + 5·(n/(A−1))^(0.7 + 1.3·l/(L−1))</c> over the A = H·N attention channels.
    /// </summary>
    public static float[] Rwkv6TimeDecay(int layer, int layers, int channels)
    {
        double exponent = 0.7 + 1.3 * LayerRatio(layer, layers);
        var values = new float[channels];
        for (int n = 0; n < channels; n++)
        {
            values[n] = (float)(-6 + 5 * Math.Pow(ChannelRatio(n, channels), exponent));
        }

        return values;
    }

    /// <summary>
    /// RAD-RWKV7 <c>w0[n] = −7 + 5·(n/(A−1))^(0.85 + (l/(L−1))^0.5) + 0.5</c>. As in [TR] the first part is a float64
    /// list turned into a float32 tensor, and the 0.5 is added to that tensor in float32.
    /// </summary>
    public static float[] Rwkv7W0(int layer, int layers, int channels)
    {
        double exponent = 0.85 + 1.0 * Math.Pow(LayerRatio(layer, layers), 0.5);
        var values = new float[channels];
        for (int n = 0; n < channels; n++)
        {
            float speed = (float)(-7.0 + 5.0 * Math.Pow(ChannelRatio(n, channels), exponent));
            values[n] = speed + 0.5f;
        }

        return values;
    }

    /// <summary><paramref name="count"/> values from U(<paramref name="low"/>, <paramref name="high"/>): low + (high − low)·u.</summary>
    public static float[] Uniform(int count, double low, double high, Generation.Xoshiro256StarStar rng)
    {
        ArgumentNullException.ThrowIfNull(rng);
        var values = new float[count];
        for (int i = 0; i < values.Length; i++)
        {
            values[i] = (float)(low + (high - low) * rng.NextDouble());
        }

        return values;
    }
}
