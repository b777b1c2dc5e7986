/* Replay of captured production connections to a shadow endpoint.
 *
 * The capture (agent/capture.c) hands over, per production connection, the
 * request-direction bytes in order. Replay opens its own shadow connection
 * per mirrored production connection (scale of them when amplifying), frames
 * the bytes into requests (HTTP/1.x mode, lib/http_stream.h) or read bursts
 * (raw mode), forwards whole requests only, reads and times the shadow's
 * responses, parses their status and discards them. It never blocks and
 * never pushes back on production: when a shadow falls behind, whole
 * requests are dropped and counted.
 *
 * Single-threaded; driven by the agent's loop through us_replay_fd() (an
 * epoll fd, readable when replay has work) and us_replay_run(). */
#ifndef US_REPLAY_H
#define US_REPLAY_H

#include <stddef.h>
#include <stdint.h>

struct us_replay;

enum us_replay_mode {
	US_REPLAY_HTTP,
	US_REPLAY_RAW,
};

struct us_replay_config {
	char endpoint[256];          /* shadow "host:port" (IPv4/IPv6 literal or name) */
	enum us_replay_mode mode;
	double sample;               /* fraction of production connections, (0, 1] */
	unsigned scale;              /* copies of each mirrored connection, >= 1 */
	int allow_writes;            /* HTTP: mirror POST/PUT/PATCH/DELETE/... too */
	char host_rewrite[256];      /* HTTP: replace the Host header; "" keeps it */
	size_t conn_buffer_max;      /* bytes queued per shadow connection */
	size_t total_buffer_max;     /* bytes queued over all shadow connections */
	unsigned connect_timeout_ms;
	unsigned response_timeout_ms;
	unsigned max_conns;          /* shadow connections open at once (each mirrored
				      * production connection reserves scale of them) */
};

/* Why a request did not get a shadow response. */
enum us_replay_outcome {
	US_REPLAY_OK,                /* response complete */
	US_REPLAY_FILTERED,          /* method not mirrored (write without allow_writes) */
	US_REPLAY_DROPPED,           /* buffers full: shadow behind */
	US_REPLAY_CAPTURE_GAP,       /* capture missed bytes of it */
	US_REPLAY_ERR_CONNECT,       /* shadow refused / unreachable / connect timeout */
	US_REPLAY_ERR_RESET,         /* shadow reset or closed before the response ended */
	US_REPLAY_ERR_TIMEOUT,       /* no complete response within response_timeout_ms */
	US_REPLAY_ERR_PROTOCOL,      /* shadow's response was not HTTP */
	US_REPLAY_OUTCOME_COUNT,
};

/* One request's fate on one shadow copy, reported once. */
struct us_replay_result {
	uint64_t conn_id;            /* the production connection */
	uint64_t request_index;      /* 0-based on that connection (HTTP: request, raw: burst) */
	unsigned copy;               /* 0 .. scale-1 */
	enum us_replay_outcome outcome;
	int method;                  /* enum http_method, HTTP mode; -1 raw */
	uint64_t request_bytes;
	uint64_t response_bytes;
	unsigned status_code;        /* 0 when none or raw */
	uint64_t sent_ns;            /* CLOCK_MONOTONIC: last request byte written */
	uint64_t done_ns;            /* CLOCK_MONOTONIC: last response byte read */
};

typedef void (*us_replay_result_fn)(void *arg, const struct us_replay_result *res);

struct us_replay_stats {
	uint64_t conns_seen;         /* production connections offered */
	uint64_t conns_mirrored;     /* of which sampled in */
	uint64_t conns_raw_fallback; /* HTTP connections that turned out not to be HTTP */
	uint64_t conns_over_limit;   /* sampled in but not mirrored: max_conns reached */
	uint64_t conns_unmirrorable; /* HTTP: a capture gap lost the framing; not
				      * mirrored further until they close */
	uint64_t requests_seen;      /* complete requests (or bursts) on sampled connections */
	uint64_t requests_sent;      /* request copies fully written to a shadow */
	uint64_t responses;          /* copies with a complete response */
	uint64_t outcome[US_REPLAY_OUTCOME_COUNT]; /* per copy */
	uint64_t bytes_in;           /* request bytes received from the capture (mirrored conns) */
	uint64_t bytes_sent;         /* bytes written to shadows */
	uint64_t connects;           /* shadow connections opened (incl. reconnects) */
	uint64_t conns_active;       /* gauge: production connections tracked now */
	uint64_t shadow_conns_open;  /* gauge */
	uint64_t buffered_bytes;     /* gauge: queued, not yet written */
};

/* Fills a config with defaults: sample 1, scale 1, HTTP, 16 MiB per
 * connection, 128 MiB total, 1 s connect, 10 s response, 1024 connections. */
void us_replay_config_defaults(struct us_replay_config *cfg);

/* Resolves the endpoint once; on error returns NULL with err saying why.
 * us_replay_free closes every socket without reporting what was in flight. */
struct us_replay *us_replay_new(const struct us_replay_config *cfg, us_replay_result_fn fn,
				void *arg, char *err, size_t errlen);
void us_replay_free(struct us_replay *r);

/* The capture's view of a production connection. conn_id is unique for the
 * agent's lifetime. Data is request-direction bytes, in order; ts_ns is
 * CLOCK_MONOTONIC when the production server read them. */
void us_replay_conn_open(struct us_replay *r, uint64_t conn_id);
void us_replay_conn_data(struct us_replay *r, uint64_t conn_id, const void *data, size_t len,
			 uint64_t ts_ns);
/* n request bytes the capture could not copy (over its cap or lost). */
void us_replay_conn_gap(struct us_replay *r, uint64_t conn_id, uint64_t n);
/* Raw mode: production answered, so the current read burst is a request.
 * Call it in HTTP mode too: it is ignored there, except on connections that
 * fell back to raw. A burst's shadow response is every byte the shadow sends
 * from then until the next burst has been fully written, the shadow closes,
 * or the shadow has been silent for 100 ms after sending something (with
 * nothing at all within response_timeout_ms: ERR_TIMEOUT). */
void us_replay_conn_burst_end(struct us_replay *r, uint64_t conn_id);
void us_replay_conn_close(struct us_replay *r, uint64_t conn_id);

/* Whether conn_id is sampled in (consistent: the same id always gives the
 * same answer for the same sample fraction). */
int us_replay_sampled(const struct us_replay *r, uint64_t conn_id);

int us_replay_fd(const struct us_replay *r);
/* Does all I/O that is ready, then timers; waits at most timeout_ms (less
 * when a replay timer is due sooner). Results are reported from here and
 * from the conn_* calls; the result callback must not call back into
 * replay. */
void us_replay_run(struct us_replay *r, int timeout_ms);
void us_replay_stats(const struct us_replay *r, struct us_replay_stats *st);

#endif
