"""Loading libkvsteer and the ctypes mirror of include/kvsteer.h.

The structures below must match the header field for field; the test suite
compiles a C program that prints their sizes and offsets and compares.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import shutil
import subprocess
from ctypes import (CFUNCTYPE, POINTER, Structure, c_char, c_char_p, c_double, c_float, c_int, c_int8,
                    c_int32, c_size_t, c_uint64, c_void_p)
from typing import List, Optional

from ._version import __version__

LIB_ENV = "KVSTEER_LIB"


class KvsError(Exception):
    """An error reported by libkvsteer: `code` is the library's status (a
    negative KVS_E_* value, see `STATUS_NAMES`) and the message is the
    library's own one-line message."""

    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code
        self.message = message

    @property
    def status(self) -> str:
        """The status name, e.g. "KVS_E_IO"."""
        return STATUS_NAMES.get(self.code, str(self.code))


STATUS_NAMES = {0: "KVS_OK", -1: "KVS_E_IO", -2: "KVS_E_FORMAT", -3: "KVS_E_UNSUPPORTED", -4: "KVS_E_ARG",
                -5: "KVS_E_NOMEM", -6: "KVS_E_RANGE", -7: "KVS_E_MISMATCH"}
KVS_E_ARG = -4

kvs_token = c_int32


class kvs_error(Structure):
    _fields_ = [("code", c_int), ("msg", c_char * 512)]

    def raise_(self) -> None:
        raise KvsError(self.code or KVS_E_ARG, self.msg.decode("utf-8", "replace") or "kvsteer: unknown error")


class kvs_model_info(Structure):
    _fields_ = [("arch", c_char_p), ("name", c_char_p), ("n_layer", c_int), ("n_embd", c_int), ("n_head", c_int),
                ("n_head_kv", c_int), ("head_dim", c_int), ("n_ff", c_int), ("n_vocab", c_int),
                ("n_ctx_train", c_int), ("rope_freq_base", c_float), ("norm_eps", c_float), ("bos_id", c_int),
                ("eos_id", c_int), ("eot_id", c_int), ("add_bos", c_int), ("tokenizer_hash", c_uint64)]


class kvs_chat_msg(Structure):
    _fields_ = [("role", c_char_p), ("content", c_char_p)]


class kvs_ctx_params(Structure):
    _fields_ = [("n_ctx", c_int), ("n_seq", c_int), ("n_batch", c_int), ("n_threads", c_int), ("kv_f16", c_int)]


class kvs_batch(Structure):
    _fields_ = [("n", c_int), ("tokens", POINTER(kvs_token)), ("pos", POINTER(c_int32)), ("seq", POINTER(c_int32)),
                ("want_logits", POINTER(c_int8))]


class kvs_sampler_params(Structure):
    _fields_ = [("temperature", c_float), ("top_k", c_int), ("top_p", c_float), ("seed", c_uint64),
                ("repeat_penalty", c_float), ("repeat_last_n", c_int), ("min_p", c_float)]


ON_PREFILLED = CFUNCTYPE(c_int, c_void_p, c_int, c_int, c_void_p, POINTER(kvs_error))

PROGRESS = CFUNCTYPE(None, c_int, c_int, c_void_p)

ON_TOKEN = CFUNCTYPE(c_int, c_int, kvs_token, c_void_p)


class kvs_gen_request(Structure):
    _fields_ = [("prompt", POINTER(kvs_token)), ("n_prompt", c_int), ("n_hold", c_int), ("max_new", c_int),
                ("sampler", c_void_p), ("on_prefilled", ON_PREFILLED), ("user", c_void_p), ("append", c_int),
                ("out", POINTER(kvs_token)), ("n_out", c_int), ("stop", c_int), ("seconds", c_double)]


class kvs_extract_params(Structure):
    _fields_ = [("kind", c_int), ("position", c_int), ("n_threads", c_int), ("pairs_per_batch", c_int),
                ("progress", PROGRESS), ("user", c_void_p)]


class kvs_steer_params(Structure):
    _fields_ = [("ck", c_float), ("cv", c_float), ("layer_from", c_int), ("layer_to", c_int)]


# every structure mirrored here, by its C name (for the layout test)
STRUCTS = [kvs_error, kvs_model_info, kvs_chat_msg, kvs_ctx_params, kvs_batch, kvs_sampler_params,
           kvs_gen_request, kvs_extract_params, kvs_steer_params]

ERR = POINTER(kvs_error)
_PROTOTYPES = {
    # name: (restype, argtypes)
    "kvs_version": (c_char_p, []),
    "kvs_model_load": (c_void_p, [c_char_p, ERR]),
    "kvs_model_free": (None, [c_void_p]),
    "kvs_model_get_info": (None, [c_void_p, POINTER(kvs_model_info)]),
    "kvs_tokenize": (c_int, [c_void_p, c_char_p, c_size_t, c_int, c_int, POINTER(kvs_token), c_int, ERR]),
    "kvs_token_to_bytes": (c_int, [c_void_p, kvs_token, c_char_p, c_int]),
    "kvs_tokenize_alloc": (c_void_p, [c_void_p, c_char_p, c_size_t, c_int, c_int, c_int, POINTER(c_int), ERR]),
    "kvs_detokenize": (c_void_p, [c_void_p, POINTER(kvs_token), c_int, POINTER(c_size_t), ERR]),
    "kvs_token_is_eog": (c_int, [c_void_p, kvs_token]),
    "kvs_chat_render": (c_void_p, [c_void_p, POINTER(kvs_chat_msg), c_int, c_int, c_char_p, ERR]),
    "kvs_ctx_default_params": (kvs_ctx_params, []),
    "kvs_ctx_new": (c_void_p, [c_void_p, POINTER(kvs_ctx_params), ERR]),
    "kvs_ctx_free": (None, [c_void_p]),
    "kvs_ctx_n_ctx": (c_int, [c_void_p]),
    "kvs_sampler_new": (c_void_p, [POINTER(kvs_sampler_params), ERR]),
    "kvs_sampler_free": (None, [c_void_p]),
    "kvs_generate": (c_int, [c_void_p, POINTER(kvs_gen_request), c_int, c_int, ON_TOKEN, c_void_p, ERR]),
    "kvs_steer_load": (c_void_p, [c_char_p, c_void_p, ERR]),
    "kvs_steer_free": (None, [c_void_p]),
    "kvs_steer_get_kind": (c_int, [c_void_p]),
    "kvs_steer_get_format": (c_int, [c_void_p]),
    "kvs_steer_from_floats": (c_void_p, [c_void_p, c_int, POINTER(c_int), c_int, POINTER(c_float), POINTER(c_float),
                                         ERR]),
    "kvs_steer_vector": (POINTER(c_float), [c_void_p, c_int, c_int]),
    "kvs_steer_meta": (c_char_p, [c_void_p, c_char_p]),
    "kvs_steer_meta_count": (c_int, [c_void_p]),
    "kvs_steer_meta_key": (c_char_p, [c_void_p, c_int]),
    "kvs_steer_meta_value": (c_char_p, [c_void_p, c_int]),
    "kvs_steer_extract": (c_void_p, [c_void_p, POINTER(c_char_p), POINTER(c_char_p), c_int,
                                     POINTER(kvs_extract_params), ERR]),
    "kvs_steer_save": (c_int, [c_void_p, c_char_p, ERR]),
    "kvs_steer_save_controlvector": (c_int, [c_void_p, c_char_p, c_int, c_int, ERR]),
    "kvs_steer_set_meta": (c_int, [c_void_p, c_char_p, c_char_p]),
    "kvs_steer_apply_cache": (c_int, [c_void_p, c_int, c_int, c_void_p, POINTER(kvs_steer_params), ERR]),
    "kvs_steer_apply_act": (c_int, [c_void_p, c_int, c_void_p, c_int, c_float, ERR]),
    "kvs_kernels_name": (c_char_p, []),
}


def _candidates() -> List[str]:
    """Where to look for the library, in order (see README.md)."""
    env = os.environ.get(LIB_ENV)
    if env:
        return [os.path.join(env, "libkvsteer.so") if os.path.isdir(env) else env]
    found = []
    if shutil.which("pkg-config"):
        r = subprocess.run(["pkg-config", "--variable=libdir", "kvsteer"], capture_output=True, text=True)
        if r.returncode == 0 and r.stdout.strip():
            found.append(os.path.join(r.stdout.strip(), "libkvsteer.so"))
    found.append(ctypes.util.find_library("kvsteer") or "libkvsteer.so")
    return found


def _load() -> ctypes.CDLL:
    tried = []
    lib = None
    for path in _candidates():
        try:
            lib = ctypes.CDLL(path)
            break
        except OSError as e:
            tried.append(f"{path} ({e})")
    if lib is None:
        raise ImportError("kvsteer: cannot load libkvsteer: tried " + "; ".join(tried) +
                          f". Install the C library (cmake --install) and set {LIB_ENV}=/path/to/libkvsteer.so, "
                          "or PKG_CONFIG_PATH to the folder of its kvsteer.pc")
    for name, (res, args) in _PROTOTYPES.items():
        f = getattr(lib, name)
        f.restype = res
        f.argtypes = args
    version = lib.kvs_version().decode()
    if version != __version__:
        raise ImportError(f"kvsteer: {lib._name} is version {version}, these bindings are for {__version__}; "
                          "install the matching library or package")
    return lib


lib = _load()
# kvs_chat_render's strings come from the library's malloc: the process-wide
# free (dlopen(NULL)) is the one that matches it, also under a preloaded sanitizer
_libc = ctypes.CDLL(None)
_libc.free.argtypes = [c_void_p]
_libc.free.restype = None


def free(p: Optional[int]) -> None:
    _libc.free(p)
