/* Types shared by bpf/sched.bpf.c and agent/sched_collector.c: the histogram
 * map key, the metric ids and the per-CPU counter slots. The includer provides
 * __u32/__u64 (vmlinux.h in BPF, <linux/types.h> in user space).
 * The histogram map value is struct us_bpf_hist (bpf/hist.bpf.h), whose layout
 * is that of struct us_hist (lib/hist.h). */
#ifndef US_BPF_SCHED_H
#define US_BPF_SCHED_H

/* Default map sizes; user space may change them before load. */
#define US_SCHED_MAX_CGROUPS 64	/* cgroups measured at once */
#define US_SCHED_MAX_RUNNABLE 10240	/* tasks of tracked cgroups waiting to run */

enum us_sched_metric {
	/* ns from wakeup (or preemption while runnable) to switch-in,
	 * attributed to the cgroup of the task switched in */
	US_SCHED_RUNQ_LAT = 0,
	/* ns of each on-CPU slice, recorded at switch-out to the cgroup of
	 * the task switched out; the histogram sum is the on-CPU time */
	US_SCHED_ONCPU = 1,
	US_SCHED_METRIC_NR = 2,
};

struct us_sched_key {
	__u64 cgroup_id;	/* cgroup v2 id (kernfs node id of the cgroup dir) */
	__u32 metric;		/* enum us_sched_metric */
	__u32 pad;		/* always 0: the key is hashed bytewise */
};

/* Slots of the per-CPU `counters` array: every failed map operation. */
enum us_sched_counter {
	US_SCHED_CNT_START_FULL = 0,	/* wakeup_ts update failed (map full) */
	US_SCHED_CNT_HIST_FULL = 1,	/* hists insert failed (map full), track_all mode */
	US_SCHED_CNT_HIST_MISSING = 2,	/* tracked cgroup without hists key (track/untrack race) */
	US_SCHED_CNT_STAMP_REFUSED = 3,	/* task storage refused a stamp: not a full map but
					 * the helper's per-CPU recursion guard (held by a
					 * task preempted while freeing its storage at exit)
					 * or an atomic allocation failure */
	US_SCHED_CNT_NR = 4,
};

#endif
