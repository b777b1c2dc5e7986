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
#include <sys/types.h>

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
	double p99_ratio;              /* online: shadow p99 within production's × this */
	bool stored;                   /* --stored: the coordinator's plan (Plan/Make) */
	bool lead_given;               /* --lead-time; else online: provisioning + 300 s */
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
		"  --type T             candidate instance type, for catalog cores (online:\n"
		"                       default the most recent shadow's type)\n"
		"  --cpu-per-request S  assumed CPU-seconds per request with --type and no\n"
		"                       shadow data (a nominal figure: the plan warns)\n"
		"  --target-util U      share of the type's cores planned on (default 0.7)\n"
		"  --catalog F          instance catalog CSV (default: the installed one)\n"
		"  --horizon D|N        how far: a duration (48h, default) or N steps\n"
		"  --season auto|P[,P2]|none  seasonal periods in steps (default auto)\n"
		"  --quantile Q         size on the upper bound of the central Q interval:\n"
		"                       0.95 (default) = hi95, 0.8 = hi80, 0 = the mean\n"
		"  --headroom H         above the quantile, 20%% (default) or 0.2\n"
		"  --lead-time D        provisioning time + buffer (default 300s; online: the\n"
		"                       instances' measured provisioning time + 300s)\n"
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
		"       understudy plan WORKLOAD [--capacity R] [--type T] [--metric requests]\n"
		"                       [--history 14d] [--step 5m] [--p99-ratio 1.2] [OPTIONS]\n"
		"\n"
		"The same plan over WORKLOAD's stored history, fetched from the coordinator\n"
		"(Series/Query): --metric per second (a counter's increase, or a histogram's\n"
		"sample count, so request_latency counts requests), over --history at --step.\n"
		"Without --capacity the capacity per instance is measured on the workload's\n"
		"shadow (or candidate) instance of --type: the busiest minute with p99 within\n"
		"--p99-ratio of production's, and its cores x target-util / CPU-s per request;\n"
		"the smaller. Without shadow data: production's CPU-s per request on the\n"
		"type's catalog cores, with a warning. CPU, memory and network are forecast\n"
		"too, and each step is sized on the binding resource.\n"
		"\n"
		"       understudy plan WORKLOAD --stored\n"
		"\n"
		"Prints, as JSON, the plan the coordinator keeps for WORKLOAD (Plan/Make:\n"
		"recomputed every controller.plan_interval, or made now when none is stored).\n"
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
	const struct us_itype *cap_type;     /* online: the candidate type */
	/* online: the other resources by enum us_plan_res ([US_RES_REQUESTS]
	 * unused: that is s, fo and fc), and one instance's capacity of each */
	struct us_fc_series rs[US_RES_N];
	struct us_fc_output rfo[US_RES_N];
	struct us_fc_bands rfc[US_RES_N];
	double caps[US_RES_N];
	bool have[US_RES_N];
	struct us_plan_res_fc res[US_RES_N];   /* the plan's resources, requests first */
	size_t nres;
};

static void run_free(struct run *r)
{
	for (size_t k = 0; k < US_RES_N; k++) {
		us_fc_series_free(&r->rs[k]);
		us_fc_output_free(&r->rfo[k]);
	}
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

static void bands_of(const struct us_fc_series *s, const struct us_fc_output *fo,
		     struct us_fc_bands *fc)
{
	fc->step = s->step_us / 1000000;
	fc->start = s->t0_us / 1000000 + (int64_t)s->n * fc->step;
	fc->n = fo->h;
	fc->mean = fo->mean;
	fc->lo80 = fo->lo80;
	fc->hi80 = fo->hi80;
	fc->lo95 = fo->lo95;
	fc->hi95 = fo->hi95;
}

/* Fits one series and forecasts the horizon; what names it in messages. */
static int forecast_one(const struct plan_opts *po, const char *what, const struct us_fc_series *s,
			struct us_fc_output *fo, struct us_fc_bands *fc)
{
	struct us_fc_input in = { 0 };
	char err[1024];
	size_t h;

	if (s->step_us < 1000000) {
		fprintf(stderr, "understudy plan: %s: steps shorter than a second are not supported\n",
			what);
		return -1;
	}
	in.y = s->y;
	in.n = s->n;
	in.step_s = s->step_us / 1e6;
	in.nonnegative = 1;
	if (parse_season(po->season, &in) < 0 || horizon_steps(po->horizon, in.step_s, &h) < 0)
		return -1;
	if (us_forecast(&in, h, fo, err, sizeof(err)) < 0) {
		fprintf(stderr, "understudy plan: %s: %s\n", what, err);
		return -1;
	}
	bands_of(s, fo, fc);
	return 0;
}

/* Fits r->s (from a file or the coordinator) and forecasts the horizon. */
static int forecast(const struct plan_opts *po, struct run *r)
{
	if (forecast_one(po, po->input, &r->s, &r->fo, &r->fc) < 0)
		return -1;
	if (!(r->hist_t = malloc(r->s.n * sizeof(*r->hist_t)))) {
		fprintf(stderr, "understudy plan: out of memory\n");
		return -1;
	}
	for (size_t i = 0; i < r->s.n; i++)
		r->hist_t[i] = r->s.t0_us / 1000000 + (int64_t)i * r->fc.step;
	return 0;
}

/* The online resources' forecasts, following the business events the
 * requests got (mean_before: the requests' mean before them). */
static int forecast_resources(const struct plan_opts *po, struct run *r, const double *mean_before)
{
	char what[256];

	r->res[0] = (struct us_plan_res_fc){ US_RES_REQUESTS, &r->fc, po->p.capacity };
	r->nres = 1;
	for (int k = US_RES_CPU; k < US_RES_N; k++) {
		if (!r->have[k])
			continue;
		snprintf(what, sizeof(what), "%s %s", po->input, us_plan_res_name(k));
		if (forecast_one(po, what, &r->rs[k], &r->rfo[k], &r->rfc[k]) < 0)
			return -1;
		if (mean_before)
			us_plan_follow_events(mean_before, &r->fc, &r->rfc[k]);
		r->res[r->nres++] = (struct us_plan_res_fc){ k, &r->rfc[k], r->caps[k] };
	}
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
	{ "instances", US_COL_NUM }, { "binding", 0 }, { "request_at", 0 },
	{ "request_from", US_COL_NUM }, { "note", 0 }, { "t", US_COL_NUM | US_COL_MACHINE },
	{ "request_t", US_COL_NUM | US_COL_MACHINE },
};

static int add_step(struct us_table *t, const struct run *r, const struct us_plan_step *s,
		    int datetime)
{
	char when[CELL], mean[CELL], dem[CELL], n[CELL], req[CELL] = "", from[CELL] = "",
		note[CELL] = "", ts[CELL], rts[CELL] = "";
	const char *bind = us_plan_res_name(r->nres ? r->res[s->binding].res : US_RES_REQUESTS);
	const char *cells[] = { when, mean, dem, n, bind, req, from, note, ts, rts };

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
	for (size_t k = 1; k < r->nres; k++) {
		size_t bound = 0;

		for (size_t i = 0; i < r->plan.n; i++)
			bound += r->plan.steps[i].binding == k;
		fprintf(out, "resource %s: %.4g %s per instance, binding at %zu of %zu steps\n",
			us_plan_res_name(r->res[k].res), r->res[k].capacity,
			us_plan_res_unit(r->res[k].res), bound, r->plan.n);
	}
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
	double *mean_before = NULL;
	char err[1024];
	int rc = US_EXIT_USAGE;

	if (forecast(po, r) < 0)
		goto cleanup;
	if (!(mean_before = malloc(r->fc.n * sizeof(*mean_before)))) {
		fprintf(stderr, "understudy plan: out of memory\n");
		goto cleanup;
	}
	memcpy(mean_before, r->fc.mean, r->fc.n * sizeof(*mean_before));
	if (business(po, r, info) < 0 ||
	    forecast_resources(po, r, po->events ? mean_before : NULL) < 0)
		goto cleanup;
	if (us_plan_build_multi(r->res, r->nres, &po->p, &r->plan, err, sizeof(err)) < 0) {
		fprintf(stderr, "understudy plan: %s\n", err);
		goto cleanup;
	}
	rc = US_EXIT_FAIL;
	if (!(t = us_table_new(cols, sizeof(cols) / sizeof(cols[0])))) {
		fprintf(stderr, "understudy plan: out of memory\n");
		goto cleanup;
	}
	for (size_t i = 0; i < r->plan.n; i++)
		if (add_step(t, r, &r->plan.steps[i], 1) < 0) {
			fprintf(stderr, "understudy plan: out of memory\n");
			goto cleanup;
		}
	if (po->svg && write_svg(po, r) < 0)
		goto cleanup;
	summary(info, po, r);
	us_table_print(t, o->format, stdout);
	rc = US_EXIT_OK;
cleanup:
	free(mean_before);
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

/* ---- online: capacity measured on the shadow, per-resource demand -------- */

#define SHADOW_STEP "1m"

typedef Understudy__Api__SeriesQueryResponse series_t;
typedef Understudy__Api__Instance inst_t;

static void free_series(series_t *r)
{
	if (r)
		protobuf_c_message_free_unpacked(&r->base, NULL);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* The point of r starting at start_ns, or NULL; *j walks r in order. */
static const Understudy__Api__Point *point_at(const series_t *r, size_t *j, uint64_t start_ns)
{
	while (r && *j < r->n_points && r->points[*j]->start_ns < start_ns)
		(*j)++;
	return r && *j < r->n_points && r->points[*j]->start_ns == start_ns ? r->points[*j] : NULL;
}

/* One instance's minutes: requests from the `requests` counter (or the
 * latency histogram's count), CPU-seconds from cpu_usage (ns), p99 from
 * request_latency. *out malloc'd; returns the count, or -1. */
static ssize_t join_minutes(const series_t *req, const series_t *lat, const series_t *cpu,
			    struct us_cap_minute **out, uint64_t *first, uint64_t *last)
{
	const series_t *base = req && req->n_points ? req : lat;
	size_t n = base ? base->n_points : 0, jl = 0, jc = 0;
	struct us_cap_minute *m = calloc(n ? n : 1, sizeof(*m));

	if (!m)
		return -1;
	for (size_t i = 0; i < n; i++) {
		const Understudy__Api__Point *b = base->points[i];
		const Understudy__Api__Point *l = point_at(lat, &jl, b->start_ns);
		const Understudy__Api__Point *c = point_at(cpu, &jc, b->start_ns);

		m[i].requests = base == req ? (double)b->sum : (double)b->count;
		m[i].cpu_s = c ? (double)c->sum / 1e9 : NAN;
		m[i].p99 = l && l->count ? l->p99 : NAN;
		if (i == 0)
			*first = b->start_ns;
		*last = b->start_ns;
	}
	*out = m;
	return (ssize_t)n;
}

/* An instance's (or workload's) measured minutes over --history. */
static int fetch_minutes(const struct us_cli_opts *o, const struct plan_opts *po, const char *name,
			 struct us_cap_minute **m, size_t *n, uint64_t *first, uint64_t *last)
{
	const char *since = po->history ? po->history : "14d";
	series_t *req = NULL, *lat = NULL, *cpu = NULL;
	ssize_t k;
	int rc;

	*m = NULL;
	*n = 0;
	if ((rc = us_cli_series_points(o, "plan", name, "requests", since, SHADOW_STEP, &req)) ||
	    (rc = us_cli_series_points(o, "plan", name, "request_latency", since, SHADOW_STEP, &lat)) ||
	    (rc = us_cli_series_points(o, "plan", name, "cpu_usage", since, SHADOW_STEP, &cpu)))
		goto cleanup;
	rc = US_EXIT_FAIL;
	if ((k = join_minutes(req, lat, cpu, m, first, last)) < 0) {
		fprintf(stderr, "understudy plan: out of memory\n");
		goto cleanup;
	}
	*n = (size_t)k;
	rc = US_EXIT_OK;
cleanup:
	free_series(req);
	free_series(lat);
	free_series(cpu);
	return rc;
}

/* Production's typical p99 while the shadow ran: the median of its
 * per-minute p99 in [first, last] (all of --history when none falls there);
 * NAN when production has no latency at all. */
static int production_p99(const struct us_cli_opts *o, const struct plan_opts *po,
			  const char *prod, uint64_t first, uint64_t last, double *p99)
{
	series_t *lat = NULL;
	double *v = NULL;
	size_t k = 0;
	int rc = us_cli_series_points(o, "plan", prod, "request_latency",
				      po->history ? po->history : "14d", SHADOW_STEP, &lat);

	*p99 = NAN;
	if (rc != US_EXIT_OK)
		return rc;
	if (!(v = malloc((lat->n_points ? lat->n_points : 1) * sizeof(*v)))) {
		free_series(lat);
		return US_EXIT_FAIL;
	}
	for (int pass = 0; pass < 2 && k == 0; pass++)
		for (size_t i = 0; i < lat->n_points; i++) {
			const Understudy__Api__Point *p = lat->points[i];

			if (p->count && (pass || (p->start_ns >= first && p->start_ns <= last)))
				v[k++] = p->p99;
		}
	if (k) {
		qsort(v, k, sizeof(*v), cmp_double);
		*p99 = k % 2 ? v[k / 2] : (v[k / 2 - 1] + v[k / 2]) / 2;
	}
	free(v);
	free_series(lat);
	return US_EXIT_OK;
}

/* The most recent instance of the workload in one of the roles (and of
 * type, when given), or NULL. */
static const inst_t *latest(const Understudy__Api__InstancesListResponse *l, const char *roles,
			    const char *type)
{
	const inst_t *best = NULL;

	for (size_t i = 0; i < l->n_instances; i++) {
		const inst_t *in = l->instances[i];

		if (!strstr(roles, in->role) || (type && strcmp(in->type, type) != 0))
			continue;
		if (!best || in->created_ns >= best->created_ns)
			best = in;
	}
	return best;
}

struct online {
	const char *workload;
	const char *prod;           /* production's series name */
	Understudy__Api__InstancesListResponse *inst;
	const inst_t *production;   /* may be NULL */
	const inst_t *shadow;       /* of the candidate type; may be NULL */
	const char *type;
	double provision_s;         /* the longest measured provisioning; 0 = none */
};

static int find_type(const struct plan_opts *po, struct run *r, const char *type)
{
	char err[1024], path[US_CATALOG_PATH_MAX];
	const char *cat = po->catalog ? po->catalog : us_catalog_default_path(path, sizeof(path));

	if (us_catalog_load(cat, &r->catalog, err, sizeof(err)) < 0) {
		fprintf(stderr, "understudy plan: %s\n", err);
		return -1;
	}
	if (!(r->cap_type = us_catalog_find(&r->catalog, type))) {
		fprintf(stderr, "understudy plan: type %s is not in %s\n", type, cat);
		return -1;
	}
	return 0;
}

/* Fills po->cap from the shadow's minutes, or production's on catalog
 * cores when the shadow has none (the warning names the fallback). */
static int measured_capacity(const struct us_cli_opts *o, struct plan_opts *po, struct run *r,
			     struct online *on, FILE *info)
{
	struct us_cap_minute *m = NULL;
	uint64_t first = 0, last = 0;
	double prod_p99 = NAN;
	const char *why = "no shadow or candidate instance";
	size_t n = 0;
	int rc;

	if (on->shadow) {
		if ((rc = fetch_minutes(o, po, on->shadow->id, &m, &n, &first, &last)) != US_EXIT_OK)
			goto cleanup;
		po->cap.shadow_cpu_s_per_req = us_plan_cpu_per_request(m, n);
		if ((rc = production_p99(o, po, on->prod, first, last, &prod_p99)) != US_EXIT_OK)
			goto cleanup;
		if (!isnan(prod_p99))
			po->cap.shadow_rps = us_plan_sustained_rps(m, n, prod_p99 * po->p99_ratio);
		why = "its series have no minute with requests";
	}
	if (po->cap.shadow_rps > 0 || po->cap.shadow_cpu_s_per_req > 0) {
		fprintf(info, "capacity source: shadow instance %s (%s), %zu minutes: %.6g CPU-s per "
			"request", on->shadow->id, on->type, n, po->cap.shadow_cpu_s_per_req);
		if (isnan(prod_p99))
			fprintf(info, "; production has no latency to hold the shadow to\n");
		else
			fprintf(info, ", busiest minute within p99 %.4g ms (production %.4g ms x "
				"%.2f): %.6g req/s\n", prod_p99 * po->p99_ratio / 1e6,
				prod_p99 / 1e6, po->p99_ratio, po->cap.shadow_rps);
		rc = US_EXIT_OK;
		goto cleanup;
	}
	free(m);
	m = NULL;
	if ((rc = fetch_minutes(o, po, on->prod, &m, &n, &first, &last)) != US_EXIT_OK)
		goto cleanup;
	po->cap.nominal_cpu_s_per_req = us_plan_cpu_per_request(m, n);
	fprintf(stderr, "understudy plan: warning: no shadow data for %s on %s (%s): falling back "
		"to catalog figures (production's %.6g CPU-s per request on the catalog's cores)\n",
		on->workload, on->type, why, po->cap.nominal_cpu_s_per_req);
	fprintf(info, "capacity source: catalog (%s cores) x production's CPU-s per request\n",
		on->type);
	rc = US_EXIT_OK;
cleanup:
	free(m);
	return rc;
}

/* The workload's instances: production's series name and the shadow. */
static int find_instances(const struct us_cli_opts *o, const struct plan_opts *po,
			  struct online *on)
{
	Understudy__Api__InstancesListRequest req = UNDERSTUDY__API__INSTANCES_LIST_REQUEST__INIT;
	int rc;

	req.workload = (char *)on->workload;
	req.all = true;   /* a stopped shadow's measurements are still evidence */
	rc = us_cli_rpc(o, "plan", "/understudy.api.Instances/List", &req.base,
			&understudy__api__instances_list_response__descriptor,
			(ProtobufCMessage **)&on->inst);
	if (rc != US_EXIT_OK)
		return rc;
	on->production = latest(on->inst, "production", NULL);
	for (size_t i = 0; i < on->inst->n_instances; i++)
		if (on->inst->instances[i]->provision_s > on->provision_s)
			on->provision_s = on->inst->instances[i]->provision_s;
	on->type = po->type;
	if (!on->type) {
		const inst_t *s = latest(on->inst, "shadow candidate", NULL);

		on->type = s ? s->type : on->production ? on->production->type : NULL;
	}
	if (on->type)
		on->shadow = latest(on->inst, "shadow candidate", on->type);
	return US_EXIT_OK;
}

/* The requests history (r->s): the workload's series, or its production
 * instance's when the agent measures the instance under its id. */
static int fetch_demand(const struct us_cli_opts *o, const struct plan_opts *po, struct run *r,
			struct online *on)
{
	struct us_history_query q = { .workload = on->workload, .metric = po->metric,
				      .since = po->history, .step = po->step };
	int rc;

	on->prod = on->workload;
	if (on->production) {
		q.optional = true;
		if (us_cli_fetch_history(o, "plan", &q, &r->s) == US_EXIT_OK)
			return US_EXIT_OK;
		on->prod = q.workload = on->production->id;
		q.optional = false;
	}
	rc = us_cli_fetch_history(o, "plan", &q, &r->s);
	return rc;
}

/* CPU (cores), memory (GiB) and network (Gbit/s) of production, where
 * measured, trimmed to end with the requests. */
static int fetch_resources(const struct us_cli_opts *o, const struct plan_opts *po, struct run *r,
			   const struct online *on)
{
	static const struct { enum us_plan_res res; const char *metric; bool gauge; double scale; }
	res[] = {
		{ US_RES_CPU, "cpu_usage", false, 1e-9 },
		{ US_RES_MEMORY, "memory_current", true, 1.0 / (1 << 30) },
		{ US_RES_NETWORK, "network_bytes", false, 8e-9 },
	};
	struct us_fc_series *all[US_RES_N];
	size_t n = 0;

	all[n++] = &r->s;
	for (size_t k = 0; k < sizeof(res) / sizeof(res[0]); k++) {
		struct us_history_query q = { .workload = on->prod, .metric = res[k].metric,
					      .since = po->history, .step = po->step,
					      .gauge = res[k].gauge, .scale = res[k].scale,
					      .optional = true };
		int rc;

		if (!(r->caps[res[k].res] > 0))
			continue;   /* the type does not say: cannot bind */
		rc = us_cli_fetch_history(o, "plan", &q, &r->rs[res[k].res]);
		if (rc == US_EXIT_USAGE)
			continue;   /* not measured */
		if (rc != US_EXIT_OK)
			return rc;
		if (r->rs[res[k].res].step_us != r->s.step_us) {
			us_fc_series_free(&r->rs[res[k].res]);
			continue;
		}
		r->have[res[k].res] = true;
		all[n++] = &r->rs[res[k].res];
	}
	us_plan_align_ends(all, n);
	for (int k = US_RES_CPU; k < US_RES_N; k++)
		if (r->have[k] && r->rs[k].t0_us + (int64_t)r->rs[k].n * r->rs[k].step_us !=
				  r->s.t0_us + (int64_t)r->s.n * r->s.step_us)
			r->have[k] = false;   /* ends before the requests begin: no overlap */
	return US_EXIT_OK;
}

/* `plan WORKLOAD`: the same plan over the coordinator's stored history of
 * --metric (default requests, as a rate per second), sized on the
 * capacity measured on the shadow unless --capacity (or another explicit
 * figure) says it. */
static int run_online(const struct us_cli_opts *o, struct plan_opts *po, const char *workload)
{
	FILE *info = o->format == US_OUT_TABLE ? stdout : stderr;
	bool explicit = po->cap.given > 0 || po->cap.shadow_rps > 0 ||
			po->cap.shadow_cpu_s_per_req > 0 || po->cap.nominal_cpu_s_per_req > 0;
	struct online on = { .workload = workload };
	struct run r;
	int rc;

	memset(&r, 0, sizeof(r));
	po->input = workload; /* names the series in messages and the chart */
	if (explicit) {
		rc = US_EXIT_USAGE;
		if (capacity(po, &r) < 0)
			goto cleanup;
		on.prod = workload;
		rc = us_cli_fetch_history(o, "plan", &(struct us_history_query){
			.workload = workload, .metric = po->metric, .since = po->history,
			.step = po->step }, &r.s);
		if (rc == US_EXIT_OK)
			rc = run_plan(o, po, &r);
		goto cleanup;
	}
	if ((rc = find_instances(o, po, &on)) != US_EXIT_OK ||
	    (rc = fetch_demand(o, po, &r, &on)) != US_EXIT_OK)
		goto cleanup;
	rc = US_EXIT_USAGE;
	if (!on.type) {
		fprintf(stderr, "understudy plan: %s has no instance to take a type from: give "
			"--type T or --capacity R\n", workload);
		goto cleanup;
	}
	if (find_type(po, &r, on.type) < 0)
		goto cleanup;
	if ((rc = measured_capacity(o, po, &r, &on, info)) != US_EXIT_OK)
		goto cleanup;
	rc = US_EXIT_USAGE;
	po->cap.type = r.cap_type;
	if (us_plan_capacity(&po->cap, &r.cap) < 0) {
		fprintf(stderr, "understudy plan: %s: %s (give --capacity R)\n", workload, r.cap.why);
		goto cleanup;
	}
	po->p.capacity = r.cap.per_instance;
	if (!po->lead_given && on.provision_s > 0) {
		po->p.lead_s = (int64_t)ceil(on.provision_s) + US_PLAN_DEFAULT_LEAD_S;
		fprintf(info, "lead time: %.0fs measured provisioning + %ds\n", ceil(on.provision_s),
			US_PLAN_DEFAULT_LEAD_S);
	}
	us_plan_type_caps(r.cap_type, po->cap.target_util, r.caps);
	if ((rc = fetch_resources(o, po, &r, &on)) == US_EXIT_OK)
		rc = run_plan(o, po, &r);
cleanup:
	if (on.inst)
		protobuf_c_message_free_unpacked(&on.inst->base, NULL);
	run_free(&r);
	return rc;
}

/* `plan WORKLOAD --stored`: the coordinator's latest plan, as it stored it. */
static int run_stored(const struct us_cli_opts *o, const char *workload)
{
	Understudy__Api__PlanRequest req = UNDERSTUDY__API__PLAN_REQUEST__INIT;
	Understudy__Api__PlanResponse *r = NULL;
	char when[CELL];
	int rc;

	req.workload = (char *)workload;
	rc = us_cli_rpc(o, "plan", "/understudy.api.Plan/Make", &req.base,
			&understudy__api__plan_response__descriptor, (ProtobufCMessage **)&r);
	if (rc != US_EXIT_OK)
		return rc;
	us_tscsv_format_time((int64_t)(r->created_ns / 1000), 1, when, sizeof(when));
	fprintf(stderr, "plan of %s made %s (%s)\n", workload, when,
		r->stored ? "stored by the coordinator's planner" : "computed for this call");
	printf("%s\n", r->plan);
	protobuf_c_message_free_unpacked(&r->base, NULL);
	return US_EXIT_OK;
}

/* ---- options ------------------------------------------------------------- */

enum {
	O_CAPACITY = 0x200, O_SHADOW_RPS, O_SHADOW_CPU, O_TYPE, O_CPU, O_CATALOG, O_HORIZON,
	O_SEASON, O_QUANTILE, O_HEADROOM, O_LEAD, O_MIN, O_MAX, O_MAXBUF, O_INCMAX, O_CURRENT,
	O_EVENTS, O_SVG, O_DUP, O_METRIC, O_HISTORY, O_STEP, O_UTIL, O_P99, O_STORED,
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
		po->lead_given = true;
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
	case O_UTIL: return parse_double("--target-util", arg, 0.01, 1, &po->cap.target_util);
	case O_P99: return parse_double("--p99-ratio", arg, 1, 100, &po->p99_ratio);
	case O_STORED: po->stored = true; return 0;
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
		{ "target-util", required_argument, NULL, O_UTIL },
		{ "p99-ratio", required_argument, NULL, O_P99 },
		{ "stored", no_argument, NULL, O_STORED },
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
	po.cap.target_util = US_PLAN_DEFAULT_TARGET_UTIL;
	po.p99_ratio = US_PLAN_DEFAULT_P99_RATIO;
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
		return po.stored ? run_stored(&o, argv[optind]) : run_online(&o, &po, argv[optind]);
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
