/* tokenizer.h - the model's tokenizer, built from GGUF vocabulary metadata.
 *
 * Byte-level BPE (tokenizer.ggml.model = "gpt2") with the pre-tokenizer split
 * rule named by tokenizer.ggml.pre, applied with PCRE2; special tokens
 * (control / user-defined entries such as "<|im_start|>") are matched in the
 * text before BPE when parse_special is set.  Results match llama.cpp's
 * tokenizer for the same file. */
#ifndef KVS_TOKENIZER_H
#define KVS_TOKENIZER_H
#include <stddef.h>
#include <stdint.h>

#include "gguf.h"
#include "kvsteer.h"

typedef struct tokenizer tokenizer;

/* Copies everything it needs; the gguf_file may be closed afterwards.
 * `label` (the file path) prefixes error messages. */
tokenizer *tokenizer_load(const gguf_file *f, const char *label, kvs_error *err);
void tokenizer_free(tokenizer *t);

int tokenizer_n_vocab(const tokenizer *t);
int tokenizer_bos(const tokenizer *t);      /* -1 if none */
int tokenizer_eos(const tokenizer *t);      /* -1 if none */
int tokenizer_eot(const tokenizer *t);      /* end of turn (e.g. <|im_end|>), -1 if none */
int tokenizer_add_bos(const tokenizer *t);  /* file's default */
int tokenizer_is_eog(const tokenizer *t, int32_t id);
/* FNV-1a 64 over token texts, types and merges: identifies a vocabulary. */
uint64_t tokenizer_hash(const tokenizer *t);
/* Id of a token whose text is exactly s, or -1. */
int32_t tokenizer_find(const tokenizer *t, const char *s);

/* Same contract as kvs_tokenize (add_bos -1 = file default). */
int tokenizer_encode(const tokenizer *t, const char *text, size_t len, int add_bos,
                     int parse_special, int32_t *out, int cap, kvs_error *err);
/* Bytes of a token (byte-level symbols mapped back to raw bytes); same contract
 * as kvs_token_to_bytes. */
int tokenizer_token_bytes(const tokenizer *t, int32_t id, char *buf, int cap);

#endif
