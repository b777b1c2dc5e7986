/* `understudy plan --input FILE.csv --capacity R`: the capacity plan offline.
 * Forecasts a `timestamp,value` demand series (lib/forecast.h), applies the
 * business forecast and calendar (--events, lib/fc_events.h), sizes every
 * step (lib/plan.h) and prints steps with demand, instances and the
 * pre-allocation requests, optionally as an SVG chart (lib/svg_chart.h).
 * `understudy plan WORKLOAD` runs the same pipeline over the workload's
 * stored history, fetched from the coordinator (cli_history.h).
 * Bad input exits 2 naming file and line; see docs/plan.md. */
#include "cli.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "api.pb-c.h"
#include "catalog.h"
#include "cli_history.h"
#include "cli_output.h"
#include "fc_events.h"
#include "forecast.h"
#include "forecast_csv.h"
#include "plan.h"
#include "svg_chart.h"
#include "tscsv.h"

#define CELL 64
#define DEFAULT_HORIZON_S (48 * 3600)

struct plan_opts {
	const char *input, *events, *svg, *type, *catalog, *season;
	const char *horizon;           /* "48h" (a duration) or "576" (steps) */
	const char *metric, *history, *step;   /* online: the stored series */
	unsigned csv_flags;
	struct us_plan_params p;
	struct us_capacity_in cap;
};

static void plan_usage(FILE *out)
{
	fprintf(out,
		"usage: understudy plan --input FILE.csv --capacity R [--horizon 48h|N]\n"
		"                       [--quantile 0.95] [--headroom 20%%] [--lead-time 300s]\n"
		"                       [--events FILE.yaml] [--svg FILE] [-o table|json|csv]\n"
		"\n"
		"Forecasts a `timestamp,value` demand CSV (e.g. requests per second), applies\n"
		"the business forecast and calendar of --events, and prints per step the mean,\n"
		"the demand at the quantile, the instances required and, where the requirement\n"
		"rises, a pre-allocation request issued lead-time ahead. The plan never scales\n"
		"in: falling demand is left to the reactive policy. See docs/plan.md.\n"
		"  --input F            the demand history (required)\n"
		"  --capacity R         demand one instance serves, in the CSV's unit\n"
		"  --shadow-rps R       or: the rate the shadow sustained within tolerance\n"
		"  --shadow-cpu-per-request S  or: CPU-seconds per request the shadow measured\n"
		"                       (with --type: capacity = cores / S)\n"
		"  --type T             candidate instance type, for catalog cores\n"
		"  --cpu-per-request S  assumed CPU-seconds per request with --type and no\n"
		"                       shadow data (a nominal figure: the plan warns)\n"
		"  --catalog F          instance catalog CSV (default: the installed one)\n"
		"  --horizon D|N        how far: a duration (48h, default) or N steps\n"
		"  --season auto|P[,P2]|none  seasonal periods in steps (default auto)\n"
		"  --quantile Q         size on the upper bound of the central Q interval:\n"
		"                       0.95 (default) = hi95, 0.8 = hi80, 0 = the mean\n"
		"  --headroom H         above the quantile, 20%% (default) or 0.2\n"
		"  --lead-time D        provisioning time + buffer (default 300s)\n"
		"  --min-instances N    floor (default 1)\n"
		"  --max-instances N    ceiling, honoured unless --increase-max (default none)\n"
		"  --max-buffer B       suggested max capacity = peak × (1 + B) (default 10%%)\n"
		"  --increase-max       raise --max-instances to the buffered peak instead\n"
		"  --current N          instances running now (default: assume step 0 is met)\n"
		"  --events F           business forecast and calendar YAML (docs/plan.md)\n"
		"  --svg F              also write a chart: history, forecast, bands, plan\n"
		"  --allow-duplicates   average points with equal timestamps\n"
		"  -o table|json|csv    output format\n"
		"\n"
		"       understudy plan WORKLOAD --capacity R [--metric requests] [--history 14d]\n"
		"                       [--step 5m] [OPTIONS]\n"
		"\n"
		"The same plan over WORKLOAD's stored history, fetched from the coordinator\n"
		"(Series/Query): --metric per second (a counter's increase, or a histogram's\n"
		"sample count, so request_latency counts requests), over --history at --step.\n"
		US_CLI_COMMON_HELP);
}

/* ---- option values ------------------------------------------------------- */

static int bad(const char *opt, const char *what, const char *arg)
{
	fprintf(stderr, "understudy plan: %s: %s: '%s'\n", opt, what, arg);
	return -1;
}

static int parse_double(const char *opt, const char *arg, double lo, double hi, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(arg, &end);
	if (end == arg || *end || errno || !isfinite(v) || v < lo || v > hi)
		return bad(opt, "not a number in range", arg);
	*out = v;
	return 0;
}

static int parse_uint(const char *opt, const char *arg, unsigned *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(arg, &end, 10);
	if (!isdigit((unsigned char)arg[0]) || *end || errno || v > 1000000000ul)
		return bad(opt, "not a count", arg);
	*out = (unsigned)v;
	return 0;
}

/* "20%" is 0.20; a bare number up to 1 is a fraction, above 1 a percentage. */
static int parse_pct(const char *opt, const char *arg, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(arg, &end);
	if (end == arg || errno || !isfinite(v) || v < 0 || (*end && strcmp(end, "%") != 0))
		return bad(opt, "expected a percentage such as 20% or 0.2", arg);
	*out = *end || v > 1 ? v / 100 : v;
	return 0;
}

/* A duration in seconds: a number with s, m, h, d or w (plain = seconds). */
static int parse_duration(const char *arg, double *secs)
{
	static const struct { char unit; double s; } units[] = {
		{ 's', 1 }, { 'm', 60 }, { 'h', 3600 }, { 'd', 86400 }, { 'w', 604800 },
	};
	char *end;
	double v;

	errno = 0;
	v = strtod(arg, &end);
	if (end == arg || errno || !isfinite(v) || v < 0)
		return -1;
	if (!*end) {
		*secs = v;
		return 0;
	}
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
		if (end[0] == units[i].unit && !end[1]) {
			*secs = v * units[i].s;
			return 0;
		}
	return -1;
}

/* Steps for --horizon: N steps, or a duration divided by the step. */
static int horizon_steps(const char *arg, double step_s, size_t *h)
{
	double secs;
	char *end;
	unsigned long n;

	if (!arg) {
		*h = (size_t)ceil(DEFAULT_HORIZON_S / step_s - 1e-9);
		return 0;
	}
	errno = 0;
	n = strtoul(arg, &end, 10);
	if (isdigit((unsigned char)arg[0]) && !*end && !errno && n > 0 && n <= 1000000) {
		*h = n;
		return 0;
	}
	if (parse_duration(arg, &secs) < 0 || secs < step_s || secs / step_s > 1000000)
		return bad("--horizon", "expected N steps or a duration such as 48h, at least one step",
			   arg);
	*h = (size_t)ceil(secs / step_s - 1e-9);
	return 0;
}

static int parse_season(const char *arg, struct us_fc_input *in)
{
	char buf[64], *tok, *save = NULL;

	if (!arg || strcmp(arg, "auto") == 0)
		return 0;
	if (strcmp(arg, "none") == 0) {
		in->no_season = 1;
		return 0;
	}
	snprintf(buf, sizeof(buf), "%s", arg);
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		unsigned p;

		if (in->nseasons == US_FC_MAX_SEASONS || parse_uint("--season", tok, &p) < 0 || p < 2)
			return bad("--season", "expected auto, none or up to two periods >= 2", arg);
		if (in->nseasons && p <= in->seasons[in->nseasons - 1])
			return bad("--season", "periods must ascend", arg);
		in->seasons[in->nseasons++] = p;
	}
	return in->nseasons ? 0 : bad("--season", "expected auto, none or periods", arg);
}

/* ---- the offline run ----------------------------------------------------- */

struct run {
	struct us_fc_series s;
	struct us_fc_output fo;
	struct us_fc_events ev;
	struct us_fc_bands fc;
	struct us_plan plan;
	struct us_capacity cap;
	struct us_catalog catalog;
	int64_t *hist_t;
};

static void run_free(struct run *r)
{
	us_fc_series_free(&r->s);
	us_fc_output_free(&r->fo);
	us_fc_events_free(&r->ev);
	us_plan_free(&r->plan);
	us_catalog_free(&r->catalog);
	free(r->hist_t);
}

static int capacity(struct plan_opts *po, struct run *r)
{
	char err[1024], path[US_CATALOG_PATH_MAX];

	if (po->type) {
		const char *cat = po->catalog ? po->catalog : us_catalog_default_path(path, sizeof(path));

		if (us_catalog_load(cat, &r->catalog, err, sizeof(err)) < 0) {
			fprintf(stderr, "understudy plan: %s\n", err);
			return -1;
		}
		if (!(po->cap.type = us_catalog_find(&r->catalog, po->type))) {
			fprintf(stderr, "understudy plan: --type: %s is not in %s\n", po->type, cat);
			return -1;
		}
	}
	if (us_plan_capacity(&po->cap, &r->cap) < 0) {
		fprintf(stderr, "understudy plan: %s (--capacity R)\n", r->cap.why);
		return -1;
	}
	if (r->cap.warning)
		fprintf(stderr, "understudy plan: warning: %s\n", r->cap.why);
	po->p.capacity = r->cap.per_instance;
	return 0;
}

static int load_input(const struct plan_opts *po, struct run *r)
{
	char err[1024];

	if (us_fc_csv_read(po->input, po->csv_flags, 0, &r->s, err, sizeof(err)) < 0) {
		fprintf(stderr, "understudy plan: %s\n", err);
		return -1;
	}
	return 0;
}

/* Fits r->s (from a file or the coordinator) and forecasts the horizon. */
static int forecast(const struct plan_opts *po, struct run *r)
{
	struct us_fc_input in = { 0 };
	char err[1024];
	size_t h;

	if (r->s.step_us < 1000000) {
		fprintf(stderr, "understudy plan: %s: steps shorter than a second are not supported\n",
			po->input);
		return -1;
	}
	in.y = r->s.y;
	in.n = r->s.n;
	in.step_s = r->s.step_us / 1e6;
	in.nonnegative = 1;
	if (parse_season(po->season, &in) < 0 || horizon_steps(po->horizon, in.step_s, &h) < 0)
		return -1;
	if (us_forecast(&in, h, &r->fo, err, sizeof(err)) < 0) {
		fprintf(stderr, "understudy plan: %s: %s\n", po->input, err);
		return -1;
	}
	r->fc.step = r->s.step_us / 1000000;
	r->fc.start = r->s.t0_us / 1000000 + (int64_t)r->s.n * r->fc.step;
	r->fc.n = r->fo.h;
	r->fc.mean = r->fo.mean;
	r->fc.lo80 = r->fo.lo80;
	r->fc.hi80 = r->fo.hi80;
	r->fc.lo95 = r->fo.lo95;
	r->fc.hi95 = r->fo.hi95;
	if (!(r->hist_t = malloc(r->s.n * sizeof(*r->hist_t)))) {
		fprintf(stderr, "understudy plan: out of memory\n");
		return -1;
	}
	for (size_t i = 0; i < r->s.n; i++)
		r->hist_t[i] = r->s.t0_us / 1000000 + (int64_t)i * r->fc.step;
	return 0;
}

/* Calendar effects learned from the history, then every effect applied. */
static int business(const struct plan_opts *po, struct run *r, FILE *info)
{
	char err[1024];

	if (!po->events)
		return 0;
	if (us_fc_events_load(po->events, &r->ev, err, sizeof(err)) < 0) {
		fprintf(stderr, "understudy plan: %s\n", err);
		return -1;
	}
	us_fc_learn_calendar(&r->ev, r->hist_t, r->s.y, NULL, r->s.n);
	for (size_t k = 0; k < r->ev.ncal; k++) {
		const struct us_fc_calendar *c = &r->ev.cal[k];

		if (!isnan(c->learned))
			fprintf(info, "calendar %s: x%.3f learned from %zu past date(s)\n", c->name,
				c->learned, c->learned_days);
		else
			fprintf(info, "calendar %s: x%.3f (%s)\n", c->name,
				us_fc_calendar_multiplier(c),
				isnan(c->prior) ? "no past date in the history: no effect"
						: "no past date in the history: the file's multiplier");
	}
	us_fc_apply_events(&r->ev, &r->fc);
	return 0;
}

static int write_svg(const struct plan_opts *po, struct run *r)
{
	struct us_svg_chart c = { 0 };
	FILE *f = fopen(po->svg, "w");
	char title[256];
	int rc;

	if (!f) {
		fprintf(stderr, "understudy plan: %s: %s\n", po->svg, strerror(errno));
		return -1;
	}
	snprintf(title, sizeof(title), "%s: %s, plan at q=%.2f, %.6g per instance", po->input,
		 r->fo.model, po->p.quantile, po->p.capacity);
	c.title = title;
	/* the recent past only: enough to see the pattern, not so much that
	 * the forecast becomes a sliver at the right edge */
	c.nhist = r->s.n < 3 * r->fc.n ? r->s.n : 3 * r->fc.n;
	c.hist_t = r->hist_t + (r->s.n - c.nhist);
	c.hist_v = r->s.y + (r->s.n - c.nhist);
	c.fc = &r->fc;
	c.plan = &r->plan;
	rc = us_svg_forecast_chart(f, &c);
	if (fclose(f) != 0 || rc < 0) {
		fprintf(stderr, "understudy plan: %s: write failed\n", po->svg);
		return -1;
	}
	return 0;
}

static const struct us_col cols[] = {
	{ "time", 0 }, { "mean", US_COL_NUM }, { "demand", US_COL_NUM },
	{ "instances", US_COL_NUM }, { "request_at", 0 }, { "request_from", US_COL_NUM },
	{ "note", 0 }, { "t", US_COL_NUM | US_COL_MACHINE },
	{ "request_t", US_COL_NUM | US_COL_MACHINE },
};

static int add_step(struct us_table *t, const struct us_plan_step *s, int datetime)
{
	char when[CELL], mean[CELL], dem[CELL], n[CELL], req[CELL] = "", from[CELL] = "",
		note[CELL] = "", ts[CELL], rts[CELL] = "";
	const char *cells[] = { when, mean, dem, n, req, from, note, ts, rts };

	us_tscsv_format_time(s->t * 1000000, datetime, when, sizeof(when));
	snprintf(mean, sizeof(mean), "%.4g", s->mean);
	snprintf(dem, sizeof(dem), "%.4g", s->demand);
	snprintf(n, sizeof(n), "%u", s->required);
	snprintf(ts, sizeof(ts), "%lld", (long long)s->t);
	if (s->request) {
		us_tscsv_format_time(s->request_at * 1000000, datetime, req, sizeof(req));
		snprintf(from, sizeof(from), "%u", s->from);
		snprintf(rts, sizeof(rts), "%lld", (long long)s->request_at);
	}
	snprintf(note, sizeof(note), "%s%s%s", s->request ? (s->late ? "LATE: request now" : "scale out") : "",
		 s->request && s->capped ? ", " : "", s->capped ? "capped at max" : "");
	return us_table_add(t, cells);
}

static void summary(FILE *out, const struct plan_opts *po, const struct run *r)
{
	fprintf(out, "model: %s (%s intervals)\n", r->fo.model, r->fo.interval);
	fprintf(out, "capacity: %s [%s]\n", r->cap.why, us_cap_source_name(r->cap.source));
	fprintf(out, "sizing: demand at q=%.2f x (1 + %.0f%% headroom); lead time %llds\n",
		po->p.quantile, po->p.headroom * 100, (long long)po->p.lead_s);
	fprintf(out, "plan: %zu steps, peak %u instances, max capacity %u (peak + %.0f%%), "
		"%zu pre-allocation request(s)%s; scale-in is left to the reactive policy\n",
		r->plan.n, r->plan.peak, r->plan.max_capacity, po->p.max_buffer * 100,
		r->plan.nrequests, r->plan.ncapped ? ", some steps capped at --max-instances" : "");
}

/* The plan of a loaded history (r->s): forecast, business effects, sizing,
 * output. Shared by the offline and the online verb. */
static int run_plan(const struct us_cli_opts *o, struct plan_opts *po, struct run *r)
{
	FILE *info = o->format == US_OUT_TABLE ? stdout : stderr;
	struct us_table *t = NULL;
	char err[1024];
	int rc = US_EXIT_USAGE;

	if (forecast(po, r) < 0 || business(po, r, info) < 0)
		goto cleanup;
	if (us_plan_build(&r->fc, &po->p, &r->plan, err, sizeof(err)) < 0) {
		fprintf(stderr, "understudy plan: %s\n", err);
		goto cleanup;
	}
	rc = US_EXIT_FAIL;
	if (!(t = us_table_new(cols, sizeof(cols) / sizeof(cols[0])))) {
		fprintf(stderr, "understudy plan: out of memory\n");
		goto cleanup;
	}
	for (size_t i = 0; i < r->plan.n; i++)
		if (add_step(t, &r->plan.steps[i], 1) < 0) {
			fprintf(stderr, "understudy plan: out of memory\n");
			goto cleanup;
		}
	if (po->svg && write_svg(po, r) < 0)
		goto cleanup;
	summary(info, po, r);
	us_table_print(t, o->format, stdout);
	rc = US_EXIT_OK;
cleanup:
	us_table_free(t);
	return rc;
}

static int run_offline(const struct us_cli_opts *o, struct plan_opts *po)
{
	struct run r;
	int rc = US_EXIT_USAGE;

	memset(&r, 0, sizeof(r));
	if (capacity(po, &r) == 0 && load_input(po, &r) == 0)
		rc = run_plan(o, po, &r);
	run_free(&r);
	return rc;
}

/* `plan WORKLOAD`: the same plan over the coordinator's stored history of
 * --metric (default requests, as a rate per second). */
static int run_online(const struct us_cli_opts *o, struct plan_opts *po, const char *workload)
{
	struct us_history_query q = { .workload = workload, .metric = po->metric,
				      .since = po->history, .step = po->step };
	struct run r;
	int rc;

	memset(&r, 0, sizeof(r));
	po->input = workload; /* names the series in messages and the chart */
	if (capacity(po, &r) < 0) {
		rc = US_EXIT_USAGE;
		goto cleanup;
	}
	rc = us_cli_fetch_history(o, "plan", &q, &r.s);
	if (rc == US_EXIT_OK)
		rc = run_plan(o, po, &r);
cleanup:
	run_free(&r);
	return rc;
}

/* ---- options ------------------------------------------------------------- */

enum {
	O_CAPACITY = 0x200, O_SHADOW_RPS, O_SHADOW_CPU, O_TYPE, O_CPU, O_CATALOG, O_HORIZON,
	O_SEASON, O_QUANTILE, O_HEADROOM, O_LEAD, O_MIN, O_MAX, O_MAXBUF, O_INCMAX, O_CURRENT,
	O_EVENTS, O_SVG, O_DUP, O_METRIC, O_HISTORY, O_STEP,
};

static int plan_opt(struct plan_opts *po, int c, const char *arg)
{
	double secs;

	switch (c) {
	case 'i': po->input = arg; return 0;
	case O_CAPACITY: return parse_double("--capacity", arg, 1e-12, 1e15, &po->cap.given);
	case O_SHADOW_RPS: return parse_double("--shadow-rps", arg, 1e-12, 1e15, &po->cap.shadow_rps);
	case O_SHADOW_CPU:
		return parse_double("--shadow-cpu-per-request", arg, 1e-12, 1e6,
				    &po->cap.shadow_cpu_s_per_req);
	case O_CPU:
		return parse_double("--cpu-per-request", arg, 1e-12, 1e6, &po->cap.nominal_cpu_s_per_req);
	case O_TYPE: po->type = arg; return 0;
	case O_CATALOG: po->catalog = arg; return 0;
	case O_HORIZON: po->horizon = arg; return 0;
	case O_SEASON: po->season = arg; return 0;
	case O_QUANTILE: return parse_double("--quantile", arg, 0, 0.9999, &po->p.quantile);
	case O_HEADROOM: return parse_pct("--headroom", arg, &po->p.headroom);
	case O_MAXBUF: return parse_pct("--max-buffer", arg, &po->p.max_buffer);
	case O_LEAD:
		if (parse_duration(arg, &secs) < 0 || secs > 7 * 86400)
			return bad("--lead-time", "expected a duration such as 300s or 5m", arg);
		po->p.lead_s = (int64_t)ceil(secs);
		return 0;
	case O_MIN: return parse_uint("--min-instances", arg, &po->p.min_instances);
	case O_MAX: return parse_uint("--max-instances", arg, &po->p.max_instances);
	case O_INCMAX: po->p.increase_max = true; return 0;
	case O_CURRENT: return parse_uint("--current", arg, &po->p.current);
	case O_EVENTS: po->events = arg; return 0;
	case O_SVG: po->svg = arg; return 0;
	case O_DUP: po->csv_flags |= US_FCCSV_DUP_OK; return 0;
	case O_METRIC: po->metric = arg; return 0;
	case O_HISTORY: po->history = arg; return 0;
	case O_STEP: po->step = arg; return 0;
	}
	return 1;
}

int us_cli_plan(const struct us_cli_opts *global, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "input", required_argument, NULL, 'i' },
		{ "capacity", required_argument, NULL, O_CAPACITY },
		{ "shadow-rps", required_argument, NULL, O_SHADOW_RPS },
		{ "shadow-cpu-per-request", required_argument, NULL, O_SHADOW_CPU },
		{ "type", required_argument, NULL, O_TYPE },
		{ "cpu-per-request", required_argument, NULL, O_CPU },
		{ "catalog", required_argument, NULL, O_CATALOG },
		{ "horizon", required_argument, NULL, O_HORIZON },
		{ "season", required_argument, NULL, O_SEASON },
		{ "quantile", required_argument, NULL, O_QUANTILE },
		{ "headroom", required_argument, NULL, O_HEADROOM },
		{ "lead-time", required_argument, NULL, O_LEAD },
		{ "min-instances", required_argument, NULL, O_MIN },
		{ "max-instances", required_argument, NULL, O_MAX },
		{ "max-buffer", required_argument, NULL, O_MAXBUF },
		{ "increase-max", no_argument, NULL, O_INCMAX },
		{ "current", required_argument, NULL, O_CURRENT },
		{ "events", required_argument, NULL, O_EVENTS },
		{ "metric", required_argument, NULL, O_METRIC },
		{ "history", required_argument, NULL, O_HISTORY },
		{ "step", required_argument, NULL, O_STEP },
		{ "svg", required_argument, NULL, O_SVG },
		{ "allow-duplicates", no_argument, NULL, O_DUP },
		{ "help", no_argument, NULL, 'h' },
		US_CLI_COMMON_OPTIONS,
		{ 0 },
	};
	struct us_cli_opts o = *global;
	struct plan_opts po = { 0 };
	int c, r;

	us_plan_defaults(&po.p);
	optind = 1;
	while ((c = getopt_long(argc, argv, "i:o:h", opts, NULL)) != -1) {
		if (c == 'h') {
			plan_usage(stdout);
			return US_EXIT_OK;
		}
		if ((r = plan_opt(&po, c, optarg)) == 0)
			continue;
		if (r < 0)
			return US_EXIT_USAGE;
		if (us_cli_common_opt(&o, c, optarg) == 1)
			continue;
		plan_usage(stderr);
		return US_EXIT_USAGE;
	}
	if (!po.input && optind == argc - 1)
		return run_online(&o, &po, argv[optind]);
	if (!po.input) {
		fprintf(stderr, "understudy plan: --input FILE.csv or a WORKLOAD is required\n");
		plan_usage(stderr);
		return US_EXIT_USAGE;
	}
	if (optind != argc) {
		fprintf(stderr, "understudy plan: unexpected argument '%s'\n", argv[optind]);
		return US_EXIT_USAGE;
	}
	return run_offline(&o, &po);
}
