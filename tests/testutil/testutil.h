/* testutil.h - shared helpers for the cmocka test programs. */
#ifndef KVS_TESTUTIL_H
#define KVS_TESTUTIL_H
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>

#include "kvsteer.h"

/* Path of the default model (env KVS_MODEL overrides). */
const char *tu_model_path(void);
/* Path of the shared data directory (env KVS_DATA overrides). */
const char *tu_data_path(void);
/* The default model, loaded once per test program; fails the test if absent. */
kvs_model *tu_model(void);
/* Free the model loaded by tu_model (call at the end of main). */
void tu_release(void);
/* Read a whole file; NULL if it cannot be read.  *len gets the size. */
char *tu_read_file(const char *path, size_t *len);
/* Deterministic pseudo-random floats in [-1, 1) (xorshift). */
void tu_rand_floats(uint64_t *state, float *out, int n);
/* One xorshift64 step (the generator behind tu_rand_floats). */
uint64_t tu_next_u64(uint64_t *state);
/* A JSON file under the source tree (path relative to it), parsed; fails the
 * test if it cannot be read or parsed.  The caller deletes it. */
cJSON *tu_load_json(const char *rel);
/* A context on m (n_ctx positions per sequence, n_seq sequences, n_threads
 * workers or 0 for the default); fails the test on error. */
kvs_ctx *tu_ctx(const kvs_model *m, int n_ctx, int n_seq, int n_threads);
/* An on_prefilled hook (kvs_gen_request) that edits the cache with `s` and `p`:
 * pass a tu_cache_edit as the request's user pointer. */
typedef struct tu_cache_edit {
    const kvs_steer *s;
    kvs_steer_params p;
} tu_cache_edit;
int tu_cache_edit_hook(kvs_ctx *c, int seq, int last_pos, void *user, kvs_error *err);
/* malloc that fails the test instead of returning NULL (n = 0 allowed). */
void *tu_xmalloc(size_t n);

#endif
