/* Owns the block BPF skeleton of one collector: loading it (tp_btf, falling
 * back to raw_tp, with the block_rq_issue prototype read from the kernel's
 * BTF), the tracked_cgroups set, and turning the per-CPU cumulative values
 * into per-interval figures.
 *
 * As in sched_collector.c the kernel values are never reset: they are
 * cumulative and monotonic, user space keeps the totals it saw at the
 * previous drain and an interval is the difference, so no sample is lost or
 * counted twice. Histogram counts are recomputed from the bucket deltas. */
#include "block_collector.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "../bpf/block.h"
#include "bpf_collector.h"
#include "bpf_env.h"
#include "block.skel.h"

_Static_assert(sizeof(struct us_hist) == (2 + US_HIST_BUCKETS) * sizeof(uint64_t),
	       "struct us_hist must match struct us_bpf_hist");

struct entry {
	uint64_t cgroup_id;		/* first: the key of struct us_cg_table */
	bool tracked;
	/* kernel totals (all CPUs) at the last drain */
	struct us_hist seen[US_BLOCK_METRIC_NR];
	struct us_block_io seen_io;
};

struct us_block {
	struct block_bpf *skel;
	bool raw_tp;
	char fallback_reason[256];
	int ncpus;
	void *percpu;			/* ncpus value slots: lookup/insert buffer */
	struct us_hist total;		/* scratch: one key summed over CPUs */
	struct us_block_cgroup_stats out; /* scratch handed to the visitor */
	struct us_cg_table cgs;		/* struct entry, by cgroup */
};

/* True when the kernel's block_rq_issue (and with it block_rq_insert) is
 * TP_PROTO(q, rq) (before v5.11, commit a54895fa057c): btf_trace_block_rq_issue is a pointer to a function
 * of (void *, q, rq). Without kernel BTF, assume the current form. */
static bool issue_has_q(void)
{
	const struct btf_type *t;
	struct btf *btf;
	bool has_q = false;
	int id;

	btf = btf__load_vmlinux_btf();
	if (!btf)
		return false;
	id = btf__find_by_name_kind(btf, "btf_trace_block_rq_issue", BTF_KIND_TYPEDEF);
	if (id > 0) {
		t = btf__type_by_id(btf, id);
		t = t ? btf__type_by_id(btf, t->type) : NULL;
		if (t && btf_is_ptr(t))
			t = btf__type_by_id(btf, t->type);
		if (t && btf_is_func_proto(t))
			has_q = btf_vlen(t) == 3;
	}
	btf__free(btf);
	return has_q;
}

static int load_and_attach(struct us_block *b, const struct us_block_opts *o, bool raw)
{
	uint32_t max_cg = o->max_cgroups ? o->max_cgroups : US_BLOCK_MAX_CGROUPS;
	uint32_t max_fl = o->max_inflight ? o->max_inflight : US_BLOCK_MAX_INFLIGHT;
	struct block_bpf *skel;
	int rc;

	skel = block_bpf__open();
	if (!skel) {
		rc = errno ? -errno : -EINVAL;
		goto cleanup;
	}
	skel->rodata->track_all = o->track_all;
	skel->rodata->block_rq_has_q = issue_has_q();
	rc = bpf_map__set_max_entries(skel->maps.tracked_cgroups, max_cg);
	if (!rc)
		rc = bpf_map__set_max_entries(skel->maps.hists, US_BLOCK_METRIC_NR * max_cg);
	if (!rc)
		rc = bpf_map__set_max_entries(skel->maps.io, max_cg);
	if (!rc)
		rc = bpf_map__set_max_entries(skel->maps.start, max_fl);
	if (!rc)
		rc = bpf_program__set_autoload(skel->progs.block_rq_insert_btf, !raw);
	if (!rc)
		rc = bpf_program__set_autoload(skel->progs.block_rq_issue_btf, !raw);
	if (!rc)
		rc = bpf_program__set_autoload(skel->progs.block_rq_complete_btf, !raw);
	if (!rc)
		rc = bpf_program__set_autoload(skel->progs.block_rq_insert_raw, raw);
	if (!rc)
		rc = bpf_program__set_autoload(skel->progs.block_rq_issue_raw, raw);
	if (!rc)
		rc = bpf_program__set_autoload(skel->progs.block_rq_complete_raw, raw);
	if (rc)
		goto cleanup;
	rc = block_bpf__load(skel);
	if (rc)
		goto cleanup;
	if (bpf_map__value_size(skel->maps.hists) != sizeof(struct us_hist)) {
		rc = -EPROTO;
		goto cleanup;
	}
	rc = block_bpf__attach(skel);
	if (rc)
		goto cleanup;
	b->skel = skel;
	b->raw_tp = raw;
	skel = NULL;
cleanup:
	block_bpf__destroy(skel);
	return rc;
}

struct load_ctx {
	struct us_block *b;
	const struct us_block_opts *o;
};

static int load_cb(void *ctx, bool raw)
{
	struct load_ctx *l = ctx;

	return load_and_attach(l->b, l->o, raw);
}

int us_block_open(const struct us_block_opts *opts, struct us_block **out,
		  char *err, size_t errlen)
{
	static const struct us_block_opts defaults;
	const struct us_block_opts *o = opts ? opts : &defaults;
	struct us_block *b;
	int rc;

	*out = NULL;
	b = calloc(1, sizeof(*b));
	if (b)
		b->cgs.entry_size = sizeof(struct entry);
	if (!b) {
		rc = -ENOMEM;
		snprintf(err, errlen, "block collector: out of memory");
		goto cleanup;
	}
	b->ncpus = libbpf_num_possible_cpus();
	if (b->ncpus <= 0) {
		rc = b->ncpus < 0 ? b->ncpus : -EINVAL;
		snprintf(err, errlen, "block collector: counting possible CPUs: %s",
			 strerror(-rc));
		goto cleanup;
	}
	/* the largest value read per CPU is a histogram */
	b->percpu = calloc((size_t)b->ncpus, sizeof(struct us_hist));
	if (!b->percpu) {
		rc = -ENOMEM;
		snprintf(err, errlen, "block collector: out of memory");
		goto cleanup;
	}

	rc = us_collector_load("block", o->force_raw_tp, load_cb, &(struct load_ctx){ b, o },
			      &b->raw_tp, b->fallback_reason, sizeof(b->fallback_reason),
			      err, errlen);
	if (rc)
		goto cleanup;
	*out = b;
	b = NULL;
cleanup:
	us_block_destroy(b);
	return rc;
}

const char *us_block_attach_mode(const struct us_block *b)
{
	return b->raw_tp ? "raw_tp" : "tp_btf";
}

const char *us_block_fallback_reason(const struct us_block *b)
{
	return b->raw_tp ? b->fallback_reason : "";
}

static struct entry *find_entry(const struct us_block *b, uint64_t cgid, size_t *pos)
{
	return us_cg_find(&b->cgs, cgid, pos);
}

static struct entry *add_entry(struct us_block *b, uint64_t cgid)
{
	return us_cg_add(&b->cgs, cgid);
}

static void remove_entry(struct us_block *b, size_t pos)
{
	us_cg_remove(&b->cgs, pos);
}

/* Sum one histogram key's per-CPU values into *total. -ENOENT if absent. */
static int read_hist(struct us_block *b, uint64_t cgid, uint32_t metric,
		     struct us_hist *total)
{
	struct us_block_key key = { .cgroup_id = cgid, .metric = metric };

	return us_percpu_hist_sum(bpf_map__fd(b->skel->maps.hists), &key, b->percpu, b->ncpus,
				  total);
}

/* Sum one cgroup's per-CPU io values into *total. -ENOENT if absent. */
static int read_io(struct us_block *b, uint64_t cgid, struct us_block_io *total)
{
	const struct us_block_io *slot = b->percpu;
	int rc;

	rc = bpf_map_lookup_elem(bpf_map__fd(b->skel->maps.io), &cgid, b->percpu);
	if (rc)
		return rc;
	memset(total, 0, sizeof(*total));
	for (int cpu = 0; cpu < b->ncpus; cpu++) {
		for (int d = 0; d < US_BLOCK_DIR_NR; d++) {
			total->bytes[d] += slot[cpu].bytes[d];
			total->ops[d] += slot[cpu].ops[d];
		}
	}
	return 0;
}

static void clear_percpu(struct us_block *b)
{
	memset(b->percpu, 0, (size_t)b->ncpus * sizeof(struct us_hist));
}

int us_block_track(struct us_block *b, uint64_t cgid)
{
	bool inserted[US_BLOCK_METRIC_NR] = { false };
	int hists_fd = bpf_map__fd(b->skel->maps.hists);
	int io_fd = bpf_map__fd(b->skel->maps.io);
	bool io_inserted = false, created = false;
	struct entry *e;
	size_t pos;
	uint8_t one = 1;
	int rc = 0;

	if (cgid == 0)
		return -EINVAL;
	e = find_entry(b, cgid, NULL);
	if (e && e->tracked)
		return 0;
	if (!e) {
		e = add_entry(b, cgid);
		if (!e)
			return -ENOMEM;
		created = true;
	}
	/* value keys first, so that a program that sees the cgroup as
	 * tracked always finds them */
	clear_percpu(b);
	for (uint32_t m = 0; m < US_BLOCK_METRIC_NR; m++) {
		struct us_block_key key = { .cgroup_id = cgid, .metric = m };

		rc = bpf_map_update_elem(hists_fd, &key, b->percpu, BPF_NOEXIST);
		if (rc && rc != -EEXIST)
			goto cleanup;
		inserted[m] = rc == 0;
		/* a new entry's interval starts now (the key may predate it in
		 * track_all mode); a discovered entry keeps its interval */
		if (created) {
			rc = read_hist(b, cgid, m, &e->seen[m]);
			if (rc)
				goto cleanup;
		}
		clear_percpu(b);
	}
	rc = bpf_map_update_elem(io_fd, &cgid, b->percpu, BPF_NOEXIST);
	if (rc && rc != -EEXIST)
		goto cleanup;
	io_inserted = rc == 0;
	if (created) {
		rc = read_io(b, cgid, &e->seen_io);
		if (rc)
			goto cleanup;
	}
	rc = bpf_map_update_elem(bpf_map__fd(b->skel->maps.tracked_cgroups), &cgid, &one,
				 BPF_ANY);
	if (rc)
		goto cleanup;
	e->tracked = true;
	return 0;
cleanup:
	for (uint32_t m = 0; m < US_BLOCK_METRIC_NR; m++) {
		struct us_block_key key = { .cgroup_id = cgid, .metric = m };

		if (inserted[m])
			bpf_map_delete_elem(hists_fd, &key);
	}
	if (io_inserted)
		bpf_map_delete_elem(io_fd, &cgid);
	if (created && find_entry(b, cgid, &pos))
		remove_entry(b, pos);
	return rc;
}

int us_block_untrack(struct us_block *b, uint64_t cgid)
{
	size_t pos;
	int rc;

	/* tracked set first: a program past the check then finds no key and
	 * counts hist_key_missing instead of recreating one */
	rc = bpf_map_delete_elem(bpf_map__fd(b->skel->maps.tracked_cgroups), &cgid);
	if (rc && rc != -ENOENT)
		goto cleanup;
	for (uint32_t m = 0; m < US_BLOCK_METRIC_NR; m++) {
		struct us_block_key key = { .cgroup_id = cgid, .metric = m };

		rc = bpf_map_delete_elem(bpf_map__fd(b->skel->maps.hists), &key);
		if (rc && rc != -ENOENT)
			goto cleanup;
	}
	rc = bpf_map_delete_elem(bpf_map__fd(b->skel->maps.io), &cgid);
	if (rc && rc != -ENOENT)
		goto cleanup;
	rc = 0;
	if (find_entry(b, cgid, &pos))
		remove_entry(b, pos);
cleanup:
	return rc;
}

/* Adopt cgroups whose keys the programs created (track_all mode). Bounded
 * by the map size so that a map churning under us cannot loop forever. The
 * io map has a key for every cgroup that has any key. */
static int discover(struct us_block *b)
{
	int fd = bpf_map__fd(b->skel->maps.io);
	uint32_t budget = 2 * bpf_map__max_entries(b->skel->maps.io);
	uint64_t key, next;
	int rc;

	for (rc = bpf_map_get_next_key(fd, NULL, &next); rc == 0 && budget--;
	     rc = bpf_map_get_next_key(fd, &key, &next)) {
		key = next;
		if (!find_entry(b, key, NULL) && !add_entry(b, key))
			return -ENOMEM;
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

int us_block_drain(struct us_block *b, us_block_visit_fn fn, void *ctx)
{
	struct us_block_cgroup_stats *st = &b->out;
	struct us_hist *dst[US_BLOCK_METRIC_NR] = {
		[US_BLOCK_LAT_READ] = &st->read_latency_ns,
		[US_BLOCK_LAT_WRITE] = &st->write_latency_ns,
	};
	struct us_block_io io;
	int rc;

	rc = discover(b);
	if (rc)
		goto cleanup;
	for (size_t i = 0; i < b->cgs.n; i++) {
		struct entry *e = b->cgs.entries[i];
		unsigned int missing = 0;

		st->cgroup_id = e->cgroup_id;
		st->tracked = e->tracked;
		for (uint32_t m = 0; m < US_BLOCK_METRIC_NR; m++) {
			rc = read_hist(b, e->cgroup_id, m, &b->total);
			if (rc == -ENOENT) {
				/* not created yet (track_all) or untracked under us */
				us_hist_reset(&b->total);
				missing++;
			} else if (rc) {
				goto cleanup;
			}
			interval(&b->total, &e->seen[m], dst[m]);
			e->seen[m] = b->total;
		}
		rc = read_io(b, e->cgroup_id, &io);
		if (rc == -ENOENT) {
			memset(&io, 0, sizeof(io));
			missing++;
		} else if (rc) {
			goto cleanup;
		}
		st->read_bytes = delta(io.bytes[US_BLOCK_READ], e->seen_io.bytes[US_BLOCK_READ]);
		st->write_bytes = delta(io.bytes[US_BLOCK_WRITE], e->seen_io.bytes[US_BLOCK_WRITE]);
		st->read_ops = delta(io.ops[US_BLOCK_READ], e->seen_io.ops[US_BLOCK_READ]);
		st->write_ops = delta(io.ops[US_BLOCK_WRITE], e->seen_io.ops[US_BLOCK_WRITE]);
		e->seen_io = io;
		if (!e->tracked && missing == US_BLOCK_METRIC_NR + 1) {
			/* a discovered cgroup whose keys are gone */
			remove_entry(b, i--);
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

int us_block_counters(struct us_block *b, struct us_block_counters *out)
{
	uint64_t sum[US_BLOCK_CNT_NR] = { 0 };
	const uint64_t *v = b->percpu; /* ncpus x 8 bytes fit easily */
	int rc = 0;

	for (uint32_t slot = 0; slot < US_BLOCK_CNT_NR; slot++) {
		rc = bpf_map_lookup_elem(bpf_map__fd(b->skel->maps.counters), &slot, b->percpu);
		if (rc)
			goto cleanup;
		for (int cpu = 0; cpu < b->ncpus; cpu++)
			sum[slot] += v[cpu];
	}
	out->start_map_full = sum[US_BLOCK_CNT_START_FULL];
	out->hist_map_full = sum[US_BLOCK_CNT_HIST_FULL];
	out->hist_key_missing = sum[US_BLOCK_CNT_HIST_MISSING];
cleanup:
	return rc;
}

int us_block_prog_fds(const struct us_block *b, int *fds, const char **names, int max)
{
	return us_collector_prog_fds(b->skel->obj, fds, names, max);
}

void us_block_destroy(struct us_block *b)
{
	if (!b)
		return;
	block_bpf__destroy(b->skel);
	us_cg_table_free(&b->cgs);
	free(b->percpu);
	free(b);
}
