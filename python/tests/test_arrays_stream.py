"""Vectors built from numpy arrays, and streamed generation, on the default
model: a vector rebuilt from its own arrays is the same vector (same file byte
for byte, same generations); shapes that are not the model's are refused with
the library's message; streamed pieces join to `generate`'s text, and a stream
left early costs nothing and breaks nothing."""

import gc
import threading
from pathlib import Path

import numpy as np
import pytest

import kvsteer

from conftest import MODEL, N_NEW, THREADS, cli_run

Q = "What is the capital of France?"
# SmolLM2 answers in Japanese: characters split over byte-level tokens
Q_UTF8 = "Translate 'thank you' into Japanese and Chinese."


def gen(model: kvsteer.Model, q: str = Q, **kw) -> kvsteer.Generation:
    return model.generate(q, chat=True, max_new=N_NEW, threads=THREADS, **kw)


def stream(model: kvsteer.Model, q: str = Q, **kw) -> kvsteer.Stream:
    return model.generate_stream(q, chat=True, max_new=N_NEW, threads=THREADS, **kw)


def test_cache_vector_from_its_arrays(model: kvsteer.Model, vec_files, tmp_path: Path) -> None:
    vec = model.load_vector(vec_files[0])
    k, v = vec.k, vec.v
    again = kvsteer.Vector.from_arrays(model, k=k, v=v, meta=vec.settings)
    assert again.kind == "cache" and again.format == "kvsteer"
    assert np.array_equal(again.k, k) and np.array_equal(again.v, v)
    assert again.metadata == vec.metadata and vec.settings
    f = tmp_path / "again.gguf"
    again.save(f)
    assert f.read_bytes() == Path(vec_files[0]).read_bytes()
    g = gen(model, steer=vec, cv=8)
    assert gen(model, steer=again, cv=8).tokens == g.tokens
    assert gen(model, steer=model.load_vector(f), cv=8).tokens == g.tokens
    assert cli_run("--chat", "-p", Q, "-n", str(N_NEW), "--steer", str(f), "--cv", "8") == g.text
    # the arrays are what steers: doubled values at half the coefficient are
    # the same edit (powers of two scale floats exactly), float64 input
    # included; the opposite direction is another edit
    doubled = kvsteer.Vector.from_arrays(model, k=k.astype(np.float64), v=2.0 * v.astype(np.float64))
    assert doubled.metadata == {}
    assert gen(model, steer=doubled, cv=4).tokens == g.tokens
    assert gen(model, steer=doubled, cv=-4).tokens != g.tokens


def test_act_vector_from_its_arrays(model: kvsteer.Model, vec_files, tmp_path: Path) -> None:
    vec = model.load_vector(vec_files[1])
    again = kvsteer.Vector.from_arrays(model, act=vec.act, meta=vec.settings)
    assert again.kind == "act" and np.array_equal(again.act, vec.act)
    f = tmp_path / "again.gguf"
    again.save(f)
    assert f.read_bytes() == Path(vec_files[1]).read_bytes()
    g = gen(model, act=vec, act_layer=15, act_scale=6)
    assert gen(model, act=model.load_vector(f), act_layer=15, act_scale=6).tokens == g.tokens
    # llama.cpp's format: the same bytes from either set, layer 0 left out
    a, b = tmp_path / "a.cvec.gguf", tmp_path / "b.cvec.gguf"
    vec.save_controlvector(a)
    again.save_controlvector(b)
    assert a.read_bytes() == b.read_bytes()
    cv = model.load_vector(b)
    assert cv.format == "controlvector" and cv.kind == "act"
    assert np.array_equal(cv.act[1:], vec.act[1:]) and not cv.act[0].any()
    assert gen(model, act=cv, act_layer=15, act_scale=6).tokens == g.tokens
    # and back again: a control vector's arrays rebuild its file
    c = tmp_path / "c.cvec.gguf"
    kvsteer.Vector.from_arrays(model, act=cv.act, meta=cv.settings).save_controlvector(c)
    assert c.read_bytes() == b.read_bytes()
    with pytest.raises(kvsteer.KvsError, match="layer 0 cannot be stored"):
        again.save_controlvector(tmp_path / "d.gguf", layers=(0, None))
    assert not (tmp_path / "d.gguf").exists()


def test_arrays_of_another_shape_raise_the_library_message(model: kvsteer.Model) -> None:
    i = model.info
    want = str((i.n_layer, i.n_head_kv, i.head_dim))
    swapped = np.zeros((i.n_layer, i.head_dim, i.n_head_kv), dtype=np.float32)
    with pytest.raises(kvsteer.KvsError) as e:
        kvsteer.Vector.from_arrays(model, k=swapped, v=swapped)
    assert e.value.status == "KVS_E_MISMATCH"
    assert want in str(e.value) and str(swapped.shape) in str(e.value)
    flat = np.zeros((i.n_layer, i.n_head_kv * i.head_dim))
    with pytest.raises(kvsteer.KvsError, match="do not fit this model") as e:
        kvsteer.Vector.from_arrays(model, k=flat, v=flat)
    assert want in str(e.value)
    with pytest.raises(kvsteer.KvsError, match=rf"\({i.n_layer}, {i.n_embd}\)") as e:
        kvsteer.Vector.from_arrays(model, act=np.zeros((i.n_layer - 1, i.n_embd)))
    assert e.value.status == "KVS_E_MISMATCH"
    good = np.zeros((i.n_layer, i.n_head_kv, i.head_dim))
    bad = good.copy()
    bad[2, 1, 3] = np.inf
    with pytest.raises(kvsteer.KvsError, match="value delta of layer 2") as e:
        kvsteer.Vector.from_arrays(model, k=good, v=bad)
    assert e.value.status == "KVS_E_ARG"
    with pytest.raises(ValueError, match="but v has shape"):
        kvsteer.Vector.from_arrays(model, k=good, v=good[1:])
    with pytest.raises(ValueError, match="both k and v"):
        kvsteer.Vector.from_arrays(model, k=good)
    with pytest.raises(TypeError, match="real numbers"):
        kvsteer.Vector.from_arrays(model, act=np.zeros((i.n_layer, i.n_embd), dtype=complex))


@pytest.mark.parametrize("case", ["plain", "cache", "act", "eog", "utf8"])
def test_stream_joins_to_generate(model: kvsteer.Model, vec_files, case: str) -> None:
    kw = {"plain": {}, "cache": dict(steer=model.load_vector(vec_files[0]), cv=8),
          "act": dict(act=model.load_vector(vec_files[1]), act_layer=15, act_scale=6),
          "eog": dict(system="Answer in one word.", max_new=64), "utf8": dict(max_new=24)}[case]
    q = Q_UTF8 if case == "utf8" else Q
    if "max_new" in kw:
        g = model.generate(q, chat=True, threads=THREADS, **kw)
        s = model.generate_stream(q, chat=True, threads=THREADS, **kw)
    else:
        g, s = gen(model, q, **kw), stream(model, q, **kw)
    assert s.stop is None and s.result is None
    pieces = list(s)
    assert "".join(pieces) == g.text and all(pieces)
    assert s.stop == g.stop and s.tokens == g.tokens
    assert s.result is not None and (s.result.text, s.result.tokens, s.result.stop) == (g.text, g.tokens, g.stop)
    assert list(s) == []
    if case == "eog":
        assert g.stop == "eog"
    if case == "utf8":
        def whole(t: int) -> bool:
            try:
                model.token_bytes(t).decode("utf-8")
                return True
            except UnicodeDecodeError:
                return False
        # the case is exercised: some tokens are parts of a character, yet no
        # piece shows a replacement character the text does not have
        assert not all(whole(t) for t in g.tokens)
        assert "\ufffd" not in g.text and not any("\ufffd" in p for p in pieces)
        assert len(pieces) < len(g.tokens)


def test_stream_left_early(model: kvsteer.Model) -> None:
    gc.collect()
    base = threading.active_count()
    ref = gen(model)
    s = model.generate_stream(Q, chat=True, max_new=64, threads=THREADS)
    first = next(s)
    assert ref.text.startswith(first) and threading.active_count() == base + 1
    s.close()
    assert s.stop == "stopped" and s.result is None and list(s) == []
    assert threading.active_count() == base
    # a loop left with break: dropping the stream stops it
    for piece in model.generate_stream(Q, chat=True, max_new=64, threads=THREADS):
        break
    gc.collect()
    assert threading.active_count() == base
    with stream(model) as s2:
        next(s2)
    assert s2.stop == "stopped"
    # the model is as before: the same generation, streamed or not
    assert gen(model).tokens == ref.tokens
    assert "".join(stream(model)) == ref.text == cli_run("--chat", "-p", Q, "-n", str(N_NEW))
    # closing a model closes its streams first
    m2 = kvsteer.Model(MODEL)
    s3 = m2.generate_stream(Q, chat=True, max_new=64, threads=THREADS)
    next(s3)
    m2.close()
    assert s3.stop == "stopped" and threading.active_count() == base


def test_stream_errors(model: kvsteer.Model, vec_files) -> None:
    # bad options raise at once, library errors at the first piece
    with pytest.raises(ValueError, match="system needs chat"):
        model.generate_stream(Q, system="x")
    s = model.generate_stream("word " * 100, max_new=2, n_ctx=32, threads=THREADS)
    with pytest.raises(kvsteer.KvsError, match="context"):
        next(s)
    assert list(s) == [] and s.stop is None
    s = stream(model, steer=model.load_vector(vec_files[0]), layers=(5, 99))
    with pytest.raises(kvsteer.KvsError, match="layer range"):
        list(s)
    assert "".join(stream(model)) == gen(model).text
