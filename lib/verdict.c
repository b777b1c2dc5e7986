/* The production/shadow verdict; see verdict.h and docs/compare.md.
 *
 * Every KPI becomes an estimate with an interval on a scale where "no
 * change" is a reference value (ratio 1, difference 0), a tolerance bound
 * on the side that hurts (latency up, throughput down) and its mirror on
 * the other. A KPI is High when its interval lies above the reference
 * (the change is real) and reaches past the upper bound (parity within
 * tolerance is not shown: the one-sided TOST fails); Low likewise
 * downwards; Pass otherwise; NoData below the minimum samples. It fails
 * when its class is the direction that hurts.
 *
 * Critical KPIs (p99 latency, error rate) decide alone: any failing one
 * fails the comparison. Their intervals are Bonferroni-adjusted to
 * 1 - (1 - c)/2 for the two of them, so with the default c = 0.98 an A/A
 * comparison fails through them with probability at most 1% - the rate
 * the issue allows - instead of 1% each. */
#include "verdict.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stats.h"

#define N_CRITICAL 2
#define TINY 1e-9     /* floor for logs of latencies of 0 */

enum tol_field { T_LATENCY, T_P99, T_ERROR, T_THROUGHPUT, T_KERNEL, T_CPU, T_MEMORY };

static const struct {
	const char *name, *mode, *unit;
	double weight;
	bool critical;
	enum tol_field tol;
} kpi_def[US_KPI_NR] = {
	[US_KPI_LATENCY] = { "latency", "mann-whitney", "ratio", 1, false, T_LATENCY },
	[US_KPI_LATENCY_P50] = { "latency_p50", "bootstrap", "ratio", 1, false, T_LATENCY },
	[US_KPI_LATENCY_P90] = { "latency_p90", "bootstrap", "ratio", 1, false, T_LATENCY },
	[US_KPI_LATENCY_P99] = { "latency_p99", "bootstrap", "ratio", 3, true, T_P99 },
	[US_KPI_ERROR_RATE] = { "error_rate", "newcombe", "diff", 3, true, T_ERROR },
	[US_KPI_THROUGHPUT] = { "throughput", "wilson", "share", 2, false, T_THROUGHPUT },
	[US_KPI_RUNQ_P99] = { "runq_latency_p99", "bootstrap-hist", "ratio", 1, false, T_KERNEL },
	[US_KPI_IO_P99] = { "io_latency_p99", "bootstrap-hist", "ratio", 1, false, T_KERNEL },
	[US_KPI_TCP_RTT_P99] = { "tcp_rtt_p99", "bootstrap-hist", "ratio", 1, false, T_KERNEL },
	[US_KPI_TCP_RETRANS] = { "tcp_retransmits", "mann-whitney", "ratio", 1, false, T_KERNEL },
	[US_KPI_CPU_PER_REQ] = { "cpu_per_request", "mann-whitney", "ratio", 1, false, T_CPU },
	[US_KPI_MEMORY] = { "memory", "mann-whitney", "ratio", 1, false, T_MEMORY },
};

void us_policy_defaults(struct us_policy *p)
{
	memset(p, 0, sizeof(*p));
	p->confidence = 0.98;
	p->tol_latency = 0.10;
	p->tol_p99 = 0.10;
	p->tol_error = 0.001;
	p->min_throughput = 0.98;
	p->tol_kernel = 0.25;
	p->tol_cpu = 0.10;
	p->tol_memory = 0.10;
	p->min_samples = 200;
	p->min_intervals = 10;
	p->resamples = 2000;
	p->seed = 1;
}

const char *us_kpi_class_name(enum us_kpi_class c)
{
	static const char *const names[] = { "NoData", "Pass", "High", "Low" };

	return names[c];
}

const char *us_decision_name(enum us_decision d)
{
	static const char *const names[] = { "Pass", "Marginal", "Fail", "Inconclusive" };

	return names[d];
}

int us_decision_exit(enum us_decision d)
{
	switch (d) {
	case US_DECISION_PASS: return 0;
	case US_DECISION_FAIL: return 1;
	default: return 3; /* Marginal: no critical KPI regressed; a human decides */
	}
}

static double *tol_ptr(struct us_policy *p, enum tol_field f)
{
	switch (f) {
	case T_LATENCY: return &p->tol_latency;
	case T_P99: return &p->tol_p99;
	case T_ERROR: return &p->tol_error;
	case T_THROUGHPUT: return &p->min_throughput;
	case T_KERNEL: return &p->tol_kernel;
	case T_CPU: return &p->tol_cpu;
	default: return &p->tol_memory;
	}
}

/* ---- classification ------------------------------------------------------- */

/* ref: no change; up/down: the tolerance bounds; worse: +1 if higher hurts. */
static void classify(struct us_kpi *k, double ref, double down, double up, int worse)
{
	bool above = k->lo > ref, below = k->hi < ref;

	k->significant = above || below;
	k->limit = worse > 0 ? up : down;
	if (above && k->hi > up)
		k->cls = US_CLASS_HIGH;
	else if (below && k->lo < down)
		k->cls = US_CLASS_LOW;
	else
		k->cls = US_CLASS_PASS;
	k->fails = (worse > 0 && k->cls == US_CLASS_HIGH) || (worse < 0 && k->cls == US_CLASS_LOW);
}

static void classify_ratio(struct us_kpi *k, double tol)
{
	classify(k, 1.0, 1.0 / (1.0 + tol), 1.0 + tol, +1);
}

/* ---- the KPIs ------------------------------------------------------------- */

static double *logs(const double *v, size_t n)
{
	double *l = malloc((n ? n : 1) * sizeof(*l));

	if (l)
		for (size_t i = 0; i < n; i++)
			l[i] = log(v[i] > TINY ? v[i] : TINY);
	return l;
}

/* Location shift of latency on the log scale, reported as a ratio: the
 * Hodges-Lehmann estimate of how much slower a typical request is. */
static int kpi_location(const struct us_policy *pol, const struct us_cmp_input *in,
			struct us_kpi *k)
{
	struct us_shift s;

	if (in->paired) {
		double *d = malloc((in->n_prod ? in->n_prod : 1) * sizeof(*d));

		if (!d)
			return -1;
		for (size_t i = 0; i < in->n_prod; i++)
			d[i] = log(in->shadow[i] > TINY ? in->shadow[i] : TINY) -
			       log(in->prod[i] > TINY ? in->prod[i] : TINY);
		s = us_wilcoxon(d, in->n_prod, k->level);
		free(d);
		k->mode = "wilcoxon-paired";
	} else {
		double *lp = logs(in->prod, in->n_prod), *ls = logs(in->shadow, in->n_shadow);

		if (!lp || !ls) {
			free(lp);
			free(ls);
			return -1;
		}
		s = us_mwu_hl(lp, in->n_prod, ls, in->n_shadow, k->level);
		free(lp);
		free(ls);
		k->mode = "mann-whitney";
	}
	k->estimate = exp(s.estimate);
	k->lo = exp(s.lo);
	k->hi = exp(s.hi);
	classify_ratio(k, pol->tol_latency);
	k->p_within = us_prob_within(s.estimate, s.lo, s.hi, k->level, log(k->limit), true);
	return 0;
}

static void kpi_qratio(const struct us_policy *pol, const struct us_osample *p,
		       const struct us_osample *s, double q, double tol, struct us_kpi *k)
{
	struct us_qratio r = us_quantile_ratio(p, s, q, k->level, pol->resamples, 1.0 + tol,
					       pol->seed + (uint64_t)(q * 1000));

	if (!r.valid) {
		k->cls = US_CLASS_NODATA;
		return;
	}
	k->estimate = r.estimate;
	k->lo = r.lo;
	k->hi = r.hi;
	classify_ratio(k, tol);
	k->p_within = r.share_below_limit;
}

static void kpi_errors(const struct us_policy *pol, const struct us_cmp_input *in,
		       struct us_kpi *k)
{
	us_newcombe_diff(in->prod_errors, in->prod_requests, in->shadow_errors,
			 in->shadow_requests, k->level, &k->estimate, &k->lo, &k->hi);
	k->mode = "newcombe";
	k->unit = "diff";
	classify(k, 0.0, -pol->tol_error, pol->tol_error, +1);
	k->p_within = us_prob_within(k->estimate, k->lo, k->hi, k->level, pol->tol_error, true);
}

static void kpi_throughput(const struct us_policy *pol, const struct us_cmp_input *in,
			   struct us_kpi *k)
{
	k->estimate = (double)in->answered / (double)in->mirrored;
	us_wilson(in->answered, in->mirrored, k->level, &k->lo, &k->hi);
	k->mode = "wilson";
	k->unit = "share";
	classify(k, 1.0, pol->min_throughput, 2.0 - pol->min_throughput, -1);
	k->p_within = us_prob_within(k->estimate, k->lo, k->hi, k->level, pol->min_throughput,
				     false);
}

static double rel(double shift, double base)
{
	if (base > 0.0)
		return 1.0 + shift / base;
	return shift == 0.0 ? 1.0 : shift > 0 ? INFINITY : -INFINITY;
}

/* Per-interval values (CPU per request, memory, retransmits) can be 0, so
 * the shift is taken on the raw scale and expressed relative to
 * production's median. */
static void kpi_intervals(double *p, size_t np, double *s, size_t ns, double tol,
			  struct us_kpi *k)
{
	struct us_shift sh;
	double med;

	us_stats_sort(p, np);
	us_stats_sort(s, ns);
	sh = us_mwu_hl(p, np, s, ns, k->level);
	med = np % 2 ? p[np / 2] : (p[np / 2 - 1] + p[np / 2]) / 2.0;
	k->estimate = rel(sh.estimate, med);
	k->lo = rel(sh.lo, med);
	k->hi = rel(sh.hi, med);
	k->mode = "mann-whitney";
	classify_ratio(k, tol);
	k->p_within = us_prob_within(k->estimate, k->lo, k->hi, k->level, k->limit, true);
}

/* ---- score and decision --------------------------------------------------- */

static bool enough(uint64_t a, uint64_t b, uint64_t min)
{
	return a >= min && b >= min && a > 0 && b > 0;
}

static void decide(const struct us_policy *pol, const struct us_cmp_input *in,
		   struct us_verdict *v)
{
	double total = 0, passed = 0, conf = 1.0;
	const struct us_kpi *worst = NULL;
	int critical_seen = 0;

	if (!enough(in->n_prod, in->n_shadow, pol->min_samples) ||
	    (in->has_errors && !enough(in->prod_requests, in->shadow_requests, pol->min_samples))) {
		v->decision = US_DECISION_INCONCLUSIVE;
		snprintf(v->reason, sizeof(v->reason),
			 "inconclusive: %zu production and %zu shadow requests, %llu a side needed",
			 in->n_prod, in->n_shadow, (unsigned long long)pol->min_samples);
		return;
	}
	for (int i = 0; i < US_KPI_NR; i++) {
		const struct us_kpi *k = &v->kpi[i];

		if (k->cls == US_CLASS_NODATA)
			continue;
		total += k->weight;
		if (!k->fails)
			passed += k->weight;
		if (k->critical) {
			critical_seen++;
			conf *= k->p_within;
		}
		if (k->fails && (!worst || (k->critical && !worst->critical) ||
				 (k->critical == worst->critical && k->weight > worst->weight)))
			worst = k;
	}
	v->confidence = critical_seen ? conf : 0.0;
	v->score = total > 0 ? 100.0 * passed / total : 0.0;
	if (worst && worst->critical)
		v->score = 0.0; /* a critical KPI fails the whole score */
	v->decision = v->score >= 95.0 ? US_DECISION_PASS :
		      v->score >= 75.0 ? US_DECISION_MARGINAL : US_DECISION_FAIL;
	if (!worst)
		snprintf(v->reason, sizeof(v->reason), "every KPI within tolerance");
	else
		snprintf(v->reason, sizeof(v->reason),
			 "%s %s: %.4g [%.4g, %.4g], tolerance %.4g%s", worst->name,
			 us_kpi_class_name(worst->cls), worst->estimate, worst->lo, worst->hi,
			 worst->limit, worst->critical ? " (critical)" : "");
}

static void kpi_init(const struct us_policy *pol, struct us_kpi *k, int id)
{
	memset(k, 0, sizeof(*k));
	k->name = kpi_def[id].name;
	k->weight = kpi_def[id].weight;
	k->critical = kpi_def[id].critical;
	k->mode = kpi_def[id].mode;
	k->unit = kpi_def[id].unit;
	k->cls = US_CLASS_NODATA;
	k->level = k->critical ? 1.0 - (1.0 - pol->confidence) / N_CRITICAL : pol->confidence;
	k->estimate = k->lo = k->hi = NAN;
}

static int latency_kpis(const struct us_policy *pol, struct us_cmp_input *in,
			struct us_verdict *v)
{
	static const double qs[] = { 0.5, 0.9, 0.99 };
	struct us_osample sp, ss;

	for (int i = US_KPI_LATENCY; i <= US_KPI_LATENCY_P99; i++) {
		v->kpi[i].n_prod = in->n_prod;
		v->kpi[i].n_shadow = in->n_shadow;
		if (in->paired && i == US_KPI_LATENCY)
			v->kpi[i].mode = "wilcoxon-paired";
	}
	if (!enough(in->n_prod, in->n_shadow, pol->min_samples))
		return 0;
	/* paired differences need the original order, the rank-sum test
	 * sorted samples (logs keep the order) */
	if (in->paired && kpi_location(pol, in, &v->kpi[US_KPI_LATENCY]) < 0)
		return -1;
	us_stats_sort(in->prod, in->n_prod);
	us_stats_sort(in->shadow, in->n_shadow);
	for (int i = 0; i < US_CDF_POINTS; i++) {
		v->cdf_prod[i] = in->prod[(size_t)i * (in->n_prod - 1) / (US_CDF_POINTS - 1)];
		v->cdf_shadow[i] = in->shadow[(size_t)i * (in->n_shadow - 1) / (US_CDF_POINTS - 1)];
	}
	v->n_cdf = US_CDF_POINTS;
	if (!in->paired && kpi_location(pol, in, &v->kpi[US_KPI_LATENCY]) < 0)
		return -1;
	us_osample_from_sorted(&sp, in->prod, in->n_prod);
	us_osample_from_sorted(&ss, in->shadow, in->n_shadow);
	for (int i = 0; i < 3; i++)
		kpi_qratio(pol, &sp, &ss, qs[i], i == 2 ? pol->tol_p99 : pol->tol_latency,
			   &v->kpi[US_KPI_LATENCY_P50 + i]);
	return 0;
}

static int hist_kpis(const struct us_policy *pol, const struct us_cmp_input *in,
		     struct us_verdict *v)
{
	for (int h = 0; h < US_HKPI_NR; h++) {
		struct us_kpi *k = &v->kpi[US_HKPI_FIRST + h];
		struct us_osample sp, ss;

		if (!in->hist_prod[h] || !in->hist_shadow[h])
			continue;
		k->mode = "bootstrap-hist";
		k->n_prod = in->hist_prod[h]->count;
		k->n_shadow = in->hist_shadow[h]->count;
		if (!enough(k->n_prod, k->n_shadow, pol->min_samples))
			continue;
		if (us_osample_from_hist(&sp, in->hist_prod[h]) < 0)
			return -1;
		if (us_osample_from_hist(&ss, in->hist_shadow[h]) < 0) {
			us_osample_free(&sp);
			return -1;
		}
		kpi_qratio(pol, &sp, &ss, 0.99, pol->tol_kernel, k);
		us_osample_free(&sp);
		us_osample_free(&ss);
	}
	return 0;
}

int us_verdict_run(const struct us_policy *pol, struct us_cmp_input *in, struct us_verdict *v)
{
	static const enum tol_field itol[US_IKPI_NR] = { T_KERNEL, T_CPU, T_MEMORY };
	struct us_policy p = *pol;

	memset(v, 0, sizeof(*v));
	for (int i = 0; i < US_KPI_NR; i++)
		kpi_init(&p, &v->kpi[i], i);
	v->paired = in->paired && in->n_prod == in->n_shadow;
	in->paired = v->paired;
	if (latency_kpis(&p, in, v) < 0)
		return -1;
	if (in->has_errors) {
		struct us_kpi *k = &v->kpi[US_KPI_ERROR_RATE];

		k->n_prod = in->prod_requests;
		k->n_shadow = in->shadow_requests;
		k->mode = "newcombe";
		if (enough(in->prod_requests, in->shadow_requests, p.min_samples))
			kpi_errors(&p, in, k);
	}
	if (in->has_throughput && in->mirrored > 0) {
		struct us_kpi *k = &v->kpi[US_KPI_THROUGHPUT];

		k->n_prod = in->mirrored;
		k->n_shadow = in->answered;
		if (in->mirrored >= p.min_samples)
			kpi_throughput(&p, in, k);
	}
	if (hist_kpis(&p, in, v) < 0)
		return -1;
	for (int i = 0; i < US_IKPI_NR; i++) {
		struct us_kpi *k = &v->kpi[US_IKPI_FIRST + i];

		k->n_prod = in->n_iv_prod[i];
		k->n_shadow = in->n_iv_shadow[i];
		if (in->iv_prod[i] && in->iv_shadow[i] &&
		    enough(k->n_prod, k->n_shadow, p.min_intervals))
			kpi_intervals(in->iv_prod[i], k->n_prod, in->iv_shadow[i], k->n_shadow,
				      *tol_ptr(&p, itol[i]), k);
	}
	decide(&p, in, v);
	return 0;
}

/* ---- A/A calibration ------------------------------------------------------ */

void us_policy_calibrate(struct us_policy *pol, const struct us_verdict *aa, char *note,
			 size_t notelen)
{
	double widen[T_MEMORY + 1] = { 0 };
	size_t off = 0;

	for (int i = 0; i < US_KPI_NR; i++) {
		const struct us_kpi *k = &aa->kpi[i];
		double half;

		if (k->cls == US_CLASS_NODATA || !isfinite(k->lo) || !isfinite(k->hi))
			continue;
		/* the noise floor: how far from "no change" the interval reaches
		 * when nothing changed */
		half = fmax(fabs(k->hi - (strcmp(k->unit, "diff") == 0 ? 0.0 : 1.0)),
			    fabs((strcmp(k->unit, "diff") == 0 ? 0.0 : 1.0) - k->lo));
		if (half > widen[kpi_def[i].tol])
			widen[kpi_def[i].tol] = half;
	}
	if (notelen)
		note[0] = '\0';
	for (int f = 0; f <= T_MEMORY; f++) {
		double *t = tol_ptr(pol, (enum tol_field)f);

		if (widen[f] <= 0.0)
			continue;
		if (f == T_THROUGHPUT)
			*t = fmax(0.0, *t - widen[f]);
		else
			*t += widen[f];
		if (off < notelen)
			off += (size_t)snprintf(note + off, notelen - off, "%s%s %+.4g",
						off ? ", " : "",
						(const char *[]){ "latency", "latency_p99", "error_rate",
								  "throughput", "kernel", "cpu",
								  "memory" }[f],
						f == T_THROUGHPUT ? -widen[f] : widen[f]);
	}
}
