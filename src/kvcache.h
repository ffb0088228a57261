/* kvcache.h - per-layer, per-sequence key/value storage.
 *
 * Layout [layer][seq][pos][n_head_kv * head_dim], float32, so one sequence's
 * keys for one layer are contiguous for the attention loop, and a steering edit
 * is one contiguous add.  Memory comes from calloc: positions a sequence never
 * reaches are never touched, so they cost no resident memory. */
#ifndef KVS_KVCACHE_H
#define KVS_KVCACHE_H
#include <stddef.h>

typedef struct kv_cache {
    int n_layer, n_seq, n_ctx, kv_dim;
    float *k, *v;
    int *len; /* cached positions per sequence */
} kv_cache;

int kv_cache_init(kv_cache *c, int n_layer, int n_seq, int n_ctx, int kv_dim);
void kv_cache_free(kv_cache *c);

static inline size_t kv_index(const kv_cache *c, int layer, int seq, int pos) {
    return (((size_t)layer * (size_t)c->n_seq + (size_t)seq) * (size_t)c->n_ctx + (size_t)pos) * (size_t)c->kv_dim;
}

#endif
