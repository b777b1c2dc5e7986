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

/* Fills v for workload over [from_ns, to_ns). Returns 0, 1 when the store
 * holds nothing of the workload in the window, -1 with a reason in err. */
int us_compare_store(sqlite3 *db, const char *workload, uint64_t from_ns, uint64_t to_ns,
		     const struct us_policy *pol, struct us_verdict *v, char *err, size_t errlen);

/* The verdict as a malloc'd API message (free with
 * protobuf_c_message_free_unpacked), or NULL when out of memory. */
Understudy__Api__CompareResponse *us_compare_response(const struct us_verdict *v);

#endif
