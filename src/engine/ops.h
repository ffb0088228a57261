/* ops.h - the numeric building blocks of the forward pass.
 * Functions here work on one token's vectors; threading is the caller's job,
 * except op_matmul, which splits the weight rows over the calling OpenMP team. */
#ifndef KVS_OPS_H
#define KVS_OPS_H
#include <stddef.h>
#include <stdint.h>

#include "model.h"

/* out = x / rms(x) * w   (n elements; out may alias x) */
void op_rmsnorm(float *out, const float *x, const float *w, int n, float eps);
/* One layer's rotary embedding. */
typedef struct rope_cfg {
    rope_kind kind;
    int rope_dim;           /* leading dims of each head that rotate */
    float base;
    float freq_scale;       /* angle multiplier (1 / linear scaling factor) */
    float attn_factor;      /* cos/sin multiplier */
    const float *freq_div;  /* rope_dim/2 per-frequency divisors, or NULL */
} rope_cfg;

/* Rotary embedding of n_heads heads of head_dim at position pos. */
void op_rope(float *x, int n_heads, int head_dim, int pos, const rope_cfg *r);
/* In-place softmax. */
void op_softmax(float *x, int n);
/* a = silu(a) * b */
void op_swiglu(float *a, const float *b, int n);
/* a = gelu(a) * b, GELU in its tanh approximation */
void op_geglu(float *a, const float *b, int n);

/* Bytes needed to hold n_rows activation rows of length k for products with w. */
size_t op_act_bytes(const weight *w, int n_rows);
/* Convert n_rows rows of x (stride k floats) into w's dot type, into qbuf. */
void op_quantize_rows(const weight *w, const float *x, int n_rows, void *qbuf);
/* out[t*w->n + i] = dot(w row i, activation row t), for rows already quantized
 * by op_quantize_rows.  Must be called by every thread of an OpenMP team (or
 * outside a parallel region, then it runs serially); rows are split across it. */
void op_matmul_q(const weight *w, const void *qbuf, int n_rows, float *out, int ldo);

#endif
