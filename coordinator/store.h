/* The coordinator's store: a SQLite database (WAL) under the data directory.
 * Owns the schema and its versioned migrations, the exactly-once insert of
 * envelopes keyed by (agent, seq), and the tables derived from them (agents,
 * workloads, metric batches, request samples) plus the coordinator's
 * self-metrics. Callers
 * group inserts in a transaction and ack only after us_store_commit. */
#ifndef US_STORE_H
#define US_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "scan.h"

#define US_STORE_SCHEMA_VERSION 7

struct us_store;
struct sqlite3_stmt;

struct us_store_options {
	int synchronous_full;   /* fsync the WAL at every commit (default) */
};

enum us_store_put {
	US_STORE_NEW,
	US_STORE_DUPLICATE,
	US_STORE_ERROR,
};

struct us_store *us_store_open(const char *path, const struct us_store_options *opt,
			       char *err, size_t errlen);
void us_store_close(struct us_store *st);

/* A copy of a result column as text ("" for NULL); NULL when out of memory. */
char *us_store_col_dup(struct sqlite3_stmt *q, int col);

int us_store_begin(struct us_store *st, char *err, size_t errlen);
int us_store_commit(struct us_store *st, char *err, size_t errlen);
void us_store_rollback(struct us_store *st);

/* Row id of the agent, created on first sight. */
int us_store_agent_id(struct us_store *st, const char *name, const char *public_key,
		      int64_t *id, char *err, size_t errlen);

/* Stores a validated envelope (as its wire frame) once; a (agent, seq)
 * already present is a duplicate and changes nothing. Derived rows are
 * written for new ones. */
enum us_store_put us_store_put_envelope(struct us_store *st, int64_t agent,
					const struct us_envelope_view *env,
					const uint8_t *frame, size_t frame_len,
					uint64_t received_ns, char *err, size_t errlen);

typedef void (*us_store_agent_fn)(void *ctx, int64_t id, const char *name, const char *state);
/* Calls fn for every agent the store knows. */
int us_store_each_agent(struct us_store *st, us_store_agent_fn fn, void *ctx);

int us_store_set_agent_state(struct us_store *st, int64_t agent, const char *state,
			     uint64_t last_seen_ns);

int us_store_put_self_metric(struct us_store *st, const char *name, uint64_t value);

/* Agent commands (table `commands`): queued by the API (or by hand with
 * SQL), sent by ingest to the agent's connection until its CommandResult is
 * stored or the command expires. */
struct us_store_command {
	int64_t id;
	const char *agent;
	const char *action;      /* report_now, reload_config, start_mirror, stop_mirror */
	const char *workload;    /* mirror actions */
	const char *endpoint;
	double sample;
	uint32_t scale;
	uint64_t expires_ns;
};

typedef void (*us_store_command_fn)(void *ctx, const struct us_store_command *cmd);

int us_store_command_add(struct us_store *st, const struct us_store_command *cmd, int64_t *id,
			 char *err, size_t errlen);
/* Pending, unexpired commands for agent not sent within retry_ns; each one
 * passed to fn is marked sent now. */
int us_store_commands_due(struct us_store *st, const char *agent, uint64_t now_ns,
			  uint64_t retry_ns, us_store_command_fn fn, void *ctx);
/* Marks pending commands past their expiry; returns how many, or -1. */
int us_store_commands_expire(struct us_store *st, uint64_t now_ns);

#endif
