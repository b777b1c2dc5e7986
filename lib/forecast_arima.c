/* Seasonal ARIMA with automatic order selection; see forecast_arima.h and
 * docs/forecast-arima.md.
 *
 * Layout. The series is differenced once, w = (1-B)^d (1-B^s)^D y, and
 * only the ARMA part is estimated on w: the seasonal and non-seasonal
 * factors are multiplied out into one AR polynomial a(B) of degree
 * pp = p + sP and one MA polynomial b(B) of degree qq = q + sQ, kept with
 * the indices of their structurally non-zero terms so a seasonal model
 * costs what its number of parameters costs, not what s costs.
 *
 * Estimation. The series is scaled to unit variance so one step size and
 * tolerance fit every series. Conditional sum of squares (CSS) is
 * minimised by BFGS directly in coefficient space, where it is smooth and
 * well conditioned, from Hannan-Rissanen starting values. Exact Gaussian
 * likelihood (ML) by a Kalman filter on Harvey's state-space form refines
 * it on an unconstrained scale: each polynomial factor is mapped from
 * tanh(raw) partial autocorrelations by the Durbin-Levinson recursion
 * (Jones 1980, R's partrans), for the MA factors too, so every point the
 * optimiser visits is stationary and invertible. The filter's initial
 * covariance solves P = T P T' + R R' by the doubling algorithm, and once
 * P has converged to R R' the filter becomes the plain innovations
 * recursion, O(r) a step, so long series are cheap.
 *
 * Search. As Hyndman & Khandakar (2008): D from seasonal strength, d from
 * KPSS, four starting models, then single and paired +-1 moves on
 * (p,q)(P,Q) and the constant, accepting any move that lowers AICc. For
 * long series (n > 150 or s > 12) the search compares CSS fits and only
 * the winner is refitted by ML, as R's approximation = TRUE does. */
#include "forecast_arima.h"

#include <gsl/gsl_errno.h>
#include <gsl/gsl_multimin.h>
#include <gsl/gsl_poly.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KPSS_CRIT_5 0.463          /* Kwiatkowski et al. 1992, table 1, level */
#define SEAS_STRENGTH_MIN 0.64     /* forecast::nsdiffs(test = "seas") */
#define MAX_MODELS 94              /* auto.arima's nmodels */
#define MIN_ROOT 1.01              /* auto.arima rejects roots inside this */
#define AUTO_MIN_N 10
#define RAW_MAX 5.0                /* tanh(5) = 0.99991 */
#define RAW_STOP 3.0               /* tanh(3) = 0.99505 */
#define ML_REFITS 3                /* search winners refitted by ML at most */
#define BFGS_MAXIT 100             /* as R's optim() */
#define SEARCH_MAXIT 25            /* CSS fits during the stepwise search */
#define MAXPP (8 + 4 * US_ARIMA_MAX_PERIOD)
#define MAXPAR (8 + 8 + 4 + 4 + 1)

enum { METHOD_CSS = 0, METHOD_ML = 1 };

/* ---- small helpers -------------------------------------------------------- */

static void seterr(char *err, size_t len, const char *fmt, ...)
{
	va_list ap;

	if (!err || !len)
		return;
	va_start(ap, fmt);
	vsnprintf(err, len, fmt, ap);
	va_end(ap);
}

static int check_series(const double *y, size_t n, size_t min_n, char *err, size_t errlen)
{
	if (!y || n < min_n) {
		seterr(err, errlen, "series too short: %zu points, need at least %zu", n, min_n);
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		if (!isfinite(y[i])) {
			seterr(err, errlen, "non-finite value at index %zu", i);
			return -1;
		}
	}
	return 0;
}

/* Exact equality would miss a differenced linear trend whose steps differ
 * in the last bit, so "constant" is relative to the series' magnitude. */
static int is_constant(const double *x, size_t n)
{
	double lo = x[0], hi = x[0];

	for (size_t i = 1; i < n; i++) {
		lo = fmin(lo, x[i]);
		hi = fmax(hi, x[i]);
	}
	return hi - lo <= 1e-10 * fmax(1.0, fmax(fabs(lo), fabs(hi)));
}

/* In place: x[0..n) becomes its lag-`lag` difference, n - lag values. */
static size_t difference(double *x, size_t n, unsigned lag)
{
	if (n <= lag)
		return 0;
	for (size_t i = 0; i + lag < n; i++)
		x[i] = x[i + lag] - x[i];
	return n - lag;
}

/* ---- unit-root and seasonality tests --------------------------------------- */

double us_arima_kpss(const double *y, size_t n)
{
	double mean = 0, s = 0, eta = 0, s2 = 0;
	size_t lags;

	if (n < 3)
		return NAN;
	for (size_t i = 0; i < n; i++)
		mean += y[i];
	mean /= (double)n;
	for (size_t i = 0; i < n; i++) {
		double e = y[i] - mean;
		s += e;
		eta += s * s;
		s2 += e * e;
	}
	eta /= (double)n * (double)n;
	s2 /= (double)n;
	lags = (size_t)trunc(4.0 * pow((double)n / 100.0, 0.25));
	if (lags >= n)
		lags = n - 1;
	/* Newey-West long-run variance with Bartlett weights */
	for (size_t l = 1; l <= lags; l++) {
		double acc = 0;
		for (size_t t = l; t < n; t++)
			acc += (y[t] - mean) * (y[t - l] - mean);
		s2 += 2.0 * (1.0 - (double)l / (double)(lags + 1)) * acc / (double)n;
	}
	if (!(s2 > 0))
		return 0.0;
	return eta / s2;
}

int us_arima_ndiffs(const double *y, size_t n)
{
	double *x;
	int d = 0;

	if (n < 3 || is_constant(y, n))
		return 0;
	x = malloc(n * sizeof *x);
	if (!x)
		return 0;
	memcpy(x, y, n * sizeof *x);
	while (d < 2 && n >= 3 && us_arima_kpss(x, n) > KPSS_CRIT_5) {
		n = difference(x, n, 1);
		d++;
		if (n < 3 || is_constant(x, n))
			break;
	}
	free(x);
	return d;
}

/* Classical additive decomposition rather than STL: a centred moving
 * average of length s (2 x s when s is even) for the trend, phase means
 * of the detrended series for the seasonal component. The strength
 * formula is Wang, Smith & Hyndman (2006), used by forecast::nsdiffs. */
double us_arima_seasonal_strength(const double *y, size_t n, unsigned s)
{
	double *det = NULL, *seas = NULL, vr = 0, vsr = 0, mr = 0, msr = 0, strength = 0;
	size_t *cnt = NULL, half = s / 2, cnt_all = 0;

	if (s < 2 || n < 2 * (size_t)s)
		return 0.0;
	det = malloc(n * sizeof *det);
	seas = calloc(s, sizeof *seas);
	cnt = calloc(s, sizeof *cnt);
	if (!det || !seas || !cnt)
		goto cleanup;
	for (size_t t = half; t + half < n; t++) {
		double tr = 0;
		if (s % 2) {
			for (size_t k = t - half; k <= t + half; k++)
				tr += y[k];
			tr /= s;
		} else {
			for (size_t k = t - half + 1; k < t + half; k++)
				tr += y[k];
			tr = (tr + 0.5 * (y[t - half] + y[t + half])) / s;
		}
		det[t] = y[t] - tr;
		seas[t % s] += det[t];
		cnt[t % s]++;
	}
	double smean = 0;
	for (unsigned j = 0; j < s; j++) {
		seas[j] = cnt[j] ? seas[j] / (double)cnt[j] : 0;
		smean += seas[j] / s;
	}
	for (size_t t = half; t + half < n; t++) {
		double sr = det[t], r = sr - (seas[t % s] - smean);
		mr += r;
		msr += sr;
		cnt_all++;
	}
	mr /= (double)cnt_all;
	msr /= (double)cnt_all;
	for (size_t t = half; t + half < n; t++) {
		double sr = det[t], r = sr - (seas[t % s] - smean);
		vr += (r - mr) * (r - mr);
		vsr += (sr - msr) * (sr - msr);
	}
	strength = vsr > 0 ? fmax(0.0, 1.0 - vr / vsr) : 0.0;
cleanup:
	free(det);
	free(seas);
	free(cnt);
	return strength;
}

int us_arima_nsdiffs(const double *y, size_t n, unsigned period)
{
	if (period < 2 || n < 2 * (size_t)period || is_constant(y, n))
		return 0;
	return us_arima_seasonal_strength(y, n, period) > SEAS_STRENGTH_MIN;
}

/* ---- polynomials ------------------------------------------------------------ */

/* Durbin-Levinson: partial autocorrelations tanh(raw) -> coefficients of a
 * stationary 1 - c_1 z - ... - c_k z^k. */
static void partrans(int k, const double *raw, double *c)
{
	double work[8];

	/* |pacf| <= tanh(RAW_MAX): past it the objective is flat, so BFGS
	 * stops instead of crawling towards a unit root it would reject */
	for (int j = 0; j < k; j++)
		work[j] = c[j] = tanh(fmax(-RAW_MAX, fmin(RAW_MAX, raw[j])));
	for (int j = 1; j < k; j++) {
		double a = c[j];
		for (int i = 0; i < j; i++)
			work[i] -= a * c[j - i - 1];
		for (int i = 0; i < j; i++)
			c[i] = work[i];
	}
}

/* The inverse; -1 when the polynomial is not stationary. */
static int invpartrans(int k, const double *c, double *raw)
{
	double work[8], cur[8];

	for (int j = 0; j < k; j++)
		work[j] = cur[j] = c[j];
	for (int j = k - 1; j > 0; j--) {
		double a = cur[j];
		if (!(fabs(a) < 1))
			return -1;
		for (int i = 0; i < j; i++)
			work[i] = (cur[i] + a * cur[j - i - 1]) / (1 - a * a);
		for (int i = 0; i < j; i++)
			cur[i] = work[i];
	}
	for (int j = 0; j < k; j++) {
		if (!(fabs(cur[j]) < 1))
			return -1;
		raw[j] = atanh(cur[j]);
	}
	return 0;
}

/* The ARMA part of a model, multiplied out: 1 - sum a_i B^i and
 * 1 + sum b_j B^j, with the indices of the terms that can be non-zero. */
struct poly {
	int pp, qq, na, nb;
	double a[MAXPP + 1], b[MAXPP + 1];
	int ia[64], ib[64];
};

static void expand(struct poly *pl, int p, int q, int P, int Q, unsigned s, const double *phi,
		   const double *theta, const double *Phi, const double *Theta)
{
	pl->pp = p + (int)s * P;
	pl->qq = q + (int)s * Q;
	memset(pl->a, 0, (pl->pp + 1) * sizeof(double));
	memset(pl->b, 0, (pl->qq + 1) * sizeof(double));
	for (int i = 1; i <= p; i++)
		pl->a[i] += phi[i - 1];
	for (int j = 1; j <= P; j++) {
		pl->a[s * j] += Phi[j - 1];
		for (int i = 1; i <= p; i++)
			pl->a[s * j + i] -= phi[i - 1] * Phi[j - 1];
	}
	for (int i = 1; i <= q; i++)
		pl->b[i] += theta[i - 1];
	for (int j = 1; j <= Q; j++) {
		pl->b[s * j] += Theta[j - 1];
		for (int i = 1; i <= q; i++)
			pl->b[s * j + i] += theta[i - 1] * Theta[j - 1];
	}
	/* structural non-zeros: (i + s j) for i <= p, j <= P, not both zero */
	pl->na = pl->nb = 0;
	for (int j = 0; j <= P; j++)
		for (int i = 0; i <= p; i++)
			if (i + j > 0)
				pl->ia[pl->na++] = i + (int)s * j;
	for (int j = 0; j <= Q; j++)
		for (int i = 0; i <= q; i++)
			if (i + j > 0)
				pl->ib[pl->nb++] = i + (int)s * j;
}

/* Smallest root modulus of 1 + sign * (c_1 z + ... + c_k z^k), in units of
 * B when the polynomial is in B^s; INFINITY when it has no roots. */
static double min_root(const double *c, int k, double sign, unsigned s)
{
	double coef[9], z[16], best = INFINITY;
	gsl_poly_complex_workspace *w;

	while (k > 0 && fabs(c[k - 1]) < 1e-12)
		k--;
	if (k == 0)
		return INFINITY;
	coef[0] = 1;
	for (int i = 0; i < k; i++)
		coef[i + 1] = sign * c[i];
	w = gsl_poly_complex_workspace_alloc(k + 1);
	if (!w)
		return 0;
	if (gsl_poly_complex_solve(coef, k + 1, w, z) != GSL_SUCCESS)
		best = 0;
	else
		for (int i = 0; i < k; i++)
			best = fmin(best, hypot(z[2 * i], z[2 * i + 1]));
	gsl_poly_complex_workspace_free(w);
	return s > 1 ? pow(best, 1.0 / s) : best;
}

/* ---- the objective ---------------------------------------------------------- */

/* One ARMA estimation on a (scaled) differenced series. */
struct arma {
	const double *x;
	size_t m;
	int p, q, P, Q, constant, method, npar;
	int transform;  /* v holds tanh-PACF raw values, else coefficients */
	int maxit;      /* BFGS iterations */
	unsigned s;
	struct poly pl;
	double *e;      /* m residuals */
	double *kw;     /* Kalman workspace */
	int r;          /* state dimension */
};

static void unpack(struct arma *c, const double *v, double *phi, double *theta, double *Phi,
		   double *Theta, double *mu)
{
	int k = 0;

	if (!c->transform) {
		memcpy(phi, v, c->p * sizeof *v);
		memcpy(theta, v + c->p, c->q * sizeof *v);
		memcpy(Phi, v + c->p + c->q, c->P * sizeof *v);
		memcpy(Theta, v + c->p + c->q + c->P, c->Q * sizeof *v);
		*mu = c->constant ? v[c->p + c->q + c->P + c->Q] : 0.0;
		return;
	}
	partrans(c->p, v + k, phi);
	k += c->p;
	partrans(c->q, v + k, theta);
	for (int i = 0; i < c->q; i++)
		theta[i] = -theta[i];
	k += c->q;
	partrans(c->P, v + k, Phi);
	k += c->P;
	partrans(c->Q, v + k, Theta);
	for (int i = 0; i < c->Q; i++)
		Theta[i] = -Theta[i];
	k += c->Q;
	*mu = c->constant ? v[k] : 0.0;
}

/* Raw (transformed) parameters for the coefficients in v; a block that is
 * not stationary or invertible starts from zero instead. */
static void pack_raw(const struct arma *c, double *v)
{
	int blocks[4] = { c->p, c->q, c->P, c->Q }, k = 0;

	for (int b = 0; b < 4; b++) {
		double coef[8];
		for (int i = 0; i < blocks[b]; i++)
			coef[i] = (b % 2) ? -v[k + i] : v[k + i];
		if (invpartrans(blocks[b], coef, v + k))
			memset(v + k, 0, blocks[b] * sizeof *v);
		for (int i = 0; i < blocks[b]; i++)
			v[k + i] = fmax(-RAW_MAX, fmin(RAW_MAX, v[k + i]));
		k += blocks[b];
	}
}

/* Conditional sum of squares: residuals before pp are taken as zero. The
 * non-zero coefficients are copied to local arrays and the first qq steps,
 * where some MA lags reach before the start, are split off, so the main
 * loop is branch-free: this loop is where the search spends its time. */
static double css_sse(struct arma *c, double mu)
{
	const struct poly *pl = &c->pl;
	const double *x = c->x;
	double *e = c->e, sse = 0, k0 = mu, av[64], bv[64];
	size_t ncond = (size_t)pl->pp, head = ncond + (size_t)pl->qq, al[64], bl[64];
	int na = pl->na, nb = pl->nb;

	for (int i = 0; i < na; i++) {
		al[i] = (size_t)pl->ia[i];
		av[i] = pl->a[al[i]];
		k0 -= mu * av[i];
	}
	for (int j = 0; j < nb; j++) {
		bl[j] = (size_t)pl->ib[j];
		bv[j] = pl->b[bl[j]];
	}
	for (size_t t = 0; t < ncond && t < c->m; t++)
		e[t] = 0;
	for (size_t t = ncond; t < c->m; t++) {
		double v = x[t] - k0;
		for (int i = 0; i < na; i++)
			v -= av[i] * x[t - al[i]];
		if (t < head) {
			for (int j = 0; j < nb; j++)
				if (t - ncond >= bl[j])
					v -= bv[j] * e[t - bl[j]];
		} else {
			for (int j = 0; j < nb; j++)
				v -= bv[j] * e[t - bl[j]];
		}
		e[t] = v;
		sse += v * v;
	}
	return sse;
}

/* Transition of Harvey's form: T has a_1..a_r in its first column and
 * ones on the superdiagonal; R = (1, b_1, ..., b_{r-1})'. */
static double Tcol(const struct poly *pl, int i)
{
	return i + 1 <= pl->pp ? pl->a[i + 1] : 0.0;
}

static double Rvec(const struct poly *pl, int i)
{
	return i == 0 ? 1.0 : (i <= pl->qq ? pl->b[i] : 0.0);
}

/* P = sum_k T^k R R' T'^k by doubling: P += A P A', A = A A. */
static int lyapunov(const struct poly *pl, int r, double *P, double *A, double *t1, double *t2)
{
	for (int i = 0; i < r; i++)
		for (int j = 0; j < r; j++) {
			P[i * r + j] = Rvec(pl, i) * Rvec(pl, j);
			A[i * r + j] = (j == 0 ? Tcol(pl, i) : 0.0) + (j == i + 1 ? 1.0 : 0.0);
		}
	for (int it = 0; it < 60; it++) {
		double amax = 0;
		for (int i = 0; i < r; i++)         /* t1 = A P */
			for (int j = 0; j < r; j++) {
				double acc = 0;
				for (int k = 0; k < r; k++)
					acc += A[i * r + k] * P[k * r + j];
				t1[i * r + j] = acc;
			}
		for (int i = 0; i < r; i++)         /* P += t1 A' */
			for (int j = 0; j < r; j++) {
				double acc = 0;
				for (int k = 0; k < r; k++)
					acc += t1[i * r + k] * A[j * r + k];
				t2[i * r + j] = acc;
			}
		for (int i = 0; i < r * r; i++)
			P[i] += t2[i];
		for (int i = 0; i < r; i++)         /* A = A A */
			for (int j = 0; j < r; j++) {
				double acc = 0;
				for (int k = 0; k < r; k++)
					acc += A[i * r + k] * A[k * r + j];
				t1[i * r + j] = acc;
			}
		for (int i = 0; i < r * r; i++) {
			A[i] = t1[i];
			amax = fmax(amax, fabs(A[i]));
		}
		if (amax < 1e-13)
			return 0;
		if (!isfinite(amax))
			return -1;
	}
	return 0;
}

/* Exact Gaussian likelihood with unit innovation variance: returns the sum
 * of v_t^2 / F_t and of log F_t over the m observations. */
static int kalman(struct arma *c, double mu, double *ssq, double *sumlog)
{
	const struct poly *pl = &c->pl;
	int r = c->r, fast = 0;
	double *P = c->kw, *M = P + r * r, *A = M + r * r, *t1 = A + r * r, *st = t1 + r * r;
	double *Pn = A;                   /* A is free once P0 is known */

	if (lyapunov(pl, r, P, A, t1, M))
		return -1;
	memset(st, 0, r * sizeof *st);
	*ssq = *sumlog = 0;
	for (size_t t = 0; t < c->m; t++) {
		double v = c->x[t] - mu - st[0];
		if (fast) {
			*ssq += v * v;
			for (int i = 0; i < r; i++)
				st[i] += Rvec(pl, i) * v;
		} else {
			double F = P[0], dev = 0;
			if (!(F > 0) || !isfinite(F))
				return -1;
			*ssq += v * v / F;
			*sumlog += log(F);
			for (int i = 0; i < r; i++)
				st[i] += P[i * r] * v / F;
			for (int i = 0; i < r; i++)
				for (int j = 0; j < r; j++)
					Pn[i * r + j] = P[i * r + j] - P[i * r] * P[j * r] / F;
			/* P = T Pn T' + R R', T applied by its two non-zero bands */
			for (int i = 0; i < r; i++)
				for (int j = 0; j < r; j++)
					M[i * r + j] = Tcol(pl, i) * Pn[j] +
						       (i + 1 < r ? Pn[(i + 1) * r + j] : 0.0);
			for (int i = 0; i < r; i++)
				for (int j = 0; j < r; j++) {
					double rr = Rvec(pl, i) * Rvec(pl, j);
					P[i * r + j] = Tcol(pl, j) * M[i * r] +
						       (j + 1 < r ? M[i * r + j + 1] : 0.0) + rr;
					dev = fmax(dev, fabs(P[i * r + j] - rr));
				}
			/* converged to R R': the filter is now the innovations
			 * recursion with gain R */
			fast = dev < 1e-10;
		}
		double s0 = st[0];
		for (int i = 0; i < r; i++)
			st[i] = Tcol(pl, i) * s0 + (i + 1 < r ? st[i + 1] : 0.0);
	}
	return 0;
}

static double objective(const gsl_vector *v, void *arg)
{
	struct arma *c = arg;
	double phi[8], theta[8], Phi[4], Theta[4], mu, ssq, sumlog;

	unpack(c, v->data, phi, theta, Phi, Theta, &mu);
	expand(&c->pl, c->p, c->q, c->P, c->Q, c->s, phi, theta, Phi, Theta);
	if (c->method == METHOD_CSS) {
		double sse = css_sse(c, mu);
		double f = 0.5 * log(fmax(sse / (double)(c->m - (size_t)c->pl.pp), 1e-300));
		return isfinite(f) ? f : GSL_POSINF;
	}
	if (kalman(c, mu, &ssq, &sumlog))
		return GSL_POSINF;
	double f = 0.5 * (log(fmax(ssq / (double)c->m, 1e-300)) + sumlog / (double)c->m);
	return isfinite(f) ? f : GSL_POSINF;
}

/* Central differences, 2k + 1 evaluations: forward differences are
 * cheaper but their O(h) error is enough to stall BFGS on the narrow
 * ridges that near-redundant ARMA models produce. */
static void objfdf(const gsl_vector *v, void *arg, double *f, gsl_vector *g)
{
	double buf[MAXPAR];
	gsl_vector_view w = gsl_vector_view_array(buf, v->size);

	*f = objective(v, arg);
	memcpy(buf, v->data, v->size * sizeof(double));
	for (size_t i = 0; i < v->size; i++) {
		double h = 1e-5 * fmax(1.0, fabs(buf[i]));
		buf[i] = v->data[i] + h;
		double fp = objective(&w.vector, arg);
		buf[i] = v->data[i] - h;
		double fm = objective(&w.vector, arg);
		gsl_vector_set(g, i, isfinite(fp) && isfinite(fm) ? (fp - fm) / (2 * h) : 0.0);
		buf[i] = v->data[i];
	}
}

static void objdf(const gsl_vector *v, void *arg, gsl_vector *g)
{
	double f;

	objfdf(v, arg, &f, g);
}

static double nelder_mead(struct arma *c, double *v, int k)
{
	gsl_multimin_function fn = { objective, (size_t)k, c };
	gsl_vector_view x = gsl_vector_view_array(v, k);
	gsl_vector *step = gsl_vector_alloc(k);
	gsl_multimin_fminimizer *s = gsl_multimin_fminimizer_alloc(gsl_multimin_fminimizer_nmsimplex2, k);
	double f = GSL_POSINF;

	if (!step || !s)
		goto cleanup;
	gsl_vector_set_all(step, 0.1);
	if (gsl_multimin_fminimizer_set(s, &fn, &x.vector, step) != GSL_SUCCESS)
		goto cleanup;
	for (int it = 0; it < 1000; it++) {
		if (gsl_multimin_fminimizer_iterate(s))
			break;
		if (gsl_multimin_test_size(gsl_multimin_fminimizer_size(s), 1e-5) == GSL_SUCCESS)
			break;
	}
	f = s->fval;
	memcpy(v, s->x->data, k * sizeof *v);
cleanup:
	gsl_multimin_fminimizer_free(s);
	gsl_vector_free(step);
	return f;
}

/* On the transformed scale a partial autocorrelation past tanh(RAW_STOP)
 * means the fit is heading for a unit root (exact ML piles up there when
 * a series is over-differenced). auto.arima rejects such fits anyway, and
 * BFGS would crawl along the flat tanh tail for hundreds of iterations,
 * so the optimisation stops where it is. */
static int at_boundary(const struct arma *c, const double *v, int k)
{
	if (!c->transform)
		return 0;
	for (int i = 0; i < k - c->constant; i++)
		if (fabs(v[i]) > RAW_STOP)
			return 1;
	return 0;
}

/* BFGS from v; Nelder-Mead when BFGS ends somewhere non-finite. Returns
 * the objective at the optimum. */
static double optimise(struct arma *c, double *v, int k)
{
	gsl_multimin_function_fdf fdf = { objective, objdf, objfdf, (size_t)k, c };
	gsl_multimin_fdfminimizer *s;
	double f = GSL_POSINF, save[MAXPAR];

	if (k == 0) {
		gsl_vector_view x = gsl_vector_view_array(v, 1);
		return objective(&x.vector, c);
	}
	memcpy(save, v, k * sizeof *v);
	s = gsl_multimin_fdfminimizer_alloc(gsl_multimin_fdfminimizer_vector_bfgs2, k);
	if (s) {
		gsl_vector_view x = gsl_vector_view_array(v, k);
		if (gsl_multimin_fdfminimizer_set(s, &fdf, &x.vector, 0.1, 0.1) == GSL_SUCCESS) {
			/* Stop when an iteration gains less than ftol in the
			 * per-observation objective: 1e-4 in the log-likelihood,
			 * far below what changes an AICc ranking. */
			double ftol = 1e-4 / (double)c->m, fprev = s->f;
			for (int it = 0; it < c->maxit; it++) {
				if (gsl_multimin_fdfminimizer_iterate(s))
					break;
				if (gsl_multimin_test_gradient(s->gradient, 1e-5) == GSL_SUCCESS ||
				    fprev - s->f < ftol || at_boundary(c, s->x->data, k))
					break;
				fprev = s->f;
			}
			f = s->f;
			memcpy(v, s->x->data, k * sizeof *v);
		}
		gsl_multimin_fdfminimizer_free(s);
	}
	for (int i = 0; i < k; i++)
		if (!isfinite(v[i]))
			f = GSL_POSINF;
	if (!isfinite(f)) {
		memcpy(v, save, k * sizeof *v);
		f = nelder_mead(c, v, k);
	}
	return f;
}

/* Hannan-Rissanen starting values for the non-seasonal part: a long AR
 * by Yule-Walker estimates the innovations, then least squares of x_t on
 * its own lags and the lagged innovations. Starting near the optimum is
 * what keeps the search cheap; on any trouble v stays at zero. */
static void hannan_rissanen(struct arma *c, double *v)
{
	const double *x = c->x;
	double r[41], a[41] = { 0 }, tmp[41], A[16 * 16] = { 0 }, rhs[16] = { 0 }, z[16];
	double vv, *e = c->e;
	int p = c->p, q = c->q, k = p + q, kk = 2 * k > 10 ? 2 * k : 10;
	size_t m = c->m;

	if (q == 0 || (size_t)kk * 10 > m)      /* pure AR: CSS is least squares already */
		return;
	if (kk > 40)
		kk = 40;
	for (int l = 0; l <= kk; l++) {
		r[l] = 0;
		for (size_t t = (size_t)l; t < m; t++)
			r[l] += x[t] * x[t - l];
	}
	vv = r[0];
	for (int j = 1; j <= kk; j++) {           /* Durbin-Levinson */
		double acc = r[j], kap;
		for (int i = 1; i < j; i++)
			acc -= a[i] * r[j - i];
		kap = acc / vv;
		if (!(fabs(kap) < 1))
			return;
		for (int i = 1; i < j; i++)
			tmp[i] = a[i] - kap * a[j - i];
		for (int i = 1; i < j; i++)
			a[i] = tmp[i];
		a[j] = kap;
		vv *= 1 - kap * kap;
	}
	for (size_t t = 0; t < m; t++) {
		e[t] = 0;
		if (t >= (size_t)kk) {
			e[t] = x[t];
			for (int i = 1; i <= kk; i++)
				e[t] -= a[i] * x[t - i];
		}
	}
	for (size_t t = (size_t)(kk + q); t < m; t++) {   /* normal equations */
		for (int i = 0; i < p; i++)
			z[i] = x[t - 1 - i];
		for (int j = 0; j < q; j++)
			z[p + j] = e[t - 1 - j];
		for (int i = 0; i < k; i++) {
			rhs[i] += z[i] * x[t];
			for (int j = 0; j <= i; j++)
				A[i * k + j] += z[i] * z[j];
		}
	}
	for (int j = 0; j < k; j++) {             /* Cholesky, lower triangle */
		for (int l = 0; l < j; l++)
			A[j * k + j] -= A[j * k + l] * A[j * k + l];
		if (!(A[j * k + j] > 1e-12 * (r[0] + 1e-300)))
			return;
		A[j * k + j] = sqrt(A[j * k + j]);
		for (int i = j + 1; i < k; i++) {
			for (int l = 0; l < j; l++)
				A[i * k + j] -= A[i * k + l] * A[j * k + l];
			A[i * k + j] /= A[j * k + j];
		}
	}
	for (int i = 0; i < k; i++) {
		for (int l = 0; l < i; l++)
			rhs[i] -= A[i * k + l] * rhs[l];
		rhs[i] /= A[i * k + i];
	}
	for (int i = k - 1; i >= 0; i--) {
		for (int l = i + 1; l < k; l++)
			rhs[i] -= A[l * k + i] * rhs[l];
		rhs[i] /= A[i * k + i];
	}
	/* only a stationary, invertible start: an explosive CSS recursion
	 * would make the first BFGS steps meaningless */
	double raw[16], negth[8];
	for (int j = 0; j < q; j++)
		negth[j] = -rhs[p + j];
	if (invpartrans(p, rhs, raw) || invpartrans(q, negth, raw))
		return;
	memcpy(v, rhs, (size_t)k * sizeof *v);
}

/* ---- one model --------------------------------------------------------------- */

/* The differenced series and the buffers shared by every model fitted on
 * it during a search. */
struct work {
	const double *w;
	size_t m;
	unsigned s;
	double mean, sd, rms;
	double *xc, *xu;      /* (w - mean) / sd and w / rms */
	double *e, *kw;
	int rmax;
	int search;           /* fits rank models: fewer iterations suffice */
};

struct est {
	int p, q, P, Q, constant, method;
	double phi[8], theta[8], Phi[4], Theta[4], mu, sigma2, loglik, aicc;
};

static int work_init(struct work *wk, const double *w, size_t m, unsigned s, int rmax)
{
	memset(wk, 0, sizeof *wk);
	wk->w = w;
	wk->m = m;
	wk->s = s;
	wk->rmax = rmax;
	for (size_t t = 0; t < m; t++)
		wk->mean += w[t] / (double)m;
	for (size_t t = 0; t < m; t++) {
		wk->sd += (w[t] - wk->mean) * (w[t] - wk->mean);
		wk->rms += w[t] * w[t];
	}
	wk->sd = sqrt(wk->sd / (double)m);
	wk->rms = sqrt(wk->rms / (double)m);
	wk->xc = malloc(m * sizeof(double));
	wk->xu = malloc(m * sizeof(double));
	wk->e = malloc(m * sizeof(double));
	wk->kw = malloc(((size_t)4 * rmax * rmax + rmax) * sizeof(double));
	if (!wk->xc || !wk->xu || !wk->e || !wk->kw)
		return -1;
	for (size_t t = 0; t < m; t++) {
		wk->xc[t] = wk->sd > 0 ? (w[t] - wk->mean) / wk->sd : 0.0;
		wk->xu[t] = wk->rms > 0 ? w[t] / wk->rms : 0.0;
	}
	return 0;
}

static void work_free(struct work *wk)
{
	free(wk->xc);
	free(wk->xu);
	free(wk->e);
	free(wk->kw);
}

/* A series with (numerically) no variation around the model's centre is
 * fitted exactly: zero coefficients and zero variance. */
static void exact_fit(const struct work *wk, struct est *o)
{
	memset(o->phi, 0, sizeof o->phi);
	memset(o->theta, 0, sizeof o->theta);
	memset(o->Phi, 0, sizeof o->Phi);
	memset(o->Theta, 0, sizeof o->Theta);
	o->mu = o->constant ? wk->mean : 0.0;
	o->sigma2 = 0;
	o->loglik = INFINITY;
	o->aicc = -INFINITY;
}

/* Fits ARMA(p,q)(P,Q)[s] to the differenced series: CSS, then ML when
 * `method` asks for it. -1 when the series is too short for the model or
 * no finite optimum was found. */
static int estimate(struct work *wk, int p, int q, int P, int Q, int constant, int method,
		    const struct est *start, struct est *o)
{
	struct arma c;
	double v[MAXPAR] = { 0 }, scale, f, ssq, sumlog;
	int k = p + q + P + Q + constant, npar = k + 1;
	size_t ncond = (size_t)p + (size_t)wk->s * P;

	memset(o, 0, sizeof *o);
	o->p = p, o->q = q, o->P = P, o->Q = Q, o->constant = constant, o->method = method;
	if (wk->m <= ncond + (size_t)npar + 1)
		return -1;
	scale = constant ? wk->sd : wk->rms;
	if (!(scale > 1e-10 * fmax(1.0, fabs(wk->mean)))) {
		exact_fit(wk, o);
		return 0;
	}
	memset(&c, 0, sizeof c);
	c.x = constant ? wk->xc : wk->xu;
	c.m = wk->m, c.s = wk->s, c.p = p, c.q = q, c.P = P, c.Q = Q, c.constant = constant;
	c.npar = k, c.e = wk->e, c.kw = wk->kw;
	c.r = p + (int)wk->s * P;
	if (c.r < q + (int)wk->s * Q + 1)
		c.r = q + (int)wk->s * Q + 1;
	if (c.r > wk->rmax)
		return -1;
	c.method = METHOD_CSS;
	c.maxit = wk->search ? SEARCH_MAXIT : BFGS_MAXIT;
	if (start) {            /* refit of a search winner: its CSS estimate */
		int j = 0;
		memcpy(v + j, start->phi, p * sizeof *v), j += p;
		memcpy(v + j, start->theta, q * sizeof *v), j += q;
		memcpy(v + j, start->Phi, P * sizeof *v), j += P;
		memcpy(v + j, start->Theta, Q * sizeof *v), j += Q;
		if (constant)
			v[j] = (start->mu - wk->mean) / wk->sd;
		f = 0;
	} else {
		hannan_rissanen(&c, v);
		f = optimise(&c, v, k);
	}
	if (method == METHOD_ML) {
		double vcss[MAXPAR];
		memcpy(vcss, v, sizeof v);
		pack_raw(&c, v);
		c.method = METHOD_ML;
		c.transform = 1;
		c.maxit = BFGS_MAXIT;
		f = optimise(&c, v, k);
		if (!isfinite(f)) {     /* keep the CSS estimate */
			memcpy(v, vcss, sizeof v);
			c.method = METHOD_CSS;
			c.transform = 0;
			o->method = METHOD_CSS;
		}
	}
	if (!isfinite(f))
		return -1;
	/* final evaluation at the optimum for sigma2 and the log-likelihood */
	unpack(&c, v, o->phi, o->theta, o->Phi, o->Theta, &o->mu);
	expand(&c.pl, p, q, P, Q, wk->s, o->phi, o->theta, o->Phi, o->Theta);
	if (c.method == METHOD_CSS) {
		o->sigma2 = css_sse(&c, o->mu) / (double)(wk->m - ncond);
		o->loglik = -0.5 * (double)wk->m * (log(2 * M_PI * o->sigma2) + 1);
	} else {
		if (kalman(&c, o->mu, &ssq, &sumlog))
			return -1;
		o->sigma2 = ssq / (double)wk->m;
		o->loglik = -0.5 * ((double)wk->m * (log(2 * M_PI * o->sigma2) + 1) + sumlog);
	}
	/* back to the data's units */
	o->sigma2 *= scale * scale;
	o->loglik -= (double)wk->m * log(scale);
	o->mu = constant ? wk->mean + o->mu * wk->sd : 0.0;
	o->aicc = -2 * o->loglik + 2.0 * npar +
		  2.0 * npar * (npar + 1) / ((double)wk->m - npar - 1);
	if (!isfinite(o->aicc))
		return -1;
	return 0;
}

/* auto.arima's guard against near-unit roots in the fitted polynomials. */
static int roots_ok(const struct est *o, unsigned s)
{
	return min_root(o->phi, o->p, -1, 1) > MIN_ROOT && min_root(o->Phi, o->P, -1, s) > MIN_ROOT &&
	       min_root(o->theta, o->q, 1, 1) > MIN_ROOT && min_root(o->Theta, o->Q, 1, s) > MIN_ROOT;
}

/* ---- the public fit ----------------------------------------------------------- */

static void describe(struct us_arima_fit *fit)
{
	char seas[32] = "";
	const char *tail = "";
	int sea = fit->P || fit->D || fit->Q;

	if (sea)
		snprintf(seas, sizeof seas, "(%d,%d,%d)[%u]", fit->P, fit->D, fit->Q, fit->period);
	if (fit->constant)
		tail = fit->d + fit->D == 1 ? " with drift" : " with non-zero mean";
	else if (fit->d + fit->D == 0)
		tail = " with zero mean";
	snprintf(fit->description, sizeof fit->description, "ARIMA(%d,%d,%d)%s%s", fit->p, fit->d,
		 fit->q, seas, tail);
}

/* Differenced copy of y: (1-B^s)^D then (1-B)^d. Sets *m. */
static double *diff_series(const double *y, size_t n, int d, int D, unsigned s, size_t *m)
{
	double *w = malloc(n * sizeof *w);

	if (!w)
		return NULL;
	memcpy(w, y, n * sizeof *w);
	*m = n;
	for (int i = 0; i < D; i++)
		*m = difference(w, *m, s);
	for (int i = 0; i < d; i++)
		*m = difference(w, *m, 1);
	return w;
}

/* Fills the public struct from an estimate: orders, coefficients, a copy
 * of y and the residuals the forecast recursion starts from. */
static int finish(struct us_arima_fit *fit, const struct est *o, const double *y, size_t n,
		  int d, int D, unsigned s, const double *w, size_t m)
{
	struct poly *pl = malloc(sizeof *pl);
	size_t L = n - m;

	fit->p = o->p, fit->q = o->q, fit->P = o->P, fit->Q = o->Q;
	fit->d = d, fit->D = D, fit->period = s;
	fit->constant = o->constant, fit->method = o->method;
	memcpy(fit->phi, o->phi, sizeof fit->phi);
	memcpy(fit->theta, o->theta, sizeof fit->theta);
	memcpy(fit->Phi, o->Phi, sizeof fit->Phi);
	memcpy(fit->Theta, o->Theta, sizeof fit->Theta);
	fit->mu = o->mu, fit->sigma2 = o->sigma2, fit->loglik = o->loglik, fit->aicc = o->aicc;
	describe(fit);
	fit->n = n;
	fit->y = malloc(n * sizeof(double));
	fit->resid = calloc(n, sizeof(double));
	if (!pl || !fit->y || !fit->resid) {
		free(pl);
		return -1;
	}
	memcpy(fit->y, y, n * sizeof(double));
	expand(pl, o->p, o->q, o->P, o->Q, s, o->phi, o->theta, o->Phi, o->Theta);
	struct arma c = { .x = w, .m = m, .pl = *pl, .e = fit->resid + L };
	css_sse(&c, o->mu);
	free(pl);
	return 0;
}

static int check_orders(unsigned s, int p, int d, int q, int P, int D, int Q, char *err,
			size_t errlen)
{
	if (p < 0 || p > 8 || q < 0 || q > 8 || P < 0 || P > 4 || Q < 0 || Q > 4 || d < 0 ||
	    d > 2 || D < 0 || D > 1) {
		seterr(err, errlen, "orders out of range: need p,q <= 8, P,Q <= 4, d <= 2, D <= 1");
		return -1;
	}
	if ((P || D || Q) && s < 2) {
		seterr(err, errlen, "seasonal orders need a period of at least 2");
		return -1;
	}
	if ((P || D || Q) && s > US_ARIMA_MAX_PERIOD) {
		seterr(err, errlen,
		       "seasonal period %u > %d not supported: use ARIMA on the seasonally adjusted series",
		       s, US_ARIMA_MAX_PERIOD);
		return -1;
	}
	return 0;
}

int us_arima_fit_order(const double *y, size_t n, unsigned period, int p, int d, int q, int P,
		       int D, int Q, int constant, struct us_arima_fit *fit, char *err, size_t errlen)
{
	struct work wk = { 0 };
	struct est o;
	double *w = NULL;
	size_t m = 0;
	unsigned s = (P || D || Q) ? period : 0;
	int rc = -1;

	gsl_set_error_handler_off();
	memset(fit, 0, sizeof *fit);
	if (check_series(y, n, 3, err, errlen) ||
	    check_orders(period, p, d, q, P, D, Q, err, errlen))
		return -1;
	constant = constant && d + D <= 1;
	w = diff_series(y, n, d, D, s, &m);
	if (!w || work_init(&wk, w, m, s, 8 + 4 * (int)s + 1)) {
		seterr(err, errlen, "out of memory");
		goto cleanup;
	}
	if (m == 0 || estimate(&wk, p, q, P, Q, constant, METHOD_ML, NULL, &o)) {
		seterr(err, errlen, "cannot fit ARIMA(%d,%d,%d)(%d,%d,%d)[%u] to %zu points: "
		       "too few observations or no finite likelihood", p, d, q, P, D, Q, s, n);
		goto cleanup;
	}
	if (finish(fit, &o, y, n, d, D, s, w, m)) {
		seterr(err, errlen, "out of memory");
		goto cleanup;
	}
	rc = 0;
cleanup:
	if (rc)
		us_arima_free(fit);
	work_free(&wk);
	free(w);
	return rc;
}

/* ---- automatic selection ------------------------------------------------------ */

struct search {
	struct work *wk;
	int method, maxp, maxq, maxP, maxQ, allow_const;
	int n;
	struct est tried[MAX_MODELS];
	int ok[MAX_MODELS];
};

/* AICc of a model, fitting it unless it was already tried; INFINITY when
 * out of bounds, unfittable or too close to a unit root. */
static double try_model(struct search *sr, int p, int q, int P, int Q, int constant)
{
	if (p < 0 || q < 0 || P < 0 || Q < 0 || p > sr->maxp || q > sr->maxq || P > sr->maxP ||
	    Q > sr->maxQ || p + q + P + Q > 5 || (constant && !sr->allow_const))
		return INFINITY;
	for (int i = 0; i < sr->n; i++) {
		const struct est *t = &sr->tried[i];
		if (t->p == p && t->q == q && t->P == P && t->Q == Q && t->constant == constant)
			return sr->ok[i] ? t->aicc : INFINITY;
	}
	if (sr->n >= MAX_MODELS)
		return INFINITY;
	struct est *o = &sr->tried[sr->n];
	int ok = estimate(sr->wk, p, q, P, Q, constant, sr->method, NULL, o) == 0 &&
		 roots_ok(o, sr->wk->s);
	o->p = p, o->q = q, o->P = P, o->Q = Q, o->constant = constant;
	sr->ok[sr->n++] = ok;
	return ok ? o->aicc : INFINITY;
}

/* Hyndman-Khandakar stepwise search; the current best ends in *b. */
static void stepwise(struct search *sr, struct est *b)
{
	static const signed char moves[16][4] = {
		{ 0, 0, -1, 0 }, { 0, 0, 1, 0 }, { 0, 0, 0, -1 }, { 0, 0, 0, 1 },
		{ 0, 0, -1, -1 }, { 0, 0, -1, 1 }, { 0, 0, 1, -1 }, { 0, 0, 1, 1 },
		{ -1, 0, 0, 0 }, { 1, 0, 0, 0 }, { 0, -1, 0, 0 }, { 0, 1, 0, 0 },
		{ -1, -1, 0, 0 }, { -1, 1, 0, 0 }, { 1, -1, 0, 0 }, { 1, 1, 0, 0 },
	};
	int sea = sr->maxP > 0 || sr->maxQ > 0;
	int starts[4][4] = { { 2, 2, sea, sea }, { 0, 0, 0, 0 }, { 1, 0, sea, 0 }, { 0, 1, 0, sea } };
	double best = INFINITY;
	int cur[5] = { 0 };

	for (int i = 0; i < 4; i++) {
		double ic = try_model(sr, starts[i][0], starts[i][1], starts[i][2], starts[i][3],
				      sr->allow_const);
		if (ic < best) {
			best = ic;
			memcpy(cur, starts[i], sizeof starts[i]);
			cur[4] = sr->allow_const;
		}
	}
	if (sr->allow_const) {
		double ic = try_model(sr, 0, 0, 0, 0, 0);
		if (ic < best) {
			best = ic;
			memset(cur, 0, sizeof cur);
		}
	}
	for (int improved = isfinite(best); improved && sr->n < MAX_MODELS;) {
		improved = 0;
		for (int i = 0; i < 17 && !improved; i++) {
			int c[5];
			memcpy(c, cur, sizeof c);
			if (i < 16) {
				c[0] += moves[i][0], c[1] += moves[i][1];
				c[2] += moves[i][2], c[3] += moves[i][3];
			} else {
				c[4] = !c[4];
			}
			double ic = try_model(sr, c[0], c[1], c[2], c[3], c[4]);
			if (ic < best) {
				best = ic;
				memcpy(cur, c, sizeof c);
				improved = 1;
			}
		}
	}
	memset(b, 0, sizeof *b);
	b->aicc = INFINITY;
	for (int i = 0; i < sr->n; i++)
		if (sr->ok[i] && sr->tried[i].p == cur[0] && sr->tried[i].q == cur[1] &&
		    sr->tried[i].P == cur[2] && sr->tried[i].Q == cur[3] &&
		    sr->tried[i].constant == cur[4])
			*b = sr->tried[i];
}

/* After a CSS search the winner is refitted by ML; if that fit fails or
 * lands on a near-unit root, the next best CSS model is tried. Each failed
 * refit of a long series costs a Kalman filter that never reaches steady
 * state, so after ML_REFITS failures the best remaining CSS fit (its roots
 * already checked) is kept as it is, with method = CSS. */
static int refit_ml(struct search *sr, struct est *b)
{
	for (int tries = 0; tries < sr->n; tries++) {
		int bi = -1;
		for (int i = 0; i < sr->n; i++)
			if (sr->ok[i] && (bi < 0 || sr->tried[i].aicc < sr->tried[bi].aicc))
				bi = i;
		if (bi < 0)
			return -1;
		const struct est *t = &sr->tried[bi];
		if (tries >= ML_REFITS) {
			*b = *t;
			return 0;
		}
		if (estimate(sr->wk, t->p, t->q, t->P, t->Q, t->constant, METHOD_ML, t, b) == 0 &&
		    roots_ok(b, sr->wk->s))
			return 0;
		sr->ok[bi] = 0;
	}
	return -1;
}

int us_arima_auto(const double *y, size_t n, unsigned period, struct us_arima_fit *fit,
		  char *err, size_t errlen)
{
	struct work wk = { 0 };
	struct search *sr = NULL;
	struct est best;
	double *w = NULL;
	size_t m = 0;
	unsigned s = period > 1 ? period : 0;
	int d, D, rc = -1;
	char note[128] = "";

	gsl_set_error_handler_off();
	memset(fit, 0, sizeof *fit);
	if (err && errlen)
		err[0] = 0;
	if (check_series(y, n, AUTO_MIN_N, err, errlen))
		return -1;
	if (s > US_ARIMA_MAX_PERIOD) {
		snprintf(note, sizeof note,
			 "seasonal period %u > %d: seasonal terms refused, "
			 "use ARIMA on the seasonally adjusted series", s, US_ARIMA_MAX_PERIOD);
		s = 0;
	}
	D = s ? us_arima_nsdiffs(y, n, s) : 0;
	w = diff_series(y, n, 0, D, s, &m);
	if (!w)
		goto oom;
	d = us_arima_ndiffs(w, m);
	for (int i = 0; i < d; i++)
		m = difference(w, m, 1);
	if (m < 3) {
		seterr(err, errlen, "series too short after differencing (d=%d, D=%d)", d, D);
		goto cleanup;
	}
	sr = calloc(1, sizeof *sr);
	if (!sr || work_init(&wk, w, m, s, 5 + 2 * (int)s + 1))
		goto oom;
	sr->wk = &wk;
	sr->allow_const = d + D <= 1;
	sr->maxp = sr->maxq = 5;
	sr->maxP = sr->maxQ = s ? 2 : 0;
	if (s && s - 1 < 5)     /* lags beyond the period belong to P, Q */
		sr->maxp = sr->maxq = (int)s - 1;
	if (is_constant(w, m)) {
		best.p = best.q = best.P = best.Q = 0;
		best.constant = sr->allow_const;
		best.method = METHOD_ML;
		exact_fit(&wk, &best);
	} else {
		/* R's approximation: CSS during the search for long series */
		sr->method = (n > 150 || s > 12) ? METHOD_CSS : METHOD_ML;
		wk.search = sr->method == METHOD_CSS;
		stepwise(sr, &best);
		wk.search = 0;
		if (sr->method == METHOD_CSS ? refit_ml(sr, &best) : !isfinite(best.aicc)) {
			seterr(err, errlen, "no ARIMA model could be fitted to %zu points", n);
			goto cleanup;
		}
	}
	if (finish(fit, &best, y, n, d, D, s ? s : period, w, m))
		goto oom;
	snprintf(fit->note, sizeof fit->note, "%s", note);
	seterr(err, errlen, "%s", note);
	rc = 0;
	goto cleanup;
oom:
	seterr(err, errlen, "out of memory");
cleanup:
	if (rc)
		us_arima_free(fit);
	work_free(&wk);
	free(sr);
	free(w);
	return rc;
}

/* ---- forecasting --------------------------------------------------------------- */

/* Coefficients of (1-B)^d (1-B^s)^D: delta[0] = 1, degree returned. */
static int diff_poly(int d, int D, unsigned s, double *delta, int cap)
{
	int deg = 0;

	memset(delta, 0, (size_t)cap * sizeof *delta);
	delta[0] = 1;
	for (int k = 0; k < d + D; k++) {
		int lag = k < d ? 1 : (int)s;
		for (int i = deg + lag; i >= lag; i--)
			delta[i] -= delta[i - lag];
		deg += lag;
	}
	return deg;
}

int us_arima_forecast(const struct us_arima_fit *fit, size_t h, double *mean, double *se)
{
	struct poly *pl = NULL;
	double *buf = NULL, *delta, *yx, *wx, *g, *psi;
	unsigned s = (fit->P || fit->D || fit->Q) ? fit->period : 0;
	int L, deg, rc = -1;
	size_t n = fit->n;

	if (!fit->y || !mean || h == 0)
		return h == 0 ? 0 : -1;
	pl = malloc(sizeof *pl);
	buf = malloc((size_t)(3 * MAXPP + 16 + 2 * (n + h) + h) * sizeof(double));
	if (!pl || !buf)
		goto cleanup;
	delta = buf;
	L = diff_poly(fit->d, fit->D, s, delta, MAXPP + 8);
	g = delta + MAXPP + 8;
	yx = g + 2 * MAXPP + 8;
	wx = yx + n + h;
	psi = wx + n + h;
	expand(pl, fit->p, fit->q, fit->P, fit->Q, s, fit->phi, fit->theta, fit->Phi, fit->Theta);
	/* w on the index of y (w_t defined for t >= L), extended by forecasts:
	 * w_t = mu + sum a_i (w_{t-i} - mu) + sum b_j e_{t-j}, future e = 0 */
	memcpy(yx, fit->y, n * sizeof *yx);
	for (size_t t = (size_t)L; t < n; t++) {
		wx[t] = 0;
		for (int k = 0; k <= L; k++)
			wx[t] += delta[k] * yx[t - k];
	}
	for (size_t j = 0; j < h; j++) {
		size_t t = n + j;
		double v = fit->mu;
		for (int i = 1; i <= pl->pp; i++)
			if (t >= (size_t)(L + i))
				v += pl->a[i] * (wx[t - i] - fit->mu);
		for (int k = 1; k <= pl->qq; k++)
			if (t - k < n && t >= (size_t)k)
				v += pl->b[k] * fit->resid[t - k];
		wx[t] = v;
		/* undo the differencing: y_t = w_t - sum_{k>=1} delta_k y_{t-k} */
		yx[t] = v;
		for (int k = 1; k <= L; k++)
			yx[t] -= delta[k] * yx[t - k];
		mean[j] = yx[t];
	}
	if (se) {
		/* psi weights of b(B) / (a(B) delta(B)) */
		deg = pl->pp + L;
		memset(g, 0, (size_t)(deg + 1) * sizeof *g);
		for (int i = 0; i <= pl->pp; i++)
			for (int k = 0; k <= L; k++)
				g[i + k] += (i == 0 ? 1.0 : -pl->a[i]) * delta[k];
		double acc = 0;
		for (size_t j = 0; j < h; j++) {
			psi[j] = j == 0 ? 1.0 : ((int)j <= pl->qq ? pl->b[j] : 0.0);
			for (int k = 1; k <= deg && (size_t)k <= j; k++)
				psi[j] -= g[k] * psi[j - k];
			acc += psi[j] * psi[j];
			se[j] = sqrt(fit->sigma2 * acc);
		}
	}
	rc = 0;
cleanup:
	free(pl);
	free(buf);
	return rc;
}

double us_arima_loglik(const struct us_arima_fit *fit, const double *y, size_t n)
{
	unsigned s = (fit->P || fit->D || fit->Q) ? fit->period : 0;
	struct arma *c = calloc(1, sizeof *c);
	double *w = NULL, ssq, sumlog, ll = NAN;
	size_t m = 0;

	if (!c || s > US_ARIMA_MAX_PERIOD || !(fit->sigma2 > 0))
		goto cleanup;
	w = diff_series(y, n, fit->d, fit->D, s, &m);
	if (!w || m == 0)
		goto cleanup;
	expand(&c->pl, fit->p, fit->q, fit->P, fit->Q, s, fit->phi, fit->theta, fit->Phi,
	       fit->Theta);
	c->x = w, c->m = m;
	c->r = c->pl.pp > c->pl.qq + 1 ? c->pl.pp : c->pl.qq + 1;
	c->kw = malloc(((size_t)4 * c->r * c->r + c->r) * sizeof(double));
	if (c->kw && kalman(c, fit->constant ? fit->mu : 0.0, &ssq, &sumlog) == 0)
		ll = -0.5 * ((double)m * log(2 * M_PI * fit->sigma2) + sumlog + ssq / fit->sigma2);
	free(c->kw);
cleanup:
	free(c);
	free(w);
	return ll;
}

void us_arima_free(struct us_arima_fit *fit)
{
	if (!fit)
		return;
	free(fit->y);
	free(fit->resid);
	fit->y = fit->resid = NULL;
	fit->n = 0;
}
