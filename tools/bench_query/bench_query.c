/* us-bench-query: series query latency on a store of realistic size. Builds
 * a store (schema from coordinator/store.c) holding W workloads x D days of
 * one latency histogram at 10 s intervals, as retention leaves it: 1 h
 * rollups for every workload and day, 1 m rollups for D days and raw points
 * for the last 48 h. Rows are synthesized in bulk with SQLite, in time order
 * across workloads as the rollup writes them, from a pool of pre-packed
 * histograms of 40-280 buckets (so row sizes are real; contents repeat).
 * Then times a D-day query at 1 h step for one workload, and reports p50/p99
 * and bytes per workload-day of each table.
 *
 * 1 m and raw rows for all 1000 workloads would be ~37 M rows (~20 GB);
 * BENCH_DETAIL_WORKLOADS (default 50) of them get those, and their size is
 * reported per workload-day. Usage: us-bench-query DIR (env BENCH_WORKLOADS,
 * BENCH_DAYS, BENCH_DETAIL_WORKLOADS, BENCH_RUNS). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sqlite3.h>

#include "buf.h"
#include "clock.h"
#include "hist.h"
#include "rollup.h"
#include "series.h"
#include "store.h"

#define POOL 64
#define SEC US_NS_PER_SEC
#define RAW_NS (10 * SEC)
#define T0 (1700000000ull / 86400 * 86400 * SEC)

struct pool {
	struct us_buf blob[POOL];
	uint64_t count[POOL], sum[POOL];
};

struct bench {
	sqlite3 *db;
	sqlite3_stmt *put[3];
	struct pool pools[3];  /* raw, 1 m, 1 h: more samples, more buckets */
	uint64_t rng;
	long workloads, days, detail, runs;
};

static uint64_t rnd(struct bench *b)
{
	b->rng ^= b->rng << 13;
	b->rng ^= b->rng >> 7;
	b->rng ^= b->rng << 17;
	return b->rng;
}

static long env_long(const char *name, long def)
{
	const char *v = getenv(name);

	return v && *v ? strtol(v, NULL, 10) : def;
}

/* A histogram of about `buckets` non-empty buckets around a few ms. */
static int make_blob(struct bench *b, unsigned int buckets, struct us_buf *out,
		     uint64_t *count, uint64_t *sum)
{
	struct us_hist *h = calloc(1, sizeof(*h));
	Understudy__Histogram p = UNDERSTUDY__HISTOGRAM__INIT;
	unsigned int first = 300 + (unsigned int)(rnd(b) % 40);
	int rc = -1;

	if (!h)
		return -1;
	for (unsigned int i = 0; i < buckets; i++)
		us_hist_record_n(h, us_hist_bucket_lower(first + i), 1 + rnd(b) % 50);
	if (us_hist_to_proto(h, &p) < 0)
		goto cleanup;
	if (us_buf_reserve(out, understudy__histogram__get_packed_size(&p)) < 0)
		goto cleanup;
	out->len = understudy__histogram__pack(&p, out->data);
	*count = h->count;
	*sum = h->sum;
	rc = 0;
cleanup:
	us_hist_proto_free_arrays(&p);
	free(h);
	return rc;
}

static int make_pools(struct bench *b)
{
	/* a 10 s interval holds 40-280 buckets; merging widens it */
	static const unsigned int lo[3] = { 40, 120, 200 }, span[3] = { 241, 161, 81 };

	for (int t = 0; t < 3; t++)
		for (int i = 0; i < POOL; i++)
			if (make_blob(b, lo[t] + (unsigned int)(rnd(b) % span[t]),
				      &b->pools[t].blob[i], &b->pools[t].count[i],
				      &b->pools[t].sum[i]) < 0)
				return -1;
	return 0;
}

static int put(struct bench *b, int t, int64_t series, uint64_t start, uint64_t width)
{
	sqlite3_stmt *q = b->put[t];
	int i = (int)(rnd(b) % POOL);

	sqlite3_bind_int64(q, 1, series);
	sqlite3_bind_int64(q, 2, (sqlite3_int64)start);
	sqlite3_bind_int64(q, 3, (sqlite3_int64)(start + width));
	sqlite3_bind_int64(q, 4, (sqlite3_int64)b->pools[t].count[i]);
	sqlite3_bind_int64(q, 5, (sqlite3_int64)b->pools[t].sum[i]);
	sqlite3_bind_blob(q, 6, b->pools[t].blob[i].data, (int)b->pools[t].blob[i].len,
			  SQLITE_STATIC);
	if (sqlite3_step(q) != SQLITE_DONE)
		return -1;
	sqlite3_reset(q);
	return 0;
}

static int64_t pages(struct bench *b)
{
	sqlite3_stmt *q;
	int64_t n = 0;

	if (sqlite3_prepare_v2(b->db, "PRAGMA page_count", -1, &q, NULL) != SQLITE_OK)
		return 0;
	if (sqlite3_step(q) == SQLITE_ROW)
		n = sqlite3_column_int64(q, 0);
	sqlite3_finalize(q);
	return n * 16384;
}

/* Rows of table t for workloads [0, nw) over [from, to), time-major. */
static int fill(struct bench *b, int t, long nw, uint64_t from, uint64_t to, uint64_t width)
{
	uint64_t per_tx = width >= 3600 * SEC ? 24 : width >= 60 * SEC ? 60 : 360;
	uint64_t n = 0;

	for (uint64_t s = from; s < to; s += width) {
		if (n++ % per_tx == 0 &&
		    sqlite3_exec(b->db, n == 1 ? "BEGIN" : "COMMIT; BEGIN", NULL, NULL, NULL) != SQLITE_OK)
			return -1;
		for (long w = 0; w < nw; w++)
			if (put(b, t, w + 1, s, width) < 0)
				return -1;
	}
	return sqlite3_exec(b->db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK ? 0 : -1;
}

static int synthesize(struct bench *b)
{
	static const char *const tables[3][2] = {
		{ "points_raw", "start_ns" }, { "rollup_1m", "bucket_start_ns" },
		{ "rollup_1h", "bucket_start_ns" },
	};
	const uint64_t end = T0 + (uint64_t)b->days * 86400 * SEC;
	const uint64_t raw_from = end - (b->days >= 2 ? 2 : (uint64_t)b->days) * 86400 * SEC;
	int64_t before, bytes[3];
	uint64_t t0 = us_mono_ns();
	char sql[256];

	if (sqlite3_exec(b->db, "PRAGMA synchronous=OFF; BEGIN", NULL, NULL, NULL) != SQLITE_OK)
		return -1;
	for (long w = 0; w < b->workloads; w++) {
		snprintf(sql, sizeof(sql), "INSERT INTO series(id, workload, role, metric, unit, kind) "
			 "VALUES (%ld, 'wl-%04ld', 1, 'runq_latency', 'ns', 'histogram')", w + 1, w);
		if (sqlite3_exec(b->db, sql, NULL, NULL, NULL) != SQLITE_OK)
			return -1;
	}
	if (sqlite3_exec(b->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		return -1;
	for (int t = 0; t < 3; t++) {
		snprintf(sql, sizeof(sql), "INSERT INTO %s(series_id, %s, end_ns, count, sum, hist) "
			 "VALUES (?, ?, ?, ?, ?, ?)", tables[t][0], tables[t][1]);
		if (sqlite3_prepare_v2(b->db, sql, -1, &b->put[t], NULL) != SQLITE_OK)
			return -1;
	}
	before = pages(b);
	if (fill(b, 2, b->workloads, T0, end, 3600 * SEC) < 0)
		return -1;
	bytes[2] = pages(b) - before;
	before = pages(b);
	if (fill(b, 1, b->detail, T0, end, 60 * SEC) < 0)
		return -1;
	bytes[1] = pages(b) - before;
	before = pages(b);
	if (fill(b, 0, b->detail, raw_from, end, RAW_NS) < 0)
		return -1;
	bytes[0] = pages(b) - before;
	printf("synthesis: %.1f s; 1 h rollups for %ld workloads x %ld d, 1 m rollups for %ld "
	       "workloads x %ld d, raw for %ld workloads x 48 h; store %.1f MiB\n",
	       (double)(us_mono_ns() - t0) / 1e9, b->workloads, b->days, b->detail, b->days,
	       b->detail, (double)pages(b) / 1048576.0);
	printf("bytes per workload-day: raw %.0f, 1m %.0f, 1h %.0f\n",
	       (double)bytes[0] / (double)b->detail / (double)(b->days >= 2 ? 2 : b->days),
	       (double)bytes[1] / (double)b->detail / (double)b->days,
	       (double)bytes[2] / (double)b->workloads / (double)b->days);
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static int time_queries(struct bench *b, const char *path)
{
	uint64_t *lat = calloc((size_t)b->runs, sizeof(*lat));
	struct us_series_query q = {
		.workload = "wl-0500", .role = 1, .metric = "runq_latency", .from_ns = T0,
		.to_ns = T0 + (uint64_t)b->days * 86400 * SEC, .step_ns = 3600 * SEC,
	};
	sqlite3 *db = NULL;
	char err[512];
	size_t n = 0;
	int rc = -1;

	if (!lat || sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
		goto cleanup;
	if (b->workloads <= 500)
		q.workload = "wl-0000";
	for (long i = 0; i < b->runs; i++) {
		struct us_series_point *pts;
		uint64_t t = us_mono_ns();

		if (us_series_query(db, &q, &pts, &n, err, sizeof(err)) < 0) {
			fprintf(stderr, "query: %s\n", err);
			goto cleanup;
		}
		lat[i] = us_mono_ns() - t;
		free(pts);
	}
	printf("first query (cold connection): %.3f ms\n", (double)lat[0] / 1e6);
	qsort(lat, (size_t)b->runs, sizeof(*lat), cmp_u64);
	printf("%ld-day query at 1 h step, one workload (%zu points), %ld runs: "
	       "p50 %.3f ms, p99 %.3f ms\n", b->days, n, b->runs,
	       (double)lat[b->runs / 2] / 1e6, (double)lat[(b->runs * 99) / 100] / 1e6);
	rc = 0;
cleanup:
	sqlite3_close(db);
	free(lat);
	return rc;
}

int main(int argc, char **argv)
{
	struct bench b = { .rng = 0x2545F4914F6CDD1Dull };
	struct us_store_options opt = { .synchronous_full = 0 };
	struct us_store *st;
	char path[4096], err[512];
	int rc = 1;

	if (argc != 2) {
		fprintf(stderr, "usage: us-bench-query DIR\n");
		return 2;
	}
	b.workloads = env_long("BENCH_WORKLOADS", 1000);
	b.days = env_long("BENCH_DAYS", 14);
	b.detail = env_long("BENCH_DETAIL_WORKLOADS", 50);
	b.runs = env_long("BENCH_RUNS", 100);
	if (b.detail > b.workloads)
		b.detail = b.workloads;
	if (b.workloads < 1 || b.days < 1 || b.runs < 1) {
		fprintf(stderr, "BENCH_WORKLOADS, BENCH_DAYS and BENCH_RUNS must be positive\n");
		return 2;
	}
	snprintf(path, sizeof(path), "%s/understudy.db", argv[1]);
	/* the store creates the file and its current schema */
	st = us_store_open(path, &opt, err, sizeof(err));
	if (!st) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	us_store_close(st);
	if (sqlite3_open(path, &b.db) != SQLITE_OK || make_pools(&b) < 0 || synthesize(&b) < 0) {
		fprintf(stderr, "synthesis: %s\n", sqlite3_errmsg(b.db));
		goto cleanup;
	}
	sqlite3_exec(b.db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL);
	if (time_queries(&b, path) < 0)
		goto cleanup;
	rc = 0;
cleanup:
	for (int t = 0; t < 3; t++) {
		sqlite3_finalize(b.put[t]);
		for (int i = 0; i < POOL; i++)
			us_buf_free(&b.pools[t].blob[i]);
	}
	sqlite3_close(b.db);
	return rc;
}
