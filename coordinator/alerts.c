/* Anomaly alerts over stored series; see alerts.h. */
#include "alerts.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "anomaly.h"
#include "series.h"
#include "understudy.pb-c.h"

const char *us_alert_series_name(enum us_alert_series s)
{
	switch (s) {
	case US_ALERT_PRODUCTION: return "production";
	case US_ALERT_SHADOW: return "shadow";
	default: return "shadow/production";
	}
}

/* One step's value: a quantile or the mean of a histogram, or a counter's
 * increase per second. */
static double point_value(const struct us_series_point *p, const char *field)
{
	double secs = (double)(p->end_ns - p->start_ns) / 1e9;

	if (!p->count)
		return secs > 0 ? (double)p->sum / secs : NAN;
	if (!field || !strcmp(field, "p99"))
		return p->p99;
	if (!strcmp(field, "p50"))
		return p->p50;
	if (!strcmp(field, "p90"))
		return p->p90;
	if (!strcmp(field, "p999"))
		return p->p999;
	return p->mean;
}

static int append(struct us_alerts_result *out, size_t *cap, const struct us_alert *a)
{
	if (out->nalerts == *cap) {
		size_t ncap = *cap ? 2 * *cap : 16;
		struct us_alert *grown = realloc(out->alerts, ncap * sizeof(*grown));

		if (!grown)
			return -ENOMEM;
		out->alerts = grown;
		*cap = ncap;
	}
	out->alerts[out->nalerts++] = *a;
	return 0;
}

/* Runs a fresh detector over vals (NaN steps skipped), appending the alerts
 * of points from index `first` on; the points before it are history. */
static int detect(const double *vals, const uint64_t *ts, size_t n, size_t first,
		  uint64_t step_ns, enum us_alert_series s, struct us_alerts_result *out,
		  size_t *cap)
{
	struct us_anomaly_params p;
	struct us_anomaly *a;
	size_t learned = 0, finite = 0;
	int rc = 0;

	for (size_t i = 0; i < n; i++) {
		finite += isfinite(vals[i]) != 0;
		learned += i < first && isfinite(vals[i]);
	}
	us_anomaly_defaults(&p);
	/* why: NAB's probation (15%, at most 750 points) when there is little
	 * history; with more, the history alone is the probation */
	p.probation = us_anomaly_probation(finite);
	if (p.probation < learned)
		p.probation = learned;
	p.season = us_anomaly_season((double)step_ns / 1e9);
	a = us_anomaly_new(&p);
	if (!a)
		return -ENOMEM;
	out->points[s] = finite - learned;
	out->learned[s] = learned;
	for (size_t i = 0; i < n && rc == 0; i++) {
		struct us_anomaly_result r;
		struct us_alert al = { .t_ns = ts[i], .series = s, .value = vals[i] };

		if (!isfinite(vals[i]))
			continue;
		us_anomaly_step(a, vals[i], &r);
		if (!r.anomaly || i < first)
			continue;
		al.score = r.score;
		us_anomaly_reason(&r, al.reason, sizeof(al.reason));
		rc = append(out, cap, &al);
	}
	us_anomaly_free(a);
	return rc;
}

/* Both roles' points on one time axis: the union of their step starts. */
static int align(const struct us_series_point *pp, size_t np, const struct us_series_point *sp,
		 size_t ns, const char *field, uint64_t **ts, double *vals[3], size_t *n)
{
	size_t i = 0, j = 0, k = 0, cap = np + ns;

	*ts = malloc((cap ? cap : 1) * sizeof(**ts));
	for (int s = 0; s < 3; s++)
		vals[s] = malloc((cap ? cap : 1) * sizeof(double));
	if (!*ts || !vals[0] || !vals[1] || !vals[2])
		return -ENOMEM;
	while (i < np || j < ns) {
		uint64_t t = i < np && (j >= ns || pp[i].start_ns <= sp[j].start_ns) ?
			     pp[i].start_ns : sp[j].start_ns;
		double pv = NAN, sv = NAN;

		if (i < np && pp[i].start_ns == t)
			pv = point_value(&pp[i++], field);
		if (j < ns && sp[j].start_ns == t)
			sv = point_value(&sp[j++], field);
		(*ts)[k] = t;
		vals[US_ALERT_PRODUCTION][k] = pv;
		vals[US_ALERT_SHADOW][k] = sv;
		vals[US_ALERT_RATIO][k] = isfinite(pv) && isfinite(sv) && pv > 0 ? sv / pv : NAN;
		k++;
	}
	*n = k;
	return 0;
}

int us_alerts_run(sqlite3 *db, const struct us_alerts_query *q, struct us_alerts_result *out,
		  char *err, size_t errlen)
{
	struct us_series_query sq = {
		.workload = q->workload, .metric = q->metric,
		.from_ns = q->from_ns > q->learn_ns ? q->from_ns - q->learn_ns : 0,
		.to_ns = q->to_ns, .step_ns = q->step_ns,
	};
	struct us_series_point *pp = NULL, *sp = NULL;
	double *vals[3] = { NULL, NULL, NULL };
	uint64_t *ts = NULL;
	size_t np = 0, ns = 0, n = 0, cap = 0, first = 0;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	sq.role = UNDERSTUDY__ROLE__PRODUCTION;
	if (us_series_query(db, &sq, &pp, &np, err, errlen) < 0)
		goto cleanup;
	sq.role = UNDERSTUDY__ROLE__SHADOW;
	if (us_series_query(db, &sq, &sp, &ns, err, errlen) < 0)
		goto cleanup;
	if (align(pp, np, sp, ns, q->field, &ts, vals, &n) < 0)
		goto oom;
	while (first < n && ts[first] < q->from_ns)
		first++;
	if (first == n) {
		snprintf(err, errlen, "no points of %s for workload %s in the range", q->metric,
			 q->workload);
		goto cleanup;
	}
	for (int s = 0; s < 3; s++)
		if (detect(vals[s], ts, n, first, q->step_ns, (enum us_alert_series)s, out,
			   &cap) < 0)
			goto oom;
	rc = 0;
	goto cleanup;
oom:
	snprintf(err, errlen, "out of memory");
cleanup:
	if (rc < 0) {
		free(out->alerts);
		memset(out, 0, sizeof(*out));
	}
	free(pp);
	free(sp);
	free(ts);
	for (int s = 0; s < 3; s++)
		free(vals[s]);
	return rc;
}
