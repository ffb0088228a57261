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
#include "eval/runfile.h"
#include "cli.h"

#define CMD "report"

static const char *k_help =
    "usage: kvsteer report [options] RUN.jsonl|DIR [...]\n"
    "Tables from kvsteer eval run files (a DIR stands for its *.jsonl files):\n"
    "accuracy by task x method (greedy; sampling as mean +- std over seeds), mean\n"
    "generated tokens, milliseconds per generated token by method, ablations\n"
    "(accuracy against c_v, c_k, pairs, shots, activation scale or layer when runs\n"
    "differ only in that setting) and a list of the runs.  Files holding the same\n"
    "configuration (e.g. --offset-start shards, or sweep shards) are merged.\n\n"
    "      --json             print JSON instead of Markdown\n"
    "  -o, --output FILE      also write the output to FILE (atomically)\n"
    "      --plot DIR         write PNG charts with gnuplot (ablation curves, time per\n"
    "                         token by method) and their data and scripts into DIR\n"
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

typedef struct run {
    cJSON *cfg;      /* header config (owned copy) */
    cJSON *full;     /* full config of the first file (owned copy) */
    cJSON *samples;  /* merged sample lines (owned) */
    char files[2048];
    int n_files, partial;
    char task[32], method[32], model[128];
    int sampling;
    double param[N_PARAMS]; /* NAN where not applicable */
    kv set[MAX_KV];         /* the settings that tell runs apart */
    int n_set;
    char label[256];
    /* from the samples */
    int n, n_questions, n_seeds, invalid, duplicates;
    double acc, acc_std, tokens, seconds;
    char extractor[32];
} run;

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
    snprintf(r->model, sizeof r->model, "%s", cJSON_IsString(mp) ? cli_basename(mp->valuestring) : "?");
    const cJSON *mf = cJSON_GetObjectItemCaseSensitive(c, "model_fingerprint");
    add_set(r, "model", "%s", r->model);
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
        add_set(r, "sampling", "T=%g p=%g k=%g", num(sp, "temperature"), num(sp, "top_p"), num(sp, "top_k"));
    }
}

/* The label of a run: the method, then each setting that differs between runs
 * of that method and decoding (greedy and sampled runs sit in separate tables).
 * A setting unknown on one side ("?" or NaN: a run without its summary yet) does
 * not count as a difference, and the trace file only counts between runs of one
 * task: every task's vector comes from its own traces, and that must not split
 * the paper-shaped table into one column per task. */
static void make_labels(run *rs, int n) {
    static const char *const show[] = {"model", "traces", "layers", "offset", "max_new", "vectors", "sampling"};
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

static int load_runs(const strlist *files, run **out, int *n_out) {
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
            else sb_printf(b, " %.1f |", 100 * r->acc);
        }
        sb_printf(b, "\n");
    }
    free(tasks);
    free(labels);
}

/* Time per generated token by label, over every task (sum of seconds over sum
 * of tokens: the batched wall time each sample was charged). */
static void md_time(strbuf *b, const run *rs, int n) {
    col *labels = malloc(sizeof *labels * (size_t)(n ? n : 1));
    if (!labels) {
        b->oom = 1;
        return;
    }
    const int nl = labels_of(rs, n, -1, labels);
    sb_printf(b, "| method | runs | generated tokens | ms per token | batch |\n|---|---|---|---|---|\n");
    for (int l = 0; l < nl; l++) {
        double tok = 0, sec = 0;
        int k = 0;
        char batches[128] = "";
        for (int i = 0; i < n; i++) {
            if (strcmp(rs[i].label, labels[l].name)) continue;
            tok += rs[i].tokens;
            sec += rs[i].seconds;
            k++;
            const double bt = num(rs[i].full, "batch");
            char one[32], padded[140];
            snprintf(one, sizeof one, ", %g,", bt);
            snprintf(padded, sizeof padded, ", %s,", batches);
            if (!isnan(bt) && !strstr(padded, one)) {
                const size_t bl = strlen(batches);
                snprintf(batches + bl, sizeof batches - bl, "%s%g", bl ? ", " : "", bt);
            }
        }
        sb_printf(b, "| %s | %d | %.0f | %.2f | %s |\n", labels[l].name, k, tok, tok > 0 ? 1000 * sec / tok : 0.0,
           batches[0] ? batches : "?");
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
            !strcmp(b->model, r0->model) && b->n_questions == r0->n_questions && bf && !strcmp(bf, fp) &&
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
    if (greedy) {
        sb_printf(&b, "\n## Mean generated tokens, greedy\n\n");
        md_table(&b, rs, n, 0, 1);
    }
    if (sampled) {
        sb_printf(&b, "\n## Mean generated tokens, sampling\n\n");
        md_table(&b, rs, n, 1, 1);
    }
    sb_printf(&b, "\n## Time per generated token\n\n");
    md_time(&b, rs, n);
    if (n_ser) {
        sb_printf(&b, "\n## Ablations\n\n");
        for (int i = 0; i < n_ser; i++) md_ablation(&b, rs, n, &ser[i]);
    } else {
        sb_printf(&b, "\n");
    }
    sb_printf(&b, "## Runs\n\n| task | method | decoding | questions | samples | accuracy | no answer | mean tokens | ms/token | files |\n"
           "|---|---|---|---|---|---|---|---|---|---|\n");
    for (int i = 0; i < n; i++) {
        const run *r = &rs[i];
        char dec[48];
        if (r->sampling) snprintf(dec, sizeof dec, "sampling, %d seeds", r->n_seeds);
        else snprintf(dec, sizeof dec, "greedy");
        sb_printf(&b, "| %s | %s | %s | %d | %d | %.1f%% (%s) | %.1f%% | %.1f | %.2f | %s%s%s |\n", r->task, r->label, dec,
           r->n_questions, r->n, 100 * r->acc, r->extractor, 100.0 * r->invalid / r->n, r->tokens / r->n,
           r->tokens > 0 ? 1000 * r->seconds / r->tokens : 0.0, r->files, r->partial ? " (unfinished)" : "",
           r->duplicates ? " (duplicates dropped)" : "");
    }
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
        cJSON_AddNumberToObject(o, "invalid", (double)r->invalid / r->n);
        cJSON_AddNumberToObject(o, "mean_generated_tokens", r->tokens / r->n);
        cJSON_AddNumberToObject(o, "ms_per_token", r->tokens > 0 ? 1000 * r->seconds / r->tokens : 0.0);
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

/* gnuplot writes to a temporary name; renamed when it succeeded. */
static int gnuplot(const char *dir, const char *name, strbuf *script) {
    char gp[4096], png[4096], cmdline[8400];
    snprintf(png, sizeof png, "%s/%s.png", dir, name);
    kvs_error err = {0};
    atomic_file out;
    if (atomic_open(&out, png, &err)) return cli_error(CMD, "%s", err.msg);
    /* gnuplot itself fills the temporary file */
    fclose(out.f);
    out.f = NULL;
    strbuf full = {0};
    /* noenhanced: labels such as max_new are text, not subscripts */
    sb_printf(&full, "set terminal pngcairo noenhanced size 900,560 font ',11'\nset output '%s'\n%s", out.tmp,
              script->p ? script->p : "");
    char gpname[300];
    snprintf(gpname, sizeof gpname, "%s.gp", name);
    if (full.oom || write_text(dir, gpname, full.p, gp, sizeof gp)) {
        sb_free(&full);
        atomic_abort(&out);
        return full.oom ? cli_error(CMD, "out of memory") : 1;
    }
    sb_free(&full);
    snprintf(cmdline, sizeof cmdline, "gnuplot '%s' 2>&1", gp);
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
        sb_printf(&s, "\nset ylabel 'accuracy (%%)'\nset key outside bottom center horizontal\nset grid\nset yrange [0:5<*]\nset offsets graph 0.05, graph 0.05, 0, 0\nplot ");
        int block = 0;
        for (int k = i; k < n_ser; k++) {
            const run *rk = &rs[ser[k].idx[0]];
            if (ser[k].param != ser[i].param || strcmp(rk->task, r0->task) || rk->sampling != r0->sampling) continue;
            done[k] = 1;
            sb_printf(&data, "# %s\n", rk->label);
            for (int t = 0; t < ser[k].n; t++) {
                const run *r = &rs[ser[k].idx[t]];
                sb_printf(&data, "%g %g %g\n", r->param[ser[k].param], 100 * r->acc, 100 * r->acc_std);
            }
            sb_printf(&data, "\n\n");
            /* the legend: the method and the settings other than the varied one */
            char leg[300];
            fixed_desc(rk, ser[k].param, leg, sizeof leg);
            char datpath[4200];
            snprintf(datpath, sizeof datpath, "%s/%s.dat", dir, name);
            sb_printf(&s, "%s", block ? ", " : "");
            gp_quote(&s, datpath);
            /* sampling: error bars of one std over seeds */
            sb_printf(&s, " index %d using 1:2%s with %s lw 2 pt 7 title ", block, r0->sampling ? ":3" : "",
               r0->sampling ? "yerrorlines" : "linespoints");
            gp_quote(&s, leg);
            block++;
        }
        /* the baseline as a dashed level, so a curve reads as better or worse */
        const run *base = baseline_for(rs, n, r0);
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
    /* time per generated token by method */
    col *labels = malloc(sizeof *labels * (size_t)(n ? n : 1));
    if (!labels) return cli_error(CMD, "out of memory");
    const int nl = labels_of(rs, n, -1, labels);
    strbuf data = {0}, s = {0};
    for (int l = 0; l < nl; l++) {
        double tok = 0, sec = 0;
        for (int i = 0; i < n; i++)
            if (!strcmp(rs[i].label, labels[l].name)) tok += rs[i].tokens, sec += rs[i].seconds;
        sb_printf(&data, "%d ", l);
        gp_quote(&data, labels[l].name);
        sb_printf(&data, " %g\n", tok > 0 ? 1000 * sec / tok : 0.0);
    }
    free(labels);
    char path[4096], dat[4200];
    if (data.oom) rc = cli_error(CMD, "out of memory");
    if (!rc) rc = write_text(dir, "time_per_token.dat", data.p, path, sizeof path);
    snprintf(dat, sizeof dat, "%s/time_per_token.dat", dir);
    sb_printf(&s, "set title 'time per generated token by method'\nset ylabel 'ms per token'\nset style fill solid 0.6\n"
           "set boxwidth 0.6\nset yrange [0:*]\nset grid ytics\nset xtics rotate by -25\nunset key\nplot ");
    gp_quote(&s, dat);
    sb_printf(&s, " using 1:3:xtic(2) with boxes\n");
    if (!rc) rc = s.oom ? cli_error(CMD, "out of memory") : gnuplot(dir, "time_per_token", &s);
    free(data.p);
    free(s.p);
    return rc;
}

/* ------------------------------------------------------------------ main */

int cmd_report(int argc, char **argv) {
    int json = 0;
    const char *out = NULL, *plot_dir = NULL;
    static const struct option opts[] = {{"json", no_argument, 0, 1},
                                         {"output", required_argument, 0, 'o'},
                                         {"plot", required_argument, 0, 2},
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
        case 'h': fputs(k_help, stdout); return 0;
        case ':': return cli_error(CMD, "option %s needs a value", argv[optind - 1]);
        default: return cli_error(CMD, "unknown option '%s' (see kvsteer report --help)", argv[optind - 1]);
        }
    }
    if (optind == argc) return cli_error(CMD, "no run files given (see --help)");
    if ((out && cli_check_output(CMD, out)) || (plot_dir && cli_check_output_dir(CMD, plot_dir))) return 1;
    strlist files = {0};
    int rc = 0;
    for (int i = optind; i < argc && !rc; i++) rc = expand(argv[i], &files);
    if (!rc) qsort(files.v, (size_t)files.n, sizeof *files.v, cmp_str); /* the order of the arguments is no input */
    run *rs = NULL;
    int n = 0;
    if (!rc) rc = load_runs(&files, &rs, &n);
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
