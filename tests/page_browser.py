#!/usr/bin/env python3
"""The playground page of `kvsteer serve`, driven in headless Chromium (Debian's
`chromium` and `chromium-driver`, Selenium from .venv), on loopback only.

It loads the page, picks the demo vector, sets c_v, presses Compare and checks
that the unsteered column equals `kvsteer run --chat` and the steered column
`kvsteer run --chat --steer demo.gguf --cv X` with the same settings (greedy, and
sampling with one seed); that the
"copy as curl" and "copy as Python" snippets, run as they are, give the steered
answer again; that an out-of-range c_v shows the server's own error text; that
Stop ends both streams and the server cancels both; that the page loads
nothing but its own files; and that with --api-key the page
loads without the key and its API calls work once the key is typed.

usage: page_browser.py path/to/kvsteer [OUTDIR] [--screenshot PATH]
Screenshots go to OUTDIR (a temporary folder if none); --screenshot also
writes the page with its answers to PATH (docs/playground.png is made so).
Prints "N passed, N failed"; a failure is a line starting with "FAIL ".
"""
import base64
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

BIN = os.path.abspath(sys.argv[1])
args = sys.argv[2:]
SHOT = None
if "--screenshot" in args:
    i = args.index("--screenshot")
    SHOT = os.path.abspath(args[i + 1])
    del args[i:i + 2]
OUT = os.path.abspath(args[0]) if args else tempfile.mkdtemp(prefix="page_browser.")
MODEL = os.environ.get("KVS_MODEL", "models/SmolLM2-135M-Instruct.Q4_1.gguf")
SLOW = os.environ.get("KVS_SANITIZED") == "1"
T = "1"
CTX = "512"
N = 24 if SLOW else 64  # max tokens, the same for the page and `kvsteer run`
CV = "4"
Q = "A shop sells pens for 3 dollars each. How much do 7 pens cost?"
WAIT = 600 if SLOW else 240  # seconds for one Compare to finish
passed = failed = 0


def check(name, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
    else:
        failed += 1
        print(f"FAIL {name}: {detail}"[:1500], flush=True)


def finish():
    print(f"{passed} passed, {failed} failed", flush=True)
    sys.exit(1 if failed else 0)


# Whatever hangs (a browser that never starts, a stream that never ends), the
# test ends: a failure line and a non-zero exit.
def watchdog():
    print("FAIL watchdog: the test ran longer than its limit", flush=True)
    print(f"{passed} passed, {failed + 1} failed", flush=True)
    os._exit(1)


dog = threading.Timer(1800 if SLOW else 600, watchdog)
dog.daemon = True
dog.start()

try:
    from selenium import webdriver
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait
except ImportError as e:
    check("selenium", False, f"{e} (scripts/setup.sh installs it into .venv from tests/requirements.txt)")
    finish()
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
for what, path in (("chromium", CHROMIUM), ("chromedriver", DRIVER)):
    if not os.access(path, os.X_OK):
        check(what, False, f"{path} not found (Debian packages chromium and chromium-driver; scripts/setup.sh)")
if failed:
    finish()


class Server:
    """A `kvsteer serve` on a free loopback port."""

    def __init__(self, *extra):
        self.p = subprocess.Popen([BIN, "serve", "-m", MODEL, "--port", "0", "-t", T, "--ctx", CTX, *extra],
                                  stderr=subprocess.PIPE, text=True)
        line = self.p.stderr.readline()
        m = re.search(r"http://127\.0\.0\.1:(\d+)", line)
        if not m:
            raise RuntimeError(f"server did not start: {line}{self.p.stderr.read()}")
        self.port = int(m.group(1))
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=lambda: [None for _ in self.p.stderr], daemon=True).start()

    def request(self, method, path, body=None, headers=None):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=300)
        c.request(method, path, body=None if body is None else json.dumps(body).encode(), headers=headers or {})
        r = c.getresponse()
        raw = r.read()
        c.close()
        return r.status, r.getheader("Content-Type"), raw

    def stop(self):
        self.p.send_signal(signal.SIGTERM)
        try:
            return self.p.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
            return None


def run_cli(extra=()):
    r = subprocess.run([BIN, "run", "-m", MODEL, "-p", Q, "-n", str(N), "-t", T, "--ctx", CTX, "--chat", *extra],
                       capture_output=True, timeout=900)
    if r.returncode:
        raise RuntimeError(f"kvsteer run failed: {r.stderr.decode()}")
    out = r.stdout.decode("utf-8", "replace")
    return out[:-1] if out.endswith("\n") else out


def browser(profile):
    o = webdriver.ChromeOptions()
    o.binary_location = CHROMIUM
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1400,1000",
              "--no-first-run", "--no-default-browser-check", "--disable-background-networking",
              "--disable-component-update", "--disable-sync", "--disable-extensions", "--disable-default-apps",
              "--force-device-scale-factor=1", "--lang=en-US", f"--user-data-dir={profile}",
              # loopback only: no name resolves but the server's address
              "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"):
        o.add_argument(a)
    d = webdriver.Chrome(service=Service(DRIVER), options=o)
    d.set_page_load_timeout(60)
    d.set_script_timeout(60)
    return d


def js(d, script, *a):
    return d.execute_script(script, *a)


def text_of(d, el_id):
    # textContent, not Selenium's .text: the answer exactly, whitespace included
    return js(d, "return document.getElementById(arguments[0]).textContent", el_id)


def type_into(d, el_id, value):
    el = d.find_element(By.ID, el_id)
    el.clear()
    el.send_keys(value)


def compare(d):
    """Press Compare and wait for both columns to end; their states."""
    d.find_element(By.ID, "compare").click()
    states = lambda: [js(d, f"return document.getElementById('col-{c}').dataset.state") for c in "ab"]
    try:
        WebDriverWait(d, 10).until(lambda _: "running" in states() or "idle" not in states())
        WebDriverWait(d, WAIT, poll_frequency=0.2).until(lambda _: "running" not in states())
    except TimeoutException:
        pass
    return states()


def screenshot(d, path):
    # the whole page from its top, not just the window (Chromium's own protocol)
    js(d, "window.scrollTo(0, 0)")
    w, h = js(d, "return [document.documentElement.scrollWidth, document.documentElement.scrollHeight]")
    shot = d.execute_cdp_cmd("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True,
                                                         "clip": {"x": 0, "y": 0, "width": w, "height": h, "scale": 1}})
    with open(path + ".tmp", "wb") as f:
        f.write(base64.b64decode(shot["data"]))
    os.replace(path + ".tmp", path)
    return os.path.getsize(path) > 10000


def main():
    os.makedirs(OUT, exist_ok=True)
    print(f"page_browser: output in {OUT}", flush=True)
    tmp = tempfile.mkdtemp(prefix="page_browser.")
    vdir = os.path.join(tmp, "vectors")
    os.mkdir(vdir)
    traces = "data/demo/demo_traces.jsonl"
    for kind, name in (("cache", "demo"), ("act", "demo-act")):
        subprocess.run([BIN, "extract", "-m", MODEL, "--traces", traces, "--pairs", "4", "--shots", "1", "-t", T,
                        "-q", "--kind", kind, "-o", os.path.join(vdir, name + ".gguf")], check=True, timeout=900)
    demo = os.path.join(vdir, "demo.gguf")
    want_plain = run_cli()
    want_steered = run_cli(["--steer", demo, "--cv", CV])
    check("the settings steer at all", want_plain != want_steered, "unsteered and steered `run` agree")

    srv = Server("--vectors", vdir, "--slots", "2")
    d = None
    try:
        # ---- the page's files, straight from the server
        for path, ctype in (("/", "text/html"), ("/static/app.js", "text/javascript"),
                            ("/static/style.css", "text/css")):
            st, ct, raw = srv.request("GET", path)
            check(f"GET {path}", st == 200 and (ct or "").startswith(ctype) and len(raw) > 100, f"{st} {ct}")
        st, _, _ = srv.request("POST", "/", {})
        check("POST / is 405", st == 405, st)

        d = browser(os.path.join(tmp, "profile"))
        d.get(srv.url + "/")
        WebDriverWait(d, 30).until(lambda _: "demo" in text_of(d, "vectors"))
        rows = js(d, "return [...document.querySelectorAll('#vectors tbody tr')].map(r => [...r.cells].map(c => c.textContent))")
        demo_row = [r for r in rows if r[0] == "demo"]
        check("vector list: demo, cache, model check ok", demo_row and demo_row[0][1:4] == ["cache", "kv_steering", "ok"],
              rows)
        check("model shown", "SmolLM2" in text_of(d, "model"), text_of(d, "model"))

        # ---- unsteered (A) against steered (B), greedy
        type_into(d, "prompt", Q)
        type_into(d, "max-tokens", str(N))
        d.find_element(By.ID, "mode-greedy").click()
        check("column A starts unsteered", not d.find_element(By.ID, "a-kv-on").is_selected() and
              not d.find_element(By.ID, "a-act-on").is_selected())
        if not d.find_element(By.ID, "b-kv-on").is_selected():
            d.find_element(By.ID, "b-kv-on").click()
        Select(d.find_element(By.ID, "b-kv-vector")).select_by_value("demo")
        type_into(d, "b-cv-num", CV)
        type_into(d, "b-ck-num", "0")
        check("the c_v slider follows the number", js(d, "return document.getElementById('b-cv').value") == CV,
              js(d, "return document.getElementById('b-cv').value"))
        states = compare(d)
        check("both columns finish", states == ["done", "done"],
              f"{states}: {text_of(d, 'a-error')} {text_of(d, 'b-error')}")
        got_a, got_b = text_of(d, "a-out"), text_of(d, "b-out")
        check("unsteered column equals `kvsteer run --chat`", got_a == want_plain, f"\n got {got_a!r}\nwant {want_plain!r}")
        check(f"steered column equals `kvsteer run --chat --steer demo.gguf --cv {CV}`", got_b == want_steered,
              f"\n got {got_b!r}\nwant {want_steered!r}")
        for c in "ab":
            stats = text_of(d, f"{c}-stats")
            n = js(d, f"return document.getElementById('{c}-stats').dataset.tokens")
            check(f"column {c.upper()}: token count and tokens/s", n and int(n) > 0 and f"{n} tokens" in stats and
                  re.search(r"[0-9.]+ tokens/s", stats), stats)

        # ---- the steered request as curl and as Python, run as they are
        d.find_element(By.ID, "b-copy-curl").click()
        WebDriverWait(d, 10).until(lambda _: text_of(d, "b-snippet").startswith("curl"))
        r = subprocess.run(["bash", "-c", text_of(d, "b-snippet")], capture_output=True, timeout=300)
        try:
            got = json.loads(r.stdout)["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError):
            got = None
        check("copy as curl: the same steered answer", got == want_steered, f"{r.stdout[:400]!r} {r.stderr[:300]!r}")
        d.find_element(By.ID, "b-copy-py").click()
        WebDriverWait(d, 10).until(lambda _: text_of(d, "b-snippet").startswith("from openai"))
        try:
            import openai  # noqa: F401  (installed by scripts/setup.sh with selenium)
            r = subprocess.run([sys.executable, "-c", text_of(d, "b-snippet")], capture_output=True, timeout=300)
            out = r.stdout.decode("utf-8", "replace")
            check("copy as Python: the same steered answer", r.returncode == 0 and out == want_steered + "\n",
                  f"{out[:400]!r} {r.stderr[-400:]!r}")
        except ImportError:
            check("copy as Python: openai importable", False, "scripts/setup.sh installs it into .venv")
        d.find_element(By.ID, "b-copy-curl").click()  # the README shows the curl form

        # ---- the page loaded nothing but its own files and the API
        res = js(d, "return performance.getEntriesByType('resource').map(e => e.name)")
        foreign = [u for u in res if not u.startswith(srv.url + "/")]
        check("only the server is contacted", res and not foreign, foreign or res)

        shot = os.path.join(OUT, "playground.png")
        check("screenshot", screenshot(d, shot), shot)
        if SHOT:
            shutil.copyfile(shot, SHOT)
            print(f"page_browser: screenshot written to {SHOT}", flush=True)

        # ---- sampling settings: the same seed in both columns, equal to `run` with them
        SAMPLING = {"temperature": "0.8", "top-p": "0.9", "top-k": "40", "seed": "7"}
        flags = ["--temp", "0.8", "--top-p", "0.9", "--top-k", "40", "--seed", "7"]
        want_a, want_b = run_cli(flags), run_cli(["--steer", demo, "--cv", CV, *flags])
        d.find_element(By.ID, "mode-sample").click()
        for k, v in SAMPLING.items():
            type_into(d, k, v)
        states = compare(d)
        got_a, got_b = text_of(d, "a-out"), text_of(d, "b-out")
        check("sampling: unsteered column equals `run --temp 0.8 --top-p 0.9 --top-k 40 --seed 7`",
              states[0] == "done" and got_a == want_a, f"{states}\n got {got_a!r}\nwant {want_a!r}")
        check("sampling: steered column equals `run --steer ... --temp 0.8 ... --seed 7`",
              states[1] == "done" and got_b == want_b, f"{states}\n got {got_b!r}\nwant {want_b!r}")
        check("sampling: the seed is shown", "seed 7" in text_of(d, "b-stats"), text_of(d, "b-stats"))
        # min-p with the same settings: the request carries it, and the answers are `run --min-p`'s
        type_into(d, "min-p", "0.2")
        want_mp = run_cli(["--steer", demo, "--cv", CV, *flags, "--min-p", "0.2"])
        states = compare(d)
        check("min-p 0.2: steered column equals `run ... --min-p 0.2`",
              states[1] == "done" and text_of(d, "b-out") == want_mp, f"{states}\n got {text_of(d, 'b-out')!r}")
        type_into(d, "min-p", "")
        d.find_element(By.ID, "mode-greedy").click()
        check("greedy hides the sampling settings", not d.find_element(By.ID, "temperature").is_displayed())
        check("greedy keeps the repeat penalty", d.find_element(By.ID, "repeat-penalty").is_displayed())
        # the repetition penalty applies to greedy decoding too
        type_into(d, "repeat-penalty", "1.5")
        want_rp = run_cli(["--repeat-penalty", "1.5"])
        states = compare(d)
        check("repeat penalty 1.5: unsteered column equals `run --repeat-penalty 1.5`",
              states[0] == "done" and text_of(d, "a-out") == want_rp, f"{states}\n got {text_of(d, 'a-out')!r}\nwant {want_rp!r}")
        check("repeat penalty 1.5 changes the greedy answer", want_rp != want_plain, want_rp)
        type_into(d, "repeat-penalty", "")

        # ---- a value the server refuses: its error, in the page
        type_into(d, "b-cv-num", "1000")
        bad_body = {"model": "x", "messages": [{"role": "user", "content": Q}], "max_tokens": N, "temperature": 0,
                    "kv_steering": {"vector": "demo", "c_v": 1000, "c_k": 0}}
        st, _, raw = srv.request("POST", "/v1/chat/completions", bad_body, {"Content-Type": "application/json"})
        server_msg = json.loads(raw)["error"]["message"] if st == 400 else None
        check("the server refuses c_v 1000", server_msg and "kv_steering.c_v" in server_msg, f"{st} {raw[:300]!r}")
        states = compare(d)
        err = text_of(d, "b-error")
        check("c_v 1000: column B shows the server's error", states[1] == "error" and server_msg and server_msg in err,
              f"{states} page {err!r} server {server_msg!r}")
        check("c_v 1000: the error box is visible", d.find_element(By.ID, "b-error").is_displayed())
        check("c_v 1000: column A still answers", states[0] == "done" and text_of(d, "a-out") == want_plain, states)
        screenshot(d, os.path.join(OUT, "playground-error.png"))

        # ---- Stop: both streams end in the page and the server cancels both
        type_into(d, "b-cv-num", CV)
        type_into(d, "max-tokens", "400")
        d.find_element(By.ID, "compare").click()
        try:
            WebDriverWait(d, WAIT).until(lambda _: text_of(d, "a-out") and text_of(d, "b-out"))
        except TimeoutException:
            pass
        d.find_element(By.ID, "stop").click()
        states = lambda: [js(d, f"return document.getElementById('col-{c}').dataset.state") for c in "ab"]
        try:
            WebDriverWait(d, 30).until(lambda _: "running" not in states())
        except TimeoutException:
            pass
        check("Stop: both columns stopped", states() == ["stopped", "stopped"], states())
        cancelled = None
        for _ in range(100):
            _, _, raw = srv.request("GET", "/metrics")
            m = re.search(r'^kvsteer_generations_total\{outcome="cancelled"\} (\S+)$', raw.decode(), re.M)
            cancelled = float(m.group(1)) if m else None
            if cancelled == 2:
                break
            time.sleep(0.2)
        check("Stop: the server cancelled both generations", cancelled == 2, cancelled)
        d.quit()
        d = None
        check("server exits 0", srv.stop() == 0)
        srv = None

        # ---- an API key: the page loads without it, its API calls need it
        key = "page-test-key"
        srv = Server("--vectors", vdir, "--slots", "1", "--api-key", key)
        st, _, _ = srv.request("GET", "/")
        check("with --api-key: GET / needs no key", st == 200, st)
        st, _, _ = srv.request("GET", "/v1/steering/vectors")
        check("with --api-key: the API still needs it", st == 401, st)
        d = browser(os.path.join(tmp, "profile2"))
        d.get(srv.url + "/")
        try:
            WebDriverWait(d, 30).until(lambda _: "API key" in text_of(d, "page-error"))
        except TimeoutException:
            pass
        check("with --api-key: the page shows the server's 401", "a valid API key is needed" in text_of(d, "page-error"),
              text_of(d, "page-error"))
        type_into(d, "api-key", key)
        d.find_element(By.ID, "reload").click()
        try:
            WebDriverWait(d, 30).until(lambda _: "demo" in text_of(d, "vectors"))
        except TimeoutException:
            pass
        check("with --api-key: typed key, vectors listed", "demo" in text_of(d, "vectors") and
              not d.find_element(By.ID, "page-error").is_displayed(), text_of(d, "page-error"))
        type_into(d, "max-tokens", "4")
        states = compare(d)
        check("with --api-key: Compare sends the key", states == ["done", "done"],
              f"{states}: {text_of(d, 'a-error')} {text_of(d, 'b-error')}")
        d.find_element(By.ID, "b-copy-curl").click()
        check("with --api-key: the curl snippet sends the key", f"Authorization: Bearer {key}" in text_of(d, "b-snippet"),
              text_of(d, "b-snippet"))
    except Exception as e:  # a crash is a failure with its reason, never a silent pass
        check("unexpected error", False, f"{type(e).__name__}: {e}")
    finally:
        if d:
            d.quit()
        if srv:
            srv.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    finish()


if __name__ == "__main__":
    main()
