#!/usr/bin/python3
"""Independent per-tensor reference merger (torch), mergekit semantics from METHODS.md §5.

Used by amalgam's tests (compare outputs up to rounding) and by bench/bench_merge.sh (the
PyTorch baseline for the speed ratio). Deliberately dumb: loads each tensor whole from
every model, merges it with plain torch ops, writes one safetensors file. Never used by
the product.

  reference_merge.py RECIPE.yaml OUT.safetensors [--compute native|f32] [--seed N]

Recipe subset: `models:` form, `base_model`, `merge_method`, scalar `parameters`
(global and per model), `dtype`, `out_dtype`. Methods: linear, task_arithmetic, ties,
dare_ties, dare_linear, breadcrumbs, breadcrumbs_ties, della, della_linear, slerp,
model_stock.

--compute native (default) works in the tensor's dtype like mergekit (bf16 ops round to
bf16, weights rounded to bf16); --compute f32 works in float32 and rounds once, which is
amalgam's documented numerics (METHODS.md §8.1).
"""
import argparse
import json
import math
import os
import struct
import sys

import torch
import yaml

DTYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "F64": torch.float64}
NAMES = {v: k for k, v in DTYPES.items()}
TORCH_NAMES = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}


class Model:
    """A Hugging Face directory: model.safetensors or an index of shards."""

    def __init__(self, path):
        self.path = path
        self.where = {}
        index = os.path.join(path, "model.safetensors.index.json")
        files = sorted({v for v in json.load(open(index))["weight_map"].values()}) \
            if os.path.exists(index) else ["model.safetensors"]
        self.order = []
        for f in files:
            full = os.path.join(path, f)
            with open(full, "rb") as fh:
                n = struct.unpack("<Q", fh.read(8))[0]
                header = json.loads(fh.read(n))
            for name, info in header.items():
                if name == "__metadata__":
                    continue
                self.where[name] = (full, 8 + n, info)
                self.order.append(name)

    def get(self, name):
        full, base, info = self.where[name]
        a, b = info["data_offsets"]
        with open(full, "rb") as fh:
            fh.seek(base + a)
            buf = bytearray(fh.read(b - a))
        t = torch.frombuffer(buf, dtype=DTYPES[info["dtype"]]) if buf else \
            torch.empty(0, dtype=DTYPES[info["dtype"]])
        return t.reshape(info["shape"])


def write_safetensors(path, tensors):
    header, blobs, off = {"__metadata__": {"format": "pt"}}, [], 0
    for name, t in tensors:
        raw = t.contiguous().view(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""
        header[name] = {"dtype": NAMES[t.dtype], "shape": list(t.shape),
                        "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


# ---- sparsifiers (METHODS.md §5.2.1) ----
def rescale_l1(orig, kept):
    a, b = orig.abs().sum(), kept.abs().sum()
    if a < 1e-7 or b < 1e-7:
        return kept
    return kept * (a / b)


def magnitude(d, density, rescale):
    if density >= 1:
        return d
    k = int(density * d.numel())
    if k <= 0:
        raise ValueError("magnitude: density too small")
    w = d.abs().view(-1).float()
    mask = torch.zeros_like(w)
    mask[torch.topk(w, k=k, largest=True, sorted=False).indices] = 1
    kept = d * mask.view(d.shape).to(d.dtype)
    return rescale_l1(d, kept) if rescale else kept


def random_prune(d, density, rescale, gen):
    if density >= 1:
        return d
    work = d if d.dtype == torch.bfloat16 else d.float()
    mask = torch.bernoulli(torch.full_like(work, density), generator=gen)
    kept = (work * mask)
    kept = rescale_l1(work, kept) if rescale else kept
    return kept.to(d.dtype)


def magnitude_outliers(d, density, gamma, rescale):
    if density >= 1:
        return d
    n = d.numel()
    keep, n_top = int(density * n), int(gamma * n)
    n_bot = n - keep - n_top
    if n_bot < 0:
        n_top, n_bot = n_top + n_bot, 0
    order = torch.argsort(d.abs().view(-1).float())
    mask = torch.zeros(n, dtype=d.dtype)
    mask[order[n_bot:n - n_top]] = 1  # n_top == 0: amalgam keeps [n_bot, N) (METHODS.md §8.5)
    kept = d * mask.view(d.shape)
    return rescale_l1(d, kept) if rescale else kept


def della_prune(d, density, epsilon, rescale, gen):
    if density >= 1:
        return d
    if density <= 0:
        return torch.zeros_like(d)
    work = d if d.dtype == torch.bfloat16 else d.float()
    rows = work.view(1, -1) if work.dim() <= 1 else work.view(work.shape[0], -1)
    c = rows.shape[1]
    ranks = torch.argsort(torch.argsort(rows.abs().float(), dim=1), dim=1).float()
    q = (ranks / max(c - 1, 1)).clamp(0, 1)
    p = (density - epsilon) + 2 * epsilon * q
    mask = torch.bernoulli(p, generator=gen).to(work.dtype).view(work.shape)
    kept = work * mask
    kept = rescale_l1(work, kept) if rescale else kept
    return kept.to(d.dtype)


GTA = {  # sparsifier, consensus, normalize default, rescale default
    "task_arithmetic": (None, False, False, False),
    "ties": ("magnitude", True, True, False),
    "dare_ties": ("random", True, False, True),
    "dare_linear": ("random", False, False, True),
    "breadcrumbs": ("outliers", False, False, False),
    "breadcrumbs_ties": ("outliers", True, False, False),
    "della": ("della", True, True, True),
    "della_linear": ("della", False, False, True),
}


def gta(method, base, others, mparams, gparams, dt, gen):
    sparsifier, consensus, norm_default, rescale_default = GTA[method]
    normalize = bool(gparams.get("normalize", norm_default))
    rescale = bool(gparams.get("rescale", rescale_default))
    lam = float(gparams.get("lambda", 1.0))
    if not others:
        return base
    deltas, weights = [], []
    for x, p in zip(others, mparams):
        d = x.to(dt) - base
        dens = float(p.get("density", gparams.get("density", 1.0)))
        if sparsifier == "magnitude":
            d = magnitude(d, dens, rescale)
        elif sparsifier == "random":
            d = random_prune(d, dens, rescale, gen)
        elif sparsifier == "outliers":
            d = magnitude_outliers(d, dens, float(p.get("gamma", gparams.get("gamma", 0.01))), rescale)
        elif sparsifier == "della":
            d = della_prune(d, dens, float(p.get("epsilon", gparams.get("epsilon", 0.15))), rescale, gen)
        deltas.append(d)
        weights.append(float(p.get("weight", gparams.get("weight"))))
    deltas = torch.stack(deltas)
    w = torch.tensor(weights, dtype=dt).view([-1] + [1] * base.dim())
    deltas = deltas * w
    if consensus:
        sign = torch.where(deltas.sum(0) >= 0, 1, -1).to(dt)
        mask = (deltas.sign() == sign)
        mixed = (deltas * mask).sum(0)
        divisor = (w * mask).sum(0)
        divisor[divisor == 0] = 1
    else:
        mixed = deltas.sum(0)
        divisor = w.sum(0)
        divisor[divisor.abs() < 1e-8] = 1
    if normalize:
        mixed = mixed / divisor
    if lam != 1:
        mixed = mixed * lam
    return base + mixed


def linear(tensors, weights, gparams, dt):
    w = torch.tensor(weights, dtype=dt).view([-1] + [1] * tensors[0].dim())
    r = (torch.stack([t.to(dt) for t in tensors]) * w).sum(0)
    if bool(gparams.get("normalize", True)):
        r = r / w.sum(0)
    return r


def slerp(a, b, t):
    a32, b32 = a.float().view(-1), b.float().view(-1)
    na, nb = a32.norm(), b32.norm()
    ua = a32 / na if na > 1e-8 else a32
    ub = b32 / nb if nb > 1e-8 else b32
    c = float((ua * ub).sum())
    if abs(c) > 0.9995:
        r = (1 - t) * a32 + t * b32
    else:
        th = math.acos(c)
        s = math.sin(th)
        r = (math.sin((1 - t) * th) / s) * a32 + (math.sin(t * th) / s) * b32
    return r.view(a.shape)


def model_stock(base, others, gparams, dt):
    if len(others) < 2:
        raise ValueError("model_stock needs >= 2 models besides the base")
    filter_wise = bool(gparams.get("filter_wise", False))
    w0 = base.to(dt)
    ws = [x.to(dt) for x in others]
    if filter_wise:
        view = (lambda x: x.view(1, -1)) if w0.dim() <= 1 else (lambda x: x.view(-1, x.shape[-1]))
    else:
        view = lambda x: x.reshape(1, -1)
    offs = [view(x - w0) for x in ws]
    n = len(ws)
    cos_sum, pairs = 0, 0
    for i in range(n):
        for j in range(i + 1, n):
            num = (offs[i] * offs[j]).sum(-1)
            den = (offs[i].norm(dim=-1) * offs[j].norm(dim=-1)).clamp_min(1e-6)
            cos_sum = cos_sum + (num / den).clamp(-1, 1)
            pairs += 1
    c = cos_sum / pairs
    t = (n * c / (1 + (n - 1) * c)).unsqueeze(-1)
    avg = view(sum(ws) / n)
    r = t * avg + (1 - t) * view(w0)
    return r.reshape(w0.shape)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("recipe")
    ap.add_argument("out")
    ap.add_argument("--compute", choices=["native", "f32"], default="native")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    rdir = os.path.dirname(os.path.abspath(args.recipe))
    r = yaml.safe_load(open(args.recipe))
    resolve = lambda m: m if os.path.isabs(m) else os.path.normpath(os.path.join(rdir, m)) \
        if os.path.exists(os.path.join(rdir, m)) else m
    method = r["merge_method"]
    gparams = r.get("parameters") or {}
    base_ref = r.get("base_model")
    entries = [(resolve(m["model"]), m.get("parameters") or {}) for m in r["models"]]
    if base_ref is not None:
        base_ref = resolve(base_ref)
        if base_ref not in [e[0] for e in entries]:
            entries.append((base_ref, {}))  # mergekit auto-adds the base as a source
    models = {path: Model(path) for path, _ in entries}
    load_dt = TORCH_NAMES.get(str(r.get("dtype", "")).replace("torch.", ""))
    out_dt = TORCH_NAMES.get(str(r.get("out_dtype", "")).replace("torch.", ""))
    gen = torch.Generator().manual_seed(args.seed)
    donor = models[base_ref] if base_ref else models[entries[0][0]]
    out = []
    for name in donor.order:
        ts = [(models[p].get(name), p, mp) for p, mp in entries]
        if load_dt is not None:
            ts = [(t.to(load_dt), p, mp) for t, p, mp in ts]
        base = next((t for t, p, _ in ts if p == base_ref), None)
        stored = base.dtype if base is not None else ts[0][0].dtype
        dt = torch.float32 if args.compute == "f32" else stored
        others = [(t, mp) for t, p, mp in ts if p != base_ref]
        if method == "linear":
            ws = [float(mp.get("weight", gparams.get("weight"))) for _, _, mp in ts]
            res = linear([t for t, _, _ in ts], ws, gparams, dt)
        elif method in GTA:
            res = gta(method, base.to(dt), [t for t, _ in others], [mp for _, mp in others],
                      gparams, dt, gen)
        elif method == "slerp":
            res = slerp(base, others[0][0], float(gparams["t"]))
        elif method == "model_stock":
            res = model_stock(base, [t for t, _ in others], gparams, dt)
        else:
            sys.exit(f"reference_merge: method {method} not implemented")
        out.append((name, res.to(out_dt or load_dt or stored)))
    write_safetensors(args.out, out)


if __name__ == "__main__":
    main()
