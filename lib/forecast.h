/* Forecasting of one regularly sampled series (docs/forecast.md).
 *
 * us_forecast() detects the seasonal periods (or takes them from the caller),
 * fits every applicable model family (seasonal naive, ETS, multi-seasonal
 * decomposition + ETS, Theta, and seasonal ARIMA when it is built in), picks
 * one within each family by AICc and across families by rolling-origin
 * validation, and returns the point forecast with 80% and 95% prediction
 * intervals. Intervals are analytic where the model has them and otherwise
 * come from the validation errors; every interval is also exposed as a
 * Gaussian-equivalent standard error (sd[]) so other levels can be asked for
 * with us_fc_interval().
 *
 * Input series are values per step with no gaps (see forecast_csv.h for the
 * CSV reader that interpolates and splits gaps). The library is pure C with
 * GSL (Nelder-Mead for maximum likelihood, FFT for the periodogram); it
 * keeps no state between calls and is safe to call from several threads. */
#ifndef US_FORECAST_H
#define US_FORECAST_H

#include <stddef.h>

#define US_FC_MAX_SEASONS 2

/* Model families, for us_fc_input.families (0 = all of them). */
enum {
	US_FC_SNAIVE = 1u << 0,    /* seasonal naive (naive when there is no season) */
	US_FC_ETS = 1u << 1,       /* ETS on the raw series (period <= US_FC_ETS_MAX_PERIOD) */
	US_FC_DECOMP = 1u << 2,    /* multi-seasonal decomposition + ETS on the adjusted series */
	US_FC_THETA = 1u << 3,     /* Theta (Hyndman & Billah), seasonally adjusted */
	US_FC_ARIMA = 1u << 4,     /* seasonal ARIMA (forecast_arima.h); automatic only up to 1,500 points */
	US_FC_MEAN = 1u << 5,      /* robust recent level + seasonal profile (a cheap baseline) */
	US_FC_COMB = 1u << 6,      /* equal-weight mean of the decomposition families */
	US_FC_ALL = 0x7f,
};

/* Longest period ETS handles with its own seasonal states; longer periods go
 * through the decomposition family. */
#define US_FC_ETS_MAX_PERIOD 52

struct us_fc_input {
	const double *y;        /* n values, one per step, all finite */
	size_t n;
	double step_s;          /* seconds per step; only used to pick candidate periods
				 * (daily, weekly) when detecting; 0 = unknown */
	unsigned seasons[US_FC_MAX_SEASONS];   /* periods in steps, ascending */
	size_t nseasons;        /* 0 = detect automatically (us_fc_detect_seasons) */
	int no_season;          /* 1 = force a non-seasonal model (`--season none`) */
	int nonnegative;        /* forecasts and bounds never go below 0 */
	unsigned families;      /* US_FC_* mask; 0 = all; one bit = that family only */
};

struct us_fc_output {
	size_t h;               /* steps forecast */
	double *mean;           /* h values each (malloc'd, us_fc_output_free) */
	double *lo80, *hi80;
	double *lo95, *hi95;
	double *sd;             /* Gaussian-equivalent standard error per step */
	char model[128];        /* e.g. "Decomp(288,2016)+ETS(A,Ad,N)" */
	char params[256];       /* e.g. "alpha=0.31 beta=0.01 phi=0.95 l0=12.1 b0=0.02" */
	double aicc;            /* of the chosen model; NAN when it has no likelihood */
	double cv_mase;         /* rolling-origin validation MASE of the chosen model; NAN if none */
	char interval[16];      /* "analytic" or "empirical" */
	unsigned seasons[US_FC_MAX_SEASONS];   /* periods used */
	size_t nseasons;
	char candidates[512];   /* families tried and their validation MASE */
};

/* Forecasts h steps past the end of in->y into *out (zeroed first; free with
 * us_fc_output_free even on error). Returns 0, or -1 with err filled (too
 * short a series, h == 0, non-finite input, out of memory). */
int us_forecast(const struct us_fc_input *in, size_t h, struct us_fc_output *out, char *err,
		size_t errlen);
void us_fc_output_free(struct us_fc_output *out);

/* The interval at level (e.g. 90 for 90%) of step i from out->sd, clamped at
 * 0 for a non-negative series when nonnegative is set. */
void us_fc_interval(const struct us_fc_output *out, size_t i, double level, int nonnegative,
		    double *lo, double *hi);

/* Detects up to max seasonal periods (steps) of y: candidates are the
 * calendar periods for step_s (day, week, hour) when step_s > 0, plus the
 * periodogram's peaks (gsl_fft); on the series winsorized at 5 robust sd, a
 * candidate is kept when its autocorrelation is a significant local peak
 * (beyond Bartlett's band and at least 0.1) that repeats at twice the lag
 * when four periods fit, and at least two whole periods are in y. Returns
 * the count, periods ascending. */
size_t us_fc_detect_seasons(const double *y, size_t n, double step_s, unsigned *seasons,
			    size_t max);

#endif
