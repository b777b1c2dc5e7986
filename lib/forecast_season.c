/* Automatic detection of seasonal periods.
 *
 * The series is linearly detrended and winsorized at its median +- 5 robust
 * standard deviations (1.4826 MAD) first: on spiky server metrics a few
 * spikes carry most of the variance, and two of them that happen to be k
 * steps apart make an autocorrelation "peak" at lag k (white noise with 1%
 * of spikes showed a day or a week in 13 seeds of 100, none since).
 * Winsorizing keeps a spike that recurs every day (it is still far above the
 * rest) but caps the weight of any one spike.
 *
 * Candidates are the calendar periods the step allows (an hour, a day and a
 * week, when each is a whole number of steps) and the periods of the
 * periodogram's strongest peaks (gsl_fft, zero-padded to a power of two)
 * that pass Fisher's g test at 1%. A candidate is accepted, in ascending
 * order, when the autocorrelation of the series - after the phase means of
 * the periods already accepted are removed, so a weekly period must add
 * something to the daily one - is at least 0.1 and above the 95% band of
 * Bartlett's formula, var r_k = (1 + 2 sum_{i<=q} r_i^2) / n, under the null
 * of an MA(q) series, q the lag before the autocorrelation first enters the
 * white-noise band 1.96/sqrt(n) (Box-Jenkins identification: a smooth or
 * trending series widens the band, white noise does not; summing all lags
 * below k instead, as for an MA(k-1), would put a weekly lag out of reach
 * with three weeks of data), and is the highest within +-5% of the lag,
 * clearly above both ends of that window (a peak, not the slow decay of a
 * trending or smooth series). When the series holds four periods, the
 * autocorrelation at twice the lag must be above its band too: a season
 * repeats, a chance coincidence does not (with fewer, the estimate at twice
 * the lag rests on too few pairs to say). At least two whole periods must be
 * in the series.
 * The autocorrelations of all lags come from one FFT (zero-padded to twice
 * the length, so not circular) each time a period is accepted. */
#include "forecast_impl.h"

#include <gsl/gsl_errno.h>
#include <gsl/gsl_fft_halfcomplex.h>
#include <gsl/gsl_fft_real.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_CAND 8
#define FFT_PEAKS 3
#define ACF_MIN 0.1
#define PEAK_MARGIN 0.02
#define WINSOR_SD 5.0
#define Z95 1.959963984540054

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Caps x at its median +- WINSOR_SD robust sd (see top); buf holds n. A
 * series with MAD 0 (mostly constant) is left alone. */
static void winsorize(double *x, size_t n, double *buf)
{
	double med, sd;

	memcpy(buf, x, n * sizeof(*x));
	qsort(buf, n, sizeof(*buf), cmp_double);
	med = buf[n / 2];
	for (size_t t = 0; t < n; t++)
		buf[t] = fabs(x[t] - med);
	qsort(buf, n, sizeof(*buf), cmp_double);
	sd = 1.4826 * buf[n / 2];
	for (size_t t = 0; sd > 0 && t < n; t++)
		x[t] = fmin(fmax(x[t], med - WINSOR_SD * sd), med + WINSOR_SD * sd);
}

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

/* Autocorrelations r[0..n) of x (r[0] = 1, all 0 for a constant x) and the
 * upper 95% Bartlett band band[0..n) (see top), by FFT. */
static int acf_all(const double *x, size_t n, double *r, double *band)
{
	size_t N = 1;
	double *z, cum = 0;
	size_t q = 0;           /* the short memory (see top) */
	int rc = -1;

	while (N < 2 * n)
		N <<= 1;
	if (!(z = calloc(N, sizeof(*z))))
		return -1;
	memcpy(z, x, n * sizeof(*z));
	if (gsl_fft_real_radix2_transform(z, 1, N) != GSL_SUCCESS)
		goto cleanup;
	/* halfcomplex: z[k] real, z[N-k] imaginary; the power is real */
	z[0] *= z[0];
	z[N / 2] *= z[N / 2];
	for (size_t k = 1; k < N / 2; k++) {
		z[k] = z[k] * z[k] + z[N - k] * z[N - k];
		z[N - k] = 0;
	}
	if (gsl_fft_halfcomplex_radix2_inverse(z, 1, N) != GSL_SUCCESS)
		goto cleanup;
	for (size_t l = 0; l < n; l++) {
		r[l] = z[0] > 0 ? z[l] / z[0] : 0;
		band[l] = Z95 * sqrt((1 + 2 * cum) / (double)n);
		if (l > 0 && q == 0 && fabs(r[l]) < Z95 / sqrt((double)n))
			q = l;
		if (l > 0 && q == 0)
			cum += r[l] * r[l];
	}
	rc = 0;
cleanup:
	free(z);
	return rc;
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

static double unbiased(const double *r, size_t n, size_t l)
{
	return r[l] * (double)n / (double)(n - l);
}

/* The period within +-5% of p with the highest autocorrelation (r, band
 * from acf_all()) if it is a significant peak that repeats (see top), else
 * 0. */
static unsigned acf_peak(const double *r, const double *band, size_t n, unsigned p,
			 int calendar)
{
	size_t d = p / 20 ? p / 20 : 1, lo = p > d ? p - d : 1, hi = p + d, arg = p;
	double best = -2;

	if (2 * hi > n)
		hi = n / 2;
	if (hi <= lo)
		return 0;
	/* the peak's shape is judged on the unbiased estimate r[l] n/(n-l):
	 * the FFT's r[l] carries the factor (n-l)/n, whose slope over +-5% of
	 * the lag is as large as a smooth season's own curvature when only
	 * three periods fit (a clean daily sine over three days failed) */
	for (size_t l = lo; l <= hi; l++)
		if (unbiased(r, n, l) > best)
			best = unbiased(r, n, l), arg = l;
	if (r[arg] < ACF_MIN || r[arg] < band[arg])
		return 0;
	if (arg == lo || arg == hi || best < unbiased(r, n, lo) + PEAK_MARGIN ||
	    best < unbiased(r, n, hi) + PEAK_MARGIN)
		return 0;
	best = r[arg];
	/* a calendar period wins over its neighbours: on noisy data the
	 * highest lag wanders by one or two around 288 */
	if (calendar || r[p] >= 0.9 * best)
		arg = p;
	if (4 * arg <= n && r[2 * arg] < band[2 * arg])
		return 0;
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
	double *x = NULL, *buf = NULL, *r = NULL, *band = NULL;
	int stale = 1;

	if (n < 8 || max == 0)
		return 0;
	x = malloc(n * sizeof(*x));
	buf = malloc(n * sizeof(*buf));
	r = malloc(n * sizeof(*r));
	band = malloc(n * sizeof(*band));
	if (!x || !buf || !r || !band)
		goto cleanup;
	gsl_set_error_handler_off();
	detrend(y, n, x);
	winsorize(x, n, buf);
	detrend(x, n, x);       /* capping moved the mean: it would correlate every lag */
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

		if (stale && acf_all(x, n, r, band) < 0)
			break;
		stale = 0;
		p = acf_peak(r, band, n, c[i], is_calendar(calp, ncal, c[i]));
		if (!p || 2 * (size_t)p > n)
			continue;
		if (found && p <= seasons[found - 1] + seasons[found - 1] / 20)
			continue;       /* the same period found twice */
		seasons[found++] = p;
		remove_phase_means(x, n, p, buf);
		stale = 1;
	}
cleanup:
	free(x);
	free(buf);
	free(r);
	free(band);
	return found;
}
