/* cmd_serve.c - `kvsteer serve`: options, signals and the server's life. */
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "server/server.h"

static const char *k_help =
    "usage: kvsteer serve -m MODEL.gguf [options]\n"
    "An OpenAI-compatible HTTP server in which every request chooses its own steering\n"
    "(\"kv_steering\" / \"act_steering\" in the request body); all requests share one\n"
    "continuous batch.  API: docs/SERVER.md.  Stops on SIGTERM or SIGINT (exit 0).\n\n"
    "  -m, --model FILE       GGUF model (required)\n"
    "      --vector NAME=FILE a steering vector offered under NAME (repeatable)\n"
    "      --vectors DIR      every *.gguf vector file in DIR, named by its file name\n"
    "      --host ADDR        IPv4 address to bind (default 127.0.0.1: this machine only)\n"
    "      --port N           TCP port (default 8080; 0 = any free port, printed at start)\n"
    "      --slots N          requests generated together (default 4)\n"
    "  -c, --ctx N            context per slot, prompt and answer (default: min(2048, training length))\n"
    "  -t, --threads N        worker threads (default: all cores)\n"
    "      --api-key KEY      require \"Authorization: Bearer KEY\" (default: the KVS_API_KEY\n"
    "                         environment variable, else no key)\n"
    "      --queue N          requests that may wait for a slot; more get 503 (default 64)\n"
    "      --max-body BYTES   largest request body; larger gets 413 (default 1048576)\n"
    "      --max-tokens N     most tokens one request may ask for (default: the context)\n"
    "      --timeout S        close a connection idle for S seconds (default 60)\n"
    "      --max-connections N  open connections at most (default 128)\n"
    "      --grace S          on SIGTERM, let requests in flight finish for up to S seconds,\n"
    "                         then cancel them (default 10)\n"
    "      --chat-template N  chatml|llama3|phi3|gemma, when the file's template is unknown\n"
    "      --kv-f16           keep the KV cache as IEEE half (half its memory)\n"
    "  -h, --help             this help\n";

int cmd_serve(int argc, char **argv) {
    server_config cfg;
    server_config_defaults(&cfg);
    int grace = 10;
    const char **vecs = NULL;
    int n_vecs = 0;
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'},      {"vector", required_argument, 0, 'V'},
        {"vectors", required_argument, 0, 'D'},    {"host", required_argument, 0, 'H'},
        {"port", required_argument, 0, 'p'},       {"slots", required_argument, 0, 's'},
        {"ctx", required_argument, 0, 'c'},        {"threads", required_argument, 0, 't'},
        {"api-key", required_argument, 0, 'k'},    {"queue", required_argument, 0, 'q'},
        {"max-body", required_argument, 0, 'b'},   {"max-tokens", required_argument, 0, 'n'},
        {"timeout", required_argument, 0, 'o'},    {"max-connections", required_argument, 0, 'C'},
        {"grace", required_argument, 0, 'g'},      {"chat-template", required_argument, 0, 'T'},
        {"kv-f16", no_argument, 0, 'F'},           {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    int o, li = 0, rc = 1, body = (int)cfg.body_max;
    optind = 1;
    opterr = 0;
    cfg.api_key = getenv("KVS_API_KEY");
    if (cfg.api_key && !cfg.api_key[0]) cfg.api_key = NULL;
    while ((o = getopt_long(argc, argv, ":m:c:t:h", opts, &li)) != -1) {
        switch (o) {
        case 'm': cfg.model_path = optarg; break;
        case 'V': {
            const char **nv = realloc(vecs, sizeof *nv * (size_t)(n_vecs + 1));
            if (!nv) goto out_oom;
            vecs = nv;
            vecs[n_vecs++] = optarg;
            break;
        }
        case 'D': cfg.vector_dir = optarg; break;
        case 'H': cfg.host = optarg; break;
        case 'k':
            if (!optarg[0]) {
                cli_error("serve", "--api-key must not be empty");
                goto out;
            }
            cfg.api_key = optarg;
            break;
        case 'T': cfg.chat_template = optarg; break;
        case 'F': cfg.kv_f16 = 1; break;
        case 'p': if (cli_int("serve", "--port", optarg, 0, 65535, &cfg.port)) goto out; break;
        case 's': if (cli_int("serve", "--slots", optarg, 1, 256, &cfg.slots)) goto out; break;
        case 'c': if (cli_int("serve", "--ctx", optarg, 16, 1 << 20, &cfg.ctx)) goto out; break;
        case 't': if (cli_int("serve", "-t", optarg, 1, 1024, &cfg.threads)) goto out; break;
        case 'q': if (cli_int("serve", "--queue", optarg, 1, 100000, &cfg.queue_max)) goto out; break;
        case 'b': if (cli_int("serve", "--max-body", optarg, 1024, 1 << 30, &body)) goto out; break;
        case 'n': if (cli_int("serve", "--max-tokens", optarg, 1, 1 << 24, &cfg.max_tokens)) goto out; break;
        case 'o': if (cli_int("serve", "--timeout", optarg, 1, 86400, &cfg.timeout_s)) goto out; break;
        case 'C': if (cli_int("serve", "--max-connections", optarg, 1, 65536, &cfg.max_connections)) goto out; break;
        case 'g': if (cli_int("serve", "--grace", optarg, 0, 3600, &grace)) goto out; break;
        case 'h': fputs(k_help, stdout); rc = 0; goto out;
        case ':': cli_error("serve", "option %s needs a value", argv[optind - 1]); goto out;
        default: cli_error("serve", "unknown option '%s' (see kvsteer serve --help)", argv[optind - 1]); goto out;
        }
    }
    if (optind < argc) {
        cli_error("serve", "unexpected argument '%s'", argv[optind]);
        goto out;
    }
    if (!cfg.model_path) {
        cli_error("serve", "-m MODEL is required (see --help)");
        goto out;
    }
    cfg.body_max = (size_t)body;
    cfg.vectors = vecs;
    cfg.n_vectors = n_vecs;
    /* the signals are taken by sigwait below: block them before any thread starts */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);
    char err[600];
    server *s = server_start(&cfg, err, sizeof err);
    if (!s) {
        cli_error("serve", "%s", err);
        goto out;
    }
    fprintf(stderr, "kvsteer serve: listening on http://%s:%d (%d slots%s)\n", cfg.host, server_port(s), cfg.slots,
            cfg.api_key ? ", API key required" : "");
    fflush(stderr);
    int sig = 0;
    sigwait(&sigs, &sig);
    fprintf(stderr, "kvsteer serve: %s: stopping (requests in flight get %d s)\n", sig == SIGINT ? "SIGINT" : "SIGTERM",
            grace);
    server_stop(s, grace * 1000);
    fprintf(stderr, "kvsteer serve: stopped\n");
    rc = 0;
    goto out;
out_oom:
    cli_error("serve", "out of memory");
out:
    free(vecs);
    return rc;
}
