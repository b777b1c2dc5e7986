/* Workload definitions (/etc/understudy/workloads/NAME.yaml): what a
 * provider needs to run a copy of a workload on another instance: command,
 * environment, files and data to copy, service port, health check, how to
 * stop it, and the service address clients use (traffic shift). Parsing and
 * validation only; providers act on it.
 *
 * Strings in args, env values and workdir may use ${INSTANCE_DIR} (the
 * instance's copy of the files), ${INSTANCE_ID}, ${ADDRESS} and ${PORT};
 * us_workload_expand substitutes them. */
#ifndef US_WORKLOAD_DEF_H
#define US_WORKLOAD_DEF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define US_WD_MAX_ARGS 64
#define US_WD_MAX_ENV 64
#define US_WD_MAX_PATHS 32
#define US_WD_STR 1024
#define US_WD_MAX_ALLOW 32

/* A destination the workload may reach from a local instance (egress
 * guard, coordinator/egress.h). */
struct us_wd_dest {
	char address[16];                     /* IPv4 "a.b.c.d" */
	uint16_t port;                        /* 0 = every port */
};

enum us_health_kind { US_HEALTH_TCP, US_HEALTH_HTTP };

struct us_workload_def {
	char name[128];
	char command[US_WD_STR];              /* absolute path, or found in PATH */
	char args[US_WD_MAX_ARGS][US_WD_STR];
	size_t nargs;
	char env_keys[US_WD_MAX_ENV][128];
	char env_values[US_WD_MAX_ENV][US_WD_STR];
	size_t nenv;
	char workdir[US_WD_STR];              /* default ${INSTANCE_DIR} */
	/* copied into the instance directory under their base names on every
	 * deploy (configuration, site) */
	char files[US_WD_MAX_PATHS][US_WD_STR];
	size_t nfiles;
	/* data directories: copied whole (clone), sampled (subset), not at all
	 * (mirror) */
	char data[US_WD_MAX_PATHS][US_WD_STR];
	size_t ndata;
	uint64_t subset_budget_bytes;         /* subset without --sample; default 100 MiB */
	char subset_hook[US_WD_STR];          /* optional: command that writes the subset */
	uint16_t port;                        /* service port the workload listens on */
	struct {
		enum us_health_kind kind;         /* http when path is set, else tcp */
		char path[256];                   /* "/healthz" */
		uint64_t interval_ns;             /* default 1 s */
		uint64_t timeout_ns;              /* per check, default 2 s */
		uint64_t start_timeout_ns;        /* healthy within, default 60 s */
	} health;
	struct {
		int signal;                       /* default SIGTERM */
		uint64_t grace_ns;                /* then SIGKILL; default 10 s */
	} stop;
	struct {                              /* the address clients connect to */
		char address[64];                 /* IPv4 virtual service address; "" = none */
		uint16_t port;                    /* default: port */
		char clients_cgroup[4096];        /* local: cgroup v2 dir of the clients */
	} service;
	/* local: the only non-loopback destinations the workload may connect
	 * or send to (allow_destinations); none by default */
	struct us_wd_dest allow[US_WD_MAX_ALLOW];
	size_t nallow;
	char source[4096];                    /* file it came from, for messages */
};

void us_workload_def_defaults(struct us_workload_def *w);
/* -1 with "FILE:LINE: FIELD: what is wrong" in err. */
int us_workload_def_load(const char *path, struct us_workload_def *w, char *err, size_t errlen);
int us_workload_def_parse(const char *name, const void *data, size_t len,
			  struct us_workload_def *w, char *err, size_t errlen);

struct us_wd_vars {
	const char *instance_dir, *instance_id, *address;
	uint16_t port;
};
/* Substitutes ${...} in in; -1 when out is too small or a variable is
 * unknown (message in err). */
int us_workload_expand(const char *in, const struct us_wd_vars *v, char *out, size_t outlen,
		       char *err, size_t errlen);

#endif
