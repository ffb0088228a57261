/* vocab.c - a tokenizer's vocabulary from GGUF metadata: token texts, types
 * and scores, BPE merges, special and end-of-generation tokens, the
 * pre-tokenizer's regular expressions chosen by the file's pre-tokenizer name;
 * and a token's bytes back from its text (decoding). */
#include "vocab.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

static uint32_t pow2_at_least(uint64_t n) {
    uint32_t c = 16;
    while (c < n) c <<= 1;
    return c;
}

/* Later duplicates replace earlier ones (last id wins). */
static void vocab_insert(tokenizer *t, int32_t id) {
    const char *s = tok_text(t, id);
    size_t n = t->tlen[id];
    uint32_t h = (uint32_t)fnv1a(FNV1A_INIT, s, n);
    for (uint32_t i = h & t->vmask;; i = (i + 1) & t->vmask) {
        int32_t cur = t->vslot[i];
        if (cur < 0 || (t->tlen[cur] == n && memcmp(tok_text(t, cur), s, n) == 0)) {
            t->vslot[i] = id;
            return;
        }
    }
}

static void merge_insert(tokenizer *t, int32_t a, int32_t b, int32_t rank, int32_t result) {
    uint64_t key = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
    for (uint32_t i = merge_hash(key) & t->mmask;; i = (i + 1) & t->mmask) {
        merge_ent *e = &t->mslot[i];
        if (e->key == key) return;
        if (e->key == MERGE_EMPTY) {
            e->key = key;
            e->rank = rank;
            e->result = result;
            return;
        }
    }
}

/* ------------------------------------------------------- pre-tokenizer rules */

/* The white-space set of the reference implementation (Unicode White_Space),
 * spelled out so that PCRE2's own idea of \s cannot differ from it. */
#define WS "\\t\\n\\x0B\\f\\r \\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}"

static const char RE_GPT2[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^" WS "\\p{L}\\p{N}]+|[" WS "]+(?![^" WS "])|[" WS "]+";
static const char RE_LLAMA3[] =
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}"
    "| ?[^" WS "\\p{L}\\p{N}]+[\\r\\n]*|[" WS "]*[\\r\\n]+|[" WS "]+(?![^" WS "])|[" WS "]+";
static const char RE_QWEN2[] =
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}"
    "| ?[^" WS "\\p{L}\\p{N}]+[\\r\\n]*|[" WS "]*[\\r\\n]+|[" WS "]+(?![^" WS "])|[" WS "]+";
static const char RE_DIGIT[] = "\\p{N}";
static const char RE_DIGITS[] = "\\p{N}+";
static const char RE_PUNCT[] = "[\\p{P}\\$\\+<=>\\^~\\|]+";
static const char RE_DIGIT3[] = "[0-9][0-9][0-9]";

typedef struct pre_family {
    const char *names; /* NUL-separated, double-NUL terminated */
    const char *re[MAX_RE];
    int ignore_merges;
} pre_family;

static const pre_family PRE_FAMILIES[] = {
    {"smollm\0starcoder\0refact\0command-r\0codeshell\0exaone\0minerva-7b\0mellum2\0",
     {RE_DIGIT, RE_GPT2}, 0},
    {"gpt-2\0gpt2\0phi-2\0jina-es\0jina-de\0gigachat\0jina-v2-es\0jina-v2-de\0a.x-4.0\0mellum\0"
     "modern-bert\0jina-v1-en\0jina-v2-code\0roberta-bpe\0mpt\0olmo\0jais\0trillion\0"
     "granite-docling\0exaone4\0",
     {RE_GPT2}, 0},
    {"llama3\0llama-v3\0llama-bpe\0falcon3\0falcon-h1\0pixtral\0midm-2.0\0lfm2\0jina-v5-nano\0",
     {RE_LLAMA3}, 1},
    {"dbrx\0smaug-bpe\0", {RE_LLAMA3}, 0},
    {"qwen2\0deepseek-r1-qwen\0kormo\0f2llmv2\0megrez\0stablelm2\0hunyuan\0solar-open\0",
     {RE_QWEN2}, 0},
    {"default\0", {RE_PUNCT, RE_GPT2, RE_DIGITS, RE_DIGIT3}, 0},
};

static const pre_family *find_pre(const char *name) {
    for (size_t f = 0; f < sizeof PRE_FAMILIES / sizeof PRE_FAMILIES[0]; f++)
        for (const char *n = PRE_FAMILIES[f].names; *n; n += strlen(n) + 1)
            if (strcmp(n, name) == 0) return &PRE_FAMILIES[f];
    return NULL;
}

/* --------------------------------------------------------------- metadata */

/* An array entry: 0 with *out set (NULL when absent), or -1 when the key holds
 * something else than an array of the wanted kind (strings or numbers). */
static int find_arr(const gguf_file *f, const char *key, int want_str, const gguf_kv **out) {
    const gguf_kv *kv = gguf_find(f, key);
    *out = NULL;
    if (!kv) return 0;
    if (kv->type != GGUF_ARR || want_str != (kv->arr_type == GGUF_STR)) return -1;
    *out = kv;
    return 0;
}

/* Optional token id key: -1 when absent.  Returns 0, or an error. */
static int get_id(const gguf_file *f, const char *key, int n_vocab, int *out, int dflt, const char *label,
                  kvs_error *err) {
    const gguf_kv *kv = gguf_find(f, key);
    *out = dflt;
    if (!kv) return 0;
    int64_t v;
    if (gguf_get_i64(f, key, &v))
        return err_fail(err, KVS_E_FORMAT, "%s: %s is not an integer", label, key);
    if (v < 0 || v >= n_vocab)
        return err_fail(err, KVS_E_FORMAT, "%s: %s = %lld is outside the vocabulary (%d tokens)", label, key,
                        (long long)v, n_vocab);
    *out = (int)v;
    return 0;
}

static int str_eq(gguf_str s, const char *z) { return s.n == strlen(z) && memcmp(s.p, z, s.n) == 0; }


static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

void tokenizer_free(tokenizer *t) {
    if (!t) return;
    free(t->arena);
    free(t->toff);
    free(t->tlen);
    free(t->ftype);
    free(t->attr);
    free(t->score);
    free(t->vslot);
    free(t->mslot);
    free(t->eog);
    free(t->sp_lens);
    for (int i = 0; i < t->n_re; i++) pcre2_code_free(t->re[i]);
    free(t);
}

static void mark_control(tokenizer *t, int32_t id) {
    if (id >= 0) t->attr[id] |= ATTR_CONTROL;
}

/* Texts that end generation (the reference's list of common end markers). */
static const char *const EOG_TEXTS[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|eom_id|>",
    "<EOT>", "_<EOT>", "<|end_of_text|>", "<end_of_utterance>", NULL};
/* Fill-in-the-middle markers that also end generation (first match of each list). */
static const char *const FIM_PAD[] = {"<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", NULL};
static const char *const FIM_REP[] = {"<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>", NULL};
static const char *const FIM_SEP[] = {"<|file_sep|>", NULL};

static int32_t first_present(const tokenizer *t, const char *const *list) {
    for (; *list; list++) {
        int32_t id = tokenizer_find(t, *list);
        if (id >= 0) return id;
    }
    return -1;
}

static int load_vocab(tokenizer *t, const gguf_file *f, const char *label, kvs_error *err) {
    const gguf_kv *tk, *ty, *sc;
    if (find_arr(f, "tokenizer.ggml.tokens", 1, &tk))
        return err_fail(err, KVS_E_FORMAT, "%s: tokenizer.ggml.tokens is not a string array", label);
    if (!tk) return err_fail(err, KVS_E_FORMAT, "%s: no tokenizer.ggml.tokens array", label);
    if (tk->arr_n == 0 || tk->arr_n > INT32_MAX / 2)
        return err_fail(err, KVS_E_FORMAT, "%s: tokenizer.ggml.tokens has %llu entries", label,
                        (unsigned long long)tk->arr_n);
    int n = (int)tk->arr_n;
    t->n_vocab = n;

    if (find_arr(f, "tokenizer.ggml.token_type", 0, &ty)) return err_fail(err, KVS_E_FORMAT, "%s: tokenizer.ggml.token_type is not a numeric array", label);
    if (ty && ty->arr_n != tk->arr_n)
        return err_fail(err, KVS_E_FORMAT, "%s: tokenizer.ggml.token_type has %llu entries for %d tokens", label,
                        (unsigned long long)ty->arr_n, n);
    if (find_arr(f, "tokenizer.ggml.scores", 0, &sc)) return err_fail(err, KVS_E_FORMAT, "%s: tokenizer.ggml.scores is not a numeric array", label);
    if (sc && sc->arr_n != tk->arr_n)
        return err_fail(err, KVS_E_FORMAT, "%s: tokenizer.ggml.scores has %llu entries for %d tokens", label,
                        (unsigned long long)sc->arr_n, n);

    size_t total = 0;
    for (int i = 0; i < n; i++) {
        if (tk->strs[i].n > UINT32_MAX / 2)
            return err_fail(err, KVS_E_FORMAT, "%s: token %d is too long", label, i);
        total += tk->strs[i].n + 1;
    }
    t->arena = malloc(total);
    t->toff = malloc(sizeof *t->toff * (size_t)n);
    t->tlen = malloc(sizeof *t->tlen * (size_t)n);
    t->ftype = malloc(sizeof *t->ftype * (size_t)n);
    t->attr = calloc((size_t)n, sizeof *t->attr);
    t->eog = calloc((size_t)n, 1);
    t->score = calloc((size_t)n, sizeof *t->score);
    uint32_t vcap = pow2_at_least((uint64_t)n * 2);
    t->vslot = malloc(sizeof *t->vslot * vcap);
    if (!t->arena || !t->toff || !t->tlen || !t->ftype || !t->attr || !t->eog || !t->score || !t->vslot)
        return err_fail(err, KVS_E_NOMEM, "%s: out of memory loading the vocabulary", label);
    t->vmask = vcap - 1;
    memset(t->vslot, 0xFF, sizeof *t->vslot * vcap);

    size_t off = 0;
    for (int i = 0; i < n; i++) {
        memcpy(t->arena + off, tk->strs[i].p, tk->strs[i].n);
        t->arena[off + tk->strs[i].n] = '\0';
        t->toff[i] = off;
        t->tlen[i] = (uint32_t)tk->strs[i].n;
        off += tk->strs[i].n + 1;

        int64_t type = 1;
        if (ty && gguf_arr_i64(ty, (uint64_t)i, &type))
            return err_fail(err, KVS_E_FORMAT, "%s: unreadable tokenizer.ggml.token_type[%d]", label, i);
        t->ftype[i] = (type >= INT32_MIN && type <= INT32_MAX) ? (int32_t)type : 0;
        switch (type) {
        case 1: t->attr[i] = ATTR_NORMAL; break;
        case 2: t->attr[i] = ATTR_UNKNOWN; break;
        case 3: t->attr[i] = ATTR_CONTROL; break;
        case 4: t->attr[i] = ATTR_USER; break;
        case 5: t->attr[i] = ATTR_UNUSED; break;
        case 6: t->attr[i] = ATTR_BYTE; break;
        default: t->attr[i] = ATTR_UNDEFINED; break;
        }
        if (sc) {
            double d;
            if (gguf_arr_f64(sc, (uint64_t)i, &d))
                return err_fail(err, KVS_E_FORMAT, "%s: unreadable tokenizer.ggml.scores[%d]", label, i);
            t->score[i] = (float)d;
        }
        if (t->tlen[i] > 0) vocab_insert(t, i);
    }
    return 0;
}

static int load_merges(tokenizer *t, const gguf_file *f, const char *label, kvs_error *err) {
    const gguf_kv *mk;
    if (find_arr(f, "tokenizer.ggml.merges", 1, &mk))
        return err_fail(err, KVS_E_FORMAT, "%s: tokenizer.ggml.merges is not a string array", label);
    if (!mk) return err_fail(err, KVS_E_FORMAT, "%s: BPE tokenizer without tokenizer.ggml.merges", label);
    if (mk->arr_n > INT32_MAX / 4)
        return err_fail(err, KVS_E_FORMAT, "%s: tokenizer.ggml.merges has %llu entries", label,
                        (unsigned long long)mk->arr_n);
    t->n_merges = (int32_t)mk->arr_n;
    uint32_t cap = pow2_at_least((uint64_t)mk->arr_n * 2 + 1);
    t->mslot = malloc(sizeof *t->mslot * cap);
    size_t maxlen = 0;
    for (uint64_t i = 0; i < mk->arr_n; i++)
        if (mk->strs[i].n > maxlen) maxlen = mk->strs[i].n;
    char *buf = malloc(maxlen + 1);
    if (!t->mslot || !buf) {
        free(buf);
        return err_fail(err, KVS_E_NOMEM, "%s: out of memory loading merges", label);
    }
    t->mmask = cap - 1;
    for (uint32_t i = 0; i < cap; i++) t->mslot[i].key = MERGE_EMPTY;

    for (uint64_t i = 0; i < mk->arr_n; i++) {
        gguf_str s = mk->strs[i];
        const char *sp = s.n > 1 ? memchr(s.p + 1, ' ', s.n - 1) : NULL;
        if (!sp) {
            free(buf);
            return err_fail(err, KVS_E_FORMAT, "%s: tokenizer.ggml.merges[%llu] has no space separator", label,
                            (unsigned long long)i);
        }
        size_t nl = (size_t)(sp - s.p), nr = s.n - nl - 1;
        int32_t a = vocab_lookup(t, s.p, nl), b = vocab_lookup(t, sp + 1, nr);
        if (a < 0 || b < 0) continue; /* refers to a text that is no token: can never apply */
        memcpy(buf, s.p, nl);
        memcpy(buf + nl, sp + 1, nr);
        int32_t r = vocab_lookup(t, buf, nl + nr);
        if (r < 0) continue;
        merge_insert(t, a, b, (int32_t)i, r);
    }
    free(buf);
    return 0;
}

static int compile_pre(tokenizer *t, const pre_family *fam, const char *label, kvs_error *err) {
    for (int i = 0; i < MAX_RE && fam->re[i]; i++) {
        int ec;
        PCRE2_SIZE eo;
        pcre2_code *re = pcre2_compile((PCRE2_SPTR)fam->re[i], PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP, &ec, &eo,
                                       NULL);
        if (!re) {
            PCRE2_UCHAR msg[160];
            pcre2_get_error_message(ec, msg, sizeof msg);
            return err_fail(err, KVS_E_UNSUPPORTED, "%s: cannot compile pre-tokenizer pattern %d: %s", label, i,
                            (const char *)msg);
        }
        (void)pcre2_jit_compile(re, PCRE2_JIT_COMPLETE); /* interpreter fallback if JIT is unavailable */
        t->re[t->n_re++] = re;
    }
    return 0;
}

tokenizer *tokenizer_load(const gguf_file *f, const char *label, kvs_error *err) {
    if (!label) label = f && f->path ? f->path : "tokenizer";
    if (!f) {
        err_fail(err, KVS_E_ARG, "%s: no file", label);
        return NULL;
    }
    tokenizer *t = calloc(1, sizeof *t);
    if (!t) {
        err_fail(err, KVS_E_NOMEM, "%s: out of memory", label);
        return NULL;
    }
    gguf_str model, pre = {0};
    if (gguf_get_str(f, "tokenizer.ggml.model", &model)) {
        err_fail(err, KVS_E_FORMAT, "%s: no tokenizer (tokenizer.ggml.model missing)", label);
        goto fail;
    }
    const pre_family *fam = NULL;
    if (str_eq(model, "gpt2")) {
        t->model = MODEL_BPE;
        char name[128] = "default";
        if (!gguf_get_str(f, "tokenizer.ggml.pre", &pre)) {
            if (pre.n >= sizeof name || memchr(pre.p, '\0', pre.n)) {
                err_fail(err, KVS_E_UNSUPPORTED, "%s: unknown pre-tokenizer '%.*s' (tokenizer.ggml.pre)", label,
                         (int)(pre.n > 64 ? 64 : pre.n), pre.p);
                goto fail;
            }
            memcpy(name, pre.p, pre.n);
            name[pre.n] = '\0';
        }
        fam = find_pre(name);
        if (!fam) {
            err_fail(err, KVS_E_UNSUPPORTED, "%s: unknown pre-tokenizer '%s' (tokenizer.ggml.pre)", label, name);
            goto fail;
        }
        t->ignore_merges = fam->ignore_merges;
    } else if (str_eq(model, "llama")) {
        t->model = MODEL_SPM;
    } else {
        err_fail(err, KVS_E_UNSUPPORTED, "%s: unsupported tokenizer model '%.*s'", label,
                 (int)(model.n > 64 ? 64 : model.n), model.p);
        goto fail;
    }

    if (load_vocab(t, f, label, err)) goto fail;
    if (t->model == MODEL_BPE && load_merges(t, f, label, err)) goto fail;
    if (fam && compile_pre(t, fam, label, err)) goto fail;

    /* special ids; SPM files conventionally have <unk>, <s>, </s> at 0, 1, 2 */
    int spm = t->model == MODEL_SPM;
    if (get_id(f, "tokenizer.ggml.bos_token_id", t->n_vocab, &t->bos, spm && t->n_vocab > 1 ? 1 : -1, label, err) ||
        get_id(f, "tokenizer.ggml.eos_token_id", t->n_vocab, &t->eos, spm && t->n_vocab > 2 ? 2 : -1, label, err) ||
        get_id(f, "tokenizer.ggml.eot_token_id", t->n_vocab, &t->eot, -1, label, err) ||
        get_id(f, "tokenizer.ggml.eom_token_id", t->n_vocab, &t->eom, -1, label, err))
        goto fail;
    int b = spm;
    t->add_bos = gguf_get_bool(f, "tokenizer.ggml.add_bos_token", &b) ? spm : b;
    b = spm;
    t->add_space_prefix = gguf_get_bool(f, "tokenizer.ggml.add_space_prefix", &b) ? spm : b;

    if (t->eot < 0) {
        static const char *const eot_names[] = {"<|im_end|>", "<|eot_id|>", "<|end|>", "<end_of_turn>", NULL};
        t->eot = first_present(t, eot_names);
        mark_control(t, t->eot);
    }
    if (t->eom < 0) {
        static const char *const eom_names[] = {"<|eom_id|>", NULL};
        t->eom = first_present(t, eom_names);
        mark_control(t, t->eom);
    }
    for (int i = 0; EOG_TEXTS[i]; i++) {
        int32_t id = tokenizer_find(t, EOG_TEXTS[i]);
        if (id >= 0) {
            t->eog[id] = 1;
            mark_control(t, id);
        }
    }
    const char *const *fims[] = {FIM_PAD, FIM_REP, FIM_SEP};
    for (int i = 0; i < 3; i++) {
        int32_t id = first_present(t, fims[i]);
        if (id >= 0) {
            t->eog[id] = 1;
            mark_control(t, id);
        }
    }
    if (t->eos >= 0) t->eog[t->eos] = 1;
    if (t->eot >= 0) t->eog[t->eot] = 1;
    if (t->eom >= 0) t->eog[t->eom] = 1;

    /* Phi-3 conversions: special tokens swallow the white space after them */
    gguf_str gname;
    if (!gguf_get_str(f, "general.name", &gname)) {
        char low[128];
        size_t n = gname.n < sizeof low - 1 ? gname.n : sizeof low - 1;
        for (size_t i = 0; i < n; i++) low[i] = (char)tolower((unsigned char)gname.p[i]);
        low[n] = '\0';
        if (strstr(low, "phi-3") || strstr(low, "phi3")) {
            for (int i = 0; i < t->n_vocab; i++)
                if (t->attr[i] & (ATTR_CONTROL | ATTR_USER | ATTR_UNKNOWN)) t->attr[i] |= ATTR_RSTRIP;
            int32_t id = tokenizer_find(t, "</s>");
            if (id >= 0) t->attr[id] |= ATTR_RSTRIP;
            static const char *const keep[] = {"<unk>", "<s>", "<|endoftext|>"};
            for (int i = 0; i < 3; i++) {
                id = tokenizer_find(t, keep[i]);
                if (id >= 0) t->attr[id] &= (uint16_t)~ATTR_RSTRIP;
            }
        }
    }

    /* what the special-token scan needs: first bytes and distinct lengths */
    int ns = 0;
    for (int i = 0; i < t->n_vocab; i++) ns += is_special(t, i);
    t->sp_lens = malloc(sizeof *t->sp_lens * (size_t)(ns ? ns : 1));
    if (!t->sp_lens) {
        err_fail(err, KVS_E_NOMEM, "%s: out of memory", label);
        goto fail;
    }
    for (int i = 0; i < t->n_vocab; i++) {
        if (!is_special(t, i)) continue;
        t->sp_first[(uint8_t)tok_text(t, i)[0]] = 1;
        t->sp_lens[t->n_sp_lens++] = t->tlen[i];
    }
    qsort(t->sp_lens, (size_t)t->n_sp_lens, sizeof *t->sp_lens, cmp_u32);
    int nl = 0;
    for (int i = 0; i < t->n_sp_lens; i++)
        if (nl == 0 || t->sp_lens[nl - 1] != t->sp_lens[i]) t->sp_lens[nl++] = t->sp_lens[i];
    t->n_sp_lens = nl;

    /* single-byte tokens */
    for (int c = 0; c < 256; c++) {
        char s[8];
        if (t->model == MODEL_BPE) {
            int n = utf8_put(byte_cp(c), s);
            t->byte_tok[c] = vocab_lookup(t, s, (size_t)n);
        } else {
            static const char hex[] = "0123456789ABCDEF";
            char h[7] = {'<', '0', 'x', hex[c >> 4], hex[c & 15], '>', 0};
            t->byte_tok[c] = vocab_lookup(t, h, 6);
            if (t->byte_tok[c] < 0) {
                s[0] = (char)c;
                t->byte_tok[c] = vocab_lookup(t, s, 1);
            }
        }
    }

    /* fingerprint */
    uint64_t h = FNV1A_INIT;
    uint32_t nv = (uint32_t)t->n_vocab;
    h = fnv1a(h, &nv, sizeof nv);
    for (int i = 0; i < t->n_vocab; i++) {
        uint32_t l = t->tlen[i];
        int32_t ty = t->ftype[i];
        h = fnv1a(h, &l, sizeof l);
        h = fnv1a(h, tok_text(t, i), l);
        h = fnv1a(h, &ty, sizeof ty);
    }
    const gguf_kv *mk;
    if (!find_arr(f, "tokenizer.ggml.merges", 1, &mk) && mk) {
        uint64_t nm = mk->arr_n;
        h = fnv1a(h, &nm, sizeof nm);
        for (uint64_t i = 0; i < mk->arr_n; i++) {
            uint64_t l = mk->strs[i].n;
            h = fnv1a(h, &l, sizeof l);
            h = fnv1a(h, mk->strs[i].p, mk->strs[i].n);
        }
    }
    t->hash = h;
    return t;

fail:
    tokenizer_free(t);
    return NULL;
}

int tokenizer_n_vocab(const tokenizer *t) { return t->n_vocab; }
int tokenizer_bos(const tokenizer *t) { return t->bos; }
int tokenizer_eos(const tokenizer *t) { return t->eos; }
int tokenizer_eot(const tokenizer *t) { return t->eot; }
int tokenizer_add_bos(const tokenizer *t) { return t->add_bos; }
uint64_t tokenizer_hash(const tokenizer *t) { return t->hash; }

int tokenizer_is_eog(const tokenizer *t, int32_t id) {
    return id >= 0 && id < t->n_vocab && t->eog[id];
}

int32_t tokenizer_find(const tokenizer *t, const char *s) {
    size_t n = strlen(s);
    return n ? vocab_lookup(t, s, n) : -1;
}


/* ----------------------------------------------------------------- decoding */

static int put_bytes(char *buf, int cap, int at, const char *s, size_t n) {
    for (size_t i = 0; i < n; i++, at++)
        if (at < cap) buf[at] = s[i];
    return at;
}

int tokenizer_token_bytes(const tokenizer *t, int32_t id, char *buf, int cap) {
    if (!t || id < 0 || id >= t->n_vocab) return KVS_E_ARG;
    if (cap < 0 || (cap > 0 && !buf)) cap = 0;
    const char *s = tok_text(t, id);
    size_t n = t->tlen[id];
    uint16_t at = t->attr[id];
    if (at & (ATTR_CONTROL | ATTR_USER | ATTR_UNKNOWN | ATTR_UNUSED)) return put_bytes(buf, cap, 0, s, n);
    if ((at & ATTR_BYTE) && n == 6 && s[0] == '<' && s[1] == '0' && s[2] == 'x' && s[5] == '>') {
        char c = (char)strtol((char[3]){s[3], s[4], 0}, NULL, 16);
        return put_bytes(buf, cap, 0, &c, 1);
    }
    int o = 0;
    if (t->model == MODEL_SPM) {
        for (size_t i = 0; i < n;) {
            if (i + 3 <= n && memcmp(s + i, "\xE2\x96\x81", 3) == 0) {
                o = put_bytes(buf, cap, o, " ", 1);
                i += 3;
            } else {
                o = put_bytes(buf, cap, o, s + i, 1);
                i++;
            }
        }
        return o;
    }
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        int l = utf8_get((const uint8_t *)s + i, n - i, &cp);
        if (l == 0) { /* not UTF-8: pass the byte through */
            o = put_bytes(buf, cap, o, s + i, 1);
            i++;
            continue;
        }
        int b = cp_byte(cp);
        if (b >= 0) {
            char c = (char)b;
            o = put_bytes(buf, cap, o, &c, 1);
        } else {
            o = put_bytes(buf, cap, o, s + i, (size_t)l);
        }
        i += (size_t)l;
    }
    return o;
}

