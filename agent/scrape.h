/* Application metrics: each interval the agent GETs a workload's
 * OpenMetrics/Prometheus page (metrics_url), and forwards the selected
 * series in the workload's MetricBatch:
 *   counter            -> counter "app:<name>{labels}", the increase over the
 *                         interval (first scrape and a reset: baseline only)
 *   histogram/summary  -> "_count" and "_sum" as such counters; buckets and
 *                         quantiles are skipped (not log-linear histograms)
 *   gauge, untyped     -> gauge "app:<name>{labels}"
 * Scrapes of all workloads run concurrently under one deadline, so a slow or
 * dead endpoint costs at most that deadline, never the interval. */
#ifndef US_SCRAPE_H
#define US_SCRAPE_H

#include <stddef.h>
#include <stdint.h>

#include "agent_config.h"
#include "batch.h"

/* Series forwarded per workload: the MetricBatch holds 128 counters and 128
 * gauges, which the other collectors share. Series past the cap are dropped
 * and counted (gauge app_scrape:series_dropped). */
#define US_SCRAPE_MAX_SERIES 100
#define US_SCRAPE_MAX_BODY (4u << 20)
#define US_SCRAPE_TIMEOUT_NS (2ull * 1000 * 1000 * 1000)

struct us_scrape;

/* Splits "http://host[:port][/path]"; https and anything else are refused
 * with a message. host and path are NUL-terminated. */
int us_scrape_parse_url(const char *url, char *host, size_t hostlen, char *port,
			size_t portlen, char *path, size_t pathlen, char *err, size_t errlen);

/* State for one workload; NULL on allocation failure. The config must stay
 * valid until the next us_scrape_reset or free. */
struct us_scrape *us_scrape_new(const struct us_workload_config *w);
void us_scrape_free(struct us_scrape *s);
/* True if s still scrapes what w asks for (else free and make a new one). */
int us_scrape_matches(const struct us_scrape *s, const struct us_workload_config *w);

/* Scrapes every non-NULL s[i] at once; returns within timeout_ns. */
void us_scrape_run(struct us_scrape **s, size_t n, uint64_t timeout_ns);
/* Adds the last scrape's series to b; the names stay valid until the next
 * us_scrape_run. */
void us_scrape_add(struct us_scrape *s, struct us_batch *b);

/* Feeds one fetched page (tests; us_scrape_run calls it): updates the
 * series table as a successful scrape would. */
void us_scrape_take_page(struct us_scrape *s, const char *body, size_t len);

#endif
