/* ggtype.h - the ggml tensor type ids as GGUF files store them, with block sizes.
 * Knowing the size of every type (even ones we cannot compute with) lets the GGUF
 * reader validate any file and lets `inspect` describe it. */
#ifndef KVS_GGTYPE_H
#define KVS_GGTYPE_H
#include <stddef.h>
#include <stdint.h>

enum ggtype {
    GGT_F32 = 0, GGT_F16 = 1, GGT_Q4_0 = 2, GGT_Q4_1 = 3,
    GGT_Q5_0 = 6, GGT_Q5_1 = 7, GGT_Q8_0 = 8, GGT_Q8_1 = 9,
    GGT_Q2_K = 10, GGT_Q3_K = 11, GGT_Q4_K = 12, GGT_Q5_K = 13, GGT_Q6_K = 14, GGT_Q8_K = 15,
    GGT_IQ2_XXS = 16, GGT_IQ2_XS = 17, GGT_IQ3_XXS = 18, GGT_IQ1_S = 19, GGT_IQ4_NL = 20,
    GGT_IQ3_S = 21, GGT_IQ2_S = 22, GGT_IQ4_XS = 23, GGT_I8 = 24, GGT_I16 = 25, GGT_I32 = 26,
    GGT_I64 = 27, GGT_F64 = 28, GGT_IQ1_M = 29, GGT_BF16 = 30,
    GGT_TQ1_0 = 34, GGT_TQ2_0 = 35,
    GGT_COUNT = 40
};

typedef struct ggtype_info {
    const char *name;   /* NULL for ids that are not (or no longer) types */
    int block;          /* elements per block */
    int bytes;          /* bytes per block */
} ggtype_info;

/* NULL for an unknown id. */
const ggtype_info *ggtype_get(uint32_t type);
/* Bytes of a row of n elements; 0 if n is not a multiple of the block size. */
size_t ggtype_row_bytes(uint32_t type, uint64_t n);

#endif
