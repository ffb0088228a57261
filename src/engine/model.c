#include "model.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "grow.h"
#include "lanes.h"
#include "quant.h"

/* Reads "<arch>.<suffix>" as a positive int within [lo, hi]. */
static int get_int(const kvs_model *m, const char *suffix, int required, int dflt, int lo, int hi, int *out,
                   kvs_error *err) {
    char key[128];
    snprintf(key, sizeof key, "%s.%s", m->hp.arch_name, suffix);
    int64_t v;
    if (!gguf_find(m->file, key)) {
        if (required) return err_fail(err, KVS_E_FORMAT, "%s: missing metadata key '%s'", m->path, key);
        *out = dflt;
        return 0;
    }
    if (gguf_get_i64(m->file, key, &v) || v < lo || v > hi)
        return err_fail(err, KVS_E_FORMAT, "%s: metadata '%s' is not an integer in [%d, %d]", m->path, key, lo, hi);
    *out = (int)v;
    return 0;
}

static int get_float(const kvs_model *m, const char *suffix, int required, float dflt, float *out, kvs_error *err) {
    char key[128];
    snprintf(key, sizeof key, "%s.%s", m->hp.arch_name, suffix);
    double v;
    if (!gguf_find(m->file, key)) {
        if (required) return err_fail(err, KVS_E_FORMAT, "%s: missing metadata key '%s'", m->path, key);
        *out = dflt;
        return 0;
    }
    if (gguf_get_f64(m->file, key, &v) || !isfinite(v))
        return err_fail(err, KVS_E_FORMAT, "%s: metadata '%s' is not a finite number", m->path, key);
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
        return err_fail(err, KVS_E_FORMAT, "%s: missing tensor '%s'", m->path, name);
    }
    int64_t tk = (int64_t)t->ne[0], tn = (int64_t)(t->ne[1] * t->ne[2] * t->ne[3]);
    if ((k >= 0 && tk != k) || (n >= 0 && tn != n))
        return err_fail(err, KVS_E_FORMAT, "%s: tensor '%s' has shape [%lld, %lld], expected [%lld, %lld]", m->path,
                        name, (long long)tk, (long long)tn, (long long)k, (long long)n);
    if (!quant_supported(t->type)) {
        const ggtype_info *ti = ggtype_get(t->type);
        return err_fail(err, KVS_E_UNSUPPORTED, "%s: tensor '%s' has type %s, which kvsteer cannot compute with yet",
                        m->path, name, ti ? ti->name : "?");
    }
    w->data = t->data;
    w->type = t->type;
    w->k = tk;
    w->n = tn;
    w->row_bytes = ggtype_row_bytes(t->type, (uint64_t)tk);
    return 0;
}

/* A 1-D F32 vector of n floats (norm weights, biases, rotary factors). */
static int bind_vec(kvs_model *m, weight *w, const char *name, int64_t n, int optional, kvs_error *err) {
    int rc = bind(m, w, name, n, 1, optional, err);
    if (rc) return rc;
    if (w->data && w->type != GGT_F32)
        return err_fail(err, KVS_E_UNSUPPORTED, "%s: tensor '%s' must be F32", m->path, name);
    return 0;
}

/* Row range [r0, r0 + n) of a 2-D weight, as a weight of its own: fused
 * projections (phi3's attn_qkv, its [gate; up] ffn_up) are stacked row blocks. */
static weight row_view(const weight *w, int64_t r0, int64_t n) {
    weight v = *w;
    v.data = (const char *)w->data + (size_t)r0 * w->row_bytes;
    v.n = n;
    return v;
}

static int bind_layer(kvs_model *m, int il, kvs_error *err) {
    const hparams *hp = &m->hp;
    const arch_desc *ad = &hp->desc;
    layer_weights *L = &m->layers[il];
    const int d = hp->n_embd, hd = hp->head_dim, qd = hp->n_head * hd, kvd = hp->n_head_kv * hd;
    char name[96];
#define TNAME(tname, kind) snprintf(name, sizeof name, "blk.%d.%s.%s", il, tname, kind)
#define TRY(expr)                                                \
    do {                                                         \
        int rc_ = (expr);                                        \
        if (rc_) return rc_;                                     \
    } while (0)
#define BIND(field, tname, k, n) (TNAME(tname, "weight"), bind(m, &L->field, name, k, n, 0, err))
#define VEC(field, tname, kind, n, opt) (TNAME(tname, kind), bind_vec(m, &L->field, name, n, opt, err))
    TRY(VEC(attn_norm, "attn_norm", "weight", d, 0));
    if (ad->fused_qkv) {
        weight qkv;
        TRY((TNAME("attn_qkv", "weight"), bind(m, &qkv, name, d, qd + 2 * kvd, 0, err)));
        L->wq = row_view(&qkv, 0, qd);
        L->wk = row_view(&qkv, qd, kvd);
        L->wv = row_view(&qkv, qd + kvd, kvd);
    } else {
        TRY(BIND(wq, "attn_q", d, qd));
        TRY(BIND(wk, "attn_k", d, kvd));
        TRY(BIND(wv, "attn_v", d, kvd));
    }
    if (ad->qkv_bias) {
        TRY(VEC(bq, "attn_q", "bias", qd, 1));
        TRY(VEC(bk, "attn_k", "bias", kvd, 1));
        TRY(VEC(bv, "attn_v", "bias", kvd, 1));
    }
    if (ad->qk_norm) {
        TRY(VEC(q_norm, "attn_q_norm", "weight", hd, 0));
        TRY(VEC(k_norm, "attn_k_norm", "weight", hd, 0));
    }
    TRY(BIND(wo, "attn_output", qd, d));
    if (ad->post_norms) {
        TRY(VEC(post_attn_norm, "post_attention_norm", "weight", d, 0));
        TRY(VEC(post_ffn_norm, "post_ffw_norm", "weight", d, 0));
    }
    TRY(VEC(ffn_norm, "ffn_norm", "weight", d, 0));
    if (ad->fused_up) {
        weight up;
        TRY((TNAME("ffn_up", "weight"), bind(m, &up, name, d, 2 * (int64_t)hp->n_ff, 0, err)));
        L->w_gate = row_view(&up, 0, hp->n_ff);
        L->w_up = row_view(&up, hp->n_ff, hp->n_ff);
    } else {
        TRY(BIND(w_gate, "ffn_gate", d, hp->n_ff));
        TRY(BIND(w_up, "ffn_up", d, hp->n_ff));
    }
    TRY(BIND(w_down, "ffn_down", hp->n_ff, d));
#undef VEC
#undef BIND
#undef TRY
#undef TNAME
    return 0;
}

/* Norm weights are applied as stored for every family: Gemma's RMSNorm scales
 * by (1 + w), and llama.cpp's converter writes 1 + w into the file, so a gemma3
 * GGUF already holds the effective multiplier. */
static const arch_desc ARCHS[] = {
    /* id           name      rope       act            bias fqkv fup qkn post escale */
    {ARCH_LLAMA,  "llama",  ROPE_NORM, ACT_SILU,      0,   0,   0,  0,  0,   0},
    {ARCH_QWEN2,  "qwen2",  ROPE_NEOX, ACT_SILU,      1,   0,   0,  0,  0,   0},
    {ARCH_PHI3,   "phi3",   ROPE_NEOX, ACT_SILU,      0,   1,   1,  0,  0,   0},
    {ARCH_GEMMA3, "gemma3", ROPE_NEOX, ACT_GELU_TANH, 0,   0,   0,  1,  1,   1},
};

static int str_is(gguf_str s, const char *lit) { return s.n == strlen(lit) && !memcmp(s.p, lit, s.n); }

/* Llama 3.x rotary scaling from its metadata, for files converted without the
 * rope_freqs tensor: long wavelengths are slowed by `factor`, short ones kept,
 * and those in between blended (the rule of Meta's reference code). */
static int llama3_freqs(kvs_model *m, kvs_error *err) {
    hparams *hp = &m->hp;
    float factor, lo, hi;
    int orig;
    int rc = get_float(m, "rope.scaling.factor", 1, 0, &factor, err);
    rc = rc ? rc : get_float(m, "rope.scaling.low_freq_factor", 0, 1.0f, &lo, err);
    rc = rc ? rc : get_float(m, "rope.scaling.high_freq_factor", 0, 4.0f, &hi, err);
    rc = rc ? rc : get_int(m, "rope.scaling.original_context_length", 1, 0, 1, 1 << 24, &orig, err);
    if (rc) return rc;
    if (!(factor > 0) || !(hi > lo) || !(lo > 0))
        return err_fail(err, KVS_E_FORMAT, "%s: llama3 rope scaling needs factor > 0 and high_freq_factor > low_freq_factor > 0",
                        m->path);
    const int half = hp->rope_dim / 2;
    if (!(m->rope_freqs_owned = malloc(sizeof(float) * (size_t)half)))
        return err_fail(err, KVS_E_NOMEM, "%s: out of memory", m->path);
    const double lo_wavelen = orig / lo, hi_wavelen = orig / hi;
    for (int i = 0; i < half; i++) {
        const double freq = pow(hp->rope_base, -2.0 * i / hp->rope_dim), wavelen = 2 * M_PI / freq;
        double div;
        if (wavelen < hi_wavelen) div = 1.0;
        else if (wavelen > lo_wavelen) div = factor;
        else {
            const double smooth = (orig / wavelen - lo) / (hi - lo);
            div = 1.0 / ((1.0 - smooth) / factor + smooth);
        }
        m->rope_freqs_owned[i] = (float)div;
    }
    m->rope_freqs = m->rope_freqs_owned;
    return 0;
}

/* Rotary scaling: a linear factor, llama3 per-frequency factors, or phi3's
 * long/short factor tensors; YaRN and other schemes are refused rather than
 * silently run unscaled. */
static int load_rope_scaling(kvs_model *m, kvs_error *err) {
    hparams *hp = &m->hp;
    char key[128];
    gguf_str type = {0};
    snprintf(key, sizeof key, "%s.rope.scaling.type", hp->arch_name);
    int has_type = !gguf_get_str(m->file, key, &type);
    float factor;
    int rc = get_float(m, "rope.scaling.factor", 0, 0.0f, &factor, err);
    rc = rc ? rc : get_float(m, "rope.scaling.attn_factor", 0, 1.0f, &hp->rope_attn_factor, err);
    rc = rc ? rc : get_int(m, "rope.scaling.original_context_length", 0, hp->n_ctx_train, 1, 1 << 24, &hp->n_ctx_orig, err);
    if (rc) return rc;
    hp->rope_freq_scale = 1.0f;
    const int half = hp->rope_dim / 2;
    weight t;
    if (bind_vec(m, &t, "rope_freqs.weight", half, 1, err)) return err ? err->code : KVS_E_FORMAT;
    m->rope_freqs = t.data;
    if (bind_vec(m, &t, "rope_factors_long.weight", half, 1, err)) return err ? err->code : KVS_E_FORMAT;
    m->rope_long = t.data;
    if (bind_vec(m, &t, "rope_factors_short.weight", half, 1, err)) return err ? err->code : KVS_E_FORMAT;
    m->rope_short = t.data;
    if (!!m->rope_long != !!m->rope_short)
        return err_fail(err, KVS_E_FORMAT, "%s: rope_factors_long and rope_factors_short must come together", m->path);
    if (has_type && str_is(type, "llama3")) {
        if (!m->rope_freqs && (rc = llama3_freqs(m, err))) return rc;
    } else if (has_type && str_is(type, "yarn")) {
        return err_fail(err, KVS_E_UNSUPPORTED, "%s: rope scaling 'yarn' is not supported", m->path);
    } else if (!has_type || str_is(type, "linear")) {
        /* an absent type with a factor means linear, as llama.cpp reads it */
        if (factor > 0) hp->rope_freq_scale = 1.0f / factor;
    } else if (!str_is(type, "none") && !str_is(type, "longrope")) {
        return err_fail(err, KVS_E_UNSUPPORTED, "%s: unknown rope scaling type '%.*s'", m->path,
                        (int)(type.n > 32 ? 32 : type.n), type.p);
    }
    if (!(hp->rope_attn_factor > 0)) return err_fail(err, KVS_E_FORMAT, "%s: rope attn_factor must be positive", m->path);
    for (const float *f = m->rope_freqs ? m->rope_freqs : m->rope_long; f; f = f == m->rope_long ? m->rope_short : NULL)
        for (int i = 0; i < half; i++)
            if (!(f[i] > 0) || !isfinite(f[i]))
                return err_fail(err, KVS_E_FORMAT, "%s: rotary frequency factors must be positive", m->path);
    return 0;
}

/* Sliding-window attention.  gemma3 interleaves window layers with global ones:
 * every `pattern`-th layer (llama.cpp and the Gemma reference: 6) is global and
 * window layers use their own rotary base (10000 unless the file says).  phi3
 * files may state a window for every layer. */
static int load_swa(kvs_model *m, kvs_error *err) {
    hparams *hp = &m->hp;
    int rc = get_int(m, "attention.sliding_window", hp->arch == ARCH_GEMMA3, 0, 0, 1 << 24, &hp->n_swa, err);
    if (rc) return rc;
    if (!(hp->swa_layer = calloc((size_t)hp->n_layer, 1))) return err_fail(err, KVS_E_NOMEM, "%s: out of memory", m->path);
    hp->rope_base_swa = hp->rope_base;
    if (hp->n_swa == 0) return 0;
    int pattern = 1; /* every layer */
    if (hp->arch == ARCH_GEMMA3) {
        rc = get_float(m, "rope.freq_base_swa", 0, 10000.0f, &hp->rope_base_swa, err);
        if (rc) return rc;
        /* newer converters state the layers one by one (true = window layer) */
        char key[128];
        snprintf(key, sizeof key, "%s.attention.sliding_window_pattern", hp->arch_name);
        const gguf_kv *kv = gguf_find(m->file, key);
        if (kv && kv->type == GGUF_ARR) {
            if (kv->arr_n != (uint64_t)hp->n_layer)
                return err_fail(err, KVS_E_FORMAT, "%s: metadata '%s' has %llu entries for %d layers", m->path, key,
                                (unsigned long long)kv->arr_n, hp->n_layer);
            for (int l = 0; l < hp->n_layer; l++) {
                int64_t v;
                if (gguf_arr_i64(kv, (uint64_t)l, &v))
                    return err_fail(err, KVS_E_FORMAT, "%s: metadata '%s' is not a list of flags", m->path, key);
                hp->swa_layer[l] = v != 0;
            }
            return 0;
        }
        rc = get_int(m, "attention.sliding_window_pattern", 0, 6, 1, 1 << 16, &pattern, err);
        if (rc) return rc;
    }
    for (int l = 0; l < hp->n_layer; l++) hp->swa_layer[l] = pattern == 1 || l % pattern < pattern - 1;
    return 0;
}

static int load_hparams(kvs_model *m, kvs_error *err) {
    hparams *hp = &m->hp;
    gguf_str arch;
    if (gguf_get_str(m->file, "general.architecture", &arch))
        return err_fail(err, KVS_E_FORMAT, "%s: missing metadata key 'general.architecture'", m->path);
    const arch_desc *ad = NULL;
    for (size_t i = 0; i < sizeof ARCHS / sizeof ARCHS[0] && !ad; i++)
        if (str_is(arch, ARCHS[i].name)) ad = &ARCHS[i];
    if (!ad)
        return err_fail(err, KVS_E_UNSUPPORTED,
                        "%s: unsupported architecture '%.*s' (supported: llama, qwen2, phi3, gemma3)", m->path,
                        (int)(arch.n > 64 ? 64 : arch.n), arch.p);
    hp->desc = *ad;
    hp->arch = ad->id;
    hp->arch_name = ad->name;
    hp->rope = ad->rope;
    int rc = get_int(m, "block_count", 1, 0, 1, 1024, &hp->n_layer, err);
    rc = rc ? rc : get_int(m, "embedding_length", 1, 0, 1, 1 << 16, &hp->n_embd, err);
    rc = rc ? rc : get_int(m, "attention.head_count", 1, 0, 1, 1024, &hp->n_head, err);
    rc = rc ? rc : get_int(m, "attention.head_count_kv", 0, hp->n_head, 1, 1024, &hp->n_head_kv, err);
    rc = rc ? rc : get_int(m, "feed_forward_length", 1, 0, 1, 1 << 20, &hp->n_ff, err);
    rc = rc ? rc : get_int(m, "context_length", 0, 2048, 1, 1 << 24, &hp->n_ctx_train, err);
    rc = rc ? rc : get_float(m, "rope.freq_base", 0, 10000.0f, &hp->rope_base, err);
    rc = rc ? rc : get_float(m, "attention.layer_norm_rms_epsilon", 1, 0, &hp->norm_eps, err);
    if (rc) return rc;
    /* the head size may be stated (gemma3: 256 with n_embd 1152 and 4 heads);
     * otherwise the heads split the embedding */
    char key[128];
    snprintf(key, sizeof key, "%s.attention.key_length", hp->arch_name);
    const int stated = gguf_find(m->file, key) != NULL;
    if ((!stated && hp->n_embd % hp->n_head) || hp->n_head % hp->n_head_kv)
        return err_fail(err, KVS_E_FORMAT, "%s: head counts (%d, %d) do not divide embedding length %d", m->path,
                        hp->n_head, hp->n_head_kv, hp->n_embd);
    int head_dim = hp->n_embd / hp->n_head, v_dim;
    rc = get_int(m, "attention.key_length", 0, head_dim, 1, 4096, &hp->head_dim, err);
    rc = rc ? rc : get_int(m, "attention.value_length", 0, hp->head_dim, 1, 4096, &v_dim, err);
    rc = rc ? rc : get_int(m, "rope.dimension_count", 0, hp->head_dim, 2, 4096, &hp->rope_dim, err);
    if (rc) return rc;
    /* one cache row layout for K and V keeps steering entries uniform */
    if (v_dim != hp->head_dim)
        return err_fail(err, KVS_E_UNSUPPORTED, "%s: key length %d differs from value length %d", m->path,
                        hp->head_dim, v_dim);
    if (hp->head_dim % 2 || hp->rope_dim > hp->head_dim || hp->rope_dim % 2)
        return err_fail(err, KVS_E_FORMAT, "%s: rotary dimension %d does not fit head size %d", m->path, hp->rope_dim,
                        hp->head_dim);
    if (!(hp->norm_eps > 0) || !(hp->rope_base > 0))
        return err_fail(err, KVS_E_FORMAT, "%s: norm epsilon and rope base must be positive", m->path);
    /* q.k scale: 1/sqrt(head size), unless the file states it.  Gemma 3 27B is
     * the known exception (query_pre_attn_scalar = n_embd / n_head), which its
     * GGUF files do not record: llama.cpp recognises it by its 62 layers. */
    float scale_key;
    rc = get_float(m, "attention.scale", 0, 0.0f, &scale_key, err);
    if (rc) return rc;
    if (scale_key > 0) hp->attn_scale = scale_key;
    else if (hp->arch == ARCH_GEMMA3 && hp->n_layer == 62) hp->attn_scale = 1.0f / sqrtf((float)(hp->n_embd / hp->n_head));
    else hp->attn_scale = 1.0f / sqrtf((float)hp->head_dim);
    rc = load_swa(m, err);
    return rc ? rc : load_rope_scaling(m, err);
}

/* The matrices a forward pass multiplies by, for rearranging their storage. */
static int matrices(kvs_model *m, weight **out) {
    int n = 0;
    for (int il = 0; il < m->hp.n_layer; il++) {
        layer_weights *L = &m->layers[il];
        weight *ws[] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up, &L->w_down};
        for (size_t i = 0; i < sizeof ws / sizeof *ws; i++)
            if (ws[i]->data) out[n++] = ws[i];
    }
    /* a tied output too: m->output is its own view, so the embedding rows are
     * still read from the file's table (whose pages then come back as used) */
    out[n++] = &m->output;
    return n;
}

/* A matrix's bytes, rounded up so that the next copied one starts a cache line. */
static size_t padded_bytes(const weight *w) { return (w->row_bytes * (size_t)w->n + 63) / 64 * 64; }

/* The matrices whose type the kernels in use want in a lanes layout (lanes.h)
 * are copied into it, the same size, and read instead of the file's. */
static int use_lanes(kvs_model *m, kvs_error *err) {
    weight **ws = malloc(sizeof *ws * ((size_t)m->hp.n_layer * 7 + 1));
    if (!ws) return err_fail(err, KVS_E_NOMEM, "%s: out of memory", m->path);
    const int n = matrices(m, ws);
    size_t total = 0;
    for (int i = 0; i < n; i++)
        if (quant_lanes_for(ws[i]->type)) total += padded_bytes(ws[i]);
    if (total == 0) {
        free(ws);
        return 0;
    }
    uint8_t *buf = aligned_alloc(64, total);
    if (!buf) {
        free(ws);
        return err_fail(err, KVS_E_NOMEM, "%s: out of memory (%zu bytes for a rearranged copy of the quantized matrices)", m->path, total);
    }
    size_t at = 0;
    for (int i = 0; i < n; i++) {
        weight *w = ws[i];
        const uint32_t lt = quant_lanes_for(w->type);
        if (!lt) continue;
        for (int64_t r = 0; r < w->n; r++)
            quant_to_lanes(w->type, (const uint8_t *)w->data + (size_t)r * w->row_bytes,
                           buf + at + (size_t)r * w->row_bytes, w->k);
        gguf_release(m->file, w->data, w->row_bytes * (size_t)w->n); /* read once: not twice in memory */
        w->data = buf + at;
        w->type = lt;
        at += padded_bytes(w);
    }
    free(ws);
    m->lanes_buf = buf;
    return 0;
}

kvs_model *kvs_model_load(const char *path, kvs_error *err) {
    err_clear(err);
    kvs_model *m = calloc(1, sizeof *m);
    if (!m || !(m->path = strdup(path))) {
        free(m);
        err_fail(err, KVS_E_NOMEM, "%s: out of memory", path);
        return NULL;
    }
    m->file = gguf_open(path, err);
    if (!m->file || load_hparams(m, err)) goto fail;
    hparams *hp = &m->hp;

    const gguf_tensor *te = gguf_find_tensor(m->file, "token_embd.weight");
    if (!te) {
        err_fail(err, KVS_E_FORMAT, "%s: missing tensor 'token_embd.weight'", path);
        goto fail;
    }
    hp->n_vocab = (int)te->ne[1];
    if (bind(m, &m->tok_embd, "token_embd.weight", hp->n_embd, -1, 0, err) ||
        bind(m, &m->output_norm, "output_norm.weight", hp->n_embd, 1, 0, err) ||
        bind(m, &m->output, "output.weight", hp->n_embd, hp->n_vocab, 1, err))
        goto fail;
    if (!m->output.data) m->output = m->tok_embd; /* tied embeddings */
    if (m->output_norm.type != GGT_F32) {
        err_fail(err, KVS_E_UNSUPPORTED, "%s: tensor 'output_norm.weight' must be F32", path);
        goto fail;
    }
    m->layers = calloc((size_t)hp->n_layer, sizeof *m->layers);
    if (!m->layers) {
        err_fail(err, KVS_E_NOMEM, "%s: out of memory", path);
        goto fail;
    }
    for (int il = 0; il < hp->n_layer; il++)
        if (bind_layer(m, il, err)) goto fail;
    if (use_lanes(m, err)) goto fail;

    m->tok = tokenizer_load(m->file, path, err);
    if (!m->tok) goto fail;
    if (tokenizer_n_vocab(m->tok) != hp->n_vocab) {
        err_fail(err, KVS_E_FORMAT, "%s: vocabulary has %d tokens but the embedding has %d rows", path,
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
    free(m->hp.swa_layer);
    free(m->rope_freqs_owned);
    free(m->lanes_buf);
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

kvs_token *kvs_tokenize_alloc(const kvs_model *m, const char *text, size_t len, int add_bos, int parse_special,
                              int spare, int *n_out, kvs_error *err) {
    if (!m || (!text && len) || spare < 0 || !n_out) {
        err_fail(err, KVS_E_ARG, "kvs_tokenize_alloc: no model, text or count");
        return NULL;
    }
    if (!text) text = "";
    /* a text has at most one token per byte, plus BOS and a SentencePiece
     * leading space: one pass, and a second only if that ever fell short */
    size_t cap = len + 2 + (size_t)spare;
    for (int pass = 0; pass < 2; pass++) {
        if (cap > INT_MAX) {
            err_fail(err, KVS_E_ARG, "text of %zu bytes: too long to tokenize", len);
            return NULL;
        }
        kvs_token *t = malloc(sizeof *t * cap);
        if (!t) {
            err_fail(err, KVS_E_NOMEM, "out of memory for the tokens of %zu bytes of text", len);
            return NULL;
        }
        const int n = tokenizer_encode(m->tok, text, len, add_bos, parse_special, t, (int)cap - spare, err);
        if (n >= 0 && (size_t)n + (size_t)spare <= cap) {
            kvs_token *fit = realloc(t, sizeof *t * ((size_t)n + (size_t)spare > 0 ? (size_t)n + (size_t)spare : 1));
            *n_out = n;
            return fit ? fit : t;
        }
        free(t);
        if (n < 0) return NULL;
        cap = (size_t)n + (size_t)spare;
    }
    err_fail(err, KVS_E_ARG, "the tokenizer gave two counts for one text");
    return NULL;
}

int kvs_token_to_bytes(const kvs_model *m, kvs_token t, char *buf, int cap) {
    return tokenizer_token_bytes(m->tok, t, buf, cap);
}

char *kvs_detokenize(const kvs_model *m, const kvs_token *t, int n, size_t *len, kvs_error *err) {
    if (!m || n < 0 || (n > 0 && !t)) {
        err_fail(err, KVS_E_ARG, "kvs_detokenize: no model or tokens");
        return NULL;
    }
    size_t cap = 0, used = 0;
    char *s = grow_to(NULL, (size_t)n * 8 + 1, &cap, 1);
    if (!s) goto oom;
    for (int i = 0; i < n; i++) {
        /* most tokens fit the room left; a longer one says its length, and the
         * buffer grows to take it whole */
        const size_t room = cap - used - 1;
        const int k = tokenizer_token_bytes(m->tok, t[i], s + used, room > INT_MAX ? INT_MAX : (int)room);
        if (k < 0) {
            free(s);
            err_fail(err, KVS_E_ARG, "token %d of %d is not an id of this model's vocabulary (%d)", i, n, (int)t[i]);
            return NULL;
        }
        if ((size_t)k > room) {
            char *ns = grow_to(s, used + (size_t)k + 1, &cap, 1);
            if (!ns) {
                free(s);
                goto oom;
            }
            s = ns;
            tokenizer_token_bytes(m->tok, t[i], s + used, k);
        }
        used += (size_t)k;
    }
    s[used] = 0;
    if (len) *len = used;
    return s;
oom:
    err_fail(err, KVS_E_NOMEM, "out of memory for the text of %d tokens", n);
    return NULL;
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

/* KVS_VERSION comes from CMakeLists.txt's project(VERSION). */
const char *kvs_version(void) { return KVS_VERSION; }
