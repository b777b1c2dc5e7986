/* Rightsizing: the engine (lib/recommend.c) on synthetic utilization (the
 * expected type, under-provisioning of the current type, an arm64 option,
 * burstable baselines, percentile and headroom arithmetic, ties, refusal
 * below 30 h), the catalog and utilization parsers' file:line errors, and
 * Recommend/Run over a real store (rows inserted into the 1-minute rollups). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <grpc/status.h>

#include "api.pb-c.h"
#include "api_methods.h"
#include "catalog.h"
#include "clock.h"
#include "recommend.h"
#include "store.h"
#include "utilization.h"

static const char catalog_csv[] =
	"type,family,arch,vcpu,memory_gib,network_gbps_peak,baseline_cpu_pct,usd_per_hour\n"
	"m5.large,m5,x86_64,2,8,10,100,0.096\n"
	"m5.xlarge,m5,x86_64,4,16,10,100,0.192\n"
	"m6i.xlarge,m6i,x86_64,4,16,12.5,100,0.192\n"
	"c5.xlarge,c5,x86_64,4,8,10,100,0.17\n"
	"m6g.xlarge,m6g,arm64,4,16,10,100,0.154\n"
	"t3.xlarge,t3,x86_64,4,16,5,40,0.1664\n"
	"t3.2xlarge,t3,x86_64,8,32,5,40,0.3328\n"
	"m5.2xlarge,m5,x86_64,8,32,10,100,0.384\n";

static void catalog(struct us_catalog *c)
{
	char err[512];

	if (us_catalog_parse(catalog_csv, strlen(catalog_csv), "test.csv", c, err,
			     sizeof(err)) < 0)
		fail_msg("catalog: %s", err);
}

/* hours of 5-minute samples: cpu in [lo, hi] by a saw-tooth, memory flat */
static void synth(struct us_util *u, double hours, double lo, double hi, double mem)
{
	size_t n = (size_t)(hours * 12);

	memset(u, 0, sizeof(*u));
	for (size_t i = 0; i < n; i++) {
		struct us_util_sample s = { .t = 1.7e9 + 300.0 * (double)i,
					    .cpu_cores = lo + (hi - lo) * (double)(i % 100) / 99.0,
					    .memory_gib = mem };

		assert_int_equal(us_util_push(u, &s), 0);
	}
}

static void run(const char *current, double lo, double hi, double mem, struct us_catalog *c,
		struct us_rec_result *r)
{
	struct us_rec_params p;
	struct us_rec_need n;
	struct us_util u;
	char err[512];

	us_rec_params_default(&p);
	synth(&u, 72, lo, hi, mem);
	catalog(c);
	if (us_rec_need(&u, &p, &n, err, sizeof(err)) < 0)
		fail_msg("need: %s", err);
	if (us_recommend(c, &n, current, r, err, sizeof(err)) < 0)
		fail_msg("recommend: %s", err);
	us_util_free(&u);
}

static void test_expected_type(void **state)
{
	struct us_catalog c;
	struct us_rec_result r;

	(void)state;
	/* cpu p99.5 = 3.0 cores, memory 6 GiB: need 3.6 cores, 7.2 GiB */
	run("m5.2xlarge", 1.0, 3.0, 6.0, &c, &r);
	assert_true(fabs(r.need.observed[US_DIM_CPU] - 3.0) < 0.02);
	assert_true(fabs(r.need.need[US_DIM_MEM] - 7.2) < 1e-9);
	assert_false(r.need.present[US_DIM_NET]);
	/* cheapest that fits: the arm64 type, flagged */
	assert_true(r.n_options >= 4);
	assert_string_equal(r.options[0].type->type, "m6g.xlarge");
	assert_true(r.options[0].arch_change);
	assert_non_null(strstr(r.options[0].reasons, "ARCH_CHANGE: rebuild for arm64"));
	/* then the cheapest x86_64, at 90% of its CPU and memory: risk 3 */
	assert_string_equal(r.options[1].type->type, "c5.xlarge");
	assert_false(r.options[1].arch_change);
	assert_int_equal(r.options[1].risk, 3);
	assert_int_equal(r.options[1].finding, US_REC_OPTIMIZED);
	assert_true(fabs(r.options[1].dim[US_DIM_CPU].projected - 0.75) < 0.01);
	/* ranked by price */
	for (size_t i = 1; i < r.n_options; i++)
		assert_true(r.options[i - 1].type->usd_per_hour <= r.options[i].type->usd_per_hour);
	/* the current type is twice too big on both dimensions */
	assert_true(r.has_current);
	assert_int_equal(r.current.finding, US_REC_OVER);
	assert_non_null(strstr(r.current.reasons, "CPU_OVER"));
	assert_non_null(strstr(r.current.reasons, "MEM_OVER"));
	assert_true(fabs(r.options[0].savings_usd - (0.384 - 0.154) * 730) < 1e-6);
	assert_true(fabs(r.options[0].monthly_usd - 0.154 * 730) < 1e-9);
	us_rec_result_free(&r);
	us_catalog_free(&c);
}

static void test_under_provisioned(void **state)
{
	struct us_catalog c;
	struct us_rec_result r;

	(void)state;
	run("m5.large", 1.0, 3.0, 6.0, &c, &r);
	assert_int_equal(r.current.finding, US_REC_UNDER);
	assert_int_equal(r.current.risk, 4);
	assert_false(r.current.fits);
	assert_non_null(strstr(r.current.reasons, "CPU_UNDER"));
	assert_null(strstr(r.current.reasons, "MEM_"));   /* 7.2 of 8 GiB: optimized */
	/* the current type is not an option, and moving up costs money */
	for (size_t i = 0; i < r.n_options; i++) {
		assert_string_not_equal(r.options[i].type->type, "m5.large");
		assert_true(r.options[i].savings_usd < 0);
	}
	us_rec_result_free(&r);
	us_catalog_free(&c);
}

static void test_burstable_baseline(void **state)
{
	struct us_catalog c;
	struct us_rec_result r;
	const struct us_itype *t3;
	struct us_rec_eval e;

	(void)state;
	/* 2 cores at p99.5: t3.xlarge has 4 vCPUs but sustains 1.6 cores */
	run("t3.xlarge", 0.5, 2.0, 4.0, &c, &r);
	assert_int_equal(r.current.finding, US_REC_UNDER);
	assert_non_null(strstr(r.current.reasons, "CPU_BURSTABLE_BASELINE"));
	for (size_t i = 0; i < r.n_options; i++)
		assert_string_not_equal(r.options[i].type->type, "t3.xlarge");
	t3 = us_catalog_find(&c, "t3.2xlarge");    /* 8 × 40% = 3.2 cores: fits */
	assert_non_null(t3);
	assert_true(fabs(us_itype_cpu_cores(t3) - 3.2) < 1e-9);
	us_rec_evaluate(t3, &r.need, NULL, &e);
	assert_true(e.fits);
	assert_true(fabs(e.dim[US_DIM_CPU].capacity - 3.2) < 1e-9);
	us_rec_result_free(&r);
	us_catalog_free(&c);
}

static void test_percentile_headroom(void **state)
{
	double v[1000], c[7] = { 5, 5, 5, 5, 5, 5, 5 };
	struct us_rec_params p;
	struct us_rec_need n;
	struct us_util u;
	char err[256];

	(void)state;
	for (int i = 0; i < 1000; i++)
		v[i] = 1000 - i;   /* unsorted on purpose */
	assert_true(fabs(us_rec_percentile(v, 1000, 99.5) - 995.005) < 1e-9);
	assert_true(fabs(us_rec_percentile(v, 1000, 100) - 1000) < 1e-12);
	assert_true(fabs(us_rec_percentile(v, 1000, 0) - 1) < 1e-12);
	assert_true(fabs(us_rec_percentile(v, 1000, 50) - 500.5) < 1e-9);
	assert_true(us_rec_percentile(c, 7, 99.5) == 5.0);   /* constant: no division by zero */
	assert_true(us_rec_percentile(c, 0, 99.5) == 0.0);
	/* headroom 50%, cpu p100 */
	us_rec_params_default(&p);
	p.headroom = 0.5;
	p.percentile[US_DIM_CPU] = 100;
	synth(&u, 40, 0, 2.0, 3.0);
	assert_int_equal(us_rec_need(&u, &p, &n, err, sizeof(err)), 0);
	assert_true(fabs(n.need[US_DIM_CPU] - 3.0) < 1e-9);
	assert_true(fabs(n.need[US_DIM_MEM] - 4.5) < 1e-9);
	assert_true(fabs(n.hours - 40.0) < 1e-9);
	us_util_free(&u);
	assert_int_equal(us_rec_parse_headroom("20%", 0, &p.headroom), 0);
	assert_true(fabs(p.headroom - 0.2) < 1e-12);
	assert_int_equal(us_rec_parse_headroom("0.35", 0, &p.headroom), 0);
	assert_true(fabs(p.headroom - 0.35) < 1e-12);
	assert_int_equal(us_rec_parse_headroom("-5%", 0, &p.headroom), -1);
	assert_int_equal(us_rec_parse_headroom("x", 0, &p.headroom), -1);
	assert_int_equal(us_rec_parse_percentile("101", 0, &p.headroom), -1);
}

static void test_ties(void **state)
{
	struct us_catalog c;
	struct us_rec_result r;
	int m5 = -1, m6i = -1;

	(void)state;
	/* m5.xlarge and m6i.xlarge cost the same and carry the same risk: the
	 * order is by name, the same on every run */
	run("m5.2xlarge", 1.0, 3.0, 6.0, &c, &r);
	for (size_t i = 0; i < r.n_options; i++) {
		if (strcmp(r.options[i].type->type, "m5.xlarge") == 0)
			m5 = (int)i;
		if (strcmp(r.options[i].type->type, "m6i.xlarge") == 0)
			m6i = (int)i;
	}
	assert_true(m5 >= 0 && m6i == m5 + 1);
	us_rec_result_free(&r);
	us_catalog_free(&c);
}

static void test_refuse_short(void **state)
{
	struct us_rec_params p;
	struct us_rec_need n;
	struct us_util u;
	char err[256];

	(void)state;
	us_rec_params_default(&p);
	synth(&u, 29, 1, 2, 3);
	assert_int_equal(us_rec_need(&u, &p, &n, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "only 29.0 h"));
	assert_non_null(strstr(err, "at least 30 h"));
	us_util_free(&u);
	synth(&u, 30, 1, 2, 3);
	assert_int_equal(us_rec_need(&u, &p, &n, err, sizeof(err)), 0);
	us_util_free(&u);
	memset(&u, 0, sizeof(u));
	assert_int_equal(us_rec_need(&u, &p, &n, err, sizeof(err)), -1);
}

static void test_unknown_current(void **state)
{
	struct us_catalog c;
	struct us_rec_need n = { .present = { true, true, false }, .need = { 1, 1, 0 } };
	struct us_rec_result r;
	char err[256];

	(void)state;
	catalog(&c);
	assert_int_equal(us_recommend(&c, &n, "x9.huge", &r, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "'x9.huge' is not in the catalog"));
	us_rec_result_free(&r);
	us_catalog_free(&c);
}

static void catalog_err(const char *csv, const char *want)
{
	struct us_catalog c;
	char err[512];

	if (us_catalog_parse(csv, strlen(csv), "cat.csv", &c, err, sizeof(err)) == 0)
		fail_msg("accepted: %s", csv);
	if (!strstr(err, want))
		fail_msg("got '%s', want '%s'", err, want);
	assert_null(c.types);
}

#define HDR "type,family,arch,vcpu,memory_gib,network_gbps_peak,baseline_cpu_pct,usd_per_hour\n"

static void test_catalog_errors(void **state)
{
	struct us_catalog c;
	char err[512];

	(void)state;
	catalog_err("", "cat.csv:1: header: empty file");
	catalog_err("type,arch,vcpu\n", "cat.csv:1: header: missing column 'memory_gib'");
	catalog_err(HDR, "no instance types");
	catalog_err(HDR "a.b,a,x86_64,four,8,10,100,0.1\n", "cat.csv:2: vcpu: expected a number, got 'four'");
	catalog_err(HDR "a.b,a,x86_64,2,8,10,100,0.1\na.c,a,sparc,2,8,10,100,0.1\n",
		    "cat.csv:3: arch: expected x86_64 or arm64, got 'sparc'");
	catalog_err(HDR "a.b,a,x86_64,2,8,10,100,0\n", "cat.csv:2: usd_per_hour: must be more than 0");
	catalog_err(HDR "a.b,a,x86_64,2,8,10,150,1\n", "cat.csv:2: baseline_cpu_pct: must be");
	catalog_err(HDR "a.b,a,x86_64,2,nan,10,100,1\n", "cat.csv:2: memory_gib: expected a number");
	catalog_err(HDR "a.b,a,x86_64,2,8,10\n", "cat.csv:2: row: expected 8");
	catalog_err(HDR "\n# comment\na.b,a,x86_64,2,8,10,100,1\na.b,a,x86_64,2,8,10,100,1\n",
		    "cat.csv:5: type: 'a.b' is listed twice");
	/* columns by name, optional ones defaulted, CRLF */
	{
		static const char crlf[] = "usd_per_hour,type,arch,vcpu,memory_gib\r\n"
					   "0.5,z1.big,arm64,4,16\r\n";

		assert_int_equal(us_catalog_parse(crlf, strlen(crlf), "x.csv", &c, err,
						  sizeof(err)), 0);
	}
	assert_int_equal(c.n, 1);
	assert_string_equal(c.types[0].family, "z1");
	assert_true(c.types[0].baseline_cpu_pct == 100.0);
	us_catalog_free(&c);
	/* the shipped catalog parses (tests/run runs from the source tree) */
	assert_int_equal(us_catalog_load("data/catalog/aws-ec2.csv", &c, err,
					 sizeof(err)), 0);
	assert_true(c.n >= 50);
	assert_non_null(us_catalog_find(&c, "m7g.large"));
	us_catalog_free(&c);
	assert_int_equal(us_catalog_load("/nonexistent/cat.csv", &c, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "/nonexistent/cat.csv: No such file"));
}

static void util_err(const char *csv, const char *want)
{
	struct us_util u;
	char err[512];

	if (us_util_parse(csv, strlen(csv), "u.csv", &u, err, sizeof(err)) == 0)
		fail_msg("accepted: %s", csv);
	if (!strstr(err, want))
		fail_msg("got '%s', want '%s'", err, want);
	assert_null(u.s);
}

static void test_utilization_parse(void **state)
{
	struct us_util u;
	char err[512];
	double t;

	(void)state;
	util_err("", "u.csv:1: empty");
	util_err("timestamp,cpu_cores,memory_gib\n", "u.csv:1: empty");
	util_err("1,1,NaN\n", "u.csv:1: memory_gib: expected a finite number, got 'NaN'");
	util_err("1,1,1\n2,-1,1\n", "u.csv:2: cpu_cores: negative: '-1'");
	util_err("1,1,1\n2,abc,1\n", "u.csv:2: cpu_cores: expected a finite number, got 'abc'");
	util_err("1,1,1\n2,1,1\n2,1,1\n", "u.csv:3: timestamp: duplicate");
	util_err("1,1,1\n5,1,1\n3,1,1\n", "u.csv:3: timestamp: earlier");
	util_err("1,1,1\n2,1\n", "u.csv:2: row: expected 3 fields");
	util_err("yesterday,1,1\n", "u.csv:1: timestamp: expected unix seconds or ISO 8601");
	util_err("timestamp,cpu,memory_gib\n", "u.csv:1: header");
	util_err("1,1,1,1,1\n", "u.csv:1: row: expected 3 or 4 fields");
	util_err("1,1,1,inf\n", "u.csv:1: network_gbps: expected a finite number");
	util_err("1,1,1\n2,1,\n", "u.csv:2: memory_gib: empty");
	assert_int_equal(us_util_parse("timestamp,cpu_cores,memory_gib,network_gbps\n"
				       "2024-05-01T00:00:00Z,1.5,2,0.1\n"
				       "2024-05-01 01:00:00+01:00,1,2,0.1\n"
				       "1714525260,1,2,0.2\n", 128, "u.csv", &u, err,
				       sizeof(err)), -1);
	/* 01:00+01:00 is 00:00Z: a duplicate of line 2 */
	assert_non_null(strstr(err, "u.csv:3: timestamp: duplicate"));
	assert_int_equal(us_util_parse_time("2024-05-01T00:00:00Z", &t), 0);
	assert_true(t == 1714521600.0);
	assert_int_equal(us_util_parse_time("2024-05-01T00:00:00.5", &t), 0);
	assert_true(t == 1714521600.5);
	assert_int_equal(us_util_parse_time("1714521600", &t), 0);
	assert_int_equal(us_util_parse_time("1714521600000", &t), -1);   /* ms, not s */
	assert_int_equal(us_util_parse_time("2024-13-01T00:00:00Z", &t), -1);
	assert_int_equal(us_util_parse("1,1,2\n2,3,4\n", 12, "u.csv", &u, err, sizeof(err)), 0);
	assert_int_equal(u.n, 2);
	assert_false(u.has_network);
	assert_true(u.s[1].cpu_cores == 3 && u.s[1].memory_gib == 4);
	us_util_free(&u);
}

/* ---- Recommend/Run over a store ----------------------------------------- */

static void insert_minutes(sqlite3 *db, const char *workload, int hours)
{
	uint64_t now = us_now_ns(), start = now - now % 60000000000ull - (uint64_t)hours * 3600e9;
	sqlite3_stmt *q;

	assert_int_equal(sqlite3_exec(db, "BEGIN", NULL, NULL, NULL), SQLITE_OK);
	for (int m = 0; m < 2; m++) {
		char sql[256];

		snprintf(sql, sizeof(sql), "INSERT INTO series(workload, role, metric, unit, kind) "
			 "VALUES ('%s', 1, '%s', '%s', '%s')", workload,
			 m ? "memory_current" : "cpu_usage", m ? "bytes" : "ns", m ? "gauge" : "counter");
		assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	}
	assert_int_equal(sqlite3_prepare_v2(db, "INSERT INTO rollup_1m(series_id, bucket_start_ns, "
		"end_ns, count, sum, gauge_sum) VALUES ((SELECT id FROM series WHERE workload = ?1 "
		"AND metric = ?2), ?3, ?4, ?5, ?6, ?7)", -1, &q, NULL), SQLITE_OK);
	for (int i = 0; i < hours * 60; i++) {
		uint64_t b = start + (uint64_t)i * 60000000000ull;
		/* 1.5 cores (90 s of CPU per minute), 3 GiB as 6 samples */
		for (int m = 0; m < 2; m++) {
			sqlite3_bind_text(q, 1, workload, -1, SQLITE_STATIC);
			sqlite3_bind_text(q, 2, m ? "memory_current" : "cpu_usage", -1, SQLITE_STATIC);
			sqlite3_bind_int64(q, 3, (sqlite3_int64)b);
			sqlite3_bind_int64(q, 4, (sqlite3_int64)(b + 60000000000ull));
			sqlite3_bind_int64(q, 5, m ? 6 : 0);
			sqlite3_bind_int64(q, 6, m ? 0 : 90000000000ll);
			sqlite3_bind_double(q, 7, m ? 6 * 3.0 * 1073741824.0 : 0);
			assert_int_equal(sqlite3_step(q), SQLITE_DONE);
			sqlite3_reset(q);
		}
	}
	sqlite3_finalize(q);
	assert_int_equal(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
}

static int call(sqlite3 *db, Understudy__Api__RecommendRequest *req,
		Understudy__Api__RecommendResponse **resp, char *msg, size_t msglen)
{
	const struct us_api_method *m = us_api_find_method("/understudy.api.Recommend/Run");
	struct us_api_ctx ctx = { .db = db };

	assert_non_null(m);
	assert_non_null(m->handler);
	*resp = NULL;
	return m->handler(&ctx, &req->base, (ProtobufCMessage **)resp, msg, msglen);
}

static void test_api(void **state)
{
	char dir[] = "/tmp/us-test-rec-XXXXXX", db_path[128], msg[1024];
	Understudy__Api__RecommendRequest req = UNDERSTUDY__API__RECOMMEND_REQUEST__INIT;
	Understudy__Api__RecommendResponse *r;
	struct us_store_options opt = { 0 };
	struct us_store *st;
	sqlite3 *db;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(db_path, sizeof(db_path), "%s/understudy.db", dir);
	st = us_store_open(db_path, &opt, msg, sizeof(msg));
	assert_non_null(st);
	assert_int_equal(sqlite3_open(db_path, &db), SQLITE_OK);
	insert_minutes(db, "web", 40);
	insert_minutes(db, "short", 10);

	req.workload = "web";
	req.current_type = "m5.2xlarge";
	req.catalog_csv = (char *)catalog_csv;
	req.catalog_name = "test.csv";
	req.top = 3;
	if (call(db, &req, &r, msg, sizeof(msg)) != GRPC_STATUS_OK)
		fail_msg("recommend: %s", msg);
	assert_true(r->hours >= 39.9 && r->hours <= 40.1);
	assert_int_equal(r->n_needs, 2);
	assert_true(fabs(r->needs[0]->observed - 1.5) < 1e-9);
	assert_true(fabs(r->needs[1]->need - 3.6) < 1e-9);
	assert_int_equal(r->n_options, 3);
	assert_string_equal(r->options[0]->instance_type, "m5.large");   /* 1.8 cores, 3.6 GiB */
	assert_non_null(r->current);
	assert_string_equal(r->current->finding, "over-provisioned");
	protobuf_c_message_free_unpacked(&r->base, NULL);

	req.workload = "short";
	assert_int_equal(call(db, &req, &r, msg, sizeof(msg)), GRPC_STATUS_OUT_OF_RANGE);
	assert_non_null(strstr(msg, "at least 30 h"));
	if (r)
		protobuf_c_message_free_unpacked(&r->base, NULL);
	req.workload = "nothing";
	assert_int_equal(call(db, &req, &r, msg, sizeof(msg)), GRPC_STATUS_NOT_FOUND);
	req.workload = "web";
	req.lookback = "soon";
	assert_int_equal(call(db, &req, &r, msg, sizeof(msg)), GRPC_STATUS_INVALID_ARGUMENT);
	assert_non_null(strstr(msg, "lookback:"));
	req.lookback = "";
	req.current_type = "x1.nope";
	assert_int_equal(call(db, &req, &r, msg, sizeof(msg)), GRPC_STATUS_INVALID_ARGUMENT);
	assert_non_null(strstr(msg, "current_type:"));
	req.current_type = "";
	req.catalog_csv = "type,arch\n";
	assert_int_equal(call(db, &req, &r, msg, sizeof(msg)), GRPC_STATUS_INVALID_ARGUMENT);
	assert_non_null(strstr(msg, "test.csv:1: header"));

	sqlite3_close(db);
	us_store_close(st);
	snprintf(msg, sizeof(msg), "rm -rf %s", dir);
	assert_int_equal(system(msg), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_expected_type),
		cmocka_unit_test(test_under_provisioned),
		cmocka_unit_test(test_burstable_baseline),
		cmocka_unit_test(test_percentile_headroom),
		cmocka_unit_test(test_ties),
		cmocka_unit_test(test_refuse_short),
		cmocka_unit_test(test_unknown_current),
		cmocka_unit_test(test_catalog_errors),
		cmocka_unit_test(test_utilization_parse),
		cmocka_unit_test(test_api),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
