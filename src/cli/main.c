/* kvsteer - command-line front end.  Each command is a thin layer over the
 * library in include/kvsteer.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const struct {
    const char *name;
    cli_cmd_fn fn;
    const char *summary;
} k_cmds[] = {
    {"run", cmd_run, "generate text from a prompt (optionally steered)"},
    {"tokenize", cmd_tokenize, "print the token ids of a text"},
    {"inspect", cmd_inspect, "describe a GGUF file (architecture, sizes, tensor types)"},
    {"logits", cmd_logits, "print the next-token logits after a prompt (for parity checks)"},
    {"pairs", cmd_pairs, "show the contrastive prompt pairs built from a trace file"},
    {"bench", cmd_bench, "measure prompt, generation and batched throughput"},
    {"compare", cmd_compare, "answer questions unsteered and steered, side by side"},
    {"extract", cmd_extract, "extract steering vectors (cache or activation) from traces"},
    {"eval", cmd_eval, "evaluate a method on a task (GSM8K, ARC, CSQA, PIQA) into a run file"},
    {"sweep", cmd_sweep, "evaluate a grid of steering settings (shardable), vectors cached"},
    {"report", cmd_report, "tables and charts (accuracy, tokens, time, ablations) from run files"},
    {"styles", cmd_styles, "style transfer: which reasoning structure steered answers show"},
    {"serve", cmd_serve, "OpenAI-compatible HTTP server, steering chosen per request"},
};

static void usage(FILE *f) {
    fprintf(f, "usage: kvsteer <command> [options]   (kvsteer <command> --help for details)\n\ncommands:\n");
    for (size_t i = 0; i < sizeof k_cmds / sizeof *k_cmds; i++)
        fprintf(f, "  %-10s %s\n", k_cmds[i].name, k_cmds[i].summary);
    fprintf(f, "  %-10s %s\n", "version", "print the version");
    fprintf(f, "\nenvironment: KVS_KERNELS=scalar|avx2|avx512vnni|amx picks the kernel set\n"
               "(default: the best this CPU and OS allow)\n");
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    /* the kernel set for every command (benchmarks, or AMX tiles for batched
     * evaluation); unset: the library's choice */
    const char *kernels = getenv("KVS_KERNELS");
    if (kernels && *kernels && kvs_kernels_use(kernels)) {
        fprintf(stderr, "kvsteer: KVS_KERNELS=%s: not a kernel set this machine runs (scalar, avx2, avx512vnni, amx)\n",
                kernels);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "version") || !strcmp(argv[1], "--version")) {
        printf("kvsteer %s\n", kvs_version());
        return 0;
    }
    for (size_t i = 0; i < sizeof k_cmds / sizeof *k_cmds; i++)
        if (!strcmp(argv[1], k_cmds[i].name)) return k_cmds[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "kvsteer: unknown command '%s' (kvsteer --help lists the commands)\n", argv[1]);
    return 2;
}
