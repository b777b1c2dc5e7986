/* Unit tests for lib/fc_events: the example file parses as documented; an
 * event multiplies (or adds to) the forecast only inside its window, mean
 * and bounds alike; growth compounds (10%/month over two months is ×1.21);
 * a calendar effect is learned from a synthetic history with a holiday dip
 * and applied to the same holiday in the horizon; bad files fail with
 * FILE:LINE. Seeded: every run sees the same numbers. */
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

#include "fc_events.h"

#define HOUR 3600
#define DAY 86400

static int parse(const char *yaml, struct us_fc_events *ev, char *err, size_t errlen)
{
	return us_fc_events_parse("ev.yaml", yaml, strlen(yaml), ev, err, errlen);
}

static int64_t at(const char *s)
{
	int64_t t = 0;

	assert_int_equal(us_fc_parse_time(s, &t), 0);
	return t;
}

static void test_parse_time(void **state)
{
	int64_t t;

	assert_int_equal(at("1970-01-01"), 0);
	assert_int_equal(at("2024-02-29"), 1709164800);
	assert_int_equal(at("2024-02-29T12:30:15Z"), 1709164800 + 12 * HOUR + 30 * 60 + 15);
	assert_int_equal(at("2024-02-29 12:30"), 1709164800 + 12 * HOUR + 30 * 60);
	assert_int_equal(at("1700000000"), 1700000000);
	assert_int_equal(us_fc_parse_time("2023-02-29", &t), -1);
	assert_int_equal(us_fc_parse_time("2023-13-01", &t), -1);
	assert_int_equal(us_fc_parse_time("2023-01-01T24:00", &t), -1);
	assert_int_equal(us_fc_parse_time("2023-01-01x", &t), -1);
	assert_int_equal(us_fc_parse_time("soon", &t), -1);
	assert_int_equal(us_fc_parse_time("", &t), -1);
}

static void test_example_file(void **state)
{
	struct us_fc_events ev;
	char err[512] = "";
	int rc = us_fc_events_load("tests/data/events-example.yaml", &ev, err,
				   sizeof(err));

	if (rc < 0)
		fail_msg("%s", err);
	assert_true(ev.has_growth);
	assert_true(fabs(ev.growth - 0.10) < 1e-12);
	assert_int_equal(ev.growth_from, at("2025-03-01"));
	assert_int_equal(ev.nevents, 2);
	assert_string_equal(ev.events[0].name, "product-launch");
	assert_int_equal(ev.events[0].kind, US_FCEV_MULTIPLY);
	assert_true(ev.events[0].value == 1.8);
	assert_int_equal(ev.events[1].kind, US_FCEV_ADD);
	assert_int_equal(ev.events[1].end - ev.events[1].start, 4 * HOUR);
	assert_int_equal(ev.ncal, 2);
	assert_string_equal(ev.cal[0].name, "christmas");
	assert_int_equal(ev.cal[0].ndays, 3);
	assert_true(ev.cal[0].prior == 0.6);
	assert_true(isnan(ev.cal[1].prior));
	assert_int_equal(ev.cal[1].ndays, 2);
	us_fc_events_free(&ev);
}

/* A flat forecast of 100 (bounds 80..120, 60..140), hourly from t0. */
static void flat(struct us_fc_bands *fc, int64_t t0, size_t n)
{
	double **arrs[] = { &fc->mean, &fc->lo80, &fc->hi80, &fc->lo95, &fc->hi95 };
	const double vals[] = { 100, 80, 120, 60, 140 };

	fc->start = t0;
	fc->step = HOUR;
	fc->n = n;
	for (size_t k = 0; k < 5; k++) {
		*arrs[k] = malloc(n * sizeof(double));
		for (size_t i = 0; i < n; i++)
			(*arrs[k])[i] = vals[k];
	}
}

static void unflat(struct us_fc_bands *fc)
{
	free(fc->mean);
	free(fc->lo80);
	free(fc->hi80);
	free(fc->lo95);
	free(fc->hi95);
}

static void test_event_only_inside_window(void **state)
{
	const char *yaml = "events:\n"
			   "  - name: launch\n"
			   "    start: 2025-03-10T09:00:00Z\n"
			   "    end: 2025-03-10T12:00:00Z\n"
			   "    multiply: x1.8\n"
			   "  - start: 2025-03-10T20:00\n"
			   "    duration: 1h\n"
			   "    add: 500\n";
	struct us_fc_events ev;
	struct us_fc_bands fc;
	int64_t t0 = at("2025-03-10");
	char err[256];

	assert_int_equal(parse(yaml, &ev, err, sizeof(err)), 0);
	flat(&fc, t0, 24);
	us_fc_apply_events(&ev, &fc);
	for (size_t i = 0; i < 24; i++) {
		double m = i >= 9 && i < 12 ? 1.8 : 1, a = i == 20 ? 500 : 0;

		assert_true(fabs(fc.mean[i] - (100 * m + a)) < 1e-9);
		assert_true(fabs(fc.lo80[i] - (80 * m + a)) < 1e-9);
		assert_true(fabs(fc.hi80[i] - (120 * m + a)) < 1e-9);
		assert_true(fabs(fc.lo95[i] - (60 * m + a)) < 1e-9);
		assert_true(fabs(fc.hi95[i] - (140 * m + a)) < 1e-9);
	}
	unflat(&fc);
	us_fc_events_free(&ev);
}

static void test_negative_add_clamps(void **state)
{
	const char *yaml = "events:\n  - {start: 1000, end: 5000, add: -90}\n";
	struct us_fc_events ev;
	struct us_fc_bands fc;
	char err[256];

	assert_int_equal(parse(yaml, &ev, err, sizeof(err)), 0);
	flat(&fc, 0, 3);
	us_fc_apply_events(&ev, &fc);
	assert_true(fc.mean[0] == 100);
	assert_true(fc.mean[1] == 10);
	assert_true(fc.lo95[1] == 0); /* 60 - 90 clamped */
	assert_true(fc.hi95[1] == 50);
	unflat(&fc);
	us_fc_events_free(&ev);
}

static void test_growth_compounds(void **state)
{
	const char *yaml = "growth: {percent_per_month: 10, from: 2025-01-01}\n";
	struct us_fc_events ev;
	int64_t from = at("2025-01-01");
	char err[256];

	assert_int_equal(parse(yaml, &ev, err, sizeof(err)), 0);
	assert_true(us_fc_growth_factor(&ev, from - DAY) == 1);
	assert_true(us_fc_growth_factor(&ev, from) == 1);
	assert_true(fabs(us_fc_growth_factor(&ev, from + US_FCEV_MONTH_S) - 1.10) < 1e-12);
	assert_true(fabs(us_fc_growth_factor(&ev, from + 2 * US_FCEV_MONTH_S) - 1.21) < 1e-12);
	/* continuous: half a month is sqrt(1.1) */
	assert_true(fabs(us_fc_growth_factor(&ev, from + US_FCEV_MONTH_S / 2) - sqrt(1.1)) < 1e-9);
	us_fc_events_free(&ev);

	/* applied to a forecast: ×1.21 two months in, bounds included */
	{
		struct us_fc_bands fc;

		assert_int_equal(parse(yaml, &ev, err, sizeof(err)), 0);
		flat(&fc, from + 2 * US_FCEV_MONTH_S, 1);
		us_fc_apply_events(&ev, &fc);
		assert_true(fabs(fc.mean[0] - 121) < 1e-9);
		assert_true(fabs(fc.hi95[0] - 140 * 1.21) < 1e-9);
		unflat(&fc);
		us_fc_events_free(&ev);
	}
}

/* 8 weeks of hourly history with a daily cycle and noise; on the holiday the
 * level drops to 40%. The learned multiplier is about 0.4, applies to the
 * holiday's date in the horizon and to nothing else. */
static void test_calendar_learned(void **state)
{
	const char *yaml = "calendar:\n"
			   "  - name: founders-day\n"
			   "    dates: [2025-02-12, 2025-04-16]\n"
			   "  - name: never-seen\n"
			   "    dates: [2025-04-17]\n"
			   "    multiplier: 1.5\n"
			   "  - name: no-info\n"
			   "    dates: [2025-04-18]\n";
	size_t n = 8 * 7 * 24;
	int64_t *t = malloc(n * sizeof(*t)), t0 = at("2025-01-20"), hol = at("2025-02-12");
	double *v = malloc(n * sizeof(*v));
	gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
	struct us_fc_events ev;
	struct us_fc_bands fc;
	char err[256];

	gsl_rng_set(r, 7);
	for (size_t i = 0; i < n; i++) {
		t[i] = t0 + (int64_t)i * HOUR;
		v[i] = 200 + 100 * sin(2 * M_PI * (double)(i % 24) / 24) + gsl_ran_gaussian(r, 5);
		if (t[i] >= hol && t[i] < hol + DAY)
			v[i] *= 0.4;
	}
	assert_int_equal(parse(yaml, &ev, err, sizeof(err)), 0);
	assert_int_equal(us_fc_learn_calendar(&ev, t, v, NULL, n), 1);
	assert_int_equal(ev.cal[0].learned_days, 1);
	assert_int_equal(ev.cal[0].learned_points, 24);
	assert_true(fabs(ev.cal[0].learned - 0.4) < 0.03);
	assert_true(isnan(ev.cal[1].learned));
	assert_true(us_fc_calendar_multiplier(&ev.cal[1]) == 1.5);
	assert_true(us_fc_calendar_multiplier(&ev.cal[2]) == 1);

	/* the horizon: 2025-04-15 .. 04-19, hourly */
	flat(&fc, at("2025-04-15"), 5 * 24);
	us_fc_apply_events(&ev, &fc);
	for (size_t i = 0; i < fc.n; i++) {
		double want = i / 24 == 1 ? 100 * ev.cal[0].learned : i / 24 == 2 ? 150 : 100;

		assert_true(fabs(fc.mean[i] - want) < 1e-9);
		assert_true(fabs(fc.hi95[i] - want * 1.4) < 1e-9);
	}
	unflat(&fc);

	/* with a model's fitted values the ratio is actual / fitted */
	{
		double *fit = malloc(n * sizeof(*fit));

		for (size_t i = 0; i < n; i++)
			fit[i] = v[i] / (t[i] >= hol && t[i] < hol + DAY ? 0.5 : 1);
		assert_int_equal(us_fc_learn_calendar(&ev, t, v, fit, n), 1);
		assert_true(fabs(ev.cal[0].learned - 0.5) < 1e-9);
		free(fit);
	}
	us_fc_events_free(&ev);
	gsl_rng_free(r);
	free(t);
	free(v);
}

static void expect_error(const char *yaml, const char *want)
{
	struct us_fc_events ev;
	char err[512] = "";

	if (parse(yaml, &ev, err, sizeof(err)) == 0)
		fail_msg("accepted: %s", yaml);
	if (!strstr(err, want))
		fail_msg("error '%s' lacks '%s'", err, want);
	assert_int_equal(ev.nevents, 0);
	assert_null(ev.cal);
	us_fc_events_free(&ev);
}

static void test_bad_yaml(void **state)
{
	expect_error("growth: {percent_per_month: 10}\n", "ev.yaml:1: growth.from");
	expect_error("growth:\n  percent_per_month: ten\n  from: 2025-01-01\n",
		     "ev.yaml:2: growth.percent_per_month: expected a number");
	expect_error("growth:\n  percent_per_month: -100%\n  from: 2025-01-01\n",
		     "ev.yaml:2: growth.percent_per_month: must be above -100%");
	expect_error("events:\n  - start: 2025-01-01\n    end: 2024-12-31\n    multiply: 2\n",
		     "ev.yaml:3: events[0].end: the event must end after it starts");
	expect_error("events:\n  - start: 2025-01-01\n    end: 2025-02-30\n    multiply: 2\n",
		     "ev.yaml:3: events[0].end: expected a UTC date");
	expect_error("events:\n  - start: 2025-01-01\n    end: 2025-01-02\n",
		     "ev.yaml:2: events[0]: give exactly one of multiply");
	expect_error("events:\n  - start: 2025-01-01\n    end: 2025-01-02\n    multiply: 2\n"
		     "    add: 3\n", "ev.yaml:2: events[0]: give exactly one of multiply");
	expect_error("events:\n  - start: 2025-01-01\n    duration: 1h\n    end: 2025-01-02\n"
		     "    add: 3\n", "give exactly one of end and duration");
	expect_error("events:\n  - start: 2025-01-01\n    end: 2025-01-02\n    multiply: -1\n",
		     "ev.yaml:4: events[0].multiply: must not be negative");
	expect_error("events:\n  - start: 2025-01-01\n    end: 2025-01-02\n    multiplier: 2\n",
		     "ev.yaml:4: events[0].multiplier");
	expect_error("calendar:\n  - name: x\n    dates: [2025-01-01, 2025-01-01T10:00]\n",
		     "ev.yaml:3: calendar[0].dates[1]: expected a date YYYY-MM-DD");
	expect_error("calendar:\n  - name: x\n    dates: []\n", "ev.yaml:3: calendar[0].dates");
	expect_error("calendar:\n  - name: x\n", "ev.yaml:2: calendar[0].dates");
	expect_error("growht: 1\n", "ev.yaml:1: growht");
	expect_error("events: {a: 1}\n", "ev.yaml:1: events");
	expect_error("events:\n  - start: 2025-01-01\n  end: 2025-01-02\n", "ev.yaml:3");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_time),
		cmocka_unit_test(test_example_file),
		cmocka_unit_test(test_event_only_inside_window),
		cmocka_unit_test(test_negative_add_clamps),
		cmocka_unit_test(test_growth_compounds),
		cmocka_unit_test(test_calendar_learned),
		cmocka_unit_test(test_bad_yaml),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
