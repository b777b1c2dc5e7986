/* Block I/O latency, bytes and ops per cgroup v2, from bpf/block.bpf.c.
 *
 * Requests are attributed at issue time to the cgroup of the issuing task.
 * us_block_open() loads and attaches the programs (tp_btf, or their raw_tp
 * twins when tp_btf does not load); us_block_track() starts measuring a
 * cgroup; us_block_drain() hands every measured cgroup's figures since the
 * previous drain (or since it was tracked) to a visitor. Call
 * us_bpf_env_prepare() first. Not thread-safe: one owner per collector.
 * Functions return 0 or a negative errno. */
#ifndef US_BLOCK_COLLECTOR_H
#define US_BLOCK_COLLECTOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hist.h"

struct us_block;

struct us_block_opts {
	bool track_all;		/* measure every cgroup, not only tracked ones (tests, --once) */
	bool force_raw_tp;	/* do not try tp_btf (tests of the fallback) */
	/* cgroups measured at once; 0 = 64. The histogram map is preallocated:
	 * 2 x 15 KiB per cgroup per possible CPU (64 cgroups, 8 CPUs: 15 MiB) */
	uint32_t max_cgroups;
	uint32_t max_inflight;	/* requests of tracked cgroups in flight; 0 = 10240 */
};

struct us_block_cgroup_stats {
	uint64_t cgroup_id;
	bool tracked;			/* false: seen only because of track_all */
	uint64_t read_bytes, write_bytes;	/* completed bytes */
	uint64_t read_ops, write_ops;		/* completed requests */
	struct us_hist read_latency_ns;		/* block_rq_issue -> final completion */
	struct us_hist write_latency_ns;
};

/* Failed map operations in the BPF programs, cumulative since open. */
struct us_block_counters {
	uint64_t start_map_full;	/* a request in flight was not measured */
	uint64_t hist_map_full;		/* track_all: a cgroup's keys could not be created */
	uint64_t hist_key_missing;	/* sample for a cgroup being (un)tracked, dropped */
};

/* Called once per measured cgroup; st is valid only during the call.
 * A non-zero return stops the drain and is returned by us_block_drain(). */
typedef int (*us_block_visit_fn)(void *ctx, const struct us_block_cgroup_stats *st);

int us_block_open(const struct us_block_opts *opts, struct us_block **out,
		  char *err, size_t errlen);
/* "tp_btf" or "raw_tp" */
const char *us_block_attach_mode(const struct us_block *b);
/* why tp_btf is not in use, "" when it is */
const char *us_block_fallback_reason(const struct us_block *b);
/* -E2BIG when max_cgroups are already tracked */
int us_block_track(struct us_block *b, uint64_t cgroup_id);
/* figures since the last drain are discarded; drain first to keep them */
int us_block_untrack(struct us_block *b, uint64_t cgroup_id);
int us_block_drain(struct us_block *b, us_block_visit_fn fn, void *ctx);
int us_block_counters(struct us_block *b, struct us_block_counters *out);
/* Loaded programs' fds and names (valid while b lives), up to max;
 * returns how many, for run-count/run-time stats (self_telemetry.c). */
int us_block_prog_fds(const struct us_block *b, int *fds, const char **names, int max);
void us_block_destroy(struct us_block *b);

#endif
