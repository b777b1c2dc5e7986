/* Rollups and the series query: rollup exactness (a quantile from the 1 m or
 * 1 h rollup equals the one over the merged raw intervals, exactly), the
 * raw-step query, migration from schema v1, retention, the watermark
 * (nothing rolled up twice), the worker thread, and query validation. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "envelope.h"
#include "hist.h"
#include "rollup.h"
#include "series.h"
#include "store.h"

#define SEC US_NS_PER_SEC
/* not aligned to the minute (T0 % 60 = 20 s) nor the hour */
#define T0 (1700000000ull * SEC)
#define INTERVAL (10 * SEC)
#define OFFSET (3 * SEC)     /* interval starts are not 10 s aligned either */
#define N_3H 1080            /* 3 h of 10 s intervals */

struct fixture {
	char dir[64];
	char path[128];
	struct us_store *st;
	struct us_codec codec;
	int64_t agent;
	uint64_t seq;
	uint64_t rng;
	struct us_hist *hists;   /* what the test sent, per interval */
	uint64_t *counters;
	double *gauges;
	size_t n;
};

static uint64_t rnd(struct fixture *f)
{
	f->rng ^= f->rng << 13;
	f->rng ^= f->rng >> 7;
	f->rng ^= f->rng << 17;
	return f->rng;
}

static uint64_t start_of(size_t i)
{
	return T0 + OFFSET + i * INTERVAL;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct us_store_options opt = { .synchronous_full = 0 };
	char err[512];

	snprintf(f->dir, sizeof(f->dir), "/tmp/us-test-series-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->path, sizeof(f->path), "%s/understudy.db", f->dir);
	f->st = us_store_open(f->path, &opt, err, sizeof(err));
	if (!f->st) {
		fprintf(stderr, "%s\n", err);
		return -1;
	}
	us_codec_init(&f->codec);
	f->hists = calloc(N_3H, sizeof(*f->hists));
	f->counters = calloc(N_3H, sizeof(*f->counters));
	f->gauges = calloc(N_3H, sizeof(*f->gauges));
	f->rng = 0x9E3779B97F4A7C15ull;
	f->seq = 1000;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[128];

	us_store_close(f->st);
	us_codec_free(&f->codec);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
	if (system(cmd) != 0)
		return -1;
	free(f->hists);
	free(f->counters);
	free(f->gauges);
	free(f);
	return 0;
}

/* A random latency histogram: a few hundred samples spread over three
 * decades, so intervals fill 40-280 buckets like the real agent's. */
static void random_hist(struct fixture *f, struct us_hist *h)
{
	uint64_t n = 20 + rnd(f) % 400;

	us_hist_reset(h);
	for (uint64_t i = 0; i < n; i++) {
		uint64_t base = 1000ull << (rnd(f) % 10);

		us_hist_record(h, base + rnd(f) % base);
	}
}

/* The frame of interval i as the agent sends it: a MetricBatch with one
 * histogram, one counter and one gauge. */
static void encode_batch(struct fixture *f, size_t i, struct us_buf *frame)
{
	Understudy__Envelope env = UNDERSTUDY__ENVELOPE__INIT;
	Understudy__MetricBatch mb = UNDERSTUDY__METRIC_BATCH__INIT;
	Understudy__Histogram h = UNDERSTUDY__HISTOGRAM__INIT, *hp = &h;
	Understudy__Counter c = UNDERSTUDY__COUNTER__INIT, *cp = &c;
	Understudy__Gauge g = UNDERSTUDY__GAUGE__INIT, *gp = &g;
	char err[256];

	assert_int_equal(us_hist_to_proto(&f->hists[i], &h), 0);
	h.metric = "runq_latency";
	h.unit = "ns";
	c.metric = "requests";
	c.value = f->counters[i];
	g.metric = "inflight";
	g.value = f->gauges[i];
	mb.workload = "checkout";
	mb.role = UNDERSTUDY__ROLE__PRODUCTION;
	mb.interval_start_ns = start_of(i);
	mb.interval_end_ns = start_of(i) + INTERVAL;
	mb.histograms = &hp;
	mb.n_histograms = 1;
	mb.counters = &cp;
	mb.n_counters = 1;
	mb.gauges = &gp;
	mb.n_gauges = 1;
	env.agent_id = "a1";
	env.seq = f->seq++;
	env.sent_unix_ns = mb.interval_end_ns;
	env.schema_version = US_SCHEMA_VERSION;
	env.body_case = UNDERSTUDY__ENVELOPE__BODY_METRIC_BATCH;
	env.metric_batch = &mb;
	if (us_envelope_encode(&f->codec, &env, frame, err, sizeof(err)) < 0)
		fail_msg("encode: %s", err);
	us_hist_proto_free_arrays(&h);
}

static void make_interval(struct fixture *f, size_t i)
{
	random_hist(f, &f->hists[i]);
	f->counters[i] = rnd(f) % 1000;
	f->gauges[i] = (double)(rnd(f) % 64);   /* integers: sums are exact */
}

/* Generates and stores intervals [first, last) through the ingest path. */
static void ingest(struct fixture *f, size_t first, size_t last)
{
	struct us_buf frame = { 0 };
	char err[512];

	assert_int_equal(us_store_begin(f->st, err, sizeof(err)), 0);
	if (!f->agent)
		assert_int_equal(us_store_agent_id(f->st, "a1", NULL, &f->agent, err, sizeof(err)), 0);
	for (size_t i = first; i < last; i++) {
		struct us_envelope_view v;
		enum us_frame_type type;
		const uint8_t *body;
		size_t body_len;

		make_interval(f, i);
		encode_batch(f, i, &frame);
		assert_int_equal(us_frame_unpack(&f->codec, frame.data, frame.len, &type, &body,
						 &body_len, err, sizeof(err)), US_FRAME_OK);
		if (us_scan_envelope(body, body_len, &v, err, sizeof(err)) != US_FRAME_OK)
			fail_msg("scan: %s", err);
		assert_int_equal(us_store_put_envelope(f->st, f->agent, &v, frame.data, frame.len,
						       start_of(i), err, sizeof(err)), US_STORE_NEW);
	}
	assert_int_equal(us_store_commit(f->st, err, sizeof(err)), 0);
	f->n = last > f->n ? last : f->n;
	us_buf_free(&frame);
}

static void rollup(struct fixture *f, const struct us_rollup_config *cfg,
		   struct us_rollup_stats *stats)
{
	char err[512];

	if (us_rollup_run_once(f->path, cfg, stats, err, sizeof(err)) < 0)
		fail_msg("rollup: %s", err);
}

static int64_t query_int(const char *path, const char *sql)
{
	sqlite3 *db;
	sqlite3_stmt *q;
	int64_t v = -1;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	if (sqlite3_prepare_v2(db, sql, -1, &q, NULL) != SQLITE_OK)
		fail_msg("%s: %s", sql, sqlite3_errmsg(db));
	if (sqlite3_step(q) == SQLITE_ROW)
		v = sqlite3_column_int64(q, 0);
	sqlite3_finalize(q);
	sqlite3_close(db);
	return v;
}

static struct us_series_point *query(struct fixture *f, const char *metric, uint64_t from,
				     uint64_t to, uint64_t step, size_t *n)
{
	struct us_series_query q = {
		.workload = "checkout", .role = UNDERSTUDY__ROLE__PRODUCTION, .metric = metric,
		.from_ns = from, .to_ns = to, .step_ns = step,
	};
	struct us_series_point *pts;
	sqlite3 *db;
	char err[512];

	assert_int_equal(sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	if (us_series_query(db, &q, &pts, n, err, sizeof(err)) < 0)
		fail_msg("query: %s", err);
	sqlite3_close(db);
	return pts;
}

/* The query at this step equals, exactly, figures computed here from the
 * intervals the test sent, merged by the step holding their start. */
static void check_step(struct fixture *f, uint64_t from, uint64_t to, uint64_t step)
{
	uint64_t first = from - from % step;
	size_t steps = (to - first + step - 1) / step, n, k = 0;
	struct us_hist *want = calloc(steps, sizeof(*want));
	uint64_t *counter = calloc(steps, sizeof(*counter));
	struct us_series_point *pts = query(f, "runq_latency", from, to, step, &n);
	struct us_series_point *cpts;
	size_t cn;

	assert_non_null(want);
	for (size_t i = 0; i < f->n; i++) {
		uint64_t s = start_of(i);

		if (s < first || s >= to)
			continue;
		us_hist_merge(&want[(s - first) / step], &f->hists[i]);
		counter[(s - first) / step] += f->counters[i];
	}
	for (size_t j = 0; j < steps; j++) {
		if (!want[j].count)
			continue;
		assert_true(k < n);
		assert_int_equal(pts[k].start_ns, first + j * step);
		assert_int_equal(pts[k].end_ns, first + (j + 1) * step);
		assert_int_equal(pts[k].count, want[j].count);
		assert_int_equal(pts[k].sum, want[j].sum);
		assert_true(pts[k].mean == us_hist_mean(&want[j]));
		assert_true(pts[k].p50 == us_hist_quantile(&want[j], 0.5));
		assert_true(pts[k].p90 == us_hist_quantile(&want[j], 0.9));
		assert_true(pts[k].p99 == us_hist_quantile(&want[j], 0.99));
		assert_true(pts[k].p999 == us_hist_quantile(&want[j], 0.999));
		k++;
	}
	assert_int_equal(k, n);
	assert_true(n > 0);
	cpts = query(f, "requests", from, to, step, &cn);
	assert_int_equal(cn, n);
	for (size_t j = 0, c = 0; j < steps; j++)
		if (want[j].count)
			assert_int_equal(cpts[c++].sum, counter[j]);
	free(cpts);
	free(pts);
	free(counter);
	free(want);
}

static void test_rollup_exact(void **state)
{
	struct fixture *f = *state;
	struct us_rollup_stats stats;
	uint64_t end = start_of(N_3H);

	ingest(f, 0, N_3H);
	rollup(f, NULL, &stats);
	assert_int_equal(stats.envelopes, N_3H);
	assert_int_equal(stats.points, 3 * N_3H);
	assert_int_equal(stats.skipped, 0);
	assert_int_equal(query_int(f->path, "SELECT count(*) FROM points_raw"), 3 * N_3H);
	check_step(f, T0, end, 60 * SEC);          /* 1 m rollup */
	check_step(f, T0, end, 3600 * SEC);        /* 1 h rollup */
	check_step(f, T0, end, 10 * SEC);          /* raw: one interval per step */
	check_step(f, T0, end, 300 * SEC);         /* 5 min from the 1 m rollup */
	check_step(f, T0 + 1234 * SEC, T0 + 5000 * SEC, 7 * SEC);  /* raw, odd range */
}

static void test_raw_step_is_interval(void **state)
{
	struct fixture *f = *state;
	struct us_series_point *pts;
	size_t n;

	ingest(f, 0, 60);
	rollup(f, NULL, NULL);
	pts = query(f, "runq_latency", T0, start_of(60), 10 * SEC, &n);
	assert_int_equal(n, 60);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(pts[i].start_ns, start_of(i) - OFFSET);
		assert_int_equal(pts[i].count, f->hists[i].count);
		assert_int_equal(pts[i].sum, f->hists[i].sum);
		assert_true(pts[i].p99 == us_hist_quantile(&f->hists[i], 0.99));
	}
	free(pts);
	/* gauges: the mean of the observations in the step */
	pts = query(f, "inflight", T0, start_of(60), 3600 * SEC, &n);
	assert_int_equal(n, 1);
	{
		double sum = 0;

		for (size_t i = 0; i < 60; i++)
			sum += f->gauges[i];
		assert_int_equal(pts[0].count, 60);
		assert_true(pts[0].mean == sum / 60);
	}
	free(pts);
}

static void test_watermark(void **state)
{
	struct fixture *f = *state;
	struct us_rollup_stats stats;

	ingest(f, 0, 360);
	rollup(f, NULL, &stats);
	assert_int_equal(stats.envelopes, 360);
	rollup(f, NULL, &stats);
	assert_int_equal(stats.envelopes, 0);
	assert_int_equal(stats.points, 0);
	/* small transactions: the watermark advances chunk by chunk */
	ingest(f, 360, N_3H);
	{
		struct us_rollup_config cfg;

		us_rollup_config_defaults(&cfg);
		cfg.batch_envelopes = 7;
		rollup(f, &cfg, &stats);
	}
	assert_int_equal(stats.envelopes, N_3H - 360);
	assert_true(stats.transactions >= (N_3H - 360) / 7);
	rollup(f, NULL, &stats);
	assert_int_equal(stats.envelopes, 0);
	assert_int_equal(query_int(f->path, "SELECT watermark FROM rollup_state"),
			 query_int(f->path, "SELECT max(rowid) FROM envelopes"));
	check_step(f, T0, start_of(N_3H), 3600 * SEC);
	check_step(f, T0, start_of(N_3H), 60 * SEC);
}

/* Rows are kept iff their (bucket) start is at or after newest - limit. */
static void check_kept(struct fixture *f, const char *table, const char *col,
		       uint64_t width, uint64_t horizon)
{
	char sql[256];
	int64_t want = 0;
	uint64_t prev = UINT64_MAX;

	for (size_t i = 0; i < f->n; i++) {
		uint64_t b = width ? start_of(i) - start_of(i) % width : start_of(i);

		if (b >= horizon && b != prev)
			want++;
		prev = b;
	}
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s s JOIN series ON s.series_id = "
		 "series.id WHERE metric = 'runq_latency'", table);
	assert_int_equal(query_int(f->path, sql), want);
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s WHERE %s < %llu", table, col,
		 (unsigned long long)horizon);
	assert_int_equal(query_int(f->path, sql), 0);
}

static void test_retention(void **state)
{
	struct fixture *f = *state;
	struct us_rollup_config cfg;
	struct us_rollup_stats stats;
	uint64_t newest = start_of(N_3H - 1);

	us_rollup_config_defaults(&cfg);
	cfg.raw_retention_ns = 3600 * SEC;
	cfg.minute_retention_ns = 2 * 3600 * SEC + 30 * SEC;
	cfg.hour_retention_ns = 2 * 3600 * SEC;
	ingest(f, 0, N_3H);
	rollup(f, &cfg, &stats);
	assert_true(stats.deleted > 0);
	check_kept(f, "points_raw", "start_ns", 0, newest - cfg.raw_retention_ns);
	check_kept(f, "rollup_1m", "bucket_start_ns", 60 * SEC, newest - cfg.minute_retention_ns);
	check_kept(f, "rollup_1h", "bucket_start_ns", 3600 * SEC, newest - cfg.hour_retention_ns);
	/* the frames as received go with the raw points, and the agent's seq
	 * floor rises to the last pruned seq */
	{
		char sql[256];
		int64_t kept, floor;

		snprintf(sql, sizeof(sql), "SELECT count(*) FROM envelopes WHERE received_ns < %llu",
			 (unsigned long long)(newest - cfg.raw_retention_ns));
		assert_int_equal(query_int(f->path, sql), 0);
		kept = query_int(f->path, "SELECT count(*) FROM envelopes");
		assert_true(kept > 0 && kept < N_3H);
		assert_int_equal(query_int(f->path, "SELECT count(*) FROM metric_batches"), kept);
		floor = query_int(f->path, "SELECT seq_floor FROM agents");
		assert_int_equal(floor, 1000 + (N_3H - kept) - 1);
		assert_int_equal(query_int(f->path, "SELECT min(seq) FROM envelopes"), floor + 1);
	}
	/* a very late resend of a pruned envelope is still a duplicate */
	{
		struct us_buf frame = { 0 };
		struct us_envelope_view v;
		enum us_frame_type type;
		const uint8_t *body;
		size_t body_len;
		char err[512];

		f->seq = 1000;
		encode_batch(f, 0, &frame);
		assert_int_equal(us_frame_unpack(&f->codec, frame.data, frame.len, &type, &body,
						 &body_len, err, sizeof(err)), US_FRAME_OK);
		assert_int_equal(us_scan_envelope(body, body_len, &v, err, sizeof(err)), US_FRAME_OK);
		assert_int_equal(us_store_begin(f->st, err, sizeof(err)), 0);
		assert_int_equal(us_store_put_envelope(f->st, f->agent, &v, frame.data, frame.len,
						       start_of(N_3H), err, sizeof(err)),
				 US_STORE_DUPLICATE);
		assert_int_equal(us_store_commit(f->st, err, sizeof(err)), 0);
		us_buf_free(&frame);
	}
	/* defaults keep all of it */
	rollup(f, NULL, &stats);
	assert_int_equal(stats.deleted, 0);
}

/* Schema v1, verbatim: the fixture a v1 coordinator left behind. */
static const char v1_schema[] =
	"CREATE TABLE agents("
	"  id INTEGER PRIMARY KEY,"
	"  name TEXT NOT NULL UNIQUE,"
	"  public_key TEXT,"
	"  hostname TEXT, kernel_release TEXT, agent_version TEXT, boot_id TEXT,"
	"  first_seen_ns INTEGER NOT NULL, last_seen_ns INTEGER NOT NULL,"
	"  state TEXT NOT NULL DEFAULT 'live',"
	"  spool_dropped_total INTEGER NOT NULL DEFAULT 0,"
	"  last_heartbeat_ns INTEGER);"
	"CREATE TABLE workloads("
	"  id INTEGER PRIMARY KEY,"
	"  agent_id INTEGER NOT NULL REFERENCES agents(id),"
	"  name TEXT NOT NULL, role INTEGER NOT NULL,"
	"  cgroup_id INTEGER, cgroup_path TEXT, ports TEXT, labels TEXT,"
	"  updated_ns INTEGER NOT NULL,"
	"  UNIQUE(agent_id, name));"
	"CREATE TABLE envelopes("
	"  agent_id INTEGER NOT NULL REFERENCES agents(id),"
	"  seq INTEGER NOT NULL,"
	"  kind INTEGER NOT NULL,"
	"  sent_ns INTEGER NOT NULL, received_ns INTEGER NOT NULL,"
	"  frame BLOB NOT NULL,"
	"  UNIQUE(agent_id, seq));"
	"CREATE TABLE metric_batches("
	"  agent_id INTEGER NOT NULL, seq INTEGER NOT NULL,"
	"  workload TEXT NOT NULL, role INTEGER NOT NULL,"
	"  start_ns INTEGER NOT NULL, end_ns INTEGER NOT NULL,"
	"  histograms INTEGER NOT NULL,"
	"  PRIMARY KEY(agent_id, seq)) WITHOUT ROWID;"
	"CREATE INDEX metric_batches_by_workload ON metric_batches(workload, role, start_ns);"
	"CREATE TABLE self_metrics(name TEXT PRIMARY KEY, value INTEGER NOT NULL);";

static void test_migrate_from_v1(void **state)
{
	struct fixture *f = *state;
	struct us_store_options opt = { .synchronous_full = 0 };
	struct us_buf frame = { 0 };
	sqlite3 *db;
	sqlite3_stmt *ins;
	char err[512];

	us_store_close(f->st);
	f->st = NULL;
	unlink(f->path);
	snprintf(err, sizeof(err), "%s-wal", f->path);
	unlink(err);
	snprintf(err, sizeof(err), "%s-shm", f->path);
	unlink(err);
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, v1_schema, NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 1;"
				      "INSERT INTO agents(id, name, first_seen_ns, last_seen_ns) "
				      "VALUES (1, 'a1', 1, 1)", NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "INSERT INTO envelopes VALUES (1, ?, 11, 0, 0, ?)",
					    -1, &ins, NULL), SQLITE_OK);
	for (size_t i = 0; i < 120; i++) {
		make_interval(f, i);
		encode_batch(f, i, &frame);
		sqlite3_bind_int64(ins, 1, (sqlite3_int64)f->seq);
		sqlite3_bind_blob(ins, 2, frame.data, (int)frame.len, SQLITE_TRANSIENT);
		assert_int_equal(sqlite3_step(ins), SQLITE_DONE);
		sqlite3_reset(ins);
	}
	f->n = 120;
	sqlite3_finalize(ins);
	sqlite3_close(db);
	us_buf_free(&frame);

	f->st = us_store_open(f->path, &opt, err, sizeof(err));
	if (!f->st)
		fail_msg("open v1: %s", err);
	assert_int_equal(query_int(f->path, "PRAGMA user_version"), US_STORE_SCHEMA_VERSION);
	assert_int_equal(query_int(f->path, "SELECT count(*) FROM envelopes"), 120);
	assert_int_equal(query_int(f->path, "SELECT count(*) FROM agents WHERE name = 'a1'"), 1);
	rollup(f, NULL, NULL);
	check_step(f, T0, start_of(120), 60 * SEC);
	check_step(f, T0, start_of(120), 10 * SEC);
}

static void test_worker_thread(void **state)
{
	struct fixture *f = *state;
	struct us_rollup_config cfg;
	struct us_rollup *r;
	char err[512];
	int64_t done = 0;

	us_rollup_config_defaults(&cfg);
	cfg.poll_ns = 10 * US_NS_PER_MS;
	r = us_rollup_start(f->path, &cfg, err, sizeof(err));
	if (!r)
		fail_msg("start: %s", err);
	/* ingest writes while the worker rolls up */
	for (size_t i = 0; i < 360; i += 60)
		ingest(f, i, i + 60);
	for (int tries = 0; tries < 500 && done != 360; tries++) {
		usleep(10000);
		done = query_int(f->path, "SELECT count(*) FROM points_raw p JOIN series s ON "
				 "p.series_id = s.id WHERE s.metric = 'runq_latency'");
	}
	us_rollup_stop(r);
	assert_int_equal(done, 360);
	check_step(f, T0, start_of(360), 60 * SEC);
}

static void expect_invalid(struct fixture *f, struct us_series_query q, const char *want)
{
	struct us_series_point *pts = (void *)1;
	sqlite3 *db;
	size_t n = 7;
	char err[512] = "";

	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(us_series_query(db, &q, &pts, &n, err, sizeof(err)), -1);
	sqlite3_close(db);
	assert_null(pts);
	assert_int_equal(n, 0);
	if (strncmp(err, want, strlen(want)) != 0)
		fail_msg("error '%s', expected it to start with '%s'", err, want);
}

static void test_query_validation(void **state)
{
	struct fixture *f = *state;
	const struct us_series_query ok = {
		.workload = "checkout", .role = UNDERSTUDY__ROLE__PRODUCTION,
		.metric = "runq_latency", .from_ns = T0, .to_ns = T0 + 3600 * SEC, .step_ns = SEC,
	};
	struct us_series_query q;
	struct us_series_point *pts;
	sqlite3 *db;
	size_t n;
	char err[512];

	q = ok; q.step_ns = SEC - 1;
	expect_invalid(f, q, "step: must be at least 1s");
	q = ok; q.to_ns = q.from_ns;
	expect_invalid(f, q, "from: must be before to");
	q = ok; q.workload = "";
	expect_invalid(f, q, "workload: required");
	q = ok; q.metric = NULL;
	expect_invalid(f, q, "metric: required");
	q = ok; q.role = 0;
	expect_invalid(f, q, "role:");
	q = ok; q.to_ns = T0 + 200000 * SEC;
	expect_invalid(f, q, "step: the range holds 200000 steps");
	/* an unknown series is no error, just no points */
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(us_series_query(db, &ok, &pts, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 0);
	free(pts);
	sqlite3_close(db);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_rollup_exact, setup, teardown),
		cmocka_unit_test_setup_teardown(test_raw_step_is_interval, setup, teardown),
		cmocka_unit_test_setup_teardown(test_watermark, setup, teardown),
		cmocka_unit_test_setup_teardown(test_retention, setup, teardown),
		cmocka_unit_test_setup_teardown(test_migrate_from_v1, setup, teardown),
		cmocka_unit_test_setup_teardown(test_worker_thread, setup, teardown),
		cmocka_unit_test_setup_teardown(test_query_validation, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
