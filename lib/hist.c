/* Log-linear histogram arithmetic and the sparse wire conversion. */
#include "hist.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void us_hist_reset(struct us_hist *h)
{
	memset(h, 0, sizeof(*h));
}

void us_hist_record_n(struct us_hist *h, uint64_t value, uint64_t n)
{
	h->buckets[us_hist_index(value)] += n;
	h->count += n;
	h->sum += value * n;
}

void us_hist_record(struct us_hist *h, uint64_t value)
{
	us_hist_record_n(h, value, 1);
}

void us_hist_merge(struct us_hist *into, const struct us_hist *from)
{
	for (unsigned int i = 0; i < US_HIST_BUCKETS; i++)
		into->buckets[i] += from->buckets[i];
	into->count += from->count;
	into->sum += from->sum;
}

uint64_t us_hist_bucket_lower(unsigned int index)
{
	unsigned int e, sub;

	if (index < 2 * US_HIST_SUB_COUNT)
		return index;
	e = index / US_HIST_SUB_COUNT + US_HIST_SUB_BITS - 1;
	sub = index % US_HIST_SUB_COUNT;
	return (uint64_t)(US_HIST_SUB_COUNT + sub) << (e - US_HIST_SUB_BITS);
}

uint64_t us_hist_bucket_upper(unsigned int index)
{
	if (index + 1 >= US_HIST_BUCKETS)
		return UINT64_MAX;
	return us_hist_bucket_lower(index + 1) - 1;
}

double us_hist_quantile(const struct us_hist *h, double q)
{
	uint64_t rank, seen = 0;
	double want;

	if (h->count == 0)
		return 0.0;
	if (!(q > 0.0))          /* also NaN */
		q = 0.0;
	if (q > 1.0)
		q = 1.0;
	/* rank of the smallest value v with P(X <= v) >= q, 1-based; the
	 * double is only an estimate near 2^53 and beyond, so the integer
	 * rank is clamped to [1, count] */
	want = q * (double)h->count;
	rank = want < 0x1p64 ? (uint64_t)want : h->count;
	if ((double)rank < want)
		rank++;
	if (rank == 0)
		rank = 1;
	if (rank > h->count || q >= 1.0)
		rank = h->count;
	for (unsigned int i = 0; i < US_HIST_BUCKETS; i++) {
		seen += h->buckets[i];
		if (seen >= rank) {
			double lo = (double)us_hist_bucket_lower(i);
			double hi = (double)us_hist_bucket_upper(i);
			return lo + (hi - lo) / 2.0;
		}
	}
	return (double)us_hist_bucket_upper(US_HIST_BUCKETS - 1);
}

double us_hist_mean(const struct us_hist *h)
{
	return h->count ? (double)h->sum / (double)h->count : 0.0;
}

int us_hist_to_proto(const struct us_hist *h, Understudy__Histogram *out)
{
	size_t n = 0, j = 0;

	for (unsigned int i = 0; i < US_HIST_BUCKETS; i++)
		n += h->buckets[i] != 0;
	out->sub_bucket_bits = US_HIST_SUB_BITS;
	out->count = h->count;
	out->sum = h->sum;
	out->n_bucket_index = out->n_bucket_count = n;
	out->bucket_index = NULL;
	out->bucket_count = NULL;
	if (n == 0)
		return 0;
	out->bucket_index = malloc(n * sizeof(*out->bucket_index));
	out->bucket_count = malloc(n * sizeof(*out->bucket_count));
	if (!out->bucket_index || !out->bucket_count) {
		us_hist_proto_free_arrays(out);
		return -1;
	}
	for (unsigned int i = 0, prev = 0; i < US_HIST_BUCKETS; i++) {
		if (!h->buckets[i])
			continue;
		out->bucket_index[j] = i - prev;
		out->bucket_count[j] = h->buckets[i];
		prev = i;
		j++;
	}
	return 0;
}

void us_hist_proto_free_arrays(Understudy__Histogram *p)
{
	free(p->bucket_index);
	free(p->bucket_count);
	p->bucket_index = NULL;
	p->bucket_count = NULL;
	p->n_bucket_index = p->n_bucket_count = 0;
}

int us_hist_proto_validate(const Understudy__Histogram *p, char *err, size_t errlen)
{
	uint64_t total = 0;

	if (p->sub_bucket_bits != US_HIST_SUB_BITS) {
		snprintf(err, errlen, "histogram %s: sub_bucket_bits %u, expected %u",
			 p->metric, p->sub_bucket_bits, US_HIST_SUB_BITS);
		return -1;
	}
	if (p->n_bucket_index != p->n_bucket_count) {
		snprintf(err, errlen, "histogram %s: %zu bucket indices but %zu counts",
			 p->metric, p->n_bucket_index, p->n_bucket_count);
		return -1;
	}
	for (size_t i = 0, idx = 0; i < p->n_bucket_index; i++) {
		if (i > 0 && p->bucket_index[i] == 0) {
			snprintf(err, errlen, "histogram %s: bucket indices not ascending at %zu",
				 p->metric, i);
			return -1;
		}
		idx += p->bucket_index[i];
		if (idx >= US_HIST_BUCKETS) {
			snprintf(err, errlen, "histogram %s: bucket index %zu out of range",
				 p->metric, idx);
			return -1;
		}
		if (__builtin_add_overflow(total, p->bucket_count[i], &total)) {
			snprintf(err, errlen, "histogram %s: bucket counts overflow", p->metric);
			return -1;
		}
	}
	if (total != p->count) {
		snprintf(err, errlen, "histogram %s: buckets add up to %llu, count says %llu",
			 p->metric, (unsigned long long)total, (unsigned long long)p->count);
		return -1;
	}
	return 0;
}

int us_hist_from_proto(const Understudy__Histogram *p, struct us_hist *out,
		       char *err, size_t errlen)
{
	us_hist_reset(out);
	if (us_hist_proto_validate(p, err, errlen) < 0)
		return -1;
	for (size_t i = 0, idx = 0; i < p->n_bucket_index; i++) {
		idx += p->bucket_index[i];
		out->buckets[idx] = p->bucket_count[i];
	}
	out->count = p->count;
	out->sum = p->sum;
	return 0;
}
