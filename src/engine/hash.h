/* hash.h - FNV-1a 64, the one non-cryptographic hash of the project: the
 * tokenizer fingerprint stored in vector files, the run-file fingerprints of
 * models and data, and sweep's vector cache names all use it, so changing it
 * changes every one of those on disk. */
#ifndef KVS_HASH_H
#define KVS_HASH_H
#include <stddef.h>
#include <stdint.h>

#define FNV1A_INIT 0xcbf29ce484222325ull

/* h continued over n bytes. */
static inline uint64_t fnv1a(uint64_t h, const void *p, size_t n) {
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

#endif
