/* Cache steering and its vectors on the real model:
 *  - zero coefficients are bit-identical to a plain run with the offset token;
 *  - steering changes exactly the targeted cache entries, by c * S;
 *  - extraction equals a brute-force mean of differences from cache reads;
 *  - vector files round-trip byte-identically and refuse other models;
 *  - sets built from the caller's floats equal the sets they came from, down to
 *    the file, and refuse shapes that are not the model's;
 *  - llama.cpp control vectors: written, read back, applied at all their layers,
 *    and refused when made for another model or malformed. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gguf.h"
#include "steer.h"
#include "testutil.h"

static const char *k_pos[3] = {
    "<|im_start|>user\nWhat is 2+3?<|im_end|>\n<|im_start|>assistant\nFirst add 2 and 3. The answer is 5.<|im_end|>\n"
    "<|im_start|>user\nWhat is 4+4?<|im_end|>\n<|im_start|>assistant\n",
    "<|im_start|>user\nIs ice cold?<|im_end|>\n<|im_start|>assistant\nIce is frozen water, which is below 0 C. The answer is yes.<|im_end|>\n"
    "<|im_start|>user\nIs fire hot?<|im_end|>\n<|im_start|>assistant\n",
    "<|im_start|>user\nName a red fruit.<|im_end|>\n<|im_start|>assistant\nStrawberries are red when ripe. The answer is strawberry.<|im_end|>\n"
    "<|im_start|>user\nName a yellow fruit.<|im_end|>\n<|im_start|>assistant\n"};
static const char *k_neg[3] = {
    "<|im_start|>user\nWhat is 2+3?<|im_end|>\n<|im_start|>assistant\nThe answer is 5.<|im_end|>\n"
    "<|im_start|>user\nWhat is 4+4?<|im_end|>\n<|im_start|>assistant\n",
    "<|im_start|>user\nIs ice cold?<|im_end|>\n<|im_start|>assistant\nThe answer is yes.<|im_end|>\n"
    "<|im_start|>user\nIs fire hot?<|im_end|>\n<|im_start|>assistant\n",
    "<|im_start|>user\nName a red fruit.<|im_end|>\n<|im_start|>assistant\nThe answer is strawberry.<|im_end|>\n"
    "<|im_start|>user\nName a yellow fruit.<|im_end|>\n<|im_start|>assistant\n"};

static kvs_steer *g_cache_vec; /* extracted once, shared by the tests below */

static kvs_token *tok(const char *text, int *n) {
    kvs_error err = {0};
    int k = kvs_tokenize(tu_model(), text, strlen(text), -1, 1, NULL, 0, &err);
    assert_true(k > 0);
    kvs_token *t = malloc(sizeof(kvs_token) * (k + 1));
    assert_int_equal(kvs_tokenize(tu_model(), text, strlen(text), -1, 1, t, k, &err), k);
    *n = k;
    return t;
}

static int setup(void **state) {
    (void)state;
    kvs_extract_params xp = {KVS_STEER_CACHE, 0, 0, 2, NULL, NULL};
    kvs_error err = {0};
    g_cache_vec = kvs_steer_extract(tu_model(), k_pos, k_neg, 3, &xp, &err);
    if (!g_cache_vec) fail_msg("extract: %s", err.msg);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    kvs_steer_free(g_cache_vec);
    tu_release();
    return 0;
}

/* Brute force: each prompt alone in a fresh context, cache read at its last
 * position, mean of differences in double. */
static void test_extract_matches_brute_force(void **state) {
    (void)state;
    kvs_model_info mi;
    kvs_model_get_info(tu_model(), &mi);
    const int dim = mi.n_head_kv * mi.head_dim;
    double *acc = calloc((size_t)mi.n_layer * dim * 2, sizeof(double));
    float *e = malloc(sizeof(float) * dim);
    kvs_error err = {0};
    for (int i = 0; i < 3; i++)
        for (int side = 0; side < 2; side++) {
            int n;
            kvs_token *t = tok(side ? k_neg[i] : k_pos[i], &n);
            kvs_ctx *c = tu_ctx(tu_model(), 512, 1, 0);
            kvs_gen_request r = {0};
            r.prompt = t;
            r.n_prompt = n;
            r.max_new = 0;
            assert_int_equal(kvs_generate(c, &r, 1, 0, NULL, NULL, &err), 0);
            for (int l = 0; l < mi.n_layer; l++)
                for (int w = 0; w < 2; w++) {
                    assert_int_equal(kvs_cache_read(c, 0, n - 1, l, (kvs_kv)w, e, &err), 0);
                    for (int d = 0; d < dim; d++) acc[((size_t)l * 2 + w) * dim + d] += (side ? -1.0 : 1.0) * e[d];
                }
            kvs_ctx_free(c);
            free(t);
        }
    double max_err = 0;
    for (int l = 0; l < mi.n_layer; l++)
        for (int w = 0; w < 2; w++) {
            const float *v = kvs_steer_vector(g_cache_vec, l, (kvs_kv)w);
            assert_non_null(v);
            for (int d = 0; d < dim; d++) {
                double want = acc[((size_t)l * 2 + w) * dim + d] / 3.0, diff = fabs(v[d] - want);
                if (diff > max_err) max_err = diff;
            }
        }
    /* same computations, batched differently: only the float rounding of the
     * final division may differ */
    if (max_err > 1e-5) fail_msg("extracted vector differs from brute force by %g", max_err);
    free(acc);
    free(e);
}

static void generate(const kvs_token *t, int n, const kvs_steer *s, float ck, float cv, kvs_token *out, int *n_out) {
    kvs_ctx *c = tu_ctx(tu_model(), 512, 1, 0);
    tu_cache_edit u = {s, {ck, cv, 1, -1}};
    kvs_gen_request r = {0};
    r.prompt = t;
    r.n_prompt = n;
    r.n_hold = 1;
    r.max_new = 40;
    r.out = out;
    if (s) {
        r.on_prefilled = tu_cache_edit_hook;
        r.user = &u;
    }
    kvs_error err = {0};
    assert_int_equal(kvs_generate(c, &r, 1, 0, NULL, NULL, &err), 0);
    *n_out = r.n_out;
    kvs_ctx_free(c);
}

static void test_zero_coefficients_are_identical(void **state) {
    (void)state;
    int n;
    kvs_token *t = tok("<|im_start|>user\nWhy is the sea salty?<|im_end|>\n<|im_start|>assistant\n\n", &n);
    kvs_token a[40], b[40], c2[40];
    int na, nb, nc;
    generate(t, n, NULL, 0, 0, a, &na);
    generate(t, n, g_cache_vec, 0.0f, 0.0f, b, &nb);
    assert_int_equal(na, nb);
    assert_memory_equal(a, b, sizeof(kvs_token) * na);
    /* and a strong edit does change the output */
    generate(t, n, g_cache_vec, 0.0f, 40.0f, c2, &nc);
    assert_true(nc != na || memcmp(a, c2, sizeof(kvs_token) * na) != 0);
    free(t);
}

static void test_only_target_entries_change(void **state) {
    (void)state;
    kvs_model_info mi;
    kvs_model_get_info(tu_model(), &mi);
    const int dim = mi.n_head_kv * mi.head_dim;
    int n;
    kvs_token *t = tok(k_pos[0], &n);
    kvs_ctx *c = tu_ctx(tu_model(), 512, 2, 0);
    kvs_gen_request r = {0};
    r.prompt = t;
    r.n_prompt = n;
    kvs_error err = {0};
    assert_int_equal(kvs_generate(c, &r, 1, 1, NULL, NULL, &err), 0);
    float *before = malloc(sizeof(float) * (size_t)mi.n_layer * n * 2 * dim), *e = malloc(sizeof(float) * dim);
    for (int l = 0; l < mi.n_layer; l++)
        for (int p = 0; p < n; p++)
            for (int w = 0; w < 2; w++)
                assert_int_equal(kvs_cache_read(c, 1, p, l, (kvs_kv)w, before + (((size_t)l * n + p) * 2 + w) * dim, &err), 0);
    kvs_steer_params sp = {0.5f, 3.0f, 2, 20};
    assert_int_equal(kvs_steer_apply_cache(c, 1, n - 1, g_cache_vec, &sp, &err), 0);
    for (int l = 0; l < mi.n_layer; l++)
        for (int p = 0; p < n; p++)
            for (int w = 0; w < 2; w++) {
                assert_int_equal(kvs_cache_read(c, 1, p, l, (kvs_kv)w, e, &err), 0);
                const float *b = before + (((size_t)l * n + p) * 2 + w) * dim;
                if (p == n - 1 && l >= 2 && l <= 20) {
                    const float *s = kvs_steer_vector(g_cache_vec, l, (kvs_kv)w);
                    const float cf = w == KVS_K ? 0.5f : 3.0f;
                    for (int d = 0; d < dim; d++) assert_true(e[d] == b[d] + cf * s[d]);
                } else {
                    assert_memory_equal(e, b, sizeof(float) * dim);
                }
            }
    /* bad ranges and kinds */
    kvs_steer_params bad = {0, 1, 5, 99};
    assert_int_not_equal(kvs_steer_apply_cache(c, 1, n - 1, g_cache_vec, &bad, &err), 0);
    assert_int_not_equal(kvs_steer_apply_cache(c, 1, n, g_cache_vec, &sp, &err), 0);
    assert_int_not_equal(kvs_steer_apply_act(c, 1, g_cache_vec, 3, 1.0f, &err), 0);
    free(before), free(e), free(t);
    kvs_ctx_free(c);
}

static void test_file_roundtrip_and_determinism(void **state) {
    (void)state;
    char a[128], b[128];
    snprintf(a, sizeof a, "/tmp/kvs_vec_a_%d.gguf", (int)getpid());
    snprintf(b, sizeof b, "/tmp/kvs_vec_b_%d.gguf", (int)getpid());
    kvs_error err = {0};
    assert_int_equal(kvs_steer_set_meta(g_cache_vec, "pairs", "3"), 0);
    assert_int_equal(kvs_steer_save(g_cache_vec, a, &err), 0);
    /* a second extraction with another batch size is the same file, byte for byte */
    kvs_extract_params xp = {KVS_STEER_CACHE, 0, 1, 3, NULL, NULL};
    kvs_steer *again = kvs_steer_extract(tu_model(), k_pos, k_neg, 3, &xp, &err);
    assert_non_null(again);
    assert_int_equal(kvs_steer_set_meta(again, "pairs", "3"), 0);
    assert_int_equal(kvs_steer_save(again, b, &err), 0);
    size_t na, nb;
    char *fa = tu_read_file(a, &na), *fb = tu_read_file(b, &nb);
    assert_int_equal(na, nb);
    assert_memory_equal(fa, fb, na);
    free(fa), free(fb);
    kvs_steer_free(again);

    kvs_steer *l = kvs_steer_load(a, tu_model(), &err);
    if (!l) fail_msg("%s", err.msg);
    assert_int_equal(kvs_steer_get_kind(l), KVS_STEER_CACHE);
    assert_string_equal(kvs_steer_meta(l, "kvsteer.extract.pairs"), "3");
    kvs_model_info mi;
    kvs_model_get_info(tu_model(), &mi);
    for (int i = 0; i < mi.n_layer; i++)
        for (int w = 0; w < 2; w++)
            assert_memory_equal(kvs_steer_vector(l, i, (kvs_kv)w), kvs_steer_vector(g_cache_vec, i, (kvs_kv)w),
                                sizeof(float) * mi.n_head_kv * mi.head_dim);
    kvs_steer_free(l);

    /* truncated copies are refused with the file named */
    fa = tu_read_file(a, &na);
    FILE *f = fopen(b, "wb");
    fwrite(fa, 1, na / 2, f);
    fclose(f);
    assert_null(kvs_steer_load(b, tu_model(), &err));
    assert_non_null(strstr(err.msg, b));
    free(fa);
    unlink(a);
    unlink(b);
}

/* A vector file claiming another model's shape or tokenizer is a mismatch. */
static void test_other_model_is_refused(void **state) {
    (void)state;
    char p[128];
    snprintf(p, sizeof p, "/tmp/kvs_vec_other_%d.gguf", (int)getpid());
    kvs_model_info mi;
    kvs_model_get_info(tu_model(), &mi);
    for (int variant = 0; variant < 3; variant++) {
        gguf_writer *w = gguf_writer_new();
        gguf_writer_add_str(w, "general.architecture", "kvsteer-vector");
        gguf_writer_add_u32(w, "kvsteer.format_version", 1);
        gguf_writer_add_str(w, "kvsteer.kind", "cache");
        gguf_writer_add_str(w, "kvsteer.model.architecture", "llama");
        gguf_writer_add_u32(w, "kvsteer.model.block_count", (uint32_t)(variant == 0 ? 24 : mi.n_layer));
        gguf_writer_add_u32(w, "kvsteer.model.head_count_kv", (uint32_t)(variant == 1 ? 5 : mi.n_head_kv));
        gguf_writer_add_u32(w, "kvsteer.model.head_dim", (uint32_t)mi.head_dim);
        gguf_writer_add_u32(w, "kvsteer.model.embedding_length", (uint32_t)mi.n_embd);
        gguf_writer_add_u64(w, "kvsteer.model.tokenizer_hash", variant == 2 ? 12345u : mi.tokenizer_hash);
        kvs_error err = {0};
        assert_int_equal(gguf_writer_save(w, p, &err), 0);
        gguf_writer_free(w);
        assert_null(kvs_steer_load(p, tu_model(), &err));
        assert_int_equal(err.code, KVS_E_MISMATCH);
        assert_non_null(strstr(err.msg, p));
    }
    /* the model file itself is not a vector file */
    kvs_error err = {0};
    assert_null(kvs_steer_load(tu_model_path(), tu_model(), &err));
    assert_non_null(strstr(err.msg, "not a kvsteer vector file"));
    unlink(p);
}

static double dot(const float *a, const float *b, int n) {
    double s = 0;
    for (int i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

/* The random-direction control: every layer's K and V keep their norm, the
 * directions are new (and fixed by the seed), the metadata and the model the
 * vector was made for carry over, so loading still checks the model. */
static void test_random_like(void **state) {
    (void)state;
    kvs_error err = {0};
    kvs_model_info mi;
    kvs_model_get_info(tu_model(), &mi);
    const int dim = mi.n_head_kv * mi.head_dim;
    assert_int_equal(kvs_steer_set_meta(g_cache_vec, "prefix", "Let's think step by step."), 0);
    kvs_steer *r = steer_random_like(g_cache_vec, 7, &err), *r2 = steer_random_like(g_cache_vec, 7, &err),
              *r3 = steer_random_like(g_cache_vec, 8, &err);
    assert_non_null(r), assert_non_null(r2), assert_non_null(r3);
    for (int l = 0; l < mi.n_layer; l++)
        for (int w = 0; w < 2; w++) {
            const float *a = kvs_steer_vector(g_cache_vec, l, (kvs_kv)w), *b = kvs_steer_vector(r, l, (kvs_kv)w);
            const double na = sqrt(dot(a, a, dim)), nb = sqrt(dot(b, b, dim));
            if (fabs(na - nb) > 1e-5 * na) fail_msg("layer %d %s: norm %g, source %g", l, w ? "V" : "K", nb, na);
            if (fabs(dot(a, b, dim)) > 0.5 * na * nb) fail_msg("layer %d %s: cosine %g to the source", l, w ? "V" : "K", dot(a, b, dim) / (na * nb));
            assert_memory_equal(b, kvs_steer_vector(r2, l, (kvs_kv)w), sizeof(float) * dim);
            assert_memory_not_equal(b, kvs_steer_vector(r3, l, (kvs_kv)w), sizeof(float) * dim);
        }
    assert_string_equal(kvs_steer_meta(r, "kvsteer.extract.prefix"), "Let's think step by step.");
    char p[128];
    snprintf(p, sizeof p, "/tmp/kvs_vec_rand_%d.gguf", (int)getpid());
    assert_int_equal(kvs_steer_save(r, p, &err), 0);
    kvs_steer *l = kvs_steer_load(p, tu_model(), &err);
    if (!l) fail_msg("%s", err.msg);
    kvs_steer_free(l);
    /* made from a vector of another model: refused like that vector */
    g_cache_vec->tokenizer_hash ^= 1;
    kvs_steer *other = steer_random_like(g_cache_vec, 7, &err);
    g_cache_vec->tokenizer_hash ^= 1;
    assert_int_equal(kvs_steer_save(other, p, &err), 0);
    assert_null(kvs_steer_load(p, tu_model(), &err));
    assert_int_equal(err.code, KVS_E_MISMATCH);
    unlink(p);
    kvs_steer_free(other), kvs_steer_free(r), kvs_steer_free(r2), kvs_steer_free(r3);
}

/* Every layer of a set, flattened layer after layer (which: K or V, ignored for act). */
static float *flatten(const kvs_steer *s, int n_layer, int dim, kvs_kv which) {
    float *out = tu_xmalloc(sizeof(float) * (size_t)n_layer * (size_t)dim);
    for (int l = 0; l < n_layer; l++) memcpy(out + (size_t)l * dim, kvs_steer_vector(s, l, which), sizeof(float) * dim);
    return out;
}

static void test_from_floats(void **state) {
    (void)state;
    kvs_model_info mi;
    kvs_model_get_info(tu_model(), &mi);
    const int dim = mi.n_head_kv * mi.head_dim;
    float *k = flatten(g_cache_vec, mi.n_layer, dim, KVS_K), *v = flatten(g_cache_vec, mi.n_layer, dim, KVS_V);
    const int shape[3] = {mi.n_layer, mi.n_head_kv, mi.head_dim};
    kvs_error err = {0};
    kvs_steer *s = kvs_steer_from_floats(tu_model(), KVS_STEER_CACHE, shape, 3, k, v, &err);
    if (!s) fail_msg("%s", err.msg);
    assert_int_equal(kvs_steer_get_kind(s), KVS_STEER_CACHE);
    assert_int_equal(kvs_steer_meta_count(s), 0);
    for (int l = 0; l < mi.n_layer; l++)
        for (int w = 0; w < 2; w++)
            assert_memory_equal(kvs_steer_vector(s, l, (kvs_kv)w), kvs_steer_vector(g_cache_vec, l, (kvs_kv)w),
                                sizeof(float) * dim);
    /* with the same metadata the file is the same, byte for byte */
    for (int i = 0; i < kvs_steer_meta_count(g_cache_vec); i++)
        assert_int_equal(kvs_steer_set_meta(s, kvs_steer_meta_key(g_cache_vec, i) + strlen("kvsteer.extract."),
                                            kvs_steer_meta_value(g_cache_vec, i)), 0);
    char a[128], b[128];
    snprintf(a, sizeof a, "/tmp/kvs_vec_ff_a_%d.gguf", (int)getpid());
    snprintf(b, sizeof b, "/tmp/kvs_vec_ff_b_%d.gguf", (int)getpid());
    assert_int_equal(kvs_steer_save(g_cache_vec, a, &err), 0);
    assert_int_equal(kvs_steer_save(s, b, &err), 0);
    size_t na, nb;
    char *fa = tu_read_file(a, &na), *fb = tu_read_file(b, &nb);
    assert_int_equal(na, nb);
    assert_memory_equal(fa, fb, na);
    free(fa), free(fb);
    kvs_steer_free(s);

    /* shapes that are not the model's are a mismatch naming both; the head
     * axes swapped hold as many floats and must be refused too */
    const int swapped[3] = {mi.n_layer, mi.head_dim, mi.n_head_kv}, fewer[3] = {mi.n_layer - 1, mi.n_head_kv, mi.head_dim};
    const int flat[2] = {mi.n_layer, dim};
    const struct { const int *shape; int ndim; } bad[] = {{swapped, 3}, {fewer, 3}, {flat, 2}, {NULL, 3}};
    char need[64];
    snprintf(need, sizeof need, "(%d, %d, %d)", mi.n_layer, mi.n_head_kv, mi.head_dim);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_null(kvs_steer_from_floats(tu_model(), KVS_STEER_CACHE, bad[i].shape, bad[i].ndim, k, v, &err));
        assert_int_equal(err.code, KVS_E_MISMATCH);
        assert_non_null(strstr(err.msg, need));
    }
    assert_non_null(strstr(err.msg, "(3 dimensions)"));
    kvs_steer_from_floats(tu_model(), KVS_STEER_CACHE, swapped, 3, k, v, &err);
    char have[64];
    snprintf(have, sizeof have, "(%d, %d, %d)", mi.n_layer, mi.head_dim, mi.n_head_kv);
    assert_non_null(strstr(err.msg, have));
    /* a value delta is needed; a NaN is named with its layer */
    assert_null(kvs_steer_from_floats(tu_model(), KVS_STEER_CACHE, shape, 3, k, NULL, &err));
    assert_int_equal(err.code, KVS_E_ARG);
    v[(size_t)3 * dim + 5] = NAN;
    assert_null(kvs_steer_from_floats(tu_model(), KVS_STEER_CACHE, shape, 3, k, v, &err));
    assert_int_equal(err.code, KVS_E_ARG);
    assert_non_null(strstr(err.msg, "value delta of layer 3"));

    /* activation vectors: written as a control vector and read back */
    float *act = tu_xmalloc(sizeof(float) * (size_t)mi.n_layer * mi.n_embd);
    uint64_t rng = 7;
    tu_rand_floats(&rng, act, mi.n_layer * mi.n_embd);
    const int ashape[2] = {mi.n_layer, mi.n_embd};
    assert_null(kvs_steer_from_floats(tu_model(), KVS_STEER_ACT, shape, 3, act, NULL, &err));
    assert_int_equal(err.code, KVS_E_MISMATCH);
    assert_null(kvs_steer_from_floats(tu_model(), KVS_STEER_ACT, ashape, 2, act, v, &err));
    assert_int_equal(err.code, KVS_E_ARG);
    kvs_steer *as = kvs_steer_from_floats(tu_model(), KVS_STEER_ACT, ashape, 2, act, NULL, &err);
    if (!as) fail_msg("%s", err.msg);
    assert_int_equal(kvs_steer_save_controlvector(as, a, 1, -1, &err), 0);
    assert_int_equal(kvs_steer_save(as, b, &err), 0);
    kvs_steer *cv = kvs_steer_load(a, tu_model(), &err), *kv = kvs_steer_load(b, tu_model(), &err);
    assert_non_null(cv);
    assert_non_null(kv);
    assert_int_equal(kvs_steer_get_format(cv), KVS_FORMAT_CONTROLVECTOR);
    assert_null(kvs_steer_vector(cv, 0, KVS_K));
    for (int l = 0; l < mi.n_layer; l++) {
        assert_memory_equal(kvs_steer_vector(kv, l, KVS_K), act + (size_t)l * mi.n_embd, sizeof(float) * mi.n_embd);
        if (l) assert_memory_equal(kvs_steer_vector(cv, l, KVS_K), act + (size_t)l * mi.n_embd, sizeof(float) * mi.n_embd);
    }
    kvs_steer_free(cv), kvs_steer_free(kv), kvs_steer_free(as);
    free(act), free(k), free(v);
    unlink(a);
    unlink(b);
}

/* Activation vectors: residual stream after each layer at the last token. */
static void test_act_extraction(void **state) {
    (void)state;
    kvs_model_info mi;
    kvs_model_get_info(tu_model(), &mi);
    kvs_extract_params xp = {KVS_STEER_ACT, 0, 0, 4, NULL, NULL};
    kvs_error err = {0};
    kvs_steer *s = kvs_steer_extract(tu_model(), k_pos, k_neg, 2, &xp, &err);
    if (!s) fail_msg("%s", err.msg);
    double *acc = calloc((size_t)mi.n_layer * mi.n_embd, sizeof(double));
    for (int i = 0; i < 2; i++)
        for (int side = 0; side < 2; side++) {
            int n;
            kvs_token *t = tok(side ? k_neg[i] : k_pos[i], &n);
            kvs_ctx *c = tu_ctx(tu_model(), 512, 1, 0);
            kvs_set_capture_residual(c, 1);
            int32_t *pos = malloc(sizeof(int32_t) * n), *sq = calloc(n, sizeof(int32_t));
            for (int k = 0; k < n; k++) pos[k] = k;
            kvs_batch b = {n, t, pos, sq, NULL};
            assert_int_equal(kvs_decode(c, &b, &err), 0);
            for (int l = 0; l < mi.n_layer; l++) {
                const float *r = kvs_get_residual(c, n - 1, l);
                for (int d = 0; d < mi.n_embd; d++) acc[(size_t)l * mi.n_embd + d] += (side ? -1.0 : 1.0) * r[d];
            }
            free(pos), free(sq), free(t);
            kvs_ctx_free(c);
        }
    for (int l = 0; l < mi.n_layer; l++) {
        const float *v = kvs_steer_vector(s, l, KVS_K);
        for (int d = 0; d < mi.n_embd; d++)
            assert_true(fabs(v[d] - acc[(size_t)l * mi.n_embd + d] / 2.0) <= 1e-4 * (1 + fabs(v[d])));
    }
    /* applying it at a layer changes generation; scale 0 does not */
    kvs_ctx *c = tu_ctx(tu_model(), 512, 1, 0);
    assert_int_equal(kvs_steer_apply_act(c, 0, s, 10, 0.0f, &err), 0);
    assert_int_not_equal(kvs_steer_apply_act(c, 0, s, mi.n_layer, 1.0f, &err), 0);
    kvs_ctx_free(c);
    free(acc);
    kvs_steer_free(s);
}


/* Writes a control vector with the given tensors (names, 1-D widths, value). */
static void write_cvec(const char *path, int n, const char *const *names, const int *width, int n_dims, float val) {
    gguf_writer *w = gguf_writer_new();
    gguf_writer_add_str(w, "general.architecture", "controlvector");
    gguf_writer_add_str(w, "controlvector.model_hint", "llama");
    gguf_writer_add_i32(w, "controlvector.layer_count", n);
    for (int i = 0; i < n; i++) {
        float *v = tu_xmalloc(sizeof(float) * (size_t)width[i]);
        for (int d = 0; d < width[i]; d++) v[d] = val * (float)(d % 7 - 3);
        uint64_t ne[2] = {n_dims == 2 ? (uint64_t)width[i] / 2 : (uint64_t)width[i], 2};
        gguf_writer_add_tensor_f32(w, names[i], n_dims, ne, v);
        free(v);
    }
    kvs_error err = {0};
    assert_int_equal(gguf_writer_save(w, path, &err), 0);
    gguf_writer_free(w);
}

static void logits_with(const kvs_steer *s, int layer, float scale, const float *const *manual, float *out) {
    kvs_model_info mi;
    kvs_model_get_info(tu_model(), &mi);
    int n;
    kvs_token *t = tok(k_pos[0], &n);
    kvs_ctx *c = tu_ctx(tu_model(), 512, 1, 0);
    kvs_error err = {0};
    if (s) assert_int_equal(kvs_steer_apply_act(c, 0, s, layer, scale, &err), 0);
    for (int l = 0; manual && l < mi.n_layer; l++)
        if (manual[l]) assert_int_equal(kvs_set_residual_add(c, 0, l, manual[l], scale, &err), 0);
    int32_t *pos = malloc(sizeof(int32_t) * n), *sq = calloc(n, sizeof(int32_t));
    for (int k = 0; k < n; k++) pos[k] = k;
    kvs_batch b = {n, t, pos, sq, NULL};
    assert_int_equal(kvs_decode(c, &b, &err), 0);
    memcpy(out, kvs_get_logits(c, n - 1), sizeof(float) * mi.n_vocab);
    free(pos), free(sq), free(t);
    kvs_ctx_free(c);
}

static void test_controlvector(void **state) {
    (void)state;
    kvs_model_info mi;
    kvs_model_get_info(tu_model(), &mi);
    char a[128], b[128];
    snprintf(a, sizeof a, "/tmp/kvs_cvec_a_%d.gguf", (int)getpid());
    snprintf(b, sizeof b, "/tmp/kvs_cvec_b_%d.gguf", (int)getpid());
    kvs_extract_params xp = {KVS_STEER_ACT, 0, 0, 4, NULL, NULL};
    kvs_error err = {0};
    kvs_steer *s = kvs_steer_extract(tu_model(), k_pos, k_neg, 2, &xp, &err);
    if (!s) fail_msg("%s", err.msg);
    assert_int_equal(kvs_steer_get_format(s), KVS_FORMAT_KVSTEER);
    kvs_steer_set_meta(s, "pairs", "2");
    /* layer 0 has no place in the format; a cache set is no control vector */
    assert_int_equal(kvs_steer_save_controlvector(s, a, 0, -1, &err), KVS_E_ARG);
    assert_int_equal(kvs_steer_save_controlvector(g_cache_vec, a, 1, -1, &err), KVS_E_ARG);
    assert_int_equal(access(a, F_OK), -1);

    /* all layers from 1: read back bit for bit, saved again byte for byte */
    assert_int_equal(kvs_steer_save_controlvector(s, a, 1, -1, &err), 0);
    kvs_steer *cv = kvs_steer_load(a, tu_model(), &err);
    if (!cv) fail_msg("%s", err.msg);
    assert_int_equal(kvs_steer_get_kind(cv), KVS_STEER_ACT);
    assert_int_equal(kvs_steer_get_format(cv), KVS_FORMAT_CONTROLVECTOR);
    assert_null(kvs_steer_vector(cv, 0, KVS_K));
    for (int l = 1; l < mi.n_layer; l++)
        assert_memory_equal(kvs_steer_vector(cv, l, KVS_K), kvs_steer_vector(s, l, KVS_K), sizeof(float) * mi.n_embd);
    assert_string_equal(kvs_steer_meta(cv, "kvsteer.extract.pairs"), "2");
    assert_string_equal(kvs_steer_meta(cv, "controlvector.model_hint"), mi.arch);
    assert_int_equal(kvs_steer_save(cv, b, &err), 0);
    size_t na, nb;
    char *fa = tu_read_file(a, &na), *fb = tu_read_file(b, &nb);
    assert_int_equal(na, nb);
    assert_memory_equal(fa, fb, na);
    free(fa), free(fb);

    /* layer -1 = every layer of the file at once, as llama.cpp adds them: the same
     * logits as one residual hook per layer 1.. after that layer's block */
    float *l_all = tu_xmalloc(sizeof(float) * mi.n_vocab), *l_man = tu_xmalloc(sizeof(float) * mi.n_vocab),
          *l_none = tu_xmalloc(sizeof(float) * mi.n_vocab);
    const float **manual = calloc((size_t)mi.n_layer, sizeof *manual);
    for (int l = 1; l < mi.n_layer; l++) manual[l] = kvs_steer_vector(s, l, KVS_K);
    logits_with(cv, -1, 0.25f, NULL, l_all);
    logits_with(NULL, 0, 0.25f, manual, l_man);
    logits_with(NULL, 0, 0.0f, NULL, l_none);
    assert_memory_equal(l_all, l_man, sizeof(float) * mi.n_vocab);
    float maxd = 0;
    for (int i = 0; i < mi.n_vocab; i++) maxd = fmaxf(maxd, fabsf(l_all[i] - l_none[i]));
    assert_true(maxd > 0.5f);
    /* one chosen layer: that layer only */
    memset(manual, 0, sizeof *manual * (size_t)mi.n_layer);
    manual[7] = kvs_steer_vector(s, 7, KVS_K);
    logits_with(cv, 7, 2.0f, NULL, l_all);
    logits_with(NULL, 0, 2.0f, manual, l_man);
    assert_memory_equal(l_all, l_man, sizeof(float) * mi.n_vocab);
    free(l_all), free(l_man), free(l_none), free(manual);
    kvs_steer_free(cv);

    /* a range writes only those layers; a layer the file lacks cannot be applied */
    assert_int_equal(kvs_steer_save_controlvector(s, a, 5, 6, &err), 0);
    cv = kvs_steer_load(a, tu_model(), &err);
    assert_non_null(cv);
    for (int l = 0; l < mi.n_layer; l++) assert_true((kvs_steer_vector(cv, l, KVS_K) != NULL) == (l == 5 || l == 6));
    kvs_ctx *c = tu_ctx(tu_model(), 64, 1, 0);
    assert_int_equal(kvs_steer_apply_act(c, 0, cv, 7, 1.0f, &err), KVS_E_ARG);
    kvs_ctx_free(c);
    kvs_steer_free(cv);
    kvs_steer_free(s);

    /* tensors naming one layer add up (llama.cpp's loader does the same) */
    const char *dup[2] = {"direction.3", "direction.03"};
    const int wd[2] = {mi.n_embd, mi.n_embd};
    write_cvec(a, 2, dup, wd, 1, 0.5f);
    cv = kvs_steer_load(a, tu_model(), &err);
    if (!cv) fail_msg("%s", err.msg);
    for (int d = 0; d < mi.n_embd; d++) assert_true(kvs_steer_vector(cv, 3, KVS_K)[d] == (float)(d % 7 - 3));
    kvs_steer_free(cv);

    /* refused, with the file named: another model's width or layers, malformed names or shapes */
    char last[32], beyond[32];
    snprintf(last, sizeof last, "direction.%d", mi.n_layer - 1);
    snprintf(beyond, sizeof beyond, "direction.%d", mi.n_layer);
    struct {
        const char *name;
        int width, n_dims, n;
        float val;
        int code;
    } bad[] = {{"direction.1", mi.n_embd + 1, 1, 1, 1.0f, KVS_E_MISMATCH}, {beyond, mi.n_embd, 1, 1, 1.0f, KVS_E_MISMATCH},
               {"direction.0", mi.n_embd, 1, 1, 1.0f, KVS_E_FORMAT},      {"steer.act.1", mi.n_embd, 1, 1, 1.0f, KVS_E_FORMAT},
               {"direction.1x", mi.n_embd, 1, 1, 1.0f, KVS_E_FORMAT},     {"direction.2", mi.n_embd, 2, 1, 1.0f, KVS_E_FORMAT},
               {"direction.2", mi.n_embd, 1, 0, 1.0f, KVS_E_FORMAT},      {"direction.2", mi.n_embd, 1, 1, NAN, KVS_E_FORMAT}};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        write_cvec(a, bad[i].n, &bad[i].name, &bad[i].width, bad[i].n_dims, bad[i].val);
        err = (kvs_error){0};
        assert_null(kvs_steer_load(a, tu_model(), &err));
        if (err.code != bad[i].code || !strstr(err.msg, a)) fail_msg("case %zu: %d %s", i, err.code, err.msg);
        assert_null(strchr(err.msg, '\n'));
    }
    write_cvec(a, 1, (const char *const[]){last}, wd, 1, 1.0f);
    cv = kvs_steer_load(a, tu_model(), &err);
    assert_non_null(cv);
    kvs_steer_free(cv);
    unlink(a);
    unlink(b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_extract_matches_brute_force),
        cmocka_unit_test(test_zero_coefficients_are_identical),
        cmocka_unit_test(test_only_target_entries_change),
        cmocka_unit_test(test_file_roundtrip_and_determinism),
        cmocka_unit_test(test_other_model_is_refused),
        cmocka_unit_test(test_from_floats),
        cmocka_unit_test(test_act_extraction),
        cmocka_unit_test(test_random_like),
        cmocka_unit_test(test_controlvector),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
