/* us-bench-agent: options and subcommands shared by its source files. */
#ifndef US_BENCH_AGENT_H
#define US_BENCH_AGENT_H

struct opts {
	long rounds, seconds, pairs, period_us;
	int cpu;
	const char *cgroup, *dir;
};

int cmd_storm(const struct opts *o);
int cmd_floor(const struct opts *o);

#endif
