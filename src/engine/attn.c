/* attn.c - the choice of tile attention kernels. */
#include "attn.h"

#include <string.h>

#include "quant.h"

void attn_run(const attn_tile *t) {
    /* follow the quant module's backend, so that forcing one (tests, benchmarks)
     * moves every kernel of the forward pass together */
    const char *b = quant_backend();
    if (!strcmp(b, "avx512vnni") || !strcmp(b, "amx")) /* AMX only changes the weight products */
        attn_run_avx512(t);
    else if (!strcmp(b, "avx2"))
        attn_run_avx2(t);
    else
        attn_run_ref(t);
}
