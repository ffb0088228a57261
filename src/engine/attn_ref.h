/* attn_ref.h - attention of a tile of queries that share one KV head: the tile,
 * its scalar definition and the kernels that compute it per instruction set.
 *
 * A tile is the query heads of one grouped-query group, for one token or a few
 * consecutive tokens of one sequence.  They all read the same key and value
 * rows, so the kernels load each row once for the whole tile instead of once per
 * query: prefill and batched decoding stop re-reading the cache from L2 for
 * every head.
 *
 * Each query's result is computed by the same arithmetic whatever else is in
 * its tile (the sum order over the head dimension, the grouping of rows in fours
 * and the order over rows depend only on the query and its own rows), so how a
 * batch is cut into tiles never changes a result.
 */
#ifndef KVS_ATTN_REF_H
#define KVS_ATTN_REF_H
#include <stddef.h>

/* Most queries in one tile; the caller sizes its score scratch with it. */
#define ATTN_TILE_MAX 24

typedef struct attn_tile {
    int nq;                  /* queries, 1..ATTN_TILE_MAX */
    int d;                   /* head dimension */
    const float *const *q;   /* nq query vectors (d floats each) */
    const int *lo, *len;     /* query i attends to rows [lo[i], len[i]) (lo NULL: from row 0);
                              * lo[i] < len[i]; a sliding-window layer starts past row 0 */
    const float *k, *v;      /* row 0 of the keys / values of this KV head */
    size_t stride;           /* floats between consecutive rows of k and v */
    float scale;             /* applied to every score before the softmax */
    float *scores;           /* scratch: nq rows of ld floats, ld >= max len */
    size_t ld;
    float *const *out;       /* nq outputs (d floats each) */
} attn_tile;

/* softmax(scale * q.K^T) V for every query of the tile: the scalar definition
 * the kernels are tested against (attn_ref.c). */
void attn_run_ref(const attn_tile *t);

/* The same with vector instructions (x86/attn_avx2.c, x86/attn_avx512.c); only
 * called after the quant module's CPU check selected that backend.  Callers go
 * through attn_run (attn.h). */
void attn_run_avx2(const attn_tile *t);
void attn_run_avx512(const attn_tile *t);

#endif
