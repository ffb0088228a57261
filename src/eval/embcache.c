/* embcache.c - the question-embedding cache (embcache.h). */
#include "embcache.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "engine/error.h"
#include "engine/fileio.h"
#include "engine/hash.h"
#include "fingerprint.h"
#include "embed.h"

static const char k_magic[8] = {'K', 'V', 'S', 'E', 'M', 'B', 'C', 0};
enum { KEY_MAX = 4096 };

int embcache_default_dir(char *out, size_t cap, kvs_error *err) {
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    int n;
    /* the XDG base-directory rule: a relative XDG_CACHE_HOME is ignored */
    if (xdg && xdg[0] == '/') n = snprintf(out, cap, "%s/kvsteer", xdg);
    else if (home && home[0]) n = snprintf(out, cap, "%s/.cache/kvsteer", home);
    else return err_fail(err, KVS_E_ARG, "embedding cache: neither XDG_CACHE_HOME nor HOME is set");
    if (n < 0 || (size_t)n >= cap) return err_fail(err, KVS_E_ARG, "embedding cache: folder name too long");
    return 0;
}

int embcache_key(const char *model, const char *traces, int dim, char *key, size_t key_cap, kvs_error *err) {
    char fm[17], ft[17];
    if (eval_file_fingerprint(model, fm, err) || eval_file_fingerprint(traces, ft, err)) return err->code;
    /* the kernel set: its rounding order reaches the embeddings' last bits,
     * and a bit-identical result is what makes a cached file safe to use */
    const int n = snprintf(key, key_cap, "model %s; traces %s; recipe %s; kernels %s; dim %d", fm, ft, EMBED_RECIPE,
                           kvs_kernels_name(), dim);
    if (n < 0 || (size_t)n >= key_cap) return err_fail(err, KVS_E_ARG, "embedding cache: key too long");
    return 0;
}

int embcache_path(const char *dir, const char *key, char *out, size_t cap, kvs_error *err) {
    const uint64_t h = fnv1a(FNV1A_INIT, key, strlen(key));
    const int n = snprintf(out, cap, "%s/embed-%016llx.bin", dir, (unsigned long long)h);
    if (n < 0 || (size_t)n >= cap) return err_fail(err, KVS_E_ARG, "%s: embedding cache folder name too long", dir);
    return 0;
}

static void put_u32(unsigned char *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static uint32_t get_u32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

int embcache_read(const char *path, const char *key, int n_rows, int dim, float *emb, uint8_t *have,
                  kvs_error *err) {
    char *buf;
    size_t len;
    if (read_file(path, &buf, &len, err)) return err->code;
    const unsigned char *b = (const unsigned char *)buf;
    const size_t klen = strlen(key);
    int rc = 0;
    size_t at = 0;
    if (len < 12 || memcmp(b, k_magic, sizeof k_magic))
        rc = err_fail(err, KVS_E_FORMAT, "%s: not an embedding cache file", path);
    else if (get_u32(b + 8) != EMBCACHE_VERSION)
        rc = err_fail(err, KVS_E_FORMAT, "%s: format version %u, this kvsteer reads %u", path, get_u32(b + 8),
                      EMBCACHE_VERSION);
    else if (len < 16 || get_u32(b + 12) > KEY_MAX || len < 16 + (size_t)get_u32(b + 12) + 12)
        rc = err_fail(err, KVS_E_FORMAT, "%s: truncated (%zu bytes)", path, len);
    if (!rc) {
        const uint32_t kl = get_u32(b + 12);
        if (kl != klen || memcmp(b + 16, key, klen))
            rc = err_fail(err, KVS_E_MISMATCH, "%s: made for other inputs (%.*s)", path, (int)(kl < 300 ? kl : 300),
                          (const char *)b + 16);
        at = 16 + kl;
    }
    uint32_t rows = 0, d = 0, n_have = 0;
    if (!rc) {
        rows = get_u32(b + at), d = get_u32(b + at + 4), n_have = get_u32(b + at + 8);
        at += 12;
        if (rows != (uint32_t)n_rows || d != (uint32_t)dim)
            rc = err_fail(err, KVS_E_MISMATCH, "%s: holds %u rows of %u floats, expected %d of %d", path, rows, d,
                          n_rows, dim);
        else if (n_have > rows)
            rc = err_fail(err, KVS_E_FORMAT, "%s: claims %u of %u rows", path, n_have, rows);
    }
    /* the exact size, then the checksum, before a single value is used */
    const size_t want = at + rows + (size_t)n_have * (size_t)d * 4 + 8;
    if (!rc && len != want)
        rc = err_fail(err, KVS_E_FORMAT, "%s: %s (%zu bytes, expected %zu)", path, len < want ? "truncated" : "too long",
                      len, want);
    if (!rc) {
        uint64_t sum = 0;
        for (int i = 0; i < 8; i++) sum |= (uint64_t)b[len - 8 + (size_t)i] << (8 * i);
        if (fnv1a(FNV1A_INIT, b, len - 8) != sum) rc = err_fail(err, KVS_E_FORMAT, "%s: checksum mismatch (corrupt)", path);
    }
    uint32_t marked = 0;
    for (uint32_t r = 0; !rc && r < rows; r++) {
        if (b[at + r] > 1) rc = err_fail(err, KVS_E_FORMAT, "%s: bad row mask", path);
        marked += b[at + r];
    }
    if (!rc && marked != n_have) rc = err_fail(err, KVS_E_FORMAT, "%s: row mask counts %u rows, header %u", path, marked, n_have);
    if (!rc) {
        const unsigned char *v = b + at + rows;
        for (uint32_t r = 0; r < rows; r++) {
            if (!b[at + r]) continue;
            float *o = emb + (size_t)r * (size_t)d;
            for (uint32_t k = 0; k < d; k++, v += 4) {
                const uint32_t u = get_u32(v);
                memcpy(&o[k], &u, 4);
            }
            have[r] = 1;
        }
    }
    free(buf);
    return rc;
}

int embcache_write(const char *path, const char *key, int n_rows, int dim, const float *emb,
                   const uint8_t *have, kvs_error *err) {
    const size_t klen = strlen(key);
    uint32_t n_have = 0;
    for (int r = 0; r < n_rows; r++) n_have += have[r] != 0;
    const size_t len = 16 + klen + 12 + (size_t)n_rows + (size_t)n_have * (size_t)dim * 4 + 8;
    unsigned char *b = malloc(len);
    if (!b) return err_fail(err, KVS_E_NOMEM, "%s: out of memory", path);
    memcpy(b, k_magic, sizeof k_magic);
    put_u32(b + 8, EMBCACHE_VERSION);
    put_u32(b + 12, (uint32_t)klen);
    memcpy(b + 16, key, klen);
    size_t at = 16 + klen;
    put_u32(b + at, (uint32_t)n_rows), put_u32(b + at + 4, (uint32_t)dim), put_u32(b + at + 8, n_have);
    at += 12;
    for (int r = 0; r < n_rows; r++) b[at++] = have[r] != 0;
    for (int r = 0; r < n_rows; r++) {
        if (!have[r]) continue;
        for (int k = 0; k < dim; k++, at += 4) {
            uint32_t u;
            memcpy(&u, &emb[(size_t)r * (size_t)dim + (size_t)k], 4);
            put_u32(b + at, u);
        }
    }
    const uint64_t sum = fnv1a(FNV1A_INIT, b, at);
    for (int i = 0; i < 8; i++) b[at++] = (unsigned char)(sum >> (8 * i));
    /* the folder first: a fresh $HOME has no ~/.cache */
    char *dir = strdup(path);
    char *slash = dir ? strrchr(dir, '/') : NULL;
    int rc = dir ? 0 : err_fail(err, KVS_E_NOMEM, "%s: out of memory", path);
    if (slash && slash != dir) {
        *slash = 0;
        rc = make_dirs(dir, err);
    }
    free(dir);
    if (!rc) rc = write_file_atomic(path, (const char *)b, at, err);
    free(b);
    return rc;
}

int embcache_embed_rows(const kvs_model *m, const char *model, const char *traces, const char *const *texts,
                        int n_rows, const int *rows, int n, const char *dir, int n_threads,
                        void (*progress)(int, int, const char *, void *), void *user, float *emb,
                        embcache_outcome *out, kvs_error *err) {
    embcache_outcome local;
    if (!out) out = &local;
    memset(out, 0, sizeof *out);
    kvs_model_info mi;
    kvs_model_get_info(m, &mi);
    const int dim = mi.n_embd;
    char *key = NULL;
    uint8_t *have = NULL;
    int use = dir != NULL, rc = 0;
    if (use && (!model || !traces)) return err_fail(err, KVS_E_ARG, "embedding cache: needs the model's and the traces' files");
    if (use && (!(key = malloc(KEY_MAX)) || !(have = calloc((size_t)n_rows, 1)))) {
        free(key);
        return err_fail(err, KVS_E_NOMEM, "embedding cache: out of memory");
    }
    if (use) {
        kvs_error e = {0};
        /* a file that cannot be fingerprinted here was loaded a moment ago: say so, embed anyway */
        if (embcache_key(model, traces, dim, key, KEY_MAX, &e) || embcache_path(dir, key, out->path, sizeof out->path, &e)) {
            snprintf(out->warning, sizeof out->warning, "embedding cache not used: %s", e.msg);
            use = 0;
        }
    }
    if (use) {
        struct stat st;
        kvs_error e = {0};
        if (stat(out->path, &st) && (errno == ENOENT || errno == ENOTDIR)) out->absent = 1;
        else if (embcache_read(out->path, key, n_rows, dim, emb, have, &e)) snprintf(out->why, sizeof out->why, "%s", e.msg);
    }
    /* the rows still wanted */
    const char **todo = malloc(sizeof *todo * (size_t)(n ? n : 1));
    int *todo_row = malloc(sizeof *todo_row * (size_t)(n ? n : 1));
    float *fresh = NULL;
    int n_todo = 0;
    if (!todo || !todo_row) rc = err_fail(err, KVS_E_NOMEM, "embedding: out of memory");
    for (int j = 0; j < n && !rc; j++)
        if (!have || !have[rows[j]]) todo_row[n_todo] = rows[j], todo[n_todo++] = texts[rows[j]];
    if (!rc && n_todo && !(fresh = malloc(sizeof(float) * (size_t)n_todo * (size_t)dim)))
        rc = err_fail(err, KVS_E_NOMEM, "embedding: out of memory");
    if (!rc && n_todo) rc = embed_texts(m, todo, n_todo, n_threads, fresh, progress, user, err);
    for (int j = 0; j < n_todo && !rc; j++) {
        memcpy(emb + (size_t)todo_row[j] * dim, fresh + (size_t)j * dim, sizeof(float) * (size_t)dim);
        if (have) have[todo_row[j]] = 1;
    }
    if (!rc && use) {
        out->n_computed = n_todo;
        out->n_cached = n - n_todo;
        out->state = n_todo == 0 ? EMBCACHE_HIT : n_todo < n ? EMBCACHE_PARTIAL : EMBCACHE_MISS;
        kvs_error e = {0};
        if (n_todo && embcache_write(out->path, key, n_rows, dim, emb, have, &e))
            snprintf(out->warning, sizeof out->warning, "embedding cache not written: %s", e.msg);
    }
    free(fresh);
    free(todo);
    free(todo_row);
    free(key);
    free(have);
    return rc;
}
