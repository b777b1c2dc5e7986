/* SQLite-backed envelope spool. */
#include "spool.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"

enum stmt_id {
	ST_INSERT, ST_DELETE, ST_SCAN, ST_OLDEST, ST_META_SET, ST_BEGIN, ST_COMMIT,
	ST_ROLLBACK, ST_COUNT
};

static const char *const stmt_sql[ST_COUNT] = {
	[ST_INSERT] = "INSERT OR REPLACE INTO spool(seq, frame) VALUES (?, ?)",
	[ST_DELETE] = "DELETE FROM spool WHERE seq BETWEEN ? AND ? RETURNING length(frame)",
	[ST_SCAN] = "SELECT seq, frame FROM spool WHERE seq > ? ORDER BY seq LIMIT ?",
	[ST_OLDEST] = "SELECT seq, length(frame) FROM spool ORDER BY seq LIMIT 1",
	[ST_META_SET] = "INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)",
	[ST_BEGIN] = "BEGIN",
	[ST_COMMIT] = "COMMIT",
	[ST_ROLLBACK] = "ROLLBACK",
};

struct us_spool {
	int lock_fd;
	sqlite3 *db;
	sqlite3_stmt *st[ST_COUNT];
	uint64_t max_bytes;
	uint64_t last_seq;
	struct us_spool_stats stats;
	uint64_t committed_dropped;   /* dropped_total as of the last commit */
	int in_txn;
	uint64_t txn_appends;         /* lost if the commit fails */
	uint64_t txn_bytes_added;
	char last_error[256];
	struct us_ratelimit full_log;
};

static const char *const schema_sql =
	"PRAGMA journal_mode=WAL;"
	"PRAGMA synchronous=NORMAL;"
	"CREATE TABLE IF NOT EXISTS spool(seq INTEGER PRIMARY KEY, frame BLOB NOT NULL);"
	"CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL);";

/* Steps a statement to completion; on failure keeps SQLite's message, which
 * the reset would otherwise clear. */
static int exec_step(struct us_spool *sp, enum stmt_id id)
{
	int rc = sqlite3_step(sp->st[id]);

	while (rc == SQLITE_ROW)
		rc = sqlite3_step(sp->st[id]);
	if (rc != SQLITE_DONE)
		snprintf(sp->last_error, sizeof(sp->last_error), "%s (%s)",
			 sqlite3_errmsg(sp->db), sqlite3_errstr(rc));
	sqlite3_reset(sp->st[id]);
	return rc == SQLITE_DONE ? 0 : rc;
}

static uint64_t meta_get(sqlite3 *db, const char *key)
{
	sqlite3_stmt *st = NULL;
	uint64_t v = 0;

	if (sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key = ?", -1, &st, NULL) != SQLITE_OK)
		return 0;
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW)
		v = (uint64_t)sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

static int meta_set(struct us_spool *sp, const char *key, uint64_t value)
{
	sqlite3_stmt *st = sp->st[ST_META_SET];

	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)value);
	return exec_step(sp, ST_META_SET);
}

static int load_totals(struct us_spool *sp)
{
	sqlite3_stmt *st = NULL;
	uint64_t max_seq = 0;
	int rc = -1;

	if (sqlite3_prepare_v2(sp->db, "SELECT count(*), coalesce(sum(length(frame)),0), "
			       "coalesce(max(seq),0) FROM spool", -1, &st, NULL) != SQLITE_OK)
		goto cleanup;
	if (sqlite3_step(st) != SQLITE_ROW)
		goto cleanup;
	sp->stats.envelopes = (uint64_t)sqlite3_column_int64(st, 0);
	sp->stats.bytes = (uint64_t)sqlite3_column_int64(st, 1);
	max_seq = (uint64_t)sqlite3_column_int64(st, 2);
	sp->stats.dropped_total = meta_get(sp->db, "dropped_total");
	sp->committed_dropped = sp->stats.dropped_total;
	sp->last_seq = meta_get(sp->db, "last_seq");
	if (sp->last_seq < max_seq)
		sp->last_seq = max_seq;
	if (sp->last_seq == 0)
		sp->last_seq = us_now_ns() / 1000;
	rc = 0;
cleanup:
	sqlite3_finalize(st);
	return rc;
}

/* Two agents sharing a spool would resend and delete each other's
 * envelopes: the first one holds an exclusive lock for its lifetime. */
static int lock_dir(struct us_spool *sp, const char *dir, char *err, size_t errlen)
{
	char path[4096];

	snprintf(path, sizeof(path), "%s/lock", dir);
	sp->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (sp->lock_fd < 0) {
		snprintf(err, errlen, "spool lock %s: %s", path, strerror(errno));
		return -1;
	}
	if (flock(sp->lock_fd, LOCK_EX | LOCK_NB) < 0) {
		snprintf(err, errlen, "spool %s is in use by another process (%s)", dir,
			 errno == EWOULDBLOCK ? "another agent with the same spool dir?" : strerror(errno));
		return -1;
	}
	return 0;
}

struct us_spool *us_spool_open(const char *dir, uint64_t max_bytes, char *err, size_t errlen)
{
	struct us_spool *sp = calloc(1, sizeof(*sp));
	char path[4096];
	char *msg = NULL;

	if (!sp) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	sp->max_bytes = max_bytes;
	sp->lock_fd = -1;
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		snprintf(err, errlen, "spool directory %s: %s", dir, strerror(errno));
		goto fail;
	}
	if (lock_dir(sp, dir, err, errlen) < 0)
		goto fail;
	snprintf(path, sizeof(path), "%s/spool.db", dir);
	if (sqlite3_open_v2(path, &sp->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "spool %s: %s", path, sqlite3_errmsg(sp->db));
		goto fail;
	}
	sqlite3_busy_timeout(sp->db, 5000);
	if (sqlite3_exec(sp->db, schema_sql, NULL, NULL, &msg) != SQLITE_OK) {
		snprintf(err, errlen, "spool %s: %s", path, msg ? msg : sqlite3_errmsg(sp->db));
		sqlite3_free(msg);
		goto fail;
	}
	for (int i = 0; i < ST_COUNT; i++) {
		if (sqlite3_prepare_v3(sp->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
				       &sp->st[i], NULL) != SQLITE_OK) {
			snprintf(err, errlen, "spool %s: %s", path, sqlite3_errmsg(sp->db));
			goto fail;
		}
	}
	if (load_totals(sp) < 0) {
		snprintf(err, errlen, "spool %s: %s", path, sqlite3_errmsg(sp->db));
		goto fail;
	}
	return sp;
fail:
	us_spool_close(sp);
	return NULL;
}

void us_spool_close(struct us_spool *sp)
{
	char err[256];

	if (!sp)
		return;
	if (sp->in_txn && us_spool_commit(sp, err, sizeof(err)) < 0)
		us_error("spool close: %s", err);
	for (int i = 0; i < ST_COUNT; i++)
		sqlite3_finalize(sp->st[i]);
	sqlite3_close(sp->db);
	if (sp->lock_fd >= 0)
		close(sp->lock_fd);
	free(sp);
}

uint64_t us_spool_next_seq(struct us_spool *sp)
{
	return ++sp->last_seq;
}

static int begin_if_needed(struct us_spool *sp)
{
	if (sp->in_txn)
		return 0;
	if (exec_step(sp, ST_BEGIN) != 0)
		return -1;
	sp->in_txn = 1;
	sp->txn_appends = 0;
	sp->txn_bytes_added = 0;
	return 0;
}

/* Deletes the oldest envelope to make room; returns its size or -1. */
static int64_t drop_oldest(struct us_spool *sp)
{
	sqlite3_stmt *st = sp->st[ST_OLDEST];
	uint64_t seq;
	int64_t len;

	if (sqlite3_step(st) != SQLITE_ROW) {
		sqlite3_reset(st);
		return -1;
	}
	seq = (uint64_t)sqlite3_column_int64(st, 0);
	len = sqlite3_column_int64(st, 1);
	sqlite3_reset(st);
	if (us_spool_ack_range(sp, seq, seq) < 0)
		return -1;
	sp->stats.dropped_total++;
	return len;
}

int us_spool_append(struct us_spool *sp, uint64_t seq, const uint8_t *frame, size_t len,
		    char *err, size_t errlen)
{
	sqlite3_stmt *st = sp->st[ST_INSERT];
	uint64_t dropped_before = sp->stats.dropped_total, suppressed;

	if (len > sp->max_bytes) {
		/* the open transaction carries the new drop count to disk */
		begin_if_needed(sp);
		sp->stats.dropped_total++;
		snprintf(err, errlen, "envelope seq %llu (%zu bytes) is larger than the whole spool",
			 (unsigned long long)seq, len);
		return -1;
	}
	if (begin_if_needed(sp) < 0)
		goto sql_error;
	while (sp->stats.bytes + len > sp->max_bytes)
		if (drop_oldest(sp) < 0)
			goto sql_error;
	if (sp->stats.dropped_total != dropped_before &&
	    us_ratelimit_allow(&sp->full_log, 60 * US_NS_PER_SEC, &suppressed))
		us_warn("spool full (%llu bytes): dropping the oldest envelopes; %llu dropped in all",
			(unsigned long long)sp->max_bytes,
			(unsigned long long)sp->stats.dropped_total);
	sqlite3_bind_int64(st, 1, (sqlite3_int64)seq);
	sqlite3_bind_blob(st, 2, frame, (int)len, SQLITE_STATIC);
	if (exec_step(sp, ST_INSERT) != 0)
		goto sql_error;
	sqlite3_clear_bindings(st);
	sp->stats.envelopes++;
	sp->stats.bytes += len;
	sp->txn_appends++;
	sp->txn_bytes_added += len;
	return 0;
sql_error:
	sqlite3_clear_bindings(st);
	sp->stats.dropped_total++;
	snprintf(err, errlen, "spool append seq %llu: %s", (unsigned long long)seq,
		 sp->last_error);
	return -1;
}

int us_spool_ack_range(struct us_spool *sp, uint64_t first, uint64_t last)
{
	sqlite3_stmt *st = sp->st[ST_DELETE];
	int rc, removed = 0;

	if (begin_if_needed(sp) < 0)
		return -1;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)first);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)last);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		sp->stats.envelopes--;
		sp->stats.bytes -= (uint64_t)sqlite3_column_int64(st, 0);
		removed++;
	}
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? removed : -1;
}

int us_spool_ack(struct us_spool *sp, uint64_t seq)
{
	return us_spool_ack_range(sp, seq, seq) < 0 ? -1 : 0;
}

int us_spool_commit(struct us_spool *sp, char *err, size_t errlen)
{
	uint64_t lost, keep_seq;

	if (!sp->in_txn)
		return 0;
	if (meta_set(sp, "last_seq", sp->last_seq) != 0 ||
	    meta_set(sp, "dropped_total", sp->stats.dropped_total) != 0 ||
	    exec_step(sp, ST_COMMIT) != 0)
		goto fail;
	sp->in_txn = 0;
	sp->committed_dropped = sp->stats.dropped_total;
	return 0;
fail:
	/* A failed commit (disk full, I/O error) loses this transaction's
	 * appends: count them so the loss is reported, then start afresh from
	 * what is on disk. Drops made inside the transaction were undone too. */
	snprintf(err, errlen, "spool commit: %s; %llu envelopes lost",
		 sp->last_error, (unsigned long long)sp->txn_appends);
	lost = sp->txn_appends;
	keep_seq = sp->last_seq;
	exec_step(sp, ST_ROLLBACK);
	sp->in_txn = 0;
	load_totals(sp);
	if (sp->last_seq < keep_seq)
		sp->last_seq = keep_seq;
	sp->stats.dropped_total = sp->committed_dropped + lost;
	sp->committed_dropped = sp->stats.dropped_total;
	return -1;
}

int us_spool_scan(struct us_spool *sp, uint64_t after, size_t max,
		  us_spool_visit_fn fn, void *ctx)
{
	sqlite3_stmt *st = sp->st[ST_SCAN];
	int n = 0, rc;

	sqlite3_bind_int64(st, 1, (sqlite3_int64)after);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)max);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		uint64_t seq = (uint64_t)sqlite3_column_int64(st, 0);
		const uint8_t *frame = sqlite3_column_blob(st, 1);
		size_t len = (size_t)sqlite3_column_bytes(st, 1);

		n++;
		if (fn(ctx, seq, frame, len))
			break;
	}
	sqlite3_reset(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? n : -1;
}

uint64_t us_spool_oldest(struct us_spool *sp)
{
	sqlite3_stmt *st = sp->st[ST_OLDEST];
	uint64_t seq = 0;

	if (sqlite3_step(st) == SQLITE_ROW)
		seq = (uint64_t)sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	return seq;
}

void us_spool_get_stats(const struct us_spool *sp, struct us_spool_stats *out)
{
	*out = sp->stats;
}
