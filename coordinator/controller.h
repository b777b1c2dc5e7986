/* The migration controller: one thread with its own store connection that
 * carries out what the API recorded (tables instances and migrations, schema
 * v6 in store.c). Each pass it
 *   - drives every instance toward its desired state with idempotent
 *     provider calls (provision, deploy, start, health; decommission),
 *   - advances every active migration's state machine
 *     (Observing → Recommended → Shadowing → Validated → Preallocated →
 *     Shifting → Completed | RolledBack), journaling each transition in the
 *     same transaction as the new state, before any of its side effects,
 *   - keeps the local agent's drop-in workloads in step with the running
 *     instances (so each instance's requests are measured), and
 *   - sets each service's traffic weights from the instances and the
 *     migration step, and
 *   - recomputes each production workload's capacity plan when it is due
 *     (planner.c).
 * Side effects are functions of the stored state, so a controller killed at
 * any point and started again redoes at most an idempotent call: it neither
 * repeats nor skips a step. docs/migrate.md describes states and guards. */
#ifndef US_CONTROLLER_H
#define US_CONTROLLER_H

#include <stddef.h>
#include <stdint.h>

#include "provider.h"

struct us_controller_config {
	const char *db_path;
	const char *data_dir;
	const char *workloads_dir;     /* workload definitions NAME.yaml */
	const char *policies_path;
	const char *agent;             /* agent measuring local instances; "" = none */
	const char *agent_dropin_dir;  /* that agent's workloads_dir */
	uint64_t interval_ns;
	uint64_t plan_interval_ns;     /* capacity plans recomputed (planner.c); 0 = 6h */
	const struct us_provider_config *provider;
};

struct us_controller;

/* Opens the provider and the store, starts the thread; NULL with a reason. */
struct us_controller *us_controller_start(const struct us_controller_config *cfg, char *err,
					  size_t errlen);
/* Finishes the pass in progress, joins the thread, frees. NULL ok. */
void us_controller_stop(struct us_controller *c);

#endif
