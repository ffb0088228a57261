/* `kvsteer report`: tables (and charts) from evaluation run files: its options,
 * and the files and folders it is given.  The runs, tables and charts are in
 * report_runs.c, report_tables.c and report_plot.c (report.h). */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "engine/grow.h"
#include "cli.h"
#include "report.h"

#define CMD "report"

static const char *k_help =
    "usage: kvsteer report [options] RUN.jsonl|DIR [...]\n"
    "Tables from kvsteer eval run files (a DIR stands for its *.jsonl files, or\n"
    "for DIR/runs/ when DIR is a sweep folder): accuracy by task x method with 95%\n"
    "intervals (greedy; sampling as mean +- std over seeds); each method against the\n"
    "baseline of its task on the same questions: accuracy, share with no answer,\n"
    "accuracy among answered questions, the paired difference with its 95% interval,\n"
    "and exact paired p-values, Holm-corrected over the comparisons of one table;\n"
    "mean generated tokens; speed by method (throughput, time per token as one\n"
    "sequence sees it, real batch occupancy); ablations (accuracy against c_v, c_k,\n"
    "pairs, shots, activation scale or layer when runs differ only in that setting)\n"
    "and a list of the runs.  Files holding the same configuration (e.g.\n"
    "--offset-start shards, or sweep shards) are merged.  docs/EVALUATION.md\n"
    "says how each number is computed.\n\n"
    "      --json             print JSON instead of Markdown\n"
    "  -o, --output FILE      also write the output to FILE (atomically)\n"
    "      --plot DIR         write PNG charts with gnuplot (ablation curves with 95%\n"
    "                         intervals, time per token by method) and their data\n"
    "                         and scripts (rerun one with: gnuplot DIR/NAME.gp) into DIR\n"
    "      --rescore          score every sample again from its stored response and\n"
    "                         span with this build's answer extraction (the files are\n"
    "                         not changed; stderr says how many answers changed)\n"
    "      --data DIR         with --rescore: the data folder holding eval/*.jsonl\n"
    "                         (default: the one each run recorded)\n"
    "      --shared           describe every run on the samples (question, seed) that\n"
    "                         all runs of its task and decoding have, so that runs\n"
    "                         still going compare on the same samples, per seed too\n"
    "  -h, --help             this help\n";

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

typedef struct strlist {
    char **v;
    int n, cap;
} strlist;

static int sl_add(strlist *l, const char *s) {
    char **nv = grow(l->v, l->n, &l->cap, sizeof *l->v);
    if (!nv) return 1;
    l->v = nv;
    return !(l->v[l->n++] = strdup(s));
}

static void sl_free(strlist *l) {
    for (int i = 0; i < l->n; i++) free(l->v[i]);
    free(l->v);
}

static int expand(const char *arg, strlist *files) {
    struct stat st;
    if (stat(arg, &st)) return cli_error(CMD, "%s: cannot open: %s", arg, strerror(errno));
    if (!S_ISDIR(st.st_mode)) return sl_add(files, arg) ? cli_error(CMD, "out of memory") : 0;
    DIR *d = opendir(arg);
    if (!d) return cli_error(CMD, "%s: cannot read directory: %s", arg, strerror(errno));
    strlist here = {0};
    struct dirent *e;
    while ((e = readdir(d))) {
        const size_t l = strlen(e->d_name);
        if (l > 6 && !strcmp(e->d_name + l - 6, ".jsonl") && e->d_name[0] != '.') {
            char p[4096];
            snprintf(p, sizeof p, "%s/%s", arg, e->d_name);
            if (sl_add(&here, p)) {
                closedir(d);
                sl_free(&here);
                return cli_error(CMD, "out of memory");
            }
        }
    }
    closedir(d);
    char runs[4096];
    snprintf(runs, sizeof runs, "%s/runs", arg);
    if (here.n == 0 && !stat(runs, &st) && S_ISDIR(st.st_mode)) { /* a sweep folder */
        sl_free(&here);
        return expand(runs, files);
    }
    if (here.n == 0) {
        sl_free(&here);
        return cli_error(CMD, "%s: no .jsonl run files in this directory", arg);
    }
    qsort(here.v, (size_t)here.n, sizeof *here.v, cmp_str);
    int rc = 0;
    for (int i = 0; i < here.n && !rc; i++) rc = sl_add(files, here.v[i]) ? cli_error(CMD, "out of memory") : 0;
    sl_free(&here);
    return rc;
}

int cmd_report(int argc, char **argv) {
    int json = 0, rescore_data = 0, shared = 0;
    const char *out = NULL, *plot_dir = NULL, *data = NULL;
    static const struct option opts[] = {{"json", no_argument, 0, 1},
                                         {"output", required_argument, 0, 'o'},
                                         {"plot", required_argument, 0, 2},
                                         {"rescore", no_argument, 0, 3},
                                         {"data", required_argument, 0, 4},
                                         {"shared", no_argument, 0, 5},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    int o;
    optind = 1;
    opterr = 0;
    while ((o = getopt_long(argc, argv, ":o:h", opts, NULL)) != -1) {
        switch (o) {
        case 1: json = 1; break;
        case 'o': out = optarg; break;
        case 2: plot_dir = optarg; break;
        case 3: rescore_data = 1; break;
        case 4: data = optarg; break;
        case 5: shared = 1; break;
        case 'h': fputs(k_help, stdout); return 0;
        case ':': return cli_error(CMD, "option %s needs a value", argv[optind - 1]);
        default: return cli_error(CMD, "unknown option '%s' (see kvsteer report --help)", argv[optind - 1]);
        }
    }
    if (optind == argc) return cli_error(CMD, "no run files given (see --help)");
    if (data && !rescore_data) return cli_error(CMD, "--data is used only with --rescore");
    if ((out && cli_check_output(CMD, out)) || (plot_dir && cli_check_output_dir(CMD, plot_dir))) return 1;
    strlist files = {0};
    int rc = 0;
    for (int i = optind; i < argc && !rc; i++) rc = expand(argv[i], &files);
    if (!rc) qsort(files.v, (size_t)files.n, sizeof *files.v, cmp_str); /* the order of the arguments is no input */
    report_run *rs = NULL;
    int n = 0;
    if (!rc) rc = report_load(files.v, files.n, rescore_data, data, shared, &rs, &n);
    if (!rc) rc = report_pair_baselines(rs, n);
    sl_free(&files);
    report_series ser[256];
    int n_ser = rc ? 0 : report_find_series(rs, n, ser, 256);
    char *text = NULL;
    if (!rc) {
        if (json) {
            cJSON *j = report_json(rs, n, ser, n_ser);
            char *s = j ? cJSON_Print(j) : NULL;
            cJSON_Delete(j);
            if (s && (text = malloc(strlen(s) + 2))) sprintf(text, "%s\n", s);
            free(s);
        } else {
            text = report_markdown(rs, n, ser, n_ser);
        }
        if (!text) rc = cli_error(CMD, "out of memory");
    }
    if (!rc && plot_dir) rc = report_plot(plot_dir, rs, n, ser, n_ser);
    if (!rc && out) rc = cli_write_atomic(CMD, out, text);
    if (!rc) {
        fputs(text, stdout);
        rc = fflush(stdout) ? 1 : 0;
    }
    free(text);
    report_free(rs, n);
    return rc;
}

