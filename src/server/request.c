/* request.c - parsing and checking the body of a generation request
 * (request.h).  Every field is type- and range-checked here so that nothing
 * a client sends reaches the engine unchecked; unknown fields are ignored, as
 * OpenAI clients send many that do not apply. */
#include "request.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int api_fail(api_error *e, int status, const char *param, const char *fmt, ...) {
    e->status = status;
    e->type = status == 401 ? "authentication_error"
              : status == 503 ? "server_busy"
              : status >= 500 ? "server_error"
              : status == 404 ? "not_found_error"
                              : "invalid_request_error";
    snprintf(e->param, sizeof e->param, "%s", param ? param : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    return status;
}

static int bad(api_error *e, const char *param, const char *what) {
    return api_fail(e, 400, param, "'%s' %s", param, what);
}

/* A number field within [lo, hi]; integers must be whole.  Absent or null: 0
 * and *given = 0. */
static int get_num(const cJSON *o, const char *key, const char *param, double lo, double hi, int integer, double *out,
                   int *given, api_error *e) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    *given = 0;
    if (!v || cJSON_IsNull(v)) return 0;
    if (!cJSON_IsNumber(v)) return bad(e, param, integer ? "must be an integer" : "must be a number");
    const double x = v->valuedouble;
    if (!isfinite(x) || (integer && x != floor(x))) return bad(e, param, integer ? "must be an integer" : "must be a finite number");
    if (x < lo || x > hi) {
        char m[128];
        snprintf(m, sizeof m, "must be between %g and %g (got %g)", lo, hi, x);
        return bad(e, param, m);
    }
    *out = x;
    *given = 1;
    return 0;
}

/* A string field: absent/null gives NULL; otherwise it must be a string. */
static int get_str(const cJSON *o, const char *key, const char *param, const char **out, api_error *e) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    *out = NULL;
    if (!v || cJSON_IsNull(v)) return 0;
    if (!cJSON_IsString(v)) return bad(e, param, "must be a string");
    *out = v->valuestring;
    return 0;
}

static int get_bool(const cJSON *o, const char *key, const char *param, int *out, api_error *e) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v || cJSON_IsNull(v)) return 0;
    if (!cJSON_IsBool(v)) return bad(e, param, "must be true or false");
    *out = cJSON_IsTrue(v);
    return 0;
}

static int dup_into(char **dst, const char *s, api_error *e) {
    if (!(*dst = strdup(s))) return api_fail(e, 500, NULL, "out of memory");
    return 0;
}

/* "A-B", "A-" or "A" (0-based layer numbers), as the command line's --layers. */
static int parse_layers(const char *s, int n_layer, kvs_steer_params *p, const char *param, api_error *e) {
    char *end;
    long a = strtol(s, &end, 10), b;
    if (end == s || a < 0 || *s == '-' || *s == '+' || *s == ' ') goto bad_form;
    if (*end == '\0') b = a;
    else if (*end == '-' && end[1] == '\0') b = -1;
    else if (*end == '-' && end[1] >= '0' && end[1] <= '9') {
        char *e2;
        b = strtol(end + 1, &e2, 10);
        if (*e2 || b < a) goto bad_form;
    } else goto bad_form;
    if (a >= n_layer || b >= n_layer)
        return api_fail(e, 400, param, "'%s' is %s but the model has layers 0-%d", param, s, n_layer - 1);
    p->layer_from = (int)a;
    p->layer_to = (int)b;
    return 0;
bad_form:
    return bad(e, param, "must be \"A-B\", \"A-\" or \"A\" (layer numbers, A <= B)");
}

/* A vector named by a steering object: it must exist, fit the model and be of
 * the right kind. */
static int get_vector(const cJSON *o, const char *param, const vec_registry *vr, kvs_steer_kind kind,
                      const vec_entry **out, api_error *e) {
    const char *name;
    if (get_str(o, "vector", param, &name, e)) return e->status;
    *out = NULL;
    if (!name) return 0;
    const vec_entry *v = vec_find(vr, name);
    if (!v) return api_fail(e, 400, param, "'%s': no vector named '%s' (GET /v1/steering/vectors lists them)", param, name);
    if (!v->vec) return api_fail(e, 400, param, "'%s': vector '%s' cannot be used: %s", param, name, v->problem);
    if (kvs_steer_get_kind(v->vec) != kind)
        return api_fail(e, 400, param, "'%s': vector '%s' holds %s vectors; use it in '%s'", param, name,
                        kind == KVS_STEER_CACHE ? "activation" : "cache",
                        kind == KVS_STEER_CACHE ? "act_steering" : "kv_steering");
    *out = v;
    return 0;
}

#define COEF_MAX 100.0

static int parse_kv_one(const cJSON *o, int idx, int many, const vec_registry *vr, const request_limits *lim,
                        request *r, api_error *e) {
    char pv[64], pk[64], pc[64], pl[64], po[64], base[32];
    if (many) snprintf(base, sizeof base, "kv_steering[%d]", idx);
    else snprintf(base, sizeof base, "kv_steering");
    if (!cJSON_IsObject(o)) return bad(e, base, "must be an object (or a list of objects)");
    snprintf(pv, sizeof pv, "%s.vector", base);
    snprintf(pk, sizeof pk, "%s.c_k", base);
    snprintf(pc, sizeof pc, "%s.c_v", base);
    snprintf(pl, sizeof pl, "%s.layers", base);
    snprintf(po, sizeof po, "%s.offset", base);
    const vec_entry *v;
    if (get_vector(o, pv, vr, KVS_STEER_CACHE, &v, e)) return e->status;
    kvs_steer_params p = {0.0f, 1.0f, 1, -1};
    double x;
    int given;
    if (get_num(o, "c_k", pk, -COEF_MAX, COEF_MAX, 0, &x, &given, e)) return e->status;
    if (given) p.ck = (float)x;
    if (get_num(o, "c_v", pc, -COEF_MAX, COEF_MAX, 0, &x, &given, e)) return e->status;
    if (given) p.cv = (float)x;
    const char *layers, *offset;
    if (get_str(o, "layers", pl, &layers, e) || get_str(o, "offset", po, &offset, e)) return e->status;
    if (layers && parse_layers(layers, lim->n_layer, &p, pl, e)) return e->status;
    if (offset) {
        if (r->offset && strcmp(r->offset, offset))
            return api_fail(e, 400, po, "'%s' differs from an earlier offset: one request has one offset", po);
        if (!r->offset && dup_into(&r->offset, offset, e)) return e->status;
    }
    if (!v) {
        /* an object without a vector only sets the offset (to compare with a
         * steered request of the same offset) */
        if (!offset) return bad(e, pv, "is required (or give only an 'offset')");
        if (cJSON_GetObjectItemCaseSensitive(o, "c_k") || cJSON_GetObjectItemCaseSensitive(o, "c_v") || layers)
            return bad(e, pv, "is required with c_k, c_v or layers");
        return 0;
    }
    r->kv[r->n_kv] = v;
    r->kv_p[r->n_kv] = p;
    r->n_kv++;
    return 0;
}

static int parse_kv(const cJSON *v, const vec_registry *vr, const request_limits *lim, request *r, api_error *e) {
    if (!v || cJSON_IsNull(v)) return 0;
    if (cJSON_IsArray(v)) {
        int n = cJSON_GetArraySize(v);
        if (n > REQ_MAX_STEER) return api_fail(e, 400, "kv_steering", "'kv_steering' lists %d vectors; at most %d", n, REQ_MAX_STEER);
        int i = 0;
        for (const cJSON *o = v->child; o; o = o->next, i++)
            if (parse_kv_one(o, i, 1, vr, lim, r, e)) return e->status;
    } else if (parse_kv_one(v, 0, 0, vr, lim, r, e)) {
        return e->status;
    }
    /* the paper's offset: the edit lands on the prompt's last token and a
     * newline is fed after it, unless the request says otherwise */
    if (r->n_kv && !r->offset && dup_into(&r->offset, "\n", e)) return e->status;
    if (r->offset && !r->offset[0]) {
        free(r->offset);
        r->offset = NULL;
    }
    return 0;
}

static int parse_act(const cJSON *o, const vec_registry *vr, const request_limits *lim, request *r, api_error *e) {
    if (!o || cJSON_IsNull(o)) return 0;
    if (!cJSON_IsObject(o)) return bad(e, "act_steering", "must be an object");
    if (get_vector(o, "act_steering.vector", vr, KVS_STEER_ACT, &r->act, e)) return e->status;
    if (!r->act) return bad(e, "act_steering.vector", "is required");
    double x;
    int given;
    if (get_num(o, "layer", "act_steering.layer", 0, lim->n_layer - 1, 1, &x, &given, e)) return e->status;
    /* a llama.cpp control vector applies all its layers unless one is chosen */
    const int all = r->act->vec && kvs_steer_get_format(r->act->vec) == KVS_FORMAT_CONTROLVECTOR;
    if (!given && !all) return bad(e, "act_steering.layer", "is required (for a kvsteer act file)");
    r->act_layer = given ? (int)x : -1;
    r->act_scale = 1.0f;
    if (get_num(o, "scale", "act_steering.scale", -COEF_MAX, COEF_MAX, 0, &x, &given, e)) return e->status;
    if (given) r->act_scale = (float)x;
    return 0;
}

/* Message content: a string, or OpenAI's list of parts of which only text parts are accepted. */
static int content_text(const cJSON *c, const char *param, char **out, api_error *e) {
    if (cJSON_IsString(c)) return dup_into(out, c->valuestring, e);
    if (!cJSON_IsArray(c)) return bad(e, param, "must be a string or a list of text parts");
    size_t len = 0;
    for (const cJSON *p = c->child; p; p = p->next) {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(p, "type");
        const cJSON *x = cJSON_GetObjectItemCaseSensitive(p, "text");
        if (!cJSON_IsObject(p) || !cJSON_IsString(t) || strcmp(t->valuestring, "text") || !cJSON_IsString(x))
            return bad(e, param, "parts must be {\"type\": \"text\", \"text\": ...} (only text is supported)");
        len += strlen(x->valuestring);
    }
    if (!(*out = malloc(len + 1))) return api_fail(e, 500, NULL, "out of memory");
    size_t at = 0;
    for (const cJSON *p = c->child; p; p = p->next) {
        const char *s = cJSON_GetObjectItemCaseSensitive(p, "text")->valuestring;
        memcpy(*out + at, s, strlen(s));
        at += strlen(s);
    }
    (*out)[at] = 0;
    return 0;
}

static int parse_messages(const cJSON *v, const request_limits *lim, request *r, size_t *text, api_error *e) {
    if (!v) return bad(e, "messages", "is required");
    if (!cJSON_IsArray(v)) return bad(e, "messages", "must be a list of messages");
    const int n = cJSON_GetArraySize(v);
    if (n == 0) return bad(e, "messages", "must not be empty");
    if (n > lim->max_messages) return api_fail(e, 400, "messages", "'messages' has %d entries; at most %d", n, lim->max_messages);
    if (!(r->msgs = calloc((size_t)n, sizeof *r->msgs))) return api_fail(e, 500, NULL, "out of memory");
    int i = 0;
    for (const cJSON *m = v->child; m; m = m->next, i++) {
        char pr[48], pc[48];
        snprintf(pr, sizeof pr, "messages[%d].role", i);
        snprintf(pc, sizeof pc, "messages[%d].content", i);
        if (!cJSON_IsObject(m)) return bad(e, pr, "belongs to a message that is not an object");
        const char *role;
        if (get_str(m, "role", pr, &role, e)) return e->status;
        if (!role) return bad(e, pr, "is required");
        if (strcmp(role, "system") && strcmp(role, "user") && strcmp(role, "assistant") && strcmp(role, "developer"))
            return bad(e, pr, "must be system, developer, user or assistant");
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(m, "content");
        if (!c || cJSON_IsNull(c)) return bad(e, pc, "is required");
        r->n_msgs = i + 1; /* counted before filling, so a failure here frees it */
        /* OpenAI's "developer" role is its newer name for "system" */
        if (dup_into(&r->msgs[i].role, strcmp(role, "developer") ? role : "system", e) ||
            content_text(c, pc, &r->msgs[i].content, e))
            return e->status;
        *text += strlen(r->msgs[i].content);
    }
    return 0;
}

static int parse_stop(const cJSON *v, request *r, api_error *e) {
    if (!v || cJSON_IsNull(v)) return 0;
    if (cJSON_IsString(v)) {
        if (!v->valuestring[0]) return bad(e, "stop", "must not be empty");
        if (strlen(v->valuestring) > 256) return bad(e, "stop", "strings are at most 256 bytes");
        r->n_stop = 1;
        return dup_into(&r->stop[0], v->valuestring, e);
    }
    if (!cJSON_IsArray(v)) return bad(e, "stop", "must be a string or a list of strings");
    if (cJSON_GetArraySize(v) > REQ_MAX_STOP) return api_fail(e, 400, "stop", "'stop' has more than %d strings", REQ_MAX_STOP);
    for (const cJSON *s = v->child; s; s = s->next) {
        if (!cJSON_IsString(s) || !s->valuestring[0]) return bad(e, "stop", "entries must be non-empty strings");
        if (strlen(s->valuestring) > 256) return bad(e, "stop", "strings are at most 256 bytes");
        if (dup_into(&r->stop[r->n_stop], s->valuestring, e)) return e->status;
        r->n_stop++;
    }
    return 0;
}

static int parse_body(const cJSON *j, int chat, const vec_registry *vr, const request_limits *lim, request *r,
                      api_error *e) {
    if (!cJSON_IsObject(j)) return api_fail(e, 400, NULL, "the request body must be a JSON object");
    const char *model;
    if (get_str(j, "model", "model", &model, e)) return e->status;
    size_t text = 0;
    if (chat) {
        if (parse_messages(cJSON_GetObjectItemCaseSensitive(j, "messages"), lim, r, &text, e)) return e->status;
    } else {
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(j, "prompt");
        /* OpenAI allows a list of prompts; one request here is one prompt */
        if (cJSON_IsArray(p) && cJSON_GetArraySize(p) == 1) p = p->child;
        if (!p) return bad(e, "prompt", "is required");
        if (!cJSON_IsString(p)) return bad(e, "prompt", "must be a string (or a list of one string)");
        if (dup_into(&r->prompt, p->valuestring, e)) return e->status;
        text = strlen(r->prompt);
    }
    if (text > lim->max_text)
        return api_fail(e, 400, chat ? "messages" : "prompt", "the prompt text is %zu bytes; at most %zu", text, lim->max_text);
    double x;
    int given;
    if (get_num(j, "n", "n", 1, 1, 1, &x, &given, e)) return e->status;
    r->max_tokens = -1;
    if (get_num(j, "max_completion_tokens", "max_completion_tokens", 1, lim->max_tokens, 1, &x, &given, e)) return e->status;
    if (given) r->max_tokens = (int)x;
    if (get_num(j, "max_tokens", "max_tokens", 1, lim->max_tokens, 1, &x, &given, e)) return e->status;
    if (given) r->max_tokens = (int)x;
    /* OpenAI's defaults: temperature 1, top_p 1; llama.cpp's window of 64 for
     * the repeat penalty, which is off, as min-p is */
    r->sampling = kvs_sampler_default_params();
    r->sampling.temperature = 1.0f;
    if (get_num(j, "temperature", "temperature", 0, 2, 0, &x, &given, e)) return e->status;
    if (given) r->sampling.temperature = (float)x;
    if (get_num(j, "top_p", "top_p", 1e-6, 1, 0, &x, &given, e)) return e->status;
    if (given) r->sampling.top_p = (float)x;
    if (get_num(j, "top_k", "top_k", 0, 1e6, 1, &x, &given, e)) return e->status;
    if (given) r->sampling.top_k = (int)x;
    if (get_num(j, "min_p", "min_p", 0, 1, 0, &x, &given, e)) return e->status;
    if (given) r->sampling.min_p = (float)x;
    if (get_num(j, "repeat_penalty", "repeat_penalty", -1e6, 1e6, 0, &x, &given, e)) return e->status;
    if (given && x <= 0) return bad(e, "repeat_penalty", "must be greater than 0 (1 is off)");
    if (given) r->sampling.repeat_penalty = (float)x;
    if (get_num(j, "repeat_last_n", "repeat_last_n", -1, 1 << 24, 1, &x, &given, e)) return e->status;
    if (given) r->sampling.repeat_last_n = (int)x;
    /* 2^53: the largest integer a JSON number carries exactly everywhere */
    if (get_num(j, "seed", "seed", 0, 9007199254740992.0, 1, &x, &r->seed_given, e)) return e->status;
    if (r->seed_given) r->sampling.seed = (uint64_t)x;
    if (parse_stop(cJSON_GetObjectItemCaseSensitive(j, "stop"), r, e)) return e->status;
    if (get_bool(j, "stream", "stream", &r->stream, e)) return e->status;
    const cJSON *so = cJSON_GetObjectItemCaseSensitive(j, "stream_options");
    if (so && !cJSON_IsNull(so)) {
        if (!cJSON_IsObject(so)) return bad(e, "stream_options", "must be an object");
        if (get_bool(so, "include_usage", "stream_options.include_usage", &r->include_usage, e)) return e->status;
    }
    if (parse_kv(cJSON_GetObjectItemCaseSensitive(j, "kv_steering"), vr, lim, r, e)) return e->status;
    if (parse_act(cJSON_GetObjectItemCaseSensitive(j, "act_steering"), vr, lim, r, e)) return e->status;
    return 0;
}

int request_parse(const char *body, size_t len, int chat, const vec_registry *vr, const request_limits *lim,
                  request *r, api_error *e) {
    memset(r, 0, sizeof *r);
    r->chat = chat;
    if (len == 0) return api_fail(e, 400, NULL, "the request has no body (a JSON object is expected)");
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(body, len, &end, 0);
    if (!j) {
        size_t at = end && end >= body ? (size_t)(end - body) : 0;
        return api_fail(e, 400, NULL, "the request body is not valid JSON (near byte %zu)", at);
    }
    int rc = parse_body(j, chat, vr, lim, r, e);
    cJSON_Delete(j);
    if (rc) {
        request_free(r);
        r->chat = chat;
    }
    return rc;
}

void request_free(request *r) {
    for (int i = 0; i < r->n_msgs; i++) {
        free(r->msgs[i].role);
        free(r->msgs[i].content);
    }
    free(r->msgs);
    free(r->prompt);
    for (int i = 0; i < r->n_stop; i++) free(r->stop[i]);
    free(r->offset);
    memset(r, 0, sizeof *r);
}
