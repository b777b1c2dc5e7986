/* Dropping the capabilities the agent needs only at start (see privs.c for
 * which are kept and why). Capability sets are bit masks, bit N standing
 * for capability N of <linux/capability.h>. */
#ifndef US_PRIVS_H
#define US_PRIVS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What a drop does to the sets a process holds. */
struct us_privs_plan {
	uint64_t keep;		/* stays in the effective and permitted sets */
	uint64_t drop;		/* leaves the effective and permitted sets */
	uint64_t drop_bounding;	/* leaves the bounding set */
	bool bounding_kept;	/* CAP_SETPCAP not effective: bounding set untouched */
};

/* The capabilities the agent still needs once its collectors run. */
uint64_t us_privs_runtime_set(void);
/* The drop for a process holding these sets: everything outside the
 * run-time set goes; the bounding set only when CAP_SETPCAP is effective. */
void us_privs_plan(uint64_t effective, uint64_t permitted, uint64_t bounding,
		   struct us_privs_plan *p);
/* "cap_bpf,cap_perfmon" (lower case, as capsh spells them) or "none". */
void us_privs_names(uint64_t set, char *buf, size_t len);
/* The calling thread's sets. Returns 0 or a negative errno. */
int us_privs_current(uint64_t *effective, uint64_t *permitted, uint64_t *bounding);
/* Drops what us_privs_plan says from the calling thread (threads started
 * later inherit it) and sets no_new_privs. *done: what was dropped. Returns
 * 0, or a negative errno with the step that failed in err. */
int us_privs_drop(struct us_privs_plan *done, char *err, size_t errlen);
/* The sets the plan drops from, for messages: "effective, permitted and
 * bounding sets", or without the bounding set and why. */
const char *us_privs_sets_named(const struct us_privs_plan *p);
/* One line for the log: kept, dropped, and from which sets. */
void us_privs_describe(const struct us_privs_plan *p, char *buf, size_t len);

#endif
