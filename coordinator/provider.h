/* Providers: where instances come from. A small vtable (DESIGN.md,
 * Providers) with two implementations: `local` (coordinator/provider_local.c:
 * an instance is a network namespace + veth pair + cgroup on this machine)
 * and `exec` (coordinator/provider_exec.c: every operation runs a configured
 * command speaking JSON, for real clouds).
 *
 * Idempotency is the contract that lets the migration controller journal an
 * intent, crash, and run the same call again: the caller chooses the
 * instance id, and every operation on an id that is already in the wanted
 * state succeeds without doing anything twice (provision of an existing id
 * returns it; decommission of an absent id succeeds; start of a running
 * workload leaves it running). */
#ifndef US_PROVIDER_H
#define US_PROVIDER_H

#include <stddef.h>
#include <stdint.h>

#include "workload_def.h"

#define US_INSTANCE_ID_MAX 64     /* [a-z0-9-], at most 63 characters */
#define US_MAX_BACKENDS 8

enum us_instance_state {
	US_INSTANCE_ABSENT,       /* never provisioned, or decommissioned */
	US_INSTANCE_PROVISIONED,  /* exists, workload not running */
	US_INSTANCE_RUNNING,      /* workload process started */
};

struct us_instance {
	char id[US_INSTANCE_ID_MAX];
	char type[64];            /* instance type, e.g. "m5.large" */
	char address[64];         /* IPv4 the workload listens on */
	enum us_instance_state state;
	double provision_s;       /* measured provisioning time, seconds */
	/* local provider: the instance's cgroup v2 directory, which an agent
	 * workload can name to measure it; "" for exec */
	char cgroup[512];
	int pid;                  /* local: the workload's main process; 0 when none */
};

/* How deploy replicates the workload (issue 8, "replication modes"). */
enum us_repl_mode {
	US_REPL_MIRROR,           /* definition only; live traffic comes mirrored */
	US_REPL_CLONE,            /* data directories copied whole */
	US_REPL_SUBSET,           /* a sample of the data (size budget or hook) */
};

struct us_deploy_opts {
	enum us_repl_mode mode;
	double sample;            /* subset: fraction of the data, (0, 1]; 0 = use budget */
};

struct us_backend {
	char address[64];
	uint16_t port;
	uint32_t weight;          /* relative; 0 = no new connections */
};

struct us_provider;

/* Every operation returns 0 on success or -1 with a message in err naming
 * the instance and what failed. */
struct us_provider_ops {
	const char *name;
	int (*provision)(struct us_provider *p, const char *id, const char *type,
			 struct us_instance *out, char *err, size_t errlen);
	int (*deploy)(struct us_provider *p, const struct us_instance *in,
		      const struct us_workload_def *w, const struct us_deploy_opts *o,
		      char *err, size_t errlen);
	int (*start)(struct us_provider *p, const struct us_instance *in,
		     const struct us_workload_def *w, char *err, size_t errlen);
	int (*stop)(struct us_provider *p, const struct us_instance *in,
		    const struct us_workload_def *w, char *err, size_t errlen);
	/* 0 healthy; 1 not (yet) healthy, reason in err; -1 error */
	int (*health)(struct us_provider *p, const struct us_instance *in,
		      const struct us_workload_def *w, char *err, size_t errlen);
	/* Sets the weights of the workload's service (w->service) to exactly
	 * these backends, atomically; existing connections are left to finish. */
	int (*shift_traffic)(struct us_provider *p, const struct us_workload_def *w,
			     const struct us_backend *b, size_t n, char *err, size_t errlen);
	int (*decommission)(struct us_provider *p, const char *id, char *err, size_t errlen);
	/* Fills out; an unknown id is not an error: state US_INSTANCE_ABSENT. */
	int (*describe)(struct us_provider *p, const char *id, struct us_instance *out,
			char *err, size_t errlen);
	void (*free)(struct us_provider *p);
};

struct us_provider {
	const struct us_provider_ops *ops;
	void *impl;
};

/* `provider:` of the coordinator's config. */
struct us_provider_config {
	char kind[16];                    /* "local" (default) or "exec" */
	struct {
		double scale;                     /* vCPUs and GiB × scale, default 0.25 */
		char address_range[64];           /* CIDR, default 10.203.0.0/16 */
		char prefix[16];                  /* netns/veth/cgroup prefix, default "us-" */
		char state_dir[4096];             /* "" = DATA_DIR/instances */
		char catalog[4096];               /* "" = default catalog */
	} local;
	struct {
		char command[4096];               /* one command; operation in the request */
		uint64_t timeout_ns;              /* per call, default 300 s */
	} exec;
};

void us_provider_config_defaults(struct us_provider_config *c);
/* Opens the configured provider; -1 with a message in err. */
int us_provider_open(const struct us_provider_config *c, const char *data_dir,
		     struct us_provider **out, char *err, size_t errlen);
void us_provider_free(struct us_provider *p);

const char *us_instance_state_name(enum us_instance_state s);
const char *us_repl_mode_name(enum us_repl_mode m);
int us_repl_mode_parse(const char *s, enum us_repl_mode *out);

/* Implementations (called by us_provider_open). */
int us_provider_local_open(const struct us_provider_config *c, const char *data_dir,
			   struct us_provider **out, char *err, size_t errlen);
int us_provider_exec_open(const struct us_provider_config *c, struct us_provider **out,
			  char *err, size_t errlen);

#endif
