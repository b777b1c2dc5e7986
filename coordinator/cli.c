/* understudy: the command-line client. Global options, verb dispatch and the
 * verbs that need no coordinator (keygen). Exit status follows DESIGN.md:
 * 0 success, 1 failure, 2 usage or input error, 3 inconclusive. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "cli_output.h"
#include "keys.h"

struct verb {
	const char *name;
	const char *summary;
	int (*run)(int argc, char **argv);
	int (*run_api)(const struct us_cli_opts *o, int argc, char **argv); /* instead of run */
};

static void keygen_usage(FILE *out)
{
	fprintf(out,
		"usage: understudy keygen --out DIR NAME\n"
		"\n"
		"Writes a CURVE keypair: DIR/NAME.key (secret, mode 0600) and DIR/NAME.pub.\n"
		"For an agent, NAME is its agent id: copy NAME.pub into the coordinator's\n"
		"agents directory to let it connect. Existing files are never overwritten.\n");
}

static int verb_keygen(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "out", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *dir = NULL;
	char err[1024];
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
		switch (c) {
		case 'o': dir = optarg; break;
		case 'h': keygen_usage(stdout); return US_EXIT_OK;
		default: keygen_usage(stderr); return US_EXIT_USAGE;
		}
	}
	if (!dir || optind != argc - 1) {
		fprintf(stderr, "understudy keygen: %s\n",
			!dir ? "--out DIR is required" : "exactly one NAME is required");
		keygen_usage(stderr);
		return US_EXIT_USAGE;
	}
	if (us_keys_generate(dir, argv[optind], err, sizeof(err)) < 0) {
		fprintf(stderr, "understudy keygen: %s\n", err);
		return US_EXIT_FAIL;
	}
	printf("wrote %s/%s.key (secret, 0600) and %s/%s.pub\n", dir, argv[optind], dir,
	       argv[optind]);
	return US_EXIT_OK;
}

static const struct verb verbs[] = {
	{ "keygen", "write a CURVE keypair for an agent or the coordinator", verb_keygen, NULL },
	{ "inspect", "print agents, workloads and latest figures from a store file", us_cli_inspect, NULL },
	{ "agents", "list the agents the coordinator knows", NULL, us_cli_agents },
	{ "workloads", "list the workloads the agents observe", NULL, us_cli_workloads },
	{ "status", "a workload's role, agent and last interval's figures", NULL, us_cli_status },
	{ "series", "one metric of a workload over time", NULL, us_cli_series },
	{ "command", "queue a command for an agent and follow it", NULL, us_cli_command },
	{ "compare", "production vs shadow: KPI intervals, score, verdict", NULL, us_cli_compare },
	{ "anomalies", "anomaly alerts over a stored metric, or a timestamp,value CSV", NULL, us_cli_anomalies },
	{ "recommend", "rightsizing: instance types that fit a workload, cheapest first", NULL, us_cli_recommend },
	{ "forecast", "forecast a timestamp,value CSV with an automatically chosen model", NULL, us_cli_forecast },
	{ "plan", "capacity plan: instances per step and pre-allocation requests", NULL, us_cli_plan },
	{ "deploy", "ask for a production instance of a workload on an instance type", NULL, us_cli_deploy },
	{ "instances", "list the instances the coordinator manages", NULL, us_cli_instances },
	{ "decommission", "ask for an instance to be stopped and released", NULL, us_cli_decommission },
	{ "shadow", "start, stop or list a workload's shadow instance", NULL, us_cli_shadow },
	{ "migrate", "start a migration to another instance type and follow it", NULL, us_cli_migrate },
	{ "approve", "approve a workload's migration to shift traffic", NULL, us_cli_approve },
	{ "rollback", "roll a workload's migration back", NULL, us_cli_rollback },
	{ "migrations", "list migrations: state, traffic step, transitions", NULL, us_cli_migrations },
};

static void usage(FILE *out)
{
	fprintf(out,
		"usage: understudy [--version] [--server ADDR] [--token-file F] [--ca F]\n"
		"                  [-o table|json|csv] VERB [ARGS]\n"
		"\n"
		"verbs:\n");
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
		fprintf(out, "  %-12s %s\n", verbs[i].name, verbs[i].summary);
	fprintf(out,
		"\n"
		"`understudy VERB --help` describes a verb. Exit status: 0 success,\n"
		"1 failure, 2 usage or input error, 3 inconclusive.\n");
}

/* A global option taking a value (--server ADDR or --server=ADDR): 1 if
 * argv[*i] was one (applied, *i advanced past its value), 0 if not, -1 if bad. */
static int global_value_opt(struct us_cli_opts *o, int argc, char **argv, int *i)
{
	static const struct { const char *name; int code; } names[] = {
		{ "--server", 0x100 }, { "--token-file", 0x101 }, { "--ca", 0x102 },
		{ "--timeout", 0x103 }, { "--output", 'o' }, { "-o", 'o' },
	};

	for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); k++) {
		size_t n = strlen(names[k].name);

		if (strncmp(argv[*i], names[k].name, n) != 0)
			continue;
		if (argv[*i][n] == '=')
			return us_cli_common_opt(o, names[k].code, argv[*i] + n + 1) < 0 ? -1 : 1;
		if (argv[*i][n] != '\0')
			continue;
		if (*i + 1 >= argc) {
			fprintf(stderr, "understudy: %s needs a value\n", names[k].name);
			return -1;
		}
		*i += 1;
		return us_cli_common_opt(o, names[k].code, argv[*i]) < 0 ? -1 : 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct us_cli_opts opts;
	int i = 1, r;

	us_cli_opts_defaults(&opts);

	/* global options come before the verb; verbs parse their own */
	for (; i < argc && argv[i][0] == '-'; i++) {
		if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			usage(stdout);
			return US_EXIT_OK;
		}
		if (strcmp(argv[i], "--version") == 0) {
			printf("understudy %s\n", US_VERSION);
			return US_EXIT_OK;
		}
		if ((r = global_value_opt(&opts, argc, argv, &i)) != 0) {
			if (r < 0)
				return US_EXIT_USAGE;
			continue;
		}
		fprintf(stderr, "understudy: unknown option '%s'\n", argv[i]);
		usage(stderr);
		return US_EXIT_USAGE;
	}
	if (i >= argc) {
		usage(stderr);
		return US_EXIT_USAGE;
	}
	for (size_t v = 0; v < sizeof(verbs) / sizeof(verbs[0]); v++)
		if (strcmp(argv[i], verbs[v].name) == 0)
			return verbs[v].run_api ? verbs[v].run_api(&opts, argc - i, argv + i)
						: verbs[v].run(argc - i, argv + i);
	fprintf(stderr, "understudy: unknown verb '%s'\n", argv[i]);
	usage(stderr);
	return US_EXIT_USAGE;
}
