/* tokenizer.c - byte-level BPE (and SentencePiece-style) tokenization from
 * GGUF vocabulary metadata.
 *
 * Pipeline for one call of tokenizer_encode:
 *   1. special-token partition: the text is cut at every occurrence of a
 *      special token's text, longest token texts first;
 *   2. each remaining piece of plain text is made valid UTF-8 (invalid bytes
 *      become U+FFFD, as the reference implementation does) and split into
 *      words by the pre-tokenizer regular expressions (PCRE2), applied in
 *      order, each one to the pieces left by the previous one;
 *   3. each word is mapped byte by byte to its byte-level symbols and merged
 *      pairwise, lowest merge rank first (leftmost on ties), using a binary
 *      heap over a doubly linked list of symbols.
 * The "llama" (SentencePiece) model instead merges adjacent symbols into the
 * vocabulary entry with the highest score, with <0xXX> byte fallback. */
#include "tokenizer.h"

#include <ctype.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "error.h"
#include "hash.h"

/* token attributes (bit set; the file's token_type is translated to one bit) */
enum {
    ATTR_UNDEFINED = 0,
    ATTR_UNKNOWN = 1 << 0,
    ATTR_UNUSED = 1 << 1,
    ATTR_NORMAL = 1 << 2,
    ATTR_CONTROL = 1 << 3,
    ATTR_USER = 1 << 4,
    ATTR_BYTE = 1 << 5,
    ATTR_LSTRIP = 1 << 6,
    ATTR_RSTRIP = 1 << 7
};

enum { MODEL_BPE = 1, MODEL_SPM = 2 };

#define MAX_RE 4

typedef struct merge_ent {
    uint64_t key; /* (left id << 32) | right id; MERGE_EMPTY when unused */
    int32_t rank;
    int32_t result;
} merge_ent;
#define MERGE_EMPTY UINT64_MAX

struct tokenizer {
    int model;
    int n_vocab;
    char *arena;      /* all token texts, each NUL-terminated */
    size_t *toff;     /* offset of token i in arena */
    uint32_t *tlen;   /* byte length of token i */
    int32_t *ftype;   /* token_type as stored in the file (1 normal when absent) */
    uint16_t *attr;
    float *score;     /* SPM only */

    int32_t *vslot;   /* vocabulary hash: text -> id; -1 = empty */
    uint32_t vmask;

    merge_ent *mslot; /* merges hash: (left, right) -> rank, result */
    uint32_t mmask;
    int32_t n_merges;

    int32_t byte_tok[256]; /* token of a single byte (byte-level symbol / <0xXX>) */

    int bos, eos, eot, eom, add_bos, add_space_prefix, ignore_merges;
    uint8_t *eog;
    uint8_t sp_first[256]; /* bytes that start some special token's text */
    uint32_t *sp_lens;     /* distinct lengths of special token texts, ascending */
    int n_sp_lens;

    pcre2_code *re[MAX_RE];
    int n_re;
    uint64_t hash;
};

/* ------------------------------------------------------------ byte-level map */

/* GPT-2's reversible byte <-> code point mapping: printable bytes map to
 * themselves, the other 68 bytes to 256, 257, ... in byte order. */
static int byte_printable(uint32_t b) {
    return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
}

static uint32_t byte_cp(int b) {
    if (byte_printable((uint32_t)b)) return (uint32_t)b;
    if (b <= 0x20) return 256u + (uint32_t)b;          /* 0x00..0x20: 33 bytes */
    if (b <= 0xA0) return 256u + 33u + (uint32_t)(b - 0x7F); /* 0x7F..0xA0: 34 bytes */
    return 256u + 67u;                                 /* 0xAD */
}

/* Inverse of byte_cp, or -1. */
static int cp_byte(uint32_t cp) {
    if (cp < 256) return byte_printable(cp) ? (int)cp : -1;
    if (cp < 256 + 33) return (int)(cp - 256);
    if (cp < 256 + 67) return (int)(cp - 256 - 33) + 0x7F;
    if (cp == 256 + 67) return 0xAD;
    return -1;
}

static int utf8_put(uint32_t cp, char *o) {
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Lenient decoding of one code point at s[0..n): the lead byte gives the length,
 * continuation bytes must be 10xxxxxx; no check for overlong forms (like the
 * reference).  Returns the length consumed, or 0 for an invalid sequence. */
static int utf8_get(const uint8_t *s, size_t n, uint32_t *cp) {
    uint8_t c = s[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    int len;
    uint32_t v;
    if ((c & 0xE0) == 0xC0) len = 2, v = c & 0x1F;
    else if ((c & 0xF0) == 0xE0) len = 3, v = c & 0x0F;
    else if ((c & 0xF8) == 0xF0) len = 4, v = c & 0x07;
    else return 0;
    if ((size_t)len > n) return 0;
    for (int i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        v = (v << 6) | (s[i] & 0x3F);
    }
    *cp = v;
    return len;
}

static uint32_t pow2_at_least(uint64_t n) {
    uint32_t c = 16;
    while (c < n) c <<= 1;
    return c;
}

static const char *tok_text(const tokenizer *t, int32_t id) { return t->arena + t->toff[id]; }

static int32_t vocab_lookup(const tokenizer *t, const char *s, size_t n) {
    uint32_t h = (uint32_t)fnv1a(FNV1A_INIT, s, n);
    for (uint32_t i = h & t->vmask;; i = (i + 1) & t->vmask) {
        int32_t id = t->vslot[i];
        if (id < 0) return -1;
        if (t->tlen[id] == n && memcmp(tok_text(t, id), s, n) == 0) return id;
    }
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

static uint32_t merge_hash(uint64_t key) { return (uint32_t)((key * 0x9E3779B97F4A7C15ull) >> 32); }

static const merge_ent *merge_lookup(const tokenizer *t, int32_t a, int32_t b) {
    uint64_t key = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
    for (uint32_t i = merge_hash(key) & t->mmask;; i = (i + 1) & t->mmask) {
        const merge_ent *e = &t->mslot[i];
        if (e->key == key) return e;
        if (e->key == MERGE_EMPTY) return NULL;
    }
}

/* First occurrence of a pair keeps its rank. */
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

static int is_special(const tokenizer *t, int32_t id) {
    return (t->attr[id] & (ATTR_CONTROL | ATTR_USER | ATTR_UNKNOWN)) && t->tlen[id] > 0;
}

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

/* ----------------------------------------------------------------- encoding */

typedef struct ivec {
    int32_t *v;
    size_t n, cap;
} ivec;

static int ivec_push(ivec *a, int32_t x) {
    if (a->n == a->cap) {
        size_t c = a->cap ? a->cap * 2 : 64;
        int32_t *p = realloc(a->v, c * sizeof *p);
        if (!p) return -1;
        a->v = p;
        a->cap = c;
    }
    a->v[a->n++] = x;
    return 0;
}

typedef struct frag {
    size_t off, len;
    int32_t tok; /* >= 0: a special token; -1: text */
} frag;

typedef struct fvec {
    frag *v;
    size_t n, cap;
} fvec;

static int fvec_push(fvec *a, size_t off, size_t len, int32_t tok) {
    if (a->n == a->cap) {
        size_t c = a->cap ? a->cap * 2 : 16;
        frag *p = realloc(a->v, c * sizeof *p);
        if (!p) return -1;
        a->v = p;
        a->cap = c;
    }
    a->v[a->n++] = (frag){off, len, tok};
    return 0;
}

typedef struct heap_ent {
    float score;    /* SPM: higher first */
    int32_t rank;   /* BPE: lower first */
    int32_t left, right;
    int32_t lid, rid, result; /* BPE: ids when pushed, merged id */
    uint32_t size;  /* SPM: byte length of the merged text */
} heap_ent;

/* Scratch space of one encode call (the tokenizer itself stays read-only). */
typedef struct work {
    const tokenizer *t;
    ivec out;
    char *buf;      /* sanitized / escaped text */
    size_t buf_cap;
    fvec words, words2;
    int32_t *sid, *prev, *next;
    uint32_t *soff, *slen;
    size_t sym_cap;
    heap_ent *heap;
    size_t heap_n, heap_cap;
    char *enc;      /* byte-level spelling of a word */
    size_t enc_cap;
    pcre2_match_data *md;
    int is_spm;
} work;

/* Make room for `need` elements; returns the (possibly moved) buffer, or NULL
 * when memory runs out (the old buffer is then still valid). */
static void *grow_to(void *p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap && p) return p;
    size_t c = *cap ? *cap : 64;
    while (c < need) c *= 2;
    void *q = realloc(p, c * elem);
    if (!q) return NULL;
    *cap = c;
    return q;
}
static int syms_reserve(work *w, size_t n) {
    if (n <= w->sym_cap) return 0;
    size_t c = w->sym_cap ? w->sym_cap : 64;
    while (c < n) c *= 2;
    int32_t *a = realloc(w->sid, c * sizeof *a);
    if (a) w->sid = a;
    int32_t *b = realloc(w->prev, c * sizeof *b);
    if (b) w->prev = b;
    int32_t *d = realloc(w->next, c * sizeof *d);
    if (d) w->next = d;
    uint32_t *e = realloc(w->soff, c * sizeof *e);
    if (e) w->soff = e;
    uint32_t *g = realloc(w->slen, c * sizeof *g);
    if (g) w->slen = g;
    if (!a || !b || !d || !e || !g) return -1;
    w->sym_cap = c;
    return 0;
}

static int heap_less(const work *w, const heap_ent *a, const heap_ent *b) {
    if (w->is_spm) {
        if (a->score != b->score) return a->score > b->score;
        return a->left < b->left;
    }
    if (a->rank != b->rank) return a->rank < b->rank;
    return a->left < b->left;
}

static int heap_push(work *w, heap_ent e) {
    heap_ent *h = grow_to(w->heap, &w->heap_cap, w->heap_n + 1, sizeof *w->heap);
    if (!h) return -1;
    w->heap = h;
    size_t i = w->heap_n++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!heap_less(w, &e, &w->heap[p])) break;
        w->heap[i] = w->heap[p];
        i = p;
    }
    w->heap[i] = e;
    return 0;
}

static heap_ent heap_pop(work *w) {
    heap_ent top = w->heap[0];
    heap_ent last = w->heap[--w->heap_n];
    size_t i = 0, n = w->heap_n;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        const heap_ent *best = &last;
        if (l < n && heap_less(w, &w->heap[l], best)) m = l, best = &w->heap[l];
        if (r < n && heap_less(w, &w->heap[r], best)) m = r;
        if (m == i) break;
        w->heap[i] = w->heap[m];
        i = m;
    }
    if (n) w->heap[i] = last;
    return top;
}

static int bpe_try_pair(work *w, int32_t a, int32_t b) {
    if (a < 0 || b < 0) return 0;
    int32_t ia = w->sid[a], ib = w->sid[b];
    if (ia < 0 || ib < 0) return 0;
    const merge_ent *m = merge_lookup(w->t, ia, ib);
    if (!m) return 0;
    heap_ent e = {0};
    e.rank = m->rank;
    e.left = a;
    e.right = b;
    e.lid = ia;
    e.rid = ib;
    e.result = m->result;
    return heap_push(w, e);
}

/* One pre-tokenized word (raw bytes) through byte-level BPE. */
static int bpe_word(work *w, const uint8_t *s, size_t n) {
    const tokenizer *t = w->t;
    if (n == 0) return 0;
    if (t->ignore_merges) {
        char *e = grow_to(w->enc, &w->enc_cap, n * 2 + 1, 1);
        if (!e) return -1;
        w->enc = e;
        size_t k = 0;
        for (size_t i = 0; i < n; i++) k += (size_t)utf8_put(byte_cp(s[i]), w->enc + k);
        int32_t id = vocab_lookup(t, w->enc, k);
        if (id >= 0) return ivec_push(&w->out, id);
    }
    if (n > INT32_MAX / 2 || syms_reserve(w, n)) return -1;
    for (size_t i = 0; i < n; i++) {
        w->sid[i] = t->byte_tok[s[i]];
        w->prev[i] = (int32_t)i - 1;
        w->next[i] = i + 1 < n ? (int32_t)i + 1 : -1;
    }
    w->heap_n = 0;
    for (size_t i = 1; i < n; i++)
        if (bpe_try_pair(w, (int32_t)i - 1, (int32_t)i)) return -1;
    while (w->heap_n) {
        heap_ent e = heap_pop(w);
        int32_t a = e.left, b = e.right;
        /* stale entries: a symbol changed (grew or was absorbed) since the push */
        if (w->sid[a] != e.lid || w->sid[b] != e.rid || w->next[a] != b) continue;
        w->sid[a] = e.result;
        w->sid[b] = -2; /* absorbed */
        w->next[a] = w->next[b];
        if (w->next[b] >= 0) w->prev[w->next[b]] = a;
        w->next[b] = -1;
        if (bpe_try_pair(w, w->prev[a], a) || bpe_try_pair(w, a, w->next[a])) return -1;
    }
    for (int32_t i = 0; i >= 0; i = w->next[i])
        if (w->sid[i] >= 0 && ivec_push(&w->out, w->sid[i])) return -1; /* bytes without a token are dropped */
    return 0;
}

/* Copy text into w->buf as valid UTF-8: every byte that does not start a
 * well-formed sequence becomes U+FFFD; decoded code points are re-encoded in
 * shortest form (surrogates and values past U+10FFFF also become U+FFFD). */
static int sanitize(work *w, const char *text, size_t len, size_t *out_len) {
    char *nb = len < SIZE_MAX / 4 ? grow_to(w->buf, &w->buf_cap, len * 3 + 4, 1) : NULL;
    if (!nb) return -1;
    w->buf = nb;
    const uint8_t *s = (const uint8_t *)text;
    size_t i = 0, k = 0;
    while (i < len) {
        uint32_t cp;
        int n = utf8_get(s + i, len - i, &cp);
        if (n == 0) {
            cp = 0xFFFD;
            n = 1;
        } else if ((cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) {
            cp = 0xFFFD;
        }
        k += (size_t)utf8_put(cp, w->buf + k);
        i += (size_t)n;
    }
    *out_len = k;
    return 0;
}

static int encode_bpe_text(work *w, const char *text, size_t len, kvs_error *err) {
    const tokenizer *t = w->t;
    size_t n;
    if (sanitize(w, text, len, &n)) return err_fail(err, KVS_E_NOMEM, "tokenize: out of memory");
    w->words.n = 0;
    if (fvec_push(&w->words, 0, n, -1)) return err_fail(err, KVS_E_NOMEM, "tokenize: out of memory");
    for (int r = 0; r < t->n_re; r++) {
        w->words2.n = 0;
        for (size_t i = 0; i < w->words.n; i++) {
            frag fr = w->words.v[i];
            PCRE2_SPTR subj = (PCRE2_SPTR)(w->buf + fr.off);
            size_t pos = 0, gap = 0;
            while (pos < fr.len) {
                int rc = pcre2_match(t->re[r], subj, fr.len, pos, PCRE2_NO_UTF_CHECK, w->md, NULL);
                if (rc == PCRE2_ERROR_NOMATCH) break;
                if (rc < 0) {
                    PCRE2_UCHAR msg[160];
                    pcre2_get_error_message(rc, msg, sizeof msg);
                    return err_fail(err, KVS_E_ARG, "tokenize: pre-tokenizer failed: %s", (const char *)msg);
                }
                PCRE2_SIZE *ov = pcre2_get_ovector_pointer(w->md);
                size_t ms = ov[0], me = ov[1];
                if (me == ms) { /* cannot happen with our patterns; step one character on */
                    pos = ms + 1;
                    while (pos < fr.len && (subj[pos] & 0xC0) == 0x80) pos++;
                    continue;
                }
                if (ms > gap && fvec_push(&w->words2, fr.off + gap, ms - gap, -1))
                    return err_fail(err, KVS_E_NOMEM, "tokenize: out of memory");
                if (fvec_push(&w->words2, fr.off + ms, me - ms, -1))
                    return err_fail(err, KVS_E_NOMEM, "tokenize: out of memory");
                gap = pos = me;
            }
            if (gap < fr.len && fvec_push(&w->words2, fr.off + gap, fr.len - gap, -1))
                return err_fail(err, KVS_E_NOMEM, "tokenize: out of memory");
        }
        fvec tmp = w->words;
        w->words = w->words2;
        w->words2 = tmp;
    }
    for (size_t i = 0; i < w->words.n; i++)
        if (bpe_word(w, (const uint8_t *)w->buf + w->words.v[i].off, w->words.v[i].len))
            return err_fail(err, KVS_E_NOMEM, "tokenize: out of memory");
    return 0;
}

static int spm_try_pair(work *w, int32_t a, int32_t b) {
    if (a < 0 || b < 0) return 0;
    size_t n = (size_t)w->slen[a] + w->slen[b];
    int32_t id = vocab_lookup(w->t, w->buf + w->soff[a], n);
    if (id < 0) return 0;
    heap_ent e = {0};
    e.score = w->t->score[id];
    e.left = a;
    e.right = b;
    e.size = (uint32_t)n;
    return heap_push(w, e);
}

/* SentencePiece-style: spaces become U+2581 (with a leading one when asked),
 * then adjacent symbols merge into the highest-scoring vocabulary entry. */
static int encode_spm_text(work *w, const char *text, size_t len, int prefix_space, kvs_error *err) {
    const tokenizer *t = w->t;
    char *nb = len < SIZE_MAX / 4 ? grow_to(w->buf, &w->buf_cap, len * 3 + 8, 1) : NULL;
    if (!nb) return err_fail(err, KVS_E_NOMEM, "tokenize: out of memory");
    w->buf = nb;
    size_t k = 0;
    if (prefix_space) {
        memcpy(w->buf, "\xE2\x96\x81", 3);
        k = 3;
    }
    for (size_t i = 0; i < len; i++) {
        if (text[i] == ' ') {
            memcpy(w->buf + k, "\xE2\x96\x81", 3);
            k += 3;
        } else {
            w->buf[k++] = text[i];
        }
    }
    if (k == 0) return 0;
    if (k > UINT32_MAX / 2) return err_fail(err, KVS_E_ARG, "tokenize: text too long");
    /* symbols: UTF-8 characters by their lead byte (clipped at the end) */
    size_t ns = 0;
    if (syms_reserve(w, k)) return err_fail(err, KVS_E_NOMEM, "tokenize: out of memory");
    for (size_t i = 0; i < k;) {
        uint8_t c = (uint8_t)w->buf[i];
        size_t l = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 4) == 15 ? 4 : 1;
        if (l > k - i) l = k - i;
        w->soff[ns] = (uint32_t)i;
        w->slen[ns] = (uint32_t)l;
        w->prev[ns] = (int32_t)ns - 1;
        w->next[ns] = (int32_t)ns + 1;
        ns++;
        i += l;
    }
    w->next[ns - 1] = -1;
    w->heap_n = 0;
    for (size_t i = 1; i < ns; i++)
        if (spm_try_pair(w, (int32_t)i - 1, (int32_t)i)) return err_fail(err, KVS_E_NOMEM, "tokenize: out of memory");
    while (w->heap_n) {
        heap_ent e = heap_pop(w);
        int32_t a = e.left, b = e.right;
        if (w->slen[a] == 0 || w->slen[b] == 0 || w->next[a] != b || w->slen[a] + w->slen[b] != e.size) continue;
        w->slen[a] += w->slen[b];
        w->slen[b] = 0;
        w->next[a] = w->next[b];
        if (w->next[b] >= 0) w->prev[w->next[b]] = a;
        if (spm_try_pair(w, w->prev[a], a) || spm_try_pair(w, a, w->next[a]))
            return err_fail(err, KVS_E_NOMEM, "tokenize: out of memory");
    }
    for (int32_t i = 0; i >= 0; i = w->next[i]) {
        int32_t id = vocab_lookup(t, w->buf + w->soff[i], w->slen[i]);
        if (id >= 0) {
            if (ivec_push(&w->out, id)) return err_fail(err, KVS_E_NOMEM, "tokenize: out of memory");
            continue;
        }
        for (uint32_t j = 0; j < w->slen[i]; j++) {
            int32_t bt = t->byte_tok[(uint8_t)w->buf[w->soff[i] + j]];
            if (bt >= 0 && ivec_push(&w->out, bt)) return err_fail(err, KVS_E_NOMEM, "tokenize: out of memory");
        }
    }
    return 0;
}

typedef struct sp_cand {
    uint32_t len;
    int32_t id;
} sp_cand;

/* Longest text first, then lowest id. */
static int cmp_cand(const void *a, const void *b) {
    const sp_cand *x = a, *y = b;
    if (x->len != y->len) return x->len > y->len ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

/* Cut text at special-token occurrences: every occurrence of the longest
 * special text first, then of the next one in what is left, and so on. */
static int partition(work *w, const char *text, size_t len, int parse_special) {
    const tokenizer *t = w->t;
    fvec *cur = &w->words, *nxt = &w->words2;
    cur->n = 0;
    if (len && fvec_push(cur, 0, len, -1)) return -1;
    if (!len || !t->n_sp_lens) return 0;

    /* which special tokens occur in the text at all */
    sp_cand *cand = NULL;
    size_t nc = 0, cc = 0;
    for (size_t i = 0; i < len; i++) {
        if (!t->sp_first[(uint8_t)text[i]]) continue;
        for (int k = 0; k < t->n_sp_lens && t->sp_lens[k] <= len - i; k++) {
            int32_t id = vocab_lookup(t, text + i, t->sp_lens[k]);
            if (id < 0 || !is_special(t, id)) continue;
            if (!parse_special && (t->attr[id] & (ATTR_CONTROL | ATTR_UNKNOWN))) continue;
            size_t j = 0;
            while (j < nc && cand[j].id != id) j++;
            if (j < nc) continue;
            sp_cand *nc2 = grow_to(cand, &cc, nc + 1, sizeof *cand);
            if (!nc2) {
                free(cand);
                return -1;
            }
            cand = nc2;
            cand[nc++] = (sp_cand){t->tlen[id], id};
        }
    }
    if (nc > 1) qsort(cand, nc, sizeof *cand, cmp_cand);

    for (size_t c = 0; c < nc; c++) {
        int32_t id = cand[c].id;
        uint16_t at = t->attr[id];
        const char *st = tok_text(t, id);
        size_t sl = t->tlen[id];
        nxt->n = 0;
        for (size_t i = 0; i < cur->n; i++) {
            frag f = cur->v[i];
            if (f.tok >= 0) {
                if (fvec_push(nxt, f.off, f.len, f.tok)) goto oom;
                continue;
            }
            size_t off = f.off, n = f.len;
            for (;;) {
                const char *m = n >= sl ? memmem(text + off, n, st, sl) : NULL;
                if (!m) {
                    if (n && fvec_push(nxt, off, n, -1)) goto oom;
                    break;
                }
                size_t mo = (size_t)(m - text);
                size_t ln = mo - off;
                if (at & ATTR_LSTRIP)
                    while (ln > 0 && isspace((unsigned char)text[off + ln - 1])) ln--;
                if (ln && fvec_push(nxt, off, ln, -1)) goto oom;
                if (fvec_push(nxt, mo, sl, id)) goto oom;
                size_t ro = mo + sl, rn = off + n - ro;
                if (at & ATTR_RSTRIP)
                    while (rn > 0 && isspace((unsigned char)text[ro])) ro++, rn--;
                off = ro;
                n = rn;
            }
        }
        fvec tmp = *cur;
        *cur = *nxt;
        *nxt = tmp;
    }
    free(cand);
    return 0;
oom:
    free(cand);
    return -1;
}

static void work_free(work *w) {
    free(w->out.v);
    free(w->buf);
    free(w->words.v);
    free(w->words2.v);
    free(w->sid);
    free(w->prev);
    free(w->next);
    free(w->soff);
    free(w->slen);
    free(w->heap);
    free(w->enc);
    if (w->md) pcre2_match_data_free(w->md);
}

int tokenizer_encode(const tokenizer *t, const char *text, size_t len, int add_bos, int parse_special,
                     int32_t *out, int cap, kvs_error *err) {
    if (!t) return err_fail(err, KVS_E_ARG, "tokenize: no tokenizer");
    if (!text && len) return err_fail(err, KVS_E_ARG, "tokenize: text is NULL");
    if (cap < 0 || (cap > 0 && !out)) return err_fail(err, KVS_E_ARG, "tokenize: bad output buffer (cap %d)", cap);
    work w;
    memset(&w, 0, sizeof w);
    w.t = t;
    w.is_spm = t->model == MODEL_SPM;
    int rc = 0;
    if (t->n_re) {
        w.md = pcre2_match_data_create(1, NULL);
        if (!w.md) {
            rc = err_fail(err, KVS_E_NOMEM, "tokenize: out of memory");
            goto done;
        }
    }
    if (add_bos < 0) add_bos = t->add_bos;
    if (add_bos && t->bos >= 0 && ivec_push(&w.out, t->bos)) {
        rc = err_fail(err, KVS_E_NOMEM, "tokenize: out of memory");
        goto done;
    }
    if (partition(&w, text, len, parse_special)) {
        rc = err_fail(err, KVS_E_NOMEM, "tokenize: out of memory");
        goto done;
    }
    /* the partition lives in w.words; move it aside since encoding reuses it */
    fvec parts = w.words;
    w.words = (fvec){0};
    int prev_special = 1;
    for (size_t i = 0; i < parts.n && !rc; i++) {
        frag f = parts.v[i];
        if (f.tok >= 0) {
            if (ivec_push(&w.out, f.tok)) rc = err_fail(err, KVS_E_NOMEM, "tokenize: out of memory");
            prev_special = 1;
        } else if (t->model == MODEL_BPE) {
            rc = encode_bpe_text(&w, text + f.off, f.len, err);
        } else {
            rc = encode_spm_text(&w, text + f.off, f.len, t->add_space_prefix && prev_special, err);
            prev_special = 0;
        }
    }
    free(parts.v);
    if (rc) goto done;
    if (w.out.n > INT_MAX) {
        rc = err_fail(err, KVS_E_RANGE, "tokenize: more than %d tokens", INT_MAX);
        goto done;
    }
    rc = (int)w.out.n;
    if (cap > 0 && rc > 0) memcpy(out, w.out.v, sizeof *out * (size_t)(rc < cap ? rc : cap));
done:
    work_free(&w);
    return rc;
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
