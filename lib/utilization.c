/* Utilization CSV parsing. Strict on purpose: a NaN, a negative figure or a
 * timestamp out of order would quietly bend a percentile, and the operator
 * would migrate on it; so the first such line stops the parse with its file,
 * line and field. */
#include "utilization.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "csvline.h"

static const char *const names[] = { "timestamp", "cpu_cores", "memory_gib", "network_gbps" };

static int fail(char *err, size_t errlen, const char *file, unsigned line, const char *field,
		const char *what, const char *arg)
{
	if (arg)
		snprintf(err, errlen, "%s:%u: %s: %s'%.40s'", file, line, field, what, arg);
	else
		snprintf(err, errlen, "%s:%u: %s: %s", file, line, field, what);
	return -1;
}

/* Reads exactly n digits from *s; -1 when they are not there. */
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

/* YYYY-MM-DD[T ]HH:MM[:SS[.fff]][Z|+HH:MM|-HH:MM|+HHMM] */
static int iso8601(const char *s, double *t)
{
	struct tm tm = { 0 };
	double frac = 0;
	long off = 0;
	int v[6] = { 0 };

	if ((v[0] = digits(&s, 4)) < 0 || *s++ != '-' || (v[1] = digits(&s, 2)) < 0 ||
	    *s++ != '-' || (v[2] = digits(&s, 2)) < 0 || (*s != 'T' && *s != ' ') ||
	    (s++, (v[3] = digits(&s, 2)) < 0) || *s++ != ':' || (v[4] = digits(&s, 2)) < 0)
		return -1;
	if (*s == ':') {
		s++;
		if ((v[5] = digits(&s, 2)) < 0)
			return -1;
		if (*s == '.' && isdigit((unsigned char)s[1])) {
			char *end;

			frac = strtod(s, &end);
			s = end;
		}
	}
	if (v[1] < 1 || v[1] > 12 || v[2] < 1 || v[2] > 31 || v[3] > 23 || v[4] > 59 || v[5] > 60)
		return -1;
	if (*s == 'Z') {
		s++;
	} else if (*s == '+' || *s == '-') {
		int sign = *s++ == '-' ? -1 : 1, hh, mm;

		if ((hh = digits(&s, 2)) < 0)
			return -1;
		if (*s == ':')
			s++;
		if ((mm = digits(&s, 2)) < 0 || hh > 23 || mm > 59)
			return -1;
		off = sign * (hh * 3600L + mm * 60L);
	}
	if (*s)
		return -1;
	tm.tm_year = v[0] - 1900;
	tm.tm_mon = v[1] - 1;
	tm.tm_mday = v[2];
	tm.tm_hour = v[3];
	tm.tm_min = v[4];
	tm.tm_sec = v[5];
	*t = (double)timegm(&tm) - (double)off + frac;
	return 0;
}

int us_util_parse_time(const char *s, double *t)
{
	if (strchr(s, '-') && iso8601(s, t) == 0)
		return 0;
	/* unix seconds: digits, at most one '.', nothing else (no sign, no exponent) */
	if (!*s || strspn(s, "0123456789.") != strlen(s) || us_csv_number(s, t) < 0)
		return -1;
	return *t < 1e11 ? 0 : -1;   /* beyond year 5000: surely ms or ns, not seconds */
}

int us_util_push(struct us_util *u, const struct us_util_sample *s)
{
	if (u->n == u->cap) {
		size_t cap = u->cap ? u->cap * 2 : 1024;
		struct us_util_sample *grown = realloc(u->s, cap * sizeof(*grown));

		if (!grown)
			return -1;
		u->s = grown;
		u->cap = cap;
	}
	u->s[u->n++] = *s;
	return 0;
}

/* A header line: the column names, in order. 1 if it is one, 0 if the line
 * is data, -1 (err set) for a header that names other columns. */
static int header(const struct us_csv *r, int n, const char *name, char *err, size_t errlen)
{
	if (strcmp(r->field[0], names[0]) != 0)
		return 0;
	if (n < 3 || n > 4)
		return fail(err, errlen, name, r->line, "header",
			    "expected timestamp,cpu_cores,memory_gib[,network_gbps], got ",
			    r->field[n > 4 ? 4 : n - 1]);
	for (int i = 1; i < n; i++)
		if (strcmp(r->field[i], names[i]) != 0)
			return fail(err, errlen, name, r->line, "header",
				    "expected timestamp,cpu_cores,memory_gib[,network_gbps], got ",
				    r->field[i]);
	return 1;
}

static int value(const struct us_csv *r, int i, const char *name, double *v, char *err,
		 size_t errlen)
{
	const char *s = r->field[i];

	if (!*s)
		return fail(err, errlen, name, r->line, names[i], "empty", NULL);
	if (us_csv_number(s, v) < 0)
		return fail(err, errlen, name, r->line, names[i],
			    "expected a finite number, got ", s);
	if (*v < 0)
		return fail(err, errlen, name, r->line, names[i], "negative: ", s);
	return 0;
}

static int record(const struct us_csv *r, int n, int want, const char *name,
		  const struct us_util *u, struct us_util_sample *s, char *err, size_t errlen)
{
	char what[128];

	if (n != want) {
		snprintf(what, sizeof(what), "expected %d fields (%s), got %d: ", want,
			 want == 4 ? "timestamp,cpu_cores,memory_gib,network_gbps"
				   : "timestamp,cpu_cores,memory_gib", n);
		return fail(err, errlen, name, r->line, "row", what, r->field[0]);
	}
	memset(s, 0, sizeof(*s));
	if (us_util_parse_time(r->field[0], &s->t) < 0)
		return fail(err, errlen, name, r->line, "timestamp",
			    "expected unix seconds or ISO 8601, got ", r->field[0]);
	if (u->n && s->t <= u->s[u->n - 1].t)
		return fail(err, errlen, name, r->line, "timestamp",
			    s->t == u->s[u->n - 1].t ? "duplicate of the previous line's: "
						    : "earlier than the previous line's: ",
			    r->field[0]);
	if (value(r, 1, name, &s->cpu_cores, err, errlen) < 0 ||
	    value(r, 2, name, &s->memory_gib, err, errlen) < 0)
		return -1;
	if (n == 4 && value(r, 3, name, &s->network_gbps, err, errlen) < 0)
		return -1;
	return 0;
}

int us_util_parse(const char *data, size_t len, const char *name, struct us_util *u,
		  char *err, size_t errlen)
{
	struct us_csv *r = malloc(sizeof(*r));
	struct us_util_sample s;
	int n, want = 0, rc = -1;

	memset(u, 0, sizeof(*u));
	if (!r) {
		snprintf(err, errlen, "%s: out of memory", name);
		return -1;
	}
	us_csv_init(r, data, len);
	while ((n = us_csv_next(r)) != 0) {
		if (n < 0) {
			fail(err, errlen, name, r->line, "row", "line too long or too many fields", NULL);
			goto cleanup;
		}
		if (!want && u->n == 0) {
			int h = header(r, n, name, err, errlen);

			if (h < 0)
				goto cleanup;
			want = n;
			if (h > 0)
				continue;
			if (n < 3 || n > 4) {
				fail(err, errlen, name, r->line, "row", "expected 3 or 4 fields "
				     "(timestamp,cpu_cores,memory_gib[,network_gbps]), line starts ",
				     r->field[0]);
				goto cleanup;
			}
		}
		if (record(r, n, want, name, u, &s, err, errlen) < 0)
			goto cleanup;
		if (us_util_push(u, &s) < 0) {
			snprintf(err, errlen, "%s:%u: out of memory", name, r->line);
			goto cleanup;
		}
	}
	if (u->n == 0) {
		snprintf(err, errlen, "%s:%u: empty: no data rows (expected "
			 "timestamp,cpu_cores,memory_gib[,network_gbps])", name, r->line ? r->line : 1);
		goto cleanup;
	}
	u->has_network = want == 4;
	rc = 0;
cleanup:
	if (rc < 0)
		us_util_free(u);
	free(r);
	return rc;
}

int us_util_load(const char *path, struct us_util *u, char *err, size_t errlen)
{
	char *data;
	size_t len;
	int rc;

	memset(u, 0, sizeof(*u));
	if (us_csv_slurp(path, US_UTIL_MAX_BYTES, &data, &len, err, errlen) < 0)
		return -1;
	rc = us_util_parse(data, len, path, u, err, errlen);
	free(data);
	return rc;
}

void us_util_free(struct us_util *u)
{
	free(u->s);
	memset(u, 0, sizeof(*u));
}
