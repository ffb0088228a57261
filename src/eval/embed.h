/* embed.h - one vector per text, from the model itself: what similar-shot
 * selection compares questions by (pairs.c), and what the embedding cache
 * keeps (embcache.c). */
#ifndef KVS_EVAL_EMBED_H
#define KVS_EVAL_EMBED_H

#include "kvsteer.h"

/* Mean-pooled final hidden state of each text (n_embd floats each, into out).
 * Each text's result is bit-identical whatever texts share its batch.
 * EMBED_RECIPE names what embed_texts computes; it is part of the embedding
 * cache's key, so change it whenever the numbers could change. */
#define EMBED_RECIPE "question text; tokens with the model's BOS rule, no special tokens, first 511; f32 KV; final-norm hidden state; mean over tokens; v1"
int embed_texts(const kvs_model *m, const char *const *texts, int n, int n_threads, float *out,
                void (*progress)(int, int, const char *, void *), void *user, kvs_error *err);

#endif
