/* libFuzzer target for lib/fc_events: parses the input as a business
 * forecast YAML; on success learns the calendar from a small fixed history
 * and applies everything to a small forecast. Beyond "no crash, no leak" it
 * checks that failures name the file, that parsed ranges are well formed and
 * that applying never yields a negative or NaN figure. */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fc_events.h"

#define FUZZ_NAME "fuzz.yaml"
#define N 48

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	double mean[N], lo[N], hi[N], v[N];
	int64_t t[N];
	struct us_fc_events ev;
	struct us_fc_bands fc = { .start = 1735689600, .step = 3600, .n = N, .mean = mean,
				  .lo95 = lo, .hi95 = hi };
	char err[256] = "";

	if (us_fc_events_parse(FUZZ_NAME, data, size, &ev, err, sizeof(err)) < 0) {
		if (strncmp(err, FUZZ_NAME, sizeof(FUZZ_NAME) - 1) != 0 || ev.nevents || ev.ncal)
			abort();
		return 0;
	}
	for (size_t i = 0; i < ev.nevents; i++)
		if (ev.events[i].end <= ev.events[i].start)
			abort();
	for (size_t i = 0; i < N; i++) {
		t[i] = 1735689600 - (int64_t)(N - i) * 3600;
		v[i] = 100 + (double)(i % 24);
		mean[i] = 100;
		lo[i] = 50;
		hi[i] = 150;
	}
	us_fc_learn_calendar(&ev, t, v, NULL, N);
	us_fc_apply_events(&ev, &fc);
	for (size_t i = 0; i < N; i++)
		if (!(mean[i] >= 0) || !(lo[i] >= 0) || !(hi[i] >= 0))
			abort();
	us_fc_events_free(&ev);
	return 0;
}
