/* A workload's stored demand history, fetched through Series/Query, as the
 * regular series the forecasting verbs (forecast, plan) fit: so that
 * `understudy plan WORKLOAD` runs exactly the offline pipeline on the
 * coordinator's data. */
#ifndef US_CLI_HISTORY_H
#define US_CLI_HISTORY_H

#include <stdbool.h>

#include "api.pb-c.h"
#include "cli.h"
#include "forecast_csv.h"

struct us_history_query {
	const char *workload;
	const char *metric;     /* default "requests" */
	const char *since;      /* default "14d" */
	const char *step;       /* default "5m" */
	bool gauge;             /* the step's mean level, not a rate */
	double scale;           /* multiplies every value (units); 0 = 1 */
	bool optional;          /* too little history: no message (still US_EXIT_USAGE) */
};

/* Per step: a counter's increase per second, or a histogram's sample count
 * per second (request_latency counts requests), or with gauge the mean
 * level. Returns a CLI exit code. */
int us_cli_fetch_history(const struct us_cli_opts *o, const char *verb,
			 const struct us_history_query *q, struct us_fc_series *s);

/* The raw points of one series (Series/Query, role production) over
 * [since ago, now) at step. Returns a CLI exit code; *out is freed with
 * protobuf_c_message_free_unpacked. */
int us_cli_series_points(const struct us_cli_opts *o, const char *verb, const char *workload,
			 const char *metric, const char *since, const char *step,
			 Understudy__Api__SeriesQueryResponse **out);

#endif
