/* Ingest: the coordinator's ROUTER socket. Receives envelope frames from
 * authenticated agents, refuses and counts what is malformed, writes the rest
 * to the store in batched transactions and acks each envelope only after the
 * transaction that holds it has committed. Tracks agent liveness (stale after
 * heartbeat_timeout without a message) and the coordinator's self-metrics,
 * and sends agents the commands queued for them in the store. */
#ifndef US_INGEST_H
#define US_INGEST_H

#include <stdint.h>

#include "auth.h"
#include "frame.h"
#include "hist.h"
#include "keys.h"
#include "store.h"

struct us_ingest_config {
	const char *listen;                 /* tcp://0.0.0.0:7461 */
	struct us_keypair keys;
	uint64_t heartbeat_timeout_ns;      /* stale after this silence */
	uint32_t batch_max;                 /* envelopes per transaction */
	uint64_t future_slack_ns;           /* how far a seq may run ahead of the clock */
	uint64_t command_retry_ns;          /* resend an unanswered command after this */
};

struct us_ingest_stats {
	uint64_t received;
	uint64_t stored;
	uint64_t duplicates;
	uint64_t refused[US_FRAME_ERR_COUNT];
	uint64_t refused_future_seq;
	uint64_t refused_identity;
	uint64_t store_errors;
	uint64_t acks_sent;
	uint64_t commits;
	uint64_t agents_stale;
	uint64_t commands_sent;
	struct us_hist ack_latency_ns;
};

struct us_ingest;

struct us_ingest *us_ingest_open(void *zmq_ctx, const struct us_ingest_config *cfg,
				 struct us_store *store, struct us_auth *auth,
				 char *err, size_t errlen);
void us_ingest_close(struct us_ingest *in);
/* One turn: wait up to timeout_ms, take what arrived, commit, ack. */
int us_ingest_run(struct us_ingest *in, int timeout_ms);
/* Commits and acks whatever is pending (used at shutdown). */
void us_ingest_flush(struct us_ingest *in);
const struct us_ingest_stats *us_ingest_get_stats(const struct us_ingest *in);

#endif
