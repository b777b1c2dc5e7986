/* Internals shared by the forecasting files (lib/forecast_*.c); not an API.
 *
 * A model family is a small vtable (struct us_fc_family): fit() estimates the
 * family's best member on y (choosing within the family by AICc) and
 * forecasts h steps; refit() re-runs the already chosen member with its
 * parameters on a shorter prefix of y, which is what the rolling-origin
 * validation in forecast_select.c uses to stay fast. */
#ifndef US_FORECAST_IMPL_H
#define US_FORECAST_IMPL_H

#include <stddef.h>

#include "forecast.h"

/* ---- ETS (forecast_ets.c) ------------------------------------------------ */

enum { US_ETS_N = 0, US_ETS_A = 1, US_ETS_AD = 2, US_ETS_M = 3 };

struct us_ets_spec {
	int error;              /* US_ETS_A or US_ETS_M */
	int trend;              /* US_ETS_N, US_ETS_A, US_ETS_AD */
	int season;             /* US_ETS_N, US_ETS_A, US_ETS_M */
	unsigned m;             /* period when season != N */
};

#define US_ETS_MAX_M US_FC_ETS_MAX_PERIOD

struct us_ets_par {
	double alpha, beta, gamma, phi;
	double l0, b0;
	double s0[US_ETS_MAX_M];   /* s0[j]: initial seasonal state of phase j (t mod m) */
};

struct us_ets_model {
	struct us_ets_spec spec;
	struct us_ets_par par;
	double sigma;           /* residual sd (relative for multiplicative error) */
	double loglik, aicc;
	int k;                  /* parameters counted in AICc */
};

/* Gaussian log-likelihood of y under spec/par: for additive errors
 * -n/2 * (log(2*pi*SSE/n) + 1); for multiplicative errors the same of the
 * relative errors minus sum(log|yhat|). -INFINITY when a fitted value is not
 * usable (non-positive with a multiplicative component). *sse may be NULL. */
double us_ets_loglik(const double *y, size_t n, const struct us_ets_spec *spec,
		     const struct us_ets_par *par, double *sse);
/* Fits spec by maximum likelihood (Nelder-Mead on the smoothing parameters
 * and l0, b0). 0 or -1 (not applicable to y). */
int us_ets_fit(const double *y, size_t n, const struct us_ets_spec *spec, struct us_ets_model *mod);
/* The best by AICc of the models applicable to y with period m (0 = none);
 * additive_only leaves out multiplicative error and seasonality. */
int us_ets_auto(const double *y, size_t n, unsigned m, int additive_only,
		struct us_ets_model *best);
/* Runs mod's filter over y (parameters fixed) and forecasts h steps with the
 * analytic standard errors (exact for additive error, first order otherwise). */
int us_ets_forecast(const struct us_ets_model *mod, const double *y, size_t n, size_t h,
		    double *mean, double *sd);
void us_ets_name(const struct us_ets_spec *spec, char *buf, size_t len);
void us_ets_params(const struct us_ets_model *mod, char *buf, size_t len);

/* ---- decomposition (forecast_decomp.c) ------------------------------------ */

/* Additive multi-seasonal decomposition y = trend + sum(seasonal) + remainder
 * (MSTL-like: a few passes of centred moving-average detrending and smoothed,
 * outlier-clipped phase means per period). prof[i] receives seasons[i]
 * values: the seasonal component at phase (t mod seasons[i]); adj receives the
 * seasonally adjusted series (n values). 0 or -1 (series too short). */
int us_fc_decompose(const double *y, size_t n, const unsigned *seasons, size_t ns,
		    double **prof, double *adj);
/* Seasonal component at time t (an index past the end is fine). */
double us_fc_season_at(double *const *prof, const unsigned *seasons, size_t ns, size_t t);

/* ---- families (forecast_select.c, forecast_theta.c) ------------------------ */

struct us_fc_fit {
	double *mean, *sd;      /* h each, owned by the caller */
	int analytic;           /* sd is the model's own */
	double aicc;            /* NAN when none */
	char model[128];
	char params[256];
	/* state kept for refit() */
	struct us_ets_model ets;
	int have_ets;
	double theta_b;         /* Theta: the drift (slope / 2) */
	int arima_order[8];     /* ARIMA: p d q P D Q period constant, for refit() */
	int have_arima;
};

struct us_fc_family {
	unsigned bit;
	const char *name;
	int (*fit)(const double *y, size_t n, const unsigned *seasons, size_t ns, size_t h,
		   struct us_fc_fit *f);
	/* Same member and parameters as f (from fit), forecast from y[0..n); NULL
	 * means fit() is cheap enough to be rerun. */
	int (*refit)(const double *y, size_t n, const unsigned *seasons, size_t ns, size_t h,
		     struct us_fc_fit *f);
};

/* Theta forecast of an (adjusted) series: SES with drift = half the slope. */
int us_fc_theta(const double *y, size_t n, size_t h, struct us_fc_fit *f, int refit,
		double *mean, double *sd);

#endif
