/* vocab.h - the vocabulary a tokenizer is made of, shared by the two files of
 * the tokenizer: vocab.c reads it from GGUF metadata (tokens, merges, special
 * tokens, pre-tokenizer rules) and turns tokens back into bytes; tokenizer.c
 * encodes text with it.  Internal to the engine. */
#ifndef KVS_VOCAB_H
#define KVS_VOCAB_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "hash.h"
#include "utf8.h"
#include "tokenizer.h"

/* token attributes (bit set; the file's token_type is translated to one bit) */
enum {
    ATTR_UNDEFINED = 0,
    ATTR_UNKNOWN = 1 << 0,
    ATTR_UNUSED = 1 << 1,
    ATTR_NORMAL = 1 << 2,
    ATTR_CONTROL = 1 << 3,
    ATTR_USER = 1 << 4,
    ATTR_BYTE = 1 << 5,
    ATTR_LSTRIP = 1 << 6,
    ATTR_RSTRIP = 1 << 7
};

enum { MODEL_BPE = 1, MODEL_SPM = 2 };

#define MAX_RE 4

typedef struct merge_ent {
    uint64_t key; /* (left id << 32) | right id; MERGE_EMPTY when unused */
    int32_t rank;
    int32_t result;
} merge_ent;
#define MERGE_EMPTY UINT64_MAX

struct tokenizer {
    int model;
    int n_vocab;
    char *arena;      /* all token texts, each NUL-terminated */
    size_t *toff;     /* offset of token i in arena */
    uint32_t *tlen;   /* byte length of token i */
    int32_t *ftype;   /* token_type as stored in the file (1 normal when absent) */
    uint16_t *attr;
    float *score;     /* SPM only */

    int32_t *vslot;   /* vocabulary hash: text -> id; -1 = empty */
    uint32_t vmask;

    merge_ent *mslot; /* merges hash: (left, right) -> rank, result */
    uint32_t mmask;
    int32_t n_merges;

    int32_t byte_tok[256]; /* token of a single byte (byte-level symbol / <0xXX>) */

    int bos, eos, eot, eom, add_bos, add_space_prefix, ignore_merges;
    uint8_t *eog;
    uint8_t sp_first[256]; /* bytes that start some special token's text */
    uint32_t *sp_lens;     /* distinct lengths of special token texts, ascending */
    int n_sp_lens;

    pcre2_code *re[MAX_RE];
    int n_re;
    uint64_t hash;
};

/* ------------------------------------------------------------ byte-level map */

/* GPT-2's reversible byte <-> code point mapping: printable bytes map to
 * themselves, the other 68 bytes to 256, 257, ... in byte order. */
static inline int byte_printable(uint32_t b) {
    return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
}

static inline uint32_t byte_cp(int b) {
    if (byte_printable((uint32_t)b)) return (uint32_t)b;
    if (b <= 0x20) return 256u + (uint32_t)b;          /* 0x00..0x20: 33 bytes */
    if (b <= 0xA0) return 256u + 33u + (uint32_t)(b - 0x7F); /* 0x7F..0xA0: 34 bytes */
    return 256u + 67u;                                 /* 0xAD */
}

/* Inverse of byte_cp, or -1. */
static inline int cp_byte(uint32_t cp) {
    if (cp < 256) return byte_printable(cp) ? (int)cp : -1;
    if (cp < 256 + 33) return (int)(cp - 256);
    if (cp < 256 + 67) return (int)(cp - 256 - 33) + 0x7F;
    if (cp == 256 + 67) return 0xAD;
    return -1;
}

static inline const char *tok_text(const tokenizer *t, int32_t id) { return t->arena + t->toff[id]; }

static inline int32_t vocab_lookup(const tokenizer *t, const char *s, size_t n) {
    uint32_t h = (uint32_t)fnv1a(FNV1A_INIT, s, n);
    for (uint32_t i = h & t->vmask;; i = (i + 1) & t->vmask) {
        int32_t id = t->vslot[i];
        if (id < 0) return -1;
        if (t->tlen[id] == n && memcmp(tok_text(t, id), s, n) == 0) return id;
    }
}

static inline uint32_t merge_hash(uint64_t key) { return (uint32_t)((key * 0x9E3779B97F4A7C15ull) >> 32); }

static inline const merge_ent *merge_lookup(const tokenizer *t, int32_t a, int32_t b) {
    uint64_t key = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
    for (uint32_t i = merge_hash(key) & t->mmask;; i = (i + 1) & t->mmask) {
        const merge_ent *e = &t->mslot[i];
        if (e->key == key) return e;
        if (e->key == MERGE_EMPTY) return NULL;
    }
}


static inline int is_special(const tokenizer *t, int32_t id) {
    return (t->attr[id] & (ATTR_CONTROL | ATTR_USER | ATTR_UNKNOWN)) && t->tlen[id] > 0;
}

#endif
