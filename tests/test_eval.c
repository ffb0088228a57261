/* Evaluation bookkeeping without a model: the resumable run file (header,
 * resume, a truncated last line, config mismatch, duplicates, old summaries,
 * corruption), summaries over seeds, fingerprints, UTF-8 cleaning. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "eval.h"
#include "fingerprint.h"
#include "runfile.h"
#include "runstats.h"
#include "testutil.h"

static char g_dir[64];

static void path_in(char *out, size_t cap, const char *name) { snprintf(out, cap, "%s/%s", g_dir, name); }

static void put_file(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int count_lines(const char *path) {
    size_t len = 0;
    char *b = tu_read_file(path, &len);
    assert_non_null(b);
    int n = 0;
    for (size_t i = 0; i < len; i++) n += b[i] == '\n';
    if (len) assert_int_equal(b[len - 1], '\n'); /* never a partial last line */
    free(b);
    return n;
}

static cJSON *config(const char *method) {
    cJSON *c = cJSON_CreateObject();
    cJSON_AddStringToObject(c, "task", "arc");
    cJSON_AddStringToObject(c, "method", method);
    cJSON_AddNumberToObject(c, "max_new", 24);
    return c;
}

static cJSON *mc_sample(const char *id, int seed, int correct, int tokens) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", id);
    if (seed < 0) cJSON_AddNullToObject(o, "seed");
    else cJSON_AddNumberToObject(o, "seed", seed);
    cJSON *x = cJSON_AddObjectToObject(o, "extracted");
    cJSON_AddStringToObject(x, "choice", correct < 0 ? "invalid" : "A");
    cJSON_AddBoolToObject(o, "correct", correct > 0);
    cJSON_AddNumberToObject(o, "generated_tokens", tokens);
    cJSON_AddNumberToObject(o, "seconds", tokens * 0.01);
    return o;
}

static void write_samples(run_writer *r, int n, int seed) {
    kvs_error err = {0};
    for (int i = 0; i < n; i++) {
        char id[32];
        snprintf(id, sizeof id, "q-%d", i);
        cJSON *o = mc_sample(id, seed, i % 2 == 0, 10 + i);
        assert_int_equal(run_writer_write(r, o, &err), 0);
        cJSON_Delete(o);
    }
    assert_int_equal(run_writer_flush(r, &err), 0);
}

static void test_new_and_resume(void **state) {
    (void)state;
    char p[128];
    path_in(p, sizeof p, "resume.jsonl");
    cJSON *cfg = config("baseline");
    kvs_error err = {0};
    run_writer r;
    assert_int_equal(run_writer_open(&r, p, cfg, NULL, 0, &err), 0);
    assert_int_equal(r.n_samples, 0);
    write_samples(&r, 3, -1);
    run_writer_close(&r);
    assert_int_equal(count_lines(p), 4);

    assert_int_equal(run_writer_open(&r, p, cfg, NULL, 0, &err), 0);
    assert_int_equal(r.n_samples, 3);
    assert_int_equal(r.n_correct, 2);
    assert_false(r.repaired);
    assert_true(run_writer_has(&r, -1, "q-0"));
    assert_true(run_writer_has(&r, -1, "q-2"));
    assert_false(run_writer_has(&r, -1, "q-3"));
    assert_false(run_writer_has(&r, 0, "q-0")); /* another seed is another sample */
    run_writer_close(&r);
    cJSON_Delete(cfg);
}

static void test_many_samples(void **state) {
    (void)state;
    char p[128];
    path_in(p, sizeof p, "many.jsonl");
    cJSON *cfg = config("baseline");
    kvs_error err = {0};
    run_writer r;
    assert_int_equal(run_writer_open(&r, p, cfg, NULL, 1, &err), 0);
    write_samples(&r, 300, 3);
    write_samples(&r, 5, 3); /* duplicates of the first five */
    run_writer_close(&r);
    assert_int_equal(run_writer_open(&r, p, cfg, NULL, 0, &err), 0);
    assert_int_equal(r.n_samples, 300);
    assert_int_equal(r.n_correct, 150);
    assert_true(r.repaired);
    assert_true(run_writer_has(&r, 3, "q-0"));
    assert_true(run_writer_has(&r, 3, "q-299"));
    assert_false(run_writer_has(&r, 3, "q-300"));
    assert_false(run_writer_has(&r, -1, "q-7"));
    run_writer_close(&r);
    assert_int_equal(count_lines(p), 301);
    cJSON_Delete(cfg);
}

static void test_truncated_last_line(void **state) {
    (void)state;
    char p[128];
    path_in(p, sizeof p, "trunc.jsonl");
    cJSON *cfg = config("baseline");
    kvs_error err = {0};
    run_writer r;
    assert_int_equal(run_writer_open(&r, p, cfg, NULL, 0, &err), 0);
    write_samples(&r, 3, -1);
    run_writer_close(&r);
    /* cut the file in the middle of its last line */
    size_t len;
    char *b = tu_read_file(p, &len);
    assert_int_equal(truncate(p, (off_t)(len - 20)), 0);
    free(b);
    assert_int_equal(run_writer_open(&r, p, cfg, NULL, 0, &err), 0);
    assert_true(r.repaired);
    assert_true(r.truncated);
    assert_int_equal(r.n_samples, 2);
    assert_false(run_writer_has(&r, -1, "q-2"));
    run_writer_close(&r);
    assert_int_equal(count_lines(p), 3);
    /* the temp file is gone */
    char tmp[160];
    snprintf(tmp, sizeof tmp, "%s.tmp%ld", p, (long)getpid());
    assert_int_not_equal(access(tmp, F_OK), 0);
    /* a complete last line without its newline is kept (and the newline added) */
    b = tu_read_file(p, &len);
    assert_int_equal(truncate(p, (off_t)(len - 1)), 0);
    free(b);
    assert_int_equal(run_writer_open(&r, p, cfg, NULL, 0, &err), 0);
    assert_int_equal(r.n_samples, 2);
    assert_false(r.truncated);
    run_writer_close(&r);
    assert_int_equal(count_lines(p), 3);
    cJSON_Delete(cfg);
}

/* A new run file p with (config, extra) and n greedy samples. */
static void new_file(const char *p, const cJSON *config, const cJSON *extra, int n) {
    kvs_error err = {0};
    run_writer r;
    assert_int_equal(run_writer_open(&r, p, config, extra, 0, &err), 0);
    write_samples(&r, n, -1);
    run_writer_close(&r);
}

/* Opening run file p with (config, extra) is refused as a mismatch, in one line
 * holding every string of `says` and no command-line option, and leaves the
 * file as it was. */
static void refused_untouched(const char *p, const cJSON *config, const cJSON *extra, const char *const *says) {
    kvs_error err = {0};
    run_writer r;
    size_t l0, l1;
    char *before = tu_read_file(p, &l0);
    assert_int_equal(run_writer_open(&r, p, config, extra, 0, &err), KVS_E_MISMATCH);
    for (; *says; says++) assert_non_null(strstr(err.msg, *says));
    assert_null(strstr(err.msg, "--")); /* the library names no command-line option */
    assert_null(strchr(err.msg, '\n'));
    char *after = tu_read_file(p, &l1);
    assert_int_equal(l0, l1);
    assert_memory_equal(before, after, l0);
    free(before);
    free(after);
}

static void test_config_mismatch(void **state) {
    (void)state;
    char p[128];
    path_in(p, sizeof p, "mismatch.jsonl");
    cJSON *a = config("baseline"), *b = config("cot");
    kvs_error err = {0};
    run_writer r;
    new_file(p, a, NULL, 2);
    refused_untouched(p, b, NULL, (const char *[]){"mismatch.jsonl", "method", "different configuration", NULL});
    /* overwrite starts afresh */
    assert_int_equal(run_writer_open(&r, p, b, NULL, 1, &err), 0);
    assert_int_equal(r.n_samples, 0);
    run_writer_close(&r);
    assert_int_equal(count_lines(p), 1);
    cJSON_Delete(a);
    cJSON_Delete(b);
}

/* A run file header's extra members: {"numerics": fp}. */
static cJSON *numerics(const char *fp) {
    cJSON *x = cJSON_CreateObject();
    cJSON_AddStringToObject(x, "numerics", fp);
    return x;
}

/* Opening run file p with (config, extra) resumes it, finding n samples. */
static void resumes(const char *p, const cJSON *config, const cJSON *extra, int n) {
    kvs_error err = {0};
    run_writer r;
    assert_int_equal(run_writer_open(&r, p, config, extra, 0, &err), 0);
    assert_int_equal(r.n_samples, n);
    run_writer_close(&r);
}

/* A file begun with another numerics fingerprint is refused; a file without
 * one (made before it existed), or a writer without one, is not. */
static void test_numerics_mismatch(void **state) {
    (void)state;
    char p[128], q[128];
    path_in(p, sizeof p, "numerics.jsonl");
    path_in(q, sizeof q, "numerics-old.jsonl");
    cJSON *c = config("baseline"), *xa = numerics("00000000000000aa"), *xb = numerics("00000000000000bb");
    new_file(p, c, xa, 2);
    refused_untouched(p, c, xb, (const char *[]){"numerics.jsonl", "00000000000000aa", "00000000000000bb", NULL});
    resumes(p, c, xa, 2); /* the same value resumes */
    resumes(p, c, NULL, 2);
    new_file(q, c, NULL, 1); /* from before the fingerprint: resumes with any */
    resumes(q, c, xb, 1);
    cJSON_Delete(c);
    cJSON_Delete(xa);
    cJSON_Delete(xb);
}

/* A file begun with another kernel set resumes when both carry the same
 * numerics fingerprint (the same bits), and is refused when either lacks one
 * or they differ. */
static void test_kernels_same_numerics(void **state) {
    (void)state;
    char p[128];
    path_in(p, sizeof p, "kernels.jsonl");
    cJSON *a = config("baseline"), *b = config("baseline"), *xa = numerics("00000000000000aa"),
          *xb = numerics("00000000000000bb");
    cJSON_AddStringToObject(a, "kernels", "avx512vnni");
    cJSON_AddStringToObject(b, "kernels", "amx");
    new_file(p, a, xa, 2);
    refused_untouched(p, b, NULL, (const char *[]){"kernels.jsonl", "kernels", "different configuration", NULL});
    refused_untouched(p, b, xb, (const char *[]){"kernels.jsonl", "kernels", "different configuration", NULL});
    resumes(p, b, xa, 2);
    cJSON_Delete(a);
    cJSON_Delete(b);
    cJSON_Delete(xa);
    cJSON_Delete(xb);
}

static void test_summary_and_duplicates_dropped(void **state) {
    (void)state;
    char p[128];
    path_in(p, sizeof p, "dups.jsonl");
    cJSON *cfg = config("baseline");
    kvs_error err = {0};
    run_writer r;
    assert_int_equal(run_writer_open(&r, p, cfg, NULL, 0, &err), 0);
    write_samples(&r, 2, -1);
    write_samples(&r, 2, -1); /* the same two again */
    cJSON *s = run_summarize(p, &err);
    assert_non_null(s);
    assert_int_equal(run_writer_write(&r, s, &err), 0);
    cJSON_Delete(s);
    run_writer_close(&r);
    assert_int_equal(count_lines(p), 6);
    assert_int_equal(run_writer_open(&r, p, cfg, NULL, 0, &err), 0);
    assert_true(r.repaired);
    assert_int_equal(r.n_samples, 2);
    assert_int_equal(r.n_correct, 1);
    run_writer_close(&r);
    assert_int_equal(count_lines(p), 3);
    cJSON_Delete(cfg);
}

static void test_bad_files(void **state) {
    (void)state;
    char p[128];
    cJSON *cfg = config("baseline");
    kvs_error err = {0};
    run_writer r;
    path_in(p, sizeof p, "noheader.jsonl");
    put_file(p, "{\"id\": \"x\", \"seed\": null}\n");
    assert_int_equal(run_writer_open(&r, p, cfg, NULL, 0, &err), KVS_E_FORMAT);
    assert_non_null(strstr(err.msg, "no header"));
    path_in(p, sizeof p, "corrupt.jsonl");
    char *hdr = NULL;
    {
        cJSON *h = cJSON_CreateObject();
        cJSON_AddBoolToObject(h, "header", 1);
        cJSON_AddItemToObject(h, "config", cJSON_Duplicate(cfg, 1));
        hdr = cJSON_PrintUnformatted(h);
        cJSON_Delete(h);
    }
    char buf[1024];
    snprintf(buf, sizeof buf, "%s\n{\"id\": \"a\", \"se\n{\"id\": \"b\", \"seed\": null}\n", hdr);
    put_file(p, buf);
    assert_int_equal(run_writer_open(&r, p, cfg, NULL, 0, &err), KVS_E_FORMAT);
    assert_non_null(strstr(err.msg, "corrupt.jsonl:2"));
    snprintf(buf, sizeof buf, "%s\n{\"what\": 1}\n", hdr);
    put_file(p, buf);
    assert_int_equal(run_writer_open(&r, p, cfg, NULL, 0, &err), KVS_E_FORMAT);
    assert_non_null(strstr(err.msg, ":2"));
    free(hdr);
    /* an empty file is a new run */
    path_in(p, sizeof p, "empty.jsonl");
    put_file(p, "");
    assert_int_equal(run_writer_open(&r, p, cfg, NULL, 0, &err), 0);
    run_writer_close(&r);
    assert_int_equal(count_lines(p), 1);
    /* a directory is no run file */
    assert_int_not_equal(run_writer_open(&r, g_dir, cfg, NULL, 0, &err), 0);
    cJSON_Delete(cfg);
}

static double num(const cJSON *o, const char *a, const char *b) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, a);
    if (b) x = cJSON_GetObjectItemCaseSensitive(x, b);
    assert_true(cJSON_IsNumber(x));
    return x->valuedouble;
}

static void test_summaries(void **state) {
    (void)state;
    char p[128];
    path_in(p, sizeof p, "sum.jsonl");
    cJSON *cfg = config("baseline");
    kvs_error err = {0};
    run_writer r;
    assert_int_equal(run_writer_open(&r, p, cfg, NULL, 1, &err), 0);
    /* seed 0: 3 of 4 correct; seed 1: 1 of 4 correct, one invalid */
    const int c0[4] = {1, 1, 1, 0}, c1[4] = {0, 1, -1, 0};
    for (int s = 0; s < 2; s++)
        for (int i = 0; i < 4; i++) {
            char id[16];
            snprintf(id, sizeof id, "q%d", i);
            cJSON *o = mc_sample(id, s, (s ? c1 : c0)[i], 10);
            run_writer_write(&r, o, &err);
            cJSON_Delete(o);
        }
    run_writer_flush(&r, &err);
    run_writer_close(&r);
    cJSON *s = run_summarize(p, &err);
    assert_non_null(s);
    assert_int_equal((int)num(s, "n", NULL), 8);
    assert_int_equal((int)num(s, "n_questions", NULL), 4);
    assert_true(fabs(num(s, "accuracy", "choice") - 0.5) < 1e-12);
    assert_true(fabs(num(s, "accuracy_std", "choice") - 0.25) < 1e-12); /* population std of 0.75, 0.25 */
    assert_true(fabs(num(s, "invalid", NULL) - 0.125) < 1e-12);
    assert_true(fabs(num(s, "mean_generated_tokens", NULL) - 10) < 1e-12);
    assert_true(fabs(num(s, "ms_per_token", NULL) - 10) < 1e-9);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(s, "seeds")), 2);
    cJSON_Delete(s);

    /* GSM8K: one accuracy per extractor; greedy has no std */
    path_in(p, sizeof p, "gsm.jsonl");
    assert_int_equal(run_writer_open(&r, p, cfg, NULL, 1, &err), 0);
    for (int i = 0; i < 4; i++) {
        char id[16];
        snprintf(id, sizeof id, "g%d", i);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "id", id);
        cJSON_AddNullToObject(o, "seed");
        cJSON *x = cJSON_AddObjectToObject(o, "extracted");
        if (i == 3) cJSON_AddNullToObject(x, "last_number");
        else cJSON_AddStringToObject(x, "last_number", "5");
        cJSON_AddNullToObject(x, "strict");
        cJSON *c = cJSON_AddObjectToObject(o, "correct");
        cJSON_AddBoolToObject(c, "last_number", i < 2);
        cJSON_AddBoolToObject(c, "strict", i == 0);
        cJSON_AddNumberToObject(o, "generated_tokens", 20);
        cJSON_AddNumberToObject(o, "seconds", 0.5);
        run_writer_write(&r, o, &err);
        cJSON_Delete(o);
    }
    run_writer_close(&r);
    s = run_summarize(p, &err);
    assert_non_null(s);
    assert_true(fabs(num(s, "accuracy", "last_number") - 0.5) < 1e-12);
    assert_true(fabs(num(s, "accuracy", "strict") - 0.25) < 1e-12);
    assert_null(cJSON_GetObjectItemCaseSensitive(s, "accuracy_std"));
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(s, "seeds")->valuestring, "greedy");
    assert_true(fabs(num(s, "invalid", NULL) - 0.25) < 1e-12);
    assert_true(fabs(num(s, "ms_per_token", NULL) - 25) < 1e-9);
    cJSON_Delete(s);
    cJSON_Delete(cfg);
}

static void test_fingerprint_and_utf8(void **state) {
    (void)state;
    char p[128], fa[17], fb[17], fc[17];
    kvs_error err = {0};
    path_in(p, sizeof p, "fp.bin");
    put_file(p, "hello world");
    assert_int_equal(eval_file_fingerprint(p, fa, &err), 0);
    assert_int_equal(eval_file_fingerprint(p, fb, &err), 0);
    assert_string_equal(fa, fb);
    assert_int_equal(strlen(fa), 16);
    put_file(p, "hello World");
    assert_int_equal(eval_file_fingerprint(p, fc, &err), 0);
    assert_string_not_equal(fa, fc);
    assert_int_not_equal(eval_file_fingerprint("/nonexistent/x.gguf", fa, &err), 0);
    assert_non_null(strstr(err.msg, "/nonexistent/x.gguf"));

    assert_non_null(eval_task_find("gsm8k"));
    assert_null(eval_task_find("gsm8k")->choices_header);
    assert_string_equal(eval_task_find("gsm8k")->steer_offset, " ");
    assert_string_equal(eval_task_find("csqa")->choices_header, "");
    assert_string_equal(eval_task_find("piqa")->steer_offset, "\n");
    assert_null(eval_task_find("mmlu"));
    assert_null(eval_task_find(NULL));
}

static int setup(void **state) {
    (void)state;
    snprintf(g_dir, sizeof g_dir, "/tmp/kvs_eval_XXXXXX");
    return mkdtemp(g_dir) ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new_and_resume),      cmocka_unit_test(test_many_samples),
        cmocka_unit_test(test_truncated_last_line),
        cmocka_unit_test(test_config_mismatch),     cmocka_unit_test(test_numerics_mismatch),
        cmocka_unit_test(test_kernels_same_numerics),
        cmocka_unit_test(test_summary_and_duplicates_dropped),
        cmocka_unit_test(test_bad_files),           cmocka_unit_test(test_summaries),
        cmocka_unit_test(test_fingerprint_and_utf8),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
