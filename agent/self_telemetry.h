/* The agent's own costs, sent each interval as one more MetricBatch for the
 * pseudo-workload "understudy-agent" (role production): run count and run
 * time of every loaded BPF program, the collectors' map-failure counters,
 * the agent's CPU and RSS, the spool's fill and the sender's window. So an
 * operator sees what observing costs next to what is observed.
 *
 * Counters are reported as increases over the interval; the first interval
 * (and any reading that went backwards) only records a baseline, like
 * agent/cgroupfs.c. Not thread-safe: one owner. */
#ifndef US_SELF_TELEMETRY_H
#define US_SELF_TELEMETRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "batch.h"
#include "block_collector.h"
#include "sched_collector.h"
#include "sender.h"
#include "spool.h"
#include "tcp_collector.h"

#define US_SELF_WORKLOAD "understudy-agent"
#define US_SELF_MAX_COUNTERS 256
#define US_SELF_NAME_LEN 96

/* Any source may be NULL (collector unavailable): its figures are left out. */
struct us_mirror;

struct us_self_sources {
	struct us_sched *sched;
	struct us_block *block;
	struct us_tcp *tcp;
	struct us_mirror *mirror;	/* capture programs and ring buffer, when mirroring */
	const struct us_spool *spool;
	const struct us_sender *sender;
};

struct us_self_counter {
	char name[US_SELF_NAME_LEN];	/* the batch points here: stable storage */
	const char *unit;
	uint64_t prev;
};

struct us_self_telemetry {
	int stats_fd;		/* bpf_enable_stats(); kept open: closing turns stats off */
	bool stats_tried;	/* enabled or failed once; failure is logged once */
	bool full_logged;	/* the counter table filled up; logged once */
	struct us_self_counter counters[US_SELF_MAX_COUNTERS];
	size_t ncounters;
};

void us_self_telemetry_init(struct us_self_telemetry *t);
/* Turns on BPF run-time statistics now rather than at the first batch:
 * bpf_enable_stats needs CAP_SYS_ADMIN, which the agent drops after start
 * (privs.c). False, logged once, when the kernel refuses. */
bool us_self_telemetry_enable_stats(struct us_self_telemetry *t);
void us_self_telemetry_close(struct us_self_telemetry *t);
/* Initialises b for US_SELF_WORKLOAD over [start_ns, end_ns) and fills it;
 * the caller submits and frees b. b points into t: use it before the next
 * call. */
void us_self_telemetry_batch(struct us_self_telemetry *t, const struct us_self_sources *src,
			     uint64_t start_ns, uint64_t end_ns, struct us_batch *b);

#endif
