/* Run-queue latency and on-CPU time per workload cgroup (cgroup v2 id).
 *
 * Owns: the sched_wakeup / sched_wakeup_new / sched_switch programs (tp_btf,
 * with raw_tp twins that user space autoloads instead when tp_btf is not
 * available) and their maps.
 *
 * - run-queue latency: a task of a tracked cgroup gets a timestamp when it is
 *   woken, created, or switched out while still TASK_RUNNING (preempted or
 *   yielding); at its switch-in the wait is recorded under the cgroup of that
 *   *next* task, metric US_SCHED_RUNQ_LAT.
 * - on-CPU time: each CPU remembers when its current task was switched in; at
 *   switch-out the slice is recorded under the cgroup of the task leaving the
 *   CPU, metric US_SCHED_ONCPU (the histogram sum is the on-CPU time).
 *
 * Only cgroups in tracked_cgroups are measured (or all, with track_all), so
 * the per-task state is bounded by the runnable tasks of tracked workloads.
 * In tracked mode the program never allocates histogram keys: user space
 * inserts them at track time, which keeps a cgroup that is being untracked
 * from being resurrected by an in-flight program. */
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>

#include "sched.h"
#include "hist.bpf.h"
#include "core_fixes.bpf.h"

#define TASK_RUNNING 0

/* measure every cgroup (tests, --once); histogram keys are created here */
const volatile bool track_all = false;

/* cgroup id -> 1, maintained by user space */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, US_SCHED_MAX_CGROUPS);
	__type(key, __u64);
	__type(value, __u8);
} tracked_cgroups SEC(".maps");

/* tid -> ns when it became runnable; only tasks of tracked cgroups */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, US_SCHED_MAX_RUNNABLE);
	__type(key, __u32);
	__type(value, __u64);
} wakeup_ts SEC(".maps");

/* {cgroup, metric} -> histogram, per CPU, preallocated: max_entries x
 * possible CPUs x 15 KiB, sized by user space from the number of cgroups it
 * will track. Not BPF_F_NO_PREALLOC: that allocator serves per-CPU values
 * from caches refilled with GFP_NOWAIT, which for 15 KiB per CPU fails with
 * -ENOMEM often enough (measured on 6.18, from user space and from the
 * scheduler tracepoints alike) to make tracking unreliable. Preallocated
 * elements come from a freelist, so an insert fails only when the map is
 * full. In tracked mode user space inserts the keys and programs only look
 * them up; in track_all mode the programs insert them. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, US_SCHED_METRIC_NR * US_SCHED_MAX_CGROUPS);
	__type(key, struct us_sched_key);
	__type(value, struct us_bpf_hist);
} hists SEC(".maps");

struct oncpu {
	__u64 ts;	/* switch-in time of the current task, 0 = unknown */
	__u32 pid;	/* its tid */
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct oncpu);
} oncpu_start SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, US_SCHED_CNT_NR);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

/* template for new histogram keys (track_all), never written */
static struct us_bpf_hist zero_hist;

static __always_inline void count_failure(__u32 slot)
{
	__u64 *c = bpf_map_lookup_elem(&counters, &slot);

	if (c)
		(*c)++;
}

static __always_inline bool cgroup_tracked(__u64 cgid)
{
	if (track_all)
		return true;
	return bpf_map_lookup_elem(&tracked_cgroups, &cgid) != NULL;
}

static __always_inline void record(__u64 cgid, __u32 metric, __u64 value)
{
	struct us_sched_key key = { .cgroup_id = cgid, .metric = metric };
	struct us_bpf_hist *h;

	if (track_all) {
		h = us_map_lookup_or_try_init(&hists, &key, &zero_hist);
		if (!h) {
			count_failure(US_SCHED_CNT_HIST_FULL);
			return;
		}
	} else {
		h = bpf_map_lookup_elem(&hists, &key);
		if (!h) {
			count_failure(US_SCHED_CNT_HIST_MISSING);
			return;
		}
	}
	us_hist_bpf_record(h, value);
}

/* BPF_NOEXIST at wakeup: a task already waiting (preempted, then sent a
 * wakeup while on the run queue) keeps its earlier stamp. BPF_ANY at
 * switch-out: whatever stamp a task that was running holds is stale. */
static __always_inline void mark_runnable(__u32 pid, __u64 now, __u64 flags)
{
	long err = bpf_map_update_elem(&wakeup_ts, &pid, &now, flags);

	if (err && err != -17 /* -EEXIST */)
		count_failure(US_SCHED_CNT_START_FULL);
}

static __always_inline int handle_wakeup(struct task_struct *p)
{
	__u32 pid = BPF_CORE_READ(p, pid);

	if (!pid || !cgroup_tracked(us_task_cgroup2_id(p)))
		return 0;
	mark_runnable(pid, bpf_ktime_get_ns(), BPF_NOEXIST);
	return 0;
}

static __always_inline int handle_switch(bool preempt, struct task_struct *prev,
					 struct task_struct *next)
{
	__u32 prev_pid = BPF_CORE_READ(prev, pid);
	__u32 next_pid = BPF_CORE_READ(next, pid);
	__u64 now = bpf_ktime_get_ns();
	__u32 zero = 0;
	struct oncpu *cur;
	__u64 *tsp, ts;

	/* prev leaves the CPU: close its slice, and if it stays runnable its
	 * run-queue wait starts now. pid 0 is the idle task of each CPU. */
	if (prev_pid) {
		__u64 cgid = us_task_cgroup2_id(prev);

		if (cgroup_tracked(cgid)) {
			cur = bpf_map_lookup_elem(&oncpu_start, &zero);
			if (cur && cur->pid == prev_pid && cur->ts && now > cur->ts)
				record(cgid, US_SCHED_ONCPU, now - cur->ts);
			if (preempt || us_task_state(prev) == TASK_RUNNING)
				mark_runnable(prev_pid, now, BPF_ANY);
			else
				/* going to sleep or exiting: a stale stamp from
				 * a wakeup that raced with it must not survive */
				bpf_map_delete_elem(&wakeup_ts, &prev_pid);
		}
	}

	/* next enters the CPU */
	cur = bpf_map_lookup_elem(&oncpu_start, &zero);
	if (cur) {
		cur->ts = now;
		cur->pid = next_pid;
	}
	if (!next_pid)
		return 0;
	tsp = bpf_map_lookup_elem(&wakeup_ts, &next_pid);
	if (!tsp)
		return 0;
	/* read before delete: the element may be reused after deletion */
	ts = *tsp;

	bpf_map_delete_elem(&wakeup_ts, &next_pid);
	if (now > ts) {
		__u64 cgid = us_task_cgroup2_id(next);

		if (cgroup_tracked(cgid))
			record(cgid, US_SCHED_RUNQ_LAT, now - ts);
	}
	return 0;
}

SEC("tp_btf/sched_wakeup")
int BPF_PROG(sched_wakeup_btf, struct task_struct *p)
{
	return handle_wakeup(p);
}

SEC("tp_btf/sched_wakeup_new")
int BPF_PROG(sched_wakeup_new_btf, struct task_struct *p)
{
	return handle_wakeup(p);
}

/* the fourth argument (prev_state, v5.18+) is not used so that the same
 * program loads on older kernels; us_task_state() reads the state instead */
SEC("tp_btf/sched_switch")
int BPF_PROG(sched_switch_btf, bool preempt, struct task_struct *prev,
	     struct task_struct *next)
{
	return handle_switch(preempt, prev, next);
}

SEC("raw_tp/sched_wakeup")
int BPF_PROG(sched_wakeup_raw, struct task_struct *p)
{
	return handle_wakeup(p);
}

SEC("raw_tp/sched_wakeup_new")
int BPF_PROG(sched_wakeup_new_raw, struct task_struct *p)
{
	return handle_wakeup(p);
}

SEC("raw_tp/sched_switch")
int BPF_PROG(sched_switch_raw, bool preempt, struct task_struct *prev,
	     struct task_struct *next)
{
	return handle_switch(preempt, prev, next);
}

char LICENSE[] SEC("license") = "GPL";
