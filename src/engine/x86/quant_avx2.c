/* quant_avx2.c - AVX2/FMA/F16C kernels (built with -mavx2 -mfma -mf16c; only
 * called after quant.c has checked the CPU).
 *
 * Conversions are bit-exact against the references in quant.c.  Dot products
 * and matrix tiles compute every per-block integer sum exactly and differ from
 * the references only in the order of the float accumulation. */
#include <immintrin.h>
#include <math.h>
#include <stddef.h>
#include <string.h>

#include "engine/half.h"
#include "engine/ggtype.h"
#include "engine/quant_blocks.h"
#include "engine/quant_internal.h"
#include "engine/quant_ref.h"

#define INLINE static inline __attribute__((always_inline))

/* ---- small helpers ----------------------------------------------------- */

INLINE float hsum256(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

INLINE float f16_scalar(const void *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return _cvtsh_ss(h);
}

/* n fp16 values `stride` bytes apart -> dense floats.  Gathering dwords keeps this
 * cheap; the dword at each scale lies inside its block, so nothing outside the
 * row is read.  `hi` also takes the neighbouring fp16 (m of Q4_1, s of Q8_1). */
static void scales_to_dense(const uint8_t *p, size_t stride, int n, float *lo, float *hi) {
    const __m256i idx = _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
                                           _mm256_set1_epi32((int)stride));
    int b = 0;
    for (; b + 8 <= n; b += 8) {
        const __m256i g = _mm256_i32gather_epi32((const int *)(const void *)(p + (size_t)b * stride),
                                                 idx, 1);
        const __m256i l = _mm256_and_si256(g, _mm256_set1_epi32(0xffff));
        const __m256i h = _mm256_srli_epi32(g, 16);
        const __m256i pk = _mm256_permute4x64_epi64(_mm256_packus_epi32(l, h), 0xd8);
        _mm256_storeu_ps(lo + b, _mm256_cvtph_ps(_mm256_castsi256_si128(pk)));
        if (hi) _mm256_storeu_ps(hi + b, _mm256_cvtph_ps(_mm256_extracti128_si256(pk, 1)));
    }
    for (; b < n; b++) {
        lo[b] = f16_scalar(p + (size_t)b * stride);
        if (hi) hi[b] = f16_scalar(p + (size_t)b * stride + 2);
    }
}

/* ---- dequantization ---------------------------------------------------- */

INLINE void store_i8x16_scaled(float *dst, __m128i q, __m256 d) {
    _mm256_storeu_ps(dst, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q)), d));
    _mm256_storeu_ps(dst + 8, _mm256_mul_ps(
                                  _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(q, 8))), d));
}

/* x*d + m as a separate multiply and add: the reference is not contracted */
INLINE void store_u8x16_affine(float *dst, __m128i q, __m256 d, __m256 m) {
    _mm256_storeu_ps(dst, _mm256_add_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(q)), d), m));
    _mm256_storeu_ps(dst + 8,
                     _mm256_add_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(
                                                     _mm256_cvtepu8_epi32(_mm_srli_si128(q, 8))),
                                                 d),
                                   m));
}

void avx2_to_float(uint32_t type, const void *src, float *dst, int64_t n) {
    const uint8_t *p = src;
    const __m128i low4 = _mm_set1_epi8(15);
    switch (type) {
    case GGT_F32:
        memcpy(dst, src, (size_t)n * sizeof(float));
        return;
    case GGT_F16: {
        int64_t i = 0;
        for (; i + 8 <= n; i += 8) {
            const __m256 v = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)(p + 2 * i)));
            /* the instruction quiets signalling NaNs; the reference keeps them */
            if (_mm256_movemask_ps(_mm256_cmp_ps(v, v, _CMP_UNORD_Q)))
                quant_to_float_ref(type, p + 2 * i, dst + i, 8);
            else
                _mm256_storeu_ps(dst + i, v);
        }
        if (i < n) quant_to_float_ref(type, p + 2 * i, dst + i, n - i);
        return;
    }
    case GGT_BF16: {
        int64_t i = 0;
        for (; i + 8 <= n; i += 8) {
            const __m256i h = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(const void *)(p + 2 * i)));
            _mm256_storeu_ps(dst + i, _mm256_castsi256_ps(_mm256_slli_epi32(h, 16)));
        }
        if (i < n) quant_to_float_ref(type, p + 2 * i, dst + i, n - i);
        return;
    }
    case GGT_Q4_0:
        for (int64_t b = 0; b < n / QK; b++, dst += QK) {
            const uint8_t *blk = p + (size_t)b * sizeof(block_q4_0);
            const __m256 d = _mm256_set1_ps(f16_scalar(blk));
            const __m128i x = _mm_loadu_si128((const __m128i *)(const void *)(blk + 2));
            const __m128i eight = _mm_set1_epi8(8);
            store_i8x16_scaled(dst, _mm_sub_epi8(_mm_and_si128(x, low4), eight), d);
            store_i8x16_scaled(dst + 16, _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(x, 4), low4), eight), d);
        }
        return;
    case GGT_Q4_1:
        for (int64_t b = 0; b < n / QK; b++, dst += QK) {
            const uint8_t *blk = p + (size_t)b * sizeof(block_q4_1);
            const __m256 d = _mm256_set1_ps(f16_scalar(blk)), m = _mm256_set1_ps(f16_scalar(blk + 2));
            const __m128i x = _mm_loadu_si128((const __m128i *)(const void *)(blk + 4));
            store_u8x16_affine(dst, _mm_and_si128(x, low4), d, m);
            store_u8x16_affine(dst + 16, _mm_and_si128(_mm_srli_epi16(x, 4), low4), d, m);
        }
        return;
    case GGT_Q8_0:
    case GGT_Q8_1: {
        const size_t bs = type == GGT_Q8_0 ? sizeof(block_q8_0) : sizeof(block_q8_1);
        const size_t off = type == GGT_Q8_0 ? 2 : 4;
        for (int64_t b = 0; b < n / QK; b++, dst += QK) {
            const uint8_t *blk = p + (size_t)b * bs;
            const __m256 d = _mm256_set1_ps(f16_scalar(blk));
            store_i8x16_scaled(dst, _mm_loadu_si128((const __m128i *)(const void *)(blk + off)), d);
            store_i8x16_scaled(dst + 16, _mm_loadu_si128((const __m128i *)(const void *)(blk + off + 16)), d);
        }
        return;
    }
    default:
        quant_to_float_ref(type, src, dst, n);
        return;
    }
}

/* ---- quantization ------------------------------------------------------ */

/* roundf (halves away from zero), exactly: the fraction t - trunc(t) is exact
 * in float, so comparing it with 0.5 decides the way a scalar roundf does.
 * _mm256_round_ps alone would round halves to even and disagree with ggml. */
INLINE __m256 round_away(__m256 t) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    const __m256 tr = _mm256_round_ps(t, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    const __m256 frac = _mm256_andnot_ps(sign, _mm256_sub_ps(t, tr));
    const __m256 up = _mm256_cmp_ps(frac, _mm256_set1_ps(0.5f), _CMP_GE_OQ);
    const __m256 one = _mm256_or_ps(_mm256_and_ps(t, sign), _mm256_set1_ps(1.0f));
    return _mm256_add_ps(tr, _mm256_and_ps(up, one));
}

/* Same clamping as q8_from_rounded: NaN -> 0, then [-127, 127]. */
INLINE __m256i q8_lanes(__m256 v, __m256 id) {
    __m256 r = round_away(_mm256_mul_ps(v, id));
    r = _mm256_and_ps(r, _mm256_cmp_ps(r, r, _CMP_ORD_Q));
    r = _mm256_min_ps(_mm256_max_ps(r, _mm256_set1_ps(-127.0f)), _mm256_set1_ps(127.0f));
    return _mm256_cvttps_epi32(r);
}

/* One 32-element block to int8 codes; returns the float scale, *sum gets the
 * code sum (for Q8_1). */
INLINE float q8_block(const float *x, int8_t *qs, int *sum) {
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    __m256 v[4];
    __m256 mx = _mm256_setzero_ps();
    for (int t = 0; t < 4; t++) {
        v[t] = _mm256_loadu_ps(x + 8 * t);
        /* the running max is the second operand, so NaN lanes leave it alone,
         * like the reference's `if (a > amax)` */
        mx = _mm256_max_ps(_mm256_and_ps(v[t], absmask), mx);
    }
    __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(mx), _mm256_extractf128_ps(mx, 1));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
    const float amax = _mm_cvtss_f32(m4);
    const float d = amax / 127.0f;
    const float idf = d != 0.0f ? 1.0f / d : 0.0f;
    const __m256 id = _mm256_set1_ps(idf);
    const __m256i i0 = q8_lanes(v[0], id), i1 = q8_lanes(v[1], id);
    const __m256i i2 = q8_lanes(v[2], id), i3 = q8_lanes(v[3], id);
    const __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(i0, i1), _mm256_packs_epi32(i2, i3));
    const __m256i q = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    _mm256_storeu_si256((__m256i *)(void *)qs, q);
    if (sum) {
        const __m256i s = _mm256_add_epi32(_mm256_add_epi32(i0, i1), _mm256_add_epi32(i2, i3));
        __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
        s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4e));
        s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0xb1));
        *sum = _mm_cvtsi128_si32(s4);
    }
    return d;
}

/* One Q8_K super-block.  The scan for the extreme element stays scalar: its
 * first-wins tie rule decides the sign of the scale, and 256 compares cost little
 * next to the products that use the row. */
static void q8k_block(const float *x, uint8_t *blk) {
    float amax = 0.0f, extreme = 0.0f;
    for (int j = 0; j < QK_K; j++)
        if (fabsf(x[j]) > amax) {
            amax = fabsf(x[j]);
            extreme = x[j];
        }
    int8_t *qs = (int8_t *)(blk + offsetof(block_q8_k, qs));
    if (amax == 0.0f) {
        memset(blk, 0, sizeof(block_q8_k));
        return;
    }
    const float iscale = -127.0f / extreme;
    const __m256 is = _mm256_set1_ps(iscale);
    for (int c = 0; c < QK_K; c += 32) {
        __m256i i4[4];
        for (int t = 0; t < 4; t++) {
            __m256 r = _mm256_round_ps(_mm256_mul_ps(_mm256_loadu_ps(x + c + 8 * t), is),
                                       _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
            r = _mm256_and_ps(r, _mm256_cmp_ps(r, r, _CMP_ORD_Q));
            r = _mm256_min_ps(_mm256_max_ps(r, _mm256_set1_ps(-127.0f)), _mm256_set1_ps(127.0f));
            i4[t] = _mm256_cvttps_epi32(r);
        }
        const __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(i4[0], i4[1]), _mm256_packs_epi32(i4[2], i4[3]));
        const __m256i q = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        _mm256_storeu_si256((__m256i *)(void *)(qs + c), q);
        /* codes -> int16 pair sums -> the two 16-element group sums */
        const __m256i s16 = _mm256_maddubs_epi16(_mm256_set1_epi8(1), q);
        const __m256i s32 = _mm256_madd_epi16(s16, _mm256_set1_epi16(1));
        /* lanes 0..3 hold elements 0..15 of this 32-run (after the permute above
         * the vector is in element order), lanes 4..7 elements 16..31 */
        __m128i lo = _mm256_castsi256_si128(s32), hi = _mm256_extracti128_si256(s32, 1);
        lo = _mm_hadd_epi32(lo, hi);
        lo = _mm_hadd_epi32(lo, lo);
        const int16_t g0 = (int16_t)_mm_cvtsi128_si32(lo), g1 = (int16_t)_mm_extract_epi32(lo, 1);
        memcpy(blk + offsetof(block_q8_k, bsums) + 2 * (size_t)(c / 16), &g0, 2);
        memcpy(blk + offsetof(block_q8_k, bsums) + 2 * (size_t)(c / 16 + 1), &g1, 2);
    }
    const float d = 1.0f / iscale;
    memcpy(blk + offsetof(block_q8_k, d), &d, sizeof d);
}

void avx2_from_float(uint32_t type, const float *src, void *dst, int64_t n) {
    uint8_t *p = dst;
    switch (type) {
    case GGT_F16: {
        int64_t i = 0;
        for (; i + 8 <= n; i += 8) {
            const __m256 v = _mm256_loadu_ps(src + i);
            /* F16C keeps NaN payload bits the reference replaces */
            if (_mm256_movemask_ps(_mm256_cmp_ps(v, v, _CMP_UNORD_Q)))
                quant_from_float_ref(type, src + i, p + 2 * i, 8);
            else
                _mm_storeu_si128((__m128i *)(void *)(p + 2 * i),
                                 _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
        }
        if (i < n) quant_from_float_ref(type, src + i, p + 2 * i, n - i);
        return;
    }
    case GGT_BF16: {
        int64_t i = 0;
        const __m256i absm = _mm256_set1_epi32(0x7fffffff), inf = _mm256_set1_epi32(0x7f800000);
        for (; i + 16 <= n; i += 16) {
            __m256i r[2];
            for (int t = 0; t < 2; t++) {
                const __m256i x = _mm256_loadu_si256((const __m256i *)(const void *)(src + i + 8 * t));
                const __m256i hi = _mm256_srli_epi32(x, 16);
                const __m256i bias = _mm256_add_epi32(_mm256_set1_epi32(0x7fff),
                                                      _mm256_and_si256(hi, _mm256_set1_epi32(1)));
                const __m256i rounded = _mm256_srli_epi32(_mm256_add_epi32(x, bias), 16);
                const __m256i isnan = _mm256_cmpgt_epi32(_mm256_and_si256(x, absm), inf);
                r[t] = _mm256_blendv_epi8(rounded, _mm256_or_si256(hi, _mm256_set1_epi32(64)), isnan);
            }
            const __m256i pk = _mm256_permute4x64_epi64(_mm256_packus_epi32(r[0], r[1]), 0xd8);
            _mm256_storeu_si256((__m256i *)(void *)(p + 2 * i), pk);
        }
        if (i < n) quant_from_float_ref(type, src + i, p + 2 * i, n - i);
        return;
    }
    case GGT_Q8_0:
        for (int64_t b = 0; b < n / QK; b++) {
            block_q8_0 *y = (block_q8_0 *)(void *)(p + (size_t)b * sizeof(block_q8_0));
            const float d = q8_block(src + b * QK, y->qs, NULL);
            const uint16_t dh = f32_to_f16(d);
            memcpy(&y->d, &dh, 2);
        }
        return;
    case GGT_Q8_1:
        for (int64_t b = 0; b < n / QK; b++) {
            block_q8_1 *y = (block_q8_1 *)(void *)(p + (size_t)b * sizeof(block_q8_1));
            int sum;
            const float d = q8_block(src + b * QK, y->qs, &sum);
            const uint16_t dh = f32_to_f16(d), sh = f32_to_f16((float)sum * d);
            memcpy(&y->d, &dh, 2);
            memcpy(&y->s, &sh, 2);
        }
        return;
    case GGT_Q8_K:
        for (int64_t b = 0; b < n / QK_K; b++) q8k_block(src + b * QK_K, p + (size_t)b * sizeof(block_q8_k));
        return;
    default:
        quant_from_float_ref(type, src, dst, n);
        return;
    }
}

/* ---- float dot products ------------------------------------------------ */

INLINE __m256 load8_f16(const uint8_t *p) {
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)p));
}

INLINE __m256 load8_bf16(const uint8_t *p) {
    return _mm256_castsi256_ps(
        _mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(const void *)p)), 16));
}

static float dot_float(uint32_t wtype, int64_t n, const void *w, const void *a) {
    const uint8_t *x = w, *y = a;
    const size_t es = wtype == GGT_F32 ? 4 : 2;
    /* four accumulators hide the FMA latency */
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        for (int t = 0; t < 4; t++) {
            const uint8_t *px = x + (size_t)(i + 8 * t) * es, *py = y + (size_t)(i + 8 * t) * es;
            __m256 vx, vy;
            if (wtype == GGT_F32) {
                vx = _mm256_loadu_ps((const float *)(const void *)px);
                vy = _mm256_loadu_ps((const float *)(const void *)py);
            } else if (wtype == GGT_F16) {
                vx = load8_f16(px);
                vy = load8_f16(py);
            } else {
                vx = load8_bf16(px);
                vy = load8_bf16(py);
            }
            acc[t] = _mm256_fmadd_ps(vx, vy, acc[t]);
        }
    }
    float s = hsum256(_mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3])));
    if (i < n) s += quant_dot_ref(wtype, n - i, x + (size_t)i * es, y + (size_t)i * es);
    return s;
}

/* ---- quantized matrix tiles ------------------------------------------- */

/*
 * Blocking: a tile is TR weight rows x TJ activation rows; each weight block is
 * unpacked once and used TJ times, each activation block is loaded TR times from
 * L1.  The fp16 scales are first turned into dense float arrays (weights per
 * tile, activations per chunk of rows) and, per tile, into the products
 * d_w*d_a, so the loop body needs only a broadcast load for the scale; the
 * dense arrays also let the Q4_1 term m*s run as a plain dot product over
 * blocks after the integer loop.
 *
 * maddubs multiplies unsigned by signed bytes.  Q4_1 nibbles are already
 * unsigned.  For Q4_0 and Q8_0 the weight is signed, so its magnitude goes in the
 * unsigned slot and its sign moves onto the activation (_mm256_sign_epi8); pair
 * sums stay below the int16 limit (128*127*2) as long as activations avoid -128,
 * which our quantizer guarantees (it clamps to -127..127).  Weights may hold
 * any code, -128 included.
 */
#define NBC 256 /* blocks per k-chunk: bounds the scale arrays on the stack */
#define NBP (NBC + 8)
#define JC 16 /* activation rows whose scales are staged together */
#define TR 2  /* weight rows per tile */
#define TJ 4  /* activation rows per tile */

/* Bit j of qh as 0x10 in byte j: the fifth bit of each Q5 code in place. */
INLINE __m256i q5_high_bits(const uint8_t *qh4) {
    uint32_t qh;
    memcpy(&qh, qh4, 4);
    const __m256i sel = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1,
                                         2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
    const __m256i v = _mm256_shuffle_epi8(_mm256_set1_epi32((int)qh), sel);
    const __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ULL);
    return _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(v, bit), bit), _mm256_set1_epi8(0x10));
}

/* Q5_0/Q5_1 are Q4_0/Q4_1 with a fifth bit per code and offset 16 instead of 8;
 * their codes sit 4 bytes later (after qh). */
enum { K_Q4_0, K_Q4_1, K_Q8_0, K_Q5_0, K_Q5_1 };

INLINE void tile(const int kind, const int J, const uint8_t *const *wr, size_t wbs,
                 const uint8_t *const *ar, size_t abs_, int nbc, const float *P, const float *wm,
                 const float *as, float out[TR][TJ]) {
    const int affine = kind == K_Q4_1 || kind == K_Q5_1; /* x = d*q + m, with Q8_1 activations */
    const size_t woff = kind == K_Q5_1 ? 8 : kind == K_Q5_0 ? 6 : affine ? 4 : 2, aoff = affine ? 4 : 2;
    const __m256i ones16 = _mm256_set1_epi16(1);
    const __m128i low4 = _mm_set1_epi8(15);
    __m256 acc[TR][TJ];
#pragma GCC unroll 8
    for (int r = 0; r < TR; r++)
#pragma GCC unroll 8
        for (int j = 0; j < J; j++) acc[r][j] = _mm256_setzero_ps();

    for (int b = 0; b < nbc; b++) {
#pragma GCC unroll 8
        for (int r = 0; r < TR; r++) {
            const uint8_t *q = wr[r] + (size_t)b * wbs + woff;
            __m256i wu, ws = _mm256_setzero_si256();
            if (kind == K_Q8_0) {
                ws = _mm256_loadu_si256((const __m256i *)(const void *)q);
                wu = _mm256_abs_epi8(ws);
            } else {
                const __m128i x = _mm_loadu_si128((const __m128i *)(const void *)q);
                wu = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(x, 4), low4), _mm_and_si128(x, low4));
                if (kind == K_Q5_0 || kind == K_Q5_1) wu = _mm256_or_si256(wu, q5_high_bits(q - 4));
                if (kind == K_Q4_0 || kind == K_Q5_0) {
                    ws = _mm256_sub_epi8(wu, _mm256_set1_epi8(kind == K_Q4_0 ? 8 : 16));
                    wu = _mm256_abs_epi8(ws);
                }
            }
#pragma GCC unroll 8
            for (int j = 0; j < J; j++) {
                __m256i a = _mm256_loadu_si256((const __m256i *)(const void *)(ar[j] + (size_t)b * abs_ + aoff));
                if (!affine) a = _mm256_sign_epi8(a, ws);
                const __m256i s = _mm256_madd_epi16(_mm256_maddubs_epi16(wu, a), ones16);
                acc[r][j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_broadcast_ss(P + (r * TJ + j) * NBP + b),
                                            acc[r][j]);
            }
        }
    }
    if (affine) {
        /* the arrays are zero-padded to a multiple of 8 */
        for (int b = 0; b < nbc; b += 8)
#pragma GCC unroll 8
            for (int r = 0; r < TR; r++)
#pragma GCC unroll 8
                for (int j = 0; j < J; j++)
                    acc[r][j] = _mm256_fmadd_ps(_mm256_loadu_ps(wm + r * NBP + b),
                                                _mm256_loadu_ps(as + j * NBP + b), acc[r][j]);
    }
#pragma GCC unroll 8
    for (int r = 0; r < TR; r++)
#pragma GCC unroll 8
        for (int j = 0; j < J; j++) out[r][j] = hsum256(acc[r][j]);
}

#define TILE_CASES(kind)                                                                       \
    switch (J) {                                                                               \
    case 1: tile(kind, 1, wr, wbs, ar, abs_, nbc, P, wm, as, out); break;                 \
    case 2: tile(kind, 2, wr, wbs, ar, abs_, nbc, P, wm, as, out); break;                 \
    case 3: tile(kind, 3, wr, wbs, ar, abs_, nbc, P, wm, as, out); break;                 \
    default: tile(kind, 4, wr, wbs, ar, abs_, nbc, P, wm, as, out); break;                \
    }

static void tile_q4_0(int J, const uint8_t *const *wr, size_t wbs, const uint8_t *const *ar, size_t abs_,
                      int nbc, const float *P, const float *wm, const float *as, float out[TR][TJ]) {
    TILE_CASES(K_Q4_0)
}
static void tile_q4_1(int J, const uint8_t *const *wr, size_t wbs, const uint8_t *const *ar, size_t abs_,
                      int nbc, const float *P, const float *wm, const float *as, float out[TR][TJ]) {
    TILE_CASES(K_Q4_1)
}
static void tile_q8_0(int J, const uint8_t *const *wr, size_t wbs, const uint8_t *const *ar, size_t abs_,
                      int nbc, const float *P, const float *wm, const float *as, float out[TR][TJ]) {
    TILE_CASES(K_Q8_0)
}

static void tile_q5_0(int J, const uint8_t *const *wr, size_t wbs, const uint8_t *const *ar, size_t abs_,
                      int nbc, const float *P, const float *wm, const float *as, float out[TR][TJ]) {
    TILE_CASES(K_Q5_0)
}
static void tile_q5_1(int J, const uint8_t *const *wr, size_t wbs, const uint8_t *const *ar, size_t abs_,
                      int nbc, const float *P, const float *wm, const float *as, float out[TR][TJ]) {
    TILE_CASES(K_Q5_1)
}

static void gemm_quant(int kind, int64_t k, const uint8_t *W, size_t w_stride, int i0, int i1,
                       const uint8_t *A, size_t a_stride, int n_a, float *C, int ldc) {
    const size_t wbs = kind == K_Q4_0 ? sizeof(block_q4_0)
                       : kind == K_Q4_1 ? sizeof(block_q4_1)
                       : kind == K_Q5_0 ? sizeof(block_q5_0)
                       : kind == K_Q5_1 ? sizeof(block_q5_1) : sizeof(block_q8_0);
    const int affine = kind == K_Q4_1 || kind == K_Q5_1;
    const size_t abs_ = affine ? sizeof(block_q8_1) : sizeof(block_q8_0);
    const int nb = (int)(k / QK);
    if (nb == 0) { /* empty rows: the products are 0, as the references give */
        for (int j = 0; j < n_a; j++)
            for (int i = i0; i < i1; i++) C[(size_t)j * (size_t)ldc + (size_t)i] = 0.0f;
        return;
    }
    const int two = affine; /* whether the second fp16 (m, s) is used */
    float ad[JC * NBP], as[JC * NBP], wd[TR * NBP], wm[TR * NBP], P[TR * TJ * NBP];
    for (int kb = 0; kb < nb; kb += NBC) {
        const int nbc = nb - kb < NBC ? nb - kb : NBC;
        const int nbp = (nbc + 7) & ~7;
        for (int j0 = 0; j0 < n_a; j0 += JC) {
            const int jc = n_a - j0 < JC ? n_a - j0 : JC;
            const uint8_t *arow[JC];
            for (int j = 0; j < jc; j++) {
                arow[j] = A + (size_t)(j0 + j) * a_stride + (size_t)kb * abs_;
                scales_to_dense(arow[j], abs_, nbc, ad + j * NBP, two ? as + j * NBP : NULL);
                for (int b = nbc; b < nbp; b++) ad[j * NBP + b] = as[j * NBP + b] = 0.0f;
            }
            for (int i = i0; i < i1; i += TR) {
                const int rn = i1 - i < TR ? i1 - i : TR;
                const uint8_t *wrow[TR];
                for (int r = 0; r < TR; r++) {
                    /* a short tile repeats its last row rather than needing its own kernel */
                    wrow[r] = W + (size_t)(i + (r < rn ? r : rn - 1)) * w_stride + (size_t)kb * wbs;
                    scales_to_dense(wrow[r], wbs, nbc, wd + r * NBP, two ? wm + r * NBP : NULL);
                    for (int b = nbc; b < nbp; b++) wd[r * NBP + b] = wm[r * NBP + b] = 0.0f;
                }
                for (int jj = 0; jj < jc; jj += TJ) {
                    const int J = jc - jj < TJ ? jc - jj : TJ;
                    for (int r = 0; r < TR; r++)
                        for (int j = 0; j < J; j++)
                            for (int b = 0; b < nbp; b += 8)
                                _mm256_storeu_ps(P + (r * TJ + j) * NBP + b,
                                                 _mm256_mul_ps(_mm256_loadu_ps(wd + r * NBP + b),
                                                               _mm256_loadu_ps(ad + (jj + j) * NBP + b)));
                    float out[TR][TJ];
                    const uint8_t *const *ar = arow + jj;
                    const float *asj = as + jj * NBP;
                    if (kind == K_Q4_0)
                        tile_q4_0(J, wrow, wbs, ar, abs_, nbc, P, wm, asj, out);
                    else if (kind == K_Q4_1)
                        tile_q4_1(J, wrow, wbs, ar, abs_, nbc, P, wm, asj, out);
                    else if (kind == K_Q5_0)
                        tile_q5_0(J, wrow, wbs, ar, abs_, nbc, P, wm, asj, out);
                    else if (kind == K_Q5_1)
                        tile_q5_1(J, wrow, wbs, ar, abs_, nbc, P, wm, asj, out);
                    else
                        tile_q8_0(J, wrow, wbs, ar, abs_, nbc, P, wm, asj, out);
                    for (int j = 0; j < J; j++) {
                        float *c = C + (size_t)(j0 + jj + j) * (size_t)ldc + (size_t)i;
                        for (int r = 0; r < rn; r++) c[r] = kb ? c[r] + out[r][j] : out[r][j];
                    }
                }
            }
        }
    }
}

/* ---- K-quant dots (row by row) ---------------------------------------- */

INLINE int hsum_i32(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    return _mm_cvtsi128_si32(s);
}

/*
 * K-quant products.  Each super-block's integer sums are formed exactly (codes
 * times activation codes by maddubs, times the sub-block scale by madd, minimum
 * and offset terms from the activation's bsums), then combined in floats in the
 * same expression as the reference.  Codes are unsigned (Q4_K, Q5_K as stored;
 * Q6_K before its -32, which is applied through bsums), so maddubs needs no sign
 * trick, and its pair sums stay below 63*127*2 < 32767.  One weight row is taken
 * against up to KJ activation rows at once, so its codes are unpacked once per
 * KJ products (the row itself is a few hundred bytes and stays in L1).
 */
#define KJ 4

INLINE void q45k_block(const int five, const int J, const uint8_t *x, const uint8_t *const *y, float *s) {
    const __m256i low4 = _mm256_set1_epi8(15), one = _mm256_set1_epi8(1);
    const uint8_t *scales = x + 4, *qs = x + (five ? 48 : 16);
    const __m256i qh = five ? _mm256_loadu_si256((const __m256i *)(const void *)(x + 16)) : _mm256_setzero_si256();
    uint8_t sc[8], mn[8];
    for (int t = 0; t < 8; t++) k_scale_min(scales, t, &sc[t], &mn[t]);
    __m256i acc[KJ];
#pragma GCC unroll 4
    for (int j = 0; j < J; j++) acc[j] = _mm256_setzero_si256();
    for (int r = 0; r < 4; r++) {
        const __m256i c = _mm256_loadu_si256((const __m256i *)(const void *)(qs + 32 * r));
        __m256i lo = _mm256_and_si256(c, low4), hi = _mm256_and_si256(_mm256_srli_epi16(c, 4), low4);
        if (five) {
            /* bits 2r and 2r+1 of each qh byte, moved to 0x10 (the masks keep the
             * 16-bit shifts from mixing neighbouring bytes) */
            lo = _mm256_or_si256(lo, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * r), one), 4));
            hi = _mm256_or_si256(hi, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * r + 1), one), 4));
        }
        const __m256i s0 = _mm256_set1_epi16(sc[2 * r]), s1 = _mm256_set1_epi16(sc[2 * r + 1]);
#pragma GCC unroll 4
        for (int j = 0; j < J; j++) {
            const __m256i a0 = _mm256_loadu_si256((const __m256i *)(const void *)(y[j] + 4 + 64 * r));
            const __m256i a1 = _mm256_loadu_si256((const __m256i *)(const void *)(y[j] + 4 + 64 * r + 32));
            acc[j] = _mm256_add_epi32(acc[j], _mm256_madd_epi16(_mm256_maddubs_epi16(lo, a0), s0));
            acc[j] = _mm256_add_epi32(acc[j], _mm256_madd_epi16(_mm256_maddubs_epi16(hi, a1), s1));
        }
    }
    const float d = f16_scalar(x), dmin = f16_scalar(x + 2);
#pragma GCC unroll 4
    for (int j = 0; j < J; j++) {
        int summ = 0;
        for (int t = 0; t < 8; t++) summ += mn[t] * (q8k_bsum(y[j], 2 * t) + q8k_bsum(y[j], 2 * t + 1));
        const float dy = q8k_d(y[j]);
        s[j] += d * dy * (float)hsum_i32(acc[j]) - dmin * dy * (float)summ;
    }
}

INLINE void q6k_block(const int J, const uint8_t *x, const uint8_t *const *y, float *s) {
    const __m256i low4 = _mm256_set1_epi8(15), three = _mm256_set1_epi8(3);
    const int8_t *sc = (const int8_t *)(x + offsetof(block_q6_k, scales));
    __m256i acc[KJ];
#pragma GCC unroll 4
    for (int j = 0; j < J; j++) acc[j] = _mm256_setzero_si256();
    for (int h = 0; h < 2; h++) {
        const __m256i qh = _mm256_loadu_si256((const __m256i *)(const void *)(x + 128 + 32 * h));
        const __m256i l0 = _mm256_loadu_si256((const __m256i *)(const void *)(x + 64 * h));
        const __m256i l1 = _mm256_loadu_si256((const __m256i *)(const void *)(x + 64 * h + 32));
        const __m256i lo4[4] = {_mm256_and_si256(l0, low4), _mm256_and_si256(l1, low4),
                                _mm256_and_si256(_mm256_srli_epi16(l0, 4), low4),
                                _mm256_and_si256(_mm256_srli_epi16(l1, 4), low4)};
        for (int t = 0; t < 4; t++) {
            const __m256i hb = _mm256_and_si256(_mm256_srli_epi16(qh, 2 * t), three);
            const __m256i qt = _mm256_or_si256(lo4[t], _mm256_slli_epi16(hb, 4));
            const int g = 8 * h + 2 * t; /* the two 16-element sub-blocks of this run */
            const __m256i scv = _mm256_set_m128i(_mm_set1_epi16(sc[g + 1]), _mm_set1_epi16(sc[g]));
#pragma GCC unroll 4
            for (int j = 0; j < J; j++) {
                const __m256i av = _mm256_loadu_si256((const __m256i *)(const void *)(y[j] + 4 + 128 * h + 32 * t));
                acc[j] = _mm256_add_epi32(acc[j], _mm256_madd_epi16(_mm256_maddubs_epi16(qt, av), scv));
            }
        }
    }
    const float d = f16_scalar(x + offsetof(block_q6_k, d));
#pragma GCC unroll 4
    for (int j = 0; j < J; j++) {
        int off = 0;
        for (int g = 0; g < 16; g++) off += sc[g] * q8k_bsum(y[j], g);
        s[j] += d * q8k_d(y[j]) * (float)(hsum_i32(acc[j]) - 32 * off);
    }
}

enum { K_Q4K, K_Q5K, K_Q6K };

INLINE void k_rows(const int kind, const int J, int64_t nb, const uint8_t *w, const uint8_t *const *a, float *s) {
    const size_t wbs = kind == K_Q4K ? sizeof(block_q4_k) : kind == K_Q5K ? sizeof(block_q5_k) : sizeof(block_q6_k);
#pragma GCC unroll 4
    for (int j = 0; j < J; j++) s[j] = 0.0f;
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *y[KJ];
#pragma GCC unroll 4
        for (int j = 0; j < J; j++) y[j] = a[j] + (size_t)b * sizeof(block_q8_k);
        if (kind == K_Q6K)
            q6k_block(J, w + (size_t)b * wbs, y, s);
        else
            q45k_block(kind == K_Q5K, J, w + (size_t)b * wbs, y, s);
    }
}

#define K_ROWS_FN(name, kind)                                                                \
    static void name(int J, int64_t nb, const uint8_t *w, const uint8_t *const *a, float *s) { \
        switch (J) {                                                                         \
        case 1: k_rows(kind, 1, nb, w, a, s); break;                                         \
        case 2: k_rows(kind, 2, nb, w, a, s); break;                                         \
        case 3: k_rows(kind, 3, nb, w, a, s); break;                                         \
        default: k_rows(kind, 4, nb, w, a, s); break;                                        \
        }                                                                                    \
    }
K_ROWS_FN(rows_q4k, K_Q4K)
K_ROWS_FN(rows_q5k, K_Q5K)
K_ROWS_FN(rows_q6k, K_Q6K)

static void gemm_k(uint32_t wtype, int64_t k, const uint8_t *W, size_t w_stride, int i0, int i1,
                   const uint8_t *A, size_t a_stride, int n_a, float *C, int ldc) {
    void (*rows)(int, int64_t, const uint8_t *, const uint8_t *const *, float *) =
        wtype == GGT_Q4_K ? rows_q4k : wtype == GGT_Q5_K ? rows_q5k : rows_q6k;
    const int64_t nb = k / QK_K;
    /* activation rows outer: a group of KJ stays in L1 while the weight rows go by */
    for (int j0 = 0; j0 < n_a; j0 += KJ) {
        const int J = n_a - j0 < KJ ? n_a - j0 : KJ;
        const uint8_t *a[KJ];
        for (int j = 0; j < J; j++) a[j] = A + (size_t)(j0 + j) * a_stride;
        for (int i = i0; i < i1; i++) {
            float s[KJ];
            rows(J, nb, W + (size_t)i * w_stride, a, s);
            for (int j = 0; j < J; j++) C[(size_t)(j0 + j) * (size_t)ldc + (size_t)i] = s[j];
        }
    }
}

void avx2_gemm(uint32_t wtype, int64_t k, const void *W, size_t w_stride, int i0, int i1,
                   const void *A, size_t a_stride, int n_a, float *C, int ldc) {
    switch (wtype) {
    case GGT_Q4_0: gemm_quant(K_Q4_0, k, W, w_stride, i0, i1, A, a_stride, n_a, C, ldc); return;
    case GGT_Q5_0: gemm_quant(K_Q5_0, k, W, w_stride, i0, i1, A, a_stride, n_a, C, ldc); return;
    case GGT_Q5_1: gemm_quant(K_Q5_1, k, W, w_stride, i0, i1, A, a_stride, n_a, C, ldc); return;
    case GGT_Q4_1: gemm_quant(K_Q4_1, k, W, w_stride, i0, i1, A, a_stride, n_a, C, ldc); return;
    case GGT_Q8_0: gemm_quant(K_Q8_0, k, W, w_stride, i0, i1, A, a_stride, n_a, C, ldc); return;
    case GGT_F32: case GGT_F16: case GGT_BF16:
        gemm_by_dot(dot_float, wtype, k, W, w_stride, i0, i1, A, a_stride, n_a, C, ldc);
        return;
    case GGT_Q4_K: case GGT_Q5_K: case GGT_Q6_K:
        gemm_k(wtype, k, W, w_stride, i0, i1, A, a_stride, n_a, C, ldc);
        return;
    default:
        gemm_by_dot(quant_dot_ref, wtype, k, W, w_stride, i0, i1, A, a_stride, n_a, C, ldc);
        return;
    }
}

float avx2_dot(uint32_t wtype, int64_t n, const void *w, const void *a) {
    switch (wtype) {
    case GGT_F32: case GGT_F16: case GGT_BF16:
        return dot_float(wtype, n, w, a);
    case GGT_Q4_0: case GGT_Q4_1: case GGT_Q8_0: case GGT_Q5_0: case GGT_Q5_1: {
        float c = 0.0f;
        avx2_gemm(wtype, n, w, 0, 0, 1, a, 0, 1, &c, 1);
        return c;
    }
    case GGT_Q4_K: case GGT_Q5_K: case GGT_Q6_K: {
        float c = 0.0f;
        gemm_k(wtype, n, w, 0, 0, 1, a, 0, 1, &c, 1);
        return c;
    }
    default:
        return quant_dot_ref(wtype, n, w, a);
    }
}

const quant_kernels quant_avx2_kernels = {
    "avx2", avx2_to_float, avx2_from_float, avx2_dot, avx2_gemm, NULL,
};
