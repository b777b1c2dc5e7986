/* Demand history from the coordinator for forecast and plan; see
 * cli_history.h. The points become `timestamp,value` text parsed by the same
 * code as an offline CSV, so gaps and steps are handled one way. */
#include "cli_history.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.pb-c.h"
#include "cli_output.h"

static int to_csv(const Understudy__Api__SeriesQueryResponse *r, const struct us_history_query *q,
		  char **buf, size_t *len)
{
	FILE *f = open_memstream(buf, len);
	double scale = q->scale > 0 ? q->scale : 1;

	if (!f)
		return -1;
	fputs("timestamp,value\n", f);
	for (size_t i = 0; i < r->n_points; i++) {
		const Understudy__Api__Point *p = r->points[i];
		double secs = (double)(p->end_ns - p->start_ns) / 1e9;
		double v = p->count ? (double)p->count : (double)p->sum;

		if (q->gauge)
			fprintf(f, "%llu,%.9g\n", (unsigned long long)(p->start_ns / 1000000000u),
				p->mean * scale);
		else if (secs > 0)
			fprintf(f, "%llu,%.9g\n", (unsigned long long)(p->start_ns / 1000000000u),
				v / secs * scale);
	}
	return fclose(f) ? -1 : 0;
}

int us_cli_series_points(const struct us_cli_opts *o, const char *verb, const char *workload,
			 const char *metric, const char *since, const char *step,
			 Understudy__Api__SeriesQueryResponse **out)
{
	Understudy__Api__SeriesQueryRequest req = UNDERSTUDY__API__SERIES_QUERY_REQUEST__INIT;

	req.workload = (char *)workload;
	req.metric = (char *)metric;
	req.from = (char *)since;
	req.step = (char *)step;
	return us_cli_rpc(o, verb, "/understudy.api.Series/Query", &req.base,
			  &understudy__api__series_query_response__descriptor,
			  (ProtobufCMessage **)out);
}

int us_cli_fetch_history(const struct us_cli_opts *o, const char *verb,
			 const struct us_history_query *q, struct us_fc_series *s)
{
	Understudy__Api__SeriesQueryResponse *resp = NULL;
	const char *metric = q->metric ? q->metric : "requests";
	const char *since = q->since ? q->since : "14d";
	char *buf = NULL, err[512];
	size_t len = 0, line = 0;
	int rc;

	rc = us_cli_series_points(o, verb, q->workload, metric, since, q->step ? q->step : "5m",
				  &resp);
	if (rc != US_EXIT_OK)
		return rc;
	rc = US_EXIT_FAIL;
	if (to_csv(resp, q, &buf, &len) < 0) {
		fprintf(stderr, "understudy %s: out of memory\n", verb);
		goto cleanup;
	}
	rc = US_EXIT_USAGE;
	if (resp->n_points < 2) {
		if (!q->optional)
			fprintf(stderr, "understudy %s: %s of %s: not enough history in the last %s\n",
				verb, metric, q->workload, since);
		goto cleanup;
	}
	if (us_fc_csv_parse(buf, len, US_FCCSV_DUP_OK, 0, s, &line, err, sizeof(err)) < 0) {
		fprintf(stderr, "understudy %s: %s of %s: %s\n", verb, metric, q->workload, err);
		goto cleanup;
	}
	rc = US_EXIT_OK;
cleanup:
	free(buf);
	protobuf_c_message_free_unpacked((ProtobufCMessage *)resp, NULL);
	return rc;
}
