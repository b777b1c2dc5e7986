/* Unit tests for lib/plan and lib/svg_chart: rounding and headroom, the
 * demand quantile, a synthetic daily cycle that must give a pre-allocation
 * request lead-time ahead of every rise and never a scale-in, the
 * max-capacity buffer (honoured or raised), the per-instance capacity's
 * choice of evidence and its figures from measured minutes (CPU-seconds per
 * request, the rate sustained within a p99 limit), the binding resource of
 * a multi-resource plan, and an SVG chart that is self-contained and escaped.
 * Seeded: every run sees the same numbers. */
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

#include "catalog.h"
#include "plan.h"
#include "svg_chart.h"

#define HOUR 3600

static void test_required_rounding(void **state)
{
	assert_int_equal(us_plan_required(100, 120, 0.2, 1), 1);   /* exactly 1.0 */
	assert_int_equal(us_plan_required(100, 50, 0.2, 1), 3);    /* 2.4 -> 3 */
	assert_int_equal(us_plan_required(1000, 100, 0, 1), 10);   /* exact */
	assert_int_equal(us_plan_required(1000.5, 100, 0, 1), 11);
	assert_int_equal(us_plan_required(0, 100, 0.2, 2), 2);     /* min_instances */
	assert_int_equal(us_plan_required(-5, 100, 0.2, 1), 1);
	assert_int_equal(us_plan_required(NAN, 100, 0.2, 1), 1);
	assert_int_equal(us_plan_required(500, 100, 0.2, 1), 6);   /* 5 × 1.2 */
	assert_int_equal(us_plan_required(501, 100, 0.2, 1), 7);   /* 6.012 */
}

static void test_demand_quantile(void **state)
{
	double mean[] = { 100 }, hi80[] = { 128.1551565545 }, hi95[] = { 160 };
	struct us_fc_bands fc = { .start = 0, .step = 60, .n = 1, .mean = mean, .hi80 = hi80,
				  .hi95 = hi95 };
	double d90;

	assert_true(us_plan_demand(&fc, 0, 0) == 100);
	assert_true(fabs(us_plan_demand(&fc, 0, 0.80) - hi80[0]) < 1e-9);
	assert_true(fabs(us_plan_demand(&fc, 0, 0.95) - 160) < 1e-9);
	d90 = us_plan_demand(&fc, 0, 0.90);
	assert_true(d90 > hi80[0] && d90 < 160);
	assert_true(us_plan_demand(&fc, 0, 0.99) > 160);
	/* half the 80% width: z(0.5) / z(0.8) of it */
	assert_true(fabs(us_plan_demand(&fc, 0, 0.5) - (100 + 28.1551565545 * 0.6744897502 /
							      1.2815515655)) < 1e-6);
	fc.hi80 = fc.hi95 = NULL;
	assert_true(us_plan_demand(&fc, 0, 0.95) == 100);
}

/* Three days of hourly demand with a daily cycle, noise and bands. */
static void daily_cycle(struct us_fc_bands *fc, size_t n, int64_t t0)
{
	gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);

	gsl_rng_set(r, 42);
	fc->start = t0;
	fc->step = HOUR;
	fc->n = n;
	fc->mean = malloc(n * sizeof(double));
	fc->hi80 = malloc(n * sizeof(double));
	fc->hi95 = malloc(n * sizeof(double));
	fc->lo80 = fc->lo95 = NULL;
	for (size_t i = 0; i < n; i++) {
		double m = 600 + 400 * sin(2 * M_PI * (double)(i % 24) / 24) + gsl_ran_gaussian(r, 10);

		fc->mean[i] = m;
		fc->hi80[i] = m + 40;
		fc->hi95[i] = m + 60;
	}
	gsl_rng_free(r);
}

static void free_bands(struct us_fc_bands *fc)
{
	free(fc->mean);
	free(fc->hi80);
	free(fc->hi95);
}

static void test_daily_cycle_preallocates(void **state)
{
	struct us_plan_params p;
	struct us_fc_bands fc;
	struct us_plan plan;
	size_t days_with_request[3] = { 0 }, rises = 0;
	char err[256];

	daily_cycle(&fc, 72, 1700006400); /* a midnight */
	us_plan_defaults(&p);
	p.capacity = 100;
	assert_int_equal(us_plan_build(&fc, &p, &plan, err, sizeof(err)), 0);
	assert_int_equal(plan.n, 72);
	for (size_t i = 0; i < plan.n; i++) {
		const struct us_plan_step *s = &plan.steps[i];
		unsigned prev = i ? plan.steps[i - 1].required : s->required;

		assert_int_equal(s->required, us_plan_required(fc.hi95[i], 100, 0.2, 1));
		if (s->required > prev) {
			rises++;
			assert_true(s->request);
			assert_int_equal(s->request_at, s->t - 300);
			assert_int_equal(s->from, prev);
			assert_false(s->late);
			days_with_request[i / 24]++;
		} else {
			/* falling or flat: never a request, so never a scale-in */
			assert_false(s->request);
		}
		if (s->request)
			assert_true(s->required > s->from);
	}
	assert_int_equal(plan.nrequests, rises);
	for (int d = 0; d < 3; d++)
		assert_true(days_with_request[d] >= 3); /* every morning's rise */
	{
		unsigned peak = 0;

		for (size_t i = 0; i < plan.n; i++)
			peak = plan.steps[i].required > peak ? plan.steps[i].required : peak;
		assert_int_equal(plan.peak, peak);
		assert_true(peak >= 12 && peak <= 14); /* (1000 + 60 ± noise) × 1.2 / 100 */
	}
	assert_int_equal(plan.max_capacity, (unsigned)ceil(plan.peak * 1.1 - 1e-9));
	us_plan_free(&plan);

	/* a longer lead moves every request, nothing else */
	p.lead_s = 900;
	assert_int_equal(us_plan_build(&fc, &p, &plan, err, sizeof(err)), 0);
	for (size_t i = 0; i < plan.n; i++)
		if (plan.steps[i].request)
			assert_int_equal(plan.steps[i].request_at, plan.steps[i].t - 900);
	assert_int_equal(plan.nrequests, rises);
	us_plan_free(&plan);
	free_bands(&fc);
}

static void test_current_and_late(void **state)
{
	double mean[] = { 500, 500, 900 };
	struct us_fc_bands fc = { .start = 10000, .step = 60, .n = 3, .mean = mean };
	struct us_plan_params p;
	struct us_plan plan;
	char err[256];

	us_plan_defaults(&p);
	p.capacity = 100;
	p.headroom = 0;
	p.current = 2;
	assert_int_equal(us_plan_build(&fc, &p, &plan, err, sizeof(err)), 0);
	assert_true(plan.steps[0].request);       /* 2 running, 5 needed now */
	assert_true(plan.steps[0].late);
	assert_int_equal(plan.steps[0].from, 2);
	assert_false(plan.steps[1].request);
	assert_true(plan.steps[2].request);       /* 5 -> 9, 60 s ahead < 300 s lead */
	assert_true(plan.steps[2].late);
	assert_int_equal(plan.steps[2].request_at, 10120 - 300);
	us_plan_free(&plan);

	p.current = 0;                            /* unknown: the fleet fits step 0 */
	assert_int_equal(us_plan_build(&fc, &p, &plan, err, sizeof(err)), 0);
	assert_false(plan.steps[0].request);
	assert_int_equal(plan.nrequests, 1);
	us_plan_free(&plan);
}

static void test_max_capacity_buffer(void **state)
{
	double mean[] = { 200, 1000, 400 };
	struct us_fc_bands fc = { .start = 0, .step = 3600, .n = 3, .mean = mean };
	struct us_plan_params p;
	struct us_plan plan;
	char err[256];

	us_plan_defaults(&p);
	p.capacity = 100;
	p.headroom = 0;
	assert_int_equal(us_plan_build(&fc, &p, &plan, err, sizeof(err)), 0);
	assert_int_equal(plan.peak, 10);
	assert_int_equal(plan.max_capacity, 11);  /* 10 × 1.1 */
	us_plan_free(&plan);

	p.max_instances = 8;                      /* honoured: capped */
	assert_int_equal(us_plan_build(&fc, &p, &plan, err, sizeof(err)), 0);
	assert_int_equal(plan.steps[1].required, 8);
	assert_true(plan.steps[1].capped);
	assert_int_equal(plan.ncapped, 1);
	assert_int_equal(plan.max_capacity, 8);
	us_plan_free(&plan);

	p.increase_max = true;                    /* raised to the buffered peak */
	assert_int_equal(us_plan_build(&fc, &p, &plan, err, sizeof(err)), 0);
	assert_int_equal(plan.steps[1].required, 10);
	assert_int_equal(plan.ncapped, 0);
	assert_int_equal(plan.max_capacity, 11);
	us_plan_free(&plan);

	p.max_instances = 50;                     /* already above: kept */
	assert_int_equal(us_plan_build(&fc, &p, &plan, err, sizeof(err)), 0);
	assert_int_equal(plan.max_capacity, 50);
	us_plan_free(&plan);

	p.capacity = 0;
	assert_int_equal(us_plan_build(&fc, &p, &plan, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "capacity"));
	p.capacity = 1;
	p.quantile = 1;
	assert_int_equal(us_plan_build(&fc, &p, &plan, err, sizeof(err)), -1);
}

static void test_capacity_source(void **state)
{
	struct us_itype t = { .type = "m6i.xlarge", .vcpu = 4, .baseline_cpu_pct = 100 };
	struct us_capacity_in in = { 0 };
	struct us_capacity c;

	assert_int_equal(us_plan_capacity(&in, &c), -1);
	in.type = &t;
	in.nominal_cpu_s_per_req = 0.01;
	assert_int_equal(us_plan_capacity(&in, &c), 0);
	assert_int_equal(c.source, US_CAP_CATALOG);
	assert_true(c.warning);
	assert_true(fabs(c.per_instance - 400) < 1e-9);
	in.shadow_cpu_s_per_req = 0.02;
	assert_int_equal(us_plan_capacity(&in, &c), 0);
	assert_int_equal(c.source, US_CAP_SHADOW_CPU);
	assert_false(c.warning);
	assert_true(fabs(c.per_instance - 200) < 1e-9);
	in.shadow_rps = 350;                      /* above the CPU bound: capped */
	assert_int_equal(us_plan_capacity(&in, &c), 0);
	assert_int_equal(c.source, US_CAP_SHADOW);
	assert_true(fabs(c.per_instance - 200) < 1e-9);
	in.shadow_rps = 150;
	assert_int_equal(us_plan_capacity(&in, &c), 0);
	assert_true(fabs(c.per_instance - 150) < 1e-9);
	in.given = 90;
	assert_int_equal(us_plan_capacity(&in, &c), 0);
	assert_int_equal(c.source, US_CAP_GIVEN);
	assert_string_equal(us_cap_source_name(US_CAP_SHADOW_CPU), "shadow-cpu");
}

/* Shadow minutes: CPU-s per request is the median ratio, the sustained rate
 * the busiest minute within the p99 limit; capacity reports both and plans
 * on the smaller, with the target utilisation applied to the cores. */
static void test_capacity_from_minutes(void **state)
{
	const struct us_cap_minute m[] = {
		{ 600, 6.0, 10e6 },      /* 10 req/s, 0.010 CPU-s each */
		{ 1200, 14.4, 12e6 },    /* 20 req/s, 0.012 */
		{ 2400, 26.4, 40e6 },    /* 40 req/s, 0.011, p99 over the limit */
		{ 0, 1.0, NAN },         /* idle: no ratio, no rate */
		{ 1800, NAN, 11e6 },     /* 30 req/s, CPU unknown */
	};
	struct us_itype t = { .type = "c7g.xlarge", .vcpu = 4, .baseline_cpu_pct = 100 };
	struct us_capacity_in in = { 0 };
	struct us_capacity c;

	(void)state;
	assert_true(fabs(us_plan_cpu_per_request(m, 5) - 0.011) < 1e-12);
	assert_true(fabs(us_plan_cpu_per_request(m, 2) - 0.011) < 1e-12); /* even: mean of two */
	assert_true(us_plan_cpu_per_request(m + 3, 2) == 0);
	assert_true(fabs(us_plan_sustained_rps(m, 5, 20e6) - 30) < 1e-12);
	assert_true(fabs(us_plan_sustained_rps(m, 5, 50e6) - 40) < 1e-12);
	assert_true(us_plan_sustained_rps(m, 5, 1e6) == 0);

	in.type = &t;
	in.target_util = 0.7;
	in.shadow_cpu_s_per_req = 0.011;
	in.shadow_rps = 30;               /* CPU bound 4 × 0.7 / 0.011 = 254.5: the rate wins */
	assert_int_equal(us_plan_capacity(&in, &c), 0);
	assert_int_equal(c.source, US_CAP_SHADOW);
	assert_true(fabs(c.per_instance - 30) < 1e-9);
	assert_non_null(strstr(c.why, "sustained 30"));
	assert_non_null(strstr(c.why, "CPU bound 254.5"));
	in.shadow_rps = 0;                /* CPU cost alone */
	assert_int_equal(us_plan_capacity(&in, &c), 0);
	assert_int_equal(c.source, US_CAP_SHADOW_CPU);
	assert_true(fabs(c.per_instance - 2.8 / 0.011) < 1e-9);
	in.shadow_cpu_s_per_req = 0;      /* production's cost on catalog cores */
	in.nominal_cpu_s_per_req = 0.014;
	assert_int_equal(us_plan_capacity(&in, &c), 0);
	assert_int_equal(c.source, US_CAP_CATALOG);
	assert_true(c.warning);
	assert_true(fabs(c.per_instance - 200) < 1e-9);
}

/* Requests bind at night, memory by day: each step takes the larger need
 * and names its resource; a single resource equals us_plan_build. */
static void test_binding_resource(void **state)
{
	double rq[4] = { 100, 100, 100, 100 }, cpu[4] = { 1, 1, 6, 1 }, mem[4] = { 2, 2, 2, 30 };
	struct us_fc_bands frq = { .start = 0, .step = HOUR, .n = 4, .mean = rq };
	struct us_fc_bands fcpu = frq, fmem = frq, fshort = frq;
	struct us_itype t = { .type = "m6i.xlarge", .vcpu = 4, .memory_gib = 16,
			      .baseline_cpu_pct = 100 };
	double caps[US_RES_N] = { 50, 0, 0, 0 };
	struct us_plan_res_fc r[3];
	struct us_plan_params p;
	struct us_plan plan, one;
	char err[256];

	(void)state;
	fcpu.mean = cpu;
	fmem.mean = mem;
	us_plan_type_caps(&t, 0.5, caps);
	assert_true(fabs(caps[US_RES_CPU] - 2) < 1e-12);
	assert_true(fabs(caps[US_RES_MEMORY] - 14.4) < 1e-12);
	assert_true(caps[US_RES_NETWORK] == 0);
	assert_true(caps[US_RES_REQUESTS] == 50);
	us_plan_defaults(&p);
	p.headroom = 0;
	r[0] = (struct us_plan_res_fc){ US_RES_REQUESTS, &frq, caps[US_RES_REQUESTS] };
	r[1] = (struct us_plan_res_fc){ US_RES_CPU, &fcpu, caps[US_RES_CPU] };
	r[2] = (struct us_plan_res_fc){ US_RES_MEMORY, &fmem, caps[US_RES_MEMORY] };
	assert_int_equal(us_plan_build_multi(r, 3, &p, &plan, err, sizeof(err)), 0);
	assert_int_equal(plan.steps[0].required, 2);  /* 100 / 50 */
	assert_int_equal(plan.steps[0].binding, 0);
	assert_int_equal(plan.steps[2].required, 3);  /* 6 cores / 2 */
	assert_int_equal(plan.steps[2].binding, 1);
	assert_true(plan.steps[2].request);
	assert_int_equal(plan.steps[3].required, 3);  /* 30 GiB / 14.4 */
	assert_int_equal(plan.steps[3].binding, 2);
	assert_false(plan.steps[3].request);          /* same count: no new request */
	assert_true(plan.steps[0].demand == 100);     /* the first resource's figures */
	us_plan_free(&plan);

	p.capacity = 50;
	assert_int_equal(us_plan_build(&frq, &p, &one, err, sizeof(err)), 0);
	assert_int_equal(us_plan_build_multi(r, 1, &p, &plan, err, sizeof(err)), 0);
	for (size_t i = 0; i < 4; i++)
		assert_int_equal(one.steps[i].required, plan.steps[i].required);
	us_plan_free(&one);
	us_plan_free(&plan);

	fshort.n = 3;                                 /* misaligned forecasts are refused */
	r[1].fc = &fshort;
	assert_int_equal(us_plan_build_multi(r, 3, &p, &plan, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "line up"));
	r[1].fc = &fcpu;
	r[2].capacity = 0;                            /* as is a type without memory */
	assert_int_equal(us_plan_build_multi(r, 3, &p, &plan, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "memory"));
}

static void test_svg_chart(void **state)
{
	int64_t ht[48];
	double hv[48];
	struct us_fc_bands fc;
	struct us_plan_params p;
	struct us_plan plan;
	struct us_svg_chart c = { 0 };
	char err[256], *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	daily_cycle(&fc, 48, 1700006400 + 48 * HOUR);
	for (int i = 0; i < 48; i++) {
		ht[i] = 1700006400 + i * HOUR;
		hv[i] = i == 7 ? NAN : 600 + 400 * sin(2 * M_PI * (i % 24) / 24.0);
	}
	us_plan_defaults(&p);
	p.capacity = 100;
	assert_int_equal(us_plan_build(&fc, &p, &plan, err, sizeof(err)), 0);
	c.title = "web <prod> & \"api\"";
	c.unit = "req/s";
	c.hist_t = ht;
	c.hist_v = hv;
	c.nhist = 48;
	c.fc = &fc;
	c.plan = &plan;
	assert_int_equal(us_svg_forecast_chart(f, &c), 0);
	fclose(f);
	assert_non_null(strstr(buf, "<svg xmlns=\"http://www.w3.org/2000/svg\""));
	assert_non_null(strstr(buf, "web &lt;prod&gt; &amp; &quot;api&quot;"));
	assert_null(strstr(buf, "<prod>"));
	assert_null(strstr(buf, "nan"));
	assert_null(strstr(buf, "inf"));
	assert_null(strstr(buf, "href"));
	assert_null(strstr(buf, "<script"));
	/* only the namespace name looks like a URL */
	assert_ptr_equal(strstr(buf, "http"), strstr(buf, "http://www.w3.org/2000/svg"));
	assert_null(strstr(strstr(buf, "http") + 4, "http"));
	assert_non_null(strstr(buf, "request at least"));
	assert_non_null(strstr(buf, "</svg>\n"));
	free(buf);
	us_plan_free(&plan);
	free_bands(&fc);

	/* nothing to plot */
	memset(&c, 0, sizeof(c));
	f = open_memstream(&buf, &len);
	assert_int_equal(us_svg_forecast_chart(f, &c), -1);
	fclose(f);
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_required_rounding),
		cmocka_unit_test(test_demand_quantile),
		cmocka_unit_test(test_daily_cycle_preallocates),
		cmocka_unit_test(test_current_and_late),
		cmocka_unit_test(test_max_capacity_buffer),
		cmocka_unit_test(test_capacity_source),
		cmocka_unit_test(test_capacity_from_minutes),
		cmocka_unit_test(test_binding_resource),
		cmocka_unit_test(test_svg_chart),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
