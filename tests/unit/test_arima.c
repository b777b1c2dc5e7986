/* Unit tests for seasonal ARIMA (lib/forecast_arima): KPSS and the
 * differencing decisions, estimates on simulated AR(1), MA(1) and airline
 * data, order selection, known answers (exact likelihoods of tiny series
 * computed by hand from the covariance matrix, forecast recursions and psi
 * weights in closed form), a noiseless trend, bad input, and the speed of
 * the automatic search on a 4,032-point series with period 288. All data
 * come from a seeded generator, so every run sees the same numbers. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "forecast_arima.h"

static uint64_t rng;

static double uniform(void)
{
	rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
	return ((double)(rng >> 11) + 0.5) / 9007199254740992.0;
}

static double gauss(void)
{
	return sqrt(-2 * log(uniform())) * cos(2 * M_PI * uniform());
}

/* ARMA(1,1) x_t = phi x_{t-1} + e_t + theta e_{t-1}, 200 burn-in steps. */
static void arma11(double *x, size_t n, double phi, double theta, uint64_t seed)
{
	double prev = 0, eprev = 0;

	rng = seed;
	for (size_t i = 0; i < n + 200; i++) {
		double e = gauss(), v = phi * prev + e + theta * eprev;
		prev = v, eprev = e;
		if (i >= 200)
			x[i - 200] = v;
	}
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* ---- unit-root tests -------------------------------------------------------- */

static void test_kpss(void **state)
{
	static double wn[500], rw[500];

	rng = 11;
	for (int i = 0; i < 500; i++) {
		wn[i] = gauss();
		rw[i] = (i ? rw[i - 1] : 0) + gauss();
	}
	double kw = us_arima_kpss(wn, 500), kr = us_arima_kpss(rw, 500);
	printf("# KPSS white noise %.3f, random walk %.3f (5%% critical 0.463)\n", kw, kr);
	assert_true(kw < 0.463);
	assert_true(kr > 1.0);
	assert_int_equal(us_arima_ndiffs(wn, 500), 0);
	assert_int_equal(us_arima_ndiffs(rw, 500), 1);
}

/* KPSS by hand on 1..5 with lag trunc(4 (5/100)^0.25) = 1: e = -2..2,
 * partial sums -2,-3,-3,-2,0 -> eta = 26/25; s^2 = 2 + 2 * 0.5 * 4/5. */
static void test_kpss_known(void **state)
{
	const double y[5] = { 1, 2, 3, 4, 5 };

	assert_true(fabs(us_arima_kpss(y, 5) - (26.0 / 25.0) / 2.8) < 1e-12);
}

/* ---- estimation and selection ---------------------------------------------------- */

static void test_ar1(void **state)
{
	static double x[500];
	struct us_arima_fit f, a;
	char err[128];

	arma11(x, 500, 0.7, 0.0, 1);
	assert_int_equal(us_arima_fit_order(x, 500, 0, 1, 0, 0, 0, 0, 0, 1, &f, err, sizeof err), 0);
	printf("# AR(1): phi %.3f mu %.3f sigma2 %.3f aicc %.2f\n", f.phi[0], f.mu, f.sigma2, f.aicc);
	assert_true(fabs(f.phi[0] - 0.7) < 0.1);
	assert_true(fabs(f.sigma2 - 1.0) < 0.15);
	assert_int_equal(us_arima_auto(x, 500, 0, &a, err, sizeof err), 0);
	printf("# AR(1) auto: %s aicc %.2f\n", a.description, a.aicc);
	assert_int_equal(a.d, 0);
	assert_true(a.p >= 1 && a.p + a.q <= 3);
	assert_true(a.aicc <= f.aicc + 1e-6);   /* the search found (1,0,0) or better */
	us_arima_free(&f);
	us_arima_free(&a);
}

static void test_ma1(void **state)
{
	static double x[500];
	struct us_arima_fit f, a;
	char err[128];

	arma11(x, 500, 0.0, 0.5, 2);
	assert_int_equal(us_arima_fit_order(x, 500, 0, 0, 0, 1, 0, 0, 0, 0, &f, err, sizeof err), 0);
	printf("# MA(1): theta %.3f sigma2 %.3f\n", f.theta[0], f.sigma2);
	assert_true(fabs(f.theta[0] - 0.5) < 0.1);
	assert_int_equal(us_arima_auto(x, 500, 0, &a, err, sizeof err), 0);
	printf("# MA(1) auto: %s\n", a.description);
	assert_int_equal(a.d, 0);
	assert_true(a.q >= 1 || a.p >= 2);
	us_arima_free(&f);
	us_arima_free(&a);
}

static void test_random_walk(void **state)
{
	static double x[300];
	struct us_arima_fit a;
	char err[128];

	rng = 3;
	for (int i = 0; i < 300; i++)
		x[i] = (i ? x[i - 1] : 100) + gauss();
	assert_int_equal(us_arima_auto(x, 300, 0, &a, err, sizeof err), 0);
	printf("# random walk auto: %s\n", a.description);
	assert_int_equal(a.d, 1);
	assert_true(a.p + a.q <= 2);
	us_arima_free(&a);
}

/* (1-B)(1-B^12) y_t = (1 - 0.4 B)(1 - 0.6 B^12) e_t, plus a fixed seasonal
 * shape so the first years are already seasonal. */
static void airline(double *y, size_t n, uint64_t seed)
{
	double e[400] = { 0 }, w[400];

	rng = seed;
	for (size_t t = 0; t < n; t++) {
		e[t] = gauss();
		w[t] = e[t] - 0.4 * (t >= 1 ? e[t - 1] : 0) - 0.6 * (t >= 12 ? e[t - 12] : 0) +
		       0.24 * (t >= 13 ? e[t - 13] : 0);
		/* integrate: y_t = w_t + y_{t-1} + y_{t-12} - y_{t-13} */
		y[t] = w[t] + 10 * sin(2 * M_PI * (double)t / 12) + (t >= 1 ? y[t - 1] : 0) +
		       (t >= 12 ? y[t - 12] : 0) - (t >= 13 ? y[t - 13] : 0);
		if (t >= 1)
			y[t] -= 10 * sin(2 * M_PI * (double)(t - 1) / 12);
		if (t >= 12)
			y[t] -= 10 * sin(2 * M_PI * (double)(t - 12) / 12);
		if (t >= 13)
			y[t] += 10 * sin(2 * M_PI * (double)(t - 13) / 12);
	}
}

static void test_airline(void **state)
{
	static double y[240];
	struct us_arima_fit f, a;
	double mean[24], se[24];
	char err[160];

	airline(y, 240, 4);
	printf("# airline: seasonal strength %.3f\n", us_arima_seasonal_strength(y, 240, 12));
	assert_int_equal(us_arima_nsdiffs(y, 240, 12), 1);
	assert_int_equal(us_arima_fit_order(y, 240, 12, 0, 1, 1, 0, 1, 1, 0, &f, err, sizeof err), 0);
	printf("# airline fit: %s theta %.3f Theta %.3f sigma2 %.3f\n", f.description, f.theta[0],
	       f.Theta[0], f.sigma2);
	assert_string_equal(f.description, "ARIMA(0,1,1)(0,1,1)[12]");
	assert_true(fabs(f.theta[0] + 0.4) < 0.15);
	assert_true(fabs(f.Theta[0] + 0.6) < 0.2);
	assert_int_equal(us_arima_auto(y, 240, 12, &a, err, sizeof err), 0);
	printf("# airline auto: %s aicc %.2f (airline %.2f)\n", a.description, a.aicc, f.aicc);
	assert_int_equal(a.D, 1);
	assert_true(a.d + a.D == 2 || a.p >= 1);      /* either differenced or an AR(1)-like term */
	assert_true(a.Q >= 1 || a.P >= 1);
	assert_true(a.aicc < f.aicc + 10);
	assert_int_equal(us_arima_forecast(&a, 24, mean, se), 0);
	/* the forecast keeps the seasonal shape: the peak and trough months of
	 * the last year stay peak and trough */
	for (int j = 0; j < 24; j++)
		assert_true(isfinite(mean[j]) && se[j] > 0 && (j == 0 || se[j] >= se[j - 1] - 1e-9));
	assert_true(mean[3 - 240 % 12 + 12] > mean[9 - 240 % 12 + 12]);
	us_arima_free(&f);
	us_arima_free(&a);
}

static void test_linear_trend(void **state)
{
	double y[60], mean[10], se[10];
	struct us_arima_fit a;
	char err[128];

	for (int i = 0; i < 60; i++)
		y[i] = 3.7 + 1.3 * i;
	assert_int_equal(us_arima_auto(y, 60, 0, &a, err, sizeof err), 0);
	printf("# trend: %s mu %.6f\n", a.description, a.mu);
	assert_int_equal(a.d, 1);
	assert_true(a.constant);
	assert_string_equal(a.description, "ARIMA(0,1,0) with drift");
	assert_int_equal(us_arima_forecast(&a, 10, mean, se), 0);
	for (int j = 0; j < 10; j++) {
		assert_true(fabs(mean[j] - (3.7 + 1.3 * (60 + j))) < 1e-8);
		assert_true(se[j] < 1e-8);
	}
	us_arima_free(&a);
}

/* ---- known answers ------------------------------------------------------------------ */

/* Gaussian log-likelihood of x under covariance G (n x n), by Cholesky. */
static double gauss_loglik(const double *x, double *G, int n)
{
	double z[16], ll = -0.5 * n * log(2 * M_PI);

	for (int j = 0; j < n; j++) {
		for (int k = 0; k < j; k++)
			G[j * n + j] -= G[j * n + k] * G[j * n + k];
		G[j * n + j] = sqrt(G[j * n + j]);
		for (int i = j + 1; i < n; i++) {
			for (int k = 0; k < j; k++)
				G[i * n + j] -= G[i * n + k] * G[j * n + k];
			G[i * n + j] /= G[j * n + j];
		}
	}
	for (int i = 0; i < n; i++) {
		z[i] = x[i];
		for (int k = 0; k < i; k++)
			z[i] -= G[i * n + k] * z[k];
		z[i] /= G[i * n + i];
		ll -= log(G[i * n + i]) + 0.5 * z[i] * z[i];
	}
	return ll;
}

static void test_loglik_known(void **state)
{
	const double y[6] = { 1.0, -0.5, 0.3, 0.8, -1.2, 0.4 };
	double G[36], x[6], hand, s = 0;
	struct us_arima_fit f;
	char err[128];

	/* AR(1), phi 0.6, mean 0.2, sigma2 1.3: gamma_k = s2 phi^k / (1 - phi^2) */
	memset(&f, 0, sizeof f);
	f.p = 1, f.phi[0] = 0.6, f.mu = 0.2, f.constant = 1, f.sigma2 = 1.3;
	for (int i = 0; i < 6; i++) {
		x[i] = y[i] - 0.2;
		for (int j = 0; j < 6; j++)
			G[i * 6 + j] = 1.3 * pow(0.6, abs(i - j)) / (1 - 0.36);
	}
	hand = gauss_loglik(x, G, 6);
	printf("# AR(1) loglik: kalman %.12f hand %.12f\n", us_arima_loglik(&f, y, 6), hand);
	assert_true(fabs(us_arima_loglik(&f, y, 6) - hand) < 1e-10);

	/* MA(1), theta 0.4, sigma2 2: gamma_0 = s2 (1 + theta^2), gamma_1 = s2 theta */
	memset(&f, 0, sizeof f);
	f.q = 1, f.theta[0] = 0.4, f.sigma2 = 2.0;
	for (int i = 0; i < 36; i++)
		G[i] = 0;
	for (int i = 0; i < 6; i++) {
		G[i * 6 + i] = 2.0 * 1.16;
		if (i)
			G[i * 6 + i - 1] = G[(i - 1) * 6 + i] = 0.8;
	}
	hand = gauss_loglik(y, G, 6);
	assert_true(fabs(us_arima_loglik(&f, y, 6) - hand) < 1e-10);

	/* ARIMA(1,1,0) on y = its AR(1) likelihood on diff(y) */
	double cum[7] = { 5 };
	for (int i = 0; i < 6; i++)
		cum[i + 1] = cum[i] + y[i];
	memset(&f, 0, sizeof f);
	f.p = 1, f.d = 1, f.phi[0] = -0.3, f.sigma2 = 0.7;
	for (int i = 0; i < 6; i++)
		for (int j = 0; j < 6; j++)
			G[i * 6 + j] = 0.7 * pow(-0.3, abs(i - j)) / (1 - 0.09);
	hand = gauss_loglik(y, G, 6);
	assert_true(fabs(us_arima_loglik(&f, cum, 7) - hand) < 1e-10);

	/* The ML fit of a zero-mean AR(1) maximises the exact likelihood:
	 * sigma2 = S(phi) / n with S = (1-phi^2) y_1^2 + sum (y_t - phi y_{t-1})^2,
	 * and nudging phi lowers the hand-computed likelihood. */
	assert_int_equal(us_arima_fit_order(y, 6, 0, 1, 0, 0, 0, 0, 0, 0, &f, err, sizeof err), 0);
	double ph = f.phi[0];
	s = (1 - ph * ph) * y[0] * y[0];
	for (int i = 1; i < 6; i++)
		s += (y[i] - ph * y[i - 1]) * (y[i] - ph * y[i - 1]);
	printf("# tiny AR(1) ML: phi %.6f sigma2 %.6f S/n %.6f loglik %.6f\n", ph, f.sigma2, s / 6,
	       f.loglik);
	assert_true(fabs(f.sigma2 - s / 6) < 1e-9);
	assert_true(fabs(f.loglik - us_arima_loglik(&f, y, 6)) < 1e-9);
	struct us_arima_fit g = f;
	for (int k = -1; k <= 1; k += 2) {
		g.phi[0] = ph + k * 0.01;
		assert_true(us_arima_loglik(&g, y, 6) < f.loglik);
	}
	/* AICc with k = 2 parameters on 6 points: -2 ll + 4 + 12 / 3 */
	assert_true(fabs(f.aicc - (-2 * f.loglik + 4 + 4)) < 1e-9);
	us_arima_free(&f);
}

/* Closed forms: AR(1) forecasts decay geometrically to the mean with
 * se_h^2 = s2 (1 - phi^2h) / (1 - phi^2); ARIMA(0,1,1) forecasts are flat
 * with se_h^2 = s2 (1 + (h-1)(1+theta)^2). */
static void test_forecast_known(void **state)
{
	static double x[300];
	double mean[12], se[12];
	struct us_arima_fit f;
	char err[128];

	arma11(x, 300, 0.5, 0.0, 5);
	for (int i = 0; i < 300; i++)
		x[i] += 10;
	assert_int_equal(us_arima_fit_order(x, 300, 0, 1, 0, 0, 0, 0, 0, 1, &f, err, sizeof err), 0);
	assert_int_equal(us_arima_forecast(&f, 12, mean, se), 0);
	for (int h = 1; h <= 12; h++) {
		double ph = f.phi[0];
		assert_true(fabs(mean[h - 1] - (f.mu + pow(ph, h) * (x[299] - f.mu))) < 1e-9);
		assert_true(fabs(se[h - 1] - sqrt(f.sigma2 * (1 - pow(ph, 2 * h)) / (1 - ph * ph))) <
			    1e-9);
	}
	us_arima_free(&f);

	for (int i = 1; i < 300; i++)
		x[i] = x[i - 1] + x[i] - 10;
	assert_int_equal(us_arima_fit_order(x, 300, 0, 0, 1, 1, 0, 0, 0, 0, &f, err, sizeof err), 0);
	assert_int_equal(us_arima_forecast(&f, 12, mean, se), 0);
	double th = f.theta[0], last = x[299] + th * f.resid[299];
	for (int h = 1; h <= 12; h++) {
		assert_true(fabs(mean[h - 1] - last) < 1e-9);
		assert_true(fabs(se[h - 1] - sqrt(f.sigma2 * (1 + (h - 1) * (1 + th) * (1 + th)))) <
			    1e-9);
	}
	us_arima_free(&f);
}

/* ---- errors and limits -------------------------------------------------------------- */

static void test_bad_input(void **state)
{
	double y[40];
	struct us_arima_fit f;
	char err[160];

	for (int i = 0; i < 40; i++)
		y[i] = sin(i);
	assert_int_equal(us_arima_auto(y, 5, 0, &f, err, sizeof err), -1);
	assert_non_null(strstr(err, "too short"));
	assert_null(f.y);
	y[17] = NAN;
	assert_int_equal(us_arima_auto(y, 40, 0, &f, err, sizeof err), -1);
	assert_non_null(strstr(err, "index 17"));
	y[17] = INFINITY;
	assert_int_equal(us_arima_fit_order(y, 40, 0, 1, 0, 0, 0, 0, 0, 0, &f, err, sizeof err), -1);
	assert_non_null(strstr(err, "index 17"));
	y[17] = 0;
	assert_int_equal(us_arima_fit_order(y, 40, 0, 9, 0, 0, 0, 0, 0, 0, &f, err, sizeof err), -1);
	assert_non_null(strstr(err, "out of range"));
	assert_int_equal(us_arima_fit_order(y, 40, 288, 0, 0, 0, 1, 0, 0, 0, &f, err, sizeof err), -1);
	assert_non_null(strstr(err, "seasonally adjusted"));
	/* more parameters than the data support */
	assert_int_equal(us_arima_fit_order(y, 8, 0, 3, 0, 3, 0, 0, 0, 1, &f, err, sizeof err), -1);
	assert_non_null(strstr(err, "too few"));
}

/* 14 days of 5-minute data with a daily cycle: the period is refused, and
 * the non-seasonal search on the series must stay within the budget. */
static void test_long_period_speed(void **state)
{
	static double y[4032], ya[4032];
	struct us_arima_fit a;
	char err[160];
	double best = 1e9;

	arma11(ya, 4032, 0.6, 0.3, 3);
	for (int i = 0; i < 4032; i++)
		y[i] = 100 + 20 * sin(2 * M_PI * i / 288.0) + 3 * ya[i];
	for (int rep = 0; rep < 3; rep++) {
		double t0 = now();
		assert_int_equal(us_arima_auto(ya, 4032, 288, &a, err, sizeof err), 0);
		best = fmin(best, now() - t0);
		assert_non_null(strstr(a.note, "refused"));
		assert_string_equal(err, a.note);
		assert_int_equal(a.P + a.D + a.Q, 0);
		if (rep < 2)
			us_arima_free(&a);
	}
	printf("# 4032 points, period 288 (adjusted series): %s in %.1f ms\n", a.description,
	       best * 1e3);
	us_arima_free(&a);
	/* seed 6: KPSS (0.646) over-differences the same process, so every
	 * candidate's ML fit runs into an MA unit root: the slow case */
	arma11(ya, 4032, 0.6, 0.3, 6);
	double t0 = now();
	assert_int_equal(us_arima_auto(ya, 4032, 288, &a, err, sizeof err), 0);
	printf("# 4032 points, over-differenced: %s in %.1f ms\n", a.description,
	       (now() - t0) * 1e3);
	us_arima_free(&a);
	t0 = now();
	assert_int_equal(us_arima_auto(y, 4032, 288, &a, err, sizeof err), 0);
	printf("# 4032 points, period 288 (raw series): %s in %.1f ms\n", a.description,
	       (now() - t0) * 1e3);
	us_arima_free(&a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kpss),
		cmocka_unit_test(test_kpss_known),
		cmocka_unit_test(test_ar1),
		cmocka_unit_test(test_ma1),
		cmocka_unit_test(test_random_walk),
		cmocka_unit_test(test_airline),
		cmocka_unit_test(test_linear_trend),
		cmocka_unit_test(test_loglik_known),
		cmocka_unit_test(test_forecast_known),
		cmocka_unit_test(test_bad_input),
		cmocka_unit_test(test_long_period_speed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
