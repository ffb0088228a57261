/* quant_internal.h - the kernel-set table shared by quant.c and the SIMD files.
 *
 * Each SIMD file exports one table.  quant.c only calls a table's entries after
 * the CPU check for that table has passed, so the SIMD files may be built with
 * instruction-set flags the rest of the library must not assume. */
#ifndef KVS_QUANT_INTERNAL_H
#define KVS_QUANT_INTERNAL_H
#include <stddef.h>
#include <stdint.h>

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

#endif
