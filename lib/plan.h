/* The capacity plan: from a demand forecast (fc_events.h's plain arrays) to
 * instances per step and the pre-allocation requests that have them running
 * before they are needed. Pure: no I/O, no clock.
 *
 *   demand(i)    = the forecast at the chosen quantile (default: the upper
 *                  bound of the 95% interval; see us_plan_demand)
 *   required(i)  = ceil(demand(i) / capacity × (1 + headroom)),
 *                  at least min_instances, at most the max capacity
 *   request      = whenever required rises above the previous step's figure:
 *                  "have at least required(i) instances by t(i)", issued at
 *                  t(i) − lead_time (the provider's provisioning time + a
 *                  buffer, default 300 s)
 *
 * The plan never scales in: a forecast that falls produces no request, and
 * removing instances is left to the reactive policy, which sees real load.
 * Forecasts err, and an early scale-in costs an outage while a late one
 * costs a few instance-minutes. A request is a floor ("at least N"), not a
 * delta, so requests stay correct whatever the reactive policy did since.
 *
 * Max capacity follows EC2 predictive scaling's MaxCapacityBuffer: the
 * suggested maximum is ceil(peak required × (1 + max_buffer)), so the
 * reactive policy keeps room above the forecast. With max_instances set the
 * plan honours it (required is capped there and the step flagged) unless
 * increase_max is set, in which case the maximum is raised to the buffered
 * peak instead. */
#ifndef US_PLAN_H
#define US_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fc_events.h"
#include "forecast_csv.h"

struct us_itype;

#define US_PLAN_DEFAULT_QUANTILE 0.95
#define US_PLAN_DEFAULT_HEADROOM 0.20
#define US_PLAN_DEFAULT_LEAD_S 300
#define US_PLAN_DEFAULT_MAX_BUFFER 0.10

/* ---- per-instance capacity --------------------------------------------- */

enum us_cap_source {
	US_CAP_GIVEN,          /* stated by the operator */
	US_CAP_SHADOW,         /* the rate the shadow sustained within tolerance */
	US_CAP_SHADOW_CPU,     /* cores / CPU-seconds per request measured by the shadow */
	US_CAP_CATALOG,        /* catalog cores / an assumed CPU cost: a guess */
};

struct us_capacity_in {
	double given;                /* per-instance capacity stated outright; 0 = none */
	double shadow_rps;           /* sustained within the latency tolerance; 0 = none */
	double shadow_cpu_s_per_req; /* measured on the candidate type; 0 = none */
	const struct us_itype *type; /* candidate type (catalog figures); may be NULL */
	double nominal_cpu_s_per_req;/* assumed cost with catalog cores; 0 = none */
	double target_util;          /* share of the cores to plan on; 0 = all */
};

struct us_capacity {
	double per_instance;         /* demand units one instance serves */
	enum us_cap_source source;
	bool warning;                /* no shadow data: the figure is nominal */
	char why[320];               /* one line for the operator */
};

/* Chooses the best evidence: given > shadow rate (capped by cores / CPU cost
 * when both are known) > shadow CPU cost × catalog cores > catalog cores ×
 * nominal cost (warning). Returns 0, or -1 with out->why saying what is
 * missing. */
int us_plan_capacity(const struct us_capacity_in *in, struct us_capacity *out);
const char *us_cap_source_name(enum us_cap_source s);

/* One minute of an instance's measurements, as the agent reports them. */
struct us_cap_minute {
	double requests;             /* served in the minute */
	double cpu_s;                /* CPU-seconds used (cpu_usage); NAN = unknown */
	double p99;                  /* request latency p99; NAN = unknown */
};

/* CPU-seconds per request: the median over the minutes with both requests
 * and CPU time (a median, so a minute with a GC pause or a burst of cheap
 * health checks does not move it). 0 when no minute has both. */
double us_plan_cpu_per_request(const struct us_cap_minute *m, size_t n);

/* The highest per-minute request rate (per second) sustained with p99 at
 * most p99_limit; 0 when no minute qualifies. */
double us_plan_sustained_rps(const struct us_cap_minute *m, size_t n, double p99_limit);

/* ---- resources ------------------------------------------------------------ */

/* What a plan can size on. Demand and per-instance capacity are in the
 * resource's unit: requests/s, cores, GiB, Gbit/s. */
enum us_plan_res { US_RES_REQUESTS, US_RES_CPU, US_RES_MEMORY, US_RES_NETWORK, US_RES_N };

#define US_PLAN_DEFAULT_TARGET_UTIL 0.7
/* A shadow minute counts as sustained when its p99 is within production's ×
 * this: the default migration policy's guard (policy.h, max_p99_ratio). */
#define US_PLAN_DEFAULT_P99_RATIO 1.2
#define US_PLAN_MEMORY_UTIL 0.9       /* of the type's memory: the kernel and caches need the rest */

const char *us_plan_res_name(enum us_plan_res r);
const char *us_plan_res_unit(enum us_plan_res r);
/* Per-instance capacity of type t for each resource but requests:
 * cores = vCPU (sustained) × target_util, memory = GiB × US_PLAN_MEMORY_UTIL,
 * network = the catalog's peak Gbit/s (0 when unknown: never binds).
 * caps[US_RES_REQUESTS] is left alone. */
void us_plan_type_caps(const struct us_itype *t, double target_util, double caps[US_RES_N]);

/* ---- the plan -------------------------------------------------------------- */

struct us_plan_params {
	double quantile;             /* interval level sized on; 0 = the mean */
	double capacity;             /* per instance, > 0, in the forecast's unit */
	double headroom;             /* 0.20 = 20% above the quantile */
	unsigned min_instances;      /* at least 1 */
	unsigned max_instances;      /* 0 = no maximum */
	bool increase_max;           /* raise max_instances to the buffered peak */
	double max_buffer;           /* 0.10 */
	int64_t lead_s;              /* provisioning time + buffer */
	unsigned current;            /* instances running at the start; 0 = unknown:
				      * assume the fleet already meets step 0 */
};

struct us_plan_step {
	int64_t t;                   /* step time, unix seconds */
	double mean;                 /* the forecast mean (of the first resource) */
	double demand;               /* at the quantile (of the first resource) */
	unsigned required;
	unsigned binding;            /* index of the resource that sets required */
	bool capped;                 /* required was cut to max_instances */
	/* A pre-allocation request, when required rises at this step: */
	bool request;
	int64_t request_at;          /* t − lead_s */
	unsigned from;               /* the previous step's required */
	bool late;                   /* request_at is before the plan's start */
};

struct us_plan {
	struct us_plan_step *steps;  /* n, malloc'd */
	size_t n;
	int64_t step_s;
	double capacity;
	unsigned peak;               /* highest required */
	unsigned max_capacity;       /* suggested maximum (see above) */
	size_t nrequests;
	size_t ncapped;
};

void us_plan_defaults(struct us_plan_params *p);
/* Checks p; -1 with a reason in err. */
int us_plan_check(const struct us_plan_params *p, char *err, size_t errlen);

/* The demand at interval level q from one step of the bands: q = 0 is the
 * mean, 0.80 the upper 80% bound, 0.95 the upper 95% bound; other levels
 * are interpolated (extrapolated above 0.95) on the normal scale between
 * those anchors, so an asymmetric interval keeps its shape. Missing bounds
 * fall back to the mean. */
double us_plan_demand(const struct us_fc_bands *fc, size_t i, double q);

/* Required instances for one demand figure (rounding and headroom only). */
unsigned us_plan_required(double demand, double capacity, double headroom, unsigned min_instances);

/* Builds the plan; 0, or -1 (bad params, message in err, or out of memory). */
int us_plan_build(const struct us_fc_bands *fc, const struct us_plan_params *p,
		  struct us_plan *out, char *err, size_t errlen);
void us_plan_free(struct us_plan *plan);

/* Trims every series to the earliest last timestamp among them, so that
 * forecasts of equal length start together (series of one step size). */
void us_plan_align_ends(struct us_fc_series *const *s, size_t n);

/* Business events act on demand; a resource follows them in proportion:
 * each band of res at step i is multiplied by requests->mean[i] /
 * mean_before[i] (the requests' mean before the events; 0 leaves the step). */
void us_plan_follow_events(const double *mean_before, const struct us_fc_bands *requests,
			   struct us_fc_bands *res);

/* One resource of a multi-resource plan: its forecast (same start, step and
 * length for all) and one instance's capacity of it. */
struct us_plan_res_fc {
	enum us_plan_res res;
	const struct us_fc_bands *fc;
	double capacity;             /* > 0 */
};

/* Sizes each step on the binding resource: required = the max over
 * resources of us_plan_required(demand_r, capacity_r, …), and
 * step.binding = the index (into r) of the resource that gave it (the first
 * one on a tie). p->capacity is ignored; everything else as us_plan_build,
 * whose result equals this with one resource. */
int us_plan_build_multi(const struct us_plan_res_fc *r, size_t nr, const struct us_plan_params *p,
			struct us_plan *out, char *err, size_t errlen);

#endif
