/* What every kernel test does to get test cgroups: a private mount
 * namespace, tracefs/bpffs/BTF checks, cgroup v2 directories named
 * PREFIX<pid>-<letter> under the v2 root (stale ones of killed runs
 * removed), moving a process in, and removal that waits for exiting tasks. */
#ifndef US_KCGROUP_H
#define US_KCGROUP_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define KCG_MAX 4

struct kcgroups {
	char skip_reason[PATH_MAX + 256];	/* non-empty: the tests must skip */
	char root[1024];
	char path[KCG_MAX][PATH_MAX];
	uint64_t id[KCG_MAX];
	bool made[KCG_MAX];
	int n;
};

/* Sets skip_reason instead of failing when the host cannot run the tests:
 * not root, no BTF, a missing tracepoint (NULL-terminated list, e.g.
 * "syscalls/sys_exit_read"), no cgroup v2. */
void kcg_setup(struct kcgroups *k, const char *prefix, int n, const char *const *tracepoints);
int kcg_teardown(struct kcgroups *k);
/* Moves pid (0: the caller) into cgroup i; 0 or -errno. */
int kcg_enter(const struct kcgroups *k, int i, pid_t pid);

#endif
