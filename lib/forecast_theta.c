/* The Theta method (Assimakopoulos & Nikolopoulos 2000) in the form shown by
 * Hyndman & Billah (2003) to be simple exponential smoothing with drift: the
 * forecast is SES's flat forecast plus half the slope b of a straight line
 * fitted to the series, b/2 * (h - 1 + (1 - (1 - alpha)^n) / alpha), as R's
 * thetaf(). Seasonality is removed before (forecast_select.c); intervals are
 * SES's, as in thetaf(). */
#include "forecast_impl.h"

#include <math.h>
#include <stdio.h>

/* Least-squares slope of y on 0..n-1. */
static double slope(const double *y, size_t n)
{
	double tm = (n - 1) / 2.0, sy = 0, sxy = 0, sxx = 0;

	for (size_t t = 0; t < n; t++)
		sy += y[t];
	sy /= (double)n;
	for (size_t t = 0; t < n; t++) {
		sxy += (t - tm) * (y[t] - sy);
		sxx += (t - tm) * (t - tm);
	}
	return sxx > 0 ? sxy / sxx : 0;
}

int us_fc_theta(const double *y, size_t n, size_t h, struct us_fc_fit *f, int refit,
		double *mean, double *sd)
{
	struct us_ets_spec ses = { US_ETS_A, US_ETS_N, US_ETS_N, 0 };
	double a, k;

	if (n < 8)
		return -1;
	if (!refit) {
		if (us_ets_fit(y, n, &ses, &f->ets) < 0)
			return -1;
		f->have_ets = 1;
		f->aicc = f->ets.aicc;
	}
	f->theta_b = slope(y, n) / 2;
	if (us_ets_forecast(&f->ets, y, n, h, mean, sd) < 0)
		return -1;
	a = f->ets.par.alpha;
	k = (1 - pow(1 - a, (double)n)) / a;
	for (size_t j = 0; j < h; j++)
		mean[j] += f->theta_b * ((double)j + k);
	snprintf(f->params, sizeof(f->params), "alpha=%.4g drift=%.4g l0=%.6g sigma=%.4g", a,
		 f->theta_b, f->ets.par.l0, f->ets.sigma);
	return 0;
}
