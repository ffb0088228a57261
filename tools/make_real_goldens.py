#!/usr/bin/env python3
"""Token-id and logit goldens from llama.cpp for a real model file (the Qwen2.5
files of scripts/fetch_model.sh), for tests/test_real_parity.c.

Corpus (at least 200 texts):
  * our own prompts (tools/make_goldens.py's PROMPTS: unicode, code, whitespace
    runs, the chat template's special tokens, ...), stored with their text;
  * evaluation questions and teacher-trace steps from the shared data folder.
    Those are other people's text, so the golden stores only where each text is
    (file, row, field) and a hash of it; the test reads the text from the data
    folder at run time and checks the hash before comparing.
For the first N_LOGIT prompts of a fixed selection (own prompts and questions
rendered raw) it stores llama.cpp's logits at the last position: the top 40
(id, logit) pairs and the margin between the best two.

The reference is llama.cpp with an F32 KV cache and no flash attention (so it
rounds no cached value, as kvsteer does not).  llama-cpp-python may be the
installed package or the source tree that bench/build_llamacpp.sh unpacks, with
its library: PYTHONPATH=bench/.peer/src LLAMA_CPP_LIB_PATH=$PWD/bench/.peer/build/bin

usage: tools/make_real_goldens.py --model models/qwen2.5-coder-0.5b-instruct.gguf \\
           --data ../shared/data --out tests/golden/qwen2.5-coder-0.5b.json
"""
import argparse
import ctypes
import hashlib
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_goldens import PROMPTS  # noqa: E402  (our own texts)

TOP_K = 40
N_LOGIT = 32
EVAL_FILES = ["eval/arc_challenge_test.jsonl", "eval/csqa_validation.jsonl", "eval/piqa_validation.jsonl",
              "eval/gsm8k_test.jsonl"]
TRACE_FILES = ["traces/arc_challenge.jsonl", "traces/csqa.jsonl", "traces/piqa.jsonl", "traces/gsm8k.jsonl"]
N_PER_EVAL = 30   # questions per evaluation set
N_PER_TRACE = 10  # trace rows per set; each gives its steps joined by newlines


def fnv1a64(s):
    """FNV-1a, 64 bits, of the UTF-8 bytes, as 16 hex digits (what the test computes)."""
    h = 0xCBF29CE484222325
    for b in s.encode("utf-8"):
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return "%016x" % h


def shared_texts(data):
    out = []
    for f in EVAL_FILES:
        with open(os.path.join(data, f), encoding="utf-8") as fh:
            for row, line in enumerate(fh):
                if row >= N_PER_EVAL:
                    break
                q = json.loads(line)["question"]
                out.append(({"file": f, "row": row, "field": "question", "fnv1a64": fnv1a64(q)}, q.encode("utf-8")))
    for f in TRACE_FILES:
        with open(os.path.join(data, f), encoding="utf-8") as fh:
            for row, line in enumerate(fh):
                if row >= N_PER_TRACE:
                    break
                steps = json.loads(line).get("steps") or []
                if not steps:
                    continue
                t = "\n".join(steps)
                out.append(({"file": f, "row": row, "field": "steps", "fnv1a64": fnv1a64(t)}, t.encode("utf-8")))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--data", default="../shared/data")
    ap.add_argument("--out", required=True)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    import llama_cpp
    from llama_cpp import Llama

    ref = Llama(args.model, n_ctx=2048, n_threads=args.threads, verbose=False, type_k=0, type_v=0,
                flash_attn=False, vocab_only=False)
    n_vocab = ref.n_vocab()
    texts = []
    for label, text in PROMPTS:
        raw = text if isinstance(text, bytes) else text.encode("utf-8")
        try:
            info = {"label": label, "text": raw.decode("utf-8")}
        except UnicodeDecodeError:  # deliberately malformed input
            info = {"label": label, "text_hex": raw.hex()}
        if b"\0" in raw:  # a C string would end there
            info = {"label": label, "text_hex": raw.hex()}
        texts.append((info, raw))
    texts += shared_texts(args.data)
    entries = []
    for ref_info, text in texts:
        ids = ref.tokenize(text, add_bos=False, special=True)
        e = dict(ref_info)
        e["ids"] = ids
        entries.append(e)
    # logits: alternate our prompts and evaluation questions so both kinds are
    # covered; skip texts too short to predict from
    own = [i for i, (r, _) in enumerate(texts) if "label" in r and len(entries[i]["ids"]) >= 2]
    qs = [i for i, (r, _) in enumerate(texts) if r.get("field") == "question" and len(entries[i]["ids"]) <= 300]
    pick = []
    for a, b in zip(own, qs):
        pick += [a, b]
    pick = pick[:N_LOGIT]
    for i in pick:
        ids = entries[i]["ids"]
        ref.reset()
        ref.eval(ids)
        ptr = llama_cpp.llama_get_logits_ith(ref._ctx.ctx, -1)
        lg = np.ctypeslib.as_array(ctypes.cast(ptr, ctypes.POINTER(ctypes.c_float)), shape=(n_vocab,)).copy()
        top = np.argsort(-lg, kind="stable")[:TOP_K]
        entries[i]["logits"] = {
            "top": [[int(t), round(float(lg[t]), 5)] for t in top],
            "margin": round(float(lg[top[0]] - lg[top[1]]), 5),
        }
    with open(args.model, "rb") as fh:
        h = hashlib.sha256()
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    doc = {
        "model": os.path.basename(args.model),
        "model_sha256": h.hexdigest(),
        "generator": "tools/make_real_goldens.py, llama-cpp-python %s" % llama_cpp.__version__,
        "n_vocab": n_vocab,
        "texts": entries,
    }
    tmp = args.out + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(doc, fh, ensure_ascii=False, separators=(",", ":"))
        fh.write("\n")
    os.replace(tmp, args.out)
    print("%s: %d texts, %d with logits" % (args.out, len(entries), len(pick)), file=sys.stderr)


if __name__ == "__main__":
    main()
