/* runfile.h - evaluation run files, the one module that writes, resumes and
 * reads them and computes the statistics of their samples (the summary line
 * of `kvsteer eval`, the tables of `kvsteer report`, `kvsteer styles`).
 *
 * The run file is JSON Lines:
 *   line 1   {"header": true, "config": {...}, ...}   what the results depend on
 *   then     one line per sample (seed, id), in the order they completed
 *   last     {"summary": true, ...} once every requested sample is present
 * Resuming: a file whose header config equals the current one is continued;
 * (seed, id) pairs already present are skipped.  A truncated last line (a run
 * killed mid-write), duplicate samples and old summary lines are dropped by
 * rewriting the file (temp file + rename: never a half-written file).
 * A sample line: {"id", "index", "task", "method", "seed" (null: greedy),
 * "prompt", "response", ["span"], "extracted", "target", "correct" (a bool, or
 * an object of bools by extractor, primary first), "generated_tokens", "stop",
 * "seconds", ["span_seconds"]} (docs/EVALUATION.md). */
#ifndef KVS_RUNFILE_H
#define KVS_RUNFILE_H
#include <cjson/cJSON.h>
#include <stdio.h>

#include "kvsteer.h"

/* ------------------------------------------------------------------ writing and resuming */

typedef struct run_writer {
    char *path;
    FILE *f;          /* open for appending after run_writer_open */
    int n_samples;    /* sample lines present when opened */
    int n_correct;    /* of them, correct by the primary extractor */
    char **keys;      /* sorted sample keys (run_sample_key) */
    int n_keys;
    int repaired;     /* lines were dropped and the file rewritten */
    int truncated;    /* one of them was a truncated last line */
} run_writer;

/* Key of a sample: seed < 0 is greedy.  malloc'd. */
char *run_sample_key(int seed, const char *id);

/* Open `path` for a run with this config.  A missing or empty file, or
 * `overwrite`, starts a new file holding the header line ({"header": true,
 * "config": config} plus the members of `header_extra`, which may be NULL).
 * Otherwise the header config must equal `config` (else KVS_E_MISMATCH, one
 * line naming the file and the first differing setting), and so must the
 * header's "numerics" where both it and `header_extra` have one; a file that is
 * not a run file is KVS_E_FORMAT. */
int run_writer_open(run_writer *r, const char *path, const cJSON *config, const cJSON *header_extra, int overwrite,
                    kvs_error *err);
/* 1 if the sample was present when the file was opened. */
int run_writer_has(const run_writer *r, int seed, const char *id);
/* Append one object as one line (buffered; run_writer_flush makes it durable). */
int run_writer_write(run_writer *r, const cJSON *obj, kvs_error *err);
int run_writer_flush(run_writer *r, kvs_error *err);
void run_writer_close(run_writer *r);

/* ------------------------------------------------------------------ reading */

typedef struct run_file {
    char *path;
    cJSON *header;   /* the header line: {"header": true, "config": {...}, ...} */
    cJSON *summary;  /* the summary line; NULL for an unfinished run */
    cJSON *samples;  /* array of the sample lines (only when asked for), else NULL */
    int partial;     /* no summary line: the run has not finished */
    int n_samples;
} run_file;

/* Errors are one line naming the file (and line): not a run file, invalid JSON,
 * a line that is neither sample nor summary, no samples.  A truncated last
 * line (a run killed mid-write) is ignored, as run_writer_open would drop it. */
int run_file_load(const char *path, int with_samples, run_file *r, kvs_error *err);
void run_file_free(run_file *r);

/* The header config, and the summary's full config (every option, vector
 * metadata) falling back to the header config; never NULL after a load.
 * Numbers (accuracy, tokens) are best recomputed from the samples
 * (run_stats_compute), which every file has, finished or not. */
const cJSON *run_config(const run_file *r);
const cJSON *run_full_config(const run_file *r);

/* ------------------------------------------------------------------ statistics */

#define RUN_MAX_EXTRACTORS 4
#define RUN_MAX_SEEDS 64

typedef struct run_stats {
    int n;            /* samples, a repeated (seed, id) counted once */
    int n_questions;  /* distinct ids */
    int duplicates;   /* repeated samples left out */
    int n_seeds;
    int seeds[RUN_MAX_SEEDS];   /* ascending; -1 is greedy */
    int n_ext;
    char ext[RUN_MAX_EXTRACTORS][32];  /* extractor names, primary first ("choice" for multiple choice) */
    double acc[RUN_MAX_EXTRACTORS];     /* mean over seeds of each seed's accuracy */
    double acc_std[RUN_MAX_EXTRACTORS]; /* population std over seeds */
    double acc_seed[RUN_MAX_EXTRACTORS][RUN_MAX_SEEDS];
    int invalid;      /* samples with no answer (invalid choice, no number) */
    int answered;     /* n - invalid */
    int n_correct, answered_correct; /* primary extractor, over every sample */
    double acc_lo, acc_hi; /* 95% interval of acc[0] (stats.h: Wilson for greedy;
                            * sampling: normal over questions of each one's share of seeds right) */
    double tokens, seconds;  /* generated tokens and decoding seconds charged, summed */
    /* samples that record "wall_seconds" (the time from their first prompt token
     * in to their last token out): its sum, their tokens and charged seconds */
    int n_wall;
    double wall_seconds, wall_tokens, wall_charged;
} run_stats;

/* Per question (sorted by id): the share of its samples (seeds) that are
 * correct by the primary extractor; ids point into the samples.  malloc'd. */
typedef struct run_qscore {
    const char *id;
    double score;
} run_qscore;
int run_question_scores(const cJSON *samples, run_qscore **out, int *n_out);

/* Run a against run b on the questions both hold (stats.h). */
typedef struct run_paired {
    int n;          /* shared questions */
    int binary;     /* one sample per question on both sides (greedy): a 2x2 table */
    int both, only_a, only_b, neither; /* the table (binary) */
    int better, worse; /* questions where a scores above / below b */
    double diff, lo, hi; /* mean of a - b over the shared questions, 95% interval
                          * (binary: Newcombe's paired interval; else normal) */
    double p;       /* two-sided exact sign test over questions (binary: exact McNemar) */
} run_paired;
int run_paired_compute(const cJSON *a, const cJSON *b, run_paired *out, kvs_error *err);

/* Statistics of an array of sample lines; `label` names them in errors. */
int run_stats_compute(const cJSON *samples, const char *label, run_stats *st, kvs_error *err);
/* The summary line: {"summary": true, "n", "n_questions", "seeds" ("greedy"
 * or the list), "accuracy": {extractor: mean over seeds}, with more than one
 * seed "accuracy_std" and "accuracy_per_seed", "invalid" (share with no
 * answer), "mean_generated_tokens", "seconds", "ms_per_token"}. */
cJSON *run_summary_json(const run_stats *st);
/* The summary of every sample line of a run file; NULL on error. */
cJSON *run_summarize(const char *path, kvs_error *err);
/* The summary of only the samples whose run_sample_key is among `keys`
 * (sorted with strcmp), so that it describes exactly the requested ones when
 * the file holds more (an earlier, longer run); it then also records
 * "samples_in_file".  A requested sample missing from the file is an error. */
cJSON *run_summarize_keys(const char *path, char *const *keys, int n_keys, kvs_error *err);

#endif
