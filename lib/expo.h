/* Parser for the Prometheus text exposition format (0.0.4) and OpenMetrics
 * text (1.0): "# TYPE", "# HELP", "# EOF" and sample lines
 * "name{k="v",...} value [timestamp] [# exemplar]". It reads a whole page
 * held in memory, calls back once per sample and never fails as a whole:
 * a line it cannot read is counted in the stats and skipped, so one broken
 * series does not cost the rest of the page. Everything it keeps is bounded
 * by the limits below, whatever the input. */
#ifndef US_EXPO_H
#define US_EXPO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define US_EXPO_MAX_NAME 256   /* metric and label names */
#define US_EXPO_MAX_LABELS 32  /* labels on one sample */
#define US_EXPO_MAX_KEY 512    /* name{labels} as folded by the parser */

enum us_expo_type {
	US_EXPO_UNTYPED,	/* no "# TYPE" for the family, or "untyped"/"unknown" */
	US_EXPO_COUNTER,
	US_EXPO_GAUGE,
	US_EXPO_HISTOGRAM,
	US_EXPO_SUMMARY,
	US_EXPO_OTHER,		/* OpenMetrics info, stateset, gaugehistogram */
};

struct us_expo_sample {
	const char *name;	/* as written: "http_requests_total" */
	const char *key;	/* name plus labels in page order, values escaped as on
				 * the page: http_requests_total{code="200"}; no
				 * braces when there are no labels */
	const char *family;	/* the "# TYPE" family it belongs to, else name */
	const char *suffix;	/* name minus family: "", "_total", "_count", ... */
	enum us_expo_type type;	/* the family's type */
	double value;		/* may be NaN or +-Inf */
	bool has_timestamp;
	double timestamp;	/* as written: ms (Prometheus) or s (OpenMetrics) */
};

struct us_expo_stats {
	uint64_t lines;		/* non-empty lines read */
	uint64_t samples;	/* sample lines handed to the callback */
	uint64_t errors;	/* lines skipped as unreadable */
	uint64_t first_error_line;	/* 1-based; 0 when none */
	char first_error[96];
	bool eof;		/* "# EOF" seen (OpenMetrics pages end with it) */
};

/* Called once per readable sample; the strings live until it returns. A
 * non-zero return stops the parse (and is returned by us_expo_parse). */
typedef int (*us_expo_fn)(void *ctx, const struct us_expo_sample *s);

/* Parses len bytes (need not be NUL-terminated; NUL bytes are errors).
 * Returns 0, or what fn returned to stop. Stats are reset first. */
int us_expo_parse(const char *data, size_t len, us_expo_fn fn, void *ctx,
		  struct us_expo_stats *st);

const char *us_expo_type_name(enum us_expo_type t);

#endif
