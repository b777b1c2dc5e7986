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

static double type_cores(const struct us_itype *t)
{
	return t ? us_itype_cpu_cores(t) : 0;
}

int us_plan_capacity(const struct us_capacity_in *in, struct us_capacity *out)
{
	double cores = type_cores(in->type);

	memset(out, 0, sizeof(*out));
	if (in->given > 0) {
		out->per_instance = in->given;
		out->source = US_CAP_GIVEN;
		snprintf(out->why, sizeof(out->why), "%.6g per instance, as given", in->given);
		return 0;
	}
	if (in->shadow_rps > 0) {
		out->per_instance = in->shadow_rps;
		out->source = US_CAP_SHADOW;
		/* The shadow may not have been pushed to saturation: a rate it
		 * sustained is a floor, but the CPU it burned bounds it above. */
		if (in->shadow_cpu_s_per_req > 0 && cores > 0 &&
		    cores / in->shadow_cpu_s_per_req < out->per_instance)
			out->per_instance = cores / in->shadow_cpu_s_per_req;
		snprintf(out->why, sizeof(out->why),
			 "%.6g req/s per instance, sustained by the shadow within the latency tolerance",
			 out->per_instance);
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
			 "no shadow data: %.6g req/s per instance from catalog cores (%.6g) / "
			 "assumed %.6g CPU-s per request", out->per_instance, cores,
			 in->nominal_cpu_s_per_req);
		return 0;
	}
	snprintf(out->why, sizeof(out->why),
		 "no per-instance capacity: give it, shadow data, or a type and CPU-s per request");
	return -1;
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

/* Fills one step; returns its requirement before any max-instances cap. */
static unsigned plan_step(const struct us_fc_bands *fc, const struct us_plan_params *p, size_t i,
			  unsigned prev, struct us_plan_step *s)
{
	unsigned uncapped;

	s->t = fc->start + (int64_t)i * fc->step;
	s->mean = fc->mean[i];
	s->demand = us_plan_demand(fc, i, p->quantile);
	s->required = uncapped = us_plan_required(s->demand, p->capacity, p->headroom,
						  p->min_instances);
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

int us_plan_build(const struct us_fc_bands *fc, const struct us_plan_params *p,
		  struct us_plan *out, char *err, size_t errlen)
{
	unsigned prev, uncapped, uncapped_peak = 0;

	memset(out, 0, sizeof(*out));
	if (us_plan_check(p, err, errlen) < 0)
		return -1;
	if (fc->n == 0 || fc->step <= 0) {
		snprintf(err, errlen, "empty forecast");
		return -1;
	}
	if (!(out->steps = calloc(fc->n, sizeof(*out->steps)))) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	out->n = fc->n;
	out->step_s = fc->step;
	out->capacity = p->capacity;
	for (size_t i = 0; i < fc->n; i++) {
		struct us_plan_step *s = &out->steps[i];

		/* Unknown current size: assume the fleet meets step 0 now, so the
		 * first request is the first rise the forecast shows. */
		if (i == 0)
			prev = p->current ? p->current
					  : us_plan_required(us_plan_demand(fc, 0, p->quantile),
							     p->capacity, p->headroom, p->min_instances);
		else
			prev = out->steps[i - 1].required;
		if (i == 0 && !p->current && p->max_instances && !p->increase_max &&
		    prev > p->max_instances)
			prev = p->max_instances;
		uncapped = plan_step(fc, p, i, prev, s);
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

void us_plan_free(struct us_plan *plan)
{
	if (!plan)
		return;
	free(plan->steps);
	memset(plan, 0, sizeof(*plan));
}
