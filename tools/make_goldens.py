#!/usr/bin/env python3
"""Reference outputs ("goldens") from llama.cpp, for the C tests.

For a fixed list of prompts this records, using llama-cpp-python:
  * token ids (no BOS, special tokens parsed) and the detokenized bytes;
  * for the first 32 prompts, the logits at the last prompt position: the
    argmax, the top 40 (id, logit) pairs and every 97th logit;
  * the same prompts tokenized with the model's vocabulary under other
    pre-tokenizer names (vocabulary-only copies of the file with
    tokenizer.ggml.pre replaced), to check the other split rules;
  * a small SentencePiece-style vocabulary ("llama" tokenizer model, scores,
    <0xXX> byte fallback) built from the model's tokens, and llama.cpp's
    tokenization of the prompts with it;
  * the greedy 16-token continuation of three chat prompts;
  * chat renderings of the file's template by jinja2, for test_chat.

Usage:
  python3 tools/make_goldens.py --model models/SmolLM2-135M-Instruct.Q4_1.gguf \\
      --out tests/golden/smollm2_q4_1.json
"""
import argparse
import ctypes
import json
import os
import sys
import tempfile

import numpy as np

N_LOGIT_PROMPTS = 32
TOP_K = 40
STRIDE = 97
GREEDY_TOKENS = 16
PRE_VARIANTS = ["llama-bpe", "qwen2", "gpt-2", "default", "starcoder"]

LONG_PARAGRAPH = (
    "On the morning the river froze, the ferry keeper walked out onto the ice with a lantern, "
    "tapping ahead of himself with a long ash pole. Nobody in the village could remember the "
    "last time the water had stopped moving; the oldest fisherman claimed it happened once when "
    "he was a boy, in a winter so cold that the church bell cracked. By noon a crowd had gathered "
    "on the bank. Children slid in their boots, dogs barked at their own reflections, and the "
    "baker sold 48 loaves of warm bread in under an hour (a record, he insisted, worth writing "
    "down). The schoolteacher measured the ice at 11.5 centimetres and declared it safe for "
    "walking but not for carts. Still, by evening someone had dragged a sledge loaded with "
    "firewood across to the far shore, and a small fire burned in an iron pan in the middle of "
    "the river while people sang songs whose words half of them had forgotten. When the thaw "
    "came three days later, it arrived at night, with a sound like distant thunder rolling "
    "downstream, and in the morning the ferry was running again as if nothing had happened."
)

# (label, bytes).  Our own texts, covering the cases the tokenizer must get right.
PROMPTS = [
    ("ascii", "Hello world"),
    ("sentence", "The quick brown fox jumps over the lazy dog."),
    ("question", "What is the capital of France?"),
    ("accents_fr", "Café au lait, naïve résumé, façade, jalapeño."),
    ("accents_mixed", "Grüße aus Köln! Ærøskøbing, Łódź, İstanbul."),
    ("japanese", "東京は日本の首都です。"),
    ("chinese", "我喜欢在周末读书和散步。"),
    ("korean", "한국어 문장도 시험해 봅시다."),
    ("emoji", "Emoji test: 😀🎉👍🏽 and a family 👨\u200d👩\u200d👧."),
    ("code_c", 'int main(void) {\n    printf("%d\\n", 42);\n    return 0;\n}\n'),
    ("code_py", "def add(a, b):\n\treturn a + b\n"),
    ("digits", "12345"),
    ("decimals", "Pi is about 3.14159, e is about 2.71828."),
    ("numbers_mixed", "Call 555-0123 before 10:30 on 2024-03-15."),
    ("space_runs", "a  b   c    d"),
    ("newline_runs", "line one\n\nline three\n\n\n"),
    ("tabs", "\ttabbed\t\tvalue\t"),
    ("edge_spaces", "   leading and trailing spaces   "),
    ("special_user", "<|im_start|>user\nHi<|im_end|>"),
    ("chat_rendered",
     "<|im_start|>system\nYou are terse.<|im_end|>\n<|im_start|>user\nName a color.<|im_end|>\n"
     "<|im_start|>assistant\n"),
    ("contractions", "I'm sure they'll say we've done it, isn't it? You'd think so. It's John's."),
    ("contractions_caps", "I'M SHOUTING, DON'T YOU SEE? WE'LL GO."),
    ("special_mixed", "Mixed<|endoftext|>special<repo_name>tokens"),
    ("special_adjacent", "<|im_start|><|im_end|><|im_start|>"),
    ("currency", "Prices: $19.99, €5, £3.50, ¥1000, 100%"),
    ("url_email", "email@example.com https://example.org/path?q=1&r=2#frag"),
    ("greek", "Σήμερα είναι μια όμορφη μέρα."),
    ("cyrillic", "Привет, как дела? Всё хорошо."),
    ("arabic", "مرحبا بالعالم"),
    ("devanagari", "नमस्ते दुनिया"),
    ("code_listcomp", "x = [i**2 for i in range(10) if i % 3 == 0]"),
    ("years", "The year 1999 and the number 1000000 and 007."),
    # ---- logits are recorded for the prompts above (the first 32)
    ("empty", ""),
    ("one_space", " "),
    ("one_newline", "\n"),
    ("trailing_newline", "Ends with newline\n"),
    ("combining", "Combining: e\u0301 a\u0308 n\u0303"),
    ("odd_spaces", "Zero\u200bwidth\u00a0nbsp and\u2003em space"),
    ("long_paragraph", LONG_PARAGRAPH),
    ("chat_two_turns", "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n4<|im_end|>\n"),
    ("json", '{"key": [1, 2, 3], "nested": {"a": null}}'),
    ("cases", "ALLCAPS lowercase MiXeD CamelCaseWord snake_case_word kebab-case-word"),
    ("punct_runs", "!!!???...,,,;;;:::"),
    ("fullwidth", "fullwidth：ＡＢＣ１２３\u3000ideographic space"),
    ("other_numbers", "Roman numerals Ⅻ and fractions ½ ¾ and superscript ²"),
    ("crlf", "\r\nWindows\r\nline endings\r\n"),
    ("many_spaces", " " * 20 + "x"),
    ("ideographic_indent", "\u3000\u3000indent"),
    ("space_newline_mix", "a \n b \t\n\n  c"),
    ("apostrophes", "'s 't 're 've 'm 'll 'd 'S 'x ''"),
    ("lone_lt", "< | im_start | > <|im_start <im_start|>"),
    ("invalid_utf8", b"bad \xff byte \xc3 and \xe2\x82"),
    ("overlong_utf8", b"over\xc0\xaflong"),
    ("embedded_nul", b"nul\x00inside"),
]

# Chat renderings recorded with jinja2 (messages, add_generation_prompt).
CHAT_CASES = [
    ([{"role": "user", "content": "Hi there!"}], True),
    ([{"role": "user", "content": "Hi there!"}], False),
    ([{"role": "system", "content": "You are a pirate."}, {"role": "user", "content": "Say hello."}], True),
    ([{"role": "user", "content": "What is 2+2?"}, {"role": "assistant", "content": "4"},
      {"role": "user", "content": "And 3+3?"}], True),
    ([{"role": "user", "content": "  padded \n"}], True),
    ([], True),
]

GREEDY_CHATS = [
    [{"role": "user", "content": "What is the capital of France?"}],
    [{"role": "user", "content": "Write a haiku about the sea."}],
    [{"role": "system", "content": "You answer in one word."}, {"role": "user", "content": "Name a fruit."}],
]


def as_bytes(x):
    return x if isinstance(x, bytes) else x.encode("utf-8")


def prompt_entry(label, raw):
    e = {"label": label}
    try:
        s = raw.decode("utf-8")
        if "\x00" in s:
            raise UnicodeDecodeError("utf-8", raw, 0, 1, "NUL")
        e["text"] = s
    except UnicodeDecodeError:
        e["hex"] = raw.hex()
    return e


def write_variant(reader, path, pre):
    from gguf import GGUFValueType, GGUFWriter

    w = GGUFWriter(path, arch=reader.fields["general.architecture"].contents())
    for name, f in reader.fields.items():
        if name.startswith("GGUF.") or name == "general.architecture":
            continue
        val = f.contents()
        if name == "tokenizer.ggml.pre":
            val = pre
        vt = f.types[0]
        if vt == GGUFValueType.ARRAY:
            w.add_key_value(name, val, vt, sub_type=f.types[-1])
        else:
            w.add_key_value(name, val, vt)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def build_spm_vocab(vocab, n_pieces=3000):
    """A SentencePiece-style vocabulary: <unk>, <s>, </s>, 256 byte tokens, one
    user-defined token, then word pieces taken from the model's own tokens
    (spaces spelled U+2581), scored by their position."""
    tokens = ["<unk>", "<s>", "</s>"] + ["<0x%02X>" % b for b in range(256)] + ["<|user_def|>"]
    types = [2, 3, 3] + [6] * 256 + [4]
    seen = set(tokens)
    i = 17
    while len(tokens) < 260 + n_pieces and i < vocab.n_vocab():
        raw = vocab.detokenize([i], special=False)
        i += 1
        try:
            piece = raw.decode("utf-8")
        except UnicodeDecodeError:
            continue
        if not piece or any(ord(c) < 32 for c in piece):
            continue
        piece = piece.replace(" ", "\u2581")
        if piece in seen:
            continue
        seen.add(piece)
        tokens.append(piece)
        types.append(1)
    scores = [0.0] * 260 + [-float(k) for k in range(len(tokens) - 260)]
    return tokens, scores, types


def write_spm(reader, path, tokens, scores, types):
    from gguf import GGUFValueType, GGUFWriter

    w = GGUFWriter(path, arch=reader.fields["general.architecture"].contents())
    for name, f in reader.fields.items():
        if name.startswith("GGUF.") or name.startswith("tokenizer.") or name == "general.architecture":
            continue
        vt = f.types[0]
        if vt == GGUFValueType.ARRAY:
            w.add_key_value(name, f.contents(), vt, sub_type=f.types[-1])
        else:
            w.add_key_value(name, f.contents(), vt)
    w.add_key_value("tokenizer.ggml.model", "llama", GGUFValueType.STRING)
    w.add_key_value("tokenizer.ggml.tokens", tokens, GGUFValueType.ARRAY, sub_type=GGUFValueType.STRING)
    w.add_key_value("tokenizer.ggml.scores", scores, GGUFValueType.ARRAY, sub_type=GGUFValueType.FLOAT32)
    w.add_key_value("tokenizer.ggml.token_type", types, GGUFValueType.ARRAY, sub_type=GGUFValueType.INT32)
    w.add_key_value("tokenizer.ggml.bos_token_id", 1, GGUFValueType.UINT32)
    w.add_key_value("tokenizer.ggml.eos_token_id", 2, GGUFValueType.UINT32)
    w.add_key_value("tokenizer.ggml.unknown_token_id", 0, GGUFValueType.UINT32)
    w.add_key_value("tokenizer.ggml.add_bos_token", True, GGUFValueType.BOOL)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def last_logits(llama_cpp, m):
    n_vocab = m.n_vocab()
    ptr = llama_cpp.llama_get_logits_ith(m._ctx.ctx, -1)
    return np.ctypeslib.as_array(ctypes.cast(ptr, ctypes.POINTER(ctypes.c_float)), shape=(n_vocab,)).copy()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    import jinja2
    import llama_cpp
    from gguf import GGUFReader
    from llama_cpp import Llama

    reader = GGUFReader(args.model)
    template = reader.fields["tokenizer.chat_template"].contents()

    vocab = Llama(args.model, vocab_only=True, verbose=False)
    m = Llama(args.model, n_ctx=512, n_threads=2, logits_all=False, seed=0, verbose=False)
    n_vocab = m.n_vocab()
    v = llama_cpp.llama_model_get_vocab(vocab._model.model)

    out = {
        "model": os.path.basename(args.model),
        "generator": "llama-cpp-python " + llama_cpp.__version__,
        "n_vocab": n_vocab,
        "eog_ids": [i for i in range(n_vocab) if llama_cpp.llama_vocab_is_eog(v, i)],
        "logit_stride": STRIDE,
        "prompts": [],
    }

    for idx, (label, text) in enumerate(PROMPTS):
        raw = as_bytes(text)
        ids = vocab.tokenize(raw, add_bos=False, special=True)
        e = prompt_entry(label, raw)
        e["ids"] = ids
        e["ids_nospecial"] = vocab.tokenize(raw, add_bos=False, special=False)
        detok = vocab.detokenize(ids, special=True)
        e["detok_hex"] = detok.hex()
        e["roundtrip"] = detok == raw
        if idx < N_LOGIT_PROMPTS and ids:
            assert len(ids) < 500, label
            m.reset()
            m.eval(ids)
            lg = last_logits(llama_cpp, m)
            top = np.argsort(-lg, kind="stable")[:TOP_K]
            e["logits"] = {
                "argmax": int(np.argmax(lg)),
                "top": [[int(i), round(float(lg[i]), 5)] for i in top],
                "strided": [round(float(x), 5) for x in lg[::STRIDE]],
            }
        out["prompts"].append(e)

    # other pre-tokenizers over the same vocabulary
    out["pre_variants"] = {}
    with tempfile.TemporaryDirectory() as td:
        for pre in PRE_VARIANTS:
            path = os.path.join(td, pre + ".gguf")
            write_variant(reader, path, pre)
            vm = Llama(path, vocab_only=True, verbose=False)
            out["pre_variants"][pre] = [vm.tokenize(as_bytes(t), add_bos=False, special=True) for _, t in PROMPTS]
            del vm

        tokens, scores, types = build_spm_vocab(vocab)
        path = os.path.join(td, "spm.gguf")
        write_spm(reader, path, tokens, scores, types)
        sm = Llama(path, vocab_only=True, verbose=False)
        spm_prompts = [t for _, t in PROMPTS] + ["<|user_def|> and <s> inside", "  two leading", "x\u2581y"]
        cases = []
        for t in spm_prompts:
            raw = as_bytes(t)
            ids = sm.tokenize(raw, add_bos=False, special=True)
            e = prompt_entry("", raw)
            del e["label"]
            e["ids"] = ids
            e["ids_nospecial"] = sm.tokenize(raw, add_bos=False, special=False)
            e["ids_bos"] = sm.tokenize(raw, add_bos=True, special=True)
            e["detok_hex"] = sm.detokenize(ids, special=True).hex()
            cases.append(e)
        out["spm"] = {"tokens": tokens, "scores": scores, "types": types, "cases": cases}
        del sm

    env = jinja2.Environment(loader=jinja2.BaseLoader())
    tmpl = env.from_string(template)
    out["chat_renders"] = [
        {"messages": msgs, "add_generation_prompt": gen,
         "rendered": tmpl.render(messages=msgs, add_generation_prompt=gen, bos_token="", eos_token="")}
        for msgs, gen in CHAT_CASES
    ]

    out["greedy"] = []
    for msgs in GREEDY_CHATS:
        text = tmpl.render(messages=msgs, add_generation_prompt=True)
        ids = m.tokenize(text.encode("utf-8"), add_bos=False, special=True)
        m.reset()
        m.eval(ids)
        gen = []
        for _ in range(GREEDY_TOKENS):
            tok = int(np.argmax(last_logits(llama_cpp, m)))
            gen.append(tok)
            if llama_cpp.llama_vocab_is_eog(v, tok):
                break
            m.eval([tok])
        out["greedy"].append({"messages": msgs, "prompt": text, "prompt_ids": ids, "generated": gen,
                              "generated_text": vocab.detokenize(gen, special=True).decode("utf-8", "replace")})

    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    tmp = args.out + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(out, fh, ensure_ascii=False, separators=(",", ":"))
        fh.write("\n")
    os.replace(tmp, args.out)
    print(f"wrote {args.out}: {len(out['prompts'])} prompts, {os.path.getsize(args.out)} bytes", file=sys.stderr)


if __name__ == "__main__":
    main()
