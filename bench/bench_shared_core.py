#!/usr/bin/env python3
"""-t 1 against -t 2 with one core held by another process, and on the quiet machine.

For each model and round: with a busy loop pinned to CPU 1 (the same priority as
the benchmark, `taskset -c 1 sh -c 'while :; do :; done'`), then without it, runs
`kvsteer bench -r 1 --pp P --tg T` for every binary given and -t 1 and -t 2, in
turn, so that the rates compared come from the same minutes.  Prints one table per
condition: the mean rate over rounds of each binary and thread count, the threads
the new binary actually used (its JSON's mean_threads; absent from older
binaries), and the ratios that matter: new -t 2 / new -t 1 under the busy core
(>= 1 is the goal) and new -t 2 / old -t 2 on both.

usage: bench/bench_shared_core.py [--old BIN] [--new BIN] [-r ROUNDS] [--pp N] [--tg N]
                                  [--conditions busy,quiet] MODEL.gguf ...
The busy loop is killed on every exit path.  Standard-library Python only.
"""
import argparse
import json
import os
import signal
import subprocess
import sys
import time


def bench(binary, model, threads, pp, tg):
    cmd = [binary, "bench", "-m", model, "-t", str(threads), "-r", "1", "--pp", str(pp), "--tg", str(tg)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    res = {}
    for line in out.splitlines():
        j = json.loads(line)
        res[j["test"]] = (j["tokens_per_s"], j.get("mean_threads"))
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--old", help="the binary to compare against (e.g. main's build)")
    ap.add_argument("--new", default="build/kvsteer")
    ap.add_argument("-r", "--rounds", type=int, default=3)
    ap.add_argument("--pp", type=int, default=128)
    ap.add_argument("--tg", type=int, default=64)
    ap.add_argument("--conditions", default="busy,quiet")
    ap.add_argument("models", nargs="+")
    a = ap.parse_args()
    bins = [("new", a.new)] + ([("old", a.old)] if a.old else [])
    conds = a.conditions.split(",")
    for c in conds:
        if c not in ("busy", "quiet"):
            sys.exit(f"bench_shared_core.py: --conditions: unknown condition '{c}' (busy, quiet)")
    busy = None

    def stop_busy():
        nonlocal busy
        if busy is not None:
            busy.send_signal(signal.SIGKILL)
            busy.wait()
            busy = None

    # rates[cond][model][(bin, t)][test] = list of (rate, threads)
    rates = {}
    try:
        for model in a.models:
            for r in range(a.rounds):
                for cond in conds:
                    if cond == "busy":
                        busy = subprocess.Popen(["taskset", "-c", "1", "sh", "-c", "while :; do :; done"])
                        time.sleep(0.5)
                    for name, b in bins:
                        for t in (1, 2):
                            res = bench(b, model, t, a.pp, a.tg)
                            slot = rates.setdefault(cond, {}).setdefault(model, {}).setdefault((name, t), {})
                            for test, v in res.items():
                                slot.setdefault(test, []).append(v)
                    stop_busy()
                print(f"{os.path.basename(model)}: round {r + 1}/{a.rounds} done", file=sys.stderr)
    finally:
        stop_busy()

    def mean(xs):
        return sum(xs) / len(xs) if xs else float("nan")

    for cond in conds:
        print(f"\n{cond}: one core held by a busy loop" if cond == "busy" else f"\n{cond}: no busy loop")
        hdr = "| model | test | new -t 1 | new -t 2 (threads used) |"
        if a.old:
            hdr += " old -t 1 | old -t 2 |"
        hdr += " new t2/t1 |" + (" new/old at -t 2 |" if a.old else "")
        print(hdr)
        print("|" + "---|" * (hdr.count("|") - 1))
        for model in a.models:
            m = rates[cond][model]
            for test in ("pp", "tg"):
                n1 = mean([v for v, _ in m[("new", 1)][test]])
                n2 = mean([v for v, _ in m[("new", 2)][test]])
                th = mean([u for _, u in m[("new", 2)][test] if u is not None])
                row = f"| {os.path.basename(model)} | {test} | {n1:.1f} | {n2:.1f} ({th:.2f}) |"
                if a.old:
                    o1 = mean([v for v, _ in m[("old", 1)][test]])
                    o2 = mean([v for v, _ in m[("old", 2)][test]])
                    row += f" {o1:.1f} | {o2:.1f} |"
                row += f" {n2 / n1:.2f} |"
                if a.old:
                    row += f" {n2 / o2:.2f} |"
                print(row)
        sys.stdout.flush()


if __name__ == "__main__":
    main()
