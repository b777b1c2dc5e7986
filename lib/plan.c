/* Capacity plan (plan.h): quantile → instances → pre-allocation requests.
 * Everything here is arithmetic on arrays so that the tests can pin every
 * rounding rule, and the CLI, the coordinator and the charts share one
 * definition of "how many instances when". */
#include "plan.h"

#include <gsl/gsl_cdf.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog.h"

/* ---- per-instance capacity --------------------------------------------- */

const char *us_cap_source_name(enum us_cap_source s)
{
	switch (s) {
	case US_CAP_GIVEN: return "given";
	case US_CAP_SHADOW: return "shadow";
	case US_CAP_SHADOW_CPU: return "shadow-cpu";
	case US_CAP_CATALOG: return "catalog";
	}
	return "?";
}

/* The cores planned on: the type's sustained cores × the target utilisation. */
static double type_cores(const struct us_capacity_in *in)
{
	double util = in->target_util > 0 ? in->target_util : 1;

	return in->type ? us_itype_cpu_cores(in->type) * util : 0;
}

int us_plan_capacity(const struct us_capacity_in *in, struct us_capacity *out)
{
	double cores = type_cores(in);

	memset(out, 0, sizeof(*out));
	if (in->given > 0) {
		out->per_instance = in->given;
		out->source = US_CAP_GIVEN;
		snprintf(out->why, sizeof(out->why), "%.6g per instance, as given", in->given);
		return 0;
	}
	if (in->shadow_rps > 0) {
		double cpu_bound = in->shadow_cpu_s_per_req > 0 && cores > 0
					   ? cores / in->shadow_cpu_s_per_req : 0;

		out->source = US_CAP_SHADOW;
		/* The shadow may not have been pushed to saturation: a rate it
		 * sustained is a floor, but the CPU it burned bounds it above.
		 * Both are reported; the smaller is planned on. */
		out->per_instance = cpu_bound > 0 && cpu_bound < in->shadow_rps ? cpu_bound
										 : in->shadow_rps;
		if (cpu_bound > 0)
			snprintf(out->why, sizeof(out->why),
				 "%.6g req/s per instance (shadow): sustained %.6g req/s within the "
				 "latency tolerance; CPU bound %.6g = %.6g cores / %.6g CPU-s per "
				 "request; the smaller", out->per_instance, in->shadow_rps, cpu_bound,
				 cores, in->shadow_cpu_s_per_req);
		else
			snprintf(out->why, sizeof(out->why),
				 "%.6g req/s per instance, sustained by the shadow within the latency "
				 "tolerance", out->per_instance);
		return 0;
	}
	if (in->shadow_cpu_s_per_req > 0 && cores > 0) {
		out->per_instance = cores / in->shadow_cpu_s_per_req;
		out->source = US_CAP_SHADOW_CPU;
		snprintf(out->why, sizeof(out->why),
			 "%.6g req/s per instance = %.6g cores / %.6g CPU-s per request (shadow)",
			 out->per_instance, cores, in->shadow_cpu_s_per_req);
		return 0;
	}
	if (in->nominal_cpu_s_per_req > 0 && cores > 0) {
		out->per_instance = cores / in->nominal_cpu_s_per_req;
		out->source = US_CAP_CATALOG;
		out->warning = true;
		snprintf(out->why, sizeof(out->why),
			 "no shadow data: %.6g req/s per instance from catalog cores (%.6g planned) / "
			 "%.6g CPU-s per request (not measured on this type)", out->per_instance,
			 cores, in->nominal_cpu_s_per_req);
		return 0;
	}
	snprintf(out->why, sizeof(out->why),
		 "no per-instance capacity: give it, shadow data, or a type and CPU-s per request");
	return -1;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

double us_plan_cpu_per_request(const struct us_cap_minute *m, size_t n)
{
	double *v = malloc((n ? n : 1) * sizeof(*v)), med = 0;
	size_t k = 0;

	if (!v)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (m[i].requests > 0 && m[i].cpu_s > 0 && isfinite(m[i].cpu_s))
			v[k++] = m[i].cpu_s / m[i].requests;
	if (k) {
		qsort(v, k, sizeof(*v), cmp_double);
		med = k % 2 ? v[k / 2] : (v[k / 2 - 1] + v[k / 2]) / 2;
	}
	free(v);
	return med;
}

double us_plan_sustained_rps(const struct us_cap_minute *m, size_t n, double p99_limit)
{
	double best = 0;

	for (size_t i = 0; i < n; i++)
		if (m[i].requests > 0 && isfinite(m[i].p99) && m[i].p99 <= p99_limit &&
		    m[i].requests / 60 > best)
			best = m[i].requests / 60;
	return best;
}

/* ---- resources ------------------------------------------------------------ */

const char *us_plan_res_name(enum us_plan_res r)
{
	static const char *const names[US_RES_N] = { "requests", "cpu", "memory", "network" };

	return r < US_RES_N ? names[r] : "?";
}

const char *us_plan_res_unit(enum us_plan_res r)
{
	static const char *const units[US_RES_N] = { "req/s", "cores", "GiB", "Gbit/s" };

	return r < US_RES_N ? units[r] : "?";
}

void us_plan_type_caps(const struct us_itype *t, double target_util, double caps[US_RES_N])
{
	caps[US_RES_CPU] = us_itype_cpu_cores(t) * (target_util > 0 ? target_util : 1);
	caps[US_RES_MEMORY] = t->memory_gib * US_PLAN_MEMORY_UTIL;
	caps[US_RES_NETWORK] = t->network_gbps;
}

/* ---- the plan -------------------------------------------------------------- */

void us_plan_defaults(struct us_plan_params *p)
{
	memset(p, 0, sizeof(*p));
	p->quantile = US_PLAN_DEFAULT_QUANTILE;
	p->headroom = US_PLAN_DEFAULT_HEADROOM;
	p->min_instances = 1;
	p->max_buffer = US_PLAN_DEFAULT_MAX_BUFFER;
	p->lead_s = US_PLAN_DEFAULT_LEAD_S;
}

int us_plan_check(const struct us_plan_params *p, char *err, size_t errlen)
{
	const char *why = NULL;

	if (!(p->capacity > 0) || !isfinite(p->capacity))
		why = "per-instance capacity must be a positive number";
	else if (!(p->quantile >= 0 && p->quantile < 1))
		why = "quantile must lie in [0, 1)";
	else if (!(p->headroom >= 0) || p->headroom > 100)
		why = "headroom must lie in [0, 10000%]";
	else if (!(p->max_buffer >= 0) || p->max_buffer > 100)
		why = "max-capacity buffer must lie in [0, 10000%]";
	else if (p->lead_s < 0)
		why = "lead time must not be negative";
	else if (p->max_instances && p->max_instances < p->min_instances)
		why = "max instances must be at least min instances";
	if (why)
		snprintf(err, errlen, "%s", why);
	return why ? -1 : 0;
}

static double z_of(double level)
{
	return gsl_cdf_ugaussian_Pinv((1 + level) / 2);
}

double us_plan_demand(const struct us_fc_bands *fc, size_t i, double q)
{
	double m = fc->mean[i], z, z80 = z_of(0.80), z95 = z_of(0.95);
	double h80 = fc->hi80 ? fc->hi80[i] : NAN, h95 = fc->hi95 ? fc->hi95[i] : NAN;

	if (q <= 0)
		return m;
	z = z_of(q);
	if (isnan(h80) && isnan(h95))
		return m;
	if (isnan(h80)) /* one anchor: a straight line through it */
		return m + (h95 - m) * z / z95;
	if (isnan(h95))
		return m + (h80 - m) * z / z80;
	if (z <= z80)
		return m + (h80 - m) * z / z80;
	return h80 + (h95 - h80) * (z - z80) / (z95 - z80);
}

unsigned us_plan_required(double demand, double capacity, double headroom, unsigned min_instances)
{
	double x = demand / capacity * (1 + headroom);
	unsigned n;

	/* 1e-9 absorbs binary rounding: 100 / 120 × 1.2 must be 1, not 2. */
	if (!(x > 0))
		n = 0;
	else if (x >= 4e9)
		n = 4000000000u;
	else
		n = (unsigned)ceil(x - 1e-9);
	return n < min_instances ? min_instances : n;
}

static unsigned buffered(unsigned peak, double buffer)
{
	double x = ceil(peak * (1 + buffer) - 1e-9);

	return x >= 4e9 ? 4000000000u : (unsigned)x;
}

/* The requirement at step i on the binding resource (before any cap). */
static unsigned step_required(const struct us_plan_res_fc *r, size_t nr,
			      const struct us_plan_params *p, size_t i, unsigned *binding)
{
	unsigned best = 0;

	*binding = 0;
	for (size_t k = 0; k < nr; k++) {
		unsigned n = us_plan_required(us_plan_demand(r[k].fc, i, p->quantile), r[k].capacity,
					      p->headroom, p->min_instances);

		if (n > best) {
			best = n;
			*binding = (unsigned)k;
		}
	}
	return best;
}

/* Fills one step; returns its requirement before any max-instances cap. */
static unsigned plan_step(const struct us_plan_res_fc *r, size_t nr,
			  const struct us_plan_params *p, size_t i, unsigned prev,
			  struct us_plan_step *s)
{
	const struct us_fc_bands *fc = r[0].fc;
	unsigned uncapped;

	s->t = fc->start + (int64_t)i * fc->step;
	s->mean = fc->mean[i];
	s->demand = us_plan_demand(fc, i, p->quantile);
	s->required = uncapped = step_required(r, nr, p, i, &s->binding);
	if (p->max_instances && !p->increase_max && s->required > p->max_instances) {
		s->required = p->max_instances;
		s->capped = true;
	}
	if (s->required > prev) {
		s->request = true;
		s->request_at = s->t - p->lead_s;
		s->from = prev;
		s->late = s->request_at < fc->start;
	}
	return uncapped;
}

/* The forecasts must line up step for step, and every capacity be usable. */
static int check_resources(const struct us_plan_res_fc *r, size_t nr, char *err, size_t errlen)
{
	if (nr == 0 || r[0].fc->n == 0 || r[0].fc->step <= 0) {
		snprintf(err, errlen, "empty forecast");
		return -1;
	}
	for (size_t k = 0; k < nr; k++) {
		if (!(r[k].capacity > 0) || !isfinite(r[k].capacity)) {
			snprintf(err, errlen, "%s: per-instance capacity must be a positive number",
				 us_plan_res_name(r[k].res));
			return -1;
		}
		if (r[k].fc->n != r[0].fc->n || r[k].fc->step != r[0].fc->step ||
		    r[k].fc->start != r[0].fc->start) {
			snprintf(err, errlen, "%s: forecast does not line up with %s's",
				 us_plan_res_name(r[k].res), us_plan_res_name(r[0].res));
			return -1;
		}
	}
	return 0;
}

int us_plan_build_multi(const struct us_plan_res_fc *r, size_t nr, const struct us_plan_params *p,
			struct us_plan *out, char *err, size_t errlen)
{
	struct us_plan_params chk = *p;
	unsigned prev, uncapped, uncapped_peak = 0, binding;

	memset(out, 0, sizeof(*out));
	if (check_resources(r, nr, err, errlen) < 0)
		return -1;
	chk.capacity = r[0].capacity;
	if (us_plan_check(&chk, err, errlen) < 0)
		return -1;
	if (!(out->steps = calloc(r[0].fc->n, sizeof(*out->steps)))) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	out->n = r[0].fc->n;
	out->step_s = r[0].fc->step;
	out->capacity = r[0].capacity;
	for (size_t i = 0; i < out->n; i++) {
		struct us_plan_step *s = &out->steps[i];

		/* Unknown current size: assume the fleet meets step 0 now, so the
		 * first request is the first rise the forecast shows. */
		if (i == 0)
			prev = p->current ? p->current : step_required(r, nr, p, 0, &binding);
		else
			prev = out->steps[i - 1].required;
		if (i == 0 && !p->current && p->max_instances && !p->increase_max &&
		    prev > p->max_instances)
			prev = p->max_instances;
		uncapped = plan_step(r, nr, p, i, prev, s);
		out->nrequests += s->request;
		out->ncapped += s->capped;
		if (s->required > out->peak)
			out->peak = s->required;
		if (uncapped > uncapped_peak)
			uncapped_peak = uncapped;
	}
	out->max_capacity = buffered(uncapped_peak, p->max_buffer);
	if (p->max_instances && (!p->increase_max || out->max_capacity < p->max_instances))
		out->max_capacity = p->max_instances;
	return 0;
}

int us_plan_build(const struct us_fc_bands *fc, const struct us_plan_params *p,
		  struct us_plan *out, char *err, size_t errlen)
{
	struct us_plan_res_fc r = { US_RES_REQUESTS, fc, p->capacity };

	memset(out, 0, sizeof(*out));
	if (us_plan_check(p, err, errlen) < 0)
		return -1;
	return us_plan_build_multi(&r, 1, p, out, err, errlen);
}

void us_plan_align_ends(struct us_fc_series *const *s, size_t n)
{
	int64_t end = INT64_MAX;

	for (size_t k = 0; k < n; k++)
		if (s[k]->n && s[k]->t0_us + (int64_t)(s[k]->n - 1) * s[k]->step_us < end)
			end = s[k]->t0_us + (int64_t)(s[k]->n - 1) * s[k]->step_us;
	for (size_t k = 0; k < n; k++)
		if (s[k]->n && s[k]->step_us > 0 && end >= s[k]->t0_us)
			s[k]->n = (size_t)((end - s[k]->t0_us) / s[k]->step_us) + 1;
}

void us_plan_follow_events(const double *mean_before, const struct us_fc_bands *requests,
			   struct us_fc_bands *res)
{
	double *bands[] = { res->mean, res->lo80, res->hi80, res->lo95, res->hi95 };

	for (size_t i = 0; i < res->n && i < requests->n; i++) {
		double f;

		if (!(mean_before[i] > 0))
			continue;
		f = requests->mean[i] / mean_before[i];
		for (size_t b = 0; b < sizeof(bands) / sizeof(bands[0]); b++)
			if (bands[b])
				bands[b][i] *= f;
	}
}

void us_plan_free(struct us_plan *plan)
{
	if (!plan)
		return;
	free(plan->steps);
	memset(plan, 0, sizeof(*plan));
}
