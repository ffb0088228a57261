/* quant_avx512.c - AVX-512 VNNI matrix tiles (built with AVX-512 F/BW/VL/DQ/VNNI
 * flags; only called after quant.c has checked the CPU).  Conversions reuse the
 * AVX2 set: they are memory-bound and gain nothing from width.
 *
 * Each per-block integer sum is exact; results differ from the references only
 * in the order of the float accumulation. */
#include <immintrin.h>
#include <string.h>

#include "engine/quant.h"
#include "engine/quant_internal.h"
#include "simd512.h"

#define INLINE static inline __attribute__((always_inline))

/*
 * Layout.  One zmm holds a pair of blocks (b, b+1) with their 32-bit lanes
 * interleaved: lane 2t carries bytes 4t..4t+3 of block b, lane 2t+1 the same
 * bytes of block b+1.  vpdpbusd then does 64 multiply-adds per instruction, and
 * the float scale of a lane pair is one 64-bit broadcast of two adjacent floats
 * from a dense array -- a plain load, no shuffle.
 *
 * Tiles.  TR weight rows x up to TJ activation rows.  Before a tile's block loop
 * the per-block products d_w*d_a are precomputed densely (16 blocks per
 * multiply), so the loop body per (row, activation, block pair) is just
 * vpdpbusd + convert + FMA.  Each unpacked weight pair is reused TJ times and
 * each activation pair TR times.
 *
 * Signedness.  vpdpbusd multiplies unsigned by signed bytes.  Q4_1 and Q4_0
 * nibbles are unsigned as stored; Q8_0 weights are made unsigned by adding 128
 * (xor 0x80).  The offsets (Q4_0's -8, Q8_0's +128) are removed exactly by
 * starting each int32 lane at -offset * (sum of that lane's four activation
 * codes), so every lane ends as an exact partial of the true block sum.  (A
 * per-block correction in one lane would leave large cancelling lane values,
 * and the float sum would round them.)  Any input bytes give exact block sums.
 *
 * The Q4_1 term m*s is a dense dot product over blocks, added after the loop.
 */
#define NBC 256   /* blocks per k-chunk: bounds the staging arrays on the stack */
#define STAGE 2048 /* floats of staged activation scales: JC rows of nbp blocks */
#define JCMAX 64   /* most activation rows staged together */
#define TR 4       /* weight rows per tile */
#define TJ 4       /* activation rows per tile */
_Static_assert(STAGE / NBC >= TJ, "a full-length k-chunk must still stage a whole tile of rows");

enum { K_Q4_0, K_Q4_1, K_Q8_0, K_Q5_0, K_Q5_1 };

/* Dense floats from the fp16 scales of n blocks `stride` bytes apart, zero
 * from n up to the next multiple of 16.  The gathered dword (scale plus the next
 * fp16: m of Q4_1, s of Q8_1, or code bytes) lies inside its block, and masked-off
 * lanes touch no memory, so nothing outside the row is read. */
static void scales_to_dense(const uint8_t *p, size_t stride, int n, float *lo, float *hi) {
    const __m512i idx = _mm512_mullo_epi32(
        _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15), _mm512_set1_epi32((int)stride));
    for (int b = 0; b < n; b += 16) {
        const __mmask16 m = n - b >= 16 ? 0xffff : (__mmask16)((1u << (n - b)) - 1);
        const __m512i g =
            _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), m, idx, (const void *)(p + (size_t)b * stride), 1);
        _mm512_storeu_ps(lo + b, _mm512_cvtph_ps(_mm512_cvtepi32_epi16(g)));
        if (hi) _mm512_storeu_ps(hi + b, _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(g, 16))));
    }
}

INLINE __m512 bcast_pair(const float *p) {
    double t;
    memcpy(&t, p, sizeof t);
    return _mm512_castpd_ps(_mm512_set1_pd(t));
}

/* Two 32-byte code runs -> interleaved lanes (see Layout).  `half`: no b+1. */
INLINE __m512i interleave_pair(const uint8_t *q, size_t stride, int half) {
    const __m512i idx = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    const __m256i lo = _mm256_loadu_si256((const __m256i *)(const void *)q);
    const __m256i hi =
        half ? _mm256_setzero_si256() : _mm256_loadu_si256((const __m256i *)(const void *)(q + stride));
    return _mm512_permutex2var_epi32(_mm512_castsi256_si512(lo), idx, _mm512_castsi256_si512(hi));
}

/* Weights of blocks b and b+1 as unsigned bytes in the interleaved layout.
 * Q5_0/Q5_1 are Q4_0/Q4_1 with a fifth bit per element from the 32-bit qh
 * word just before the nibbles. */
INLINE __m512i weight_pair(const int kind, const uint8_t *q, size_t wbs, int half) {
    if (kind == K_Q8_0) return _mm512_xor_si512(interleave_pair(q, wbs, half), _mm512_set1_epi8((char)0x80));
    /* [qs_b | qs_b+1] -> dwords (b.0, b+1.0, b.1, b+1.1, ...) twice; the low copy
     * keeps the low nibbles (elements 0..15), the high copy is shifted to the
     * high nibbles (elements 16..31), matching activation dwords 0..3 and 4..7 */
    const __m128i q0 = _mm_loadu_si128((const __m128i *)(const void *)q);
    const __m128i q1 = half ? _mm_setzero_si128() : _mm_loadu_si128((const __m128i *)(const void *)(q + wbs));
    const __m256i y = _mm256_inserti128_si256(_mm256_castsi128_si256(q0), q1, 1);
    const __m512i idx = _mm512_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7, 0, 4, 1, 5, 2, 6, 3, 7);
    __m512i z = _mm512_permutexvar_epi32(idx, _mm512_castsi256_si512(y));
    z = _mm512_srlv_epi64(z, _mm512_setr_epi64(0, 0, 0, 0, 4, 4, 4, 4));
    z = _mm512_and_si512(z, _mm512_set1_epi8(15));
    if (kind == K_Q5_0 || kind == K_Q5_1) {
        /* Lane 2t (2t+1) of z holds elements 4t..4t+3 of block b (b+1), +16 in
         * the upper half: their fifth bits are nibble t (t+4) of that block's qh.
         * So the byte mask is the two qh words' nibbles interleaved, b's first,
         * which is what the two deposits build. */
        uint32_t h0, h1 = 0;
        memcpy(&h0, q - 4, 4);
        if (!half) memcpy(&h1, q - 4 + wbs, 4);
        const __mmask64 m = _pdep_u64(h0, 0x0f0f0f0f0f0f0f0fULL) | _pdep_u64(h1, 0xf0f0f0f0f0f0f0f0ULL);
        z = _mm512_mask_add_epi8(z, m, z, _mm512_set1_epi8(16));
    }
    return z;
}

INLINE void tile_step(const int kind, const int J, const uint8_t *const *wr, size_t wbs,
                      const uint8_t *const *ar, size_t abs_, int b, int half, const float *P, int nbp,
                      __m512 acc[TR][TJ]) {
    const int affine = kind == K_Q4_1 || kind == K_Q5_1;
    const size_t woff = kind == K_Q4_1 ? 4 : kind == K_Q5_0 ? 6 : kind == K_Q5_1 ? 8 : 2, aoff = affine ? 4 : 2;
    __m512i wv[TR];
#pragma GCC unroll 8
    for (int r = 0; r < TR; r++) wv[r] = weight_pair(kind, wr[r] + (size_t)b * wbs + woff, wbs, half);
#pragma GCC unroll 8
    for (int j = 0; j < J; j++) {
        const __m512i av = interleave_pair(ar[j] + (size_t)b * abs_ + aoff, abs_, half);
        __m512i init = _mm512_setzero_si512();
        if (!affine) {
            const __m512i off = _mm512_set1_epi8(kind == K_Q4_0 ? 8 : kind == K_Q5_0 ? 16 : (char)0x80);
            init = _mm512_sub_epi32(init, _mm512_dpbusd_epi32(_mm512_setzero_si512(), off, av));
        }
#pragma GCC unroll 8
        for (int r = 0; r < TR; r++) {
            const __m512i s = _mm512_dpbusd_epi32(init, wv[r], av);
            acc[r][j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), bcast_pair(P + (r * TJ + j) * nbp + b), acc[r][j]);
        }
    }
}

INLINE void tile(const int kind, const int J, const uint8_t *const *wr, size_t wbs,
                 const uint8_t *const *ar, size_t abs_, int nbc, int nbp, const float *P, const float *wm,
                 const float *as, float out[TJ][TR]) {
    __m512 acc[TR][TJ];
#pragma GCC unroll 8
    for (int r = 0; r < TR; r++)
#pragma GCC unroll 8
        for (int j = 0; j < J; j++) acc[r][j] = _mm512_setzero_ps();
    int b = 0;
    for (; b + 2 <= nbc; b += 2) tile_step(kind, J, wr, wbs, ar, abs_, b, 0, P, nbp, acc);
    if (b < nbc) tile_step(kind, J, wr, wbs, ar, abs_, b, 1, P, nbp, acc);
    if (kind == K_Q4_1 || kind == K_Q5_1) {
        /* staging arrays are zero-padded to a multiple of 16 blocks */
        for (b = 0; b < nbc; b += 16)
#pragma GCC unroll 8
            for (int r = 0; r < TR; r++)
#pragma GCC unroll 8
                for (int j = 0; j < J; j++)
                    acc[r][j] = _mm512_fmadd_ps(_mm512_loadu_ps(wm + r * nbp + b),
                                                _mm512_loadu_ps(as + j * nbp + b), acc[r][j]);
    }
    _Static_assert(TR == 4, "simd512_sum4 sums one activation row's TR accumulators");
#pragma GCC unroll 8
    for (int j = 0; j < J; j++) _mm_storeu_ps(out[j], simd512_sum4(acc[0][j], acc[1][j], acc[2][j], acc[3][j]));
}

#define TILE_FN(name, kind)                                                                           \
    static void name(int J, const uint8_t *const *wr, size_t wbs, const uint8_t *const *ar,          \
                     size_t abs_, int nbc, int nbp, const float *P, const float *wm, const float *as, \
                     float out[TJ][TR]) {                                                             \
        switch (J) {                                                                                  \
        case 1: tile(kind, 1, wr, wbs, ar, abs_, nbc, nbp, P, wm, as, out); break;                    \
        case 2: tile(kind, 2, wr, wbs, ar, abs_, nbc, nbp, P, wm, as, out); break;                    \
        case 3: tile(kind, 3, wr, wbs, ar, abs_, nbc, nbp, P, wm, as, out); break;                    \
        default: tile(kind, 4, wr, wbs, ar, abs_, nbc, nbp, P, wm, as, out); break;                   \
        }                                                                                             \
    }
TILE_FN(tile_q4_0, K_Q4_0)
TILE_FN(tile_q4_1, K_Q4_1)
TILE_FN(tile_q8_0, K_Q8_0)
TILE_FN(tile_q5_0, K_Q5_0)
TILE_FN(tile_q5_1, K_Q5_1)

static void gemm_quant(int kind, int64_t k, const uint8_t *W, size_t w_stride, int i0, int i1,
                       const uint8_t *A, size_t a_stride, int n_a, float *C, int ldc) {
    const size_t wbs = kind == K_Q4_0 ? sizeof(block_q4_0)
                       : kind == K_Q4_1 ? sizeof(block_q4_1)
                       : kind == K_Q5_0 ? sizeof(block_q5_0)
                       : kind == K_Q5_1 ? sizeof(block_q5_1) : sizeof(block_q8_0);
    const size_t abs_ = kind == K_Q4_1 || kind == K_Q5_1 ? sizeof(block_q8_1) : sizeof(block_q8_0);
    const int nb = (int)(k / QK);
    if (nb == 0) { /* empty rows: the products are 0, as the references give */
        for (int j = 0; j < n_a; j++)
            for (int i = i0; i < i1; i++) C[(size_t)j * (size_t)ldc + (size_t)i] = 0.0f;
        return;
    }
    const int q41 = kind == K_Q4_1 || kind == K_Q5_1; /* the affine types: m and s are staged too */
    /* about 40 KiB: activation scales (and s), weight scales (and m), products */
    float ad[STAGE], as[STAGE], wd[TR * NBC], wm[TR * NBC], P[TR * TJ * NBC];
    const uint8_t *arow[JCMAX];
    for (int kb = 0; kb < nb; kb += NBC) {
        const int nbc = nb - kb < NBC ? nb - kb : NBC;
        const int nbp = (nbc + 15) & ~15;
        /* short rows stage more activation rows, so each weight tile's scales
         * are converted fewer times and the weights stream past fewer times */
        const int jcap = STAGE / nbp < JCMAX ? STAGE / nbp : JCMAX;
        for (int j0 = 0; j0 < n_a; j0 += jcap) {
            const int jc = n_a - j0 < jcap ? n_a - j0 : jcap;
            for (int j = 0; j < jc; j++) {
                arow[j] = A + (size_t)(j0 + j) * a_stride + (size_t)kb * abs_;
                scales_to_dense(arow[j], abs_, nbc, ad + j * nbp, q41 ? as + j * nbp : NULL);
            }
            for (int i = i0; i < i1; i += TR) {
                const int rn = i1 - i < TR ? i1 - i : TR;
                const uint8_t *wrow[TR];
                for (int r = 0; r < TR; r++) {
                    /* a short tile repeats its last row rather than needing its own kernel */
                    wrow[r] = W + (size_t)(i + (r < rn ? r : rn - 1)) * w_stride + (size_t)kb * wbs;
                    scales_to_dense(wrow[r], wbs, nbc, wd + r * nbp, q41 ? wm + r * nbp : NULL);
                }
                /* Ask for the next tile's weights now: the scale gathers above are
                 * the first touch of a row, and without this they wait on memory
                 * (15% of batched decoding's profile). */
                if (i + TR < i1)
                    simd512_prefetch_rows(W + (size_t)(i + TR) * w_stride + (size_t)kb * wbs, w_stride,
                                          i1 - (i + TR) < TR ? i1 - (i + TR) : TR, (size_t)nbc * wbs);
                for (int jj = 0; jj < jc; jj += TJ) {
                    const int J = jc - jj < TJ ? jc - jj : TJ;
                    for (int r = 0; r < TR; r++)
                        for (int j = 0; j < J; j++)
                            for (int b = 0; b < nbp; b += 16)
                                _mm512_storeu_ps(P + (r * TJ + j) * nbp + b,
                                                 _mm512_mul_ps(_mm512_loadu_ps(wd + r * nbp + b),
                                                               _mm512_loadu_ps(ad + (jj + j) * nbp + b)));
                    float out[TJ][TR];
                    const uint8_t *const *ar = arow + jj;
                    const float *asj = as + jj * nbp;
                    if (kind == K_Q4_0)
                        tile_q4_0(J, wrow, wbs, ar, abs_, nbc, nbp, P, wm, asj, out);
                    else if (kind == K_Q4_1)
                        tile_q4_1(J, wrow, wbs, ar, abs_, nbc, nbp, P, wm, asj, out);
                    else if (kind == K_Q5_0)
                        tile_q5_0(J, wrow, wbs, ar, abs_, nbc, nbp, P, wm, asj, out);
                    else if (kind == K_Q5_1)
                        tile_q5_1(J, wrow, wbs, ar, abs_, nbc, nbp, P, wm, asj, out);
                    else
                        tile_q8_0(J, wrow, wbs, ar, abs_, nbc, nbp, P, wm, asj, out);
                    for (int j = 0; j < J; j++) {
                        float *c = C + (size_t)(j0 + jj + j) * (size_t)ldc + (size_t)i;
                        for (int r = 0; r < rn; r++) c[r] = kb ? c[r] + out[j][r] : out[j][r];
                    }
                }
            }
        }
    }
}

static void gemm_avx512(uint32_t wtype, int64_t k, const void *W, size_t w_stride, int i0, int i1,
                        const void *A, size_t a_stride, int n_a, float *C, int ldc) {
    switch (wtype) {
    case GGT_Q4_0: gemm_quant(K_Q4_0, k, W, w_stride, i0, i1, A, a_stride, n_a, C, ldc); return;
    case GGT_Q4_1: gemm_quant(K_Q4_1, k, W, w_stride, i0, i1, A, a_stride, n_a, C, ldc); return;
    case GGT_Q8_0: gemm_quant(K_Q8_0, k, W, w_stride, i0, i1, A, a_stride, n_a, C, ldc); return;
    case GGT_Q5_0: gemm_quant(K_Q5_0, k, W, w_stride, i0, i1, A, a_stride, n_a, C, ldc); return;
    case GGT_Q5_1: gemm_quant(K_Q5_1, k, W, w_stride, i0, i1, A, a_stride, n_a, C, ldc); return;
    case GGT_Q4_K: case GGT_Q5_K: case GGT_Q6_K:
        avx512_gemm_k(wtype, k, W, w_stride, i0, i1, A, a_stride, n_a, C, ldc);
        return;
    default:
        gemm_by_dot(avx2_dot, wtype, k, W, w_stride, i0, i1, A, a_stride, n_a, C, ldc);
        return;
    }
}

static float dot_avx512(uint32_t wtype, int64_t n, const void *w, const void *a) {
    switch (wtype) {
    case GGT_Q4_0: case GGT_Q4_1: case GGT_Q8_0: case GGT_Q5_0: case GGT_Q5_1: case GGT_Q4_K: case GGT_Q5_K: case GGT_Q6_K: {
        float c = 0.0f;
        gemm_avx512(wtype, n, w, 0, 0, 1, a, 0, 1, &c, 1);
        return c;
    }
    default:
        return avx2_dot(wtype, n, w, a);
    }
}

const quant_kernels quant_avx512_kernels = {
    "avx512vnni", avx2_to_float, avx2_from_float, dot_avx512, gemm_avx512,
};
