/* sched.c - the engine thread and its queue (sched.h). */
#include "sched.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct sched {
    kvs_ctx *c;
    const kvs_model *m;
    int n_slots, queue_max;
    pthread_mutex_t mu;
    pthread_cond_t work;   /* a job was queued, or stopping */
    pthread_cond_t idle;   /* a job ended */
    job **queue;           /* FIFO ring */
    int q_head, q_n;
    job **slot;            /* running job per slot */
    int stopping;          /* no new jobs */
    int cancel_all;        /* grace over: cancel everything */
    int exit;              /* the engine thread has returned */
    pthread_t thread;
    sched_stats st;
};

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

job *job_new(request *req, kvs_token *prompt, int n_prompt, int n_hold, int max_new, uint64_t seed) {
    job *j = calloc(1, sizeof *j);
    if (!j) return NULL;
    j->out = malloc(sizeof *j->out * (size_t)(max_new > 0 ? max_new : 1));
    if (!j->out) {
        free(j);
        return NULL;
    }
    j->req = *req;
    memset(req, 0, sizeof *req);
    j->prompt = prompt;
    j->n_prompt = n_prompt;
    j->n_hold = n_hold;
    j->max_new = max_new;
    j->seed = seed;
    j->refs = 1;
    pthread_cond_init(&j->changed, NULL);
    return j;
}

static void job_free(job *j) {
    request_free(&j->req);
    free(j->prompt);
    free(j->out);
    textout_free(&j->text);
    kvs_sampler_free(j->smp);
    pthread_cond_destroy(&j->changed);
    free(j);
}

/* with the lock held */
static void unref(job *j) {
    if (--j->refs == 0) job_free(j);
}

/* with the lock held: the job ends (done, cancelled or failed) */
static void finish(sched *s, job *j, const char *why) {
    j->state = JOB_DONE;
    j->finish = why;
    j->t_done = now_s();
    textout_finish(&j->text);
    s->st.gen_seconds += j->g.seconds;
    if (j->fail_status) s->st.jobs_failed++;
    else if (!strcmp(why, "cancelled")) s->st.jobs_cancelled++;
    else s->st.jobs_done++;
    pthread_cond_broadcast(&j->changed);
    pthread_cond_broadcast(&s->idle);
    unref(j);
}

static job *pop(sched *s) {
    if (!s->q_n) return NULL;
    job *j = s->queue[s->q_head];
    s->q_head = (s->q_head + 1) % s->queue_max;
    s->q_n--;
    return j;
}

/* The one-shot cache edit of a request: its vectors add up. */
static int on_prefilled(kvs_ctx *c, int seq, int last_pos, void *user, kvs_error *err) {
    const job *j = user;
    for (int i = 0; i < j->req.n_kv; i++) {
        int rc = kvs_steer_apply_cache(c, seq, last_pos, j->req.kv[i]->vec, &j->req.kv_p[i], err);
        if (rc) return rc;
    }
    return 0;
}

/* Set up a job for the engine: sampler, request, its slot's activation hook.
 * Runs on the engine thread between steps. */
static int start(sched *s, int slot, job *j, kvs_error *err) {
    kvs_sampler_params sp = j->req.sampling;
    sp.seed = j->seed;
    if (!(j->smp = kvs_sampler_new(&sp, err))) return err->code ? err->code : KVS_E_NOMEM;
    memset(&j->g, 0, sizeof j->g);
    j->g.prompt = j->prompt;
    j->g.n_prompt = j->n_prompt;
    j->g.n_hold = j->n_hold;
    j->g.max_new = j->max_new;
    j->g.sampler = j->smp;
    j->g.out = j->out;
    if (j->req.n_kv) {
        j->g.on_prefilled = on_prefilled;
        j->g.user = j;
    }
    /* the slot's sequence may carry the previous request's activation vector */
    int rc = kvs_set_residual_add(s->c, slot, -1, NULL, 0.0f, err);
    if (!rc && j->req.act) rc = kvs_steer_apply_act(s->c, slot, j->req.act->vec, j->req.act_layer, j->req.act_scale, err);
    return rc;
}

static int refill(void *user, int slot, kvs_gen_request *finished, kvs_gen_request **next, kvs_error *err) {
    sched *s = user;
    (void)err;
    *next = NULL;
    pthread_mutex_lock(&s->mu);
    job *done = s->slot[slot];
    if (finished && done) {
        s->slot[slot] = NULL;
        s->st.busy--;
        const char *why = done->cancel ? "cancelled"
                          : (done->text.stopped || done->g.stop == KVS_STOP_EOG) ? "stop"
                                                                                 : "length";
        finish(s, done, why);
    }
    job *j = NULL;
    while (!s->cancel_all && (j = pop(s)) && j->cancel) {
        s->st.queued--;
        finish(s, j, "cancelled");
        j = NULL;
    }
    if (j) {
        s->st.queued--;
        s->st.busy++;
        s->slot[slot] = j;
        j->state = JOB_RUNNING;
        j->t_start = now_s();
    }
    pthread_mutex_unlock(&s->mu);
    if (!j) return 0;
    kvs_error e2 = {0};
    if (start(s, slot, j, &e2)) {
        /* this request cannot run (its steering did not apply): fail it alone */
        pthread_mutex_lock(&s->mu);
        s->slot[slot] = NULL;
        s->st.busy--;
        j->fail_status = 500;
        snprintf(j->fail_msg, sizeof j->fail_msg, "%s", e2.msg);
        finish(s, j, "cancelled");
        pthread_mutex_unlock(&s->mu);
        return 0;
    }
    *next = &j->g;
    return 0;
}

static int on_token(int slot, kvs_token t, void *user) {
    sched *s = user;
    char buf[256];
    int nb = kvs_token_is_eog(s->m, t) ? 0 : kvs_token_to_bytes(s->m, t, buf, sizeof buf);
    if (nb > (int)sizeof buf) nb = (int)sizeof buf;
    pthread_mutex_lock(&s->mu);
    job *j = s->slot[slot];
    int stop = 1;
    if (j) {
        if (!j->n_gen++) {
            j->t_first = now_s();
            s->st.ttft_sum += j->t_first - j->t_queued;
            s->st.ttft_n++;
        }
        s->st.tokens_generated++;
        int rc = nb > 0 ? textout_add(&j->text, buf, (size_t)nb, j->req.stop, j->req.n_stop) : 0;
        if (rc < 0) {
            j->fail_status = 500;
            snprintf(j->fail_msg, sizeof j->fail_msg, "out of memory");
        }
        stop = rc != 0 || j->cancel || s->cancel_all;
        if (s->cancel_all) j->cancel = 1;
        pthread_cond_broadcast(&j->changed);
    }
    pthread_mutex_unlock(&s->mu);
    return stop;
}

static int wait_work(void *user) {
    sched *s = user;
    pthread_mutex_lock(&s->mu);
    while (!s->q_n && !s->stopping) pthread_cond_wait(&s->work, &s->mu);
    const int end = s->stopping && !s->q_n;
    pthread_mutex_unlock(&s->mu);
    return end;
}

static void *engine(void *arg) {
    sched *s = arg;
    kvs_gen_loop loop = {refill, s, on_token, s, wait_work, s};
    for (;;) {
        kvs_error err = {0};
        const int rc = kvs_generate_loop(s->c, s->n_slots, 0, &loop, &err);
        pthread_mutex_lock(&s->mu);
        if (rc) {
            /* the step failed: its requests fail, the others still run */
            fprintf(stderr, "kvsteer serve: generation failed: %s\n", err.msg);
            for (int i = 0; i < s->n_slots; i++)
                if (s->slot[i]) {
                    job *j = s->slot[i];
                    s->slot[i] = NULL;
                    s->st.busy--;
                    j->fail_status = 500;
                    snprintf(j->fail_msg, sizeof j->fail_msg, "generation failed: %s", err.msg);
                    finish(s, j, "cancelled");
                }
        }
        const int end = s->stopping && !s->q_n && !s->st.busy;
        if (end) s->exit = 1;
        pthread_cond_broadcast(&s->idle);
        pthread_mutex_unlock(&s->mu);
        if (end) return NULL;
    }
}

sched *sched_new(kvs_ctx *c, int n_slots, int queue_max, kvs_error *err) {
    sched *s = calloc(1, sizeof *s);
    if (!s || !(s->queue = calloc((size_t)queue_max, sizeof *s->queue)) ||
        !(s->slot = calloc((size_t)n_slots, sizeof *s->slot))) {
        if (s) free(s->queue);
        free(s);
        err->code = KVS_E_NOMEM;
        snprintf(err->msg, sizeof err->msg, "server: out of memory");
        return NULL;
    }
    s->c = c;
    s->m = kvs_ctx_model(c);
    s->n_slots = n_slots;
    s->queue_max = queue_max;
    s->st.slots = n_slots;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->work, NULL);
    pthread_cond_init(&s->idle, NULL);
    if (pthread_create(&s->thread, NULL, engine, s)) {
        free(s->queue);
        free(s->slot);
        free(s);
        err->code = KVS_E_NOMEM;
        snprintf(err->msg, sizeof err->msg, "server: cannot start the engine thread");
        return NULL;
    }
    return s;
}

int sched_submit(sched *s, job *j, char *msg, size_t msg_len) {
    pthread_mutex_lock(&s->mu);
    int rc = 0;
    if (s->stopping) {
        rc = 503;
        snprintf(msg, msg_len, "the server is shutting down");
    } else if (s->q_n == s->queue_max) {
        rc = 503;
        snprintf(msg, msg_len, "the queue is full (%d requests waiting); retry later", s->queue_max);
    } else {
        j->refs++; /* the scheduler's reference */
        j->state = JOB_QUEUED;
        j->t_queued = now_s();
        s->queue[(s->q_head + s->q_n) % s->queue_max] = j;
        s->q_n++;
        s->st.queued++;
        s->st.tokens_prompt += (uint64_t)j->n_prompt;
        pthread_cond_signal(&s->work);
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

void sched_lock(sched *s) { pthread_mutex_lock(&s->mu); }
void sched_unlock(sched *s) { pthread_mutex_unlock(&s->mu); }

static void deadline(struct timespec *ts, int ms) {
    clock_gettime(CLOCK_REALTIME, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

void sched_wait(sched *s, job *j, int ms) {
    struct timespec ts;
    deadline(&ts, ms);
    pthread_cond_timedwait(&j->changed, &s->mu, &ts);
}

void sched_cancel(sched *s, job *j) {
    pthread_mutex_lock(&s->mu);
    j->cancel = 1;
    pthread_mutex_unlock(&s->mu);
}

void sched_release(sched *s, job *j) {
    pthread_mutex_lock(&s->mu);
    unref(j);
    pthread_mutex_unlock(&s->mu);
}

void sched_get_stats(sched *s, sched_stats *st) {
    pthread_mutex_lock(&s->mu);
    *st = s->st;
    pthread_mutex_unlock(&s->mu);
}

void sched_stop(sched *s, int grace_ms) {
    pthread_mutex_lock(&s->mu);
    s->stopping = 1;
    pthread_cond_broadcast(&s->work);
    struct timespec ts;
    deadline(&ts, grace_ms);
    while (!s->exit && (s->q_n || s->st.busy))
        if (pthread_cond_timedwait(&s->idle, &s->mu, &ts) == ETIMEDOUT) break;
    if (!s->exit) {
        /* grace is over: queued jobs fail, running ones stop at their next token */
        s->cancel_all = 1;
        job *j;
        while ((j = pop(s))) {
            s->st.queued--;
            j->fail_status = 503;
            snprintf(j->fail_msg, sizeof j->fail_msg, "the server is shutting down");
            finish(s, j, "cancelled");
        }
        for (int i = 0; i < s->n_slots; i++)
            if (s->slot[i] && !s->slot[i]->fail_status) {
                /* an answer cut short is an error, not a finished answer */
                s->slot[i]->cancel = 1;
                s->slot[i]->fail_status = 503;
                snprintf(s->slot[i]->fail_msg, sizeof s->slot[i]->fail_msg,
                         "the server is shutting down; this answer was cut short");
            }
        pthread_cond_broadcast(&s->work);
    }
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->thread, NULL);
}

void sched_free(sched *s) {
    if (!s) return;
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->work);
    pthread_cond_destroy(&s->idle);
    free(s->queue);
    free(s->slot);
    free(s);
}
