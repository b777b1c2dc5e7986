/* Egress guard of local-provider instances (bpf/egress.bpf.c, issue 9): the
 * cgroup/connect4, connect6, sendmsg4 and sendmsg6 programs on an
 * instance's cgroup v2 directory refuse (EPERM) every connect and every
 * unconnected UDP send from its tasks to a destination that is neither
 * loopback nor in the instance's allow list, so a shadow cannot reach the
 * host's services or production addresses unless its workload definition
 * names them (allow_destinations). Links and maps are pinned in
 * /sys/fs/bpf/understudy/egress/<cgroup id>/ (`connect4`, `connect6`,
 * `sendmsg4`, `sendmsg6`, `counters`, `allow`), so the guard outlives the
 * coordinator and a restarted one finds it again. Every function returns 0
 * or -1 with a message in err. */
#ifndef US_EGRESS_H
#define US_EGRESS_H

#include <stddef.h>
#include <stdint.h>

#include "workload_def.h"

#define US_EGRESS_PIN_ROOT "/sys/fs/bpf/understudy/egress"

/* Attaches the guard to the cgroup v2 directory (idempotent: an existing
 * pinned attachment is reused) and makes the allow list exactly allow[0..n)
 * (n ≤ US_EGRESS_MAX_ALLOW of bpf/egress.h). The guard is in place when
 * this returns: attach before the workload runs. */
int us_egress_attach(const char *cgroup, const struct us_wd_dest *allow, size_t n, char *err,
		     size_t errlen);
/* Detaches and unpins; nothing attached, or no such cgroup (gone with its
 * attachment), is not an error. */
int us_egress_detach(const char *cgroup, char *err, size_t errlen);

/* What the guard did, summed over CPUs since it was attached; all 0 when
 * the cgroup has none. */
struct us_egress_counts {
	uint64_t allowed;       /* to a listed destination */
	uint64_t loopback;      /* to loopback: allowed */
	uint64_t denied;        /* refused with EPERM */
};
int us_egress_counts(const char *cgroup, struct us_egress_counts *out, char *err,
		     size_t errlen);

#endif
