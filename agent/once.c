/* Owns --once: one interval of the BPF collectors (run queue, block I/O,
 * TCP) and, for --cgroup, of cgroupfs, outside the daemon loop. The figures
 * go through the same MetricBatch building as the daemon's (figures.h) and
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
#include "figures.h"

struct cgroup_name {
	uint64_t id;
	char *path;
};

/* One cgroup's figures, gathered from every collector before printing. */
struct once_cgroup {
	uint64_t id;
	struct us_figures f;
};

struct once_run {
	FILE *out;
	struct once_cgroup *cgs;
	size_t ncgs;
	struct us_cgroupfs *cgroupfs;	/* --cgroup only */
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
	fputs("],\n   \"gauges\": [", out);
	for (size_t i = 0; i < mb->n_gauges; i++) {
		fputs(i ? ", " : "", out);
		fputs("{\"metric\": ", out);
		json_string(out, mb->gauges[i]->metric);
		fputs(", \"unit\": ", out);
		json_string(out, mb->gauges[i]->unit);
		fprintf(out, ", \"value\": %.17g}", mb->gauges[i]->value);
	}
	fputs("]}", out);
	return 0;
}

/* The figures of cgroup id, added on first sight; NULL when out of memory. */
static struct us_figures *figures_of(struct once_run *r, uint64_t id)
{
	struct once_cgroup *grown;

	for (size_t i = 0; i < r->ncgs; i++)
		if (r->cgs[i].id == id)
			return &r->cgs[i].f;
	grown = realloc(r->cgs, (r->ncgs + 1) * sizeof(*r->cgs));
	if (!grown)
		return NULL;
	r->cgs = grown;
	memset(&r->cgs[r->ncgs], 0, sizeof(r->cgs[r->ncgs]));
	r->cgs[r->ncgs].id = id;
	return &r->cgs[r->ncgs++].f;
}

static int take_sched(void *ctx, const struct us_sched_cgroup_stats *st)
{
	struct us_figures *f = figures_of(ctx, st->cgroup_id);

	if (!f)
		return -ENOMEM;
	f->sched_seen = true;
	f->sched = *st;
	return 0;
}

static int take_block(void *ctx, const struct us_block_cgroup_stats *st)
{
	struct us_figures *f = figures_of(ctx, st->cgroup_id);

	if (!f)
		return -ENOMEM;
	f->block_seen = true;
	f->block = *st;
	return 0;
}

static int take_tcp(void *ctx, const struct us_tcp_cgroup_stats *st)
{
	struct us_figures *f = figures_of(ctx, st->cgroup_id);

	if (!f)
		return -ENOMEM;
	f->tcp_seen = true;
	f->tcp = *st;
	return 0;
}

/* One cgroup's MetricBatch, printed. --cgroup gets its cgroupfs figures and,
 * when nothing ran in it, empty run-queue histograms: the caller asked
 * about it, so it is printed either way. */
static int print_cgroup(struct once_run *r, struct once_cgroup *cg)
{
	struct us_batch *b = malloc(sizeof(*b));
	const char *path = name_of(r, cg->id);
	struct us_cgroupfs_figures cf;
	int rc = -ENOMEM;

	if (!b)
		goto cleanup;
	us_batch_init(b, path ? path : "", 0, r->start_ns, r->end_ns);
	if (r->only_id && !cg->f.sched_seen) {
		memset(&cg->f.sched, 0, sizeof(cg->f.sched));
		cg->f.sched_seen = true;
	}
	us_figures_add(&cg->f, b);
	if (r->cgroupfs) {
		us_cgroupfs_read(r->cgroupfs, r->only_path, &cf);
		us_figures_add_cgroupfs(&cf, b);
	}
	rc = print_batch(r, cg->id, path, &b->mb);
	us_batch_free(b);
cleanup:
	free(b);
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

/* The optional collectors: a failure costs their figures, with a warning,
 * as in the daemon. */
static void open_optional(const struct us_once_opts *o, uint64_t only_id, struct us_block **block,
			  struct us_tcp **tcp)
{
	struct us_block_opts bopts = { .track_all = o->cgroup == NULL };
	struct us_tcp_opts topts = { .track_all = o->cgroup == NULL };
	char err[512];

	if (us_block_open(&bopts, block, err, sizeof(err)) < 0) {
		us_warn("block I/O figures unavailable: %s", err);
		*block = NULL;
	} else if (only_id && us_block_track(*block, only_id) < 0) {
		us_warn("block I/O figures unavailable: cannot track the cgroup");
	}
	if (us_tcp_open(&topts, tcp, err, sizeof(err)) < 0) {
		us_warn("TCP figures unavailable: %s", err);
		*tcp = NULL;
	} else if (only_id && us_tcp_track(*tcp, only_id) < 0) {
		us_warn("TCP figures unavailable: cannot track the cgroup");
	}
}

static int drain_all(struct once_run *r, struct us_sched *s, struct us_block *block,
		     struct us_tcp *tcp, char *err, size_t errlen)
{
	int rc = us_sched_drain(s, take_sched, r);

	if (rc == 0 && block)
		rc = us_block_drain(block, take_block, r);
	if (rc == 0 && tcp)
		rc = us_tcp_drain(tcp, take_tcp, r);
	if (rc == 0 && r->only_id && !figures_of(r, r->only_id))
		rc = -ENOMEM;
	if (rc < 0)
		snprintf(err, errlen, "collectors: drain failed: %s", strerror(-rc));
	return rc;
}

int us_once_run(const struct us_once_opts *o, FILE *out, char *err, size_t errlen)
{
	struct us_sched_opts sopts = { .track_all = o->cgroup == NULL };
	struct once_run r = { .out = out, .only_path = o->cgroup };
	struct us_cgroupfs_figures baseline;
	struct us_sched_counters ctr;
	struct us_sched *s = NULL;
	struct us_block *block = NULL;
	struct us_tcp *tcp = NULL;
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
	open_optional(o, r.only_id, &block, &tcp);
	if (r.only_id && (r.cgroupfs = malloc(sizeof(*r.cgroupfs)))) {
		/* the first reading is the baseline the counters count from */
		us_cgroupfs_init(r.cgroupfs, o->cgroup);
		us_cgroupfs_read(r.cgroupfs, o->cgroup, &baseline);
	}
	r.start_ns = us_now_ns();
	sleep_ns(o->interval_ns);
	r.end_ns = us_now_ns();
	if (!r.only_id)
		collect_names(&r);
	if ((rc = drain_all(&r, s, block, tcp, err, errlen)) < 0)
		goto cleanup;
	fputc('[', out);
	for (size_t i = 0; i < r.ncgs && rc == 0; i++)
		if (!r.only_id || r.cgs[i].id == r.only_id)
			rc = print_cgroup(&r, &r.cgs[i]);
	fputs(r.printed ? "\n]\n" : "]\n", out);
	if (rc < 0) {
		snprintf(err, errlen, "cannot print the figures: %s", strerror(-rc));
		goto cleanup;
	}
	if (us_sched_counters(s, &ctr) == 0 && ctr.hist_map_full)
		us_warn("%llu samples from cgroups beyond the collector's 64 were dropped",
			(unsigned long long)ctr.hist_map_full);
cleanup:
	us_sched_destroy(s);
	us_block_destroy(block);
	us_tcp_destroy(tcp);
	free(r.cgroupfs);
	free(r.cgs);
	for (size_t i = 0; i < r.nnames; i++)
		free(r.names[i].path);
	free(r.names);
	return rc;
}
