/* Agent self-telemetry: see self_telemetry.h. */
#include "self_telemetry.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <linux/bpf.h>

#include "log.h"
#include "mirror.h"

#define MAX_PROGS 40	/* per collector; each has a dozen or so, half loaded */

void us_self_telemetry_init(struct us_self_telemetry *t)
{
	memset(t, 0, sizeof(*t));
	t->stats_fd = -1;
}

void us_self_telemetry_close(struct us_self_telemetry *t)
{
	if (t->stats_fd >= 0)
		close(t->stats_fd);
	t->stats_fd = -1;
}

/* Adds the increase of a cumulative total since the last call with the same
 * name. The first sighting, and a total that went backwards (a program or
 * collector reloaded), only set the baseline: a guess would be a spike. */
static void add_delta(struct us_self_telemetry *t, struct us_batch *b, const char *name,
		      const char *unit, uint64_t total)
{
	struct us_self_counter *c;
	size_t i;

	for (i = 0; i < t->ncounters; i++)
		if (strcmp(t->counters[i].name, name) == 0)
			break;
	if (i == t->ncounters) {
		if (t->ncounters == US_SELF_MAX_COUNTERS) {
			if (!t->full_logged)
				us_warn("self-telemetry: more than %d series; %s and later left out",
					US_SELF_MAX_COUNTERS, name);
			t->full_logged = true;
			return;
		}
		c = &t->counters[t->ncounters++];
		snprintf(c->name, sizeof(c->name), "%s", name);
		c->unit = unit;
		c->prev = total;
		return;
	}
	c = &t->counters[i];
	if (total >= c->prev)
		us_batch_add_counter(b, c->name, c->unit, total - c->prev);
	c->prev = total;
}

/* Statistics cost a little on every program run, so the kernel keeps them
 * off until someone holds a BPF_STATS_RUN_TIME fd; we hold it for life. */
static bool stats_enabled(struct us_self_telemetry *t)
{
	int fd;

	if (t->stats_tried)
		return t->stats_fd >= 0;
	t->stats_tried = true;
	fd = bpf_enable_stats(BPF_STATS_RUN_TIME);
	if (fd < 0) {
		us_warn("self-telemetry: BPF run-time stats unavailable (%s); "
			"bpf_run_count/bpf_run_time left out", strerror(-fd));
		return false;
	}
	t->stats_fd = fd;
	return true;
}

bool us_self_telemetry_enable_stats(struct us_self_telemetry *t)
{
	return stats_enabled(t);
}

static void add_progs(struct us_self_telemetry *t, struct us_batch *b, const char *collector,
		      const int *fds, const char **names, int n)
{
	char name[US_SELF_NAME_LEN];

	for (int i = 0; i < n; i++) {
		struct bpf_prog_info info;
		__u32 len = sizeof(info);

		memset(&info, 0, sizeof(info));
		/* bpf_prog_get_info_by_fd() only from libbpf 1.2; same call */
		if (bpf_obj_get_info_by_fd(fds[i], &info, &len) < 0)
			continue;
		snprintf(name, sizeof(name), "bpf_run_count:%s.%s", collector, names[i]);
		add_delta(t, b, name, "1", info.run_cnt);
		snprintf(name, sizeof(name), "bpf_run_time:%s.%s", collector, names[i]);
		add_delta(t, b, name, "ns", info.run_time_ns);
	}
}

static void add_bpf(struct us_self_telemetry *t, const struct us_self_sources *src,
		    struct us_batch *b)
{
	const char *names[MAX_PROGS];
	int fds[MAX_PROGS];
	bool stats = stats_enabled(t);

	if (src->sched) {
		struct us_sched_counters k;

		if (stats)
			add_progs(t, b, "sched", fds, names, us_sched_prog_fds(src->sched, fds, names, MAX_PROGS));
		if (us_sched_counters(src->sched, &k) == 0) {
			add_delta(t, b, "bpf_map_failures:sched.start_map_full", "1", k.start_map_full);
			add_delta(t, b, "bpf_map_failures:sched.hist_map_full", "1", k.hist_map_full);
			add_delta(t, b, "bpf_map_failures:sched.hist_key_missing", "1", k.hist_key_missing);
			add_delta(t, b, "bpf_map_failures:sched.stamp_refused", "1", k.stamp_refused);
		}
	}
	if (src->block) {
		struct us_block_counters k;

		if (stats)
			add_progs(t, b, "block", fds, names, us_block_prog_fds(src->block, fds, names, MAX_PROGS));
		if (us_block_counters(src->block, &k) == 0) {
			add_delta(t, b, "bpf_map_failures:block.start_map_full", "1", k.start_map_full);
			add_delta(t, b, "bpf_map_failures:block.hist_map_full", "1", k.hist_map_full);
			add_delta(t, b, "bpf_map_failures:block.hist_key_missing", "1", k.hist_key_missing);
		}
	}
	if (src->tcp) {
		struct us_tcp_counters k;

		if (stats)
			add_progs(t, b, "tcp", fds, names, us_tcp_prog_fds(src->tcp, fds, names, MAX_PROGS));
		if (us_tcp_counters(src->tcp, &k) == 0) {
			add_delta(t, b, "bpf_map_failures:tcp.start_map_full", "1", k.start_map_full);
			add_delta(t, b, "bpf_map_failures:tcp.hist_map_full", "1", k.hist_map_full);
			add_delta(t, b, "bpf_map_failures:tcp.hist_key_missing", "1", k.hist_key_missing);
		}
	}
	if (src->mirror) {
		uint64_t k[US_CAP_CNT_NR];

		if (stats)
			add_progs(t, b, "capture", fds, names,
				  us_mirror_prog_fds(src->mirror, fds, names, MAX_PROGS));
		if (us_mirror_capture_counters(src->mirror, k) == 0) {
			add_delta(t, b, "bpf_map_failures:capture.conn_map_full", "1",
				  k[US_CAP_CNT_CONN_FULL]);
			add_delta(t, b, "bpf_map_failures:capture.args_map_full", "1",
				  k[US_CAP_CNT_ARGS_FULL]);
			add_delta(t, b, "ringbuf_drops:capture.records", "1", k[US_CAP_CNT_RB_DROPPED]);
			add_delta(t, b, "ringbuf_drops:capture.bytes", "bytes",
				  k[US_CAP_CNT_RB_DROPPED_BYTES]);
			add_delta(t, b, "capture_read_faults", "1", k[US_CAP_CNT_READ_FAULT]);
		}
	}
}

/* Resident set from /proc/self/statm (second field, in pages): cheaper
 * than parsing /proc/self/status and what ps reports as RSS. */
static int read_rss(uint64_t *bytes)
{
	unsigned long long size, resident;
	FILE *f = fopen("/proc/self/statm", "r");
	int rc = -1;

	if (!f)
		return -1;
	if (fscanf(f, "%llu %llu", &size, &resident) != 2)
		goto cleanup;
	*bytes = (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
	rc = 0;
cleanup:
	fclose(f);
	return rc;
}

static void add_process(struct us_self_telemetry *t, const struct us_self_sources *src,
			struct us_batch *b)
{
	struct rusage ru;
	uint64_t rss;

	if (getrusage(RUSAGE_SELF, &ru) == 0) {
		uint64_t ns = ((uint64_t)ru.ru_utime.tv_sec + (uint64_t)ru.ru_stime.tv_sec) *
			1000000000ull +
			((uint64_t)ru.ru_utime.tv_usec + (uint64_t)ru.ru_stime.tv_usec) * 1000ull;

		add_delta(t, b, "agent_cpu", "ns", ns);
	}
	if (read_rss(&rss) == 0)
		us_batch_add_gauge(b, "agent_rss", "bytes", (double)rss);
	if (src->spool) {
		struct us_spool_stats st;

		us_spool_get_stats(src->spool, &st);
		us_batch_add_gauge(b, "spool_bytes", "bytes", (double)st.bytes);
		us_batch_add_gauge(b, "spool_envelopes", "1", (double)st.envelopes);
		add_delta(t, b, "spool_dropped", "1", st.dropped_total);
	}
	if (src->sender) {
		const struct us_sender_stats *st = us_sender_get_stats(src->sender);

		us_batch_add_gauge(b, "sender_in_flight", "1", (double)st->in_flight);
		add_delta(t, b, "sender_resent", "1", st->resent);
	}
}

void us_self_telemetry_batch(struct us_self_telemetry *t, const struct us_self_sources *src,
			     uint64_t start_ns, uint64_t end_ns, struct us_batch *b)
{
	us_batch_init(b, US_SELF_WORKLOAD, UNDERSTUDY__ROLE__PRODUCTION, start_ns, end_ns);
	add_bpf(t, src, b);
	add_process(t, src, b);
}
