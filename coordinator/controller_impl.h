/* What the controller's files share (controller.c: the loop, instances and
 * weights; migrate.c: the migration state machine; dropin.c: the agent's
 * drop-in workloads; planner.c: the capacity plans). Not for use outside the controller. */
#ifndef US_CONTROLLER_IMPL_H
#define US_CONTROLLER_IMPL_H

#include <pthread.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>

#include "controller.h"
#include "policy.h"
#include "workload_def.h"

#define CTL_MAX_DEFS 32
#define CTL_MAX_SERVICES 64

struct inst_row {
	char id[US_INSTANCE_ID_MAX];
	char workload[128];
	char role[16];             /* production | shadow | candidate | retired */
	char type[64];
	char mode[16];
	char desired[16];          /* running | absent */
	char state[16];            /* pending | provisioned | starting | running | failed | absent */
	char address[64];
	char cgroup[512];
	char error[512];
	double sample;
	int scale;
	int64_t migration_id;
	uint64_t absent_after_ns, created_ns, updated_ns;
};

struct mig_row {
	int64_t id;
	char workload[128];
	char policy[64];
	char from_instance[US_INSTANCE_ID_MAX];
	char to_type[64];
	char shadow_instance[US_INSTANCE_ID_MAX];
	char to_instance[US_INSTANCE_ID_MAX];
	char state[16];
	char shadow_mode[16];
	char reason[512];
	int step;
	uint64_t state_since_ns;
	bool force, approved, rollback_requested;
	double baseline_p99_ns, baseline_error;
};

/* A workload definition loaded for this pass. */
struct def_slot {
	char name[128];
	struct us_workload_def *def;    /* NULL: did not load (err says why) */
	char err[512];
};

/* Weights last given to a service, so they are set again only on change
 * (and once after a start: the set is empty then). */
struct applied_service {
	char workload[128];
	struct us_backend b[US_MAX_BACKENDS];
	size_t n;
};

struct us_controller {
	struct us_controller_config cfg;
	char db_path[4096], data_dir[4096], workloads_dir[4096], policies_path[4096];
	char agent[128], dropin_dir[4096];
	struct us_provider_config provider_cfg;
	struct us_provider *prov;
	sqlite3 *db;
	struct us_policy_set *policies;
	char policies_err[512];
	struct def_slot defs[CTL_MAX_DEFS];
	size_t ndefs;
	struct applied_service applied[CTL_MAX_SERVICES];
	size_t napplied;
	struct { int64_t id; uint64_t at_ns; } evals[16]; /* last validation per migration */
	uint64_t now_ns;           /* of this pass */
	uint64_t plans_checked_ns; /* planner.c: when plans were last checked for due ones */
	pthread_t thread;
	int stop_fd[2];
	bool thread_started;
};

/* controller.c */
const struct us_workload_def *us_ctl_def(struct us_controller *c, const char *workload,
					 const char **why);
int us_ctl_exec(struct us_controller *c, const char *sql, char *err, size_t errlen);
int us_ctl_instances(struct us_controller *c, const char *where, const char *arg,
		     struct inst_row **out, size_t *n);
int us_ctl_instance(struct us_controller *c, const char *id, struct inst_row *out);

/* migrate.c: advances every active migration one pass. */
void us_ctl_migrations_pass(struct us_controller *c);
/* The share (percent) of new connections the migration's new instance gets
 * now, or -1 when the migration does not steer traffic. */
double us_ctl_migration_share(struct us_controller *c, const struct mig_row *m);
int us_ctl_active_migrations(struct us_controller *c, struct mig_row **out, size_t *n);

/* dropin.c: the agent's drop-in workloads for the running instances. */
void us_ctl_dropins_pass(struct us_controller *c);

/* planner.c: recomputes the capacity plan of each workload with a
 * production instance when its last one is plan_interval old. */
void us_ctl_plans_pass(struct us_controller *c);

#endif
