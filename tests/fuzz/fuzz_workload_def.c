/* libFuzzer target for lib/workload_def: parses the input as a workload
 * definition; on success every string that may hold variables is expanded
 * (into a roomy and a tiny buffer), and every failure must leave a message
 * in the common "FILE..." format. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "workload_def.h"

#define FUZZ_NAME "fuzz.yaml"

static void fuzz_expand(const char *s)
{
	static const struct us_wd_vars v = { "/var/lib/understudy/i-1", "i-1", "10.0.0.1", 8080 };
	char out[US_WD_STR * 2], tiny[4], err[256];

	err[0] = '\0';
	/* the parser refused unknown variables, so expansion must succeed */
	if (us_workload_expand(s, &v, out, sizeof(out), err, sizeof(err)) < 0)
		abort();
	if (us_workload_expand(s, &v, tiny, sizeof(tiny), err, sizeof(err)) < 0 && !err[0])
		abort();
}

/* The raw input as a template: any result, but no crash or overrun. */
static void fuzz_expand_raw(const uint8_t *data, size_t size)
{
	static const struct us_wd_vars nulls = { NULL, NULL, NULL, 0 };
	char in[256], out[64], err[128];
	size_t n = size < sizeof(in) - 1 ? size : sizeof(in) - 1;

	memcpy(in, data, n);
	in[n] = '\0';
	us_workload_expand(in, &nulls, out, sizeof(out), err, sizeof(err));
}

static void fuzz_check(const struct us_workload_def *w)
{
	if (!w->name[0] || !w->command[0] || w->port == 0 || w->service.port == 0 ||
	    w->nargs > US_WD_MAX_ARGS || w->nenv > US_WD_MAX_ENV ||
	    w->nfiles > US_WD_MAX_PATHS || w->ndata > US_WD_MAX_PATHS ||
	    w->nallow > US_WD_MAX_ALLOW)
		abort();
	for (size_t i = 0; i < w->nallow; i++)
		if (!w->allow[i].address[0])
			abort();
	for (size_t i = 0; i < w->nargs; i++)
		fuzz_expand(w->args[i]);
	for (size_t i = 0; i < w->nenv; i++)
		fuzz_expand(w->env_values[i]);
	fuzz_expand(w->workdir);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct us_workload_def *w = malloc(sizeof(*w)); /* ~200 KiB */
	char err[512] = "";

	if (!w)
		return 0;
	fuzz_expand_raw(data, size);
	if (us_workload_def_parse(FUZZ_NAME, data, size, w, err, sizeof(err)) == 0)
		fuzz_check(w);
	else if (strncmp(err, FUZZ_NAME, strlen(FUZZ_NAME)) != 0)
		abort();
	free(w);
	return 0;
}
