/* Run-queue latency and on-CPU time per cgroup v2, from bpf/sched.bpf.c.
 *
 * us_sched_open() loads and attaches the programs (tp_btf, or their raw_tp
 * twins when tp_btf does not load); us_sched_track() starts measuring a
 * cgroup; us_sched_drain() hands every measured cgroup's figures since the
 * previous drain (or since it was tracked) to a visitor. Call
 * us_bpf_env_prepare() first. Not thread-safe: one owner per collector.
 * Functions return 0 or a negative errno. */
#ifndef US_SCHED_COLLECTOR_H
#define US_SCHED_COLLECTOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hist.h"

struct us_sched;

struct us_sched_opts {
	bool track_all;		/* measure every cgroup, not only tracked ones (tests, --once) */
	bool force_raw_tp;	/* do not try tp_btf (tests of the fallback) */
	/* cgroups measured at once; 0 = 64. The histogram map is preallocated:
	 * 2 x 15 KiB per cgroup per possible CPU (64 cgroups, 8 CPUs: 15 MiB) */
	uint32_t max_cgroups;
	uint32_t max_runnable;	/* runnable tasks of tracked cgroups; 0 = 10240 */
};

struct us_sched_cgroup_stats {
	uint64_t cgroup_id;
	bool tracked;			/* false: seen only because of track_all */
	uint64_t oncpu_ns;		/* on-CPU time, = oncpu_slice_ns.sum */
	struct us_hist runq_latency_ns;	/* wakeup or preemption -> switch-in */
	struct us_hist oncpu_slice_ns;	/* length of each on-CPU slice */
};

/* Failed map operations in the BPF programs, cumulative since open. */
struct us_sched_counters {
	uint64_t start_map_full;	/* a runnable task's timestamp was dropped */
	uint64_t hist_map_full;		/* track_all: a cgroup's histogram could not be created */
	uint64_t hist_key_missing;	/* sample for a cgroup being (un)tracked, dropped */
	uint64_t stamp_refused;		/* task storage busy or out of memory: one wait unmeasured */
};

/* Called once per measured cgroup; st is valid only during the call.
 * A non-zero return stops the drain and is returned by us_sched_drain(). */
typedef int (*us_sched_visit_fn)(void *ctx, const struct us_sched_cgroup_stats *st);

int us_sched_open(const struct us_sched_opts *opts, struct us_sched **out,
		  char *err, size_t errlen);
/* "tp_btf" or "raw_tp" */
const char *us_sched_attach_mode(const struct us_sched *s);
/* why tp_btf is not in use, "" when it is */
const char *us_sched_fallback_reason(const struct us_sched *s);
/* -E2BIG when max_cgroups are already tracked */
int us_sched_track(struct us_sched *s, uint64_t cgroup_id);
/* figures since the last drain are discarded; drain first to keep them */
int us_sched_untrack(struct us_sched *s, uint64_t cgroup_id);
int us_sched_drain(struct us_sched *s, us_sched_visit_fn fn, void *ctx);
int us_sched_counters(struct us_sched *s, struct us_sched_counters *out);
/* Loaded programs' fds and names (valid while s lives), up to max;
 * returns how many, for run-count/run-time stats (self_telemetry.c). */
int us_sched_prog_fds(const struct us_sched *s, int *fds, const char **names, int max);
void us_sched_destroy(struct us_sched *s);

#endif
