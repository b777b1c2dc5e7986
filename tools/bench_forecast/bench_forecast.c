/* Accuracy and speed benchmark of lib/forecast (make bench-forecast,
 * BENCHMARKS.md). For every series given: rolling-origin evaluation at five
 * daily origins in the last five days (horizon and season 288 = one day of
 * 5-minute points), each model family alone and the automatic choice; MASE
 * scaled by the in-sample seasonal-naive (lag 288) error of the training
 * part, sMAPE, and 95% interval coverage. Then the same on seeded synthetic
 * daily + weekly + trend + noise series with the seasons detected, and the
 * time of fit + forecast with automatic selection on a 4,032-point series.
 *
 * usage: us-bench-forecast FILE.csv...   (prints markdown) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "forecast.h"
#include "forecast_csv.h"

#define H 288
#define NORIG 5
#define NMOD 8
#define NSYN 3
#define SYN_N (35 * 288)

static const struct { const char *name; unsigned fam; } models[NMOD] = {
	{ "snaive", US_FC_SNAIVE }, { "decomp+ets", US_FC_DECOMP }, { "theta", US_FC_THETA },
	{ "median", US_FC_MEAN }, { "ets", US_FC_ETS }, { "arima", US_FC_ARIMA }, { "comb", US_FC_COMB | US_FC_DECOMP | US_FC_THETA | US_FC_MEAN },
	{ "auto", 0 },
};

struct score {
	double mase, smape, cover;
	int n;
};

static double scale_of(const double *y, size_t n, unsigned m)
{
	double s = 0;

	for (size_t t = m; t < n; t++)
		s += fabs(y[t] - y[t - m]);
	return s / (double)(n - m);
}

/* One model on one series: mean over the origins. -1 when it cannot fit. */
static int eval(const double *y, size_t n, int mi, int fixed_season, struct score *sc)
{
	memset(sc, 0, sizeof(*sc));
	for (int k = NORIG; k >= 1; k--) {
		size_t o = n - (size_t)k * H;
		struct us_fc_input in = { .y = y, .n = o, .step_s = 300, .nonnegative = 1,
					  .families = models[mi].fam };
		struct us_fc_output out;
		double scale = scale_of(y, o, H), ae = 0, sm = 0, cov = 0;
		char err[256];

		if (fixed_season) {
			in.seasons[0] = H;
			in.nseasons = 1;
		}
		if (us_forecast(&in, H, &out, err, sizeof(err)) < 0) {
			us_fc_output_free(&out);
			return -1;
		}
		for (size_t j = 0; j < H; j++) {
			double a = y[o + j], f = out.mean[j], d = fabs(a) + fabs(f);

			ae += fabs(a - f);
			sm += d > 0 ? 200 * fabs(a - f) / d : 0;
			cov += a >= out.lo95[j] && a <= out.hi95[j];
		}
		if (getenv("BENCH_VERBOSE"))
			fprintf(stderr, "  %s origin -%d: MASE %.3f cover %.2f %s\n", models[mi].name, k,
				ae / H / scale, cov / H, out.model);
		sc->mase += ae / H / scale / NORIG;
		sc->smape += sm / H / NORIG;
		sc->cover += cov / H / NORIG;
		us_fc_output_free(&out);
	}
	sc->n = 1;
	return 0;
}

/* With BENCH_EXPORT_DIR set, the regular series (gaps filled, duplicates
 * averaged) as one value a line, so R scores exactly the same numbers. */
static void export(const char *name, const double *y, size_t n)
{
	const char *dir = getenv("BENCH_EXPORT_DIR");
	char path[4096];
	FILE *f;

	if (!dir)
		return;
	snprintf(path, sizeof(path), "%s/%s.txt", dir, name);
	if (!(f = fopen(path, "w")))
		return;
	for (size_t i = 0; i < n; i++)
		fprintf(f, "%.17g\n", y[i]);
	fclose(f);
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Seeded synthetic 5-minute series: daily and weekly cycles, a trend,
 * Gaussian noise (Box-Muller on a 64-bit LCG). */
static void synth(double *y, size_t n, unsigned seed)
{
	unsigned long long s = 0x9E3779B97F4A7C15ull * (seed + 1);
	double amp_d = 20 + 10 * seed, amp_w = 8 + 4 * seed, sd = 3 + 2 * seed;

	for (size_t t = 0; t < n; t++) {
		double u1, u2, z, day = (double)(t % 288) / 288, dow = (double)(t / 288 % 7);

		s = s * 6364136223846793005ull + 1442695040888963407ull;
		u1 = ((s >> 11) + 1.0) / 9007199254740993.0;
		s = s * 6364136223846793005ull + 1442695040888963407ull;
		u2 = (s >> 11) / 9007199254740992.0;
		z = sqrt(-2 * log(u1)) * cos(2 * M_PI * u2);
		y[t] = 100 + 0.004 * t + amp_d * sin(2 * M_PI * day) + (dow >= 5 ? -amp_w : amp_w / 2.5) + sd * z;
		if (y[t] < 0)
			y[t] = 0;
	}
}

struct table {
	double sum[NMOD][3];
	int cnt[NMOD];
	double worst_ratio;
};

static void row(const char *name, struct score *sc, int *ok, struct table *tb)
{
	printf("| %s |", name);
	for (int m = 0; m < NMOD; m++) {
		if (!ok[m]) {
			printf(" - |");
			continue;
		}
		printf(" %.3f |", sc[m].mase);
		for (int k = 0; k < 3; k++)
			tb->sum[m][k] += k == 0 ? sc[m].mase : k == 1 ? sc[m].smape : sc[m].cover;
		tb->cnt[m]++;
	}
	if (ok[0] && ok[NMOD - 1]) {
		double r = sc[NMOD - 1].mase / sc[0].mase;

		printf(" %.2f | %.1f%% |\n", r, 100 * sc[NMOD - 1].cover);
		tb->worst_ratio = r > tb->worst_ratio ? r : tb->worst_ratio;
	} else {
		printf(" - | - |\n");
	}
}

static void header(void)
{
	printf("| series |");
	for (int m = 0; m < NMOD; m++)
		printf(" %s |", models[m].name);
	printf(" auto/snaive | auto 95%% cover |\n|---|");
	for (int m = 0; m < NMOD + 2; m++)
		printf("---:|");
	printf("\n");
}

static void summary(const char *what, struct table *tb)
{
	printf("\n%s, mean over series:\n\n| model | MASE | sMAPE %% | 95%% coverage |\n|---|---:|---:|---:|\n", what);
	for (int m = 0; m < NMOD; m++)
		if (tb->cnt[m])
			printf("| %s | %.3f | %.2f | %.1f%% |\n", models[m].name, tb->sum[m][0] / tb->cnt[m],
			       tb->sum[m][1] / tb->cnt[m], 100 * tb->sum[m][2] / tb->cnt[m]);
	printf("\nworst auto / seasonal naive MASE ratio on one series: %.2f\n", tb->worst_ratio);
}

static void speed(const double *y, size_t n)
{
	double t[21];
	char err[256];

	for (int fixed = 1; fixed >= 0; fixed--) {
		for (int r = 0; r < 21; r++) {
			struct us_fc_input in = { .y = y, .n = n, .step_s = 300, .nonnegative = 1 };
			struct us_fc_output out;
			double t0 = now_ms();

			if (fixed) {
				in.seasons[0] = H;
				in.nseasons = 1;
			}
			us_forecast(&in, H, &out, err, sizeof(err));
			t[r] = now_ms() - t0;
			us_fc_output_free(&out);
		}
		for (int i = 0; i < 21; i++)      /* insertion sort for the median */
			for (int j = i; j > 0 && t[j] < t[j - 1]; j--) {
				double x = t[j];

				t[j] = t[j - 1];
				t[j - 1] = x;
			}
		printf("fit + forecast (h=288, automatic selection, %s) of %zu points: median %.1f ms, min %.1f ms (21 runs)\n",
		       fixed ? "season 288 given" : "seasons detected", n, t[10], t[0]);
	}
}

int main(int argc, char **argv)
{
	struct table nab = { 0 }, syn = { 0 };
	double *y4032 = NULL, *sy = malloc(SYN_N * sizeof(double));

	if (!sy)
		return 1;
	printf("### NAB series (season 288, horizon 288, 5 daily origins): MASE per model\n\n");
	header();
	for (int i = 1; i < argc; i++) {
		struct us_fc_series s;
		struct score sc[NMOD];
		int ok[NMOD];
		char err[512];
		const char *base = strrchr(argv[i], '/') ? strrchr(argv[i], '/') + 1 : argv[i];

		if (us_fc_csv_read(argv[i], US_FCCSV_DUP_OK, 0, &s, err, sizeof(err)) < 0) {
			fprintf(stderr, "%s\n", err);
			continue;
		}
		export(base, s.y, s.n);
		for (int m = 0; m < NMOD; m++)
			ok[m] = s.n > NORIG * H + 2 * H && eval(s.y, s.n, m, 1, &sc[m]) == 0;
		row(base, sc, ok, &nab);
		if (!y4032 && s.n >= 4032 && (y4032 = malloc(4032 * sizeof(double))))
			memcpy(y4032, s.y + s.n - 4032, 4032 * sizeof(double));
		us_fc_series_free(&s);
	}
	summary("NAB", &nab);
	printf("\n### Synthetic daily + weekly + trend + noise (35 days, seasons detected)\n\n");
	header();
	for (unsigned k = 0; k < NSYN; k++) {
		struct score sc[NMOD];
		int ok[NMOD];
		char name[32];

		synth(sy, SYN_N, k);
		for (int m = 0; m < NMOD; m++)
			ok[m] = eval(sy, SYN_N, m, 0, &sc[m]) == 0;
		snprintf(name, sizeof(name), "synthetic-%u", k);
		row(name, sc, ok, &syn);
	}
	summary("Synthetic", &syn);
	{
		unsigned s[2];
		size_t ns = us_fc_detect_seasons(sy, SYN_N, 300, s, 2);

		printf("\ndetected seasons on synthetic-%d: %zu:", NSYN - 1, ns);
		for (size_t i = 0; i < ns; i++)
			printf(" %u", s[i]);
		printf("\n\n");
	}
	if (y4032)
		speed(y4032, 4032);
	free(y4032);
	free(sy);
	return 0;
}
