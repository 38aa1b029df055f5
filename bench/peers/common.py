"""Shared pieces of the PyTorch peers: shapes, CSV rows (the columns of `radlads bench`), timing, roofline, memory."""
import csv
import math
import time

import torch

# The columns of src/Radlads.Cli/Bench/BenchCsv.cs, in order. `radlads bench --report DIR` merges DIR/peers*.csv.
COLUMNS = [
    "source", "card", "backend", "arch", "shape", "measure", "context", "batch", "tokens", "ms_per_token", "tokens_per_s",
    "ttft_ms", "wall_s", "bytes_per_step", "roofline", "roofline_fraction", "weights_bytes", "state_bytes",
    "workspace_bytes", "peak_bytes", "status", "note",
]

# C, H, KVH, N, L, F, V, tied: spec §1 (the same table as SyntheticModel.Config).
SHAPES = {
    "tiny": (64, 2, 1, 32, 2, 128, 512, True),
    "0.5b": (896, 14, 2, 64, 24, 4864, 151936, True),
    "1.5b": (1536, 12, 2, 128, 28, 8960, 151936, True),
    "7b": (3584, 28, 4, 128, 28, 18944, 152064, False),
    "32b": (5120, 40, 8, 128, 64, 27648, 152064, False),
}

GIB = 1024.0 ** 3


def shape_name(text):
    s = text.strip().lower()
    s = s[len("qwen2.5-"):] if s.startswith("qwen2.5-") else s
    if s not in SHAPES:
        raise SystemExit(f"unknown shape '{text}' (known: {', '.join(SHAPES)}; the qwen2.5- prefix may be left out)")
    return s


def lengths(text):
    """'1k,4k,4096' -> [1024, 4096] (k = x1024), sorted, no duplicates."""
    out = set()
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        scale = 1024 if item[-1] in "kK" else 1
        digits = item[:-1] if scale > 1 else item
        if not digits.isdigit() or int(digits) <= 0:
            raise SystemExit(f"'{item}' is not a positive whole number of tokens")
        out.add(int(digits) * scale)
    if not out:
        raise SystemExit("give at least one length")
    return sorted(out)


def card():
    return torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"


def row(source, **fields):
    r = {c: "" for c in COLUMNS}
    r.update(source=source, card=card(), backend="torch", status="ok")
    for k, v in fields.items():
        if k not in r:
            raise KeyError(k)
        r[k] = "" if v is None else v
    return r


def write(path, rows):
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS, lineterminator="\n")
        w.writeheader()
        for r in rows:
            w.writerow({k: (repr(v) if isinstance(v, float) else v) for k, v in r.items()})


def sync():
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def wall_ms(fn):
    """Wall milliseconds of fn() with the device idle before and after."""
    sync()
    t = time.perf_counter()
    fn()
    sync()
    return (time.perf_counter() - t) * 1000


def free_bytes():
    if torch.cuda.is_available():
        free, total = torch.cuda.mem_get_info()
        return free, total
    return 1 << 62, 1 << 62


def does_not_fit(need, what):
    free, total = free_bytes()
    if need + (512 << 20) > free:
        return f"{what} need {(need + (512 << 20)) / GIB:.1f} GiB, the card has {free / GIB:.1f} GiB free of {total / GIB:.1f} GiB"
    return None


def reset_peak():
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def peak():
    return torch.cuda.max_memory_allocated() if torch.cuda.is_available() else None


def roofline_rows(quick):
    """Copy bandwidth (bytes read + written) and the bf16 GEMM rate of torch (cuBLAS) on this card."""
    dev = "cuda"
    n = (256 if quick else 1024) << 20
    a = torch.full((n // 4,), 1.5, dtype=torch.float32, device=dev)
    b = torch.empty_like(a)
    times = []
    for i in range(12):
        t = wall_ms(lambda: b.copy_(a))
        if i >= 2:
            times.append(t)
    ms = sorted(times)[len(times) // 2]
    copy = 2.0 * n / (ms / 1000)
    del a, b
    m, k, nn = (4096, 8192, 8192)
    x = torch.randn(m, k, dtype=torch.bfloat16, device=dev)
    w = torch.randn(nn, k, dtype=torch.bfloat16, device=dev)
    times = []
    for i in range(12):
        t = wall_ms(lambda: torch.matmul(x, w.t()))
        if i >= 2:
            times.append(t)
    ms = sorted(times)[len(times) // 2]
    gemm = 2.0 * m * nn * k / (ms / 1000)
    del x, w
    torch.cuda.empty_cache()
    return [
        row("torch", measure="roofline_copy", roofline=copy / 1e9, tokens=n, note="torch copy_ of fp32, GB/s (bytes read + written)"),
        row("torch", measure="roofline_gemm", roofline=gemm / 1e12, note=f"torch.matmul bf16 (cuBLAS) [{m}x{k}]x[{nn}x{k}]^T, TFLOP/s"),
    ], copy, gemm


def rope_tables(positions, head_dim, theta, device):
    """cos, sin [..., head_dim] for integer positions (a tensor), Qwen's rotate-half layout."""
    inv = 1.0 / (theta ** (torch.arange(0, head_dim, 2, device=device, dtype=torch.float32) / head_dim))
    f = positions.to(torch.float32)[..., None] * inv
    e = torch.cat([f, f], dim=-1)
    return e.cos(), e.sin()


def rotate(x, cos, sin):
    h = x.shape[-1] // 2
    r = torch.cat([-x[..., h:], x[..., :h]], dim=-1)
    return (x.float() * cos + r.float() * sin).to(x.dtype)


def isfinite(x):
    return bool(torch.isfinite(x).all()) if torch.is_tensor(x) else math.isfinite(x)
