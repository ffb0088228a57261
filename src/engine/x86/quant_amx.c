/* quant_amx.c - AMX-INT8 matrix tiles for Q4_0, Q4_1, Q8_0 and Q4_K weights (built with AMX and
 * AVX-512 flags; only called after quant.c has checked the CPU and the kernel
 * has granted this process the tile state).
 *
 * Why a separate set: one AMX tile multiply does 16 x 16 x 32 multiply-adds,
 * 128 times what one VNNI instruction does, so batched decoding and prompt
 * processing stop being bound by the integer products.
 *
 * Every output element is computed by one fixed sequence of float operations,
 * whatever the number of activation rows and whichever vector direction a tile
 * uses: for each block b in order,
 *     acc = fma(float(isum_b) * d_a, d_w, acc);   acc = fma(m_w, s_a, acc)
 * where isum_b is the exact integer dot product of the block's codes (the
 * second step only for Q4_1's offset m).  Q4_K is read as blocks of 32 too: its
 * sub-blocks, each with d_w = d * scale (exact in float: an fp16 times a 6-bit
 * integer), m_w = -(dmin * min), and the Q8_K activation's d and d * (the
 * sub-block's code sum) as d_a and s_a.  Its bits so differ from the AVX-512
 * set's, which sums a super-block's sub-blocks in other lanes (the K-quants'
 * own numerics fingerprint under this set).  Tiles multiply unsigned by signed
 * bytes: Q4 nibbles are unsigned as stored, Q8_0 weights are made unsigned by
 * adding 128, and the offsets (Q4_0's -8, Q8_0's +128) come off the integer
 * sums exactly, as offset * (sum of the block's activation codes).  So a
 * sequence's results never depend on what else is in the batch (the engine's
 * promise), and they differ from the scalar reference only in rounding order.
 */
#include <immintrin.h>
#include <string.h>

#include "engine/lanes.h"
#include "engine/ggtype.h"
#include "engine/quant_blocks.h"
#include "engine/quant_internal.h"
#include "engine/quant_ref.h"

#define INLINE static inline __attribute__((always_inline))

#define TM 16    /* weight rows per tile (tile rows) */
#define TN 16    /* activation rows per tile (tile columns of int32) */
#define NBC 64   /* blocks per k-chunk: bounds the staged activation tiles */
#define GMAX 4   /* activation tiles staged together (64 rows) */

enum { K_Q4_0, K_Q4_1, K_Q8_0, K_Q4_K };

#define SBK 8 /* Q4_K: 32-wide sub-blocks per super-block */

typedef struct tile_cfg {
    uint8_t palette, start_row;
    uint8_t reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} __attribute__((packed)) tile_cfg;

/* tmm0: products (TM x n int32), tmm1: weights (TM x 32 u8), tmm2: activations
 * (8 x 4n s8, four consecutive codes of each activation row per dword);
 * tmm3..5 the same again, for a second block in flight */
static void configure(int n) {
    tile_cfg c;
    memset(&c, 0, sizeof c);
    c.palette = 1;
    c.rows[0] = TM;
    c.colsb[0] = (uint16_t)(n * 4);
    c.rows[1] = TM;
    c.colsb[1] = QK;
    c.rows[2] = QK / 4;
    c.colsb[2] = (uint16_t)(n * 4);
    for (int t = 3; t < 6; t++) {
        c.rows[t] = c.rows[t - 3];
        c.colsb[t] = c.colsb[t - 3];
    }
    /* not _tile_loadconfig: GCC 12's version tells the compiler it reads only 8
     * bytes, and then the stores above may be dropped as dead */
    __asm__ volatile("ldtilecfg %0" : : "m"(c));
}

INLINE size_t w_bytes(int kind) {
    return kind == K_Q4_0 ? sizeof(block_q4_0) : kind == K_Q4_1 ? sizeof(block_q4_1) : sizeof(block_q8_0);
}
/* Byte offsets in a weight row and in an activation row of the block (for Q4_K,
 * the super-block) that holds block b; a k-chunk starts on a super-block. */
INLINE size_t w_off(int kind, int b) {
    return kind == K_Q4_K ? (size_t)(b / SBK) * sizeof(block_q4_k) : (size_t)b * w_bytes(kind);
}
INLINE size_t a_off(int kind, int b) {
    return kind == K_Q4_K   ? (size_t)(b / SBK) * sizeof(block_q8_k)
           : kind == K_Q4_1 ? (size_t)b * sizeof(block_q8_1)
                            : (size_t)b * sizeof(block_q8_0);
}
/* the offset of the stored weight codes over the true ones */
INLINE int w_offset(int kind) { return kind == K_Q4_0 ? 8 : kind == K_Q8_0 ? 128 : 0; }
/* a per-block weight term m_w (Q4_1's m, Q4_K's -dmin * min) */
INLINE int has_min(int kind) { return kind == K_Q4_1 || kind == K_Q4_K; }
/* Offsets that touch every line of a Q4_K super-block (144 bytes span at most
 * four), for prefetching it one line per request */
static const short q4k_line[4] = {0, 64, 128, 143};
/* Q4_K sub-block b's 32 codes are the low (b even) or high nibbles of these bytes */
INLINE const uint8_t *q4k_codes(const uint8_t *x, int b) {
    return x + offsetof(block_q4_k, qs) + 32 * ((b % SBK) / 2);
}

/* Staged activations of one tile of n rows over nbc blocks: the B operand per
 * block, and per activation row (one lane each) the scale d, Q8_1's s, and the
 * integer correction offset * (sum of codes). */
typedef struct act_stage {
    uint8_t b[NBC][QK / 4][64];
    float d[NBC][TN], s[NBC][TN];
    int32_t corr[NBC][TN];
} act_stage;

static void stage_acts(int kind, const uint8_t *A, size_t a_stride, int n, int kb, int nbc, act_stage *st) {
    memset(st->d, 0, sizeof st->d);
    memset(st->s, 0, sizeof st->s);
    memset(st->corr, 0, sizeof st->corr);
    const int off = w_offset(kind);
    for (int j = 0; j < n; j++) {
        const uint8_t *row = A + (size_t)j * a_stride;
        for (int b = 0; b < nbc; b++) {
            const int8_t *qs;
            if (kind == K_Q4_K) {
                const uint8_t *y = row + a_off(kind, kb + b);
                const int s = (kb + b) % SBK;
                st->d[b][j] = q8k_d(y);
                st->s[b][j] = st->d[b][j] * (float)(q8k_bsum(y, 2 * s) + q8k_bsum(y, 2 * s + 1));
                qs = q8k_qs(y) + 32 * s;
            } else if (kind == K_Q4_1) {
                const block_q8_1 *blk = (const block_q8_1 *)(const void *)row + kb + b;
                st->d[b][j] = _cvtsh_ss(blk->d);
                st->s[b][j] = _cvtsh_ss(blk->s);
                qs = blk->qs;
            } else {
                const block_q8_0 *blk = (const block_q8_0 *)(const void *)row + kb + b;
                st->d[b][j] = _cvtsh_ss(blk->d);
                qs = blk->qs;
                int sum = 0;
                for (int x = 0; x < QK; x++) sum += qs[x];
                st->corr[b][j] = off * sum;
            }
            for (int kk = 0; kk < QK / 4; kk++) memcpy(&st->b[b][kk][4 * j], qs + 4 * kk, 4);
        }
    }
}

/* The codes of block b of TM weight rows as unsigned bytes in element order
 * (Q4: low nibbles are elements 0..15, high nibbles 16..31). */
INLINE void unpack_weights(const int kind, const uint8_t *const *wrow, int b, uint8_t out[TM][QK]) {
    const size_t wbs = w_bytes(kind);
    if (kind == K_Q4_K) {
        const __m512i lo4 = _mm512_set1_epi8(15);
        const int sh = 4 * (b % 2);
#pragma GCC unroll 8
        for (int r = 0; r < TM; r += 2) {
            const __m256i a = _mm256_loadu_si256((const __m256i *)(const void *)q4k_codes(wrow[r] + w_off(kind, b), b));
            const __m256i c = _mm256_loadu_si256((const __m256i *)(const void *)q4k_codes(wrow[r + 1] + w_off(kind, b), b));
            const __m512i q = _mm512_inserti64x4(_mm512_castsi256_si512(a), c, 1);
            _mm512_store_si512((void *)out[r], _mm512_and_si512(_mm512_srli_epi16(q, (unsigned)sh), lo4));
        }
        return;
    }
    if (kind == K_Q8_0) {
        const __m512i flip = _mm512_set1_epi8((char)0x80);
#pragma GCC unroll 8
        for (int r = 0; r < TM; r += 2) {
            const __m256i a = _mm256_loadu_si256((const __m256i *)(const void *)(wrow[r] + (size_t)b * wbs + 2));
            const __m256i c = _mm256_loadu_si256((const __m256i *)(const void *)(wrow[r + 1] + (size_t)b * wbs + 2));
            const __m512i q = _mm512_inserti64x4(_mm512_castsi256_si512(a), c, 1);
            _mm512_store_si512((void *)out[r], _mm512_xor_si512(q, flip));
        }
        return;
    }
    const size_t qo = kind == K_Q4_1 ? 4 : 2;
    const __m512i lo4 = _mm512_set1_epi8(15);
    const __m512i i0 = _mm512_setr_epi64(0, 1, 8, 9, 2, 3, 10, 11), i1 = _mm512_setr_epi64(4, 5, 12, 13, 6, 7, 14, 15);
#pragma GCC unroll 4
    for (int r = 0; r < TM; r += 4) {
#define QS(x) _mm_loadu_si128((const __m128i *)(const void *)(wrow[r + (x)] + (size_t)b * wbs + qo))
        __m512i q = _mm512_castsi128_si512(QS(0));
        q = _mm512_inserti32x4(q, QS(1), 1);
        q = _mm512_inserti32x4(q, QS(2), 2);
        q = _mm512_inserti32x4(q, QS(3), 3);
#undef QS
        const __m512i lo = _mm512_and_si512(q, lo4), hi = _mm512_and_si512(_mm512_srli_epi16(q, 4), lo4);
        _mm512_store_si512((void *)out[r], _mm512_permutex2var_epi64(lo, i0, hi));
        _mm512_store_si512((void *)out[r + 2], _mm512_permutex2var_epi64(lo, i1, hi));
    }
}

/* One block's products (tile rows = weight rows, lanes = activation rows) into
 * the running sums: the fixed per-element sequence of the file comment. */
INLINE void update(const int kind, const int32_t prod[TM][TN], const act_stage *st, int b, const float wd[TM][NBC],
                   const float wm[TM][NBC], __m512 acc[TM]) {
    const __m512 ad = _mm512_loadu_ps(st->d[b]), as = _mm512_loadu_ps(st->s[b]);
    const __m512i corr = _mm512_loadu_si512(st->corr[b]);
#pragma GCC unroll 16
    for (int r = 0; r < TM; r++) {
        __m512i isum = _mm512_load_si512(prod[r]);
        if (!has_min(kind)) isum = _mm512_sub_epi32(isum, corr);
        const __m512 p = _mm512_mul_ps(_mm512_cvtepi32_ps(isum), ad);
        acc[r] = _mm512_fmadd_ps(p, _mm512_set1_ps(wd[r][b]), acc[r]);
        if (has_min(kind)) acc[r] = _mm512_fmadd_ps(_mm512_set1_ps(wm[r][b]), as, acc[r]);
    }
}

/* The one-row paths' two shared steps.  Each of the TM rows' byte offset from
 * row 0 (rows past rn repeat the last), for gathering per-row fields. */
INLINE __m512i row_offsets(int rn, size_t w_stride) {
    return _mm512_mullo_epi32(_mm512_min_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                               _mm512_set1_epi32(rn - 1)),
                              _mm512_set1_epi32((int)w_stride));
}

/* Four vectors of four rows x four partial sums (a 128-bit lane per row) folded
 * into one sum per row, lanes = the sixteen rows: 4 rows x 4 partials (two
 * vectors) -> 8 rows x 2, then -> 16 rows x 1.  Integer adds: exact in any order. */
INLINE __m512i fold_rows(const __m512i p[4]) {
    const __m512i fa = _mm512_setr_epi32(0, 1, 4, 5, 8, 9, 12, 13, 16, 17, 20, 21, 24, 25, 28, 29);
    const __m512i fb = _mm512_add_epi32(fa, _mm512_set1_epi32(2));
    const __m512i fc = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i fd = _mm512_add_epi32(fc, _mm512_set1_epi32(1));
    const __m512i x01 = _mm512_add_epi32(_mm512_permutex2var_epi32(p[0], fa, p[1]), _mm512_permutex2var_epi32(p[0], fb, p[1]));
    const __m512i x23 = _mm512_add_epi32(_mm512_permutex2var_epi32(p[2], fa, p[3]), _mm512_permutex2var_epi32(p[2], fb, p[3]));
    return _mm512_add_epi32(_mm512_permutex2var_epi32(x01, fc, x23), _mm512_permutex2var_epi32(x01, fd, x23));
}

/* A single activation row (batch-1 decoding), without tiles: lanes are the TM
 * weight rows, and the same exact integer sum per (row, block) comes from VNNI
 * instructions, then the same float sequence, so the results are the tiles'
 * bit for bit -- and batch-1 decoding, which streams every weight once per
 * token, skips the unpacking a tile operand needs (a tile column measured 14%
 * slower than the VNNI tiles; this is faster than both).  Four rows
 * share a vector (one 128-bit lane each): the low nibbles (bytes 0..15 for
 * Q8_0) meet activation codes 0..15, the high nibbles (bytes 16..31) codes
 * 16..31, leaving four partial sums per row, which two rounds of pairwise
 * adds fold into one lane per row. */
INLINE void column_vnni(const int kind, const uint8_t *const *wrow, int rn, size_t w_stride, const uint8_t *arow,
                        const act_stage *st, int nbc, __m512 *acc) {
    const size_t wbs = w_bytes(kind);
    const size_t abs_ = kind == K_Q4_1 ? sizeof(block_q8_1) : sizeof(block_q8_0), aqo = kind == K_Q4_1 ? 4 : 2;
    const size_t qo = kind == K_Q4_1 ? 4 : 2;
    const __m512i idx = row_offsets(rn, w_stride);
    const __m512i lo4 = _mm512_set1_epi8(15), flip = _mm512_set1_epi8((char)0x80);
    __m512 a = *acc;
    for (int b = 0; b < nbc; b++) {
        const uint8_t *aq = arow + (size_t)b * abs_ + aqo;
        const __m512i alo = _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)(const void *)aq));
        const __m512i ahi = _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)(const void *)(aq + 16)));
        __m512i part[4];
#pragma GCC unroll 4
        for (int v = 0; v < 4; v++) {
            const uint8_t *const *w = wrow + 4 * v;
            const size_t o = (size_t)b * wbs + qo;
#define L(x, d) _mm_loadu_si128((const __m128i *)(const void *)(w[x] + o + (d)))
            __m512i lo, hi;
            if (kind == K_Q8_0) {
                lo = _mm512_inserti32x4(_mm512_castsi128_si512(L(0, 0)), L(1, 0), 1);
                lo = _mm512_inserti32x4(_mm512_inserti32x4(lo, L(2, 0), 2), L(3, 0), 3);
                hi = _mm512_inserti32x4(_mm512_castsi128_si512(L(0, 16)), L(1, 16), 1);
                hi = _mm512_inserti32x4(_mm512_inserti32x4(hi, L(2, 16), 2), L(3, 16), 3);
                lo = _mm512_xor_si512(lo, flip);
                hi = _mm512_xor_si512(hi, flip);
            } else {
                __m512i q = _mm512_inserti32x4(_mm512_castsi128_si512(L(0, 0)), L(1, 0), 1);
                q = _mm512_inserti32x4(_mm512_inserti32x4(q, L(2, 0), 2), L(3, 0), 3);
                lo = _mm512_and_si512(q, lo4);
                hi = _mm512_and_si512(_mm512_srli_epi16(q, 4), lo4);
            }
#undef L
            part[v] = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), lo, alo), hi, ahi);
        }
        __m512i isum = fold_rows(part);
        /* the per-element sequence of the file comment, lanes = rows */
        const __m512i g = _mm512_i32gather_epi32(idx, (const void *)(wrow[0] + (size_t)b * wbs), 1);
        const __m512 wd = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(g));
        if (kind != K_Q4_1) isum = _mm512_sub_epi32(isum, _mm512_set1_epi32(st->corr[b][0]));
        const __m512 p = _mm512_mul_ps(_mm512_cvtepi32_ps(isum), _mm512_set1_ps(st->d[b][0]));
        a = _mm512_fmadd_ps(p, wd, a);
        if (kind == K_Q4_1) {
            const __m512 wm = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(g, 16)));
            a = _mm512_fmadd_ps(wm, _mm512_set1_ps(st->s[b][0]), a);
        }
    }
    *acc = a;
}

/* Q4_K's factors of a row group's chunk (nbc sub-blocks, whole super-blocks),
 * for the tiles: d_w = d * scale and m_w = -(dmin * min) per (row, sub-block). */
static void q4k_factors(const uint8_t *const *wrow, int nbc, float wd[TM][NBC], float wm[TM][NBC]) {
    for (int r = 0; r < TM; r++)
        for (int b = 0; b < nbc; b += SBK) {
            const uint8_t *x = wrow[r] + w_off(K_Q4_K, b);
            uint64_t sc, mn;
            k_scales(x + offsetof(block_q4_k, scales), &sc, &mn);
            const __m256 d = _mm256_set1_ps(_cvtsh_ss(((const block_q4_k *)(const void *)x)->d));
            const __m256 dmin = _mm256_set1_ps(-_cvtsh_ss(((const block_q4_k *)(const void *)x)->dmin));
            _mm256_storeu_ps(&wd[r][b], _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_cvtsi64_si128((long long)sc)))));
            _mm256_storeu_ps(&wm[r][b], _mm256_mul_ps(dmin, _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_cvtsi64_si128((long long)mn)))));
        }
}

/* The same factors for the one-row path, lanes = the TM rows: super-block x of
 * each row through gathers (`idx`: each row's byte offset from row 0), k_scales'
 * rule lane by lane.  The same float values as q4k_factors: d and dmin exact, the
 * products of the same operands. */
INLINE void q4k_factors_lanes(const uint8_t *x0, __m512i idx, __m512 wd[SBK], __m512 wm[SBK]) {
    const __m512i g = _mm512_i32gather_epi32(idx, (const void *)x0, 1); /* d | dmin << 16 */
    const __m512i u0 = _mm512_i32gather_epi32(idx, (const void *)(x0 + offsetof(block_q4_k, scales)), 1);
    const __m512i u1 = _mm512_i32gather_epi32(idx, (const void *)(x0 + offsetof(block_q4_k, scales) + 4), 1);
    const __m512i u2 = _mm512_i32gather_epi32(idx, (const void *)(x0 + offsetof(block_q4_k, scales) + 8), 1);
    const __m512 d = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(g));
    /* -dmin as q4k_factors negates it: the sign bit flipped (0 - x would give +0 for 0) */
    const __m512 dmin = _mm512_castsi512_ps(_mm512_xor_si512(
        _mm512_castps_si512(_mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(g, 16)))), _mm512_set1_epi32(INT32_MIN)));
    const __m512i m6 = _mm512_set1_epi32(63), m4 = _mm512_set1_epi32(15), m2 = _mm512_set1_epi32(3);
#pragma GCC unroll 8
    for (int s = 0; s < SBK; s++) {
        __m512i sc, mn;
        if (s < 4) {
            sc = _mm512_and_si512(_mm512_srli_epi32(u0, 8 * s), m6);
            mn = _mm512_and_si512(_mm512_srli_epi32(u1, 8 * s), m6);
        } else {
            const unsigned t = 8 * (unsigned)(s - 4);
            sc = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi32(u2, t), m4),
                                 _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(u0, t + 6), m2), 4));
            mn = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi32(u2, t + 4), m4),
                                 _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(u1, t + 6), m2), 4));
        }
        wd[s] = _mm512_mul_ps(d, _mm512_cvtepi32_ps(sc));
        wm[s] = _mm512_mul_ps(dmin, _mm512_cvtepi32_ps(mn));
    }
}

/* column_vnni for Q4_K: two sub-blocks at a time, since sub-blocks 2q and 2q+1
 * share their 32 bytes (low and high nibbles); then each sub-block's float
 * steps in order, as the tiles take them. */
INLINE void column_q4k(const uint8_t *const *wrow, int rn, size_t w_stride, int pf, const uint8_t *arow,
                       const act_stage *st, int nbc, __m512 *acc) {
    const __m512i idx = row_offsets(rn, w_stride);
    __m512 wd[SBK], wm[SBK];
    const __m512i lo4 = _mm512_set1_epi8(15);
    __m512 a = *acc;
    for (int b = 0; b < nbc; b += 2) {
        if (b % SBK == 0) q4k_factors_lanes(wrow[0] + w_off(K_Q4_K, b), idx, wd, wm);
        /* the next row group's super-block, one line per row for each sub-block
         * pair: a burst of them ahead of the products stalled on the line-fill
         * buffers */
        for (int r = 0; r < pf; r++)
            _mm_prefetch((const char *)(wrow[r] + (size_t)TM * w_stride) + w_off(K_Q4_K, b) + q4k_line[(b % SBK) / 2],
                         _MM_HINT_T1);
        const int8_t *aq = q8k_qs(arow + a_off(K_Q4_K, b)) + 32 * (b % SBK);
#define A16(o) _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)(const void *)(aq + (o))))
        const __m512i e0 = A16(0), e1 = A16(16), o0 = A16(32), o1 = A16(48);
#undef A16
        __m512i pe[4], po[4];
#pragma GCC unroll 4
        for (int v = 0; v < 4; v++) {
            const uint8_t *const *w = wrow + 4 * v;
            /* merge-masked broadcast loads rather than inserts, to leave the
             * shuffle port to the folds (measured no faster or slower here) */
#define L(x, d) _mm_loadu_si128((const __m128i *)(const void *)(q4k_codes(w[x] + w_off(K_Q4_K, b), b) + (d)))
#define M(v, m, x, d) _mm512_mask_broadcast_i32x4(v, m, L(x, d))
            __m512i x0 = _mm512_castsi128_si512(L(0, 0)), x1 = _mm512_castsi128_si512(L(0, 16));
            x0 = M(M(M(x0, 0x00f0, 1, 0), 0x0f00, 2, 0), 0xf000, 3, 0);
            x1 = M(M(M(x1, 0x00f0, 1, 16), 0x0f00, 2, 16), 0xf000, 3, 16);
#undef M
#undef L
            pe[v] = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_and_si512(x0, lo4), e0),
                                        _mm512_and_si512(x1, lo4), e1);
            po[v] = _mm512_dpbusd_epi32(
                _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_and_si512(_mm512_srli_epi16(x0, 4), lo4), o0),
                _mm512_and_si512(_mm512_srli_epi16(x1, 4), lo4), o1);
        }
#pragma GCC unroll 2
        for (int h = 0; h < 2; h++) {
            const __m512i isum = fold_rows(h ? po : pe);
            const __m512 prod = _mm512_mul_ps(_mm512_cvtepi32_ps(isum), _mm512_set1_ps(st->d[b + h][0]));
            a = _mm512_fmadd_ps(prod, wd[(b + h) % SBK], a);
            a = _mm512_fmadd_ps(wm[(b + h) % SBK], _mm512_set1_ps(st->s[b + h][0]), a);
        }
    }
    *acc = a;
}

/* Rows i0..i1 of W times n_a activation rows (Q8_1 for Q4_1, else Q8_0). */
INLINE void gemm_kind(const int kind, int64_t k, const uint8_t *W, size_t w_stride, int i0, int i1,
                      const uint8_t *A, size_t a_stride, int n_a, float *C, int ldc) {
    const int nb = (int)(k / QK);
    const size_t wbs = w_bytes(kind);
    if (nb == 0) {
        for (int j = 0; j < n_a; j++)
            for (int i = i0; i < i1; i++) C[(size_t)j * (size_t)ldc + (size_t)i] = 0.0f;
        return;
    }
    /* about 220 KiB in all: the staged activations, then one row group's
     * unpacked weights (NBC blocks) and scales */
    act_stage stage[GMAX];
    __attribute__((aligned(64))) uint8_t wq[NBC][TM][QK];
    __attribute__((aligned(64))) int32_t prod[2][TM][TN];
    __attribute__((aligned(64))) float wd[TM][NBC], wm[TM][NBC];
    int cfg_n = -1;
    const __m512i bidx = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                            _mm512_set1_epi32((int)wbs));
    for (int j0 = 0; j0 < n_a; j0 += GMAX * TN) {
        const int nj = n_a - j0 < GMAX * TN ? n_a - j0 : GMAX * TN;
        const int ng = (nj + TN - 1) / TN;
        for (int kb = 0; kb < nb; kb += NBC) {
            const int nbc = nb - kb < NBC ? nb - kb : NBC;
            for (int g = 0; g < ng; g++) {
                const int n = nj - g * TN < TN ? nj - g * TN : TN;
                stage_acts(kind, A + (size_t)(j0 + g * TN) * a_stride, a_stride, n, kb, nbc, &stage[g]);
            }
            for (int i = i0; i < i1; i += TM) {
                const int rn = i1 - i < TM ? i1 - i : TM;
                const uint8_t *wrow[TM];
                for (int r = 0; r < TM; r++)
                    wrow[r] = W + (size_t)(i + (r < rn ? r : rn - 1)) * w_stride + w_off(kind, kb);
                if (kind == K_Q4_K && n_a > 1) q4k_factors(wrow, nbc, wd, wm);
                /* the rows' scales as dense floats, sixteen blocks per gather of
                 * each block's first dword (d, then Q4_1's m) */
                for (int r = 0; kind != K_Q4_K && n_a > 1 && r < TM; r++)
                    for (int b = 0; b < nbc; b += 16) {
                        const __mmask16 m = nbc - b >= 16 ? 0xffff : (__mmask16)((1u << (nbc - b)) - 1);
                        const __m512i g = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), m, bidx,
                                                                      (const void *)(wrow[r] + (size_t)b * wbs), 1);
                        _mm512_store_ps(&wd[r][b], _mm512_cvtph_ps(_mm512_cvtepi32_epi16(g)));
                        if (kind == K_Q4_1)
                            _mm512_store_ps(&wm[r][b], _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(g, 16))));
                    }
                /* ask for the next row group's block b while unpacking this one's:
                 * spread out, the requests never fill the line-fill buffers */
                const int pf = i + TM < i1 ? (i1 - i - TM < TM ? i1 - i - TM : TM) : 0;
                for (int b = 0; b < nbc; b++) {
                    /* (Q4_K: one request per line of a super-block, from its first
                     * four sub-blocks; one row's requests are column_q4k's own) */
                    const int pfb = kind == K_Q4_K && (n_a == 1 || b % SBK >= 4) ? 0 : pf;
                    const size_t po = kind != K_Q4_K ? (size_t)b * wbs
                                      : pfb        ? w_off(kind, b) + (size_t)q4k_line[b % SBK]
                                                   : 0;
                    for (int r = 0; r < pfb; r++)
                        _mm_prefetch((const char *)(wrow[r] + (size_t)TM * w_stride) + po, _MM_HINT_T1);
                    if (n_a > 1) unpack_weights(kind, wrow, b, wq[b]);
                }
                for (int g = 0; g < ng; g++) {
                    const int n = nj - g * TN < TN ? nj - g * TN : TN;
                    if (n != cfg_n) {
                        configure(n);
                        cfg_n = n;
                    }
                    /* the chain continues from the previous k-chunk's partial sums */
                    __m512 acc[TM];
                    if (n_a == 1) { /* one activation row: lanes are weight rows instead */
                        float t[TM] = {0};
                        for (int r = 0; kb && r < rn; r++) t[r] = C[i + r];
                        acc[0] = _mm512_loadu_ps(t);
                        if (kind == K_Q4_K)
                            column_q4k(wrow, rn, w_stride, pf, A + a_off(kind, kb), &stage[0], nbc, &acc[0]);
                        else
                            column_vnni(kind, wrow, rn, w_stride, A + a_off(kind, kb), &stage[0], nbc, &acc[0]);
                        _mm512_storeu_ps(t, acc[0]);
                        for (int r = 0; r < rn; r++) C[i + r] = t[r];
                        continue;
                    }
                    for (int r = 0; r < TM; r++) {
                        float t[TN] = {0};
                        if (kb && r < rn)
                            for (int j = 0; j < n; j++) t[j] = C[(size_t)(j0 + g * TN + j) * (size_t)ldc + (size_t)(i + r)];
                        acc[r] = _mm512_loadu_ps(t);
                    }
                    const act_stage *st = &stage[g];
                    /* two blocks in flight on two sets of tiles */
                    int b = 0;
                    for (; b + 2 <= nbc; b += 2) {
                        _tile_loadd(1, wq[b], QK);
                        _tile_loadd(2, st->b[b], 64);
                        _tile_zero(0);
                        _tile_dpbusd(0, 1, 2);
                        _tile_loadd(4, wq[b + 1], QK);
                        _tile_loadd(5, st->b[b + 1], 64);
                        _tile_zero(3);
                        _tile_dpbusd(3, 4, 5);
                        _tile_stored(0, prod[0], TN * 4);
                        _tile_stored(3, prod[1], TN * 4);
                        update(kind, prod[0], st, b, wd, wm, acc);
                        update(kind, prod[1], st, b + 1, wd, wm, acc);
                    }
                    if (b < nbc) {
                        _tile_loadd(1, wq[b], QK);
                        _tile_loadd(2, st->b[b], 64);
                        _tile_zero(0);
                        _tile_dpbusd(0, 1, 2);
                        _tile_stored(0, prod[0], TN * 4);
                        update(kind, prod[0], st, b, wd, wm, acc);
                    }
                    for (int r = 0; r < rn; r++) {
                        float t[TN];
                        _mm512_storeu_ps(t, acc[r]);
                        for (int j = 0; j < n; j++) C[(size_t)(j0 + g * TN + j) * (size_t)ldc + (size_t)(i + r)] = t[j];
                    }
                }
            }
        }
    }
    _tile_release();
}

static void gemm_q4_0(int64_t k, const uint8_t *W, size_t ws, int i0, int i1, const uint8_t *A, size_t as, int n_a,
                      float *C, int ldc) {
    gemm_kind(K_Q4_0, k, W, ws, i0, i1, A, as, n_a, C, ldc);
}
static void gemm_q4_1(int64_t k, const uint8_t *W, size_t ws, int i0, int i1, const uint8_t *A, size_t as, int n_a,
                      float *C, int ldc) {
    gemm_kind(K_Q4_1, k, W, ws, i0, i1, A, as, n_a, C, ldc);
}
static void gemm_q8_0(int64_t k, const uint8_t *W, size_t ws, int i0, int i1, const uint8_t *A, size_t as, int n_a,
                      float *C, int ldc) {
    gemm_kind(K_Q8_0, k, W, ws, i0, i1, A, as, n_a, C, ldc);
}

static void gemm_q4_k(int64_t k, const uint8_t *W, size_t ws, int i0, int i1, const uint8_t *A, size_t as, int n_a,
                      float *C, int ldc) {
    gemm_kind(K_Q4_K, k, W, ws, i0, i1, A, as, n_a, C, ldc);
}

static void gemm_amx(uint32_t wtype, int64_t k, const void *W, size_t w_stride, int i0, int i1, const void *A,
                     size_t a_stride, int n_a, float *C, int ldc) {
    switch (wtype) {
    case GGT_Q4_0: gemm_q4_0(k, W, w_stride, i0, i1, A, a_stride, n_a, C, ldc); return;
    case GGT_Q4_1: gemm_q4_1(k, W, w_stride, i0, i1, A, a_stride, n_a, C, ldc); return;
    case GGT_Q8_0: gemm_q8_0(k, W, w_stride, i0, i1, A, a_stride, n_a, C, ldc); return;
    case GGT_Q4_K: gemm_q4_k(k, W, w_stride, i0, i1, A, a_stride, n_a, C, ldc); return;
    default: quant_avx512_kernels.gemm(wtype, k, W, w_stride, i0, i1, A, a_stride, n_a, C, ldc); return;
    }
}

/* The types with tiles of their own here.  Q5_0 and Q5_1 go to the AVX-512
 * tiles, which read them faster in the lanes layouts; Q6_K too (its 16-wide
 * sub-blocks would halve what a tile multiply does), and Q5_K, which no file
 * this project runs has (its sub-blocks are Q4_K's, plus a bit plane). */
static int amx_owns(uint32_t type) {
    return type == GGT_Q4_0 || type == GGT_Q4_1 || type == GGT_Q8_0 || type == GGT_Q4_K;
}

static uint32_t amx_lanes(uint32_t type) { return amx_owns(type) ? 0 : quant_lanes_of(type); }

/* A single product goes through the tiles too, so it equals the matrix's. */
static float dot_amx(uint32_t wtype, int64_t n, const void *w, const void *a) {
    if (!amx_owns(wtype)) return quant_avx512_kernels.dot(wtype, n, w, a);
    float c = 0.0f;
    gemm_amx(wtype, n, w, 0, 0, 1, a, 0, 1, &c, 1);
    return c;
}

const quant_kernels quant_amx_kernels = {
    "amx", avx2_to_float, avx2_from_float, dot_amx, gemm_amx, amx_lanes,
};
