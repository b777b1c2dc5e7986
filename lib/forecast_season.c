/* Automatic detection of seasonal periods.
 *
 * Candidates are the calendar periods the step allows (an hour, a day and a
 * week, when each is a whole number of steps) and the periods of the
 * periodogram's strongest peaks (gsl_fft, zero-padded to a power of two)
 * that pass Fisher's g test at 1%. A candidate is accepted, in ascending
 * order, when the autocorrelation of the linearly detrended series - after
 * the phase means of the periods already accepted are removed, so a weekly
 * period must add something to the daily one - is at least 0.1 and above
 * the 1.96/sqrt(n) white-noise band at that lag, and is the highest within
 * +-5% of the lag, clearly above both ends of that window (a peak, not the
 * slow decay of a trending or smooth series). At least two whole periods
 * must be in the series. */
#include "forecast_impl.h"

#include <gsl/gsl_errno.h>
#include <gsl/gsl_fft_real.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_CAND 8
#define FFT_PEAKS 3
#define ACF_MIN 0.1
#define PEAK_MARGIN 0.02

static void detrend(const double *y, size_t n, double *x)
{
	double tm = (n - 1) / 2.0, my = 0, sxy = 0, sxx = 0, b;

	for (size_t t = 0; t < n; t++)
		my += y[t] / (double)n;
	for (size_t t = 0; t < n; t++) {
		sxy += (t - tm) * (y[t] - my);
		sxx += (t - tm) * (t - tm);
	}
	b = sxx > 0 ? sxy / sxx : 0;
	for (size_t t = 0; t < n; t++)
		x[t] = y[t] - my - b * (t - tm);
}

static double acf(const double *x, size_t n, size_t lag, double var)
{
	double s = 0;

	if (lag >= n || var <= 0)
		return 0;
	for (size_t t = 0; t + lag < n; t++)
		s += x[t] * x[t + lag];
	return s / var;
}

/* Removes the phase means of period p from x (in place). */
static void remove_phase_means(double *x, size_t n, unsigned p, double *buf)
{
	size_t c = n / p;

	memset(buf, 0, p * sizeof(*buf));
	for (size_t t = 0; t < c * p; t++)
		buf[t % p] += x[t] / (double)c;
	for (size_t t = 0; t < n; t++)
		x[t] -= buf[t % p];
}

static size_t add_cand(unsigned *c, size_t nc, unsigned p)
{
	for (size_t i = 0; i < nc; i++)     /* near a calendar period: that one */
		if (p + p / 20 >= c[i] && p <= c[i] + c[i] / 20)
			return nc;
	if (nc < MAX_CAND)
		c[nc++] = p;
	return nc;
}

/* Periodogram peaks passing Fisher's g test (p < 0.01) into c. */
static size_t fft_candidates(const double *x, size_t n, unsigned *c, size_t nc)
{
	size_t N = 1, m;
	double *z, *pw, tot = 0;

	while (N < n)
		N <<= 1;
	m = N / 2;
	z = calloc(N, sizeof(*z));
	pw = calloc(m + 1, sizeof(*pw));
	if (!z || !pw)
		goto cleanup;
	memcpy(z, x, n * sizeof(*z));
	if (gsl_fft_real_radix2_transform(z, 1, N) != GSL_SUCCESS)
		goto cleanup;
	/* halfcomplex: z[k] real, z[N-k] imaginary */
	for (size_t k = 1; k < m; k++) {
		pw[k] = z[k] * z[k] + z[N - k] * z[N - k];
		tot += pw[k];
	}
	for (int pk = 0; pk < FFT_PEAKS && tot > 0; pk++) {
		size_t best = 0;
		double g, pval;

		for (size_t k = 2; k + 1 < m; k++)
			if (pw[k] > pw[k - 1] && pw[k] >= pw[k + 1] && (!best || pw[k] > pw[best]))
				best = k;
		if (!best)
			break;
		g = pw[best] / tot;
		pval = (double)(m - 1) * pow(1 - g, (double)(m - 2));
		if (pval > 0.01)
			break;
		{
			double per = (double)N / (double)best;

			if (per >= 2 && per <= n / 2.0)
				nc = add_cand(c, nc, (unsigned)lround(per));
		}
		pw[best] = 0;
		if (best > 1)
			pw[best - 1] = 0;
		pw[best + 1] = 0;
	}
cleanup:
	free(z);
	free(pw);
	return nc;
}

static int cmp_unsigned(const void *a, const void *b)
{
	unsigned x = *(const unsigned *)a, y = *(const unsigned *)b;

	return (x > y) - (x < y);
}

/* The period within +-5% of p with the highest autocorrelation if it is a
 * significant peak, else 0. */
static unsigned acf_peak(const double *x, size_t n, unsigned p, double var, int calendar)
{
	size_t d = p / 20 ? p / 20 : 1, lo = p > d ? p - d : 1, hi = p + d, arg = p;
	double best = -2, rlo, rhi;

	if (2 * hi > n)
		hi = n / 2;
	if (hi <= lo)
		return 0;
	for (size_t l = lo; l <= hi; l++) {
		double r = acf(x, n, l, var);

		if (r > best)
			best = r, arg = l;
	}
	rlo = acf(x, n, lo, var);
	rhi = acf(x, n, hi, var);
	if (best < ACF_MIN || best < 1.96 / sqrt((double)n))
		return 0;
	if (arg == lo || arg == hi || best < rlo + PEAK_MARGIN || best < rhi + PEAK_MARGIN)
		return 0;
	/* a calendar period wins over its neighbours: on noisy data the
	 * highest lag wanders by one or two around 288 */
	if (calendar || acf(x, n, p, var) >= 0.9 * best)
		arg = p;
	return (unsigned)arg;
}

static int is_calendar(const unsigned *cal, size_t ncal, unsigned p)
{
	for (size_t i = 0; i < ncal; i++)
		if (cal[i] == p)
			return 1;
	return 0;
}

size_t us_fc_detect_seasons(const double *y, size_t n, double step_s, unsigned *seasons,
			    size_t max)
{
	static const double cal[] = { 3600, 86400, 604800 };
	unsigned c[MAX_CAND], calp[MAX_CAND];
	size_t nc = 0, ncal, found = 0;
	double *x = NULL, *buf = NULL, var = 0;

	if (n < 8 || max == 0)
		return 0;
	x = malloc(n * sizeof(*x));
	buf = malloc(n * sizeof(*buf));
	if (!x || !buf)
		goto cleanup;
	gsl_set_error_handler_off();
	detrend(y, n, x);
	for (size_t i = 0; step_s > 0 && i < sizeof(cal) / sizeof(cal[0]); i++) {
		double p = cal[i] / step_s;

		if (p >= 2 && fabs(p - round(p)) < 0.01 * p && 2 * round(p) <= n)
			nc = add_cand(c, nc, (unsigned)round(p));
	}
	ncal = nc;
	nc = fft_candidates(x, n, c, nc);
	/* c[0..ncal) are the calendar ones; keep that knowledge past the sort */
	memcpy(calp, c, ncal * sizeof(c[0]));
	qsort(c, nc, sizeof(c[0]), cmp_unsigned);
	for (size_t i = 0; i < nc && found < max; i++) {
		unsigned p;

		var = 0;
		for (size_t t = 0; t < n; t++)
			var += x[t] * x[t];
		p = acf_peak(x, n, c[i], var, is_calendar(calp, ncal, c[i]));
		if (!p || 2 * (size_t)p > n)
			continue;
		if (found && p <= seasons[found - 1] + seasons[found - 1] / 20)
			continue;       /* the same period found twice */
		seasons[found++] = p;
		remove_phase_means(x, n, p, buf);
	}
cleanup:
	free(x);
	free(buf);
	return found;
}
