/* JSONL question sets and contrastive pairs: exact rendering, selection rules,
 * and every malformed input named with its file and line. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dataset.h"
#include "embcache.h"
#include "embed.h"
#include "pairs.h"
#include "testutil.h"

#define DEMO KVS_SOURCE_DIR "/data/demo/demo_traces.jsonl"

static void expect_parse_error(const char *text, int need_steps, const char *needle) {
    qa_set s;
    kvs_error err = {0};
    assert_int_not_equal(qa_parse(text, strlen(text), "t.jsonl", need_steps, &s, &err), 0);
    if (!strstr(err.msg, needle)) fail_msg("error '%s' lacks '%s'", err.msg, needle);
    assert_non_null(strstr(err.msg, "t.jsonl"));
}

static void test_parse_errors(void **state) {
    (void)state;
    expect_parse_error("", 0, "empty");
    expect_parse_error("\n\n  \n", 0, "empty");
    expect_parse_error("{\"question\": \"q\", \"answer\": \"A\"}\n{broken\n", 0, "t.jsonl:2: invalid JSON");
    expect_parse_error("[1,2]\n", 0, ":1: not a JSON object");
    expect_parse_error("{\"answer\": \"A\"}\n", 0, "'question'");
    expect_parse_error("{\"question\": \"q\"}\n", 0, "'answer'");
    expect_parse_error("{\"question\": \"q\", \"answer\": \"A\", \"choices\": [{\"label\": \"A\"}]}\n", 0, "choices");
    expect_parse_error("{\"question\": \"q\", \"answer\": \"A\", \"choices\": [{\"label\": \"A\", \"text\": 1}, {\"label\": \"B\", \"text\": \"b\"}]}\n", 0, "label");
    expect_parse_error("{\"question\": \"q\", \"answer\": \"A\"}\n", 1, "steps");
    expect_parse_error("{\"question\": \"q\", \"answer\": \"A\", \"steps\": [1]}\n", 1, "steps");
    {   /* an empty steps list parses: the row is kept, unusable as a pair */
        const char *t = "{\"question\": \"q\", \"answer\": \"A\", \"steps\": []}\n";
        qa_set e;
        kvs_error err = {0};
        assert_int_equal(qa_parse(t, strlen(t), "t.jsonl", 1, &e, &err), 0);
        assert_int_equal(e.n, 1);
        assert_int_equal(e.rows[0].n_steps, 0);
        qa_free(&e);
    }
    expect_parse_error("{\"question\": \"q\", \"answer\": \"A\"}\n\n\n{\"question\": 5, \"answer\": \"A\"}", 0, ":4:");
}

static void test_parse_and_render(void **state) {
    (void)state;
    const char *text =
        "{\"source_id\": 7, \"question\": \"Pick one.\", \"choices\": [{\"label\": \"A\", \"text\": \"x\"}, "
        "{\"label\": \"B\", \"text\": \"y\"}], \"steps\": [\"s1.\", \"s2.\"], \"answer\": \"B\"}\r\n"
        "{\"id\": \"g-1\", \"question\": \"How many?\", \"answer\": 42}\n";
    qa_set s;
    kvs_error err = {0};
    assert_int_equal(qa_parse(text, strlen(text), "t.jsonl", 0, &s, &err), 0);
    assert_int_equal(s.n, 2);
    assert_string_equal(s.rows[0].id, "7");
    assert_string_equal(s.rows[1].id, "g-1");
    assert_string_equal(s.rows[1].answer, "42");
    char *q = qa_render_question(&s.rows[0], "\n\nChoices:");
    assert_string_equal(q, "Pick one.\n\nChoices:\nA: x\nB: y");
    free(q);
    q = qa_render_question(&s.rows[1], "\n\nChoices:");
    assert_string_equal(q, "How many?");
    free(q);
    char *j = qa_join_steps(&s.rows[0]);
    assert_string_equal(j, "s1. s2.");
    free(j);
    qa_free(&s);
}

/* Trace row `row` is neither a pair's question nor any pair's shot. */
static void assert_row_unused(const pair_set *p, int row) {
    for (int i = 0; i < p->n; i++) {
        assert_int_not_equal(p->target[i], row);
        for (int k = 0; k < p->n_shots; k++) assert_int_not_equal(p->shots[i][k], row);
    }
}

static void test_pairs_on_demo(void **state) {
    (void)state;
    qa_set tr;
    kvs_error err = {0};
    if (qa_load(DEMO, 1, &tr, &err)) fail_msg("%s", err.msg);
    pair_opts o = {0};
    o.n_pairs = 4;
    o.n_shots = 2;
    o.select = SELECT_RANDOM;
    o.seed = 3;
    pair_set p;
    assert_int_equal(pairs_build(tu_model(), &tr, &o, &p, &err), 0);
    assert_int_equal(p.n, 4);
    for (int i = 0; i < p.n; i++) {
        assert_int_equal(p.target[i], i);
        for (int k = 0; k < 2; k++) assert_int_not_equal(p.shots[i][k], i);
        assert_int_not_equal(p.shots[i][0], p.shots[i][1]);
        /* same transcript but for the example answers */
        const qa_row *ex = &tr.rows[p.shots[i][0]];
        char *steps = qa_join_steps(ex), want_pos[2048], want_neg[256];
        snprintf(want_pos, sizeof want_pos, "<|im_start|>assistant\n%s The answer is %s.<|im_end|>", steps, ex->answer);
        snprintf(want_neg, sizeof want_neg, "<|im_start|>assistant\nThe answer is %s.<|im_end|>", ex->answer);
        assert_non_null(strstr(p.pos[i], want_pos));
        assert_non_null(strstr(p.neg[i], want_neg));
        assert_null(strstr(p.neg[i], steps));
        free(steps);
        const char *tail = "<|im_start|>assistant\n";
        assert_string_equal(p.pos[i] + strlen(p.pos[i]) - strlen(tail), tail);
        assert_string_equal(p.neg[i] + strlen(p.neg[i]) - strlen(tail), tail);
    }
    /* the same seed gives the same shots; similar selection never picks the target */
    pair_set p2;
    assert_int_equal(pairs_build(tu_model(), &tr, &o, &p2, &err), 0);
    for (int i = 0; i < p.n; i++) assert_memory_equal(p.shots[i], p2.shots[i], sizeof(int) * 2);
    pairs_free(&p2);
    o.select = SELECT_SIMILAR;
    o.prefix = "Let's think step by step.";
    assert_int_equal(pairs_build(tu_model(), &tr, &o, &p2, &err), 0);
    for (int i = 0; i < p2.n; i++) {
        for (int k = 0; k < 2; k++) assert_int_not_equal(p2.shots[i][k], i);
        assert_non_null(strstr(p2.pos[i], "<|im_start|>assistant\nLet's think step by step."));
    }
    pairs_free(&p2);
    pairs_free(&p);

    /* impossible requests */
    o.n_pairs = tr.n + 1;
    assert_int_not_equal(pairs_build(tu_model(), &tr, &o, &p, &err), 0);
    assert_non_null(strstr(err.msg, "pairs requested"));
    o.n_pairs = 2;
    o.n_shots = tr.n;
    assert_int_not_equal(pairs_build(tu_model(), &tr, &o, &p, &err), 0);
    assert_non_null(strstr(err.msg, "shots requested"));

    /* excluded questions are skipped as targets and as shots */
    qa_set ex;
    const char *first = "{\"question\": \"A baker puts 4 trays in the oven and each tray holds 6 rolls. How many rolls does she bake?\", \"answer\": \"24\"}\n";
    assert_int_equal(qa_parse(first, strlen(first), "ex.jsonl", 0, &ex, &err), 0);
    o.n_shots = 3;
    o.select = SELECT_RANDOM;
    o.exclude = &ex;
    o.n_exclude = 1;
    o.n_pairs = tr.n - 1;
    assert_int_equal(pairs_build(tu_model(), &tr, &o, &p, &err), 0);
    assert_row_unused(&p, 0);
    pairs_free(&p);
    qa_free(&ex);

    /* a row whose steps list is empty (the teacher gave no reasoning) is neither a
     * pair nor a shot, and the error for too many pairs counts it */
    const int saved = tr.rows[1].n_steps;
    tr.rows[1].n_steps = 0;
    o.exclude = NULL;
    o.n_pairs = tr.n - 1;
    assert_int_equal(pairs_build(tu_model(), &tr, &o, &p, &err), 0);
    assert_row_unused(&p, 1);
    pairs_free(&p);
    o.n_pairs = tr.n;
    assert_int_not_equal(pairs_build(tu_model(), &tr, &o, &p, &err), 0);
    assert_non_null(strstr(err.msg, "1 without steps"));
    tr.rows[1].n_steps = saved;
    qa_free(&tr);
}

/* The questions of a task's pairs are rendered as that task's evaluation prompts
 * (CSQA's have no "Choices:" header, ARC's have one), target and shots alike,
 * and the trace file's name finds its task. */
static void test_pairs_task_format(void **state) {
    (void)state;
    static const char *const names[] = {"csqa", "arc"};
    for (int t = 0; t < 2; t++) {
        const eval_task *task = eval_task_find(names[t]);
        char path[4200];
        snprintf(path, sizeof path, "%s/traces/%s", tu_data_path(), task->trace_file);
        assert_ptr_equal(eval_task_for_traces(path), task);
        qa_set tr;
        kvs_error err = {0};
        if (qa_load(path, 1, &tr, &err)) fail_msg("%s", err.msg);
        pair_opts o = {0};
        o.n_pairs = 2;
        o.n_shots = 2;
        o.select = SELECT_RANDOM;
        o.task = task;
        pair_set p;
        assert_int_equal(pairs_build(tu_model(), &tr, &o, &p, &err), 0);
        for (int i = 0; i < p.n; i++) {
            const int rows[3] = {p.target[i], p.shots[i][0], p.shots[i][1]};
            for (int k = 0; k < 3; k++) {
                char *q = eval_render_question(task, &tr.rows[rows[k]]);
                char user[8192];
                snprintf(user, sizeof user, "<|im_start|>user\n%s<|im_end|>", q);
                if (!strstr(p.pos[i], user) || !strstr(p.neg[i], user))
                    fail_msg("%s pair %d: the question of row %d is not rendered as its evaluation prompt", names[t], i, rows[k]);
                free(q);
            }
            assert_true((strstr(p.pos[i], "\n\nChoices:") != NULL) == (t == 1));
        }
        pairs_free(&p);
        qa_free(&tr);
    }
    assert_null(eval_task_for_traces(DEMO));
}

/* The cache file format: what is written reads back bit for bit, and every
 * truncation, every single flipped byte, a trailing byte, another key or shape
 * is refused without touching the caller's arrays. */
static void test_embcache_file(void **state) {
    (void)state;
    enum { ROWS = 5, DIM = 3 };
    char dir[] = "/tmp/kvs-embcache-XXXXXX", path[4200], key[] = "model 1; traces 2; recipe r; kernels k; dim 3";
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/sub/e.bin", dir); /* the folder is created */
    float emb[ROWS * DIM], got[ROWS * DIM];
    uint64_t rs = 7;
    tu_rand_floats(&rs, emb, ROWS * DIM);
    const uint8_t have[ROWS] = {1, 0, 1, 1, 0};
    kvs_error err = {0};
    assert_int_equal(embcache_write(path, key, ROWS, DIM, emb, have, &err), 0);
    uint8_t h[ROWS] = {0};
    for (int i = 0; i < ROWS * DIM; i++) got[i] = -1.0f;
    assert_int_equal(embcache_read(path, key, ROWS, DIM, got, h, &err), 0);
    for (int r = 0; r < ROWS; r++) {
        assert_int_equal(h[r], have[r]);
        for (int d = 0; d < DIM; d++)
            if (have[r]) assert_memory_equal(&got[r * DIM + d], &emb[r * DIM + d], sizeof(float));
            else assert_true(got[r * DIM + d] == -1.0f);
    }
    assert_int_equal(embcache_read(path, "model 1; traces 3; recipe r; kernels k; dim 3", ROWS, DIM, got, h, &err),
                     KVS_E_MISMATCH);
    assert_non_null(strstr(err.msg, "made for other inputs"));
    assert_int_equal(embcache_read(path, key, ROWS + 1, DIM, got, h, &err), KVS_E_MISMATCH);
    assert_int_equal(embcache_read(path, key, ROWS, DIM + 1, got, h, &err), KVS_E_MISMATCH);

    size_t len;
    char *good = tu_read_file(path, &len);
    char *bad = tu_xmalloc(len + 1);
    float untouched[ROWS * DIM];
    for (int i = 0; i < ROWS * DIM; i++) untouched[i] = -2.0f;
    /* 2 * len + 1 damaged files: each truncation, each flipped byte, one byte more */
    for (size_t k = 0; k < 2 * len + 1; k++) {
        size_t n = len;
        memcpy(bad, good, len);
        if (k < len) n = k;
        else if (k < 2 * len) bad[k - len] ^= 0x5a;
        else bad[n++] = 0;
        FILE *f = fopen(path, "wb");
        assert_non_null(f);
        assert_int_equal(fwrite(bad, 1, n, f), n);
        fclose(f);
        memcpy(got, untouched, sizeof got);
        memset(h, 0, sizeof h);
        err.msg[0] = 0;
        if (embcache_read(path, key, ROWS, DIM, got, h, &err) == 0) fail_msg("damaged file %zu accepted", k);
        assert_true(err.msg[0] != 0 && strstr(err.msg, path) == err.msg);
        assert_memory_equal(got, untouched, sizeof got);
        for (int r = 0; r < ROWS; r++) assert_int_equal(h[r], 0);
    }
    free(bad);
    free(good);
    unlink(path);
    snprintf(path, sizeof path, "%s/sub", dir);
    rmdir(path);
    rmdir(dir);

    /* the key follows the kernel set and the inputs' contents */
    char k1[4096], k2[4096], k3[4096];
    const char *model = tu_model_path();
    assert_int_equal(embcache_key(model, DEMO, 576, k1, sizeof k1, &err), 0);
    assert_int_equal(kvs_kernels_use("scalar"), 0);
    assert_int_equal(embcache_key(model, DEMO, 576, k2, sizeof k2, &err), 0);
    assert_int_equal(kvs_kernels_use(NULL), 0);
    char other[4200];
    snprintf(other, sizeof other, "%s/traces/arc_challenge.jsonl", tu_data_path());
    assert_int_equal(embcache_key(model, other, 576, k3, sizeof k3, &err), 0);
    assert_string_not_equal(k1, k2);
    assert_string_not_equal(k1, k3);
    assert_non_null(strstr(k2, "kernels scalar"));
    assert_non_null(strstr(k1, EMBED_RECIPE));
    assert_int_not_equal(embcache_key("/nonexistent.gguf", DEMO, 576, k1, sizeof k1, &err), 0);
}

/* What the cache relies on: a text's embedding is bit-identical whether it is
 * embedded alone or with others, and whatever the thread count. */
static void test_embed_independent(void **state) {
    (void)state;
    qa_set tr;
    kvs_error err = {0};
    if (qa_load(DEMO, 1, &tr, &err)) fail_msg("%s", err.msg);
    enum { N = 5 };
    const char *texts[N];
    for (int i = 0; i < N; i++) texts[i] = tr.rows[i].question;
    kvs_model_info mi;
    kvs_model_get_info(tu_model(), &mi);
    float *all = tu_xmalloc(sizeof(float) * N * (size_t)mi.n_embd), *one = tu_xmalloc(sizeof(float) * (size_t)mi.n_embd);
    assert_int_equal(embed_texts(tu_model(), texts, N, 1, all, NULL, NULL, &err), 0);
    for (int i = 0; i < N; i++) {
        assert_int_equal(embed_texts(tu_model(), &texts[i], 1, 2, one, NULL, NULL, &err), 0);
        assert_memory_equal(one, all + (size_t)i * mi.n_embd, sizeof(float) * (size_t)mi.n_embd);
    }
    free(all);
    free(one);
    qa_free(&tr);
}

/* pairs_build through the cache: absent, then a hit, the same pairs both times. */
static void test_pairs_cache(void **state) {
    (void)state;
    char dir[] = "/tmp/kvs-embcache-XXXXXX";
    assert_non_null(mkdtemp(dir));
    qa_set tr;
    kvs_error err = {0};
    if (qa_load(DEMO, 1, &tr, &err)) fail_msg("%s", err.msg);
    pair_set p[2];
    embcache_outcome co;
    for (int run = 0; run < 2; run++) {
        pair_opts o = {.n_pairs = 3, .n_shots = 2, .select = SELECT_SIMILAR, .embed_cache = dir,
                       .model_path = tu_model_path(), .cache_out = &co};
        assert_int_equal(pairs_build(tu_model(), &tr, &o, &p[run], &err), 0);
        assert_int_equal(co.state, run ? EMBCACHE_HIT : EMBCACHE_MISS);
        assert_int_equal(co.absent, !run);
        assert_int_equal(co.n_cached, run ? tr.n : 0);
        assert_string_equal(co.why, "");
        assert_string_equal(co.warning, "");
    }
    for (int i = 0; i < 3; i++) {
        assert_int_equal(p[0].target[i], p[1].target[i]);
        assert_memory_equal(p[0].shots[i], p[1].shots[i], 2 * sizeof(int));
        assert_string_equal(p[0].pos[i], p[1].pos[i]);
    }
    pair_opts o = {.n_pairs = 3, .n_shots = 2, .select = SELECT_SIMILAR, .embed_cache = dir};
    pair_set q;
    assert_int_equal(pairs_build(tu_model(), &tr, &o, &q, &err), KVS_E_ARG); /* no model path for the key */
    unlink(co.path);
    rmdir(dir);
    pairs_free(&p[0]);
    pairs_free(&p[1]);
    qa_free(&tr);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_parse_and_render),
        cmocka_unit_test(test_pairs_on_demo),
        cmocka_unit_test(test_pairs_task_format),
        cmocka_unit_test(test_embcache_file),
        cmocka_unit_test(test_embed_independent),
        cmocka_unit_test(test_pairs_cache),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    tu_release();
    return rc;
}
