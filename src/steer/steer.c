/* steer.c - steering vector sets: construction, random controls, metadata;
 * their files are read and written by vecfile.c. */
#include "steer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/error.h"

float **steer_new_vecs(int n_layer, int dim) {
    float **v = calloc((size_t)n_layer, sizeof *v);
    if (!v) return NULL;
    for (int l = 0; l < n_layer; l++)
        if (!(v[l] = calloc((size_t)dim, sizeof(float)))) {
            for (int j = 0; j < l; j++) free(v[j]);
            free(v);
            return NULL;
        }
    return v;
}

static void free_vecs(float **v, int n_layer) {
    if (!v) return;
    for (int l = 0; l < n_layer; l++) free(v[l]);
    free(v);
}

void kvs_steer_free(kvs_steer *s) {
    if (!s) return;
    free_vecs(s->k, s->n_layer);
    free_vecs(s->v, s->n_layer);
    free_vecs(s->act, s->n_layer);
    for (int i = 0; i < s->n_meta; i++) {
        free(s->meta_key[i]);
        free(s->meta_val[i]);
    }
    free(s->meta_key);
    free(s->meta_val);
    free(s->arch);
    free(s);
}

kvs_steer *steer_shell(kvs_steer_kind kind, const char *arch, int n_layer, int n_head_kv, int head_dim,
                        int n_embd, uint64_t hash) {
    kvs_steer *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->kind = kind;
    s->arch = strdup(arch);
    s->n_layer = n_layer;
    s->n_head_kv = n_head_kv;
    s->head_dim = head_dim;
    s->n_embd = n_embd;
    s->tokenizer_hash = hash;
    s->dim = kind == KVS_STEER_CACHE ? n_head_kv * head_dim : n_embd;
    if (!s->arch) {
        free(s);
        return NULL;
    }
    return s;
}

kvs_steer *steer_new(const kvs_model *m, kvs_steer_kind kind, kvs_error *err) {
    kvs_model_info mi;
    kvs_model_get_info(m, &mi);
    kvs_steer *s = steer_shell(kind, mi.arch, mi.n_layer, mi.n_head_kv, mi.head_dim, mi.n_embd, mi.tokenizer_hash);
    if (s) {
        if (kind == KVS_STEER_CACHE) {
            s->k = steer_new_vecs(s->n_layer, s->dim);
            s->v = steer_new_vecs(s->n_layer, s->dim);
            if (s->k && s->v) return s;
        } else if ((s->act = steer_new_vecs(s->n_layer, s->dim))) {
            return s;
        }
    }
    kvs_steer_free(s);
    err_fail(err, KVS_E_NOMEM, "steering vectors: out of memory");
    return NULL;
}

/* "(a, b, c)" for a shape of up to 8 dimensions. */
static void shape_str(char *buf, size_t cap, const int *shape, int ndim) {
    if (!shape || ndim < 0 || ndim > 8) {
        snprintf(buf, cap, "(%d dimensions)", ndim);
        return;
    }
    size_t n = (size_t)snprintf(buf, cap, "(");
    for (int i = 0; i < ndim && n < cap; i++)
        n += (size_t)snprintf(buf + n, cap - n, "%s%d", i ? ", " : "", shape[i]);
    if (n < cap) snprintf(buf + n, cap - n, "%s)", ndim == 1 ? "," : "");
}

kvs_steer *kvs_steer_from_floats(const kvs_model *m, kvs_steer_kind kind, const int *shape, int ndim,
                                 const float *k_or_act, const float *v, kvs_error *err) {
    err_clear(err);
    if (!m || (kind != KVS_STEER_CACHE && kind != KVS_STEER_ACT)) {
        err_fail(err, KVS_E_ARG, "steering vectors: %s", m ? "unknown vector kind" : "no model");
        return NULL;
    }
    const int cache = kind == KVS_STEER_CACHE;
    const char *what = cache ? "cache vectors" : "activation vectors";
    kvs_model_info mi;
    kvs_model_get_info(m, &mi);
    const int want[3] = {mi.n_layer, cache ? mi.n_head_kv : mi.n_embd, mi.head_dim};
    const int want_nd = cache ? 3 : 2;
    int fits = shape && ndim == want_nd;
    for (int i = 0; fits && i < ndim; i++) fits = shape[i] == want[i];
    if (!fits) {
        char have[128], need[64];
        shape_str(have, sizeof have, shape, ndim);
        shape_str(need, sizeof need, want, want_nd);
        err_fail(err, KVS_E_MISMATCH, "%s of shape %s do not fit this model (%s), which needs %s (%s)", what, have,
                 mi.arch, need, cache ? "layers, KV heads, head dim" : "layers, width");
        return NULL;
    }
    if (!k_or_act || (cache && !v)) {
        err_fail(err, KVS_E_ARG, "%s: %s", what, cache ? "both key and value data are needed" : "no data");
        return NULL;
    }
    if (!cache && v) {
        err_fail(err, KVS_E_ARG, "%s: value data is for cache vectors only", what);
        return NULL;
    }
    kvs_steer *s = steer_new(m, kind, err);
    if (!s) return NULL;
    for (int l = 0; l < s->n_layer; l++)
        for (int part = 0; part < (cache ? 2 : 1); part++) {
            const float *src = (part ? v : k_or_act) + (size_t)l * (size_t)s->dim;
            float *dst = cache ? (part ? s->v[l] : s->k[l]) : s->act[l];
            for (int i = 0; i < s->dim; i++)
                if (steer_bad_float(src[i])) {
                    err_fail(err, KVS_E_ARG, "%s: the %s of layer %d holds a non-finite or huge value (%g at %d)",
                             what, cache ? (part ? "value delta" : "key delta") : "delta", l, (double)src[i], i);
                    kvs_steer_free(s);
                    return NULL;
                }
            memcpy(dst, src, sizeof(float) * (size_t)s->dim);
        }
    return s;
}

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* One standard normal draw (Box-Muller; the second value is dropped for simplicity). */
static double gauss(uint64_t *rng) {
    const double u1 = ((double)(splitmix64(rng) >> 11) + 1.0) / 9007199254740993.0; /* (0, 1] */
    const double u2 = (double)(splitmix64(rng) >> 11) / 9007199254740992.0;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

static void random_with_norm(const float *src, float *dst, int n, uint64_t *rng) {
    double want = 0, have = 0;
    for (int i = 0; i < n; i++) want += (double)src[i] * src[i];
    for (int i = 0; i < n; i++) {
        dst[i] = (float)gauss(rng);
        have += (double)dst[i] * dst[i];
    }
    const double k = have > 0 ? sqrt(want / have) : 0.0;
    for (int i = 0; i < n; i++) dst[i] = (float)(dst[i] * k);
}

kvs_steer *steer_random_like(const kvs_steer *src, uint64_t seed, kvs_error *err) {
    kvs_steer *s = steer_shell(src->kind, src->arch, src->n_layer, src->n_head_kv, src->head_dim, src->n_embd,
                               src->tokenizer_hash);
    int ok = s != NULL;
    if (ok && s->kind == KVS_STEER_CACHE) ok = (s->k = steer_new_vecs(s->n_layer, s->dim)) && (s->v = steer_new_vecs(s->n_layer, s->dim));
    else if (ok) ok = (s->act = steer_new_vecs(s->n_layer, s->dim)) != NULL;
    for (int i = 0; ok && i < src->n_meta; i++) ok = !steer_set_meta(s, src->meta_key[i], src->meta_val[i]);
    if (!ok) {
        kvs_steer_free(s);
        err_fail(err, KVS_E_NOMEM, "steering vectors: out of memory");
        return NULL;
    }
    uint64_t rng = seed;
    for (int l = 0; l < s->n_layer; l++) {
        if (s->kind == KVS_STEER_CACHE) {
            random_with_norm(src->k[l], s->k[l], s->dim, &rng);
            random_with_norm(src->v[l], s->v[l], s->dim, &rng);
        } else {
            random_with_norm(src->act[l], s->act[l], s->dim, &rng);
        }
    }
    return s;
}

int steer_set_meta(kvs_steer *s, const char *key, const char *val) {
    for (int i = 0; i < s->n_meta; i++)
        if (!strcmp(s->meta_key[i], key)) {
            char *nv = strdup(val);
            if (!nv) return KVS_E_NOMEM;
            free(s->meta_val[i]);
            s->meta_val[i] = nv;
            return 0;
        }
    char **nk = realloc(s->meta_key, sizeof *nk * (size_t)(s->n_meta + 1));
    if (!nk) return KVS_E_NOMEM;
    s->meta_key = nk;
    char **nv = realloc(s->meta_val, sizeof *nv * (size_t)(s->n_meta + 1));
    if (!nv) return KVS_E_NOMEM;
    s->meta_val = nv;
    if (!(s->meta_key[s->n_meta] = strdup(key)) || !(s->meta_val[s->n_meta] = strdup(val))) {
        free(s->meta_key[s->n_meta]);
        return KVS_E_NOMEM;
    }
    s->n_meta++;
    return 0;
}

int kvs_steer_set_meta(kvs_steer *s, const char *key, const char *value) {
    char full[256];
    if (!key || !value || snprintf(full, sizeof full, "kvsteer.extract.%s", key) >= (int)sizeof full) return KVS_E_ARG;
    return steer_set_meta(s, full, value);
}

kvs_steer_kind kvs_steer_get_kind(const kvs_steer *s) { return s->kind; }

kvs_steer_format kvs_steer_get_format(const kvs_steer *s) { return s->format; }

const float *kvs_steer_vector(const kvs_steer *s, int layer, kvs_kv which) {
    if (layer < 0 || layer >= s->n_layer) return NULL;
    if (s->kind == KVS_STEER_ACT) return s->act[layer];
    return which == KVS_K ? s->k[layer] : s->v[layer];
}

const char *kvs_steer_meta(const kvs_steer *s, const char *key) {
    for (int i = 0; i < s->n_meta; i++)
        if (!strcmp(s->meta_key[i], key)) return s->meta_val[i];
    return NULL;
}

int kvs_steer_meta_count(const kvs_steer *s) { return s ? s->n_meta : 0; }

const char *kvs_steer_meta_key(const kvs_steer *s, int i) {
    return s && i >= 0 && i < s->n_meta ? s->meta_key[i] : NULL;
}

const char *kvs_steer_meta_value(const kvs_steer *s, int i) {
    return s && i >= 0 && i < s->n_meta ? s->meta_val[i] : NULL;
}
