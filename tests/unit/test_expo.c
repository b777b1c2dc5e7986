/* Unit tests for lib/expo (the exposition parser) and agent/scrape (series
 * selection, counters turned into increases, naming, the cap, URLs, and
 * the metrics_url/metrics_select config keys) on fixture pages. */
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

#include "agent_config.h"
#include "batch.h"
#include "expo.h"
#include "scrape.h"

#define MAXS 64

struct got {
	size_t n;
	char key[MAXS][US_EXPO_MAX_KEY];
	char family[MAXS][US_EXPO_MAX_NAME];
	char suffix[MAXS][16];
	enum us_expo_type type[MAXS];
	double value[MAXS];
	bool has_ts[MAXS];
};

static int collect(void *ctx, const struct us_expo_sample *s)
{
	struct got *g = ctx;

	if (g->n < MAXS) {
		snprintf(g->key[g->n], sizeof(g->key[0]), "%s", s->key);
		snprintf(g->family[g->n], sizeof(g->family[0]), "%s", s->family);
		snprintf(g->suffix[g->n], sizeof(g->suffix[0]), "%s", s->suffix);
		g->type[g->n] = s->type;
		g->value[g->n] = s->value;
		g->has_ts[g->n] = s->has_timestamp;
	}
	g->n++;
	return 0;
}

static struct got got;
static struct us_expo_stats st;

static void parse(const char *page)
{
	memset(&got, 0, sizeof(got));
	assert_int_equal(us_expo_parse(page, strlen(page), collect, &got, &st), 0);
}

static const char node_page[] =
	"# HELP node_cpu_seconds_total Seconds the CPUs spent in each mode.\n"
	"# TYPE node_cpu_seconds_total counter\n"
	"node_cpu_seconds_total{cpu=\"0\",mode=\"idle\"} 91827.45\n"
	"# TYPE node_load1 gauge\n"
	"node_load1 0.42\n"
	"# TYPE rq histogram\n"
	"rq_bucket{le=\"0.1\"} 100\n"
	"rq_sum 9.5\n"
	"rq_count 120\n"
	"# TYPE gc summary\n"
	"gc{quantile=\"0.5\"} 2.1e-05\n"
	"gc_count 77\n"
	"loose{a=\"x\\\"y\\\\z\"} +Inf 1700000000000\n";

static void test_prometheus_page(void **state)
{
	(void)state;
	parse(node_page);
	assert_int_equal(st.errors, 0);
	assert_int_equal(got.n, 8);
	assert_string_equal(got.key[0], "node_cpu_seconds_total{cpu=\"0\",mode=\"idle\"}");
	assert_int_equal(got.type[0], US_EXPO_COUNTER);
	assert_string_equal(got.suffix[0], "");
	assert_true(fabs(got.value[0] - 91827.45) < 1e-9);
	assert_int_equal(got.type[1], US_EXPO_GAUGE);
	assert_string_equal(got.suffix[2], "_bucket");
	assert_string_equal(got.family[3], "rq");
	assert_string_equal(got.suffix[4], "_count");
	assert_int_equal(got.type[4], US_EXPO_HISTOGRAM);
	assert_int_equal(got.type[5], US_EXPO_SUMMARY);
	assert_string_equal(got.key[7], "loose{a=\"x\\\"y\\\\z\"}");
	assert_int_equal(got.type[7], US_EXPO_UNTYPED);
	assert_true(isinf(got.value[7]));
	assert_true(got.has_ts[7]);
}

static void test_openmetrics_page(void **state)
{
	(void)state;
	parse("# TYPE http_requests counter\n"
	      "# UNIT http_requests requests\n"
	      "http_requests_total{code=\"200\"} 1027 1395066363.000 # {trace_id=\"K\"} 0.67\r\n"
	      "http_requests_created{code=\"200\"} 1605281325.0\n"
	      "b{x=\"y\",} 2\n"
	      "e{} 3\n"
	      "# EOF\n");
	assert_int_equal(st.errors, 0);
	assert_true(st.eof);
	assert_int_equal(got.n, 4);
	assert_string_equal(got.suffix[0], "_total");
	assert_int_equal(got.type[0], US_EXPO_COUNTER);
	assert_string_equal(got.suffix[1], "_created");
	assert_string_equal(got.key[2], "b{x=\"y\"}");
	assert_string_equal(got.key[3], "e");
}

static void test_garbage_is_counted(void **state)
{
	static const char page[] = "garbage here\n{}\nname{a=\"b\" 1\nname{a=b} 1\nname 1x\n"
				   "name\n# TYPE x nonsense\nname{a=\"\\q\"} 1\nname 0x10\n"
				   "ok_metric 5\n# EOF\nafter 1\n";
	char big[8192];

	(void)state;
	parse(page);
	assert_int_equal(got.n, 1);
	assert_string_equal(got.key[0], "ok_metric");
	assert_int_equal(st.errors, 10);
	assert_int_equal(st.first_error_line, 1);
	/* a NUL inside the page, and names and keys past the limits */
	memset(&got, 0, sizeof(got));
	us_expo_parse("a 1\nb\0 2\nc 3\n", 12, collect, &got, &st);
	assert_int_equal(got.n, 2);
	assert_int_equal(st.errors, 1);
	memset(big, 'a', sizeof(big));
	memcpy(big + sizeof(big) - 3, " 1\n", 3);
	memset(&got, 0, sizeof(got));
	us_expo_parse(big, sizeof(big), collect, &got, &st);
	assert_int_equal(got.n, 0);
	assert_int_equal(st.errors, 1);
	memcpy(big, "x{a=\"", 5);
	memcpy(big + sizeof(big) - 5, "\"} 1\n", 5);
	us_expo_parse(big, sizeof(big), collect, &got, &st);
	assert_int_equal(got.n, 0);
	assert_int_equal(st.errors, 1);
	us_expo_parse("", 0, collect, &got, &st);
	assert_int_equal(st.lines, 0);
}

/* ---- agent/scrape ---- */

static struct us_workload_config wl;

static struct us_batch *batch(struct us_scrape *s)
{
	static struct us_batch b;

	us_batch_init(&b, "w", 1, 0, 1);
	us_scrape_add(s, &b);
	return &b;
}

static const Understudy__Counter *counter(struct us_batch *b, const char *name)
{
	for (size_t i = 0; i < b->mb.n_counters; i++)
		if (strcmp(b->mb.counters[i]->metric, name) == 0)
			return b->mb.counters[i];
	return NULL;
}

static const Understudy__Gauge *gauge(struct us_batch *b, const char *name)
{
	for (size_t i = 0; i < b->mb.n_gauges; i++)
		if (strcmp(b->mb.gauges[i]->metric, name) == 0)
			return b->mb.gauges[i];
	return NULL;
}

static void take(struct us_scrape *s, const char *page)
{
	us_scrape_take_page(s, page, strlen(page));
}

static void test_scrape_series(void **state)
{
	struct us_scrape *s;
	struct us_batch *b;

	(void)state;
	memset(&wl, 0, sizeof(wl));
	snprintf(wl.name, sizeof(wl.name), "w");
	snprintf(wl.metrics_url, sizeof(wl.metrics_url), "http://127.0.0.1:9113/metrics");
	assert_non_null(s = us_scrape_new(&wl));
	take(s, node_page);
	b = batch(s);
	/* first scrape: counters are baselines, gauges are sent */
	assert_null(counter(b, "app:node_cpu_seconds_total{cpu=\"0\",mode=\"idle\"}"));
	assert_non_null(gauge(b, "app:node_load1"));
	assert_null(gauge(b, "app:loose{a=\"x\\\"y\\\\z\"}"));	/* +Inf */
	assert_null(gauge(b, "app:rq_bucket{le=\"0.1\"}"));
	assert_null(gauge(b, "app:gc{quantile=\"0.5\"}"));
	assert_int_equal(gauge(b, "app_scrape:up")->value, 1);
	take(s, "# TYPE node_cpu_seconds_total counter\n"
		"node_cpu_seconds_total{cpu=\"0\",mode=\"idle\"} 91837.95\n"
		"# TYPE rq histogram\nrq_sum 10.0\nrq_count 130\n");
	b = batch(s);
	assert_int_equal(counter(b, "app:node_cpu_seconds_total{cpu=\"0\",mode=\"idle\"}")->value, 10);
	assert_int_equal(counter(b, "app:rq_count")->value, 10);
	assert_int_equal(counter(b, "app:rq_sum")->value, 0);	/* 0.5 carried */
	assert_null(gauge(b, "app:node_load1"));		/* gone from the page */
	take(s, "# TYPE node_cpu_seconds_total counter\n"
		"node_cpu_seconds_total{cpu=\"0\",mode=\"idle\"} 5\n"
		"# TYPE rq histogram\nrq_sum 10.5\nrq_count 131\n");
	b = batch(s);
	/* a reset is a new baseline; the carried half makes a whole second */
	assert_null(counter(b, "app:node_cpu_seconds_total{cpu=\"0\",mode=\"idle\"}"));
	assert_int_equal(counter(b, "app:rq_sum")->value, 1);
	us_scrape_free(s);
}

static void test_scrape_select_and_cap(void **state)
{
	struct us_scrape *s;
	struct us_batch *b;
	char page[16384];
	size_t n = 0;

	(void)state;
	snprintf(wl.metrics_select[0], sizeof(wl.metrics_select[0]), "nginx_*");
	snprintf(wl.metrics_select[1], sizeof(wl.metrics_select[1]), "up");
	wl.nselect = 2;
	assert_non_null(s = us_scrape_new(&wl));
	assert_true(us_scrape_matches(s, &wl));
	take(s, "nginx_connections_active 3\nup 1\nupx 2\nother 4\n");
	b = batch(s);
	assert_non_null(gauge(b, "app:nginx_connections_active"));
	assert_non_null(gauge(b, "app:up"));
	assert_null(gauge(b, "app:upx"));
	assert_null(gauge(b, "app:other"));
	us_scrape_free(s);
	wl.nselect = 0;
	assert_non_null(s = us_scrape_new(&wl));
	for (int i = 0; i < US_SCRAPE_MAX_SERIES + 20; i++)
		n += (size_t)snprintf(page + n, sizeof(page) - n, "g%d %d\n", i, i);
	take(s, page);
	b = batch(s);
	assert_int_equal(gauge(b, "app_scrape:series_dropped")->value, 20);
	assert_int_equal(b->mb.n_gauges, US_SCRAPE_MAX_SERIES + 3);
	us_scrape_free(s);
}

static void test_scrape_url(void **state)
{
	char host[256], port[8], path[1024], err[128];

	(void)state;
	assert_int_equal(us_scrape_parse_url("http://127.0.0.1:9113/metrics", host, sizeof(host),
					     port, sizeof(port), path, sizeof(path), err, sizeof(err)), 0);
	assert_string_equal(host, "127.0.0.1");
	assert_string_equal(port, "9113");
	assert_string_equal(path, "/metrics");
	assert_int_equal(us_scrape_parse_url("http://[::1]/m?x=1", host, sizeof(host), port,
					     sizeof(port), path, sizeof(path), err, sizeof(err)), 0);
	assert_string_equal(host, "::1");
	assert_string_equal(port, "80");
	assert_string_equal(path, "/m?x=1");
	assert_int_equal(us_scrape_parse_url("https://h/metrics", host, sizeof(host), port,
					     sizeof(port), path, sizeof(path), err, sizeof(err)), -1);
	assert_non_null(strstr(err, "https is not supported"));
	assert_int_equal(us_scrape_parse_url("http://h:99999/", host, sizeof(host), port,
					     sizeof(port), path, sizeof(path), err, sizeof(err)), -1);
	assert_int_equal(us_scrape_parse_url("http://:80/", host, sizeof(host), port,
					     sizeof(port), path, sizeof(path), err, sizeof(err)), -1);
}

static int load_config(const char *extra, char *err, size_t errlen)
{
	static struct us_agent_config c;
	char path[] = "/tmp/test_expo_XXXXXX";
	int fd = mkstemp(path), rc;
	FILE *f = fdopen(fd, "w");

	fprintf(f, "workloads:\n  - name: web\n    cgroup: /sys/fs/cgroup/web\n%s", extra);
	fclose(f);
	us_agent_config_defaults(&c);
	rc = us_agent_config_load(path, &c, err, errlen);
	unlink(path);
	if (rc == 0) {
		assert_string_equal(c.workloads[0].metrics_url, "http://127.0.0.1:9113/metrics");
		assert_int_equal(c.workloads[0].nselect, 2);
		assert_string_equal(c.workloads[0].metrics_select[1], "nginx_*");
	}
	return rc;
}

static void test_config_keys(void **state)
{
	char err[512];

	(void)state;
	assert_int_equal(load_config("    metrics_url: http://127.0.0.1:9113/metrics\n"
				     "    metrics_select: [up, nginx_*]\n", err, sizeof(err)), 0);
	assert_int_equal(load_config("    metrics_url: https://127.0.0.1:9113/metrics\n",
				     err, sizeof(err)), -1);
	assert_non_null(strstr(err, ":4: workloads[0].metrics_url: https is not supported"));
	assert_int_equal(load_config("    metrics_url: http://h/\n    metrics_select: [a*b]\n",
				     err, sizeof(err)), -1);
	assert_non_null(strstr(err, ":5: workloads[0].metrics_select[0]:"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_prometheus_page),
		cmocka_unit_test(test_openmetrics_page),
		cmocka_unit_test(test_garbage_is_counted),
		cmocka_unit_test(test_scrape_series),
		cmocka_unit_test(test_scrape_select_and_cap),
		cmocka_unit_test(test_scrape_url),
		cmocka_unit_test(test_config_keys),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
