#!/usr/bin/env python3
"""Writes adamw.json: a few optimiser steps of real torch.optim.AdamW with RADLADS step-1 settings, the
warm-up + quarter-cosine LR schedule (rad-rwkv-spec §7.4) and torch.nn.utils.clip_grad_norm_ (max_norm 1.0), for
tests/Radlads.Tests/Training/AdamWFixtureTests.cs to replay with the C# AdamW, schedule and clip.

Run (any machine with PyTorch; CPU is enough and is what the fixture is meant to hold):
    python3 tests/golden/adamw/make_adamw.py            # writes tests/golden/adamw/adamw.json
Every float is written with repr() of the float32 value, so the C# side reads the exact bits.
"""
import json
import math
import os
import struct

import torch

torch.manual_seed(1337)
torch.set_num_threads(1)

# The loop's options for this fixture (the C# test builds the same TrainingOptions).
OPTIONS = dict(ctx_len=4, batch=2, token_budget=4 * 2 * 20, lr_init=1e-3, lr_final=1e-5, warmup_steps=5,
               beta1=0.9, beta2=0.95, eps=1e-8, weight_decay=0.0, clip_norm=1.0)
SHAPES = [[7], [3, 5], [2, 2, 3]]


def f32(x):
    """Rounds a Python float to float32 (the C# loop hands AdamW a float LR)."""
    return struct.unpack("<f", struct.pack("<f", x))[0]


def lr_at(steps_done, o):
    """LearningRateSchedule.At: warm-up multiplier and the quarter cosine of [TR] get_lr_progress (lr_wait 0, endpoint 1)."""
    tokens_per_step = o["ctx_len"] * o["batch"]
    tokens = steps_done * tokens_per_step
    warmup_tokens = o["warmup_steps"] * tokens_per_step
    span = o["token_budget"] - warmup_tokens
    p = 1.0 if span <= 0 else min(max((tokens - warmup_tokens) / span, 0.0), 1.0)
    lr = o["lr_final"] + (o["lr_init"] - o["lr_final"]) * math.cos(math.pi / 2 * p)
    if steps_done < o["warmup_steps"]:
        lr *= 0.01 + 0.99 * steps_done / o["warmup_steps"]
    return lr


def flat(t):
    return [float(x) for x in t.detach().reshape(-1).tolist()]


def main():
    o = OPTIONS
    params = [torch.nn.Parameter(torch.randn(*s, dtype=torch.float32) * 0.5) for s in SHAPES]
    initial = [flat(p) for p in params]
    opt = torch.optim.AdamW(params, lr=o["lr_init"], betas=(o["beta1"], o["beta2"]), eps=o["eps"],
                            weight_decay=o["weight_decay"], foreach=False, fused=False)
    steps_total = (o["token_budget"] + o["ctx_len"] * o["batch"] - 1) // (o["ctx_len"] * o["batch"])
    steps = []
    for s in range(steps_total):
        # Alternate small and large gradients so some steps clip and some do not.
        scale = 3.0 if s % 3 == 0 else 0.05
        grads = [torch.randn(*sh, dtype=torch.float32) * scale for sh in SHAPES]
        for p, g in zip(params, grads):
            p.grad = g.clone()
        norm = torch.nn.utils.clip_grad_norm_(params, o["clip_norm"], foreach=False)
        lr = f32(lr_at(s, o))
        for group in opt.param_groups:
            group["lr"] = lr
        opt.step()
        steps.append(dict(
            lr=lr, lr_schedule=lr_at(s, o), grad_norm=float(norm),
            grads=[flat(g) for g in grads],
            params=[flat(p) for p in params],
            exp_avg=[flat(opt.state[p]["exp_avg"]) for p in params],
            exp_avg_sq=[flat(opt.state[p]["exp_avg_sq"]) for p in params]))
    out = dict(description="torch.optim.AdamW(foreach=False) + clip_grad_norm_(1.0) + RADLADS LR schedule, written by make_adamw.py",
               torch_version=torch.__version__, options=o, shapes=SHAPES, initial=initial, steps=steps)
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "adamw.json")
    with open(path, "w") as f:
        json.dump(out, f, indent=1)
    print(f"wrote {path}: {len(steps)} steps, torch {torch.__version__}")


if __name__ == "__main__":
    main()
