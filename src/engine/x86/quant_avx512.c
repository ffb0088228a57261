/* quant_avx512.c - the AVX-512 VNNI kernel set (built with AVX-512 F/BW/VL/DQ/VNNI
 * flags; only called after quant.c has checked the CPU).  The matrix tiles of
 * every quantized weight type are in quant_tiles_avx512.c; conversions reuse the
 * AVX2 set: they are memory-bound and gain nothing from width. */
#include "engine/lanes.h"
#include "engine/ggtype.h"
#include "engine/quant_blocks.h"
#include "engine/quant_internal.h"
#include "engine/quant_ref.h"

static void gemm_avx512(uint32_t wtype, int64_t k, const void *W, size_t w_stride, int i0, int i1,
                        const void *A, size_t a_stride, int n_a, float *C, int ldc) {
    if (avx512_tiles_support(wtype))
        avx512_gemm_tiles(wtype, k, W, w_stride, i0, i1, A, a_stride, n_a, C, ldc);
    else
        gemm_by_dot(avx2_dot, wtype, k, W, w_stride, i0, i1, A, a_stride, n_a, C, ldc);
}

static float dot_avx512(uint32_t wtype, int64_t n, const void *w, const void *a) {
    if (!avx512_tiles_support(wtype)) return avx2_dot(wtype, n, w, a);
    float c = 0.0f;
    avx512_gemm_tiles(wtype, n, w, 0, 0, 1, a, 0, 1, &c, 1);
    return c;
}

const quant_kernels quant_avx512_kernels = {
    "avx512vnni", avx2_to_float, avx2_from_float, dot_avx512, gemm_avx512, quant_lanes_of,
};
