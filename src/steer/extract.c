/* extract.c - steering vectors as the mean of differences over contrastive pairs. */
#include <stdlib.h>
#include <string.h>

#include "engine/error.h"
#include "engine/forward.h"
#include "steer.h"

typedef struct prompt {
    kvs_token *t;
    int n;
} prompt;

static int tokenize_all(const kvs_model *m, const char *const *texts, int n, prompt *out, int *max_len,
                        kvs_error *err) {
    for (int i = 0; i < n; i++) {
        int k = 0;
        kvs_error e = {0}; /* err may be NULL; the code is returned either way */
        if (!(out[i].t = kvs_tokenize_alloc(m, texts[i], strlen(texts[i]), -1, 1, 0, &k, &e))) {
            if (err) *err = e;
            return e.code;
        }
        out[i].n = k;
        if (k > *max_len) *max_len = k;
    }
    return 0;
}

kvs_steer *kvs_steer_extract(const kvs_model *m, const char *const *pos, const char *const *neg, int n_pairs,
                             const kvs_extract_params *p, kvs_error *err) {
    err_clear(err);
    if (n_pairs < 1 || !pos || !neg || !p) return err_fail(err, KVS_E_ARG, "extract: no pairs"), NULL;
    if (p->position < 0) return err_fail(err, KVS_E_ARG, "extract: position must be 0 (last) or more"), NULL;
    const hparams *hp = &m->hp;
    const int G = p->pairs_per_batch > 0 ? p->pairs_per_batch : 4;
    prompt *pp = calloc((size_t)n_pairs * 2, sizeof *pp);
    kvs_steer *s = NULL;
    kvs_ctx *c = NULL;
    double *acc_k = NULL, *acc_v = NULL;
    kvs_token *bt = NULL;
    int32_t *bpos = NULL, *bseq = NULL;
    int8_t *want = NULL;
    float *tmp = NULL;
    int max_len = 0, ok = 0;
    if (!pp) goto nomem;
    if (tokenize_all(m, pos, n_pairs, pp, &max_len, err) || tokenize_all(m, neg, n_pairs, pp + n_pairs, &max_len, err))
        goto fail;
    for (int i = 0; i < 2 * n_pairs; i++)
        if (pp[i].n <= p->position) {
            err_fail(err, KVS_E_ARG, "extract: %s prompt of pair %d has %d tokens, too short for position %d",
                     i < n_pairs ? "positive" : "negative", i % n_pairs, pp[i].n, p->position);
            goto fail;
        }
    kvs_ctx_params cp = kvs_ctx_default_params();
    cp.n_ctx = max_len + 1;
    cp.n_seq = 2 * G;
    cp.n_threads = p->n_threads;
    if (max_len > hp->n_ctx_train) {
        err_fail(err, KVS_E_RANGE, "extract: a prompt of %d tokens exceeds the model's context (%d); use fewer shots",
                 max_len, hp->n_ctx_train);
        goto fail;
    }
    if (!(c = kvs_ctx_new(m, &cp, err))) goto fail;
    if (!(s = steer_new(m, p->kind, err))) goto fail;
    const int dim = s->dim;
    acc_k = calloc((size_t)hp->n_layer * dim, sizeof(double));
    acc_v = calloc((size_t)hp->n_layer * dim, sizeof(double));
    tmp = malloc(sizeof(float) * (size_t)dim);
    size_t cap = (size_t)2 * G * (size_t)max_len;
    bt = malloc(sizeof *bt * cap);
    bpos = malloc(sizeof *bpos * cap);
    bseq = malloc(sizeof *bseq * cap);
    want = malloc(cap);
    if (!acc_k || !acc_v || !tmp || !bt || !bpos || !bseq || !want) goto nomem;
    if (p->kind == KVS_STEER_ACT) kvs_set_capture_residual(c, 1);

    for (int g0 = 0; g0 < n_pairs; g0 += G) {
        const int ng = n_pairs - g0 < G ? n_pairs - g0 : G;
        int nb = 0, at[2 * G];
        for (int j = 0; j < 2 * ng; j++) {
            /* sequence 2j' holds positive prompt j', 2j'+1 its negative */
            const prompt *q = &pp[(j % 2 ? n_pairs : 0) + g0 + j / 2];
            kvs_seq_truncate(c, j, 0, NULL);
            for (int t = 0; t < q->n; t++) {
                bt[nb] = q->t[t];
                bpos[nb] = t;
                bseq[nb] = j;
                want[nb] = p->kind == KVS_STEER_ACT && t == q->n - 1 - p->position;
                if (t == q->n - 1 - p->position) at[j] = nb;
                nb++;
            }
        }
        kvs_batch b = {nb, bt, bpos, bseq, want};
        if (kvs_decode(c, &b, err)) goto fail;
        for (int j = 0; j < 2 * ng; j++) {
            const double sign = j % 2 ? -1.0 : 1.0;
            const int t = pp[(j % 2 ? n_pairs : 0) + g0 + j / 2].n - 1 - p->position;
            for (int l = 0; l < hp->n_layer; l++) {
                if (p->kind == KVS_STEER_CACHE) {
                    if (kvs_cache_read(c, j, t, l, KVS_K, tmp, err)) goto fail;
                    for (int d = 0; d < dim; d++) acc_k[(size_t)l * dim + d] += sign * tmp[d];
                    if (kvs_cache_read(c, j, t, l, KVS_V, tmp, err)) goto fail;
                    for (int d = 0; d < dim; d++) acc_v[(size_t)l * dim + d] += sign * tmp[d];
                } else {
                    const float *r = kvs_get_residual(c, at[j], l);
                    for (int d = 0; d < dim; d++) acc_k[(size_t)l * dim + d] += sign * r[d];
                }
            }
        }
        if (p->progress) p->progress(g0 + ng, n_pairs, p->user);
    }
    for (int l = 0; l < hp->n_layer; l++)
        for (int d = 0; d < dim; d++) {
            const size_t i = (size_t)l * dim + d;
            if (p->kind == KVS_STEER_CACHE) {
                s->k[l][d] = (float)(acc_k[i] / n_pairs);
                s->v[l][d] = (float)(acc_v[i] / n_pairs);
            } else {
                s->act[l][d] = (float)(acc_k[i] / n_pairs);
            }
        }
    ok = 1;
    goto fail;
nomem:
    err_fail(err, KVS_E_NOMEM, "extract: out of memory");
fail:
    if (pp)
        for (int i = 0; i < 2 * n_pairs; i++) free(pp[i].t);
    free(pp);
    free(acc_k), free(acc_v), free(tmp), free(bt), free(bpos), free(bseq), free(want);
    kvs_ctx_free(c);
    if (!ok) {
        kvs_steer_free(s);
        return NULL;
    }
    return s;
}
