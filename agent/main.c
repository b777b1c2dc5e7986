/* understudy-agent: observes the configured workloads each interval and
 * delivers the figures to the coordinator through the spool and sender. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

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
#include "once.h"
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
};

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
		.sched = ag->sched, .block = ag->block, .tcp = ag->tcp,
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

static void submit_interval(struct agent *ag, uint64_t end_ns)
{
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
		env.body_case = UNDERSTUDY__ENVELOPE__BODY_METRIC_BATCH;
		env.metric_batch = &b->mb;
		if (us_sender_submit(ag->sender, &env, err, sizeof(err)) < 0)
			us_warn("workload %s: %s", w->name, err);
		us_batch_free(b);
		free(b);
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
	for (size_t i = 0; i < ag->cfg.nworkloads; i++)
		if (ag->cgroup_ids[i])
			untrack_cgroup(ag, ag->cgroup_ids[i]);
	ag->cfg = *next;
	memset(ag->cgroup_ids, 0, sizeof(ag->cgroup_ids));
	us_log_set_level(ag->cfg.log_level);
	resolve_cgroups(ag);
	if (us_hello_submit(ag->sender, &ag->cfg, ag->cgroup_ids, msg, msglen) < 0)
		goto cleanup;
	snprintf(msg, msglen, "reloaded %s: %zu workloads", ag->config_path, ag->cfg.nworkloads);
	us_info("%s", msg);
	rc = 0;
cleanup:
	free(next);
	return rc;
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
	case UNDERSTUDY__COMMAND__ACTION_STOP_MIRROR:
		snprintf(msg, sizeof(msg), "traffic mirroring is not built into this agent version");
		break;
	default:
		snprintf(msg, sizeof(msg), "unknown command action %d", cmd->action_case);
		break;
	}
	us_info("command %llu: %s: %s", (unsigned long long)cmd->id, ok ? "done" : "failed", msg);
	if (us_sender_submit_result(ag->sender, cmd->id, ok, msg, err, sizeof(err)) < 0)
		us_warn("command %llu: result not spooled: %s", (unsigned long long)cmd->id, err);
}

static int run(struct agent *ag)
{
	void *zctx = zmq_ctx_new();
	char err[512];
	uint64_t next_interval;
	int rc = 1;

	us_self_telemetry_init(&ag->self);
	if (open_transport(ag, zctx) < 0)
		goto cleanup;
	us_sender_on_command(ag->sender, on_command, ag);
	open_sched(ag);
	open_block(ag);
	open_tcp(ag);
	resolve_cgroups(ag);
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
