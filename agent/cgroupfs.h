/* Per-workload figures read from cgroupfs: CPU usage and throttling, memory,
 * OOM kills and pressure (PSI), from cgroup v2 files where they exist and
 * from the cgroup v1 controllers of the same processes otherwise (hybrid
 * hosts such as /sys/fs/cgroup/unified + /sys/fs/cgroup/{cpu,cpuacct,memory}).
 *
 * A workload is named by its cgroup v2 directory. Its v1 cgroups are found
 * through a process: the first pid in <v2>/cgroup.procs, its
 * /proc/PID/cgroup line for the controller, joined to that controller's v1
 * mount point from /proc/self/mountinfo. They are kept while that pid stays
 * the first in cgroup.procs (checked each interval a v1 file is needed) and
 * the files read, and looked up again otherwise, so a restarted workload is
 * followed. The mountinfo parse is shared and redone when a lookup through
 * it fails.
 *
 * Counters (cumulative in the kernel) are reported as the increase since the
 * previous read. The first read of a counter, a read after it went backwards
 * (the cgroup was recreated) and a read after its source changed (v2 <-> v1)
 * report nothing for it and only record the baseline: an increase against a
 * guessed zero would count the workload's whole past into one interval.
 * Gauges are reported as read. A figure whose file is missing or unreadable
 * is left out of that interval alone; why is logged once per workload and
 * figure (with the path), and again only after it was back in between.
 *
 * Not thread-safe: one owner per struct us_cgroupfs. Parsers return 0 or a
 * negative errno: -ENOENT for a missing key, -EINVAL for a malformed value. */
#ifndef US_CGROUPFS_H
#define US_CGROUPFS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent_config.h"

enum us_cg_figure {
	/* counters: increase over the interval */
	US_CG_CPU_USAGE,
	US_CG_CPU_USER,
	US_CG_CPU_SYSTEM,
	US_CG_CPU_PERIODS,
	US_CG_CPU_THROTTLED_PERIODS,
	US_CG_CPU_THROTTLED,
	US_CG_OOM_KILLS,
	US_CG_PSI_CPU_SOME,
	US_CG_PSI_MEMORY_SOME,
	US_CG_PSI_IO_SOME,
	/* gauges: value when read */
	US_CG_MEMORY_CURRENT,
	US_CG_MEMORY_PEAK,
	US_CG_MEMORY_ANON,
	US_CG_MEMORY_FILE,
	US_CG_NR
};

enum us_cg_source { US_CG_NONE = 0, US_CG_V2 = 2, US_CG_V1 = 1 };

/* the v1 controllers figures come from */
enum us_cg_v1 { US_CG_V1_CPU, US_CG_V1_CPUACCT, US_CG_V1_MEMORY, US_CG_V1_NR };

struct us_cgroupfs_counter {
	uint64_t prev;
	enum us_cg_source source;	/* of prev; US_CG_NONE: no baseline */
};

struct us_cgroupfs {
	char v2dir[US_PATH_MAX];
	struct us_cgroupfs_counter ctr[US_CG_NR];
	uint32_t logged;		/* bit per figure: its absence was logged */
	/* v1 directories resolved through v1_pid (the first pid in
	 * cgroup.procs then), kept while that stays the first pid and the
	 * files read; v1_ok: bit per controller, v1dir valid */
	long v1_pid;
	uint32_t v1_ok;
	char v1dir[US_CG_V1_NR][US_PATH_MAX];
};

struct us_cgroupfs_figures {
	enum us_cg_source source[US_CG_NR];	/* US_CG_NONE: not reported */
	uint64_t value[US_CG_NR];		/* in the figure's unit */
};

/* name ("cpu_usage"), unit ("ns", "bytes", "1") and kind of a figure */
const char *us_cgroupfs_metric(enum us_cg_figure f);
const char *us_cgroupfs_unit(enum us_cg_figure f);
bool us_cgroupfs_is_counter(enum us_cg_figure f);

/* Forget every baseline and start following v2dir. */
void us_cgroupfs_init(struct us_cgroupfs *c, const char *v2dir);
/* Read every figure; absent ones are logged once under the workload name. */
void us_cgroupfs_read(struct us_cgroupfs *c, const char *workload,
		      struct us_cgroupfs_figures *out);

/* v1 directory of a controller for the processes of a v2 cgroup; err names
 * the path and the cause. */
int us_cgroupfs_v1_dir(const char *v2dir, enum us_cg_v1 ctl, char *out, size_t outlen,
		       char *err, size_t errlen);

/* --- parsers, on file text (NUL-terminated) --- */
/* a file holding one number ("123\n"): memory.current, cpuacct.usage */
int us_cgroupfs_parse_single(const char *text, uint64_t *out);
/* "key value" lines: cpu.stat, memory.stat, memory.events, memory.oom_control */
int us_cgroupfs_parse_keyed(const char *text, const char *key, uint64_t *out);
/* total= of the "some" line of a PSI file (cpu.pressure ...), in us */
int us_cgroupfs_parse_psi_some_total(const char *text, uint64_t *out);
/* the path of a v1 controller in /proc/PID/cgroup text */
int us_cgroupfs_parse_proc_cgroup(const char *text, const char *controller,
				  char *out, size_t outlen);
/* mount point and root of the v1 hierarchy holding controller, from
 * /proc/self/mountinfo text */
int us_cgroupfs_parse_mountinfo(const char *text, const char *controller,
				char *mnt, size_t mntlen, char *root, size_t rootlen);

#endif
