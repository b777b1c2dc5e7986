/* Unit tests for lib/forecast*: known answers (a noiseless seasonal series
 * is reproduced, a straight line is continued), ETS log-likelihoods against
 * values worked out by hand on a four-point series, seasonality detection
 * (24 on hourly data with a daily cycle, 288 and 2016 on 5-minute data with
 * daily and weekly cycles; none on white noise with spikes, the day alone
 * with spikes on a daily cycle), the automatic choice after a daily pattern
 * stops, 95% interval coverage on white noise, the clamp
 * of non-negative forecasts, and the CSV reader's errors, interpolation and
 * gap splitting. Seeded: every run sees the same numbers. */
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

#include "forecast.h"
#include "forecast_csv.h"
#include "forecast_impl.h"

static int run(const double *y, size_t n, double step, size_t h, struct us_fc_output *out)
{
	struct us_fc_input in = { .y = y, .n = n, .step_s = step, .nonnegative = 1 };
	char err[256];

	return us_forecast(&in, h, out, err, sizeof(err));
}

static void test_seasonal_pattern(void **state)
{
	size_t n = 24 * 10, h = 48;
	double *y = malloc(n * sizeof(double));
	struct us_fc_output out;

	for (size_t t = 0; t < n; t++)
		y[t] = 10 + 5 * sin(2 * M_PI * (double)t / 24) + (t % 24 == 3 ? 2 : 0);
	assert_int_equal(run(y, n, 3600, h, &out), 0);
	assert_int_equal(out.nseasons, 1);
	assert_int_equal(out.seasons[0], 24);
	for (size_t j = 0; j < h; j++) {
		double t = (double)(n + j);
		double want = 10 + 5 * sin(2 * M_PI * t / 24) + ((n + j) % 24 == 3 ? 2 : 0);

		assert_true(fabs(out.mean[j] - want) < 0.05);
		assert_true(out.lo95[j] <= out.mean[j] && out.mean[j] <= out.hi95[j]);
	}
	us_fc_output_free(&out);
	free(y);
}

static void test_linear_trend(void **state)
{
	size_t n = 100, h = 20;
	double y[100];
	struct us_fc_input in = { .y = y, .n = n, .no_season = 1 };
	struct us_fc_output out;
	char err[256];

	for (size_t t = 0; t < n; t++)
		y[t] = 5 + 0.5 * (double)t;
	assert_int_equal(us_forecast(&in, h, &out, err, sizeof(err)), 0);
	for (size_t j = 0; j < h; j++)
		assert_true(fabs(out.mean[j] - (5 + 0.5 * (double)(n + j))) < 0.01 * (5 + 0.5 * (n + j)));
	us_fc_output_free(&out);
}

/* y = 1 2 3 2, alpha = 0.5, l0 = 1. One-step forecasts 1, 1, 1.5, 2.25;
 * errors 0, 1, 1.5, -0.25. */
static void test_ets_loglik_by_hand(void **state)
{
	const double y[] = { 1, 2, 3, 2 };
	struct us_ets_spec ann = { US_ETS_A, US_ETS_N, US_ETS_N, 0 };
	struct us_ets_spec mnn = { US_ETS_M, US_ETS_N, US_ETS_N, 0 };
	struct us_ets_par p = { .alpha = 0.5, .l0 = 1 };
	double sse, want;

	/* additive: SSE = 0 + 1 + 2.25 + 0.0625 = 3.3125 */
	want = -0.5 * 4 * (log(2 * M_PI * 3.3125 / 4) + 1);
	assert_true(fabs(us_ets_loglik(y, 4, &ann, &p, &sse) - want) < 1e-12);
	assert_true(fabs(sse - 3.3125) < 1e-12);
	/* multiplicative: relative errors 0, 1, 1, -1/9, minus sum log yhat */
	want = -0.5 * 4 * (log(2 * M_PI * (2 + 1.0 / 81) / 4) + 1) - (log(1.5) + log(2.25));
	assert_true(fabs(us_ets_loglik(y, 4, &mnn, &p, NULL) - want) < 1e-12);
}

static void test_ets_fit_recovers_level(void **state)
{
	gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
	struct us_ets_spec ann = { US_ETS_A, US_ETS_N, US_ETS_N, 0 };
	struct us_ets_model m;
	double y[300], mean[5], sd[5];

	gsl_rng_set(r, 7);
	for (size_t t = 0; t < 300; t++)
		y[t] = 50 + gsl_ran_gaussian(r, 1);
	assert_int_equal(us_ets_fit(y, 300, &ann, &m), 0);
	assert_true(m.par.alpha < 0.3);     /* white noise: little smoothing weight */
	assert_true(fabs(m.sigma - 1) < 0.15);
	assert_int_equal(us_ets_forecast(&m, y, 300, 5, mean, sd), 0);
	assert_true(fabs(mean[0] - 50) < 0.6);
	assert_true(sd[4] >= sd[0]);
	gsl_rng_free(r);
}

static void test_detect_hourly_daily(void **state)
{
	gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
	size_t n = 24 * 28;
	double *y = malloc(n * sizeof(double));
	unsigned s[2];

	gsl_rng_set(r, 1);
	for (size_t t = 0; t < n; t++)
		y[t] = 50 + 10 * sin(2 * M_PI * (double)t / 24) + gsl_ran_gaussian(r, 2);
	assert_int_equal(us_fc_detect_seasons(y, n, 3600, s, 2), 1);
	assert_int_equal(s[0], 24);
	/* without the step: from the periodogram */
	assert_int_equal(us_fc_detect_seasons(y, n, 0, s, 2), 1);
	assert_int_equal(s[0], 24);
	gsl_rng_free(r);
	free(y);
}

static void test_detect_daily_weekly(void **state)
{
	gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
	size_t n = 2016 * 3;
	double *y = malloc(n * sizeof(double));
	unsigned s[2];

	gsl_rng_set(r, 2);
	for (size_t t = 0; t < n; t++)
		y[t] = 100 + 20 * sin(2 * M_PI * (double)(t % 288) / 288) +
		       (t / 288 % 7 >= 5 ? -15 : 5) + gsl_ran_gaussian(r, 3);
	assert_int_equal(us_fc_detect_seasons(y, n, 300, s, 2), 2);
	assert_int_equal(s[0], 288);
	assert_int_equal(s[1], 2016);
	/* white noise has no season */
	for (size_t t = 0; t < n; t++)
		y[t] = 100 + gsl_ran_gaussian(r, 3);
	assert_int_equal(us_fc_detect_seasons(y, n, 300, s, 2), 0);
	gsl_rng_free(r);
	free(y);
}

/* White noise with 1% of spikes of 10 to 100 sd: no season (spikes that
 * happen to fall a day apart are no daily cycle); a clean daily cycle with
 * the same spikes: the day, and only the day. Over 20 seeds. */
static void spiky(gsl_rng *r, double *y, size_t n, double amp)
{
	for (size_t t = 0; t < n; t++)
		y[t] = 100 + amp * sin(2 * M_PI * (double)(t % 288) / 288) + gsl_ran_gaussian(r, 3);
	for (size_t t = 0; t < n; t++)
		if (gsl_rng_uniform(r) < 0.01)
			y[t] += 30 + gsl_ran_exponential(r, 100);
}

static void test_detect_spiky(void **state)
{
	gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
	size_t n = 2016 * 2;
	double *y = malloc(n * sizeof(double));
	unsigned s[2];

	for (unsigned seed = 1; seed <= 20; seed++) {
		gsl_rng_set(r, seed);
		spiky(r, y, n, 0);
		assert_int_equal(us_fc_detect_seasons(y, n, 300, s, 2), 0);
		spiky(r, y, n, 20);
		assert_int_equal(us_fc_detect_seasons(y, n, 300, s, 2), 1);
		assert_int_equal(s[0], 288);
	}
	gsl_rng_free(r);
	free(y);
}

/* Three days of a clean daily sine at 5 minutes: 288 whatever the phase
 * (the biased autocorrelation's slope once hid the peak's shape). */
static void test_detect_three_days(void **state)
{
	size_t n = 3 * 288;
	double *y = malloc(n * sizeof(double));
	unsigned s[2];

	for (unsigned ph = 0; ph < 288; ph += 12) {
		for (size_t t = 0; t < n; t++)
			y[t] = 100 + 60 * sin(2 * M_PI * (double)(t + ph) / 288.0) +
			       3 * sin(1.7 * (double)t) * cos(0.31 * (double)t);
		assert_int_equal(us_fc_detect_seasons(y, n, 300, s, 2), 1);
		assert_int_equal(s[0], 288);
	}
	free(y);
}

/* A daily pattern that stops (six days of a spike every hour, then three
 * flat days, as NAB's ec2_network_in): with the period 288 given, the
 * automatic choice on the next day is no worse than 1.1x the seasonal
 * naive's error (it chose the stale daily profile before). */
static void test_stale_season(void **state)
{
	gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
	size_t n = 10 * 288, o = 9 * 288;
	double *y = malloc(n * sizeof(double)), ae = 0, sn = 0;
	struct us_fc_input in = { .y = y, .n = o, .step_s = 300, .nonnegative = 1,
				  .seasons = { 288 }, .nseasons = 1 };
	struct us_fc_output out;
	char err[256];

	gsl_rng_set(r, 3);
	for (size_t t = 0; t < n; t++)
		y[t] = 200 + gsl_ran_gaussian(r, 10) + (t < 6 * 288 && t % 12 < 2 ? 3000 : 0);
	assert_int_equal(us_forecast(&in, 288, &out, err, sizeof(err)), 0);
	for (size_t j = 0; j < 288; j++) {
		ae += fabs(y[o + j] - out.mean[j]);
		sn += fabs(y[o + j] - y[o + j - 288]);
	}
	assert_true(ae <= 1.1 * sn);
	us_fc_output_free(&out);
	gsl_rng_free(r);
	free(y);
}

static void test_interval_coverage(void **state)
{
	gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
	size_t n = 400, h = 50, in95 = 0, in80 = 0, tot = 0;
	double y[450];

	gsl_rng_set(r, 3);
	for (int rep = 0; rep < 8; rep++) {
		struct us_fc_output out;

		for (size_t t = 0; t < n + h; t++)
			y[t] = 100 + gsl_ran_gaussian(r, 5);
		assert_int_equal(run(y, n, 0, h, &out), 0);
		for (size_t j = 0; j < h; j++, tot++) {
			in95 += y[n + j] >= out.lo95[j] && y[n + j] <= out.hi95[j];
			in80 += y[n + j] >= out.lo80[j] && y[n + j] <= out.hi80[j];
		}
		us_fc_output_free(&out);
	}
	assert_true((double)in95 / tot >= 0.88 && (double)in95 / tot <= 0.995);
	assert_true((double)in80 / tot >= 0.65 && (double)in80 / tot <= 0.93);
	gsl_rng_free(r);
}

static void test_nonnegative(void **state)
{
	size_t n = 200, h = 100;
	double y[200];
	struct us_fc_output out;

	for (size_t t = 0; t < n; t++)
		y[t] = 40 - 0.2 * (double)t + (t % 2 ? 1 : -1);
	assert_int_equal(run(y, n, 0, h, &out), 0);
	for (size_t j = 0; j < h; j++) {
		assert_true(out.mean[j] >= 0 && out.lo80[j] >= 0 && out.lo95[j] >= 0);
		assert_true(out.hi95[j] >= out.mean[j]);
	}
	us_fc_output_free(&out);
}

static void test_bad_input(void **state)
{
	struct us_fc_output out;
	double y[4] = { 1, 2, 3, 4 }, z[20];
	struct us_fc_input in = { .y = y, .n = 4 };
	char err[256];

	assert_int_equal(us_forecast(&in, 10, &out, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "too short"));
	us_fc_output_free(&out);
	for (int i = 0; i < 20; i++)
		z[i] = i == 7 ? NAN : i;
	in.y = z;
	in.n = 20;
	assert_int_equal(us_forecast(&in, 10, &out, err, sizeof(err)), -1);
	us_fc_output_free(&out);
}

static void expect_csv_error(const char *csv, unsigned flags, size_t line, const char *why)
{
	struct us_fc_series s;
	size_t at = 0;
	char err[256];

	assert_int_equal(us_fc_csv_parse(csv, strlen(csv), flags, 0, &s, &at, err, sizeof(err)), -1);
	assert_int_equal(at, line);
	assert_non_null(strstr(err, why));
	assert_null(s.y);
}

static void test_csv_errors(void **state)
{
	expect_csv_error("timestamp,value\n0,1\n300,-2\n600,3\n", 0, 3, "negative");
	expect_csv_error("timestamp,value\n0,1\n300,2\n300,3\n", 0, 4, "duplicate");
	expect_csv_error("timestamp,value\n0,1\n600,2\n300,3\n", 0, 4, "back in time");
	expect_csv_error("timestamp,value\n0,1\n\n300,nan\n", 0, 4, "finite");
	expect_csv_error("0,1\n300,2\n600,x\n", 0, 3, "finite");
	expect_csv_error("timestamp,value\n0,1\n300,2\n99000,3\n99300,4\n", US_FCCSV_GAP_FAIL, 4, "gap");
}

static void test_csv_gaps(void **state)
{
	/* one missing step (interpolated), then a 100-step gap (split) */
	const char *csv = "timestamp,value\n"
			  "2014-02-14 14:30:00,1\n2014-02-14 14:35:00,2\n2014-02-14 14:40:00,3\n"
			  "2014-02-14 14:50:00,4\n"
			  "2014-02-15 00:00:00,10\n2014-02-15 00:05:00,-1\n2014-02-15 00:15:00,13\n"
			  "2014-02-15 00:20:00,14\n";
	struct us_fc_series s;
	size_t line;
	char err[256];

	assert_int_equal(us_fc_csv_parse(csv, strlen(csv), 0, 0, &s, &line, err, sizeof(err)), -1);
	assert_int_equal(line, 7);
	assert_int_equal(us_fc_csv_parse(csv, strlen(csv), US_FCCSV_NEG_OK, 0, &s, &line, err,
					 sizeof(err)), 0);
	assert_int_equal(s.step_us, 300 * 1000000LL);
	assert_int_equal(s.dropped, 4);
	assert_int_equal(s.first_line, 6);
	assert_int_equal(s.n, 5);
	assert_int_equal(s.filled, 1);
	assert_true(fabs(s.y[2] - 6) < 1e-12);      /* between -1 and 13 */
	assert_true(s.datetime);
	us_fc_series_free(&s);
	/* duplicates, when allowed, are averaged */
	csv = "0,1\n300,2\n300,4\n600,5\n";
	assert_int_equal(us_fc_csv_parse(csv, strlen(csv), US_FCCSV_DUP_OK, 0, &s, &line, err,
					 sizeof(err)), 0);
	assert_int_equal(s.n, 3);
	assert_true(fabs(s.y[1] - 3) < 1e-12);
	us_fc_series_free(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_seasonal_pattern),
		cmocka_unit_test(test_linear_trend),
		cmocka_unit_test(test_ets_loglik_by_hand),
		cmocka_unit_test(test_ets_fit_recovers_level),
		cmocka_unit_test(test_detect_hourly_daily),
		cmocka_unit_test(test_detect_daily_weekly),
		cmocka_unit_test(test_detect_spiky),
		cmocka_unit_test(test_detect_three_days),
		cmocka_unit_test(test_stale_season),
		cmocka_unit_test(test_interval_coverage),
		cmocka_unit_test(test_nonnegative),
		cmocka_unit_test(test_bad_input),
		cmocka_unit_test(test_csv_errors),
		cmocka_unit_test(test_csv_gaps),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
