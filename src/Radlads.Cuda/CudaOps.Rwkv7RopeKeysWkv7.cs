using Radlads.Ops;

namespace Radlads.Cuda;

/// <summary>
/// <see cref="IOps.Rwkv7RopeKeysWkv7"/>: a prompt chunk's RAD-RWKV7 steps 2–9 as the chunked Wkv7 whose prep
/// (wkv7_chunk_prep_keys_f32_n{N}) forms w, a, ν, the rotated r and k and the keys from the LoRA pre-activations and the
/// raw projections itself, so none of rwkv7_decay_f32, the two add_sigmoid_f32, rope_expand_f32 and rwkv7_keys_vres_f32
/// runs (five [T, H·N] passes a layer). The record and vh have the bits of the composed ops'; so do y and the state.
/// Where the chunked kernels do not apply (short prompts, other head dims, before sm_80, unaligned tensors, graph
/// recording, <see cref="CudaBackend.FuseRopeKeysWkv7Prompt"/> off) it runs the composed ops.
/// </summary>
internal sealed unsafe partial class CudaOps
{
    public void Rwkv7RopeKeysWkv7(Tensor r, Tensor k, Tensor v, int heads, int kvHeads, int headDim, bool rope, int startPosition, float theta,
        Tensor decayZ, Tensor w0, Tensor rateZ, Tensor a0, Tensor? keyScale, Tensor? iclrMix, bool balanced, Tensor? residualZ,
        Tensor? v0, Tensor? vFirst, Tensor kh, Tensor vh, Tensor w, Tensor removal, Tensor replacement, Tensor kTilde, Tensor state,
        Tensor y)
    {
        backend.Enter();
        FusedOpChecks.RopeKeysWkv7(r, k, v, heads, kvHeads, headDim, rope, decayZ, w0, rateZ, a0, keyScale, iclrMix, balanced, residualZ,
            v0, vFirst, kh, vh, w, removal, replacement, kTilde, state, y);
        int tokens = r.RowCount, n = headDim, width = heads * headDim;
        Tensor[] activations = [r, k, v, decayZ, rateZ, vh, w, removal, replacement, kTilde, state, y, .. residualZ is null ? [] : new[] { residualZ, vFirst! }];
        foreach (var t in activations)
        {
            Float32(t, nameof(Rwkv7RopeKeysWkv7));
        }

        ulong[] pointers = [.. activations.Select(P)];
        bool chunked = backend.FuseRopeKeysWkv7Prompt && !backend.Recording && TakesWkv7Chunked(backend, tokens, n, pointers);
        // Ops begun beside this one (IOps.BeginBeside: the gate's LoRA) keep running beside it only where the scan's
        // blocks outnumber the SMs (7B: 224 blocks of 16 rows, two an SM, shared memory full): their GEMMs then take
        // the SMs the scan leaves idle (7B prefill 59.4 → 58.4 ms). Where the scan is one block an SM (1.5B: 96, 0.5B:
        // 56), their blocks shared SMs with the latency-bound scan and slowed it (1.5B 20.5 → 21.2 ms): they finish
        // first (H200, 2026-11-29, session 21 call 7).
        if (!chunked || Wkv7ChunkScanBlocks(backend, heads, n) <= backend.Device.MultiprocessorCount)
        {
            backend.JoinBeside();
        }

        if (!chunked)
        {
            FusedOpCompositions.RopeKeysWkv7(this, r, k, v, heads, kvHeads, headDim, rope, startPosition, theta, decayZ, w0, rateZ, a0, keyScale,
                iclrMix, balanced, residualZ, v0, vFirst, kh, vh, w, removal, replacement, kTilde, state, y);
            return;
        }

        var (pw0, w0Type) = Param(w0, width);
        var (pa0, a0Type) = Param(a0, width);
        var (pv0, v0Type) = v0 is null ? (0UL, 0) : Param(v0, width);
        var (pkk, kkType) = balanced ? (0UL, 0) : Param(keyScale!, width);
        var (pka, kaType) = balanced ? (0UL, 0) : Param(iclrMix!, width);
        ulong pr = P(r), pk = P(k), pv = P(v), pzw = P(decayZ), pza = P(rateZ), pzv = residualZ is null ? 0UL : P(residualZ);
        ulong pf = vFirst is null ? 0UL : P(vFirst), pvh = P(vh), pfw = P(w), pfk = P(kTilde), pfa = P(removal), pfb = P(replacement);
        ulong ps = P(state), py = P(y);
        ulong prope = rope ? P(backend.RopeTable(startPosition, tokens, n, theta)) : 0UL;
        int groups = heads / kvHeads, isBalanced = balanced ? 1 : 0;
        float scale = Rwkv7DecayScale;
        int chunks = (tokens + Wkv7ChunkTokens - 1) / Wkv7ChunkTokens;
        using var records = backend.AllocateUninitialized(heads * chunks, Wkv7ChunkRecord(n));
        ulong precords = P(records);
        void** prep = stackalloc void*[] { &pr, &pk, &pv, &groups, &prope, &pzw, &pw0, &w0Type, &scale, &pza, &pa0, &a0Type, &pkk, &kkType,
            &pka, &kaType, &isBalanced, &pzv, &pv0, &v0Type, &pf, &pvh, &pr, &pfw, &pfk, &pfa, &pfb, &tokens, &heads, &precords };
        backend.Launch(backend.Kernels.Wkv7ChunkPrepKeys[n], "wkv7_chunk_prep_keys_f32", (uint)chunks, (uint)heads, Wkv7ChunkPrepThreads,
            Wkv7ChunkPrepShared(n), prep);
        // A flagged chunk's token-by-token path reads r (rotated: the prep writes it there), w, k̃, a, b from the workspace.
        LaunchWkv7ChunkScan(backend, pr, pfw, pfk, pvh, pfa, pfb, precords, ps, tokens, heads, n, py, 1);
        backend.RopeKeysWkv7PromptLaunches++;
    }
}
