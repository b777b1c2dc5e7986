/* Time-series queries over the store: per workload, role and metric, the
 * figures of each step of a time range, from raw intervals or the exact
 * 1-minute / 1-hour rollups (log-linear histograms merge bucket-wise, so a
 * quantile from a rollup equals the quantile over the merged raw intervals,
 * to the bucket). Read-only: callers pass their own SQLite connection. */
#ifndef US_SERIES_H
#define US_SERIES_H

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

struct us_series_point {
	uint64_t start_ns;      /* step start (unix ns), aligned to the step */
	uint64_t end_ns;
	uint64_t count;         /* histogram samples, or 0 for counters */
	uint64_t sum;           /* histogram sum, or the counter's increase */
	double mean;
	double p50, p90, p99, p999;
};

struct us_series_query {
	const char *workload;
	int role;               /* UNDERSTUDY__ROLE__PRODUCTION / __SHADOW */
	const char *metric;
	uint64_t from_ns;       /* [from, to) */
	uint64_t to_ns;
	uint64_t step_ns;       /* >= 1 s */
};

/* Fills *out (malloc'd, free() it) with one point per step that has data,
 * in time order. Returns 0, or -1 with a reason naming the bad field (e.g.
 * "step: must be at least 1s") or the SQLite error. */
int us_series_query(sqlite3 *db, const struct us_series_query *q,
		    struct us_series_point **out, size_t *n, char *err, size_t errlen);

#endif
