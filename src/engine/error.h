/* error.h - filling a caller's kvs_error; the library reports, never prints. */
#ifndef KVS_ERROR_H
#define KVS_ERROR_H
#include "kvsteer.h"

#if defined(__GNUC__)
#define PRINTF_LIKE(a, b) __attribute__((format(printf, a, b)))
#else
#define PRINTF_LIKE(a, b)
#endif

/* Sets err (if non-NULL) and returns `code`, so callers can `return err_fail(...)`. */
int err_fail(kvs_error *err, int code, const char *fmt, ...) PRINTF_LIKE(3, 4);
void err_clear(kvs_error *err);

#endif
