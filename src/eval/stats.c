/* stats.c - intervals and paired tests for reports (stats.h). */
#include "stats.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void stat_wilson(double k, int n, double *lo, double *hi) {
    if (n <= 0) {
        *lo = 0, *hi = 1;
        return;
    }
    const double z = STAT_Z95, p = k / n, z2 = z * z;
    const double centre = (p + z2 / (2.0 * n)) / (1 + z2 / n);
    const double half = z / (1 + z2 / n) * sqrt(p * (1 - p) / n + z2 / (4.0 * n * n));
    *lo = fmax(0.0, centre - half);
    *hi = fmin(1.0, centre + half);
    /* exact at the ends: rounding must not put 0 or 1 outside */
    if (k <= 0) *lo = 0;
    if (k >= n) *hi = 1;
}

double stat_sign_test(int pos, int neg) {
    const int n = pos + neg, k = pos < neg ? pos : neg;
    if (n == 0) return 1.0;
    /* P[X <= k] summed in log space: n reaches a few thousand */
    double tail = 0;
    for (int i = 0; i <= k; i++) tail += exp(lgamma(n + 1.0) - lgamma(i + 1.0) - lgamma(n - i + 1.0) - n * log(2.0));
    const double p = 2 * tail;
    return p > 1 ? 1 : p;
}

void stat_paired_diff(int a, int b, int c, int d, double *lo, double *hi) {
    const int n = a + b + c + d;
    if (n == 0) {
        *lo = -1, *hi = 1;
        return;
    }
    double l1, u1, l2, u2;
    const double p1 = (double)(a + b) / n, p2 = (double)(a + c) / n, t = p1 - p2;
    stat_wilson(a + b, n, &l1, &u1);
    stat_wilson(a + c, n, &l2, &u2);
    const double den = (double)(a + b) * (c + d) * (a + c) * (b + d);
    const double phi = den > 0 ? ((double)a * d - (double)b * c) / sqrt(den) : 0.0;
    const double dl = sqrt(fmax(0.0, (p1 - l1) * (p1 - l1) - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) * (u2 - p2)));
    const double du = sqrt(fmax(0.0, (u1 - p1) * (u1 - p1) - 2 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) * (p2 - l2)));
    *lo = fmax(-1.0, t - dl);
    *hi = fmin(1.0, t + du);
}

typedef struct pi {
    double p;
    int i;
} pi;

static int cmp_pi(const void *x, const void *y) {
    const pi *a = x, *b = y;
    if (a->p != b->p) return a->p < b->p ? -1 : 1;
    return a->i - b->i;
}

void stat_holm(const double *p, int n, double *adj) {
    if (n <= 0) return;
    pi *s = malloc(sizeof *s * (size_t)n);
    if (!s) { /* Bonferroni, never smaller than Holm: still a valid correction */
        for (int i = 0; i < n; i++) adj[i] = fmin(1.0, p[i] * n);
        return;
    }
    for (int i = 0; i < n; i++) s[i] = (pi){p[i], i};
    qsort(s, (size_t)n, sizeof *s, cmp_pi);
    double run = 0;
    for (int r = 0; r < n; r++) {
        const double v = fmin(1.0, (n - r) * s[r].p);
        if (v > run) run = v;
        adj[s[r].i] = run;
    }
    free(s);
}

double stat_t975(int df) {
    /* exact quantiles where the expansion below is off by more than 1e-5 */
    static const double small[] = {12.706204736174698, 4.302652729749464, 3.182446305284263,
                                   2.776445105197793,  2.570581835636314, 2.446911851144969,
                                   2.364624251592785,  2.306004135204166, 2.262157162798205,
                                   2.228138851986274};
    if (df < 1) return INFINITY;
    if (df <= 10) return small[df - 1];
    /* Cornish-Fisher expansion in 1/df around the normal quantile (Abramowitz and
     * Stegun 26.7.5) */
    const double z = STAT_Z95, z2 = z * z, z3 = z2 * z, z5 = z3 * z2, z7 = z5 * z2, z9 = z7 * z2, v = df;
    return z + (z3 + z) / (4 * v) + (5 * z5 + 16 * z3 + 3 * z) / (96 * v * v) +
           (3 * z7 + 19 * z5 + 17 * z3 - 15 * z) / (384 * v * v * v) +
           (79 * z9 + 776 * z7 + 1482 * z5 - 1920 * z3 - 945 * z) / (92160 * v * v * v * v);
}

void stat_mean_interval(const double *x, int n, double min, double max, double *mean, double *lo, double *hi) {
    double m = 0, v = 0;
    for (int i = 0; i < n; i++) m += x[i];
    m = n > 0 ? m / n : 0;
    for (int i = 0; i < n; i++) v += (x[i] - m) * (x[i] - m);
    *mean = m;
    if (n < 2) { /* one score says nothing of its spread */
        *lo = min, *hi = max;
        return;
    }
    const double half = stat_t975(n - 1) * sqrt(v / (n - 1) / n);
    /* the scores are bounded, so an interval past a bound is only cut back to it */
    *lo = fmax(min, m - half);
    *hi = fmin(max, m + half);
}
