/* forward.h - an inference context: KV cache, scratch buffers and the forward
 * pass over a batch of tokens from one or several sequences. */
#ifndef KVS_FORWARD_H
#define KVS_FORWARD_H
#include <stddef.h>
#include <stdint.h>

#include "kvcache.h"
#include "kvsteer.h"
#include "model.h"
#include "ops.h"
#include "threadctl.h"

/* Per-sequence residual additions (activation steering): add[layer] is NULL or
 * n_embd floats already multiplied by their scale. */
typedef struct resid_hooks {
    float **add;
} resid_hooks;

struct kvs_ctx {
    const kvs_model *model;
    int n_ctx, n_seq, n_batch, n_threads;
    kv_cache cache;

    /* Scratch for one chunk of nt <= n_batch tokens, row-major, one row per
     * token (names as in llama2.c); d = n_embd, qd = n_head * head_dim,
     * kvd = n_head_kv * head_dim: */
    float *x;    /* [nt][d]   the residual stream */
    float *xb;   /* [nt][max(d, qd)] normed input of a matmul; at the end, the rows that want logits */
    float *xb2;  /* [nt][d]   output of the attention or FFN projection, before it joins x */
    float *q;    /* [nt][qd]  queries (after rotary) */
    float *k;    /* [nt][kvd] keys of this chunk (after rotary), as cached */
    float *v;    /* [nt][kvd] values of this chunk, as cached */
    float *att;  /* [nt][qd]  attention output, input of wo */
    float *hb;   /* [nt][n_ff] FFN gate, then gate * up after the activation */
    float *hb2;  /* [nt][n_ff] FFN up */
    void *qbuf;  /* the matmul input quantized to the weights' dot type (op_act_bytes) */
    float *scores; /* n_threads * ATTN_TILE_MAX * n_ctx attention scores */
    float *kv_rows; /* half cache only: n_threads * 2 * n_ctx * head_dim, one head's rows as floats */
    int *tile_t0, *tile_n; /* attention tiles of the current chunk: first token, tokens */

    /* outputs of the last kvs_decode */
    int n_tokens;        /* tokens in the last batch */
    int *out_row;        /* batch index -> logits row, -1 if none */
    float *logits;       /* n_out * n_vocab */
    int n_out, cap_out;
    float *hidden;       /* n_tokens * n_embd: final-norm hidden states */
    int cap_hidden;

    int capture;         /* residual capture on */
    float *resid;        /* n_tokens * n_layer * n_embd */
    int cap_resid;

    resid_hooks *hooks;  /* n_seq entries */

    /* rotary embedding per layer: the long/short factor choice depends on this
     * context's size, so it lives here rather than in the shared model */
    rope_cfg *rope;      /* n_layer entries */

    /* how many of the n_threads enter each step (threadctl.h); a step's work is
     * counted in weight multiply-adds per row: layer_macs[l], and the output's */
    threadctl tc;
    double *layer_macs;  /* n_layer entries */
    double out_macs;
};

#endif
