/* Block I/O latency, bytes and ops per workload cgroup (cgroup v2 id).
 *
 * Owns: the block_rq_issue / block_rq_complete programs (tp_btf, with raw_tp
 * twins that user space autoloads instead when tp_btf is not available) and
 * their maps.
 *
 * - attribution: at block_rq_issue a read or write request gets a start
 *   record {ts, cgroup, direction}, keyed by the struct request address,
 *   under the cgroup v2 id of the task issuing it (bpf_get_current_cgroup_id),
 *   if that cgroup is tracked. Requests issued from another context (kblockd
 *   after a busy queue, writeback kworkers) belong to that context's cgroup.
 *   A request issued again (requeue) takes a new record.
 * - block_rq_complete adds nr_bytes to the cgroup's bytes of the direction
 *   (a request may complete in parts); the final completion (nr_bytes
 *   covering what is left of the request) records issue -> completion in
 *   the latency histogram of the direction (US_BLOCK_LAT_READ/WRITE), counts
 *   one op and drops the start record.
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
/* block_rq_issue is TP_PROTO(q, rq) before v5.11, see core_fixes.bpf.h */
const volatile bool block_rq_issue_has_q = false;

/* cgroup id -> 1, maintained by user space */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, US_BLOCK_MAX_CGROUPS);
	__type(key, __u64);
	__type(value, __u8);
} tracked_cgroups SEC(".maps");

/* struct request address -> start record; only requests of tracked cgroups */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
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

static __always_inline int handle_issue(struct request *rq)
{
	__u32 op = BPF_CORE_READ(rq, cmd_flags) & REQ_OP_MASK;
	struct us_block_start st = {};
	__u64 key = (__u64)(unsigned long)rq;
	long err;

	/* REQ_OP_READ = 0, REQ_OP_WRITE = 1 in every kernel since v4.10 */
	if (op != US_BLOCK_READ && op != US_BLOCK_WRITE)
		return 0;
	st.cgroup_id = bpf_get_current_cgroup_id();
	if (!cgroup_tracked(st.cgroup_id)) {
		/* a requeued request re-issued by an untracked context */
		bpf_map_delete_elem(&start, &key);
		return 0;
	}
	st.dir = op;
	st.ts = bpf_ktime_get_ns();
	err = bpf_map_update_elem(&start, &key, &st, BPF_ANY);
	if (err)
		count_failure(US_BLOCK_CNT_START_FULL);
	return 0;
}

static __always_inline int handle_complete(struct request *rq, unsigned int nr_bytes)
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
	final = nr_bytes >= BPF_CORE_READ(rq, __data_len);
	if (final)
		/* read before delete: the element may be reused after deletion */
		bpf_map_delete_elem(&start, &key);
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

SEC("tp_btf/block_rq_issue")
int block_rq_issue_btf(unsigned long long *ctx)
{
	return handle_issue(us_block_rq_issue_rq(ctx, block_rq_issue_has_q));
}

/* TP_PROTO(struct request *rq, blk_status_t error, unsigned int nr_bytes)
 * (int error before v4.13) in every kernel with BPF tracepoints */
SEC("tp_btf/block_rq_complete")
int BPF_PROG(block_rq_complete_btf, struct request *rq, int error, unsigned int nr_bytes)
{
	return handle_complete(rq, nr_bytes);
}

SEC("raw_tp/block_rq_issue")
int block_rq_issue_raw(unsigned long long *ctx)
{
	return handle_issue(us_block_rq_issue_rq(ctx, block_rq_issue_has_q));
}

SEC("raw_tp/block_rq_complete")
int BPF_PROG(block_rq_complete_raw, struct request *rq, int error, unsigned int nr_bytes)
{
	return handle_complete(rq, nr_bytes);
}

char LICENSE[] SEC("license") = "GPL";
