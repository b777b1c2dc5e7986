/* understudy-agent: observes the configured workloads each interval and
 * delivers the figures to the coordinator through the spool and sender. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include <http_parser.h>

#include "agent_config.h"
#include "batch.h"
#include "block_collector.h"
#include "bpf_env.h"
#include "cgroupfs.h"
#include "clock.h"
#include "figures.h"
#include "hello.h"
#include "keys.h"
#include "log.h"
#include "mirror.h"
#include "once.h"
#include "privs.h"
#include "probe.h"
#include "sched_collector.h"
#include "tcp_collector.h"
#include "scrape.h"
#include "self_telemetry.h"
#include "sender.h"
#include "spool.h"
#include "unit.h"

static volatile sig_atomic_t stop_requested;
static volatile sig_atomic_t reload_requested;

static void on_signal(int sig)
{
	if (sig == SIGHUP)
		reload_requested = 1;
	else
		stop_requested = 1;
}

struct agent {
	const char *config_path;
	struct us_agent_config cfg;
	struct us_spool *spool;
	struct us_sender *sender;
	struct us_sched *sched;
	struct us_block *block;
	struct us_tcp *tcp;
	uint64_t cgroup_ids[US_MAX_WORKLOADS];
	struct us_figures figures[US_MAX_WORKLOADS];
	struct us_cgroupfs cgroupfs[US_MAX_WORKLOADS];	/* by workload index */
	struct us_scrape *scrape[US_MAX_WORKLOADS];	/* by workload index; metrics_url */
	struct us_self_telemetry self;			/* baselines, BPF stats fd */
	uint64_t interval_start_ns;
	/* mirroring: the thread starts with the first mirrored workload */
	struct us_mirror *mirror;
	bool mirror_failed;				/* start failed; logged once */
	struct us_mirror_config commanded[US_MAX_WORKLOADS]; /* StartMirror/StopMirror override */
	bool command_override[US_MAX_WORKLOADS];
	/* the mirror thread's slot of workload i: it follows the workload's
	 * name across reloads (see assign_slots) */
	uint32_t slot[US_MAX_WORKLOADS];
	struct us_mirror_spec applied[US_MAX_WORKLOADS];	/* by slot: last spec handed over */
	bool applied_on[US_MAX_WORKLOADS];
};

#define SAMPLES_PER_ENVELOPE 2000

static void usage(FILE *out)
{
	fprintf(out,
		"usage: understudy-agent [--config FILE] [--log-level LEVEL]\n"
		"       understudy-agent --probe\n"
		"       understudy-agent --once --json [--interval DURATION] [--cgroup PATH]\n"
		"\n"
		"Measures the configured workloads with eBPF and sends the figures to the\n"
		"understudy coordinator over ZeroMQ (CURVE), through an on-disk spool.\n"
		"\n"
		"  -c, --config FILE     configuration (default /etc/understudy/agent.yaml);\n"
		"                        SIGHUP or the coordinator's reload command rereads it\n"
		"  -l, --log-level LEVEL debug, info, warn or error (overrides the config)\n"
		"      --probe           check the kernel features the agent needs, one line\n"
		"                        each (OK, DEGRADED, MISSING and what to do); exit 0\n"
		"                        when the agent can run here, else 1\n"
		"      --once --json     measure one interval without a coordinator or config\n"
		"                        file, print a JSON array, one object per cgroup\n"
		"      --interval DUR    --once: interval, e.g. 2s, 500ms (default 2s)\n"
		"      --cgroup PATH     --once: measure only this cgroup v2 directory\n"
		"                        (default: every cgroup)\n"
		"  -V, --version         print the version\n"
		"  -h, --help            this help\n");
}

static void track_cgroup(struct agent *ag, const char *workload, uint64_t id)
{
	if (ag->sched && us_sched_track(ag->sched, id) < 0)
		us_warn("workload %s: cannot track run-queue latency", workload);
	if (ag->block && us_block_track(ag->block, id) < 0)
		us_warn("workload %s: cannot track block I/O", workload);
	if (ag->tcp && us_tcp_track(ag->tcp, id) < 0)
		us_warn("workload %s: cannot track TCP metrics", workload);
}

static void untrack_cgroup(struct agent *ag, uint64_t id)
{
	if (ag->sched)
		us_sched_untrack(ag->sched, id);
	if (ag->block)
		us_block_untrack(ag->block, id);
	if (ag->tcp)
		us_tcp_untrack(ag->tcp, id);
}

/* Follows each workload's cgroup by path, every interval: one that appears
 * is tracked, one that goes away is untracked, and one recreated under the
 * same path (a restarted unit gets a new cgroup, so a new id) is switched
 * over. True if any id changed, so the caller re-announces the workloads. */
static bool resolve_cgroups(struct agent *ag)
{
	bool changed = false;
	char err[512];

	for (size_t i = 0; i < ag->cfg.nworkloads; i++) {
		const struct us_workload_config *w = &ag->cfg.workloads[i];
		uint64_t old = ag->cgroup_ids[i], id = 0;

		if (us_bpf_env_cgroup_id(w->cgroup, &id, err, sizeof(err)) < 0) {
			us_debug("workload %s: %s", w->name, err);
			id = 0;
		}
		if (id == old)
			continue;
		if (old) {
			untrack_cgroup(ag, old);
			if (id)
				us_info("workload %s: cgroup %s was recreated (id %llu, was %llu)",
					w->name, w->cgroup, (unsigned long long)id,
					(unsigned long long)old);
			else
				us_warn("workload %s: cgroup %s is gone; waiting for it to return",
					w->name, w->cgroup);
		} else {
			us_info("workload %s: cgroup %s (id %llu)", w->name, w->cgroup,
				(unsigned long long)id);
		}
		ag->cgroup_ids[i] = id;
		changed = true;
		if (id)
			track_cgroup(ag, w->name, id);
	}
	return changed;
}

static int take_sched(void *ctx, const struct us_sched_cgroup_stats *st)
{
	struct agent *ag = ctx;

	for (size_t i = 0; i < ag->cfg.nworkloads; i++) {
		if (ag->cgroup_ids[i] != st->cgroup_id)
			continue;
		ag->figures[i].sched_seen = true;
		ag->figures[i].sched = *st;
	}
	return 0;
}

static int take_block(void *ctx, const struct us_block_cgroup_stats *st)
{
	struct agent *ag = ctx;

	for (size_t i = 0; i < ag->cfg.nworkloads; i++) {
		if (ag->cgroup_ids[i] != st->cgroup_id)
			continue;
		ag->figures[i].block_seen = true;
		ag->figures[i].block = *st;
	}
	return 0;
}

static int take_tcp(void *ctx, const struct us_tcp_cgroup_stats *st)
{
	struct agent *ag = ctx;

	for (size_t i = 0; i < ag->cfg.nworkloads; i++) {
		if (ag->cgroup_ids[i] != st->cgroup_id)
			continue;
		ag->figures[i].tcp_seen = true;
		ag->figures[i].tcp = *st;
	}
	return 0;
}

/* Adds workload i's cgroupfs figures. The state follows the workload's
 * cgroup, so a reload that moves a workload starts from new baselines. */
static void add_cgroupfs(struct agent *ag, size_t i, struct us_batch *b)
{
	const struct us_workload_config *w = &ag->cfg.workloads[i];
	struct us_cgroupfs *c = &ag->cgroupfs[i];
	struct us_cgroupfs_figures f;

	if (!w->cgroup[0])
		return;
	if (strcmp(c->v2dir, w->cgroup) != 0)
		us_cgroupfs_init(c, w->cgroup);
	us_cgroupfs_read(c, w->name, &f);
	us_figures_add_cgroupfs(&f, b);
}

/* Scrapes every workload's metrics_url at once. State follows the config
 * like the cgroupfs one; the deadline is at most half an interval so a dead
 * endpoint never costs an interval. */
static void scrape_apps(struct agent *ag)
{
	uint64_t timeout = US_SCRAPE_TIMEOUT_NS;
	bool any = false;

	for (size_t i = 0; i < US_MAX_WORKLOADS; i++) {
		const struct us_workload_config *w = &ag->cfg.workloads[i];
		bool want = i < ag->cfg.nworkloads && w->metrics_url[0];

		if (ag->scrape[i] && (!want || !us_scrape_matches(ag->scrape[i], w))) {
			us_scrape_free(ag->scrape[i]);
			ag->scrape[i] = NULL;
		}
		if (want && !ag->scrape[i] && !(ag->scrape[i] = us_scrape_new(w)))
			us_warn("workload %s: metrics_url: out of memory", w->name);
		any |= ag->scrape[i] != NULL;
	}
	if (timeout > ag->cfg.interval_ns / 2)
		timeout = ag->cfg.interval_ns / 2;
	if (any)
		us_scrape_run(ag->scrape, ag->cfg.nworkloads, timeout);
}

/* The agent's own costs as workload US_SELF_WORKLOAD (self_telemetry.h). */
static void submit_self(struct agent *ag, uint64_t end_ns)
{
	struct us_self_sources src = {
		.sched = ag->sched, .block = ag->block, .tcp = ag->tcp, .mirror = ag->mirror,
		.spool = ag->spool, .sender = ag->sender,
	};
	Understudy__Envelope env = UNDERSTUDY__ENVELOPE__INIT;
	struct us_batch *b = malloc(sizeof(*b));
	char err[512];

	if (!b)
		return;
	us_self_telemetry_batch(&ag->self, &src, ag->interval_start_ns, end_ns, b);
	env.body_case = UNDERSTUDY__ENVELOPE__BODY_METRIC_BATCH;
	env.metric_batch = &b->mb;
	if (us_sender_submit(ag->sender, &env, err, sizeof(err)) < 0)
		us_warn("%s: %s", US_SELF_WORKLOAD, err);
	us_batch_free(b);
	free(b);
}

static Understudy__StatusClass status_class(unsigned code)
{
	if (code >= 100 && code < 600)
		return (Understudy__StatusClass)(code / 100);
	return UNDERSTUDY__STATUS_CLASS__STATUS_UNKNOWN;
}

static void sample_to_proto(const struct us_mirror_sample *s, Understudy__RequestSample *p)
{
	understudy__request_sample__init(p);
	p->start_ns = s->start_ns;
	p->end_ns = s->end_ns;
	p->latency_ns = s->latency_ns;
	p->status_code = s->status_code;
	p->status_class = status_class(s->status_code);
	p->bytes_in = s->bytes_in;
	p->bytes_out = s->bytes_out;
	p->connection_id = s->conn_id;
	p->request_index = s->request_index;
	p->truncated = s->truncated != 0;
	p->method = (char *)(s->method >= 0 ? http_method_str((enum http_method)s->method) : "");
	p->shadow_outcome = (Understudy__ShadowOutcome)s->shadow_outcome;
	p->shadow_latency_ns = s->shadow_latency_ns;
	p->shadow_status_code = s->shadow_status_code;
	p->shadow_status_class = status_class(s->shadow_status_code);
	if (s->shadow_outcome != UNDERSTUDY__SHADOW_OUTCOME__SHADOW_OK)
		p->shadow_status_class = s->shadow_outcome ?
			UNDERSTUDY__STATUS_CLASS__STATUS_NO_RESPONSE :
			UNDERSTUDY__STATUS_CLASS__STATUS_UNKNOWN;
	p->shadow_bytes_out = s->shadow_bytes_out;
}

/* A workload's request samples of the interval, as RequestBatch envelopes
 * of at most SAMPLES_PER_ENVELOPE (a frame stays far below 4 MiB). */
static void submit_samples(struct agent *ag, const struct us_workload_config *w,
			   const struct us_mirror_sample *sv, size_t n)
{
	Understudy__RequestSample *ps = calloc(SAMPLES_PER_ENVELOPE, sizeof(*ps));
	Understudy__RequestSample **pp = calloc(SAMPLES_PER_ENVELOPE, sizeof(*pp));
	char err[512];

	for (size_t off = 0; ps && pp && off < n; off += SAMPLES_PER_ENVELOPE) {
		Understudy__Envelope env = UNDERSTUDY__ENVELOPE__INIT;
		Understudy__RequestBatch rb = UNDERSTUDY__REQUEST_BATCH__INIT;
		size_t k = n - off < SAMPLES_PER_ENVELOPE ? n - off : SAMPLES_PER_ENVELOPE;

		for (size_t i = 0; i < k; i++) {
			sample_to_proto(&sv[off + i], &ps[i]);
			pp[i] = &ps[i];
		}
		rb.workload = (char *)w->name;
		rb.role = w->role;
		rb.n_samples = k;
		rb.samples = pp;
		env.body_case = UNDERSTUDY__ENVELOPE__BODY_REQUEST_BATCH;
		env.request_batch = &rb;
		if (us_sender_submit(ag->sender, &env, err, sizeof(err)) < 0)
			us_warn("workload %s: request samples: %s", w->name, err);
	}
	free(ps);
	free(pp);
}

static void submit_interval(struct agent *ag, uint64_t end_ns)
{
	struct us_mirror_sample *sv;
	uint64_t dropped;
	size_t samples;
	char err[512];

	memset(ag->figures, 0, sizeof(ag->figures));
	scrape_apps(ag);
	if (ag->sched && us_sched_drain(ag->sched, take_sched, ag) < 0)
		us_warn("sched collector: drain failed");
	if (ag->block && us_block_drain(ag->block, take_block, ag) < 0)
		us_warn("block collector: drain failed");
	if (ag->tcp && us_tcp_drain(ag->tcp, take_tcp, ag) < 0)
		us_warn("tcp collector: drain failed");
	for (size_t i = 0; i < ag->cfg.nworkloads; i++) {
		const struct us_workload_config *w = &ag->cfg.workloads[i];
		Understudy__Envelope env = UNDERSTUDY__ENVELOPE__INIT;
		struct us_batch *b = malloc(sizeof(*b));

		if (!b)
			return;
		us_batch_init(b, w->name, w->role, ag->interval_start_ns, end_ns);
		us_figures_add(&ag->figures[i], b);
		add_cgroupfs(ag, i, b);
		if (ag->scrape[i])
			us_scrape_add(ag->scrape[i], b);
		samples = us_mirror_take_samples(ag->mirror, ag->slot[i], &sv, &dropped);
		if (ag->mirror && us_mirror_active(ag->mirror, ag->slot[i])) {
			us_mirror_add_figures(ag->mirror, ag->slot[i], b);
			us_batch_add_counter(b, "request_samples_dropped", "1", dropped);
		}
		env.body_case = UNDERSTUDY__ENVELOPE__BODY_METRIC_BATCH;
		env.metric_batch = &b->mb;
		if (us_sender_submit(ag->sender, &env, err, sizeof(err)) < 0)
			us_warn("workload %s: %s", w->name, err);
		us_batch_free(b);
		free(b);
		submit_samples(ag, w, sv, samples);
		free(sv);
	}
	submit_self(ag, end_ns);
	ag->interval_start_ns = end_ns;
}

static void open_sched(struct agent *ag)
{
	struct us_sched_opts opts = { 0 };
	char err[512];

	if (ag->cfg.nworkloads == 0)
		return;
	if (us_bpf_env_prepare(us_log_enabled(US_LOG_DEBUG), err, sizeof(err)) < 0 ||
	    us_sched_open(&opts, &ag->sched, err, sizeof(err)) < 0) {
		us_warn("run-queue latency unavailable: %s", err);
		ag->sched = NULL;
		return;
	}
	us_info("sched collector attached (%s)", us_sched_attach_mode(ag->sched));
}

/* Failure costs only the io_* metrics, logged once here. */
static void open_block(struct agent *ag)
{
	struct us_block_opts opts = { 0 };
	char err[512];

	if (ag->cfg.nworkloads == 0)
		return;
	if (us_bpf_env_prepare(us_log_enabled(US_LOG_DEBUG), err, sizeof(err)) < 0 ||
	    us_block_open(&opts, &ag->block, err, sizeof(err)) < 0) {
		us_warn("block I/O metrics unavailable: %s", err);
		ag->block = NULL;
		return;
	}
	us_info("block collector attached (%s)", us_block_attach_mode(ag->block));
}

/* Failure costs only the tcp_* metrics, logged once here. */
static void open_tcp(struct agent *ag)
{
	struct us_tcp_opts opts = { 0 };
	char err[512];

	if (ag->cfg.nworkloads == 0)
		return;
	if (us_bpf_env_prepare(us_log_enabled(US_LOG_DEBUG), err, sizeof(err)) < 0 ||
	    us_tcp_open(&opts, &ag->tcp, err, sizeof(err)) < 0) {
		us_warn("TCP metrics unavailable: %s", err);
		ag->tcp = NULL;
		return;
	}
	us_info("tcp collector attached (%s)", us_tcp_attach_mode(ag->tcp));
}

static int open_transport(struct agent *ag, void *zctx)
{
	struct us_sender_config scfg = {
		.agent_id = ag->cfg.agent_id,
		.endpoint = ag->cfg.endpoint,
		.window = ag->cfg.window,
		.window_bytes = ag->cfg.window_bytes,
		.ack_timeout_ns = ag->cfg.ack_timeout_ns,
		.heartbeat_interval_ns = ag->cfg.heartbeat_ns,
	};
	char err[1024];

	if (us_keys_load_pair(ag->cfg.key, &scfg.keys, err, sizeof(err)) < 0 ||
	    us_keys_load_public(ag->cfg.coordinator_key, scfg.server_public_key, err, sizeof(err)) < 0) {
		us_error("%s", err);
		return -1;
	}
	ag->spool = us_spool_open(ag->cfg.spool_dir, ag->cfg.spool_max_bytes, err, sizeof(err));
	if (!ag->spool) {
		us_error("%s", err);
		return -1;
	}
	ag->sender = us_sender_open(zctx, &scfg, ag->spool, err, sizeof(err));
	if (!ag->sender) {
		us_error("%s", err);
		return -1;
	}
	return 0;
}

/* Applies what can change while running (workloads, interval, heartbeat,
 * log level); identity, keys, coordinator and spool need a restart, and a
 * config that changes them is refused whole so nothing is half-applied. */
/* What workload i needs of the mirror thread. *mc: the mirroring in force
 * (a StartMirror/StopMirror command overrides the config until the next
 * reload), or NULL; with none, `requests: true` still wants its requests
 * measured. False: nothing to capture. */
static bool mirror_wanted(const struct agent *ag, size_t i, const struct us_mirror_config **mc)
{
	const struct us_mirror_config *m = ag->command_override[i] ? &ag->commanded[i] :
					   &ag->cfg.workloads[i].mirror;

	*mc = m->enabled ? m : NULL;
	return *mc || ag->cfg.workloads[i].requests;
}

/* mc NULL: measure only (no replay endpoint) */
static void build_spec(const struct agent *ag, size_t i, const struct us_mirror_config *mc,
		       struct us_mirror_spec *spec)
{
	const struct us_workload_config *w = &ag->cfg.workloads[i];

	memset(spec, 0, sizeof(*spec));
	snprintf(spec->workload, sizeof(spec->workload), "%s", w->name);
	spec->role = w->role;
	spec->cgroup_id = ag->cgroup_ids[i];
	for (size_t k = 0; k < w->nports && k < 16; k++)
		spec->ports[spec->nports++] = w->ports[k];
	us_replay_config_defaults(&spec->replay);
	if (!mc)
		return;
	snprintf(spec->replay.endpoint, sizeof(spec->replay.endpoint), "%s", mc->endpoint);
	spec->replay.mode = mc->raw ? US_REPLAY_RAW : US_REPLAY_HTTP;
	spec->replay.sample = mc->sample;
	spec->replay.scale = mc->scale;
	spec->replay.allow_writes = mc->allow_writes;
	snprintf(spec->replay.host_rewrite, sizeof(spec->replay.host_rewrite), "%s", mc->host);
	spec->replay.conn_buffer_max = mc->conn_buffer;
	spec->replay.total_buffer_max = mc->total_buffer;
	spec->replay.response_timeout_ms = (unsigned)(mc->response_timeout_ns / US_NS_PER_MS);
}

static bool ensure_mirror(struct agent *ag)
{
	struct us_capture_opts o = {
		.cap_bytes = (uint32_t)ag->cfg.capture_cap_bytes,
		.ringbuf_bytes = (uint32_t)ag->cfg.capture_ring_bytes,
	};
	char err[512];

	if (ag->mirror)
		return true;
	if (ag->mirror_failed)
		return false;
	if (us_bpf_env_prepare(us_log_enabled(US_LOG_DEBUG), err, sizeof(err)) < 0 ||
	    us_mirror_start(&o, &ag->mirror, err, sizeof(err)) < 0) {
		us_error("mirroring unavailable: %s", err);
		ag->mirror_failed = true;
		return false;
	}
	us_info("capture programs attached; mirroring thread started");
	return true;
}

/* Hands each workload's mirroring to the mirror thread when it changed:
 * configured, commanded, stopped, or its cgroup id moved. */
static void sync_mirrors(struct agent *ag)
{
	ssize_t wl[US_MAX_WORKLOADS];	/* the workload in each slot, -1: none */
	char err[512];

	for (size_t s = 0; s < US_MAX_WORKLOADS; s++)
		wl[s] = -1;
	for (size_t i = 0; i < ag->cfg.nworkloads; i++)
		wl[ag->slot[i]] = (ssize_t)i;
	for (size_t s = 0; s < US_MAX_WORKLOADS; s++) {
		const struct us_mirror_config *mc = NULL;
		struct us_mirror_spec spec;

		if (wl[s] < 0 || !mirror_wanted(ag, (size_t)wl[s], &mc)) {
			if (ag->applied_on[s] && ag->mirror &&
			    us_mirror_set(ag->mirror, s, NULL, err, sizeof(err)) == 0)
				ag->applied_on[s] = false;
			continue;
		}
		build_spec(ag, (size_t)wl[s], mc, &spec);
		if (ag->applied_on[s] && memcmp(&spec, &ag->applied[s], sizeof(spec)) == 0)
			continue;
		if (!ensure_mirror(ag))
			return;
		if (us_mirror_set(ag->mirror, s, &spec, err, sizeof(err)) < 0) {
			us_error("mirror: %s", err);
			continue;
		}
		ag->applied[s] = spec;
		ag->applied_on[s] = true;
	}
}

static ssize_t config_index(const struct us_agent_config *c, const char *name)
{
	for (size_t i = 0; i < c->nworkloads; i++)
		if (strcmp(c->workloads[i].name, name) == 0)
			return (ssize_t)i;
	return -1;
}

/* The mirror thread's slots for next's workloads. A workload keeps its slot
 * across reloads, so one added or removed before it in the list (a drop-in
 * file) leaves its capture and open connections alone. A new workload takes
 * a slot no workload held before this reload: a removed workload's slot
 * rests until its stop is applied, and what it left there is discarded
 * when another workload takes it (agent/mirror.c, slot_apply). */
static void assign_slots(const struct agent *ag, const struct us_agent_config *next,
			 uint32_t slots[US_MAX_WORKLOADS])
{
	bool held[US_MAX_WORKLOADS] = { false }, taken[US_MAX_WORKLOADS] = { false };
	uint32_t fresh = 0, any = 0;

	for (size_t j = 0; j < ag->cfg.nworkloads; j++)
		held[ag->slot[j]] = true;
	for (size_t i = 0; i < next->nworkloads; i++) {
		ssize_t j = config_index(&ag->cfg, next->workloads[i].name);

		slots[i] = j < 0 ? UINT32_MAX : ag->slot[j];
		if (j >= 0)
			taken[slots[i]] = true;
	}
	for (size_t i = 0; i < next->nworkloads; i++) {
		if (slots[i] != UINT32_MAX)
			continue;
		while (fresh < US_MAX_WORKLOADS && (held[fresh] || taken[fresh]))
			fresh++;
		while (any < US_MAX_WORKLOADS && taken[any])
			any++;
		slots[i] = fresh < US_MAX_WORKLOADS ? fresh : any; /* every slot held: reuse */
		taken[slots[i]] = true;
	}
}

/* A workload a reload removes: what its slot measured since the interval
 * began goes out now, under its name, so its last requests count. */
static void flush_removed(struct agent *ag, const struct us_workload_config *w, uint32_t slot,
			  uint64_t end_ns)
{
	Understudy__Envelope env = UNDERSTUDY__ENVELOPE__INIT;
	struct us_mirror_sample *sv;
	struct us_batch *b;
	uint64_t dropped;
	size_t n;
	char err[512];

	if (!ag->mirror || !us_mirror_active(ag->mirror, slot))
		return;
	n = us_mirror_take_samples(ag->mirror, slot, &sv, &dropped);
	b = malloc(sizeof(*b));
	if (b) {
		us_batch_init(b, w->name, w->role, ag->interval_start_ns, end_ns);
		us_mirror_add_figures(ag->mirror, slot, b);
		us_batch_add_counter(b, "request_samples_dropped", "1", dropped);
		env.body_case = UNDERSTUDY__ENVELOPE__BODY_METRIC_BATCH;
		env.metric_batch = &b->mb;
		if (us_sender_submit(ag->sender, &env, err, sizeof(err)) < 0)
			us_warn("workload %s: %s", w->name, err);
		us_batch_free(b);
		free(b);
	}
	submit_samples(ag, w, sv, n);
	free(sv);
}

/* Workloads named by systemd unit get their cgroup directory now; the
 * agent then follows that directory like any other. */
static int resolve_units(struct us_agent_config *c, char *err, size_t errlen)
{
	char root[US_PATH_MAX], why[512];

	for (size_t i = 0; i < c->nworkloads; i++) {
		struct us_workload_config *w = &c->workloads[i];

		if (!w->unit[0])
			continue;
		if (us_bpf_env_cgroup2_root(root, sizeof(root), why, sizeof(why)) < 0) {
			snprintf(err, errlen, "workload %s: unit %s: %s", w->name, w->unit, why);
			return -1;
		}
		if (us_unit_cgroup(w->unit, root, w->cgroup, sizeof(w->cgroup), why,
				   sizeof(why)) < 0) {
			snprintf(err, errlen, "workload %s: %s", w->name, why);
			return -1;
		}
		us_info("workload %s: unit %s is cgroup %s", w->name, w->unit, w->cgroup);
	}
	return 0;
}

static int reload_config(struct agent *ag, char *msg, size_t msglen)
{
	struct us_agent_config *next = malloc(sizeof(*next));
	uint32_t slots[US_MAX_WORKLOADS];
	uint64_t now = us_now_ns();
	int rc = -1;

	if (!next) {
		snprintf(msg, msglen, "out of memory");
		return -1;
	}
	us_agent_config_defaults(next);
	if (us_agent_config_load(ag->config_path, next, msg, msglen) < 0 ||
	    resolve_units(next, msg, msglen) < 0)
		goto cleanup;
	if (strcmp(next->agent_id, ag->cfg.agent_id) || strcmp(next->key, ag->cfg.key) ||
	    strcmp(next->endpoint, ag->cfg.endpoint) ||
	    strcmp(next->coordinator_key, ag->cfg.coordinator_key) ||
	    strcmp(next->spool_dir, ag->cfg.spool_dir) ||
	    next->spool_max_bytes != ag->cfg.spool_max_bytes || next->window != ag->cfg.window) {
		snprintf(msg, msglen, "%s changes the agent id, keys, coordinator or spool: "
			 "restart the agent to apply it; nothing applied", ag->config_path);
		goto cleanup;
	}
	assign_slots(ag, next, slots);
	for (size_t i = 0; i < ag->cfg.nworkloads; i++) {
		if (config_index(next, ag->cfg.workloads[i].name) < 0)
			flush_removed(ag, &ag->cfg.workloads[i], ag->slot[i], now);
		if (ag->cgroup_ids[i])
			untrack_cgroup(ag, ag->cgroup_ids[i]);
	}
	ag->cfg = *next;
	memcpy(ag->slot, slots, sizeof(slots));
	memset(ag->cgroup_ids, 0, sizeof(ag->cgroup_ids));
	us_log_set_level(ag->cfg.log_level);
	resolve_cgroups(ag);
	/* a reload returns mirroring to what the file says */
	memset(ag->command_override, 0, sizeof(ag->command_override));
	sync_mirrors(ag);
	if (us_hello_submit(ag->sender, &ag->cfg, ag->cgroup_ids, msg, msglen) < 0)
		goto cleanup;
	snprintf(msg, msglen, "reloaded %s: %zu workloads", ag->config_path, ag->cfg.nworkloads);
	us_info("%s", msg);
	rc = 0;
cleanup:
	free(next);
	return rc;
}

static ssize_t workload_index(const struct agent *ag, const char *name)
{
	return config_index(&ag->cfg, name);
}

/* StartMirror: the config's mirror settings (or defaults) with the
 * command's endpoint, sample and scale. */
static int command_start_mirror(struct agent *ag, const Understudy__StartMirror *sm, char *msg,
				size_t msglen)
{
	ssize_t i = sm ? workload_index(ag, sm->workload) : -1;
	struct us_mirror_config mc;

	if (i < 0) {
		snprintf(msg, msglen, "no workload '%s' on this agent", sm ? sm->workload : "");
		return -1;
	}
	mc = ag->cfg.workloads[i].mirror;
	snprintf(mc.endpoint, sizeof(mc.endpoint), "%s", sm->endpoint);
	mc.sample = sm->sample > 0 ? sm->sample : 1;
	mc.scale = sm->scale ? sm->scale : 1;
	if (!strchr(mc.endpoint, ':') || mc.sample > 1 || mc.scale > 64) {
		snprintf(msg, msglen, "start_mirror %s: need endpoint host:port, sample in (0, 1], "
			 "scale 1..64", sm->workload);
		return -1;
	}
	if (!ag->cfg.workloads[i].nports) {
		snprintf(msg, msglen, "workload %s has no service ports to capture", sm->workload);
		return -1;
	}
	mc.enabled = true;
	ag->commanded[i] = mc;
	ag->command_override[i] = true;
	sync_mirrors(ag);
	if (!ag->mirror) {
		snprintf(msg, msglen, "mirroring unavailable on this host (see the agent log)");
		return -1;
	}
	snprintf(msg, msglen, "mirroring %s to %s (sample %.3g, x%u)", sm->workload, mc.endpoint,
		 mc.sample, mc.scale);
	return 0;
}

static int command_stop_mirror(struct agent *ag, const Understudy__StopMirror *sm, char *msg,
			       size_t msglen)
{
	ssize_t i = sm ? workload_index(ag, sm->workload) : -1;

	if (i < 0) {
		snprintf(msg, msglen, "no workload '%s' on this agent", sm ? sm->workload : "");
		return -1;
	}
	memset(&ag->commanded[i], 0, sizeof(ag->commanded[i]));
	ag->command_override[i] = true;
	sync_mirrors(ag);
	snprintf(msg, msglen, "stopped mirroring %s", sm->workload);
	return 0;
}

static void on_command(void *ctx, const Understudy__Command *cmd)
{
	struct agent *ag = ctx;
	char msg[512], err[256];
	bool ok = false;

	switch (cmd->action_case) {
	case UNDERSTUDY__COMMAND__ACTION_REPORT_NOW:
		submit_interval(ag, us_now_ns());
		snprintf(msg, sizeof(msg), "reported %zu workloads", ag->cfg.nworkloads);
		ok = true;
		break;
	case UNDERSTUDY__COMMAND__ACTION_RELOAD_CONFIG:
		ok = reload_config(ag, msg, sizeof(msg)) == 0;
		break;
	case UNDERSTUDY__COMMAND__ACTION_START_MIRROR:
		ok = command_start_mirror(ag, cmd->start_mirror, msg, sizeof(msg)) == 0;
		break;
	case UNDERSTUDY__COMMAND__ACTION_STOP_MIRROR:
		ok = command_stop_mirror(ag, cmd->stop_mirror, msg, sizeof(msg)) == 0;
		break;
	default:
		snprintf(msg, sizeof(msg), "unknown command action %d", cmd->action_case);
		break;
	}
	us_info("command %llu: %s: %s", (unsigned long long)cmd->id, ok ? "done" : "failed", msg);
	if (us_sender_submit_result(ag->sender, cmd->id, ok, msg, err, sizeof(err)) < 0)
		us_warn("command %llu: result not spooled: %s", (unsigned long long)cmd->id, err);
}

/* Called after the collectors are attached and before any thread starts
 * (capabilities are per thread; later threads inherit the reduced sets).
 * tracefs, bpffs and the memlock limit are made ready first, so capture,
 * loaded later, needs only what privs.c keeps. Failing to drop is logged,
 * never fatal. */
static void drop_privileges(void)
{
	struct us_privs_plan p;
	char err[512], line[2048];

	if (us_bpf_env_prepare(us_log_enabled(US_LOG_DEBUG), err, sizeof(err)) < 0)
		us_warn("request capture may be unavailable: %s", err);
	if (us_privs_drop(&p, err, sizeof(err)) < 0) {
		us_warn("capabilities not dropped: %s", err);
		return;
	}
	us_privs_describe(&p, line, sizeof(line));
	us_info("%s", line);
}

static int run(struct agent *ag)
{
	void *zctx = zmq_ctx_new();
	char err[512];
	uint64_t next_interval;
	int rc = 1;

	us_self_telemetry_init(&ag->self);
	for (uint32_t i = 0; i < US_MAX_WORKLOADS; i++)
		ag->slot[i] = i;
	open_sched(ag);
	open_block(ag);
	open_tcp(ag);
	us_self_telemetry_enable_stats(&ag->self);
	drop_privileges();
	if (open_transport(ag, zctx) < 0)
		goto cleanup;
	us_sender_on_command(ag->sender, on_command, ag);
	resolve_cgroups(ag);
	sync_mirrors(ag);
	if (us_hello_submit(ag->sender, &ag->cfg, ag->cgroup_ids, err, sizeof(err)) < 0)
		us_warn("hello: %s", err);
	us_info("understudy-agent %s as '%s' -> %s, %zu workloads, interval %llu ms",
		US_VERSION, ag->cfg.agent_id, ag->cfg.endpoint, ag->cfg.nworkloads,
		(unsigned long long)(ag->cfg.interval_ns / US_NS_PER_MS));
	ag->interval_start_ns = us_now_ns();
	next_interval = us_mono_ns() + ag->cfg.interval_ns;
	while (!stop_requested) {
		uint64_t now = us_mono_ns();

		if (reload_requested) {
			reload_requested = 0;
			if (reload_config(ag, err, sizeof(err)) < 0)
				us_error("reload: %s", err);
		}
		if (now >= next_interval) {
			next_interval += ag->cfg.interval_ns;
			if (resolve_cgroups(ag) &&
			    us_hello_submit(ag->sender, &ag->cfg, ag->cgroup_ids, err, sizeof(err)) < 0)
				us_warn("hello: %s", err);
			sync_mirrors(ag);
			submit_interval(ag, us_now_ns());
			continue;
		}
		if (us_sender_run(ag->sender, (int)((next_interval - now) / US_NS_PER_MS) + 1) < 0)
			break;
	}
	/* give the coordinator a moment to ack what is in flight; the rest
	 * stays in the spool for the next start */
	us_sender_drain(ag->sender, 2000);
	rc = 0;
cleanup:
	us_mirror_stop(ag->mirror);
	us_sender_close(ag->sender);
	us_spool_close(ag->spool);
	us_sched_destroy(ag->sched);
	us_block_destroy(ag->block);
	us_tcp_destroy(ag->tcp);
	us_self_telemetry_close(&ag->self);
	for (size_t i = 0; i < US_MAX_WORKLOADS; i++)
		us_scrape_free(ag->scrape[i]);
	zmq_ctx_term(zctx);
	return rc;
}

/* --probe and --once: one-shot modes that need no config file and no
 * coordinator, for checking a host before deploying the daemon. */
struct tool_mode {
	bool probe, once, json;
	bool once_only;		/* an option that means something only with --once */
	const char *interval;
	const char *cgroup;
};

static int run_tool_mode(const struct tool_mode *tm, const char *level)
{
	struct us_once_opts o = { .cgroup = tm->cgroup };
	enum us_log_level lv = US_LOG_WARN;
	char err[1024];
	int rc;

	if (level && us_log_parse_level(level, &lv) < 0) {
		fprintf(stderr, "understudy-agent: --log-level: expected debug, info, warn or error\n");
		return 2;
	}
	us_log_set_level(lv);
	if (tm->probe && !tm->once && !tm->json && !tm->once_only)
		return us_probe_run(stdout);
	if (tm->probe || !tm->once || !tm->json) {
		fprintf(stderr, "understudy-agent: use --probe alone, or --once --json "
			"[--interval DURATION] [--cgroup PATH]\n");
		return 2;
	}
	if (us_once_parse_interval(tm->interval, &o.interval_ns, err, sizeof(err)) < 0) {
		fprintf(stderr, "understudy-agent: %s\n", err);
		return 2;
	}
	rc = us_once_run(&o, stdout, err, sizeof(err));
	if (rc < 0)
		fprintf(stderr, "understudy-agent: %s\n", err);
	return rc == 0 ? 0 : rc == -EINVAL ? 2 : 1;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "log-level", required_argument, NULL, 'l' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ "probe", no_argument, NULL, 'P' },
		{ "once", no_argument, NULL, 'O' },
		{ "json", no_argument, NULL, 'J' },
		{ "interval", required_argument, NULL, 'I' },
		{ "cgroup", required_argument, NULL, 'G' },
		{ 0 },
	};
	struct tool_mode tm = { .interval = "2s" };
	const char *config_path = "/etc/understudy/agent.yaml";
	const char *level = NULL;
	struct sigaction sa = { .sa_handler = on_signal };
	struct agent *ag = calloc(1, sizeof(*ag));
	char err[1024];
	int c, rc;

	if (!ag)
		return 1;
	while ((c = getopt_long(argc, argv, "c:l:Vh", opts, NULL)) != -1) {
		switch (c) {
		case 'c': config_path = optarg; break;
		case 'l': level = optarg; break;
		case 'V': printf("understudy-agent %s\n", US_VERSION); free(ag); return 0;
		case 'h': usage(stdout); free(ag); return 0;
		case 'P': tm.probe = true; break;
		case 'O': tm.once = true; break;
		case 'J': tm.json = true; break;
		case 'I': tm.interval = optarg; tm.once_only = true; break;
		case 'G': tm.cgroup = optarg; tm.once_only = true; break;
		default: usage(stderr); free(ag); return 2;
		}
	}
	if (tm.probe || tm.once || tm.json || tm.once_only) {
		free(ag);
		return optind != argc ? (usage(stderr), 2) : run_tool_mode(&tm, level);
	}
	us_agent_config_defaults(&ag->cfg);
	if (optind != argc || us_agent_config_load(config_path, &ag->cfg, err, sizeof(err)) < 0 ||
	    resolve_units(&ag->cfg, err, sizeof(err)) < 0) {
		if (optind != argc)
			usage(stderr);
		else
			fprintf(stderr, "understudy-agent: %s\n", err);
		free(ag);
		return 2;
	}
	if (level && us_log_parse_level(level, &ag->cfg.log_level) < 0) {
		fprintf(stderr, "understudy-agent: --log-level: expected debug, info, warn or error\n");
		free(ag);
		return 2;
	}
	us_log_set_level(ag->cfg.log_level);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	ag->config_path = config_path;
	rc = run(ag);
	free(ag);
	return rc;
}
