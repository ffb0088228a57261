#!/usr/bin/env python3
"""Check a real model's forward pass in kvsteer against llama.cpp.

For each prompt, `kvsteer logits` gives the token ids and the top logits at
the last position; llama-cpp-python tokenizes the same text and evaluates
kvsteer's ids (so a tokenizer difference does not hide a forward-pass one).
Reported per prompt: whether the token ids agree, the largest logit
difference over both implementations' top-K ids, and the top-1 tokens.

Expected on quantized models: kvsteer and llama.cpp both round activations to
8 bits for the integer dot products, in slightly different places, so logits
differ by up to about 1 (see tests/test_parity.c); top-1 tokens agree except
at near ties.  With --exact, each engine is also measured against an exact
float64 evaluation of the same weights (tools/reference_forward.py, no
activation rounding), at kvsteer's top-K ids: which engine strays further
from the model both approximate.  The exit status is 1 if token ids differ or if a top-1 token
differs where llama.cpp's own best-vs-second margin exceeds --tie.

usage: tools/check_parity.py MODEL.gguf [--kvsteer build/kvsteer] [-p TEXT ...]
needs: pip install llama-cpp-python numpy (or, without a second build of llama.cpp, the
       peer's source tree and library: PYTHONPATH=bench/.peer/src
       LLAMA_CPP_LIB_PATH=$PWD/bench/.peer/build/bin)
"""
import argparse
import ctypes
import json
import subprocess
import sys

import numpy as np

DEFAULT_PROMPTS = [
    "The quick brown fox jumps over the lazy dog.",
    "What is the capital of France? The capital of France is",
    "def fibonacci(n):\n    if n < 2:\n        return n\n",
    "Café au lait, naïve résumé: 12345 and 3.14159.",
    "Once upon a time, in a small village by the sea, there lived an old fisherman who",
]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("--kvsteer", default="build/kvsteer")
    ap.add_argument("-p", "--prompt", action="append", help="prompt text (repeatable; default: a built-in set)")
    ap.add_argument("--top", type=int, default=40)
    ap.add_argument("--ctx", type=int, default=2048)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--tie", type=float, default=0.25, help="top-1 margin below which a disagreement is a near tie")
    ap.add_argument("--exact", action="store_true",
                    help="also measure both engines against tools/reference_forward.py's float64 evaluation")
    args = ap.parse_args()
    exact = None
    if args.exact:
        import reference_forward
        exact = reference_forward.load(args.model)

    import llama_cpp
    from llama_cpp import Llama

    # F32 cache and no flash attention: llama.cpp then rounds no cached value,
    # as kvsteer does not
    ref = Llama(args.model, n_ctx=args.ctx, n_threads=args.threads, verbose=False, type_k=0, type_v=0,
                flash_attn=False)
    n_vocab = ref.n_vocab()
    bad = 0
    worst = 0.0
    worst_x = [0.0, 0.0]
    print(f"{'prompt':<40} {'ids':>5} {'max|diff|':>10} {'top-1 us/llama.cpp (margin)'}"
          + ("   exact x: max|us-x| max|llama.cpp-x| top-1 (margin)" if exact else ""))
    for text in args.prompt or DEFAULT_PROMPTS:
        out = subprocess.run([args.kvsteer, "logits", "-m", args.model, "-k", str(args.top), "-c", str(args.ctx),
                              "-t", str(args.threads), text], capture_output=True, text=True)
        if out.returncode != 0:
            print(f"kvsteer logits failed: {out.stderr.strip()}", file=sys.stderr)
            return 2
        ours = json.loads(out.stdout)
        ids = ours["ids"]
        ref_ids = ref.tokenize(text.encode("utf-8"), add_bos=True, special=True)
        ref.reset()
        ref.eval(ids)
        ptr = llama_cpp.llama_get_logits_ith(ref._ctx.ctx, -1)
        lg = np.ctypeslib.as_array(ctypes.cast(ptr, ctypes.POINTER(ctypes.c_float)), shape=(n_vocab,)).copy()
        top_ref = np.argsort(-lg, kind="stable")[:args.top]
        our_top = {int(i): v for i, v in ours["top"]}
        diff = max(abs(our_top[i] - lg[i]) for i in our_top)
        # ids in llama.cpp's top-K but not ours: our logit is at most our K-th
        kth = min(our_top.values())
        diff = max([diff] + [float(lg[i]) - kth for i in top_ref if int(i) not in our_top])
        am, ref_am = int(ours["top"][0][0]), int(top_ref[0])
        margin = float(lg[top_ref[0]] - lg[top_ref[1]])
        ids_ok = ids == ref_ids
        top_ok = am == ref_am or margin <= args.tie
        bad += (not ids_ok) + (not top_ok)
        worst = max(worst, diff)
        label = text.replace("\n", " ")[:38]
        tail = ""
        if exact:
            lx = reference_forward.forward(*exact, ids)
            dx = [max(abs(our_top[i] - lx[i]) for i in our_top), max(abs(float(lg[i]) - lx[i]) for i in our_top)]
            worst_x = [max(a, b) for a, b in zip(worst_x, dx)]
            o = np.argsort(-lx)
            tail = f"   {dx[0]:.4f} {dx[1]:.4f}  top-1 {int(o[0])} ({lx[o[0]] - lx[o[1]]:.3f})"
        print(f"{label:<40} {'same' if ids_ok else 'DIFF':>5} {diff:10.4f} {am}/{ref_am} ({margin:.3f})"
              f"{'' if top_ok else '  MISMATCH'}{tail}")
        if not ids_ok:
            print(f"  kvsteer ids {ids}\n  llama.cpp   {ref_ids}")
    print(f"max |logit diff| {worst:.4f}; {'OK' if bad == 0 else f'{bad} problem(s)'}")
    if exact:
        print(f"against the exact evaluation: kvsteer {worst_x[0]:.4f}, llama.cpp {worst_x[1]:.4f}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
