/* tokenizer.c - byte-level BPE (and SentencePiece-style) tokenization with a
 * vocabulary read from GGUF metadata (vocab.c).
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
#include "vocab.h"

#include <ctype.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "grow.h"

/* ----------------------------------------------------------------- encoding */

typedef struct ivec {
    int32_t *v;
    size_t n, cap;
} ivec;

static int ivec_push(ivec *a, int32_t x) {
    if (a->n == a->cap) {
        int32_t *p = grow_to(a->v, a->n + 1, &a->cap, sizeof *p);
        if (!p) return -1;
        a->v = p;
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
        frag *p = grow_to(a->v, a->n + 1, &a->cap, sizeof *p);
        if (!p) return -1;
        a->v = p;
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
    heap_ent *h = grow_to(w->heap, w->heap_n + 1, &w->heap_cap, sizeof *w->heap);
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
        char *e = grow_to(w->enc, n * 2 + 1, &w->enc_cap, 1);
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
    char *nb = len < SIZE_MAX / 4 ? grow_to(w->buf, len * 3 + 4, &w->buf_cap, 1) : NULL;
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
    char *nb = len < SIZE_MAX / 4 ? grow_to(w->buf, len * 3 + 8, &w->buf_cap, 1) : NULL;
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
            sp_cand *nc2 = grow_to(cand, nc + 1, &cc, sizeof *cand);
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

