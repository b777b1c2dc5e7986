/* Anomaly alerts over stored KPI series: the online detector
 * (coordinator/anomaly.h) run over one metric of a workload, for production,
 * for the shadow, and over the shadow/production ratio at each step (where
 * a shadow drifts away from production while both look normal alone).
 * The detectors first learn from the history before the window (a week by
 * default: their routine memory), so the window alerts from its first step
 * instead of spending its first 15% on probation.
 * Read-only: callers pass their own SQLite connection. */
#ifndef US_ALERTS_H
#define US_ALERTS_H

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

enum us_alert_series {
	US_ALERT_PRODUCTION,
	US_ALERT_SHADOW,
	US_ALERT_RATIO,         /* shadow / production */
};

struct us_alert {
	uint64_t t_ns;          /* step start, unix ns */
	enum us_alert_series series;
	double value;
	double score;
	char reason[160];
};

struct us_alerts_query {
	const char *workload;
	const char *metric;
	const char *field;      /* histograms: "p50" "p90" "p99" (default) "p999" "mean";
				 * counters: the increase per second, whatever field says */
	uint64_t from_ns, to_ns;        /* the window: alerts only in it */
	uint64_t learn_ns;              /* history before from_ns the detectors learn from */
	uint64_t step_ns;
};

/* The values per step of each series (for plotting) and the alerts, both
 * malloc'd (free() them). Returns 0 or -1 with a reason. */
struct us_alerts_result {
	struct us_alert *alerts;
	size_t nalerts;
	size_t points[3];       /* points in the window per enum us_alert_series */
	size_t learned[3];      /* points of the history before it */
};

int us_alerts_run(sqlite3 *db, const struct us_alerts_query *q, struct us_alerts_result *out,
		  char *err, size_t errlen);
const char *us_alert_series_name(enum us_alert_series s);

#endif
