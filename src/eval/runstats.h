/* runstats.h - the statistics of a run's samples: the summary line of
 * `kvsteer eval`, the tables of `kvsteer report`, `kvsteer styles`.  Every
 * number is computed from the sample lines (runfile.h), so shards of one run
 * merged give the numbers of the whole run. */
#ifndef KVS_RUNSTATS_H
#define KVS_RUNSTATS_H
#include <cjson/cJSON.h>

#include "kvsteer.h"

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
 * (sorted by run_key_cmp), so that it describes exactly the requested ones when
 * the file holds more (an earlier, longer run); it then also records
 * "samples_in_file".  A requested sample missing from the file is an error. */
cJSON *run_summarize_keys(const char *path, char *const *keys, int n_keys, kvs_error *err);

#endif
