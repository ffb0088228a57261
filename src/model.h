/* model.h - a loaded model: hyper-parameters and weight views, read from GGUF.
 *
 * Nothing is copied out of the file: every weight is a view into the mmap, in
 * its stored (usually quantized) format.  The architecture description is
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

typedef enum arch_id { ARCH_LLAMA = 0 } arch_id;

typedef struct hparams {
    arch_id arch;
    const char *arch_name;
    int n_layer, n_embd, n_head, n_head_kv, head_dim, n_ff, n_vocab, n_ctx_train;
    int rope_dim;
    rope_kind rope;
    float rope_base, norm_eps;
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
} layer_weights;

struct kvs_model {
    char *path;
    gguf_file *file;
    kvs_tokenizer *tok;
    char *name;
    hparams hp;
    weight tok_embd, output_norm, output;
    layer_weights *layers;
};

#endif
