/* Fuzzing of the utilization CSV parser (lib/utilization.c) and the need
 * computation on whatever it accepts. Checks: no crash or sanitizer report;
 * a rejection names "NAME:LINE:" and leaves nothing allocated; accepted
 * samples are finite, non-negative and strictly increasing in time; needs
 * are finite and at least the observed percentile. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "recommend.h"
#include "utilization.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct us_rec_params p;
	struct us_rec_need n;
	struct us_util u;
	char err[512];

	if (us_util_parse((const char *)data, size, "f.csv", &u, err, sizeof(err)) < 0) {
		if (strncmp(err, "f.csv:", 6) != 0 || u.s || u.n)
			abort();
		return 0;
	}
	for (size_t i = 0; i < u.n; i++) {
		const struct us_util_sample *s = &u.s[i];

		if (!isfinite(s->t) || !(s->cpu_cores >= 0) || !(s->memory_gib >= 0) ||
		    !(s->network_gbps >= 0) || !isfinite(s->cpu_cores) ||
		    (i && !(s->t > u.s[i - 1].t)))
			abort();
	}
	us_rec_params_default(&p);
	p.min_hours = 0;
	if (us_rec_need(&u, &p, &n, err, sizeof(err)) == 0)
		for (int d = 0; d < US_DIM_COUNT; d++)
			if (n.present[d] && (!isfinite(n.need[d]) || n.need[d] < n.observed[d]))
				abort();
	us_util_free(&u);
	return 0;
}
