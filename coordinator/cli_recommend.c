/* `understudy recommend`: rightsizing. Online (WORKLOAD) it asks the
 * coordinator (Recommend/Run), which reads the workload's stored utilization;
 * offline (--utilization FILE.csv --current TYPE) it runs the same engine
 * (lib/recommend.c) here, with no coordinator. Both print from the same
 * RecommendResponse, so the two modes cannot drift apart. */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

#include "api.pb-c.h"
#include "catalog.h"
#include "csvline.h"
#include "cli_output.h"
#include "recommend.h"
#include "recommend_pb.h"
#include "utilization.h"

#define CELL 64
#define DEFAULT_TOP 5
#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

struct args {
	const char *workload, *utilization, *current, *catalog, *lookback;
	const char *headroom, *cpu_percentile;
	unsigned top;
};

static void recommend_usage(FILE *out)
{
	fprintf(out,
		"usage: understudy recommend WORKLOAD [--lookback 14d] [--current TYPE] [OPTIONS]\n"
		"       understudy recommend --utilization FILE.csv --current TYPE [OPTIONS]\n"
		"\n"
		"Rightsizing: the instance types of the catalog that fit the workload's\n"
		"need on every dimension, cheapest first, each with its finding, risk\n"
		"(0-4), projected utilization, monthly cost (730 h) and savings against\n"
		"the current type. Need = percentile of the utilization x (1 + headroom):\n"
		"p99.5 for CPU cores, the maximum for memory, p99 for network.\n"
		"WORKLOAD asks the coordinator, which reads the production role's stored\n"
		"cpu_usage and memory_current (at least 30 h of data over the lookback).\n"
		"--utilization reads a CSV timestamp,cpu_cores,memory_gib[,network_gbps]\n"
		"(unix seconds or ISO 8601) and needs no coordinator. See docs/recommend.md.\n"
		"  --utilization F    offline input (CSV as above)\n"
		"  --current TYPE     the type it runs on now (required offline)\n"
		"  --catalog F        instance catalog CSV (default: the installed\n"
		"                     /usr/share/understudy/catalog/aws-ec2.csv, or the\n"
		"                     source tree's data/catalog/aws-ec2.csv)\n"
		"  --lookback D       online: how far back to read (default 14d)\n"
		"  --headroom H       added to each need, 20%% or 0.2 (default 20%%)\n"
		"  --cpu-percentile P CPU percentile, 0-100 (default 99.5; 100 = max)\n"
		"  --top N            at most N options (default %d; 0 = all)\n"
		US_CLI_COMMON_HELP
		"Exit status: 0 success; 1 failure (coordinator unreachable); 2 usage or\n"
		"input error (a bad file names FILE:LINE, an unknown --current type, less\n"
		"than 30 h of data, no data for WORKLOAD).\n", DEFAULT_TOP);
}

/* ---- output ---------------------------------------------------------------- */

static const struct us_col cols[] = {
	{ "rank", US_COL_NUM }, { "type", 0 }, { "arch", 0 }, { "vcpu", US_COL_NUM },
	{ "memory_gib", US_COL_NUM }, { "finding", 0 }, { "risk", US_COL_NUM },
	{ "cpu_util_pct", US_COL_NUM }, { "memory_util_pct", US_COL_NUM },
	{ "network_util_pct", US_COL_NUM }, { "usd_month", US_COL_NUM },
	{ "savings_usd_month", US_COL_NUM }, { "savings_pct", US_COL_NUM }, { "reasons", 0 },
	{ "current", US_COL_NUM | US_COL_MACHINE },
	{ "arch_change", US_COL_NUM | US_COL_MACHINE },
	{ "cpu_capacity_cores", US_COL_NUM | US_COL_MACHINE },
	{ "usd_per_hour", US_COL_NUM | US_COL_MACHINE },
};

static const char *fmt(double v, const char *f, char *buf)
{
	snprintf(buf, CELL, f, v);
	return buf;
}

static const Understudy__Api__RecommendDimension *dim(const Understudy__Api__RecommendOption *o,
						      const char *name)
{
	for (size_t i = 0; i < o->n_dimensions; i++)
		if (strcmp(o->dimensions[i]->name, name) == 0)
			return o->dimensions[i];
	return NULL;
}

static const char *util(const Understudy__Api__RecommendOption *o, const char *name, char *buf)
{
	const Understudy__Api__RecommendDimension *d = dim(o, name);

	if (!d || d->capacity <= 0)
		return "";
	return fmt(100.0 * d->projected_utilization, "%.1f", buf);
}

static int option_row(struct us_table *t, const Understudy__Api__RecommendOption *o,
		      bool has_current)
{
	char b[12][CELL];
	const Understudy__Api__RecommendDimension *cpu = dim(o, "cpu");
	const char *cells[ARRAY_LEN(cols)] = {
		fmt(o->rank, "%.0f", b[0]), o->instance_type, o->arch, fmt(o->vcpu, "%g", b[1]),
		fmt(o->memory_gib, "%g", b[2]), o->finding, fmt(o->risk, "%.0f", b[3]),
		util(o, "cpu", b[4]), util(o, "memory", b[5]), util(o, "network", b[6]),
		fmt(o->monthly_usd, "%.2f", b[7]),
		has_current ? fmt(o->savings_usd, "%.2f", b[8]) : "",
		has_current ? fmt(o->savings_pct, "%.1f", b[9]) : "",
		o->reasons, o->is_current ? "1" : "0", o->arch_change ? "1" : "0",
		cpu ? fmt(cpu->capacity, "%g", b[10]) : "", fmt(o->usd_per_hour, "%g", b[11]),
	};

	return us_table_add(t, cells);
}

/* The human summary above the table: the needs and the current type's own
 * finding. JSON and CSV carry the same facts per row, so they skip it. */
static void summary(const Understudy__Api__RecommendResponse *r, FILE *out)
{
	fprintf(out, "%s%s%.1f h of utilization (%llu samples), headroom %.0f%%, catalog %s\n",
		r->workload, r->workload[0] ? ": " : "", r->hours,
		(unsigned long long)r->samples, 100.0 * r->headroom, r->catalog);
	for (size_t i = 0; i < r->n_needs; i++) {
		const Understudy__Api__RecommendNeed *n = r->needs[i];
		char pct[32];

		if (n->percentile >= 100.0)
			snprintf(pct, sizeof(pct), "max");
		else
			snprintf(pct, sizeof(pct), "p%g", n->percentile);
		fprintf(out, "need %-8s %8.3f %-5s (%s %.3f x %.2f)\n", n->name, n->need, n->unit,
			pct, n->observed, 1.0 + r->headroom);
	}
	if (r->current)
		fprintf(out, "current %s: %s, risk %u%s%s\n", r->current->instance_type,
			r->current->finding, r->current->risk, r->current->reasons[0] ? ", " : "",
			r->current->reasons);
	if (r->n_options == 0)
		fprintf(out, "no type in the catalog fits every dimension\n");
	fputc('\n', out);
}

static int print_response(const Understudy__Api__RecommendResponse *r, enum us_out_format f)
{
	struct us_table *t = us_table_new(cols, ARRAY_LEN(cols));
	int rc = -1;

	if (!t)
		return -1;
	if (r->current && option_row(t, r->current, true) < 0)
		goto cleanup;
	for (size_t i = 0; i < r->n_options; i++)
		if (option_row(t, r->options[i], r->current != NULL) < 0)
			goto cleanup;
	if (f == US_OUT_TABLE)
		summary(r, stdout);
	us_table_print(t, f, stdout);
	rc = 0;
cleanup:
	us_table_free(t);
	return rc;
}

/* ---- offline --------------------------------------------------------------- */

static int params(const struct args *a, struct us_rec_params *p)
{
	us_rec_params_default(p);
	if (us_rec_parse_headroom(a->headroom ? a->headroom : "", p->headroom,
				  &p->headroom) < 0) {
		fprintf(stderr, "understudy recommend: --headroom: expected a share such as 20%% "
			"or 0.2, got '%s'\n", a->headroom);
		return -1;
	}
	if (us_rec_parse_percentile(a->cpu_percentile ? a->cpu_percentile : "",
				    p->percentile[US_DIM_CPU], &p->percentile[US_DIM_CPU]) < 0) {
		fprintf(stderr, "understudy recommend: --cpu-percentile: expected a number in "
			"[0, 100], got '%s'\n", a->cpu_percentile);
		return -1;
	}
	return 0;
}

static int offline(const struct args *a, enum us_out_format f)
{
	Understudy__Api__RecommendResponse *r = NULL;
	struct us_catalog cat = { 0 };
	struct us_util u = { 0 };
	struct us_rec_result res = { 0 };
	struct us_rec_params p;
	struct us_rec_need need;
	char catpath[US_CATALOG_PATH_MAX], err[1024];
	const char *catalog = a->catalog ? a->catalog : us_catalog_default_path(catpath,
										 sizeof(catpath));
	int rc = US_EXIT_USAGE;

	if (params(a, &p) < 0)
		return US_EXIT_USAGE;
	if (us_catalog_load(catalog, &cat, err, sizeof(err)) < 0 ||
	    us_util_load(a->utilization, &u, err, sizeof(err)) < 0) {
		fprintf(stderr, "understudy recommend: %s\n", err);
		goto cleanup;
	}
	if (us_rec_need(&u, &p, &need, err, sizeof(err)) < 0) {
		fprintf(stderr, "understudy recommend: %s: %s\n", a->utilization, err);
		goto cleanup;
	}
	if (us_recommend(&cat, &need, a->current, &res, err, sizeof(err)) < 0) {
		fprintf(stderr, "understudy recommend: --current: %s (%s)\n", err, catalog);
		goto cleanup;
	}
	rc = US_EXIT_FAIL;
	r = us_rec_to_pb(&res, &p, "", catalog, a->top);
	if (!r || print_response(r, f) < 0) {
		fprintf(stderr, "understudy recommend: out of memory\n");
		goto cleanup;
	}
	rc = US_EXIT_OK;
cleanup:
	if (r)
		protobuf_c_message_free_unpacked(&r->base, NULL);
	us_rec_result_free(&res);
	us_util_free(&u);
	us_catalog_free(&cat);
	return rc;
}

/* ---- online ---------------------------------------------------------------- */

static int online(const struct args *a, const struct us_cli_opts *o)
{
	Understudy__Api__RecommendRequest req = UNDERSTUDY__API__RECOMMEND_REQUEST__INIT;
	ProtobufCMessage *resp = NULL;
	char *csv = NULL, err[1024];
	size_t len;
	int rc;

	/* the catalog travels in the request: the coordinator never opens a
	 * path a client names, and errors name the client's file */
	if (a->catalog) {
		if (us_csv_slurp(a->catalog, US_CATALOG_MAX_BYTES, &csv, &len, err,
				 sizeof(err)) < 0) {
			fprintf(stderr, "understudy recommend: --catalog: %s\n", err);
			return US_EXIT_USAGE;
		}
		req.catalog_csv = csv;
		req.catalog_name = (char *)a->catalog;
	}
	req.workload = (char *)a->workload;
	req.lookback = (char *)(a->lookback ? a->lookback : "");
	req.current_type = (char *)(a->current ? a->current : "");
	req.headroom = (char *)(a->headroom ? a->headroom : "");
	req.cpu_percentile = (char *)(a->cpu_percentile ? a->cpu_percentile : "");
	req.top = a->top;
	rc = us_cli_rpc(o, "recommend", "/understudy.api.Recommend/Run", &req.base,
			&understudy__api__recommend_response__descriptor, &resp);
	if (rc == US_EXIT_OK && print_response((const void *)resp, o->format) < 0) {
		fprintf(stderr, "understudy recommend: out of memory\n");
		rc = US_EXIT_FAIL;
	}
	if (resp)
		protobuf_c_message_free_unpacked(resp, NULL);
	free(csv);
	return rc;
}

/* Fills a from argv; -1 (usage printed) on an error, 1 after --help. */
static int parse_args(int argc, char **argv, struct us_cli_opts *o, struct args *a)
{
	static const struct option opts[] = {
		US_CLI_COMMON_OPTIONS,
		{ "utilization", required_argument, NULL, 'u' },
		{ "current", required_argument, NULL, 'c' },
		{ "catalog", required_argument, NULL, 'C' },
		{ "lookback", required_argument, NULL, 'l' },
		{ "headroom", required_argument, NULL, 'H' },
		{ "cpu-percentile", required_argument, NULL, 'p' },
		{ "top", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	char *end;
	int c, r;

	optind = 1;
	a->top = DEFAULT_TOP;
	while ((c = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
		if ((r = us_cli_common_opt(o, c, optarg)) < 0)
			return -1;
		if (r > 0)
			continue;
		switch (c) {
		case 'u': a->utilization = optarg; break;
		case 'c': a->current = optarg; break;
		case 'C': a->catalog = optarg; break;
		case 'l': a->lookback = optarg; break;
		case 'H': a->headroom = optarg; break;
		case 'p': a->cpu_percentile = optarg; break;
		case 't':
			a->top = (unsigned)strtoul(optarg, &end, 10);
			if (!optarg[0] || *end || optarg[0] == '-' || a->top > 100000) {
				fprintf(stderr, "understudy recommend: --top: expected a count, "
					"got '%s'\n", optarg);
				return -1;
			}
			break;
		case 'h': recommend_usage(stdout); return 1;
		default: recommend_usage(stderr); return -1;
		}
	}
	if (optind < argc)
		a->workload = argv[optind++];
	if (optind != argc || (!a->workload) == (!a->utilization)) {
		fprintf(stderr, "understudy recommend: %s\n", optind != argc ? "one WORKLOAD at most" :
			a->workload ? "WORKLOAD and --utilization exclude each other"
				    : "WORKLOAD or --utilization FILE is required");
		recommend_usage(stderr);
		return -1;
	}
	if (a->utilization && (!a->current || !a->current[0])) {
		fprintf(stderr, "understudy recommend: --current TYPE is required with "
			"--utilization\n");
		return -1;
	}
	if (a->utilization && a->lookback) {
		fprintf(stderr, "understudy recommend: --lookback applies to WORKLOAD only; "
			"the CSV's rows are the data\n");
		return -1;
	}
	return 0;
}

int us_cli_recommend(const struct us_cli_opts *global, int argc, char **argv)
{
	struct us_cli_opts o = *global;
	struct args a = { 0 };
	int rc = parse_args(argc, argv, &o, &a);

	if (rc != 0)
		return rc > 0 ? US_EXIT_OK : US_EXIT_USAGE;
	return a.utilization ? offline(&a, o.format) : online(&a, &o);
}
