/* sched.h - the one engine thread of a server and its queue: requests wait in
 * a bounded queue, each runs in a slot (a sequence of the shared context), and
 * all running requests advance together, one decoding step at a time
 * (kvs_generate_loop).  A request's tokens do not depend on what else runs. */
#ifndef KVS_SERVER_SCHED_H
#define KVS_SERVER_SCHED_H
#include <pthread.h>
#include <stdint.h>

#include "request.h"
#include "textout.h"

typedef enum job_state { JOB_QUEUED, JOB_RUNNING, JOB_DONE } job_state;

typedef struct job {
    /* set before submission, read-only afterwards */
    request req;
    kvs_token *prompt; /* the whole prompt, offset token last when there is one */
    int n_prompt, n_hold, max_new;
    uint64_t seed;
    /* guarded by the scheduler's lock */
    job_state state;
    int cancel;           /* the client went away or the server is stopping */
    int fail_status;      /* non-zero: failed with this HTTP status and fail_msg */
    char fail_msg[600];
    textout text;
    int n_gen;            /* tokens generated (an end-of-turn token included) */
    const char *finish;   /* "stop", "length" or "cancelled" once done */
    double t_queued, t_start, t_first, t_done;
    pthread_cond_t changed; /* new text, or done */
    int refs;
    /* the engine thread's own */
    kvs_sampler *smp;
    kvs_token *out;
    kvs_gen_request g;
} job;

typedef struct sched_stats {
    int queued, busy, slots;
    uint64_t tokens_generated, tokens_prompt, jobs_done, jobs_cancelled, jobs_failed;
    double gen_seconds;   /* decode time charged to requests */
    double ttft_sum;      /* time to first token, summed over requests that got one */
    uint64_t ttft_n;
} sched_stats;

typedef struct sched sched;

/* Takes over nothing: c must outlive the scheduler. */
sched *sched_new(kvs_ctx *c, int n_slots, int queue_max, kvs_error *err);
/* A new job owning req (moved in) and the prompt tokens; refs = 1 (the caller's). */
job *job_new(request *req, kvs_token *prompt, int n_prompt, int n_hold, int max_new, uint64_t seed);
/* Queue a job.  0, or 503 (queue full / stopping) with msg filled. */
int sched_submit(sched *s, job *j, char *msg, size_t msg_len);
/* Wait until the job changes or `ms` pass; returns with the lock released. */
void sched_wait(sched *s, job *j, int ms);
void sched_lock(sched *s);
void sched_unlock(sched *s);
/* Ask a job to stop (the client went away). */
void sched_cancel(sched *s, job *j);
/* Drop the caller's reference. */
void sched_release(sched *s, job *j);
void sched_get_stats(sched *s, sched_stats *st);
/* Stop taking jobs; wait up to grace_ms for queued and running ones to finish,
 * then cancel the rest; returns when the engine thread has ended.  Jobs stay
 * valid until their holders release them; sched_free comes after that. */
void sched_stop(sched *s, int grace_ms);
void sched_free(sched *s);

#endif
