/* `understudy forecast --input FILE.csv --horizon N`: forecasts a
 * `timestamp,value` series offline with the automatically chosen model
 * (lib/forecast.h, docs/forecast.md) and prints one row per future step:
 * timestamp, mean and the bounds of two prediction intervals. The chosen
 * model, its parameters and the validation scores go to stderr. Bad input
 * exits 2 naming file and line.
 *
 * Kept as small steps (options, load, forecast, print) so other options
 * (business events, an SVG chart) can hook in between them. */
#include "cli.h"

#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli_output.h"
#include "fc_events.h"
#include "forecast.h"
#include "cli_history.h"
#include "forecast_csv.h"
#include "svg_chart.h"
#include "tscsv.h"

#define CELL 64

struct fc_opts {
	const char *input;
	const char *workload;    /* online: the stored history (cli_history.h) */
	const char *metric, *history, *step;
	const char *horizon;
	const char *season;
	const char *events;      /* business forecast YAML (lib/fc_events.h) */
	const char *svg;         /* chart file (lib/svg_chart.h) */
	double level[2];
	unsigned csv_flags;
	size_t max_gap;
	unsigned families;
	int quiet;
};

static void forecast_usage(FILE *out)
{
	fprintf(out,
		"usage: understudy forecast --input FILE.csv --horizon N [--season auto|none|P[,P2]]\n"
		"                           [--level 80,95] [--model auto|snaive|ets|decomp|theta|mean|arima]\n"
		"                           [--allow-duplicates] [--allow-negative] [--max-gap N]\n"
		"                           [--events FILE.yaml] [--svg FILE]\n"
		"                           [-o table|json|csv]\n"
		"\n"
		"Forecasts a `timestamp,value` CSV (a header line, then \"YYYY-MM-DD HH:MM:SS,value\"\n"
		"or unix seconds) N steps ahead and prints timestamp, mean and the lower and upper\n"
		"bounds of two prediction intervals (CSV: timestamp,mean,lo80,hi80,lo95,hi95).\n"
		"The model is chosen automatically (docs/forecast.md); it is reported on stderr.\n"
		"  --input F           the series (required); the step is the median spacing\n"
		"  --horizon N         steps to forecast, or a duration (30m, 48h, 7d) (required)\n"
		"  --season S          auto (default), none, or periods in steps, e.g. 288,2016\n"
		"  --level A,B         interval levels in percent (default 80,95)\n"
		"  --model M           one family instead of the automatic choice\n"
		"  --allow-duplicates  average points with equal timestamps instead of refusing them\n"
		"  --allow-negative    accept negative values (forecasts may then go below 0)\n"
		"  --max-gap N         longest gap, in steps, filled by interpolation (default 12);\n"
		"                      a longer gap splits the series and the last part is used\n"
		"  --events F          business forecast and calendar YAML (docs/plan.md): growth,\n"
		"                      events (x1.8, +500) and holidays learned from the history\n"
		"  --svg F             also write an SVG chart of the history and the forecast\n"
		"  -q, --quiet         do not report the model on stderr\n"
		"  -o table|json|csv   output format\n"
		"Exit status: 0, 1 when no model fits, 2 for usage or input errors (FILE:LINE).\n"
		"\n"
		"       understudy forecast WORKLOAD --horizon 48h [--metric requests] [--history 14d]\n"
		"                           [--step 5m] [OPTIONS]\n"
		"\n"
		"The same forecast of WORKLOAD's stored history, fetched from the coordinator\n"
		"(Series/Query): --metric per second (a counter's increase, or a histogram's\n"
		"sample count), over --history at --step.\n"
		US_CLI_COMMON_HELP);
}

static int parse_levels(const char *s, double *level)
{
	char *end;

	level[0] = strtod(s, &end);
	if (*end != ',')
		return -1;
	level[1] = strtod(end + 1, &end);
	if (*end || !(level[0] > 0 && level[0] < 100) || !(level[1] > 0 && level[1] < 100))
		return -1;
	return 0;
}

static int parse_season(const char *s, struct us_fc_input *in)
{
	char *end;

	in->nseasons = 0;
	in->no_season = 0;
	if (strcmp(s, "auto") == 0)
		return 0;
	if (strcmp(s, "none") == 0) {
		in->no_season = 1;
		return 0;
	}
	for (;;) {
		unsigned long p = strtoul(s, &end, 10);

		if (end == s || p < 2 || p > 10000000 || in->nseasons == US_FC_MAX_SEASONS)
			return -1;
		in->seasons[in->nseasons++] = (unsigned)p;
		if (*end == '\0')
			return 0;
		if (*end != ',')
			return -1;
		s = end + 1;
	}
}

static unsigned parse_model(const char *s)
{
	static const struct { const char *name; unsigned bit; } m[] = {
		{ "auto", 0 }, { "snaive", US_FC_SNAIVE }, { "ets", US_FC_ETS },
		{ "decomp", US_FC_DECOMP }, { "theta", US_FC_THETA }, { "mean", US_FC_MEAN },
		{ "arima", US_FC_ARIMA },
	};

	for (size_t i = 0; i < sizeof(m) / sizeof(m[0]); i++)
		if (strcmp(s, m[i].name) == 0)
			return m[i].bit ? m[i].bit : US_FC_ALL;
	return 0;
}

/* "N" steps, or a duration with s/m/h/d converted with the series' step. */
static int parse_horizon(const char *s, int64_t step_us, size_t *h)
{
	char *end;
	double v = strtod(s, &end), mul = 0;

	if (end == s || !(v > 0))
		return -1;
	if (*end == '\0')
		mul = 0;
	else if (strcmp(end, "s") == 0)
		mul = 1;
	else if (strcmp(end, "m") == 0)
		mul = 60;
	else if (strcmp(end, "h") == 0)
		mul = 3600;
	else if (strcmp(end, "d") == 0)
		mul = 86400;
	else
		return -1;
	if (mul > 0)
		v = ceil(v * mul * 1e6 / (double)step_us);
	if (v < 1 || v > 1e7 || v != floor(v))
		return -1;
	*h = (size_t)v;
	return 0;
}

static void report(const struct us_fc_output *out, const struct us_fc_series *s)
{
	fprintf(stderr, "model: %s\nparams: %s\n", out->model, out->params);
	if (isfinite(out->aicc))
		fprintf(stderr, "aicc: %.2f\n", out->aicc);
	if (out->candidates[0])
		fprintf(stderr, "validation MASE: %s\n", out->candidates);
	fprintf(stderr, "intervals: %s; points: %zu (step %gs, %zu interpolated, %zu before a long gap dropped)\n",
		out->interval, s->n, (double)s->step_us / 1e6, s->filled, s->dropped);
}

static int print_rows(const struct fc_opts *fo, const struct us_cli_opts *o,
		      const struct us_fc_output *out, const struct us_fc_series *s, int nonneg)
{
	char names[4][16];
	struct us_col cols[6] = { { "timestamp", 0 }, { "mean", US_COL_NUM } };
	struct us_table *t;

	for (int k = 0; k < 2; k++) {
		snprintf(names[2 * k], sizeof(names[0]), "lo%g", fo->level[k]);
		snprintf(names[2 * k + 1], sizeof(names[0]), "hi%g", fo->level[k]);
		cols[2 + 2 * k] = (struct us_col){ names[2 * k], US_COL_NUM };
		cols[3 + 2 * k] = (struct us_col){ names[2 * k + 1], US_COL_NUM };
	}
	if (!(t = us_table_new(cols, 6)))
		return -1;
	for (size_t j = 0; j < out->h; j++) {
		char c[6][CELL];
		const char *cells[6] = { c[0], c[1], c[2], c[3], c[4], c[5] };
		double lo, hi;

		us_tscsv_format_time(s->t0_us + (int64_t)(s->n + j) * s->step_us, s->datetime,
				     c[0], CELL);
		snprintf(c[1], CELL, "%.6g", out->mean[j]);
		for (int k = 0; k < 2; k++) {
			us_fc_interval(out, j, fo->level[k], nonneg, &lo, &hi);
			snprintf(c[2 + 2 * k], CELL, "%.6g", lo);
			snprintf(c[3 + 2 * k], CELL, "%.6g", hi);
		}
		if (us_table_add(t, cells) < 0) {
			us_table_free(t);
			return -1;
		}
	}
	us_table_print(t, o->format, stdout);
	us_table_free(t);
	return 0;
}

/* The forecast's arrays as plain bands for fc_events and svg_chart. */
static struct us_fc_bands bands_of(struct us_fc_output *out, const struct us_fc_series *s)
{
	struct us_fc_bands b = {
		.start = (s->t0_us + (int64_t)s->n * s->step_us) / 1000000,
		.step = s->step_us / 1000000, .n = out->h, .mean = out->mean,
		.lo80 = out->lo80, .hi80 = out->hi80, .lo95 = out->lo95, .hi95 = out->hi95,
	};
	return b;
}

static int64_t *history_times(const struct us_fc_series *s)
{
	int64_t *t = malloc((s->n ? s->n : 1) * sizeof(*t));

	for (size_t i = 0; t && i < s->n; i++)
		t[i] = (s->t0_us + (int64_t)i * s->step_us) / 1000000;
	return t;
}

/* --events: calendar effects learned from the history, then growth,
 * calendar and events applied to the mean, the bands and sd (so that
 * print_rows' levels from sd agree). */
static int apply_events(const struct fc_opts *fo, struct us_fc_output *out,
			const struct us_fc_series *s)
{
	struct us_fc_events ev;
	struct us_fc_bands b = bands_of(out, s);
	int64_t *t = NULL;
	char err[1024];
	int rc = -1;

	if (us_fc_events_load(fo->events, &ev, err, sizeof(err)) < 0) {
		fprintf(stderr, "understudy forecast: %s\n", err);
		return -1;
	}
	if (b.step < 1 || !(t = history_times(s))) {
		fprintf(stderr, "understudy forecast: --events needs a step of at least 1 s\n");
		goto cleanup;
	}
	us_fc_learn_calendar(&ev, t, s->y, NULL, s->n);
	for (size_t k = 0; k < ev.ncal && !fo->quiet; k++)
		fprintf(stderr, "calendar %s: x%.3f%s\n", ev.cal[k].name,
			us_fc_calendar_multiplier(&ev.cal[k]),
			isnan(ev.cal[k].learned) ? " (not in the history)" : " (learned)");
	us_fc_apply_events_sd(&ev, &b, out->sd);
	rc = 0;
cleanup:
	free(t);
	us_fc_events_free(&ev);
	return rc;
}

static int write_chart(const struct fc_opts *fo, struct us_fc_output *out,
		       const struct us_fc_series *s)
{
	struct us_fc_bands b = bands_of(out, s);
	struct us_svg_chart c = { .title = out->model, .fc = &b };
	int64_t *t = history_times(s);
	FILE *f = fopen(fo->svg, "w");
	int rc = -1;

	if (f && t && b.step >= 1) {
		c.nhist = s->n < 3 * out->h ? s->n : 3 * out->h; /* the recent past */
		c.hist_t = t + (s->n - c.nhist);
		c.hist_v = s->y + (s->n - c.nhist);
		rc = us_svg_forecast_chart(f, &c);
	}
	if ((f && fclose(f) != 0) || !f || rc < 0) {
		fprintf(stderr, "understudy forecast: %s: cannot write the chart\n", fo->svg);
		rc = -1;
	}
	free(t);
	return rc;
}

static int run(const struct fc_opts *fo, const struct us_cli_opts *o)
{
	struct us_fc_input in = { .families = fo->families };
	struct us_fc_output out;
	struct us_fc_series s;
	char err[1024];
	size_t h;
	int rc = US_EXIT_USAGE;

	memset(&out, 0, sizeof(out));
	memset(&s, 0, sizeof(s));
	if (fo->workload) {
		struct us_history_query q = { .workload = fo->workload, .metric = fo->metric,
					      .since = fo->history, .step = fo->step };

		rc = us_cli_fetch_history(o, "forecast", &q, &s);
		if (rc != US_EXIT_OK)
			return rc;
		rc = US_EXIT_USAGE;
	} else if (us_fc_csv_read(fo->input, fo->csv_flags, fo->max_gap, &s, err,
				  sizeof(err)) < 0) {
		fprintf(stderr, "understudy forecast: %s\n", err);
		return US_EXIT_USAGE;
	}
	if (parse_horizon(fo->horizon, s.step_us, &h) < 0) {
		fprintf(stderr, "understudy forecast: --horizon: bad value '%s'\n", fo->horizon);
		goto cleanup;
	}
	if (fo->season && parse_season(fo->season, &in) < 0) {
		fprintf(stderr, "understudy forecast: --season: bad value '%s'\n", fo->season);
		goto cleanup;
	}
	in.y = s.y;
	in.n = s.n;
	in.step_s = (double)s.step_us / 1e6;
	in.nonnegative = !(fo->csv_flags & US_FCCSV_NEG_OK);
	if (us_forecast(&in, h, &out, err, sizeof(err)) < 0) {
		fprintf(stderr, "understudy forecast: %s: %s\n", fo->input, err);
		rc = US_EXIT_FAIL;
		goto cleanup;
	}
	if (fo->events && apply_events(fo, &out, &s) < 0)
		goto cleanup;
	if (fo->svg && write_chart(fo, &out, &s) < 0) {
		rc = US_EXIT_FAIL;
		goto cleanup;
	}
	if (!fo->quiet)
		report(&out, &s);
	rc = print_rows(fo, o, &out, &s, in.nonnegative) < 0 ? US_EXIT_FAIL : US_EXIT_OK;
	if (rc != US_EXIT_OK)
		fprintf(stderr, "understudy forecast: out of memory\n");
cleanup:
	us_fc_output_free(&out);
	us_fc_series_free(&s);
	return rc;
}

int us_cli_forecast(const struct us_cli_opts *global, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "input", required_argument, NULL, 'i' },
		{ "horizon", required_argument, NULL, 'H' },
		{ "season", required_argument, NULL, 's' },
		{ "level", required_argument, NULL, 'l' },
		{ "model", required_argument, NULL, 'm' },
		{ "allow-duplicates", no_argument, NULL, 'd' },
		{ "allow-negative", no_argument, NULL, 'n' },
		{ "max-gap", required_argument, NULL, 'g' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "events", required_argument, NULL, 'e' },
		{ "svg", required_argument, NULL, 'S' },
		{ "metric", required_argument, NULL, 'M' },
		{ "history", required_argument, NULL, 'Y' },
		{ "step", required_argument, NULL, 'T' },
		{ "help", no_argument, NULL, 'h' },
		US_CLI_COMMON_OPTIONS,
		{ 0 },
	};
	struct fc_opts fo = { .level = { 80, 95 } };
	struct us_cli_opts o = *global;
	char *end;
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "i:o:qh", opts, NULL)) != -1) {
		switch (c) {
		case 'i': fo.input = optarg; break;
		case 'H': fo.horizon = optarg; break;
		case 's': fo.season = optarg; break;
		case 'd': fo.csv_flags |= US_FCCSV_DUP_OK; break;
		case 'n': fo.csv_flags |= US_FCCSV_NEG_OK; break;
		case 'q': fo.quiet = 1; break;
		case 'e': fo.events = optarg; break;
		case 'S': fo.svg = optarg; break;
		case 'M': fo.metric = optarg; break;
		case 'Y': fo.history = optarg; break;
		case 'T': fo.step = optarg; break;
		case 'l':
			if (parse_levels(optarg, fo.level) < 0) {
				fprintf(stderr, "understudy forecast: --level: expected A,B in (0,100): %s\n", optarg);
				return US_EXIT_USAGE;
			}
			break;
		case 'm':
			if (!(fo.families = parse_model(optarg))) {
				fprintf(stderr, "understudy forecast: --model: unknown model '%s'\n", optarg);
				return US_EXIT_USAGE;
			}
			break;
		case 'g':
			fo.max_gap = strtoul(optarg, &end, 10);
			if (*end || fo.max_gap == 0) {
				fprintf(stderr, "understudy forecast: --max-gap: not a count: %s\n", optarg);
				return US_EXIT_USAGE;
			}
			break;
		case 'h': forecast_usage(stdout); return US_EXIT_OK;
		default:
			if (us_cli_common_opt(&o, c, optarg) == 1)
				break;
			forecast_usage(stderr);
			return US_EXIT_USAGE;
		}
	}
	if (!fo.input && optind == argc - 1) {
		fo.workload = argv[optind++];
		fo.input = fo.workload; /* names the series in messages and the chart */
	}
	if (!fo.input) {
		fprintf(stderr, "understudy forecast: --input FILE.csv or a WORKLOAD is required\n");
		forecast_usage(stderr);
		return US_EXIT_USAGE;
	}
	if (optind != argc || !fo.horizon) {
		fprintf(stderr, "understudy forecast: %s\n",
			fo.horizon ? "unexpected argument" : "--horizon N is required");
		return US_EXIT_USAGE;
	}
	return run(&fo, &o);
}
