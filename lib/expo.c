/* Prometheus / OpenMetrics text exposition parser. It works line by line on
 * the caller's buffer and copies only names and the folded key into fixed
 * arrays, so memory stays bounded and a hostile page costs time linear in
 * its size. The family type is remembered for the most recent "# TYPE" only:
 * both formats require a family's samples to follow its metadata, so no
 * table of families is needed. */
#include "expo.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct cursor {
	const char *p, *end;
};

struct family {
	char name[US_EXPO_MAX_NAME];
	enum us_expo_type type;
};

static bool is_name_start(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
}

static bool is_name_char(char c)
{
	return is_name_start(c) || (c >= '0' && c <= '9');
}

static void skip_blanks(struct cursor *c)
{
	while (c->p < c->end && (*c->p == ' ' || *c->p == '\t'))
		c->p++;
}

/* Reads a metric or label name into buf; 0, or -1 when absent or too long. */
static int read_name(struct cursor *c, char *buf, size_t buflen)
{
	size_t n = 0;

	if (c->p >= c->end || !is_name_start(*c->p))
		return -1;
	while (c->p < c->end && is_name_char(*c->p)) {
		if (n + 1 >= buflen)
			return -1;
		buf[n++] = *c->p++;
	}
	buf[n] = '\0';
	return 0;
}

/* Appends to the folded key; -1 when it would not fit. */
static int key_append(char *key, size_t *len, const char *s, size_t n)
{
	if (n >= US_EXPO_MAX_KEY - *len)
		return -1;
	memcpy(key + *len, s, n);
	*len += n;
	key[*len] = '\0';
	return 0;
}

/* Reads a whitespace-delimited number token. strtod alone would accept a
 * prefix ("1x") or hex floats; the token must be consumed whole. */
static int read_number(struct cursor *c, double *out)
{
	char tok[64], *endp;
	size_t n = 0;

	while (c->p < c->end && *c->p != ' ' && *c->p != '\t') {
		if (n + 1 >= sizeof(tok))
			return -1;
		tok[n++] = *c->p++;
	}
	tok[n] = '\0';
	if (n == 0 || strchr(tok, 'x') || strchr(tok, 'X') || strchr(tok, '('))
		return -1;
	*out = strtod(tok, &endp);
	return *endp == '\0' ? 0 : -1;
}

static const char *error_at(struct us_expo_stats *st, uint64_t line, const char *why)
{
	st->errors++;
	if (!st->first_error_line) {
		st->first_error_line = line;
		snprintf(st->first_error, sizeof(st->first_error), "%s", why);
	}
	return why;
}

/* Labels: '{' already consumed. Folds k="v" pairs into key as written. */
static const char *read_labels(struct cursor *c, char *key, size_t *klen)
{
	char lname[US_EXPO_MAX_NAME];
	int nlabels = 0;

	if (key_append(key, klen, "{", 1) < 0)
		return "key too long";
	for (;;) {
		skip_blanks(c);
		if (c->p < c->end && *c->p == '}') {
			c->p++;
			break;
		}
		if (++nlabels > US_EXPO_MAX_LABELS)
			return "too many labels";
		if (read_name(c, lname, sizeof(lname)) < 0)
			return "bad label name";
		skip_blanks(c);
		if (c->p + 1 >= c->end || c->p[0] != '=' || c->p[1] != '"')
			return "expected =\" after label name";
		c->p += 2;
		if ((nlabels > 1 && key_append(key, klen, ",", 1) < 0) ||
		    key_append(key, klen, lname, strlen(lname)) < 0 ||
		    key_append(key, klen, "=\"", 2) < 0)
			return "key too long";
		for (;;) {
			const char *s = c->p;

			if (c->p >= c->end)
				return "unterminated label value";
			if (*c->p == '"')
				break;
			if (*c->p == '\\') {
				if (c->p + 1 >= c->end ||
				    (c->p[1] != '\\' && c->p[1] != '"' && c->p[1] != 'n'))
					return "bad escape in label value";
				c->p++;
			}
			c->p++;
			if (key_append(key, klen, s, (size_t)(c->p - s)) < 0)
				return "key too long";
		}
		c->p++;
		if (key_append(key, klen, "\"", 1) < 0)
			return "key too long";
		skip_blanks(c);
		if (c->p < c->end && *c->p == ',') {
			c->p++;
			continue;
		}
		if (c->p < c->end && *c->p == '}') {
			c->p++;
			break;
		}
		return "expected , or } after label value";
	}
	/* "name{}" folds to plain "name" so both spellings are one series */
	if (nlabels == 0)
		key[--*klen] = '\0';
	else if (key_append(key, klen, "}", 1) < 0)
		return "key too long";
	return NULL;
}

static enum us_expo_type parse_type(const char *s, size_t n)
{
	static const struct { const char *name; enum us_expo_type t; } types[] = {
		{ "counter", US_EXPO_COUNTER }, { "gauge", US_EXPO_GAUGE },
		{ "histogram", US_EXPO_HISTOGRAM }, { "summary", US_EXPO_SUMMARY },
		{ "untyped", US_EXPO_UNTYPED }, { "unknown", US_EXPO_UNTYPED },
		{ "info", US_EXPO_OTHER }, { "stateset", US_EXPO_OTHER },
		{ "gaugehistogram", US_EXPO_OTHER },
	};

	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (strlen(types[i].name) == n && memcmp(types[i].name, s, n) == 0)
			return types[i].t;
	return (enum us_expo_type)-1;
}

/* "# ..." lines: TYPE sets the current family; HELP, UNIT and plain
 * comments are read past; EOF ends the page. Returns an error or NULL. */
static const char *comment_line(struct cursor *c, struct family *fam, struct us_expo_stats *st)
{
	char word[8], name[US_EXPO_MAX_NAME];
	size_t n = 0;
	const char *t;
	enum us_expo_type type;

	c->p++;
	skip_blanks(c);
	while (c->p < c->end && n + 1 < sizeof(word) && *c->p != ' ' && *c->p != '\t')
		word[n++] = *c->p++;
	word[n] = '\0';
	if (strcmp(word, "EOF") == 0 && c->p == c->end) {
		st->eof = true;
		return NULL;
	}
	if (strcmp(word, "TYPE") != 0)
		return NULL;
	skip_blanks(c);
	if (read_name(c, name, sizeof(name)) < 0)
		return "bad name in # TYPE";
	skip_blanks(c);
	t = c->p;
	while (c->p < c->end && *c->p != ' ' && *c->p != '\t')
		c->p++;
	type = parse_type(t, (size_t)(c->p - t));
	skip_blanks(c);
	if ((int)type < 0 || c->p != c->end)
		return "unknown type in # TYPE";
	memcpy(fam->name, name, sizeof(name));
	fam->type = type;
	return NULL;
}

static const char *sample_line(struct cursor *c, const struct family *fam,
			       struct us_expo_sample *s, char *name, char *key)
{
	size_t klen, flen = strlen(fam->name);
	const char *why;

	if (read_name(c, name, US_EXPO_MAX_NAME) < 0)
		return "bad metric name";
	klen = strlen(name);
	memcpy(key, name, klen + 1);
	if (c->p < c->end && *c->p == '{') {
		c->p++;
		if ((why = read_labels(c, key, &klen)) != NULL)
			return why;
	}
	if (c->p >= c->end || (*c->p != ' ' && *c->p != '\t'))
		return "expected a space before the value";
	skip_blanks(c);
	if (read_number(c, &s->value) < 0)
		return "bad value";
	skip_blanks(c);
	s->has_timestamp = false;
	if (c->p < c->end && *c->p != '#') {
		if (read_number(c, &s->timestamp) < 0)
			return "bad timestamp";
		s->has_timestamp = true;
		skip_blanks(c);
	}
	/* an OpenMetrics exemplar ("# {...} v") is of no use here */
	if (c->p < c->end && *c->p != '#')
		return "unexpected text after the value";
	s->name = name;
	s->key = key;
	if (flen && strncmp(name, fam->name, flen) == 0) {
		static const char *const suffixes[] = {
			"", "_total", "_created", "_count", "_sum", "_bucket", "_gcount",
			"_gsum", "_info", NULL
		};
		for (int i = 0; suffixes[i]; i++) {
			if (strcmp(name + flen, suffixes[i]) == 0) {
				s->family = fam->name;
				s->suffix = name + flen;
				s->type = fam->type;
				return NULL;
			}
		}
	}
	s->family = name;
	s->suffix = "";
	s->type = US_EXPO_UNTYPED;
	return NULL;
}

int us_expo_parse(const char *data, size_t len, us_expo_fn fn, void *ctx,
		  struct us_expo_stats *st)
{
	/* static would not be reentrant; 1 KiB of stack is fine here */
	char name[US_EXPO_MAX_NAME], key[US_EXPO_MAX_KEY];
	struct family fam = { "", US_EXPO_UNTYPED };
	const char *p = data, *end = data + len;
	uint64_t lineno = 0;

	memset(st, 0, sizeof(*st));
	while (p < end && !st->eof) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		struct cursor c = { p, nl ? nl : end };
		struct us_expo_sample s;
		const char *why;

		p = nl ? nl + 1 : end;
		lineno++;
		if (c.end > c.p && c.end[-1] == '\r')
			c.end--;
		skip_blanks(&c);
		if (c.p == c.end)
			continue;
		st->lines++;
		if (memchr(c.p, '\0', (size_t)(c.end - c.p))) {
			error_at(st, lineno, "NUL byte");
			continue;
		}
		if (*c.p == '#') {
			if ((why = comment_line(&c, &fam, st)) != NULL)
				error_at(st, lineno, why);
			continue;
		}
		if ((why = sample_line(&c, &fam, &s, name, key)) != NULL) {
			error_at(st, lineno, why);
			continue;
		}
		st->samples++;
		if (fn) {
			int rc = fn(ctx, &s);

			if (rc)
				return rc;
		}
	}
	/* text after "# EOF" is not part of the page */
	if (st->eof && p < end)
		error_at(st, lineno + 1, "text after # EOF");
	return 0;
}

const char *us_expo_type_name(enum us_expo_type t)
{
	switch (t) {
	case US_EXPO_UNTYPED: return "untyped";
	case US_EXPO_COUNTER: return "counter";
	case US_EXPO_GAUGE: return "gauge";
	case US_EXPO_HISTOGRAM: return "histogram";
	case US_EXPO_SUMMARY: return "summary";
	case US_EXPO_OTHER: return "other";
	}
	return "?";
}
