/* libFuzzer target for lib/policy: parses the input as a policies file; on
 * success checks what the parser promises (a "default" policy, steps
 * increasing to 100, windows in range) and asks every policy about
 * maintenance windows at times taken from the input. Every failure must
 * leave a message in the common "FILE..." format. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy.h"

#define FUZZ_NAME "fuzz.yaml"

static void fuzz_check(const struct us_migration_policy *p, time_t t)
{
	if (!p->name[0] || p->nsteps < 1 || p->nsteps > US_POLICY_MAX_STEPS ||
	    p->steps[p->nsteps - 1] != 100 || p->nwindows > US_POLICY_MAX_WINDOWS)
		abort();
	for (size_t i = 1; i < p->nsteps; i++)
		if (!(p->steps[i] > p->steps[i - 1]) || !(p->steps[0] > 0))
			abort();
	for (size_t i = 0; i < p->nwindows; i++)
		if (p->windows[i].start_min >= 24 * 60 || p->windows[i].end_min > 24 * 60 ||
		    p->windows[i].start_min == p->windows[i].end_min ||
		    !p->windows[i].days || p->windows[i].days > 0x7f)
			abort();
	(void)us_policy_in_window(p, t);
	(void)us_policy_in_window(p, 0);
	(void)us_policy_in_window(p, -t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct us_policy_set *s = malloc(sizeof(*s));
	char err[512] = "";
	time_t t = 0;

	if (!s)
		return 0;
	memcpy(&t, data, size < sizeof(t) ? size : sizeof(t));
	if (us_policy_parse(FUZZ_NAME, data, size, s, err, sizeof(err)) == 0) {
		if (s->n < 1 || s->n > US_MAX_POLICIES || !us_policy_find(s, "default"))
			abort();
		for (size_t i = 0; i < s->n; i++)
			fuzz_check(&s->p[i], t);
	} else if (strncmp(err, FUZZ_NAME, strlen(FUZZ_NAME)) != 0) {
		abort();
	}
	free(s);
	return 0;
}
