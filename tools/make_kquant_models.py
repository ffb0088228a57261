#!/usr/bin/env python3
"""Tiny random-weight llama models in Q4_K_M, Q5_K_M, Q6_K, Q5_0 and Q5_1, with
llama.cpp's outputs on them, for tests/test_kquant_models.c.

The model (n_embd 256, n_ff 256, 2 layers, 4 heads, 2 KV heads, a 286-token
SentencePiece-style vocabulary of 3 specials, 256 byte tokens and 27 letters)
is written in F32 with the `gguf` package from a fixed seed, then quantized by
llama.cpp itself (llama-cpp-python's llama_model_quantize), so the files mix
types the way real ones do (Q4_K_M: Q4_K with Q6_K for attn_v/ffn_down of some
layers and the output; Q5_0/Q5_1 files keep a Q6_K output).

For each file llama.cpp (llama-cpp-python, one thread) records, for a few fixed
token-id prompts fed directly (no tokenizer involved): the logits at the last
prompt position (all of them) and the greedy continuation.  Beside them go the
exact logits of the same file (float64 evaluation of its dequantized weights by
tools/reference_forward.py), and the same evaluation with every matrix
product's input rounded to the activation format the weight type calls for
(Q8_K for the K-quants, Q8_0 for Q5_0, Q8_1 for Q5_1, by ggml's rules): this
"emulated" reference is what kvsteer computes up to float32 summation order,
so it pins the weight formats far more tightly than llama.cpp's logits, which
also carry llama.cpp's fp16 K/V cache and attention.  Prompts are drawn
from a fixed seed, separately per file, keeping only those whose greedy
decisions llama.cpp wins by at least MIN_MARGIN logits.  Closer calls are decided
by rounding noise in any implementation: on these random models one activation
code rounded the other way at a 1-ulp tie moves logits by ~0.1, and
llama.cpp and an exact evaluation differ by ~0.25.  With every logit within
half the margin of llama.cpp's, identical greedy tokens are a fair demand.

Weights are scaled so that the model is not trivially flat: matrices with
std 1/sqrt(fan_in), F32 norms near 1, output rows with std 0.25 (logit spread of
a few units, like a trained model's).

Usage: python3 tools/make_kquant_models.py     (writes tests/fixtures/kq_*.gguf
       and tests/fixtures/kquant_models.json; needs gguf, numpy, llama_cpp)
"""
import ctypes
import json
import os
import tempfile

import numpy as np

N_EMBD, N_FF, N_LAYER, N_HEAD, N_HEAD_KV = 256, 256, 2, 4, 2
SEED = 1123
N_PROMPTS = 4
PROMPT_LEN = (3, 12)
GREEDY_TOKENS = 5
MIN_MARGIN = 1.0

FTYPES = {  # file suffix -> llama_cpp ftype attribute
    "q4_k_m": "LLAMA_FTYPE_MOSTLY_Q4_K_M",
    "q5_k_m": "LLAMA_FTYPE_MOSTLY_Q5_K_M",
    "q6_k": "LLAMA_FTYPE_MOSTLY_Q6_K",
    "q5_0": "LLAMA_FTYPE_MOSTLY_Q5_0",
    "q5_1": "LLAMA_FTYPE_MOSTLY_Q5_1",
}


def vocab():
    tokens = ["<unk>", "<s>", "</s>"] + ["<0x%02X>" % b for b in range(256)]
    types = [2, 3, 3] + [6] * 256
    letters = ["\u2581"] + [chr(c) for c in range(ord("a"), ord("z") + 1)]
    tokens += letters
    types += [1] * len(letters)
    scores = [0.0] * 259 + [-float(i) for i in range(len(letters))]
    return tokens, scores, types


def write_f32(path):
    from gguf import GGUFWriter

    rng = np.random.default_rng(SEED)
    tokens, scores, types = vocab()
    n_vocab = len(tokens)
    hd = N_EMBD // N_HEAD
    w = GGUFWriter(path, arch="llama")
    w.add_name("kvsteer k-quant fixture")
    w.add_context_length(256)
    w.add_embedding_length(N_EMBD)
    w.add_feed_forward_length(N_FF)
    w.add_block_count(N_LAYER)
    w.add_head_count(N_HEAD)
    w.add_head_count_kv(N_HEAD_KV)
    w.add_rope_dimension_count(hd)
    w.add_rope_freq_base(10000.0)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_file_type(0)
    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)
    w.add_add_bos_token(False)

    def mat(rows, cols, std):  # numpy (rows, cols) is a ggml tensor of ne = [cols, rows]
        return (rng.standard_normal((rows, cols)) * std).astype(np.float32)

    def norm():
        return (1.0 + 0.1 * rng.standard_normal(N_EMBD)).astype(np.float32)

    w.add_tensor("token_embd.weight", mat(n_vocab, N_EMBD, 1.0))
    for il in range(N_LAYER):
        p = "blk.%d." % il
        w.add_tensor(p + "attn_norm.weight", norm())
        w.add_tensor(p + "attn_q.weight", mat(N_HEAD * hd, N_EMBD, N_EMBD ** -0.5))
        w.add_tensor(p + "attn_k.weight", mat(N_HEAD_KV * hd, N_EMBD, N_EMBD ** -0.5))
        w.add_tensor(p + "attn_v.weight", mat(N_HEAD_KV * hd, N_EMBD, N_EMBD ** -0.5))
        w.add_tensor(p + "attn_output.weight", mat(N_EMBD, N_HEAD * hd, (N_HEAD * hd) ** -0.5))
        w.add_tensor(p + "ffn_norm.weight", norm())
        w.add_tensor(p + "ffn_gate.weight", mat(N_FF, N_EMBD, N_EMBD ** -0.5))
        w.add_tensor(p + "ffn_up.weight", mat(N_FF, N_EMBD, N_EMBD ** -0.5))
        w.add_tensor(p + "ffn_down.weight", mat(N_EMBD, N_FF, N_FF ** -0.5))
    w.add_tensor("output_norm.weight", norm())
    w.add_tensor("output.weight", mat(n_vocab, N_EMBD, 0.25))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return n_vocab


def q8_rows(x, wtype):
    """x (rows, k) after a round trip through the activation format for `wtype`."""
    from gguf import GGMLQuantizationType as T

    x = np.asarray(x, dtype=np.float32)
    if wtype in (T.Q4_K, T.Q5_K, T.Q6_K):  # Q8_K: sign of the extreme, round half even
        b = x.reshape(-1, 256)
        ext = b[np.arange(len(b)), np.argmax(np.abs(b), axis=1)]
        out = np.zeros_like(b)
        nz = ext != 0
        iscale = (np.float32(-127.0) / ext[nz]).astype(np.float32)[:, None]
        q = np.clip(np.rint((iscale * b[nz]).astype(np.float32)), -127, 127)
        out[nz] = q * (np.float32(1.0) / iscale)
        return out.reshape(x.shape).astype(np.float64)
    if wtype in (T.Q5_0, T.Q5_1):  # Q8_0/Q8_1: amax/127, round half away, fp16 scale
        b = x.reshape(-1, 32)
        d = (np.abs(b).max(axis=1) / np.float32(127.0)).astype(np.float32)
        idv = np.where(d != 0, np.float32(1.0) / np.where(d != 0, d, 1), 0).astype(np.float32)[:, None]
        t = (b * idv).astype(np.float32)
        q = np.clip(np.sign(t) * np.floor(np.abs(t) + np.float32(0.5)), -127, 127)
        xq = (q * d.astype(np.float16).astype(np.float32)[:, None]).reshape(x.shape).astype(np.float64)
        if wtype == T.Q5_1:  # Q8_1's s: the code sum times the float d, rounded to fp16
            s = (q.sum(axis=1) * d).astype(np.float32).astype(np.float16).astype(np.float64)
            return xq, s.reshape(x.shape[0], -1)
        return xq
    return x.astype(np.float64)


def q5_1_mins(raw, rows, k):
    """The fp16 offsets m of a Q5_1 tensor, (rows, k/32)."""
    blocks = np.asarray(raw, dtype=np.uint8).reshape(rows, k // 32, 24)
    return blocks[:, :, 2:4].copy().view(np.float16)[..., 0].astype(np.float64)


def emulated_forward(meta, w, types, raws, toks):
    """tools/reference_forward.py's float64 evaluation, with each matrix
    product's input rounded through its activation format."""
    a = "llama."
    d, nh = meta[a + "embedding_length"], meta[a + "attention.head_count"]
    nkv, nl, eps = meta[a + "attention.head_count_kv"], meta[a + "block_count"], meta[a + "attention.layer_norm_rms_epsilon"]
    hd = d // nh
    rd, base = meta.get(a + "rope.dimension_count", hd), meta.get(a + "rope.freq_base", 10000.0)
    n = len(toks)
    x = w["token_embd.weight"][toks]
    ang = np.arange(n)[:, None] * (base ** (-np.arange(0, rd, 2) / rd))[None, :]
    cos, sin = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]

    def rms(v, g):
        return (v / np.sqrt((v * v).mean(-1, keepdims=True) + eps)) * g

    def rope(v):
        out = v.copy()
        e, o = v[..., 0:rd:2], v[..., 1:rd:2]
        out[..., 0:rd:2] = e * cos - o * sin
        out[..., 1:rd:2] = e * sin + o * cos
        return out

    def mm(h, name):
        from gguf import GGMLQuantizationType as T

        if types[name] != T.Q5_1:
            return q8_rows(h, types[name]) @ w[name].T
        # Q5_1 x Q8_1 is d_w*d_a*sum(codes) + m*s per block: the offset part goes
        # through s, not through the rounded activations
        xq, s = q8_rows(h, T.Q5_1)
        rows, k = w[name].shape
        m = q5_1_mins(raws[name], rows, k)
        return xq @ (w[name] - np.repeat(m, 32, axis=1)).T + s @ m.T

    mask = np.triu(np.full((n, n), -np.inf), 1)
    for l in range(nl):
        p = "blk.%d." % l
        h = rms(x, w[p + "attn_norm.weight"])
        q = rope(mm(h, p + "attn_q.weight").reshape(n, nh, hd))
        k = rope(mm(h, p + "attn_k.weight").reshape(n, nkv, hd))
        v = mm(h, p + "attn_v.weight").reshape(n, nkv, hd)
        att = np.zeros((n, nh, hd))
        for i in range(nh):
            j = i // (nh // nkv)
            s = q[:, i] @ k[:, j].T / np.sqrt(hd) + mask
            s = np.exp(s - s.max(-1, keepdims=True))
            att[:, i] = (s / s.sum(-1, keepdims=True)) @ v[:, j]
        x = x + mm(att.reshape(n, -1), p + "attn_output.weight")
        h = rms(x, w[p + "ffn_norm.weight"])
        g, u = mm(h, p + "ffn_gate.weight"), mm(h, p + "ffn_up.weight")
        x = x + mm((g / (1 + np.exp(-g))) * u, p + "ffn_down.weight")
    x = rms(x, w["output_norm.weight"])
    return mm(x[-1:], "output.weight")[0]


def last_logits(llama_cpp, m):
    ptr = llama_cpp.llama_get_logits_ith(m._ctx.ctx, -1)
    return np.ctypeslib.as_array(ctypes.cast(ptr, ctypes.POINTER(ctypes.c_float)), shape=(m.n_vocab(),)).copy()


def margin(lg):
    top2 = np.sort(lg)[-2:]
    return float(top2[1] - top2[0])


def run(llama_cpp, m, ids):
    """Last-position logits, greedy continuation, smallest greedy margin."""
    m.reset()
    m.eval(ids)
    lg = last_logits(llama_cpp, m)
    first, gen, worst = lg, [], margin(lg)
    for _ in range(GREEDY_TOKENS):
        tok = int(np.argmax(lg))
        gen.append(tok)
        m.eval([tok])
        lg = last_logits(llama_cpp, m)
        if len(gen) < GREEDY_TOKENS:
            worst = min(worst, margin(lg))
    return first, gen, worst


def main():
    import gguf
    import llama_cpp
    from gguf import GGUFReader
    from llama_cpp import Llama

    import reference_forward

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    fixtures = os.path.join(root, "tests", "fixtures")
    os.makedirs(fixtures, exist_ok=True)
    out = {
        "generator": "tools/make_kquant_models.py with gguf %s and llama-cpp-python %s"
        % (getattr(gguf, "__version__", "?"), llama_cpp.__version__),
        "greedy_tokens": GREEDY_TOKENS,
        "min_margin": MIN_MARGIN,
        "models": [],
    }
    with tempfile.TemporaryDirectory() as td:
        f32 = os.path.join(td, "f32.gguf")
        n_vocab = write_f32(f32)
        models = []
        for suffix, attr in FTYPES.items():
            path = os.path.join(fixtures, "kq_%s.gguf" % suffix)
            params = llama_cpp.llama_model_quantize_default_params()
            params.ftype = getattr(llama_cpp, attr)
            params.nthread = 1
            rc = llama_cpp.llama_model_quantize(f32.encode(), path.encode(), ctypes.byref(params))
            assert rc == 0, (suffix, rc)
            kinds = sorted({t.tensor_type.name for t in GGUFReader(path).tensors})
            m = Llama(path, n_ctx=64, n_batch=64, n_threads=1, logits_all=False, seed=0, verbose=False)
            assert m.n_vocab() == n_vocab
            models.append((suffix, path, kinds, m))

        # per file, prompts whose greedy decisions are clear
        chosen = []
        for suffix, _, _, m in models:
            rng = np.random.default_rng(SEED + 1)
            kept, tried = [], 0
            while len(kept) < N_PROMPTS:
                tried += 1
                assert tried < 5000, "no prompts with clear greedy decisions; lower MIN_MARGIN"
                n = int(rng.integers(PROMPT_LEN[0], PROMPT_LEN[1] + 1))
                ids = [1] + [int(t) for t in rng.integers(3, n_vocab, size=n - 1)]
                res = run(llama_cpp, m, ids)
                if res[2] >= MIN_MARGIN:
                    kept.append((ids, res))
            print("%s: kept %d of %d candidate prompts" % (suffix, len(kept), tried))
            chosen.append(kept)

        for mi, (suffix, path, kinds, _) in enumerate(models):
            entry = {"file": "tests/fixtures/kq_%s.gguf" % suffix, "tensor_types": kinds, "prompts": []}
            meta, weights = reference_forward.load(path)
            reader = GGUFReader(path)
            types = {t.name: t.tensor_type for t in reader.tensors}
            raws = {t.name: t.data for t in reader.tensors}
            for ids, (lg, gen, worst) in chosen[mi]:
                exact = reference_forward.forward(meta, weights, ids)
                entry["prompts"].append({
                    "ids": ids,
                    "logits": [round(float(x), 6) for x in lg],
                    "exact": [round(float(x), 6) for x in exact],
                    "emulated": [round(float(x), 6) for x in emulated_forward(meta, weights, types, raws, ids)],
                    "llama_exact": round(float(np.abs(exact - lg).max()), 6),
                    "argmax": int(np.argmax(lg)),
                    "greedy": gen,
                    "min_margin": round(worst, 4),
                })
            out["models"].append(entry)
            print("%s: %d bytes, types %s" % (path, os.path.getsize(path), " ".join(kinds)))
        for _, _, _, m in models:
            m.close()

    dst = os.path.join(fixtures, "kquant_models.json")
    with open(dst + ".tmp", "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    os.replace(dst + ".tmp", dst)
    print(dst)


if __name__ == "__main__":
    main()
