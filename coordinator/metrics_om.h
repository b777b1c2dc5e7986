/* The coordinator's metrics as OpenMetrics text (what /metrics serves):
 * its own counters from the store's self_metrics table, the store's size,
 * agents by state and their spool drops, and per workload and role the
 * figures of the latest interval (histogram quantiles, counters, gauges)
 * decoded from the stored envelope. Reads only: the caller passes its own
 * read-only SQLite connection, so rendering never contends with ingest for
 * a connection (WAL lets it read while ingest writes). */
#ifndef US_METRICS_OM_H
#define US_METRICS_OM_H

#include <sqlite3.h>
#include <stddef.h>

#include "buf.h"
#include "frame.h"

#define US_METRICS_OM_CONTENT_TYPE \
	"application/openmetrics-text; version=1.0.0; charset=utf-8"

/* Appends the whole exposition, ending with "# EOF\n", to out (cleared
 * first), from one consistent snapshot of the store at db_path (its file
 * sizes are read from disk). Returns 0, or -1 with the reason in err. */
int us_metrics_om_render(sqlite3 *db, const char *db_path, struct us_codec *codec,
			 struct us_buf *out, char *err, size_t errlen);

#endif
