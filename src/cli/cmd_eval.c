/* `kvsteer eval`: the paper's evaluation protocol (METHOD.md section 5) on one
 * task and one method, many questions decoded together, written to a resumable
 * JSON Lines run file (see src/eval.h) with a summary line at the end. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "eval/answer.h"
#include "eval/dataset.h"
#include "engine/error.h"
#include "eval/eval.h"
#include "cli.h"
#include "progress.h"
#include "steer_opts.h"

#define CMD "eval"
#define COT_TEXT "Let's think step by step."
#define SPAN_TOKENS 10
#define DEFAULT_DATA "../shared/data"

static const char *k_help =
    "usage: kvsteer eval -m MODEL.gguf --task TASK --method METHOD -o RUN.jsonl [options]\n"
    "Answer the questions of an evaluation set, extract the answers and score them;\n"
    "one JSON line per sample, then a summary line.  An existing RUN.jsonl written\n"
    "with the same configuration is continued (samples present are skipped).\n\n"
    "  -m, --model FILE       GGUF model (required)\n"
    "      --task T           gsm8k | arc | csqa | piqa (required)\n"
    "      --method M         baseline | cot | cache | cache+cot | act (required)\n"
    "      --data DIR         data directory holding eval/*.jsonl (default ../shared/data)\n"
    "  -o, --output FILE      run file, JSON Lines (required)\n"
    "      --overwrite        start FILE afresh even if it holds another configuration\n"
    "      --limit N          evaluate N questions (default: all)\n"
    "      --offset-start K   start at question K, 0-based (default 0)\n"
    "      --max-new N        most generated tokens per answer (default 768)\n"
    "      --batch B          sequences decoded together (default 16; results do not depend on it)\n"
    "      --sampling         sample (temperature 0.6, top-p 0.9, top-k 50) instead of greedy\n"
    "      --seeds S          with --sampling: seeds 0..S-1 (default 5)\n"
    "      --temp T --top-p P --top-k K   sampling settings (with --sampling)\n"
    "  -t, --threads N        worker threads (default: all cores)\n"
    "  -c, --ctx N            context per sequence (default: what the longest prompt needs)\n"
    "      --kv-f16           keep the KV cache as IEEE half: half its memory (not faster\n"
    "                         here); recorded in the run's configuration\n"
    "  -q, --quiet            no progress on stderr\n"
    "  -h, --help             this help\n"
    "methods: baseline = plain chat prompt; cot = the assistant turn starts with\n"
    "\"" COT_TEXT "\"; cache = one-shot KV-cache steering (--steer); cache+cot = both;\n"
    "act = continuous activation steering (--act, --act-layer, --act-scale).\n"
    "The offset token is \" \" for gsm8k and \"\\n\" otherwise with cache steering, none\n"
    "otherwise, unless --offset is given.\n"
    "steering:\n";

enum { M_BASELINE, M_COT, M_CACHE, M_CACHE_COT, M_ACT };
static const char *k_methods[] = {"baseline", "cot", "cache", "cache+cot", "act"};

typedef struct question {
    const qa_row *row;
    int index;          /* row index in the data file */
    char *prompt_text;  /* rendered chat prompt (with the CoT prefix) */
    kvs_token *toks;    /* prompt tokens, then the offset token if any */
    int n_toks;         /* including the offset token */
} question;

typedef struct sample {
    int q;    /* into the question array */
    int seed; /* -1 greedy */
} sample;

static char *detok(const kvs_model *m, const kvs_token *t, int n) {
    size_t cap = (size_t)n * 16 + 1, len = 0;
    char *s = malloc(cap);
    for (int i = 0; s && i < n; i++) {
        char buf[256];
        int k = kvs_token_to_bytes(m, t[i], buf, sizeof buf);
        if (k <= 0) continue;
        if (k > (int)sizeof buf) k = (int)sizeof buf;
        if (len + (size_t)k + 1 > cap) {
            char *ns = realloc(s, cap = (len + (size_t)k + 1) * 2);
            if (!ns) {
                free(s);
                return NULL;
            }
            s = ns;
        }
        memcpy(s + len, buf, (size_t)k);
        len += (size_t)k;
    }
    char *clean = s ? eval_utf8_clean(s, len) : NULL;
    free(s);
    return clean;
}

/* Tokens of a response without its trailing end-of-generation tokens. */
static int strip_eog(const kvs_model *m, const kvs_token *t, int n) {
    while (n > 0 && kvs_token_is_eog(m, t[n - 1])) n--;
    return n;
}

static double round_f(float v) {
    char b[32];
    snprintf(b, sizeof b, "%.7g", (double)v);
    return strtod(b, NULL);
}

static void add_layers(cJSON *o, const kvs_steer_params *p) {
    char b[32];
    if (p->layer_to < 0) snprintf(b, sizeof b, "%d-", p->layer_from);
    else snprintf(b, sizeof b, "%d-%d", p->layer_from, p->layer_to);
    cJSON_AddStringToObject(o, "layers", b);
}

/* How the vector was extracted (its file's metadata), so that reports can
 * plot accuracy against pairs or shots without the vector file at hand. */
static void add_extract_meta(cJSON *o, const kvs_steer *v) {
    static const char *const keys[] = {"traces", "pairs", "shots", "select", "seed", "position", "prefix", "exclude", "keys"};
    cJSON *x = cJSON_AddObjectToObject(o, "extract");
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
        char full[64];
        snprintf(full, sizeof full, "kvsteer.extract.%s", keys[i]);
        const char *val = kvs_steer_meta(v, full);
        if (!val) continue;
        char *end;
        const long n = strtol(val, &end, 10);
        if (*val && !*end && (!strcmp(keys[i], "pairs") || !strcmp(keys[i], "shots")))
            cJSON_AddNumberToObject(x, keys[i], (double)n);
        else
            cJSON_AddStringToObject(x, keys[i], val);
    }
}

/* The decoding loop's state: what every refill needs to score a finished
 * sample and start the next one in the freed slot. */
typedef struct loop {
    const kvs_model *m;
    kvs_ctx *c;
    const question *qs;
    const sample *todo;
    int n_todo;
    int mc;
    const kvs_token *suffix;
    int n_suffix, n_ctx, max_new, n_off;
    steer_opts *so;  /* cache steering, else NULL */
    int sampling;
    kvs_sampler_params sp;
    ans_extractor *ax;
    const char *task, *method;
    eval_run *run;
    progress *pg;
    /* per slot: the answer request, the answer-span request that continues it,
     * the sampler, the span prompt buffer, the sample index, response tokens */
    kvs_gen_request *req, *areq;
    kvs_sampler **smp;
    kvs_token **app;
    int *slot_sample, *n_resp;
    int next, total, done_n, new_n, correct_n;
    long long gen_tokens;
} loop;

/* Score one finished sample and write its line (span NULL: no span was run). */
static int record(loop *lp, int j, const kvs_gen_request *span_req, kvs_error *err) {
    const sample *s = &lp->todo[lp->slot_sample[j]];
    const question *q = &lp->qs[s->q];
    const qa_row *row = q->row;
    const kvs_gen_request *r = &lp->req[j];
    const int n_resp = lp->n_resp[j];
    char *resp = detok(lp->m, r->out, n_resp);
    char *span = NULL;
    if (lp->mc) span = detok(lp->m, span_req ? span_req->out : NULL, span_req ? strip_eog(lp->m, span_req->out, span_req->n_out) : 0);
    cJSON *o = resp && (!lp->mc || span) ? cJSON_CreateObject() : NULL;
    if (!o) {
        free(resp);
        free(span);
        return err_fail(err, KVS_E_NOMEM, "out of memory");
    }
    cJSON_AddStringToObject(o, "id", row->id);
    cJSON_AddNumberToObject(o, "index", q->index);
    cJSON_AddStringToObject(o, "task", lp->task);
    cJSON_AddStringToObject(o, "method", lp->method);
    if (s->seed < 0) cJSON_AddNullToObject(o, "seed");
    else cJSON_AddNumberToObject(o, "seed", s->seed);
    cJSON_AddStringToObject(o, "prompt", q->prompt_text);
    cJSON_AddStringToObject(o, "response", resp);
    int ok;
    if (lp->mc) {
        cJSON_AddStringToObject(o, "span", span);
        ans_how how;
        const int ci = ans_choice(lp->ax, resp, span, (const char *const *)row->labels,
                                  (const char *const *)row->texts, row->n_choices, &how);
        cJSON *x = cJSON_AddObjectToObject(o, "extracted");
        cJSON_AddStringToObject(x, "choice", ci >= 0 ? row->labels[ci] : "invalid");
        cJSON_AddStringToObject(x, "rule", how.rule);
        cJSON_AddNumberToObject(x, "stage", how.stage);
        cJSON_AddStringToObject(o, "target", row->answer);
        ok = ci >= 0 && !strcmp(row->labels[ci], row->answer);
        cJSON_AddBoolToObject(o, "correct", ok);
    } else {
        char *ln = ans_last_number(lp->ax, resp), *st = ans_strict_number(lp->ax, resp);
        cJSON *x = cJSON_AddObjectToObject(o, "extracted");
        if (ln) cJSON_AddStringToObject(x, "last_number", ln);
        else cJSON_AddNullToObject(x, "last_number");
        if (st) cJSON_AddStringToObject(x, "strict", st);
        else cJSON_AddNullToObject(x, "strict");
        cJSON_AddStringToObject(o, "target", row->answer);
        cJSON *cr = cJSON_AddObjectToObject(o, "correct");
        ok = ln && ans_numbers_equal(ln, row->answer);
        cJSON_AddBoolToObject(cr, "last_number", ok);
        cJSON_AddBoolToObject(cr, "strict", st && ans_numbers_equal(st, row->answer));
        free(ln);
        free(st);
    }
    cJSON_AddNumberToObject(o, "generated_tokens", n_resp);
    cJSON_AddStringToObject(o, "stop", r->stop == KVS_STOP_EOG ? "eog" : r->stop == KVS_STOP_MAX_NEW ? "max_new" : "context");
    /* the decoding time charged to this sample (its share of each step it was in) */
    cJSON_AddNumberToObject(o, "seconds", r->seconds);
    if (lp->mc) cJSON_AddNumberToObject(o, "span_seconds", span_req ? span_req->seconds : 0.0);
    const int werr = eval_run_write(lp->run, o, err) || eval_run_flush(lp->run, err);
    cJSON_Delete(o);
    free(resp);
    free(span);
    if (werr) return err->code ? err->code : KVS_E_IO;
    lp->correct_n += ok;
    lp->gen_tokens += n_resp;
    lp->done_n++;
    lp->new_n++;
    char extra_s[96];
    const double el = progress_now() - lp->pg->t0;
    snprintf(extra_s, sizeof extra_s, "acc %.1f%%  %.1f tok/s", 100.0 * lp->correct_n / lp->new_n,
             el > 0 ? lp->gen_tokens / el : 0.0);
    progress_update(lp->pg, lp->done_n, lp->total, "samples", extra_s);
    return 0;
}

/* The multiple-choice answer span: continue slot j's sequence with the response
 * tokens not yet cached and the suffix, then up to SPAN_TOKENS greedy tokens.
 * Returns 0 when the context has no room for it. */
static int span_request(loop *lp, int j) {
    const question *q = &lp->qs[lp->todo[lp->slot_sample[j]].q];
    const kvs_gen_request *r = &lp->req[j];
    const int full_n = q->n_toks + lp->n_resp[j];
    int cached = kvs_seq_len(lp->c, j);
    if (cached > full_n) {
        kvs_seq_truncate(lp->c, j, full_n, NULL);
        cached = full_n;
    }
    kvs_token *a = lp->app[j];
    int na = 0;
    for (int p = cached; p < full_n; p++) a[na++] = p < q->n_toks ? q->toks[p] : r->out[p - q->n_toks];
    memcpy(a + na, lp->suffix, sizeof *lp->suffix * (size_t)lp->n_suffix);
    na += lp->n_suffix;
    kvs_gen_request *ar = &lp->areq[j];
    kvs_token *aout = ar->out;
    memset(ar, 0, sizeof *ar);
    ar->out = aout;
    ar->prompt = a;
    ar->n_prompt = na;
    ar->max_new = SPAN_TOKENS;
    ar->append = 1;
    return cached + na + 1 < lp->n_ctx;
}

/* Slot j's request finished (or the run starts): score what finished, run the
 * answer span after a multiple-choice response, else start the next sample. */
static int loop_refill(void *user, int j, kvs_gen_request *fin, kvs_gen_request **next, kvs_error *err) {
    loop *lp = user;
    *next = NULL;
    if (fin == &lp->req[j]) {
        lp->n_resp[j] = strip_eog(lp->m, fin->out, fin->n_out);
        if (lp->mc && span_request(lp, j)) {
            *next = &lp->areq[j];
            return 0;
        }
        if (record(lp, j, NULL, err)) return err->code;
    } else if (fin == &lp->areq[j] && record(lp, j, fin, err)) {
        return err->code;
    }
    if (lp->next >= lp->n_todo) return 0;
    const sample *s = &lp->todo[lp->slot_sample[j] = lp->next++];
    const question *q = &lp->qs[s->q];
    kvs_gen_request *r = &lp->req[j];
    kvs_token *out = r->out;
    memset(r, 0, sizeof *r);
    r->out = out;
    r->prompt = q->toks;
    r->n_prompt = q->n_toks;
    r->n_hold = lp->n_off;
    r->max_new = lp->max_new;
    if (lp->so) {
        r->on_prefilled = steer_opts_on_prefilled;
        r->user = lp->so;
    }
    kvs_sampler_free(lp->smp[j]);
    lp->smp[j] = NULL;
    if (lp->sampling) {
        /* each question's own stream: the results do not depend on batching */
        kvs_sampler_params p = lp->sp;
        p.seed = ((uint64_t)(unsigned)s->seed << 32) | (uint32_t)q->index;
        if (!(lp->smp[j] = kvs_sampler_new(&p, err))) return err->code ? err->code : KVS_E_NOMEM;
    }
    r->sampler = lp->smp[j];
    *next = r;
    return 0;
}

int cmd_eval(int argc, char **argv) {
    const char *model = NULL, *task_name = NULL, *data = NULL, *method_name = NULL, *out_path = NULL;
    int limit = 0, offset_start = 0, max_new = 768, batch = 16, sampling = 0, n_seeds = 5, threads = 0, n_ctx = 0;
    int quiet = 0, overwrite = 0, seeds_set = 0, samp_set = 0, act_scale_set = 0, kv_f16 = 0;
    kvs_sampler_params sp = {0.6f, 50, 0.9f, 0};
    steer_opts so;
    steer_opts_init(&so);
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'},     {"task", required_argument, 0, 1},
        {"data", required_argument, 0, 2},        {"method", required_argument, 0, 3},
        {"output", required_argument, 0, 'o'},    {"overwrite", no_argument, 0, 4},
        {"limit", required_argument, 0, 5},       {"offset-start", required_argument, 0, 6},
        {"max-new", required_argument, 0, 7},     {"batch", required_argument, 0, 8},
        {"sampling", no_argument, 0, 9},          {"seeds", required_argument, 0, 10},
        {"temp", required_argument, 0, 11},       {"top-p", required_argument, 0, 12},
        {"top-k", required_argument, 0, 13},      {"threads", required_argument, 0, 't'},
        {"ctx", required_argument, 0, 'c'},       {"quiet", no_argument, 0, 'q'},
        {"steer", required_argument, 0, 1000},    {"ck", required_argument, 0, 1000},
        {"cv", required_argument, 0, 1000},       {"layers", required_argument, 0, 1000},
        {"act", required_argument, 0, 1000},      {"act-layer", required_argument, 0, 1000},
        {"act-scale", required_argument, 0, 1000}, {"offset", required_argument, 0, 1000},
        {"kv-f16", no_argument, 0, 14},           {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    int o, li = 0;
    optind = 1;
    opterr = 0;
    while ((o = getopt_long(argc, argv, ":m:o:t:c:qh", opts, &li)) != -1) {
        switch (o) {
        case 'm': model = optarg; break;
        case 1: task_name = optarg; break;
        case 2: data = optarg; break;
        case 3: method_name = optarg; break;
        case 'o': out_path = optarg; break;
        case 4: overwrite = 1; break;
        case 5: if (cli_int(CMD, "--limit", optarg, 1, 1 << 30, &limit)) return 1; break;
        case 6: if (cli_int(CMD, "--offset-start", optarg, 0, 1 << 30, &offset_start)) return 1; break;
        case 7: if (cli_int(CMD, "--max-new", optarg, 1, 1 << 20, &max_new)) return 1; break;
        case 8: if (cli_int(CMD, "--batch", optarg, 1, 1024, &batch)) return 1; break;
        case 9: sampling = 1; break;
        case 10: if (cli_int(CMD, "--seeds", optarg, 1, 64, &n_seeds)) return 1; seeds_set = 1; break;
        case 11: if (cli_float(CMD, "--temp", optarg, 1e-3, 100, &sp.temperature)) return 1; samp_set = 1; break;
        case 12: if (cli_float(CMD, "--top-p", optarg, 1e-6, 1, &sp.top_p)) return 1; samp_set = 1; break;
        case 13: if (cli_int(CMD, "--top-k", optarg, 0, 1 << 24, &sp.top_k)) return 1; samp_set = 1; break;
        case 't': if (cli_int(CMD, "-t", optarg, 1, 1024, &threads)) return 1; break;
        case 'c': if (cli_int(CMD, "--ctx", optarg, 8, 1 << 24, &n_ctx)) return 1; break;
        case 'q': quiet = 1; break;
        case 14: kv_f16 = 1; break;
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
    int method = -1;
    for (int i = 0; i < (int)(sizeof k_methods / sizeof *k_methods); i++)
        if (!strcmp(method_name, k_methods[i])) method = i;
    if (method < 0) return cli_error(CMD, "unknown --method '%s' (baseline, cot, cache, cache+cot, act)", method_name);
    const int cache = method == M_CACHE || method == M_CACHE_COT, cot = method == M_COT || method == M_CACHE_COT;
    const int mc = task->choices_header != NULL;
    if (cache && so.n == 0) return cli_error(CMD, "--method %s needs --steer VEC", method_name);
    if (!cache && so.n > 0) return cli_error(CMD, "--steer is used only by --method cache or cache+cot");
    if (method == M_ACT && (!so.act_path || so.act_layer < 0 || !act_scale_set))
        return cli_error(CMD, "--method act needs --act VEC, --act-layer L and --act-scale C");
    if (method != M_ACT && (so.act_path || so.act_layer >= 0 || act_scale_set))
        return cli_error(CMD, "--act, --act-layer and --act-scale are used only by --method act");
    if (!sampling && (seeds_set || samp_set))
        return cli_error(CMD, "--seeds, --temp, --top-p and --top-k need --sampling");
    if (!data) {
        struct stat st;
        if (stat(DEFAULT_DATA, &st) || !S_ISDIR(st.st_mode))
            return cli_error(CMD, "no --data DIR given and %s does not exist here", DEFAULT_DATA);
        data = DEFAULT_DATA;
    }
    /* the offset token: --offset, else the task's with cache steering, else none */
    const char *offset = so.offset ? (so.offset[0] ? so.offset : NULL) : cache ? task->steer_offset : NULL;

    kvs_error err = {0};
    int rc = 1;
    kvs_model *m = NULL;
    kvs_ctx *c = NULL;
    ans_extractor *ax = NULL;
    qa_set set = {0};
    question *qs = NULL;
    sample *todo = NULL;
    kvs_token *suffix = NULL, *off = NULL;
    char *data_path = NULL;
    cJSON *cfg = NULL, *full = NULL, *extra = NULL;
    eval_run run = {0};
    int n_q = 0, n_suffix = 0, n_off = 0, n_todo = 0;

    if (!(m = kvs_model_load(model, &err))) {
        cli_error(CMD, "%s", err.msg);
        goto done;
    }
    if (steer_opts_load(&so, CMD, m)) goto done;
    if (!(ax = ans_new(&err))) {
        cli_error(CMD, "%s", err.msg);
        goto done;
    }
    size_t dl = strlen(data) + strlen(task->file) + 8;
    data_path = malloc(dl);
    snprintf(data_path, dl, "%s/eval/%s", data, task->file);
    if (qa_load(data_path, 0, &set, &err)) {
        cli_error(CMD, "%s", err.msg);
        goto done;
    }
    if (offset_start >= set.n) {
        cli_error(CMD, "--offset-start %d: %s has %d questions", offset_start, data_path, set.n);
        goto done;
    }
    n_q = set.n - offset_start;
    if (limit > 0 && limit < n_q) n_q = limit;
    for (int i = 0; i < n_q; i++) {
        const qa_row *r = &set.rows[offset_start + i];
        if (mc && r->n_choices < 2) {
            cli_error(CMD, "%s: question '%s' has no choices (task %s is multiple choice)", data_path, r->id, task->name);
            goto done;
        }
    }
    if (offset) {
        if (!(off = cli_tokenize(CMD, m, offset, 0, 0, &n_off))) goto done;
        if (n_off != 1) {
            cli_error(CMD, "--offset '%s' is %d tokens; it must be exactly one", offset, n_off);
            goto done;
        }
    }
    if (mc && !(suffix = cli_tokenize(CMD, m, ANS_SUFFIX, 0, 0, &n_suffix))) goto done;

    /* prompts */
    qs = calloc((size_t)n_q, sizeof *qs);
    if (!qs) {
        cli_error(CMD, "out of memory");
        goto done;
    }
    int longest = 0;
    for (int i = 0; i < n_q; i++) {
        question *q = &qs[i];
        q->row = &set.rows[offset_start + i];
        q->index = offset_start + i;
        char *user = qa_render_question(q->row, task->choices_header ? task->choices_header : "");
        char *chat = user ? cli_chat_prompt(CMD, m, NULL, user, NULL) : NULL;
        free(user);
        if (!chat) goto done;
        if (cot) {
            size_t l = strlen(chat);
            char *t = realloc(chat, l + sizeof COT_TEXT);
            if (!t) {
                free(chat);
                cli_error(CMD, "out of memory");
                goto done;
            }
            memcpy(t + l, COT_TEXT, sizeof COT_TEXT);
            chat = t;
        }
        q->prompt_text = chat;
        int n = 0;
        kvs_token *t = cli_tokenize(CMD, m, chat, -1, 1, &n);
        if (!t) goto done;
        kvs_token *all = realloc(t, sizeof *all * (size_t)(n + 1));
        if (!all) {
            free(t);
            cli_error(CMD, "out of memory");
            goto done;
        }
        if (n_off) all[n] = off[0];
        q->toks = all;
        q->n_toks = n + n_off;
        if (q->n_toks > longest) longest = q->n_toks;
    }
    /* context: the longest prompt, the answer, the extraction suffix and span */
    const int reserve = mc ? n_suffix + SPAN_TOKENS + 1 : 1;
    kvs_model_info mi;
    kvs_model_get_info(m, &mi);
    if (n_ctx == 0) {
        n_ctx = longest + max_new + reserve;
        if (mi.n_ctx_train > 0 && n_ctx > mi.n_ctx_train) n_ctx = mi.n_ctx_train;
    }
    for (int i = 0; i < n_q; i++)
        if (qs[i].n_toks + reserve > n_ctx) {
            cli_error(CMD, "question '%s': prompt of %d tokens is longer than the context (%d); use --ctx", qs[i].row->id,
                      qs[i].n_toks, n_ctx);
            goto done;
        }

    /* configuration: what the results depend on (must match to resume) */
    char fp[17], vfp[17];
    if (eval_file_fingerprint(model, fp, &err)) {
        cli_error(CMD, "%s", err.msg);
        goto done;
    }
    char data_fp[17];
    if (eval_file_fingerprint(data_path, data_fp, &err)) {
        cli_error(CMD, "%s", err.msg);
        goto done;
    }
    cfg = cJSON_CreateObject();
    cJSON_AddStringToObject(cfg, "task", task->name);
    cJSON_AddStringToObject(cfg, "data_file", task->file);
    cJSON_AddStringToObject(cfg, "data_fingerprint", data_fp);
    cJSON_AddStringToObject(cfg, "method", k_methods[method]);
    cJSON_AddStringToObject(cfg, "model_fingerprint", fp);
    cJSON *steer_arr = cJSON_AddArrayToObject(cfg, "steer");
    for (int i = 0; i < so.n; i++) {
        if (eval_file_fingerprint(so.path[i], vfp, &err)) {
            cli_error(CMD, "%s", err.msg);
            goto done;
        }
        cJSON *v = cJSON_CreateObject();
        cJSON_AddStringToObject(v, "fingerprint", vfp);
        cJSON_AddNumberToObject(v, "ck", round_f(so.p[i].ck));
        cJSON_AddNumberToObject(v, "cv", round_f(so.p[i].cv));
        add_layers(v, &so.p[i]);
        cJSON_AddItemToArray(steer_arr, v);
    }
    if (so.act) {
        if (eval_file_fingerprint(so.act_path, vfp, &err)) {
            cli_error(CMD, "%s", err.msg);
            goto done;
        }
        cJSON *a = cJSON_AddObjectToObject(cfg, "act");
        cJSON_AddStringToObject(a, "fingerprint", vfp);
        cJSON_AddNumberToObject(a, "layer", so.act_layer);
        cJSON_AddNumberToObject(a, "scale", round_f(so.act_scale));
    } else {
        cJSON_AddNullToObject(cfg, "act");
    }
    if (offset) cJSON_AddStringToObject(cfg, "offset", offset);
    else cJSON_AddNullToObject(cfg, "offset");
    if (cot) cJSON_AddStringToObject(cfg, "assistant_prefix", COT_TEXT);
    else cJSON_AddNullToObject(cfg, "assistant_prefix");
    cJSON_AddNumberToObject(cfg, "max_new", max_new);
    /* greedy tokens can differ between kernel sets at near-ties: one set per file */
    cJSON_AddStringToObject(cfg, "kernels", kvs_kernels_name());
    /* only when not the default, so that float-cache files made before the
     * option existed still resume */
    if (kv_f16) cJSON_AddStringToObject(cfg, "kv_cache", "f16");
    if (sampling) {
        cJSON *d = cJSON_AddObjectToObject(cfg, "sampling");
        cJSON_AddNumberToObject(d, "temperature", round_f(sp.temperature));
        cJSON_AddNumberToObject(d, "top_p", round_f(sp.top_p));
        cJSON_AddNumberToObject(d, "top_k", sp.top_k);
    } else {
        cJSON_AddStringToObject(cfg, "sampling", "greedy");
    }
    if (mc) {
        cJSON_AddStringToObject(cfg, "answer_suffix", ANS_SUFFIX);
        cJSON_AddNumberToObject(cfg, "span_tokens", SPAN_TOKENS);
    }
    /* every option, for the record */
    full = cJSON_Duplicate(cfg, 1);
    cJSON_AddStringToObject(full, "model", model);
    cJSON_AddStringToObject(full, "data", data);
    cJSON *sp_arr = cJSON_GetObjectItemCaseSensitive(full, "steer");
    for (int i = 0; i < so.n; i++) {
        cJSON_AddStringToObject(cJSON_GetArrayItem(sp_arr, i), "path", so.path[i]);
        add_extract_meta(cJSON_GetArrayItem(sp_arr, i), so.vec[i]);
    }
    if (so.act) {
        cJSON_AddStringToObject(cJSON_GetObjectItemCaseSensitive(full, "act"), "path", so.act_path);
        add_extract_meta(cJSON_GetObjectItemCaseSensitive(full, "act"), so.act);
    }
    if (limit > 0) cJSON_AddNumberToObject(full, "limit", limit);
    else cJSON_AddNullToObject(full, "limit");
    cJSON_AddNumberToObject(full, "offset_start", offset_start);
    cJSON_AddNumberToObject(full, "questions", n_q);
    cJSON_AddNumberToObject(full, "batch", batch);
    if (sampling) cJSON_AddNumberToObject(full, "seeds", n_seeds);
    else cJSON_AddNullToObject(full, "seeds");
    cJSON_AddNumberToObject(full, "threads", threads);
    cJSON_AddNumberToObject(full, "ctx", n_ctx);
    extra = cJSON_CreateObject();
    cJSON_AddStringToObject(extra, "fingerprint_method", EVAL_FINGERPRINT_METHOD);
    cJSON_AddStringToObject(extra, "kvsteer_version", kvs_version());

    if (eval_run_open(&run, out_path, cfg, extra, overwrite, &err)) {
        cli_error(CMD, "%s", err.msg);
        goto done;
    }
    if (run.truncated && !quiet) fprintf(stderr, "kvsteer eval: %s: dropped a truncated last line\n", out_path);

    /* what is left to do: (seed, question) pairs not in the file */
    const int seeds = sampling ? n_seeds : 1, total = seeds * n_q;
    todo = malloc(sizeof *todo * (size_t)total);
    if (!todo) {
        cli_error(CMD, "out of memory");
        goto done;
    }
    for (int s = 0; s < seeds; s++)
        for (int i = 0; i < n_q; i++) {
            const int seed = sampling ? s : -1;
            if (!eval_run_has(&run, seed, qs[i].row->id)) todo[n_todo++] = (sample){i, seed};
        }
    const int done_n = total - n_todo;
    progress pg;
    char pg_label[64];
    snprintf(pg_label, sizeof pg_label, "eval %s %s", task->name, k_methods[method]);
    progress_init(&pg, pg_label, quiet);
    progress_set_base(&pg, done_n);
    if (n_todo > 0) {
        const int B = batch < n_todo ? batch : n_todo;
        kvs_ctx_params cp = kvs_ctx_default_params();
        cp.n_ctx = n_ctx;
        cp.n_seq = B;
        cp.n_threads = threads;
        cp.kv_f16 = kv_f16;
        if (!(c = kvs_ctx_new(m, &cp, &err))) {
            cli_error(CMD, "%s", err.msg);
            goto done;
        }
        if (so.act && kvs_steer_apply_act(c, -1, so.act, so.act_layer, so.act_scale, &err)) {
            cli_error(CMD, "%s", err.msg);
            goto done;
        }
        loop lp = {.m = m, .c = c, .qs = qs, .todo = todo, .n_todo = n_todo, .mc = mc, .suffix = suffix,
                   .n_suffix = n_suffix, .n_ctx = n_ctx, .max_new = max_new, .n_off = n_off,
                   .so = cache ? &so : NULL, .sampling = sampling, .sp = sp, .ax = ax, .task = task->name,
                   .method = k_methods[method], .run = &run, .pg = &pg, .total = total, .done_n = done_n};
        lp.req = calloc((size_t)B, sizeof *lp.req);
        lp.areq = calloc((size_t)B, sizeof *lp.areq);
        lp.smp = calloc((size_t)B, sizeof *lp.smp);
        lp.app = calloc((size_t)B, sizeof *lp.app);
        lp.slot_sample = calloc((size_t)B, sizeof *lp.slot_sample);
        lp.n_resp = calloc((size_t)B, sizeof *lp.n_resp);
        int ok = lp.req && lp.areq && lp.smp && lp.app && lp.slot_sample && lp.n_resp;
        for (int j = 0; ok && j < B; j++) {
            lp.req[j].out = malloc(sizeof(kvs_token) * (size_t)max_new);
            lp.areq[j].out = malloc(sizeof(kvs_token) * SPAN_TOKENS);
            lp.app[j] = malloc(sizeof(kvs_token) * (size_t)(n_ctx + n_suffix + 1));
            ok = lp.req[j].out && lp.areq[j].out && lp.app[j];
        }
        progress_update(&pg, done_n, total, "samples", NULL);
        if (!ok) cli_error(CMD, "out of memory");
        else if (kvs_generate_stream(c, B, 0, loop_refill, &lp, NULL, NULL, &err)) cli_error(CMD, "%s", err.msg);
        for (int j = 0; j < B; j++) {
            free(lp.req ? lp.req[j].out : NULL);
            free(lp.areq ? lp.areq[j].out : NULL);
            free(lp.app ? lp.app[j] : NULL);
            kvs_sampler_free(lp.smp ? lp.smp[j] : NULL);
        }
        free(lp.req);
        free(lp.areq);
        free(lp.smp);
        free(lp.app);
        free(lp.slot_sample);
        free(lp.n_resp);
        if (!ok || err.code) goto done;
    }

    /* every requested sample is present: the summary, from the whole file */
    cJSON *sum = eval_summarize(out_path, &err);
    if (!sum) {
        cli_error(CMD, "%s", err.msg);
        goto done;
    }
    cJSON_AddStringToObject(sum, "task", task->name);
    cJSON_AddStringToObject(sum, "method", k_methods[method]);
    cJSON_AddItemToObject(sum, "config", cJSON_Duplicate(full, 1));
    cJSON *mf = cJSON_AddObjectToObject(sum, "model_fingerprint");
    cJSON_AddStringToObject(mf, "method", EVAL_FINGERPRINT_METHOD);
    cJSON_AddStringToObject(mf, "value", fp);
    cJSON_AddStringToObject(sum, "kvsteer_version", kvs_version());
    int werr = eval_run_write(&run, sum, &err) || eval_run_flush(&run, &err);
    if (!werr) {
        const cJSON *acc = cJSON_GetObjectItemCaseSensitive(sum, "accuracy");
        const cJSON *sd = cJSON_GetObjectItemCaseSensitive(sum, "accuracy_std");
        printf("%s %s: n=%d", task->name, k_methods[method], cJSON_GetObjectItemCaseSensitive(sum, "n")->valueint);
        for (const cJSON *a = acc ? acc->child : NULL; a; a = a->next) {
            const cJSON *d = sd ? cJSON_GetObjectItemCaseSensitive(sd, a->string) : NULL;
            printf("  %s %.1f%%", a->string, 100.0 * a->valuedouble);
            if (d) printf(" +- %.1f", 100.0 * d->valuedouble);
        }
        printf("  no answer %.1f%%  %.1f tokens/answer  %.2f ms/token  -> %s\n",
               100.0 * cJSON_GetObjectItemCaseSensitive(sum, "invalid")->valuedouble,
               cJSON_GetObjectItemCaseSensitive(sum, "mean_generated_tokens")->valuedouble,
               cJSON_GetObjectItemCaseSensitive(sum, "ms_per_token")->valuedouble, out_path);
    }
    cJSON_Delete(sum);
    if (werr) {
        cli_error(CMD, "%s", err.msg);
        goto done;
    }
    rc = fflush(stdout) ? 1 : 0;
done:
    eval_run_close(&run);
    cJSON_Delete(cfg);
    cJSON_Delete(full);
    cJSON_Delete(extra);
    free(todo);
    for (int i = 0; qs && i < n_q; i++) {
        free(qs[i].prompt_text);
        free(qs[i].toks);
    }
    free(qs);
    free(suffix);
    free(off);
    free(data_path);
    qa_free(&set);
    ans_free(ax);
    kvs_ctx_free(c);
    steer_opts_free(&so);
    kvs_model_free(m);
    return rc;
}
