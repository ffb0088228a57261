/* Sampler: greedy is argmax, filters keep what they should, a seed gives the
 * same draws every time, and draws follow the distribution. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

static kvs_sampler *mk(float temp, int top_k, float top_p, uint64_t seed) {
    kvs_sampler_params p = {temp, top_k, top_p, seed};
    kvs_error err = {0};
    kvs_sampler *s = kvs_sampler_new(&p, &err);
    if (!s) fail_msg("%s", err.msg);
    return s;
}

static void test_greedy(void **state) {
    (void)state;
    float l[6] = {0.1f, 2.0f, -1.0f, 2.0f, 1.9f, 0.0f};
    kvs_sampler *s = mk(0.0f, 0, 1.0f, 1);
    assert_int_equal(kvs_sampler_sample(s, l, 6), 1); /* first of equal maxima */
    kvs_sampler_free(s);
    assert_int_equal(kvs_sampler_sample(NULL, l, 6), 1);
}

static void test_top_k_one_and_tiny_top_p_are_greedy(void **state) {
    (void)state;
    float l[1000];
    uint64_t st = 11;
    tu_rand_floats(&st, l, 1000);
    int best = 0;
    for (int i = 1; i < 1000; i++)
        if (l[i] > l[best]) best = i;
    kvs_sampler *a = mk(1.0f, 1, 1.0f, 5), *b = mk(1.0f, 0, 1e-6f, 5);
    for (int i = 0; i < 50; i++) {
        assert_int_equal(kvs_sampler_sample(a, l, 1000), best);
        assert_int_equal(kvs_sampler_sample(b, l, 1000), best);
    }
    kvs_sampler_free(a);
    kvs_sampler_free(b);
}

static void test_seed_reproducible(void **state) {
    (void)state;
    float l[500];
    uint64_t st = 99;
    tu_rand_floats(&st, l, 500);
    for (int i = 0; i < 500; i++) l[i] *= 3;
    kvs_sampler *a = mk(0.6f, 50, 0.9f, 42), *b = mk(0.6f, 50, 0.9f, 42), *c = mk(0.6f, 50, 0.9f, 43);
    int differ = 0;
    for (int i = 0; i < 200; i++) {
        int x = kvs_sampler_sample(a, l, 500), y = kvs_sampler_sample(b, l, 500), z = kvs_sampler_sample(c, l, 500);
        assert_int_equal(x, y);
        differ += x != z;
    }
    assert_true(differ > 0);
    kvs_sampler_free(a);
    kvs_sampler_free(b);
    kvs_sampler_free(c);
}

/* Frequencies over 20000 draws match softmax(l / T) restricted by top-k/top-p. */
static void test_distribution(void **state) {
    (void)state;
    float l[5] = {2.0f, 1.0f, 0.5f, 0.0f, -5.0f};
    /* T = 0.5: weights exp(2l) = e^4, e^2, e^1, 1, e^-10 ; top_k 4 drops index 4;
     * top_p 0.95: cumulative of normalised {e^4,e^2,e,1} = .831,.944,.985 -> keeps 3 */
    kvs_sampler *s = mk(0.5f, 4, 0.95f, 7);
    int cnt[5] = {0};
    const int N = 20000;
    for (int i = 0; i < N; i++) cnt[kvs_sampler_sample(s, l, 5)]++;
    kvs_sampler_free(s);
    const double p0 = exp(4.0) / (exp(4.0) + exp(2.0) + exp(1.0));
    assert_int_equal(cnt[3] + cnt[4], 0);
    assert_true(cnt[2] > 0);
    const double f0 = (double)cnt[0] / N, sd = sqrt(p0 * (1 - p0) / N);
    if (fabs(f0 - p0) > 5 * sd) fail_msg("frequency %.4f vs expected %.4f", f0, p0);
}

static void test_bad_params(void **state) {
    (void)state;
    kvs_sampler_params p = {1.0f, 0, 0.0f, 0};
    kvs_error err = {0};
    assert_null(kvs_sampler_new(&p, &err));
    assert_int_equal(err.code, KVS_E_ARG);
    p.top_p = NAN;
    assert_null(kvs_sampler_new(&p, &err));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_greedy), cmocka_unit_test(test_top_k_one_and_tiny_top_p_are_greedy),
        cmocka_unit_test(test_seed_reproducible), cmocka_unit_test(test_distribution),
        cmocka_unit_test(test_bad_params),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
