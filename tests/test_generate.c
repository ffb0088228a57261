/* Generation on the real model: a sensible chat answer, and batching or
 * holding back tokens never changes the greedy result. */
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

static char *detok(const kvs_token *t, int n) {
    char *s = malloc((size_t)n * 64 + 1);
    int len = 0;
    for (int i = 0; i < n; i++) {
        if (kvs_token_is_eog(tu_model(), t[i])) break;
        len += kvs_token_to_bytes(tu_model(), t[i], s + len, 64);
    }
    s[len] = 0;
    return s;
}

static kvs_ctx *new_ctx(int n_seq) {
    kvs_ctx_params p = kvs_ctx_default_params();
    p.n_ctx = 512;
    p.n_seq = n_seq;
    kvs_error err = {0};
    kvs_ctx *c = kvs_ctx_new(tu_model(), &p, &err);
    if (!c) fail_msg("%s", err.msg);
    return c;
}

static void test_capital_of_japan(void **state) {
    (void)state;
    int n;
    kvs_token *p = chat_tokens("What is the capital of Japan?", &n);
    kvs_ctx *c = new_ctx(1);
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
    kvs_ctx *c = new_ctx(1);
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
    c = new_ctx(4);
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
    kvs_ctx *c = new_ctx(1);
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
    assert_true(r.stop == 1 || r.stop == 2);
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
        cmocka_unit_test(test_batch_equals_single),
        cmocka_unit_test(test_hook_and_limits),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    tu_release();
    return rc;
}
