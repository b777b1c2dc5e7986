/* `understudy series WORKLOAD METRIC`: one metric of one workload over time,
 * a row per step (Series.Query). The coordinator checks the arguments, so a
 * bad --since or --step comes back as INVALID_ARGUMENT (exit 2) naming it. */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

#include "api.pb-c.h"
#include "cli_output.h"

#define CELL 64
#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

static void series_usage(FILE *out)
{
	fprintf(out,
		"usage: understudy series WORKLOAD METRIC [--role production|shadow]\n"
		"                         [--since 2h] [--until now] [--step 1m] [OPTIONS]\n"
		"\n"
		"Prints METRIC (e.g. runq_latency) of WORKLOAD per step: count, sum, mean\n"
		"and quantiles of the step's merged histograms (for a counter, sum is its\n"
		"increase). Steps without data are left out.\n"
		"  --role R           production (default) or shadow\n"
		"  --since T          start: a duration ago (2h, 30m) or unix ns (default 1h)\n"
		"  --until T          end: 'now' (default), a duration ago or unix ns\n"
		"  --step D           step, at least 1s (default 1m)\n"
		US_CLI_COMMON_HELP);
}

static const struct us_col point_cols[] = {
	{ "start", 0 }, { "end", 0 }, { "count", US_COL_NUM }, { "sum", US_COL_NUM },
	{ "mean", US_COL_NUM }, { "p50", US_COL_NUM }, { "p90", US_COL_NUM },
	{ "p99", US_COL_NUM }, { "p999", US_COL_NUM },
	{ "start_ns", US_COL_NUM | US_COL_MACHINE }, { "end_ns", US_COL_NUM | US_COL_MACHINE },
};

static int point_row(struct us_table *t, const Understudy__Api__Point *p)
{
	char start[CELL], end[CELL], n[CELL], sum[CELL], mean[CELL], p50[CELL], p90[CELL],
	     p99[CELL], p999[CELL], start_ns[CELL], end_ns[CELL];
	const char *cells[ARRAY_LEN(point_cols)] = {
		us_fmt_time(p->start_ns, start, sizeof(start)),
		us_fmt_time(p->end_ns, end, sizeof(end)), us_fmt_u64(p->count, n, sizeof(n)),
		us_fmt_u64(p->sum, sum, sizeof(sum)), us_fmt_double(p->mean, mean, sizeof(mean)),
		us_fmt_double(p->p50, p50, sizeof(p50)), us_fmt_double(p->p90, p90, sizeof(p90)),
		us_fmt_double(p->p99, p99, sizeof(p99)),
		us_fmt_double(p->p999, p999, sizeof(p999)),
		us_fmt_u64(p->start_ns, start_ns, sizeof(start_ns)),
		us_fmt_u64(p->end_ns, end_ns, sizeof(end_ns)),
	};

	return us_table_add(t, cells);
}

static int point_rows(struct us_table *t, const ProtobufCMessage *m)
{
	const Understudy__Api__SeriesQueryResponse *r = (const Understudy__Api__SeriesQueryResponse *)m;

	for (size_t i = 0; i < r->n_points; i++)
		if (point_row(t, r->points[i]) < 0)
			return -1;
	return 0;
}

/* Fills req from argv; returns -1 (usage printed) on an error, 1 after --help. */
static int parse_args(int argc, char **argv, struct us_cli_opts *o,
		      Understudy__Api__SeriesQueryRequest *req)
{
	static const struct option opts[] = {
		US_CLI_COMMON_OPTIONS,
		{ "role", required_argument, NULL, 'r' },
		{ "since", required_argument, NULL, 's' },
		{ "until", required_argument, NULL, 'u' },
		{ "step", required_argument, NULL, 't' },
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
		switch (c) {
		case 'r': req->role = optarg; break;
		case 's': req->from = optarg; break;
		case 'u': req->to = optarg; break;
		case 't': req->step = optarg; break;
		case 'h': series_usage(stdout); return 1;
		default: series_usage(stderr); return -1;
		}
	}
	if (optind != argc - 2) {
		fprintf(stderr, "understudy series: WORKLOAD and METRIC are required\n");
		series_usage(stderr);
		return -1;
	}
	req->workload = argv[optind];
	req->metric = argv[optind + 1];
	return 0;
}

int us_cli_series(const struct us_cli_opts *global, int argc, char **argv)
{
	Understudy__Api__SeriesQueryRequest req = UNDERSTUDY__API__SERIES_QUERY_REQUEST__INIT;
	struct us_cli_opts o = *global;
	int rc = parse_args(argc, argv, &o, &req);

	if (rc != 0)
		return rc > 0 ? US_EXIT_OK : US_EXIT_USAGE;
	return us_cli_rpc_table(&o, "series", "/understudy.api.Series/Query", &req.base,
				&understudy__api__series_query_response__descriptor, point_cols,
				ARRAY_LEN(point_cols), point_rows);
}
