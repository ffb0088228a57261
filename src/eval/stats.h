/* stats.h - the statistics behind `kvsteer report`: 95% intervals for an
 * accuracy and for a paired difference of two accuracies on the same
 * questions, exact paired tests, and Holm's correction for a table of them.
 *
 *   Wilson score interval of a proportion (Wilson 1927).
 *   Paired difference of two proportions (2x2 table of the same questions):
 *   Newcombe's hybrid score interval, his method 10 (Newcombe 1998, Stat Med
 *   17:2635), built from the two Wilson intervals and the phi correlation.
 *   Exact McNemar test = two-sided sign test on the discordant pairs:
 *   p = min(1, 2 P[X <= min(b, c)]), X ~ Binomial(b + c, 1/2).
 *   Holm's step-down adjustment of m p-values (Holm 1979).
 *   Mean of per-question scores (sampling: the share of seeds right): the
 *   Student interval mean +- t(n-1) sd / sqrt(n), cut back to the scores'
 *   range (a few questions of an unfinished run can reach past 100%). */
#ifndef KVS_STATS_H
#define KVS_STATS_H

/* z of a two-sided 95% interval */
#define STAT_Z95 1.959963984540054

/* k successes of n: [lo, hi]; n = 0 gives [0, 1]. */
void stat_wilson(double k, int n, double *lo, double *hi);
/* Two-sided exact sign test of `pos` against `neg` (ties left out); 1 when both are 0. */
double stat_sign_test(int pos, int neg);
/* Paired table of n = a + b + c + d questions: a both right, b only the first
 * right, c only the second right, d both wrong.  Interval of p1 - p2 =
 * (b - c) / n, p1 = (a + b) / n, p2 = (a + c) / n. */
void stat_paired_diff(int a, int b, int c, int d, double *lo, double *hi);
/* Holm-adjusted p-values of p[0..n-1] into adj (may be p). */
void stat_holm(const double *p, int n, double *adj);
/* The 0.975 quantile of Student's t with df degrees of freedom (df >= 1). */
double stat_t975(int df);
/* Interval of the mean of x[0..n-1], each in [min, max] (sample standard
 * deviation); fewer than two values give [min, max]. */
void stat_mean_interval(const double *x, int n, double min, double max, double *mean, double *lo, double *hi);

#endif
