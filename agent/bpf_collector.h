/* What every BPF collector (sched, block, tcp) does the same way: load its
 * programs as tp_btf and fall back to their raw_tp twins, and sum a per-CPU
 * histogram map value across CPUs, list the programs loaded. */
#ifndef US_BPF_COLLECTOR_H
#define US_BPF_COLLECTOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hist.h"

struct bpf_object;

/* Loads and attaches the collector's programs, raw_tp twins if raw_tp;
 * returns 0 or a negative errno. */
typedef int (*us_collector_load_fn)(void *ctx, bool raw_tp);

/* Tries tp_btf (unless force_raw_tp or the kernel has no BTF), then raw_tp.
 * *raw_tp says which loaded; reason says why raw_tp is in use ("" if not).
 * On failure err names the collector and both causes. */
int us_collector_load(const char *name, bool force_raw_tp, us_collector_load_fn load,
		      void *ctx, bool *raw_tp, char *reason, size_t reasonlen,
		      char *err, size_t errlen);

/* The cgroups a collector reports on: entries of the collector's own struct,
 * whose first member is the uint64_t cgroup id, allocated entry_size bytes
 * zeroed. Lookups are linear: a collector tracks tens of cgroups. */
struct us_cg_table {
	void **entries;
	size_t n, cap;
	size_t entry_size;
};

/* The entry of cgid (and its position when pos is given), or NULL. */
void *us_cg_find(const struct us_cg_table *t, uint64_t cgid, size_t *pos);
/* A new zeroed entry for cgid; NULL when out of memory. */
void *us_cg_add(struct us_cg_table *t, uint64_t cgid);
/* Frees the entry at pos; the last entry takes its place. */
void us_cg_remove(struct us_cg_table *t, size_t pos);
void us_cg_table_free(struct us_cg_table *t);

/* Sums the per-CPU values of key in a per-CPU histogram map into *total;
 * scratch holds ncpus histograms. -ENOENT (or another error) if absent. */
int us_percpu_hist_sum(int map_fd, const void *key, struct us_hist *scratch, int ncpus,
		       struct us_hist *total);

/* The fds and names of obj's loaded programs, at most max; returns how many.
 * Programs not loaded (the tp_btf or raw_tp twin not in use) are left out. */
int us_collector_prog_fds(struct bpf_object *obj, int *fds, const char **names, int max);

#endif
