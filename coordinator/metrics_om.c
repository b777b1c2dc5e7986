/* OpenMetrics rendering of the coordinator's store (see metrics_om.h).
 * Owns the mapping from store rows and agent metric names to OpenMetrics
 * families: names, types, units (ns become seconds), HELP texts, label
 * escaping, and the rule that a family is declared once. */
#include "metrics_om.h"

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "envelope.h"
#include "hist.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define OM_NAME_MAX 200

/* One rendering in progress. Appends record a failure in oom instead of
 * returning it, so the many small writes read as a straight line; the
 * caller checks oom once at the end. */
struct om {
	struct us_buf *out;
	int oom;
	char **families;        /* names declared so far: a family appears once */
	size_t n_families;
	size_t cap_families;
};

/* The latest interval of one (workload, role). */
struct batch {
	char *workload;
	int role;
	Understudy__Envelope *env;      /* body is a MetricBatch */
};

struct batches {
	struct batch *v;
	size_t n;
	size_t cap;
	uint64_t undecodable;
};

/* ---- writing ------------------------------------------------------------ */

static void om_write(struct om *w, const char *s, size_t n)
{
	if (!w->oom && us_buf_append(w->out, s, n) < 0)
		w->oom = 1;
}

static void om_puts(struct om *w, const char *s)
{
	om_write(w, s, strlen(s));
}

static void om_printf(struct om *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void om_printf(struct om *w, const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(buf)) {
		w->oom = 1; /* every format here is short; longer means a bug */
		return;
	}
	om_write(w, buf, (size_t)n);
}

/* Length of the valid UTF-8 sequence at s, or 0. OpenMetrics text is UTF-8
 * and agent-supplied strings are not checked for it at ingest. */
static size_t utf8_seq(const unsigned char *s)
{
	size_t n;
	uint32_t cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2, cp = s[0] & 0x1f;
	else if ((s[0] & 0xf0) == 0xe0)
		n = 3, cp = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4, cp = s[0] & 0x07;
	else
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80) /* also stops at the terminating NUL */
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return n;
}

/* Label values and HELP text: backslash, double quote and newline escaped
 * as the spec requires; invalid UTF-8 becomes U+FFFD. */
static void om_escaped(struct om *w, const char *str)
{
	const unsigned char *s = (const unsigned char *)str;

	while (*s) {
		size_t n = utf8_seq(s);

		if (*s == '\\')
			om_write(w, "\\\\", 2);
		else if (*s == '"')
			om_write(w, "\\\"", 2);
		else if (*s == '\n')
			om_write(w, "\\n", 2);
		else if (n == 0)
			om_write(w, "\xef\xbf\xbd", 3);
		else
			om_write(w, (const char *)s, n);
		s += n ? n : 1;
	}
}

/* Shortest text that reads back as the same double. */
static void om_double(struct om *w, double v)
{
	char buf[40];

	if (isnan(v)) {
		om_puts(w, "NaN");
		return;
	}
	if (isinf(v)) {
		om_puts(w, v < 0 ? "-Inf" : "+Inf");
		return;
	}
	for (int prec = 15; prec <= 17; prec++) {
		snprintf(buf, sizeof(buf), "%.*g", prec, v);
		if (strtod(buf, NULL) == v)
			break;
	}
	om_puts(w, buf);
}

/* Declares a family (HELP, TYPE, UNIT). Returns 0 when the name was already
 * declared: the caller skips its samples, since two agent metrics can map
 * to one name and a family may appear only once. */
static int om_family(struct om *w, const char *name, const char *type, const char *unit,
		     const char *help)
{
	char *copy;

	for (size_t i = 0; i < w->n_families; i++)
		if (strcmp(w->families[i], name) == 0)
			return 0;
	if (w->n_families == w->cap_families) {
		size_t cap = w->cap_families ? 2 * w->cap_families : 32;
		char **v = realloc(w->families, cap * sizeof(*v));

		if (!v) {
			w->oom = 1;
			return 0;
		}
		w->families = v;
		w->cap_families = cap;
	}
	copy = strdup(name);
	if (!copy) {
		w->oom = 1;
		return 0;
	}
	w->families[w->n_families++] = copy;
	om_printf(w, "# HELP %s ", name);
	om_escaped(w, help);
	om_printf(w, "\n# TYPE %s %s\n", name, type);
	if (unit)
		om_printf(w, "# UNIT %s %s\n", name, unit);
	return 1;
}

/* ---- store access ------------------------------------------------------- */

static int db_fail(sqlite3 *db, const char *what, char *err, size_t errlen)
{
	snprintf(err, errlen, "metrics: %s: %s", what, sqlite3_errmsg(db));
	return -1;
}

static int prepare(sqlite3 *db, const char *sql, sqlite3_stmt **q, char *err, size_t errlen)
{
	if (sqlite3_prepare_v2(db, sql, -1, q, NULL) != SQLITE_OK)
		return db_fail(db, sql, err, errlen);
	return 0;
}

/* ---- the coordinator itself -------------------------------------------- */

/* Rows of self_metrics (written by ingest every second) and what they
 * become. A row that is absent is not shown: no invented zeros. */
static const struct self_metric {
	const char *row;
	const char *family;
	int counter;            /* else a gauge */
	double divisor;         /* 0: an exact integer; dividing (not multiplying by
	                         * 1e-9) keeps 1 ms printing as 0.001 */
	const char *unit;
	const char *help;
} self_metrics[] = {
	{ "envelopes_received", "understudy_envelopes_received", 1, 0, NULL,
	  "Envelopes received from agents, before validation." },
	{ "envelopes_stored", "understudy_envelopes_stored", 1, 0, NULL,
	  "Envelopes written to the store for the first time." },
	{ "envelopes_duplicate", "understudy_envelopes_duplicate", 1, 0, NULL,
	  "Resent envelopes already in the store (absorbed, acked again)." },
	{ "acks_sent", "understudy_acks_sent", 1, 0, NULL,
	  "Ack messages sent to agents (one per connection per commit)." },
	{ "commands_sent", "understudy_agent_commands_sent", 1, 0, NULL,
	  "Commands sent to agents." },
	{ "commits", "understudy_store_commits", 1, 0, NULL,
	  "Store transactions committed by ingest." },
	{ "store_errors", "understudy_store_errors", 1, 0, NULL,
	  "Store writes that failed (envelopes then go unacked and are resent)." },
	{ "agents_stale", "understudy_agent_stale_transitions", 1, 0, NULL,
	  "Times an agent was marked stale after missing its heartbeats." },
	{ "ack_latency_p99_ns", "understudy_ack_latency_p99_seconds", 0, 1e9, "seconds",
	  "99th percentile of the time from receiving an envelope to acking it." },
};

static void self_sample(struct om *w, const struct self_metric *m, sqlite3_int64 v)
{
	om_printf(w, "%s%s ", m->family, m->counter ? "_total" : "");
	if (m->divisor == 0)
		om_printf(w, "%llu", (unsigned long long)v);
	else
		om_double(w, (double)(uint64_t)v / m->divisor);
	om_puts(w, "\n");
}

static int render_self(struct om *w, sqlite3 *db, char *err, size_t errlen)
{
	sqlite3_stmt *q = NULL;
	int rc = -1;

	if (prepare(db, "SELECT value FROM self_metrics WHERE name = ?", &q, err, errlen) < 0)
		goto cleanup;
	for (size_t i = 0; i < ARRAY_SIZE(self_metrics); i++) {
		const struct self_metric *m = &self_metrics[i];
		int step;

		sqlite3_bind_text(q, 1, m->row, -1, SQLITE_STATIC);
		step = sqlite3_step(q);
		if (step == SQLITE_ROW &&
		    om_family(w, m->family, m->counter ? "counter" : "gauge", m->unit, m->help))
			self_sample(w, m, sqlite3_column_int64(q, 0));
		sqlite3_reset(q);
		if (step != SQLITE_ROW && step != SQLITE_DONE) {
			db_fail(db, "self_metrics", err, errlen);
			goto cleanup;
		}
	}
	rc = 0;
cleanup:
	sqlite3_finalize(q);
	return rc;
}

/* One counter family with one label, from a query of (label value, count). */
static int render_labelled_counter(struct om *w, sqlite3 *db, const char *sql,
				   const char *table, const char *family, const char *label,
				   const char *help, char *err, size_t errlen)
{
	sqlite3_stmt *q = NULL;
	int rc = -1, step, declared = 0;

	if (prepare(db, sql, &q, err, errlen) < 0)
		goto cleanup;
	while ((step = sqlite3_step(q)) == SQLITE_ROW) {
		if (!declared)
			declared = om_family(w, family, "counter", NULL, help) ? 1 : -1;
		if (declared < 0)
			continue;
		om_printf(w, "%s_total{%s=\"", family, label);
		om_escaped(w, (const char *)sqlite3_column_text(q, 0));
		om_printf(w, "\"} %llu\n", (unsigned long long)sqlite3_column_int64(q, 1));
	}
	if (step != SQLITE_DONE) {
		db_fail(db, table, err, errlen);
		goto cleanup;
	}
	rc = 0;
cleanup:
	sqlite3_finalize(q);
	return rc;
}

/* Rows refused_<reason>, one labelled counter. The range bound '`' is the
 * character after '_', so the index on name serves the prefix match. */
static int render_refused(struct om *w, sqlite3 *db, char *err, size_t errlen)
{
	return render_labelled_counter(w, db,
		"SELECT substr(name, 9), value FROM self_metrics "
		"WHERE name >= 'refused_' AND name < 'refused`' ORDER BY name",
		"self_metrics", "understudy_envelopes_refused", "reason",
		"Envelopes refused, by reason (none of them stored or acked).", err, errlen);
}

/* The database and its write-ahead log: what the store costs on disk. */
static void render_store_size(struct om *w, const char *db_path)
{
	char wal[4200];
	struct stat st;
	uint64_t total = 0;

	if (stat(db_path, &st) == 0)
		total += (uint64_t)st.st_size;
	snprintf(wal, sizeof(wal), "%s-wal", db_path);
	if (stat(wal, &st) == 0)
		total += (uint64_t)st.st_size;
	if (om_family(w, "understudy_store_size_bytes", "gauge", "bytes",
		      "Size of the store on disk: database plus write-ahead log."))
		om_printf(w, "understudy_store_size_bytes %llu\n", (unsigned long long)total);
}

/* live and stale always appear (0 is a real count); other states as found */
static int render_agent_states(struct om *w, sqlite3 *db, char *err, size_t errlen)
{
	sqlite3_stmt *q = NULL;
	int rc = -1, step;

	if (prepare(db, "SELECT s.state, (SELECT count(*) FROM agents a WHERE a.state = s.state) "
		    "FROM (SELECT 'live' AS state UNION SELECT 'stale' UNION "
		    "SELECT state FROM agents) s ORDER BY 1", &q, err, errlen) < 0)
		goto cleanup;
	om_family(w, "understudy_agents", "gauge", NULL, "Agents known to the store, by state.");
	while ((step = sqlite3_step(q)) == SQLITE_ROW) {
		om_puts(w, "understudy_agents{state=\"");
		om_escaped(w, (const char *)sqlite3_column_text(q, 0));
		om_printf(w, "\"} %lld\n", (long long)sqlite3_column_int64(q, 1));
	}
	if (step != SQLITE_DONE) {
		db_fail(db, "agents", err, errlen);
		goto cleanup;
	}
	rc = 0;
cleanup:
	sqlite3_finalize(q);
	return rc;
}

static int render_spool_drops(struct om *w, sqlite3 *db, char *err, size_t errlen)
{
	return render_labelled_counter(w, db,
		"SELECT name, spool_dropped_total FROM agents ORDER BY name",
		"agents", "understudy_agent_spool_dropped", "agent",
		"Envelopes an agent dropped from its full spool, as reported in its "
		"heartbeats (lost data).", err, errlen);
}

/* ---- workloads: the latest interval ------------------------------------- */

static void free_batches(struct batches *b)
{
	for (size_t i = 0; i < b->n; i++) {
		free(b->v[i].workload);
		us_envelope_free(b->v[i].env);
	}
	free(b->v);
}

/* Takes ownership of env. */
static int add_batch(struct batches *b, const char *workload, int role,
		     Understudy__Envelope *env)
{
	char *name = strdup(workload);

	if (name && b->n == b->cap) {
		size_t cap = b->cap ? 2 * b->cap : 16;
		struct batch *v = realloc(b->v, cap * sizeof(*v));

		if (!v) {
			free(name);
			name = NULL;
		} else {
			b->v = v;
			b->cap = cap;
		}
	}
	if (!name) {
		us_envelope_free(env);
		return -1;
	}
	b->v[b->n++] = (struct batch){ .workload = name, .role = role, .env = env };
	return 0;
}

/* Decodes the stored frame of the newest batch of (workload, role), if any.
 * A frame that no longer decodes is counted, not fatal: the page must still
 * show everything else. */
static int load_latest(sqlite3_stmt *q, struct us_codec *codec, struct batches *b,
		       const char *workload, int role)
{
	Understudy__Envelope *env;
	enum us_frame_err why;
	char err[256];
	int step;

	sqlite3_bind_text(q, 1, workload, -1, SQLITE_STATIC);
	sqlite3_bind_int(q, 2, role);
	step = sqlite3_step(q);
	if (step != SQLITE_ROW) {
		sqlite3_reset(q);
		return step == SQLITE_DONE ? 0 : -1;
	}
	env = us_envelope_decode(codec, sqlite3_column_blob(q, 0),
				 (size_t)sqlite3_column_bytes(q, 0), &why, err, sizeof(err));
	sqlite3_reset(q);
	if (!env || env->body_case != UNDERSTUDY__ENVELOPE__BODY_METRIC_BATCH) {
		us_envelope_free(env);
		b->undecodable++;
		return 0;
	}
	return add_batch(b, workload, role, env);
}

/* Workload names come from a skip-scan of the (workload, role, start_ns)
 * index, one seek per workload rather than a pass over every batch ever
 * stored; the newest batch of each role is one more seek. Roles are the
 * wire enum's values. */
static int load_batches(sqlite3 *db, struct us_codec *codec, struct batches *b,
			char *err, size_t errlen)
{
	sqlite3_stmt *names = NULL, *latest = NULL;
	int rc = -1, step;

	if (prepare(db, "WITH RECURSIVE w(name) AS ("
		    " SELECT min(workload) FROM metric_batches"
		    " UNION ALL"
		    " SELECT (SELECT min(workload) FROM metric_batches WHERE workload > w.name)"
		    " FROM w WHERE w.name IS NOT NULL)"
		    " SELECT name FROM w WHERE name IS NOT NULL", &names, err, errlen) < 0 ||
	    prepare(db, "SELECT e.frame FROM metric_batches mb JOIN envelopes e"
		    " ON e.agent_id = mb.agent_id AND e.seq = mb.seq"
		    " WHERE mb.workload = ?1 AND mb.role = ?2"
		    " ORDER BY mb.start_ns DESC LIMIT 1", &latest, err, errlen) < 0)
		goto cleanup;
	while ((step = sqlite3_step(names)) == SQLITE_ROW) {
		const char *workload = (const char *)sqlite3_column_text(names, 0);

		for (int role = UNDERSTUDY__ROLE__ROLE_UNSPECIFIED; role <= UNDERSTUDY__ROLE__SHADOW; role++)
			if (load_latest(latest, codec, b, workload, role) < 0) {
				db_fail(db, "metric_batches", err, errlen);
				goto cleanup;
			}
	}
	if (step != SQLITE_DONE) {
		db_fail(db, "metric_batches", err, errlen);
		goto cleanup;
	}
	rc = 0;
cleanup:
	sqlite3_finalize(names);
	sqlite3_finalize(latest);
	return rc;
}

static const char *role_name(int role)
{
	switch (role) {
	case UNDERSTUDY__ROLE__PRODUCTION: return "production";
	case UNDERSTUDY__ROLE__SHADOW: return "shadow";
	default: return "unspecified";
	}
}

static void om_sample(struct om *w, const char *name, const struct batch *b,
		      const char *quantile, double v)
{
	om_puts(w, name);
	om_puts(w, "{workload=\"");
	om_escaped(w, b->workload);
	om_printf(w, "\",role=\"%s\"", role_name(b->role));
	if (quantile)
		om_printf(w, ",quantile=\"%s\"", quantile);
	om_puts(w, "} ");
	om_double(w, v);
	om_puts(w, "\n");
}

static void render_intervals(struct om *w, const struct batches *b)
{
	if (om_family(w, "understudy_workload_interval_end_timestamp_seconds", "gauge", "seconds",
		      "End of the latest interval received for the workload and role (unix "
		      "time); the figures below are from that interval."))
		for (size_t i = 0; i < b->n; i++)
			om_sample(w, "understudy_workload_interval_end_timestamp_seconds", &b->v[i],
				  NULL, (double)b->v[i].env->metric_batch->interval_end_ns / 1e9);
	if (om_family(w, "understudy_workload_interval_seconds", "gauge", "seconds",
		      "Length of that interval."))
		for (size_t i = 0; i < b->n; i++) {
			const Understudy__MetricBatch *mb = b->v[i].env->metric_batch;

			om_sample(w, "understudy_workload_interval_seconds", &b->v[i], NULL,
				  (double)(mb->interval_end_ns - mb->interval_start_ns) / 1e9);
		}
	if (om_family(w, "understudy_metrics_undecodable_batches", "gauge", NULL,
		      "Latest batches whose stored frame did not decode; their figures are "
		      "missing from this page."))
		om_printf(w, "understudy_metrics_undecodable_batches %llu\n",
			  (unsigned long long)b->undecodable);
}

/* Agent metric units and their OpenMetrics base unit (Prometheus convention:
 * seconds and bytes). Other units keep the raw value and no suffix. */
static const struct unit_map {
	const char *unit;
	const char *om_unit;
	double divisor;
} units[] = {
	{ "ns", "seconds", 1e9 }, { "us", "seconds", 1e6 }, { "ms", "seconds", 1e3 },
	{ "s", "seconds", 1 }, { "bytes", "bytes", 1 }, { "B", "bytes", 1 },
};

static const struct unit_map *unit_of(const char *unit)
{
	static const struct unit_map none = { "", NULL, 1 };

	for (size_t i = 0; i < ARRAY_SIZE(units); i++)
		if (strcmp(units[i].unit, unit) == 0)
			return &units[i];
	return &none;
}

/* Words for the metrics the agent sends today; others show their name. */
static const char *describe(const char *metric)
{
	static const char *const known[][2] = {
		{ "runq_latency", "run-queue latency (wakeup to running)" },
		{ "oncpu_slice", "on-CPU time per scheduling slice" },
		{ "oncpu_time", "on-CPU time" },
	};

	for (size_t i = 0; i < ARRAY_SIZE(known); i++)
		if (strcmp(known[i][0], metric) == 0)
			return known[i][1];
	return metric;
}

/* The views of a MetricBatch, each one family per agent metric. Batch
 * counters hold the increase over one interval, not a running total, so
 * they are gauges (named _interval) rather than OpenMetrics counters; the
 * same holds for histogram counts, and summaries carry no _count/_sum. */
enum view { V_QUANTILES, V_SAMPLES, V_COUNTER, V_GAUGE };

static size_t view_len(const Understudy__MetricBatch *mb, enum view v)
{
	return v == V_COUNTER ? mb->n_counters : v == V_GAUGE ? mb->n_gauges : mb->n_histograms;
}

static void view_item(const Understudy__MetricBatch *mb, enum view v, size_t j,
		      const char **metric, const char **unit)
{
	if (v == V_COUNTER) {
		*metric = mb->counters[j]->metric;
		*unit = mb->counters[j]->unit;
	} else if (v == V_GAUGE) {
		*metric = mb->gauges[j]->metric;
		*unit = mb->gauges[j]->unit;
	} else {
		*metric = mb->histograms[j]->metric;
		*unit = mb->histograms[j]->unit;
	}
}

/* understudy_<metric>[_interval|_samples][_<unit>], metric characters outside
 * [A-Za-z0-9_:] replaced. -1 when the metric is empty or too long. */
static int family_name(char *buf, size_t len, enum view v, const char *metric,
		       const char *unit)
{
	const struct unit_map *u = unit_of(unit);
	size_t mlen = strlen(metric);
	char *p;
	int n;

	if (mlen == 0 || mlen > OM_NAME_MAX)
		return -1;
	n = snprintf(buf, len, "understudy_%s%s%s%s", metric,
		     v == V_COUNTER ? "_interval" : v == V_SAMPLES ? "_samples" : "",
		     u->om_unit && v != V_SAMPLES ? "_" : "",
		     u->om_unit && v != V_SAMPLES ? u->om_unit : "");
	if (n < 0 || (size_t)n >= len)
		return -1;
	for (p = buf + strlen("understudy_"); p < buf + strlen("understudy_") + mlen; p++)
		if (!(*p == '_' || *p == ':' || (*p >= 'a' && *p <= 'z') ||
		      (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9')))
			*p = '_';
	return 0;
}

static int declare_view(struct om *w, const char *name, enum view v, const char *metric,
			const char *unit)
{
	const struct unit_map *u = unit_of(unit);
	const char *what = describe(metric);
	char help[512];

	switch (v) {
	case V_QUANTILES:
		snprintf(help, sizeof(help), "Quantiles of %s (agent unit %s) over the latest "
			 "interval, per workload and role.", what, unit);
		return om_family(w, name, "summary", u->om_unit, help);
	case V_SAMPLES:
		snprintf(help, sizeof(help), "Samples of %s recorded in the latest interval.", what);
		return om_family(w, name, "gauge", NULL, help);
	case V_COUNTER:
		snprintf(help, sizeof(help), "Increase of %s (agent unit %s) over the latest "
			 "interval.", what, unit);
		return om_family(w, name, "gauge", u->om_unit, help);
	default:
		snprintf(help, sizeof(help), "Latest value of %s (agent unit %s).", what, unit);
		return om_family(w, name, "gauge", u->om_unit, help);
	}
}

static void emit_item(struct om *w, const char *name, const struct batch *b, enum view v,
		      size_t j, struct us_hist *h)
{
	static const struct { const char *label; double q; } quantiles[] = {
		{ "0.5", 0.5 }, { "0.9", 0.9 }, { "0.99", 0.99 }, { "0.999", 0.999 },
	};
	const Understudy__MetricBatch *mb = b->env->metric_batch;
	const char *metric, *unit;
	char err[128];

	view_item(mb, v, j, &metric, &unit);
	if (v == V_COUNTER) {
		om_sample(w, name, b, NULL, (double)mb->counters[j]->value / unit_of(unit)->divisor);
	} else if (v == V_GAUGE) {
		om_sample(w, name, b, NULL, mb->gauges[j]->value / unit_of(unit)->divisor);
	} else if (v == V_SAMPLES) {
		om_sample(w, name, b, NULL, (double)mb->histograms[j]->count);
	} else if (us_hist_from_proto(mb->histograms[j], h, err, sizeof(err)) == 0) {
		/* an interval without samples has no quantiles: NaN, as the
		 * Prometheus clients write for an empty summary */
		for (size_t i = 0; i < ARRAY_SIZE(quantiles); i++)
			om_sample(w, name, b, quantiles[i].label,
				  h->count ? us_hist_quantile(h, quantiles[i].q) /
						     unit_of(unit)->divisor : NAN);
	}
}

/* Index in batch b of the first item of view v named name, or -1. */
static long find_item(const struct batch *b, enum view v, const char *name)
{
	const Understudy__MetricBatch *mb = b->env->metric_batch;
	char other[OM_NAME_MAX + 64];

	for (size_t j = 0; j < view_len(mb, v); j++) {
		const char *metric, *unit;

		view_item(mb, v, j, &metric, &unit);
		if (family_name(other, sizeof(other), v, metric, unit) == 0 &&
		    strcmp(other, name) == 0)
			return (long)j;
	}
	return -1;
}

/* One family per distinct name, in order of first appearance; each batch
 * contributes its first item of that name (one series per label set). */
static void render_view(struct om *w, const struct batches *b, enum view v, struct us_hist *h)
{
	char name[OM_NAME_MAX + 64];

	for (size_t i = 0; i < b->n; i++) {
		const Understudy__MetricBatch *mb = b->v[i].env->metric_batch;

		for (size_t j = 0; j < view_len(mb, v); j++) {
			const char *metric, *unit;

			view_item(mb, v, j, &metric, &unit);
			if (family_name(name, sizeof(name), v, metric, unit) < 0 ||
			    !declare_view(w, name, v, metric, unit))
				continue;
			for (size_t k = i; k < b->n; k++) {
				long x = find_item(&b->v[k], v, name);

				if (x >= 0)
					emit_item(w, name, &b->v[k], v, (size_t)x, h);
			}
		}
	}
}

/* ---- the page ----------------------------------------------------------- */

int us_metrics_om_render(sqlite3 *db, const char *db_path, struct us_codec *codec,
			 struct us_buf *out, char *err, size_t errlen)
{
	struct om w = { .out = out };
	struct batches b = { 0 };
	struct us_hist *h = malloc(sizeof(*h));
	int in_txn = 0, rc = -1;

	us_buf_clear(out);
	if (!h) {
		snprintf(err, errlen, "metrics: out of memory");
		goto cleanup;
	}
	/* one read transaction: every figure comes from the same snapshot */
	if (sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) {
		db_fail(db, "BEGIN", err, errlen);
		goto cleanup;
	}
	in_txn = 1;
	if (render_self(&w, db, err, errlen) < 0 || render_refused(&w, db, err, errlen) < 0 ||
	    render_agent_states(&w, db, err, errlen) < 0 ||
	    render_spool_drops(&w, db, err, errlen) < 0 ||
	    load_batches(db, codec, &b, err, errlen) < 0)
		goto cleanup;
	render_store_size(&w, db_path);
	render_intervals(&w, &b);
	render_view(&w, &b, V_QUANTILES, h);
	render_view(&w, &b, V_SAMPLES, h);
	render_view(&w, &b, V_COUNTER, h);
	render_view(&w, &b, V_GAUGE, h);
	om_puts(&w, "# EOF\n");
	if (w.oom) {
		snprintf(err, errlen, "metrics: out of memory");
		goto cleanup;
	}
	rc = 0;
cleanup:
	if (in_txn)
		sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	free_batches(&b);
	for (size_t i = 0; i < w.n_families; i++)
		free(w.families[i]);
	free(w.families);
	free(h);
	return rc;
}
