#!/usr/bin/python3
"""Independent reference forward for amalgam's eval tests and benchmark.

Written after the Hugging Face transformers model definitions (modeling_llama.py,
modeling_mistral.py, modeling_qwen2.py, modeling_gpt2.py and modeling_rope_utils.py, eager
attention) with plain torch + numpy, because transformers is not installed here. It reads
a model directory itself (config.json + safetensors parsed with struct/json), so it
shares no code with amalgam.

Usage:
  reference_forward.py logits MODEL_DIR REQUEST.json OUT_PREFIX
      REQUEST: {"input_ids": [[..]], "attention_mask": [[..]],
                "generate": {"prompts": [[..]], "max_new_tokens": N, "eos_token_id": id|null}}
      writes OUT_PREFIX.logits.f32 (raw little-endian [B, T, V]) and OUT_PREFIX.json
      ({"shape": [B, T, V], "generations": [[..]]}).
  reference_forward.py bench MODEL_DIR IDS.json THREADS
      IDS: {"windows": [[..], ..]}; scores every window's positions 2..len as
      `amalgam eval --text` does and prints {"tokens", "nll", "seconds"} as JSON.
"""
import json
import math
import os
import struct
import sys
import time

import numpy as np
import torch

DTYPES = {"F32": np.float32, "F16": np.float16, "F64": np.float64, "I64": np.int64,
          "I32": np.int32, "U8": np.uint8, "BOOL": np.bool_}


def read_safetensors(path):
    out = {}
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    for name, info in header.items():
        if name == "__metadata__":
            continue
        b, e = info["data_offsets"]
        raw = data[b:e]
        if info["dtype"] == "BF16":
            u16 = np.frombuffer(raw, dtype=np.uint16).astype(np.uint32) << 16
            arr = u16.view(np.float32)
        else:
            arr = np.frombuffer(raw, dtype=DTYPES[info["dtype"]])
        out[name] = torch.from_numpy(arr.astype(np.float32).reshape(info["shape"]).copy())
    return out


def load_model(model_dir):
    with open(os.path.join(model_dir, "config.json")) as f:
        config = json.load(f)
    index = os.path.join(model_dir, "model.safetensors.index.json")
    weights = {}
    if os.path.exists(index):
        with open(index) as f:
            files = sorted(set(json.load(f)["weight_map"].values()))
    else:
        files = ["model.safetensors"]
    for name in files:
        weights.update(read_safetensors(os.path.join(model_dir, name)))
    return config, weights


# ---------------------------------------------------------------- rope (modeling_rope_utils)
def rope_inv_freq(config, seq_len):
    dim = config.get("head_dim") or config["hidden_size"] // config["num_attention_heads"]
    base = config.get("rope_theta", 10000.0)
    rs = config.get("rope_scaling") or {}
    rope_type = rs.get("rope_type", rs.get("type", "default"))
    factor = rs.get("factor", 1.0)
    max_pos = config.get("max_position_embeddings", 2048)
    if rope_type == "dynamic" and seq_len > max_pos:
        base = base * ((factor * seq_len / max_pos) - (factor - 1)) ** (dim / (dim - 2))
    inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.int64).float() / dim))
    if rope_type == "linear":
        inv_freq = inv_freq / factor
    elif rope_type == "llama3":
        low_freq_factor = rs["low_freq_factor"]
        high_freq_factor = rs["high_freq_factor"]
        old_context_len = rs["original_max_position_embeddings"]
        low_freq_wavelen = old_context_len / low_freq_factor
        high_freq_wavelen = old_context_len / high_freq_factor
        wavelen = 2 * math.pi / inv_freq
        inv_freq_llama = torch.where(wavelen > low_freq_wavelen, inv_freq / factor, inv_freq)
        smooth_factor = (old_context_len / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor)
        smoothed_inv_freq = (1 - smooth_factor) * inv_freq_llama / factor + smooth_factor * inv_freq_llama
        is_medium_freq = ~(wavelen < high_freq_wavelen) * ~(wavelen > low_freq_wavelen)
        inv_freq = torch.where(is_medium_freq, smoothed_inv_freq, inv_freq_llama)
    return inv_freq


def rotate_half(x):
    x1 = x[..., : x.shape[-1] // 2]
    x2 = x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


# ---------------------------------------------------------------- llama / mistral / qwen2
class LlamaLike:
    def __init__(self, config, w):
        self.c, self.w = config, w
        self.arch = config["architectures"][0]
        self.heads = config["num_attention_heads"]
        self.kv_heads = config.get("num_key_value_heads") or self.heads
        self.head_dim = config.get("head_dim") or config["hidden_size"] // self.heads
        self.eps = config.get("rms_norm_eps", 1e-6)
        self.window = config.get("sliding_window") if self.arch == "MistralForCausalLM" else None

    def rms(self, x, weight):
        variance = x.pow(2).mean(-1, keepdim=True)
        return weight * (x * torch.rsqrt(variance + self.eps))

    def lin(self, x, name):
        y = x @ self.w[name + ".weight"].T
        if name + ".bias" in self.w:
            y = y + self.w[name + ".bias"]
        return y

    def __call__(self, ids, position_ids, mask4d, cache=None):
        w, B, T = self.w, ids.shape[0], ids.shape[1]
        h = w["model.embed_tokens.weight"][ids]
        inv_freq = rope_inv_freq(self.c, int(position_ids.max()) + 1)
        freqs = position_ids[..., None].float() * inv_freq[None, None, :]
        emb = torch.cat((freqs, freqs), dim=-1)
        cos, sin = emb.cos()[:, None], emb.sin()[:, None]
        for i in range(self.c["num_hidden_layers"]):
            p = f"model.layers.{i}."
            res = h
            x = self.rms(h, w[p + "input_layernorm.weight"])
            q = self.lin(x, p + "self_attn.q_proj").view(B, T, self.heads, self.head_dim).transpose(1, 2)
            k = self.lin(x, p + "self_attn.k_proj").view(B, T, self.kv_heads, self.head_dim).transpose(1, 2)
            v = self.lin(x, p + "self_attn.v_proj").view(B, T, self.kv_heads, self.head_dim).transpose(1, 2)
            q = q * cos + rotate_half(q) * sin
            k = k * cos + rotate_half(k) * sin
            if cache is not None:
                if i in cache:
                    k = torch.cat([cache[i][0], k], dim=2)
                    v = torch.cat([cache[i][1], v], dim=2)
                cache[i] = (k, v)
            rep = self.heads // self.kv_heads
            k = k.repeat_interleave(rep, dim=1)
            v = v.repeat_interleave(rep, dim=1)
            a = (q @ k.transpose(2, 3)) / math.sqrt(self.head_dim) + mask4d
            a = torch.softmax(a.float(), dim=-1)
            o = (a @ v).transpose(1, 2).reshape(B, T, -1)
            h = res + self.lin(o, p + "self_attn.o_proj")
            x = self.rms(h, w[p + "post_attention_layernorm.weight"])
            act = self.c.get("hidden_act", "silu")
            g = self.lin(x, p + "mlp.gate_proj")
            g = torch.nn.functional.silu(g) if act == "silu" else torch.nn.functional.gelu(g, approximate="tanh")
            h = h + self.lin(g * self.lin(x, p + "mlp.up_proj"), p + "mlp.down_proj")
        h = self.rms(h, w["model.norm.weight"])
        head = w.get("lm_head.weight", w["model.embed_tokens.weight"])
        return h @ head.T


# ---------------------------------------------------------------- gpt2
class GPT2:
    def __init__(self, config, w):
        self.c = config
        self.w = {k[len("transformer."):] if k.startswith("transformer.") else k: v for k, v in w.items()}
        self.heads = config["n_head"]
        self.eps = config.get("layer_norm_epsilon", 1e-5)
        self.window = None

    def conv1d(self, x, name):  # transformers.pytorch_utils.Conv1D: x @ W + b, W [in, out]
        return torch.addmm(self.w[name + ".bias"], x.reshape(-1, x.shape[-1]), self.w[name + ".weight"]).view(
            *x.shape[:-1], -1)

    def ln(self, x, name):
        return torch.nn.functional.layer_norm(x, (x.shape[-1],), self.w[name + ".weight"], self.w[name + ".bias"],
                                              self.eps)

    def __call__(self, ids, position_ids, mask4d, cache=None):
        w, B, T = self.w, ids.shape[0], ids.shape[1]
        E = self.c["n_embd"]
        hd = E // self.heads
        h = w["wte.weight"][ids] + w["wpe.weight"][position_ids]
        for i in range(self.c["n_layer"]):
            p = f"h.{i}."
            q, k, v = self.conv1d(self.ln(h, p + "ln_1"), p + "attn.c_attn").split(E, dim=2)
            q, k, v = (t.view(B, T, self.heads, hd).transpose(1, 2) for t in (q, k, v))
            if cache is not None:
                if i in cache:
                    k = torch.cat([cache[i][0], k], dim=2)
                    v = torch.cat([cache[i][1], v], dim=2)
                cache[i] = (k, v)
            a = q @ k.transpose(-1, -2) / (v.size(-1) ** 0.5) + mask4d
            a = torch.softmax(a, dim=-1)
            o = (a @ v).transpose(1, 2).reshape(B, T, E)
            h = h + self.conv1d(o, p + "attn.c_proj")
            x = self.conv1d(self.ln(h, p + "ln_2"), p + "mlp.c_fc")
            x = 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))
            h = h + self.conv1d(x, p + "mlp.c_proj")
        h = self.ln(h, "ln_f")
        return h @ w.get("lm_head.weight", w["wte.weight"]).T


def build(model_dir):
    config, w = load_model(model_dir)
    arch = config["architectures"][0]
    if arch == "GPT2LMHeadModel":
        return GPT2(config, w)
    return LlamaLike(config, w)


def mask_4d(full_mask, past, T, window):
    """HF-style additive mask: causal over absolute indices, padding keys removed."""
    S = full_mask.shape[1]
    qi = torch.arange(past, past + T)[:, None]
    kj = torch.arange(S)[None, :]
    allowed = kj <= qi
    if window is not None:
        allowed = allowed & (qi - kj < window)
    allowed = allowed[None] & full_mask.bool()[:, None, :]
    return torch.where(allowed, 0.0, torch.finfo(torch.float32).min)[:, None]


def positions_from_mask(full_mask):
    pos = full_mask.long().cumsum(-1) - 1
    return pos.masked_fill(full_mask == 0, 1)


def run_forward(model, ids, mask):
    return model(ids, positions_from_mask(mask), mask_4d(mask, 0, ids.shape[1], model.window))


def greedy(model, prompts, max_new, eos):
    """HF generate(do_sample=False): one left-padded batch, a KV cache, new token per step."""
    longest = max(len(p) for p in prompts)
    ids = torch.tensor([[0] * (longest - len(p)) + list(p) for p in prompts])
    mask = torch.tensor([[0] * (longest - len(p)) + [1] * len(p) for p in prompts])
    cache, outs, done = {}, [[] for _ in prompts], [False] * len(prompts)
    step_ids = ids
    for _ in range(max_new):
        past = mask.shape[1] - step_ids.shape[1]
        pos = positions_from_mask(mask)[:, past:]
        logits = model(step_ids, pos, mask_4d(mask, past, step_ids.shape[1], model.window), cache)
        nxt = logits[:, -1].argmax(-1)
        for r, tok in enumerate(nxt.tolist()):
            if done[r]:
                continue
            if eos is not None and tok == eos:
                done[r] = True
            else:
                outs[r].append(tok)
        if all(done):
            break
        step_ids = nxt[:, None]
        mask = torch.cat([mask, torch.ones(len(prompts), 1, dtype=mask.dtype)], dim=1)
    return outs


def main():
    torch.set_grad_enabled(False)
    mode = sys.argv[1]
    if mode == "logits":
        model = build(sys.argv[2])
        with open(sys.argv[3]) as f:
            req = json.load(f)
        ids = torch.tensor(req["input_ids"], dtype=torch.long)
        mask = torch.tensor(req["attention_mask"], dtype=torch.long)
        logits = run_forward(model, ids, mask).float().contiguous()
        logits.numpy().astype("<f4").tofile(sys.argv[4] + ".logits.f32")
        gens = []
        if "generate" in req:
            g = req["generate"]
            gens = greedy(model, g["prompts"], g["max_new_tokens"], g.get("eos_token_id"))
        with open(sys.argv[4] + ".json", "w") as f:
            json.dump({"shape": list(logits.shape), "generations": gens}, f)
    elif mode == "bench":
        torch.set_num_threads(int(sys.argv[4]))
        model = build(sys.argv[2])
        with open(sys.argv[3]) as f:
            windows = json.load(f)["windows"]
        start = time.perf_counter()
        tokens, nll = 0, 0.0
        for win in windows:
            ids = torch.tensor([win])
            logp = torch.log_softmax(run_forward(model, ids, torch.ones_like(ids))[0, :-1].float(), dim=-1)
            nll -= float(logp.gather(-1, ids[0, 1:, None]).sum())
            tokens += len(win) - 1
        print(json.dumps({"tokens": tokens, "nll": nll, "seconds": time.perf_counter() - start}))
    else:
        sys.exit("unknown mode " + mode)


if __name__ == "__main__":
    main()
