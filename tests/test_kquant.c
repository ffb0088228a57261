/* Q5_0, Q5_1 and the K-quants (Q4_K, Q5_K, Q6_K with Q8_K activations):
 *  - dequantization against goldens from an independent implementation (the
 *    gguf Python package, tools/make_kquant_goldens.py), bit for bit;
 *  - Q8_K activation quantization: every kernel set bit-identical to the
 *    reference, plus the format's invariants (bsums, the extreme code, error);
 *  - dot products: the reference against a double-precision sum over the
 *    dequantized rows (which checks the reference's reading of the layouts),
 *    and every kernel set and matrix tile against the reference;
 *  - batch independence: a product's bits do not depend on the other rows;
 *  - the lanes layouts of the 32-wide formats (engine/lanes.h): a row survives the round
 *    trip, and products and dequantized rows from them are the file layout's
 *    bits in every kernel set (natively or converted back). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#include "ggtype.h"
#include "half.h"
#include "lanes.h"
#include "quant.h"
#include "quant_blocks.h"
#include "quant_ref.h"

static const char *const k_backends[] = {"scalar", "avx2", "avx512vnni", "amx"};
#define N_BACKENDS 4

static const uint32_t k_wtypes[] = {GGT_Q5_0, GGT_Q5_1, GGT_Q4_K, GGT_Q5_K, GGT_Q6_K};
#define N_WTYPES 5

static int use_backend(int i) {
    if (quant_force_backend(k_backends[i]) != 0) return 0;
    assert_string_equal(quant_backend(), k_backends[i]);
    return 1;
}

static int teardown_backend(void **state) {
    (void)state;
    return quant_force_backend(NULL);
}

static size_t row_bytes(uint32_t type, int64_t k) { return ggtype_row_bytes(type, (uint64_t)k); }

/* Byte ranges of a block: where its fp16 factors are and where the codes
 * (everything that is neither a factor nor a sub-block scale) are. */
static void layout(uint32_t t, int *f0, int *f1, int *c0, int *c1) {
    switch (t) {
    case GGT_Q5_0: *f0 = 0, *f1 = -1, *c0 = 2, *c1 = 22; return;
    case GGT_Q5_1: *f0 = 0, *f1 = 2, *c0 = 4, *c1 = 24; return;
    /* (for the lanes test) */
    case GGT_Q4_0: *f0 = 0, *f1 = -1, *c0 = 2, *c1 = 18; return;
    case GGT_Q4_1: *f0 = 0, *f1 = 2, *c0 = 4, *c1 = 20; return;
    case GGT_Q8_0: *f0 = 0, *f1 = -1, *c0 = 2, *c1 = 34; return;
    case GGT_Q4_K: *f0 = 0, *f1 = 2, *c0 = 16, *c1 = 144; return;
    case GGT_Q5_K: *f0 = 0, *f1 = 2, *c0 = 16, *c1 = 176; return;
    default: *f0 = 208, *f1 = -1, *c0 = 0, *c1 = 192; return; /* Q6_K */
    }
}

/* Random blocks: every byte random, the fp16 factors ordinary finite values. */
static void random_weights(uint64_t *st, uint32_t t, int64_t k, uint8_t *w) {
    const ggtype_info *ti = ggtype_get(t);
    int f0, f1, c0, c1;
    layout(t, &f0, &f1, &c0, &c1);
    for (int64_t b = 0; b < k / ti->block; b++) {
        uint8_t *blk = w + (size_t)b * (size_t)ti->bytes;
        for (int i = 0; i < ti->bytes; i++) blk[i] = (uint8_t)tu_next_u64(st);
        for (int f = 0; f < 2; f++) {
            const int at = f ? f1 : f0;
            if (at < 0) continue;
            const float v = ((float)(tu_next_u64(st) % 2001) - 1000.0f) * 1e-4f;
            const uint16_t h = f32_to_f16(v);
            memcpy(blk + at, &h, 2);
        }
    }
}

/* Activations with a spread of magnitudes, outliers and a zero run. */
static void random_acts(uint64_t *st, int64_t k, float *x) {
    tu_rand_floats(st, x, (int)k);
    const float scale = (float)(1 + tu_next_u64(st) % 50);
    for (int64_t e = 0; e < k; e++) x[e] *= scale * ((e % 89) == 5 ? 30.0f : 1.0f);
    if (k >= 512 && (tu_next_u64(st) & 1))
        for (int e = 256; e < 512; e++) x[e] = 0.0f; /* an all-zero super-block */
}

/* ---- types ------------------------------------------------------------- */

static void test_types(void **state) {
    (void)state;
    for (int i = 0; i < N_WTYPES; i++) assert_true(quant_supported(k_wtypes[i]));
    assert_int_equal(quant_dot_type(GGT_Q5_0), GGT_Q8_0);
    assert_int_equal(quant_dot_type(GGT_Q5_1), GGT_Q8_1);
    assert_int_equal(quant_dot_type(GGT_Q4_K), GGT_Q8_K);
    assert_int_equal(quant_dot_type(GGT_Q5_K), GGT_Q8_K);
    assert_int_equal(quant_dot_type(GGT_Q6_K), GGT_Q8_K);
    /* formats still without kernels stay unsupported (model loading refuses them) */
    assert_false(quant_supported(GGT_Q2_K));
    assert_false(quant_supported(GGT_Q3_K));
    assert_false(quant_supported(GGT_IQ2_XS));
    assert_false(quant_supported(GGT_Q8_K)); /* an activation format only */
}

/* ---- dequantization goldens ------------------------------------------- */

static void test_dequant_goldens(void **state) {
    (void)state;
    char path[512];
    snprintf(path, sizeof path, "%s/tests/fixtures/kquant_goldens.bin", KVS_SOURCE_DIR);
    size_t len;
    uint8_t *buf = (uint8_t *)tu_read_file(path, &len);
    if (!buf) fail_msg("cannot read %s", path);
    size_t off = 0;
    int seen = 0;
    while (off < len) {
        uint32_t hdr[2];
        assert_true(off + 8 <= len);
        memcpy(hdr, buf + off, 8);
        off += 8;
        const ggtype_info *ti = ggtype_get(hdr[0]);
        assert_non_null(ti);
        const int64_t n = (int64_t)hdr[1] * ti->block;
        const size_t nb = (size_t)hdr[1] * (size_t)ti->bytes;
        assert_true(off + nb + 4 * (size_t)n <= len);
        const uint8_t *raw = buf + off;
        float *want = tu_xmalloc(4 * (size_t)n), *got = tu_xmalloc(4 * (size_t)n);
        memcpy(want, buf + off + nb, 4 * (size_t)n);
        off += nb + 4 * (size_t)n;
        for (int bi = -1; bi < N_BACKENDS; bi++) {
            if (bi >= 0 && !use_backend(bi)) continue;
            if (bi < 0)
                quant_to_float_ref(hdr[0], raw, got, n);
            else
                quant_to_float(hdr[0], raw, got, n);
            for (int64_t i = 0; i < n; i++)
                if (f32_to_bits(got[i]) != f32_to_bits(want[i]))
                    fail_msg("%s %s: element %lld is %.9g, gguf.quants gives %.9g", ti->name,
                             bi < 0 ? "reference" : k_backends[bi], (long long)i, got[i], want[i]);
        }
        printf("%s: %lld elements match gguf.quants bit for bit\n", ti->name, (long long)n);
        seen |= 1 << (hdr[0] & 31);
        free(want);
        free(got);
    }
    for (int i = 0; i < N_WTYPES; i++) assert_true(seen & (1 << k_wtypes[i]));
    free(buf);
}

/* ---- Q8_K quantization ------------------------------------------------- */

static void test_q8k_quantization(void **state) {
    (void)state;
    uint64_t st = 99;
    const int64_t k = 256 * 24;
    float *x = tu_xmalloc(4 * (size_t)k), *y = tu_xmalloc(4 * (size_t)k);
    const size_t rb = row_bytes(GGT_Q8_K, k);
    uint8_t *ref = tu_xmalloc(rb), *got = tu_xmalloc(rb);
    for (int rep = 0; rep < 20; rep++) {
        random_acts(&st, k, x);
        for (int64_t b = 0; b < k / QK_K; b++) {
            float *v = x + b * QK_K;
            switch (b % 8) {
            case 1: /* exact halves after scaling: round-to-even decides */
                for (int j = 0; j < QK_K; j++) v[j] = (float)((int)(tu_next_u64(&st) % 254) - 127) + 0.5f;
                v[tu_next_u64(&st) % QK_K] = -127.0f;
                break;
            case 2: /* +a and -a both extreme: the first decides the sign */
                v[7] = 500.0f, v[200] = -500.0f;
                if (rep & 1) v[7] = -500.0f, v[200] = 500.0f;
                break;
            case 3: v[tu_next_u64(&st) % QK_K] = NAN; break;
            case 4: for (int j = 0; j < QK_K; j++) v[j] *= 1e-40f; break; /* subnormal */
            case 5: v[tu_next_u64(&st) % QK_K] = INFINITY; break;
            default: break;
            }
        }
        memset(ref, 0xa5, rb);
        quant_from_float_ref(GGT_Q8_K, x, ref, k);
        for (int bi = 0; bi < N_BACKENDS; bi++) {
            if (!use_backend(bi)) continue;
            memset(got, 0x5a, rb);
            quant_from_float(GGT_Q8_K, x, got, k);
            if (memcmp(ref, got, rb)) {
                for (size_t i = 0; i < rb; i++)
                    if (ref[i] != got[i])
                        fail_msg("%s: Q8_K byte %zu (block %zu) %d vs reference %d", k_backends[bi], i,
                                 i / sizeof(block_q8_k), got[i], ref[i]);
            }
        }
        /* invariants on the ordinary blocks */
        quant_to_float_ref(GGT_Q8_K, ref, y, k);
        for (int64_t b = 0; b < k / QK_K; b++) {
            if (b % 8 >= 3 && b % 8 <= 5) continue;
            const block_q8_k *q = (const block_q8_k *)(const void *)(ref + (size_t)b * sizeof(block_q8_k));
            const float *v = x + b * QK_K;
            float amax = 0.0f, ext = 0.0f;
            int ie = -1;
            for (int j = 0; j < QK_K; j++)
                if (fabsf(v[j]) > amax) amax = fabsf(v[j]), ext = v[j], ie = j;
            if (ie < 0) continue;
            assert_int_equal(q->qs[ie], -127);
            assert_true((q->d < 0.0f) == (ext > 0.0f)); /* the extreme lands on -127 */
            for (int g = 0; g < 16; g++) {
                int s = 0;
                for (int i = 0; i < 16; i++) s += q->qs[16 * g + i];
                assert_int_equal(q->bsums[g], s);
            }
            for (int j = 0; j < QK_K; j++)
                if (!(fabsf(y[b * QK_K + j] - v[j]) <= 0.5001f * fabsf(q->d) + 1e-30f))
                    fail_msg("Q8_K block %lld element %d: %g -> %g (d %g)", (long long)b, j, v[j],
                             y[b * QK_K + j], q->d);
        }
    }
    free(x); free(y); free(ref); free(got);
}

/* ---- dots and tiles ---------------------------------------------------- */

/* Sum over elements of |w|*|a| with w split into its code part and the part
 * the zero code stands for (the block dequantized with all codes zeroed: the
 * minimum of Q4_K/Q5_K/Q5_1, the offset of Q5_0/Q6_K): the products combine
 * these two parts separately, so this bounds what their float rounding touches.
 * *exact gets the double-precision dot of the dequantized rows. */
static double abs_terms(uint32_t t, int64_t k, const uint8_t *w, const uint8_t *a, double *exact) {
    const uint32_t at = quant_dot_type(t);
    const ggtype_info *ti = ggtype_get(t);
    int f0, f1, c0, c1;
    layout(t, &f0, &f1, &c0, &c1);
    uint8_t *z = tu_xmalloc(row_bytes(t, k));
    memcpy(z, w, row_bytes(t, k));
    for (int64_t b = 0; b < k / ti->block; b++) memset(z + (size_t)b * (size_t)ti->bytes + c0, 0, (size_t)(c1 - c0));
    float *xw = tu_xmalloc(4 * (size_t)k), *xz = tu_xmalloc(4 * (size_t)k), *xa = tu_xmalloc(4 * (size_t)k);
    quant_to_float_ref(t, w, xw, k);
    quant_to_float_ref(t, z, xz, k);
    quant_to_float_ref(at, a, xa, k);
    double s = 0.0, e = 0.0;
    for (int64_t i = 0; i < k; i++) {
        e += (double)xw[i] * xa[i];
        s += (fabs((double)xw[i] - xz[i]) + fabs((double)xz[i])) * fabs((double)xa[i]);
    }
    free(z); free(xw); free(xz); free(xa);
    *exact = e;
    return s;
}

static void test_dot_backends(void **state) {
    (void)state;
    uint64_t st = 4242;
    const int64_t ks[] = {256, 512, 768, 2048, 4864, 8192};
    for (int t = 0; t < N_WTYPES; t++) {
        const uint32_t wt = k_wtypes[t], at = quant_dot_type(wt);
        double worst = 0.0;
        for (int ki = 0; ki < 6; ki++)
            for (int rep = 0; rep < 4; rep++) {
                const int64_t k = ks[ki];
                uint8_t *w = tu_xmalloc(row_bytes(wt, k)), *a = tu_xmalloc(row_bytes(at, k));
                float *x = tu_xmalloc(4 * (size_t)k);
                random_weights(&st, wt, k, w);
                random_acts(&st, k, x);
                quant_from_float_ref(at, x, a, k);
                double exact;
                const double terms = abs_terms(wt, k, w, a, &exact);
                const double tol = 1e-5 * terms + 1e-30;
                const float ref = quant_dot_ref(wt, k, w, a);
                /* the reference reads the layouts the way dequantization does */
                if (!(fabs(ref - exact) <= tol))
                    fail_msg("%s k=%lld: reference dot %.9g vs dequantized %.9g (tol %g)", ggtype_get(wt)->name,
                             (long long)k, ref, exact, tol);
                for (int bi = 0; bi < N_BACKENDS; bi++) {
                    if (!use_backend(bi)) continue;
                    const float got = quant_dot(wt, k, w, a);
                    if (!(fabs((double)got - ref) <= tol))
                        fail_msg("%s: dot %s k=%lld: %.9g vs ref %.9g (tol %g)", k_backends[bi],
                                 ggtype_get(wt)->name, (long long)k, got, ref, tol);
                    if (terms > 0 && fabs((double)got - ref) / terms > worst) worst = fabs((double)got - ref) / terms;
                }
                free(w); free(a); free(x);
            }
        printf("%s: worst |fast - ref| / sum|terms| = %.3g\n", ggtype_get(wt)->name, worst);
    }
}

static void check_gemm(uint64_t *st, uint32_t wt, int64_t k, int rows, int i0, int i1, int n_a) {
    const uint32_t at = quant_dot_type(wt);
    /* padded strides (the Q8_K float lands unaligned) catch indexing mistakes */
    const size_t ws = row_bytes(wt, k) + 6, as = row_bytes(at, k) + 10;
    const int ldc = rows + 3;
    uint8_t *W = tu_xmalloc(ws * (size_t)rows), *A = tu_xmalloc(as * (size_t)n_a);
    float *C = tu_xmalloc(sizeof(float) * (size_t)ldc * (size_t)n_a), *R = tu_xmalloc(sizeof(float) * (size_t)ldc * (size_t)n_a);
    float *x = tu_xmalloc(4 * (size_t)k);
    memset(W, 0x5a, ws * (size_t)rows);
    memset(A, 0x5a, as * (size_t)n_a);
    for (int i = 0; i < rows; i++) random_weights(st, wt, k, W + (size_t)i * ws);
    for (int j = 0; j < n_a; j++) {
        random_acts(st, k, x);
        quant_from_float_ref(at, x, A + (size_t)j * as, k);
    }
    for (int j = 0; j < n_a; j++)
        for (int i = i0; i < i1; i++)
            R[(size_t)j * ldc + i] = quant_dot_ref(wt, k, W + (size_t)i * ws, A + (size_t)j * as);
    for (int bi = 0; bi < N_BACKENDS; bi++) {
        if (!use_backend(bi)) continue;
        for (size_t e = 0; e < (size_t)ldc * (size_t)n_a; e++) C[e] = -12345.0f;
        quant_gemm(wt, k, W, ws, i0, i1, A, as, n_a, C, ldc);
        for (int j = 0; j < n_a; j++)
            for (int i = 0; i < ldc; i++) {
                const float got = C[(size_t)j * ldc + i];
                if (i < i0 || i >= i1) {
                    if (got != -12345.0f) fail_msg("%s: gemm wrote outside its tile (i=%d j=%d)", k_backends[bi], i, j);
                    continue;
                }
                double exact;
                const double tol = 1e-5 * abs_terms(wt, k, W + (size_t)i * ws, A + (size_t)j * as, &exact) + 1e-30;
                const float ref = R[(size_t)j * ldc + i];
                if (!(fabs((double)got - ref) <= tol))
                    fail_msg("%s: gemm %s k=%lld at (%d,%d): %.9g vs %.9g (tol %g)", k_backends[bi],
                             ggtype_get(wt)->name, (long long)k, i, j, got, ref, tol);
            }
    }
    free(W); free(A); free(C); free(R); free(x);
}

static void test_gemm_backends(void **state) {
    (void)state;
    uint64_t st = 777;
    for (int t = 0; t < N_WTYPES; t++) {
        const uint32_t wt = k_wtypes[t];
        check_gemm(&st, wt, 256, 9, 0, 9, 1);
        check_gemm(&st, wt, 512, 7, 2, 6, 5);
        check_gemm(&st, wt, 1280, 5, 0, 5, 17);
        check_gemm(&st, wt, 768, 21, 3, 20, 33); /* several staged groups of activation rows */
        check_gemm(&st, wt, 8192 + 256, 3, 0, 3, 5); /* more than one k-chunk of the 32-wide tiles */
        if (ggtype_get(wt)->block == QK) {
            /* rows that end inside a super-block of eight blocks (Qwen2.5-0.5B's
             * 896 = 3.5 of them), decoding alone and in a batch */
            for (int n_a = 1; n_a <= 4; n_a += 3) {
                check_gemm(&st, wt, 896, 9, 0, 9, n_a);
                check_gemm(&st, wt, 160, 6, 1, 6, n_a);
                check_gemm(&st, wt, 224, 5, 0, 5, n_a);
            }
        }
    }
}

static int same_bits(float a, float b) { return memcmp(&a, &b, sizeof a) == 0; }

/* Each output element is the same bits whatever else is computed with it: other
 * activation rows (one sequence decoding alone takes the kernels' one-row path,
 * a batch the staged one) and other weight rows (threads split rows unevenly). */
static void test_gemm_batch_independent(void **state) {
    (void)state;
    uint64_t st = 99;
    for (int bi = 0; bi < N_BACKENDS; bi++) {
        if (!use_backend(bi)) continue;
        for (int t = 0; t < N_WTYPES; t++) {
            const uint32_t wt = k_wtypes[t], at = quant_dot_type(wt);
            const int wide = ggtype_get(wt)->block == QK_K;
            /* about one k-chunk of the tiles, less, and more than one */
            const int64_t ks[] = {wide ? 256 : 576, 1536, wide ? 2560 + 256 : 64 * 32 * 2 + 96, wide ? 4864 : 896};
            for (int ki = 0; ki < 4; ki++) {
                const int64_t k = ks[ki];
                const int rows = 37, n_a = 37;
                const size_t ws = row_bytes(wt, k), as = row_bytes(at, k);
                uint8_t *W = tu_xmalloc(ws * rows), *A = tu_xmalloc(as * n_a);
                float *x = tu_xmalloc(sizeof(float) * (size_t)k);
                for (int i = 0; i < rows; i++) random_weights(&st, wt, k, W + (size_t)i * ws);
                for (int j = 0; j < n_a; j++) {
                    random_acts(&st, k, x);
                    quant_from_float(at, x, A + (size_t)j * as, k);
                }
                float *all = tu_xmalloc(sizeof(float) * rows * n_a), *one = tu_xmalloc(sizeof(float) * rows);
                quant_gemm(wt, k, W, ws, 0, rows, A, as, n_a, all, rows);
                for (int j = 0; j < n_a; j++) {
                    quant_gemm(wt, k, W, ws, 0, 5, A + (size_t)j * as, as, 1, one, rows);
                    quant_gemm(wt, k, W, ws, 5, 22, A + (size_t)j * as, as, 1, one, rows);
                    quant_gemm(wt, k, W, ws, 22, rows, A + (size_t)j * as, as, 1, one, rows);
                    for (int i = 0; i < rows; i++)
                        if (!same_bits(one[i], all[j * rows + i]))
                            fail_msg("%s: %s k=%lld: row %d act %d: %.9g alone, %.9g in the batch", k_backends[bi],
                                     ggtype_get(wt)->name, (long long)k, i, j, one[i], all[j * rows + i]);
                    /* and in a batch of two, the odd size of a tile's last group */
                    if (j + 1 < n_a) {
                        float two[2 * 37];
                        quant_gemm(wt, k, W, ws, 0, rows, A + (size_t)j * as, as, 2, two, rows);
                        for (int i = 0; i < rows; i++)
                            if (!same_bits(two[i], all[j * rows + i]))
                                fail_msg("%s: %s k=%lld: row %d act %d: %.9g in two, %.9g in the batch", k_backends[bi],
                                         ggtype_get(wt)->name, (long long)k, i, j, two[i], all[j * rows + i]);
                    }
                }
                free(W); free(A); free(x); free(all); free(one);
            }
        }
    }
}

static void test_lanes(void **state) {
    (void)state;
    uint64_t st = 4242;
    /* one block, partial groups of 5 and 7, whole groups, the 0.5B's 896, and rows
     * longer than the chunk other kernel sets convert back through (16 KB) */
    const int64_t ks[] = {32, 160, 224, 256, 896, 1280, 8192 + 96, 32768 + 32};
    const uint32_t types[] = {GGT_Q4_0, GGT_Q4_1, GGT_Q5_0, GGT_Q5_1, GGT_Q8_0};
    for (size_t ti = 0; ti < 5; ti++)
        for (size_t ki = 0; ki < sizeof ks / sizeof *ks; ki++) {
            const uint32_t wt = types[ti], lt = quant_lanes_of(wt), at = quant_dot_type(wt);
            const int64_t k = ks[ki];
            const int rows = 9, n_a = 35; /* a second staged group of activations, and a short one */
            assert_int_equal(quant_file_of(lt), wt);
            assert_int_equal(quant_dot_type(lt), at);
            const size_t ws = row_bytes(wt, k), as = row_bytes(at, k);
            uint8_t *W = tu_xmalloc(ws * rows), *L = tu_xmalloc(ws * rows), *back = tu_xmalloc(ws);
            uint8_t *A = tu_xmalloc(as * n_a);
            float *x = tu_xmalloc(sizeof(float) * (size_t)k), *y = tu_xmalloc(sizeof(float) * (size_t)k);
            for (int i = 0; i < rows; i++) {
                random_weights(&st, wt, k, W + (size_t)i * ws);
                quant_to_lanes(wt, W + (size_t)i * ws, L + (size_t)i * ws, k);
                quant_from_lanes(lt, L + (size_t)i * ws, back, k);
                if (memcmp(back, W + (size_t)i * ws, ws)) fail_msg("%s k=%lld: row %d differs after the round trip",
                                                                 ggtype_get(wt)->name, (long long)k, i);
            }
            for (int j = 0; j < n_a; j++) {
                random_acts(&st, k, x);
                quant_from_float_ref(at, x, A + (size_t)j * as, k);
            }
            float *cf = tu_xmalloc(sizeof(float) * rows * n_a), *cl = tu_xmalloc(sizeof(float) * rows * n_a);
            for (int bi = 0; bi < N_BACKENDS; bi++) {
                if (!use_backend(bi)) continue;
                for (int n = 1; n <= n_a; n += n_a - 1) { /* one sequence (the direct path), then the batch */
                    quant_gemm(wt, k, W, ws, 0, rows, A, as, n, cf, rows);
                    quant_gemm(lt, k, L, ws, 0, rows, A, as, n, cl, rows);
                    for (int e = 0; e < rows * n; e++)
                        if (!same_bits(cf[e], cl[e]))
                            fail_msg("%s: %s k=%lld n_a=%d: element %d: lanes %.9g, file %.9g", k_backends[bi],
                                     ggtype_get(wt)->name, (long long)k, n, e, cl[e], cf[e]);
                }
                if (!same_bits(quant_dot(wt, k, W, A), quant_dot(lt, k, L, A)))
                    fail_msg("%s: %s k=%lld: dot differs", k_backends[bi], ggtype_get(wt)->name, (long long)k);
                quant_to_float(wt, W, x, k);
                quant_to_float(lt, L, y, k);
                if (memcmp(x, y, sizeof(float) * (size_t)k))
                    fail_msg("%s: %s k=%lld: dequantized rows differ", k_backends[bi], ggtype_get(wt)->name,
                             (long long)k);
            }
            free(W); free(L); free(back); free(A); free(x); free(y); free(cf); free(cl);
        }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_types),
        cmocka_unit_test_teardown(test_dequant_goldens, teardown_backend),
        cmocka_unit_test_teardown(test_q8k_quantization, teardown_backend),
        cmocka_unit_test_teardown(test_dot_backends, teardown_backend),
        cmocka_unit_test_teardown(test_gemm_backends, teardown_backend),
        cmocka_unit_test_teardown(test_gemm_batch_independent, teardown_backend),
        cmocka_unit_test_teardown(test_lanes, teardown_backend),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
