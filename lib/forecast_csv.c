/* `timestamp,value` CSV to a regular series for forecasting: see
 * forecast_csv.h. Parsing (sortedness, duplicates, NaN) is lib/tscsv's; this
 * file adds what a forecast needs: a step, a slot per step, and gaps.
 *
 * Why the median spacing for the step: it ignores both the long gaps and the
 * odd early or late sample. Two points that land in the same step (an
 * irregular sampler, or duplicates when allowed) are averaged. */
#include "forecast_csv.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tscsv.h"

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

/* The 1-based line of each of the n points: the non-blank lines, past a
 * header on line 1 when there is one (tscsv accepts it nowhere else). */
static size_t *point_lines(const char *buf, size_t len, size_t n)
{
	size_t *lines = malloc(n * sizeof(*lines)), pos = 0, lineno = 0, k = 0, nonblank = 0;

	if (!lines)
		return NULL;
	for (int pass = 0; pass < 2; pass++) {
		int skip = pass == 1 && nonblank > n;

		pos = lineno = 0;
		while (pos < len) {
			const char *ln = buf + pos, *nl = memchr(ln, '\n', len - pos);
			size_t l = nl ? (size_t)(nl - ln) : len - pos;

			pos += l + (nl != NULL);
			lineno++;
			if (l > 0 && ln[l - 1] == '\r')
				l--;
			if (l == 0)
				continue;
			if (pass == 0) {
				nonblank++;
			} else if (skip) {
				skip = 0;       /* the header */
			} else if (k < n) {
				lines[k++] = lineno;
			}
		}
	}
	return lines;
}

static int64_t median_step(const struct us_ts_series *ts)
{
	int64_t *d = malloc(ts->n * sizeof(*d)), step = 0;
	size_t k = 0;

	if (!d)
		return -1;
	for (size_t i = 1; i < ts->n; i++)
		if (ts->p[i].t_us > ts->p[i - 1].t_us)
			d[k++] = ts->p[i].t_us - ts->p[i - 1].t_us;
	if (k) {
		qsort(d, k, sizeof(*d), cmp_i64);
		step = d[k / 2];
	}
	free(d);
	return step;
}

/* Fills runs of NAN in y (never at the ends) by linear interpolation. */
static size_t interpolate(double *y, size_t n)
{
	size_t filled = 0;

	for (size_t i = 1; i < n; i++) {
		size_t j = i;

		if (!isnan(y[i]))
			continue;
		while (j < n && isnan(y[j]))
			j++;
		for (size_t k = i; k < j; k++)
			y[k] = y[i - 1] + (y[j] - y[i - 1]) * (double)(k - i + 1) / (double)(j - i + 1);
		filled += j - i;
		i = j;
	}
	return filled;
}

static int fail(size_t *line, size_t at, char *err, size_t errlen, const char *fmt, double v)
{
	*line = at;
	snprintf(err, errlen, fmt, v);
	return -1;
}

static int regularise(const struct us_ts_series *ts, const size_t *lines, unsigned flags,
		      size_t max_gap, struct us_fc_series *s, size_t *line, char *err,
		      size_t errlen)
{
	int64_t step = median_step(ts), base = ts->p[0].t_us;
	size_t start = 0, nslot;
	double *cnt;

	if (step < 0)
		return fail(line, lines[0], err, errlen, "out of memory", 0);
	if (step == 0)
		return fail(line, lines[ts->n - 1], err, errlen,
			    "need at least two distinct timestamps", 0);
	/* keeps every difference and rounding below in int64 range */
	if ((double)ts->p[ts->n - 1].t_us - (double)base > 4e18)
		return fail(line, lines[ts->n - 1], err, errlen, "time span too long", 0);
	for (size_t i = 1; i < ts->n; i++) {
		int64_t a = (ts->p[i - 1].t_us - base + step / 2) / step;
		int64_t b = (ts->p[i].t_us - base + step / 2) / step;

		if (b - a - 1 <= (int64_t)max_gap)
			continue;
		if (flags & US_FCCSV_GAP_FAIL)
			return fail(line, lines[i], err, errlen,
				    "gap of %.0f missing steps before this line", (double)(b - a - 1));
		start = i;      /* a long gap: keep what follows */
	}
	s->step_us = step;
	s->t0_us = base + (ts->p[start].t_us - base + step / 2) / step * step;
	s->dropped = start;
	s->first_line = lines[start];
	nslot = (size_t)((ts->p[ts->n - 1].t_us - s->t0_us + step / 2) / step) + 1;
	s->y = malloc(nslot * sizeof(double));
	cnt = calloc(nslot, sizeof(double));
	if (!s->y || !cnt) {
		free(cnt);
		return fail(line, lines[0], err, errlen, "out of memory", 0);
	}
	for (size_t k = 0; k < nslot; k++)
		s->y[k] = 0;
	for (size_t i = start; i < ts->n; i++) {
		size_t k = (size_t)((ts->p[i].t_us - s->t0_us + step / 2) / step);

		s->y[k] += ts->p[i].v;
		cnt[k] += 1;
	}
	for (size_t k = 0; k < nslot; k++)
		s->y[k] = cnt[k] ? s->y[k] / cnt[k] : NAN;
	free(cnt);
	s->n = nslot;
	s->filled = interpolate(s->y, nslot);
	return 0;
}

int us_fc_csv_parse(const char *buf, size_t len, unsigned flags, size_t max_gap,
		    struct us_fc_series *s, size_t *line, char *err, size_t errlen)
{
	struct us_ts_series ts;
	size_t *lines = NULL;
	int rc = -1;

	memset(s, 0, sizeof(*s));
	if (max_gap == 0)
		max_gap = US_FCCSV_MAX_GAP;
	if (us_tscsv_parse(buf, len, flags & US_FCCSV_DUP_OK ? US_TSCSV_DUP_OK : 0, &ts, line, err,
			   errlen) < 0)
		return -1;
	if (!(lines = point_lines(buf, len, ts.n))) {
		fail(line, 1, err, errlen, "out of memory", 0);
		goto cleanup;
	}
	for (size_t i = 0; i < ts.n; i++)
		if (ts.p[i].v < 0 && !(flags & US_FCCSV_NEG_OK)) {
			fail(line, lines[i], err, errlen, "negative value %g", ts.p[i].v);
			goto cleanup;
		}
	if (ts.n < 2) {
		fail(line, lines[0], err, errlen, "need at least two points", 0);
		goto cleanup;
	}
	s->datetime = ts.datetime;
	if (regularise(&ts, lines, flags, max_gap, s, line, err, errlen) < 0)
		goto cleanup;
	rc = 0;
cleanup:
	if (rc < 0)
		us_fc_series_free(s);
	free(lines);
	us_tscsv_free(&ts);
	return rc;
}

int us_fc_csv_read(const char *path, unsigned flags, size_t max_gap, struct us_fc_series *s,
		   char *err, size_t errlen)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL, why[256];
	size_t len = 0, cap = 0, line = 0;
	int rc = -1;

	memset(s, 0, sizeof(*s));
	if (!f) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	for (;;) {
		if (len == cap) {
			char *nb = realloc(buf, cap = cap ? cap * 2 : 65536);

			if (!nb) {
				snprintf(err, errlen, "%s: out of memory", path);
				goto cleanup;
			}
			buf = nb;
		}
		size_t r = fread(buf + len, 1, cap - len, f);

		len += r;
		if (r == 0)
			break;
	}
	if (ferror(f)) {
		snprintf(err, errlen, "%s: read error", path);
		goto cleanup;
	}
	if (us_fc_csv_parse(buf, len, flags, max_gap, s, &line, why, sizeof(why)) < 0) {
		snprintf(err, errlen, "%s:%zu: %s", path, line, why);
		goto cleanup;
	}
	rc = 0;
cleanup:
	free(buf);
	fclose(f);
	return rc;
}

void us_fc_series_free(struct us_fc_series *s)
{
	free(s->y);
	memset(s, 0, sizeof(*s));
}
