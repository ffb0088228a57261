/* `kvsteer logits`: the next-token logits after a prompt, as one JSON line, so
 * that a model's forward pass can be compared with another implementation
 * (tools/check_parity.py does that against llama.cpp). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "steer_opts.h"

static const char *k_help =
    "usage: kvsteer logits -m MODEL.gguf [options] TEXT\n"
    "Run TEXT through the model and print, as one JSON line, its token ids and the\n"
    "highest logits at the last position: {\"ids\":[...],\"top\":[[id,logit],...]}.\n"
    "BOS as the model adds it by default.\n\n"
    "      --special          recognise special-token strings such as <|im_start|> (default)\n"
    "      --no-special       take TEXT literally\n"
    "  -m, --model FILE       GGUF model (required)\n"
    "  -k, --top K            how many logits (default 40; 0 = all)\n"
    "  -c, --ctx N            context length (default: min(2048, training length))\n"
    "  -t, --threads N        worker threads (default: all cores)\n"
    "      --act VEC          activation-steering vectors applied to every position:\n"
    "                         a kvsteer act file (with --act-layer) or a llama.cpp\n"
    "                         control vector (all its layers unless --act-layer)\n"
    "      --act-layer L      the one layer to steer (counted from 0)\n"
    "      --act-scale C      scale of the vectors (default 1)\n";

typedef struct idlogit {
    int id;
    float v;
} idlogit;

static int by_logit(const void *a, const void *b) {
    const idlogit *x = a, *y = b;
    if (x->v != y->v) return x->v < y->v ? 1 : -1;
    return x->id - y->id; /* ties in id order, so the output is deterministic */
}

int cmd_logits(int argc, char **argv) {
    const char *model = NULL;
    int top = 40, threads = 0, n_ctx = 0, special = 1;
    static const struct option opts[] = {{"model", required_argument, 0, 'm'}, {"top", required_argument, 0, 'k'},
                                         {"ctx", required_argument, 0, 'c'},   {"threads", required_argument, 0, 't'},
                                         {"act", required_argument, 0, 1000},  {"act-layer", required_argument, 0, 1000},
                                         {"act-scale", required_argument, 0, 1000},
                                         {"special", no_argument, 0, 'S'},     {"no-special", no_argument, 0, 'N'},
                                         {"help", no_argument, 0, 'h'},        {0, 0, 0, 0}};
    steer_opts so;
    steer_opts_init(&so);
    int o, li = 0;
    optind = 1;
    opterr = 0;
    while ((o = getopt_long(argc, argv, ":m:k:c:t:h", opts, &li)) != -1) {
        switch (o) {
        case 1000: if (steer_opts_parse(&so, "logits", opts[li].name, optarg) < 0) return 1; break;
        case 'm': model = optarg; break;
        case 'k': if (cli_int("logits", "--top", optarg, 0, 1 << 24, &top)) return 1; break;
        case 'c': if (cli_int("logits", "--ctx", optarg, 1, 1 << 24, &n_ctx)) return 1; break;
        case 't': if (cli_int("logits", "--threads", optarg, 1, 1024, &threads)) return 1; break;
        case 'S': special = 1; break;
        case 'N': special = 0; break;
        case 'h': fputs(k_help, stdout); return 0;
        case ':': return cli_error("logits", "option %s needs a value", argv[optind - 1]);
        default: return cli_error("logits", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (!model || optind != argc - 1) return cli_error("logits", "usage: kvsteer logits -m MODEL.gguf TEXT");
    kvs_error err = {0};
    kvs_model *m = kvs_model_load(model, &err);
    if (!m) return cli_error("logits", "%s", err.msg);
    int n = 0, rc = 1;
    kvs_token *t = cli_tokenize("logits", m, argv[optind], -1, special, &n);
    kvs_ctx *c = NULL;
    int32_t *pos = NULL, *seq = NULL;
    idlogit *all = NULL;
    if (!t || steer_opts_load(&so, "logits", m)) goto done;
    if (n == 0) {
        cli_error("logits", "the prompt has no tokens");
        goto done;
    }
    kvs_ctx_params cp = kvs_ctx_default_params();
    cp.n_ctx = n_ctx;
    cp.n_threads = threads;
    if (!(c = kvs_ctx_new(m, &cp, &err))) {
        cli_error("logits", "%s", err.msg);
        goto done;
    }
    if (so.act && kvs_steer_apply_act(c, 0, so.act, so.act_layer, so.act_scale, &err)) {
        cli_error("logits", "%s", err.msg);
        goto done;
    }
    pos = malloc(sizeof(int32_t) * (size_t)n);
    seq = calloc((size_t)n, sizeof(int32_t));
    kvs_model_info mi;
    kvs_model_get_info(m, &mi);
    all = malloc(sizeof *all * (size_t)mi.n_vocab);
    if (!pos || !seq || !all) {
        cli_error("logits", "out of memory");
        goto done;
    }
    for (int i = 0; i < n; i++) pos[i] = i;
    kvs_batch b = {n, t, pos, seq, NULL};
    if (kvs_decode(c, &b, &err)) {
        cli_error("logits", "%s", err.msg);
        goto done;
    }
    const float *l = kvs_get_logits(c, n - 1);
    for (int i = 0; i < mi.n_vocab; i++) all[i] = (idlogit){i, l[i]};
    qsort(all, (size_t)mi.n_vocab, sizeof *all, by_logit);
    if (top == 0 || top > mi.n_vocab) top = mi.n_vocab;
    printf("{\"ids\":[");
    for (int i = 0; i < n; i++) printf(i ? ",%d" : "%d", t[i]);
    printf("],\"top\":[");
    for (int i = 0; i < top; i++) printf(i ? ",[%d,%.6g]" : "[%d,%.6g]", all[i].id, all[i].v);
    printf("]}\n");
    rc = fflush(stdout) ? 1 : 0;
done:
    free(all), free(pos), free(seq), free(t);
    kvs_ctx_free(c);
    steer_opts_free(&so);
    kvs_model_free(m);
    return rc;
}
