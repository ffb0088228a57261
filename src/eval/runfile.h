/* runfile.h - evaluation run files, the one module that writes, resumes and
 * reads them (the statistics of their samples are in runstats.h).
 *
 * The run file is JSON Lines:
 *   line 1   {"header": true, "config": {...}, ...}   what the results depend on
 *   then     one line per sample (seed, id), in the order they completed
 *   last     {"summary": true, ...} once every requested sample is present
 * Resuming: a file whose header config equals the current one is continued;
 * (seed, id) pairs already present are skipped.  A truncated last line (a run
 * killed mid-write), duplicate samples and old summary lines are dropped by
 * rewriting the file (temp file + rename: never a half-written file).
 * One writer at a time: run_writer_open holds an exclusive lock on PATH.lock
 * (removed at close), so a second process given the same file (two shards
 * with one -o) is refused instead of appending the same samples and
 * rewriting the file under the first.
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
    char *lock_path;  /* PATH.lock, held (flock) while the writer is open; NULL: none */
    int lock_fd;
} run_writer;

/* Key of a sample: seed < 0 is greedy.  malloc'd. */
char *run_sample_key(int seed, const char *id);
/* The order of sample keys (strcmp on char * elements), for qsort and bsearch:
 * run_writer's keys and run_summarize_keys' are sorted by it. */
int run_key_cmp(const void *a, const void *b);

/* Whether two run configs, each with its numerics fingerprint (NULL when the
 * file has none), describe one run: equal, or differing only in "kernels"
 * where both fingerprints are given and equal (the same bits). */
int run_configs_agree(const cJSON *a, const char *numerics_a, const cJSON *b, const char *numerics_b);

/* Open `path` for a run with this config.  A missing or empty file, or
 * `overwrite`, starts a new file holding the header line ({"header": true,
 * "config": config} plus the members of `header_extra`, which may be NULL).
 * Otherwise the header config must equal `config` (else KVS_E_MISMATCH, one
 * line naming the file and the first differing setting), and so must the
 * header's "numerics" where both it and `header_extra` have one; the config's
 * "kernels" may differ as run_configs_agree allows.  A file that is not a run
 * file is KVS_E_FORMAT. */
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

/* run_file_load's flags */
enum {
    RUN_LOAD_SAMPLES = 1, /* keep the sample lines in r->samples */
    /* a header alone is a run that has begun and written nothing yet: loaded,
     * not refused (a shard just started still belongs with its run's others) */
    RUN_LOAD_EMPTY = 2
};

/* Errors are one line naming the file (and line): not a run file, invalid JSON,
 * a line that is neither sample nor summary, no samples (unless RUN_LOAD_EMPTY).
 * A truncated last line (a run killed mid-write) is ignored, as run_writer_open
 * would drop it. */
int run_file_load(const char *path, int flags, run_file *r, kvs_error *err);
void run_file_free(run_file *r);

/* The header config, and the summary's full config (every option, vector
 * metadata) falling back to the header config; never NULL after a load.
 * Numbers (accuracy, tokens) are best recomputed from the samples
 * (run_stats_compute), which every file has, finished or not. */
const cJSON *run_config(const run_file *r);
const cJSON *run_full_config(const run_file *r);

/* A sample line's seed: -1 greedy (null), -2 not a sample line. */
int run_sample_seed(const cJSON *o);
/* Whether a sample line is correct by the primary extractor (the last number
 * for GSM8K). */
int run_sample_correct(const cJSON *o);

#endif
