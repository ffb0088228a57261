"""kvsteer: small GGUF language models on the CPU, steered through their KV cache.

Python bindings of libkvsteer (include/kvsteer.h).  A session::

    import kvsteer
    m = kvsteer.Model("models/SmolLM2-135M-Instruct.Q4_1.gguf")
    print(m.generate("Why is the sky blue?", chat=True, max_new=64).text)
    vec = m.extract(positive_prompts, negative_prompts)          # lists of str
    print(m.generate("Why is the sky blue?", chat=True, steer=vec, cv=6).text)
    for piece in m.generate_stream("Why is the sky blue?", chat=True, steer=vec, cv=6):
        print(piece, end="", flush=True)                          # text as it is generated
    mine = kvsteer.Vector.from_arrays(m, k=vec.k, v=2 * vec.v)    # numpy arrays both ways

Generation follows `kvsteer run`: the same prompt, options and vector give the
same tokens.  Every library failure raises `KvsError` with the library's
message.
"""

from __future__ import annotations

import codecs
import ctypes
import os
import threading
import weakref
from dataclasses import dataclass
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple, TypeVar, Union

import numpy as np

from . import _lib
from ._lib import KvsError, STATUS_NAMES
from ._version import __version__

__all__ = ["Model", "ModelInfo", "Vector", "CacheSteer", "Generation", "Stream", "KvsError", "STATUS_NAMES",
           "__version__", "kernels"]

PathLike = Union[str, "os.PathLike[str]"]
_L = _lib.lib
_STOP = {0: "none", 1: "eog", 2: "max_new", 3: "context"}
_KINDS = {"cache": 0, "act": 1}
_EXTRACT = "kvsteer.extract."


def _err() -> _lib.kvs_error:
    return _lib.kvs_error()


def _path(p: PathLike) -> bytes:
    return os.fsencode(p)


def _text(s: str, what: str) -> bytes:
    b = s.encode("utf-8")
    if b"\0" in b:
        raise ValueError(f"{what} contains a NUL character")
    return b


def _floats(a: object, name: str) -> np.ndarray:
    """A C-contiguous float32 copy or view of a real-valued array."""
    arr = np.asarray(a)
    if arr.dtype.kind not in "fiu":
        raise TypeError(f"{name}: expected an array of real numbers, got dtype {arr.dtype}")
    return np.ascontiguousarray(arr, dtype=np.float32)


def kernels() -> str:
    """The kernel set in use: "scalar", "avx2", "avx512vnni" or "amx"."""
    return _L.kvs_kernels_name().decode()


_C = TypeVar("_C", bound="_Closing")


class _Closing:
    """Closed by close(), by a with-block's end, or when collected: the library
    memory behind a handle is freed once, at the first of these."""

    def close(self) -> None:  # pragma: no cover - every subclass has its own
        raise NotImplementedError

    def __del__(self) -> None:
        self.close()

    def __enter__(self: _C) -> _C:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True)
class ModelInfo:
    """Hyper-parameters of a loaded model (kvs_model_info)."""
    arch: str
    name: str
    n_layer: int
    n_embd: int
    n_head: int
    n_head_kv: int
    head_dim: int
    n_ff: int
    n_vocab: int
    n_ctx_train: int
    rope_freq_base: float
    norm_eps: float
    bos_id: int
    eos_id: int
    eot_id: int
    add_bos: bool
    tokenizer_hash: int


@dataclass(frozen=True)
class Generation:
    """One generated continuation.

    `text` is what `kvsteer run` prints (without its final newline): the bytes of
    every token but a final end-of-generation one, decoded as UTF-8 (invalid
    bytes replaced).  `tokens` are all generated tokens, `stop` why it ended
    ("eog", "max_new" or "context"), `n_prompt` the prompt's token count
    including the offset token, `seconds` the wall time charged to it.  The
    same from `Stream.result` after a streamed generation."""
    text: str
    tokens: List[int]
    stop: str
    n_prompt: int
    seconds: float


class Vector(_Closing):
    """A steering vector set (kvs_steer): per layer a key and a value delta
    (kind "cache") or a residual-stream delta (kind "act").

    Get one from `Model.extract`, `Vector.load` or numpy arrays
    (`Vector.from_arrays`); read it with `k`, `v`, `act` or `layer`, write it
    with `save` (the kvsteer vector file format, readable by `kvsteer run
    --steer/--act`) or, act kind, `save_controlvector` (llama.cpp's format)."""

    def __init__(self, handle: int, info: ModelInfo):
        self._h: Optional[int] = handle
        self.n_layer = info.n_layer
        self._kv_shape = (info.n_head_kv, info.head_dim)
        self._act_shape = (info.n_embd,)

    @classmethod
    def load(cls, path: PathLike, model: "Model") -> "Vector":
        """Load a vector file, checked against `model` (shapes, tokenizer):
        a file made for another model raises KvsError (KVS_E_MISMATCH)."""
        err = _err()
        h = _L.kvs_steer_load(_path(path), model._handle(), ctypes.byref(err))
        if not h:
            err.raise_()
        return cls(h, model.info)

    @classmethod
    def from_arrays(cls, model: "Model", *, k: Optional[np.ndarray] = None, v: Optional[np.ndarray] = None,
                    act: Optional[np.ndarray] = None, meta: Optional[Mapping[str, str]] = None) -> "Vector":
        """A vector set for `model` from arrays (kvs_steer_from_floats; copied):
        k and v for a cache set, each of shape (n_layer, n_head_kv, head_dim)
        (what `k` and `v` return), or act for an act set, of shape (n_layer,
        n_embd).  Any real dtype; stored as float32.  A shape that is not the
        model's raises KvsError (KVS_E_MISMATCH) with the library's message
        naming both shapes; NaN or infinite values raise KvsError (KVS_E_ARG).
        meta: extraction settings to store, as `set_meta` takes them
        (`meta=other.settings` copies another vector's)."""
        if act is not None:
            if k is not None or v is not None:
                raise ValueError("give k and v (a cache vector) or act (an act vector), not both")
            kind, a, b = "act", _floats(act, "act"), None
        elif k is None or v is None:
            raise ValueError("a cache vector needs both k and v (or give act for an act vector)")
        else:
            kind, a, b = "cache", _floats(k, "k"), _floats(v, "v")
            if a.shape != b.shape:
                raise ValueError(f"k has shape {a.shape} but v has shape {b.shape}")
        shape = (ctypes.c_int * max(a.ndim, 1))(*a.shape)
        fp = ctypes.POINTER(ctypes.c_float)
        err = _err()
        h = _L.kvs_steer_from_floats(model._handle(), _KINDS[kind], shape, a.ndim, a.ctypes.data_as(fp),
                                     None if b is None else b.ctypes.data_as(fp), ctypes.byref(err))
        if not h:
            err.raise_()
        vec = cls(h, model.info)
        for key, value in (meta or {}).items():
            vec.set_meta(key, value)
        return vec

    def _handle(self) -> int:
        if not self._h:
            raise ValueError("kvsteer: this Vector is closed")
        return self._h

    def close(self) -> None:
        """Free the library's copy (also done when the object is collected)."""
        if getattr(self, "_h", None):
            _L.kvs_steer_free(self._h)
            self._h = None


    @property
    def kind(self) -> str:
        """"cache" (K/V deltas) or "act" (residual-stream deltas)."""
        return "act" if _L.kvs_steer_get_kind(self._handle()) == _KINDS["act"] else "cache"

    @property
    def format(self) -> str:
        """The file format it came from and `save` writes: "kvsteer" or
        "controlvector" (llama.cpp's, loaded from such a file)."""
        return "controlvector" if _L.kvs_steer_get_format(self._handle()) == 1 else "kvsteer"

    def layer(self, layer: int, which: str = "v") -> np.ndarray:
        """A copy of one layer's vector: which = "k" or "v" for a cache vector,
        shape (n_head_kv, head_dim); ignored for an act vector, shape (n_embd,).
        A layer a control vector has no direction for reads as zeros (adding
        it changes nothing)."""
        if which not in ("k", "v"):
            raise ValueError(f"which must be 'k' or 'v', got {which!r}")
        if not 0 <= layer < self.n_layer:
            raise IndexError(f"layer {layer} is outside 0-{self.n_layer - 1}")
        p = _L.kvs_steer_vector(self._handle(), layer, 0 if which == "k" else 1)
        shape = self._act_shape if self.kind == "act" else self._kv_shape
        if not p:
            return np.zeros(shape, dtype=np.float32)
        return np.ctypeslib.as_array(p, shape=shape).copy()

    def _all(self, which: str, kind: str) -> np.ndarray:
        if self.kind != kind:
            raise ValueError(f"this is a {self.kind} vector; it has no {which!r} part")
        return np.stack([self.layer(i, which[0] if which in ("k", "v") else "v") for i in range(self.n_layer)])

    @property
    def k(self) -> np.ndarray:
        """Key deltas of a cache vector, shape (n_layer, n_head_kv, head_dim), float32."""
        return self._all("k", "cache")

    @property
    def v(self) -> np.ndarray:
        """Value deltas of a cache vector, shape (n_layer, n_head_kv, head_dim), float32."""
        return self._all("v", "cache")

    @property
    def act(self) -> np.ndarray:
        """Residual deltas of an act vector, shape (n_layer, n_embd), float32."""
        return self._all("act", "act")

    def meta(self, key: str) -> Optional[str]:
        """A metadata string of the file (e.g. "kvsteer.extract.pairs"), or None."""
        r = _L.kvs_steer_meta(self._handle(), _text(key, "key"))
        return None if r is None else r.decode("utf-8", "replace")

    @property
    def metadata(self) -> Dict[str, str]:
        """Every metadata string, by its full key (e.g. "kvsteer.extract.pairs")."""
        h = self._handle()
        return {_L.kvs_steer_meta_key(h, i).decode("utf-8", "replace"):
                _L.kvs_steer_meta_value(h, i).decode("utf-8", "replace") for i in range(_L.kvs_steer_meta_count(h))}

    @property
    def settings(self) -> Dict[str, str]:
        """The extraction settings, by the keys `set_meta` takes ("pairs" for
        "kvsteer.extract.pairs")."""
        return {k[len(_EXTRACT):]: v for k, v in self.metadata.items() if k.startswith(_EXTRACT)}

    def set_meta(self, key: str, value: str) -> None:
        """Attach an extraction setting, stored as "kvsteer.extract.<key>"."""
        if _L.kvs_steer_set_meta(self._handle(), _text(key, "key"), _text(value, "value")):
            raise KvsError(_lib.KVS_E_ARG, f"kvsteer: cannot set metadata {key!r}")

    def save(self, path: PathLike) -> None:
        """Write the vector file in `format` (through a temporary file: never a partial one)."""
        err = _err()
        if _L.kvs_steer_save(self._handle(), _path(path), ctypes.byref(err)):
            err.raise_()

    def save_controlvector(self, path: PathLike, layers: Tuple[int, Optional[int]] = (1, None)) -> None:
        """Write an act vector as a llama.cpp control vector (llama.cpp's
        `--control-vector FILE`; `kvsteer extract --format controlvector`): one
        direction per layer of `layers` (inclusive, None = the last).  Layer 0
        cannot be stored (llama.cpp counts from 1): KvsError."""
        err = _err()
        if _L.kvs_steer_save_controlvector(self._handle(), _path(path), layers[0],
                                           -1 if layers[1] is None else layers[1], ctypes.byref(err)):
            err.raise_()


@dataclass
class CacheSteer:
    """One cache-steering vector with its settings, as `kvsteer run --steer VEC
    --ck X --cv Y --layers A-B`: K += ck*S^k and V += cv*S^v at the last prompt
    position before the offset token, for layers `layers` (inclusive; None as
    the end means the last layer; the default, like the command's, skips layer 0)."""
    vector: Vector
    ck: float = 0.0
    cv: float = 1.0
    layers: Tuple[int, Optional[int]] = (1, None)


Steering = Union[None, Vector, CacheSteer, Sequence[CacheSteer]]


class _StreamState:
    """What a stream's generating thread and its reader share (not the Stream
    itself: the thread must not keep it alive, so that dropping it stops the
    generation)."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.tokens: List[int] = []   # generated, not yet taken by the reader
        self.done = False
        self.cancel = False
        self.result: Optional[Generation] = None
        self.error: Optional[BaseException] = None

    def on_token(self, _req: int, tok: int) -> bool:
        with self.cond:
            self.tokens.append(tok)
            self.cond.notify_all()
            # the library waits until the reader has taken this token, so it is
            # never more than one token ahead and an abandoned stream costs no work
            while self.tokens and not self.cancel:
                self.cond.wait()
            return self.cancel


class Stream(_Closing):
    """The text of one generation as it is produced (`Model.generate_stream`).

    Iterate for the pieces (str, whole UTF-8 characters; a final
    end-of-generation token adds none).  The library generates on a thread of
    its own, at most one token ahead of the loop.  Afterwards `stop` is why
    generation ended ("eog", "max_new", "context") and `result` the
    `Generation`, equal to `Model.generate`'s for the same options.  `close()`
    (or leaving a `with` block, or dropping the stream) before the end stops
    the generation and frees its context: `stop` is then "stopped" and `result`
    None.  `tokens` are the tokens behind the pieces yielded so far."""

    def __init__(self, model: "Model", run: Callable[[Callable[[int, int], bool]], Generation]):
        self._model = model
        self._run = run
        self._st = _StreamState()
        self._thread: Optional[threading.Thread] = None
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._ended = False
        self.tokens: List[int] = []
        self.stop: Optional[str] = None
        self.result: Optional[Generation] = None
        model._streams.add(self)

    def __iter__(self) -> "Stream":
        return self

    def _start(self) -> None:
        st, run = self._st, self._run

        def work() -> None:
            try:
                st.result = run(st.on_token)
            except BaseException as e:  # handed to the reader
                st.error = e
            finally:
                with st.cond:
                    st.done = True
                    st.cond.notify_all()

        self._thread = threading.Thread(target=work, name="kvsteer-stream", daemon=True)
        self._thread.start()

    def __next__(self) -> str:
        if self._ended:
            raise StopIteration
        if self._thread is None:
            self._start()
        st, m = self._st, self._model
        while True:
            with st.cond:
                while not st.tokens and not st.done:
                    st.cond.wait()
                toks, st.tokens = st.tokens, []
                done = st.done
                st.cond.notify_all()
            self.tokens += toks
            # an end-of-generation token always ends the generation, and
            # `generate` leaves the final one out of the text
            piece = "".join(self._decoder.decode(m.token_bytes(t)) for t in toks if not m.is_eog(t))
            if done:
                piece += self._decoder.decode(b"", True)
                self._end()
                if st.error is not None:
                    raise st.error
                assert st.result is not None
                self.result, self.stop = st.result, st.result.stop
            if piece:
                return piece
            if done:
                raise StopIteration

    def _end(self) -> None:
        if self._thread is not None:
            self._thread.join()
        self._ended = True
        self._model._streams.discard(self)

    def close(self) -> None:
        """Stop the generation (if it has not ended) and free its context."""
        if self._ended:
            return
        with self._st.cond:
            self._st.cancel = True
            self._st.cond.notify_all()
        self._end()
        self.stop = "stopped"

    def __del__(self) -> None:
        if getattr(self, "_st", None) is not None:  # not when __init__ failed
            self.close()


class Model(_Closing):
    """A GGUF model loaded by libkvsteer (memory-mapped, weights stay quantized)."""

    def __init__(self, path: PathLike):
        err = _err()
        self.path = os.fspath(path)
        self._streams: "weakref.WeakSet[Stream]" = weakref.WeakSet()
        self._h: Optional[int] = _L.kvs_model_load(_path(path), ctypes.byref(err))
        if not self._h:
            err.raise_()
        mi = _lib.kvs_model_info()
        _L.kvs_model_get_info(self._h, ctypes.byref(mi))
        vals = {f: getattr(mi, f) for f, _ in _lib.kvs_model_info._fields_}
        vals["arch"] = (mi.arch or b"").decode("utf-8", "replace")
        vals["name"] = (mi.name or b"").decode("utf-8", "replace")
        vals["add_bos"] = bool(mi.add_bos)
        self.info = ModelInfo(**vals)

    def _handle(self) -> int:
        if not self._h:
            raise ValueError("kvsteer: this Model is closed")
        return self._h

    def close(self) -> None:
        """Unmap the model, after closing its unfinished streams.  Vectors
        loaded for it stay usable."""
        for st in list(getattr(self, "_streams", ())):
            st.close()
        if getattr(self, "_h", None):
            _L.kvs_model_free(self._h)
            self._h = None


    # ------------------------------------------------------------ tokens

    def tokenize(self, text: str, *, add_bos: Optional[bool] = None, special: bool = False) -> List[int]:
        """Token ids of `text`.  add_bos: None = the model's default.  special:
        recognise special-token strings such as "<|im_start|>" (as `kvsteer
        tokenize` does by default; `--no-special` is special=False)."""
        b = _text(text, "text")
        bos = -1 if add_bos is None else int(bool(add_bos))
        err = _err()
        n = ctypes.c_int(0)
        p = _L.kvs_tokenize_alloc(self._handle(), b, len(b), bos, int(special), 0, ctypes.byref(n), ctypes.byref(err))
        if not p:
            err.raise_()
        try:
            return list(ctypes.cast(p, ctypes.POINTER(_lib.kvs_token))[:n.value])
        finally:
            _lib.free(p)

    def token_bytes(self, token: int) -> bytes:
        """The bytes of one token (special tokens render as their text)."""
        cap = 64
        while True:
            buf = ctypes.create_string_buffer(cap)
            n = _L.kvs_token_to_bytes(self._handle(), token, buf, cap)
            if n < 0:
                raise KvsError(_lib.KVS_E_ARG, f"kvsteer: token id {token} is outside 0-{self.info.n_vocab - 1}")
            if n <= cap:
                return buf.raw[:n]
            cap = n

    def detokenize(self, tokens: Sequence[int]) -> str:
        """The text of a token sequence (bytes joined, decoded as UTF-8 with
        invalid bytes replaced)."""
        ids = list(tokens)
        arr = (_lib.kvs_token * len(ids))(*ids)
        n = ctypes.c_size_t(0)
        err = _err()
        p = _L.kvs_detokenize(self._handle(), arr, len(ids), ctypes.byref(n), ctypes.byref(err))
        if not p:
            err.raise_()
        try:
            return ctypes.string_at(p, n.value).decode("utf-8", "replace")
        finally:
            _lib.free(p)

    def is_eog(self, token: int) -> bool:
        """True for end-of-generation tokens (EOS, end-of-turn)."""
        return bool(_L.kvs_token_is_eog(self._handle(), token))

    def chat(self, user: str, *, system: Optional[str] = None, template: Optional[str] = None) -> str:
        """`user` as the user turn of the model's chat template, with the
        generation prompt (what `kvsteer run --chat [--system S]` generates from).
        template: a known name ("chatml", "llama3", "phi3", "gemma") when the
        file's template is not recognised."""
        msgs = [("system", system)] if system is not None else []
        msgs.append(("user", user))
        arr = (_lib.kvs_chat_msg * len(msgs))(*[(r.encode(), _text(c, r)) for r, c in msgs])
        err = _err()
        p = _L.kvs_chat_render(self._handle(), arr, len(msgs), 1, None if template is None else template.encode(),
                               ctypes.byref(err))
        if not p:
            err.raise_()
        try:
            return ctypes.string_at(p).decode("utf-8")
        finally:
            _lib.free(p)

    # ------------------------------------------------------------ steering vectors

    def load_vector(self, path: PathLike) -> Vector:
        """`Vector.load(path, self)`."""
        return Vector.load(path, self)

    def extract(self, positive: Sequence[str], negative: Sequence[str], *, kind: str = "cache",
                position: int = 0, threads: int = 0, batch: int = 4,
                progress: Optional[Callable[[int, int], None]] = None) -> Vector:
        """Mean-of-differences steering vectors from contrastive prompt pairs
        (kvs_steer_extract): positive[i] and negative[i] are rendered prompt texts
        (special tokens allowed, e.g. the output of `chat` plus an answer); at
        the extraction position (0 = last token, k = k-th from last) the cached
        keys and values (kind "cache") or the residual stream after every layer
        (kind "act") are read and averaged over positive minus negative.
        Deterministic: the same texts give bit-identical vectors, equal to
        `kvsteer extract` on the same pairs (`kvsteer pairs --dump` shows them).
        progress(done, total) is called after each batch of pairs."""
        if kind not in _KINDS:
            raise ValueError(f"kind must be 'cache' or 'act', got {kind!r}")
        if isinstance(positive, str) or isinstance(negative, str):
            raise TypeError("positive and negative are lists of prompt texts, not strings")
        if len(positive) != len(negative):
            raise ValueError(f"{len(positive)} positive prompts but {len(negative)} negative ones")
        n = len(positive)
        pos = (ctypes.c_char_p * max(n, 1))(*[_text(t, f"positive[{i}]") for i, t in enumerate(positive)])
        neg = (ctypes.c_char_p * max(n, 1))(*[_text(t, f"negative[{i}]") for i, t in enumerate(negative)])
        raised: List[BaseException] = []

        def on_progress(done: int, total: int, _user: Optional[int]) -> None:
            if progress is not None and not raised:
                try:
                    progress(done, total)
                except BaseException as e:  # reported after the call: C cannot unwind Python
                    raised.append(e)

        cb = _lib.PROGRESS(on_progress)
        p = _lib.kvs_extract_params(_KINDS[kind], position, threads, batch, cb, None)
        err = _err()
        h = _L.kvs_steer_extract(self._handle(), pos, neg, n, ctypes.byref(p), ctypes.byref(err))
        if raised:
            if h:
                _L.kvs_steer_free(h)
            raise raised[0]
        if not h:
            err.raise_()
        return Vector(h, self.info)

    # ------------------------------------------------------------ generation

    def generate(self, prompt: str, *, chat: bool = False, system: Optional[str] = None,
                 template: Optional[str] = None, max_new: int = 256, temperature: float = 0.0, top_k: int = 0,
                 top_p: float = 1.0, seed: int = 0, repeat_penalty: float = 1.0, repeat_last_n: int = 64,
                 min_p: float = 0.0, steer: Steering = None, ck: float = 0.0, cv: float = 1.0,
                 layers: Tuple[int, Optional[int]] = (1, None), act: Optional[Vector] = None,
                 act_layer: Optional[int] = None, act_scale: float = 1.0, offset: Optional[str] = None,
                 n_ctx: int = 0, threads: int = 0, kv_f16: bool = False) -> Generation:
        """Generate a continuation of `prompt`, as `kvsteer run -p PROMPT` does
        (the command's flag in brackets).

        chat [--chat]: render the prompt as the user turn of the chat template,
        with `system` [--system] and `template` [--chat-template].  max_new [-n];
        temperature [--temp] (0 = greedy), top_k [--top-k], top_p [--top-p],
        seed [--seed], repeat_penalty [--repeat-penalty] (1 = off; greedy too)
        over the last repeat_last_n [--repeat-last-n] tokens (0 = off, -1 =
        all), min_p [--min-p] (0 = off).  steer [--steer]: a cache Vector (with ck [--ck], cv
        [--cv], layers [--layers], inclusive, None = last), a CacheSteer or a
        list of them.  act [--act]: an act Vector, added after act_layer
        [--act-layer] times act_scale [--act-scale].  offset [--offset]: the
        one-token text fed after the cache edit (None = "\\n" with steer, none
        otherwise; "" = none).  n_ctx [--ctx], threads [-t] (0 = all cores),
        kv_f16 [--kv-f16]."""
        return self.generate_batch([prompt], chat=chat, system=system, template=template, max_new=max_new,
                                   temperature=temperature, top_k=top_k, top_p=top_p, seed=seed,
                                   repeat_penalty=repeat_penalty, repeat_last_n=repeat_last_n, min_p=min_p,
                                   steer=steer, ck=ck,
                                   cv=cv, layers=layers, act=act, act_layer=act_layer, act_scale=act_scale,
                                   offset=offset, n_ctx=n_ctx, threads=threads, kv_f16=kv_f16)[0]

    def generate_stream(self, prompt: str, *, chat: bool = False, system: Optional[str] = None,
                        template: Optional[str] = None, max_new: int = 256, temperature: float = 0.0,
                        top_k: int = 0, top_p: float = 1.0, seed: int = 0, repeat_penalty: float = 1.0,
                        repeat_last_n: int = 64, min_p: float = 0.0, steer: Steering = None,
                        ck: float = 0.0, cv: float = 1.0, layers: Tuple[int, Optional[int]] = (1, None),
                        act: Optional[Vector] = None, act_layer: Optional[int] = None, act_scale: float = 1.0,
                        offset: Optional[str] = None, n_ctx: int = 0, threads: int = 0,
                        kv_f16: bool = False) -> "Stream":
        """`generate` as an iterator over text pieces, each yielded as soon as
        its tokens are generated: `for piece in m.generate_stream(q, chat=True):
        print(piece, end="", flush=True)`.  Options as in `generate`; the pieces
        joined are its `text` for the same options.  A piece holds whole UTF-8
        characters only (a character split over tokens waits for its last
        byte).  After the loop, `stop` and `result` (a Generation) say how it
        ended; see `Stream`.  Bad options raise here, library errors from the
        first piece on."""
        toks, n_hold, steers = self._prepare([prompt], chat, system, template, max_new, steer, ck, cv, layers,
                                             act, act_layer, offset)
        sp = self._sampler_params(temperature, top_k, top_p, seed, repeat_penalty, repeat_last_n, min_p)

        def run(on_token: Callable[[int, int], bool]) -> Generation:
            return self._run(toks, n_hold, steers, act, act_layer, act_scale, sp, max_new, n_ctx, threads,
                             kv_f16, on_token)[0]

        return Stream(self, run)

    def generate_batch(self, prompts: Sequence[str], *, chat: bool = False, system: Optional[str] = None,
                       template: Optional[str] = None, max_new: int = 256, temperature: float = 0.0,
                       top_k: int = 0, top_p: float = 1.0, seed: int = 0, repeat_penalty: float = 1.0,
                       repeat_last_n: int = 64, min_p: float = 0.0, steer: Steering = None,
                       ck: float = 0.0, cv: float = 1.0, layers: Tuple[int, Optional[int]] = (1, None),
                       act: Optional[Vector] = None, act_layer: Optional[int] = None, act_scale: float = 1.0,
                       offset: Optional[str] = None, n_ctx: int = 0, threads: int = 0,
                       kv_f16: bool = False) -> List[Generation]:
        """Generate a continuation of every prompt together (one cache sequence
        each, decoded in shared batches; kvs_generate).  Options as in
        `generate`; they apply to every prompt, and each prompt gets its own
        sampler seeded with `seed`, so each result equals `generate` on that
        prompt alone."""
        if isinstance(prompts, str):
            raise TypeError("prompts is a list of strings; use generate() for one prompt")
        if not prompts:
            return []
        toks, n_hold, steers = self._prepare(prompts, chat, system, template, max_new, steer, ck, cv, layers,
                                             act, act_layer, offset)
        sp = self._sampler_params(temperature, top_k, top_p, seed, repeat_penalty, repeat_last_n, min_p)
        return self._run(toks, n_hold, steers, act, act_layer, act_scale, sp, max_new, n_ctx, threads, kv_f16)

    @staticmethod
    def _sampler_params(temperature: float, top_k: int, top_p: float, seed: int, repeat_penalty: float,
                        repeat_last_n: int, min_p: float) -> _lib.kvs_sampler_params:
        """The sampler settings, checked (the CLI's rules for the same flags)."""
        if not repeat_penalty > 0:
            raise ValueError(f"repeat_penalty must be greater than 0 (1 is off), got {repeat_penalty}")
        if repeat_last_n < -1:
            raise ValueError(f"repeat_last_n must be -1 (all), 0 (off) or more, got {repeat_last_n}")
        if not 0 <= min_p <= 1:
            raise ValueError(f"min_p must be in [0, 1], got {min_p}")
        return _lib.kvs_sampler_params(temperature, top_k, top_p, seed, repeat_penalty, repeat_last_n, min_p)

    def _prepare(self, prompts: Sequence[str], chat: bool, system: Optional[str], template: Optional[str],
                 max_new: int, steer: Steering, ck: float, cv: float, layers: Tuple[int, Optional[int]],
                 act: Optional[Vector], act_layer: Optional[int],
                 offset: Optional[str]) -> Tuple[List[List[int]], int, List[CacheSteer]]:
        """Checks the options and tokenizes: (prompt tokens with the offset
        token, how many tokens are held back for after the cache edit, cache steers)."""
        if system is not None and not chat:
            raise ValueError("system needs chat=True")
        if max_new < 0:
            raise ValueError(f"max_new must be 0 or more, got {max_new}")
        steers = self._cache_steers(steer, ck, cv, layers)
        if act is not None and act_layer is None:
            raise ValueError("act needs act_layer")
        if act is None and act_layer is not None:
            raise ValueError("act_layer needs act")
        if act is not None and act.kind != "act":
            raise ValueError("act: this vector holds cache vectors; pass it as steer")
        if offset is None:
            offset = "\n" if steers else ""
        off: List[int] = []
        if offset:
            off = self.tokenize(offset, add_bos=False, special=False)
            if len(off) != 1:
                raise ValueError(f"offset {offset!r} is {len(off)} tokens; it must be exactly one")
        toks = []
        for p in prompts:
            text = self.chat(p, system=system, template=template) if chat else p
            # chat text holds the template's special tokens; a plain prompt is literal
            t = self.tokenize(text, special=chat) + off
            if not t:
                raise ValueError("the prompt is empty after tokenization")
            toks.append(t)
        return toks, len(off), steers

    def _run(self, toks: List[List[int]], n_hold: int, steers: List[CacheSteer], act: Optional[Vector],
             act_layer: Optional[int], act_scale: float, sp: _lib.kvs_sampler_params, max_new: int, n_ctx: int,
             threads: int, kv_f16: bool,
             on_token: Optional[Callable[[int, int], bool]] = None) -> List[Generation]:
        """One kvs_generate call over prepared requests in a context of its own.
        on_token(request, token) sees each token as it is generated; True stops
        that request."""
        n = len(toks)
        cp = _L.kvs_ctx_default_params()
        cp.n_ctx, cp.n_seq, cp.n_threads, cp.kv_f16 = n_ctx, n, threads, int(kv_f16)
        err = _err()
        ctx = _L.kvs_ctx_new(self._handle(), ctypes.byref(cp), ctypes.byref(err))
        if not ctx:
            err.raise_()
        samplers: List[int] = []
        raised: List[BaseException] = []
        try:
            params = [_lib.kvs_steer_params(s.ck, s.cv, s.layers[0], -1 if s.layers[1] is None else s.layers[1])
                      for s in steers]

            def on_prefilled(c: int, seq: int, last_pos: int, _user: Optional[int],
                             e: "ctypes._Pointer[_lib.kvs_error]") -> int:
                try:
                    for s, p in zip(steers, params):
                        rc = _L.kvs_steer_apply_cache(c, seq, last_pos, s.vector._handle(), ctypes.byref(p), e)
                        if rc:
                            return rc
                    return 0
                except Exception as ex:  # C cannot unwind Python: report it as the library's error
                    e.contents.code = _lib.KVS_E_ARG
                    e.contents.msg = str(ex).encode("utf-8", "replace")[:511]
                    return _lib.KVS_E_ARG

            def token_cb(req: int, tok: int, _user: Optional[int]) -> int:
                try:
                    return 1 if on_token is not None and on_token(req, tok) else 0
                except BaseException as ex:  # stop that request; raised after the call
                    raised.append(ex)
                    return 1

            hook = _lib.ON_PREFILLED(on_prefilled)
            tok_hook = _lib.ON_TOKEN(token_cb) if on_token is not None else _lib.ON_TOKEN()  # NULL: none
            reqs = (_lib.kvs_gen_request * n)()
            bufs = []
            for i, t in enumerate(toks):
                s = _L.kvs_sampler_new(ctypes.byref(sp), ctypes.byref(err))
                if not s:
                    err.raise_()
                samplers.append(s)
                prompt_arr = (_lib.kvs_token * len(t))(*t)
                out = (_lib.kvs_token * max(max_new, 1))()
                bufs.append((prompt_arr, out))
                r = reqs[i]
                r.prompt, r.n_prompt, r.n_hold, r.max_new = prompt_arr, len(t), n_hold, max_new
                r.sampler, r.out = s, out
                if steers:
                    r.on_prefilled = hook
            if act is not None:
                if _L.kvs_steer_apply_act(ctx, -1, act._handle(), act_layer, act_scale, ctypes.byref(err)):
                    err.raise_()
            if _L.kvs_generate(ctx, reqs, n, 0, tok_hook, None, ctypes.byref(err)):
                err.raise_()
            if raised:
                raise raised[0]
            results = []
            for i in range(n):
                r = reqs[i]
                out = list(bufs[i][1][:r.n_out])
                shown = out[:-1] if out and r.stop == 1 and self.is_eog(out[-1]) else out
                results.append(Generation(self.detokenize(shown), out, _STOP.get(r.stop, str(r.stop)),
                                          r.n_prompt, r.seconds))
            return results
        finally:
            for s in samplers:
                _L.kvs_sampler_free(s)
            _L.kvs_ctx_free(ctx)

    def _cache_steers(self, steer: Steering, ck: float, cv: float,
                      layers: Tuple[int, Optional[int]]) -> List[CacheSteer]:
        if steer is None:
            return []
        if isinstance(steer, Vector):
            steers = [CacheSteer(steer, ck, cv, layers)]
        elif isinstance(steer, CacheSteer):
            steers = [steer]
        else:
            steers = list(steer)
        for s in steers:
            if not isinstance(s, CacheSteer):
                raise TypeError(f"steer: expected a Vector or CacheSteer, got {type(s).__name__}")
            if s.vector.kind != "cache":
                raise ValueError("steer: this vector holds activation vectors; pass it as act")
        return steers
