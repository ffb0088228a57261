/* Generation on the real model: a sensible chat answer, and batching or
 * holding back tokens never changes the greedy result. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

static kvs_token *chat_tokens(const char *question, int *n) {
    kvs_chat_msg msg = {"user", question};
    kvs_error err = {0};
    char *text = kvs_chat_render(tu_model(), &msg, 1, 1, NULL, &err);
    if (!text) fail_msg("chat: %s", err.msg);
    int cnt = kvs_tokenize(tu_model(), text, strlen(text), -1, 1, NULL, 0, &err);
    kvs_token *t = malloc(sizeof(kvs_token) * (cnt + 1));
    assert_int_equal(kvs_tokenize(tu_model(), text, strlen(text), -1, 1, t, cnt, &err), cnt);
    free(text);
    *n = cnt;
    return t;
}

/* An answer's text, up to its end-of-generation token. */
static char *detok(const kvs_token *t, int n) {
    int k = 0;
    while (k < n && !kvs_token_is_eog(tu_model(), t[k])) k++;
    kvs_error err = {0};
    char *s = kvs_detokenize(tu_model(), t, k, NULL, &err);
    if (!s) fail_msg("kvs_detokenize: %s", err.msg);
    return s;
}

/* kvs_tokenize_alloc gives kvs_tokenize's tokens in an array of their size
 * plus the spare entries asked for (ASan sees a write past them). */
static void test_tokenize_alloc(void **state) {
    (void)state;
    const kvs_model *m = tu_model();
    static char long_text[70000];
    for (size_t i = 0; i + 1 < sizeof long_text; i++) long_text[i] = "ab c\n\xc3\xa9" "d"[i % 8];
    const char *texts[] = {"", "Hello", "<|im_start|>user\nWhy?<|im_end|>", "   \t\n  spaces   ", long_text};
    for (size_t i = 0; i < sizeof texts / sizeof *texts; i++)
        for (int spare = 0; spare <= 2; spare++)
            for (int bos = -1; bos <= 1; bos++) {
                kvs_error err = {0};
                const size_t len = strlen(texts[i]);
                const int want = kvs_tokenize(m, texts[i], len, bos, 1, NULL, 0, &err);
                assert_true(want >= 0);
                int n = -1;
                kvs_token *t = kvs_tokenize_alloc(m, texts[i], len, bos, 1, spare, &n, &err);
                assert_non_null(t);
                assert_int_equal(n, want);
                kvs_token *ref = malloc(sizeof *ref * (size_t)(want + 1));
                assert_int_equal(kvs_tokenize(m, texts[i], len, bos, 1, ref, want, &err), want);
                if (want) assert_memory_equal(t, ref, sizeof *t * (size_t)want);
                for (int k = 0; k < spare; k++) t[n + k] = 7;
                free(ref);
                free(t);
            }
    kvs_error err = {0};
    int n = 0;
    assert_null(kvs_tokenize_alloc(m, "x", 1, -1, 1, -1, &n, &err));
    assert_int_equal(err.code, KVS_E_ARG);
}

/* kvs_detokenize gives the bytes of kvs_token_to_bytes one after another: the
 * text back for a byte-level vocabulary, whatever the length of its tokens. */
static void test_detokenize(void **state) {
    (void)state;
    const kvs_model *m = tu_model();
    char text[2048];
    int o = snprintf(text, sizeof text, "<|im_start|>user\ndef f(x):\n%40sreturn x  # h\xc3\xa9llo w\xc3\xb6rld "
                     "\xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x99\x82\n", "");
    for (int i = 0; i < 300; i++) text[o++] = '=';
    text[o] = 0;
    kvs_error err = {0};
    kvs_token t[1024];
    const int n = kvs_tokenize(m, text, strlen(text), 0, 1, t, 1024, &err);
    assert_true(n > 0 && n < 1024);
    assert_true((size_t)n * 8 + 1 < strlen(text)); /* the long tokens make the buffer grow */
    size_t len = 0;
    char *s = kvs_detokenize(m, t, n, &len, &err);
    assert_non_null(s);
    assert_int_equal(len, strlen(text));
    assert_string_equal(s, text);
    char one[256];
    size_t at = 0;
    for (int i = 0; i < n; i++) {
        const int k = kvs_token_to_bytes(m, t[i], one, sizeof one);
        assert_true(k > 0 && k <= (int)sizeof one);
        assert_memory_equal(s + at, one, (size_t)k);
        at += (size_t)k;
    }
    assert_int_equal(at, len);
    free(s);

    s = kvs_detokenize(m, t, 0, &len, &err); /* nothing: an empty text */
    assert_non_null(s);
    assert_int_equal(len, 0);
    assert_string_equal(s, "");
    free(s);

    kvs_model_info info;
    kvs_model_get_info(m, &info);
    t[3] = info.n_vocab; /* one past the vocabulary */
    memset(&err, 0, sizeof err);
    assert_null(kvs_detokenize(m, t, n, &len, &err));
    assert_int_equal(err.code, KVS_E_ARG);
    assert_non_null(strstr(err.msg, "token 3 of"));
}

static void test_capital_of_japan(void **state) {
    (void)state;
    int n;
    kvs_token *p = chat_tokens("What is the capital of Japan?", &n);
    kvs_ctx *c = tu_ctx(tu_model(), 512, 1, 0);
    kvs_token out[48];
    kvs_gen_request r = {0};
    r.prompt = p;
    r.n_prompt = n;
    r.max_new = 48;
    r.out = out;
    kvs_error err = {0};
    assert_int_equal(kvs_generate(c, &r, 1, 0, NULL, NULL, &err), 0);
    char *text = detok(out, r.n_out);
    if (!strstr(text, "Tokyo")) fail_msg("answer does not name Tokyo: %s", text);
    free(text);
    free(p);
    kvs_ctx_free(c);
}

/* Three prompts generated together equal each generated alone, and a prompt
 * whose last token is held back (the offset-token mechanism) generates the
 * same as one prefilled whole. */
static void test_batch_equals_single(void **state) {
    (void)state;
    const char *qs[3] = {"Name three primary colours.", "What is 12 times 7?", "Write a haiku about rain."};
    kvs_token *p[3];
    int n[3];
    for (int i = 0; i < 3; i++) p[i] = chat_tokens(qs[i], &n[i]);
    kvs_token single[3][24], batched[3][24];
    int ns[3];
    kvs_error err = {0};
    kvs_ctx *c = tu_ctx(tu_model(), 512, 1, 0);
    for (int i = 0; i < 3; i++) {
        kvs_gen_request r = {0};
        r.prompt = p[i];
        r.n_prompt = n[i];
        r.max_new = 24;
        r.out = single[i];
        assert_int_equal(kvs_generate(c, &r, 1, 0, NULL, NULL, &err), 0);
        ns[i] = r.n_out;
    }
    kvs_ctx_free(c);
    c = tu_ctx(tu_model(), 512, 4, 0);
    kvs_gen_request rs[3];
    memset(rs, 0, sizeof rs);
    for (int i = 0; i < 3; i++) {
        rs[i].prompt = p[i];
        rs[i].n_prompt = n[i];
        rs[i].n_hold = i; /* 0, 1 and 2 held tokens */
        rs[i].max_new = 24;
        rs[i].out = batched[i];
    }
    assert_int_equal(kvs_generate(c, rs, 3, 1, NULL, NULL, &err), 0);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(rs[i].n_out, ns[i]);
        assert_memory_equal(batched[i], single[i], sizeof(kvs_token) * ns[i]);
    }
    kvs_ctx_free(c);
    for (int i = 0; i < 3; i++) free(p[i]);
}

/* Continuous batching: five requests through two slots, each followed by an
 * appended suffix request in the same slot, give exactly what each gives alone;
 * every finished request is handed back once, and a refill error stops the call. */
#define N_STREAM 5
typedef struct stream_q {
    kvs_token *p[N_STREAM];
    int n[N_STREAM];
    kvs_token *suffix;
    int n_suffix;
    kvs_gen_request main_r[2], tail_r[2];
    int slot_q[2];
    int next_q;
    kvs_token out[N_STREAM][20], tail[N_STREAM][6];
    int n_out[N_STREAM], n_tail[N_STREAM], finished;
    double seconds;
    int fail_at; /* refill fails when this many requests have finished (-1 never) */
} stream_q;

static int stream_refill(void *user, int slot, kvs_gen_request *fin, kvs_gen_request **next, kvs_error *err) {
    stream_q *q = user;
    *next = NULL;
    if (fin) {
        q->finished++;
        q->seconds += fin->seconds;
        if (q->finished == q->fail_at) {
            err->code = KVS_E_ARG;
            snprintf(err->msg, sizeof err->msg, "refill says stop");
            return err->code;
        }
        const int qi = q->slot_q[slot];
        if (fin == &q->main_r[slot]) {
            q->n_out[qi] = fin->n_out;
            kvs_gen_request *t = &q->tail_r[slot];
            memset(t, 0, sizeof *t);
            t->prompt = q->suffix;
            t->n_prompt = q->n_suffix;
            t->max_new = 6;
            t->append = 1;
            t->out = q->tail[qi];
            *next = t;
            return 0;
        }
        q->n_tail[qi] = fin->n_out;
    }
    if (q->next_q >= N_STREAM) return 0;
    const int qi = q->slot_q[slot] = q->next_q++;
    kvs_gen_request *r = &q->main_r[slot];
    memset(r, 0, sizeof *r);
    r->prompt = q->p[qi];
    r->n_prompt = q->n[qi];
    r->n_hold = qi % 2;
    r->max_new = 8 + 3 * qi; /* different lengths: slots free up at different steps */
    r->out = q->out[qi];
    *next = r;
    return 0;
}

static void test_stream_equals_single(void **state) {
    (void)state;
    const char *qs[N_STREAM] = {"Name three primary colours.", "What is 12 times 7?", "Write a haiku about rain.",
                                "Why is the sky blue?", "Say hello."};
    static stream_q q;
    memset(&q, 0, sizeof q);
    q.fail_at = -1;
    for (int i = 0; i < N_STREAM; i++) q.p[i] = chat_tokens(qs[i], &q.n[i]);
    kvs_error err = {0};
    const char *sfx = "\nSo the answer is";
    q.n_suffix = kvs_tokenize(tu_model(), sfx, strlen(sfx), 0, 0, NULL, 0, &err);
    assert_true(q.n_suffix > 0);
    q.suffix = malloc(sizeof(kvs_token) * (size_t)q.n_suffix);
    assert_int_equal(kvs_tokenize(tu_model(), sfx, strlen(sfx), 0, 0, q.suffix, q.n_suffix, &err), q.n_suffix);
    kvs_ctx *c = tu_ctx(tu_model(), 512, 3, 0);
    assert_int_equal(kvs_generate_stream(c, 2, 1, stream_refill, &q, NULL, NULL, &err), 0);
    assert_int_equal(q.finished, 2 * N_STREAM);
    assert_true(q.seconds > 0);
    kvs_ctx_free(c);

    c = tu_ctx(tu_model(), 512, 1, 0);
    for (int i = 0; i < N_STREAM; i++) {
        kvs_token out[20], tail[6];
        kvs_gen_request r = {0};
        r.prompt = q.p[i];
        r.n_prompt = q.n[i];
        r.max_new = 8 + 3 * i;
        r.out = out;
        assert_int_equal(kvs_generate(c, &r, 1, 0, NULL, NULL, &err), 0);
        assert_int_equal(r.n_out, q.n_out[i]);
        assert_memory_equal(out, q.out[i], sizeof(kvs_token) * (size_t)r.n_out);
        kvs_gen_request t = {0};
        t.prompt = q.suffix;
        t.n_prompt = q.n_suffix;
        t.max_new = 6;
        t.append = 1;
        t.out = tail;
        assert_int_equal(kvs_generate(c, &t, 1, 0, NULL, NULL, &err), 0);
        assert_int_equal(t.n_out, q.n_tail[i]);
        assert_memory_equal(tail, q.tail[i], sizeof(kvs_token) * (size_t)t.n_out);
    }
    kvs_ctx_free(c);

    /* an error from refill ends the call with that error */
    c = tu_ctx(tu_model(), 512, 2, 0);
    memset(q.n_out, 0, sizeof q.n_out);
    q.next_q = q.finished = 0;
    q.fail_at = 3;
    assert_int_not_equal(kvs_generate_stream(c, 2, 0, stream_refill, &q, NULL, NULL, &err), 0);
    assert_string_equal(err.msg, "refill says stop");
    assert_int_not_equal(kvs_generate_stream(c, 3, 0, stream_refill, &q, NULL, NULL, &err), 0); /* 3 slots of 2 */
    kvs_ctx_free(c);
    for (int i = 0; i < N_STREAM; i++) free(q.p[i]);
    free(q.suffix);
}

/* kvs_generate_loop: requests that arrive while others decode (here: one
 * every few steps, as a server's clients would) join idle slots at the next
 * step, and each gets the tokens it gets alone. */
#define N_LOOP 4
typedef struct loop_q {
    kvs_gen_request r[N_LOOP];
    kvs_token out[N_LOOP][24];
    int released;   /* requests made available so far */
    int handed;     /* requests handed to a slot */
    int steps;      /* tokens seen, a clock for arrivals */
    int finished, waits;
} loop_q;

static int loop_refill(void *user, int slot, kvs_gen_request *fin, kvs_gen_request **next, kvs_error *err) {
    loop_q *q = user;
    (void)slot, (void)err;
    if (fin) q->finished++;
    *next = q->handed < q->released ? &q->r[q->handed++] : NULL;
    return 0;
}

static int loop_token(int slot, kvs_token t, void *user) {
    loop_q *q = user;
    (void)slot, (void)t;
    /* a new request arrives every 5 generated tokens */
    if (++q->steps % 5 == 0 && q->released < N_LOOP) q->released++;
    return 0;
}

static int loop_wait(void *user) {
    loop_q *q = user;
    q->waits++;
    /* nothing runs: release the next request, or end when all are done */
    if (q->released < N_LOOP) {
        q->released++;
        return 0;
    }
    return 1;
}

/* The sampler of request i: greedy with a repetition penalty when `penalty`
 * (for the last two, min-p sampling with a seed of their own), else none. */
static kvs_sampler *loop_sampler(int penalty, int i) {
    if (!penalty) return NULL;
    kvs_sampler_params sp = kvs_sampler_default_params();
    sp.repeat_penalty = 1.5f;
    sp.repeat_last_n = i == 0 ? -1 : 16;
    if (i >= 2) {
        sp.temperature = 0.8f;
        sp.min_p = 0.1f;
        sp.seed = (uint64_t)i;
    }
    kvs_error err = {0};
    kvs_sampler *s = kvs_sampler_new(&sp, &err);
    if (!s) fail_msg("%s", err.msg);
    return s;
}

/* penalty: every request has a sampler with a repetition penalty, whose window
 * is its own sequence's tokens, so the loop still equals solo generation (and
 * a greedy request's sampler used again gives the same: a new request resets
 * its window).  The loop's outputs are left in out / n_out. */
static void loop_equals_single(int penalty, kvs_token out[N_LOOP][24], int n_out[N_LOOP]) {
    const char *qs[N_LOOP] = {"Name three primary colours.", "What is 12 times 7?", "Why is the sky blue?",
                              "Say hello."};
    static loop_q q;
    memset(&q, 0, sizeof q);
    kvs_token *p[N_LOOP];
    kvs_sampler *smp[N_LOOP];
    int n[N_LOOP];
    kvs_ctx *c = tu_ctx(tu_model(), 512, 2, 0);
    kvs_error err = {0};
    for (int i = 0; i < N_LOOP; i++) {
        p[i] = chat_tokens(qs[i], &n[i]);
        smp[i] = loop_sampler(penalty, i);
        q.r[i] = (kvs_gen_request){.prompt = p[i], .n_prompt = n[i], .max_new = 24, .out = q.out[i], .sampler = smp[i]};
    }
    q.released = 1;
    kvs_gen_loop loop = {loop_refill, &q, loop_token, &q, loop_wait, &q};
    assert_int_equal(kvs_generate_loop(c, 2, 0, &loop, &err), 0);
    assert_int_equal(q.finished, N_LOOP);
    assert_true(q.waits >= 1);
    for (int i = 0; i < N_LOOP; i++) {
        kvs_token solo[24];
        kvs_sampler_free(smp[i]);
        smp[i] = loop_sampler(penalty, i); /* the same random stream from its start */
        kvs_gen_request r = {.prompt = p[i], .n_prompt = n[i], .max_new = 24, .out = solo, .sampler = smp[i]};
        assert_int_equal(kvs_generate(c, &r, 1, 0, NULL, NULL, &err), 0);
        assert_int_equal(r.n_out, q.r[i].n_out);
        assert_memory_equal(solo, q.out[i], sizeof(kvs_token) * (size_t)r.n_out);
        if (penalty && i < 2) {
            r.out = solo;
            assert_int_equal(kvs_generate(c, &r, 1, 0, NULL, NULL, &err), 0);
            assert_int_equal(r.n_out, q.r[i].n_out);
            assert_memory_equal(solo, q.out[i], sizeof(kvs_token) * (size_t)r.n_out);
        }
        memcpy(out[i], q.out[i], sizeof q.out[i]);
        n_out[i] = q.r[i].n_out;
        kvs_sampler_free(smp[i]);
        free(p[i]);
    }
    if (!penalty) {
        /* a loop needs its wait function */
        loop.wait = NULL;
        assert_int_not_equal(kvs_generate_loop(c, 2, 0, &loop, &err), 0);
    }
    kvs_ctx_free(c);
}

static void test_loop_equals_single(void **state) {
    (void)state;
    static kvs_token plain[N_LOOP][24], pen[N_LOOP][24];
    int n_plain[N_LOOP], n_pen[N_LOOP];
    loop_equals_single(0, plain, n_plain);
    loop_equals_single(1, pen, n_pen);
    /* the penalty changed greedy answers (a check that it was applied at all) */
    int differ = 0;
    for (int i = 0; i < 2; i++)
        differ += n_plain[i] != n_pen[i] || memcmp(plain[i], pen[i], sizeof(kvs_token) * (size_t)n_pen[i]);
    assert_true(differ > 0);
}

static int saw_prefill_pos = -1;
static int on_prefilled(kvs_ctx *c, int seq, int last_pos, void *user, kvs_error *err) {
    (void)c, (void)seq, (void)user, (void)err;
    saw_prefill_pos = last_pos;
    return 0;
}

static void test_hook_and_limits(void **state) {
    (void)state;
    int n;
    kvs_token *p = chat_tokens("Say hello.", &n);
    kvs_ctx *c = tu_ctx(tu_model(), 512, 1, 0);
    kvs_token out[4];
    kvs_gen_request r = {0};
    r.prompt = p;
    r.n_prompt = n;
    r.n_hold = 1;
    r.max_new = 4;
    r.out = out;
    r.on_prefilled = on_prefilled;
    kvs_error err = {0};
    assert_int_equal(kvs_generate(c, &r, 1, 0, NULL, NULL, &err), 0);
    assert_int_equal(saw_prefill_pos, n - 2);
    assert_true(r.n_out <= 4);
    assert_true(r.stop == KVS_STOP_EOG || r.stop == KVS_STOP_MAX_NEW);
    /* malformed requests */
    r.n_hold = n;
    assert_int_not_equal(kvs_generate(c, &r, 1, 0, NULL, NULL, &err), 0);
    r.n_hold = 0;
    assert_int_not_equal(kvs_generate(c, &r, 1, 1, NULL, NULL, &err), 0); /* seq 1 of 1 */
    free(p);
    kvs_ctx_free(c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_capital_of_japan),
        cmocka_unit_test(test_detokenize),
        cmocka_unit_test(test_tokenize_alloc),
        cmocka_unit_test(test_stream_equals_single),
        cmocka_unit_test(test_loop_equals_single),
        cmocka_unit_test(test_batch_equals_single),
        cmocka_unit_test(test_hook_and_limits),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    tu_release();
    return rc;
}
