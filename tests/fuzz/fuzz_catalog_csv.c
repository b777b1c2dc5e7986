/* Fuzzing of the instance catalog parser (lib/catalog.c). Checks: no crash
 * or sanitizer report; a rejected input says "NAME:LINE: FIELD: ..." and
 * leaves the catalog empty; an accepted one holds only valid types, each of
 * which the engine can evaluate against a need. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "catalog.h"
#include "recommend.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct us_rec_need need = { .present = { true, true, true }, .observed = { 1, 2, 0.5 },
				    .need = { 1.2, 2.4, 0.6 } };
	struct us_catalog c;
	struct us_rec_result r;
	char err[512];

	if (us_catalog_parse((const char *)data, size, "f.csv", &c, err, sizeof(err)) < 0) {
		if (strncmp(err, "f.csv:", 6) != 0 || c.types || c.n)
			abort();
		return 0;
	}
	for (size_t i = 0; i < c.n; i++) {
		const struct us_itype *t = &c.types[i];

		if (!t->type[0] || !(t->vcpu > 0) || !(t->memory_gib > 0) ||
		    !(t->usd_per_hour > 0) || !(t->baseline_cpu_pct > 0) ||
		    t->baseline_cpu_pct > 100 || us_catalog_find(&c, t->type) != t)
			abort();
	}
	if (us_recommend(&c, &need, c.types[0].type, &r, err, sizeof(err)) < 0)
		abort();
	for (size_t i = 1; i < r.n_options; i++)
		if (r.options[i - 1].type->usd_per_hour > r.options[i].type->usd_per_hour)
			abort();
	us_rec_result_free(&r);
	us_catalog_free(&c);
	return 0;
}
