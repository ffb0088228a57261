/* quant_tiles_avx512.c - the AVX-512 VNNI matrix tiles of every quantized
 * weight type: the K-quants (Q4_K, Q5_K, Q6_K against Q8_K activations) and the
 * 32-wide formats (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 against Q8_0 or Q8_1).  Built
 * with the AVX-512 flags; only called after quant.c has checked the CPU.
 *
 * Why a layout step.  A K-quant super-block packs its 256 codes in nibbles and
 * bit planes and its sub-block scales in 6-bit fields; the 32-wide formats
 * split theirs over nibbles and a bit word: unpacking costs about as much as
 * the products themselves.  So each tile first unpacks its weight rows, one
 * k-chunk at a time, into a staging area (one code per byte, in the lane order
 * below) with each lane's scale beside it.  The unpacking is then paid once per
 * staged group of activation rows instead of once per product, and the product
 * loop is loads and VNNI instructions only.  The 32-wide formats are handled as
 * super-blocks of eight blocks (a block is then a "sub-block" of 32 with its own
 * scale, as in Q4_K), zero-padded where a row ends inside one.
 *
 * Exactness.  Each 32-bit lane sums the products of one sub-block (see "the
 * lane order" below), exactly: unsigned codes, at most 16*255*127 per lane.
 * Offsets (Q6_K's -32, Q4_0's -8, Q5_0's -16, and Q8_0's +128, which makes its
 * signed codes unsigned) are exact integer terms from the activation codes,
 * set in the lanes before the products.  The float factors (d * the sub-block
 * scale per lane, the activation's d per lane, and the min terms of Q4_K, Q5_K,
 * Q4_1 and Q5_1) are applied in float, so results differ from the references
 * only in float rounding.  A row's result never depends on which other rows or
 * activations share its tile.
 */
#include <immintrin.h>
#include <stddef.h>
#include <string.h>

#include "engine/lanes.h"
#include "engine/ggtype.h"
#include "engine/quant_blocks.h"
#include "engine/quant_internal.h"
#include "engine/quant_ref.h"
#include "simd512.h"

#define INLINE static inline __attribute__((always_inline))

#define KR 4   /* weight rows per tile (simd512_sum4 reduces one activation's four) */
_Static_assert(KR == 4, "a tile row of results is one 128-bit vector");
#define KJ 3   /* activation rows per tile: 2*KR*KJ accumulators fit the 32 registers */
#define NBK 8  /* super-blocks per k-chunk: the staged rows stay in L1 */
#define KJC 32 /* activation rows whose factors are staged together */
#define PFT 4  /* one sequence: the tile PFT tiles ahead is prefetched (1 and 2 were slower) */
#define SB 8   /* 32-wide blocks per super-block */
#define Q8K_BYTES ((int)sizeof(block_q8_k))
#define Q8K_QS ((int)offsetof(block_q8_k, qs))
#define Q8K_BSUMS ((int)offsetof(block_q8_k, bsums))

/* KQ_*L: the 32-wide formats' rows in the lanes layout of engine/lanes.h */
enum { KQ_Q4K, KQ_Q5K, KQ_Q6K, KQ_Q4_0, KQ_Q4_1, KQ_Q5_0, KQ_Q5_1, KQ_Q8_0,
       KQ_Q4_0L, KQ_Q4_1L, KQ_Q5_0L, KQ_Q5_1L, KQ_Q8_0L };
#define IS_LANES(kind) ((kind) >= KQ_Q4_0L)
#define IS_K(kind) ((kind) <= KQ_Q6K)
/* a min term: x = d*sc*q - dmin*min (Q4_K, Q5_K) or x = d*q + m (Q4_1, Q5_1) */
#define HAS_MIN(kind)                                                                                        \
    ((kind) == KQ_Q4K || (kind) == KQ_Q5K || (kind) == KQ_Q4_1 || (kind) == KQ_Q5_1 || (kind) == KQ_Q4_1L ||   \
     (kind) == KQ_Q5_1L)
/* an offset on the codes, removed from the lanes before the products */
#define HAS_OFF(kind)                                                                                        \
    ((kind) == KQ_Q6K || (kind) == KQ_Q4_0 || (kind) == KQ_Q5_0 || (kind) == KQ_Q8_0 || (kind) == KQ_Q4_0L ||   \
     (kind) == KQ_Q5_0L || (kind) == KQ_Q8_0L)

INLINE float f16_at(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return _cvtsh_ss(h);
}

/* The lane order.  vpdpbusd adds four products into each 32-bit lane; if a
 * lane held products of different sub-blocks from one vector to the next (as
 * element order gives), every vpdpbusd would need a second instruction to apply
 * its lanes' scales.  So codes and activations are both permuted, the same way,
 * into four vectors per super-block in which lane l always belongs to the same
 * sub-block: Q4_K/Q5_K lane l to sub-block l/2 (vector t, lane 2s+e holds
 * elements 32s+8t+4e..+3), Q6_K lane l to sub-block l (vector u holds elements
 * 16l+4u..+3).  Four vpdpbusd then leave each lane with its sub-block's
 * products (at most 16*255*127, exact in int32 and in float), and one convert and
 * one multiply-add per super-block apply the scales in float.  The 32-wide
 * formats take Q4_K's order with their blocks as its sub-blocks. */

/* One weight row's k-chunk, unpacked. */
typedef struct {
    _Alignas(64) uint8_t codes[NBK][QK_K]; /* unsigned codes, in lane order */
    _Alignas(64) float sw[NBK][16];        /* d * the scale of lane l's sub-block */
    /* per sub-block: dmin * min (Q4_K, Q5_K) or -m (Q4_1, Q5_1); subtracted */
    _Alignas(64) float mins[NBK * 8 + 8];
} wstage;

/* A k-chunk of up to KJC activation rows, in lane order (a Q8_K block is 292
 * bytes, so its codes straddle cache lines where they lie), with the factors the
 * tiles need per super-block. */
typedef struct {
    _Alignas(64) int8_t qs[KJC][NBK][QK_K];
    _Alignas(64) int32_t off[KJC][NBK][16];    /* -offset * (sum of the codes lane l meets) */
    _Alignas(64) float sa[KJC][NBK][16];       /* the activation's d for lane l */
    /* per sub-block: d_y * (sum of its codes) (K-quants) or Q8_1's s */
    _Alignas(64) float mins[KJC][NBK * 8 + 8];
} astage;

/* The 32-bit word of a super-block's activation codes that lane l of vector v
 * takes (a 32-wide block counts as a sub-block of 32). */
INLINE int act_word(const int kind, int v, int l) {
    return kind == KQ_Q6K ? 4 * l + v : 8 * (l >> 1) + 2 * v + (l & 1);
}

/* The code offset the lanes remove: stored code - offset = the format's code. */
INLINE int code_offset(const int kind) {
    return kind == KQ_Q6K                        ? 32
           : kind == KQ_Q4_0 || kind == KQ_Q4_0L ? 8
           : kind == KQ_Q5_0 || kind == KQ_Q5_0L ? 16
           : kind == KQ_Q8_0 || kind == KQ_Q8_0L ? 128
                                                 : 0;
}

/* Super-block b of activation row y, in lane order.  `nblk`: the 32-wide
 * blocks the row still has from this super-block on (K-quants: unused). */
static void stage_act_sb(const int kind, const uint8_t *y, astage *s, int j, int b, int nblk) {
    uint32_t w[QK_K / 4], *o = (uint32_t *)(void *)s->qs[j][b];
    float *mins = s->mins[j] + 8 * b;
    if (IS_K(kind)) {
        float dy;
        memcpy(&dy, y, sizeof dy);
        memcpy(w, y + Q8K_QS, QK_K);
        int16_t bs[16];
        memcpy(bs, y + Q8K_BSUMS, sizeof bs);
        for (int l = 0; l < 16; l++) s->sa[j][b][l] = dy;
        if (kind == KQ_Q6K)
            for (int l = 0; l < 16; l++) s->off[j][b][l] = -32 * (int32_t)bs[l];
        else
            for (int t = 0; t < 8; t++) mins[t] = dy * (float)(bs[2 * t] + bs[2 * t + 1]);
    } else {
        /* Q8_0 (d, codes) or, for the formats with a min, Q8_1 (d, s, codes) */
        const int q81 = HAS_MIN(kind);
        const size_t abs_ = q81 ? sizeof(block_q8_1) : sizeof(block_q8_0);
        for (int t = 0; t < SB; t++) {
            const uint8_t *blk = y + (size_t)t * abs_;
            const int have = t < nblk;
            if (have) memcpy(w + 8 * t, blk + (q81 ? 4 : 2), QK);
            else memset(w + 8 * t, 0, QK);
            s->sa[j][b][2 * t] = s->sa[j][b][2 * t + 1] = have ? f16_at(blk) : 0.0f;
            mins[t] = have && q81 ? f16_at(blk + 2) : 0.0f;
        }
    }
    for (int v = 0; v < 4; v++)
        for (int l = 0; l < 16; l++) o[16 * v + l] = w[act_word(kind, v, l)];
    if (HAS_OFF(kind) && kind != KQ_Q6K)
        for (int l = 0; l < 16; l++) {
            int sum = 0;
            for (int v = 0; v < 4; v++)
                for (int i = 0; i < 4; i++) sum += s->qs[j][b][64 * v + 4 * l + i];
            s->off[j][b][l] = -code_offset(kind) * sum;
        }
}

/* Q4_K/Q5_K super-block x: d * the scale of each lane's sub-block, and dmin *
 * min of each sub-block (mins[0..7]). */
INLINE __m512 q45k_factors(const uint8_t *x, float *mins) {
    uint64_t sc, mn;
    k_scales(x + 4, &sc, &mn);
    const float dmin = f16_at(x + 2);
    _mm256_storeu_ps(mins, _mm256_mul_ps(_mm256_set1_ps(dmin),
                                         _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_cvtsi64_si128((long long)mn)))));
    const __m128i pairs = _mm_shuffle_epi8(_mm_cvtsi64_si128((long long)sc),
                                           _mm_setr_epi8(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7));
    return _mm512_mul_ps(_mm512_set1_ps(f16_at(x)), _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(pairs)));
}

/* Vector t of a Q4_K/Q5_K super-block's codes, in lane order.  qs bytes
 * 32q..32q+31 hold sub-block 2q's codes in their low nibbles and 2q+1's in
 * their high ones, so 64-bit word 4q+t of qs, taken twice, gives both
 * sub-blocks' eight codes 8t..8t+7. */
INLINE __m512i q45k_vec(const int five, const uint8_t *x, int t) {
    const uint8_t *qs = x + (five ? offsetof(block_q5_k, qs) : offsetof(block_q4_k, qs));
    const __m512i z0 = _mm512_loadu_si512((const void *)qs), z1 = _mm512_loadu_si512((const void *)(qs + 64));
    const __m512i idx = _mm512_add_epi64(_mm512_setr_epi64(0, 0, 4, 4, 8, 8, 12, 12), _mm512_set1_epi64(t));
    const __m512i c = _mm512_permutex2var_epi64(z0, idx, z1);
    __m512i v = _mm512_and_si512(_mm512_srlv_epi64(c, _mm512_setr_epi64(0, 4, 0, 4, 0, 4, 0, 4)),
                                 _mm512_set1_epi8(15));
    if (five) { /* bit s of qh[i] tops sub-block s's code i: word t of qh, once per sub-block */
        uint64_t h;
        memcpy(&h, x + offsetof(block_q5_k, qh) + 8 * t, 8);
        const __m512i hb = _mm512_srlv_epi64(_mm512_set1_epi64((long long)h), _mm512_setr_epi64(0, 1, 2, 3, 4, 5, 6, 7));
        v = _mm512_or_si512(v, _mm512_and_si512(_mm512_slli_epi64(hb, 4), _mm512_set1_epi8(16)));
    }
    return v;
}

/* Q6_K super-block x: d * the scale of each lane's sub-block. */
INLINE __m512 q6k_factors(const uint8_t *x) {
    const __m128i s8 = _mm_loadu_si128((const __m128i *)(const void *)(x + offsetof(block_q6_k, scales)));
    return _mm512_mul_ps(_mm512_set1_ps(f16_at(x + offsetof(block_q6_k, d))),
                         _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(s8)));
}

/* Vector u of a Q6_K super-block's codes (0..63), in lane order.  Sub-block l
 * (h = l/8, m = l%8) is elements 128h+32t+i0.. with t = m/2, i0 = 16(l%2): its
 * low nibbles are in ql bytes 64h+16(l%4)+.. (the high nibble when m >= 4), its
 * top bits in qh bytes 32h+16(l%2)+.., bits 2t..2t+1. */
INLINE __m512i q6k_vec(const uint8_t *x, int u) {
    const uint8_t *ql = x + offsetof(block_q6_k, ql);
    const __m512i z0 = _mm512_loadu_si512((const void *)ql), z1 = _mm512_loadu_si512((const void *)(ql + 64));
    const __m512i hq = _mm512_loadu_si512((const void *)(x + offsetof(block_q6_k, qh)));
    const __m512i uu = _mm512_set1_epi32(u);
    const __m512i li = _mm512_add_epi32(_mm512_setr_epi32(0, 4, 8, 12, 0, 4, 8, 12, 16, 20, 24, 28, 16, 20, 24, 28), uu);
    const __m512i hi = _mm512_add_epi32(_mm512_setr_epi32(0, 4, 0, 4, 0, 4, 0, 4, 8, 12, 8, 12, 8, 12, 8, 12), uu);
    const __m512i lo = _mm512_and_si512(
        _mm512_srlv_epi32(_mm512_permutex2var_epi32(z0, li, z1),
                          _mm512_setr_epi32(0, 0, 0, 0, 4, 4, 4, 4, 0, 0, 0, 0, 4, 4, 4, 4)),
        _mm512_set1_epi8(15));
    const __m512i top = _mm512_srlv_epi32(_mm512_permutexvar_epi32(hi, hq),
                                          _mm512_setr_epi32(0, 0, 2, 2, 4, 4, 6, 6, 0, 0, 2, 2, 4, 4, 6, 6));
    return _mm512_or_si512(lo, _mm512_and_si512(_mm512_slli_epi32(top, 4), _mm512_set1_epi8(48)));
}

INLINE __m512i kq_vec(const int kind, const uint8_t *x, int v) {
    return kind == KQ_Q6K ? q6k_vec(x, v) : q45k_vec(kind == KQ_Q5K, x, v);
}

/* Super-block x of a 32-wide format (`nblk` of its eight blocks, `wbs` bytes
 * apart, are in the row): its four lane-order code vectors into codes, each
 * lane's d into sw, and each block's -m into mins.  Vector v lane 2t+e takes
 * codes 8v+4e..+3 of block t, so vector v is word v of every block's codes
 * (Q8_0), or for the nibble formats word v&1 of every block's qs, low nibbles
 * for v < 2 and high ones after.  Blocks past the row's end are read as zeros:
 * their d is 0, and so are the activations they meet.
 *
 * Each block's codes are one unaligned load, and the vectors a transpose of
 * those loads.  Gathering each word of the eight blocks instead (five gathers
 * per super-block) made decoding one sequence, where nothing amortizes the
 * unpacking, 1.4 times slower on the 0.5B's Q5_0 rows (bench/tiles.c, one
 * thread, k 1024).  One gather is left, for the blocks' leading words: d (and
 * m, and Q5's qh). */
INLINE __m128i blk128(const uint8_t *x, size_t wbs, int t, int nblk, size_t off) {
    return t < nblk ? _mm_loadu_si128((const __m128i *)(const void *)(x + (size_t)t * wbs + off)) : _mm_setzero_si128();
}
INLINE __m256i blk256(const uint8_t *x, size_t wbs, int t, int nblk, size_t off) {
    return t < nblk ? _mm256_loadu_si256((const __m256i *)(const void *)(x + (size_t)t * wbs + off))
                    : _mm256_setzero_si256();
}

/* Eight blocks' factors: d as each lane's weight scale (lanes 2t and 2t+1 are
 * block t, returned), and -m into mins[0..7] (0 for a format without a min). */
INLINE __m512 block_factors(__m256 d8, const int has_m, __m256 m8, float *mins) {
    _mm256_storeu_ps(mins, has_m ? _mm256_sub_ps(_mm256_setzero_ps(), m8) : _mm256_setzero_ps());
    return _mm512_permutexvar_ps(_mm512_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7),
                                 _mm512_castps256_ps512(d8));
}

INLINE __m512 q_unpack(const int kind, const uint8_t *x, size_t wbs, int nblk, __m512i c[4], float *mins) {
    const __mmask8 have = nblk >= SB ? 0xff : (__mmask8)((1u << nblk) - 1);
    const __m512i idx = _mm512_mullo_epi64(_mm512_setr_epi64(0, 1, 2, 3, 4, 5, 6, 7), _mm512_set1_epi64((long long)wbs));
    const __m512i head = _mm512_mask_i64gather_epi64(_mm512_setzero_si512(), have, idx, (const void *)x, 1);
    const __m256i dm = _mm512_cvtepi64_epi32(head);
    const __m256 d8 = _mm256_cvtph_ps(_mm256_castsi256_si128(_mm256_permutevar8x32_epi32(
        _mm256_packus_epi32(_mm256_and_si256(dm, _mm256_set1_epi32(0xffff)), _mm256_setzero_si256()),
        _mm256_setr_epi32(0, 1, 4, 5, 2, 3, 6, 7))));
    const int has_m = kind == KQ_Q4_1 || kind == KQ_Q5_1;
    const __m256 m8 = has_m ? _mm256_cvtph_ps(_mm256_castsi256_si128(_mm256_permutevar8x32_epi32(
                                  _mm256_packus_epi32(_mm256_srli_epi32(dm, 16), _mm256_setzero_si256()),
                                  _mm256_setr_epi32(0, 1, 4, 5, 2, 3, 6, 7))))
                            : _mm256_setzero_ps();
    const __m512 sw = block_factors(d8, has_m, m8, mins);
    if (kind == KQ_Q8_0) {
        /* u_p = blocks p and p+4; per 256-bit half a 4 x 4 transpose of words */
        __m512i u[4];
        for (int p = 0; p < 4; p++)
            u[p] = _mm512_inserti64x4(_mm512_castsi256_si512(blk256(x, wbs, p, nblk, 2)), blk256(x, wbs, p + 4, nblk, 2), 1);
        const __m512i a0 = _mm512_unpacklo_epi64(u[0], u[1]), a1 = _mm512_unpackhi_epi64(u[0], u[1]);
        const __m512i a2 = _mm512_unpacklo_epi64(u[2], u[3]), a3 = _mm512_unpackhi_epi64(u[2], u[3]);
        const __m512i lo = _mm512_setr_epi64(0, 1, 8, 9, 4, 5, 12, 13), hi = _mm512_setr_epi64(2, 3, 10, 11, 6, 7, 14, 15);
        const __m512i flip = _mm512_set1_epi8((char)0x80);
        c[0] = _mm512_xor_si512(_mm512_permutex2var_epi64(a0, lo, a2), flip);
        c[1] = _mm512_xor_si512(_mm512_permutex2var_epi64(a1, lo, a3), flip);
        c[2] = _mm512_xor_si512(_mm512_permutex2var_epi64(a0, hi, a2), flip);
        c[3] = _mm512_xor_si512(_mm512_permutex2var_epi64(a1, hi, a3), flip);
        return sw;
    }
    const size_t qs = kind == KQ_Q4_0 ? 2 : kind == KQ_Q4_1 ? 4 : kind == KQ_Q5_0 ? 6 : 8;
    /* blocks 0-3 and 4-7, a block's 16 code bytes per 128-bit lane */
    __m512i h2[2];
    for (int g = 0; g < 2; g++) {
        __m512i v = _mm512_castsi128_si512(blk128(x, wbs, 4 * g, nblk, qs));
        v = _mm512_inserti32x4(v, blk128(x, wbs, 4 * g + 1, nblk, qs), 1);
        v = _mm512_inserti32x4(v, blk128(x, wbs, 4 * g + 2, nblk, qs), 2);
        h2[g] = _mm512_inserti32x4(v, blk128(x, wbs, 4 * g + 3, nblk, qs), 3);
    }
    for (int u = 0; u < 2; u++) {
        const __m512i q = _mm512_permutex2var_epi64(h2[0], _mm512_setr_epi64(u, u + 2, u + 4, u + 6, u + 8, u + 10, u + 12, u + 14), h2[1]);
        c[u] = _mm512_and_si512(q, _mm512_set1_epi8(15));
        c[u + 2] = _mm512_and_si512(_mm512_srli_epi64(q, 4), _mm512_set1_epi8(15));
    }
    if (kind == KQ_Q5_0 || kind == KQ_Q5_1) {
        /* qh follows d (and m) in each block's leading word; bit i of it tops
         * code i: byte v of qh, spread over the eight bytes of vector v's word,
         * tested bit by bit */
        const __m512i h = _mm512_srli_epi64(head, kind == KQ_Q5_0 ? 16 : 32);
        const __m512i bits = _mm512_set1_epi64(0x8040201008040201LL);
        for (int v = 0; v < 4; v++) {
            const __m512i hv = _mm512_shuffle_epi8(_mm512_srli_epi64(h, 8 * v),
                                                   _mm512_set4_epi32(0x08080808, 0x08080808, 0, 0));
            c[v] = _mm512_mask_add_epi8(c[v], _mm512_test_epi8_mask(hv, bits), c[v], _mm512_set1_epi8(16));
        }
    }
    return sw;
}

/* The same from a group of the lanes layout (engine/lanes.h: n = min(8, nblk)
 * blocks as d[n], Q4_1's and Q5_1's m[n], Q5's hm[4][n], qs[2 or 4][n][8]):
 * qs[u] is word u of every block's codes, and the fifth bits of vector v are
 * already a mask, hm[v] (one 8-byte load for a whole group). */
INLINE __m512 lanes_unpack(const int kind, const uint8_t *x, int nblk, __m512i c[4], float *mins) {
    const int n = nblk >= SB ? SB : nblk;
    const __mmask8 have = (__mmask8)((1u << n) - 1);
    const __m256 d8 = _mm256_cvtph_ps(_mm_maskz_loadu_epi16(have, (const void *)x));
    const int has_m = kind == KQ_Q4_1L || kind == KQ_Q5_1L;
    const __m256 m8 = has_m ? _mm256_cvtph_ps(_mm_maskz_loadu_epi16(have, (const void *)(x + 2 * (size_t)n)))
                            : _mm256_setzero_ps();
    const __m512 sw = block_factors(d8, has_m, m8, mins);
    const size_t o = (has_m ? 4 : 2) * (size_t)n;
    if (kind == KQ_Q8_0L) { /* codes stored plus 128 */
        for (int v = 0; v < 4; v++) c[v] = _mm512_maskz_loadu_epi64(have, (const void *)(x + o + 8 * (size_t)n * v));
        return sw;
    }
    const int q5 = kind == KQ_Q5_0L || kind == KQ_Q5_1L;
    const uint8_t *hm = x + o, *qs = x + o + (q5 ? 4 * (size_t)n : 0);
    for (int u = 0; u < 2; u++) {
        const __m512i q = _mm512_maskz_loadu_epi64(have, (const void *)(qs + 8 * (size_t)n * u));
        c[u] = _mm512_and_si512(q, _mm512_set1_epi8(15));
        c[u + 2] = _mm512_and_si512(_mm512_srli_epi64(q, 4), _mm512_set1_epi8(15));
    }
    for (int v = 0; q5 && v < 4; v++) {
        uint64_t bits;
        if (n == SB) memcpy(&bits, hm + 8 * v, 8);
        else bits = (uint64_t)_mm_cvtsi128_si64(_mm_maskz_loadu_epi8((__mmask16)have, (const void *)(hm + (size_t)n * v)));
        c[v] = _mm512_mask_add_epi8(c[v], _cvtu64_mask64(bits), c[v], _mm512_set1_epi8(16));
    }
    return sw;
}

/* Super-block x of any type (K-quants: `wsb` and `nblk` unused): its four
 * lane-order code vectors into c, each lane's weight scale (returned), and the
 * min factors into mins. */
INLINE __m512 sb_unpack(const int kind, const uint8_t *x, size_t wsb, int nblk, __m512i c[4], float *mins) {
    if (IS_LANES(kind)) return lanes_unpack(kind, x, nblk, c, mins);
    if (!IS_K(kind)) return q_unpack(kind, x, wsb / SB, nblk, c, mins);
#pragma GCC unroll 4
    for (int v = 0; v < 4; v++) c[v] = kq_vec(kind, x, v);
    return kind == KQ_Q6K ? q6k_factors(x) : q45k_factors(x, mins);
}

/* The min factors of a k-chunk are read two super-blocks at a time (16 floats),
 * so past the chunk's nbc super-blocks they must be 0. */
INLINE void zero_mins_tail(float *mins, int nbc) {
    for (int e = 8 * nbc; e < NBK * 8 + 8; e++) mins[e] = 0.0f;
}

/* Stage nbc super-blocks of weight row w (`nblk` 32-wide blocks left in it for
 * those formats).  `next`: the row the following tile stages (or NULL), asked
 * for a super-block at a time as this one is read, so its first touch does not
 * wait on memory and the requests never queue up in one burst. */
static void stage_row(const int kind, const uint8_t *w, size_t sbb, int nbc, int nblk, wstage *s,
                      const uint8_t *next) {
    for (int b = 0; b < nbc; b++) {
        const uint8_t *x = w + (size_t)b * sbb;
        if (next) simd512_prefetch_span(next + (size_t)b * sbb, sbb);
        __m512i c[4];
        _mm512_store_ps(s->sw[b], sb_unpack(kind, x, sbb, nblk - SB * b, c, s->mins + 8 * b));
        for (int v = 0; v < 4; v++) _mm512_store_si512((void *)(s->codes[b] + 64 * v), c[v]);
    }
    zero_mins_tail(s->mins, nbc);
}

/* The products of a KR x J tile over nbc super-blocks of one k-chunk:
 * out[j][r] = sum over the chunk of row r . activation j.
 *
 * `direct` (decoding one sequence): the weights are unpacked in registers
 * from the rows wr[] as they are used, since with one activation row
 * a staged copy would be read only once.  Otherwise they come from the staging
 * ws[].  Both take the same integer sums and the same float steps in the same
 * order, so a row's result is the same bits either way: a sequence's tokens do
 * not depend on the batch it decodes in. */
INLINE void ktile(const int kind, const int J, const int direct, const wstage *ws, const uint8_t *const *wr,
                  size_t wbs, int left, const astage *ast, int j0, int nbc, float out[KJ][KR]) {
    __m512 facc[KR][KJ];
    _Alignas(64) float dmins[KR][NBK * 8 + 8]; /* direct: the min factors, as staged */
#pragma GCC unroll 4
    for (int r = 0; r < KR; r++)
#pragma GCC unroll 4
        for (int j = 0; j < J; j++) facc[r][j] = _mm512_setzero_ps();
    for (int b = 0; b < nbc; b++) {
        if (direct) {
            /* one activation row: each row's super-block is unpacked in registers
             * and used at once, with the same integer sums and float steps as
             * the staged path below */
            __m512i a[4];
#pragma GCC unroll 4
            for (int v = 0; v < 4; v++) a[v] = _mm512_load_si512((const void *)(ast->qs[j0][b] + 64 * v));
#pragma GCC unroll 4
            for (int r = 0; r < KR; r++) {
                __m512i c[4];
                if (wr[KR + r]) simd512_prefetch_span(wr[KR + r] + (size_t)b * wbs, wbs);
                const __m512 sw = sb_unpack(kind, wr[r] + (size_t)b * wbs, wbs, left - SB * b, c, dmins[r] + 8 * b);
                __m512i acc = HAS_OFF(kind) ? _mm512_load_si512((const void *)ast->off[j0][b]) : _mm512_setzero_si512();
#pragma GCC unroll 4
                for (int v = 0; v < 4; v++) acc = _mm512_dpbusd_epi32(acc, c[v], a[v]);
                facc[r][0] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc), _mm512_mul_ps(sw, _mm512_load_ps(ast->sa[j0][b])),
                                             facc[r][0]);
            }
            continue;
        }
        /* every lane sum of the super-block at once: each activation vector is
         * loaded once for the KR rows */
        __m512i iacc[KR][KJ];
#pragma GCC unroll 4
        for (int r = 0; r < KR; r++)
#pragma GCC unroll 4
            for (int j = 0; j < J; j++)
                iacc[r][j] = HAS_OFF(kind) ? _mm512_load_si512((const void *)ast->off[j0 + j][b]) : _mm512_setzero_si512();
#pragma GCC unroll 4
        for (int v = 0; v < 4; v++) {
            __m512i a[KJ];
#pragma GCC unroll 4
            for (int j = 0; j < J; j++) a[j] = _mm512_load_si512((const void *)(ast->qs[j0 + j][b] + 64 * v));
#pragma GCC unroll 4
            for (int r = 0; r < KR; r++) {
                const __m512i w = _mm512_load_si512((const void *)(ws[r].codes[b] + 64 * v));
#pragma GCC unroll 4
                for (int j = 0; j < J; j++) iacc[r][j] = _mm512_dpbusd_epi32(iacc[r][j], w, a[j]);
            }
        }
#pragma GCC unroll 4
        for (int r = 0; r < KR; r++) {
            const __m512 sw = _mm512_load_ps(ws[r].sw[b]);
#pragma GCC unroll 4
            for (int j = 0; j < J; j++)
                facc[r][j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(iacc[r][j]),
                                             _mm512_mul_ps(sw, _mm512_load_ps(ast->sa[j0 + j][b])), facc[r][j]);
        }
    }
    if (HAS_MIN(kind)) {
        /* - (dmin*min or -m) * (d_y*bsum or s) over the sub-blocks; both are
         * zero-padded to an even number of super-blocks */
        if (direct)
            for (int r = 0; r < KR; r++)
                zero_mins_tail(dmins[r], nbc);
        for (int b = 0; b < nbc; b += 2)
#pragma GCC unroll 4
            for (int r = 0; r < KR; r++) {
                const __m512 m = _mm512_loadu_ps((direct ? dmins[r] : ws[r].mins) + 8 * b);
#pragma GCC unroll 4
                for (int j = 0; j < J; j++)
                    facc[r][j] = _mm512_fnmadd_ps(m, _mm512_loadu_ps(ast->mins[j0 + j] + 8 * b), facc[r][j]);
            }
    }
#pragma GCC unroll 4
    for (int j = 0; j < J; j++) _mm_storeu_ps(out[j], simd512_sum4(facc[0][j], facc[1][j], facc[2][j], facc[3][j]));
}

#define KTILE_FN(name, kind)                                                                                   \
    static void name(int J, int direct, const wstage *ws, const uint8_t *const *wr, size_t wbs, int left,      \
                     const astage *ast, int j0, int nbc, float out[KJ][KR]) {                                  \
        if (direct) {                                                                                          \
            ktile(kind, 1, 1, ws, wr, wbs, left, ast, j0, nbc, out);                                           \
            return;                                                                                            \
        }                                                                                                      \
        switch (J) {                                                                                           \
        case 1: ktile(kind, 1, 0, ws, wr, wbs, left, ast, j0, nbc, out); break;                                \
        case 2: ktile(kind, 2, 0, ws, wr, wbs, left, ast, j0, nbc, out); break;                                \
        default: ktile(kind, 3, 0, ws, wr, wbs, left, ast, j0, nbc, out); break;                               \
        }                                                                                                      \
    }
KTILE_FN(ktile_q4k, KQ_Q4K)
KTILE_FN(ktile_q5k, KQ_Q5K)
KTILE_FN(ktile_q6k, KQ_Q6K)
KTILE_FN(ktile_q4_0, KQ_Q4_0)
KTILE_FN(ktile_q4_1, KQ_Q4_1)
KTILE_FN(ktile_q5_0, KQ_Q5_0)
KTILE_FN(ktile_q5_1, KQ_Q5_1)
KTILE_FN(ktile_q4_0l, KQ_Q4_0L)
KTILE_FN(ktile_q4_1l, KQ_Q4_1L)
KTILE_FN(ktile_q5_0l, KQ_Q5_0L)
KTILE_FN(ktile_q5_1l, KQ_Q5_1L)
KTILE_FN(ktile_q8_0l, KQ_Q8_0L)
KTILE_FN(ktile_q8_0, KQ_Q8_0)
_Static_assert(KJ == 3, "the tile functions have one case per activation count");

typedef void (*ktile_fn)(int, int, const wstage *, const uint8_t *const *, size_t, int, const astage *, int, int,
                         float (*)[KR]);

int avx512_tiles_support(uint32_t wtype) {
    if (quant_is_lanes(wtype)) return 1;
    switch (wtype) {
    case GGT_Q4_K: case GGT_Q5_K: case GGT_Q6_K: case GGT_Q4_0: case GGT_Q4_1: case GGT_Q5_0: case GGT_Q5_1:
    case GGT_Q8_0: return 1;
    default: return 0;
    }
}

void avx512_gemm_tiles(uint32_t wtype, int64_t k, const void *Wv, size_t w_stride, int i0, int i1, const void *Av,
                       size_t a_stride, int n_a, float *C, int ldc) {
    const uint8_t *W = Wv, *A = Av;
    int kind;
    ktile_fn fn;
    size_t wbs, abs_; /* bytes per weight / activation block (a K-quant super-block, or a 32-wide block) */
    switch (wtype) {
    case GGT_Q4_K: kind = KQ_Q4K, fn = ktile_q4k, wbs = sizeof(block_q4_k); break;
    case GGT_Q5_K: kind = KQ_Q5K, fn = ktile_q5k, wbs = sizeof(block_q5_k); break;
    case GGT_Q6_K: kind = KQ_Q6K, fn = ktile_q6k, wbs = sizeof(block_q6_k); break;
    case GGT_Q4_0: kind = KQ_Q4_0, fn = ktile_q4_0, wbs = sizeof(block_q4_0); break;
    case GGT_Q4_1: kind = KQ_Q4_1, fn = ktile_q4_1, wbs = sizeof(block_q4_1); break;
    case GGT_Q5_0: kind = KQ_Q5_0, fn = ktile_q5_0, wbs = sizeof(block_q5_0); break;
    case GGT_Q5_1: kind = KQ_Q5_1, fn = ktile_q5_1, wbs = sizeof(block_q5_1); break;
    case QT_Q4_0_LANES: kind = KQ_Q4_0L, fn = ktile_q4_0l, wbs = sizeof(block_q4_0); break;
    case QT_Q4_1_LANES: kind = KQ_Q4_1L, fn = ktile_q4_1l, wbs = sizeof(block_q4_1); break;
    case QT_Q5_0_LANES: kind = KQ_Q5_0L, fn = ktile_q5_0l, wbs = sizeof(block_q5_0); break;
    case QT_Q5_1_LANES: kind = KQ_Q5_1L, fn = ktile_q5_1l, wbs = sizeof(block_q5_1); break;
    case QT_Q8_0_LANES: kind = KQ_Q8_0L, fn = ktile_q8_0l, wbs = sizeof(block_q8_0); break;
    default: kind = KQ_Q8_0, fn = ktile_q8_0, wbs = sizeof(block_q8_0); break;
    }
    const int isk = IS_K(kind);
    abs_ = isk ? sizeof(block_q8_k) : HAS_MIN(kind) ? sizeof(block_q8_1) : sizeof(block_q8_0);
    /* super-blocks per row, and their bytes in a weight / activation row */
    const int nblk = isk ? 0 : (int)(k / QK);
    const int nb = isk ? (int)(k / QK_K) : (nblk + SB - 1) / SB;
    const size_t wsb = isk ? wbs : SB * wbs, asb = isk ? abs_ : SB * abs_;
    if (nb == 0) { /* empty rows: the products are 0, as the references give */
        for (int j = 0; j < n_a; j++)
            for (int i = i0; i < i1; i++) C[(size_t)j * (size_t)ldc + (size_t)i] = 0.0f;
        return;
    }
    /* one activation row: unpack in registers (see ktile); more: stage */
    const int direct = n_a == 1;
    _Alignas(64) wstage ws[KR];
    _Alignas(64) astage ast;
    for (int kb = 0; kb < nb; kb += NBK) {
        const int nbc = nb - kb < NBK ? nb - kb : NBK;
        const int left = nblk - SB * kb; /* 32-wide blocks from this chunk on */
        for (int j0 = 0; j0 < n_a; j0 += KJC) {
            const int jc = n_a - j0 < KJC ? n_a - j0 : KJC;
            for (int j = 0; j < jc; j++) {
                const uint8_t *y = A + (size_t)(j0 + j) * a_stride + (size_t)kb * asb;
                for (int b = 0; b < nbc; b++) stage_act_sb(kind, y + (size_t)b * asb, &ast, j, b, left - SB * b);
                zero_mins_tail(ast.mins[j], nbc);
            }
            for (int i = i0; i < i1; i += KR) {
                const int rn = i1 - i < KR ? i1 - i : KR;
                const uint8_t *wrow[2 * KR]; /* the tile's rows, then (direct) those to prefetch or NULL */
                for (int r = 0; r < KR; r++) {
                    /* a short tile repeats its last row rather than needing its own kernel */
                    wrow[r] = W + (size_t)(i + (r < rn ? r : rn - 1)) * w_stride + (size_t)kb * wsb;
                    if (!direct)
                        stage_row(kind, wrow[r], wsb, nbc, left, &ws[r],
                                  i + KR + r < i1 ? wrow[r] + (size_t)KR * w_stride : NULL);
                }
                /* Decoding one sequence streams every weight once, and without
                 * a prefetch each super-block's first touch waits on memory (this
                 * VM's hardware prefetchers do not follow a tile's four rows).  So
                 * ktile asks for the rows of the tile PFT tiles ahead, a
                 * super-block at a time as it reads this one's: the same requests
                 * as one burst per tile (which stalled on full miss queues) read
                 * the 0.5B's Q8_0 output matrix 1.3 times slower, and the next
                 * tile instead of the fourth 1.3-1.5 times slower (bench/tiles.c). */
                for (int r = 0; r < KR; r++)
                    wrow[KR + r] = direct && i + PFT * KR + r < i1 ? wrow[r] + (size_t)(PFT * KR) * w_stride : NULL;
                for (int jj = 0; jj < jc; jj += KJ) {
                    const int J = jc - jj < KJ ? jc - jj : KJ;
                    float out[KJ][KR];
                    fn(J, direct, ws, wrow, wsb, left, &ast, jj, nbc, out);
                    for (int j = 0; j < J; j++) {
                        float *c = C + (size_t)(j0 + jj + j) * (size_t)ldc + (size_t)i;
                        if (rn == KR) /* the same sums as below, without a scalar loop per row */
                            _mm_storeu_ps(c, kb ? _mm_add_ps(_mm_loadu_ps(c), _mm_loadu_ps(out[j])) : _mm_loadu_ps(out[j]));
                        else
                            for (int r = 0; r < rn; r++) c[r] = kb ? c[r] + out[j][r] : out[j][r];
                    }
                }
            }
        }
    }
}
