/* lanes.c - Q5_0 and Q5_1 rows rearranged for the AVX-512 tiles (see lanes.h).
 *
 * Why.  A Q5 block keeps the fifth bits of its 32 codes in one 32-bit word,
 * and the tiles take the codes of eight blocks at once, eight codes of each per
 * vector.  From the file's layout that needs, per vector, a shuffle and a bit
 * test to spread one byte of every block's word over eight code bytes: 40% of
 * a Q5_0 product when decoding one sequence (BENCHMARKS.md), where nothing
 * amortizes it.  Stored with the fifth bits already grouped by vector, the mask
 * of a vector is one 8-byte load.
 *
 * The layout of a row.  The row's blocks are taken eight at a time (the last
 * group has the n = blocks % 8 that remain, if any); a group of n blocks is
 *     d[n]          the blocks' fp16 scales
 *     m[n]          (Q5_1 only) the blocks' fp16 minimums
 *     hm[4][n]      hm[v][t] = byte v of block t's qh: the fifth bits of its
 *                   codes 8v..8v+7
 *     qs[2][n][8]   qs[u][t] = bytes 8u..8u+7 of block t's qs
 * which is 22n (Q5_0) or 24n (Q5_1) bytes, as in the file: a row keeps its
 * size, and a group of eight starts where the file's eight blocks start. */
#include "engine/lanes.h"

#include <string.h>

#include "engine/quant.h"

#define GROUP 8

static int is_q51(uint32_t t) { return t == GGT_Q5_1 || t == QT_Q5_1_LANES; }

uint32_t quant_lanes_of(uint32_t type) {
    return type == GGT_Q5_0 ? QT_Q5_0_LANES : type == GGT_Q5_1 ? QT_Q5_1_LANES : 0;
}

uint32_t quant_file_of(uint32_t type) {
    return type == QT_Q5_0_LANES ? GGT_Q5_0 : type == QT_Q5_1_LANES ? GGT_Q5_1 : type;
}

/* Byte offsets inside a group of n blocks, and where the file's block fields lie. */
typedef struct {
    size_t d, m, hm, qs;      /* group fields */
    size_t bbytes, bqh, bqs;  /* file block: size, qh, qs */
} group_layout;

static group_layout layout(uint32_t type, int n) {
    group_layout g;
    const int q51 = is_q51(type);
    g.bbytes = q51 ? sizeof(block_q5_1) : sizeof(block_q5_0);
    g.bqh = q51 ? 4 : 2;
    g.bqs = g.bqh + 4;
    g.d = 0;
    g.m = 2 * (size_t)n;
    g.hm = (q51 ? 4 : 2) * (size_t)n;
    g.qs = g.hm + 4 * (size_t)n;
    return g;
}

void quant_to_lanes(uint32_t type, const void *src, void *dst, int64_t k) {
    const uint8_t *s = src;
    uint8_t *o = dst;
    const int q51 = is_q51(type);
    for (int64_t b0 = 0; b0 < k / QK; b0 += GROUP) {
        const int n = (int)(k / QK - b0 < GROUP ? k / QK - b0 : GROUP);
        const group_layout g = layout(type, n);
        for (int t = 0; t < n; t++) {
            const uint8_t *blk = s + (size_t)t * g.bbytes;
            memcpy(o + g.d + 2 * (size_t)t, blk, 2);
            if (q51) memcpy(o + g.m + 2 * (size_t)t, blk + 2, 2);
            for (int v = 0; v < 4; v++) o[g.hm + (size_t)v * n + t] = blk[g.bqh + v];
            for (int u = 0; u < 2; u++) memcpy(o + g.qs + ((size_t)u * n + t) * 8, blk + g.bqs + 8 * u, 8);
        }
        s += (size_t)n * g.bbytes;
        o += (size_t)n * g.bbytes;
    }
}

void quant_from_lanes(uint32_t type, const void *src, void *dst, int64_t k) {
    const uint8_t *s = src;
    uint8_t *o = dst;
    const int q51 = is_q51(type);
    for (int64_t b0 = 0; b0 < k / QK; b0 += GROUP) {
        const int n = (int)(k / QK - b0 < GROUP ? k / QK - b0 : GROUP);
        const group_layout g = layout(type, n);
        for (int t = 0; t < n; t++) {
            uint8_t *blk = o + (size_t)t * g.bbytes;
            memcpy(blk, s + g.d + 2 * (size_t)t, 2);
            if (q51) memcpy(blk + 2, s + g.m + 2 * (size_t)t, 2);
            for (int v = 0; v < 4; v++) blk[g.bqh + v] = s[g.hm + (size_t)v * n + t];
            for (int u = 0; u < 2; u++) memcpy(blk + g.bqs + 8 * u, s + g.qs + ((size_t)u * n + t) * 8, 8);
        }
        s += (size_t)n * g.bbytes;
        o += (size_t)n * g.bbytes;
    }
}
