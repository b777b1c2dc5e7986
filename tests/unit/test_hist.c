/* Unit tests for lib/hist_scheme.h and lib/hist: the log-linear bucket scheme
 * (bounds, monotonicity, reachability, width), quantile accuracy against exact
 * quantiles of seeded random samples, lossless merging, and the sparse wire
 * form (round trip and every refusal of us_hist_proto_validate). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hist.h"

#define METRIC "run_queue_latency_ns"

/* ---- deterministic RNG (splitmix64) ---------------------------------- */

static uint64_t rng_state;

static void rng_seed(uint64_t s)
{
	rng_state = s;
}

static uint64_t rng_u64(void)
{
	uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

/* uniform in [0, 1) with 53 random bits */
static double rng_unit(void)
{
	return (double)(rng_u64() >> 11) * 0x1.0p-53;
}

/* a value whose bit length is itself uniform, so every octave is hit */
static uint64_t rng_any_scale(void)
{
	return rng_u64() >> (rng_u64() % 64);
}

/* a double sample as a u64 value, clamped (the conversion is UB outside) */
static uint64_t to_u64(double x)
{
	if (!(x > 0.0))
		return 0;
	if (x >= 0x1.0p64)
		return UINT64_MAX;
	return (uint64_t)x;
}

static double rng_normal(void)
{
	double u1 = rng_unit(), u2 = rng_unit();

	if (u1 < 1e-300)
		u1 = 1e-300;
	return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

/* ---- helpers ----------------------------------------------------------- */

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Histograms (15 KiB each) and sample arrays live in static storage so that
 * a failing assertion, which longjmps out of the test, leaks nothing. Slots
 * 0-4 are for test bodies, 5-7 for the helpers they call. */
static struct us_hist slots[8];
static uint64_t samples_buf[200000];

static struct us_hist *hist_slot(unsigned int i)
{
	us_hist_reset(&slots[i]);
	return &slots[i];
}

static void check_bucket_of(uint64_t v)
{
	unsigned int idx = us_hist_index(v);

	if (idx >= US_HIST_BUCKETS)
		fail_msg("value %llu: index %u out of range", (unsigned long long)v, idx);
	if (us_hist_bucket_lower(idx) > v || us_hist_bucket_upper(idx) < v)
		fail_msg("value %llu in bucket %u = [%llu, %llu]", (unsigned long long)v, idx,
			 (unsigned long long)us_hist_bucket_lower(idx),
			 (unsigned long long)us_hist_bucket_upper(idx));
}

/* ---- the bucket scheme ------------------------------------------------- */

static void test_scheme_constants(void **state)
{
	assert_int_equal(US_HIST_SUB_BITS, 5);
	assert_int_equal(US_HIST_SUB_COUNT, 32);
	/* 64 exact buckets for 0..63, then 32 per octave for exponents 6..63 */
	assert_int_equal(US_HIST_BUCKETS, 64 + 58 * 32);
	assert_int_equal(us_hist_index(0), 0);
	assert_int_equal(us_hist_index(UINT64_MAX), US_HIST_BUCKETS - 1);
	assert_int_equal(us_hist_bucket_lower(0), 0);
	assert_true(us_hist_bucket_upper(US_HIST_BUCKETS - 1) == UINT64_MAX);
}

static void test_log2(void **state)
{
	for (unsigned int k = 0; k < 64; k++) {
		uint64_t p = 1ull << k;

		assert_int_equal(us_hist_log2(p), k);
		assert_int_equal(us_hist_log2(p | (p - 1)), k); /* 2^(k+1) - 1 */
		if (k > 0)
			assert_int_equal(us_hist_log2(p + 1), k);
	}
	rng_seed(1);
	for (int i = 0; i < 100000; i++) {
		uint64_t v = rng_any_scale() | 1;

		assert_int_equal(us_hist_log2(v), 63 - __builtin_clzll(v));
	}
}

static void test_small_values_exact_and_bounded(void **state)
{
	for (uint64_t v = 0; v < 4096; v++) {
		check_bucket_of(v);
		if (v < 64) {
			assert_int_equal(us_hist_index(v), v);
			assert_true(us_hist_bucket_lower((unsigned)v) == v);
			assert_true(us_hist_bucket_upper((unsigned)v) == v);
		}
	}
}

static void test_powers_of_two_bounded(void **state)
{
	for (unsigned int k = 0; k < 64; k++) {
		uint64_t p = 1ull << k;

		check_bucket_of(p - 1);
		check_bucket_of(p);
		check_bucket_of(p + 1);
		check_bucket_of(~0ull - p); /* near the top as well */
		/* a power of two >= 64 starts a bucket (sub-bucket 0) */
		if (k >= 6) {
			assert_true(us_hist_bucket_lower(us_hist_index(p)) == p);
			assert_int_equal(us_hist_index(p) % US_HIST_SUB_COUNT, 0);
			assert_int_equal(us_hist_index(p - 1) + 1, us_hist_index(p));
		}
	}
	check_bucket_of(UINT64_MAX);
	check_bucket_of(UINT64_MAX - 1);
	check_bucket_of((1ull << 63) | 1);
}

static void test_random_values_bounded(void **state)
{
	rng_seed(2);
	for (int i = 0; i < 1000000; i++) {
		check_bucket_of(rng_u64());
		check_bucket_of(rng_any_scale());
	}
}

static void test_index_monotonic(void **state)
{
	enum { N = 200000 };
	uint64_t *v = samples_buf;
	unsigned int prev = 0;

	for (uint64_t x = 0; x < 70000; x++) {
		unsigned int idx = us_hist_index(x);

		assert_true(idx >= prev);
		assert_true(idx - prev <= 1); /* consecutive values skip no bucket */
		prev = idx;
	}
	/* p-1 < p < p+1 < 2p-1 for ascending powers */
	prev = 0;
	for (unsigned int k = 1; k < 64; k++) {
		uint64_t p = 1ull << k;
		uint64_t seq[] = { p - 1, p, p + 1, p + (p >> 1), p | (p - 1) };

		for (size_t j = 0; j < sizeof(seq) / sizeof(seq[0]); j++) {
			assert_true(us_hist_index(seq[j]) >= prev);
			prev = us_hist_index(seq[j]);
		}
	}
	rng_seed(3);
	for (int i = 0; i < N; i++)
		v[i] = (i & 1) ? rng_u64() : rng_any_scale();
	v[0] = UINT64_MAX;
	v[1] = 0;
	qsort(v, N, sizeof(*v), cmp_u64);
	prev = 0;
	for (int i = 0; i < N; i++) {
		assert_true(us_hist_index(v[i]) >= prev);
		prev = us_hist_index(v[i]);
	}
	assert_int_equal(prev, US_HIST_BUCKETS - 1);
}

static void test_every_index_reachable_and_contiguous(void **state)
{
	for (unsigned int i = 0; i < US_HIST_BUCKETS; i++) {
		uint64_t lo = us_hist_bucket_lower(i), hi = us_hist_bucket_upper(i);

		assert_true(lo <= hi);
		assert_int_equal(us_hist_index(lo), i);
		assert_int_equal(us_hist_index(hi), i);
		assert_int_equal(us_hist_index(lo + (hi - lo) / 2), i);
		if (i + 1 < US_HIST_BUCKETS) {
			if (us_hist_bucket_lower(i + 1) != hi + 1)
				fail_msg("gap or overlap between buckets %u and %u", i, i + 1);
			assert_int_equal(us_hist_index(hi + 1), i + 1);
		}
	}
}

static void test_relative_width(void **state)
{
	for (unsigned int i = 0; i < US_HIST_BUCKETS; i++) {
		uint64_t lo = us_hist_bucket_lower(i), hi = us_hist_bucket_upper(i);
		uint64_t width = hi - lo + 1; /* at most 2^58: no overflow */

		if (lo < 64) {
			assert_true(width == 1);
			continue;
		}
		/* width / lo <= 1/32, i.e. 32 * width <= lo, i.e. width <= floor(lo / 32) */
		if (width > lo / 32)
			fail_msg("bucket %u [%llu, %llu] wider than 1/32 of its lower bound", i,
				 (unsigned long long)lo, (unsigned long long)hi);
		/* a power of two, and exactly 1/32 at the start of each octave */
		assert_true((width & (width - 1)) == 0);
		if (i % US_HIST_SUB_COUNT == 0)
			assert_true(width * 32 == lo);
	}
}

/* ---- quantiles ------------------------------------------------------- */

/* Midpoint of the bucket holding v, as us_hist_quantile reports it. */
static double bucket_mid(uint64_t v)
{
	unsigned int i = us_hist_index(v);
	double lo = (double)us_hist_bucket_lower(i), hi = (double)us_hist_bucket_upper(i);

	return lo + (hi - lo) / 2.0;
}

/* The error bound derived from the scheme: the value v lies in a bucket
 * [lo, hi] of width w = hi - lo + 1 = 2^(e-5) (e = floor(log2 v) >= 6), or 1
 * below 64. The estimate is its midpoint, so |est - v| <= (w - 1) / 2 and
 * |est - v| / v <= (2^(e-5) - 1) / 2^(e+1) = 1/64 - 2^-(e+1) < 1/64.
 * Exact (0) below 64. Beyond 2^53 the double conversion of lo, hi and v adds
 * at most a few ulps. */
static double rel_bound(uint64_t v)
{
	unsigned int e;

	if (v < 64)
		return 0.0;
	e = us_hist_log2(v);
	return 1.0 / 64 - ldexp(1.0, -(int)(e + 1)) + (e >= 53 ? 0x1.0p-50 : 0.0);
}

static void check_estimate(uint64_t exact, double est, double q, const char *what)
{
	double err = fabs(est - (double)exact);

	if (est != bucket_mid(exact))
		fail_msg("%s q=%.6f: estimate %.17g is not the midpoint %.17g of the bucket of %llu",
			 what, q, est, bucket_mid(exact), (unsigned long long)exact);
	if (exact == 0) {
		assert_true(est == 0.0);
		return;
	}
	if (err / (double)exact > rel_bound(exact))
		fail_msg("%s q=%.6f: exact %llu, estimate %.17g, relative error %g > %g",
			 what, q, (unsigned long long)exact, est, err / (double)exact,
			 rel_bound(exact));
	if (err / (double)exact >= 1.0 / 64 + 0x1.0p-50)
		fail_msg("%s: relative error %g not below 1/64", what, err / (double)exact);
}

/* Exact nearest-rank quantile: the smallest x with #(X <= x) >= rank,
 * rank = ceil(num * n / den) >= 1. */
static uint64_t exact_quantile(const uint64_t *sorted, size_t n, uint64_t num, uint64_t den)
{
	uint64_t rank = (num * n + den - 1) / den;

	if (rank == 0)
		rank = 1;
	return sorted[rank - 1];
}

/* Quantiles are given as num/den. The dyadic ones (den 1024) are exact
 * doubles, so q * n is exact and no rounding question arises; the decimal
 * percentiles the code base uses are checked with their decimal meaning. */
static void check_quantiles(uint64_t *samples, size_t n, const char *what)
{
	static const uint64_t decimal[] = { 500, 900, 950, 990, 999, 1, 10, 250, 750 };
	struct us_hist *h = hist_slot(5);
	uint64_t sum = 0;

	for (size_t i = 0; i < n; i++) {
		us_hist_record(h, samples[i]);
		sum += samples[i];
	}
	assert_true(h->count == n);
	assert_true(h->sum == sum);
	qsort(samples, n, sizeof(*samples), cmp_u64);
	for (uint64_t k = 0; k <= 1024; k++) {
		double q = (double)k / 1024.0;

		check_estimate(exact_quantile(samples, n, k, 1024), us_hist_quantile(h, q), q, what);
	}
	for (size_t j = 0; j < sizeof(decimal) / sizeof(decimal[0]); j++) {
		double q = (double)decimal[j] / 1000.0;

		check_estimate(exact_quantile(samples, n, decimal[j], 1000),
			       us_hist_quantile(h, q), q, what);
	}
	/* q = 0 is the minimum's bucket, q = 1 the maximum's */
	assert_true(us_hist_quantile(h, 0.0) == bucket_mid(samples[0]));
	assert_true(us_hist_quantile(h, 1.0) == bucket_mid(samples[n - 1]));
	/* out-of-range q is clamped */
	assert_true(us_hist_quantile(h, -3.0) == bucket_mid(samples[0]));
	assert_true(us_hist_quantile(h, 7.0) == bucket_mid(samples[n - 1]));
}

static void test_quantiles_uniform(void **state)
{
	static const size_t sizes[] = { 1, 2, 3, 10, 100, 1000, 10007, 100000 };
	uint64_t *s = samples_buf;

	rng_seed(10);
	for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		for (size_t i = 0; i < sizes[k]; i++)
			s[i] = rng_u64() % 1000001;
		check_quantiles(s, sizes[k], "uniform[0,1e6]");
		for (size_t i = 0; i < sizes[k]; i++)
			s[i] = rng_u64() % 100; /* mostly exact buckets */
		check_quantiles(s, sizes[k], "uniform[0,100)");
		for (size_t i = 0; i < sizes[k]; i++)
			s[i] = rng_u64(); /* the full 64-bit range */
		check_quantiles(s, sizes[k], "uniform u64");
	}
}

static void test_quantiles_lognormal(void **state)
{
	enum { N = 50000 };
	uint64_t *s = samples_buf;

	rng_seed(11);
	/* latency-like: median 200us, long tail */
	for (size_t i = 0; i < N; i++)
		s[i] = to_u64(exp(log(200000.0) + 1.5 * rng_normal()));
	check_quantiles(s, N, "log-normal");
	/* heavy: sigma 4 spans ~1 .. 1e14 */
	for (size_t i = 0; i < N; i++)
		s[i] = to_u64(exp(log(1e6) + 4.0 * rng_normal()));
	check_quantiles(s, N, "log-normal wide");
	/* every octave equally likely */
	for (size_t i = 0; i < N; i++)
		s[i] = rng_any_scale();
	check_quantiles(s, N, "log-uniform");
}

static void test_quantiles_constant(void **state)
{
	static const uint64_t consts[] = { 0, 1, 63, 64, 65, 12345, 1ull << 40,
					   (1ull << 53) + 1, UINT64_MAX - 1, UINT64_MAX };
	enum { N = 777 };
	uint64_t s[N];

	for (size_t c = 0; c < sizeof(consts) / sizeof(consts[0]); c++) {
		for (size_t i = 0; i < N; i++)
			s[i] = consts[c];
		check_quantiles(s, N, "constant");
	}
}

static void test_quantiles_two_point(void **state)
{
	enum { N = 1000 };
	uint64_t s[N];

	/* 90% fast, 10% very slow: p90 is fast, p91 slow */
	for (size_t i = 0; i < N; i++)
		s[i] = i % 10 == 3 ? 1000000000ull : 100;
	check_quantiles(s, N, "two-point 90/10");
	for (size_t i = 0; i < N; i++)
		s[i] = i % 2 ? UINT64_MAX : 0;
	check_quantiles(s, N, "two-point 0/max");

	struct us_hist *h = hist_slot(0);

	for (size_t i = 0; i < N; i++)
		us_hist_record(h, i % 10 == 3 ? 1000000000ull : 100);
	/* 100 is in bucket [100, 101] */
	assert_true(us_hist_quantile(h, 0.90) == 100.5);
	assert_true(us_hist_quantile(h, 0.901) == bucket_mid(1000000000ull));
	assert_true(us_hist_quantile(h, 0.5) == 100.5);
	assert_true(us_hist_quantile(h, 0.0) == 100.5);
	assert_true(us_hist_quantile(h, 1.0) == bucket_mid(1000000000ull));
}

static void test_quantile_empty_and_single(void **state)
{
	struct us_hist *h = hist_slot(0);

	assert_true(us_hist_quantile(h, 0.0) == 0.0);
	assert_true(us_hist_quantile(h, 0.5) == 0.0);
	assert_true(us_hist_quantile(h, 1.0) == 0.0);
	assert_true(us_hist_mean(h) == 0.0);

	us_hist_record(h, 42);
	for (int k = 0; k <= 100; k++)
		assert_true(us_hist_quantile(h, k / 100.0) == 42.0);
	assert_true(us_hist_mean(h) == 42.0);

	us_hist_reset(h);
	us_hist_record(h, 1000000);
	for (int k = 0; k <= 100; k++)
		check_estimate(1000000, us_hist_quantile(h, k / 100.0), k / 100.0, "single");
	assert_true(us_hist_mean(h) == 1000000.0);

	us_hist_reset(h);
	us_hist_record(h, UINT64_MAX);
	check_estimate(UINT64_MAX, us_hist_quantile(h, 0.5), 0.5, "single max");
}

static void test_record_n_and_mean(void **state)
{
	struct us_hist *a = hist_slot(0), *b = hist_slot(1);

	for (int i = 0; i < 1000; i++)
		us_hist_record(a, 777);
	us_hist_record_n(b, 777, 1000);
	assert_memory_equal(a, b, sizeof(*a));
	us_hist_record_n(b, 5, 0); /* n = 0 changes nothing */
	assert_memory_equal(a, b, sizeof(*a));

	us_hist_reset(a);
	us_hist_record(a, 10);
	us_hist_record(a, 20);
	us_hist_record(a, 90);
	assert_true(a->count == 3 && a->sum == 120);
	assert_true(us_hist_mean(a) == 40.0);
}

/* The documented contract: rank = the smallest value v with P(X <= v) >= q,
 * so q = 1 is the maximum's bucket for every count the wire accepts
 * (us_hist_proto_validate allows any count whose buckets add up).
 * FAILS today: us_hist_quantile computes rank = (uint64_t)(q * (double)count)
 * and compares in double. From 2^53 on, (double)count rounds, so rank can be
 * below count and q = 1 lands in an earlier bucket; when count rounds to 2^64
 * (count > 2^64 - 2^10) the conversion to uint64_t is undefined behaviour
 * (x86-64 gcc yields 0, so rank 1: the minimum's bucket; clang 2^63). A fix:
 * clamp in integers, e.g. "if (q >= 1.0 || rank > count) rank = count" with
 * the conversion guarded by "x < 0x1p64". */
static void test_quantile_q1_huge_count(void **state)
{
	struct us_hist *h = hist_slot(0);
	double got53, got64, want = bucket_mid(1000);

	/* 2^53 + 1 samples: (double)count rounds to 2^53 */
	us_hist_record_n(h, 1, 1ull << 53);
	us_hist_record(h, 1000);
	got53 = us_hist_quantile(h, 1.0);

	/* count = UINT64_MAX: q * (double)count = 2^64, outside uint64_t */
	us_hist_reset(h);
	us_hist_record_n(h, 1, UINT64_MAX - 1);
	us_hist_record(h, 1000);
	got64 = us_hist_quantile(h, 1.0);

	if (got53 != want || got64 != want)
		fail_msg("q=1 must give the maximum's bucket %g; count 2^53+1 gives %g, "
			 "count 2^64-1 gives %g", want, got53, got64);
	/* below 2^53 it is right */
	us_hist_reset(h);
	us_hist_record_n(h, 1, (1ull << 52) - 1);
	us_hist_record(h, 1000);
	assert_true(us_hist_quantile(h, 1.0) == want);
}

/* ---- merge --------------------------------------------------------------- */

static void test_merge_equals_union(void **state)
{
	enum { NA = 30000, NB = 20011 };
	struct us_hist *a = hist_slot(0), *b = hist_slot(1), *all = hist_slot(2), *m = hist_slot(3);
	struct us_hist *m2 = hist_slot(4);

	rng_seed(20);
	for (int i = 0; i < NA; i++) {
		uint64_t v = to_u64(exp(log(50000.0) + 1.0 * rng_normal()));

		us_hist_record(a, v);
		us_hist_record(all, v);
	}
	for (int i = 0; i < NB; i++) {
		uint64_t v = rng_any_scale();

		us_hist_record(b, v);
		us_hist_record(all, v);
	}
	*m = *a;
	us_hist_merge(m, b);
	assert_true(m->count == a->count + b->count);
	assert_true(m->sum == a->sum + b->sum); /* modulo 2^64, as recorded */
	assert_true(m->count == NA + NB);
	assert_memory_equal(m->buckets, all->buckets, sizeof(m->buckets));
	assert_memory_equal(m, all, sizeof(*m));
	for (int k = 0; k <= 1000; k++)
		assert_true(us_hist_quantile(m, k / 1000.0) == us_hist_quantile(all, k / 1000.0));

	/* commutative */
	*m2 = *b;
	us_hist_merge(m2, a);
	assert_memory_equal(m2, m, sizeof(*m));

	/* merging an empty histogram is the identity; into empty is a copy */
	us_hist_reset(m2);
	us_hist_merge(m, m2);
	assert_memory_equal(m, all, sizeof(*m));
	us_hist_merge(m2, all);
	assert_memory_equal(m2, all, sizeof(*m));

	/* many small merges (per-CPU, per-interval) equal one big histogram */
	us_hist_reset(m);
	us_hist_reset(all);
	rng_seed(21);
	for (int part = 0; part < 64; part++) {
		us_hist_reset(a);
		for (int i = 0; i < 500; i++) {
			uint64_t v = rng_u64() % 5000000;

			us_hist_record(a, v);
			us_hist_record(all, v);
		}
		us_hist_merge(m, a);
	}
	assert_memory_equal(m, all, sizeof(*m));
}

/* ---- wire form --------------------------------------------------------- */

static void roundtrip(const struct us_hist *h)
{
	Understudy__Histogram p = UNDERSTUDY__HISTOGRAM__INIT, *u;
	struct us_hist *back = hist_slot(6);
	char err[256] = "";
	size_t nz = 0, len;
	uint8_t *wire;

	p.metric = METRIC;
	assert_int_equal(us_hist_to_proto(h, &p), 0);
	for (unsigned int i = 0; i < US_HIST_BUCKETS; i++)
		nz += h->buckets[i] != 0;
	assert_int_equal(p.sub_bucket_bits, US_HIST_SUB_BITS);
	assert_int_equal(p.n_bucket_index, nz);
	assert_int_equal(p.n_bucket_count, nz);
	/* delta-coded indices: the first index, then distances > 0; every
	 * non-empty bucket appears once, with its count */
	for (size_t i = 0, idx = 0; i < p.n_bucket_index; i++) {
		if (i)
			assert_true(p.bucket_index[i] > 0);
		idx += p.bucket_index[i];
		assert_true(idx < US_HIST_BUCKETS);
		assert_true(p.bucket_count[i] != 0);
		assert_true(p.bucket_count[i] == h->buckets[idx]);
	}
	assert_int_equal(us_hist_proto_validate(&p, err, sizeof(err)), 0);
	assert_int_equal(us_hist_from_proto(&p, back, err, sizeof(err)), 0);
	assert_memory_equal(back, h, sizeof(*h));

	/* and through the serialized bytes */
	len = understudy__histogram__get_packed_size(&p);
	wire = malloc(len ? len : 1);
	assert_non_null(wire);
	assert_int_equal(understudy__histogram__pack(&p, wire), len);
	u = understudy__histogram__unpack(NULL, len, wire);
	assert_non_null(u);
	assert_string_equal(u->metric, METRIC);
	memset(back, 0xa5, sizeof(*back));
	assert_int_equal(us_hist_from_proto(u, back, err, sizeof(err)), 0);
	assert_memory_equal(back, h, sizeof(*h));
	understudy__histogram__free_unpacked(u, NULL);
	free(wire);
	us_hist_proto_free_arrays(&p);
	assert_null(p.bucket_index);
	assert_null(p.bucket_count);
}

static void test_proto_roundtrip(void **state)
{
	struct us_hist *h = hist_slot(0);

	roundtrip(h); /* empty */
	us_hist_record(h, 0);
	roundtrip(h);
	us_hist_record(h, UINT64_MAX); /* first and last bucket */
	roundtrip(h);
	rng_seed(30);
	for (int i = 0; i < 100000; i++)
		us_hist_record(h, rng_any_scale());
	roundtrip(h);
	us_hist_record_n(h, 12345, UINT64_MAX - h->count); /* count at the limit */
	roundtrip(h);
	/* every bucket non-zero */
	us_hist_reset(h);
	for (unsigned int i = 0; i < US_HIST_BUCKETS; i++)
		us_hist_record_n(h, us_hist_bucket_upper(i), i + 1);
	roundtrip(h);
}

/* A valid sparse histogram to break one field at a time: buckets 0, 63, 700
 * and the last, written as the wire has them (delta-coded, see
 * proto/understudy.proto): 0, 63, 637, 1219. */
static uint32_t v_idx[4];
static uint64_t v_cnt[4];

static void valid_proto(Understudy__Histogram *p)
{
	static const uint32_t idx[4] = { 0, 63, 700 - 63, US_HIST_BUCKETS - 1 - 700 };
	static const uint64_t cnt[4] = { 5, 1, 100, 2 };

	understudy__histogram__init(p);
	memcpy(v_idx, idx, sizeof(idx));
	memcpy(v_cnt, cnt, sizeof(cnt));
	p->metric = METRIC;
	p->unit = "ns";
	p->sub_bucket_bits = US_HIST_SUB_BITS;
	p->n_bucket_index = p->n_bucket_count = 4;
	p->bucket_index = v_idx;
	p->bucket_count = v_cnt;
	p->count = 108;
	p->sum = 999;
}

static void refused(const Understudy__Histogram *p, const char *want)
{
	char err[256] = "";
	struct us_hist *out = hist_slot(7);

	if (us_hist_proto_validate(p, err, sizeof(err)) == 0)
		fail_msg("accepted, expected an error containing \"%s\"", want);
	if (!strstr(err, METRIC))
		fail_msg("error \"%s\" does not name the metric", err);
	if (!strstr(err, want))
		fail_msg("error \"%s\" lacks \"%s\"", err, want);
	/* from_proto refuses too and leaves an empty histogram */
	memset(out, 0x5a, sizeof(*out));
	err[0] = '\0';
	assert_int_equal(us_hist_from_proto(p, out, err, sizeof(err)), -1);
	assert_non_null(strstr(err, METRIC));
	for (unsigned int i = 0; i < US_HIST_BUCKETS; i++)
		assert_true(out->buckets[i] == 0);
	assert_true(out->count == 0 && out->sum == 0);
}

static void test_proto_validate(void **state)
{
	Understudy__Histogram p;
	char err[256], tiny[8];
	struct us_hist *h = hist_slot(0);

	valid_proto(&p);
	assert_int_equal(us_hist_proto_validate(&p, err, sizeof(err)), 0);
	assert_int_equal(us_hist_from_proto(&p, h, err, sizeof(err)), 0);
	assert_true(h->count == 108 && h->sum == 999 && h->buckets[700] == 100);
	assert_true(h->buckets[US_HIST_BUCKETS - 1] == 2);

	/* empty and valid */
	understudy__histogram__init(&p);
	p.sub_bucket_bits = US_HIST_SUB_BITS;
	assert_int_equal(us_hist_proto_validate(&p, err, sizeof(err)), 0);

	valid_proto(&p);
	p.sub_bucket_bits = 4;
	refused(&p, "sub_bucket_bits");
	p.sub_bucket_bits = 0;
	refused(&p, "sub_bucket_bits");
	p.sub_bucket_bits = 6;
	refused(&p, "sub_bucket_bits");

	valid_proto(&p);
	p.n_bucket_count = 3;
	refused(&p, "4 bucket indices but 3 counts");
	valid_proto(&p);
	p.n_bucket_index = 3;
	p.count = 106;
	refused(&p, "3 bucket indices but 4 counts");

	valid_proto(&p);
	v_idx[3] = US_HIST_BUCKETS - 700; /* last bucket + 1 */
	refused(&p, "bucket index 1920 out of range");
	v_idx[3] = UINT32_MAX;
	refused(&p, "out of range");
	valid_proto(&p);
	v_idx[0] = US_HIST_BUCKETS; /* the first index alone */
	refused(&p, "bucket index 1920 out of range");
	valid_proto(&p);
	v_idx[1] = 1000; /* 0, 1000, 1637: the running sum leaves the range */
	refused(&p, "out of range");

	/* descending (0, 701, 700): the only spelling is a wrapped delta */
	valid_proto(&p);
	v_idx[1] = 701;
	v_idx[2] = (uint32_t)(700 - 701);
	refused(&p, "out of range");
	valid_proto(&p);
	v_idx[2] = 0; /* 700 repeats 63 */
	refused(&p, "not ascending at 2");
	valid_proto(&p);
	v_idx[1] = 0; /* 0 twice at the start */
	refused(&p, "not ascending at 1");

	valid_proto(&p);
	p.count = 107;
	refused(&p, "add up to 108");
	p.count = 109;
	refused(&p, "add up");
	p.count = 0;
	refused(&p, "add up");

	valid_proto(&p);
	v_cnt[2] = UINT64_MAX - 7; /* 5 + 1 + (2^64-8) + 2 wraps to 0 */
	p.count = 0;
	refused(&p, "overflow");
	valid_proto(&p);
	v_cnt[0] = UINT64_MAX;
	p.count = UINT64_MAX;
	refused(&p, "overflow");

	/* just at the limit is fine */
	valid_proto(&p);
	v_cnt[2] = UINT64_MAX - 8;
	p.count = UINT64_MAX;
	assert_int_equal(us_hist_proto_validate(&p, err, sizeof(err)), 0);

	/* a tiny error buffer is truncated, not overrun */
	valid_proto(&p);
	p.sub_bucket_bits = 9;
	assert_int_equal(us_hist_proto_validate(&p, tiny, sizeof(tiny)), -1);
	assert_int_equal(strlen(tiny), sizeof(tiny) - 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_scheme_constants),
		cmocka_unit_test(test_log2),
		cmocka_unit_test(test_small_values_exact_and_bounded),
		cmocka_unit_test(test_powers_of_two_bounded),
		cmocka_unit_test(test_random_values_bounded),
		cmocka_unit_test(test_index_monotonic),
		cmocka_unit_test(test_every_index_reachable_and_contiguous),
		cmocka_unit_test(test_relative_width),
		cmocka_unit_test(test_quantiles_uniform),
		cmocka_unit_test(test_quantiles_lognormal),
		cmocka_unit_test(test_quantiles_constant),
		cmocka_unit_test(test_quantiles_two_point),
		cmocka_unit_test(test_quantile_empty_and_single),
		cmocka_unit_test(test_record_n_and_mean),
		cmocka_unit_test(test_quantile_q1_huge_count),
		cmocka_unit_test(test_merge_equals_union),
		cmocka_unit_test(test_proto_roundtrip),
		cmocka_unit_test(test_proto_validate),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
