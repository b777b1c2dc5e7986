/* The rollup worker: turns stored MetricBatch envelopes into time series.
 * A background thread with its own SQLite connection to the store reads the
 * envelopes past a watermark (envelopes rowid) in order, writes one raw point
 * per series and interval, merges each into its 1-minute and 1-hour rollup
 * bucket (the bucket holding the interval's start), and moves the watermark
 * in the same transaction, so every envelope is rolled up exactly once even
 * across a crash. It also applies retention, to those tables, to the
 * envelopes and to request_samples. Tables: see migrations 2 and 5 in
 * coordinator/store.c. */
#ifndef US_ROLLUP_H
#define US_ROLLUP_H

#include <stddef.h>
#include <stdint.h>

#include "hist.h"

#define US_ROLLUP_MINUTE_NS (60ull * 1000000000ull)
#define US_ROLLUP_HOUR_NS (3600ull * 1000000000ull)

struct us_rollup_config {
	/* Rows whose (bucket) start is older than the newest interval start
	 * rolled up (capped at the wall clock) minus these are deleted. */
	uint64_t raw_retention_ns;      /* default 48 h */
	uint64_t minute_retention_ns;   /* default 35 d */
	uint64_t hour_retention_ns;     /* default 400 d */
	/* request_samples whose start_ns is older than the newest sample's
	 * start (capped at the wall clock) minus this are deleted */
	uint64_t requests_retention_ns; /* default 7 d */
	uint32_t batch_envelopes;       /* per transaction; default 500 */
	uint64_t poll_ns;               /* idle wait between passes; default 1 s */
};

struct us_rollup_stats {
	uint64_t envelopes;     /* metric batches rolled up */
	uint64_t skipped;       /* undecodable batches, or metrics whose kind changed */
	uint64_t points;        /* raw points written */
	uint64_t deleted;       /* rows removed by retention */
	uint64_t samples_deleted;  /* of which request_samples */
	uint64_t transactions;
};

struct us_rollup;

void us_rollup_config_defaults(struct us_rollup_config *c);

/* Opens a connection to the store at db_path (which the store has already
 * created and migrated) and starts the worker. NULL with a reason in err. */
struct us_rollup *us_rollup_start(const char *db_path, const struct us_rollup_config *cfg,
				  char *err, size_t errlen);
/* Stops the worker (waits for its current transaction) and frees it. */
void us_rollup_stop(struct us_rollup *r);

/* Synchronously rolls up everything past the watermark, then applies
 * retention; stats (optional) receives what was done. For tests and tools. */
int us_rollup_run_once(const char *db_path, const struct us_rollup_config *cfg,
		       struct us_rollup_stats *stats, char *err, size_t errlen);

/* Adds a stored histogram blob (a packed understudy.Histogram) into *into.
 * Shared with the series query so both read blobs one way. */
int us_rollup_blob_add(const void *blob, size_t len, struct us_hist *into,
		       char *err, size_t errlen);

#endif
