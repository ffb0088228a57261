/* server.h - kvsteer's HTTP server: an OpenAI-compatible API where every
 * request chooses its own steering, all requests sharing one continuous batch
 * (docs/SERVER.md).  A front end, as the command line is: it owns its model,
 * context and threads, and reports errors as text for its caller to print. */
#ifndef KVS_SERVER_H
#define KVS_SERVER_H
#include <stddef.h>

typedef struct server_config {
    const char *model_path;
    const char *host;          /* "127.0.0.1" unless told otherwise */
    int port;                  /* 0: any free port (server_port tells which) */
    int slots;                 /* sequences decoded together */
    int ctx;                   /* positions per slot; 0: min(2048, training length) */
    int threads;               /* 0: all cores */
    int kv_f16;
    const char *api_key;       /* NULL: no key needed */
    const char *chat_template; /* NULL: the file's */
    const char *const *vectors; /* NAME=FILE entries */
    int n_vectors;
    const char *vector_dir;    /* every *.gguf in it, or NULL */
    int queue_max;             /* requests waiting for a slot before 503 */
    size_t body_max;           /* bytes of a request body before 413 */
    int max_tokens;            /* most tokens one request may ask for; 0: the context */
    int timeout_s;             /* idle connection timeout */
    int max_connections;
} server_config;

void server_config_defaults(server_config *c);

typedef struct server server;

/* Load the model and vectors, start the engine thread and listen.  NULL with a
 * one-line message in err on failure. */
server *server_start(const server_config *cfg, char *err, size_t err_len);
int server_port(const server *s);
/* Stop listening, let running requests finish for up to grace_ms, cancel the
 * rest, and free everything. */
void server_stop(server *s, int grace_ms);

#endif
