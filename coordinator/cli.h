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

/* Verbs that call the coordinator's API; o holds the global options
 * (cli_output.h), which a verb's own options may override. */
struct us_cli_opts;
int us_cli_agents(const struct us_cli_opts *o, int argc, char **argv);
int us_cli_workloads(const struct us_cli_opts *o, int argc, char **argv);
int us_cli_status(const struct us_cli_opts *o, int argc, char **argv);
int us_cli_series(const struct us_cli_opts *o, int argc, char **argv);
int us_cli_command(const struct us_cli_opts *o, int argc, char **argv);
int us_cli_compare(const struct us_cli_opts *o, int argc, char **argv);
int us_cli_anomalies(const struct us_cli_opts *o, int argc, char **argv);
int us_cli_recommend(const struct us_cli_opts *o, int argc, char **argv);
int us_cli_forecast(const struct us_cli_opts *o, int argc, char **argv);
int us_cli_plan(const struct us_cli_opts *o, int argc, char **argv);
/* cli_control.c: instances, shadows and migrations */
int us_cli_deploy(const struct us_cli_opts *o, int argc, char **argv);
int us_cli_instances(const struct us_cli_opts *o, int argc, char **argv);
int us_cli_decommission(const struct us_cli_opts *o, int argc, char **argv);
int us_cli_shadow(const struct us_cli_opts *o, int argc, char **argv);
int us_cli_migrate(const struct us_cli_opts *o, int argc, char **argv);
int us_cli_approve(const struct us_cli_opts *o, int argc, char **argv);
int us_cli_rollback(const struct us_cli_opts *o, int argc, char **argv);
int us_cli_migrations(const struct us_cli_opts *o, int argc, char **argv);

#endif
