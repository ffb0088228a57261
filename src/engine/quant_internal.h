/* quant_internal.h - the kernel-set table shared by quant.c and the SIMD files.
 *
 * Each SIMD file exports one table.  quant.c only calls a table's entries after
 * the CPU check for that table has passed, so the SIMD files may be built with
 * instruction-set flags the rest of the library must not assume. */
#ifndef KVS_QUANT_INTERNAL_H
#define KVS_QUANT_INTERNAL_H
#include <stddef.h>
#include <math.h>
#include <stdint.h>

#include "quant.h"

typedef struct quant_kernels {
    const char *name;
    void (*to_float)(uint32_t type, const void *src, float *dst, int64_t n);
    void (*from_float)(uint32_t type, const float *src, void *dst, int64_t n);
    float (*dot)(uint32_t wtype, int64_t n, const void *w, const void *a);
    void (*gemm)(uint32_t wtype, int64_t k, const void *W, size_t w_stride, int i0, int i1,
                 const void *A, size_t a_stride, int n_a, float *C, int ldc);
    /* the lanes id (lanes.h) this set wants matrices of `type` stored in, which
     * its dot and gemm then read themselves, or 0; NULL: none */
    uint32_t (*lanes)(uint32_t type);
} quant_kernels;

extern const quant_kernels quant_avx2_kernels;
extern const quant_kernels quant_avx512_kernels;
extern const quant_kernels quant_amx_kernels;

/* The AVX2 entry points, which the AVX-512 set reuses for the operations where
 * wider vectors buy nothing (conversions). */
void avx2_to_float(uint32_t type, const void *src, float *dst, int64_t n);
void avx2_from_float(uint32_t type, const float *src, void *dst, int64_t n);
float avx2_dot(uint32_t wtype, int64_t n, const void *w, const void *a);
void avx2_gemm(uint32_t wtype, int64_t k, const void *W, size_t w_stride, int i0, int i1,
                   const void *A, size_t a_stride, int n_a, float *C, int ldc);

/* The AVX-512 VNNI tiles (quant_tiles_avx512.c) of the quantized weight types
 * avx512_tiles_support() accepts, with quant_gemm's contract. */
int avx512_tiles_support(uint32_t wtype);
void avx512_gemm_tiles(uint32_t wtype, int64_t k, const void *W, size_t w_stride, int i0, int i1, const void *A,
                       size_t a_stride, int n_a, float *C, int ldc);

/* C[j*ldc+i] = dot(W row i, A row j) through a per-pair dot function; used for the
 * float weight types, whose products are memory-bound anyway. */
void gemm_by_dot(float (*dot)(uint32_t, int64_t, const void *, const void *), uint32_t wtype,
                     int64_t k, const void *W, size_t w_stride, int i0, int i1, const void *A,
                     size_t a_stride, int n_a, float *C, int ldc);

/* Activation-quantization helpers: the scalar rules both the reference and the
 * SIMD paths must agree on bit for bit. */
static inline int8_t q8_from_rounded(float r) {
    /* roundf(x*id) stays in [-127, 127] for ordinary input.  It leaves that range
     * only when 1/d overflows (a block of tiny subnormals) or the input holds
     * inf/NaN, cases llama.cpp leaves undefined.  Clamping symmetrically there
     * (NaN -> 0) also keeps -128 out of every activation, which the AVX2
     * kernels' sign trick relies on. */
    if (!(r == r)) return 0;
    if (r > 127.0f) return 127;
    if (r < -127.0f) return -127;
    return (int8_t)r;
}

/* Round half to even, as ggml's Q8_K quantizer does (by its float magic-number
 * trick); rintf does it in the default rounding mode, which nothing here changes. */
static inline float round_even(float v) { return rintf(v); }

#endif
