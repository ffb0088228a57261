/* error.h - filling a caller's kvs_error; the library reports, never prints. */
#ifndef KVS_ERROR_H
#define KVS_ERROR_H
#include "kvsteer.h"

#if defined(__GNUC__)
#define KVS_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define KVS_PRINTF(a, b)
#endif

/* Sets err (if non-NULL) and returns `code`, so callers can `return kvs_fail(...)`. */
int kvs_fail(kvs_error *err, int code, const char *fmt, ...) KVS_PRINTF(3, 4);
void kvs_error_clear(kvs_error *err);

#endif
