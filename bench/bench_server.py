#!/usr/bin/env python3
"""Serving benchmark: kvsteer serve against llama.cpp's llama-server on the same
GGUF, threads and slots, in the same run, at several concurrency levels.

For each level C, each server is started with C slots, then C clients each send
R streamed chat requests back to back (greedy, max_tokens N, prompts that ask for
long answers).  For kvsteer, every second request is cache-steered (a vector
extracted from the demo traces, c_v 4) and every fourth of the others
activation-steered, so steered and unsteered requests share the batch;
llama-server runs the same requests unsteered (it has no per-request steering).
Measured per request from the client: time to first token (TTFT) and time per
output token after the first (TPOT); per level: generated tokens per second
over the wall time, and requests per second.  Token counts come from each
server's `usage`.

usage: bench/bench_server.py [-m MODEL] [-t THREADS] [-c 1,8,32] [-n TOKENS] [-r REQS_PER_CLIENT]
                             [--kvsteer build/kvsteer] [--llama-server PATH]
Prints one Markdown table (and --json FILE writes the rows).
"""
import argparse
import http.client
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time

PROMPTS = ["Tell me a long story about a lighthouse keeper.", "Explain in detail how a bicycle works.",
           "Describe a walk through a busy market, step by step.", "Write a long letter to a friend about autumn.",
           "Explain how bread is made, from the field to the table.", "Describe the water cycle in detail."]


def free_port():
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_ready(port, proc, timeout=300):
    t0 = time.time()
    while time.time() - t0 < timeout:
        if proc.poll() is not None:
            raise RuntimeError("server exited during start")
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            c.request("GET", "/health")
            r = c.getresponse()
            r.read()
            if r.status == 200:
                return
        except OSError:
            pass
        time.sleep(0.3)
    raise RuntimeError("server did not become ready")


def one_request(port, body):
    """A streamed chat request: (ttft, total, completion tokens)."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    t0 = time.perf_counter()
    c.request("POST", "/v1/chat/completions", json.dumps(body), {"Content-Type": "application/json"})
    r = c.getresponse()
    if r.status != 200:
        raise RuntimeError(f"HTTP {r.status}: {r.read()[:300]!r}")
    ttft = None
    usage = None
    buf = b""
    while True:
        chunk = r.read1(65536)
        if not chunk:
            break
        buf += chunk
        while b"\n\n" in buf:
            ev, buf = buf.split(b"\n\n", 1)
            if not ev.startswith(b"data: "):
                continue
            d = ev[6:]
            if d == b"[DONE]":
                continue
            j = json.loads(d)
            if ttft is None and j.get("choices") and j["choices"][0].get("delta", {}).get("content"):
                ttft = time.perf_counter() - t0
            if j.get("usage"):
                usage = j["usage"]
    total = time.perf_counter() - t0
    c.close()
    n = usage["completion_tokens"] if usage else 0
    return ttft if ttft is not None else total, total, n


def run_level(port, conc, reqs, n_tokens, steer):
    results = []
    lock = threading.Lock()

    def client(k):
        for i in range(reqs):
            idx = k * reqs + i
            body = {"model": "m", "messages": [{"role": "user", "content": PROMPTS[idx % len(PROMPTS)]}],
                    "max_tokens": n_tokens, "temperature": 0, "stream": True,
                    "stream_options": {"include_usage": True}}
            if steer and idx % 2 == 0:
                body["kv_steering"] = {"vector": "demo", "c_v": 4}
            elif steer and idx % 4 == 1:
                body["act_steering"] = {"vector": "demo-act", "layer": 10, "scale": 2}
            res = one_request(port, body)
            with lock:
                results.append(res)

    t0 = time.perf_counter()
    ths = [threading.Thread(target=client, args=(k,)) for k in range(conc)]
    for t in ths:
        t.start()
    for t in ths:
        t.join()
    wall = time.perf_counter() - t0
    toks = sum(r[2] for r in results)
    tpot = [(r[1] - r[0]) / (r[2] - 1) for r in results if r[2] > 1]
    return {"requests": len(results), "wall_s": wall, "tokens": toks, "tok_per_s": toks / wall,
            "req_per_s": len(results) / wall, "ttft_ms_median": 1000 * statistics.median(r[0] for r in results),
            "tpot_ms_median": 1000 * statistics.median(tpot) if tpot else float("nan")}


def start_kvsteer(args, conc, vdir, port):
    ctx = 512
    return subprocess.Popen([args.kvsteer, "serve", "-m", args.model, "-t", str(args.threads), "--slots", str(conc),
                             "--ctx", str(ctx), "--port", str(port), "--vectors", vdir, "--queue", "1024"],
                            stderr=subprocess.DEVNULL)


def start_llama(args, conc, port):
    # llama-server divides its context among its slots: the same 512 per slot
    return subprocess.Popen([args.llama_server, "-m", args.model, "-t", str(args.threads), "-tb", str(args.threads),
                             "-np", str(conc), "-c", str(512 * conc), "--port", str(port), "--host", "127.0.0.1",
                             "-b", "512", "-ub", "512", "--no-webui"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-m", "--model", default="models/SmolLM2-135M-Instruct.Q4_1.gguf")
    ap.add_argument("-t", "--threads", type=int, default=2)
    ap.add_argument("-c", "--concurrency", default="1,8,32")
    ap.add_argument("-n", "--tokens", type=int, default=64)
    ap.add_argument("-r", "--requests", type=int, default=2, help="requests per client (default 2)")
    ap.add_argument("--kvsteer", default="build/kvsteer")
    ap.add_argument("--llama-server", default="bench/.peer/build/bin/llama-server")
    ap.add_argument("--json", help="write the rows to this file")
    args = ap.parse_args()
    for p in (args.model, args.kvsteer, args.llama_server):
        if not os.path.exists(p):
            sys.exit(f"bench_server.py: {p}: not found (llama-server: bench/build_llamacpp.sh server)")
    vdir = tempfile.mkdtemp()
    for kind, name in (("cache", "demo"), ("act", "demo-act")):
        subprocess.run([args.kvsteer, "extract", "-m", args.model, "--traces", "data/demo/demo_traces.jsonl",
                        "--pairs", "4", "--shots", "1", "-q", "--kind", kind, "-t", str(args.threads),
                        "-o", os.path.join(vdir, name + ".gguf")], check=True)
    rows = []
    for conc in [int(x) for x in args.concurrency.split(",")]:
        for name in ("llama-server", "kvsteer"):
            port = free_port()
            p = start_kvsteer(args, conc, vdir, port) if name == "kvsteer" else start_llama(args, conc, port)
            try:
                wait_ready(port, p)
                # one request first, so both have touched their weights
                one_request(port, {"model": "m", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4,
                                   "temperature": 0, "stream": True, "stream_options": {"include_usage": True}})
                r = run_level(port, conc, args.requests, args.tokens, name == "kvsteer")
            finally:
                p.terminate()
                p.wait(timeout=60)
            r.update({"server": name, "concurrency": conc})
            rows.append(r)
            print(f"# {name} c={conc}: {r['tok_per_s']:.1f} tok/s, TTFT {r['ttft_ms_median']:.0f} ms, "
                  f"TPOT {r['tpot_ms_median']:.1f} ms", file=sys.stderr, flush=True)
    model = os.path.basename(args.model)
    print(f"\n{model}, {args.threads} threads, {args.tokens} tokens per request, {args.requests} requests per "
          f"client; kvsteer: half the requests cache-steered, a quarter activation-steered\n")
    print("| concurrency | server | tok/s | req/s | TTFT median (ms) | TPOT median (ms) | tok/s vs llama-server |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        peer = next(x for x in rows if x["concurrency"] == r["concurrency"] and x["server"] == "llama-server")
        print(f"| {r['concurrency']} | {r['server']} | {r['tok_per_s']:.1f} | {r['req_per_s']:.2f} | "
              f"{r['ttft_ms_median']:.0f} | {r['tpot_ms_median']:.1f} | {r['tok_per_s'] / peer['tok_per_s']:.2f} |")
    if args.json:
        tmp = args.json + ".tmp"
        with open(tmp, "w") as f:
            json.dump(rows, f, indent=1)
        os.replace(tmp, args.json)


if __name__ == "__main__":
    main()
