/* Online anomaly detector for one KPI series: one call per point, O(window)
 * work and no allocation after creation, no I/O.
 *
 * Per point it measures two robust deviations from a sliding baseline (the
 * median and MAD of the last `window` values): the point itself ("spike") and
 * the mean of the last few points ("level shift"). Each deviation is turned
 * into a likelihood by comparing its short-term average with its own
 * long-term distribution (Numenta's "anomaly likelihood" idea), so a series
 * that is always jumpy does not alarm all the time. With `season` set, a
 * spike that repeats one at the same time yesterday (within an hour) is
 * explained by a second, seasonal expert and scores low. The score is the
 * likelihood in [0,1]; a point is an anomaly when the score reaches a fixed
 * threshold, outside the probationary period, not within `suppress` points
 * of the previous alert, and beyond the largest deviation of the same sign
 * the series showed in the last week (7 seasons, or `window` points without
 * a season) without an alert. See docs/anomalies.md. */
#ifndef US_ANOMALY_H
#define US_ANOMALY_H

#include <stddef.h>
#include <stdint.h>

struct us_anomaly_params {
	size_t window;          /* baseline: last N values (default 1024) */
	size_t probation;       /* first N points never alert (default 750) */
	size_t suppress;        /* points after an alert that cannot alert (default 288) */
	double threshold;       /* score at which a point is an anomaly (default 0.9999) */
	size_t season;          /* points per day, 0 for no seasonal expert (default 0) */
};

enum us_anomaly_kind {
	US_ANOM_NONE,
	US_ANOM_SPIKE_UP, US_ANOM_SPIKE_DOWN,
	US_ANOM_SHIFT_UP, US_ANOM_SHIFT_DOWN,
};

struct us_anomaly_result {
	double score;           /* likelihood in [0,1] */
	int anomaly;            /* 1 when this point raises an alert */
	enum us_anomaly_kind kind;      /* the stronger deviation (also when not an anomaly) */
	double sigma;           /* its size in robust standard deviations, signed */
	double baseline;        /* the baseline median */
};

struct us_anomaly;

void us_anomaly_defaults(struct us_anomaly_params *p);
/* NAB's probationary period for a series of n points: min(15% n, 750). */
size_t us_anomaly_probation(size_t n);
/* Points per day at one point every step_s seconds, 0 when that is not a
 * usable season (fewer than 24 or more than 2^20 points). */
size_t us_anomaly_season(double step_s);
/* NULL when out of memory or a parameter is out of range. */
struct us_anomaly *us_anomaly_new(const struct us_anomaly_params *p);
void us_anomaly_free(struct us_anomaly *a);
/* Feeds the next point (values must be finite). */
void us_anomaly_step(struct us_anomaly *a, double v, struct us_anomaly_result *r);
/* "value 4.1 sigma above the baseline 12.3 (spike)" and the like. */
void us_anomaly_reason(const struct us_anomaly_result *r, char *buf, size_t len);

#endif
