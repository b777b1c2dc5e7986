/* `understudy compare`: the production/shadow verdict. Online
 * (`compare WORKLOAD`) it asks the coordinator (Compare.Run), which reads
 * the stored request samples and kernel series; offline it reads CSV files
 * of latencies (lib/csv_samples.h) and judges them here with the same code
 * (lib/verdict.c), so both print the same table. Exit status: 0 Pass,
 * 1 Fail, 2 usage or input error (naming file and line), 3 Inconclusive or
 * Marginal (docs/compare.md says why Marginal is 3). */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

#include "api.pb-c.h"
#include "cli_output.h"
#include "report_html.h"
#include "csv_samples.h"
#include "verdict.h"

#define CELL 64
#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

struct compare_args {
	const char *workload, *since;
	const char *prod, *shadow, *pairs;        /* offline files */
	const char *cal_prod, *cal_shadow;        /* A/A calibration files */
	bool paired;
	struct us_policy pol;
	bool tol_set;
	const char *html;                         /* --html FILE */
};

static void compare_usage(FILE *out)
{
	fprintf(out,
		"usage: understudy compare WORKLOAD [--since 1h] [OPTIONS]\n"
		"       understudy compare --production F --shadow F [--paired] [OPTIONS]\n"
		"       understudy compare --pairs F [OPTIONS]\n"
		"\n"
		"Says whether the shadow performs like production: each KPI (latency\n"
		"shift, p50, p90, p99, error rate, throughput, kernel figures) with an\n"
		"estimate, a confidence interval and a class (Pass, High, Low, NoData),\n"
		"then a score 0-100, a decision (Pass >= 95, Marginal >= 75, Fail) and the\n"
		"confidence that every critical KPI (p99 latency, error rate) is within\n"
		"tolerance. See docs/compare.md. Exit 0 Pass, 1 Fail, 3 Marginal or\n"
		"Inconclusive (fewer samples than --min-samples a side), 2 bad input.\n"
		"\n"
		"Online, through the coordinator:\n"
		"  --since T          window start: a duration ago (1h, 15m) or unix ns (default 1h)\n"
		"  --window T         the same\n"
		"  --shadow W         the shadow's own workload (its instance id): both sides\n"
		"                     as their servers measured them, unpaired (default: the\n"
		"                     agent's replay of WORKLOAD's mirrored requests, paired)\n"
		"Offline, from files (one sample a line, `latency_ms[,status]`, optional\n"
		"header; status 5xx or 0 is an error):\n"
		"  --production F     production latencies (also --baseline)\n"
		"  --shadow F         shadow latencies (also --candidate)\n"
		"  --paired           the two files hold the same requests, line by line\n"
		"  --pairs F          one file `production_ms,shadow_ms[,prod_status,shadow_status]`\n"
		"  --calibrate-production F, --calibrate-shadow F\n"
		"                     an A/A pair (both sides on the same type): widen the\n"
		"                     tolerances by the noise floor measured on it\n"
		"Policy:\n"
		"  --tolerance P      allowed latency increase, shift/p50/p90/p99 (default 10%%)\n"
		"  --tolerance-p99 P  allowed p99 increase (default 10%%)\n"
		"  --tolerance-error PP  allowed error-rate increase, percentage points (default 0.1)\n"
		"  --confidence C     of the intervals, in (0.5, 1) (default 0.98)\n"
		"  --min-samples N    requests a side before a verdict (default 200)\n"
		"  --seed N           bootstrap seed (default 1)\n"
		"  --resamples N      bootstrap resamples, >= 1000 (default 2000)\n"
		"Report:\n"
		"  --html FILE        also write a self-contained HTML report (verdict, KPI\n"
		"                     table with intervals, latency CDFs offline; no network)\n"
		US_CLI_COMMON_HELP);
}

/* "10%", "10" (percent) or "0.1"? A value with % or above 1 is percent. */
static int parse_fraction(const char *s, bool percent_default, double *out)
{
	char *end;
	double v = strtod(s, &end);

	if (end == s || !isfinite(v) || v < 0)
		return -1;
	if (*end == '%' && end[1] == '\0')
		v /= 100.0;
	else if (*end != '\0')
		return -1;
	else if (percent_default)
		v /= 100.0;
	*out = v;
	return 0;
}

static int bad_value(const char *opt, const char *v)
{
	fprintf(stderr, "understudy compare: %s: bad value '%s'\n", opt, v);
	return -1;
}

static int apply_opt(struct compare_args *a, int c, const char *arg)
{
	char *end;

	switch (c) {
	case 's': a->since = arg; break;
	case 'H': a->html = arg; break;
	case 'P': a->prod = arg; break;
	case 'S': a->shadow = arg; break;
	case 'A': a->pairs = arg; break;
	case 'p': a->paired = true; break;
	case 'c': a->cal_prod = arg; break;
	case 'C': a->cal_shadow = arg; break;
	case 't':
		if (parse_fraction(arg, strchr(arg, '%') != NULL, &a->pol.tol_latency) < 0)
			return bad_value("--tolerance", arg);
		if (!a->tol_set)
			a->pol.tol_p99 = a->pol.tol_latency;
		break;
	case 'T':
		if (parse_fraction(arg, strchr(arg, '%') != NULL, &a->pol.tol_p99) < 0)
			return bad_value("--tolerance-p99", arg);
		a->tol_set = true;
		break;
	case 'E':
		if (parse_fraction(arg, true, &a->pol.tol_error) < 0)
			return bad_value("--tolerance-error", arg);
		break;
	case 'f':
		a->pol.confidence = strtod(arg, &end);
		if (*end || !(a->pol.confidence > 0.5 && a->pol.confidence < 1.0))
			return bad_value("--confidence", arg);
		break;
	case 'm':
		a->pol.min_samples = strtoull(arg, &end, 10);
		if (*end || arg[0] == '-' || a->pol.min_samples == 0)
			return bad_value("--min-samples", arg);
		break;
	case 'r':
		a->pol.seed = strtoull(arg, &end, 10);
		if (*end)
			return bad_value("--seed", arg);
		break;
	case 'R':
		a->pol.resamples = (unsigned)strtoul(arg, &end, 10);
		if (*end || a->pol.resamples < 1000 || a->pol.resamples > 1000000)
			return bad_value("--resamples", arg);
		break;
	default:
		return -1;
	}
	return 0;
}

/* Returns -1 (message printed) on an error, 1 after --help. */
static int parse_args(int argc, char **argv, struct us_cli_opts *o, struct compare_args *a)
{
	static const struct option opts[] = {
		US_CLI_COMMON_OPTIONS,
		{ "since", required_argument, NULL, 's' },
		{ "window", required_argument, NULL, 's' },
		{ "production", required_argument, NULL, 'P' },
		{ "baseline", required_argument, NULL, 'P' },
		{ "shadow", required_argument, NULL, 'S' },
		{ "candidate", required_argument, NULL, 'S' },
		{ "pairs", required_argument, NULL, 'A' },
		{ "paired", no_argument, NULL, 'p' },
		{ "calibrate-production", required_argument, NULL, 'c' },
		{ "calibrate-shadow", required_argument, NULL, 'C' },
		{ "tolerance", required_argument, NULL, 't' },
		{ "tolerance-p99", required_argument, NULL, 'T' },
		{ "tolerance-error", required_argument, NULL, 'E' },
		{ "confidence", required_argument, NULL, 'f' },
		{ "min-samples", required_argument, NULL, 'm' },
		{ "seed", required_argument, NULL, 'r' },
		{ "resamples", required_argument, NULL, 'R' },
		{ "html", required_argument, NULL, 'H' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	int c, r;

	optind = 1;
	while ((c = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
		if ((r = us_cli_common_opt(o, c, optarg)) < 0)
			return -1;
		if (r > 0)
			continue;
		if (c == 'h') {
			compare_usage(stdout);
			return 1;
		}
		if (c == '?' || c == ':' || apply_opt(a, c, optarg) < 0) {
			compare_usage(stderr);
			return -1;
		}
	}
	if (optind < argc)
		a->workload = argv[optind++];
	const char *why = optind < argc ? "one WORKLOAD at most" :
		a->workload && (a->prod || a->pairs) ? "WORKLOAD or files, not both" :
		!a->workload && !a->pairs && !(a->prod && a->shadow) ?
			"WORKLOAD, --production F --shadow F, or --pairs F is required" :
		a->pairs && (a->prod || a->shadow) ? "--pairs or --production/--shadow, not both" :
		!a->cal_prod != !a->cal_shadow ? "--calibrate-production and --calibrate-shadow go together" :
		a->workload && a->cal_prod ? "calibration files are for offline comparisons" : NULL;

	if (why) {
		fprintf(stderr, "understudy compare: %s\n", why);
		compare_usage(stderr);
		return -1;
	}
	return 0;
}

/* ---- output --------------------------------------------------------------- */

static const struct us_col kpi_cols[] = {
	{ "kpi", 0 }, { "class", 0 }, { "estimate", US_COL_NUM }, { "ci_low", US_COL_NUM },
	{ "ci_high", US_COL_NUM }, { "unit", 0 }, { "limit", US_COL_NUM }, { "mode", 0 },
	{ "n_production", US_COL_NUM }, { "n_shadow", US_COL_NUM },
	{ "ci_level", US_COL_NUM | US_COL_MACHINE }, { "critical", US_COL_MACHINE },
};

static const char *num(double v, char *buf)
{
	if (!isfinite(v))
		return isnan(v) ? "-" : v > 0 ? "inf" : "-inf";
	snprintf(buf, CELL, "%.4g", v);
	return buf;
}

static int kpi_rows(struct us_table *t, const Understudy__Api__CompareResponse *r)
{
	for (size_t i = 0; i < r->n_kpis; i++) {
		const Understudy__Api__CompareKpi *k = r->kpis[i];
		char e[CELL], lo[CELL], hi[CELL], lim[CELL], np[CELL], ns[CELL], lvl[CELL];

		if (strcmp(k->class_, "NoData") == 0 && !k->n_production && !k->n_shadow)
			continue; /* not measured at all (offline: no kernel figures); JSON has it */
		const char *cells[ARRAY_LEN(kpi_cols)] = {
			k->name, k->class_, num(k->estimate, e), num(k->ci_low, lo),
			num(k->ci_high, hi), k->unit, num(k->limit, lim), k->mode,
			us_fmt_u64(k->n_production, np, sizeof(np)),
			us_fmt_u64(k->n_shadow, ns, sizeof(ns)), num(k->ci_level, lvl),
			k->critical ? "yes" : "no",
		};

		if (us_table_add(t, cells) < 0)
			return -1;
	}
	return 0;
}

static void json_num(FILE *f, double v)
{
	if (isfinite(v))
		fprintf(f, "%.6g", v);
	else
		fputs("null", f);
}

static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fprintf(f, "\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			fprintf(f, "\\u%04x", *s);
		else
			fputc(*s, f);
	}
	fputc('"', f);
}

/* JSON: one object, the verdict and its KPI array (not the listing verbs'
 * bare array: a verdict is one thing). */
static void print_json(const Understudy__Api__CompareResponse *r, const char *note, FILE *f)
{
	fputs("{\"decision\": ", f);
	json_str(f, r->verdict);
	fputs(", \"score\": ", f);
	json_num(f, r->score);
	fputs(", \"confidence\": ", f);
	json_num(f, r->confidence);
	fputs(", \"mode\": ", f);
	json_str(f, r->mode);
	fputs(", \"reason\": ", f);
	json_str(f, r->reason);
	if (note && note[0]) {
		fputs(", \"calibration\": ", f);
		json_str(f, note);
	}
	fputs(",\n \"kpis\": [", f);
	for (size_t i = 0; i < r->n_kpis; i++) {
		const Understudy__Api__CompareKpi *k = r->kpis[i];

		fputs(i ? ",\n  {\"name\": " : "\n  {\"name\": ", f);
		json_str(f, k->name);
		fputs(", \"class\": ", f);
		json_str(f, k->class_);
		fputs(", \"mode\": ", f);
		json_str(f, k->mode);
		fputs(", \"unit\": ", f);
		json_str(f, k->unit);
		fputs(", \"estimate\": ", f);
		json_num(f, k->estimate);
		fputs(", \"ci_low\": ", f);
		json_num(f, k->ci_low);
		fputs(", \"ci_high\": ", f);
		json_num(f, k->ci_high);
		fputs(", \"ci_level\": ", f);
		json_num(f, k->ci_level);
		fputs(", \"limit\": ", f);
		json_num(f, k->limit);
		fprintf(f, ", \"critical\": %s, \"weight\": %g, \"n_production\": %llu, "
			"\"n_shadow\": %llu}", k->critical ? "true" : "false", k->weight,
			(unsigned long long)k->n_production, (unsigned long long)k->n_shadow);
	}
	fputs("]}\n", f);
}

static int print_result(const struct us_cli_opts *o, const Understudy__Api__CompareResponse *r,
			const char *note)
{
	struct us_table *t;

	if (o->format == US_OUT_JSON) {
		print_json(r, note, stdout);
		return 0;
	}
	t = us_table_new(kpi_cols, ARRAY_LEN(kpi_cols));
	if (!t || kpi_rows(t, r) < 0) {
		us_table_free(t);
		fprintf(stderr, "understudy compare: out of memory\n");
		return -1;
	}
	if (o->format == US_OUT_TABLE) {
		printf("decision %s   score %.1f   confidence %.3f   mode %s\n", r->verdict,
		       r->score, r->confidence, r->mode);
		printf("reason   %s\n", r->reason);
		if (note && note[0])
			printf("calibrated tolerances: %s\n", note);
		printf("\n");
	} else {
		/* CSV is the KPI rows; the decision goes to stderr for people */
		fprintf(stderr, "decision %s, score %.1f, confidence %.3f: %s\n", r->verdict,
			r->score, r->confidence, r->reason);
	}
	us_table_print(t, o->format, stdout);
	us_table_free(t);
	return 0;
}

static int verdict_exit(const char *verdict)
{
	return strcmp(verdict, "Pass") == 0 ? US_EXIT_OK :
	       strcmp(verdict, "Fail") == 0 ? US_EXIT_FAIL : US_EXIT_INCONCLUSIVE;
}

/* ---- offline -------------------------------------------------------------- */

static int read_file(const char *path, char **buf, size_t *len)
{
	FILE *f = fopen(path, "rb");
	size_t cap = 1 << 16, n = 0;
	char *b = NULL;

	if (!f) {
		fprintf(stderr, "understudy compare: %s: %s\n", path, strerror(errno));
		return -1;
	}
	for (;;) {
		char *g = realloc(b, cap);

		if (!g)
			break;
		b = g;
		n += fread(b + n, 1, cap - n, f);
		if (n < cap)
			break;
		cap *= 2;
	}
	if (ferror(f) || !b) {
		fprintf(stderr, "understudy compare: %s: read error\n", path);
		free(b);
		fclose(f);
		return -1;
	}
	fclose(f);
	*buf = b;
	*len = n;
	return 0;
}

static int load(const char *path, bool pairs, struct us_csv_samples *s)
{
	char *buf = NULL, err[256];
	size_t len = 0;
	int rc;

	if (read_file(path, &buf, &len) < 0)
		return -1;
	rc = us_csv_samples_parse(buf, len, pairs, s, err, sizeof(err));
	if (rc < 0)
		fprintf(stderr, "understudy compare: %s: %s\n", path, err);
	free(buf);
	return rc;
}

/* Samples of one comparison: from --pairs, or two files (aligned by line
 * with --paired). */
struct sides {
	struct us_csv_samples a, b;
	bool two;
};

static int load_sides(const char *prod, const char *shadow, const char *pairs, bool paired,
		      struct sides *s, struct us_cmp_input *in)
{
	memset(s, 0, sizeof(*s));
	memset(in, 0, sizeof(*in));
	if (pairs) {
		if (load(pairs, true, &s->a) < 0)
			return -1;
		in->prod = s->a.a;
		in->shadow = s->a.b;
		in->n_prod = in->n_shadow = s->a.n;
		in->paired = true;
		in->has_errors = s->a.has_status;
		in->prod_errors = s->a.errors_a;
		in->shadow_errors = s->a.errors_b;
	} else {
		s->two = true;
		if (load(prod, false, &s->a) < 0 || load(shadow, false, &s->b) < 0)
			return -1;
		if (paired && s->a.n != s->b.n) {
			fprintf(stderr, "understudy compare: %s: line %zu: --paired needs as many "
				"samples as %s (%zu)\n", s->a.n < s->b.n ? prod : shadow,
				(s->a.n < s->b.n ? s->a.n : s->b.n) + 1, s->a.n < s->b.n ? shadow : prod,
				s->a.n > s->b.n ? s->a.n : s->b.n);
			return -1;
		}
		if (s->a.has_status != s->b.has_status) {
			fprintf(stderr, "understudy compare: %s: has a status column, %s has not\n",
				s->a.has_status ? prod : shadow, s->a.has_status ? shadow : prod);
			return -1;
		}
		in->prod = s->a.a;
		in->shadow = s->b.a;
		in->n_prod = s->a.n;
		in->n_shadow = s->b.n;
		in->paired = paired;
		in->has_errors = s->a.has_status;
		in->prod_errors = s->a.errors_a;
		in->shadow_errors = s->b.errors_a;
	}
	in->prod_requests = in->n_prod;
	in->shadow_requests = in->n_shadow;
	return 0;
}

static void sides_free(struct sides *s)
{
	us_csv_samples_free(&s->a);
	us_csv_samples_free(&s->b);
}

/* The verdict as the API's message, so one printer serves both modes;
 * kpis/rows are caller storage. */
static void to_response(const struct us_verdict *v, Understudy__Api__CompareResponse *r,
			Understudy__Api__CompareKpi *rows, Understudy__Api__CompareKpi **ptrs)
{
	understudy__api__compare_response__init(r);
	r->score = v->score;
	r->confidence = v->confidence;
	r->verdict = (char *)us_decision_name(v->decision);
	r->reason = (char *)v->reason;
	r->mode = v->paired ? "paired" : "unpaired";
	for (int i = 0; i < US_KPI_NR; i++) {
		const struct us_kpi *k = &v->kpi[i];
		Understudy__Api__CompareKpi *o = &rows[i];

		understudy__api__compare_kpi__init(o);
		o->name = (char *)k->name;
		o->mode = (char *)k->mode;
		o->unit = (char *)k->unit;
		o->class_ = (char *)us_kpi_class_name(k->cls);
		o->estimate = k->estimate;
		o->ci_low = k->lo;
		o->ci_high = k->hi;
		o->ci_level = k->level;
		o->limit = k->cls == US_CLASS_NODATA ? NAN : k->limit;
		o->critical = k->critical;
		o->weight = k->weight;
		o->n_production = k->n_prod;
		o->n_shadow = k->n_shadow;
		ptrs[i] = o;
	}
	r->kpis = ptrs;
	r->n_kpis = US_KPI_NR;
	r->cdf_production = (double *)v->cdf_prod;
	r->cdf_shadow = (double *)v->cdf_shadow;
	r->n_cdf_production = r->n_cdf_shadow = v->n_cdf;
}

/* Quantiles at even fractions (the response's cdf_*) as report points;
 * scale turns the samples' unit into ms (online: ns). */
static size_t cdf_points(const double *q, size_t n, double scale,
			 struct us_report_cdf_point *out)
{
	for (size_t i = 0; i < n; i++) {
		out[i].value_ms = q[i] * scale;
		out[i].fraction = n > 1 ? (double)i / (double)(n - 1) : 1.0;
	}
	return n;
}

/* A KPI's estimate and interval as the report's relative shift in %:
 * ratios and shares around 1, differences (error rate) in points. */
static double as_shift(const char *unit, double v)
{
	return unit && !strcmp(unit, "diff") ? v * 100 : (v - 1) * 100;
}

/* --html: the verdict as one self-contained page (coordinator/report_html.h);
 * scale turns latency samples into ms (1 offline, 1e-6 online: ns). */
static int write_html(const char *path, const char *title,
		      const Understudy__Api__CompareResponse *r, double scale,
		      const struct us_report_timeline *tl, size_t ntl)
{
	struct us_report_kpi *kpis = calloc(r->n_kpis ? r->n_kpis : 1, sizeof(*kpis));
	struct us_report_cdf_point cp[US_CDF_POINTS], cs[US_CDF_POINTS];
	size_t ncp = r->n_cdf_production < US_CDF_POINTS ? r->n_cdf_production : US_CDF_POINTS;
	size_t ncs = r->n_cdf_shadow < US_CDF_POINTS ? r->n_cdf_shadow : US_CDF_POINTS;
	struct us_report rep = {
		.title = "understudy comparison", .workload = title, .decision = r->verdict,
		.score = r->score, .confidence = r->confidence, .mode = r->mode,
		.window_start = NAN, .window_end = NAN,
	};
	char err[256];
	FILE *f = NULL;
	int rc = -1;

	if (!kpis)
		goto cleanup;
	for (size_t i = 0; i < r->n_kpis; i++) {
		const Understudy__Api__CompareKpi *k = r->kpis[i];

		kpis[i] = (struct us_report_kpi){
			.name = k->name, .unit = k->unit, .production = NAN, .shadow = NAN,
			.estimate = as_shift(k->unit, k->estimate),
			.ci_low = as_shift(k->unit, k->ci_low), .ci_high = as_shift(k->unit, k->ci_high),
			.cls = k->class_, .critical = k->critical,
			.n_production = k->n_production, .n_shadow = k->n_shadow,
		};
	}
	rep.kpis = kpis;
	rep.n_kpis = r->n_kpis;
	rep.cdf_production = cp;
	rep.n_cdf_production = cdf_points(r->cdf_production, ncp, scale, cp);
	rep.cdf_shadow = cs;
	rep.n_cdf_shadow = cdf_points(r->cdf_shadow, ncs, scale, cs);
	rep.timelines = tl;
	rep.n_timelines = ntl;
	f = fopen(path, "w");
	if (!f) {
		snprintf(err, sizeof(err), "%s", strerror(errno));
		goto fail;
	}
	if (us_report_write_html(&rep, f, err, sizeof(err)) < 0)
		goto fail;
	if (fclose(f)) {
		f = NULL;
		snprintf(err, sizeof(err), "%s", strerror(errno));
		goto fail;
	}
	f = NULL;
	rc = 0;
	goto cleanup;
fail:
	fprintf(stderr, "understudy compare: --html %s: %s\n", path, err);
cleanup:
	if (f)
		fclose(f);
	free(kpis);
	return rc;
}

static int compare_offline(const struct us_cli_opts *o, struct compare_args *a)
{
	Understudy__Api__CompareKpi rows[US_KPI_NR], *ptrs[US_KPI_NR];
	Understudy__Api__CompareResponse resp;
	struct us_cmp_input in;
	struct us_verdict *v = malloc(sizeof(*v));
	struct sides s = { 0 };
	char note[256] = "";
	int rc = US_EXIT_USAGE;

	if (!v)
		goto oom;
	if (a->cal_prod) {
		if (load_sides(a->cal_prod, a->cal_shadow, NULL, a->paired, &s, &in) < 0)
			goto cleanup;
		if (us_verdict_run(&a->pol, &in, v) < 0)
			goto oom;
		us_policy_calibrate(&a->pol, v, note, sizeof(note));
		sides_free(&s);
	}
	if (load_sides(a->prod, a->shadow, a->pairs, a->paired, &s, &in) < 0)
		goto cleanup;
	if (us_verdict_run(&a->pol, &in, v) < 0)
		goto oom;
	to_response(v, &resp, rows, ptrs);
	rc = print_result(o, &resp, note) < 0 ? US_EXIT_FAIL : verdict_exit(resp.verdict);
	if (a->html && write_html(a->html, a->pairs ? a->pairs : a->prod, &resp, 1.0, NULL, 0) < 0)
		rc = US_EXIT_FAIL;
	goto cleanup;
oom:
	fprintf(stderr, "understudy compare: out of memory\n");
	rc = US_EXIT_FAIL;
cleanup:
	sides_free(&s);
	free(v);
	return rc;
}

/* ---- online --------------------------------------------------------------- */

/* One KPI over the window for the report: two stored series (metric, role)
 * as p99 per minute in ms, and the detector's alerts on the first. */
struct timeline_src {
	const char *kpi;
	const char *metric[2], *role[2];     /* production side, shadow side */
};

struct timeline_buf {
	struct us_report_point *pts[2];
	size_t n[2];
	struct us_report_alert *alerts;
	size_t nalerts;
	ProtobufCMessage *alert_resp;        /* owns the reasons */
};

static int fetch_points(const struct us_cli_opts *o, const char *workload, const char *metric,
			const char *role, const char *since, struct us_report_point **out,
			size_t *n)
{
	Understudy__Api__SeriesQueryRequest req = UNDERSTUDY__API__SERIES_QUERY_REQUEST__INIT;
	const Understudy__Api__SeriesQueryResponse *r;
	ProtobufCMessage *resp = NULL;

	*out = NULL;
	*n = 0;
	req.workload = (char *)workload;
	req.metric = (char *)metric;
	req.role = (char *)role;
	req.from = (char *)since;
	req.step = "1m";
	if (us_cli_rpc(o, "compare", "/understudy.api.Series/Query", &req.base,
		       &understudy__api__series_query_response__descriptor, &resp) != US_EXIT_OK)
		return 0;
	r = (const void *)resp;
	*out = calloc(r->n_points ? r->n_points : 1, sizeof(**out));
	if (!*out) {
		protobuf_c_message_free_unpacked(resp, NULL);
		return -1;
	}
	for (size_t i = 0; i < r->n_points; i++) {
		(*out)[i].t = (double)r->points[i]->start_ns / 1e9;
		(*out)[i].value = r->points[i]->count ? r->points[i]->p99 / 1e6 : NAN;
	}
	*n = r->n_points;
	protobuf_c_message_free_unpacked(resp, NULL);
	return 0;
}

static void fetch_alerts(const struct us_cli_opts *o, const char *workload, const char *metric,
			 const char *since, struct timeline_buf *b)
{
	Understudy__Api__AnomaliesRequest req = UNDERSTUDY__API__ANOMALIES_REQUEST__INIT;
	const Understudy__Api__AnomaliesResponse *r;

	req.workload = (char *)workload;
	req.metric = (char *)metric;
	req.field = "p99";
	req.since = (char *)since;
	req.step = "1m";
	if (us_cli_rpc(o, "compare", "/understudy.api.Anomalies/Run", &req.base,
		       &understudy__api__anomalies_response__descriptor, &b->alert_resp) != US_EXIT_OK)
		return;
	r = (const void *)b->alert_resp;
	b->alerts = calloc(r->n_alerts ? r->n_alerts : 1, sizeof(*b->alerts));
	for (size_t i = 0; b->alerts && i < r->n_alerts; i++) {
		b->alerts[i].t = (double)r->alerts[i]->time_ns / 1e9;
		b->alerts[i].score = r->alerts[i]->score;
		b->alerts[i].reason = r->alerts[i]->reason;
		b->nalerts++;
	}
}

static const struct timeline_src timeline_srcs[] = {
	{ "request latency p99", { "request_latency", "shadow_request_latency" },
	  { "production", "production" } },
	{ "run-queue latency p99", { "runq_latency", "runq_latency" }, { "production", "shadow" } },
	{ "block I/O latency p99", { "io_latency", "io_latency" }, { "production", "shadow" } },
};
#define NTIMELINES (sizeof(timeline_srcs) / sizeof(timeline_srcs[0]))

/* The report's timelines; a KPI without data on either side is left out,
 * and the CLI's messages about absent series (NOT_FOUND) are not printed:
 * stderr points at /dev/null meanwhile. */
static size_t fetch_timelines(const struct us_cli_opts *o, const char *workload,
			      const char *shadow, const char *since, struct timeline_buf *b,
			      struct us_report_timeline *tl)
{
	int saved = dup(fileno(stderr)), null = open("/dev/null", O_WRONLY | O_CLOEXEC);
	size_t n = 0;

	fflush(stderr);
	if (saved >= 0 && null >= 0)
		dup2(null, fileno(stderr));
	if (null >= 0)
		close(null);
	for (size_t i = 0; i < NTIMELINES; i++) {
		const struct timeline_src *src = &timeline_srcs[i];

		/* with the shadow's own workload, its side is its server's figure */
		for (int s = 0; s < 2; s++)
			fetch_points(o, s && shadow ? shadow : workload,
				     s && shadow ? src->metric[0] : src->metric[s],
				     s && shadow ? "shadow" : src->role[s], since, &b[i].pts[s],
				     &b[i].n[s]);
		if (!b[i].n[0] && !b[i].n[1])
			continue;
		fetch_alerts(o, workload, src->metric[0], since, &b[i]);
		tl[n++] = (struct us_report_timeline){
			.kpi = src->kpi, .unit = "ms",
			.production = b[i].pts[0], .n_production = b[i].n[0],
			.shadow = b[i].pts[1], .n_shadow = b[i].n[1],
			.alerts = b[i].alerts, .n_alerts = b[i].nalerts,
		};
	}
	fflush(stderr);
	if (saved >= 0) {
		dup2(saved, fileno(stderr));
		close(saved);
	}
	return n;
}

static void timelines_free(struct timeline_buf *b)
{
	for (size_t i = 0; i < NTIMELINES; i++) {
		free(b[i].pts[0]);
		free(b[i].pts[1]);
		free(b[i].alerts);
		if (b[i].alert_resp)
			protobuf_c_message_free_unpacked(b[i].alert_resp, NULL);
	}
}

static int compare_online(const struct us_cli_opts *o, const struct compare_args *a)
{
	Understudy__Api__CompareRequest req = UNDERSTUDY__API__COMPARE_REQUEST__INIT;
	ProtobufCMessage *resp = NULL;
	int rc;

	req.workload = (char *)a->workload;
	req.shadow_workload = (char *)(a->shadow ? a->shadow : "");
	req.since = (char *)(a->since ? a->since : "");
	req.confidence = a->pol.confidence;
	req.tolerance_p99 = a->pol.tol_p99;
	req.min_samples = (uint32_t)(a->pol.min_samples > UINT32_MAX ? UINT32_MAX
								    : a->pol.min_samples);
	rc = us_cli_rpc(o, "compare", "/understudy.api.Compare/Run", &req.base,
			&understudy__api__compare_response__descriptor, &resp);
	if (rc != US_EXIT_OK)
		return rc;
	const Understudy__Api__CompareResponse *r = (const void *)resp;

	rc = print_result(o, r, NULL) < 0 ? US_EXIT_FAIL : verdict_exit(r->verdict);
	if (a->html) {
		struct timeline_buf b[NTIMELINES] = { 0 };
		struct us_report_timeline tl[NTIMELINES];
		const char *since = a->since ? a->since : "1h";
		size_t ntl = fetch_timelines(o, a->workload, a->shadow, since, b, tl);

		if (write_html(a->html, a->workload, r, 1e-6, tl, ntl) < 0)
			rc = US_EXIT_FAIL;
		timelines_free(b);
	}
	protobuf_c_message_free_unpacked(resp, NULL);
	return rc;
}

int us_cli_compare(const struct us_cli_opts *global, int argc, char **argv)
{
	struct us_cli_opts o = *global;
	struct compare_args a = { 0 };
	int rc;

	us_policy_defaults(&a.pol);
	rc = parse_args(argc, argv, &o, &a);
	if (rc != 0)
		return rc > 0 ? US_EXIT_OK : US_EXIT_USAGE;
	return a.workload ? compare_online(&o, &a) : compare_offline(&o, &a);
}
