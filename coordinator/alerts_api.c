/* Anomalies/Run: the request's window and step, the alerts of
 * coordinator/alerts.c, as a response. */
#include "alerts_api.h"

#include <grpc/status.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alerts.h"
#include "api.pb-c.h"
#include "clock.h"

/* "24h", "90m", "30s", "7d" -> ns; 0 when malformed. */
static uint64_t duration_ns(const char *s, uint64_t dflt)
{
	char *end;
	double v;

	if (!s || !s[0])
		return dflt;
	v = strtod(s, &end);
	if (!(v > 0))
		return 0;
	switch (*end) {
	case 's': v *= 1e9; break;
	case 'm': v *= 60e9; break;
	case 'h': v *= 3600e9; break;
	case 'd': v *= 86400e9; break;
	default: return 0;
	}
	return end[1] || v >= 1e19 ? 0 : (uint64_t)v;
}

static int fill(const struct us_alerts_result *res, Understudy__Api__AnomaliesResponse *r)
{
	r->alerts = calloc(res->nalerts ? res->nalerts : 1, sizeof(*r->alerts));
	if (!r->alerts)
		return -1;
	for (size_t i = 0; i < res->nalerts; i++) {
		Understudy__Api__Alert *a = calloc(1, sizeof(*a));

		if (!a)
			return -1;
		understudy__api__alert__init(a);
		r->alerts[r->n_alerts++] = a;
		a->time_ns = res->alerts[i].t_ns;
		a->value = res->alerts[i].value;
		a->score = res->alerts[i].score;
		a->series = strdup(us_alert_series_name(res->alerts[i].series));
		a->reason = strdup(res->alerts[i].reason);
		if (!a->series || !a->reason)
			return -1;
	}
	r->points_production = res->points[US_ALERT_PRODUCTION];
	r->points_shadow = res->points[US_ALERT_SHADOW];
	r->points_ratio = res->points[US_ALERT_RATIO];
	r->points_learned = res->learned[US_ALERT_PRODUCTION];
	return 0;
}

int us_api_anomalies(struct us_api_ctx *ctx, const ProtobufCMessage *req,
		     ProtobufCMessage **resp, char *msg, size_t msglen)
{
	const Understudy__Api__AnomaliesRequest *in = (const void *)req;
	Understudy__Api__AnomaliesResponse *r = NULL;
	struct us_alerts_query q = { .workload = in->workload, .metric = in->metric,
				     .field = in->field && in->field[0] ? in->field : "p99" };
	struct us_alerts_result res = { 0 };
	uint64_t since = duration_ns(in->since, 86400ull * US_NS_PER_SEC);
	int rc = GRPC_STATUS_INVALID_ARGUMENT;
	int no_history = in->history && !strcmp(in->history, "0");

	q.step_ns = duration_ns(in->step, 60ull * US_NS_PER_SEC);
	if (!in->workload || !in->workload[0] || !in->metric || !in->metric[0]) {
		snprintf(msg, msglen, "workload and metric: required");
		goto cleanup;
	}
	q.learn_ns = no_history ? 0 : duration_ns(in->history, 7 * 86400ull * US_NS_PER_SEC);
	if (!since || !q.step_ns || (!no_history && !q.learn_ns)) {
		snprintf(msg, msglen, "%s: expected a duration like 24h, 30m, 10s%s",
			 !since ? "since" : !q.step_ns ? "step" : "history",
			 !since || !q.step_ns ? "" : ", or 0 for none");
		goto cleanup;
	}
	q.to_ns = us_now_ns();
	q.from_ns = q.to_ns > since ? q.to_ns - since : 0;
	if (us_alerts_run(ctx->db, &q, &res, msg, msglen) < 0) {
		rc = strstr(msg, "no points") ? GRPC_STATUS_NOT_FOUND : GRPC_STATUS_INVALID_ARGUMENT;
		goto cleanup;
	}
	rc = GRPC_STATUS_RESOURCE_EXHAUSTED;
	r = calloc(1, sizeof(*r));
	if (!r)
		goto cleanup;
	understudy__api__anomalies_response__init(r);
	if (fill(&res, r) < 0) {
		protobuf_c_message_free_unpacked(&r->base, NULL);
		r = NULL;
		snprintf(msg, msglen, "out of memory");
		goto cleanup;
	}
	*resp = &r->base;
	rc = GRPC_STATUS_OK;
cleanup:
	free(res.alerts);
	return rc;
}
