/* Request samples in the coordinator store (schema v5), on real SQLite files:
 * every field of every RequestSample stored, once per envelope (a resend,
 * even of a pruned envelope, adds nothing), invalid batches refused by the
 * scanner and the reference alike, the migration of a v4 database that keeps
 * its data, retention.requests (config and the rollup pass deleting old
 * samples only). */
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
#include "coord_config.h"
#include "envelope.h"
#include "rollup.h"
#include "store.h"

#define SEC 1000000000ull
#define T0 1700000000000000000ull   /* in the past: retention's clock is data time */
#define MAXS 64

struct fixture {
	char dir[64];
	char path[128];
	struct us_store *st;
	int64_t agent;
};

static void remove_db(const struct fixture *f)
{
	char p[160];

	unlink(f->path);
	snprintf(p, sizeof(p), "%s-wal", f->path);
	unlink(p);
	snprintf(p, sizeof(p), "%s-shm", f->path);
	unlink(p);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct us_store_options opt = { .synchronous_full = 1 };
	char err[512];

	snprintf(f->dir, sizeof(f->dir), "/tmp/us-test-requests-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->path, sizeof(f->path), "%s/understudy.db", f->dir);
	f->st = us_store_open(f->path, &opt, err, sizeof(err));
	if (!f->st) {
		fprintf(stderr, "%s\n", err);
		return -1;
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[128];

	us_store_close(f->st);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
	if (system(cmd) != 0)
		return -1;
	free(f);
	return 0;
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

static void exec_sql(const char *path, const char *sql)
{
	sqlite3 *db;
	char *msg = NULL;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
		fail_msg("%s: %s", sql, msg);
	sqlite3_close(db);
}

/* A RequestBatch of n samples, every field set and distinct per sample and
 * per batch (base), so a column read back can only have come from its own
 * field. */
struct batch {
	Understudy__Envelope env;
	Understudy__RequestBatch rb;
	Understudy__RequestSample s[MAXS];
	Understudy__RequestSample *sp[MAXS];
	uint8_t buf[16384];
	size_t len;
	struct us_envelope_view v;
};

static const char *const methods[] = { "GET", "POST", "", "DELETE" };

static void batch_init(struct batch *b, uint64_t seq, const char *workload, int role,
		       unsigned int n, uint64_t base_ns)
{
	assert_true(n <= MAXS);
	understudy__envelope__init(&b->env);
	understudy__request_batch__init(&b->rb);
	b->env.agent_id = "a1";
	b->env.seq = seq;
	b->env.sent_unix_ns = base_ns;
	b->env.schema_version = US_SCHEMA_VERSION;
	b->env.body_case = UNDERSTUDY__ENVELOPE__BODY_REQUEST_BATCH;
	b->env.request_batch = &b->rb;
	b->rb.workload = (char *)workload;
	b->rb.role = (Understudy__Role)role;
	b->rb.n_samples = n;
	b->rb.samples = b->sp;
	for (unsigned int i = 0; i < n; i++) {
		Understudy__RequestSample *s = &b->s[i];

		understudy__request_sample__init(s);
		s->start_ns = base_ns + i * SEC;
		s->latency_ns = 1000 + i;
		s->end_ns = s->start_ns + 5000 + i;
		s->status_class = (Understudy__StatusClass)(i % 7);
		s->status_code = 200 + i;
		s->bytes_in = 300 + i;
		s->bytes_out = 4000 + i;
		s->connection_id = 70000 + seq * 100 + i;
		s->request_index = 9 + i;
		s->truncated = i % 2;
		s->method = (char *)methods[i % 4];
		s->shadow_outcome = (Understudy__ShadowOutcome)(i % 9);
		s->shadow_latency_ns = 2000 + i;
		s->shadow_status_code = 500 + i;
		s->shadow_status_class = (Understudy__StatusClass)((i + 3) % 7);
		s->shadow_bytes_out = 8000 + i;
		b->sp[i] = s;
	}
}

static enum us_frame_err batch_scan(struct batch *b, char *err, size_t errlen)
{
	assert_true(understudy__envelope__get_packed_size(&b->env) <= sizeof(b->buf));
	b->len = understudy__envelope__pack(&b->env, b->buf);
	return us_scan_envelope(b->buf, b->len, &b->v, err, errlen);
}

static enum us_store_put batch_put(struct us_store *st, int64_t agent, struct batch *b)
{
	static const uint8_t frame[4] = { 'U', 1, 0, 0 };
	char err[512];
	enum us_store_put r;

	if (batch_scan(b, err, sizeof(err)) != US_FRAME_OK)
		fail_msg("scan: %s", err);
	r = us_store_put_envelope(st, agent, &b->v, frame, sizeof(frame), 1, err, sizeof(err));
	if (r == US_STORE_ERROR)
		fail_msg("%s", err);
	return r;
}

static void begin(struct fixture *f)
{
	char err[512];

	assert_int_equal(us_store_begin(f->st, err, sizeof(err)), 0);
	if (f->agent == 0)
		assert_int_equal(us_store_agent_id(f->st, "a1", NULL, &f->agent, err, sizeof(err)),
				 0);
}

static void commit(struct fixture *f)
{
	char err[512];

	if (us_store_commit(f->st, err, sizeof(err)) < 0)
		fail_msg("%s", err);
}

static void test_every_field_stored(void **state)
{
	struct fixture *f = *state;
	static struct batch b;
	sqlite3 *db;
	sqlite3_stmt *q;
	unsigned int n = 0;

	begin(f);
	batch_init(&b, 5, "checkout", UNDERSTUDY__ROLE__SHADOW, 12, T0);
	assert_int_equal(batch_put(f->st, f->agent, &b), US_STORE_NEW);
	commit(f);

	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db,
		"SELECT agent_id, workload, role, start_ns, end_ns, latency_ns, status_code, "
		"status_class, bytes_in, bytes_out, connection_id, request_index, truncated, "
		"method, shadow_outcome, shadow_latency_ns, shadow_status_code, "
		"shadow_status_class, shadow_bytes_out, typeof(method), id "
		"FROM request_samples ORDER BY request_index", -1, &q, NULL), SQLITE_OK);
	while (sqlite3_step(q) == SQLITE_ROW) {
		const Understudy__RequestSample *s = &b.s[n++];

		assert_true(n <= 12);
		assert_string_equal((const char *)sqlite3_column_text(q, 0), "a1");
		assert_string_equal((const char *)sqlite3_column_text(q, 1), "checkout");
		assert_int_equal(sqlite3_column_int64(q, 2), UNDERSTUDY__ROLE__SHADOW);
		assert_int_equal(sqlite3_column_int64(q, 3), s->start_ns);
		assert_int_equal(sqlite3_column_int64(q, 4), s->end_ns);
		assert_int_equal(sqlite3_column_int64(q, 5), s->latency_ns);
		assert_int_equal(sqlite3_column_int64(q, 6), s->status_code);
		assert_int_equal(sqlite3_column_int64(q, 7), s->status_class);
		assert_int_equal(sqlite3_column_int64(q, 8), s->bytes_in);
		assert_int_equal(sqlite3_column_int64(q, 9), s->bytes_out);
		assert_int_equal(sqlite3_column_int64(q, 10), s->connection_id);
		assert_int_equal(sqlite3_column_int64(q, 11), s->request_index);
		assert_int_equal(sqlite3_column_int64(q, 12), s->truncated ? 1 : 0);
		assert_string_equal((const char *)sqlite3_column_text(q, 13), s->method);
		assert_int_equal(sqlite3_column_int64(q, 14), s->shadow_outcome);
		assert_int_equal(sqlite3_column_int64(q, 15), s->shadow_latency_ns);
		assert_int_equal(sqlite3_column_int64(q, 16), s->shadow_status_code);
		assert_int_equal(sqlite3_column_int64(q, 17), s->shadow_status_class);
		assert_int_equal(sqlite3_column_int64(q, 18), s->shadow_bytes_out);
		/* raw mode's "" is an empty string, not NULL */
		assert_string_equal((const char *)sqlite3_column_text(q, 19), "text");
	}
	sqlite3_finalize(q);
	sqlite3_close(db);
	assert_int_equal(n, 12);
	/* the largest values the validation lets through come back unchanged */
	begin(f);
	batch_init(&b, 6, "checkout", UNDERSTUDY__ROLE__PRODUCTION, 1, T0);
	b.s[0].start_ns = b.s[0].end_ns = INT64_MAX;
	b.s[0].latency_ns = b.s[0].bytes_in = b.s[0].bytes_out = b.s[0].connection_id =
		b.s[0].shadow_latency_ns = b.s[0].shadow_bytes_out = INT64_MAX;
	b.s[0].status_code = b.s[0].request_index = b.s[0].shadow_status_code = UINT32_MAX;
	assert_int_equal(batch_put(f->st, f->agent, &b), US_STORE_NEW);
	/* and an empty batch is an envelope without samples */
	batch_init(&b, 7, "checkout", UNDERSTUDY__ROLE__PRODUCTION, 0, T0);
	assert_int_equal(batch_put(f->st, f->agent, &b), US_STORE_NEW);
	commit(f);
	assert_int_equal(query_int(f->path, "SELECT count(*) FROM request_samples WHERE "
				   "start_ns = 9223372036854775807 AND end_ns = start_ns AND "
				   "latency_ns = start_ns AND bytes_in = start_ns AND bytes_out = start_ns "
				   "AND connection_id = start_ns AND shadow_latency_ns = start_ns AND "
				   "shadow_bytes_out = start_ns AND status_code = 4294967295 AND "
				   "request_index = 4294967295 AND shadow_status_code = 4294967295 "
				   "AND role = 1"), 1);
	assert_int_equal(query_int(f->path, "SELECT count(*) FROM request_samples"), 13);
	assert_int_equal(query_int(f->path, "SELECT count(*) FROM envelopes"), 3);
}

static void test_resend_adds_nothing(void **state)
{
	struct fixture *f = *state;
	static struct batch b;
	char err[512];

	begin(f);
	batch_init(&b, 100, "checkout", UNDERSTUDY__ROLE__PRODUCTION, 10, T0);
	assert_int_equal(batch_put(f->st, f->agent, &b), US_STORE_NEW);
	/* resent within the same transaction */
	assert_int_equal(batch_put(f->st, f->agent, &b), US_STORE_DUPLICATE);
	commit(f);
	assert_int_equal(query_int(f->path, "SELECT count(*) FROM request_samples"), 10);

	/* resent in a later transaction, even with other content (a resend is
	 * the same (agent, seq), whatever it holds) */
	begin(f);
	assert_int_equal(batch_put(f->st, f->agent, &b), US_STORE_DUPLICATE);
	batch_init(&b, 100, "checkout", UNDERSTUDY__ROLE__PRODUCTION, 20, T0 + SEC);
	assert_int_equal(batch_put(f->st, f->agent, &b), US_STORE_DUPLICATE);
	commit(f);
	assert_int_equal(query_int(f->path, "SELECT count(*) FROM request_samples"), 10);

	/* a rolled-back batch leaves no samples and its seq is new again */
	begin(f);
	batch_init(&b, 101, "checkout", UNDERSTUDY__ROLE__PRODUCTION, 7, T0);
	assert_int_equal(batch_put(f->st, f->agent, &b), US_STORE_NEW);
	us_store_rollback(f->st);
	assert_int_equal(query_int(f->path, "SELECT count(*) FROM request_samples"), 10);
	begin(f);
	assert_int_equal(batch_put(f->st, f->agent, &b), US_STORE_NEW);
	commit(f);
	assert_int_equal(query_int(f->path, "SELECT count(*) FROM request_samples"), 17);

	/* the envelope pruned by retention.raw (seq_floor raised, frame gone,
	 * as rollup.c does it): a very late resend is still a duplicate */
	exec_sql(f->path, "UPDATE agents SET seq_floor = 101; DELETE FROM envelopes;");
	begin(f);
	assert_int_equal(batch_put(f->st, f->agent, &b), US_STORE_DUPLICATE);
	batch_init(&b, 100, "checkout", UNDERSTUDY__ROLE__PRODUCTION, 10, T0);
	assert_int_equal(batch_put(f->st, f->agent, &b), US_STORE_DUPLICATE);
	commit(f);
	assert_int_equal(query_int(f->path, "SELECT count(*) FROM request_samples"), 17);
	assert_int_equal(query_int(f->path, "SELECT count(*) FROM (SELECT DISTINCT connection_id, "
				   "request_index FROM request_samples)"), 17);
	(void)err;
}

/* The scanner and the reference decoder (protobuf-c + us_envelope_validate)
 * refuse the same batches, as invalid, before anything reaches the store. */
static void refused_invalid(struct batch *b, const char *why)
{
	char err[256];
	Understudy__Envelope *env;

	assert_int_equal(batch_scan(b, err, sizeof(err)), US_FRAME_ERR_INVALID);
	if (!strstr(err, why))
		fail_msg("scanner: '%s' does not say '%s'", err, why);
	env = understudy__envelope__unpack(NULL, b->len, b->buf);
	assert_non_null(env);
	assert_int_equal(us_envelope_validate(env, err, sizeof(err)), -1);
	if (!strstr(err, why))
		fail_msg("reference: '%s' does not say '%s'", err, why);
	understudy__envelope__free_unpacked(env, NULL);
}

static void test_invalid_refused(void **state)
{
	static struct batch b;
	char err[256];
	uint64_t *fields[] = {
		&b.s[2].latency_ns, &b.s[2].bytes_in, &b.s[2].bytes_out, &b.s[2].connection_id,
		&b.s[2].shadow_latency_ns, &b.s[2].shadow_bytes_out,
	};

	(void)state;
	batch_init(&b, 1, "", UNDERSTUDY__ROLE__PRODUCTION, 3, T0);
	refused_invalid(&b, "empty workload");
	batch_init(&b, 1, "", UNDERSTUDY__ROLE__PRODUCTION, 0, T0);
	refused_invalid(&b, "empty workload");
	batch_init(&b, 1, "checkout", UNDERSTUDY__ROLE__PRODUCTION, 3, T0);
	b.s[2].end_ns = b.s[2].start_ns - 1;
	refused_invalid(&b, "sample 2 ends before it starts");
	batch_init(&b, 1, "checkout", UNDERSTUDY__ROLE__PRODUCTION, 3, T0);
	b.s[2].end_ns = (uint64_t)INT64_MAX + 1;
	refused_invalid(&b, "past 2^63");
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		batch_init(&b, 1, "checkout", UNDERSTUDY__ROLE__PRODUCTION, 3, T0);
		*fields[i] = UINT64_MAX;
		refused_invalid(&b, "sample 2 has a value past 2^63");
	}
	/* a start equal to its end is a valid (instant) request */
	batch_init(&b, 1, "checkout", UNDERSTUDY__ROLE__PRODUCTION, 3, T0);
	b.s[1].end_ns = b.s[1].start_ns;
	assert_int_equal(batch_scan(&b, err, sizeof(err)), US_FRAME_OK);
	/* unknown enum values (a newer agent's) pass, as numbers */
	b.s[1].shadow_outcome = (Understudy__ShadowOutcome)42;
	b.s[1].status_class = (Understudy__StatusClass)17;
	assert_int_equal(batch_scan(&b, err, sizeof(err)), US_FRAME_OK);
}

/* The v4 schema exactly as migrations 1-4 left it. */
static const char v4_schema[] =
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
	"CREATE TABLE self_metrics(name TEXT PRIMARY KEY, value INTEGER NOT NULL);"
	"CREATE TABLE series("
	"  id INTEGER PRIMARY KEY,"
	"  workload TEXT NOT NULL, role INTEGER NOT NULL, metric TEXT NOT NULL,"
	"  unit TEXT NOT NULL DEFAULT '',"
	"  kind TEXT NOT NULL CHECK(kind IN ('histogram', 'counter', 'gauge')),"
	"  UNIQUE(workload, role, metric));"
	"CREATE TABLE points_raw("
	"  series_id INTEGER NOT NULL REFERENCES series(id),"
	"  start_ns INTEGER NOT NULL, end_ns INTEGER NOT NULL,"
	"  count INTEGER NOT NULL, sum INTEGER NOT NULL,"
	"  gauge_sum REAL, gauge_last REAL, last_ns INTEGER, hist BLOB,"
	"  UNIQUE(series_id, start_ns));"
	"CREATE TABLE rollup_1m("
	"  series_id INTEGER NOT NULL REFERENCES series(id),"
	"  bucket_start_ns INTEGER NOT NULL, end_ns INTEGER NOT NULL,"
	"  count INTEGER NOT NULL, sum INTEGER NOT NULL,"
	"  gauge_sum REAL, gauge_last REAL, last_ns INTEGER, hist BLOB,"
	"  UNIQUE(series_id, bucket_start_ns));"
	"CREATE TABLE rollup_1h("
	"  series_id INTEGER NOT NULL REFERENCES series(id),"
	"  bucket_start_ns INTEGER NOT NULL, end_ns INTEGER NOT NULL,"
	"  count INTEGER NOT NULL, sum INTEGER NOT NULL,"
	"  gauge_sum REAL, gauge_last REAL, last_ns INTEGER, hist BLOB,"
	"  UNIQUE(series_id, bucket_start_ns));"
	"CREATE INDEX points_raw_by_time ON points_raw(start_ns);"
	"CREATE INDEX rollup_1m_by_time ON rollup_1m(bucket_start_ns);"
	"CREATE INDEX rollup_1h_by_time ON rollup_1h(bucket_start_ns);"
	"CREATE TABLE rollup_state("
	"  id INTEGER PRIMARY KEY CHECK(id = 1),"
	"  watermark INTEGER NOT NULL, newest_ns INTEGER NOT NULL);"
	"INSERT INTO rollup_state VALUES (1, 0, 0);"
	"CREATE TABLE commands("
	"  id INTEGER PRIMARY KEY,"
	"  agent TEXT NOT NULL,"
	"  action TEXT NOT NULL CHECK (action IN "
	"    ('report_now', 'reload_config', 'start_mirror', 'stop_mirror')),"
	"  workload TEXT, endpoint TEXT, sample REAL, scale INTEGER,"
	"  created_ns INTEGER NOT NULL, expires_ns INTEGER NOT NULL,"
	"  state TEXT NOT NULL DEFAULT 'pending',"
	"  sent_count INTEGER NOT NULL DEFAULT 0, last_sent_ns INTEGER,"
	"  result TEXT, finished_ns INTEGER);"
	"CREATE INDEX commands_by_agent ON commands(agent, state);"
	"ALTER TABLE agents ADD COLUMN seq_floor INTEGER NOT NULL DEFAULT 0;"
	"CREATE INDEX envelopes_by_time ON envelopes(received_ns);";

static void test_migrate_from_v4(void **state)
{
	struct fixture *f = *state;
	struct us_store_options opt = { .synchronous_full = 0 };
	static struct batch b;
	char err[512];

	us_store_close(f->st);
	f->st = NULL;
	remove_db(f);
	exec_sql(f->path, v4_schema);
	exec_sql(f->path,
		 "PRAGMA user_version = 4;"
		 "INSERT INTO agents(id, name, first_seen_ns, last_seen_ns, hostname, seq_floor) "
		 "  VALUES (1, 'a1', 1, 2, 'web-1', 40);"
		 "INSERT INTO envelopes VALUES (1, 41, 13, 5, 6, x'55010000');"
		 "INSERT INTO envelopes VALUES (1, 42, 11, 5, 6, x'55010000');"
		 "INSERT INTO metric_batches VALUES (1, 42, 'checkout', 1, 100, 200, 3);"
		 "INSERT INTO series(workload, role, metric, kind) VALUES ('checkout', 1, 'm', 'counter');"
		 "INSERT INTO points_raw(series_id, start_ns, end_ns, count, sum) VALUES (1, 100, 200, 0, 9);"
		 "UPDATE rollup_state SET watermark = 2, newest_ns = 100;"
		 "INSERT INTO commands(agent, action, created_ns, expires_ns) "
		 "  VALUES ('a1', 'report_now', 1, 2);"
		 "INSERT INTO self_metrics VALUES ('envelopes_stored', 2);");

	f->st = us_store_open(f->path, &opt, err, sizeof(err));
	if (!f->st)
		fail_msg("open v4: %s", err);
	/* v4 -> v5 (request_samples) and on to the current schema */
	assert_int_equal(query_int(f->path, "PRAGMA user_version"), US_STORE_SCHEMA_VERSION);
	assert_int_equal(query_int(f->path, "SELECT count(*) FROM request_samples"), 0);
	assert_int_equal(query_int(f->path, "SELECT count(*) FROM migration_journal"), 0);
	/* everything v4 held is there, untouched */
	assert_int_equal(query_int(f->path, "SELECT seq_floor FROM agents WHERE name = 'a1' "
				   "AND hostname = 'web-1'"), 40);
	assert_int_equal(query_int(f->path, "SELECT count(*) FROM envelopes"), 2);
	assert_int_equal(query_int(f->path, "SELECT histograms FROM metric_batches WHERE seq = 42"), 3);
	assert_int_equal(query_int(f->path, "SELECT sum FROM points_raw"), 9);
	assert_int_equal(query_int(f->path, "SELECT watermark FROM rollup_state"), 2);
	assert_int_equal(query_int(f->path, "SELECT count(*) FROM commands WHERE state = 'pending'"), 1);
	assert_int_equal(query_int(f->path, "SELECT value FROM self_metrics"), 2);
	/* and the new table, empty, with both indexes */
	assert_int_equal(query_int(f->path, "SELECT count(*) FROM request_samples"), 0);
	assert_int_equal(query_int(f->path, "SELECT count(*) FROM pragma_table_info('request_samples')"),
			 20);
	assert_int_equal(query_int(f->path, "SELECT count(*) FROM sqlite_master WHERE type = 'index' "
				   "AND tbl_name = 'request_samples' AND name IN "
				   "('request_samples_by_workload', 'request_samples_by_time')"), 2);
	assert_int_equal(query_int(f->path, "SELECT count(*) FROM pragma_index_info("
				   "'request_samples_by_workload') WHERE (seqno = 0 AND name = 'workload') "
				   "OR (seqno = 1 AND name = 'start_ns')"), 2);
	/* the migrated store takes request batches, exactly once, and the v4
	 * seq floor still turns old seqs into duplicates */
	f->agent = 1;
	begin(f);
	batch_init(&b, 43, "checkout", UNDERSTUDY__ROLE__PRODUCTION, 4, T0);
	assert_int_equal(batch_put(f->st, f->agent, &b), US_STORE_NEW);
	assert_int_equal(batch_put(f->st, f->agent, &b), US_STORE_DUPLICATE);
	batch_init(&b, 40, "checkout", UNDERSTUDY__ROLE__PRODUCTION, 4, T0);
	assert_int_equal(batch_put(f->st, f->agent, &b), US_STORE_DUPLICATE);
	commit(f);
	assert_int_equal(query_int(f->path, "SELECT count(*) FROM request_samples"), 4);
	/* reopening at v5 migrates nothing more */
	us_store_close(f->st);
	f->st = us_store_open(f->path, &opt, err, sizeof(err));
	if (!f->st)
		fail_msg("reopen: %s", err);
	assert_int_equal(query_int(f->path, "SELECT count(*) FROM request_samples"), 4);
}

static void rollup(struct fixture *f, uint64_t keep_ns, struct us_rollup_stats *stats)
{
	struct us_rollup_config cfg;
	char err[512];

	us_rollup_config_defaults(&cfg);
	cfg.requests_retention_ns = keep_ns;
	if (us_rollup_run_once(f->path, &cfg, stats, err, sizeof(err)) < 0)
		fail_msg("%s", err);
}

static void test_retention(void **state)
{
	struct fixture *f = *state;
	static struct batch b;
	struct us_rollup_stats stats;
	struct us_rollup_config defaults;
	const uint64_t newest = T0 + 10 * 3600 * SEC;
	char sql[256];

	us_rollup_config_defaults(&defaults);
	assert_int_equal(defaults.requests_retention_ns, 7 * 24 * 3600 * SEC);
	/* nothing stored: retention has nothing to do and does not fail */
	rollup(f, 3600 * SEC, &stats);
	assert_int_equal(stats.samples_deleted, 0);

	/* 11 batches an hour apart, of 60 samples a second apart, over two
	 * workloads */
	begin(f);
	for (unsigned int k = 0; k <= 10; k++) {
		batch_init(&b, 10 + k, k % 2 ? "checkout" : "search",
			   k % 2 ? UNDERSTUDY__ROLE__PRODUCTION : UNDERSTUDY__ROLE__SHADOW, 60,
			   T0 + k * 3600 * SEC);
		assert_int_equal(batch_put(f->st, f->agent, &b), US_STORE_NEW);
	}
	commit(f);
	assert_int_equal(query_int(f->path, "SELECT count(*) FROM request_samples"), 660);
	assert_int_equal(query_int(f->path, "SELECT max(start_ns) FROM request_samples"),
			 newest + 59 * SEC);

	/* the default 7 d keeps everything: the clock is the newest sample's
	 * start, not the wall clock (these samples are from 2023) */
	rollup(f, defaults.requests_retention_ns, &stats);
	assert_int_equal(stats.samples_deleted, 0);
	assert_int_equal(query_int(f->path, "SELECT count(*) FROM request_samples"), 660);

	/* keep 3 h: everything starting before newest + 59 s - 3 h goes */
	rollup(f, 3 * 3600 * SEC, &stats);
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM request_samples WHERE start_ns < %llu",
		 (unsigned long long)(newest + 59 * SEC - 3 * 3600 * SEC));
	assert_int_equal(query_int(f->path, sql), 0);
	/* batch 7 (starts newest - 3 h) loses its first 59 samples; 8, 9, 10 stay */
	assert_int_equal(query_int(f->path, "SELECT count(*) FROM request_samples"), 3 * 60 + 1);
	assert_int_equal(stats.samples_deleted, 660 - 181);
	assert_int_equal(stats.deleted, stats.samples_deleted);
	assert_int_equal(query_int(f->path, "SELECT count(DISTINCT workload) FROM request_samples"), 2);
	/* samples only: the envelopes holding them stay (retention.raw's) */
	assert_int_equal(query_int(f->path, "SELECT count(*) FROM envelopes"), 11);

	/* the horizon is capped at the wall clock: a sample stamped far in the
	 * future does not make an hour-old one look old; the 2023 ones are
	 * now older than 3 h by any clock */
	begin(f);
	batch_init(&b, 30, "checkout", UNDERSTUDY__ROLE__PRODUCTION, 1, us_now_ns() - 3600 * SEC);
	assert_int_equal(batch_put(f->st, f->agent, &b), US_STORE_NEW);
	batch_init(&b, 31, "checkout", UNDERSTUDY__ROLE__PRODUCTION, 1, 4000000000000000000ull);
	assert_int_equal(batch_put(f->st, f->agent, &b), US_STORE_NEW);
	commit(f);
	rollup(f, 3 * 3600 * SEC, &stats);
	assert_int_equal(stats.samples_deleted, 181);
	assert_int_equal(query_int(f->path, "SELECT count(*) FROM request_samples"), 2);
	assert_int_equal(query_int(f->path, "SELECT count(*) FROM request_samples WHERE "
				   "connection_id IN (73000, 73100)"), 2);

	/* a big first purge goes in bounded chunks (5000), and completely */
	begin(f);
	for (unsigned int k = 0; k < 120; k++) {
		batch_init(&b, 1000 + k, "bulk", UNDERSTUDY__ROLE__PRODUCTION, MAXS,
			   T0 - SEC * k * 100);
		assert_int_equal(batch_put(f->st, f->agent, &b), US_STORE_NEW);
	}
	commit(f);
	assert_int_equal(query_int(f->path, "SELECT count(*) FROM request_samples"), 2 + 120 * MAXS);
	rollup(f, 3 * 3600 * SEC, &stats);
	assert_int_equal(stats.samples_deleted, 120 * MAXS);
	assert_int_equal(query_int(f->path, "SELECT count(*) FROM request_samples"), 2);
}

static int load_config(const char *yaml, struct us_coord_config *c, char *err, size_t errlen)
{
	char path[] = "/tmp/us-test-requests-conf-XXXXXX";
	int fd = mkstemp(path), rc;

	assert_true(fd >= 0);
	assert_int_equal(write(fd, yaml, strlen(yaml)), (ssize_t)strlen(yaml));
	close(fd);
	us_coord_config_defaults(c);
	rc = us_coord_config_load(path, c, err, errlen);
	unlink(path);
	return rc;
}

static void test_config(void **state)
{
	struct us_coord_config c;
	char err[1024];

	(void)state;
	assert_int_equal(load_config("log_level: info\n", &c, err, sizeof(err)), 0);
	assert_int_equal(c.retention.requests_ns, 7 * 24 * 3600 * SEC);
	assert_int_equal(load_config("retention:\n  requests: 36h\n  raw: 2h\n", &c, err,
				     sizeof(err)), 0);
	assert_int_equal(c.retention.requests_ns, 36 * 3600 * SEC);
	assert_int_equal(c.retention.raw_ns, 2 * 3600 * SEC);
	assert_int_equal(load_config("retention:\n  requests: 30s\n", &c, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "retention.requests: must be at least 1m"));
	assert_int_equal(load_config("retention:\n  requests: soon\n", &c, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "retention.requests"));
	assert_int_equal(load_config("retention:\n  request: 1d\n", &c, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "requests"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_every_field_stored, setup, teardown),
		cmocka_unit_test_setup_teardown(test_resend_adds_nothing, setup, teardown),
		cmocka_unit_test(test_invalid_refused),
		cmocka_unit_test_setup_teardown(test_migrate_from_v4, setup, teardown),
		cmocka_unit_test_setup_teardown(test_retention, setup, teardown),
		cmocka_unit_test(test_config),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
