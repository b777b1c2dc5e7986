/* Owns the --probe report: one check per kernel feature the agent (now or in
 * the collectors the design names) relies on, each printed as
 * "STATUS  feature  detail[; fix: what to do]". Checks are independent and
 * keep their findings in a struct probe passed along, not in globals. */
#include "probe.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <bpf/libbpf.h>
#include <linux/capability.h>

#include "bpf_env.h"
#include "capture.h"
#include "privs.h"
#include "sched_collector.h"

#ifndef TRACEFS_MAGIC
#define TRACEFS_MAGIC 0x74726163
#endif
#ifndef BPF_FS_MAGIC
#define BPF_FS_MAGIC 0xcafe4a11
#endif
#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif
#ifndef CAP_PERFMON
#define CAP_PERFMON 38
#endif
#ifndef CAP_BPF
#define CAP_BPF 39
#endif

#define NEW_KERNEL "a kernel with CONFIG_BPF_SYSCALL=y, 5.8 or later"

enum probe_status { PROBE_OK, PROBE_DEGRADED, PROBE_MISSING };

struct probe {
	FILE *out;
	/* names of the failed checks the agent cannot run without */
	char blockers[512];
};

static void report(struct probe *p, enum probe_status st, bool required, const char *feature,
		   const char *detail, const char *fix)
{
	static const char *const names[] = { "OK", "DEGRADED", "MISSING" };

	fprintf(p->out, "%-8s  %-38s  %s%s%s\n", names[st], feature, detail,
		fix && *fix ? "; fix: " : "", fix ? fix : "");
	if (st == PROBE_MISSING && required) {
		size_t n = strlen(p->blockers);

		snprintf(p->blockers + n, sizeof(p->blockers) - n, "%s%s", n ? ", " : "", feature);
	}
}

static int fs_type_is(const char *path, unsigned long magic)
{
	struct statfs st;

	if (statfs(path, &st))
		return -errno;
	return (unsigned long)st.f_type == magic;
}

/* Effective capability bit, via capget: the agent needs no libcap for this. */
static bool has_cap(int cap)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[2];

	memset(data, 0, sizeof(data));
	if (syscall(SYS_capget, &hdr, data))
		return false;
	return data[cap / 32].effective & (1u << (cap % 32));
}

static void check_privileges(struct probe *p)
{
	bool bpf = has_cap(CAP_BPF), perfmon = has_cap(CAP_PERFMON);
	bool admin = has_cap(CAP_SYS_ADMIN);

	if (geteuid() == 0 && (admin || (bpf && perfmon)))
		report(p, PROBE_OK, true, "root / CAP_BPF+CAP_PERFMON", "running as root", NULL);
	else if (bpf && perfmon)
		report(p, PROBE_DEGRADED, true, "root / CAP_BPF+CAP_PERFMON",
		       "CAP_BPF and CAP_PERFMON but not root: mounting tracefs/bpffs needs "
		       "CAP_SYS_ADMIN", "mount them beforehand, or run as root");
	else
		report(p, PROBE_MISSING, true, "root / CAP_BPF+CAP_PERFMON",
		       "neither root nor CAP_BPF+CAP_PERFMON",
		       "run as root (or setcap cap_bpf,cap_perfmon,cap_sys_admin+ep)");
}

/* What the agent keeps after start (privs.c); informational, never a
 * blocker: a missing capability shows in the checks that need it. */
static void check_kept_capabilities(struct probe *p)
{
	struct us_privs_plan plan;
	uint64_t eff, prm, bnd;
	char kept[256], missing[256], detail[640];

	if (us_privs_current(&eff, &prm, &bnd) < 0) {
		report(p, PROBE_DEGRADED, false, "capabilities kept after start",
		       "capget failed", "nothing to do");
		return;
	}
	us_privs_plan(eff, prm, bnd, &plan);
	us_privs_names(plan.keep, kept, sizeof(kept));
	us_privs_names(us_privs_runtime_set() & ~plan.keep, missing, sizeof(missing));
	snprintf(detail, sizeof(detail), "%s%s%s; the rest dropped from the %s", kept,
		 strcmp(missing, "none") ? ", not held: " : "", strcmp(missing, "none") ? missing : "",
		 us_privs_sets_named(&plan));
	report(p, PROBE_OK, false, "capabilities kept after start", detail, NULL);
}

static void check_btf(struct probe *p)
{
	if (us_bpf_env_has_kernel_btf())
		report(p, PROBE_OK, false, "BTF (/sys/kernel/btf/vmlinux)", "present", NULL);
	else
		report(p, PROBE_DEGRADED, false, "BTF (/sys/kernel/btf/vmlinux)",
		       "kernel built without CONFIG_DEBUG_INFO_BTF: tp_btf unavailable, raw_tp "
		       "fallback used", "a kernel with CONFIG_DEBUG_INFO_BTF=y");
}

/* Mounts the filesystem when absent, as us_bpf_env_prepare() does at agent
 * start, so the report describes the host the agent will actually see. */
static void check_mount(struct probe *p, const char *feature, const char *path,
			unsigned long magic, int (*mount_fn)(char *, size_t), const char *fix)
{
	char err[512], detail[640];
	int is = fs_type_is(path, magic);

	if (is == 1) {
		report(p, PROBE_OK, true, feature, "mounted", NULL);
		return;
	}
	if (mount_fn(err, sizeof(err)) == 0) {
		snprintf(detail, sizeof(detail), "was not mounted; mounted it now at %s, as "
			 "the agent does at start", path);
		report(p, PROBE_OK, true, feature, detail, NULL);
		return;
	}
	report(p, PROBE_MISSING, true, feature, err, fix);
}

static int mount_tracefs(char *err, size_t errlen)
{
	return us_bpf_env_mount_tracefs(err, errlen);
}

static int mount_bpffs(char *err, size_t errlen)
{
	return us_bpf_env_mount_bpffs(err, errlen);
}

static void check_prog_type(struct probe *p, enum bpf_prog_type type, const char *feature,
			    bool required, const char *use, const char *fix)
{
	int rc = libbpf_probe_bpf_prog_type(type, NULL);
	char detail[256];

	if (rc == 1) {
		snprintf(detail, sizeof(detail), "loads (%s)", use);
		report(p, PROBE_OK, required, feature, detail, NULL);
		return;
	}
	snprintf(detail, sizeof(detail), "does not load (%s): %s", use,
		 rc < 0 ? strerror(-rc) : "kernel refuses the program type");
	report(p, required ? PROBE_MISSING : PROBE_DEGRADED, required, feature, detail, fix);
}

/* The real thing: load and attach the sched collector, as the agent would. */
static void check_sched_collector(struct probe *p)
{
	struct us_sched_opts opts = { .max_cgroups = 1, .max_runnable = 64 };
	struct us_sched *s = NULL;
	char err[512], detail[768];

	if (us_bpf_env_bump_memlock(err, sizeof(err)) < 0 ||
	    us_sched_open(&opts, &s, err, sizeof(err)) < 0) {
		report(p, PROBE_MISSING, true, "sched collector (bpf/sched.bpf.c)", err,
		       "see the BPF and tracepoint lines above");
		return;
	}
	if (strcmp(us_sched_attach_mode(s), "tp_btf") == 0) {
		report(p, PROBE_OK, true, "sched collector (bpf/sched.bpf.c)",
		       "loaded and attached (tp_btf)", NULL);
	} else {
		snprintf(detail, sizeof(detail), "loaded and attached with the raw_tp "
			 "fallback: %s", us_sched_fallback_reason(s));
		report(p, PROBE_DEGRADED, true, "sched collector (bpf/sched.bpf.c)", detail,
		       "a kernel with BTF gives typed tp_btf programs");
	}
	us_sched_destroy(s);
}

static void ignore_record(void *ctx, const struct us_cap_event *ev, const uint8_t *data)
{
}

/* The capture programs, loaded and attached as mirroring would; optional:
 * without them the agent measures but cannot mirror. */
static void check_capture(struct probe *p)
{
	const struct us_capture_opts o = { .ringbuf_bytes = 4096, .max_conns = 16 };
	struct us_capture *c = NULL;
	char err[512];

	if (us_capture_open(&o, ignore_record, NULL, &c, err, sizeof(err)) < 0) {
		report(p, PROBE_MISSING, false, "capture (bpf/capture.bpf.c)", err,
		       "mirroring needs syscall tracepoints, the ring buffer and bpf_loop "
		       "(a 5.17 or later kernel)");
		return;
	}
	report(p, PROBE_OK, false, "capture (bpf/capture.bpf.c)",
	       "loaded and attached (syscall tracepoints, ring buffer)", NULL);
	us_capture_destroy(c);
}

static void check_ringbuf(struct probe *p)
{
	int rc = libbpf_probe_bpf_map_type(BPF_MAP_TYPE_RINGBUF, NULL);

	if (rc == 1)
		report(p, PROBE_OK, false, "BPF ring buffer map", "available", NULL);
	else
		report(p, PROBE_MISSING, false, "BPF ring buffer map",
		       "unavailable: request capture will not work", "a 5.8 or later kernel");
}

struct tracepoint {
	const char *name;	/* category/event */
	bool required;
	const char *use;
};

static void check_tracepoints(struct probe *p)
{
	static const struct tracepoint tps[] = {
		{ "sched/sched_wakeup", true, "run-queue latency" },
		{ "sched/sched_wakeup_new", true, "run-queue latency" },
		{ "sched/sched_switch", true, "run-queue latency, on-CPU time" },
		{ "block/block_rq_insert", false, "block I/O attribution" },
		{ "block/block_rq_issue", false, "block I/O latency" },
		{ "block/block_rq_complete", false, "block I/O latency" },
		{ "tcp/tcp_probe", false, "TCP RTT" },
		{ "tcp/tcp_retransmit_skb", false, "TCP retransmits" },
		{ "sock/inet_sock_set_state", false, "connection lifetimes" },
		{ "syscalls/sys_enter_accept4", false, "request capture" },
		{ "syscalls/sys_exit_accept4", false, "request capture" },
		{ "syscalls/sys_enter_read", false, "request capture" },
		{ "syscalls/sys_exit_read", false, "request capture" },
		{ "syscalls/sys_enter_write", false, "request capture" },
		{ "syscalls/sys_exit_write", false, "request capture" },
		{ "syscalls/sys_enter_close", false, "request capture" },
		{ "syscalls/sys_exit_close", false, "request capture" },
	};
	char path[256], feature[64], detail[384];
	struct stat st;

	for (size_t i = 0; i < sizeof(tps) / sizeof(tps[0]); i++) {
		const struct tracepoint *t = &tps[i];
		bool syscalls = strncmp(t->name, "syscalls/", 9) == 0;

		snprintf(path, sizeof(path), "%s/events/%s", US_BPF_ENV_TRACEFS, t->name);
		snprintf(feature, sizeof(feature), "tracepoint %s", t->name);
		*strchr(feature, '/') = ':';
		if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
			snprintf(detail, sizeof(detail), "present (%s)", t->use);
			report(p, PROBE_OK, t->required, feature, detail, NULL);
			continue;
		}
		snprintf(detail, sizeof(detail), "%s absent (%s)", path, t->use);
		report(p, PROBE_MISSING, t->required, feature, detail,
		       syscalls ? "a kernel with CONFIG_FTRACE_SYSCALLS=y" :
		       "a kernel with this tracepoint (and tracefs mounted)");
	}
}

/* The agent attaches to tracepoints only; kprobes are reported for
 * completeness, never as a problem. */
static void check_kprobes(struct probe *p)
{
	char path[128];

	snprintf(path, sizeof(path), "%s/kprobe_events", US_BPF_ENV_TRACEFS);
	if (access(path, F_OK) == 0)
		report(p, PROBE_OK, false, "kprobes", "available; not used by the agent", NULL);
	else
		report(p, PROBE_MISSING, false, "kprobes",
		       "not used: the agent attaches only to tracepoints", "nothing to do");
}

static void check_cgroup(struct probe *p)
{
	char root[4096], err[512], detail[4200];

	if (fs_type_is("/sys/fs/cgroup", CGROUP2_SUPER_MAGIC) == 1) {
		report(p, PROBE_OK, true, "cgroup v2", "v2-only host (/sys/fs/cgroup)", NULL);
		return;
	}
	if (us_bpf_env_cgroup2_root(root, sizeof(root), err, sizeof(err)) < 0) {
		report(p, PROBE_MISSING, true, "cgroup v2", "cgroup v1 only: no cgroup2 mount",
		       "boot with systemd.unified_cgroup_hierarchy=1, or "
		       "mount -t cgroup2 none /sys/fs/cgroup/unified");
		return;
	}
	snprintf(detail, sizeof(detail), "hybrid host, unified hierarchy at %s: workload "
		 "cgroups must be given under it", root);
	report(p, PROBE_OK, true, "cgroup v2", detail, NULL);
}

static void check_psi(struct probe *p)
{
	static const char *const files[] = { "cpu", "memory", "io" };
	char path[64], buf[256], missing[64] = "";

	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		int fd;

		snprintf(path, sizeof(path), "/proc/pressure/%s", files[i]);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		/* with psi=0 on the command line the files exist but reads fail */
		if (fd < 0 || read(fd, buf, sizeof(buf)) <= 0) {
			size_t n = strlen(missing);

			snprintf(missing + n, sizeof(missing) - n, "%s%s", n ? "," : "", files[i]);
		}
		if (fd >= 0)
			close(fd);
	}
	if (!*missing)
		report(p, PROBE_OK, false, "PSI (/proc/pressure)", "cpu, memory, io readable", NULL);
	else
		report(p, PROBE_MISSING, false, "PSI (/proc/pressure)", missing,
		       "a kernel with CONFIG_PSI=y, booted without psi=0 (psi=1 if "
		       "CONFIG_PSI_DEFAULT_DISABLED)");
}

int us_probe_run(FILE *out)
{
	struct probe p = { .out = out };

	us_bpf_env_set_libbpf_debug(false);
	check_privileges(&p);
	check_kept_capabilities(&p);
	check_btf(&p);
	check_mount(&p, "tracefs", US_BPF_ENV_TRACEFS, TRACEFS_MAGIC, mount_tracefs,
		    "mount -t tracefs nodev " US_BPF_ENV_TRACEFS);
	check_mount(&p, "bpffs", US_BPF_ENV_BPFFS, BPF_FS_MAGIC, mount_bpffs,
		    "mount -t bpf bpf " US_BPF_ENV_BPFFS);
	check_prog_type(&p, BPF_PROG_TYPE_RAW_TRACEPOINT, "BPF raw_tp programs", true,
			"sched collector fallback", NEW_KERNEL);
	/* libbpf probes this type as fentry, which some kernels lack although
	 * tp_btf (the same type) works: the sched collector line says which */
	check_prog_type(&p, BPF_PROG_TYPE_TRACING, "BPF tracing programs (fentry)", false,
			"fentry/fexit are not used; tp_btf is checked by the sched collector line",
			"nothing to do");
	check_prog_type(&p, BPF_PROG_TYPE_SCHED_CLS, "BPF sched_cls programs", false,
			"traffic mirroring", NEW_KERNEL);
	check_prog_type(&p, BPF_PROG_TYPE_CGROUP_SOCK_ADDR, "BPF cgroup_sock_addr programs",
			false, "traffic shift", NEW_KERNEL);
	check_prog_type(&p, BPF_PROG_TYPE_SOCK_OPS, "BPF sock_ops programs", false,
			"TCP figures", NEW_KERNEL);
	check_ringbuf(&p);
	check_tracepoints(&p);
	check_sched_collector(&p);
	check_capture(&p);
	check_kprobes(&p);
	check_cgroup(&p);
	check_psi(&p);
	if (*p.blockers) {
		fprintf(out, "agent cannot run here: missing %s\n", p.blockers);
		return 1;
	}
	fprintf(out, "agent can run here\n");
	return 0;
}
