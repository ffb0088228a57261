/* utf8.c - strict UTF-8 checks (utf8.h). */
#include "utf8.h"

#include <stdlib.h>
#include <string.h>

int utf8_seq_len(unsigned char c) {
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) return 2;
    if (c >= 0xE0 && c <= 0xEF) return 3;
    if (c >= 0xF0 && c <= 0xF4) return 4;
    return 0;
}

char *utf8_clean(const char *s, size_t n) {
    if (n > (SIZE_MAX - 1) / 3) return NULL;
    char *o = malloc(3 * n + 1); /* each bad byte becomes three */
    if (!o) return NULL;
    const unsigned char *p = (const unsigned char *)s;
    size_t j = 0;
    for (size_t i = 0; i < n;) {
        const unsigned char c = p[i];
        const size_t k = (size_t)utf8_seq_len(c);
        /* the second byte's range also rules out overlong forms (E0, F0),
         * surrogates (ED) and code points past U+10FFFF (F4) */
        const unsigned char lo = c == 0xE0 ? 0xA0 : c == 0xF0 ? 0x90 : 0x80;
        const unsigned char hi = c == 0xED ? 0x9F : c == 0xF4 ? 0x8F : 0xBF;
        int ok = k > 0 && c != 0 && i + k <= n;
        for (size_t q = 1; ok && q < k; q++) ok = p[i + q] >= (q == 1 ? lo : 0x80) && p[i + q] <= (q == 1 ? hi : 0xBF);
        if (ok) {
            memcpy(o + j, p + i, k);
            j += k;
            i += k;
        } else {
            memcpy(o + j, "\xEF\xBF\xBD", 3);
            j += 3;
            i++;
        }
    }
    o[j] = 0;
    return o;
}
