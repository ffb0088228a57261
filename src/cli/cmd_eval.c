/* `kvsteer eval`: the paper's evaluation protocol (docs/EVALUATION.md) on one
 * task and one method: the options become an eval_config for eval_run
 * (src/eval/eval.h), which writes the resumable run file (src/eval/runfile.h);
 * this file adds the progress line, the result line and which option to
 * change when the run fails. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "eval/eval.h"
#include "cli.h"
#include "progress.h"
#include "steer_opts.h"

#define CMD "eval"

static const char *k_help =
    "usage: kvsteer eval -m MODEL.gguf --task TASK --method METHOD -o RUN.jsonl [options]\n"
    "Answer the questions of an evaluation set, extract the answers and score them;\n"
    "one JSON line per sample, then a summary line.  An existing RUN.jsonl written\n"
    "with the same configuration is continued (samples present are skipped).\n\n"
    "  -m, --model FILE       GGUF model (required)\n"
    "      --task T           gsm8k | arc | csqa | piqa (required)\n"
    "      --method M         baseline | cot | cache | cache+cot | act (required)\n"
    "      --data DIR         data directory holding eval/*.jsonl (default $KVS_DATA, else\n"
    "                         ../shared/data; scripts/fetch_data.sh gets it)\n"
    "  -o, --output FILE      run file, JSON Lines (required)\n"
    "      --overwrite        start FILE afresh even if it holds another configuration\n"
    "      --limit N          evaluate N questions (default: all)\n"
    "      --offset-start K   start at question K, 0-based (default 0)\n"
    "      --every N          every N-th question from K (default 1): N processes with\n"
    "                         --offset-start 0..N-1 --every N share a set in shards of\n"
    "                         the same mix of questions, so they end together\n"
    "  -n, --max-new N        most generated tokens per answer (default 768; --n-predict N too)\n"
    "      --batch B          sequences decoded together (default 16; results do not depend on it)\n"
    "      --sampling         sample (temperature 0.6, top-p 0.9, top-k 50) instead of greedy\n"
    "      --seeds S          with --sampling: seeds 0..S-1 (default 5)\n"
    "      --temp T --top-p P --top-k K   sampling settings (with --sampling)\n"
    CLI_MIN_P_HELP
    "                         (with --sampling)\n"
    CLI_SAMPLING_HELP
    "                         (both greedy or with --sampling; recorded in the run\n"
    "                         file's configuration when the penalty is on)\n"
    "  -t, --threads N        worker threads (default: all cores)\n"
    "  -c, --ctx N            context per sequence (default: what the longest prompt needs)\n"
    "      --kv-f16           keep the KV cache as IEEE half: half its memory (not faster\n"
    "                         here); recorded in the run's configuration\n"
    "  -q, --quiet            no progress on stderr\n"
    "  -h, --help             this help\n"
    "methods: baseline = plain chat prompt; cot = the assistant turn starts with\n"
    "\"" EVAL_COT_TEXT "\"; cache = one-shot KV-cache steering (--steer); cache+cot = both;\n"
    "act = continuous activation steering (--act, --act-layer, --act-scale).\n"
    "The offset token is a space for gsm8k and a newline otherwise with cache steering,\n"
    "none otherwise, unless --offset-token is given.\n"
    "steering:\n";

typedef struct display {
    progress pg;
    char label[64];
    const char *out_path;
    int quiet;
} display;

static void on_progress(const eval_progress *p, void *user) {
    display *d = user;
    if (p->phase == EVAL_OPENED) {
        if (p->dropped_truncated && !d->quiet)
            fprintf(stderr, "kvsteer eval: %s: dropped a truncated last line\n", d->out_path);
        progress_init(&d->pg, d->label, d->quiet);
        progress_set_base(&d->pg, p->done);
    } else if (p->phase == EVAL_DECODING) {
        progress_update(&d->pg, p->done, p->total, "samples", NULL);
    } else {
        char extra[96];
        const double el = progress_now() - d->pg.t0;
        snprintf(extra, sizeof extra, "acc %.1f%%  %.1f tok/s", 100.0 * p->new_correct / p->new_done,
                 el > 0 ? p->new_tokens / el : 0.0);
        progress_update(&d->pg, p->done, p->total, "samples", extra);
    }
}

/* The result line: accuracy by extractor, no-answer share, tokens and speed. */
static void print_result(FILE *out, const eval_config *ec, const cJSON *sum) {
    const cJSON *acc = cJSON_GetObjectItemCaseSensitive(sum, "accuracy");
    const cJSON *sd = cJSON_GetObjectItemCaseSensitive(sum, "accuracy_std");
    fprintf(out, "%s %s: n=%d", ec->task->name, eval_method_names[ec->method],
            cJSON_GetObjectItemCaseSensitive(sum, "n")->valueint);
    const cJSON *in_file = cJSON_GetObjectItemCaseSensitive(sum, "samples_in_file");
    if (in_file) fprintf(out, " (of %d in the file)", in_file->valueint);
    for (const cJSON *a = acc ? acc->child : NULL; a; a = a->next) {
        const cJSON *d = sd ? cJSON_GetObjectItemCaseSensitive(sd, a->string) : NULL;
        fprintf(out, "  %s %.1f%%", a->string, 100.0 * a->valuedouble);
        if (d) fprintf(out, " +- %.1f", 100.0 * d->valuedouble);
    }
    /* tokens per second of the whole batch, the unit of the progress line */
    const double ms = cJSON_GetObjectItemCaseSensitive(sum, "ms_per_token")->valuedouble;
    fprintf(out, "  no answer %.1f%%  %.1f tokens/answer  %.1f tok/s  -> %s\n",
            100.0 * cJSON_GetObjectItemCaseSensitive(sum, "invalid")->valuedouble,
            cJSON_GetObjectItemCaseSensitive(sum, "mean_generated_tokens")->valuedouble, ms > 0 ? 1000 / ms : 0.0,
            ec->out_path);
}

int cli_eval(eval_config *ec, const steer_opts *so, int quiet, FILE *out) {
    ec->n_steer = so->n;
    for (int i = 0; i < so->n; i++) ec->steer[i] = (eval_vector){so->path[i], so->vec[i], so->p[i]};
    if (so->act) {
        ec->act = (eval_vector){.path = so->act_path, .vec = so->act};
        ec->act_layer = so->act_layer;
        ec->act_scale = so->act_scale;
    }
    ec->offset = so->offset;
    /* cache+cot edits the last token of the CoT text: a vector measured at the
     * end of the bare generation prompt is applied where it was not measured
     * (and the other way round); the run records each vector's prefix */
    const int cot = ec->method == EVAL_CACHE_COT;
    for (int i = 0; i < so->n; i++) {
        const char *pre = kvs_steer_meta(so->vec[i], "kvsteer.extract.prefix");
        if (!pre) pre = "";
        if (strcmp(pre, cot ? EVAL_COT_TEXT : ""))
            fprintf(stderr,
                    "kvsteer eval: warning: %s was extracted with assistant prefix \"%s\" but method %s applies it "
                    "after \"%s\": the edit lands where the vector was not measured (extract with --prefix \"%s\")\n",
                    so->path[i], pre, eval_method_names[ec->method], cot ? EVAL_COT_TEXT : "",
                    cot ? EVAL_COT_TEXT : "");
    }
    display d = {.out_path = ec->out_path, .quiet = quiet};
    snprintf(d.label, sizeof d.label, "eval %s %s", ec->task->name, eval_method_names[ec->method]);
    ec->progress = on_progress;
    ec->user = &d;
    kvs_error err = {0};
    eval_result res;
    if (eval_run(ec, &res, &err)) {
        switch (res.fault) {
        case EVAL_FAULT_RUN_FILE:
            if (err.code == KVS_E_MISMATCH || err.code == KVS_E_FORMAT)
                return cli_error(CMD, "%s; use --overwrite or another -o", err.msg);
            break;
        case EVAL_FAULT_OFFSET_START: return cli_error(CMD, "--offset-start %d: %s", ec->offset_start, err.msg);
        case EVAL_FAULT_OFFSET: return cli_error(CMD, "--offset-token: %s", err.msg);
        case EVAL_FAULT_CONTEXT: return cli_error(CMD, "%s; use --ctx", err.msg);
        case EVAL_FAULT_NONE: break;
        }
        return cli_error(CMD, "%s", err.msg);
    }
    if (!quiet && res.prompts_shared)
        fprintf(stderr, "[eval] %d samples took their prompt from another seed's cache instead of prefilling it\n",
                res.prompts_shared);
    print_result(out, ec, res.summary);
    cJSON_Delete(res.summary);
    return fflush(out) ? 1 : 0;
}

int cmd_eval(int argc, char **argv) {
    const char *model = NULL, *task_name = NULL, *data = NULL, *method_name = NULL, *out_path = NULL;
    eval_config ec;
    eval_config_init(&ec);
    int quiet = 0, seeds_set = 0, samp_set = 0, act_scale_set = 0;
    steer_opts so;
    steer_opts_init(&so);
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'},     {"task", required_argument, 0, 1},
        {"data", required_argument, 0, 2},        {"method", required_argument, 0, 3},
        {"output", required_argument, 0, 'o'},    {"overwrite", no_argument, 0, 4},
        {"limit", required_argument, 0, 5},       {"offset-start", required_argument, 0, 6},
        {"every", required_argument, 0, 15},
        {"max-new", required_argument, 0, 7}, {"n-predict", required_argument, 0, 7},     {"batch", required_argument, 0, 8},
        {"sampling", no_argument, 0, 9},          {"seeds", required_argument, 0, 10},
        {"temp", required_argument, 0, 11},       {"top-p", required_argument, 0, 12},
        {"top-k", required_argument, 0, 13},      {"threads", required_argument, 0, 't'},
        {"ctx", required_argument, 0, 'c'},       {"quiet", no_argument, 0, 'q'},
        {"steer", required_argument, 0, 1000},    {"ck", required_argument, 0, 1000},
        {"cv", required_argument, 0, 1000},       {"layers", required_argument, 0, 1000},
        {"act", required_argument, 0, 1000},      {"act-layer", required_argument, 0, 1000},
        {"act-scale", required_argument, 0, 1000}, {"offset", required_argument, 0, 1000}, {"offset-token", required_argument, 0, 1000},
        {"kv-f16", no_argument, 0, 14},           CLI_SAMPLING_OPTS, {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    int o, li = 0;
    optind = 1;
    opterr = 0;
    while ((o = getopt_long(argc, argv, ":m:o:t:c:n:qh", opts, &li)) != -1) {
        switch (o) {
        case 'm': model = optarg; break;
        case 1: task_name = optarg; break;
        case 2: data = optarg; break;
        case 3: method_name = optarg; break;
        case 'o': out_path = optarg; break;
        case 4: ec.overwrite = 1; break;
        case 5: if (cli_int(CMD, "--limit", optarg, 1, 1 << 30, &ec.limit)) return 1; break;
        case 6: if (cli_int(CMD, "--offset-start", optarg, 0, 1 << 30, &ec.offset_start)) return 1; break;
        case 'n':
        case 7: if (cli_int(CMD, "--max-new", optarg, 1, 1 << 20, &ec.max_new)) return 1; break;
        case 8: if (cli_int(CMD, "--batch", optarg, 1, 1024, &ec.batch)) return 1; break;
        case 9: ec.sampling = 1; break;
        case 10: if (cli_int(CMD, "--seeds", optarg, 1, 64, &ec.n_seeds)) return 1; seeds_set = 1; break;
        case 11: if (cli_float(CMD, "--temp", optarg, 1e-3, 100, &ec.sp.temperature)) return 1; samp_set = 1; break;
        case 12: if (cli_float(CMD, "--top-p", optarg, 1e-6, 1, &ec.sp.top_p)) return 1; samp_set = 1; break;
        case 13: if (cli_int(CMD, "--top-k", optarg, 0, 1 << 24, &ec.sp.top_k)) return 1; samp_set = 1; break;
        case 't': if (cli_int(CMD, "-t", optarg, 1, 1024, &ec.n_threads)) return 1; break;
        case 'c': if (cli_int(CMD, "--ctx", optarg, 8, 1 << 24, &ec.n_ctx)) return 1; break;
        case 'q': quiet = 1; break;
        case 14: ec.kv_f16 = 1; break;
        case 15: if (cli_int(CMD, "--every", optarg, 1, 1 << 30, &ec.every)) return 1; break;
        case 1100: case 1101: case 1102:
            if (cli_sampling_opt(CMD, o, optarg, &ec.sp)) return 1;
            if (o == 1102) samp_set = 1;
            break;
        case 1000:
            if (steer_opts_parse(&so, CMD, opts[li].name, optarg) < 0) return 1;
            if (!strcmp(opts[li].name, "act-scale")) act_scale_set = 1;
            break;
        case 'h': fputs(k_help, stdout); fputs(steer_opts_help, stdout); return 0;
        case ':': return cli_error(CMD, "option %s needs a value", argv[optind - 1]);
        default: return cli_error(CMD, "unknown option '%s' (see kvsteer eval --help)", argv[optind - 1]);
        }
    }
    if (optind < argc) return cli_error(CMD, "unexpected argument '%s'", argv[optind]);
    if (!model || !task_name || !method_name || !out_path)
        return cli_error(CMD, "-m MODEL, --task, --method and -o RUN.jsonl are required (see --help)");
    const eval_task *task = eval_task_find(task_name);
    if (!task) return cli_error(CMD, "unknown --task '%s' (one of " EVAL_TASK_NAMES ")", task_name);
    const int method = eval_method_find(method_name);
    if (method < 0) return cli_error(CMD, "unknown --method '%s' (" EVAL_METHOD_NAMES ")", method_name);
    const int cache = method == EVAL_CACHE || method == EVAL_CACHE_COT;
    if (cache && so.n == 0) return cli_error(CMD, "--method %s needs --steer VEC", method_name);
    if (!cache && so.n > 0) return cli_error(CMD, "--steer is used only by --method cache or cache+cot");
    if (method == EVAL_ACT && !so.act_path)
        return cli_error(CMD, "--method act needs --act VEC (and --act-layer L for a kvsteer act file; --act-scale C "
                              "defaults to 1)");
    if (method != EVAL_ACT && (so.act_path || so.act_layer >= 0 || act_scale_set))
        return cli_error(CMD, "--act, --act-layer and --act-scale are used only by --method act");
    if (!ec.sampling && (seeds_set || samp_set))
        return cli_error(CMD, "--seeds, --temp, --top-p, --top-k and --min-p need --sampling");
    if (!(data = cli_data_dir(CMD, data))) return 1;

    kvs_error err = {0};
    kvs_model *m = kvs_model_load(model, &err);
    int rc = 1;
    if (!m) cli_error(CMD, "%s", err.msg);
    else if (!steer_opts_load(&so, CMD, m)) {
        ec.model = m;
        ec.model_path = model;
        ec.task = task;
        ec.method = method;
        ec.data_dir = data;
        ec.out_path = out_path;
        rc = cli_eval(&ec, &so, quiet, stdout);
    }
    steer_opts_free(&so);
    kvs_model_free(m);
    return rc;
}
