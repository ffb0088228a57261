#!/usr/bin/env python3
"""Dequantization goldens for Q5_0, Q5_1, Q4_K, Q5_K and Q6_K.

Random blocks (random code and scale bytes, with the fp16 factors drawn as
ordinary finite values so that every element is finite) are dequantized by the
`gguf` Python package (gguf.quants.dequantize), an implementation independent
of ours.  tests/test_kquant.c checks quant_to_float against the result.

Output: tests/fixtures/kquant_goldens.bin, a sequence of records
    uint32 type, uint32 n_blocks, raw block bytes, n_blocks*block_elems float32
all little-endian.  Usage: python3 tools/make_kquant_goldens.py
"""
import os
import struct

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf import GGML_QUANT_SIZES
from gguf.quants import dequantize

# type -> byte offsets of the fp16 factors inside a block
FP16_AT = {
    T.Q5_0: [0],
    T.Q5_1: [0, 2],
    T.Q4_K: [0, 2],
    T.Q5_K: [0, 2],
    T.Q6_K: [208],
}
N_BLOCKS = {T.Q5_0: 64, T.Q5_1: 64, T.Q4_K: 16, T.Q5_K: 16, T.Q6_K: 16}


def random_blocks(rng, qtype, n):
    elems, size = GGML_QUANT_SIZES[qtype]
    raw = rng.integers(0, 256, size=(n, size), dtype=np.uint8)
    for off in FP16_AT[qtype]:
        # magnitudes around 1e-3..1, either sign, as fp16 bit patterns
        v = (rng.uniform(-1.0, 1.0, size=n) * 10.0 ** rng.uniform(-3, 0, size=n)).astype(np.float16)
        raw[:, off:off + 2] = v.view(np.uint8).reshape(n, 2)
    return raw


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = os.path.join(root, "tests", "fixtures", "kquant_goldens.bin")
    rng = np.random.default_rng(20261123)
    with open(out, "wb") as f:
        for qtype, n in N_BLOCKS.items():
            raw = random_blocks(rng, qtype, n)
            ref = dequantize(raw.reshape(-1), qtype).astype(np.float32).reshape(-1)
            assert ref.size == n * GGML_QUANT_SIZES[qtype][0] and np.all(np.isfinite(ref))
            f.write(struct.pack("<II", int(qtype), n))
            f.write(raw.tobytes())
            f.write(ref.astype("<f4").tobytes())
    print(out, os.path.getsize(out), "bytes")


if __name__ == "__main__":
    main()
