/* generate.c - prefill, one-shot hook, and the decode loop over many sequences,
 * with slots refilled as their requests finish (continuous batching). */
#define _POSIX_C_SOURCE 199309L
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "error.h"
#include "forward.h"

/* Where a slot's request is: its prompt not yet fed (NEW), or being decoded
 * one token per step (held prompt tokens first, then generated ones). */
enum { SLOT_IDLE, SLOT_NEW, SLOT_DECODE };

typedef struct slot {
    kvs_gen_request *r;
    int state;
    int fed;         /* prompt tokens fed so far */
    int hook;        /* prefilled in this step: run on_prefilled after it */
    kvs_token next;  /* sampled from the previous step's logits */
    int rows;        /* rows of this step's batch that belong to the slot */
} slot;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* A refill that failed without saying why still fails with a message. */
static int refill_slot(kvs_gen_refill refill, void *user, int slot, kvs_gen_request *fin, kvs_gen_request **next,
                       kvs_error *err) {
    *next = NULL;
    const int rc = refill(user, slot, fin, next, err);
    if (!rc) return 0;
    if (err && err->code) return err->code;
    return err_fail(err, KVS_E_ARG, "generate: the refill function stopped the run (status %d)", rc);
}

/* Take request r into slot s (sequence seq): check it and reset its outputs. */
static int slot_start(kvs_ctx *c, slot *s, kvs_gen_request *r, int seq, kvs_error *err) {
    s->r = r;
    s->state = r ? SLOT_NEW : SLOT_IDLE;
    if (!r) return 0;
    if (!r->prompt || r->n_prompt <= 0 || r->n_hold < 0 || r->n_hold >= r->n_prompt || r->max_new < 0 ||
        (r->max_new > 0 && !r->out))
        return err_fail(err, KVS_E_ARG, "generate: request for sequence %d is malformed (empty prompt or bad hold/max)",
                        seq);
    const int base = r->append ? kvs_seq_len(c, seq) : 0;
    if (base + r->n_prompt >= c->n_ctx)
        return err_fail(err, KVS_E_RANGE, "generate: prompt of %d tokens (after %d cached) does not fit the context of %d",
                        r->n_prompt, base, c->n_ctx);
    if (!r->append) kvs_seq_truncate(c, seq, 0, NULL);
    /* the repetition penalty's window is this sequence's own tokens, so a
     * request's result does not depend on what shares its batch */
    if (r->sampler) {
        if (!r->append) kvs_sampler_reset(r->sampler);
        for (int i = 0; i < r->n_prompt; i++)
            if (kvs_sampler_accept(r->sampler, r->prompt[i])) return err_fail(err, KVS_E_NOMEM, "generate: out of memory");
    }
    r->n_out = 0;
    r->stop = KVS_STOP_NONE;
    r->seconds = 0;
    s->fed = 0;
    s->hook = 0;
    return 0;
}

/* wait == NULL: a slot left idle stays idle and the run ends when all are.
 * Otherwise idle slots are offered again before every step, and when all are
 * idle `wait` blocks until there may be work (0) or ends the run (non-zero). */
static int run(kvs_ctx *c, int n, int first_seq, kvs_gen_refill refill, void *refill_user,
               int (*on_token)(int slot, kvs_token t, void *user), void *user, int (*wait)(void *user),
               void *wait_user, kvs_error *err) {
    err_clear(err);
    if (n <= 0 || first_seq < 0 || first_seq + n > c->n_seq)
        return err_fail(err, KVS_E_ARG, "generate: %d slots from sequence %d do not fit %d sequences", n, first_seq,
                        c->n_seq);
    slot *sl = calloc((size_t)n, sizeof *sl);
    int cap = 0, rc = 0;
    kvs_token *bt = NULL;
    int32_t *bp = NULL, *bs = NULL;
    int8_t *bw = NULL;
    int *owner = NULL;
    if (!sl) return err_fail(err, KVS_E_NOMEM, "generate: out of memory");
    for (int i = 0; i < n && !rc; i++) {
        kvs_gen_request *r = NULL;
        if (!(rc = refill_slot(refill, refill_user, i, NULL, &r, err))) rc = slot_start(c, &sl[i], r, first_seq + i, err);
    }

    while (!rc) {
        if (wait) {
            int busy = 0;
            for (int i = 0; i < n && !rc; i++) {
                if (sl[i].state == SLOT_IDLE) {
                    kvs_gen_request *r = NULL;
                    if (!(rc = refill_slot(refill, refill_user, i, NULL, &r, err)))
                        rc = slot_start(c, &sl[i], r, first_seq + i, err);
                }
                busy += sl[i].state != SLOT_IDLE;
            }
            if (rc) break;
            if (!busy) {
                if (wait(wait_user)) break;
                continue;
            }
        }
        /* build one step: whole prompts of newly started requests, one token
         * for every decoding one; a request that finishes hands its slot on */
        int nb = 0;
        for (int i = 0; i < n && !rc; i++) {
            slot *s = &sl[i];
            s->rows = 0;
            for (;;) {
                kvs_gen_request *r = s->r;
                if (s->state == SLOT_IDLE) break;
                const int seq = first_seq + i;
                int need = s->state == SLOT_NEW ? r->n_prompt - r->n_hold : 1;
                if (nb + need > cap) {
                    int nc = cap ? cap : 256;
                    while (nc < nb + need) nc *= 2;
                    kvs_token *t1 = realloc(bt, sizeof *bt * (size_t)nc);
                    if (t1) bt = t1;
                    int32_t *p1 = t1 ? realloc(bp, sizeof *bp * (size_t)nc) : NULL;
                    if (p1) bp = p1;
                    int32_t *s1 = p1 ? realloc(bs, sizeof *bs * (size_t)nc) : NULL;
                    if (s1) bs = s1;
                    int8_t *w1 = s1 ? realloc(bw, (size_t)nc) : NULL;
                    if (w1) bw = w1;
                    int *o1 = w1 ? realloc(owner, sizeof *owner * (size_t)nc) : NULL;
                    if (!o1) {
                        rc = err_fail(err, KVS_E_NOMEM, "generate: out of memory");
                        break;
                    }
                    owner = o1;
                    cap = nc;
                }
                const int base = kvs_seq_len(c, seq);
                if (s->state == SLOT_NEW) {
                    for (int p = 0; p < need; p++) {
                        bt[nb] = r->prompt[p];
                        bp[nb] = base + p;
                        bs[nb] = seq;
                        bw[nb] = (p == need - 1 && r->n_hold == 0);
                        owner[nb++] = i;
                    }
                    s->rows = need;
                    s->fed = need;
                    s->hook = 1;
                    s->state = SLOT_DECODE;
                    break;
                }
                kvs_token t;
                kvs_stop why = KVS_STOP_NONE;
                if (s->fed < r->n_prompt) {
                    t = r->prompt[s->fed];
                } else {
                    t = s->next;
                    if (r->max_new == 0) {
                        why = KVS_STOP_MAX_NEW;
                    } else {
                        r->out[r->n_out++] = t;
                        if (kvs_sampler_accept(r->sampler, t)) {
                            rc = err_fail(err, KVS_E_NOMEM, "generate: out of memory");
                            break;
                        }
                        const int stop_cb = on_token ? on_token(i, t, user) : 0;
                        if (kvs_token_is_eog(c->model, t) || stop_cb) why = KVS_STOP_EOG;
                        else if (r->n_out >= r->max_new) why = KVS_STOP_MAX_NEW;
                    }
                }
                if (!why && base >= c->n_ctx) why = KVS_STOP_CONTEXT;
                if (why) {
                    r->stop = why;
                    kvs_gen_request *nr = NULL;
                    if ((rc = refill_slot(refill, refill_user, i, r, &nr, err)) || (rc = slot_start(c, s, nr, seq, err))) break;
                    continue; /* the slot's next request, if any, joins this step */
                }
                bt[nb] = t;
                bp[nb] = base;
                bs[nb] = seq;
                /* a held token that is not the last one needs no logits */
                bw[nb] = !(s->fed < r->n_prompt - 1);
                owner[nb++] = i;
                s->rows = 1;
                if (s->fed < r->n_prompt) s->fed++;
                break;
            }
        }
        if (rc) break;
        if (nb == 0) {
            if (wait) continue; /* every request finished at this step: offer the slots again */
            break;
        }
        kvs_batch step = {nb, bt, bp, bs, bw};
        const double t0 = now_s();
        if ((rc = kvs_decode(c, &step, err))) break;
        /* the one-shot hook (cache steering) sees each prompt's prefilled cache */
        for (int i = 0; i < n && !rc; i++)
            if (sl[i].hook) {
                sl[i].hook = 0;
                const kvs_gen_request *r = sl[i].r;
                if (r->on_prefilled)
                    rc = r->on_prefilled(c, first_seq + i, kvs_seq_len(c, first_seq + i) - 1, r->user, err);
            }
        if (rc) break;
        for (int j = 0; j < nb; j++) {
            if (!bw[j]) continue;
            slot *s = &sl[owner[j]];
            s->next = kvs_sampler_sample(s->r->sampler, kvs_get_logits(c, j), c->model->hp.n_vocab);
        }
        /* each request is charged the step's time in proportion to its rows */
        const double dt = now_s() - t0;
        for (int i = 0; i < n; i++)
            if (sl[i].rows) sl[i].r->seconds += dt * sl[i].rows / nb;
    }
    free(sl);
    free(bt);
    free(bp);
    free(bs);
    free(bw);
    free(owner);
    return rc;
}

typedef struct fixed_set {
    kvs_gen_request *reqs;
} fixed_set;

/* Each slot runs its own request once. */
static int fixed_refill(void *user, int slot, kvs_gen_request *finished, kvs_gen_request **next, kvs_error *err) {
    (void)err;
    *next = finished ? NULL : &((fixed_set *)user)->reqs[slot];
    return 0;
}

int kvs_generate(kvs_ctx *c, kvs_gen_request *reqs, int n, int first_seq,
                 int (*on_token)(int req, kvs_token t, void *user), void *user, kvs_error *err) {
    if (!reqs) return err_fail(err, KVS_E_ARG, "generate: no requests");
    fixed_set fs = {reqs};
    return run(c, n, first_seq, fixed_refill, &fs, on_token, user, NULL, NULL, err);
}

int kvs_generate_stream(kvs_ctx *c, int n_slots, int first_seq, kvs_gen_refill refill, void *refill_user,
                        int (*on_token)(int slot, kvs_token t, void *user), void *user, kvs_error *err) {
    if (!refill) return err_fail(err, KVS_E_ARG, "generate: no refill function");
    return run(c, n_slots, first_seq, refill, refill_user, on_token, user, NULL, NULL, err);
}

int kvs_generate_loop(kvs_ctx *c, int n_slots, int first_seq, const kvs_gen_loop *loop, kvs_error *err) {
    if (!loop || !loop->refill || !loop->wait)
        return err_fail(err, KVS_E_ARG, "generate: a loop needs a refill and a wait function");
    return run(c, n_slots, first_seq, loop->refill, loop->refill_user, loop->on_token, loop->token_user, loop->wait,
               loop->wait_user, err);
}
