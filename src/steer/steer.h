/* steer.h - steering vector sets: construction (for extraction) and file I/O.
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
