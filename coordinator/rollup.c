/* Rollup worker: envelopes -> raw points -> 1 m / 1 h rollups, the watermark
 * that makes this exactly-once, and retention. Owns its SQLite connection,
 * its codec and its scratch histograms; nothing is shared with the ingest
 * thread but the database file (WAL: the two write in turn, so each
 * transaction here stays short and waits on busy_timeout, never fails). */
#include "rollup.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sqlite3.h>
#include <time.h>

#include "buf.h"
#include "clock.h"
#include "envelope.h"
#include "log.h"

/* Longest a rollup transaction holds the write lock; the worker then pauses
 * at least as long, because SQLite's busy handler is not fair: a writer that
 * begins again at once can keep a waiting ingest out for seconds, long
 * enough for agents to time out and resend. */
#define CHUNK_NS (100 * US_NS_PER_MS)
#define PAUSE_MIN_NS (10 * US_NS_PER_MS)

enum tbl { T_RAW, T_1M, T_1H, T_COUNT };

static const struct {
	const char *name;
	const char *start;      /* the key time column */
	uint64_t width_ns;      /* 0: one row per interval */
} tables[T_COUNT] = {
	[T_RAW] = { "points_raw", "start_ns", 0 },
	[T_1M] = { "rollup_1m", "bucket_start_ns", US_ROLLUP_MINUTE_NS },
	[T_1H] = { "rollup_1h", "bucket_start_ns", US_ROLLUP_HOUR_NS },
};

enum kind { K_HIST, K_COUNTER, K_GAUGE };
static const char *const kind_names[] = { "histogram", "counter", "gauge" };

/* One metric of one interval, or a stored row being merged into. */
struct item {
	uint64_t end_ns, count, sum, last_ns;
	double gauge_sum, gauge_last;
	struct us_hist *hist;   /* NULL unless a histogram */
};

enum stmt_id {
	S_BEGIN, S_COMMIT, S_ROLLBACK, S_STATE_GET, S_STATE_PUT, S_ENV_NEXT,
	S_SERIES_FIND, S_SERIES_ADD, S_REQ_NEWEST, S_REQ_TRIM, S_COUNT
};

static const char *const stmt_sql[S_COUNT] = {
	/* IMMEDIATE: take the write lock first, so a busy ingest makes us wait
	 * (busy_timeout) instead of failing a read-to-write upgrade */
	[S_BEGIN] = "BEGIN IMMEDIATE",
	[S_COMMIT] = "COMMIT",
	[S_ROLLBACK] = "ROLLBACK",
	[S_STATE_GET] = "SELECT watermark, newest_ns FROM rollup_state WHERE id = 1",
	[S_STATE_PUT] = "UPDATE rollup_state SET watermark = ?, newest_ns = ? WHERE id = 1",
	[S_ENV_NEXT] = "SELECT rowid, kind, frame FROM envelopes WHERE rowid > ? "
		       "ORDER BY rowid LIMIT ?",
	[S_SERIES_FIND] = "SELECT id, kind FROM series WHERE workload = ? AND role = ? "
			  "AND metric = ?",
	[S_SERIES_ADD] = "INSERT INTO series(workload, role, metric, unit, kind) "
			 "VALUES (?, ?, ?, ?, ?)",
	/* both served by request_samples_by_time */
	[S_REQ_NEWEST] = "SELECT max(start_ns) FROM request_samples",
	[S_REQ_TRIM] = "DELETE FROM request_samples WHERE id IN "
		       "(SELECT id FROM request_samples WHERE start_ns < ? LIMIT 5000)",
};

struct ctx {
	sqlite3 *db;
	sqlite3_stmt *st[S_COUNT];
	sqlite3_stmt *get[T_COUNT], *put[T_COUNT], *trim[T_COUNT];
	struct us_codec codec;
	struct us_hist *in;     /* the interval's histogram */
	struct us_hist *row;    /* a stored row's, during a merge */
	struct us_buf blob;
	struct us_rollup_config cfg;
	struct us_rollup_stats stats;
	uint64_t watermark, newest_ns;
	char err[512];
};

struct us_rollup {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	bool stop;
	struct ctx *ctx;
};

void us_rollup_config_defaults(struct us_rollup_config *c)
{
	c->raw_retention_ns = 48 * US_ROLLUP_HOUR_NS;
	c->minute_retention_ns = 35 * 24 * US_ROLLUP_HOUR_NS;
	c->hour_retention_ns = 400 * 24 * US_ROLLUP_HOUR_NS;
	c->requests_retention_ns = 7 * 24 * US_ROLLUP_HOUR_NS;
	c->batch_envelopes = 500;
	c->poll_ns = US_NS_PER_SEC;
}

static int step_done(sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : -1;
}

int us_rollup_blob_add(const void *blob, size_t len, struct us_hist *into,
		       char *err, size_t errlen)
{
	Understudy__Histogram *p = understudy__histogram__unpack(NULL, len, blob);
	int rc = -1;

	if (!p) {
		snprintf(err, errlen, "stored histogram does not unpack");
		goto cleanup;
	}
	if (us_hist_proto_validate(p, err, errlen) < 0)
		goto cleanup;
	/* add in place: from_proto would clear a 15 KiB histogram first */
	for (size_t i = 0, idx = 0; i < p->n_bucket_index; i++) {
		idx += p->bucket_index[i];
		into->buckets[idx] += p->bucket_count[i];
	}
	into->count += p->count;
	into->sum += p->sum;
	rc = 0;
cleanup:
	if (p)
		understudy__histogram__free_unpacked(p, NULL);
	return rc;
}

static int hist_pack(const struct us_hist *h, struct us_buf *out)
{
	Understudy__Histogram p = UNDERSTUDY__HISTOGRAM__INIT;
	int rc = -1;

	if (us_hist_to_proto(h, &p) < 0)
		return -1;
	us_buf_clear(out);
	if (us_buf_reserve(out, understudy__histogram__get_packed_size(&p)) < 0)
		goto cleanup;
	out->len = understudy__histogram__pack(&p, out->data);
	rc = 0;
cleanup:
	us_hist_proto_free_arrays(&p);
	return rc;
}

static void ctx_close(struct ctx *c)
{
	if (!c)
		return;
	for (int i = 0; i < S_COUNT; i++)
		sqlite3_finalize(c->st[i]);
	for (int t = 0; t < T_COUNT; t++) {
		sqlite3_finalize(c->get[t]);
		sqlite3_finalize(c->put[t]);
		sqlite3_finalize(c->trim[t]);
	}
	sqlite3_close(c->db);
	us_codec_free(&c->codec);
	us_buf_free(&c->blob);
	free(c->in);
	free(c->row);
	free(c);
}

static int prepare(struct ctx *c, const char *sql, sqlite3_stmt **out)
{
	return sqlite3_prepare_v3(c->db, sql, -1, SQLITE_PREPARE_PERSISTENT, out, NULL) ==
	       SQLITE_OK ? 0 : -1;
}

static int prepare_table(struct ctx *c, enum tbl t)
{
	const char *n = tables[t].name, *k = tables[t].start;
	char sql[768];

	snprintf(sql, sizeof(sql), "SELECT end_ns, count, sum, gauge_sum, gauge_last, last_ns, "
		 "hist FROM %s WHERE series_id = ? AND %s = ?", n, k);
	if (prepare(c, sql, &c->get[t]) < 0)
		return -1;
	snprintf(sql, sizeof(sql), "INSERT INTO %s(series_id, %s, end_ns, count, sum, gauge_sum, "
		 "gauge_last, last_ns, hist) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
		 "ON CONFLICT(series_id, %s) DO UPDATE SET end_ns = excluded.end_ns, "
		 "count = excluded.count, sum = excluded.sum, gauge_sum = excluded.gauge_sum, "
		 "gauge_last = excluded.gauge_last, last_ns = excluded.last_ns, "
		 "hist = excluded.hist", n, k, k);
	if (prepare(c, sql, &c->put[t]) < 0)
		return -1;
	/* bounded deletes keep a large first purge from holding the write
	 * lock against ingest for long */
	snprintf(sql, sizeof(sql), "DELETE FROM %s WHERE rowid IN "
		 "(SELECT rowid FROM %s WHERE %s < ? LIMIT 5000)", n, n, k);
	return prepare(c, sql, &c->trim[t]);
}

static struct ctx *ctx_open(const char *db_path, const struct us_rollup_config *cfg,
			    char *err, size_t errlen)
{
	struct ctx *c = calloc(1, sizeof(*c));

	if (!c || !(c->in = malloc(sizeof(*c->in))) || !(c->row = malloc(sizeof(*c->row)))) {
		snprintf(err, errlen, "rollup: out of memory");
		goto fail;
	}
	us_codec_init(&c->codec);
	us_rollup_config_defaults(&c->cfg);
	if (cfg) {
		c->cfg = *cfg;
		if (!c->cfg.batch_envelopes)
			c->cfg.batch_envelopes = 500;
		if (!c->cfg.poll_ns)
			c->cfg.poll_ns = US_NS_PER_SEC;
	}
	/* no CREATE: the store owns the file and its schema */
	if (sqlite3_open_v2(db_path, &c->db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK)
		goto sqlfail;
	sqlite3_busy_timeout(c->db, 5000);
	/* NORMAL: a crash may lose the last rollup commits, but the watermark
	 * goes with them, so they are redone, never doubled */
	if (sqlite3_exec(c->db, "PRAGMA synchronous=NORMAL", NULL, NULL, NULL) != SQLITE_OK)
		goto sqlfail;
	for (int i = 0; i < S_COUNT; i++)
		if (prepare(c, stmt_sql[i], &c->st[i]) < 0)
			goto sqlfail;
	for (int t = 0; t < T_COUNT; t++)
		if (prepare_table(c, t) < 0)
			goto sqlfail;
	return c;
sqlfail:
	snprintf(err, errlen, "rollup: store %s: %s", db_path,
		 c->db ? sqlite3_errmsg(c->db) : "out of memory");
fail:
	ctx_close(c);
	return NULL;
}

static void item_merge(struct item *into, const struct item *from)
{
	if (from->end_ns > into->end_ns)
		into->end_ns = from->end_ns;
	into->count += from->count;
	into->sum += from->sum;
	into->gauge_sum += from->gauge_sum;
	/* a late, older interval does not replace the last value */
	if (from->last_ns >= into->last_ns) {
		into->last_ns = from->last_ns;
		into->gauge_last = from->gauge_last;
	}
	if (into->hist && from->hist)
		us_hist_merge(into->hist, from->hist);
}

static int item_put(struct ctx *c, enum tbl t, int64_t series, uint64_t key,
		    const struct item *it, enum kind kind)
{
	sqlite3_stmt *q = c->put[t];

	sqlite3_bind_int64(q, 1, series);
	sqlite3_bind_int64(q, 2, (sqlite3_int64)key);
	sqlite3_bind_int64(q, 3, (sqlite3_int64)it->end_ns);
	sqlite3_bind_int64(q, 4, (sqlite3_int64)it->count);
	sqlite3_bind_int64(q, 5, (sqlite3_int64)it->sum);
	if (kind == K_GAUGE) {
		sqlite3_bind_double(q, 6, it->gauge_sum);
		sqlite3_bind_double(q, 7, it->gauge_last);
		sqlite3_bind_int64(q, 8, (sqlite3_int64)it->last_ns);
	}
	if (kind == K_HIST) {
		if (hist_pack(it->hist, &c->blob) < 0)
			return -1;
		sqlite3_bind_blob(q, 9, c->blob.data, (int)c->blob.len, SQLITE_STATIC);
	}
	return step_done(q);
}

/* Read-modify-write of one row: histogram blobs cannot be merged in SQL. */
static int merge_row(struct ctx *c, enum tbl t, int64_t series, uint64_t key,
		     const struct item *it, enum kind kind)
{
	sqlite3_stmt *q = c->get[t];
	struct item row = { 0 };
	int rc = -1;

	sqlite3_bind_int64(q, 1, series);
	sqlite3_bind_int64(q, 2, (sqlite3_int64)key);
	switch (sqlite3_step(q)) {
	case SQLITE_DONE:
		sqlite3_reset(q);
		return item_put(c, t, series, key, it, kind);
	case SQLITE_ROW:
		break;
	default:
		goto cleanup;
	}
	row.end_ns = (uint64_t)sqlite3_column_int64(q, 0);
	row.count = (uint64_t)sqlite3_column_int64(q, 1);
	row.sum = (uint64_t)sqlite3_column_int64(q, 2);
	row.gauge_sum = sqlite3_column_double(q, 3);
	row.gauge_last = sqlite3_column_double(q, 4);
	row.last_ns = (uint64_t)sqlite3_column_int64(q, 5);
	if (kind == K_HIST) {
		row.hist = c->row;
		us_hist_reset(row.hist);
		if (sqlite3_column_type(q, 6) == SQLITE_BLOB &&
		    us_rollup_blob_add(sqlite3_column_blob(q, 6), (size_t)sqlite3_column_bytes(q, 6),
				       row.hist, c->err, sizeof(c->err)) < 0)
			goto cleanup;
	}
	sqlite3_reset(q);
	item_merge(&row, it);
	rc = item_put(c, t, series, key, &row, kind);
cleanup:
	sqlite3_reset(q);
	sqlite3_clear_bindings(q);
	return rc;
}

/* The series id of (workload, role, metric), created on first sight; 1 when
 * the name is already taken by another kind (the metric is skipped). */
static int series_id(struct ctx *c, const Understudy__MetricBatch *mb, const char *metric,
		     const char *unit, enum kind kind, int64_t *id)
{
	sqlite3_stmt *find = c->st[S_SERIES_FIND], *add = c->st[S_SERIES_ADD];
	int rc = -1;

	sqlite3_bind_text(find, 1, mb->workload, -1, SQLITE_STATIC);
	sqlite3_bind_int(find, 2, mb->role);
	sqlite3_bind_text(find, 3, metric, -1, SQLITE_STATIC);
	if (sqlite3_step(find) == SQLITE_ROW) {
		*id = sqlite3_column_int64(find, 0);
		rc = strcmp((const char *)sqlite3_column_text(find, 1), kind_names[kind]) ? 1 : 0;
		goto cleanup;
	}
	sqlite3_bind_text(add, 1, mb->workload, -1, SQLITE_STATIC);
	sqlite3_bind_int(add, 2, mb->role);
	sqlite3_bind_text(add, 3, metric, -1, SQLITE_STATIC);
	sqlite3_bind_text(add, 4, unit ? unit : "", -1, SQLITE_STATIC);
	sqlite3_bind_text(add, 5, kind_names[kind], -1, SQLITE_STATIC);
	if (step_done(add) < 0)
		goto cleanup;
	*id = sqlite3_last_insert_rowid(c->db);
	rc = 0;
cleanup:
	sqlite3_reset(find);
	sqlite3_clear_bindings(find);
	return rc;
}

/* One metric of one interval into raw, 1 m and 1 h. */
static int roll_item(struct ctx *c, const Understudy__MetricBatch *mb, const char *metric,
		     const char *unit, enum kind kind, const struct item *it)
{
	uint64_t start = mb->interval_start_ns;
	int64_t id;
	int rc = series_id(c, mb, metric, unit, kind, &id);

	if (rc != 0) {
		c->stats.skipped += rc > 0;
		return rc < 0 ? -1 : 0;
	}
	for (int t = 0; t < T_COUNT; t++) {
		uint64_t key = tables[t].width_ns ? start - start % tables[t].width_ns : start;

		if (merge_row(c, t, id, key, it, kind) < 0)
			return -1;
	}
	c->stats.points++;
	return 0;
}

static int roll_batch(struct ctx *c, const Understudy__MetricBatch *mb)
{
	struct item it;

	for (size_t i = 0; i < mb->n_histograms; i++) {
		const Understudy__Histogram *h = mb->histograms[i];

		if (us_hist_from_proto(h, c->in, c->err, sizeof(c->err)) < 0) {
			c->stats.skipped++;
			c->err[0] = '\0';
			continue;
		}
		it = (struct item){ .end_ns = mb->interval_end_ns, .count = h->count,
				    .sum = h->sum, .hist = c->in };
		if (roll_item(c, mb, h->metric, h->unit, K_HIST, &it) < 0)
			return -1;
	}
	for (size_t i = 0; i < mb->n_counters; i++) {
		it = (struct item){ .end_ns = mb->interval_end_ns, .sum = mb->counters[i]->value };
		if (roll_item(c, mb, mb->counters[i]->metric, mb->counters[i]->unit, K_COUNTER,
			      &it) < 0)
			return -1;
	}
	for (size_t i = 0; i < mb->n_gauges; i++) {
		double v = mb->gauges[i]->value;

		it = (struct item){ .end_ns = mb->interval_end_ns, .count = 1, .gauge_sum = v,
				    .gauge_last = v, .last_ns = mb->interval_start_ns };
		if (roll_item(c, mb, mb->gauges[i]->metric, mb->gauges[i]->unit, K_GAUGE, &it) < 0)
			return -1;
	}
	if (mb->interval_start_ns > c->newest_ns)
		c->newest_ns = mb->interval_start_ns;
	return 0;
}

/* Frames were validated on ingest; one that no longer decodes (or a test's
 * placeholder) is counted and passed over rather than blocking the rest. */
static int roll_frame(struct ctx *c, const uint8_t *frame, size_t len)
{
	enum us_frame_err why;
	Understudy__Envelope *env = us_envelope_decode(&c->codec, frame, len, &why,
						       c->err, sizeof(c->err));
	int rc;

	if (!env || env->body_case != UNDERSTUDY__ENVELOPE__BODY_METRIC_BATCH) {
		c->stats.skipped++;
		c->err[0] = '\0';
		if (env)
			us_envelope_free(env);
		return 0;
	}
	rc = roll_batch(c, env->metric_batch);
	us_envelope_free(env);
	c->stats.envelopes += rc == 0;
	return rc;
}

static int state_load(struct ctx *c)
{
	sqlite3_stmt *q = c->st[S_STATE_GET];
	int rc = -1;

	if (sqlite3_step(q) == SQLITE_ROW) {
		c->watermark = (uint64_t)sqlite3_column_int64(q, 0);
		c->newest_ns = (uint64_t)sqlite3_column_int64(q, 1);
		rc = 0;
	}
	sqlite3_reset(q);
	return rc;
}

/* One transaction: up to batch_envelopes envelopes past the watermark.
 * *more says the batch was full (there may be more to do). */
static int run_chunk(struct ctx *c, bool *more)
{
	sqlite3_stmt *q = c->st[S_ENV_NEXT], *put = c->st[S_STATE_PUT];
	uint64_t t0 = us_mono_ns();
	uint32_t n = 0;
	int rc;

	*more = false;
	if (step_done(c->st[S_BEGIN]) < 0 || state_load(c) < 0)
		goto fail;
	sqlite3_bind_int64(q, 1, (sqlite3_int64)c->watermark);
	sqlite3_bind_int64(q, 2, c->cfg.batch_envelopes);
	/* ends early after CHUNK_NS too: ingest waits for our lock */
	while (us_mono_ns() - t0 < CHUNK_NS && (rc = sqlite3_step(q)) == SQLITE_ROW) {
		n++;
		c->watermark = (uint64_t)sqlite3_column_int64(q, 0);
		/* only now read the frame: other bodies cost nothing */
		if (sqlite3_column_int(q, 1) != UNDERSTUDY__ENVELOPE__BODY_METRIC_BATCH)
			continue;
		if (roll_frame(c, sqlite3_column_blob(q, 2), (size_t)sqlite3_column_bytes(q, 2)) < 0)
			goto fail;
	}
	if (us_mono_ns() - t0 >= CHUNK_NS) {
		rc = SQLITE_DONE;
		n = c->cfg.batch_envelopes;   /* more may remain */
	}
	sqlite3_reset(q);
	if (rc != SQLITE_DONE)
		goto fail;
	sqlite3_bind_int64(put, 1, (sqlite3_int64)c->watermark);
	sqlite3_bind_int64(put, 2, (sqlite3_int64)c->newest_ns);
	if (step_done(put) < 0 || step_done(c->st[S_COMMIT]) < 0)
		goto fail;
	c->stats.transactions++;
	*more = n == c->cfg.batch_envelopes;
	return 0;
fail:
	if (!c->err[0])
		snprintf(c->err, sizeof(c->err), "%s", sqlite3_errmsg(c->db));
	sqlite3_reset(q);
	sqlite3_clear_bindings(q);
	if (!sqlite3_get_autocommit(c->db))
		step_done(c->st[S_ROLLBACK]);
	return -1;
}

/* The frames as received share the raw points' retention, but only once
 * rolled up (rowid <= watermark). Each agent's seq_floor first rises to the
 * highest seq pruned, in the same transaction, so that a resend of a pruned
 * envelope is still recognised as a duplicate. */
static int prune_envelopes(struct ctx *c, uint64_t now)
{
	static const char *const sql[] = {
		"UPDATE agents SET seq_floor = max(seq_floor, coalesce((SELECT max(seq) "
		"FROM envelopes e WHERE e.agent_id = agents.id AND e.received_ns < ?1 "
		"AND e.rowid <= ?2), 0))",
		"DELETE FROM metric_batches WHERE (agent_id, seq) IN (SELECT agent_id, seq "
		"FROM envelopes WHERE received_ns < ?1 AND rowid <= ?2)",
		"DELETE FROM envelopes WHERE received_ns < ?1 AND rowid <= ?2",
	};
	uint64_t keep = c->cfg.raw_retention_ns;
	sqlite3_stmt *q = NULL;
	int rc = -1;

	if (!keep || keep >= now)
		return 0;
	if (sqlite3_exec(c->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		return -1;
	for (size_t i = 0; i < sizeof(sql) / sizeof(sql[0]); i++) {
		if (sqlite3_prepare_v2(c->db, sql[i], -1, &q, NULL) != SQLITE_OK)
			goto cleanup;
		sqlite3_bind_int64(q, 1, (sqlite3_int64)(now - keep));
		sqlite3_bind_int64(q, 2, (sqlite3_int64)c->watermark);
		if (sqlite3_step(q) != SQLITE_DONE)
			goto cleanup;
		if (i == 2)
			c->stats.deleted += (uint64_t)sqlite3_changes(c->db);
		sqlite3_finalize(q);
		q = NULL;
	}
	rc = sqlite3_exec(c->db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK ? 0 : -1;
cleanup:
	sqlite3_finalize(q);
	if (rc < 0)
		sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
	return rc;
}

/* Request samples are not rolled up and come on their own schedule, so
 * their retention runs on their own data time: the newest sample's start,
 * capped at the wall clock, for the reasons apply_retention gives. */
static int prune_requests(struct ctx *c)
{
	sqlite3_stmt *q = c->st[S_REQ_NEWEST];
	uint64_t keep = c->cfg.requests_retention_ns, now = us_now_ns(), newest = 0;
	int rc, changes;

	rc = sqlite3_step(q);
	if (rc == SQLITE_ROW && sqlite3_column_type(q, 0) == SQLITE_INTEGER)
		newest = (uint64_t)sqlite3_column_int64(q, 0);
	sqlite3_reset(q);
	if (rc != SQLITE_ROW)
		return -1;
	if (newest < now)
		now = newest;
	if (!keep || keep >= now)
		return 0;
	do {
		sqlite3_bind_int64(c->st[S_REQ_TRIM], 1, (sqlite3_int64)(now - keep));
		if (step_done(c->st[S_REQ_TRIM]) < 0)
			return -1;
		changes = sqlite3_changes(c->db);
		c->stats.deleted += (uint64_t)changes;
		c->stats.samples_deleted += (uint64_t)changes;
	} while (changes == 5000);
	return 0;
}

/* Retention runs on the newest interval start rolled up, capped at the wall
 * clock: a coordinator that receives nothing for days (or replays an old
 * spool) keeps its history, and a batch stamped far in the future cannot
 * push the horizon past now and wipe current data. */
static int apply_retention(struct ctx *c)
{
	const uint64_t keep[T_COUNT] = {
		c->cfg.raw_retention_ns, c->cfg.minute_retention_ns, c->cfg.hour_retention_ns
	};
	uint64_t now = us_now_ns();
	int changes;

	if (state_load(c) < 0)
		goto fail;
	if (c->newest_ns < now)
		now = c->newest_ns;
	if (prune_envelopes(c, now) < 0 || prune_requests(c) < 0)
		goto fail;
	for (int t = 0; t < T_COUNT; t++) {
		if (!keep[t] || keep[t] >= now)
			continue;
		do {
			sqlite3_bind_int64(c->trim[t], 1, (sqlite3_int64)(now - keep[t]));
			if (step_done(c->trim[t]) < 0)
				goto fail;
			changes = sqlite3_changes(c->db);
			c->stats.deleted += (uint64_t)changes;
		} while (changes == 5000);
	}
	return 0;
fail:
	snprintf(c->err, sizeof(c->err), "retention: %s", sqlite3_errmsg(c->db));
	return -1;
}

static bool wait_or_stop(struct us_rollup *r, uint64_t ns);

static bool stopping(struct us_rollup *r)
{
	bool stop;

	if (!r)
		return false;
	pthread_mutex_lock(&r->lock);
	stop = r->stop;
	pthread_mutex_unlock(&r->lock);
	return stop;
}

/* Everything past the watermark, then retention; r (NULL when synchronous)
 * is asked between transactions whether to stop, so a long backlog does not
 * hold up shutdown. */
static int run_pass(struct ctx *c, struct us_rollup *r)
{
	bool more = true;

	c->err[0] = '\0';
	while (more) {
		uint64_t t0 = us_mono_ns(), took;

		if (stopping(r))
			return 0;
		if (run_chunk(c, &more) < 0)
			return -1;
		took = us_mono_ns() - t0;
		if (more && r && wait_or_stop(r, took > PAUSE_MIN_NS ? took : PAUSE_MIN_NS))
			return 0;
	}
	return apply_retention(c);
}

int us_rollup_run_once(const char *db_path, const struct us_rollup_config *cfg,
		       struct us_rollup_stats *stats, char *err, size_t errlen)
{
	struct ctx *c = ctx_open(db_path, cfg, err, errlen);
	int rc = -1;

	if (!c)
		return -1;
	if (run_pass(c, NULL) < 0) {
		snprintf(err, errlen, "rollup: %s", c->err);
		goto cleanup;
	}
	rc = 0;
cleanup:
	if (stats)
		*stats = c->stats;
	ctx_close(c);
	return rc;
}

static bool wait_or_stop(struct us_rollup *r, uint64_t ns)
{
	struct timespec until;
	bool stop;

	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += (time_t)(ns / US_NS_PER_SEC);
	until.tv_nsec += (long)(ns % US_NS_PER_SEC);
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&r->lock);
	if (!r->stop)
		pthread_cond_timedwait(&r->wake, &r->lock, &until);
	stop = r->stop;
	pthread_mutex_unlock(&r->lock);
	return stop;
}

static void *worker(void *arg)
{
	struct us_rollup *r = arg;
	struct us_ratelimit rl = { 0 };
	uint64_t suppressed;

	do {
		if (run_pass(r->ctx, r) < 0 &&
		    us_ratelimit_allow(&rl, 60 * US_NS_PER_SEC, &suppressed))
			us_warn("rollup: %s (retrying; %llu similar suppressed)", r->ctx->err,
				(unsigned long long)suppressed);
	} while (!wait_or_stop(r, r->ctx->cfg.poll_ns));
	return NULL;
}

struct us_rollup *us_rollup_start(const char *db_path, const struct us_rollup_config *cfg,
				  char *err, size_t errlen)
{
	struct us_rollup *r = calloc(1, sizeof(*r));
	pthread_condattr_t ca;

	if (!r) {
		snprintf(err, errlen, "rollup: out of memory");
		return NULL;
	}
	r->ctx = ctx_open(db_path, cfg, err, errlen);
	if (!r->ctx)
		goto fail;
	pthread_mutex_init(&r->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&r->wake, &ca);
	pthread_condattr_destroy(&ca);
	if (pthread_create(&r->thread, NULL, worker, r) != 0) {
		snprintf(err, errlen, "rollup: cannot start its thread");
		pthread_cond_destroy(&r->wake);
		pthread_mutex_destroy(&r->lock);
		goto fail;
	}
	return r;
fail:
	ctx_close(r->ctx);
	free(r);
	return NULL;
}

void us_rollup_stop(struct us_rollup *r)
{
	if (!r)
		return;
	pthread_mutex_lock(&r->lock);
	r->stop = true;
	pthread_cond_signal(&r->wake);
	pthread_mutex_unlock(&r->lock);
	pthread_join(r->thread, NULL);
	pthread_cond_destroy(&r->wake);
	pthread_mutex_destroy(&r->lock);
	ctx_close(r->ctx);
	free(r);
}
