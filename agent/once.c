/* Owns --once: one interval of the sched collector, outside the daemon loop.
 * The figures go through the same MetricBatch building as the daemon's and
 * back out of its wire form, so the JSON shows what would have been sent. */
#include "once.h"

#include <errno.h>
#include <fts.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "batch.h"
#include "bpf_env.h"
#include "clock.h"
#include "hist.h"
#include "log.h"
#include "sched_collector.h"

struct cgroup_name {
	uint64_t id;
	char *path;
};

struct once_run {
	FILE *out;
	uint64_t start_ns, end_ns;
	uint64_t only_id;		/* --cgroup: its id; 0 with track_all */
	const char *only_path;
	struct cgroup_name *names;	/* track_all: every cgroup v2 directory */
	size_t nnames;
	size_t printed;
};

int us_once_parse_interval(const char *s, uint64_t *ns, char *err, size_t errlen)
{
	static const struct { const char *unit; double ns; } units[] = {
		{ "", 1e9 }, { "ns", 1 }, { "us", 1e3 }, { "ms", 1e6 }, { "s", 1e9 }, { "m", 60e9 },
	};
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (end == s || errno || v != v)
		goto bad;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		double total = v * units[i].ns;

		if (strcmp(end, units[i].unit))
			continue;
		if (total < 1e6 || total > 3600e9)
			goto bad;
		*ns = (uint64_t)total;
		return 0;
	}
bad:
	snprintf(err, errlen, "--interval '%s': expected a duration between 1ms and 1h, "
		 "e.g. 2s, 500ms, 1m", s);
	return -EINVAL;
}

static void json_string(FILE *out, const char *s)
{
	fputc('"', out);
	for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
		if (*c == '"' || *c == '\\')
			fprintf(out, "\\%c", *c);
		else if (*c < 0x20)
			fprintf(out, "\\u%04x", *c);
		else
			fputc(*c, out);
	}
	fputc('"', out);
}

/* Every cgroup v2 directory with its id, so track_all output can name the
 * cgroups it found by id. Best effort: a cgroup we cannot name keeps a null
 * path, it is not an error. */
static void collect_names(struct once_run *r)
{
	char root[4096], err[256];
	char *paths[2] = { root, NULL };
	FTS *fts;
	FTSENT *e;

	if (us_bpf_env_cgroup2_root(root, sizeof(root), err, sizeof(err)) < 0)
		return;
	fts = fts_open(paths, FTS_PHYSICAL | FTS_NOCHDIR | FTS_XDEV, NULL);
	if (!fts)
		return;
	while ((e = fts_read(fts))) {
		struct cgroup_name *grown;
		uint64_t id;

		if (e->fts_info != FTS_D ||
		    us_bpf_env_cgroup_id(e->fts_path, &id, err, sizeof(err)) < 0)
			continue;
		grown = realloc(r->names, (r->nnames + 1) * sizeof(*r->names));
		if (!grown)
			break;
		r->names = grown;
		r->names[r->nnames].id = id;
		r->names[r->nnames].path = strdup(e->fts_path);
		if (r->names[r->nnames].path)
			r->nnames++;
	}
	fts_close(fts);
}

static const char *name_of(const struct once_run *r, uint64_t id)
{
	if (r->only_id)
		return id == r->only_id ? r->only_path : NULL;
	for (size_t i = 0; i < r->nnames; i++)
		if (r->names[i].id == id)
			return r->names[i].path;
	return NULL;
}

static int print_hist(FILE *out, const Understudy__Histogram *p)
{
	struct us_hist *h = malloc(sizeof(*h));
	char err[256];
	int rc = -ENOMEM;

	if (!h)
		goto cleanup;
	rc = -EINVAL;
	if (us_hist_from_proto(p, h, err, sizeof(err)) < 0)
		goto cleanup;
	fprintf(out, "{\"metric\": ");
	json_string(out, p->metric);
	fprintf(out, ", \"unit\": ");
	json_string(out, p->unit);
	fprintf(out, ", \"count\": %llu, \"sum\": %llu, \"mean\": %.1f, \"p50\": %.0f, "
		"\"p90\": %.0f, \"p99\": %.0f, \"p999\": %.0f}",
		(unsigned long long)h->count, (unsigned long long)h->sum, us_hist_mean(h),
		us_hist_quantile(h, 0.5), us_hist_quantile(h, 0.9), us_hist_quantile(h, 0.99),
		us_hist_quantile(h, 0.999));
	rc = 0;
cleanup:
	free(h);
	return rc;
}

static int print_batch(struct once_run *r, uint64_t cgroup_id, const char *path,
		       const Understudy__MetricBatch *mb)
{
	FILE *out = r->out;

	fprintf(out, "%s\n  {\"cgroup_id\": %llu, \"cgroup_path\": ", r->printed++ ? "," : "",
		(unsigned long long)cgroup_id);
	if (path)
		json_string(out, path);
	else
		fputs("null", out);
	fprintf(out, ", \"interval_start_ns\": %llu, \"interval_end_ns\": %llu,\n"
		"   \"histograms\": [", (unsigned long long)mb->interval_start_ns,
		(unsigned long long)mb->interval_end_ns);
	for (size_t i = 0; i < mb->n_histograms; i++) {
		fputs(i ? ",\n     " : "\n     ", out);
		if (print_hist(out, mb->histograms[i]) < 0)
			return -EINVAL;
	}
	fputs("],\n   \"counters\": [", out);
	for (size_t i = 0; i < mb->n_counters; i++) {
		fputs(i ? ", " : "", out);
		fputs("{\"metric\": ", out);
		json_string(out, mb->counters[i]->metric);
		fputs(", \"unit\": ", out);
		json_string(out, mb->counters[i]->unit);
		fprintf(out, ", \"value\": %llu}", (unsigned long long)mb->counters[i]->value);
	}
	fputs("]}", out);
	return 0;
}

/* The same figures, under the same names, as the daemon's submit_interval(). */
static int take_stats(void *ctx, const struct us_sched_cgroup_stats *st)
{
	struct once_run *r = ctx;
	struct us_batch *b = malloc(sizeof(*b));
	const char *path = name_of(r, st->cgroup_id);
	int rc = -ENOMEM;

	if (!b)
		goto cleanup;
	us_batch_init(b, path ? path : "", 0, r->start_ns, r->end_ns);
	rc = -EINVAL;
	if (us_batch_add_hist(b, "runq_latency", "ns", &st->runq_latency_ns) < 0 ||
	    us_batch_add_hist(b, "oncpu_slice", "ns", &st->oncpu_slice_ns) < 0 ||
	    us_batch_add_counter(b, "oncpu_time", "ns", st->oncpu_ns) < 0)
		goto free_batch;
	rc = print_batch(r, st->cgroup_id, path, &b->mb);
free_batch:
	us_batch_free(b);
cleanup:
	free(b);
	return rc;
}

/* --cgroup with no task scheduled in the interval: the drain does not visit
 * it, but the caller asked about it, so it gets empty histograms. */
static int print_idle(struct once_run *r)
{
	struct us_sched_cgroup_stats *st = calloc(1, sizeof(*st));
	int rc = -ENOMEM;

	if (!st)
		return rc;
	st->cgroup_id = r->only_id;
	st->tracked = true;
	rc = take_stats(r, st);
	free(st);
	return rc;
}

static void sleep_ns(uint64_t ns)
{
	struct timespec ts = { .tv_sec = (time_t)(ns / US_NS_PER_SEC),
			       .tv_nsec = (long)(ns % US_NS_PER_SEC) };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

static int resolve_only(const char *path, uint64_t *id, char *err, size_t errlen)
{
	char why[512];
	struct stat st;

	if (stat(path, &st) < 0 || !S_ISDIR(st.st_mode) ||
	    us_bpf_env_cgroup_id(path, id, why, sizeof(why)) < 0) {
		snprintf(err, errlen, "--cgroup %s: not a cgroup v2 directory", path);
		return -EINVAL;
	}
	return 0;
}

int us_once_run(const struct us_once_opts *o, FILE *out, char *err, size_t errlen)
{
	struct us_sched_opts sopts = { .track_all = o->cgroup == NULL };
	struct once_run r = { .out = out, .only_path = o->cgroup };
	struct us_sched_counters ctr;
	struct us_sched *s = NULL;
	int rc;

	if (o->cgroup && (rc = resolve_only(o->cgroup, &r.only_id, err, errlen)) < 0)
		goto cleanup;
	rc = us_bpf_env_prepare(us_log_enabled(US_LOG_DEBUG), err, errlen);
	if (rc < 0 || (rc = us_sched_open(&sopts, &s, err, errlen)) < 0)
		goto cleanup;
	if (r.only_id && (rc = us_sched_track(s, r.only_id)) < 0) {
		snprintf(err, errlen, "--cgroup %s: cannot track: %s", o->cgroup, strerror(-rc));
		goto cleanup;
	}
	r.start_ns = us_now_ns();
	sleep_ns(o->interval_ns);
	r.end_ns = us_now_ns();
	if (!r.only_id)
		collect_names(&r);
	fputc('[', out);
	rc = us_sched_drain(s, take_stats, &r);
	if (rc == 0 && r.only_id && !r.printed)
		rc = print_idle(&r);
	fputs(r.printed ? "\n]\n" : "]\n", out);
	if (rc < 0) {
		snprintf(err, errlen, "sched collector: drain failed: %s", strerror(-rc));
		goto cleanup;
	}
	if (us_sched_counters(s, &ctr) == 0 && ctr.hist_map_full)
		us_warn("%llu samples from cgroups beyond the collector's 64 were dropped",
			(unsigned long long)ctr.hist_map_full);
cleanup:
	us_sched_destroy(s);
	for (size_t i = 0; i < r.nnames; i++)
		free(r.names[i].path);
	free(r.names);
	return rc;
}
