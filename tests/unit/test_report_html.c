/* The HTML report (coordinator/report_html.c): structure of a full report
 * (verdict, every KPI, charts), escaping of hostile strings in every field,
 * no URL of any kind, empty arrays and NaN shown as "no data" rather than
 * "nan", caller bugs and write errors reported, huge series decimated,
 * and identical bytes for identical input. Well-formedness in a real
 * parser and a real browser is tests/e2e/e2e_report_chromium.sh. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report_html.h"

#define HOSTILE "<script>alert(1)</script>&\""
#define HOSTILE_ESCAPED "&lt;script&gt;alert(1)&lt;/script&gt;&amp;&quot;"
#define T0 1714564800.0

static const struct us_report_kpi sample_kpis[] = {
	{ "latency p99", "ms", 52.3, 58.9, 12.6, 6.1, 19.8, "High", 1, 2000, 2000 },
	{ "error rate", "%", 0.12, 0.14, 1.6, -0.4, 3.9, "Pass", 1, 2000, 2000 },
	{ "run-queue latency", "us", 41, 35, -14.6, -19.0, -10.1, "Low", 0, 5400, 5400 },
	{ "I/O latency", "ms", NAN, NAN, NAN, NAN, NAN, "NoData", 0, 0, 0 },
};

static struct us_report_cdf_point cdf_p[50], cdf_s[50];
static struct us_report_point tl_p[60], tl_s[60];
static const struct us_report_alert alerts[] = {
	{ T0 + 300, 0.97, "p99 ratio above band" },
};
static struct us_report_timeline timelines[2];

/* A report like compare would hand over: every section populated. */
static struct us_report sample(void)
{
	struct us_report r;
	int i;

	for (i = 0; i < 50; i++) {
		cdf_p[i] = (struct us_report_cdf_point){ 5 + i, (i + 1) / 50.0 };
		cdf_s[i] = (struct us_report_cdf_point){ 5.5 + 1.1 * i, (i + 1) / 50.0 };
	}
	for (i = 0; i < 60; i++) {
		tl_p[i] = (struct us_report_point){ T0 + 10 * i, 50 + i % 7 };
		tl_s[i] = (struct us_report_point){ T0 + 10 * i, i == 20 ? NAN : 56 + i % 5 };
	}
	timelines[0] = (struct us_report_timeline){ "latency p99", "ms", tl_p, 60, tl_s, 60, alerts, 1 };
	timelines[1] = (struct us_report_timeline){ "I/O latency", "ms", NULL, 0, NULL, 0, NULL, 0 };
	memset(&r, 0, sizeof(r));
	r.workload = "checkout";
	r.production_type = "m5.xlarge";
	r.shadow_type = "m7g.large";
	r.window_start = T0;
	r.window_end = T0 + 600;
	r.decision = "Fail";
	r.score = 61.5;
	r.confidence = 0.031;
	r.mode = "paired";
	r.kpis = sample_kpis;
	r.n_kpis = 4;
	r.cdf_production = cdf_p;
	r.n_cdf_production = 50;
	r.cdf_shadow = cdf_s;
	r.n_cdf_shadow = 50;
	r.timelines = timelines;
	r.n_timelines = 2;
	return r;
}

/* Renders into memory; returns the document (free it) or fails the test. */
static char *render(const struct us_report *r, size_t *len_out)
{
	char *buf = NULL, err[256] = "";
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	int rc;

	assert_non_null(f);
	rc = us_report_write_html(r, f, err, sizeof(err));
	assert_int_equal(fclose(f), 0);
	if (rc != 0)
		fail_msg("us_report_write_html: %s", err);
	if (len_out)
		*len_out = len;
	return buf;
}

static size_t count(const char *s, const char *needle)
{
	size_t n = 0, k = strlen(needle);

	while ((s = strstr(s, needle))) {
		n++;
		s += k;
	}
	return n;
}

/* The number of subpaths ("M") in the path whose <title> starts with
 * `title`: a NaN value must break a timeline's line, not bridge the gap. */
static size_t segments(const char *html, const char *path_attr, const char *title)
{
	const char *end = strstr(html, title), *start = NULL, *p;
	size_t n = 0;

	assert_non_null(end);
	for (p = html; (p = strstr(p, path_attr)) && p < end; p++)
		start = p;
	assert_non_null(start);
	for (p = start; p < end; p++)
		n += *p == 'M';
	return n;
}

/* "nan" or "inf" as a word (any case): what printf makes of a non-finite
 * double. The fixtures use no English word containing them as a token. */
static void assert_no_nonfinite(const char *s)
{
	static const char *const words[] = { "nan", "inf" };
	size_t i;
	const char *p;

	for (i = 0; i < 2; i++)
		for (p = s; (p = strcasestr(p, words[i])); p += 3) {
			int before = p > s && isalpha((unsigned char)p[-1]);
			int after = isalpha((unsigned char)p[3]);

			if (!before && !after)
				fail_msg("non-finite number printed near: %.60s", p > s + 20 ? p - 20 : s);
		}
}

/* Every element that must close is closed the same number of times. */
static void assert_balanced(const char *html)
{
	static const char *const tags[] = { "svg", "g", "path", "table", "tr", "td", "ul", "li",
					    "section", "title", "text", "h2", "h3", "dl", "dd", "dt" };
	size_t i;
	char open[16], close[16];

	for (i = 0; i < sizeof(tags) / sizeof(tags[0]); i++) {
		size_t no, nc;

		snprintf(open, sizeof(open), "<%s ", tags[i]);
		no = count(html, open);
		snprintf(open, sizeof(open), "<%s>", tags[i]);
		no += count(html, open);
		snprintf(close, sizeof(close), "</%s>", tags[i]);
		nc = count(html, close);
		if (no != nc)
			fail_msg("<%s>: %zu opened, %zu closed", tags[i], no, nc);
	}
}

static void assert_no_urls(const char *html)
{
	assert_null(strcasestr(html, "http://"));
	assert_null(strcasestr(html, "https://"));
	assert_null(strcasestr(html, "src="));
	assert_null(strcasestr(html, "href="));
	assert_null(strcasestr(html, "url("));
	assert_null(strcasestr(html, "@import"));
}

static void test_full_report(void **state)
{
	struct us_report r = sample();
	char *html = render(&r, NULL);
	size_t i;

	assert_true(strncmp(html, "<!DOCTYPE html>\n", 16) == 0);
	assert_non_null(strstr(html, "<meta charset=\"utf-8\">"));
	assert_non_null(strstr(html, "class=\"banner fail\""));
	assert_non_null(strstr(html, "<div class=\"verdict\">Fail</div>"));
	assert_non_null(strstr(html, "62 / 100"));
	assert_non_null(strstr(html, "3.1%"));
	assert_non_null(strstr(html, "paired"));
	assert_non_null(strstr(html, "How to read this"));
	assert_non_null(strstr(html, "2024-05-01 12:00:00 UTC"));
	for (i = 0; i < r.n_kpis; i++)
		assert_non_null(strstr(html, sample_kpis[i].name));
	/* one CI bar per KPI, the score meter, the CDF and both timelines */
	assert_int_equal(count(html, "<svg "), r.n_kpis + 1 + 1 + 2);
	assert_int_equal(count(html, "<tr>"), r.n_kpis + 1);
	assert_non_null(strstr(html, "+12.6%"));
	assert_non_null(strstr(html, "+6.1% \xe2\x80\xa6 +19.8%"));
	assert_non_null(strstr(html, "class=\"badge high\""));
	assert_non_null(strstr(html, "class=\"badge nodata\""));
	assert_non_null(strstr(html, "latency (ms, log scale)"));
	assert_int_equal(count(html, "<g class=\"alert\">"), 1);
	assert_non_null(strstr(html, "<title>alert 2024-05-01 12:05:00 UTC, score 0.97: p99 ratio above band</title>"));
	assert_non_null(strstr(html, "No data"));       /* the empty I/O timeline */
	assert_int_equal(segments(html, "stroke-width=\"1.6\"", "<title>shadow (60 points)"), 2);
	assert_int_equal(segments(html, "stroke-width=\"1.6\"", "<title>production (60 points)"), 1);
	assert_null(strstr(html, "<script"));
	assert_no_urls(html);
	assert_no_nonfinite(html);
	assert_balanced(html);
	free(html);
}

static void test_hostile_strings(void **state)
{
	struct us_report_kpi kpi = { HOSTILE, HOSTILE, 1, 2, 3, 1, 5, HOSTILE, 1, 10, 10 };
	struct us_report_alert alert = { T0, 1, HOSTILE };
	struct us_report_point pts[2] = { { T0, 1 }, { T0 + 60, 2 } };
	struct us_report_timeline tl = { HOSTILE, HOSTILE, pts, 2, pts, 2, &alert, 1 };
	struct us_report r = sample();
	char *html;

	r.title = r.workload = r.production_type = r.shadow_type = r.mode = HOSTILE;
	r.decision = HOSTILE;
	r.kpis = &kpi;
	r.n_kpis = 1;
	r.timelines = &tl;
	r.n_timelines = 1;
	html = render(&r, NULL);
	assert_null(strstr(html, HOSTILE));
	assert_null(strstr(html, "<script"));
	assert_true(count(html, HOSTILE_ESCAPED) >= 12);
	/* an unknown decision or class never reaches an attribute */
	assert_non_null(strstr(html, "class=\"banner unknown\""));
	assert_non_null(strstr(html, "class=\"badge unknown\""));
	assert_no_urls(html);
	assert_balanced(html);
	free(html);
}

static void test_control_chars(void **state)
{
	struct us_report r = sample();
	char *html;

	r.workload = "a\x01" "b\x7f" "c\td";
	html = render(&r, NULL);
	assert_non_null(strstr(html, "a&#xFFFD;b&#xFFFD;c\td"));
	free(html);
}

static void test_empty_report(void **state)
{
	struct us_report r;
	char *html;

	memset(&r, 0, sizeof(r));
	r.score = r.confidence = r.window_start = r.window_end = NAN;
	html = render(&r, NULL);
	assert_non_null(strstr(html, "class=\"banner unknown\""));
	assert_non_null(strstr(html, "No KPI was measured (NoData)"));
	assert_non_null(strstr(html, "No timeline data (NoData)"));
	assert_int_equal(count(html, "No data</text>"), 1);     /* the CDF frame */
	assert_no_nonfinite(html);
	assert_no_urls(html);
	assert_balanced(html);
	free(html);
}

/* Points that cannot be drawn (NaN, latency <= 0 on a log axis) leave a
 * chart empty rather than broken; degenerate ranges still get an axis. */
static void test_nan_and_degenerate(void **state)
{
	struct us_report_cdf_point bad_cdf[] = { { NAN, 0.5 }, { 0, 0.1 }, { -3, 0.2 }, { 4, NAN } };
	struct us_report_cdf_point one_cdf[] = { { 7, 1 } };
	struct us_report_point all_nan[] = { { T0, NAN }, { T0 + 10, NAN }, { NAN, 5 } };
	struct us_report_point constant[] = { { T0, 3 }, { T0 + 10, 3 }, { T0 + 20, 3 } };
	struct us_report_point single[] = { { T0, -2 } };
	struct us_report_alert no_time = { NAN, NAN, NULL };
	struct us_report_timeline tls[] = {
		{ "all gaps", NULL, all_nan, 3, NULL, 0, &no_time, 1 },
		{ "constant", "ms", constant, 3, single, 1, NULL, 0 },
	};
	struct us_report_kpi kpi = { "missing kpi", "ms", NAN, INFINITY, NAN, -INFINITY, NAN, NULL, 0, 0, 0 };
	struct us_report r = sample();
	char *html;

	r.cdf_production = bad_cdf;
	r.n_cdf_production = 4;
	r.cdf_shadow = NULL;
	r.n_cdf_shadow = 0;
	r.kpis = &kpi;
	r.n_kpis = 1;
	r.timelines = tls;
	r.n_timelines = 2;
	r.confidence = NAN;
	html = render(&r, NULL);
	/* the CDF and the all-NaN timeline are empty frames */
	assert_int_equal(count(html, "No data</text>"), 2);
	/* the lone point is drawn as a dot: a zero-length segment */
	assert_non_null(strstr(html, "h0\"><title>shadow (1 points)"));
	assert_non_null(strstr(html, "<b>\xe2\x80\x93</b>"));  /* confidence */
	assert_no_nonfinite(html);
	free(html);

	r.cdf_production = one_cdf;
	r.n_cdf_production = 1;
	html = render(&r, NULL);
	assert_int_equal(count(html, "No data</text>"), 1);
	assert_non_null(strstr(html, "production latency CDF (1 points)"));
	assert_balanced(html);
	free(html);
}

static void test_caller_bugs(void **state)
{
	struct us_report r = sample();
	struct us_report_timeline tl = { "x", "ms", NULL, 5, NULL, 0, NULL, 0 };
	char err[128] = "";
	FILE *f = fopen("/dev/null", "w");

	assert_non_null(f);
	assert_int_equal(us_report_write_html(NULL, f, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "no report"));
	r.kpis = NULL;
	assert_int_equal(us_report_write_html(&r, f, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "count but no elements"));
	r = sample();
	r.timelines = &tl;
	r.n_timelines = 1;
	assert_int_equal(us_report_write_html(&r, f, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "timeline 0"));
	fclose(f);
}

static void test_write_error(void **state)
{
	struct us_report r = sample();
	char err[128] = "";
	FILE *f = fopen("/dev/full", "w");

	if (!f)
		skip();
	assert_int_equal(us_report_write_html(&r, f, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "write failed"));
	fclose(f);
}

/* A day of per-second points must not make a multi-megabyte file: each
 * pixel column keeps its minimum and maximum, so the spike survives. */
static void test_decimation(void **state)
{
	enum { N = 86400 };
	struct us_report_point *pts = malloc(N * sizeof(*pts));
	struct us_report_timeline tl = { "busy", "ms", NULL, N, NULL, 0, NULL, 0 };
	struct us_report r = sample();
	char *html, *max_label;
	size_t len, i;

	assert_non_null(pts);
	for (i = 0; i < N; i++)
		pts[i] = (struct us_report_point){ T0 + i, i == 40000 ? 1000 : 10 + (i % 13) };
	tl.production = pts;
	r.timelines = &tl;
	r.n_timelines = 1;
	html = render(&r, &len);
	assert_true(len < 200 * 1024);
	/* the spike sets the y range, so the axis reaches 1000 */
	max_label = strstr(html, "text-anchor=\"end\">1000</text>");
	assert_non_null(max_label);
	assert_balanced(html);
	free(html);
	free(pts);
}

/* Absurd but finite input must still terminate and print no "nan": near
 * 1e17 a tick step of 1 does not change a double, and a time axis from
 * 1970 to 1e300 has no clock-time step. */
static void test_extreme_values(void **state)
{
	struct us_report_point big[] = { { T0, 1e17 }, { T0 + 10, 1e17 + 16 } };  /* step 5 */
	struct us_report_point far[] = { { 0, 1 }, { 1e300, 2 } };
	struct us_report_point huge[] = { { T0, -1e308 }, { T0 + 1, 1e308 } };
	struct us_report_cdf_point wide[] = { { 1e-300, 0.1 }, { 1e300, 1 } };
	struct us_report_timeline tls[] = {
		{ "big", NULL, big, 2, NULL, 0, NULL, 0 },
		{ "far", NULL, far, 2, NULL, 0, NULL, 0 },
		{ "huge", NULL, huge, 2, NULL, 0, NULL, 0 },
	};
	struct us_report_kpi kpi = { "wide", "ms", 1e300, -1e300, 1e300, -1e300, 1e300, "High", 1, 1, 1 };
	struct us_report r = sample();
	char *html;

	r.timelines = tls;
	r.n_timelines = 3;
	r.cdf_production = wide;
	r.n_cdf_production = 2;
	r.kpis = &kpi;
	r.n_kpis = 1;
	r.score = 1e300;
	r.window_end = 1e300;
	html = render(&r, NULL);
	assert_no_nonfinite(html);
	assert_balanced(html);
	free(html);
}

static void test_deterministic(void **state)
{
	struct us_report r = sample();
	size_t la, lb;
	char *a = render(&r, &la), *b = render(&r, &lb);

	assert_int_equal(la, lb);
	assert_memory_equal(a, b, la);
	free(a);
	free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_full_report),
		cmocka_unit_test(test_hostile_strings),
		cmocka_unit_test(test_control_chars),
		cmocka_unit_test(test_empty_report),
		cmocka_unit_test(test_nan_and_degenerate),
		cmocka_unit_test(test_caller_bugs),
		cmocka_unit_test(test_write_error),
		cmocka_unit_test(test_decimation),
		cmocka_unit_test(test_extreme_values),
		cmocka_unit_test(test_deterministic),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
