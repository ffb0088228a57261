#!/usr/bin/env python3
"""Paired comparison of two kvsteer eval run files on the samples they share.

Samples are matched by (id, seed).  Prints, for the first extractor of the task
(or --extractor), both accuracies on the shared samples, how many samples go
wrong-to-right and right-to-wrong from A to B, and McNemar's chi-square with
continuity correction and its p-value (one degree of freedom).  Why a paired
test: on these sets two methods differ on a few hundred questions out of a
thousand, and an unpaired comparison of the two accuracies hides that.

usage: tools/paired.py A.jsonl B.jsonl [--extractor NAME] [--json]
A run resumed in pieces (`--offset-start` shards) is one side: A1.jsonl,A2.jsonl.
"""
import argparse
import json
import math
import sys


def load(paths):
    samples = {}
    for path in paths.split(","):
        load_file(path, samples)
    if not samples:
        sys.exit(f"paired.py: {paths}: no samples")
    return samples


def load_file(path, samples):
    try:
        f = open(path, encoding="utf-8")
    except OSError as e:
        sys.exit(f"paired.py: {path}: cannot open ({e.strerror})")
    with f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                o = json.loads(line)
            except json.JSONDecodeError as e:
                sys.exit(f"paired.py: {path}:{n}: not JSON ({e.msg})")
            if "id" in o and "correct" in o:
                c = o["correct"]
                # multiple-choice tasks have one extractor and store a plain verdict
                samples[(o["id"], o.get("seed"))] = c if isinstance(c, dict) else {"choice": bool(c)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("a", help="run file(s) A, comma-separated when a run is in pieces")
    ap.add_argument("b", help="run file(s) B, likewise")
    ap.add_argument("--extractor", help="which extractor's verdict (default: the first in the files)")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args()
    a, b = load(args.a), load(args.b)
    keys = sorted(set(a) & set(b), key=str)
    if not keys:
        sys.exit(f"paired.py: {args.a} and {args.b} share no samples")
    ex = args.extractor or next(iter(a[keys[0]]))
    if any(ex not in a[k] or ex not in b[k] for k in keys):
        sys.exit(f"paired.py: extractor '{ex}' missing from some samples")
    up = sum(1 for k in keys if not a[k][ex] and b[k][ex])
    down = sum(1 for k in keys if a[k][ex] and not b[k][ex])
    acc_a = sum(1 for k in keys if a[k][ex]) / len(keys)
    acc_b = sum(1 for k in keys if b[k][ex]) / len(keys)
    chi2 = (abs(up - down) - 1) ** 2 / (up + down) if up + down else 0.0
    # chi-square with one degree of freedom: p = erfc(sqrt(chi2 / 2))
    p = math.erfc(math.sqrt(chi2 / 2))
    r = {"shared": len(keys), "extractor": ex, "acc_a": acc_a, "acc_b": acc_b, "wrong_to_right": up,
         "right_to_wrong": down, "mcnemar_chi2": chi2, "p": p}
    if args.json:
        print(json.dumps(r))
    else:
        print(f"{len(keys)} shared samples ({ex}): A {100 * acc_a:.1f}%  B {100 * acc_b:.1f}%  "
              f"wrong->right {up}  right->wrong {down}  McNemar chi2 {chi2:.1f}  p {p:.3g}")


if __name__ == "__main__":
    main()
