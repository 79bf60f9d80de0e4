#!/usr/bin/python3
"""Benchmark of amalgam's log-likelihood path against the Python torch reference.

Writes a ~100M-parameter Llama-shaped model with random weights (vocab 32000, hidden 768,
8 layers, 12 heads / 4 KV heads, MLP 2048) and a byte-vocabulary tokenizer.json, then
scores the same random text in windows of --context tokens with
  amalgam eval MODEL --text FILE --context N --threads T --json
and with tests/eval/reference_forward.py (bench mode, same windows, same thread count).
Prints a table: tokens/s of each, their ratio, and both summed NLLs (they must agree).

Usage: bench/eval_bench.py [--amalgam build/amalgam] [--threads 2] [--context 512]
                           [--chars 4096] [--repeat 2] [--workdir /tmp/amalgam_eval_bench]
                           [--wait-policy PASSIVE|ACTIVE]
"""
import argparse
import json
import os
import random
import struct
import subprocess
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def write_model(path, vocab, hidden, layers, heads, kv_heads, inter, ctx):
    os.makedirs(path, exist_ok=True)
    rng = np.random.default_rng(0)
    hd = hidden // heads
    shapes = {"model.embed_tokens.weight": [vocab, hidden], "model.norm.weight": [hidden],
              "lm_head.weight": [vocab, hidden]}
    for i in range(layers):
        p = f"model.layers.{i}."
        shapes.update({p + "input_layernorm.weight": [hidden], p + "post_attention_layernorm.weight": [hidden],
                       p + "self_attn.q_proj.weight": [heads * hd, hidden],
                       p + "self_attn.k_proj.weight": [kv_heads * hd, hidden],
                       p + "self_attn.v_proj.weight": [kv_heads * hd, hidden],
                       p + "self_attn.o_proj.weight": [hidden, heads * hd],
                       p + "mlp.gate_proj.weight": [inter, hidden], p + "mlp.up_proj.weight": [inter, hidden],
                       p + "mlp.down_proj.weight": [hidden, inter]})
    header, blobs, offset = {"__metadata__": {"format": "pt"}}, [], 0
    for name in sorted(shapes):
        shape = shapes[name]
        if name.endswith("norm.weight"):
            arr = np.ones(shape, dtype=np.float32)
        else:
            arr = (rng.standard_normal(shape, dtype=np.float32) * 0.02).astype("<f4")
        blobs.append(arr.tobytes())
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + len(blobs[-1])]}
        offset += len(blobs[-1])
    hjson = json.dumps(header).encode()
    hjson += b" " * ((8 - len(hjson) % 8) % 8)
    with open(os.path.join(path, "model.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(hjson)))
        f.write(hjson)
        for b in blobs:
            f.write(b)
    config = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": vocab,
              "hidden_size": hidden, "num_hidden_layers": layers, "num_attention_heads": heads,
              "num_key_value_heads": kv_heads, "intermediate_size": inter, "max_position_embeddings": ctx,
              "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "tie_word_embeddings": False, "hidden_act": "silu"}
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump(config, f)
    # Byte-character vocabulary (ids 0..127 = ASCII) padded with unused tokens to `vocab`.
    v = {chr(i): i for i in range(128)}
    v.update({f"<unused_{i}>": i for i in range(128, vocab)})
    tok = {"version": "1.0", "added_tokens": [], "normalizer": None, "pre_tokenizer": None,
           "post_processor": None, "decoder": {"type": "Fuse"},
           "model": {"type": "BPE", "vocab": v, "merges": [], "unk_token": None, "byte_fallback": False}}
    with open(os.path.join(path, "tokenizer.json"), "w") as f:
        json.dump(tok, f)
    return sum(int(np.prod(s)) for s in shapes.values())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--amalgam", default=os.path.join(ROOT, "build", "amalgam"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--context", type=int, default=512)
    ap.add_argument("--chars", type=int, default=4096)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--workdir", default="/tmp/amalgam_eval_bench")
    ap.add_argument("--wait-policy", default="PASSIVE", help="OMP_WAIT_POLICY for both sides")
    a = ap.parse_args()
    model = os.path.join(a.workdir, "model")
    params = write_model(model, 32000, 768, 8, 12, 4, 2048, 2048)
    rnd = random.Random(1)
    words = ["".join(rnd.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rnd.randint(1, 9)))
             for _ in range(a.chars)]
    text = " ".join(words)[: a.chars]
    with open(os.path.join(a.workdir, "text.txt"), "w") as f:
        f.write(text)
    ids = [ord(c) for c in text]
    windows = [ids[i:i + a.context] for i in range(0, len(ids), a.context)]
    with open(os.path.join(a.workdir, "windows.json"), "w") as f:
        json.dump({"windows": windows}, f)
    # amalgam re-executes itself with OMP_WAIT_POLICY=PASSIVE (src/cli/main.cc); the
    # reference gets the same policy so that the ratio compares the forward passes, not
    # libgomp's spinning (which costs the default-policy reference 2-3x on 2 cores).
    env = dict(os.environ, OMP_NUM_THREADS=str(a.threads), OPENBLAS_NUM_THREADS=str(a.threads),
               OMP_WAIT_POLICY=a.wait_policy)
    rows = []
    for rep in range(a.repeat):
        out = subprocess.run([a.amalgam, "eval", model, "--text", os.path.join(a.workdir, "text.txt"),
                              "--context", str(a.context), "--threads", str(a.threads), "--batch-size", "1",
                              "--json", "--quiet"], check=True, capture_output=True, text=True, env=env)
        cpp = json.loads(out.stdout)
        out = subprocess.run([sys.executable, os.path.join(ROOT, "tests", "eval", "reference_forward.py"), "bench",
                              model, os.path.join(a.workdir, "windows.json"), str(a.threads)],
                             check=True, capture_output=True, text=True, env=env)
        ref = json.loads(out.stdout)
        processed = len(ids)  # every token goes through the model once
        rows.append((rep, processed / cpp["seconds"], processed / ref["seconds"], cpp["nll"], ref["nll"]))
    print(f"model: Llama-shaped, {params / 1e6:.1f}M parameters, f32; {len(ids)} tokens in "
          f"{len(windows)} windows of {a.context}; {a.threads} threads")
    print("| run | amalgam tok/s | python torch tok/s | ratio | amalgam nll | python nll |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for rep, c, p, cn, pn in rows:
        print(f"| {rep} | {c:.0f} | {p:.0f} | {c / p:.2f}x | {cn:.3f} | {pn:.3f} |")
        if abs(cn - pn) > 1e-3 * abs(pn):
            sys.exit("NLL mismatch between amalgam and the reference")


if __name__ == "__main__":
    main()
