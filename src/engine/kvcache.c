#include "kvcache.h"

#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "forward.h"
#include "ggtype.h"
#include "half.h"
#include "quant.h"

static size_t elt_size(const kv_cache *c) { return c->f16 ? sizeof(uint16_t) : sizeof(float); }

int kv_cache_init(kv_cache *c, int n_layer, int n_seq, int n_ctx, int kv_dim, int f16) {
    memset(c, 0, sizeof *c);
    c->f16 = f16 != 0;
    size_t n = (size_t)n_layer * (size_t)n_seq * (size_t)n_ctx * (size_t)kv_dim;
    c->k = calloc(n, elt_size(c));
    c->v = calloc(n, elt_size(c));
    c->len = calloc((size_t)n_seq, sizeof(int));
    if (!c->k || !c->v || !c->len) {
        kv_cache_free(c);
        return KVS_E_NOMEM;
    }
    c->n_layer = n_layer;
    c->n_seq = n_seq;
    c->n_ctx = n_ctx;
    c->kv_dim = kv_dim;
    return 0;
}

/* Address of element i of the keys (which 0) or values. */
static void *elt(const kv_cache *c, int which, size_t i) {
    return (char *)(which ? c->v : c->k) + i * elt_size(c);
}

static void put_row(const kv_cache *c, int which, size_t at, const float *x) {
    if (!c->f16) {
        memcpy(elt(c, which, at), x, sizeof(float) * (size_t)c->kv_dim);
        return;
    }
    uint16_t *h = elt(c, which, at);
    for (int i = 0; i < c->kv_dim; i++) h[i] = f32_to_f16(x[i]);
}

static void get_row(const kv_cache *c, int which, size_t at, float *out, int n) {
    quant_to_float(c->f16 ? GGT_F16 : GGT_F32, elt(c, which, at), out, n);
}

void kv_store(kv_cache *c, int layer, int seq, int pos, const float *k, const float *v) {
    const size_t at = kv_index(c, layer, seq, pos);
    put_row(c, 0, at, k);
    put_row(c, 1, at, v);
}

void kv_load_rows(const kv_cache *c, int which, int layer, int seq, int pos0, int pos1, int col, int ncol,
                  float *dst) {
    for (int p = pos0; p < pos1; p++)
        get_row(c, which, kv_index(c, layer, seq, p) + (size_t)col, dst + (size_t)p * (size_t)ncol, ncol);
}

void kv_cache_free(kv_cache *c) {
    free(c->k);
    free(c->v);
    free(c->len);
    memset(c, 0, sizeof *c);
}

static int check_entry(const kvs_ctx *ctx, int seq, int pos, int layer, kvs_kv which, kvs_error *err) {
    const kv_cache *c = &ctx->cache;
    if (seq < 0 || seq >= c->n_seq)
        return err_fail(err, KVS_E_RANGE, "cache: sequence %d out of range [0, %d)", seq, c->n_seq);
    if (layer < 0 || layer >= c->n_layer)
        return err_fail(err, KVS_E_RANGE, "cache: layer %d out of range [0, %d)", layer, c->n_layer);
    if (pos < 0 || pos >= c->len[seq])
        return err_fail(err, KVS_E_RANGE, "cache: position %d not cached for sequence %d (length %d)", pos, seq,
                        c->len[seq]);
    if (which != KVS_K && which != KVS_V) return err_fail(err, KVS_E_ARG, "cache: which must be KVS_K or KVS_V");
    return 0;
}

int kvs_cache_read(const kvs_ctx *ctx, int seq, int pos, int layer, kvs_kv which, float *out, kvs_error *err) {
    int rc = check_entry(ctx, seq, pos, layer, which, err);
    if (rc) return rc;
    const kv_cache *c = &ctx->cache;
    get_row(c, which == KVS_V, kv_index(c, layer, seq, pos), out, c->kv_dim);
    return 0;
}

int kvs_cache_add(kvs_ctx *ctx, int seq, int pos, int layer, kvs_kv which, const float *delta, float scale,
                  kvs_error *err) {
    int rc = check_entry(ctx, seq, pos, layer, which, err);
    if (rc) return rc;
    kv_cache *c = &ctx->cache;
    const size_t at = kv_index(c, layer, seq, pos);
    if (!c->f16) {
        float *e = elt(c, which == KVS_V, at);
        for (int i = 0; i < c->kv_dim; i++) e[i] += scale * delta[i];
        return 0;
    }
    /* a half entry: the sum is formed in float and rounded once */
    uint16_t *h = elt(c, which == KVS_V, at);
    for (int i = 0; i < c->kv_dim; i++) h[i] = f32_to_f16(f16_to_f32(h[i]) + scale * delta[i]);
    return 0;
}

int kvs_seq_len(const kvs_ctx *ctx, int seq) {
    return seq >= 0 && seq < ctx->cache.n_seq ? ctx->cache.len[seq] : -1;
}

int kvs_seq_truncate(kvs_ctx *ctx, int seq, int from, kvs_error *err) {
    kv_cache *c = &ctx->cache;
    if (seq < 0 || seq >= c->n_seq)
        return err_fail(err, KVS_E_RANGE, "cache: sequence %d out of range [0, %d)", seq, c->n_seq);
    if (from < 0) return err_fail(err, KVS_E_RANGE, "cache: negative truncation position %d", from);
    if (from < c->len[seq]) c->len[seq] = from;
    return 0;
}

int kvs_seq_copy(kvs_ctx *ctx, int src, int dst, int n, kvs_error *err) {
    kv_cache *c = &ctx->cache;
    if (src < 0 || src >= c->n_seq || dst < 0 || dst >= c->n_seq)
        return err_fail(err, KVS_E_RANGE, "cache: copy between sequences %d and %d, out of range [0, %d)", src, dst,
                        c->n_seq);
    if (n < 0 || n > c->len[src])
        return err_fail(err, KVS_E_RANGE, "cache: cannot copy %d positions of sequence %d (length %d)", n, src,
                        c->len[src]);
    if (src != dst)
        for (int l = 0; l < c->n_layer; l++) {
            const size_t bytes = elt_size(c) * (size_t)n * (size_t)c->kv_dim;
            for (int w = 0; w < 2; w++) memcpy(elt(c, w, kv_index(c, l, dst, 0)), elt(c, w, kv_index(c, l, src, 0)), bytes);
        }
    c->len[dst] = n;
    return 0;
}
