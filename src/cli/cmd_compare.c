/* `kvsteer compare`: the same questions answered unsteered and steered, decoded
 * together in one batch (two cache sequences per question: only the steered
 * one gets the edit), printed side by side. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "engine/error.h"
#include "engine/grow.h"
#include "engine/utf8.h"
#include "progress.h"
#include "steer_opts.h"

static const char *k_help =
    "usage: kvsteer compare -m MODEL.gguf --steer VEC.gguf [--cv Y] -p QUESTION [-p QUESTION ...]\n"
    "Answer each question as a chat user turn twice, without and with steering, in one\n"
    "batched run, and print the answers side by side (greedy unless --temp).\n\n"
    "  -m, --model FILE       GGUF model (required)\n"
    "  -p, --prompt TEXT      a question (repeatable)\n"
    "  -n, --n-predict N      most tokens per answer (default 160; --max-new N too)\n"
    "      --temp T           temperature (default 0 = greedy)\n"
    "      --top-k K          top-k filter (default 0 = off)\n"
    "      --top-p P          nucleus filter (default 1 = off)\n"
    CLI_MIN_P_HELP
    CLI_SAMPLING_HELP
    "      --seed S           sampling seed (default: a random one, printed on stderr)\n"
    "      --kv-f16           keep the KV cache as IEEE half\n"
    "  -w, --width N          column width (default 58)\n"
    "  -t, --threads N        worker threads (default: all cores)\n"
    "steering (at least one of --steer / --act):\n";

/* Lines of at most w characters of s (valid UTF-8), broken at a newline, at
 * the last space that fits, or inside a word longer than a line; control
 * characters become spaces so the columns stay aligned.  Each line a malloc'd
 * copy; returns the count, or -1 when out of memory. */
static int wrap(const char *s, int w, char ***lines) {
    char **L = NULL;
    int n = 0, cap = 0;
    for (const char *p = s; *p;) {
        const char *e = p, *space = NULL;
        for (int k = 0; *e && *e != '\n' && k < w; k++) {
            if (*e == ' ') space = e;
            const int len = utf8_seq_len((unsigned char)*e);
            e += len > 0 ? len : 1;
        }
        const char *end = e, *next = e;
        if (*e == '\n' || *e == ' ') next = e + 1;
        else if (*e && space > p) end = space, next = space + 1;
        char *line = strndup(p, (size_t)(end - p));
        char **nl = line ? grow(L, n, &cap, sizeof *L) : NULL;
        if (!nl) {
            free(line);
            while (n > 0) free(L[--n]);
            free(L);
            return -1;
        }
        L = nl;
        for (char *c = line; *c; c++)
            if ((unsigned char)*c < 0x20) *c = ' ';
        L[n++] = line;
        p = next;
    }
    *lines = L;
    return n;
}

/* s and then spaces up to w characters (printf pads bytes, not characters). */
static void put_padded(const char *s, int w) {
    int k = 0;
    for (const char *c = s; *c; c++) k += ((unsigned char)*c & 0xC0) != 0x80;
    fputs(s, stdout);
    for (; k < w; k++) putchar(' ');
}

/* An answer's text, up to its end-of-generation token, with any broken UTF-8
 * (an answer cut inside a character) replaced. */
static char *answer_text(const kvs_model *m, const kvs_token *t, int n, kvs_error *err) {
    int k = 0;
    while (k < n && !kvs_token_is_eog(m, t[k])) k++;
    size_t len = 0;
    char *raw = kvs_detokenize(m, t, k, &len, err);
    char *clean = raw ? utf8_clean(raw, len) : NULL;
    if (raw && !clean) err_fail(err, KVS_E_NOMEM, "out of memory");
    free(raw);
    return clean;
}

/* Two texts side by side in columns of w characters; -1 when out of memory. */
static int print_cols(const char *a, const char *b, int w) {
    char **la = NULL, **lb = NULL;
    int na = wrap(a, w, &la), nb = na < 0 ? -1 : wrap(b, w, &lb);
    if (nb < 0) {
        for (int i = 0; i < na; i++) free(la[i]);
        free(la);
        return -1;
    }
    for (int i = 0; i < (na > nb ? na : nb); i++) {
        fputs("| ", stdout);
        put_padded(i < na ? la[i] : "", w);
        fputs(" | ", stdout);
        put_padded(i < nb ? lb[i] : "", w);
        fputs(" |\n", stdout);
    }
    for (int i = 0; i < na; i++) free(la[i]);
    for (int i = 0; i < nb; i++) free(lb[i]);
    free(la);
    free(lb);
    return 0;
}

static void rule(int w) {
    printf("+");
    for (int i = 0; i < 2 * w + 5; i++) putchar(i == w + 2 ? '+' : '-');
    printf("+\n");
}

int cmd_compare(int argc, char **argv) {
    const char *model = NULL;
    const char *qs[64];
    int nq = 0, n_predict = 160, width = 58, threads = 0, seed_set = 0, kv_f16 = 0;
    kvs_sampler_params sp = kvs_sampler_default_params();
    steer_opts so;
    steer_opts_init(&so);
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'}, {"prompt", required_argument, 0, 'p'},
        {"n-predict", required_argument, 0, 'n'}, {"temp", required_argument, 0, 'e'},
        {"max-new", required_argument, 0, 'n'}, {"top-k", required_argument, 0, 'k'},
        {"top-p", required_argument, 0, 'P'}, {"kv-f16", no_argument, 0, 'F'},
        {"seed", required_argument, 0, 's'}, {"width", required_argument, 0, 'w'},
        {"threads", required_argument, 0, 't'}, {"steer", required_argument, 0, 1000},
        {"ck", required_argument, 0, 1000}, {"cv", required_argument, 0, 1000},
        {"layers", required_argument, 0, 1000}, {"act", required_argument, 0, 1000},
        {"act-layer", required_argument, 0, 1000}, {"act-scale", required_argument, 0, 1000},
        {"offset", required_argument, 0, 1000}, {"offset-token", required_argument, 0, 1000}, CLI_SAMPLING_OPTS, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    int o, li = 0;
    optind = 1;
    opterr = 0;
    while ((o = getopt_long(argc, argv, ":m:p:n:w:t:h", opts, &li)) != -1) {
        switch (o) {
        case 'm': model = optarg; break;
        case 'p':
            if (nq == 64) return cli_error("compare", "at most 64 questions");
            qs[nq++] = optarg;
            break;
        case 'n': if (cli_int("compare", "-n", optarg, 1, 100000, &n_predict)) return 1; break;
        case 'e': if (cli_float("compare", "--temp", optarg, 0, 100, &sp.temperature)) return 1; break;
        case 's': if (cli_u64("compare", "--seed", optarg, &sp.seed)) return 1; seed_set = 1; break;
        case 'k': if (cli_int("compare", "--top-k", optarg, 0, 1 << 24, &sp.top_k)) return 1; break;
        case 'P': if (cli_float("compare", "--top-p", optarg, 1e-6, 1, &sp.top_p)) return 1; break;
        case 'F': kv_f16 = 1; break;
        case 'w': if (cli_int("compare", "-w", optarg, 20, 400, &width)) return 1; break;
        case 't': if (cli_int("compare", "-t", optarg, 1, 1024, &threads)) return 1; break;
        case 1000: if (steer_opts_parse(&so, "compare", opts[li].name, optarg) < 0) return 1; break;
        case 1100: case 1101: case 1102: if (cli_sampling_opt("compare", o, optarg, &sp)) return 1; break;
        case 'h': fputs(k_help, stdout); fputs(steer_opts_help, stdout); return 0;
        case ':': return cli_error("compare", "option %s needs a value", argv[optind - 1]);
        default: return cli_error("compare", "unknown option '%s' (see kvsteer compare --help)", argv[optind - 1]);
        }
    }
    if (optind < argc) return cli_error("compare", "unexpected argument '%s'", argv[optind]);
    if (!model || nq == 0) return cli_error("compare", "-m MODEL and at least one -p QUESTION are required");
    if (so.n == 0 && !so.act_path) return cli_error("compare", "nothing to compare: pass --steer VEC or --act VEC");
    if (!seed_set) sp.seed = cli_random_seed();
    if (sp.temperature > 0) fprintf(stderr, "[compare] seed %llu\n", (unsigned long long)sp.seed);
    kvs_error err = {0};
    kvs_model *m = kvs_model_load(model, &err);
    if (!m) return cli_error("compare", "%s", err.msg);
    int rc = 1;
    kvs_ctx *c = NULL;
    kvs_gen_request *req = calloc((size_t)(2 * nq), sizeof *req);
    kvs_token **toks = calloc((size_t)(2 * nq), sizeof *toks);
    kvs_sampler **smp = calloc((size_t)(2 * nq), sizeof *smp);
    if (!req || !toks || !smp) goto done;
    if (steer_opts_load(&so, "compare", m)) goto done;
    kvs_token off = -1;
    const char *offs = steer_opts_offset(&so);
    if (offs) {
        int n_off = 0;
        kvs_token *t = cli_tokenize("compare", m, offs, 0, 0, &n_off);
        if (!t) goto done;
        off = t[0];
        free(t);
        if (n_off != 1) {
            cli_error("compare", "--offset-token '%s' is %d tokens; it must be exactly one", offs, n_off);
            goto done;
        }
    }
    int max_prompt = 0;
    for (int q = 0; q < nq; q++) {
        char *text = cli_chat_prompt("compare", m, NULL, qs[q], NULL);
        if (!text) goto done;
        int n = 0;
        kvs_token *t = cli_tokenize("compare", m, text, -1, 1, &n);
        free(text);
        if (!t) goto done;
        for (int side = 0; side < 2; side++) {
            kvs_gen_request *r = &req[2 * q + side];
            /* both sides get the offset token, so the only difference is the edit */
            kvs_token *all = malloc(sizeof *all * (size_t)(n + 1));
            memcpy(all, t, sizeof *all * (size_t)n);
            if (off >= 0) all[n] = off;
            toks[2 * q + side] = all;
            r->prompt = all;
            r->n_prompt = n + (off >= 0);
            r->n_hold = off >= 0;
            r->max_new = n_predict;
            r->out = malloc(sizeof(kvs_token) * (size_t)n_predict);
            if (!(smp[2 * q + side] = kvs_sampler_new(&sp, &err))) {
                free(t);
                cli_error("compare", "%s", err.msg);
                goto done;
            }
            r->sampler = smp[2 * q + side];
            if (side == 1 && so.n > 0) {
                r->on_prefilled = steer_opts_on_prefilled;
                r->user = &so;
            }
        }
        if (n + 1 > max_prompt) max_prompt = n + 1;
        free(t);
    }
    kvs_ctx_params cp = kvs_ctx_default_params();
    cp.n_seq = 2 * nq;
    cp.n_ctx = max_prompt + n_predict + 1;
    cp.n_threads = threads;
    cp.kv_f16 = kv_f16;
    if (!(c = kvs_ctx_new(m, &cp, &err))) {
        cli_error("compare", "%s", err.msg);
        goto done;
    }
    if (so.act)
        for (int q = 0; q < nq; q++)
            if (kvs_steer_apply_act(c, 2 * q + 1, so.act, so.act_layer, so.act_scale, &err)) {
                cli_error("compare", "%s", err.msg);
                goto done;
            }
    double t0 = progress_now();
    if (kvs_generate(c, req, 2 * nq, 0, NULL, NULL, &err)) {
        cli_error("compare", "%s", err.msg);
        goto done;
    }
    double el = progress_now() - t0;
    int total = 0;
    for (int q = 0; q < nq; q++) {
        char head_a[128], head_b[160], steer_desc[96] = "";
        if (so.n > 0) snprintf(steer_desc, sizeof steer_desc, "ck=%g cv=%g", so.p[0].ck, so.p[0].cv);
        else if (so.act_layer < 0) snprintf(steer_desc, sizeof steer_desc, "act all layers x%g", so.act_scale);
        else snprintf(steer_desc, sizeof steer_desc, "act L%d x%g", so.act_layer, so.act_scale);
        snprintf(head_a, sizeof head_a, "unsteered (%d tokens)", req[2 * q].n_out);
        snprintf(head_b, sizeof head_b, "steered %s (%d tokens)", steer_desc, req[2 * q + 1].n_out);
        total += req[2 * q].n_out + req[2 * q + 1].n_out;
        printf("\nQ%d: %s\n", q + 1, qs[q]);
        rule(width);
        char *a = answer_text(m, req[2 * q].out, req[2 * q].n_out, &err);
        char *b = a ? answer_text(m, req[2 * q + 1].out, req[2 * q + 1].n_out, &err) : NULL;
        if (!b || print_cols(head_a, head_b, width)) {
            free(a);
            free(b);
            cli_error("compare", "%s", b ? "out of memory" : err.msg);
            goto done;
        }
        rule(width);
        const int oom = print_cols(a, b, width);
        free(a);
        free(b);
        if (oom) {
            cli_error("compare", "out of memory");
            goto done;
        }
        rule(width);
    }
    printf("\n%d questions x 2 answers, %d tokens generated in %.1f s (%.1f tokens/s, batched)\n", nq, total, el,
           el > 0 ? total / el : 0.0);
    rc = fflush(stdout) ? 1 : 0;
done:
    for (int i = 0; i < 2 * nq && req; i++) {
        free(toks ? toks[i] : NULL);
        free(req[i].out);
        kvs_sampler_free(smp ? smp[i] : NULL);
    }
    free(req);
    free(toks);
    free(smp);
    kvs_ctx_free(c);
    steer_opts_free(&so);
    kvs_model_free(m);
    return rc;
}
