#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "engine/ggtype.h"
#include "engine/gguf.h"
#include "engine/model.h"
#include "eval/fingerprint.h"
#include "steer/steer.h"

static const char *k_help =
    "usage: kvsteer inspect [--numerics] FILE.gguf\n"
    "Describe a GGUF file: architecture, hyper-parameters, vocabulary and tensor\n"
    "types, and whether kvsteer can run it.  A steering vector file (kvsteer's own\n"
    "or a llama.cpp control vector) is described as a vector: kind, the model it was\n"
    "made for, its layers and their norms, how it was extracted.\n"
    "  --numerics   for a runnable model, also the fingerprint of the arithmetic this\n"
    "               binary does on it (a line \"numerics: HEX\"), as eval run files\n"
    "               record it: two binaries with the same value compute the same bits\n";

static void print_kv(const gguf_file *f, const gguf_kv *kv) {
    printf("  %-44s ", kv->key);
    if (kv->type == GGUF_STR) {
        const gguf_str *s = &kv->strs[0];
        int n = s->n > 72 ? 72 : (int)s->n;
        printf("\"");
        for (int i = 0; i < n; i++) putchar(s->p[i] == '\n' ? ' ' : s->p[i]);
        printf(s->n > 72 ? "...\" (%llu bytes)\n" : "\"\n", (unsigned long long)s->n);
    } else if (kv->type == GGUF_ARR) {
        printf("[%s x %llu]\n", gguf_vtype_name(kv->arr_type), (unsigned long long)kv->arr_n);
    } else if (kv->type == GGUF_F32 || kv->type == GGUF_F64) {
        double v = 0;
        gguf_get_f64(f, kv->key, &v);
        printf("%g\n", v);
    } else if (kv->type == GGUF_BOOL) {
        int v = 0;
        gguf_get_bool(f, kv->key, &v);
        printf("%s\n", v ? "true" : "false");
    } else if (kv->type == GGUF_U64) { /* hashes use the whole range */
        uint64_t v = 0;
        gguf_get_u64(f, kv->key, &v);
        /* a tokenizer fingerprint is printed as everywhere else: 16 hex digits */
        const size_t kl = strlen(kv->key);
        if (kl >= 14 && !strcmp(kv->key + kl - 14, "tokenizer_hash")) printf("%016llx\n", (unsigned long long)v);
        else printf("%llu\n", (unsigned long long)v);
    } else {
        int64_t v = 0;
        if (gguf_get_i64(f, kv->key, &v)) printf("(out of range)\n");
        else printf("%lld\n", (long long)v);
    }
}

static double norm(const float *x, int n) {
    double s = 0;
    for (int i = 0; i < n; i++) s += (double)x[i] * x[i];
    return sqrt(s);
}

/* A vector file: what it is and what it was made for, instead of a model's
 * "not runnable". */
static void describe_vector(const char *path) {
    kvs_error err = {0};
    kvs_steer *v = kvs_steer_load(path, NULL, &err);
    if (!v) {
        printf("vector: unreadable (%s)\n", err.msg);
        return;
    }
    const int cache = v->kind == KVS_STEER_CACHE;
    printf("vector: %s steering (%s), %s format\n", cache ? "KV-cache" : "activation",
           cache ? "use with --steer" : "use with --act", v->format == KVS_FORMAT_CONTROLVECTOR ? "llama.cpp control-vector" : "kvsteer");
    if (v->format == KVS_FORMAT_CONTROLVECTOR)
        printf("made for: a model of width %d (model hint '%s'; the file records no more)\n", v->dim,
               v->arch && v->arch[0] ? v->arch : "none");
    else
        printf("made for: arch %s, %d layers, %d KV heads x %d, width %d, tokenizer %016llx\n", v->arch, v->n_layer,
               v->n_head_kv, v->head_dim, v->n_embd, (unsigned long long)v->tokenizer_hash);
    printf("layers (L2 norms%s):\n", cache ? ", K / V" : "");
    for (int l = 0; l < v->n_layer; l++) {
        if (cache && v->k[l]) printf("  %3d  %10.4f / %10.4f\n", l, norm(v->k[l], v->dim), norm(v->v[l], v->dim));
        else if (!cache && v->act[l]) printf("  %3d  %10.4f\n", l, norm(v->act[l], v->dim));
    }
    if (v->n_meta) printf("extracted with:\n");
    for (int i = 0; i < v->n_meta; i++) printf("  %-36s %s\n", v->meta_key[i], v->meta_val[i]);
    kvs_steer_free(v);
}

int cmd_inspect(int argc, char **argv) {
    if (argc == 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
        fputs(k_help, stdout);
        return 0;
    }
    const int numerics = argc == 3 && !strcmp(argv[1], "--numerics");
    if (argc != 2 + numerics || argv[argc - 1][0] == '-')
        return cli_error("inspect", "usage: kvsteer inspect [--numerics] FILE.gguf");
    const char *path = argv[argc - 1];
    kvs_error err = {0};
    gguf_file *f = gguf_open(path, &err);
    if (!f) return cli_error("inspect", "%s", err.msg);
    printf("file: %s\nGGUF version %u, %llu metadata entries, %llu tensors, %zu bytes\n", path, f->version,
           (unsigned long long)f->n_kv, (unsigned long long)f->n_tensors, f->size);
    printf("metadata:\n");
    for (uint64_t i = 0; i < f->n_kv; i++) print_kv(f, &f->kv[i]);
    unsigned long long count[GGT_COUNT] = {0}, bytes[GGT_COUNT] = {0}, params = 0;
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        const gguf_tensor *t = &f->tensors[i];
        count[t->type]++;
        bytes[t->type] += t->nbytes;
        params += t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3];
    }
    printf("tensors: %llu parameters\n", params);
    for (int t = 0; t < GGT_COUNT; t++)
        if (count[t]) printf("  %-8s %5llu tensors %12llu bytes\n", ggtype_get((uint32_t)t)->name, count[t], bytes[t]);
    gguf_str ga = {0};
    const int is_vector = !gguf_get_str(f, "general.architecture", &ga) &&
                          ((ga.n == 14 && !memcmp(ga.p, "kvsteer-vector", 14)) || (ga.n == 13 && !memcmp(ga.p, "controlvector", 13)));
    gguf_close(f);
    if (is_vector) {
        describe_vector(path);
        printf("runnable: no (a steering vector file, not a model)\n");
        return 0;
    }
    kvs_model *m = kvs_model_load(path, &err);
    if (!m) {
        printf("runnable: no (%s)\n", err.msg);
        return 0;
    }
    kvs_model_info mi;
    kvs_model_get_info(m, &mi);
    printf("model: arch %s, %d layers, n_embd %d, heads %d (kv %d) x %d, ffn %d, vocab %d, context %d,\n"
           "       rope base %g, rms eps %g, bos %d, eos %d, eot %d, add_bos %d, tokenizer %016llx\n",
           mi.arch, mi.n_layer, mi.n_embd, mi.n_head, mi.n_head_kv, mi.head_dim, mi.n_ff, mi.n_vocab,
           mi.n_ctx_train, mi.rope_freq_base, mi.norm_eps, mi.bos_id, mi.eos_id, mi.eot_id, mi.add_bos,
           (unsigned long long)mi.tokenizer_hash);
    const hparams *hp = &m->hp;
    int n_swa_layers = 0;
    for (int l = 0; l < hp->n_layer; l++) n_swa_layers += hp->swa_layer[l];
    printf("       rotary %s over %d dims, freq scale %g, factors %s, attn factor %g; q.k scale %g;\n"
           "       sliding window %d on %d of %d layers",
           hp->rope == ROPE_NORM ? "norm" : "neox", hp->rope_dim, hp->rope_freq_scale,
           m->rope_freqs_owned ? "llama3 (from metadata)" : m->rope_freqs ? "rope_freqs" : m->rope_long ? "long/short" : "none",
           hp->rope_attn_factor, hp->attn_scale, hp->n_swa, n_swa_layers, hp->n_layer);
    if (n_swa_layers && n_swa_layers < hp->n_layer) printf(" (those: rope base %g, unscaled)", hp->rope_base_swa);
    printf("\n");
    printf("runnable: yes\n");
    char fp[17];
    if (numerics && eval_numerics_fingerprint(m, 0, 0, fp, &err)) {
        kvs_model_free(m);
        return cli_error("inspect", "%s: %s", path, err.msg);
    }
    if (numerics) printf("numerics: %s (kernels %s)\n", fp, kvs_kernels_name());
    kvs_model_free(m);
    return 0;
}
