/* us_forecast(): the model families, and the choice between them.
 *
 * Each family (a row of the families[] table below) chooses its own member
 * by AICc when fitted to the whole series. Families are then compared by
 * rolling-origin validation: at up to three origins, one validation horizon
 * apart, ending where the series ends, the family's chosen member is rerun
 * with its parameters on the data before the origin (decompositions and
 * states recomputed, parameters kept: re-estimating them would cost every
 * family's fit again for little change) and scored by MASE, the mean
 * absolute error over the in-sample seasonal-naive error of that prefix.
 * AICc cannot do this part: the families do not share a likelihood (a
 * decomposition's is that of its adjusted series). The lowest mean MASE is
 * not simply taken: validation is noisy (three origins; one spike copied by
 * the seasonal naive can dominate an origin), so the choice follows the
 * one-standard-error rule (Hastie, Tibshirani & Friedman, ESL 7.10): the
 * simplest candidate whose mean MASE is within one standard error of the
 * best one's, the standard error being that of their paired per-origin
 * differences. Simplest first:
 * seasonal naive, the robust level without and with the seasonal profile,
 * then the fitted families, then their combination.
 *
 * The validation errors also calibrate the intervals: a family without an
 * analytic standard error gets the 95th percentile of its absolute
 * validation errors / 1.96; one with an analytic one has it scaled by the
 * 95th percentile of |error| / sd over 1.96 when that is outside 0.9-1.1
 * (the models assume Gaussian errors; server metrics have level shifts and
 * spikes). */
#include "forecast_impl.h"
#include "forecast_arima.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ORIGINS 3
#define MIN_N 8
#define ARIMA_AUTO_MAX_N 1500
#define Z80 1.2815515655446004
#define Z95 1.959963984540054

/* ---- helpers ---------------------------------------------------------------- */

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* q-quantile of x[0..n) (sorts x). */
static double quantile(double *x, size_t n, double q)
{
	double pos;
	size_t i;

	if (n == 0)
		return NAN;
	qsort(x, n, sizeof(*x), cmp_double);
	pos = q * (double)(n - 1);
	i = (size_t)pos;
	return i + 1 < n ? x[i] + (pos - (double)i) * (x[i + 1] - x[i]) : x[n - 1];
}

/* In-sample mean absolute error of the seasonal naive forecast with lag m
 * (1 = naive), the MASE scale. */
static double snaive_scale(const double *y, size_t n, unsigned m)
{
	double s = 0;

	if (m == 0)
		m = 1;
	if (n <= m)
		return NAN;
	for (size_t t = m; t < n; t++)
		s += fabs(y[t] - y[t - m]);
	return s / (double)(n - m);
}

/* Periods of seasons[] that fit at least twice in n points. */
static size_t usable_seasons(const unsigned *seasons, size_t ns, size_t n, unsigned *out)
{
	size_t k = 0;

	for (size_t i = 0; i < ns; i++)
		if (seasons[i] >= 2 && 2 * (size_t)seasons[i] <= n)
			out[k++] = seasons[i];
	return k;
}

static void seasons_str(const unsigned *seasons, size_t ns, char *buf, size_t len)
{
	if (ns == 0)
		snprintf(buf, len, "none");
	else if (ns == 1)
		snprintf(buf, len, "%u", seasons[0]);
	else
		snprintf(buf, len, "%u,%u", seasons[0], seasons[1]);
}

/* ---- seasonal naive ----------------------------------------------------- */

static int snaive_fit(const double *y, size_t n, const unsigned *seasons, size_t ns, size_t h,
		      struct us_fc_fit *f)
{
	unsigned m = ns ? seasons[ns - 1] : 1;  /* the longest period: a week repeats a day too */
	double s2 = 0;

	if (n <= m)
		return -1;
	for (size_t t = m; t < n; t++)
		s2 += (y[t] - y[t - m]) * (y[t] - y[t - m]);
	s2 /= (double)(n - m);
	for (size_t j = 0; j < h; j++) {
		f->mean[j] = y[n - m + j % m];
		f->sd[j] = sqrt(s2 * (double)(j / m + 1));
	}
	f->analytic = 1;
	f->aicc = NAN;
	snprintf(f->model, sizeof(f->model), m > 1 ? "SNaive(%u)" : "Naive", m);
	snprintf(f->params, sizeof(f->params), "m=%u sigma=%.4g", m, sqrt(s2));
	return 0;
}

/* ---- ETS on the raw series -------------------------------------------------- */

static int ets_fit(const double *y, size_t n, const unsigned *seasons, size_t ns, size_t h,
		   struct us_fc_fit *f)
{
	unsigned m = ns ? seasons[0] : 0;

	if (m > US_FC_ETS_MAX_PERIOD)
		return -1;      /* long periods: the decomposition family */
	/* without a season the raw series is its own seasonally adjusted
	 * series: additive error only, as there (see adjusted_run()), which
	 * also halves the cost (72 to 36 ms on 4,032 points) */
	if (us_ets_auto(y, n, m, m == 0, &f->ets) < 0)
		return -1;
	f->have_ets = 1;
	f->analytic = 1;
	f->aicc = f->ets.aicc;
	us_ets_name(&f->ets.spec, f->model, sizeof(f->model));
	us_ets_params(&f->ets, f->params, sizeof(f->params));
	return us_ets_forecast(&f->ets, y, n, h, f->mean, f->sd);
}

static int ets_refit(const double *y, size_t n, const unsigned *seasons, size_t ns, size_t h,
		     struct us_fc_fit *f)
{
	return us_ets_forecast(&f->ets, y, n, h, f->mean, f->sd);
}

/* ---- families on the seasonally adjusted series --------------------------- */

enum adj_kind { ADJ_ETS, ADJ_THETA, ADJ_MEDIAN, ADJ_ARIMA };

/* Level of the median of the adjusted series over its last quarter period
 * (at least 12 points): robust to the spikes of server metrics, yet quick to
 * follow a level shift (a whole period lagged a day behind on NAB's
 * rds_cpu_utilization); no trend. */
static void median_level(const double *a, size_t n, unsigned m, size_t h, struct us_fc_fit *f,
			 double *scratch)
{
	size_t w = m / 4 > 12 ? m / 4 : 12;
	double lvl;

	if (w > n)
		w = n;
	memmove(scratch, a + n - w, w * sizeof(*a));
	lvl = quantile(scratch, w, 0.5);
	for (size_t j = 0; j < h; j++) {
		f->mean[j] = lvl;
		f->sd[j] = NAN;
	}
	f->analytic = 0;
	f->aicc = NAN;
	snprintf(f->params, sizeof(f->params), "level=%.6g window=%zu", lvl, w);
}

/* ARIMA (lib/forecast_arima.c) on y with period m (0 = none): orders chosen
 * by us_arima_auto() on the first call, the same orders refitted on a
 * prefix for validation (cheaper than a new search). */
static int arima_run(const double *y, size_t n, unsigned m, size_t h, struct us_fc_fit *f,
		     int refit)
{
	struct us_arima_fit a;
	char err[256];
	int *o = f->arima_order, rc;

	memset(&a, 0, sizeof(a));
	if (!refit)
		rc = us_arima_auto(y, n, m, &a, err, sizeof(err));
	else
		rc = us_arima_fit_order(y, n, (unsigned)o[6], o[0], o[1], o[2], o[3], o[4], o[5], o[7],
					&a, err, sizeof(err));
	if (rc == 0)
		rc = us_arima_forecast(&a, h, f->mean, f->sd);
	if (rc == 0 && !refit) {
		int v[8] = { a.p, a.d, a.q, a.P, a.D, a.Q, (int)a.period, a.constant };

		memcpy(o, v, sizeof(v));
		f->have_arima = 1;
		f->aicc = a.aicc;
		snprintf(f->params, sizeof(f->params), "sigma=%.4g loglik=%.2f %s",
			 sqrt(a.sigma2), a.loglik, a.note);
	}
	if (rc == 0)
		snprintf(f->model, sizeof(f->model), "%s", a.description);
	us_arima_free(&a);
	return rc;
}

static int adjusted_run(const double *y, size_t n, const unsigned *seasons_in, size_t ns_in,
			size_t h, struct us_fc_fit *f, enum adj_kind kind, int refit)
{
	unsigned seasons[US_FC_MAX_SEASONS];
	size_t ns = usable_seasons(seasons_in, ns_in, n, seasons);
	double *prof[US_FC_MAX_SEASONS] = { NULL, NULL }, *adj = malloc(n * sizeof(double));
	char ss[32], inner[64];
	int rc = -1;

	if (!adj || (ns == 0 && kind == ADJ_ETS))
		goto cleanup;
	for (size_t i = 0; i < ns; i++)
		if (!(prof[i] = malloc(seasons[i] * sizeof(double))))
			goto cleanup;
	if (ns == 0)
		memcpy(adj, y, n * sizeof(*y));
	else if (us_fc_decompose(y, n, seasons, ns, prof, adj) < 0)
		goto cleanup;
	switch (kind) {
	case ADJ_ETS:
		if (!refit) {
			/* additive error only: on spiky server metrics the
			 * multiplicative-error fits discount the spikes and
			 * extrapolate spurious trends (NAB, BENCHMARKS.md) */
			if (us_ets_auto(adj, n, 0, 1, &f->ets) < 0)
				goto cleanup;
			f->have_ets = 1;
			f->aicc = f->ets.aicc;
			us_ets_params(&f->ets, f->params, sizeof(f->params));
		}
		f->analytic = 1;
		if (us_ets_forecast(&f->ets, adj, n, h, f->mean, f->sd) < 0)
			goto cleanup;
		us_ets_name(&f->ets.spec, inner, sizeof(inner));
		break;
	case ADJ_THETA:
		f->analytic = 1;
		if (us_fc_theta(adj, n, h, f, refit, f->mean, f->sd) < 0)
			goto cleanup;
		snprintf(inner, sizeof(inner), "Theta");
		break;
	case ADJ_MEDIAN:
		median_level(adj, n, ns ? seasons[0] : 0, h, f, adj);
		snprintf(inner, sizeof(inner), "MedianLevel");
		break;
	case ADJ_ARIMA:
		f->analytic = 1;
		if (arima_run(adj, n, 0, h, f, refit) < 0)
			goto cleanup;
		snprintf(inner, sizeof(inner), "%.60s", f->model);
		break;
	}
	for (size_t j = 0; j < h; j++)
		f->mean[j] += ns ? us_fc_season_at(prof, seasons, ns, n + j) : 0;
	seasons_str(seasons, ns, ss, sizeof(ss));
	if (ns)
		snprintf(f->model, sizeof(f->model), "Decomp(%s)+%s", ss, inner);
	else
		snprintf(f->model, sizeof(f->model), "%s", inner);
	rc = 0;
cleanup:
	for (size_t i = 0; i < US_FC_MAX_SEASONS; i++)
		free(prof[i]);
	free(adj);
	return rc;
}

static int decomp_fit(const double *y, size_t n, const unsigned *s, size_t ns, size_t h,
		      struct us_fc_fit *f)
{
	return adjusted_run(y, n, s, ns, h, f, ADJ_ETS, 0);
}

static int decomp_refit(const double *y, size_t n, const unsigned *s, size_t ns, size_t h,
			struct us_fc_fit *f)
{
	return adjusted_run(y, n, s, ns, h, f, ADJ_ETS, 1);
}

static int theta_fit(const double *y, size_t n, const unsigned *s, size_t ns, size_t h,
		     struct us_fc_fit *f)
{
	return adjusted_run(y, n, s, ns, h, f, ADJ_THETA, 0);
}

static int theta_refit(const double *y, size_t n, const unsigned *s, size_t ns, size_t h,
		       struct us_fc_fit *f)
{
	return adjusted_run(y, n, s, ns, h, f, ADJ_THETA, 1);
}

static int median_fit(const double *y, size_t n, const unsigned *s, size_t ns, size_t h,
		      struct us_fc_fit *f)
{
	return adjusted_run(y, n, s, ns, h, f, ADJ_MEDIAN, 0);
}

/* The same robust level without the seasonal profile: a period given or
 * detected on the whole history need not hold in its recent part (NAB's
 * ec2_network_in has a daily train of spikes for six days, then a flat
 * level), and validation, not the detection, says whether the profile
 * helps. Only next to a seasonal member: without seasons it is that one. */
static int level_fit(const double *y, size_t n, const unsigned *s, size_t ns, size_t h,
		     struct us_fc_fit *f)
{
	return ns ? adjusted_run(y, n, s, 0, h, f, ADJ_MEDIAN, 0) : -1;
}

/* Seasonal ARIMA on the raw series when the period is short enough for it,
 * else non-seasonal ARIMA on the seasonally adjusted series. */
static int arima_any(const double *y, size_t n, const unsigned *s, size_t ns, size_t h,
		     struct us_fc_fit *f, int refit)
{
	if (ns <= 1 && (ns == 0 || s[0] <= US_ARIMA_MAX_PERIOD)) {
		f->analytic = 1;
		return arima_run(y, n, ns ? s[0] : 0, h, f, refit);
	}
	return adjusted_run(y, n, s, ns, h, f, ADJ_ARIMA, refit);
}

static int arima_fit(const double *y, size_t n, const unsigned *s, size_t ns, size_t h,
		     struct us_fc_fit *f)
{
	return arima_any(y, n, s, ns, h, f, 0);
}

static int arima_refit(const double *y, size_t n, const unsigned *s, size_t ns, size_t h,
		       struct us_fc_fit *f)
{
	return arima_any(y, n, s, ns, h, f, 1);
}

static const struct us_fc_family families[] = {
	{ US_FC_SNAIVE, "snaive", snaive_fit, NULL },
	{ US_FC_ETS, "ets", ets_fit, ets_refit },
	{ US_FC_DECOMP, "decomp", decomp_fit, decomp_refit },
	{ US_FC_THETA, "theta", theta_fit, theta_refit },
	{ US_FC_MEAN, "mean", median_fit, NULL },
	{ US_FC_ARIMA, "arima", arima_fit, arima_refit },
	{ US_FC_MEAN, "level", level_fit, NULL },
};
#define NFAM (sizeof(families) / sizeof(families[0]))

/* ---- validation ------------------------------------------------------------- */

struct cv {
	size_t norig, hv;
	size_t origin[MAX_ORIGINS];
	double scale[MAX_ORIGINS];      /* MASE scale of each origin's prefix */
};

/* Origins one validation horizon apart, each leaving a prefix long enough
 * for the shortest period twice (or 16 points). */
static void cv_plan(const double *y, size_t n, size_t h, const unsigned *seasons, size_t ns,
		    struct cv *cv)
{
	size_t minlen = ns ? 2 * (size_t)seasons[0] + 1 : 16;

	/* at least one period (or 24 steps): a 2-step validation would
	 * choose on noise */
	size_t want = ns && seasons[0] > h ? seasons[0] : (h < 24 ? 24 : h);

	cv->hv = want < n / 4 ? want : n / 4;
	cv->norig = 0;
	if (cv->hv == 0)
		return;
	for (size_t k = 1; k <= MAX_ORIGINS; k++) {
		if (n < k * cv->hv + minlen)
			break;
		cv->origin[cv->norig] = n - k * cv->hv;
		cv->scale[cv->norig] = snaive_scale(y, n - k * cv->hv, ns ? seasons[0] : 1);
		cv->norig++;
	}
}

struct cand {
	struct us_fc_fit fit;
	int ok;
	double mase;
	double omase[MAX_ORIGINS];
	double *err, *ratio;    /* validation errors and error / sd */
	size_t nerr;
};

/* Per-origin MASE of c's validation errors, and their mean. */
static void score_errors(const struct cv *cv, struct cand *c)
{
	double tot = 0;

	for (size_t k = 0; k < cv->norig; k++) {
		double ae = 0, sc = cv->scale[k];

		for (size_t j = 0; j < cv->hv; j++)
			ae += fabs(c->err[k * cv->hv + j]);
		ae /= (double)cv->hv;
		c->omase[k] = sc > 0 ? ae / sc : (ae > 0 ? 1e9 : 0);
		tot += c->omase[k];
	}
	c->mase = tot / (double)cv->norig;

}

/* Reruns family fam at each origin; fills c->mase and the error arrays. */
static int cv_score(const struct us_fc_family *fam, const double *y, const unsigned *seasons,
		    size_t ns, const struct cv *cv, struct cand *c)
{
	struct us_fc_fit g = c->fit;
	int rc = -1;

	g.mean = malloc(cv->hv * sizeof(double));
	g.sd = malloc(cv->hv * sizeof(double));
	if (!g.mean || !g.sd)
		goto cleanup;
	for (size_t k = 0; k < cv->norig; k++) {
		size_t o = cv->origin[k];
		int r = fam->refit ? fam->refit(y, o, seasons, ns, cv->hv, &g)
				   : fam->fit(y, o, seasons, ns, cv->hv, &g);

		if (r < 0)
			goto cleanup;
		for (size_t j = 0; j < cv->hv; j++) {
			double e = y[o + j] - g.mean[j];

			c->err[k * cv->hv + j] = e;
			c->ratio[k * cv->hv + j] = g.sd[j] > 0 ? e / g.sd[j] : NAN;
		}
	}
	c->nerr = cv->norig * cv->hv;
	score_errors(cv, c);
	rc = 0;
cleanup:
	free(g.mean);
	free(g.sd);
	return rc;
}

/* Sets the chosen candidate's sd from its validation errors (see top). */
static void calibrate(struct cand *c, size_t h, char *kind, size_t klen)
{
	double *tmp = malloc((c->nerr + 1) * sizeof(double));
	size_t k = 0;

	snprintf(kind, klen, c->fit.analytic ? "analytic" : "empirical");
	if (!tmp)
		return;
	if (!c->fit.analytic) {
		double sd;

		for (size_t i = 0; i < c->nerr; i++)
			tmp[k++] = fabs(c->err[i]);
		sd = k ? quantile(tmp, k, 0.95) / Z95 : NAN;
		for (size_t j = 0; j < h; j++)
			c->fit.sd[j] = sd;
	} else if (c->nerr >= 50) {
		double f;

		for (size_t i = 0; i < c->nerr; i++)
			if (isfinite(c->ratio[i]))
				tmp[k++] = fabs(c->ratio[i]);
		f = k >= 50 ? quantile(tmp, k, 0.95) / Z95 : 1;
		if (f < 0.9 || f > 1.1) {
			for (size_t j = 0; j < h; j++)
				c->fit.sd[j] *= f;
			snprintf(kind, klen, "calibrated");
		}
	}
	free(tmp);
}

/* The equal-weight mean of the decomposition-based families (a forecast
 * combination: it hedges between a level that adapts and one that resists
 * spikes). Its validation errors are the means of theirs, so it costs
 * nothing to score; its intervals are empirical. */
static int combine(struct cand *c, size_t nc, const struct cv *cv, size_t h, struct cand *cb)
{
	static const size_t members[] = { 2, 3, 4 };  /* decomp, theta, mean */
	size_t use[3], nu = 0, ne = cv->norig * cv->hv, o;
	char name[sizeof(cb->fit.model)];

	for (size_t i = 0; i < 3; i++)
		if (members[i] < nc && c[members[i]].ok && isfinite(c[members[i]].mase))
			use[nu++] = members[i];
	if (nu < 2 || !cv->norig)
		return -1;
	cb->fit.mean = calloc(h, sizeof(double));
	cb->fit.sd = calloc(h, sizeof(double));
	cb->err = calloc(ne + 1, sizeof(double));
	cb->ratio = calloc(ne + 1, sizeof(double));
	if (!cb->fit.mean || !cb->fit.sd || !cb->err || !cb->ratio)
		return -1;
	o = (size_t)snprintf(name, sizeof(name), "Comb(");
	for (size_t i = 0; i < nu; i++) {
		const struct cand *m = &c[use[i]];

		for (size_t j = 0; j < h; j++)
			cb->fit.mean[j] += m->fit.mean[j] / (double)nu;
		for (size_t j = 0; j < ne; j++)
			cb->err[j] += m->err[j] / (double)nu;
		if (o < sizeof(name))
			o += (size_t)snprintf(name + o, sizeof(name) - o, "%s%s", i ? " + " : "",
					      m->fit.model);
	}
	if (o < sizeof(name))
		snprintf(name + o, sizeof(name) - o, ")");
	memcpy(cb->fit.model, name, sizeof(name));
	snprintf(cb->fit.params, sizeof(cb->fit.params), "equal weights over %zu models", nu);
	cb->fit.analytic = 0;
	cb->fit.aicc = NAN;
	cb->nerr = ne;
	cb->ok = 1;
	score_errors(cv, cb);
	return 0;
}

/* Standard error of the mean of a's per-origin MASE minus b's; 0 with one
 * origin (then the lowest mean simply wins). */
static double paired_se(const struct cand *a, const struct cand *b, size_t norig)
{
	double d[MAX_ORIGINS], mu = 0, ss = 0;

	if (norig < 2)
		return 0;
	for (size_t k = 0; k < norig; k++) {
		d[k] = a->omase[k] - b->omase[k];
		mu += d[k] / (double)norig;
	}
	for (size_t k = 0; k < norig; k++)
		ss += (d[k] - mu) * (d[k] - mu);
	return sqrt(ss / (double)(norig - 1) / (double)norig);
}

/* The one-standard-error choice (see top) over c[0..nc), whose last entry is
 * the combination; without validation, the first family that fitted in the
 * order ETS, decomposition, Theta, median level, seasonal naive. */
static int choose(const struct cand *c, size_t nc, size_t norig)
{
	/* snaive, level, mean, decomp, theta, ets, arima (families[]), comb */
	static const size_t simple[] = { 0, 6, 4, 2, 3, 1, 5, 7 };
	static const size_t pref[] = { 1, 2, 3, 4, 0 };
	int best = -1;

	for (size_t i = 0; i < nc; i++)
		if (c[i].ok && isfinite(c[i].mase) && (best < 0 || c[i].mase < c[best].mase))
			best = (int)i;
	for (size_t i = 0; best >= 0 && i < sizeof(simple) / sizeof(simple[0]); i++) {
		const struct cand *k = &c[simple[i]];

		if (simple[i] < nc && k->ok && isfinite(k->mase) &&
		    k->mase - c[best].mase <= paired_se(k, &c[best], norig))
			return (int)simple[i];
	}
	for (size_t i = 0; best < 0 && i < sizeof(pref) / sizeof(pref[0]); i++)
		if (pref[i] < nc && c[pref[i]].ok)
			best = (int)pref[i];
	return best;
}

/* ---- the entry point ------------------------------------------------------- */

static int check_input(const struct us_fc_input *in, size_t h, char *err, size_t errlen)
{
	if (!in->y || in->n < MIN_N) {
		snprintf(err, errlen, "series too short: %zu points, need at least %d", in->n, MIN_N);
		return -1;
	}
	if (h == 0 || h > 10000000) {
		snprintf(err, errlen, "horizon must be between 1 and 10000000 steps");
		return -1;
	}
	for (size_t i = 0; i < in->n; i++)
		if (!isfinite(in->y[i])) {
			snprintf(err, errlen, "value %zu is not a finite number", i);
			return -1;
		}
	return 0;
}

static int alloc_output(struct us_fc_output *out, size_t h)
{
	double **v[] = { &out->mean, &out->lo80, &out->hi80, &out->lo95, &out->hi95, &out->sd };

	out->h = h;
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		if (!(*v[i] = calloc(h, sizeof(double))))
			return -1;
	return 0;
}

static void pick_seasons(const struct us_fc_input *in, struct us_fc_output *out)
{
	unsigned s[US_FC_MAX_SEASONS];
	size_t ns = 0;

	if (in->no_season)
		ns = 0;
	else if (in->nseasons)
		for (size_t i = 0; i < in->nseasons && i < US_FC_MAX_SEASONS; i++)
			s[ns++] = in->seasons[i];
	else
		ns = us_fc_detect_seasons(in->y, in->n, in->step_s, s, US_FC_MAX_SEASONS);
	if (ns == 2 && s[0] > s[1]) {
		unsigned t = s[0];

		s[0] = s[1];
		s[1] = t;
	}
	out->nseasons = usable_seasons(s, ns, in->n, out->seasons);
}

static void append(char *buf, size_t len, const char *name, double mase)
{
	size_t o = strlen(buf);

	if (o < len)
		snprintf(buf + o, len - o, "%s%s=%.3f", o ? " " : "", name, mase);
}

int us_forecast(const struct us_fc_input *in, size_t h, struct us_fc_output *out, char *err,
		size_t errlen)
{
	struct cand c[NFAM + 1];
	struct cv cv;
	/* ARIMA's stepwise search costs ~0.2 s on 4,000 points, four times the
	 * whole budget of an automatic forecast: in the automatic choice only
	 * for shorter series; asked for by name, always */
	unsigned mask = in->families ? in->families
				     : US_FC_ALL & ~(in->n > ARIMA_AUTO_MAX_N ? US_FC_ARIMA : 0u);
	int best = -1, rc = -1;

	memset(out, 0, sizeof(*out));
	memset(c, 0, sizeof(c));
	out->aicc = out->cv_mase = NAN;
	if (check_input(in, h, err, errlen) < 0)
		return -1;
	if (alloc_output(out, h) < 0)
		goto oom;
	pick_seasons(in, out);
	cv_plan(in->y, in->n, h, out->seasons, out->nseasons, &cv);
	for (size_t i = 0; i < NFAM; i++) {
		struct cand *k = &c[i];

		if (!(families[i].bit & mask))
			continue;
		k->fit.mean = malloc(h * sizeof(double));
		k->fit.sd = malloc(h * sizeof(double));
		k->err = malloc((cv.norig * cv.hv + 1) * sizeof(double));
		k->ratio = malloc((cv.norig * cv.hv + 1) * sizeof(double));
		if (!k->fit.mean || !k->fit.sd || !k->err || !k->ratio)
			goto oom;
		if (families[i].fit(in->y, in->n, out->seasons, out->nseasons, h, &k->fit) < 0)
			continue;
		k->ok = 1;
		k->mase = NAN;
		if (cv.norig && cv_score(&families[i], in->y, out->seasons, out->nseasons, &cv, k) < 0)
			k->mase = NAN;
		append(out->candidates, sizeof(out->candidates), families[i].name, k->mase);
	}
	if ((mask & US_FC_COMB) && combine(c, NFAM, &cv, h, &c[NFAM]) == 0)
		append(out->candidates, sizeof(out->candidates), "comb", c[NFAM].mase);
	best = choose(c, NFAM + 1, cv.norig);
	if (best < 0) {
		snprintf(err, errlen, "no model could be fitted to %zu points", in->n);
		goto cleanup;
	}
	calibrate(&c[best], h, out->interval, sizeof(out->interval));
	snprintf(out->model, sizeof(out->model), "%s", c[best].fit.model);
	snprintf(out->params, sizeof(out->params), "%s", c[best].fit.params);
	out->aicc = c[best].fit.aicc;
	out->cv_mase = c[best].mase;
	for (size_t j = 0; j < h; j++) {
		double sd = c[best].fit.sd[j];

		out->mean[j] = c[best].fit.mean[j];
		out->sd[j] = isfinite(sd) ? sd : 0;
		if (in->nonnegative && out->mean[j] < 0)
			out->mean[j] = 0;
		us_fc_interval(out, j, 80, in->nonnegative, &out->lo80[j], &out->hi80[j]);
		us_fc_interval(out, j, 95, in->nonnegative, &out->lo95[j], &out->hi95[j]);
	}
	rc = 0;
	goto cleanup;
oom:
	snprintf(err, errlen, "out of memory");
cleanup:
	for (size_t i = 0; i < NFAM + 1; i++) {
		free(c[i].fit.mean);
		free(c[i].fit.sd);
		free(c[i].err);
		free(c[i].ratio);
	}
	return rc;
}

void us_fc_output_free(struct us_fc_output *out)
{
	free(out->mean);
	free(out->lo80);
	free(out->hi80);
	free(out->lo95);
	free(out->hi95);
	free(out->sd);
	out->mean = out->lo80 = out->hi80 = out->lo95 = out->hi95 = out->sd = NULL;
	out->h = 0;
}

/* Inverse of the standard normal CDF, Acklam's rational approximation
 * (relative error < 1.2e-9): enough for interval levels. */
static double norm_quantile(double p)
{
	static const double a[] = { -3.969683028665376e+01, 2.209460984245205e+02,
				    -2.759285104469687e+02, 1.383577518672690e+02,
				    -3.066479806614716e+01, 2.506628277459239e+00 };
	static const double b[] = { -5.447609879822406e+01, 1.615858368580409e+02,
				    -1.556989798598866e+02, 6.680131188771972e+01,
				    -1.328068155288572e+01 };
	static const double c[] = { -7.784894002430293e-03, -3.223964580411365e-01,
				    -2.400758277161838e+00, -2.549732539343734e+00,
				    4.374664141464968e+00, 2.938163982698783e+00 };
	static const double d[] = { 7.784695709041462e-03, 3.224671290700398e-01,
				    2.445134137142996e+00, 3.754408661907416e+00 };
	double q, r;

	if (p <= 0 || p >= 1)
		return p <= 0 ? -INFINITY : INFINITY;
	if (p < 0.02425) {
		q = sqrt(-2 * log(p));
		return (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
		       ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
	}
	if (p > 1 - 0.02425)
		return -norm_quantile(1 - p);
	q = p - 0.5;
	r = q * q;
	return (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
	       (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
}

void us_fc_interval(const struct us_fc_output *out, size_t i, double level, int nonnegative,
		    double *lo, double *hi)
{
	double z = level == 80 ? Z80 : level == 95 ? Z95 : norm_quantile(0.5 + level / 200.0);

	*lo = out->mean[i] - z * out->sd[i];
	*hi = out->mean[i] + z * out->sd[i];
	if (nonnegative) {
		*lo = *lo < 0 ? 0 : *lo;
		*hi = *hi < 0 ? 0 : *hi;
	}
}
