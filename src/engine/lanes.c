/* lanes.c - rows of the 32-wide formats (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0)
 * rearranged for the AVX-512 tiles (see lanes.h).
 *
 * Why.  The tiles take the codes of eight blocks at once, eight codes of each
 * per vector ("lane order", x86/quant_tiles_avx512.c).  From the file's layout,
 * where a block's scale, bits and codes lie together, that is a transpose of
 * eight loads per vector and, for Q5, a shuffle and a bit test per vector to
 * spread one byte of every block's fifth-bit word over eight code bytes.  When
 * one sequence decodes, nothing amortizes that: the Q5_0 product ran at 0.58 of
 * the speed it has in this layout (BENCHMARKS.md).  Here each vector is one
 * load, and a vector's fifth bits are its mask.
 *
 * The layout of a row.  The row's blocks are taken eight at a time (the last
 * group has the n = blocks % 8 that remain, if any); a group of n blocks is
 *     d[n]          the blocks' fp16 scales
 *     m[n]          (Q4_1, Q5_1) the blocks' fp16 minimums
 *     hm[4][n]      (Q5 only) hm[v][t] = byte v of block t's qh: the fifth
 *                   bits of its codes 8v..8v+7
 *     qs[w][n][8]   qs[u][t] = bytes 8u..8u+7 of block t's qs (w = 2 for the
 *                   nibble formats, 4 for Q8_0, whose codes are stored plus
 *                   128, unsigned, as the tiles multiply them)
 * which is 18n, 20n, 22n, 24n or 34n bytes, as in the file: a row keeps its
 * size, and a group of eight starts where the file's eight blocks start. */
#include "engine/lanes.h"

#include "engine/quant_blocks.h"

#define GROUP 8

uint32_t quant_lanes_of(uint32_t type) {
    switch (type) {
    case GGT_Q4_0: case GGT_Q4_1: case GGT_Q5_0: case GGT_Q5_1: case GGT_Q8_0: return 0x100 + type;
    default: return 0;
    }
}

uint32_t quant_file_of(uint32_t type) { return quant_is_lanes(type) ? type - 0x100 : type; }

/* Byte offsets inside a group of n blocks, and where the file's block fields lie. */
typedef struct {
    int has_m, q5, words;     /* has m (Q4_1, Q5_1); has qh (Q5); words of codes per block */
    size_t m, hm, qs;         /* group fields (d is at 0) */
    size_t bbytes, bqh, bqs;  /* file block: size, qh, qs */
} group_layout;

static group_layout layout(uint32_t type, int n) {
    group_layout g;
    const uint32_t ft = quant_file_of(type);
    g.has_m = ft == GGT_Q4_1 || ft == GGT_Q5_1;
    g.q5 = ft == GGT_Q5_0 || ft == GGT_Q5_1;
    g.words = ft == GGT_Q8_0 ? 4 : 2;
    g.bbytes = (size_t)ggtype_get(ft)->bytes;
    g.bqh = g.has_m ? 4 : 2;                 /* after d (and m) */
    g.bqs = g.bqh + (g.q5 ? 4 : 0);
    g.m = 2 * (size_t)n;
    g.hm = (g.has_m ? 4 : 2) * (size_t)n;
    g.qs = g.hm + (g.q5 ? 4 : 0) * (size_t)n;
    return g;
}

/* One field of a block, n bytes at `file` in the file's block and at `lanes`
 * in the group, copied in the direction of the conversion; Q8_0's codes are
 * stored plus 128 (`flip`), which the same flip undoes. */
typedef struct {
    const uint8_t *src;
    uint8_t *dst;
    int to_lanes;
} direction;

static void field(const direction *dir, size_t file, size_t lanes, int n, int flip) {
    const size_t from = dir->to_lanes ? file : lanes, to = dir->to_lanes ? lanes : file;
    for (int i = 0; i < n; i++) dir->dst[to + (size_t)i] = (uint8_t)(dir->src[from + (size_t)i] ^ (flip ? 0x80 : 0));
}

/* The walk over a row's fields that both conversions share: offsets are the
 * same, only which side is read changes. */
static void convert(uint32_t type, const void *src, void *dst, int64_t k, int to_lanes) {
    direction dir = {src, dst, to_lanes};
    for (int64_t b0 = 0; b0 < k / QK; b0 += GROUP) {
        const int n = (int)(k / QK - b0 < GROUP ? k / QK - b0 : GROUP);
        const group_layout g = layout(type, n);
        for (int t = 0; t < n; t++) {
            const size_t blk = (size_t)t * g.bbytes;
            field(&dir, blk, 2 * (size_t)t, 2, 0);
            if (g.has_m) field(&dir, blk + 2, g.m + 2 * (size_t)t, 2, 0);
            if (g.q5)
                for (int v = 0; v < 4; v++) field(&dir, blk + g.bqh + (size_t)v, g.hm + (size_t)v * n + (size_t)t, 1, 0);
            for (int u = 0; u < g.words; u++)
                field(&dir, blk + g.bqs + 8 * (size_t)u, g.qs + ((size_t)u * n + (size_t)t) * 8, 8, g.words == 4);
        }
        dir.src += (size_t)n * g.bbytes;
        dir.dst += (size_t)n * g.bbytes;
    }
}

void quant_to_lanes(uint32_t type, const void *src, void *dst, int64_t k) { convert(type, src, dst, k, 1); }

void quant_from_lanes(uint32_t type, const void *src, void *dst, int64_t k) { convert(type, src, dst, k, 0); }
