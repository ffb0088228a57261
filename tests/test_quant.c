/* Block formats and products: fp16/bf16 conversions, hand-built blocks, round-trip
 * error bounds, and every kernel set this CPU offers against the scalar
 * references (bit-exact for conversions and quantization, summation-order
 * tolerance for dots and matrix tiles). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#include "ggtype.h"
#include "half.h"
#include "quant.h"
#include "quant_blocks.h"
#include "quant_ref.h"

static const char *const k_backends[] = {"scalar", "avx2", "avx512vnni", "amx"};
#define N_BACKENDS 4

static const uint32_t k_wtypes[] = {GGT_F32, GGT_F16, GGT_BF16, GGT_Q4_0, GGT_Q4_1, GGT_Q8_0};
#define N_WTYPES 6

static size_t row_bytes(uint32_t type, int64_t n) { return ggtype_row_bytes(type, (uint64_t)n); }

/* Backend i if this CPU has it (then it is forced), else 0. */
static int use_backend(int i) {
    if (quant_force_backend(k_backends[i]) != 0) return 0;
    assert_string_equal(quant_backend(), k_backends[i]);
    return 1;
}

static int teardown_backend(void **state) {
    (void)state;
    return quant_force_backend(NULL);
}

static int same_float(float a, float b) {
    if (isnan(a) || isnan(b)) return isnan(a) && isnan(b);
    return f32_to_bits(a) == f32_to_bits(b);
}

/* Floats that stress quantization: random magnitudes, ties of the rounding
 * (block maximum 127 makes the scale exactly 1), zero blocks, subnormals and,
 * when `specials`, infinities and NaN. */
static void fill_stress(uint64_t *st, float *x, int64_t n, int specials) {
    tu_rand_floats(st, x, (int)n);
    for (int64_t b = 0; b < n / QK; b++) {
        float *v = x + b * QK;
        switch (tu_next_u64(st) % 8) {
        case 0: /* exact halves: roundf and round-to-even disagree on these */
            for (int j = 0; j < QK; j++) v[j] = (float)((int)(tu_next_u64(st) % 254) - 127) + 0.5f;
            v[tu_next_u64(st) % QK] = 127.0f;
            break;
        case 1:
            for (int j = 0; j < QK; j++) v[j] = 0.0f;
            break;
        case 2:
            for (int j = 0; j < QK; j++) v[j] *= 1e-40f; /* subnormal block */
            break;
        case 3:
            for (int j = 0; j < QK; j++) v[j] *= 3e4f;
            break;
        case 4:
            if (specials) {
                v[tu_next_u64(st) % QK] = NAN;
                v[tu_next_u64(st) % QK] = (tu_next_u64(st) & 1) ? INFINITY : -INFINITY;
            }
            break;
        case 5: /* one outlier dominating the scale */
            v[tu_next_u64(st) % QK] = 1000.0f;
            break;
        default:
            break;
        }
    }
}

/* ---- dispatch and tables ----------------------------------------------- */

static void test_dispatch(void **state) {
    (void)state;
    assert_int_equal(quant_force_backend(NULL), 0);
    const char *best = quant_backend();
    assert_true(!strcmp(best, "scalar") || !strcmp(best, "avx2") || !strcmp(best, "avx512vnni") || !strcmp(best, "amx"));
    assert_int_equal(quant_force_backend("nonsense"), -1);
    assert_string_equal(quant_backend(), best); /* a failed force changes nothing */
    assert_int_equal(quant_force_backend("scalar"), 0);
    assert_string_equal(quant_backend(), "scalar");
    int n = 0;
    for (int i = 0; i < N_BACKENDS; i++) n += use_backend(i);
    printf("kernel sets available: %d (best: %s)\n", n, best);
    assert_int_equal(quant_force_backend(NULL), 0);
    assert_string_equal(quant_backend(), best);
    /* the public face of the same choice */
    assert_string_equal(kvs_kernels_name(), best);
    assert_int_equal(kvs_kernels_use("nonsense"), KVS_E_ARG);
    assert_int_equal(kvs_kernels_use("scalar"), KVS_OK);
    assert_string_equal(kvs_kernels_name(), "scalar");
    assert_int_equal(kvs_kernels_use(NULL), KVS_OK);
    assert_string_equal(kvs_kernels_name(), best);
}

static void test_types(void **state) {
    (void)state;
    for (int i = 0; i < N_WTYPES; i++) assert_true(quant_supported(k_wtypes[i]));
    assert_false(quant_supported(GGT_Q2_K));
    assert_false(quant_supported(GGT_IQ4_NL));
    assert_false(quant_supported(1000));
    assert_int_equal(quant_dot_type(GGT_Q4_0), GGT_Q8_0);
    assert_int_equal(quant_dot_type(GGT_Q4_1), GGT_Q8_1);
    assert_int_equal(quant_dot_type(GGT_Q8_0), GGT_Q8_0);
    assert_int_equal(quant_dot_type(GGT_F16), GGT_F16);
    assert_int_equal(quant_dot_type(GGT_BF16), GGT_BF16);
    assert_int_equal(quant_dot_type(GGT_F32), GGT_F32);
    assert_null(ggtype_get(quant_dot_type(GGT_Q3_K)));
    assert_int_equal(sizeof(block_q4_0), 18);
    assert_int_equal(sizeof(block_q4_1), 20);
    assert_int_equal(sizeof(block_q8_0), 34);
    assert_int_equal(sizeof(block_q8_1), 36);
}

/* ---- fp16 / bf16 ------------------------------------------------------- */

static void test_f16_all_patterns(void **state) {
    (void)state;
    for (uint32_t h = 0; h < 65536; h++) {
        const float f = f16_to_f32((uint16_t)h);
        const int nan = (h & 0x7c00) == 0x7c00 && (h & 0x3ff);
        assert_int_equal(isnan(f) != 0, nan);
        if (nan) {
            assert_true(isnan(f16_to_f32(f32_to_f16(f))));
            continue;
        }
        assert_int_equal(f32_to_f16(f), h);
        /* the value itself: sign * 2^(e-15) * 1.m, or subnormal m * 2^-24 */
        const uint32_t e = (h >> 10) & 31, m = h & 0x3ff;
        double v = e == 0 ? m * ldexp(1.0, -24) : e == 31 ? INFINITY : ldexp(1.0 + m / 1024.0, (int)e - 15);
        if (h & 0x8000) v = -v;
        assert_true((double)f == v);
    }
}

static void test_bf16_all_patterns(void **state) {
    (void)state;
    for (uint32_t h = 0; h < 65536; h++) {
        const float f = bf16_to_f32((uint16_t)h);
        assert_int_equal(f32_to_bits(f), h << 16);
        if (isnan(f))
            assert_true(isnan(bf16_to_f32(f32_to_bf16(f))));
        else
            assert_int_equal(f32_to_bf16(f), h);
    }
}

static void test_half_rounding(void **state) {
    (void)state;
    /* ties go to the even neighbour */
    assert_int_equal(f32_to_f16(1.0f + 0x1p-11f), 0x3c00);
    assert_int_equal(f32_to_f16(1.0f + 3 * 0x1p-11f), 0x3c02);
    assert_int_equal(f32_to_f16(-(1.0f + 3 * 0x1p-11f)), 0xbc02);
    assert_int_equal(f32_to_f16(1.0f + 0x1p-11f + 0x1p-20f), 0x3c01); /* above the tie */
    /* subnormal halves */
    assert_int_equal(f32_to_f16(0x1p-24f), 0x0001);
    assert_int_equal(f32_to_f16(0x1p-25f), 0x0000);     /* tie to even (0) */
    assert_int_equal(f32_to_f16(3 * 0x1p-25f), 0x0002); /* tie to even (2) */
    assert_int_equal(f32_to_f16(0x1p-25f * 1.0001f), 0x0001);
    assert_int_equal(f32_to_f16(0x1p-14f - 0x1p-25f), 0x0400); /* rounds up into normals */
    /* overflow */
    assert_int_equal(f32_to_f16(65504.0f), 0x7bff);
    assert_int_equal(f32_to_f16(65519.0f), 0x7bff);
    assert_int_equal(f32_to_f16(65520.0f), 0x7c00);
    assert_int_equal(f32_to_f16(-1e10f), 0xfc00);
    assert_int_equal(f32_to_f16(-0.0f), 0x8000);
    assert_int_equal(f32_to_f16(NAN) & 0x7c00, 0x7c00);
    assert_true((f32_to_f16(NAN) & 0x3ff) != 0);
    /* bfloat16 */
    assert_int_equal(f32_to_bf16(bits_to_f32(0x3f808000u)), 0x3f80);
    assert_int_equal(f32_to_bf16(bits_to_f32(0x3f818000u)), 0x3f82);
    assert_int_equal(f32_to_bf16(bits_to_f32(0x3f808001u)), 0x3f81);
    assert_int_equal(f32_to_bf16(bits_to_f32(0x7f7fffffu)), 0x7f80); /* FLT_MAX -> inf */
    assert_int_equal(f32_to_bf16(bits_to_f32(0x7f800001u)) & 0x7fc0, 0x7fc0); /* quiet NaN */
}

/* Fast F16/BF16 conversions equal the references on every half and on many
 * float bit patterns (NaN, inf, subnormal, ties included). */
static void test_half_conversions_backends(void **state) {
    (void)state;
    const int n = 65536 + 5; /* odd tail exercises the scalar remainder */
    uint16_t *h = tu_xmalloc(2 * (size_t)n), *o1 = tu_xmalloc(2 * (size_t)n), *o2 = tu_xmalloc(2 * (size_t)n);
    float *f1 = tu_xmalloc(4 * (size_t)n), *f2 = tu_xmalloc(4 * (size_t)n), *x = tu_xmalloc(4 * (size_t)n);
    uint64_t st = 99;
    for (int i = 0; i < n; i++) h[i] = (uint16_t)i;
    for (int i = 0; i < n; i++) {
        uint32_t u = (uint32_t)tu_next_u64(&st);
        switch (i % 4) {
        case 0: break;                                               /* anything */
        case 1: u = (u & 0x80000000u) | (0x33000000u + u % 0x14800000u); break; /* f16 range */
        case 2: u &= 0xffffe000u | (1u << 12); break;                /* f16 ties */
        default: u &= 0xffff8000u; break;                            /* bf16 ties */
        }
        x[i] = bits_to_f32(u);
    }
    for (int bi = 0; bi < N_BACKENDS; bi++) {
        if (!use_backend(bi)) continue;
        const uint32_t types[2] = {GGT_F16, GGT_BF16};
        for (int t = 0; t < 2; t++) {
            quant_to_float_ref(types[t], h, f1, n);
            quant_to_float(types[t], h, f2, n);
            assert_memory_equal(f1, f2, 4 * (size_t)n);
            quant_from_float_ref(types[t], x, o1, n);
            quant_from_float(types[t], x, o2, n);
            assert_memory_equal(o1, o2, 2 * (size_t)n);
        }
    }
    free(h); free(o1); free(o2); free(f1); free(f2); free(x);
}

/* ---- hand-built blocks ------------------------------------------------- */

static void test_hand_blocks(void **state) {
    (void)state;
    float out[QK];
    block_q4_1 b41;
    b41.d = f32_to_f16(0.5f);
    b41.m = f32_to_f16(-1.0f);
    for (int j = 0; j < 16; j++) b41.qs[j] = (uint8_t)(j | (15 - j) << 4);
    block_q4_0 b40;
    b40.d = f32_to_f16(2.0f);
    memcpy(b40.qs, b41.qs, 16);
    block_q8_0 b80;
    b80.d = f32_to_f16(0.25f);
    for (int j = 0; j < QK; j++) b80.qs[j] = (int8_t)(j - 16);
    for (int bi = 0; bi < N_BACKENDS; bi++) {
        if (!use_backend(bi)) continue;
        quant_to_float(GGT_Q4_1, &b41, out, QK);
        for (int j = 0; j < 16; j++) {
            assert_true(out[j] == 0.5f * j - 1.0f);
            assert_true(out[j + 16] == 0.5f * (15 - j) - 1.0f);
        }
        quant_to_float(GGT_Q4_0, &b40, out, QK);
        for (int j = 0; j < 16; j++) {
            assert_true(out[j] == 2.0f * (j - 8));
            assert_true(out[j + 16] == 2.0f * (7 - j));
        }
        quant_to_float(GGT_Q8_0, &b80, out, QK);
        for (int j = 0; j < QK; j++) assert_true(out[j] == 0.25f * (j - 16));
    }
}

/* Q8 quantization of a block whose maximum is 127 (so d = 1 exactly): codes are
 * roundf of the inputs, halves away from zero. */
static void test_q8_hand_quantization(void **state) {
    (void)state;
    float x[QK];
    int8_t want[QK];
    int sum = 0;
    for (int j = 0; j < QK; j++) {
        x[j] = (float)(j * 7 % 61 - 30);
        want[j] = (int8_t)x[j];
    }
    const float ties[6] = {2.5f, -2.5f, 0.5f, -0.5f, 126.5f, 0.49999997f};
    const int8_t tie_codes[6] = {3, -3, 1, -1, 127, 0};
    for (int t = 0; t < 6; t++) {
        x[1 + t] = ties[t];
        want[1 + t] = tie_codes[t];
    }
    x[0] = -127.0f;
    want[0] = -127;
    for (int j = 0; j < QK; j++) sum += want[j];
    for (int bi = 0; bi < N_BACKENDS; bi++) {
        if (!use_backend(bi)) continue;
        block_q8_0 a;
        block_q8_1 c;
        quant_from_float(GGT_Q8_0, x, &a, QK);
        quant_from_float(GGT_Q8_1, x, &c, QK);
        assert_int_equal(a.d, 0x3c00);
        assert_int_equal(c.d, 0x3c00);
        assert_memory_equal(a.qs, want, QK);
        assert_memory_equal(c.qs, want, QK);
        assert_int_equal(c.s, f32_to_f16((float)sum));
    }
    /* s is fp16(d * sum) with the float d, before d itself is rounded to fp16 */
    uint64_t st = 5;
    for (int rep = 0; rep < 200; rep++) {
        tu_rand_floats(&st, x, QK);
        block_q8_1 c;
        quant_from_float_ref(GGT_Q8_1, x, &c, QK);
        float amax = 0.0f;
        int s = 0;
        for (int j = 0; j < QK; j++) amax = fmaxf(amax, fabsf(x[j]));
        for (int j = 0; j < QK; j++) s += c.qs[j];
        const float d = amax / 127.0f;
        assert_int_equal(c.d, f32_to_f16(d));
        assert_int_equal(c.s, f32_to_f16((float)s * d));
    }
}

/* Q4_0 keeps the sign of the largest-magnitude element in d; Q4_1 stores the
 * minimum in m and (max-min)/15 in d. */
static void test_q4_hand_quantization(void **state) {
    (void)state;
    float x[QK];
    for (int j = 0; j < QK; j++) x[j] = (float)(j - 8) * 0.5f; /* -4 .. 11.5 */
    block_q4_0 a;
    quant_from_float_ref(GGT_Q4_0, x, &a, QK);
    assert_int_equal(a.d, f32_to_f16(11.5f / -8.0f));
    /* the maximum (element 31) lands on code 0 */
    assert_int_equal(a.qs[15] >> 4, 0);
    block_q4_1 c;
    for (int j = 0; j < QK; j++) x[j] = -1.0f + 0.5f * (float)(j % 16); /* -1 .. 6.5 */
    quant_from_float_ref(GGT_Q4_1, x, &c, QK);
    assert_int_equal(c.d, f32_to_f16(0.5f));
    assert_int_equal(c.m, f32_to_f16(-1.0f));
    for (int j = 0; j < 16; j++) assert_int_equal(c.qs[j], j | j << 4);
}

/* Q4_1 x Q8_1 and Q4_0/Q8_0 x Q8_0 products of hand-made blocks, where every
 * operation is exact so the expected values are exact too. */
static void test_hand_dots(void **state) {
    (void)state;
    block_q4_1 w1[2];
    block_q8_1 a1[2];
    block_q4_0 w0[2];
    block_q8_0 a0[2], w8[2];
    double e41 = 0, e40 = 0, e80 = 0;
    for (int b = 0; b < 2; b++) {
        w1[b].d = f32_to_f16(0.5f * (float)(b + 1));
        w1[b].m = f32_to_f16(-0.25f);
        w0[b].d = f32_to_f16(0.125f);
        w8[b].d = f32_to_f16(2.0f);
        a1[b].d = a0[b].d = f32_to_f16(0.5f);
        int sq = 0, s41 = 0, s40 = 0, s80 = 0;
        for (int j = 0; j < QK; j++) {
            a1[b].qs[j] = a0[b].qs[j] = (int8_t)((j * 37 + b * 11) % 255 - 127);
            w8[b].qs[j] = (int8_t)((j * 53 + b) % 256 - 128); /* includes -128 */
            sq += a1[b].qs[j];
        }
        for (int j = 0; j < 16; j++) {
            w1[b].qs[j] = w0[b].qs[j] = (uint8_t)((j * 5 + b) % 16 | ((j * 3 + 7 * b) % 16) << 4);
            const int lo = w1[b].qs[j] & 15, hi = w1[b].qs[j] >> 4;
            s41 += lo * a1[b].qs[j] + hi * a1[b].qs[j + 16];
            s40 += (lo - 8) * a0[b].qs[j] + (hi - 8) * a0[b].qs[j + 16];
        }
        for (int j = 0; j < QK; j++) s80 += w8[b].qs[j] * a0[b].qs[j];
        a1[b].s = f32_to_f16(0.5f * (float)sq);
        e41 += 0.5 * (b + 1) * 0.5 * s41 + (-0.25) * f16_to_f32(a1[b].s);
        e40 += 0.125 * 0.5 * s40;
        e80 += 2.0 * 0.5 * s80;
    }
    for (int bi = 0; bi < N_BACKENDS; bi++) {
        if (!use_backend(bi)) continue;
        assert_true(quant_dot(GGT_Q4_1, 64, w1, a1) == (float)e41);
        assert_true(quant_dot(GGT_Q4_0, 64, w0, a0) == (float)e40);
        /* -128 weights are valid data for every kernel set */
        assert_true(quant_dot(GGT_Q8_0, 64, w8, a0) == (float)e80);
    }
}

/* ---- round trips ------------------------------------------------------- */

static void test_round_trip_bounds(void **state) {
    (void)state;
    const int64_t n = 4096;
    float *x = tu_xmalloc(4 * (size_t)n), *y = tu_xmalloc(4 * (size_t)n);
    void *q = tu_xmalloc(row_bytes(GGT_F32, n));
    uint64_t st = 1234;
    const uint32_t types[] = {GGT_F16, GGT_BF16, GGT_Q8_0, GGT_Q8_1, GGT_Q4_0, GGT_Q4_1};
    for (int bi = 0; bi < N_BACKENDS; bi++) {
        if (!use_backend(bi)) continue;
        for (int t = 0; t < 6; t++) {
            fill_stress(&st, x, n, 0);
            for (int64_t i = 0; i < n; i++)
                if (fabsf(x[i]) > 6e4f) x[i] = copysignf(6e4f, x[i]); /* keep fp16 scales finite */
            quant_from_float(types[t], x, q, n);
            quant_to_float(types[t], q, y, n);
            for (int64_t b = 0; b < n / QK; b++) {
                float mn = INFINITY, mx = -INFINITY, amax = 0.0f;
                for (int j = 0; j < QK; j++) {
                    const float v = x[b * QK + j];
                    mn = fminf(mn, v);
                    mx = fmaxf(mx, v);
                    amax = fmaxf(amax, fabsf(v));
                }
                for (int j = 0; j < QK; j++) {
                    const int64_t i = b * QK + j;
                    const double err = fabs((double)x[i] - (double)y[i]);
                    double bound;
                    switch (types[t]) {
                    case GGT_F16: bound = fabs(x[i]) * 0x1p-11 + 0x1p-25; break;
                    case GGT_BF16: bound = fabs(x[i]) * 0x1p-8 + 0x1p-133; break;
                    case GGT_Q8_0:
                    case GGT_Q8_1: /* half a step, plus the fp16 rounding of d times 127 */
                        bound = amax / 127.0 * (0.5 + 127.0 * 0x1p-11) + 0x1p-20;
                        break;
                    case GGT_Q4_0: /* one step: the far end is clipped at code 15 */
                        bound = amax / 8.0 * (1.0 + 16.0 * 0x1p-11) + 0x1p-20;
                        break;
                    default: /* Q4_1: half a step, fp16 d (15 steps) and fp16 m */
                        bound = (mx - mn) / 15.0 * (0.5 + 15.0 * 0x1p-11) + fabs(mn) * 0x1p-11 +
                                0x1p-20;
                        break;
                    }
                    if (!(err <= bound))
                        fail_msg("%s type %u elem %lld: x=%g y=%g err=%g bound=%g", k_backends[bi],
                                 types[t], (long long)i, x[i], y[i], err, bound);
                }
            }
        }
    }
    free(x); free(y); free(q);
}

/* ---- every backend against the references ------------------------------ */

static void test_from_float_backends(void **state) {
    (void)state;
    const int64_t n = 32 * 301;
    float *x = tu_xmalloc(4 * (size_t)n);
    const uint32_t types[] = {GGT_F32, GGT_F16, GGT_BF16, GGT_Q8_0, GGT_Q8_1, GGT_Q4_0, GGT_Q4_1};
    uint8_t *r = tu_xmalloc(row_bytes(GGT_F32, n)), *f = tu_xmalloc(row_bytes(GGT_F32, n));
    uint64_t st = 77;
    for (int rep = 0; rep < 4; rep++) {
        fill_stress(&st, x, n, rep & 1);
        for (int t = 0; t < 7; t++) {
            const size_t rb = row_bytes(types[t], n);
            quant_from_float_ref(types[t], x, r, n);
            for (int bi = 0; bi < N_BACKENDS; bi++) {
                if (!use_backend(bi)) continue;
                memset(f, 0xa5, rb);
                quant_from_float(types[t], x, f, n);
                if (memcmp(r, f, rb)) {
                    size_t at = 0;
                    while (r[at] == f[at]) at++;
                    fail_msg("%s: quantizing to type %u differs at byte %zu", k_backends[bi], types[t], at);
                }
                if (types[t] == GGT_Q8_0 || types[t] == GGT_Q8_1) { /* codes stay in -127..127 */
                    const size_t bs = types[t] == GGT_Q8_0 ? sizeof(block_q8_0) : sizeof(block_q8_1);
                    for (size_t o = 0; o < rb; o += bs)
                        for (size_t c = bs - QK; c < bs; c++) assert_int_not_equal(f[o + c], 0x80);
                }
            }
        }
    }
    free(x); free(r); free(f);
}

static void test_to_float_backends(void **state) {
    (void)state;
    const int64_t n = 32 * 77;
    const uint32_t types[] = {GGT_F32, GGT_F16, GGT_BF16, GGT_Q8_0, GGT_Q8_1, GGT_Q4_0, GGT_Q4_1};
    uint8_t *q = tu_xmalloc(row_bytes(GGT_F32, n));
    float *r = tu_xmalloc(4 * (size_t)n), *f = tu_xmalloc(4 * (size_t)n);
    uint64_t st = 4242;
    for (int t = 0; t < 7; t++) {
        const size_t rb = row_bytes(types[t], n);
        for (size_t i = 0; i < rb; i++) q[i] = (uint8_t)tu_next_u64(&st);
        /* finite fp16 scales (a NaN or inf scale is tested by the F16 paths) */
        const size_t bs = (size_t)ggtype_get(types[t])->bytes;
        if (ggtype_get(types[t])->block == QK)
            for (size_t o = 0; o < rb; o += bs) {
                const uint16_t d = (uint16_t)(tu_next_u64(&st) % 0x7800);
                const uint16_t m = (uint16_t)((tu_next_u64(&st) % 0x7800) | (tu_next_u64(&st) & 0x8000));
                memcpy(q + o, &d, 2);
                if (types[t] == GGT_Q4_1) memcpy(q + o + 2, &m, 2);
            }
        quant_to_float_ref(types[t], q, r, n);
        for (int bi = 0; bi < N_BACKENDS; bi++) {
            if (!use_backend(bi)) continue;
            quant_to_float(types[t], q, f, n);
            for (int64_t i = 0; i < n; i++)
                if (!same_float(r[i], f[i]))
                    fail_msg("%s: type %u element %lld: %g vs %g", k_backends[bi], types[t], (long long)i,
                             r[i], f[i]);
        }
    }
    free(q); free(r); free(f);
}

/* Sum over the product's terms of their magnitudes: the scale of float
 * summation-order differences. */
static double abs_terms(uint32_t wtype, int64_t k, const void *w, const void *a) {
    const uint32_t at = quant_dot_type(wtype);
    float *x = tu_xmalloc(4 * (size_t)k), *y = tu_xmalloc(4 * (size_t)k);
    quant_to_float_ref(wtype, w, x, k);
    quant_to_float_ref(at, a, y, k);
    double s = 0.0;
    for (int64_t i = 0; i < k; i++) s += fabs((double)x[i] * y[i]);
    if (wtype == GGT_Q4_1) { /* m*s per block, and the d*q part regrouped */
        const block_q4_1 *wb = w;
        const block_q8_1 *ab = a;
        for (int64_t b = 0; b < k / QK; b++) {
            s += fabs((double)f16_to_f32(wb[b].m) * f16_to_f32(ab[b].s));
            double t = 0;
            for (int j = 0; j < 16; j++)
                t += (wb[b].qs[j] & 15) * fabs((double)ab[b].qs[j]) +
                     (wb[b].qs[j] >> 4) * fabs((double)ab[b].qs[j + 16]);
            s += t * fabs((double)f16_to_f32(wb[b].d) * f16_to_f32(ab[b].d));
        }
    }
    free(x);
    free(y);
    return s;
}

/* A random weight matrix of `rows` rows of k elements, `stride` bytes apart. */
static void make_weights(uint64_t *st, uint32_t wtype, int64_t k, int rows, size_t stride, uint8_t *W) {
    float *x = tu_xmalloc(4 * (size_t)k);
    for (int i = 0; i < rows; i++) {
        fill_stress(st, x, k, 0);
        for (int64_t e = 0; e < k; e++)
            if (fabsf(x[e]) > 100.0f) x[e] = copysignf(100.0f, x[e]);
        quant_from_float_ref(wtype, x, W + (size_t)i * stride, k);
        if (wtype == GGT_Q8_0 && (i & 1)) { /* raw codes, -128 included */
            for (int64_t b = 0; b < k / QK; b++)
                for (int j = 0; j < QK; j++)
                    ((block_q8_0 *)(void *)(W + (size_t)i * stride))[b].qs[j] = (int8_t)tu_next_u64(st);
        }
    }
    free(x);
}

static void make_acts(uint64_t *st, uint32_t atype, int64_t k, int n, size_t stride, uint8_t *A) {
    float *x = tu_xmalloc(4 * (size_t)k);
    for (int j = 0; j < n; j++) {
        tu_rand_floats(st, x, (int)k);
        for (int64_t e = 0; e < k; e++) x[e] *= (float)(1 + (j % 7)) * ((e % 97) == 3 ? 40.0f : 1.0f);
        if (j % 5 == 4 && k >= 2 * QK) /* a subnormal block: 1/d overflows, codes saturate */
            for (int e = QK; e < 2 * QK; e++) x[e] *= 1e-41f;
        quant_from_float_ref(atype, x, A + (size_t)j * stride, k);
    }
    free(x);
}

static void test_dot_backends(void **state) {
    (void)state;
    const int64_t ks[] = {32, 64, 96, 576, 1536, 8192, 8192 + 96};
    uint64_t st = 31337;
    for (int t = 0; t < N_WTYPES; t++) {
        const uint32_t wt = k_wtypes[t], at = quant_dot_type(wt);
        for (int ki = 0; ki < 7; ki++) {
            for (int64_t k = ks[ki]; k <= ks[ki] + (ggtype_get(wt)->block == 1 ? 7 : 0); k += 7) {
                uint8_t *w = tu_xmalloc(row_bytes(wt, k)), *a = tu_xmalloc(row_bytes(at, k));
                make_weights(&st, wt, k, 1, 0, w);
                make_acts(&st, at, k, 1, 0, a);
                const float ref = quant_dot_ref(wt, k, w, a);
                const double tol = 1e-5 * abs_terms(wt, k, w, a) + 1e-30;
                for (int bi = 0; bi < N_BACKENDS; bi++) {
                    if (!use_backend(bi)) continue;
                    const float got = quant_dot(wt, k, w, a);
                    if (!(fabs((double)got - ref) <= tol))
                        fail_msg("%s: dot type %u k=%lld: %.9g vs ref %.9g (tol %g)", k_backends[bi], wt,
                                 (long long)k, got, ref, tol);
                }
                free(w);
                free(a);
            }
        }
    }
}

static void check_gemm(uint64_t *st, uint32_t wt, int64_t k, int rows, int i0, int i1, int n_a) {
    const uint32_t at = quant_dot_type(wt);
    /* padded strides and leading dimension catch indexing mistakes */
    const size_t ws = row_bytes(wt, k) + 6, as = row_bytes(at, k) + 10;
    const int ldc = rows + 3;
    uint8_t *W = tu_xmalloc(ws * (size_t)rows), *A = tu_xmalloc(as * (size_t)n_a);
    float *C = tu_xmalloc(sizeof(float) * (size_t)ldc * (size_t)n_a);
    float *R = tu_xmalloc(sizeof(float) * (size_t)ldc * (size_t)n_a);
    double *T = tu_xmalloc(sizeof(double) * (size_t)ldc * (size_t)n_a);
    memset(W, 0x5a, ws * (size_t)rows);
    memset(A, 0x5a, as * (size_t)n_a);
    make_weights(st, wt, k, rows, ws, W);
    make_acts(st, at, k, n_a, as, A);
    for (int j = 0; j < n_a; j++)
        for (int i = i0; i < i1; i++) {
            const void *w = W + (size_t)i * ws, *a = A + (size_t)j * as;
            R[(size_t)j * ldc + i] = quant_dot_ref(wt, k, w, a);
            T[(size_t)j * ldc + i] = abs_terms(wt, k, w, a);
        }
    for (int bi = 0; bi < N_BACKENDS; bi++) {
        if (!use_backend(bi)) continue;
        for (size_t e = 0; e < (size_t)ldc * (size_t)n_a; e++) C[e] = -12345.0f;
        quant_gemm(wt, k, W, ws, i0, i1, A, as, n_a, C, ldc);
        int bad = 0;
        for (int j = 0; j < n_a; j++)
            for (int i = 0; i < ldc; i++) {
                const float got = C[(size_t)j * ldc + i];
                if (i < i0 || i >= i1) {
                    if (got != -12345.0f)
                        fail_msg("%s: gemm wrote outside its tile (type %u, i=%d j=%d)", k_backends[bi], wt, i, j);
                    continue;
                }
                const float ref = R[(size_t)j * ldc + i];
                const double tol = 1e-5 * T[(size_t)j * ldc + i] + 1e-30;
                if (!(fabs((double)got - ref) <= tol) && bad++ < 5)
                    print_error("%s: gemm type %u k=%lld rows %d..%d n_a=%d at (%d,%d): %.9g vs %.9g (tol %g)\n",
                                k_backends[bi], wt, (long long)k, i0, i1, n_a, i, j, got, ref, tol);
            }
        if (bad) fail_msg("%s: %d gemm results out of tolerance", k_backends[bi], bad);
    }
    free(W); free(A); free(C); free(R); free(T);
}

static void test_gemm_backends(void **state) {
    (void)state;
    uint64_t st = 2024;
    const int n_as[] = {1, 2, 3, 5, 16, 33};
    for (int t = 0; t < N_WTYPES; t++) {
        const uint32_t wt = k_wtypes[t];
        const int flt = ggtype_get(wt)->block == 1;
        for (int ni = 0; ni < 6; ni++) {
            const int n_a = n_as[ni];
            /* rows and odd row ranges around the kernels' tile sizes */
            check_gemm(&st, wt, 576, 21, 3, 20, n_a);
            check_gemm(&st, wt, 96, 9, 0, 9, n_a);
            check_gemm(&st, wt, 32, 5, 4, 5, n_a);
            check_gemm(&st, wt, 160, 17, 1, 16, n_a);
            /* a last super-block of 4, 6 or 7 blocks (the 32-wide formats count
             * eight blocks as one): Qwen2.5-0.5B's rows of 896 end in one of 4 */
            check_gemm(&st, wt, 896, 9, 0, 9, n_a);
            check_gemm(&st, wt, 192, 6, 0, 6, n_a);
            check_gemm(&st, wt, 224, 7, 2, 7, n_a);
            if (flt) check_gemm(&st, wt, 37, 6, 1, 6, n_a);
        }
        /* long rows, and rows longer than one k-chunk of the SIMD kernels */
        check_gemm(&st, wt, 8192, 5, 0, 5, 3);
        check_gemm(&st, wt, 8192, 5, 0, 5, 19); /* several staged groups of activation rows */
        check_gemm(&st, wt, 8192 + 64, 6, 1, 6, 5);
        check_gemm(&st, wt, 3 * 8192 + 32, 3, 0, 3, 2);
        check_gemm(&st, wt, 1024, 64, 0, 64, 17);
        check_gemm(&st, wt, 0, 3, 0, 3, 2); /* empty rows give zeros */
    }
}

/* Each output element is the same bits whatever else is computed with it: other
 * activation rows (a sequence's tokens must not depend on the batch) and other
 * weight rows (threads split the rows differently). */
static void test_gemm_batch_independent(void **state) {
    (void)state;
    uint64_t st = 77;
    const uint32_t types[] = {GGT_Q4_0, GGT_Q4_1, GGT_Q8_0, GGT_F16};
    const int64_t ks[] = {576, 896, 1536, 64 * 32 * 2 + 96};
    for (int bi = 0; bi < N_BACKENDS; bi++) {
        if (!use_backend(bi)) continue;
        for (size_t ti = 0; ti < sizeof types / sizeof *types; ti++)
            for (size_t ki = 0; ki < sizeof ks / sizeof *ks; ki++) {
                const uint32_t wt = types[ti];
                const int64_t k = ks[ki];
                const int rows = 37, n_a = 37;
                const uint32_t at = quant_dot_type(wt);
                const size_t ws = row_bytes(wt, k), as = row_bytes(at, k);
                float *x = tu_xmalloc(sizeof(float) * (size_t)(k * (rows > n_a ? rows : n_a)));
                uint8_t *W = tu_xmalloc(ws * rows), *A = tu_xmalloc(as * n_a);
                tu_rand_floats(&st, x, (int)(k * rows));
                quant_from_float_ref(wt, x, W, k * rows);
                tu_rand_floats(&st, x, (int)(k * n_a));
                for (int j = 0; j < n_a; j++) quant_from_float(at, x + j * k, A + j * as, k);
                float *all = tu_xmalloc(sizeof(float) * rows * n_a), *one = tu_xmalloc(sizeof(float) * rows);
                quant_gemm(wt, k, W, ws, 0, rows, A, as, n_a, all, rows);
                for (int j = 0; j < n_a; j++) {
                    /* activation row j alone, and the weight rows in uneven pieces */
                    quant_gemm(wt, k, W, ws, 0, 5, A + j * as, as, 1, one, rows);
                    quant_gemm(wt, k, W, ws, 5, 22, A + j * as, as, 1, one, rows);
                    quant_gemm(wt, k, W, ws, 22, rows, A + j * as, as, 1, one, rows);
                    for (int i = 0; i < rows; i++)
                        if (!same_float(one[i], all[j * rows + i]))
                            fail_msg("%s: type %u k=%lld: row %d act %d: %.9g alone, %.9g in the batch", k_backends[bi],
                                     wt, (long long)k, i, j, one[i], all[j * rows + i]);
                }
                free(x); free(W); free(A); free(all); free(one);
            }
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_dispatch, teardown_backend),
        cmocka_unit_test(test_types),
        cmocka_unit_test(test_f16_all_patterns),
        cmocka_unit_test(test_bf16_all_patterns),
        cmocka_unit_test(test_half_rounding),
        cmocka_unit_test_teardown(test_half_conversions_backends, teardown_backend),
        cmocka_unit_test_teardown(test_hand_blocks, teardown_backend),
        cmocka_unit_test_teardown(test_q8_hand_quantization, teardown_backend),
        cmocka_unit_test(test_q4_hand_quantization),
        cmocka_unit_test_teardown(test_hand_dots, teardown_backend),
        cmocka_unit_test_teardown(test_round_trip_bounds, teardown_backend),
        cmocka_unit_test_teardown(test_from_float_backends, teardown_backend),
        cmocka_unit_test_teardown(test_to_float_backends, teardown_backend),
        cmocka_unit_test_teardown(test_dot_backends, teardown_backend),
        cmocka_unit_test_teardown(test_gemm_backends, teardown_backend),
        cmocka_unit_test_teardown(test_gemm_batch_independent, teardown_backend),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
