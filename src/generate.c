/* generate.c - prefill, one-shot hook, and the decode loop over many sequences. */
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "forward.h"

typedef struct gen_state {
    int fed;       /* prompt tokens fed so far */
    int active;    /* still generating */
    kvs_token next;
} gen_state;

static int finish(kvs_gen_request *r, gen_state *g, int why) {
    r->stop = why;
    g->active = 0;
    return 0;
}

int kvs_generate(kvs_ctx *c, kvs_gen_request *reqs, int n, int first_seq,
                 int (*on_token)(int req, kvs_token t, void *user), void *user, kvs_error *err) {
    kvs_error_clear(err);
    if (n <= 0 || first_seq < 0 || first_seq + n > c->n_seq)
        return kvs_fail(err, KVS_E_ARG, "generate: %d requests from sequence %d do not fit %d sequences", n,
                        first_seq, c->n_seq);
    for (int i = 0; i < n; i++) {
        const kvs_gen_request *r = &reqs[i];
        if (!r->prompt || r->n_prompt <= 0 || r->n_hold < 0 || r->n_hold >= r->n_prompt || r->max_new < 0 ||
            (r->max_new > 0 && !r->out))
            return kvs_fail(err, KVS_E_ARG, "generate: request %d is malformed (empty prompt or bad hold/max)", i);
        const int base = r->append ? kvs_seq_len(c, first_seq + i) : 0;
        if (base + r->n_prompt >= c->n_ctx)
            return kvs_fail(err, KVS_E_RANGE,
                            "generate: prompt of %d tokens (after %d cached) does not fit the context of %d",
                            r->n_prompt, base, c->n_ctx);
    }
    gen_state *g = calloc((size_t)n, sizeof *g);
    int cap = 0;
    for (int i = 0; i < n; i++) cap += reqs[i].n_prompt;
    if (cap < n) cap = n;
    kvs_token *bt = malloc(sizeof *bt * (size_t)cap);
    int32_t *bp = malloc(sizeof *bp * (size_t)cap), *bs = malloc(sizeof *bs * (size_t)cap);
    int8_t *bw = malloc((size_t)cap);
    int *owner = malloc(sizeof *owner * (size_t)cap);
    int rc = 0;
    if (!g || !bt || !bp || !bs || !bw || !owner) {
        rc = kvs_fail(err, KVS_E_NOMEM, "generate: out of memory");
        goto done;
    }

    /* 1. prefill every prompt except its held tail, all sequences in one batch */
    int nb = 0;
    for (int i = 0; i < n; i++) {
        kvs_gen_request *r = &reqs[i];
        r->n_out = 0;
        r->stop = 0;
        if (!r->append) kvs_seq_truncate(c, first_seq + i, 0, NULL);
        const int base = kvs_seq_len(c, first_seq + i);
        const int pre = r->n_prompt - r->n_hold;
        for (int p = 0; p < pre; p++) {
            bt[nb] = r->prompt[p];
            bp[nb] = base + p;
            bs[nb] = first_seq + i;
            bw[nb] = (p == pre - 1 && r->n_hold == 0);
            owner[nb] = i;
            nb++;
        }
        g[i].fed = pre;
        g[i].active = 1;
    }
    kvs_batch b = {nb, bt, bp, bs, bw};
    if ((rc = kvs_decode(c, &b, err))) goto done;

    /* 2. the one-shot hook (cache steering) sees the prefilled cache */
    for (int i = 0; i < n; i++)
        if (reqs[i].on_prefilled &&
            (rc = reqs[i].on_prefilled(c, first_seq + i, kvs_seq_len(c, first_seq + i) - 1, reqs[i].user, err)))
            goto done;

    /* sample the first token of prompts that hold nothing back */
    for (int j = 0; j < nb; j++) {
        if (!bw[j]) continue;
        const int i = owner[j];
        kvs_gen_request *r = &reqs[i];
        const float *lg = kvs_get_logits(c, j);
        g[i].next = kvs_sampler_sample(r->sampler, lg, c->model->hp.n_vocab);
    }

    /* 3. decode: each step feeds one token per active sequence (a held prompt
     * token, or the last sampled token) */
    for (;;) {
        nb = 0;
        for (int i = 0; i < n; i++) {
            kvs_gen_request *r = &reqs[i];
            if (!g[i].active) continue;
            kvs_token t;
            if (g[i].fed < r->n_prompt) {
                t = r->prompt[g[i].fed];
            } else {
                /* g[i].next was sampled from the previous step's logits */
                t = g[i].next;
                if (r->max_new == 0) {
                    finish(r, &g[i], 2);
                    continue;
                }
                r->out[r->n_out++] = t;
                int stop_cb = on_token ? on_token(i, t, user) : 0;
                if (kvs_token_is_eog(c->model, t) || stop_cb) {
                    finish(r, &g[i], 1);
                    continue;
                }
                if (r->n_out >= r->max_new) {
                    finish(r, &g[i], 2);
                    continue;
                }
            }
            const int pos = kvs_seq_len(c, first_seq + i);
            if (pos >= c->n_ctx) {
                finish(r, &g[i], 3);
                continue;
            }
            bt[nb] = t;
            bp[nb] = pos;
            bs[nb] = first_seq + i;
            owner[nb] = i;
            /* a held token that is not the last one needs no logits */
            bw[nb] = !(g[i].fed < r->n_prompt - 1);
            if (g[i].fed < r->n_prompt) g[i].fed++;
            nb++;
        }
        if (nb == 0) break;
        kvs_batch step = {nb, bt, bp, bs, bw};
        if ((rc = kvs_decode(c, &step, err))) goto done;
        for (int j = 0; j < nb; j++) {
            if (!bw[j]) continue;
            const int i = owner[j];
            const float *lg = kvs_get_logits(c, j);
            g[i].next = kvs_sampler_sample(reqs[i].sampler, lg, c->model->hp.n_vocab);
        }
    }
done:
    free(g);
    free(bt);
    free(bp);
    free(bs);
    free(bw);
    free(owner);
    return rc;
}
