#include "kvcache.h"

#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "forward.h"

int kv_cache_init(kv_cache *c, int n_layer, int n_seq, int n_ctx, int kv_dim) {
    memset(c, 0, sizeof *c);
    size_t n = (size_t)n_layer * (size_t)n_seq * (size_t)n_ctx * (size_t)kv_dim;
    c->k = calloc(n, sizeof(float));
    c->v = calloc(n, sizeof(float));
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

void kv_cache_free(kv_cache *c) {
    free(c->k);
    free(c->v);
    free(c->len);
    memset(c, 0, sizeof *c);
}

static int check_entry(const kvs_ctx *ctx, int seq, int pos, int layer, kvs_kv which, kvs_error *err) {
    const kv_cache *c = &ctx->cache;
    if (seq < 0 || seq >= c->n_seq)
        return kvs_fail(err, KVS_E_RANGE, "cache: sequence %d out of range [0, %d)", seq, c->n_seq);
    if (layer < 0 || layer >= c->n_layer)
        return kvs_fail(err, KVS_E_RANGE, "cache: layer %d out of range [0, %d)", layer, c->n_layer);
    if (pos < 0 || pos >= c->len[seq])
        return kvs_fail(err, KVS_E_RANGE, "cache: position %d not cached for sequence %d (length %d)", pos, seq,
                        c->len[seq]);
    if (which != KVS_K && which != KVS_V) return kvs_fail(err, KVS_E_ARG, "cache: which must be KVS_K or KVS_V");
    return 0;
}

int kvs_cache_read(const kvs_ctx *ctx, int seq, int pos, int layer, kvs_kv which, float *out, kvs_error *err) {
    int rc = check_entry(ctx, seq, pos, layer, which, err);
    if (rc) return rc;
    const kv_cache *c = &ctx->cache;
    memcpy(out, (which == KVS_K ? c->k : c->v) + kv_index(c, layer, seq, pos), sizeof(float) * (size_t)c->kv_dim);
    return 0;
}

int kvs_cache_add(kvs_ctx *ctx, int seq, int pos, int layer, kvs_kv which, const float *delta, float scale,
                  kvs_error *err) {
    int rc = check_entry(ctx, seq, pos, layer, which, err);
    if (rc) return rc;
    kv_cache *c = &ctx->cache;
    float *e = (which == KVS_K ? c->k : c->v) + kv_index(c, layer, seq, pos);
    for (int i = 0; i < c->kv_dim; i++) e[i] += scale * delta[i];
    return 0;
}

int kvs_seq_len(const kvs_ctx *ctx, int seq) {
    return seq >= 0 && seq < ctx->cache.n_seq ? ctx->cache.len[seq] : -1;
}

int kvs_seq_truncate(kvs_ctx *ctx, int seq, int from, kvs_error *err) {
    kv_cache *c = &ctx->cache;
    if (seq < 0 || seq >= c->n_seq)
        return kvs_fail(err, KVS_E_RANGE, "cache: sequence %d out of range [0, %d)", seq, c->n_seq);
    if (from < 0) return kvs_fail(err, KVS_E_RANGE, "cache: negative truncation position %d", from);
    if (from < c->len[seq]) c->len[seq] = from;
    return 0;
}

int kvs_seq_copy(kvs_ctx *ctx, int src, int dst, int n, kvs_error *err) {
    kv_cache *c = &ctx->cache;
    if (src < 0 || src >= c->n_seq || dst < 0 || dst >= c->n_seq)
        return kvs_fail(err, KVS_E_RANGE, "cache: copy between sequences %d and %d, out of range [0, %d)", src, dst,
                        c->n_seq);
    if (n < 0 || n > c->len[src])
        return kvs_fail(err, KVS_E_RANGE, "cache: cannot copy %d positions of sequence %d (length %d)", n, src,
                        c->len[src]);
    if (src != dst)
        for (int l = 0; l < c->n_layer; l++) {
            const size_t bytes = sizeof(float) * (size_t)n * (size_t)c->kv_dim;
            memcpy(c->k + kv_index(c, l, dst, 0), c->k + kv_index(c, l, src, 0), bytes);
            memcpy(c->v + kv_index(c, l, dst, 0), c->v + kv_index(c, l, src, 0), bytes);
        }
    c->len[dst] = n;
    return 0;
}
