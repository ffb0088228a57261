#include "threadctl.h"

#include <stdlib.h>
#include <string.h>

int tc_init(threadctl *tc, int n_max) {
    memset(tc, 0, sizeof *tc);
    tc->n_max = n_max;
    tc->last = -1;
    const char *fixed = getenv("KVS_FIXED_THREADS");
    if (fixed && fixed[0] && strcmp(fixed, "0") != 0) tc->pinned = n_max;
    tc->arms = malloc(sizeof *tc->arms * (size_t)TC_BUCKETS * (size_t)(n_max + 1));
    if (!tc->arms) return -1;
    for (int i = 0; i < TC_BUCKETS; i++) {
        tc->b[i].arm = tc->arms + (size_t)i * (size_t)(n_max + 1);
        for (int n = 0; n <= n_max; n++) tc->b[i].arm[n] = (tc_arm){-1.0, 0.0, 0.0};
    }
    return 0;
}

void tc_free(threadctl *tc) {
    free(tc->arms);
    tc->arms = NULL;
}

int tc_bucket_of(int kind, int rows) {
    int k = 0;
    while (rows > 1 && k < TC_ROW_CLASSES - 1) rows >>= 1, k++;
    return (kind == TC_OUTPUT ? TC_ROW_CLASSES : 0) + k;
}

int tc_best(const tc_bucket *b, int n_max) {
    /* from the top, so that at a tie the larger count stays */
    int best = 0;
    for (int n = n_max; n >= 1; n--)
        if (b->arm[n].rate >= 0 && (!best || b->arm[n].rate < b->arm[best].rate)) best = n;
    return best ? best : b->start >= 1 && b->start <= n_max ? b->start : n_max;
}

void tc_seed(tc_bucket *dst, const tc_bucket *src, int n_max) {
    dst->start = tc_best(src, n_max);
    for (int n = 1; n <= n_max; n++) {
        dst->arm[n].gap = src->arm[n].gap;
        dst->arm[n].due = dst->clock + src->arm[n].gap;
    }
}

int tc_next(threadctl *tc, int bucket) {
    if (tc->pinned) return tc->pinned;
    tc_bucket *b = &tc->b[bucket];
    if (b->clock == 0 && b->win_arm == 0 && tc->last >= 0 && tc->last != bucket) tc_seed(b, &tc->b[tc->last], tc->n_max);
    return tc_choose(b, tc->n_max);
}

void tc_done(threadctl *tc, int bucket, int n, double sec, double work) {
    tc->used_t += sec;
    tc->used_tn += sec * n;
    if (tc->pinned) return;
    tc_bucket *b = &tc->b[bucket];
    tc_record(b, tc->n_max, n, sec, work);
    if (b->win_arm == 0) tc->last = bucket; /* a window closed */
}

int tc_choose(const tc_bucket *b, int n_max) {
    const int best = tc_best(b, n_max);
    /* a probe's window is open: finish it */
    if (b->win_arm >= 1 && b->win_arm <= n_max && b->win_arm != best) return b->win_arm;
    if (b->arm[best].rate < 0) return best;
    /* neighbours for hill-climbing, and both ends for a quick way back */
    const int cand[4] = {best - 1, best + 1, n_max, 1};
    int pick = best;
    for (int i = 0; i < 4; i++) {
        const int n = cand[i];
        if (n < 1 || n > n_max || n == best || b->arm[n].due > b->clock) continue;
        if (pick == best || b->arm[n].due < b->arm[pick].due) pick = n;
    }
    return pick;
}

/* The wait before a window of `work` units is run again at rate `worse` instead
 * of `better`, for such windows to cost at most TC_PROBE_SHARE of the time. */
static double lost_gap(double work, double worse, double better) {
    return worse > better ? (worse - better) * work / TC_PROBE_SHARE : 0;
}

static double clamp_gap(double g) { return g < TC_GAP_MIN_S ? TC_GAP_MIN_S : g > TC_GAP_MAX_S ? TC_GAP_MAX_S : g; }

void tc_record(tc_bucket *b, int n_max, int n, double sec, double work) {
    if (n < 1 || n > n_max || !(work > 0) || !(sec >= 0)) return;
    b->clock += sec;
    if (n != b->win_arm) {
        b->win_arm = n;
        b->win_t = b->win_work = 0;
    }
    b->win_t += sec;
    b->win_work += work;
    if (b->win_t < TC_WINDOW_S) return;
    const double r = b->win_t / b->win_work;
    const int best = tc_best(b, n_max);
    tc_arm *a = &b->arm[n];
    if (n == best && a->rate >= 0) {
        a->rate = 0.5 * (a->rate + r);
    } else {
        a->rate = r; /* a probe: what was known of this count is stale */
        if (n != best) {
            const double rb = b->arm[best].rate;
            if (rb >= 0 && r > rb * (1.0 + TC_MARGIN)) {
                /* worse: wait twice as long as last time, and long enough that
                 * probes like this one cost at most TC_PROBE_SHARE of the time */
                const double g = lost_gap(b->win_work, r, rb);
                a->gap = clamp_gap(2 * a->gap > g ? 2 * a->gap : g);
            } else {
                a->gap = TC_GAP_MIN_S;
            }
            a->due = b->clock + a->gap;
        }
    }
    /* A count that just lost its place is measured again at once: the loss may
     * have been one unlucky window (the first steps of a context run on cold
     * caches and page faults), and a short run would otherwise keep the wrong
     * count for the whole wait.  One window is cheap; if it confirms the loss,
     * the wait before the next try starts from what the loss cost. */
    const int nb = tc_best(b, n_max);
    if (nb != best) {
        b->arm[best].gap = clamp_gap(lost_gap(b->win_work, b->arm[best].rate, b->arm[nb].rate));
        b->arm[best].due = b->clock;
    }
    b->win_arm = 0;
    b->win_t = b->win_work = 0;
}
