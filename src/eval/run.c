/* run.c - an evaluation run (eval.h): the samples left to do, the
 * continuous-batching decode loop, each answer scored (score.h) and written
 * (runfile.h), and the summary.  Prompts are built by prompt.h, the run file's
 * configuration by runconfig.h. */
#define _POSIX_C_SOURCE 199309L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "answer.h"
#include "dataset.h"
#include "engine/error.h"
#include "engine/utf8.h"
#include "eval.h"
#include "fingerprint.h"
#include "prompt.h"
#include "runconfig.h"
#include "runfile.h"
#include "runstats.h"
#include "score.h"

void eval_config_init(eval_config *c) {
    memset(c, 0, sizeof *c);
    c->max_new = 768;
    c->batch = 16;
    c->n_seeds = 5;
    c->sp = kvs_sampler_default_params();
    c->sp.temperature = 0.6f;
    c->sp.top_k = 50;
    c->sp.top_p = 0.9f;
    c->act_layer = -1;
}

typedef struct question {
    const qa_row *row;
    int index;          /* row index in the data file */
    char *prompt_text;  /* rendered chat prompt (with the CoT prefix) */
    kvs_token *toks;    /* prompt tokens, then the offset token if any */
    int n_toks;         /* including the offset token */
} question;

typedef struct sample {
    int q;    /* into the question array */
    int seed; /* -1 greedy */
} sample;

/* The text of a response or span, as JSON takes it (the model's bytes with any
 * broken UTF-8 replaced); NULL only when out of memory: the ids were generated. */
static char *detok(const kvs_model *m, const kvs_token *t, int n) {
    size_t len = 0;
    char *raw = kvs_detokenize(m, t, n, &len, NULL);
    char *clean = raw ? utf8_clean(raw, len) : NULL;
    free(raw);
    return clean;
}

/* Tokens of a response without its trailing end-of-generation tokens. */
static int strip_eog(const kvs_model *m, const kvs_token *t, int n) {
    while (n > 0 && kvs_token_is_eog(m, t[n - 1])) n--;
    return n;
}

/* The decoding loop's state: what every refill needs to score a finished
 * sample and start the next one in the freed slot. */
typedef struct loop {
    const kvs_model *m;
    kvs_ctx *c;
    const question *qs;
    const sample *todo;
    int n_todo;
    int mc;
    const kvs_token *suffix;
    int n_suffix, n_ctx, max_new, n_off;
    const eval_config *so;  /* with cache steering, else NULL */
    int sampling;
    kvs_sampler_params sp;
    ans_extractor *ax;
    const char *task, *method;
    run_writer *run;
    const eval_config *cfg; /* for the progress callback */
    eval_progress pr;
    /* per slot: the answer request, the answer-span request that continues it,
     * the sampler, the span prompt buffer, the sample index, response tokens */
    kvs_gen_request *req, *areq;
    kvs_sampler **smp;
    kvs_token **app;
    int *slot_sample, *n_resp; /* slot_sample: -1 before the slot's first sample */
    double *t_start; /* per slot: when its sample's prompt was handed to the decoder */
    int next, n_slots;
    int prompts_shared; /* samples whose prompt came from another slot's cache */
} loop;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The on_prefilled hook of cache steering: every vector, in order. */
static int apply_cache(kvs_ctx *c, int seq, int last_pos, void *user, kvs_error *err) {
    const eval_config *cfg = user;
    for (int i = 0; i < cfg->n_steer; i++) {
        const int rc = kvs_steer_apply_cache(c, seq, last_pos, cfg->steer[i].vec, &cfg->steer[i].p, err);
        if (rc) return rc;
    }
    return 0;
}

static void report(const loop *lp, eval_phase phase) {
    eval_progress p = lp->pr;
    p.phase = phase;
    if (lp->cfg->progress) lp->cfg->progress(&p, lp->cfg->user);
}

/* Score one finished sample and write its line (span NULL: no span was run). */
static int record(loop *lp, int j, const kvs_gen_request *span_req, kvs_error *err) {
    const sample *s = &lp->todo[lp->slot_sample[j]];
    const question *q = &lp->qs[s->q];
    const qa_row *row = q->row;
    const kvs_gen_request *r = &lp->req[j];
    const int n_resp = lp->n_resp[j];
    char *resp = detok(lp->m, r->out, n_resp);
    char *span = NULL;
    if (lp->mc) span = detok(lp->m, span_req ? span_req->out : NULL, span_req ? strip_eog(lp->m, span_req->out, span_req->n_out) : 0);
    cJSON *o = resp && (!lp->mc || span) ? cJSON_CreateObject() : NULL;
    if (!o) {
        free(resp);
        free(span);
        return err_fail(err, KVS_E_NOMEM, "out of memory");
    }
    cJSON_AddStringToObject(o, "id", row->id);
    cJSON_AddNumberToObject(o, "index", q->index);
    cJSON_AddStringToObject(o, "task", lp->task);
    cJSON_AddStringToObject(o, "method", lp->method);
    if (s->seed < 0) cJSON_AddNullToObject(o, "seed");
    else cJSON_AddNumberToObject(o, "seed", s->seed);
    cJSON_AddStringToObject(o, "prompt", q->prompt_text);
    cJSON_AddStringToObject(o, "response", resp);
    if (lp->mc) cJSON_AddStringToObject(o, "span", span);
    const int ok = score_sample(lp->ax, row, lp->mc, resp, span, o);
    cJSON_AddNumberToObject(o, "generated_tokens", n_resp);
    cJSON_AddStringToObject(o, "stop", r->stop == KVS_STOP_EOG ? "eog" : r->stop == KVS_STOP_MAX_NEW ? "max_new" : "context");
    /* the decoding time charged to this sample (its share of each step it was in) */
    cJSON_AddNumberToObject(o, "seconds", r->seconds);
    if (lp->mc) cJSON_AddNumberToObject(o, "span_seconds", span_req ? span_req->seconds : 0.0);
    /* the time the sample was in the decoder, prompt to answer span: summed
     * over samples and divided by the decoding time, the real batch occupancy */
    cJSON_AddNumberToObject(o, "wall_seconds", now_s() - lp->t_start[j]);
    const int werr = run_writer_write(lp->run, o, err) || run_writer_flush(lp->run, err);
    cJSON_Delete(o);
    free(resp);
    free(span);
    if (werr) return err->code ? err->code : KVS_E_IO;
    lp->pr.new_correct += ok;
    lp->pr.new_tokens += n_resp;
    lp->pr.done++;
    lp->pr.new_done++;
    report(lp, EVAL_SAMPLE);
    return 0;
}

/* The multiple-choice answer span: continue slot j's sequence with the response
 * tokens not yet cached and the suffix, then up to EVAL_SPAN_TOKENS greedy tokens.
 * Returns 0 when the context has no room for it. */
static int span_request(loop *lp, int j) {
    const question *q = &lp->qs[lp->todo[lp->slot_sample[j]].q];
    const kvs_gen_request *r = &lp->req[j];
    const int full_n = q->n_toks + lp->n_resp[j];
    int cached = kvs_seq_len(lp->c, j);
    if (cached > full_n) {
        kvs_seq_truncate(lp->c, j, full_n, NULL);
        cached = full_n;
    }
    kvs_token *a = lp->app[j];
    int na = 0;
    for (int p = cached; p < full_n; p++) a[na++] = p < q->n_toks ? q->toks[p] : r->out[p - q->n_toks];
    memcpy(a + na, lp->suffix, sizeof *lp->suffix * (size_t)lp->n_suffix);
    na += lp->n_suffix;
    kvs_gen_request *ar = &lp->areq[j];
    kvs_token *aout = ar->out;
    memset(ar, 0, sizeof *ar);
    ar->out = aout;
    ar->prompt = a;
    ar->n_prompt = na;
    ar->max_new = EVAL_SPAN_TOKENS;
    ar->append = 1;
    return cached + na + 1 < lp->n_ctx;
}

/* Whether sequence seq holds, from sample smp, the first n_copy prompt
 * positions of question qi. */
static int holds_prompt(const loop *lp, int seq, int smp, int qi, int n_copy) {
    return smp >= 0 && lp->todo[smp].q == qi && kvs_seq_len(lp->c, seq) >= n_copy;
}

/* Sampling runs a question once per seed.  When another slot still holds
 * this question's prompt in its cache (an earlier seed, running or done), the
 * cached positions before the last prompt token are copied into slot j and
 * only the rest is prefilled; the last prompt token is computed again, so the
 * steering edit (cache steering, on that token) and the first logits come
 * about as before.  kvs_seq_copy gives exactly what prefilling would write and
 * no row depends on what shares its batch, so results are bit for bit those of
 * a full prefill; the prompt's prefill is paid once per question instead of
 * once per seed.  Returns 1 when r was rewritten to continue the copy, 0 when
 * it prefills the whole prompt, a negative error code. */
static int share_prompt(loop *lp, int j, int prev, int qi, kvs_gen_request *r, kvs_error *err) {
    const question *q = &lp->qs[qi];
    const int n_copy = q->n_toks - lp->n_off - 1;
    if (n_copy < 1) return 0;
    /* slot j itself first: its previous sample is often this question's last seed */
    int src = holds_prompt(lp, j, prev, qi, n_copy) ? j : -1;
    for (int i = 0; src < 0 && i < lp->n_slots; i++)
        if (i != j && holds_prompt(lp, i, lp->slot_sample[i], qi, n_copy)) src = i;
    if (src < 0) return 0;
    kvs_error e = {0};
    if (src == j ? kvs_seq_truncate(lp->c, j, n_copy, &e) : kvs_seq_copy(lp->c, src, j, n_copy, &e))
        return 0; /* prefill it whole instead */
    /* the sampler's history (its repetition penalty window) as if it had seen the whole prompt */
    for (int k = 0; r->sampler && k < n_copy; k++)
        if (kvs_sampler_accept(r->sampler, q->toks[k])) return err_fail(err, KVS_E_NOMEM, "out of memory");
    r->prompt = q->toks + n_copy;
    r->n_prompt = q->n_toks - n_copy;
    r->append = 1;
    lp->prompts_shared++;
    return 1;
}

/* Slot j's request finished (or the run starts): score what finished, run the
 * answer span after a multiple-choice response, else start the next sample. */
static int loop_refill(void *user, int j, kvs_gen_request *fin, kvs_gen_request **next, kvs_error *err) {
    loop *lp = user;
    *next = NULL;
    if (fin == &lp->req[j]) {
        lp->n_resp[j] = strip_eog(lp->m, fin->out, fin->n_out);
        if (lp->mc && span_request(lp, j)) {
            *next = &lp->areq[j];
            return 0;
        }
        if (record(lp, j, NULL, err)) return err->code;
    } else if (fin == &lp->areq[j] && record(lp, j, fin, err)) {
        return err->code;
    }
    if (lp->next >= lp->n_todo) return 0;
    const int prev = lp->slot_sample[j];
    const sample *s = &lp->todo[lp->slot_sample[j] = lp->next++];
    lp->t_start[j] = now_s();
    const question *q = &lp->qs[s->q];
    kvs_gen_request *r = &lp->req[j];
    kvs_token *out = r->out;
    memset(r, 0, sizeof *r);
    r->out = out;
    r->prompt = q->toks;
    r->n_prompt = q->n_toks;
    r->n_hold = lp->n_off;
    r->max_new = lp->max_new;
    if (lp->so) {
        r->on_prefilled = apply_cache;
        r->user = (void *)lp->so;
    }
    kvs_sampler_free(lp->smp[j]);
    lp->smp[j] = NULL;
    if (lp->sampling || kvs_sampler_penalty_on(&lp->sp)) {
        /* each question's own stream: the results do not depend on batching */
        kvs_sampler_params p = lp->sp;
        p.seed = ((uint64_t)(unsigned)s->seed << 32) | (uint32_t)q->index;
        if (!lp->sampling) p.temperature = 0.0f; /* greedy, with the penalty */
        if (!(lp->smp[j] = kvs_sampler_new(&p, err))) return err->code ? err->code : KVS_E_NOMEM;
    }
    r->sampler = lp->smp[j];
    if (lp->sampling && share_prompt(lp, j, prev, s->q, r, err) < 0) return err->code;
    *next = r;
    return 0;
}

/* ------------------------------------------------------------------ the run */

/* Decode every sample of todo, n_slots at a time, writing each as it finishes. */
static int decode_all(loop *lp, int B, int n_ctx, int n_suffix, kvs_error *err) {
    lp->req = calloc((size_t)B, sizeof *lp->req);
    lp->areq = calloc((size_t)B, sizeof *lp->areq);
    lp->smp = calloc((size_t)B, sizeof *lp->smp);
    lp->app = calloc((size_t)B, sizeof *lp->app);
    lp->slot_sample = calloc((size_t)B, sizeof *lp->slot_sample);
    lp->n_resp = calloc((size_t)B, sizeof *lp->n_resp);
    lp->t_start = calloc((size_t)B, sizeof *lp->t_start);
    int ok = lp->req && lp->areq && lp->smp && lp->app && lp->slot_sample && lp->n_resp && lp->t_start;
    lp->n_slots = B;
    for (int j = 0; ok && j < B; j++) {
        lp->slot_sample[j] = -1;
        lp->req[j].out = malloc(sizeof(kvs_token) * (size_t)lp->max_new);
        lp->areq[j].out = malloc(sizeof(kvs_token) * EVAL_SPAN_TOKENS);
        lp->app[j] = malloc(sizeof(kvs_token) * (size_t)(n_ctx + n_suffix + 1));
        ok = lp->req[j].out && lp->areq[j].out && lp->app[j];
    }
    report(lp, EVAL_DECODING);
    int rc = 0;
    if (!ok) rc = err_fail(err, KVS_E_NOMEM, "out of memory");
    else rc = kvs_generate_stream(lp->c, B, 0, loop_refill, lp, NULL, NULL, err);
    for (int j = 0; j < B; j++) {
        free(lp->req ? lp->req[j].out : NULL);
        free(lp->areq ? lp->areq[j].out : NULL);
        free(lp->app ? lp->app[j] : NULL);
        kvs_sampler_free(lp->smp ? lp->smp[j] : NULL);
    }
    free(lp->req);
    free(lp->areq);
    free(lp->smp);
    free(lp->app);
    free(lp->slot_sample);
    free(lp->n_resp);
    free(lp->t_start);
    return rc;
}

int eval_run(const eval_config *cfg, eval_result *res, kvs_error *err) {
    kvs_error own = {0};
    if (!err) err = &own; /* the decode loop's callbacks read err->code */
    memset(res, 0, sizeof *res);
    const kvs_model *m = cfg->model;
    const eval_task *task = cfg->task;
    const int method = cfg->method;
    const int cache = method == EVAL_CACHE || method == EVAL_CACHE_COT;
    const int cot = method == EVAL_COT || method == EVAL_CACHE_COT;
    const int mc = task->choices_header != NULL;
    if (cache && cfg->n_steer == 0) return err_fail(err, KVS_E_ARG, "method %s needs a cache-steering vector", eval_method_names[method]);
    if (method == EVAL_ACT && (!cfg->act.vec || cfg->act_layer < -1 ||
                               (cfg->act_layer < 0 && kvs_steer_get_format(cfg->act.vec) != KVS_FORMAT_CONTROLVECTOR)))
        return err_fail(err, KVS_E_ARG, "method act needs an activation vector and its layer");
    /* the offset token: as asked, else the task's with cache steering, else none */
    const char *offset = cfg->offset ? (cfg->offset[0] ? cfg->offset : NULL) : cache ? task->steer_offset : NULL;
    int n_ctx = cfg->n_ctx;

    int rc = 0;
    kvs_ctx *c = NULL;
    ans_extractor *ax = NULL;
    qa_set set = {0};
    question *qs = NULL;
    sample *todo = NULL;
    kvs_token *suffix = NULL, *off = NULL;
    cJSON *config = NULL, *full = NULL, *extra = NULL, *sum = NULL;
    run_writer run = {0};
    int n_q = 0, n_suffix = 0, n_off = 0, n_todo = 0, n_keys = 0;
    char **keys = NULL;
    char data_path[4200];
    snprintf(data_path, sizeof data_path, "%s/eval/%s", cfg->data_dir, task->file);

    if (!(ax = ans_new(err))) goto fail;
    if (qa_load(data_path, 0, &set, err)) goto fail;
    if (cfg->offset_start >= set.n) {
        res->fault = EVAL_FAULT_OFFSET_START;
        err_fail(err, KVS_E_RANGE, "%s has %d questions", data_path, set.n);
        goto fail;
    }
    const int every = runconfig_every(cfg);
    n_q = (set.n - cfg->offset_start + every - 1) / every;
    if (cfg->limit > 0 && cfg->limit < n_q) n_q = cfg->limit;
    for (int i = 0; i < n_q; i++) {
        const qa_row *r = &set.rows[cfg->offset_start + i * every];
        if (mc && r->n_choices < 2) {
            err_fail(err, KVS_E_FORMAT, "%s: question '%s' has no choices (task %s is multiple choice)", data_path, r->id,
                     task->name);
            goto fail;
        }
    }
    if (offset) {
        if (!(off = kvs_tokenize_alloc(m, offset, strlen(offset), 0, 0, 0, &n_off, err))) goto fail;
        if (n_off != 1) {
            res->fault = EVAL_FAULT_OFFSET;
            err_fail(err, KVS_E_ARG, "offset '%s' is %d tokens; it must be exactly one", offset, n_off);
            goto fail;
        }
    }
    if (mc && !(suffix = kvs_tokenize_alloc(m, ANS_SUFFIX, strlen(ANS_SUFFIX), 0, 0, 0, &n_suffix, err))) goto fail;

    /* prompts */
    if (!(qs = calloc((size_t)n_q, sizeof *qs))) {
        err_fail(err, KVS_E_NOMEM, "out of memory");
        goto fail;
    }
    int longest = 0;
    for (int i = 0; i < n_q; i++) {
        question *q = &qs[i];
        q->index = cfg->offset_start + i * every;
        q->row = &set.rows[q->index];
        if (prompt_build(m, task, q->row, cot, off, n_off, &q->prompt_text, &q->toks, &q->n_toks, err)) goto fail;
        if (q->n_toks > longest) longest = q->n_toks;
    }
    /* context: the longest prompt, the answer, the extraction suffix and span */
    const int reserve = mc ? n_suffix + EVAL_SPAN_TOKENS + 1 : 1;
    kvs_model_info mi;
    kvs_model_get_info(m, &mi);
    if (n_ctx == 0) {
        n_ctx = longest + cfg->max_new + reserve;
        if (mi.n_ctx_train > 0 && n_ctx > mi.n_ctx_train) n_ctx = mi.n_ctx_train;
    }
    for (int i = 0; i < n_q; i++)
        if (qs[i].n_toks + reserve > n_ctx) {
            res->fault = EVAL_FAULT_CONTEXT;
            err_fail(err, KVS_E_RANGE, "question '%s': prompt of %d tokens is longer than the context (%d)", qs[i].row->id,
                     qs[i].n_toks, n_ctx);
            goto fail;
        }

    if (!(config = runconfig_header(cfg, offset, cot, mc, err))) goto fail;
    full = runconfig_full(cfg, config, n_q, n_ctx);
    extra = cJSON_CreateObject();
    cJSON_AddStringToObject(extra, "fingerprint_method", EVAL_FINGERPRINT_METHOD);
    cJSON_AddStringToObject(extra, "kvsteer_version", kvs_version());
    /* outside the config, so that files made before it existed still resume;
     * run_writer_open refuses a file whose own value differs */
    char numerics[17];
    if (eval_numerics_fingerprint(m, cfg->n_threads, cfg->kv_f16, numerics, err)) goto fail;
    cJSON_AddStringToObject(extra, "numerics", numerics);
    cJSON_AddStringToObject(extra, "numerics_method", EVAL_NUMERICS_METHOD);
    if (run_writer_open(&run, cfg->out_path, config, extra, cfg->overwrite, err)) {
        res->fault = EVAL_FAULT_RUN_FILE;
        goto fail;
    }

    /* what is left to do: (seed, question) pairs not in the file */
    const int seeds = cfg->sampling ? cfg->n_seeds : 1, total = seeds * n_q;
    if (!(todo = malloc(sizeof *todo * (size_t)total))) {
        err_fail(err, KVS_E_NOMEM, "out of memory");
        goto fail;
    }
    /* question by question, its seeds together: they share the prompt's
     * prefill (share_prompt) while one of them is still in the cache */
    for (int i = 0; i < n_q; i++)
        for (int s = 0; s < seeds; s++) {
            const int seed = cfg->sampling ? s : -1;
            if (!run_writer_has(&run, seed, qs[i].row->id)) todo[n_todo++] = (sample){i, seed};
        }
    loop lp = {.m = m, .qs = qs, .todo = todo, .n_todo = n_todo, .mc = mc, .suffix = suffix, .n_suffix = n_suffix,
               .n_ctx = n_ctx, .max_new = cfg->max_new, .n_off = n_off, .so = cache ? cfg : NULL,
               .sampling = cfg->sampling, .sp = cfg->sp, .ax = ax, .task = task->name,
               .method = eval_method_names[method], .run = &run, .cfg = cfg};
    lp.pr.total = total;
    lp.pr.done = total - n_todo;
    lp.pr.dropped_truncated = run.truncated;
    report(&lp, EVAL_OPENED);
    lp.pr.dropped_truncated = 0;
    if (n_todo > 0) {
        const int B = cfg->batch < n_todo ? cfg->batch : n_todo;
        kvs_ctx_params cp = kvs_ctx_default_params();
        cp.n_ctx = n_ctx;
        cp.n_seq = B;
        cp.n_threads = cfg->n_threads;
        cp.kv_f16 = cfg->kv_f16;
        if (!(c = kvs_ctx_new(m, &cp, err))) goto fail;
        if (cfg->act.vec && kvs_steer_apply_act(c, -1, cfg->act.vec, cfg->act_layer, cfg->act_scale, err)) goto fail;
        lp.c = c;
        const int drc = decode_all(&lp, B, n_ctx, n_suffix, err);
        res->prompts_shared = lp.prompts_shared;
        if (drc) goto fail;
    }

    /* every requested sample is present: the summary, of exactly those (the file
     * may hold more, from an earlier run with a larger --limit) */
    if (!(keys = malloc(sizeof *keys * (size_t)total))) {
        err_fail(err, KVS_E_NOMEM, "out of memory");
        goto fail;
    }
    for (int s = 0; s < seeds; s++)
        for (int i = 0; i < n_q; i++)
            if (!(keys[n_keys++] = run_sample_key(cfg->sampling ? s : -1, qs[i].row->id))) {
                err_fail(err, KVS_E_NOMEM, "out of memory");
                goto fail;
            }
    qsort(keys, (size_t)n_keys, sizeof *keys, run_key_cmp);
    if (!(sum = run_summarize_keys(cfg->out_path, keys, n_keys, err))) goto fail;
    cJSON_AddStringToObject(sum, "task", task->name);
    cJSON_AddStringToObject(sum, "method", eval_method_names[method]);
    cJSON_AddItemToObject(sum, "config", cJSON_Duplicate(full, 1));
    cJSON *mf = cJSON_AddObjectToObject(sum, "model_fingerprint");
    cJSON_AddStringToObject(mf, "method", EVAL_FINGERPRINT_METHOD);
    cJSON_AddStringToObject(mf, "value", cJSON_GetObjectItemCaseSensitive(config, "model_fingerprint")->valuestring);
    cJSON_AddStringToObject(sum, "kvsteer_version", kvs_version());
    if (run_writer_write(&run, sum, err) || run_writer_flush(&run, err)) goto fail;
    res->summary = sum;
    sum = NULL;
    goto done;
fail:
    rc = err->code ? err->code : KVS_E_IO;
done:
    cJSON_Delete(sum);
    run_writer_close(&run);
    cJSON_Delete(config);
    cJSON_Delete(full);
    cJSON_Delete(extra);
    free(todo);
    for (int i = 0; i < n_keys; i++) free(keys[i]);
    free(keys);
    for (int i = 0; qs && i < n_q; i++) {
        free(qs[i].prompt_text);
        free(qs[i].toks);
    }
    free(qs);
    free(suffix);
    free(off);
    qa_free(&set);
    ans_free(ax);
    kvs_ctx_free(c);
    return rc;
}
