/* grow.h - growable arrays and text buffers, so that every module grows its
 * arrays the same way (capacity doubling, nothing lost when out of memory). */
#ifndef KVS_GROW_H
#define KVS_GROW_H
#include <stdarg.h>
#include <stddef.h>

/* Room for element n of an array p of capacity *cap elements of elt bytes:
 * p itself, or p moved to a larger block (*cap updated), or NULL when out of
 * memory (p is then still valid and still owned by the caller).  Usage:
 *   T *np = grow(arr, n, &cap, sizeof *arr); if (!np) fail; arr = np; arr[n++] = x; */
void *grow(void *p, int n, int *cap, size_t elt);
/* Room for `need` elements (size_t counts, for buffers that follow a text's
 * length): p itself, or p moved to a block of at least 64 elements, doubled
 * until it holds need (*cap updated); NULL when out of memory or when the size
 * overflows (p is then still valid and still owned by the caller). */
void *grow_to(void *p, size_t need, size_t *cap, size_t elt);

/* A NUL-terminated text built by appending; after an allocation failure
 * `oom` is set and further appends do nothing (check once at the end). */
typedef struct strbuf {
    char *p;   /* NULL until the first append */
    size_t n, cap;
    int oom;
} strbuf;

void sb_printf(strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sb_vprintf(strbuf *b, const char *fmt, va_list ap);
void sb_add(strbuf *b, const char *s);
void sb_addn(strbuf *b, const char *s, size_t n);
void sb_free(strbuf *b);

#endif
