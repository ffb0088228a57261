/* Reference parity of the forward pass on the real model.
 *
 * Two references, both recorded by committed scripts:
 *  - llama.cpp (tools/make_goldens.py): the logits at the last prompt position
 *    for 32 prompts, at the top-40 ids and every 97th id;
 *  - an exact float64 evaluation of the same dequantized weights
 *    (tools/reference_forward.py), at the same ids.
 * Neither reference is bit-comparable with kvsteer: llama.cpp and kvsteer both
 * quantize activations to 8 bits for the integer dot products, and llama.cpp
 * additionally rounds Q, K, V and attention weights to fp16.  So the bounds are:
 *  - kvsteer within EXACT_BOUND of the exact evaluation on every prompt, or
 *    no farther from it than llama.cpp is plus 0.5;
 *  - kvsteer within (llama.cpp's own distance from exact) + EXACT_BOUND of
 *    llama.cpp: whatever separates us from llama.cpp is accounted for by the
 *    two implementations' distances from the exact result;
 *  - the top-1 token identical to llama.cpp's and to the exact one wherever
 *    that reference's own best-vs-second margin exceeds TIE_MARGIN (closer
 *    calls are decided by rounding noise in any implementation).
 * Observed (see the printed table): kvsteer-exact <= 0.8 logits, llama.cpp-exact
 * up to 2.2 on the same prompts. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#define EXACT_BOUND 1.0
#define TIE_MARGIN 0.25

static void test_logits_parity(void **state) {
    (void)state;
    cJSON *g = tu_load_json("tests/golden/smollm2_q4_1.json");
    cJSON *x = tu_load_json("tests/golden/smollm2_q4_1_exact.json");
    const int stride = cJSON_GetObjectItem(g, "logit_stride")->valueint;
    const cJSON *exact = cJSON_GetObjectItem(x, "prompts");
    kvs_ctx_params cp = kvs_ctx_default_params();
    cp.n_ctx = 512;
    kvs_error err = {0};
    int n_checked = 0, top1_ref = 0, top1_ref_n = 0, top1_exact = 0, top1_exact_n = 0, ei = 0;
    double worst_ref = 0, worst_exact = 0, worst_ref_exact = 0;
    printf("%-20s %6s %10s %10s %12s %s\n", "prompt", "tokens", "|us-llama|", "|us-exact|", "|llama-exact|", "top1 us/llama/exact");
    const cJSON *p;
    cJSON_ArrayForEach(p, cJSON_GetObjectItem(g, "prompts")) {
        const cJSON *lg = cJSON_GetObjectItem(p, "logits");
        if (!cJSON_IsObject(lg)) continue;
        const cJSON *ex = cJSON_GetArrayItem(exact, ei++);
        const char *label = cJSON_GetObjectItem(p, "label")->valuestring;
        assert_string_equal(label, cJSON_GetObjectItem(ex, "label")->valuestring);
        const cJSON *ids = cJSON_GetObjectItem(p, "ids");
        const int n = cJSON_GetArraySize(ids);
        kvs_token *t = malloc(sizeof(kvs_token) * n);
        int32_t *pos = malloc(sizeof(int32_t) * n), *sq = calloc(n, sizeof(int32_t));
        for (int i = 0; i < n; i++) {
            t[i] = cJSON_GetArrayItem(ids, i)->valueint;
            pos[i] = i;
        }
        kvs_ctx *c = kvs_ctx_new(tu_model(), &cp, &err);
        assert_non_null(c);
        kvs_batch b = {n, t, pos, sq, NULL};
        assert_int_equal(kvs_decode(c, &b, &err), 0);
        const float *ours = kvs_get_logits(c, n - 1);
        int am = 0;
        for (int i = 1; i < 49152; i++)
            if (ours[i] > ours[am]) am = i;
        double d_ref = 0, d_exact = 0, d_re = 0;
        const cJSON *top = cJSON_GetObjectItem(lg, "top"), *strided = cJSON_GetObjectItem(lg, "strided");
        const cJSON *xtop = cJSON_GetObjectItem(ex, "top"), *xstr = cJSON_GetObjectItem(ex, "strided");
        for (int k = 0; k < cJSON_GetArraySize(top); k++) {
            const cJSON *pair = cJSON_GetArrayItem(top, k);
            const int id = cJSON_GetArrayItem(pair, 0)->valueint;
            const double r = cJSON_GetArrayItem(pair, 1)->valuedouble, e = cJSON_GetArrayItem(xtop, k)->valuedouble;
            d_ref = fmax(d_ref, fabs(ours[id] - r));
            d_exact = fmax(d_exact, fabs(ours[id] - e));
            d_re = fmax(d_re, fabs(r - e));
        }
        for (int k = 0; k < cJSON_GetArraySize(strided); k++) {
            const double r = cJSON_GetArrayItem(strided, k)->valuedouble, e = cJSON_GetArrayItem(xstr, k)->valuedouble;
            d_ref = fmax(d_ref, fabs(ours[k * stride] - r));
            d_exact = fmax(d_exact, fabs(ours[k * stride] - e));
            d_re = fmax(d_re, fabs(r - e));
        }
        const int ref_am = cJSON_GetObjectItem(lg, "argmax")->valueint;
        const double ref_margin = cJSON_GetArrayItem(cJSON_GetArrayItem(top, 0), 1)->valuedouble -
                                  cJSON_GetArrayItem(cJSON_GetArrayItem(top, 1), 1)->valuedouble;
        const int ex_am = cJSON_GetObjectItem(ex, "argmax")->valueint;
        const double ex_margin = cJSON_GetObjectItem(ex, "margin")->valuedouble;
        printf("%-20s %6d %10.3f %10.3f %12.3f %d/%d/%d%s\n", label, n, d_ref, d_exact, d_re, am, ref_am, ex_am,
               am == ref_am && am == ex_am ? "" : "  (near tie)");
        /* Both engines round activations to 8 bits before the quantized products,
         * which alone moves some logits by ~2 (llama.cpp's own distance from the
         * exact values, d_re); kernels that sum each block exactly and scale it,
         * as llama.cpp's do (the AMX set), inherit that distance.  So: within
         * EXACT_BOUND of exact, or no farther from exact than llama.cpp plus 0.5. */
        const double xb = fmax(EXACT_BOUND, d_re + 0.5);
        if (d_exact > xb) fail_msg("%s: %.3f from the exact logits (bound %.3f)", label, d_exact, xb);
        if (d_ref > d_re + EXACT_BOUND)
            fail_msg("%s: %.3f from llama.cpp, more than its own error %.3f + %.1f", label, d_ref, d_re, EXACT_BOUND);
        if (ref_margin > TIE_MARGIN) {
            top1_ref_n++;
            if (am != ref_am) fail_msg("%s: top-1 %d, llama.cpp %d (margin %.3f)", label, am, ref_am, ref_margin);
        }
        if (ex_margin > TIE_MARGIN) {
            top1_exact_n++;
            if (am != ex_am) fail_msg("%s: top-1 %d, exact %d (margin %.3f)", label, am, ex_am, ex_margin);
        }
        top1_ref += am == ref_am;
        top1_exact += am == ex_am;
        worst_ref = fmax(worst_ref, d_ref);
        worst_exact = fmax(worst_exact, d_exact);
        worst_ref_exact = fmax(worst_ref_exact, d_re);
        n_checked++;
        kvs_ctx_free(c);
        free(t), free(pos), free(sq);
    }
    assert_int_equal(n_checked, 32);
    printf("parity: %d prompts; top-1 = llama.cpp on %d/%d (%d/%d clear cases), = exact on %d/%d (%d/%d clear); "
           "max |us-llama| %.3f, max |us-exact| %.3f, max |llama-exact| %.3f\n",
           n_checked, top1_ref, n_checked, top1_ref_n, top1_ref_n, top1_exact, n_checked, top1_exact_n, top1_exact_n,
           worst_ref, worst_exact, worst_ref_exact);
    cJSON_Delete(g);
    cJSON_Delete(x);
}

/* Greedy continuations recorded from llama.cpp, replayed with teacher forcing:
 * at every step the reference's token must be within EXACT_BOUND of our best
 * logit (a disagreement is then a near tie, decided by rounding), and the
 * agreement rate is reported. */
static void test_greedy_continuations(void **state) {
    (void)state;
    cJSON *g = tu_load_json("tests/golden/smollm2_q4_1.json");
    const cJSON *gr;
    kvs_ctx_params cp = kvs_ctx_default_params();
    cp.n_ctx = 512;
    kvs_error err = {0};
    cJSON_ArrayForEach(gr, cJSON_GetObjectItem(g, "greedy")) {
        const cJSON *ids = cJSON_GetObjectItem(gr, "prompt_ids"), *gen = cJSON_GetObjectItem(gr, "generated");
        const int n = cJSON_GetArraySize(ids), m = cJSON_GetArraySize(gen);
        kvs_ctx *c = kvs_ctx_new(tu_model(), &cp, &err);
        int agree = 0, tie_at = -1;
        for (int step = 0; step <= m; step++) {
            /* feed the reference's tokens (teacher forcing), compare our argmax */
            const int cnt = step == 0 ? n : 1;
            kvs_token *t = malloc(sizeof(kvs_token) * cnt);
            int32_t *pos = malloc(sizeof(int32_t) * cnt), *sq = calloc(cnt, sizeof(int32_t));
            for (int i = 0; i < cnt; i++) {
                t[i] = step == 0 ? cJSON_GetArrayItem(ids, i)->valueint : cJSON_GetArrayItem(gen, step - 1)->valueint;
                pos[i] = kvs_seq_len(c, 0) + i;
            }
            kvs_batch b = {cnt, t, pos, sq, NULL};
            assert_int_equal(kvs_decode(c, &b, &err), 0);
            free(t), free(pos), free(sq);
            if (step == m) break;
            const float *l = kvs_get_logits(c, cnt - 1);
            int a = 0, s2 = -1;
            for (int i = 1; i < 49152; i++)
                if (l[i] > l[a]) s2 = a, a = i;
                else if (s2 < 0 || l[i] > l[s2]) s2 = i;
            const int want = cJSON_GetArrayItem(gen, step)->valueint;
            if (a == want) agree++;
            else if (l[a] - l[want] > EXACT_BOUND)
                fail_msg("greedy step %d: we choose %d by %.3f over the reference's %d", step, a, l[a] - l[want], want);
            if (tie_at < 0 && l[a] - l[s2] <= TIE_MARGIN) tie_at = step;
        }
        printf("greedy: %d/%d steps agree with llama.cpp under teacher forcing (first near-tie at step %d)\n", agree, m,
               tie_at);
        kvs_ctx_free(c);
    }
    cJSON_Delete(g);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_logits_parity),
        cmocka_unit_test(test_greedy_continuations),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    tu_release();
    return rc;
}
