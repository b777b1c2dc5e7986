/* `understudy command AGENT ACTION`: queues a command for an agent through
 * the API (Agents.Command) and, with --wait, follows it (Agents.CommandStatus)
 * until the agent answers: exit 0 done, 1 failed or expired, 3 when it is
 * still pending as the wait ends (the agent may be away; it stays queued). */
#include "cli.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api.pb-c.h"
#include "cli_output.h"
#include "clock.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

static void command_usage(FILE *out)
{
	fprintf(out,
		"usage: understudy command AGENT ACTION [--workload W] [--endpoint HOST:PORT]\n"
		"                          [--sample F] [--scale N] [--ttl SECONDS]\n"
		"                          [--wait SECONDS] [OPTIONS]\n"
		"\n"
		"Queues a command for AGENT; the coordinator sends it when the agent is\n"
		"connected and resends it until the agent answers or it expires (--ttl,\n"
		"default 600). ACTION is report_now (an interval at once), reload_config\n"
		"(reread the agent's config file), start_mirror (--workload, --endpoint,\n"
		"--sample in (0,1], --scale copies) or stop_mirror (--workload).\n"
		"Prints the command's id and state; --wait follows it up to SECONDS:\n"
		"exit 0 done, 1 failed or expired, 3 still pending when the wait ends.\n"
		US_CLI_COMMON_HELP);
}

static const struct us_col status_cols[] = {
	{ "id", US_COL_NUM }, { "agent", 0 }, { "action", 0 }, { "state", 0 },
	{ "sent", US_COL_NUM }, { "result", 0 },
};

static int parse_args(int argc, char **argv, struct us_cli_opts *o,
		      Understudy__Api__AgentCommandRequest *req, int *wait_s)
{
	static const struct option opts[] = {
		US_CLI_COMMON_OPTIONS,
		{ "workload", required_argument, NULL, 'w' },
		{ "endpoint", required_argument, NULL, 'e' },
		{ "sample", required_argument, NULL, 's' },
		{ "scale", required_argument, NULL, 'n' },
		{ "ttl", required_argument, NULL, 't' },
		{ "wait", required_argument, NULL, 'W' },
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
		case 'w': req->workload = optarg; break;
		case 'e': req->endpoint = optarg; break;
		case 's': req->sample = atof(optarg); break;
		case 'n': req->scale = (uint32_t)atoi(optarg); break;
		case 't': req->ttl_seconds = (uint32_t)atoi(optarg); break;
		case 'W': *wait_s = atoi(optarg); break;
		case 'h': command_usage(stdout); return 1;
		default: command_usage(stderr); return -1;
		}
	}
	if (optind != argc - 2 || *wait_s < 0) {
		fprintf(stderr, "understudy command: AGENT and ACTION are required\n");
		command_usage(stderr);
		return -1;
	}
	req->agent = argv[optind];
	req->action = argv[optind + 1];
	return 0;
}

static int status_row(struct us_table *t, const ProtobufCMessage *m)
{
	const Understudy__Api__CommandStatusResponse *r = (const void *)m;
	char id[24], sent[24];
	const char *cells[ARRAY_LEN(status_cols)] = {
		us_fmt_u64(r->id, id, sizeof(id)), r->agent, r->action, r->state,
		us_fmt_u64(r->sent_count, sent, sizeof(sent)), r->result,
	};

	return us_table_add(t, cells);
}

/* Polls until the command leaves `pending` or wait_s passes. */
static int follow(const struct us_cli_opts *o, uint64_t id, int wait_s, char *state,
		  size_t statelen)
{
	Understudy__Api__CommandStatusRequest req = UNDERSTUDY__API__COMMAND_STATUS_REQUEST__INIT;
	uint64_t deadline = us_mono_ns() + (uint64_t)wait_s * US_NS_PER_SEC;

	req.id = id;
	for (;;) {
		Understudy__Api__CommandStatusResponse *r = NULL;
		int rc = us_cli_rpc(o, "command", "/understudy.api.Agents/CommandStatus", &req.base,
				    &understudy__api__command_status_response__descriptor,
				    (ProtobufCMessage **)&r);

		if (rc != US_EXIT_OK)
			return rc;
		snprintf(state, statelen, "%s", r->state);
		protobuf_c_message_free_unpacked(&r->base, NULL);
		if (strcmp(state, "pending") != 0 || us_mono_ns() >= deadline)
			return US_EXIT_OK;
		usleep(200 * 1000);
	}
}

int us_cli_command(const struct us_cli_opts *global, int argc, char **argv)
{
	Understudy__Api__AgentCommandRequest req = UNDERSTUDY__API__AGENT_COMMAND_REQUEST__INIT;
	Understudy__Api__CommandStatusRequest status = UNDERSTUDY__API__COMMAND_STATUS_REQUEST__INIT;
	Understudy__Api__AgentCommandResponse *queued = NULL;
	struct us_cli_opts o = *global;
	char state[32] = "pending";
	int wait_s = 0, rc = parse_args(argc, argv, &o, &req, &wait_s);

	if (rc != 0)
		return rc > 0 ? US_EXIT_OK : US_EXIT_USAGE;
	rc = us_cli_rpc(&o, "command", "/understudy.api.Agents/Command", &req.base,
			&understudy__api__agent_command_response__descriptor,
			(ProtobufCMessage **)&queued);
	if (rc != US_EXIT_OK)
		return rc;
	status.id = queued->id;
	protobuf_c_message_free_unpacked(&queued->base, NULL);
	if (wait_s > 0 && (rc = follow(&o, status.id, wait_s, state, sizeof(state))) != US_EXIT_OK)
		return rc;
	rc = us_cli_rpc_table(&o, "command", "/understudy.api.Agents/CommandStatus", &status.base,
			      &understudy__api__command_status_response__descriptor, status_cols,
			      ARRAY_LEN(status_cols), status_row);
	if (rc != US_EXIT_OK || wait_s == 0)
		return rc;
	if (strcmp(state, "done") == 0)
		return US_EXIT_OK;
	return strcmp(state, "pending") == 0 ? US_EXIT_INCONCLUSIVE : US_EXIT_FAIL;
}
