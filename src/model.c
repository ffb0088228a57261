#include "model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "quant.h"

/* Reads "<arch>.<suffix>" as a positive int within [lo, hi]. */
static int get_int(const kvs_model *m, const char *suffix, int required, int dflt, int lo, int hi, int *out,
                   kvs_error *err) {
    char key[128];
    snprintf(key, sizeof key, "%s.%s", m->hp.arch_name, suffix);
    int64_t v;
    if (!gguf_find(m->file, key)) {
        if (required) return kvs_fail(err, KVS_E_FORMAT, "%s: missing metadata key '%s'", m->path, key);
        *out = dflt;
        return 0;
    }
    if (gguf_get_i64(m->file, key, &v) || v < lo || v > hi)
        return kvs_fail(err, KVS_E_FORMAT, "%s: metadata '%s' is not an integer in [%d, %d]", m->path, key, lo, hi);
    *out = (int)v;
    return 0;
}

static int get_float(const kvs_model *m, const char *suffix, int required, float dflt, float *out, kvs_error *err) {
    char key[128];
    snprintf(key, sizeof key, "%s.%s", m->hp.arch_name, suffix);
    double v;
    if (!gguf_find(m->file, key)) {
        if (required) return kvs_fail(err, KVS_E_FORMAT, "%s: missing metadata key '%s'", m->path, key);
        *out = dflt;
        return 0;
    }
    if (gguf_get_f64(m->file, key, &v) || !isfinite(v))
        return kvs_fail(err, KVS_E_FORMAT, "%s: metadata '%s' is not a finite number", m->path, key);
    *out = (float)v;
    return 0;
}

/* Binds a weight view and checks its shape; k/n of -1 accept any size. */
static int bind(kvs_model *m, weight *w, const char *name, int64_t k, int64_t n, int optional, kvs_error *err) {
    const gguf_tensor *t = gguf_find_tensor(m->file, name);
    if (!t) {
        if (optional) {
            memset(w, 0, sizeof *w);
            return 0;
        }
        return kvs_fail(err, KVS_E_FORMAT, "%s: missing tensor '%s'", m->path, name);
    }
    int64_t tk = (int64_t)t->ne[0], tn = (int64_t)(t->ne[1] * t->ne[2] * t->ne[3]);
    if ((k >= 0 && tk != k) || (n >= 0 && tn != n))
        return kvs_fail(err, KVS_E_FORMAT, "%s: tensor '%s' has shape [%lld, %lld], expected [%lld, %lld]", m->path,
                        name, (long long)tk, (long long)tn, (long long)k, (long long)n);
    if (!quant_supported(t->type)) {
        const ggtype_info *ti = ggtype_get(t->type);
        return kvs_fail(err, KVS_E_UNSUPPORTED, "%s: tensor '%s' has type %s, which kvsteer cannot compute with yet",
                        m->path, name, ti ? ti->name : "?");
    }
    w->data = t->data;
    w->type = t->type;
    w->k = tk;
    w->n = tn;
    w->row_bytes = ggtype_row_bytes(t->type, (uint64_t)tk);
    return 0;
}

static int bind_layer(kvs_model *m, int il, kvs_error *err) {
    const hparams *hp = &m->hp;
    layer_weights *L = &m->layers[il];
    const int d = hp->n_embd, qd = hp->n_head * hp->head_dim, kvd = hp->n_head_kv * hp->head_dim;
    char name[96];
#define BIND(field, tname, k, n)                                         \
    do {                                                                 \
        snprintf(name, sizeof name, "blk.%d.%s.weight", il, tname);      \
        if (bind(m, &L->field, name, k, n, 0, err)) return err ? err->code : KVS_E_FORMAT; \
    } while (0)
    BIND(attn_norm, "attn_norm", d, 1);
    BIND(wq, "attn_q", d, qd);
    BIND(wk, "attn_k", d, kvd);
    BIND(wv, "attn_v", d, kvd);
    BIND(wo, "attn_output", qd, d);
    BIND(ffn_norm, "ffn_norm", d, 1);
    BIND(w_gate, "ffn_gate", d, hp->n_ff);
    BIND(w_up, "ffn_up", d, hp->n_ff);
    BIND(w_down, "ffn_down", hp->n_ff, d);
#undef BIND
    if (L->attn_norm.type != GGT_F32 || L->ffn_norm.type != GGT_F32)
        return kvs_fail(err, KVS_E_UNSUPPORTED, "%s: layer %d norm weights must be F32", m->path, il);
    return 0;
}

static int load_hparams(kvs_model *m, kvs_error *err) {
    hparams *hp = &m->hp;
    gguf_str arch;
    if (gguf_get_str(m->file, "general.architecture", &arch))
        return kvs_fail(err, KVS_E_FORMAT, "%s: missing metadata key 'general.architecture'", m->path);
    if (arch.n == 5 && !memcmp(arch.p, "llama", 5)) {
        hp->arch = ARCH_LLAMA;
        hp->arch_name = "llama";
        hp->rope = ROPE_NORM;
    } else {
        return kvs_fail(err, KVS_E_UNSUPPORTED, "%s: unsupported architecture '%.*s' (supported: llama)", m->path,
                        (int)(arch.n > 64 ? 64 : arch.n), arch.p);
    }
    int rc = get_int(m, "block_count", 1, 0, 1, 1024, &hp->n_layer, err);
    rc = rc ? rc : get_int(m, "embedding_length", 1, 0, 1, 1 << 16, &hp->n_embd, err);
    rc = rc ? rc : get_int(m, "attention.head_count", 1, 0, 1, 1024, &hp->n_head, err);
    rc = rc ? rc : get_int(m, "attention.head_count_kv", 0, hp->n_head, 1, 1024, &hp->n_head_kv, err);
    rc = rc ? rc : get_int(m, "feed_forward_length", 1, 0, 1, 1 << 20, &hp->n_ff, err);
    rc = rc ? rc : get_int(m, "context_length", 0, 2048, 1, 1 << 24, &hp->n_ctx_train, err);
    rc = rc ? rc : get_float(m, "rope.freq_base", 0, 10000.0f, &hp->rope_base, err);
    rc = rc ? rc : get_float(m, "attention.layer_norm_rms_epsilon", 1, 0, &hp->norm_eps, err);
    if (rc) return rc;
    if (hp->n_embd % hp->n_head || hp->n_head % hp->n_head_kv)
        return kvs_fail(err, KVS_E_FORMAT, "%s: head counts (%d, %d) do not divide embedding length %d", m->path,
                        hp->n_head, hp->n_head_kv, hp->n_embd);
    int head_dim = hp->n_embd / hp->n_head;
    rc = get_int(m, "attention.key_length", 0, head_dim, 1, 4096, &hp->head_dim, err);
    rc = rc ? rc : get_int(m, "rope.dimension_count", 0, hp->head_dim, 2, 4096, &hp->rope_dim, err);
    if (rc) return rc;
    if (hp->head_dim % 2 || hp->rope_dim > hp->head_dim || hp->rope_dim % 2)
        return kvs_fail(err, KVS_E_FORMAT, "%s: rotary dimension %d does not fit head size %d", m->path, hp->rope_dim,
                        hp->head_dim);
    if (!(hp->norm_eps > 0) || !(hp->rope_base > 0))
        return kvs_fail(err, KVS_E_FORMAT, "%s: norm epsilon and rope base must be positive", m->path);
    return 0;
}

kvs_model *kvs_model_load(const char *path, kvs_error *err) {
    kvs_error_clear(err);
    kvs_model *m = calloc(1, sizeof *m);
    if (!m || !(m->path = strdup(path))) {
        free(m);
        kvs_fail(err, KVS_E_NOMEM, "%s: out of memory", path);
        return NULL;
    }
    m->file = gguf_open(path, err);
    if (!m->file || load_hparams(m, err)) goto fail;
    hparams *hp = &m->hp;

    const gguf_tensor *te = gguf_find_tensor(m->file, "token_embd.weight");
    if (!te) {
        kvs_fail(err, KVS_E_FORMAT, "%s: missing tensor 'token_embd.weight'", path);
        goto fail;
    }
    hp->n_vocab = (int)te->ne[1];
    if (bind(m, &m->tok_embd, "token_embd.weight", hp->n_embd, -1, 0, err) ||
        bind(m, &m->output_norm, "output_norm.weight", hp->n_embd, 1, 0, err) ||
        bind(m, &m->output, "output.weight", hp->n_embd, hp->n_vocab, 1, err))
        goto fail;
    if (!m->output.data) m->output = m->tok_embd; /* tied embeddings */
    if (m->output_norm.type != GGT_F32) {
        kvs_fail(err, KVS_E_UNSUPPORTED, "%s: output_norm must be F32", path);
        goto fail;
    }
    m->layers = calloc((size_t)hp->n_layer, sizeof *m->layers);
    if (!m->layers) {
        kvs_fail(err, KVS_E_NOMEM, "%s: out of memory", path);
        goto fail;
    }
    for (int il = 0; il < hp->n_layer; il++)
        if (bind_layer(m, il, err)) goto fail;

    m->tok = tokenizer_load(m->file, path, err);
    if (!m->tok) goto fail;
    if (tokenizer_n_vocab(m->tok) != hp->n_vocab) {
        kvs_fail(err, KVS_E_FORMAT, "%s: vocabulary has %d tokens but the embedding has %d rows", path,
                 tokenizer_n_vocab(m->tok), hp->n_vocab);
        goto fail;
    }
    gguf_str name;
    m->name = gguf_get_str(m->file, "general.name", &name) ? strdup("") : strndup(name.p, name.n);
    /* The chat template is resolved lazily (kvs_chat_render), so models with an
     * unknown template still load for plain completion. */
    return m;
fail:
    kvs_model_free(m);
    return NULL;
}

void kvs_model_free(kvs_model *m) {
    if (!m) return;
    tokenizer_free(m->tok);
    gguf_close(m->file);
    free(m->layers);
    free(m->name);
    free(m->path);
    free(m);
}

void kvs_model_get_info(const kvs_model *m, kvs_model_info *o) {
    const hparams *hp = &m->hp;
    memset(o, 0, sizeof *o);
    o->arch = hp->arch_name;
    o->name = m->name ? m->name : "";
    o->n_layer = hp->n_layer;
    o->n_embd = hp->n_embd;
    o->n_head = hp->n_head;
    o->n_head_kv = hp->n_head_kv;
    o->head_dim = hp->head_dim;
    o->n_ff = hp->n_ff;
    o->n_vocab = hp->n_vocab;
    o->n_ctx_train = hp->n_ctx_train;
    o->rope_freq_base = hp->rope_base;
    o->norm_eps = hp->norm_eps;
    o->bos_id = tokenizer_bos(m->tok);
    o->eos_id = tokenizer_eos(m->tok);
    o->eot_id = tokenizer_eot(m->tok);
    o->add_bos = tokenizer_add_bos(m->tok);
    o->tokenizer_hash = tokenizer_hash(m->tok);
}

int kvs_tokenize(const kvs_model *m, const char *text, size_t len, int add_bos, int parse_special, kvs_token *out,
                 int cap, kvs_error *err) {
    return tokenizer_encode(m->tok, text, len, add_bos, parse_special, out, cap, err);
}

int kvs_token_to_bytes(const kvs_model *m, kvs_token t, char *buf, int cap) {
    return tokenizer_token_bytes(m->tok, t, buf, cap);
}

int kvs_token_is_eog(const kvs_model *m, kvs_token t) { return tokenizer_is_eog(m->tok, t); }

char *kvs_chat_render(const kvs_model *m, const kvs_chat_msg *msgs, int n_msgs, int add_generation_prompt,
                      const char *template_name, kvs_error *err) {
    gguf_str src;
    char *jinja = NULL;
    if (!gguf_get_str(m->file, "tokenizer.chat_template", &src)) jinja = strndup(src.p, src.n);
    chat_template t;
    memset(&t, 0, sizeof t);
    int rc = chat_template_init(&t, jinja, template_name, m->path, err);
    free(jinja);
    if (rc) return NULL;
    char *out = chat_render(&t, msgs, n_msgs, add_generation_prompt, err);
    chat_template_free(&t);
    return out;
}

const char *kvs_version(void) { return KVS_VERSION_STRING; }
