/* response.h - the JSON bodies the HTTP API answers with, in OpenAI's shapes
 * (completions and chat completions, whole or as stream chunks; model lists;
 * errors) with kvsteer's own fields beside them.  Builders only: they read a
 * job, a request's error or the served model, and know nothing of HTTP or of
 * the connection, so server.c decides when and how a body is sent. */
#ifndef KVS_SERVER_RESPONSE_H
#define KVS_SERVER_RESPONSE_H
#include <cjson/cJSON.h>
#include <stddef.h>
#include <time.h>

#include "kvsteer.h"
#include "request.h"
#include "sched.h"
#include "vectors.h"

/* What every completion body and chunk names: its id and the served model. */
typedef struct response_ids {
    const char *id;    /* "chatcmpl-..." or "cmpl-..." */
    const char *model; /* the model's id in /v1/models */
    int chat;          /* chat completion (messages) or text completion */
} response_ids;

/* {"error": {...}} for e. */
cJSON *response_error(const api_error *e);
/* /v1/models: the one served model, its shapes and the server's slots. */
cJSON *response_models(const kvs_model *m, const char *model_id, time_t created, int n_ctx_slot, int slots);
/* /v1/steering/vectors: every named vector, usable or with its problem. */
cJSON *response_vectors(const vec_registry *vr);
/* A finished job's whole answer (not streamed). */
cJSON *response_completion(const response_ids *ids, const job *j);
/* A stream chunk carrying text[0..n) (n may be 0), and the assistant role
 * when `role` (the first chunk of a chat). */
cJSON *response_chunk(const response_ids *ids, const char *text, size_t n, int role);
/* The last chunk of a finished job: its finish reason and kvsteer's fields. */
cJSON *response_chunk_end(const response_ids *ids, const job *j);
/* The usage chunk a client asks for with stream_options.include_usage. */
cJSON *response_chunk_usage(const response_ids *ids, const job *j);

#endif
