/* The comparison report as one self-contained HTML5 file: inline CSS and
 * inline SVG drawn here, no JavaScript, no external URL of any kind, so the
 * file can be mailed, attached to a ticket or opened offline and shows the
 * same thing everywhere.
 *
 * The renderer knows nothing of the statistics: the caller (compare,
 * recommend, anomaly detection) fills a struct us_report with plain values
 * and strings it already computed. Nothing here is owned: every pointer is
 * borrowed for the duration of the call. Strings may be NULL (shown as a
 * dash) and are always escaped, since workload and KPI names are user
 * input. Non-finite numbers (NaN, inf) mean "no value" and are shown as a
 * dash or left out of a chart, never printed as "nan". */
#ifndef US_REPORT_HTML_H
#define US_REPORT_HTML_H

#include <stddef.h>
#include <stdio.h>

/* Timelines beyond this many are counted in a note, not drawn: a report is
 * read by a person, and the big file would only hide the verdict. */
#define US_REPORT_MAX_TIMELINES 32

/* One row of the KPI table. Shifts are relative, shadow vs production, in
 * percent: +10 means the shadow's value is 10% higher. */
struct us_report_kpi {
	const char *name;               /* "latency p99" */
	const char *unit;               /* "ms", "%", "req/s" */
	double production;              /* the KPI's value on each side */
	double shadow;
	double estimate;                /* shift, % (e.g. Hodges-Lehmann) */
	double ci_low;                  /* its confidence interval, % */
	double ci_high;
	const char *cls;                /* "Pass", "High", "Low", "NoData" */
	int critical;                   /* a critical KPI fails the whole score */
	size_t n_production;            /* samples behind each side */
	size_t n_shadow;
};

/* A point of an empirical CDF: fraction of requests at or below value_ms.
 * Any order; points with value_ms <= 0 cannot sit on the log axis and are
 * left out. */
struct us_report_cdf_point {
	double value_ms;
	double fraction;                /* 0..1 */
};

struct us_report_point {
	double t;                       /* unix seconds */
	double value;                   /* NaN = gap in the line */
};

struct us_report_alert {
	double t;                       /* unix seconds */
	double score;                   /* the detector's anomaly score */
	const char *reason;
};

struct us_report_timeline {
	const char *kpi;
	const char *unit;
	const struct us_report_point *production;
	size_t n_production;
	const struct us_report_point *shadow;
	size_t n_shadow;
	const struct us_report_alert *alerts;
	size_t n_alerts;
};

struct us_report {
	const char *title;              /* NULL: "understudy comparison" */
	const char *workload;
	const char *production_type;    /* instance types, "m5.xlarge" */
	const char *shadow_type;
	double window_start;            /* unix seconds, NaN if unknown */
	double window_end;
	const char *decision;           /* "Pass", "Marginal", "Fail", "Inconclusive" */
	double score;                   /* 0..100 */
	double confidence;              /* 0..1 */
	const char *mode;               /* "paired" or "unpaired" */

	const struct us_report_kpi *kpis;
	size_t n_kpis;

	const struct us_report_cdf_point *cdf_production;
	size_t n_cdf_production;
	const struct us_report_cdf_point *cdf_shadow;
	size_t n_cdf_shadow;

	const struct us_report_timeline *timelines;
	size_t n_timelines;
};

/* Writes the whole report to out. Returns 0, or -1 with the reason in err:
 * an array with a count but no pointer, out of memory, or a write error
 * (out is flushed, so a full disk is reported here, not lost later). */
int us_report_write_html(const struct us_report *r, FILE *out, char *err, size_t errlen);

#endif
