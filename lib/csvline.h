/* A minimal reader for the plain CSV files understudy takes as input (the
 * instance catalog, utilization exports): one record per line, fields split
 * at commas, no quoting (none of these files needs it), surrounding blanks
 * and a trailing CR trimmed. It tracks line numbers so every parser can say
 * "FILE:LINE: FIELD: what is wrong". Blank lines and lines starting with '#'
 * are skipped. Bounded: a line longer than US_CSV_MAX_LINE is an error. */
#ifndef US_CSVLINE_H
#define US_CSVLINE_H

#include <stddef.h>

#define US_CSV_MAX_LINE 1024
#define US_CSV_MAX_FIELDS 16

struct us_csv {
	const char *p, *end;
	unsigned line;                     /* of the record last returned */
	char buf[US_CSV_MAX_LINE + 1];
	char *field[US_CSV_MAX_FIELDS];
};

void us_csv_init(struct us_csv *r, const char *data, size_t len);

/* The next record: its field count (>= 1), 0 at the end of the input, or
 * -1 for a line that is too long or has too many fields (r->line names it). */
int us_csv_next(struct us_csv *r);

/* A finite number filling the whole field: 0, or -1 (empty, not a number,
 * trailing text, NaN or infinite). */
int us_csv_number(const char *s, double *v);

/* Reads a whole file (at most max bytes) into a malloc'd, NUL-terminated
 * buffer. Returns 0, or -1 with "FILE: reason" in err. */
int us_csv_slurp(const char *path, size_t max, char **data, size_t *len, char *err,
		 size_t errlen);

#endif
