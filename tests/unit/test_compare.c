/* Unit tests for lib/verdict (the production/shadow comparison) and the
 * CSV sample reader, including the statistical validation, seeded:
 *  - 500 A/A trials of lognormal latencies, n = 2,000 a side: decision Fail
 *    in at most 1%;
 *  - 500 trials with the shadow 10% slower (the lognormal scaled by 1.1, so
 *    p99 is 10% slower): decision Fail or a latency KPI High in >= 95%;
 *  - paired mode detects a 5% shift that unpaired mode misses at the same
 *    n, in >= 90% of trials (mirrored requests: strong per-request
 *    correlation);
 * plus constant series, ties, error rates, NoData/Inconclusive below the
 * minimum samples, calibration, and bad CSV input naming the line. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.pb-c.h"
#include "api_methods.h"
#include "clock.h"
#include "compare.h"
#include "csv_samples.h"
#include "store.h"
#include "understudy.pb-c.h"
#include "verdict.h"

#define SIGMA 0.5

static void lognormal(gsl_rng *r, double *v, size_t n, double scale)
{
	for (size_t i = 0; i < n; i++)
		v[i] = scale * gsl_ran_lognormal(r, log(20.0), SIGMA);
}

static bool latency_high(const struct us_verdict *v)
{
	for (int i = US_KPI_LATENCY; i <= US_KPI_LATENCY_P99; i++)
		if (v->kpi[i].cls == US_CLASS_HIGH)
			return true;
	return false;
}

/* Runs trials of n a side with the shadow scaled; counts Fail decisions
 * and detections (Fail or a latency KPI High). */
static void trials(int count, size_t n, double scale, int *fails, int *detected)
{
	gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
	double *p = malloc(n * sizeof(*p)), *s = malloc(n * sizeof(*s));
	struct us_policy pol;
	struct us_verdict v;

	gsl_rng_set(r, 20240601);
	us_policy_defaults(&pol);
	*fails = *detected = 0;
	for (int t = 0; t < count; t++) {
		struct us_cmp_input in = { .prod = p, .shadow = s, .n_prod = n, .n_shadow = n };

		lognormal(r, p, n, 1.0);
		lognormal(r, s, n, scale);
		pol.seed = (uint64_t)t + 1;
		assert_int_equal(us_verdict_run(&pol, &in, &v), 0);
		*fails += v.decision == US_DECISION_FAIL;
		*detected += v.decision == US_DECISION_FAIL || latency_high(&v);
	}
	free(p);
	free(s);
	gsl_rng_free(r);
}

static void test_aa_false_regressions(void **state)
{
	int fails, detected;

	trials(500, 2000, 1.0, &fails, &detected);
	printf("A/A: %d of 500 Fail (%d with a latency KPI High)\n", fails, detected);
	assert_true(fails <= 5);
}

static void test_detects_10pct(void **state)
{
	int fails, detected;

	trials(500, 2000, 1.10, &fails, &detected);
	printf("10%% slower: %d of 500 detected (%d Fail)\n", detected, fails);
	assert_true(detected >= 475);
}

/* Mirrored requests: the same request costs much the same on both sides
 * (per-request spread sigma 1, per-side noise 3%), the shadow 5% slower.
 * n = 300: the unpaired rank test cannot see 5% under that spread; the
 * signed-rank test on per-request differences can. */
static void test_paired_power(void **state)
{
	enum { N = 300, TRIALS = 200 };
	gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
	double p[N], s[N];
	struct us_policy pol;
	struct us_verdict vp, vu;
	int wins = 0;

	gsl_rng_set(r, 99);
	us_policy_defaults(&pol);
	for (int t = 0; t < TRIALS; t++) {
		for (int i = 0; i < N; i++) {
			double base = gsl_ran_lognormal(r, log(20.0), 1.0);

			p[i] = base * exp(gsl_ran_gaussian(r, 0.03));
			s[i] = 1.05 * base * exp(gsl_ran_gaussian(r, 0.03));
		}
		double p2[N], s2[N];

		memcpy(p2, p, sizeof(p));
		memcpy(s2, s, sizeof(s));
		struct us_cmp_input paired = { .prod = p, .shadow = s, .n_prod = N, .n_shadow = N,
					       .paired = true };
		struct us_cmp_input unpaired = { .prod = p2, .shadow = s2, .n_prod = N, .n_shadow = N };

		assert_int_equal(us_verdict_run(&pol, &paired, &vp), 0);
		assert_int_equal(us_verdict_run(&pol, &unpaired, &vu), 0);
		assert_true(vp.paired && !vu.paired);
		assert_string_equal(vp.kpi[US_KPI_LATENCY].mode, "wilcoxon-paired");
		assert_string_equal(vu.kpi[US_KPI_LATENCY].mode, "mann-whitney");
		wins += vp.kpi[US_KPI_LATENCY].significant && vp.kpi[US_KPI_LATENCY].lo > 1.0 &&
			!vu.kpi[US_KPI_LATENCY].significant;
	}
	printf("paired detects, unpaired misses: %d of %d\n", wins, TRIALS);
	assert_true(wins >= TRIALS * 9 / 10);
	gsl_rng_free(r);
}

static void test_constant_and_ties(void **state)
{
	double p[300], s[300];
	struct us_policy pol;
	struct us_verdict v;

	us_policy_defaults(&pol);
	for (int i = 0; i < 300; i++)
		p[i] = s[i] = 10.0;
	struct us_cmp_input in = { .prod = p, .shadow = s, .n_prod = 300, .n_shadow = 300 };

	assert_int_equal(us_verdict_run(&pol, &in, &v), 0);
	assert_int_equal(v.decision, US_DECISION_PASS);
	for (int i = US_KPI_LATENCY; i <= US_KPI_LATENCY_P99; i++) {
		assert_int_equal(v.kpi[i].cls, US_CLASS_PASS);
		assert_true(v.kpi[i].estimate == 1.0 && v.kpi[i].lo == 1.0 && v.kpi[i].hi == 1.0);
	}
	assert_true(v.score == 100.0 && v.confidence == 1.0);

	/* heavy ties, paired, including zero latencies */
	for (int i = 0; i < 300; i++) {
		p[i] = i % 3;
		s[i] = i % 3;
	}
	in = (struct us_cmp_input){ .prod = p, .shadow = s, .n_prod = 300, .n_shadow = 300,
				    .paired = true };
	assert_int_equal(us_verdict_run(&pol, &in, &v), 0);
	assert_int_equal(v.kpi[US_KPI_LATENCY].cls, US_CLASS_PASS);
	assert_true(isfinite(v.kpi[US_KPI_LATENCY].estimate));
	/* production p50 is 1, fine; a zero production quantile is NoData, not a division */
	for (int i = 0; i < 300; i++)
		p[i] = s[i] = 0.0;
	in = (struct us_cmp_input){ .prod = p, .shadow = s, .n_prod = 300, .n_shadow = 300 };
	assert_int_equal(us_verdict_run(&pol, &in, &v), 0);
	assert_int_equal(v.kpi[US_KPI_LATENCY_P99].cls, US_CLASS_NODATA);
}

static void test_min_samples(void **state)
{
	gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
	double p[199], s[500];
	struct us_policy pol;
	struct us_verdict v;

	us_policy_defaults(&pol);
	lognormal(r, p, 199, 1);
	lognormal(r, s, 500, 1);
	struct us_cmp_input in = { .prod = p, .shadow = s, .n_prod = 199, .n_shadow = 500 };

	assert_int_equal(us_verdict_run(&pol, &in, &v), 0);
	assert_int_equal(v.decision, US_DECISION_INCONCLUSIVE);
	assert_int_equal(us_decision_exit(v.decision), 3);
	assert_int_equal(v.kpi[US_KPI_LATENCY_P99].cls, US_CLASS_NODATA);
	assert_int_equal(v.kpi[US_KPI_LATENCY_P99].n_prod, 199);
	assert_non_null(strstr(v.reason, "inconclusive"));
	in = (struct us_cmp_input){ .prod = p, .shadow = s, .n_prod = 0, .n_shadow = 0 };
	assert_int_equal(us_verdict_run(&pol, &in, &v), 0);
	assert_int_equal(v.decision, US_DECISION_INCONCLUSIVE);
	gsl_rng_free(r);
}

static void test_error_rate(void **state)
{
	gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
	double p[5000], s[5000];
	struct us_policy pol;
	struct us_verdict v;

	us_policy_defaults(&pol);
	lognormal(r, p, 5000, 1);
	lognormal(r, s, 5000, 1);
	struct us_cmp_input in = { .prod = p, .shadow = s, .n_prod = 5000, .n_shadow = 5000,
				   .has_errors = true, .prod_errors = 50, .prod_requests = 5000,
				   .shadow_errors = 150, .shadow_requests = 5000 };

	assert_int_equal(us_verdict_run(&pol, &in, &v), 0);
	assert_int_equal(v.kpi[US_KPI_ERROR_RATE].cls, US_CLASS_HIGH);
	assert_int_equal(v.decision, US_DECISION_FAIL);
	assert_true(v.score == 0.0);
	assert_non_null(strstr(v.reason, "error_rate"));
	assert_int_equal(us_decision_exit(v.decision), 1);
	/* equal error rates: Pass, with a confidence in [0, 1] */
	lognormal(r, p, 5000, 1);
	lognormal(r, s, 5000, 1);
	in.shadow_errors = 50;
	assert_int_equal(us_verdict_run(&pol, &in, &v), 0);
	assert_int_equal(v.kpi[US_KPI_ERROR_RATE].cls, US_CLASS_PASS);
	assert_true(v.confidence >= 0.0 && v.confidence <= 1.0);
	gsl_rng_free(r);
}

/* A/A calibration widens a tolerance by the noise floor. */
static void test_calibration(void **state)
{
	gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
	double p[400], s[400];
	struct us_policy pol;
	struct us_verdict v;
	char note[256];

	us_policy_defaults(&pol);
	lognormal(r, p, 400, 1);
	lognormal(r, s, 400, 1);
	struct us_cmp_input in = { .prod = p, .shadow = s, .n_prod = 400, .n_shadow = 400 };

	assert_int_equal(us_verdict_run(&pol, &in, &v), 0);
	us_policy_calibrate(&pol, &v, note, sizeof(note));
	assert_true(pol.tol_p99 > 0.10 && pol.tol_latency > 0.10);
	assert_non_null(strstr(note, "latency_p99"));
	gsl_rng_free(r);
}

static int parse(const char *text, bool pairs, struct us_csv_samples *s, char *err)
{
	return us_csv_samples_parse(text, strlen(text), pairs, s, err, 256);
}

static void test_csv(void **state)
{
	struct us_csv_samples s;
	char err[256];

	assert_int_equal(parse("12.5\n13\n\n# c\n9\n", false, &s, err), 0);
	assert_int_equal(s.n, 3);
	assert_false(s.has_status);
	us_csv_samples_free(&s);
	assert_int_equal(parse("status,latency_ms\r\n200,5\r\n503,6\r\n0,7\r\n", false, &s, err), 0);
	assert_true(s.n == 3 && s.has_status && s.errors_a == 2 && s.a[1] == 6.0);
	us_csv_samples_free(&s);
	assert_int_equal(parse("1,2,200,500\n3,4,200,200\n", true, &s, err), 0);
	assert_true(s.n == 2 && s.errors_a == 0 && s.errors_b == 1 && s.b[1] == 4.0);
	us_csv_samples_free(&s);

	assert_int_equal(parse("", false, &s, err), -1);
	assert_non_null(strstr(err, "no samples"));
	assert_int_equal(parse("1\n2\nnan\n", false, &s, err), -1);
	assert_non_null(strstr(err, "line 3"));
	assert_non_null(strstr(err, "NaN"));
	assert_int_equal(parse("1\n-2\n", false, &s, err), -1);
	assert_non_null(strstr(err, "line 2: latency_ms: negative"));
	assert_int_equal(parse("1\nabc\n", false, &s, err), -1);
	assert_non_null(strstr(err, "line 2: latency_ms: not a number"));
	assert_int_equal(parse("1,2\n3\n", true, &s, err), -1);
	assert_non_null(strstr(err, "line 2: expected 2 fields"));
	assert_int_equal(parse("1\ninf\n", false, &s, err), -1);
	assert_non_null(strstr(err, "infinite"));
	assert_int_equal(parse("1,2000\n", false, &s, err), -1);
	assert_non_null(strstr(err, "status"));
	assert_int_equal(parse("foo,bar\n1,2\n", false, &s, err), -1);
	assert_non_null(strstr(err, "header"));
}

/* Online: request_samples with mirrored pairs in a real store, judged by
 * the Compare/Run handler (paired mode, the shadow 20% slower: Fail), and
 * NOT_FOUND for a workload without data. */
static void test_online_store(void **state)
{
	char dir[] = "/tmp/us-test-compare-XXXXXX", path[128], err[512], msg[256];
	struct us_store_options opt = { 0 };
	struct us_store *st;
	sqlite3 *db;
	sqlite3_stmt *q;
	gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
	uint64_t now = us_now_ns();

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/understudy.db", dir);
	st = us_store_open(path, &opt, err, sizeof(err));
	assert_non_null(st);
	us_store_close(st);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db,
		"INSERT INTO request_samples(agent_id, workload, role, start_ns, end_ns, latency_ns, "
		"status_code, status_class, bytes_in, bytes_out, connection_id, request_index, "
		"truncated, method, shadow_outcome, shadow_latency_ns, shadow_status_code, "
		"shadow_status_class, shadow_bytes_out) VALUES ('a', 'web', 1, ?, ?, ?, 200, 2, 1, 1, "
		"1, ?, 0, 'GET', ?, ?, 200, 2, 1)", -1, &q, NULL), SQLITE_OK);
	sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
	for (int i = 0; i < 1000; i++) {
		double base = gsl_ran_lognormal(r, log(2e6), 0.8);
		uint64_t t = now - 600000000000ull + (uint64_t)i * 1000000ull;

		sqlite3_bind_int64(q, 1, (sqlite3_int64)t);
		sqlite3_bind_int64(q, 2, (sqlite3_int64)t + 1000);
		sqlite3_bind_int64(q, 3, (sqlite3_int64)base);
		sqlite3_bind_int(q, 4, i);
		sqlite3_bind_int(q, 5, i % 100 == 0 ? UNDERSTUDY__SHADOW_OUTCOME__SHADOW_FILTERED
						    : UNDERSTUDY__SHADOW_OUTCOME__SHADOW_OK);
		sqlite3_bind_int64(q, 6, (sqlite3_int64)(1.2 * base));
		assert_int_equal(sqlite3_step(q), SQLITE_DONE);
		sqlite3_reset(q);
	}
	sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	sqlite3_finalize(q);

	struct us_api_ctx ctx = { .db = db };
	const struct us_api_method *m = us_api_find_method("/understudy.api.Compare/Run");
	Understudy__Api__CompareRequest req = UNDERSTUDY__API__COMPARE_REQUEST__INIT;
	ProtobufCMessage *resp = NULL;

	assert_non_null(m);
	assert_non_null(m->handler);
	req.workload = "web";
	req.since = "1h";
	assert_int_equal(m->handler(&ctx, &req.base, &resp, msg, sizeof(msg)), 0);
	Understudy__Api__CompareResponse *cr = (void *)resp;

	assert_string_equal(cr->verdict, "Fail");
	assert_string_equal(cr->mode, "paired");
	assert_int_equal(cr->n_kpis, US_KPI_NR);
	assert_string_equal(cr->kpis[US_KPI_LATENCY]->mode, "wilcoxon-paired");
	assert_string_equal(cr->kpis[US_KPI_LATENCY]->class_, "High");
	assert_true(fabs(cr->kpis[US_KPI_LATENCY]->estimate - 1.2) < 0.01);
	assert_int_equal(cr->kpis[US_KPI_LATENCY]->n_production, 990);
	assert_string_equal(cr->kpis[US_KPI_THROUGHPUT]->class_, "Pass");
	assert_string_equal(cr->kpis[US_KPI_ERROR_RATE]->class_, "Pass");
	protobuf_c_message_free_unpacked(resp, NULL);
	resp = NULL;
	req.workload = "nothing";
	assert_int_equal(m->handler(&ctx, &req.base, &resp, msg, sizeof(msg)), 5 /* NOT_FOUND */);
	assert_non_null(strstr(msg, "no data"));
	req.workload = "web";
	req.since = "bogus";
	assert_int_equal(m->handler(&ctx, &req.base, &resp, msg, sizeof(msg)), 3 /* INVALID_ARGUMENT */);
	assert_non_null(strstr(msg, "since"));
	sqlite3_close(db);
	snprintf(err, sizeof(err), "rm -rf %s", dir);
	assert_int_equal(system(err), 0);
	gsl_rng_free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_aa_false_regressions),
		cmocka_unit_test(test_detects_10pct),
		cmocka_unit_test(test_paired_power),
		cmocka_unit_test(test_constant_and_ties),
		cmocka_unit_test(test_min_samples),
		cmocka_unit_test(test_error_rate),
		cmocka_unit_test(test_calibration),
		cmocka_unit_test(test_csv),
		cmocka_unit_test(test_online_store),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
