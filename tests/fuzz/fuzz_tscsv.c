/* Fuzzing of the timestamp,value CSV reader (lib/tscsv): any input either
 * parses into strictly increasing (or, with US_TSCSV_DUP_OK, non-decreasing)
 * timestamps and finite values, or is refused with a line inside the input
 * and a reason; and a formatted timestamp parses back to itself. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tscsv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned flags = size > 0 && (data[0] & 1) ? US_TSCSV_DUP_OK : 0;
	struct us_ts_series s;
	size_t line, lines = 1;
	char err[256], buf[64];

	for (size_t i = 0; i < size; i++)
		lines += data[i] == '\n';
	if (us_tscsv_parse((const char *)data, size, flags, &s, &line, err, sizeof(err)) < 0) {
		if (line < 1 || line > lines || err[0] == '\0' || s.p || s.n)
			abort();
		return 0;
	}
	if (s.n == 0)
		abort();
	for (size_t i = 0; i < s.n; i++) {
		int64_t back;
		int dt;

		if (!isfinite(s.p[i].v))
			abort();
		if (i > 0 && (s.p[i].t_us < s.p[i - 1].t_us ||
			      (!(flags & US_TSCSV_DUP_OK) && s.p[i].t_us == s.p[i - 1].t_us)))
			abort();
		/* whole seconds round-trip through the formatter */
		if (s.p[i].t_us % 1000000 == 0 && s.p[i].t_us >= 0) {
			us_tscsv_format_time(s.p[i].t_us, s.datetime, buf, sizeof(buf));
			if (us_tscsv_parse_time(buf, strlen(buf), &back, &dt) < 0 || back != s.p[i].t_us)
				abort();
		}
	}
	us_tscsv_free(&s);
	return 0;
}
