/* quant_ref.h - the scalar reference kernels (quant_ref.c): the definition of
 * every result that the dispatched kernels of quant.h compute, with the same
 * contracts; the SIMD sets fall back on them where they have nothing faster. */
#ifndef KVS_QUANT_REF_H
#define KVS_QUANT_REF_H
#include <math.h>
#include <stddef.h>
#include <stdint.h>

void quant_to_float_ref(uint32_t type, const void *src, float *dst, int64_t n);
void quant_from_float_ref(uint32_t type, const float *src, void *dst, int64_t n);
float quant_dot_ref(uint32_t wtype, int64_t n, const void *w, const void *a);

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
