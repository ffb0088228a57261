/* answer.c - answer extraction for the evaluation (see answer.h).  Patterns are
 * PCRE2 in byte mode (responses may end in a cut UTF-8 sequence; every pattern
 * is ASCII), compiled once per extractor. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "answer.h"

#include <ctype.h>
#include <math.h>
#include <pcre2.h>
#include <stdlib.h>
#include <string.h>

#include "engine/error.h"

/* A label as a whole token: not preceded or followed by a letter or digit, and
 * a digit label is not the start of a decimal ("1.5") or grouped number. */
#define LABEL "(?<![A-Za-z0-9])((?-i:[A-Za-z])|[0-9]{1,2})(?![A-Za-z0-9])(?![.,][0-9])"
/* LaTeX around a label: Qwen2.5 writes "the correct answer is \boxed{C}" (a
 * quarter of the 1.5B model's ARC answers went unread without this), and models
 * of its family also write "\boxed{\text{C}}" or "$\mathbf{C}$". */
#define LATEX "\\\\(?:boxed|text(?:bf)?|mathrm|mathbf)\\s*\\{"
/* What may sit between an answer phrase and its label: spaces, punctuation,
 * markdown, LaTeX math and boxes, and "option"/"choice"/"answer"/"letter". */
#define LEAD_CH "(?:\\s|[:=*\"'(\\[{$-]|" LATEX ")"
#define LEAD LEAD_CH "*(?:(?:option|choice|answer|letter)" LEAD_CH "*)?"

enum {
    P_CORRECT_CHOICE,
    P_CORRECT_ANSWER,
    P_ANSWER_IS,
    P_ANSWER_COLON,
    P_BOXED,
    P_LABEL_COLON_START,
    P_PAREN,
    P_BARE_START,
    P_OPTION,
    N_PATTERNS
};

static const struct {
    const char *name, *re;
} k_patterns[N_PATTERNS] = {
    {"correct_choice_is", "correct\\s+(?:choice|option)\\s*(?:is|would\\s+be|=|:)" LEAD LABEL},
    {"correct_answer_is", "correct\\s+answer\\s*(?:is|would\\s+be|=|:)" LEAD LABEL},
    {"answer_is", "\\banswer\\s+(?:is|would\\s+be)" LEAD LABEL},
    {"answer_colon", "\\banswer\\s*:" LEAD LABEL},
    {"boxed_label", "\\\\boxed\\s*\\{" LEAD_CH "*" LABEL},
    {"label_colon_at_start", "\\A[\\s*\"'(\\[]*" LABEL "\\s*:"},
    {"parenthesized_label", "\\(\\s*" LABEL "\\s*\\)"},
    {"bare_label_at_start", "\\A[\\s*\"']*" LABEL "(?=[ \\t*\"'.)\\]]*(?:\\z|\\n)|[.)]\\s)"},
    {"option_label", "\\b(?:option|choice)\\s*" LABEL},
};

/* A number: optional sign (not a minus between two operands), optional "$",
 * digits with optional thousands commas, optional decimals. */
#define NUM_BODY "(-)?\\$?((?:[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)(?:\\.[0-9]+)?)(?![0-9])"

struct ans_extractor {
    pcre2_code *pat[N_PATTERNS];
    pcre2_code *num;        /* a number anywhere */
    pcre2_code *num_at;     /* a number right here (anchored), after spaces/markdown */
    pcre2_code *answer_is;  /* "the answer is" */
    pcre2_code *neg_before; /* a negation in the sentence before a choice text */
    pcre2_code *neg_after;  /* "... is not / is wrong" right after it */
    pcre2_code *listed;     /* a label written as a list item: "A:", "b)", "(C)" */
};

static pcre2_code *compile(const char *re, uint32_t flags, kvs_error *err) {
    int ec;
    PCRE2_SIZE eo;
    pcre2_code *c = pcre2_compile((PCRE2_SPTR)re, PCRE2_ZERO_TERMINATED, flags, &ec, &eo, NULL);
    if (!c) {
        PCRE2_UCHAR msg[160];
        pcre2_get_error_message(ec, msg, sizeof msg);
        err_fail(err, KVS_E_ARG, "answer: pattern does not compile at %zu: %s", (size_t)eo, (const char *)msg);
        return NULL;
    }
    (void)pcre2_jit_compile(c, PCRE2_JIT_COMPLETE); /* the interpreter serves if JIT is unavailable */
    return c;
}

void ans_free(ans_extractor *x) {
    if (!x) return;
    for (int i = 0; i < N_PATTERNS; i++) pcre2_code_free(x->pat[i]);
    pcre2_code_free(x->num);
    pcre2_code_free(x->num_at);
    pcre2_code_free(x->answer_is);
    pcre2_code_free(x->neg_before);
    pcre2_code_free(x->neg_after);
    pcre2_code_free(x->listed);
    free(x);
}

ans_extractor *ans_new(kvs_error *err) {
    ans_extractor *x = calloc(1, sizeof *x);
    if (!x) return err_fail(err, KVS_E_NOMEM, "answer: out of memory"), NULL;
    int ok = 1;
    for (int i = 0; i < N_PATTERNS && ok; i++) ok = (x->pat[i] = compile(k_patterns[i].re, PCRE2_CASELESS, err)) != NULL;
    ok = ok && (x->num = compile("(?<![0-9A-Za-z_.])" NUM_BODY, 0, err));
    ok = ok && (x->num_at = compile("[\\s:*]*" NUM_BODY, PCRE2_ANCHORED, err));
    ok = ok && (x->answer_is = compile("\\bthe\\s+(?:final\\s+)?answer\\s+is\\b", PCRE2_CASELESS, err));
    ok = ok && (x->neg_before = compile("\\b(?:not|never|neither|nor|cannot|incorrect|wrong|false|"
                                        "[a-z]+n['\xe2\x80\x99]t|rather\\s+than|instead\\s+of)\\b",
                                        PCRE2_CASELESS, err));
    ok = ok && (x->neg_after = compile("\\A[\\s,\"'*]*(?:is|are|was|would\\s+be|seems)\\s+(?:not\\b|incorrect|wrong)"
                                       "|\\A[\\s,\"'*]*(?:isn|aren|wasn)['\xe2\x80\x99]t",
                                       PCRE2_CASELESS, err));
    ok = ok && (x->listed = compile("\\(\\s*" LABEL "\\s*\\)|" LABEL "\\s*[:)]", 0, err));
    if (!ok) {
        ans_free(x);
        return NULL;
    }
    return x;
}

/* ------------------------------------------------------------------ numbers */

/* neg, "1,234.500" -> "-1234.5" (malloc'd). */
static char *normalize(int neg, const char *body, size_t len) {
    char *s = malloc(len + 2), *o = s;
    if (!s) return NULL;
    if (neg) *o++ = '-';
    size_t i = 0;
    while (i < len && body[i] == '0' && i + 1 < len && isdigit((unsigned char)body[i + 1])) i++; /* leading zeros */
    for (; i < len; i++)
        if (body[i] != ',' && body[i] != '$') *o++ = body[i];
    *o = 0;
    char *dot = strchr(s, '.');
    if (dot) {
        char *end = o;
        while (end > dot + 1 && end[-1] == '0') end--;
        if (end == dot + 1) end = dot;
        *end = 0;
    }
    if (!strcmp(s, "-0")) memmove(s, s + 1, 2);
    return s;
}

static char *number_at(const pcre2_code *re, pcre2_match_data *md, const char *t, size_t n, size_t at, int last) {
    char *best = NULL;
    for (;;) {
        if (pcre2_match(re, (PCRE2_SPTR)t, n, at, 0, md, NULL) < 0) break;
        const PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        const size_t sg = ov[2] == PCRE2_UNSET ? 0 : ov[3] - ov[2];
        free(best);
        best = normalize(sg > 0, t + ov[4], ov[5] - ov[4]);
        if (!last) break;
        at = ov[1] > ov[0] ? ov[1] : ov[0] + 1;
    }
    return best;
}

char *ans_last_number(const ans_extractor *x, const char *text) {
    if (!x || !text) return NULL;
    pcre2_match_data *md = pcre2_match_data_create(8, NULL);
    if (!md) return NULL;
    char *r = number_at(x->num, md, text, strlen(text), 0, 1);
    pcre2_match_data_free(md);
    return r;
}

char *ans_strict_number(const ans_extractor *x, const char *text) {
    if (!x || !text) return NULL;
    pcre2_match_data *md = pcre2_match_data_create(8, NULL);
    if (!md) return NULL;
    const size_t n = strlen(text);
    size_t at = 0, after = (size_t)-1;
    while (pcre2_match(x->answer_is, (PCRE2_SPTR)text, n, at, 0, md, NULL) >= 0) {
        const PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        after = ov[1];
        at = ov[1];
    }
    char *r = after == (size_t)-1 ? NULL : number_at(x->num_at, md, text, n, after, 0);
    pcre2_match_data_free(md);
    return r;
}

char *ans_normalize_number(const char *s) {
    if (!s) return NULL;
    while (isspace((unsigned char)*s)) s++;
    size_t n = strlen(s);
    while (n > 0 && (isspace((unsigned char)s[n - 1]) || s[n - 1] == '.')) n--;
    int neg = 0;
    if (n && *s == '-') {
        neg = 1;
        s++;
        n--;
    }
    if (n && *s == '$') {
        s++;
        n--;
    }
    int digits = 0, dots = 0;
    for (size_t i = 0; i < n; i++) {
        if (isdigit((unsigned char)s[i])) digits++;
        else if (s[i] == '.') dots++;
        else if (s[i] != ',') return NULL;
    }
    if (!digits || dots > 1 || *s == '.' || *s == ',') return NULL;
    return normalize(neg, s, n);
}

int ans_numbers_equal(const char *a, const char *b) {
    char *na = ans_normalize_number(a), *nb = ans_normalize_number(b);
    int eq = 0;
    if (na && nb) {
        const double x = strtod(na, NULL), y = strtod(nb, NULL);
        eq = !strcmp(na, nb) || fabs(x - y) <= 1e-9 * fmax(1.0, fabs(y));
    }
    free(na);
    free(nb);
    return eq;
}

/* ------------------------------------------------------------------ choices */

/* Index of the label the captured text names, or -1. */
static int label_index(const char *t, size_t n, size_t a, size_t b, const char *const *labels, int nl) {
    const size_t len = b - a;
    for (int i = 0; i < nl; i++)
        if (strlen(labels[i]) == len && !memcmp(labels[i], t + a, len)) return i;
    /* a lower-case letter counts only when delimited: "(b)", "b)", "b:" */
    if (len == 1 && islower((unsigned char)t[a])) {
        const int delimited = (a > 0 && t[a - 1] == '(') || (b < n && (t[b] == ')' || t[b] == ':'));
        if (!delimited) return -1;
        for (int i = 0; i < nl; i++)
            if (strlen(labels[i]) == 1 && labels[i][0] == toupper((unsigned char)t[a])) return i;
    }
    return -1;
}

/* Pattern p over text: the first (or last) occurrence that names a label. */
static int match_pattern(const ans_extractor *x, int p, pcre2_match_data *md, const char *t, size_t n,
                         const char *const *labels, int nl, int last) {
    /* in a whole response, "(A) ... (B) ..." or "option A ... option B" is an
     * enumeration of the choices, not an answer: these weak patterns count
     * there only when they name one label */
    const int unique = last && (p == P_PAREN || p == P_OPTION);
    int found = -1;
    size_t at = 0;
    while (at <= n && pcre2_match(x->pat[p], (PCRE2_SPTR)t, n, at, 0, md, NULL) >= 0) {
        const PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        const size_t a = ov[2], b = ov[3];
        int li = label_index(t, n, a, b, labels, nl);
        /* "1. First, ..." at the start is a numbered list, not label 1 */
        if (li >= 0 && p == P_BARE_START && isdigit((unsigned char)t[a]) && b < n && t[b] == '.') li = -1;
        if (li >= 0) {
            if (unique && found >= 0 && found != li) return -1;
            found = li;
            if (!last) break;
        }
        at = ov[0] + 1;
    }
    return found;
}

static int patterns(const ans_extractor *x, pcre2_match_data *md, const char *t, const char *const *labels, int nl,
                    int last, const char **rule) {
    const size_t n = strlen(t);
    for (int p = 0; p < N_PATTERNS; p++) {
        int li = match_pattern(x, p, md, t, n, labels, nl, last);
        if (li >= 0) {
            *rule = k_patterns[p].name;
            return li;
        }
    }
    return -1;
}

static int is_word(unsigned char c) { return isalnum(c) || c == '_'; }

/* Case-insensitive search of needle (n bytes) in hay from `from`, as a whole
 * phrase where its ends are word characters; -1 if absent. */
static long find_phrase(const char *hay, size_t hn, const char *needle, size_t n, size_t from) {
    if (n == 0 || n > hn) return -1;
    for (size_t i = from; i + n <= hn; i++) {
        size_t k = 0;
        while (k < n && tolower((unsigned char)hay[i + k]) == tolower((unsigned char)needle[k])) k++;
        if (k < n) continue;
        if (is_word((unsigned char)needle[0]) && i > 0 && is_word((unsigned char)hay[i - 1])) continue;
        if (is_word((unsigned char)needle[n - 1]) && i + n < hn && is_word((unsigned char)hay[i + n])) continue;
        return (long)i;
    }
    return -1;
}

typedef struct occ {
    int choice;
    size_t a, b;
} occ;

static int is_sentence_end(const char *t, size_t i, size_t n) {
    if (t[i] == '\n' || t[i] == '!' || t[i] == '?') return 1;
    /* a full stop, not a decimal point */
    return t[i] == '.' && !(i > 0 && isdigit((unsigned char)t[i - 1]) && i + 1 < n && isdigit((unsigned char)t[i + 1]));
}

static int negated(const ans_extractor *x, pcre2_match_data *md, const char *t, size_t n, size_t a, size_t b) {
    size_t s = a;
    while (s > 0 && !is_sentence_end(t, s - 1, n)) s--;
    if (pcre2_match(x->neg_before, (PCRE2_SPTR)(t + s), a - s, 0, 0, md, NULL) >= 0) return 1;
    return pcre2_match(x->neg_after, (PCRE2_SPTR)(t + b), n - b, 0, 0, md, NULL) >= 0;
}

/* 0..n-1: the one choice text that occurs (not negated); -1 none occurs;
 * -2 several occur; -3 the one that occurs is negated. */
static int choice_text(const ans_extractor *x, pcre2_match_data *md, const char *t, const char *const *texts, int nc) {
    const size_t n = strlen(t);
    int cnt = 0, cap = 16;
    occ *o = malloc(sizeof *o * (size_t)cap);
    if (!o) return -1;
    for (int c = 0; c < nc; c++) {
        const char *s = texts[c];
        size_t len = strlen(s);
        while (len && isspace((unsigned char)*s)) s++, len--;
        while (len && (isspace((unsigned char)s[len - 1]) || s[len - 1] == '.')) len--;
        for (long at = find_phrase(t, n, s, len, 0); at >= 0; at = find_phrase(t, n, s, len, (size_t)at + 1)) {
            if (cnt == cap) {
                occ *no = realloc(o, sizeof *o * (size_t)(cap *= 2));
                if (!no) break;
                o = no;
            }
            o[cnt++] = (occ){c, (size_t)at, (size_t)at + len};
        }
    }
    /* an occurrence inside a longer choice's occurrence ("building" in "office
     * building") does not count */
    int chosen = -1, distinct = 0, neg = 0;
    for (int i = 0; i < cnt; i++) {
        int inside = 0;
        for (int j = 0; j < cnt && !inside; j++)
            inside = j != i && o[j].choice != o[i].choice && o[j].a <= o[i].a && o[i].b <= o[j].b &&
                     o[j].b - o[j].a > o[i].b - o[i].a;
        if (inside) continue;
        if (o[i].choice != chosen) {
            if (chosen >= 0) distinct = 2;
            else distinct = 1;
            chosen = chosen >= 0 ? chosen : o[i].choice;
        }
        if (negated(x, md, t, n, o[i].a, o[i].b)) neg = 1;
    }
    free(o);
    if (distinct == 0) return -1;
    if (distinct > 1) return -2;
    return neg ? -3 : chosen;
}

/* 1 if the span writes two or more different labels as list items ("A: crop
 * farmers\nB: oil ..."): the model re-listed the choices instead of picking
 * one, and the first pattern would read that as the first choice. */
static int lists_choices(const ans_extractor *x, pcre2_match_data *md, const char *t, const char *const *labels,
                         int nl) {
    const size_t n = strlen(t);
    int first = -1;
    for (size_t at = 0; at <= n && pcre2_match(x->listed, (PCRE2_SPTR)t, n, at, 0, md, NULL) >= 0;) {
        const PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        /* group 1 or 2, whichever alternative matched */
        const size_t a = ov[2] != PCRE2_UNSET ? ov[2] : ov[4], b = ov[2] != PCRE2_UNSET ? ov[3] : ov[5];
        const int li = label_index(t, n, a, b, labels, nl);
        if (li >= 0 && first >= 0 && li != first) return 1;
        if (li >= 0) first = li;
        at = ov[1] > ov[0] ? ov[1] : ov[0] + 1;
    }
    return 0;
}

static char *concat3(const char *a, const char *b, const char *c) {
    size_t la = strlen(a), lb = strlen(b), lc = strlen(c);
    char *s = malloc(la + lb + lc + 1);
    if (!s) return NULL;
    memcpy(s, a, la);
    memcpy(s + la, b, lb);
    memcpy(s + la + lb, c, lc + 1);
    return s;
}

int ans_choice(const ans_extractor *x, const char *response, const char *span, const char *const *labels,
               const char *const *texts, int n, ans_how *how) {
    ans_how h = {0, "no answer found"};
    int r = -1;
    if (!response) response = "";
    if (!span) span = "";
    pcre2_match_data *md = pcre2_match_data_create(8, NULL);
    /* a span that names several choices answers nothing: read the response
     * as if no span had been generated */
    const int listed = x && md && n > 0 && lists_choices(x, md, span, labels, n);
    if (listed) span = "";
    /* stage 1: the suffix phrase (without its newline) and the span */
    char *s1 = concat3(ANS_SUFFIX + 1, span, "");
    char *s2 = concat3(response, ANS_SUFFIX, span);
    char *s3 = concat3(response, "\n", span);
    if (!x || !md || !s1 || !s2 || !s3 || n <= 0) {
        h.rule = "error";
        goto done;
    }
    if ((r = patterns(x, md, s1, labels, n, 0, &h.rule)) >= 0) {
        h.stage = 1;
        goto done;
    }
    if ((r = patterns(x, md, s2, labels, n, 1, &h.rule)) >= 0) {
        h.stage = 2;
        goto done;
    }
    r = choice_text(x, md, span, texts, n);
    if (r == -1) r = choice_text(x, md, s3, texts, n);
    if (r >= 0) {
        h.stage = 3;
        h.rule = "choice_text";
    } else if (r == -2) {
        h.rule = "several choice texts";
    } else if (r == -3) {
        h.rule = "choice text negated";
    }
    if (r < 0 && listed) h.rule = "span names several choices";
    if (r < 0) r = -1;
done:
    free(s1);
    free(s2);
    free(s3);
    pcre2_match_data_free(md);
    if (how) *how = h;
    return r;
}
