/* runfile.h - reading finished (or unfinished) evaluation run files, the
 * JSON Lines files `kvsteer eval` writes (format in eval.h), for the tools that
 * tabulate them (`kvsteer report`, `kvsteer styles`). */
#ifndef KVS_RUNFILE_H
#define KVS_RUNFILE_H
#include <cjson/cJSON.h>

#include "kvsteer.h"

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
 * line (a run killed mid-write) is ignored, as `kvsteer eval` would drop it. */
int run_file_load(const char *path, int with_samples, run_file *r, kvs_error *err);
void run_file_free(run_file *r);

/* The header config, and the summary's full config (every option, vector
 * metadata) falling back to the header config; never NULL after a load.
 * Numbers (accuracy, tokens) are best recomputed from the samples, which every
 * file has, finished or not. */
const cJSON *run_config(const run_file *r);
const cJSON *run_full_config(const run_file *r);

#endif
