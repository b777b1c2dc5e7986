/* CSV latency samples; see csv_samples.h. The text is never modified or
 * assumed NUL-terminated (fuzzed with arbitrary bytes): each field is
 * copied into a bounded buffer before strtod/strtol. */
#include "csv_samples.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_FIELDS 8
#define FIELD_MAX 64

enum col { C_A, C_B, C_SA, C_SB, C_NR };

struct field {
	const char *p;
	size_t len;
};

struct layout {
	int col[C_NR];      /* field index of each column, -1 if absent */
	size_t nfields;     /* fields every line must have */
};

bool us_status_is_error(long status)
{
	return status == 0 || (status >= 500 && status <= 599);
}

void us_csv_samples_free(struct us_csv_samples *s)
{
	free(s->a);
	free(s->b);
	memset(s, 0, sizeof(*s));
}

/* Splits a line into trimmed fields; returns the count, or MAX_FIELDS + 1. */
static size_t split(const char *p, size_t len, struct field *f)
{
	size_t n = 0, start = 0;

	for (size_t i = 0; i <= len; i++) {
		if (i < len && p[i] != ',')
			continue;
		if (n == MAX_FIELDS)
			return MAX_FIELDS + 1;
		size_t s = start, e = i;

		while (s < e && (p[s] == ' ' || p[s] == '\t'))
			s++;
		while (e > s && (p[e - 1] == ' ' || p[e - 1] == '\t' || p[e - 1] == '\r'))
			e--;
		f[n].p = p + s;
		f[n++].len = e - s;
		start = i + 1;
	}
	return n;
}

static bool field_is(const struct field *f, const char *name)
{
	return f->len == strlen(name) && strncasecmp(f->p, name, f->len) == 0;
}

static int parse_number(const struct field *f, double *out)
{
	char tmp[FIELD_MAX];
	char *end;

	if (f->len == 0 || f->len >= sizeof(tmp))
		return -1;
	memcpy(tmp, f->p, f->len);
	tmp[f->len] = '\0';
	errno = 0;
	*out = strtod(tmp, &end);
	return *end == '\0' && end != tmp ? 0 : -1;
}

static int parse_status(const struct field *f, long *out)
{
	char tmp[FIELD_MAX];
	char *end;

	if (f->len == 0 || f->len >= sizeof(tmp))
		return -1;
	memcpy(tmp, f->p, f->len);
	tmp[f->len] = '\0';
	*out = strtol(tmp, &end, 10);
	return *end == '\0' && *out >= 0 && *out <= 999 ? 0 : -1;
}

/* A header line: find each column by name. */
static int header_layout(const struct field *f, size_t n, bool pairs, struct layout *l,
			 char *err, size_t errlen)
{
	static const char *const names[C_NR][4] = {
		[C_A] = { "latency_ms", "latency", "value", NULL },
		[C_B] = { "shadow_ms", "shadow", "candidate", NULL },
		[C_SA] = { "status", "status_code", NULL, NULL },
		[C_SB] = { "shadow_status", NULL, NULL, NULL },
	};
	static const char *const pair_a[] = { "production_ms", "production", "baseline", NULL };
	static const char *const pair_sa[] = { "production_status", "prod_status", NULL, NULL };

	for (int c = 0; c < C_NR; c++) {
		const char *const *cand = pairs && c == C_A ? pair_a : pairs && c == C_SA ? pair_sa
											: names[c];

		l->col[c] = -1;
		for (size_t i = 0; i < n && l->col[c] < 0; i++)
			for (int k = 0; cand[k]; k++)
				if (field_is(&f[i], cand[k]))
					l->col[c] = (int)i;
	}
	l->nfields = n;
	if (l->col[C_A] < 0 || (pairs && l->col[C_B] < 0)) {
		snprintf(err, errlen, "line %zu: header names no %s column", (size_t)1,
			 l->col[C_A] < 0 ? (pairs ? "production_ms" : "latency_ms or value")
					 : "shadow_ms");
		return -1;
	}
	if (!pairs)
		l->col[C_B] = l->col[C_SB] = -1;
	if (pairs && (l->col[C_SA] < 0) != (l->col[C_SB] < 0)) {
		snprintf(err, errlen, "line 1: header names only one of the two status columns");
		return -1;
	}
	return 0;
}

static int positional_layout(size_t n, bool pairs, struct layout *l, size_t line, char *err,
			     size_t errlen)
{
	size_t want_min = pairs ? 2 : 1, want_max = pairs ? 4 : 2;

	if (n != want_min && n != want_max) {
		snprintf(err, errlen, "line %zu: expected %s, got %zu fields", line,
			 pairs ? "production_ms,shadow_ms[,production_status,shadow_status]"
			       : "latency_ms[,status]", n);
		return -1;
	}
	l->nfields = n;
	l->col[C_A] = 0;
	l->col[C_B] = pairs ? 1 : -1;
	l->col[C_SA] = n == want_max ? (pairs ? 2 : 1) : -1;
	l->col[C_SB] = pairs && n == want_max ? 3 : -1;
	return 0;
}

static int push(struct us_csv_samples *s, double a, double b, bool pairs)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 1024;
		double *na = realloc(s->a, cap * sizeof(*na));

		if (!na)
			return -1;
		s->a = na;
		if (pairs) {
			double *nb = realloc(s->b, cap * sizeof(*nb));

			if (!nb)
				return -1;
			s->b = nb;
		}
		s->cap = cap;
	}
	s->a[s->n] = a;
	if (pairs)
		s->b[s->n] = b;
	s->n++;
	return 0;
}

static int latency(const struct field *f, size_t line, const char *what, double *v, char *err,
		   size_t errlen)
{
	if (parse_number(f, v) < 0)
		snprintf(err, errlen, "line %zu: %s: not a number: '%.*s'", line, what,
			 (int)(f->len > 40 ? 40 : f->len), f->p);
	else if (!isfinite(*v))
		snprintf(err, errlen, "line %zu: %s: %s", line, what, isnan(*v) ? "NaN" : "infinite");
	else if (*v < 0)
		snprintf(err, errlen, "line %zu: %s: negative latency %g", line, what, *v);
	else
		return 0;
	return -1;
}

static int status(const struct field *f, size_t line, uint64_t *errors, char *err,
		  size_t errlen)
{
	long st;

	if (parse_status(f, &st) < 0) {
		snprintf(err, errlen, "line %zu: status: expected an HTTP code 0-999, got '%.*s'",
			 line, (int)(f->len > 40 ? 40 : f->len), f->p);
		return -1;
	}
	*errors += us_status_is_error(st);
	return 0;
}

/* One data line; fields already split. */
static int data_line(struct us_csv_samples *s, const struct layout *l, const struct field *f,
		     size_t n, size_t line, bool pairs, char *err, size_t errlen)
{
	double a, b = 0;

	if (n != l->nfields) {
		snprintf(err, errlen, "line %zu: expected %zu fields, got %zu", line, l->nfields, n);
		return -1;
	}
	if (latency(&f[l->col[C_A]], line, pairs ? "production_ms" : "latency_ms", &a, err,
		    errlen) < 0)
		return -1;
	if (pairs && latency(&f[l->col[C_B]], line, "shadow_ms", &b, err, errlen) < 0)
		return -1;
	if (l->col[C_SA] >= 0 && status(&f[l->col[C_SA]], line, &s->errors_a, err, errlen) < 0)
		return -1;
	if (l->col[C_SB] >= 0 && status(&f[l->col[C_SB]], line, &s->errors_b, err, errlen) < 0)
		return -1;
	if (push(s, a, b, pairs) < 0) {
		snprintf(err, errlen, "line %zu: out of memory", line);
		return -1;
	}
	return 0;
}

int us_csv_samples_parse(const char *buf, size_t len, bool pairs, struct us_csv_samples *out,
			 char *err, size_t errlen)
{
	struct layout l = { .nfields = 0 };
	struct field f[MAX_FIELDS];
	size_t pos = 0, line = 0;
	bool have_layout = false;

	memset(out, 0, sizeof(*out));
	while (pos < len) {
		const char *p = buf + pos, *nl = memchr(p, '\n', len - pos);
		size_t ll = nl ? (size_t)(nl - p) : len - pos, n;
		double dummy;

		pos += ll + 1;
		line++;
		while (ll && (p[ll - 1] == '\r' || p[ll - 1] == ' ' || p[ll - 1] == '\t'))
			ll--;
		if (ll == 0 || p[0] == '#')
			continue;
		n = split(p, ll, f);
		if (n > MAX_FIELDS) {
			snprintf(err, errlen, "line %zu: more than %d fields", line, MAX_FIELDS);
			goto fail;
		}
		if (!have_layout) {
			have_layout = true;
			if (parse_number(&f[0], &dummy) < 0 && line == 1) {
				if (header_layout(f, n, pairs, &l, err, errlen) < 0)
					goto fail;
				continue;
			}
			if (positional_layout(n, pairs, &l, line, err, errlen) < 0)
				goto fail;
		}
		if (data_line(out, &l, f, n, line, pairs, err, errlen) < 0)
			goto fail;
	}
	if (out->n == 0) {
		snprintf(err, errlen, "line %zu: no samples", line ? line : 1);
		goto fail;
	}
	out->has_status = l.col[C_SA] >= 0;
	return 0;
fail:
	us_csv_samples_free(out);
	return -1;
}
