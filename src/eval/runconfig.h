/* runconfig.h - what a run file records of an evaluation's configuration: the
 * header's config, which must match for a run to resume (and by which reports
 * tell runs apart), and every option, for the record. */
#ifndef KVS_RUNCONFIG_H
#define KVS_RUNCONFIG_H
#include <cjson/cJSON.h>

#include "eval.h"

/* Every how many questions the run takes: 0 (unset) and 1 mean each one. */
static inline int runconfig_every(const eval_config *cfg) { return cfg->every > 1 ? cfg->every : 1; }

/* The header config: what the results depend on (must match to resume).
 * offset: the offset token's text, or NULL; cot: the assistant starts with the
 * CoT prefix; mc: a multiple-choice task.  NULL when a file named in cfg
 * cannot be fingerprinted (err says which). */
cJSON *runconfig_header(const eval_config *cfg, const char *offset, int cot, int mc, kvs_error *err);

/* Every option, for the record: the header config and the rest (paths, the
 * vectors' extraction metadata, limits, batch, threads, context). */
cJSON *runconfig_full(const eval_config *cfg, const cJSON *header, int n_q, int n_ctx);

#endif
