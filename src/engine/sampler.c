/* sampler.c - choosing the next token from logits.
 *
 * Order of operations follows the Hugging Face generate() the paper used:
 * temperature, then top-k, then top-p, then min-p, then a draw; llama.cpp's
 * repetition penalty comes before all of them (and before greedy's argmax).
 * The random stream is our own xoshiro256** seeded through splitmix64, so a
 * seed gives the same tokens on every machine and every run. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "kvsteer.h"

struct kvs_sampler {
    kvs_sampler_params p;
    uint64_t s[4];
    int cap;
    struct cand *cand;
    float *prob;
    /* the penalty's window: the last repeat_last_n tokens (a ring once
     * full), or with -1 every token */
    int penalize;
    kvs_token *hist;
    int hist_cap, hist_n, hist_at;
    int pen_cap;
    float *pen;             /* penalised copy of the logits */
    unsigned char *seen;    /* per token id: already penalised in this call */
};

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t next_u64(kvs_sampler *s) {
    const uint64_t r = rotl(s->s[1] * 5, 7) * 9, t = s->s[1] << 17;
    s->s[2] ^= s->s[0];
    s->s[3] ^= s->s[1];
    s->s[1] ^= s->s[2];
    s->s[0] ^= s->s[3];
    s->s[2] ^= t;
    s->s[3] = rotl(s->s[3], 45);
    return r;
}

kvs_sampler_params kvs_sampler_default_params(void) {
    return (kvs_sampler_params){.top_p = 1.0f, .repeat_penalty = 1.0f, .repeat_last_n = 64};
}

kvs_sampler *kvs_sampler_new(const kvs_sampler_params *p, kvs_error *err) {
    if (!p || isnan(p->temperature) || isnan(p->top_p) || p->top_p <= 0.0f)
        return err_fail(err, KVS_E_ARG, "sampler: top-p must be in (0, 1] and temperature a number"), NULL;
    if (!(p->repeat_penalty >= 0.0f) || isinf(p->repeat_penalty))
        return err_fail(err, KVS_E_ARG, "sampler: the repeat penalty must be a positive number (0 leaves it off)"), NULL;
    if (p->repeat_last_n < -1)
        return err_fail(err, KVS_E_ARG, "sampler: the repeat-penalty window must be -1 (all), 0 (off) or a count"), NULL;
    if (!(p->min_p >= 0.0f && p->min_p <= 1.0f))
        return err_fail(err, KVS_E_ARG, "sampler: min-p must be in [0, 1]"), NULL;
    kvs_sampler *s = calloc(1, sizeof *s);
    if (!s) return err_fail(err, KVS_E_NOMEM, "sampler: out of memory"), NULL;
    s->p = *p;
    s->penalize = kvs_sampler_penalty_on(p);
    uint64_t x = p->seed;
    for (int i = 0; i < 4; i++) s->s[i] = splitmix64(&x);
    return s;
}

void kvs_sampler_free(kvs_sampler *s) {
    if (!s) return;
    free(s->cand);
    free(s->prob);
    free(s->hist);
    free(s->pen);
    free(s->seen);
    free(s);
}

int kvs_sampler_accept(kvs_sampler *s, kvs_token t) {
    if (!s || !s->penalize) return 0;
    const int w = s->p.repeat_last_n;
    if (w > 0 && s->hist_n == w) {
        /* full: the new token replaces the oldest (hist_at, 0 when it filled) */
        s->hist[s->hist_at] = t;
        s->hist_at = (s->hist_at + 1) % w;
        return 0;
    }
    /* grown as tokens come, not to the window at once: a huge window asked
     * for costs only what the sequence holds */
    if (s->hist_n == s->hist_cap) {
        int nc = s->hist_cap ? 2 * s->hist_cap : 64;
        if (w > 0 && nc > w) nc = w;
        kvs_token *h = realloc(s->hist, sizeof *h * (size_t)nc);
        if (!h) return KVS_E_NOMEM;
        s->hist = h;
        s->hist_cap = nc;
    }
    s->hist[s->hist_n++] = t;
    return 0;
}

int kvs_sampler_penalty_on(const kvs_sampler_params *p) {
    return p->repeat_penalty != 0.0f && p->repeat_penalty != 1.0f && p->repeat_last_n != 0;
}

void kvs_sampler_reset(kvs_sampler *s) {
    if (s) s->hist_n = s->hist_at = 0;
}

/* The logits with the repetition penalty applied, once per distinct token of
 * the window; the caller's logits when there is nothing to penalise (or no
 * memory for a copy: degrade, don't crash). */
static const float *penalized(kvs_sampler *s, const float *logits, int n) {
    if (!s->penalize || s->hist_n == 0) return logits;
    if (s->pen_cap < n) {
        float *np = realloc(s->pen, sizeof *np * (size_t)n);
        if (np) s->pen = np;
        unsigned char *ns = np ? realloc(s->seen, (size_t)n) : NULL;
        if (ns) s->seen = ns;
        if (!np || !ns) return logits;
        memset(s->seen, 0, (size_t)n);
        s->pen_cap = n;
    }
    memcpy(s->pen, logits, sizeof *logits * (size_t)n);
    const float P = s->p.repeat_penalty;
    for (int i = 0; i < s->hist_n; i++) {
        const kvs_token t = s->hist[i];
        if (t < 0 || t >= n || s->seen[t]) continue;
        s->seen[t] = 1;
        s->pen[t] = s->pen[t] > 0.0f ? s->pen[t] / P : s->pen[t] * P;
    }
    for (int i = 0; i < s->hist_n; i++)
        if (s->hist[i] >= 0 && s->hist[i] < n) s->seen[s->hist[i]] = 0;
    return s->pen;
}

/* The lowest index of the largest logit, as a plain scan from index 0 finds it
 * (NaNs never win, except that a NaN at 0 stays the answer).  The scan keeps
 * eight running maxima, one per residue of the index mod 8: a single one makes
 * every comparison wait on the one before, and over a 152k-token vocabulary
 * that chain cost 4% of a greedy batched evaluation. */
static int argmax(const float *x, int n) {
    enum { L = 8 };
    if (n < 1 || isnan(x[0])) return 0;
    float bv[L];
    int bi[L];
    for (int l = 0; l < L; l++) bv[l] = -INFINITY, bi[l] = -1;
    int i = 0;
    for (; i + L <= n; i += L)
        for (int l = 0; l < L; l++)
            if (x[i + l] > bv[l]) bv[l] = x[i + l], bi[l] = i + l;
    /* the tail's indices follow every earlier one, so lane 0's strict > keeps ties right */
    for (; i < n; i++)
        if (x[i] > bv[0]) bv[0] = x[i], bi[0] = i;
    int best = -1;
    for (int l = 0; l < L; l++)
        if (bi[l] >= 0 && (best < 0 || bv[l] > x[best] || (bv[l] == x[best] && bi[l] < best))) best = bi[l];
    return best < 0 ? 0 : best;
}

typedef struct cand {
    float l;
    int id;
} cand;

/* Descending logit, ties by ascending id, so the order is fully determined. */
static int before(const cand *a, const cand *b) { return a->l > b->l || (a->l == b->l && a->id < b->id); }
static int cand_cmp(const void *a, const void *b) {
    return before(a, b) ? -1 : before(b, a) ? 1 : 0;
}

/* Min-heap (by `before`) holding the best k seen so far: O(n log k). */
static void sift_down(cand *h, int k, int i) {
    for (;;) {
        int l = 2 * i + 1, r = l + 1, w = i;
        if (l < k && before(&h[w], &h[l])) w = l;
        if (r < k && before(&h[w], &h[r])) w = r;
        if (w == i) return;
        cand t = h[i];
        h[i] = h[w];
        h[w] = t;
        i = w;
    }
}

static int top_candidates(cand *c, const float *logits, int n, int k) {
    if (k >= n) {
        for (int i = 0; i < n; i++) c[i] = (cand){logits[i], i};
        qsort(c, (size_t)n, sizeof *c, cand_cmp);
        return n;
    }
    for (int i = 0; i < k; i++) c[i] = (cand){logits[i], i};
    for (int i = k / 2 - 1; i >= 0; i--) sift_down(c, k, i);
    for (int i = k; i < n; i++) {
        cand x = {logits[i], i};
        if (before(&x, &c[0])) {
            c[0] = x;
            sift_down(c, k, 0);
        }
    }
    qsort(c, (size_t)k, sizeof *c, cand_cmp);
    return k;
}

kvs_token kvs_sampler_sample(kvs_sampler *s, const float *logits, int n) {
    if (!s) return argmax(logits, n);
    logits = penalized(s, logits, n);
    if (s->p.temperature <= 0.0f) return argmax(logits, n);
    if (s->cap < n) {
        cand *nc = realloc(s->cand, sizeof(cand) * (size_t)n);
        float *np = nc ? realloc(s->prob, sizeof(float) * (size_t)n) : NULL;
        if (nc) s->cand = nc;
        if (np) s->prob = np;
        if (!nc || !np) return argmax(logits, n); /* out of memory: degrade, don't crash */
        s->cap = n;
    }
    /* temperature does not change the order, so top-k can come first */
    int m = top_candidates(s->cand, logits, n, s->p.top_k > 0 ? s->p.top_k : n);
    const float inv_t = 1.0f / s->p.temperature, mx = s->cand[0].l * inv_t;
    double sum = 0.0;
    for (int i = 0; i < m; i++) {
        s->prob[i] = expf(s->cand[i].l * inv_t - mx);
        sum += s->prob[i];
    }
    if (s->p.top_p < 1.0f) {
        double cum = 0.0;
        int keep = m;
        for (int i = 0; i < m; i++) {
            cum += s->prob[i] / sum;
            if (cum >= s->p.top_p) {
                keep = i + 1;
                break;
            }
        }
        m = keep;
        sum = 0.0;
        for (int i = 0; i < m; i++) sum += s->prob[i];
    }
    if (s->p.min_p > 0.0f) {
        /* prob[0] is the top token's weight, exp(0) = 1 */
        int keep = 1;
        while (keep < m && s->prob[keep] >= s->p.min_p) keep++;
        m = keep;
        sum = 0.0;
        for (int i = 0; i < m; i++) sum += s->prob[i];
    }
    const double u = (double)(next_u64(s) >> 11) * (1.0 / 9007199254740992.0) * sum;
    double cum = 0.0;
    for (int i = 0; i < m; i++) {
        cum += s->prob[i];
        if (u < cum) return s->cand[i].id;
    }
    return s->cand[m - 1].id;
}
