#!/usr/bin/env python3
"""Tiny random-weight GGUF models of each supported architecture, with
reference outputs from llama.cpp, for tests/test_archs.c.

Each fixture carries the metadata and tensor layout of its real family (as
llama.cpp's converter writes them) at toy sizes, a small synthetic byte-level
BPE vocabulary with the family's special tokens, and a chat template of the
family's shape.  The golden JSON records, per fixture, from llama-cpp-python:
  - last-position logits (all of them: the vocabulary is small) for fixed
    token-id sequences fed directly, so the tokenizer plays no part;
  - the token ids llama.cpp gives for a chat-rendered prompt (rendered with
    jinja2 from the file's own template) and 16 greedy tokens after it;
  - the template renderings themselves.
The reference runs with an F32 KV cache and without flash attention, so it
rounds nothing kvsteer does not round.

usage: tools/make_tiny_models.py [--out tests/fixtures]
"""
import argparse
import ctypes
import json
import math
import os
import sys

import numpy as np

VOCAB_CORPUS = (
    "the quick brown fox jumps over the lazy dog. what is the capital of france? "
    "paris is the capital. hello world, this is a test of the tiny model and its "
    "tokenizer. one two three four five six seven eight nine ten."
)
N_MERGES = 60
SEQS = [  # token-id sequences (ids are drawn per model from its plain tokens)
    ("one", 1), ("short", 5), ("medium", 13), ("long", 40),
]
GREEDY_TOKENS = 16
GAIN = 4.0
CHAT_CASES = [
    ([{"role": "user", "content": "Hi there!"}], True),
    ([{"role": "system", "content": "You are a pirate."}, {"role": "user", "content": "Say hello."}], True),
    ([{"role": "user", "content": "What is 2+2?"}, {"role": "assistant", "content": "4"},
      {"role": "user", "content": "And 3+3?"}], True),
]
GREEDY_CHAT = [{"role": "user", "content": "What is the capital of France?"}]

TEMPLATES = {
    # ChatML with a default system prompt, as Qwen2 instruct files carry
    "chatml": (
        "{% for message in messages %}"
        "{% if loop.first and messages[0]['role'] != 'system' %}"
        "{{ '<|im_start|>system\\nYou are a tiny test model.<|im_end|>\\n' }}{% endif %}"
        "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
        "{% endfor %}"
        "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
    ),
    "llama3": (
        "{{ bos_token }}{% for message in messages %}"
        "{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim"
        " + '<|eot_id|>' }}{% endfor %}"
        "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}"
    ),
    # Phi-3.5-mini's shape: one literal per role
    "phi3": (
        "{% for message in messages %}"
        "{% if message['role'] == 'system' and message['content'] %}"
        "{{ '<|system|>\\n' + message['content'] + '<|end|>\\n' }}"
        "{% elif message['role'] == 'user' %}{{ '<|user|>\\n' + message['content'] + '<|end|>\\n' }}"
        "{% elif message['role'] == 'assistant' %}{{ '<|assistant|>\\n' + message['content'] + '<|end|>\\n' }}"
        "{% endif %}{% endfor %}"
        "{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% else %}{{ eos_token }}{% endif %}"
    ),
    "gemma": (
        "{{ bos_token }}{% set first_user_prefix = '' %}"
        "{% if messages[0]['role'] == 'system' %}"
        "{% set first_user_prefix = messages[0]['content'] | trim + '\\n\\n' %}"
        "{% set loop_messages = messages[1:] %}{% else %}{% set loop_messages = messages %}{% endif %}"
        "{% for message in loop_messages %}"
        "{% if message['role'] == 'assistant' %}{% set role = 'model' %}{% else %}{% set role = message['role'] %}{% endif %}"
        "{{ '<start_of_turn>' + role + '\\n' + (first_user_prefix if loop.first else '') }}"
        "{{ message['content'] | trim }}{{ '<end_of_turn>\\n' }}{% endfor %}"
        "{% if add_generation_prompt %}{{ '<start_of_turn>model\\n' }}{% endif %}"
    ),
}


def bytes_to_unicode():
    """GPT-2's reversible byte -> printable character map."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("\xa1"), ord("\xac") + 1)) + \
        list(range(ord("\xae"), ord("\xff") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


def build_vocab(specials):
    """256 byte tokens, N_MERGES merges learnt from VOCAB_CORPUS (words split
    GPT-2 style: a leading space belongs to the word), then special tokens."""
    b2u = bytes_to_unicode()
    tokens = [b2u[b] for b in range(256)]
    words = []
    for i, w in enumerate(VOCAB_CORPUS.split(" ")):
        words.append([b2u[b] for b in ((" " if i else "") + w).encode()])
    merges = []
    for _ in range(N_MERGES):
        counts = {}
        for w in words:
            for a, b in zip(w, w[1:]):
                counts[(a, b)] = counts.get((a, b), 0) + 1
        if not counts:
            break
        best = max(sorted(counts), key=lambda p: counts[p])
        merges.append(best[0] + " " + best[1])
        tokens.append(best[0] + best[1])
        for w in words:
            i = 0
            while i < len(w) - 1:
                if (w[i], w[i + 1]) == best:
                    w[i:i + 2] = [best[0] + best[1]]
                else:
                    i += 1
    n_plain = len(tokens)
    tokens += specials
    types = [1] * n_plain + [3] * len(specials)
    return tokens, types, merges, n_plain


class Rng:
    def __init__(self, seed):
        self.r = np.random.default_rng(seed)

    def mat(self, rows, cols, scale=None):
        s = scale if scale is not None else 1.0 / math.sqrt(cols)
        return (self.r.standard_normal((rows, cols)) * s).astype(np.float32)

    def vec(self, n, mean=0.0, scale=0.1):
        return (mean + self.r.standard_normal(n) * scale).astype(np.float32)


def f16(a):
    """Matrices stay F32: F16 weights would make both implementations round
    activations to F16, whose noise (~1e-2 on these logits) would hide formula
    errors of the same size; in F32 the two agree to ~1e-5."""
    return a.astype(np.float32)


def llama3_factors(base, dim, factor, lo, hi, orig):
    """Per-frequency divisors of Llama 3.x rotary scaling (Meta's rule)."""
    out = []
    for i in range(dim // 2):
        freq = base ** (-2.0 * i / dim)
        wavelen = 2 * math.pi / freq
        if wavelen < orig / hi:
            out.append(1.0)
        elif wavelen > orig / lo:
            out.append(factor)
        else:
            smooth = (orig / wavelen - lo) / (hi - lo)
            out.append(1.0 / ((1 - smooth) / factor + smooth))
    return np.array(out, dtype=np.float32)


# ---------------------------------------------------------------- families

def spec_qwen2():
    return dict(
        arch="qwen2", file="qwen2.gguf", n_layer=2, n_embd=48, n_head=4, n_head_kv=2, head_dim=12, n_ff=96,
        ctx=4096, rope_base=1000000.0, eps=1e-6, template="chatml", pre="qwen2",
        specials=["<|endoftext|>", "<|im_start|>", "<|im_end|>"], bos="<|endoftext|>", eos="<|im_end|>",
        add_bos=False, tied=False, seed=1)


def spec_llama3():
    return dict(
        arch="llama", file="llama3.gguf", n_layer=2, n_embd=48, n_head=4, n_head_kv=2, head_dim=12, n_ff=96,
        ctx=8192, rope_base=500000.0, eps=1e-5, template="llama3", pre="llama-bpe",
        specials=["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>",
                  "<|eot_id|>"], bos="<|begin_of_text|>", eos="<|eot_id|>", add_bos=True, tied=True, seed=2,
        # Llama 3.2's rule with a short original context, so that the three
        # regimes (kept, blended, slowed) all occur in a 12-dim head
        llama3=dict(factor=8.0, lo=1.0, hi=4.0, orig=64))


def spec_phi3():
    return dict(
        arch="phi3", file="phi3.gguf", n_layer=2, n_embd=48, n_head=4, n_head_kv=4, head_dim=12, n_ff=64,
        ctx=1024, rope_base=10000.0, eps=1e-5, template="phi3", pre="gpt-2", rope_dim=8,
        specials=["<|endoftext|>", "<|system|>", "<|user|>", "<|assistant|>", "<|end|>"],
        bos="<|endoftext|>", eos="<|endoftext|>", add_bos=False, tied=False, seed=3,
        # longrope: the reference context (512) exceeds the original one (384),
        # so the long factors apply; a second run at 256 (llama.cpp's smallest
        # context) takes the short ones.  The window exceeds every test
        # sequence (llama.cpp ignores phi3 windows) but is recorded as real
        # files do
        longrope=dict(orig=384, attn_factor=1.19), swa=2047)


def spec_gemma3():
    return dict(
        arch="gemma3", file="gemma3.gguf", n_layer=6, n_embd=32, n_head=2, n_head_kv=1, head_dim=24, n_ff=64,
        ctx=32768, rope_base=1000000.0, eps=1e-6, template="gemma", pre="gpt-2",
        specials=["<pad>", "<eos>", "<bos>", "<start_of_turn>", "<end_of_turn>"], bos="<bos>",
        eos="<end_of_turn>", add_bos=True, tied=True, seed=4,
        # 5 window layers then a global one; a 4-position window so that the
        # window matters in every test sequence longer than 4
        swa=4, linear_factor=8.0,
        # Gemma's embeddings are small and scaled up by sqrt(n_embd) on input;
        # the final norm spreads the tied logits
        embd_std=0.18, out_norm=3.0)


def write_model(path, sp, llama3_meta_only=False, swa_flags=False):
    import gguf

    rng = Rng(sp["seed"])
    tokens, types, merges, n_plain = build_vocab(sp["specials"])
    n_vocab = len(tokens)
    d, hd, nh, nkv, ff = sp["n_embd"], sp["head_dim"], sp["n_head"], sp["n_head_kv"], sp["n_ff"]
    arch = sp["arch"]
    w = gguf.GGUFWriter(path, arch=arch)
    # a neutral name: llama.cpp adjusts token attributes for names containing
    # family names (e.g. "phi3" expects a "</s>" token)
    w.add_name("kvsteer tiny test model " + str(sp["seed"]))
    w.add_block_count(sp["n_layer"])
    w.add_context_length(sp["ctx"])
    w.add_embedding_length(d)
    w.add_feed_forward_length(ff)
    w.add_head_count(nh)
    w.add_head_count_kv(nkv)
    w.add_layer_norm_rms_eps(sp["eps"])
    w.add_rope_freq_base(sp["rope_base"])
    if hd != d // nh:
        w.add_key_length(hd)
        w.add_value_length(hd)
    w.add_rope_dimension_count(sp.get("rope_dim", hd))
    if "swa" in sp:
        w.add_sliding_window(sp["swa"])
    if swa_flags:
        # newer converters list the window layers one by one (true = window)
        # (layer 2 made global as well, so that the list must be obeyed)
        w.add_sliding_window_pattern([il % 6 < 5 and il != 2 for il in range(sp["n_layer"])])
    if "linear_factor" in sp:
        w.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
        w.add_rope_scaling_factor(sp["linear_factor"])
    if "longrope" in sp:
        w.add_rope_scaling_attn_factors(sp["longrope"]["attn_factor"])
        w.add_rope_scaling_orig_ctx_len(sp["longrope"]["orig"])
    if llama3_meta_only:
        l3 = sp["llama3"]
        w.add_string(f"{arch}.rope.scaling.type", "llama3")
        w.add_rope_scaling_factor(l3["factor"])
        w.add_float32(f"{arch}.rope.scaling.low_freq_factor", l3["lo"])
        w.add_float32(f"{arch}.rope.scaling.high_freq_factor", l3["hi"])
        w.add_rope_scaling_orig_ctx_len(l3["orig"])
    w.add_file_type(gguf.LlamaFileType.ALL_F32)

    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre(sp["pre"])
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    w.add_bos_token_id(tokens.index(sp["bos"]))
    w.add_eos_token_id(tokens.index(sp["eos"]))
    w.add_add_bos_token(sp["add_bos"])
    w.add_chat_template(TEMPLATES[sp["template"]])

    # embeddings with a larger spread than the projections so the logits of
    # the tied output are well separated (clear top-1 choices)
    w.add_tensor("token_embd.weight", f16(rng.mat(n_vocab, d, sp.get("embd_std", 1.0))))
    w.add_tensor("output_norm.weight", rng.vec(d, sp.get("out_norm", 1.0)))
    if not sp["tied"]:
        w.add_tensor("output.weight", f16(rng.mat(n_vocab, d, 2.0 / math.sqrt(d))))
    half = sp.get("rope_dim", hd) // 2
    if "llama3" in sp and not llama3_meta_only:
        l3 = sp["llama3"]
        w.add_tensor("rope_freqs.weight", llama3_factors(sp["rope_base"], hd, l3["factor"], l3["lo"], l3["hi"], l3["orig"]))
    if "longrope" in sp:
        w.add_tensor("rope_factors_long.weight", (1.0 + np.abs(rng.vec(half, 0.0, 3.0))).astype(np.float32))
        w.add_tensor("rope_factors_short.weight", (1.0 + np.abs(rng.vec(half, 0.0, 0.5))).astype(np.float32))
    for il in range(sp["n_layer"]):
        p = f"blk.{il}."
        w.add_tensor(p + "attn_norm.weight", rng.vec(d, 1.0))
        wq, wk, wv = rng.mat(nh * hd, d), rng.mat(nkv * hd, d), rng.mat(nkv * hd, d)
        if arch == "phi3":
            w.add_tensor(p + "attn_qkv.weight", f16(np.concatenate([wq, wk, wv])))
        else:
            w.add_tensor(p + "attn_q.weight", f16(wq))
            w.add_tensor(p + "attn_k.weight", f16(wk))
            w.add_tensor(p + "attn_v.weight", f16(wv))
        if arch == "qwen2":
            w.add_tensor(p + "attn_q.bias", rng.vec(nh * hd, 0.0, 0.5))
            w.add_tensor(p + "attn_k.bias", rng.vec(nkv * hd, 0.0, 0.5))
            w.add_tensor(p + "attn_v.bias", rng.vec(nkv * hd, 0.0, 0.5))
        if arch == "gemma3":
            # llama.cpp's converter stores Gemma's RMSNorm weights as 1 + w
            w.add_tensor(p + "attn_q_norm.weight", rng.vec(hd, 1.0))
            w.add_tensor(p + "attn_k_norm.weight", rng.vec(hd, 1.0))
            w.add_tensor(p + "post_attention_norm.weight", rng.vec(d, 1.0))
            w.add_tensor(p + "post_ffw_norm.weight", rng.vec(d, 1.0))
        # output projections with gain, so the layers (not the tied input
        # embedding) decide the next token and greedy runs do not just echo
        w.add_tensor(p + "attn_output.weight", f16(rng.mat(d, nh * hd, GAIN / math.sqrt(nh * hd))))
        w.add_tensor(p + "ffn_norm.weight", rng.vec(d, 1.0))
        gate, up = rng.mat(ff, d), rng.mat(ff, d)
        if arch == "phi3":
            w.add_tensor(p + "ffn_up.weight", f16(np.concatenate([gate, up])))
        else:
            w.add_tensor(p + "ffn_gate.weight", f16(gate))
            w.add_tensor(p + "ffn_up.weight", f16(up))
        w.add_tensor(p + "ffn_down.weight", f16(rng.mat(d, ff, GAIN / math.sqrt(ff))))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return tokens, n_plain


def exact_logits(path, ids, n_ctx):
    """Last-position logits in float64 from the file's own tensors and
    metadata: an independent statement of each family's forward pass (the
    checks in test_archs.c hold kvsteer to it as well as to llama.cpp)."""
    from gguf import GGUFReader

    r = GGUFReader(path)
    T = {}
    for t in r.tensors:
        a = np.array(t.data, dtype=np.float64)
        T[t.name] = a.reshape([int(x) for x in reversed(t.shape)]) if len(t.shape) > 1 else a.reshape(-1)
    arch = r.fields["general.architecture"].contents()
    kv = lambda k, d=None: r.fields[f"{arch}.{k}"].contents() if f"{arch}.{k}" in r.fields else d
    L, d, nh = kv("block_count"), kv("embedding_length"), kv("attention.head_count")
    nkv, eps, base = kv("attention.head_count_kv", nh), kv("attention.layer_norm_rms_epsilon"), kv("rope.freq_base", 1e4)
    hd = kv("attention.key_length", d // nh)
    rd = kv("rope.dimension_count", hd)
    n_swa = kv("attention.sliding_window", 0)
    neox = arch != "llama"
    gemma = arch == "gemma3"
    pat = f"{arch}.attention.sliding_window_pattern"
    flags = [bool(x) for x in r.fields[pat].contents()] if pat in r.fields else None
    if "rope_freqs.weight" in T:
        div = T["rope_freqs.weight"]
    elif "rope_factors_long.weight" in T:
        long = n_ctx > kv("rope.scaling.original_context_length", kv("context_length"))
        div = T["rope_factors_long.weight" if long else "rope_factors_short.weight"]
    else:
        div = np.ones(rd // 2)
    mscale = kv("rope.scaling.attn_factor", 1.0)
    lin = kv("rope.scaling.factor", 1.0)

    def rms(x, w):
        return x / np.sqrt((x * x).mean(-1, keepdims=True) + eps) * w

    def rope(x, pos, b, scale):
        inv = b ** (-np.arange(0, rd, 2) / rd) / div
        ang = pos[:, None] * inv[None, :] * scale
        c, s_ = np.cos(ang)[:, None, :] * mscale, np.sin(ang)[:, None, :] * mscale
        y = x.copy()
        if neox:
            x0, x1 = x[..., :rd // 2], x[..., rd // 2:rd]
            y[..., :rd // 2], y[..., rd // 2:rd] = x0 * c - x1 * s_, x0 * s_ + x1 * c
        else:
            x0, x1 = x[..., 0:rd:2], x[..., 1:rd:2]
            y[..., 0:rd:2], y[..., 1:rd:2] = x0 * c - x1 * s_, x0 * s_ + x1 * c
        return y

    n = len(ids)
    pos = np.arange(n, dtype=np.float64)
    x = T["token_embd.weight"][ids] * (math.sqrt(d) if gemma else 1.0)
    for il in range(L):
        p = f"blk.{il}."
        h = rms(x, T[p + "attn_norm.weight"])
        if p + "attn_qkv.weight" in T:
            qkv = h @ T[p + "attn_qkv.weight"].T
            q, k, v = qkv[:, :nh * hd], qkv[:, nh * hd:(nh + nkv) * hd], qkv[:, (nh + nkv) * hd:]
        else:
            q, k, v = (h @ T[p + f"attn_{w}.weight"].T + T.get(p + f"attn_{w}.bias", 0.0) for w in "qkv")
        q, k, v = q.reshape(n, nh, hd), k.reshape(n, nkv, hd), v.reshape(n, nkv, hd)
        if gemma:
            q, k = rms(q, T[p + "attn_q_norm.weight"]), rms(k, T[p + "attn_k_norm.weight"])
        swa = n_swa > 0 and (not gemma or (flags[il] if flags else il % 6 < 5))
        b, sc = (10000.0, 1.0) if gemma and swa else (base, 1.0 / lin)
        q, k = rope(q, pos, b, sc), rope(k, pos, b, sc)
        mask = np.triu(np.full((n, n), -np.inf), 1)
        if swa:
            mask = mask + np.tril(np.full((n, n), -np.inf), -n_swa)
        out = np.zeros((n, nh, hd))
        for hh in range(nh):
            a = q[:, hh] @ k[:, hh // (nh // nkv)].T / math.sqrt(hd) + mask
            a = np.exp(a - a.max(-1, keepdims=True))
            out[:, hh] = (a / a.sum(-1, keepdims=True)) @ v[:, hh // (nh // nkv)]
        o = out.reshape(n, -1) @ T[p + "attn_output.weight"].T
        x = x + (rms(o, T[p + "post_attention_norm.weight"]) if gemma else o)
        h = rms(x, T[p + "ffn_norm.weight"])
        if p + "ffn_gate.weight" in T:
            g, u = h @ T[p + "ffn_gate.weight"].T, h @ T[p + "ffn_up.weight"].T
        else:
            gu = h @ T[p + "ffn_up.weight"].T
            g, u = gu[:, :gu.shape[1] // 2], gu[:, gu.shape[1] // 2:]
        if gemma:
            act = 0.5 * g * (1 + np.tanh(math.sqrt(2 / math.pi) * (g + 0.044715 * g ** 3)))
        else:
            act = g / (1 + np.exp(-g))
        o = (act * u) @ T[p + "ffn_down.weight"].T
        x = x + (rms(o, T[p + "post_ffw_norm.weight"]) if gemma else o)
    h = rms(x[-1], T["output_norm.weight"])
    return T.get("output.weight", T["token_embd.weight"]) @ h


def reference(path, sp, tokens, n_plain):
    import jinja2
    import llama_cpp
    from llama_cpp import Llama

    n_ctx = 512
    m = Llama(path, n_ctx=n_ctx, n_batch=512, n_threads=1, seed=0, verbose=False, type_k=0, type_v=0,
              flash_attn=False, swa_full=True)
    n_vocab = m.n_vocab()
    assert n_vocab == len(tokens)

    def logits(mod):
        ptr = llama_cpp.llama_get_logits_ith(mod._ctx.ctx, -1)
        return np.ctypeslib.as_array(ctypes.cast(ptr, ctypes.POINTER(ctypes.c_float)), shape=(n_vocab,)).copy()

    def run_seqs(m, n_ctx):
        rs = np.random.default_rng(100 + sp["seed"])
        seqs = []
        for label, n in SEQS:
            ids = [int(x) for x in rs.integers(0, n_plain, n)]
            m.reset()
            m.eval(ids)
            lg = logits(m)
            srt = np.sort(lg)
            ex = exact_logits(path, ids, n_ctx)
            seqs.append({"label": label, "ids": ids, "argmax": int(np.argmax(lg)),
                         "margin": round(float(srt[-1] - srt[-2]), 6), "logits": [round(float(x), 6) for x in lg],
                         "exact": [round(float(x), 6) for x in ex], "llama_exact": float(np.abs(lg - ex).max())})
        return seqs

    seqs = run_seqs(m, n_ctx)
    short = None
    if "longrope" in sp:
        # the short rotary factors: a context within the original one
        ms = Llama(path, n_ctx=256, n_batch=256, n_threads=1, seed=0, verbose=False, type_k=0, type_v=0,
                   flash_attn=False, swa_full=True)
        assert ms.n_ctx() == 256 <= sp["longrope"]["orig"]
        short = {"n_ctx": 256, "sequences": run_seqs(ms, 256)}
        del ms

    tmpl = jinja2.Environment(loader=jinja2.BaseLoader()).from_string(TEMPLATES[sp["template"]])
    render = lambda msgs, gen: tmpl.render(messages=msgs, add_generation_prompt=gen, bos_token=sp["bos"],
                                           eos_token=sp["eos"])
    chats = [{"messages": msgs, "add_generation_prompt": gen, "rendered": render(msgs, gen)} for msgs, gen in CHAT_CASES]

    text = render(GREEDY_CHAT, True)
    ids = m.tokenize(text.encode(), add_bos=False, special=True)
    m.reset()
    m.eval(ids)
    gen, margins = [], []
    for _ in range(GREEDY_TOKENS):  # not stopped at end-of-generation: this checks the forward pass
        lg = logits(m)
        srt = np.sort(lg)
        t = int(np.argmax(lg))
        gen.append(t)
        margins.append(round(float(srt[-1] - srt[-2]), 6))
        m.eval([t])
    return {
        "file": sp["file"], "arch": sp["arch"], "n_ctx": n_ctx, "n_vocab": n_vocab,
        "bos_id": tokens.index(sp["bos"]), "eos_id": tokens.index(sp["eos"]),
        "template": sp["template"], "sequences": seqs, "chat_renders": chats,
        **({"short_context": short} if short else {}),
        "greedy": {"prompt": text, "prompt_ids": ids, "generated": gen, "margins": margins},
    }


def main():
    import llama_cpp

    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="tests/fixtures")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    golden = {"generator": "llama-cpp-python " + llama_cpp.__version__, "models": []}
    for spec in (spec_qwen2, spec_llama3, spec_phi3, spec_gemma3):
        sp = spec()
        path = os.path.join(args.out, sp["file"])
        tokens, n_plain = write_model(path, sp)
        e = reference(path, sp, tokens, n_plain)
        if "llama3" in sp:
            # the same model with the scaling stated in metadata instead of the
            # rope_freqs tensor: llama.cpp cannot run it, kvsteer must match the
            # tensor version's reference
            alt = os.path.join(args.out, "llama3_meta.gguf")
            write_model(alt, sp, llama3_meta_only=True)
            e["variants"] = [{"file": "llama3_meta.gguf"}]
        if sp["arch"] == "gemma3":
            # the same model with its window layers listed per layer rather
            # than left to the every-sixth-is-global rule
            alt = os.path.join(args.out, "gemma3_swa_list.gguf")
            write_model(alt, sp, swa_flags=True)
            seqs = []
            for s in e["sequences"]:  # llama.cpp may not read such lists: the exact evaluation only
                ex = exact_logits(alt, s["ids"], e["n_ctx"])
                srt = np.sort(ex)
                seqs.append({"label": s["label"], "ids": s["ids"], "argmax": int(np.argmax(ex)),
                             "margin": round(float(srt[-1] - srt[-2]), 6), "logits": [round(float(x), 6) for x in ex],
                             "exact": [round(float(x), 6) for x in ex], "llama_exact": 0.0})
            e["variants"] = [{"file": "gemma3_swa_list.gguf", "exact_only": True, "sequences": seqs}]
        golden["models"].append(e)
        print(f"{sp['file']}: max |llama.cpp - exact| {max(s['llama_exact'] for s in e['sequences']):.2e}, "
              f"{os.path.getsize(path)} bytes, vocab {len(tokens)}, greedy {e['greedy']['generated']},"
              f" min margin {min(e['greedy']['margins'] + [s['margin'] for s in e['sequences']]):.4f}", file=sys.stderr)
    out = os.path.join(args.out, "archs_golden.json")
    with open(out + ".tmp", "w", encoding="utf-8") as fh:
        json.dump(golden, fh, ensure_ascii=False, separators=(",", ":"))
        fh.write("\n")
    os.replace(out + ".tmp", out)
    print(f"wrote {out}: {os.path.getsize(out)} bytes", file=sys.stderr)


if __name__ == "__main__":
    main()
