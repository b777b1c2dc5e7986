/* The `understudy` CLI's shared pieces: exit codes (DESIGN.md) and the verbs
 * that live in their own files. */
#ifndef US_CLI_H
#define US_CLI_H

enum {
	US_EXIT_OK = 0,
	US_EXIT_FAIL = 1,          /* failure, or a regression */
	US_EXIT_USAGE = 2,         /* usage or input error */
	US_EXIT_INCONCLUSIVE = 3,
};

int us_cli_inspect(int argc, char **argv);

#endif
