#!/usr/bin/env python3
"""`kvsteer serve` end to end, on loopback only: every answer is checked
against `kvsteer run` with the same settings (alone and among 16 concurrent
requests with other vectors), streaming against non-streaming, every kind of
bad request against its 4xx answer, and the server's life (disconnects
cancel, a full queue answers 503, an API key, SIGTERM exits 0).  Talks with
curl, with the standard library's HTTP client and with the official `openai`
client.  usage: server_api.py path/to/kvsteer   (prints "N passed, N failed")
"""
import http.client
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time

BIN = os.path.abspath(sys.argv[1])
MODEL = os.environ.get("KVS_MODEL", "models/SmolLM2-135M-Instruct.Q4_1.gguf")
OTHER = "tests/fixtures/kq_q5_0.gguf"  # a tiny synthetic model: makes a vector for another model
SLOW = os.environ.get("KVS_SANITIZED") == "1"
T = "1"
CTX = "512"
passed = failed = 0
T0 = time.time()


def section(name):
    print(f"[{time.time() - T0:6.1f} s] {name}", flush=True)


def check(name, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
    else:
        failed += 1
        print(f"FAIL {name}: {detail}"[:1500], flush=True)


class Server:
    """A `kvsteer serve` on a free loopback port."""

    def __init__(self, *args):
        self.p = subprocess.Popen([BIN, "serve", "-m", MODEL, "--port", "0", "-t", T, *args],
                                  stderr=subprocess.PIPE, text=True)
        line = self.p.stderr.readline()
        m = re.search(r"http://127\.0\.0\.1:(\d+)", line)
        if not m:
            raise RuntimeError(f"server did not start: {line}{self.p.stderr.read()}")
        self.port = int(m.group(1))
        self.url = f"http://127.0.0.1:{self.port}"
        # keep reading stderr so the server never blocks on it
        self.log = []
        threading.Thread(target=lambda: self.log.extend(self.p.stderr), daemon=True).start()

    def request(self, method, path, body=None, headers=None, timeout=300):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
        c.request(method, path, body=data, headers=headers or {"Content-Type": "application/json"})
        r = c.getresponse()
        raw = r.read()
        c.close()
        return r.status, dict(r.getheaders()), raw

    def post(self, path, body, **kw):
        st, hd, raw = self.request("POST", path, body, **kw)
        try:
            return st, hd, json.loads(raw)
        except ValueError:
            return st, hd, raw

    def stop(self, sig=signal.SIGTERM, timeout=60):
        self.p.send_signal(sig)
        try:
            return self.p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
            return None


def run_cli(prompt, n, chat=True, extra=()):
    args = [BIN, "run", "-m", MODEL, "-p", prompt, "-n", str(n), "-t", T, "--ctx", CTX, *extra]
    if chat:
        args.append("--chat")
    r = subprocess.run(args, capture_output=True, timeout=600)
    if r.returncode:
        raise RuntimeError(f"kvsteer run failed: {r.stderr.decode()}")
    out = r.stdout.decode("utf-8", "replace")
    return out[:-1] if out.endswith("\n") else out


def chat_body(q, max_tokens, **kw):
    b = {"model": "x", "messages": [{"role": "user", "content": q}], "max_tokens": max_tokens, "temperature": 0}
    b.update(kw)
    return b


def content(resp):
    ch = resp["choices"][0]
    return ch["message"]["content"] if "message" in ch else ch["text"]


def sse_events(raw):
    ev = []
    for block in raw.decode().split("\n\n"):
        if block.startswith("data: "):
            d = block[6:]
            ev.append(d if d == "[DONE]" else json.loads(d))
    return ev


def stream_text(events):
    out = ""
    for e in events:
        if isinstance(e, dict) and e.get("choices"):
            c = e["choices"][0]
            out += c["delta"].get("content", "") if "delta" in c else c.get("text", "")
    return out


def metric(srv, name):
    _, _, raw = srv.request("GET", "/metrics")
    m = re.search(rf"^{re.escape(name)} (\S+)$", raw.decode(), re.M)
    return float(m.group(1)) if m else None


def main():
    section("vectors")
    tmp = tempfile.mkdtemp()
    vdir = os.path.join(tmp, "vectors")
    os.mkdir(vdir)
    traces = "data/demo/demo_traces.jsonl"
    for kind, name in (("cache", "demo"), ("act", "demo-act")):
        subprocess.run([BIN, "extract", "-m", MODEL, "--traces", traces, "--pairs", "4", "--shots", "1", "-t", T,
                        "-q", "--kind", kind, "-o", os.path.join(vdir, name + ".gguf")], check=True)
    have_other = os.path.exists(OTHER)
    if have_other:
        subprocess.run([BIN, "extract", "-m", OTHER, "--chat-template", "chatml", "--traces", traces, "--pairs", "1",
                        "--shots", "0", "-t", T, "-q", "-o", os.path.join(vdir, "other.gguf")], check=True)
    else:
        print(f"note: {OTHER} absent: the other-model vector check is skipped")
    demo, demo_act = os.path.join(vdir, "demo.gguf"), os.path.join(vdir, "demo-act.gguf")

    srv = Server("--vectors", vdir, "--slots", "8", "--ctx", CTX, "--max-body", "65536", "--queue", "64")
    try:
        # ---- listings
        section("listings")
        st, _, raw = srv.request("GET", "/health")
        check("health", st == 200 and json.loads(raw)["status"] == "ok", raw)
        st, _, raw = srv.request("GET", "/v1/models")
        check("models", st == 200 and json.loads(raw)["data"][0]["id"] == "SmolLM2-135M-Instruct.Q4_1", raw)
        st, _, raw = srv.request("GET", "/v1/steering/vectors")
        vecs = {v["name"]: v for v in json.loads(raw)["data"]}
        check("vectors listed", vecs.get("demo", {}).get("kind") == "cache" and
              vecs.get("demo-act", {}).get("kind") == "act" and vecs["demo"]["model_check"] == "ok", raw)
        if have_other:
            check("other-model vector listed as unusable", vecs.get("other", {}).get("usable") is False and
                  "another model" in vecs["other"]["model_check"], raw)

        # ---- the same tokens as `kvsteer run` with the same settings
        section("equal to run")
        Q = "Which is heavier, a kilogram of iron or a kilogram of feathers?"
        N = 24 if SLOW else 40
        cases = {
            "plain": ({}, []),
            "cache c_v 4": ({"kv_steering": {"vector": "demo", "c_v": 4}}, ["--steer", demo, "--cv", "4"]),
            "two vectors, layers": ({"kv_steering": [{"vector": "demo", "c_v": 2},
                                                     {"vector": "demo", "c_k": 0.2, "c_v": 1, "layers": "5-20"}]},
                                    ["--steer", demo, "--cv", "2", "--steer", demo, "--ck", "0.2", "--cv", "1",
                                     "--layers", "5-20"]),
            "act": ({"act_steering": {"vector": "demo-act", "layer": 10, "scale": 4}},
                    ["--act", demo_act, "--act-layer", "10", "--act-scale", "4"]),
            "sampling": ({"temperature": 0.8, "seed": 7, "top_k": 40, "top_p": 0.9},
                         ["--temp", "0.8", "--seed", "7", "--top-k", "40", "--top-p", "0.9"]),
            "offset only": ({"kv_steering": {"offset": "\n"}}, ["--offset-token", "newline"]),
            "repeat penalty": ({"repeat_penalty": 1.3, "repeat_last_n": 16},
                               ["--repeat-penalty", "1.3", "--repeat-last-n", "16"]),
            "min-p, penalty": ({"temperature": 0.8, "seed": 7, "min_p": 0.1, "repeat_penalty": 1.2},
                               ["--temp", "0.8", "--seed", "7", "--min-p", "0.1", "--repeat-penalty", "1.2"]),
        }
        solo = {}
        for name, (extra, flags) in cases.items():
            want = run_cli(Q, N, True, flags)
            st, _, r = srv.post("/v1/chat/completions", chat_body(Q, N, **extra))
            got = content(r) if st == 200 else None
            solo[name] = got
            check(f"equals run: {name}", st == 200 and got == want, f"status {st}\n got {got!r}\nwant {want!r}\n{r}")
        st, _, r = srv.post("/v1/chat/completions",
                            chat_body(Q, N, kv_steering={"vector": "demo", "c_k": 0, "c_v": 0}))
        check("c_k 0, c_v 0 with the offset = unsteered with the offset", st == 200 and
              content(r) == solo["offset only"], f"{r}")
        want = run_cli("The capital of France is", N, False)
        st, _, r = srv.post("/v1/completions", {"prompt": "The capital of France is", "max_tokens": N,
                                                "temperature": 0})
        check("completions equal run without --chat", st == 200 and content(r) == want and
              r["object"] == "text_completion", f"{r} want {want!r}")

        # ---- 16 concurrent requests with different settings: each as alone
        section("16 concurrent")
        names = list(cases)
        results = [None] * 16

        def one(i):
            extra = cases[names[i % len(names)]][0]
            results[i] = srv.post("/v1/chat/completions", chat_body(Q, N, **extra))

        ths = [threading.Thread(target=one, args=(i,)) for i in range(16)]
        for t in ths:
            t.start()
        for t in ths:
            t.join()
        bad = [(i, r) for i, r in enumerate(results)
               if r[0] != 200 or content(r[2]) != solo[names[i % len(names)]]]
        check("16 concurrent mixed requests equal their solo answers", not bad, str(bad[:2]))

        # ---- streaming
        section("streaming")
        body = chat_body(Q, N, stream=True, stream_options={"include_usage": True},
                         kv_steering={"vector": "demo", "c_v": 4})
        st, hd, raw = srv.request("POST", "/v1/chat/completions", body)
        ev = sse_events(raw)
        check("stream: event-stream", st == 200 and hd.get("Content-Type") == "text/event-stream", hd)
        check("stream: text equals non-stream", stream_text(ev) == solo["cache c_v 4"],
              f"{stream_text(ev)!r} vs {solo['cache c_v 4']!r}")
        check("stream: ends with [DONE], a finish reason and usage", ev and ev[-1] == "[DONE]" and
              any(isinstance(e, dict) and e.get("choices") and e["choices"][0].get("finish_reason") for e in ev) and
              isinstance(ev[-2], dict) and ev[-2]["usage"]["completion_tokens"] > 0, ev[-3:])
        st, hd, raw = srv.request("POST", "/v1/completions", {"prompt": "The capital of France is",
                                                              "max_tokens": N, "temperature": 0, "stream": True})
        check("stream: completions", st == 200 and stream_text(sse_events(raw)) == want, raw[-300:])

        # ---- stop strings
        section("stop strings")
        st, _, r = srv.post("/v1/chat/completions", chat_body(Q, N, stop=[" of"]))
        full = solo["plain"]
        cut = full.split(" of")[0]
        check("stop string cuts the text", st == 200 and content(r) == cut and
              r["choices"][0]["finish_reason"] == "stop", f"{r} want {cut!r}")
        st, _, raw = srv.request("POST", "/v1/chat/completions", chat_body(Q, N, stop=[" of"], stream=True))
        check("stop string, streamed", stream_text(sse_events(raw)) == cut, raw[-400:])

        # ---- bad requests: 4xx with OpenAI's error object naming the field
        section("bad requests")
        def bad_req(name, body, status, param=None, needle=None, path="/v1/chat/completions"):
            st, _, r = srv.post(path, body)
            err = r.get("error", {}) if isinstance(r, dict) else {}
            ok = st == status and isinstance(err.get("message"), str) and "type" in err and "code" in err
            if param is not None:
                ok = ok and err.get("param") == param and param in err["message"]
            if needle:
                ok = ok and needle in err.get("message", "")
            check(f"bad request: {name}", ok, f"status {st}: {r}")

        bad_req("malformed JSON", b'{"messages": [', 400)
        bad_req("not an object", b'[1,2]', 400)
        bad_req("no messages", {"model": "x"}, 400, "messages")
        bad_req("messages not a list", {"messages": "hi"}, 400, "messages")
        bad_req("bad role", {"messages": [{"role": "robot", "content": "x"}]}, 400, "messages[0].role")
        bad_req("temperature a string", chat_body(Q, 4, temperature="hot"), 400, "temperature")
        bad_req("huge max_tokens", b'{"messages":[{"role":"user","content":"x"}],"max_tokens":1e400}', 400,
                "max_tokens")
        bad_req("max_tokens over the limit", chat_body(Q, 10 ** 12), 400, "max_tokens")
        bad_req("fractional top_k", chat_body(Q, 4, top_k=2.5), 400, "top_k")
        bad_req("repeat_penalty 0", chat_body(Q, 4, repeat_penalty=0), 400, "repeat_penalty")
        bad_req("repeat_last_n -2", chat_body(Q, 4, repeat_last_n=-2), 400, "repeat_last_n")
        bad_req("min_p over 1", chat_body(Q, 4, min_p=1.5), 400, "min_p")
        bad_req("n = 2", chat_body(Q, 4, n=2), 400, "n")
        bad_req("unknown vector", chat_body(Q, 4, kv_steering={"vector": "nope"}), 400, "kv_steering.vector")
        bad_req("act vector as cache", chat_body(Q, 4, kv_steering={"vector": "demo-act"}), 400,
                "kv_steering.vector")
        bad_req("c_v out of range", chat_body(Q, 4, kv_steering={"vector": "demo", "c_v": 1000}), 400,
                "kv_steering.c_v")
        bad_req("c_k wrong type", chat_body(Q, 4, kv_steering=[{"vector": "demo", "c_k": "x"}]), 400,
                "kv_steering[0].c_k")
        bad_req("layers outside the model", chat_body(Q, 4, kv_steering={"vector": "demo", "layers": "20-40"}),
                400, "kv_steering.layers")
        bad_req("offset of two tokens", chat_body(Q, 4, kv_steering={"vector": "demo", "offset": "hello world"}),
                400, "kv_steering.offset")
        bad_req("act layer missing", chat_body(Q, 4, act_steering={"vector": "demo-act"}), 400,
                "act_steering.layer")
        if have_other:
            bad_req("vector for another model", chat_body(Q, 4, kv_steering={"vector": "other"}), 400,
                    "kv_steering.vector", "another model")
        bad_req("prompt longer than the context", chat_body("word " * 2000, 4), 400, "messages", "context")
        bad_req("body over the limit", {"messages": [{"role": "user", "content": "x" * 100000}]}, 413)
        bad_req("completions without prompt", {"max_tokens": 3}, 400, "prompt", path="/v1/completions")
        st, _, r = srv.post("/v1/nothing", {})
        check("unknown endpoint: 404", st == 404 and "error" in r, r)
        st, _, r = srv.request("GET", "/v1/chat/completions")
        check("wrong method: 405", st == 405, r)
        # curl, as the README shows it
        cp = subprocess.run(["curl", "-sS", "--max-time", "120", srv.url + "/v1/chat/completions",
                             "-H", "Content-Type: application/json", "-d",
                             json.dumps(chat_body(Q, N, kv_steering={"vector": "demo", "c_v": 4}))],
                            capture_output=True, text=True)
        check("curl: steered request", cp.returncode == 0 and content(json.loads(cp.stdout)) == solo["cache c_v 4"],
              cp.stdout + cp.stderr)

        # ---- the official OpenAI client
        section("openai client")
        try:
            import openai
            cl = openai.OpenAI(base_url=srv.url + "/v1", api_key="unused", max_retries=0, timeout=300)
            r = cl.chat.completions.create(model="x", messages=[{"role": "user", "content": Q}], max_tokens=N,
                                           temperature=0, extra_body={"kv_steering": {"vector": "demo", "c_v": 4}})
            check("openai: steered chat", r.choices[0].message.content == solo["cache c_v 4"], r)
            r = cl.chat.completions.create(model="x", messages=[{"role": "user", "content": Q}], max_tokens=N,
                                           temperature=0)
            check("openai: unsteered chat", r.choices[0].message.content == solo["plain"] and
                  r.usage.completion_tokens > 0, r)
            s = cl.chat.completions.create(model="x", messages=[{"role": "user", "content": Q}], max_tokens=N,
                                           temperature=0, stream=True,
                                           extra_body={"act_steering": {"vector": "demo-act", "layer": 10,
                                                                        "scale": 4}})
            txt = "".join(c.choices[0].delta.content or "" for c in s if c.choices)
            check("openai: streamed activation-steered chat", txt == solo["act"], f"{txt!r}")
            r = cl.completions.create(model="x", prompt="The capital of France is", max_tokens=N, temperature=0)
            check("openai: completions", r.choices[0].text == want, r)
            check("openai: models", cl.models.list().data[0].id == "SmolLM2-135M-Instruct.Q4_1")
            try:
                cl.chat.completions.create(model="x", messages=[{"role": "user", "content": Q}], max_tokens=4,
                                           extra_body={"kv_steering": {"vector": "nope"}})
                check("openai: bad vector raises", False, "no exception")
            except openai.BadRequestError as e:
                check("openai: bad vector raises", "kv_steering.vector" in str(e), str(e))
        except ImportError:
            check("openai client installed (scripts/setup.sh)", False, "python module openai missing")

        # ---- a client that goes away cancels its generation
        section("disconnect")
        c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=60)
        c.request("POST", "/v1/chat/completions",
                  json.dumps(chat_body("Tell me a very long story about a dragon.", 400, stream=True)),
                  {"Content-Type": "application/json"})
        r = c.getresponse()
        r.read1(200) if hasattr(r, "read1") else r.read(200)
        before = metric(srv, 'kvsteer_generations_total{outcome="cancelled"}') or 0
        c.sock.close()
        c.close()
        t0 = time.time()
        while time.time() - t0 < 60:
            if (metric(srv, 'kvsteer_generations_total{outcome="cancelled"}') or 0) > before and \
                    metric(srv, "kvsteer_slots_busy") == 0:
                break
            time.sleep(0.2)
        check("disconnect cancels the generation and frees the slot",
              (metric(srv, 'kvsteer_generations_total{outcome="cancelled"}') or 0) > before and
              metric(srv, "kvsteer_slots_busy") == 0, srv.request("GET", "/metrics")[2].decode()[-600:])
        st, hd, raw = srv.request("GET", "/metrics")
        txt = raw.decode()
        check("metrics: Prometheus text", st == 200 and hd.get("Content-Type", "").startswith("text/plain") and
              "# TYPE kvsteer_requests_total counter" in txt and
              re.search(r'kvsteer_requests_total\{endpoint="/v1/chat/completions",code="400"\} \d+', txt) and
              "kvsteer_token_seconds_count" in txt, txt[:800])
    finally:
        rc = srv.stop()
        check("SIGTERM when idle: exit 0", rc == 0, f"rc {rc}: {''.join(srv.log)[-500:]}")

    # ---- a full queue answers 503 with Retry-After; the rest complete
    section("full queue, SIGTERM")
    # a long context so the in-flight request below outlasts the grace on any machine
    srv = Server("--slots", "1", "--queue", "1", "--ctx", "2048", "--grace", "1")
    try:
        out = [None] * 5

        def hit(i):
            out[i] = srv.post("/v1/chat/completions", chat_body(Q, 60, temperature=0))

        ths = [threading.Thread(target=hit, args=(i,)) for i in range(5)]
        for t in ths:
            t.start()
        for t in ths:
            t.join()
        codes = sorted(o[0] for o in out)
        check("full queue: 503 with Retry-After, others 200",
              503 in codes and 200 in codes and set(codes) <= {200, 503} and
              all(o[1].get("Retry-After") for o in out if o[0] == 503) and
              all(o[2]["error"]["type"] == "server_busy" for o in out if o[0] == 503), codes)
        # SIGTERM with a request in flight: it is finished or cancelled, exit 0, within the grace
        res = {}

        def longreq():
            res["r"] = srv.request("POST", "/v1/chat/completions",
                                   chat_body("Tell me a very long story about a dragon.", 1900, stream=True))

        th = threading.Thread(target=longreq)
        th.start()
        time.sleep(1.0)
        t0 = time.time()
        rc = srv.stop(timeout=60)
        took = time.time() - t0
        th.join(60)
        check("SIGTERM in flight: exit 0 within the grace", rc == 0 and took < 1 + 15,
              f"rc {rc} after {took:.1f}s")
        # (1900 tokens take far longer than the 1 s grace, even at 100+ tokens/s and greedy
        # the story does not end early: the answer is cut, with an error event)
        check("SIGTERM in flight: the stream ends with an error event and [DONE]", "r" in res and
              res["r"][0] == 200 and res["r"][2].endswith(b"data: [DONE]\n\n") and b"shutting down" in res["r"][2],
              res.get("r", ("none",))[-1][-300:])
    finally:
        if srv.p.poll() is None:
            srv.stop(signal.SIGKILL)

    # ---- an API key
    section("api key")
    srv = Server("--api-key", "sekrit", "--ctx", CTX)
    try:
        st, hd, _ = srv.request("GET", "/v1/models")
        check("api key: missing -> 401", st == 401 and "Bearer" in hd.get("WWW-Authenticate", ""), st)
        st, _, _ = srv.request("GET", "/v1/models", headers={"Authorization": "Bearer wrong"})
        check("api key: wrong -> 401", st == 401, st)
        st, _, _ = srv.request("GET", "/v1/models", headers={"Authorization": "Bearer sekrit"})
        check("api key: right -> 200", st == 200, st)
        st, _, _ = srv.request("GET", "/health")
        check("api key: /health stays open", st == 200, st)
    finally:
        srv.stop()

    # ---- bad command lines: one line, non-zero
    section("command lines")
    for name, args, needle in (("missing model", ["serve"], "-m MODEL"),
                               ("bad port", ["serve", "-m", MODEL, "--port", "70000"], "--port"),
                               ("bad host", ["serve", "-m", MODEL, "--host", "localhost:1", "--port", "0"], "host"),
                               ("bad vector spec", ["serve", "-m", MODEL, "--vector", "novalue", "--port", "0"],
                                "NAME=FILE"),
                               ("missing vector dir", ["serve", "-m", MODEL, "--vectors", "/nonexistent/dir",
                                                       "--port", "0"], "/nonexistent/dir")):
        r = subprocess.run([BIN, *args], capture_output=True, text=True, timeout=120)
        check(f"command line: {name}", r.returncode not in (0,) and r.returncode < 128 and
              len(r.stderr.strip().splitlines()) == 1 and needle in r.stderr, f"rc {r.returncode}: {r.stderr}")

    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
