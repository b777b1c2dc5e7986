/* Owns the agent's capability drop: once the always-on collectors are
 * loaded and attached, every capability outside the run-time set leaves the
 * effective, permitted and bounding sets, ambient and inheritable ones go
 * too, and no_new_privs is set, so a compromised agent cannot regain them,
 * nor can anything it executes (systemctl, for unit resolution).
 *
 * The run-time set is CAP_BPF, CAP_PERFMON, CAP_DAC_READ_SEARCH and
 * CAP_SYS_PTRACE:
 *   - the capture programs stay loaded lazily (the first mirrored or
 *     `requests: true` workload, after a reload or a StartMirror command,
 *     loads them), since a command may ask for capture the config never
 *     named; loading and attaching them to the syscall tracepoints and
 *     reading their ring buffer needs CAP_BPF and CAP_PERFMON;
 *   - the capture sweep stat()s /proc/PID/fd/FD of the workload's processes,
 *     which for another user's processes needs CAP_DAC_READ_SEARCH and
 *     CAP_SYS_PTRACE.
 * CAP_SYS_ADMIN goes: it is needed at start to mount tracefs/bpffs and, with
 * libbpf 1.1, to list kernel BTF objects for the CO-RE relocations of the
 * sched collector, both done before the drop; the capture programs load
 * without it (checked on Debian 12, libbpf 1.1, by `understudy-agent
 * --probe` under `capsh --drop=cap_sys_admin`: the capture line stays OK,
 * the sched line fails; tests/e2e/e2e_agent_privs.sh loads capture after
 * the drop). CAP_NET_ADMIN goes: the agent attaches no tc or cgroup
 * programs. CAP_SYS_RESOURCE goes: RLIMIT_MEMLOCK is raised, where the
 * kernel still charges BPF maps to it, before the drop (main.c), and so are
 * BPF run-time statistics turned on (bpf_enable_stats needs CAP_SYS_ADMIN).
 *
 * Capabilities are per thread: the drop must run before the agent starts
 * any thread (the ZeroMQ I/O threads, the mirror thread), which then
 * inherit the reduced sets. Dropping from the bounding set needs
 * CAP_SETPCAP; root has it, a systemd unit with a narrower bounding set may
 * not, and then only effective and permitted are reduced (the unit's
 * bounding set already limits the rest). */
#include "privs.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/capability.h>

#ifndef CAP_PERFMON
#define CAP_PERFMON 38
#endif
#ifndef CAP_BPF
#define CAP_BPF 39
#endif
#ifndef PR_CAP_AMBIENT
#define PR_CAP_AMBIENT 47
#define PR_CAP_AMBIENT_CLEAR_ALL 4
#endif

#define BIT(cap) (UINT64_C(1) << (cap))

static const char *const cap_names[] = {
	"cap_chown", "cap_dac_override", "cap_dac_read_search", "cap_fowner", "cap_fsetid",
	"cap_kill", "cap_setgid", "cap_setuid", "cap_setpcap", "cap_linux_immutable",
	"cap_net_bind_service", "cap_net_broadcast", "cap_net_admin", "cap_net_raw",
	"cap_ipc_lock", "cap_ipc_owner", "cap_sys_module", "cap_sys_rawio", "cap_sys_chroot",
	"cap_sys_ptrace", "cap_sys_pacct", "cap_sys_admin", "cap_sys_boot", "cap_sys_nice",
	"cap_sys_resource", "cap_sys_time", "cap_sys_tty_config", "cap_mknod", "cap_lease",
	"cap_audit_write", "cap_audit_control", "cap_setfcap", "cap_mac_override",
	"cap_mac_admin", "cap_syslog", "cap_wake_alarm", "cap_block_suspend", "cap_audit_read",
	"cap_perfmon", "cap_bpf", "cap_checkpoint_restore",
};

uint64_t us_privs_runtime_set(void)
{
	return BIT(CAP_BPF) | BIT(CAP_PERFMON) | BIT(CAP_DAC_READ_SEARCH) | BIT(CAP_SYS_PTRACE);
}

void us_privs_plan(uint64_t effective, uint64_t permitted, uint64_t bounding,
		   struct us_privs_plan *p)
{
	uint64_t keep = us_privs_runtime_set();

	p->keep = permitted & keep;
	p->drop = (permitted | effective) & ~keep;
	p->bounding_kept = !(effective & BIT(CAP_SETPCAP));
	p->drop_bounding = p->bounding_kept ? 0 : bounding & ~keep;
}

void us_privs_names(uint64_t set, char *buf, size_t len)
{
	size_t n = 0;

	buf[0] = '\0';
	for (unsigned cap = 0; cap < 64 && n < len; cap++) {
		if (!(set & BIT(cap)))
			continue;
		if (cap < sizeof(cap_names) / sizeof(cap_names[0]))
			n += (size_t)snprintf(buf + n, len - n, "%s%s", n ? "," : "", cap_names[cap]);
		else
			n += (size_t)snprintf(buf + n, len - n, "%scap_%u", n ? "," : "", cap);
	}
	if (!buf[0])
		snprintf(buf, len, "none");
}

static int capget_sets(struct __user_cap_data_struct data[2])
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };

	memset(data, 0, 2 * sizeof(data[0]));
	return syscall(SYS_capget, &hdr, data) ? -errno : 0;
}

int us_privs_current(uint64_t *effective, uint64_t *permitted, uint64_t *bounding)
{
	struct __user_cap_data_struct data[2];
	int rc = capget_sets(data);

	if (rc)
		return rc;
	*effective = data[0].effective | (uint64_t)data[1].effective << 32;
	*permitted = data[0].permitted | (uint64_t)data[1].permitted << 32;
	*bounding = 0;
	/* the kernel answers EINVAL past its last capability */
	for (unsigned cap = 0; cap < 64; cap++) {
		int r = prctl(PR_CAPBSET_READ, cap, 0, 0, 0);

		if (r < 0)
			break;
		if (r == 1)
			*bounding |= BIT(cap);
	}
	return 0;
}

int us_privs_drop(struct us_privs_plan *done, char *err, size_t errlen)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[2];
	uint64_t eff, prm, bnd, inh;
	int rc;

	memset(done, 0, sizeof(*done));
	rc = us_privs_current(&eff, &prm, &bnd);
	if (rc) {
		snprintf(err, errlen, "capget: %s", strerror(-rc));
		goto cleanup;
	}
	us_privs_plan(eff, prm, bnd, done);
	/* first, while CAP_SETPCAP is still effective */
	for (unsigned cap = 0; cap < 64; cap++) {
		if (!(done->drop_bounding & BIT(cap)) || prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) == 0)
			continue;
		rc = -errno;
		snprintf(err, errlen, "dropping %s from the bounding set: %s",
			 cap < sizeof(cap_names) / sizeof(cap_names[0]) ? cap_names[cap] : "?",
			 strerror(-rc));
		goto cleanup;
	}
	/* kernels before 4.3 have no ambient set: nothing to clear */
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) && errno != EINVAL) {
		rc = -errno;
		snprintf(err, errlen, "clearing the ambient set: %s", strerror(-rc));
		goto cleanup;
	}
	rc = capget_sets(data);
	if (rc) {
		snprintf(err, errlen, "capget: %s", strerror(-rc));
		goto cleanup;
	}
	inh = (data[0].inheritable | (uint64_t)data[1].inheritable << 32) & done->keep;
	for (int i = 0; i < 2; i++) {
		data[i].effective = data[i].permitted = (uint32_t)(done->keep >> (32 * i));
		data[i].inheritable = (uint32_t)(inh >> (32 * i));
	}
	if (syscall(SYS_capset, &hdr, data)) {
		rc = -errno;
		snprintf(err, errlen, "capset: %s", strerror(-rc));
		goto cleanup;
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)) {
		rc = -errno;
		snprintf(err, errlen, "prctl(PR_SET_NO_NEW_PRIVS): %s", strerror(-rc));
		goto cleanup;
	}
	rc = 0;
cleanup:
	return rc;
}

const char *us_privs_sets_named(const struct us_privs_plan *p)
{
	return p->bounding_kept ?
	       "effective and permitted sets (not the bounding set: CAP_SETPCAP not held)" :
	       "effective, permitted and bounding sets";
}

void us_privs_describe(const struct us_privs_plan *p, char *buf, size_t len)
{
	char keep[256], drop[1024];

	us_privs_names(p->keep, keep, sizeof(keep));
	us_privs_names(p->drop | p->drop_bounding, drop, sizeof(drop));
	snprintf(buf, len, "capabilities: kept %s; dropped %s from the %s; no_new_privs set",
		 keep, drop, us_privs_sets_named(p));
}
