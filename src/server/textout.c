/* textout.c - a response's text as it is generated (textout.h). */
#include "textout.h"

#include <stdlib.h>
#include <string.h>

#include "engine/utf8.h"

/* Largest end <= n that does not cut a character that may still be completed. */
static size_t complete_prefix(const char *s, size_t n) {
    for (size_t back = 1; back <= 3 && back <= n; back++) {
        const unsigned char c = (unsigned char)s[n - back];
        if ((c & 0xC0) == 0x80) continue; /* continuation: look further back */
        const int need = utf8_seq_len(c);
        return need > (int)back ? n - back : n;
    }
    return n;
}

int textout_add(textout *t, const char *bytes, size_t n, char *const *stop, int n_stop) {
    if (t->stopped) return 1;
    const size_t old = t->s.n;
    sb_addn(&t->s, bytes, n);
    if (t->s.oom) return -1;
    char *buf = t->s.p;
    size_t len = t->s.n;
    size_t hold = 0;
    for (int i = 0; i < n_stop; i++) {
        const size_t sl = strlen(stop[i]);
        /* a match must end in the new bytes: start the search sl-1 before them */
        const size_t from = old >= sl ? old - sl + 1 : 0;
        for (size_t p = from; p + sl <= len; p++)
            if (!memcmp(buf + p, stop[i], sl)) {
                t->s.n = p;
                buf[p] = 0;
                t->stopped = 1;
                t->ready = p;
                return 1;
            }
        /* the longest tail that is a proper prefix of this stop string is held back */
        for (size_t k = sl - 1; k > hold; k--)
            if (k <= len && !memcmp(buf + len - k, stop[i], k)) {
                hold = k;
                break;
            }
    }
    const size_t r = complete_prefix(buf, len - hold);
    if (r > t->ready) t->ready = r;
    return 0;
}

void textout_finish(textout *t) { t->ready = t->s.n; }

void textout_free(textout *t) {
    sb_free(&t->s);
    memset(t, 0, sizeof *t);
}
