/* utf8.h - UTF-8 in one place: the byte-level tokenizers' lenient decoding and
 * encoding of code points, and the strict checks that text leaving the library
 * as JSON needs (run files, HTTP answers) - a token may end inside a character,
 * and a model may generate bytes that are no UTF-8 at all. */
#ifndef KVS_UTF8_H
#define KVS_UTF8_H
#include <stddef.h>
#include <stdint.h>

/* The bytes of code point cp written to o[0..4); returns how many. */
static inline int utf8_put(uint32_t cp, char *o) {
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Lenient decoding of one code point at s[0..n): the lead byte gives the length,
 * continuation bytes must be 10xxxxxx; no check for overlong forms (like the
 * reference tokenizers, whose splits it must reproduce).  Returns the length
 * consumed, or 0 for an invalid sequence. */
static inline int utf8_get(const uint8_t *s, size_t n, uint32_t *cp) {
    uint8_t c = s[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    int len;
    uint32_t v;
    if ((c & 0xE0) == 0xC0) len = 2, v = c & 0x1F;
    else if ((c & 0xF0) == 0xE0) len = 3, v = c & 0x0F;
    else if ((c & 0xF8) == 0xF0) len = 4, v = c & 0x07;
    else return 0;
    if ((size_t)len > n) return 0;
    for (int i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        v = (v << 6) | (s[i] & 0x3F);
    }
    *cp = v;
    return len;
}

/* Length of the well-formed sequence that lead byte c may start (1-4); 0 for a
 * continuation byte or a byte no well-formed sequence starts with. */
int utf8_seq_len(unsigned char c);

/* A NUL-terminated copy of s[0..n) in which every byte that does not begin a
 * well-formed sequence (RFC 3629: no overlong forms, surrogates or code points
 * past U+10FFFF), and every NUL, becomes U+FFFD, so that JSON readers accept
 * it.  malloc'd; NULL when out of memory. */
char *utf8_clean(const char *s, size_t n);

#endif
