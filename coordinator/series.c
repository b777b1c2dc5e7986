/* Series query: validation, the choice of resolution (raw, 1 m or 1 h), and
 * the bucket-wise merge of stored points into steps. Steps are aligned to
 * multiples of the step since the epoch; a stored point belongs to the step
 * holding its (bucket) start, the same rule the rollup uses, so a step
 * answered from a rollup equals the same step answered from raw points.
 * Figures by kind: histograms give count, sum, mean and quantiles; counters
 * give sum (the increase) and mean (increase per second of the step); gauges
 * give count (observations) and mean (their average). */
#include "series.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "hist.h"
#include "rollup.h"

#define SERIES_MAX_STEPS 100000

enum kind { K_HIST, K_COUNTER, K_GAUGE };

/* Accumulates the stored points of one step. */
struct acc {
	uint64_t start_ns;
	uint64_t count, sum;
	double gauge_sum;
	int rows;
	struct us_hist *hist;
};

static int validate(const struct us_series_query *q, char *err, size_t errlen)
{
	uint64_t steps;

	if (!q->workload || !q->workload[0])
		return snprintf(err, errlen, "workload: required"), -1;
	if (!q->metric || !q->metric[0])
		return snprintf(err, errlen, "metric: required"), -1;
	if (q->role != UNDERSTUDY__ROLE__PRODUCTION && q->role != UNDERSTUDY__ROLE__SHADOW)
		return snprintf(err, errlen, "role: must be production (%d) or shadow (%d), got %d",
				UNDERSTUDY__ROLE__PRODUCTION, UNDERSTUDY__ROLE__SHADOW, q->role), -1;
	if (q->step_ns < US_NS_PER_SEC)
		return snprintf(err, errlen, "step: must be at least 1s"), -1;
	if (q->from_ns >= q->to_ns)
		return snprintf(err, errlen, "from: must be before to"), -1;
	steps = (q->to_ns - (q->from_ns - q->from_ns % q->step_ns) + q->step_ns - 1) / q->step_ns;
	if (steps > SERIES_MAX_STEPS)
		return snprintf(err, errlen, "step: the range holds %llu steps, more than %d; "
				"use a larger step or a shorter range",
				(unsigned long long)steps, SERIES_MAX_STEPS), -1;
	return 0;
}

/* The coarsest table whose bucket width divides the step. */
static const char *pick_table(uint64_t step_ns, const char **start_col)
{
	*start_col = "bucket_start_ns";
	if (step_ns % US_ROLLUP_HOUR_NS == 0)
		return "rollup_1h";
	if (step_ns % US_ROLLUP_MINUTE_NS == 0)
		return "rollup_1m";
	*start_col = "start_ns";
	return "points_raw";
}

/* Series id and kind; 1 when the series does not exist. */
static int find_series(sqlite3 *db, const struct us_series_query *q, int64_t *id,
		       enum kind *kind)
{
	sqlite3_stmt *s = NULL;
	const char *k;
	int rc = -1;

	if (sqlite3_prepare_v2(db, "SELECT id, kind FROM series WHERE workload = ? AND role = ? "
			       "AND metric = ?", -1, &s, NULL) != SQLITE_OK)
		goto cleanup;
	sqlite3_bind_text(s, 1, q->workload, -1, SQLITE_STATIC);
	sqlite3_bind_int(s, 2, q->role);
	sqlite3_bind_text(s, 3, q->metric, -1, SQLITE_STATIC);
	switch (sqlite3_step(s)) {
	case SQLITE_DONE:
		rc = 1;
		goto cleanup;
	case SQLITE_ROW:
		break;
	default:
		goto cleanup;
	}
	*id = sqlite3_column_int64(s, 0);
	k = (const char *)sqlite3_column_text(s, 1);
	*kind = strcmp(k, "histogram") == 0 ? K_HIST : strcmp(k, "counter") == 0 ? K_COUNTER
										 : K_GAUGE;
	rc = 0;
cleanup:
	sqlite3_finalize(s);
	return rc;
}

static void acc_point(const struct acc *a, enum kind kind, uint64_t step_ns,
		      struct us_series_point *p)
{
	memset(p, 0, sizeof(*p));
	p->start_ns = a->start_ns;
	p->end_ns = a->start_ns + step_ns;
	p->count = a->count;
	p->sum = a->sum;
	switch (kind) {
	case K_HIST:
		p->mean = us_hist_mean(a->hist);
		p->p50 = us_hist_quantile(a->hist, 0.5);
		p->p90 = us_hist_quantile(a->hist, 0.9);
		p->p99 = us_hist_quantile(a->hist, 0.99);
		p->p999 = us_hist_quantile(a->hist, 0.999);
		break;
	case K_COUNTER:
		p->mean = (double)a->sum / ((double)step_ns / (double)US_NS_PER_SEC);
		break;
	case K_GAUGE:
		p->mean = a->count ? a->gauge_sum / (double)a->count : 0.0;
		break;
	}
}

static void acc_reset(struct acc *a, uint64_t start_ns)
{
	a->start_ns = start_ns;
	a->count = a->sum = 0;
	a->gauge_sum = 0.0;
	a->rows = 0;
	us_hist_reset(a->hist);
}

/* Adds the current row of s (start, count, sum, gauge_sum, hist). */
static int acc_add(struct acc *a, sqlite3_stmt *s, enum kind kind, char *err, size_t errlen)
{
	a->rows++;
	a->count += (uint64_t)sqlite3_column_int64(s, 1);
	a->sum += (uint64_t)sqlite3_column_int64(s, 2);
	a->gauge_sum += sqlite3_column_double(s, 3);
	if (kind != K_HIST || sqlite3_column_type(s, 4) != SQLITE_BLOB)
		return 0;
	return us_rollup_blob_add(sqlite3_column_blob(s, 4), (size_t)sqlite3_column_bytes(s, 4),
				  a->hist, err, errlen);
}

static int scan(sqlite3 *db, const struct us_series_query *q, int64_t id, enum kind kind,
		struct us_series_point *pts, size_t *n, char *err, size_t errlen)
{
	const char *col, *table = pick_table(q->step_ns, &col);
	uint64_t from = q->from_ns - q->from_ns % q->step_ns;
	struct acc a = { .hist = malloc(sizeof(struct us_hist)) };
	sqlite3_stmt *s = NULL;
	char sql[256];
	int rc = -1, st;

	if (!a.hist) {
		snprintf(err, errlen, "out of memory");
		goto cleanup;
	}
	acc_reset(&a, from);
	snprintf(sql, sizeof(sql), "SELECT %s, count, sum, gauge_sum, hist FROM %s "
		 "WHERE series_id = ? AND %s >= ? AND %s < ? ORDER BY %s",
		 col, table, col, col, col);
	if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK)
		goto sqlfail;
	sqlite3_bind_int64(s, 1, id);
	sqlite3_bind_int64(s, 2, (sqlite3_int64)from);
	sqlite3_bind_int64(s, 3, (sqlite3_int64)q->to_ns);
	while ((st = sqlite3_step(s)) == SQLITE_ROW) {
		uint64_t t = (uint64_t)sqlite3_column_int64(s, 0);
		uint64_t step = t - t % q->step_ns;

		if (step != a.start_ns) {
			if (a.rows)
				acc_point(&a, kind, q->step_ns, &pts[(*n)++]);
			acc_reset(&a, step);
		}
		if (acc_add(&a, s, kind, err, errlen) < 0)
			goto cleanup;
	}
	if (st != SQLITE_DONE)
		goto sqlfail;
	if (a.rows)
		acc_point(&a, kind, q->step_ns, &pts[(*n)++]);
	rc = 0;
	goto cleanup;
sqlfail:
	snprintf(err, errlen, "series query: %s", sqlite3_errmsg(db));
cleanup:
	sqlite3_finalize(s);
	free(a.hist);
	return rc;
}

int us_series_query(sqlite3 *db, const struct us_series_query *q,
		    struct us_series_point **out, size_t *n, char *err, size_t errlen)
{
	struct us_series_point *pts = NULL;
	enum kind kind = K_HIST;
	uint64_t from;
	int64_t id = 0;
	int rc = -1, found;

	*out = NULL;
	*n = 0;
	if (validate(q, err, errlen) < 0)
		return -1;
	found = find_series(db, q, &id, &kind);
	if (found < 0) {
		snprintf(err, errlen, "series query: %s", sqlite3_errmsg(db));
		return -1;
	}
	if (found > 0)
		return 0;
	/* at most one point per step: validate() bounded the count */
	from = q->from_ns - q->from_ns % q->step_ns;
	pts = calloc((q->to_ns - from + q->step_ns - 1) / q->step_ns, sizeof(*pts));
	if (!pts) {
		snprintf(err, errlen, "out of memory");
		goto cleanup;
	}
	if (scan(db, q, id, kind, pts, n, err, errlen) < 0)
		goto cleanup;
	*out = pts;
	pts = NULL;
	rc = 0;
cleanup:
	free(pts);
	if (rc < 0)
		*n = 0;
	return rc;
}
