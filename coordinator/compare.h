/* Compare/Run in the coordinator: gathers a workload's production and
 * shadow figures over a window from the store (request samples, kernel
 * histograms, per-minute series) and judges them with lib/verdict.c. */
#ifndef US_COMPARE_H
#define US_COMPARE_H

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

#include "api.pb-c.h"
#include "verdict.h"

/* Where each side's figures are: a workload and role. In one workload
 * (production and shadow roles, the agent's mirror) latency is paired when
 * mirrored requests were answered; two workloads (a shadow instance
 * measured as its own workload, on its server like production) are
 * compared unpaired, with the mirror's throughput and error accounting
 * from production's rows when there is a mirror. */
struct us_compare_sides {
	const char *prod, *shadow;
	int prod_role, shadow_role;     /* UNDERSTUDY__ROLE__* */
};

/* Fills v over [from_ns, to_ns). Returns 0, 1 when the store holds nothing
 * of the sides in the window, -1 with a reason in err. */
int us_compare_store_sides(sqlite3 *db, const struct us_compare_sides *sd, uint64_t from_ns,
			   uint64_t to_ns, const struct us_policy *pol, struct us_verdict *v,
			   char *err, size_t errlen);

/* The verdict as a malloc'd API message (free with
 * protobuf_c_message_free_unpacked), or NULL when out of memory. */
Understudy__Api__CompareResponse *us_compare_response(const struct us_verdict *v);

#endif
