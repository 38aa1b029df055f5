"""Qwen2 peers: transformers `generate` (eager PyTorch, sdpa attention, dynamic bf16 KV cache) and a plain PyTorch
static-KV-cache decode loop replayed as one CUDA graph per step, both on a random-weight Qwen2ForCausalLM built from a
config at the named shape (no download)."""
import torch
import torch.nn.functional as F

from common import SHAPES, does_not_fit, peak, reset_peak, rope_tables, rotate, row, sync, wall_ms


def build(shape):
    from transformers import Qwen2Config, Qwen2ForCausalLM

    c, h, kv, n, layers, f, v, tied = SHAPES[shape]
    cfg = Qwen2Config(hidden_size=c, intermediate_size=f, num_hidden_layers=layers, num_attention_heads=h,
                      num_key_value_heads=kv, vocab_size=v, max_position_embeddings=(1 << 17) + 8192, rope_theta=1e6,
                      rms_norm_eps=1e-6, tie_word_embeddings=tied, use_cache=True)
    try:
        cfg._attn_implementation = "sdpa"
    except (AttributeError, ValueError):
        pass  # the default (sdpa where available) then
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)  # parameters are created in bf16 (a 32B in fp32 would not fit)
    try:
        with torch.device("cuda"):
            model = Qwen2ForCausalLM(cfg)
    finally:
        torch.set_default_dtype(previous)
    model = model.to(torch.bfloat16).eval()
    model.generation_config.eos_token_id = None
    model.generation_config.pad_token_id = 0
    return model


def weight_bytes(shape):
    c, h, kv, n, layers, f, v, tied = SHAPES[shape]
    per_layer = c * h * n * 2 + 2 * c * kv * n + 3 * c * f
    return 2 * (layers * per_layer + v * c * (1 if tied else 2))


def kv_bytes(shape, tokens, batch):
    c, h, kv, n, layers, f, v, tied = SHAPES[shape]
    return 2 * 2 * layers * kv * n * tokens * batch  # K and V, bf16


@torch.no_grad()
def hf_generate(model, shape, contexts, batches, batch_context, prefill_tokens, steps):
    """Decode ms/token = (generate(1 + steps) - generate(1)) / steps at each context; TTFT = generate(1)."""
    rows = []
    v = SHAPES[shape][6]
    gen = torch.Generator(device="cuda").manual_seed(1)

    def run(batch, context, new):
        ids = torch.randint(v, (batch, context), device="cuda", generator=gen)
        mask = torch.ones_like(ids)
        return wall_ms(lambda: model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=new, min_new_tokens=new,
                                              do_sample=False, use_cache=True))

    def measure(measure, context, batch):
        # KV cache, and the prefill's MLP activations (gate, up, their product: bf16 [batch, context, F]).
        note = does_not_fit(kv_bytes(shape, context + steps + 2, batch) + 3 * batch * context * SHAPES[shape][5] * 2,
                            "KV cache and prefill activations")
        if note:
            return row("hf-generate", arch="qwen2", shape=shape, measure=measure, context=context, batch=batch, status="does not fit", note=note)
        try:
            run(batch, min(context, 64), 2)  # warm-up
            reset_peak()
            t1 = run(batch, context, 1)
            if measure == "prefill":
                return row("hf-generate", arch="qwen2", shape=shape, measure=measure, context=context, batch=batch, tokens=context,
                           ms_per_token=t1 / context, tokens_per_s=context * 1000 / t1, ttft_ms=t1, weights_bytes=weight_bytes(shape),
                           peak_bytes=peak(), note="transformers generate of 1 token from a fresh prompt (TTFT)")
            tn = run(batch, context, 1 + steps)
            ms = (tn - t1) / steps
            return row("hf-generate", arch="qwen2", shape=shape, measure=measure, context=context, batch=batch, tokens=steps * batch,
                       ms_per_token=ms, tokens_per_s=batch * 1000 / ms, ttft_ms=t1, weights_bytes=weight_bytes(shape),
                       state_bytes=kv_bytes(shape, context + steps, batch), peak_bytes=peak(),
                       note="transformers generate, eager, sdpa, DynamicCache bf16; (t(1+n) - t(1)) / n")
        except torch.cuda.OutOfMemoryError as e:
            torch.cuda.empty_cache()
            return row("hf-generate", arch="qwen2", shape=shape, measure=measure, context=context, batch=batch, status="does not fit",
                       note="ran out of memory: " + str(e).split("\n")[0][:200])

    rows.append(measure("prefill", prefill_tokens, 1))
    rows += [measure("decode", ctx, 1) for ctx in contexts]
    rows += [measure("batched_decode", batch_context, b) for b in batches]
    return rows


class StaticDecoder:
    """Plain PyTorch Qwen2 decode over the model's weights: static bf16 KV cache [B, KVH, length, N], position and
    token ids in device tensors, attention over the whole cache with a mask (as a static cache does), greedy
    argmax on the device; one step is captured as a CUDA graph and replayed."""

    def __init__(self, model, batch, length):
        self.m = model.model
        self.head = model.lm_head
        cfg = model.config
        self.h, self.kv, self.n = cfg.num_attention_heads, cfg.num_key_value_heads, cfg.hidden_size // cfg.num_attention_heads
        self.theta = 1e6  # every Qwen2.5 shape (spec §1); transformers 5 moved rope_theta into rope_parameters
        self.eps = cfg.rms_norm_eps
        self.batch, self.length = batch, length
        shape = (batch, self.kv, length, self.n)
        self.k = [torch.zeros(shape, dtype=torch.bfloat16, device="cuda") for _ in self.m.layers]
        self.v = [torch.zeros(shape, dtype=torch.bfloat16, device="cuda") for _ in self.m.layers]
        self.pos = torch.zeros((), dtype=torch.long, device="cuda")
        self.ids = torch.zeros((batch, 1), dtype=torch.long, device="cuda")
        self.slots = torch.arange(length, device="cuda")
        self.graph = None

    def fill(self, context):
        """Fast-forward: random K/V rows for positions < context (as `radlads bench` does)."""
        for t in self.k + self.v:
            t[:, :, :context].uniform_(-1, 1)
        self.pos.fill_(context)

    @staticmethod
    def rms(x, weight, eps):
        xf = x.float()
        return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)).to(x.dtype) * weight

    def step(self):
        b, h, kv, n = self.batch, self.h, self.kv, self.n
        x = self.m.embed_tokens(self.ids)  # [B, 1, C]
        cos, sin = rope_tables(self.pos.view(1), n, self.theta, "cuda")
        mask = (self.slots <= self.pos).view(1, 1, 1, self.length)
        for i, layer in enumerate(self.m.layers):
            a = layer.self_attn
            y = self.rms(x, layer.input_layernorm.weight, self.eps)
            q = F.linear(y, a.q_proj.weight, a.q_proj.bias).view(b, 1, h, n).transpose(1, 2)
            k = F.linear(y, a.k_proj.weight, a.k_proj.bias).view(b, 1, kv, n).transpose(1, 2)
            v = F.linear(y, a.v_proj.weight, a.v_proj.bias).view(b, 1, kv, n).transpose(1, 2)
            q, k = rotate(q, cos, sin), rotate(k, cos, sin)
            self.k[i].index_copy_(2, self.pos.view(1), k)
            self.v[i].index_copy_(2, self.pos.view(1), v)
            o = F.scaled_dot_product_attention(q, self.k[i], self.v[i], attn_mask=mask, enable_gqa=True)
            x = x + F.linear(o.transpose(1, 2).reshape(b, 1, h * n), a.o_proj.weight)
            y = self.rms(x, layer.post_attention_layernorm.weight, self.eps)
            mlp = layer.mlp
            x = x + F.linear(F.silu(F.linear(y, mlp.gate_proj.weight)) * F.linear(y, mlp.up_proj.weight), mlp.down_proj.weight)
        logits = self.head(self.rms(x, self.m.norm.weight, self.eps))
        self.ids.copy_(logits.argmax(-1))
        self.pos.add_(1)

    def capture(self, context):
        s = torch.cuda.Stream()
        s.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(s):
            for _ in range(2):
                self.step()
        torch.cuda.current_stream().wait_stream(s)
        self.pos.fill_(context)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.step()
        self.pos.fill_(context)


@torch.no_grad()
def static_graph(model, shape, contexts, batches, batch_context, steps, warmup):
    rows = []

    def measure(measure, context, batch):
        length = context + warmup + steps + 4
        note = does_not_fit(kv_bytes(shape, length, batch), "the static KV cache")
        if note:
            return row("torch-static-graph", arch="qwen2", shape=shape, measure=measure, context=context, batch=batch, status="does not fit", note=note)
        try:
            reset_peak()
            d = StaticDecoder(model, batch, length)
            d.fill(context)
            d.capture(context)
            for _ in range(warmup):
                d.graph.replay()
            ms = wall_ms(lambda: [d.graph.replay() for _ in range(steps)]) / steps
            r = row("torch-static-graph", arch="qwen2", shape=shape, measure=measure, context=context, batch=batch, tokens=steps * batch,
                    ms_per_token=ms, tokens_per_s=batch * 1000 / ms, weights_bytes=weight_bytes(shape),
                    state_bytes=kv_bytes(shape, length, batch), peak_bytes=peak(),
                    note="plain PyTorch, static bf16 KV cache, sdpa over the masked cache, CUDA graph per step, argmax on the device")
            del d
            torch.cuda.empty_cache()
            return r
        except torch.cuda.OutOfMemoryError as e:
            torch.cuda.empty_cache()
            return row("torch-static-graph", arch="qwen2", shape=shape, measure=measure, context=context, batch=batch, status="does not fit",
                       note="ran out of memory: " + str(e).split("\n")[0][:200])

    rows += [measure("decode", ctx, 1) for ctx in contexts]
    rows += [measure("batched_decode", batch_context, b) for b in batches]
    sync()
    return rows

