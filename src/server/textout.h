/* textout.h - the text of a response as its tokens arrive: where the stop
 * strings cut it, and how much of it can be sent now (never half a UTF-8
 * character, never the start of what may become a stop string). */
#ifndef KVS_SERVER_TEXTOUT_H
#define KVS_SERVER_TEXTOUT_H
#include <stddef.h>

#include "engine/grow.h"

typedef struct textout {
    strbuf s;      /* the text so far (s.p is NULL before the first bytes) */
    size_t ready;  /* bytes of it that may be sent */
    int stopped;   /* a stop string was found: the text ends just before it */
} textout;

/* Append a token's bytes and look for the stop strings.  Returns 1 when a stop
 * string was found (the text is cut before it), 0 otherwise, -1 when out of memory. */
int textout_add(textout *t, const char *bytes, size_t n, char *const *stop, int n_stop);
/* The response is complete: everything left is ready. */
void textout_finish(textout *t);
void textout_free(textout *t);

#endif
