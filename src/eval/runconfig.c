/* runconfig.c - the configuration a run file records (runconfig.h). */
#include "runconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "answer.h"
#include "fingerprint.h"

/* Settings are recorded at float precision, so that a value given as 0.6 reads
 * 0.6 in the file and compares equal when a run resumes. */
static double round_f(float v) {
    char b[32];
    snprintf(b, sizeof b, "%.7g", (double)v);
    return strtod(b, NULL);
}

static void add_layers(cJSON *o, const kvs_steer_params *p) {
    char b[32];
    if (p->layer_to < 0) snprintf(b, sizeof b, "%d-", p->layer_from);
    else snprintf(b, sizeof b, "%d-%d", p->layer_from, p->layer_to);
    cJSON_AddStringToObject(o, "layers", b);
}

/* How the vector was extracted (its file's metadata), so that reports can
 * plot accuracy against pairs or shots without the vector file at hand. */
static void add_extract_meta(cJSON *o, const kvs_steer *v) {
    static const char *const keys[] = {"traces", "pos", "neg", "pair_file", "render", "pairs", "shots", "select",
                                       "seed", "position", "prefix", "exclude", "keys", "task_format", "control",
                                       "random_like", "random_seed"};
    cJSON *x = cJSON_AddObjectToObject(o, "extract");
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
        char full[64];
        snprintf(full, sizeof full, "kvsteer.extract.%s", keys[i]);
        const char *val = kvs_steer_meta(v, full);
        if (!val) continue;
        char *end;
        const long n = strtol(val, &end, 10);
        if (*val && !*end && (!strcmp(keys[i], "pairs") || !strcmp(keys[i], "shots")))
            cJSON_AddNumberToObject(x, keys[i], (double)n);
        else
            cJSON_AddStringToObject(x, keys[i], val);
    }
}

/* The header config: what the results depend on (must match to resume). */
cJSON *runconfig_header(const eval_config *cfg, const char *offset, int cot, int mc, kvs_error *err) {
    char fp[17], data_fp[17], vfp[17];
    char data_path[4200];
    snprintf(data_path, sizeof data_path, "%s/eval/%s", cfg->data_dir, cfg->task->file);
    if (eval_file_fingerprint(cfg->model_path, fp, err) || eval_file_fingerprint(data_path, data_fp, err)) return NULL;
    cJSON *c = cJSON_CreateObject();
    cJSON_AddStringToObject(c, "task", cfg->task->name);
    cJSON_AddStringToObject(c, "data_file", cfg->task->file);
    cJSON_AddStringToObject(c, "data_fingerprint", data_fp);
    cJSON_AddStringToObject(c, "method", eval_method_names[cfg->method]);
    cJSON_AddStringToObject(c, "model_fingerprint", fp);
    cJSON *steer_arr = cJSON_AddArrayToObject(c, "steer");
    for (int i = 0; i < cfg->n_steer; i++) {
        if (eval_file_fingerprint(cfg->steer[i].path, vfp, err)) {
            cJSON_Delete(c);
            return NULL;
        }
        cJSON *v = cJSON_CreateObject();
        cJSON_AddStringToObject(v, "fingerprint", vfp);
        cJSON_AddNumberToObject(v, "ck", round_f(cfg->steer[i].p.ck));
        cJSON_AddNumberToObject(v, "cv", round_f(cfg->steer[i].p.cv));
        add_layers(v, &cfg->steer[i].p);
        cJSON_AddItemToArray(steer_arr, v);
    }
    if (cfg->act.vec) {
        if (eval_file_fingerprint(cfg->act.path, vfp, err)) {
            cJSON_Delete(c);
            return NULL;
        }
        cJSON *a = cJSON_AddObjectToObject(c, "act");
        cJSON_AddStringToObject(a, "fingerprint", vfp);
        cJSON_AddNumberToObject(a, "layer", cfg->act_layer);
        cJSON_AddNumberToObject(a, "scale", round_f(cfg->act_scale));
    } else {
        cJSON_AddNullToObject(c, "act");
    }
    if (offset) cJSON_AddStringToObject(c, "offset", offset);
    else cJSON_AddNullToObject(c, "offset");
    if (cot) cJSON_AddStringToObject(c, "assistant_prefix", EVAL_COT_TEXT);
    else cJSON_AddNullToObject(c, "assistant_prefix");
    cJSON_AddNumberToObject(c, "max_new", cfg->max_new);
    /* greedy tokens can differ between kernel sets at near-ties: one set per file */
    cJSON_AddStringToObject(c, "kernels", kvs_kernels_name());
    /* only when not the default, so that float-cache files made before the
     * option existed still resume */
    if (cfg->kv_f16) cJSON_AddStringToObject(c, "kv_cache", "f16");
    if (cfg->sampling) {
        cJSON *d = cJSON_AddObjectToObject(c, "sampling");
        cJSON_AddNumberToObject(d, "temperature", round_f(cfg->sp.temperature));
        cJSON_AddNumberToObject(d, "top_p", round_f(cfg->sp.top_p));
        cJSON_AddNumberToObject(d, "top_k", cfg->sp.top_k);
        /* like kv_cache: only when on, so that files made before it resume */
        if (cfg->sp.min_p > 0.0f) cJSON_AddNumberToObject(d, "min_p", round_f(cfg->sp.min_p));
    } else {
        cJSON_AddStringToObject(c, "sampling", "greedy");
    }
    if (kvs_sampler_penalty_on(&cfg->sp)) {
        cJSON_AddNumberToObject(c, "repeat_penalty", round_f(cfg->sp.repeat_penalty));
        cJSON_AddNumberToObject(c, "repeat_last_n", cfg->sp.repeat_last_n);
    }
    if (mc) {
        cJSON_AddStringToObject(c, "answer_suffix", ANS_SUFFIX);
        cJSON_AddNumberToObject(c, "span_tokens", EVAL_SPAN_TOKENS);
    }
    return c;
}

/* Every option, for the record: the header config and the rest. */
cJSON *runconfig_full(const eval_config *cfg, const cJSON *config, int n_q, int n_ctx) {
    cJSON *full = cJSON_Duplicate(config, 1);
    cJSON_AddStringToObject(full, "model", cfg->model_path);
    cJSON_AddStringToObject(full, "data", cfg->data_dir);
    cJSON *sp_arr = cJSON_GetObjectItemCaseSensitive(full, "steer");
    for (int i = 0; i < cfg->n_steer; i++) {
        cJSON_AddStringToObject(cJSON_GetArrayItem(sp_arr, i), "path", cfg->steer[i].path);
        add_extract_meta(cJSON_GetArrayItem(sp_arr, i), cfg->steer[i].vec);
    }
    if (cfg->act.vec) {
        cJSON_AddStringToObject(cJSON_GetObjectItemCaseSensitive(full, "act"), "path", cfg->act.path);
        add_extract_meta(cJSON_GetObjectItemCaseSensitive(full, "act"), cfg->act.vec);
    }
    if (cfg->limit > 0) cJSON_AddNumberToObject(full, "limit", cfg->limit);
    else cJSON_AddNullToObject(full, "limit");
    cJSON_AddNumberToObject(full, "offset_start", cfg->offset_start);
    cJSON_AddNumberToObject(full, "every", runconfig_every(cfg));
    cJSON_AddNumberToObject(full, "questions", n_q);
    cJSON_AddNumberToObject(full, "batch", cfg->batch);
    if (cfg->sampling) cJSON_AddNumberToObject(full, "seeds", cfg->n_seeds);
    else cJSON_AddNullToObject(full, "seeds");
    cJSON_AddNumberToObject(full, "threads", cfg->n_threads);
    cJSON_AddNumberToObject(full, "ctx", n_ctx);
    return full;
}
