/* lanes.h - in-memory layouts of the 32-wide formats' weight rows that the
 * AVX-512 tiles read with plain loads (lanes.c says why and how).  They are
 * never in a file: the model loader rearranges matrices into them when the
 * kernel set in use asks for it (quant_lanes_for), and every other kernel set
 * still computes with them, by converting rows back (quant.c).
 * A row keeps its size; results are the same bits as the file layout's. */
#ifndef KVS_LANES_H
#define KVS_LANES_H
#include <stdint.h>

#include "ggtype.h"

/* Type ids past every GGUF id (ggtype_get() rejects them). */
enum {
    QT_Q4_0_LANES = 0x100 + GGT_Q4_0, QT_Q4_1_LANES = 0x100 + GGT_Q4_1, QT_Q5_0_LANES = 0x100 + GGT_Q5_0,
    QT_Q5_1_LANES = 0x100 + GGT_Q5_1, QT_Q8_0_LANES = 0x100 + GGT_Q8_0
};

static inline int quant_is_lanes(uint32_t type) {
    return type == QT_Q4_0_LANES || type == QT_Q4_1_LANES || type == QT_Q5_0_LANES || type == QT_Q5_1_LANES ||
           type == QT_Q8_0_LANES;
}
/* The lanes id of a file type (0 if it has none), and the file type of a lanes id
 * (any other id is returned as it is). */
uint32_t quant_lanes_of(uint32_t type);
uint32_t quant_file_of(uint32_t type);

/* One row of k elements (a multiple of 32), file layout to lanes and back;
 * `type` is either id of the pair.  src and dst must not overlap. */
void quant_to_lanes(uint32_t type, const void *src, void *dst, int64_t k);
void quant_from_lanes(uint32_t type, const void *src, void *dst, int64_t k);

#endif
