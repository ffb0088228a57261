/* eval.h - bookkeeping of an evaluation run (METHOD.md section 5): the tasks,
 * the run file, file fingerprints and the summary.
 *
 * The run file is JSON Lines:
 *   line 1   {"header": true, "config": {...}, ...}   what the results depend on
 *   then     one line per sample (seed, id), in the order they completed
 *   last     {"summary": true, ...} once every requested sample is present
 * Resuming: a file whose header config equals the current one is continued;
 * (seed, id) pairs already present are skipped.  A truncated last line (a run
 * killed mid-write), duplicate samples and old summary lines are dropped by
 * rewriting the file (temp file + rename: never a half-written file). */
#ifndef KVS_EVAL_H
#define KVS_EVAL_H
#include <cjson/cJSON.h>
#include <stdio.h>

#include "kvsteer.h"

typedef struct eval_task {
    const char *name;           /* --task value */
    const char *file;           /* under DATA/eval/ */
    const char *choices_header; /* between question and choices; NULL: not multiple choice */
    const char *steer_offset;   /* offset token text for cache steering */
} eval_task;

#define EVAL_TASK_NAMES "gsm8k, arc, csqa, piqa"
const eval_task *eval_task_find(const char *name);

typedef struct eval_run {
    char *path;
    FILE *f;          /* open for appending after eval_run_open */
    int n_samples;    /* sample lines present when opened */
    int n_correct;    /* of them, correct by the primary extractor */
    char **keys;      /* sorted sample keys (eval_sample_key) */
    int n_keys;
    int repaired;     /* lines were dropped and the file rewritten */
    int truncated;    /* one of them was a truncated last line */
} eval_run;

/* Key of a sample: seed < 0 is greedy.  malloc'd. */
char *eval_sample_key(int seed, const char *id);

/* Open `path` for a run with this config.  A missing or empty file, or
 * `overwrite`, starts a new file holding the header line ({"header": true,
 * "config": config} plus the members of `header_extra`, which may be NULL).
 * Otherwise the header config must equal `config` (else KVS_E_MISMATCH, one
 * line naming the file and the first differing setting). */
int eval_run_open(eval_run *r, const char *path, const cJSON *config, const cJSON *header_extra, int overwrite,
                  kvs_error *err);
/* 1 if the sample was present when the file was opened. */
int eval_run_has(const eval_run *r, int seed, const char *id);
/* Append one object as one line (buffered; eval_run_flush makes it durable). */
int eval_run_write(eval_run *r, const cJSON *obj, kvs_error *err);
int eval_run_flush(eval_run *r, kvs_error *err);
void eval_run_close(eval_run *r);

/* The summary of every sample line of a run file: {"summary": true, "n",
 * "n_questions", "seeds", "accuracy": {extractor: mean over seeds}, with more
 * than one seed "accuracy_std" (population, over seeds) and
 * "accuracy_per_seed", "invalid" (share with no answer), "mean_generated_tokens",
 * "seconds", "ms_per_token"}.  NULL on error. */
cJSON *eval_summarize(const char *path, kvs_error *err);

/* FNV-1a 64 over the file size and its first and last 16 MiB (the whole file
 * when smaller than 32 MiB), as 16 hex digits.  A cheap fingerprint, not a
 * cryptographic hash. */
#define EVAL_FINGERPRINT_METHOD "fnv1a64(size, first 16 MiB, last 16 MiB)"
int eval_file_fingerprint(const char *path, char out[17], kvs_error *err);

/* Copy of n bytes with every invalid UTF-8 sequence (and NUL) replaced by
 * U+FFFD, so JSON readers accept it.  malloc'd. */
char *eval_utf8_clean(const char *s, size_t n);

#endif
