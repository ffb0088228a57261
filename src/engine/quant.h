/* quant.h - tensor block formats and the products the forward pass needs.
 *
 * Weights stay in their file format (quantized, inside the mmap).  A matrix
 * product first converts the activations to the weight type's "dot type"
 * (Q8_0 for Q4_0/Q5_0/Q8_0, Q8_1 for Q4_1/Q5_1, Q8_K for the K-quants Q4_K/
 * Q5_K/Q6_K, F16 for F16, BF16 for BF16, F32 for F32), exactly as llama.cpp
 * does, then takes integer/float dot products per block.
 *
 * Every operation has a portable scalar reference (*_ref) that defines the
 * result; the dispatched versions (chosen at run time from the CPU's features:
 * AVX-512 VNNI, AVX2, portable) are tested against the references.
 */
#ifndef KVS_QUANT_H
#define KVS_QUANT_H
#include <stddef.h>
#include <stdint.h>

#include "ggtype.h"

#define QK 32 /* elements per block of the 32-wide formats */

typedef struct { uint16_t d; uint8_t qs[QK / 2]; } block_q4_0;            /* x = d*(q-8) */
typedef struct { uint16_t d, m; uint8_t qs[QK / 2]; } block_q4_1;         /* x = d*q + m */
typedef struct { uint16_t d; int8_t qs[QK]; } block_q8_0;                 /* x = d*q */
typedef struct { uint16_t d, s; int8_t qs[QK]; } block_q8_1;              /* s = d*sum(q) */
typedef struct { uint16_t d; uint8_t qh[4]; uint8_t qs[QK / 2]; } block_q5_0;    /* x = d*(q-16) */
typedef struct { uint16_t d, m; uint8_t qh[4]; uint8_t qs[QK / 2]; } block_q5_1; /* x = d*q + m */
/* In Q4_0/Q4_1/Q5_0/Q5_1, byte j holds element j in its low nibble and element
 * j+16 in its high one; in Q5_*, bit j of the little-endian word qh is the fifth
 * bit of element j. */

/*
 * K-quants: super-blocks of 256 elements in sub-blocks with their own integer
 * scales, which are themselves scaled by fp16 super-block factors.
 *  Q4_K/Q5_K: 8 sub-blocks of 32, x = d*sc[s]*q - dmin*mn[s], sc/mn 6-bit, packed
 *    in scales[12] (see k_scale_min).  Each 64-element run uses 32 bytes of
 *    qs: low nibbles are its first 32 elements, high nibbles the next 32.  Q5_K's
 *    fifth bit of element 64r+i is bit 2r of qh[i], of 64r+32+i bit 2r+1.
 *  Q6_K: 16 sub-blocks of 16, x = d*scales[s]*(q-32), q 6-bit: the 128-element
 *    half h uses ql[64h..64h+63] and qh[32h..32h+31]; its element 32t+i (t<4,
 *    i<32) has low four bits from ql[64h + 32*(t&1) + i] (low nibble for t<2,
 *    high for t>=2) and high two bits from qh[32h+i] >> 2t.
 *  Q8_K: the activation type, x = d*q with a float d, and bsums[g] the sum of
 *    the codes of elements 16g..16g+15 (so the minimum and offset terms of the
 *    weights need no pass over the elements).
 */
#define QK_K 256
typedef struct { uint16_t d, dmin; uint8_t scales[12]; uint8_t qs[QK_K / 2]; } block_q4_k;
typedef struct { uint16_t d, dmin; uint8_t scales[12]; uint8_t qh[QK_K / 8]; uint8_t qs[QK_K / 2]; } block_q5_k;
typedef struct { uint8_t ql[QK_K / 2]; uint8_t qh[QK_K / 4]; int8_t scales[QK_K / 16]; uint16_t d; } block_q6_k;
typedef struct { float d; int8_t qs[QK_K]; int16_t bsums[QK_K / 16]; } block_q8_k;

/* Sub-block s (< 8) of the packed 6-bit scales of Q4_K/Q5_K: the first four scales
 * and mins are the low six bits of bytes 0..3 and 4..7; the last four take their
 * low four bits from the nibbles of bytes 8..11 and their top two bits from the
 * spare top bits of bytes 0..7. */
static inline void k_scale_min(const uint8_t *q, int s, uint8_t *sc, uint8_t *mn) {
    if (s < 4) {
        *sc = q[s] & 63;
        *mn = q[s + 4] & 63;
    } else {
        *sc = (uint8_t)((q[s + 4] & 15) | ((q[s - 4] >> 6) << 4));
        *mn = (uint8_t)((q[s + 4] >> 4) | ((q[s] >> 6) << 4));
    }
}

/* True if we can compute with tensors of this type. */
int quant_supported(uint32_t type);
/* The activation format used for products with weights of `wtype`. */
uint32_t quant_dot_type(uint32_t wtype);

/* Dequantize n elements (a multiple of the block size) of `type` into dst (for
 * a lanes type of lanes.h: one whole row). */
void quant_to_float(uint32_t type, const void *src, float *dst, int64_t n);
void quant_to_float_ref(uint32_t type, const void *src, float *dst, int64_t n);

/* Quantize n floats into `type` (any dot type: F32, F16, BF16, Q8_0, Q8_1, Q8_K;
 * and Q4_0, Q4_1 for tests and tools).  n is a multiple of the block size. */
void quant_from_float(uint32_t type, const float *src, void *dst, int64_t n);
void quant_from_float_ref(uint32_t type, const float *src, void *dst, int64_t n);

/* Dot product of one weight row (wtype, n elements) with one activation row
 * already in quant_dot_type(wtype). */
float quant_dot(uint32_t wtype, int64_t n, const void *w, const void *a);
float quant_dot_ref(uint32_t wtype, int64_t n, const void *w, const void *a);

/*
 * Tile of a matrix product, the hot loop of the forward pass:
 *   C[j*ldc + i] = dot(W row i, A row j)   for i in [i0, i1), j in [0, n_a)
 * W rows are `k` elements of wtype, `w_stride` bytes apart; A rows are `k`
 * elements of quant_dot_type(wtype), `a_stride` bytes apart.  Callers split
 * [0, rows) across threads; the kernel is free to block over i and j.
 */
void quant_gemm(uint32_t wtype, int64_t k, const void *W, size_t w_stride, int i0, int i1,
                const void *A, size_t a_stride, int n_a, float *C, int ldc);

/* The lanes layout (lanes.h) in which the kernel set in use wants matrices of
 * `type`, or 0: a model loaded now stores them so. */
uint32_t quant_lanes_for(uint32_t type);

/* Name of the kernel set in use ("avx512vnni", "avx2", "scalar"). */
const char *quant_backend(void);
/* Force a kernel set for tests/benchmarks: "scalar", "avx2", "avx512vnni" or
 * NULL for the best available.  Returns 0, or -1 if the CPU lacks it.  This is
 * the one piece of process-wide state: it is a CPU capability choice, set once. */
int quant_force_backend(const char *name);

#endif
