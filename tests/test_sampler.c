/* Sampler: greedy is argmax, filters keep what they should, a seed gives the
 * same draws every time, draws follow the distribution, and the repetition
 * penalty and min-p change exactly what they should. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

static kvs_sampler *mk_p(const kvs_sampler_params *p) {
    kvs_error err = {0};
    kvs_sampler *s = kvs_sampler_new(p, &err);
    if (!s) fail_msg("%s", err.msg);
    return s;
}

static kvs_sampler *mk(float temp, int top_k, float top_p, uint64_t seed) {
    kvs_sampler_params p = kvs_sampler_default_params();
    p.temperature = temp;
    p.top_k = top_k;
    p.top_p = top_p;
    p.seed = seed;
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

/* Greedy's argmax against a plain scan: every length around the unrolled
 * loop's width, ties placed in every residue, -inf and NaN. */
static void test_greedy_matches_scan(void **state) {
    (void)state;
    uint64_t st = 3;
    float l[300];
    for (int trial = 0; trial < 4000; trial++) {
        const int n = 1 + trial % 37 + (trial % 5 == 0 ? 230 : 0);
        tu_rand_floats(&st, l, n);
        for (int i = 0; i < n; i++) { /* few distinct values, so maxima tie often */
            l[i] = floorf(l[i] * 3.0f);
            if (trial % 7 == 1 && i % 3 == 0) l[i] = -INFINITY;
            if (trial % 11 == 2 && i % 4 == 1) l[i] = NAN;
        }
        if (trial % 13 == 3) l[0] = NAN;
        if (trial % 17 == 4)
            for (int i = 0; i < n; i++) l[i] = -INFINITY;
        int best = 0;
        for (int i = 1; i < n; i++)
            if (l[i] > l[best]) best = i;
        if (kvs_sampler_sample(NULL, l, n) != best)
            fail_msg("n %d trial %d: argmax %d, a scan %d", n, trial, kvs_sampler_sample(NULL, l, n), best);
    }
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
    kvs_sampler_params p = kvs_sampler_default_params();
    p.temperature = 1.0f;
    p.top_p = 0.0f;
    kvs_error err = {0};
    assert_null(kvs_sampler_new(&p, &err));
    assert_int_equal(err.code, KVS_E_ARG);
    p.top_p = NAN;
    assert_null(kvs_sampler_new(&p, &err));
    /* each impossible penalty or min-p value on its own, named in the message */
    static const struct {
        float pen;
        int last_n;
        float min_p;
        const char *word;
    } bad[] = {{-1.0f, 64, 0.0f, "repeat penalty"}, {NAN, 64, 0.0f, "repeat penalty"},
               {INFINITY, 64, 0.0f, "repeat penalty"}, {1.5f, -2, 0.0f, "window"},
               {1.0f, 64, -0.1f, "min-p"}, {1.0f, 64, 1.5f, "min-p"}, {1.0f, 64, NAN, "min-p"}};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        p = kvs_sampler_default_params();
        p.repeat_penalty = bad[i].pen;
        p.repeat_last_n = bad[i].last_n;
        p.min_p = bad[i].min_p;
        err = (kvs_error){0};
        assert_null(kvs_sampler_new(&p, &err));
        assert_int_equal(err.code, KVS_E_ARG);
        if (!strstr(err.msg, bad[i].word)) fail_msg("case %zu: '%s' does not name the %s", i, err.msg, bad[i].word);
    }
    /* zero is "off", as a zero-initialised struct has it; so are the edges */
    kvs_sampler_params z;
    memset(&z, 0, sizeof z);
    z.top_p = 1.0f;
    kvs_sampler_free(mk_p(&z));
    p = kvs_sampler_default_params();
    p.repeat_last_n = -1;
    p.min_p = 1.0f;
    kvs_sampler_free(mk_p(&p));
}

static void test_default_params(void **state) {
    (void)state;
    const kvs_sampler_params p = kvs_sampler_default_params();
    assert_true(p.temperature == 0.0f && p.top_k == 0 && p.top_p == 1.0f && p.seed == 0);
    assert_true(p.repeat_penalty == 1.0f && p.repeat_last_n == 64 && p.min_p == 0.0f);
}

/* Asserts that the penalised logit of token `tok` is exactly `want`: every
 * other token is pushed far down except a probe, the last id (never in the
 * history), set to `want` (a tie, so the lower id, tok, wins) and then to the
 * next float above (the probe wins). */
#define N_PEN 8
static void assert_penalized(kvs_sampler *s, const float *l, int tok, float want) {
    float w[N_PEN];
    for (int i = 0; i < N_PEN; i++) w[i] = i == tok ? l[i] : -1e30f;
    w[N_PEN - 1] = want;
    if (kvs_sampler_sample(s, w, N_PEN) != tok) fail_msg("token %d: penalised logit below %g", tok, (double)want);
    w[N_PEN - 1] = nextafterf(want, INFINITY);
    if (kvs_sampler_sample(s, w, N_PEN) != N_PEN - 1) fail_msg("token %d: penalised logit above %g", tok, (double)want);
}

static kvs_sampler *mk_pen(float pen, int last_n) {
    kvs_sampler_params p = kvs_sampler_default_params();
    p.repeat_penalty = pen;
    p.repeat_last_n = last_n;
    return mk_p(&p);
}

static void accept_all(kvs_sampler *s, const kvs_token *t, int n) {
    for (int i = 0; i < n; i++) assert_int_equal(kvs_sampler_accept(s, t[i]), 0);
}

/* logit > 0 is divided by P, else multiplied, once per distinct token however
 * often it repeats; tokens outside the window keep their logits. */
static void test_repeat_penalty_values(void **state) {
    (void)state;
    const float l[N_PEN] = {2.0f, -1.0f, 0.5f, 3.0f, 0.0f, -2.5f, 1.0f, 0.0f};
    kvs_sampler *s = mk_pen(2.0f, 64);
    const kvs_token hist[] = {0, 1, 3, 3, 3, 4, 5, 0};
    accept_all(s, hist, 8);
    assert_penalized(s, l, 0, 1.0f);
    assert_penalized(s, l, 1, -2.0f);
    assert_penalized(s, l, 3, 1.5f); /* three times in the window, penalised once */
    assert_penalized(s, l, 4, 0.0f);
    assert_penalized(s, l, 5, -5.0f);
    assert_penalized(s, l, 2, 0.5f); /* not in the window */
    assert_penalized(s, l, 6, 1.0f);
    /* sampling is not a greedy-only path: top-k 1 picks the penalised top */
    kvs_sampler_free(s);
    kvs_sampler_params p = kvs_sampler_default_params();
    p.repeat_penalty = 2.0f;
    p.temperature = 1.0f;
    p.top_k = 1;
    s = mk_p(&p);
    const float l2[3] = {3.0f, 1.6f, 1.4f};
    assert_int_equal(kvs_sampler_sample(s, l2, 3), 0);
    const kvs_token t0 = 0;
    accept_all(s, &t0, 1);
    assert_int_equal(kvs_sampler_sample(s, l2, 3), 1); /* 3 / 2 = 1.5 < 1.6 */
    kvs_sampler_free(s);
    /* P < 1 rewards repetition: 2 / 0.5 = 4, -1 * 0.5 = -0.5 */
    s = mk_pen(0.5f, 64);
    accept_all(s, hist, 2);
    assert_penalized(s, l, 0, 4.0f);
    assert_penalized(s, l, 1, -0.5f);
    /* an id outside the vocabulary in the history is ignored */
    const kvs_token odd[] = {-5, 1000};
    accept_all(s, odd, 2);
    assert_penalized(s, l, 0, 4.0f);
    assert_penalized(s, l, 2, 0.5f);
    kvs_sampler_free(s);
}

/* The window is the last N tokens accepted: the oldest leaves as a new one
 * comes; -1 keeps all, 0 and P = 1 change nothing, reset forgets. */
static void test_repeat_window(void **state) {
    (void)state;
    const float l[N_PEN] = {2.0f, -1.0f, 0.5f, 3.0f, 0.0f, -2.5f, 1.0f, 0.0f};
    kvs_sampler *s = mk_pen(2.0f, 3);
    const kvs_token a[] = {0, 1, 2, 3};
    accept_all(s, a, 3); /* window 0 1 2: exactly full */
    assert_penalized(s, l, 0, 1.0f);
    assert_penalized(s, l, 2, 0.25f);
    assert_penalized(s, l, 3, 3.0f);
    accept_all(s, a + 3, 1); /* 1 2 3: token 0 has left */
    assert_penalized(s, l, 0, 2.0f);
    assert_penalized(s, l, 1, -2.0f);
    assert_penalized(s, l, 3, 1.5f);
    const kvs_token b[] = {5, 5, 5};
    accept_all(s, b, 3); /* 5 5 5 */
    assert_penalized(s, l, 1, -1.0f);
    assert_penalized(s, l, 3, 3.0f);
    assert_penalized(s, l, 5, -5.0f);
    kvs_sampler_reset(s);
    assert_penalized(s, l, 5, -2.5f);
    kvs_sampler_free(s);

    s = mk_pen(2.0f, -1); /* the whole sequence: the first token stays */
    accept_all(s, a, 1);
    for (int i = 0; i < 1000; i++) accept_all(s, b, 1);
    assert_penalized(s, l, 0, 1.0f);
    assert_penalized(s, l, 5, -5.0f);
    kvs_sampler_free(s);

    s = mk_pen(2.0f, 100); /* a window that fills past its first buffer */
    accept_all(s, a, 1);
    for (int i = 0; i < 99; i++) accept_all(s, b, 1);
    assert_penalized(s, l, 0, 1.0f); /* the 100th token back: still inside */
    accept_all(s, b, 1);
    assert_penalized(s, l, 0, 2.0f);
    accept_all(s, a + 1, 1);
    assert_penalized(s, l, 1, -2.0f);
    kvs_sampler_free(s);

    s = mk_pen(2.0f, 0); /* window off */
    accept_all(s, a, 4);
    assert_penalized(s, l, 0, 2.0f);
    kvs_sampler_free(s);
    s = mk_pen(1.0f, 64); /* penalty 1: off */
    accept_all(s, a, 4);
    assert_penalized(s, l, 3, 3.0f);
    kvs_sampler_free(s);
}

/* Off (P = 1, min-p 0) draws exactly what a sampler without the fields draws. */
/* The rule callers use to say whether a penalty was applied (eval's run file
 * records it only then) is the one the sampler follows: where it says off, a
 * history of repeated tokens leaves greedy's pick alone; where on, it moves it. */
static void test_penalty_on_rule(void **state) {
    (void)state;
    const struct { float pen; int win; int on; } cases[] = {
        {1.0f, 64, 0}, {0.0f, 64, 0}, {1.3f, 0, 0}, {1.3f, 64, 1}, {1.3f, -1, 1}, {0.5f, 8, 1},
    };
    float l[4] = {5.0f, 4.9f, 1.0f, -1.0f};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        kvs_sampler_params p = kvs_sampler_default_params();
        p.repeat_penalty = cases[i].pen;
        p.repeat_last_n = cases[i].win;
        assert_int_equal(kvs_sampler_penalty_on(&p), cases[i].on);
        kvs_sampler *s = mk_p(&p);
        assert_int_equal(kvs_sampler_accept(s, 0), 0);
        /* token 0 leads by 0.1: a penalty above 1 drops it below token 1, one
         * below 1 (a reward) keeps it first */
        const kvs_token want = cases[i].on && cases[i].pen > 1.0f ? 1 : 0;
        assert_int_equal(kvs_sampler_sample(s, l, 4), want);
        kvs_sampler_free(s);
    }
}

static void test_off_is_identical(void **state) {
    (void)state;
    float l[500];
    uint64_t st = 5;
    tu_rand_floats(&st, l, 500);
    kvs_sampler_params z;
    memset(&z, 0, sizeof z);
    z.temperature = 0.8f;
    z.top_k = 40;
    z.top_p = 0.95f;
    z.seed = 3;
    kvs_sampler_params d = kvs_sampler_default_params();
    d.temperature = z.temperature;
    d.top_k = z.top_k;
    d.top_p = z.top_p;
    d.seed = z.seed;
    kvs_sampler *a = mk_p(&z), *b = mk_p(&d);
    for (int i = 0; i < 300; i++) {
        const kvs_token x = kvs_sampler_sample(a, l, 500), y = kvs_sampler_sample(b, l, 500);
        assert_int_equal(x, y);
        accept_all(a, &x, 1);
        accept_all(b, &y, 1);
    }
    kvs_sampler_free(a);
    kvs_sampler_free(b);
}

/* min-p after temperature: logits 2, 1.5, 1, 0 weigh 1, e^-.5, e^-1, e^-2
 * against the top at T = 1, so M = 0.3 keeps three tokens; at T = 0.5 they
 * weigh 1, e^-1, e^-2, e^-4 and the same M keeps two.  The kept tokens'
 * shares follow their renormalised weights. */
static void min_p_case(float temp, int keep) {
    const float l[4] = {2.0f, 1.5f, 1.0f, 0.0f};
    kvs_sampler_params p = kvs_sampler_default_params();
    p.temperature = temp;
    p.min_p = 0.3f;
    p.seed = 9;
    kvs_sampler *s = mk_p(&p);
    int cnt[4] = {0};
    const int N = 20000;
    for (int i = 0; i < N; i++) cnt[kvs_sampler_sample(s, l, 4)]++;
    kvs_sampler_free(s);
    double w[4], sum = 0;
    for (int i = 0; i < 4; i++) sum += (w[i] = i < keep ? exp((l[i] - l[0]) / temp) : 0.0);
    for (int i = 0; i < 4; i++) {
        if (i >= keep) {
            assert_int_equal(cnt[i], 0);
            continue;
        }
        const double pi = w[i] / sum, f = (double)cnt[i] / N, sd = sqrt(pi * (1 - pi) / N);
        if (fabs(f - pi) > 5 * sd) fail_msg("T=%g token %d: frequency %.4f vs %.4f", (double)temp, i, f, pi);
    }
}

static void test_min_p(void **state) {
    (void)state;
    min_p_case(1.0f, 3);
    min_p_case(0.5f, 2);
    /* M = 1 keeps the top token (and exact ties with it) only */
    const float l[4] = {2.0f, 1.999f, 2.0f, 0.0f};
    kvs_sampler_params p = kvs_sampler_default_params();
    p.temperature = 1.0f;
    p.min_p = 1.0f;
    kvs_sampler *s = mk_p(&p);
    int saw2 = 0;
    for (int i = 0; i < 200; i++) {
        const kvs_token t = kvs_sampler_sample(s, l, 4);
        assert_true(t == 0 || t == 2);
        saw2 += t == 2;
    }
    assert_true(saw2 > 0);
    kvs_sampler_free(s);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_greedy), cmocka_unit_test(test_greedy_matches_scan),
        cmocka_unit_test(test_top_k_one_and_tiny_top_p_are_greedy),
        cmocka_unit_test(test_seed_reproducible), cmocka_unit_test(test_distribution),
        cmocka_unit_test(test_bad_params), cmocka_unit_test(test_default_params),
        cmocka_unit_test(test_repeat_penalty_values), cmocka_unit_test(test_repeat_window),
        cmocka_unit_test(test_off_is_identical), cmocka_unit_test(test_min_p),
        cmocka_unit_test(test_penalty_on_rule),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
