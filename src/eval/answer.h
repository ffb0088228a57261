/* answer.h - reading the answer out of a model's response (evaluation).
 *
 * GSM8K: the last number in the response, and a strict variant (the number
 * after the last "The answer is").  Numbers are normalized: "$1,234.50" ->
 * "1234.5", "18.00" -> "18", "-0" -> "0"; a sentence-final "." is not part of
 * a number.
 *
 * Multiple choice: the response is continued with ANS_SUFFIX and up to 10
 * greedy tokens (the "span").  A span that writes two or more different labels
 * as list items ("A: ...\nB: ...", "b)", "(C)") re-lists the choices and names
 * no answer: it is read as if it were empty.  Then, first match wins:
 *   1. the ordered patterns below on "So the correct choice is" + span (first
 *      occurrence of a pattern that names one of the item's labels);
 *   2. the same patterns on response + ANS_SUFFIX + span (last occurrence);
 *   3. the choice texts: in the span, or if none occurs there in response +
 *      suffix + span, exactly one choice text must occur and no sentence
 *      containing it may negate it;
 *   otherwise the answer is invalid.
 * Patterns (case-insensitive): "the correct choice/option is X", "the correct
 * answer is X", "answer is X", "answer: X", "X:" at the start, "(X)", a bare
 * label at the start ("C", "C.", "C)"), "option/choice X".  X must be one of
 * the item's own labels as a whole token ("A" in "Apple" or "An" is no label;
 * "1" in "12" or "1.5" is no label).  A lower-case letter counts as its label
 * only when delimited: "(b)", "b)", "b:" (else "the answer is a bowl" would
 * read as A).
 *
 * An extractor holds the compiled patterns (compiled once in ans_new); it has
 * no global state and may be used from one thread at a time. */
#ifndef KVS_ANSWER_H
#define KVS_ANSWER_H
#include "kvsteer.h"

/* The text appended after a multiple-choice response before the span. */
#define ANS_SUFFIX "\nSo the correct choice is"

typedef struct ans_extractor ans_extractor;

ans_extractor *ans_new(kvs_error *err);
void ans_free(ans_extractor *x);

/* GSM8K.  Each returns a malloc'd normalized number, or NULL if there is none. */
char *ans_last_number(const ans_extractor *x, const char *text);
char *ans_strict_number(const ans_extractor *x, const char *text);
/* Normalize a number written alone ("1,000", "$5", "18.00"): malloc'd, or NULL
 * if s is not a number. */
char *ans_normalize_number(const char *s);
/* 1 if both are numbers and numerically equal (relative tolerance 1e-9). */
int ans_numbers_equal(const char *a, const char *b);

/* How a choice was found (for the record). */
typedef struct ans_how {
    int stage;        /* 0 invalid, 1 span pattern, 2 response pattern, 3 choice text */
    const char *rule; /* pattern name, "choice_text", or why it is invalid */
} ans_how;

/* Multiple choice: the index of the chosen choice in [0, n), or -1 (invalid).
 * `span` is what the model generated after ANS_SUFFIX (may be NULL or ""). */
int ans_choice(const ans_extractor *x, const char *response, const char *span, const char *const *labels,
               const char *const *texts, int n, ans_how *how);

#endif
