/* attn_avx512.c - tile attention with 16-float vectors.
 *
 * Scores: rows are taken four at a time (one load of each row chunk serves every
 * query of the tile); per query the four dot products accumulate over the head
 * dimension in 16-lane chunks and are summed by one fixed tree, so a score
 * depends only on its query, its row and the row's place in its group of four.
 * Weighted sum: each value row chunk is loaded once and added into the
 * accumulators of up to six queries; every output lane sums its rows in order. */
#include <immintrin.h>
#include <math.h>

#include "engine/attn_ref.h"
#include "simd512.h"

#define INLINE static inline __attribute__((always_inline))
#define VEC __m512
#define CMAX 4
#define LANES 16
#define LOAD _mm512_loadu_ps
#define BCAST(p) _mm512_set1_ps(*(p))
#define ZERO _mm512_setzero_ps
#define STORE _mm512_storeu_ps
#define FMA _mm512_fmadd_ps

/* e^x for x <= 0: x = n*ln2 + r with |r| <= ln2/2 (ln2 split in two so that
 * n*ln2 is exact), e^r by its Taylor series to degree 7 (truncation below
 * 6e-9 relative), then scaled by 2^n with scalef, which also underflows
 * correctly to 0 for very negative x. */
INLINE __m512 exp_neg(__m512 x) {
    const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693145751953125f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.428606765330187e-06f), r);
    __m512 p = _mm512_set1_ps(1.0f / 5040.0f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 720.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(p, n);
}

/* In-place softmax of n scores; the attention profile at long prompts was a
 * quarter scalar expf before this. */
static void softmax(float *x, int n) {
    __m512 mx = _mm512_set1_ps(-INFINITY);
    int i = 0;
    for (; i + 16 <= n; i += 16) mx = _mm512_max_ps(mx, _mm512_loadu_ps(x + i));
    if (i < n) mx = _mm512_mask_max_ps(mx, (__mmask16)((1u << (n - i)) - 1), mx, _mm512_maskz_loadu_ps((__mmask16)((1u << (n - i)) - 1), x + i));
    const __m512 m = _mm512_set1_ps(_mm512_reduce_max_ps(mx));
    __m512 sum = _mm512_setzero_ps();
    for (i = 0; i + 16 <= n; i += 16) {
        const __m512 e = exp_neg(_mm512_sub_ps(_mm512_loadu_ps(x + i), m));
        _mm512_storeu_ps(x + i, e);
        sum = _mm512_add_ps(sum, e);
    }
    if (i < n) {
        const __mmask16 k = (__mmask16)((1u << (n - i)) - 1);
        const __m512 e = exp_neg(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + i), m));
        _mm512_mask_storeu_ps(x + i, k, e);
        sum = _mm512_mask_add_ps(sum, k, sum, e);
    }
    const __m512 inv = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(sum));
    for (i = 0; i + 16 <= n; i += 16) _mm512_storeu_ps(x + i, _mm512_mul_ps(_mm512_loadu_ps(x + i), inv));
    if (i < n) {
        const __mmask16 k = (__mmask16)((1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(x + i, k, _mm512_mul_ps(_mm512_maskz_loadu_ps(k, x + i), inv));
    }
}

/* the four dot products of a score group, summed by one fixed tree */
#define SUM4(a0, a1, a2, a3) simd512_sum4(a0, a1, a2, a3)

#include "attn_vec.h"

void attn_run_avx512(const attn_tile *t) { attn_run_vec(t); }
