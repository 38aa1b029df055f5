"""Plain float64 PyTorch reference for Qwen2, RAD-RWKV6 and RAD-RWKV7.

Written straight from docs/rad-rwkv-spec.md (sections 1-4 and 6). It is deliberately slow and
readable: projections are batched over the T tokens of one call, but every recurrence (and the
softmax attention of the Qwen2 teacher) is a per-token, per-head Python loop.

Conventions
  * Row vectors: x is [T, C]. A Linear stored as [out, in] computes x @ W.T + b.
    LoRA matrices (time_maa_w1 [C, 5*Rm], w1 [C, Rw], ...) are used as x @ W (in x out).
  * Vector parameters are stored [1, 1, C] and flattened to [C] here.
  * RAD-RWKV6 state per head: S [N_k, N_v] (key-major, fla layout), o_t = (r_t N^-1/2) S_t.
  * RAD-RWKV7 state per head: S [N_v, N_k] (value-major, wind-kernel layout), y = S r.
  * Everything is float64. Nothing here is imported from transformers or from HF remote code.

Usage
  model = RefModel(config_dict, {name: tensor})      # tensors of any float dtype
  state = model.new_state()
  logits = model.forward(token_ids, state)           # [T, V] float64, state is updated in place
"""

import math

import torch

F64 = torch.float64


# --------------------------------------------------------------------------------------------
# shared pieces (embedding, RMSNorm, RoPE, GQA, MLP, head)
# --------------------------------------------------------------------------------------------

def rms_norm(x, w, eps):
    """Qwen2 RMSNorm: y = w * x / sqrt(mean(x^2) + eps) over the last dim."""
    return w * (x / torch.sqrt((x * x).mean(-1, keepdim=True) + eps))


def linear(x, W, b=None):
    """PyTorch Linear, W stored [out, in]."""
    y = x @ W.T
    return y if b is None else y + b


def rope_cos_sin(positions, head_dim, theta):
    """Qwen rotate-half RoPE tables for absolute positions: cos, sin [T, N]."""
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=F64) / head_dim))
    ang = torch.tensor(list(positions), dtype=F64)[:, None] * inv_freq[None, :]
    emb = torch.cat([ang, ang], dim=-1)
    return emb.cos(), emb.sin()


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat([-x[..., half:], x[..., :half]], dim=-1)


def apply_rope(x, cos, sin):
    """x [T, heads, N]; cos/sin [T, N]."""
    return x * cos[:, None, :] + rotate_half(x) * sin[:, None, :]


def expand_gqa(x, num_heads):
    """[T, KVH, N] -> [T, H, N]; query head h uses KV head h // G (HF repeat_kv)."""
    kvh = x.shape[1]
    group = num_heads // kvh
    idx = torch.tensor([h // group for h in range(num_heads)], dtype=torch.long)
    return x[:, idx, :]


def group_norm(x, weight, bias, num_groups, eps):
    """GroupNorm over [T, H*N] with H groups of N channels (biased variance), affine."""
    T = x.shape[0]
    xg = x.reshape(T, num_groups, -1)
    mean = xg.mean(-1, keepdim=True)
    var = ((xg - mean) ** 2).mean(-1, keepdim=True)
    y = ((xg - mean) / torch.sqrt(var + eps)).reshape(T, -1)
    return y * weight + bias


def l2_normalize(x, eps=1e-12):
    """F.normalize semantics along the last dim: x / max(||x||_2, eps)."""
    return x / torch.clamp(torch.linalg.vector_norm(x, dim=-1, keepdim=True), min=eps)


def silu(x):
    return x * torch.sigmoid(x)


def mlp(p, x):
    """SwiGLU: down(silu(gate(x)) * up(x)), no biases."""
    return linear(silu(linear(x, p["mlp.gate_proj.weight"])) * linear(x, p["mlp.up_proj.weight"]),
                  p["mlp.down_proj.weight"])


# --------------------------------------------------------------------------------------------
# model
# --------------------------------------------------------------------------------------------

class RefModel:
    def __init__(self, config, tensors):
        self.cfg = dict(config)
        self.t = {k: v.detach().to("cpu", F64).clone() for k, v in tensors.items()}
        c = self.cfg
        self.C = c["hidden_size"]
        self.H = c["num_attention_heads"]
        self.KVH = c["num_key_value_heads"]
        self.N = c.get("head_dim") or self.C // self.H
        self.L = c["num_hidden_layers"]
        self.eps = float(c["rms_norm_eps"])
        self.theta = float(c.get("rope_theta", 10000.0))
        mt = c["model_type"]
        if mt == "qwen2":
            self.kind = "qwen2"
            self.use_rope = True
        elif mt == "rwkv6qwen2":
            self.kind = "rwkv6"
            assert "model.layers.0.self_attn.time_decay" in self.t, "v6 checkpoint without time_decay"
            self.use_rope = bool(c.get("use_rope", False))
        elif mt == "rwkv7qwen2":
            self.kind = "rwkv7"
            assert "model.layers.0.self_attn.w0" in self.t, "v7 checkpoint without w0"
            self.use_rope = bool(c.get("use_rope", False))
        else:
            raise ValueError(f"unknown model_type {mt}")
        self.use_tokenshift = bool(c.get("use_tokenshift", True)) if self.kind == "rwkv6" else False
        self.balance_state = bool(c.get("balance_state", True))
        # GroupNorm if ln_x exists and/or groupnorm_att is set (spec 6.4)
        self.groupnorm = bool(c.get("groupnorm_att", False)) or \
            "model.layers.0.self_attn.ln_x.weight" in self.t
        # tied head (spec 6.4): lm_head.weight absent -> use embed_tokens.weight
        self.head = self.t.get("lm_head.weight", self.t["model.embed_tokens.weight"])
        self.layers = []
        for l in range(self.L):
            pre = f"model.layers.{l}."
            self.layers.append({k[len(pre):]: v for k, v in self.t.items() if k.startswith(pre)})

    # -- state -----------------------------------------------------------------------------
    def new_state(self):
        st = {"pos": 0, "layers": []}
        for _ in range(self.L):
            if self.kind == "qwen2":
                st["layers"].append({"k": torch.zeros(0, self.KVH, self.N, dtype=F64),
                                     "v": torch.zeros(0, self.KVH, self.N, dtype=F64)})
            elif self.kind == "rwkv6":
                st["layers"].append({"S": torch.zeros(self.H, self.N, self.N, dtype=F64),
                                     "shift": torch.zeros(self.C, dtype=F64)})
            else:
                st["layers"].append({"S": torch.zeros(self.H, self.N, self.N, dtype=F64)})
        return st

    @staticmethod
    def vec(p, name):
        return p[name].reshape(-1)

    # -- mixers ----------------------------------------------------------------------------
    def qwen2_attention(self, p, x, pos0, st):
        T, H, KVH, N = x.shape[0], self.H, self.KVH, self.N
        a = "self_attn."
        q = linear(x, p[a + "q_proj.weight"], p[a + "q_proj.bias"]).reshape(T, H, N)
        k = linear(x, p[a + "k_proj.weight"], p[a + "k_proj.bias"]).reshape(T, KVH, N)
        v = linear(x, p[a + "v_proj.weight"], p[a + "v_proj.bias"]).reshape(T, KVH, N)
        cos, sin = rope_cos_sin(range(pos0, pos0 + T), N, self.theta)
        q = apply_rope(q, cos, sin)
        k = apply_rope(k, cos, sin)
        st["k"] = torch.cat([st["k"], k], 0)
        st["v"] = torch.cat([st["v"], v], 0)
        K = expand_gqa(st["k"], H)
        V = expand_gqa(st["v"], H)
        out = torch.zeros(T, H, N, dtype=F64)
        for t in range(T):
            n_vis = pos0 + t + 1  # causal: positions 0 .. pos0+t
            for h in range(H):
                scores = (K[:n_vis, h, :] @ q[t, h]) / math.sqrt(N)
                prob = torch.softmax(scores, dim=0)
                out[t, h] = prob @ V[:n_vis, h, :]
        return linear(out.reshape(T, H * N), p[a + "o_proj.weight"])

    def rwkv6_mixer(self, p, x, pos0, st, stats):
        T, C, H, KVH, N = x.shape[0], self.C, self.H, self.KVH, self.N
        a = "self_attn."
        vec = lambda n: self.vec(p, a + n)
        # 1. token shift (ddlerp); LoRA output order r, k, v, w, g
        if self.use_tokenshift:
            x_prev = torch.cat([st["shift"][None, :], x[:-1]], 0)
            dx = x_prev - x
            xx = x + dx * vec("time_maa_x")
            w1 = p[a + "time_maa_w1"]                      # [C, 5*Rm]
            w2 = p[a + "time_maa_w2"]                      # [5, Rm, C]
            Rm = w1.shape[1] // 5
            m = torch.tanh(xx @ w1).reshape(T, 5, Rm)
            M = torch.einsum("tir,irc->itc", m, w2)         # [5, T, C]
            xr = x + dx * (vec("time_maa_r") + M[0])
            xk = x + dx * (vec("time_maa_k") + M[1])
            xv = x + dx * (vec("time_maa_v") + M[2])
            xw = x + dx * (vec("time_maa_w") + M[3])
            xg = x + dx * (vec("time_maa_g") + M[4])
        else:
            xr = xk = xv = xw = xg = x
        st["shift"] = x[-1].clone()
        # 2. projections
        r = linear(xr, p[a + "q_proj.weight"], p[a + "q_proj.bias"]).reshape(T, H, N)
        k = linear(xk, p[a + "k_proj.weight"], p[a + "k_proj.bias"]).reshape(T, KVH, N)
        v = linear(xv, p[a + "v_proj.weight"], p[a + "v_proj.bias"]).reshape(T, KVH, N)
        # 3. decay, log-decay clamped at -5
        d = vec("time_decay") + torch.tanh(xw @ p[a + "time_decay_w1"]) @ p[a + "time_decay_w2"]
        neg = -torch.exp(d)
        log_w = torch.clamp(neg, min=-5.0)                 # max(-exp(d), -5)
        if stats is not None:
            stats["v6_decay_total"] = stats.get("v6_decay_total", 0) + neg.numel()
            stats["v6_decay_clamped"] = stats.get("v6_decay_clamped", 0) + int((neg < -5.0).sum())
        w = torch.exp(log_w).reshape(T, H, N)
        # 4. gate (type 1 full rank, type 2 low rank, none)
        if a + "gate.weight" in p:
            g = torch.sigmoid(linear(xg, p[a + "gate.weight"]))
        elif a + "g1" in p:
            g = torch.sigmoid(xg @ p[a + "g1"]) @ p[a + "g2"]
        else:
            g = None
        # 5. RoPE on r and k before GQA expansion, then GQA
        if self.use_rope:
            cos, sin = rope_cos_sin(range(pos0, pos0 + T), N, self.theta)
            r = apply_rope(r, cos, sin)
            k = apply_rope(k, cos, sin)
        k = expand_gqa(k, H)
        v = expand_gqa(v, H)
        # 6. state balancing with the clamped w
        if self.balance_state:
            k = k * (1.0 - w)
        # 7. GLA recurrence, S [N_k, N_v]; output reads S after the update, no bonus
        S = [st["S"][h].clone() for h in range(H)]
        out = torch.zeros(T, H, N, dtype=F64)
        scale = N ** -0.5
        for t in range(T):
            for h in range(H):
                S[h] = w[t, h][:, None] * S[h] + torch.outer(k[t, h], v[t, h])
                out[t, h] = (r[t, h] * scale) @ S[h]
        st["S"] = torch.stack(S)
        # 8. output: (GroupNorm ablation) -> gate -> o_proj
        o = out.reshape(T, H * N)
        if self.groupnorm:
            o = group_norm(o, vec("ln_x.weight"), vec("ln_x.bias"), H, N * 1e-5)
        if g is not None:
            o = o * g
        return linear(o, p[a + "o_proj.weight"])

    def rwkv7_mixer(self, layer, p, x, pos0, st, v_first, stats):
        T, H, KVH, N = x.shape[0], self.H, self.KVH, self.N
        a_ = "self_attn."
        vec = lambda n: self.vec(p, a_ + n)
        # 1. projections (no token shift)
        r = linear(x, p[a_ + "q_proj.weight"], p[a_ + "q_proj.bias"]).reshape(T, H, N)
        k = linear(x, p[a_ + "k_proj.weight"], p[a_ + "k_proj.bias"]).reshape(T, KVH, N)
        vp = linear(x, p[a_ + "v_proj.weight"], p[a_ + "v_proj.bias"]).reshape(T, KVH, N)
        # 2. decay: log w = -e^-0.5 * sigmoid(z)
        z = vec("w0") + torch.tanh(x @ p[a_ + "w1"]) @ p[a_ + "w2"]
        w = torch.exp(-math.exp(-0.5) * torch.sigmoid(z)).reshape(T, H, N)
        # 3. in-context learning rate
        a = torch.sigmoid(vec("a0") + (x @ p[a_ + "a1"]) @ p[a_ + "a2"]).reshape(T, H, N)
        # 4. gate
        if a_ + "g1" in p:
            g = torch.sigmoid(x @ p[a_ + "g1"]) @ p[a_ + "g2"]
        elif a_ + "gate.weight" in p:
            g = torch.sigmoid(linear(x, p[a_ + "gate.weight"]))
        else:
            g = None
        if stats is not None:
            stats["v7_w_min"] = min(stats.get("v7_w_min", 1.0), float(w.min()))
            stats["v7_w_max"] = max(stats.get("v7_w_max", 0.0), float(w.max()))
            stats["v7_a_min"] = min(stats.get("v7_a_min", 1.0), float(a.min()))
            stats["v7_a_max"] = max(stats.get("v7_a_max", 0.0), float(a.max()))
        # 5. RoPE on r and k only, before GQA
        if self.use_rope:
            cos, sin = rope_cos_sin(range(pos0, pos0 + T), N, self.theta)
            r = apply_rope(r, cos, sin)
            k = apply_rope(k, cos, sin)
        # 6. GQA
        k = expand_gqa(k, H)
        vp = expand_gqa(vp, H)
        # 7. removal key kappa and write key k~
        if self.balance_state:                              # variant B
            kappa = l2_normalize(k)
            kt = k * (1.0 - w + a)
        else:                                               # variant G (stock RWKV-7)
            kappa = l2_normalize(k * vec("k_k").reshape(H, N))
            kt = k * (1.0 + (a - 1.0) * vec("k_a").reshape(H, N))
        # 8. value residual (layer 0 sets v_first; its v0/v1/v2 are ignored)
        if layer == 0:
            v = vp
            v_first = v
        else:
            nu = torch.sigmoid(vec("v0") + (x @ p[a_ + "v1"]) @ p[a_ + "v2"]).reshape(T, H, N)
            v = vp + (v_first - vp) * nu
        # 9. generalized delta rule, kernel form, S [N_v, N_k]
        S = [st["S"][h].clone() for h in range(H)]
        out = torch.zeros(T, H, N, dtype=F64)
        for t in range(T):
            for h in range(H):
                a_ker = -kappa[t, h]
                b_ker = kappa[t, h] * a[t, h]
                sa = S[h] @ a_ker                              # sa_i = sum_j a_ker[j] S[i, j]
                S[h] = S[h] * w[t, h][None, :] + torch.outer(v[t, h], kt[t, h]) \
                    + torch.outer(sa, b_ker)
                out[t, h] = S[h] @ r[t, h]                     # y_i = sum_j S[i, j] r[j]
        st["S"] = torch.stack(S)
        # 10. output normalisation; 11. gate, o_proj (r_k unused: no bonus)
        o = out.reshape(T, H * N)
        if self.groupnorm:                                  # variant G
            o = group_norm(o, vec("ln_x.weight"), vec("ln_x.bias"), H, N * 1e-5)
        else:                                               # variant B
            o = o * (N ** -0.5)
        if g is not None:
            o = o * g
        return linear(o, p[a_ + "o_proj.weight"]), v_first

    # -- whole model -----------------------------------------------------------------------
    def forward(self, tokens, state=None, stats=None):
        if state is None:
            state = self.new_state()
        tokens = [int(t) for t in tokens]
        pos0 = state["pos"]
        h = self.t["model.embed_tokens.weight"][torch.tensor(tokens, dtype=torch.long)]
        v_first = None
        for l, p in enumerate(self.layers):
            st = state["layers"][l]
            x = rms_norm(h, p["input_layernorm.weight"], self.eps)
            if self.kind == "qwen2":
                y = self.qwen2_attention(p, x, pos0, st)
            elif self.kind == "rwkv6":
                y = self.rwkv6_mixer(p, x, pos0, st, stats)
            else:
                y, v_first = self.rwkv7_mixer(l, p, x, pos0, st, v_first, stats)
            h = h + y
            h = h + mlp(p, rms_norm(h, p["post_attention_layernorm.weight"], self.eps))
        state["pos"] = pos0 + len(tokens)
        return rms_norm(h, self.t["model.norm.weight"], self.eps) @ self.head.T
