/* `understudy agents`, `understudy workloads` and `understudy status
 * WORKLOAD`: what the coordinator knows about the fleet, from the API
 * (Agents.List, Workloads.List, Workloads.Describe). */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

#include "api.pb-c.h"
#include "cli_output.h"

#define CELL 64
#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Parses the common options plus --agent (when agent is not NULL); returns
 * -1 after printing usage on an error, 1 after --help, 0 to go on. */
static int parse_opts(int argc, char **argv, struct us_cli_opts *o, const char **agent,
		      void (*usage)(FILE *))
{
	static const struct option opts[] = {
		US_CLI_COMMON_OPTIONS,
		{ "agent", required_argument, NULL, 'a' },
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
		if (c == 'a' && agent) {
			*agent = optarg;
		} else if (c == 'h') {
			usage(stdout);
			return 1;
		} else {
			usage(stderr);
			return -1;
		}
	}
	return 0;
}

/* ---- agents ----------------------------------------------------------------- */

static void agents_usage(FILE *out)
{
	fprintf(out,
		"usage: understudy agents [OPTIONS]\n"
		"\n"
		"Lists the agents the coordinator knows: state (live or stale), host,\n"
		"workloads observed, last contact, envelopes lost to a full spool.\n"
		US_CLI_COMMON_HELP);
}

static const struct us_col agent_cols[] = {
	{ "agent", 0 }, { "state", 0 }, { "hostname", 0 }, { "workloads", US_COL_NUM },
	{ "last_seen", 0 }, { "spool_dropped", US_COL_NUM }, { "version", 0 },
	{ "kernel", 0 }, { "last_seen_ns", US_COL_NUM | US_COL_MACHINE },
};

static int agent_row(struct us_table *t, const Understudy__Api__Agent *a)
{
	char n[CELL], seen[CELL], dropped[CELL], seen_ns[CELL];
	const char *cells[ARRAY_LEN(agent_cols)] = {
		a->name, a->state, a->hostname, us_fmt_u64(a->workloads, n, sizeof(n)),
		us_fmt_time(a->last_seen_ns, seen, sizeof(seen)),
		us_fmt_u64(a->spool_dropped_total, dropped, sizeof(dropped)), a->agent_version,
		a->kernel_release, us_fmt_u64(a->last_seen_ns, seen_ns, sizeof(seen_ns)),
	};

	return us_table_add(t, cells);
}

static int agent_rows(struct us_table *t, const ProtobufCMessage *m)
{
	const Understudy__Api__AgentsListResponse *r = (const Understudy__Api__AgentsListResponse *)m;

	for (size_t i = 0; i < r->n_agents; i++)
		if (agent_row(t, r->agents[i]) < 0)
			return -1;
	return 0;
}

int us_cli_agents(const struct us_cli_opts *global, int argc, char **argv)
{
	Understudy__Api__AgentsListRequest req = UNDERSTUDY__API__AGENTS_LIST_REQUEST__INIT;
	struct us_cli_opts o = *global;
	int rc = parse_opts(argc, argv, &o, NULL, agents_usage);

	if (rc != 0)
		return rc > 0 ? US_EXIT_OK : US_EXIT_USAGE;
	if (optind != argc) {
		agents_usage(stderr);
		return US_EXIT_USAGE;
	}
	return us_cli_rpc_table(&o, "agents", "/understudy.api.Agents/List", &req.base,
				&understudy__api__agents_list_response__descriptor, agent_cols,
				ARRAY_LEN(agent_cols), agent_rows);
}

/* ---- workloads -------------------------------------------------------------- */

static void workloads_usage(FILE *out)
{
	fprintf(out,
		"usage: understudy workloads [--agent AGENT] [OPTIONS]\n"
		"\n"
		"Lists the workloads the agents observe (one row per agent and workload):\n"
		"role, cgroup, ports, labels and the end of the last interval stored.\n"
		"  --agent AGENT      only this agent's workloads\n"
		US_CLI_COMMON_HELP);
}

static const struct us_col workload_cols[] = {
	{ "workload", 0 }, { "role", 0 }, { "agent", 0 }, { "cgroup_id", US_COL_NUM },
	{ "ports", 0 }, { "labels", 0 }, { "last_interval", 0 },
	{ "last_interval_end_ns", US_COL_NUM | US_COL_MACHINE }, { "cgroup_path", US_COL_MACHINE },
};

static int workload_row(struct us_table *t, const Understudy__Api__Workload *w)
{
	char cg[CELL], last[CELL], last_ns[CELL];
	const char *cells[ARRAY_LEN(workload_cols)] = {
		w->name, w->role, w->agent, us_fmt_u64(w->cgroup_id, cg, sizeof(cg)), w->ports,
		w->labels, us_fmt_time(w->last_interval_end_ns, last, sizeof(last)),
		us_fmt_u64(w->last_interval_end_ns, last_ns, sizeof(last_ns)), w->cgroup_path,
	};

	return us_table_add(t, cells);
}

static int workload_rows(struct us_table *t, const ProtobufCMessage *m)
{
	const Understudy__Api__WorkloadsListResponse *r = (const Understudy__Api__WorkloadsListResponse *)m;

	for (size_t i = 0; i < r->n_workloads; i++)
		if (workload_row(t, r->workloads[i]) < 0)
			return -1;
	return 0;
}

int us_cli_workloads(const struct us_cli_opts *global, int argc, char **argv)
{
	Understudy__Api__WorkloadsListRequest req = UNDERSTUDY__API__WORKLOADS_LIST_REQUEST__INIT;
	struct us_cli_opts o = *global;
	const char *agent = NULL;
	int rc = parse_opts(argc, argv, &o, &agent, workloads_usage);

	if (rc != 0)
		return rc > 0 ? US_EXIT_OK : US_EXIT_USAGE;
	if (optind != argc) {
		workloads_usage(stderr);
		return US_EXIT_USAGE;
	}
	if (agent)
		req.agent = (char *)agent;
	return us_cli_rpc_table(&o, "workloads", "/understudy.api.Workloads/List", &req.base,
				&understudy__api__workloads_list_response__descriptor, workload_cols,
				ARRAY_LEN(workload_cols), workload_rows);
}

/* ---- status ----------------------------------------------------------------- */

static void status_usage(FILE *out)
{
	fprintf(out,
		"usage: understudy status WORKLOAD [OPTIONS]\n"
		"\n"
		"Shows where WORKLOAD runs (role, agent) and the figures of its last\n"
		"interval: one row per metric; histograms give count, mean and quantiles,\n"
		"counters their increase over the interval (value).\n"
		US_CLI_COMMON_HELP);
}

static const struct us_col kpi_cols[] = {
	{ "workload", 0 }, { "role", 0 }, { "agent", 0 }, { "interval_end", 0 },
	{ "metric", 0 }, { "unit", 0 }, { "count", US_COL_NUM }, { "mean", US_COL_NUM },
	{ "p50", US_COL_NUM }, { "p90", US_COL_NUM }, { "p99", US_COL_NUM },
	{ "p999", US_COL_NUM }, { "value", US_COL_NUM },
	{ "interval_end_ns", US_COL_NUM | US_COL_MACHINE },
};

static int kpi_row(struct us_table *t, const Understudy__Api__Workload *w,
		   const Understudy__Api__Kpi *k)
{
	char end[CELL], end_ns[CELL], n[CELL], mean[CELL], p50[CELL], p90[CELL], p99[CELL],
	     p999[CELL], value[CELL];
	bool h = k->histogram;
	const char *cells[ARRAY_LEN(kpi_cols)] = {
		w->name, w->role, w->agent, us_fmt_time(w->last_interval_end_ns, end, sizeof(end)),
		k->metric, k->unit, h ? us_fmt_u64(k->count, n, sizeof(n)) : "",
		h ? us_fmt_double(k->mean, mean, sizeof(mean)) : "",
		h ? us_fmt_double(k->p50, p50, sizeof(p50)) : "",
		h ? us_fmt_double(k->p90, p90, sizeof(p90)) : "",
		h ? us_fmt_double(k->p99, p99, sizeof(p99)) : "",
		h ? us_fmt_double(k->p999, p999, sizeof(p999)) : "",
		h ? "" : us_fmt_u64(k->value, value, sizeof(value)),
		us_fmt_u64(w->last_interval_end_ns, end_ns, sizeof(end_ns)),
	};

	return us_table_add(t, cells);
}

/* An instance with no interval yet still gets a row, so it is visible. */
static int status_rows(struct us_table *t, const Understudy__Api__WorkloadStatus *st)
{
	Understudy__Api__Kpi none = UNDERSTUDY__API__KPI__INIT;

	if (st->n_kpis == 0) {
		none.metric = (char *)"-";
		none.unit = (char *)"-";
		return kpi_row(t, st->workload, &none);
	}
	for (size_t i = 0; i < st->n_kpis; i++)
		if (kpi_row(t, st->workload, st->kpis[i]) < 0)
			return -1;
	return 0;
}

static int instance_rows(struct us_table *t, const ProtobufCMessage *m)
{
	const Understudy__Api__WorkloadsDescribeResponse *r = (const Understudy__Api__WorkloadsDescribeResponse *)m;

	for (size_t i = 0; i < r->n_instances; i++)
		if (status_rows(t, r->instances[i]) < 0)
			return -1;
	return 0;
}

int us_cli_status(const struct us_cli_opts *global, int argc, char **argv)
{
	Understudy__Api__WorkloadsDescribeRequest req =
		UNDERSTUDY__API__WORKLOADS_DESCRIBE_REQUEST__INIT;
	struct us_cli_opts o = *global;
	int rc = parse_opts(argc, argv, &o, NULL, status_usage);

	if (rc != 0)
		return rc > 0 ? US_EXIT_OK : US_EXIT_USAGE;
	if (optind != argc - 1) {
		fprintf(stderr, "understudy status: exactly one WORKLOAD is required\n");
		status_usage(stderr);
		return US_EXIT_USAGE;
	}
	req.name = argv[optind];
	return us_cli_rpc_table(&o, "status", "/understudy.api.Workloads/Describe", &req.base,
				&understudy__api__workloads_describe_response__descriptor, kpi_cols,
				ARRAY_LEN(kpi_cols), instance_rows);
}
