/* vecfile.c - the steering vector file: kvsteer's own format (GGUF,
 * docs/VECTOR_FORMAT.md) and llama.cpp's control vectors, read and written,
 * checked against the model they are for. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/error.h"
#include "engine/gguf.h"
#include "steer.h"

int kvs_steer_save_controlvector(const kvs_steer *s, const char *path, int layer_from, int layer_to,
                                 kvs_error *err) {
    err_clear(err);
    if (s->kind != KVS_STEER_ACT)
        return err_fail(err, KVS_E_ARG, "%s: only activation vectors can be written as a control vector", path);
    const int to = layer_to < 0 ? s->n_layer - 1 : layer_to;
    if (layer_from < 1)
        return err_fail(err, KVS_E_ARG,
                        "%s: layer %d cannot be stored in a control vector (llama.cpp's layers start at 1)", path,
                        layer_from);
    if (layer_from > to || to >= s->n_layer)
        return err_fail(err, KVS_E_ARG, "%s: layer range %d-%d is outside 1-%d", path, layer_from, layer_to,
                        s->n_layer - 1);
    int n = 0;
    for (int l = layer_from; l <= to; l++) n += s->act[l] != NULL;
    if (n == 0) return err_fail(err, KVS_E_ARG, "%s: no vectors in layers %d-%d", path, layer_from, to);
    gguf_writer *w = gguf_writer_new();
    if (!w) return err_fail(err, KVS_E_NOMEM, "%s: out of memory", path);
    /* the keys llama.cpp's cvector-generator writes: the hint is the architecture,
     * layer_count the number of tensors (not the model's layers) */
    int bad = gguf_writer_add_str(w, "general.architecture", "controlvector") ||
              gguf_writer_add_str(w, "controlvector.model_hint", s->arch) ||
              gguf_writer_add_i32(w, "controlvector.layer_count", n);
    for (int i = 0; i < s->n_meta && !bad; i++)
        if (!strncmp(s->meta_key[i], "kvsteer.extract.", 16)) bad = gguf_writer_add_str(w, s->meta_key[i], s->meta_val[i]);
    char name[64];
    for (int l = layer_from; l <= to && !bad; l++) {
        if (!s->act[l]) continue;
        uint64_t ne[1] = {(uint64_t)s->n_embd};
        snprintf(name, sizeof name, "direction.%d", l);
        bad = gguf_writer_add_tensor_f32(w, name, 1, ne, s->act[l]);
    }
    int rc = bad ? err_fail(err, KVS_E_NOMEM, "%s: out of memory", path) : gguf_writer_save(w, path, err);
    gguf_writer_free(w);
    return rc;
}

int kvs_steer_save(const kvs_steer *s, const char *path, kvs_error *err) {
    if (s->format == KVS_FORMAT_CONTROLVECTOR) return kvs_steer_save_controlvector(s, path, 1, -1, err);
    gguf_writer *w = gguf_writer_new();
    if (!w) return err_fail(err, KVS_E_NOMEM, "%s: out of memory", path);
    int bad = gguf_writer_add_str(w, "general.architecture", "kvsteer-vector") ||
              gguf_writer_add_u32(w, "kvsteer.format_version", STEER_FORMAT_VERSION) ||
              gguf_writer_add_str(w, "kvsteer.kind", s->kind == KVS_STEER_CACHE ? "cache" : "act") ||
              gguf_writer_add_str(w, "kvsteer.model.architecture", s->arch) ||
              gguf_writer_add_u32(w, "kvsteer.model.block_count", (uint32_t)s->n_layer) ||
              gguf_writer_add_u32(w, "kvsteer.model.head_count_kv", (uint32_t)s->n_head_kv) ||
              gguf_writer_add_u32(w, "kvsteer.model.head_dim", (uint32_t)s->head_dim) ||
              gguf_writer_add_u32(w, "kvsteer.model.embedding_length", (uint32_t)s->n_embd) ||
              gguf_writer_add_u64(w, "kvsteer.model.tokenizer_hash", s->tokenizer_hash);
    for (int i = 0; i < s->n_meta && !bad; i++) bad = gguf_writer_add_str(w, s->meta_key[i], s->meta_val[i]);
    char name[64];
    for (int l = 0; l < s->n_layer && !bad; l++) {
        if (s->kind == KVS_STEER_CACHE) {
            uint64_t ne[2] = {(uint64_t)s->head_dim, (uint64_t)s->n_head_kv};
            snprintf(name, sizeof name, "steer.k.%d", l);
            bad = gguf_writer_add_tensor_f32(w, name, 2, ne, s->k[l]);
            snprintf(name, sizeof name, "steer.v.%d", l);
            bad = bad || gguf_writer_add_tensor_f32(w, name, 2, ne, s->v[l]);
        } else {
            uint64_t ne[1] = {(uint64_t)s->n_embd};
            snprintf(name, sizeof name, "steer.act.%d", l);
            bad = gguf_writer_add_tensor_f32(w, name, 1, ne, s->act[l]);
        }
    }
    int rc = bad ? err_fail(err, KVS_E_NOMEM, "%s: out of memory", path) : gguf_writer_save(w, path, err);
    gguf_writer_free(w);
    return rc;
}

static int meta_u32(const gguf_file *f, const char *path, const char *key, int *out, kvs_error *err) {
    int64_t v;
    if (gguf_get_i64(f, key, &v) || v < 1 || v > (1 << 20))
        return err_fail(err, KVS_E_FORMAT,
                        "%s: not a kvsteer vector file (missing or bad '%s') nor a llama.cpp control vector", path, key);
    *out = (int)v;
    return 0;
}

/* Copies a tensor into dst after checking its shape and type. */
static int read_vec(const gguf_file *f, const char *path, const char *name, uint64_t ne0, uint64_t ne1, float *dst,
                    kvs_error *err) {
    const gguf_tensor *t = gguf_find_tensor(f, name);
    if (!t) return err_fail(err, KVS_E_FORMAT, "%s: missing tensor '%s'", path, name);
    if (t->type != 0 || t->ne[0] != ne0 || t->ne[1] != ne1 || t->ne[2] != 1 || t->ne[3] != 1)
        return err_fail(err, KVS_E_MISMATCH, "%s: tensor '%s' is not F32 of shape [%llu, %llu]", path, name,
                        (unsigned long long)ne0, (unsigned long long)ne1);
    memcpy(dst, t->data, sizeof(float) * ne0 * ne1);
    for (uint64_t i = 0; i < ne0 * ne1; i++)
        if (steer_bad_float(dst[i]))
            return err_fail(err, KVS_E_FORMAT, "%s: tensor '%s' holds non-finite values", path, name);
    return 0;
}

/* Keeps the file's kvsteer.extract.* strings (a control vector written by kvsteer has them too). */
static int copy_extract_meta(const gguf_file *f, kvs_steer *s) {
    for (uint64_t i = 0; i < f->n_kv; i++) {
        const gguf_kv *kv = &f->kv[i];
        if (kv->type == GGUF_STR && !strncmp(kv->key, "kvsteer.extract.", 16)) {
            char *val = strndup(kv->strs[0].p, kv->strs[0].n);
            int bad = !val || steer_set_meta(s, kv->key, val);
            free(val);
            if (bad) return KVS_E_NOMEM;
        }
    }
    return 0;
}

/* The layer of a tensor named "direction.<digits>", or -1. */
static long direction_layer(const char *name) {
    if (strncmp(name, "direction.", 10) || !name[10]) return -1;
    long l = 0;
    for (const char *p = name + 10; *p; p++) {
        if (*p < '0' || *p > '9' || l > (1 << 20)) return -1;
        l = l * 10 + (*p - '0');
    }
    return l;
}

/* A llama.cpp control vector: direction.<l> is added to the output of layer l
 * (blocks counted from 0, so layer 0 never has one); tensors naming the same
 * layer add up, as in llama.cpp's loader.  llama.cpp skips layers the model
 * lacks without a word; here they are an error, since such a file was made for
 * another model. */
static kvs_steer *load_controlvector(gguf_file *f, const char *path, const kvs_model *m, kvs_error *err) {
    kvs_model_info mi = {0};
    if (m) kvs_model_get_info(m, &mi);
    gguf_str hint = {0};
    char hint_s[64] = "";
    if (!gguf_get_str(f, "controlvector.model_hint", &hint))
        snprintf(hint_s, sizeof hint_s, "%.*s", (int)(hint.n > 63 ? 63 : hint.n), hint.p);
    if (f->n_tensors == 0) {
        err_fail(err, KVS_E_FORMAT, "%s: control vector holds no direction tensors", path);
        return NULL;
    }
    long max_layer = 0;
    uint64_t width = 0;
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        const gguf_tensor *t = &f->tensors[i];
        const long l = direction_layer(t->name);
        if (l < 0) {
            err_fail(err, KVS_E_FORMAT, "%s: tensor '%.64s' is not named direction.<layer>", path, t->name);
            return NULL;
        }
        if (l == 0) {
            err_fail(err, KVS_E_FORMAT, "%s: tensor 'direction.0': control-vector layers start at 1", path);
            return NULL;
        }
        if (t->type != 0 || t->n_dims != 1) {
            err_fail(err, KVS_E_FORMAT, "%s: tensor '%s' is not a 1-D F32 tensor", path, t->name);
            return NULL;
        }
        if (width && t->ne[0] != width) {
            err_fail(err, KVS_E_FORMAT, "%s: tensor '%s' has %llu values, an earlier one %llu", path, t->name,
                     (unsigned long long)t->ne[0], (unsigned long long)width);
            return NULL;
        }
        width = t->ne[0];
        if (m && t->ne[0] != (uint64_t)mi.n_embd) {
            err_fail(err, KVS_E_MISMATCH,
                     "%s: control vector for another model: %llu values per layer, this model's width is %d%s%s%s",
                     path, (unsigned long long)t->ne[0], mi.n_embd, hint_s[0] ? " (made for '" : "", hint_s,
                     hint_s[0] ? "')" : "");
            return NULL;
        }
        if (m && l >= mi.n_layer) {
            err_fail(err, KVS_E_MISMATCH,
                     "%s: control vector for another model: tensor '%s' is for layer %ld, this model has layers 1-%d",
                     path, t->name, l, mi.n_layer - 1);
            return NULL;
        }
        if (l > max_layer) max_layer = l;
    }
    if (width < 1 || width > (1 << 20)) {
        err_fail(err, KVS_E_FORMAT, "%s: direction tensors of %llu values", path, (unsigned long long)width);
        return NULL;
    }
    const int n_layer = m ? mi.n_layer : (int)max_layer + 1;
    kvs_steer *s = steer_shell(KVS_STEER_ACT, m ? mi.arch : hint_s, n_layer, mi.n_head_kv, mi.head_dim, (int)width,
                               mi.tokenizer_hash);
    if (!s || !(s->act = calloc((size_t)n_layer, sizeof *s->act))) goto nomem;
    s->format = KVS_FORMAT_CONTROLVECTOR;
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        const gguf_tensor *t = &f->tensors[i];
        const long l = direction_layer(t->name);
        if (!s->act[l] && !(s->act[l] = calloc(width, sizeof(float)))) goto nomem;
        for (uint64_t j = 0; j < width; j++) {
            float x;
            memcpy(&x, (const char *)t->data + j * sizeof x, sizeof x);
            if (steer_bad_float(x)) {
                err_fail(err, KVS_E_FORMAT, "%s: tensor '%s' holds non-finite values", path, t->name);
                kvs_steer_free(s);
                return NULL;
            }
            s->act[l][j] += x;
        }
    }
    if ((hint_s[0] && steer_set_meta(s, "controlvector.model_hint", hint_s)) || copy_extract_meta(f, s)) goto nomem;
    return s;
nomem:
    kvs_steer_free(s);
    err_fail(err, KVS_E_NOMEM, "%s: out of memory", path);
    return NULL;
}

kvs_steer *kvs_steer_load(const char *path, const kvs_model *m, kvs_error *err) {
    err_clear(err);
    gguf_file *f = gguf_open(path, err);
    if (!f) return NULL;
    gguf_str gen_arch;
    if (!gguf_get_str(f, "general.architecture", &gen_arch) && gen_arch.n == 13 &&
        !memcmp(gen_arch.p, "controlvector", 13)) {
        kvs_steer *cv = load_controlvector(f, path, m, err);
        gguf_close(f);
        return cv;
    }
    kvs_steer *s = NULL;
    gguf_str kind, arch;
    int version = 0, n_layer = 0, n_head_kv = 0, head_dim = 0, n_embd = 0;
    uint64_t hash = 0;
    if (meta_u32(f, path, "kvsteer.format_version", &version, err)) goto fail;
    if (version != STEER_FORMAT_VERSION) {
        err_fail(err, KVS_E_UNSUPPORTED, "%s: vector format version %d; this kvsteer reads version %d", path, version,
                 STEER_FORMAT_VERSION);
        goto fail;
    }
    if (gguf_get_str(f, "kvsteer.kind", &kind) || gguf_get_str(f, "kvsteer.model.architecture", &arch) ||
        meta_u32(f, path, "kvsteer.model.block_count", &n_layer, err) ||
        meta_u32(f, path, "kvsteer.model.head_count_kv", &n_head_kv, err) ||
        meta_u32(f, path, "kvsteer.model.head_dim", &head_dim, err) ||
        meta_u32(f, path, "kvsteer.model.embedding_length", &n_embd, err) ||
        gguf_get_u64(f, "kvsteer.model.tokenizer_hash", &hash)) {
        if (!err || !err->msg[0] || err->code == 0)
            err_fail(err, KVS_E_FORMAT, "%s: not a kvsteer vector file (missing model metadata)", path);
        goto fail;
    }
    kvs_steer_kind k;
    if (kind.n == 5 && !memcmp(kind.p, "cache", 5)) k = KVS_STEER_CACHE;
    else if (kind.n == 3 && !memcmp(kind.p, "act", 3)) k = KVS_STEER_ACT;
    else {
        err_fail(err, KVS_E_FORMAT, "%s: unknown vector kind '%.*s'", path, (int)(kind.n > 32 ? 32 : kind.n), kind.p);
        goto fail;
    }
    char arch_s[64];
    snprintf(arch_s, sizeof arch_s, "%.*s", (int)(arch.n > 63 ? 63 : arch.n), arch.p);
    if (m) {
        kvs_model_info mi;
        kvs_model_get_info(m, &mi);
        if (strcmp(arch_s, mi.arch) || n_layer != mi.n_layer || n_head_kv != mi.n_head_kv || head_dim != mi.head_dim ||
            n_embd != mi.n_embd) {
            err_fail(err, KVS_E_MISMATCH,
                     "%s: vectors were built for another model (%s, %d layers, %d KV heads x %d, width %d; this model: "
                     "%s, %d layers, %d KV heads x %d, width %d)",
                     path, arch_s, n_layer, n_head_kv, head_dim, n_embd, mi.arch, mi.n_layer, mi.n_head_kv,
                     mi.head_dim, mi.n_embd);
            goto fail;
        }
        if (hash != mi.tokenizer_hash) {
            err_fail(err, KVS_E_MISMATCH, "%s: vectors were built with another tokenizer (fingerprint %016llx, model %016llx)",
                     path, (unsigned long long)hash, (unsigned long long)mi.tokenizer_hash);
            goto fail;
        }
    }
    if (!(s = steer_shell(k, arch_s, n_layer, n_head_kv, head_dim, n_embd, hash))) goto nomem;
    char name[64];
    if (k == KVS_STEER_CACHE) {
        if (!(s->k = steer_new_vecs(n_layer, s->dim)) || !(s->v = steer_new_vecs(n_layer, s->dim))) goto nomem;
        for (int l = 0; l < n_layer; l++) {
            snprintf(name, sizeof name, "steer.k.%d", l);
            if (read_vec(f, path, name, (uint64_t)head_dim, (uint64_t)n_head_kv, s->k[l], err)) goto fail;
            snprintf(name, sizeof name, "steer.v.%d", l);
            if (read_vec(f, path, name, (uint64_t)head_dim, (uint64_t)n_head_kv, s->v[l], err)) goto fail;
        }
    } else {
        if (!(s->act = steer_new_vecs(n_layer, s->dim))) goto nomem;
        for (int l = 0; l < n_layer; l++) {
            snprintf(name, sizeof name, "steer.act.%d", l);
            if (read_vec(f, path, name, (uint64_t)n_embd, 1, s->act[l], err)) goto fail;
        }
    }
    if (copy_extract_meta(f, s)) goto nomem;
    gguf_close(f);
    return s;
nomem:
    err_fail(err, KVS_E_NOMEM, "%s: out of memory", path);
fail:
    kvs_steer_free(s);
    gguf_close(f);
    return NULL;
}
