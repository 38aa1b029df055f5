#!/usr/bin/env python3
"""Pretrain the demo teacher: a small Hugging Face Qwen2ForCausalLM, from scratch, on RDLSTOK1 token files.

    PYTHONUNBUFFERED=1 python3 models/demo/train_teacher.py \\
        --data .cache/tokens/demo --tokenizer models/demo/tokenizer --out /tmp/teacher [--minutes 6] [--seed 1337]

--data holds train.bin, validation.bin and test.bin, written by `radlads data tokenize` (format below).
--tokenizer holds tokenizer.json (+ tokenizer_config.json) from train_tokenizer.py; both are copied to --out.

What it does, in one process that fits one device call (default budget: 6 minutes of training, about
7 minutes in all on an H100):
  1. reads and checks the token files; builds the Qwen2 config (GQA, q/k/v biases, rope_theta 1e6, untied
     embeddings, rms_norm_eps 1e-6, vocab = tokenizer vocab rounded up to a multiple of 64);
  2. compiles the loss with torch.compile (falls back to eager if that fails), times a few throw-away steps
     (weights restored afterwards; they use their own random windows) and one validation pass, and sets
     the number of steps so that training ends --minutes after the script started (or takes --steps);
  3. trains: random 513-token windows of train.bin (documents separated by <|endoftext|>, nothing masked),
     AdamW (0.9, 0.95), weight decay on matrices only, linear warm-up then cosine to 10 %, bf16 autocast,
     gradient clipping 1.0; logs every N steps and evaluates validation loss on fixed windows;
  4. saves the Hugging Face folder (model.safetensors in bf16, config.json, generation_config.json,
     tokenizer files) to --out, reloads it with from_pretrained in float32 + eager attention, checks that
     every tensor came back bit-exact, and computes the test perplexity with the protocol of
     `radlads score --token-file test.bin --window 512 --max-windows 200` (below), both on the in-memory
     model and on the reloaded fp32 model;
  5. writes samples (3 greedy + 3 seeded sampled continuations), training_log.csv, loss_curve.png (when
     matplotlib exists), test_perplexity.json and training_summary.json.
On an exception, the traceback goes to --out/error.txt (the log written so far stays).

Test perplexity protocol: cut test.bin into consecutive non-overlapping 512-token windows from token 0
(drop the last partial window), take the first 200 (or all if fewer); run each window from a fresh state
(positions 0..511); score positions 1..511 (token t predicted from tokens < t of its window); perplexity =
exp(mean NLL over all scored tokens).

Token file format RDLSTOK1 (little-endian): bytes 0-7 "RDLSTOK1"; u32 version (1); u32 bytes per token
(2 = uint16, 4 = uint32); u64 token count; u32 vocabulary size; u32 document separator id; u64 document count;
zero padding to byte 64; then the tokens.

Reproducibility: everything is seeded (python, numpy, torch); the data order comes from numpy's PCG64.
The step count depends on the measured speed unless --steps is given: to rebuild the same model, pass
--steps with the value from training_summary.json. GPU kernels (flash attention backward, atomics) are not
bit-deterministic, so a rebuild matches closely, not bit for bit.

Needs python3 with torch, numpy, transformers, safetensors, tokenizers (the GPU machine has them).
"""

import time

T_START = time.time()  # the --minutes budget counts from here

import argparse  # noqa: E402
import contextlib  # noqa: E402
import csv  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import random  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import traceback  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

TOKEN_FILE_HEADER = 64
TOKEN_FILE_MAGIC = b"RDLSTOK1"
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]

PROMPTS = [
    "The history of the city",
    "Once upon a time, there was",
    "In the morning, the weather",
]

CSV_COLUMNS = ["step", "tokens", "train_loss", "val_loss", "lr", "tokens_per_s"]


def log(msg=""):
    print(f"[{time.time() - T_START:7.1f}s] {msg}", flush=True)


# ---------------------------------------------------------------------------------------------
# token files
# ---------------------------------------------------------------------------------------------

class TokenFile:
    """An RDLSTOK1 token file: header fields and the tokens as a read-only numpy memmap."""

    def __init__(self, path, tokens, bytes_per_token, vocab_size, separator_id, document_count):
        self.path = path
        self.tokens = tokens
        self.bytes_per_token = bytes_per_token
        self.vocab_size = vocab_size
        self.separator_id = separator_id
        self.document_count = document_count

    def __len__(self):
        return int(self.tokens.shape[0])

    def describe(self):
        return (f"{self.path}: {len(self):,} tokens, {self.document_count:,} documents, vocab {self.vocab_size}, "
                f"separator {self.separator_id}, {self.bytes_per_token} bytes/token")


def read_token_file(path, check_ids=True):
    """Opens and validates an RDLSTOK1 file; raises ValueError naming the file on any problem."""
    size = os.path.getsize(path)
    if size < TOKEN_FILE_HEADER:
        raise ValueError(f"{path}: {size} bytes, shorter than the {TOKEN_FILE_HEADER}-byte token-file header")
    with open(path, "rb") as f:
        head = f.read(TOKEN_FILE_HEADER)
    if head[:8] != TOKEN_FILE_MAGIC:
        raise ValueError(f"{path}: not a token file (starts with {head[:8]!r}, expected {TOKEN_FILE_MAGIC!r})")
    version, bpt = np.frombuffer(head, dtype="<u4", count=2, offset=8)
    count = int(np.frombuffer(head, dtype="<u8", count=1, offset=16)[0])
    vocab, sep = (int(x) for x in np.frombuffer(head, dtype="<u4", count=2, offset=24))
    docs = int(np.frombuffer(head, dtype="<u8", count=1, offset=32)[0])
    version, bpt = int(version), int(bpt)
    if version != 1:
        raise ValueError(f"{path}: token-file version {version} is not supported (expected 1)")
    if bpt not in (2, 4):
        raise ValueError(f"{path}: {bpt} bytes per token is not supported (expected 2 or 4)")
    if vocab == 0 or (bpt == 2 and vocab > 65536):
        raise ValueError(f"{path}: vocabulary size {vocab} is out of range for {bpt}-byte tokens")
    if sep >= vocab:
        raise ValueError(f"{path}: separator id {sep} is not below the vocabulary size {vocab}")
    if size != TOKEN_FILE_HEADER + count * bpt:
        raise ValueError(f"{path}: header says {count} tokens of {bpt} bytes ({TOKEN_FILE_HEADER + count * bpt} "
                         f"bytes with the header) but the file has {size} bytes")
    if docs > count:
        raise ValueError(f"{path}: header says {docs} documents but only {count} tokens")
    if count == 0:
        tokens = np.zeros(0, dtype="<u2" if bpt == 2 else "<u4")
    else:
        tokens = np.memmap(path, dtype="<u2" if bpt == 2 else "<u4", mode="r", offset=TOKEN_FILE_HEADER,
                           shape=(count,))
    tf = TokenFile(path, tokens, bpt, vocab, sep, docs)
    if check_ids and count:
        top = int(tokens.max())
        if top >= vocab:
            raise ValueError(f"{path}: token id {top} is not below the vocabulary size {vocab}")
        if int(tokens[-1]) != sep:
            raise ValueError(f"{path}: the last token is {int(tokens[-1])}, not the separator {sep}")
        n_sep = int(np.count_nonzero(tokens == sep))
        if n_sep < docs:
            raise ValueError(f"{path}: {n_sep} separators for {docs} documents")
    return tf


def read_tokenizer_info(folder):
    """Vocabulary size and special ids from tokenizer.json, read as JSON (no tokenizers library needed)."""
    path = os.path.join(folder, "tokenizer.json")
    with open(path, "r", encoding="utf-8") as f:
        tj = json.load(f)
    ids = dict(tj["model"]["vocab"].items())
    for t in tj.get("added_tokens", []):
        ids[t["content"]] = t["id"]
    missing = [s for s in SPECIALS if s not in ids]
    if missing:
        raise ValueError(f"{path}: special tokens {missing} are missing")
    return {"vocab_size": max(ids.values()) + 1, "ids": {s: ids[s] for s in SPECIALS}}


# ---------------------------------------------------------------------------------------------
# windows and losses
# ---------------------------------------------------------------------------------------------

def to_device_tokens(tf, device):
    return torch.from_numpy(np.asarray(tf.tokens, dtype=np.int64)).to(device)


def random_windows(data, starts, length):
    """data: 1-D long tensor on the device; starts: numpy int64 [B] -> [B, length] windows."""
    s = torch.from_numpy(starts).to(data.device)
    idx = s[:, None] + torch.arange(length, device=data.device)[None, :]
    return data[idx]


def evenly_spaced_windows(data, count, length):
    """The fixed validation set: `count` windows of `length` tokens spread evenly over the whole file."""
    n = int(data.shape[0])
    if n < length:
        raise ValueError(f"validation file has {n} tokens, fewer than one window of {length}")
    count = max(1, min(count, n // length))
    starts = np.linspace(0, n - length, count).round().astype(np.int64)
    return random_windows(data, starts, length)


def consecutive_windows(data, window, max_windows):
    """The test protocol: non-overlapping windows from token 0, last partial window dropped, first max_windows."""
    n = int(data.shape[0]) // window
    if max_windows:
        n = min(n, max_windows)
    if n == 0:
        raise ValueError(f"test file has {int(data.shape[0])} tokens, fewer than one window of {window}")
    return data[: n * window].view(n, window)


def lm_logits(model, input_ids):
    return model(input_ids=input_ids, use_cache=False).logits


@torch.no_grad()
def windows_nll(model, windows, batch, feed_full_window, autocast_ctx=None, f64=False, per_window=False):
    """Sum of NLL and count of scored tokens over windows [N, L].

    feed_full_window=False: input = window[:, :-1], targets = window[:, 1:] (L-1 scored, training eval).
    feed_full_window=True:  input = the whole window, logits[:, :-1] predict window[:, 1:] (the test protocol:
                            a fresh state per window, positions 1..L-1 scored, the last logits unused).
    """
    was_training = model.training
    model.eval()
    total, count, per = 0.0, 0, []
    for i in range(0, windows.shape[0], batch):
        w = windows[i:i + batch]
        inp = w if feed_full_window else w[:, :-1]
        with autocast_ctx() if autocast_ctx else contextlib.nullcontext():
            logits = lm_logits(model, inp)
        if feed_full_window:
            logits = logits[:, :-1]
        logits = logits.double() if f64 else logits.float()
        tgt = w[:, 1:]
        nll = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tgt.reshape(-1), reduction="none")
        nll = nll.view(tgt.shape).double()
        total += float(nll.sum())
        count += int(nll.numel())
        if per_window:
            per.extend(nll.mean(dim=1).tolist())
    if was_training:
        model.train()
    return (total, count, per) if per_window else (total, count)


def test_perplexity(model, windows, batch, autocast_ctx=None, f64=False):
    total, count, per = windows_nll(model, windows, batch, True, autocast_ctx, f64, per_window=True)
    mean = total / count
    return {"mean_nll": mean, "perplexity": math.exp(mean), "windows": int(windows.shape[0]),
            "scored_tokens": count, "per_window_mean_nll": per}


def lr_at(step, total, warmup, peak, final_frac):
    """Linear warm-up over `warmup` steps, then cosine from peak to final_frac * peak at the last step."""
    if step < warmup:
        return peak * (step + 1) / warmup
    if total <= warmup + 1:
        return peak
    p = (step - warmup) / (total - 1 - warmup)
    return peak * (final_frac + (1 - final_frac) * 0.5 * (1 + math.cos(math.pi * min(p, 1.0))))


# ---------------------------------------------------------------------------------------------
# model config
# ---------------------------------------------------------------------------------------------

def round_up(x, m):
    return (x + m - 1) // m * m


def make_config_dict(args, tok_vocab, ids):
    vocab = round_up(tok_vocab, 64)
    eot, im_end = ids["<|endoftext|>"], ids["<|im_end|>"]
    head_dim = args.hidden // args.heads
    if args.hidden % args.heads or args.heads % args.kv_heads or head_dim % 2:
        raise SystemExit(f"bad shape: hidden {args.hidden}, heads {args.heads}, kv heads {args.kv_heads}")
    if args.kv_heads >= args.heads:
        raise SystemExit("GQA wanted: --kv-heads must be smaller than --heads")
    return {
        "architectures": ["Qwen2ForCausalLM"],
        "model_type": "qwen2",
        "vocab_size": vocab,
        "hidden_size": args.hidden,
        "intermediate_size": args.intermediate,
        "num_hidden_layers": args.layers,
        "num_attention_heads": args.heads,
        "num_key_value_heads": args.kv_heads,
        "head_dim": head_dim,
        "hidden_act": "silu",
        "max_position_embeddings": 2048,
        "initializer_range": 0.02,
        "rms_norm_eps": 1e-6,
        "rope_theta": 1000000.0,
        "tie_word_embeddings": False,
        "attention_bias": True,
        "attention_dropout": 0.0,
        "use_cache": True,
        "bos_token_id": eot,
        "eos_token_id": [im_end, eot],
        "pad_token_id": eot,
        "torch_dtype": "bfloat16",
        "use_sliding_window": False,
        "sliding_window": None,
        "max_window_layers": args.layers,
        # transformers >= 5 reads RoPE from rope_parameters, older versions (and the C# runtime) from rope_theta
        "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0},
    }


def expected_param_count(c):
    C, I, L, V = c["hidden_size"], c["intermediate_size"], c["num_hidden_layers"], c["vocab_size"]
    hd = c["head_dim"]
    q, kv = c["num_attention_heads"] * hd, c["num_key_value_heads"] * hd
    attn = C * q + q + 2 * (C * kv + kv) + q * C  # q/k/v with bias, o without
    mlp = 3 * C * I
    per_layer = attn + mlp + 2 * C
    return V * C + L * per_layer + C + (0 if c["tie_word_embeddings"] else V * C)


def make_generation_config(c):
    eot = c["bos_token_id"]
    return {
        "bos_token_id": eot,
        "pad_token_id": eot,
        "eos_token_id": list(c["eos_token_id"]),
        "do_sample": True,
        "temperature": 0.7,
        "top_p": 0.8,
        "top_k": 20,
        "repetition_penalty": 1.05,
    }


def build_model(cfg_dict, attn_impl):
    from transformers import Qwen2Config, Qwen2ForCausalLM
    kw = {k: v for k, v in cfg_dict.items() if k not in ("architectures", "model_type", "torch_dtype")}
    config = None
    for extra in ({"attn_implementation": attn_impl}, {}):
        try:
            config = Qwen2Config(**kw, **extra)
            break
        except TypeError:
            continue
    if config is None:
        config = Qwen2Config(**kw)
    model = Qwen2ForCausalLM(config)
    err = check_rope(model, cfg_dict)
    if err:
        raise SystemExit(err)
    return model


def check_rope(model, c):
    """The RoPE frequencies the model really uses must follow rope_theta (transformers moved this setting).
    Returns None when they do (or no inv_freq buffer exists), else a message."""
    hd = c["head_dim"]
    want = 1.0 / (c["rope_theta"] ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd))
    found = None
    for name, buf in model.named_buffers():
        if name.endswith("inv_freq"):
            found = buf
            break
    if found is None:
        log("warning: no inv_freq buffer found; RoPE theta not checked")
        return None
    err = float((found.detach().double().cpu() - want).abs().max() / want.abs().max())
    if err > 1e-5:
        return f"the model's RoPE inv_freq does not match rope_theta {c['rope_theta']} (rel err {err:.2e})"
    return None


def load_pretrained_fp32(folder):
    """Qwen2ForCausalLM.from_pretrained(folder) in float32 with eager attention, across transformers versions
    (`dtype=` in 5.x, `torch_dtype=` before). Returns (model, loading_info dict)."""
    from transformers import Qwen2ForCausalLM
    attempts = [dict(dtype=torch.float32, output_loading_info=True),
                dict(torch_dtype=torch.float32, output_loading_info=True),
                dict(torch_dtype=torch.float32)]
    last = None
    for kw in attempts:
        try:
            res = Qwen2ForCausalLM.from_pretrained(folder, attn_implementation="eager", **kw)
            break
        except TypeError as e:
            last = e
    else:
        raise last
    model, info = res if isinstance(res, tuple) else (res, {})
    if any(p.dtype != torch.float32 for p in model.parameters()):
        log("note: from_pretrained did not give float32 parameters; converting")
        model = model.float()
    impl = getattr(model.config, "_attn_implementation", None)
    info = {k: sorted(map(str, v)) if isinstance(v, (list, set, tuple)) else str(v) for k, v in info.items()}
    info["attn_implementation"] = impl
    return model, info


# ---------------------------------------------------------------------------------------------
# generation (plain loop: full recompute per token, no KV cache, same on every transformers version)
# ---------------------------------------------------------------------------------------------

@torch.no_grad()
def generate(model, prompt_ids, max_new, stop_ids, greedy, gen=None, temperature=0.8, top_k=40):
    device = next(model.parameters()).device
    ids = list(prompt_ids)
    out = []
    for _ in range(max_new):
        logits = lm_logits(model, torch.tensor([ids], device=device))[0, -1].float().cpu()
        if greedy:
            nxt = int(torch.argmax(logits))
        else:
            logits = logits / temperature
            if top_k and top_k < logits.shape[0]:
                kth = torch.topk(logits, top_k).values[-1]
                logits = logits.masked_fill(logits < kth, float("-inf"))
            probs = torch.softmax(logits.double(), dim=-1)
            nxt = int(torch.multinomial(probs, 1, generator=gen))
        out.append(nxt)
        ids.append(nxt)
        if nxt in stop_ids:
            break
    return out


# ---------------------------------------------------------------------------------------------
# misc
# ---------------------------------------------------------------------------------------------

def seed_everything(seed):
    random.seed(seed)
    np.random.seed(seed % (2 ** 32))
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False


def set_fp32_precision_highest():
    """No TF32 for float32 matmuls (the PyTorch default, made explicit): the fp32 reference perplexity must be
    real fp32. Only the long-standing API is used; mixing it with torch >= 2.9's fp32_precision API can raise."""
    with contextlib.suppress(Exception):
        torch.set_float32_matmul_precision("highest")


def write_json(path, obj):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2, ensure_ascii=False)
        f.write("\n")


def versions():
    v = {"python": sys.version.split()[0], "torch": torch.__version__, "numpy": np.__version__,
         "cuda": torch.version.cuda, "platform": platform.platform()}
    for name in ("transformers", "tokenizers", "safetensors", "matplotlib"):
        try:
            v[name] = __import__(name).__version__
        except Exception:
            v[name] = None
    with contextlib.suppress(Exception):
        v["cudnn"] = torch.backends.cudnn.version()
    return v


def device_name(device):
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)"


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def plot_losses(rows, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except Exception as e:  # matplotlib is optional
        log(f"no loss-curve PNG (matplotlib unavailable: {type(e).__name__})")
        return False
    tr = [(r["tokens"] / 1e6, r["train_loss"]) for r in rows if r["train_loss"] is not None]
    va = [(r["tokens"] / 1e6, r["val_loss"]) for r in rows if r["val_loss"] is not None]
    fig, ax = plt.subplots(figsize=(8, 5), dpi=110)
    if tr:
        ax.plot(*zip(*tr), label="train loss", lw=1)
    if va:
        ax.plot(*zip(*va), "o-", label="validation loss", ms=3)
    ax.set_xlabel("tokens (millions)")
    ax.set_ylabel("cross-entropy (nats/token)")
    ax.set_title("demo teacher (Qwen2) pretraining")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


def fmt(x, nd=4):
    return "" if x is None else (f"{x:.{nd}f}" if isinstance(x, float) else str(x))


# ---------------------------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------------------------

def parse_args(argv=None):
    ap = argparse.ArgumentParser(description="Pretrain the Radlads demo teacher (Qwen2ForCausalLM).")
    ap.add_argument("--data", required=True, help="folder with train.bin, validation.bin, test.bin (RDLSTOK1)")
    ap.add_argument("--tokenizer", required=True, help="folder with tokenizer.json (+ tokenizer_config.json)")
    ap.add_argument("--out", required=True, help="output folder (Hugging Face layout + logs)")
    ap.add_argument("--minutes", type=float, default=6.0,
                    help="training ends this long after the script starts (compile, timing and evals included)")
    ap.add_argument("--steps", type=int, default=0, help="fixed step count (reproduction); 0 = from --minutes")
    ap.add_argument("--seed", type=int, default=1337)
    # model shape
    ap.add_argument("--hidden", type=int, default=384)
    ap.add_argument("--layers", type=int, default=8)
    ap.add_argument("--heads", type=int, default=6)
    ap.add_argument("--kv-heads", type=int, default=2)
    ap.add_argument("--intermediate", type=int, default=1024)
    # optimisation
    ap.add_argument("--batch", type=int, default=64, help="sequences per step")
    ap.add_argument("--seq", type=int, default=512, help="tokens per training sequence (windows are seq+1)")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--final-lr-frac", type=float, default=0.1)
    ap.add_argument("--warmup-frac", type=float, default=0.02)
    ap.add_argument("--weight-decay", type=float, default=0.1)
    ap.add_argument("--grad-clip", type=float, default=1.0)
    ap.add_argument("--max-epochs", type=float, default=8.0,
                    help="cap on tokens seen / train tokens (a small corpus overfits); 0 = no cap")
    ap.add_argument("--keep-best", type=int, default=1,
                    help="1: save the weights of the best validation evaluation if the last one is worse")
    ap.add_argument("--compile", choices=["auto", "yes", "no"], default="auto",
                    help="torch.compile the loss: auto = on CUDA only; falls back to eager if it fails")
    ap.add_argument("--attn", default="sdpa", help="attention implementation for training (sdpa or eager)")
    # logging / eval
    ap.add_argument("--log-every", type=int, default=0, help="0 = about 200 log rows")
    ap.add_argument("--evals", type=int, default=10, help="validation evaluations during training (plus step 0)")
    ap.add_argument("--val-windows", type=int, default=128)
    ap.add_argument("--eval-batch", type=int, default=32)
    ap.add_argument("--timing-steps", type=int, default=20, help="timed throw-away steps after the compile steps")
    ap.add_argument("--test-window", type=int, default=512)
    ap.add_argument("--test-max-windows", type=int, default=200)
    ap.add_argument("--sample-tokens", type=int, default=60)
    ap.add_argument("--device", default=None, help="cuda / cpu (default: cuda when available)")
    ap.add_argument("--max-checkpoint-mb", type=float, default=40.0)
    return ap.parse_args(argv)


def main(args):
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(line_buffering=True)
    os.makedirs(args.out, exist_ok=True)
    deadline = T_START + args.minutes * 60.0
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    seed_everything(args.seed)
    set_fp32_precision_highest()
    vers = versions()
    log(f"device {device_name(device)}; torch {vers['torch']}, transformers {vers['transformers']}, "
        f"numpy {vers['numpy']}")

    # ---- data and tokenizer ------------------------------------------------------------------
    tok = read_tokenizer_info(args.tokenizer)
    files = {}
    for split in ("train", "validation", "test"):
        files[split] = read_token_file(os.path.join(args.data, f"{split}.bin"))
        log(files[split].describe())
        if files[split].separator_id != tok["ids"]["<|endoftext|>"]:
            raise SystemExit(f"{files[split].path}: separator {files[split].separator_id} is not the tokenizer's "
                             f"<|endoftext|> id {tok['ids']['<|endoftext|>']}")
        if files[split].vocab_size > tok["vocab_size"]:
            raise SystemExit(f"{files[split].path}: vocabulary {files[split].vocab_size} is larger than the "
                             f"tokenizer's {tok['vocab_size']} (another tokenizer?)")
    if len(files["train"]) < args.seq + 1:
        raise SystemExit("train.bin is shorter than one training window")
    train = to_device_tokens(files["train"], device)
    val_windows = evenly_spaced_windows(to_device_tokens(files["validation"], device), args.val_windows, args.seq + 1)
    test_windows = consecutive_windows(to_device_tokens(files["test"], device), args.test_window,
                                       args.test_max_windows)
    n_train = len(files["train"])
    log(f"validation set: {val_windows.shape[0]} windows of {args.seq + 1}; test: {test_windows.shape[0]} "
        f"windows of {args.test_window}")

    # ---- model -------------------------------------------------------------------------------
    cfg = make_config_dict(args, tok["vocab_size"], tok["ids"])
    torch.manual_seed(args.seed)
    model = build_model(cfg, args.attn)  # built on the CPU (seeded), then moved
    n_params = sum(p.numel() for p in model.parameters())
    expect = expected_param_count(cfg)
    if n_params != expect:
        raise SystemExit(f"parameter count {n_params:,} differs from the expected {expect:,} (config not applied?)")
    ckpt_mb = n_params * 2 / 1e6
    log(f"Qwen2: hidden {cfg['hidden_size']}, {cfg['num_hidden_layers']} layers, {cfg['num_attention_heads']} "
        f"heads x {cfg['head_dim']} ({cfg['num_key_value_heads']} KV heads), MLP {cfg['intermediate_size']}, "
        f"vocab {cfg['vocab_size']} -> {n_params:,} parameters, bf16 checkpoint ~{ckpt_mb:.1f} MB "
        f"(attention: {getattr(model.config, '_attn_implementation', '?')})")
    if ckpt_mb > args.max_checkpoint_mb:
        log(f"WARNING: the bf16 checkpoint (~{ckpt_mb:.1f} MB) is over {args.max_checkpoint_mb} MB")
    model.to(device)
    model.train()

    amp_dtype = torch.bfloat16

    def autocast():
        return torch.autocast(device_type=device.type, dtype=amp_dtype)

    vocab = cfg["vocab_size"]

    def loss_fn(x, y):
        logits = lm_logits(model, x)
        return F.cross_entropy(logits.float().reshape(-1, vocab), y.reshape(-1))

    compiled = False
    compile_error = None
    step_fn = loss_fn
    want_compile = args.compile == "yes" or (args.compile == "auto" and device.type == "cuda")
    if want_compile and not hasattr(torch, "compile"):
        compile_error = f"torch {torch.__version__} has no torch.compile"
    elif want_compile:
        try:
            step_fn = torch.compile(loss_fn)
            compiled = True
        except Exception as e:  # compile errors usually surface at the first call; see below
            compile_error = f"{type(e).__name__}: {e}"
            step_fn = loss_fn

    def make_optimizer(lr):
        decay = [p for p in model.parameters() if p.ndim >= 2]
        no_decay = [p for p in model.parameters() if p.ndim < 2]
        groups = [{"params": decay, "weight_decay": args.weight_decay},
                  {"params": no_decay, "weight_decay": 0.0}]
        if device.type == "cuda":
            with contextlib.suppress(TypeError, RuntimeError):
                return torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.95), eps=1e-8, fused=True), "fused"
        return torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.95), eps=1e-8), "default"

    def train_step(opt, x, y, lr):
        for g in opt.param_groups:
            g["lr"] = lr
        with autocast():
            loss = step_fn(x, y)
        loss.backward()
        gnorm = torch.nn.utils.clip_grad_norm_(model.parameters(), args.grad_clip)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss.detach(), gnorm.detach()

    # ---- warm-up / timing (throw-away: weights restored, own RNG) -------------------------------
    initial = {k: v.detach().clone() for k, v in model.state_dict().items()}
    warm_rng = np.random.Generator(np.random.PCG64(args.seed + 7919))
    hi = n_train - (args.seq + 1) + 1

    def warm_batch():
        w = random_windows(train, warm_rng.integers(0, hi, size=args.batch), args.seq + 1)
        return w[:, :-1], w[:, 1:]

    opt, opt_kind = make_optimizer(args.lr * 0.01)
    t_c = time.time()
    n_compile_steps = 3
    for i in range(n_compile_steps):
        x, y = warm_batch()
        try:
            loss, _ = train_step(opt, x, y, args.lr * 0.01)
            sync(device)
        except Exception as e:
            if not compiled:
                raise
            compile_error = f"{type(e).__name__}: {str(e)[:2000]}"
            log(f"torch.compile failed, falling back to eager: {compile_error[:300]}")
            compiled = False
            step_fn = loss_fn
            opt.zero_grad(set_to_none=True)
            loss, _ = train_step(opt, x, y, args.lr * 0.01)
            sync(device)
    compile_s = time.time() - t_c
    log(f"first {n_compile_steps} steps (compile={'yes' if compiled else 'no'}, optimizer {opt_kind}) took "
        f"{compile_s:.1f} s; loss {float(loss):.3f}")
    sync(device)
    t_m = time.time()
    for i in range(args.timing_steps):
        x, y = warm_batch()
        train_step(opt, x, y, args.lr * 0.01)
    sync(device)
    step_s = (time.time() - t_m) / max(args.timing_steps, 1)
    model.load_state_dict(initial)
    del opt, initial
    if device.type == "cuda":
        torch.cuda.empty_cache()

    # step-0 validation (timed: sets the eval cost in the budget)
    t_e = time.time()
    vt, vc = windows_nll(model, val_windows, args.eval_batch, False, autocast)
    sync(device)
    eval_s = time.time() - t_e
    val0 = vt / vc
    tokens_per_step = args.batch * args.seq
    log(f"measured {step_s * 1000:.1f} ms/step ({tokens_per_step / step_s:,.0f} tokens/s), validation pass "
        f"{eval_s:.2f} s; step-0 val loss {val0:.4f} (ln V = {math.log(vocab):.4f})")

    # ---- number of steps ----------------------------------------------------------------------
    remaining = deadline - time.time()
    margin = 3.0 + 0.01 * args.minutes * 60
    budget_steps = int((remaining - margin - (args.evals + 2) * eval_s) / (step_s * 1.02))
    cap_steps = int(args.max_epochs * n_train / tokens_per_step) if args.max_epochs > 0 else None
    if args.steps > 0:
        steps, steps_from = args.steps, "--steps"
        if steps > budget_steps:
            log(f"WARNING: --steps {steps} is more than the ~{budget_steps} steps that fit in --minutes; "
                f"the hard stop at the deadline may cut it short")
    else:
        steps, steps_from = budget_steps, "--minutes"
        if cap_steps is not None and cap_steps < steps:
            steps, steps_from = cap_steps, f"--max-epochs {args.max_epochs}"
    steps = max(steps, 1)
    steps_initial = steps
    warmup = max(1, int(round(args.warmup_frac * steps)))
    log_every = args.log_every or max(1, steps // 200)
    eval_every = max(1, steps // max(args.evals, 1))
    log(f"plan: {steps} steps (from {steps_from}; budget allows {budget_steps}), {steps * tokens_per_step:,} "
        f"tokens = {steps * tokens_per_step / n_train:.2f} epochs of train.bin; warm-up {warmup}, "
        f"log every {log_every}, eval every {eval_every}")

    # ---- training -----------------------------------------------------------------------------
    data_rng = np.random.Generator(np.random.PCG64(args.seed))
    opt, _ = make_optimizer(args.lr)
    rows = [{"step": 0, "tokens": 0, "train_loss": None, "val_loss": val0, "lr": 0.0, "tokens_per_s": None}]
    csv_path = os.path.join(args.out, "training_log.csv")
    csv_file = open(csv_path, "w", newline="", encoding="utf-8")
    writer = csv.writer(csv_file)
    writer.writerow(CSV_COLUMNS)

    def write_row(r):
        writer.writerow([r["step"], r["tokens"], fmt(r["train_loss"]), fmt(r["val_loss"]), f"{r['lr']:.6g}",
                         fmt(r["tokens_per_s"], 0)])
        csv_file.flush()

    write_row(rows[0])
    best = {"val": val0, "step": 0, "state": None}
    loss_acc = torch.zeros((), device=device, dtype=torch.float64)
    n_acc = 0
    gnorm = torch.zeros(())
    t_train0 = time.time()
    t_row = time.time()
    row_tokens = 0
    done = 0
    stopped_early = False
    eval_total_s = 0.0
    evals_done = 0
    replans = []
    # Re-plan points (budget mode only): at 5 % and 50 % of the steps, the real speed of the loop replaces the
    # estimate from the timing steps when they differ by more than 1 %. This moves the cosine end a little;
    # the learning rate changes by well under 1 % of its peak at those points.
    replan_at = sorted({max(warmup, steps // 20), steps // 2}) if args.steps <= 0 and steps >= 100 else []
    while done < steps:
        step = done
        if time.time() > deadline + 20:
            stopped_early = True
            log(f"WARNING: hard stop at step {step}/{steps}: past the --minutes deadline")
            break
        lr = lr_at(step, steps, warmup, args.lr, args.final_lr_frac)
        w = random_windows(train, data_rng.integers(0, hi, size=args.batch), args.seq + 1)
        loss, gnorm = train_step(opt, w[:, :-1], w[:, 1:], lr)
        loss_acc += loss.double()
        n_acc += 1
        row_tokens += tokens_per_step
        done = step + 1
        if replan_at and done == replan_at[0]:
            replan_at.pop(0)
            sync(device)
            now = time.time()
            per_step = (now - t_train0 - eval_total_s) / done
            per_eval = eval_total_s / evals_done if evals_done else eval_s
            left_evals = (steps - done) // eval_every + 2
            fit = done + int((deadline - now - margin - left_evals * per_eval) / (per_step * 1.01))
            new_steps = max(done + 1, min(fit, cap_steps) if cap_steps is not None else fit)
            if abs(new_steps - steps) > 0.01 * steps:
                log(f"re-plan at step {done}: {per_step * 1000:.1f} ms/step in the loop (timing said "
                    f"{step_s * 1000:.1f}); steps {steps} -> {new_steps}")
                replans.append({"at_step": done, "from": steps, "to": new_steps, "loop_step_s": per_step})
                steps = new_steps
                log_every = args.log_every or max(1, steps // 200)
                eval_every = max(1, steps // max(args.evals, 1))
                replan_at = [r for r in replan_at if r < steps]
        is_log = done % log_every == 0 or done == steps
        is_eval = (done % eval_every == 0 and steps - done >= eval_every // 2) or done == steps
        if not (is_log or is_eval):
            continue
        train_loss = float(loss_acc) / n_acc  # syncs
        tps = row_tokens / max(time.time() - t_row, 1e-9)
        val = None
        if is_eval:
            t_e = time.time()
            vt, vc = windows_nll(model, val_windows, args.eval_batch, False, autocast)
            val = vt / vc
            if val < best["val"]:
                best = {"val": val, "step": done,
                        "state": ({k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
                                  if args.keep_best else None)}
            eval_total_s += time.time() - t_e
            evals_done += 1
        r = {"step": done, "tokens": done * tokens_per_step, "train_loss": train_loss, "val_loss": val, "lr": lr,
             "tokens_per_s": tps}
        rows.append(r)
        write_row(r)
        msg = (f"step {done:6d}/{steps} tokens {done * tokens_per_step / 1e6:8.2f}M loss {train_loss:.4f} "
               f"lr {lr:.2e} gnorm {float(gnorm):.2f} {tps:,.0f} tok/s")
        if val is not None:
            msg += f" | val {val:.4f} ppl {math.exp(val):.2f}"
        log(msg)
        loss_acc.zero_()
        n_acc = 0
        row_tokens = 0
        t_row = time.time()
    sync(device)
    train_s = time.time() - t_train0
    if stopped_early or rows[-1]["val_loss"] is None:
        vt, vc = windows_nll(model, val_windows, args.eval_batch, False, autocast)
        r = {"step": done, "tokens": done * tokens_per_step, "train_loss": None, "val_loss": vt / vc, "lr": 0.0,
             "tokens_per_s": None}
        rows.append(r)
        write_row(r)
    csv_file.close()
    last_val = rows[-1]["val_loss"]
    restored = None
    if args.keep_best and best["state"] is not None and best["val"] < last_val - 1e-4:
        model.load_state_dict({k: v.to(device) for k, v in best["state"].items()})
        restored = best["step"]
        log(f"validation got worse at the end ({last_val:.4f} > {best['val']:.4f} at step {best['step']}): "
            f"saving the weights of step {best['step']}; consider a lower --max-epochs")
    best.pop("state", None)
    vt, vc = windows_nll(model, val_windows, args.eval_batch, False, autocast)
    saved_val = vt / vc
    log(f"training done: {done} steps, {done * tokens_per_step:,} tokens, {train_s:.1f} s; saved model's "
        f"val loss {saved_val:.4f} (ppl {math.exp(saved_val):.3f})")

    # ---- test perplexity on the in-memory model -------------------------------------------------
    model.eval()
    ppl_mem_fp32 = test_perplexity(model, test_windows, args.eval_batch, None, f64=True)
    ppl_mem_bf16 = test_perplexity(model, test_windows, args.eval_batch, autocast, f64=True)
    log(f"test perplexity, in memory (fp32 weights, {getattr(model.config, '_attn_implementation', '?')}): "
        f"{ppl_mem_fp32['perplexity']:.4f}; with bf16 autocast: {ppl_mem_bf16['perplexity']:.4f} "
        f"({ppl_mem_fp32['windows']} windows, {ppl_mem_fp32['scored_tokens']} scored tokens)")

    # ---- save the Hugging Face folder ------------------------------------------------------------
    from safetensors.torch import save_file
    state = {}
    for name, t in model.state_dict().items():
        if "rotary_emb" in name or name.endswith("inv_freq"):
            continue
        state[name] = t.detach().to(device="cpu", dtype=torch.bfloat16).contiguous()
    st_path = os.path.join(args.out, "model.safetensors")
    save_file(state, st_path, metadata={"format": "pt"})
    cfg_out = dict(cfg)
    cfg_out["transformers_version"] = vers["transformers"]
    write_json(os.path.join(args.out, "config.json"), cfg_out)
    write_json(os.path.join(args.out, "generation_config.json"), make_generation_config(cfg))
    for name in ("tokenizer.json", "tokenizer_config.json"):
        src = os.path.join(args.tokenizer, name)
        if os.path.isfile(src):
            shutil.copyfile(src, os.path.join(args.out, name))
        else:
            log(f"warning: {src} not found, not copied")
    st_bytes = os.path.getsize(st_path)
    log(f"saved {st_path}: {st_bytes / 1e6:.2f} MB ({len(state)} tensors, bf16)")

    # ---- reload in fp32 + eager, compare, test perplexity ---------------------------------------
    reloaded, load_info = load_pretrained_fp32(args.out)
    reloaded.to(device).eval()
    problems = []
    for k in ("missing_keys", "unexpected_keys", "mismatched_keys", "error_msgs"):
        if load_info.get(k):
            problems.append(f"{k}: {load_info[k]}")
    rsd = reloaded.state_dict()
    for name, t in state.items():
        if name not in rsd:
            problems.append(f"{name} missing after reload")
        elif not torch.equal(rsd[name].detach().cpu(), t.float()):
            problems.append(f"{name} differs after reload")
    if load_info.get("attn_implementation") not in (None, "eager"):
        problems.append(f"reloaded attention implementation is {load_info['attn_implementation']}, not eager")
    rope_err = check_rope(reloaded, cfg)
    if rope_err:
        problems.append(rope_err)
    for p in problems:
        log(f"RELOAD PROBLEM: {p}")
    ppl_reload = test_perplexity(reloaded, test_windows, args.eval_batch, None, f64=True)
    rel = ppl_reload["perplexity"] / ppl_mem_fp32["perplexity"] - 1
    log(f"test perplexity, reloaded bf16 checkpoint in fp32 + eager: {ppl_reload['perplexity']:.4f} "
        f"(mean NLL {ppl_reload['mean_nll']:.6f}; {rel * 100:+.3f} % vs in-memory fp32)")
    write_json(os.path.join(args.out, "test_perplexity.json"), {
        "protocol": (f"test.bin cut into consecutive non-overlapping {args.test_window}-token windows from token 0, "
                     f"last partial window dropped, first {args.test_max_windows}; each window from a fresh state; "
                     f"positions 1..{args.test_window - 1} scored; perplexity = exp(mean NLL)"),
        "radlads_command": (f"radlads score --model <out> --token-file test.bin --window {args.test_window} "
                            f"--max-windows {args.test_max_windows}"),
        "reloaded_fp32_eager": ppl_reload,
        "in_memory_fp32": ppl_mem_fp32,
        "in_memory_bf16_autocast": ppl_mem_bf16,
    })

    # ---- samples --------------------------------------------------------------------------------
    samples = []
    try:
        from tokenizers import Tokenizer
        tk = Tokenizer.from_file(os.path.join(args.out, "tokenizer.json"))
        stop = set(cfg["eos_token_id"])
        gen = torch.Generator().manual_seed(args.seed)
        for mode in ("greedy", "sampled"):
            for prompt in PROMPTS:
                pid = tk.encode(prompt, add_special_tokens=False).ids
                new = generate(reloaded, pid, args.sample_tokens, stop, mode == "greedy", gen)
                samples.append({"mode": mode, "prompt": prompt, "prompt_ids": pid, "new_ids": new,
                                "continuation": tk.decode(new, skip_special_tokens=False)})
        with open(os.path.join(args.out, "samples.txt"), "w", encoding="utf-8") as f:
            f.write(f"Demo teacher samples: reloaded bf16 checkpoint in fp32; greedy = argmax; sampled = "
                    f"temperature 0.8, top-k 40, torch.Generator seed {args.seed}; at most {args.sample_tokens} "
                    f"new tokens, stop at {sorted(stop)}.\n")
            for s in samples:
                f.write(f"\n=== {s['mode']} | prompt: {s['prompt']!r}\n{s['prompt']}{s['continuation']}\n")
        write_json(os.path.join(args.out, "samples.json"), samples)
        for s in samples:
            log(f"{s['mode']:7s} {s['prompt']!r} -> {s['continuation']!r}")
    except Exception as e:
        log(f"samples failed: {type(e).__name__}: {e}")
        samples = [{"error": f"{type(e).__name__}: {e}"}]

    # ---- optional: transformers' own tokenizer loads the folder ----------------------------------
    hf_tok = None
    try:
        from transformers import AutoTokenizer
        at = AutoTokenizer.from_pretrained(args.out)
        from tokenizers import Tokenizer
        tk = Tokenizer.from_file(os.path.join(args.out, "tokenizer.json"))
        probe = "Hello world! It's 3.14 <|im_end|>\n"
        same = at.encode(probe, add_special_tokens=False) == tk.encode(probe, add_special_tokens=False).ids
        chat = at.apply_chat_template([{"role": "user", "content": "Hi"}], tokenize=False, add_generation_prompt=True)
        hf_tok = {"class": type(at).__name__, "same_ids_as_tokenizers": same, "chat_template_output": chat}
    except Exception as e:
        hf_tok = {"error": f"{type(e).__name__}: {str(e)[:500]}"}
    log(f"AutoTokenizer check: {hf_tok}")

    # ---- plot + summary -------------------------------------------------------------------------
    plotted = plot_losses(rows, os.path.join(args.out, "loss_curve.png"))
    summary = {
        "model": "Radlads demo teacher: Qwen2ForCausalLM pretrained from scratch",
        "config": cfg,
        "parameters": n_params,
        "checkpoint_bytes": st_bytes,
        "seed": args.seed,
        "args": vars(args),
        "device": device_name(device),
        "versions": vers,
        "compiled": compiled,
        "compile_error": compile_error,
        "optimizer": f"AdamW ({opt_kind}) betas (0.9, 0.95) eps 1e-8, weight decay {args.weight_decay} on matrices",
        "schedule": {"peak_lr": args.lr, "warmup_steps": warmup, "final_lr_frac": args.final_lr_frac,
                     "cosine": True},
        "batch_sequences": args.batch,
        "sequence_tokens": args.seq,
        "tokens_per_step": tokens_per_step,
        "steps_planned_initially": steps_initial,
        "steps_planned": steps,
        "steps_from": steps_from,
        "steps_budget_allowed": budget_steps,
        "steps": done,
        "replans": replans,
        "stopped_early": stopped_early,
        "tokens": done * tokens_per_step,
        "epochs": done * tokens_per_step / n_train,
        "measured_step_s": step_s,
        "measured_eval_s": eval_s,
        "compile_and_first_steps_s": compile_s,
        "train_loop_s": train_s,
        "data": {s: {"tokens": len(f), "documents": f.document_count, "vocab_size": f.vocab_size,
                     "separator_id": f.separator_id} for s, f in files.items()},
        "validation_windows": int(val_windows.shape[0]),
        "step0_val_loss": val0,
        "last_eval_val_loss": last_val,
        "best_eval": best,
        "restored_best_step": restored,
        "final_val_loss": saved_val,
        "final_val_perplexity": math.exp(saved_val),
        "final_train_loss": next((r["train_loss"] for r in reversed(rows) if r["train_loss"] is not None), None),
        "test_perplexity_in_memory_fp32": ppl_mem_fp32["perplexity"],
        "test_perplexity_in_memory_bf16_autocast": ppl_mem_bf16["perplexity"],
        "test_perplexity_reloaded_fp32_eager": ppl_reload["perplexity"],
        "test_mean_nll_reloaded_fp32_eager": ppl_reload["mean_nll"],
        "test_windows": ppl_reload["windows"],
        "test_scored_tokens": ppl_reload["scored_tokens"],
        "reload_problems": problems,
        "reload_info": load_info,
        "hf_autotokenizer": hf_tok,
        "loss_curve_png": plotted,
        "wall_time_s": time.time() - T_START,
    }
    write_json(os.path.join(args.out, "training_summary.json"), summary)
    log(f"params {n_params:,}; checkpoint {st_bytes / 1e6:.2f} MB; {done} steps, {done * tokens_per_step:,} tokens; "
        f"final val loss {saved_val:.4f} (ppl {math.exp(saved_val):.3f})")
    log(f"TEST PERPLEXITY in memory fp32 {ppl_mem_fp32['perplexity']:.4f} | reloaded fp32 eager "
        f"{ppl_reload['perplexity']:.4f}  <- the number radlads score must reproduce within 1 %")
    log(f"wrote {args.out}: " + ", ".join(sorted(os.listdir(args.out))))
    if problems:
        raise SystemExit(f"{len(problems)} reload problem(s), see above")


if __name__ == "__main__":
    _args = parse_args()
    try:
        main(_args)
    except BaseException:
        with contextlib.suppress(Exception):
            os.makedirs(_args.out, exist_ok=True)
            with open(os.path.join(_args.out, "error.txt"), "w", encoding="utf-8") as _f:
                _f.write(traceback.format_exc())
        raise
