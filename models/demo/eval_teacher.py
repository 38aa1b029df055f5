#!/usr/bin/env python3
"""Test-split perplexity of a saved teacher checkpoint, by the protocol that `radlads score --token-file`
also uses (models/demo/README.md): consecutive non-overlapping windows from token 0, each from a fresh state,
positions 1..W-1 scored. The checkpoint is loaded as saved (bf16 weights) into fp32 with eager attention.

    python3 models/demo/eval_teacher.py --model models/demo-teacher --tokens test.bin [--window 512] [--max-windows 0]
"""
import argparse
import json
import sys
import time

import torch

sys.path.insert(0, __file__.rsplit("/", 1)[0])
import train_teacher as tt  # noqa: E402  (same reader and protocol code as training)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--tokens", required=True, help="RDLSTOK1 token file (the test split)")
    ap.add_argument("--window", type=int, default=512)
    ap.add_argument("--max-windows", type=int, default=0, help="0 = every full window")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--out", default=None, help="write the result as JSON here")
    args = ap.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    tt.set_fp32_precision_highest()
    model, _ = tt.load_pretrained_fp32(args.model)
    model.to(device)
    tf = tt.read_token_file(args.tokens)
    data = tt.to_device_tokens(tf, device)
    windows = tt.consecutive_windows(data, args.window, args.max_windows)
    start = time.time()
    result = tt.test_perplexity(model, windows, args.batch)
    result.pop("per_window_mean_nll")
    result.update(model=args.model, tokens=args.tokens, window=args.window, device=tt.device_name(device),
                  seconds=round(time.time() - start, 2))
    print(json.dumps(result, indent=2))
    if args.out:
        tt.write_json(args.out, result)


if __name__ == "__main__":
    main()
