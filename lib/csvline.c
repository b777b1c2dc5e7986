/* Line-and-comma splitting for understudy's CSV inputs; see csvline.h. The
 * record is copied into a fixed buffer so fields can be NUL-terminated
 * without touching (or trusting the termination of) the caller's data. */
#include "csvline.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void us_csv_init(struct us_csv *r, const char *data, size_t len)
{
	memset(r, 0, sizeof(*r));
	r->p = data;
	r->end = data + len;
}

static char *trim(char *s, char *e)
{
	while (s < e && (*s == ' ' || *s == '\t'))
		s++;
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
		e--;
	*e = '\0';
	return s;
}

/* Splits the NUL-terminated record in r->buf into r->field. */
static int split(struct us_csv *r, char *s)
{
	char *end = s + strlen(s);
	int n = 0;

	for (;;) {
		char *comma = memchr(s, ',', (size_t)(end - s));
		char *stop = comma ? comma : end;

		if (n == US_CSV_MAX_FIELDS)
			return -1;
		r->field[n++] = trim(s, stop);
		if (!comma)
			return n;
		s = comma + 1;
	}
}

int us_csv_next(struct us_csv *r)
{
	while (r->p < r->end) {
		const char *nl = memchr(r->p, '\n', (size_t)(r->end - r->p));
		const char *stop = nl ? nl : r->end;
		size_t len = (size_t)(stop - r->p);
		char *s;

		r->line++;
		if (len > US_CSV_MAX_LINE) {
			r->p = nl ? nl + 1 : r->end;
			return -1;
		}
		memcpy(r->buf, r->p, len);
		r->buf[len] = '\0';
		r->p = nl ? nl + 1 : r->end;
		s = trim(r->buf, r->buf + len);
		if (*s == '\0' || *s == '#')
			continue;
		return split(r, s);
	}
	return 0;
}

int us_csv_number(const char *s, double *v)
{
	char *end;

	if (!*s)
		return -1;
	errno = 0;
	*v = strtod(s, &end);
	if (*end || end == s || errno == ERANGE || !isfinite(*v))
		return -1;
	return 0;
}

int us_csv_slurp(const char *path, size_t max, char **data, size_t *len, char *err,
		 size_t errlen)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t n = 0, cap = 0;
	int rc = -1;

	*data = NULL;
	*len = 0;
	if (!f) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	/* grown as read: the limit is a ceiling, not an allocation */
	for (;;) {
		if (n == cap) {
			char *grown;

			if (cap > max) {
				snprintf(err, errlen, "%s: larger than %zu bytes", path, max);
				goto cleanup;
			}
			cap = cap ? cap * 2 : 65536;
			grown = realloc(buf, cap + 1);
			if (!grown) {
				snprintf(err, errlen, "%s: out of memory", path);
				goto cleanup;
			}
			buf = grown;
		}
		size_t got = fread(buf + n, 1, cap - n, f);

		n += got;
		if (got == 0)
			break;
	}
	if (ferror(f)) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto cleanup;
	}
	if (n > max) {
		snprintf(err, errlen, "%s: larger than %zu bytes", path, max);
		goto cleanup;
	}
	buf[n] = '\0';
	*data = buf;
	*len = n;
	buf = NULL;
	rc = 0;
cleanup:
	free(buf);
	fclose(f);
	return rc;
}
