/* `understudy inspect`: reads a coordinator store file directly (read-only)
 * and prints its agents, their workloads and the latest intervals' figures.
 * Works with the coordinator stopped; safe beside a running one (WAL). */
#include "cli.h"

#include <getopt.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "envelope.h"
#include "hist.h"

#define MAX_METRICS 64

struct metric_sum {
	char name[64];
	char unit[16];
	int is_hist;
	struct us_hist hist;
	uint64_t counter;
};

static void inspect_usage(FILE *out)
{
	fprintf(out,
		"usage: understudy inspect [--store FILE] [--last N]\n"
		"\n"
		"Prints the agents, workloads and the latest N intervals (default 5) per\n"
		"workload from a coordinator store, merging each metric's histograms.\n"
		"  --store FILE  default /var/lib/understudy/understudy.db\n");
}

static struct metric_sum *find_metric(struct metric_sum *m, size_t *n, const char *name,
				      const char *unit, int is_hist)
{
	for (size_t i = 0; i < *n; i++)
		if (strcmp(m[i].name, name) == 0 && m[i].is_hist == is_hist)
			return &m[i];
	if (*n == MAX_METRICS)
		return NULL;
	memset(&m[*n], 0, sizeof(m[*n]));
	snprintf(m[*n].name, sizeof(m[*n].name), "%s", name);
	snprintf(m[*n].unit, sizeof(m[*n].unit), "%s", unit);
	m[*n].is_hist = is_hist;
	return &m[(*n)++];
}

static void add_batch(const Understudy__MetricBatch *mb, struct metric_sum *m, size_t *n)
{
	char err[256];

	for (size_t i = 0; i < mb->n_histograms; i++) {
		struct metric_sum *s = find_metric(m, n, mb->histograms[i]->metric,
						   mb->histograms[i]->unit, 1);
		struct us_hist *h = malloc(sizeof(*h));

		if (s && h && us_hist_from_proto(mb->histograms[i], h, err, sizeof(err)) == 0)
			us_hist_merge(&s->hist, h);
		free(h);
	}
	for (size_t i = 0; i < mb->n_counters; i++) {
		struct metric_sum *s = find_metric(m, n, mb->counters[i]->metric,
						   mb->counters[i]->unit, 0);
		if (s)
			s->counter += mb->counters[i]->value;
	}
}

static void print_metrics(const struct metric_sum *m, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const struct us_hist *h = &m[i].hist;

		if (!m[i].is_hist) {
			printf("      %-22s %llu %s (sum)\n", m[i].name,
			       (unsigned long long)m[i].counter, m[i].unit);
			continue;
		}
		printf("      %-22s n=%-8llu p50=%-10.0f p90=%-10.0f p99=%-10.0f p99.9=%-10.0f %s\n",
		       m[i].name, (unsigned long long)h->count, us_hist_quantile(h, 0.5),
		       us_hist_quantile(h, 0.9), us_hist_quantile(h, 0.99),
		       us_hist_quantile(h, 0.999), m[i].unit);
	}
}

static int print_workload(sqlite3 *db, struct us_codec *codec, int64_t agent, const char *name,
			  int last)
{
	sqlite3_stmt *q = NULL;
	struct metric_sum *m = calloc(MAX_METRICS, sizeof(*m));
	size_t n = 0;
	int batches = 0, rc = -1;

	if (!m)
		return -1;
	if (sqlite3_prepare_v2(db,
		"SELECT e.frame FROM metric_batches b JOIN envelopes e "
		"ON e.agent_id = b.agent_id AND e.seq = b.seq "
		"WHERE b.agent_id = ? AND b.workload = ? ORDER BY b.start_ns DESC LIMIT ?",
		-1, &q, NULL) != SQLITE_OK)
		goto cleanup;
	sqlite3_bind_int64(q, 1, agent);
	sqlite3_bind_text(q, 2, name, -1, SQLITE_STATIC);
	sqlite3_bind_int(q, 3, last);
	while (sqlite3_step(q) == SQLITE_ROW) {
		enum us_frame_err why;
		char err[256];
		Understudy__Envelope *env = us_envelope_decode(codec, sqlite3_column_blob(q, 0),
							       (size_t)sqlite3_column_bytes(q, 0),
							       &why, err, sizeof(err));

		if (!env)
			continue;
		if (env->body_case == UNDERSTUDY__ENVELOPE__BODY_METRIC_BATCH) {
			add_batch(env->metric_batch, m, &n);
			batches++;
		}
		us_envelope_free(env);
	}
	printf("    last %d intervals:\n", batches);
	print_metrics(m, n);
	rc = 0;
cleanup:
	sqlite3_finalize(q);
	free(m);
	return rc;
}

static int print_store(sqlite3 *db, int last)
{
	sqlite3_stmt *a = NULL, *w = NULL;
	struct us_codec codec;
	int rc = -1;

	us_codec_init(&codec);
	if (sqlite3_prepare_v2(db,
		"SELECT a.id, a.name, coalesce(a.hostname, '?'), a.state, a.spool_dropped_total, "
		"(SELECT count(*) FROM envelopes e WHERE e.agent_id = a.id) FROM agents a ORDER BY a.name",
		-1, &a, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db,
		"SELECT name, CASE role WHEN 1 THEN 'production' WHEN 2 THEN 'shadow' ELSE '?' END, "
		"cgroup_id, coalesce(ports, ''), coalesce(labels, '') FROM workloads "
		"WHERE agent_id = ? ORDER BY name", -1, &w, NULL) != SQLITE_OK)
		goto cleanup;
	while (sqlite3_step(a) == SQLITE_ROW) {
		int64_t id = sqlite3_column_int64(a, 0);

		printf("agent %s (host %s, %s): %lld envelopes stored, %lld dropped from its spool\n",
		       sqlite3_column_text(a, 1), sqlite3_column_text(a, 2), sqlite3_column_text(a, 3),
		       (long long)sqlite3_column_int64(a, 5), (long long)sqlite3_column_int64(a, 4));
		sqlite3_bind_int64(w, 1, id);
		while (sqlite3_step(w) == SQLITE_ROW) {
			char name[256];

			snprintf(name, sizeof(name), "%s", (const char *)sqlite3_column_text(w, 0));
			printf("  workload %s (%s, cgroup %lld, ports %s, labels %s)\n", name,
			       sqlite3_column_text(w, 1), (long long)sqlite3_column_int64(w, 2),
			       sqlite3_column_text(w, 3), sqlite3_column_text(w, 4));
			print_workload(db, &codec, id, name, last);
		}
		sqlite3_reset(w);
	}
	rc = 0;
cleanup:
	sqlite3_finalize(a);
	sqlite3_finalize(w);
	us_codec_free(&codec);
	return rc;
}

int us_cli_inspect(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "store", required_argument, NULL, 's' },
		{ "last", required_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *path = "/var/lib/understudy/understudy.db";
	sqlite3 *db = NULL;
	int last = 5, c, rc = US_EXIT_FAIL;

	optind = 1;
	while ((c = getopt_long(argc, argv, "s:n:h", opts, NULL)) != -1) {
		switch (c) {
		case 's': path = optarg; break;
		case 'n': last = atoi(optarg); break;
		case 'h': inspect_usage(stdout); return US_EXIT_OK;
		default: inspect_usage(stderr); return US_EXIT_USAGE;
		}
	}
	if (optind != argc || last <= 0) {
		inspect_usage(stderr);
		return US_EXIT_USAGE;
	}
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
		fprintf(stderr, "understudy inspect: %s: %s\n", path, sqlite3_errmsg(db));
		goto cleanup;
	}
	sqlite3_busy_timeout(db, 5000);
	if (print_store(db, last) < 0) {
		fprintf(stderr, "understudy inspect: %s: %s (not an understudy store?)\n", path,
			sqlite3_errmsg(db));
		goto cleanup;
	}
	rc = US_EXIT_OK;
cleanup:
	sqlite3_close(db);
	return rc;
}
