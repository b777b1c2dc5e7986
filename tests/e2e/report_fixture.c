/* Writes a sample comparison report (coordinator/report_html.c) for the
 * end-to-end test that renders it in a real browser:
 *
 *     report_fixture OUT.html [DECISION]
 *
 * The data is synthetic but shaped like a real run, seeded so every run
 * writes the same bytes: lognormal latencies with the shadow 12% slower,
 * KPI rows of every class including NoData with NaN values, timelines with
 * a gap, alerts and one empty series, and a hostile workload name (the
 * browser must show it as text). DECISION (default "Fail") lets the test
 * check the banner's colour per decision. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report_html.h"

#define N_SAMPLES 2000
#define N_CDF 200
#define T0 1714564800.0                 /* 2024-05-01 12:00:00 UTC */
#define N_STEPS 90                      /* 15 minutes at 10 s */

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static double uniform(void)
{
	/* xorshift64*: enough for test data, and the same on every platform */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return ((rng_state * 2685821657736338717ULL) >> 11) * (1.0 / 9007199254740992.0);
}

static double normal(void)
{
	double u = uniform(), v = uniform();

	return sqrt(-2 * log(u + 1e-300)) * cos(2 * M_PI * v);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* N_CDF evenly spaced quantiles of a lognormal sample, as CDF points. */
static void make_cdf(struct us_report_cdf_point *cdf, double median_ms, double sigma)
{
	static double v[N_SAMPLES];
	int i;

	for (i = 0; i < N_SAMPLES; i++)
		v[i] = median_ms * exp(sigma * normal());
	qsort(v, N_SAMPLES, sizeof(v[0]), cmp_double);
	for (i = 0; i < N_CDF; i++) {
		int k = (int)((i + 1) * (double)N_SAMPLES / N_CDF) - 1;

		cdf[i].value_ms = v[k];
		cdf[i].fraction = (k + 1) / (double)N_SAMPLES;
	}
}

static void make_series(struct us_report_point *s, double base, double noise, int gap_at)
{
	int i;

	for (i = 0; i < N_STEPS; i++) {
		s[i].t = T0 + 10.0 * i;
		s[i].value = base * (1 + noise * normal());
		if (gap_at >= 0 && i >= gap_at && i < gap_at + 4)
			s[i].value = NAN;    /* the agent was away for 40 s */
	}
}

int main(int argc, char **argv)
{
	static struct us_report_cdf_point cdf_p[N_CDF], cdf_s[N_CDF];
	static struct us_report_point lat_p[N_STEPS], lat_s[N_STEPS], err_p[N_STEPS], err_s[N_STEPS];
	static const struct us_report_alert lat_alerts[] = {
		{ T0 + 420, 0.97, "shadow/production p99 ratio 1.31 above its band" },
		{ T0 + 610, 0.88, "shadow p99 spike <burst> & \"GC pause\"" },
	};
	static const struct us_report_kpi kpis[] = {
		{ "latency p50", "ms", 11.9, 13.2, 10.9, 8.7, 13.1, "High", 1, 2000, 2000 },
		{ "latency p90", "ms", 25.1, 28.0, 11.6, 8.2, 15.0, "High", 1, 2000, 2000 },
		{ "latency p99", "ms", 52.3, 58.9, 12.6, 6.1, 19.8, "High", 1, 2000, 2000 },
		{ "error rate", "%", 0.12, 0.14, 1.6, -0.4, 3.9, "Pass", 1, 2000, 2000 },
		{ "throughput vs mirrored", "%", 100, 99.6, -0.4, -1.1, 0.3, "Pass", 1, 90, 90 },
		{ "run-queue latency", "\xc2\xb5s", 41, 35, -14.6, -19.0, -10.1, "Low", 0, 5400, 5400 },
		{ "TCP retransmits", "/s", 0.3, 0.3, 0, -2.5, 2.5, "Pass", 0, 90, 90 },
		{ "I/O latency", "ms", NAN, NAN, NAN, NAN, NAN, "NoData", 0, 0, 0 },
	};
	struct us_report_timeline tls[3];
	struct us_report r;
	char err[256];
	FILE *out;

	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: %s OUT.html [DECISION]\n", argv[0]);
		return 2;
	}
	make_cdf(cdf_p, 12, 0.6);
	make_cdf(cdf_s, 12 * 1.12, 0.6);
	make_series(lat_p, 52, 0.05, 30);
	make_series(lat_s, 59, 0.05, -1);
	lat_s[42].value = 77;                /* the spike the alerts point at */
	make_series(err_p, 0.12, 0.3, -1);
	make_series(err_s, 0.14, 0.3, -1);

	memset(tls, 0, sizeof(tls));
	tls[0] = (struct us_report_timeline){ "latency p99", "ms", lat_p, N_STEPS, lat_s, N_STEPS,
					      lat_alerts, 2 };
	tls[1] = (struct us_report_timeline){ "error rate", "%", err_p, N_STEPS, err_s, N_STEPS,
					      NULL, 0 };
	tls[2] = (struct us_report_timeline){ "I/O latency", "ms", NULL, 0, NULL, 0, NULL, 0 };

	memset(&r, 0, sizeof(r));
	r.title = "understudy comparison";
	r.workload = "checkout <script>alert(1)</script> & \"cart\"";
	r.production_type = "m5.xlarge";
	r.shadow_type = "m7g.large";
	r.window_start = T0;
	r.window_end = T0 + 10.0 * N_STEPS;
	r.decision = argc == 3 ? argv[2] : "Fail";
	r.score = 61.5;
	r.confidence = 0.031;
	r.mode = "paired";
	r.kpis = kpis;
	r.n_kpis = sizeof(kpis) / sizeof(kpis[0]);
	r.cdf_production = cdf_p;
	r.n_cdf_production = N_CDF;
	r.cdf_shadow = cdf_s;
	r.n_cdf_shadow = N_CDF;
	r.timelines = tls;
	r.n_timelines = 3;

	if (!(out = fopen(argv[1], "w"))) {
		perror(argv[1]);
		return 1;
	}
	if (us_report_write_html(&r, out, err, sizeof(err)) < 0) {
		fprintf(stderr, "report_fixture: %s\n", err);
		fclose(out);
		return 1;
	}
	if (fclose(out) != 0) {
		perror(argv[1]);
		return 1;
	}
	return 0;
}
