#!/usr/bin/env python3
"""An exact (float64) evaluation of a llama- or qwen2-architecture GGUF model, for tests.

Weights are dequantized with the `gguf` package; every activation stays in
float64 (no activation quantization, no f16 KV cache).  Neither kvsteer nor
llama.cpp computes exactly this - both quantize activations to 8 bits for the
integer dot products - so it is the yardstick against which both are measured:
tests/test_parity.c checks that kvsteer stays close to it, and that kvsteer's
distance from llama.cpp is explained by llama.cpp's own distance from it.

For every prompt of the golden file that has logits, records the exact logits at
the same vocabulary ids (the top-40 ids and every 97th id), the exact argmax and
the exact margin between the best and second-best logit.

A real-file golden of tools/make_real_goldens.py (a "texts" list) works the
same way: one entry per text with logits, by its index in that list.

Usage:
  python3 tools/reference_forward.py --model models/SmolLM2-135M-Instruct.Q4_1.gguf \\
      --golden tests/golden/smollm2_q4_1.json --out tests/golden/smollm2_q4_1_exact.json
  python3 tools/reference_forward.py --model models/qwen2.5-coder-0.5b-instruct.gguf \\
      --golden tests/golden/qwen2.5-coder-0.5b.json --out tests/golden/qwen2.5-coder-0.5b_exact.json
"""
import argparse
import json
import os

import numpy as np
from gguf import GGUFReader
from gguf.quants import dequantize


def load(path):
    r = GGUFReader(path)
    meta = {}
    for k, f in r.fields.items():
        try:
            meta[k] = f.contents()
        except Exception:
            pass
    if meta.get("general.architecture") not in ("llama", "qwen2"):
        raise SystemExit(f"{path}: reference supports architectures 'llama' and 'qwen2' only")
    w = {}
    for t in r.tensors:
        a = dequantize(t.data, t.tensor_type).astype(np.float64)
        w[t.name] = a.reshape([int(x) for x in reversed(t.shape)])
    return meta, w


def forward(meta, w, toks):
    arch = meta["general.architecture"]
    a = arch + "."
    d = meta[a + "embedding_length"]
    nh = meta[a + "attention.head_count"]
    nkv = meta.get(a + "attention.head_count_kv", nh)
    hd = d // nh
    nl = meta[a + "block_count"]
    eps = meta[a + "attention.layer_norm_rms_epsilon"]
    base = meta.get(a + "rope.freq_base", 10000.0)
    rd = meta.get(a + "rope.dimension_count", hd)
    n = len(toks)
    x = w["token_embd.weight"][toks]
    inv = base ** (-np.arange(0, rd, 2) / rd)
    ang = np.arange(n)[:, None] * inv[None, :]
    cos, sin = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]

    def rms(v, g):
        return v / np.sqrt((v * v).mean(-1, keepdims=True) + eps) * g

    def rope(v):
        out = v.copy()
        if arch == "llama":  # GGUF llama layout: rotate adjacent pairs
            e, o = v[..., 0:rd:2], v[..., 1:rd:2]
            out[..., 0:rd:2] = e * cos - o * sin
            out[..., 1:rd:2] = e * sin + o * cos
        else:  # qwen2 (NEOX layout): rotate the first half against the second
            e, o = v[..., 0:rd // 2], v[..., rd // 2:rd]
            out[..., 0:rd // 2] = e * cos - o * sin
            out[..., rd // 2:rd] = e * sin + o * cos
        return out

    def lin(h, name):  # qwen2's q, k and v projections carry a bias
        y = h @ w[name + ".weight"].T
        return y + w[name + ".bias"] if name + ".bias" in w else y

    mask = np.triu(np.full((n, n), -np.inf), 1)
    for l in range(nl):
        p = f"blk.{l}."
        h = rms(x, w[p + "attn_norm.weight"])
        q = rope(lin(h, p + "attn_q").reshape(n, nh, hd))
        k = rope(lin(h, p + "attn_k").reshape(n, nkv, hd))
        v = lin(h, p + "attn_v").reshape(n, nkv, hd)
        out = np.zeros((n, nh, hd))
        for i in range(nh):
            j = i // (nh // nkv)
            s = q[:, i] @ k[:, j].T / np.sqrt(hd) + mask
            s = np.exp(s - s.max(-1, keepdims=True))
            s /= s.sum(-1, keepdims=True)
            out[:, i] = s @ v[:, j]
        x = x + out.reshape(n, -1) @ w[p + "attn_output.weight"].T
        h = rms(x, w[p + "ffn_norm.weight"])
        g = h @ w[p + "ffn_gate.weight"].T
        u = h @ w[p + "ffn_up.weight"].T
        x = x + ((g / (1 + np.exp(-g))) * u) @ w[p + "ffn_down.weight"].T
    x = rms(x, w["output_norm.weight"])
    out_w = w.get("output.weight", w["token_embd.weight"])
    return x[-1] @ out_w.T


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--golden", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    meta, w = load(args.model)
    g = json.load(open(args.golden))
    res = []
    if "texts" in g:  # a real-file golden
        for i, e in enumerate(g["texts"]):
            if not e.get("logits"):
                continue
            lg = forward(meta, w, e["ids"])
            order = np.argsort(-lg)
            res.append({
                "index": i,
                "argmax": int(order[0]),
                "margin": round(float(lg[order[0]] - lg[order[1]]), 5),
                "top": [round(float(lg[t]), 5) for t, _ in e["logits"]["top"]],
            })
        write(args.out, {"model": g["model"], "model_sha256": g["model_sha256"],
                         "generator": "tools/reference_forward.py (float64 numpy)", "texts": res})
        return
    stride = g["logit_stride"]
    for p in g["prompts"]:
        if not p.get("logits"):
            continue
        lg = forward(meta, w, p["ids"])
        order = np.argsort(-lg)
        res.append({
            "label": p["label"],
            "argmax": int(order[0]),
            "margin": round(float(lg[order[0]] - lg[order[1]]), 5),
            "top": [round(float(lg[i]), 5) for i, _ in p["logits"]["top"]],
            "strided": [round(float(lg[i * stride]), 5) for i in range(len(p["logits"]["strided"]))],
        })
    write(args.out, {"model": g["model"], "generator": "tools/reference_forward.py (float64 numpy)", "prompts": res})


def write(path, doc):
    tmp = path + ".tmp"  # never a half-written golden
    with open(tmp, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    os.replace(tmp, path)


if __name__ == "__main__":
    main()
