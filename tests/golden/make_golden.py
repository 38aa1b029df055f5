#!/usr/bin/env python3
"""Generate the Radlads golden fixtures (tiny random checkpoints + float64 reference logits).

    cd tests/golden && PYTHONUNBUFFERED=1 python3 make_golden.py --out /tmp/g

Needs python3 with torch, numpy, safetensors, tokenizers and transformers (the device image has
them; see README.md for the exact command). Everything is seeded; the script is CPU-only.

Writes into --out:
    tokenizer.json                 tiny byte-level BPE (384 ids), trained on tokenizer-train.txt
    tokenizer-cases.json           a few strings with their ids (for tokenizer tests)
    summary.json                   max |logit|, self-check results, decay-clamp fraction, versions
    <fixture>/config.json, generation_config.json, tokenizer.json, model.safetensors (all bf16),
              golden.json ({"tokens", "description", "max_abs_logit", ...}), logits.npy [24, 400] f64

Reference logits are computed in float64 from the bf16 weights read back from model.safetensors:
qwen2 / qwen2-tied by Hugging Face transformers' Qwen2ForCausalLM (eager attention; its fixed
float32 casts in RMSNorm, softmax and the RoPE tables are lifted to float64, see README.md),
the RWKV fixtures by rad_rwkv_reference.py (a plain per-token float64 implementation of the spec).
"""

import argparse
import contextlib
import json
import math
import os
import random
import sys
import types
import unicodedata

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from rad_rwkv_reference import RefModel  # noqa: E402

F64 = torch.float64

# ---------------------------------------------------------------------------------------------
# common shape
# ---------------------------------------------------------------------------------------------
C, H, KVH, L, FF, V = 64, 4, 2, 3, 160, 400
N = C // H
T_TOKENS = 24
TOKENIZER_VOCAB = 384                  # 381 byte-level BPE ids + 3 added special tokens
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]

QWEN2_PRETOKENIZE_REGEX = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
    r"\s*[\r\n]+|\s+(?!\S)|\s+"
)

FIXTURES = [
    dict(name="qwen2", kind="qwen2", seed=1001, tied=False, rope_theta=1e6, eps=1e-6,
         text="The river starts in the hills as a thin line of water.",
         description="Qwen2 teacher, untied lm_head, rope_theta 1e6, rms_norm_eps 1e-6, GQA 4/2. "
                     "Reference: HF transformers Qwen2ForCausalLM (eager) in float64."),
    dict(name="qwen2-tied", kind="qwen2", seed=1002, tied=True, rope_theta=10000.0, eps=1e-5,
         text="Bread is made on Saturdays with flour, water and salt.",
         description="Qwen2 teacher, tie_word_embeddings true (no lm_head.weight), rope_theta 1e4, "
                     "rms_norm_eps 1e-5. Reference: HF transformers Qwen2ForCausalLM (eager) in float64."),
    dict(name="rwkv6", kind="rwkv6", seed=1003, tied=False, rope_theta=1e6, eps=1e-6,
         use_rope=False, use_tokenshift=True, gate_rank_type=1, balance_state=True,
         groupnorm_att=False, Rm=8, Rd=12, Rg=None,
         text="The 7:42 to the city is the train everybody complains about.",
         description="RAD-RWKV6 as released: ddlerp token shift (LoRA order r,k,v,w,g, Rm=8), decay "
                     "LoRA Rd=12 with the -5 log-decay clamp active on some channels, full-rank "
                     "sigmoid gate, k*(1-w) balancing, no RoPE, no GroupNorm. config lora_rank_* are "
                     "deliberately wrong (32/64): read ranks from shapes."),
    dict(name="rwkv6-rope", kind="rwkv6", seed=1004, tied=False, rope_theta=10000.0, eps=1e-6,
         use_rope=True, use_tokenshift=False, gate_rank_type=2, balance_state=True,
         groupnorm_att=True, Rm=8, Rd=12, Rg=20,
         text="In the spring the river rises, and the old men say they knew.",
         description="RAD-RWKV6 ablation mix: RoPE (theta 1e4) on r,k before GQA, no token shift "
                     "(ddlerp tensors present but unused), low-rank gate sigmoid(x g1) g2 (Rg=20), "
                     "k*(1-w) balancing AND GroupNorm ln_x (H groups, eps N*1e-5) before the gate."),
    dict(name="rwkv7", kind="rwkv7", seed=1005, tied=False, rope_theta=1e6, eps=1e-6,
         use_rope=True, gate_rank_type=2, balance_state=True, groupnorm_att=False,
         Rw=8, Ra=12, Rv=4, Rg=20, wrong_lora_config=True,
         text="Every kitchen has a drawer that nobody can close properly.",
         description="RAD-RWKV7 variant B: kappa = k/||k||, k~ = k*(1-w+a), output * N^-1/2, RoPE "
                     "theta 1e6, low-rank gate, value residual (layer-0 v0/v1/v2 present but "
                     "ignored), r_k/k_k/k_a present but unused. Ranks Rw=8 Ra=12 Rv=4 Rg=20; config "
                     "lora_rank_* present with wrong values."),
    dict(name="rwkv7-groupnorm", kind="rwkv7", seed=1006, tied=True, rope_theta=10000.0, eps=1e-5,
         use_rope=True, gate_rank_type=2, balance_state=False, groupnorm_att=True,
         Rw=8, Ra=12, Rv=4, Rg=20, wrong_lora_config=False,
         text="The library is a square building of yellow brick with tall windows.",
         description="RAD-RWKV7 variant G: kappa = normalize(k*k_k), k~ = k*(1+(a-1)*k_a), "
                     "GroupNorm ln_x (H groups, eps N*1e-5), RoPE theta 1e4, tied embeddings (no "
                     "lm_head.weight), rms_norm_eps 1e-5, config lora_rank_* absent."),
]


# ---------------------------------------------------------------------------------------------
# tokenizer
# ---------------------------------------------------------------------------------------------

TOKENIZER_CASES = [
    "Hello, world!",
    "The 7:42 to the city is late again.",
    "It's, we're, they've, I'm, you'll, he'd, IT'S",
    "caf\u00e9 and cafe\u0301 (NFC), na\u00efve \u2014 \u201cquotes\u201d",
    "  leading spaces\n\nand\ttabs  \r\n",
    "numbers 12345 and 3.14159",
    "<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n",
    "emoji \U0001F642 and \u4e2d\u6587 text<|endoftext|>",
    "",
]


def train_tokenizer(train_path, out_path):
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, \
        pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_PRETOKENIZE_REGEX), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    try:
        tok.post_processor = processors.ByteLevel(add_prefix_space=False, trim_offsets=False,
                                                  use_regex=False)
    except TypeError:
        tok.post_processor = processors.ByteLevel(trim_offsets=False)
    n_bpe = TOKENIZER_VOCAB - len(SPECIALS)
    trainer = trainers.BpeTrainer(vocab_size=n_bpe, min_frequency=2, show_progress=False,
                                  special_tokens=[],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train([train_path], trainer)
    assert tok.get_vocab_size(with_added_tokens=False) == n_bpe, tok.get_vocab_size(False)
    tok.add_special_tokens([AddedToken(s, single_word=False, lstrip=False, rstrip=False,
                                       normalized=False, special=True) for s in SPECIALS])
    assert tok.get_vocab_size(with_added_tokens=True) == TOKENIZER_VOCAB
    tok.save(out_path)
    ids = {s: tok.token_to_id(s) for s in SPECIALS}
    assert sorted(ids.values()) == list(range(n_bpe, TOKENIZER_VOCAB)), ids
    cases = []
    for s in TOKENIZER_CASES:
        enc = tok.encode(s)
        dec = tok.decode(enc.ids, skip_special_tokens=False)
        cases.append({"text": s, "ids": enc.ids, "tokens": enc.tokens, "decoded": dec,
                      "roundtrip_nfc": dec == unicodedata.normalize("NFC", s)})
    return tok, ids, cases


class FakeTokenizer:
    """--local-test only (no `tokenizers` library): random ids instead of encoded text."""

    def __init__(self, rng):
        self.rng = rng

    def encode_ids(self, text):
        return [self.rng.randrange(256) for _ in range(len(text) // 3)]


# ---------------------------------------------------------------------------------------------
# weights
# ---------------------------------------------------------------------------------------------

class Rand:
    def __init__(self, seed):
        self.g = torch.Generator().manual_seed(seed)

    def normal(self, shape, std, mean=0.0):
        return torch.randn(*shape, generator=self.g, dtype=torch.float32) * std + mean

    def uniform(self, shape, lo, hi):
        return torch.rand(*shape, generator=self.g, dtype=torch.float32) * (hi - lo) + lo


def make_weights(spec):
    r = Rand(spec["seed"])
    W = {}
    W["model.embed_tokens.weight"] = r.normal([V, C], 0.4)
    if not spec["tied"]:
        W["lm_head.weight"] = r.normal([V, C], 0.4)
    W["model.norm.weight"] = r.normal([C], 0.1, 1.0)
    for l in range(L):
        p = f"model.layers.{l}."
        a = p + "self_attn."
        W[p + "input_layernorm.weight"] = r.normal([C], 0.1, 1.0)
        W[p + "post_attention_layernorm.weight"] = r.normal([C], 0.1, 1.0)
        W[p + "mlp.gate_proj.weight"] = r.normal([FF, C], C ** -0.5)
        W[p + "mlp.up_proj.weight"] = r.normal([FF, C], C ** -0.5)
        W[p + "mlp.down_proj.weight"] = r.normal([C, FF], 0.5 * FF ** -0.5)
        W[a + "q_proj.weight"] = r.normal([H * N, C], C ** -0.5)
        W[a + "q_proj.bias"] = r.normal([H * N], 0.2)
        W[a + "k_proj.weight"] = r.normal([KVH * N, C], C ** -0.5)
        W[a + "k_proj.bias"] = r.normal([KVH * N], 0.2)
        W[a + "v_proj.weight"] = r.normal([KVH * N, C], C ** -0.5)
        W[a + "v_proj.bias"] = r.normal([KVH * N], 0.1)
        W[a + "o_proj.weight"] = r.normal([C, H * N], 0.5 * (H * N) ** -0.5)
        if spec["kind"] == "rwkv6":
            Rm, Rd = spec["Rm"], spec["Rd"]
            for s in "xrkvwg":
                W[a + f"time_maa_{s}"] = r.uniform([1, 1, C], 0.02, 1.0)
            W[a + "time_maa_w1"] = r.normal([C, 5 * Rm], 0.1)
            W[a + "time_maa_w2"] = r.normal([5, Rm, C], 0.2)
            # d0 in [-4, 2.6]: -exp(d) < -5 (clamped) needs d > ln 5 = 1.61
            W[a + "time_decay"] = r.uniform([1, 1, H * N], -4.0, 2.6)
            W[a + "time_decay_w1"] = r.normal([C, Rd], 0.15)
            W[a + "time_decay_w2"] = r.normal([Rd, H * N], 0.2)
            if spec["gate_rank_type"] == 1:
                W[a + "gate.weight"] = r.normal([H * N, C], 0.2)
            else:
                W[a + "g1"] = r.normal([C, spec["Rg"]], 0.15)
                W[a + "g2"] = r.normal([spec["Rg"], H * N], 0.25)
            if spec["groupnorm_att"]:
                W[a + "ln_x.weight"] = r.normal([H * N], 0.1, 1.0)
                W[a + "ln_x.bias"] = r.normal([H * N], 0.1)
        elif spec["kind"] == "rwkv7":
            Rw, Ra, Rv, Rg = spec["Rw"], spec["Ra"], spec["Rv"], spec["Rg"]
            W[a + "w0"] = r.uniform([1, 1, C], -6.0, 0.0)
            W[a + "w1"] = r.normal([C, Rw], 0.15)
            W[a + "w2"] = r.normal([Rw, C], 0.3)
            W[a + "a0"] = r.normal([1, 1, C], 0.5)
            W[a + "a1"] = r.normal([C, Ra], 0.15)
            W[a + "a2"] = r.normal([Ra, C], 0.2)
            W[a + "v0"] = r.normal([1, 1, C], 0.5, 0.5)
            W[a + "v1"] = r.normal([C, Rv], 0.15)
            W[a + "v2"] = r.normal([Rv, C], 0.3)
            W[a + "g1"] = r.normal([C, Rg], 0.15)
            W[a + "g2"] = r.normal([Rg, C], 0.25)
            W[a + "k_k"] = r.normal([1, 1, C], 0.1, 0.85)
            W[a + "k_a"] = r.normal([1, 1, C], 0.1, 1.0)
            W[a + "r_k"] = r.normal([H, N], 0.1)
            if spec["groupnorm_att"]:
                W[a + "ln_x.weight"] = r.normal([C], 0.1, 1.0)
                W[a + "ln_x.bias"] = r.normal([C], 0.1)
    out = {}
    for k, v in W.items():
        b = v.to(torch.bfloat16).contiguous()
        assert bool((b != 0).all()), f"{k}: exact zero after bf16 rounding"
        out[k] = b
    return out


# ---------------------------------------------------------------------------------------------
# config files
# ---------------------------------------------------------------------------------------------

def make_config(spec, eot):
    cfg = {
        "vocab_size": V,
        "hidden_size": C,
        "intermediate_size": FF,
        "num_hidden_layers": L,
        "num_attention_heads": H,
        "num_key_value_heads": KVH,
        "hidden_act": "silu",
        "max_position_embeddings": 4096,
        "initializer_range": 0.02,
        "rms_norm_eps": spec["eps"],
        "rope_theta": spec["rope_theta"],
        "tie_word_embeddings": spec["tied"],
        "attention_bias": True,
        "attention_dropout": 0.0,
        "use_cache": True,
        "bos_token_id": eot,
        "eos_token_id": eot,
        "torch_dtype": "bfloat16",
    }
    if spec["kind"] == "qwen2":
        head = {"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2"}
        cfg.update({
            "use_sliding_window": False,
            "sliding_window": None,
            "max_window_layers": L,
            # transformers >= 5 reads RoPE from rope_parameters; older versions from rope_theta
            "rope_parameters": {"rope_type": "default", "rope_theta": spec["rope_theta"]},
        })
    elif spec["kind"] == "rwkv6":
        head = {"architectures": ["RWKV6Qwen2ForCausalLM"], "model_type": "rwkv6qwen2"}
        cfg.update({
            "attention_output_bias": False,
            "use_rope": spec["use_rope"],
            "use_tokenshift": spec["use_tokenshift"],
            "gate_rank_type": spec["gate_rank_type"],
            "balance_state": spec["balance_state"],
            "groupnorm_att": spec["groupnorm_att"],
            # deliberately NOT the real ranks (8 / 12): a runtime must read ranks from shapes
            "lora_rank_tokenshift": 32,
            "lora_rank_decay": 64,
            "lora_rank_gate": None,
        })
    else:
        head = {"architectures": ["RWKV7Qwen2ForCausalLM"], "model_type": "rwkv7qwen2"}
        cfg.update({
            "attention_output_bias": False,
            "use_rope": spec["use_rope"],
            "gate_rank_type": spec["gate_rank_type"],
            "balance_state": spec["balance_state"],
            "groupnorm_att": spec["groupnorm_att"],
            "num_attention_layers": 0,
        })
        if spec["wrong_lora_config"]:
            # deliberately NOT the real ranks (8 / 12 / 4 / 20)
            cfg.update({"lora_rank_decay": 96, "lora_rank_iclr": 96,
                        "lora_rank_value_residual_mix": 64, "lora_rank_gate": 416})
    head.update(cfg)
    return head


def make_generation_config(ids):
    return {
        "bos_token_id": ids["<|endoftext|>"],
        "pad_token_id": ids["<|endoftext|>"],
        "eos_token_id": [ids["<|im_end|>"], ids["<|endoftext|>"]],
        "do_sample": True,
        "temperature": 0.7,
        "top_p": 0.8,
        "top_k": 20,
        "repetition_penalty": 1.05,
    }


def write_json(path, obj):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2, ensure_ascii=False)
        f.write("\n")


# ---------------------------------------------------------------------------------------------
# Hugging Face Qwen2 (teacher fixtures)
# ---------------------------------------------------------------------------------------------

class _TorchFloat32IsFloat64:
    """Stands in for the `torch` module inside transformers' Qwen2 modeling module while the
    float64 run is made: `torch.float32` resolves to torch.float64, everything else is torch.
    This lifts the fixed float32 casts (RMSNorm compute dtype, eager softmax dtype) without
    touching the rest of HF's code."""

    def __init__(self, real):
        self._real = real

    def __getattr__(self, name):
        if name == "float32":
            return self._real.float64
        return getattr(self._real, name)


@contextlib.contextmanager
def hf_float64_patches(model, rope_theta):
    """(1) torch.float32 -> float64 inside the modules that define Qwen2's RMSNorm, attention and
    eager attention function; (2) RoPE cos/sin tables computed in float64 (HF builds them in
    float32 and casts). The RoPE patch first checks that HF's own inv_freq (parsed from
    config.json) matches rope_theta."""
    import transformers.models.qwen2.modeling_qwen2 as mq
    mod_names = {mq.__name__, type(model.model.norm).__module__,
                 type(model.model.layers[0].self_attn).__module__}
    if hasattr(mq, "eager_attention_forward"):
        mod_names.add(mq.eager_attention_forward.__module__)
    saved = {}
    for name in mod_names:
        m = sys.modules[name]
        if getattr(m, "torch", None) is torch:
            saved[name] = m.torch
            m.torch = _TorchFloat32IsFloat64(torch)
    info = {"rope_calls": 0, "inv_freq_max_rel_err": 0.0, "patched_modules": sorted(saved)}

    def rope_forward(self, x, position_ids=None, *args, **kwargs):
        dim = self.inv_freq.shape[-1] * 2
        inv = 1.0 / (rope_theta ** (torch.arange(0, dim, 2, dtype=F64) / dim))
        hf_inv = self.inv_freq.detach().to("cpu", F64)
        rel = float(((hf_inv - inv).abs() / inv).max())
        info["inv_freq_max_rel_err"] = max(info["inv_freq_max_rel_err"], rel)
        if rel > 1e-5:
            raise AssertionError(f"HF inv_freq does not match rope_theta={rope_theta}: rel {rel}")
        info["rope_calls"] += 1
        pos = position_ids.detach().to("cpu", F64)
        freqs = pos[:, :, None] * inv[None, None, :]
        emb = torch.cat([freqs, freqs], dim=-1)
        sc = float(getattr(self, "attention_scaling", 1.0))
        return (emb.cos() * sc).to(x.device, x.dtype), (emb.sin() * sc).to(x.device, x.dtype)

    rope_modules = [m for m in model.modules() if hasattr(m, "inv_freq")]
    for m in rope_modules:
        m.forward = types.MethodType(rope_forward, m)
    try:
        yield info
    finally:
        for m in rope_modules:
            del m.forward
        for name, t in saved.items():
            sys.modules[name].torch = t


def hf_qwen2(folder, tokens, weights64, spec):
    import transformers
    from transformers import Qwen2ForCausalLM
    attempts = [dict(dtype=F64, output_loading_info=True),
                dict(torch_dtype=F64, output_loading_info=True),
                dict(dtype=F64)]
    last = None
    for kw in attempts:
        try:
            res = Qwen2ForCausalLM.from_pretrained(folder, attn_implementation="eager", **kw)
            break
        except TypeError as e:
            last = e
    else:
        raise last
    model, loading = res if isinstance(res, tuple) else (res, {})
    model = model.to(F64).eval()
    assert all(p.dtype == F64 for p in model.parameters())
    res = {"transformers": transformers.__version__,
           "loading_info": {k: sorted(map(str, v if isinstance(v, (list, set, tuple)) else [v]))
                            for k, v in loading.items()}}
    problems = []

    def check(ok, msg):
        if not ok:
            problems.append(msg)

    check(not loading.get("unexpected_keys"), f"unexpected keys {loading.get('unexpected_keys')}")
    missing = set(loading.get("missing_keys", []))
    check(missing <= ({"lm_head.weight"} if spec["tied"] else set()), f"missing keys {missing}")
    check(not loading.get("mismatched_keys"), f"mismatched keys {loading.get('mismatched_keys')}")
    # every stored tensor reached HF unchanged, under the same name
    sd = model.state_dict()
    for name, t in weights64.items():
        check(name in sd and torch.equal(sd[name].to("cpu", F64), t),
              f"HF parameter {name} missing or different")
    extra = {n for n in set(sd) - set(weights64) - {"lm_head.weight"} if "inv_freq" not in n}
    check(not extra, f"HF parameters not in the checkpoint: {sorted(extra)}")
    head = model.lm_head.weight.detach().to("cpu", F64)
    expect_head = weights64["model.embed_tokens.weight"] if spec["tied"] else weights64["lm_head.weight"]
    check(torch.equal(head, expect_head), "lm_head does not match (tying)")
    check(bool(model.config.tie_word_embeddings) == spec["tied"], "tie_word_embeddings")
    check(abs(float(model.config.rms_norm_eps) - spec["eps"]) < 1e-15, "rms_norm_eps")
    ids = torch.tensor([tokens], dtype=torch.long)
    with torch.no_grad():
        pure = model(input_ids=ids, use_cache=False).logits[0].to("cpu", F64).clone()
        with hf_float64_patches(model, spec["rope_theta"]) as pinfo:
            patched = model(input_ids=ids, use_cache=False).logits[0].to("cpu", F64).clone()
        pure_again = model(input_ids=ids, use_cache=False).logits[0].to("cpu", F64).clone()
    check(pinfo["rope_calls"] > 0, "RoPE patch never called")
    check(torch.equal(pure, pure_again), "patches were not undone")
    res["patch_info"] = pinfo
    res["problems"] = problems
    return pure, patched, res


# ---------------------------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------------------------

def max_abs(a, b):
    return float((a - b).abs().max())


def make_tokens(spec, ids, text_ids):
    rng = random.Random(spec["seed"])
    body = list(text_ids[:12])
    while len(body) < 12:
        body.append(rng.randrange(TOKENIZER_VOCAB))
    tail = [rng.randrange(TOKENIZER_VOCAB) for _ in range(9)]
    toks = [ids["<|endoftext|>"]] + body + [ids["<|im_start|>"]] + tail + [ids["<|im_end|>"]]
    assert len(toks) == T_TOKENS and all(0 <= t < TOKENIZER_VOCAB for t in toks)
    return toks


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--local-test", action="store_true",
                    help="no tokenizers/transformers: fake token ids, skip the HF comparison")
    ap.add_argument("--only", default=None, help="comma-separated fixture names")
    args = ap.parse_args()

    torch.set_num_threads(1)
    os.makedirs(args.out, exist_ok=True)
    from safetensors.torch import load_file, save_file
    import safetensors

    versions = {"python": sys.version.split()[0], "torch": torch.__version__,
                "numpy": np.__version__, "safetensors": getattr(safetensors, "__version__", "?")}
    failures = []
    summary = {"fixtures": {}, "versions": versions}

    # 1. tokenizer
    tok_path = os.path.join(args.out, "tokenizer.json")
    train_path = os.path.join(HERE, "tokenizer-train.txt")
    if args.local_test:
        ids = {s: TOKENIZER_VOCAB - len(SPECIALS) + i for i, s in enumerate(SPECIALS)}
        fake = FakeTokenizer(random.Random(7))
        encode = fake.encode_ids
        decode = lambda t: None
        with open(tok_path, "w") as f:
            f.write("{}\n")
    else:
        import tokenizers
        versions["tokenizers"] = tokenizers.__version__
        tok, ids, cases = train_tokenizer(train_path, tok_path)
        write_json(os.path.join(args.out, "tokenizer-cases.json"),
                   {"tokenizer": "tokenizer.json", "special_ids": ids, "cases": cases})
        encode = lambda s: tok.encode(s, add_special_tokens=False).ids
        decode = lambda t: tok.decode(t, skip_special_tokens=False)
        print(f"tokenizer: {tok.get_vocab_size(True)} ids, specials {ids}")
        for c in cases:
            print(f"  {c['text']!r:70} -> {c['ids']} roundtrip={c['roundtrip_nfc']}")
            if not c["roundtrip_nfc"]:
                failures.append(f"tokenizer roundtrip: {c['text']!r} -> {c['decoded']!r}")
        try:
            import transformers
            versions["transformers"] = transformers.__version__
        except Exception as e:  # reported through the qwen2 fixtures
            versions["transformers"] = repr(e)
    summary["special_ids"] = ids
    with open(tok_path, "r", encoding="utf-8") as f:
        tok_json = f.read()

    only = set(args.only.split(",")) if args.only else None
    for spec in FIXTURES:
        name = spec["name"]
        if only and name not in only:
            continue
        print(f"\n=== {name} ===")
        d = os.path.join(args.out, name)
        os.makedirs(d, exist_ok=True)
        cfg = make_config(spec, ids["<|endoftext|>"])
        write_json(os.path.join(d, "config.json"), cfg)
        write_json(os.path.join(d, "generation_config.json"), make_generation_config(ids))
        with open(os.path.join(d, "tokenizer.json"), "w", encoding="utf-8") as f:
            f.write(tok_json)
        wb = make_weights(spec)
        st_path = os.path.join(d, "model.safetensors")
        save_file(wb, st_path, metadata={"format": "pt"})
        # read the bf16 tensors back and compute in float64 from them
        loaded = load_file(st_path)
        assert set(loaded) == set(wb)
        for k, v in loaded.items():
            assert v.dtype == torch.bfloat16 and torch.equal(v, wb[k]), k
        w64 = {k: v.to(F64) for k, v in loaded.items()}
        n_params = sum(v.numel() for v in w64.values())

        text_ids = encode(spec["text"])
        tokens = make_tokens(spec, ids, text_ids)
        ref = RefModel(cfg, w64)
        stats = {}
        ref_full = ref.forward(tokens, ref.new_state(), stats)
        # token-by-token with carried state, and a 7 + 17 split
        st = ref.new_state()
        steps = torch.cat([ref.forward([t], st) for t in tokens], 0)
        st2 = ref.new_state()
        chunks = torch.cat([ref.forward(tokens[:7], st2), ref.forward(tokens[7:], st2)], 0)
        checks = {"ref_step_vs_full": max_abs(steps, ref_full),
                  "ref_chunk7_vs_full": max_abs(chunks, ref_full)}
        for key in ("ref_step_vs_full", "ref_chunk7_vs_full"):
            ok = checks[key] <= 1e-11
            print(f"  check {key}: max|diff| = {checks[key]:.3e} {'OK' if ok else 'FAIL'}")
            if not ok:
                failures.append(f"{name}: {key} {checks[key]:.3e}")

        reference = "rad_rwkv_reference.py (float64, per-token recurrence)"
        logits = ref_full
        if spec["kind"] == "qwen2":
            if args.local_test:
                reference = "LOCAL TEST: rad_rwkv_reference.py softmax attention (HF skipped)"
            else:
                try:
                    pure, patched, hfinfo = hf_qwen2(d, tokens, w64, spec)
                    checks["hf_float64_vs_ref"] = max_abs(patched, ref_full)
                    checks["hf_as_shipped_vs_ref"] = max_abs(pure, ref_full)
                    checks["hf_as_shipped_vs_hf_float64"] = max_abs(pure, patched)
                    checks["hf"] = hfinfo
                    ok1 = checks["hf_float64_vs_ref"] <= 1e-10
                    ok2 = checks["hf_as_shipped_vs_ref"] <= 1e-3
                    print(f"  check hf_float64_vs_ref: {checks['hf_float64_vs_ref']:.3e} "
                          f"{'OK' if ok1 else 'FAIL'} (tol 1e-10)")
                    print(f"  check hf_as_shipped_vs_ref: {checks['hf_as_shipped_vs_ref']:.3e} "
                          f"{'OK' if ok2 else 'FAIL'} (tol 1e-3; HF keeps float32 casts)")
                    print(f"  hf info: {json.dumps(hfinfo)}")
                    for prob in hfinfo["problems"]:
                        failures.append(f"{name}: HF structural check: {prob}")
                    if not ok1:
                        failures.append(f"{name}: hf_float64_vs_ref {checks['hf_float64_vs_ref']:.3e}")
                    if not ok2:
                        failures.append(f"{name}: hf_as_shipped_vs_ref {checks['hf_as_shipped_vs_ref']:.3e}")
                    logits = patched
                    reference = ("transformers Qwen2ForCausalLM.from_pretrained(folder, dtype=float64, "
                                 "attn_implementation='eager'), float32 casts lifted to float64")
                except Exception as e:  # keep going: the other fixtures are still useful
                    import traceback
                    traceback.print_exc()
                    failures.append(f"{name}: HF run failed: {e!r}")
                    reference = "FALLBACK (HF failed): rad_rwkv_reference.py softmax attention"

        mal = float(logits.abs().max())
        print(f"  params {n_params}, tokens {tokens}")
        print(f"  max |logit| = {mal:.4f}, logit std = {float(logits.std()):.4f}")
        if not (1.0 <= mal <= 30.0):
            failures.append(f"{name}: max|logit| {mal} outside [1, 30]")
        if "v6_decay_total" in stats:
            frac = stats["v6_decay_clamped"] / stats["v6_decay_total"]
            checks["v6_clamp_fraction"] = frac
            print(f"  v6 log-decay clamp active on {stats['v6_decay_clamped']}/"
                  f"{stats['v6_decay_total']} = {frac:.3f} of (layer, token, channel)")
            if not (0.02 <= frac <= 0.6):
                failures.append(f"{name}: clamp fraction {frac}")
        if "v7_w_min" in stats:
            checks["v7_w_range"] = [stats["v7_w_min"], stats["v7_w_max"]]
            checks["v7_a_range"] = [stats["v7_a_min"], stats["v7_a_max"]]
            print(f"  v7 decay w in [{stats['v7_w_min']:.4f}, {stats['v7_w_max']:.4f}], "
                  f"a in [{stats['v7_a_min']:.4f}, {stats['v7_a_max']:.4f}]")

        np.save(os.path.join(d, "logits.npy"), np.ascontiguousarray(logits.numpy(), dtype=np.float64))
        golden = {
            "tokens": tokens,
            "description": spec["description"] + (
                f" Tokens: <|endoftext|>, the first 12 ids of the tokenized text {spec['text']!r} "
                f"(padded with random ids if shorter), <|im_start|>, 9 random ids in [0, 384), "
                f"<|im_end|>. Logits: one forward pass over all {T_TOKENS} tokens from a fresh state."),
            "max_abs_logit": mal,
            "fixture": name,
            "text": spec["text"],
            "text_ids_used": list(text_ids[:12]),
            "logits_file": "logits.npy",
            "logits_shape": [T_TOKENS, V],
            "logits_dtype": "float64",
            "reference": reference,
            "checks": {k: v for k, v in checks.items() if k != "hf"},
        }
        write_json(os.path.join(d, "golden.json"), golden)
        summary["fixtures"][name] = {"max_abs_logit": mal, "params": n_params,
                                     "reference": reference, "checks": checks}

    summary["failures"] = failures
    write_json(os.path.join(args.out, "summary.json"), summary)
    print("\n=== summary ===")
    print(json.dumps({k: {"max_abs_logit": v["max_abs_logit"],
                          **{c: x for c, x in v["checks"].items() if c != "hf"}}
                      for k, v in summary["fixtures"].items()}, indent=1))
    print(f"versions: {versions}")
    if failures:
        print("FAILURES:\n  " + "\n  ".join(failures))
        sys.exit(1)
    print("ALL CHECKS PASSED")


if __name__ == "__main__":
    main()
