/* embcache.h - question embeddings of a trace file kept on disk, so that
 * similar-shot selection (pairs.h) embeds each question once per model, not
 * once per extraction.
 *
 * One file per (model, trace file, embedding recipe, kernel set), named by a
 * hash of that key in the cache folder and holding the key itself, so a file
 * is used only for exactly the inputs it was computed from.  It holds the
 * embeddings of some rows of the trace file (the rows some extraction needed),
 * each row computed alone, so rows from different runs mix freely.
 *
 * Layout (little-endian; docs/STEERING.md):
 *   "KVSEMBC\0"  u32 version  u32 key_len  key (key_len bytes, no NUL)
 *   u32 n_rows  u32 dim  u32 n_have  n_rows bytes (1: row present)
 *   n_have * dim f32 (present rows in row order)  u64 FNV-1a of all before
 * Anything else - absent, short, long, another version, key or shape, a
 * checksum that does not match - is reported and never used. */
#ifndef KVS_EMBCACHE_H
#define KVS_EMBCACHE_H
#include <stddef.h>
#include <stdint.h>

#include "kvsteer.h"

#define EMBCACHE_VERSION 1u

/* What the cache did in one pairs_build (pair_opts.cache_out). */
typedef enum embcache_state {
    EMBCACHE_OFF = 0, /* no cache folder, or nothing was embedded */
    EMBCACHE_HIT,     /* every needed row came from the file */
    EMBCACHE_PARTIAL, /* some rows came from the file, the rest were embedded and added */
    EMBCACHE_MISS     /* no usable file: every row was embedded (why says why) */
} embcache_state;

typedef struct embcache_outcome {
    embcache_state state;
    char path[4096];   /* the cache file */
    int n_cached;      /* rows taken from the file */
    int n_computed;    /* rows embedded now */
    int absent;        /* MISS because there was no file yet (the normal first run) */
    char why[600];     /* MISS: why the file was not used ("" when absent) */
    char warning[600]; /* the file could not be written (the extraction is unaffected) */
} embcache_outcome;

/* The cache folder when none is given: $XDG_CACHE_HOME/kvsteer, else
 * $HOME/.cache/kvsteer; 0, or KVS_E_ARG when neither variable is set. */
int embcache_default_dir(char *out, size_t cap, kvs_error *err);

/* The key of the embeddings of trace file `traces` under model file `model`
 * (fingerprints of both, the embedding recipe of pairs.h, the kernel set in
 * use, the width `dim`) as one line of text, and the cache file for it in
 * folder `dir`. */
int embcache_key(const char *model, const char *traces, int dim, char *key, size_t key_cap, kvs_error *err);
int embcache_path(const char *dir, const char *key, char *out, size_t cap, kvs_error *err);

/* Read a cache file made for `key` with n_rows rows of dim floats: rows the
 * file holds go to emb (row r at emb + r*dim) with have[r] = 1, the others are
 * left alone.  A file that cannot be read is KVS_E_IO; one that does not hold
 * exactly this key's embeddings is KVS_E_FORMAT or KVS_E_MISMATCH, saying why;
 * either way nothing in emb or have changes. */
int embcache_read(const char *path, const char *key, int n_rows, int dim, float *emb, uint8_t *have,
                  kvs_error *err);
/* Write the rows with have[r] set, atomically (creating the folder). */
int embcache_write(const char *path, const char *key, int n_rows, int dim, const float *emb,
                   const uint8_t *have, kvs_error *err);

/* The embeddings (embed_texts, embed.h) of the n trace rows listed in rows,
 * into emb (n_rows * dim floats; other rows untouched).  With a cache folder
 * `dir`, rows the cache file holds are read from it, only the others are
 * embedded, and the file is rewritten with them; what happened, and any
 * trouble with the file (which never fails the call), goes to *out.  dir NULL:
 * every row is embedded.  texts[r] is row r's text; model and traces are the
 * files the key is made from.  Errors are the embedding's own. */
int embcache_embed_rows(const kvs_model *m, const char *model, const char *traces, const char *const *texts,
                        int n_rows, const int *rows, int n, const char *dir, int n_threads,
                        void (*progress)(int, int, const char *, void *), void *user, float *emb,
                        embcache_outcome *out, kvs_error *err);

#endif
