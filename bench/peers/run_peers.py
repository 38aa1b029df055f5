#!/usr/bin/env python3
"""Run the PyTorch peers of `radlads bench` on this GPU and write their rows (same CSV columns) to --output.

    python bench/peers/run_peers.py --shape qwen2.5-7b --output bench/results/<card>/<date>/peers.csv
    radlads bench --report bench/results/<card>/<date>/      # merges peers*.csv into results.md and the plots

Peers: hf-generate (transformers generate, eager), torch-static-graph (plain PyTorch static KV cache + CUDA graph)
for Qwen2; torch-rwkv7-eager / torch-rwkv7-graph (plain PyTorch RAD-RWKV7 recurrence) for the RNN side.
Everything is built from random weights at the named shape: no network, no download.
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402

import common  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shape", required=True, help="qwen2.5-0.5b|1.5b|7b|32b or tiny")
    p.add_argument("--output", required=True, help="CSV file to write (name it peers*.csv inside a results folder)")
    p.add_argument("--contexts", default=None, help="batch-1 decode contexts (default 1k,4k,32k; --quick 1k,32k)")
    p.add_argument("--batches", default=None, help="batched decode sizes (default 1,8,32; --quick 1,32)")
    p.add_argument("--batch-context", default=None, help="context of batched decode (default 4k; --quick 1k)")
    p.add_argument("--prefill-tokens", type=int, default=None, help="prompt of the TTFT measurement (default 2048; --quick 512)")
    p.add_argument("--steps", type=int, default=None, help="timed decode steps (default 32; --quick 8)")
    p.add_argument("--peers", default="hf-generate,torch-static-graph,torch-rwkv7", help="which peers to run")
    p.add_argument("--quick", action="store_true")
    a = p.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("the peers need a CUDA GPU (torch.cuda.is_available() is False)")
    shape = common.shape_name(a.shape)
    q = a.quick
    contexts = common.lengths(a.contexts or ("1k,32k" if q else "1k,4k,32k"))
    batches = common.lengths(a.batches or ("1,32" if q else "1,8,32"))
    batch_context = common.lengths(a.batch_context or ("1k" if q else "4k"))[0]
    prefill = a.prefill_tokens or (512 if q else 2048)
    steps = a.steps or (8 if q else 32)
    warmup = 2 if q else 4
    peers = [x.strip() for x in a.peers.split(",") if x.strip()]
    unknown = set(peers) - {"hf-generate", "torch-static-graph", "torch-rwkv7"}
    if unknown:
        raise SystemExit(f"--peers: unknown {sorted(unknown)}")

    started = time.time()
    print(f"peers on {common.card()}, torch {torch.__version__}, shape {shape}", file=sys.stderr)
    rows, _, _ = common.roofline_rows(q)
    if "hf-generate" in peers or "torch-static-graph" in peers:
        import qwen2_peers
        note = common.does_not_fit(qwen2_peers.weight_bytes(shape), "the Qwen2 weights")
        if note:
            rows.append(common.row("hf-generate", arch="qwen2", shape=shape, measure="decode", status="does not fit", note=note))
        else:
            model = qwen2_peers.build(shape)
            print(f"built qwen2 {shape} in {time.time() - started:.0f} s", file=sys.stderr)
            if "hf-generate" in peers:
                rows += qwen2_peers.hf_generate(model, shape, contexts, batches, batch_context, prefill, steps)
                print(f"hf-generate done at {time.time() - started:.0f} s", file=sys.stderr)
            if "torch-static-graph" in peers:
                rows += qwen2_peers.static_graph(model, shape, contexts, batches, batch_context, steps, warmup)
                print(f"torch-static-graph done at {time.time() - started:.0f} s", file=sys.stderr)
            del model
            torch.cuda.empty_cache()
    if "torch-rwkv7" in peers:
        import rwkv7_peer
        rows += rwkv7_peer.run(shape, contexts, batches, batch_context, steps, warmup)
        print(f"torch-rwkv7 done at {time.time() - started:.0f} s", file=sys.stderr)
    common.write(a.output, rows)
    for r in rows:
        if r["measure"] in ("decode", "batched_decode", "prefill"):
            ms = r["ms_per_token"]
            print(f"{r['source']:20} {r['arch']:6} {r['measure']:15} ctx {r['context']!s:>7} batch {r['batch']!s:>3} "
                  + (f"{ms:9.3f} ms/token" if r["status"] == "ok" else r["status"] + ": " + r["note"]), file=sys.stderr)
    print(f"wrote {len(rows)} rows to {a.output} in {time.time() - started:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
