/* attn_avx2.c - tile attention with 8-float vectors; the same plan as
 * attn_avx512.c (see there), sized for sixteen ymm registers. */
#include <immintrin.h>
#include <math.h>

#include "engine/attn_ref.h"

#define INLINE static inline __attribute__((always_inline))
#define VEC __m256
#define CMAX 2
#define LANES 8
#define LOAD _mm256_loadu_ps
#define BCAST(p) _mm256_broadcast_ss(p)
#define ZERO _mm256_setzero_ps
#define STORE _mm256_storeu_ps
#define FMA _mm256_fmadd_ps

/* e^x for x <= 0, as in attn_avx512.c; 2^n is built in the exponent field,
 * so x is first held above -87 where that stays a normal number (e^-87 is far
 * below anything a softmax sum can notice). */
INLINE __m256 exp_neg(__m256 x) {
    x = _mm256_max_ps(x, _mm256_set1_ps(-87.0f));
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693145751953125f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(1.428606765330187e-06f), r);
    __m256 p = _mm256_set1_ps(1.0f / 5040.0f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 720.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

INLINE float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* In-place softmax of n scores (vector exp; the tail goes through one padded
 * vector so every element gets the same exp). */
static void softmax(float *x, int n) {
    float mx = -INFINITY;
    for (int i = 0; i < n; i++) mx = x[i] > mx ? x[i] : mx;
    const __m256 m = _mm256_set1_ps(mx);
    __m256 sum = _mm256_setzero_ps();
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 e = exp_neg(_mm256_sub_ps(_mm256_loadu_ps(x + i), m));
        _mm256_storeu_ps(x + i, e);
        sum = _mm256_add_ps(sum, e);
    }
    float tail = 0.0f;
    if (i < n) {
        float buf[8] = {0};
        for (int k = i; k < n; k++) buf[k - i] = x[k] - mx;
        _mm256_storeu_ps(buf, exp_neg(_mm256_loadu_ps(buf)));
        for (int k = i; k < n; k++) {
            x[k] = buf[k - i];
            tail += buf[k - i];
        }
    }
    const float inv = 1.0f / (hsum(sum) + tail);
    for (int k = 0; k < n; k++) x[k] *= inv;
}

/* the four dot products of a score group, summed by one fixed tree */
INLINE __m128 sum4(__m256 a0, __m256 a1, __m256 a2, __m256 a3) {
    const __m256 h = _mm256_hadd_ps(_mm256_hadd_ps(a0, a1), _mm256_hadd_ps(a2, a3));
    return _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
}
#define SUM4(a0, a1, a2, a3) sum4(a0, a1, a2, a3)

#include "attn_vec.h"

void attn_run_avx2(const attn_tile *t) { attn_run_vec(t); }
