/* response.c - the API's JSON bodies (response.h). */
#include "response.h"

#include <stdio.h>
#include <stdlib.h>

#include "engine/utf8.h"

cJSON *response_error(const api_error *e) {
    cJSON *o = cJSON_CreateObject(), *er = cJSON_AddObjectToObject(o, "error");
    cJSON_AddStringToObject(er, "message", e->msg);
    cJSON_AddStringToObject(er, "type", e->type ? e->type : "invalid_request_error");
    if (e->param[0]) cJSON_AddStringToObject(er, "param", e->param);
    else cJSON_AddNullToObject(er, "param");
    char code[16];
    snprintf(code, sizeof code, "%d", e->status);
    cJSON_AddStringToObject(er, "code", e->status == 400 ? "invalid_value" : code);
    return o;
}

cJSON *response_models(const kvs_model *model, const char *model_id, time_t created, int n_ctx_slot, int slots) {
    kvs_model_info mi;
    kvs_model_get_info(model, &mi);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "object", "list");
    cJSON *arr = cJSON_AddArrayToObject(o, "data"), *m = cJSON_CreateObject();
    cJSON_AddItemToArray(arr, m);
    cJSON_AddStringToObject(m, "id", model_id);
    cJSON_AddStringToObject(m, "object", "model");
    cJSON_AddNumberToObject(m, "created", (double)created);
    cJSON_AddStringToObject(m, "owned_by", "kvsteer");
    cJSON *meta = cJSON_AddObjectToObject(m, "meta");
    cJSON_AddStringToObject(meta, "architecture", mi.arch);
    cJSON_AddStringToObject(meta, "name", mi.name);
    cJSON_AddNumberToObject(meta, "n_layer", mi.n_layer);
    cJSON_AddNumberToObject(meta, "n_embd", mi.n_embd);
    cJSON_AddNumberToObject(meta, "n_vocab", mi.n_vocab);
    cJSON_AddNumberToObject(meta, "n_ctx_slot", n_ctx_slot);
    cJSON_AddNumberToObject(meta, "slots", slots);
    cJSON_AddStringToObject(meta, "kernels", kvs_kernels_name());
    cJSON_AddStringToObject(meta, "version", kvs_version());
    return o;
}

cJSON *response_vectors(const vec_registry *vr) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "object", "list");
    cJSON *arr = cJSON_AddArrayToObject(o, "data");
    for (int i = 0; i < vr->n; i++) {
        const vec_entry *v = &vr->v[i];
        cJSON *e = cJSON_CreateObject();
        cJSON_AddItemToArray(arr, e);
        cJSON_AddStringToObject(e, "name", v->name);
        cJSON_AddStringToObject(e, "file", v->path);
        cJSON_AddBoolToObject(e, "usable", v->vec != NULL);
        /* the model check: the file was made for this model's shapes and tokenizer */
        cJSON_AddStringToObject(e, "model_check", v->vec ? "ok" : v->problem);
        if (!v->vec) continue;
        const int cache = kvs_steer_get_kind(v->vec) == KVS_STEER_CACHE;
        cJSON_AddStringToObject(e, "kind", cache ? "cache" : "act");
        cJSON_AddStringToObject(e, "use_in", cache ? "kv_steering" : "act_steering");
        cJSON *meta = cJSON_AddObjectToObject(e, "metadata");
        for (int k = 0; k < kvs_steer_meta_count(v->vec); k++)
            cJSON_AddStringToObject(meta, kvs_steer_meta_key(v->vec, k), kvs_steer_meta_value(v->vec, k));
    }
    return o;
}

static cJSON *usage(const job *j) {
    cJSON *u = cJSON_CreateObject();
    cJSON_AddNumberToObject(u, "prompt_tokens", j->n_prompt);
    cJSON_AddNumberToObject(u, "completion_tokens", j->n_gen);
    cJSON_AddNumberToObject(u, "total_tokens", j->n_prompt + j->n_gen);
    return u;
}

/* kvsteer's own fields of a response: what was applied and how long it took. */
static cJSON *kvsteer_fields(const job *j) {
    cJSON *k = cJSON_CreateObject();
    cJSON_AddNumberToObject(k, "seed", (double)j->seed);
    cJSON_AddBoolToObject(k, "kv_steered", j->req.n_kv > 0);
    cJSON_AddBoolToObject(k, "act_steered", j->req.act != NULL);
    cJSON *t = cJSON_AddObjectToObject(k, "timings");
    const double queued = j->t_start > 0 ? j->t_start - j->t_queued : 0;
    const double ttft = j->t_first > 0 ? j->t_first - j->t_queued : 0;
    const double gen = j->t_first > 0 && j->t_done > j->t_first ? j->t_done - j->t_first : 0;
    cJSON_AddNumberToObject(t, "queued_s", queued);
    cJSON_AddNumberToObject(t, "first_token_s", ttft);
    cJSON_AddNumberToObject(t, "generation_s", gen);
    cJSON_AddNumberToObject(t, "tokens_per_s", gen > 0 && j->n_gen > 1 ? (j->n_gen - 1) / gen : 0);
    return k;
}

static cJSON *head(const response_ids *ids, int stream) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", ids->id);
    cJSON_AddStringToObject(o, "object",
                            !ids->chat ? "text_completion" : stream ? "chat.completion.chunk" : "chat.completion");
    cJSON_AddNumberToObject(o, "created", (double)time(NULL));
    cJSON_AddStringToObject(o, "model", ids->model);
    return o;
}

/* One choice carrying text[0..n) (the model's bytes: any broken UTF-8 is
 * replaced, as JSON must be valid UTF-8). */
static cJSON *choice(int chat, int stream, const char *text, size_t n, const char *finish, int role) {
    cJSON *c = cJSON_CreateObject();
    cJSON_AddNumberToObject(c, "index", 0);
    char *clean = utf8_clean(text ? text : "", text ? n : 0);
    if (chat) {
        cJSON *m = cJSON_AddObjectToObject(c, stream ? "delta" : "message");
        if (role || !stream) cJSON_AddStringToObject(m, "role", "assistant");
        if (clean && (n || role || !stream)) cJSON_AddStringToObject(m, "content", clean);
    } else {
        cJSON_AddStringToObject(c, "text", clean ? clean : "");
    }
    free(clean);
    cJSON_AddNullToObject(c, "logprobs");
    if (finish) cJSON_AddStringToObject(c, "finish_reason", finish);
    else cJSON_AddNullToObject(c, "finish_reason");
    return c;
}

cJSON *response_completion(const response_ids *ids, const job *j) {
    cJSON *o = head(ids, 0);
    cJSON_AddItemToArray(cJSON_AddArrayToObject(o, "choices"), choice(ids->chat, 0, j->text.s.p, j->text.s.n, j->finish, 0));
    cJSON_AddItemToObject(o, "usage", usage(j));
    cJSON_AddItemToObject(o, "kvsteer", kvsteer_fields(j));
    return o;
}

cJSON *response_chunk(const response_ids *ids, const char *text, size_t n, int role) {
    cJSON *o = head(ids, 1);
    cJSON_AddItemToArray(cJSON_AddArrayToObject(o, "choices"), choice(ids->chat, 1, text, n, NULL, role));
    return o;
}

cJSON *response_chunk_end(const response_ids *ids, const job *j) {
    cJSON *o = head(ids, 1);
    cJSON_AddItemToArray(cJSON_AddArrayToObject(o, "choices"), choice(ids->chat, 1, NULL, 0, j->finish, 0));
    cJSON_AddItemToObject(o, "kvsteer", kvsteer_fields(j));
    return o;
}

cJSON *response_chunk_usage(const response_ids *ids, const job *j) {
    cJSON *o = head(ids, 1);
    cJSON_AddArrayToObject(o, "choices");
    cJSON_AddItemToObject(o, "usage", usage(j));
    return o;
}
