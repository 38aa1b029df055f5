"""A plain PyTorch RAD-RWKV7 decode (variant B: balanced keys, x N^-1/2 output, low-rank gate, RoPE, value residual;
spec §4.2), random bf16 weights at the named shape (the same tensors and LoRA ranks as `radlads bench`), fp32 state
[B, H, N_v, N_k]; run eagerly step by step, and as one CUDA graph per step."""
import math

import torch
import torch.nn.functional as F

from common import SHAPES, does_not_fit, peak, reset_peak, rope_tables, rotate, row, wall_ms


def lora_rank(c, exponent, multiplier):
    return max(1, round(c ** exponent * multiplier / 32)) * 32


class Rwkv7:
    def __init__(self, shape, seed=1):
        c, h, kv, n, layers, f, v, tied = SHAPES[shape]
        self.c, self.h, self.kv, self.n, self.layers_n, self.f, self.vocab = c, h, kv, n, layers, f, v
        a = h * n
        rw, rv, rg = lora_rank(c, 0.5, 1.8), lora_rank(c, 0.5, 1.3), lora_rank(c, 0.8, 0.6)
        g = torch.Generator(device="cuda").manual_seed(seed)

        def w(*shape):
            return (torch.rand(*shape, generator=g, device="cuda", dtype=torch.float32) * 0.1 - 0.05).to(torch.bfloat16)

        def vec(n_):
            return torch.rand(n_, generator=g, device="cuda") * 0.1 - 0.05

        self.embed = w(v, c)
        self.head = self.embed if tied else w(v, c)
        self.norm = torch.ones(c, device="cuda", dtype=torch.bfloat16)
        self.layers = []
        for _ in range(layers):
            self.layers.append(dict(
                ln1=torch.ones(c, device="cuda", dtype=torch.bfloat16), ln2=torch.ones(c, device="cuda", dtype=torch.bfloat16),
                wq=w(a, c), bq=w(a), wk=w(kv * n, c), bk=w(kv * n), wv=w(kv * n, c), bv=w(kv * n), wo=w(c, a),
                w0=vec(a), w1=w(c, rw), w2=w(rw, a), a0=vec(a), a1=w(c, rw), a2=w(rw, a),
                v0=vec(a), v1=w(c, rv), v2=w(rv, a), g1=w(c, rg), g2=w(rg, a),
                gate=w(f, c), up=w(f, c), down=w(c, f)))

    def weight_bytes(self):
        total = sum(t.numel() * t.element_size() for d in self.layers for t in d.values())
        return total + self.embed.numel() * 2 + (0 if self.head is self.embed else self.head.numel() * 2)

    def state_bytes(self, batch):
        return batch * self.layers_n * self.h * self.n * self.n * 4


class Decoder:
    def __init__(self, model, batch, position):
        self.m, self.b = model, batch
        self.s = [torch.zeros(batch, model.h, model.n, model.n, device="cuda") for _ in model.layers]
        self.ids = torch.zeros((batch,), dtype=torch.long, device="cuda")
        self.pos = torch.full((), position, dtype=torch.long, device="cuda")
        self.graph = None

    @staticmethod
    def rms(x, weight):
        xf = x.float()
        return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + 1e-6)).to(torch.bfloat16) * weight

    def step(self):
        m, b, h, kv, n = self.m, self.b, self.m.h, self.m.kv, self.m.n
        x = F.embedding(self.ids, m.embed)  # [B, C]
        cos, sin = rope_tables(self.pos.view(1), n, 1e6, "cuda")
        v_first = None
        scale = math.exp(-0.5)
        for i, p in enumerate(m.layers):
            y = self.rms(x, p["ln1"])
            r = F.linear(y, p["wq"], p["bq"]).view(b, h, n)
            k = F.linear(y, p["wk"], p["bk"]).view(b, kv, n)
            vv = F.linear(y, p["wv"], p["bv"]).view(b, kv, n)
            yf = y
            z = p["w0"] + F.linear(torch.tanh(F.linear(yf, p["w1"].t())), p["w2"].t()).float()
            w = torch.exp(-scale * torch.sigmoid(z)).view(b, h, n)
            a = torch.sigmoid(p["a0"] + F.linear(F.linear(yf, p["a1"].t()), p["a2"].t()).float()).view(b, h, n)
            g = F.linear(torch.sigmoid(F.linear(yf, p["g1"].t())), p["g2"].t()).float().view(b, h, n)
            r, k = rotate(r, cos, sin).float(), rotate(k, cos, sin).float()
            k = k.repeat_interleave(h // kv, dim=1)
            vv = vv.float().repeat_interleave(h // kv, dim=1)
            kappa = F.normalize(k, dim=-1, eps=1e-12)
            kt = k * (1 - w + a)
            if i == 0:
                v = v_first = vv
            else:
                nu = torch.sigmoid(p["v0"] + F.linear(F.linear(yf, p["v1"].t()), p["v2"].t()).float()).view(b, h, n)
                v = vv + (v_first - vv) * nu
            s = self.s[i]  # [B, H, N_v, N_k]
            sa = torch.matmul(s, (-kappa).unsqueeze(-1))  # [B, H, N_v, 1]
            s.mul_(w.unsqueeze(-2)).add_(v.unsqueeze(-1) * kt.unsqueeze(-2)).add_(sa * (kappa * a).unsqueeze(-2))
            out = torch.matmul(s, r.unsqueeze(-1)).squeeze(-1) * (n ** -0.5)  # [B, H, N_v]
            x = x + F.linear((out * g).reshape(b, h * n).to(torch.bfloat16), p["wo"])
            y = self.rms(x, p["ln2"])
            x = x + F.linear(F.silu(F.linear(y, p["gate"])) * F.linear(y, p["up"]), p["down"])
        logits = F.linear(self.rms(x, m.norm), m.head)
        self.ids.copy_(logits.argmax(-1))
        self.pos.add_(1)

    def capture(self):
        s = torch.cuda.Stream()
        s.wait_stream(torch.cuda.current_stream())
        saved = [t.clone() for t in self.s]
        start = self.pos.clone()
        with torch.cuda.stream(s):
            for _ in range(2):
                self.step()
        torch.cuda.current_stream().wait_stream(s)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.step()
        for t, u in zip(self.s, saved):
            t.copy_(u)
        self.pos.copy_(start)


@torch.no_grad()
def run(shape, contexts, batches, batch_context, steps, warmup):
    rows = []
    model = Rwkv7(shape)
    for graph in (False, True):
        source = "torch-rwkv7-graph" if graph else "torch-rwkv7-eager"

        def measure(measure, context, batch):
            note = does_not_fit(model.state_bytes(batch) * 2, "the states")
            if note:
                return row(source, arch="rwkv7", shape=shape, measure=measure, context=context, batch=batch, status="does not fit", note=note)
            reset_peak()
            d = Decoder(model, batch, context)
            for s in d.s:
                s.uniform_(-0.1, 0.1)  # a state that has seen tokens; the work per step does not depend on it
            if graph:
                d.capture()
            for _ in range(warmup):
                d.graph.replay() if graph else d.step()
            ms = wall_ms(lambda: [d.graph.replay() if graph else d.step() for _ in range(steps)]) / steps
            ok = all(torch.isfinite(s).all().item() for s in d.s)
            return row(source, arch="rwkv7", shape=shape, measure=measure, context=context, batch=batch, tokens=steps * batch,
                       ms_per_token=ms, tokens_per_s=batch * 1000 / ms, weights_bytes=model.weight_bytes(),
                       state_bytes=model.state_bytes(batch), peak_bytes=peak(), status="ok" if ok else "error",
                       note=("CUDA graph per step" if graph else "eager") + ", plain PyTorch RAD-RWKV7 recurrence, argmax on the device"
                       + ("" if ok else "; non-finite state"))

        rows += [measure("decode", ctx, 1) for ctx in contexts]
        rows += [measure("batched_decode", batch_context, b) for b in batches]
    del model
    torch.cuda.empty_cache()
    return rows
