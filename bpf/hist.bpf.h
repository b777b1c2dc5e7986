/* Recording into a log-linear histogram held in a BPF map value.
 * struct us_bpf_hist has exactly the layout of struct us_hist (lib/hist.h),
 * and the bucket index comes from lib/hist_scheme.h, so user space reads a
 * map value as a struct us_hist and merges it without conversion. */
#ifndef US_HIST_BPF_H
#define US_HIST_BPF_H

#include <vmlinux.h>
#include <bpf/bpf_helpers.h>

#include "hist_scheme.h"

struct us_bpf_hist {
	__u64 count;
	__u64 sum;
	__u64 buckets[US_HIST_BUCKETS];
};

static __always_inline __u32 us_hist_bpf_slot(__u64 v)
{
	__u32 idx = us_hist_index(v);

	/* the scheme never exceeds the last bucket; the clamp is for the
	 * verifier, and barrier_var keeps clang from dropping it */
	barrier_var(idx);
	if (idx >= US_HIST_BUCKETS)
		idx = US_HIST_BUCKETS - 1;
	return idx;
}

/* For values of PER-CPU maps: only this CPU writes the slot, and tracing
 * programs do not nest on a CPU, so plain increments are exact. */
static __always_inline void us_hist_bpf_record(struct us_bpf_hist *h, __u64 v)
{
	h->buckets[us_hist_bpf_slot(v)]++;
	h->sum += v;
	h->count++;
}

/* For values of maps shared by all CPUs. */
static __always_inline void us_hist_bpf_record_atomic(struct us_bpf_hist *h, __u64 v)
{
	__sync_fetch_and_add(&h->buckets[us_hist_bpf_slot(v)], 1);
	__sync_fetch_and_add(&h->sum, v);
	__sync_fetch_and_add(&h->count, 1);
}

/* Look a key up, inserting `init` first if it is absent (as in libbpf-tools'
 * maps.bpf.h). Returns NULL if the insert failed for another reason than a
 * concurrent insert of the same key, i.e. when the map is full. */
static __always_inline void *us_map_lookup_or_try_init(void *map, const void *key,
							 const void *init)
{
	void *val;
	long err;

	val = bpf_map_lookup_elem(map, key);
	if (val)
		return val;
	err = bpf_map_update_elem(map, key, init, BPF_NOEXIST);
	if (err && err != -17 /* -EEXIST */)
		return NULL;
	return bpf_map_lookup_elem(map, key);
}

#endif
