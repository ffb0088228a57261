/* The server's pure parts: the text of an answer as tokens arrive (stop
 * strings across token boundaries, never half a UTF-8 character, invalid
 * bytes made valid for JSON) and the request parser (defaults, every field,
 * errors naming the field).  The HTTP end is tests/server_api.py. */
#include <stdlib.h>
#include <string.h>

#include "engine/utf8.h"
#include "server/request.h"
#include "server/textout.h"
#include "testutil.h"

static void test_stop_across_tokens(void **state) {
    (void)state;
    char *stop[] = {"o w", "zz"};
    textout t = {0};
    assert_int_equal(textout_add(&t, "Hel", 3, stop, 2), 0);
    assert_int_equal(t.ready, 3);
    assert_int_equal(textout_add(&t, "lo ", 3, stop, 2), 0);
    assert_int_equal(t.ready, 4); /* "o " may begin "o w": held back */
    assert_int_equal(textout_add(&t, "world", 5, stop, 2), 1);
    assert_string_equal(t.s.p, "Hell");
    assert_true(t.stopped);
    assert_int_equal(t.ready, 4);
    assert_int_equal(textout_add(&t, "more", 4, stop, 2), 1); /* nothing after a stop */
    assert_string_equal(t.s.p, "Hell");
    textout_free(&t);
    /* a held-back tail that turns out not to be a stop string is released */
    assert_int_equal(textout_add(&t, "az", 2, stop, 2), 0);
    assert_int_equal(t.ready, 1);
    assert_int_equal(textout_add(&t, "a", 1, stop, 2), 0);
    assert_int_equal(t.ready, 3);
    textout_free(&t);
}

static void test_utf8_held_until_complete(void **state) {
    (void)state;
    textout t = {0};
    assert_int_equal(textout_add(&t, "a\xE2\x82", 3, NULL, 0), 0);
    assert_int_equal(t.ready, 1); /* the euro sign is not complete yet */
    assert_int_equal(textout_add(&t, "\xAC", 1, NULL, 0), 0);
    assert_int_equal(t.ready, 4);
    assert_int_equal(textout_add(&t, "\xF0\x9F", 2, NULL, 0), 0);
    assert_int_equal(t.ready, 4);
    textout_finish(&t); /* the end: all of it goes, cleaned on the way out */
    assert_int_equal(t.ready, 6);
    char *c = utf8_clean(t.s.p, t.s.n);
    assert_string_equal(c, "a\xE2\x82\xAC\xEF\xBF\xBD\xEF\xBF\xBD");
    free(c);
    textout_free(&t);
}

static const request_limits k_lim = {30, 1000, 8, 4096};

static int parse(const char *body, int chat, request *r, api_error *e) {
    static vec_entry ent[1] = {{"gone", "gone.gguf", NULL, "made for another model"}};
    static vec_registry vr = {ent, 1};
    return request_parse(body, strlen(body), chat, &vr, &k_lim, r, e);
}

static void test_request_defaults_and_fields(void **state) {
    (void)state;
    request r;
    api_error e;
    assert_int_equal(parse("{\"messages\":[{\"role\":\"developer\",\"content\":\"be brief\"},"
                           "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"a\"},"
                           "{\"type\":\"text\",\"text\":\"b\"}]}]}",
                           1, &r, &e),
                     0);
    assert_int_equal(r.n_msgs, 2);
    assert_string_equal(r.msgs[0].role, "system");
    assert_string_equal(r.msgs[1].content, "ab");
    assert_int_equal(r.max_tokens, -1);
    assert_true(r.sampling.temperature == 1.0f && r.sampling.top_p == 1.0f && r.sampling.top_k == 0);
    assert_false(r.seed_given);
    assert_null(r.offset);
    assert_int_equal(r.n_kv, 0);
    request_free(&r);
    assert_int_equal(parse("{\"prompt\":[\"once\"],\"max_tokens\":5,\"temperature\":0.5,\"top_p\":0.9,"
                           "\"top_k\":7,\"seed\":42,\"stop\":[\"x\",\"yy\"],\"stream\":true,"
                           "\"stream_options\":{\"include_usage\":true},\"kv_steering\":{\"offset\":\" \"}}",
                           0, &r, &e),
                     0);
    assert_string_equal(r.prompt, "once");
    assert_int_equal(r.max_tokens, 5);
    assert_true(r.sampling.top_k == 7 && r.seed_given && r.sampling.seed == 42);
    assert_int_equal(r.n_stop, 2);
    assert_string_equal(r.stop[1], "yy");
    assert_true(r.stream && r.include_usage);
    assert_string_equal(r.offset, " ");
    request_free(&r);
}

static void expect_error(const char *body, int chat, int status, const char *param) {
    request r;
    api_error e;
    memset(&e, 0, sizeof e);
    assert_int_equal(parse(body, chat, &r, &e), status);
    assert_int_equal(e.status, status);
    if (param) {
        assert_string_equal(e.param, param);
        assert_non_null(strstr(e.msg, param));
    }
    assert_null(r.msgs); /* a failed parse leaves nothing to free */
    assert_null(r.prompt);
}

static void test_request_errors(void **state) {
    (void)state;
    expect_error("", 1, 400, NULL);
    expect_error("{\"messages\":", 1, 400, NULL);
    expect_error("null", 1, 400, NULL);
    expect_error("{}", 1, 400, "messages");
    expect_error("{\"messages\":[]}", 1, 400, "messages");
    expect_error("{\"messages\":[{\"role\":\"user\",\"content\":\"a\"},{\"role\":\"user\"}]}", 1, 400,
                 "messages[1].content");
    expect_error("{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\"}]}]}", 1, 400,
                 "messages[0].content");
    expect_error("{\"prompt\":7}", 0, 400, "prompt");
    expect_error("{\"prompt\":\"a\",\"max_tokens\":0}", 0, 400, "max_tokens");
    expect_error("{\"prompt\":\"a\",\"max_tokens\":1001}", 0, 400, "max_tokens");
    expect_error("{\"prompt\":\"a\",\"max_tokens\":1e999}", 0, 400, "max_tokens");
    expect_error("{\"prompt\":\"a\",\"temperature\":-1}", 0, 400, "temperature");
    expect_error("{\"prompt\":\"a\",\"top_p\":0}", 0, 400, "top_p");
    expect_error("{\"prompt\":\"a\",\"seed\":-3}", 0, 400, "seed");
    expect_error("{\"prompt\":\"a\",\"stream\":1}", 0, 400, "stream");
    expect_error("{\"prompt\":\"a\",\"stop\":[\"\"]}", 0, 400, "stop");
    expect_error("{\"prompt\":\"a\",\"stop\":[\"1\",\"2\",\"3\",\"4\",\"5\"]}", 0, 400, "stop");
    expect_error("{\"prompt\":\"a\",\"kv_steering\":{\"vector\":\"nope\"}}", 0, 400, "kv_steering.vector");
    expect_error("{\"prompt\":\"a\",\"kv_steering\":{\"vector\":\"gone\"}}", 0, 400, "kv_steering.vector");
    expect_error("{\"prompt\":\"a\",\"kv_steering\":[{\"offset\":\"a\"},{\"offset\":\"b\"}]}", 0, 400,
                 "kv_steering[1].offset");
    expect_error("{\"prompt\":\"a\",\"kv_steering\":{\"c_v\":2}}", 0, 400, "kv_steering.vector");
    expect_error("{\"prompt\":\"a\",\"kv_steering\":7}", 0, 400, "kv_steering");
    expect_error("{\"prompt\":\"a\",\"act_steering\":{\"layer\":3}}", 0, 400, "act_steering.vector");
    /* text over the limit */
    char big[5000];
    memset(big, 'x', sizeof big);
    memcpy(big, "{\"prompt\":\"", 11);
    memcpy(big + sizeof big - 3, "\"}", 3);
    expect_error(big, 0, 400, "prompt");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stop_across_tokens),
        cmocka_unit_test(test_utf8_held_until_complete),
        cmocka_unit_test(test_request_defaults_and_fields),
        cmocka_unit_test(test_request_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
