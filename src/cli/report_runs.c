/* report_runs.c - run files read into the runs of `kvsteer report`.
 *
 * Files whose header configurations are equal are one run split over several
 * files (shards of questions or seeds): their samples are merged, duplicates
 * (the same seed and question) counted once, and every number is recomputed
 * from the samples, so a report over shards equals a report over one file. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval/dataset.h"
#include "eval/eval.h"
#include "eval/fingerprint.h"
#include "eval/runfile.h"
#include "eval/runstats.h"
#include "eval/stats.h"
#include "cli.h"
#include "report.h"

#define CMD "report"

const char *const report_param_names[N_PARAMS] = {"cv", "ck", "pairs", "shots", "act_scale", "act_layer"};
const char *const report_param_titles[N_PARAMS] = {"c_v", "c_k", "pairs", "shots", "act scale", "act layer"};

/* The numbers of a merged run, from its samples: the statistics of the
 * summary line of `kvsteer eval` (run_stats_compute), primary extractor. */
static int aggregate(report_run *r) {
    run_stats st;
    kvs_error err = {0};
    if (run_stats_compute(r->samples, r->files, &st, &err)) return cli_error(CMD, "%s", err.msg);
    r->n = st.n;
    r->n_questions = st.n_questions;
    r->n_seeds = st.n_seeds;
    r->invalid = st.invalid;
    r->duplicates = st.duplicates;
    r->acc = st.acc[0];
    r->acc_std = st.acc_std[0];
    for (int i = 0; i < st.n_seeds && i < RUN_MAX_SEEDS; i++) {
        r->seeds[i] = st.seeds[i];
        r->acc_seed[i] = st.acc_seed[0][i];
    }
    r->acc_lo = st.acc_lo;
    r->acc_hi = st.acc_hi;
    r->answered = st.answered;
    r->answered_correct = st.answered_correct;
    r->n_wall = st.n_wall;
    r->wall_seconds = st.wall_seconds;
    r->wall_tokens = st.wall_tokens;
    r->wall_charged = st.wall_charged;
    r->tokens = st.tokens;
    r->seconds = st.seconds;
    snprintf(r->extractor, sizeof r->extractor, "%s", st.ext[0]);
    return 0;
}

static double num(const cJSON *o, const char *key) {
    const cJSON *v = o ? cJSON_GetObjectItemCaseSensitive(o, key) : NULL;
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static void add_set(report_run *r, const char *key, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void add_set(report_run *r, const char *key, const char *fmt, ...) {
    if (r->n_set == REPORT_MAX_SETTINGS) return;
    report_setting *k = &r->set[r->n_set++];
    snprintf(k->key, sizeof k->key, "%s", key);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(k->val, sizeof k->val, fmt, ap);
    va_end(ap);
}

static const char *get_set(const report_run *r, const char *key) {
    for (int i = 0; i < r->n_set; i++)
        if (!strcmp(r->set[i].key, key)) return r->set[i].val;
    return "";
}

/* What a run is: task, method, decoding, and the settings that may tell runs of
 * one method apart (the label shows those that do). */
static void describe(report_run *r) {
    const cJSON *c = r->cfg, *f = r->full;
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(c, "task"), *m = cJSON_GetObjectItemCaseSensitive(c, "method");
    snprintf(r->task, sizeof r->task, "%s", cJSON_IsString(t) ? t->valuestring : "?");
    snprintf(r->method, sizeof r->method, "%s", cJSON_IsString(m) ? m->valuestring : "?");
    r->sampling = cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(c, "sampling"));
    for (int p = 0; p < N_PARAMS; p++) r->param[p] = NAN;
    const cJSON *mp = cJSON_GetObjectItemCaseSensitive(f, "model");
    const cJSON *mf = cJSON_GetObjectItemCaseSensitive(c, "model_fingerprint");
    add_set(r, "model", "%s", cJSON_IsString(mp) ? cli_basename(mp->valuestring) : "?");
    add_set(r, "model_fp", "%s", cJSON_IsString(mf) ? mf->valuestring : "?");
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(f, "steer"), *sc = cJSON_GetObjectItemCaseSensitive(c, "steer");
    const int nst = cJSON_GetArraySize(sc);
    if (nst > 0) {
        const cJSON *v0 = cJSON_GetArrayItem(sc, 0), *x0 = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(st, 0), "extract");
        r->param[P_CK] = num(v0, "ck");
        r->param[P_CV] = num(v0, "cv");
        r->param[P_PAIRS] = num(x0, "pairs");
        r->param[P_SHOTS] = num(x0, "shots");
        const cJSON *ly = cJSON_GetObjectItemCaseSensitive(v0, "layers"), *vf = cJSON_GetObjectItemCaseSensitive(v0, "fingerprint");
        const cJSON *tr = cJSON_GetObjectItemCaseSensitive(x0, "traces");
        add_set(r, "layers", "%s", cJSON_IsString(ly) ? ly->valuestring : "?");
        /* "?" when unknown: a run still going has no summary (where this is) yet */
        add_set(r, "traces", "%s", cJSON_IsString(tr) ? tr->valuestring : "?");
        add_set(r, "vector", "%s", cJSON_IsString(vf) ? vf->valuestring : "?");
        /* a control vector (extract --random-like) is told apart from the one it copies */
        add_set(r, "directions", "%s",
                !x0 ? "?" : cJSON_IsString(cJSON_GetObjectItemCaseSensitive(x0, "random_like")) ? "random" : "extracted");
        /* how the pairs' shots were chosen: similar questions, or the random control */
        const cJSON *sel = cJSON_GetObjectItemCaseSensitive(x0, "select");
        add_set(r, "select", "%s", cJSON_IsString(sel) ? sel->valuestring : "?");
        if (nst > 1) add_set(r, "vectors", "%d", nst);
    }
    const cJSON *ac = cJSON_GetObjectItemCaseSensitive(c, "act");
    if (cJSON_IsObject(ac)) {
        const cJSON *x = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(f, "act"), "extract");
        r->param[P_ACT_LAYER] = num(ac, "layer");
        r->param[P_ACT_SCALE] = num(ac, "scale");
        r->param[P_PAIRS] = num(x, "pairs");
        r->param[P_SHOTS] = num(x, "shots");
        const cJSON *vf = cJSON_GetObjectItemCaseSensitive(ac, "fingerprint");
        add_set(r, "vector", "%s", cJSON_IsString(vf) ? vf->valuestring : "?");
    }
    const cJSON *off = cJSON_GetObjectItemCaseSensitive(c, "offset");
    add_set(r, "offset", "%s", cJSON_IsString(off) ? (!strcmp(off->valuestring, "\n") ? "\\n" : off->valuestring) : "none");
    add_set(r, "max_new", "%g", num(c, "max_new"));
    const cJSON *df = cJSON_GetObjectItemCaseSensitive(c, "data_fingerprint");
    add_set(r, "data_fp", "%s", cJSON_IsString(df) ? df->valuestring : "?");
    if (r->sampling) {
        const cJSON *sp = cJSON_GetObjectItemCaseSensitive(c, "sampling");
        if (cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(sp, "min_p")))
            add_set(r, "sampling", "T=%g p=%g k=%g min_p=%g", num(sp, "temperature"), num(sp, "top_p"), num(sp, "top_k"),
                    num(sp, "min_p"));
        else
            add_set(r, "sampling", "T=%g p=%g k=%g", num(sp, "temperature"), num(sp, "top_p"), num(sp, "top_k"));
    }
    /* recorded only when it changes anything (greedy runs too) */
    if (cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(c, "repeat_penalty")))
        add_set(r, "penalty", "%g over %g", num(c, "repeat_penalty"), num(c, "repeat_last_n"));
}

/* The label of a run: the method, then each setting that differs between runs
 * of that method and decoding (greedy and sampled runs sit in separate tables).
 * A setting unknown on one side ("?" or NaN: a run without its summary yet) does
 * not count as a difference, and the trace file only counts between runs of one
 * task: every task's vector comes from its own traces, and that must not split
 * the paper-shaped table into one column per task. */
static void make_labels(report_run *rs, int n) {
    static const char *const show[] = {"model",   "traces",  "layers",   "offset", "max_new",
                                       "vectors", "sampling", "penalty", "directions", "select"};
    for (int i = 0; i < n; i++) {
        report_run *r = &rs[i];
        size_t at = (size_t)snprintf(r->label, sizeof r->label, "%s", r->method);
        int first = 1;
        for (int p = 0; p < N_PARAMS; p++) {
            int differs = 0;
            for (int j = 0; j < n && !differs; j++)
                if (!strcmp(rs[j].method, r->method) && rs[j].sampling == r->sampling && j != i) {
                    const double a = r->param[p], b = rs[j].param[p];
                    differs = !isnan(a) && !isnan(b) && !(a == b);
                }
            /* a title that starts with the method's name does not repeat it:
             * "act scale=1", not "act act scale=1" */
            const char *title = report_param_titles[p];
            const size_t ml = strlen(r->method);
            if (!strncmp(title, r->method, ml) && title[ml] == ' ') title += ml + 1;
            if (differs && at < sizeof r->label)
                at += (size_t)snprintf(r->label + at, sizeof r->label - at, "%s%s=%g", first ? " " : ", ", title,
                                       r->param[p]),
                    first = 0;
        }
        for (size_t s = 0; s < sizeof show / sizeof *show; s++) {
            int differs = 0;
            for (int j = 0; j < n && !differs; j++)
                if (!strcmp(rs[j].method, r->method) && rs[j].sampling == r->sampling && j != i &&
                    (strcmp(show[s], "traces") || !strcmp(rs[j].task, r->task))) {
                    const char *a = get_set(r, show[s]), *b = get_set(&rs[j], show[s]);
                    differs = strcmp(a, "?") && strcmp(b, "?") && strcmp(a, b);
                }
            if (differs && at < sizeof r->label)
                at += (size_t)snprintf(r->label + at, sizeof r->label - at, "%s%s=%s", first ? " " : ", ", show[s],
                                       get_set(r, show[s])[0] ? get_set(r, show[s]) : "-"),
                    first = 0;
        }
    }
    /* still equal labels on one task and decoding (e.g. another vector with the
     * same settings): number them */
    for (int i = 0; i < n; i++) {
        int k = 1;
        for (int j = 0; j < i; j++)
            if (!strcmp(rs[j].label, rs[i].label) && !strcmp(rs[j].task, rs[i].task) && rs[j].sampling == rs[i].sampling) k++;
        if (k > 1) {
            const size_t l = strlen(rs[i].label);
            if (l + 8 < sizeof rs[i].label) snprintf(rs[i].label + l, sizeof rs[i].label - l, " #%d", k);
        }
    }
}

/* the paper's order of tasks and methods in every table */
static const char *const k_task_order[] = {"gsm8k", "arc", "csqa", "piqa"};
static const char *const k_method_order[] = {"baseline", "cot", "cache", "cache+cot", "act"};

static int rank(const char *s, const char *const *order, int n) {
    for (int i = 0; i < n; i++)
        if (!strcmp(s, order[i])) return i;
    return n;
}

static int cmp_run(const void *a, const void *b) {
    const report_run *x = a, *y = b;
    int d = rank(x->task, k_task_order, 4) - rank(y->task, k_task_order, 4);
    if (!d) d = strcmp(x->task, y->task);
    if (!d) d = x->sampling - y->sampling;
    if (!d) d = rank(x->method, k_method_order, 5) - rank(y->method, k_method_order, 5);
    if (!d) { /* numeric settings by value, then the label */
        for (int p = 0; p < N_PARAMS && !d; p++) {
            const double u = x->param[p], v = y->param[p];
            if (!isnan(u) && !isnan(v) && u != v) d = u < v ? -1 : 1;
        }
    }
    if (!d) d = strcmp(x->label, y->label);
    if (!d) d = strcmp(x->files, y->files);
    return d;
}

/* --rescore: the samples of one file scored again from their stored text,
 * against the data file the run was made on (checked by its fingerprint). */
static int rescore(run_file *rf, const char *data_opt) {
    const cJSON *cfg = run_config(rf), *full = run_full_config(rf);
    const char *task_name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(cfg, "task"));
    const char *file = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(cfg, "data_file"));
    const char *fp = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(cfg, "data_fingerprint"));
    const char *dir = data_opt ? data_opt : cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(full, "data"));
    const eval_task *task = eval_task_find(task_name);
    if (!task || !file || !fp) return cli_error(CMD, "%s: the header names no known task and data file to rescore against", rf->path);
    if (!dir) return cli_error(CMD, "%s: the run recorded no data folder (its summary is missing): give --data DIR", rf->path);
    char path[4200], have[17];
    snprintf(path, sizeof path, "%s/eval/%s", dir, file);
    kvs_error err = {0};
    if (eval_file_fingerprint(path, have, &err)) return cli_error(CMD, "%s", err.msg);
    if (strcmp(have, fp))
        return cli_error(CMD, "%s: %s is not the data file this run was made on (fingerprint %s, run %s)", rf->path, path,
                         have, fp);
    qa_set set;
    if (qa_load(path, 0, &set, &err)) return cli_error(CMD, "%s", err.msg);
    int changed = 0;
    const int rc = eval_rescore(rf->samples, rf->path, &set, task->choices_header != NULL, &changed, &err);
    qa_free(&set);
    if (rc) return cli_error(CMD, "%s", err.msg);
    fprintf(stderr, "[report] rescored %s: %d of %d samples changed correctness\n", rf->path, changed, rf->n_samples);
    return 0;
}

/* A run's sample keys (run_sample_key), sorted by run_key_cmp; NULL when out
 * of memory. */
static char **sorted_keys(const report_run *r, int *n_out) {
    const int n = cJSON_GetArraySize(r->samples);
    char **k = calloc((size_t)(n ? n : 1), sizeof *k);
    int m = 0;
    for (const cJSON *s = r->samples->child; k && s; s = s->next) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(s, "id");
        if (!cJSON_IsString(id)) continue; /* run_stats_compute names it */
        if (!(k[m] = run_sample_key(run_sample_seed(s), id->valuestring))) {
            while (m > 0) free(k[--m]);
            free(k);
            return NULL;
        }
        m++;
    }
    if (k) qsort(k, (size_t)m, sizeof *k, run_key_cmp);
    *n_out = m;
    return k;
}

/* Keep in every run only the samples (question, seed) that every run of its
 * task and decoding has too: runs still going, or shards of different reach,
 * are then described on the same samples, and per-seed accuracies compare. */
static int keep_shared(report_run *rs, int n) {
    char ***keys = calloc((size_t)(n ? n : 1), sizeof *keys);
    int *nk = calloc((size_t)(n ? n : 1), sizeof *nk), rc = 0;
    if (!keys || !nk) rc = cli_error(CMD, "out of memory");
    for (int i = 0; i < n && !rc; i++)
        if (!(keys[i] = sorted_keys(&rs[i], &nk[i]))) rc = cli_error(CMD, "out of memory");
    for (int i = 0; i < n && !rc; i++) {
        report_run *r = &rs[i];
        for (cJSON *s = r->samples->child, *next; s && !rc; s = next) {
            next = s->next;
            const cJSON *id = cJSON_GetObjectItemCaseSensitive(s, "id");
            if (!cJSON_IsString(id)) continue;
            char *k = run_sample_key(run_sample_seed(s), id->valuestring);
            if (!k) {
                rc = cli_error(CMD, "out of memory");
                break;
            }
            int everywhere = 1;
            for (int j = 0; j < n && everywhere; j++)
                if (j != i && !strcmp(rs[j].task, r->task) && rs[j].sampling == r->sampling)
                    everywhere = bsearch(&k, keys[j], (size_t)nk[j], sizeof *keys[j], run_key_cmp) != NULL;
            free(k);
            if (!everywhere) {
                cJSON_Delete(cJSON_DetachItemViaPointer(r->samples, s));
                r->left_out++;
            }
        }
        if (!rc && !r->samples->child)
            rc = cli_error(CMD, "%s: no sample of this run is in every other %s run of task %s, so nothing is shared",
                           r->files, r->sampling ? "sampled" : "greedy", r->task);
    }
    for (int i = 0; i < n && keys; i++) {
        for (int q = 0; keys[i] && q < nk[i]; q++) free(keys[i][q]);
        free(keys[i]);
    }
    free(keys);
    free(nk);
    return rc;
}

int report_load(char *const *files, int n_files, int rescore_data, const char *data_opt, int shared, report_run **out,
                int *n_out) {
    report_run *rs = calloc((size_t)(n_files ? n_files : 1), sizeof *rs);
    if (!rs) return cli_error(CMD, "out of memory");
    int n = 0, rc = 0;
    for (int i = 0; i < n_files && !rc; i++) {
        run_file rf;
        kvs_error err = {0};
        if (run_file_load(files[i], RUN_LOAD_SAMPLES | RUN_LOAD_EMPTY, &rf, &err)) {
            rc = cli_error(CMD, "%s", err.msg);
            break;
        }
        if (rescore_data && (rc = rescore(&rf, data_opt))) {
            run_file_free(&rf);
            break;
        }
        const cJSON *cfg = run_config(&rf), *nm = cJSON_GetObjectItemCaseSensitive(rf.header, "numerics");
        const char *numerics = cJSON_IsString(nm) ? nm->valuestring : NULL;
        int j = 0; /* shards of one run, begun with kernel sets that compute the same bits, are one run */
        while (j < n && !run_configs_agree(rs[j].cfg, rs[j].numerics[0] ? rs[j].numerics : NULL, cfg, numerics)) j++;
        report_run *r = &rs[j];
        if (j == n) {
            n++;
            r->cfg = cJSON_Duplicate(cfg, 1);
            r->full = cJSON_Duplicate(run_full_config(&rf), 1);
            r->samples = cJSON_CreateArray();
        }
        /* move the sample lines over */
        while (rf.samples && rf.samples->child) cJSON_AddItemToArray(r->samples, cJSON_DetachItemViaPointer(rf.samples, rf.samples->child));
        const size_t l = strlen(r->files);
        snprintf(r->files + l, sizeof r->files - l, "%s%s", l ? ", " : "", files[i]);
        r->n_files++;
        r->partial |= rf.partial;
        if (numerics) {
            if (!r->numerics[0]) snprintf(r->numerics, sizeof r->numerics, "%s", numerics);
            else if (strcmp(r->numerics, numerics)) snprintf(r->numerics, sizeof r->numerics, "mixed");
        }
        run_file_free(&rf);
    }
    /* a shard that has written nothing yet rides along with its run's others; alone it is no run */
    for (int i = 0; i < n && !rc; i++)
        if (!rs[i].samples->child) rc = cli_error(CMD, "%s: holds no samples yet", rs[i].files);
    for (int i = 0; i < n && !rc; i++) describe(&rs[i]);
    if (!rc && shared) rc = keep_shared(rs, n);
    for (int i = 0; i < n && !rc; i++) rc = aggregate(&rs[i]);
    if (!rc) {
        make_labels(rs, n);
        /* a fixed order, whatever the order of the files: shards give one report */
        qsort(rs, (size_t)n, sizeof *rs, cmp_run);
    }
    *out = rs;
    *n_out = n;
    return rc;
}

void report_free(report_run *rs, int n) {
    for (int i = 0; i < n; i++) {
        cJSON_Delete(rs[i].cfg);
        cJSON_Delete(rs[i].full);
        cJSON_Delete(rs[i].samples);
    }
    free(rs);
}

static int cmp_col(const void *a, const void *b) {
    const report_col *x = a, *y = b;
    if (x->rank != y->rank) return x->rank - y->rank;
    return strcmp(x->name, y->name);
}

int report_tasks_of(const report_run *rs, int n, report_col *out) {
    int k = 0;
    for (int i = 0; i < n; i++) {
        int seen = 0;
        for (int j = 0; j < k && !seen; j++) seen = !strcmp(out[j].name, rs[i].task);
        if (!seen) out[k++] = (report_col){rs[i].task, rank(rs[i].task, k_task_order, 4)};
    }
    qsort(out, (size_t)k, sizeof *out, cmp_col);
    return k;
}

int report_labels_of(const report_run *rs, int n, int sampling, report_col *out) {
    int k = 0;
    for (int i = 0; i < n; i++) {
        if (sampling >= 0 && rs[i].sampling != sampling) continue;
        int seen = 0;
        for (int j = 0; j < k && !seen; j++) seen = !strcmp(out[j].name, rs[i].label);
        if (!seen) out[k++] = (report_col){rs[i].label, rank(rs[i].method, k_method_order, 5) * 1000 + i};
    }
    /* the first run's index keeps a method's labels in input order */
    qsort(out, (size_t)k, sizeof *out, cmp_col);
    return k;
}

const report_run *report_find(const report_run *rs, int n, const char *task, const char *label, int sampling) {
    for (int i = 0; i < n; i++)
        if (!strcmp(rs[i].task, task) && !strcmp(rs[i].label, label) && rs[i].sampling == sampling) return &rs[i];
    return NULL;
}

void report_speed_of(const report_run *rs, int n, const char *label, report_speed *sp) {
    memset(sp, 0, sizeof *sp);
    for (int i = 0; i < n; i++) {
        if (strcmp(rs[i].label, label)) continue;
        sp->tok += rs[i].tokens;
        sp->sec += rs[i].seconds;
        sp->wall += rs[i].wall_seconds;
        sp->wall_tok += rs[i].wall_tokens;
        sp->wall_charged += rs[i].wall_charged;
        sp->n_wall += rs[i].n_wall;
        sp->n += rs[i].n;
        sp->runs++;
        const double bt = num(rs[i].full, "batch");
        char one[32], padded[140];
        snprintf(one, sizeof one, ", %g,", bt);
        snprintf(padded, sizeof padded, ", %s,", sp->batches);
        if (!isnan(bt) && !strstr(padded, one)) {
            const size_t bl = strlen(sp->batches);
            snprintf(sp->batches + bl, sizeof sp->batches - bl, "%s%g", bl ? ", " : "", bt);
        }
    }
}

static int same_except(const report_run *a, const report_run *b, int p) {
    if (strcmp(a->task, b->task) || strcmp(a->method, b->method) || a->sampling != b->sampling) return 0;
    for (int q = 0; q < N_PARAMS; q++) {
        if (q == p) continue;
        const double x = a->param[q], y = b->param[q];
        if (!(isnan(x) && isnan(y)) && !(x == y)) return 0;
    }
    for (int i = 0; i < a->n_set; i++)
        if (strcmp(a->set[i].key, "vector") && strcmp(a->set[i].val, get_set(b, a->set[i].key))) return 0;
    return a->n_set == b->n_set;
}

int report_find_series(const report_run *rs, int n, report_series *out, int cap) {
    int k = 0;
    for (int p = 0; p < N_PARAMS; p++) {
        int *used = calloc((size_t)(n ? n : 1), sizeof *used);
        if (!used) return k;
        for (int i = 0; i < n && k < cap; i++) {
            if (used[i] || isnan(rs[i].param[p])) continue;
            report_series s = {p, {0}, 0};
            for (int j = i; j < n && s.n < 64; j++)
                if (!used[j] && !isnan(rs[j].param[p]) && (j == i || same_except(&rs[i], &rs[j], p))) {
                    int dup = 0;
                    for (int t = 0; t < s.n; t++) dup |= rs[s.idx[t]].param[p] == rs[j].param[p];
                    if (dup) continue;
                    s.idx[s.n++] = j;
                }
            if (s.n < 2) continue;
            for (int t = 0; t < s.n; t++) used[s.idx[t]] = 1;
            /* by the parameter's value */
            for (int a = 1; a < s.n; a++)
                for (int c = a; c > 0 && rs[s.idx[c]].param[p] < rs[s.idx[c - 1]].param[p]; c--) {
                    const int t = s.idx[c];
                    s.idx[c] = s.idx[c - 1];
                    s.idx[c - 1] = t;
                }
            out[k++] = s;
        }
        free(used);
    }
    return k;
}

/* The method and the parameters held fixed along a series. */
void report_fixed_desc(const report_run *r, int varied, char *out, size_t cap) {
    snprintf(out, cap, "%s", r->method);
    for (int q = 0; q < N_PARAMS; q++)
        if (q != varied && !isnan(r->param[q])) {
            const size_t l = strlen(out);
            snprintf(out + l, cap - l, " %s=%g", report_param_titles[q], r->param[q]);
        }
}

/* Every question id of a among b's samples (quadratic: a few thousand ids). */
static int questions_within(const report_run *a, const report_run *b) {
    const cJSON *x, *y;
    cJSON_ArrayForEach(x, a->samples) {
        const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(x, "id"));
        int found = 0;
        cJSON_ArrayForEach(y, b->samples) {
            const char *jd = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(y, "id"));
            if (id && jd && !strcmp(id, jd)) {
                found = 1;
                break;
            }
        }
        if (!found) return 0;
    }
    return 1;
}

/* The baseline an ablation is read against: a baseline run of the same task,
 * decoding, model, data file and questions, if one was given. */
const report_run *report_baseline_for(const report_run *rs, int n, const report_run *r0) {
    const char *fp = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(r0->cfg, "data_fingerprint"));
    for (int i = 0; fp && i < n; i++) {
        const report_run *b = &rs[i];
        const char *bf = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(b->cfg, "data_fingerprint"));
        if (!strcmp(b->method, "baseline") && !strcmp(b->task, r0->task) && b->sampling == r0->sampling &&
            !strcmp(get_set(b, "model_fp"), get_set(r0, "model_fp")) && b->n_questions == r0->n_questions && bf &&
            !strcmp(bf, fp) &&
            questions_within(r0, b))
            return b;
    }
    return NULL;
}

/* Each run against the baseline of its task on the questions both answered:
 * same task, decoding, model and data file (the same max_new preferred).  The
 * p-values of one table (greedy, or sampling) are Holm-corrected together. */
int report_pair_baselines(report_run *rs, int n) {
    for (int i = 0; i < n; i++) {
        report_run *r = &rs[i];
        if (!strcmp(r->method, "baseline")) continue;
        const report_run *best = NULL;
        for (int j = 0; j < n; j++) {
            const report_run *b = &rs[j];
            /* the model by its fingerprint: its file name is known only from a
             * finished run's summary, and a run still going pairs too */
            if (strcmp(b->method, "baseline") || strcmp(b->task, r->task) || b->sampling != r->sampling ||
                strcmp(get_set(b, "model_fp"), get_set(r, "model_fp")) || strcmp(get_set(b, "data_fp"), get_set(r, "data_fp")))
                continue;
            if (!best || (strcmp(get_set(best, "max_new"), get_set(r, "max_new")) &&
                          !strcmp(get_set(b, "max_new"), get_set(r, "max_new"))))
                best = b;
        }
        if (!best) continue;
        kvs_error err = {0};
        if (run_paired_compute(r->samples, best->samples, &r->pd, &err)) return cli_error(CMD, "%s", err.msg);
        r->has_base = r->pd.n > 0;
        r->base = best;
    }
    for (int sampling = 0; sampling < 2; sampling++) {
        double *p = malloc(sizeof *p * (size_t)(n ? n : 1));
        if (!p) return cli_error(CMD, "out of memory");
        int k = 0;
        for (int i = 0; i < n; i++)
            if (rs[i].has_base && rs[i].sampling == sampling) p[k++] = rs[i].pd.p;
        stat_holm(p, k, p);
        k = 0;
        for (int i = 0; i < n; i++)
            if (rs[i].has_base && rs[i].sampling == sampling) rs[i].p_holm = p[k++];
        free(p);
    }
    return 0;
}
