/* gguf_write.c - writing small GGUF files (gguf.h): steering vectors and the
 * synthetic test models, v3, f32 tensors; the file appears whole or not at all. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "fileio.h"
#include "gguf.h"
#include "grow.h"

typedef struct wkv {
    char *key;
    uint32_t type;
    uint64_t raw; /* scalar bits */
    char *str;
} wkv;

typedef struct wtensor {
    char *name;
    int n_dims;
    uint64_t ne[GGUF_MAX_DIMS];
    float *data;
    uint64_t n;
} wtensor;

struct gguf_writer {
    wkv *kv;
    int n_kv, cap_kv;
    wtensor *t;
    int n_t, cap_t;
};

gguf_writer *gguf_writer_new(void) { return calloc(1, sizeof(gguf_writer)); }

void gguf_writer_free(gguf_writer *w) {
    if (!w) return;
    for (int i = 0; i < w->n_kv; i++) {
        free(w->kv[i].key);
        free(w->kv[i].str);
    }
    for (int i = 0; i < w->n_t; i++) {
        free(w->t[i].name);
        free(w->t[i].data);
    }
    free(w->kv);
    free(w->t);
    free(w);
}

static wkv *push_kv(gguf_writer *w, const char *key, uint32_t type) {
    wkv *nk = grow(w->kv, w->n_kv, &w->cap_kv, sizeof *w->kv);
    if (!nk) return NULL;
    w->kv = nk;
    wkv *k = &w->kv[w->n_kv];
    memset(k, 0, sizeof *k);
    if (!(k->key = strdup(key))) return NULL;
    k->type = type;
    w->n_kv++;
    return k;
}

int gguf_writer_add_str(gguf_writer *w, const char *key, const char *val) {
    wkv *k = push_kv(w, key, GGUF_STR);
    return k && (k->str = strdup(val)) ? 0 : KVS_E_NOMEM;
}

static int add_scalar(gguf_writer *w, const char *key, uint32_t type, const void *v, size_t n) {
    wkv *k = push_kv(w, key, type);
    if (!k) return KVS_E_NOMEM;
    memcpy(&k->raw, v, n);
    return 0;
}

int gguf_writer_add_u32(gguf_writer *w, const char *key, uint32_t v) { return add_scalar(w, key, GGUF_U32, &v, 4); }
int gguf_writer_add_i32(gguf_writer *w, const char *key, int32_t v) { return add_scalar(w, key, GGUF_I32, &v, 4); }
int gguf_writer_add_u64(gguf_writer *w, const char *key, uint64_t v) { return add_scalar(w, key, GGUF_U64, &v, 8); }
int gguf_writer_add_f32(gguf_writer *w, const char *key, float v) { return add_scalar(w, key, GGUF_F32, &v, 4); }

int gguf_writer_add_tensor_f32(gguf_writer *w, const char *name, int n_dims, const uint64_t *ne,
                               const float *data) {
    if (n_dims < 1 || n_dims > GGUF_MAX_DIMS) return KVS_E_ARG;
    wtensor *nt = grow(w->t, w->n_t, &w->cap_t, sizeof *w->t);
    if (!nt) return KVS_E_NOMEM;
    w->t = nt;
    wtensor *t = &w->t[w->n_t];
    memset(t, 0, sizeof *t);
    t->n_dims = n_dims;
    t->n = 1;
    for (int d = 0; d < GGUF_MAX_DIMS; d++) t->ne[d] = d < n_dims ? ne[d] : 1;
    for (int d = 0; d < n_dims; d++) t->n *= ne[d];
    t->name = strdup(name);
    t->data = malloc(sizeof(float) * t->n);
    if (!t->name || !t->data) {
        free(t->name);
        free(t->data);
        return KVS_E_NOMEM;
    }
    memcpy(t->data, data, sizeof(float) * t->n);
    w->n_t++;
    return 0;
}

static int wr(FILE *fp, const void *p, size_t n) { return fwrite(p, 1, n, fp) == n ? 0 : -1; }
static int wr_u32(FILE *fp, uint32_t v) { return wr(fp, &v, 4); }
static int wr_u64(FILE *fp, uint64_t v) { return wr(fp, &v, 8); }
static int wr_str(FILE *fp, const char *s) {
    uint64_t n = strlen(s);
    return wr_u64(fp, n) || wr(fp, s, n);
}

int gguf_writer_save(gguf_writer *w, const char *path, kvs_error *err) {
    atomic_file af;
    const int rc = atomic_open(&af, path, err);
    if (rc) return rc;
    FILE *fp = af.f;
    const uint64_t align = 32;
    int bad = wr_u32(fp, GGUF_MAGIC) || wr_u32(fp, 3) || wr_u64(fp, (uint64_t)w->n_t) ||
              wr_u64(fp, (uint64_t)w->n_kv);
    for (int i = 0; i < w->n_kv && !bad; i++) {
        const wkv *k = &w->kv[i];
        bad = wr_str(fp, k->key) || wr_u32(fp, k->type) ||
              (k->type == GGUF_STR ? wr_str(fp, k->str) : wr(fp, &k->raw, gguf_scalar_size(k->type)));
    }
    uint64_t off = 0;
    for (int i = 0; i < w->n_t && !bad; i++) {
        const wtensor *t = &w->t[i];
        bad = wr_str(fp, t->name) || wr_u32(fp, (uint32_t)t->n_dims);
        for (int d = 0; d < t->n_dims && !bad; d++) bad = wr_u64(fp, t->ne[d]);
        bad = bad || wr_u32(fp, 0 /* F32 */) || wr_u64(fp, off);
        off += (t->n * 4 + align - 1) / align * align;
    }
    static const uint8_t zeros[32];
    long pos = bad ? 0 : ftell(fp);
    if (!bad && pos % (long)align) bad = wr(fp, zeros, align - (uint64_t)pos % align);
    for (int i = 0; i < w->n_t && !bad; i++) {
        const wtensor *t = &w->t[i];
        uint64_t nb = t->n * 4;
        bad = wr(fp, t->data, nb);
        if (!bad && nb % align) bad = wr(fp, zeros, align - nb % align);
    }
    return atomic_commit(&af, bad, err);
}
