/* Shared mechanics of the BPF collectors: tp_btf/raw_tp loading, per-CPU sums,
 * program fds. */
#include "bpf_collector.h"

#include <stdlib.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "bpf_env.h"

int us_collector_load(const char *name, bool force_raw_tp, us_collector_load_fn load,
		      void *ctx, bool *raw_tp, char *reason, size_t reasonlen,
		      char *err, size_t errlen)
{
	bool try_btf = !force_raw_tp && us_bpf_env_has_kernel_btf();
	int rc = -ENOENT;

	reason[0] = '\0';
	*raw_tp = false;
	if (try_btf) {
		rc = load(ctx, false);
		if (rc)
			snprintf(reason, reasonlen,
				 "tp_btf programs failed to load or attach (%s); using raw_tp",
				 strerror(-rc));
	} else {
		snprintf(reason, reasonlen, "%s", force_raw_tp ? "raw_tp requested" :
			 "no kernel BTF (/sys/kernel/btf/vmlinux); using raw_tp");
	}
	if (rc) {
		*raw_tp = true;
		rc = load(ctx, true);
	}
	if (rc)
		snprintf(err, errlen, "%s collector: loading and attaching %s: %s%s%s", name,
			 try_btf ? "tp_btf and raw_tp programs" : "raw_tp programs",
			 strerror(-rc), reason[0] ? "; " : "", reason);
	return rc;
}

int us_percpu_hist_sum(int map_fd, const void *key, struct us_hist *scratch, int ncpus,
		       struct us_hist *total)
{
	int rc = bpf_map_lookup_elem(map_fd, key, scratch);

	if (rc)
		return rc;
	us_hist_reset(total);
	for (int cpu = 0; cpu < ncpus; cpu++)
		us_hist_merge(total, &scratch[cpu]);
	return 0;
}

int us_collector_prog_fds(struct bpf_object *obj, int *fds, const char **names, int max)
{
	struct bpf_program *p;
	int n = 0;

	bpf_object__for_each_program(p, obj) {
		int fd = bpf_program__fd(p);

		/* the tp_btf or raw_tp twin not in use was never loaded */
		if (fd < 0 || n >= max)
			continue;
		fds[n] = fd;
		names[n++] = bpf_program__name(p);
	}
	return n;
}

void *us_cg_find(const struct us_cg_table *t, uint64_t cgid, size_t *pos)
{
	for (size_t i = 0; i < t->n; i++) {
		if (*(const uint64_t *)t->entries[i] == cgid) {
			if (pos)
				*pos = i;
			return t->entries[i];
		}
	}
	return NULL;
}

void *us_cg_add(struct us_cg_table *t, uint64_t cgid)
{
	void *e;

	if (t->n == t->cap) {
		size_t cap = t->cap ? 2 * t->cap : 16;
		void **v = realloc(t->entries, cap * sizeof(*v));

		if (!v)
			return NULL;
		t->entries = v;
		t->cap = cap;
	}
	e = calloc(1, t->entry_size);
	if (!e)
		return NULL;
	*(uint64_t *)e = cgid;
	t->entries[t->n++] = e;
	return e;
}

void us_cg_remove(struct us_cg_table *t, size_t pos)
{
	free(t->entries[pos]);
	t->entries[pos] = t->entries[--t->n];
}

void us_cg_table_free(struct us_cg_table *t)
{
	for (size_t i = 0; i < t->n; i++)
		free(t->entries[i]);
	free(t->entries);
	t->entries = NULL;
	t->n = t->cap = 0;
}
