/* Answer extraction (no model): GSM8K numbers, multiple-choice patterns,
 * label traps, choice texts, negation and ties, on hand-written responses. */
#include <stdlib.h>
#include <string.h>

#include "answer.h"
#include "testutil.h"

static ans_extractor *X;

static int setup(void **state) {
    (void)state;
    kvs_error err = {0};
    X = ans_new(&err);
    return X ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    ans_free(X);
    X = NULL;
    return 0;
}

/* ------------------------------------------------------------------ GSM8K */

static void check_num(const char *what, char *got, const char *want, const char *text) {
    if (!want && !got) return;
    if (!want || !got || strcmp(got, want))
        fail_msg("%s of [%s]: got %s, want %s", what, text, got ? got : "(none)", want ? want : "(none)");
    free(got);
}

static void last(const char *text, const char *want) { check_num("last number", ans_last_number(X, text), want, text); }
static void strict(const char *text, const char *want) { check_num("strict", ans_strict_number(X, text), want, text); }

static void test_last_number(void **state) {
    (void)state;
    last("She makes 9 * 2 = $18 every day.", "18");
    last("The total is 1,234 dollars", "1234");
    last("So she pays $1,234.50.", "1234.5");
    last("The price is 18.00", "18");
    last("He made a profit of $70,000.", "70000");
    last("He has 1,000,000 dollars now", "1000000");
    last("The temperature drops to -5 degrees.", "-5");
    last("Then 10 - 15 = -5", "-5");
    last("10-5=5", "5");        /* a minus between operands is no sign */
    last("He sold 8-3 of them", "3");
    last("No numbers in here at all.", NULL);
    last("", NULL);
    last("1,2,3", "3");         /* not a thousands group */
    last("It takes 3.5 hours", "3.5");
    last("0.50 of it", "0.5");
    last("Total: 000", "0");
    last("-0", "0");
    last("The value is 007.", "7");
    last("Use item7 please", NULL); /* digits glued to a word */
    last("It is the 5th day.", "5");
    last("First 3 apples, then 4 pears, so 7 fruits in total.", "7");
    last("The answer is 18. Check: 3 + 4 = 7", "7");
    last("It costs -$3 per unit", "-3");
    last("Answer: 42.\n", "42");
    last("a 20% rise", "20");
    last("pay $ 5", "5");
}

static void test_strict_number(void **state) {
    (void)state;
    strict("So the answer is 18.", "18");
    strict("The answer is: $1,200", "1200");
    strict("The answer is **42**", "42");
    strict("The final answer is 7", "7");
    strict("The answer is 5. Wait, no. The answer is 6.", "6");
    strict("The answer is 12. Then the answer is clear: 5", NULL); /* the last phrase has no number */
    strict("The answer is -3.", "-3");
    strict("THE ANSWER IS 18.00", "18");
    strict("It is 18.", NULL);
    strict("The answer is 18. Check: 3 + 4 = 7", "18");
    strict("The answers is 4", NULL);
    strict("", NULL);
}

static void test_numbers(void **state) {
    (void)state;
    assert_true(ans_numbers_equal("18", "18.0"));
    assert_true(ans_numbers_equal("1,000", "1000"));
    assert_true(ans_numbers_equal("$5", "5"));
    assert_true(ans_numbers_equal("-5", "-5"));
    assert_true(ans_numbers_equal("0.5", ".5") == 0); /* ".5" is not a number here */
    assert_false(ans_numbers_equal("18", "19"));
    assert_false(ans_numbers_equal("5", "-5"));
    assert_false(ans_numbers_equal(NULL, "1"));
    assert_false(ans_numbers_equal("abc", "abc"));
    char *s = ans_normalize_number(" $1,000.50. ");
    assert_string_equal(s, "1000.5");
    free(s);
    assert_null(ans_normalize_number("abc"));
    assert_null(ans_normalize_number("1.2.3"));
    assert_null(ans_normalize_number("-"));
    assert_null(ans_normalize_number("."));
    assert_null(ans_normalize_number(""));
}

/* ------------------------------------------------------------------ choices */

static const char *ABCD[] = {"A", "B", "C", "D"};
static const char *ARC_T[] = {"heat their homes with wood", "wash vegetables before cooking",
                              "drive gasoline-powered automobiles", "grow flowers in the community garden"};
static const char *NUM4[] = {"1", "2", "3", "4"};
static const char *NUM4_T[] = {"a prism", "a lens", "a mirror", "a filter"};
static const char *AB[] = {"A", "B"};
static const char *PIQA_T[] = {"Pour the water into a glass jar.", "Pour the water into a paper bag."};
static const char *CSQA_L[] = {"A", "B", "C", "D", "E"};
static const char *CSQA_T[] = {"building", "office building", "hotel", "school", "home"};

#define MC4(resp, span, want, stage) mc(resp, span, ABCD, ARC_T, 4, want, stage)

static void mc(const char *resp, const char *span, const char *const *labels, const char *const *texts, int n,
               int want, int stage) {
    ans_how h;
    int got = ans_choice(X, resp, span, labels, texts, n, &h);
    if (got != want || (stage >= 0 && h.stage != stage))
        fail_msg("response [%s] span [%s]: got %d (stage %d, %s), want %d (stage %d)", resp, span, got, h.stage,
                 h.rule, want, stage);
}

static void test_span_patterns(void **state) {
    (void)state;
    MC4("", " C", 2, 1);
    MC4("", " C: drive gasoline-powered automobiles", 2, 1);
    MC4("", " (B) wash vegetables before cooking", 1, 1);
    MC4("", " option D.", 3, 1);
    MC4("", ": **A**", 0, 1);
    MC4("", " \"D\"", 3, 1);
    MC4("", " b) wash vegetables", 1, 1);       /* delimited lower case */
    MC4("", " B.\n\nExplanation: ...", 1, 1);
    MC4("", " C, because gasoline is nonrenewable", 2, 1);
    MC4("", " D and not A", 3, 1);
    MC4("A is wrong. The answer is B.", " C", 2, 1); /* the span wins over the response */
    /* the span names no label; later patterns in the span */
    MC4("", " the one marked (D).", 3, 1);
    MC4("", " the last one, option D", 3, 1);
    MC4("", " - the answer is A", 0, 1);
}

static void test_label_traps(void **state) {
    (void)state;
    /* "An", "Apple", lower-case articles: not labels */
    MC4("", " An apple", -1, 0);
    MC4("", " a good one", -1, 0);
    MC4("An easy question. Apples are red.", " all of them", -1, 0);
    MC4("The answer is a bowl of soup.", "", -1, 0);
    MC4("", " Apple", -1, 0);
    MC4("", " E", -1, 0);                 /* not one of this item's labels */
    MC4("", " E. The answer is B", 1, 1); /* the next occurrence names a label */
    MC4("", " AB", -1, 0);
    /* PIQA: "A" as an article at the start of the response */
    mc("A bowl is needed here", " to", AB, PIQA_T, 2, -1, 0);
    mc("", " A", AB, PIQA_T, 2, 0, 1);
    mc("", " B: Pour the water into a paper bag.", AB, PIQA_T, 2, 1, 1);
    mc("", " a) pour it", AB, PIQA_T, 2, 0, 1);
    /* labels 1-4 */
    mc("", " 3", NUM4, NUM4_T, 4, 2, 1);
    mc("", " (4) a filter", NUM4, NUM4_T, 4, 3, 1);
    mc("", " 12 of them", NUM4, NUM4_T, 4, -1, 0);
    mc("", " 1.5 times", NUM4, NUM4_T, 4, -1, 0);
    mc("", " 5", NUM4, NUM4_T, 4, -1, 0);
    mc("", " C", NUM4, NUM4_T, 4, -1, 0); /* letters are not labels of this item */
    mc("1. First, light bends.\n2. Then", " that", NUM4, NUM4_T, 4, -1, 0); /* a numbered list */
    mc("The answer is 2.", " that", NUM4, NUM4_T, 4, 1, 2);
    mc("2", "", NUM4, NUM4_T, 4, 1, 2);
    mc("", " 1,000 times", NUM4, NUM4_T, 4, -1, 0);
    /* labels A-C (a three-choice ARC row) */
    static const char *ABC[] = {"A", "B", "C"};
    mc("", " D", ABC, ARC_T, 3, -1, 0);
    mc("", " C", ABC, ARC_T, 3, 2, 1);
}

static void test_response_patterns(void **state) {
    (void)state;
    MC4("The correct answer is B because washing...", " that one", 1, 2);
    MC4("Let's see.\nA: heat\nB: wash\nThe answer is D.", " that", 3, 2);
    MC4("Answer: C", " the", 2, 2);
    MC4("C: drive gasoline-powered automobiles", "", 2, 2);
    MC4("B", "", 1, 2);
    MC4("B. Because washing vegetables uses water.", "", 1, 2);
    MC4("**D**\n", " the", 3, 2);
    MC4("I think (C) fits best.", " the", 2, 2);
    MC4("(C)", "", 2, 2);
    MC4("The correct choice is A. Wait, the correct choice is C.", " the", 2, 2); /* last one */
    MC4("The answer is A. Actually the correct answer is D.", " the", 3, 2);   /* order of patterns */
    MC4("The answer would be B.", " the", 1, 2);
    MC4("THE CORRECT CHOICE IS D", " the", 3, 2);
    MC4("the correct answer is: (a)", " the", 0, 2);
    /* LaTeX: boxed and wrapped labels (Qwen2.5's habit), in the span and the response */
    MC4("", " \\boxed{C}.", 2, 1);
    MC4("", " $\\boxed{\\text{D}}$", 3, 1);
    MC4("", " \\textbf{B}: wash vegetables", 1, 1);
    MC4("Therefore, the correct answer is \\boxed{D}.", " the", 3, 2);
    MC4("So the answer is $\\mathbf{A}$.", " the", 0, 2);
    MC4("Wood burns.\n\n\\boxed{B}", " the", 1, 2);
    MC4("\\boxed{A} is wrong, the answer is \\boxed{C}", " the", 2, 2); /* a phrase first */
    MC4("The answer is \\frac{1}{2}.", " the", -1, 0);                   /* not a label */
    /* enumerations are no answer */
    MC4("(A) is about wood and (B) is about vegetables.", " the", -1, 0);
    MC4("Option A is about wood; option B is about washing.", " the", -1, 0);
}

static void test_choice_texts(void **state) {
    (void)state;
    MC4("", " to drive gasoline-powered automobiles.", 2, 3);
    MC4("", " that they Drive Gasoline-Powered Automobiles", 2, 3); /* case-insensitive */
    MC4("People drive gasoline-powered automobiles.", " the second", 2, 3);
    MC4("They heat their homes with wood, which burns.", " the", 0, 3);
    /* negations */
    MC4("", " not to heat their homes with wood", -1, 0);
    MC4("They do not heat their homes with wood.", " the", -1, 0);
    MC4("It isn't that they grow flowers in the community garden.", " the", -1, 0);
    MC4("It is incorrect that they wash vegetables before cooking.", " the", -1, 0);
    MC4("Grow flowers in the community garden is wrong.", " the", -1, 0);
    MC4("No. They grow flowers in the community garden.", " the", 3, 3); /* another sentence */
    MC4("That is not all. They drive gasoline-powered automobiles.", " the", 2, 3);
    /* ties */
    MC4("They heat their homes with wood or drive gasoline-powered automobiles.", " the", -1, 0);
    MC4("", " heat their homes with wood and drive gasoline-powered automobiles", -1, 0);
    /* the span decides before the response */
    MC4("They heat their homes with wood or drive gasoline-powered automobiles.", " to drive gasoline-powered automobiles",
        2, 3);
    /* a choice inside a longer choice */
    mc("It is an office building.", " the", CSQA_L, CSQA_T, 5, 1, 3);
    mc("It is a building downtown.", " the", CSQA_L, CSQA_T, 5, 0, 3);
    mc("It is an office building next to a hotel.", " the", CSQA_L, CSQA_T, 5, -1, 0);
    /* whole words only */
    mc("He did his homework.", " the", CSQA_L, CSQA_T, 5, -1, 0);
    mc("He went home.", " the", CSQA_L, CSQA_T, 5, 4, 3);
    mc("Not a hotel.", " the", CSQA_L, CSQA_T, 5, -1, 0);
    /* PIQA: the trailing full stop of a choice text is optional */
    mc("You should pour the water into a glass jar so it stays", " the", AB, PIQA_T, 2, 0, 3);
    /* nothing at all */
    MC4("", "", -1, 0);
    MC4("I do not know.", " unclear", -1, 0);
}

/* A span that re-lists the choices names no answer (it would otherwise read as
 * the first listed choice); the response may still hold one. */
static void test_span_lists_choices(void **state) {
    (void)state;
    ans_how h;
    MC4("", ":\nA: heat their homes with wood\nB: wash vegetables", -1, 0);
    assert_int_equal(ans_choice(X, "", ":\nA: heat\nB: wash", ABCD, ARC_T, 4, &h), -1);
    assert_string_equal(h.rule, "span names several choices");
    MC4("", " (A) heat their homes or (C) drive", -1, 0);
    MC4("", " a) heat b) wash", -1, 0);
    mc("", ":\n1: a prism\n2: a lens", NUM4, NUM4_T, 4, -1, 0);
    mc("", ":\nA: crop\nB: oil", CSQA_L, CSQA_T, 5, -1, 0);
    /* the same label twice is one choice, not a list */
    MC4("", " C: drive. C: drive", 2, 1);
    /* one list item and a label named otherwise: still one answer */
    MC4("", " D: grow flowers, not A", 3, 1);
    /* the response decides when the span only re-lists */
    MC4("The answer is D.", ":\nA: heat\nB: wash", 3, 2);
    MC4("They drive gasoline-powered automobiles.", ":\nA: heat\nB: wash", 2, 3);
    /* labels that are not this item's do not make a list */
    MC4("", " B: wash. E: none", 1, 1);
}

static void test_bytes_and_nulls(void **state) {
    (void)state;
    /* a cut UTF-8 sequence and odd bytes do not break matching */
    MC4("caf\xc3", " C \xe2\x80", 2, 1);
    MC4("\xe2\x80 caf\xc3", " the", -1, 0);
    MC4(NULL, NULL, -1, 0);
    char *s = ans_last_number(X, "\xff\xfe 12 \xc3");
    assert_string_equal(s, "12");
    free(s);
    assert_null(ans_last_number(X, NULL));
    ans_how h;
    assert_int_equal(ans_choice(X, "x", "y", ABCD, ARC_T, 0, &h), -1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_last_number),     cmocka_unit_test(test_strict_number),
        cmocka_unit_test(test_numbers),         cmocka_unit_test(test_span_patterns),
        cmocka_unit_test(test_label_traps),     cmocka_unit_test(test_response_patterns),
        cmocka_unit_test(test_choice_texts),    cmocka_unit_test(test_span_lists_choices),
        cmocka_unit_test(test_bytes_and_nulls),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
