/* Model loading refuses files that parse as GGUF but cannot be a model we run:
 * unknown architecture, missing or inconsistent metadata, missing tensors,
 * wrong shapes, tensor types we cannot compute with.  Each error names the file. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gguf.h"
#include "testutil.h"

static char g_path[128];

typedef enum { NO_BLOCK_COUNT = 1, BAD_HEADS = 2, NO_TENSORS = 4, YARN = 8, KV_LENGTHS = 16 } flaws;

/* A tiny llama-shaped file: 1 layer, width 32, 2 heads. */
static void write_model(const char *arch, int flaws_mask, int embd_rows) {
    gguf_writer *w = gguf_writer_new();
    char key[96];
    gguf_writer_add_str(w, "general.architecture", arch);
#define K(s) (snprintf(key, sizeof key, "%s.%s", arch, s), key)
    if (!(flaws_mask & NO_BLOCK_COUNT)) gguf_writer_add_u32(w, K("block_count"), 1);
    gguf_writer_add_u32(w, K("embedding_length"), 32);
    gguf_writer_add_u32(w, K("attention.head_count"), (flaws_mask & BAD_HEADS) ? 5 : 2);
    gguf_writer_add_u32(w, K("feed_forward_length"), 64);
    gguf_writer_add_f32(w, K("attention.layer_norm_rms_epsilon"), 1e-5f);
    if (flaws_mask & YARN) {
        gguf_writer_add_str(w, K("rope.scaling.type"), "yarn");
        gguf_writer_add_f32(w, K("rope.scaling.factor"), 4.0f);
    }
    if (flaws_mask & KV_LENGTHS) {
        gguf_writer_add_u32(w, K("attention.key_length"), 16);
        gguf_writer_add_u32(w, K("attention.value_length"), 8);
    }
#undef K
    if (!(flaws_mask & NO_TENSORS)) {
        float *z = calloc(64 * 64, sizeof(float));
        uint64_t ne[2] = {32, (uint64_t)embd_rows};
        gguf_writer_add_tensor_f32(w, "token_embd.weight", 2, ne, z);
        free(z);
    }
    kvs_error err = {0};
    assert_int_equal(gguf_writer_save(w, g_path, &err), 0);
    gguf_writer_free(w);
}

static void expect_load_error(int code, const char *needle) {
    kvs_error err = {0};
    kvs_model *m = kvs_model_load(g_path, &err);
    if (m) {
        kvs_model_free(m);
        fail_msg("loaded a broken model (expected '%s')", needle);
    }
    assert_int_equal(err.code, code);
    if (!strstr(err.msg, needle)) fail_msg("error '%s' lacks '%s'", err.msg, needle);
    assert_non_null(strstr(err.msg, g_path));
}

static void test_unknown_architecture(void **state) {
    (void)state;
    write_model("mamba", 0, 10);
    expect_load_error(KVS_E_UNSUPPORTED, "unsupported architecture 'mamba'");
}

static void test_missing_key(void **state) {
    (void)state;
    write_model("llama", NO_BLOCK_COUNT, 10);
    expect_load_error(KVS_E_FORMAT, "missing metadata key 'llama.block_count'");
}

static void test_inconsistent_heads(void **state) {
    (void)state;
    write_model("llama", BAD_HEADS, 10);
    expect_load_error(KVS_E_FORMAT, "do not divide");
}

/* Architecture-specific requirements are errors too, never silent defaults. */
static void test_arch_requirements(void **state) {
    (void)state;
    write_model("gemma3", 0, 10); /* gemma3 needs its sliding window */
    expect_load_error(KVS_E_FORMAT, "missing metadata key 'gemma3.attention.sliding_window'");
    write_model("qwen2", YARN, 10);
    expect_load_error(KVS_E_UNSUPPORTED, "rope scaling 'yarn' is not supported");
    write_model("llama", KV_LENGTHS, 10);
    expect_load_error(KVS_E_UNSUPPORTED, "key length 16 differs from value length 8");
    write_model("phi3", 0, 10);
    expect_load_error(KVS_E_FORMAT, "missing tensor");
}

static void test_missing_tensor(void **state) {
    (void)state;
    write_model("llama", NO_TENSORS, 10);
    expect_load_error(KVS_E_FORMAT, "missing tensor 'token_embd.weight'");
}

static void test_missing_layer_tensor(void **state) {
    (void)state;
    write_model("llama", 0, 10);
    /* token_embd present but nothing else */
    expect_load_error(KVS_E_FORMAT, "missing tensor");
}

/* A tensor whose type is valid GGUF but not one we compute with (I8). */
static void test_unsupported_tensor_type(void **state) {
    (void)state;
    write_model("llama", 0, 10);
    size_t n;
    char *buf = tu_read_file(g_path, &n);
    assert_non_null(buf);
    const char *name = "token_embd.weight";
    char *at = memmem(buf, n, name, strlen(name));
    assert_non_null(at);
    /* name, n_dims u32, ne[2] u64, then the type u32 */
    uint32_t i8 = 24;
    memcpy(at + strlen(name) + 4 + 16, &i8, 4);
    FILE *f = fopen(g_path, "wb");
    fwrite(buf, 1, n, f);
    fclose(f);
    free(buf);
    expect_load_error(KVS_E_UNSUPPORTED, "type I8");
}

int main(void) {
    snprintf(g_path, sizeof g_path, "/tmp/kvs_test_model_%d.gguf", (int)getpid());
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unknown_architecture), cmocka_unit_test(test_missing_key),
        cmocka_unit_test(test_inconsistent_heads),   cmocka_unit_test(test_arch_requirements),
        cmocka_unit_test(test_missing_tensor),
        cmocka_unit_test(test_missing_layer_tensor), cmocka_unit_test(test_unsupported_tensor_type),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    unlink(g_path);
    return rc;
}
