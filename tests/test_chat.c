/* Chat templates: the family is recognised from the Jinja text, the default
 * system prompt is taken from the template, and rendering matches what jinja2
 * produces for the same template and messages (expected strings below and in
 * tests/golden/smollm2_q4_1.json were rendered by jinja2). */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat.h"
#include "gguf.h"
#include "testutil.h"

/* Templates of the families (as published with the respective models; the
 * Gemma one is reduced to string contents). */
static const char T_QWEN2[] =
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";
static const char T_QWEN25[] =
    "{%- if messages[0]['role'] == 'system' %}\n    {{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}\n{%- else %}\n    {{- '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\\n' }}\n{%- endif %}\n{%- for message in messages %}\n    {%- if not (message.role == 'system' and loop.first) %}\n        {{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}\n    {%- endif %}\n{%- endfor %}\n{%- if add_generation_prompt %}\n    {{- '<|im_start|>assistant\\n' }}\n{%- endif %}\n";
static const char T_CHATML_PLAIN[] =
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";
static const char T_LLAMA3[] =
    "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}";
static const char T_PHI3[] =
    "{% for message in messages %}{% if message['role'] == 'system' and message['content'] %}{{'<|system|>\n' + message['content'] + '<|end|>\n'}}{% elif message['role'] == 'user' %}{{'<|user|>\n' + message['content'] + '<|end|>\n'}}{% elif message['role'] == 'assistant' %}{{'<|assistant|>\n' + message['content'] + '<|end|>\n'}}{% endif %}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% else %}{{ eos_token }}{% endif %}";
static const char T_GEMMA[] =
    "{{ bos_token }}{%- if messages[0]['role'] == 'system' -%}{%- set first_user_prefix = messages[0]['content'] | trim + '\n\n' -%}{%- set loop_messages = messages[1:] -%}{%- else -%}{%- set first_user_prefix = \"\" -%}{%- set loop_messages = messages -%}{%- endif -%}{%- for message in loop_messages -%}{%- if (message['role'] == 'assistant') -%}{%- set role = \"model\" -%}{%- else -%}{%- set role = message['role'] -%}{%- endif -%}{{ '<start_of_turn>' + role + '\n' + (first_user_prefix if loop.first else \"\") }}{{ message['content'] | trim }}{{ '<end_of_turn>\n' }}{%- endfor -%}{%- if add_generation_prompt -%}{{'<start_of_turn>model\n'}}{%- endif -%}";

/* system (padded), user (padded), assistant, user */
static const kvs_chat_msg CONV[] = {
    {"system", "  Be brief. "}, {"user", " Why?\n"}, {"assistant", "Because."}, {"user", "Ok"}};

static char *g_smol; /* SmolLM2's template, from the model file */

static int setup(void **state) {
    (void)state;
    kvs_error err = {0};
    gguf_file *f = gguf_open(tu_model_path(), &err);
    if (!f) {
        fprintf(stderr, "%s\n", err.msg);
        return -1;
    }
    gguf_str s;
    if (gguf_get_str(f, "tokenizer.chat_template", &s)) {
        gguf_close(f);
        return -1;
    }
    g_smol = strndup(s.p, s.n);
    gguf_close(f);
    return g_smol ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    free(g_smol);
    return 0;
}

static char *render(const char *src, const char *name, const kvs_chat_msg *m, int n, int gen) {
    chat_template t;
    kvs_error err = {0};
    if (chat_template_init(&t, src, name, "test", &err)) fail_msg("init: %s", err.msg);
    char *s = chat_render(&t, m, n, gen, &err);
    if (!s) fail_msg("render: %s", err.msg);
    chat_template_free(&t);
    return s;
}

static void expect_render(const char *src, const char *name, const kvs_chat_msg *m, int n, int gen,
                          const char *want) {
    char *got = render(src, name, m, n, gen);
    if (strcmp(got, want) != 0) fail_msg("rendered\n%s\nexpected\n%s", got, want);
    free(got);
}

static void test_smollm2_template(void **state) {
    (void)state;
    chat_template t;
    kvs_error err = {0};
    assert_int_equal(chat_template_init(&t, g_smol, NULL, "model", &err), 0);
    assert_int_equal(t.family, CHAT_CHATML);
    assert_string_equal(t.default_system, "You are a helpful AI assistant named SmolLM, trained by Hugging Face");
    assert_null(t.bos_text);
    chat_template_free(&t);

    kvs_chat_msg user = {"user", "Hi there!"};
    expect_render(g_smol, NULL, &user, 1, 1,
                  "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
                  "<|im_start|>user\nHi there!<|im_end|>\n<|im_start|>assistant\n");
    /* an explicit system message replaces the default one */
    kvs_chat_msg two[] = {{"system", "You are a pirate."}, {"user", "Say hello."}};
    expect_render(g_smol, NULL, two, 2, 1,
                  "<|im_start|>system\nYou are a pirate.<|im_end|>\n<|im_start|>user\nSay hello.<|im_end|>\n"
                  "<|im_start|>assistant\n");
    /* the default system prompt is inserted once, before the first message only */
    char *s = render(g_smol, NULL, CONV + 1, 3, 0);
    const char *first = strstr(s, "SmolLM");
    assert_non_null(first);
    assert_null(strstr(first + 1, "SmolLM"));
    assert_true(strncmp(s, "<|im_start|>system\n", 19) == 0);
    free(s);
}

/* Every rendering recorded with jinja2 from the model's template. */
static void test_smollm2_goldens(void **state) {
    (void)state;
    size_t n;
    char *js = tu_read_file(KVS_SOURCE_DIR "/tests/golden/smollm2_q4_1.json", &n);
    assert_non_null(js);
    cJSON *gold = cJSON_ParseWithLength(js, n);
    free(js);
    assert_non_null(gold);
    const cJSON *c;
    int count = 0;
    cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(gold, "chat_renders")) {
        const cJSON *ms = cJSON_GetObjectItemCaseSensitive(c, "messages");
        int k = cJSON_GetArraySize(ms);
        kvs_chat_msg msgs[8];
        assert_true(k <= 8);
        for (int i = 0; i < k; i++) {
            const cJSON *m = cJSON_GetArrayItem(ms, i);
            msgs[i].role = cJSON_GetObjectItemCaseSensitive(m, "role")->valuestring;
            msgs[i].content = cJSON_GetObjectItemCaseSensitive(m, "content")->valuestring;
        }
        int gen = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(c, "add_generation_prompt"));
        expect_render(g_smol, NULL, msgs, k, gen, cJSON_GetObjectItemCaseSensitive(c, "rendered")->valuestring);
        count++;
    }
    /* the greedy prompts were rendered by jinja2 as well */
    cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(gold, "greedy")) {
        const cJSON *ms = cJSON_GetObjectItemCaseSensitive(c, "messages");
        int k = cJSON_GetArraySize(ms);
        kvs_chat_msg msgs[8];
        for (int i = 0; i < k && i < 8; i++) {
            const cJSON *m = cJSON_GetArrayItem(ms, i);
            msgs[i].role = cJSON_GetObjectItemCaseSensitive(m, "role")->valuestring;
            msgs[i].content = cJSON_GetObjectItemCaseSensitive(m, "content")->valuestring;
        }
        expect_render(g_smol, NULL, msgs, k, 1, cJSON_GetObjectItemCaseSensitive(c, "prompt")->valuestring);
        count++;
    }
    printf("chat renders identical to jinja2: %d\n", count);
    assert_true(count >= 6);
    cJSON_Delete(gold);
}

static void test_chatml_default_system(void **state) {
    (void)state;
    chat_template t;
    kvs_error err = {0};
    assert_int_equal(chat_template_init(&t, T_QWEN2, NULL, "qwen2", &err), 0);
    assert_int_equal(t.family, CHAT_CHATML);
    assert_string_equal(t.default_system, "You are a helpful assistant.");
    chat_template_free(&t);
    /* escaped newlines inside the literals, default in an else branch */
    assert_int_equal(chat_template_init(&t, T_QWEN25, NULL, "qwen2.5", &err), 0);
    assert_string_equal(t.default_system, "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.");
    chat_template_free(&t);
    kvs_chat_msg user = {"user", "Hi"};
    expect_render(T_QWEN25, NULL, &user, 1, 1,
                  "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n"
                  "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
    /* a plain ChatML template inserts nothing */
    assert_int_equal(chat_template_init(&t, T_CHATML_PLAIN, NULL, "plain", &err), 0);
    assert_int_equal(t.family, CHAT_CHATML);
    assert_null(t.default_system);
    chat_template_free(&t);
    expect_render(T_CHATML_PLAIN, NULL, &user, 1, 1, "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
    expect_render(T_CHATML_PLAIN, NULL, CONV, 2, 0,
                  "<|im_start|>system\n  Be brief. <|im_end|>\n<|im_start|>user\n Why?\n<|im_end|>\n");
}

static void test_llama3(void **state) {
    (void)state;
    chat_template t;
    kvs_error err = {0};
    assert_int_equal(chat_template_init(&t, T_LLAMA3, NULL, "llama3", &err), 0);
    assert_int_equal(t.family, CHAT_LLAMA3);
    assert_string_equal(t.bos_text, "<|begin_of_text|>");
    assert_null(t.default_system);
    chat_template_free(&t);
    expect_render(T_LLAMA3, NULL, CONV, 4, 1,
                  "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
                  "<|start_header_id|>user<|end_header_id|>\n\nWhy?<|eot_id|><|start_header_id|>assistant"
                  "<|end_header_id|>\n\nBecause.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nOk<|eot_id|>"
                  "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

static void test_phi3(void **state) {
    (void)state;
    chat_template t;
    kvs_error err = {0};
    assert_int_equal(chat_template_init(&t, T_PHI3, NULL, "phi3", &err), 0);
    assert_int_equal(t.family, CHAT_PHI3);
    assert_null(t.bos_text);
    chat_template_free(&t);
    expect_render(T_PHI3, NULL, CONV, 4, 1,
                  "<|system|>\n  Be brief. <|end|>\n<|user|>\n Why?\n<|end|>\n<|assistant|>\nBecause.<|end|>\n"
                  "<|user|>\nOk<|end|>\n<|assistant|>\n");
}

static void test_gemma(void **state) {
    (void)state;
    chat_template t;
    kvs_error err = {0};
    assert_int_equal(chat_template_init(&t, T_GEMMA, NULL, "gemma", &err), 0);
    assert_int_equal(t.family, CHAT_GEMMA);
    assert_string_equal(t.bos_text, "<bos>");
    chat_template_free(&t);
    /* the system text opens the first user turn */
    expect_render(T_GEMMA, NULL, CONV, 4, 1,
                  "<bos><start_of_turn>user\nBe brief.\n\nWhy?<end_of_turn>\n<start_of_turn>model\nBecause."
                  "<end_of_turn>\n<start_of_turn>user\nOk<end_of_turn>\n<start_of_turn>model\n");
    expect_render(T_GEMMA, NULL, CONV + 1, 1, 0, "<bos><start_of_turn>user\nWhy?<end_of_turn>\n");
}

static void expect_init_error(const char *src, const char *name, const char *what) {
    chat_template t;
    kvs_error err = {0};
    int rc = chat_template_init(&t, src, name, "some/model.gguf", &err);
    assert_true(rc < 0);
    if (!strstr(err.msg, "some/model.gguf") || !strstr(err.msg, what))
        fail_msg("error '%s' should name the file and '%s'", err.msg, what);
}

static void test_unknown_and_override(void **state) {
    (void)state;
    static const char odd[] = "{% for m in messages %}[{{ m['role'] }}] {{ m['content'] }}\n{% endfor %}";
    expect_init_error(odd, NULL, "unknown chat template");
    expect_init_error(NULL, NULL, "no chat template");
    expect_init_error(g_smol, "nosuch", "nosuch");

    /* a name overrides detection */
    kvs_chat_msg user = {"user", "Hi"};
    expect_render(odd, "chatml", &user, 1, 1, "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
    expect_render(NULL, "phi3", &user, 1, 1, "<|user|>\nHi<|end|>\n<|assistant|>\n");
    expect_render(NULL, "llama3", &user, 1, 1,
                  "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
                  "<|start_header_id|>assistant<|end_header_id|>\n\n");
    expect_render(NULL, "gemma", &user, 1, 0, "<bos><start_of_turn>user\nHi<end_of_turn>\n");
    /* another family's name on SmolLM2's template: no ChatML default system */
    expect_render(g_smol, "gemma", &user, 1, 1, "<bos><start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n");
    /* the same family's name keeps the template's details */
    char *s = render(g_smol, "chatml", &user, 1, 1);
    assert_non_null(strstr(s, "SmolLM"));
    free(s);

    assert_string_equal(chat_family_name(CHAT_CHATML), "chatml");
    assert_string_equal(chat_family_name(CHAT_LLAMA3), "llama3");
    assert_string_equal(chat_family_name(CHAT_PHI3), "phi3");
    assert_string_equal(chat_family_name(CHAT_GEMMA), "gemma");
}

static void test_bad_messages(void **state) {
    (void)state;
    chat_template t;
    kvs_error err = {0};
    assert_int_equal(chat_template_init(&t, g_smol, NULL, "m", &err), 0);
    kvs_chat_msg bad = {"user", NULL};
    assert_null(chat_render(&t, &bad, 1, 1, &err));
    assert_true(err.code < 0);
    bad = (kvs_chat_msg){NULL, "x"};
    assert_null(chat_render(&t, &bad, 1, 1, &err));
    assert_null(chat_render(&t, NULL, 2, 1, &err));
    char *s = chat_render(&t, NULL, 0, 0, &err);
    assert_non_null(s);
    assert_string_equal(s, "");
    free(s);
    chat_template_free(&t);
    chat_template_free(&t); /* idempotent */
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_smollm2_template), cmocka_unit_test(test_smollm2_goldens),
        cmocka_unit_test(test_chatml_default_system), cmocka_unit_test(test_llama3),
        cmocka_unit_test(test_phi3), cmocka_unit_test(test_gemma),
        cmocka_unit_test(test_unknown_and_override), cmocka_unit_test(test_bad_messages),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
