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

void stat_mean_interval(const double *x, int n, double *mean, double *lo, double *hi) {
    double m = 0, v = 0;
    for (int i = 0; i < n; i++) m += x[i];
    m = n > 0 ? m / n : 0;
    for (int i = 0; i < n; i++) v += (x[i] - m) * (x[i] - m);
    const double se = n > 1 ? sqrt(v / (n - 1) / n) : 0;
    *mean = m;
    *lo = m - STAT_Z95 * se;
    *hi = m + STAT_Z95 * se;
}
