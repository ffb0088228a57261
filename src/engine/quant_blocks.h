/* quant_blocks.h - the block formats of GGUF's quantized tensors, as ggml lays
 * them out.  The reference kernels, the SIMD kernels and the lanes layout all
 * read these; nothing here computes. */
#ifndef KVS_QUANT_BLOCKS_H
#define KVS_QUANT_BLOCKS_H
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define QK 32 /* elements per block of the 32-wide formats */

typedef struct { uint16_t d; uint8_t qs[QK / 2]; } block_q4_0;            /* x = d*(q-8) */
typedef struct { uint16_t d, m; uint8_t qs[QK / 2]; } block_q4_1;         /* x = d*q + m */
typedef struct { uint16_t d; int8_t qs[QK]; } block_q8_0;                 /* x = d*q */
typedef struct { uint16_t d, s; int8_t qs[QK]; } block_q8_1;              /* s = d*sum(q) */
typedef struct { uint16_t d; uint8_t qh[4]; uint8_t qs[QK / 2]; } block_q5_0;    /* x = d*(q-16) */
typedef struct { uint16_t d, m; uint8_t qh[4]; uint8_t qs[QK / 2]; } block_q5_1; /* x = d*q + m */
/* In Q4_0/Q4_1/Q5_0/Q5_1, byte j holds element j in its low nibble and element
 * j+16 in its high one; in Q5_*, bit j of the little-endian word qh is the fifth
 * bit of element j. */

/*
 * K-quants: super-blocks of 256 elements in sub-blocks with their own integer
 * scales, which are themselves scaled by fp16 super-block factors.
 *  Q4_K/Q5_K: 8 sub-blocks of 32, x = d*sc[s]*q - dmin*mn[s], sc/mn 6-bit, packed
 *    in scales[12] (see k_scale_min).  Each 64-element run uses 32 bytes of
 *    qs: low nibbles are its first 32 elements, high nibbles the next 32.  Q5_K's
 *    fifth bit of element 64r+i is bit 2r of qh[i], of 64r+32+i bit 2r+1.
 *  Q6_K: 16 sub-blocks of 16, x = d*scales[s]*(q-32), q 6-bit: the 128-element
 *    half h uses ql[64h..64h+63] and qh[32h..32h+31]; its element 32t+i (t<4,
 *    i<32) has low four bits from ql[64h + 32*(t&1) + i] (low nibble for t<2,
 *    high for t>=2) and high two bits from qh[32h+i] >> 2t.
 *  Q8_K: the activation type, x = d*q with a float d, and bsums[g] the sum of
 *    the codes of elements 16g..16g+15 (so the minimum and offset terms of the
 *    weights need no pass over the elements).
 */
#define QK_K 256
typedef struct { uint16_t d, dmin; uint8_t scales[12]; uint8_t qs[QK_K / 2]; } block_q4_k;
typedef struct { uint16_t d, dmin; uint8_t scales[12]; uint8_t qh[QK_K / 8]; uint8_t qs[QK_K / 2]; } block_q5_k;
typedef struct { uint8_t ql[QK_K / 2]; uint8_t qh[QK_K / 4]; int8_t scales[QK_K / 16]; uint16_t d; } block_q6_k;
typedef struct { float d; int8_t qs[QK_K]; int16_t bsums[QK_K / 16]; } block_q8_k;

/* Q8_K blocks are read through byte offsets: activation rows need not keep the
 * block's float 4-aligned, so no block_q8_k lvalue is ever formed. */
static inline float q8k_d(const uint8_t *y) {
    float d;
    memcpy(&d, y + offsetof(block_q8_k, d), sizeof d);
    return d;
}
static inline const int8_t *q8k_qs(const uint8_t *y) { return (const int8_t *)(y + offsetof(block_q8_k, qs)); }
/* the sum of the codes of elements 16g..16g+15 */
static inline int16_t q8k_bsum(const uint8_t *y, int g) {
    int16_t v;
    memcpy(&v, y + offsetof(block_q8_k, bsums) + 2 * (size_t)g, sizeof v);
    return v;
}

/* Sub-block s (< 8) of the packed 6-bit scales of Q4_K/Q5_K: the first four scales
 * and mins are the low six bits of bytes 0..3 and 4..7; the last four take their
 * low four bits from the nibbles of bytes 8..11 and their top two bits from the
 * spare top bits of bytes 0..7. */
static inline void k_scale_min(const uint8_t *q, int s, uint8_t *sc, uint8_t *mn) {
    if (s < 4) {
        *sc = q[s] & 63;
        *mn = q[s + 4] & 63;
    } else {
        *sc = (uint8_t)((q[s + 4] & 15) | ((q[s - 4] >> 6) << 4));
        *mn = (uint8_t)((q[s + 4] >> 4) | ((q[s] >> 6) << 4));
    }
}

/* Q4_K/Q5_K's eight 6-bit scales and mins (k_scale_min's rule for all eight
 * at once): bytes 0..7 of *sc and *mn. */
static inline void k_scales(const uint8_t *q, uint64_t *sc, uint64_t *mn) {
    uint32_t u0, u1, u2;
    memcpy(&u0, q, 4);
    memcpy(&u1, q + 4, 4);
    memcpy(&u2, q + 8, 4);
    const uint32_t lo6 = 0x3f3f3f3fu, lo4 = 0x0f0f0f0fu, lo2 = 0x03030303u;
    const uint32_t sc_hi = (u2 & lo4) | (((u0 >> 6) & lo2) << 4);
    const uint32_t mn_hi = ((u2 >> 4) & lo4) | (((u1 >> 6) & lo2) << 4);
    *sc = (uint64_t)(u0 & lo6) | ((uint64_t)sc_hi << 32);
    *mn = (uint64_t)(u1 & lo6) | ((uint64_t)mn_hi << 32);
}

#endif
