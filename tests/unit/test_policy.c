/* Unit tests for lib/policy: defaults, the missing file, a full policy read
 * into the struct, the appended "default", every refusal with its
 * "FILE:LINE: KEY: problem" message, and maintenance windows (inside,
 * outside, crossing midnight, day filtering). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "policy.h"

#define NAME "policies.yaml"

static char err[1024];

/* The set is large: on the heap. */
static struct us_policy_set *parse_ok(const char *yaml)
{
	struct us_policy_set *s = malloc(sizeof(*s));

	assert_non_null(s);
	if (us_policy_parse(NAME, yaml, strlen(yaml), s, err, sizeof(err)) < 0)
		fail_msg("unexpected error: %s", err);
	return s;
}

static void parse_fails(const char *yaml, const char *want)
{
	struct us_policy_set *s = malloc(sizeof(*s));
	int rc;

	assert_non_null(s);
	err[0] = '\0';
	rc = us_policy_parse(NAME, yaml, strlen(yaml), s, err, sizeof(err));
	free(s);
	if (rc == 0)
		fail_msg("parsed, but expected an error with \"%s\"", want);
	if (!strstr(err, want))
		fail_msg("error \"%s\" lacks \"%s\"", err, want);
}

static void assert_default_values(const struct us_migration_policy *p)
{
	assert_string_equal(p->name, "default");
	assert_true(p->validate.min_confidence == 0.9);
	assert_int_equal(p->validate.min_duration_ns, 600 * US_NS_PER_SEC);
	assert_int_equal(p->validate.min_samples, 1000);
	assert_int_equal(p->validate.window_ns, 900 * US_NS_PER_SEC);
	assert_int_equal(p->nsteps, 4);
	assert_true(p->steps[0] == 10 && p->steps[1] == 25 && p->steps[2] == 50 &&
		    p->steps[3] == 100);
	assert_int_equal(p->bake_ns, 300 * US_NS_PER_SEC);
	assert_true(p->guards.max_p99_ratio == 1.2);
	assert_true(p->guards.max_error_delta == 0.001);
	assert_int_equal(p->guards.min_samples, 100);
	assert_int_equal(p->guards.window_ns, 60 * US_NS_PER_SEC);
	assert_int_equal(p->guards.min_p99_delta_ns, US_NS_PER_MS);
	assert_false(p->approval);
	assert_int_equal(p->max_concurrent, 1);
	assert_int_equal(p->retain_ns, 600 * US_NS_PER_SEC);
	assert_int_equal(p->preallocate_lead_ns, 0);
	assert_int_equal(p->nwindows, 0);
}

static void test_defaults(void **state)
{
	struct us_migration_policy *p = malloc(sizeof(*p));
	struct us_policy_set *s;

	assert_non_null(p);
	us_migration_policy_defaults(p);
	assert_default_values(p);
	assert_true(us_policy_in_window(p, 0));
	assert_true(us_policy_in_window(p, 1800000000));
	free(p);
	/* an empty file, and a null list: just "default" */
	s = parse_ok("");
	assert_int_equal(s->n, 1);
	assert_default_values(&s->p[0]);
	free(s);
	s = parse_ok("policies:\n");
	assert_int_equal(s->n, 1);
	assert_default_values(us_policy_find(s, "default"));
	assert_null(us_policy_find(s, "other"));
	free(s);
}

static void test_missing_file(void **state)
{
	struct us_policy_set *s = malloc(sizeof(*s));
	char dir[] = "/tmp/test_policy.XXXXXX", path[64];

	assert_non_null(s);
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/policies.yaml", dir);
	s->n = 7;
	assert_int_equal(us_policy_load(path, s, err, sizeof(err)), 0);
	assert_int_equal(s->n, 1);
	assert_default_values(&s->p[0]);
	/* a directory, or a symlink to nothing, is not a missing file */
	assert_int_equal(us_policy_load(dir, s, err, sizeof(err)), -1);
	assert_non_null(strstr(err, dir));
	assert_int_equal(symlink("/nonexistent/policies.yaml", path), 0);
	assert_int_equal(us_policy_load(path, s, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "cannot open"));
	unlink(path);
	rmdir(dir);
	free(s);
}

static const char full[] =
	"policies:\n"
	"  - name: careful\n"
	"    validate: { min_confidence: 0.95, min_duration: 30m, min_samples: 5000, window: 1h }\n"
	"    steps: [1, 5, 12.5, 100]\n"
	"    bake: 15m\n"
	"    guards: { max_p99_ratio: 1.1, min_p99_delta: 5ms, max_error_delta: 0.5%,\n"
	"              min_samples: 250, window: 2m }\n"
	"    approval: true\n"
	"    max_concurrent: 3\n"
	"    retain: 1h\n"
	"    preallocate_lead: 90s\n"
	"    maintenance_windows:\n"
	"      - { days: [sat, sun], start: \"02:00\", end: \"06:00\" }\n"
	"      - { start: \"23:30\", end: \"00:15\" }\n"
	"  - name: fast\n"
	"    steps: [100]\n"
	"    guards: { max_error_delta: 0.02 }\n";

static void test_full_example(void **state)
{
	struct us_policy_set *s = parse_ok(full);
	const struct us_migration_policy *p = us_policy_find(s, "careful"), *f;

	assert_int_equal(s->n, 3); /* careful, fast, and the appended default */
	assert_non_null(p);
	assert_true(p->validate.min_confidence == 0.95);
	assert_int_equal(p->validate.min_duration_ns, 1800 * US_NS_PER_SEC);
	assert_int_equal(p->validate.min_samples, 5000);
	assert_int_equal(p->validate.window_ns, 3600 * US_NS_PER_SEC);
	assert_int_equal(p->nsteps, 4);
	assert_true(p->steps[0] == 1 && p->steps[1] == 5 && p->steps[2] == 12.5 &&
		    p->steps[3] == 100);
	assert_int_equal(p->bake_ns, 900 * US_NS_PER_SEC);
	assert_true(p->guards.max_p99_ratio == 1.1);
	assert_true(p->guards.max_error_delta == 0.005);
	assert_int_equal(p->guards.min_samples, 250);
	assert_int_equal(p->guards.window_ns, 120 * US_NS_PER_SEC);
	assert_int_equal(p->guards.min_p99_delta_ns, 5 * US_NS_PER_MS);
	assert_true(p->approval);
	assert_int_equal(p->max_concurrent, 3);
	assert_int_equal(p->retain_ns, 3600 * US_NS_PER_SEC);
	assert_int_equal(p->preallocate_lead_ns, 90 * US_NS_PER_SEC);
	assert_int_equal(p->nwindows, 2);
	assert_int_equal(p->windows[0].days, (1 << 6) | (1 << 0));
	assert_int_equal(p->windows[0].start_min, 120);
	assert_int_equal(p->windows[0].end_min, 360);
	assert_int_equal(p->windows[1].days, 0x7f);
	assert_int_equal(p->windows[1].start_min, 1410);
	assert_int_equal(p->windows[1].end_min, 15);
	/* unset fields keep their defaults */
	f = us_policy_find(s, "fast");
	assert_non_null(f);
	assert_int_equal(f->nsteps, 1);
	assert_true(f->steps[0] == 100);
	assert_true(f->guards.max_error_delta == 0.02);
	assert_true(f->guards.max_p99_ratio == 1.2);
	assert_int_equal(f->bake_ns, 300 * US_NS_PER_SEC);
	assert_default_values(&s->p[2]);
	free(s);
	/* a file with its own default keeps it and gets no second one */
	s = parse_ok("policies:\n  - name: default\n    approval: yes\n  - name: x\n");
	assert_int_equal(s->n, 2);
	assert_true(us_policy_find(s, "default")->approval);
	free(s);
}

static void test_errors(void **state)
{
	static const struct { const char *yaml, *want; } cases[] = {
		{ "polices: []\n", NAME ":1: polices: unknown key; did you mean 'policies'?" },
		{ "policies: { name: x }\n", NAME ":1: policies: expected a list" },
		{ "policies: [x]\n", NAME ":1: policies[0]: expected a mapping" },
		{ "policies:\n  - bake: 1m\n", NAME ":2: policies[0].name: required key is missing" },
		{ "policies:\n  - name: a b\n", NAME ":2: policies[0].name: use 1-63 of" },
		{ "policies:\n  - name: a\n  - name: a\n", NAME ":3: policies[1].name: policy 'a' is named twice" },
		{ "policies:\n  - name: a\n    colour: red\n", NAME ":3: policies[0].colour: unknown key" },
		{ "policies:\n  - name: a\n    validate: { min_confidence: 1 }\n", NAME ":3: policies[0].validate.min_confidence: must be more than 0 and less than 1" },
		{ "policies:\n  - name: a\n    validate: { min_confidence: high }\n", NAME ":3: policies[0].validate.min_confidence: expected a number, got 'high'" },
		{ "policies:\n  - name: a\n    validate: { min_confidence: nan }\n", NAME ":3: policies[0].validate.min_confidence: expected a number" },
		{ "policies:\n  - name: a\n    validate: { samples: 3 }\n", NAME ":3: policies[0].validate.samples: unknown key" },
		{ "policies:\n  - name: a\n    validate: { min_samples: 0 }\n", NAME ":3: policies[0].validate.min_samples:" },
		{ "policies:\n  - name: a\n    validate: { window: 0s }\n", NAME ":3: policies[0].validate.window: must be at least 1s" },
		{ "policies:\n  - name: a\n    steps: [10, 10, 100]\n", NAME ":3: policies[0].steps[1]: steps must increase (10 follows 10)" },
		{ "policies:\n  - name: a\n    steps: [50, 25, 100]\n", NAME ":3: policies[0].steps[1]: steps must increase" },
		{ "policies:\n  - name: a\n    steps: [10, 50]\n", NAME ":3: policies[0].steps[1]: the last step must be 100 (all traffic), got 50" },
		{ "policies:\n  - name: a\n    steps: [0, 100]\n", NAME ":3: policies[0].steps[0]: a step is a percentage more than 0 and at most 100" },
		{ "policies:\n  - name: a\n    steps: [10, 150]\n", NAME ":3: policies[0].steps[1]: a step is a percentage" },
		{ "policies:\n  - name: a\n    steps: []\n", NAME ":3: policies[0].steps: at least one step" },
		{ "policies:\n  - name: a\n    steps: [1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,100]\n", NAME ":3: policies[0].steps: too many steps (17; at most 16)" },
		{ "policies:\n  - name: a\n    bake: forever\n", NAME ":3: policies[0].bake:" },
		{ "policies:\n  - name: a\n    guards: { max_p99_ratio: 0.9 }\n", NAME ":3: policies[0].guards.max_p99_ratio: must be at least 1" },
		{ "policies:\n  - name: a\n    guards: { max_error_delta: 200% }\n", NAME ":3: policies[0].guards.max_error_delta: expected a fraction" },
		{ "policies:\n  - name: a\n    guards: { max_error_delta: \"%\" }\n", NAME ":3: policies[0].guards.max_error_delta: expected a number or a percentage, got '%'" },
		{ "policies:\n  - name: a\n    guards: { min_samples: -1 }\n", NAME ":3: policies[0].guards.min_samples:" },
		{ "policies:\n  - name: a\n    approval: maybe\n", NAME ":3: policies[0].approval:" },
		{ "policies:\n  - name: a\n    max_concurrent: 0\n", NAME ":3: policies[0].max_concurrent:" },
		{ "policies:\n  - name: a\n    maintenance_windows: [{ start: \"02:00\" }]\n", NAME ":3: policies[0].maintenance_windows[0].end: required key is missing" },
		{ "policies:\n  - name: a\n    maintenance_windows: [{ start: \"2am\", end: \"06:00\" }]\n", NAME ":3: policies[0].maintenance_windows[0].start: expected a UTC time HH:MM" },
		{ "policies:\n  - name: a\n    maintenance_windows: [{ start: \"24:00\", end: \"06:00\" }]\n", NAME ":3: policies[0].maintenance_windows[0].start: expected a UTC time" },
		{ "policies:\n  - name: a\n    maintenance_windows: [{ start: \"01:60\", end: \"06:00\" }]\n", NAME ":3: policies[0].maintenance_windows[0].start:" },
		{ "policies:\n  - name: a\n    maintenance_windows: [{ start: \"02:00\", end: \"02:00\" }]\n", NAME ":3: policies[0].maintenance_windows[0].end: start and end are equal" },
		{ "policies:\n  - name: a\n    maintenance_windows: [{ days: [sat, caturday], start: \"02:00\", end: \"03:00\" }]\n", NAME ":3: policies[0].maintenance_windows[0].days[1]: expected a day" },
		{ "policies:\n  - name: a\n    maintenance_windows: [{ days: [], start: \"02:00\", end: \"03:00\" }]\n", NAME ":3: policies[0].maintenance_windows[0].days: name at least one day" },
		{ "policies:\n  - name: a\n    maintenance_windows: [{ start: \"02:00\", end: \"03:00\", tz: CET }]\n", NAME ":3: policies[0].maintenance_windows[0].tz: unknown key" },
		{ "policies:\n  - name: a\n    maintenance_windows: [\"02:00-03:00\"]\n", NAME ":3: policies[0].maintenance_windows[0]: expected a mapping" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		parse_fails(cases[i].yaml, cases[i].want);
}

static void test_limits(void **state)
{
	size_t cap = 64 * 1024, o;
	char *yaml = malloc(cap);
	struct us_policy_set *s;

	assert_non_null(yaml);
	/* 16 windows are fine, 17 are not */
	o = (size_t)snprintf(yaml, cap, "policies:\n  - name: a\n    maintenance_windows:\n");
	for (int i = 0; i < US_POLICY_MAX_WINDOWS; i++)
		o += (size_t)snprintf(yaml + o, cap - o, "      - { start: \"%02d:00\", end: \"%02d:30\" }\n", i, i);
	s = parse_ok(yaml);
	assert_int_equal(s->p[0].nwindows, US_POLICY_MAX_WINDOWS);
	free(s);
	snprintf(yaml + o, cap - o, "      - { start: \"20:00\", end: \"20:30\" }\n");
	parse_fails(yaml, NAME ":4: policies[0].maintenance_windows: too many windows (17; at most 16)");
	/* 63 named policies get a default; 64 without one leave no room */
	o = (size_t)snprintf(yaml, cap, "policies:\n");
	for (int i = 0; i < US_MAX_POLICIES - 1; i++)
		o += (size_t)snprintf(yaml + o, cap - o, "  - name: p%d\n", i);
	s = parse_ok(yaml);
	assert_int_equal(s->n, US_MAX_POLICIES);
	assert_non_null(us_policy_find(s, "default"));
	free(s);
	o += (size_t)snprintf(yaml + o, cap - o, "  - name: p%d\n", US_MAX_POLICIES - 1);
	parse_fails(yaml, NAME ":2: policies: 64 policies and none is 'default'");
	snprintf(yaml + o, cap - o, "  - name: default\n");
	parse_fails(yaml, NAME ":2: policies: too many policies (65; at most 64)");
	free(yaml);
}

/* 2026-11-28 is a Saturday. */
#define SAT_0000 ((time_t)1795824000)
#define AT(day, h, m) (SAT_0000 + (time_t)(day) * 86400 + (h) * 3600 + (m) * 60)

static struct us_policy_set *windows(const char *list)
{
	char yaml[512];

	snprintf(yaml, sizeof(yaml), "policies:\n  - name: default\n    maintenance_windows: %s\n",
		 list);
	return parse_ok(yaml);
}

static void test_windows(void **state)
{
	struct us_policy_set *s;
	const struct us_migration_policy *p;
	struct tm tm;
	time_t sat = SAT_0000;

	assert_non_null(gmtime_r(&sat, &tm));
	assert_int_equal(tm.tm_wday, 6);
	assert_int_equal(tm.tm_hour, 0);

	/* weekend mornings: inside, edges, outside, other days */
	s = windows("[{ days: [sat, Sunday], start: \"02:00\", end: \"06:00\" }]");
	p = &s->p[0];
	assert_true(us_policy_in_window(p, AT(0, 2, 0)));      /* start is inside */
	assert_true(us_policy_in_window(p, AT(0, 5, 59)));
	assert_false(us_policy_in_window(p, AT(0, 6, 0)));     /* end is not */
	assert_false(us_policy_in_window(p, AT(0, 1, 59)));
	assert_true(us_policy_in_window(p, AT(1, 3, 0)));      /* Sunday */
	assert_false(us_policy_in_window(p, AT(2, 3, 0)));     /* Monday */
	assert_false(us_policy_in_window(p, AT(6, 3, 0)));     /* Friday */
	free(s);

	/* every day when days is left out */
	s = windows("[{ start: \"12:00\", end: \"13:00\" }]");
	for (int d = 0; d < 7; d++) {
		assert_true(us_policy_in_window(&s->p[0], AT(d, 12, 30)));
		assert_false(us_policy_in_window(&s->p[0], AT(d, 13, 30)));
	}
	free(s);

	/* Sat 23:00-01:00 crosses midnight and belongs to Saturday */
	s = windows("[{ days: [sat], start: \"23:00\", end: \"01:00\" }]");
	p = &s->p[0];
	assert_true(us_policy_in_window(p, AT(0, 23, 0)));
	assert_true(us_policy_in_window(p, AT(0, 23, 59)));
	assert_true(us_policy_in_window(p, AT(1, 0, 30)));     /* Sunday 00:30 */
	assert_false(us_policy_in_window(p, AT(1, 1, 0)));
	assert_false(us_policy_in_window(p, AT(0, 0, 30)));    /* Saturday 00:30: Friday's night */
	assert_false(us_policy_in_window(p, AT(1, 23, 30)));   /* Sunday night */
	assert_false(us_policy_in_window(p, AT(0, 22, 59)));
	free(s);

	/* up to 24:00, and two windows of which either counts */
	s = windows("[{ days: [fri], start: \"22:00\", end: \"24:00\" }, { days: [mon], start: \"00:00\", end: \"00:10\" }]");
	p = &s->p[0];
	assert_true(us_policy_in_window(p, AT(6, 23, 59)));    /* Friday */
	assert_false(us_policy_in_window(p, AT(0, 0, 0)));     /* Saturday 00:00 */
	assert_true(us_policy_in_window(p, AT(2, 0, 5)));      /* Monday */
	assert_false(us_policy_in_window(p, AT(2, 0, 10)));
	free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_missing_file),
		cmocka_unit_test(test_full_example),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_windows),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
