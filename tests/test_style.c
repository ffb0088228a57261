/* Reasoning-structure detectors: hand-written positives and near misses, then
 * every detector over the real style traces (traces/styles/arc_*.jsonl, steps
 * joined as the positive few-shot answers are in src/eval/pairs.c), with the 5x5
 * confusion table printed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dataset.h"
#include "style.h"
#include "testutil.h"

/* Each style's own traces must read as that style at least this often, and as
 * any other style at most this often.  With 20 traces per file these allow two
 * misses and two false alarms per cell: room for a teacher that once varies
 * its format, none for a detector that keys on content rather than structure. */
#define OWN_MIN 0.90
#define OTHER_MAX 0.10

static style_detector *D;

static int setup(void **state) {
    (void)state;
    kvs_error err = {0};
    D = style_new(&err);
    if (!D) fprintf(stderr, "%s\n", err.msg);
    return D ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    style_free(D);
    D = NULL;
    return 0;
}

static void expect(const char *text, unsigned want) {
    const unsigned got = style_detect(D, text, NULL);
    if (got != want) fail_msg("[%s]: detected 0x%x, want 0x%x", text, got, want);
}

#define BIT(s) (1u << (s))

static void test_examples(void **state) {
    (void)state;
    expect("", 0);
    expect("The answer is B.", 0);
    /* stepwise: two numbered labels; markdown around them is fine */
    expect("Step 1: Ice is cold. Step 2: Cold slows things. So B.", BIT(STYLE_STEPWISE));
    expect("**Step 1:** look.\n**Step 2.** decide.", BIT(STYLE_STEPWISE));
    expect("Step 1: only one numbered step here.", 0);
    expect("We take it one step further, step by step.", 0);
    /* strategy + execution needs both labels */
    expect("Strategy: compare sizes.\nSolution:\n- the cat is smaller.", BIT(STYLE_STRATEGY));
    expect("**Strategy:** compare.\n**Execution:** done.", BIT(STYLE_STRATEGY));
    expect("Strategy: compare sizes, then pick the smaller one.", 0);
    expect("The solution: add salt.", 0);
    /* causal chain: two conditionals */
    expect("If it rains, then the ground is wet. If the ground is wet, then it is slippery.", BIT(STYLE_CAUSAL));
    expect("If it rains, then the ground is wet.", 0);
    expect("If it rains. Then we go home. If not. Then we stay.", 0); /* "then" in another sentence */
    /* annotated deduction: a bracketed arrow */
    expect("[Rain] \xe2\x86\x92 [Wet ground]\nAnswer: B", BIT(STYLE_ANNOTATED));
    expect("[Rain] -> [Wet ground]", BIT(STYLE_ANNOTATED));
    expect("Rain -> wet ground", 0);
    expect("See [1] and [2].", 0);
    /* analogical */
    expect("Just like a sponge soaks up water, soil holds rain. So C.", BIT(STYLE_ANALOGICAL));
    expect("It is just a guess.", 0);
    /* several at once */
    expect("Step 1: If a, then b. Step 2: If b, then c.", BIT(STYLE_STEPWISE) | BIT(STYLE_CAUSAL));
    /* single markers: not the structure, but its surface */
    assert_int_equal(style_markers(D, "Strategy:\nStrategy:\nStrategy:"), BIT(STYLE_STRATEGY));
    assert_int_equal(style_detect(D, "Strategy:\nStrategy:\nStrategy:", NULL), 0);
    assert_int_equal(style_markers(D, "Step 1: look."), BIT(STYLE_STEPWISE));
    assert_int_equal(style_markers(D, "If it rains, then it is wet."), BIT(STYLE_CAUSAL));
    assert_int_equal(style_markers(D, "Ice melts. If it is warm, water flows."), BIT(STYLE_CAUSAL));
    assert_int_equal(style_markers(D, "It flows if it is warm."), 0);
    assert_int_equal(style_markers(D, "intro\n[D] plants grow.\n"), BIT(STYLE_ANNOTATED));
    assert_int_equal(style_markers(D, "see [D] here"), 0);
    assert_int_equal(style_markers(D, "The solution: add salt."), 0);
    assert_int_equal(style_markers(D, "The answer is B."), 0);
    /* counts */
    int c[STYLE_N];
    style_detect(D, "Step 1: a. Step 2: b. Step 3: c.", c);
    assert_int_equal(c[STYLE_STEPWISE], 3);
    /* names */
    assert_int_equal(style_find("causal_chain"), STYLE_CAUSAL);
    assert_int_equal(style_find("nope"), -1);
    assert_int_equal(style_in_name("arc_annotated_deduction.jsonl"), STYLE_ANNOTATED);
    assert_int_equal(style_in_name("vec.gguf"), -1);
}

static void test_cut_utf8(void **state) {
    (void)state;
    /* a response cut inside the arrow, or holding stray bytes, is no error */
    expect("[Rain] \xe2\x86", 0);
    expect("\xff\xfe Step 1: a \xc3 Step 2: b", BIT(STYLE_STEPWISE));
}

static void print_table(const char *title, int table[STYLE_N][STYLE_N], const int *n) {
    printf("%s\n%-26s", title, "");
    for (int d = 0; d < STYLE_N; d++) printf(" %10.10s", style_names[d]);
    printf("\n");
    for (int s = 0; s < STYLE_N; s++) {
        printf("%-20s (%3d)", style_names[s], n[s]);
        for (int d = 0; d < STYLE_N; d++) printf(" %10.2f", (double)table[s][d] / n[s]);
        printf("\n");
    }
}

static void check_table(const char *what, int table[STYLE_N][STYLE_N], const int *n) {
    for (int s = 0; s < STYLE_N; s++)
        for (int d = 0; d < STYLE_N; d++) {
            const double r = (double)table[s][d] / n[s];
            if (s == d && r < OWN_MIN) fail_msg("%s: %s traces read as their own style only %.2f", what, style_names[s], r);
            if (s != d && r > OTHER_MAX) fail_msg("%s: %s traces read as %s %.2f", what, style_names[s], style_names[d], r);
        }
}

static void test_traces(void **state) {
    (void)state;
    int table[STYLE_N][STYLE_N] = {{0}}, loose[STYLE_N][STYLE_N] = {{0}}, n[STYLE_N] = {0};
    for (int s = 0; s < STYLE_N; s++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/traces/styles/arc_%s.jsonl", tu_data_path(), style_names[s]);
        qa_set set = {0};
        kvs_error err = {0};
        if (qa_load(path, 1, &set, &err)) fail_msg("%s", err.msg);
        assert_true(set.n >= 10);
        for (int i = 0; i < set.n; i++) {
            char *t = qa_join_steps(&set.rows[i]);
            assert_non_null(t);
            const unsigned bits = style_detect(D, t, NULL), mk = style_markers(D, t);
            assert_int_equal(bits & ~mk, 0); /* a structure shown implies its markers */
            for (int d = 0; d < STYLE_N; d++) {
                table[s][d] += (bits >> d) & 1;
                loose[s][d] += (mk >> d) & 1;
            }
            free(t);
        }
        n[s] = set.n;
        qa_free(&set);
    }
    print_table("trace style (rows) x structure detected (share of traces)", table, n);
    print_table("trace style (rows) x markers present (share of traces)", loose, n);
    check_table("structure", table, n);
    check_table("markers", loose, n);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_examples),
        cmocka_unit_test(test_cut_utf8),
        cmocka_unit_test(test_traces),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
