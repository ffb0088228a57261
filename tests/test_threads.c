/* Thread counts never change results: the same prompt, batch and decoding steps
 * give bit-identical logits with 1, 2 and 3 threads, and when the context changes
 * its thread count between passes (and so the numerics fingerprint of run files
 * does not depend on it).  This is what lets the engine pick how many
 * threads enter each step (src/engine/threadctl.h); the controller's decision
 * logic is tested here on its own too. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fingerprint.h"
#include "testutil.h"
#include "threadctl.h"

enum { N_STEPS = 6 };

typedef struct run_out {
    float *prompt;        /* logits of the prompt's last token */
    float *pair[2];       /* logits of both sequences of the two-sequence batch */
    float *steps;         /* N_STEPS greedy decoding steps of sequence 0 */
    kvs_token toks[N_STEPS];
} run_out;

static int argmax(const float *x, int n) {
    int b = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[b]) b = i;
    return b;
}

static void decode(kvs_ctx *c, int n, const kvs_token *t, const int32_t *pos, const int32_t *seq, const int8_t *want) {
    kvs_batch b = {n, t, pos, seq, want};
    kvs_error err = {0};
    if (kvs_decode(c, &b, &err)) fail_msg("decode: %s", err.msg);
}

/* One fixed workload: a prompt in sequence 0 (a multi-row pass), a second prompt in
 * sequence 1 decoded together with sequence 0's first step (mixed rows), then
 * single-token steps.  `vary`: pin the context to other counts between passes
 * (1, 2, then 1..n_threads in turn), then leave the choice to it. */
static void workload(int n_threads, int vary, run_out *o) {
    const kvs_model *m = tu_model();
    kvs_model_info mi;
    kvs_model_get_info(m, &mi);
    const int nv = mi.n_vocab;
    kvs_ctx *c = tu_ctx(m, 128, 2, n_threads);
    kvs_error err = {0};
    const char *a = "The river carried silt from the hills to the delta, where farmers";
    const char *b = "def mean(xs):\n    return sum(xs) /";
    kvs_token ta[64], tb[64];
    const int na = kvs_tokenize(m, a, strlen(a), 1, 1, ta, 64, &err);
    const int nb = kvs_tokenize(m, b, strlen(b), 1, 1, tb, 64, &err);
    assert_true(na > 4 && na <= 64 && nb > 4 && nb <= 64);
    int32_t pos[64], seq[64];
    for (int i = 0; i < na; i++) pos[i] = i, seq[i] = 0;
    if (vary) kvs_ctx_pin_threads(c, 1);
    decode(c, na, ta, pos, seq, NULL);
    memcpy(o->prompt, kvs_get_logits(c, na - 1), sizeof(float) * nv);

    /* sequence 1's prompt and sequence 0's next token in one batch */
    kvs_token tk[65];
    int8_t want[65] = {0};
    for (int i = 0; i < nb; i++) tk[i] = tb[i], pos[i] = i, seq[i] = 1;
    tk[nb] = (kvs_token)argmax(o->prompt, nv), pos[nb] = na, seq[nb] = 0;
    want[nb - 1] = want[nb] = 1;
    if (vary) kvs_ctx_pin_threads(c, n_threads > 1 ? 2 : 1);
    decode(c, nb + 1, tk, pos, seq, want);
    memcpy(o->pair[0], kvs_get_logits(c, nb), sizeof(float) * nv);
    memcpy(o->pair[1], kvs_get_logits(c, nb - 1), sizeof(float) * nv);

    kvs_token t = (kvs_token)argmax(o->pair[0], nv);
    for (int s = 0; s < N_STEPS; s++) {
        /* pinned through 1..n_threads and back, then left to the controller */
        if (vary) kvs_ctx_pin_threads(c, s < 2 * n_threads ? 1 + s % n_threads : 0);
        int32_t p = na + 1 + s, q = 0;
        decode(c, 1, &t, &p, &q, NULL);
        memcpy(o->steps + (size_t)s * nv, kvs_get_logits(c, 0), sizeof(float) * nv);
        o->toks[s] = t = (kvs_token)argmax(o->steps + (size_t)s * nv, nv);
    }
    kvs_ctx_free(c);
}

static void out_alloc(run_out *o, int nv) {
    o->prompt = tu_xmalloc(sizeof(float) * nv);
    o->pair[0] = tu_xmalloc(sizeof(float) * nv);
    o->pair[1] = tu_xmalloc(sizeof(float) * nv);
    o->steps = tu_xmalloc(sizeof(float) * nv * N_STEPS);
}

static void out_free(run_out *o) { free(o->prompt), free(o->pair[0]), free(o->pair[1]), free(o->steps); }

static void assert_same(const run_out *x, const run_out *y, int nv) {
    assert_memory_equal(x->prompt, y->prompt, sizeof(float) * nv);
    assert_memory_equal(x->pair[0], y->pair[0], sizeof(float) * nv);
    assert_memory_equal(x->pair[1], y->pair[1], sizeof(float) * nv);
    assert_memory_equal(x->steps, y->steps, sizeof(float) * nv * N_STEPS);
    assert_memory_equal(x->toks, y->toks, sizeof x->toks);
}

static void test_thread_counts_are_exact(void **state) {
    (void)state;
    kvs_model_info mi;
    kvs_model_get_info(tu_model(), &mi);
    run_out ref, o;
    out_alloc(&ref, mi.n_vocab);
    out_alloc(&o, mi.n_vocab);
    workload(1, 0, &ref);
    for (int nt = 2; nt <= 3; nt++) {
        workload(nt, 0, &o);
        assert_same(&ref, &o, mi.n_vocab);
        workload(nt, 1, &o);
        assert_same(&ref, &o, mi.n_vocab);
    }
    out_free(&ref);
    out_free(&o);
}

/* The numerics fingerprint run files record (fingerprint.h) depends on the
 * arithmetic, not on the thread count: equal for 1, 2 and 3 threads and on a
 * second call; different with an f16 cache, whose rounding moves the logits. */
static void test_numerics_fingerprint(void **state) {
    (void)state;
    char a[17], b[17];
    kvs_error err = {0};
    assert_int_equal(eval_numerics_fingerprint(tu_model(), 1, 0, a, &err), 0);
    assert_int_equal(strlen(a), 16);
    for (int nt = 1; nt <= 3; nt++) {
        assert_int_equal(eval_numerics_fingerprint(tu_model(), nt, 0, b, &err), 0);
        assert_string_equal(a, b);
    }
    assert_int_equal(eval_numerics_fingerprint(tu_model(), 2, 1, b, &err), 0);
    assert_string_not_equal(a, b);
}

/* Pinning: the range is checked, and the reported mean is the pinned count. */
static void test_pin_and_mean(void **state) {
    (void)state;
    kvs_ctx *c = tu_ctx(tu_model(), 64, 1, 2);
    assert_true(kvs_ctx_mean_threads(c) == 0);
    assert_int_equal(kvs_ctx_pin_threads(c, 3), KVS_E_ARG);
    assert_int_equal(kvs_ctx_pin_threads(c, -2), KVS_E_ARG);
    assert_int_equal(kvs_ctx_pin_threads(c, 1), 0);
    kvs_token t[4] = {1, 2, 3, 4};
    int32_t pos[4] = {0, 1, 2, 3}, seq[4] = {0};
    decode(c, 4, t, pos, seq, NULL);
    assert_true(kvs_ctx_mean_threads(c) == 1.0);
    kvs_ctx_free(c);
    c = tu_ctx(tu_model(), 64, 1, 2);
    assert_int_equal(kvs_ctx_pin_threads(c, -1), 0);  /* all of them */
    decode(c, 4, t, pos, seq, NULL);
    assert_true(kvs_ctx_mean_threads(c) == 2.0);
    assert_int_equal(kvs_ctx_pin_threads(c, 0), 0);
    int32_t p4 = 4;
    decode(c, 1, t, &p4, seq, NULL);
    assert_true(kvs_ctx_mean_threads(c) >= 1.0 && kvs_ctx_mean_threads(c) <= 2.0);
    kvs_ctx_free(c);
}

/* Feed the class steps of `rate` seconds per unit at count n until `sec` seconds
 * have passed, each step chosen by tc_choose; returns the steps that used each
 * count (counts[1..n_max]). */
static void steps(tc_bucket *b, int n_max, const double *rate, double sec, int *counts) {
    const double work = 1000, t_end = b->clock + sec;
    while (b->clock < t_end) {
        const int n = tc_choose(b, n_max);
        assert_true(n >= 1 && n <= n_max);
        if (counts) counts[n]++;
        tc_record(b, n_max, n, rate[n] * work, work);
    }
}

/* The decision logic on its own, with made-up timings: start at the full count,
 * probe one thread once and keep the full count while it is faster, with probes
 * thinning out; fall back when the full count turns slow (another process took a
 * core), and take it back once it is fast again. */
static void test_controller(void **state) {
    (void)state;
    threadctl tc;
    assert_int_equal(tc_init(&tc, 2), 0);
    assert_true(tc_bucket_of(TC_LAYER, 1) != tc_bucket_of(TC_LAYER, 512));
    assert_true(tc_bucket_of(TC_LAYER, 1) != tc_bucket_of(TC_OUTPUT, 1));
    assert_int_equal(tc_bucket_of(TC_LAYER, 512), tc_bucket_of(TC_LAYER, 600));
    tc_bucket *b = &tc.b[tc_bucket_of(TC_LAYER, 1)];
    /* seconds per unit of work; steps of 1000 units, 1 ms at 1 thread.  Quiet: 2
     * threads take 0.6 of 1 thread's time */
    double quiet[3] = {0, 1e-6, 0.6e-6}, busy[3] = {0, 1e-6, 3e-6};
    assert_int_equal(tc_choose(b, 2), 2);
    int counts[3] = {0};
    steps(b, 2, quiet, TC_WINDOW_S, counts);  /* the first window, at 2 */
    assert_int_equal(counts[1], 0);
    assert_int_equal(tc_choose(b, 2), 1);  /* then one probe of the other count */
    steps(b, 2, quiet, 30.0, counts);
    assert_int_equal(tc_best(b, 2), 2);
    /* probes of 1 thread: once at first, then after 1, 2, 4, 8, 8, 8 s of work:
     * one window each, a small share of the time */
    const double share1 = counts[1] * 1e-3 / (counts[1] * 1e-3 + counts[2] * 0.6e-3);
    assert_true(share1 > 0 && share1 < 0.02);

    /* a core gets busy: 2 threads now take 3x 1 thread's time */
    memset(counts, 0, sizeof counts);
    steps(b, 2, busy, 0.05, counts);  /* at most a few windows before it notices */
    assert_int_equal(tc_best(b, 2), 1);
    memset(counts, 0, sizeof counts);
    steps(b, 2, busy, 30.0, counts);
    assert_int_equal(tc_best(b, 2), 1);
    const double share2 = counts[2] * 3e-3 / (counts[2] * 3e-3 + counts[1] * 1e-3);
    assert_true(share2 > 0 && share2 < 0.03);

    /* another class (prompts) seen for the first time starts from what this one
     * learnt: at 1 thread, and no probe of 2 before the wait reached here */
    tc_bucket *p = &tc.b[tc_bucket_of(TC_LAYER, 256)];
    tc_seed(p, b, 2);
    assert_int_equal(tc_choose(p, 2), 1);
    memset(counts, 0, sizeof counts);
    steps(p, 2, busy, b->arm[2].gap - 0.01, counts);
    assert_int_equal(counts[2], 0);

    /* the core is free again: back to 2 within the longest probe gap */
    steps(b, 2, quiet, TC_GAP_MAX_S + 0.1, NULL);
    assert_int_equal(tc_best(b, 2), 2);
    tc_free(&tc);
}

/* A context's first window is slow (cold caches, page faults): the full count
 * must not lose its place for long to one unlucky window.  Here the first
 * window at 2 threads runs at 3x the time, the probe of 1 thread then wins, and
 * 2 threads are measured again at once and win back. */
static void test_controller_cold_start(void **state) {
    (void)state;
    threadctl tc;
    assert_int_equal(tc_init(&tc, 2), 0);
    tc_bucket *b = &tc.b[tc_bucket_of(TC_LAYER, 1)];
    double cold[3] = {0, 1e-6, 3e-6}, quiet[3] = {0, 1e-6, 0.6e-6};
    steps(b, 2, cold, TC_WINDOW_S, NULL);
    steps(b, 2, quiet, TC_WINDOW_S, NULL); /* the probe of 1 thread: better than the cold window */
    assert_int_equal(tc_best(b, 2), 1);
    int counts[3] = {0};
    steps(b, 2, quiet, 0.5, counts); /* half a second later: back at 2 */
    assert_int_equal(tc_best(b, 2), 2);
    assert_true(counts[2] > 10 * counts[1]);
    tc_free(&tc);
}

/* With more threads it climbs down one count at a time and stops where the time is
 * lowest: 4 threads on a machine where 3 is best. */
static void test_controller_climbs(void **state) {
    (void)state;
    threadctl tc;
    assert_int_equal(tc_init(&tc, 4), 0);
    tc_bucket *b = &tc.b[tc_bucket_of(TC_LAYER, 32)];
    const double rate[5] = {0, 1e-6, 0.55e-6, 0.4e-6, 2e-6};
    steps(b, 4, rate, 20.0, NULL);
    assert_int_equal(tc_best(b, 4), 3);
    /* a probe's window, once open, is finished before anything else */
    b->win_arm = 2;
    b->win_t = 0.001;
    b->win_work = 1000;
    assert_int_equal(tc_choose(b, 4), 2);
    tc_free(&tc);
    /* KVS_FIXED_THREADS pins new controllers at their full count */
    setenv("KVS_FIXED_THREADS", "1", 1);
    assert_int_equal(tc_init(&tc, 4), 0);
    assert_int_equal(tc.pinned, 4);
    tc_free(&tc);
    unsetenv("KVS_FIXED_THREADS");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_thread_counts_are_exact),
        cmocka_unit_test(test_numerics_fingerprint),
        cmocka_unit_test(test_pin_and_mean),
        cmocka_unit_test(test_controller),
        cmocka_unit_test(test_controller_climbs),
        cmocka_unit_test(test_controller_cold_start),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    tu_release();
    return rc;
}
