/* The report's statistics (stats.h) against reference values computed with
 * statsmodels 0.14 / scipy (pip install scipy statsmodels; dev only):
 *   proportion_confint(k, n, 0.05, 'wilson')
 *   mcnemar(table, exact=True).pvalue = binomtest(min(b, c), b + c, 0.5).pvalue
 *   multipletests(p, method='holm')
 *   confint_proportions_2indep(a+b, n, a+c, n, method='newcomb'): Newcombe's
 *     paired interval equals his independent one when the table has a*d = b*c
 *     (phi = 0); tables with phi != 0 against his method-10 formula evaluated
 *     separately in Python.
 * and on run files: paired comparisons counted by hand. */
#include <math.h>
#include <stdlib.h>

#include "runfile.h"
#include "runstats.h"
#include "stats.h"
#include "testutil.h"

#define NEAR(a, b) assert_true(fabs((a) - (b)) < 1e-9)

static void test_wilson(void **state) {
    (void)state;
    static const struct {
        int k, n;
        double lo, hi;
    } t[] = {{0, 10, 0.0, 0.277532799863},
             {3, 10, 0.107791267406, 0.603221852539},
             {10, 10, 0.722467200137, 1.0},
             {412, 1172, 0.324726684702, 0.379315048655},
             {1, 1, 0.206549314377, 1.0}};
    for (size_t i = 0; i < sizeof t / sizeof *t; i++) {
        double lo, hi;
        stat_wilson(t[i].k, t[i].n, &lo, &hi);
        NEAR(lo, t[i].lo);
        NEAR(hi, t[i].hi);
    }
    double lo, hi;
    stat_wilson(0, 0, &lo, &hi);
    assert_true(lo == 0 && hi == 1);
}

static void test_sign_test(void **state) {
    (void)state;
    NEAR(stat_sign_test(0, 0), 1.0);
    NEAR(stat_sign_test(5, 0), 0.0625);
    NEAR(stat_sign_test(7, 3), 0.34375);
    NEAR(stat_sign_test(3, 7), 0.34375);
    NEAR(stat_sign_test(40, 55), 0.15051806389);
    NEAR(stat_sign_test(120, 160), 0.0196067272903);
    NEAR(stat_sign_test(1, 12), 0.00341796875);
    NEAR(stat_sign_test(500, 500), 1.0);
    assert_true(stat_sign_test(0, 2000) < 1e-300 || stat_sign_test(0, 2000) == 0); /* no overflow at large n */
}

static void test_holm(void **state) {
    (void)state;
    double p[] = {0.01, 0.04, 0.03, 0.005, 0.5}, want[] = {0.04, 0.09, 0.09, 0.025, 0.5}, adj[5];
    stat_holm(p, 5, adj);
    for (int i = 0; i < 5; i++) NEAR(adj[i], want[i]);
    stat_holm(p, 5, p); /* in place */
    for (int i = 0; i < 5; i++) NEAR(p[i], want[i]);
    double one[] = {0.7};
    stat_holm(one, 1, one);
    NEAR(one[0], 0.7);
}

static void test_paired_diff(void **state) {
    (void)state;
    static const struct {
        int a, b, c, d;
        double lo, hi;
    } t[] = {{4, 6, 2, 3, -0.081309538474, 0.538093991731}, /* phi = 0: statsmodels' newcomb */
             {10, 10, 10, 10, -0.209310297402, 0.209310297402},
             {3, 9, 1, 3, 0.153541485002, 0.709557211203},
             {300, 80, 50, 742, 0.006580984603, 0.044620778373}, /* phi != 0 */
             {30, 12, 3, 55, 0.016123440321, 0.162226828151}};
    for (size_t i = 0; i < sizeof t / sizeof *t; i++) {
        double lo, hi;
        stat_paired_diff(t[i].a, t[i].b, t[i].c, t[i].d, &lo, &hi);
        if (fabs(lo - t[i].lo) > 1e-9 || fabs(hi - t[i].hi) > 1e-9)
            fail_msg("table %d %d %d %d: [%.12f, %.12f], want [%.12f, %.12f]", t[i].a, t[i].b, t[i].c, t[i].d, lo, hi,
                     t[i].lo, t[i].hi);
    }
    /* positive correlation narrows the interval against phi = 0 */
    double lo1, hi1, lo0, hi0;
    stat_paired_diff(300, 80, 50, 742, &lo1, &hi1);
    assert_true(hi1 - lo1 < 0.05);
    stat_paired_diff(0, 0, 0, 0, &lo0, &hi0);
    assert_true(lo0 == -1 && hi0 == 1);
    stat_paired_diff(5, 0, 0, 5, &lo0, &hi0); /* no discordant question: the method gives [0, 0] */
    assert_true(lo0 <= 0 && hi0 >= 0);
    stat_paired_diff(5, 1, 0, 5, &lo0, &hi0);
    assert_true(lo0 < 0 && hi0 > 1.0 / 11);
}

static void test_mean_interval(void **state) {
    (void)state;
    const double x[] = {0, 0.2, 0.4, 1, 1, 0.6};
    double m, lo, hi;
    stat_mean_interval(x, 6, 0, 1, &m, &lo, &hi);
    NEAR(m, 0.5333333333333333);
    /* Student's t with 5 degrees of freedom, not the normal z: six scores */
    NEAR(lo, 0.09979234600179476);
    NEAR(hi, 0.9668743206648719);
    /* an interval past the scores' range is cut back to it */
    const double high[] = {1, 1, 1, 0.8};
    stat_mean_interval(high, 4, 0, 1, &m, &lo, &hi);
    NEAR(m, 0.95);
    assert_true(lo > 0.7 && lo < 0.95);
    NEAR(hi, 1);
    const double low[] = {-1, -1, -0.8};
    stat_mean_interval(low, 3, -1, 1, &m, &lo, &hi);
    NEAR(lo, -1);
    assert_true(hi > m && hi < 0);
    /* one score: nothing known of its spread */
    stat_mean_interval(x + 1, 1, 0, 1, &m, &lo, &hi);
    NEAR(m, 0.2);
    NEAR(lo, 0);
    NEAR(hi, 1);
}

/* Textbook quantiles t(0.975; df); from df 11 on the expansion, within 1e-5 */
static void test_t975(void **state) {
    (void)state;
    const struct { int df; double t; } ref[] = {{1, 12.7062047}, {2, 4.3026527}, {3, 3.1824463}, {5, 2.5705818},
                                                {10, 2.2281389}, {11, 2.2009852}, {20, 2.0859634}, {30, 2.0422725},
                                                {100, 1.9839715}, {1000, 1.9623391}};
    for (size_t i = 0; i < sizeof ref / sizeof *ref; i++) assert_true(fabs(stat_t975(ref[i].df) - ref[i].t) < 1e-5);
    assert_true(stat_t975(1000000) > STAT_Z95 && stat_t975(1000000) < STAT_Z95 + 1e-5);
}

/* A sample line: id, seed (-1 greedy), correct. */
static void add(cJSON *arr, const char *id, int seed, int ok) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", id);
    if (seed < 0) cJSON_AddNullToObject(o, "seed");
    else cJSON_AddNumberToObject(o, "seed", seed);
    cJSON *x = cJSON_AddObjectToObject(o, "extracted");
    cJSON_AddStringToObject(x, "choice", ok < 0 ? "invalid" : "A");
    cJSON_AddBoolToObject(o, "correct", ok > 0);
    cJSON_AddNumberToObject(o, "generated_tokens", 10);
    cJSON_AddNumberToObject(o, "seconds", 1);
    cJSON_AddItemToArray(arr, o);
}

static void test_paired_runs(void **state) {
    (void)state;
    cJSON *a = cJSON_CreateArray(), *b = cJSON_CreateArray();
    /* a: q1 right, q2 right, q3 wrong, q4 no answer, q5 right (b has no q5) */
    add(a, "q1", -1, 1), add(a, "q2", -1, 1), add(a, "q3", -1, 0), add(a, "q4", -1, -1), add(a, "q5", -1, 1);
    add(a, "q1", -1, 1); /* a repeated sample counts once */
    add(b, "q4", -1, 1), add(b, "q3", -1, 0), add(b, "q2", -1, 0), add(b, "q1", -1, 1);
    run_paired p;
    kvs_error err = {0};
    assert_int_equal(run_paired_compute(a, b, &p, &err), 0);
    assert_int_equal(p.n, 4);
    assert_true(p.binary);
    assert_int_equal(p.both, 1);
    assert_int_equal(p.only_a, 1);
    assert_int_equal(p.only_b, 1);
    assert_int_equal(p.neither, 1);
    NEAR(p.diff, 0.0);
    NEAR(p.p, 1.0);
    double lo, hi;
    stat_paired_diff(1, 1, 1, 1, &lo, &hi);
    NEAR(p.lo, lo);
    NEAR(p.hi, hi);
    run_stats st;
    assert_int_equal(run_stats_compute(a, "a", &st, &err), 0);
    assert_int_equal(st.n, 5);
    assert_int_equal(st.answered, 4);
    assert_int_equal(st.n_correct, 3);
    assert_int_equal(st.answered_correct, 3);
    stat_wilson(3, 5, &lo, &hi);
    NEAR(st.acc_lo, lo);
    NEAR(st.acc_hi, hi);
    /* sampling: scores are shares of seeds; the interval is over questions */
    cJSON *s = cJSON_CreateArray(), *t = cJSON_CreateArray();
    for (int seed = 0; seed < 2; seed++) {
        add(s, "q1", seed, 1), add(s, "q2", seed, seed == 0), add(s, "q3", seed, 0);
        add(t, "q1", seed, 0), add(t, "q2", seed, 0), add(t, "q3", seed, 0);
    }
    assert_int_equal(run_paired_compute(s, t, &p, &err), 0);
    assert_int_equal(p.n, 3);
    assert_false(p.binary);
    assert_int_equal(p.better, 2);
    assert_int_equal(p.worse, 0);
    NEAR(p.diff, 0.5);
    NEAR(p.p, 0.5);
    const double d[] = {1, 0.5, 0};
    double m;
    stat_mean_interval(d, 3, -1, 1, &m, &lo, &hi);
    NEAR(p.lo, lo);
    NEAR(p.hi, hi);
    assert_int_equal(run_stats_compute(s, "s", &st, &err), 0);
    stat_mean_interval(d, 3, 0, 1, &m, &lo, &hi);
    NEAR(st.acc[0], 0.5);
    NEAR(st.acc_lo, lo);
    cJSON_Delete(a), cJSON_Delete(b), cJSON_Delete(s), cJSON_Delete(t);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wilson),        cmocka_unit_test(test_sign_test), cmocka_unit_test(test_holm),
        cmocka_unit_test(test_paired_diff),   cmocka_unit_test(test_mean_interval), cmocka_unit_test(test_t975),
        cmocka_unit_test(test_paired_runs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
