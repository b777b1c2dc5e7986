/* OpenMetrics rendering of the store (coordinator/metrics_om.c): figures of
 * the newest interval per (workload, role), ns scaled to seconds, counters
 * as interval gauges, escaping of hostile label values, refusals by reason,
 * and no invented series for absent data. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "envelope.h"
#include "metrics_om.h"
#include "scan.h"
#include "store.h"

struct fixture {
	char dir[64];
	char path[128];
	struct us_store *st;
	struct us_codec codec;
	int64_t agent;
	uint64_t seq;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct us_store_options opt = { .synchronous_full = 0 };
	char err[512];

	snprintf(f->dir, sizeof(f->dir), "/tmp/us-test-om-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->path, sizeof(f->path), "%s/understudy.db", f->dir);
	f->st = us_store_open(f->path, &opt, err, sizeof(err));
	if (!f->st)
		return -1;
	us_codec_init(&f->codec);
	if (us_store_begin(f->st, err, sizeof(err)) < 0 ||
	    us_store_agent_id(f->st, "agent\"1", NULL, &f->agent, err, sizeof(err)) < 0)
		return -1;
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
	free(f);
	return 0;
}

/* Stores a batch as ingest does: the wire frame, validated by the scanner. */
static void put_batch(struct fixture *f, struct us_batch *b)
{
	Understudy__Envelope env = UNDERSTUDY__ENVELOPE__INIT;
	struct us_envelope_view v;
	struct us_buf frame = { 0 };
	enum us_frame_type type;
	const uint8_t *body;
	size_t body_len;
	char err[512];

	env.agent_id = "a1";
	env.seq = f->seq++;
	env.schema_version = US_SCHEMA_VERSION;
	env.body_case = UNDERSTUDY__ENVELOPE__BODY_METRIC_BATCH;
	env.metric_batch = &b->mb;
	assert_int_equal(us_envelope_encode(&f->codec, &env, &frame, err, sizeof(err)), 0);
	assert_int_equal(us_frame_unpack(&f->codec, frame.data, frame.len, &type, &body,
					 &body_len, err, sizeof(err)), US_FRAME_OK);
	if (us_scan_envelope(body, body_len, &v, err, sizeof(err)) != US_FRAME_OK)
		fail_msg("scan: %s", err);
	assert_int_equal(us_store_put_envelope(f->st, f->agent, &v, frame.data, frame.len, 1,
					       err, sizeof(err)), US_STORE_NEW);
	us_buf_free(&frame);
}

/* Commits and renders through a read-only connection, as the server does. */
static char *render(struct fixture *f)
{
	struct us_buf out = { 0 };
	struct us_codec codec;
	sqlite3 *db;
	char err[512], *text;

	assert_int_equal(us_store_commit(f->st, err, sizeof(err)), 0);
	assert_int_equal(sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	us_codec_init(&codec);
	if (us_metrics_om_render(db, f->path, &codec, &out, err, sizeof(err)) < 0)
		fail_msg("render: %s", err);
	us_codec_free(&codec);
	sqlite3_close(db);
	text = calloc(1, out.len + 1);
	memcpy(text, out.data, out.len);
	us_buf_free(&out);
	assert_int_equal(us_store_begin(f->st, err, sizeof(err)), 0);
	return text;
}

static void assert_line(const char *page, const char *line)
{
	const char *p = page;
	size_t n = strlen(line);

	for (; (p = strstr(p, line)); p += n)
		if ((p == page || p[-1] == '\n') && p[n] == '\n')
			return;
	fail_msg("missing line: %s\n--- page:\n%s", line, page);
}

static void test_latest_interval(void **state)
{
	struct fixture *f = *state;
	struct us_batch b;
	struct us_hist old, new;
	char *page;

	us_hist_reset(&old);
	us_hist_reset(&new);
	us_hist_record_n(&old, 1000, 100);           /* 1 us */
	us_hist_record_n(&new, 2000000, 100);        /* 2 ms */
	us_batch_init(&b, "web", UNDERSTUDY__ROLE__PRODUCTION, 10000000000ull, 20000000000ull);
	us_batch_add_hist(&b, "runq_latency", "ns", &old);
	put_batch(f, &b);
	us_batch_free(&b);
	us_batch_init(&b, "web", UNDERSTUDY__ROLE__PRODUCTION, 20000000000ull, 30000000000ull);
	us_batch_add_hist(&b, "runq_latency", "ns", &new);
	us_batch_add_counter(&b, "oncpu_time", "ns", 5000000000ull);
	put_batch(f, &b);
	us_batch_free(&b);
	page = render(f);
	assert_line(page, "# TYPE understudy_runq_latency_seconds summary");
	assert_line(page, "# UNIT understudy_runq_latency_seconds seconds");
	/* 2 ms falls in a bucket of <= 3.2% width; its midpoint is reported */
	assert_non_null(strstr(page, "understudy_runq_latency_seconds{workload=\"web\","
				     "role=\"production\",quantile=\"0.99\"} 0.00201"));
	assert_line(page, "understudy_runq_latency_samples{workload=\"web\",role=\"production\"} 100");
	assert_line(page, "understudy_oncpu_time_interval_seconds{workload=\"web\",role=\"production\"} 5");
	assert_line(page, "understudy_workload_interval_end_timestamp_seconds{workload=\"web\","
			  "role=\"production\"} 30");
	assert_line(page, "understudy_workload_interval_seconds{workload=\"web\",role=\"production\"} 10");
	assert_null(strstr(page, "quantile=\"0.5\"} 1e-06"));
	assert_int_equal(strcmp(page + strlen(page) - 6, "# EOF\n"), 0);
	free(page);
}

static void test_hostile_labels(void **state)
{
	struct fixture *f = *state;
	struct us_batch b;
	struct us_hist empty;
	char *page;

	us_hist_reset(&empty);
	us_batch_init(&b, "w\"x\\y\nz\xff", UNDERSTUDY__ROLE__SHADOW, 1, 2);
	us_batch_add_hist(&b, "io latency!", "ns", &empty);
	put_batch(f, &b);
	us_batch_free(&b);
	page = render(f);
	/* escaped quote, backslash and newline; invalid UTF-8 replaced; the
	 * metric name sanitized; an empty interval has no quantiles (NaN) */
	assert_line(page, "understudy_io_latency__seconds{workload=\"w\\\"x\\\\y\\nz\xef\xbf\xbd\","
			  "role=\"shadow\",quantile=\"0.5\"} NaN");
	assert_line(page, "understudy_agent_spool_dropped_total{agent=\"agent\\\"1\"} 0");
	free(page);
}

static void test_self_metrics(void **state)
{
	struct fixture *f = *state;
	char *page;

	page = render(f);
	/* nothing written yet: no counters invented, agents by state still real */
	assert_null(strstr(page, "understudy_envelopes_stored_total"));
	assert_null(strstr(page, "{workload="));
	assert_line(page, "understudy_agents{state=\"live\"} 1");
	assert_line(page, "understudy_agents{state=\"stale\"} 0");
	free(page);
	us_store_put_self_metric(f->st, "envelopes_stored", 42);
	us_store_put_self_metric(f->st, "refused_garbage", 3);
	us_store_put_self_metric(f->st, "refused_bad_zlib", 0);
	us_store_put_self_metric(f->st, "ack_latency_p99_ns", 1500000);
	page = render(f);
	assert_line(page, "# TYPE understudy_envelopes_stored counter");
	assert_line(page, "understudy_envelopes_stored_total 42");
	assert_line(page, "understudy_envelopes_refused_total{reason=\"garbage\"} 3");
	assert_line(page, "understudy_envelopes_refused_total{reason=\"bad_zlib\"} 0");
	assert_line(page, "understudy_ack_latency_p99_seconds 0.0015");
	free(page);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_latest_interval, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hostile_labels, setup, teardown),
		cmocka_unit_test_setup_teardown(test_self_metrics, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
