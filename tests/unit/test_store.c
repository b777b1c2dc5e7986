/* Coordinator store: exactly-once insert by (agent, seq), the rows derived
 * from each body type, transactions, and schema versioning (a newer
 * database is refused by name, an existing one reopens). */
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

#include "envelope.h"
#include "store.h"

/* The store takes envelopes as the ingest path hands them over: serialized,
 * then validated in place by the scanner. buf must outlive the view. */
static void to_view(Understudy__Envelope *env, uint8_t *buf, size_t cap,
		    struct us_envelope_view *v)
{
	char err[256];
	size_t n;

	env->schema_version = US_SCHEMA_VERSION;
	assert_true(understudy__envelope__get_packed_size(env) <= cap);
	n = understudy__envelope__pack(env, buf);
	if (us_scan_envelope(buf, n, v, err, sizeof(err)) != US_FRAME_OK)
		fail_msg("scan: %s", err);
}

struct fixture {
	char dir[64];
	char path[128];
	struct us_store *st;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct us_store_options opt = { .synchronous_full = 1 };
	char err[512];

	snprintf(f->dir, sizeof(f->dir), "/tmp/us-test-store-XXXXXX");
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
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &q, NULL), SQLITE_OK);
	if (sqlite3_step(q) == SQLITE_ROW)
		v = sqlite3_column_int64(q, 0);
	sqlite3_finalize(q);
	sqlite3_close(db);
	return v;
}

static enum us_store_put put_heartbeat(struct us_store *st, int64_t agent, uint64_t seq,
				       uint64_t dropped)
{
	Understudy__Envelope env = UNDERSTUDY__ENVELOPE__INIT;
	Understudy__Heartbeat hb = UNDERSTUDY__HEARTBEAT__INIT;
	struct us_envelope_view v;
	uint8_t frame[4] = { 'U', 1, 0, 0 }, buf[256];
	char err[512];

	env.agent_id = "a1";
	env.seq = seq;
	env.body_case = UNDERSTUDY__ENVELOPE__BODY_HEARTBEAT;
	env.heartbeat = &hb;
	hb.spool_dropped_total = dropped;
	to_view(&env, buf, sizeof(buf), &v);
	return us_store_put_envelope(st, agent, &v, frame, sizeof(frame), 1, err, sizeof(err));
}

static void test_exactly_once(void **state)
{
	struct fixture *f = *state;
	char err[512];
	int64_t agent, again;

	assert_int_equal(us_store_begin(f->st, err, sizeof(err)), 0);
	assert_int_equal(us_store_agent_id(f->st, "a1", "KEY", &agent, err, sizeof(err)), 0);
	assert_int_equal(us_store_agent_id(f->st, "a1", "KEY", &again, err, sizeof(err)), 0);
	assert_int_equal(agent, again);
	assert_int_equal(put_heartbeat(f->st, agent, 10, 0), US_STORE_NEW);
	assert_int_equal(put_heartbeat(f->st, agent, 10, 0), US_STORE_DUPLICATE);
	assert_int_equal(put_heartbeat(f->st, agent, 11, 0), US_STORE_NEW);
	assert_int_equal(us_store_commit(f->st, err, sizeof(err)), 0);
	/* a replay in a later transaction is still a duplicate */
	assert_int_equal(us_store_begin(f->st, err, sizeof(err)), 0);
	assert_int_equal(put_heartbeat(f->st, agent, 10, 0), US_STORE_DUPLICATE);
	assert_int_equal(us_store_commit(f->st, err, sizeof(err)), 0);
	assert_int_equal(query_int(f->path, "SELECT count(*) FROM envelopes"), 2);
}

static void test_rollback_discards(void **state)
{
	struct fixture *f = *state;
	char err[512];
	int64_t agent;

	assert_int_equal(us_store_begin(f->st, err, sizeof(err)), 0);
	assert_int_equal(us_store_agent_id(f->st, "a1", NULL, &agent, err, sizeof(err)), 0);
	assert_int_equal(put_heartbeat(f->st, agent, 1, 0), US_STORE_NEW);
	assert_int_equal(us_store_commit(f->st, err, sizeof(err)), 0);
	assert_int_equal(us_store_begin(f->st, err, sizeof(err)), 0);
	assert_int_equal(put_heartbeat(f->st, agent, 2, 0), US_STORE_NEW);
	us_store_rollback(f->st);
	assert_int_equal(query_int(f->path, "SELECT count(*) FROM envelopes"), 1);
	/* the rolled-back seq is new again when resent */
	assert_int_equal(us_store_begin(f->st, err, sizeof(err)), 0);
	assert_int_equal(put_heartbeat(f->st, agent, 2, 0), US_STORE_NEW);
	assert_int_equal(us_store_commit(f->st, err, sizeof(err)), 0);
}

static void test_derived_rows(void **state)
{
	struct fixture *f = *state;
	Understudy__Envelope env = UNDERSTUDY__ENVELOPE__INIT;
	Understudy__Hello hello = UNDERSTUDY__HELLO__INIT;
	Understudy__Workload wl = UNDERSTUDY__WORKLOAD__INIT, *wlp = &wl;
	Understudy__Label lab = UNDERSTUDY__LABEL__INIT, *labp = &lab;
	Understudy__MetricBatch mb = UNDERSTUDY__METRIC_BATCH__INIT;
	Understudy__Histogram h = UNDERSTUDY__HISTOGRAM__INIT, *hp = &h;
	uint32_t ports[2] = { 80, 443 };
	uint8_t frame[4] = { 'U', 1, 0, 0 }, buf[1024];
	struct us_envelope_view v;
	char err[512];
	int64_t agent;

	assert_int_equal(us_store_begin(f->st, err, sizeof(err)), 0);
	assert_int_equal(us_store_agent_id(f->st, "a1", NULL, &agent, err, sizeof(err)), 0);
	env.agent_id = "a1";
	env.seq = 1;
	hello.hostname = "web-1";
	hello.kernel_release = "6.1";
	hello.agent_version = "0.1.0";
	hello.boot_id = "b";
	wl.name = "checkout";
	wl.role = UNDERSTUDY__ROLE__PRODUCTION;
	wl.cgroup_id = 1234;
	wl.cgroup_path = "/sys/fs/cgroup/x";
	wl.ports = ports;
	wl.n_ports = 2;
	lab.key = "team";
	lab.value = "payments";
	wl.labels = &labp;
	wl.n_labels = 1;
	hello.workloads = &wlp;
	hello.n_workloads = 1;
	env.body_case = UNDERSTUDY__ENVELOPE__BODY_HELLO;
	env.hello = &hello;
	to_view(&env, buf, sizeof(buf), &v);
	assert_int_equal(us_store_put_envelope(f->st, agent, &v, frame, 4, 5, err, sizeof(err)),
			 US_STORE_NEW);

	mb.workload = "checkout";
	mb.role = UNDERSTUDY__ROLE__PRODUCTION;
	mb.interval_start_ns = 100;
	mb.interval_end_ns = 200;
	h.metric = "runq_latency";
	h.sub_bucket_bits = 5;
	mb.histograms = &hp;
	mb.n_histograms = 1;
	env.seq = 2;
	env.body_case = UNDERSTUDY__ENVELOPE__BODY_METRIC_BATCH;
	env.metric_batch = &mb;
	to_view(&env, buf, sizeof(buf), &v);
	assert_int_equal(us_store_put_envelope(f->st, agent, &v, frame, 4, 6, err, sizeof(err)),
			 US_STORE_NEW);
	/* heartbeat drop counts only ever rise (a late, older heartbeat
	 * cannot lower what the coordinator knows) */
	assert_int_equal(put_heartbeat(f->st, agent, 3, 7), US_STORE_NEW);
	assert_int_equal(put_heartbeat(f->st, agent, 4, 5), US_STORE_NEW);
	assert_int_equal(us_store_commit(f->st, err, sizeof(err)), 0);

	assert_int_equal(query_int(f->path, "SELECT count(*) FROM agents WHERE hostname = 'web-1'"), 1);
	assert_int_equal(query_int(f->path, "SELECT cgroup_id FROM workloads WHERE name = 'checkout' "
				   "AND ports = '80,443' AND labels = 'team=payments'"), 1234);
	assert_int_equal(query_int(f->path, "SELECT end_ns FROM metric_batches WHERE seq = 2 "
				   "AND workload = 'checkout' AND histograms = 1"), 200);
	assert_int_equal(query_int(f->path, "SELECT spool_dropped_total FROM agents"), 7);
}

static void test_schema_versions(void **state)
{
	struct fixture *f = *state;
	struct us_store_options opt = { .synchronous_full = 0 };
	struct us_store *again;
	sqlite3 *db;
	char err[512];

	assert_int_equal(query_int(f->path, "PRAGMA user_version"), US_STORE_SCHEMA_VERSION);
	us_store_close(f->st);
	f->st = NULL;
	/* reopening the current version migrates nothing and works */
	again = us_store_open(f->path, &opt, err, sizeof(err));
	assert_non_null(again);
	us_store_close(again);
	/* a database written by a newer coordinator is refused, by name */
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	again = us_store_open(f->path, &opt, err, sizeof(err));
	assert_null(again);
	assert_non_null(strstr(err, f->path));
	assert_non_null(strstr(err, "schema version 99 is newer"));
	/* teardown expects a store */
	snprintf(err, sizeof(err), "PRAGMA user_version = %d", US_STORE_SCHEMA_VERSION);
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, err, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	f->st = us_store_open(f->path, &opt, err, sizeof(err));
	assert_non_null(f->st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_exactly_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rollback_discards, setup, teardown),
		cmocka_unit_test_setup_teardown(test_derived_rows, setup, teardown),
		cmocka_unit_test_setup_teardown(test_schema_versions, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
