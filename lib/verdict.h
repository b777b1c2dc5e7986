/* The production/shadow verdict: each KPI judged on a confidence interval
 * against the policy's tolerance (Pass / High / Low / NoData), a weighted
 * score, a decision and the confidence that every critical KPI is within
 * tolerance. Pure: the caller gathers the samples (CSV files in the CLI,
 * the store in the coordinator) and prints the result. docs/compare.md
 * explains how to read it. */
#ifndef US_VERDICT_H
#define US_VERDICT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hist.h"

enum us_kpi_id {
	US_KPI_LATENCY,        /* location shift of request latency (HL), ratio */
	US_KPI_LATENCY_P50,
	US_KPI_LATENCY_P90,
	US_KPI_LATENCY_P99,    /* critical */
	US_KPI_ERROR_RATE,     /* critical: shadow minus production error rate */
	US_KPI_THROUGHPUT,     /* shadow answers / mirrored requests */
	US_KPI_RUNQ_P99,       /* kernel histograms: p99 ratio */
	US_KPI_IO_P99,
	US_KPI_TCP_RTT_P99,
	US_KPI_TCP_RETRANS,    /* per-interval values: HL shift / production median */
	US_KPI_CPU_PER_REQ,
	US_KPI_MEMORY,
	US_KPI_NR,
};

#define US_HKPI_FIRST US_KPI_RUNQ_P99
#define US_HKPI_NR 3        /* histogram KPIs, from US_HKPI_FIRST */
#define US_IKPI_FIRST US_KPI_TCP_RETRANS
#define US_IKPI_NR 3        /* interval KPIs, from US_IKPI_FIRST */

enum us_kpi_class { US_CLASS_NODATA, US_CLASS_PASS, US_CLASS_HIGH, US_CLASS_LOW };
enum us_decision { US_DECISION_PASS, US_DECISION_MARGINAL, US_DECISION_FAIL,
		   US_DECISION_INCONCLUSIVE };

struct us_policy {
	double confidence;      /* of every interval (critical KPIs: see verdict.c) */
	double tol_latency;     /* relative: latency shift, p50, p90 (0.10) */
	double tol_p99;         /* relative (0.10) */
	double tol_error;       /* absolute error-rate increase (0.001 = 0.1 pp) */
	double min_throughput;  /* answered / mirrored (0.98) */
	double tol_kernel;      /* relative: run queue, I/O, RTT p99, retransmits (0.25) */
	double tol_cpu;         /* relative: CPU time per request (0.10) */
	double tol_memory;      /* relative (0.10) */
	uint64_t min_samples;   /* requests per side before a verdict (200) */
	uint64_t min_intervals; /* per side for interval KPIs (10) */
	unsigned resamples;     /* bootstrap, >= 1000 (2000) */
	uint64_t seed;
};

/* What to compare. Latency arrays are sorted in place; values >= 0 (in any
 * unit, the same on both sides). With paired, prod[i] and shadow[i] are the
 * same request and n_prod == n_shadow. */
struct us_cmp_input {
	double *prod, *shadow;
	size_t n_prod, n_shadow;
	bool paired;
	bool has_errors;
	uint64_t prod_errors, prod_requests, shadow_errors, shadow_requests;
	bool has_throughput;
	uint64_t mirrored, answered;
	const struct us_hist *hist_prod[US_HKPI_NR], *hist_shadow[US_HKPI_NR]; /* NULL: none */
	double *iv_prod[US_IKPI_NR], *iv_shadow[US_IKPI_NR];  /* sorted in place */
	size_t n_iv_prod[US_IKPI_NR], n_iv_shadow[US_IKPI_NR];
};

struct us_kpi {
	const char *name;
	const char *mode;       /* the method: mann-whitney, wilcoxon-paired, bootstrap, ... */
	const char *unit;       /* ratio (shadow/production), diff (shadow - production), share */
	double estimate, lo, hi;
	double level;           /* the interval's confidence */
	double limit;           /* the tolerance bound on the worse side */
	double p_within;        /* probability the true value is within limit */
	bool significant;       /* the interval excludes "no change" */
	bool fails;             /* class is the worse direction */
	bool critical;
	double weight;
	enum us_kpi_class cls;
	uint64_t n_prod, n_shadow;
};

#define US_CDF_POINTS 101   /* latency quantiles at 0%, 1%, ..., 100% */

struct us_verdict {
	struct us_kpi kpi[US_KPI_NR];
	/* both sides' latency distributions, for reports; n_cdf is 0 when
	 * there were too few samples for a verdict */
	double cdf_prod[US_CDF_POINTS], cdf_shadow[US_CDF_POINTS];
	size_t n_cdf;
	enum us_decision decision;
	double score;           /* 0-100 */
	double confidence;      /* [0, 1] */
	bool paired;
	char reason[512];
};

void us_policy_defaults(struct us_policy *p);
const char *us_kpi_class_name(enum us_kpi_class c);
const char *us_decision_name(enum us_decision d);

/* Compares; -1 only when out of memory. */
int us_verdict_run(const struct us_policy *pol, struct us_cmp_input *in, struct us_verdict *v);

/* A/A calibration: widens pol's tolerances by the noise floor measured in
 * aa, a verdict over two samples of the same instance type (each KPI's
 * interval half-width, relative to no change). Writes what it did to note. */
void us_policy_calibrate(struct us_policy *pol, const struct us_verdict *aa, char *note,
			 size_t notelen);

/* The exit status of a decision: 0 Pass, 1 Fail, 3 Marginal or Inconclusive. */
int us_decision_exit(enum us_decision d);

#endif
