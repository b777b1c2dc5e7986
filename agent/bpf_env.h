/* The host environment BPF collectors need: tracefs and bpffs mounted,
 * RLIMIT_MEMLOCK raised for kernels that still charge BPF memory to it,
 * libbpf's log routed to stderr at debug only, and the cgroup v2 hierarchy
 * (hybrid /sys/fs/cgroup/unified or v2-only /sys/fs/cgroup) with the ids BPF
 * uses for a cgroup. Functions return 0 or a negative errno; on failure they
 * write a reason naming the path and the cause into err. */
#ifndef US_BPF_ENV_H
#define US_BPF_ENV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define US_BPF_ENV_TRACEFS "/sys/kernel/tracing"
#define US_BPF_ENV_BPFFS "/sys/fs/bpf"

/* Mount tracefs at /sys/kernel/tracing unless a tracefs is already there. */
int us_bpf_env_mount_tracefs(char *err, size_t errlen);
/* Mount bpffs at /sys/fs/bpf unless a bpffs is already there. */
int us_bpf_env_mount_bpffs(char *err, size_t errlen);
/* Raise RLIMIT_MEMLOCK to infinity, unless it already is or the kernel
 * charges BPF memory to the memory cgroup instead (v5.11+, probed). */
int us_bpf_env_bump_memlock(char *err, size_t errlen);
/* libbpf messages go to stderr when debug is set, nowhere otherwise. */
void us_bpf_env_set_libbpf_debug(bool debug);
/* Route libbpf's log, then mount tracefs and bpffs and raise the memlock
 * limit; stops at the first failure. */
int us_bpf_env_prepare(bool debug, char *err, size_t errlen);

/* True when the running kernel exposes its BTF (/sys/kernel/btf/vmlinux),
 * which CO-RE relocation and tp_btf programs need. */
bool us_bpf_env_has_kernel_btf(void);

/* Mount point of the cgroup v2 hierarchy: /sys/fs/cgroup when it is cgroup2
 * (v2-only host), /sys/fs/cgroup/unified when that is cgroup2 (hybrid host),
 * else the first cgroup2 mount in /proc/self/mountinfo. -ENOENT if none. */
int us_bpf_env_cgroup2_root(char *buf, size_t buflen, char *err, size_t errlen);
/* cgroup v2 id of the cgroup directory at path (what bpf_get_current_cgroup_id()
 * returns for its tasks): the kernfs file handle, or the inode number when
 * file handles are unsupported. -EINVAL if path is not on a cgroup2 mount. */
int us_bpf_env_cgroup_id(const char *path, uint64_t *id, char *err, size_t errlen);

#endif
