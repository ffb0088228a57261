/* `kvsteer bench`: throughput of the engine in the shapes that matter -
 * prompt processing, batch-1 generation at a given depth, batched generation,
 * and generation under cache / activation steering.  Synthetic token ids (as
 * llama-bench uses) so runs are comparable with it. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "progress.h"

static const char *k_help =
    "usage: kvsteer bench -m MODEL.gguf [options]\n"
    "Measure tokens/second; prints one JSON object per test (and a table on stderr).\n\n"
    "  -m, --model FILE   GGUF model (required)\n"
    "  -t, --threads N    worker threads, the most each step uses: the engine times its\n"
    "                     steps and uses fewer when that is faster (another process on\n"
    "                     a core); the JSON's mean_threads says how many it used\n"
    "                     (default: all cores)\n"
    "      --fixed-threads  every step uses all N threads (as KVS_FIXED_THREADS=1)\n"
    "      --pp N         prompt-processing test of N tokens (default 512; 0 = skip)\n"
    "      --tg N         generation test of N tokens (default 128; 0 = skip)\n"
    "      --depth D      tokens already in the cache before the tg test (default 0)\n"
    "      --batch B      batched-generation test with B sequences, each holding\n"
    "                     max(16, D) tokens first (default 0 = skip)\n"
    "      --kv-f16       keep the KV cache as IEEE half instead of float\n"
    "      --steer        also run tg with a one-shot cache edit and with an\n"
    "                     activation hook at the middle layer (random vectors)\n"
    "  -r, --reps N       repetitions; the mean rate is reported, as llama-bench does,\n"
    "                     with the best and worst beside it (default 3); each test\n"
    "                     keeps its context across repetitions, emptied each time\n"
    "      --kernels K    kernel set: scalar, avx2, avx512vnni or amx (default: the\n"
    "                     best this machine runs; the JSON names the one used)\n";

typedef struct bench_cfg {
    int pp, tg, depth, batch, reps, threads, steer, kv_f16, fixed;
} bench_cfg;

/* Each test keeps one context across its repetitions (emptied before each), as
 * llama-bench does: the engine's choice of thread count (threadctl) is learnt once,
 * as in a long run, not again by every repetition. */
static kvs_ctx *reuse(kvs_ctx **slot, int n_seq) {
    kvs_error err = {0};
    for (int s = 0; s < n_seq; s++)
        if (kvs_seq_truncate(*slot, s, 0, &err)) return cli_error("bench", "%s", err.msg), NULL;
    return *slot;
}

static kvs_ctx *mkctx(const kvs_model *m, int n_ctx, int n_seq, const bench_cfg *b) {
    kvs_ctx_params p = kvs_ctx_default_params();
    p.n_ctx = n_ctx;
    p.n_seq = n_seq;
    p.n_threads = b->threads;
    p.kv_f16 = b->kv_f16;
    kvs_error err = {0};
    kvs_ctx *c = kvs_ctx_new(m, &p, &err);
    if (!c) cli_error("bench", "%s", err.msg);
    else if (b->fixed) kvs_ctx_pin_threads(c, -1);
    return c;
}

/* Process CPU seconds: on a shared machine the wall-clock rate moves with the
 * neighbours' load, the CPU-time rate much less (with -t 1 it is the rate of the
 * core while it ran this; with more threads, spinning waits count too). */
static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static kvs_token synth(int i, int n_vocab) { return (kvs_token)((1000 + 7919 * (unsigned)i) % (unsigned)n_vocab); }

/* Decode tokens [0, n) of sequence seq starting at its current length, in one batch. */
static int feed(kvs_ctx *c, int seq, int n, int n_vocab) {
    kvs_token *t = malloc(sizeof *t * (size_t)n);
    int32_t *pos = malloc(sizeof *pos * (size_t)n), *sq = malloc(sizeof *sq * (size_t)n);
    int base = kvs_seq_len(c, seq);
    for (int i = 0; i < n; i++) {
        t[i] = synth(base + i, n_vocab);
        pos[i] = base + i;
        sq[i] = seq;
    }
    kvs_batch b = {n, t, pos, sq, NULL};
    kvs_error err = {0};
    int rc = kvs_decode(c, &b, &err);
    if (rc) cli_error("bench", "%s", err.msg);
    free(t), free(pos), free(sq);
    return rc;
}

typedef enum { TG_PLAIN, TG_CACHE, TG_ACT } tg_mode;

static double run_tg(const kvs_model *m, const kvs_model_info *mi, const bench_cfg *b, tg_mode mode, kvs_ctx **slot,
                     double *cpu, double *thr) {
    kvs_ctx *c = *slot ? reuse(slot, 1) : (*slot = mkctx(m, b->depth + b->tg + 2, 1, b));
    if (!c) return -1;
    kvs_error err = {0};
    if (feed(c, 0, b->depth + 1, mi->n_vocab)) return -1;
    float *vec = calloc((size_t)(mi->n_embd > mi->n_head_kv * mi->head_dim ? mi->n_embd : mi->n_head_kv * mi->head_dim), sizeof(float));
    for (int i = 0; vec && i < mi->n_embd; i++) vec[i] = 0.01f * (float)((i * 37) % 11 - 5);
    if (mode == TG_CACHE)
        for (int l = 1; l < mi->n_layer; l++) kvs_cache_add(c, 0, b->depth, l, KVS_V, vec, 1.0f, &err);
    if (mode == TG_ACT) kvs_set_residual_add(c, 0, mi->n_layer / 2, vec, 1.0f, &err);
    double t0 = progress_now(), c0 = cpu_now();
    for (int i = 0; i < b->tg; i++)
        if (feed(c, 0, 1, mi->n_vocab)) return -1;
    double el = progress_now() - t0;
    *cpu = b->tg / (cpu_now() - c0);
    *thr = kvs_ctx_mean_threads(c);
    free(vec);
    return b->tg / el;
}

static double run_pp(const kvs_model *m, const kvs_model_info *mi, const bench_cfg *b, kvs_ctx **slot, double *cpu,
                     double *thr) {
    kvs_ctx *c = *slot ? reuse(slot, 1) : (*slot = mkctx(m, b->pp + 1, 1, b));
    if (!c) return -1;
    double t0 = progress_now(), c0 = cpu_now();
    if (feed(c, 0, b->pp, mi->n_vocab)) return -1;
    double el = progress_now() - t0;
    *cpu = b->pp / (cpu_now() - c0);
    *thr = kvs_ctx_mean_threads(c);
    return b->pp / el;
}

static double run_batch(const kvs_model *m, const kvs_model_info *mi, const bench_cfg *b, kvs_ctx **slot, double *cpu,
                        double *thr) {
    /* each sequence holds `depth` tokens first: attention reads grow with it */
    const int B = b->batch, prompt = b->depth > 16 ? b->depth : 16;
    kvs_ctx *c = *slot ? reuse(slot, B) : (*slot = mkctx(m, prompt + b->tg + 2, B, b));
    if (!c) return -1;
    for (int s = 0; s < B; s++)
        if (feed(c, s, prompt, mi->n_vocab)) return -1;
    kvs_token *t = malloc(sizeof *t * (size_t)B);
    int32_t *pos = malloc(sizeof *pos * (size_t)B), *sq = malloc(sizeof *sq * (size_t)B);
    int8_t *want = malloc((size_t)B);
    kvs_error err = {0};
    double t0 = progress_now(), c0 = cpu_now();
    for (int i = 0; i < b->tg; i++) {
        for (int s = 0; s < B; s++) {
            pos[s] = kvs_seq_len(c, s);
            t[s] = synth(pos[s] + s, mi->n_vocab);
            sq[s] = s;
            want[s] = 1;
        }
        kvs_batch bt = {B, t, pos, sq, want};
        if (kvs_decode(c, &bt, &err)) return cli_error("bench", "%s", err.msg), -1;
    }
    double el = progress_now() - t0;
    *cpu = (double)B * b->tg / (cpu_now() - c0);
    *thr = kvs_ctx_mean_threads(c);
    free(t), free(pos), free(sq), free(want);
    return (double)B * b->tg / el;
}

/* `seqs`: the sequences the test decodes together (1 but for tg_batched), not the
 * --batch option, which only the batched test uses. */
static void report(const char *test, const bench_cfg *b, int seqs, const char *model, const double *v,
                   const double *cpu, const double *thr) {
    double sum = 0, best = 0, worst = 1e30, cpu_sum = 0, thr_sum = 0;
    for (int r = 0; r < b->reps; r++) {
        sum += v[r];
        cpu_sum += cpu[r];
        thr_sum += thr[r];
        best = v[r] > best ? v[r] : best;
        worst = v[r] < worst ? v[r] : worst;
    }
    double mean = sum / b->reps;
    printf("{\"test\": \"%s\", \"model\": \"%s\", \"threads\": %d, \"pp\": %d, \"tg\": %d, \"depth\": %d, "
           "\"batch\": %d, \"reps\": %d, \"tokens_per_s\": %.2f, \"best_tokens_per_s\": %.2f, "
           "\"worst_tokens_per_s\": %.2f, \"tokens_per_cpu_s\": %.2f, \"mean_threads\": %.2f, "
           "\"fixed_threads\": %s, \"kernels\": \"%s\", \"kv_cache\": \"%s\"}\n",
           test, model, b->threads, b->pp, b->tg, b->depth, seqs, b->reps, mean, best, worst, cpu_sum / b->reps,
           thr_sum / b->reps, b->fixed ? "true" : "false", kvs_kernels_name(), b->kv_f16 ? "f16" : "f32");
    fprintf(stderr, "%-22s %10.2f tokens/s (mean of %d; best %.2f, worst %.2f; %.2f per CPU second; %.2f threads)\n",
            test, mean, b->reps, best, worst, cpu_sum / b->reps, thr_sum / b->reps);
    fflush(stdout);
}

int cmd_bench(int argc, char **argv) {
    const char *model = NULL;
    bench_cfg b = {512, 128, 0, 0, 3, 0, 0, 0, 0};
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'}, {"threads", required_argument, 0, 't'},
        {"pp", required_argument, 0, 'p'},    {"tg", required_argument, 0, 'n'},
        {"depth", required_argument, 0, 'd'}, {"batch", required_argument, 0, 'b'},
        {"steer", no_argument, 0, 'S'},       {"reps", required_argument, 0, 'r'},
        {"kernels", required_argument, 0, 'K'}, {"kv-f16", no_argument, 0, 'F'},
        {"fixed-threads", no_argument, 0, 'X'},
        {"help", no_argument, 0, 'h'},        {0, 0, 0, 0}};
    int o;
    optind = 1;
    opterr = 0;
    while ((o = getopt_long(argc, argv, ":m:t:r:h", opts, NULL)) != -1) {
        switch (o) {
        case 'm': model = optarg; break;
        case 't': if (cli_int("bench", "-t", optarg, 1, 1024, &b.threads)) return 1; break;
        case 'p': if (cli_int("bench", "--pp", optarg, 0, 1 << 20, &b.pp)) return 1; break;
        case 'n': if (cli_int("bench", "--tg", optarg, 0, 1 << 20, &b.tg)) return 1; break;
        case 'd': if (cli_int("bench", "--depth", optarg, 0, 1 << 20, &b.depth)) return 1; break;
        case 'b': if (cli_int("bench", "--batch", optarg, 0, 4096, &b.batch)) return 1; break;
        case 'r': if (cli_int("bench", "--reps", optarg, 1, 1000, &b.reps)) return 1; break;
        case 'S': b.steer = 1; break;
        case 'F': b.kv_f16 = 1; break;
        case 'X': b.fixed = 1; break;
        case 'K':
            if (kvs_kernels_use(optarg))
                return cli_error("bench", "--kernels %s: not a kernel set this machine runs", optarg);
            break;
        case 'h': fputs(k_help, stdout); return 0;
        case ':': return cli_error("bench", "option %s needs a value", argv[optind - 1]);
        default: return cli_error("bench", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (!model || optind < argc) return cli_error("bench", "usage: kvsteer bench -m MODEL.gguf [options]");
    kvs_error err = {0};
    kvs_model *m = kvs_model_load(model, &err);
    if (!m) return cli_error("bench", "%s", err.msg);
    kvs_model_info mi;
    kvs_model_get_info(m, &mi);
    const char *base = strrchr(model, '/');
    base = base ? base + 1 : model;
    /* one untimed warm-up pass pages the weights in */
    kvs_ctx *w = mkctx(m, 64, 1, &b);
    if (!w || feed(w, 0, 32, mi.n_vocab)) return 1;
    kvs_ctx_free(w);
    struct { const char *name; int on; int kind; } tests[] = {
        {"pp", b.pp > 0, 0}, {"tg", b.tg > 0, 1}, {"tg_cache_steer", b.tg > 0 && b.steer, 2},
        {"tg_act_steer", b.tg > 0 && b.steer, 3}, {"tg_batched", b.tg > 0 && b.batch > 0, 4}};
    enum { N_TESTS = sizeof tests / sizeof *tests };
    /* Repetitions go round the tests (r outer) so that slow drifts of a shared
     * machine fall on every test alike; the steering ratios depend on it. */
    double *rates = calloc((size_t)N_TESTS * b.reps * 3, sizeof *rates), *cpu = rates + (size_t)N_TESTS * b.reps;
    double *thr = cpu + (size_t)N_TESTS * b.reps;
    if (!rates) return kvs_model_free(m), cli_error("bench", "out of memory");
    kvs_ctx *ctxs[N_TESTS] = {0};
    int failed = 0;
    for (int r = 0; r < b.reps && !failed; r++) {
        for (size_t i = 0; i < N_TESTS; i++) {
            if (!tests[i].on) continue;
            double *cr = cpu + i * b.reps + r, *tr = thr + i * b.reps + r;
            kvs_ctx **slot = &ctxs[i];
            double v = tests[i].kind == 0   ? run_pp(m, &mi, &b, slot, cr, tr)
                       : tests[i].kind == 1 ? run_tg(m, &mi, &b, TG_PLAIN, slot, cr, tr)
                       : tests[i].kind == 2 ? run_tg(m, &mi, &b, TG_CACHE, slot, cr, tr)
                       : tests[i].kind == 3 ? run_tg(m, &mi, &b, TG_ACT, slot, cr, tr)
                                            : run_batch(m, &mi, &b, slot, cr, tr);
            if (v < 0) {
                failed = 1;
                break;
            }
            rates[i * b.reps + r] = v;
        }
    }
    for (size_t i = 0; i < N_TESTS; i++) kvs_ctx_free(ctxs[i]);
    if (failed) {
        free(rates);
        kvs_model_free(m);
        return 1;
    }
    for (size_t i = 0; i < N_TESTS; i++)
        if (tests[i].on)
            report(tests[i].name, &b, tests[i].kind == 4 ? b.batch : 1, base, rates + i * b.reps, cpu + i * b.reps,
                   thr + i * b.reps);
    free(rates);
    kvs_model_free(m);
    return 0;
}
