/* Unit tests for the online anomaly detector (coordinator/anomaly), the
 * timestamp,value CSV reader (lib/tscsv) and the NAB scorer (tools/nab):
 * spikes and level shifts found within a few points, few alarms on a clean
 * seasonal series, a constant series, the probation, the routine memory,
 * determinism; the
 * scorer on hand-made cases; and the NAB score the detector reaches on the
 * repository's copy of the seven NAB series, so a regression shows. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../tools/nab/nab.h"
#include "anomaly.h"
#include "tscsv.h"

/* measured 82.6 (docs/anomalies.md); a drop below the target of 80
 * is a regression */
#define NAB_FLOOR 80.0

static uint64_t rng = 42;

static double uniform(void)
{
	rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
	return ((double)(rng >> 11) + 0.5) / 9007199254740992.0;
}

static double gauss(void)
{
	return sqrt(-2 * log(uniform())) * cos(2 * M_PI * uniform());
}

/* Feeds x[0..n) and returns the index of the first alert at or after from,
 * or -1; *alerts counts all alerts. */
static long run(const double *x, size_t n, size_t probation, size_t from, int *alerts)
{
	struct us_anomaly_params p;
	struct us_anomaly_result r;
	struct us_anomaly *a;
	long first = -1;

	us_anomaly_defaults(&p);
	p.probation = probation;
	a = us_anomaly_new(&p);
	assert_non_null(a);
	*alerts = 0;
	for (size_t i = 0; i < n; i++) {
		us_anomaly_step(a, x[i], &r);
		assert_true(r.score >= 0 && r.score <= 1);
		*alerts += r.anomaly;
		if (r.anomaly && first < 0 && i >= from)
			first = (long)i;
	}
	us_anomaly_free(a);
	return first;
}

/* Like run() with a season of `season` points; flags[i] = 1 where point i
 * alerted. */
static void run_season(const double *x, size_t n, size_t season, unsigned char *flags)
{
	struct us_anomaly_params p;
	struct us_anomaly_result r;
	struct us_anomaly *a;

	us_anomaly_defaults(&p);
	p.probation = 300;
	p.suppress = 0;
	p.season = season;
	assert_non_null(a = us_anomaly_new(&p));
	for (size_t i = 0; i < n; i++) {
		us_anomaly_step(a, x[i], &r);
		flags[i] = (unsigned char)r.anomaly;
	}
	us_anomaly_free(a);
}

static void noisy(double *x, size_t n, double level, double sd)
{
	rng = 7;
	for (size_t i = 0; i < n; i++)
		x[i] = level + sd * gauss() + 3 * sin(2 * M_PI * (double)i / 288);
}

static void test_spike(void **state)
{
	static double x[3000];
	int alerts;

	noisy(x, 3000, 50, 1);
	x[2000] += 25;
	long at = run(x, 3000, 450, 1990, &alerts);
	assert_true(at >= 2000 && at <= 2002);
}

static void test_level_shift(void **state)
{
	static double x[3000];
	int alerts;

	noisy(x, 3000, 50, 1);
	for (size_t i = 2000; i < 3000; i++)
		x[i] += 10;
	long at = run(x, 3000, 450, 1990, &alerts);
	assert_true(at >= 2000 && at <= 2006);
}

static void test_clean_series_few_alarms(void **state)
{
	static double x[4032];
	int alerts;

	noisy(x, 4032, 50, 1);
	run(x, 4032, 604, 0, &alerts);
	assert_true(alerts <= 3);
}

static void test_constant_series(void **state)
{
	static double x[2000];
	int alerts;

	for (size_t i = 0; i < 2000; i++)
		x[i] = 5.0;
	assert_int_equal(run(x, 2000, 300, 0, &alerts), -1);
	assert_int_equal(alerts, 0);
	x[1500] = 6.0;  /* any change of a constant series is news */
	assert_int_equal(run(x, 2000, 300, 0, &alerts), 1500);
	for (size_t i = 0; i < 2000; i++)
		x[i] = 0.0;
	assert_int_equal(run(x, 2000, 300, 0, &alerts), -1);
}

/* A daily job (a one-point burst at about the same time each day, drifting
 * by up to 20 minutes and growing a little) alerts on its first day only
 * when the season is known, and every day without it; a spike at another
 * time of day, smaller than the job, still alerts: what the season explains
 * does not make the same deviation routine at other times. (The level-shift echo of the burst in the next
 * few points is not explained: suppression is off here, see anomalies.md.) */
static void test_daily_job(void **state)
{
	static double x[288 * 8];
	static unsigned char with[288 * 8], without[288 * 8];
	static const int drift[8] = { 0, 2, -1, 4, 0, -3, 1, 0 };
	int days_with = 0, days_without = 0;

	noisy(x, 288 * 8, 50, 1);
	for (int d = 2; d < 8; d++)
		x[288 * d + 36 + drift[d]] += 40 + d;   /* 03:00, a little bigger each day */
	x[288 * 6 + 200] += 30;                         /* an unexpected spike */
	run_season(x, 288 * 8, 288, with);
	run_season(x, 288 * 8, 0, without);
	for (int d = 2; d < 8; d++) {
		size_t at = (size_t)(288 * d + 36 + drift[d]);

		days_with += with[at];
		days_without += without[at];
	}
	assert_int_equal(with[288 * 2 + 36 + drift[2]], 1);     /* the first day is news */
	assert_int_equal(days_with, 1);
	assert_true(days_without >= 5);
	assert_int_equal(with[288 * 6 + 200], 1);
	assert_int_equal(without[288 * 6 + 200], 1);
	assert_int_equal(us_anomaly_season(300), 288);
	assert_int_equal(us_anomaly_season(60), 1440);
	assert_int_equal(us_anomaly_season(7200), 0);   /* 12 a day: no season */
}

static void test_probation(void **state)
{
	static double x[1000];
	int alerts;

	noisy(x, 1000, 50, 1);
	x[200] += 100;
	assert_int_equal(run(x, 1000, 300, 0, &alerts), -1);
	assert_int_equal(alerts, 0);
	assert_int_equal(us_anomaly_probation(4032), 604);
	assert_int_equal(us_anomaly_probation(100000), 750);
}

/* Feeds x[0..n) with the given probation and no season; flags[i] = 1 where
 * point i alerted, score[i] its score. */
static void run_scores(const double *x, size_t n, size_t probation, unsigned char *flags,
		       double *score)
{
	struct us_anomaly_params p;
	struct us_anomaly_result r;
	struct us_anomaly *a;

	us_anomaly_defaults(&p);
	p.probation = probation;
	assert_non_null(a = us_anomaly_new(&p));
	for (size_t i = 0; i < n; i++) {
		us_anomaly_step(a, x[i], &r);
		flags[i] = (unsigned char)r.anomaly;
		score[i] = r.score;
	}
	us_anomaly_free(a);
}

/* A deviation no larger than one the series showed unremarked within its
 * memory (without a season: the last `window` = 1,024 points) is routine,
 * however high its likelihood; a larger one alerts; an alerted incident does
 * not make the next one of the same size routine; and the memory forgets. */
static void test_routine_memory(void **state)
{
	static double x[3000], score[3000];
	static unsigned char flag[3000];

	noisy(x, 3000, 50, 1);
	x[400] += 30;   /* in the probation: seen, not alerted */
	x[1000] += 25;  /* smaller: routine */
	x[1300] += 40;  /* larger: news */
	x[1700] += 40;  /* the same incident again, after the suppression */
	x[2500] += 25;  /* 1,500 points after the last routine 25-30: news again */
	run_scores(x, 3000, 600, flag, score);
	assert_int_equal(flag[400], 0);
	assert_true(score[1000] >= 0.9999);     /* the likelihood alone would alert */
	assert_int_equal(flag[1000], 0);
	assert_int_equal(flag[1300], 1);
	assert_int_equal(flag[1700], 1);
	assert_int_equal(flag[2500], 1);
	/* the same series without the earlier +30: +25 at 1000 alerts */
	x[400] -= 30;
	run_scores(x, 3000, 600, flag, score);
	assert_int_equal(flag[1000], 1);
}

static void test_deterministic(void **state)
{
	static double x[2000];
	struct us_anomaly_params p;
	struct us_anomaly_result r1, r2;
	struct us_anomaly *a, *b;
	char why[160];

	noisy(x, 2000, 10, 2);
	x[1200] -= 40;
	us_anomaly_defaults(&p);
	p.probation = 300;
	a = us_anomaly_new(&p);
	b = us_anomaly_new(&p);
	for (size_t i = 0; i < 2000; i++) {
		us_anomaly_step(a, x[i], &r1);
		us_anomaly_step(b, x[i], &r2);
		assert_memory_equal(&r1, &r2, sizeof(r1));
		if (i == 1200) {
			assert_int_equal(r1.anomaly, 1);
			us_anomaly_reason(&r1, why, sizeof(why));
			assert_non_null(strstr(why, "below the baseline"));
		}
	}
	us_anomaly_free(a);
	us_anomaly_free(b);
	p.window = 2;
	assert_null(us_anomaly_new(&p));
}

/* ---- tscsv ---------------------------------------------------------------- */

static int parse(const char *text, unsigned flags, struct us_ts_series *s, size_t *line,
		 char *err)
{
	return us_tscsv_parse(text, strlen(text), flags, s, line, err, 128);
}

static void test_tscsv_good(void **state)
{
	struct us_ts_series s;
	char err[128], buf[64];
	size_t line;

	assert_int_equal(parse("timestamp,value\n2014-02-14 14:30:00,0.132\r\n"
			       "2014-02-14 14:35:00.5,-1e3\n\n", 0, &s, &line, err), 0);
	assert_int_equal(s.n, 2);
	assert_int_equal(s.datetime, 1);
	assert_true(s.p[0].t_us == INT64_C(1392388200) * 1000000);
	assert_true(s.p[1].t_us == INT64_C(1392388500) * 1000000 + 500000);
	assert_true(s.p[1].v == -1000.0);
	us_tscsv_format_time(s.p[0].t_us, 1, buf, sizeof(buf));
	assert_string_equal(buf, "2014-02-14 14:30:00");
	us_tscsv_free(&s);
	assert_int_equal(parse("1392388200,1\n1392388260.25,2\n", 0, &s, &line, err), 0);
	assert_int_equal(s.datetime, 0);
	us_tscsv_format_time(s.p[1].t_us, 0, buf, sizeof(buf));
	assert_string_equal(buf, "1392388260.250000");
	us_tscsv_free(&s);
	assert_int_equal(parse("t,v\n5,1\n5,2\n", US_TSCSV_DUP_OK, &s, &line, err), 0);
	us_tscsv_free(&s);
}

static void test_tscsv_bad(void **state)
{
	static const struct { const char *text; size_t line; const char *why; } cases[] = {
		{ "", 1, "no data points" },
		{ "timestamp,value\n", 1, "no data points" },
		{ "t,v\n1,2\n2,nan\n", 3, "finite" },
		{ "t,v\n1,2\n2,inf\n", 3, "finite" },
		{ "t,v\n1,abc\n", 2, "finite" },
		{ "t,v\n1,2\nxyz,3\n", 3, "bad timestamp" },
		{ "t,v\n1,2\n1,3\n", 3, "duplicate" },
		{ "t,v\n2,2\n1,3\n", 3, "back in time" },
		{ "t,v\n1,2,3\n", 2, "two fields" },
		{ "t,v\n1\n", 2, "timestamp,value" },
		{ "t,v\n2014-02-30 00:00:00,1\n", 2, "bad timestamp" },
		{ "t,v\n1,2\n2014-02-14 14:30:00,1\n", 3, "form" },
	};
	struct us_ts_series s;
	char err[128];
	size_t line;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(parse(cases[i].text, 0, &s, &line, err), -1);
		assert_int_equal(line, cases[i].line);
		assert_non_null(strstr(err, cases[i].why));
		assert_null(s.p);
	}
}

/* ---- NAB scorer ----------------------------------------------------------- */

static void test_nab_tiny(void **state)
{
	int64_t ts[100];
	unsigned char det[100] = { 0 };
	struct nab_window w = { 50, 59 };
	struct nab_result r;

	for (int i = 0; i < 100; i++)
		ts[i] = i;
	nab_score_series(ts, det, 100, &w, 1, &nab_standard, &r);
	assert_true(fabs(nab_normalized(&r)) < 1e-9);  /* null detector: 0 */
	assert_true(r.null_score == -1.0 && r.perfect == 1.0 && r.fn == 1);
	det[50] = 1;
	nab_score_series(ts, det, 100, &w, 1, &nab_standard, &r);
	assert_true(fabs(nab_normalized(&r) - 100.0) < 1e-9);  /* perfect: 100 */
	det[55] = 1;    /* a later detection in the window changes nothing */
	nab_score_series(ts, det, 100, &w, 1, &nab_standard, &r);
	assert_true(fabs(r.raw - 1.0) < 1e-9 && r.tp == 1 && r.fp == 0);
	det[30] = 1;    /* a false positive before any window costs fp */
	det[5] = 1;     /* one in the probation (first 15 rows) costs nothing */
	nab_score_series(ts, det, 100, &w, 1, &nab_standard, &r);
	assert_true(fabs(r.raw - (1.0 - 0.11)) < 1e-9 && r.fp == 1);
	memset(det, 0, sizeof(det));
	det[59] = 1;    /* at the window's end: position -1/10 */
	nab_score_series(ts, det, 100, &w, 1, &nab_standard, &r);
	assert_true(fabs(r.raw - nab_scaled_sigmoid(-0.1) / nab_scaled_sigmoid(-1)) < 1e-9);
	det[60] = 1;    /* just past it: fp times the sigmoid of 1/9 */
	nab_score_series(ts, det, 100, &w, 1, &nab_standard, &r);
	assert_true(fabs(r.raw - nab_scaled_sigmoid(-0.1) / nab_scaled_sigmoid(-1) -
			 0.11 * nab_scaled_sigmoid(1.0 / 9)) < 1e-9);
	assert_true(fabs(nab_scaled_sigmoid(-1.0) - 0.98661) < 1e-5);
}

static void test_nab_corpus(void **state)
{
	static const char *files[] = {
		"ec2_cpu_utilization_24ae8d.csv", "ec2_cpu_utilization_53ea38.csv",
		"ec2_cpu_utilization_5f5533.csv", "ec2_cpu_utilization_77c1ca.csv",
		"ec2_disk_write_bytes_1ef3de.csv", "ec2_network_in_257a54.csv",
		"rds_cpu_utilization_cc0c53.csv",
	};
	struct nab_result total = { 0 };
	struct nab_labels labels;
	char err[512], path[256];

	assert_int_equal(nab_labels_read("tests/data/nab/windows.json", &labels, err, sizeof(err)), 0);
	for (size_t f = 0; f < sizeof(files) / sizeof(files[0]); f++) {
		const struct nab_label_file *lf = nab_labels_find(&labels, files[f]);
		struct us_anomaly_params p;
		struct us_anomaly_result r;
		struct us_ts_series s;
		struct nab_result res;
		struct us_anomaly *a;
		int64_t *ts;
		unsigned char *det;

		snprintf(path, sizeof(path), "tests/data/nab/%s", files[f]);
		assert_non_null(lf);
		assert_int_equal(us_tscsv_read(path, US_TSCSV_DUP_OK, &s, err, sizeof(err)), 0);
		us_anomaly_defaults(&p);
		p.probation = us_anomaly_probation(s.n);
		p.season = us_anomaly_season((double)(s.p[s.n - 1].t_us - s.p[0].t_us) / 1e6 /
					     (double)(s.n - 1));
		assert_int_equal(p.season, 288);
		assert_non_null(a = us_anomaly_new(&p));
		ts = malloc(s.n * sizeof(*ts));
		det = malloc(s.n);
		for (size_t i = 0; i < s.n; i++) {
			us_anomaly_step(a, s.p[i].v, &r);
			ts[i] = s.p[i].t_us;
			det[i] = (unsigned char)r.anomaly;
		}
		nab_score_series(ts, det, s.n, lf->w, lf->nw, &nab_standard, &res);
		nab_add(&total, &res);
		free(ts);
		free(det);
		us_anomaly_free(a);
		us_tscsv_free(&s);
	}
	nab_labels_free(&labels);
	print_message("NAB normalized score (standard profile): %.1f, tp %d fn %d fp %d\n",
		      nab_normalized(&total), total.tp, total.fn, total.fp);
	assert_int_equal(total.windows, 11);
	assert_true(nab_normalized(&total) >= NAB_FLOOR);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_spike),
		cmocka_unit_test(test_level_shift),
		cmocka_unit_test(test_clean_series_few_alarms),
		cmocka_unit_test(test_constant_series),
		cmocka_unit_test(test_daily_job),
		cmocka_unit_test(test_probation),
		cmocka_unit_test(test_routine_memory),
		cmocka_unit_test(test_deterministic),
		cmocka_unit_test(test_tscsv_good),
		cmocka_unit_test(test_tscsv_bad),
		cmocka_unit_test(test_nab_tiny),
		cmocka_unit_test(test_nab_corpus),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
