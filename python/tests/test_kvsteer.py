"""The Python package against the kvsteer command on the default model: the
same prompt, settings and vectors must give the same tokens and text, and
vectors extracted from Python lists must equal the command's bit for bit."""

import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

import kvsteer
from kvsteer import _lib

from conftest import MODEL, N_NEW, N_PAIRS, SOURCE, THREADS, cli, cli_run

Q = "What is the capital of France?"
QS = [Q, "Why do leaves change colour in autumn?", "Name three prime numbers."]
N = str(N_NEW)


def test_version_is_the_library_and_command_version() -> None:
    assert kvsteer.__version__ == _lib.lib.kvs_version().decode()
    assert cli("--version").split() == ["kvsteer", kvsteer.__version__]


def test_the_installed_package_is_tested() -> None:
    # tests/python.sh installs with pip into a scratch venv; the source tree must not shadow it
    assert Path(kvsteer.__file__).resolve().parents[1] != (SOURCE / "python").resolve() or \
        os.environ.get("KVS_ALLOW_SOURCE_TREE")


def test_struct_layouts_match_the_header(tmp_path: Path) -> None:
    """Compile a C program printing sizeof/offsetof of every mirrored struct."""
    lines = ["#include <stddef.h>", "#include <stdio.h>", '#include "kvsteer.h"', "int main(void) {"]
    for st in _lib.STRUCTS:
        name = st.__name__
        lines.append(f'printf("{name} %zu\\n", sizeof({name}));')
        for f, _ in st._fields_:
            lines.append(f'printf("{name}.{f} %zu\\n", offsetof({name}, {f}));')
    lines.append("return 0; }")
    (tmp_path / "layout.c").write_text("\n".join(lines))
    subprocess.run(["cc", "-std=c11", "-I", str(SOURCE / "include"), str(tmp_path / "layout.c"), "-o",
                    str(tmp_path / "layout")], check=True)
    c = subprocess.run([str(tmp_path / "layout")], capture_output=True, text=True, check=True).stdout.split("\n")
    py = []
    for st in _lib.STRUCTS:
        py.append(f"{st.__name__} {__import__('ctypes').sizeof(st)}")
        py += [f"{st.__name__}.{f} {getattr(st, f).offset}" for f, _ in st._fields_]
    assert c[:-1] == py


def test_info_matches_vector_shapes(model: kvsteer.Model, vec_files) -> None:
    i = model.info
    assert i.n_layer > 0 and i.n_head_kv * i.head_dim > 0 and i.n_vocab > 0
    cache = model.load_vector(vec_files[0])
    assert cache.k.shape == (i.n_layer, i.n_head_kv, i.head_dim) and cache.k.dtype == np.float32
    assert model.load_vector(vec_files[1]).act.shape == (i.n_layer, i.n_embd)


@pytest.mark.parametrize("text", ["Hello <|im_start|> world", "naïve café, 3.14 + 2 = 5.14!\n\ttabs"])
def test_tokenize_matches_cli(model: kvsteer.Model, text: str) -> None:
    ids = lambda s: [int(x) for x in s.split()]
    assert model.tokenize(text, special=True) == ids(cli("tokenize", "-m", MODEL, text))
    assert model.tokenize(text) == ids(cli("tokenize", "-m", MODEL, "--no-special", text))
    assert model.tokenize(text, add_bos=True, special=True) == ids(cli("tokenize", "-m", MODEL, "--bos", text))
    assert model.detokenize(model.tokenize(text, add_bos=False)) == text


def test_token_helpers(model: kvsteer.Model) -> None:
    assert model.is_eog(model.info.eos_id)
    assert not model.is_eog(model.tokenize("Hello", add_bos=False)[0])
    assert model.token_bytes(model.tokenize("Hello", add_bos=False)[0]) == b"Hello"


def test_greedy_matches_cli(model: kvsteer.Model) -> None:
    g = model.generate(Q, chat=True, max_new=int(N), threads=THREADS)
    assert g.text == cli_run("--chat", "-p", Q, "-n", N)
    assert len(g.tokens) == int(N) and g.stop == "max_new"
    # a plain (non-chat) prompt, with a system message and no chat is refused
    assert model.generate("The capital of France is", max_new=8, threads=THREADS).text == \
        cli_run("-p", "The capital of France is", "-n", "8")
    with pytest.raises(ValueError, match="system needs chat"):
        model.generate(Q, system="x")


def test_system_and_stop_at_end_of_turn(model: kvsteer.Model) -> None:
    s = "Answer in one word."
    g = model.generate(Q, chat=True, system=s, max_new=64, threads=THREADS)
    assert g.text == cli_run("--chat", "--system", s, "-p", Q, "-n", "64")
    assert g.stop == "eog" and model.is_eog(g.tokens[-1])


def test_sampling_matches_cli(model: kvsteer.Model) -> None:
    kw = dict(temperature=0.9, top_k=40, top_p=0.95, seed=7)
    g = model.generate(Q, chat=True, max_new=int(N), threads=THREADS, **kw)
    assert g.text == cli_run("--chat", "-p", Q, "-n", N, "--temp", "0.9", "--top-k", "40", "--top-p", "0.95",
                             "--seed", "7")
    other = model.generate(Q, chat=True, max_new=int(N), threads=THREADS, **{**kw, "seed": 8})
    greedy = model.generate(Q, chat=True, max_new=int(N), threads=THREADS)
    assert g.tokens != other.tokens or g.tokens != greedy.tokens


def test_penalty_and_min_p_match_cli(model: kvsteer.Model) -> None:
    kw = dict(repeat_penalty=1.3, repeat_last_n=16)
    g = model.generate(Q, chat=True, max_new=int(N), threads=THREADS, **kw)
    assert g.text == cli_run("--chat", "-p", Q, "-n", N, "--repeat-penalty", "1.3", "--repeat-last-n", "16")
    s = model.generate(Q, chat=True, max_new=int(N), threads=THREADS, temperature=0.9, seed=7, min_p=0.1, **kw)
    assert s.text == cli_run("--chat", "-p", Q, "-n", N, "--repeat-penalty", "1.3", "--repeat-last-n", "16",
                             "--temp", "0.9", "--seed", "7", "--min-p", "0.1")
    for bad in (dict(repeat_penalty=0.0), dict(repeat_last_n=-2), dict(min_p=1.5)):
        with pytest.raises(ValueError, match=next(iter(bad))):
            model.generate(Q, max_new=1, **bad)


def test_cache_steering_matches_cli(model: kvsteer.Model, vec_files) -> None:
    vec = model.load_vector(vec_files[0])
    g = model.generate(Q, chat=True, max_new=int(N), threads=THREADS, steer=vec, cv=8)
    assert g.text == cli_run("--chat", "-p", Q, "-n", N, "--steer", vec_files[0], "--cv", "8")
    # the edit took effect: the offset token alone does not give this text
    assert g.text != model.generate(Q, chat=True, max_new=int(N), threads=THREADS, offset="\n").text
    # two vectors with keys and a layer range
    both = [kvsteer.CacheSteer(vec, ck=0.5, cv=4, layers=(5, 20)), kvsteer.CacheSteer(vec, cv=2)]
    g2 = model.generate(Q, chat=True, max_new=int(N), threads=THREADS, steer=both)
    assert g2.text == cli_run("--chat", "-p", Q, "-n", N, "--steer", vec_files[0], "--ck", "0.5", "--cv", "4",
                              "--layers", "5-20", "--steer", vec_files[0], "--cv", "2")


def test_activation_steering_matches_cli(model: kvsteer.Model, vec_files) -> None:
    act = model.load_vector(vec_files[1])
    g = model.generate(Q, chat=True, max_new=int(N), threads=THREADS, act=act, act_layer=15, act_scale=6)
    assert g.text == cli_run("--chat", "-p", Q, "-n", N, "--act", vec_files[1], "--act-layer", "15",
                             "--act-scale", "6")
    assert g.text != model.generate(Q, chat=True, max_new=int(N), threads=THREADS).text


def test_batch_matches_cli_per_prompt(model: kvsteer.Model, vec_files) -> None:
    vec = model.load_vector(vec_files[0])
    gs = model.generate_batch(QS, chat=True, max_new=int(N), threads=THREADS, steer=vec, cv=8)
    assert [g.text for g in gs] == [cli_run("--chat", "-p", q, "-n", N, "--steer", vec_files[0], "--cv", "8")
                                    for q in QS]
    assert model.generate_batch([]) == []


@pytest.mark.parametrize("kind", ["cache", "act"])
def test_extract_from_lists_equals_cli(model: kvsteer.Model, vec_files, dumped_pairs, kind: str,
                                       tmp_path: Path) -> None:
    pos, neg = dumped_pairs
    seen = []
    v = model.extract(pos, neg, kind=kind, threads=THREADS, batch=2, progress=lambda d, t: seen.append((d, t)))
    ref = model.load_vector(vec_files[0 if kind == "cache" else 1])
    assert v.kind == ref.kind == kind
    parts = ["k", "v"] if kind == "cache" else ["act"]
    for part in parts:
        assert np.array_equal(getattr(v, part), getattr(ref, part)), part
    assert seen[-1] == (N_PAIRS, N_PAIRS)
    # written by Python, read back, and used by the command
    v.set_meta("pairs", str(N_PAIRS))
    f = tmp_path / "py.gguf"
    v.save(f)
    back = kvsteer.Vector.load(f, model)
    assert back.meta("kvsteer.extract.pairs") == str(N_PAIRS)
    for part in parts:
        assert np.array_equal(getattr(back, part), getattr(v, part))
    if kind == "cache":
        assert cli_run("--chat", "-p", Q, "-n", "8", "--steer", str(f), "--cv", "8") == \
            model.generate(Q, chat=True, max_new=8, threads=THREADS, steer=back, cv=8).text


def test_extract_position_and_layer_access(model: kvsteer.Model, vec_files, dumped_pairs) -> None:
    pos, neg = dumped_pairs
    last = model.load_vector(vec_files[0])
    pen = model.extract(pos, neg, threads=THREADS, position=1)
    assert not np.array_equal(last.v, pen.v)
    assert np.array_equal(last.layer(3, "k"), last.k[3])
    with pytest.raises(ValueError, match="cache vector"):
        last.act


def test_library_errors_raise_with_its_message(model: kvsteer.Model, tmp_path: Path, vec_files) -> None:
    with pytest.raises(kvsteer.KvsError, match="nope.gguf") as e:
        kvsteer.Model(tmp_path / "nope.gguf")
    assert e.value.code < 0 and e.value.status == "KVS_E_IO"
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF" + b"\0" * 16)
    with pytest.raises(kvsteer.KvsError, match="bad.gguf"):
        kvsteer.Model(bad)
    with pytest.raises(kvsteer.KvsError, match="bad.gguf"):
        model.load_vector(bad)
    with pytest.raises(kvsteer.KvsError, match="no pairs"):
        model.extract([], [])
    vec = model.load_vector(vec_files[0])
    with pytest.raises(kvsteer.KvsError, match="layer range"):
        model.generate(Q, chat=True, max_new=2, steer=vec, layers=(5, 99))
    with pytest.raises(kvsteer.KvsError, match="activation layer"):
        model.generate(Q, chat=True, max_new=2, act=model.load_vector(vec_files[1]), act_layer=99)
    with pytest.raises(kvsteer.KvsError, match="context"):
        model.generate("word " * 100, max_new=2, n_ctx=32)
    with pytest.raises(ValueError, match="pass it as act"):
        model.generate(Q, steer=model.load_vector(vec_files[1]))
    with pytest.raises(ValueError, match="exactly one"):
        model.generate(Q, steer=vec, offset="two words")
    with pytest.raises(kvsteer.KvsError, match="outside"):
        model.token_bytes(-1)
    with pytest.raises(kvsteer.KvsError, match="token 1 of 2 is not an id"):
        model.detokenize([1, model.info.n_vocab])
    assert model.detokenize([]) == ""
    with pytest.raises(kvsteer.KvsError):
        model.chat(Q, template="no-such-template")
    with pytest.raises(kvsteer.KvsError, match="cannot"):
        vec.save(tmp_path / "missing-dir" / "v.gguf")
    assert not (tmp_path / "missing-dir").exists()
