/* Exponential smoothing state-space models, ETS(E,T,S) of Hyndman, Koehler,
 * Ord & Snyder (2008): additive or multiplicative error, no/additive/damped
 * trend, no/additive/multiplicative seasonality with period m <= 52.
 *
 * Every model is run in error-correction form on the absolute one-step error
 * ea = y - yhat; the additive- and multiplicative-error models share the same
 * state updates for the same ea and differ only in their likelihood (the
 * multiplicative one is Gaussian in ea / yhat). Parameters are estimated by
 * maximum likelihood with GSL's Nelder-Mead simplex on logistic transforms
 * that keep 0 < alpha < 1, 0 < beta < alpha, 0 < gamma < 1 - alpha and
 * 0.8 < phi < 0.98 (the usual admissible region, as R's ets()). Initial
 * seasonal states come from the first periods (a classical decomposition),
 * as in R's ets(); l0 and b0 are estimated with the smoothing parameters. */
#include "forecast_impl.h"

#include <gsl/gsl_errno.h>
#include <gsl/gsl_multimin.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#define PHI_LO 0.8
#define PHI_SPAN 0.18
#define NM_MAX_ITER 300

struct ets_state {
	double l, b;
	double s[US_ETS_MAX_M];     /* s[j]: seasonal state of phase j (t mod m) */
};

static int has_mult(const struct us_ets_spec *sp)
{
	return sp->error == US_ETS_M || sp->season == US_ETS_M;
}

/* One-step mean of the level+trend part, j steps ahead of the state. */
static double trend_sum(const struct us_ets_spec *sp, double phi, size_t j)
{
	double s = 0, p = 1;

	if (sp->trend == US_ETS_A)
		return (double)j;
	if (sp->trend != US_ETS_AD)
		return 0;
	for (size_t i = 0; i < j; i++) {
		p *= phi;
		s += p;
	}
	return s;
}

/* Runs the recursions over y; returns 0, or -1 when a multiplicative
 * component meets a non-positive fitted value. */
static int ets_run(const double *y, size_t n, const struct us_ets_spec *sp,
		   const struct us_ets_par *p, double *sse, double *sumlog, struct ets_state *st)
{
	unsigned m = sp->season != US_ETS_N ? sp->m : 1;
	double phi = sp->trend == US_ETS_AD ? p->phi : 1.0;
	int mult = has_mult(sp);

	st->l = p->l0;
	st->b = sp->trend != US_ETS_N ? p->b0 : 0;
	for (unsigned j = 0; j < m; j++)
		st->s[j] = sp->season == US_ETS_N ? 0 : p->s0[j];
	*sse = 0;
	*sumlog = 0;
	for (size_t t = 0; t < n; t++) {
		double lb = st->l + (sp->trend != US_ETS_N ? phi * st->b : 0);
		double sv = st->s[t % m];
		double yhat = sp->season == US_ETS_A ? lb + sv : sp->season == US_ETS_M ? lb * sv : lb;
		double ea, e;

		if (mult && (!(yhat > 0) || !(lb > 0)))
			return -1;
		ea = y[t] - yhat;
		e = sp->error == US_ETS_M ? ea / yhat : ea;
		*sse += e * e;
		if (sp->error == US_ETS_M)
			*sumlog += log(yhat);
		if (sp->season == US_ETS_M) {
			st->l = lb + p->alpha * ea / sv;
			st->b = phi * st->b + p->beta * ea / sv;
			st->s[t % m] = sv + p->gamma * ea / lb;
		} else {
			st->l = lb + p->alpha * ea;
			st->b = phi * st->b + p->beta * ea;
			if (sp->season == US_ETS_A)
				st->s[t % m] = sv + p->gamma * ea;
		}
	}
	return isfinite(*sse) ? 0 : -1;
}

double us_ets_loglik(const double *y, size_t n, const struct us_ets_spec *spec,
		     const struct us_ets_par *par, double *sse_out)
{
	struct ets_state st;
	double sse, sumlog, ll;

	if (n == 0 || ets_run(y, n, spec, par, &sse, &sumlog, &st) < 0)
		return -INFINITY;
	if (sse_out)
		*sse_out = sse;
	if (sse <= 0)
		sse = 1e-300;   /* a perfect fit: finite, very large likelihood */
	ll = -0.5 * (double)n * (log(2 * M_PI * sse / (double)n) + 1);
	return ll - sumlog;
}

/* ---- initial states ------------------------------------------------------ */

static double mean_of(const double *y, size_t n)
{
	double s = 0;

	for (size_t i = 0; i < n; i++)
		s += y[i];
	return n ? s / (double)n : 0;
}

/* l0, b0 and s0 from the start of y: seasonal indices from up to the first
 * three whole periods around their period means, level and slope from the
 * seasonally adjusted first points. */
static void ets_init(const double *y, size_t n, const struct us_ets_spec *sp,
		     struct us_ets_par *p)
{
	unsigned m = sp->season != US_ETS_N ? sp->m : 0;
	size_t k = 10 < n ? 10 : n;

	memset(p, 0, sizeof(*p));
	if (m >= 2) {
		size_t np = n / m < 3 ? n / m : 3;
		double tot = 0;

		for (size_t c = 0; c < np; c++) {
			double pm = mean_of(y + c * m, m);

			for (unsigned j = 0; j < m; j++)
				p->s0[j] += (sp->season == US_ETS_M ? (pm > 0 ? y[c * m + j] / pm : 1)
								     : y[c * m + j] - pm) / (double)np;
		}
		for (unsigned j = 0; j < m; j++)
			tot += p->s0[j];
		for (unsigned j = 0; j < m; j++)   /* normalise: sum 0, or mean 1 */
			p->s0[j] = sp->season == US_ETS_M ? p->s0[j] * m / tot : p->s0[j] - tot / m;
		k = m;
	}
	p->l0 = mean_of(y, k);
	if (sp->trend != US_ETS_N && n >= 2 * k)
		p->b0 = (mean_of(y + k, k) - p->l0) / (double)k;
	if (m >= 2 && sp->season == US_ETS_M && p->l0 <= 0)
		p->l0 = 1e-3;
	p->alpha = 0.3;
	p->beta = 0.01;
	p->gamma = 0.01;
	p->phi = 0.95;
}

/* ---- maximum likelihood ----------------------------------------------------- */

struct ets_job {
	const double *y;
	size_t n;
	const struct us_ets_spec *sp;
	struct us_ets_par base;     /* initial states and starting values */
	double scale;               /* of the level, for l0's step */
};

static double logistic(double x)
{
	return 1.0 / (1.0 + exp(-x));
}

static double logit(double p)
{
	if (p < 1e-6)
		p = 1e-6;
	if (p > 1 - 1e-6)
		p = 1 - 1e-6;
	return log(p / (1 - p));
}

/* Vector layout: alpha, [beta], [gamma], [phi], l0, [b0]. */
static size_t npar(const struct us_ets_spec *sp)
{
	return 2 + (sp->trend != US_ETS_N) * 2 + (sp->season != US_ETS_N) + (sp->trend == US_ETS_AD);
}

static void unpack(const struct ets_job *j, const gsl_vector *x, struct us_ets_par *p)
{
	size_t i = 0;

	*p = j->base;
	p->alpha = 1e-4 + 0.9998 * logistic(gsl_vector_get(x, i++));
	if (j->sp->trend != US_ETS_N)
		p->beta = p->alpha * logistic(gsl_vector_get(x, i++));
	if (j->sp->season != US_ETS_N)
		p->gamma = (1 - p->alpha) * logistic(gsl_vector_get(x, i++));
	if (j->sp->trend == US_ETS_AD)
		p->phi = PHI_LO + PHI_SPAN * logistic(gsl_vector_get(x, i++));
	p->l0 = j->base.l0 + j->scale * gsl_vector_get(x, i++);
	if (j->sp->trend != US_ETS_N)
		p->b0 = j->base.b0 + j->scale / 10 * gsl_vector_get(x, i++);
}

static void pack(const struct ets_job *j, const struct us_ets_par *p, gsl_vector *x)
{
	size_t i = 0;

	gsl_vector_set(x, i++, logit((p->alpha - 1e-4) / 0.9998));
	if (j->sp->trend != US_ETS_N)
		gsl_vector_set(x, i++, logit(p->beta / p->alpha));
	if (j->sp->season != US_ETS_N)
		gsl_vector_set(x, i++, logit(p->gamma / (1 - p->alpha)));
	if (j->sp->trend == US_ETS_AD)
		gsl_vector_set(x, i++, logit((p->phi - PHI_LO) / PHI_SPAN));
	gsl_vector_set(x, i++, 0);
	if (j->sp->trend != US_ETS_N)
		gsl_vector_set(x, i++, 0);
}

static double neg_loglik(const gsl_vector *x, void *arg)
{
	const struct ets_job *j = arg;
	struct us_ets_par p;
	double ll;

	unpack(j, x, &p);
	ll = us_ets_loglik(j->y, j->n, j->sp, &p, NULL);
	return isfinite(ll) ? -ll : 1e300;
}

static int applicable(const double *y, size_t n, const struct us_ets_spec *sp)
{
	size_t k = 1 + npar(sp) + (sp->season != US_ETS_N ? sp->m : 0);

	if (sp->season != US_ETS_N && (sp->m < 2 || sp->m > US_ETS_MAX_M || n < 2 * (size_t)sp->m))
		return 0;
	if (n < k + 4)
		return 0;
	if (has_mult(sp))
		for (size_t i = 0; i < n; i++)
			if (!(y[i] > 0))
				return 0;
	return 1;
}

int us_ets_fit(const double *y, size_t n, const struct us_ets_spec *spec, struct us_ets_model *mod)
{
	const gsl_multimin_fminimizer_type *T = gsl_multimin_fminimizer_nmsimplex2;
	gsl_multimin_fminimizer *s = NULL;
	gsl_vector *x = NULL, *step = NULL;
	struct ets_job job = { .y = y, .n = n, .sp = spec };
	gsl_multimin_function f;
	size_t d = npar(spec);
	double sse, sd = 0, mu;
	int rc = -1;

	if (!applicable(y, n, spec))
		return -1;
	gsl_set_error_handler_off();   /* errors come back as codes, never abort() */
	ets_init(y, n, spec, &job.base);
	mu = mean_of(y, n);
	for (size_t i = 0; i < n; i++)
		sd += (y[i] - mu) * (y[i] - mu);
	sd = sqrt(sd / (double)n);
	job.scale = sd > 0 ? sd : (fabs(mu) > 0 ? fabs(mu) : 1);
	x = gsl_vector_alloc(d);
	step = gsl_vector_alloc(d);
	s = gsl_multimin_fminimizer_alloc(T, d);
	if (!x || !step || !s)
		goto cleanup;
	pack(&job, &job.base, x);
	gsl_vector_set_all(step, 1.0);
	f.n = d;
	f.f = neg_loglik;
	f.params = &job;
	if (gsl_multimin_fminimizer_set(s, &f, x, step) != GSL_SUCCESS)
		goto cleanup;
	for (int it = 0; it < NM_MAX_ITER; it++) {
		if (gsl_multimin_fminimizer_iterate(s) != GSL_SUCCESS)
			break;
		if (gsl_multimin_test_size(gsl_multimin_fminimizer_size(s), 1e-3) == GSL_SUCCESS)
			break;
	}
	memset(mod, 0, sizeof(*mod));
	mod->spec = *spec;
	unpack(&job, s->x, &mod->par);
	mod->loglik = us_ets_loglik(y, n, spec, &mod->par, &sse);
	if (!isfinite(mod->loglik))
		goto cleanup;
	mod->sigma = sqrt(sse / (double)n);
	mod->k = (int)d + 1 + (spec->season != US_ETS_N ? (int)spec->m - 1 : 0);
	mod->aicc = -2 * mod->loglik + 2.0 * mod->k +
		    2.0 * mod->k * (mod->k + 1) / ((double)n - mod->k - 1);
	rc = 0;
cleanup:
	if (s)
		gsl_multimin_fminimizer_free(s);
	gsl_vector_free(x);
	gsl_vector_free(step);
	return rc;
}

int us_ets_auto(const double *y, size_t n, unsigned m, int additive_only,
		struct us_ets_model *best)
{
	static const int errs[] = { US_ETS_A, US_ETS_M };
	static const int trends[] = { US_ETS_N, US_ETS_A, US_ETS_AD };
	static const int seas[] = { US_ETS_N, US_ETS_A, US_ETS_M };
	int found = 0;

	for (size_t e = 0; e < (additive_only ? 1u : 2u); e++)
		for (size_t t = 0; t < 3; t++)
			for (size_t s = 0; s < (additive_only ? 2u : 3u); s++) {
				struct us_ets_spec sp = { errs[e], trends[t], seas[s], m };
				struct us_ets_model mod;

				if (seas[s] != US_ETS_N && m < 2)
					continue;
				/* additive error with multiplicative seasonality is
				 * numerically unstable (excluded by R's ets() too) */
				if (errs[e] == US_ETS_A && seas[s] == US_ETS_M)
					continue;
				if (us_ets_fit(y, n, &sp, &mod) < 0)
					continue;
				if (!found || mod.aicc < best->aicc)
					*best = mod;
				found = 1;
			}
	return found ? 0 : -1;
}

int us_ets_forecast(const struct us_ets_model *mod, const double *y, size_t n, size_t h,
		    double *mean, double *sd)
{
	const struct us_ets_spec *sp = &mod->spec;
	const struct us_ets_par *p = &mod->par;
	unsigned m = sp->season != US_ETS_N ? sp->m : 1;
	double phi = sp->trend == US_ETS_AD ? p->phi : 1.0;
	struct ets_state st;
	double sse, sumlog, sigma, csum = 0;

	if (ets_run(y, n, sp, p, &sse, &sumlog, &st) < 0)
		return -1;
	/* sigma from this run: with refitted prefixes it is the prefix's own */
	sigma = n ? sqrt(sse / (double)n) : mod->sigma;
	for (size_t j = 1; j <= h; j++) {
		double lb = st.l + trend_sum(sp, phi, j) * st.b;
		double sv = st.s[(n + j - 1) % m];
		double c;

		mean[j - 1] = sp->season == US_ETS_A ? lb + sv : sp->season == US_ETS_M ? lb * sv : lb;
		/* var(h) = sigma^2 (1 + sum_{i<h} c_i^2), Hyndman et al. (2008)
		 * table 6.1; c_i = alpha + beta * trend_sum(i) + gamma [i mod m == 0] */
		sd[j - 1] = sigma * sqrt(1 + csum);
		if (sp->error == US_ETS_M)
			sd[j - 1] *= fabs(mean[j - 1]);
		c = p->alpha + (sp->trend != US_ETS_N ? p->beta * trend_sum(sp, phi, j) : 0) +
		    (sp->season != US_ETS_N && j % m == 0 ? p->gamma : 0);
		csum += c * c;
	}
	return 0;
}

void us_ets_name(const struct us_ets_spec *sp, char *buf, size_t len)
{
	static const char *c[] = { "N", "A", "Ad", "M" };

	snprintf(buf, len, "ETS(%s,%s,%s)", c[sp->error], c[sp->trend], c[sp->season]);
}

void us_ets_params(const struct us_ets_model *mod, char *buf, size_t len)
{
	const struct us_ets_spec *sp = &mod->spec;
	int o = snprintf(buf, len, "alpha=%.4g", mod->par.alpha);

	if (sp->trend != US_ETS_N && o > 0 && (size_t)o < len)
		o += snprintf(buf + o, len - (size_t)o, " beta=%.4g", mod->par.beta);
	if (sp->season != US_ETS_N && o > 0 && (size_t)o < len)
		o += snprintf(buf + o, len - (size_t)o, " gamma=%.4g m=%u", mod->par.gamma, sp->m);
	if (sp->trend == US_ETS_AD && o > 0 && (size_t)o < len)
		o += snprintf(buf + o, len - (size_t)o, " phi=%.4g", mod->par.phi);
	if (o > 0 && (size_t)o < len)
		o += snprintf(buf + o, len - (size_t)o, " l0=%.6g", mod->par.l0);
	if (sp->trend != US_ETS_N && o > 0 && (size_t)o < len)
		o += snprintf(buf + o, len - (size_t)o, " b0=%.4g", mod->par.b0);
	if (o > 0 && (size_t)o < len)
		snprintf(buf + o, len - (size_t)o, " sigma=%.4g", mod->sigma);
}
