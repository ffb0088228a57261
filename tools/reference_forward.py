#!/usr/bin/env python3
"""An exact (float64) evaluation of a llama-architecture GGUF model, for tests.

Weights are dequantized with the `gguf` package; every activation stays in
float64 (no activation quantization, no f16 KV cache).  Neither kvsteer nor
llama.cpp computes exactly this - both quantize activations to 8 bits for the
integer dot products - so it is the yardstick against which both are measured:
tests/test_parity.c checks that kvsteer stays close to it, and that kvsteer's
distance from llama.cpp is explained by llama.cpp's own distance from it.

For every prompt of the golden file that has logits, records the exact logits at
the same vocabulary ids (the top-40 ids and every 97th id), the exact argmax and
the exact margin between the best and second-best logit.

Usage:
  python3 tools/reference_forward.py --model models/SmolLM2-135M-Instruct.Q4_1.gguf \\
      --golden tests/golden/smollm2_q4_1.json --out tests/golden/smollm2_q4_1_exact.json
"""
import argparse
import json

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
    if meta.get("general.architecture") != "llama":
        raise SystemExit(f"{path}: reference supports architecture 'llama' only")
    w = {}
    for t in r.tensors:
        a = dequantize(t.data, t.tensor_type).astype(np.float64)
        w[t.name] = a.reshape([int(x) for x in reversed(t.shape)])
    return meta, w


def forward(meta, w, toks):
    a = "llama."
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

    def rope(v):  # GGUF llama layout: rotate adjacent pairs
        out = v.copy()
        e, o = v[..., 0:rd:2], v[..., 1:rd:2]
        out[..., 0:rd:2] = e * cos - o * sin
        out[..., 1:rd:2] = e * sin + o * cos
        return out

    mask = np.triu(np.full((n, n), -np.inf), 1)
    for l in range(nl):
        p = f"blk.{l}."
        h = rms(x, w[p + "attn_norm.weight"])
        q = rope((h @ w[p + "attn_q.weight"].T).reshape(n, nh, hd))
        k = rope((h @ w[p + "attn_k.weight"].T).reshape(n, nkv, hd))
        v = (h @ w[p + "attn_v.weight"].T).reshape(n, nkv, hd)
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
    stride = g["logit_stride"]
    res = []
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
    with open(args.out, "w") as f:
        json.dump({"model": g["model"], "generator": "tools/reference_forward.py (float64 numpy)",
                   "prompts": res}, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
