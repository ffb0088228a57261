/* attn.c - the scalar definition of tile attention and the choice of kernels. */
#include "attn.h"

#include <string.h>

#include "ops.h"
#include "quant.h"

void attn_run_ref(const attn_tile *t) {
    for (int i = 0; i < t->nq; i++) {
        const float *q = t->q[i];
        float *s = t->scores + (size_t)i * t->ld;
        const int lo = t->lo ? t->lo[i] : 0;
        for (int j = lo; j < t->len[i]; j++) {
            const float *kr = t->k + (size_t)j * t->stride;
            float a = 0.0f;
            for (int x = 0; x < t->d; x++) a += q[x] * kr[x];
            s[j] = a * t->scale;
        }
        op_softmax(s + lo, t->len[i] - lo);
        float *o = t->out[i];
        for (int x = 0; x < t->d; x++) o[x] = 0.0f;
        for (int j = lo; j < t->len[i]; j++) {
            const float *vr = t->v + (size_t)j * t->stride;
            for (int x = 0; x < t->d; x++) o[x] += s[j] * vr[x];
        }
    }
}

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
