#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "progress.h"
#include "steer_opts.h"

static const char *k_help =
    "usage: kvsteer run -m MODEL.gguf -p TEXT [options]\n"
    "Generate a continuation of TEXT, streamed to stdout as it is generated (only the\n"
    "text goes there); then one line on stderr: why it stopped (end of turn, token\n"
    "limit, context full), prompt and generation speed, and the seed when sampling.\n\n"
    "  -m, --model FILE       GGUF model file (required)\n"
    "  -p, --prompt TEXT      prompt text (required)\n"
    "      --chat             render TEXT as the user turn of the model's chat template\n"
    "      --system TEXT      system message (with --chat; default: the template's own)\n"
    "      --chat-template N  chatml|llama3|phi3|gemma, when the file's template is unknown\n"
    "  -n, --n-predict N      most tokens to generate (default 256; --max-new N too)\n"
    "      --special          recognise special-token strings such as <|im_start|> in\n"
    "                         TEXT (the default, as tokenize and logits do)\n"
    "      --no-special       take TEXT literally (not with --chat, whose template needs them)\n"
    "      --temp T           temperature; 0 = greedy (default 0)\n"
    "      --top-k K          top-k filter (default 0 = off)\n"
    "      --top-p P          nucleus filter (default 1 = off)\n"
    CLI_MIN_P_HELP
    CLI_SAMPLING_HELP
    "      --seed S           random seed for sampling (default: a random one, printed on\n"
    "                         stderr so that the run can be repeated)\n"
    "  -t, --threads N        worker threads (default: all cores)\n"
    "  -c, --ctx N            context length (default: min(2048, training length))\n"
    "      --kv-f16           keep the KV cache as IEEE half (half its memory; tokens can\n"
    "                         differ from a float cache at near-ties)\n"
    "  -h, --help             this help\n"
    "steering:\n";

/* Streams each token to stdout as it is generated (but a final end-of-turn token). */
typedef struct stream {
    const kvs_model *m;
    double t0, t_first; /* start, and when the first token came (the prompt's time) */
    int n;
} stream;

static int on_token(int req, kvs_token t, void *user) {
    (void)req;
    stream *s = user;
    if (s->n++ == 0) s->t_first = progress_now();
    if (kvs_token_is_eog(s->m, t)) return 0;
    char buf[256];
    const int nb = kvs_token_to_bytes(s->m, t, buf, sizeof buf);
    if (nb > 0) fwrite(buf, 1, (size_t)(nb < (int)sizeof buf ? nb : (int)sizeof buf), stdout);
    fflush(stdout);
    return 0;
}

int cmd_run(int argc, char **argv) {
    const char *model = NULL, *prompt = NULL, *system = NULL, *tmpl = NULL, *offset = NULL;
    steer_opts so;
    steer_opts_init(&so);
    int chat = 0, special = 1, n_predict = 256, threads = 0, n_ctx = 0, kv_f16 = 0, seed_set = 0;
    kvs_sampler_params sp = kvs_sampler_default_params();
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'}, {"prompt", required_argument, 0, 'p'},
        {"chat", no_argument, 0, 'C'},        {"system", required_argument, 0, 'S'},
        {"chat-template", required_argument, 0, 'T'}, {"n-predict", required_argument, 0, 'n'},
        {"max-new", required_argument, 0, 'n'}, {"special", no_argument, 0, 'X'}, {"no-special", no_argument, 0, 'Y'},
        {"temp", required_argument, 0, 'e'},  {"top-k", required_argument, 0, 'k'},
        {"top-p", required_argument, 0, 'P'}, {"seed", required_argument, 0, 's'},
        {"threads", required_argument, 0, 't'}, {"ctx", required_argument, 0, 'c'},
        {"offset", required_argument, 0, 1000}, {"offset-token", required_argument, 0, 1000}, {"steer", required_argument, 0, 1000},
        {"ck", required_argument, 0, 1000}, {"cv", required_argument, 0, 1000},
        {"layers", required_argument, 0, 1000}, {"act", required_argument, 0, 1000},
        {"act-layer", required_argument, 0, 1000}, {"act-scale", required_argument, 0, 1000},
        {"kv-f16", no_argument, 0, 'F'}, CLI_SAMPLING_OPTS, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    int o, li = 0;
    optind = 1;
    opterr = 0;
    while ((o = getopt_long(argc, argv, ":m:p:n:t:c:h", opts, &li)) != -1) {
        switch (o) {
        case 'm': model = optarg; break;
        case 'p': prompt = optarg; break;
        case 'C': chat = 1; break;
        case 'S': system = optarg; break;
        case 'T': tmpl = optarg; break;
        case 'F': kv_f16 = 1; break;
        case 'X': special = 1; break;
        case 'Y': special = 0; break;
        case 1000: if (steer_opts_parse(&so, "run", opts[li].name, optarg) < 0) return 1; break;
        case 1100: case 1101: case 1102: if (cli_sampling_opt("run", o, optarg, &sp)) return 1; break;
        case 'n': if (cli_int("run", "-n", optarg, 0, 1 << 24, &n_predict)) return 1; break;
        case 'e': if (cli_float("run", "--temp", optarg, 0, 100, &sp.temperature)) return 1; break;
        case 'k': if (cli_int("run", "--top-k", optarg, 0, 1 << 24, &sp.top_k)) return 1; break;
        case 'P': if (cli_float("run", "--top-p", optarg, 1e-6, 1, &sp.top_p)) return 1; break;
        case 's': if (cli_u64("run", "--seed", optarg, &sp.seed)) return 1; seed_set = 1; break;
        case 't': if (cli_int("run", "-t", optarg, 1, 1024, &threads)) return 1; break;
        case 'c': if (cli_int("run", "--ctx", optarg, 1, 1 << 24, &n_ctx)) return 1; break;
        case 'h': fputs(k_help, stdout); fputs(steer_opts_help, stdout); return 0;
        case ':': return cli_error("run", "option %s needs a value", argv[optind - 1]);
        default: return cli_error("run", "unknown option '%s' (see kvsteer run --help)", argv[optind - 1]);
        }
    }
    if (optind < argc) return cli_error("run", "unexpected argument '%s'", argv[optind]);
    if (!model || !prompt) return cli_error("run", "-m MODEL and -p TEXT are required (see --help)");
    if (system && !chat) return cli_error("run", "--system needs --chat");
    if (chat && !special) return cli_error("run", "--no-special cannot go with --chat: the chat template is made of special tokens");
    if (!seed_set) sp.seed = cli_random_seed();

    kvs_error err = {0};
    kvs_model *m = kvs_model_load(model, &err);
    if (!m) return cli_error("run", "%s", err.msg);
    int rc = 1;
    char *text = NULL;
    if (steer_opts_load(&so, "run", m)) {
        kvs_model_free(m);
        steer_opts_free(&so);
        return 1;
    }
    offset = steer_opts_offset(&so);
    kvs_token *toks = NULL, *off = NULL, *all = NULL, *out = NULL;
    kvs_sampler *smp = NULL;
    kvs_ctx *c = NULL;
    int n_tok = 0, n_off = 0;
    text = chat ? cli_chat_prompt("run", m, system, prompt, tmpl) : strdup(prompt);
    if (!text) goto done;
    if (!(toks = cli_tokenize("run", m, text, -1, special, &n_tok))) goto done;
    if (offset) {
        if (!(off = cli_tokenize("run", m, offset, 0, 0, &n_off))) goto done;
        if (n_off != 1) {
            cli_error("run", "--offset-token '%s' is %d tokens; it must be exactly one", offset, n_off);
            goto done;
        }
    }
    if (n_tok + n_off == 0) {
        cli_error("run", "the prompt is empty after tokenization");
        goto done;
    }
    kvs_ctx_params cp = kvs_ctx_default_params();
    cp.n_ctx = n_ctx;
    cp.n_threads = threads;
    cp.kv_f16 = kv_f16;
    if (!(c = kvs_ctx_new(m, &cp, &err))) {
        cli_error("run", "%s", err.msg);
        goto done;
    }
    if (n_tok + n_off >= kvs_ctx_n_ctx(c)) {
        cli_error("run", "prompt of %d tokens is longer than the context (%d); use --ctx", n_tok + n_off,
                  kvs_ctx_n_ctx(c));
        goto done;
    }
    all = malloc(sizeof *all * (size_t)(n_tok + n_off));
    out = malloc(sizeof *out * (size_t)(n_predict > 0 ? n_predict : 1));
    if (!all || !out) {
        cli_error("run", "out of memory");
        goto done;
    }
    memcpy(all, toks, sizeof *all * (size_t)n_tok);
    if (n_off) all[n_tok] = off[0];
    if (!(smp = kvs_sampler_new(&sp, &err))) {
        cli_error("run", "%s", err.msg);
        goto done;
    }
    kvs_gen_request req = {0};
    req.prompt = all;
    req.n_prompt = n_tok + n_off;
    req.n_hold = n_off;
    req.max_new = n_predict;
    req.sampler = smp;
    req.out = out;
    if (so.n > 0) {
        req.on_prefilled = steer_opts_on_prefilled;
        req.user = &so;
    }
    if (so.act && kvs_steer_apply_act(c, 0, so.act, so.act_layer, so.act_scale, &err)) {
        cli_error("run", "%s", err.msg);
        goto done;
    }
    stream st = {.m = m, .t0 = progress_now()};
    if (kvs_generate(c, &req, 1, 0, on_token, &st, &err)) {
        fputc('\n', stdout);
        cli_error("run", "%s", err.msg);
        goto done;
    }
    fputc('\n', stdout);
    rc = fflush(stdout) ? 1 : 0;
    const double t_end = progress_now(), t_prompt = (st.n ? st.t_first : t_end) - st.t0, t_gen = t_end - st.t_first;
    fprintf(stderr, "[%s] prompt %d tokens, %.1f tokens/s; generated %d tokens, %.1f tokens/s",
            req.stop == KVS_STOP_EOG ? "end of turn" : req.stop == KVS_STOP_MAX_NEW ? "token limit" : "context full",
            req.n_prompt, t_prompt > 0 ? req.n_prompt / t_prompt : 0.0, req.n_out,
            st.n > 1 && t_gen > 0 ? (st.n - 1) / t_gen : 0.0);
    if (sp.temperature > 0) fprintf(stderr, "; seed %llu", (unsigned long long)sp.seed);
    fputc('\n', stderr);
done:
    kvs_sampler_free(smp);
    kvs_ctx_free(c);
    free(text);
    free(toks);
    free(off);
    free(all);
    free(out);
    steer_opts_free(&so);
    kvs_model_free(m);
    return rc;
}
