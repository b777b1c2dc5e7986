/* The controller's loop, its store access, the instances' reconciliation
 * toward their desired state, and the services' traffic weights; see
 * controller.h. Migrations are in migrate.c, agent drop-ins in dropin.c. */
#include "controller_impl.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"

/* A failed instance is tried again this long after its last attempt. */
#define RETRY_NS (5 * US_NS_PER_SEC)
/* A running instance's process is checked this often. */
#define LIVENESS_NS (2 * US_NS_PER_SEC)

/* ---- store helpers -------------------------------------------------------- */

int us_ctl_exec(struct us_controller *c, const char *sql, char *err, size_t errlen)
{
	char *msg = NULL;

	if (sqlite3_exec(c->db, sql, NULL, NULL, &msg) == SQLITE_OK)
		return 0;
	snprintf(err, errlen, "store: %s", msg ? msg : sqlite3_errmsg(c->db));
	sqlite3_free(msg);
	return -1;
}

static void copy_col(sqlite3_stmt *q, int col, char *out, size_t len)
{
	const unsigned char *t = sqlite3_column_text(q, col);

	snprintf(out, len, "%s", t ? (const char *)t : "");
}

static void read_instance(sqlite3_stmt *q, struct inst_row *r)
{
	memset(r, 0, sizeof(*r));
	copy_col(q, 0, r->id, sizeof(r->id));
	copy_col(q, 1, r->workload, sizeof(r->workload));
	copy_col(q, 2, r->role, sizeof(r->role));
	copy_col(q, 3, r->type, sizeof(r->type));
	copy_col(q, 4, r->mode, sizeof(r->mode));
	copy_col(q, 5, r->desired, sizeof(r->desired));
	copy_col(q, 6, r->state, sizeof(r->state));
	copy_col(q, 7, r->address, sizeof(r->address));
	copy_col(q, 8, r->cgroup, sizeof(r->cgroup));
	copy_col(q, 9, r->error, sizeof(r->error));
	r->sample = sqlite3_column_double(q, 10);
	r->scale = sqlite3_column_int(q, 11);
	r->migration_id = sqlite3_column_int64(q, 12);
	r->absent_after_ns = (uint64_t)sqlite3_column_int64(q, 13);
	r->created_ns = (uint64_t)sqlite3_column_int64(q, 14);
	r->updated_ns = (uint64_t)sqlite3_column_int64(q, 15);
}

#define INSTANCE_COLS "id, workload, role, type, mode, desired, state, address, cgroup, " \
	"error, sample, scale, migration_id, absent_after_ns, created_ns, updated_ns"

/* Rows matching "WHERE <where>" (one optional text parameter), oldest first;
 * *out is malloc'd. */
int us_ctl_instances(struct us_controller *c, const char *where, const char *arg,
		     struct inst_row **out, size_t *n)
{
	char sql[512];
	sqlite3_stmt *q = NULL;
	struct inst_row *v = NULL, *nv;
	size_t cap = 0;
	int rc = -1, s;

	*n = 0;
	snprintf(sql, sizeof(sql), "SELECT " INSTANCE_COLS " FROM instances WHERE %s "
		 "ORDER BY created_ns, id", where);
	if (sqlite3_prepare_v2(c->db, sql, -1, &q, NULL) != SQLITE_OK)
		goto cleanup;
	if (arg)
		sqlite3_bind_text(q, 1, arg, -1, SQLITE_STATIC);
	while ((s = sqlite3_step(q)) == SQLITE_ROW) {
		if (*n == cap) {
			cap = cap ? cap * 2 : 8;
			if (!(nv = realloc(v, cap * sizeof(*v))))
				goto cleanup;
			v = nv;
		}
		read_instance(q, &v[(*n)++]);
	}
	if (s != SQLITE_DONE)
		goto cleanup;
	rc = 0;
cleanup:
	if (rc < 0) {
		us_warn("controller: reading instances: %s", sqlite3_errmsg(c->db));
		free(v);
		v = NULL;
		*n = 0;
	}
	sqlite3_finalize(q);
	*out = v;
	return rc;
}

/* 1 found, 0 not, -1 error. */
int us_ctl_instance(struct us_controller *c, const char *id, struct inst_row *out)
{
	struct inst_row *v;
	size_t n;

	if (us_ctl_instances(c, "id = ?1", id, &v, &n) < 0)
		return -1;
	if (n)
		*out = v[0];
	free(v);
	return n ? 1 : 0;
}

/* Records what the provider did to an instance. */
static void instance_update(struct us_controller *c, const struct inst_row *r,
			    const char *state, const struct us_instance *in, double provision_s,
			    const char *error)
{
	sqlite3_stmt *q = NULL;
	bool ok = false;

	if (sqlite3_prepare_v2(c->db,
		"UPDATE instances SET state = ?2, error = ?3, updated_ns = ?4,"
		" address = coalesce(?5, address), cgroup = coalesce(?6, cgroup),"
		" provision_s = coalesce(?7, provision_s) WHERE id = ?1", -1, &q, NULL) != SQLITE_OK)
		goto cleanup;
	sqlite3_bind_text(q, 1, r->id, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 2, state, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 3, error ? error : "", -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 4, (int64_t)c->now_ns);
	if (in) {
		sqlite3_bind_text(q, 5, in->address, -1, SQLITE_STATIC);
		sqlite3_bind_text(q, 6, in->cgroup, -1, SQLITE_STATIC);
	}
	if (provision_s > 0)
		sqlite3_bind_double(q, 7, provision_s);
	ok = sqlite3_step(q) == SQLITE_DONE;
	if (ok && strcmp(state, r->state) != 0)
		us_info("instance %s (%s %s): %s -> %s%s%s", r->id, r->workload, r->type, r->state,
			state, error && error[0] ? ": " : "", error ? error : "");
cleanup:
	if (!ok)
		us_warn("controller: instance %s: %s", r->id, sqlite3_errmsg(c->db));
	sqlite3_finalize(q);
}

/* ---- workload definitions (loaded once per pass) ------------------------- */

const struct us_workload_def *us_ctl_def(struct us_controller *c, const char *workload,
					 const char **why)
{
	struct def_slot *s;
	char path[4400];

	for (size_t i = 0; i < c->ndefs; i++)
		if (strcmp(c->defs[i].name, workload) == 0) {
			*why = c->defs[i].err;
			return c->defs[i].def;
		}
	if (c->ndefs == CTL_MAX_DEFS) {
		*why = "too many workloads in one pass";
		return NULL;
	}
	s = &c->defs[c->ndefs++];
	memset(s, 0, sizeof(*s));
	snprintf(s->name, sizeof(s->name), "%s", workload);
	snprintf(path, sizeof(path), "%s/%s.yaml", c->workloads_dir, workload);
	s->def = malloc(sizeof(*s->def));
	if (!s->def)
		snprintf(s->err, sizeof(s->err), "out of memory");
	else if (us_workload_def_load(path, s->def, s->err, sizeof(s->err)) < 0) {
		free(s->def);
		s->def = NULL;
	}
	*why = s->err;
	return s->def;
}

static void defs_clear(struct us_controller *c)
{
	for (size_t i = 0; i < c->ndefs; i++)
		free(c->defs[i].def);
	c->ndefs = 0;
}

/* ---- instances ------------------------------------------------------------ */

static enum us_repl_mode instance_mode(const struct inst_row *r)
{
	enum us_repl_mode m = US_REPL_CLONE;

	us_repl_mode_parse(r->mode, &m);
	return m;
}

static void instance_provision(struct us_controller *c, const struct inst_row *r)
{
	struct us_instance in;
	char err[1024];

	memset(&in, 0, sizeof(in));
	if (c->prov->ops->provision(c->prov, r->id, r->type, &in, err, sizeof(err)) < 0) {
		instance_update(c, r, "failed", NULL, 0, err);
		return;
	}
	instance_update(c, r, "provisioned", &in, in.provision_s, "");
}

/* Copies the workload and starts it; health is judged on later passes. */
static void instance_deploy_start(struct us_controller *c, const struct inst_row *r,
				  const struct us_workload_def *w)
{
	struct us_deploy_opts o = { .mode = instance_mode(r), .sample = r->sample };
	struct us_instance in;
	char err[1024];

	if (c->prov->ops->describe(c->prov, r->id, &in, err, sizeof(err)) < 0 ||
	    c->prov->ops->deploy(c->prov, &in, w, &o, err, sizeof(err)) < 0 ||
	    c->prov->ops->start(c->prov, &in, w, err, sizeof(err)) < 0) {
		instance_update(c, r, "failed", NULL, 0, err);
		return;
	}
	instance_update(c, r, "starting", &in, 0, "");
}

static void instance_check_health(struct us_controller *c, const struct inst_row *r,
				  const struct us_workload_def *w)
{
	struct us_instance in;
	char err[1024] = "", msg[1200];
	int h;

	if (c->prov->ops->describe(c->prov, r->id, &in, err, sizeof(err)) < 0) {
		instance_update(c, r, "failed", NULL, 0, err);
		return;
	}
	h = c->prov->ops->health(c->prov, &in, w, err, sizeof(err));
	if (h == 0) {
		instance_update(c, r, "running", &in, 0, "");
		return;
	}
	if (h < 0 || c->now_ns - r->updated_ns > w->health.start_timeout_ns) {
		snprintf(msg, sizeof(msg), "not healthy within %.0f s: %s",
			 (double)w->health.start_timeout_ns / 1e9, err);
		instance_update(c, r, "failed", NULL, 0, msg);
	}
}

/* A running instance whose workload died is started again. */
static void instance_check_alive(struct us_controller *c, const struct inst_row *r)
{
	struct us_instance in;
	char err[1024];

	if (c->now_ns - r->updated_ns < LIVENESS_NS)
		return;
	if (c->prov->ops->describe(c->prov, r->id, &in, err, sizeof(err)) < 0)
		return;
	if (in.state == US_INSTANCE_RUNNING) {
		instance_update(c, r, "running", NULL, 0, "");
		return;
	}
	instance_update(c, r, in.state == US_INSTANCE_ABSENT ? "pending" : "provisioned", NULL, 0,
			in.state == US_INSTANCE_ABSENT ? "instance vanished; provisioning again" :
			"workload process exited; starting it again");
}

static void instance_remove(struct us_controller *c, const struct inst_row *r)
{
	char err[1024];

	if (r->absent_after_ns > c->now_ns)
		return;
	if (c->prov->ops->decommission(c->prov, r->id, err, sizeof(err)) < 0) {
		instance_update(c, r, r->state, NULL, 0, err);
		return;
	}
	instance_update(c, r, "absent", NULL, 0, "");
}

static void reconcile_instance(struct us_controller *c, const struct inst_row *r)
{
	const struct us_workload_def *w;
	const char *why;

	if (strcmp(r->desired, "absent") == 0) {
		if (strcmp(r->state, "absent") != 0)
			instance_remove(c, r);
		return;
	}
	if (!(w = us_ctl_def(c, r->workload, &why))) {
		if (strcmp(r->error, why) != 0)
			instance_update(c, r, "failed", NULL, 0, why);
		return;
	}
	if (strcmp(r->state, "failed") == 0 && c->now_ns - r->updated_ns < RETRY_NS)
		return;
	if (!strcmp(r->state, "pending") || !strcmp(r->state, "failed") ||
	    !strcmp(r->state, "absent"))
		instance_provision(c, r);
	else if (!strcmp(r->state, "provisioned"))
		instance_deploy_start(c, r, w);
	else if (!strcmp(r->state, "starting"))
		instance_check_health(c, r, w);
	else if (!strcmp(r->state, "running"))
		instance_check_alive(c, r);
}

static void instances_pass(struct us_controller *c)
{
	struct inst_row *v;
	size_t n;

	if (us_ctl_instances(c, "desired = 'running' OR state != 'absent'", NULL, &v, &n) < 0)
		return;
	for (size_t i = 0; i < n; i++)
		reconcile_instance(c, &v[i]);
	free(v);
}

/* ---- traffic weights ------------------------------------------------------ */

static struct applied_service *applied_find(struct us_controller *c, const char *workload)
{
	for (size_t i = 0; i < c->napplied; i++)
		if (strcmp(c->applied[i].workload, workload) == 0)
			return &c->applied[i];
	if (c->napplied == CTL_MAX_SERVICES)
		return NULL;
	memset(&c->applied[c->napplied], 0, sizeof(c->applied[0]));
	snprintf(c->applied[c->napplied].workload, sizeof(c->applied[0].workload), "%s", workload);
	return &c->applied[c->napplied++];
}

static void backend_add(struct us_backend *b, size_t *n, const struct inst_row *r, uint16_t port,
			uint32_t weight)
{
	if (*n == US_MAX_BACKENDS || !r->address[0])
		return;
	snprintf(b[*n].address, sizeof(b[*n].address), "%s", r->address);
	b[*n].port = port;
	b[*n].weight = weight;
	(*n)++;
}

/* The backends a workload's service should have now: during a shift the old
 * and new instances by the step's share; otherwise every running
 * production instance alike. Weights are per mille. */
static size_t wanted_backends(struct us_controller *c, const char *workload,
			      const struct us_workload_def *w, const struct mig_row *mig,
			      size_t nmig, struct us_backend *b)
{
	struct inst_row *v, from, to;
	size_t n = 0, nv;

	for (size_t i = 0; i < nmig; i++) {
		double share;

		if (strcmp(mig[i].workload, workload) != 0)
			continue;
		share = us_ctl_migration_share(c, &mig[i]);
		if (share < 0 || us_ctl_instance(c, mig[i].from_instance, &from) != 1 ||
		    us_ctl_instance(c, mig[i].to_instance, &to) != 1)
			continue;
		if (share < 100.0)
			backend_add(b, &n, &from, w->port, (uint32_t)(1000.0 - share * 10.0 + 0.5));
		if (share > 0.0)
			backend_add(b, &n, &to, w->port, (uint32_t)(share * 10.0 + 0.5));
		return n;
	}
	if (us_ctl_instances(c, "workload = ?1 AND role = 'production' AND desired = 'running' "
			     "AND state = 'running'", workload, &v, &nv) < 0)
		return 0;
	for (size_t i = 0; i < nv; i++)
		backend_add(b, &n, &v[i], w->port, 1000);
	free(v);
	return n;
}

static bool backends_equal(const struct us_backend *a, size_t na, const struct us_backend *b,
			   size_t nb)
{
	return na == nb && memcmp(a, b, na * sizeof(*a)) == 0;
}

static void weights_pass(struct us_controller *c)
{
	struct mig_row *mig = NULL;
	struct inst_row *v;
	size_t n, nmig = 0;

	if (us_ctl_instances(c, "role = 'production' AND desired = 'running' AND state = 'running'",
			     NULL, &v, &n) < 0)
		return;
	if (us_ctl_active_migrations(c, &mig, &nmig) < 0)
		goto cleanup;
	for (size_t i = 0; i < n; i++) {
		struct us_backend b[US_MAX_BACKENDS];
		const struct us_workload_def *w;
		struct applied_service *a;
		const char *why;
		char err[1024];
		size_t nb;
		bool seen = false;

		for (size_t k = 0; k < i; k++)
			seen = seen || strcmp(v[k].workload, v[i].workload) == 0;
		if (seen || !(w = us_ctl_def(c, v[i].workload, &why)) || !w->service.address[0])
			continue;
		memset(b, 0, sizeof(b));
		nb = wanted_backends(c, v[i].workload, w, mig, nmig, b);
		if (!nb || !(a = applied_find(c, v[i].workload)) || backends_equal(a->b, a->n, b, nb))
			continue;
		if (c->prov->ops->shift_traffic(c->prov, w, b, nb, err, sizeof(err)) < 0) {
			us_warn("controller: %s: traffic weights: %s", v[i].workload, err);
			continue;
		}
		memcpy(a->b, b, sizeof(b));
		a->n = nb;
		for (size_t k = 0; k < nb; k++)
			us_info("service %s (%s:%u): backend %s:%u weight %u/1000", v[i].workload,
				w->service.address, w->service.port, b[k].address, b[k].port,
				b[k].weight);
	}
cleanup:
	free(mig);
	free(v);
}

/* ---- the loop ------------------------------------------------------------- */

static void load_policies(struct us_controller *c)
{
	char err[512];

	if (us_policy_load(c->policies_path, c->policies, err, sizeof(err)) == 0) {
		c->policies_err[0] = '\0';
		return;
	}
	if (strcmp(err, c->policies_err) != 0)
		us_error("controller: policies: %s (migrations wait until it is fixed)", err);
	snprintf(c->policies_err, sizeof(c->policies_err), "%s", err);
	c->policies->n = 0;
}

static void pass(struct us_controller *c)
{
	c->now_ns = us_now_ns();
	load_policies(c);
	instances_pass(c);
	us_ctl_migrations_pass(c);
	weights_pass(c);
	us_ctl_plans_pass(c);
	if (c->agent[0])
		us_ctl_dropins_pass(c);
	defs_clear(c);
}

static void *controller_main(void *arg)
{
	struct us_controller *c = arg;
	struct pollfd p = { .fd = c->stop_fd[0], .events = POLLIN };

	for (;;) {
		pass(c);
		if (poll(&p, 1, (int)(c->cfg.interval_ns / US_NS_PER_MS)) != 0)
			break;
	}
	return NULL;
}

static int open_store(struct us_controller *c, char *err, size_t errlen)
{
	if (sqlite3_open_v2(c->db_path, &c->db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "controller: store %s: %s", c->db_path,
			 sqlite3_errmsg(c->db));
		return -1;
	}
	/* ingest and rollups write in short transactions: wait them out */
	sqlite3_busy_timeout(c->db, 5000);
	return 0;
}

struct us_controller *us_controller_start(const struct us_controller_config *cfg, char *err,
					  size_t errlen)
{
	struct us_controller *c = calloc(1, sizeof(*c));

	if (!c || !(c->policies = calloc(1, sizeof(*c->policies)))) {
		snprintf(err, errlen, "controller: out of memory");
		goto fail;
	}
	c->stop_fd[0] = c->stop_fd[1] = -1;
	snprintf(c->db_path, sizeof(c->db_path), "%s", cfg->db_path);
	snprintf(c->data_dir, sizeof(c->data_dir), "%s", cfg->data_dir);
	snprintf(c->workloads_dir, sizeof(c->workloads_dir), "%s", cfg->workloads_dir);
	snprintf(c->policies_path, sizeof(c->policies_path), "%s", cfg->policies_path);
	snprintf(c->agent, sizeof(c->agent), "%s", cfg->agent ? cfg->agent : "");
	snprintf(c->dropin_dir, sizeof(c->dropin_dir), "%s",
		 cfg->agent_dropin_dir ? cfg->agent_dropin_dir : "");
	c->provider_cfg = *cfg->provider;
	c->cfg = *cfg;
	if (us_provider_open(&c->provider_cfg, c->data_dir, &c->prov, err, errlen) < 0 ||
	    open_store(c, err, errlen) < 0)
		goto fail;
	if (pipe(c->stop_fd) < 0) {
		snprintf(err, errlen, "controller: pipe: %s", strerror(errno));
		goto fail;
	}
	if (pthread_create(&c->thread, NULL, controller_main, c) != 0) {
		snprintf(err, errlen, "controller: cannot start its thread");
		goto fail;
	}
	c->thread_started = true;
	return c;
fail:
	us_controller_stop(c);
	return NULL;
}

void us_controller_stop(struct us_controller *c)
{
	if (!c)
		return;
	if (c->thread_started) {
		if (write(c->stop_fd[1], "x", 1) < 0)
			us_warn("controller: stop: %s", strerror(errno));
		pthread_join(c->thread, NULL);
	}
	for (int i = 0; i < 2; i++)
		if (c->stop_fd[i] >= 0)
			close(c->stop_fd[i]);
	defs_clear(c);
	if (c->prov)
		us_provider_free(c->prov);
	sqlite3_close(c->db);
	free(c->policies);
	free(c);
}
