/* `kvsteer extract` and `kvsteer pairs`: contrastive pairs from a trace file,
 * and steering vectors extracted from them. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "eval/dataset.h"
#include "eval/pairs.h"
#include "progress.h"
#include "steer/steer.h"

static const char *k_help_extract =
    "usage: kvsteer extract -m MODEL.gguf --traces FILE.jsonl -o VEC.gguf [options]\n"
    "       kvsteer extract -m MODEL.gguf --pos FILE --neg FILE -o VEC.gguf [options]\n"
    "       kvsteer extract -m MODEL.gguf --pair-file FILE.jsonl -o VEC.gguf [options]\n"
    "Build N contrastive pairs from teacher traces, or take them from your own\n"
    "prompts, and write the mean-of-differences steering vectors (cache K/V, or\n"
    "residual stream with --kind act).\n\n";
static const char *k_help_pairs =
    "usage: kvsteer pairs -m MODEL.gguf (--traces FILE.jsonl | --pos FILE --neg FILE |\n"
    "                     --pair-file FILE.jsonl) [options] --dump\n"
    "Show the contrastive prompt pairs exactly as extraction would run them.\n"
    "      --dump             print every pair: its target trace row and shot rows,\n"
    "                         then the positive and the negative prompt text as\n"
    "                         tokenized (required: it is what this command does)\n\n";
static const char *k_help_opts =
    "  -m, --model FILE       GGUF model (required)\n"
    "      --traces FILE      trace JSONL: question, [choices], steps, answer\n"
    "      --pos FILE         your positive prompts, one per line (with --neg; line i of\n"
    "                         each file makes pair i)\n"
    "      --neg FILE         your negative prompts, one per line\n"
    "      --pair-file FILE   your pairs as JSON Lines {\"pos\": TEXT, \"neg\": TEXT}\n"
    "                         (prompts holding newlines)\n"
    "      --raw              with --pos/--pair-file: use each prompt as it is (special\n"
    "                         tokens recognised) instead of as the user turn of the chat\n"
    "                         template with the generation prompt\n"
    "      --pairs N          the first N usable trace rows (default 100), or the first\n"
    "                         N of your prompts (default: all)\n"
    "      --prefix TEXT      text appended after the generation prompt on both sides\n"
    "                         (for cache+cot: --prefix \"" EVAL_COT_TEXT "\", so the vector\n"
    "                         is measured where cache+cot applies it)\n"
    "with --traces:\n"
    "      --shots n          few-shot examples per prompt (default 5)\n"
    "      --select S         similar (nearest questions by the model's own mean-pooled\n"
    "                         final hidden state, cosine) or random (default similar)\n"
    "      --seed S           seed for --select random (default 0)\n"
    "      --exclude FILE     JSONL whose questions must not be used, as pairs or shots\n"
    "                         (an evaluation set, held-out questions); repeatable\n"
    "      --task T           render questions as task T's evaluation prompts\n"
    "                         (" EVAL_TASK_NAMES "; default: the task whose trace file has\n"
    "                         the --traces file's name, else question + \"\\n\\nChoices:\")\n"
    "      --embed-cache DIR  keep the question embeddings of --select similar in DIR,\n"
    "                         one file per model, trace file and kernel set, so later\n"
    "                         runs skip embedding (default: $XDG_CACHE_HOME/kvsteer,\n"
    "                         else ~/.cache/kvsteer); a damaged or foreign file is\n"
    "                         recomputed, an unwritable DIR only warns\n"
    "      --no-embed-cache   embed every question anew and keep nothing\n"
    "      --chat-template N  chatml|llama3|phi3|gemma when the file's template is unknown\n"
    "  -t, --threads N        worker threads (default: all cores)\n"
    "  -q, --quiet            no progress output\n";
static const char *k_help_extract_only =
    "      --position P       last | penultimate | K (K-th token from the end; default last)\n"
    "      --kind K           cache (K/V vectors, default) or act (residual stream, CAA)\n"
    "      --batch N          pairs decoded together (default 4)\n"
    "      --format F         kvsteer (default) or controlvector: with --kind act, a\n"
    "                         llama.cpp control vector (llama-cli --control-vector\n"
    "                         FILE) holding layers 1 to the last; layer 0 has no place\n"
    "                         in that format (docs/VECTOR_FORMAT.md)\n"
    "      --layers A-B       with --format controlvector: write only layers A-B (A-,\n"
    "                         or one layer A; counted from 0, A >= 1), e.g. the one\n"
    "                         layer used with --act-layer\n"
    "  -o, --output FILE      vector file to write (GGUF; written atomically)\n"
    "      --random-like VEC  instead of extracting: write a control vector with random\n"
    "                         directions (Gaussian, --seed S) and the per-layer K and V\n"
    "                         (or act) norms of VEC, which must be made for -m MODEL;\n"
    "                         its metadata copies VEC's and says what it is.  Takes only\n"
    "                         -m, --seed, -o, -q\n";

#define MAX_EXCLUDE 8

typedef struct xopts {
    const char *model, *traces, *out, *prefix, *tmpl, *pos, *neg, *pair_file, *task, *random_like;
    const char *embed_cache; /* --embed-cache DIR */
    int no_embed_cache;
    const char *exclude[MAX_EXCLUDE];
    int n_exclude, pair_opts; /* pair_opts: options that only extraction from pairs takes */
    int pairs, shots, threads, position, quiet, dump, batch, raw;
    int pairs_set, trace_only_set; /* given explicitly: --pairs; --shots/--select/--seed/--exclude */
    int cvec, layer_from, layer_to, layers_set; /* --format controlvector, --layers */
    pair_select select;
    kvs_steer_kind kind;
    uint64_t seed;
} xopts;

static void on_pairs_progress(int done, int total, const char *what, void *user) {
    progress *p = user;
    p->label = what;
    progress_update(p, done, total, "items", NULL);
}

static void on_extract_progress(int done, int total, void *user) { progress_update(user, done, total, "pairs", NULL); }

static int parse(const char *cmd, int argc, char **argv, xopts *o) {
    memset(o, 0, sizeof *o);
    o->pairs = 100;
    o->shots = 5;
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'},   {"traces", required_argument, 0, 'T'},
        {"pairs", required_argument, 0, 'N'},   {"shots", required_argument, 0, 'n'},
        {"select", required_argument, 0, 'S'},  {"seed", required_argument, 0, 's'},
        {"position", required_argument, 0, 'P'}, {"prefix", required_argument, 0, 'x'},
        {"exclude", required_argument, 0, 'E'}, {"kind", required_argument, 0, 'K'},
        {"output", required_argument, 0, 'o'},  {"threads", required_argument, 0, 't'},
        {"batch", required_argument, 0, 'B'},   {"chat-template", required_argument, 0, 'C'},
        {"quiet", no_argument, 0, 'q'},         {"dump", no_argument, 0, 'D'},
        {"task", required_argument, 0, 'k'},    {"random-like", required_argument, 0, 'R'},
        {"format", required_argument, 0, 'F'},  {"layers", required_argument, 0, 'L'},
        {"help", no_argument, 0, 'h'},          {"pos", required_argument, 0, 1},
        {"neg", required_argument, 0, 2},       {"pair-file", required_argument, 0, 3},
        {"raw", no_argument, 0, 4},             {"embed-cache", required_argument, 0, 5},
        {"no-embed-cache", no_argument, 0, 6},  {0, 0, 0, 0}};
    int c;
    optind = 1;
    opterr = 0;
    const int is_extract = !strcmp(cmd, "extract");
    while ((c = getopt_long(argc, argv, ":m:o:t:qh", opts, NULL)) != -1) {
        o->pair_opts += c == 'T' || c == 'N' || c == 'n' || c == 'S' || c == 'P' || c == 'x' || c == 'E' || c == 'K' ||
                        c == 'B' || c == 'C' || c == 'k' || c == 'D' || (c >= 1 && c <= 4);
        switch (c) {
        case 'm': o->model = optarg; break;
        case 'T': o->traces = optarg; break;
        case 'N': if (cli_int(cmd, "--pairs", optarg, 1, 1000000, &o->pairs)) return 1; o->pairs_set = 1; break;
        case 'n': if (cli_int(cmd, "--shots", optarg, 0, 1000, &o->shots)) return 1; o->trace_only_set = 1; break;
        case 's': if (cli_u64(cmd, "--seed", optarg, &o->seed)) return 1; o->trace_only_set = 1; break;
        case 'x': o->prefix = optarg; break;
        case 'E':
            if (o->n_exclude == MAX_EXCLUDE) return cli_error(cmd, "at most %d --exclude files", MAX_EXCLUDE);
            o->exclude[o->n_exclude++] = optarg;
            o->trace_only_set = 1;
            break;
        case 'k':
            if (!eval_task_find(optarg)) return cli_error(cmd, "unknown --task '%s' (one of " EVAL_TASK_NAMES ")", optarg);
            o->task = optarg;
            break;
        case 'R':
            if (!is_extract) return cli_error(cmd, "unknown option '--random-like' (see kvsteer %s --help)", cmd);
            o->random_like = optarg;
            break;
        case 1: o->pos = optarg; break;
        case 2: o->neg = optarg; break;
        case 3: o->pair_file = optarg; break;
        case 4: o->raw = 1; break;
        case 5:
            if (!optarg[0]) return cli_error(cmd, "--embed-cache expects a folder, got ''");
            o->embed_cache = optarg;
            o->trace_only_set = 1;
            break;
        case 6: o->no_embed_cache = 1; o->trace_only_set = 1; break;
        case 'C': o->tmpl = optarg; break;
        case 'o': o->out = optarg; break;
        case 't': if (cli_int(cmd, "-t", optarg, 1, 1024, &o->threads)) return 1; break;
        case 'B': if (cli_int(cmd, "--batch", optarg, 1, 64, &o->batch)) return 1; break;
        case 'q': o->quiet = 1; break;
        case 'D': o->dump = 1; break;
        case 'S':
            if (!strcmp(optarg, "similar")) o->select = SELECT_SIMILAR;
            else if (!strcmp(optarg, "random")) o->select = SELECT_RANDOM;
            else return cli_error(cmd, "--select expects similar or random, got '%s'", optarg);
            o->trace_only_set = 1;
            break;
        case 'P':
            if (!strcmp(optarg, "last")) o->position = 0;
            else if (!strcmp(optarg, "penultimate")) o->position = 1;
            else if (cli_int(cmd, "--position", optarg, 0, 1000, &o->position)) return 1;
            break;
        case 'F':
            if (!is_extract) return cli_error(cmd, "unknown option '--format' (see kvsteer %s --help)", cmd);
            if (!strcmp(optarg, "kvsteer")) o->cvec = 0;
            else if (!strcmp(optarg, "controlvector")) o->cvec = 1;
            else return cli_error(cmd, "--format expects kvsteer or controlvector, got '%s'", optarg);
            break;
        case 'L':
            if (!is_extract) return cli_error(cmd, "unknown option '--layers' (see kvsteer %s --help)", cmd);
            if (cli_layer_range(cmd, "--layers", optarg, &o->layer_from, &o->layer_to)) return 1;
            o->layers_set = 1;
            break;
        case 'K':
            if (!strcmp(optarg, "cache")) o->kind = KVS_STEER_CACHE;
            else if (!strcmp(optarg, "act")) o->kind = KVS_STEER_ACT;
            else return cli_error(cmd, "--kind expects cache or act, got '%s'", optarg);
            break;
        case 'h':
            fputs(is_extract ? k_help_extract : k_help_pairs, stdout);
            fputs(k_help_opts, stdout);
            if (is_extract) fputs(k_help_extract_only, stdout);
            exit(0);
        case ':': return cli_error(cmd, "option %s needs a value", argv[optind - 1]);
        default: return cli_error(cmd, "unknown option '%s' (see kvsteer %s --help)", argv[optind - 1], cmd);
        }
    }
    if (optind < argc) return cli_error(cmd, "unexpected argument '%s'", argv[optind]);
    if (o->random_like) {
        if (o->pair_opts) return cli_error(cmd, "--random-like takes only -m, --seed, -o and -q (no traces or pair options)");
        if (!o->model || !o->out) return cli_error(cmd, "--random-like needs -m MODEL and -o OUT.gguf");
        return 0;
    }
    const int own = o->pos || o->neg || o->pair_file;
    if (!o->model || (!o->traces && !own))
        return cli_error(cmd, "-m MODEL and --traces FILE (or --pos FILE --neg FILE, or --pair-file FILE) are required");
    if (o->traces && own) return cli_error(cmd, "--traces and --pos/--neg/--pair-file are two sources: give one");
    if (own && o->pair_file && (o->pos || o->neg)) return cli_error(cmd, "--pair-file holds both sides: no --pos/--neg");
    if (own && !o->pair_file && (!o->pos || !o->neg)) return cli_error(cmd, "--pos and --neg go together");
    if (own && o->trace_only_set)
        return cli_error(cmd, "--shots, --select, --seed, --exclude and the embedding cache apply to --traces only");
    if (o->embed_cache && o->no_embed_cache) return cli_error(cmd, "--embed-cache and --no-embed-cache contradict each other");
    if (o->raw && !own) return cli_error(cmd, "--raw applies to --pos/--neg and --pair-file only");
    if (is_extract && !o->out) return cli_error(cmd, "-o VEC.gguf is required");
    if (o->cvec && o->kind != KVS_STEER_ACT)
        return cli_error(cmd, "--format controlvector needs --kind act (control vectors steer the residual stream)");
    if (o->layers_set && !o->cvec) return cli_error(cmd, "--layers needs --format controlvector");
    if (o->cvec && !o->layers_set) o->layer_from = 1, o->layer_to = -1;
    if (o->cvec && o->layer_from < 1)
        return cli_error(cmd, "--layers %d-: a control vector cannot hold layer 0 (llama.cpp's layers start at 1)",
                         o->layer_from);
    if (!is_extract && !o->dump) return cli_error(cmd, "nothing to do: pass --dump to print the pairs");
    return 0;
}

/* The task whose prompt format the pairs take: --task, else the one whose trace
 * file the --traces file is, else none (the default format). */
static const eval_task *task_of(const xopts *o) {
    return o->task ? eval_task_find(o->task) : eval_task_for_traces(o->traces);
}

/* What the embedding cache did: a hit or a fresh file is progress (quiet with -q);
 * a file not trusted, or not written, is always said. */
static void report_cache(const char *cmd, const embcache_outcome *c, int quiet) {
    if (c->why[0])
        fprintf(stderr, "[%s] embedding cache not used: %s; recomputed %d question embeddings\n", cmd, c->why,
                c->n_computed);
    else if (quiet || c->state == EMBCACHE_OFF) {
    } else if (c->state == EMBCACHE_HIT)
        fprintf(stderr, "[%s] embedding cache hit: %d question embeddings from %s\n", cmd, c->n_cached, c->path);
    else if (c->state == EMBCACHE_PARTIAL)
        fprintf(stderr, "[%s] embedding cache: %d question embeddings from %s, %d computed and added\n", cmd,
                c->n_cached, c->path, c->n_computed);
    else
        fprintf(stderr, "[%s] embedding cache: %d question embeddings computed, kept in %s\n", cmd, c->n_computed,
                c->path);
    if (c->warning[0]) fprintf(stderr, "[%s] warning: %s\n", cmd, c->warning);
}

/* Loads model, traces and exclusions and builds the pairs (or takes them from
 * the prompt files); 0 or 1 (printed). */
static int build(const char *cmd, const xopts *o, kvs_model **m, qa_set *tr, pair_set *ps) {
    kvs_error err = {0};
    qa_set ex[MAX_EXCLUDE] = {{0}};
    if (!(*m = kvs_model_load(o->model, &err))) return cli_error(cmd, "%s", err.msg);
    if (!o->traces) {
        const int n = o->pairs_set ? o->pairs : 0;
        return pairs_from_prompts(*m, o->pair_file ? o->pair_file : o->pos, o->pair_file ? NULL : o->neg, !o->raw,
                                  o->tmpl, o->prefix, n, ps, &err)
                   ? cli_error(cmd, "%s%s", err.msg, cli_template_hint(&err))
                   : 0;
    }
    if (qa_load(o->traces, 1, tr, &err)) return cli_error(cmd, "%s", err.msg);
    for (int i = 0; i < o->n_exclude; i++)
        if (qa_load(o->exclude[i], 0, &ex[i], &err)) {
            for (int j = 0; j < i; j++) qa_free(&ex[j]);
            return cli_error(cmd, "%s", err.msg);
        }
    char cache_dir[4096];
    const char *cache = o->no_embed_cache ? NULL : o->embed_cache;
    if (!cache && !o->no_embed_cache && o->select == SELECT_SIMILAR && o->shots > 0) {
        if (embcache_default_dir(cache_dir, sizeof cache_dir, &err))
            fprintf(stderr, "[%s] warning: %s; embedding without a cache\n", cmd, err.msg);
        else cache = cache_dir;
    }
    embcache_outcome co;
    progress pr;
    progress_init(&pr, "pairs", o->quiet);
    pair_opts po = {.n_pairs = o->pairs, .n_shots = o->shots, .select = o->select, .seed = o->seed,
                    .prefix = o->prefix, .exclude = o->n_exclude ? ex : NULL, .n_exclude = o->n_exclude,
                    .n_threads = o->threads, .chat_template = o->tmpl, .progress = on_pairs_progress, .user = &pr,
                    .task = task_of(o), .embed_cache = cache, .model_path = o->model, .cache_out = &co};
    int rc = pairs_build(*m, tr, &po, ps, &err);
    if (!rc) report_cache(cmd, &co, o->quiet);
    for (int i = 0; i < o->n_exclude; i++) qa_free(&ex[i]);
    return rc ? cli_error(cmd, "%s%s", err.msg, cli_template_hint(&err)) : 0;
}

int cmd_pairs(int argc, char **argv) {
    xopts o;
    if (parse("pairs", argc, argv, &o)) return 1;
    kvs_model *m = NULL;
    qa_set tr = {0};
    pair_set ps = {0};
    int rc = build("pairs", &o, &m, &tr, &ps);
    for (int i = 0; i < ps.n && !rc; i++) {
        if (!ps.target) {
            printf("=== pair %d\n--- positive ---\n%s\n--- negative ---\n%s\n", i, ps.pos[i], ps.neg[i]);
            continue;
        }
        printf("=== pair %d: target row %d (%s); shots:", i, ps.target[i], tr.rows[ps.target[i]].id);
        for (int k = 0; k < ps.n_shots; k++) printf(" %d", ps.shots[i][k]);
        printf("\n--- positive ---\n%s\n--- negative ---\n%s\n", ps.pos[i], ps.neg[i]);
    }
    pairs_free(&ps);
    qa_free(&tr);
    kvs_model_free(m);
    return rc ? rc : (fflush(stdout) ? 1 : 0);
}

/* The random-direction control of an extracted vector (--random-like). */
static int random_like(const xopts *o) {
    kvs_error err = {0};
    kvs_model *m = kvs_model_load(o->model, &err);
    if (!m) return cli_error("extract", "%s", err.msg);
    kvs_steer *src = kvs_steer_load(o->random_like, m, &err), *s = NULL;
    int rc = src ? 0 : cli_error("extract", "%s", err.msg);
    if (!rc && !(s = steer_random_like(src, o->seed, &err))) rc = cli_error("extract", "%s", err.msg);
    if (!rc) {
        char buf[64];
        kvs_steer_set_meta(s, "control", "random directions with the per-layer norms of random_like");
        kvs_steer_set_meta(s, "random_like", cli_basename(o->random_like));
        snprintf(buf, sizeof buf, "%llu", (unsigned long long)o->seed);
        kvs_steer_set_meta(s, "random_seed", buf);
        if (kvs_steer_save(s, o->out, &err)) rc = cli_error("extract", "%s", err.msg);
        else if (!o->quiet) fprintf(stderr, "[extract] wrote %s (random directions, norms of %s)\n", o->out, o->random_like);
    }
    kvs_steer_free(s);
    kvs_steer_free(src);
    kvs_model_free(m);
    return rc;
}

int cmd_extract(int argc, char **argv) {
    xopts o;
    if (parse("extract", argc, argv, &o)) return 1;
    if (cli_check_output("extract", o.out)) return 1; /* not after an hour of extraction */
    if (o.random_like) return random_like(&o);
    kvs_model *m = NULL;
    qa_set tr = {0};
    pair_set ps = {0};
    kvs_steer *s = NULL;
    kvs_error err = {0};
    int rc = build("extract", &o, &m, &tr, &ps);
    if (!rc && o.cvec) {
        kvs_model_info mi;
        kvs_model_get_info(m, &mi);
        const int to = o.layer_to < 0 ? mi.n_layer - 1 : o.layer_to;
        if (o.layer_from > to || to >= mi.n_layer)
            rc = cli_error("extract", "--layers %d-%d: the model's control-vector layers are 1-%d", o.layer_from, to,
                           mi.n_layer - 1);
    }
    if (!rc) {
        progress pr;
        progress_init(&pr, "extract", o.quiet);
        kvs_extract_params xp = {o.kind, o.position, o.threads, o.batch, on_extract_progress, &pr};
        const double t0 = progress_now();
        s = kvs_steer_extract(m, (const char *const *)ps.pos, (const char *const *)ps.neg, ps.n, &xp, &err);
        if (!s) rc = cli_error("extract", "%s", err.msg);
        /* the work done, so that extraction speed can be set beside prompt-processing speed */
        long long toks = 0;
        for (int i = 0; i < ps.n && !rc && !o.quiet; i++)
            for (int side = 0; side < 2; side++) {
                const char *t = side ? ps.neg[i] : ps.pos[i];
                const int k = kvs_tokenize(m, t, strlen(t), -1, 1, NULL, 0, &err);
                toks += k > 0 ? k : 0;
            }
        const double el = progress_now() - t0;
        if (!rc && !o.quiet)
            fprintf(stderr, "[extract] %lld prompt tokens in %.1f s (%.1f tokens/s)\n", toks, el, el > 0 ? toks / el : 0.0);
    }
    if (!rc) {
        char buf[64];
        /* the order of the entries is kept as it was, so a vector extracted again is
         * byte-identical (run files record its fingerprint) */
        if (o.traces) kvs_steer_set_meta(s, "traces", cli_basename(o.traces));
        snprintf(buf, sizeof buf, "%d", ps.n);
        kvs_steer_set_meta(s, "pairs", buf);
        if (o.traces) {
            snprintf(buf, sizeof buf, "%d", o.shots);
            kvs_steer_set_meta(s, "shots", buf);
            kvs_steer_set_meta(s, "select", o.select == SELECT_SIMILAR ? "similar" : "random");
            snprintf(buf, sizeof buf, "%llu", (unsigned long long)o.seed);
            kvs_steer_set_meta(s, "seed", buf);
        } else if (o.pair_file) {
            kvs_steer_set_meta(s, "pair_file", cli_basename(o.pair_file));
        } else {
            kvs_steer_set_meta(s, "pos", cli_basename(o.pos));
            kvs_steer_set_meta(s, "neg", cli_basename(o.neg));
        }
        if (!o.traces) kvs_steer_set_meta(s, "render", o.raw ? "raw" : "chat");
        snprintf(buf, sizeof buf, "%d", o.position);
        kvs_steer_set_meta(s, "position", o.position == 0 ? "last" : o.position == 1 ? "penultimate" : buf);
        kvs_steer_set_meta(s, "prefix", o.prefix ? o.prefix : "");
        kvs_steer_set_meta(s, "kind", o.kind == KVS_STEER_CACHE ? "cache" : "act");
        kvs_steer_set_meta(s, "keys", "post-rope");
        if (o.traces) {
            /* paths as given: an evaluation set and a held-out set share file names */
            char ex[4096] = "";
            for (int i = 0; i < o.n_exclude; i++) {
                const size_t l = strlen(ex);
                snprintf(ex + l, sizeof ex - l, "%s%s", i ? "," : "", o.exclude[i]);
            }
            kvs_steer_set_meta(s, "exclude", ex);
            const eval_task *task = task_of(&o);
            kvs_steer_set_meta(s, "task_format", task ? task->name : "default");
        }
        if (o.cvec ? kvs_steer_save_controlvector(s, o.out, o.layer_from, o.layer_to, &err)
                   : kvs_steer_save(s, o.out, &err))
            rc = cli_error("extract", "%s", err.msg);
        else if (!o.quiet && o.traces) fprintf(stderr, "[extract] wrote %s (%d pairs, %d shots)\n", o.out, ps.n, o.shots);
        else if (!o.quiet) fprintf(stderr, "[extract] wrote %s (%d pairs)\n", o.out, ps.n);
    }
    kvs_steer_free(s);
    pairs_free(&ps);
    qa_free(&tr);
    kvs_model_free(m);
    return rc;
}
