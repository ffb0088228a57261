/* style.c - reasoning-structure detectors (style.h).  Patterns are PCRE2 in
 * byte mode, like answer.c: generated text may end in a cut UTF-8 sequence, so
 * the one non-ASCII marker (the arrow U+2192) is matched as its UTF-8 bytes. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "style.h"

#include <stdlib.h>
#include <string.h>
#include <pcre2.h>

#include "engine/error.h"

const char *const style_names[STYLE_N] = {"stepwise", "strategy_execution", "causal_chain", "annotated_deduction",
                                          "analogical_reasoning"};

/* Arrows a model may write for the annotated form: U+2192, U+27F6, U+21D2, ASCII. */
#define ARROW "(?:\xe2\x86\x92|\xe2\x9f\xb6|\xe2\x87\x92|->|=>)"
/* Markdown a model wraps labels in ("**Step 1:**", "### Strategy:"). */
#define MD "[*_#]*"

enum { R_STEP, R_STRATEGY, R_SOLUTION, R_IFTHEN, R_ARROW, R_ANALOGY, R_BRACKET_LINE, R_IF_OPENER, N_RE };

static const char *const k_re[N_RE] = {
    /* "Step 2:" / "Step 2." / "Step 2)" - the number distinguishes a label from prose ("a step further") */
    [R_STEP] = "\\bstep\\s*[0-9]{1,3}" MD "\\s*[:.)]",
    [R_STRATEGY] = "\\bstrategy" MD "\\s*:",
    [R_SOLUTION] = "\\b(?:solution|execution)" MD "\\s*:",
    /* one conditional: "if" and "then" inside one sentence */
    [R_IFTHEN] = "\\bif\\b[^.!?\\n]{1,300}?\\bthen\\b",
    /* "[premise] -> [conclusion]" on one line */
    [R_ARROW] = "\\[[^\\[\\]\\n]{1,200}\\]\\s*" ARROW "\\s*\\[[^\\[\\]\\n]{1,200}\\]",
    [R_ANALOGY] = "\\b(?:just\\s+like|just\\s+as|similar\\s+to\\s+how|in\\s+the\\s+same\\s+way\\s+(?:that|as))\\b",
    /* a line opening with a bracketed phrase: the annotated form without its arrows */
    [R_BRACKET_LINE] = "(?m)^[ \\t]*\\[[^\\[\\]\\n]{1,200}\\]",
    /* a sentence that opens with "If": the causal form without its "then" */
    [R_IF_OPENER] = "(?:^|[.!?:]\\s+|\\n\\s*)if\\b",
};

/* The least number of markers that makes a structure (docs/STYLES.md): two
 * numbered steps or two conditionals make a chain, one is incidental; a
 * strategy needs both of its labels; one bracketed arrow or one analogy
 * opener is already specific. */
enum { MIN_STEPS = 2, MIN_IFTHEN = 2, MIN_ARROWS = 1, MIN_ANALOGIES = 1 };

struct style_detector {
    pcre2_code *re[N_RE];
    pcre2_match_data *md;
};

int style_find(const char *name) {
    for (int i = 0; name && i < STYLE_N; i++)
        if (!strcmp(name, style_names[i])) return i;
    return -1;
}

int style_in_name(const char *name) {
    int best = -1;
    for (int i = 0; name && i < STYLE_N; i++)
        if (strstr(name, style_names[i])) best = i;
    return best;
}

void style_free(style_detector *d) {
    if (!d) return;
    for (int i = 0; i < N_RE; i++) pcre2_code_free(d->re[i]);
    pcre2_match_data_free(d->md);
    free(d);
}

style_detector *style_new(kvs_error *err) {
    style_detector *d = calloc(1, sizeof *d);
    if (!d) {
        err_fail(err, KVS_E_NOMEM, "style: out of memory");
        return NULL;
    }
    for (int i = 0; i < N_RE; i++) {
        int ec;
        PCRE2_SIZE eo;
        d->re[i] = pcre2_compile((PCRE2_SPTR)k_re[i], PCRE2_ZERO_TERMINATED, PCRE2_CASELESS, &ec, &eo, NULL);
        if (!d->re[i]) {
            PCRE2_UCHAR msg[160];
            pcre2_get_error_message(ec, msg, sizeof msg);
            err_fail(err, KVS_E_ARG, "style: pattern %d does not compile at %zu: %s", i, (size_t)eo, (const char *)msg);
            style_free(d);
            return NULL;
        }
        (void)pcre2_jit_compile(d->re[i], PCRE2_JIT_COMPLETE);
    }
    if (!(d->md = pcre2_match_data_create(4, NULL))) {
        err_fail(err, KVS_E_NOMEM, "style: out of memory");
        style_free(d);
        return NULL;
    }
    return d;
}

/* Non-overlapping matches of one pattern. */
static int count(const style_detector *d, int which, const char *text, size_t len) {
    int n = 0;
    PCRE2_SIZE at = 0;
    while (at <= len) {
        int rc = pcre2_match(d->re[which], (PCRE2_SPTR)text, len, at, 0, d->md, NULL);
        if (rc < 0) break;
        const PCRE2_SIZE *ov = pcre2_get_ovector_pointer(d->md);
        n++;
        at = ov[1] > ov[0] ? ov[1] : ov[0] + 1;
    }
    return n;
}

unsigned style_detect(const style_detector *d, const char *text, int counts[STYLE_N]) {
    const size_t len = strlen(text);
    int c[STYLE_N];
    c[STYLE_STEPWISE] = count(d, R_STEP, text, len);
    const int strat = count(d, R_STRATEGY, text, len), sol = count(d, R_SOLUTION, text, len);
    c[STYLE_STRATEGY] = strat < sol ? strat : sol; /* label pairs */
    c[STYLE_CAUSAL] = count(d, R_IFTHEN, text, len);
    c[STYLE_ANNOTATED] = count(d, R_ARROW, text, len);
    c[STYLE_ANALOGICAL] = count(d, R_ANALOGY, text, len);
    unsigned bits = 0;
    bits |= (unsigned)(c[STYLE_STEPWISE] >= MIN_STEPS) << STYLE_STEPWISE;
    bits |= (unsigned)(c[STYLE_STRATEGY] >= 1) << STYLE_STRATEGY;
    bits |= (unsigned)(c[STYLE_CAUSAL] >= MIN_IFTHEN) << STYLE_CAUSAL;
    bits |= (unsigned)(c[STYLE_ANNOTATED] >= MIN_ARROWS) << STYLE_ANNOTATED;
    bits |= (unsigned)(c[STYLE_ANALOGICAL] >= MIN_ANALOGIES) << STYLE_ANALOGICAL;
    if (counts) memcpy(counts, c, sizeof c);
    return bits;
}

unsigned style_markers(const style_detector *d, const char *text) {
    const size_t len = strlen(text);
    int c[STYLE_N];
    unsigned bits = style_detect(d, text, c);
    bits |= (unsigned)(c[STYLE_STEPWISE] >= 1) << STYLE_STEPWISE;
    bits |= (unsigned)(count(d, R_STRATEGY, text, len) >= 1) << STYLE_STRATEGY;
    bits |= (unsigned)(c[STYLE_CAUSAL] >= 1 || count(d, R_IF_OPENER, text, len) >= 1) << STYLE_CAUSAL;
    bits |= (unsigned)(count(d, R_BRACKET_LINE, text, len) >= 1) << STYLE_ANNOTATED;
    return bits;
}
