/* Migration policies (/etc/understudy/policies.yaml, a `policies:` list):
 * when a shadow counts as validated, how traffic shifts, what guards it,
 * and when it may happen. Parsing and validation only; the controller
 * (coordinator/migrate.c) applies them. */
#ifndef US_POLICY_H
#define US_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define US_POLICY_MAX_STEPS 16
#define US_POLICY_MAX_WINDOWS 16
#define US_MAX_POLICIES 64

/* Named us_migration_policy, not us_policy: lib/verdict.h already has a
 * struct us_policy (comparison tolerances) and us_policy_defaults(). */

struct us_maint_window {
	uint8_t days;              /* bit 0 = Sunday … bit 6 = Saturday; 0x7f = every day */
	uint16_t start_min;        /* minutes after midnight UTC */
	uint16_t end_min;          /* exclusive; may be < start_min (crosses midnight) */
};

struct us_migration_policy {
	char name[64];
	struct {
		double min_confidence;     /* decision Pass with confidence ≥ this; default 0.9 */
		uint64_t min_duration_ns;  /* shadowed at least this long; default 10 m */
		uint64_t min_samples;      /* paired requests at least; default 1000 */
		uint64_t window_ns;        /* comparison window; default 15 m */
	} validate;
	double steps[US_POLICY_MAX_STEPS]; /* percent to the new instance; default 10,25,50,100 */
	size_t nsteps;
	uint64_t bake_ns;              /* per step; default 5 m */
	struct {
		double max_p99_ratio;      /* new p99 / old p99; default 1.2 */
		uint64_t min_p99_delta_ns; /* and new − old p99 above this; default 1 ms */
		double max_error_delta;    /* new − old error rate, fraction; default 0.001 */
		uint64_t min_samples;      /* per side before a guard judges; default 100 */
		uint64_t window_ns;        /* recent requests judged; default 1 m */
	} guards;
	bool approval;                 /* wait for `understudy approve` before shifting */
	uint32_t max_concurrent;       /* migrations shifting at once; default 1 */
	uint64_t retain_ns;            /* old instance kept after completion; default 10 m */
	uint64_t preallocate_lead_ns;  /* new instance ready this long before shifting; default 0 */
	struct us_maint_window windows[US_POLICY_MAX_WINDOWS]; /* none = any time */
	size_t nwindows;
};

struct us_policy_set {
	struct us_migration_policy p[US_MAX_POLICIES];
	size_t n;
};

void us_migration_policy_defaults(struct us_migration_policy *p);
/* A missing file gives one policy, "default", with the defaults; a file
 * without a policy named "default" gets one with the defaults appended.
 * -1 with "FILE:LINE: FIELD: what is wrong" in err. */
int us_policy_load(const char *path, struct us_policy_set *s, char *err, size_t errlen);
int us_policy_parse(const char *name, const void *data, size_t len, struct us_policy_set *s,
		    char *err, size_t errlen);
const struct us_migration_policy *us_policy_find(const struct us_policy_set *s, const char *name);
/* True when t (Unix seconds) lies in a maintenance window, or none is set.
 * A window crossing midnight belongs to the day it starts on: Sat 23:00-01:00
 * covers Sunday 00:30. */
bool us_policy_in_window(const struct us_migration_policy *p, time_t t);

#endif
