/* Owns the tcp BPF skeleton of one collector: loading it (tp_btf, falling
 * back to raw_tp), the tracked_cgroups set, and turning the per-CPU
 * cumulative histograms and counts into per-interval figures.
 *
 * As in sched_collector.c, the kernel values are never reset (a read then a
 * zeroing write would lose the samples recorded in between): they are
 * cumulative, user space keeps the totals seen at the previous drain, and an
 * interval is the difference. The interval count of a histogram is
 * recomputed from its bucket deltas so that it always equals their sum. */
#include "tcp_collector.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "../bpf/tcp.h"
#include "bpf_collector.h"
#include "bpf_env.h"
#include "tcp.skel.h"

_Static_assert(sizeof(struct us_hist) == (2 + US_HIST_BUCKETS) * sizeof(uint64_t),
	       "struct us_hist must match struct us_bpf_hist");
_Static_assert(sizeof(struct us_tcp_counts) <= sizeof(struct us_hist),
	       "the per-CPU buffer holds counts too");

struct entry {
	uint64_t cgroup_id;		/* first: the key of struct us_cg_table */
	bool tracked;
	/* kernel totals (all CPUs) at the last drain */
	struct us_hist seen[US_TCP_METRIC_NR];
	struct us_tcp_counts seen_counts;
};

struct us_tcp {
	struct tcp_bpf *skel;
	bool raw_tp;
	char fallback_reason[256];
	int ncpus;
	void *percpu;			/* ncpus value slots: lookup/insert buffer */
	struct us_hist total;		/* scratch: one key summed over CPUs */
	struct us_tcp_cgroup_stats out;	/* scratch handed to the visitor */
	struct us_cg_table cgs;		/* struct entry, by cgroup */
};

static int set_autoload(struct tcp_bpf *skel, bool raw)
{
	struct bpf_program *btf[] = {
		skel->progs.tcp_probe_btf, skel->progs.tcp_retransmit_skb_btf,
		skel->progs.inet_sock_set_state_btf, skel->progs.tcp_send_reset_btf,
		skel->progs.tcp_receive_reset_btf,
	};
	struct bpf_program *rawp[] = {
		skel->progs.tcp_probe_raw, skel->progs.tcp_retransmit_skb_raw,
		skel->progs.inet_sock_set_state_raw, skel->progs.tcp_send_reset_raw,
		skel->progs.tcp_receive_reset_raw,
	};
	int rc = 0;

	for (size_t i = 0; i < sizeof(btf) / sizeof(btf[0]) && !rc; i++) {
		rc = bpf_program__set_autoload(btf[i], !raw);
		if (!rc)
			rc = bpf_program__set_autoload(rawp[i], raw);
	}
	return rc;
}

static int load_and_attach(struct us_tcp *t, const struct us_tcp_opts *o, bool raw)
{
	uint32_t max_cg = o->max_cgroups ? o->max_cgroups : US_TCP_MAX_CGROUPS;
	uint32_t max_conns = o->max_conns ? o->max_conns : US_TCP_MAX_CONNS;
	struct tcp_bpf *skel;
	int rc;

	skel = tcp_bpf__open();
	if (!skel) {
		rc = errno ? -errno : -EINVAL;
		goto cleanup;
	}
	skel->rodata->track_all = o->track_all;
	rc = bpf_map__set_max_entries(skel->maps.tracked_cgroups, max_cg);
	if (!rc)
		rc = bpf_map__set_max_entries(skel->maps.hists, US_TCP_METRIC_NR * max_cg);
	if (!rc)
		rc = bpf_map__set_max_entries(skel->maps.conn_counts, max_cg);
	if (!rc)
		rc = bpf_map__set_max_entries(skel->maps.conn_start, max_conns);
	if (!rc)
		rc = set_autoload(skel, raw);
	if (rc)
		goto cleanup;
	rc = tcp_bpf__load(skel);
	if (rc)
		goto cleanup;
	if (bpf_map__value_size(skel->maps.hists) != sizeof(struct us_hist) ||
	    bpf_map__value_size(skel->maps.conn_counts) != sizeof(struct us_tcp_counts)) {
		rc = -EPROTO;
		goto cleanup;
	}
	rc = tcp_bpf__attach(skel);
	if (rc)
		goto cleanup;
	t->skel = skel;
	t->raw_tp = raw;
	skel = NULL;
cleanup:
	tcp_bpf__destroy(skel);
	return rc;
}

struct load_ctx {
	struct us_tcp *t;
	const struct us_tcp_opts *o;
};

static int load_cb(void *ctx, bool raw)
{
	struct load_ctx *l = ctx;

	return load_and_attach(l->t, l->o, raw);
}

int us_tcp_open(const struct us_tcp_opts *opts, struct us_tcp **out, char *err,
		size_t errlen)
{
	static const struct us_tcp_opts defaults;
	const struct us_tcp_opts *o = opts ? opts : &defaults;
	struct us_tcp *t;
	int rc;

	*out = NULL;
	t = calloc(1, sizeof(*t));
	if (t)
		t->cgs.entry_size = sizeof(struct entry);
	if (!t) {
		rc = -ENOMEM;
		snprintf(err, errlen, "tcp collector: out of memory");
		goto cleanup;
	}
	t->ncpus = libbpf_num_possible_cpus();
	if (t->ncpus <= 0) {
		rc = t->ncpus < 0 ? t->ncpus : -EINVAL;
		snprintf(err, errlen, "tcp collector: counting possible CPUs: %s",
			 strerror(-rc));
		goto cleanup;
	}
	t->percpu = calloc((size_t)t->ncpus, sizeof(struct us_hist));
	if (!t->percpu) {
		rc = -ENOMEM;
		snprintf(err, errlen, "tcp collector: out of memory");
		goto cleanup;
	}

	rc = us_collector_load("tcp", o->force_raw_tp, load_cb, &(struct load_ctx){ t, o },
			      &t->raw_tp, t->fallback_reason, sizeof(t->fallback_reason),
			      err, errlen);
	if (rc)
		goto cleanup;
	*out = t;
	t = NULL;
cleanup:
	us_tcp_destroy(t);
	return rc;
}

const char *us_tcp_attach_mode(const struct us_tcp *t)
{
	return t->raw_tp ? "raw_tp" : "tp_btf";
}

const char *us_tcp_fallback_reason(const struct us_tcp *t)
{
	return t->raw_tp ? t->fallback_reason : "";
}

static struct entry *find_entry(const struct us_tcp *t, uint64_t cgid, size_t *pos)
{
	return us_cg_find(&t->cgs, cgid, pos);
}

static struct entry *add_entry(struct us_tcp *t, uint64_t cgid)
{
	return us_cg_add(&t->cgs, cgid);
}

static void remove_entry(struct us_tcp *t, size_t pos)
{
	us_cg_remove(&t->cgs, pos);
}

/* Sum one histogram key's per-CPU values into *total. -ENOENT if absent. */
static int read_hist(struct us_tcp *t, uint64_t cgid, uint32_t metric, struct us_hist *total)
{
	struct us_tcp_key key = { .cgroup_id = cgid, .metric = metric };

	return us_percpu_hist_sum(bpf_map__fd(t->skel->maps.hists), &key, t->percpu, t->ncpus,
				  total);
}

/* Sum one cgroup's per-CPU counts. -ENOENT if absent. */
static int read_counts(struct us_tcp *t, uint64_t cgid, struct us_tcp_counts *total)
{
	const struct us_tcp_counts *slot = t->percpu;
	int rc;

	rc = bpf_map_lookup_elem(bpf_map__fd(t->skel->maps.conn_counts), &cgid, t->percpu);
	if (rc)
		return rc;
	memset(total, 0, sizeof(*total));
	for (int cpu = 0; cpu < t->ncpus; cpu++) {
		total->retransmits += slot[cpu].retransmits;
		total->opened += slot[cpu].opened;
		total->closed += slot[cpu].closed;
		total->resets += slot[cpu].resets;
	}
	return 0;
}

int us_tcp_track(struct us_tcp *t, uint64_t cgid)
{
	bool inserted[US_TCP_METRIC_NR] = { false }, counts_inserted = false;
	int hists_fd = bpf_map__fd(t->skel->maps.hists);
	int counts_fd = bpf_map__fd(t->skel->maps.conn_counts);
	struct entry *e;
	bool created = false;
	size_t pos;
	uint8_t one = 1;
	int rc = 0;

	if (cgid == 0)
		return -EINVAL;
	e = find_entry(t, cgid, NULL);
	if (e && e->tracked)
		return 0;
	if (!e) {
		e = add_entry(t, cgid);
		if (!e)
			return -ENOMEM;
		created = true;
	}
	/* keys first, so that a program that sees the cgroup as tracked
	 * always finds them */
	memset(t->percpu, 0, (size_t)t->ncpus * sizeof(struct us_hist));
	for (uint32_t m = 0; m < US_TCP_METRIC_NR; m++) {
		struct us_tcp_key key = { .cgroup_id = cgid, .metric = m };

		rc = bpf_map_update_elem(hists_fd, &key, t->percpu, BPF_NOEXIST);
		if (rc && rc != -EEXIST)
			goto cleanup;
		inserted[m] = rc == 0;
		/* a new entry's interval starts now (the key may predate it in
		 * track_all mode); a discovered entry keeps its interval */
		if (created) {
			rc = read_hist(t, cgid, m, &e->seen[m]);
			if (rc)
				goto cleanup;
		}
		memset(t->percpu, 0, (size_t)t->ncpus * sizeof(struct us_hist));
	}
	rc = bpf_map_update_elem(counts_fd, &cgid, t->percpu, BPF_NOEXIST);
	if (rc && rc != -EEXIST)
		goto cleanup;
	counts_inserted = rc == 0;
	if (created) {
		rc = read_counts(t, cgid, &e->seen_counts);
		if (rc)
			goto cleanup;
	}
	rc = bpf_map_update_elem(bpf_map__fd(t->skel->maps.tracked_cgroups), &cgid, &one,
				 BPF_ANY);
	if (rc)
		goto cleanup;
	e->tracked = true;
	return 0;
cleanup:
	for (uint32_t m = 0; m < US_TCP_METRIC_NR; m++) {
		struct us_tcp_key key = { .cgroup_id = cgid, .metric = m };

		if (inserted[m])
			bpf_map_delete_elem(hists_fd, &key);
	}
	if (counts_inserted)
		bpf_map_delete_elem(counts_fd, &cgid);
	if (created && find_entry(t, cgid, &pos))
		remove_entry(t, pos);
	return rc;
}

int us_tcp_untrack(struct us_tcp *t, uint64_t cgid)
{
	size_t pos;
	int rc;

	/* tracked set first: a program past the check then finds no key and
	 * counts hist_key_missing instead of recreating one */
	rc = bpf_map_delete_elem(bpf_map__fd(t->skel->maps.tracked_cgroups), &cgid);
	if (rc && rc != -ENOENT)
		goto cleanup;
	for (uint32_t m = 0; m < US_TCP_METRIC_NR; m++) {
		struct us_tcp_key key = { .cgroup_id = cgid, .metric = m };

		rc = bpf_map_delete_elem(bpf_map__fd(t->skel->maps.hists), &key);
		if (rc && rc != -ENOENT)
			goto cleanup;
	}
	rc = bpf_map_delete_elem(bpf_map__fd(t->skel->maps.conn_counts), &cgid);
	if (rc && rc != -ENOENT)
		goto cleanup;
	rc = 0;
	if (find_entry(t, cgid, &pos))
		remove_entry(t, pos);
cleanup:
	return rc;
}

/* Adopt cgroups whose keys the programs created (track_all mode). Bounded
 * by the map size so that a map churning under us cannot loop forever. */
static int discover(struct us_tcp *t)
{
	int fd = bpf_map__fd(t->skel->maps.conn_counts);
	uint32_t budget = 2 * bpf_map__max_entries(t->skel->maps.conn_counts);
	uint64_t key, next;
	int rc;

	for (rc = bpf_map_get_next_key(fd, NULL, &next); rc == 0 && budget--;
	     rc = bpf_map_get_next_key(fd, &key, &next)) {
		key = next;
		if (!find_entry(t, key, NULL) && !add_entry(t, key))
			return -ENOMEM;
	}
	if (rc && rc != -ENOENT)
		return rc;
	fd = bpf_map__fd(t->skel->maps.hists);
	budget = 2 * bpf_map__max_entries(t->skel->maps.hists);
	{
		struct us_tcp_key hkey, hnext;

		for (rc = bpf_map_get_next_key(fd, NULL, &hnext); rc == 0 && budget--;
		     rc = bpf_map_get_next_key(fd, &hkey, &hnext)) {
			hkey = hnext;
			if (!find_entry(t, hkey.cgroup_id, NULL) && !add_entry(t, hkey.cgroup_id))
				return -ENOMEM;
		}
	}
	return rc == -ENOENT || rc == 0 ? 0 : rc;
}

/* interval = cumulative now - cumulative at the last drain */
static void interval(const struct us_hist *now, const struct us_hist *then,
		     struct us_hist *out)
{
	out->count = 0;
	for (unsigned int i = 0; i < US_HIST_BUCKETS; i++) {
		/* values only grow; a smaller one means the key was recreated */
		uint64_t d = now->buckets[i] >= then->buckets[i] ?
			now->buckets[i] - then->buckets[i] : now->buckets[i];

		out->buckets[i] = d;
		out->count += d;
	}
	out->sum = now->sum >= then->sum ? now->sum - then->sum : now->sum;
}

static uint64_t delta(uint64_t now, uint64_t then)
{
	return now >= then ? now - then : now;
}

int us_tcp_drain(struct us_tcp *t, us_tcp_visit_fn fn, void *ctx)
{
	struct us_tcp_cgroup_stats *st = &t->out;
	struct us_hist *dst[US_TCP_METRIC_NR] = {
		[US_TCP_RTT] = &st->rtt_ns,
		[US_TCP_LIFETIME] = &st->lifetime_ns,
	};
	struct us_tcp_counts c;
	int rc;

	rc = discover(t);
	if (rc)
		goto cleanup;
	for (size_t i = 0; i < t->cgs.n; i++) {
		struct entry *e = t->cgs.entries[i];
		unsigned int missing = 0;

		st->cgroup_id = e->cgroup_id;
		st->tracked = e->tracked;
		for (uint32_t m = 0; m < US_TCP_METRIC_NR; m++) {
			rc = read_hist(t, e->cgroup_id, m, &t->total);
			if (rc == -ENOENT) {
				/* not created yet (track_all) or untracked under us */
				us_hist_reset(&t->total);
				missing++;
			} else if (rc) {
				goto cleanup;
			}
			interval(&t->total, &e->seen[m], dst[m]);
			e->seen[m] = t->total;
		}
		rc = read_counts(t, e->cgroup_id, &c);
		if (rc == -ENOENT) {
			memset(&c, 0, sizeof(c));
			missing++;
		} else if (rc) {
			goto cleanup;
		}
		st->retransmits = delta(c.retransmits, e->seen_counts.retransmits);
		st->conns_opened = delta(c.opened, e->seen_counts.opened);
		st->conns_closed = delta(c.closed, e->seen_counts.closed);
		st->resets = delta(c.resets, e->seen_counts.resets);
		e->seen_counts = c;
		if (!e->tracked && missing == US_TCP_METRIC_NR + 1) {
			/* a discovered cgroup whose keys are gone */
			remove_entry(t, i--);
			continue;
		}
		rc = fn(ctx, st);
		if (rc)
			goto cleanup;
	}
	rc = 0;
cleanup:
	return rc;
}

int us_tcp_counters(struct us_tcp *t, struct us_tcp_counters *out)
{
	uint64_t sum[US_TCP_CNT_NR] = { 0 };
	const uint64_t *v = t->percpu; /* ncpus x 8 bytes fit easily */
	int rc = 0;

	for (uint32_t slot = 0; slot < US_TCP_CNT_NR; slot++) {
		rc = bpf_map_lookup_elem(bpf_map__fd(t->skel->maps.counters), &slot, t->percpu);
		if (rc)
			goto cleanup;
		for (int cpu = 0; cpu < t->ncpus; cpu++)
			sum[slot] += v[cpu];
	}
	out->start_map_full = sum[US_TCP_CNT_START_FULL];
	out->hist_map_full = sum[US_TCP_CNT_HIST_FULL];
	out->hist_key_missing = sum[US_TCP_CNT_HIST_MISSING];
cleanup:
	return rc;
}

int us_tcp_prog_fds(const struct us_tcp *t, int *fds, const char **names, int max)
{
	return us_collector_prog_fds(t->skel->obj, fds, names, max);
}

void us_tcp_destroy(struct us_tcp *t)
{
	if (!t)
		return;
	tcp_bpf__destroy(t->skel);
	us_cg_table_free(&t->cgs);
	free(t->percpu);
	free(t);
}
