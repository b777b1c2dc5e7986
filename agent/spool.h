/* The agent's spool: every envelope is written here before it is sent, and
 * removed only when the coordinator acks it, so a crash or an unreachable
 * coordinator loses nothing. Bounded by payload bytes; when full, the oldest
 * envelopes are dropped and counted (the count rides in each Heartbeat).
 * Backed by SQLite in WAL mode: crash-safe, and one file to inspect. */
#ifndef US_SPOOL_H
#define US_SPOOL_H

#include <stddef.h>
#include <stdint.h>

struct us_spool;

struct us_spool_stats {
	uint64_t envelopes;      /* held, unacked */
	uint64_t bytes;          /* payload bytes held */
	uint64_t dropped_total;  /* ever dropped: full spool, oversize, failed writes */
};

struct us_spool *us_spool_open(const char *dir, uint64_t max_bytes, char *err, size_t errlen);
void us_spool_close(struct us_spool *sp);

/* Sequence numbers are strictly increasing for the life of the spool. A new
 * spool starts at the wall clock in microseconds, so an agent whose spool was
 * wiped still never reuses a seq the coordinator has stored. */
uint64_t us_spool_next_seq(struct us_spool *sp);

/* Adds an envelope; durable and visible to us_spool_scan after commit. */
int us_spool_append(struct us_spool *sp, uint64_t seq, const uint8_t *frame, size_t len,
		    char *err, size_t errlen);
/* Removes acked envelopes (takes effect at the next commit). The range form
 * returns how many it removed: acks of what is already gone remove none. */
int us_spool_ack(struct us_spool *sp, uint64_t seq);
int us_spool_ack_range(struct us_spool *sp, uint64_t first, uint64_t last);
int us_spool_commit(struct us_spool *sp, char *err, size_t errlen);

typedef int (*us_spool_visit_fn)(void *ctx, uint64_t seq, const uint8_t *frame, size_t len);
/* Calls fn for up to max envelopes with seq > after, in seq order; stops
 * early when fn returns non-zero. Returns the number visited or -1. */
int us_spool_scan(struct us_spool *sp, uint64_t after, size_t max,
		  us_spool_visit_fn fn, void *ctx);
/* Lowest seq held (0 when empty). */
uint64_t us_spool_oldest(struct us_spool *sp);
void us_spool_get_stats(const struct us_spool *sp, struct us_spool_stats *out);

#endif
