/* Business forecasts and calendars (fc_events.h). The YAML side is strict —
 * an unknown key, a date that does not exist or an event that ends before it
 * starts is an error naming its line — because a silently ignored launch
 * event is an under-provisioned launch. The numeric side is pure and works on
 * plain arrays so that any forecasting model can feed it. */
#include "fc_events.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "config.h"

/* ---- time ------------------------------------------------------------------ */

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
 * days_from_civil): exact for every year, no timegm() and no TZ. */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

	return era * 146097 + (int64_t)doe - 719468;
}

static int leap(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* Exactly n digits from *s, advancing it; -1 when they are not there. */
static int digits(const char **s, int n)
{
	int v = 0;

	for (int i = 0; i < n; i++, (*s)++) {
		if (!isdigit((unsigned char)**s))
			return -1;
		v = v * 10 + (**s - '0');
	}
	return v;
}

static int parse_unix(const char *s, int64_t *t)
{
	char *end;
	long long v;

	if (!isdigit((unsigned char)s[0]))
		return -1;
	v = strtoll(s, &end, 10);
	if (*end || v < 0 || v > 253402300799LL) /* up to 9999-12-31 */
		return -1;
	*t = v;
	return 0;
}

int us_fc_parse_time(const char *s, int64_t *t)
{
	static const unsigned char mdays[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	const char *p = s;
	int y, mo, d, h = 0, mi = 0, sec = 0;

	if (strlen(s) < 10 || s[4] != '-')
		return parse_unix(s, t);
	if ((y = digits(&p, 4)) < 0 || *p++ != '-' || (mo = digits(&p, 2)) < 0 || *p++ != '-' ||
	    (d = digits(&p, 2)) < 0)
		return -1;
	if (y < 1970 || mo < 1 || mo > 12 || d < 1 ||
	    d > mdays[mo - 1] + (mo == 2 && leap(y)))
		return -1;
	if (*p == 'T' || *p == ' ') {
		p++;
		if ((h = digits(&p, 2)) < 0 || *p++ != ':' || (mi = digits(&p, 2)) < 0)
			return -1;
		if (*p == ':' && (p++, (sec = digits(&p, 2)) < 0))
			return -1;
		if (h > 23 || mi > 59 || sec > 59)
			return -1;
		if (*p == 'Z')
			p++;
	}
	if (*p)
		return -1;
	*t = days_from_civil(y, (unsigned)mo, (unsigned)d) * US_FCEV_DAY_S + h * 3600 + mi * 60 + sec;
	return 0;
}

static int64_t day_floor(int64_t t)
{
	int64_t d = t / US_FCEV_DAY_S;

	if (t % US_FCEV_DAY_S < 0)
		d--;
	return d * US_FCEV_DAY_S;
}

/* ---- YAML ------------------------------------------------------------------ */

struct parser {
	const struct us_conf_doc *doc;
	char *err;
	size_t errlen;
};

/* The scalar under key: 1 when absent or null, -1 (error) when not a scalar. */
static int scalar_at(struct parser *ps, const struct us_conf_node *map, const char *key,
		     const struct us_conf_node **out, const char *what)
{
	const struct us_conf_node *n = us_conf_get(map, key);

	if (!n || us_conf_is_null(n))
		return 1;
	if (us_conf_type(n) != US_CONF_SCALAR)
		return us_conf_errorf(ps->doc, n, ps->err, ps->errlen, "expected %s", what);
	*out = n;
	return 0;
}

/* A finite number; "10%" when percent (then divided by 100), "x1.8" or
 * "×1.8" when times. Same return convention as the config getters. */
static int get_number(struct parser *ps, const struct us_conf_node *map, const char *key,
		      int percent, int times, double *out)
{
	const struct us_conf_node *n = NULL;
	const char *s, *start;
	char *end;
	double v;
	int r;

	if ((r = scalar_at(ps, map, key, &n, "a number")) != 0)
		return r;
	start = s = us_conf_scalar(n, NULL);
	if (times && (s[0] == 'x' || s[0] == 'X'))
		s++;
	else if (times && strncmp(s, "\xc3\x97", 2) == 0)
		s += 2;
	while (*s == ' ')
		s++;
	v = strtod(s, &end);
	if (percent && *end == '%')
		end++;
	if (end == s || *end || !isfinite(v))
		return us_conf_errorf(ps->doc, n, ps->err, ps->errlen, "expected a number%s, got '%.40s'",
				      percent ? " such as 10%" : times ? " such as 1.8" : "", start);
	*out = percent ? v / 100 : v;
	return 0;
}

static int get_time(struct parser *ps, const struct us_conf_node *map, const char *key,
		    int64_t *out)
{
	const struct us_conf_node *n = NULL;
	int r;

	if ((r = scalar_at(ps, map, key, &n, "a date")) != 0)
		return r;
	if (us_fc_parse_time(us_conf_scalar(n, NULL), out) < 0)
		return us_conf_errorf(ps->doc, n, ps->err, ps->errlen,
				      "expected a UTC date YYYY-MM-DD[THH:MM[:SS]][Z] or unix "
				      "seconds, got '%.40s'", us_conf_scalar(n, NULL));
	return 0;
}

static int require(struct parser *ps, const struct us_conf_node *map, const char *key, int r)
{
	if (r == 1)
		return us_conf_missing(ps->doc, map, key, ps->err, ps->errlen);
	return r;
}

static int parse_growth(struct parser *ps, const struct us_conf_node *g, struct us_fc_events *ev)
{
	static const char *const keys[] = { "percent_per_month", "from", NULL };

	if (us_conf_type(g) != US_CONF_MAP)
		return us_conf_errorf(ps->doc, g, ps->err, ps->errlen,
				      "expected a mapping with percent_per_month and from");
	if (us_conf_check_keys(ps->doc, g, keys, ps->err, ps->errlen) < 0 ||
	    require(ps, g, "percent_per_month", get_number(ps, g, "percent_per_month", 1, 0,
							   &ev->growth)) < 0 ||
	    require(ps, g, "from", get_time(ps, g, "from", &ev->growth_from)) < 0)
		return -1;
	if (ev->growth <= -1)
		return us_conf_errorf(ps->doc, us_conf_get(g, "percent_per_month"), ps->err,
				      ps->errlen, "must be above -100%%");
	ev->has_growth = true;
	return 0;
}

static int get_name(struct parser *ps, const struct us_conf_node *item, const char *dflt,
		    char *name)
{
	int r = us_conf_get_string(ps->doc, item, "name", name, US_FCEV_NAME_MAX, ps->err, ps->errlen);

	if (r == 1)
		snprintf(name, US_FCEV_NAME_MAX, "%s", dflt);
	return r < 0 ? -1 : 0;
}

static int parse_event(struct parser *ps, const struct us_conf_node *it, size_t i,
		       struct us_fc_event *e)
{
	static const char *const keys[] = { "name", "start", "end", "duration", "multiply", "add",
					     NULL };
	uint64_t dur_ns = 0;
	char dflt[32];
	int rm, ra, rd, re;
	double add = 0;

	if (us_conf_type(it) != US_CONF_MAP)
		return us_conf_errorf(ps->doc, it, ps->err, ps->errlen,
				      "expected a mapping with start, end and multiply or add");
	snprintf(dflt, sizeof(dflt), "event-%zu", i + 1);
	e->line = us_conf_line(it);
	if (us_conf_check_keys(ps->doc, it, keys, ps->err, ps->errlen) < 0 ||
	    get_name(ps, it, dflt, e->name) < 0 ||
	    require(ps, it, "start", get_time(ps, it, "start", &e->start)) < 0)
		return -1;
	if ((re = get_time(ps, it, "end", &e->end)) < 0 ||
	    (rd = us_conf_get_duration(ps->doc, it, "duration", &dur_ns, ps->err, ps->errlen)) < 0)
		return -1;
	if (re == rd) /* both or neither */
		return us_conf_errorf(ps->doc, it, ps->err, ps->errlen,
				      "give exactly one of end and duration");
	if (rd == 0)
		e->end = e->start + (int64_t)(dur_ns / 1000000000u);
	if (e->end <= e->start)
		return us_conf_errorf(ps->doc, us_conf_get(it, re == 0 ? "end" : "duration"), ps->err,
				      ps->errlen, "the event must end after it starts");
	if ((rm = get_number(ps, it, "multiply", 0, 1, &e->value)) < 0 ||
	    (ra = get_number(ps, it, "add", 0, 0, &add)) < 0)
		return -1;
	if (rm == ra)
		return us_conf_errorf(ps->doc, it, ps->err, ps->errlen,
				      "give exactly one of multiply (e.g. 1.8) and add (e.g. 500)");
	if (rm == 0 && e->value < 0)
		return us_conf_errorf(ps->doc, us_conf_get(it, "multiply"), ps->err, ps->errlen,
				      "must not be negative");
	e->kind = rm == 0 ? US_FCEV_MULTIPLY : US_FCEV_ADD;
	if (ra == 0)
		e->value = add;
	return 0;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

static int parse_dates(struct parser *ps, const struct us_conf_node *seq, struct us_fc_calendar *c)
{
	size_t n = us_conf_len(seq), k = 0;

	if (n == 0)
		return us_conf_errorf(ps->doc, seq, ps->err, ps->errlen, "needs at least one date");
	if (!(c->days = calloc(n, sizeof(*c->days))))
		return us_conf_errorf(ps->doc, seq, ps->err, ps->errlen, "out of memory");
	for (size_t i = 0; i < n; i++) {
		const struct us_conf_node *d = us_conf_seq_item(seq, i);
		const char *s = us_conf_scalar(d, NULL);
		int64_t t;

		if (!s || strlen(s) != 10 || us_fc_parse_time(s, &t) < 0)
			return us_conf_errorf(ps->doc, d, ps->err, ps->errlen,
					      "expected a date YYYY-MM-DD, got '%.40s'", s ? s : "a list");
		c->days[i] = t;
	}
	qsort(c->days, n, sizeof(*c->days), cmp_i64);
	for (size_t i = 0; i < n; i++) /* a date listed twice counts once */
		if (k == 0 || c->days[k - 1] != c->days[i])
			c->days[k++] = c->days[i];
	c->ndays = k;
	return 0;
}

static int parse_calendar(struct parser *ps, const struct us_conf_node *it, size_t i,
			  struct us_fc_calendar *c)
{
	static const char *const keys[] = { "name", "dates", "multiplier", NULL };
	const struct us_conf_node *dates = NULL;
	char dflt[32];
	int r;

	c->prior = NAN;
	c->learned = NAN;
	if (us_conf_type(it) != US_CONF_MAP)
		return us_conf_errorf(ps->doc, it, ps->err, ps->errlen,
				      "expected a mapping with name and dates");
	snprintf(dflt, sizeof(dflt), "calendar-%zu", i + 1);
	c->line = us_conf_line(it);
	if (us_conf_check_keys(ps->doc, it, keys, ps->err, ps->errlen) < 0 ||
	    get_name(ps, it, dflt, c->name) < 0 ||
	    require(ps, it, "dates", us_conf_get_seq(ps->doc, it, "dates", &dates, ps->err,
						      ps->errlen)) < 0 ||
	    parse_dates(ps, dates, c) < 0 ||
	    (r = get_number(ps, it, "multiplier", 0, 1, &c->prior)) < 0)
		return -1;
	if (r == 0 && c->prior < 0)
		return us_conf_errorf(ps->doc, us_conf_get(it, "multiplier"), ps->err, ps->errlen,
				      "must not be negative");
	return 0;
}

/* A list section: its entries, or NULL (with *r = 0 when absent or empty,
 * -1 on error). */
static const struct us_conf_node *list_section(struct parser *ps, const struct us_conf_node *root,
					       const char *key, int *r)
{
	const struct us_conf_node *seq = NULL;

	*r = us_conf_get_seq(ps->doc, root, key, &seq, ps->err, ps->errlen);
	if (*r != 0 || us_conf_len(seq) == 0) {
		*r = *r < 0 ? -1 : 0;
		return NULL;
	}
	return seq;
}

static int parse_doc(struct parser *ps, struct us_fc_events *ev)
{
	static const char *const keys[] = { "growth", "events", "calendar", NULL };
	const struct us_conf_node *root = us_conf_root(ps->doc), *g = us_conf_get(root, "growth");
	const struct us_conf_node *seq;
	int r;

	if (us_conf_check_keys(ps->doc, root, keys, ps->err, ps->errlen) < 0)
		return -1;
	if (g && !us_conf_is_null(g) && parse_growth(ps, g, ev) < 0)
		return -1;
	if ((seq = list_section(ps, root, "events", &r))) {
		if (!(ev->events = calloc(us_conf_len(seq), sizeof(*ev->events))))
			return us_conf_errorf(ps->doc, seq, ps->err, ps->errlen, "out of memory");
		for (; ev->nevents < us_conf_len(seq); ev->nevents++)
			if (parse_event(ps, us_conf_seq_item(seq, ev->nevents), ev->nevents,
					&ev->events[ev->nevents]) < 0)
				return -1;
	} else if (r < 0) {
		return -1;
	}
	if ((seq = list_section(ps, root, "calendar", &r))) {
		if (!(ev->cal = calloc(us_conf_len(seq), sizeof(*ev->cal))))
			return us_conf_errorf(ps->doc, seq, ps->err, ps->errlen, "out of memory");
		/* counted before parsing, so that free() sees a half-parsed entry */
		while (ev->ncal < us_conf_len(seq)) {
			size_t i = ev->ncal++;

			if (parse_calendar(ps, us_conf_seq_item(seq, i), i, &ev->cal[i]) < 0)
				return -1;
		}
	} else if (r < 0) {
		return -1;
	}
	return 0;
}

static int parse_loaded(struct us_conf_doc *doc, struct us_fc_events *ev, char *err, size_t errlen)
{
	struct parser ps = { doc, err, errlen };
	int rc = -1;

	memset(ev, 0, sizeof(*ev));
	if (!doc)
		return -1;
	if (parse_doc(&ps, ev) < 0)
		goto cleanup;
	rc = 0;
cleanup:
	if (rc < 0)
		us_fc_events_free(ev);
	us_conf_free(doc);
	return rc;
}

int us_fc_events_parse(const char *name, const void *data, size_t len, struct us_fc_events *ev,
		       char *err, size_t errlen)
{
	return parse_loaded(us_conf_load_buffer(name, data, len, err, errlen), ev, err, errlen);
}

int us_fc_events_load(const char *path, struct us_fc_events *ev, char *err, size_t errlen)
{
	return parse_loaded(us_conf_load_file(path, err, errlen), ev, err, errlen);
}

void us_fc_events_free(struct us_fc_events *ev)
{
	if (!ev)
		return;
	for (size_t i = 0; i < ev->ncal; i++)
		free(ev->cal[i].days);
	free(ev->cal);
	free(ev->events);
	memset(ev, 0, sizeof(*ev));
}

/* ---- effects --------------------------------------------------------------- */

double us_fc_growth_factor(const struct us_fc_events *ev, int64_t t)
{
	if (!ev || !ev->has_growth || t <= ev->growth_from)
		return 1;
	return pow(1 + ev->growth, (double)(t - ev->growth_from) / US_FCEV_MONTH_S);
}

static bool on_day(const struct us_fc_calendar *c, int64_t t)
{
	int64_t d = day_floor(t);

	return bsearch(&d, c->days, c->ndays, sizeof(*c->days), cmp_i64) != NULL;
}

static bool on_any_day(const struct us_fc_events *ev, int64_t t)
{
	for (size_t k = 0; k < ev->ncal; k++)
		if (on_day(&ev->cal[k], t))
			return true;
	return false;
}

double us_fc_calendar_multiplier(const struct us_fc_calendar *c)
{
	if (!isnan(c->learned))
		return c->learned;
	return isnan(c->prior) ? 1 : c->prior;
}

void us_fc_effect_at(const struct us_fc_events *ev, int64_t t, double *mul, double *add)
{
	*mul = us_fc_growth_factor(ev, t);
	*add = 0;
	if (!ev)
		return;
	/* A day on two calendar entries (a holiday that is also a sale day)
	 * takes both effects: they were learned separately. */
	for (size_t k = 0; k < ev->ncal; k++)
		if (on_day(&ev->cal[k], t))
			*mul *= us_fc_calendar_multiplier(&ev->cal[k]);
	for (size_t k = 0; k < ev->nevents; k++) {
		const struct us_fc_event *e = &ev->events[k];

		if (t < e->start || t >= e->end)
			continue;
		if (e->kind == US_FCEV_MULTIPLY)
			*mul *= e->value;
		else
			*add += e->value;
	}
}

static void adjust(double *a, size_t i, double mul, double add)
{
	if (a) {
		a[i] = a[i] * mul + add;
		if (!(a[i] >= 0)) /* also NaN, from inf × 0 with absurd multipliers */
			a[i] = 0;
	}
}

void us_fc_apply_events(const struct us_fc_events *ev, struct us_fc_bands *fc)
{
	us_fc_apply_events_sd(ev, fc, NULL);
}

void us_fc_apply_events_sd(const struct us_fc_events *ev, struct us_fc_bands *fc, double *sd)
{
	if (!ev)
		return;
	for (size_t i = 0; i < fc->n; i++) {
		int64_t t = fc->start + (int64_t)i * fc->step;
		double mul, add;

		us_fc_effect_at(ev, t, &mul, &add);
		adjust(fc->mean, i, mul, add);
		adjust(fc->lo80, i, mul, add);
		adjust(fc->hi80, i, mul, add);
		adjust(fc->lo95, i, mul, add);
		adjust(fc->hi95, i, mul, add);
		adjust(sd, i, mul, 0);
	}
}

/* ---- learning the calendar ------------------------------------------------- */

/* Index of the point at time want within tol, or -1 (t increasing). */
static ssize_t find_point(const int64_t *t, size_t n, int64_t want, int64_t tol)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (t[mid] < want)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < n && t[lo] - want <= tol)
		return (ssize_t)lo;
	if (lo > 0 && want - t[lo - 1] <= tol)
		return (ssize_t)lo - 1;
	return -1;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Median of the ordinary-day values `lag` seconds away on either side
 * (1 and 2 multiples); NAN when none. */
static double neighbour_median(const struct us_fc_events *ev, const int64_t *t, const double *v,
			       size_t n, size_t i, int64_t lag, int64_t tol)
{
	double vals[4];
	size_t k = 0;

	for (int m = -2; m <= 2; m++) {
		ssize_t j;

		if (m == 0)
			continue;
		j = find_point(t, n, t[i] + m * lag, tol);
		if (j >= 0 && !on_any_day(ev, t[j]) && isfinite(v[j]))
			vals[k++] = v[j];
	}
	if (k == 0)
		return NAN;
	qsort(vals, k, sizeof(*vals), cmp_d);
	return k % 2 ? vals[k / 2] : (vals[k / 2 - 1] + vals[k / 2]) / 2;
}

/* Half the median spacing: how far a "same time of day" point may be. */
static int64_t tolerance(const int64_t *t, size_t n)
{
	int64_t *d;
	int64_t tol = 0;

	if (n < 2 || !(d = malloc((n - 1) * sizeof(*d))))
		return 0;
	for (size_t i = 0; i + 1 < n; i++)
		d[i] = t[i + 1] - t[i];
	qsort(d, n - 1, sizeof(*d), cmp_i64);
	tol = d[(n - 1) / 2] / 2;
	free(d);
	return tol;
}

static void learn_one(const struct us_fc_events *ev, struct us_fc_calendar *c, const int64_t *t,
		      const double *v, const double *fitted, size_t n, int64_t tol)
{
	double actual = 0, base = 0;
	int64_t last_day = INT64_MIN;

	c->learned = NAN;
	c->learned_points = c->learned_days = 0;
	for (size_t i = 0; i < n; i++) {
		double b;

		if (!on_day(c, t[i]) || !isfinite(v[i]))
			continue;
		b = fitted ? fitted[i] : neighbour_median(ev, t, v, n, i, 7 * US_FCEV_DAY_S, tol);
		if (!fitted && isnan(b))
			b = neighbour_median(ev, t, v, n, i, US_FCEV_DAY_S, tol);
		if (!isfinite(b))
			continue;
		actual += v[i];
		base += b;
		c->learned_points++;
		if (day_floor(t[i]) != last_day) {
			last_day = day_floor(t[i]);
			c->learned_days++;
		}
	}
	/* A ratio of sums, not a mean of ratios: quiet night-time points with
	 * a near-zero baseline would otherwise dominate the estimate. */
	if (c->learned_points > 0 && base > 0)
		c->learned = actual / base;
}

size_t us_fc_learn_calendar(struct us_fc_events *ev, const int64_t *t, const double *v,
			    const double *fitted, size_t n)
{
	int64_t tol;
	size_t learned = 0;

	if (!ev || n == 0)
		return 0;
	tol = tolerance(t, n);
	for (size_t k = 0; k < ev->ncal; k++) {
		learn_one(ev, &ev->cal[k], t, v, fitted, n, tol);
		learned += !isnan(ev->cal[k].learned);
	}
	return learned;
}
