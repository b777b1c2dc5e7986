/* MetricBatch construction. */
#include "batch.h"

#include <string.h>

void us_batch_init(struct us_batch *b, const char *workload, int role,
		   uint64_t start_ns, uint64_t end_ns)
{
	memset(b, 0, sizeof(*b));
	understudy__metric_batch__init(&b->mb);
	b->mb.workload = (char *)workload;
	b->mb.role = (Understudy__Role)role;
	b->mb.interval_start_ns = start_ns;
	b->mb.interval_end_ns = end_ns;
	b->mb.histograms = b->hist_ptrs;
	b->mb.counters = b->counter_ptrs;
	b->mb.gauges = b->gauge_ptrs;
}

int us_batch_add_hist(struct us_batch *b, const char *metric, const char *unit,
		      const struct us_hist *h)
{
	Understudy__Histogram *p;

	if (b->mb.n_histograms >= US_BATCH_MAX_ITEMS)
		return -1;
	p = &b->hists[b->mb.n_histograms];
	understudy__histogram__init(p);
	p->metric = (char *)metric;
	p->unit = (char *)unit;
	if (us_hist_to_proto(h, p) < 0)
		return -1;
	b->hist_ptrs[b->mb.n_histograms++] = p;
	return 0;
}

int us_batch_add_counter(struct us_batch *b, const char *metric, const char *unit,
			 uint64_t value)
{
	Understudy__Counter *c;

	if (b->mb.n_counters >= US_BATCH_MAX_ITEMS)
		return -1;
	c = &b->counters[b->mb.n_counters];
	understudy__counter__init(c);
	c->metric = (char *)metric;
	c->unit = (char *)unit;
	c->value = value;
	b->counter_ptrs[b->mb.n_counters++] = c;
	return 0;
}

int us_batch_add_gauge(struct us_batch *b, const char *metric, const char *unit, double value)
{
	Understudy__Gauge *g;

	if (b->mb.n_gauges >= US_BATCH_MAX_ITEMS)
		return -1;
	g = &b->gauges[b->mb.n_gauges];
	understudy__gauge__init(g);
	g->metric = (char *)metric;
	g->unit = (char *)unit;
	g->value = value;
	b->gauge_ptrs[b->mb.n_gauges++] = g;
	return 0;
}

void us_batch_free(struct us_batch *b)
{
	for (size_t i = 0; i < b->mb.n_histograms; i++)
		us_hist_proto_free_arrays(&b->hists[i]);
	b->mb.n_histograms = 0;
}
