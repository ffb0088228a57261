/* attn.h - attention of a tile of queries that share one KV head (attn_ref.h),
 * with the kernels of the CPU backend in use. */
#ifndef KVS_ATTN_H
#define KVS_ATTN_H
#include "attn_ref.h"

/* softmax(scale * q.K^T) V for every query of the tile, with the kernels of the
 * CPU backend in use (see quant_backend()). */
void attn_run(const attn_tile *t);

#endif
