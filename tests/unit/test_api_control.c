/* The control API handlers (coordinator/api_control.c) against a real store
 * (schema from us_store_open), real workload definition, catalog and
 * policies files, called through the method table with requests that went
 * through the wire format: instance ids, Deploy, Instances/List,
 * Decommission, Shadow/Start and Stop, Migrate/Start, Approve, Rollback and
 * List, with the rows they leave and every refusal's status and message. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <grpc/status.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "api.pb-c.h"
#include "api_methods.h"
#include "store.h"

#define LONG_NAME "a-very-long-workload-name-that-goes-on-and-on-and-on-" \
		  "well-past-what-an-instance-id-may-hold"

struct fixture {
	char dir[64];
	char workloads[128], catalog[128], policies[128], bad_policies[128];
	struct us_store *st;
	struct us_api_ctx ctx;
	char msg[1024];
};

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
}

static void write_definition(struct fixture *f, const char *name)
{
	char path[512], text[512];

	snprintf(path, sizeof(path), "%s/%s.yaml", f->workloads, name);
	snprintf(text, sizeof(text), "name: %s\ncommand: /bin/true\nport: 8080\n", name);
	write_file(path, text);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct us_store_options opt = { 0 };
	char path[256], err[512];

	if (!f)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/us-test-api-control-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(path, sizeof(path), "%s/understudy.db", f->dir);
	f->st = us_store_open(path, &opt, err, sizeof(err));
	if (!f->st) {
		fprintf(stderr, "%s\n", err);
		return -1;
	}
	if (sqlite3_open_v2(path, &f->ctx.db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK)
		return -1;
	sqlite3_busy_timeout(f->ctx.db, 2000);
	snprintf(f->workloads, sizeof(f->workloads), "%s/workloads", f->dir);
	snprintf(f->catalog, sizeof(f->catalog), "%s/catalog.csv", f->dir);
	snprintf(f->policies, sizeof(f->policies), "%s/policies.yaml", f->dir);
	snprintf(f->bad_policies, sizeof(f->bad_policies), "%s/bad-policies.yaml", f->dir);
	if (mkdir(f->workloads, 0755) < 0)
		return -1;
	write_definition(f, "web");
	write_definition(f, "api");
	write_definition(f, "Web_App");
	write_definition(f, LONG_NAME);
	snprintf(path, sizeof(path), "%s/broken.yaml", f->workloads);
	write_file(path, "name: broken\ncommand: /bin/true\n");
	write_file(f->catalog,
		   "type,family,arch,vcpu,memory_gib,network_gbps_peak,baseline_cpu_pct,"
		   "usd_per_hour\n"
		   "m6i.large,m6i,x86_64,2,8,12.5,100,0.096\n"
		   "c7g.large,c7g,arm64,2,4,12.5,100,0.0725\n");
	write_file(f->policies, "policies:\n"
		   "  - name: careful\n"
		   "    steps: [5, 50, 100]\n"
		   "    approval: true\n");
	write_file(f->bad_policies, "policies:\n  - name: wrong\n    steps: [50, 10]\n");
	f->ctx.workloads_dir = f->workloads;
	f->ctx.catalog_path = f->catalog;
	f->ctx.policies_path = f->policies;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[128];

	sqlite3_close(f->ctx.db);
	us_store_close(f->st);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

/* Calls the method at path as the server would: the request packed, then
 * unpacked with the table's descriptor. */
static int call(struct fixture *f, const char *path, const ProtobufCMessage *req,
		ProtobufCMessage **resp)
{
	const struct us_api_method *m = us_api_find_method(path);
	ProtobufCMessage *in;
	uint8_t buf[4096];
	size_t n;
	int rc;

	assert_non_null(m);
	assert_non_null(m->handler);
	assert_ptr_equal(m->request, req->descriptor);
	n = protobuf_c_message_get_packed_size(req);
	assert_true(n <= sizeof(buf));
	protobuf_c_message_pack(req, buf);
	in = protobuf_c_message_unpack(m->request, NULL, n, buf);
	assert_non_null(in);
	*resp = NULL;
	f->msg[0] = '\0';
	rc = m->handler(&f->ctx, in, resp, f->msg, sizeof(f->msg));
	protobuf_c_message_free_unpacked(in, NULL);
	if (rc != GRPC_STATUS_OK)
		assert_null(*resp);
	else
		assert_non_null(*resp);
	return rc;
}

static void sql(struct fixture *f, const char *stmt)
{
	char *err = NULL;

	if (sqlite3_exec(f->ctx.db, stmt, NULL, NULL, &err) != SQLITE_OK)
		fail_msg("%s: %s", stmt, err);
}

/* The first column of the first row of a query, as text ("" for none). */
static const char *sql_text(struct fixture *f, const char *query, char *buf, size_t len)
{
	sqlite3_stmt *q;

	assert_int_equal(sqlite3_prepare_v2(f->ctx.db, query, -1, &q, NULL), SQLITE_OK);
	buf[0] = '\0';
	if (sqlite3_step(q) == SQLITE_ROW && sqlite3_column_text(q, 0))
		snprintf(buf, len, "%s", (const char *)sqlite3_column_text(q, 0));
	sqlite3_finalize(q);
	return buf;
}

static long long sql_int(struct fixture *f, const char *query)
{
	char buf[64];

	return strtoll(sql_text(f, query, buf, sizeof(buf)), NULL, 10);
}

static void assert_msg_has(struct fixture *f, const char *part)
{
	if (!strstr(f->msg, part))
		fail_msg("message '%s' lacks '%s'", f->msg, part);
}

/* Deploys workload on type; the status, and the instance's id in id. */
static int deploy(struct fixture *f, const char *workload, const char *type, char *id,
		  size_t idlen, bool *existing)
{
	Understudy__Api__DeployRequest req = UNDERSTUDY__API__DEPLOY_REQUEST__INIT;
	Understudy__Api__DeployResponse *r;
	int rc;

	req.workload = (char *)workload;
	req.instance_type = (char *)type;
	rc = call(f, "/understudy.api.Instances/Deploy", &req.base, (ProtobufCMessage **)&r);
	if (rc == GRPC_STATUS_OK) {
		assert_non_null(r->instance);
		snprintf(id, idlen, "%s", r->instance->id);
		if (existing)
			*existing = r->existing;
		protobuf_c_message_free_unpacked(&r->base, NULL);
	}
	return rc;
}

/* ---- instances ----------------------------------------------------------- */

static void test_deploy(void **state)
{
	struct fixture *f = *state;
	Understudy__Api__DeployRequest req = UNDERSTUDY__API__DEPLOY_REQUEST__INIT;
	Understudy__Api__DeployResponse *r;
	char id[128], buf[256];
	bool existing = true;

	req.workload = "web";
	req.instance_type = "m6i.large";
	assert_int_equal(call(f, "/understudy.api.Instances/Deploy", &req.base,
			      (ProtobufCMessage **)&r), GRPC_STATUS_OK);
	assert_false(r->existing);
	assert_string_equal(r->instance->id, "web-m6i-large-1");
	assert_string_equal(r->instance->workload, "web");
	assert_string_equal(r->instance->role, "production");
	assert_string_equal(r->instance->type, "m6i.large");
	assert_string_equal(r->instance->mode, "clone");
	assert_string_equal(r->instance->desired, "running");
	assert_string_equal(r->instance->state, "pending");
	assert_true(r->instance->created_ns > 0);
	assert_true(r->instance->updated_ns == r->instance->created_ns);
	protobuf_c_message_free_unpacked(&r->base, NULL);
	assert_string_equal(sql_text(f, "SELECT role || ' ' || mode || ' ' || desired || ' ' || "
				     "state || ' ' || (created_ns = updated_ns) FROM instances "
				     "WHERE id = 'web-m6i-large-1'", buf, sizeof(buf)),
			    "production clone running pending 1");

	/* the same again: the running one, not a second */
	assert_int_equal(deploy(f, "web", "m6i.large", id, sizeof(id), &existing), GRPC_STATUS_OK);
	assert_true(existing);
	assert_string_equal(id, "web-m6i-large-1");
	assert_int_equal(sql_int(f, "SELECT count(*) FROM instances"), 1);

	/* ids: lowercase, [a-z0-9-], the smallest free n, at most 63 characters */
	assert_int_equal(deploy(f, "Web_App", "c7g.large", id, sizeof(id), &existing),
			 GRPC_STATUS_OK);
	assert_false(existing);
	assert_string_equal(id, "web-app-c7g-large-1");
	assert_int_equal(deploy(f, LONG_NAME, "m6i.large", id, sizeof(id), NULL), GRPC_STATUS_OK);
	assert_int_equal(strlen(id), 63);
	assert_string_equal(id, "a-very-long-workload-name-that-goes-on-and-on-and-o-m6i-large-1");
	sql(f, "UPDATE instances SET desired = 'absent', state = 'absent' "
	       "WHERE id = 'web-m6i-large-1'");
	sql(f, "INSERT INTO instances(id, workload, role, type, desired, state, created_ns, "
	       "updated_ns) VALUES ('web-m6i-large-3', 'web', 'retired', 'm6i.large', 'absent', "
	       "'absent', 1, 1)");
	assert_int_equal(deploy(f, "web", "m6i.large", id, sizeof(id), &existing), GRPC_STATUS_OK);
	assert_false(existing);
	assert_string_equal(id, "web-m6i-large-2");
	sql(f, "UPDATE instances SET desired = 'absent' WHERE id = 'web-m6i-large-2'");
	assert_int_equal(deploy(f, "web", "m6i.large", id, sizeof(id), NULL), GRPC_STATUS_OK);
	assert_string_equal(id, "web-m6i-large-4");
}

static void test_deploy_refused(void **state)
{
	struct fixture *f = *state;
	char id[128], path[256];

	assert_int_equal(deploy(f, "nope", "m6i.large", id, sizeof(id), NULL),
			 GRPC_STATUS_FAILED_PRECONDITION);
	snprintf(path, sizeof(path), "%s/nope.yaml: cannot open", f->workloads);
	assert_msg_has(f, path);
	assert_int_equal(deploy(f, "broken", "m6i.large", id, sizeof(id), NULL),
			 GRPC_STATUS_FAILED_PRECONDITION);
	assert_msg_has(f, "broken.yaml");
	assert_msg_has(f, "port");
	assert_int_equal(deploy(f, "web", "x9.huge", id, sizeof(id), NULL),
			 GRPC_STATUS_INVALID_ARGUMENT);
	assert_msg_has(f, "instance_type: 'x9.huge' is not in the catalog");
	assert_msg_has(f, f->catalog);
	assert_int_equal(deploy(f, "web", "", id, sizeof(id), NULL), GRPC_STATUS_INVALID_ARGUMENT);
	assert_msg_has(f, "instance_type: required");
	assert_int_equal(deploy(f, "", "m6i.large", id, sizeof(id), NULL),
			 GRPC_STATUS_INVALID_ARGUMENT);
	assert_msg_has(f, "workload: required");
	/* a name is a file name in workloads_dir, never a path */
	assert_int_equal(deploy(f, "../workloads/web", "m6i.large", id, sizeof(id), NULL),
			 GRPC_STATUS_INVALID_ARGUMENT);
	assert_msg_has(f, "workload: expected 1-127 of [A-Za-z0-9_.-]");
	assert_int_equal(sql_int(f, "SELECT count(*) FROM instances"), 0);
}

static void test_instances_list(void **state)
{
	struct fixture *f = *state;
	Understudy__Api__InstancesListRequest req = UNDERSTUDY__API__INSTANCES_LIST_REQUEST__INIT;
	Understudy__Api__InstancesListResponse *r;

	/* created out of id order: the listing follows created_ns */
	sql(f, "INSERT INTO instances(id, workload, role, type, desired, state, address, "
	       "provision_s, error, cgroup, created_ns, updated_ns) VALUES "
	       "('web-a-1', 'web', 'production', 'a', 'running', 'running', '10.0.0.2:80', 1.5, "
	       "'', '/sys/fs/cgroup/x', 30, 31),"
	       "('web-b-1', 'web', 'shadow', 'b', 'absent', 'running', '', NULL, 'stuck', '', "
	       "20, 21),"
	       "('web-c-1', 'web', 'retired', 'c', 'absent', 'absent', '', 2, '', '', 10, 11),"
	       "('api-a-1', 'api', 'production', 'a', 'running', 'pending', '', NULL, '', '', "
	       "40, 41)");
	assert_int_equal(call(f, "/understudy.api.Instances/List", &req.base,
			      (ProtobufCMessage **)&r), GRPC_STATUS_OK);
	assert_int_equal(r->n_instances, 3);  /* web-c-1 is gone and not wanted */
	assert_string_equal(r->instances[0]->id, "web-b-1");
	assert_string_equal(r->instances[0]->error, "stuck");
	assert_true(r->instances[0]->provision_s == 0);
	assert_string_equal(r->instances[1]->id, "web-a-1");
	assert_string_equal(r->instances[1]->address, "10.0.0.2:80");
	assert_string_equal(r->instances[1]->cgroup, "/sys/fs/cgroup/x");
	assert_true(r->instances[1]->provision_s == 1.5);
	assert_int_equal(r->instances[1]->created_ns, 30);
	assert_int_equal(r->instances[1]->updated_ns, 31);
	assert_string_equal(r->instances[2]->id, "api-a-1");
	protobuf_c_message_free_unpacked(&r->base, NULL);

	req.workload = "web";
	req.all = true;
	assert_int_equal(call(f, "/understudy.api.Instances/List", &req.base,
			      (ProtobufCMessage **)&r), GRPC_STATUS_OK);
	assert_int_equal(r->n_instances, 3);
	assert_string_equal(r->instances[0]->id, "web-c-1");
	assert_string_equal(r->instances[0]->role, "retired");
	assert_string_equal(r->instances[1]->id, "web-b-1");
	assert_string_equal(r->instances[2]->id, "web-a-1");
	protobuf_c_message_free_unpacked(&r->base, NULL);

	req.workload = "nothing";
	assert_int_equal(call(f, "/understudy.api.Instances/List", &req.base,
			      (ProtobufCMessage **)&r), GRPC_STATUS_OK);
	assert_int_equal(r->n_instances, 0);
	protobuf_c_message_free_unpacked(&r->base, NULL);
}

static void test_decommission(void **state)
{
	struct fixture *f = *state;
	Understudy__Api__DecommissionRequest req = UNDERSTUDY__API__DECOMMISSION_REQUEST__INIT;
	Understudy__Api__DecommissionResponse *r;
	char id[128], buf[256];

	req.id = "web-m6i-large-9";
	assert_int_equal(call(f, "/understudy.api.Instances/Decommission", &req.base,
			      (ProtobufCMessage **)&r), GRPC_STATUS_NOT_FOUND);
	assert_msg_has(f, "id: no instance 'web-m6i-large-9'");
	req.id = "";
	assert_int_equal(call(f, "/understudy.api.Instances/Decommission", &req.base,
			      (ProtobufCMessage **)&r), GRPC_STATUS_INVALID_ARGUMENT);
	assert_msg_has(f, "id: required");

	assert_int_equal(deploy(f, "web", "m6i.large", id, sizeof(id), NULL), GRPC_STATUS_OK);
	sql(f, "UPDATE instances SET absent_after_ns = 5, updated_ns = 1");
	/* each of the three roles in an active migration protects the instance */
	sql(f, "INSERT INTO migrations(id, workload, policy, from_instance, state, state_since_ns, "
	       "created_ns, updated_ns) VALUES (7, 'web', 'default', 'web-m6i-large-1', "
	       "'Shifting', 1, 1, 1)");
	req.id = id;
	assert_int_equal(call(f, "/understudy.api.Instances/Decommission", &req.base,
			      (ProtobufCMessage **)&r), GRPC_STATUS_FAILED_PRECONDITION);
	assert_msg_has(f, "web-m6i-large-1 is part of migration 7 of web (Shifting)");
	sql(f, "UPDATE migrations SET from_instance = '', to_instance = 'web-m6i-large-1', "
	       "state = 'Preallocated'");
	assert_int_equal(call(f, "/understudy.api.Instances/Decommission", &req.base,
			      (ProtobufCMessage **)&r), GRPC_STATUS_FAILED_PRECONDITION);
	assert_msg_has(f, "migration 7");
	sql(f, "UPDATE migrations SET to_instance = '', shadow_instance = 'web-m6i-large-1', "
	       "state = 'Shadowing'");
	assert_int_equal(call(f, "/understudy.api.Instances/Decommission", &req.base,
			      (ProtobufCMessage **)&r), GRPC_STATUS_FAILED_PRECONDITION);
	assert_string_equal(sql_text(f, "SELECT desired FROM instances", buf, sizeof(buf)),
			    "running");
	/* an ended migration does not */
	sql(f, "UPDATE migrations SET state = 'RolledBack'");
	assert_int_equal(call(f, "/understudy.api.Instances/Decommission", &req.base,
			      (ProtobufCMessage **)&r), GRPC_STATUS_OK);
	assert_string_equal(r->instance->id, "web-m6i-large-1");
	assert_string_equal(r->instance->desired, "absent");
	assert_true(r->instance->updated_ns > 1);
	protobuf_c_message_free_unpacked(&r->base, NULL);
	assert_string_equal(sql_text(f, "SELECT desired || ' ' || absent_after_ns || ' ' || "
				     "(updated_ns > 1) FROM instances", buf, sizeof(buf)),
			    "absent 0 1");
}

/* ---- shadows ------------------------------------------------------------- */

static int shadow_start(struct fixture *f, const char *workload, const char *type,
			const char *mode, double sample, uint32_t scale,
			Understudy__Api__ShadowResponse **r)
{
	Understudy__Api__ShadowRequest req = UNDERSTUDY__API__SHADOW_REQUEST__INIT;

	req.workload = (char *)workload;
	req.instance_type = (char *)type;
	req.mode = (char *)mode;
	req.sample = sample;
	req.scale = scale;
	return call(f, "/understudy.api.Shadow/Start", &req.base, (ProtobufCMessage **)r);
}

static void test_shadow_start(void **state)
{
	struct fixture *f = *state;
	Understudy__Api__ShadowResponse *r;
	char id[128], shadow[128], buf[256];

	/* mirror (the default) needs production's requests */
	assert_int_equal(shadow_start(f, "web", "c7g.large", "", 0, 0, &r),
			 GRPC_STATUS_FAILED_PRECONDITION);
	assert_string_equal(f->msg, "web has no production instance: understudy deploy web "
			    "--type TYPE first");
	assert_int_equal(shadow_start(f, "web", "c7g.large", "tee", 0, 0, &r),
			 GRPC_STATUS_INVALID_ARGUMENT);
	assert_msg_has(f, "mode: expected clone, subset or mirror, got 'tee'");
	assert_int_equal(shadow_start(f, "web", "c7g.large", "mirror", 1.5, 0, &r),
			 GRPC_STATUS_INVALID_ARGUMENT);
	assert_msg_has(f, "sample: must be in (0, 1]");
	assert_int_equal(shadow_start(f, "web", "c7g.large", "mirror", -0.2, 0, &r),
			 GRPC_STATUS_INVALID_ARGUMENT);
	assert_msg_has(f, "sample:");
	assert_int_equal(shadow_start(f, "web", "c7g.large", "mirror", 0, 101, &r),
			 GRPC_STATUS_INVALID_ARGUMENT);
	assert_msg_has(f, "scale: at most 100");
	assert_int_equal(shadow_start(f, "web", "x9.huge", "mirror", 0, 0, &r),
			 GRPC_STATUS_INVALID_ARGUMENT);
	assert_msg_has(f, "instance_type: 'x9.huge' is not in the catalog");
	assert_int_equal(shadow_start(f, "nope", "c7g.large", "clone", 0, 0, &r),
			 GRPC_STATUS_FAILED_PRECONDITION);
	assert_msg_has(f, "nope.yaml: cannot open");
	assert_int_equal(sql_int(f, "SELECT count(*) FROM instances"), 0);

	assert_int_equal(deploy(f, "web", "m6i.large", id, sizeof(id), NULL), GRPC_STATUS_OK);
	assert_int_equal(shadow_start(f, "web", "c7g.large", "", 0.2, 3, &r), GRPC_STATUS_OK);
	assert_false(r->existing);
	assert_string_equal(r->shadow_id, "web-c7g-large-1");
	assert_string_equal(r->instance->id, "web-c7g-large-1");
	assert_string_equal(r->instance->role, "shadow");
	assert_string_equal(r->instance->mode, "mirror");
	assert_string_equal(r->instance->desired, "running");
	assert_string_equal(r->instance->state, "pending");
	snprintf(shadow, sizeof(shadow), "%s", r->shadow_id);
	protobuf_c_message_free_unpacked(&r->base, NULL);
	assert_string_equal(sql_text(f, "SELECT role || ' ' || mode || ' ' || sample || ' ' || "
				     "scale || ' ' || desired || ' ' || state FROM instances "
				     "WHERE id = 'web-c7g-large-1'", buf, sizeof(buf)),
			    "shadow mirror 0.2 3 running pending");

	/* the same shadow again: that one */
	assert_int_equal(shadow_start(f, "web", "c7g.large", "mirror", 0.5, 1, &r), GRPC_STATUS_OK);
	assert_true(r->existing);
	assert_string_equal(r->shadow_id, shadow);
	protobuf_c_message_free_unpacked(&r->base, NULL);
	/* another type or mode: one shadow at a time */
	assert_int_equal(shadow_start(f, "web", "m6i.large", "mirror", 0, 0, &r),
			 GRPC_STATUS_FAILED_PRECONDITION);
	assert_string_equal(f->msg, "web already has shadow web-c7g-large-1 (c7g.large, mirror): "
			    "understudy shadow stop web first");
	assert_int_equal(shadow_start(f, "web", "c7g.large", "clone", 0, 0, &r),
			 GRPC_STATUS_FAILED_PRECONDITION);
	assert_msg_has(f, "web already has shadow web-c7g-large-1");
	assert_int_equal(sql_int(f, "SELECT count(*) FROM instances"), 2);

	/* clone needs no production; sample and scale default to 1 */
	assert_int_equal(shadow_start(f, "api", "m6i.large", "clone", 0, 0, &r), GRPC_STATUS_OK);
	assert_string_equal(r->instance->mode, "clone");
	protobuf_c_message_free_unpacked(&r->base, NULL);
	assert_string_equal(sql_text(f, "SELECT sample || ' ' || scale FROM instances WHERE "
				     "workload = 'api'", buf, sizeof(buf)), "1.0 1");
}

static void test_shadow_stop(void **state)
{
	struct fixture *f = *state;
	Understudy__Api__ShadowStopRequest req = UNDERSTUDY__API__SHADOW_STOP_REQUEST__INIT;
	Understudy__Api__ShadowStopResponse *r;
	Understudy__Api__ShadowResponse *started;
	char id[128], buf[256];

	req.workload = "web";
	assert_int_equal(call(f, "/understudy.api.Shadow/Stop", &req.base,
			      (ProtobufCMessage **)&r), GRPC_STATUS_OK);
	assert_int_equal(r->n_stopped, 0);
	protobuf_c_message_free_unpacked(&r->base, NULL);

	assert_int_equal(deploy(f, "web", "m6i.large", id, sizeof(id), NULL), GRPC_STATUS_OK);
	assert_int_equal(shadow_start(f, "web", "c7g.large", "mirror", 0, 0, &started),
			 GRPC_STATUS_OK);
	protobuf_c_message_free_unpacked(&started->base, NULL);
	sql(f, "UPDATE instances SET updated_ns = 1");
	/* validating a Shadowing migration: it stays */
	sql(f, "INSERT INTO migrations(id, workload, policy, shadow_instance, state, "
	       "state_since_ns, created_ns, updated_ns) VALUES (3, 'web', 'default', "
	       "'web-c7g-large-1', 'Shadowing', 1, 1, 1)");
	assert_int_equal(call(f, "/understudy.api.Shadow/Stop", &req.base,
			      (ProtobufCMessage **)&r), GRPC_STATUS_FAILED_PRECONDITION);
	assert_msg_has(f, "web-c7g-large-1");
	assert_msg_has(f, "migration 3");
	assert_string_equal(sql_text(f, "SELECT desired FROM instances WHERE "
				     "id = 'web-c7g-large-1'", buf, sizeof(buf)), "running");

	sql(f, "UPDATE migrations SET state = 'Validated'");
	assert_int_equal(call(f, "/understudy.api.Shadow/Stop", &req.base,
			      (ProtobufCMessage **)&r), GRPC_STATUS_OK);
	assert_int_equal(r->n_stopped, 1);
	assert_string_equal(r->stopped[0]->id, "web-c7g-large-1");
	assert_string_equal(r->stopped[0]->desired, "absent");
	protobuf_c_message_free_unpacked(&r->base, NULL);
	assert_string_equal(sql_text(f, "SELECT group_concat(id || ' ' || desired || ' ' || "
				     "(updated_ns > 1), ', ') FROM (SELECT * FROM instances "
				     "ORDER BY id)", buf, sizeof(buf)),
			    "web-c7g-large-1 absent 1, web-m6i-large-1 running 0");
	/* stopped already: nothing to do */
	assert_int_equal(call(f, "/understudy.api.Shadow/Stop", &req.base,
			      (ProtobufCMessage **)&r), GRPC_STATUS_OK);
	assert_int_equal(r->n_stopped, 0);
	protobuf_c_message_free_unpacked(&r->base, NULL);
}

/* ---- migrations ------------------------------------------------------------ */

static int migrate(struct fixture *f, const char *workload, const char *type,
		   const char *policy, bool force, Understudy__Api__MigrateResponse **r)
{
	Understudy__Api__MigrateRequest req = UNDERSTUDY__API__MIGRATE_REQUEST__INIT;

	req.workload = (char *)workload;
	req.instance_type = (char *)type;
	req.policy = (char *)policy;
	req.force = force;
	return call(f, "/understudy.api.Migrate/Start", &req.base, (ProtobufCMessage **)r);
}

static void test_migrate_start(void **state)
{
	struct fixture *f = *state;
	Understudy__Api__MigrateResponse *r;
	char buf[512];

	assert_int_equal(migrate(f, "nope", "", "", false, &r), GRPC_STATUS_FAILED_PRECONDITION);
	assert_msg_has(f, "nope.yaml: cannot open");
	assert_int_equal(migrate(f, "web", "", "hasty", false, &r), GRPC_STATUS_INVALID_ARGUMENT);
	assert_msg_has(f, "policy: no policy 'hasty'");
	assert_msg_has(f, "careful, default");
	assert_int_equal(migrate(f, "web", "x9.huge", "", false, &r),
			 GRPC_STATUS_INVALID_ARGUMENT);
	assert_msg_has(f, "instance_type: 'x9.huge' is not in the catalog");
	f->ctx.policies_path = f->bad_policies;
	assert_int_equal(migrate(f, "web", "", "", false, &r), GRPC_STATUS_FAILED_PRECONDITION);
	assert_msg_has(f, "bad-policies.yaml:3");
	assert_msg_has(f, "steps must increase");
	f->ctx.policies_path = f->policies;
	assert_int_equal(sql_int(f, "SELECT count(*) FROM migrations"), 0);

	assert_int_equal(migrate(f, "web", "c7g.large", "careful", true, &r), GRPC_STATUS_OK);
	assert_string_equal(r->migration_id, "1");
	assert_string_equal(r->state, "Observing");
	protobuf_c_message_free_unpacked(&r->base, NULL);
	assert_string_equal(sql_text(f, "SELECT workload || ' ' || policy || ' ' || to_type || ' ' "
				     "|| shadow_mode || ' ' || state || ' ' || step || ' ' || "
				     "force || ' ' || approved || ' ' || (state_since_ns = "
				     "created_ns AND created_ns = updated_ns AND created_ns > 0) "
				     "FROM migrations", buf, sizeof(buf)),
			    "web careful c7g.large mirror Observing -1 1 0 1");
	assert_string_equal(sql_text(f, "SELECT j.migration_id || '|' || j.from_state || '|' || "
				     "j.to_state || '|' || j.step || '|' || j.reason || '|' || "
				     "(j.at_ns = m.created_ns) FROM migration_journal j JOIN "
				     "migrations m ON m.id = j.migration_id", buf, sizeof(buf)),
			    "1||Observing|-1|requested (force: validation skipped)|1");

	/* one active migration per workload */
	assert_int_equal(migrate(f, "web", "", "", false, &r), GRPC_STATUS_ALREADY_EXISTS);
	assert_msg_has(f, "web already has migration 1 (Observing)");
	sql(f, "UPDATE migrations SET state = 'Completed'");
	assert_int_equal(migrate(f, "web", "", "", false, &r), GRPC_STATUS_OK);
	assert_string_equal(r->migration_id, "2");
	protobuf_c_message_free_unpacked(&r->base, NULL);
	assert_string_equal(sql_text(f, "SELECT policy || ' ' || to_type || '.' || force || ' ' || "
				     "(SELECT reason FROM migration_journal WHERE "
				     "migration_id = 2) FROM migrations WHERE id = 2", buf,
				     sizeof(buf)), "default .0 requested");
	/* another workload is independent */
	assert_int_equal(migrate(f, "api", "", "", false, &r), GRPC_STATUS_OK);
	assert_string_equal(r->migration_id, "3");
	protobuf_c_message_free_unpacked(&r->base, NULL);
}

static int migrate_action(struct fixture *f, const char *path, const char *workload,
			  Understudy__Api__MigrateActionResponse **r)
{
	Understudy__Api__MigrateActionRequest req = UNDERSTUDY__API__MIGRATE_ACTION_REQUEST__INIT;

	req.workload = (char *)workload;
	return call(f, path, &req.base, (ProtobufCMessage **)r);
}

static void test_approve_rollback(void **state)
{
	struct fixture *f = *state;
	Understudy__Api__MigrateActionResponse *r;
	Understudy__Api__MigrateResponse *started;
	char buf[256];

	assert_int_equal(migrate_action(f, "/understudy.api.Migrate/Approve", "web", &r),
			 GRPC_STATUS_NOT_FOUND);
	assert_msg_has(f, "web has no active migration");
	assert_int_equal(migrate_action(f, "/understudy.api.Migrate/Rollback", "web", &r),
			 GRPC_STATUS_NOT_FOUND);
	assert_int_equal(migrate(f, "web", "", "careful", false, &started), GRPC_STATUS_OK);
	protobuf_c_message_free_unpacked(&started->base, NULL);
	sql(f, "UPDATE migrations SET state = 'Validated', updated_ns = 1");

	assert_int_equal(migrate_action(f, "/understudy.api.Migrate/Approve", "web", &r),
			 GRPC_STATUS_OK);
	assert_int_equal(r->migration->id, 1);
	assert_string_equal(r->migration->state, "Validated");
	assert_true(r->migration->approved);
	assert_true(r->migration->updated_ns > 1);
	assert_int_equal(r->migration->n_transitions, 1);
	protobuf_c_message_free_unpacked(&r->base, NULL);
	assert_string_equal(sql_text(f, "SELECT approved || ' ' || rollback_requested || ' ' || "
				     "(updated_ns > 1) FROM migrations", buf, sizeof(buf)),
			    "1 0 1");
	sql(f, "UPDATE migrations SET updated_ns = 1");
	assert_int_equal(migrate_action(f, "/understudy.api.Migrate/Rollback", "web", &r),
			 GRPC_STATUS_OK);
	assert_string_equal(r->migration->workload, "web");
	protobuf_c_message_free_unpacked(&r->base, NULL);
	assert_string_equal(sql_text(f, "SELECT approved || ' ' || rollback_requested || ' ' || "
				     "(updated_ns > 1) FROM migrations", buf, sizeof(buf)),
			    "1 1 1");
	/* an ended migration is nobody's to approve */
	sql(f, "UPDATE migrations SET state = 'RolledBack'");
	assert_int_equal(migrate_action(f, "/understudy.api.Migrate/Approve", "web", &r),
			 GRPC_STATUS_NOT_FOUND);
}

static void test_migrations_list(void **state)
{
	struct fixture *f = *state;
	Understudy__Api__MigrationsListRequest req = UNDERSTUDY__API__MIGRATIONS_LIST_REQUEST__INIT;
	Understudy__Api__MigrationsListResponse *r;
	const Understudy__Api__Migration *m;

	sql(f, "INSERT INTO migrations(id, workload, policy, from_instance, to_type, "
	       "to_instance, shadow_instance, state, step, state_since_ns, force, approved, "
	       "reason, created_ns, updated_ns) VALUES "
	       "(1, 'web', 'careful', 'web-a-1', 'b', 'web-b-1', 'web-b-2', 'Completed', 2, 5, "
	       "0, 1, 'done', 1, 2),"
	       "(2, 'web', 'careful', 'web-b-1', 'c', 'web-c-1', '', 'Shifting', 1, 5, 1, 0, "
	       "'baking step 2', 3, 4),"
	       "(3, 'api', 'gone', '', 'c', '', '', 'Shifting', 0, 5, 0, 0, '', 5, 6),"
	       "(4, 'db', 'default', '', '', '', '', 'Observing', -1, 5, 0, 0, '', 7, 8)");
	sql(f, "INSERT INTO migration_journal(id, migration_id, from_state, to_state, step, "
	       "at_ns, reason) VALUES "
	       "(10, 2, 'Validated', 'Preallocated', -1, 30, 'approved'),"
	       "(11, 1, '', 'Observing', -1, 1, 'requested'),"
	       "(12, 2, 'Preallocated', 'Shifting', 0, 40, 'new instance healthy'),"
	       "(9, 2, '', 'Observing', -1, 20, 'requested'),"
	       "(13, 2, 'Shifting', 'Shifting', 1, 50, 'step 1 held')");
	assert_int_equal(call(f, "/understudy.api.Migrate/List", &req.base,
			      (ProtobufCMessage **)&r), GRPC_STATUS_OK);
	assert_int_equal(r->n_migrations, 4);
	m = r->migrations[0];
	assert_int_equal(m->id, 1);
	assert_string_equal(m->state, "Completed");
	assert_true(m->step_percent == 100);
	assert_string_equal(m->from_instance, "web-a-1");
	assert_string_equal(m->to_type, "b");
	assert_string_equal(m->to_instance, "web-b-1");
	assert_string_equal(m->shadow_instance, "web-b-2");
	assert_string_equal(m->reason, "done");
	assert_true(m->approved);
	assert_false(m->force);
	assert_int_equal(m->created_ns, 1);
	assert_int_equal(m->updated_ns, 2);
	assert_int_equal(m->n_transitions, 1);
	m = r->migrations[1];
	assert_true(m->step_percent == 50);   /* careful: 5, 50, 100 */
	assert_int_equal(m->step, 1);
	assert_true(m->force);
	assert_int_equal(m->n_transitions, 4);   /* journal order is id order */
	assert_string_equal(m->transitions[0]->to_state, "Observing");
	assert_int_equal(m->transitions[0]->at_ns, 20);
	assert_string_equal(m->transitions[1]->from_state, "Validated");
	assert_string_equal(m->transitions[1]->reason, "approved");
	assert_int_equal(m->transitions[2]->step, 0);
	assert_int_equal(m->transitions[3]->step, 1);
	assert_string_equal(m->transitions[3]->reason, "step 1 held");
	assert_true(r->migrations[2]->step_percent == 0);   /* its policy is gone */
	assert_int_equal(r->migrations[2]->n_transitions, 0);
	assert_true(r->migrations[3]->step_percent == 0);
	protobuf_c_message_free_unpacked(&r->base, NULL);

	req.workload = "web";
	req.active = true;
	assert_int_equal(call(f, "/understudy.api.Migrate/List", &req.base,
			      (ProtobufCMessage **)&r), GRPC_STATUS_OK);
	assert_int_equal(r->n_migrations, 1);
	assert_int_equal(r->migrations[0]->id, 2);
	protobuf_c_message_free_unpacked(&r->base, NULL);
	req.workload = "";
	assert_int_equal(call(f, "/understudy.api.Migrate/List", &req.base,
			      (ProtobufCMessage **)&r), GRPC_STATUS_OK);
	assert_int_equal(r->n_migrations, 3);
	assert_int_equal(r->migrations[2]->id, 4);
	protobuf_c_message_free_unpacked(&r->base, NULL);

	/* policies unreadable: the listing still answers, without percentages */
	f->ctx.policies_path = f->bad_policies;
	assert_int_equal(call(f, "/understudy.api.Migrate/List", &req.base,
			      (ProtobufCMessage **)&r), GRPC_STATUS_OK);
	assert_true(r->migrations[0]->step_percent == 0);
	protobuf_c_message_free_unpacked(&r->base, NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_deploy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_deploy_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_instances_list, setup, teardown),
		cmocka_unit_test_setup_teardown(test_decommission, setup, teardown),
		cmocka_unit_test_setup_teardown(test_shadow_start, setup, teardown),
		cmocka_unit_test_setup_teardown(test_shadow_stop, setup, teardown),
		cmocka_unit_test_setup_teardown(test_migrate_start, setup, teardown),
		cmocka_unit_test_setup_teardown(test_approve_rollback, setup, teardown),
		cmocka_unit_test_setup_teardown(test_migrations_list, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
