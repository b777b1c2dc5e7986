/* Rightsizing recommendation engine: pure computation, no I/O. From a
 * workload's utilization samples it derives a need per dimension (CPU cores,
 * memory GiB, network Gbps) = a percentile of the samples × (1 + headroom),
 * then evaluates every catalog type against it: the types that fit every
 * dimension are the options, ranked by price; each carries per-dimension
 * findings with reason codes, a performance risk 0-4, projected utilization,
 * monthly cost and savings against the current type, and a flag when it
 * changes the CPU architecture. See docs/recommend.md. (In lib/ rather than
 * coordinator/ because both the coordinator and the CLI's offline mode link
 * it, and the Makefile links the CLI from coordinator/cli*.c and lib/.) */
#ifndef US_RECOMMEND_H
#define US_RECOMMEND_H

#include <stdbool.h>
#include <stddef.h>

#include "catalog.h"
#include "utilization.h"

#define US_REC_HOURS_PER_MONTH 730.0
#define US_REC_MIN_HOURS 30.0
/* A dimension whose need is under this share of the capacity is
 * over-provisioned: a type half the size would still hold it. */
#define US_REC_OVER_RATIO 0.5

enum us_rec_dim { US_DIM_CPU, US_DIM_MEM, US_DIM_NET, US_DIM_COUNT };

enum us_rec_finding { US_REC_OPTIMIZED, US_REC_OVER, US_REC_UNDER };

struct us_rec_params {
	double percentile[US_DIM_COUNT];  /* in [0, 100]; 100 = max */
	double headroom;                  /* fraction: 0.2 = 20% */
	double min_hours;                 /* refuse with less data */
};

void us_rec_params_default(struct us_rec_params *p);

struct us_rec_need {
	bool present[US_DIM_COUNT];       /* network only when the input has it */
	double observed[US_DIM_COUNT];    /* the percentile of the samples */
	double need[US_DIM_COUNT];        /* observed × (1 + headroom) */
	double hours;                     /* span of the samples */
	size_t samples;
	double from, to;                  /* unix seconds */
};

struct us_rec_dimension {
	bool present;
	double capacity;      /* cores (sustained: burstable baseline), GiB, Gbps */
	double ratio;         /* need / capacity */
	double projected;     /* observed / capacity: utilization after a move */
	enum us_rec_finding finding;
	int risk;             /* 0-4 */
	char reason[24];      /* CPU_OVER, MEM_UNDER, NET_OPTIMIZED, ... */
};

struct us_rec_eval {
	const struct us_itype *type;
	struct us_rec_dimension dim[US_DIM_COUNT];
	bool fits;            /* no dimension under-provisioned */
	enum us_rec_finding finding;
	int risk;             /* max over dimensions */
	double monthly_usd;
	double savings_usd;   /* per month against the current type (0 without one) */
	double savings_pct;
	bool arch_change;     /* differs from the current type's arch */
	bool burstable_limited;   /* CPU capacity cut by the baseline */
	bool is_current;
	char reasons[160];    /* comma-separated codes, "" when optimized */
};

struct us_rec_result {
	struct us_rec_need need;
	bool has_current;
	struct us_rec_eval current;
	struct us_rec_eval *options;  /* ranked, best first */
	size_t n_options;
};

/* Needs from samples; -1 with a reason in err for no samples or less than
 * p->min_hours of them (the message says how much there is). */
int us_rec_need(const struct us_util *u, const struct us_rec_params *p, struct us_rec_need *n,
		char *err, size_t errlen);

/* The p-th percentile (0-100, linear interpolation between order statistics)
 * of v[0..n), which it sorts in place. 0 for n = 0. */
double us_rec_percentile(double *v, size_t n, double p);

/* One type against a need; current may be NULL. */
void us_rec_evaluate(const struct us_itype *t, const struct us_rec_need *n,
		     const struct us_itype *current, struct us_rec_eval *e);

/* Evaluates the whole catalog. current: a type name or NULL/"" for none
 * (then no savings). -1 with err for an unknown current type or no memory. */
int us_recommend(const struct us_catalog *c, const struct us_rec_need *n, const char *current,
		 struct us_rec_result *r, char *err, size_t errlen);
void us_rec_result_free(struct us_rec_result *r);

/* "20%", "0.2" → 0.2; "" → dflt. -1 for anything else or outside [0, 10]. */
int us_rec_parse_headroom(const char *s, double dflt, double *out);
/* "99.5" → 99.5 in [0, 100]; "" → dflt. */
int us_rec_parse_percentile(const char *s, double dflt, double *out);

const char *us_rec_finding_name(enum us_rec_finding f);  /* "over-provisioned", ... */
const char *us_rec_dim_name(enum us_rec_dim d);          /* "cpu", "memory", "network" */
const char *us_rec_dim_unit(enum us_rec_dim d);          /* "cores", "GiB", "Gbps" */

#endif
