/* `understudy anomalies --input FILE.csv`: runs the online anomaly detector
 * (anomaly.h) offline over a `timestamp,value` CSV and prints, per point, the
 * timestamp, the value, the score and whether it is an anomaly (and why,
 * with --reasons or in the table). Bad input exits 2 naming file and line.
 * `understudy anomalies WORKLOAD --metric M`: the alerts the coordinator
 * finds over a stored metric (Anomalies/Run, coordinator/alerts.c). */
#include "cli.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "anomaly.h"
#include "api.pb-c.h"
#include "cli_output.h"
#include "tscsv.h"

#define CELL 64

static void anomalies_usage(FILE *out)
{
	fprintf(out,
		"usage: understudy anomalies --input FILE.csv [--reasons] [--allow-duplicates]\n"
		"                            [--probation N] [-o table|json|csv]\n"
		"\n"
		"Runs the online anomaly detector over a `timestamp,value` CSV (NAB format:\n"
		"a header line, then \"YYYY-MM-DD HH:MM:SS,value\" or unix seconds) and prints\n"
		"timestamp, value, score (likelihood in [0,1]) and anomaly (0 or 1) per point.\n"
		"An anomaly is a point whose score reaches 0.9999, after the probation and not\n"
		"within 288 points of the previous alert. The mean step gives the points per\n"
		"day: a spike like one at the same time yesterday is not an anomaly.\n"
		"See docs/anomalies.md.\n"
		"  --input F           the series (required)\n"
		"  --reasons           add a `reason` column (always in the table)\n"
		"  --allow-duplicates  accept a timestamp equal to the previous line's\n"
		"  --probation N       points that never alert (default 15%% of the series, at most 750)\n"
		"  -o table|json|csv   output format\n"
		"\n"
		"\n"
		"       understudy anomalies WORKLOAD --metric M [--field p99] [--since 24h]\n"
		"                            [--step 1m] [--history 7d] [OPTIONS]\n"
		"\n"
		"Runs the same detector in the coordinator over a stored metric of WORKLOAD,\n"
		"one point per step, for production, for the shadow, and for their ratio\n"
		"(shadow/production), and prints the alerts: time, series, value, score, reason.\n"
		"  --metric M          e.g. request_latency, runq_latency, requests (required)\n"
		"  --field F           for histograms: p50 p90 p99 (default) p999 mean;\n"
		"                      counters are rates per second\n"
		"  --since D, --step D window (default 24h) and step (default 1m)\n"
		"  --history D         learned from before the window, never alerted on\n"
		"                      (default 7d, the detector's routine memory; 0 for none:\n"
		"                      then the window's first 15%% is the probation)\n"
		US_CLI_COMMON_HELP);
}

static const struct us_col alert_cols[] = {
	{ "time", 0 }, { "series", 0 }, { "value", US_COL_NUM }, { "score", US_COL_NUM },
	{ "reason", 0 }, { "time_ns", US_COL_NUM | US_COL_MACHINE },
};

static int alert_rows(struct us_table *t, const ProtobufCMessage *m)
{
	const Understudy__Api__AnomaliesResponse *r = (const Understudy__Api__AnomaliesResponse *)m;

	for (size_t i = 0; i < r->n_alerts; i++) {
		const Understudy__Api__Alert *a = r->alerts[i];
		char when[CELL], val[CELL], score[CELL], ns[CELL];
		const char *cells[] = {
			us_fmt_time(a->time_ns, when, sizeof(when)), a->series,
			us_fmt_double(a->value, val, sizeof(val)),
			us_fmt_double(a->score, score, sizeof(score)), a->reason,
			us_fmt_u64(a->time_ns, ns, sizeof(ns)),
		};

		if (us_table_add(t, cells) < 0)
			return -1;
	}
	return 0;
}

static int run_online(const struct us_cli_opts *o, Understudy__Api__AnomaliesRequest *req)
{
	if (!req->metric || !req->metric[0]) {
		fprintf(stderr, "understudy anomalies: --metric is required with a WORKLOAD\n");
		return US_EXIT_USAGE;
	}
	return us_cli_rpc_table(o, "anomalies", "/understudy.api.Anomalies/Run", &req->base,
				&understudy__api__anomalies_response__descriptor, alert_cols,
				sizeof(alert_cols) / sizeof(alert_cols[0]), alert_rows);
}

static const struct us_col cols[] = {
	{ "timestamp", 0 }, { "value", US_COL_NUM }, { "score", US_COL_NUM },
	{ "anomaly", US_COL_NUM }, { "reason", 0 },
};

static int add_row(struct us_table *t, const struct us_ts_series *s, size_t i,
		   const struct us_anomaly_result *r)
{
	char ts[CELL], val[CELL], score[CELL], reason[160] = "";
	const char *cells[] = { ts, val, score, r->anomaly ? "1" : "0", reason };

	us_tscsv_format_time(s->p[i].t_us, s->datetime, ts, sizeof(ts));
	snprintf(val, sizeof(val), "%.10g", s->p[i].v);
	snprintf(score, sizeof(score), "%.6f", r->score);
	if (r->anomaly)
		us_anomaly_reason(r, reason, sizeof(reason));
	return us_table_add(t, cells);
}

static int run(const struct us_cli_opts *o, const char *input, unsigned flags, long probation,
	       int reasons)
{
	struct us_anomaly_params p;
	struct us_anomaly_result r;
	struct us_anomaly *a = NULL;
	struct us_table *t = NULL;
	struct us_ts_series s;
	char err[1024];
	int rc = US_EXIT_FAIL;

	if (us_tscsv_read(input, flags, &s, err, sizeof(err)) < 0) {
		fprintf(stderr, "understudy anomalies: %s\n", err);
		return US_EXIT_USAGE;
	}
	us_anomaly_defaults(&p);
	p.probation = probation >= 0 ? (size_t)probation : us_anomaly_probation(s.n);
	/* why: the mean step (gaps and NAB's DST duplicates barely move it) */
	if (s.n > 1)
		p.season = us_anomaly_season((double)(s.p[s.n - 1].t_us - s.p[0].t_us) / 1e6 /
					     (double)(s.n - 1));
	if (!(a = us_anomaly_new(&p)) ||
	    !(t = us_table_new(cols, reasons || o->format == US_OUT_TABLE ? 5 : 4))) {
		fprintf(stderr, "understudy anomalies: out of memory\n");
		goto cleanup;
	}
	for (size_t i = 0; i < s.n; i++) {
		us_anomaly_step(a, s.p[i].v, &r);
		if (add_row(t, &s, i, &r) < 0) {
			fprintf(stderr, "understudy anomalies: out of memory\n");
			goto cleanup;
		}
	}
	us_table_print(t, o->format, stdout);
	rc = US_EXIT_OK;
cleanup:
	us_table_free(t);
	us_anomaly_free(a);
	us_tscsv_free(&s);
	return rc;
}

int us_cli_anomalies(const struct us_cli_opts *global, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "input", required_argument, NULL, 'i' },
		{ "reasons", no_argument, NULL, 'r' },
		{ "allow-duplicates", no_argument, NULL, 'd' },
		{ "probation", required_argument, NULL, 'p' },
		{ "metric", required_argument, NULL, 'm' },
		{ "field", required_argument, NULL, 'f' },
		{ "since", required_argument, NULL, 's' },
		{ "step", required_argument, NULL, 't' },
		{ "history", required_argument, NULL, 'H' },
		{ "help", no_argument, NULL, 'h' },
		US_CLI_COMMON_OPTIONS,
		{ 0 },
	};
	Understudy__Api__AnomaliesRequest req = UNDERSTUDY__API__ANOMALIES_REQUEST__INIT;
	struct us_cli_opts o = *global;
	const char *input = NULL;
	unsigned flags = 0;
	long probation = -1;
	int c, reasons = 0;
	char *end;

	optind = 1;
	while ((c = getopt_long(argc, argv, "i:o:h", opts, NULL)) != -1) {
		switch (c) {
		case 'i': input = optarg; break;
		case 'r': reasons = 1; break;
		case 'd': flags |= US_TSCSV_DUP_OK; break;
		case 'm': req.metric = optarg; break;
		case 'f': req.field = optarg; break;
		case 's': req.since = optarg; break;
		case 't': req.step = optarg; break;
		case 'H': req.history = optarg; break;
		case 'p':
			probation = strtol(optarg, &end, 10);
			if (*end || probation < 0) {
				fprintf(stderr, "understudy anomalies: --probation: not a count: %s\n", optarg);
				return US_EXIT_USAGE;
			}
			break;
		case 'h': anomalies_usage(stdout); return US_EXIT_OK;
		default:
			if (us_cli_common_opt(&o, c, optarg) == 1)
				break;
			anomalies_usage(stderr);
			return US_EXIT_USAGE;
		}
	}
	if (!input && optind == argc - 1) {
		req.workload = argv[optind];
		return run_online(&o, &req);
	}
	if (!input) {
		fprintf(stderr, "understudy anomalies: --input FILE.csv or a WORKLOAD is required\n");
		anomalies_usage(stderr);
		return US_EXIT_USAGE;
	}
	if (optind != argc) {
		fprintf(stderr, "understudy anomalies: unexpected argument '%s'\n", argv[optind]);
		return US_EXIT_USAGE;
	}
	return run(&o, input, flags, probation, reasons);
}
