/* Control API handlers (Instances, Shadow, Migrate in proto/api.proto): they
 * check a request against the workload definitions, the instance catalog and
 * the migration policies, record what is wanted in the store (tables
 * instances, migrations, migration_journal) and return at once. The
 * controller (coordinator/controller.c) carries it out and reports progress
 * in the same rows; nothing here calls a provider. A check and the write it
 * guards share one BEGIN IMMEDIATE transaction, so the controller writing
 * alongside never slips between them. */
#include "api_control.h"

#include <grpc/status.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.pb-c.h"
#include "buf.h"
#include "catalog.h"
#include "clock.h"
#include "instance_id.h"
#include "policy.h"
#include "store.h"
#include "workload_def.h"

#define ID_BUF 64               /* instance ids: at most 63 characters */
#define ACTIVE "state NOT IN ('Completed', 'RolledBack')"

#define INSTANCE_SELECT \
	"SELECT id, workload, role, type, mode, desired, state, address, " \
	"coalesce(provision_s, 0), error, created_ns, updated_ns, cgroup FROM instances "
#define MIGRATION_SELECT \
	"SELECT id, workload, policy, state, step, from_instance, to_type, to_instance, " \
	"shadow_instance, reason, approved, force, created_ns, updated_ns FROM migrations "

/* ---- small helpers ------------------------------------------------------ */

static int db_error(struct us_api_ctx *ctx, char *msg, size_t msglen)
{
	snprintf(msg, msglen, "store: %s", sqlite3_errmsg(ctx->db));
	return GRPC_STATUS_INTERNAL;
}

static int out_of_memory(char *msg, size_t msglen)
{
	snprintf(msg, msglen, "out of memory");
	return GRPC_STATUS_RESOURCE_EXHAUSTED;
}

/* Prepares sql and binds args[i] as text parameter ?i+1. */
static int prepare(struct us_api_ctx *ctx, const char *sql, const char *const *args,
		   size_t nargs, sqlite3_stmt **q, char *msg, size_t msglen)
{
	if (sqlite3_prepare_v2(ctx->db, sql, -1, q, NULL) != SQLITE_OK)
		return db_error(ctx, msg, msglen);
	for (size_t i = 0; i < nargs; i++)
		sqlite3_bind_text(*q, (int)i + 1, args[i], -1, SQLITE_STATIC);
	return GRPC_STATUS_OK;
}

/* Runs an UPDATE whose ?1 is key (text; NULL: the integer id) and ?2 the
 * time now. */
static int update_now(struct us_api_ctx *ctx, const char *sql, const char *key, int64_t id,
		      char *msg, size_t msglen)
{
	sqlite3_stmt *q = NULL;
	int rc = prepare(ctx, sql, &key, key ? 1 : 0, &q, msg, msglen);

	if (rc != GRPC_STATUS_OK)
		goto cleanup;
	if (!key)
		sqlite3_bind_int64(q, 1, id);
	sqlite3_bind_int64(q, 2, (sqlite3_int64)us_now_ns());
	if (sqlite3_step(q) != SQLITE_DONE)
		rc = db_error(ctx, msg, msglen);
cleanup:
	sqlite3_finalize(q);
	return rc;
}

static int tx_begin(struct us_api_ctx *ctx, char *msg, size_t msglen)
{
	if (sqlite3_exec(ctx->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		return db_error(ctx, msg, msglen);
	return GRPC_STATUS_OK;
}

/* Commits when rc is OK, else rolls back; returns the outcome. */
static int tx_end(struct us_api_ctx *ctx, int rc, char *msg, size_t msglen)
{
	if (rc == GRPC_STATUS_OK && sqlite3_exec(ctx->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		rc = db_error(ctx, msg, msglen);
	/* an interrupted or failed statement may have rolled back already */
	if (rc != GRPC_STATUS_OK && !sqlite3_get_autocommit(ctx->db))
		sqlite3_exec(ctx->db, "ROLLBACK", NULL, NULL, NULL);
	return rc;
}

static void free_msg(void *m)
{
	if (m)
		protobuf_c_message_free_unpacked(m, NULL);
}

/* ---- what a request names: workload, type, mode, policy ------------------- */

/* The workload names a file in workloads_dir: no '/' and no surprises. */
static int check_workload_name(const char *w, char *msg, size_t msglen)
{
	size_t n = strlen(w);

	if (n == 0)
		snprintf(msg, msglen, "workload: required");
	else if (n > 127 || strspn(w, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
				      "0123456789_.-") != n)
		snprintf(msg, msglen, "workload: expected 1-127 of [A-Za-z0-9_.-], got '%.128s'",
			 w);
	else
		return GRPC_STATUS_OK;
	return GRPC_STATUS_INVALID_ARGUMENT;
}

/* WORKLOADS_DIR/WORKLOAD.yaml must load: the controller cannot run a
 * workload it has no definition of. */
static int check_definition(const struct us_api_ctx *ctx, const char *workload, char *msg,
			    size_t msglen)
{
	struct us_workload_def *def = NULL;
	char path[4096], err[1024];
	int rc = check_workload_name(workload, msg, msglen);

	if (rc != GRPC_STATUS_OK)
		return rc;
	rc = GRPC_STATUS_FAILED_PRECONDITION;
	if (!ctx->workloads_dir || !ctx->workloads_dir[0]) {
		snprintf(msg, msglen, "controller.workloads_dir is not set in the coordinator's "
			 "config: no workload definitions");
		goto cleanup;
	}
	if ((size_t)snprintf(path, sizeof(path), "%s/%s.yaml", ctx->workloads_dir, workload) >=
	    sizeof(path)) {
		snprintf(msg, msglen, "controller.workloads_dir: path too long");
		goto cleanup;
	}
	if (!(def = malloc(sizeof(*def)))) {
		rc = out_of_memory(msg, msglen);
		goto cleanup;
	}
	if (us_workload_def_load(path, def, err, sizeof(err)) < 0) {
		snprintf(msg, msglen, "%s", err);
		goto cleanup;
	}
	rc = GRPC_STATUS_OK;
cleanup:
	free(def);
	return rc;
}

static int check_type(const struct us_api_ctx *ctx, const char *type, char *msg, size_t msglen)
{
	struct us_catalog cat = { 0 };
	char buf[US_CATALOG_PATH_MAX], err[1024];
	const char *path = ctx->catalog_path && ctx->catalog_path[0]
				   ? ctx->catalog_path : us_catalog_default_path(buf, sizeof(buf));
	int rc = GRPC_STATUS_INVALID_ARGUMENT;

	if (!type[0]) {
		snprintf(msg, msglen, "instance_type: required (a type of the catalog %s)", path);
		return rc;
	}
	if (us_catalog_load(path, &cat, err, sizeof(err)) < 0) {
		snprintf(msg, msglen, "%s", err);
		return GRPC_STATUS_FAILED_PRECONDITION;
	}
	if (us_catalog_find(&cat, type))
		rc = GRPC_STATUS_OK;
	else
		snprintf(msg, msglen, "instance_type: '%.64s' is not in the catalog %s", type,
			 path);
	us_catalog_free(&cat);
	return rc;
}

static int check_mode(const char *mode, char *msg, size_t msglen)
{
	if (strcmp(mode, "clone") == 0 || strcmp(mode, "subset") == 0 ||
	    strcmp(mode, "mirror") == 0)
		return GRPC_STATUS_OK;
	snprintf(msg, msglen, "mode: expected clone, subset or mirror, got '%.64s'", mode);
	return GRPC_STATUS_INVALID_ARGUMENT;
}

/* The policies file, loaded whole; NULL with the loader's message. */
static struct us_policy_set *load_policies(const struct us_api_ctx *ctx, char *err,
					   size_t errlen)
{
	struct us_policy_set *s = malloc(sizeof(*s));

	if (!s) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	/* "" is a missing file: the defaults */
	if (us_policy_load(ctx->policies_path ? ctx->policies_path : "", s, err, errlen) < 0) {
		free(s);
		return NULL;
	}
	return s;
}

static int check_policy(const struct us_api_ctx *ctx, const char *name, char *msg,
			size_t msglen)
{
	struct us_policy_set *s;
	char err[1024];
	size_t len;
	int rc = GRPC_STATUS_OK;

	if (!(s = load_policies(ctx, err, sizeof(err)))) {
		snprintf(msg, msglen, "%s", err);
		return GRPC_STATUS_FAILED_PRECONDITION;
	}
	if (!us_policy_find(s, name)) {
		len = (size_t)snprintf(msg, msglen, "policy: no policy '%.64s' in %s (known:", name,
				       ctx->policies_path && ctx->policies_path[0]
					       ? ctx->policies_path : "the defaults");
		for (size_t i = 0; i < s->n && len < msglen; i++)
			len += (size_t)snprintf(msg + len, msglen - len, "%s %s", i ? "," : "",
						s->p[i].name);
		if (len < msglen)
			snprintf(msg + len, msglen - len, ")");
		rc = GRPC_STATUS_INVALID_ARGUMENT;
	}
	free(s);
	return rc;
}

/* ---- instances -------------------------------------------------------------- */

static Understudy__Api__Instance *instance_from_row(sqlite3_stmt *q)
{
	Understudy__Api__Instance *in = malloc(sizeof(*in));

	if (!in)
		return NULL;
	understudy__api__instance__init(in);
	in->id = us_store_col_dup(q, 0);
	in->workload = us_store_col_dup(q, 1);
	in->role = us_store_col_dup(q, 2);
	in->type = us_store_col_dup(q, 3);
	in->mode = us_store_col_dup(q, 4);
	in->desired = us_store_col_dup(q, 5);
	in->state = us_store_col_dup(q, 6);
	in->address = us_store_col_dup(q, 7);
	in->provision_s = sqlite3_column_double(q, 8);
	in->error = us_store_col_dup(q, 9);
	in->created_ns = (uint64_t)sqlite3_column_int64(q, 10);
	in->updated_ns = (uint64_t)sqlite3_column_int64(q, 11);
	in->cgroup = us_store_col_dup(q, 12);
	if (!in->id || !in->workload || !in->role || !in->type || !in->mode || !in->desired ||
	    !in->state || !in->address || !in->error || !in->cgroup) {
		free_msg(in);
		return NULL;
	}
	return in;
}

/* The instances sql (INSTANCE_SELECT ...) finds, appended to *out. */
static int select_instances(struct us_api_ctx *ctx, const char *sql, const char *const *args,
			    size_t nargs, Understudy__Api__Instance ***out, size_t *n, char *msg,
			    size_t msglen)
{
	sqlite3_stmt *q = NULL;
	int rc = prepare(ctx, sql, args, nargs, &q, msg, msglen), step;

	if (rc != GRPC_STATUS_OK)
		goto cleanup;
	while ((step = sqlite3_step(q)) == SQLITE_ROW) {
		Understudy__Api__Instance *in = instance_from_row(q);

		if (!in || us_ptrs_push((void ***)out, n, in) < 0) {
			free_msg(in);
			rc = out_of_memory(msg, msglen);
			goto cleanup;
		}
	}
	if (step != SQLITE_DONE)
		rc = db_error(ctx, msg, msglen);
cleanup:
	sqlite3_finalize(q);
	return rc;
}

static void free_instances(Understudy__Api__Instance **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free_msg(v[i]);
	free(v);
}

/* The first instance sql finds, or *out = NULL. */
static int select_instance(struct us_api_ctx *ctx, const char *sql, const char *const *args,
			   size_t nargs, Understudy__Api__Instance **out, char *msg, size_t msglen)
{
	Understudy__Api__Instance **v = NULL;
	size_t n = 0;
	int rc = select_instances(ctx, sql, args, nargs, &v, &n, msg, msglen);

	*out = NULL;
	if (rc == GRPC_STATUS_OK && n > 0) {
		*out = v[0];
		v[0] = NULL;
	}
	free_instances(v, n);
	return rc;
}

static int instance_by_id(struct us_api_ctx *ctx, const char *id,
			  Understudy__Api__Instance **out, char *msg, size_t msglen)
{
	return select_instance(ctx, INSTANCE_SELECT "WHERE id = ?1", &id, 1, out, msg, msglen);
}

/* A new id (instance_id.h), or INTERNAL with the store's error. */
static int new_instance_id(struct us_api_ctx *ctx, const char *workload, const char *type,
			   char id[ID_BUF], char *msg, size_t msglen)
{
	return us_instance_id_new(ctx->db, workload, type, id, ID_BUF, msg, msglen) < 0 ?
	       GRPC_STATUS_INTERNAL : GRPC_STATUS_OK;
}

/* Inserts a new instance row (state pending) and reads it back. */
static int insert_instance(struct us_api_ctx *ctx, const char *workload, const char *type,
			   const char *role, const char *mode, double sample, uint32_t scale,
			   Understudy__Api__Instance **out, char *msg, size_t msglen)
{
	char id[ID_BUF];
	sqlite3_stmt *q = NULL;
	uint64_t now = us_now_ns();
	int rc = new_instance_id(ctx, workload, type, id, msg, msglen);

	if (rc != GRPC_STATUS_OK)
		return rc;
	if (sqlite3_prepare_v2(ctx->db, "INSERT INTO instances(id, workload, role, type, mode, "
			       "sample, scale, desired, state, created_ns, updated_ns) VALUES "
			       "(?1, ?2, ?3, ?4, ?5, ?6, ?7, 'running', 'pending', ?8, ?8)", -1, &q,
			       NULL) != SQLITE_OK)
		return db_error(ctx, msg, msglen);
	sqlite3_bind_text(q, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 2, workload, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 3, role, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 4, type, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 5, mode, -1, SQLITE_STATIC);
	sqlite3_bind_double(q, 6, sample);
	sqlite3_bind_int64(q, 7, scale);
	sqlite3_bind_int64(q, 8, (sqlite3_int64)now);
	if (sqlite3_step(q) != SQLITE_DONE)
		rc = db_error(ctx, msg, msglen);
	sqlite3_finalize(q);
	if (rc == GRPC_STATUS_OK)
		rc = instance_by_id(ctx, id, out, msg, msglen);
	if (rc == GRPC_STATUS_OK && !*out)
		rc = out_of_memory(msg, msglen);
	return rc;
}

/* The production instance of the workload on type, or a new one. */
static int deploy_tx(struct us_api_ctx *ctx, const Understudy__Api__DeployRequest *in,
		     Understudy__Api__DeployResponse *r, char *msg, size_t msglen)
{
	const char *args[] = { in->workload, in->instance_type };
	int rc = select_instance(ctx, INSTANCE_SELECT "WHERE workload = ?1 AND type = ?2 AND "
				 "role = 'production' AND desired = 'running' ORDER BY created_ns",
				 args, 2, &r->instance, msg, msglen);

	if (rc != GRPC_STATUS_OK)
		return rc;
	r->existing = r->instance != NULL;
	if (!r->instance)
		rc = insert_instance(ctx, in->workload, in->instance_type, "production", "clone", 0,
				     1, &r->instance, msg, msglen);
	return rc;
}

int us_api_deploy(struct us_api_ctx *ctx, const ProtobufCMessage *req, ProtobufCMessage **resp,
		  char *msg, size_t msglen)
{
	const Understudy__Api__DeployRequest *in = (const void *)req;
	Understudy__Api__DeployResponse *r = NULL;
	int rc = check_definition(ctx, in->workload, msg, msglen);

	if (rc == GRPC_STATUS_OK)
		rc = check_type(ctx, in->instance_type, msg, msglen);
	if (rc != GRPC_STATUS_OK)
		return rc;
	if (!(r = malloc(sizeof(*r))))
		return out_of_memory(msg, msglen);
	understudy__api__deploy_response__init(r);
	rc = tx_begin(ctx, msg, msglen);
	if (rc == GRPC_STATUS_OK)
		rc = tx_end(ctx, deploy_tx(ctx, in, r, msg, msglen), msg, msglen);
	if (rc != GRPC_STATUS_OK) {
		free_msg(r);
		return rc;
	}
	*resp = &r->base;
	return rc;
}

int us_api_instances_list(struct us_api_ctx *ctx, const ProtobufCMessage *req,
			  ProtobufCMessage **resp, char *msg, size_t msglen)
{
	const Understudy__Api__InstancesListRequest *in = (const void *)req;
	Understudy__Api__InstancesListResponse *r = malloc(sizeof(*r));
	int rc;

	if (!r)
		return out_of_memory(msg, msglen);
	understudy__api__instances_list_response__init(r);
	/* without all: what is wanted or still there, not the long gone */
	rc = select_instances(ctx, in->all
			      ? INSTANCE_SELECT "WHERE (?1 = '' OR workload = ?1) "
				"ORDER BY created_ns, id"
			      : INSTANCE_SELECT "WHERE (?1 = '' OR workload = ?1) AND "
				"(desired = 'running' OR state != 'absent') "
				"ORDER BY created_ns, id",
			      (const char *const *)&in->workload, 1, &r->instances, &r->n_instances,
			      msg, msglen);
	if (rc != GRPC_STATUS_OK) {
		free_msg(r);
		return rc;
	}
	*resp = &r->base;
	return rc;
}

/* FAILED_PRECONDITION when an active migration uses the instance (the
 * controller owns it until the migration ends). */
static int check_not_migrating(struct us_api_ctx *ctx, const char *id, char *msg, size_t msglen)
{
	sqlite3_stmt *q = NULL;
	int rc = prepare(ctx, "SELECT id, workload, state FROM migrations WHERE " ACTIVE " AND "
			 "?1 IN (from_instance, to_instance, shadow_instance) ORDER BY id",
			 &id, 1, &q, msg, msglen), step;

	if (rc != GRPC_STATUS_OK)
		goto cleanup;
	step = sqlite3_step(q);
	if (step == SQLITE_ROW) {
		snprintf(msg, msglen, "%s is part of migration %lld of %s (%s): understudy "
			 "rollback %s, or wait for it to finish", id,
			 (long long)sqlite3_column_int64(q, 0), sqlite3_column_text(q, 1),
			 sqlite3_column_text(q, 2), sqlite3_column_text(q, 1));
		rc = GRPC_STATUS_FAILED_PRECONDITION;
	} else if (step != SQLITE_DONE) {
		rc = db_error(ctx, msg, msglen);
	}
cleanup:
	sqlite3_finalize(q);
	return rc;
}

static int mark_absent(struct us_api_ctx *ctx, const char *id, char *msg, size_t msglen)
{
	return update_now(ctx, "UPDATE instances SET desired = 'absent', absent_after_ns = 0, "
			  "updated_ns = ?2 WHERE id = ?1", id, 0, msg, msglen);
}

static int decommission_tx(struct us_api_ctx *ctx, const char *id,
			   Understudy__Api__DecommissionResponse *r, char *msg, size_t msglen)
{
	int rc = instance_by_id(ctx, id, &r->instance, msg, msglen);

	if (rc != GRPC_STATUS_OK)
		return rc;
	if (!r->instance) {
		snprintf(msg, msglen, "id: no instance '%.64s'", id);
		return GRPC_STATUS_NOT_FOUND;
	}
	free_msg(r->instance);
	r->instance = NULL;
	if ((rc = check_not_migrating(ctx, id, msg, msglen)) != GRPC_STATUS_OK ||
	    (rc = mark_absent(ctx, id, msg, msglen)) != GRPC_STATUS_OK ||
	    (rc = instance_by_id(ctx, id, &r->instance, msg, msglen)) != GRPC_STATUS_OK)
		return rc;
	return r->instance ? GRPC_STATUS_OK : out_of_memory(msg, msglen);
}

int us_api_decommission(struct us_api_ctx *ctx, const ProtobufCMessage *req,
			ProtobufCMessage **resp, char *msg, size_t msglen)
{
	const Understudy__Api__DecommissionRequest *in = (const void *)req;
	Understudy__Api__DecommissionResponse *r;
	int rc;

	if (!in->id[0]) {
		snprintf(msg, msglen, "id: required (an instance id, see understudy instances)");
		return GRPC_STATUS_INVALID_ARGUMENT;
	}
	if (!(r = malloc(sizeof(*r))))
		return out_of_memory(msg, msglen);
	understudy__api__decommission_response__init(r);
	rc = tx_begin(ctx, msg, msglen);
	if (rc == GRPC_STATUS_OK)
		rc = tx_end(ctx, decommission_tx(ctx, in->id, r, msg, msglen), msg, msglen);
	if (rc != GRPC_STATUS_OK) {
		free_msg(r);
		return rc;
	}
	*resp = &r->base;
	return rc;
}

/* ---- shadows ------------------------------------------------------------------ */

/* Fills in the defaults (mirror, sample 1, scale 1) and checks every field. */
static int shadow_args(const struct us_api_ctx *ctx, const Understudy__Api__ShadowRequest *in,
		       const char **mode, double *sample, uint32_t *scale, char *msg,
		       size_t msglen)
{
	int rc;

	*mode = in->mode[0] ? in->mode : "mirror";
	*sample = in->sample != 0 ? in->sample : 1.0;
	*scale = in->scale ? in->scale : 1;
	if ((rc = check_mode(*mode, msg, msglen)) != GRPC_STATUS_OK)
		return rc;
	if (!(*sample > 0 && *sample <= 1)) {
		snprintf(msg, msglen, "sample: must be in (0, 1], got %g", in->sample);
		return GRPC_STATUS_INVALID_ARGUMENT;
	}
	if (*scale > 100) {
		snprintf(msg, msglen, "scale: at most 100, got %u", in->scale);
		return GRPC_STATUS_INVALID_ARGUMENT;
	}
	if ((rc = check_definition(ctx, in->workload, msg, msglen)) != GRPC_STATUS_OK)
		return rc;
	return check_type(ctx, in->instance_type, msg, msglen);
}

static int shadow_start_tx(struct us_api_ctx *ctx, const Understudy__Api__ShadowRequest *in,
			   const char *mode, double sample, uint32_t scale,
			   Understudy__Api__ShadowResponse *r, char *msg, size_t msglen)
{
	const char *w = in->workload;
	Understudy__Api__Instance *found = NULL;
	int rc = GRPC_STATUS_OK;

	if (strcmp(mode, "mirror") == 0) {
		/* mirror copies production's live requests: there must be one */
		rc = select_instance(ctx, INSTANCE_SELECT "WHERE workload = ?1 AND "
				     "role = 'production' AND desired = 'running'", &w, 1, &found,
				     msg, msglen);
		if (rc == GRPC_STATUS_OK && !found) {
			snprintf(msg, msglen, "%s has no production instance: understudy deploy %s "
				 "--type TYPE first", w, w);
			rc = GRPC_STATUS_FAILED_PRECONDITION;
		}
		free_msg(found);
		found = NULL;
	}
	if (rc == GRPC_STATUS_OK)
		rc = select_instance(ctx, INSTANCE_SELECT "WHERE workload = ?1 AND role = 'shadow' "
				     "AND desired = 'running' ORDER BY created_ns", &w, 1, &found,
				     msg, msglen);
	if (rc != GRPC_STATUS_OK)
		return rc;
	if (found && (strcmp(found->type, in->instance_type) != 0 ||
		      strcmp(found->mode, mode) != 0)) {
		snprintf(msg, msglen, "%s already has shadow %s (%s, %s): understudy shadow "
			 "stop %s first", w, found->id, found->type, found->mode, w);
		free_msg(found);
		return GRPC_STATUS_FAILED_PRECONDITION;
	}
	r->existing = found != NULL;
	r->instance = found;
	if (!found)
		rc = insert_instance(ctx, w, in->instance_type, "shadow", mode, sample, scale,
				     &r->instance, msg, msglen);
	if (rc == GRPC_STATUS_OK && !(r->shadow_id = strdup(r->instance->id)))
		rc = out_of_memory(msg, msglen);
	return rc;
}

int us_api_shadow_start(struct us_api_ctx *ctx, const ProtobufCMessage *req,
			ProtobufCMessage **resp, char *msg, size_t msglen)
{
	const Understudy__Api__ShadowRequest *in = (const void *)req;
	Understudy__Api__ShadowResponse *r;
	const char *mode;
	double sample;
	uint32_t scale;
	int rc = shadow_args(ctx, in, &mode, &sample, &scale, msg, msglen);

	if (rc != GRPC_STATUS_OK)
		return rc;
	if (!(r = malloc(sizeof(*r))))
		return out_of_memory(msg, msglen);
	understudy__api__shadow_response__init(r);
	rc = tx_begin(ctx, msg, msglen);
	if (rc == GRPC_STATUS_OK)
		rc = tx_end(ctx, shadow_start_tx(ctx, in, mode, sample, scale, r, msg, msglen), msg,
			    msglen);
	if (rc != GRPC_STATUS_OK) {
		free_msg(r);
		return rc;
	}
	*resp = &r->base;
	return rc;
}

/* A shadow a Shadowing migration is validating stays: stopping it would
 * leave the migration nothing to judge. */
static int check_not_validating(struct us_api_ctx *ctx, const char *workload, char *msg,
				size_t msglen)
{
	sqlite3_stmt *q = NULL;
	int rc = prepare(ctx, "SELECT m.id, m.shadow_instance FROM migrations m JOIN instances i "
			 "ON i.id = m.shadow_instance WHERE m.state = 'Shadowing' AND "
			 "i.workload = ?1 AND i.role = 'shadow' AND i.desired = 'running' "
			 "ORDER BY m.id", &workload, 1, &q, msg, msglen), step;

	if (rc != GRPC_STATUS_OK)
		goto cleanup;
	step = sqlite3_step(q);
	if (step == SQLITE_ROW) {
		snprintf(msg, msglen, "shadow %s is being validated by migration %lld of %s "
			 "(Shadowing): understudy rollback %s first", sqlite3_column_text(q, 1),
			 (long long)sqlite3_column_int64(q, 0), workload, workload);
		rc = GRPC_STATUS_FAILED_PRECONDITION;
	} else if (step != SQLITE_DONE) {
		rc = db_error(ctx, msg, msglen);
	}
cleanup:
	sqlite3_finalize(q);
	return rc;
}

static int shadow_stop_tx(struct us_api_ctx *ctx, const char *workload,
			  Understudy__Api__ShadowStopResponse *r, char *msg, size_t msglen)
{
	Understudy__Api__Instance **active = NULL;
	size_t n = 0;
	int rc = check_not_validating(ctx, workload, msg, msglen);

	if (rc == GRPC_STATUS_OK)
		rc = select_instances(ctx, INSTANCE_SELECT "WHERE workload = ?1 AND "
				      "role = 'shadow' AND desired = 'running' ORDER BY created_ns",
				      &workload, 1, &active, &n, msg, msglen);
	for (size_t i = 0; i < n && rc == GRPC_STATUS_OK; i++) {
		Understudy__Api__Instance *now = NULL;

		rc = mark_absent(ctx, active[i]->id, msg, msglen);
		if (rc == GRPC_STATUS_OK)
			rc = instance_by_id(ctx, active[i]->id, &now, msg, msglen);
		if (rc == GRPC_STATUS_OK && (!now || us_ptrs_push((void ***)&r->stopped, &r->n_stopped,
							  now) < 0)) {
			free_msg(now);
			rc = out_of_memory(msg, msglen);
		}
	}
	free_instances(active, n);
	return rc;
}

int us_api_shadow_stop(struct us_api_ctx *ctx, const ProtobufCMessage *req,
		       ProtobufCMessage **resp, char *msg, size_t msglen)
{
	const Understudy__Api__ShadowStopRequest *in = (const void *)req;
	Understudy__Api__ShadowStopResponse *r;
	int rc = check_workload_name(in->workload, msg, msglen);

	if (rc != GRPC_STATUS_OK)
		return rc;
	if (!(r = malloc(sizeof(*r))))
		return out_of_memory(msg, msglen);
	understudy__api__shadow_stop_response__init(r);
	rc = tx_begin(ctx, msg, msglen);
	if (rc == GRPC_STATUS_OK)
		rc = tx_end(ctx, shadow_stop_tx(ctx, in->workload, r, msg, msglen), msg, msglen);
	if (rc != GRPC_STATUS_OK) {
		free_msg(r);
		return rc;
	}
	*resp = &r->base;
	return rc;
}

/* ---- migrations ------------------------------------------------------------------ */

static Understudy__Api__Migration *migration_from_row(sqlite3_stmt *q)
{
	Understudy__Api__Migration *m = malloc(sizeof(*m));

	if (!m)
		return NULL;
	understudy__api__migration__init(m);
	m->id = (uint64_t)sqlite3_column_int64(q, 0);
	m->workload = us_store_col_dup(q, 1);
	m->policy = us_store_col_dup(q, 2);
	m->state = us_store_col_dup(q, 3);
	m->step = sqlite3_column_int(q, 4);
	m->from_instance = us_store_col_dup(q, 5);
	m->to_type = us_store_col_dup(q, 6);
	m->to_instance = us_store_col_dup(q, 7);
	m->shadow_instance = us_store_col_dup(q, 8);
	m->reason = us_store_col_dup(q, 9);
	m->approved = sqlite3_column_int(q, 10) != 0;
	m->force = sqlite3_column_int(q, 11) != 0;
	m->created_ns = (uint64_t)sqlite3_column_int64(q, 12);
	m->updated_ns = (uint64_t)sqlite3_column_int64(q, 13);
	if (!m->workload || !m->policy || !m->state || !m->from_instance || !m->to_type ||
	    !m->to_instance || !m->shadow_instance || !m->reason) {
		free_msg(m);
		return NULL;
	}
	return m;
}

static int add_transitions(struct us_api_ctx *ctx, Understudy__Api__Migration *m, char *msg,
			   size_t msglen)
{
	sqlite3_stmt *q = NULL;
	int rc = GRPC_STATUS_OK, step;

	if (sqlite3_prepare_v2(ctx->db, "SELECT from_state, to_state, step, at_ns, reason FROM "
			       "migration_journal WHERE migration_id = ?1 ORDER BY id", -1, &q,
			       NULL) != SQLITE_OK)
		return db_error(ctx, msg, msglen);
	sqlite3_bind_int64(q, 1, (sqlite3_int64)m->id);
	while ((step = sqlite3_step(q)) == SQLITE_ROW) {
		Understudy__Api__MigrationTransition *t = malloc(sizeof(*t));

		if (t) {
			understudy__api__migration_transition__init(t);
			t->from_state = us_store_col_dup(q, 0);
			t->to_state = us_store_col_dup(q, 1);
			t->step = sqlite3_column_int(q, 2);
			t->at_ns = (uint64_t)sqlite3_column_int64(q, 3);
			t->reason = us_store_col_dup(q, 4);
		}
		if (!t || !t->from_state || !t->to_state || !t->reason ||
		    us_ptrs_push((void ***)&m->transitions, &m->n_transitions, t) < 0) {
			free_msg(t);
			rc = out_of_memory(msg, msglen);
			goto cleanup;
		}
	}
	if (step != SQLITE_DONE)
		rc = db_error(ctx, msg, msglen);
cleanup:
	sqlite3_finalize(q);
	return rc;
}

/* Traffic on the new instance: the policy's step while Shifting, all of it
 * once Completed. ps NULL (policies unreadable) or an unknown policy: 0. */
static double step_percent(const Understudy__Api__Migration *m, const struct us_policy_set *ps)
{
	const struct us_migration_policy *p = ps ? us_policy_find(ps, m->policy) : NULL;

	if (strcmp(m->state, "Completed") == 0)
		return 100;
	if (strcmp(m->state, "Shifting") == 0 && p && m->step >= 0 && (size_t)m->step < p->nsteps)
		return p->steps[m->step];
	return 0;
}

/* The migrations sql (MIGRATION_SELECT ...) finds, with their transitions
 * and step_percent, appended to *out. */
static int select_migrations(struct us_api_ctx *ctx, const char *sql, const char *const *args,
			     size_t nargs, Understudy__Api__Migration ***out, size_t *n, char *msg,
			     size_t msglen)
{
	struct us_policy_set *ps = NULL;
	sqlite3_stmt *q = NULL;
	char err[1024];
	size_t first = *n;
	int rc = prepare(ctx, sql, args, nargs, &q, msg, msglen), step;

	if (rc != GRPC_STATUS_OK)
		goto cleanup;
	while ((step = sqlite3_step(q)) == SQLITE_ROW) {
		Understudy__Api__Migration *m = migration_from_row(q);

		if (!m || us_ptrs_push((void ***)out, n, m) < 0) {
			free_msg(m);
			rc = out_of_memory(msg, msglen);
			goto cleanup;
		}
	}
	if (step != SQLITE_DONE) {
		rc = db_error(ctx, msg, msglen);
		goto cleanup;
	}
	ps = *n > first ? load_policies(ctx, err, sizeof(err)) : NULL;
	for (size_t i = first; i < *n && rc == GRPC_STATUS_OK; i++) {
		(*out)[i]->step_percent = step_percent((*out)[i], ps);
		rc = add_transitions(ctx, (*out)[i], msg, msglen);
	}
cleanup:
	free(ps);
	sqlite3_finalize(q);
	return rc;
}

/* The workload's active migration (at most one: Start refuses a second). */
static int active_migration(struct us_api_ctx *ctx, const char *workload,
			    Understudy__Api__Migration **out, char *msg, size_t msglen)
{
	Understudy__Api__Migration **v = NULL;
	size_t n = 0;
	int rc = select_migrations(ctx, MIGRATION_SELECT "WHERE workload = ?1 AND " ACTIVE
				   " ORDER BY id DESC LIMIT 1", &workload, 1, &v, &n, msg, msglen);

	*out = n > 0 ? v[0] : NULL;
	free(v);
	return rc;
}

static int migrate_args(const struct us_api_ctx *ctx, const Understudy__Api__MigrateRequest *in,
			const char **policy, const char **shadow_mode, char *msg, size_t msglen)
{
	int rc;

	*policy = in->policy[0] ? in->policy : "default";
	*shadow_mode = in->shadow_mode[0] ? in->shadow_mode : "mirror";
	if ((rc = check_definition(ctx, in->workload, msg, msglen)) != GRPC_STATUS_OK ||
	    (rc = check_policy(ctx, *policy, msg, msglen)) != GRPC_STATUS_OK)
		return rc;
	if (in->instance_type[0] &&
	    (rc = check_type(ctx, in->instance_type, msg, msglen)) != GRPC_STATUS_OK)
		return rc;
	if ((rc = check_mode(*shadow_mode, msg, msglen)) != GRPC_STATUS_OK)
		snprintf(msg, msglen, "shadow_mode: expected clone, subset or mirror, got '%.64s'",
			 *shadow_mode);
	return rc;
}

static int insert_migration(struct us_api_ctx *ctx, const Understudy__Api__MigrateRequest *in,
			    const char *policy, const char *shadow_mode, int64_t *id, char *msg,
			    size_t msglen)
{
	sqlite3_stmt *q = NULL;
	uint64_t now = us_now_ns();
	int rc = GRPC_STATUS_OK;

	if (sqlite3_prepare_v2(ctx->db, "INSERT INTO migrations(workload, policy, to_type, "
			       "shadow_mode, state, step, state_since_ns, force, created_ns, "
			       "updated_ns) "
			       "VALUES (?1, ?2, ?3, ?4, 'Observing', -1, ?5, ?6, ?5, ?5)",
			       -1, &q, NULL) != SQLITE_OK)
		return db_error(ctx, msg, msglen);
	sqlite3_bind_text(q, 1, in->workload, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 2, policy, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 3, in->instance_type, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 4, shadow_mode, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 5, (sqlite3_int64)now);
	sqlite3_bind_int(q, 6, in->force ? 1 : 0);
	if (sqlite3_step(q) != SQLITE_DONE) {
		rc = db_error(ctx, msg, msglen);
		goto cleanup;
	}
	*id = sqlite3_last_insert_rowid(ctx->db);
	sqlite3_finalize(q);
	/* the first transition, journaled with the state it enters */
	if (sqlite3_prepare_v2(ctx->db, "INSERT INTO migration_journal(migration_id, from_state, "
			       "to_state, step, at_ns, reason) "
			       "VALUES (?1, '', 'Observing', -1, ?2, ?3)", -1, &q,
			       NULL) != SQLITE_OK)
		return db_error(ctx, msg, msglen);
	sqlite3_bind_int64(q, 1, *id);
	sqlite3_bind_int64(q, 2, (sqlite3_int64)now);
	sqlite3_bind_text(q, 3, in->force ? "requested (force: validation skipped)" : "requested",
			  -1, SQLITE_STATIC);
	if (sqlite3_step(q) != SQLITE_DONE)
		rc = db_error(ctx, msg, msglen);
cleanup:
	sqlite3_finalize(q);
	return rc;
}

static int migrate_start_tx(struct us_api_ctx *ctx, const Understudy__Api__MigrateRequest *in,
			    const char *policy, const char *shadow_mode, int64_t *id, char *msg,
			    size_t msglen)
{
	Understudy__Api__Migration *m = NULL;
	int rc = active_migration(ctx, in->workload, &m, msg, msglen);

	if (rc == GRPC_STATUS_OK && m) {
		snprintf(msg, msglen, "%s already has migration %llu (%s): follow it with "
			 "understudy migrations %s, or understudy rollback %s", in->workload,
			 (unsigned long long)m->id, m->state, in->workload, in->workload);
		rc = GRPC_STATUS_ALREADY_EXISTS;
	}
	free_msg(m);
	if (rc == GRPC_STATUS_OK)
		rc = insert_migration(ctx, in, policy, shadow_mode, id, msg, msglen);
	return rc;
}

int us_api_migrate_start(struct us_api_ctx *ctx, const ProtobufCMessage *req,
			 ProtobufCMessage **resp, char *msg, size_t msglen)
{
	const Understudy__Api__MigrateRequest *in = (const void *)req;
	Understudy__Api__MigrateResponse *r;
	const char *policy, *shadow_mode;
	char idbuf[24];
	int64_t id = 0;
	int rc = migrate_args(ctx, in, &policy, &shadow_mode, msg, msglen);

	if (rc != GRPC_STATUS_OK)
		return rc;
	rc = tx_begin(ctx, msg, msglen);
	if (rc == GRPC_STATUS_OK)
		rc = tx_end(ctx, migrate_start_tx(ctx, in, policy, shadow_mode, &id, msg, msglen),
			    msg, msglen);
	if (rc != GRPC_STATUS_OK)
		return rc;
	if (!(r = malloc(sizeof(*r))))
		return out_of_memory(msg, msglen);
	understudy__api__migrate_response__init(r);
	snprintf(idbuf, sizeof(idbuf), "%lld", (long long)id);
	r->migration_id = strdup(idbuf);
	r->state = strdup("Observing");
	if (!r->migration_id || !r->state) {
		free_msg(r);
		return out_of_memory(msg, msglen);
	}
	*resp = &r->base;
	return rc;
}

/* Runs set_sql (approved or rollback_requested = 1) on the workload's
 * active migration; the controller acts on it at its next pass. */
static int migrate_flag_tx(struct us_api_ctx *ctx, const char *workload, const char *set_sql,
			   Understudy__Api__Migration **out, char *msg, size_t msglen)
{
	int64_t id;
	int rc = active_migration(ctx, workload, out, msg, msglen);

	if (rc != GRPC_STATUS_OK)
		return rc;
	if (!*out) {
		snprintf(msg, msglen, "workload: %s has no active migration", workload);
		return GRPC_STATUS_NOT_FOUND;
	}
	id = (int64_t)(*out)->id;
	free_msg(*out);
	*out = NULL;
	if ((rc = update_now(ctx, set_sql, NULL, id, msg, msglen)) != GRPC_STATUS_OK ||
	    (rc = active_migration(ctx, workload, out, msg, msglen)) != GRPC_STATUS_OK)
		return rc;
	return *out ? GRPC_STATUS_OK : out_of_memory(msg, msglen);
}

static int migrate_flag(struct us_api_ctx *ctx, const ProtobufCMessage *req,
			ProtobufCMessage **resp, const char *set_sql, char *msg, size_t msglen)
{
	const Understudy__Api__MigrateActionRequest *in = (const void *)req;
	Understudy__Api__MigrateActionResponse *r;
	int rc = check_workload_name(in->workload, msg, msglen);

	if (rc != GRPC_STATUS_OK)
		return rc;
	if (!(r = malloc(sizeof(*r))))
		return out_of_memory(msg, msglen);
	understudy__api__migrate_action_response__init(r);
	rc = tx_begin(ctx, msg, msglen);
	if (rc == GRPC_STATUS_OK)
		rc = tx_end(ctx, migrate_flag_tx(ctx, in->workload, set_sql, &r->migration, msg,
						 msglen), msg, msglen);
	if (rc != GRPC_STATUS_OK) {
		free_msg(r);
		return rc;
	}
	*resp = &r->base;
	return rc;
}

int us_api_migrate_approve(struct us_api_ctx *ctx, const ProtobufCMessage *req,
			   ProtobufCMessage **resp, char *msg, size_t msglen)
{
	return migrate_flag(ctx, req, resp, "UPDATE migrations SET approved = 1, "
			    "updated_ns = ?2 WHERE id = ?1",
			    msg, msglen);
}

int us_api_migrate_rollback(struct us_api_ctx *ctx, const ProtobufCMessage *req,
			    ProtobufCMessage **resp, char *msg, size_t msglen)
{
	return migrate_flag(ctx, req, resp, "UPDATE migrations SET rollback_requested = 1, "
			    "updated_ns = ?2 WHERE id = ?1",
			    msg, msglen);
}

int us_api_migrations_list(struct us_api_ctx *ctx, const ProtobufCMessage *req,
			   ProtobufCMessage **resp, char *msg, size_t msglen)
{
	const Understudy__Api__MigrationsListRequest *in = (const void *)req;
	Understudy__Api__MigrationsListResponse *r = malloc(sizeof(*r));
	int rc;

	if (!r)
		return out_of_memory(msg, msglen);
	understudy__api__migrations_list_response__init(r);
	rc = select_migrations(ctx, in->active
			       ? MIGRATION_SELECT "WHERE (?1 = '' OR workload = ?1) AND " ACTIVE
				 " ORDER BY id"
			       : MIGRATION_SELECT "WHERE ?1 = '' OR workload = ?1 ORDER BY id",
			       (const char *const *)&in->workload, 1, &r->migrations,
			       &r->n_migrations, msg, msglen);
	if (rc != GRPC_STATUS_OK) {
		free_msg(r);
		return rc;
	}
	*resp = &r->base;
	return rc;
}
