/* steer.h - steering vector sets: construction (for extraction, steer.c) and
 * the vector file (vecfile.c).
 * The public half of the API is in kvsteer.h. */
#ifndef KVS_STEER_H
#define KVS_STEER_H
#include "kvsteer.h"

#define STEER_FORMAT_VERSION 1

struct kvs_steer {
    kvs_steer_kind kind;
    kvs_steer_format format; /* the file format it came from; kvs_steer_save keeps it */
    char *arch;
    int n_layer, n_head_kv, head_dim, n_embd;
    uint64_t tokenizer_hash;
    int dim;       /* floats per vector: n_head_kv*head_dim (cache) or n_embd (act) */
    float **k, **v; /* cache kind: n_layer vectors each (NULL where absent) */
    float **act;    /* act kind: n_layer vectors (NULL where a control vector has none) */
    int n_meta;
    char **meta_key, **meta_val;
};

/* What a vector may not hold: NaN, infinities and magnitudes no real model
 * produces (the file loaders and kvs_steer_from_floats share the rule, so a set
 * that was accepted can be saved and loaded again). */
static inline int steer_bad_float(float x) { return x != x || x > 1e30f || x < -1e30f; }

/* A set's shape and identity, without vectors (NULL when out of memory). */
kvs_steer *steer_shell(kvs_steer_kind kind, const char *arch, int n_layer, int n_head_kv, int head_dim, int n_embd,
                       uint64_t tokenizer_hash);
/* n_layer zeroed vectors of dim floats (NULL when out of memory). */
float **steer_new_vecs(int n_layer, int dim);
/* An all-zero set shaped for model m. */
kvs_steer *steer_new(const kvs_model *m, kvs_steer_kind kind, kvs_error *err);
/* A control set with the shape, metadata and per-layer norms of src (each
 * layer's K and V vector, or act vector, keeps its L2 norm) and random
 * directions: Gaussian entries from `seed` (splitmix64 + Box-Muller, the same
 * on every machine), rescaled.  A layer whose vector is zero stays zero. */
kvs_steer *steer_random_like(const kvs_steer *src, uint64_t seed, kvs_error *err);
/* Record an extraction setting (copied); later values for a key replace earlier. */
int steer_set_meta(kvs_steer *s, const char *key, const char *val);

#endif
