/* Two-sample statistics for the production/shadow comparison: rank tests
 * with Hodges-Lehmann shifts and distribution-free intervals, bootstrap
 * intervals of quantile ratios, proportions. Pure functions: no I/O, no
 * globals; randomness comes from an explicit seed, so every result is
 * reproducible.
 *
 * Sizes are large (a million samples a side) so nothing here materialises
 * the n*m pairwise differences or the n(n+1)/2 Walsh averages: their order
 * statistics are selected from the sorted inputs by randomised pivoting
 * with O(n + m) counting passes (see stats.c). */
#ifndef US_STATS_H
#define US_STATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hist.h"

/* A location shift with its interval: estimate and [lo, hi]. */
struct us_shift {
	double estimate, lo, hi;
	double z;         /* the test statistic, normal approximation */
	double p_value;   /* two-sided, H0: no shift */
	bool valid;       /* false when a side is empty */
};

/* The two-sided normal quantile z such that P(|Z| <= z) = confidence. */
double us_stats_z(double confidence);
/* Standard normal CDF. */
double us_stats_phi(double z);

/* Sorts v ascending in place (NaN must not occur). */
void us_stats_sort(double *v, size_t n);

/* Mann-Whitney U (normal approximation, tie and continuity corrected) of
 * y against x, plus the Hodges-Lehmann shift median(y_j - x_i) and its
 * distribution-free interval at `confidence`: the order statistics
 * k and nm+1-k of the differences, k = floor(nm/2 - z*sqrt(nm(n+m+1)/12)),
 * as in Kayenta's NetflixACAJudge (R's wilcox.test conf.int). x and y
 * must be sorted ascending. z > 0 when y tends to be larger. */
struct us_shift us_mwu_hl(const double *x, size_t n, const double *y, size_t m,
			  double confidence);

/* Wilcoxon signed-rank test of the paired differences d (any order; it is
 * sorted in place), zeros dropped for the test statistic (tie corrected),
 * and the Hodges-Lehmann estimate median((d_i + d_j)/2, i <= j) with its
 * distribution-free interval over the Walsh averages. */
struct us_shift us_wilcoxon(double *d, size_t n, double confidence);

/* The k-th smallest (1-based) of the pairwise differences y_j - x_i or of
 * the Walsh averages of d; inputs sorted. Exposed for tests. */
double us_stats_diff_kth(const double *x, size_t n, const double *y, size_t m, uint64_t k);
double us_stats_walsh_kth(const double *d, size_t n, uint64_t k);

/* A sample whose order statistics can be read: a sorted array, or a
 * histogram (the value of a rank is its bucket's midpoint, as
 * us_hist_quantile, so within 1.6% of the true value). */
struct us_osample {
	const double *sorted;      /* either this (n values) ... */
	size_t n;
	const struct us_hist *hist; /* ... or this */
	/* for histograms: cumulative counts of the non-empty buckets */
	uint64_t *cum;
	double *mid;
	size_t nb;
};

int us_osample_from_sorted(struct us_osample *s, const double *sorted, size_t n);
int us_osample_from_hist(struct us_osample *s, const struct us_hist *h); /* -1: no memory */
void us_osample_free(struct us_osample *s);
uint64_t us_osample_count(const struct us_osample *s);
/* The p-quantile as an order statistic: X_(ceil(p*n)), at least X_(1). */
double us_osample_quantile(const struct us_osample *s, double p);

/* Ratio shadow/production of the p-quantile with a percentile bootstrap
 * interval from `resamples` (>= 1000) seeded resamples of each side, and
 * the share of resampled ratios at or below `limit` (for the confidence).
 * valid is false when a side is empty or production's quantile is 0. */
struct us_qratio {
	double estimate, lo, hi;
	double share_below_limit;
	bool valid;
};
struct us_qratio us_quantile_ratio(const struct us_osample *prod, const struct us_osample *shadow,
				   double p, double confidence, unsigned resamples, double limit,
				   uint64_t seed);

/* Proportions. Wilson score interval of k/n; Newcombe's hybrid score
 * interval (method 10) of the difference k2/n2 - k1/n1. n = 0 gives
 * [0, 1] and [-1, 1]: no information, no division by zero. */
void us_wilson(uint64_t k, uint64_t n, double confidence, double *lo, double *hi);
void us_newcombe_diff(uint64_t k1, uint64_t n1, uint64_t k2, uint64_t n2, double confidence,
		      double *est, double *lo, double *hi);

/* Exact one-sample tests for the migration guards, which judge a few dozen
 * requests at a step's start.
 * us_quantile_low_rank: the largest r (1-based) such that the order
 * statistic X_(r) of n samples lies at or below the true q-quantile with
 * probability >= confidence, distribution-free: P(Binomial(n, q) <= r-1)
 * <= 1 - confidence (at least 1). For q = 0.99 at 95%: 36 -> 34, 100 -> 97.
 * us_binom_p_at_least: P(X >= k) for X ~ Binomial(n, p), the one-sided
 * p-value of k events in n when the rate is p (1 for k = 0). */
size_t us_quantile_low_rank(size_t n, double q, double confidence);
double us_binom_p_at_least(uint64_t k, uint64_t n, double p);

/* TOST-style probability that the true value is on the good side of limit
 * given an estimate and a two-sided interval [lo, hi] at confidence,
 * read as a normal posterior with a flat prior: Phi((limit - est)/se) for
 * an upper limit (upper = true), Phi((est - limit)/se) for a lower one. */
double us_prob_within(double est, double lo, double hi, double confidence, double limit,
		      bool upper);

#endif
