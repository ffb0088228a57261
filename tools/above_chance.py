#!/usr/bin/env python3
"""Which multiple-choice task a model is furthest above chance on.

Reads `kvsteer report --json` (greedy baseline runs) on stdin and prints one line per
multiple-choice task, best first: task, accuracy, the lower end of its 95% interval,
chance, and that lower end minus chance. Chance is the mean of 1/(number of choices)
over the questions of the task's evaluation file (the full sets are run),
because ARC mixes 3-, 4- and 5-choice questions. The lower end, not the accuracy, ranks
the tasks so that a small run cannot win on noise. With --best, prints only the first
task's name (what experiments/qwen.sh q05-ablate uses).

Usage: kvsteer report --json RUNS... | tools/above_chance.py --data DIR [--best]
"""
import argparse
import json
import os
import sys

EVAL_FILES = {"arc": "arc_challenge_test", "csqa": "csqa_validation", "piqa": "piqa_validation"}


def chance(data_dir, task):
    path = os.path.join(data_dir, "eval", EVAL_FILES[task] + ".jsonl")
    total = n = 0
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                choices = json.loads(line)["choices"]
            except (ValueError, KeyError) as e:
                sys.exit(f"{path}:{lineno}: not an evaluation record with choices ({e})")
            total += 1.0 / len(choices)
            n += 1
    if n == 0:
        sys.exit(f"{path}: no questions")
    return total / n


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True, help="the data folder holding eval/*.jsonl")
    ap.add_argument("--best", action="store_true", help="print only the best task's name")
    args = ap.parse_args()
    try:
        report = json.load(sys.stdin)
    except ValueError as e:
        sys.exit(f"above_chance.py: stdin is not kvsteer report --json output ({e})")
    rows = []
    for run in report.get("runs", []):
        task = run.get("task")
        if task not in EVAL_FILES or run.get("method") != "baseline" or run.get("decoding") != "greedy":
            continue
        lo = run["accuracy_ci95"][0]
        c = chance(args.data, task)
        rows.append((lo - c, task, run["accuracy"], lo, c, run["n"]))
    if not rows:
        sys.exit("above_chance.py: no greedy baseline run of a multiple-choice task in the report")
    rows.sort(reverse=True)
    if args.best:
        print(rows[0][1])
        return
    print("task   n     accuracy  lower95  chance  lower95-chance")
    for margin, task, acc, lo, c, n in rows:
        print(f"{task:<6} {n:<5} {acc * 100:7.1f}  {lo * 100:7.1f}  {c * 100:6.1f}  {margin * 100:+8.1f}")


if __name__ == "__main__":
    main()
