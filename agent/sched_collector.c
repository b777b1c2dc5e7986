/* Owns the sched BPF skeleton of one collector: loading it (tp_btf, falling
 * back to raw_tp), the tracked_cgroups set, and turning the per-CPU
 * cumulative histograms into per-interval figures.
 *
 * Read/reset race: the kernel histograms are never reset. Reading a per-CPU
 * value and then zeroing it would lose every sample recorded between the
 * read and the write, and no syscall makes the pair atomic. Instead the
 * kernel values are cumulative and monotonic, user space keeps the totals it
 * saw at the previous drain, and an interval is the difference. No sample is
 * lost or counted twice; a sample being written while it is read shows up in
 * this interval or the next. Because the read of a value is not atomic with
 * the program's three stores (bucket, sum, count), the interval count is
 * recomputed from the bucket deltas, so count always equals the sum of the
 * buckets (the wire form checks this); the sum may lag by the samples in
 * flight and catches up in the next interval. */
#include "sched_collector.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "../bpf/sched.h"
#include "bpf_collector.h"
#include "bpf_env.h"
#include "sched.skel.h"

/* the BPF value (struct us_bpf_hist) is read as a struct us_hist */
_Static_assert(sizeof(struct us_hist) == (2 + US_HIST_BUCKETS) * sizeof(uint64_t),
	       "struct us_hist must match struct us_bpf_hist");

struct entry {
	uint64_t cgroup_id;		/* first: the key of struct us_cg_table */
	bool tracked;
	/* kernel totals (all CPUs) at the last drain, per metric */
	struct us_hist seen[US_SCHED_METRIC_NR];
};

struct us_sched {
	struct sched_bpf *skel;
	bool raw_tp;
	char fallback_reason[256];
	int ncpus;
	void *percpu;			/* ncpus value slots: lookup/insert buffer */
	struct us_hist total;		/* scratch: one key summed over CPUs */
	struct us_sched_cgroup_stats out; /* scratch handed to the visitor */
	struct us_cg_table cgs;		/* struct entry, by cgroup */
};

static int load_and_attach(struct us_sched *s, const struct us_sched_opts *o, bool raw)
{
	uint32_t max_cg = o->max_cgroups ? o->max_cgroups : US_SCHED_MAX_CGROUPS;
	uint32_t max_run = o->max_runnable ? o->max_runnable : US_SCHED_MAX_RUNNABLE;
	struct sched_bpf *skel;
	bool task_storage;
	int rc;

	skel = sched_bpf__open();
	if (!skel) {
		rc = errno ? -errno : -EINVAL;
		goto cleanup;
	}
	skel->rodata->track_all = o->track_all;
	/* tp_btf programs keep stamps in task local storage when the kernel
	 * has it (v5.11); raw_tp programs and older kernels use the wakeup_ts
	 * hash, which is then the only one worth sizing. A map type the
	 * kernel lacks is not created at all. */
	task_storage = !raw && libbpf_probe_bpf_map_type(BPF_MAP_TYPE_TASK_STORAGE, NULL) == 1;
	skel->rodata->use_task_storage = task_storage;
	rc = bpf_map__set_max_entries(skel->maps.tracked_cgroups, max_cg);
	if (!rc)
		rc = bpf_map__set_max_entries(skel->maps.hists, US_SCHED_METRIC_NR * max_cg);
	if (!rc)
		rc = bpf_map__set_max_entries(skel->maps.wakeup_ts, task_storage ? 1 : max_run);
	if (!rc && !task_storage)
		rc = bpf_map__set_autocreate(skel->maps.task_stamp, false);
	if (!rc)
		rc = bpf_program__set_autoload(skel->progs.sched_wakeup_btf, !raw);
	if (!rc)
		rc = bpf_program__set_autoload(skel->progs.sched_wakeup_new_btf, !raw);
	if (!rc)
		rc = bpf_program__set_autoload(skel->progs.sched_switch_btf, !raw);
	if (!rc)
		rc = bpf_program__set_autoload(skel->progs.sched_wakeup_raw, raw);
	if (!rc)
		rc = bpf_program__set_autoload(skel->progs.sched_wakeup_new_raw, raw);
	if (!rc)
		rc = bpf_program__set_autoload(skel->progs.sched_switch_raw, raw);
	if (rc)
		goto cleanup;
	rc = sched_bpf__load(skel);
	if (rc)
		goto cleanup;
	if (bpf_map__value_size(skel->maps.hists) != sizeof(struct us_hist)) {
		rc = -EPROTO;
		goto cleanup;
	}
	rc = sched_bpf__attach(skel);
	if (rc)
		goto cleanup;
	s->skel = skel;
	s->raw_tp = raw;
	skel = NULL;
cleanup:
	sched_bpf__destroy(skel);
	return rc;
}

struct load_ctx {
	struct us_sched *s;
	const struct us_sched_opts *o;
};

static int load_cb(void *ctx, bool raw)
{
	struct load_ctx *l = ctx;

	return load_and_attach(l->s, l->o, raw);
}

int us_sched_open(const struct us_sched_opts *opts, struct us_sched **out,
		  char *err, size_t errlen)
{
	static const struct us_sched_opts defaults;
	const struct us_sched_opts *o = opts ? opts : &defaults;
	struct us_sched *s;
	int rc;

	*out = NULL;
	s = calloc(1, sizeof(*s));
	if (s)
		s->cgs.entry_size = sizeof(struct entry);
	if (!s) {
		rc = -ENOMEM;
		snprintf(err, errlen, "sched collector: out of memory");
		goto cleanup;
	}
	s->ncpus = libbpf_num_possible_cpus();
	if (s->ncpus <= 0) {
		rc = s->ncpus < 0 ? s->ncpus : -EINVAL;
		snprintf(err, errlen, "sched collector: counting possible CPUs: %s",
			 strerror(-rc));
		goto cleanup;
	}
	s->percpu = calloc((size_t)s->ncpus, sizeof(struct us_hist));
	if (!s->percpu) {
		rc = -ENOMEM;
		snprintf(err, errlen, "sched collector: out of memory");
		goto cleanup;
	}

	rc = us_collector_load("sched", o->force_raw_tp, load_cb, &(struct load_ctx){ s, o },
			      &s->raw_tp, s->fallback_reason, sizeof(s->fallback_reason),
			      err, errlen);
	if (rc)
		goto cleanup;
	*out = s;
	s = NULL;
cleanup:
	us_sched_destroy(s);
	return rc;
}

const char *us_sched_attach_mode(const struct us_sched *s)
{
	return s->raw_tp ? "raw_tp" : "tp_btf";
}

const char *us_sched_fallback_reason(const struct us_sched *s)
{
	return s->raw_tp ? s->fallback_reason : "";
}

static struct entry *find_entry(const struct us_sched *s, uint64_t cgid, size_t *pos)
{
	return us_cg_find(&s->cgs, cgid, pos);
}

static struct entry *add_entry(struct us_sched *s, uint64_t cgid)
{
	return us_cg_add(&s->cgs, cgid);
}

static void remove_entry(struct us_sched *s, size_t pos)
{
	us_cg_remove(&s->cgs, pos);
}

/* Sum one key's per-CPU values into *total. -ENOENT if the key is absent. */
static int read_total(struct us_sched *s, uint64_t cgid, uint32_t metric,
		      struct us_hist *total)
{
	struct us_sched_key key = { .cgroup_id = cgid, .metric = metric };

	return us_percpu_hist_sum(bpf_map__fd(s->skel->maps.hists), &key, s->percpu, s->ncpus,
				  total);
}

int us_sched_track(struct us_sched *s, uint64_t cgid)
{
	bool inserted[US_SCHED_METRIC_NR] = { false };
	int hists_fd = bpf_map__fd(s->skel->maps.hists);
	struct entry *e;
	bool created = false;
	size_t pos;
	uint8_t one = 1;
	int rc = 0;

	if (cgid == 0)
		return -EINVAL;
	e = find_entry(s, cgid, NULL);
	if (e && e->tracked)
		return 0;
	if (!e) {
		e = add_entry(s, cgid);
		if (!e)
			return -ENOMEM;
		created = true;
	}
	/* histogram keys first, so that a program that sees the cgroup as
	 * tracked always finds them */
	memset(s->percpu, 0, (size_t)s->ncpus * sizeof(struct us_hist));
	for (uint32_t m = 0; m < US_SCHED_METRIC_NR; m++) {
		struct us_sched_key key = { .cgroup_id = cgid, .metric = m };

		rc = bpf_map_update_elem(hists_fd, &key, s->percpu, BPF_NOEXIST);
		if (rc && rc != -EEXIST)
			goto cleanup;
		inserted[m] = rc == 0;
		/* a new entry's interval starts now (the key may predate it in
		 * track_all mode); a discovered entry keeps its interval */
		if (created) {
			rc = read_total(s, cgid, m, &e->seen[m]);
			if (rc)
				goto cleanup;
		}
		memset(s->percpu, 0, (size_t)s->ncpus * sizeof(struct us_hist));
	}
	rc = bpf_map_update_elem(bpf_map__fd(s->skel->maps.tracked_cgroups), &cgid, &one,
				 BPF_ANY);
	if (rc)
		goto cleanup;
	e->tracked = true;
	return 0;
cleanup:
	for (uint32_t m = 0; m < US_SCHED_METRIC_NR; m++) {
		struct us_sched_key key = { .cgroup_id = cgid, .metric = m };

		if (inserted[m])
			bpf_map_delete_elem(hists_fd, &key);
	}
	if (created && find_entry(s, cgid, &pos))
		remove_entry(s, pos);
	return rc;
}

int us_sched_untrack(struct us_sched *s, uint64_t cgid)
{
	size_t pos;
	int rc;

	/* tracked set first: a program past the check then finds no key and
	 * counts hist_key_missing instead of recreating one */
	rc = bpf_map_delete_elem(bpf_map__fd(s->skel->maps.tracked_cgroups), &cgid);
	if (rc && rc != -ENOENT)
		goto cleanup;
	for (uint32_t m = 0; m < US_SCHED_METRIC_NR; m++) {
		struct us_sched_key key = { .cgroup_id = cgid, .metric = m };

		rc = bpf_map_delete_elem(bpf_map__fd(s->skel->maps.hists), &key);
		if (rc && rc != -ENOENT)
			goto cleanup;
	}
	rc = 0;
	if (find_entry(s, cgid, &pos))
		remove_entry(s, pos);
cleanup:
	return rc;
}

/* Adopt cgroups whose keys the programs created (track_all mode). Bounded
 * by the map size so that a map churning under us cannot loop forever. */
static int discover(struct us_sched *s)
{
	int fd = bpf_map__fd(s->skel->maps.hists);
	uint32_t budget = 2 * bpf_map__max_entries(s->skel->maps.hists);
	struct us_sched_key key, next;
	int rc;

	for (rc = bpf_map_get_next_key(fd, NULL, &next); rc == 0 && budget--;
	     rc = bpf_map_get_next_key(fd, &key, &next)) {
		key = next;
		if (!find_entry(s, key.cgroup_id, NULL) && !add_entry(s, key.cgroup_id))
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

int us_sched_drain(struct us_sched *s, us_sched_visit_fn fn, void *ctx)
{
	struct us_sched_cgroup_stats *st = &s->out;
	struct us_hist *dst[US_SCHED_METRIC_NR] = {
		[US_SCHED_RUNQ_LAT] = &st->runq_latency_ns,
		[US_SCHED_ONCPU] = &st->oncpu_slice_ns,
	};
	int rc;

	rc = discover(s);
	if (rc)
		goto cleanup;
	for (size_t i = 0; i < s->cgs.n; i++) {
		struct entry *e = s->cgs.entries[i];
		unsigned int missing = 0;

		st->cgroup_id = e->cgroup_id;
		st->tracked = e->tracked;
		for (uint32_t m = 0; m < US_SCHED_METRIC_NR; m++) {
			rc = read_total(s, e->cgroup_id, m, &s->total);
			if (rc == -ENOENT) {
				/* not created yet (track_all) or untracked under us */
				us_hist_reset(&s->total);
				missing++;
			} else if (rc) {
				goto cleanup;
			}
			interval(&s->total, &e->seen[m], dst[m]);
			e->seen[m] = s->total;
		}
		st->oncpu_ns = st->oncpu_slice_ns.sum;
		if (!e->tracked && missing == US_SCHED_METRIC_NR) {
			/* a discovered cgroup whose keys are gone */
			remove_entry(s, i--);
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

int us_sched_counters(struct us_sched *s, struct us_sched_counters *out)
{
	uint64_t sum[US_SCHED_CNT_NR] = { 0 };
	const uint64_t *v = s->percpu; /* ncpus x 8 bytes fit easily */
	int rc = 0;

	for (uint32_t slot = 0; slot < US_SCHED_CNT_NR; slot++) {
		rc = bpf_map_lookup_elem(bpf_map__fd(s->skel->maps.counters), &slot, s->percpu);
		if (rc)
			goto cleanup;
		for (int cpu = 0; cpu < s->ncpus; cpu++)
			sum[slot] += v[cpu];
	}
	out->start_map_full = sum[US_SCHED_CNT_START_FULL];
	out->hist_map_full = sum[US_SCHED_CNT_HIST_FULL];
	out->hist_key_missing = sum[US_SCHED_CNT_HIST_MISSING];
	out->stamp_refused = sum[US_SCHED_CNT_STAMP_REFUSED];
cleanup:
	return rc;
}

int us_sched_prog_fds(const struct us_sched *s, int *fds, const char **names, int max)
{
	return us_collector_prog_fds(s->skel->obj, fds, names, max);
}

void us_sched_destroy(struct us_sched *s)
{
	if (!s)
		return;
	sched_bpf__destroy(s->skel);
	us_cg_table_free(&s->cgs);
	free(s->percpu);
	free(s);
}
