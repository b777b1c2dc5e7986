/* The sender: moves envelopes from the spool to the coordinator over a CURVE
 * DEALER socket and deletes them from the spool as acks come back. At most
 * `window` envelopes (and `window_bytes`) are unacked on the wire at once, so
 * a slow coordinator holds the agent's memory flat and the backlog on disk.
 * Unacked envelopes are resent after a reconnect or an ack timeout; the
 * coordinator de-duplicates by (agent id, seq). Also emits Heartbeats. */
#ifndef US_SENDER_H
#define US_SENDER_H

#include <stdbool.h>
#include <stdint.h>

#include "hist.h"
#include "keys.h"
#include "spool.h"
#include "understudy.pb-c.h"

struct us_sender_config {
	const char *agent_id;
	const char *endpoint;              /* tcp://host:port */
	char server_public_key[US_Z85_KEY_LEN + 1];
	struct us_keypair keys;
	uint32_t window;                   /* envelopes in flight */
	uint64_t window_bytes;
	uint64_t ack_timeout_ns;           /* resend what is unacked after this */
	uint64_t heartbeat_interval_ns;
};

struct us_sender_stats {
	uint64_t submitted;
	uint64_t sent;
	uint64_t resent;
	uint64_t acked;            /* envelopes removed from the spool by acks */
	uint64_t in_flight;
	uint64_t rewinds;
	uint64_t auth_failures;
	uint64_t commands;
	uint64_t bytes_plain;      /* serialized envelopes, before compression */
	uint64_t bytes_framed;     /* what goes on the wire (before CURVE) */
	bool connected;
	struct us_hist ack_latency_ns;  /* send -> ack, first sends only */
};

struct us_sender;

struct us_sender *us_sender_open(void *zmq_ctx, const struct us_sender_config *cfg,
				 struct us_spool *spool, char *err, size_t errlen);
void us_sender_close(struct us_sender *s);

/* Commands from the coordinator are handed to fn (during us_sender_run);
 * fn answers with us_sender_submit_result. Without a handler, commands are
 * answered "not supported by this agent". */
typedef void (*us_sender_command_fn)(void *ctx, const Understudy__Command *cmd);
void us_sender_on_command(struct us_sender *s, us_sender_command_fn fn, void *ctx);
/* Sends a command's outcome through the spool, like any envelope. */
int us_sender_submit_result(struct us_sender *s, uint64_t command_id, bool ok,
			    const char *message, char *err, size_t errlen);

/* Stamps agent id, seq, time and schema version on env, encodes it and puts
 * it in the spool. env's body must be set; the caller keeps ownership. */
int us_sender_submit(struct us_sender *s, Understudy__Envelope *env, char *err, size_t errlen);

/* One turn of the loop: commit the spool, send within the window, take acks,
 * resend on timeout, heartbeat. Waits at most timeout_ms for the socket. */
int us_sender_run(struct us_sender *s, int timeout_ms);

/* Runs until everything submitted is acked or timeout_ms passes; 0 when
 * drained. */
int us_sender_drain(struct us_sender *s, int timeout_ms);

/* The stats live as long as the sender. */
const struct us_sender_stats *us_sender_get_stats(const struct us_sender *s);

#endif
