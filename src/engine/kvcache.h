/* kvcache.h - per-layer, per-sequence key/value storage.
 *
 * Layout [layer][seq][pos][n_head_kv * head_dim], so one sequence's keys for
 * one layer are contiguous for the attention loop, and a steering edit is one
 * contiguous add.  Entries are float32, or IEEE half when the context asks for
 * it (kvs_ctx_params.kv_f16): batched decoding at long contexts is bound by
 * reading the cache, and half the bytes is half that traffic and memory.
 * Memory comes from calloc: positions a sequence never reaches are never
 * touched, so they cost no resident memory. */
#ifndef KVS_KVCACHE_H
#define KVS_KVCACHE_H
#include <stddef.h>

typedef struct kv_cache {
    int n_layer, n_seq, n_ctx, kv_dim;
    int f16;      /* entries are uint16_t halves instead of floats */
    void *k, *v;  /* float or uint16_t, per f16 */
    int *len;     /* cached positions per sequence */
} kv_cache;

int kv_cache_init(kv_cache *c, int n_layer, int n_seq, int n_ctx, int kv_dim, int f16);
void kv_cache_free(kv_cache *c);

/* Index of the first element of an entry (in elements, not bytes). */
static inline size_t kv_index(const kv_cache *c, int layer, int seq, int pos) {
    return (((size_t)layer * (size_t)c->n_seq + (size_t)seq) * (size_t)c->n_ctx + (size_t)pos) * (size_t)c->kv_dim;
}

/* Write the key and value entry of (layer, seq, pos), rounding to half when the
 * cache stores halves. */
void kv_store(kv_cache *c, int layer, int seq, int pos, const float *k, const float *v);

/* Rows [pos0, pos1) of one sequence and layer, columns [col, col + ncol) of the
 * keys (which 0) or values (which 1), as floats into dst (ncol floats per row,
 * row pos0 at dst + pos0 * ncol): how attention reads a half cache. */
void kv_load_rows(const kv_cache *c, int which, int layer, int seq, int pos0, int pos1, int col, int ncol,
                  float *dst);

#endif
