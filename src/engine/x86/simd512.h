/* simd512.h - AVX-512 helpers shared by the kernel files compiled with AVX-512
 * flags (attn_avx512.c, quant_avx512.c, quant_tiles_avx512.c).  Include only from
 * such files. */
#ifndef KVS_SIMD512_H
#define KVS_SIMD512_H
#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>

/* Horizontal sums of four vectors, as one xmm (lane i = sum of input i).  The
 * additions go in one fixed tree, so a sum depends only on its own vector: the
 * kernels' results must not depend on what the other three hold. */
static inline __attribute__((always_inline)) __m128 simd512_sum4(__m512 a, __m512 b, __m512 c, __m512 d) {
    const __m512 ab = _mm512_add_ps(_mm512_shuffle_f32x4(a, b, 0x44), _mm512_shuffle_f32x4(a, b, 0xee));
    const __m512 cd = _mm512_add_ps(_mm512_shuffle_f32x4(c, d, 0x44), _mm512_shuffle_f32x4(c, d, 0xee));
    /* 128-bit lane i now holds a 4-float partial of input i */
    __m512 s = _mm512_add_ps(_mm512_shuffle_f32x4(ab, cd, 0x88), _mm512_shuffle_f32x4(ab, cd, 0xdd));
    s = _mm512_add_ps(s, _mm512_permute_ps(s, 0x4e));
    s = _mm512_add_ps(s, _mm512_permute_ps(s, 0xb1));
    const __m512i pick = _mm512_setr_epi32(0, 4, 8, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
    return _mm512_castps512_ps128(_mm512_permutexvar_ps(pick, s));
}

/* Ask for every cache line that [p, p + n) touches to be brought into L1: a
 * super-block need not start a line, and stepping 64 bytes from p itself would
 * skip the last line of one that does not. */
static inline void simd512_prefetch_span(const uint8_t *p, size_t n) {
    const uintptr_t a = (uintptr_t)p;
    for (uintptr_t l = a & ~(uintptr_t)63; l < a + n; l += 64) _mm_prefetch((const char *)l, _MM_HINT_T0);
}

#endif
