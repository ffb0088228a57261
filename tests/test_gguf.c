/* GGUF reader and writer: round trip, and every kind of damage a file can
 * have is reported as an error naming the file, never a crash. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gguf.h"
#include "testutil.h"

static char g_path[256];

/* A small valid file written by our writer. */
static int setup(void **state) {
    (void)state;
    snprintf(g_path, sizeof g_path, "/tmp/kvs_test_gguf_%d.gguf", (int)getpid());
    gguf_writer *w = gguf_writer_new();
    assert_non_null(w);
    assert_int_equal(gguf_writer_add_str(w, "general.architecture", "test"), 0);
    assert_int_equal(gguf_writer_add_u32(w, "test.count", 7), 0);
    assert_int_equal(gguf_writer_add_i32(w, "test.neg", -3), 0);
    assert_int_equal(gguf_writer_add_f32(w, "test.scale", 0.5f), 0);
    assert_int_equal(gguf_writer_add_u64(w, "test.big", 1ull << 40), 0);
    float a[6] = {1, 2, 3, 4, 5, 6}, b[3] = {-1, 0, 1};
    uint64_t ne_a[2] = {3, 2}, ne_b[1] = {3};
    assert_int_equal(gguf_writer_add_tensor_f32(w, "a", 2, ne_a, a), 0);
    assert_int_equal(gguf_writer_add_tensor_f32(w, "b", 1, ne_b, b), 0);
    kvs_error err = {0};
    assert_int_equal(gguf_writer_save(w, g_path, &err), 0);
    gguf_writer_free(w);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    unlink(g_path);
    return 0;
}

static void test_roundtrip(void **state) {
    (void)state;
    kvs_error err = {0};
    gguf_file *f = gguf_open(g_path, &err);
    assert_non_null(f);
    assert_int_equal(f->version, 3);
    gguf_str s;
    assert_int_equal(gguf_get_str(f, "general.architecture", &s), 0);
    assert_int_equal(s.n, 4);
    assert_memory_equal(s.p, "test", 4);
    uint64_t u;
    int64_t i;
    double d;
    assert_int_equal(gguf_get_u64(f, "test.count", &u), 0);
    assert_int_equal(u, 7);
    assert_int_equal(gguf_get_i64(f, "test.neg", &i), 0);
    assert_int_equal(i, -3);
    assert_int_not_equal(gguf_get_u64(f, "test.neg", &u), 0); /* negative is not unsigned */
    assert_int_equal(gguf_get_f64(f, "test.scale", &d), 0);
    assert_true(d == 0.5);
    assert_int_equal(gguf_get_u64(f, "test.big", &u), 0);
    assert_true(u == (1ull << 40));
    assert_int_not_equal(gguf_get_str(f, "test.count", &s), 0); /* wrong type */
    assert_int_not_equal(gguf_get_u64(f, "missing", &u), 0);
    const gguf_tensor *t = gguf_find_tensor(f, "a");
    assert_non_null(t);
    assert_int_equal(t->n_dims, 2);
    assert_int_equal(t->ne[0], 3);
    assert_int_equal(t->ne[1], 2);
    assert_int_equal(((uintptr_t)t->data - (uintptr_t)f->map - f->data_offset) % f->alignment, 0);
    assert_true(((const float *)t->data)[5] == 6.0f);
    t = gguf_find_tensor(f, "b");
    assert_non_null(t);
    assert_true(((const float *)t->data)[0] == -1.0f);
    assert_null(gguf_find_tensor(f, "c"));
    gguf_close(f);
}

/* Every prefix of a valid file that cuts into data a tensor needs must be
 * rejected cleanly (a cut inside trailing padding is harmless). */
static void test_every_truncation(void **state) {
    (void)state;
    size_t n;
    char *buf = tu_read_file(g_path, &n);
    assert_non_null(buf);
    kvs_error err = {0};
    gguf_file *whole = gguf_open_buffer(buf, n, "whole.gguf", &err);
    assert_non_null(whole);
    size_t needed = 0;
    for (uint64_t i = 0; i < whole->n_tensors; i++) {
        size_t end = (size_t)((const uint8_t *)whole->tensors[i].data - whole->map) + whole->tensors[i].nbytes;
        if (end > needed) needed = end;
    }
    gguf_close(whole);
    for (size_t len = 0; len < needed; len++) {
        char *copy = malloc(len ? len : 1); /* exact size so ASan sees over-reads */
        memcpy(copy, buf, len);
        gguf_file *f = gguf_open_buffer(copy, len, "trunc.gguf", &err);
        if (f) fail_msg("truncated to %zu of %zu bytes was accepted", len, n);
        assert_int_not_equal(err.code, 0);
        assert_non_null(strstr(err.msg, "trunc.gguf"));
        free(copy);
    }
    free(buf);
}

static void expect_error(const char *buf, size_t n, const char *needle) {
    kvs_error err = {0};
    char *copy = malloc(n);
    memcpy(copy, buf, n);
    gguf_file *f = gguf_open_buffer(copy, n, "bad.gguf", &err);
    if (f) gguf_close(f);
    free(copy);
    assert_null(f);
    if (!strstr(err.msg, needle)) fail_msg("error '%s' does not mention '%s'", err.msg, needle);
    assert_non_null(strstr(err.msg, "bad.gguf"));
}

static void test_damaged_headers(void **state) {
    (void)state;
    size_t n;
    char *buf = tu_read_file(g_path, &n);
    assert_non_null(buf);
    char *b = malloc(n);

    memcpy(b, buf, n);
    b[0] = 'X';
    expect_error(b, n, "bad magic");

    memcpy(b, buf, n);
    b[4] = 9; /* version 9 */
    expect_error(b, n, "version");

    memcpy(b, buf, n);
    uint64_t huge = 1ull << 60;
    memcpy(b + 8, &huge, 8); /* tensor count */
    expect_error(b, n, "absurd");

    memcpy(b, buf, n);
    memcpy(b + 16, &huge, 8); /* metadata count */
    expect_error(b, n, "absurd");

    /* first key's length field claims more bytes than the file has */
    memcpy(b, buf, n);
    memcpy(b + 24, &huge, 8);
    expect_error(b, n, "truncated");

    /* first key's value type: unknown */
    memcpy(b, buf, n);
    uint64_t klen;
    memcpy(&klen, b + 24, 8);
    uint32_t bad_type = 99;
    memcpy(b + 32 + klen, &bad_type, 4);
    expect_error(b, n, "unknown type");
    free(b);
    free(buf);
}

/* Damage inside tensor infos: located by searching for the tensor names. */
static void test_damaged_tensors(void **state) {
    (void)state;
    size_t n;
    char *buf = tu_read_file(g_path, &n);
    assert_non_null(buf);
    char *b = malloc(n);
    /* tensor "b": 8-byte name length, "b", n_dims u32, ne u64, type u32, offset u64 */
    size_t at = 0;
    for (size_t i = 8; i + 1 < n; i++)
        if (buf[i] == 'b' && buf[i - 8] == 1 && buf[i - 7] == 0 && buf[i + 1] == 1) {
            at = i + 1;
            break;
        }
    assert_true(at > 0);
    const size_t o_ndims = at, o_ne = at + 4, o_type = at + 12, o_off = at + 16;

    memcpy(b, buf, n);
    uint32_t dims = 7;
    memcpy(b + o_ndims, &dims, 4);
    expect_error(b, n, "dimensions");

    memcpy(b, buf, n);
    uint64_t big = 1ull << 50;
    memcpy(b + o_ne, &big, 8);
    expect_error(b, n, "absurd shape");

    memcpy(b, buf, n);
    uint32_t t = 77;
    memcpy(b + o_type, &t, 4);
    expect_error(b, n, "unknown type");

    memcpy(b, buf, n);
    uint64_t off = 1u << 20;
    memcpy(b + o_off, &off, 8);
    expect_error(b, n, "outside the file");

    memcpy(b, buf, n);
    off = 4; /* misaligned */
    memcpy(b + o_off, &off, 8);
    expect_error(b, n, "aligned");

    memcpy(b, buf, n);
    t = 2; /* Q4_0 needs rows that are multiples of 32 */
    memcpy(b + o_type, &t, 4);
    expect_error(b, n, "multiple");
    free(b);
    free(buf);
}

static void test_missing_file(void **state) {
    (void)state;
    kvs_error err = {0};
    assert_null(gguf_open("/nonexistent/x.gguf", &err));
    assert_int_equal(err.code, KVS_E_IO);
    assert_non_null(strstr(err.msg, "/nonexistent/x.gguf"));
}

/* The real model file parses and every tensor lies inside it. */
static void test_real_model(void **state) {
    (void)state;
    kvs_error err = {0};
    gguf_file *f = gguf_open(tu_model_path(), &err);
    if (!f) fail_msg("%s", err.msg);
    assert_int_equal(f->n_tensors, 272);
    const gguf_kv *kv = gguf_find(f, "tokenizer.ggml.tokens");
    assert_non_null(kv);
    assert_int_equal(kv->arr_n, 49152);
    int64_t v;
    assert_int_equal(gguf_get_i64(f, "llama.block_count", &v), 0);
    assert_int_equal(v, 30);
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        const gguf_tensor *t = &f->tensors[i];
        assert_true((const uint8_t *)t->data + t->nbytes <= f->map + f->size);
    }
    gguf_close(f);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),        cmocka_unit_test(test_every_truncation),
        cmocka_unit_test(test_damaged_headers),  cmocka_unit_test(test_damaged_tensors),
        cmocka_unit_test(test_missing_file),     cmocka_unit_test(test_real_model),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
