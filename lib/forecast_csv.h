/* A `timestamp,value` CSV (lib/tscsv.h) turned into the regular series that
 * us_forecast() needs: the step is the median spacing, each point goes to its
 * nearest step, gaps of at most max_gap steps are filled by linear
 * interpolation, and a longer gap splits the series, of which the last
 * segment is kept (or, with US_FCCSV_GAP_FAIL, the gap is an error).
 * Negative values are refused unless US_FCCSV_NEG_OK; duplicate timestamps
 * are refused unless US_FCCSV_DUP_OK, which averages them. Errors name the
 * 1-based line at fault. Pure: parses a buffer (fuzzed, fuzz_fc_csv). */
#ifndef US_FORECAST_CSV_H
#define US_FORECAST_CSV_H

#include <stddef.h>
#include <stdint.h>

enum {
	US_FCCSV_DUP_OK = 1u << 0,
	US_FCCSV_NEG_OK = 1u << 1,
	US_FCCSV_GAP_FAIL = 1u << 2,
};

#define US_FCCSV_MAX_GAP 12     /* default: 1 h of 5-minute points */

struct us_fc_series {
	double *y;              /* n values, one per step (malloc'd) */
	size_t n;
	int64_t t0_us;          /* timestamp of y[0] */
	int64_t step_us;
	int datetime;           /* the input used date-times (for formatting output) */
	size_t filled;          /* points interpolated */
	size_t dropped;         /* points before the last long gap, not used */
	size_t first_line;      /* line of the first point kept */
};

/* max_gap: longest gap (missing steps) to interpolate; 0 = US_FCCSV_MAX_GAP. */
int us_fc_csv_parse(const char *buf, size_t len, unsigned flags, size_t max_gap,
		    struct us_fc_series *s, size_t *line, char *err, size_t errlen);
/* Reads a file; errors read "PATH:LINE: reason". */
int us_fc_csv_read(const char *path, unsigned flags, size_t max_gap, struct us_fc_series *s,
		   char *err, size_t errlen);
void us_fc_series_free(struct us_fc_series *s);

#endif
