/* Compare/Run's data: see compare.h.
 *
 * Requests come from request_samples rows of the production role, which
 * carry the mirrored copy's outcome: a request answered by the shadow
 * (shadow_outcome OK) is a pair, production latency_ns against
 * shadow_latency_ns, so latency is judged in paired mode. Errors count on
 * both sides over the requests the shadow was sent and answered or failed
 * (OK or ERR_*): 5xx and no response, plus the shadow's connect, reset,
 * timeout and protocol failures. Throughput is OK / (OK + ERR_* +
 * DROPPED): a shadow that falls behind loses requests. FILTERED and
 * CAPTURE_GAP requests are the mirror's choice or loss, not the shadow's.
 * Without pairs (no mirror, but a shadow agent capturing its own traffic)
 * latency falls back to the two roles' samples, unpaired.
 *
 * Kernel histograms (run queue, I/O, TCP RTT) are merged bucket-wise over
 * the window from points_raw; retransmits, memory and CPU per request are
 * per-minute values from the series query, one sample per minute. */
#include "compare.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rollup.h"
#include "series.h"
#include "understudy.pb-c.h"

#define STEP_NS 60000000000ull

struct vec {
	double *v;
	size_t n, cap;
};

static int vec_push(struct vec *x, double v)
{
	if (x->n == x->cap) {
		size_t cap = x->cap ? x->cap * 2 : 4096;
		double *g = realloc(x->v, cap * sizeof(*g));

		if (!g)
			return -1;
		x->v = g;
		x->cap = cap;
	}
	x->v[x->n++] = v;
	return 0;
}

struct gather {
	struct vec prod, shadow;                 /* latencies, ns */
	struct vec iv_prod[US_IKPI_NR], iv_shadow[US_IKPI_NR];
	struct us_hist *hp[US_HKPI_NR], *hs[US_HKPI_NR];
	uint64_t rows;                           /* anything found at all */
};

static bool is_error_class(int cls)
{
	return cls == UNDERSTUDY__STATUS_CLASS__STATUS_5XX ||
	       cls == UNDERSTUDY__STATUS_CLASS__STATUS_NO_RESPONSE;
}

static bool is_shadow_failure(int outcome)
{
	return outcome >= UNDERSTUDY__SHADOW_OUTCOME__SHADOW_ERR_CONNECT &&
	       outcome <= UNDERSTUDY__SHADOW_OUTCOME__SHADOW_ERR_PROTOCOL;
}

static int sql_fail(sqlite3 *db, char *err, size_t errlen)
{
	snprintf(err, errlen, "compare: %s", sqlite3_errmsg(db));
	return -1;
}

static int gather_pairs(sqlite3 *db, const char *w, uint64_t from, uint64_t to,
			struct gather *g, struct us_cmp_input *in, char *err, size_t errlen)
{
	sqlite3_stmt *q = NULL;
	int rc = -1, st;

	if (sqlite3_prepare_v2(db, "SELECT latency_ns, status_class, shadow_outcome, "
			       "shadow_latency_ns, shadow_status_class FROM request_samples "
			       "WHERE workload = ? AND role = ? AND start_ns >= ? AND start_ns < ?",
			       -1, &q, NULL) != SQLITE_OK)
		return sql_fail(db, err, errlen);
	sqlite3_bind_text(q, 1, w, -1, SQLITE_STATIC);
	sqlite3_bind_int(q, 2, UNDERSTUDY__ROLE__PRODUCTION);
	sqlite3_bind_int64(q, 3, (sqlite3_int64)from);
	sqlite3_bind_int64(q, 4, (sqlite3_int64)to);
	while ((st = sqlite3_step(q)) == SQLITE_ROW) {
		int outcome = sqlite3_column_int(q, 2);
		bool ok = outcome == UNDERSTUDY__SHADOW_OUTCOME__SHADOW_OK;
		bool failed = is_shadow_failure(outcome);

		g->rows++;
		if (ok || failed || outcome == UNDERSTUDY__SHADOW_OUTCOME__SHADOW_DROPPED)
			in->mirrored++;
		if (!ok && !failed)
			continue;
		in->answered += ok;
		in->prod_requests++;
		in->shadow_requests++;
		in->prod_errors += is_error_class(sqlite3_column_int(q, 1));
		in->shadow_errors += failed || is_error_class(sqlite3_column_int(q, 4));
		if (ok && (vec_push(&g->prod, (double)sqlite3_column_int64(q, 0)) < 0 ||
			   vec_push(&g->shadow, (double)sqlite3_column_int64(q, 3)) < 0)) {
			snprintf(err, errlen, "out of memory");
			goto cleanup;
		}
	}
	if (st != SQLITE_DONE) {
		sql_fail(db, err, errlen);
		goto cleanup;
	}
	rc = 0;
cleanup:
	sqlite3_finalize(q);
	return rc;
}

/* One side's own samples (workload w, role), unpaired: latencies into lat,
 * requests and errors counted. */
static int gather_side(sqlite3 *db, const char *w, int role, uint64_t from, uint64_t to,
		       struct vec *lat, uint64_t *requests, uint64_t *errors, char *err,
		       size_t errlen)
{
	sqlite3_stmt *q = NULL;
	int rc = -1, st;

	if (sqlite3_prepare_v2(db, "SELECT latency_ns, status_class FROM request_samples "
			       "WHERE workload = ? AND role = ? AND start_ns >= ? AND start_ns < ?",
			       -1, &q, NULL) != SQLITE_OK)
		return sql_fail(db, err, errlen);
	sqlite3_bind_text(q, 1, w, -1, SQLITE_STATIC);
	sqlite3_bind_int(q, 2, role);
	sqlite3_bind_int64(q, 3, (sqlite3_int64)from);
	sqlite3_bind_int64(q, 4, (sqlite3_int64)to);
	while ((st = sqlite3_step(q)) == SQLITE_ROW) {
		*requests += 1;
		*errors += is_error_class(sqlite3_column_int(q, 1));
		if (vec_push(lat, (double)sqlite3_column_int64(q, 0)) < 0) {
			snprintf(err, errlen, "out of memory");
			goto cleanup;
		}
	}
	if (st != SQLITE_DONE) {
		sql_fail(db, err, errlen);
		goto cleanup;
	}
	rc = 0;
cleanup:
	sqlite3_finalize(q);
	return rc;
}

/* Each side's own samples, unpaired (counts start afresh). */
static int gather_roles(sqlite3 *db, const struct us_compare_sides *sd, uint64_t from,
			uint64_t to, struct gather *g, struct us_cmp_input *in, char *err,
			size_t errlen)
{
	in->prod_requests = in->shadow_requests = in->prod_errors = in->shadow_errors = 0;
	g->prod.n = g->shadow.n = 0;
	return gather_side(db, sd->prod, sd->prod_role, from, to, &g->prod, &in->prod_requests,
			   &in->prod_errors, err, errlen) < 0 ||
	       gather_side(db, sd->shadow, sd->shadow_role, from, to, &g->shadow,
			   &in->shadow_requests, &in->shadow_errors, err, errlen) < 0 ? -1 : 0;
}

/* Merges the raw histogram points of one series over the window; *out
 * stays NULL when the series has none. */
static int merge_hist(sqlite3 *db, const char *w, int role, const char *metric, uint64_t from,
		      uint64_t to, struct gather *g, struct us_hist **out, char *err, size_t errlen)
{
	sqlite3_stmt *q = NULL;
	struct us_hist *h = NULL;
	int rc = -1, st;

	if (sqlite3_prepare_v2(db, "SELECT p.hist FROM points_raw p JOIN series s "
			       "ON s.id = p.series_id WHERE s.workload = ? AND s.role = ? "
			       "AND s.metric = ? AND s.kind = 'histogram' AND p.start_ns >= ? "
			       "AND p.start_ns < ?", -1, &q, NULL) != SQLITE_OK)
		return sql_fail(db, err, errlen);
	sqlite3_bind_text(q, 1, w, -1, SQLITE_STATIC);
	sqlite3_bind_int(q, 2, role);
	sqlite3_bind_text(q, 3, metric, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 4, (sqlite3_int64)from);
	sqlite3_bind_int64(q, 5, (sqlite3_int64)to);
	while ((st = sqlite3_step(q)) == SQLITE_ROW) {
		if (sqlite3_column_type(q, 0) != SQLITE_BLOB)
			continue;
		if (!h && !(h = calloc(1, sizeof(*h)))) {
			snprintf(err, errlen, "out of memory");
			goto cleanup;
		}
		g->rows++;
		if (us_rollup_blob_add(sqlite3_column_blob(q, 0), (size_t)sqlite3_column_bytes(q, 0),
				       h, err, errlen) < 0)
			goto cleanup;
	}
	if (st != SQLITE_DONE) {
		sql_fail(db, err, errlen);
		goto cleanup;
	}
	*out = h;
	h = NULL;
	rc = 0;
cleanup:
	free(h);
	sqlite3_finalize(q);
	return rc;
}

/* Per-minute points of one series. */
static int minutes(sqlite3 *db, const char *w, int role, const char *metric, uint64_t from,
		   uint64_t to, struct us_series_point **pts, size_t *n, char *err, size_t errlen)
{
	struct us_series_query sq = { w, role, metric, from, to, STEP_NS };

	return us_series_query(db, &sq, pts, n, err, errlen);
}

/* Values per minute: a counter's increase, a gauge's mean, or (with a
 * denominator series) the ratio of increases where the denominator > 0. */
static int per_minute(sqlite3 *db, const char *w, int role, const char *metric, int den_role,
		      const char *den, uint64_t from, uint64_t to, bool gauge, struct vec *out,
		      struct gather *g, char *err, size_t errlen)
{
	struct us_series_point *a = NULL, *b = NULL;
	size_t na = 0, nb = 0, j = 0;
	int rc = -1;

	if (minutes(db, w, role, metric, from, to, &a, &na, err, errlen) < 0)
		goto cleanup;
	if (den && minutes(db, w, den_role, den, from, to, &b, &nb, err, errlen) < 0)
		goto cleanup;
	g->rows += na;
	for (size_t i = 0; i < na; i++) {
		double v = gauge ? a[i].mean : (double)a[i].sum;

		if (den) { /* both in time order: walk them together */
			while (j < nb && b[j].start_ns < a[i].start_ns)
				j++;
			if (j >= nb || b[j].start_ns != a[i].start_ns || b[j].sum == 0)
				continue;
			v /= (double)b[j].sum;
		}
		if (vec_push(out, v) < 0) {
			snprintf(err, errlen, "out of memory");
			goto cleanup;
		}
	}
	rc = 0;
cleanup:
	free(a);
	free(b);
	return rc;
}

static int gather_series(sqlite3 *db, const struct us_compare_sides *sd, uint64_t from,
			 uint64_t to, struct gather *g, char *err, size_t errlen)
{
	static const char *const hists[US_HKPI_NR] = { "runq_latency", "io_latency", "tcp_rtt" };
	const int P = UNDERSTUDY__ROLE__PRODUCTION;
	const char *wp = sd->prod, *ws = sd->shadow;
	int rp = sd->prod_role, rs = sd->shadow_role;
	bool same = strcmp(wp, ws) == 0;

	for (int h = 0; h < US_HKPI_NR; h++)
		if (merge_hist(db, wp, rp, hists[h], from, to, g, &g->hp[h], err, errlen) < 0 ||
		    merge_hist(db, ws, rs, hists[h], from, to, g, &g->hs[h], err, errlen) < 0)
			return -1;
	/* retransmits per minute, memory, CPU ns per request: in one workload
	 * the production agent counts requests and shadow answers (its
	 * mirror); a shadow measured as its own workload counts its requests */
	if (per_minute(db, wp, rp, "tcp_retransmits", 0, NULL, from, to, false, &g->iv_prod[0], g,
		       err, errlen) < 0 ||
	    per_minute(db, ws, rs, "tcp_retransmits", 0, NULL, from, to, false, &g->iv_shadow[0], g,
		       err, errlen) < 0 ||
	    per_minute(db, wp, rp, "cpu_usage", rp, "requests", from, to, false, &g->iv_prod[1], g,
		       err, errlen) < 0 ||
	    (same ? per_minute(db, ws, rs, "cpu_usage", P, "shadow_responses", from, to, false,
			       &g->iv_shadow[1], g, err, errlen)
		  : per_minute(db, ws, rs, "cpu_usage", rs, "requests", from, to, false,
			       &g->iv_shadow[1], g, err, errlen)) < 0 ||
	    per_minute(db, wp, rp, "memory_current", 0, NULL, from, to, true, &g->iv_prod[2], g,
		       err, errlen) < 0 ||
	    per_minute(db, ws, rs, "memory_current", 0, NULL, from, to, true, &g->iv_shadow[2], g,
		       err, errlen) < 0)
		return -1;
	return 0;
}

static void gather_free(struct gather *g)
{
	free(g->prod.v);
	free(g->shadow.v);
	for (int i = 0; i < US_IKPI_NR; i++) {
		free(g->iv_prod[i].v);
		free(g->iv_shadow[i].v);
	}
	for (int i = 0; i < US_HKPI_NR; i++) {
		free(g->hp[i]);
		free(g->hs[i]);
	}
}

int us_compare_store_sides(sqlite3 *db, const struct us_compare_sides *sd, uint64_t from_ns,
			   uint64_t to_ns, const struct us_policy *pol, struct us_verdict *v,
			   char *err, size_t errlen)
{
	struct us_cmp_input in = { 0 };
	struct gather g = { 0 };
	bool same = strcmp(sd->prod, sd->shadow) == 0;
	int rc = -1;

	/* the mirror's accounting (throughput, errors over the same requests)
	 * comes from production's rows either way */
	if (gather_pairs(db, sd->prod, from_ns, to_ns, &g, &in, err, errlen) < 0)
		goto cleanup;
	in.paired = same && g.prod.n > 0;
	if (!same) {
		/* both sides measured on their servers: latency unpaired */
		uint64_t req[2] = { 0 }, errs[2] = { 0 };

		g.prod.n = g.shadow.n = 0;
		if (gather_side(db, sd->prod, sd->prod_role, from_ns, to_ns, &g.prod, &req[0],
				&errs[0], err, errlen) < 0 ||
		    gather_side(db, sd->shadow, sd->shadow_role, from_ns, to_ns, &g.shadow, &req[1],
				&errs[1], err, errlen) < 0)
			goto cleanup;
		if (!in.mirrored) { /* no mirror (clone, subset): each server's own errors */
			in.prod_requests = req[0], in.prod_errors = errs[0];
			in.shadow_requests = req[1], in.shadow_errors = errs[1];
		}
	} else if (!in.paired && gather_roles(db, sd, from_ns, to_ns, &g, &in, err, errlen) < 0) {
		goto cleanup;
	}
	g.rows += g.prod.n + g.shadow.n;
	if (gather_series(db, sd, from_ns, to_ns, &g, err, errlen) < 0)
		goto cleanup;
	if (g.rows == 0) {
		rc = 1;
		goto cleanup;
	}
	in.prod = g.prod.v;
	in.shadow = g.shadow.v;
	in.n_prod = g.prod.n;
	in.n_shadow = g.shadow.n;
	in.has_errors = in.prod_requests > 0 || in.shadow_requests > 0;
	in.has_throughput = in.mirrored > 0;
	for (int i = 0; i < US_HKPI_NR; i++) {
		in.hist_prod[i] = g.hp[i];
		in.hist_shadow[i] = g.hs[i];
	}
	for (int i = 0; i < US_IKPI_NR; i++) {
		in.iv_prod[i] = g.iv_prod[i].v;
		in.n_iv_prod[i] = g.iv_prod[i].n;
		in.iv_shadow[i] = g.iv_shadow[i].v;
		in.n_iv_shadow[i] = g.iv_shadow[i].n;
	}
	if (us_verdict_run(pol, &in, v) < 0) {
		snprintf(err, errlen, "out of memory");
		goto cleanup;
	}
	rc = 0;
cleanup:
	gather_free(&g);
	return rc;
}

static char *dup(const char *s)
{
	return strdup(s ? s : "");
}

Understudy__Api__CompareResponse *us_compare_response(const struct us_verdict *v)
{
	Understudy__Api__CompareResponse *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	understudy__api__compare_response__init(r);
	r->score = v->score;
	r->confidence = v->confidence;
	r->verdict = dup(us_decision_name(v->decision));
	r->reason = dup(v->reason);
	r->mode = dup(v->paired ? "paired" : "unpaired");
	r->kpis = calloc(US_KPI_NR, sizeof(*r->kpis));
	if (!r->verdict || !r->reason || !r->mode || !r->kpis)
		goto fail;
	if (v->n_cdf) {
		r->cdf_production = malloc(v->n_cdf * sizeof(double));
		r->cdf_shadow = malloc(v->n_cdf * sizeof(double));
		if (!r->cdf_production || !r->cdf_shadow)
			goto fail;
		memcpy(r->cdf_production, v->cdf_prod, v->n_cdf * sizeof(double));
		memcpy(r->cdf_shadow, v->cdf_shadow, v->n_cdf * sizeof(double));
		r->n_cdf_production = r->n_cdf_shadow = v->n_cdf;
	}
	for (int i = 0; i < US_KPI_NR; i++) {
		const struct us_kpi *k = &v->kpi[i];
		Understudy__Api__CompareKpi *o = malloc(sizeof(*o));

		if (!o)
			goto fail;
		understudy__api__compare_kpi__init(o);
		r->kpis[r->n_kpis++] = o;
		o->name = dup(k->name);
		o->mode = dup(k->mode);
		o->unit = dup(k->unit);
		o->class_ = dup(us_kpi_class_name(k->cls));
		if (!o->name || !o->mode || !o->unit || !o->class_)
			goto fail;
		o->estimate = k->estimate;
		o->ci_low = k->lo;
		o->ci_high = k->hi;
		o->ci_level = k->level;
		o->limit = k->cls == US_CLASS_NODATA ? NAN : k->limit;
		o->critical = k->critical;
		o->weight = k->weight;
		o->n_production = k->n_prod;
		o->n_shadow = k->n_shadow;
	}
	return r;
fail:
	protobuf_c_message_free_unpacked(&r->base, NULL);
	return NULL;
}
