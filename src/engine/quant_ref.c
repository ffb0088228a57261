/* quant_ref.c - the scalar reference kernels: every block format decoded,
 * encoded and multiplied as ggml defines it (scale rules, rounding, the order
 * of the float operations per block), so that a model gives the numbers
 * llama.cpp gives.  The SIMD kernel sets are checked against these; quant.c
 * chooses the set in use. */
#include <float.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "ggtype.h"
#include "half.h"
#include "quant_blocks.h"
#include "quant_ref.h"

_Static_assert(sizeof(block_q4_0) == 18, "block_q4_0 layout");
_Static_assert(sizeof(block_q4_1) == 20, "block_q4_1 layout");
_Static_assert(sizeof(block_q8_0) == 34, "block_q8_0 layout");
_Static_assert(sizeof(block_q8_1) == 36, "block_q8_1 layout");
_Static_assert(sizeof(block_q5_0) == 22, "block_q5_0 layout");
_Static_assert(sizeof(block_q5_1) == 24, "block_q5_1 layout");
_Static_assert(sizeof(block_q4_k) == 144, "block_q4_k layout");
_Static_assert(sizeof(block_q5_k) == 176, "block_q5_k layout");
_Static_assert(sizeof(block_q6_k) == 210, "block_q6_k layout");
_Static_assert(sizeof(block_q8_k) == 292, "block_q8_k layout");

/* ---- block decoding ---------------------------------------------------- */

/* The 5-bit codes (0..31) of a Q5_0/Q5_1 block. */
static void q5_codes(const uint8_t *qh4, const uint8_t *qs, int q[QK]) {
    uint32_t qh;
    memcpy(&qh, qh4, 4);
    for (int j = 0; j < QK / 2; j++) {
        q[j] = (qs[j] & 15) | (int)((qh >> j) & 1) << 4;
        q[j + QK / 2] = (qs[j] >> 4) | (int)((qh >> (j + QK / 2)) & 1) << 4;
    }
}

/* Codes of a Q4_K/Q5_K super-block (0..15 or 0..31) with its 8 scales and mins. */
static void k45_codes(uint32_t type, const void *blk, int q[QK_K], int sc[8], int mn[8], float *d, float *dmin) {
    const uint8_t *scales, *qs, *qh = NULL;
    uint16_t hd, hm;
    if (type == GGT_Q4_K) {
        const block_q4_k *x = blk;
        hd = x->d, hm = x->dmin, scales = x->scales, qs = x->qs;
    } else {
        const block_q5_k *x = blk;
        hd = x->d, hm = x->dmin, scales = x->scales, qs = x->qs, qh = x->qh;
    }
    *d = f16_to_f32(hd);
    *dmin = f16_to_f32(hm);
    for (int s = 0; s < 8; s++) {
        uint8_t a, b;
        k_scale_min(scales, s, &a, &b);
        sc[s] = a;
        mn[s] = b;
    }
    for (int r = 0; r < 4; r++)
        for (int i = 0; i < 32; i++) {
            const uint8_t byte = qs[32 * r + i];
            q[64 * r + i] = byte & 15;
            q[64 * r + 32 + i] = byte >> 4;
            if (qh) {
                q[64 * r + i] |= ((qh[i] >> (2 * r)) & 1) << 4;
                q[64 * r + 32 + i] |= ((qh[i] >> (2 * r + 1)) & 1) << 4;
            }
        }
}

/* Signed codes (-32..31) of a Q6_K super-block. */
static void q6k_codes(const block_q6_k *x, int q[QK_K]) {
    for (int h = 0; h < 2; h++)
        for (int t = 0; t < 4; t++)
            for (int i = 0; i < 32; i++) {
                const uint8_t l = x->ql[64 * h + 32 * (t & 1) + i];
                const int lo = t < 2 ? (l & 15) : (l >> 4);
                const int hi = (x->qh[32 * h + i] >> (2 * t)) & 3;
                q[128 * h + 32 * t + i] = (lo | hi << 4) - 32;
            }
}

#define Q8K_BLOCK(base, b) ((const uint8_t *)(base) + (size_t)(b) * sizeof(block_q8_k))

/* ---- dequantization ---------------------------------------------------- */

void quant_to_float_ref(uint32_t type, const void *src, float *dst, int64_t n) {
    switch (type) {
    case GGT_F32:
        memcpy(dst, src, (size_t)n * sizeof(float));
        return;
    case GGT_F16: {
        const uint8_t *p = src;
        for (int64_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, p + 2 * i, 2);
            dst[i] = f16_to_f32(h);
        }
        return;
    }
    case GGT_BF16: {
        const uint8_t *p = src;
        for (int64_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, p + 2 * i, 2);
            dst[i] = bf16_to_f32(h);
        }
        return;
    }
    case GGT_Q4_0: {
        const block_q4_0 *x = src;
        for (int64_t b = 0; b < n / QK; b++, dst += QK) {
            const float d = f16_to_f32(x[b].d);
            for (int j = 0; j < QK / 2; j++) {
                dst[j] = (float)((x[b].qs[j] & 15) - 8) * d;
                dst[j + QK / 2] = (float)((x[b].qs[j] >> 4) - 8) * d;
            }
        }
        return;
    }
    case GGT_Q4_1: {
        const block_q4_1 *x = src;
        for (int64_t b = 0; b < n / QK; b++, dst += QK) {
            const float d = f16_to_f32(x[b].d), m = f16_to_f32(x[b].m);
            for (int j = 0; j < QK / 2; j++) {
                dst[j] = (float)(x[b].qs[j] & 15) * d + m;
                dst[j + QK / 2] = (float)(x[b].qs[j] >> 4) * d + m;
            }
        }
        return;
    }
    case GGT_Q8_0: {
        const block_q8_0 *x = src;
        for (int64_t b = 0; b < n / QK; b++, dst += QK) {
            const float d = f16_to_f32(x[b].d);
            for (int j = 0; j < QK; j++) dst[j] = (float)x[b].qs[j] * d;
        }
        return;
    }
    case GGT_Q8_1: {
        const block_q8_1 *x = src;
        for (int64_t b = 0; b < n / QK; b++, dst += QK) {
            const float d = f16_to_f32(x[b].d);
            for (int j = 0; j < QK; j++) dst[j] = (float)x[b].qs[j] * d;
        }
        return;
    }
    case GGT_Q5_0: {
        const block_q5_0 *x = src;
        int q[QK];
        for (int64_t b = 0; b < n / QK; b++, dst += QK) {
            const float d = f16_to_f32(x[b].d);
            q5_codes(x[b].qh, x[b].qs, q);
            for (int j = 0; j < QK; j++) dst[j] = (float)(q[j] - 16) * d;
        }
        return;
    }
    case GGT_Q5_1: {
        const block_q5_1 *x = src;
        int q[QK];
        for (int64_t b = 0; b < n / QK; b++, dst += QK) {
            const float d = f16_to_f32(x[b].d), m = f16_to_f32(x[b].m);
            q5_codes(x[b].qh, x[b].qs, q);
            for (int j = 0; j < QK; j++) dst[j] = (float)q[j] * d + m;
        }
        return;
    }
    case GGT_Q4_K:
    case GGT_Q5_K: {
        const size_t bs = type == GGT_Q4_K ? sizeof(block_q4_k) : sizeof(block_q5_k);
        int q[QK_K], sc[8], mn[8];
        for (int64_t b = 0; b < n / QK_K; b++, dst += QK_K) {
            float d, dmin;
            k45_codes(type, (const uint8_t *)src + (size_t)b * bs, q, sc, mn, &d, &dmin);
            for (int s = 0; s < 8; s++) {
                /* ggml forms the sub-block's factors first, then one multiply-subtract */
                const float ds = d * (float)sc[s], ms = dmin * (float)mn[s];
                for (int i = 0; i < 32; i++) dst[32 * s + i] = ds * (float)q[32 * s + i] - ms;
            }
        }
        return;
    }
    case GGT_Q6_K: {
        const block_q6_k *x = src;
        int q[QK_K];
        for (int64_t b = 0; b < n / QK_K; b++, dst += QK_K) {
            const float d = f16_to_f32(x[b].d);
            q6k_codes(&x[b], q);
            for (int s = 0; s < 16; s++) {
                const float ds = d * (float)x[b].scales[s];
                for (int i = 0; i < 16; i++) dst[16 * s + i] = ds * (float)q[16 * s + i];
            }
        }
        return;
    }
    case GGT_Q8_K: {
        for (int64_t b = 0; b < n / QK_K; b++, dst += QK_K) {
            const uint8_t *x = Q8K_BLOCK(src, b);
            const float d = q8k_d(x);
            const int8_t *qs = q8k_qs(x);
            for (int j = 0; j < QK_K; j++) dst[j] = (float)qs[j] * d;
        }
        return;
    }
    default:
        /* unsupported types never reach here through model loading; NaN makes a
         * stray call visible instead of silently plausible */
        for (int64_t i = 0; i < n; i++) dst[i] = NAN;
        return;
    }
}

/* ---- quantization ------------------------------------------------------ */

/* Largest |x| of a block.  NaN never wins a comparison, so it is ignored; the
 * SIMD max instructions are used the same way. */
static float block_amax(const float *x) {
    float amax = 0.0f;
    for (int j = 0; j < QK; j++) {
        const float a = fabsf(x[j]);
        if (a > amax) amax = a;
    }
    return amax;
}

/* A 4-bit code from a float already shifted into [0, 16.5]; ggml truncates and
 * caps at 15.  The NaN guard only makes NaN input well defined. */
static uint8_t q4_code(float v) {
    if (!(v >= 0.0f)) return 0;
    if (v >= 15.0f) return 15;
    return (uint8_t)v;
}

static void q8_block_ref(const float *x, int8_t *qs, float *d_out) {
    const float d = block_amax(x) / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    for (int j = 0; j < QK; j++) qs[j] = q8_from_rounded(roundf(x[j] * id));
    *d_out = d;
}

/* Q8_K as ggml defines it: the scale carries the sign of the element of largest
 * magnitude (the first one on ties), which lands on code -127; codes round half
 * to even (ggml's magic-number rounding), and d is the float 1/iscale. */
static void q8k_block(const float *x, uint8_t *blk) {
    int8_t *qs = (int8_t *)(blk + offsetof(block_q8_k, qs));
    uint8_t *bsums = blk + offsetof(block_q8_k, bsums);
    float d;
    float amax = 0.0f, extreme = 0.0f;
    for (int j = 0; j < QK_K; j++)
        if (fabsf(x[j]) > amax) {
            amax = fabsf(x[j]);
            extreme = x[j];
        }
    if (amax == 0.0f) {
        memset(blk, 0, sizeof(block_q8_k));
        return;
    }
    const float iscale = -127.0f / extreme;
    for (int j = 0; j < QK_K; j++) qs[j] = q8_from_rounded(round_even(iscale * x[j]));
    for (int g = 0; g < QK_K / 16; g++) {
        int sum = 0;
        for (int i = 0; i < 16; i++) sum += qs[16 * g + i];
        const int16_t s16 = (int16_t)sum;
        memcpy(bsums + 2 * g, &s16, sizeof s16);
    }
    d = 1.0f / iscale;
    memcpy(blk + offsetof(block_q8_k, d), &d, sizeof d);
}

void quant_from_float_ref(uint32_t type, const float *src, void *dst, int64_t n) {
    switch (type) {
    case GGT_F32:
        memcpy(dst, src, (size_t)n * sizeof(float));
        return;
    case GGT_F16: {
        uint8_t *p = dst;
        for (int64_t i = 0; i < n; i++) {
            const uint16_t h = f32_to_f16(src[i]);
            memcpy(p + 2 * i, &h, 2);
        }
        return;
    }
    case GGT_BF16: {
        uint8_t *p = dst;
        for (int64_t i = 0; i < n; i++) {
            const uint16_t h = f32_to_bf16(src[i]);
            memcpy(p + 2 * i, &h, 2);
        }
        return;
    }
    case GGT_Q8_0: {
        block_q8_0 *y = dst;
        for (int64_t b = 0; b < n / QK; b++) {
            float d;
            q8_block_ref(src + b * QK, y[b].qs, &d);
            y[b].d = f32_to_f16(d);
        }
        return;
    }
    case GGT_Q8_1: {
        block_q8_1 *y = dst;
        for (int64_t b = 0; b < n / QK; b++) {
            float d;
            q8_block_ref(src + b * QK, y[b].qs, &d);
            int sum = 0;
            for (int j = 0; j < QK; j++) sum += y[b].qs[j];
            y[b].d = f32_to_f16(d);
            /* the sum is scaled by the float d, not by its fp16 rounding */
            y[b].s = f32_to_f16((float)sum * d);
        }
        return;
    }
    case GGT_Q8_K: {
        for (int64_t b = 0; b < n / QK_K; b++) q8k_block(src + b * QK_K, (uint8_t *)dst + (size_t)b * sizeof(block_q8_k));
        return;
    }
    case GGT_Q4_0: {
        block_q4_0 *y = dst;
        for (int64_t b = 0; b < n / QK; b++) {
            const float *x = src + b * QK;
            /* the scale keeps the sign of the element of largest magnitude, so
             * that element lands exactly on code 0 (value -8*d) */
            float amax = 0.0f, extreme = 0.0f;
            for (int j = 0; j < QK; j++)
                if (fabsf(x[j]) > amax) {
                    amax = fabsf(x[j]);
                    extreme = x[j];
                }
            const float d = extreme / -8.0f;
            const float id = d != 0.0f ? 1.0f / d : 0.0f;
            y[b].d = f32_to_f16(d);
            for (int j = 0; j < QK / 2; j++) {
                const uint8_t lo = q4_code(x[j] * id + 8.5f);
                const uint8_t hi = q4_code(x[j + QK / 2] * id + 8.5f);
                y[b].qs[j] = (uint8_t)(lo | hi << 4);
            }
        }
        return;
    }
    case GGT_Q4_1: {
        block_q4_1 *y = dst;
        for (int64_t b = 0; b < n / QK; b++) {
            const float *x = src + b * QK;
            float lo = FLT_MAX, hi = -FLT_MAX;
            for (int j = 0; j < QK; j++) {
                if (x[j] < lo) lo = x[j];
                if (x[j] > hi) hi = x[j];
            }
            const float d = (hi - lo) / 15.0f;
            const float id = d != 0.0f ? 1.0f / d : 0.0f;
            y[b].d = f32_to_f16(d);
            y[b].m = f32_to_f16(lo);
            for (int j = 0; j < QK / 2; j++) {
                const uint8_t c0 = q4_code((x[j] - lo) * id + 0.5f);
                const uint8_t c1 = q4_code((x[j + QK / 2] - lo) * id + 0.5f);
                y[b].qs[j] = (uint8_t)(c0 | c1 << 4);
            }
        }
        return;
    }
    default:
        return;
    }
}

/* ---- dot products ------------------------------------------------------ */

float quant_dot_ref(uint32_t wtype, int64_t n, const void *w, const void *a) {
    switch (wtype) {
    case GGT_F32: {
        /* ggml's portable float dots sum in double; rows need not be 4-aligned */
        const uint8_t *x = w, *y = a;
        double s = 0.0;
        for (int64_t i = 0; i < n; i++) {
            float fx, fy;
            memcpy(&fx, x + 4 * i, 4);
            memcpy(&fy, y + 4 * i, 4);
            s += (double)(fx * fy);
        }
        return (float)s;
    }
    case GGT_F16:
    case GGT_BF16: {
        const uint8_t *x = w, *y = a;
        double s = 0.0;
        for (int64_t i = 0; i < n; i++) {
            uint16_t hx, hy;
            memcpy(&hx, x + 2 * i, 2);
            memcpy(&hy, y + 2 * i, 2);
            const float fx = wtype == GGT_F16 ? f16_to_f32(hx) : bf16_to_f32(hx);
            const float fy = wtype == GGT_F16 ? f16_to_f32(hy) : bf16_to_f32(hy);
            s += (double)(fx * fy);
        }
        return (float)s;
    }
    case GGT_Q4_0: {
        const block_q4_0 *x = w;
        const block_q8_0 *y = a;
        float s = 0.0f;
        for (int64_t b = 0; b < n / QK; b++) {
            int sumi = 0;
            for (int j = 0; j < QK / 2; j++) {
                sumi += ((x[b].qs[j] & 15) - 8) * y[b].qs[j];
                sumi += ((x[b].qs[j] >> 4) - 8) * y[b].qs[j + QK / 2];
            }
            s += (float)sumi * f16_to_f32(x[b].d) * f16_to_f32(y[b].d);
        }
        return s;
    }
    case GGT_Q4_1: {
        const block_q4_1 *x = w;
        const block_q8_1 *y = a;
        float s = 0.0f;
        for (int64_t b = 0; b < n / QK; b++) {
            int sumi = 0;
            for (int j = 0; j < QK / 2; j++) {
                sumi += (x[b].qs[j] & 15) * y[b].qs[j];
                sumi += (x[b].qs[j] >> 4) * y[b].qs[j + QK / 2];
            }
            s += f16_to_f32(x[b].d) * f16_to_f32(y[b].d) * (float)sumi +
                 f16_to_f32(x[b].m) * f16_to_f32(y[b].s);
        }
        return s;
    }
    case GGT_Q8_0: {
        const block_q8_0 *x = w;
        const block_q8_0 *y = a;
        float s = 0.0f;
        for (int64_t b = 0; b < n / QK; b++) {
            int sumi = 0;
            for (int j = 0; j < QK; j++) sumi += x[b].qs[j] * y[b].qs[j];
            s += (float)sumi * (f16_to_f32(x[b].d) * f16_to_f32(y[b].d));
        }
        return s;
    }
    case GGT_Q5_0: {
        const block_q5_0 *x = w;
        const block_q8_0 *y = a;
        float s = 0.0f;
        int q[QK];
        for (int64_t b = 0; b < n / QK; b++) {
            q5_codes(x[b].qh, x[b].qs, q);
            int sumi = 0;
            for (int j = 0; j < QK; j++) sumi += (q[j] - 16) * y[b].qs[j];
            s += (f16_to_f32(x[b].d) * f16_to_f32(y[b].d)) * (float)sumi;
        }
        return s;
    }
    case GGT_Q5_1: {
        const block_q5_1 *x = w;
        const block_q8_1 *y = a;
        float s = 0.0f;
        int q[QK];
        for (int64_t b = 0; b < n / QK; b++) {
            q5_codes(x[b].qh, x[b].qs, q);
            int sumi = 0;
            for (int j = 0; j < QK; j++) sumi += q[j] * y[b].qs[j];
            s += (f16_to_f32(x[b].d) * f16_to_f32(y[b].d)) * (float)sumi +
                 f16_to_f32(x[b].m) * f16_to_f32(y[b].s);
        }
        return s;
    }
    case GGT_Q4_K:
    case GGT_Q5_K: {
        /* per super-block both integer sums are exact: the code term with the
         * sub-block scales, and the minimum term from the activation's bsums */
        const size_t bs = wtype == GGT_Q4_K ? sizeof(block_q4_k) : sizeof(block_q5_k);
        float s = 0.0f;
        int q[QK_K], sc[8], mn[8];
        for (int64_t b = 0; b < n / QK_K; b++) {
            float d, dmin;
            k45_codes(wtype, (const uint8_t *)w + (size_t)b * bs, q, sc, mn, &d, &dmin);
            const uint8_t *y = Q8K_BLOCK(a, b);
            const int8_t *yq = q8k_qs(y);
            int sumi = 0, summ = 0;
            for (int sb = 0; sb < 8; sb++) {
                int t = 0;
                for (int i = 0; i < 32; i++) t += q[32 * sb + i] * yq[32 * sb + i];
                sumi += sc[sb] * t;
                summ += mn[sb] * (q8k_bsum(y, 2 * sb) + q8k_bsum(y, 2 * sb + 1));
            }
            const float dy = q8k_d(y);
            s += d * dy * (float)sumi - dmin * dy * (float)summ;
        }
        return s;
    }
    case GGT_Q6_K: {
        const block_q6_k *x = w;
        float s = 0.0f;
        int q[QK_K];
        for (int64_t b = 0; b < n / QK_K; b++) {
            q6k_codes(&x[b], q);
            const uint8_t *y = Q8K_BLOCK(a, b);
            const int8_t *yq = q8k_qs(y);
            int sumi = 0;
            for (int sb = 0; sb < 16; sb++) {
                int t = 0;
                for (int i = 0; i < 16; i++) t += q[16 * sb + i] * yq[16 * sb + i];
                sumi += x[b].scales[sb] * t;
            }
            s += f16_to_f32(x[b].d) * q8k_d(y) * (float)sumi;
        }
        return s;
    }
    default:
        return NAN;
    }
}

void gemm_by_dot(float (*dot)(uint32_t, int64_t, const void *, const void *), uint32_t wtype,
                     int64_t k, const void *W, size_t w_stride, int i0, int i1, const void *A,
                     size_t a_stride, int n_a, float *C, int ldc) {
    /* weight row outer: it stays in cache while the activation rows go by */
    for (int i = i0; i < i1; i++) {
        const void *w = (const char *)W + (size_t)i * w_stride;
        for (int j = 0; j < n_a; j++)
            C[(size_t)j * (size_t)ldc + (size_t)i] = dot(wtype, k, w, (const char *)A + (size_t)j * a_stride);
    }
}
