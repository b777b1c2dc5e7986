/* Log-linear histograms in user space: recording, merging, quantiles and the
 * conversion to and from the sparse wire form. One implementation for the
 * agent, the coordinator and the CLI so that every quantile agrees. */
#ifndef US_HIST_H
#define US_HIST_H

#include <stddef.h>
#include <stdint.h>

#include "hist_scheme.h"
#include "understudy.pb-c.h"

struct us_hist {
	uint64_t count;
	uint64_t sum;
	uint64_t buckets[US_HIST_BUCKETS];
};

void us_hist_reset(struct us_hist *h);
void us_hist_record(struct us_hist *h, uint64_t value);
void us_hist_record_n(struct us_hist *h, uint64_t value, uint64_t n);
void us_hist_merge(struct us_hist *into, const struct us_hist *from);
uint64_t us_hist_bucket_lower(unsigned int index);
uint64_t us_hist_bucket_upper(unsigned int index); /* inclusive */
/* Value at quantile q in [0,1]: the midpoint of the bucket holding the rank,
 * so the error is at most half a bucket. 0 for an empty histogram. */
double us_hist_quantile(const struct us_hist *h, double q);
double us_hist_mean(const struct us_hist *h);

/* Sparse wire form (indices delta-coded, see understudy.proto). to_proto allocates the index/count arrays (free with
 * us_hist_proto_free_arrays); from_proto validates and returns -1 with a
 * reason in err on an out-of-range index, unsorted indices, a length mismatch,
 * a foreign bucket scheme or counts that do not add up. */
int us_hist_to_proto(const struct us_hist *h, Understudy__Histogram *out);
void us_hist_proto_free_arrays(Understudy__Histogram *p);
int us_hist_proto_validate(const Understudy__Histogram *p, char *err, size_t errlen);
int us_hist_from_proto(const Understudy__Histogram *p, struct us_hist *out,
		       char *err, size_t errlen);

#endif
