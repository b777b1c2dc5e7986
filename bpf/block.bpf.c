/* Block I/O latency, bytes and ops per workload cgroup (cgroup v2 id).
 *
 * Owns: the block_rq_issue / block_rq_complete programs (tp_btf, with raw_tp
 * twins that user space autoloads instead when tp_btf is not available) and
 * their maps.
 *
 * - attribution: a read or write request belongs to the cgroup v2 of the
 *   task that submitted it. That task is current at block_rq_insert (plug
 *   flush, scheduler insert) or, on the direct-issue path that skips the
 *   insert, at block_rq_issue. Issue itself may run in kblockd (a busy
 *   queue, a requeue), so a record made at insert keeps its cgroup and
 *   issue only starts the clock; issue makes a record only when none exists.
 *   Writeback and journal I/O submitted by kworkers belong to their cgroup.
 *   A request issued again (requeue) restarts its clock.
 * - block_rq_complete adds nr_bytes to the cgroup's bytes of the direction
 *   (a request may complete in parts); the final completion (nr_bytes
 *   covering what is left of the request) records issue -> completion in
 *   the latency histogram of the direction (US_BLOCK_LAT_READ/WRITE), counts
 *   one op and frees the start record (see the start map).
 *
 * Only cgroups in tracked_cgroups are measured (or all, with track_all), so
 * the start map holds only requests of tracked workloads. In tracked mode
 * the programs never allocate histogram or io keys: user space inserts them
 * at track time, so a cgroup being untracked is not resurrected by an
 * in-flight request. */
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>

#include "block.h"
#include "hist.bpf.h"
#include "core_fixes.bpf.h"

#define REQ_OP_BITS 8
#define REQ_OP_MASK ((1u << REQ_OP_BITS) - 1)

/* measure every cgroup (tests, --once); histogram keys are created here */
const volatile bool track_all = false;
/* block_rq_insert and block_rq_issue are TP_PROTO(q, rq) before v5.11,
 * see core_fixes.bpf.h */
const volatile bool block_rq_has_q = false;

/* cgroup id -> 1, maintained by user space */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, US_BLOCK_MAX_CGROUPS);
	__type(key, __u64);
	__type(value, __u8);
} tracked_cgroups SEC(".maps");

/* struct request address -> start record; only addresses used by requests
 * of tracked cgroups. A record is never deleted: completion (or an insert
 * by an untracked submitter) marks it free (cgroup_id 0) in place, and the
 * next request at that address overwrites it. Requests are preallocated
 * per tag set and recycled, so the same few addresses come back and the
 * steady state is a lookup and a few stores per event instead of a hash
 * insert at insert and a delete at completion (~140 ns each on the
 * reference VM). An LRU hash (v4.10) bounds the records of addresses no
 * longer in use (a tag set freed, more tags than max_entries over all
 * devices): the least recently used are evicted, never the in-flight ones
 * unless max_entries is below the requests in flight. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, US_BLOCK_MAX_INFLIGHT);
	__type(key, __u64);
	__type(value, struct us_block_start);
} start SEC(".maps");

/* {cgroup, metric} -> histogram, per CPU, preallocated (see sched.bpf.c for
 * why not BPF_F_NO_PREALLOC). Keys inserted by user space in tracked mode,
 * by the programs in track_all mode. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, US_BLOCK_METRIC_NR * US_BLOCK_MAX_CGROUPS);
	__type(key, struct us_block_key);
	__type(value, struct us_bpf_hist);
} hists SEC(".maps");

/* cgroup id -> bytes and ops, per CPU, preallocated, keyed like hists */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, US_BLOCK_MAX_CGROUPS);
	__type(key, __u64);
	__type(value, struct us_block_io);
} io SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, US_BLOCK_CNT_NR);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

/* templates for new keys (track_all), never written */
static struct us_bpf_hist zero_hist;
static struct us_block_io zero_io;

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

static __always_inline void *lookup_value(void *map, const void *key, const void *init)
{
	void *v;

	if (track_all) {
		v = us_map_lookup_or_try_init(map, key, init);
		if (!v)
			count_failure(US_BLOCK_CNT_HIST_FULL);
	} else {
		v = bpf_map_lookup_elem(map, key);
		if (!v)
			count_failure(US_BLOCK_CNT_HIST_MISSING);
	}
	return v;
}

/* REQ_OP_READ = 0, REQ_OP_WRITE = 1 in every kernel since v4.10. `btf`
 * (a constant after inlining) is true in the tp_btf programs, whose rq is
 * BTF-typed and read with plain loads instead of bpf_probe_read_kernel(). */
static __always_inline bool read_or_write(struct request *rq, __u32 *op, bool btf)
{
	*op = (btf ? rq->cmd_flags : BPF_CORE_READ(rq, cmd_flags)) & REQ_OP_MASK;
	return *op == US_BLOCK_READ || *op == US_BLOCK_WRITE;
}

/* (Re)start the record of a request at key: in place when its address
 * has one (live or free), else a new element. */
static __always_inline void start_record(struct us_block_start *stp, __u64 key, __u64 cgid,
					 __u32 dir, __u64 ts)
{
	struct us_block_start st = { .ts = ts, .cgroup_id = cgid, .dir = dir };

	if (stp) {
		stp->ts = ts;
		stp->dir = dir;
		stp->cgroup_id = cgid;
		return;
	}
	if (bpf_map_update_elem(&start, &key, &st, BPF_ANY))
		count_failure(US_BLOCK_CNT_START_FULL);
}

/* The submitter is current: the request is its cgroup's from now on (a
 * recycled request address of another cgroup is overwritten). ts 0 marks
 * a request not yet issued; an issued one being inserted again is a
 * requeue from kblockd and keeps its cgroup. */
static __always_inline int handle_insert(struct request *rq, bool btf)
{
	__u64 key = (__u64)(unsigned long)rq, cgid;
	struct us_block_start *stp;
	__u32 op;

	if (!read_or_write(rq, &op, btf))
		return 0;
	stp = bpf_map_lookup_elem(&start, &key);
	if (stp && stp->cgroup_id && stp->ts)
		return 0; /* issued before: a requeue, inserted again by kblockd */
	cgid = bpf_get_current_cgroup_id();
	if (!cgroup_tracked(cgid)) {
		if (stp)
			stp->cgroup_id = 0;	/* free: not ours */
		return 0;
	}
	start_record(stp, key, cgid, op, 0);
	return 0;
}

static __always_inline int handle_issue(struct request *rq, bool btf)
{
	__u64 key = (__u64)(unsigned long)rq, cgid;
	struct us_block_start *stp;
	__u32 op;

	if (!read_or_write(rq, &op, btf))
		return 0;
	stp = bpf_map_lookup_elem(&start, &key);
	if (stp && stp->cgroup_id) {
		/* inserted by its submitter, or a requeued request */
		stp->ts = bpf_ktime_get_ns();
		return 0;
	}
	/* direct issue (no record, or the free one of an earlier request at
	 * this address): the submitter is current */
	cgid = bpf_get_current_cgroup_id();
	if (!cgroup_tracked(cgid))
		return 0;
	start_record(stp, key, cgid, op, bpf_ktime_get_ns());
	return 0;
}

static __always_inline int handle_complete(struct request *rq, unsigned int nr_bytes,
					   bool btf)
{
	__u64 key = (__u64)(unsigned long)rq;
	struct us_block_start *stp, st;
	struct us_block_key hkey = {};
	struct us_bpf_hist *h;
	struct us_block_io *v;
	bool final;
	__u64 now;

	stp = bpf_map_lookup_elem(&start, &key);
	if (!stp)
		return 0;
	st = *stp;
	/* free, or completed without an issue we saw (attached mid-flight) */
	if (!st.cgroup_id || !st.ts)
		return 0;
	final = nr_bytes >= (btf ? rq->__data_len : BPF_CORE_READ(rq, __data_len));
	if (final)
		stp->cgroup_id = 0;	/* free for the next request at this address */
	if (st.dir >= US_BLOCK_DIR_NR)
		return 0;
	v = lookup_value(&io, &st.cgroup_id, &zero_io);
	if (v) {
		v->bytes[st.dir & 1] += nr_bytes;
		if (final)
			v->ops[st.dir & 1]++;
	}
	if (!final)
		return 0;
	now = bpf_ktime_get_ns();
	hkey.cgroup_id = st.cgroup_id;
	hkey.metric = st.dir;
	h = lookup_value(&hists, &hkey, &zero_hist);
	if (h && now > st.ts)
		us_hist_bpf_record(h, now - st.ts);
	return 0;
}

SEC("tp_btf/block_rq_insert")
int block_rq_insert_btf(unsigned long long *ctx)
{
	return handle_insert(us_block_rq_arg(ctx, block_rq_has_q), true);
}

SEC("tp_btf/block_rq_issue")
int block_rq_issue_btf(unsigned long long *ctx)
{
	return handle_issue(us_block_rq_arg(ctx, block_rq_has_q), true);
}

/* TP_PROTO(struct request *rq, blk_status_t error, unsigned int nr_bytes)
 * (int error before v4.13) in every kernel with BPF tracepoints */
SEC("tp_btf/block_rq_complete")
int BPF_PROG(block_rq_complete_btf, struct request *rq, int error, unsigned int nr_bytes)
{
	return handle_complete(rq, nr_bytes, true);
}

SEC("raw_tp/block_rq_insert")
int block_rq_insert_raw(unsigned long long *ctx)
{
	return handle_insert(us_block_rq_arg(ctx, block_rq_has_q), false);
}

SEC("raw_tp/block_rq_issue")
int block_rq_issue_raw(unsigned long long *ctx)
{
	return handle_issue(us_block_rq_arg(ctx, block_rq_has_q), false);
}

SEC("raw_tp/block_rq_complete")
int BPF_PROG(block_rq_complete_raw, struct request *rq, int error, unsigned int nr_bytes)
{
	return handle_complete(rq, nr_bytes, false);
}

char LICENSE[] SEC("license") = "GPL";
