#include "ops.h"

#include <math.h>
#include <omp.h>

#include "quant.h"

void op_rmsnorm(float *out, const float *x, const float *w, int n, float eps) {
    /* accumulate in double as the reference does: SmolLM2 activations reach 1e3 */
    double ss = 0.0;
    for (int i = 0; i < n; i++) ss += (double)x[i] * x[i];
    const float scale = 1.0f / sqrtf((float)(ss / n) + eps);
    for (int i = 0; i < n; i++) out[i] = x[i] * scale * w[i];
}

void op_rope(float *x, int n_heads, int head_dim, int pos, const rope_cfg *r) {
    /* theta_i = pos * base^(-2i/d), built by repeated multiplication in float,
     * which is how the reference implementation computes it (parity matters more
     * than the last ulp of accuracy here); a divisor and the scale then apply to
     * each angle in that order, for the same reason */
    const int rope_dim = r->rope_dim, half = rope_dim / 2;
    const float theta_scale = powf(r->base, -2.0f / (float)rope_dim);
    float cs[4096]; /* rope_dim <= 4096 (checked at load) */
    float theta = (float)pos;
    for (int i = 0; i < half; i++) {
        const float th = r->freq_scale * (r->freq_div ? theta / r->freq_div[i] : theta);
        cs[2 * i] = cosf(th) * r->attn_factor;
        cs[2 * i + 1] = sinf(th) * r->attn_factor;
        theta *= theta_scale;
    }
    for (int h = 0; h < n_heads; h++) {
        float *v = x + (size_t)h * head_dim;
        for (int i = 0; i < half; i++) {
            const float c = cs[2 * i], s = cs[2 * i + 1];
            const int a = r->kind == ROPE_NORM ? 2 * i : i;
            const int b = r->kind == ROPE_NORM ? 2 * i + 1 : i + half;
            const float x0 = v[a], x1 = v[b];
            v[a] = x0 * c - x1 * s;
            v[b] = x0 * s + x1 * c;
        }
    }
}

void op_softmax(float *x, int n) {
    float mx = -INFINITY;
    for (int i = 0; i < n; i++) mx = x[i] > mx ? x[i] : mx;
    double sum = 0.0;
    for (int i = 0; i < n; i++) {
        x[i] = expf(x[i] - mx);
        sum += x[i];
    }
    const float inv = (float)(1.0 / sum);
    for (int i = 0; i < n; i++) x[i] *= inv;
}

void op_swiglu(float *a, const float *b, int n) {
    for (int i = 0; i < n; i++) a[i] = a[i] / (1.0f + expf(-a[i])) * b[i];
}

void op_geglu(float *a, const float *b, int n) {
    const float k = 0.7978845608028654f; /* sqrt(2/pi) */
    for (int i = 0; i < n; i++) {
        const float x = a[i];
        a[i] = 0.5f * x * (1.0f + tanhf(k * x * (1.0f + 0.044715f * x * x))) * b[i];
    }
}

size_t op_act_bytes(const weight *w, int n_rows) {
    return ggtype_row_bytes(quant_dot_type(w->type), (uint64_t)w->k) * (size_t)n_rows;
}

void op_quantize_rows(const weight *w, const float *x, int n_rows, void *qbuf) {
    const uint32_t dt = quant_dot_type(w->type);
    const size_t rb = ggtype_row_bytes(dt, (uint64_t)w->k);
#pragma omp for schedule(static)
    for (int t = 0; t < n_rows; t++) quant_from_float(dt, x + (size_t)t * w->k, (char *)qbuf + rb * t, w->k);
}

void op_matmul_q(const weight *w, const void *qbuf, int n_rows, float *out, int ldo) {
    const size_t rb = ggtype_row_bytes(quant_dot_type(w->type), (uint64_t)w->k);
    const int nth = omp_get_num_threads(), ith = omp_get_thread_num();
    /* Contiguous row ranges, rounded to 16 rows so kernels can block over rows. */
    const int n = (int)w->n;
    int per = (n + nth - 1) / nth;
    per = (per + 15) / 16 * 16;
    const int i0 = ith * per, i1 = i0 + per < n ? i0 + per : n;
    if (i0 < i1) quant_gemm(w->type, w->k, w->data, w->row_bytes, i0, i1, qbuf, rb, n_rows, out, ldo);
}
