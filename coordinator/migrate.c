/* The migration state machine (controller.h lists the states). One function
 * per state decides, from the stored row and what the store says about the
 * instances and their requests, whether to stay (with a reason saying what
 * it waits for) or to move on. A move is one transaction: the row's new
 * state, the desired-state rows it implies (a shadow, a candidate, the old
 * instance retired) and a journal row. Effects outside the store (provider
 * calls, weights, agent drop-ins) follow from the stored state in the same
 * pass, so after a crash they are redone, idempotently, never skipped. */
#include "controller_impl.h"

#include <gsl/gsl_cdf.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.pb-c.h"
#include "understudy.pb-c.h"
#include "clock.h"
#include "compare.h"
#include "instance_id.h"
#include "log.h"
#include "recommend_api.h"
#include "stats.h"

/* The shadow's verdict is computed at most this often. */
#define VALIDATE_EVERY_NS (5 * US_NS_PER_SEC)

#define MIG_COLS "id, workload, policy, from_instance, to_type, shadow_instance, " \
	"to_instance, state, shadow_mode, reason, step, state_since_ns, force, approved, " \
	"rollback_requested, baseline_p99_ns, baseline_error"

static void read_migration(sqlite3_stmt *q, struct mig_row *m)
{
	const unsigned char *t;

	memset(m, 0, sizeof(*m));
	m->id = sqlite3_column_int64(q, 0);
#define COL(i, f) t = sqlite3_column_text(q, i); \
	snprintf(m->f, sizeof(m->f), "%s", t ? (const char *)t : "")
	COL(1, workload);
	COL(2, policy);
	COL(3, from_instance);
	COL(4, to_type);
	COL(5, shadow_instance);
	COL(6, to_instance);
	COL(7, state);
	COL(8, shadow_mode);
	COL(9, reason);
#undef COL
	m->step = sqlite3_column_int(q, 10);
	m->state_since_ns = (uint64_t)sqlite3_column_int64(q, 11);
	m->force = sqlite3_column_int(q, 12) != 0;
	m->approved = sqlite3_column_int(q, 13) != 0;
	m->rollback_requested = sqlite3_column_int(q, 14) != 0;
	m->baseline_p99_ns = sqlite3_column_double(q, 15);
	m->baseline_error = sqlite3_column_double(q, 16);
}

int us_ctl_active_migrations(struct us_controller *c, struct mig_row **out, size_t *n)
{
	sqlite3_stmt *q = NULL;
	struct mig_row *v = NULL, *nv;
	size_t cap = 0;
	int rc = -1, s;

	*n = 0;
	if (sqlite3_prepare_v2(c->db, "SELECT " MIG_COLS " FROM migrations "
			       "WHERE state NOT IN ('Completed', 'RolledBack') ORDER BY id", -1, &q,
			       NULL) != SQLITE_OK)
		goto cleanup;
	while ((s = sqlite3_step(q)) == SQLITE_ROW) {
		if (*n == cap) {
			cap = cap ? cap * 2 : 4;
			if (!(nv = realloc(v, cap * sizeof(*v))))
				goto cleanup;
			v = nv;
		}
		read_migration(q, &v[(*n)++]);
	}
	rc = s == SQLITE_DONE ? 0 : -1;
cleanup:
	if (rc < 0) {
		us_warn("controller: reading migrations: %s", sqlite3_errmsg(c->db));
		free(v);
		v = NULL;
		*n = 0;
	}
	sqlite3_finalize(q);
	*out = v;
	return rc;
}

static const struct us_migration_policy *policy_of(struct us_controller *c, const struct mig_row *m)
{
	return us_policy_find(c->policies, m->policy);
}

double us_ctl_migration_share(struct us_controller *c, const struct mig_row *m)
{
	const struct us_migration_policy *p = policy_of(c, m);

	if (strcmp(m->state, "Shifting") != 0 || !p || m->step < 0 || (size_t)m->step >= p->nsteps)
		return -1.0;
	return p->steps[m->step];
}

/* ---- writes ----------------------------------------------------------------- */

/* The row's reason, when it changed: what the migration waits for. */
static void set_reason(struct us_controller *c, struct mig_row *m, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void set_reason(struct us_controller *c, struct mig_row *m, const char *fmt, ...)
{
	char reason[sizeof(m->reason)];
	sqlite3_stmt *q = NULL;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	if (strcmp(reason, m->reason) == 0)
		return;
	snprintf(m->reason, sizeof(m->reason), "%s", reason);
	us_info("migration %lld (%s): %s: %s", (long long)m->id, m->workload, m->state, reason);
	if (sqlite3_prepare_v2(c->db, "UPDATE migrations SET reason = ?2, updated_ns = ?3 "
			       "WHERE id = ?1", -1, &q, NULL) == SQLITE_OK) {
		sqlite3_bind_int64(q, 1, m->id);
		sqlite3_bind_text(q, 2, reason, -1, SQLITE_STATIC);
		sqlite3_bind_int64(q, 3, (int64_t)c->now_ns);
		if (sqlite3_step(q) != SQLITE_DONE)
			us_warn("controller: migration %lld: %s", (long long)m->id,
				sqlite3_errmsg(c->db));
	}
	sqlite3_finalize(q);
}

static int step_sql(struct us_controller *c, sqlite3_stmt *q)
{
	int s = sqlite3_step(q);

	sqlite3_finalize(q);
	return s == SQLITE_DONE ? 0 : -1;
}

/* A new instance row for this migration; its id into id. */
static int insert_instance(struct us_controller *c, const struct mig_row *m, const char *role,
			   const char *mode, char *id, size_t idlen)
{
	sqlite3_stmt *q = NULL;
	char err[256];

	if (us_instance_id_new(c->db, m->workload, m->to_type, id, idlen, err, sizeof(err)) < 0 ||
	    sqlite3_prepare_v2(c->db,
		"INSERT INTO instances(id, workload, role, type, mode, sample, scale, desired, state,"
		" migration_id, created_ns, updated_ns) VALUES (?1, ?2, ?3, ?4, ?5, 1, 1, 'running',"
		" 'pending', ?6, ?7, ?7)", -1, &q, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_text(q, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 2, m->workload, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 3, role, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 4, m->to_type, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 5, mode, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 6, m->id);
	sqlite3_bind_int64(q, 7, (int64_t)c->now_ns);
	return step_sql(c, q);
}

/* UPDATE instances SET <set> WHERE id = ?1, with ?2 = now and ?3 = a time. */
static int update_instance(struct us_controller *c, const char *id, const char *set,
			   uint64_t t_ns)
{
	sqlite3_stmt *q = NULL;
	char sql[256];

	snprintf(sql, sizeof(sql), "UPDATE instances SET %s, updated_ns = ?2 WHERE id = ?1", set);
	if (sqlite3_prepare_v2(c->db, sql, -1, &q, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_text(q, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 2, (int64_t)c->now_ns);
	sqlite3_bind_int64(q, 3, (int64_t)t_ns);
	return step_sql(c, q);
}

/* Desired-state changes that a transition implies, run inside its
 * transaction; they may fill fields of the row (m) that it then saves. */
typedef int (*effects_fn)(struct us_controller *c, struct mig_row *m);

static int save_row(struct us_controller *c, const struct mig_row *m, const char *from_state)
{
	sqlite3_stmt *q = NULL;

	if (sqlite3_prepare_v2(c->db,
		"UPDATE migrations SET state = ?2, step = ?3, state_since_ns = ?4, reason = ?5,"
		" updated_ns = ?4, from_instance = ?6, shadow_instance = ?7, to_instance = ?8,"
		" to_type = ?9, baseline_p99_ns = ?10, baseline_error = ?11"
		" WHERE id = ?1 AND state = ?12", -1, &q, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_int64(q, 1, m->id);
	sqlite3_bind_text(q, 2, m->state, -1, SQLITE_STATIC);
	sqlite3_bind_int(q, 3, m->step);
	sqlite3_bind_int64(q, 4, (int64_t)m->state_since_ns);
	sqlite3_bind_text(q, 5, m->reason, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 6, m->from_instance, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 7, m->shadow_instance, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 8, m->to_instance, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 9, m->to_type, -1, SQLITE_STATIC);
	sqlite3_bind_double(q, 10, m->baseline_p99_ns);
	sqlite3_bind_double(q, 11, m->baseline_error);
	sqlite3_bind_text(q, 12, from_state, -1, SQLITE_STATIC);
	if (sqlite3_step(q) != SQLITE_DONE || sqlite3_changes(c->db) != 1) {
		sqlite3_finalize(q);
		return -1;
	}
	sqlite3_finalize(q);
	if (sqlite3_prepare_v2(c->db,
		"INSERT INTO migration_journal(migration_id, from_state, to_state, step, at_ns, reason)"
		" VALUES (?1, ?2, ?3, ?4, ?5, ?6)", -1, &q, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_int64(q, 1, m->id);
	sqlite3_bind_text(q, 2, from_state, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 3, m->state, -1, SQLITE_STATIC);
	sqlite3_bind_int(q, 4, m->step);
	sqlite3_bind_int64(q, 5, (int64_t)m->state_since_ns);
	sqlite3_bind_text(q, 6, m->reason, -1, SQLITE_STATIC);
	return step_sql(c, q);
}

/* Moves m to state `to` (step) in one transaction with fx's writes and a
 * journal row. On failure nothing changed and m is as it was. */
static int transition(struct us_controller *c, struct mig_row *m, const char *to, int step,
		      effects_fn fx, const char *fmt, ...) __attribute__((format(printf, 6, 7)));
static int transition(struct us_controller *c, struct mig_row *m, const char *to, int step,
		      effects_fn fx, const char *fmt, ...)
{
	struct mig_row next = *m;
	char err[512], scratch[256];
	va_list ap;

	snprintf(next.state, sizeof(next.state), "%s", to);
	next.step = step;
	next.state_since_ns = c->now_ns;
	va_start(ap, fmt);
	vsnprintf(next.reason, sizeof(next.reason), fmt, ap);
	va_end(ap);
	if (us_ctl_exec(c, "BEGIN IMMEDIATE", err, sizeof(err)) < 0)
		goto fail;
	if ((fx && fx(c, &next) < 0) || save_row(c, &next, m->state) < 0) {
		snprintf(err, sizeof(err), "store: %s", sqlite3_errmsg(c->db));
		us_ctl_exec(c, "ROLLBACK", scratch, sizeof(scratch));
		goto fail;
	}
	if (us_ctl_exec(c, "COMMIT", err, sizeof(err)) < 0) {
		us_ctl_exec(c, "ROLLBACK", scratch, sizeof(scratch));
		goto fail;
	}
	us_info("migration %lld (%s): %s -> %s%s: %s", (long long)m->id, m->workload, m->state,
		to, step >= 0 ? " (step)" : "", next.reason);
	*m = next;
	return 0;
fail:
	us_warn("migration %lld (%s): %s -> %s not saved: %s", (long long)m->id, m->workload,
		m->state, to, err);
	return -1;
}

/* ---- what the store says ---------------------------------------------------- */

/* The workload's running production instance (the oldest), 1 found, 0 not. */
static int production_instance(struct us_controller *c, const char *workload, struct inst_row *out)
{
	struct inst_row *v;
	size_t n;

	if (us_ctl_instances(c, "workload = ?1 AND role = 'production' AND desired = 'running' "
			     "AND state = 'running'", workload, &v, &n) < 0)
		return -1;
	if (n)
		*out = v[0];
	free(v);
	return n ? 1 : 0;
}

struct req_figures {
	uint64_t n, errors;
	double p99_ns;
	double p99_low_ns;      /* the p99's lower confidence bound at GUARD_CONFIDENCE */
};

/* The guards judge the new instance with confidence: its p99 by a lower
 * confidence bound (an order statistic), its error rate by an exact
 * binomial test. On the few dozen requests of a step's start the p99 is the
 * maximum and one 5xx is several percent: one cold request would roll a
 * healthy instance back. An instance bad throughout breaches all the same. */
#define GUARD_CONFIDENCE 0.95

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Requests the agent measured on an instance since from_ns: count, server
 * errors (5xx) and p99 latency. */
static int request_figures(struct us_controller *c, const char *instance, uint64_t from_ns,
			   struct req_figures *f)
{
	sqlite3_stmt *q = NULL;
	double *lat = NULL, *nl;
	size_t cap = 0;
	int rc = -1, s;

	memset(f, 0, sizeof(*f));
	if (sqlite3_prepare_v2(c->db, "SELECT latency_ns, status_code FROM request_samples "
			       "WHERE workload = ?1 AND start_ns >= ?2", -1, &q, NULL) != SQLITE_OK)
		goto cleanup;
	sqlite3_bind_text(q, 1, instance, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 2, (int64_t)from_ns);
	while ((s = sqlite3_step(q)) == SQLITE_ROW) {
		if (f->n == cap) {
			cap = cap ? cap * 2 : 1024;
			if (!(nl = realloc(lat, cap * sizeof(*lat))))
				goto cleanup;
			lat = nl;
		}
		lat[f->n++] = (double)sqlite3_column_int64(q, 0);
		f->errors += sqlite3_column_int(q, 1) >= 500;
	}
	if (s != SQLITE_DONE)
		goto cleanup;
	if (f->n) {
		qsort(lat, f->n, sizeof(*lat), cmp_double);
		f->p99_ns = lat[(size_t)ceil(0.99 * (double)f->n) - 1];
		f->p99_low_ns = lat[us_quantile_low_rank(f->n, 0.99, GUARD_CONFIDENCE) - 1];
	}
	rc = 0;
cleanup:
	if (rc < 0)
		us_warn("controller: requests of %s: %s", instance, sqlite3_errmsg(c->db));
	sqlite3_finalize(q);
	free(lat);
	return rc;
}

static double error_rate(const struct req_figures *f)
{
	return f->n ? (double)f->errors / (double)f->n : 0.0;
}

/* ---- effects of transitions ------------------------------------------------- */

static int fx_create_shadow(struct us_controller *c, struct mig_row *m)
{
	struct inst_row *v;
	size_t n;

	if (m->force)  /* validation skipped: nothing to shadow */
		return 0;
	/* a shadow of the type already running (shadow start) is adopted */
	if (us_ctl_instances(c, "workload = ?1 AND role = 'shadow' AND desired = 'running'",
			     m->workload, &v, &n) < 0)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i].type, m->to_type) == 0) {
			snprintf(m->shadow_instance, sizeof(m->shadow_instance), "%s", v[i].id);
			free(v);
			return 0;
		}
	free(v);
	return insert_instance(c, m, "shadow", m->shadow_mode, m->shadow_instance,
			       sizeof(m->shadow_instance));
}

/* The shadow served its purpose; one this migration created goes away. */
static int fx_drop_shadow(struct us_controller *c, struct mig_row *m)
{
	struct inst_row r;

	if (!m->shadow_instance[0] || us_ctl_instance(c, m->shadow_instance, &r) != 1 ||
	    r.migration_id != m->id)
		return 0;
	return update_instance(c, r.id, "desired = 'absent', absent_after_ns = 0", 0);
}

static int fx_complete(struct us_controller *c, struct mig_row *m)
{
	const struct us_migration_policy *p = policy_of(c, m);
	uint64_t retain = p ? p->retain_ns : 0;

	if (update_instance(c, m->to_instance, "role = 'production'", 0) < 0 ||
	    update_instance(c, m->from_instance,
			    "role = 'retired', desired = 'absent', absent_after_ns = ?3",
			    c->now_ns + retain) < 0)
		return -1;
	return 0;
}

/* ---- the states ------------------------------------------------------------- */

/* Before any traffic moved, a rollback is a cancellation. */
static bool cancelled(struct us_controller *c, struct mig_row *m)
{
	if (!m->rollback_requested)
		return false;
	transition(c, m, "RolledBack", -1, fx_drop_shadow,
		   "cancelled by the operator in %s; no traffic had moved", m->state);
	return true;
}

/* The recommendation's first choice for the production instance. */
static int recommended_type(struct us_controller *c, const struct inst_row *prod, char *type,
			    size_t len, char *why, size_t whylen)
{
	Understudy__Api__RecommendRequest req = UNDERSTUDY__API__RECOMMEND_REQUEST__INIT;
	Understudy__Api__RecommendResponse *r = NULL;
	struct us_api_ctx ctx = { .db = c->db };
	ProtobufCMessage *resp = NULL;
	int status, rc = -1;

	req.workload = (char *)prod->id;
	req.current_type = (char *)prod->type;
	status = us_api_recommend(&ctx, &req.base, &resp, why, whylen);
	r = (Understudy__Api__RecommendResponse *)resp;
	if (status != 0)
		goto cleanup;
	if (!r || !r->n_options) {
		snprintf(why, whylen, "no instance type fits the measured utilization");
		goto cleanup;
	}
	snprintf(type, len, "%s", r->options[0]->instance_type);
	rc = 0;
cleanup:
	if (resp)
		protobuf_c_message_free_unpacked(resp, NULL);
	return rc;
}

static void state_observing(struct us_controller *c, struct mig_row *m)
{
	struct inst_row prod;
	char why[512], type[64];
	bool given = m->to_type[0] != '\0';

	if (cancelled(c, m))
		return;
	if (production_instance(c, m->workload, &prod) != 1) {
		set_reason(c, m, "waiting for a running production instance "
			   "(understudy deploy %s --type TYPE)", m->workload);
		return;
	}
	if (!given && recommended_type(c, &prod, type, sizeof(type), why, sizeof(why)) < 0) {
		set_reason(c, m, "no recommendation yet: %s", why);
		return;
	}
	if (!given && strcmp(type, prod.type) == 0) {
		set_reason(c, m, "the recommendation keeps %s: nothing to migrate", prod.type);
		return;
	}
	if (!given)
		snprintf(m->to_type, sizeof(m->to_type), "%s", type);
	snprintf(m->from_instance, sizeof(m->from_instance), "%s", prod.id);
	transition(c, m, "Recommended", -1, NULL, "%s -> %s (%s)", prod.type, m->to_type,
		   given ? "type given by the operator" : "the recommendation's first choice");
}

static void state_recommended(struct us_controller *c, struct mig_row *m)
{
	if (cancelled(c, m))
		return;
	if (m->force)
		transition(c, m, "Shadowing", -1, NULL, "no shadow: validation skipped (--force)");
	else
		transition(c, m, "Shadowing", -1, fx_create_shadow, "shadow of %s in %s mode",
			   m->to_type, m->shadow_mode);
}

/* A periodic job of m (the shadow's verdict, the guards' figures in its
 * reason) is due: true at most every VALIDATE_EVERY_NS. */
static bool report_due(struct us_controller *c, const struct mig_row *m)
{
	size_t free_slot = 0, n = sizeof(c->evals) / sizeof(c->evals[0]);

	for (size_t i = 0; i < n; i++) {
		if (c->evals[i].id == m->id) {
			if (c->now_ns - c->evals[i].at_ns < VALIDATE_EVERY_NS)
				return false;
			c->evals[i].at_ns = c->now_ns;
			return true;
		}
		if (c->evals[i].at_ns < c->evals[free_slot].at_ns)
			free_slot = i;
	}
	c->evals[free_slot].id = m->id;
	c->evals[free_slot].at_ns = c->now_ns;
	return true;
}

static void state_shadowing(struct us_controller *c, struct mig_row *m)
{
	const struct us_migration_policy *p = policy_of(c, m);
	struct us_verdict *v = NULL;
	struct us_policy vp;
	struct us_compare_sides sides = { .prod_role = UNDERSTUDY__ROLE__PRODUCTION,
					  .shadow_role = UNDERSTUDY__ROLE__SHADOW };
	struct inst_row shadow = { .state = "" };
	uint64_t from, n;
	char why[512];
	int found;

	if (cancelled(c, m))
		return;
	if (m->force) {
		transition(c, m, "Validated", -1, NULL, "validation skipped (--force)");
		return;
	}
	if (us_ctl_instance(c, m->shadow_instance, &shadow) != 1 ||
	    strcmp(shadow.state, "running") != 0) {
		set_reason(c, m, "waiting for shadow %s to run%s%s", m->shadow_instance,
			   shadow.error[0] ? ": " : "", shadow.error);
		return;
	}
	if (c->now_ns - m->state_since_ns < p->validate.min_duration_ns) {
		set_reason(c, m, "shadowing for %.0f s of at least %.0f s",
			   (double)(c->now_ns - m->state_since_ns) / 1e9,
			   (double)p->validate.min_duration_ns / 1e9);
		return;
	}
	if (!report_due(c, m) || !(v = malloc(sizeof(*v))))
		return;
	us_policy_defaults(&vp);
	vp.min_samples = p->validate.min_samples;
	from = c->now_ns - p->validate.window_ns;
	if (from < m->state_since_ns)
		from = m->state_since_ns;
	/* both sides as their servers measured them (dropin.c): the replay's
	 * client-side figure would add a network round trip to the shadow's */
	sides.prod = m->from_instance;
	sides.shadow = m->shadow_instance;
	found = us_compare_store_sides(c->db, &sides, from, c->now_ns, &vp, v, why, sizeof(why));
	n = v->kpi[US_KPI_LATENCY].n_prod;
	if (found < 0)
		set_reason(c, m, "comparison failed: %s", why);
	else if (found > 0)
		set_reason(c, m, "no requests of %s measured yet", m->from_instance);
	else if (v->decision == US_DECISION_PASS && v->confidence >= p->validate.min_confidence &&
		 n >= p->validate.min_samples)
		transition(c, m, "Validated", -1, NULL,
			   "verdict Pass, score %.0f, confidence %.3f, %llu %s requests", v->score,
			   v->confidence, (unsigned long long)n, v->paired ? "paired" : "unpaired");
	else
		set_reason(c, m, "verdict %s (score %.0f, confidence %.3f of %.3f, %llu of %llu "
			   "requests): waiting for parity", us_decision_name(v->decision), v->score,
			   v->confidence, p->validate.min_confidence, (unsigned long long)n,
			   (unsigned long long)p->validate.min_samples);
	free(v);
}

static int fx_create_candidate(struct us_controller *c, struct mig_row *m)
{
	return insert_instance(c, m, "candidate", "clone", m->to_instance, sizeof(m->to_instance));
}

/* The old instance's figures just before any traffic moves: what the guards
 * compare with once it serves too little to judge (the last steps). */
static int fx_preallocated(struct us_controller *c, struct mig_row *m)
{
	const struct us_migration_policy *p = policy_of(c, m);
	struct req_figures f;

	if (request_figures(c, m->from_instance, c->now_ns - p->guards.window_ns, &f) < 0)
		return -1;
	m->baseline_p99_ns = f.p99_ns;
	m->baseline_error = error_rate(&f);
	return fx_drop_shadow(c, m);
}

/* The candidate's row and the migration's reference to it, together. */
static int record_candidate(struct us_controller *c, struct mig_row *m)
{
	sqlite3_stmt *q = NULL;
	char err[256];

	if (us_ctl_exec(c, "BEGIN IMMEDIATE", err, sizeof(err)) < 0)
		return -1;
	if (fx_create_candidate(c, m) < 0 ||
	    sqlite3_prepare_v2(c->db, "UPDATE migrations SET to_instance = ?2, updated_ns = ?3 "
			       "WHERE id = ?1", -1, &q, NULL) != SQLITE_OK)
		goto fail;
	sqlite3_bind_int64(q, 1, m->id);
	sqlite3_bind_text(q, 2, m->to_instance, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 3, (int64_t)c->now_ns);
	if (step_sql(c, q) < 0 || us_ctl_exec(c, "COMMIT", err, sizeof(err)) < 0)
		goto fail;
	us_info("migration %lld (%s): pre-allocating %s (%s)", (long long)m->id, m->workload,
		m->to_instance, m->to_type);
	return 0;
fail:
	us_warn("migration %lld (%s): candidate not recorded: %s", (long long)m->id, m->workload,
		sqlite3_errmsg(c->db));
	us_ctl_exec(c, "ROLLBACK", err, sizeof(err));
	m->to_instance[0] = '\0';
	return -1;
}

static void state_validated(struct us_controller *c, struct mig_row *m)
{
	struct inst_row to;

	if (cancelled(c, m))
		return;
	memset(&to, 0, sizeof(to));
	if (!m->to_instance[0] && record_candidate(c, m) < 0)
		return;
	if (us_ctl_instance(c, m->to_instance, &to) != 1 || strcmp(to.state, "running") != 0) {
		set_reason(c, m, "pre-allocating %s: %s%s%s", m->to_instance,
			   to.state[0] ? to.state : "pending", to.error[0] ? ": " : "", to.error);
		return;
	}
	transition(c, m, "Preallocated", -1, fx_preallocated, "%s is running and healthy",
		   m->to_instance);
}

static size_t shifting_count(struct us_controller *c, const char *policy)
{
	sqlite3_stmt *q = NULL;
	size_t n = 0;

	if (sqlite3_prepare_v2(c->db, "SELECT count(*) FROM migrations WHERE state = 'Shifting' "
			       "AND policy = ?1", -1, &q, NULL) == SQLITE_OK) {
		sqlite3_bind_text(q, 1, policy, -1, SQLITE_STATIC);
		if (sqlite3_step(q) == SQLITE_ROW)
			n = (size_t)sqlite3_column_int64(q, 0);
	}
	sqlite3_finalize(q);
	return n;
}

/* Whether an agent has reported an interval of the instance (as a workload
 * named by its id): until then its requests go unmeasured, and the guards
 * would count what it serves as nothing. */
static bool measured(struct us_controller *c, const char *instance)
{
	sqlite3_stmt *q = NULL;
	bool yes = false;

	if (sqlite3_prepare_v2(c->db, "SELECT 1 FROM metric_batches WHERE workload = ?1 LIMIT 1",
			       -1, &q, NULL) == SQLITE_OK) {
		sqlite3_bind_text(q, 1, instance, -1, SQLITE_STATIC);
		yes = sqlite3_step(q) == SQLITE_ROW;
	}
	sqlite3_finalize(q);
	return yes;
}

static void state_preallocated(struct us_controller *c, struct mig_row *m)
{
	const struct us_migration_policy *p = policy_of(c, m);

	if (cancelled(c, m))
		return;
	if (!measured(c, m->to_instance)) {
		set_reason(c, m, "waiting for an agent to measure %s (%s)", m->to_instance,
			   c->agent[0] ? c->agent : "no controller.agent: an agent on its host");
		return;
	}
	if (p->approval && !m->approved) {
		set_reason(c, m, "waiting for approval: understudy approve %s", m->workload);
		return;
	}
	if (!us_policy_in_window(p, (time_t)(c->now_ns / US_NS_PER_SEC))) {
		set_reason(c, m, "waiting for a maintenance window of policy %s", p->name);
		return;
	}
	if (shifting_count(c, p->name) >= p->max_concurrent) {
		set_reason(c, m, "waiting: %u migration(s) of policy %s already shifting",
			   p->max_concurrent, p->name);
		return;
	}
	transition(c, m, "Shifting", 0, NULL, "step 1 of %zu: %.0f%% of new connections to %s",
		   p->nsteps, p->steps[0], m->to_instance);
}

/* A new instance that completes less than this share of the requests its
 * weight sends it is falling behind: its queue hides its latency, since a
 * request is measured only when it completes. Judged by a one-sided
 * binomial test at FALLING_BEHIND_P, so a healthy instance's chance
 * shortfall on few requests does not roll back. Fixed, not policy knobs:
 * at half its share something is plainly wrong. */
#define MIN_SHARE_RATIO 0.5
#define FALLING_BEHIND_P 1e-3

/* 1 when a guard is breached, 0 when the guards hold, 2 when there are too
 * few requests on the new instance to judge, -1 unknown; why says which
 * guard, or the figures judged. */
static int guards_breached(struct us_controller *c, const struct mig_row *m,
			   const struct us_migration_policy *p, char *why, size_t whylen)
{
	struct req_figures fnew, fold;
	uint64_t from = c->now_ns - p->guards.window_ns;
	double old_p99, old_err, limit, share = p->steps[m->step] / 100.0, expected;

	/* a step's window starts with the step: the one before had other weights */
	if (from < m->state_since_ns)
		from = m->state_since_ns;
	if (request_figures(c, m->to_instance, from, &fnew) < 0 ||
	    request_figures(c, m->from_instance, from, &fold) < 0)
		return -1;
	expected = share * (double)(fnew.n + fold.n);
	if (share < 1.0 && expected >= (double)p->guards.min_samples &&
	    gsl_cdf_binomial_P((unsigned)fnew.n, MIN_SHARE_RATIO * share,
			       (unsigned)(fnew.n + fold.n)) < FALLING_BEHIND_P) {
		snprintf(why, whylen, "guard: %s completed %llu of %llu requests (%.1f%%) with %.0f%% "
			 "of new connections: it is falling behind", m->to_instance,
			 (unsigned long long)fnew.n, (unsigned long long)(fnew.n + fold.n),
			 100.0 * (double)fnew.n / (double)(fnew.n + fold.n), 100.0 * share);
		return 1;
	}
	snprintf(why, whylen, "step %d, %.0f%%: %llu requests on %s so far, need %llu to judge",
		 m->step + 1, 100.0 * share, (unsigned long long)fnew.n, m->to_instance,
		 (unsigned long long)p->guards.min_samples);
	if (fnew.n < p->guards.min_samples)
		return 2;
	old_p99 = fold.n >= p->guards.min_samples ? fold.p99_ns : m->baseline_p99_ns;
	old_err = fold.n >= p->guards.min_samples ? error_rate(&fold) : m->baseline_error;
	/* relative and absolute: on sub-millisecond requests a ratio alone
	 * would roll back on scheduling noise */
	if (old_p99 > 0 && fnew.p99_low_ns / old_p99 > p->guards.max_p99_ratio &&
	    fnew.p99_low_ns - old_p99 > (double)p->guards.min_p99_delta_ns) {
		snprintf(why, whylen, "guard: p99 latency on %s at least %.3f ms (%.0f%% "
			 "confidence; estimate %.3f ms), %.2fx %s's %.3f ms (limit %.2fx and "
			 "+%.3f ms, %llu requests)", m->to_instance, fnew.p99_low_ns / 1e6,
			 100.0 * GUARD_CONFIDENCE, fnew.p99_ns / 1e6, fnew.p99_low_ns / old_p99,
			 m->from_instance, old_p99 / 1e6, p->guards.max_p99_ratio,
			 (double)p->guards.min_p99_delta_ns / 1e6, (unsigned long long)fnew.n);
		return 1;
	}
	limit = fmin(1.0, old_err + p->guards.max_error_delta);
	if (error_rate(&fnew) > limit &&
	    us_binom_p_at_least(fnew.errors, fnew.n, limit) < 1.0 - GUARD_CONFIDENCE) {
		snprintf(why, whylen, "guard: error rate %.3f%% on %s vs %.3f%% on %s (limit +%.3f "
			 "points, exceeded with %.0f%% confidence, %llu requests)",
			 100.0 * error_rate(&fnew), m->to_instance, 100.0 * old_err,
			 m->from_instance, 100.0 * p->guards.max_error_delta,
			 100.0 * GUARD_CONFIDENCE, (unsigned long long)fnew.n);
		return 1;
	}
	snprintf(why, whylen, "step %d, %.0f%%: guards hold: p99 %.3f ms vs %.3f ms, errors "
		 "%.3f%% vs %.3f%% (%llu and %llu requests)", m->step + 1, 100.0 * share,
		 fnew.p99_ns / 1e6, old_p99 / 1e6, 100.0 * error_rate(&fnew), 100.0 * old_err,
		 (unsigned long long)fnew.n, (unsigned long long)fold.n);
	return 0;
}

static void state_shifting(struct us_controller *c, struct mig_row *m)
{
	const struct us_migration_policy *p = policy_of(c, m);
	char why[512];
	size_t next = (size_t)m->step + 1;
	int judged;

	if (m->rollback_requested) {
		transition(c, m, "RolledBack", -1, NULL,
			   "rolled back by the operator at step %d (%.0f%%); %s kept for analysis",
			   m->step + 1, p->steps[m->step], m->to_instance);
		return;
	}
	switch ((judged = guards_breached(c, m, p, why, sizeof(why)))) {
	case 1:
		transition(c, m, "RolledBack", -1, NULL, "%s; all traffic back to %s, %s kept for "
			   "analysis", why, m->from_instance, m->to_instance);
		return;
	case 0:
	case 2:
		if (report_due(c, m))
			set_reason(c, m, "%s%s", why, judged == 2 &&
				   c->now_ns - m->state_since_ns >= p->bake_ns ?
				   "; bake extended until the guards can judge" : "");
		break;
	}
	/* a step is passed only on guards that judged it: an instance too slow
	 * to complete enough requests must not pass by default */
	if (c->now_ns - m->state_since_ns < p->bake_ns || judged != 0)
		return;
	if (next < p->nsteps)
		transition(c, m, "Shifting", (int)next, NULL,
			   "step %zu of %zu: %.0f%% of new connections to %s", next + 1, p->nsteps,
			   p->steps[next], m->to_instance);
	else
		transition(c, m, "Completed", -1, fx_complete,
			   "%s serves all traffic; %s is decommissioned after %.0f s", m->to_instance,
			   m->from_instance, (double)p->retain_ns / 1e9);
}

void us_ctl_migrations_pass(struct us_controller *c)
{
	struct mig_row *v;
	size_t n;

	if (us_ctl_active_migrations(c, &v, &n) < 0)
		return;
	for (size_t i = 0; i < n; i++) {
		struct mig_row *m = &v[i];

		if (!policy_of(c, m)) {
			set_reason(c, m, "policy %s: %s", m->policy,
				   c->policies_err[0] ? c->policies_err : "no such policy");
			continue;
		}
		if (!strcmp(m->state, "Observing"))
			state_observing(c, m);
		else if (!strcmp(m->state, "Recommended"))
			state_recommended(c, m);
		else if (!strcmp(m->state, "Shadowing"))
			state_shadowing(c, m);
		else if (!strcmp(m->state, "Validated"))
			state_validated(c, m);
		else if (!strcmp(m->state, "Preallocated"))
			state_preallocated(c, m);
		else if (!strcmp(m->state, "Shifting"))
			state_shifting(c, m);
	}
	free(v);
}
