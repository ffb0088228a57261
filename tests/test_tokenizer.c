/* Tokenizer: token ids identical to llama.cpp's for every golden prompt (and
 * for the same vocabulary under other pre-tokenizer rules, and for a small
 * SentencePiece vocabulary), exact byte round trips, merge order, special
 * tokens, the output-capacity contract, and metadata errors. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gguf.h"
#include "testutil.h"
#include "tokenizer.h"
#include "utf8.h"

static gguf_file *g_file;
static tokenizer *g_tok;
static cJSON *g_gold;

/* ------------------------------------------------------------ helpers */

static char *hex_decode(const char *h, size_t *n) {
    size_t l = strlen(h) / 2;
    char *p = malloc(l + 1);
    assert_non_null(p);
    for (size_t i = 0; i < l; i++) {
        unsigned v;
        assert_int_equal(sscanf(h + 2 * i, "%2x", &v), 1);
        p[i] = (char)v;
    }
    p[l] = 0;
    *n = l;
    return p;
}

/* A prompt's bytes: "text" (UTF-8) or "hex".  Returns malloc'd bytes. */
static char *prompt_bytes(const cJSON *o, size_t *n) {
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(o, "text");
    if (cJSON_IsString(t)) {
        *n = strlen(t->valuestring);
        char *p = malloc(*n + 1);
        assert_non_null(p);
        memcpy(p, t->valuestring, *n + 1);
        return p;
    }
    const cJSON *h = cJSON_GetObjectItemCaseSensitive(o, "hex");
    assert_true(cJSON_IsString(h));
    return hex_decode(h->valuestring, n);
}

/* ids of a JSON array; returns count, *out malloc'd */
static int json_ids(const cJSON *a, int32_t **out) {
    assert_true(cJSON_IsArray(a));
    int n = cJSON_GetArraySize(a);
    *out = malloc(sizeof **out * (size_t)(n ? n : 1));
    assert_non_null(*out);
    int i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, a) (*out)[i++] = (int32_t)e->valuedouble;
    return n;
}

/* Tokenize fully (count first, then fill). */
static int encode_all(const tokenizer *t, const char *s, size_t n, int add_bos, int special, int32_t **out) {
    kvs_error err = {0};
    int k = tokenizer_encode(t, s, n, add_bos, special, NULL, 0, &err);
    if (k < 0) fail_msg("tokenize failed: %s", err.msg);
    *out = malloc(sizeof **out * (size_t)(k ? k : 1));
    assert_non_null(*out);
    assert_int_equal(tokenizer_encode(t, s, n, add_bos, special, *out, k, &err), k);
    return k;
}

/* Concatenated bytes of ids; malloc'd, length in *len. */
static char *decode_all(const tokenizer *t, const int32_t *ids, int n, size_t *len) {
    size_t cap = 64, k = 0;
    char *buf = malloc(cap);
    assert_non_null(buf);
    for (int i = 0; i < n; i++) {
        int m = tokenizer_token_bytes(t, ids[i], NULL, 0);
        assert_true(m >= 0);
        if (k + (size_t)m + 1 > cap) {
            while (k + (size_t)m + 1 > cap) cap *= 2;
            buf = realloc(buf, cap);
            assert_non_null(buf);
        }
        assert_int_equal(tokenizer_token_bytes(t, ids[i], buf + k, m), m);
        k += (size_t)m;
    }
    buf[k] = 0;
    *len = k;
    return buf;
}

static int ids_equal(const int32_t *a, int na, const int32_t *b, int nb) {
    return na == nb && (na == 0 || memcmp(a, b, sizeof *a * (size_t)na) == 0);
}

static void print_ids(const char *what, const int32_t *a, int n) {
    printf("  %s (%d):", what, n);
    for (int i = 0; i < n && i < 64; i++) printf(" %d", a[i]);
    printf("\n");
}

/* ------------------------------------------------ in-memory GGUF builder */

typedef struct gbuf {
    uint8_t *p;
    size_t n, cap;
    uint64_t n_kv;
} gbuf;

static void gb_put(gbuf *b, const void *s, size_t n) {
    if (b->n + n > b->cap) {
        while (b->n + n > b->cap) b->cap = b->cap ? b->cap * 2 : 4096;
        b->p = realloc(b->p, b->cap);
        assert_non_null(b->p);
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
}
static void gb_u32(gbuf *b, uint32_t v) { gb_put(b, &v, 4); }
static void gb_u64(gbuf *b, uint64_t v) { gb_put(b, &v, 8); }
static void gb_str(gbuf *b, const char *s, size_t n) {
    gb_u64(b, n);
    gb_put(b, s, n);
}
static void gb_key(gbuf *b, const char *k, uint32_t type) {
    gb_str(b, k, strlen(k));
    gb_u32(b, type);
    b->n_kv++;
}
static void gb_kv_str(gbuf *b, const char *k, const char *v) {
    gb_key(b, k, GGUF_STR);
    gb_str(b, v, strlen(v));
}
static void gb_kv_u32(gbuf *b, const char *k, uint32_t v) {
    gb_key(b, k, GGUF_U32);
    gb_u32(b, v);
}
static void gb_kv_bool(gbuf *b, const char *k, int v) {
    gb_key(b, k, GGUF_BOOL);
    uint8_t x = (uint8_t)(v != 0);
    gb_put(b, &x, 1);
}
static void gb_kv_strs(gbuf *b, const char *k, const char *const *v, int n) {
    gb_key(b, k, GGUF_ARR);
    gb_u32(b, GGUF_STR);
    gb_u64(b, (uint64_t)n);
    for (int i = 0; i < n; i++) gb_str(b, v[i], strlen(v[i]));
}
static void gb_kv_i32s(gbuf *b, const char *k, const int32_t *v, int n) {
    gb_key(b, k, GGUF_ARR);
    gb_u32(b, GGUF_I32);
    gb_u64(b, (uint64_t)n);
    gb_put(b, v, sizeof *v * (size_t)n);
}
static void gb_kv_f32s(gbuf *b, const char *k, const float *v, int n) {
    gb_key(b, k, GGUF_ARR);
    gb_u32(b, GGUF_F32);
    gb_u64(b, (uint64_t)n);
    gb_put(b, v, sizeof *v * (size_t)n);
}

static size_t scalar_bytes(uint32_t t) {
    switch (t) {
    case GGUF_U8: case GGUF_I8: case GGUF_BOOL: return 1;
    case GGUF_U16: case GGUF_I16: return 2;
    case GGUF_U32: case GGUF_I32: case GGUF_F32: return 4;
    default: return 8;
    }
}

/* Copy every metadata entry of f (except `skip`, which is replaced by the
 * string value `repl` when repl is non-NULL). */
static void gb_copy(gbuf *b, const gguf_file *f, const char *skip, const char *repl) {
    for (uint64_t i = 0; i < f->n_kv; i++) {
        const gguf_kv *kv = &f->kv[i];
        if (skip && strcmp(kv->key, skip) == 0) {
            if (repl) gb_kv_str(b, skip, repl);
            continue;
        }
        gb_key(b, kv->key, kv->type);
        if (kv->type == GGUF_STR) {
            gb_str(b, kv->strs[0].p, kv->strs[0].n);
        } else if (kv->type == GGUF_ARR) {
            gb_u32(b, kv->arr_type);
            gb_u64(b, kv->arr_n);
            if (kv->arr_type == GGUF_STR)
                for (uint64_t j = 0; j < kv->arr_n; j++) gb_str(b, kv->strs[j].p, kv->strs[j].n);
            else
                gb_put(b, kv->data, scalar_bytes(kv->arr_type) * kv->arr_n);
        } else {
            gb_put(b, kv->data, scalar_bytes(kv->type));
        }
    }
}

/* Header + metadata, no tensors; caller frees the returned buffer. */
static uint8_t *gb_finish(gbuf *b, size_t *size) {
    gbuf h = {0};
    gb_put(&h, "GGUF", 4);
    gb_u32(&h, 3);
    gb_u64(&h, 0);
    gb_u64(&h, b->n_kv);
    gb_put(&h, b->p, b->n);
    while (h.n % 32) gb_put(&h, "", 1);
    free(b->p);
    memset(b, 0, sizeof *b);
    *size = h.n;
    return h.p;
}

/* Load a tokenizer from an in-memory GGUF; NULL with err set on failure. */
static tokenizer *load_mem(gbuf *b, const char *label, kvs_error *err) {
    size_t size;
    uint8_t *buf = gb_finish(b, &size);
    gguf_file *f = gguf_open_buffer(buf, size, label, err);
    tokenizer *t = f ? tokenizer_load(f, label, err) : NULL;
    gguf_close(f);
    free(buf);
    return t;
}

/* A tiny byte-level BPE vocabulary with the given merges. */
static tokenizer *tiny_bpe(const char *const *merges, int n_merges, kvs_error *err) {
    static const char *const toks[] = {"a", "b", "c", "ab", "bc", "abc", "aa", "Ġ", "<|x|>"};
    int32_t types[9] = {1, 1, 1, 1, 1, 1, 1, 1, 3};
    gbuf b = {0};
    gb_kv_str(&b, "tokenizer.ggml.model", "gpt2");
    gb_kv_str(&b, "tokenizer.ggml.pre", "gpt-2");
    gb_kv_strs(&b, "tokenizer.ggml.tokens", toks, 9);
    gb_kv_i32s(&b, "tokenizer.ggml.token_type", types, 9);
    gb_kv_strs(&b, "tokenizer.ggml.merges", merges, n_merges);
    return load_mem(&b, "tiny.gguf", err);
}

/* ------------------------------------------------------------- fixtures */

static int setup(void **state) {
    (void)state;
    kvs_error err = {0};
    g_file = gguf_open(tu_model_path(), &err);
    if (!g_file) {
        fprintf(stderr, "cannot open model: %s\n", err.msg);
        return -1;
    }
    g_tok = tokenizer_load(g_file, tu_model_path(), &err);
    if (!g_tok) {
        fprintf(stderr, "cannot load tokenizer: %s\n", err.msg);
        return -1;
    }
    size_t n;
    char *js = tu_read_file(KVS_SOURCE_DIR "/tests/golden/smollm2_q4_1.json", &n);
    if (!js) {
        fprintf(stderr, "cannot read tests/golden/smollm2_q4_1.json\n");
        return -1;
    }
    g_gold = cJSON_ParseWithLength(js, n);
    free(js);
    return g_gold ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    tokenizer_free(g_tok);
    gguf_close(g_file);
    cJSON_Delete(g_gold);
    return 0;
}

/* ---------------------------------------------------------------- tests */

/* Every golden prompt: same ids as llama.cpp (with and without special-token
 * parsing), and decoding gives llama.cpp's bytes (the original text where
 * llama.cpp round-trips). */
static void test_golden_prompts(void **state) {
    (void)state;
    const cJSON *prompts = cJSON_GetObjectItemCaseSensitive(g_gold, "prompts");
    assert_true(cJSON_IsArray(prompts));
    int total = 0, match = 0, rt = 0;
    const cJSON *p;
    cJSON_ArrayForEach(p, prompts) {
        size_t n;
        char *s = prompt_bytes(p, &n);
        const char *label = cJSON_GetObjectItemCaseSensitive(p, "label")->valuestring;
        int32_t *want, *want_ns, *got, *got_ns;
        int nw = json_ids(cJSON_GetObjectItemCaseSensitive(p, "ids"), &want);
        int nwn = json_ids(cJSON_GetObjectItemCaseSensitive(p, "ids_nospecial"), &want_ns);
        int ng = encode_all(g_tok, s, n, 0, 1, &got);
        int ngn = encode_all(g_tok, s, n, 0, 0, &got_ns);
        total++;
        int ok = ids_equal(want, nw, got, ng) && ids_equal(want_ns, nwn, got_ns, ngn);
        if (!ok) {
            printf("MISMATCH %s\n", label);
            print_ids("want", want, nw);
            print_ids("got ", got, ng);
            print_ids("want (no special)", want_ns, nwn);
            print_ids("got  (no special)", got_ns, ngn);
        }
        match += ok;

        size_t dn, hn;
        char *dec = decode_all(g_tok, got, ng, &dn);
        char *ref = hex_decode(cJSON_GetObjectItemCaseSensitive(p, "detok_hex")->valuestring, &hn);
        assert_int_equal(dn, hn);
        assert_memory_equal(dec, ref, dn);
        if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(p, "roundtrip"))) {
            assert_int_equal(dn, n);
            assert_memory_equal(dec, s, n);
            rt++;
        }
        free(dec);
        free(ref);
        free(s);
        free(want);
        free(want_ns);
        free(got);
        free(got_ns);
    }
    printf("golden prompts: %d/%d identical to llama.cpp, %d exact byte round trips\n", match, total, rt);
    assert_true(total >= 40);
    assert_int_equal(match, total);
}

/* The same vocabulary under other pre-tokenizer names (in-memory copies of the
 * model's metadata with tokenizer.ggml.pre replaced). */
static void test_pre_variants(void **state) {
    (void)state;
    const cJSON *vars = cJSON_GetObjectItemCaseSensitive(g_gold, "pre_variants");
    const cJSON *prompts = cJSON_GetObjectItemCaseSensitive(g_gold, "prompts");
    assert_true(cJSON_IsObject(vars));
    const cJSON *v;
    int n_vars = 0;
    cJSON_ArrayForEach(v, vars) {
        gbuf b = {0};
        gb_copy(&b, g_file, "tokenizer.ggml.pre", v->string);
        kvs_error err = {0};
        tokenizer *t = load_mem(&b, v->string, &err);
        if (!t) fail_msg("pre '%s': %s", v->string, err.msg);
        int i = 0, match = 0;
        const cJSON *ids;
        cJSON_ArrayForEach(ids, v) {
            size_t n;
            char *s = prompt_bytes(cJSON_GetArrayItem(prompts, i), &n);
            int32_t *want, *got;
            int nw = json_ids(ids, &want), ng = encode_all(t, s, n, 0, 1, &got);
            if (ids_equal(want, nw, got, ng)) {
                match++;
            } else {
                printf("MISMATCH pre=%s prompt %d\n", v->string, i);
                print_ids("want", want, nw);
                print_ids("got ", got, ng);
            }
            free(want);
            free(got);
            free(s);
            i++;
        }
        printf("pre '%s': %d/%d prompts identical\n", v->string, match, i);
        assert_int_equal(match, i);
        /* same texts, types and merges: same fingerprint as the original */
        assert_true(tokenizer_hash(t) == tokenizer_hash(g_tok));
        tokenizer_free(t);
        n_vars++;
    }
    assert_true(n_vars >= 4);
}

/* SentencePiece-style vocabulary (tokenizer model "llama"): scores, byte
 * fallback, space prefix, user-defined tokens. */
static void test_spm_vocab(void **state) {
    (void)state;
    const cJSON *spm = cJSON_GetObjectItemCaseSensitive(g_gold, "spm");
    const cJSON *jt = cJSON_GetObjectItemCaseSensitive(spm, "tokens");
    const cJSON *js = cJSON_GetObjectItemCaseSensitive(spm, "scores");
    const cJSON *jy = cJSON_GetObjectItemCaseSensitive(spm, "types");
    int n = cJSON_GetArraySize(jt);
    assert_true(n > 300);
    const char **toks = malloc(sizeof *toks * (size_t)n);
    float *scores = malloc(sizeof *scores * (size_t)n);
    int32_t *types = malloc(sizeof *types * (size_t)n);
    assert_true(toks && scores && types);
    for (int i = 0; i < n; i++) {
        toks[i] = cJSON_GetArrayItem(jt, i)->valuestring;
        scores[i] = (float)cJSON_GetArrayItem(js, i)->valuedouble;
        types[i] = (int32_t)cJSON_GetArrayItem(jy, i)->valuedouble;
    }
    gbuf b = {0};
    gb_kv_str(&b, "tokenizer.ggml.model", "llama");
    gb_kv_strs(&b, "tokenizer.ggml.tokens", toks, n);
    gb_kv_f32s(&b, "tokenizer.ggml.scores", scores, n);
    gb_kv_i32s(&b, "tokenizer.ggml.token_type", types, n);
    gb_kv_u32(&b, "tokenizer.ggml.bos_token_id", 1);
    gb_kv_u32(&b, "tokenizer.ggml.eos_token_id", 2);
    gb_kv_u32(&b, "tokenizer.ggml.unknown_token_id", 0);
    gb_kv_bool(&b, "tokenizer.ggml.add_bos_token", 1);
    kvs_error err = {0};
    tokenizer *t = load_mem(&b, "spm.gguf", &err);
    free(toks);
    free(scores);
    free(types);
    if (!t) fail_msg("%s", err.msg);
    assert_int_equal(tokenizer_bos(t), 1);
    assert_int_equal(tokenizer_add_bos(t), 1);

    const cJSON *c;
    int total = 0, match = 0;
    cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(spm, "cases")) {
        size_t len;
        char *s = prompt_bytes(c, &len);
        static const char *const keys[] = {"ids", "ids_nospecial", "ids_bos"};
        int ok = 1;
        for (int k = 0; k < 3; k++) {
            int32_t *want, *got;
            int nw = json_ids(cJSON_GetObjectItemCaseSensitive(c, keys[k]), &want);
            int ng = encode_all(t, s, len, k == 2 ? -1 : 0, k != 1, &got);
            if (!ids_equal(want, nw, got, ng)) {
                printf("MISMATCH spm case %d (%s)\n", total, keys[k]);
                print_ids("want", want, nw);
                print_ids("got ", got, ng);
                ok = 0;
            }
            if (k == 0) {
                size_t dn, hn;
                char *dec = decode_all(t, got, ng, &dn);
                char *ref = hex_decode(cJSON_GetObjectItemCaseSensitive(c, "detok_hex")->valuestring, &hn);
                assert_int_equal(dn, hn);
                assert_memory_equal(dec, ref, dn);
                free(dec);
                free(ref);
            }
            free(want);
            free(got);
        }
        match += ok;
        total++;
        free(s);
    }
    printf("spm cases: %d/%d identical to llama.cpp\n", match, total);
    assert_int_equal(match, total);
    tokenizer_free(t);
}

/* Merges apply lowest rank first, not left to right. */
static void test_merge_rank_order(void **state) {
    (void)state;
    kvs_error err = {0};
    int32_t ids[8];
    /* b+c outranks a+b: "abc" -> a|bc -> abc */
    static const char *const m1[] = {"b c", "a b", "a bc", "a a"};
    tokenizer *t = tiny_bpe(m1, 4, &err);
    if (!t) fail_msg("%s", err.msg);
    assert_int_equal(tokenizer_encode(t, "abc", 3, 0, 1, ids, 8, &err), 1);
    assert_int_equal(ids[0], 5);                                        /* abc */
    assert_int_equal(tokenizer_encode(t, "abab", 4, 0, 1, ids, 8, &err), 2); /* ab ab */
    assert_int_equal(ids[0], 3);
    assert_int_equal(ids[1], 3);
    /* equal ranks: the leftmost pair merges first: "aaa" -> aa|a */
    assert_int_equal(tokenizer_encode(t, "aaa", 3, 0, 1, ids, 8, &err), 2);
    assert_int_equal(ids[0], 6);
    assert_int_equal(ids[1], 0);
    /* " a" has no token for the pair: Ġ stays separate */
    assert_int_equal(tokenizer_encode(t, " a", 2, 0, 1, ids, 8, &err), 2);
    assert_int_equal(ids[0], 7);
    assert_int_equal(ids[1], 0);
    tokenizer_free(t);

    /* a+b outranks b+c: "abc" -> ab|c, and "ab c" is no merge */
    static const char *const m2[] = {"a b", "b c", "a bc"};
    t = tiny_bpe(m2, 3, &err);
    if (!t) fail_msg("%s", err.msg);
    assert_int_equal(tokenizer_encode(t, "abc", 3, 0, 1, ids, 8, &err), 2);
    assert_int_equal(ids[0], 3);
    assert_int_equal(ids[1], 2);
    /* special token text of the tiny vocabulary */
    assert_int_equal(tokenizer_encode(t, "a<|x|>a", 7, 0, 1, ids, 8, &err), 3);
    assert_int_equal(ids[1], 8);
    tokenizer_free(t);

    /* in the real vocabulary: "hello" is one token, built by several merges */
    assert_int_equal(tokenizer_encode(g_tok, "hello", 5, 0, 1, ids, 8, &err), 1);
    assert_int_equal(ids[0], tokenizer_find(g_tok, "hello"));
}

/* GPT-2's byte <-> symbol table, computed independently here: every byte's
 * token decodes to exactly that byte. */
static void test_byte_mapping(void **state) {
    (void)state;
    int n = 256, missing = 0;
    uint32_t cp[256];
    int has[256];
    int k = 0;
    for (int b = 0; b < 256; b++) {
        int printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
        cp[b] = printable ? (uint32_t)b : 0;
    }
    for (int b = 0; b < 256; b++)
        if (!cp[b] && !((b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE))) cp[b] = 256u + (uint32_t)k++;
    assert_int_equal(k, 68);
    for (int b = 0; b < n; b++) {
        char u[4];
        int l;
        if (cp[b] < 0x80) {
            u[0] = (char)cp[b];
            l = 1;
        } else {
            u[0] = (char)(0xC0 | (cp[b] >> 6));
            u[1] = (char)(0x80 | (cp[b] & 0x3F));
            l = 2;
        }
        u[l] = 0;
        int32_t id = tokenizer_find(g_tok, u);
        has[b] = id >= 0;
        if (id < 0) { /* SmolLM2 lacks a few bytes that never occur in its data (C0, F5..FF, ...) */
            missing++;
            continue;
        }
        char out[8];
        assert_int_equal(tokenizer_token_bytes(g_tok, id, out, sizeof out), 1);
        assert_int_equal((unsigned char)out[0], b);
    }
    assert_true(missing <= 24);
    assert_true(has[0] && has[' '] && has['\n'] && has[0x80] && has[0xE2]);
    /* every ASCII byte that has a token (NUL included) through encode and back */
    char all[128];
    int na = 0;
    for (int i = 0; i < 128; i++)
        if (has[i]) all[na++] = (char)i;
    int32_t *ids;
    int ni = encode_all(g_tok, all, (size_t)na, 0, 0, &ids);
    size_t dn;
    char *dec = decode_all(g_tok, ids, ni, &dn);
    assert_int_equal(dn, na);
    assert_memory_equal(dec, all, (size_t)na);
    free(dec);
    free(ids);
    /* and a long run of two-, three- and four-byte characters (up to U+3FFFF:
     * lead bytes F1 and F2 have no token in this vocabulary) */
    char text[4096];
    size_t tn = 0;
    for (uint32_t c = 0xA0; c < 0x40000 && tn + 4 < sizeof text; c = c * 9 / 8 + 7) {
        if (c >= 0xD800 && c <= 0xDFFF) continue;
        if (c < 0x800) {
            text[tn++] = (char)(0xC0 | (c >> 6));
            text[tn++] = (char)(0x80 | (c & 0x3F));
        } else if (c < 0x10000) {
            text[tn++] = (char)(0xE0 | (c >> 12));
            text[tn++] = (char)(0x80 | ((c >> 6) & 0x3F));
            text[tn++] = (char)(0x80 | (c & 0x3F));
        } else {
            text[tn++] = (char)(0xF0 | (c >> 18));
            text[tn++] = (char)(0x80 | ((c >> 12) & 0x3F));
            text[tn++] = (char)(0x80 | ((c >> 6) & 0x3F));
            text[tn++] = (char)(0x80 | (c & 0x3F));
        }
    }
    ni = encode_all(g_tok, text, tn, 0, 0, &ids);
    dec = decode_all(g_tok, ids, ni, &dn);
    assert_int_equal(dn, tn);
    assert_memory_equal(dec, text, tn);
    free(dec);
    free(ids);
}

/* A character split over several tokens: each token holds part of its UTF-8
 * sequence, and the pieces concatenate to the exact bytes. */
static void test_split_utf8(void **state) {
    (void)state;
    static const char emoji[] = "\xF0\x9F\x98\x80"; /* U+1F600 */
    int32_t ids[8];
    kvs_error err = {0};
    int n = tokenizer_encode(g_tok, emoji, 4, 0, 0, ids, 8, &err);
    assert_true(n >= 2);
    char buf[16];
    int at = 0, partial = 0;
    for (int i = 0; i < n; i++) {
        int m = tokenizer_token_bytes(g_tok, ids[i], buf + at, (int)sizeof buf - at);
        assert_true(m > 0 && m < 4);
        partial++;
        at += m;
    }
    assert_int_equal(at, 4);
    assert_memory_equal(buf, emoji, 4);
    assert_int_equal(partial, n);
    /* truncated output: the full length is still reported */
    assert_int_equal(tokenizer_token_bytes(g_tok, ids[0], buf, 1), tokenizer_token_bytes(g_tok, ids[0], NULL, 0));
    assert_true(tokenizer_token_bytes(g_tok, -1, buf, 8) < 0);
    assert_true(tokenizer_token_bytes(g_tok, tokenizer_n_vocab(g_tok), buf, 8) < 0);
}

/* "<|im_start|>" is one token only when special tokens are parsed; either way
 * decoding gives the text back. */
static void test_special_tokens(void **state) {
    (void)state;
    static const char s[] = "<|im_start|>user";
    int32_t ids[32];
    kvs_error err = {0};
    int n = tokenizer_encode(g_tok, s, strlen(s), 0, 1, ids, 32, &err);
    assert_int_equal(n, 2);
    assert_int_equal(ids[0], 1);
    n = tokenizer_encode(g_tok, s, strlen(s), 0, 0, ids, 32, &err);
    assert_true(n > 3);
    for (int i = 0; i < n; i++) assert_int_not_equal(ids[i], 1);
    size_t dn;
    char *dec = decode_all(g_tok, ids, n, &dn);
    assert_int_equal(dn, strlen(s));
    assert_memory_equal(dec, s, dn);
    free(dec);
    char buf[32];
    assert_int_equal(tokenizer_token_bytes(g_tok, 2, buf, sizeof buf), 10);
    assert_memory_equal(buf, "<|im_end|>", 10);

    assert_int_equal(tokenizer_bos(g_tok), 1);
    assert_int_equal(tokenizer_eos(g_tok), 2);
    assert_int_equal(tokenizer_eot(g_tok), 2);
    assert_int_equal(tokenizer_add_bos(g_tok), 0);
    assert_int_equal(tokenizer_n_vocab(g_tok), 49152);
    assert_int_equal(tokenizer_find(g_tok, "<|im_end|>"), 2);
    assert_int_equal(tokenizer_find(g_tok, "no such token text"), -1);
    /* end-of-generation ids: the same set as llama.cpp */
    const cJSON *eog = cJSON_GetObjectItemCaseSensitive(g_gold, "eog_ids");
    int32_t *want;
    int nw = json_ids(eog, &want), k = 0;
    for (int i = 0; i < tokenizer_n_vocab(g_tok); i++)
        if (tokenizer_is_eog(g_tok, i)) {
            assert_true(k < nw);
            assert_int_equal(i, want[k]);
            k++;
        }
    assert_int_equal(k, nw);
    assert_false(tokenizer_is_eog(g_tok, -1));
    free(want);
    /* forced BOS */
    n = tokenizer_encode(g_tok, "hi", 2, 1, 1, ids, 32, &err);
    assert_int_equal(n, 2);
    assert_int_equal(ids[0], 1);
}

/* Count is returned even when it exceeds cap; nothing past cap is written. */
static void test_capacity(void **state) {
    (void)state;
    static const char s[] = "The quick brown fox jumps over the lazy dog.";
    kvs_error err = {0};
    int full = tokenizer_encode(g_tok, s, strlen(s), 0, 1, NULL, 0, &err);
    assert_int_equal(full, 10);
    int32_t ids[16], ref[16];
    assert_int_equal(tokenizer_encode(g_tok, s, strlen(s), 0, 1, ref, 16, &err), full);
    for (int i = 0; i < 16; i++) ids[i] = -7;
    assert_int_equal(tokenizer_encode(g_tok, s, strlen(s), 0, 1, ids, 3, &err), full);
    assert_memory_equal(ids, ref, 3 * sizeof *ids);
    for (int i = 3; i < 16; i++) assert_int_equal(ids[i], -7);
    assert_int_equal(tokenizer_encode(g_tok, "", 0, 0, 1, ids, 16, &err), 0);
    assert_true(tokenizer_encode(g_tok, NULL, 5, 0, 1, ids, 16, &err) < 0);
    assert_true(tokenizer_encode(g_tok, s, 3, 0, 1, NULL, 4, &err) < 0);
    assert_true(tokenizer_encode(g_tok, s, 3, 0, 1, ids, -1, &err) < 0);
}

/* Long inputs: 10 KB of prose and a single 20 000-byte "word" round-trip. */
static void test_long_inputs(void **state) {
    (void)state;
    const cJSON *prompts = cJSON_GetObjectItemCaseSensitive(g_gold, "prompts");
    const cJSON *p;
    size_t cap = 16384, n = 0;
    char *text = malloc(cap);
    assert_non_null(text);
    while (n < 10240) {
        cJSON_ArrayForEach(p, prompts) {
            const cJSON *t = cJSON_GetObjectItemCaseSensitive(p, "text");
            if (!cJSON_IsString(t)) continue;
            size_t l = strlen(t->valuestring);
            if (n + l + 1 > cap) break;
            memcpy(text + n, t->valuestring, l);
            n += l;
            text[n++] = ' ';
        }
    }
    int32_t *ids;
    int ni = encode_all(g_tok, text, n, 0, 1, &ids);
    size_t dn;
    char *dec = decode_all(g_tok, ids, ni, &dn);
    assert_int_equal(dn, n);
    assert_memory_equal(dec, text, n);
    free(dec);
    free(ids);
    free(text);

    size_t wn = 20000;
    char *w = malloc(wn);
    assert_non_null(w);
    for (size_t i = 0; i < wn; i++) w[i] = "abcab"[i % 5];
    ni = encode_all(g_tok, w, wn, 0, 1, &ids);
    dec = decode_all(g_tok, ids, ni, &dn);
    assert_int_equal(dn, wn);
    assert_memory_equal(dec, w, wn);
    free(dec);
    free(ids);
    memset(w, ' ', wn);
    ni = encode_all(g_tok, w, wn, 0, 1, &ids);
    dec = decode_all(g_tok, ids, ni, &dn);
    assert_int_equal(dn, wn);
    assert_memory_equal(dec, w, wn);
    free(dec);
    free(ids);
    free(w);
}

static void test_hash(void **state) {
    (void)state;
    kvs_error err = {0};
    tokenizer *t = tokenizer_load(g_file, "again", &err);
    assert_non_null(t);
    assert_true(tokenizer_hash(t) == tokenizer_hash(g_tok));
    assert_true(tokenizer_hash(t) != 0);
    tokenizer_free(t);
    static const char *const m1[] = {"b c", "a b"}, *const m2[] = {"a b", "b c"};
    tokenizer *a = tiny_bpe(m1, 2, &err), *b = tiny_bpe(m2, 2, &err);
    assert_non_null(a);
    assert_non_null(b);
    assert_true(tokenizer_hash(a) != tokenizer_hash(b)); /* merge order is part of it */
    assert_true(tokenizer_hash(a) != tokenizer_hash(g_tok));
    tokenizer_free(a);
    tokenizer_free(b);
}

/* ---------------------------------------------------------- error cases */

static void expect_error(tokenizer *t, const kvs_error *err, const char *label, const char *what) {
    if (t) {
        tokenizer_free(t);
        fail_msg("expected an error mentioning '%s'", what);
    }
    assert_true(err->code < 0);
    if (!strstr(err->msg, label) || !strstr(err->msg, what))
        fail_msg("error '%s' should name '%s' and '%s'", err->msg, label, what);
    assert_null(strchr(err->msg, '\n'));
}

static void test_missing_tokenizer(void **state) {
    (void)state;
    char path[128];
    snprintf(path, sizeof path, "/tmp/kvs_test_tok_%d.gguf", (int)getpid());
    gguf_writer *w = gguf_writer_new();
    assert_non_null(w);
    assert_int_equal(gguf_writer_add_str(w, "general.architecture", "llama"), 0);
    kvs_error err = {0};
    assert_int_equal(gguf_writer_save(w, path, &err), 0);
    gguf_writer_free(w);
    gguf_file *f = gguf_open(path, &err);
    assert_non_null(f);
    tokenizer *t = tokenizer_load(f, path, &err);
    gguf_close(f);
    unlink(path);
    expect_error(t, &err, path, "tokenizer");
}

/* An empty metadata buffer that names a GPT-2 style BPE tokenizer. */
static void gb_gpt2(gbuf *b) {
    memset(b, 0, sizeof *b);
    gb_kv_str(b, "tokenizer.ggml.model", "gpt2");
    gb_kv_str(b, "tokenizer.ggml.pre", "gpt-2");
}

static void test_bad_metadata(void **state) {
    (void)state;
    static const char *const toks[] = {"a", "b", "ab"};
    static const char *const merges[] = {"a b"};
    int32_t types[3] = {1, 1, 1};
    kvs_error err;
    gbuf b;

    /* unknown pre-tokenizer name */
    memset(&b, 0, sizeof b);
    memset(&err, 0, sizeof err);
    gb_copy(&b, g_file, "tokenizer.ggml.pre", "no-such-pre");
    expect_error(load_mem(&b, "variant.gguf", &err), &err, "variant.gguf", "no-such-pre");

    /* unsupported tokenizer model */
    memset(&b, 0, sizeof b);
    gb_kv_str(&b, "tokenizer.ggml.model", "bert");
    gb_kv_strs(&b, "tokenizer.ggml.tokens", toks, 3);
    expect_error(load_mem(&b, "bert.gguf", &err), &err, "bert.gguf", "unsupported tokenizer model");

    /* no tokens array */
    gb_gpt2(&b);
    gb_kv_strs(&b, "tokenizer.ggml.merges", merges, 1);
    expect_error(load_mem(&b, "notok.gguf", &err), &err, "notok.gguf", "tokenizer.ggml.tokens");

    /* no merges for BPE */
    gb_gpt2(&b);
    gb_kv_strs(&b, "tokenizer.ggml.tokens", toks, 3);
    expect_error(load_mem(&b, "nomerge.gguf", &err), &err, "nomerge.gguf", "merges");

    /* token types for a different number of tokens */
    gb_gpt2(&b);
    gb_kv_strs(&b, "tokenizer.ggml.tokens", toks, 3);
    gb_kv_i32s(&b, "tokenizer.ggml.token_type", types, 2);
    gb_kv_strs(&b, "tokenizer.ggml.merges", merges, 1);
    expect_error(load_mem(&b, "types.gguf", &err), &err, "types.gguf", "token_type");

    /* a merge without its separator */
    static const char *const bad_merges[] = {"a b", "ab"};
    gb_gpt2(&b);
    gb_kv_strs(&b, "tokenizer.ggml.tokens", toks, 3);
    gb_kv_strs(&b, "tokenizer.ggml.merges", bad_merges, 2);
    expect_error(load_mem(&b, "merge.gguf", &err), &err, "merge.gguf", "merges[1]");

    /* special id outside the vocabulary */
    gb_gpt2(&b);
    gb_kv_strs(&b, "tokenizer.ggml.tokens", toks, 3);
    gb_kv_strs(&b, "tokenizer.ggml.merges", merges, 1);
    gb_kv_u32(&b, "tokenizer.ggml.eos_token_id", 3);
    expect_error(load_mem(&b, "range.gguf", &err), &err, "range.gguf", "eos_token_id");

    /* and the minimal valid one loads */
    gb_gpt2(&b);
    gb_kv_strs(&b, "tokenizer.ggml.tokens", toks, 3);
    gb_kv_strs(&b, "tokenizer.ggml.merges", merges, 1);
    tokenizer *t = load_mem(&b, "ok.gguf", &err);
    if (!t) fail_msg("%s", err.msg);
    int32_t ids[4];
    assert_int_equal(tokenizer_encode(t, "ab", 2, -1, 1, ids, 4, &err), 1);
    assert_int_equal(ids[0], 2);
    assert_int_equal(tokenizer_bos(t), -1);
    tokenizer_free(t);
}

/* Text leaving the library as JSON: every byte that starts no well-formed
 * character becomes U+FFFD, and well-formed text is kept as it is. */
static void test_utf8_clean(void **state) {
    (void)state;
    const char good[] = "plain \xC3\xA9t\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80 \xE2\x80\x99 \xF4\x8F\xBF\xBF";
    char *c = utf8_clean(good, strlen(good));
    assert_string_equal(c, good);
    free(c);
    const struct { const char *in; size_t n; const char *out; } bad[] = {
        {"a\xE2\x80", 3, "a\xEF\xBF\xBD\xEF\xBF\xBD"},          /* cut inside a character */
        {"\xFF\x00z", 3, "\xEF\xBF\xBD\xEF\xBF\xBDz"},          /* invalid byte, NUL */
        {"\xED\xA0\x80", 3, "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"}, /* surrogate */
        {"\xC0\xAF|", 3, "\xEF\xBF\xBD\xEF\xBF\xBD|"},          /* overlong two bytes */
        {"\xE0\x80\xAF", 3, "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"}, /* overlong three bytes */
        {"\xF0\x80\x80\xAF", 4, "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"}, /* overlong four */
        {"\xF4\x90\x80\x80", 4, "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"}, /* past U+10FFFF */
        {"\xF5\x80", 2, "\xEF\xBF\xBD\xEF\xBF\xBD"},            /* no such lead byte */
        {"\x80x", 2, "\xEF\xBF\xBDx"},                          /* stray continuation */
        {"", 0, ""},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        c = utf8_clean(bad[i].in, bad[i].n);
        assert_non_null(c);
        assert_string_equal(c, bad[i].out);
        free(c);
    }
    assert_int_equal(utf8_seq_len('a'), 1);
    assert_int_equal(utf8_seq_len(0xC2), 2);
    assert_int_equal(utf8_seq_len(0xE2), 3);
    assert_int_equal(utf8_seq_len(0xF0), 4);
    assert_int_equal(utf8_seq_len(0x80), 0);
    assert_int_equal(utf8_seq_len(0xC1), 0);
    assert_int_equal(utf8_seq_len(0xF5), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden_prompts),  cmocka_unit_test(test_pre_variants),
        cmocka_unit_test(test_spm_vocab),       cmocka_unit_test(test_merge_rank_order),
        cmocka_unit_test(test_byte_mapping),    cmocka_unit_test(test_split_utf8),
        cmocka_unit_test(test_special_tokens),  cmocka_unit_test(test_capacity),
        cmocka_unit_test(test_long_inputs),     cmocka_unit_test(test_hash),
        cmocka_unit_test(test_missing_tokenizer), cmocka_unit_test(test_bad_metadata),
        cmocka_unit_test(test_utf8_clean),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
