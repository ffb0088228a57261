/* `kvsteer styles`: style transfer (docs/STYLES.md).  For each style
 * vector, steered greedy answers to ARC-Challenge questions (through `kvsteer
 * eval`, so the runs are ordinary resumable run files), then the share of
 * answers showing each reasoning structure (src/style.c): a table of vector
 * used x structure detected, as Markdown and JSON. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval/eval.h"
#include "eval/runfile.h"
#include "eval/runstats.h"
#include "engine/grow.h"
#include "eval/style.h"
#include "cli.h"
#include "steer_opts.h"

#define CMD "styles"
#define MAX_ROWS 32

static const char *k_help =
    "usage: kvsteer styles -m MODEL.gguf --vec VEC.gguf [--vec ...] -o DIR [options]\n"
    "       kvsteer styles --runs RUN.jsonl [RUN.jsonl ...] -o DIR\n"
    "Style transfer: answer ARC-Challenge questions greedily, steered by each vector\n"
    "(and unsteered as a control), and count which reasoning structures the answers\n"
    "show: stepwise, strategy_execution, causal_chain, annotated_deduction,\n"
    "analogical_reasoning (docs/STYLES.md).  Prints a Markdown table of vector used x\n"
    "structure detected (share of answers), and a second one of answers holding at\n"
    "least one surface marker of each style; writes DIR/styles.md, DIR/styles.json;\n"
    "the runs go to DIR/runs/LABEL.jsonl (kvsteer eval run files: rerunning resumes).\n"
    "A vector whose file name contains a style name is labelled with that style.\n\n"
    "  -m, --model FILE       GGUF model (required unless --runs)\n"
    "      --vec FILE         cache-steering vector file (repeatable, at most 16)\n"
    "      --runs             the arguments are existing run files: tabulate them only\n"
    "  -o, --out-dir DIR      output directory (required; created if missing)\n"
    "      --limit N          ARC questions (default 20)\n"
    "      --offset-start K   first question, 0-based (default 0)\n"
    "      --cv Y             value coefficient (default 6, the paper's style setting)\n"
    "      --ck X             key coefficient (default 0)\n"
    "      --layers A-B       layers to edit (default 1-)\n"
    "  -n, --max-new N        most generated tokens per answer (default 256; --n-predict N too)\n"
    "      --no-baseline      leave out the unsteered control row\n"
    "      --data DIR         data directory (default $KVS_DATA, else ../shared/data;\n"
    "                         scripts/fetch_data.sh gets it)\n"
    "      --batch B          sequences decoded together (default 16)\n"
    "  -t, --threads N        worker threads (default: all cores)\n"
    "  -q, --quiet            no progress on stderr\n"
    "  -h, --help             this help\n";

typedef struct row {
    char label[128];
    char run[1024];
    int n, shows[STYLE_N], none, capped;
    int marks[STYLE_N], no_marks; /* at least one surface marker (style_markers) */
    int intended; /* style index or -1 */
    double accuracy, tokens;
} row;

static int tabulate(const style_detector *d, row *r) {
    run_file rf;
    kvs_error err = {0};
    if (run_file_load(r->run, RUN_LOAD_SAMPLES, &rf, &err)) return cli_error(CMD, "%s", err.msg);
    int rc = 0, correct = 0;
    double tokens = 0;
    const cJSON *s;
    cJSON_ArrayForEach(s, rf.samples) {
        const cJSON *resp = cJSON_GetObjectItemCaseSensitive(s, "response");
        if (!cJSON_IsString(resp)) {
            rc = cli_error(CMD, "%s: sample '%s' has no response text", r->run,
                           cJSON_GetObjectItemCaseSensitive(s, "id")->valuestring);
            break;
        }
        const unsigned bits = style_detect(d, resp->valuestring, NULL), mk = style_markers(d, resp->valuestring);
        for (int k = 0; k < STYLE_N; k++) r->shows[k] += (bits >> k) & 1, r->marks[k] += (mk >> k) & 1;
        r->none += bits == 0;
        r->no_marks += mk == 0;
        const cJSON *stop = cJSON_GetObjectItemCaseSensitive(s, "stop");
        r->capped += cJSON_IsString(stop) && !strcmp(stop->valuestring, "max_new");
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(s, "correct");
        correct += cJSON_IsTrue(cJSON_IsObject(c) ? c->child : c); /* the primary extractor */
        const cJSON *gt = cJSON_GetObjectItemCaseSensitive(s, "generated_tokens");
        tokens += cJSON_IsNumber(gt) ? gt->valuedouble : 0;
        r->n++;
    }
    r->accuracy = r->n ? (double)correct / r->n : 0;
    r->tokens = r->n ? tokens / r->n : 0;
    run_file_free(&rf);
    return rc;
}

/* One table of vectors x styles, the vector's own style in bold: the share of
 * answers showing each structure and the run's totals, or (marks) the share
 * holding at least one of its surface markers. */
static void md_table(strbuf *b, const row *rows, int n, const char *title, int marks) {
    sb_printf(b, "%s\n\n| vector | n |", title);
    for (int k = 0; k < STYLE_N; k++) sb_printf(b, " %s |", style_names[k]);
    sb_add(b, marks ? " none |\n|---|---|" : " none | hit max-new | accuracy | mean tokens |\n|---|---|");
    for (int k = 0; k < STYLE_N + (marks ? 1 : 4); k++) sb_add(b, "---|");
    sb_add(b, "\n");
    for (int i = 0; i < n; i++) {
        const row *r = &rows[i];
        const int *counts = marks ? r->marks : r->shows;
        sb_printf(b, "| %s | %d |", r->label, r->n);
        for (int k = 0; k < STYLE_N; k++) {
            const char *bold = k == r->intended ? "**" : "";
            sb_printf(b, " %s%.0f%%%s |", bold, 100.0 * counts[k] / r->n, bold);
        }
        if (marks)
            sb_printf(b, " %.0f%% |\n", 100.0 * r->no_marks / r->n);
        else
            sb_printf(b, " %.0f%% | %.0f%% | %.1f%% | %.1f |\n", 100.0 * r->none / r->n, 100.0 * r->capped / r->n,
                      100.0 * r->accuracy, r->tokens);
    }
}

static char *render_md(const row *rows, int n) {
    strbuf b = {0};
    md_table(&b, rows, n, "Structure shown (share of answers; the vector's own style in bold):", 0);
    sb_add(&b, "\n");
    md_table(&b, rows, n, "Markers present (at least one surface marker of the style, share of answers):", 1);
    if (b.oom) {
        sb_free(&b);
        return NULL;
    }
    return b.p;
}

static cJSON *render_json(const row *rows, int n, const cJSON *settings) {
    cJSON *j = cJSON_CreateObject();
    cJSON *names = cJSON_AddArrayToObject(j, "structures");
    for (int k = 0; k < STYLE_N; k++) cJSON_AddItemToArray(names, cJSON_CreateString(style_names[k]));
    cJSON_AddItemToObject(j, "settings", settings ? cJSON_Duplicate(settings, 1) : cJSON_CreateNull());
    cJSON *arr = cJSON_AddArrayToObject(j, "rows");
    for (int i = 0; i < n; i++) {
        const row *r = &rows[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "vector", r->label);
        cJSON_AddStringToObject(o, "run", r->run);
        if (r->intended >= 0) cJSON_AddStringToObject(o, "intended", style_names[r->intended]);
        else cJSON_AddNullToObject(o, "intended");
        cJSON_AddNumberToObject(o, "n", r->n);
        cJSON *sh = cJSON_AddObjectToObject(o, "share");
        for (int k = 0; k < STYLE_N; k++) cJSON_AddNumberToObject(sh, style_names[k], (double)r->shows[k] / r->n);
        cJSON_AddNumberToObject(o, "none", (double)r->none / r->n);
        cJSON *mk = cJSON_AddObjectToObject(o, "marker_share");
        for (int k = 0; k < STYLE_N; k++) cJSON_AddNumberToObject(mk, style_names[k], (double)r->marks[k] / r->n);
        cJSON_AddNumberToObject(o, "no_markers", (double)r->no_marks / r->n);
        cJSON_AddNumberToObject(o, "hit_max_new", (double)r->capped / r->n);
        if (r->intended >= 0) {
            cJSON_AddNumberToObject(o, "intended_share", (double)r->shows[r->intended] / r->n);
            cJSON_AddNumberToObject(o, "intended_marker_share", (double)r->marks[r->intended] / r->n);
        }
        cJSON_AddNumberToObject(o, "accuracy", r->accuracy);
        cJSON_AddNumberToObject(o, "mean_generated_tokens", r->tokens);
        cJSON_AddItemToArray(arr, o);
    }
    return j;
}

static void set_label(row *r, const char *file, int i, const row *rows) {
    const char *b = cli_basename(file);
    const int st = style_in_name(b);
    r->intended = st;
    if (st >= 0) snprintf(r->label, sizeof r->label, "%s", style_names[st]);
    else {
        snprintf(r->label, sizeof r->label, "%s", b);
        char *dot = strrchr(r->label, '.');
        if (dot && dot != r->label) *dot = 0;
    }
    for (int j = 0; j < i; j++)
        if (!strcmp(rows[j].label, r->label)) {
            const size_t l = strlen(r->label);
            snprintf(r->label + l, sizeof r->label - l, "-%d", i);
            break;
        }
}

int cmd_styles(int argc, char **argv) {
    const char *model = NULL, *out_dir = NULL, *data = NULL, *layers = NULL;
    const char *limit = "20", *offset_start = "0", *cv = "6", *ck = "0", *max_new = "256", *batch = NULL, *threads = NULL;
    const char *vecs[16];
    int n_vec = 0, runs_mode = 0, baseline = 1, quiet = 0, tmp;
    float ftmp;
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'},   {"vec", required_argument, 0, 1},
        {"runs", no_argument, 0, 2},            {"out-dir", required_argument, 0, 'o'},
        {"limit", required_argument, 0, 3},     {"offset-start", required_argument, 0, 4},
        {"cv", required_argument, 0, 5},        {"ck", required_argument, 0, 6},
        {"layers", required_argument, 0, 7},    {"max-new", required_argument, 0, 8}, {"n-predict", required_argument, 0, 8},
        {"no-baseline", no_argument, 0, 9},     {"data", required_argument, 0, 10},
        {"batch", required_argument, 0, 11},    {"threads", required_argument, 0, 't'},
        {"quiet", no_argument, 0, 'q'},         {"help", no_argument, 0, 'h'},
        {"offset", required_argument, 0, 12},   {0, 0, 0, 0}};
    int o;
    optind = 1;
    opterr = 0;
    while ((o = getopt_long(argc, argv, ":m:o:t:n:qh", opts, NULL)) != -1) {
        switch (o) {
        case 'm': model = optarg; break;
        case 1:
            if (n_vec == 16) return cli_error(CMD, "at most 16 --vec files");
            vecs[n_vec++] = optarg;
            break;
        case 2: runs_mode = 1; break;
        case 'o': out_dir = optarg; break;
        case 3: if (cli_int(CMD, "--limit", optarg, 1, 1 << 30, &tmp)) return 1; limit = optarg; break;
        case 4: if (cli_int(CMD, "--offset-start", optarg, 0, 1 << 30, &tmp)) return 1; offset_start = optarg; break;
        case 5: if (cli_float(CMD, "--cv", optarg, -1e4, 1e4, &ftmp)) return 1; cv = optarg; break;
        case 6: if (cli_float(CMD, "--ck", optarg, -1e4, 1e4, &ftmp)) return 1; ck = optarg; break;
        case 7: layers = optarg; break;
        case 'n':
        case 8: if (cli_int(CMD, "--max-new", optarg, 1, 1 << 20, &tmp)) return 1; max_new = optarg; break;
        case 9: baseline = 0; break;
        case 10: data = optarg; break;
        case 11: if (cli_int(CMD, "--batch", optarg, 1, 1024, &tmp)) return 1; batch = optarg; break;
        case 't': if (cli_int(CMD, "-t", optarg, 1, 1024, &tmp)) return 1; threads = optarg; break;
        case 'q': quiet = 1; break;
        case 12: return cli_error(CMD, STEER_OPTS_OFFSET_AMBIGUOUS);
        case 'h': fputs(k_help, stdout); return 0;
        case ':': return cli_error(CMD, "option %s needs a value", argv[optind - 1]);
        default: return cli_error(CMD, "unknown option '%s' (see kvsteer styles --help)", argv[optind - 1]);
        }
    }
    if (!out_dir) return cli_error(CMD, "-o DIR is required (see --help)");
    if (runs_mode) {
        if (n_vec || model) return cli_error(CMD, "--runs tabulates existing run files: no -m or --vec");
        if (optind == argc) return cli_error(CMD, "--runs needs at least one RUN.jsonl");
        if (argc - optind > MAX_ROWS) return cli_error(CMD, "at most %d run files", MAX_ROWS);
    } else {
        if (optind < argc) return cli_error(CMD, "unexpected argument '%s' (run files need --runs)", argv[optind]);
        if (!model || !n_vec) return cli_error(CMD, "-m MODEL and at least one --vec VEC.gguf are required (see --help)");
    }
    if (cli_check_output_dir(CMD, out_dir)) return 1;

    row rows[MAX_ROWS];
    memset(rows, 0, sizeof rows);
    int n = 0;
    if (runs_mode) {
        for (int i = optind; i < argc; i++, n++) {
            snprintf(rows[n].run, sizeof rows[n].run, "%s", argv[i]);
            set_label(&rows[n], argv[i], n, rows);
        }
    } else {
        char runs_dir[1024];
        snprintf(runs_dir, sizeof runs_dir, "%s/runs", out_dir);
        if (cli_mkdirs(CMD, runs_dir) || !(data = cli_data_dir(CMD, data))) return 1;
        kvs_error lerr = {0};
        kvs_model *m = kvs_model_load(model, &lerr);
        if (!m) return cli_error(CMD, "%s", lerr.msg);
        for (int i = -!!baseline; i < n_vec; i++, n++) {
            row *r = &rows[n];
            if (i < 0) {
                snprintf(r->label, sizeof r->label, "none (unsteered)");
                r->intended = -1;
                if (snprintf(r->run, sizeof r->run, "%s/baseline.jsonl", runs_dir) >= (int)sizeof r->run)
                    return kvs_model_free(m), cli_error(CMD, "%s: path too long", out_dir);
            } else {
                set_label(r, vecs[i], n, rows);
                if (!strcmp(r->label, "baseline")) /* the control's run file is baseline.jsonl */
                    snprintf(r->label, sizeof r->label, "baseline-vector");
                char label[sizeof r->label]; /* a copy: gcc's -Wrestrict sees one object */
                memcpy(label, r->label, sizeof label);
                if (snprintf(r->run, sizeof r->run, "%s/%s.jsonl", runs_dir, label) >= (int)sizeof r->run)
                    return kvs_model_free(m), cli_error(CMD, "%s: path too long", out_dir);
            }
            steer_opts so;
            steer_opts_init(&so);
            int bad;
            if (i < 0) /* the control gets the same offset token as the steered runs */
                bad = steer_opts_parse(&so, "eval", "offset-token", "newline") < 0;
            else
                bad = steer_opts_parse(&so, "eval", "steer", vecs[i]) < 0 || steer_opts_parse(&so, "eval", "ck", ck) < 0 ||
                      steer_opts_parse(&so, "eval", "cv", cv) < 0 ||
                      (layers && steer_opts_parse(&so, "eval", "layers", layers) < 0);
            if (!bad) bad = steer_opts_load(&so, "eval", m) != 0;
            if (!bad) {
                eval_config ec;
                eval_config_init(&ec);
                ec.model = m;
                ec.model_path = model;
                ec.task = eval_task_find("arc");
                ec.method = i < 0 ? EVAL_BASELINE : EVAL_CACHE;
                ec.data_dir = data;
                ec.out_path = r->run;
                ec.limit = atoi(limit);
                ec.offset_start = atoi(offset_start);
                ec.max_new = atoi(max_new);
                if (batch) ec.batch = atoi(batch);
                if (threads) ec.n_threads = atoi(threads);
                /* the result line would interleave with the table: stderr */
                bad = cli_eval(&ec, &so, quiet, stderr);
            }
            steer_opts_free(&so);
            if (bad) {
                kvs_model_free(m);
                return 1;
            }
        }
        kvs_model_free(m);
    }

    kvs_error err = {0};
    style_detector *d = style_new(&err);
    if (!d) return cli_error(CMD, "%s", err.msg);
    int rc = 0;
    for (int i = 0; i < n && !rc; i++) rc = tabulate(d, &rows[i]);
    style_free(d);
    if (rc) return 1;
    cJSON *settings = NULL;
    if (!runs_mode) {
        settings = cJSON_CreateObject();
        cJSON_AddStringToObject(settings, "model", model);
        cJSON_AddStringToObject(settings, "task", "arc");
        cJSON_AddNumberToObject(settings, "limit", atoi(limit));
        cJSON_AddNumberToObject(settings, "offset_start", atoi(offset_start));
        cJSON_AddNumberToObject(settings, "ck", atof(ck));
        cJSON_AddNumberToObject(settings, "cv", atof(cv));
        cJSON_AddStringToObject(settings, "layers", layers ? layers : "1-");
        cJSON_AddNumberToObject(settings, "max_new", atoi(max_new));
        cJSON_AddStringToObject(settings, "decoding", "greedy");
    }
    char *md = render_md(rows, n);
    cJSON *j = render_json(rows, n, settings);
    char *js = j ? cJSON_Print(j) : NULL;
    char path[1100];
    if (!md || !js) rc = cli_error(CMD, "out of memory");
    if (!rc) {
        snprintf(path, sizeof path, "%s/styles.md", out_dir);
        rc = cli_write_atomic(CMD, path, md);
    }
    if (!rc) {
        const size_t l = strlen(js);
        js = realloc(js, l + 2);
        js[l] = '\n', js[l + 1] = 0;
        snprintf(path, sizeof path, "%s/styles.json", out_dir);
        rc = cli_write_atomic(CMD, path, js);
    }
    if (!rc) {
        fputs(md, stdout);
        rc = fflush(stdout) ? 1 : 0;
    }
    free(md);
    free(js);
    cJSON_Delete(j);
    cJSON_Delete(settings);
    return rc;
}
