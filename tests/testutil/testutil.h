/* testutil.h - shared helpers for the cmocka test programs. */
#ifndef KVS_TESTUTIL_H
#define KVS_TESTUTIL_H
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

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
/* malloc that fails the test instead of returning NULL (n = 0 allowed). */
void *tu_xmalloc(size_t n);

#endif
