/* report.h - the runs behind `kvsteer report`.
 *
 * Three steps, one file each: report_runs.c reads run files into runs (files
 * with equal header configurations merged into one run, every number
 * recomputed from the samples), labels them and pairs each with the baseline
 * of its task; report_tables.c writes them as Markdown or JSON; report_plot.c
 * draws them with gnuplot.  cmd_report.c is the command's options. */
#ifndef KVS_CLI_REPORT_H
#define KVS_CLI_REPORT_H
#include <stddef.h>

#include <cjson/cJSON.h>

#include "eval/runstats.h"

/* numeric settings an ablation may vary */
enum { P_CV, P_CK, P_PAIRS, P_SHOTS, P_ACT_SCALE, P_ACT_LAYER, N_PARAMS };
/* their names in JSON, and in tables and charts */
extern const char *const report_param_names[N_PARAMS];
extern const char *const report_param_titles[N_PARAMS];

#define REPORT_MAX_SETTINGS 16

typedef struct report_setting {
    char key[24];
    char val[96];
} report_setting;

typedef struct report_run report_run;
struct report_run {
    cJSON *cfg;      /* header config (owned copy) */
    cJSON *full;     /* full config of the first file (owned copy) */
    cJSON *samples;  /* merged sample lines (owned) */
    char files[2048];
    int n_files, partial;
    int left_out;    /* samples left out by report_load's `shared` */
    char numerics[17]; /* the files' numerics fingerprint: "" unknown (older files), "mixed" */
    char task[32], method[32];
    int sampling;
    double param[N_PARAMS];                 /* NAN where not applicable */
    report_setting set[REPORT_MAX_SETTINGS]; /* the settings that tell runs apart */
    int n_set;
    char label[256];
    /* from the samples */
    int n, n_questions, n_seeds, invalid, duplicates;
    double acc, acc_std, acc_lo, acc_hi, tokens, seconds;
    int seeds[RUN_MAX_SEEDS];       /* sampling: the seeds, ascending */
    double acc_seed[RUN_MAX_SEEDS]; /* and each one's accuracy (primary extractor) */
    int answered, answered_correct;
    int n_wall; /* samples with a recorded time in the decoder */
    double wall_seconds, wall_tokens, wall_charged;
    char extractor[32];
    /* against the baseline of its task on the same questions (has_base) */
    int has_base;
    const report_run *base;
    run_paired pd;
    double p_holm;
};

/* Load the run files (merged where their configurations are equal), describe,
 * aggregate and label the runs, in a fixed order whatever the files' order.
 * rescore: score every sample again against the data file in data_dir (NULL:
 * the folder each run recorded).  shared: keep in each run only the samples
 * (question, seed) that every run of its task and decoding has.  0, or 1 after
 * printing the error; *out is set either way (free it with report_free). */
int report_load(char *const *files, int n_files, int rescore, const char *data_dir, int shared, report_run **out,
                int *n_out);
void report_free(report_run *rs, int n);
/* Each run against the baseline of its task on the questions both answered;
 * the p-values of one table (greedy, or sampling) Holm-corrected together. */
int report_pair_baselines(report_run *rs, int n);

/* A column of a table: distinct values in first-seen order, sorted by a rank. */
typedef struct report_col {
    const char *name;
    int rank;
} report_col;

/* The tasks (paper order) and the labels (method order) of the runs; labels of
 * one decoding only unless sampling is -1.  out holds n entries; the count. */
int report_tasks_of(const report_run *rs, int n, report_col *out);
int report_labels_of(const report_run *rs, int n, int sampling, report_col *out);
const report_run *report_find(const report_run *rs, int n, const char *task, const char *label, int sampling);

/* Speed by label, over every task.  Each sample is charged its share of every
 * decoding step it was in, so tokens over charged seconds is the throughput of
 * the whole batch; it rises with the number of sequences in flight, which
 * depends on how long the answers are, not only on --batch.  So the table also
 * gives the time per token as one sequence sees it (its time in the decoder
 * over its tokens) and the real occupancy (sequences in flight on average:
 * time in the decoder summed over samples, over the decoding time).  Files
 * made before samples recorded their time show "?" there. */
typedef struct report_speed {
    double tok, sec, wall, wall_tok, wall_charged;
    int runs, n_wall, n;
    char batches[128];
} report_speed;
void report_speed_of(const report_run *rs, int n, const char *label, report_speed *sp);

/* An ablation series: runs of one task, decoding and method that agree on
 * every setting except one numeric parameter, which takes 2+ values (idx:
 * the runs, by that value). */
typedef struct report_series {
    int param;
    int idx[64];
    int n;
} report_series;
int report_find_series(const report_run *rs, int n, report_series *out, int cap);
/* The method and the parameters held fixed along a series. */
void report_fixed_desc(const report_run *r, int varied, char *out, size_t cap);
/* The baseline an ablation is read against: a baseline run of the same task,
 * decoding, model, data file and questions, if one was given. */
const report_run *report_baseline_for(const report_run *rs, int n, const report_run *r0);

/* The report as Markdown (malloc'd; NULL when out of memory) or as JSON. */
char *report_markdown(const report_run *rs, int n, const report_series *ser, int n_ser);
cJSON *report_json(const report_run *rs, int n, const report_series *ser, int n_ser);
/* PNG charts (ablation curves, speed by method) with their data and gnuplot
 * scripts into dir.  0, or 1 after printing the error. */
int report_plot(const char *dir, const report_run *rs, int n, const report_series *ser, int n_ser);

#endif
