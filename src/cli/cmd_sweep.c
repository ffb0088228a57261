/* `kvsteer sweep`: a grid of steering settings on one task.  Each distinct
 * vector (kind, pairs, shots) is extracted once and kept in DIR/vectors under a
 * name that encodes its settings and inputs; each configuration is one
 * `kvsteer eval` run file in DIR/runs.  Run files are self-describing (their
 * header holds the configuration), so shards run anywhere and `kvsteer report`
 * over all of their files is the merge. */
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "engine/grow.h"
#include "engine/hash.h"
#include "eval/eval.h"
#include "eval/fingerprint.h"
#include "cli.h"
#include "steer_opts.h"

#define CMD "sweep"
#define MAX_VALS 32

static const char *k_help =
    "usage: kvsteer sweep -m MODEL.gguf --task TASK --traces FILE.jsonl -o DIR [grid] [options]\n"
    "Evaluate every combination of the grid values on a task: one kvsteer eval run\n"
    "file per configuration in DIR/runs, vectors extracted once per (kind, pairs,\n"
    "shots) and cached in DIR/vectors.  Rerunning resumes (finished runs are kept,\n"
    "cached vectors reused).  Then prints kvsteer report over this shard's runs.\n"
    "Pair questions are rendered as the task's evaluation prompts; cache+cot gets\n"
    "its own vectors, extracted with the CoT text as assistant prefix (extract\n"
    "--prefix), so each edit lands where its vector was measured.\n\n"
    "grid (comma-separated lists):\n"
    "      --methods LIST     of baseline, cot, cache, cache+cot, act (default cache)\n"
    "      --pairs LIST       contrastive pairs per vector (default 100)\n"
    "      --shots LIST       few-shot examples per prompt (default 5)\n"
    "      --ck LIST          key coefficients (default 0)\n"
    "      --cv LIST          value coefficients (default 1)\n"
    "      --layers LIST      layer ranges, e.g. 1-,8-20 (default 1-)\n"
    "      --act-layer LIST   activation-steering layers (needed with act)\n"
    "      --act-scale LIST   activation-steering scales (default 1)\n"
    "options:\n"
    "  -m, --model FILE       GGUF model (required)\n"
    "      --task T           gsm8k | arc | csqa | piqa (required)\n"
    "      --traces FILE      trace JSONL for the vectors (required with cache or act)\n"
    "  -o, --out-dir DIR      output directory (required; created if missing)\n"
    "      --shard I/N        run only configurations I, I+N, I+2N, ... (0 <= I < N)\n"
    "      --dry-run          list the configurations (and this shard's) and stop\n"
    "      --data DIR         data directory (default $KVS_DATA, else ../shared/data;\n"
    "                         scripts/fetch_data.sh gets it)\n"
    "      --exclude FILE     questions kept out of the pairs (default: the task's\n"
    "                         evaluation file, DATA/eval/...); 'none' for none\n"
    "      --select S         similar | random few-shot selection (default similar)\n"
    "      --embed-cache DIR, --no-embed-cache\n"
    "                         where similar selection keeps question embeddings between\n"
    "                         extractions (see kvsteer extract --help)\n"
    "      --limit N, --offset-start K, --max-new N (-n, --n-predict), --batch B,\n"
    "      --sampling, --seeds S\n"
    "                         passed to kvsteer eval (see kvsteer eval --help)\n"
    "  -t, --threads N        worker threads (default: all cores)\n"
    "  -q, --quiet            no progress on stderr\n"
    "  -h, --help             this help\n";


typedef struct list {
    char *buf;
    const char *v[MAX_VALS];
    int n;
} list;

static int parse_list(const char *opt, const char *s, int kind, list *l) {
    free(l->buf);
    memset(l, 0, sizeof *l);
    if (!(l->buf = strdup(s))) return cli_error(CMD, "out of memory");
    for (char *save = NULL, *t = strtok_r(l->buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (l->n == MAX_VALS) return cli_error(CMD, "%s: at most %d values", opt, MAX_VALS);
        int iv;
        float fv;
        if (kind == 'i' && cli_int(CMD, opt, t, 0, 1000000, &iv)) return 1;
        if (kind == 'f' && cli_float(CMD, opt, t, -1e4, 1e4, &fv)) return 1;
        if (kind == 'L') { /* A-B, A- or A */
            char *end;
            long a = strtol(t, &end, 10), b;
            int good = end != t && a >= 0;
            if (good && *end == '-' && end[1]) {
                char *e2;
                b = strtol(end + 1, &e2, 10);
                good = e2 != end + 1 && !*e2 && b >= a;
            } else {
                good = good && (!*end || (*end == '-' && !end[1]));
            }
            if (!good) return cli_error(CMD, "%s expects layer ranges A-B, A- or A, got '%s'", opt, t);
        }
        if (kind == 'm') {
            int ok = 0;
            for (int m = 0; m < EVAL_N_METHODS; m++) ok |= !strcmp(t, eval_method_names[m]);
            if (!ok) return cli_error(CMD, "%s: unknown method '%s' (baseline, cot, cache, cache+cot, act)", opt, t);
        }
        for (int i = 0; i < l->n; i++)
            if (!strcmp(l->v[i], t)) return cli_error(CMD, "%s: '%s' given twice", opt, t);
        l->v[l->n++] = t;
    }
    if (l->n == 0) return cli_error(CMD, "%s: empty list", opt);
    return 0;
}

typedef struct config {
    int method;
    const char *pairs, *shots, *ck, *cv, *layers, *act_layer, *act_scale; /* NULL where unused */
} config;

static int add(config **cs, int *n, int *cap, config c) {
    config *nv = grow(*cs, *n, cap, sizeof **cs);
    if (!nv) return cli_error(CMD, "out of memory");
    *cs = nv;
    (*cs)[(*n)++] = c;
    return 0;
}

/* file-name-safe copy: '-' stays, other odd characters become '_' */
static void safe(char *dst, size_t cap, const char *s) {
    size_t i = 0;
    for (; s[i] && i + 1 < cap; i++) {
        const char c = s[i];
        dst[i] = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ? c : c == '+' ? 'p' : '_';
    }
    dst[i] = 0;
}

static void config_name(const char *task, const config *c, char *out, size_t cap) {
    char m[16], ly[48];
    safe(m, sizeof m, eval_method_names[c->method]);
    int at = snprintf(out, cap, "%s-%s", task, m);
    if (c->pairs) at += snprintf(out + at, cap - (size_t)at, "-p%s-s%s", c->pairs, c->shots);
    if (c->cv) {
        safe(ly, sizeof ly, c->layers);
        const size_t l = strlen(ly);
        if (l && ly[l - 1] == '-' && l + 4 < sizeof ly) strcat(ly, "end"); /* "1-": to the last layer */
        at += snprintf(out + at, cap - (size_t)at, "-ck%s-cv%s-L%s", c->ck, c->cv, ly);
    }
    if (c->act_layer) at += snprintf(out + at, cap - (size_t)at, "-al%s-as%s", c->act_layer, c->act_scale);
}

/* FNV-1a over s and a 0xff separator (no file name byte), so "ab"+"c" and "a"+"bc" differ. */
static uint64_t fnv(uint64_t h, const char *s) { return fnv1a(fnv1a(h, s, strlen(s)), "\xff", 1); }

int cmd_sweep(int argc, char **argv) {
    const char *model = NULL, *task_name = NULL, *traces = NULL, *out_dir = NULL, *data = NULL, *exclude = NULL;
    const char *select = "similar", *limit = NULL, *offset_start = NULL, *max_new = NULL, *batch = NULL, *seeds = NULL,
               *threads = NULL, *embed_cache = NULL;
    int shard_i = 0, shard_n = 1, dry = 0, quiet = 0, sampling = 0, tmp, no_embed_cache = 0;
    list methods = {0}, pairs = {0}, shots = {0}, ck = {0}, cv = {0}, layers = {0}, act_layer = {0}, act_scale = {0};
    int rc = 0;
    rc = rc || parse_list("--methods", "cache", 'm', &methods);
    rc = rc || parse_list("--pairs", "100", 'i', &pairs);
    rc = rc || parse_list("--shots", "5", 'i', &shots);
    rc = rc || parse_list("--ck", "0", 'f', &ck);
    rc = rc || parse_list("--cv", "1", 'f', &cv);
    rc = rc || parse_list("--layers", "1-", 'L', &layers);
    rc = rc || parse_list("--act-scale", "1", 'f', &act_scale);
    int act_layer_set = 0;
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'},      {"task", required_argument, 0, 1},
        {"traces", required_argument, 0, 2},       {"out-dir", required_argument, 0, 'o'},
        {"methods", required_argument, 0, 3},      {"pairs", required_argument, 0, 4},
        {"shots", required_argument, 0, 5},        {"ck", required_argument, 0, 6},
        {"cv", required_argument, 0, 7},           {"layers", required_argument, 0, 8},
        {"act-layer", required_argument, 0, 9},    {"act-scale", required_argument, 0, 10},
        {"shard", required_argument, 0, 11},       {"dry-run", no_argument, 0, 12},
        {"data", required_argument, 0, 13},        {"exclude", required_argument, 0, 14},
        {"select", required_argument, 0, 15},      {"limit", required_argument, 0, 16},
        {"offset-start", required_argument, 0, 17}, {"max-new", required_argument, 0, 18}, {"n-predict", required_argument, 0, 18},
        {"batch", required_argument, 0, 19},       {"sampling", no_argument, 0, 20},
        {"seeds", required_argument, 0, 21},       {"threads", required_argument, 0, 't'},
        {"quiet", no_argument, 0, 'q'},            {"help", no_argument, 0, 'h'},
        {"offset", required_argument, 0, 22},      {"embed-cache", required_argument, 0, 23},
        {"no-embed-cache", no_argument, 0, 24},    {0, 0, 0, 0}};
    int o;
    optind = 1;
    opterr = 0;
    while (!rc && (o = getopt_long(argc, argv, ":m:o:t:n:qh", opts, NULL)) != -1) {
        switch (o) {
        case 'm': model = optarg; break;
        case 1: task_name = optarg; break;
        case 2: traces = optarg; break;
        case 'o': out_dir = optarg; break;
        case 3: rc = parse_list("--methods", optarg, 'm', &methods); break;
        case 4: rc = parse_list("--pairs", optarg, 'i', &pairs); break;
        case 5: rc = parse_list("--shots", optarg, 'i', &shots); break;
        case 6: rc = parse_list("--ck", optarg, 'f', &ck); break;
        case 7: rc = parse_list("--cv", optarg, 'f', &cv); break;
        case 8: rc = parse_list("--layers", optarg, 'L', &layers); break;
        case 9: rc = parse_list("--act-layer", optarg, 'i', &act_layer); act_layer_set = 1; break;
        case 10: rc = parse_list("--act-scale", optarg, 'f', &act_scale); break;
        case 11: {
            char *end;
            long a = strtol(optarg, &end, 10), b = -1;
            if (end != optarg && *end == '/') {
                char *e2;
                b = strtol(end + 1, &e2, 10);
                if (e2 == end + 1 || *e2) b = -1;
            }
            if (b < 1 || a < 0 || a >= b || b > 1000000)
                rc = cli_error(CMD, "--shard expects I/N with 0 <= I < N, got '%s'", optarg);
            shard_i = (int)a;
            shard_n = (int)b;
            break;
        }
        case 12: dry = 1; break;
        case 13: data = optarg; break;
        case 14: exclude = optarg; break;
        case 15:
            if (strcmp(optarg, "similar") && strcmp(optarg, "random"))
                rc = cli_error(CMD, "--select expects similar or random, got '%s'", optarg);
            select = optarg;
            break;
        case 16: rc = cli_int(CMD, "--limit", optarg, 1, 1 << 30, &tmp); limit = optarg; break;
        case 17: rc = cli_int(CMD, "--offset-start", optarg, 0, 1 << 30, &tmp); offset_start = optarg; break;
        case 'n':
        case 18: rc = cli_int(CMD, "--max-new", optarg, 1, 1 << 20, &tmp); max_new = optarg; break;
        case 19: rc = cli_int(CMD, "--batch", optarg, 1, 1024, &tmp); batch = optarg; break;
        case 20: sampling = 1; break;
        case 21: rc = cli_int(CMD, "--seeds", optarg, 1, 64, &tmp); seeds = optarg; break;
        case 't': rc = cli_int(CMD, "-t", optarg, 1, 1024, &tmp); threads = optarg; break;
        case 'q': quiet = 1; break;
        case 22: rc = cli_error(CMD, STEER_OPTS_OFFSET_AMBIGUOUS); break;
        case 23:
            if (!optarg[0]) rc = cli_error(CMD, "--embed-cache expects a folder, got ''");
            embed_cache = optarg;
            break;
        case 24: no_embed_cache = 1; break;
        case 'h': fputs(k_help, stdout); goto done;
        case ':': rc = cli_error(CMD, "option %s needs a value", argv[optind - 1]); break;
        default: rc = cli_error(CMD, "unknown option '%s' (see kvsteer sweep --help)", argv[optind - 1]); break;
        }
    }
    if (rc) goto done;
    const eval_task *task = eval_task_find(task_name);
    if (optind < argc) rc = cli_error(CMD, "unexpected argument '%s'", argv[optind]);
    else if (!model || !task_name || (!out_dir && !dry))
        rc = cli_error(CMD, "-m MODEL, --task and -o DIR are required (see --help)");
    else if (!task) rc = cli_error(CMD, "unknown --task '%s' (one of " EVAL_TASK_NAMES ")", task_name);
    else if (seeds && !sampling) rc = cli_error(CMD, "--seeds needs --sampling");
    else if (embed_cache && no_embed_cache) rc = cli_error(CMD, "--embed-cache and --no-embed-cache contradict each other");
    if (rc) goto done;
    int want[EVAL_N_METHODS] = {0};
    for (int i = 0; i < methods.n; i++)
        for (int m = 0; m < EVAL_N_METHODS; m++) want[m] |= !strcmp(methods.v[i], eval_method_names[m]);
    const int need_vec = want[EVAL_CACHE] || want[EVAL_CACHE_COT] || want[EVAL_ACT];
    if (need_vec && !traces) {
        rc = cli_error(CMD, "--traces FILE is needed to extract vectors for cache and act");
        goto done;
    }
    if (want[EVAL_ACT] && !act_layer_set) {
        rc = cli_error(CMD, "the act method needs --act-layer LIST");
        goto done;
    }
    if (!(data = cli_data_dir(CMD, data))) {
        rc = 1;
        goto done;
    }
    char excl[4096];
    if (!exclude) {
        snprintf(excl, sizeof excl, "%s/eval/%s", data, task->file);
        exclude = excl;
    } else if (!strcmp(exclude, "none")) {
        exclude = NULL;
    }

    /* the grid, in a fixed order: every shard enumerates the same list */
    config *cs = NULL;
    int n = 0, cap = 0;
    for (int m = 0; m < EVAL_N_METHODS && !rc; m++) {
        if (!want[m]) continue;
        if (m == EVAL_BASELINE || m == EVAL_COT) {
            rc = add(&cs, &n, &cap, (config){m, 0, 0, 0, 0, 0, 0, 0});
            continue;
        }
        for (int p = 0; p < pairs.n && !rc; p++)
            for (int s = 0; s < shots.n && !rc; s++) {
                if (m == EVAL_ACT) {
                    for (int al = 0; al < act_layer.n && !rc; al++)
                        for (int as = 0; as < act_scale.n && !rc; as++)
                            rc = add(&cs, &n, &cap,
                                     (config){m, pairs.v[p], shots.v[s], 0, 0, 0, act_layer.v[al], act_scale.v[as]});
                    continue;
                }
                for (int a = 0; a < ck.n && !rc; a++)
                    for (int b = 0; b < cv.n && !rc; b++)
                        for (int l = 0; l < layers.n && !rc; l++)
                            rc = add(&cs, &n, &cap,
                                     (config){m, pairs.v[p], shots.v[s], ck.v[a], cv.v[b], layers.v[l], 0, 0});
            }
    }
    if (rc) goto free_cs;
    if (dry) {
        printf("%d configurations; shard %d/%d runs %s\n", n, shard_i, shard_n, n > shard_i ? "these:" : "none");
        for (int i = 0; i < n; i++) {
            char name[512];
            config_name(task->name, &cs[i], name, sizeof name);
            printf("%s %4d  %s\n", i % shard_n == shard_i ? "*" : " ", i, name);
        }
        rc = fflush(stdout) ? 1 : 0;
        goto free_cs;
    }
    /* a vector file's name carries its settings and a hash of its inputs, so a
     * cached file is reused only for the same model, traces and exclusions */
    char vtag[32] = "";
    if (need_vec) {
        kvs_error err = {0};
        char fm[17], ft[17], fe[17] = "-";
        if (eval_file_fingerprint(model, fm, &err) || eval_file_fingerprint(traces, ft, &err) ||
            (exclude && eval_file_fingerprint(exclude, fe, &err))) {
            rc = cli_error(CMD, "%s", err.msg);
            goto free_cs;
        }
        uint64_t h = FNV1A_INIT;
        h = fnv(fnv(fnv(fnv(h, fm), ft), fe), select);
        /* pairs rendered in a format other than the one vectors had before
         * pairs followed the task (CSQA): another tag, so no stale vector is reused */
        if (task->choices_header && strcmp(task->choices_header, EVAL_CHOICES_HEADER)) h = fnv(h, task->name);
        snprintf(vtag, sizeof vtag, "%08llx", (unsigned long long)(h & 0xffffffffull));
    }
    char vdir[4200], rdir[4200];
    snprintf(vdir, sizeof vdir, "%s/vectors", out_dir);
    snprintf(rdir, sizeof rdir, "%s/runs", out_dir);
    if ((rc = cli_check_output_dir(CMD, vdir) || cli_check_output_dir(CMD, rdir))) goto free_cs;

    char tbase[128];
    if (traces) {
        safe(tbase, sizeof tbase, cli_basename(traces));
        char *dot = strrchr(tbase, '.');
        if (dot && dot != tbase) *dot = 0;
    }
    int mine = 0, ran = 0;
    for (int i = shard_i; i < n; i += shard_n) mine++;
    char **runs = calloc((size_t)(mine ? mine : 1) + 2, sizeof *runs);
    if (!runs) {
        rc = cli_error(CMD, "out of memory");
        goto free_cs;
    }
    kvs_model *mdl = NULL;
    kvs_error err = {0};
    for (int i = shard_i; i < n && !rc; i += shard_n) {
        const config *c = &cs[i];
        char name[512], vec[4800] = "", run[4800];
        config_name(task->name, c, name, sizeof name);
        snprintf(run, sizeof run, "%s/%s.jsonl", rdir, name);
        if (!quiet) fprintf(stderr, "[sweep] configuration %d of %d (%d/%d in this shard): %s\n", i, n, ran + 1, mine, name);
        if (c->pairs) {
            const int act = c->method == EVAL_ACT, cot = c->method == EVAL_CACHE_COT;
            snprintf(vec, sizeof vec, "%s/%s-%s-p%s-s%s-%s.gguf", vdir, act ? "act" : cot ? "cachecot" : "cache", tbase,
                     c->pairs, c->shots, vtag);
            struct stat st;
            if (stat(vec, &st) || st.st_size == 0) {
                /* another shard may be extracting the same vector: both write
                 * through a temporary file and a rename, so the file is whole */
                char *av[32];
                int ac = 0;
                av[ac++] = "extract", av[ac++] = "-m", av[ac++] = (char *)model, av[ac++] = "--traces",
                av[ac++] = (char *)traces;
                av[ac++] = "--pairs", av[ac++] = (char *)c->pairs, av[ac++] = "--shots", av[ac++] = (char *)c->shots;
                av[ac++] = "--select", av[ac++] = (char *)select, av[ac++] = "-o", av[ac++] = vec;
                if (act) av[ac++] = "--kind", av[ac++] = "act";
                if (cot) av[ac++] = "--prefix", av[ac++] = EVAL_COT_TEXT;
                av[ac++] = "--task", av[ac++] = (char *)task->name;
                if (exclude) av[ac++] = "--exclude", av[ac++] = (char *)exclude;
                if (threads) av[ac++] = "-t", av[ac++] = (char *)threads;
                if (embed_cache) av[ac++] = "--embed-cache", av[ac++] = (char *)embed_cache;
                if (no_embed_cache) av[ac++] = "--no-embed-cache";
                if (quiet) av[ac++] = "-q";
                av[ac] = NULL;
                if (cli_call(cmd_extract, ac, av)) {
                    rc = 1;
                    break;
                }
            }
        }
        if (!mdl && !(mdl = kvs_model_load(model, &err))) {
            rc = cli_error(CMD, "%s", err.msg);
            break;
        }
        steer_opts so;
        steer_opts_init(&so);
        if (c->cv)
            rc = steer_opts_parse(&so, "eval", "steer", vec) < 0 || steer_opts_parse(&so, "eval", "ck", c->ck) < 0 ||
                 steer_opts_parse(&so, "eval", "cv", c->cv) < 0 || steer_opts_parse(&so, "eval", "layers", c->layers) < 0;
        if (c->act_layer)
            rc = steer_opts_parse(&so, "eval", "act", vec) < 0 ||
                 steer_opts_parse(&so, "eval", "act-layer", c->act_layer) < 0 ||
                 steer_opts_parse(&so, "eval", "act-scale", c->act_scale) < 0;
        if (!rc && !(rc = steer_opts_load(&so, "eval", mdl) != 0)) {
            eval_config ec;
            eval_config_init(&ec);
            ec.model = mdl;
            ec.model_path = model;
            ec.task = task;
            ec.method = (eval_method)c->method;
            ec.data_dir = data;
            ec.out_path = run;
            if (limit) ec.limit = atoi(limit);
            if (offset_start) ec.offset_start = atoi(offset_start);
            if (max_new) ec.max_new = atoi(max_new);
            if (batch) ec.batch = atoi(batch);
            ec.sampling = sampling;
            if (seeds) ec.n_seeds = atoi(seeds);
            if (threads) ec.n_threads = atoi(threads);
            /* the result line would interleave with this command's table: stderr */
            rc = cli_eval(&ec, &so, quiet, stderr);
        }
        steer_opts_free(&so);
        if (rc) break;
        if (!(runs[ran++] = strdup(run))) rc = cli_error(CMD, "out of memory");
    }
    if (!rc && ran > 0) {
        /* this shard's table; over every shard's files it is the whole sweep */
        char *av[4] = {"report", NULL};
        char **rav = calloc((size_t)ran + 2, sizeof *rav);
        if (!rav) rc = cli_error(CMD, "out of memory");
        else {
            rav[0] = av[0];
            for (int i = 0; i < ran; i++) rav[i + 1] = runs[i];
            rc = cmd_report(ran + 1, rav);
            free(rav);
        }
    } else if (!rc && !quiet) {
        fprintf(stderr, "[sweep] shard %d/%d: no configurations (%d in the grid)\n", shard_i, shard_n, n);
    }
    for (int i = 0; i < ran; i++) free(runs[i]);
    free(runs);
    kvs_model_free(mdl);
free_cs:
    free(cs);
done:
    free(methods.buf), free(pairs.buf), free(shots.buf), free(ck.buf), free(cv.buf), free(layers.buf);
    free(act_layer.buf), free(act_scale.buf);
    return rc ? 1 : 0;
}
