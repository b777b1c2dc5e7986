/* Fuzzing the offline comparison's CSV reader (lib/csv_samples.c), in both
 * modes: it must never crash or read out of bounds, and whatever it
 * accepts must satisfy its contract (finite, non-negative latencies, at
 * least one sample, error counts no larger than the sample count). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "csv_samples.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	for (int pairs = 0; pairs < 2; pairs++) {
		struct us_csv_samples s;
		char err[256];

		if (us_csv_samples_parse((const char *)data, size, pairs, &s, err, sizeof(err)) < 0)
			continue;
		if (s.n == 0 || s.errors_a > s.n || s.errors_b > s.n)
			abort();
		for (size_t i = 0; i < s.n; i++)
			if (!isfinite(s.a[i]) || s.a[i] < 0 ||
			    (pairs && (!isfinite(s.b[i]) || s.b[i] < 0)))
				abort();
		us_csv_samples_free(&s);
	}
	return 0;
}
