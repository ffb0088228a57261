/* Forward pass and KV cache on the real model: batching never changes results,
 * cache reads/edits touch exactly what they name, bad batches change nothing. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "half.h"
#include "testutil.h"

static int tokenize(const char *text, kvs_token *out, int cap) {
    kvs_error err = {0};
    int n = kvs_tokenize(tu_model(), text, strlen(text), 0, 1, out, cap, &err);
    if (n < 0 || n > cap) fail_msg("tokenize failed: %s", err.msg);
    return n;
}

static kvs_ctx *new_ctx_kv(int n_ctx, int n_seq, int n_batch, int kv_f16) {
    kvs_ctx_params p = kvs_ctx_default_params();
    p.n_ctx = n_ctx;
    p.n_seq = n_seq;
    p.n_batch = n_batch;
    p.kv_f16 = kv_f16;
    kvs_error err = {0};
    kvs_ctx *c = kvs_ctx_new(tu_model(), &p, &err);
    if (!c) fail_msg("ctx: %s", err.msg);
    return c;
}

static kvs_ctx *new_ctx(int n_ctx, int n_seq, int n_batch) { return new_ctx_kv(n_ctx, n_seq, n_batch, 0); }

/* Prefill `toks` into sequence seq of c, logits of the last token copied to out. */
static void prefill(kvs_ctx *c, int seq, const kvs_token *toks, int n, float *out) {
    int32_t *pos = malloc(sizeof(int32_t) * n), *sq = malloc(sizeof(int32_t) * n);
    for (int i = 0; i < n; i++) {
        pos[i] = kvs_seq_len(c, seq) + i;
        sq[i] = seq;
    }
    kvs_batch b = {n, toks, pos, sq, NULL};
    kvs_error err = {0};
    if (kvs_decode(c, &b, &err)) fail_msg("decode: %s", err.msg);
    if (out) memcpy(out, kvs_get_logits(c, n - 1), sizeof(float) * 49152);
    free(pos);
    free(sq);
}

static int argmax(const float *x, int n) {
    int b = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[b]) b = i;
    return b;
}

static void test_paris(void **state) {
    (void)state;
    kvs_token t[32];
    int n = tokenize("The capital of France is", t, 32);
    kvs_ctx *c = new_ctx(256, 1, 512);
    float *lg = malloc(sizeof(float) * 49152);
    prefill(c, 0, t, n, lg);
    char buf[64];
    int nb = kvs_token_to_bytes(tu_model(), argmax(lg, 49152), buf, sizeof buf);
    assert_true(nb > 0);
    buf[nb] = 0;
    assert_string_equal(buf, " Paris");
    free(lg);
    kvs_ctx_free(c);
}

/* Prefill in chunks of 3 equals prefill in one go, bit for bit; and two
 * different prompts decoded together in one batch give the same logits as
 * each alone. */
static void test_batching_is_exact(void **state) {
    (void)state;
    kvs_token a[64], b[64];
    int na = tokenize("Rivers carry sediment from the mountains down to the sea.", a, 64);
    int nb = tokenize("def add(x, y):\n    return x + y\n", b, 64);
    float *la = malloc(sizeof(float) * 49152), *lb = malloc(sizeof(float) * 49152);
    float *x = malloc(sizeof(float) * 49152);

    kvs_ctx *c1 = new_ctx(128, 1, 512);
    prefill(c1, 0, a, na, la);
    kvs_ctx_free(c1);
    c1 = new_ctx(128, 1, 512);
    prefill(c1, 0, b, nb, lb);
    kvs_ctx_free(c1);

    kvs_ctx *c2 = new_ctx(128, 1, 3);
    prefill(c2, 0, a, na, x);
    assert_memory_equal(x, la, sizeof(float) * 49152);
    kvs_ctx_free(c2);

    /* interleaved two-sequence batch, logits for both last tokens */
    kvs_ctx *c3 = new_ctx(128, 3, 512);
    int n = na + nb;
    kvs_token *tk = malloc(sizeof(kvs_token) * n);
    int32_t *pos = malloc(sizeof(int32_t) * n), *sq = malloc(sizeof(int32_t) * n);
    int8_t *want = calloc(n, 1);
    int ia = 0, ib = 0, k = 0, last_a = -1, last_b = -1;
    while (ia < na || ib < nb) {
        if (ia < na) {
            tk[k] = a[ia];
            pos[k] = ia;
            sq[k] = 2;
            if (ia == na - 1) last_a = k;
            ia++, k++;
        }
        if (ib < nb) {
            tk[k] = b[ib];
            pos[k] = ib;
            sq[k] = 0;
            if (ib == nb - 1) last_b = k;
            ib++, k++;
        }
    }
    want[last_a] = want[last_b] = 1;
    kvs_batch bt = {n, tk, pos, sq, want};
    kvs_error err = {0};
    assert_int_equal(kvs_decode(c3, &bt, &err), 0);
    assert_memory_equal(kvs_get_logits(c3, last_a), la, sizeof(float) * 49152);
    assert_memory_equal(kvs_get_logits(c3, last_b), lb, sizeof(float) * 49152);
    assert_null(kvs_get_logits(c3, 0 == last_a ? 1 : 0));
    assert_int_equal(kvs_seq_len(c3, 2), na);
    assert_int_equal(kvs_seq_len(c3, 0), nb);
    assert_int_equal(kvs_seq_len(c3, 1), 0);
    kvs_ctx_free(c3);
    free(tk), free(pos), free(sq), free(want), free(la), free(lb), free(x);
}

/* A sequence continued from a copied prefix gives exactly the logits of decoding
 * the whole text in one sequence. */
static void test_seq_copy_is_exact(void **state) {
    (void)state;
    kvs_token t[64];
    const int n = tokenize("Shared few-shot prefix, then a question that differs at the end.", t, 64);
    assert_true(n > 6);
    float *whole = malloc(sizeof(float) * 49152), *x = malloc(sizeof(float) * 49152);
    kvs_ctx *c = new_ctx(128, 3, 512);
    prefill(c, 0, t, n, whole);
    kvs_error err = {0};
    const int k = n - 4;
    prefill(c, 2, t, 3, NULL); /* dst's old entries must be replaced, not kept */
    assert_int_equal(kvs_seq_copy(c, 0, 2, k, &err), 0);
    assert_int_equal(kvs_seq_len(c, 2), k);
    prefill(c, 2, t + k, n - k, x);
    assert_memory_equal(x, whole, sizeof(float) * 49152);
    /* impossible copies are refused and change nothing */
    assert_int_not_equal(kvs_seq_copy(c, 1, 2, 1, &err), 0); /* seq 1 is empty */
    assert_int_equal(err.code, KVS_E_RANGE);
    assert_int_not_equal(kvs_seq_copy(c, 0, 3, 1, &err), 0);
    assert_int_not_equal(kvs_seq_copy(c, 0, 1, n + 1, &err), 0);
    assert_int_not_equal(kvs_seq_copy(c, 0, 1, -1, &err), 0);
    assert_int_equal(kvs_seq_len(c, 1), 0);
    assert_int_equal(kvs_seq_len(c, 2), n);
    kvs_ctx_free(c);
    free(whole), free(x);
}

static void test_cache_read_add(void **state) {
    (void)state;
    kvs_model_info mi;
    kvs_model_get_info(tu_model(), &mi);
    const int kvd = mi.n_head_kv * mi.head_dim;
    kvs_token t[32];
    int n = tokenize("Cache entries are per layer.", t, 32);
    kvs_ctx *c = new_ctx(64, 2, 512);
    prefill(c, 1, t, n, NULL);
    float *before = malloc(sizeof(float) * (size_t)mi.n_layer * n * kvd * 2);
    float *e = malloc(sizeof(float) * kvd), *delta = malloc(sizeof(float) * kvd);
    kvs_error err = {0};
    for (int l = 0; l < mi.n_layer; l++)
        for (int p = 0; p < n; p++)
            for (int w = 0; w < 2; w++)
                assert_int_equal(kvs_cache_read(c, 1, p, l, (kvs_kv)w, before + (((size_t)l * n + p) * 2 + w) * kvd, &err), 0);
    uint64_t s = 7;
    tu_rand_floats(&s, delta, kvd);
    assert_int_equal(kvs_cache_add(c, 1, n - 1, 5, KVS_V, delta, 2.0f, &err), 0);
    for (int l = 0; l < mi.n_layer; l++)
        for (int p = 0; p < n; p++)
            for (int w = 0; w < 2; w++) {
                assert_int_equal(kvs_cache_read(c, 1, p, l, (kvs_kv)w, e, &err), 0);
                const float *b = before + (((size_t)l * n + p) * 2 + w) * kvd;
                if (l == 5 && p == n - 1 && w == KVS_V) {
                    for (int i = 0; i < kvd; i++) assert_true(e[i] == b[i] + 2.0f * delta[i]);
                } else {
                    assert_memory_equal(e, b, sizeof(float) * kvd);
                }
            }
    /* out of range requests are errors */
    assert_int_not_equal(kvs_cache_read(c, 1, n, 0, KVS_K, e, &err), 0);
    assert_int_equal(err.code, KVS_E_RANGE);
    assert_int_not_equal(kvs_cache_read(c, 0, 0, 0, KVS_K, e, &err), 0); /* seq 0 is empty */
    assert_int_not_equal(kvs_cache_read(c, 2, 0, 0, KVS_K, e, &err), 0);
    assert_int_not_equal(kvs_cache_add(c, 1, 0, mi.n_layer, KVS_K, delta, 1, &err), 0);
    assert_int_not_equal(kvs_cache_add(c, 1, -1, 0, KVS_K, delta, 1, &err), 0);
    free(before), free(e), free(delta);
    kvs_ctx_free(c);
}

/* Bad batches are refused before anything is written. */
static void test_bad_batches(void **state) {
    (void)state;
    kvs_ctx *c = new_ctx(8, 1, 512);
    kvs_error err = {0};
    kvs_token tk[10] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
    int32_t pos[10], sq[10] = {0};
    for (int i = 0; i < 10; i++) pos[i] = i;
    kvs_batch b = {9, tk, pos, sq, NULL};
    assert_int_not_equal(kvs_decode(c, &b, &err), 0); /* 9 tokens > n_ctx 8 */
    assert_non_null(strstr(err.msg, "context"));
    assert_int_equal(kvs_seq_len(c, 0), 0);
    kvs_batch gap = {2, tk, pos + 1, sq, NULL}; /* starts at position 1 */
    assert_int_not_equal(kvs_decode(c, &gap, &err), 0);
    int32_t bad_seq[1] = {3};
    kvs_batch bs = {1, tk, pos, bad_seq, NULL};
    assert_int_not_equal(kvs_decode(c, &bs, &err), 0);
    kvs_token bad_tok[1] = {49152};
    kvs_batch bt = {1, bad_tok, pos, sq, NULL};
    assert_int_not_equal(kvs_decode(c, &bt, &err), 0);
    kvs_batch empty = {0, tk, pos, sq, NULL};
    assert_int_not_equal(kvs_decode(c, &empty, &err), 0);
    assert_int_equal(kvs_seq_len(c, 0), 0);
    kvs_batch ok = {8, tk, pos, sq, NULL};
    assert_int_equal(kvs_decode(c, &ok, &err), 0);
    assert_int_equal(kvs_seq_len(c, 0), 8);
    assert_int_equal(kvs_seq_truncate(c, 0, 3, &err), 0);
    assert_int_equal(kvs_seq_len(c, 0), 3);
    kvs_ctx_free(c);
}

/* Residual capture, and a residual hook: adding zero changes nothing; adding
 * a vector after the last layer shifts exactly what the final norm sees. */
static void test_residual_hooks(void **state) {
    (void)state;
    kvs_model_info mi;
    kvs_model_get_info(tu_model(), &mi);
    kvs_token t[32];
    int n = tokenize("Activation steering adds a vector.", t, 32);
    float *l0 = malloc(sizeof(float) * 49152), *l1 = malloc(sizeof(float) * 49152);
    kvs_ctx *c = new_ctx(64, 1, 512);
    prefill(c, 0, t, n, l0);
    kvs_ctx_free(c);

    c = new_ctx(64, 1, 512);
    kvs_error err = {0};
    float *zero = calloc(mi.n_embd, sizeof(float));
    assert_int_equal(kvs_set_residual_add(c, 0, 10, zero, 3.0f, &err), 0);
    kvs_set_capture_residual(c, 1);
    prefill(c, 0, t, n, l1);
    assert_memory_equal(l0, l1, sizeof(float) * 49152);
    const float *r_last = kvs_get_residual(c, n - 1, mi.n_layer - 1);
    assert_non_null(r_last);
    assert_non_null(kvs_get_embedding(c, n - 1));
    /* capture is of the residual stream, which the final norm rescales: the
     * last layer's captured residual must not be the normalised hidden state */
    assert_true(memcmp(r_last, kvs_get_embedding(c, n - 1), sizeof(float) * mi.n_embd) != 0);
    assert_null(kvs_get_residual(c, n, 0));
    assert_null(kvs_get_residual(c, 0, mi.n_layer));
    assert_int_not_equal(kvs_set_residual_add(c, 0, mi.n_layer, zero, 1, &err), 0);
    assert_int_not_equal(kvs_set_residual_add(c, 5, 0, zero, 1, &err), 0);
    kvs_ctx_free(c);

    /* a non-zero hook changes the logits; removing it restores them */
    c = new_ctx(64, 1, 512);
    float *v = malloc(sizeof(float) * mi.n_embd);
    uint64_t s = 3;
    tu_rand_floats(&s, v, mi.n_embd);
    assert_int_equal(kvs_set_residual_add(c, -1, 12, v, 4.0f, &err), 0);
    prefill(c, 0, t, n, l1);
    assert_true(memcmp(l0, l1, sizeof(float) * 49152) != 0);
    assert_int_equal(kvs_set_residual_add(c, 0, -1, NULL, 0, &err), 0);
    kvs_seq_truncate(c, 0, 0, &err);
    prefill(c, 0, t, n, l1);
    assert_memory_equal(l0, l1, sizeof(float) * 49152);
    kvs_ctx_free(c);
    free(zero), free(v), free(l0), free(l1);
}

/* A half cache: entries are the float cache's rounded to half where nothing
 * earlier differs (layer 0), results stay independent of how a prompt is cut
 * into batches, edits round once, copies are exact, and the model still
 * answers as with a float cache. */
static void test_f16_cache(void **state) {
    (void)state;
    kvs_model_info mi;
    kvs_model_get_info(tu_model(), &mi);
    const int kvd = mi.n_head_kv * mi.head_dim;
    kvs_token t[64];
    const int n = tokenize("The capital of France is", t, 64);
    float *l32 = malloc(sizeof(float) * 49152), *l16 = malloc(sizeof(float) * 49152);
    float *x = malloc(sizeof(float) * 49152);
    float *e32 = malloc(sizeof(float) * kvd), *e16 = malloc(sizeof(float) * kvd), *d = malloc(sizeof(float) * kvd);
    kvs_error err = {0};
    kvs_ctx *c32 = new_ctx(64, 1, 512), *c16 = new_ctx_kv(64, 3, 512, 1);
    prefill(c32, 0, t, n, l32);
    prefill(c16, 0, t, n, l16);
    for (int p = 0; p < n; p++)
        for (int w = 0; w < 2; w++) {
            assert_int_equal(kvs_cache_read(c32, 0, p, 0, (kvs_kv)w, e32, &err), 0);
            assert_int_equal(kvs_cache_read(c16, 0, p, 0, (kvs_kv)w, e16, &err), 0);
            for (int i = 0; i < kvd; i++) assert_true(e16[i] == f16_to_f32(f32_to_f16(e32[i])));
        }
    /* later layers read rounded entries, so logits move a little, not the answer */
    assert_int_equal(argmax(l16, 49152), argmax(l32, 49152));
    /* measured: mean |difference| over the vocabulary 0.16 with the AMX kernel
     * set, 0.46 with the AVX-512 VNNI and the AVX2 sets (top logit 17.4; the
     * rounding of the cached keys is amplified differently by each set's
     * activations).  The half path was checked bit-identical to a float cache
     * whose entries are rounded when stored, so this is rounding, not a wrong
     * row: the bound only catches a broken cache. */
    double sum = 0;
    for (int i = 0; i < 49152; i++) sum += fabsf(l16[i] - l32[i]);
    printf("half cache: mean |logit difference| %.3f\n", sum / 49152);
    assert_true(sum > 0 && sum / 49152 < 1.0);

    /* chunks of 3 in another sequence: the same logits bit for bit */
    kvs_ctx *c16b = new_ctx_kv(64, 3, 3, 1);
    prefill(c16b, 2, t, n, x);
    assert_memory_equal(x, l16, sizeof(float) * 49152);
    kvs_ctx_free(c16b);

    /* a copied prefix continues exactly */
    assert_int_equal(kvs_seq_copy(c16, 0, 1, n - 2, &err), 0);
    prefill(c16, 1, t + n - 2, 2, x);
    assert_memory_equal(x, l16, sizeof(float) * 49152);

    /* an edit is formed in float and rounded once */
    uint64_t s = 11;
    tu_rand_floats(&s, d, kvd);
    assert_int_equal(kvs_cache_read(c16, 0, n - 1, 7, KVS_K, e16, &err), 0);
    assert_int_equal(kvs_cache_add(c16, 0, n - 1, 7, KVS_K, d, 3.0f, &err), 0);
    assert_int_equal(kvs_cache_read(c16, 0, n - 1, 7, KVS_K, e32, &err), 0);
    for (int i = 0; i < kvd; i++) assert_true(e32[i] == f16_to_f32(f32_to_f16(e16[i] + 3.0f * d[i])));
    kvs_ctx_free(c32);
    kvs_ctx_free(c16);
    free(l32), free(l16), free(x), free(e32), free(e16), free(d);
}

static void test_bad_ctx_params(void **state) {
    (void)state;
    kvs_ctx_params p = kvs_ctx_default_params();
    p.n_seq = -1;
    kvs_error err = {0};
    assert_null(kvs_ctx_new(tu_model(), &p, &err));
    assert_int_equal(err.code, KVS_E_ARG);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_paris),          cmocka_unit_test(test_batching_is_exact),
        cmocka_unit_test(test_cache_read_add), cmocka_unit_test(test_bad_batches),
        cmocka_unit_test(test_residual_hooks), cmocka_unit_test(test_bad_ctx_params),
        cmocka_unit_test(test_seq_copy_is_exact), cmocka_unit_test(test_f16_cache),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    tu_release();
    return rc;
}
