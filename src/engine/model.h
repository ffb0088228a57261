/* model.h - a loaded model: hyper-parameters and weight views, read from GGUF.
 *
 * Weights are views into the mmap, in their stored (usually quantized) format,
 * with one exception: Q5_0 and Q5_1 matrices are copied into the lanes layout
 * of lanes.h when the kernel set in use reads it (see lanes.c for why).  The architecture description is
 * filled from metadata only; there are no per-model constants. */
#ifndef KVS_MODEL_H
#define KVS_MODEL_H
#include <stddef.h>
#include <stdint.h>

#include "chat.h"
#include "gguf.h"
#include "kvsteer.h"
#include "tokenizer.h"

typedef enum rope_kind {
    ROPE_NORM = 0, /* rotate adjacent pairs (x[2i], x[2i+1]): llama GGUF layout */
    ROPE_NEOX = 1  /* rotate (x[i], x[i + d/2]): qwen2, phi3, gemma */
} rope_kind;

typedef enum arch_id { ARCH_LLAMA = 0, ARCH_QWEN2, ARCH_PHI3, ARCH_GEMMA3 } arch_id;

typedef enum ffn_act {
    ACT_SILU = 0,  /* silu(gate) * up */
    ACT_GELU_TANH  /* gelu(gate) * up, tanh approximation (gemma) */
} ffn_act;

/* What sets one family apart, fixed per architecture at load time; the forward
 * pass reads these switches instead of branching on the architecture. */
typedef struct arch_desc {
    arch_id id;
    const char *name;
    rope_kind rope;
    ffn_act act;
    int qkv_bias;   /* optional attn_{q,k,v}.bias */
    int fused_qkv;  /* attn_qkv instead of attn_q/k/v */
    int fused_up;   /* ffn_up holds [gate; up], no ffn_gate */
    int qk_norm;    /* per-head RMS norm of Q and K before rotary */
    int post_norms; /* RMS norm of the attention and FFN outputs before each residual add */
    int embd_scale; /* token embeddings multiplied by sqrt(n_embd) */
} arch_desc;

typedef struct hparams {
    arch_id arch;
    const char *arch_name;
    arch_desc desc;
    int n_layer, n_embd, n_head, n_head_kv, head_dim, n_ff, n_vocab, n_ctx_train;
    int rope_dim;
    rope_kind rope;
    float rope_base, norm_eps;
    /* rotary details: frequency scale (1/linear factor), cos/sin multiplier,
     * and the base of sliding-window layers where it differs */
    float rope_freq_scale, rope_attn_factor, rope_base_swa;
    int n_ctx_orig;     /* context the long/short rotary factors switch at */
    float attn_scale;   /* multiplier of q.k */
    int n_swa;          /* sliding window in positions; 0 = none */
    uint8_t *swa_layer; /* n_layer flags: layer attends within the window */
} hparams;

/* A 2-D weight [n rows of k elements] in its file format. */
typedef struct weight {
    const void *data;
    uint32_t type;
    int64_t k, n;     /* k = ne[0] (contiguous), n = ne[1] */
    size_t row_bytes;
} weight;

typedef struct layer_weights {
    weight attn_norm, wq, wk, wv, wo;
    weight ffn_norm, w_gate, w_up, w_down;
    /* optional (data NULL when absent); all F32 vectors */
    weight bq, bk, bv;                    /* qwen2 */
    weight q_norm, k_norm;                /* gemma3: head_dim weights */
    weight post_attn_norm, post_ffn_norm; /* gemma3 */
} layer_weights;

struct kvs_model {
    char *path;
    gguf_file *file;
    tokenizer *tok;
    char *name;
    hparams hp;
    weight tok_embd, output_norm, output;
    layer_weights *layers;
    /* rotary frequency divisors, rope_dim/2 floats each, NULL when absent:
     * one set for every context (llama3 rope_freqs, from the tensor or computed
     * from metadata), or a long/short pair chosen by context size (phi3) */
    const float *rope_freqs, *rope_long, *rope_short;
    float *rope_freqs_owned;
    void *lanes_buf; /* the matrices copied into a lanes layout, or NULL */
};

#endif
