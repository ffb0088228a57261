#include "error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int err_fail(kvs_error *err, int code, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        /* one line: a message built from file contents must not smuggle newlines */
        for (char *p = err->msg; *p; p++)
            if (*p == '\n' || *p == '\r') *p = ' ';
        err->code = code;
    }
    return code;
}

void err_clear(kvs_error *err) {
    if (err) {
        err->code = KVS_OK;
        err->msg[0] = '\0';
    }
}
