/* Fuzzing of the forecasting CSV front end (lib/forecast_csv) and, on what
 * it accepts, of us_forecast() itself with a short horizon: any input either
 * parses into a gap-free series of finite values (non-negative unless
 * allowed) with a positive step, or is refused with a line inside the input
 * and a reason; a forecast is either refused with a reason or finite with
 * ordered bounds. Flags come from the first byte. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "forecast.h"
#include "forecast_csv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned flags = size > 0 ? data[0] & 7u : 0;
	struct us_fc_series s;
	struct us_fc_output out;
	size_t line, lines = 1;
	char err[256];

	for (size_t i = 0; i < size; i++)
		lines += data[i] == '\n';
	if (us_fc_csv_parse((const char *)data, size, flags, 0, &s, &line, err, sizeof(err)) < 0) {
		if (line < 1 || line > lines || err[0] == '\0' || s.y || s.n)
			abort();
		return 0;
	}
	if (s.n == 0 || s.step_us <= 0 || s.first_line < 1 || s.first_line > lines)
		abort();
	for (size_t i = 0; i < s.n; i++)
		if (!isfinite(s.y[i]) || (!(flags & US_FCCSV_NEG_OK) && s.y[i] < 0))
			abort();
	if (s.n <= 2000) {
		struct us_fc_input in = { .y = s.y, .n = s.n, .nonnegative = 1 };

		if (us_forecast(&in, 12, &out, err, sizeof(err)) == 0) {
			/* ordered bounds whenever the numbers are finite (inputs
			 * near DBL_MAX may overflow; that is not checked) */
			for (size_t j = 0; j < out.h; j++)
				if (isfinite(out.hi95[j]) && isfinite(out.lo95[j]) &&
				    (out.lo95[j] > out.mean[j] || out.mean[j] > out.hi95[j] ||
				     out.mean[j] < 0))
					abort();
		} else if (err[0] == '\0') {
			abort();
		}
		us_fc_output_free(&out);
	}
	us_fc_series_free(&s);
	return 0;
}
