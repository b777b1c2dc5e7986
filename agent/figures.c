/* Collector figures -> MetricBatch items; see figures.h. */
#include "figures.h"

static void add_sched(const struct us_sched_cgroup_stats *st, struct us_batch *b)
{
	us_batch_add_hist(b, "runq_latency", "ns", &st->runq_latency_ns);
	us_batch_add_hist(b, "oncpu_slice", "ns", &st->oncpu_slice_ns);
	us_batch_add_counter(b, "oncpu_time", "ns", st->oncpu_ns);
}

static void add_block(const struct us_block_cgroup_stats *io, struct us_batch *b)
{
	struct us_hist lat = io->read_latency_ns;

	/* one latency histogram, reads and writes merged */
	us_hist_merge(&lat, &io->write_latency_ns);
	us_batch_add_hist(b, "io_latency", "ns", &lat);
	us_batch_add_counter(b, "io_read_bytes", "bytes", io->read_bytes);
	us_batch_add_counter(b, "io_write_bytes", "bytes", io->write_bytes);
	us_batch_add_counter(b, "io_read_ops", "ops", io->read_ops);
	us_batch_add_counter(b, "io_write_ops", "ops", io->write_ops);
}

static void add_tcp(const struct us_tcp_cgroup_stats *t, struct us_batch *b)
{
	us_batch_add_hist(b, "tcp_rtt", "ns", &t->rtt_ns);
	us_batch_add_hist(b, "tcp_conn_lifetime", "ns", &t->lifetime_ns);
	us_batch_add_counter(b, "tcp_retransmits", "1", t->retransmits);
	us_batch_add_counter(b, "tcp_conns_opened", "1", t->conns_opened);
	us_batch_add_counter(b, "tcp_conns_closed", "1", t->conns_closed);
	us_batch_add_counter(b, "tcp_resets", "1", t->resets);
}

void us_figures_add(const struct us_figures *f, struct us_batch *b)
{
	if (f->sched_seen)
		add_sched(&f->sched, b);
	if (f->block_seen)
		add_block(&f->block, b);
	if (f->tcp_seen)
		add_tcp(&f->tcp, b);
}

void us_figures_add_cgroupfs(const struct us_cgroupfs_figures *cf, struct us_batch *b)
{
	for (int k = 0; k < US_CG_NR; k++) {
		if (cf->source[k] == US_CG_NONE)
			continue;
		if (us_cgroupfs_is_counter(k))
			us_batch_add_counter(b, us_cgroupfs_metric(k), us_cgroupfs_unit(k),
					     cf->value[k]);
		else
			us_batch_add_gauge(b, us_cgroupfs_metric(k), us_cgroupfs_unit(k),
					   (double)cf->value[k]);
	}
}
