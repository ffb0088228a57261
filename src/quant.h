/* quant.h - tensor block formats and the products the forward pass needs.
 *
 * Weights stay in their file format (quantized, inside the mmap).  A matrix
 * product first converts the activations to the weight type's "dot type"
 * (Q8_0 for Q4_0/Q8_0, Q8_1 for Q4_1, F16 for F16, BF16 for BF16, F32 for F32),
 * exactly as llama.cpp does, then takes integer/float dot products per block.
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
/* In Q4_0/Q4_1, byte j holds element j in its low nibble and element j+16 in its high one. */

/* True if we can compute with tensors of this type. */
int quant_supported(uint32_t type);
/* The activation format used for products with weights of `wtype`. */
uint32_t quant_dot_type(uint32_t wtype);

/* Dequantize n elements (a multiple of the block size) of `type` into dst. */
void quant_to_float(uint32_t type, const void *src, float *dst, int64_t n);
void quant_to_float_ref(uint32_t type, const void *src, float *dst, int64_t n);

/* Quantize n floats into `type` (any dot type: F32, F16, BF16, Q8_0, Q8_1; and
 * Q4_0, Q4_1 for tests and tools).  n is a multiple of the block size. */
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

/* Attention's two products over rows of floats `stride` floats apart (keys or
 * values of one KV head in the cache):
 *   dots: out[j] = scale * dot(q, row j)            for j < n  (d floats each)
 *   wsum: out[i] = sum_j w[j] * row_j[i]            for i < d
 * Each output depends only on its own inputs, never on n's blocking. */
void quant_f32_dots(int n, int d, const float *q, const float *rows, size_t stride, float scale, float *out);
void quant_f32_dots_ref(int n, int d, const float *q, const float *rows, size_t stride, float scale, float *out);
void quant_f32_wsum(int n, int d, const float *w, const float *rows, size_t stride, float *out);
void quant_f32_wsum_ref(int n, int d, const float *w, const float *rows, size_t stride, float *out);

/* Name of the kernel set in use ("avx512vnni", "avx2", "scalar"). */
const char *quant_backend(void);
/* Force a kernel set for tests/benchmarks: "scalar", "avx2", "avx512vnni" or
 * NULL for the best available.  Returns 0, or -1 if the CPU lacks it.  This is
 * the one piece of process-wide state: it is a CPU capability choice, set once. */
int quant_force_backend(const char *name);

#endif
