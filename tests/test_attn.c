/* Tile attention: every backend against the scalar definition, and the promise
 * that makes batching exact: a query's result does not depend on which other
 * queries share its tile. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "attn.h"
#include "quant.h"
#include "testutil.h"

static const char *const k_backends[] = {"scalar", "avx2", "avx512vnni"};

typedef struct case_data {
    int d, nq, rows, stride;
    float *q, *kv, *k, *v, *scores, *out;
    int lo[ATTN_TILE_MAX], len[ATTN_TILE_MAX];
} case_data;

/* lo: first row per query (a sliding window), or NULL for row 0 */
static void make_case(case_data *c, int d, int nq, const int *lo, const int *len, float q_scale, uint64_t seed) {
    memset(c, 0, sizeof *c);
    c->d = d, c->nq = nq, c->stride = 3 * d + 5; /* rows of several heads, odd stride */
    for (int i = 0; i < nq; i++) {
        c->len[i] = len[i];
        c->lo[i] = lo ? lo[i] : 0;
        c->rows = len[i] > c->rows ? len[i] : c->rows;
    }
    c->q = malloc(sizeof(float) * (size_t)nq * d);
    c->kv = malloc(sizeof(float) * (size_t)c->rows * c->stride * 2);
    c->scores = malloc(sizeof(float) * (size_t)nq * c->rows);
    c->out = malloc(sizeof(float) * (size_t)nq * d);
    tu_rand_floats(&seed, c->q, nq * d);
    for (int i = 0; i < nq * d; i++) c->q[i] *= q_scale;
    tu_rand_floats(&seed, c->kv, c->rows * c->stride * 2);
    c->k = c->kv + d;                          /* head 1 of the K rows */
    c->v = c->kv + (size_t)c->rows * c->stride + 2 * d;
}

static void free_case(case_data *c) { free(c->q), free(c->kv), free(c->scores), free(c->out); }

/* Run queries `which[0..n)` of the case as one tile, outputs into out rows. */
static void run(case_data *c, const int *which, int n, float *out, int ref) {
    const float *qp[ATTN_TILE_MAX];
    float *op[ATTN_TILE_MAX];
    int lo[ATTN_TILE_MAX], len[ATTN_TILE_MAX];
    for (int i = 0; i < n; i++) {
        qp[i] = c->q + (size_t)which[i] * c->d;
        op[i] = out + (size_t)which[i] * c->d;
        lo[i] = c->lo[which[i]];
        len[i] = c->len[which[i]];
    }
    attn_tile t = {.nq = n, .d = c->d, .q = qp, .lo = lo, .len = len, .k = c->k, .v = c->v,
                   .stride = (size_t)c->stride, .scale = 1.0f / sqrtf((float)c->d), .scores = c->scores,
                   .ld = (size_t)c->rows, .out = op};
    if (ref)
        attn_run_ref(&t);
    else
        attn_run(&t);
}

static void check_case(int d, int nq, const int *lo, const int *len, float q_scale, uint64_t seed) {
    case_data c;
    make_case(&c, d, nq, lo, len, q_scale, seed);
    int all[ATTN_TILE_MAX];
    for (int i = 0; i < nq; i++) all[i] = i;
    float *want = malloc(sizeof(float) * (size_t)nq * d), *alone = malloc(sizeof(float) * (size_t)nq * d);
    run(&c, all, nq, want, 1);
    for (size_t b = 0; b < sizeof k_backends / sizeof *k_backends; b++) {
        if (quant_force_backend(k_backends[b]) != 0) continue; /* CPU lacks it */
        run(&c, all, nq, c.out, 0);
        for (int i = 0; i < nq * d; i++) {
            /* outputs are convex combinations of values in [-1, 1]: an absolute
             * bound; the SIMD paths differ from the reference by the order of
             * float sums and by their exp (a few ulp) */
            const float err = fabsf(c.out[i] - want[i]);
            if (!(err <= 2e-5f))
                fail_msg("%s d=%d nq=%d: output %d is %g, reference %g", k_backends[b], d, nq, i, c.out[i], want[i]);
        }
        /* each query alone, and in the reversed order, gives the same bits */
        for (int i = 0; i < nq; i++) run(&c, &all[i], 1, alone, 0);
        if (memcmp(alone, c.out, sizeof(float) * (size_t)nq * d))
            fail_msg("%s d=%d nq=%d: a query's result depends on its tile", k_backends[b], d, nq);
        int rev[ATTN_TILE_MAX];
        for (int i = 0; i < nq; i++) rev[i] = nq - 1 - i;
        run(&c, rev, nq, alone, 0);
        if (memcmp(alone, c.out, sizeof(float) * (size_t)nq * d))
            fail_msg("%s d=%d nq=%d: a query's result depends on its place in the tile", k_backends[b], d, nq);
    }
    assert_int_equal(quant_force_backend(NULL), 0);
    free(want), free(alone);
    free_case(&c);
}

static void test_shapes(void **state) {
    (void)state;
    const int dims[] = {8, 16, 24, 64, 96, 128, 256};
    const int lens[][ATTN_TILE_MAX] = {
        {1, 1, 1}, {5, 6, 7, 8, 9, 10}, {17, 17, 17, 18, 18, 18}, {100, 3, 64, 1, 33, 2, 77, 4}};
    const int nqs[] = {3, 6, 6, 8};
    uint64_t seed = 1;
    for (size_t di = 0; di < sizeof dims / sizeof *dims; di++)
        for (size_t li = 0; li < sizeof nqs / sizeof *nqs; li++) check_case(dims[di], nqs[li], NULL, lens[li], 1.0f, seed++);
}

/* Sharp softmaxes (scores hundreds apart): the small weights underflow to 0
 * rather than turning into NaN or garbage. */
static void test_sharp_scores(void **state) {
    (void)state;
    const int len[ATTN_TILE_MAX] = {40, 41, 200, 9};
    check_case(64, 4, NULL, len, 60.0f, 99);
}

/* Sliding windows: queries start at different rows, including windows that do
 * not overlap and starts that are not multiples of 4. */
static void test_windows(void **state) {
    (void)state;
    const int lo[ATTN_TILE_MAX] = {0, 3, 5, 9, 30, 31, 33, 2};
    const int len[ATTN_TILE_MAX] = {4, 12, 13, 14, 40, 45, 46, 3};
    for (int d = 16; d <= 128; d *= 2) check_case(d, 8, lo, len, 1.0f, 7 + (uint64_t)d);
    check_case(24, 8, lo, len, 1.0f, 3);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_shapes), cmocka_unit_test(test_sharp_scores),
                                       cmocka_unit_test(test_windows)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
