#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>

const char *tu_model_path(void) {
    const char *e = getenv("KVS_MODEL");
    return e && *e ? e : KVS_DEFAULT_MODEL;
}

const char *tu_data_path(void) {
    const char *e = getenv("KVS_DATA");
    return e && *e ? e : KVS_DEFAULT_DATA;
}

/* test-program scope only: loading once keeps the tests fast */
static kvs_model *g_model;

void tu_release(void) {
    kvs_model_free(g_model);
    g_model = NULL;
}

kvs_model *tu_model(void) {
    kvs_model *m = g_model;
    if (!m) {
        kvs_error err = {0};
        m = kvs_model_load(tu_model_path(), &err);
        if (!m) fail_msg("cannot load model: %s (run scripts/fetch_model.sh)", err.msg);
        g_model = m;
    }
    return m;
}

char *tu_read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf) {
        buf[n] = 0;
        if (len) *len = (size_t)n;
    }
    return buf;
}

uint64_t tu_next_u64(uint64_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

void *tu_xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    assert_non_null(p);
    return p;
}

void tu_rand_floats(uint64_t *s, float *out, int n) {
    for (int i = 0; i < n; i++) {
        tu_next_u64(s);
        out[i] = (float)((*s >> 11) * (1.0 / 9007199254740992.0)) * 2.0f - 1.0f;
    }
}

cJSON *tu_load_json(const char *rel) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", KVS_SOURCE_DIR, rel);
    size_t n;
    char *buf = tu_read_file(path, &n);
    if (!buf) fail_msg("cannot read %s", path);
    cJSON *j = cJSON_ParseWithLength(buf, n);
    free(buf);
    if (!j) fail_msg("%s: invalid JSON", path);
    return j;
}

kvs_ctx *tu_ctx(const kvs_model *m, int n_ctx, int n_seq, int n_threads) {
    kvs_ctx_params p = kvs_ctx_default_params();
    p.n_ctx = n_ctx;
    p.n_seq = n_seq;
    if (n_threads > 0) p.n_threads = n_threads;
    kvs_error err = {0};
    kvs_ctx *c = kvs_ctx_new(m, &p, &err);
    if (!c) fail_msg("%s", err.msg);
    return c;
}

int tu_cache_edit_hook(kvs_ctx *c, int seq, int last_pos, void *user, kvs_error *err) {
    const tu_cache_edit *u = user;
    return kvs_steer_apply_cache(c, seq, last_pos, u->s, &u->p, err);
}
