#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char *k_help =
    "usage: kvsteer tokenize -m MODEL.gguf [--special|--no-special] [--bos|--no-bos] [--pieces] TEXT\n"
    "Print the token ids of TEXT, space-separated, on one line.  Special-token\n"
    "strings such as <|im_start|> are recognised (--special, the default, as in run\n"
    "and logits) unless --no-special; BOS is added only if the model adds it by\n"
    "default (override with --bos / --no-bos).  --pieces prints each id as\n"
    "ID:'TEXT' with the token's text.\n";

int cmd_tokenize(int argc, char **argv) {
    const char *model = NULL;
    int special = 1, bos = -1, pieces = 0;
    static const struct option opts[] = {{"model", required_argument, 0, 'm'}, {"no-special", no_argument, 0, 'N'},
                                         {"bos", no_argument, 0, 'B'},         {"no-bos", no_argument, 0, 'b'},
                                         {"pieces", no_argument, 0, 'P'},      {"help", no_argument, 0, 'h'},
                                         {"special", no_argument, 0, 'S'},
                                         {0, 0, 0, 0}};
    int o;
    optind = 1;
    opterr = 0;
    while ((o = getopt_long(argc, argv, ":m:h", opts, NULL)) != -1) {
        switch (o) {
        case 'm': model = optarg; break;
        case 'N': special = 0; break;
        case 'S': special = 1; break;
        case 'B': bos = 1; break;
        case 'b': bos = 0; break;
        case 'P': pieces = 1; break;
        case 'h': fputs(k_help, stdout); return 0;
        case ':': return cli_error("tokenize", "option %s needs a value", argv[optind - 1]);
        default: return cli_error("tokenize", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (!model || optind != argc - 1) return cli_error("tokenize", "usage: kvsteer tokenize -m MODEL.gguf TEXT");
    kvs_error err = {0};
    kvs_model *m = kvs_model_load(model, &err);
    if (!m) return cli_error("tokenize", "%s", err.msg);
    int n = 0;
    kvs_token *t = cli_tokenize("tokenize", m, argv[optind], bos, special, &n);
    if (!t) {
        kvs_model_free(m);
        return 1;
    }
    for (int i = 0; i < n; i++) {
        printf(i ? " %d" : "%d", t[i]);
        if (pieces) {
            char buf[128];
            int nb = kvs_token_to_bytes(m, t[i], buf, sizeof buf);
            printf(":'%.*s'", nb < 128 ? nb : 128, buf);
        }
    }
    putchar('\n');
    free(t);
    kvs_model_free(m);
    return fflush(stdout) ? 1 : 0;
}
