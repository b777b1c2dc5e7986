/* gRPC API methods: the path → handler table and the handlers, which
 * validate requests (INVALID_ARGUMENT names the field), read the store
 * through the server's connection and build malloc'd responses
 * that the server packs and frees with protobuf_c_message_free_unpacked. */
#include "api_methods.h"

#include <ctype.h>
#include <grpc/status.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.pb-c.h"
#include "api_control.h"
#include "buf.h"
#include "clock.h"
#include "compare.h"
#include "envelope.h"
#include "hist.h"
#include "planner.h"
#include "recommend_api.h"
#include "alerts_api.h"
#include "series.h"
#include "store.h"

#define DEFAULT_FROM "1h"
#define DEFAULT_STEP "1m"

/* ---- small helpers ------------------------------------------------------ */

static const char *role_name(int64_t role)
{
	return role == UNDERSTUDY__ROLE__PRODUCTION ? "production" :
	       role == UNDERSTUDY__ROLE__SHADOW ? "shadow" : "unspecified";
}

static int db_error(struct us_api_ctx *ctx, char *msg, size_t msglen)
{
	snprintf(msg, msglen, "store: %s", sqlite3_errmsg(ctx->db));
	return GRPC_STATUS_INTERNAL;
}

/* "90s", "1.5h", "250ms": a positive duration with a unit, in ns. */
static int parse_duration(const char *s, uint64_t *out)
{
	static const struct { const char *unit; double ns; } units[] = {
		{ "ns", 1 }, { "us", 1e3 }, { "ms", 1e6 }, { "s", 1e9 },
		{ "m", 60e9 }, { "h", 3600e9 }, { "d", 86400e9 },
	};
	char *end;
	double v;

	if (!isdigit((unsigned char)s[0]))
		return -1;
	v = strtod(s, &end);
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
		if (strcmp(end, units[i].unit) == 0 && v * units[i].ns < 1e19) {
			*out = (uint64_t)(v * units[i].ns);
			return 0;
		}
	return -1;
}

/* A time: "now", unix ns (digits only), or a duration before now ("2h",
 * optionally written "-2h"). */
static int parse_time(const char *s, uint64_t now, uint64_t *out)
{
	uint64_t ago;
	char *end;

	if (strcmp(s, "now") == 0) {
		*out = now;
		return 0;
	}
	if (s[0] && strspn(s, "0123456789") == strlen(s)) {
		*out = strtoull(s, &end, 10);
		return 0;
	}
	if (parse_duration(s[0] == '-' ? s + 1 : s, &ago) < 0 || ago > now)
		return -1;
	*out = now - ago;
	return 0;
}

static int parse_role(const char *s, int *role)
{
	if (!s[0] || strcmp(s, "production") == 0)
		*role = UNDERSTUDY__ROLE__PRODUCTION;
	else if (strcmp(s, "shadow") == 0)
		*role = UNDERSTUDY__ROLE__SHADOW;
	else
		return -1;
	return 0;
}

/* ---- agents ------------------------------------------------------------- */

static const char agent_sql[] =
	"SELECT a.name, a.hostname, a.kernel_release, a.agent_version, a.state, "
	"a.first_seen_ns, a.last_seen_ns, coalesce(a.last_heartbeat_ns, 0), "
	"a.spool_dropped_total, (SELECT count(*) FROM workloads w WHERE w.agent_id = a.id) "
	"FROM agents a WHERE ?1 IS NULL OR a.name = ?1 ORDER BY a.name";

static Understudy__Api__Agent *agent_from_row(sqlite3_stmt *q)
{
	Understudy__Api__Agent *a = malloc(sizeof(*a));

	if (!a)
		return NULL;
	understudy__api__agent__init(a);
	a->name = us_store_col_dup(q, 0);
	a->hostname = us_store_col_dup(q, 1);
	a->kernel_release = us_store_col_dup(q, 2);
	a->agent_version = us_store_col_dup(q, 3);
	a->state = us_store_col_dup(q, 4);
	a->first_seen_ns = (uint64_t)sqlite3_column_int64(q, 5);
	a->last_seen_ns = (uint64_t)sqlite3_column_int64(q, 6);
	a->last_heartbeat_ns = (uint64_t)sqlite3_column_int64(q, 7);
	a->spool_dropped_total = (uint64_t)sqlite3_column_int64(q, 8);
	a->workloads = (uint32_t)sqlite3_column_int64(q, 9);
	if (!a->name || !a->hostname || !a->kernel_release || !a->agent_version || !a->state) {
		protobuf_c_message_free_unpacked(&a->base, NULL);
		return NULL;
	}
	return a;
}

/* Agents named name (all when NULL) appended to *out. */
static int select_agents(struct us_api_ctx *ctx, const char *name,
			 Understudy__Api__Agent ***out, size_t *n, char *msg, size_t msglen)
{
	sqlite3_stmt *q = NULL;
	int rc = GRPC_STATUS_OK, step;

	if (sqlite3_prepare_v2(ctx->db, agent_sql, -1, &q, NULL) != SQLITE_OK)
		return db_error(ctx, msg, msglen);
	if (name)
		sqlite3_bind_text(q, 1, name, -1, SQLITE_STATIC);
	while ((step = sqlite3_step(q)) == SQLITE_ROW) {
		Understudy__Api__Agent *a = agent_from_row(q);

		if (!a || us_ptrs_push((void ***)out, n, a) < 0) {
			if (a)
				protobuf_c_message_free_unpacked(&a->base, NULL);
			snprintf(msg, msglen, "out of memory");
			rc = GRPC_STATUS_RESOURCE_EXHAUSTED;
			goto cleanup;
		}
	}
	if (step != SQLITE_DONE)
		rc = db_error(ctx, msg, msglen);
cleanup:
	sqlite3_finalize(q);
	return rc;
}

static int agents_list(struct us_api_ctx *ctx, const ProtobufCMessage *req,
		       ProtobufCMessage **resp, char *msg, size_t msglen)
{
	Understudy__Api__AgentsListResponse *r = malloc(sizeof(*r));
	int rc;

	if (!r)
		return GRPC_STATUS_RESOURCE_EXHAUSTED;
	understudy__api__agents_list_response__init(r);
	*resp = &r->base;
	rc = select_agents(ctx, NULL, &r->agents, &r->n_agents, msg, msglen);
	return rc;
}

/* ---- agent commands ----------------------------------------------------- */

static int command_args(struct us_api_ctx *ctx, const Understudy__Api__AgentCommandRequest *in,
			char *msg, size_t msglen)
{
	static const char *const actions[] = { "report_now", "reload_config", "start_mirror",
					       "stop_mirror" };
	bool mirror = false, known = false;
	const char *colon;

	if (!in->agent[0])
		return snprintf(msg, msglen, "agent: required"), GRPC_STATUS_INVALID_ARGUMENT;
	for (size_t i = 0; i < sizeof(actions) / sizeof(actions[0]); i++)
		known |= strcmp(in->action, actions[i]) == 0;
	if (!known)
		return snprintf(msg, msglen, "action: expected report_now, reload_config, "
				"start_mirror or stop_mirror, got '%.64s'", in->action),
		       GRPC_STATUS_INVALID_ARGUMENT;
	mirror = strstr(in->action, "mirror") != NULL;
	if (mirror && !in->workload[0])
		return snprintf(msg, msglen, "workload: required for %s", in->action),
		       GRPC_STATUS_INVALID_ARGUMENT;
	if (strcmp(in->action, "start_mirror") == 0) {
		colon = strrchr(in->endpoint, ':');
		if (!colon || colon == in->endpoint || atoi(colon + 1) <= 0 || atoi(colon + 1) > 65535)
			return snprintf(msg, msglen, "endpoint: expected host:port, got '%.64s'",
					in->endpoint), GRPC_STATUS_INVALID_ARGUMENT;
		if (in->sample < 0 || in->sample > 1)
			return snprintf(msg, msglen, "sample: must be in (0, 1]"),
			       GRPC_STATUS_INVALID_ARGUMENT;
		if (in->scale > 100)
			return snprintf(msg, msglen, "scale: at most 100"), GRPC_STATUS_INVALID_ARGUMENT;
	}
	if (in->ttl_seconds > 86400)
		return snprintf(msg, msglen, "ttl_seconds: at most 86400"), GRPC_STATUS_INVALID_ARGUMENT;
	{
		Understudy__Api__Agent **agents = NULL;
		size_t n = 0;
		int rc = select_agents(ctx, in->agent, &agents, &n, msg, msglen);

		for (size_t i = 0; i < n; i++)
			protobuf_c_message_free_unpacked(&agents[i]->base, NULL);
		free(agents);
		if (rc != GRPC_STATUS_OK)
			return rc;
		if (n == 0)
			return snprintf(msg, msglen, "agent: no agent named '%.128s'", in->agent),
			       GRPC_STATUS_NOT_FOUND;
	}
	return GRPC_STATUS_OK;
}

static int agents_command(struct us_api_ctx *ctx, const ProtobufCMessage *req,
			  ProtobufCMessage **resp, char *msg, size_t msglen)
{
	const Understudy__Api__AgentCommandRequest *in = (const void *)req;
	Understudy__Api__AgentCommandResponse *r;
	sqlite3_stmt *q = NULL;
	uint64_t now = us_now_ns();
	int rc = command_args(ctx, in, msg, msglen);

	if (rc != GRPC_STATUS_OK)
		return rc;
	if (sqlite3_prepare_v2(ctx->db, "INSERT INTO commands(agent, action, workload, endpoint, "
			       "sample, scale, created_ns, expires_ns) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
			       -1, &q, NULL) != SQLITE_OK)
		return db_error(ctx, msg, msglen);
	sqlite3_bind_text(q, 1, in->agent, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 2, in->action, -1, SQLITE_STATIC);
	if (in->workload[0])
		sqlite3_bind_text(q, 3, in->workload, -1, SQLITE_STATIC);
	if (in->endpoint[0])
		sqlite3_bind_text(q, 4, in->endpoint, -1, SQLITE_STATIC);
	sqlite3_bind_double(q, 5, in->sample > 0 ? in->sample : 1.0);
	sqlite3_bind_int(q, 6, in->scale ? (int)in->scale : 1);
	sqlite3_bind_int64(q, 7, (sqlite3_int64)now);
	sqlite3_bind_int64(q, 8, (sqlite3_int64)(now + (uint64_t)(in->ttl_seconds ? in->ttl_seconds
								    : 600) * US_NS_PER_SEC));
	if (sqlite3_step(q) != SQLITE_DONE) {
		rc = db_error(ctx, msg, msglen);
		goto cleanup;
	}
	r = malloc(sizeof(*r));
	if (!r) {
		rc = GRPC_STATUS_RESOURCE_EXHAUSTED;
		goto cleanup;
	}
	understudy__api__agent_command_response__init(r);
	r->id = (uint64_t)sqlite3_last_insert_rowid(ctx->db);
	*resp = &r->base;
cleanup:
	sqlite3_finalize(q);
	return rc;
}

static int command_status(struct us_api_ctx *ctx, const ProtobufCMessage *req,
			  ProtobufCMessage **resp, char *msg, size_t msglen)
{
	const Understudy__Api__CommandStatusRequest *in = (const void *)req;
	Understudy__Api__CommandStatusResponse *r = NULL;
	sqlite3_stmt *q = NULL;
	int rc = GRPC_STATUS_OK, step;

	if (in->id == 0)
		return snprintf(msg, msglen, "id: required"), GRPC_STATUS_INVALID_ARGUMENT;
	if (sqlite3_prepare_v2(ctx->db, "SELECT agent, action, state, coalesce(result, ''), "
			       "sent_count, created_ns, expires_ns, coalesce(finished_ns, 0) "
			       "FROM commands WHERE id = ?", -1, &q, NULL) != SQLITE_OK)
		return db_error(ctx, msg, msglen);
	sqlite3_bind_int64(q, 1, (sqlite3_int64)in->id);
	step = sqlite3_step(q);
	if (step == SQLITE_DONE) {
		snprintf(msg, msglen, "id: no command %llu", (unsigned long long)in->id);
		rc = GRPC_STATUS_NOT_FOUND;
		goto cleanup;
	}
	if (step != SQLITE_ROW || !(r = malloc(sizeof(*r)))) {
		rc = step != SQLITE_ROW ? db_error(ctx, msg, msglen) : GRPC_STATUS_RESOURCE_EXHAUSTED;
		goto cleanup;
	}
	understudy__api__command_status_response__init(r);
	*resp = &r->base;
	r->id = in->id;
	r->agent = us_store_col_dup(q, 0);
	r->action = us_store_col_dup(q, 1);
	r->state = us_store_col_dup(q, 2);
	r->result = us_store_col_dup(q, 3);
	r->sent_count = (uint32_t)sqlite3_column_int(q, 4);
	r->created_ns = (uint64_t)sqlite3_column_int64(q, 5);
	r->expires_ns = (uint64_t)sqlite3_column_int64(q, 6);
	r->finished_ns = (uint64_t)sqlite3_column_int64(q, 7);
	if (!r->agent || !r->action || !r->state || !r->result)
		rc = GRPC_STATUS_RESOURCE_EXHAUSTED;
cleanup:
	sqlite3_finalize(q);
	return rc;
}

/* ---- workloads ---------------------------------------------------------- */

static const char workload_sql[] =
	"SELECT w.name, w.role, a.name, coalesce(w.cgroup_id, 0), w.cgroup_path, w.ports, "
	"w.labels, w.updated_ns, "
	"coalesce((SELECT max(b.start_ns) FROM metric_batches b WHERE b.workload = w.name "
	"  AND b.role = w.role AND b.agent_id = w.agent_id), 0), "
	"coalesce((SELECT max(b.end_ns) FROM metric_batches b WHERE b.workload = w.name "
	"  AND b.role = w.role AND b.agent_id = w.agent_id), 0) "
	"FROM workloads w JOIN agents a ON a.id = w.agent_id "
	"WHERE (?1 IS NULL OR a.name = ?1) AND (?2 IS NULL OR w.name = ?2) "
	"ORDER BY w.name, a.name";

static Understudy__Api__Workload *workload_from_row(sqlite3_stmt *q)
{
	Understudy__Api__Workload *w = malloc(sizeof(*w));

	if (!w)
		return NULL;
	understudy__api__workload__init(w);
	w->name = us_store_col_dup(q, 0);
	w->role = strdup(role_name(sqlite3_column_int64(q, 1)));
	w->agent = us_store_col_dup(q, 2);
	w->cgroup_id = (uint64_t)sqlite3_column_int64(q, 3);
	w->cgroup_path = us_store_col_dup(q, 4);
	w->ports = us_store_col_dup(q, 5);
	w->labels = us_store_col_dup(q, 6);
	w->updated_ns = (uint64_t)sqlite3_column_int64(q, 7);
	w->last_interval_start_ns = (uint64_t)sqlite3_column_int64(q, 8);
	w->last_interval_end_ns = (uint64_t)sqlite3_column_int64(q, 9);
	if (!w->name || !w->role || !w->agent || !w->cgroup_path || !w->ports || !w->labels) {
		protobuf_c_message_free_unpacked(&w->base, NULL);
		return NULL;
	}
	return w;
}

static int select_workloads(struct us_api_ctx *ctx, const char *agent, const char *name,
			    Understudy__Api__Workload ***out, size_t *n, char *msg, size_t msglen)
{
	sqlite3_stmt *q = NULL;
	int rc = GRPC_STATUS_OK, step;

	if (sqlite3_prepare_v2(ctx->db, workload_sql, -1, &q, NULL) != SQLITE_OK)
		return db_error(ctx, msg, msglen);
	if (agent)
		sqlite3_bind_text(q, 1, agent, -1, SQLITE_STATIC);
	if (name)
		sqlite3_bind_text(q, 2, name, -1, SQLITE_STATIC);
	while ((step = sqlite3_step(q)) == SQLITE_ROW) {
		Understudy__Api__Workload *w = workload_from_row(q);

		if (!w || us_ptrs_push((void ***)out, n, w) < 0) {
			if (w)
				protobuf_c_message_free_unpacked(&w->base, NULL);
			snprintf(msg, msglen, "out of memory");
			rc = GRPC_STATUS_RESOURCE_EXHAUSTED;
			goto cleanup;
		}
	}
	if (step != SQLITE_DONE)
		rc = db_error(ctx, msg, msglen);
cleanup:
	sqlite3_finalize(q);
	return rc;
}

static int agents_describe(struct us_api_ctx *ctx, const ProtobufCMessage *req,
			   ProtobufCMessage **resp, char *msg, size_t msglen)
{
	const Understudy__Api__AgentsDescribeRequest *in = (const void *)req;
	Understudy__Api__AgentsDescribeResponse *r;
	Understudy__Api__Agent **found = NULL;
	size_t n = 0;
	int rc;

	if (!in->name[0]) {
		snprintf(msg, msglen, "name: required (an agent id)");
		return GRPC_STATUS_INVALID_ARGUMENT;
	}
	r = malloc(sizeof(*r));
	if (!r)
		return GRPC_STATUS_RESOURCE_EXHAUSTED;
	understudy__api__agents_describe_response__init(r);
	*resp = &r->base;
	rc = select_agents(ctx, in->name, &found, &n, msg, msglen);
	if (rc == GRPC_STATUS_OK && n == 0) {
		snprintf(msg, msglen, "name: no agent '%s'", in->name);
		rc = GRPC_STATUS_NOT_FOUND;
	}
	if (n > 0) {   /* names are unique: at most one */
		r->agent = found[0];
		free(found);
	}
	if (rc == GRPC_STATUS_OK)
		rc = select_workloads(ctx, in->name, NULL, &r->workloads, &r->n_workloads,
				      msg, msglen);
	return rc;
}

static int workloads_list(struct us_api_ctx *ctx, const ProtobufCMessage *req,
			  ProtobufCMessage **resp, char *msg, size_t msglen)
{
	const Understudy__Api__WorkloadsListRequest *in = (const void *)req;
	Understudy__Api__WorkloadsListResponse *r = malloc(sizeof(*r));

	if (!r)
		return GRPC_STATUS_RESOURCE_EXHAUSTED;
	understudy__api__workloads_list_response__init(r);
	*resp = &r->base;
	return select_workloads(ctx, in->agent[0] ? in->agent : NULL, NULL, &r->workloads,
				&r->n_workloads, msg, msglen);
}

/* ---- workload status: the KPIs of the last interval ---------------------- */

static Understudy__Api__Kpi *kpi_new(const char *metric, const char *unit)
{
	Understudy__Api__Kpi *k = malloc(sizeof(*k));

	if (!k)
		return NULL;
	understudy__api__kpi__init(k);
	k->metric = strdup(metric);
	k->unit = strdup(unit);
	if (!k->metric || !k->unit) {
		protobuf_c_message_free_unpacked(&k->base, NULL);
		return NULL;
	}
	return k;
}

static Understudy__Api__Kpi *kpi_from_hist(const Understudy__Histogram *p)
{
	struct us_hist *h = malloc(sizeof(*h));
	Understudy__Api__Kpi *k = NULL;
	char err[256];

	if (!h || us_hist_from_proto(p, h, err, sizeof(err)) < 0)
		goto cleanup;
	k = kpi_new(p->metric, p->unit);
	if (!k)
		goto cleanup;
	k->histogram = true;
	k->count = p->count;
	k->sum = p->sum;
	k->mean = us_hist_mean(h);
	k->p50 = us_hist_quantile(h, 0.5);
	k->p90 = us_hist_quantile(h, 0.9);
	k->p99 = us_hist_quantile(h, 0.99);
	k->p999 = us_hist_quantile(h, 0.999);
cleanup:
	free(h);
	return k;
}

static int kpis_from_batch(const Understudy__MetricBatch *mb, Understudy__Api__WorkloadStatus *st)
{
	for (size_t i = 0; i < mb->n_histograms; i++) {
		Understudy__Api__Kpi *k = kpi_from_hist(mb->histograms[i]);

		if (!k || us_ptrs_push((void ***)&st->kpis, &st->n_kpis, k) < 0) {
			if (k)
				protobuf_c_message_free_unpacked(&k->base, NULL);
			return -1;
		}
	}
	for (size_t i = 0; i < mb->n_counters; i++) {
		Understudy__Api__Kpi *k = kpi_new(mb->counters[i]->metric, mb->counters[i]->unit);

		if (k)
			k->value = mb->counters[i]->value;
		if (!k || us_ptrs_push((void ***)&st->kpis, &st->n_kpis, k) < 0) {
			if (k)
				protobuf_c_message_free_unpacked(&k->base, NULL);
			return -1;
		}
	}
	return 0;
}

static int last_interval_kpis(struct us_api_ctx *ctx, Understudy__Api__WorkloadStatus *st,
			      char *msg, size_t msglen)
{
	const Understudy__Api__Workload *w = st->workload;
	Understudy__Envelope *env = NULL;
	sqlite3_stmt *q = NULL;
	int role = strcmp(w->role, "shadow") == 0 ? UNDERSTUDY__ROLE__SHADOW
						  : UNDERSTUDY__ROLE__PRODUCTION;
	int rc = GRPC_STATUS_OK, step;

	if (sqlite3_prepare_v2(ctx->db,
		"SELECT e.frame FROM metric_batches b JOIN agents a ON a.id = b.agent_id "
		"JOIN envelopes e ON e.agent_id = b.agent_id AND e.seq = b.seq "
		"WHERE a.name = ? AND b.workload = ? AND b.role = ? "
		"ORDER BY b.start_ns DESC LIMIT 1", -1, &q, NULL) != SQLITE_OK)
		return db_error(ctx, msg, msglen);
	sqlite3_bind_text(q, 1, w->agent, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 2, w->name, -1, SQLITE_STATIC);
	sqlite3_bind_int(q, 3, role);
	step = sqlite3_step(q);
	if (step == SQLITE_ROW) {
		enum us_frame_err why;
		char err[256];

		env = us_envelope_decode(&ctx->codec, sqlite3_column_blob(q, 0),
					 (size_t)sqlite3_column_bytes(q, 0), &why, err, sizeof(err));
		if (env && env->body_case == UNDERSTUDY__ENVELOPE__BODY_METRIC_BATCH &&
		    kpis_from_batch(env->metric_batch, st) < 0) {
			snprintf(msg, msglen, "out of memory");
			rc = GRPC_STATUS_RESOURCE_EXHAUSTED;
		}
	} else if (step != SQLITE_DONE) {
		rc = db_error(ctx, msg, msglen);
	}
	if (env)
		us_envelope_free(env);
	sqlite3_finalize(q);
	return rc;
}

static int workloads_describe(struct us_api_ctx *ctx, const ProtobufCMessage *req,
			      ProtobufCMessage **resp, char *msg, size_t msglen)
{
	const Understudy__Api__WorkloadsDescribeRequest *in = (const void *)req;
	Understudy__Api__WorkloadsDescribeResponse *r;
	Understudy__Api__Workload **ws = NULL;
	size_t n = 0, i;
	int rc;

	if (!in->name[0]) {
		snprintf(msg, msglen, "name: required (a workload name)");
		return GRPC_STATUS_INVALID_ARGUMENT;
	}
	r = malloc(sizeof(*r));
	if (!r)
		return GRPC_STATUS_RESOURCE_EXHAUSTED;
	understudy__api__workloads_describe_response__init(r);
	*resp = &r->base;
	rc = select_workloads(ctx, NULL, in->name, &ws, &n, msg, msglen);
	for (i = 0; i < n; i++) {
		Understudy__Api__WorkloadStatus *st = malloc(sizeof(*st));

		if (!st || us_ptrs_push((void ***)&r->instances, &r->n_instances, st) < 0) {
			free(st);
			rc = GRPC_STATUS_RESOURCE_EXHAUSTED;
			break;
		}
		understudy__api__workload_status__init(st);
		st->workload = ws[i];
		ws[i] = NULL;
		if (rc == GRPC_STATUS_OK)
			rc = last_interval_kpis(ctx, st, msg, msglen);
	}
	for (; i < n; i++)
		protobuf_c_message_free_unpacked(&ws[i]->base, NULL);
	free(ws);
	if (rc == GRPC_STATUS_OK && n == 0) {
		snprintf(msg, msglen, "name: no workload '%s'", in->name);
		rc = GRPC_STATUS_NOT_FOUND;
	}
	return rc;
}

/* ---- series --------------------------------------------------------------- */

/* Checks every field and fills q; INVALID_ARGUMENT names the first bad one. */
static int series_args(const Understudy__Api__SeriesQueryRequest *in, struct us_series_query *q,
		       char *msg, size_t msglen)
{
	uint64_t now = us_now_ns();
	const char *step = in->step[0] ? in->step : DEFAULT_STEP;

	q->workload = in->workload;
	q->metric = in->metric;
	if (!in->workload[0])
		snprintf(msg, msglen, "workload: required");
	else if (!in->metric[0])
		snprintf(msg, msglen, "metric: required (e.g. runq_latency)");
	else if (parse_role(in->role, &q->role) < 0)
		snprintf(msg, msglen, "role: expected production or shadow, got '%s'", in->role);
	else if (parse_time(in->from[0] ? in->from : DEFAULT_FROM, now, &q->from_ns) < 0)
		snprintf(msg, msglen, "from: expected unix ns, 'now' or a duration ago such as "
			 "2h, got '%s'", in->from);
	else if (parse_time(in->to[0] ? in->to : "now", now, &q->to_ns) < 0)
		snprintf(msg, msglen, "to: expected unix ns, 'now' or a duration ago such as "
			 "5m, got '%s'", in->to);
	else if (q->from_ns >= q->to_ns)
		snprintf(msg, msglen, "from: must be before to");
	else if (parse_duration(step, &q->step_ns) < 0)
		snprintf(msg, msglen, "step: expected a duration such as 1m, got '%s'", step);
	else if (q->step_ns < 1000000000ull)
		snprintf(msg, msglen, "step: must be at least 1s");
	else if ((q->to_ns - q->from_ns) / q->step_ns > 100000)
		snprintf(msg, msglen, "step: more than 100000 steps in [from, to); use a larger one");
	else
		return GRPC_STATUS_OK;
	return GRPC_STATUS_INVALID_ARGUMENT;
}

static Understudy__Api__Point *point_new(const struct us_series_point *p)
{
	Understudy__Api__Point *o = malloc(sizeof(*o));

	if (!o)
		return NULL;
	understudy__api__point__init(o);
	o->start_ns = p->start_ns;
	o->end_ns = p->end_ns;
	o->count = p->count;
	o->sum = p->sum;
	o->mean = p->mean;
	o->p50 = p->p50;
	o->p90 = p->p90;
	o->p99 = p->p99;
	o->p999 = p->p999;
	return o;
}

static int series_query(struct us_api_ctx *ctx, const ProtobufCMessage *req,
			ProtobufCMessage **resp, char *msg, size_t msglen)
{
	const Understudy__Api__SeriesQueryRequest *in = (const void *)req;
	Understudy__Api__SeriesQueryResponse *r = NULL;
	struct us_series_query q = { 0 };
	struct us_series_point *pts = NULL;
	size_t n = 0;
	int rc = series_args(in, &q, msg, msglen);

	if (rc != GRPC_STATUS_OK)
		return rc;
	if (us_series_query(ctx->db, &q, &pts, &n, msg, msglen) < 0) {
		rc = GRPC_STATUS_INTERNAL;
		goto cleanup;
	}
	rc = GRPC_STATUS_RESOURCE_EXHAUSTED;
	r = malloc(sizeof(*r));
	if (!r)
		goto cleanup;
	understudy__api__series_query_response__init(r);
	*resp = &r->base;
	r->from_ns = q.from_ns;
	r->to_ns = q.to_ns;
	r->step_ns = q.step_ns;
	for (size_t i = 0; i < n; i++) {
		Understudy__Api__Point *p = point_new(&pts[i]);

		if (!p || us_ptrs_push((void ***)&r->points, &r->n_points, p) < 0) {
			free(p);
			goto cleanup;
		}
	}
	rc = GRPC_STATUS_OK;
cleanup:
	free(pts);
	return rc;
}

/* ---- compare -------------------------------------------------------------- */

static int compare_run(struct us_api_ctx *ctx, const ProtobufCMessage *req,
		       ProtobufCMessage **resp, char *msg, size_t msglen)
{
	const Understudy__Api__CompareRequest *in = (const void *)req;
	struct us_verdict *v = NULL;
	struct us_policy pol;
	uint64_t now = us_now_ns(), from;
	int rc = GRPC_STATUS_INVALID_ARGUMENT, found;

	us_policy_defaults(&pol);
	if (in->confidence != 0.0)
		pol.confidence = in->confidence;
	if (in->tolerance_p99 != 0.0)
		pol.tol_p99 = in->tolerance_p99;
	if (in->min_samples)
		pol.min_samples = in->min_samples;
	if (!in->workload[0])
		snprintf(msg, msglen, "workload: required");
	else if (parse_time(in->since[0] ? in->since : DEFAULT_FROM, now, &from) < 0 || from >= now)
		snprintf(msg, msglen, "since: expected unix ns or a duration ago such as 1h, got '%s'",
			 in->since);
	else if (!(pol.confidence > 0.5 && pol.confidence < 1.0))
		snprintf(msg, msglen, "confidence: must be in (0.5, 1)");
	else if (!(pol.tol_p99 > 0.0 && pol.tol_p99 < 10.0))
		snprintf(msg, msglen, "tolerance_p99: must be in (0, 10)");
	else
		rc = GRPC_STATUS_OK;
	if (rc != GRPC_STATUS_OK)
		return rc;
	if (!(v = malloc(sizeof(*v))))
		return GRPC_STATUS_RESOURCE_EXHAUSTED;
	struct us_compare_sides sides = {
		.prod = in->workload, .prod_role = UNDERSTUDY__ROLE__PRODUCTION,
		.shadow = in->shadow_workload[0] ? in->shadow_workload : in->workload,
		.shadow_role = UNDERSTUDY__ROLE__SHADOW,
	};

	found = us_compare_store_sides(ctx->db, &sides, from, now, &pol, v, msg, msglen);
	if (found < 0) {
		rc = GRPC_STATUS_INTERNAL;
	} else if (found > 0) {
		snprintf(msg, msglen, "workload: no data for '%s' in the window", in->workload);
		rc = GRPC_STATUS_NOT_FOUND;
	} else {
		Understudy__Api__CompareResponse *r = us_compare_response(v);

		if (r) {
			r->from_ns = from;
			r->to_ns = now;
			*resp = &r->base;
		}
		rc = r ? GRPC_STATUS_OK : GRPC_STATUS_RESOURCE_EXHAUSTED;
	}
	free(v);
	return rc;
}

/* ---- the table ------------------------------------------------------------ */

static const struct us_api_method methods[] = {
	{ "/understudy.api.Agents/List", &understudy__api__agents_list_request__descriptor,
	  agents_list, "agents" },
	{ "/understudy.api.Agents/Describe", &understudy__api__agents_describe_request__descriptor,
	  agents_describe, "agents describe" },
	{ "/understudy.api.Agents/Command", &understudy__api__agent_command_request__descriptor,
	  agents_command, "command" },
	{ "/understudy.api.Agents/CommandStatus",
	  &understudy__api__command_status_request__descriptor, command_status, "command" },
	{ "/understudy.api.Workloads/List", &understudy__api__workloads_list_request__descriptor,
	  workloads_list, "workloads" },
	{ "/understudy.api.Workloads/Describe",
	  &understudy__api__workloads_describe_request__descriptor, workloads_describe, "status" },
	{ "/understudy.api.Series/Query", &understudy__api__series_query_request__descriptor,
	  series_query, "series" },
	{ "/understudy.api.Recommend/Run", &understudy__api__recommend_request__descriptor,
	  us_api_recommend, "recommend" },
	{ "/understudy.api.Anomalies/Run", &understudy__api__anomalies_request__descriptor,
	  us_api_anomalies, "anomalies" },
	{ "/understudy.api.Instances/Deploy", &understudy__api__deploy_request__descriptor,
	  us_api_deploy, "deploy" },
	{ "/understudy.api.Instances/List", &understudy__api__instances_list_request__descriptor,
	  us_api_instances_list, "instances" },
	{ "/understudy.api.Instances/Decommission",
	  &understudy__api__decommission_request__descriptor, us_api_decommission,
	  "decommission" },
	{ "/understudy.api.Shadow/Start", &understudy__api__shadow_request__descriptor,
	  us_api_shadow_start, "shadow start" },
	{ "/understudy.api.Shadow/Stop", &understudy__api__shadow_stop_request__descriptor,
	  us_api_shadow_stop, "shadow stop" },
	{ "/understudy.api.Compare/Run", &understudy__api__compare_request__descriptor, compare_run,
	  "compare" },
	/* declared in api.proto; the CLI computes this locally */
	{ "/understudy.api.Forecast/Run", &understudy__api__forecast_request__descriptor, NULL,
	  "forecast" },
	{ "/understudy.api.Plan/Make", &understudy__api__plan_request__descriptor,
	  us_api_plan_make, "plan" },
	{ "/understudy.api.Migrate/Start", &understudy__api__migrate_request__descriptor,
	  us_api_migrate_start, "migrate" },
	{ "/understudy.api.Migrate/Approve", &understudy__api__migrate_action_request__descriptor,
	  us_api_migrate_approve, "approve" },
	{ "/understudy.api.Migrate/Rollback", &understudy__api__migrate_action_request__descriptor,
	  us_api_migrate_rollback, "rollback" },
	{ "/understudy.api.Migrate/List", &understudy__api__migrations_list_request__descriptor,
	  us_api_migrations_list, "migrations" },
};

const struct us_api_method *us_api_find_method(const char *path)
{
	for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
		if (strcmp(methods[i].path, path) == 0)
			return &methods[i];
	return NULL;
}
