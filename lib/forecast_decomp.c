/* Additive multi-seasonal decomposition, MSTL-like (Bandara, Hyndman &
 * Bergmeir 2021) but with phase means instead of loess: for each period in
 * ascending order, the other seasonal components are removed, the trend is a
 * centred moving average over one period, and the seasonal component is the
 * mean per phase of the detrended values, circularly smoothed and centred.
 * Two passes let the periods share out what they have in common (a weekly
 * period also repeats every day).
 *
 * Why phase means: with 14 days of 5-minute data each daily phase has 14
 * samples, enough for a mean; loess across cycles would cost more and do
 * little better. Outliers (NAB is full of spikes) are clipped at 3 robust
 * standard deviations before averaging, so one spike does not print itself
 * into every future day. The robust scale is that of each cycle, not of the
 * whole series: when a series changes regime (NAB's ec2_network_in: a train
 * of spikes every hour for six days, then none), the residuals of the old and
 * new regimes form two clusters, one global MAD spans the gap between them
 * and lets the old spikes through whole, and the profile then grows with
 * every new cycle of the regime that has no spikes. The smoothing across
 * phases grows as samples per phase fall (a weekly period with two weeks of
 * data has two per phase). */
#include "forecast_impl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define PASSES 2
#define CLIP_SD 3.0

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Centred moving average over p points (2xp for even p), the ends held at
 * the first and last full window's value. */
static void moving_average(const double *x, size_t n, unsigned p, double *out)
{
	size_t half = p / 2;
	double s = 0;

	if (n < (size_t)p + 1) {
		double mu = 0;

		for (size_t i = 0; i < n; i++)
			mu += x[i] / (double)n;
		for (size_t i = 0; i < n; i++)
			out[i] = mu;
		return;
	}
	if (p % 2) {
		for (size_t i = 0; i < p; i++)
			s += x[i];
		for (size_t c = half; c + half < n; c++) {
			out[c] = s / p;
			if (c + half + 1 < n)
				s += x[c + half + 1] - x[c - half];
		}
	} else {
		/* 2xp: weights 1/2p at both ends, 1/p inside; window p+1 */
		for (size_t i = 0; i <= p; i++)
			s += x[i];
		for (size_t c = half; c + half < n; c++) {
			out[c] = (s - 0.5 * x[c - half] - 0.5 * x[c + half]) / p;
			if (c + half + 1 < n)
				s += x[c + half + 1] - x[c - half];
		}
	}
	for (size_t i = 0; i < half; i++)
		out[i] = out[half];
	for (size_t i = n - half; i < n; i++)
		out[i] = out[n - half - 1];
}

/* Robust scale of d (1.4826 MAD around the median), in scratch. */
static double robust_sd(const double *d, size_t n, double *scratch, double *med)
{
	memcpy(scratch, d, n * sizeof(*d));
	qsort(scratch, n, sizeof(*scratch), cmp_double);
	*med = scratch[n / 2];
	for (size_t i = 0; i < n; i++)
		scratch[i] = fabs(d[i] - *med);
	qsort(scratch, n, sizeof(*scratch), cmp_double);
	return 1.4826 * scratch[n / 2];
}

/* Clips x to its median +- CLIP_SD robust sd, cycle by cycle (p points
 * each, a partial last cycle joined to the one before; see top). */
static void clip_cycles(double *x, size_t n, unsigned p, double *scratch)
{
	for (size_t a = 0; a < n;) {
		size_t len = n - a >= 2 * (size_t)p ? p : n - a;
		double med, sd = robust_sd(x + a, len, scratch, &med);

		for (size_t t = a; sd > 0 && t < a + len; t++) {
			if (x[t] > med + CLIP_SD * sd)
				x[t] = med + CLIP_SD * sd;
			else if (x[t] < med - CLIP_SD * sd)
				x[t] = med - CLIP_SD * sd;
		}
		a += len;
	}
}

/* Phase means of d for period p, circular smoothing, centred. */
static void phase_profile(const double *d, size_t n, unsigned p, double *prof, double *cnt,
			  double *tmp)
{
	size_t c = n / p, hw = c ? p / (16 * c) : 0;
	double mu = 0;

	for (unsigned k = 0; k < p; k++)
		prof[k] = cnt[k] = 0;
	for (size_t t = 0; t < n; t++) {
		prof[t % p] += d[t];
		cnt[t % p] += 1;
	}
	for (unsigned k = 0; k < p; k++)
		tmp[k] = cnt[k] ? prof[k] / cnt[k] : 0;
	for (unsigned k = 0; k < p; k++) {
		double s = 0;

		for (size_t j = 0; j <= 2 * hw; j++)
			s += tmp[(k + p - hw + j) % p];
		prof[k] = s / (double)(2 * hw + 1);
		mu += prof[k] / p;
	}
	for (unsigned k = 0; k < p; k++)
		prof[k] -= mu;
}

double us_fc_season_at(double *const *prof, const unsigned *seasons, size_t ns, size_t t)
{
	double s = 0;

	for (size_t i = 0; i < ns; i++)
		s += prof[i][t % seasons[i]];
	return s;
}

int us_fc_decompose(const double *y, size_t n, const unsigned *seasons, size_t ns,
		    double **prof, double *adj)
{
	unsigned pmax = 0;
	double *x = NULL, *tr = NULL, *scratch = NULL, *cnt = NULL, *tmp = NULL;
	int rc = -1;

	for (size_t i = 0; i < ns; i++) {
		if (seasons[i] < 2 || n < 2 * (size_t)seasons[i])
			return -1;
		pmax = seasons[i] > pmax ? seasons[i] : pmax;
		memset(prof[i], 0, seasons[i] * sizeof(double));
	}
	x = malloc(n * sizeof(*x));
	tr = malloc(n * sizeof(*tr));
	scratch = malloc(n * sizeof(*scratch));
	cnt = malloc(pmax * sizeof(*cnt));
	tmp = malloc(pmax * sizeof(*tmp));
	if (!x || !tr || !scratch || !cnt || !tmp)
		goto cleanup;
	for (int pass = 0; pass < (ns > 1 ? PASSES : 1); pass++) {
		for (size_t i = 0; i < ns; i++) {
			unsigned p = seasons[i];

			for (size_t t = 0; t < n; t++)
				x[t] = y[t] - us_fc_season_at(prof, seasons, ns, t) + prof[i][t % p];
			moving_average(x, n, p, tr);
			for (size_t t = 0; t < n; t++)
				x[t] -= tr[t];
			clip_cycles(x, n, p, scratch);
			phase_profile(x, n, p, prof[i], cnt, tmp);
		}
	}
	for (size_t t = 0; t < n; t++)
		adj[t] = y[t] - us_fc_season_at(prof, seasons, ns, t);
	rc = 0;
cleanup:
	free(x);
	free(tr);
	free(scratch);
	free(cnt);
	free(tmp);
	return rc;
}
