/* Rightsizing engine; see recommend.h and docs/recommend.md. Everything here
 * is arithmetic on the samples and the catalog so it can be tested exactly
 * and used the same way by the coordinator and the offline CLI. */
#include "recommend.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const dim_names[US_DIM_COUNT] = { "cpu", "memory", "network" };
static const char *const dim_units[US_DIM_COUNT] = { "cores", "GiB", "Gbps" };
static const char *const dim_codes[US_DIM_COUNT] = { "CPU", "MEM", "NET" };

void us_rec_params_default(struct us_rec_params *p)
{
	p->percentile[US_DIM_CPU] = 99.5;
	p->percentile[US_DIM_MEM] = 100.0;
	p->percentile[US_DIM_NET] = 99.0;
	p->headroom = 0.20;
	p->min_hours = US_REC_MIN_HOURS;
}

const char *us_rec_finding_name(enum us_rec_finding f)
{
	return f == US_REC_OVER ? "over-provisioned" :
	       f == US_REC_UNDER ? "under-provisioned" : "optimized";
}

const char *us_rec_dim_name(enum us_rec_dim d) { return dim_names[d]; }
const char *us_rec_dim_unit(enum us_rec_dim d) { return dim_units[d]; }

int us_rec_parse_headroom(const char *s, double dflt, double *out)
{
	char *end;
	double v;

	if (!*s) {
		*out = dflt;
		return 0;
	}
	v = strtod(s, &end);
	if (end == s)
		return -1;
	if (*end == '%') {
		v /= 100.0;
		end++;
	}
	if (*end || !(v >= 0.0 && v <= 10.0))
		return -1;
	*out = v;
	return 0;
}

int us_rec_parse_percentile(const char *s, double dflt, double *out)
{
	char *end;
	double v;

	if (!*s) {
		*out = dflt;
		return 0;
	}
	v = strtod(s, &end);
	if (end == s || *end || !(v >= 0.0 && v <= 100.0))
		return -1;
	*out = v;
	return 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

double us_rec_percentile(double *v, size_t n, double p)
{
	double rank, frac;
	size_t lo;

	if (n == 0)
		return 0.0;
	qsort(v, n, sizeof(*v), cmp_double);
	rank = p / 100.0 * (double)(n - 1);
	lo = (size_t)floor(rank);
	if (lo >= n - 1)
		return v[n - 1];
	frac = rank - (double)lo;
	return v[lo] + frac * (v[lo + 1] - v[lo]);
}

/* The span the samples cover: first to last, plus one typical (median)
 * interval for the last sample's own period. */
static double span_hours(const struct us_util *u)
{
	double *gaps, step = 0.0;

	if (u->n < 2)
		return 0.0;
	gaps = malloc((u->n - 1) * sizeof(*gaps));
	if (gaps) {
		for (size_t i = 1; i < u->n; i++)
			gaps[i - 1] = u->s[i].t - u->s[i - 1].t;
		step = us_rec_percentile(gaps, u->n - 1, 50.0);
		free(gaps);
	}
	return (u->s[u->n - 1].t - u->s[0].t + step) / 3600.0;
}

static double column(const struct us_util_sample *s, enum us_rec_dim d)
{
	return d == US_DIM_CPU ? s->cpu_cores : d == US_DIM_MEM ? s->memory_gib : s->network_gbps;
}

int us_rec_need(const struct us_util *u, const struct us_rec_params *p, struct us_rec_need *n,
		char *err, size_t errlen)
{
	double *v;

	memset(n, 0, sizeof(*n));
	if (u->n == 0)
		return snprintf(err, errlen, "no utilization samples"), -1;
	n->samples = u->n;
	n->from = u->s[0].t;
	n->to = u->s[u->n - 1].t;
	n->hours = span_hours(u);
	if (n->hours < p->min_hours)
		return snprintf(err, errlen, "only %.1f h of utilization data (%zu samples); at "
				"least %g h are needed for a recommendation", n->hours, u->n,
				p->min_hours), -1;
	v = malloc(u->n * sizeof(*v));
	if (!v)
		return snprintf(err, errlen, "out of memory"), -1;
	for (int d = 0; d < US_DIM_COUNT; d++) {
		n->present[d] = d != US_DIM_NET || u->has_network;
		if (!n->present[d])
			continue;
		for (size_t i = 0; i < u->n; i++)
			v[i] = column(&u->s[i], (enum us_rec_dim)d);
		n->observed[d] = us_rec_percentile(v, u->n, p->percentile[d]);
		n->need[d] = n->observed[d] * (1.0 + p->headroom);
	}
	free(v);
	return 0;
}

/* Risk bands of need / capacity: how close the type runs to its limit. */
static int risk_of(double ratio)
{
	return ratio <= 0.5 ? 0 : ratio <= 0.7 ? 1 : ratio <= 0.85 ? 2 : ratio <= 1.0 ? 3 : 4;
}

static double capacity(const struct us_itype *t, enum us_rec_dim d)
{
	return d == US_DIM_CPU ? us_itype_cpu_cores(t) : d == US_DIM_MEM ? t->memory_gib
									 : t->network_gbps;
}

static void dimension(const struct us_itype *t, const struct us_rec_need *n, enum us_rec_dim d,
		      struct us_rec_dimension *x)
{
	memset(x, 0, sizeof(*x));
	x->present = n->present[d];
	if (!x->present)
		return;
	x->capacity = capacity(t, d);
	/* a catalog without a network figure (0) never limits on network */
	if (x->capacity <= 0.0) {
		x->finding = US_REC_OPTIMIZED;
		snprintf(x->reason, sizeof(x->reason), "%s_UNKNOWN", dim_codes[d]);
		return;
	}
	x->ratio = n->need[d] / x->capacity;
	x->projected = n->observed[d] / x->capacity;
	x->risk = risk_of(x->ratio);
	if (x->ratio > 1.0)
		x->finding = US_REC_UNDER;
	/* network comes with the size, not chosen for itself: a fast NIC on a
	 * right-sized type is not a finding */
	else if (x->ratio < US_REC_OVER_RATIO && d != US_DIM_NET)
		x->finding = US_REC_OVER;
	else
		x->finding = US_REC_OPTIMIZED;
	snprintf(x->reason, sizeof(x->reason), "%s_%s", dim_codes[d],
		 x->finding == US_REC_UNDER ? "UNDER" : x->finding == US_REC_OVER ? "OVER"
										: "OPTIMIZED");
}

static void add_reason(struct us_rec_eval *e, const char *code)
{
	size_t len = strlen(e->reasons);

	snprintf(e->reasons + len, sizeof(e->reasons) - len, "%s%s", len ? "," : "", code);
}

void us_rec_evaluate(const struct us_itype *t, const struct us_rec_need *n,
		     const struct us_itype *current, struct us_rec_eval *e)
{
	bool over = false, under = false;

	memset(e, 0, sizeof(*e));
	e->type = t;
	for (int d = 0; d < US_DIM_COUNT; d++) {
		struct us_rec_dimension *x = &e->dim[d];

		dimension(t, n, (enum us_rec_dim)d, x);
		if (!x->present)
			continue;
		under |= x->finding == US_REC_UNDER;
		over |= x->finding == US_REC_OVER;
		if (x->risk > e->risk)
			e->risk = x->risk;
		if (x->finding != US_REC_OPTIMIZED)
			add_reason(e, x->reason);
	}
	e->fits = !under;
	e->finding = under ? US_REC_UNDER : over ? US_REC_OVER : US_REC_OPTIMIZED;
	/* the baseline, not the vCPU count, is what a burstable type sustains:
	 * say so whenever it is the reason the type is short on CPU */
	e->burstable_limited = t->baseline_cpu_pct < 100.0 && n->need[US_DIM_CPU] > 0 &&
			       n->need[US_DIM_CPU] > us_itype_cpu_cores(t);
	if (e->burstable_limited)
		add_reason(e, "CPU_BURSTABLE_BASELINE");
	e->monthly_usd = t->usd_per_hour * US_REC_HOURS_PER_MONTH;
	if (current) {
		double cur = current->usd_per_hour * US_REC_HOURS_PER_MONTH;

		e->is_current = current == t || strcmp(current->type, t->type) == 0;
		e->savings_usd = cur - e->monthly_usd;
		e->savings_pct = cur > 0 ? 100.0 * e->savings_usd / cur : 0.0;
		e->arch_change = strcmp(current->arch, t->arch) != 0;
		if (e->arch_change)
			add_reason(e, strcmp(t->arch, "arm64") == 0 ? "ARCH_CHANGE: rebuild for arm64"
								     : "ARCH_CHANGE: rebuild for x86_64");
	}
}

/* Price first; at equal price the lower risk, then no architecture change,
 * then the name, so equal inputs always rank the same way. */
static int cmp_option(const void *a, const void *b)
{
	const struct us_rec_eval *x = a, *y = b;

	if (x->type->usd_per_hour != y->type->usd_per_hour)
		return x->type->usd_per_hour < y->type->usd_per_hour ? -1 : 1;
	if (x->risk != y->risk)
		return x->risk < y->risk ? -1 : 1;
	if (x->arch_change != y->arch_change)
		return x->arch_change ? 1 : -1;
	return strcmp(x->type->type, y->type->type);
}

int us_recommend(const struct us_catalog *c, const struct us_rec_need *n, const char *current,
		 struct us_rec_result *r, char *err, size_t errlen)
{
	const struct us_itype *cur = NULL;

	memset(r, 0, sizeof(*r));
	r->need = *n;
	if (current && *current) {
		cur = us_catalog_find(c, current);
		if (!cur)
			return snprintf(err, errlen, "current type '%.40s' is not in the catalog",
					current), -1;
		r->has_current = true;
		us_rec_evaluate(cur, n, cur, &r->current);
	}
	r->options = calloc(c->n ? c->n : 1, sizeof(*r->options));
	if (!r->options)
		return snprintf(err, errlen, "out of memory"), -1;
	for (size_t i = 0; i < c->n; i++) {
		struct us_rec_eval e;

		us_rec_evaluate(&c->types[i], n, cur, &e);
		if (e.fits)
			r->options[r->n_options++] = e;
	}
	qsort(r->options, r->n_options, sizeof(*r->options), cmp_option);
	return 0;
}

void us_rec_result_free(struct us_rec_result *r)
{
	free(r->options);
	memset(r, 0, sizeof(*r));
}
