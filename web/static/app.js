// kvsteer playground: two answers to one prompt, side by side, each with its
// own steering.  It talks to the server only through its public API
// (docs/SERVER.md), so every request it sends is one a user could send.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { model: null, vectors: [], running: [] };

// ------------------------------------------------------------ API

function headers() {
  const h = { "Content-Type": "application/json" };
  const key = $("api-key").value.trim();
  if (key) h["Authorization"] = "Bearer " + key;
  return h;
}

// The server's error object as one line; the message already names the field.
function errorText(status, body) {
  const e = body && body.error;
  if (e && typeof e.message === "string") return `${e.message} (HTTP ${status}${e.param ? ", " + e.param : ""})`;
  return `HTTP ${status}: ${typeof body === "string" ? body : JSON.stringify(body)}`;
}

async function getJSON(path) {
  const r = await fetch(path, { headers: headers() });
  const text = await r.text();
  let body = text;
  try { body = JSON.parse(text); } catch (_) { /* keep the text for the message */ }
  if (!r.ok) throw new Error(`${path}: ${errorText(r.status, body)}`);
  return body;
}

function showPageError(msg) {
  const e = $("page-error");
  e.textContent = msg || "";
  e.hidden = !msg;
}

async function load() {
  showPageError("");
  try {
    const models = await getJSON("/v1/models");
    state.model = models.data[0];
    const m = state.model.meta || {};
    $("model").textContent = `${state.model.id} · ${m.n_layer} layers · ${m.n_ctx_slot} tokens per request · ` +
      `${m.slots} slots · kernels ${m.kernels} · kvsteer ${m.version}`;
    const vecs = await getJSON("/v1/steering/vectors");
    state.vectors = vecs.data;
  } catch (err) {
    $("model").textContent = "";
    showPageError(String(err.message || err) +
      (String(err.message).includes("HTTP 401") ? " — type the server's API key above and press Reload." : ""));
    state.vectors = [];
  }
  renderVectors();
  columns.forEach((c) => c.fillVectors());
}

// ------------------------------------------------------------ vector list

function renderVectors() {
  const tb = $("vectors").tBodies[0];
  tb.textContent = "";
  if (!state.vectors.length) {
    const tr = tb.insertRow();
    const td = tr.insertCell();
    td.colSpan = 5;
    td.className = "muted";
    td.textContent = "no vectors loaded (start the server with --vectors DIR or --vector NAME=FILE)";
    return;
  }
  for (const v of state.vectors) {
    const tr = tb.insertRow();
    tr.insertCell().textContent = v.name;
    tr.insertCell().textContent = v.kind || "—";
    tr.insertCell().textContent = v.use_in || "—";
    const chk = tr.insertCell();
    chk.textContent = v.model_check === "ok" ? "ok" : v.model_check;
    chk.className = v.usable ? "ok" : "bad";
    const meta = v.metadata || {};
    const keys = Object.keys(meta);
    const td = tr.insertCell();
    td.className = "meta";
    td.textContent = keys.slice(0, 4).map((k) => `${k}=${meta[k]}`).join(", ") + (keys.length > 4 ? ", …" : "");
    td.title = keys.map((k) => `${k} = ${meta[k]}`).join("\n") + `\nfile: ${v.file}`;
  }
}

// ------------------------------------------------------------ values from inputs

// A number when the text is one, else the text itself: the server, not the
// page, decides what is valid, and its error names the field.
function val(text) {
  const t = String(text).trim();
  if (t !== "" && Number.isFinite(Number(t))) return Number(t);
  return t;
}

function unescapeOffset(s) {
  return s.replace(/\\(n|t|r|\\)/g, (_, c) => ({ n: "\n", t: "\t", r: "\r", "\\": "\\" })[c]);
}

// an optional setting: left empty, the request leaves it to the server (off)
function optional(b, key, id) {
  const t = $(id).value.trim();
  if (t !== "") b[key] = val(t);
}

function sampling() {
  const b = { max_tokens: val($("max-tokens").value) };
  optional(b, "repeat_penalty", "repeat-penalty"); // greedy too
  if ($("mode-greedy").checked) {
    b.temperature = 0;
    return b;
  }
  b.temperature = val($("temperature").value);
  b.top_p = val($("top-p").value);
  b.top_k = val($("top-k").value);
  optional(b, "min_p", "min-p");
  return b;
}

// ------------------------------------------------------------ one column

class Column {
  constructor(label, kvOn) {
    this.label = label;
    this.root = $("column-tpl").content.firstElementChild.cloneNode(true);
    this.root.id = "col-" + label.toLowerCase();
    this.f = {};
    for (const el of this.root.querySelectorAll("[data-f]")) {
      this.f[el.dataset.f] = el;
      el.id = label.toLowerCase() + "-" + el.dataset.f; // stable ids: a-cv-num, b-out, ...
    }
    this.f.label.textContent = label;
    this.f["kv-on"].checked = kvOn;
    // slider and number move together; the number may hold what the slider cannot
    for (const [range, num] of [["cv", "cv-num"], ["ck", "ck-num"], ["act-scale", "act-scale-num"]]) {
      this.f[range].addEventListener("input", () => { this.f[num].value = this.f[range].value; this.summarize(); });
      this.f[num].addEventListener("input", () => { this.f[range].value = this.f[num].value; this.summarize(); });
    }
    this.root.addEventListener("change", () => this.summarize());
    this.root.addEventListener("input", () => this.summarize());
    this.f["copy-curl"].addEventListener("click", () => this.copy(curlSnippet(this.body(false))));
    this.f["copy-py"].addEventListener("click", () => this.copy(pythonSnippet(this.body(false))));
    $("columns").appendChild(this.root);
    this.fillVectors();
  }

  fillVectors() {
    for (const [sel, kind] of [["kv-vector", "cache"], ["act-vector", "act"]]) {
      const s = this.f[sel];
      const keep = s.value;
      s.textContent = "";
      const usable = state.vectors.filter((v) => v.usable && v.kind === kind);
      for (const v of state.vectors) {
        if (v.usable && v.kind !== kind) continue;
        const o = new Option(v.usable ? v.name : `${v.name} (unusable: ${v.model_check})`, v.name);
        o.disabled = !v.usable;
        s.add(o);
      }
      if (!s.options.length) s.add(new Option(`no ${kind} vectors`, ""));
      if (keep && usable.some((v) => v.name === keep)) s.value = keep;
      else if (usable.length) s.value = usable[0].name;
    }
    const n = state.model && state.model.meta ? state.model.meta.n_layer : null;
    this.f["layer-count"].textContent = n ? `(0-based; the model has 0–${n - 1})` : "";
    this.summarize();
  }

  kvOn() { return this.f["kv-on"].checked; }
  actOn() { return this.f["act-on"].checked; }

  summarize() {
    const parts = [];
    if (this.kvOn()) parts.push(`${this.f["kv-vector"].value || "?"} c_v ${this.f["cv-num"].value} c_k ${this.f["ck-num"].value}`);
    if (this.actOn()) parts.push(`act ${this.f["act-vector"].value || "?"} @${this.f["act-layer"].value} ×${this.f["act-scale-num"].value}`);
    this.f.summary.textContent = parts.length ? "· " + parts.join(" + ") : "· unsteered";
    this.root.classList.toggle("steered", parts.length > 0);
  }

  // The request this column sends; defaults the server already has are left out.
  body(stream, seed) {
    const b = { model: state.model ? state.model.id : "any",
                messages: [{ role: "user", content: $("prompt").value }], ...sampling() };
    if (b.temperature !== 0) {
      const s = seed !== undefined ? seed : val($("seed").value);
      if (s !== "") b.seed = s;
    }
    if (this.kvOn()) {
      const kv = { vector: this.f["kv-vector"].value, c_v: val(this.f["cv-num"].value), c_k: val(this.f["ck-num"].value) };
      const from = this.f["layer-from"].value.trim(), to = this.f["layer-to"].value.trim();
      const layers = to === "" ? `${from}-` : `${from}-${to}`;
      if (layers !== "1-") kv.layers = layers;
      const off = unescapeOffset(this.f.offset.value);
      if (off !== "\n") kv.offset = off;
      b.kv_steering = kv;
    }
    if (this.actOn())
      b.act_steering = { vector: this.f["act-vector"].value, layer: val(this.f["act-layer"].value),
                         scale: val(this.f["act-scale-num"].value) };
    if (stream) {
      b.stream = true;
      b.stream_options = { include_usage: true };
    }
    return b;
  }

  async copy(text) {
    this.f.snippet.textContent = text;
    this.f.snippet.hidden = false;
    let ok = false;
    try {
      if (navigator.clipboard && window.isSecureContext) {
        await navigator.clipboard.writeText(text);
        ok = true;
      }
    } catch (_) { /* denied: the text stays shown for copying by hand */ }
    this.f.copied.textContent = ok ? "copied" : "select the text below to copy it";
  }

  setState(s) { this.root.dataset.state = s; }

  showError(msg) {
    this.f.stats.textContent = "";
    this.f.error.textContent = msg;
    this.f.error.hidden = false;
    this.setState("error");
  }

  // Stream one answer into the column; resolves when it is over, whatever happened.
  async run(seed, signal) {
    this.f.out.textContent = "";
    this.f.error.hidden = true;
    this.f.stats.textContent = "waiting…";
    this.setState("running");
    const t0 = performance.now();
    let text = "", chunks = 0, last = null, usage = null;
    const tick = setInterval(() => {
      this.f.stats.textContent = `streaming · ${chunks} chunks · ${((performance.now() - t0) / 1000).toFixed(1)} s`;
    }, 250);
    try {
      const r = await fetch("/v1/chat/completions",
        { method: "POST", headers: headers(), body: JSON.stringify(this.body(true, seed)), signal });
      if (!r.ok) {
        const t = await r.text();
        let body = t;
        try { body = JSON.parse(t); } catch (_) { /* not JSON */ }
        this.showError(errorText(r.status, body));
        return;
      }
      const reader = r.body.getReader();
      const dec = new TextDecoder();
      let buf = "", done = false;
      while (!done) {
        const { value, done: end } = await reader.read();
        if (end) break;
        buf += dec.decode(value, { stream: true });
        let i;
        while ((i = buf.indexOf("\n\n")) >= 0) {
          const ev = buf.slice(0, i);
          buf = buf.slice(i + 2);
          if (!ev.startsWith("data: ")) continue;
          const data = ev.slice(6);
          if (data === "[DONE]") { done = true; break; }
          const j = JSON.parse(data);
          if (j.error) {
            this.showError(`the stream ended with an error: ${j.error.message} (${j.error.type})`);
            return;
          }
          if (j.usage) usage = j.usage;
          const c = j.choices && j.choices[0];
          if (!c) continue;
          if (c.delta && c.delta.content) {
            text += c.delta.content;
            this.f.out.textContent = text;
            chunks++;
          }
          if (c.finish_reason) last = j;
        }
      }
      if (!done) {
        this.showError("the stream ended before its end ([DONE]): the server stopped or the connection broke");
        return;
      }
      const k = last && last.kvsteer, tm = k && k.timings;
      const n = usage ? usage.completion_tokens : "?";
      this.f.stats.textContent = `${n} tokens · ${tm ? tm.tokens_per_s.toFixed(1) : "?"} tokens/s · ` +
        `first token ${tm ? tm.first_token_s.toFixed(2) : "?"} s · finish: ${last ? last.choices[0].finish_reason : "?"}` +
        (k && this.body(false).temperature !== 0 ? ` · seed ${k.seed}` : "");
      this.f.stats.dataset.tokens = n;
      this.setState("done");
    } catch (err) {
      if (err.name === "AbortError") {
        this.f.stats.textContent = `stopped after ${chunks} chunks`;
        this.setState("stopped");
      } else {
        this.showError("the request failed: " + (err.message || err));
      }
    } finally {
      clearInterval(tick);
    }
  }
}

// ------------------------------------------------------------ snippets

function shellQuote(s) { return "'" + s.replace(/'/g, "'\\''") + "'"; }

function curlSnippet(body) {
  const lines = [`curl -s ${location.origin}/v1/chat/completions`, `  -H 'Content-Type: application/json'`];
  const key = $("api-key").value.trim();
  if (key) lines.push(`  -H ${shellQuote("Authorization: Bearer " + key)}`);
  lines.push(`  -d ${shellQuote(JSON.stringify(body))}`);
  return lines.join(" \\\n");
}

// A JSON value as a Python literal.
function py(v) {
  if (v === null || v === undefined) return "None";
  if (v === true) return "True";
  if (v === false) return "False";
  if (typeof v === "number" || typeof v === "string") return JSON.stringify(v);
  if (Array.isArray(v)) return "[" + v.map(py).join(", ") + "]";
  return "{" + Object.keys(v).map((k) => `${JSON.stringify(k)}: ${py(v[k])}`).join(", ") + "}";
}

function pythonSnippet(body) {
  const std = ["model", "messages", "max_tokens", "temperature", "top_p", "seed"];
  const args = std.filter((k) => k in body).map((k) => `    ${k}=${py(body[k])},`);
  const extra = {};
  for (const k of Object.keys(body)) if (!std.includes(k)) extra[k] = body[k];
  if (Object.keys(extra).length) args.push(`    extra_body=${py(extra)},`);
  const key = $("api-key").value.trim();
  return [
    "from openai import OpenAI",
    "",
    `client = OpenAI(base_url=${py(location.origin + "/v1")}, api_key=${py(key || "unused")})`,
    "r = client.chat.completions.create(",
    ...args,
    ")",
    "print(r.choices[0].message.content)",
  ].join("\n");
}

// ------------------------------------------------------------ compare

let controller = null;

async function compare() {
  if (controller) return;
  controller = new AbortController();
  $("compare").disabled = true;
  $("stop").disabled = false;
  // one seed for both columns, so that only the steering differs
  let seed = undefined;
  if (!$("mode-greedy").checked && $("seed").value.trim() === "")
    seed = Math.floor(Math.random() * 2 ** 31);
  try {
    await Promise.all(columns.map((c) => c.run(seed, controller.signal)));
  } finally {
    controller = null;
    $("compare").disabled = false;
    $("stop").disabled = true;
  }
}

const columns = [new Column("A", false), new Column("B", true)];

$("compare").addEventListener("click", compare);
$("stop").addEventListener("click", () => controller && controller.abort());
$("reload").addEventListener("click", load);
$("prompt").addEventListener("keydown", (e) => {
  if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) compare();
});
for (const r of document.querySelectorAll("input[name=mode]"))
  r.addEventListener("change", () => { $("sampling").hidden = $("mode-greedy").checked; });
load();
