#!/usr/bin/env python3
"""A kvsteer control vector in llama.cpp: steered next-token logits agree.

usage: tests/cvec_llamacpp.py KVSTEER MODEL.gguf CV.gguf

CV.gguf is a control vector written by `kvsteer extract --format controlvector`.
It is read by ggml's own GGUF reader (gguf_init_from_file in libggml-base, the
reader behind llama.cpp's --control-vector), laid out as llama.cpp's common
loader lays it out (layer l at offset (l-1)*n_embd, times the strength) and set
with llama_set_adapter_cvec.  For each prompt and setting, the logits at the last
position from llama.cpp are compared with `kvsteer logits --act CV.gguf` on the
same token ids.  Passes when, per setting, the steered logits agree about as
closely as the unsteered ones do (max |diff| over the top ids at most twice the
unsteered one plus 0.25) while steering moved the logits by much more than that,
and the top-1 tokens agree except at near ties.

Runs with llama-cpp-python from the peer tree that bench/build_llamacpp.sh
unpacks: PYTHONPATH=bench/.peer/src LLAMA_CPP_LIB_PATH=$PWD/bench/.peer/build/bin.
"""
import ctypes
import json
import os
import subprocess
import sys

import numpy as np

PROMPTS = [
    "<|im_start|>user\nWhy is the sky blue?<|im_end|>\n<|im_start|>assistant\n",
    "The capital of France is",
    "Question: A farmer has 12 cows and buys 5 more. How many cows now?\nAnswer:",
]
TOP = 40
TIE = 0.25


class GGUFParams(ctypes.Structure):
    _fields_ = [("no_alloc", ctypes.c_bool), ("ctx", ctypes.c_void_p)]


def read_with_ggml(libdir, path):
    """(model_hint, {layer: float32 array}) as ggml's GGUF reader sees the file."""
    g = ctypes.CDLL(os.path.join(libdir, "libggml-base.so"))
    g.gguf_init_from_file.restype = ctypes.c_void_p
    g.gguf_init_from_file.argtypes = [ctypes.c_char_p, GGUFParams]
    for fn, res, args in [("gguf_find_key", ctypes.c_int64, [ctypes.c_char_p]),
                          ("gguf_get_val_str", ctypes.c_char_p, [ctypes.c_int64]),
                          ("gguf_get_n_tensors", ctypes.c_int64, []),
                          ("gguf_get_tensor_name", ctypes.c_char_p, [ctypes.c_int64]),
                          ("gguf_get_tensor_type", ctypes.c_int, [ctypes.c_int64]),
                          ("gguf_get_tensor_offset", ctypes.c_size_t, [ctypes.c_int64]),
                          ("gguf_get_tensor_size", ctypes.c_size_t, [ctypes.c_int64]),
                          ("gguf_get_data_offset", ctypes.c_size_t, [])]:
        getattr(g, fn).restype = res
        getattr(g, fn).argtypes = [ctypes.c_void_p] + args
    g.gguf_free.argtypes = [ctypes.c_void_p]
    ctx = g.gguf_init_from_file(path.encode(), GGUFParams(True, None))
    if not ctx:
        raise SystemExit(f"{path}: ggml's GGUF reader refuses the file")
    arch = g.gguf_get_val_str(ctx, g.gguf_find_key(ctx, b"general.architecture"))
    if arch != b"controlvector":
        raise SystemExit(f"{path}: general.architecture is {arch!r}, not controlvector")
    hint = g.gguf_get_val_str(ctx, g.gguf_find_key(ctx, b"controlvector.model_hint")).decode()
    raw = open(path, "rb").read()
    base = g.gguf_get_data_offset(ctx)
    dirs = {}
    for i in range(g.gguf_get_n_tensors(ctx)):
        name = g.gguf_get_tensor_name(ctx, i).decode()
        assert name.startswith("direction.") and g.gguf_get_tensor_type(ctx, i) == 0, name  # F32
        off, size = base + g.gguf_get_tensor_offset(ctx, i), g.gguf_get_tensor_size(ctx, i)
        dirs[int(name.split(".")[1])] = np.frombuffer(raw[off:off + size], dtype=np.float32)
    g.gguf_free(ctx)
    return hint, dirs


def main():
    kvsteer, model, cv = sys.argv[1:4]
    libdir = os.environ["LLAMA_CPP_LIB_PATH"]
    import llama_cpp
    from llama_cpp import Llama

    hint, dirs = read_with_ggml(libdir, cv)
    # F32 cache and no flash attention: llama.cpp then rounds no cached value, as kvsteer does not
    ref = Llama(model, n_ctx=512, n_threads=2, verbose=False, type_k=0, type_v=0, flash_attn=False)
    n_vocab, n_embd, n_layer = ref.n_vocab(), ref.n_embd(), llama_cpp.llama_model_n_layer(ref.model)
    assert all(v.size == n_embd for v in dirs.values()) and max(dirs) < n_layer
    print(f"{cv}: model_hint {hint!r}, {len(dirs)} layers {min(dirs)}-{max(dirs)}, width {n_embd}")

    def set_cvec(strength, lo, hi):
        if strength is None:
            rc = llama_cpp.llama_set_adapter_cvec(ref._ctx.ctx, None, 0, n_embd, -1, -1)
        else:
            buf = np.zeros((n_layer - 1) * n_embd, dtype=np.float32)
            for l, v in dirs.items():
                buf[(l - 1) * n_embd:l * n_embd] += v * strength
            data = buf.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
            rc = llama_cpp.llama_set_adapter_cvec(ref._ctx.ctx, data, buf.size, n_embd, lo, hi)
            set_cvec.keep = buf
        assert rc == 0, "llama_set_adapter_cvec failed"

    mid = max(dirs) // 2
    # (label, kvsteer options, llama.cpp strength and layer range)
    settings = [("unsteered", [], None),
                ("all layers x0.25", ["--act", cv, "--act-scale", "0.25"], (0.25, 1, n_layer)),
                (f"layer {mid} x4", ["--act", cv, "--act-layer", str(mid), "--act-scale", "4"], (4.0, mid, mid))]
    worst = {}
    moved = {}
    base_logits = {}
    bad = 0
    for label, opts, ref_set in settings:
        set_cvec(*(ref_set or (None, 0, 0)))
        for p in PROMPTS:
            out = subprocess.run([kvsteer, "logits", "-m", model, "-k", str(TOP), "-t", "2", *opts, p],
                                 capture_output=True, text=True)
            if out.returncode:
                raise SystemExit(f"kvsteer logits failed: {out.stderr.strip()}")
            ours = json.loads(out.stdout)
            ref.reset()
            ref.eval(ours["ids"])
            ptr = llama_cpp.llama_get_logits_ith(ref._ctx.ctx, -1)
            lg = np.ctypeslib.as_array(ctypes.cast(ptr, ctypes.POINTER(ctypes.c_float)), shape=(n_vocab,)).copy()
            order = np.argsort(-lg, kind="stable")
            our_top = {int(i): v for i, v in ours["top"]}
            diff = max(abs(v - lg[i]) for i, v in our_top.items())
            if ref_set is None:
                base_logits[p] = lg
            else:
                moved[label] = max(moved.get(label, 0.0), float(np.max(np.abs(lg - base_logits[p]))))
            margin = float(lg[order[0]] - lg[order[1]])
            top_ok = int(ours["top"][0][0]) == int(order[0]) or margin <= TIE
            bad += not top_ok
            worst[label] = max(worst.get(label, 0.0), diff)
            print(f"{label:<18} {p[:30]!r:<34} max|diff| {diff:.4f}  top-1 {ours['top'][0][0]}/{order[0]}"
                  f" (margin {margin:.3f}){'' if top_ok else '  MISMATCH'}")
    base = worst["unsteered"]
    for label, _, ref_set in settings[1:]:
        ok = worst[label] <= 2 * base + 0.25 and moved[label] > 4 * (2 * base + 0.25)
        bad += not ok
        print(f"{label}: max|diff| {worst[label]:.4f} (unsteered {base:.4f}); steering moved llama.cpp's logits by "
              f"up to {moved[label]:.2f}{'' if ok else '  FAIL'}")
    print("OK" if bad == 0 else f"{bad} problem(s)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
