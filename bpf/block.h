/* Types shared by bpf/block.bpf.c and agent/block_collector.c: the map keys
 * and values, the metric ids and the per-CPU counter slots. The includer
 * provides __u32/__u64 (vmlinux.h in BPF, <linux/types.h> in user space).
 * The histogram map value is struct us_bpf_hist (bpf/hist.bpf.h), whose
 * layout is that of struct us_hist (lib/hist.h). */
#ifndef US_BPF_BLOCK_H
#define US_BPF_BLOCK_H

/* Default map sizes; user space may change them before load. */
#define US_BLOCK_MAX_CGROUPS 64		/* cgroups measured at once */
#define US_BLOCK_MAX_INFLIGHT 10240	/* requests of tracked cgroups in flight */

/* Only reads and writes are measured; flush, discard, write-zeroes and
 * driver-private requests are not (they carry no or no real data). */
enum us_block_dir {
	US_BLOCK_READ = 0,
	US_BLOCK_WRITE = 1,
	US_BLOCK_DIR_NR = 2,
};

/* Histogram metrics: ns from block_rq_issue to the final block_rq_complete
 * of a request, one histogram per direction (the count is the ops). */
enum us_block_metric {
	US_BLOCK_LAT_READ = US_BLOCK_READ,
	US_BLOCK_LAT_WRITE = US_BLOCK_WRITE,
	US_BLOCK_METRIC_NR = 2,
};

struct us_block_key {
	__u64 cgroup_id;	/* cgroup v2 id of the task that issued the request */
	__u32 metric;		/* enum us_block_metric */
	__u32 pad;		/* always 0: the key is hashed bytewise */
};

/* Value of the per-CPU `io` map, keyed by cgroup id; cumulative. Bytes are
 * counted at every completion (a request may complete in parts), ops once
 * per request, at its final completion. */
struct us_block_io {
	__u64 bytes[US_BLOCK_DIR_NR];
	__u64 ops[US_BLOCK_DIR_NR];
};

/* Value of the `start` map, keyed by the struct request address. */
struct us_block_start {
	__u64 ts;		/* ns at block_rq_issue, 0 = not issued yet */
	__u64 cgroup_id;	/* issuing task's cgroup v2 id, 0 = free record */
	__u32 dir;		/* enum us_block_dir */
	__u32 pad;
};

/* Slots of the per-CPU `counters` array: every failed map operation. */
enum us_block_counter {
	US_BLOCK_CNT_START_FULL = 0,	/* start update failed (map full): request not measured */
	US_BLOCK_CNT_HIST_FULL = 1,	/* hists/io insert failed (map full), track_all mode */
	US_BLOCK_CNT_HIST_MISSING = 2,	/* tracked cgroup without hists/io key (track/untrack race) */
	US_BLOCK_CNT_NR = 3,
};

#endif
