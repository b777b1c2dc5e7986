/* Capacity plans kept by the coordinator (planner.h): the controller's
 * periodic job (us_ctl_plans_pass), the computation over the store, and
 * Plan/Make. The computation is the CLI's `understudy plan WORKLOAD`
 * (cli_plan.c) with the store read directly: requests, CPU, memory and
 * network forecast from production's series, capacity per instance from the
 * shadow's minutes (lib/plan.h), each step sized on the binding resource. */
#include "planner.h"

#include <grpc/status.h>
#include <json-c/json.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.pb-c.h"
#include "catalog.h"
#include "clock.h"
#include "controller_impl.h"
#include "forecast.h"
#include "forecast_csv.h"
#include "log.h"
#include "plan.h"
#include "policy.h"
#include "series.h"
#include "understudy.pb-c.h"

#define HISTORY_NS (14 * 86400 * US_NS_PER_SEC)
#define DEMAND_STEP_NS (300 * US_NS_PER_SEC)
#define MINUTE_NS (60 * US_NS_PER_SEC)
#define LEAD_BUFFER_S 300
#define PLANS_KEPT 28           /* a week of plans at the default interval */
/* The due check runs at most this often (and at most twice an interval). */
#define CHECK_NS (5 * US_NS_PER_SEC)

/* ---- the store ---------------------------------------------------------------- */

struct plan_instances {
	char production[US_INSTANCE_ID_MAX], prod_type[64];
	char shadow[US_INSTANCE_ID_MAX], type[64];   /* latest shadow or candidate */
	double provision_s;                          /* the longest measured, 0 = none */
};

static void col_text(sqlite3_stmt *q, int col, char *out, size_t len)
{
	const unsigned char *t = sqlite3_column_text(q, col);

	snprintf(out, len, "%s", t ? (const char *)t : "");
}

/* The workload's latest production instance, its latest shadow or
 * candidate (whose type is the candidate type) and the provisioning time. */
static int read_instances(sqlite3 *db, const char *workload, struct plan_instances *pi)
{
	sqlite3_stmt *q = NULL;
	int s, rc = -1;

	memset(pi, 0, sizeof(*pi));
	if (sqlite3_prepare_v2(db, "SELECT id, role, type, coalesce(provision_s, 0) FROM instances "
			       "WHERE workload = ?1 ORDER BY created_ns, id", -1, &q, NULL) != SQLITE_OK)
		goto cleanup;
	sqlite3_bind_text(q, 1, workload, -1, SQLITE_STATIC);
	while ((s = sqlite3_step(q)) == SQLITE_ROW) {
		const char *role = (const char *)sqlite3_column_text(q, 1);

		if (sqlite3_column_double(q, 3) > pi->provision_s)
			pi->provision_s = sqlite3_column_double(q, 3);
		if (role && strcmp(role, "production") == 0) {
			col_text(q, 0, pi->production, sizeof(pi->production));
			col_text(q, 2, pi->prod_type, sizeof(pi->prod_type));
		} else if (role && (!strcmp(role, "shadow") || !strcmp(role, "candidate"))) {
			col_text(q, 0, pi->shadow, sizeof(pi->shadow));
			col_text(q, 2, pi->type, sizeof(pi->type));
		}
	}
	rc = s == SQLITE_DONE ? 0 : -1;
cleanup:
	sqlite3_finalize(q);
	return rc;
}

static int points(sqlite3 *db, const char *name, const char *metric, uint64_t now_ns,
		  uint64_t step_ns, struct us_series_point **p, size_t *n, char *err, size_t errlen)
{
	struct us_series_query q = { .workload = name, .role = UNDERSTUDY__ROLE__PRODUCTION,
				     .metric = metric, .from_ns = now_ns - HISTORY_NS,
				     .to_ns = now_ns, .step_ns = step_ns };

	return us_series_query(db, &q, p, n, err, errlen);
}

/* One metric of name at the demand step as a regular series: a rate per
 * second, or the mean level of a gauge, times scale. 1 when there are fewer
 * than two points. */
static int load_series(sqlite3 *db, const char *name, const char *metric, bool gauge,
		       double scale, uint64_t now_ns, struct us_fc_series *s, char *err,
		       size_t errlen)
{
	struct us_series_point *p = NULL;
	size_t n = 0, len = 0, line = 0;
	char *buf = NULL;
	FILE *f = NULL;
	int rc = -1;

	if (points(db, name, metric, now_ns, DEMAND_STEP_NS, &p, &n, err, errlen) < 0)
		goto cleanup;
	rc = 1;
	if (n < 2)
		goto cleanup;
	rc = -1;
	if (!(f = open_memstream(&buf, &len)))
		goto cleanup;
	fputs("timestamp,value\n", f);
	for (size_t i = 0; i < n; i++) {
		double secs = (double)(p[i].end_ns - p[i].start_ns) / 1e9;
		double v = gauge ? p[i].mean : (p[i].count ? (double)p[i].count : (double)p[i].sum) / secs;

		if (secs > 0)
			fprintf(f, "%llu,%.9g\n", (unsigned long long)(p[i].start_ns / US_NS_PER_SEC),
				v * scale);
	}
	if (fclose(f) != 0) {
		f = NULL;
		goto cleanup;
	}
	f = NULL;
	if (us_fc_csv_parse(buf, len, US_FCCSV_DUP_OK, 0, s, &line, err, errlen) < 0)
		goto cleanup;
	rc = 0;
cleanup:
	if (f)
		fclose(f);
	if (rc < 0 && !err[0])
		snprintf(err, errlen, "out of memory");
	free(buf);
	free(p);
	return rc;
}

/* ---- capacity from the shadow's minutes --------------------------------------- */

static const struct us_series_point *point_at(const struct us_series_point *p, size_t n,
					      size_t *j, uint64_t start_ns)
{
	while (*j < n && p[*j].start_ns < start_ns)
		(*j)++;
	return *j < n && p[*j].start_ns == start_ns ? &p[*j] : NULL;
}

struct minutes {
	struct us_cap_minute *m;
	uint64_t *t;            /* each minute's start */
	size_t n;
	uint64_t first, last;
};

/* An instance's minutes (cf. cli_plan.c's join_minutes): requests from the
 * counter (or the latency histogram's count), CPU from cpu_usage, p99. */
static int load_minutes(sqlite3 *db, const char *name, uint64_t now_ns, struct minutes *out,
			char *err, size_t errlen)
{
	struct us_series_point *req = NULL, *lat = NULL, *cpu = NULL, *base;
	size_t nreq = 0, nlat = 0, ncpu = 0, nbase, jl = 0, jc = 0;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	if (points(db, name, "requests", now_ns, MINUTE_NS, &req, &nreq, err, errlen) < 0 ||
	    points(db, name, "request_latency", now_ns, MINUTE_NS, &lat, &nlat, err, errlen) < 0 ||
	    points(db, name, "cpu_usage", now_ns, MINUTE_NS, &cpu, &ncpu, err, errlen) < 0)
		goto cleanup;
	base = nreq ? req : lat;
	nbase = nreq ? nreq : nlat;
	if (!(out->m = calloc(nbase ? nbase : 1, sizeof(*out->m))) ||
	    !(out->t = calloc(nbase ? nbase : 1, sizeof(*out->t)))) {
		snprintf(err, errlen, "out of memory");
		goto cleanup;
	}
	for (size_t i = 0; i < nbase; i++) {
		const struct us_series_point *l = point_at(lat, nlat, &jl, base[i].start_ns);
		const struct us_series_point *c = point_at(cpu, ncpu, &jc, base[i].start_ns);

		out->m[i].requests = base == req ? (double)base[i].sum : (double)base[i].count;
		out->m[i].cpu_s = c ? (double)c->sum / 1e9 : NAN;
		out->m[i].p99 = l && l->count ? l->p99 : NAN;
		out->t[i] = base[i].start_ns;
		if (i == 0)
			out->first = base[i].start_ns;
		out->last = base[i].start_ns;
	}
	out->n = nbase;
	rc = 0;
cleanup:
	free(req);
	free(lat);
	free(cpu);
	return rc;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Production's median per-minute p99 in [first, last] (all of it when none
 * falls there); NAN when it has none. */
static double production_p99(const struct minutes *prod, uint64_t first, uint64_t last)
{
	double *v = malloc((prod->n ? prod->n : 1) * sizeof(*v)), med = NAN;
	size_t k = 0;

	if (!v)
		return NAN;
	for (int pass = 0; pass < 2 && k == 0; pass++)
		for (size_t i = 0; i < prod->n; i++)
			if (!isnan(prod->m[i].p99) &&
			    (pass || (prod->t[i] >= first && prod->t[i] <= last)))
				v[k++] = prod->m[i].p99;
	if (k) {
		qsort(v, k, sizeof(*v), cmp_double);
		med = k % 2 ? v[k / 2] : (v[k / 2 - 1] + v[k / 2]) / 2;
	}
	free(v);
	return med;
}

/* ---- the plan ------------------------------------------------------------------ */

struct work {
	struct plan_instances pi;
	const char *prod;                  /* production's series name */
	struct us_catalog catalog;
	const struct us_itype *type;
	struct us_capacity_in cin;
	struct us_capacity cap;
	struct minutes shadow_m, prod_m;
	struct us_fc_series s[US_RES_N];
	struct us_fc_output fo[US_RES_N];
	struct us_fc_bands fc[US_RES_N];
	bool have[US_RES_N];
	double caps[US_RES_N];
	struct us_plan_res_fc res[US_RES_N];
	size_t nres;
	struct us_plan plan;
};

static void work_free(struct work *w)
{
	us_catalog_free(&w->catalog);
	free(w->shadow_m.m);
	free(w->shadow_m.t);
	free(w->prod_m.m);
	free(w->prod_m.t);
	for (size_t k = 0; k < US_RES_N; k++) {
		us_fc_series_free(&w->s[k]);
		us_fc_output_free(&w->fo[k]);
	}
	us_plan_free(&w->plan);
}

static int load_type(const struct us_planner_cfg *cfg, struct work *w, char *err, size_t errlen)
{
	char path[US_CATALOG_PATH_MAX];
	const char *cat = cfg->catalog_path && cfg->catalog_path[0]
				  ? cfg->catalog_path : us_catalog_default_path(path, sizeof(path));
	const char *type = w->pi.type[0] ? w->pi.type : w->pi.prod_type;

	if (!type[0]) {
		snprintf(err, errlen, "no instance to take a type from");
		return -1;
	}
	if (us_catalog_load(cat, &w->catalog, err, errlen) < 0)
		return -1;
	if (!(w->type = us_catalog_find(&w->catalog, type))) {
		snprintf(err, errlen, "type %s is not in %s", type, cat);
		return -1;
	}
	return 0;
}

/* The shadow's figures, or production's cost on catalog cores. */
static int measure_capacity(sqlite3 *db, const struct us_planner_cfg *cfg, struct work *w,
			    uint64_t now_ns, char *err, size_t errlen)
{
	double ratio = cfg->p99_ratio > 0 ? cfg->p99_ratio : US_PLAN_DEFAULT_P99_RATIO;

	if (load_minutes(db, w->prod, now_ns, &w->prod_m, err, errlen) < 0)
		return -1;
	w->cin.target_util = US_PLAN_DEFAULT_TARGET_UTIL;
	w->cin.type = w->type;
	if (w->pi.shadow[0]) {
		double p99;

		if (load_minutes(db, w->pi.shadow, now_ns, &w->shadow_m, err, errlen) < 0)
			return -1;
		w->cin.shadow_cpu_s_per_req = us_plan_cpu_per_request(w->shadow_m.m, w->shadow_m.n);
		p99 = production_p99(&w->prod_m, w->shadow_m.first, w->shadow_m.last);
		if (!isnan(p99))
			w->cin.shadow_rps = us_plan_sustained_rps(w->shadow_m.m, w->shadow_m.n,
								  p99 * ratio);
	}
	if (!(w->cin.shadow_rps > 0) && !(w->cin.shadow_cpu_s_per_req > 0))
		w->cin.nominal_cpu_s_per_req = us_plan_cpu_per_request(w->prod_m.m, w->prod_m.n);
	if (us_plan_capacity(&w->cin, &w->cap) < 0) {
		snprintf(err, errlen, "%s", w->cap.why);
		return -1;
	}
	return 0;
}

static int forecast_one(const struct us_fc_series *s, size_t h, struct us_fc_output *fo,
			struct us_fc_bands *fc, char *err, size_t errlen)
{
	struct us_fc_input in = { .y = s->y, .n = s->n, .step_s = s->step_us / 1e6,
				  .nonnegative = 1 };

	if (us_forecast(&in, h, fo, err, errlen) < 0)
		return -1;
	fc->step = s->step_us / 1000000;
	fc->start = s->t0_us / 1000000 + (int64_t)s->n * fc->step;
	fc->n = fo->h;
	fc->mean = fo->mean;
	fc->lo80 = fo->lo80;
	fc->hi80 = fo->hi80;
	fc->lo95 = fo->lo95;
	fc->hi95 = fo->hi95;
	return 0;
}

/* Loads and forecasts every measured resource; requests is required. */
static int forecast_all(sqlite3 *db, struct work *w, uint64_t now_ns, int64_t horizon_s,
			char *err, size_t errlen)
{
	static const struct { const char *metric; bool gauge; double scale; } m[US_RES_N] = {
		[US_RES_REQUESTS] = { "requests", false, 1 },
		[US_RES_CPU] = { "cpu_usage", false, 1e-9 },
		[US_RES_MEMORY] = { "memory_current", true, 1.0 / (1 << 30) },
		[US_RES_NETWORK] = { "network_bytes", false, 8e-9 },
	};
	struct us_fc_series *all[US_RES_N];
	size_t n = 0, h = (size_t)(horizon_s / (DEMAND_STEP_NS / US_NS_PER_SEC));

	for (int k = 0; k < US_RES_N; k++) {
		int r;

		if (k != US_RES_REQUESTS && !(w->caps[k] > 0))
			continue;
		r = load_series(db, w->prod, m[k].metric, m[k].gauge, m[k].scale, now_ns, &w->s[k],
				err, errlen);
		if (r < 0)
			return -1;
		if (r > 0 && k == US_RES_REQUESTS) {
			snprintf(err, errlen, "requests of %s: not enough history", w->prod);
			return -1;
		}
		if (r == 0) {
			w->have[k] = true;
			all[n++] = &w->s[k];
		}
	}
	us_plan_align_ends(all, n);
	for (int k = 0; k < US_RES_N; k++) {
		if (!w->have[k])
			continue;
		if (w->s[k].t0_us + (int64_t)w->s[k].n * w->s[k].step_us !=
		    w->s[0].t0_us + (int64_t)w->s[0].n * w->s[0].step_us)
			continue;   /* no overlap with the requests */
		if (forecast_one(&w->s[k], h ? h : 1, &w->fo[k], &w->fc[k], err, errlen) < 0)
			return -1;
		w->res[w->nres++] = (struct us_plan_res_fc){ k, &w->fc[k], w->caps[k] };
	}
	return 0;
}

/* Six significant digits: 0.95, not 0.94999999999999996. */
static json_object *jnum(double v)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%.6g", v);
	return json_object_new_double_s(v, buf);
}

static json_object *plan_json(const char *workload, const struct work *w,
			      const struct us_plan_params *p, uint64_t now_ns, int64_t horizon_s)
{
	json_object *o = json_object_new_object(), *cap = json_object_new_object();
	json_object *res = json_object_new_array(), *steps = json_object_new_array();

	json_object_object_add(o, "workload", json_object_new_string(workload));
	json_object_object_add(o, "created_ns", json_object_new_int64((int64_t)now_ns));
	json_object_object_add(o, "horizon_s", json_object_new_int64(horizon_s));
	json_object_object_add(o, "step_s", json_object_new_int64(w->plan.step_s));
	json_object_object_add(o, "model", json_object_new_string(w->fo[0].model));
	json_object_object_add(o, "series", json_object_new_string(w->prod));
	json_object_object_add(cap, "per_instance", jnum(w->cap.per_instance));
	json_object_object_add(cap, "source",
			       json_object_new_string(us_cap_source_name(w->cap.source)));
	json_object_object_add(cap, "warning", json_object_new_boolean(w->cap.warning));
	json_object_object_add(cap, "why", json_object_new_string(w->cap.why));
	json_object_object_add(cap, "type", json_object_new_string(w->type->type));
	json_object_object_add(cap, "shadow_instance", json_object_new_string(w->pi.shadow));
	json_object_object_add(cap, "shadow_rps", jnum(w->cin.shadow_rps));
	json_object_object_add(cap, "cpu_s_per_request",
			       jnum(w->cin.shadow_cpu_s_per_req > 0
							      ? w->cin.shadow_cpu_s_per_req
							      : w->cin.nominal_cpu_s_per_req));
	json_object_object_add(o, "capacity", cap);
	for (size_t k = 0; k < w->nres; k++) {
		json_object *r = json_object_new_object();

		json_object_object_add(r, "name", json_object_new_string(us_plan_res_name(w->res[k].res)));
		json_object_object_add(r, "unit", json_object_new_string(us_plan_res_unit(w->res[k].res)));
		json_object_object_add(r, "per_instance", jnum(w->res[k].capacity));
		json_object_array_add(res, r);
	}
	json_object_object_add(o, "resources", res);
	json_object_object_add(o, "quantile", jnum(p->quantile));
	json_object_object_add(o, "headroom", jnum(p->headroom));
	json_object_object_add(o, "lead_s", json_object_new_int64(p->lead_s));
	json_object_object_add(o, "peak", json_object_new_int64(w->plan.peak));
	json_object_object_add(o, "max_capacity", json_object_new_int64(w->plan.max_capacity));
	json_object_object_add(o, "requests", json_object_new_int64((int64_t)w->plan.nrequests));
	for (size_t i = 0; i < w->plan.n; i++) {
		const struct us_plan_step *s = &w->plan.steps[i];
		json_object *j = json_object_new_object();

		json_object_object_add(j, "t", json_object_new_int64(s->t));
		json_object_object_add(j, "mean", jnum(s->mean));
		json_object_object_add(j, "demand", jnum(s->demand));
		json_object_object_add(j, "instances", json_object_new_int64(s->required));
		json_object_object_add(j, "binding",
				       json_object_new_string(us_plan_res_name(w->res[s->binding].res)));
		if (s->request)
			json_object_object_add(j, "request_at", json_object_new_int64(s->request_at));
		json_object_array_add(steps, j);
	}
	json_object_object_add(o, "steps", steps);
	return o;
}

int us_planner_make(sqlite3 *db, const struct us_planner_cfg *cfg, const char *workload,
		    uint64_t now_ns, char **json, char *err, size_t errlen)
{
	int64_t horizon_s = cfg->horizon_s > 0 ? cfg->horizon_s : US_PLANNER_HORIZON_S;
	struct us_plan_params p;
	struct work *w = calloc(1, sizeof(*w));
	json_object *o = NULL;
	int rc = -1;

	*json = NULL;
	err[0] = '\0';
	if (!w) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (read_instances(db, workload, &w->pi) < 0) {
		snprintf(err, errlen, "store: %s", sqlite3_errmsg(db));
		goto cleanup;
	}
	/* the workload's own series, or its production instance's when the
	 * agent measures the instance under its id */
	w->prod = workload;
	if (w->pi.production[0]) {
		struct us_series_point *pt = NULL;
		size_t n = 0;

		if (points(db, workload, "requests", now_ns, DEMAND_STEP_NS, &pt, &n, err, errlen) < 0)
			goto cleanup;
		free(pt);
		if (n < 2)
			w->prod = w->pi.production;
	}
	if (load_type(cfg, w, err, errlen) < 0 ||
	    measure_capacity(db, cfg, w, now_ns, err, errlen) < 0)
		goto cleanup;
	us_plan_type_caps(w->type, w->cin.target_util, w->caps);
	w->caps[US_RES_REQUESTS] = w->cap.per_instance;
	if (forecast_all(db, w, now_ns, horizon_s, err, errlen) < 0)
		goto cleanup;
	us_plan_defaults(&p);
	p.lead_s = (int64_t)ceil(w->pi.provision_s) + LEAD_BUFFER_S;
	if (us_plan_build_multi(w->res, w->nres, &p, &w->plan, err, errlen) < 0)
		goto cleanup;
	if (!(o = plan_json(workload, w, &p, now_ns, horizon_s)) ||
	    !(*json = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN)))) {
		snprintf(err, errlen, "out of memory");
		goto cleanup;
	}
	rc = 0;
cleanup:
	json_object_put(o);
	work_free(w);
	free(w);
	return rc;
}

int us_planner_store(sqlite3 *db, const char *workload, uint64_t now_ns, int64_t horizon_s,
		     const char *json, const char *why)
{
	sqlite3_stmt *q = NULL, *d = NULL;
	int rc = -1;

	if (sqlite3_prepare_v2(db, "INSERT INTO plans(workload, created_ns, horizon_s, plan, error) "
			       "VALUES (?1, ?2, ?3, ?4, ?5)", -1, &q, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "DELETE FROM plans WHERE workload = ?1 AND id NOT IN "
			       "(SELECT id FROM plans WHERE workload = ?1 ORDER BY created_ns DESC "
			       "LIMIT ?2)", -1, &d, NULL) != SQLITE_OK)
		goto cleanup;
	sqlite3_bind_text(q, 1, workload, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 2, (int64_t)now_ns);
	sqlite3_bind_int64(q, 3, horizon_s);
	sqlite3_bind_text(q, 4, json ? json : "", -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 5, json ? "" : why, -1, SQLITE_STATIC);
	sqlite3_bind_text(d, 1, workload, -1, SQLITE_STATIC);
	sqlite3_bind_int(d, 2, PLANS_KEPT);
	if (sqlite3_step(q) == SQLITE_DONE && sqlite3_step(d) == SQLITE_DONE)
		rc = 0;
cleanup:
	if (rc < 0)
		us_warn("planner: storing the plan of %s: %s", workload, sqlite3_errmsg(db));
	sqlite3_finalize(q);
	sqlite3_finalize(d);
	return rc;
}

/* ---- the controller's job ------------------------------------------------------ */

static double policy_p99_ratio(const struct us_policy_set *s)
{
	const struct us_migration_policy *p = us_policy_find(s, "default");

	return p ? p->guards.max_p99_ratio : US_PLAN_DEFAULT_P99_RATIO;
}

static void plan_one(struct us_controller *c, const char *workload)
{
	struct us_planner_cfg cfg = { .catalog_path = c->provider_cfg.local.catalog,
				      .p99_ratio = policy_p99_ratio(c->policies) };
	char err[512], *json = NULL;

	if (us_planner_make(c->db, &cfg, workload, c->now_ns, &json, err, sizeof(err)) == 0)
		us_info("planner: %s: plan made", workload);
	else
		us_warn("planner: %s: no plan: %s", workload, err);
	us_planner_store(c->db, workload, c->now_ns, US_PLANNER_HORIZON_S, json, err);
	free(json);
}

void us_ctl_plans_pass(struct us_controller *c)
{
	uint64_t every = c->cfg.plan_interval_ns ? c->cfg.plan_interval_ns
						 : 6 * 3600 * US_NS_PER_SEC;
	uint64_t check = every / 2 < CHECK_NS ? every / 2 : CHECK_NS;
	sqlite3_stmt *q = NULL;
	char (*due)[128] = NULL;
	size_t n = 0;
	int s;

	if (c->plans_checked_ns && c->now_ns - c->plans_checked_ns < check)
		return;
	c->plans_checked_ns = c->now_ns;
	/* one indexed query: the workloads with a production instance whose
	 * latest plan (or failure) is at least an interval old */
	if (sqlite3_prepare_v2(c->db,
		"SELECT DISTINCT i.workload FROM instances i WHERE i.role = 'production' AND "
		"i.desired = 'running' AND coalesce((SELECT max(created_ns) FROM plans p "
		"WHERE p.workload = i.workload), 0) <= ?1 LIMIT 16", -1, &q, NULL) != SQLITE_OK)
		goto cleanup;
	sqlite3_bind_int64(q, 1, (int64_t)(c->now_ns - every));
	if (!(due = calloc(16, sizeof(*due))))
		goto cleanup;
	while ((s = sqlite3_step(q)) == SQLITE_ROW && n < 16)
		col_text(q, 0, due[n++], sizeof(due[0]));
cleanup:
	if (!q || !due)
		us_warn("planner: %s", q ? "out of memory" : sqlite3_errmsg(c->db));
	sqlite3_finalize(q);
	/* after the statement is done: the plans are written on this connection */
	for (size_t i = 0; i < n; i++)
		plan_one(c, due[i]);
	free(due);
}

/* ---- Plan/Make -------------------------------------------------------------------- */

/* "48h": seconds, or -1. */
static int64_t parse_horizon(const char *s)
{
	char *end;
	double v = strtod(s, &end);
	double unit = !*end ? 1 : !strcmp(end, "s") ? 1 : !strcmp(end, "m") ? 60
		    : !strcmp(end, "h") ? 3600 : !strcmp(end, "d") ? 86400 : -1;

	if (end == s || !(v > 0) || unit < 0 || v * unit > 30 * 86400 || v * unit < 300)
		return -1;
	return (int64_t)(v * unit);
}

/* 1 with the latest stored plan, 0 none, -1 error. */
static int latest_plan(sqlite3 *db, const char *workload, char **json, uint64_t *created_ns)
{
	sqlite3_stmt *q = NULL;
	int rc = -1, s;

	if (sqlite3_prepare_v2(db, "SELECT plan, created_ns FROM plans WHERE workload = ?1 AND "
			       "plan != '' ORDER BY created_ns DESC LIMIT 1", -1, &q, NULL) != SQLITE_OK)
		goto cleanup;
	sqlite3_bind_text(q, 1, workload, -1, SQLITE_STATIC);
	s = sqlite3_step(q);
	if (s == SQLITE_ROW) {
		*json = strdup((const char *)sqlite3_column_text(q, 0));
		*created_ns = (uint64_t)sqlite3_column_int64(q, 1);
		rc = *json ? 1 : -1;
	} else {
		rc = s == SQLITE_DONE ? 0 : -1;
	}
cleanup:
	sqlite3_finalize(q);
	return rc;
}

int us_api_plan_make(struct us_api_ctx *ctx, const ProtobufCMessage *req,
		     ProtobufCMessage **resp, char *msg, size_t msglen)
{
	const Understudy__Api__PlanRequest *in = (const void *)req;
	struct us_planner_cfg cfg = { .catalog_path = ctx->catalog_path };
	Understudy__Api__PlanResponse *r;
	struct us_policy_set *pol = NULL;
	uint64_t created = us_now_ns();
	char *json = NULL, err[512];
	int found = 0, rc = GRPC_STATUS_INVALID_ARGUMENT;

	if (!in->workload[0]) {
		snprintf(msg, msglen, "workload: required");
		return rc;
	}
	if (in->horizon[0] && (cfg.horizon_s = parse_horizon(in->horizon)) < 0) {
		snprintf(msg, msglen, "horizon: expected a duration from 5m to 30d such as 48h, "
			 "got '%s'", in->horizon);
		return rc;
	}
	if (!in->horizon[0] && (found = latest_plan(ctx->db, in->workload, &json, &created)) < 0) {
		snprintf(msg, msglen, "store: %s", sqlite3_errmsg(ctx->db));
		return GRPC_STATUS_INTERNAL;
	}
	if (!found) {
		if (ctx->policies_path && ctx->policies_path[0] && (pol = calloc(1, sizeof(*pol))) &&
		    us_policy_load(ctx->policies_path, pol, err, sizeof(err)) == 0)
			cfg.p99_ratio = policy_p99_ratio(pol);
		free(pol);
		if (us_planner_make(ctx->db, &cfg, in->workload, created, &json, err,
				    sizeof(err)) < 0) {
			snprintf(msg, msglen, "workload: no plan for '%s': %s", in->workload, err);
			return GRPC_STATUS_FAILED_PRECONDITION;
		}
	}
	if (!(r = malloc(sizeof(*r)))) {
		free(json);
		return GRPC_STATUS_RESOURCE_EXHAUSTED;
	}
	understudy__api__plan_response__init(r);
	r->plan = json;
	r->created_ns = created;
	r->stored = found > 0;
	*resp = &r->base;
	return GRPC_STATUS_OK;
}
