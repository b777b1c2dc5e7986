/* Utilization samples of one workload, the recommendation's input: per
 * sample a time, CPU in cores, memory in GiB and optionally network in Gbps.
 * Offline they come from a CSV file
 *   timestamp,cpu_cores,memory_gib[,network_gbps]
 * (an optional header line with exactly those names; timestamp in unix
 * seconds, fractions allowed, or ISO 8601 such as 2024-05-01T12:00:00Z or
 * 2024-05-01 12:00:00+02:00, UTC when no zone is given); online the
 * coordinator builds them from the store. Every parse error names
 * "FILE:LINE: FIELD: what is wrong". */
#ifndef US_UTILIZATION_H
#define US_UTILIZATION_H

#include <stdbool.h>
#include <stddef.h>

#define US_UTIL_MAX_BYTES (256u << 20)

struct us_util_sample {
	double t;              /* unix seconds */
	double cpu_cores;
	double memory_gib;
	double network_gbps;   /* 0 when the input has no network column */
};

struct us_util {
	struct us_util_sample *s;
	size_t n, cap;
	bool has_network;
};

int us_util_parse(const char *data, size_t len, const char *name, struct us_util *u,
		  char *err, size_t errlen);
int us_util_load(const char *path, struct us_util *u, char *err, size_t errlen);
/* Appends one sample; -1 when out of memory. */
int us_util_push(struct us_util *u, const struct us_util_sample *s);
void us_util_free(struct us_util *u);

/* Unix seconds or ISO 8601 (see above) to unix seconds: 0, or -1. */
int us_util_parse_time(const char *s, double *t);

#endif
