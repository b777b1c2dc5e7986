/* The coordinator's /metrics endpoint: a small HTTP/1.1 server on its own
 * thread, serving the OpenMetrics page (metrics_om.h) from its own
 * read-only store connection. Built for untrusted peers: bounded request
 * heads, a deadline to send the head and to read the answer, a bounded
 * number of connections (the oldest is dropped for a new one, so slow
 * clients cannot lock scrapers out), one request per connection. Nothing it
 * does blocks the ingest thread. */
#ifndef US_METRICS_HTTP_H
#define US_METRICS_HTTP_H

#include <stddef.h>
#include <stdint.h>

#define US_METRICS_MAX_CONNS 32

struct us_metrics_http;

struct us_metrics_http_config {
	const char *listen;          /* "host:port", "[v6addr]:port"; port 0 picks one */
	const char *db_path;         /* the store, opened read-only */
	uint64_t read_timeout_ns;    /* a request head must arrive within this */
};

/* Binds (so a busy port fails here, at start-up) and starts the thread.
 * NULL with the reason in err on failure. */
struct us_metrics_http *us_metrics_http_start(const struct us_metrics_http_config *cfg,
					      char *err, size_t errlen);
/* The bound port (useful when the config asked for port 0). */
unsigned int us_metrics_http_port(const struct us_metrics_http *m);
/* Wakes the thread, joins it (it finishes at most the page it is rendering)
 * and closes every connection. NULL is a no-op. */
void us_metrics_http_stop(struct us_metrics_http *m);

#endif
