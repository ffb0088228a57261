/* quant.h - the products the forward pass needs, with the kernels of the CPU.
 *
 * Weights stay in their file format (quantized, inside the mmap).  A matrix
 * product first converts the activations to the weight type's "dot type"
 * (Q8_0 for Q4_0/Q5_0/Q8_0, Q8_1 for Q4_1/Q5_1, Q8_K for the K-quants Q4_K/
 * Q5_K/Q6_K, F16 for F16, BF16 for BF16, F32 for F32), exactly as llama.cpp
 * does, then takes integer/float dot products per block.
 *
 * Every operation has a portable scalar reference (quant_ref.h) that defines
 * the result; the versions here are dispatched (chosen at run time from the
 * CPU's features: AVX-512 VNNI, AVX2, portable) and tested against the
 * references.  The block layouts are in quant_blocks.h.
 */
#ifndef KVS_QUANT_H
#define KVS_QUANT_H
#include <stddef.h>
#include <stdint.h>

#include "ggtype.h"

/* True if we can compute with tensors of this type. */
int quant_supported(uint32_t type);
/* The activation format used for products with weights of `wtype`. */
uint32_t quant_dot_type(uint32_t wtype);

/* Dequantize n elements (a multiple of the block size) of `type` into dst (for
 * a lanes type of lanes.h: one whole row). */
void quant_to_float(uint32_t type, const void *src, float *dst, int64_t n);

/* Quantize n floats into `type` (any dot type: F32, F16, BF16, Q8_0, Q8_1, Q8_K;
 * and Q4_0, Q4_1 for tests and tools).  n is a multiple of the block size. */
void quant_from_float(uint32_t type, const float *src, void *dst, int64_t n);

/* Dot product of one weight row (wtype, n elements) with one activation row
 * already in quant_dot_type(wtype). */
float quant_dot(uint32_t wtype, int64_t n, const void *w, const void *a);

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
