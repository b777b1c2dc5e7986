/* Reader of `timestamp,value` CSV time series (the NAB format): an optional
 * header line, then one point per line. A timestamp is either a UTC date-time
 * "YYYY-MM-DD HH:MM:SS[.ffffff]" (a 'T' may replace the space, a trailing 'Z'
 * is allowed) or unix seconds with an optional fraction. Values are finite
 * decimal numbers. Timestamps must strictly increase (see US_TSCSV_DUP_OK).
 *
 * Pure: parses a buffer, so the same code serves files and the fuzzer. */
#ifndef US_TSCSV_H
#define US_TSCSV_H

#include <stddef.h>
#include <stdint.h>

struct us_ts_point {
	int64_t t_us;           /* unix microseconds */
	double v;
};

struct us_ts_series {
	struct us_ts_point *p;  /* malloc'd */
	size_t n;
	int datetime;           /* 1 when the timestamps were date-times */
};

/* Flags: US_TSCSV_DUP_OK accepts a timestamp equal to the previous one (NAB's
 * ec2_disk_write_bytes_1ef3de has 12 rows at a daylight-saving change). */
#define US_TSCSV_DUP_OK 1u

/* Parses len bytes of buf into *s (free with us_tscsv_free). Returns 0, or -1
 * with *line set to the 1-based line at fault (the last one, at least 1,
 * when there is no point) and err holding the reason. */
int us_tscsv_parse(const char *buf, size_t len, unsigned flags, struct us_ts_series *s,
		   size_t *line, char *err, size_t errlen);
/* Reads a whole file and parses it; on error err reads "PATH:LINE: reason". */
int us_tscsv_read(const char *path, unsigned flags, struct us_ts_series *s, char *err,
		  size_t errlen);
void us_tscsv_free(struct us_ts_series *s);

/* Parses one timestamp (either form) of len bytes. 0 or -1. */
int us_tscsv_parse_time(const char *s, size_t len, int64_t *t_us, int *datetime);
/* Formats t_us as "YYYY-MM-DD HH:MM:SS" (datetime) or unix seconds. */
void us_tscsv_format_time(int64_t t_us, int datetime, char *buf, size_t len);

#endif
