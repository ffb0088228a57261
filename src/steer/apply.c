/* apply.c - applying steering vectors: the one-shot cache edit and the
 * activation-steering hook (kvsteer.h). */
#include "engine/error.h"
#include "engine/forward.h"
#include "steer.h"

static int check_layers(const kvs_steer *s, const kvs_steer_params *p, int *from, int *to, kvs_error *err) {
    *from = p->layer_from;
    *to = p->layer_to < 0 ? s->n_layer - 1 : p->layer_to;
    if (*from < 0 || *from > *to || *to >= s->n_layer)
        return err_fail(err, KVS_E_ARG, "steering: layer range %d-%d is outside 0-%d", p->layer_from, p->layer_to,
                        s->n_layer - 1);
    return 0;
}

int kvs_steer_apply_cache(kvs_ctx *c, int seq, int pos, const kvs_steer *s, const kvs_steer_params *p,
                          kvs_error *err) {
    if (s->kind != KVS_STEER_CACHE)
        return err_fail(err, KVS_E_ARG, "steering: these are activation vectors, not cache vectors");
    int from, to, rc;
    if ((rc = check_layers(s, p, &from, &to, err))) return rc;
    if (s->n_layer != c->model->hp.n_layer || s->dim != c->cache.kv_dim)
        return err_fail(err, KVS_E_MISMATCH, "steering: vectors do not fit this model's cache");
    for (int l = from; l <= to; l++) {
        /* a zero coefficient adds nothing: skip it so c = 0 is bit-identical */
        if (p->ck != 0.0f && (rc = kvs_cache_add(c, seq, pos, l, KVS_K, s->k[l], p->ck, err))) return rc;
        if (p->cv != 0.0f && (rc = kvs_cache_add(c, seq, pos, l, KVS_V, s->v[l], p->cv, err))) return rc;
    }
    return 0;
}

int kvs_steer_apply_act(kvs_ctx *c, int seq, const kvs_steer *s, int layer, float scale, kvs_error *err) {
    if (s->kind != KVS_STEER_ACT)
        return err_fail(err, KVS_E_ARG, "steering: these are cache vectors, not activation vectors");
    /* a control vector loaded without a model knows only its highest layer */
    if ((s->format == KVS_FORMAT_KVSTEER ? s->n_layer != c->model->hp.n_layer : s->n_layer > c->model->hp.n_layer) ||
        s->dim != c->model->hp.n_embd)
        return err_fail(err, KVS_E_MISMATCH, "steering: vectors do not fit this model");
    if (layer < -1 || layer >= s->n_layer)
        return err_fail(err, KVS_E_ARG, "steering: activation layer %d is outside 0-%d", layer, s->n_layer - 1);
    if (layer >= 0 && !s->act[layer])
        return err_fail(err, KVS_E_ARG, "steering: the vectors hold none for layer %d", layer);
    for (int l = layer < 0 ? 0 : layer; l <= (layer < 0 ? s->n_layer - 1 : layer); l++) {
        int rc;
        if (s->act[l] && (rc = kvs_set_residual_add(c, seq, l, s->act[l], scale, err))) return rc;
    }
    return 0;
}
