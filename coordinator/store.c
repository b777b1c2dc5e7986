/* SQLite store: schema migrations, exactly-once envelope insert, derived rows. */
#include "store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sqlite3.h>

#include "clock.h"

/* Migration N takes a database from user_version N-1 to N. Append only:
 * a shipped migration is never edited. */
static const char *const migrations[US_STORE_SCHEMA_VERSION + 1] = {
	[1] =
	"CREATE TABLE agents("
	"  id INTEGER PRIMARY KEY,"
	"  name TEXT NOT NULL UNIQUE,"
	"  public_key TEXT,"
	"  hostname TEXT, kernel_release TEXT, agent_version TEXT, boot_id TEXT,"
	"  first_seen_ns INTEGER NOT NULL, last_seen_ns INTEGER NOT NULL,"
	"  state TEXT NOT NULL DEFAULT 'live',"
	"  spool_dropped_total INTEGER NOT NULL DEFAULT 0,"
	"  last_heartbeat_ns INTEGER);"
	"CREATE TABLE workloads("
	"  id INTEGER PRIMARY KEY,"
	"  agent_id INTEGER NOT NULL REFERENCES agents(id),"
	"  name TEXT NOT NULL, role INTEGER NOT NULL,"
	"  cgroup_id INTEGER, cgroup_path TEXT, ports TEXT, labels TEXT,"
	"  updated_ns INTEGER NOT NULL,"
	"  UNIQUE(agent_id, name));"
	"CREATE TABLE envelopes("
	"  agent_id INTEGER NOT NULL REFERENCES agents(id),"
	"  seq INTEGER NOT NULL,"
	"  kind INTEGER NOT NULL,"
	"  sent_ns INTEGER NOT NULL, received_ns INTEGER NOT NULL,"
	"  frame BLOB NOT NULL,"
	"  UNIQUE(agent_id, seq));"
	"CREATE TABLE metric_batches("
	"  agent_id INTEGER NOT NULL, seq INTEGER NOT NULL,"
	"  workload TEXT NOT NULL, role INTEGER NOT NULL,"
	"  start_ns INTEGER NOT NULL, end_ns INTEGER NOT NULL,"
	"  histograms INTEGER NOT NULL,"
	"  PRIMARY KEY(agent_id, seq)) WITHOUT ROWID;"
	"CREATE INDEX metric_batches_by_workload ON metric_batches(workload, role, start_ns);"
	"CREATE TABLE self_metrics(name TEXT PRIMARY KEY, value INTEGER NOT NULL);",
	/* Time series derived from metric batches by coordinator/rollup.c. The
	 * three point tables share one shape so one merge routine serves them:
	 * count/sum (histogram samples and sum; sum alone is a counter's
	 * increase), gauge_sum/gauge_last/last_ns (gauges: mean and the value
	 * of the latest interval), hist (a packed Histogram, delta-coded). An
	 * interval belongs to the rollup bucket holding its start. Rowid tables:
	 * histogram blobs of 0.3-2 KiB make WITHOUT ROWID leaf pages sparse. */
	[2] =
	"CREATE TABLE series("
	"  id INTEGER PRIMARY KEY,"
	"  workload TEXT NOT NULL, role INTEGER NOT NULL, metric TEXT NOT NULL,"
	"  unit TEXT NOT NULL DEFAULT '',"
	"  kind TEXT NOT NULL CHECK(kind IN ('histogram', 'counter', 'gauge')),"
	"  UNIQUE(workload, role, metric));"
	"CREATE TABLE points_raw("
	"  series_id INTEGER NOT NULL REFERENCES series(id),"
	"  start_ns INTEGER NOT NULL, end_ns INTEGER NOT NULL,"
	"  count INTEGER NOT NULL, sum INTEGER NOT NULL,"
	"  gauge_sum REAL, gauge_last REAL, last_ns INTEGER, hist BLOB,"
	"  UNIQUE(series_id, start_ns));"
	"CREATE TABLE rollup_1m("
	"  series_id INTEGER NOT NULL REFERENCES series(id),"
	"  bucket_start_ns INTEGER NOT NULL, end_ns INTEGER NOT NULL,"
	"  count INTEGER NOT NULL, sum INTEGER NOT NULL,"
	"  gauge_sum REAL, gauge_last REAL, last_ns INTEGER, hist BLOB,"
	"  UNIQUE(series_id, bucket_start_ns));"
	"CREATE TABLE rollup_1h("
	"  series_id INTEGER NOT NULL REFERENCES series(id),"
	"  bucket_start_ns INTEGER NOT NULL, end_ns INTEGER NOT NULL,"
	"  count INTEGER NOT NULL, sum INTEGER NOT NULL,"
	"  gauge_sum REAL, gauge_last REAL, last_ns INTEGER, hist BLOB,"
	"  UNIQUE(series_id, bucket_start_ns));"
	/* the UNIQUE indexes serve the series query (one series, a time
	 * range); these serve retention (everything older than a time) */
	"CREATE INDEX points_raw_by_time ON points_raw(start_ns);"
	"CREATE INDEX rollup_1m_by_time ON rollup_1m(bucket_start_ns);"
	"CREATE INDEX rollup_1h_by_time ON rollup_1h(bucket_start_ns);"
	/* watermark: highest envelopes rowid rolled up; newest_ns: latest
	 * interval start seen, the clock retention runs on */
	"CREATE TABLE rollup_state("
	"  id INTEGER PRIMARY KEY CHECK(id = 1),"
	"  watermark INTEGER NOT NULL, newest_ns INTEGER NOT NULL);"
	"INSERT INTO rollup_state VALUES (1, 0, 0);",
	/* Agent commands: see us_store_command_add. state: pending, done,
	 * failed (the agent said so), expired (no result before expires_ns). */
	[3] =
	"CREATE TABLE commands("
	"  id INTEGER PRIMARY KEY,"
	"  agent TEXT NOT NULL,"
	"  action TEXT NOT NULL CHECK (action IN "
	"    ('report_now', 'reload_config', 'start_mirror', 'stop_mirror')),"
	"  workload TEXT, endpoint TEXT, sample REAL, scale INTEGER,"
	"  created_ns INTEGER NOT NULL, expires_ns INTEGER NOT NULL,"
	"  state TEXT NOT NULL DEFAULT 'pending',"
	"  sent_count INTEGER NOT NULL DEFAULT 0, last_sent_ns INTEGER,"
	"  result TEXT, finished_ns INTEGER);"
	"CREATE INDEX commands_by_agent ON commands(agent, state);",
	/* Envelopes older than retention.raw are pruned once rolled up; seq_floor
	 * is the highest seq pruned per agent, so a very late resend of a pruned
	 * envelope is still a duplicate (an agent's seqs reach the store in
	 * order: one connection, FIFO, batches committed whole and in order). */
	[4] =
	"ALTER TABLE agents ADD COLUMN seq_floor INTEGER NOT NULL DEFAULT 0;"
	"CREATE INDEX envelopes_by_time ON envelopes(received_ns);",
	/* Every RequestSample of every RequestBatch (production and its mirrored
	 * shadow, for paired comparison), written with the envelope row in one
	 * transaction and only when that row is new, so a resend adds nothing.
	 * Values as on the wire: enums as their numbers, method '' in raw mode,
	 * shadow_* zero unless shadow_outcome says the request was mirrored.
	 * Kept for retention.requests, on their own clock (rollup.c): the
	 * first index serves queries (a workload, a time range), the second
	 * retention (everything older than a time). */
	[5] =
	"CREATE TABLE request_samples("
	"  id INTEGER PRIMARY KEY,"
	"  agent_id TEXT NOT NULL, workload TEXT NOT NULL, role INTEGER NOT NULL,"
	"  start_ns INTEGER NOT NULL, end_ns INTEGER NOT NULL, latency_ns INTEGER NOT NULL,"
	"  status_code INTEGER NOT NULL, status_class INTEGER NOT NULL,"
	"  bytes_in INTEGER NOT NULL, bytes_out INTEGER NOT NULL,"
	"  connection_id INTEGER NOT NULL, request_index INTEGER NOT NULL,"
	"  truncated INTEGER NOT NULL, method TEXT NOT NULL,"
	"  shadow_outcome INTEGER NOT NULL, shadow_latency_ns INTEGER NOT NULL,"
	"  shadow_status_code INTEGER NOT NULL, shadow_status_class INTEGER NOT NULL,"
	"  shadow_bytes_out INTEGER NOT NULL);"
	"CREATE INDEX request_samples_by_workload ON request_samples(workload, start_ns);"
	"CREATE INDEX request_samples_by_time ON request_samples(start_ns);",
	/* The control plane (coordinator/controller.c). `instances` is desired
	 * state (desired: running | absent) written by the API and the
	 * controller, with what the provider last reported (state); the
	 * controller drives one toward the other with idempotent provider calls,
	 * so a crash anywhere is resumed by the next pass. `migrations` holds
	 * each migration's state machine; every transition is a
	 * `migration_journal` row committed in the same transaction as the new
	 * state, before any side effect of that state is carried out. */
	[6] =
	"CREATE TABLE instances("
	"  id TEXT PRIMARY KEY, workload TEXT NOT NULL,"
	"  role TEXT NOT NULL,"                 /* production | shadow | candidate | retired */
	"  type TEXT NOT NULL, mode TEXT NOT NULL DEFAULT 'clone',"
	"  sample REAL NOT NULL DEFAULT 0, scale INTEGER NOT NULL DEFAULT 1,"
	"  desired TEXT NOT NULL,"              /* running | absent */
	"  state TEXT NOT NULL DEFAULT 'pending'," /* pending | provisioned | starting | running | failed | absent */
	"  address TEXT NOT NULL DEFAULT '', cgroup TEXT NOT NULL DEFAULT '',"
	"  provision_s REAL, error TEXT NOT NULL DEFAULT '',"
	"  migration_id INTEGER, absent_after_ns INTEGER NOT NULL DEFAULT 0,"
	"  created_ns INTEGER NOT NULL, updated_ns INTEGER NOT NULL);"
	"CREATE INDEX instances_by_workload ON instances(workload, role);"
	"CREATE TABLE migrations("
	"  id INTEGER PRIMARY KEY, workload TEXT NOT NULL, policy TEXT NOT NULL,"
	"  from_instance TEXT NOT NULL DEFAULT '', to_type TEXT NOT NULL DEFAULT '',"
	"  shadow_instance TEXT NOT NULL DEFAULT '', to_instance TEXT NOT NULL DEFAULT '',"
	"  state TEXT NOT NULL, step INTEGER NOT NULL DEFAULT -1,"
	"  state_since_ns INTEGER NOT NULL,"
	"  shadow_mode TEXT NOT NULL DEFAULT 'mirror',"
	"  force INTEGER NOT NULL DEFAULT 0, approved INTEGER NOT NULL DEFAULT 0,"
	"  rollback_requested INTEGER NOT NULL DEFAULT 0,"
	"  baseline_p99_ns REAL NOT NULL DEFAULT 0, baseline_error REAL NOT NULL DEFAULT 0,"
	"  reason TEXT NOT NULL DEFAULT '',"
	"  created_ns INTEGER NOT NULL, updated_ns INTEGER NOT NULL);"
	"CREATE INDEX migrations_by_workload ON migrations(workload, state);"
	"CREATE TABLE migration_journal("
	"  id INTEGER PRIMARY KEY, migration_id INTEGER NOT NULL,"
	"  from_state TEXT NOT NULL, to_state TEXT NOT NULL, step INTEGER NOT NULL,"
	"  at_ns INTEGER NOT NULL, reason TEXT NOT NULL);"
	"CREATE INDEX migration_journal_by_migration ON migration_journal(migration_id, id);",
	/* Capacity plans (coordinator/planner.c): the controller recomputes the
	 * plan of each workload with a production instance every
	 * controller.plan_interval; Plan/Make answers with the latest. A plan
	 * that could not be made is a row too (plan '', error why), so the
	 * interval applies to failures as well. */
	[7] =
	"CREATE TABLE plans("
	"  id INTEGER PRIMARY KEY, workload TEXT NOT NULL,"
	"  created_ns INTEGER NOT NULL, horizon_s INTEGER NOT NULL,"
	"  plan TEXT NOT NULL DEFAULT '', error TEXT NOT NULL DEFAULT '');"
	"CREATE INDEX plans_by_workload ON plans(workload, created_ns);",
};

enum stmt_id {
	ST_BEGIN, ST_COMMIT, ST_ROLLBACK,
	ST_AGENT_FIND, ST_AGENT_ADD,
	ST_ENV_PUT, ST_HELLO, ST_WORKLOAD_PUT, ST_HEARTBEAT, ST_BATCH_PUT, ST_SAMPLE_PUT,
	ST_AGENT_STATE, ST_SELF_METRIC,
	ST_CMD_ADD, ST_CMD_DUE, ST_CMD_SENT, ST_CMD_EXPIRE, ST_CMD_RESULT,
	ST_COUNT
};

static const char *const stmt_sql[ST_COUNT] = {
	/* IMMEDIATE: the rollup thread writes too; a deferred transaction that
	 * must upgrade to write gets SQLITE_BUSY without waiting */
	[ST_BEGIN] = "BEGIN IMMEDIATE",
	[ST_COMMIT] = "COMMIT",
	[ST_ROLLBACK] = "ROLLBACK",
	[ST_AGENT_FIND] = "SELECT id FROM agents WHERE name = ?",
	[ST_AGENT_ADD] = "INSERT INTO agents(name, public_key, first_seen_ns, last_seen_ns) "
			 "VALUES (?, ?, ?, ?)",
	[ST_ENV_PUT] = "INSERT INTO envelopes(agent_id, seq, kind, sent_ns, received_ns, frame) "
		       "SELECT ?1, ?2, ?3, ?4, ?5, ?6 WHERE ?2 > "
		       "(SELECT seq_floor FROM agents WHERE id = ?1) ON CONFLICT DO NOTHING",
	[ST_HELLO] = "UPDATE agents SET hostname = ?, kernel_release = ?, agent_version = ?, "
		     "boot_id = ? WHERE id = ?",
	[ST_WORKLOAD_PUT] = "INSERT INTO workloads(agent_id, name, role, cgroup_id, cgroup_path, "
			    "ports, labels, updated_ns) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
			    "ON CONFLICT(agent_id, name) DO UPDATE SET role = excluded.role, "
			    "cgroup_id = excluded.cgroup_id, cgroup_path = excluded.cgroup_path, "
			    "ports = excluded.ports, labels = excluded.labels, "
			    "updated_ns = excluded.updated_ns",
	[ST_HEARTBEAT] = "UPDATE agents SET last_heartbeat_ns = ?, "
			 "spool_dropped_total = max(spool_dropped_total, ?) WHERE id = ?",
	[ST_BATCH_PUT] = "INSERT INTO metric_batches(agent_id, seq, workload, role, start_ns, "
			 "end_ns, histograms) VALUES (?, ?, ?, ?, ?, ?, ?)",
	[ST_SAMPLE_PUT] = "INSERT INTO request_samples(agent_id, workload, role, start_ns, end_ns, "
			  "latency_ns, status_code, status_class, bytes_in, bytes_out, "
			  "connection_id, request_index, truncated, method, shadow_outcome, "
			  "shadow_latency_ns, shadow_status_code, shadow_status_class, "
			  "shadow_bytes_out) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, "
			  "?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)",
	[ST_AGENT_STATE] = "UPDATE agents SET state = ?, last_seen_ns = max(last_seen_ns, ?) "
			   "WHERE id = ?",
	[ST_SELF_METRIC] = "INSERT INTO self_metrics(name, value) VALUES (?, ?) "
			   "ON CONFLICT(name) DO UPDATE SET value = excluded.value",
	[ST_CMD_ADD] = "INSERT INTO commands(agent, action, workload, endpoint, sample, scale, "
		       "created_ns, expires_ns) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
	[ST_CMD_DUE] = "SELECT id, action, workload, endpoint, sample, scale, expires_ns "
		       "FROM commands WHERE agent = ? AND state = 'pending' AND expires_ns > ? "
		       "AND coalesce(last_sent_ns, 0) + ? <= ? ORDER BY id",
	[ST_CMD_SENT] = "UPDATE commands SET sent_count = sent_count + 1, last_sent_ns = ? "
			"WHERE id = ?",
	[ST_CMD_EXPIRE] = "UPDATE commands SET state = 'expired', finished_ns = ? "
			  "WHERE state = 'pending' AND expires_ns <= ?",
	[ST_CMD_RESULT] = "UPDATE commands SET state = CASE WHEN ? THEN 'done' ELSE 'failed' END, "
			  "result = ?, finished_ns = ? WHERE id = ? AND state IN ('pending', 'expired') "
			  "AND agent = (SELECT name FROM agents WHERE id = ?)",
};

struct us_store {
	sqlite3 *db;
	sqlite3_stmt *st[ST_COUNT];
	char path[4096];
};

static int step_done(sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : -1;
}

static int migrate(struct us_store *st, char *err, size_t errlen)
{
	sqlite3_stmt *q = NULL;
	char *msg = NULL;
	int version = 0;

	if (sqlite3_prepare_v2(st->db, "PRAGMA user_version", -1, &q, NULL) != SQLITE_OK ||
	    sqlite3_step(q) != SQLITE_ROW) {
		snprintf(err, errlen, "%s: %s", st->path, sqlite3_errmsg(st->db));
		sqlite3_finalize(q);
		return -1;
	}
	version = sqlite3_column_int(q, 0);
	sqlite3_finalize(q);
	if (version > US_STORE_SCHEMA_VERSION) {
		snprintf(err, errlen, "%s: store schema version %d is newer than this coordinator's "
			 "(%d); run a coordinator at least as new as the one that wrote it",
			 st->path, version, US_STORE_SCHEMA_VERSION);
		return -1;
	}
	for (int v = version + 1; v <= US_STORE_SCHEMA_VERSION; v++) {
		char sql[64];

		snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", v);
		if (sqlite3_exec(st->db, "BEGIN IMMEDIATE", NULL, NULL, &msg) != SQLITE_OK ||
		    sqlite3_exec(st->db, migrations[v], NULL, NULL, &msg) != SQLITE_OK ||
		    sqlite3_exec(st->db, sql, NULL, NULL, &msg) != SQLITE_OK ||
		    sqlite3_exec(st->db, "COMMIT", NULL, NULL, &msg) != SQLITE_OK) {
			snprintf(err, errlen, "%s: migration to schema %d failed: %s", st->path, v,
				 msg ? msg : sqlite3_errmsg(st->db));
			sqlite3_free(msg);
			sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
			return -1;
		}
	}
	return 0;
}

struct us_store *us_store_open(const char *path, const struct us_store_options *opt,
			       char *err, size_t errlen)
{
	struct us_store *st = calloc(1, sizeof(*st));
	char *msg = NULL;
	char pragmas[256];

	if (!st) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	snprintf(st->path, sizeof(st->path), "%s", path);
	if (sqlite3_open_v2(path, &st->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "store %s: %s", path, sqlite3_errmsg(st->db));
		goto fail;
	}
	sqlite3_busy_timeout(st->db, 5000);
	/* 16 KiB pages hold a compressed envelope of a few KiB without overflow
	 * chains: a third less disk and write traffic than the 4 KiB default */
	snprintf(pragmas, sizeof(pragmas),
		 "PRAGMA page_size=16384; PRAGMA journal_mode=WAL; PRAGMA synchronous=%s;"
		 "PRAGMA foreign_keys=ON;"
		 "PRAGMA cache_size=-65536;",
		 opt->synchronous_full ? "FULL" : "NORMAL");
	if (sqlite3_exec(st->db, pragmas, NULL, NULL, &msg) != SQLITE_OK) {
		snprintf(err, errlen, "store %s: %s", path, msg ? msg : sqlite3_errmsg(st->db));
		sqlite3_free(msg);
		goto fail;
	}
	if (migrate(st, err, errlen) < 0)
		goto fail;
	for (int i = 0; i < ST_COUNT; i++) {
		if (sqlite3_prepare_v3(st->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
				       &st->st[i], NULL) != SQLITE_OK) {
			snprintf(err, errlen, "store %s: %s", path, sqlite3_errmsg(st->db));
			goto fail;
		}
	}
	return st;
fail:
	us_store_close(st);
	return NULL;
}

void us_store_close(struct us_store *st)
{
	if (!st)
		return;
	for (int i = 0; i < ST_COUNT; i++)
		sqlite3_finalize(st->st[i]);
	sqlite3_close(st->db);
	free(st);
}

char *us_store_col_dup(sqlite3_stmt *q, int col)
{
	const char *t = (const char *)sqlite3_column_text(q, col);

	return strdup(t ? t : "");
}

int us_store_begin(struct us_store *st, char *err, size_t errlen)
{
	if (step_done(st->st[ST_BEGIN]) < 0) {
		snprintf(err, errlen, "store begin: %s", sqlite3_errmsg(st->db));
		return -1;
	}
	return 0;
}

int us_store_commit(struct us_store *st, char *err, size_t errlen)
{
	if (step_done(st->st[ST_COMMIT]) < 0) {
		snprintf(err, errlen, "store commit (%s): %s", st->path, sqlite3_errmsg(st->db));
		return -1;
	}
	return 0;
}

void us_store_rollback(struct us_store *st)
{
	if (!sqlite3_get_autocommit(st->db))
		step_done(st->st[ST_ROLLBACK]);
}

int us_store_agent_id(struct us_store *st, const char *name, const char *public_key,
		      int64_t *id, char *err, size_t errlen)
{
	sqlite3_stmt *q = st->st[ST_AGENT_FIND];
	sqlite3_stmt *add = st->st[ST_AGENT_ADD];
	sqlite3_int64 now = (sqlite3_int64)us_now_ns();

	sqlite3_bind_text(q, 1, name, -1, SQLITE_STATIC);
	if (sqlite3_step(q) == SQLITE_ROW) {
		*id = sqlite3_column_int64(q, 0);
		step_done(q);
		return 0;
	}
	step_done(q);
	sqlite3_bind_text(add, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_text(add, 2, public_key, -1, SQLITE_STATIC);
	sqlite3_bind_int64(add, 3, now);
	sqlite3_bind_int64(add, 4, now);
	if (step_done(add) < 0) {
		snprintf(err, errlen, "store: adding agent %s: %s", name, sqlite3_errmsg(st->db));
		return -1;
	}
	*id = sqlite3_last_insert_rowid(st->db);
	return 0;
}

static char *join_ports(const Understudy__Workload *w)
{
	size_t cap = w->n_ports * 12 + 1;
	char *s = malloc(cap);
	size_t len = 0;

	if (!s)
		return NULL;
	s[0] = '\0';
	for (size_t i = 0; i < w->n_ports; i++)
		len += (size_t)snprintf(s + len, cap - len, "%s%u", i ? "," : "", w->ports[i]);
	return s;
}

static char *join_labels(const Understudy__Workload *w)
{
	size_t cap = 1;
	char *s;
	size_t len = 0;

	for (size_t i = 0; i < w->n_labels; i++)
		cap += strlen(w->labels[i]->key) + strlen(w->labels[i]->value) + 2;
	s = malloc(cap);
	if (!s)
		return NULL;
	s[0] = '\0';
	for (size_t i = 0; i < w->n_labels; i++)
		len += (size_t)snprintf(s + len, cap - len, "%s%s=%s", i ? "," : "",
					w->labels[i]->key, w->labels[i]->value);
	return s;
}

static int put_hello(struct us_store *st, int64_t agent, const Understudy__Hello *h,
		     uint64_t now)
{
	sqlite3_stmt *q = st->st[ST_HELLO];
	sqlite3_stmt *w = st->st[ST_WORKLOAD_PUT];

	sqlite3_bind_text(q, 1, h->hostname, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 2, h->kernel_release, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 3, h->agent_version, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 4, h->boot_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 5, agent);
	if (step_done(q) < 0)
		return -1;
	for (size_t i = 0; i < h->n_workloads; i++) {
		const Understudy__Workload *wl = h->workloads[i];
		char *ports = join_ports(wl), *labels = join_labels(wl);
		int rc;

		sqlite3_bind_int64(w, 1, agent);
		sqlite3_bind_text(w, 2, wl->name, -1, SQLITE_STATIC);
		sqlite3_bind_int(w, 3, wl->role);
		sqlite3_bind_int64(w, 4, (sqlite3_int64)wl->cgroup_id);
		sqlite3_bind_text(w, 5, wl->cgroup_path, -1, SQLITE_STATIC);
		sqlite3_bind_text(w, 6, ports, -1, SQLITE_STATIC);
		sqlite3_bind_text(w, 7, labels, -1, SQLITE_STATIC);
		sqlite3_bind_int64(w, 8, (sqlite3_int64)now);
		rc = ports && labels ? step_done(w) : -1;
		free(ports);
		free(labels);
		if (rc < 0)
			return -1;
	}
	return 0;
}

static int put_metric_batch(struct us_store *st, int64_t agent,
			    const struct us_envelope_view *env)
{
	sqlite3_stmt *q = st->st[ST_BATCH_PUT];

	sqlite3_bind_int64(q, 1, agent);
	sqlite3_bind_int64(q, 2, (sqlite3_int64)env->seq);
	sqlite3_bind_text(q, 3, env->workload, (int)env->workload_len, SQLITE_STATIC);
	sqlite3_bind_int(q, 4, env->role);
	sqlite3_bind_int64(q, 5, (sqlite3_int64)env->interval_start_ns);
	sqlite3_bind_int64(q, 6, (sqlite3_int64)env->interval_end_ns);
	sqlite3_bind_int64(q, 7, env->n_histograms);
	return step_done(q);
}

/* The scanner validated the batch (us_request_batch_validate): a workload,
 * end >= start, every figure below 2^63. Agent, workload and role are bound
 * once; only the sample's own columns change from row to row. */
static int put_request_batch(struct us_store *st, const struct us_envelope_view *env)
{
	Understudy__RequestBatch *rb = understudy__request_batch__unpack(NULL, env->body_len,
									 env->body);
	sqlite3_stmt *q = st->st[ST_SAMPLE_PUT];
	int rc = 0;

	if (!rb)
		return -1;
	for (size_t i = 0; i < rb->n_samples && rc == 0; i++) {
		const Understudy__RequestSample *s = rb->samples[i];

		sqlite3_bind_text(q, 1, env->agent_id, (int)env->agent_id_len, SQLITE_STATIC);
		sqlite3_bind_text(q, 2, rb->workload, -1, SQLITE_STATIC);
		sqlite3_bind_int(q, 3, rb->role);
		sqlite3_bind_int64(q, 4, (sqlite3_int64)s->start_ns);
		sqlite3_bind_int64(q, 5, (sqlite3_int64)s->end_ns);
		sqlite3_bind_int64(q, 6, (sqlite3_int64)s->latency_ns);
		sqlite3_bind_int64(q, 7, s->status_code);
		sqlite3_bind_int(q, 8, s->status_class);
		sqlite3_bind_int64(q, 9, (sqlite3_int64)s->bytes_in);
		sqlite3_bind_int64(q, 10, (sqlite3_int64)s->bytes_out);
		sqlite3_bind_int64(q, 11, (sqlite3_int64)s->connection_id);
		sqlite3_bind_int64(q, 12, s->request_index);
		sqlite3_bind_int(q, 13, s->truncated ? 1 : 0);
		sqlite3_bind_text(q, 14, s->method ? s->method : "", -1, SQLITE_STATIC);
		sqlite3_bind_int(q, 15, s->shadow_outcome);
		sqlite3_bind_int64(q, 16, (sqlite3_int64)s->shadow_latency_ns);
		sqlite3_bind_int64(q, 17, s->shadow_status_code);
		sqlite3_bind_int(q, 18, s->shadow_status_class);
		sqlite3_bind_int64(q, 19, (sqlite3_int64)s->shadow_bytes_out);
		rc = step_done(q);
	}
	understudy__request_batch__free_unpacked(rb, NULL);
	return rc;
}

static int put_heartbeat(struct us_store *st, int64_t agent, const struct us_envelope_view *env,
			 uint64_t now)
{
	Understudy__Heartbeat *hb = understudy__heartbeat__unpack(NULL, env->body_len, env->body);
	sqlite3_stmt *q = st->st[ST_HEARTBEAT];

	if (!hb)
		return -1;
	sqlite3_bind_int64(q, 1, (sqlite3_int64)now);
	sqlite3_bind_int64(q, 2, (sqlite3_int64)hb->spool_dropped_total);
	sqlite3_bind_int64(q, 3, agent);
	understudy__heartbeat__free_unpacked(hb, NULL);
	return step_done(q);
}

/* A result for a command of another agent, or one already finished,
 * changes nothing: only the command's own agent can close it, once. */
static int put_command_result(struct us_store *st, int64_t agent,
			      const struct us_envelope_view *env, uint64_t now)
{
	Understudy__CommandResult *r = understudy__command_result__unpack(NULL, env->body_len,
									  env->body);
	sqlite3_stmt *q = st->st[ST_CMD_RESULT];
	int rc;

	if (!r)
		return -1;
	sqlite3_bind_int(q, 1, r->ok);
	sqlite3_bind_text(q, 2, r->message, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(q, 3, (sqlite3_int64)now);
	sqlite3_bind_int64(q, 4, (sqlite3_int64)r->command_id);
	sqlite3_bind_int64(q, 5, agent);
	rc = step_done(q);
	understudy__command_result__free_unpacked(r, NULL);
	return rc;
}

static int put_derived(struct us_store *st, int64_t agent, const struct us_envelope_view *env,
		       uint64_t now)
{
	Understudy__Hello *hello;
	int rc;

	switch (env->body_case) {
	case UNDERSTUDY__ENVELOPE__BODY_HELLO:
		hello = understudy__hello__unpack(NULL, env->body_len, env->body);
		if (!hello)
			return -1;
		rc = put_hello(st, agent, hello, now);
		understudy__hello__free_unpacked(hello, NULL);
		return rc;
	case UNDERSTUDY__ENVELOPE__BODY_HEARTBEAT:
		return put_heartbeat(st, agent, env, now);
	case UNDERSTUDY__ENVELOPE__BODY_COMMAND_RESULT:
		return put_command_result(st, agent, env, now);
	case UNDERSTUDY__ENVELOPE__BODY_METRIC_BATCH:
		return put_metric_batch(st, agent, env);
	case UNDERSTUDY__ENVELOPE__BODY_REQUEST_BATCH:
		return put_request_batch(st, env);
	default:
		return 0;
	}
}

enum us_store_put us_store_put_envelope(struct us_store *st, int64_t agent,
					const struct us_envelope_view *env,
					const uint8_t *frame, size_t frame_len,
					uint64_t received_ns, char *err, size_t errlen)
{
	sqlite3_stmt *q = st->st[ST_ENV_PUT];

	sqlite3_bind_int64(q, 1, agent);
	sqlite3_bind_int64(q, 2, (sqlite3_int64)env->seq);
	sqlite3_bind_int(q, 3, (int)env->body_case);
	sqlite3_bind_int64(q, 4, (sqlite3_int64)env->sent_unix_ns);
	sqlite3_bind_int64(q, 5, (sqlite3_int64)received_ns);
	sqlite3_bind_blob(q, 6, frame, (int)frame_len, SQLITE_STATIC);
	if (step_done(q) < 0)
		goto fail;
	if (sqlite3_changes(st->db) == 0)
		return US_STORE_DUPLICATE;
	if (put_derived(st, agent, env, received_ns) < 0)
		goto fail;
	return US_STORE_NEW;
fail:
	snprintf(err, errlen, "store: envelope %.*s/%llu: %s", (int)env->agent_id_len,
		 env->agent_id, (unsigned long long)env->seq, sqlite3_errmsg(st->db));
	return US_STORE_ERROR;
}

int us_store_each_agent(struct us_store *st, us_store_agent_fn fn, void *ctx)
{
	sqlite3_stmt *q = NULL;
	int rc;

	if (sqlite3_prepare_v2(st->db, "SELECT id, name, state FROM agents", -1, &q, NULL) != SQLITE_OK)
		return -1;
	while ((rc = sqlite3_step(q)) == SQLITE_ROW)
		fn(ctx, sqlite3_column_int64(q, 0), (const char *)sqlite3_column_text(q, 1),
		   (const char *)sqlite3_column_text(q, 2));
	sqlite3_finalize(q);
	return rc == SQLITE_DONE ? 0 : -1;
}

int us_store_set_agent_state(struct us_store *st, int64_t agent, const char *state,
			     uint64_t last_seen_ns)
{
	sqlite3_stmt *q = st->st[ST_AGENT_STATE];

	sqlite3_bind_text(q, 1, state, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 2, (sqlite3_int64)last_seen_ns);
	sqlite3_bind_int64(q, 3, agent);
	return step_done(q);
}

int us_store_put_self_metric(struct us_store *st, const char *name, uint64_t value)
{
	sqlite3_stmt *q = st->st[ST_SELF_METRIC];

	sqlite3_bind_text(q, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 2, (sqlite3_int64)value);
	return step_done(q);
}

int us_store_command_add(struct us_store *st, const struct us_store_command *cmd, int64_t *id,
			 char *err, size_t errlen)
{
	sqlite3_stmt *q = st->st[ST_CMD_ADD];

	sqlite3_bind_text(q, 1, cmd->agent, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 2, cmd->action, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 3, cmd->workload, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 4, cmd->endpoint, -1, SQLITE_STATIC);
	sqlite3_bind_double(q, 5, cmd->sample);
	sqlite3_bind_int64(q, 6, cmd->scale);
	sqlite3_bind_int64(q, 7, (sqlite3_int64)us_now_ns());
	sqlite3_bind_int64(q, 8, (sqlite3_int64)cmd->expires_ns);
	if (step_done(q) < 0) {
		snprintf(err, errlen, "store: queueing a command for %s: %s", cmd->agent,
			 sqlite3_errmsg(st->db));
		return -1;
	}
	*id = sqlite3_last_insert_rowid(st->db);
	return 0;
}

int us_store_commands_due(struct us_store *st, const char *agent, uint64_t now_ns,
			  uint64_t retry_ns, us_store_command_fn fn, void *ctx)
{
	sqlite3_stmt *q = st->st[ST_CMD_DUE];
	int64_t ids[64];
	size_t n = 0;
	int rc;

	sqlite3_bind_text(q, 1, agent, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 2, (sqlite3_int64)now_ns);
	sqlite3_bind_int64(q, 3, (sqlite3_int64)retry_ns);
	sqlite3_bind_int64(q, 4, (sqlite3_int64)now_ns);
	while (n < 64 && (rc = sqlite3_step(q)) == SQLITE_ROW) {
		struct us_store_command cmd = {
			.id = sqlite3_column_int64(q, 0),
			.agent = agent,
			.action = (const char *)sqlite3_column_text(q, 1),
			.workload = (const char *)sqlite3_column_text(q, 2),
			.endpoint = (const char *)sqlite3_column_text(q, 3),
			.sample = sqlite3_column_double(q, 4),
			.scale = (uint32_t)sqlite3_column_int64(q, 5),
			.expires_ns = (uint64_t)sqlite3_column_int64(q, 6),
		};

		fn(ctx, &cmd);
		ids[n++] = cmd.id;
	}
	sqlite3_reset(q);
	sqlite3_clear_bindings(q);
	for (size_t i = 0; i < n; i++) {
		sqlite3_bind_int64(st->st[ST_CMD_SENT], 1, (sqlite3_int64)now_ns);
		sqlite3_bind_int64(st->st[ST_CMD_SENT], 2, ids[i]);
		if (step_done(st->st[ST_CMD_SENT]) < 0)
			return -1;
	}
	return (int)n;
}

int us_store_commands_expire(struct us_store *st, uint64_t now_ns)
{
	sqlite3_stmt *q = st->st[ST_CMD_EXPIRE];

	sqlite3_bind_int64(q, 1, (sqlite3_int64)now_ns);
	sqlite3_bind_int64(q, 2, (sqlite3_int64)now_ns);
	if (step_done(q) < 0)
		return -1;
	return sqlite3_changes(st->db);
}
