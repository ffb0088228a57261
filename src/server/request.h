/* request.h - one generation request of the HTTP API, parsed and checked.
 * The parser knows JSON, the OpenAI request shapes and kvsteer's steering
 * fields; it does not know HTTP, the model's weights or the scheduler, so it
 * can be fuzzed on its own (fuzz/fuzz_request.c). */
#ifndef KVS_SERVER_REQUEST_H
#define KVS_SERVER_REQUEST_H
#include <stddef.h>
#include <stdint.h>

#include "kvsteer.h"
#include "vectors.h"

#define REQ_MAX_STEER 8
#define REQ_MAX_STOP 4

/* An error answered to the client: HTTP status and OpenAI's error object. */
typedef struct api_error {
    int status;      /* 400, 401, 404, 413, 503, ... */
    const char *type; /* "invalid_request_error", ... */
    char param[64];  /* the offending field, "" when none */
    char msg[700];
} api_error;

/* Limits the server applies to every request. */
typedef struct request_limits {
    int n_layer;        /* of the served model: layer fields are checked against it */
    int max_tokens;     /* most tokens a request may ask for */
    int max_messages;   /* most chat messages */
    size_t max_text;    /* most bytes of prompt text (all messages together) */
} request_limits;

typedef struct request_msg {
    char *role, *content;
} request_msg;

typedef struct request {
    int chat;                    /* /v1/chat/completions (messages) or /v1/completions (prompt) */
    request_msg *msgs;
    int n_msgs;
    char *prompt;                /* completions only */
    int max_tokens;              /* -1: until the context is full */
    kvs_sampler_params sampling; /* temperature 1, top-p 1, top-k off unless given */
    int seed_given;
    char *stop[REQ_MAX_STOP];
    int n_stop;
    int stream, include_usage;
    int n_kv;                    /* cache steering: the vectors add up */
    const vec_entry *kv[REQ_MAX_STEER];
    kvs_steer_params kv_p[REQ_MAX_STEER];
    char *offset;                /* the offset text; NULL = none */
    const vec_entry *act;        /* activation steering, or NULL */
    int act_layer;
    float act_scale;
} request;

/* Parse a request body.  0 on success (free with request_free), else non-zero
 * with e filled (the request is left empty). */
int request_parse(const char *body, size_t len, int chat, const vec_registry *vr, const request_limits *lim,
                  request *out, api_error *e);
void request_free(request *r);

/* Fill e (printf-style message); returns e->status. */
int api_fail(api_error *e, int status, const char *param, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

#endif
