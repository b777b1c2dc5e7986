/* Recommend/Run: reads a workload's utilization from the 1-minute rollups
 * (kept 35 days by default, so a 14-day lookback is whole, unlike the raw
 * points' 48 h), turns it into samples and hands them to the engine.
 *   cpu cores  = cpu_usage's increase in the minute (ns) / 60 s
 *   memory GiB = memory_current's mean over the minute / 2^30
 * Minutes where either is missing are skipped. The agent measures no network
 * throughput yet, so online recommendations have no network dimension. */
#include "recommend_api.h"

#include <ctype.h>
#include <grpc/status.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.pb-c.h"
#include "catalog.h"
#include "clock.h"
#include "recommend.h"
#include "recommend_pb.h"
#include "rollup.h"
#include "understudy.pb-c.h"

#define DEFAULT_LOOKBACK "14d"
#define GIB 1073741824.0

static const char util_sql[] =
	"SELECT c.bucket_start_ns, c.sum, m.gauge_sum / m.count "
	"FROM series sc JOIN rollup_1m c ON c.series_id = sc.id "
	"JOIN series sm ON sm.workload = sc.workload AND sm.role = sc.role "
	"  AND sm.metric = 'memory_current' "
	"JOIN rollup_1m m ON m.series_id = sm.id AND m.bucket_start_ns = c.bucket_start_ns "
	"WHERE sc.workload = ?1 AND sc.role = ?2 AND sc.metric = 'cpu_usage' "
	"  AND c.bucket_start_ns >= ?3 AND c.bucket_start_ns < ?4 AND m.count > 0 "
	"ORDER BY c.bucket_start_ns";

/* "14d", "36h", "90m": a positive duration in ns. */
static int parse_lookback(const char *s, uint64_t *out)
{
	static const struct { const char *unit; double ns; } units[] = {
		{ "s", 1e9 }, { "m", 60e9 }, { "h", 3600e9 }, { "d", 86400e9 }, { "w", 604800e9 },
	};
	char *end;
	double v;

	if (!isdigit((unsigned char)s[0]))
		return -1;
	v = strtod(s, &end);
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
		if (strcmp(end, units[i].unit) == 0 && v > 0 && v * units[i].ns < 1e19) {
			*out = (uint64_t)(v * units[i].ns);
			return 0;
		}
	return -1;
}

static int load_samples(struct us_api_ctx *ctx, const char *workload, uint64_t from,
			uint64_t to, struct us_util *u, char *msg, size_t msglen)
{
	sqlite3_stmt *q = NULL;
	int rc = GRPC_STATUS_OK, step;

	if (sqlite3_prepare_v2(ctx->db, util_sql, -1, &q, NULL) != SQLITE_OK) {
		snprintf(msg, msglen, "store: %s", sqlite3_errmsg(ctx->db));
		return GRPC_STATUS_INTERNAL;
	}
	sqlite3_bind_text(q, 1, workload, -1, SQLITE_STATIC);
	sqlite3_bind_int(q, 2, UNDERSTUDY__ROLE__PRODUCTION);
	sqlite3_bind_int64(q, 3, (sqlite3_int64)from);
	sqlite3_bind_int64(q, 4, (sqlite3_int64)to);
	while ((step = sqlite3_step(q)) == SQLITE_ROW) {
		struct us_util_sample s = {
			.t = (double)sqlite3_column_int64(q, 0) / 1e9,
			.cpu_cores = (double)sqlite3_column_int64(q, 1) /
				     (double)US_ROLLUP_MINUTE_NS,
			.memory_gib = sqlite3_column_double(q, 2) / GIB,
		};

		if (us_util_push(u, &s) < 0) {
			snprintf(msg, msglen, "out of memory");
			rc = GRPC_STATUS_RESOURCE_EXHAUSTED;
			goto cleanup;
		}
	}
	if (step != SQLITE_DONE) {
		snprintf(msg, msglen, "store: %s", sqlite3_errmsg(ctx->db));
		rc = GRPC_STATUS_INTERNAL;
	}
cleanup:
	sqlite3_finalize(q);
	return rc;
}

static int load_catalog(const Understudy__Api__RecommendRequest *in, struct us_catalog *c,
			char *name, size_t namelen, char *msg, size_t msglen)
{
	char err[512];

	if (in->catalog_csv[0]) {
		snprintf(name, namelen, "%s", in->catalog_name[0] ? in->catalog_name : "catalog");
		if (us_catalog_parse(in->catalog_csv, strlen(in->catalog_csv), name, c, err,
				     sizeof(err)) < 0)
			return snprintf(msg, msglen, "catalog_csv: %s", err),
			       GRPC_STATUS_INVALID_ARGUMENT;
		return GRPC_STATUS_OK;
	}
	us_catalog_default_path(name, namelen);
	if (us_catalog_load(name, c, err, sizeof(err)) < 0)
		return snprintf(msg, msglen, "catalog: the coordinator's default catalog: %s", err),
		       GRPC_STATUS_FAILED_PRECONDITION;
	return GRPC_STATUS_OK;
}

static int check_args(const Understudy__Api__RecommendRequest *in, struct us_rec_params *p,
		      uint64_t *lookback, char *msg, size_t msglen)
{
	const char *lb = in->lookback[0] ? in->lookback : DEFAULT_LOOKBACK;

	us_rec_params_default(p);
	if (!in->workload[0])
		snprintf(msg, msglen, "workload: required");
	else if (parse_lookback(lb, lookback) < 0)
		snprintf(msg, msglen, "lookback: expected a duration such as 14d or 36h, got '%.64s'",
			 in->lookback);
	else if (us_rec_parse_headroom(in->headroom, p->headroom, &p->headroom) < 0)
		snprintf(msg, msglen, "headroom: expected a share such as 20%% or 0.2, got '%.64s'",
			 in->headroom);
	else if (us_rec_parse_percentile(in->cpu_percentile, p->percentile[US_DIM_CPU],
					 &p->percentile[US_DIM_CPU]) < 0)
		snprintf(msg, msglen, "cpu_percentile: expected a number in [0, 100], got '%.64s'",
			 in->cpu_percentile);
	else
		return GRPC_STATUS_OK;
	return GRPC_STATUS_INVALID_ARGUMENT;
}

int us_api_recommend(struct us_api_ctx *ctx, const ProtobufCMessage *req,
		     ProtobufCMessage **resp, char *msg, size_t msglen)
{
	const Understudy__Api__RecommendRequest *in = (const void *)req;
	Understudy__Api__RecommendResponse *r;
	struct us_catalog cat = { 0 };
	struct us_util u = { 0 };
	struct us_rec_result res = { 0 };
	struct us_rec_params p;
	struct us_rec_need need;
	char catname[US_CATALOG_PATH_MAX], err[512];
	uint64_t lookback = 0, now = us_now_ns();
	int rc = check_args(in, &p, &lookback, msg, msglen);

	if (rc != GRPC_STATUS_OK)
		return rc;
	if ((rc = load_catalog(in, &cat, catname, sizeof(catname), msg, msglen)) != GRPC_STATUS_OK)
		goto cleanup;
	rc = load_samples(ctx, in->workload, lookback < now ? now - lookback : 0, now, &u, msg,
			  msglen);
	if (rc != GRPC_STATUS_OK)
		goto cleanup;
	if (u.n == 0) {
		snprintf(msg, msglen, "workload: no cpu_usage and memory_current data for '%.128s' "
			 "(production) in the last %s", in->workload,
			 in->lookback[0] ? in->lookback : DEFAULT_LOOKBACK);
		rc = GRPC_STATUS_NOT_FOUND;
		goto cleanup;
	}
	if (us_rec_need(&u, &p, &need, err, sizeof(err)) < 0) {
		snprintf(msg, msglen, "lookback: workload '%.128s' (production): %s", in->workload, err);
		rc = GRPC_STATUS_OUT_OF_RANGE;
		goto cleanup;
	}
	if (us_recommend(&cat, &need, in->current_type, &res, err, sizeof(err)) < 0) {
		snprintf(msg, msglen, "current_type: %s (%s)", err, catname);
		rc = GRPC_STATUS_INVALID_ARGUMENT;
		goto cleanup;
	}
	r = us_rec_to_pb(&res, &p, in->workload, catname, in->top);
	if (!r) {
		snprintf(msg, msglen, "out of memory");
		rc = GRPC_STATUS_RESOURCE_EXHAUSTED;
		goto cleanup;
	}
	*resp = &r->base;
cleanup:
	us_rec_result_free(&res);
	us_util_free(&u);
	us_catalog_free(&cat);
	return rc;
}
