/* quant_kq_avx512.c - AVX-512 VNNI matrix tiles for the K-quants (Q4_K, Q5_K,
 * Q6_K against Q8_K activations).  Built with the AVX-512 flags; only called
 * after quant.c has checked the CPU.
 *
 * Why a layout step.  A K-quant super-block packs its 256 codes in nibbles and
 * bit planes and its sub-block scales in 6-bit fields: unpacking costs about as
 * much as the products themselves.  So each tile first unpacks its weight rows,
 * one k-chunk at a time, into a staging area in element order (one code per
 * byte, as Q8_K's activation codes are laid out) with each sub-block's scale
 * spread over the 32-bit lanes that hold its products.  The unpacking is then
 * paid once per staged group of activation rows instead of once per product,
 * and the product loop is loads and VNNI instructions only.
 *
 * Exactness.  Per super-block, vpdpbusd forms exact partial sums of four
 * code x activation products per lane (unsigned codes: at most 4*63*127 =
 * 32004, so each lane fits in 16 bits), and vpdpwssd multiplies each lane by
 * its sub-block's integer scale and accumulates: the super-block's integer sum
 * is exact, as in the reference.  Q6_K's -32 offset is an exact integer term
 * from the activation's bsums.  The float factors (d * d_y per super-block,
 * and Q4_K/Q5_K's dmin * min * d_y * bsum terms) are applied in float, so
 * results differ from the references only in float rounding.  A row's result
 * never depends on which other rows or activations share its tile.
 */
#include <immintrin.h>
#include <stddef.h>
#include <string.h>

#include "engine/quant.h"
#include "engine/quant_internal.h"
#include "simd512.h"

#define INLINE static inline __attribute__((always_inline))

#define KR 4   /* weight rows per tile (simd512_sum4 reduces one activation's four) */
#define KJ 3   /* activation rows per tile: 2*KR*KJ accumulators fit the 32 registers */
#define NBK 8  /* super-blocks per k-chunk: the staged rows stay in L1 */
#define KJC 32 /* activation rows whose factors are staged together */
#define Q8K_BYTES ((int)sizeof(block_q8_k))
#define Q8K_QS ((int)offsetof(block_q8_k, qs))
#define Q8K_BSUMS ((int)offsetof(block_q8_k, bsums))

enum { KQ_Q4K, KQ_Q5K, KQ_Q6K };

INLINE float f16_at(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return _cvtsh_ss(h);
}

/* One weight row's k-chunk, unpacked. */
typedef struct {
    _Alignas(64) uint8_t codes[NBK][QK_K]; /* unsigned codes in element order */
    /* scales[b][q][l]: the scale of the sub-block that lane l of the 64-element
     * run q holds, as the int16 pair (scale, 0) vpdpwssd multiplies with */
    _Alignas(64) int32_t scales[NBK][4][16];
    _Alignas(64) int16_t off[NBK][16];     /* Q6_K: -32 * scale of each sub-block */
    _Alignas(64) float mins[NBK * 8 + 8];  /* Q4_K/Q5_K: dmin * min of each sub-block */
    float d[NBK];
} wstage;

/* A k-chunk of up to KJC activation rows, aligned (a Q8_K block is 292 bytes,
 * so its codes straddle cache lines where they lie) and with the factors the
 * tiles need per super-block. */
typedef struct {
    _Alignas(64) int8_t qs[KJC][NBK][QK_K];
    _Alignas(64) int16_t bsums[KJC][NBK][16];     /* Q6_K's offset term */
    _Alignas(64) float mins[KJC][NBK * 8 + 8];    /* Q4_K/Q5_K: d_y * (sum of each sub-block's codes) */
    float d[KJC][NBK];                           /* d_y */
} astage;

static void stage_acts(const int kind, const uint8_t *y, int nbc, astage *s, int j) {
    for (int b = 0; b < nbc; b++) {
        const uint8_t *yb = y + (size_t)b * Q8K_BYTES;
        float dy;
        memcpy(&dy, yb, sizeof dy);
        s->d[j][b] = dy;
        memcpy(s->qs[j][b], yb + Q8K_QS, QK_K);
        int16_t bs[16];
        memcpy(bs, yb + Q8K_BSUMS, sizeof bs);
        if (kind == KQ_Q6K)
            memcpy(s->bsums[j][b], bs, sizeof bs);
        else
            for (int t = 0; t < 8; t++) s->mins[j][8 * b + t] = dy * (float)(bs[2 * t] + bs[2 * t + 1]);
    }
    for (int e = 8 * nbc; e < NBK * 8 + 8; e++) s->mins[j][e] = 0.0f;
}

/* Q4_K/Q5_K's eight 6-bit scales and mins (k_scale_min's rule for all eight
 * at once): bytes 0..7 of *sc and *mn. */
INLINE void k_scales(const uint8_t *q, uint64_t *sc, uint64_t *mn) {
    uint32_t u0, u1, u2;
    memcpy(&u0, q, 4);
    memcpy(&u1, q + 4, 4);
    memcpy(&u2, q + 8, 4);
    const uint32_t lo6 = 0x3f3f3f3fu, lo4 = 0x0f0f0f0fu, lo2 = 0x03030303u;
    const uint32_t sc_hi = (u2 & lo4) | (((u0 >> 6) & lo2) << 4);
    const uint32_t mn_hi = ((u2 >> 4) & lo4) | (((u1 >> 6) & lo2) << 4);
    *sc = (uint64_t)(u0 & lo6) | ((uint64_t)sc_hi << 32);
    *mn = (uint64_t)(u1 & lo6) | ((uint64_t)mn_hi << 32);
}

/* Per-lane scale vectors.  Run q of a super-block is its elements 64q..64q+63;
 * vpdpbusd leaves lane l of a run with the products of elements 4l..4l+3, so
 * lane l needs the scale of the sub-block holding them: Q4_K/Q5_K have two
 * sub-blocks of 32 per run (lanes 0-7, 8-15), Q6_K four of 16 (lanes 4m..4m+3).
 * `w16` holds the sub-block scales as int16 words 0..15 and zeros above; each
 * lane gets the pair (scale, 0), since vpdpwssd adds the high words' product too. */
INLINE __m512i lane_scales(__m512i w16, const int per_run, int q) {
    const __m512i zero_word = _mm512_set1_epi32(31 << 16); /* word 31 of w16 is 0 */
    const __m512i sub = per_run == 2
        ? _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1)
        : _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
    const __m512i idx = _mm512_or_si512(zero_word, _mm512_add_epi32(sub, _mm512_set1_epi32(per_run * q)));
    return _mm512_permutexvar_epi16(idx, w16);
}

/* Q4_K/Q5_K super-block x: its four lane-scale vectors and dmin * min of each
 * sub-block (mins[0..7]). */
INLINE void q45k_factors(const uint8_t *x, __m512i sv[4], float *mins) {
    uint64_t sc, mn;
    k_scales(x + 4, &sc, &mn);
    const float dmin = f16_at(x + 2);
    _mm256_storeu_ps(mins, _mm256_mul_ps(_mm256_set1_ps(dmin),
                                         _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_cvtsi64_si128((long long)mn)))));
    const __m512i w16 = _mm512_zextsi128_si512(_mm_cvtepu8_epi16(_mm_cvtsi64_si128((long long)sc)));
#pragma GCC unroll 4
    for (int q = 0; q < 4; q++) sv[q] = lane_scales(w16, 2, q);
}

/* The 64 codes of run q of a Q4_K/Q5_K super-block, one per byte. */
INLINE __m512i q45k_run(const int five, const uint8_t *x, int q) {
    /* qs bytes 32q..32q+31 hold elements 64q+i (low nibble) and 64q+32+i (high):
     * the same 32 bytes in both halves, the upper half shifted down a nibble */
    const uint8_t *qs = x + (five ? offsetof(block_q5_k, qs) : offsetof(block_q4_k, qs)) + 32 * q;
    const __m512i c = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(const void *)qs));
    __m512i v = _mm512_and_si512(_mm512_srlv_epi64(c, _mm512_setr_epi64(0, 0, 0, 0, 4, 4, 4, 4)),
                                 _mm512_set1_epi8(15));
    if (five) { /* bit 2q of qh[i] tops element 64q+i, bit 2q+1 element 64q+32+i */
        const __m512i h = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(const void *)(x + offsetof(block_q5_k, qh))));
        const __m512i hb = _mm512_srlv_epi64(h, _mm512_set_epi64(2 * q + 1, 2 * q + 1, 2 * q + 1, 2 * q + 1,
                                                                 2 * q, 2 * q, 2 * q, 2 * q));
        v = _mm512_or_si512(v, _mm512_slli_epi64(_mm512_and_si512(hb, _mm512_set1_epi8(1)), 4));
    }
    return v;
}

/* Q6_K super-block x: its lane-scale vectors and -32 * each sub-block's scale
 * (int16, for the offset term against the activation's bsums). */
INLINE void q6k_factors(const uint8_t *x, __m512i sv[4], __m256i *off) {
    const __m256i s16 = _mm256_cvtepi8_epi16(
        _mm_loadu_si128((const __m128i *)(const void *)(x + offsetof(block_q6_k, scales))));
    *off = _mm256_mullo_epi16(s16, _mm256_set1_epi16(-32));
    const __m512i w16 = _mm512_zextsi256_si512(s16);
#pragma GCC unroll 4
    for (int q = 0; q < 4; q++) sv[q] = lane_scales(w16, 4, q);
}

/* The 64 codes (0..63) of run q of a Q6_K super-block.  Half h = q/2; within it,
 * element 32t+i (t < 4) takes ql[64h + 32(t&1) + i]'s low (t < 2) or high nibble
 * and bits 2t..2t+1 of qh[32h+i]; run q covers t = 0,1 (q even) or 2,3 (q odd). */
INLINE __m512i q6k_run(const uint8_t *x, int q) {
    const int h = q >> 1, up = q & 1;
    const __m512i l = _mm512_loadu_si512((const void *)(x + offsetof(block_q6_k, ql) + 64 * h));
    const __m512i hb = _mm512_broadcast_i64x4(
        _mm256_loadu_si256((const __m256i *)(const void *)(x + offsetof(block_q6_k, qh) + 32 * h)));
    const __m512i hs = _mm512_srlv_epi64(hb, up ? _mm512_setr_epi64(4, 4, 4, 4, 6, 6, 6, 6)
                                                : _mm512_setr_epi64(0, 0, 0, 0, 2, 2, 2, 2));
    const __m512i lo = _mm512_and_si512(up ? _mm512_srli_epi64(l, 4) : l, _mm512_set1_epi8(15));
    return _mm512_or_si512(lo, _mm512_slli_epi64(_mm512_and_si512(hs, _mm512_set1_epi8(3)), 4));
}

static void stage_row(const int kind, const uint8_t *w, size_t wbs, int nbc, wstage *s) {
    for (int b = 0; b < nbc; b++) {
        const uint8_t *x = w + (size_t)b * wbs;
        __m512i sv[4];
        if (kind == KQ_Q6K) {
            __m256i off;
            q6k_factors(x, sv, &off);
            _mm256_store_si256((__m256i *)(void *)s->off[b], off);
            s->d[b] = f16_at(x + offsetof(block_q6_k, d));
        } else {
            q45k_factors(x, sv, s->mins + 8 * b);
            s->d[b] = f16_at(x);
        }
        for (int q = 0; q < 4; q++) {
            _mm512_store_si512((void *)s->scales[b][q], sv[q]);
            _mm512_store_si512((void *)(s->codes[b] + 64 * q),
                               kind == KQ_Q6K ? q6k_run(x, q) : q45k_run(kind == KQ_Q5K, x, q));
        }
    }
    if (kind != KQ_Q6K)
        for (int e = 8 * nbc; e < NBK * 8 + 8; e++) s->mins[e] = 0.0f;
}

/* The products of a KR x J tile over nbc super-blocks of one k-chunk:
 * out[j][r] = sum over the chunk of row r . activation j.
 *
 * `direct` (decoding one sequence): the weights are unpacked in registers from
 * the rows wr[] as they are used, since with one activation row a staged copy
 * would be read only once.  Otherwise they come from the staging ws[].  Both
 * take the same integer sums and the same float steps in the same order, so a
 * row's result is the same bits either way: a sequence's tokens do not depend on
 * the batch it decodes in. */
INLINE void ktile(const int kind, const int J, const int direct, const wstage *ws, const uint8_t *const *wr,
                  size_t wbs, const astage *ast, int j0, int nbc, float out[KJ][KR]) {
    __m512 facc[KR][KJ];
    _Alignas(64) float dmins[KR][NBK * 8 + 8]; /* direct: dmin * min, as staged */
#pragma GCC unroll 4
    for (int r = 0; r < KR; r++)
#pragma GCC unroll 4
        for (int j = 0; j < J; j++) facc[r][j] = _mm512_setzero_ps();
    for (int b = 0; b < nbc; b++) {
        __m512i iacc[KR][KJ];
#pragma GCC unroll 4
        for (int r = 0; r < KR; r++) {
#pragma GCC unroll 4
            for (int j = 0; j < J; j++) iacc[r][j] = _mm512_setzero_si512();
            const uint8_t *x = direct ? wr[r] + (size_t)b * wbs : NULL;
            __m512i sv[4];
            __m256i off = _mm256_setzero_si256();
            if (direct) {
                if (kind == KQ_Q6K)
                    q6k_factors(x, sv, &off);
                else
                    q45k_factors(x, sv, dmins[r] + 8 * b);
            } else {
                if (kind == KQ_Q6K) off = _mm256_load_si256((const __m256i *)(const void *)ws[r].off[b]);
            }
#pragma GCC unroll 4
            for (int q = 0; q < 4; q++) {
                const __m512i w = direct ? (kind == KQ_Q6K ? q6k_run(x, q) : q45k_run(kind == KQ_Q5K, x, q))
                                         : _mm512_load_si512((const void *)(ws[r].codes[b] + 64 * q));
                const __m512i s = direct ? sv[q] : _mm512_load_si512((const void *)ws[r].scales[b][q]);
#pragma GCC unroll 4
                for (int j = 0; j < J; j++) {
                    const __m512i a = _mm512_load_si512((const void *)(ast->qs[j0 + j][b] + 64 * q));
                    iacc[r][j] = _mm512_dpwssd_epi32(iacc[r][j], _mm512_dpbusd_epi32(_mm512_setzero_si512(), w, a), s);
                }
            }
            if (kind == KQ_Q6K) {
                const __m512i o = _mm512_zextsi256_si512(off);
#pragma GCC unroll 4
                for (int j = 0; j < J; j++) {
                    const __m512i bs =
                        _mm512_zextsi256_si512(_mm256_load_si256((const __m256i *)(const void *)ast->bsums[j0 + j][b]));
                    iacc[r][j] = _mm512_dpwssd_epi32(iacc[r][j], o, bs);
                }
            }
#pragma GCC unroll 4
            for (int j = 0; j < J; j++) {
                const float d = direct ? f16_at(x + (kind == KQ_Q6K ? offsetof(block_q6_k, d) : 0)) : ws[r].d[b];
                const float p = d * ast->d[j0 + j][b];
                facc[r][j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(iacc[r][j]), _mm512_set1_ps(p), facc[r][j]);
            }
        }
    }
    if (kind != KQ_Q6K) {
        /* - dmin*min * d_y*bsum over the sub-blocks; both are zero-padded to an
         * even number of super-blocks */
        if (direct)
            for (int r = 0; r < KR; r++)
                for (int e = 8 * nbc; e < NBK * 8 + 8; e++) dmins[r][e] = 0.0f;
        for (int b = 0; b < nbc; b += 2)
#pragma GCC unroll 4
            for (int r = 0; r < KR; r++) {
                const __m512 m = _mm512_loadu_ps((direct ? dmins[r] : ws[r].mins) + 8 * b);
#pragma GCC unroll 4
                for (int j = 0; j < J; j++)
                    facc[r][j] = _mm512_fnmadd_ps(m, _mm512_loadu_ps(ast->mins[j0 + j] + 8 * b), facc[r][j]);
            }
    }
#pragma GCC unroll 4
    for (int j = 0; j < J; j++) _mm_storeu_ps(out[j], simd512_sum4(facc[0][j], facc[1][j], facc[2][j], facc[3][j]));
}

#define KTILE_FN(name, kind)                                                                                   \
    static void name(int J, int direct, const wstage *ws, const uint8_t *const *wr, size_t wbs,                \
                     const astage *ast, int j0, int nbc, float out[KJ][KR]) {                                  \
        if (direct) {                                                                                          \
            ktile(kind, 1, 1, ws, wr, wbs, ast, j0, nbc, out);                                                 \
            return;                                                                                            \
        }                                                                                                      \
        switch (J) {                                                                                           \
        case 1: ktile(kind, 1, 0, ws, wr, wbs, ast, j0, nbc, out); break;                                      \
        case 2: ktile(kind, 2, 0, ws, wr, wbs, ast, j0, nbc, out); break;                                      \
        default: ktile(kind, 3, 0, ws, wr, wbs, ast, j0, nbc, out); break;                                     \
        }                                                                                                      \
    }
KTILE_FN(ktile_q4k, KQ_Q4K)
KTILE_FN(ktile_q5k, KQ_Q5K)
KTILE_FN(ktile_q6k, KQ_Q6K)
_Static_assert(KJ == 3, "the tile functions have one case per activation count");

void avx512_gemm_k(uint32_t wtype, int64_t k, const void *Wv, size_t w_stride, int i0, int i1, const void *Av,
                   size_t a_stride, int n_a, float *C, int ldc) {
    const uint8_t *W = Wv, *A = Av;
    const int kind = wtype == GGT_Q4_K ? KQ_Q4K : wtype == GGT_Q5_K ? KQ_Q5K : KQ_Q6K;
    const size_t wbs = kind == KQ_Q4K ? sizeof(block_q4_k) : kind == KQ_Q5K ? sizeof(block_q5_k) : sizeof(block_q6_k);
    const int nb = (int)(k / QK_K);
    if (nb == 0) { /* empty rows: the products are 0, as the references give */
        for (int j = 0; j < n_a; j++)
            for (int i = i0; i < i1; i++) C[(size_t)j * (size_t)ldc + (size_t)i] = 0.0f;
        return;
    }
    /* one activation row: unpack in registers (see ktile); more: stage */
    const int direct = n_a == 1;
    _Alignas(64) wstage ws[KR];
    _Alignas(64) astage ast;
    for (int kb = 0; kb < nb; kb += NBK) {
        const int nbc = nb - kb < NBK ? nb - kb : NBK;
        for (int j0 = 0; j0 < n_a; j0 += KJC) {
            const int jc = n_a - j0 < KJC ? n_a - j0 : KJC;
            for (int j = 0; j < jc; j++)
                stage_acts(kind, A + (size_t)(j0 + j) * a_stride + (size_t)kb * Q8K_BYTES, nbc, &ast, j);
            for (int i = i0; i < i1; i += KR) {
                const int rn = i1 - i < KR ? i1 - i : KR;
                const uint8_t *wrow[KR];
                for (int r = 0; r < KR; r++) {
                    /* a short tile repeats its last row rather than needing its own kernel */
                    wrow[r] = W + (size_t)(i + (r < rn ? r : rn - 1)) * w_stride + (size_t)kb * wbs;
                    if (!direct) stage_row(kind, wrow[r], wbs, nbc, &ws[r]);
                }
                /* Ask for the next tile's weights now: decoding one sequence
                 * streams every weight once, and without this each super-block's
                 * first touch waits on memory. */
                if (i + KR < i1)
                    simd512_prefetch_rows(W + (size_t)(i + KR) * w_stride + (size_t)kb * wbs, w_stride,
                                          i1 - (i + KR) < KR ? i1 - (i + KR) : KR, (size_t)nbc * wbs);
                for (int jj = 0; jj < jc; jj += KJ) {
                    const int J = jc - jj < KJ ? jc - jj : KJ;
                    float out[KJ][KR];
                    if (kind == KQ_Q4K)
                        ktile_q4k(J, direct, ws, wrow, wbs, &ast, jj, nbc, out);
                    else if (kind == KQ_Q5K)
                        ktile_q5k(J, direct, ws, wrow, wbs, &ast, jj, nbc, out);
                    else
                        ktile_q6k(J, direct, ws, wrow, wbs, &ast, jj, nbc, out);
                    for (int j = 0; j < J; j++) {
                        float *c = C + (size_t)(j0 + jj + j) * (size_t)ldc + (size_t)i;
                        for (int r = 0; r < rn; r++) c[r] = kb ? c[r] + out[j][r] : out[j][r];
                    }
                }
            }
        }
    }
}
