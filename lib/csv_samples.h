/* Latency samples from CSV text, for the offline comparison
 * (`understudy compare --production F --shadow F`, `--pairs F`).
 *
 * One sample a line: `latency_ms[,status]`, or for pairs
 * `production_ms,shadow_ms[,production_status,shadow_status]`. An optional
 * first line of column names picks the columns by name instead (latency:
 * latency_ms, latency, value; status: status, status_code; pairs:
 * production_ms/production/baseline, shadow_ms/shadow/candidate,
 * production_status/prod_status, shadow_status). Blank lines and lines
 * starting with '#' are skipped. A status is an HTTP code; 0 (no
 * response) and 5xx count as errors. Refused, naming the line: a value
 * that is not a number, NaN or infinite, a negative latency, a missing or
 * extra field, a status outside 0-999, a file without samples. */
#ifndef US_CSV_SAMPLES_H
#define US_CSV_SAMPLES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct us_csv_samples {
	double *a, *b;       /* latencies (b: shadow, pairs only) */
	size_t n, cap;
	bool has_status;
	uint64_t errors_a, errors_b;
};

/* Parses len bytes of buf (no terminator needed). Returns 0, or -1 with
 * "line N: reason" in err (out is then freed). */
int us_csv_samples_parse(const char *buf, size_t len, bool pairs, struct us_csv_samples *out,
			 char *err, size_t errlen);
void us_csv_samples_free(struct us_csv_samples *s);
bool us_status_is_error(long status);

#endif
