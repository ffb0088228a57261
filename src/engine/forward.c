#include "forward.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "attn.h"
#include "error.h"
#include "ops.h"
#include "quant.h"

kvs_ctx_params kvs_ctx_default_params(void) {
    kvs_ctx_params p = {0, 1, 512, 0, 0};
    return p;
}

static size_t max_sz(size_t a, size_t b) { return a > b ? a : b; }

void kvs_ctx_free(kvs_ctx *c) {
    if (!c) return;
    kv_cache_free(&c->cache);
    free(c->x); free(c->xb); free(c->xb2); free(c->q); free(c->k); free(c->v);
    free(c->att); free(c->hb); free(c->hb2); free(c->qbuf); free(c->scores); free(c->kv_rows);
    free(c->tile_t0); free(c->tile_n);
    free(c->out_row); free(c->logits); free(c->hidden); free(c->resid); free(c->rope);
    free(c->layer_macs);
    tc_free(&c->tc);
    if (c->hooks) {
        for (int s = 0; s < c->n_seq; s++) {
            if (!c->hooks[s].add) continue;
            for (int l = 0; l < c->model->hp.n_layer; l++) free(c->hooks[s].add[l]);
            free(c->hooks[s].add);
        }
        free(c->hooks);
    }
    free(c);
}

kvs_ctx *kvs_ctx_new(const kvs_model *m, const kvs_ctx_params *p, kvs_error *err) {
    err_clear(err);
    kvs_ctx_params defaults = kvs_ctx_default_params();
    if (!p) p = &defaults;
    const hparams *hp = &m->hp;
    int n_ctx = p->n_ctx > 0 ? p->n_ctx : (hp->n_ctx_train < 2048 ? hp->n_ctx_train : 2048);
    int n_seq = p->n_seq > 0 ? p->n_seq : 1;
    int n_batch = p->n_batch > 0 ? p->n_batch : 512;
    int n_threads = p->n_threads > 0 ? p->n_threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (n_threads < 1) n_threads = 1;
    if (p->n_ctx < 0 || p->n_seq < 0 || p->n_batch < 0 || p->n_threads < 0 || n_ctx > (1 << 24) ||
        n_seq > 65536 || n_batch > 65536 || n_threads > 1024) {
        err_fail(err, KVS_E_ARG, "context: impossible parameters (n_ctx %d, n_seq %d, n_batch %d, threads %d)",
                 p->n_ctx, p->n_seq, p->n_batch, p->n_threads);
        return NULL;
    }
    kvs_ctx *c = calloc(1, sizeof *c);
    if (!c) goto nomem;
    c->model = m;
    c->n_ctx = n_ctx;
    c->n_seq = n_seq;
    c->n_batch = n_batch;
    c->n_threads = n_threads;
    const int d = hp->n_embd, qd = hp->n_head * hp->head_dim, kvd = hp->n_head_kv * hp->head_dim;
    if (kv_cache_init(&c->cache, hp->n_layer, n_seq, n_ctx, kvd, p->kv_f16)) goto nomem;
    const size_t nb = (size_t)n_batch;
    const int wide = d > qd ? d : qd;
    c->x = malloc(sizeof(float) * nb * d);
    c->xb = malloc(sizeof(float) * nb * wide);
    c->xb2 = malloc(sizeof(float) * nb * d);
    c->q = malloc(sizeof(float) * nb * qd);
    c->k = malloc(sizeof(float) * nb * kvd);
    c->v = malloc(sizeof(float) * nb * kvd);
    c->att = malloc(sizeof(float) * nb * qd);
    c->hb = malloc(sizeof(float) * nb * hp->n_ff);
    c->hb2 = malloc(sizeof(float) * nb * hp->n_ff);
    size_t qb = 0;
    for (int l = 0; l < hp->n_layer; l++) {
        const layer_weights *L = &m->layers[l];
        const weight *wl[] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up, &L->w_down};
        for (size_t i = 0; i < sizeof wl / sizeof *wl; i++) qb = max_sz(qb, op_act_bytes(wl[i], n_batch));
    }
    qb = max_sz(qb, op_act_bytes(&m->output, n_batch));
    c->qbuf = malloc(qb);
    c->scores = malloc(sizeof(float) * (size_t)n_threads * ATTN_TILE_MAX * (size_t)n_ctx);
    if (p->kv_f16 && !(c->kv_rows = malloc(sizeof(float) * (size_t)n_threads * 2 * (size_t)n_ctx * (size_t)hp->head_dim)))
        goto nomem;
    c->tile_t0 = malloc(sizeof(int) * nb);
    c->tile_n = malloc(sizeof(int) * nb);
    c->hooks = calloc((size_t)n_seq, sizeof *c->hooks);
    c->rope = malloc(sizeof *c->rope * (size_t)hp->n_layer);
    c->layer_macs = malloc(sizeof *c->layer_macs * (size_t)hp->n_layer);
    if (!c->rope || !c->layer_macs || tc_init(&c->tc, n_threads)) goto nomem;
    for (int l = 0; l < hp->n_layer; l++) {
        const layer_weights *L = &m->layers[l];
        const weight *wl[] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up, &L->w_down};
        c->layer_macs[l] = 0;
        for (size_t i = 0; i < sizeof wl / sizeof *wl; i++) c->layer_macs[l] += (double)wl[i]->n * (double)wl[i]->k;
    }
    c->out_macs = (double)m->output.n * (double)m->output.k;
    /* phi3 longrope: the long factors once the context exceeds the original
     * training context, as llama.cpp decides (per sequence) */
    const float *div = m->rope_freqs ? m->rope_freqs : m->rope_long && n_ctx > hp->n_ctx_orig ? m->rope_long : m->rope_short;
    for (int l = 0; l < hp->n_layer; l++) {
        const int swa = hp->swa_layer[l];
        rope_cfg r = {hp->rope, hp->rope_dim, swa ? hp->rope_base_swa : hp->rope_base,
                      swa && hp->arch == ARCH_GEMMA3 ? 1.0f : hp->rope_freq_scale, hp->rope_attn_factor, div};
        c->rope[l] = r;
    }
    if (!c->x || !c->xb || !c->xb2 || !c->q || !c->k || !c->v || !c->att || !c->hb || !c->hb2 || !c->qbuf ||
        !c->scores || !c->hooks || !c->tile_t0 || !c->tile_n)
        goto nomem;
    return c;
nomem:
    kvs_ctx_free(c);
    err_fail(err, KVS_E_NOMEM, "context: out of memory (n_ctx %d, n_seq %d)", n_ctx, n_seq);
    return NULL;
}

int kvs_ctx_n_ctx(const kvs_ctx *c) { return c->n_ctx; }

int kvs_ctx_pin_threads(kvs_ctx *c, int n) {
    if (n < -1 || n > c->n_threads) return KVS_E_ARG;
    c->tc.pinned = n < 0 ? c->n_threads : n;
    return 0;
}

double kvs_ctx_mean_threads(const kvs_ctx *c) { return c->tc.used_t > 0 ? c->tc.used_tn / c->tc.used_t : 0; }

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The thread count for a step of a kind (TC_LAYER, TC_OUTPUT) and `rows` rows. */
static int step_threads(kvs_ctx *c, int kind, int rows) { return tc_next(&c->tc, tc_bucket_of(kind, rows)); }

static void step_done(kvs_ctx *c, int kind, int rows, int n, double t0, double work) {
    tc_done(&c->tc, tc_bucket_of(kind, rows), n, now_s() - t0, work);
}
int kvs_ctx_n_seq(const kvs_ctx *c) { return c->n_seq; }
const kvs_model *kvs_ctx_model(const kvs_ctx *c) { return c->model; }

/* Grows *buf to hold n floats; returns 0 or KVS_E_NOMEM. */
static int reserve(float **buf, int *cap, size_t n) {
    if ((size_t)*cap >= n) return 0;
    float *nb = realloc(*buf, sizeof(float) * n);
    if (!nb) return KVS_E_NOMEM;
    *buf = nb;
    *cap = (int)n;
    return 0;
}

static void add_vec(float *x, const float *b, int n) {
    for (int i = 0; i < n; i++) x[i] += b[i];
}

/* Attention work for one chunk: tiles of queries that read the same cache rows
 * (up to ATTN_TILE_MAX query heads of one KV head, from consecutive tokens of one
 * sequence), each run by one thread. */
static int plan_tiles(kvs_ctx *c, const int32_t *pos, const int32_t *seq, int nt) {
    const hparams *hp = &c->model->hp;
    const int group = hp->n_head / hp->n_head_kv;
    const int per_tile = group >= ATTN_TILE_MAX ? 1 : ATTN_TILE_MAX / group;
    int n = 0;
    for (int t = 0; t < nt;) {
        int k = 1;
        while (k < per_tile && t + k < nt && seq[t + k] == seq[t] && pos[t + k] == pos[t + k - 1] + 1) k++;
        c->tile_t0[n] = t;
        c->tile_n[n++] = k;
        t += k;
    }
    return n;
}

/* Query heads per tile: the whole group where that gives every thread work,
 * fewer when a chunk has too few tiles (one sequence decoding one token). */
static int heads_per_tile(const kvs_ctx *c, int n_tiles) {
    const hparams *hp = &c->model->hp;
    const int group = hp->n_head / hp->n_head_kv;
    int hs = group < ATTN_TILE_MAX ? group : ATTN_TILE_MAX;
    while (hs > 1 && n_tiles * hp->n_head_kv * ((group + hs - 1) / hs) < 4 * c->n_threads) hs = (hs + 1) / 2;
    return hs;
}

static void attend_tile(const kvs_ctx *c, int layer, const int32_t *pos, const int32_t *seq, int tile, int kvh,
                        int g0, int hs, float *scores, float *kv_rows) {
    const hparams *hp = &c->model->hp;
    const kv_cache *kc = &c->cache;
    const int hd = hp->head_dim, qd = hp->n_head * hd, group = hp->n_head / hp->n_head_kv;
    const int g1 = g0 + hs < group ? g0 + hs : group;
    const int t0 = c->tile_t0[tile];
    const float *qp[ATTN_TILE_MAX];
    float *op[ATTN_TILE_MAX];
    int lo[ATTN_TILE_MAX], len[ATTN_TILE_MAX], nq = 0;
    for (int t = t0; t < t0 + c->tile_n[tile]; t++)
        for (int g = g0; g < g1; g++) {
            const size_t off = (size_t)t * qd + (size_t)(kvh * group + g) * hd;
            qp[nq] = c->q + off;
            op[nq] = c->att + off;
            /* a sliding-window layer sees the last n_swa positions, its own included */
            lo[nq] = hp->swa_layer[layer] && pos[t] >= hp->n_swa ? pos[t] - hp->n_swa + 1 : 0;
            len[nq++] = pos[t] + 1;
        }
    attn_tile at = {.nq = nq, .d = hd, .q = qp, .lo = lo, .len = len, .scale = hp->attn_scale, .scores = scores,
                    .ld = (size_t)c->n_ctx, .out = op};
    if (!kc->f16) {
        const size_t row0 = kv_index(kc, layer, seq[t0], 0) + (size_t)kvh * hd;
        at.k = (const float *)kc->k + row0;
        at.v = (const float *)kc->v + row0;
        at.stride = (size_t)kc->kv_dim;
    } else {
        /* widen this head's rows once for the whole tile; the kernels read rows
         * in groups of four from a multiple of 4, so the group's first rows too */
        int minlo = lo[0], maxlen = len[0];
        for (int i = 1; i < nq; i++) {
            minlo = lo[i] < minlo ? lo[i] : minlo;
            maxlen = len[i] > maxlen ? len[i] : maxlen;
        }
        float *kr = kv_rows, *vr = kv_rows + (size_t)c->n_ctx * hd;
        kv_load_rows(kc, 0, layer, seq[t0], minlo & ~3, maxlen, kvh * hd, hd, kr);
        kv_load_rows(kc, 1, layer, seq[t0], minlo & ~3, maxlen, kvh * hd, hd, vr);
        at.k = kr;
        at.v = vr;
        at.stride = (size_t)hd;
    }
    attn_run(&at);
}

/* Quantize `x` for w (if not already quantized for that dot type) then multiply.
 * *qtype tracks what qbuf holds so consecutive products sharing an input (Q, K,
 * V; gate, up) quantize once.  Called by every thread of the team. */
static void matmul(kvs_ctx *c, const weight *w, const float *x, int nt, float *out, uint32_t *qtype,
                   const float **qsrc) {
    const uint32_t dt = quant_dot_type(w->type);
    if (*qtype != dt || *qsrc != x) {
#pragma omp barrier
        op_quantize_rows(w, x, nt, c->qbuf); /* ends with a barrier */
#pragma omp single
        {
            *qtype = dt;
            *qsrc = x;
        }
    }
    op_matmul_q(w, c->qbuf, nt, out, (int)w->n);
}

/* What every step of one chunk reads: the chunk's tokens (t0 is its offset in
 * the caller's batch, for outputs) and its attention work plan. */
typedef struct chunk {
    const kvs_token *tok;
    const int32_t *pos, *seq;
    const int8_t *want;
    int nt, t0, n_tiles, hs, n_sub;
} chunk;

/* Layer l of a chunk, with the token embeddings first when l is 0.  Run by every
 * thread of the team; *qtype and *qsrc are the team's shared record of what qbuf
 * holds (see matmul). */
static void layer_step(kvs_ctx *c, const chunk *ch, int l, uint32_t *qtype, const float **qsrc) {
    const kvs_model *m = c->model;
    const hparams *hp = &m->hp;
    const int d = hp->n_embd, hd = hp->head_dim, qd = hp->n_head * hd, kvd = hp->n_head_kv * hd;
    const arch_desc *ad = &hp->desc;
    const float embd_scale = sqrtf((float)d);
    const int nt = ch->nt, n_tiles = ch->n_tiles, hs = ch->hs, n_sub = ch->n_sub;
    const int32_t *pos = ch->pos, *seq = ch->seq;
    kv_cache *kc = &c->cache;
    float *scores = c->scores + (size_t)omp_get_thread_num() * ATTN_TILE_MAX * c->n_ctx;
    float *kv_rows = c->kv_rows ? c->kv_rows + (size_t)omp_get_thread_num() * 2 * c->n_ctx * hd : NULL;
    if (l == 0) {
        /* 1. token embeddings -> x */
#pragma omp for schedule(static)
        for (int t = 0; t < nt; t++) {
            float *xt = c->x + (size_t)t * d;
            quant_to_float(m->tok_embd.type, (const char *)m->tok_embd.data + m->tok_embd.row_bytes * ch->tok[t], xt,
                           d);
            if (ad->embd_scale)
                for (int i = 0; i < d; i++) xt[i] *= embd_scale;
        }
    }
    const layer_weights *L = &m->layers[l];
    /* 2. attention: norm x -> xb; q, k, v = xb * wq, wk, wv */
#pragma omp for schedule(static)
    for (int t = 0; t < nt; t++)
        op_rmsnorm(c->xb + (size_t)t * d, c->x + (size_t)t * d, L->attn_norm.data, d, hp->norm_eps);
    matmul(c, &L->wq, c->xb, nt, c->q, qtype, qsrc);
    matmul(c, &L->wk, c->xb, nt, c->k, qtype, qsrc);
    matmul(c, &L->wv, c->xb, nt, c->v, qtype, qsrc);
#pragma omp barrier
    /* 3. biases, Q/K norms, rotary; k and v go into the cache */
#pragma omp for schedule(static)
    for (int t = 0; t < nt; t++) {
        float *qt = c->q + (size_t)t * qd, *kt = c->k + (size_t)t * kvd, *vt = c->v + (size_t)t * kvd;
        if (L->bq.data) add_vec(qt, L->bq.data, qd);
        if (L->bk.data) add_vec(kt, L->bk.data, kvd);
        if (L->bv.data) add_vec(vt, L->bv.data, kvd);
        if (ad->qk_norm) {
            for (int h = 0; h < hp->n_head; h++)
                op_rmsnorm(qt + (size_t)h * hd, qt + (size_t)h * hd, L->q_norm.data, hd, hp->norm_eps);
            for (int h = 0; h < hp->n_head_kv; h++)
                op_rmsnorm(kt + (size_t)h * hd, kt + (size_t)h * hd, L->k_norm.data, hd, hp->norm_eps);
        }
        op_rope(qt, hp->n_head, hd, pos[t], &c->rope[l]);
        op_rope(kt, hp->n_head_kv, hd, pos[t], &c->rope[l]);
        /* keys are cached after rotary: steering vectors are extracted from and added to this form */
        kv_store(kc, l, seq[t], pos[t], kt, vt);
    }
    /* 4. attention over the cache -> att, tile by tile; xb2 = att * wo */
#pragma omp for schedule(dynamic, 1)
    for (int w = 0; w < n_tiles * hp->n_head_kv * n_sub; w++) {
        const int tile = w / (hp->n_head_kv * n_sub), r = w % (hp->n_head_kv * n_sub);
        attend_tile(c, l, pos, seq, tile, r / n_sub, (r % n_sub) * hs, hs, scores, kv_rows);
    }
    matmul(c, &L->wo, c->att, nt, c->xb2, qtype, qsrc);
#pragma omp barrier
    /* 5. x += xb2; FFN: norm x -> xb; hb = xb * w_gate, hb2 = xb * w_up */
#pragma omp for schedule(static)
    for (int t = 0; t < nt; t++) {
        float *xt = c->x + (size_t)t * d, *o = c->xb2 + (size_t)t * d;
        if (ad->post_norms) op_rmsnorm(o, o, L->post_attn_norm.data, d, hp->norm_eps);
        for (int i = 0; i < d; i++) xt[i] += o[i];
        op_rmsnorm(c->xb + (size_t)t * d, xt, L->ffn_norm.data, d, hp->norm_eps);
    }
    matmul(c, &L->w_gate, c->xb, nt, c->hb, qtype, qsrc);
    matmul(c, &L->w_up, c->xb, nt, c->hb2, qtype, qsrc);
#pragma omp barrier
    /* 6. hb = act(hb) * hb2; xb2 = hb * w_down */
#pragma omp for schedule(static)
    for (int t = 0; t < nt; t++) {
        float *g = c->hb + (size_t)t * hp->n_ff;
        const float *u = c->hb2 + (size_t)t * hp->n_ff;
        if (ad->act == ACT_GELU_TANH) op_geglu(g, u, hp->n_ff);
        else op_swiglu(g, u, hp->n_ff);
    }
    matmul(c, &L->w_down, c->hb, nt, c->xb2, qtype, qsrc);
#pragma omp barrier
    /* 7. x += xb2, then the activation-steering hook and residual capture */
#pragma omp for schedule(static)
    for (int t = 0; t < nt; t++) {
        float *xt = c->x + (size_t)t * d, *o = c->xb2 + (size_t)t * d;
        if (ad->post_norms) op_rmsnorm(o, o, L->post_ffn_norm.data, d, hp->norm_eps);
        for (int i = 0; i < d; i++) xt[i] += o[i];
        const resid_hooks *hk = &c->hooks[seq[t]];
        if (hk->add && hk->add[l])
            for (int i = 0; i < d; i++) xt[i] += hk->add[l][i];
        const int row = c->out_row[ch->t0 + t];
        if (c->capture && row >= 0)
            memcpy(c->resid + ((size_t)row * hp->n_layer + l) * d, xt, sizeof(float) * d);
    }
}

/* After the last layer: final norm -> hidden; logits = the wanted rows * output.
 * *n_out is shared by the team. */
static void output_step(kvs_ctx *c, const chunk *ch, int *n_out, uint32_t *qtype, const float **qsrc) {
    const kvs_model *m = c->model;
    const hparams *hp = &m->hp;
    const int d = hp->n_embd, nt = ch->nt, t0 = ch->t0;
#pragma omp for schedule(static)
    for (int t = 0; t < nt; t++)
        op_rmsnorm(c->hidden + (size_t)(t0 + t) * d, c->x + (size_t)t * d, m->output_norm.data, d, hp->norm_eps);
#pragma omp single
    {
        /* gather the rows that want logits into xb, contiguous */
        for (int t = 0; t < nt; t++)
            if (ch->want ? ch->want[t0 + t] : (t0 + t == c->n_tokens - 1))
                memcpy(c->xb + (size_t)(*n_out)++ * d, c->hidden + (size_t)(t0 + t) * d, sizeof(float) * d);
    }
    if (*n_out > 0) {
        int first = -1;
        for (int t = 0; t < nt && first < 0; t++) first = c->out_row[t0 + t];
        matmul(c, &m->output, c->xb, *n_out, c->logits + (size_t)first * hp->n_vocab, qtype, qsrc);
    }
}

/* One chunk of at most n_batch tokens, already validated.  Each layer, and the
 * output, is one parallel region, so that each can take its own thread count
 * (threadctl.h); within a region the steps are separated by barriers. */
static void forward_chunk(kvs_ctx *c, const kvs_token *tok, const int32_t *pos, const int32_t *seq,
                          const int8_t *want, int nt, int t0) {
    const hparams *hp = &c->model->hp;
    const int group = hp->n_head / hp->n_head_kv;
    const int n_tiles = plan_tiles(c, pos, seq, nt);
    /* the attention work plan follows n_threads, not the count of the moment:
     * how work is cut never depends on the controller */
    const int hs = heads_per_tile(c, n_tiles);
    const chunk ch = {tok, pos, seq, want, nt, t0, n_tiles, hs, (group + hs - 1) / hs};
    for (int l = 0; l < hp->n_layer; l++) {
        uint32_t qtype = UINT32_MAX;
        const float *qsrc = NULL;
        const int n = step_threads(c, TC_LAYER, nt);
        const double ts = now_s();
#pragma omp parallel num_threads(n)
        layer_step(c, &ch, l, &qtype, &qsrc);
        step_done(c, TC_LAYER, nt, n, ts, c->layer_macs[l] * nt);
    }
    /* the output multiplies only the rows that want logits: a step of that many rows */
    int n_want = 0;
    for (int t = 0; t < nt; t++) n_want += c->out_row[t0 + t] >= 0;
    const int rows = n_want > 0 ? n_want : nt;
    uint32_t qtype = UINT32_MAX;
    const float *qsrc = NULL;
    int n_out = 0;
    const int n = step_threads(c, TC_OUTPUT, rows);
    const double ts = now_s();
#pragma omp parallel num_threads(n)
    output_step(c, &ch, &n_out, &qtype, &qsrc);
    if (n_want > 0) step_done(c, TC_OUTPUT, rows, n, ts, c->out_macs * n_want);
}

int kvs_decode(kvs_ctx *c, const kvs_batch *b, kvs_error *err) {
    err_clear(err);
    const hparams *hp = &c->model->hp;
    if (!b || b->n <= 0 || !b->tokens || !b->pos || !b->seq)
        return err_fail(err, KVS_E_ARG, "decode: empty or incomplete batch");
    /* Validate everything before touching the cache, so a bad batch changes nothing. */
    int *len = malloc(sizeof(int) * (size_t)c->n_seq);
    if (!len) return err_fail(err, KVS_E_NOMEM, "decode: out of memory");
    memcpy(len, c->cache.len, sizeof(int) * (size_t)c->n_seq);
    int rc = 0, n_out = 0;
    for (int i = 0; i < b->n && !rc; i++) {
        const int s = b->seq[i], p = b->pos[i];
        if (b->tokens[i] < 0 || b->tokens[i] >= hp->n_vocab)
            rc = err_fail(err, KVS_E_ARG, "decode: token id %d out of range [0, %d)", b->tokens[i], hp->n_vocab);
        else if (s < 0 || s >= c->n_seq)
            rc = err_fail(err, KVS_E_RANGE, "decode: sequence %d out of range [0, %d)", s, c->n_seq);
        else if (p >= c->n_ctx)
            rc = err_fail(err, KVS_E_RANGE, "decode: position %d of sequence %d exceeds the context (%d tokens)", p,
                          s, c->n_ctx);
        else if (p != len[s])
            rc = err_fail(err, KVS_E_RANGE, "decode: sequence %d expects position %d next, got %d", s, len[s], p);
        else
            len[s]++;
        if (b->want_logits ? b->want_logits[i] != 0 : i == b->n - 1) n_out++;
    }
    free(len);
    if (rc) return rc;
    c->n_tokens = b->n;
    int cap_rows = c->cap_hidden;
    int *rows = realloc(c->out_row, sizeof(int) * (size_t)b->n);
    if (!rows) return err_fail(err, KVS_E_NOMEM, "decode: out of memory");
    c->out_row = rows;
    if (reserve(&c->hidden, &cap_rows, (size_t)b->n * hp->n_embd) ||
        reserve(&c->logits, &c->cap_out, (size_t)n_out * hp->n_vocab) ||
        (c->capture && reserve(&c->resid, &c->cap_resid, (size_t)n_out * hp->n_layer * hp->n_embd)))
        return err_fail(err, KVS_E_NOMEM, "decode: out of memory for outputs");
    c->cap_hidden = cap_rows;
    c->n_out = 0;
    for (int i = 0; i < b->n; i++)
        c->out_row[i] = (b->want_logits ? b->want_logits[i] != 0 : i == b->n - 1) ? c->n_out++ : -1;
    for (int t0 = 0; t0 < b->n; t0 += c->n_batch) {
        const int nt = b->n - t0 < c->n_batch ? b->n - t0 : c->n_batch;
        forward_chunk(c, b->tokens + t0, b->pos + t0, b->seq + t0, b->want_logits, nt, t0);
        for (int t = t0; t < t0 + nt; t++) c->cache.len[b->seq[t]] = b->pos[t] + 1;
    }
    return 0;
}

const float *kvs_get_logits(const kvs_ctx *c, int i) {
    if (i < 0 || i >= c->n_tokens || c->out_row[i] < 0) return NULL;
    return c->logits + (size_t)c->out_row[i] * c->model->hp.n_vocab;
}

const float *kvs_get_embedding(const kvs_ctx *c, int i) {
    if (i < 0 || i >= c->n_tokens) return NULL;
    return c->hidden + (size_t)i * c->model->hp.n_embd;
}

int kvs_set_capture_residual(kvs_ctx *c, int enable) {
    c->capture = enable != 0;
    return 0;
}

const float *kvs_get_residual(const kvs_ctx *c, int i, int layer) {
    if (!c->capture || !c->resid || i < 0 || i >= c->n_tokens || c->out_row[i] < 0 || layer < 0 ||
        layer >= c->model->hp.n_layer)
        return NULL;
    return c->resid + ((size_t)c->out_row[i] * c->model->hp.n_layer + layer) * c->model->hp.n_embd;
}

static int set_hook(kvs_ctx *c, int seq, int layer, const float *vec, float scale) {
    const hparams *hp = &c->model->hp;
    resid_hooks *h = &c->hooks[seq];
    if (!vec) {
        if (h->add)
            for (int l = 0; l < hp->n_layer; l++)
                if (layer < 0 || l == layer) {
                    free(h->add[l]);
                    h->add[l] = NULL;
                }
        return 0;
    }
    if (!h->add && !(h->add = calloc((size_t)hp->n_layer, sizeof *h->add))) return KVS_E_NOMEM;
    if (!h->add[layer] && !(h->add[layer] = malloc(sizeof(float) * hp->n_embd))) return KVS_E_NOMEM;
    for (int i = 0; i < hp->n_embd; i++) h->add[layer][i] = scale * vec[i];
    return 0;
}

int kvs_set_residual_add(kvs_ctx *c, int seq, int layer, const float *vec, float scale, kvs_error *err) {
    const hparams *hp = &c->model->hp;
    if (seq < -1 || seq >= c->n_seq)
        return err_fail(err, KVS_E_RANGE, "residual hook: sequence %d out of range [0, %d)", seq, c->n_seq);
    if (layer < (vec ? 0 : -1) || layer >= hp->n_layer)
        return err_fail(err, KVS_E_RANGE, "residual hook: layer %d out of range [0, %d)", layer, hp->n_layer);
    for (int s = seq < 0 ? 0 : seq; s < (seq < 0 ? c->n_seq : seq + 1); s++)
        if (set_hook(c, s, layer, vec, scale)) return err_fail(err, KVS_E_NOMEM, "residual hook: out of memory");
    return 0;
}
