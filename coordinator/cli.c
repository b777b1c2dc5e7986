/* understudy: the command-line client. Global options, verb dispatch and the
 * verbs that need no coordinator (keygen). Exit status follows DESIGN.md:
 * 0 success, 1 failure, 2 usage or input error, 3 inconclusive. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "keys.h"

struct verb {
	const char *name;
	const char *summary;
	int (*run)(int argc, char **argv);
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
	{ "keygen", "write a CURVE keypair for an agent or the coordinator", verb_keygen },
	{ "inspect", "print agents, workloads and latest figures from a store file", us_cli_inspect },
};

static void usage(FILE *out)
{
	fprintf(out,
		"usage: understudy [--version] VERB [ARGS]\n"
		"\n"
		"verbs:\n");
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
		fprintf(out, "  %-10s %s\n", verbs[i].name, verbs[i].summary);
	fprintf(out,
		"\n"
		"`understudy VERB --help` describes a verb. Exit status: 0 success,\n"
		"1 failure, 2 usage or input error, 3 inconclusive.\n");
}

int main(int argc, char **argv)
{
	int i = 1;

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
			return verbs[v].run(argc - i, argv + i);
	fprintf(stderr, "understudy: unknown verb '%s'\n", argv[i]);
	usage(stderr);
	return US_EXIT_USAGE;
}
