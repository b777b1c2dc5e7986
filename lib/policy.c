/* Migration policies: defaults, YAML loading and validation of the
 * `policies:` list, lookup by name, and maintenance-window tests. The rules
 * live in docs/policies.md. */
#include "policy.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "clock.h"
#include "config.h"

void us_migration_policy_defaults(struct us_migration_policy *p)
{
	static const double steps[] = { 10, 25, 50, 100 };

	memset(p, 0, sizeof(*p));
	snprintf(p->name, sizeof(p->name), "default");
	p->validate.min_confidence = 0.9;
	p->validate.min_duration_ns = 10 * 60 * US_NS_PER_SEC;
	p->validate.min_samples = 1000;
	p->validate.window_ns = 15 * 60 * US_NS_PER_SEC;
	memcpy(p->steps, steps, sizeof(steps));
	p->nsteps = sizeof(steps) / sizeof(steps[0]);
	p->bake_ns = 5 * 60 * US_NS_PER_SEC;
	p->guards.max_p99_ratio = 1.2;
	p->guards.min_p99_delta_ns = US_NS_PER_MS;
	p->guards.max_error_delta = 0.001;
	p->guards.min_samples = 100;
	p->guards.window_ns = 60 * US_NS_PER_SEC;
	p->max_concurrent = 1;
	p->retain_ns = 10 * 60 * US_NS_PER_SEC;
}

/* ---- numbers, times, days ---------------------------------------------- */

/* A decimal number; with percent_ok also "N%", giving N/100. */
static int as_number(const struct us_conf_doc *doc, const struct us_conf_node *node,
		     bool percent_ok, double *out, char *err, size_t errlen)
{
	char buf[64], *end;
	size_t len;
	bool percent;
	double v;

	if (us_conf_as_string(doc, node, buf, sizeof(buf), err, errlen) < 0)
		return -1;
	len = strlen(buf);
	percent = percent_ok && len && buf[len - 1] == '%';
	if (percent)
		buf[--len] = '\0';
	errno = 0;
	v = strtod(buf, &end);
	if (!len || isspace((unsigned char)buf[0]) || *end || errno || !isfinite(v))
		return us_conf_errorf(doc, node, err, errlen, "expected a number%s, got '%s'",
				      percent_ok ? " or a percentage" : "",
				      us_conf_scalar(node, NULL));
	*out = percent ? v / 100 : v;
	return 0;
}

/* Like the us_conf_get_* getters: 1 when absent or null. */
static int get_number(const struct us_conf_doc *doc, const struct us_conf_node *map,
		      const char *key, bool percent_ok, double *out, char *err, size_t errlen)
{
	const struct us_conf_node *v = us_conf_get(map, key);

	if (!v || us_conf_is_null(v))
		return 1;
	return as_number(doc, v, percent_ok, out, err, errlen);
}

/* "HH:MM" (or "H:MM") into minutes after midnight; "24:00" only when
 * allow_24 (the end of a window lasting to midnight). */
static int parse_hhmm(const char *s, bool allow_24, uint16_t *out)
{
	unsigned h = 0, m;
	size_t i = 0;

	while (i < 2 && isdigit((unsigned char)s[i]))
		h = h * 10 + (unsigned)(s[i++] - '0');
	if (i == 0 || s[i] != ':' || !isdigit((unsigned char)s[i + 1]) ||
	    !isdigit((unsigned char)s[i + 2]) || s[i + 3])
		return -1;
	m = (unsigned)(s[i + 1] - '0') * 10 + (unsigned)(s[i + 2] - '0');
	if (m > 59 || h > 24 || (h == 24 && (m || !allow_24)))
		return -1;
	*out = (uint16_t)(h * 60 + m);
	return 0;
}

static int parse_day(const char *s)
{
	static const char *const days[] = {
		"sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"
	};

	for (int i = 0; i < 7; i++)
		if (strcasecmp(s, days[i]) == 0 || (strlen(s) == 3 && strncasecmp(s, days[i], 3) == 0))
			return i;
	return -1;
}

/* ---- sections ---------------------------------------------------------- */

static int load_validate(const struct us_conf_doc *doc, const struct us_conf_node *pm,
			 struct us_migration_policy *p, char *err, size_t errlen)
{
	static const char *const keys[] = {
		"min_confidence", "min_duration", "min_samples", "window", NULL
	};
	const struct us_conf_node *v = NULL;
	int64_t samples = (int64_t)p->validate.min_samples;

	if (us_conf_get_map(doc, pm, "validate", &v, err, errlen) < 0 ||
	    us_conf_check_keys(doc, v, keys, err, errlen) < 0 ||
	    get_number(doc, v, "min_confidence", false, &p->validate.min_confidence, err,
		       errlen) < 0 ||
	    us_conf_get_duration(doc, v, "min_duration", &p->validate.min_duration_ns, err,
				 errlen) < 0 ||
	    us_conf_get_int64(doc, v, "min_samples", 1, INT64_MAX, &samples, err, errlen) < 0 ||
	    us_conf_get_duration(doc, v, "window", &p->validate.window_ns, err, errlen) < 0)
		return -1;
	if (!(p->validate.min_confidence > 0 && p->validate.min_confidence < 1))
		return us_conf_errorf(doc, us_conf_get(v, "min_confidence"), err, errlen,
				      "must be more than 0 and less than 1");
	if (p->validate.window_ns < US_NS_PER_SEC)
		return us_conf_errorf(doc, us_conf_get(v, "window"), err, errlen,
				      "must be at least 1s");
	p->validate.min_samples = (uint64_t)samples;
	return 0;
}

/* steps: percentages of traffic, strictly increasing, ending at 100. */
static int load_steps(const struct us_conf_doc *doc, const struct us_conf_node *pm,
		      struct us_migration_policy *p, char *err, size_t errlen)
{
	const struct us_conf_node *list = NULL;
	size_t n;

	if (us_conf_get_seq(doc, pm, "steps", &list, err, errlen) < 0)
		return -1;
	if (!list)
		return 0;
	n = us_conf_len(list);
	if (n == 0)
		return us_conf_errorf(doc, list, err, errlen, "at least one step (100) is needed");
	if (n > US_POLICY_MAX_STEPS)
		return us_conf_errorf(doc, list, err, errlen, "too many steps (%zu; at most %d)", n,
				      US_POLICY_MAX_STEPS);
	for (size_t i = 0; i < n; i++) {
		const struct us_conf_node *item = us_conf_seq_item(list, i);

		if (as_number(doc, item, false, &p->steps[i], err, errlen) < 0)
			return -1;
		if (!(p->steps[i] > 0 && p->steps[i] <= 100))
			return us_conf_errorf(doc, item, err, errlen,
					      "a step is a percentage more than 0 and at most 100");
		if (i > 0 && p->steps[i] <= p->steps[i - 1])
			return us_conf_errorf(doc, item, err, errlen,
					      "steps must increase (%g follows %g)", p->steps[i],
					      p->steps[i - 1]);
	}
	if (p->steps[n - 1] != 100)
		return us_conf_errorf(doc, us_conf_seq_item(list, n - 1), err, errlen,
				      "the last step must be 100 (all traffic), got %g",
				      p->steps[n - 1]);
	p->nsteps = n;
	return 0;
}

static int load_guards(const struct us_conf_doc *doc, const struct us_conf_node *pm,
		       struct us_migration_policy *p, char *err, size_t errlen)
{
	static const char *const keys[] = {
		"max_p99_ratio", "min_p99_delta", "max_error_delta", "min_samples", "window", NULL
	};
	const struct us_conf_node *g = NULL;
	int64_t samples = (int64_t)p->guards.min_samples;

	if (us_conf_get_map(doc, pm, "guards", &g, err, errlen) < 0 ||
	    us_conf_check_keys(doc, g, keys, err, errlen) < 0 ||
	    get_number(doc, g, "max_p99_ratio", false, &p->guards.max_p99_ratio, err, errlen) < 0 ||
	    get_number(doc, g, "max_error_delta", true, &p->guards.max_error_delta, err,
		       errlen) < 0 ||
	    us_conf_get_int64(doc, g, "min_samples", 1, INT64_MAX, &samples, err, errlen) < 0 ||
	    us_conf_get_duration(doc, g, "min_p99_delta", &p->guards.min_p99_delta_ns, err,
				 errlen) < 0 ||
	    us_conf_get_duration(doc, g, "window", &p->guards.window_ns, err, errlen) < 0)
		return -1;
	/* below 1 the new instance would have to be faster than the old */
	if (!(p->guards.max_p99_ratio >= 1))
		return us_conf_errorf(doc, us_conf_get(g, "max_p99_ratio"), err, errlen,
				      "must be at least 1");
	if (!(p->guards.max_error_delta >= 0 && p->guards.max_error_delta <= 1))
		return us_conf_errorf(doc, us_conf_get(g, "max_error_delta"), err, errlen,
				      "expected a fraction 0-1 or a percentage 0%%-100%%");
	if (p->guards.window_ns < US_NS_PER_SEC)
		return us_conf_errorf(doc, us_conf_get(g, "window"), err, errlen,
				      "must be at least 1s");
	p->guards.min_samples = (uint64_t)samples;
	return 0;
}

static int load_days(const struct us_conf_doc *doc, const struct us_conf_node *wm,
		     struct us_maint_window *w, char *err, size_t errlen)
{
	const struct us_conf_node *days = NULL;
	char day[16];

	if (us_conf_get_seq(doc, wm, "days", &days, err, errlen) < 0)
		return -1;
	if (!days)
		return 0;
	if (us_conf_len(days) == 0)
		return us_conf_errorf(doc, days, err, errlen,
				      "name at least one day (leave days out for every day)");
	w->days = 0;
	for (size_t i = 0; i < us_conf_len(days); i++) {
		const struct us_conf_node *item = us_conf_seq_item(days, i);
		int d;

		if (us_conf_as_string(doc, item, day, sizeof(day), err, errlen) < 0)
			return -1;
		d = parse_day(day);
		if (d < 0)
			return us_conf_errorf(doc, item, err, errlen,
					      "expected a day (sun, mon, tue, wed, thu, fri, sat), "
					      "got '%s'", day);
		w->days |= (uint8_t)(1u << d);
	}
	return 0;
}

static int load_window(const struct us_conf_doc *doc, const struct us_conf_node *wm,
		       struct us_maint_window *w, char *err, size_t errlen)
{
	static const char *const keys[] = { "days", "start", "end", NULL };
	static const char *const ends[] = { "start", "end" };
	uint16_t *mins[] = { &w->start_min, &w->end_min };
	char hhmm[16];

	if (us_conf_type(wm) != US_CONF_MAP)
		return us_conf_errorf(doc, wm, err, errlen,
				      "expected a mapping with days, start and end");
	if (us_conf_check_keys(doc, wm, keys, err, errlen) < 0)
		return -1;
	w->days = 0x7f;
	if (load_days(doc, wm, w, err, errlen) < 0)
		return -1;
	for (size_t i = 0; i < 2; i++) {
		switch (us_conf_get_string(doc, wm, ends[i], hhmm, sizeof(hhmm), err, errlen)) {
		case -1: return -1;
		case 1: return us_conf_missing(doc, wm, ends[i], err, errlen);
		}
		if (parse_hhmm(hhmm, i == 1, mins[i]) < 0)
			return us_conf_errorf(doc, us_conf_get(wm, ends[i]), err, errlen,
					      "expected a UTC time HH:MM%s, got '%s'",
					      i == 1 ? " (00:00-24:00)" : " (00:00-23:59)", hhmm);
	}
	if (w->start_min == w->end_min)
		return us_conf_errorf(doc, us_conf_get(wm, "end"), err, errlen,
				      "start and end are equal; a whole day is 00:00 to 24:00");
	return 0;
}

static int load_windows(const struct us_conf_doc *doc, const struct us_conf_node *pm,
			struct us_migration_policy *p, char *err, size_t errlen)
{
	const struct us_conf_node *list = NULL;

	if (us_conf_get_seq(doc, pm, "maintenance_windows", &list, err, errlen) < 0)
		return -1;
	if (us_conf_len(list) > US_POLICY_MAX_WINDOWS)
		return us_conf_errorf(doc, list, err, errlen, "too many windows (%zu; at most %d)",
				      us_conf_len(list), US_POLICY_MAX_WINDOWS);
	for (size_t i = 0; i < us_conf_len(list); i++)
		if (load_window(doc, us_conf_seq_item(list, i), &p->windows[i], err, errlen) < 0)
			return -1;
	p->nwindows = us_conf_len(list);
	return 0;
}

static bool name_valid(const char *s)
{
	if (!s[0])
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '_' && *s != '.' && *s != '-')
			return false;
	return true;
}

static int load_policy(const struct us_conf_doc *doc, const struct us_conf_node *pm,
		       struct us_migration_policy *p, char *err, size_t errlen)
{
	static const char *const keys[] = {
		"name", "validate", "steps", "bake", "guards", "approval", "max_concurrent",
		"retain", "preallocate_lead", "maintenance_windows", NULL
	};
	int64_t concurrent = p->max_concurrent;

	if (us_conf_type(pm) != US_CONF_MAP)
		return us_conf_errorf(doc, pm, err, errlen, "expected a mapping with a name");
	if (us_conf_check_keys(doc, pm, keys, err, errlen) < 0)
		return -1;
	switch (us_conf_get_string(doc, pm, "name", p->name, sizeof(p->name), err, errlen)) {
	case -1: return -1;
	case 1: return us_conf_missing(doc, pm, "name", err, errlen);
	}
	if (!name_valid(p->name))
		return us_conf_errorf(doc, us_conf_get(pm, "name"), err, errlen,
				      "use 1-%zu of [A-Za-z0-9_.-], got '%s'", sizeof(p->name) - 1,
				      p->name);
	if (load_validate(doc, pm, p, err, errlen) < 0 || load_steps(doc, pm, p, err, errlen) < 0 ||
	    us_conf_get_duration(doc, pm, "bake", &p->bake_ns, err, errlen) < 0 ||
	    load_guards(doc, pm, p, err, errlen) < 0 ||
	    us_conf_get_bool(doc, pm, "approval", &p->approval, err, errlen) < 0 ||
	    us_conf_get_int64(doc, pm, "max_concurrent", 1, 1024, &concurrent, err, errlen) < 0 ||
	    us_conf_get_duration(doc, pm, "retain", &p->retain_ns, err, errlen) < 0 ||
	    us_conf_get_duration(doc, pm, "preallocate_lead", &p->preallocate_lead_ns, err,
				 errlen) < 0 ||
	    load_windows(doc, pm, p, err, errlen) < 0)
		return -1;
	p->max_concurrent = (uint32_t)concurrent;
	return 0;
}

static int load_policies(const struct us_conf_doc *doc, struct us_policy_set *s, char *err,
			 size_t errlen)
{
	static const char *const keys[] = { "policies", NULL };
	const struct us_conf_node *root = us_conf_root(doc), *list = NULL;

	if (us_conf_check_keys(doc, root, keys, err, errlen) < 0 ||
	    us_conf_get_seq(doc, root, "policies", &list, err, errlen) < 0)
		return -1;
	if (us_conf_len(list) > US_MAX_POLICIES)
		return us_conf_errorf(doc, list, err, errlen, "too many policies (%zu; at most %d)",
				      us_conf_len(list), US_MAX_POLICIES);
	for (size_t i = 0; i < us_conf_len(list); i++) {
		const struct us_conf_node *item = us_conf_seq_item(list, i);

		us_migration_policy_defaults(&s->p[i]);
		if (load_policy(doc, item, &s->p[i], err, errlen) < 0)
			return -1;
		if (us_policy_find(s, s->p[i].name))
			return us_conf_errorf(doc, us_conf_get(item, "name"), err, errlen,
					      "policy '%s' is named twice", s->p[i].name);
		s->n = i + 1;
	}
	if (us_policy_find(s, "default"))
		return 0;
	/* every workload without a policy of its own uses "default" */
	if (s->n == US_MAX_POLICIES)
		return us_conf_errorf(doc, list, err, errlen,
				      "%d policies and none is 'default': one of them must be "
				      "(it is added when absent, and there is no room)",
				      US_MAX_POLICIES);
	us_migration_policy_defaults(&s->p[s->n++]);
	return 0;
}

/* Takes doc (NULL: loading failed, message already in err). */
static int load_doc(struct us_conf_doc *doc, struct us_policy_set *s, char *err, size_t errlen)
{
	int rc;

	if (!doc)
		return -1;
	rc = load_policies(doc, s, err, errlen);
	us_conf_free(doc);
	return rc;
}

int us_policy_parse(const char *name, const void *data, size_t len, struct us_policy_set *s,
		    char *err, size_t errlen)
{
	s->n = 0;
	return load_doc(us_conf_load_buffer(name, data, len, err, errlen), s, err, errlen);
}

int us_policy_load(const char *path, struct us_policy_set *s, char *err, size_t errlen)
{
	struct stat st;

	s->n = 0;
	/* lstat: a dangling symlink is a mistake to report, not "no file" */
	if (lstat(path, &st) < 0 && errno == ENOENT) {
		us_migration_policy_defaults(&s->p[s->n++]);
		return 0;
	}
	return load_doc(us_conf_load_file(path, err, errlen), s, err, errlen);
}

const struct us_migration_policy *us_policy_find(const struct us_policy_set *s, const char *name)
{
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->p[i].name, name) == 0)
			return &s->p[i];
	return NULL;
}

/* A window crossing midnight belongs to its start day: its part after
 * midnight is tested against yesterday's bit. */
bool us_policy_in_window(const struct us_migration_policy *p, time_t t)
{
	struct tm tm;
	unsigned today, yesterday, m;

	if (p->nwindows == 0)
		return true;
	if (!gmtime_r(&t, &tm))
		return false;
	today = (unsigned)tm.tm_wday;
	yesterday = (today + 6) % 7;
	m = (unsigned)(tm.tm_hour * 60 + tm.tm_min);
	for (size_t i = 0; i < p->nwindows; i++) {
		const struct us_maint_window *w = &p->windows[i];

		if (w->start_min < w->end_min) {
			if ((w->days & (1u << today)) && m >= w->start_min && m < w->end_min)
				return true;
		} else if (((w->days & (1u << today)) && m >= w->start_min) ||
			   ((w->days & (1u << yesterday)) && m < w->end_min)) {
			return true;
		}
	}
	return false;
}
