/* quant_amx.c - AMX-INT8 matrix tiles for Q4_1 weights (built with AMX and
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
 * where isum_b is the exact integer dot product of the block's codes.  So a
 * sequence's results never depend on what else is in the batch (the engine's
 * promise), and they differ from the scalar reference only in rounding order.
 */
#include <immintrin.h>
#include <string.h>

#include "quant.h"
#include "quant_internal.h"

#define INLINE static inline __attribute__((always_inline))

#define TM 16    /* weight rows per tile (tile rows) */
#define TN 16    /* activation rows per tile (tile columns of int32) */
#define NBC 64   /* blocks per k-chunk: bounds the staged activation tiles */
#define GMAX 4   /* activation tiles staged together (64 rows) */

typedef struct tile_cfg {
    uint8_t palette, start_row;
    uint8_t reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} __attribute__((packed)) tile_cfg;

/* tmm0: products (TM x n int32), tmm1: weights (TM x 32 u8), tmm2: activations
 * (8 x 4n s8, four consecutive codes of each activation row per dword);
 * tmm3..5 the same again */
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
    for (int t = 3; t < 6; t++) { /* a second set, for a second block in flight */
        c.rows[t] = c.rows[t - 3];
        c.colsb[t] = c.colsb[t - 3];
    }
    _tile_loadconfig(&c);
}

/* Staged activations of one tile of n rows over nbc blocks: the B operand per
 * block, and the scales d and s with one lane per activation row. */
typedef struct act_stage {
    uint8_t b[NBC][QK / 4][64];
    float d[NBC][TN], s[NBC][TN];
} act_stage;

static void stage_acts(const uint8_t *A, size_t a_stride, int n, int kb, int nbc, act_stage *st) {
    memset(st->d, 0, sizeof st->d);
    memset(st->s, 0, sizeof st->s);
    for (int j = 0; j < n; j++) {
        const block_q8_1 *blk = (const block_q8_1 *)(const void *)(A + (size_t)j * a_stride) + kb;
        for (int b = 0; b < nbc; b++) {
            st->d[b][j] = _cvtsh_ss(blk[b].d);
            st->s[b][j] = _cvtsh_ss(blk[b].s);
            for (int kk = 0; kk < QK / 4; kk++) memcpy(&st->b[b][kk][4 * j], blk[b].qs + 4 * kk, 4);
        }
    }
}

/* The codes of block b of TM weight rows as bytes, element order (low nibbles
 * are elements 0..15, high nibbles 16..31), four rows per vector. */
INLINE void unpack_weights(const uint8_t *const *wrow, int b, uint8_t out[TM][QK]) {
    const __m512i lo4 = _mm512_set1_epi8(15);
    const __m512i i0 = _mm512_setr_epi64(0, 1, 8, 9, 2, 3, 10, 11), i1 = _mm512_setr_epi64(4, 5, 12, 13, 6, 7, 14, 15);
#pragma GCC unroll 4
    for (int r = 0; r < TM; r += 4) {
#define QS(x) _mm_loadu_si128((const __m128i *)(const void *)((const block_q4_1 *)(const void *)wrow[r + (x)] + b)->qs)
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
INLINE void update(const int32_t prod[TM][TN], const act_stage *st, int b, const float wd[TM][NBC],
                   const float wm[TM][NBC], __m512 acc[TM]) {
    const __m512 ad = _mm512_loadu_ps(st->d[b]), as = _mm512_loadu_ps(st->s[b]);
#pragma GCC unroll 16
    for (int r = 0; r < TM; r++) {
        const __m512 p = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_load_si512(prod[r])), ad);
        acc[r] = _mm512_fmadd_ps(p, _mm512_set1_ps(wd[r][b]), acc[r]);
        acc[r] = _mm512_fmadd_ps(_mm512_set1_ps(wm[r][b]), as, acc[r]);
    }
}

/* A single activation row (batch-1 decoding): the products come out as one
 * column, so lanes are the TM weight rows and the same per-element sequence
 * costs one vector per block instead of TM.  acc[0] holds the TM sums (and
 * continues from them). */
static void col_q4_1(const uint8_t *const *wrow, int rn, size_t w_stride, uint8_t wq[NBC][TM][QK],
                     const act_stage *st, int nbc, __m512 acc[TM]) {
    __attribute__((aligned(64))) int32_t prod[2][TM];
    const __m512i idx = _mm512_mullo_epi32(_mm512_min_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11,
                                                                            12, 13, 14, 15),
                                                            _mm512_set1_epi32(rn - 1)),
                                           _mm512_set1_epi32((int)w_stride));
    __m512 a = acc[0];
    /* two blocks in flight on the two sets of tiles */
    for (int b = 0; b < nbc; b += 2) {
        const int two = b + 1 < nbc;
        _tile_loadd(1, wq[b], QK);
        _tile_loadd(2, st->b[b], 64);
        _tile_zero(0);
        _tile_dpbusd(0, 1, 2);
        if (two) {
            _tile_loadd(4, wq[b + 1], QK);
            _tile_loadd(5, st->b[b + 1], 64);
            _tile_zero(3);
            _tile_dpbusd(3, 4, 5);
        }
        _tile_stored(0, prod[0], 4);
        if (two) _tile_stored(3, prod[1], 4);
        for (int h = 0; h <= two; h++) {
            /* d and m of block b+h of each row, one gathered dword per row */
            const __m512i g =
                _mm512_i32gather_epi32(idx, (const void *)((const block_q4_1 *)(const void *)wrow[0] + b + h), 1);
            const __m512 wd = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(g));
            const __m512 wm = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(g, 16)));
            const __m512 p =
                _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_load_si512(prod[h])), _mm512_set1_ps(st->d[b + h][0]));
            a = _mm512_fmadd_ps(p, wd, a);
            a = _mm512_fmadd_ps(wm, _mm512_set1_ps(st->s[b + h][0]), a);
        }
    }
    acc[0] = a;
}

/* Rows i0..i1 of W (Q4_1) times n_a activation rows (Q8_1). */
static void gemm_q4_1(int64_t k, const uint8_t *W, size_t w_stride, int i0, int i1, const uint8_t *A,
                      size_t a_stride, int n_a, float *C, int ldc) {
    const int nb = (int)(k / QK);
    if (nb == 0) {
        for (int j = 0; j < n_a; j++)
            for (int i = i0; i < i1; i++) C[(size_t)j * (size_t)ldc + (size_t)i] = 0.0f;
        return;
    }
    /* about 200 KiB in all: the staged activations, then one row group's
     * unpacked weights (NBC blocks) and scales */
    act_stage stage[GMAX];
    __attribute__((aligned(64))) uint8_t wq[NBC][TM][QK];
    __attribute__((aligned(64))) int32_t prod[2][TM][TN];
    __attribute__((aligned(64))) float wd[TM][NBC], wm[TM][NBC];
    int cfg_n = -1;
    for (int j0 = 0; j0 < n_a; j0 += GMAX * TN) {
        const int nj = n_a - j0 < GMAX * TN ? n_a - j0 : GMAX * TN;
        const int ng = (nj + TN - 1) / TN;
        for (int kb = 0; kb < nb; kb += NBC) {
            const int nbc = nb - kb < NBC ? nb - kb : NBC;
            for (int g = 0; g < ng; g++) {
                const int n = nj - g * TN < TN ? nj - g * TN : TN;
                stage_acts(A + (size_t)(j0 + g * TN) * a_stride, a_stride, n, kb, nbc, &stage[g]);
            }
            for (int i = i0; i < i1; i += TM) {
                const int rn = i1 - i < TM ? i1 - i : TM;
                const uint8_t *wrow[TM];
                for (int r = 0; r < TM; r++)
                    wrow[r] = W + (size_t)(i + (r < rn ? r : rn - 1)) * w_stride + (size_t)kb * sizeof(block_q4_1);
                for (int r = 0; n_a > 1 && r < TM; r++)
                    for (int b = 0; b < nbc; b++) {
                        const block_q4_1 *blk = (const block_q4_1 *)(const void *)wrow[r] + b;
                        wd[r][b] = _cvtsh_ss(blk->d);
                        wm[r][b] = _cvtsh_ss(blk->m);
                    }
                /* ask for the next row group's block b while unpacking this one's:
                 * spread out, the requests never fill the line-fill buffers */
                const int pf = i + TM < i1 ? (i1 - i - TM < TM ? i1 - i - TM : TM) : 0;
                for (int b = 0; b < nbc; b++) {
                    for (int r = 0; r < pf; r++)
                        _mm_prefetch((const char *)(wrow[r] + (size_t)TM * w_stride) + (size_t)b * sizeof(block_q4_1),
                                     _MM_HINT_T0);
                    unpack_weights(wrow, b, wq[b]);
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
                        col_q4_1(wrow, rn, w_stride, wq, &stage[0], nbc, acc);
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
                        update(prod[0], st, b, wd, wm, acc);
                        update(prod[1], st, b + 1, wd, wm, acc);
                    }
                    if (b < nbc) {
                        _tile_loadd(1, wq[b], QK);
                        _tile_loadd(2, st->b[b], 64);
                        _tile_zero(0);
                        _tile_dpbusd(0, 1, 2);
                        _tile_stored(0, prod[0], TN * 4);
                        update(prod[0], st, b, wd, wm, acc);
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

static void gemm_amx(uint32_t wtype, int64_t k, const void *W, size_t w_stride, int i0, int i1, const void *A,
                     size_t a_stride, int n_a, float *C, int ldc) {
    if (wtype == GGT_Q4_1)
        gemm_q4_1(k, W, w_stride, i0, i1, A, a_stride, n_a, C, ldc);
    else
        kvs_quant_avx512_kernels.gemm(wtype, k, W, w_stride, i0, i1, A, a_stride, n_a, C, ldc);
}

/* A single product goes through the tiles too, so it equals the matrix's. */
static float dot_amx(uint32_t wtype, int64_t n, const void *w, const void *a) {
    if (wtype != GGT_Q4_1) return kvs_quant_avx512_kernels.dot(wtype, n, w, a);
    float c = 0.0f;
    gemm_q4_1(n, w, 0, 0, 1, a, 0, 1, &c, 1);
    return c;
}

const quant_kernels kvs_quant_amx_kernels = {
    "amx", kvs_avx2_to_float, kvs_avx2_from_float, dot_amx, gemm_amx,
};
