/* One workload's figures for an interval, as MetricBatch items: the names,
 * units and merging rules every producer (the daemon, --once) shares, so
 * what --once prints is what the daemon sends. */
#ifndef US_FIGURES_H
#define US_FIGURES_H

#include <stdbool.h>

#include "batch.h"
#include "block_collector.h"
#include "cgroupfs.h"
#include "sched_collector.h"
#include "tcp_collector.h"

struct us_figures {
	bool sched_seen;
	struct us_sched_cgroup_stats sched;
	bool block_seen;
	struct us_block_cgroup_stats block;
	bool tcp_seen;
	struct us_tcp_cgroup_stats tcp;
};

/* Adds the BPF collectors' figures that were seen in the interval. */
void us_figures_add(const struct us_figures *f, struct us_batch *b);
/* Adds a cgroupfs reading (counters as increases, the rest as gauges). */
void us_figures_add_cgroupfs(const struct us_cgroupfs_figures *cf, struct us_batch *b);

#endif
