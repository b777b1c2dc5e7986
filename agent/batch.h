/* Builds MetricBatch messages: owns the protobuf-c structs and arrays that a
 * batch points into, so collectors add histograms, counters and gauges
 * without managing protobuf memory. */
#ifndef US_BATCH_H
#define US_BATCH_H

#include <stdint.h>

#include "hist.h"
#include "understudy.pb-c.h"

#define US_BATCH_MAX_ITEMS 128

struct us_batch {
	Understudy__MetricBatch mb;
	Understudy__Histogram hists[US_BATCH_MAX_ITEMS];
	Understudy__Histogram *hist_ptrs[US_BATCH_MAX_ITEMS];
	Understudy__Counter counters[US_BATCH_MAX_ITEMS];
	Understudy__Counter *counter_ptrs[US_BATCH_MAX_ITEMS];
	Understudy__Gauge gauges[US_BATCH_MAX_ITEMS];
	Understudy__Gauge *gauge_ptrs[US_BATCH_MAX_ITEMS];
};

void us_batch_init(struct us_batch *b, const char *workload, int role,
		   uint64_t start_ns, uint64_t end_ns);
/* metric and unit must outlive the batch (string literals, config). */
int us_batch_add_hist(struct us_batch *b, const char *metric, const char *unit,
		      const struct us_hist *h);
int us_batch_add_counter(struct us_batch *b, const char *metric, const char *unit,
			 uint64_t value);
int us_batch_add_gauge(struct us_batch *b, const char *metric, const char *unit, double value);
void us_batch_free(struct us_batch *b);

#endif
