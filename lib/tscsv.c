/* `timestamp,value` CSV reader: see tscsv.h. Dates are converted with the
 * days-from-civil formula, not timegm(), so parsing needs no time zone state
 * and behaves the same in the fuzzer, the CLI and the tests. */
#include "tscsv.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FIELD_MAX 64

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

	return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int *y, int *m, int *d)
{
	z += 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	int64_t doe = z - era * 146097;
	int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	int64_t mp = (5 * doy + 2) / 153;

	*d = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y = (int)(yoe + era * 400 + (*m <= 2));
}

/* n decimal digits at s into *out; -1 unless all are digits. */
static int digits(const char *s, int n, int *out)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return 0;
}

static int parse_datetime(const char *s, size_t len, int64_t *t_us)
{
	static const int mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	int y, mo, d, h, mi, sec;
	int64_t frac = 0;
	size_t i = 19;

	if (len < 19 || s[4] != '-' || s[7] != '-' || (s[10] != ' ' && s[10] != 'T') ||
	    s[13] != ':' || s[16] != ':')
		return -1;
	if (digits(s, 4, &y) || digits(s + 5, 2, &mo) || digits(s + 8, 2, &d) ||
	    digits(s + 11, 2, &h) || digits(s + 14, 2, &mi) || digits(s + 17, 2, &sec))
		return -1;
	if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 || mi > 59 || sec > 60)
		return -1;
	if (i < len && s[i] == '.') {
		int64_t scale = 100000;

		if (++i == len)
			return -1;
		for (; i < len && s[i] >= '0' && s[i] <= '9'; i++, scale /= 10)
			frac += (s[i] - '0') * scale;   /* digits past the 6th add 0 */
	}
	if (i < len && s[i] == 'Z')
		i++;
	if (i != len)
		return -1;
	*t_us = ((days_from_civil(y, mo, d) * 24 + h) * 60 + mi) * 60 * INT64_C(1000000) +
		(int64_t)sec * 1000000 + frac;
	return 0;
}

/* Unix seconds, "1393411500" or "1393411500.25"; kept within +-2^43 s so the
 * microsecond value cannot overflow. */
static int parse_unix(const char *s, size_t len, int64_t *t_us)
{
	int64_t sec = 0, frac = 0, scale = 100000;
	size_t i = 0;
	int neg = 0;

	if (i < len && s[i] == '-')
		neg = 1, i++;
	if (i == len || s[i] < '0' || s[i] > '9')
		return -1;
	for (; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
		sec = sec * 10 + (s[i] - '0');
		if (sec > (INT64_C(1) << 43))
			return -1;
	}
	if (i < len && s[i] == '.') {
		if (++i == len)
			return -1;
		for (; i < len && s[i] >= '0' && s[i] <= '9'; i++, scale /= 10)
			frac += (s[i] - '0') * scale;
	}
	if (i != len)
		return -1;
	*t_us = (neg ? -1 : 1) * (sec * 1000000 + frac);
	return 0;
}

int us_tscsv_parse_time(const char *s, size_t len, int64_t *t_us, int *datetime)
{
	if (len >= 2 && s[0] == '"' && s[len - 1] == '"')
		s++, len -= 2;
	*datetime = len >= 19 && s[4] == '-';
	return *datetime ? parse_datetime(s, len, t_us) : parse_unix(s, len, t_us);
}

void us_tscsv_format_time(int64_t t_us, int datetime, char *buf, size_t len)
{
	int64_t sec = t_us >= 0 ? t_us / 1000000 : -((-t_us + 999999) / 1000000);
	int64_t us = t_us - sec * 1000000;

	if (datetime) {
		int64_t days = sec >= 0 ? sec / 86400 : -((-sec + 86399) / 86400);
		int64_t rem = sec - days * 86400;
		int y, m, d;

		civil_from_days(days, &y, &m, &d);
		snprintf(buf, len, "%04d-%02d-%02d %02d:%02d:%02d", y, m, d, (int)(rem / 3600),
			 (int)(rem / 60 % 60), (int)(rem % 60));
	} else if (us == 0) {
		snprintf(buf, len, "%lld", (long long)sec);
	} else {
		snprintf(buf, len, "%lld.%06lld", (long long)sec, (long long)us);
	}
}

/* A finite decimal number: only digits, sign, point and exponent, so strtod's
 * "nan", "inf" and hex forms are refused. */
static int parse_value(const char *s, size_t len, double *v)
{
	char tmp[FIELD_MAX];
	char *end;

	if (len >= 2 && s[0] == '"' && s[len - 1] == '"')
		s++, len -= 2;
	if (len == 0 || len >= sizeof(tmp))
		return -1;
	for (size_t i = 0; i < len; i++)
		if (!strchr("0123456789+-.eE", s[i]))
			return -1;
	memcpy(tmp, s, len);
	tmp[len] = '\0';
	errno = 0;
	*v = strtod(tmp, &end);
	return *end != '\0' || errno == ERANGE || !isfinite(*v) ? -1 : 0;
}

static int push(struct us_ts_series *s, size_t *cap, int64_t t, double v)
{
	if (s->n == *cap) {
		size_t nc = *cap ? *cap * 2 : 1024;
		struct us_ts_point *np = realloc(s->p, nc * sizeof(*np));

		if (!np)
			return -1;
		s->p = np;
		*cap = nc;
	}
	s->p[s->n].t_us = t;
	s->p[s->n].v = v;
	s->n++;
	return 0;
}

/* One line (without its end) into s; returns NULL or the reason it is bad.
 * A first line whose timestamp does not parse is taken as the header. */
static const char *parse_line(const char *ln, size_t len, size_t lineno, unsigned flags,
			      struct us_ts_series *s, size_t *cap)
{
	const char *comma = memchr(ln, ',', len);
	int64_t t;
	double v;
	int dt;

	if (!comma)
		return lineno == 1 ? NULL : "expected timestamp,value";
	if (us_tscsv_parse_time(ln, (size_t)(comma - ln), &t, &dt) < 0)
		return lineno == 1 ? NULL : "bad timestamp";
	if (memchr(comma + 1, ',', len - (size_t)(comma + 1 - ln)))
		return "more than two fields";
	if (parse_value(comma + 1, len - (size_t)(comma + 1 - ln), &v) < 0)
		return "value is not a finite number";
	if (s->n > 0 && dt != s->datetime)
		return "timestamp form differs from the lines before";
	if (s->n > 0 && t == s->p[s->n - 1].t_us && (flags & US_TSCSV_DUP_OK))
		;       /* kept, as NAB keeps them */
	else if (s->n > 0 && t <= s->p[s->n - 1].t_us)
		return t == s->p[s->n - 1].t_us ? "duplicate timestamp" : "timestamp goes back in time";
	s->datetime = dt;
	return push(s, cap, t, v) < 0 ? "out of memory" : NULL;
}

int us_tscsv_parse(const char *buf, size_t len, unsigned flags, struct us_ts_series *s,
		   size_t *line, char *err, size_t errlen)
{
	size_t pos = 0, lineno = 0, cap = 0;
	const char *why = NULL;

	memset(s, 0, sizeof(*s));
	*line = 0;
	while (pos < len) {
		const char *ln = buf + pos, *nl = memchr(ln, '\n', len - pos);
		size_t l = nl ? (size_t)(nl - ln) : len - pos;

		pos += l + (nl != NULL);
		lineno++;
		if (l > 0 && ln[l - 1] == '\r')
			l--;
		if (l == 0)
			continue;       /* blank lines carry nothing */
		if ((why = parse_line(ln, l, lineno, flags, s, &cap)) != NULL) {
			*line = lineno;
			goto fail;
		}
	}
	if (s->n == 0) {
		*line = lineno ? lineno : 1;
		why = "no data points";
		goto fail;
	}
	return 0;
fail:
	snprintf(err, errlen, "%s", why);
	us_tscsv_free(s);
	return -1;
}

int us_tscsv_read(const char *path, unsigned flags, struct us_ts_series *s, char *err,
		  size_t errlen)
{
	char why[256];
	size_t len = 0, cap = 0, line;
	char *buf = NULL;
	FILE *f = fopen(path, "rb");
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
		size_t got = fread(buf + len, 1, cap - len, f);

		len += got;
		if (got == 0)
			break;
	}
	if (ferror(f)) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto cleanup;
	}
	if (us_tscsv_parse(buf, len, flags, s, &line, why, sizeof(why)) < 0) {
		snprintf(err, errlen, "%s:%zu: %s", path, line, why);
		goto cleanup;
	}
	rc = 0;
cleanup:
	free(buf);
	fclose(f);
	return rc;
}

void us_tscsv_free(struct us_ts_series *s)
{
	free(s->p);
	s->p = NULL;
	s->n = 0;
}
