/* The capacity plans the coordinator keeps (planner.c): for a workload,
 * the plan of lib/plan.h over its stored history, sized on the capacity its
 * shadow measured (or catalog figures when there is none) and on the
 * binding resource, as JSON. The controller recomputes it every
 * controller.plan_interval into the `plans` table (store.c schema v7);
 * Plan/Make answers with the latest. docs/plan.md describes the JSON. */
#ifndef US_PLANNER_H
#define US_PLANNER_H

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

#include "api_methods.h"

#define US_PLANNER_HORIZON_S (48 * 3600)

struct us_planner_cfg {
	const char *catalog_path;    /* "" or NULL = the default catalog */
	double p99_ratio;            /* shadow p99 within production's × this; 0 = 1.2 */
	int64_t horizon_s;           /* 0 = US_PLANNER_HORIZON_S */
};

/* Computes the workload's plan now from the store: 0 with *json (malloc'd),
 * or -1 with err saying why (too little history, no type, ...). */
int us_planner_make(sqlite3 *db, const struct us_planner_cfg *cfg, const char *workload,
		    uint64_t now_ns, char **json, char *err, size_t errlen);

/* Records a plan (json) or the reason none could be made (json NULL). */
int us_planner_store(sqlite3 *db, const char *workload, uint64_t now_ns, int64_t horizon_s,
		     const char *json, const char *why);

/* Plan/Make. */
int us_api_plan_make(struct us_api_ctx *ctx, const ProtobufCMessage *req,
		     ProtobufCMessage **resp, char *msg, size_t msglen);

#endif
