#!/usr/bin/env python3
"""Write held-out evaluation sets from the teacher-trace files, for choosing
steering settings (c_v, c_k, layers) without looking at the evaluation sets.

The rows are the last N of each trace file (default 150) whose question is not
an evaluation question.  `kvsteer extract --pairs P` builds its pairs from the
first P usable rows, so these rows are never pairs as long as P stays below
(trace rows - N) -- 900 for ARC-Challenge, the smallest file.  They may still
appear as few-shot examples inside pair prompts; they are never the question a
pair is built on.

Usage: tools/make_holdout.py [--data ../shared/data] [--out out/holdout] [--rows 150]
Then:  kvsteer eval --data out/holdout --task arc ...   (or kvsteer sweep --data ...)
The output holds others' text: it goes under out/ (ignored by git), never into the repository.
"""
import argparse
import json
import os
import sys

TASKS = [  # trace file, evaluation file name the eval command reads
    ("arc_challenge.jsonl", "arc_challenge_test.jsonl"),
    ("csqa.jsonl", "csqa_validation.jsonl"),
    ("gsm8k.jsonl", "gsm8k_test.jsonl"),
    ("piqa.jsonl", "piqa_validation.jsonl"),
]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="../shared/data")
    ap.add_argument("--out", default="out/holdout")
    ap.add_argument("--rows", type=int, default=150)
    a = ap.parse_args()
    os.makedirs(os.path.join(a.out, "eval"), exist_ok=True)
    for trace_name, eval_name in TASKS:
        trace_path = os.path.join(a.data, "traces", trace_name)
        eval_path = os.path.join(a.data, "eval", eval_name)
        with open(eval_path, encoding="utf-8") as f:
            seen = {json.loads(line)["question"].strip() for line in f if line.strip()}
        rows = []
        with open(trace_path, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as e:
                    sys.exit(f"{trace_path}:{n}: not JSON: {e}")
        usable = [r for r in rows if r.get("question", "").strip() not in seen and r.get("answer") is not None]
        if len(usable) <= a.rows:
            sys.exit(f"{trace_path}: only {len(usable)} usable rows, cannot hold out {a.rows}")
        held = usable[-a.rows:]
        out_path = os.path.join(a.out, "eval", eval_name)
        tmp = out_path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            for r in held:
                o = {"id": f"{trace_name.split('.')[0]}-trace-{r['source_id']}", "question": r["question"]}
                if "choices" in r:
                    o["choices"] = r["choices"]
                o["answer"] = str(r["answer"])
                f.write(json.dumps(o, ensure_ascii=False) + "\n")
        os.replace(tmp, out_path)
        print(f"{out_path}: {len(held)} rows (of {len(usable)} usable in {trace_path})")


if __name__ == "__main__":
    main()
