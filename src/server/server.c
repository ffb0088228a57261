/* server.c - HTTP glue of the server (server.h): routes, authentication,
 * body limits, a request's prompt, and server-sent events; the bodies
 * themselves are response.c's.  libmicrohttpd parses HTTP and runs one thread
 * per connection, so a handler may block while its request is generated; the
 * engine itself runs on the scheduler's one thread (sched.c). */
#include "server.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <microhttpd.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "engine/grow.h"
#include "engine/utf8.h"
#include "metrics.h"
#include "request.h"
#include "response.h"
#include "sched.h"
#include "vectors.h"
#include "web_assets.h"

struct server {
    server_config cfg;
    kvs_model *m;
    kvs_ctx *c;
    sched *sc;
    vec_registry vr;
    struct MHD_Daemon *d;
    request_limits lim;
    int n_ctx, port;
    char model_id[128];
    time_t created;
    metrics mx;
    pthread_mutex_t id_mu;    /* guards next_id and busy_conns */
    pthread_cond_t conns_done;
    uint64_t next_id;
    int busy_conns;           /* connections holding a job */
};

/* One connection's state between libmicrohttpd's calls. */
typedef struct conn {
    server *s;
    strbuf body;
    int too_big;
    int endpoint;      /* metrics index */
    job *j;
    int fd;
    /* streaming */
    char id[40];
    int chat;
    strbuf pend;       /* events not sent yet, from pend_at on */
    size_t pend_at;
    size_t text_sent;
    int role_sent, end_sent;
} conn;

void server_config_defaults(server_config *c) {
    memset(c, 0, sizeof *c);
    c->host = "127.0.0.1";
    c->port = 8080;
    c->slots = 4;
    c->queue_max = 64;
    c->body_max = 1 << 20;
    c->timeout_s = 60;
    c->max_connections = 128;
}

/* ------------------------------------------------------------ responses */

static enum MHD_Result respond(conn *cn, struct MHD_Connection *mc, int status, const char *type, char *body,
                               size_t len, int retry_after) {
    struct MHD_Response *r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    if (retry_after) MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, "1");
    if (status == 401) MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
    const enum MHD_Result rc = MHD_queue_response(mc, (unsigned)status, r);
    MHD_destroy_response(r);
    metrics_count(&cn->s->mx, cn->endpoint, status);
    return rc;
}

static enum MHD_Result respond_json(conn *cn, struct MHD_Connection *mc, int status, cJSON *j) {
    char *txt = j ? cJSON_PrintUnformatted(j) : NULL;
    cJSON_Delete(j);
    if (!txt) return MHD_NO;
    return respond(cn, mc, status, "application/json", txt, strlen(txt), status == 503);
}

static enum MHD_Result respond_error(conn *cn, struct MHD_Connection *mc, const api_error *e) {
    return respond_json(cn, mc, e->status, response_error(e));
}

static enum MHD_Result fail(conn *cn, struct MHD_Connection *mc, int status, const char *param, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static enum MHD_Result fail(conn *cn, struct MHD_Connection *mc, int status, const char *param, const char *fmt, ...) {
    api_error e;
    char msg[650];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    api_fail(&e, status, param, "%s", msg);
    return respond_error(cn, mc, &e);
}

/* ------------------------------------------------------------ listings */

static enum MHD_Result get_models(conn *cn, struct MHD_Connection *mc) {
    const server *s = cn->s;
    return respond_json(cn, mc, 200, response_models(s->m, s->model_id, s->created, s->n_ctx, s->cfg.slots));
}

static enum MHD_Result get_vectors(conn *cn, struct MHD_Connection *mc) {
    return respond_json(cn, mc, 200, response_vectors(&cn->s->vr));
}

static enum MHD_Result get_metrics(conn *cn, struct MHD_Connection *mc) {
    sched_stats st;
    sched_get_stats(cn->s->sc, &st);
    char *txt = metrics_render(&cn->s->mx, &st);
    if (!txt) return MHD_NO;
    return respond(cn, mc, 200, "text/plain; version=0.0.4", txt, strlen(txt), 0);
}

/* The playground page's file at url (web/, embedded at build time), or NULL. */
static const web_asset *page_file(const char *url) {
    for (int i = 0; i < web_assets_n; i++)
        if (!strcmp(url, web_assets[i].path)) return &web_assets[i];
    return NULL;
}

static enum MHD_Result get_page_file(conn *cn, struct MHD_Connection *mc, const web_asset *a) {
    struct MHD_Response *r = MHD_create_response_from_buffer(a->len, (void *)a->data, MHD_RESPMEM_PERSISTENT);
    if (!r) return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, a->type);
    /* a new binary may bring a new page: the browser asks again each time */
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    /* the page runs only its own script and talks only to this server */
    MHD_add_response_header(r, "Content-Security-Policy",
                            "default-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; "
                            "frame-ancestors 'none'");
    MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
    const enum MHD_Result rc = MHD_queue_response(mc, 200, r);
    MHD_destroy_response(r);
    metrics_count(&cn->s->mx, cn->endpoint, 200);
    return rc;
}

/* ------------------------------------------------------------ generation */

/* The client hung up: the socket reads as closed or failed. */
static int gone(int fd) {
    if (fd < 0) return 0;
    struct pollfd p = {fd, POLLIN | POLLRDHUP, 0};
    if (poll(&p, 1, 0) <= 0) return 0;
    if (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) return 1;
    char b;
    return recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
}

static void next_id(server *s, const char *prefix, char *out, size_t n) {
    pthread_mutex_lock(&s->id_mu);
    const uint64_t id = ++s->next_id;
    pthread_mutex_unlock(&s->id_mu);
    snprintf(out, n, "%s-%llx%06llx", prefix, (unsigned long long)s->created, (unsigned long long)id);
}

/* The prompt's tokens as `kvsteer run` makes them: a chat is rendered with
 * the model's template, a plain prompt taken as it is; special-token text is
 * recognised in both, with the model's own BOS rule; the offset token (plain
 * text) goes last. */
static int build_prompt(server *s, const request *rq, kvs_token **out, int *n_out, int *n_hold, api_error *e) {
    kvs_error err = {0};
    char *text = NULL;
    if (rq->chat) {
        kvs_chat_msg *msgs = malloc(sizeof *msgs * (size_t)rq->n_msgs);
        if (!msgs) return api_fail(e, 500, NULL, "out of memory");
        for (int i = 0; i < rq->n_msgs; i++) msgs[i] = (kvs_chat_msg){rq->msgs[i].role, rq->msgs[i].content};
        text = kvs_chat_render(s->m, msgs, rq->n_msgs, 1, s->cfg.chat_template, &err);
        free(msgs);
        if (!text) return api_fail(e, 400, "messages", "cannot render the messages: %s", err.msg);
    }
    int n = 0;
    const char *src = rq->chat ? text : rq->prompt;
    kvs_token *t = kvs_tokenize_alloc(s->m, src, strlen(src), -1, 1, 1, &n, &err); /* room for the offset token */
    free(text);
    if (!t) return api_fail(e, 400, rq->chat ? "messages" : "prompt", "cannot tokenize the prompt: %s", err.msg);
    *n_hold = 0;
    if (rq->offset) {
        int k = 0;
        kvs_token *o = kvs_tokenize_alloc(s->m, rq->offset, strlen(rq->offset), 0, 0, 0, &k, &err);
        if (!o || k != 1) {
            free(o);
            free(t);
            return api_fail(e, 400, "kv_steering.offset", "'kv_steering.offset' must be exactly one token; it is %d", k);
        }
        t[n++] = o[0];
        free(o);
        *n_hold = 1;
    }
    if (n == 0) {
        free(t);
        return api_fail(e, 400, rq->chat ? "messages" : "prompt", "the prompt is empty");
    }
    if (n >= s->n_ctx) {
        free(t);
        return api_fail(e, 400, rq->chat ? "messages" : "prompt",
                        "'%s': the prompt is %d tokens; a request's context holds %d (prompt and answer)",
                        rq->chat ? "messages" : "prompt", n, s->n_ctx);
    }
    *out = t;
    *n_out = n;
    return 0;
}

static uint64_t random_seed(void) {
    uint64_t x = 0;
    if (getrandom(&x, sizeof x, 0) != (ssize_t)sizeof x) x = (uint64_t)time(NULL) ^ (uint64_t)clock();
    return x & ((1ull << 53) - 1); /* stays exact in JSON */
}

static response_ids ids_of(const conn *cn) { return (response_ids){cn->id, cn->s->model_id, cn->chat}; }

/* Append "data: <json>\n\n" (or the raw line) to the connection's pending bytes. */
static int sse(conn *cn, cJSON *j, const char *raw) {
    char *txt = j ? cJSON_PrintUnformatted(j) : NULL;
    cJSON_Delete(j);
    const char *p = j ? txt : raw;
    if (!p) return -1;
    sb_printf(&cn->pend, "data: %s\n\n", p);
    free(txt);
    return cn->pend.oom ? -1 : 0;
}

/* With the scheduler locked: turn what the job has produced since the last
 * call into events.  1 if something was added. */
static int produce(conn *cn) {
    job *j = cn->j;
    const response_ids ids = ids_of(cn);
    int added = 0;
    if (cn->chat && !cn->role_sent) {
        sse(cn, response_chunk(&ids, "", 0, 1), NULL);
        cn->role_sent = added = 1;
    }
    if (j->text.ready > cn->text_sent) {
        sse(cn, response_chunk(&ids, j->text.s.p + cn->text_sent, j->text.ready - cn->text_sent, 0), NULL);
        cn->text_sent = j->text.ready;
        added = 1;
    }
    if (j->state == JOB_DONE && !cn->end_sent) {
        if (j->fail_status) {
            api_error e;
            api_fail(&e, j->fail_status, NULL, "%s", j->fail_msg);
            sse(cn, response_error(&e), NULL);
        } else {
            sse(cn, response_chunk_end(&ids, j), NULL);
            if (j->req.include_usage) sse(cn, response_chunk_usage(&ids, j), NULL);
        }
        sse(cn, NULL, "[DONE]");
        cn->end_sent = added = 1;
    }
    return added;
}

static ssize_t stream_reader(void *cls, uint64_t pos, char *buf, size_t max) {
    conn *cn = cls;
    (void)pos;
    sched *sc = cn->s->sc;
    while (cn->pend_at == cn->pend.n) {
        if (cn->pend.oom) return MHD_CONTENT_READER_END_WITH_ERROR;
        cn->pend.n = cn->pend_at = 0; /* all sent: reuse the buffer */
        if (cn->end_sent) return MHD_CONTENT_READER_END_OF_STREAM;
        sched_lock(sc);
        int got = produce(cn);
        if (!got) sched_wait(sc, cn->j, 200);
        sched_unlock(sc);
        if (!got && gone(cn->fd)) {
            sched_cancel(sc, cn->j);
            return MHD_CONTENT_READER_END_WITH_ERROR;
        }
    }
    size_t n = cn->pend.n - cn->pend_at;
    if (n > max) n = max;
    memcpy(buf, cn->pend.p + cn->pend_at, n);
    cn->pend_at += n;
    return (ssize_t)n;
}

static enum MHD_Result generate(conn *cn, struct MHD_Connection *mc, int chat) {
    server *s = cn->s;
    api_error e;
    request rq;
    if (cn->too_big)
        return fail(cn, mc, 413, NULL, "the request body is larger than %zu bytes", s->cfg.body_max);
    if (request_parse(cn->body.p ? cn->body.p : "", cn->body.n, chat, &s->vr, &s->lim, &rq, &e)) return respond_error(cn, mc, &e);
    kvs_token *t = NULL;
    int n = 0, hold = 0;
    if (build_prompt(s, &rq, &t, &n, &hold, &e)) {
        request_free(&rq);
        return respond_error(cn, mc, &e);
    }
    const int max_new = rq.max_tokens > 0 ? rq.max_tokens : s->n_ctx - n;
    const uint64_t seed = rq.seed_given ? rq.sampling.seed : rq.sampling.temperature > 0 ? random_seed() : 0;
    const int stream = rq.stream;
    job *j = job_new(&rq, t, n, hold, max_new, seed);
    if (!j) {
        request_free(&rq);
        free(t);
        return fail(cn, mc, 500, NULL, "out of memory");
    }
    cn->j = j;
    cn->chat = chat;
    pthread_mutex_lock(&s->id_mu);
    s->busy_conns++;
    pthread_mutex_unlock(&s->id_mu);
    next_id(s, chat ? "chatcmpl" : "cmpl", cn->id, sizeof cn->id);
    char msg[160];
    if (sched_submit(s->sc, j, msg, sizeof msg)) return fail(cn, mc, 503, NULL, "%s", msg);
    if (stream) {
        struct MHD_Response *r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, stream_reader, cn, NULL);
        if (!r) return MHD_NO;
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
        MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
        const enum MHD_Result rc = MHD_queue_response(mc, 200, r);
        MHD_destroy_response(r);
        metrics_count(&s->mx, cn->endpoint, 200);
        return rc;
    }
    sched_lock(s->sc);
    while (j->state != JOB_DONE) {
        sched_wait(s->sc, j, 200);
        if (j->state == JOB_DONE) break;
        sched_unlock(s->sc);
        if (gone(cn->fd)) {
            sched_cancel(s->sc, j);
            return MHD_NO; /* nobody to answer */
        }
        sched_lock(s->sc);
    }
    sched_unlock(s->sc);
    /* done: the job is only read from here on */
    if (j->fail_status) return fail(cn, mc, j->fail_status, NULL, "%s", j->fail_msg);
    const response_ids ids = ids_of(cn);
    return respond_json(cn, mc, 200, response_completion(&ids, j));
}

/* ------------------------------------------------------------ routing */

static int authorized(const server *s, struct MHD_Connection *mc) {
    if (!s->cfg.api_key) return 1;
    const char *h = MHD_lookup_connection_value(mc, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (!h || strncmp(h, "Bearer ", 7)) return 0;
    const char *k = h + 7, *want = s->cfg.api_key;
    /* compare in time independent of where they differ */
    size_t lk = strlen(k), lw = strlen(want);
    unsigned diff = (unsigned)(lk != lw);
    for (size_t i = 0; i < lw; i++) diff |= (unsigned char)want[i] ^ (unsigned char)(i < lk ? k[i] : 0);
    return diff == 0;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *mc, const char *url, const char *method,
                              const char *version, const char *upload, size_t *upload_size, void **ptr) {
    server *s = cls;
    conn *cn = *ptr;
    (void)version;
    if (!cn) {
        if (!(cn = calloc(1, sizeof *cn))) return MHD_NO;
        cn->s = s;
        cn->fd = -1;
        cn->endpoint = metrics_endpoint(url);
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CONNECTION_FD);
        if (ci) cn->fd = ci->connect_fd;
        *ptr = cn;
        /* refuse early what must be refused, before reading a body; the page
         * itself is public (it holds nothing), its API calls carry the key */
        if (strcmp(url, "/health") && !page_file(url) && !authorized(s, mc))
            return fail(cn, mc, 401, NULL, "a valid API key is needed (Authorization: Bearer KEY)");
        const char *cl = MHD_lookup_connection_value(mc, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl && strtoull(cl, NULL, 10) > s->cfg.body_max)
            return fail(cn, mc, 413, NULL, "the request body is larger than %zu bytes", s->cfg.body_max);
        return MHD_YES;
    }
    if (*upload_size) {
        if (!cn->too_big && cn->body.n + *upload_size <= s->cfg.body_max) {
            sb_addn(&cn->body, upload, *upload_size);
            if (cn->body.oom) return MHD_NO;
        } else {
            cn->too_big = 1;
        }
        *upload_size = 0;
        return MHD_YES;
    }
    const int get = !strcmp(method, "GET") || !strcmp(method, "HEAD"), post = !strcmp(method, "POST");
    if (!strcmp(url, "/v1/chat/completions") || !strcmp(url, "/v1/completions")) {
        if (!post) return fail(cn, mc, 405, NULL, "%s takes POST", url);
        return generate(cn, mc, url[4] == 'c' && url[5] == 'h');
    }
    static const char *gets[] = {"/health", "/v1/models", "/v1/steering/vectors", "/metrics"};
    for (size_t i = 0; i < sizeof gets / sizeof *gets; i++)
        if (!strcmp(url, gets[i]) && !get) return fail(cn, mc, 405, NULL, "%s takes GET", url);
    if (!strcmp(url, "/health")) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "status", "ok");
        return respond_json(cn, mc, 200, o);
    }
    if (!strcmp(url, "/v1/models")) return get_models(cn, mc);
    if (!strcmp(url, "/v1/steering/vectors")) return get_vectors(cn, mc);
    if (!strcmp(url, "/metrics")) return get_metrics(cn, mc);
    const web_asset *page = page_file(url);
    if (page) {
        if (!get) return fail(cn, mc, 405, NULL, "%s takes GET", url);
        return get_page_file(cn, mc, page);
    }
    return fail(cn, mc, 404, NULL, "no such endpoint: %s %s", method, url);
}

static void completed(void *cls, struct MHD_Connection *mc, void **ptr, enum MHD_RequestTerminationCode why) {
    server *s = cls;
    conn *cn = *ptr;
    (void)mc;
    (void)why;
    if (!cn) return;
    if (cn->j) {
        sched_cancel(s->sc, cn->j); /* no effect once it is done */
        sched_release(s->sc, cn->j);
        pthread_mutex_lock(&s->id_mu);
        if (--s->busy_conns == 0) pthread_cond_broadcast(&s->conns_done);
        pthread_mutex_unlock(&s->id_mu);
    }
    sb_free(&cn->body);
    sb_free(&cn->pend);
    free(cn);
    *ptr = NULL;
}

static void quiet_log(void *cls, const char *fmt, va_list ap) {
    (void)cls;
    (void)fmt;
    (void)ap;
}

/* ------------------------------------------------------------ life */

static void teardown(server *s) {
    if (s->sc) sched_free(s->sc);
    vec_registry_free(&s->vr);
    kvs_ctx_free(s->c);
    kvs_model_free(s->m);
    metrics_free(&s->mx);
    pthread_mutex_destroy(&s->id_mu);
    pthread_cond_destroy(&s->conns_done);
    free(s);
}

server *server_start(const server_config *cfg, char *errbuf, size_t err_len) {
    server *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(errbuf, err_len, "out of memory");
        return NULL;
    }
    s->cfg = *cfg;
    pthread_mutex_init(&s->id_mu, NULL);
    pthread_cond_init(&s->conns_done, NULL);
    metrics_init(&s->mx);
    s->created = time(NULL);
    kvs_error err = {0};
    struct sockaddr_in addr = {0};
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)cfg->port);
    if (inet_pton(AF_INET, cfg->host, &addr.sin_addr) != 1) {
        snprintf(errbuf, err_len, "host '%s' is not an IPv4 address", cfg->host);
        goto bad;
    }
    if (!(s->m = kvs_model_load(cfg->model_path, &err))) goto bad_err;
    for (int i = 0; i < cfg->n_vectors; i++)
        if (vec_add_spec(&s->vr, s->m, cfg->vectors[i], &err)) goto bad_err;
    if (cfg->vector_dir && vec_add_dir(&s->vr, s->m, cfg->vector_dir, &err)) goto bad_err;
    kvs_ctx_params cp = kvs_ctx_default_params();
    cp.n_ctx = cfg->ctx;
    cp.n_seq = cfg->slots;
    cp.n_threads = cfg->threads;
    cp.kv_f16 = cfg->kv_f16;
    if (!(s->c = kvs_ctx_new(s->m, &cp, &err))) goto bad_err;
    s->n_ctx = kvs_ctx_n_ctx(s->c);
    kvs_model_info mi;
    kvs_model_get_info(s->m, &mi);
    s->lim.n_layer = mi.n_layer;
    s->lim.max_tokens = cfg->max_tokens > 0 ? cfg->max_tokens : s->n_ctx;
    s->lim.max_messages = 256;
    s->lim.max_text = cfg->body_max;
    {
        const char *b = strrchr(cfg->model_path, '/');
        b = b ? b + 1 : cfg->model_path;
        size_t l = strlen(b);
        if (l > 5 && !strcmp(b + l - 5, ".gguf")) l -= 5;
        if (l >= sizeof s->model_id) l = sizeof s->model_id - 1;
        memcpy(s->model_id, b, l);
    }
    if (!(s->sc = sched_new(s->c, cfg->slots, cfg->queue_max, &err))) goto bad_err;
    s->d = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ITC |
                                MHD_USE_ERROR_LOG,
                            (uint16_t)cfg->port, NULL, NULL, handle, s, MHD_OPTION_SOCK_ADDR, &addr,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)cfg->timeout_s, MHD_OPTION_CONNECTION_LIMIT,
                            (unsigned)cfg->max_connections, MHD_OPTION_NOTIFY_COMPLETED, completed, s,
                            MHD_OPTION_EXTERNAL_LOGGER, quiet_log, NULL, MHD_OPTION_END);
    if (!s->d) {
        snprintf(errbuf, err_len, "cannot listen on %s:%d (in use, or not allowed)", cfg->host, cfg->port);
        sched_stop(s->sc, 0);
        goto bad;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    s->port = di ? di->port : cfg->port;
    return s;
bad_err:
    snprintf(errbuf, err_len, "%s", err.msg);
    if (s->sc) sched_stop(s->sc, 0);
bad:
    teardown(s);
    return NULL;
}

int server_port(const server *s) { return s->port; }

void server_stop(server *s, int grace_ms) {
    /* no new connections; requests in flight get the grace period */
    const MHD_socket ls = MHD_quiesce_daemon(s->d);
    if (ls != MHD_INVALID_SOCKET) close(ls); /* refused from now on, not left waiting */
    sched_stop(s->sc, grace_ms);
    /* every job is done now: let the connections send their last bytes (a
     * stream's end) before the daemon closes what is still open */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 5;
    pthread_mutex_lock(&s->id_mu);
    while (s->busy_conns > 0)
        if (pthread_cond_timedwait(&s->conns_done, &s->id_mu, &ts)) break;
    pthread_mutex_unlock(&s->id_mu);
    MHD_stop_daemon(s->d);
    teardown(s);
}
