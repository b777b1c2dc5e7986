/* What coordinator/steer.c and coordinator/egress.c share to keep a BPF
 * attachment of a cgroup pinned in bpffs (one directory per cgroup id
 * under a root such as /sys/fs/bpf/understudy/steer): the cgroup's id, the
 * root made (bpffs mounted if missing) and locked, detaching a pinned
 * link, and summing a pinned per-CPU counter array. `what` starts every
 * message ("steer", "egress"). Every function returns 0 or -1 with a
 * message in err, unless it says otherwise. */
#ifndef US_BPF_PIN_H
#define US_BPF_PIN_H

#include <stddef.h>
#include <stdint.h>

#define US_BPFFS "/sys/fs/bpf"

/* The cgroup id of a cgroup v2 directory (on 64-bit kernels the kernfs
 * node id is the directory's inode number). On failure errno is the
 * stat's (ENOENT: no such cgroup). */
int us_pin_cgroup_id(const char *what, const char *cgroup, unsigned long long *id, char *err,
		     size_t errlen);
/* bpffs at US_BPFFS (mounted if missing), US_BPFFS/understudy and root. */
int us_pin_root_prepare(const char *what, const char *root, char *err, size_t errlen);
/* An fd holding the exclusive flock on root; -2 when root does not exist
 * (nothing was ever pinned), -1 on error. Closing the fd unlocks. */
int us_pin_root_lock(const char *what, const char *root, char *err, size_t errlen);
/* fd of the object (a map) pinned at path; -2 when nothing is pinned
 * there, -1 on error. */
int us_pin_open(const char *what, const char *path, char *err, size_t errlen);
/* Detaches the link pinned at path, if any (unpinning alone would detach
 * only once the bpffs inode is freed, after an RCU grace period). */
int us_pin_detach_link(const char *what, const char *path, char *err, size_t errlen);
/* totals[i] = slot i of the per-CPU u64 array pinned at path, summed over
 * CPUs, for i < n; all 0 when nothing is pinned there. */
int us_pin_sum_counters(const char *what, const char *path, uint64_t *const *totals,
			uint32_t n, char *err, size_t errlen);

#endif
