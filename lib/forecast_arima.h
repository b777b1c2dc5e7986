/* Seasonal ARIMA with automatic order selection (Hyndman-Khandakar, as
 * R's forecast::auto.arima): d from repeated KPSS tests, D from the
 * seasonal strength of a classical decomposition, a stepwise search over
 * (p,q)(P,Q) by AICc, estimation by conditional sum of squares followed by
 * exact Gaussian maximum likelihood (Kalman filter), forecasts by the
 * difference-equation recursion with standard errors from the psi weights.
 * See docs/forecast-arima.md for the method, the choices and the limits.
 *
 * Seasonal periods above US_ARIMA_MAX_PERIOD are refused by us_arima_auto
 * (it fits a non-seasonal model and says so in fit->note): the caller is
 * expected to run ARIMA on the seasonally adjusted series instead.
 *
 * Functions return 0 on success, -1 on error with a message in err. The
 * library turns GSL's abort-on-error handler off (gsl_set_error_handler_off):
 * every GSL status is checked here. */
#ifndef US_FORECAST_ARIMA_H
#define US_FORECAST_ARIMA_H

#include <stddef.h>

#define US_ARIMA_MAX_PERIOD 52

struct us_arima_fit {
	int p, d, q, P, D, Q;
	unsigned period;        /* 0 or 1: non-seasonal */
	int constant;           /* drift (d+D == 1) or mean (d+D == 0) */
	double phi[8], theta[8], Phi[4], Theta[4], mu, sigma2, loglik, aicc;
	char description[96];   /* "ARIMA(1,1,1)(0,1,1)[24] with drift" */
	char note[128];         /* empty, or a remark such as a refused period */
	int method;             /* 0: CSS only, 1: CSS then exact ML */
	/* Forecasting state (malloc'd, released by us_arima_free). */
	size_t n;               /* length of the series */
	double *y;              /* copy of the series */
	double *resid;          /* n one-step residuals; 0 where undefined */
};

/* Chooses d, D and the orders automatically and fits the model. On
 * success err holds "" or the same remark as fit->note. */
int us_arima_auto(const double *y, size_t n, unsigned period, struct us_arima_fit *fit,
		  char *err, size_t errlen);

/* Fits ARIMA(p,d,q)(P,D,Q)[period], with a constant when `constant` and
 * d + D <= 1. p, q <= 8; P, Q <= 4; d <= 2; D <= 1. */
int us_arima_fit_order(const double *y, size_t n, unsigned period, int p, int d, int q,
		       int P, int D, int Q, int constant, struct us_arima_fit *fit,
		       char *err, size_t errlen);

/* Point forecasts mean[0..h) and their standard errors se[0..h) (se may be
 * NULL) from a fitted model. */
int us_arima_forecast(const struct us_arima_fit *fit, size_t h, double *mean, double *se);

/* Releases the forecasting state; the struct may be reused. */
void us_arima_free(struct us_arima_fit *fit);

/* ---- building blocks, exposed for tests and for the model selection ---- */

/* KPSS level-stationarity statistic (Bartlett window, lag
 * trunc(4 (n/100)^0.25), as urca/tseries "short"); 5% critical value 0.463. */
double us_arima_kpss(const double *y, size_t n);
/* Number of first differences (0..2) by repeated KPSS tests at 5%. */
int us_arima_ndiffs(const double *y, size_t n);
/* Seasonal strength max(0, 1 - Var(R)/Var(S+R)) of a classical additive
 * decomposition; 0 when n < 2 * period. */
double us_arima_seasonal_strength(const double *y, size_t n, unsigned period);
/* Number of seasonal differences (0 or 1): 1 when the strength > 0.64. */
int us_arima_nsdiffs(const double *y, size_t n, unsigned period);
/* Exact Gaussian log-likelihood of y under the fitted model's parameters
 * (phi.., mu, sigma2; orders, d, D, period), by the Kalman filter on the
 * differenced series. NAN on error. */
double us_arima_loglik(const struct us_arima_fit *fit, const double *y, size_t n);

#endif
