/* Unit tests for lib/stats: the pairwise order-statistic selection against
 * brute force (differences and Walsh averages, with ties), Mann-Whitney and
 * Wilcoxon against values computed by hand / by R, the Hodges-Lehmann
 * intervals against brute-force order statistics, Wilson and Newcombe
 * against published values, the Beta-order-statistic bootstrap against a
 * naive resampling bootstrap, the guards' exact tests (the quantile's lower
 * confidence rank: values and simulated coverage; the binomial tail against
 * closed forms), and the degenerate inputs (n = 0, constant, all ties).
 * Seeded: every run sees the same numbers. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "stats.h"

static int cmpd(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Small integers: plenty of ties among values and among differences. */
static void fill_ints(gsl_rng *r, double *v, size_t n, unsigned range)
{
	for (size_t i = 0; i < n; i++)
		v[i] = (double)gsl_rng_uniform_int(r, range) - range / 3.0;
	qsort(v, n, sizeof(*v), cmpd);
}

static void test_diff_kth_brute(void **state)
{
	gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);

	for (int trial = 0; trial < 40; trial++) {
		size_t n = 1 + gsl_rng_uniform_int(r, 30), m = 1 + gsl_rng_uniform_int(r, 30);
		double x[30], y[30], all[900];
		size_t c = 0;

		fill_ints(r, x, n, trial % 2 ? 5 : 1000);
		fill_ints(r, y, m, trial % 2 ? 5 : 1000);
		for (size_t j = 0; j < m; j++)
			for (size_t i = 0; i < n; i++)
				all[c++] = y[j] - x[i];
		qsort(all, c, sizeof(*all), cmpd);
		for (size_t k = 1; k <= c; k++)
			assert_true(us_stats_diff_kth(x, n, y, m, k) == all[k - 1]);
	}
	gsl_rng_free(r);
}

static void test_walsh_kth_brute(void **state)
{
	gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);

	for (int trial = 0; trial < 40; trial++) {
		size_t n = 1 + gsl_rng_uniform_int(r, 40), c = 0;
		double d[40], all[820];

		fill_ints(r, d, n, trial % 2 ? 4 : 1000);
		for (size_t i = 0; i < n; i++)
			for (size_t j = i; j < n; j++)
				all[c++] = (d[i] + d[j]) * 0.5;
		qsort(all, c, sizeof(*all), cmpd);
		for (size_t k = 1; k <= c; k++)
			assert_true(us_stats_walsh_kth(d, n, k) == all[k - 1]);
	}
	gsl_rng_free(r);
}

/* Large enough that selection pivots (more candidates than n + m). */
static void test_diff_kth_large(void **state)
{
	gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
	size_t n = 700, m = 500, c = 0;
	double *x = malloc(n * sizeof(*x)), *y = malloc(m * sizeof(*y));
	double *all = malloc(n * m * sizeof(*all));

	for (size_t i = 0; i < n; i++)
		x[i] = gsl_ran_lognormal(r, 0, 1);
	for (size_t j = 0; j < m; j++)
		y[j] = floor(gsl_ran_lognormal(r, 0, 1) * 4) / 4; /* ties */
	qsort(x, n, sizeof(*x), cmpd);
	qsort(y, m, sizeof(*y), cmpd);
	for (size_t j = 0; j < m; j++)
		for (size_t i = 0; i < n; i++)
			all[c++] = y[j] - x[i];
	qsort(all, c, sizeof(*all), cmpd);
	for (size_t k = 1; k <= c; k += 9973)
		assert_true(us_stats_diff_kth(x, n, y, m, k) == all[k - 1]);
	assert_true(us_stats_diff_kth(x, n, y, m, c) == all[c - 1]);
	free(all);
	free(x);
	free(y);
	gsl_rng_free(r);
}

/* R: wilcox.test(1:5, 6:10, exact = FALSE, correct = TRUE, conf.int = TRUE)
 * W = 0, p-value = 0.01219; shift y - x: estimate 5. */
static void test_mwu_known(void **state)
{
	double x[] = { 1, 2, 3, 4, 5 }, y[] = { 6, 7, 8, 9, 10 };
	struct us_shift s = us_mwu_hl(x, 5, y, 5, 0.95);

	assert_true(s.valid);
	assert_true(fabs(s.p_value - 0.01219) < 5e-5);
	assert_true(s.z > 0);
	assert_true(s.estimate == 5.0);
	/* differences 1..9 (1, 2, 3, 4, 5, 4, 3, 2, 1 times);
	 * k = floor(12.5 - 1.96*sqrt(25*11/12)) = 3: D(3) = 2, D(23) = 8 */
	assert_true(s.lo == 2.0 && s.hi == 8.0);
}

/* HL estimate and interval equal brute-force order statistics. */
static void test_hl_brute(void **state)
{
	gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
	double x[25], y[20], all[500];
	size_t c = 0;

	gsl_rng_set(r, 7);
	for (int i = 0; i < 25; i++)
		x[i] = gsl_ran_gaussian(r, 1);
	for (int j = 0; j < 20; j++)
		y[j] = gsl_ran_gaussian(r, 1) + 0.7;
	qsort(x, 25, sizeof(*x), cmpd);
	qsort(y, 20, sizeof(*y), cmpd);
	for (int j = 0; j < 20; j++)
		for (int i = 0; i < 25; i++)
			all[c++] = y[j] - x[i];
	qsort(all, c, sizeof(*all), cmpd);

	struct us_shift s = us_mwu_hl(x, 25, y, 20, 0.98);
	int k = (int)floor(250.0 - us_stats_z(0.98) * sqrt(500.0 * 46.0 / 12.0));

	assert_true(fabs(s.estimate - (all[249] + all[250]) / 2) < 1e-12);
	assert_true(s.lo == all[k - 1]);
	assert_true(s.hi == all[500 - k]);
	assert_true(s.lo < s.estimate && s.estimate < s.hi);
	gsl_rng_free(r);
}

/* Wilcoxon signed rank against a brute-force rank computation, and the
 * Walsh-average HL against brute force. */
static void test_wilcoxon_brute(void **state)
{
	double d[] = { 1.5, -0.5, 2, 3, 0, 2.5, -1, 4, 2, -0.5, 1, 0.5 };
	size_t n = sizeof(d) / sizeof(d[0]), nz = 0, c = 0;
	double tplus = 0, ties = 0, walsh[78], copy[12];

	for (size_t i = 0; i < n; i++) {
		double below = 0, equal = 0;

		if (d[i] == 0)
			continue;
		nz++;
		for (size_t j = 0; j < n; j++) {
			if (d[j] == 0)
				continue;
			below += fabs(d[j]) < fabs(d[i]);
			equal += fabs(d[j]) == fabs(d[i]);
		}
		if (d[i] > 0)
			tplus += below + (equal + 1) / 2;
		ties += (equal * equal * equal - equal) / equal; /* each group counted t times */
	}
	double mu = nz * (nz + 1) / 4.0;
	double var = nz * (nz + 1) * (2 * nz + 1) / 24.0 - ties / 48.0;
	double z = (tplus - mu - 0.5) / sqrt(var);

	memcpy(copy, d, sizeof(d));
	struct us_shift s = us_wilcoxon(copy, n, 0.9);

	assert_true(fabs(s.z - z) < 1e-12);
	for (size_t i = 0; i < n; i++)
		for (size_t j = i; j < n; j++)
			walsh[c++] = (d[i] + d[j]) / 2;
	qsort(walsh, c, sizeof(*walsh), cmpd);
	assert_true(s.estimate == (walsh[38] + walsh[39]) / 2);
	int k = (int)floor(39.0 - us_stats_z(0.9) * sqrt(12.0 * 13 * 25 / 24));

	assert_true(s.lo == walsh[k - 1] && s.hi == walsh[78 - k]);
}

static void test_degenerate(void **state)
{
	double c5[] = { 3, 3, 3, 3, 3 }, c4[] = { 3, 3, 3, 3 }, z[6] = { 0 };
	struct us_shift s = us_mwu_hl(c5, 5, c4, 4, 0.98);

	assert_true(s.valid && s.p_value == 1.0 && s.z == 0.0);
	assert_true(s.estimate == 0 && s.lo == 0 && s.hi == 0);
	s = us_mwu_hl(c5, 0, c4, 4, 0.98);
	assert_false(s.valid);
	s = us_wilcoxon(z, 6, 0.98); /* all differences zero */
	assert_true(s.valid && s.p_value == 1.0 && s.estimate == 0 && s.lo == 0 && s.hi == 0);
	s = us_wilcoxon(z, 0, 0.98);
	assert_false(s.valid);
	s = us_wilcoxon(z, 1, 0.98);
	assert_true(s.valid && isfinite(s.z));
}

/* Wilson (95%): 0/10 -> [0, 0.2775]; Newcombe (1998) method 10:
 * 56/70 - 48/80 = 0.2, 95% CI [0.0524, 0.3339]. */
static void test_proportions(void **state)
{
	double lo, hi, est;

	us_wilson(0, 10, 0.95, &lo, &hi);
	assert_true(lo == 0 && fabs(hi - 0.2775) < 1e-4);
	us_wilson(0, 0, 0.95, &lo, &hi);
	assert_true(lo == 0 && hi == 1);
	us_newcombe_diff(48, 80, 56, 70, 0.95, &est, &lo, &hi);
	assert_true(fabs(est - 0.2) < 1e-12);
	assert_true(fabs(lo - 0.0524) < 1e-4 && fabs(hi - 0.3339) < 1e-4);
	us_newcombe_diff(0, 0, 1, 10, 0.95, &est, &lo, &hi);
	assert_true(est == 0 && lo == -1 && hi == 1);
	us_newcombe_diff(0, 100, 0, 100, 0.95, &est, &lo, &hi);
	assert_true(est == 0 && lo < 0 && hi > 0);
}

/* The Beta shortcut is a bootstrap: its interval matches naive resampling
 * (2000 resamples of 300 values) to within Monte Carlo error. */
static void test_bootstrap_matches_naive(void **state)
{
	gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
	enum { N = 300, B = 2000 };
	double x[N], y[N], rx[N], ry[N], *ratios = malloc(B * sizeof(double));
	struct us_osample sx, sy;

	for (int i = 0; i < N; i++) {
		x[i] = gsl_ran_lognormal(r, 0, 0.5);
		y[i] = gsl_ran_lognormal(r, 0, 0.5);
	}
	qsort(x, N, sizeof(*x), cmpd);
	qsort(y, N, sizeof(*y), cmpd);
	for (int b = 0; b < B; b++) {
		for (int i = 0; i < N; i++) {
			rx[i] = x[gsl_rng_uniform_int(r, N)];
			ry[i] = y[gsl_rng_uniform_int(r, N)];
		}
		qsort(rx, N, sizeof(*rx), cmpd);
		qsort(ry, N, sizeof(*ry), cmpd);
		ratios[b] = ry[(int)ceil(0.9 * N) - 1] / rx[(int)ceil(0.9 * N) - 1];
	}
	qsort(ratios, B, sizeof(*ratios), cmpd);
	us_osample_from_sorted(&sx, x, N);
	us_osample_from_sorted(&sy, y, N);
	struct us_qratio q = us_quantile_ratio(&sx, &sy, 0.9, 0.9, B, 1.1, 42);

	assert_true(q.valid);
	assert_true(fabs(q.estimate - y[269] / x[269]) < 1e-12);
	assert_true(fabs(q.lo - ratios[100]) < 0.03);
	assert_true(fabs(q.hi - ratios[1899]) < 0.03);
	/* seeded: the same seed gives the same interval */
	struct us_qratio q2 = us_quantile_ratio(&sx, &sy, 0.9, 0.9, B, 1.1, 42);

	assert_true(q.lo == q2.lo && q.hi == q2.hi);
	free(ratios);
	gsl_rng_free(r);
}

/* Histograms: the quantile of the histogram sample equals us_hist_quantile
 * (bucket midpoint); a zero production quantile is not a ratio. */
static void test_hist_osample(void **state)
{
	struct us_hist *hp = calloc(1, sizeof(*hp)), *hs = calloc(1, sizeof(*hs));
	struct us_osample sp, ss;

	for (uint64_t v = 1000; v < 200000; v += 37) {
		us_hist_record(hp, v);
		us_hist_record(hs, v + v / 10);
	}
	assert_int_equal(us_osample_from_hist(&sp, hp), 0);
	assert_int_equal(us_osample_from_hist(&ss, hs), 0);
	assert_true(us_osample_quantile(&sp, 0.99) == us_hist_quantile(hp, 0.99));
	struct us_qratio q = us_quantile_ratio(&sp, &ss, 0.99, 0.98, 1000, 1.2, 1);

	assert_true(q.valid && fabs(q.estimate - 1.1) < 0.04);
	us_osample_free(&sp);
	us_osample_free(&ss);
	us_hist_reset(hp);
	us_hist_record_n(hp, 0, 500);
	assert_int_equal(us_osample_from_hist(&sp, hp), 0);
	assert_int_equal(us_osample_from_hist(&ss, hs), 0);
	q = us_quantile_ratio(&sp, &ss, 0.5, 0.98, 1000, 1.2, 1);
	assert_false(q.valid);
	us_osample_free(&sp);
	us_osample_free(&ss);
	free(hp);
	free(hs);
}

/* The rank of the p99's lower 95% bound: known values, and over 4,000
 * seeded samples of 50 uniforms the bound lies above the true p99 (0.99)
 * in at most 5% of them (exactly: P(Binomial(50, 0.99) <= 47) = 1.4%),
 * where the point estimate X_(50) does in 39.5%. */
static void test_quantile_low_rank(void **state)
{
	gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
	double v[50];
	int above_bound = 0, above_estimate = 0;
	size_t k;

	assert_int_equal(us_quantile_low_rank(1, 0.99, 0.95), 1);
	assert_int_equal(us_quantile_low_rank(20, 0.99, 0.95), 19);
	assert_int_equal(us_quantile_low_rank(36, 0.99, 0.95), 34);
	assert_int_equal(us_quantile_low_rank(100, 0.99, 0.95), 97);
	assert_int_equal(us_quantile_low_rank(1000, 0.99, 0.95), 985);
	assert_int_equal(us_quantile_low_rank(1000, 0.5, 0.95), 474);
	k = us_quantile_low_rank(50, 0.99, 0.95);
	assert_int_equal(k, 48);
	gsl_rng_set(r, 11);
	for (int t = 0; t < 4000; t++) {
		for (size_t i = 0; i < 50; i++)
			v[i] = gsl_rng_uniform(r);
		qsort(v, 50, sizeof(double), cmpd);
		above_bound += v[k - 1] > 0.99;
		above_estimate += v[49] > 0.99;
	}
	gsl_rng_free(r);
	assert_true(above_bound <= 200);                /* 5% */
	assert_true(above_bound >= 20);                 /* ~56 expected: not 0 by construction */
	assert_true(above_estimate >= 1400);            /* ~1,580 expected */
}

static void test_binom_p_at_least(void **state)
{
	assert_true(us_binom_p_at_least(0, 100, 0.001) == 1.0);
	assert_true(us_binom_p_at_least(101, 100, 0.5) == 0.0);
	/* 1 - 0.999^100, and minus 100 x 0.001 x 0.999^99 */
	assert_true(fabs(us_binom_p_at_least(1, 100, 0.001) - (1 - pow(0.999, 100))) < 1e-12);
	assert_true(fabs(us_binom_p_at_least(2, 100, 0.001) -
			 (1 - pow(0.999, 100) - 100 * 0.001 * pow(0.999, 99))) < 1e-12);
	assert_true(fabs(us_binom_p_at_least(10, 10, 0.5) - pow(0.5, 10)) < 1e-15);
	/* one 5xx in 100 requests does not show a rate above 0.1% at 95%; two do */
	assert_true(us_binom_p_at_least(1, 100, 0.001) > 0.05);
	assert_true(us_binom_p_at_least(2, 100, 0.001) < 0.05);
}

static void test_sort(void **state)
{
	gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
	size_t n = 100000;
	double *a = malloc(n * sizeof(*a)), *b = malloc(n * sizeof(*b));

	for (size_t i = 0; i < n; i++)
		a[i] = b[i] = i % 7 ? gsl_ran_gaussian(r, 1e3) : (double)(i % 13) - 6;
	us_stats_sort(a, n);
	qsort(b, n, sizeof(*b), cmpd);
	assert_memory_equal(a, b, n * sizeof(*a));
	free(a);
	free(b);
	gsl_rng_free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_diff_kth_brute),
		cmocka_unit_test(test_walsh_kth_brute),
		cmocka_unit_test(test_diff_kth_large),
		cmocka_unit_test(test_mwu_known),
		cmocka_unit_test(test_hl_brute),
		cmocka_unit_test(test_wilcoxon_brute),
		cmocka_unit_test(test_degenerate),
		cmocka_unit_test(test_proportions),
		cmocka_unit_test(test_bootstrap_matches_naive),
		cmocka_unit_test(test_hist_osample),
		cmocka_unit_test(test_quantile_low_rank),
		cmocka_unit_test(test_binom_p_at_least),
		cmocka_unit_test(test_sort),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
