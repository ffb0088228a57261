/* attn_ref.c - the scalar definition of tile attention. */
#include "attn_ref.h"

#include "ops.h"

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
