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
 * per-task state exists only for tasks of tracked workloads: in the
 * wakeup_ts hash while they wait to run, or (tp_btf with task storage) one
 * u64 of task local storage per task once stamped, freed with the task.
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
/* tp_btf programs keep the stamp in task local storage instead of the
 * wakeup_ts hash; set by user space when the kernel has
 * BPF_MAP_TYPE_TASK_STORAGE usable from tracing programs (v5.11, commits
 * 4cf1bc1f1045 and a10787e6d58c). The raw_tp twins always use the hash:
 * bpf_task_storage_get() takes a BTF task pointer, and raw_tp arguments
 * are untyped. */
const volatile bool use_task_storage = false;

/* cgroup id -> 1, maintained by user space */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, US_SCHED_MAX_CGROUPS);
	__type(key, __u64);
	__type(value, __u8);
} tracked_cgroups SEC(".maps");

/* tid -> ns when it became runnable; only tasks of tracked cgroups. Used by
 * the raw_tp programs, and by the tp_btf ones without task storage. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, US_SCHED_MAX_RUNNABLE);
	__type(key, __u32);
	__type(value, __u64);
} wakeup_ts SEC(".maps");

/* task -> ns when it became runnable, 0 = not waiting. Created on the first
 * stamp of a task of a tracked cgroup and freed with the task, so a stamp
 * is overwritten instead of deleted: a hash update + delete costs ~280 ns
 * per switch on the reference VM, a storage lookup a few ns. */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, __u64);
} task_stamp SEC(".maps");

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

/* `btf` is a compile-time constant after inlining: true in the tp_btf
 * programs, whose task pointers are BTF-typed, so fields are read with
 * plain (fault-checked) loads instead of one bpf_probe_read_kernel() call
 * per pointer hop, and task storage may be used (use_task_storage). */
static __always_inline __u32 task_pid(struct task_struct *t, bool btf)
{
	return btf ? t->pid : BPF_CORE_READ(t, pid);
}

static __always_inline __u64 task_cgroup2_id(struct task_struct *t, bool btf)
{
	return btf ? us_task_cgroup2_id_btf(t) : us_task_cgroup2_id(t);
}

/* Stamp a task of a tracked cgroup as runnable since now. At wakeup
 * (keep_older) a task already waiting (preempted, then sent a wakeup while
 * on the run queue) keeps its earlier stamp; at switch-out whatever stamp a
 * task that was running holds is stale and is replaced. */
static __always_inline void mark_runnable(struct task_struct *t, __u32 pid, __u64 now,
					  bool keep_older, bool btf)
{
	long err;

	if (btf && use_task_storage) {
		__u64 *ts = bpf_task_storage_get(&task_stamp, t, 0,
						 BPF_LOCAL_STORAGE_GET_F_CREATE);

		if (!ts)
			count_failure(US_SCHED_CNT_STAMP_REFUSED);
		else if (!keep_older || !*ts)
			*ts = now;
		return;
	}
	err = bpf_map_update_elem(&wakeup_ts, &pid, &now, keep_older ? BPF_NOEXIST : BPF_ANY);
	if (err && err != -17 /* -EEXIST */)
		count_failure(US_SCHED_CNT_START_FULL);
}

/* going to sleep or exiting: a stale stamp from a wakeup that raced with
 * it must not survive */
static __always_inline void clear_stamp(struct task_struct *t, __u32 pid, bool btf)
{
	if (btf && use_task_storage) {
		__u64 *ts = bpf_task_storage_get(&task_stamp, t, 0, 0);

		if (ts)
			*ts = 0;
		return;
	}
	bpf_map_delete_elem(&wakeup_ts, &pid);
}

/* the stamp of a task being switched in, consumed; 0 if it has none */
static __always_inline __u64 take_stamp(struct task_struct *t, __u32 pid, bool btf)
{
	__u64 *tsp, ts;

	if (btf && use_task_storage) {
		tsp = bpf_task_storage_get(&task_stamp, t, 0, 0);
		if (!tsp)
			return 0;
		ts = *tsp;
		if (ts)
			*tsp = 0;
		return ts;
	}
	tsp = bpf_map_lookup_elem(&wakeup_ts, &pid);
	if (!tsp)
		return 0;
	/* read before delete: the element may be reused after deletion */
	ts = *tsp;
	bpf_map_delete_elem(&wakeup_ts, &pid);
	return ts;
}

static __always_inline int handle_wakeup(struct task_struct *p, bool btf)
{
	__u32 pid = task_pid(p, btf);

	if (!pid || !cgroup_tracked(task_cgroup2_id(p, btf)))
		return 0;
	mark_runnable(p, pid, bpf_ktime_get_ns(), true, btf);
	return 0;
}

/* One clock read, one oncpu_start lookup and at most one tracked_cgroups
 * lookup per side (none for next when prev had the same cgroup) per run. */
static __always_inline int handle_switch(bool preempt, struct task_struct *prev,
					 struct task_struct *next, bool btf)
{
	__u32 prev_pid = task_pid(prev, btf);
	__u32 next_pid = task_pid(next, btf);
	__u64 now = bpf_ktime_get_ns();
	__u64 prev_cgid = 0, cgid, ts;
	bool prev_tracked = false;
	__u32 zero = 0;
	struct oncpu *cur;

	cur = bpf_map_lookup_elem(&oncpu_start, &zero);

	/* prev leaves the CPU: close its slice, and if it stays runnable its
	 * run-queue wait starts now. pid 0 is the idle task of each CPU. prev
	 * is current here, so without BTF one helper call gives its cgroup
	 * where reading it through the task would take four probe reads. */
	if (prev_pid) {
		prev_cgid = btf ? us_task_cgroup2_id_btf(prev) : bpf_get_current_cgroup_id();
		prev_tracked = cgroup_tracked(prev_cgid);
		if (prev_tracked) {
			if (cur && cur->pid == prev_pid && cur->ts && now > cur->ts)
				record(prev_cgid, US_SCHED_ONCPU, now - cur->ts);
			if (preempt || (btf ? us_task_state_btf(prev) : us_task_state(prev)) ==
					       TASK_RUNNING)
				mark_runnable(prev, prev_pid, now, false, btf);
			else
				clear_stamp(prev, prev_pid, btf);
		}
	}

	/* next enters the CPU */
	if (cur) {
		cur->ts = now;
		cur->pid = next_pid;
	}
	if (!next_pid)
		return 0;
	ts = take_stamp(next, next_pid, btf);
	if (!ts || now <= ts)
		return 0;
	cgid = task_cgroup2_id(next, btf);
	/* a switch between two tasks of one workload (a pipe ping-pong) needs
	 * one tracked_cgroups lookup, not two */
	if ((prev_pid && cgid == prev_cgid) ? prev_tracked : cgroup_tracked(cgid))
		record(cgid, US_SCHED_RUNQ_LAT, now - ts);
	return 0;
}

SEC("tp_btf/sched_wakeup")
int BPF_PROG(sched_wakeup_btf, struct task_struct *p)
{
	return handle_wakeup(p, true);
}

SEC("tp_btf/sched_wakeup_new")
int BPF_PROG(sched_wakeup_new_btf, struct task_struct *p)
{
	return handle_wakeup(p, true);
}

/* the fourth argument (prev_state, v5.18+) is not used so that the same
 * program loads on older kernels; us_task_state() reads the state instead */
SEC("tp_btf/sched_switch")
int BPF_PROG(sched_switch_btf, bool preempt, struct task_struct *prev,
	     struct task_struct *next)
{
	return handle_switch(preempt, prev, next, true);
}

SEC("raw_tp/sched_wakeup")
int BPF_PROG(sched_wakeup_raw, struct task_struct *p)
{
	return handle_wakeup(p, false);
}

SEC("raw_tp/sched_wakeup_new")
int BPF_PROG(sched_wakeup_new_raw, struct task_struct *p)
{
	return handle_wakeup(p, false);
}

SEC("raw_tp/sched_switch")
int BPF_PROG(sched_switch_raw, bool preempt, struct task_struct *prev,
	     struct task_struct *next)
{
	return handle_switch(preempt, prev, next, false);
}

char LICENSE[] SEC("license") = "GPL";
