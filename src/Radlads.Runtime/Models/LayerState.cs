using Radlads.Ops;

namespace Radlads.Models;

/// <summary>
/// One layer's per-sequence memory: the recurrent state of an RWKV mixer, or the KV cache of softmax attention.
/// Every tensor is fp32 and listed in <see cref="Tensors"/> so that a state can be copied, saved and restored
/// without knowing the mixer.
/// </summary>
internal class LayerState : IDisposable
{
    public LayerState(Tensor[] tensors) => Tensors = tensors;

    public Tensor[] Tensors { get; protected set; }

    /// <summary>Rows of each tensor that hold data after <paramref name="position"/> tokens (all rows for fixed-size state).</summary>
    public virtual int UsedRows(int index, int position) => Tensors[index].RowCount;

    /// <summary>Makes room for <paramref name="positions"/> tokens (KV caches grow; recurrent state never does).</summary>
    public virtual void Reserve(IBackend backend, int positions)
    {
    }

    public virtual LayerState Clone(IBackend backend)
    {
        var copies = new Tensor[Tensors.Length];
        for (int i = 0; i < copies.Length; i++)
        {
            copies[i] = backend.Allocate(Tensors[i].Shape);
            backend.Copy(Tensors[i], copies[i]);
        }

        return new LayerState(copies);
    }

    public void Dispose()
    {
        foreach (var t in Tensors)
        {
            t.Dispose();
        }
    }
}

/// <summary>K and V rows [capacity, KVH·N] for positions 0 .. capacity−1; grows by doubling.</summary>
internal sealed class KvCacheState : LayerState
{
    public KvCacheState(Tensor keys, Tensor values)
        : base([keys, values])
    {
    }

    public Tensor Keys => Tensors[0];

    public Tensor Values => Tensors[1];

    public int Capacity => Keys.RowCount;

    public override int UsedRows(int index, int position) => position;

    public override void Reserve(IBackend backend, int positions)
    {
        if (positions <= Capacity)
        {
            return;
        }

        int capacity = Math.Max(positions, Capacity * 2);
        var grown = new Tensor[2];
        for (int i = 0; i < 2; i++)
        {
            grown[i] = backend.Allocate(capacity, Tensors[i].RowLength);
            backend.Copy(Tensors[i], grown[i].Rows(0, Capacity));
            Tensors[i].Dispose();
        }

        Tensors = grown;
    }

    public override LayerState Clone(IBackend backend)
    {
        var keys = backend.Allocate(Keys.Shape);
        var values = backend.Allocate(Values.Shape);
        backend.Copy(Keys, keys);
        backend.Copy(Values, values);
        return new KvCacheState(keys, values);
    }
}
