/* attn_vec.h - the tile attention driver (scores, softmax, weighted sum), its
 * score loop and weighted-sum blocks, written once for both vector widths.
 * Included by attn_avx2.c and attn_avx512.c after they define VEC (the vector
 * type), LANES (floats per vector), CMAX (vectors per wide chunk of the head
 * dimension), ZERO, LOAD, STORE, BCAST, FMA, SUM4 (four vectors' sums as one
 * __m128, each width's own fixed tree) and INLINE, and their softmax().
 *
 * Each value row chunk is loaded once and added into the accumulators of up to six
 * queries; every output lane sums its rows in order, from the query's first row, so
 * a result never depends on the other queries of the tile. */
#ifndef KVS_ATTN_VEC_H
#define KVS_ATTN_VEC_H

/* Scores, rows four at a time: one load of each row chunk serves every query of
 * the tile.  Groups of four start at multiples of 4 whatever the window, so a
 * row's place in its group (and so its score's rounding) never depends on the tile. */
static void scores(const attn_tile *t, int minlo, int maxlen) {
    const int d = t->d;
    for (int jb = minlo & ~3; jb < maxlen; jb += 4) {
        const float *r[4];
        /* rows past the longest query are never stored; point them at a real row */
        for (int x = 0; x < 4; x++) r[x] = t->k + (size_t)(jb + x < maxlen ? jb + x : maxlen - 1) * t->stride;
        for (int i = 0; i < t->nq; i++) {
            const int len = t->len[i], lo = t->lo ? t->lo[i] : 0;
            if (len <= jb || lo >= jb + 4) continue;
            const float *q = t->q[i];
            VEC a0 = ZERO(), a1 = a0, a2 = a0, a3 = a0;
            for (int x = 0; x < d; x += LANES) {
                const VEC qv = LOAD(q + x);
                a0 = FMA(qv, LOAD(r[0] + x), a0);
                a1 = FMA(qv, LOAD(r[1] + x), a1);
                a2 = FMA(qv, LOAD(r[2] + x), a2);
                a3 = FMA(qv, LOAD(r[3] + x), a3);
            }
            float s4[4];
            _mm_storeu_ps(s4, _mm_mul_ps(SUM4(a0, a1, a2, a3), _mm_set1_ps(t->scale)));
            float *s = t->scores + (size_t)i * t->ld + jb;
            const int m = len - jb < 4 ? len - jb : 4;
            for (int x = lo > jb ? lo - jb : 0; x < m; x++) s[x] = s4[x];
        }
    }
}

/* Value row j into the accumulators of queries i0..i0+N-1; `check` (a constant
 * at each call) skips the queries whose rows do not include j. */
INLINE void wsum_row(const attn_tile *t, const int N, const int C, int i0, int c0, int j, const float *const *w,
                     VEC acc[6][CMAX], const int check) {
    const float *vr = t->v + (size_t)j * t->stride + c0;
    VEC v[CMAX];
#pragma GCC unroll 4
    for (int c = 0; c < C; c++) v[c] = LOAD(vr + LANES * c);
#pragma GCC unroll 6
    for (int i = 0; i < N; i++) {
        if (check && (j < (t->lo ? t->lo[i0 + i] : 0) || j >= t->len[i0 + i])) continue;
        const VEC wj = BCAST(w[i] + j);
#pragma GCC unroll 4
        for (int c = 0; c < C; c++) acc[i][c] = FMA(wj, v[c], acc[i][c]);
    }
}

/* Queries i0..i0+N-1, output lanes c0..c0+LANES*C-1. */
INLINE void wsum_block(const attn_tile *t, const int N, const int C, int i0, int c0) {
    VEC acc[6][CMAX];
    /* rows every query of the block sees are [start_max, end_min); the rows
     * before and after that are checked per query */
    int end_min = t->len[i0], end_max = t->len[i0], start_min = t->lo ? t->lo[i0] : 0, start_max = start_min;
#pragma GCC unroll 6
    for (int i = 0; i < N; i++) {
        const int l = t->len[i0 + i], f = t->lo ? t->lo[i0 + i] : 0;
        end_min = l < end_min ? l : end_min;
        end_max = l > end_max ? l : end_max;
        start_min = f < start_min ? f : start_min;
        start_max = f > start_max ? f : start_max;
#pragma GCC unroll 4
        for (int c = 0; c < C; c++) acc[i][c] = ZERO();
    }
    const float *w[6];
#pragma GCC unroll 6
    for (int i = 0; i < N; i++) w[i] = t->scores + (size_t)(i0 + i) * t->ld;
    int j = start_min;
    for (; j < start_max; j++) wsum_row(t, N, C, i0, c0, j, w, acc, 1); /* the earlier-starting queries' first rows */
    for (; j < end_min; j++) wsum_row(t, N, C, i0, c0, j, w, acc, 0);
    for (; j < end_max; j++) wsum_row(t, N, C, i0, c0, j, w, acc, 1); /* the longer queries' last rows */
#pragma GCC unroll 6
    for (int i = 0; i < N; i++)
#pragma GCC unroll 4
        for (int c = 0; c < C; c++) STORE(t->out[i0 + i] + c0 + LANES * c, acc[i][c]);
}

#define WSUM_N(C, i0, c0, n)                                   \
    switch (n) {                                               \
    case 1: wsum_block(t, 1, C, i0, c0); break;                \
    case 2: wsum_block(t, 2, C, i0, c0); break;                \
    case 3: wsum_block(t, 3, C, i0, c0); break;                \
    case 4: wsum_block(t, 4, C, i0, c0); break;                \
    case 5: wsum_block(t, 5, C, i0, c0); break;                \
    default: wsum_block(t, 6, C, i0, c0); break;               \
    }

static void wsum(const attn_tile *t) {
    for (int c0 = 0; c0 < t->d;) {
        const int wide = t->d - c0 >= CMAX * LANES;
        for (int i0 = 0; i0 < t->nq; i0 += 6) {
            const int n = t->nq - i0 < 6 ? t->nq - i0 : 6;
            if (wide) {
                WSUM_N(CMAX, i0, c0, n)
            } else {
                WSUM_N(1, i0, c0, n)
            }
        }
        c0 += wide ? CMAX * LANES : LANES;
    }
}

/* One tile: scores, softmax per query over its own rows, weighted sum; head
 * dimensions that are not a multiple of the vector width go to the reference. */
static void attn_run_vec(const attn_tile *t) {
    if (t->d % LANES) {
        attn_run_ref(t);
        return;
    }
    int maxlen = 0;
    for (int i = 0; i < t->nq; i++) maxlen = t->len[i] > maxlen ? t->len[i] : maxlen;
    int minlo = maxlen;
    for (int i = 0; i < t->nq; i++) minlo = (t->lo ? t->lo[i] : 0) < minlo ? (t->lo ? t->lo[i] : 0) : minlo;
    scores(t, minlo, maxlen);
    for (int i = 0; i < t->nq; i++) {
        const int lo = t->lo ? t->lo[i] : 0;
        softmax(t->scores + (size_t)i * t->ld + lo, t->len[i] - lo);
    }
    wsum(t);
}

#endif
