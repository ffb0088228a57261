#!/usr/bin/env python3
"""The form of multiple-choice answers in kvsteer eval run files: how many go
through the options one by one, how many announce steps, how many box their answer.

`kvsteer styles --runs` looks for the paper's five reasoning structures (numbered
steps, strategy/execution, ...); a small instruction model steered for reasoning on
ARC more often walks through the choices instead, which those detectors do not
count.  This is a rough check of that form, not a detector of the library:
- options one by one: at least three lines that open with a choice label
  ("A:", "- B.", "**C)**", "Option D:");
- steps: "step" or "let's" anywhere;
- boxed: a LaTeX \\boxed{...} answer.
Each RUN argument is a file or several shards of one run joined with commas; with
two or more runs only the questions all of them answered count, so the shares compare.

Usage: tools/answer_form.py RUN[,SHARD...] [RUN[,SHARD...] ...]
"""
import re
import sys

from strip_prompts import records  # the run-file reader (a record cut off at the end is dropped)

OPTION_LINE = re.compile(r"(?m)^\s*(?:[-*]\s*)?(?:\*\*)?(?:Option\s+)?[A-E][:.)]")
STEPS = re.compile(r"(?i)\bstep\b|let's")


def load(spec):
    out = {}
    for path in spec.split(","):
        try:
            for r in records(path):
                if "response" in r and "id" in r:
                    out.setdefault((r["id"], r.get("seed")), r["response"])
        except OSError as e:
            sys.exit(f"answer_form: {path}: {e.strerror}")
        except ValueError as e:
            sys.exit(f"answer_form: {e}")
    if not out:
        sys.exit(f"answer_form: {spec}: no answers (not a kvsteer eval run file?)")
    return out


def main():
    specs = sys.argv[1:]
    if not specs or specs[0] in ("-h", "--help"):
        print(__doc__.strip())
        return 0 if specs else 2
    runs = [load(s) for s in specs]
    keys = set(runs[0]).intersection(*runs[1:])
    if not keys:
        sys.exit("answer_form: the runs share no question (shards of one run go in one argument, "
                 "joined with commas)")
    print(f"| run | answers | options one by one | steps | boxed |\n|---|---|---|---|---|")
    for spec, r in zip(specs, runs):
        texts = [r[k] for k in keys]
        n = len(texts)
        share = lambda f: 100.0 * sum(1 for t in texts if f(t)) / n
        print(f"| {spec} | {n} | {share(lambda t: len(OPTION_LINE.findall(t)) >= 3):.1f}% "
              f"| {share(lambda t: bool(STEPS.search(t))):.1f}% | {share(lambda t: chr(92) + 'boxed' in t):.1f}% |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
