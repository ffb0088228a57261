/* `kvsteer report`: tables (and charts) from evaluation run files, shaped like
 * the paper's Table 1 (accuracy by task x method) and Table 2 (mean generated
 * tokens), plus time per generated token by method and ablation curves.
 *
 * Files whose header configurations are equal are one run split over several
 * files (shards of questions or seeds): their samples are merged, duplicates
 * (the same seed and question) counted once, and every number is recomputed
 * from the samples, so a report over shards equals a report over one file. */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/fileio.h"
#include "engine/grow.h"
#include "eval/dataset.h"
#include "eval/eval.h"
#include "eval/fingerprint.h"
#include "eval/runfile.h"
#include "eval/stats.h"
#include "cli.h"

#define CMD "report"

static const char *k_help =
    "usage: kvsteer report [options] RUN.jsonl|DIR [...]\n"
    "Tables from kvsteer eval run files (a DIR stands for its *.jsonl files, or\n"
    "for DIR/runs/ when DIR is a sweep folder): accuracy by task x method with 95%\n"
    "intervals (greedy; sampling as mean +- std over seeds); each method against the\n"
    "baseline of its task on the same questions: accuracy, share with no answer,\n"
    "accuracy among answered questions, the paired difference with its 95% interval,\n"
    "and exact paired p-values, Holm-corrected over the comparisons of one table;\n"
    "mean generated tokens; speed by method (throughput, time per token as one\n"
    "sequence sees it, real batch occupancy); ablations (accuracy against c_v, c_k,\n"
    "pairs, shots, activation scale or layer when runs differ only in that setting)\n"
    "and a list of the runs.  Files holding the same configuration (e.g.\n"
    "--offset-start shards, or sweep shards) are merged.  docs/EVALUATION.md\n"
    "says how each number is computed.\n\n"
    "      --json             print JSON instead of Markdown\n"
    "  -o, --output FILE      also write the output to FILE (atomically)\n"
    "      --plot DIR         write PNG charts with gnuplot (ablation curves with 95%\n"
    "                         intervals, time per token by method) and their data\n"
    "                         and scripts (rerun one with: gnuplot DIR/NAME.gp) into DIR\n"
    "      --rescore          score every sample again from its stored response and\n"
    "                         span with this build's answer extraction (the files are\n"
    "                         not changed; stderr says how many answers changed)\n"
    "      --data DIR         with --rescore: the data folder holding eval/*.jsonl\n"
    "                         (default: the one each run recorded)\n"
    "  -h, --help             this help\n";

/* numeric settings an ablation may vary */
enum { P_CV, P_CK, P_PAIRS, P_SHOTS, P_ACT_SCALE, P_ACT_LAYER, N_PARAMS };
static const char *const k_param_names[N_PARAMS] = {"cv", "ck", "pairs", "shots", "act_scale", "act_layer"};
static const char *const k_param_titles[N_PARAMS] = {"c_v", "c_k", "pairs", "shots", "act scale", "act layer"};

#define MAX_KV 16

typedef struct kv {
    char key[24];
    char val[96];
} kv;

typedef struct run run;
struct run {
    cJSON *cfg;      /* header config (owned copy) */
    cJSON *full;     /* full config of the first file (owned copy) */
    cJSON *samples;  /* merged sample lines (owned) */
    char files[2048];
    int n_files, partial;
    char numerics[17]; /* the files' numerics fingerprint: "" unknown (older files), "mixed" */
    char task[32], method[32];
    int sampling;
    double param[N_PARAMS]; /* NAN where not applicable */
    kv set[MAX_KV];         /* the settings that tell runs apart */
    int n_set;
    char label[256];
    /* from the samples */
    int n, n_questions, n_seeds, invalid, duplicates;
    double acc, acc_std, acc_lo, acc_hi, tokens, seconds;
    int answered, answered_correct;
    int n_wall; /* samples with a recorded time in the decoder */
    double wall_seconds, wall_tokens, wall_charged;
    char extractor[32];
    /* against the baseline of its task on the same questions (has_base) */
    int has_base;
    const run *base;
    run_paired pd;
    double p_holm;
};

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* The numbers of a merged run, from its samples: the statistics of the
 * summary line of `kvsteer eval` (run_stats_compute), primary extractor. */
static int aggregate(run *r) {
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

static void add_set(run *r, const char *key, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void add_set(run *r, const char *key, const char *fmt, ...) {
    if (r->n_set == MAX_KV) return;
    kv *k = &r->set[r->n_set++];
    snprintf(k->key, sizeof k->key, "%s", key);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(k->val, sizeof k->val, fmt, ap);
    va_end(ap);
}

static const char *get_set(const run *r, const char *key) {
    for (int i = 0; i < r->n_set; i++)
        if (!strcmp(r->set[i].key, key)) return r->set[i].val;
    return "";
}

/* What a run is: task, method, decoding, and the settings that may tell runs of
 * one method apart (the label shows those that do). */
static void describe(run *r) {
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
static void make_labels(run *rs, int n) {
    static const char *const show[] = {"model",   "traces",  "layers",   "offset", "max_new",
                                       "vectors", "sampling", "penalty", "directions"};
    for (int i = 0; i < n; i++) {
        run *r = &rs[i];
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
            const char *title = k_param_titles[p];
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

/* ------------------------------------------------------------------ input */

typedef struct strlist {
    char **v;
    int n, cap;
} strlist;

static int sl_add(strlist *l, const char *s) {
    char **nv = grow(l->v, l->n, &l->cap, sizeof *l->v);
    if (!nv) return 1;
    l->v = nv;
    return !(l->v[l->n++] = strdup(s));
}

static void sl_free(strlist *l) {
    for (int i = 0; i < l->n; i++) free(l->v[i]);
    free(l->v);
}

static int expand(const char *arg, strlist *files) {
    struct stat st;
    if (stat(arg, &st)) return cli_error(CMD, "%s: cannot open: %s", arg, strerror(errno));
    if (!S_ISDIR(st.st_mode)) return sl_add(files, arg) ? cli_error(CMD, "out of memory") : 0;
    DIR *d = opendir(arg);
    if (!d) return cli_error(CMD, "%s: cannot read directory: %s", arg, strerror(errno));
    strlist here = {0};
    struct dirent *e;
    while ((e = readdir(d))) {
        const size_t l = strlen(e->d_name);
        if (l > 6 && !strcmp(e->d_name + l - 6, ".jsonl") && e->d_name[0] != '.') {
            char p[4096];
            snprintf(p, sizeof p, "%s/%s", arg, e->d_name);
            if (sl_add(&here, p)) {
                closedir(d);
                sl_free(&here);
                return cli_error(CMD, "out of memory");
            }
        }
    }
    closedir(d);
    char runs[4096];
    snprintf(runs, sizeof runs, "%s/runs", arg);
    if (here.n == 0 && !stat(runs, &st) && S_ISDIR(st.st_mode)) { /* a sweep folder */
        sl_free(&here);
        return expand(runs, files);
    }
    if (here.n == 0) {
        sl_free(&here);
        return cli_error(CMD, "%s: no .jsonl run files in this directory", arg);
    }
    qsort(here.v, (size_t)here.n, sizeof *here.v, cmp_str);
    int rc = 0;
    for (int i = 0; i < here.n && !rc; i++) rc = sl_add(files, here.v[i]) ? cli_error(CMD, "out of memory") : 0;
    sl_free(&here);
    return rc;
}

static int rank(const char *s, const char *const *order, int n);
static const char *const k_task_order[] = {"gsm8k", "arc", "csqa", "piqa"};
static const char *const k_method_order[] = {"baseline", "cot", "cache", "cache+cot", "act"};

static int cmp_run(const void *a, const void *b) {
    const run *x = a, *y = b;
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

static int load_runs(const strlist *files, int rescore_data, const char *data_opt, run **out, int *n_out) {
    run *rs = calloc((size_t)files->n, sizeof *rs);
    if (!rs) return cli_error(CMD, "out of memory");
    int n = 0, rc = 0;
    for (int i = 0; i < files->n && !rc; i++) {
        run_file rf;
        kvs_error err = {0};
        if (run_file_load(files->v[i], 1, &rf, &err)) {
            rc = cli_error(CMD, "%s", err.msg);
            break;
        }
        if (rescore_data && (rc = rescore(&rf, data_opt))) {
            run_file_free(&rf);
            break;
        }
        const cJSON *cfg = run_config(&rf);
        int j = 0;
        while (j < n && !cJSON_Compare(rs[j].cfg, cfg, 1)) j++;
        run *r = &rs[j];
        if (j == n) {
            n++;
            r->cfg = cJSON_Duplicate(cfg, 1);
            r->full = cJSON_Duplicate(run_full_config(&rf), 1);
            r->samples = cJSON_CreateArray();
        }
        /* move the sample lines over */
        while (rf.samples && rf.samples->child) cJSON_AddItemToArray(r->samples, cJSON_DetachItemViaPointer(rf.samples, rf.samples->child));
        const size_t l = strlen(r->files);
        snprintf(r->files + l, sizeof r->files - l, "%s%s", l ? ", " : "", files->v[i]);
        r->n_files++;
        r->partial |= rf.partial;
        const cJSON *nm = cJSON_GetObjectItemCaseSensitive(rf.header, "numerics");
        if (cJSON_IsString(nm)) {
            if (!r->numerics[0]) snprintf(r->numerics, sizeof r->numerics, "%s", nm->valuestring);
            else if (strcmp(r->numerics, nm->valuestring)) snprintf(r->numerics, sizeof r->numerics, "mixed");
        }
        run_file_free(&rf);
    }
    for (int i = 0; i < n && !rc; i++) {
        describe(&rs[i]);
        rc = aggregate(&rs[i]);
    }
    if (!rc) {
        make_labels(rs, n);
        /* a fixed order, whatever the order of the files: shards give one report */
        qsort(rs, (size_t)n, sizeof *rs, cmp_run);
    }
    *out = rs;
    *n_out = n;
    return rc;
}

static void free_runs(run *rs, int n) {
    for (int i = 0; i < n; i++) {
        cJSON_Delete(rs[i].cfg);
        cJSON_Delete(rs[i].full);
        cJSON_Delete(rs[i].samples);
    }
    free(rs);
}

/* ------------------------------------------------------------------ tables */

static int rank(const char *s, const char *const *order, int n) {
    for (int i = 0; i < n; i++)
        if (!strcmp(s, order[i])) return i;
    return n;
}

/* distinct values in first-seen order, sorted by a rank */
typedef struct col {
    const char *name;
    int rank;
} col;

static int cmp_col(const void *a, const void *b) {
    const col *x = a, *y = b;
    if (x->rank != y->rank) return x->rank - y->rank;
    return strcmp(x->name, y->name);
}

static int tasks_of(const run *rs, int n, col *out) {
    int k = 0;
    for (int i = 0; i < n; i++) {
        int seen = 0;
        for (int j = 0; j < k && !seen; j++) seen = !strcmp(out[j].name, rs[i].task);
        if (!seen) out[k++] = (col){rs[i].task, rank(rs[i].task, k_task_order, 4)};
    }
    qsort(out, (size_t)k, sizeof *out, cmp_col);
    return k;
}

static int labels_of(const run *rs, int n, int sampling, col *out) {
    int k = 0;
    for (int i = 0; i < n; i++) {
        if (sampling >= 0 && rs[i].sampling != sampling) continue;
        int seen = 0;
        for (int j = 0; j < k && !seen; j++) seen = !strcmp(out[j].name, rs[i].label);
        if (!seen) out[k++] = (col){rs[i].label, rank(rs[i].method, k_method_order, 5) * 1000 + i};
    }
    /* the first run's index keeps a method's labels in input order */
    qsort(out, (size_t)k, sizeof *out, cmp_col);
    return k;
}

static const run *find(const run *rs, int n, const char *task, const char *label, int sampling) {
    for (int i = 0; i < n; i++)
        if (!strcmp(rs[i].task, task) && !strcmp(rs[i].label, label) && rs[i].sampling == sampling) return &rs[i];
    return NULL;
}

/* One task x method table; what = 0 accuracy, 1 mean generated tokens. */
static void md_table(strbuf *b, const run *rs, int n, int sampling, int what) {
    col *tasks = malloc(sizeof *tasks * (size_t)n), *labels = malloc(sizeof *labels * (size_t)n);
    if (!tasks || !labels) {
        b->oom = 1;
        free(tasks);
        free(labels);
        return;
    }
    const int nt = tasks_of(rs, n, tasks), nl = labels_of(rs, n, sampling, labels);
    sb_printf(b, "| task |");
    for (int l = 0; l < nl; l++) sb_printf(b, " %s |", labels[l].name);
    sb_printf(b, "\n|---|");
    for (int l = 0; l < nl; l++) sb_printf(b, "---|");
    sb_printf(b, "\n");
    for (int t = 0; t < nt; t++) {
        int any = 0;
        for (int l = 0; l < nl; l++) any |= find(rs, n, tasks[t].name, labels[l].name, sampling) != NULL;
        if (!any) continue;
        sb_printf(b, "| %s |", tasks[t].name);
        for (int l = 0; l < nl; l++) {
            const run *r = find(rs, n, tasks[t].name, labels[l].name, sampling);
            if (!r) sb_printf(b, " - |");
            else if (what == 1) sb_printf(b, " %.1f |", r->tokens / r->n);
            else if (sampling) sb_printf(b, " %.1f ± %.1f |", 100 * r->acc, 100 * r->acc_std);
            else sb_printf(b, " %.1f [%.1f, %.1f] |", 100 * r->acc, 100 * r->acc_lo, 100 * r->acc_hi);
        }
        sb_printf(b, "\n");
    }
    free(tasks);
    free(labels);
}

/* Speed by label, over every task.  Each sample is charged its share of every
 * decoding step it was in, so tokens over charged seconds is the throughput of
 * the whole batch; it rises with the number of sequences in flight, which
 * depends on how long the answers are, not only on --batch.  So the table also
 * gives the time per token as one sequence sees it (its time in the decoder
 * over its tokens) and the real occupancy (sequences in flight on average:
 * time in the decoder summed over samples, over the decoding time).  Files
 * made before samples recorded their time show "?" there. */
typedef struct speed {
    double tok, sec, wall, wall_tok, wall_charged;
    int runs, n_wall, n;
    char batches[128];
} speed;

static void speed_of(const run *rs, int n, const char *label, speed *sp) {
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

/* "12.3" or "?" when no sample recorded its time */
static void fmt_opt(char *out, size_t cap, int have, double v, const char *fmt) {
    if (have) snprintf(out, cap, fmt, v);
    else snprintf(out, cap, "?");
}

static void md_time(strbuf *b, const run *rs, int n) {
    col *labels = malloc(sizeof *labels * (size_t)(n ? n : 1));
    if (!labels) {
        b->oom = 1;
        return;
    }
    const int nl = labels_of(rs, n, -1, labels);
    sb_printf(b, "| method | runs | generated tokens | tokens/s, whole batch | ms/token, one sequence | sequences in flight | "
                 "--batch |\n|---|---|---|---|---|---|---|\n");
    for (int l = 0; l < nl; l++) {
        speed sp;
        speed_of(rs, n, labels[l].name, &sp);
        char seq[32], occ[32];
        fmt_opt(seq, sizeof seq, sp.n_wall == sp.n && sp.wall_tok > 0, 1000 * sp.wall / sp.wall_tok, "%.1f");
        fmt_opt(occ, sizeof occ, sp.n_wall == sp.n && sp.wall_charged > 0, sp.wall / sp.wall_charged, "%.1f");
        sb_printf(b, "| %s | %d | %.0f | %.1f | %s | %s | %s |\n", labels[l].name, sp.runs, sp.tok,
                  sp.sec > 0 ? sp.tok / sp.sec : 0.0, seq, occ, sp.batches[0] ? sp.batches : "?");
    }
    free(labels);
}

/* An ablation series: runs of one task, decoding and method that agree on
 * every setting except one numeric parameter, which takes 2+ values. */
typedef struct series {
    int param;
    int idx[64];
    int n;
} series;

static int same_except(const run *a, const run *b, int p) {
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

static int find_series(const run *rs, int n, series *out, int cap) {
    int k = 0;
    for (int p = 0; p < N_PARAMS; p++) {
        int *used = calloc((size_t)(n ? n : 1), sizeof *used);
        if (!used) return k;
        for (int i = 0; i < n && k < cap; i++) {
            if (used[i] || isnan(rs[i].param[p])) continue;
            series s = {p, {0}, 0};
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
static void fixed_desc(const run *r, int varied, char *out, size_t cap) {
    snprintf(out, cap, "%s", r->method);
    for (int q = 0; q < N_PARAMS; q++)
        if (q != varied && !isnan(r->param[q])) {
            const size_t l = strlen(out);
            snprintf(out + l, cap - l, " %s=%g", k_param_titles[q], r->param[q]);
        }
}

/* Every question id of a among b's samples (quadratic: a few thousand ids). */
static int questions_within(const run *a, const run *b) {
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
static const run *baseline_for(const run *rs, int n, const run *r0) {
    const char *fp = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(r0->cfg, "data_fingerprint"));
    for (int i = 0; fp && i < n; i++) {
        const run *b = &rs[i];
        const char *bf = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(b->cfg, "data_fingerprint"));
        if (!strcmp(b->method, "baseline") && !strcmp(b->task, r0->task) && b->sampling == r0->sampling &&
            !strcmp(get_set(b, "model_fp"), get_set(r0, "model_fp")) && b->n_questions == r0->n_questions && bf &&
            !strcmp(bf, fp) &&
            questions_within(r0, b))
            return b;
    }
    return NULL;
}

static void md_ablation(strbuf *b, const run *rs, int n, const series *s) {
    const run *r0 = &rs[s->idx[0]];
    char fixed[300];
    fixed_desc(r0, s->param, fixed, sizeof fixed);
    sb_printf(b, "%s, %s, %s: accuracy against %s\n\n| %s |", r0->task, r0->sampling ? "sampling" : "greedy", fixed,
       k_param_titles[s->param], k_param_titles[s->param]);
    for (int t = 0; t < s->n; t++) sb_printf(b, " %g |", rs[s->idx[t]].param[s->param]);
    sb_printf(b, "\n|---|");
    for (int t = 0; t < s->n; t++) sb_printf(b, "---|");
    sb_printf(b, "\n| accuracy |");
    for (int t = 0; t < s->n; t++) sb_printf(b, " %.1f |", 100 * rs[s->idx[t]].acc);
    sb_printf(b, "\n| mean tokens |");
    for (int t = 0; t < s->n; t++) sb_printf(b, " %.1f |", rs[s->idx[t]].tokens / rs[s->idx[t]].n);
    const run *base = baseline_for(rs, n, r0);
    if (base) sb_printf(b, "\n\nBaseline on the same questions: %.1f%%, %.1f tokens.", 100 * base->acc, base->tokens / base->n);
    sb_printf(b, "\n\n");
}

/* Each run against the baseline of its task on the questions both answered:
 * same task, decoding, model and data file (the same max_new preferred).  The
 * p-values of one table (greedy, or sampling) are Holm-corrected together. */
static int pair_baselines(run *rs, int n) {
    for (int i = 0; i < n; i++) {
        run *r = &rs[i];
        if (!strcmp(r->method, "baseline")) continue;
        const run *best = NULL;
        for (int j = 0; j < n; j++) {
            const run *b = &rs[j];
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

static void fmt_p(char *out, size_t cap, double p) {
    if (p < 0.001) snprintf(out, cap, "<0.001");
    else snprintf(out, cap, "%.3f", p);
}

/* Every run beside the baseline of its task: the columns a reader needs to
 * trust a difference (docs/EVALUATION.md). */
static void md_paired(strbuf *b, const run *rs, int n, int sampling) {
    sb_printf(b, "| task | method | questions | accuracy [95%% CI] | no answer | accuracy when answered | "
                 "vs baseline, points [95%% CI] | better / worse | p | p (Holm) |\n"
                 "|---|---|---|---|---|---|---|---|---|---|\n");
    for (int i = 0; i < n; i++) {
        const run *r = &rs[i];
        if (r->sampling != sampling) continue;
        char vs[96] = "-", bw[32] = "-", p[16] = "-", ph[16] = "-";
        if (r->has_base) {
            snprintf(vs, sizeof vs, "%+.1f [%+.1f, %+.1f]%s", 100 * r->pd.diff, 100 * r->pd.lo, 100 * r->pd.hi,
                     r->pd.n < r->n_questions ? " (shared questions)" : "");
            snprintf(bw, sizeof bw, "%d / %d", r->pd.better, r->pd.worse);
            fmt_p(p, sizeof p, r->pd.p);
            fmt_p(ph, sizeof ph, r->p_holm);
        } else if (strcmp(r->method, "baseline")) {
            snprintf(vs, sizeof vs, "no baseline");
        }
        sb_printf(b, "| %s | %s | %d | %.1f [%.1f, %.1f] | %.1f%% | %.1f | %s | %s | %s | %s |\n", r->task, r->label,
                  r->n_questions, 100 * r->acc, 100 * r->acc_lo, 100 * r->acc_hi, 100.0 * r->invalid / r->n,
                  r->answered ? 100.0 * r->answered_correct / r->answered : 0.0, vs, bw, p, ph);
    }
}

/* Runs computed with different arithmetic (kernels whose float roundings
 * differ) can disagree at greedy near-ties for that reason alone, which a
 * paired comparison between them would count as an effect: say so. */
static void numerics_note(strbuf *b, const run *rs, int n) {
    int distinct = 0, mixed = 0;
    for (int i = 0; i < n; i++) {
        if (!rs[i].numerics[0]) continue;
        if (!strcmp(rs[i].numerics, "mixed")) {
            mixed++;
            continue;
        }
        int seen = 0;
        for (int j = 0; j < i && !seen; j++) seen = !strcmp(rs[j].numerics, rs[i].numerics);
        distinct += !seen;
    }
    if (distinct > 1 || mixed)
        sb_printf(b, "\nNote: these runs were computed with %s arithmetic (their files' numerics fingerprints differ); "
                     "greedy answers at near-ties can differ between them for that reason alone.\n",
                  mixed ? "mixed" : "different");
}

static char *render_md(const run *rs, int n, const series *ser, int n_ser) {
    strbuf b = {0};
    int greedy = 0, sampled = 0;
    for (int i = 0; i < n; i++) greedy += !rs[i].sampling, sampled += rs[i].sampling;
    if (greedy) {
        sb_printf(&b, "## Accuracy (%%), greedy\n\n");
        md_table(&b, rs, n, 0, 0);
    }
    if (sampled) {
        sb_printf(&b, "%s## Accuracy (%%), sampling: mean ± std over seeds\n\n", greedy ? "\n" : "");
        md_table(&b, rs, n, 1, 0);
    }
    for (int sampling = 0; sampling < 2; sampling++) {
        if (!(sampling ? sampled : greedy)) continue;
        sb_printf(&b, "\n## Against the baseline on the same questions, %s\n\n",
                  sampling ? "sampling (scores: each question's share of seeds right)" : "greedy");
        md_paired(&b, rs, n, sampling);
    }
    if (greedy) {
        sb_printf(&b, "\n## Mean generated tokens, greedy\n\n");
        md_table(&b, rs, n, 0, 1);
    }
    if (sampled) {
        sb_printf(&b, "\n## Mean generated tokens, sampling\n\n");
        md_table(&b, rs, n, 1, 1);
    }
    sb_printf(&b, "\n## Speed\n\n");
    md_time(&b, rs, n);
    if (n_ser) {
        sb_printf(&b, "\n## Ablations\n\n");
        for (int i = 0; i < n_ser; i++) md_ablation(&b, rs, n, &ser[i]);
    } else {
        sb_printf(&b, "\n");
    }
    sb_printf(&b, "## Runs\n\n| task | method | decoding | questions | samples | accuracy | no answer | mean tokens | tokens/s | files |\n"
           "|---|---|---|---|---|---|---|---|---|---|\n");
    for (int i = 0; i < n; i++) {
        const run *r = &rs[i];
        char dec[48];
        if (r->sampling) snprintf(dec, sizeof dec, "sampling, %d seeds", r->n_seeds);
        else snprintf(dec, sizeof dec, "greedy");
        sb_printf(&b, "| %s | %s | %s | %d | %d | %.1f%% (%s) | %.1f%% | %.1f | %.2f | %s%s%s |\n", r->task, r->label, dec,
           r->n_questions, r->n, 100 * r->acc, r->extractor, 100.0 * r->invalid / r->n, r->tokens / r->n,
           r->seconds > 0 ? r->tokens / r->seconds : 0.0, r->files, r->partial ? " (unfinished)" : "",
           r->duplicates ? " (duplicates dropped)" : "");
    }
    numerics_note(&b, rs, n);
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    return b.p;
}

static cJSON *render_json(const run *rs, int n, const series *ser, int n_ser) {
    cJSON *j = cJSON_CreateObject();
    cJSON *arr = cJSON_AddArrayToObject(j, "runs");
    for (int i = 0; i < n; i++) {
        const run *r = &rs[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "task", r->task);
        cJSON_AddStringToObject(o, "method", r->method);
        cJSON_AddStringToObject(o, "label", r->label);
        cJSON_AddStringToObject(o, "decoding", r->sampling ? "sampling" : "greedy");
        if (r->numerics[0]) cJSON_AddStringToObject(o, "numerics", r->numerics);
        else cJSON_AddNullToObject(o, "numerics");
        cJSON *p = cJSON_AddObjectToObject(o, "params");
        for (int q = 0; q < N_PARAMS; q++)
            if (!isnan(r->param[q])) cJSON_AddNumberToObject(p, k_param_names[q], r->param[q]);
        cJSON *st = cJSON_AddObjectToObject(o, "settings");
        for (int s = 0; s < r->n_set; s++) cJSON_AddStringToObject(st, r->set[s].key, r->set[s].val);
        cJSON_AddNumberToObject(o, "n", r->n);
        cJSON_AddNumberToObject(o, "n_questions", r->n_questions);
        cJSON_AddNumberToObject(o, "n_seeds", r->n_seeds);
        cJSON_AddStringToObject(o, "extractor", r->extractor);
        cJSON_AddNumberToObject(o, "accuracy", r->acc);
        if (r->sampling) cJSON_AddNumberToObject(o, "accuracy_std", r->acc_std);
        cJSON *ci = cJSON_AddArrayToObject(o, "accuracy_ci95");
        cJSON_AddItemToArray(ci, cJSON_CreateNumber(r->acc_lo));
        cJSON_AddItemToArray(ci, cJSON_CreateNumber(r->acc_hi));
        cJSON_AddNumberToObject(o, "invalid", (double)r->invalid / r->n);
        if (r->answered) cJSON_AddNumberToObject(o, "accuracy_answered", (double)r->answered_correct / r->answered);
        else cJSON_AddNullToObject(o, "accuracy_answered");
        if (r->has_base) {
            cJSON *v = cJSON_AddObjectToObject(o, "vs_baseline");
            cJSON_AddStringToObject(v, "baseline", r->base->label);
            cJSON_AddStringToObject(v, "baseline_files", r->base->files);
            cJSON_AddNumberToObject(v, "questions", r->pd.n);
            cJSON_AddNumberToObject(v, "difference", r->pd.diff);
            cJSON *dci = cJSON_AddArrayToObject(v, "difference_ci95");
            cJSON_AddItemToArray(dci, cJSON_CreateNumber(r->pd.lo));
            cJSON_AddItemToArray(dci, cJSON_CreateNumber(r->pd.hi));
            cJSON_AddNumberToObject(v, "better", r->pd.better);
            cJSON_AddNumberToObject(v, "worse", r->pd.worse);
            cJSON_AddStringToObject(v, "test", r->pd.binary ? "exact McNemar" : "exact sign test over questions");
            cJSON_AddNumberToObject(v, "p", r->pd.p);
            cJSON_AddNumberToObject(v, "p_holm", r->p_holm);
        }
        cJSON_AddNumberToObject(o, "mean_generated_tokens", r->tokens / r->n);
        /* throughput of the whole batch; per sequence and occupancy where recorded */
        cJSON_AddNumberToObject(o, "tokens_per_second", r->seconds > 0 ? r->tokens / r->seconds : 0.0);
        if (r->n_wall == r->n && r->wall_tokens > 0 && r->wall_charged > 0) {
            cJSON_AddNumberToObject(o, "ms_per_token_one_sequence", 1000 * r->wall_seconds / r->wall_tokens);
            cJSON_AddNumberToObject(o, "sequences_in_flight", r->wall_seconds / r->wall_charged);
        }
        cJSON_AddNumberToObject(o, "duplicates_dropped", r->duplicates);
        cJSON_AddBoolToObject(o, "unfinished", r->partial);
        cJSON *fa = cJSON_AddArrayToObject(o, "files");
        char tmp[sizeof r->files];
        snprintf(tmp, sizeof tmp, "%s", r->files);
        for (char *save = NULL, *t = strtok_r(tmp, ",", &save); t; t = strtok_r(NULL, ",", &save))
            cJSON_AddItemToArray(fa, cJSON_CreateString(t[0] == ' ' ? t + 1 : t));
        cJSON_AddItemToObject(o, "config", cJSON_Duplicate(r->cfg, 1));
        cJSON_AddItemToArray(arr, o);
    }
    cJSON *ab = cJSON_AddArrayToObject(j, "ablations");
    for (int i = 0; i < n_ser; i++) {
        const series *s = &ser[i];
        const run *r0 = &rs[s->idx[0]];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "task", r0->task);
        cJSON_AddStringToObject(o, "method", r0->method);
        cJSON_AddStringToObject(o, "decoding", r0->sampling ? "sampling" : "greedy");
        cJSON_AddStringToObject(o, "param", k_param_names[s->param]);
        cJSON *pts = cJSON_AddArrayToObject(o, "points");
        for (int t = 0; t < s->n; t++) {
            const run *r = &rs[s->idx[t]];
            cJSON *pt = cJSON_CreateObject();
            cJSON_AddNumberToObject(pt, "value", r->param[s->param]);
            cJSON_AddNumberToObject(pt, "accuracy", r->acc);
            if (r->sampling) cJSON_AddNumberToObject(pt, "accuracy_std", r->acc_std);
            cJSON_AddNumberToObject(pt, "mean_generated_tokens", r->tokens / r->n);
            cJSON_AddStringToObject(pt, "label", r->label);
            cJSON_AddItemToArray(pts, pt);
        }
        cJSON_AddItemToArray(ab, o);
    }
    return j;
}

/* ------------------------------------------------------------------ plots */

static int write_text(const char *dir, const char *name, const char *text, char *path, size_t cap) {
    snprintf(path, cap, "%s/%s", dir, name);
    return cli_write_atomic(CMD, path, text);
}

static void gp_quote(strbuf *b, const char *s);

/* The saved script DIR/NAME.gp draws DIR/NAME.png from DIR/NAME.dat when run
 * again by hand (gnuplot DIR/NAME.gp); here gnuplot is told to write a
 * temporary file instead (the variable `out`), renamed when it succeeded. */
static int gnuplot(const char *dir, const char *name, strbuf *script) {
    char gp[4096], png[4096], cmdline[12600];
    snprintf(png, sizeof png, "%s/%s.png", dir, name);
    kvs_error err = {0};
    atomic_file out;
    if (atomic_open(&out, png, &err)) return cli_error(CMD, "%s", err.msg);
    /* gnuplot itself fills the temporary file */
    fclose(out.f);
    out.f = NULL;
    strbuf full = {0};
    /* noenhanced: labels such as max_new are text, not subscripts */
    sb_printf(&full, "if (!exists('out')) out = ");
    gp_quote(&full, png);
    sb_printf(&full, "\nset terminal pngcairo noenhanced size 900,560 font ',11'\nset output out\n%s",
              script->p ? script->p : "");
    char gpname[300];
    snprintf(gpname, sizeof gpname, "%s.gp", name);
    if (full.oom || write_text(dir, gpname, full.p, gp, sizeof gp)) {
        sb_free(&full);
        atomic_abort(&out);
        return full.oom ? cli_error(CMD, "out of memory") : 1;
    }
    sb_free(&full);
    snprintf(cmdline, sizeof cmdline, "gnuplot -e \"out='%s'\" '%s' 2>&1", out.tmp, gp);
    FILE *p = popen(cmdline, "r");
    if (!p) {
        atomic_abort(&out);
        return cli_error(CMD, "cannot run gnuplot: %s", strerror(errno));
    }
    char msg[512] = "";
    while (fgets(msg, sizeof msg, p)) {}
    const int st = pclose(p);
    if (st != 0) {
        atomic_abort(&out);
        msg[strcspn(msg, "\n")] = 0;
        if (st == 127 * 256 || strstr(msg, "not found"))
            return cli_error(CMD, "--plot needs gnuplot (Debian package gnuplot-nox)");
        return cli_error(CMD, "%s: gnuplot failed: %s", gp, msg[0] ? msg : "no output");
    }
    if (atomic_commit(&out, 0, &err)) return cli_error(CMD, "%s", err.msg);
    return 0;
}

static void gp_quote(strbuf *b, const char *s) {
    sb_printf(b, "\"");
    for (; *s; s++) sb_printf(b, *s == '"' || *s == '\\' ? "\\%c" : "%c", *s);
    sb_printf(b, "\"");
}

static int plot(const char *dir, const run *rs, int n, const series *ser, int n_ser) {
    if (cli_mkdirs(CMD, dir)) return 1;
    int rc = 0;
    /* ablations: one chart per task, decoding and parameter; one line per series */
    int *done = calloc((size_t)(n_ser ? n_ser : 1), sizeof *done);
    if (!done) return cli_error(CMD, "out of memory");
    for (int i = 0; i < n_ser && !rc; i++) {
        if (done[i]) continue;
        const run *r0 = &rs[ser[i].idx[0]];
        char name[256];
        snprintf(name, sizeof name, "ablation_%s_%s_%s", r0->task, r0->sampling ? "sampling" : "greedy",
                 k_param_names[ser[i].param]);
        for (char *c = name; *c; c++)
            if (*c == '+') *c = 'p';
        strbuf data = {0}, s = {0};
        sb_printf(&s, "set title ");
        char title[160];
        snprintf(title, sizeof title, "%s (%s): accuracy against %s", r0->task, r0->sampling ? "sampling" : "greedy",
                 k_param_titles[ser[i].param]);
        gp_quote(&s, title);
        sb_printf(&s, "\nset xlabel ");
        gp_quote(&s, k_param_titles[ser[i].param]);
        /* the y-axis holds every interval and the baseline level, with room above */
        const run *base = baseline_for(rs, n, r0);
        double ymax = base ? 100 * base->acc : 0;
        for (int k = i; k < n_ser; k++)
            for (int t = 0; t < ser[k].n; t++) ymax = fmax(ymax, 100 * rs[ser[k].idx[t]].acc_hi);
        ymax = fmin(100, 5 * ceil((ymax + 2.5) / 5));
        sb_printf(&s, "\nset ylabel 'accuracy (%%), bars: 95%% interval'\nset key outside bottom center horizontal\nset grid\n"
                      "set yrange [0:%g]\nset offsets graph 0.05, graph 0.05, 0, 0\nplot ", ymax);
        int block = 0;
        for (int k = i; k < n_ser; k++) {
            const run *rk = &rs[ser[k].idx[0]];
            if (ser[k].param != ser[i].param || strcmp(rk->task, r0->task) || rk->sampling != r0->sampling) continue;
            done[k] = 1;
            sb_printf(&data, "# %s\n# value accuracy std_over_seeds ci95_low ci95_high\n", rk->label);
            for (int t = 0; t < ser[k].n; t++) {
                const run *r = &rs[ser[k].idx[t]];
                sb_printf(&data, "%g %g %g %g %g\n", r->param[ser[k].param], 100 * r->acc, 100 * r->acc_std,
                          100 * r->acc_lo, 100 * r->acc_hi);
            }
            sb_printf(&data, "\n\n");
            /* the legend: the method and the settings other than the varied one */
            char leg[300];
            fixed_desc(rk, ser[k].param, leg, sizeof leg);
            char datpath[4200];
            snprintf(datpath, sizeof datpath, "%s/%s.dat", dir, name);
            sb_printf(&s, "%s", block ? ", " : "");
            gp_quote(&s, datpath);
            /* columns: value, accuracy, std over seeds, 95% interval */
            sb_printf(&s, " index %d using 1:2:4:5 with yerrorlines lw 2 pt 7 title ", block);
            gp_quote(&s, leg);
            block++;
        }
        /* the baseline as a dashed level, so a curve reads as better or worse */
        if (base) sb_printf(&s, ", %g with lines dt 2 lw 2 lc rgb 'gray40' title 'baseline %.1f%%'", 100 * base->acc,
                     100 * base->acc);
        sb_printf(&s, "\n");
        char datname[300], path[4096];
        snprintf(datname, sizeof datname, "%s.dat", name);
        if (data.oom || s.oom) rc = cli_error(CMD, "out of memory");
        if (!rc) rc = write_text(dir, datname, data.p, path, sizeof path);
        if (!rc) rc = gnuplot(dir, name, &s);
        free(data.p);
        free(s.p);
    }
    free(done);
    if (rc) return rc;
    /* speed by method: throughput of the whole batch (what a full set costs) */
    col *labels = malloc(sizeof *labels * (size_t)(n ? n : 1));
    if (!labels) return cli_error(CMD, "out of memory");
    const int nl = labels_of(rs, n, -1, labels);
    strbuf data = {0}, s = {0};
    sb_printf(&data, "# index method tokens_per_second_whole_batch\n");
    for (int l = 0; l < nl; l++) {
        speed sp;
        speed_of(rs, n, labels[l].name, &sp);
        sb_printf(&data, "%d ", l);
        gp_quote(&data, labels[l].name);
        sb_printf(&data, " %g\n", sp.sec > 0 ? sp.tok / sp.sec : 0.0);
    }
    free(labels);
    char path[4096], dat[4200];
    if (data.oom) rc = cli_error(CMD, "out of memory");
    if (!rc) rc = write_text(dir, "speed.dat", data.p, path, sizeof path);
    snprintf(dat, sizeof dat, "%s/speed.dat", dir);
    sb_printf(&s, "set title 'generated tokens per second by method (whole batch)'\nset ylabel 'tokens/s'\n"
                  "set style fill solid 0.6\nset boxwidth 0.6\nset yrange [0:*]\nset grid ytics\nset xtics rotate by -25\n"
                  "unset key\nplot ");
    gp_quote(&s, dat);
    sb_printf(&s, " using 1:3:xtic(2) with boxes\n");
    if (!rc) rc = s.oom ? cli_error(CMD, "out of memory") : gnuplot(dir, "speed", &s);
    free(data.p);
    free(s.p);
    return rc;
}

/* ------------------------------------------------------------------ main */

int cmd_report(int argc, char **argv) {
    int json = 0, rescore_data = 0;
    const char *out = NULL, *plot_dir = NULL, *data = NULL;
    static const struct option opts[] = {{"json", no_argument, 0, 1},
                                         {"output", required_argument, 0, 'o'},
                                         {"plot", required_argument, 0, 2},
                                         {"rescore", no_argument, 0, 3},
                                         {"data", required_argument, 0, 4},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    int o;
    optind = 1;
    opterr = 0;
    while ((o = getopt_long(argc, argv, ":o:h", opts, NULL)) != -1) {
        switch (o) {
        case 1: json = 1; break;
        case 'o': out = optarg; break;
        case 2: plot_dir = optarg; break;
        case 3: rescore_data = 1; break;
        case 4: data = optarg; break;
        case 'h': fputs(k_help, stdout); return 0;
        case ':': return cli_error(CMD, "option %s needs a value", argv[optind - 1]);
        default: return cli_error(CMD, "unknown option '%s' (see kvsteer report --help)", argv[optind - 1]);
        }
    }
    if (optind == argc) return cli_error(CMD, "no run files given (see --help)");
    if (data && !rescore_data) return cli_error(CMD, "--data is used only with --rescore");
    if ((out && cli_check_output(CMD, out)) || (plot_dir && cli_check_output_dir(CMD, plot_dir))) return 1;
    strlist files = {0};
    int rc = 0;
    for (int i = optind; i < argc && !rc; i++) rc = expand(argv[i], &files);
    if (!rc) qsort(files.v, (size_t)files.n, sizeof *files.v, cmp_str); /* the order of the arguments is no input */
    run *rs = NULL;
    int n = 0;
    if (!rc) rc = load_runs(&files, rescore_data, data, &rs, &n);
    if (!rc) rc = pair_baselines(rs, n);
    sl_free(&files);
    series ser[256];
    int n_ser = rc ? 0 : find_series(rs, n, ser, 256);
    char *text = NULL;
    if (!rc) {
        if (json) {
            cJSON *j = render_json(rs, n, ser, n_ser);
            char *s = j ? cJSON_Print(j) : NULL;
            cJSON_Delete(j);
            if (s && (text = malloc(strlen(s) + 2))) sprintf(text, "%s\n", s);
            free(s);
        } else {
            text = render_md(rs, n, ser, n_ser);
        }
        if (!text) rc = cli_error(CMD, "out of memory");
    }
    if (!rc && plot_dir) rc = plot(plot_dir, rs, n, ser, n_ser);
    if (!rc && out) rc = cli_write_atomic(CMD, out, text);
    if (!rc) {
        fputs(text, stdout);
        rc = fflush(stdout) ? 1 : 0;
    }
    free(text);
    free_runs(rs, n);
    return rc;
}
