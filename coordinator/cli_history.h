/* A workload's stored demand history, fetched through Series/Query, as the
 * regular series the forecasting verbs (forecast, plan) fit: so that
 * `understudy plan WORKLOAD` runs exactly the offline pipeline on the
 * coordinator's data. */
#ifndef US_CLI_HISTORY_H
#define US_CLI_HISTORY_H

#include "cli.h"
#include "forecast_csv.h"

struct us_history_query {
	const char *workload;
	const char *metric;     /* default "requests" */
	const char *since;      /* default "14d" */
	const char *step;       /* default "5m" */
};

/* Per step: a counter's increase per second, or a histogram's sample count
 * per second (request_latency counts requests). Returns a CLI exit code. */
int us_cli_fetch_history(const struct us_cli_opts *o, const char *verb,
			 const struct us_history_query *q, struct us_fc_series *s);

#endif
