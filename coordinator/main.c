/* understudy-coordinator: loads the config, opens the store, authenticates
 * agents and runs the ingest loop until SIGINT/SIGTERM. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zmq.h>

#include "api_server.h"
#include "auth.h"
#include "clock.h"
#include "controller.h"
#include "coord_config.h"
#include "ingest.h"
#include "keys.h"
#include "log.h"
#include "metrics_http.h"
#include "rollup.h"
#include "store.h"

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static void usage(FILE *out)
{
	fprintf(out,
		"usage: understudy-coordinator [--config FILE] [--log-level LEVEL]\n"
		"\n"
		"Receives telemetry from understudy agents over ZeroMQ (CURVE), stores it\n"
		"in SQLite under the data directory and acks each envelope once durable.\n"
		"\n"
		"  -c, --config FILE     configuration (default /etc/understudy/coordinator.yaml)\n"
		"  -l, --log-level LEVEL debug, info, warn or error (overrides the config)\n"
		"  -V, --version         print the version\n"
		"  -h, --help            this help\n");
}

static int run(const struct us_coord_config *cfg)
{
	struct us_ingest_config icfg = {
		.listen = cfg->listen,
		.heartbeat_timeout_ns = cfg->heartbeat_timeout_ns,
		.batch_max = cfg->batch_max,
		.future_slack_ns = 86400 * US_NS_PER_SEC,
		.command_retry_ns = 5 * US_NS_PER_SEC,
	};
	struct us_store_options sopt = { .synchronous_full = cfg->store_sync_full };
	struct us_store *store = NULL;
	struct us_auth *auth = NULL;
	struct us_ingest *ingest = NULL;
	struct us_api_server *api = NULL;
	struct us_rollup *rollup = NULL;
	struct us_metrics_http *metrics = NULL;
	struct us_controller *controller = NULL;
	struct us_rollup_config rcfg;
	void *ctx = NULL;
	char err[1024], db_path[US_PATH_MAX + 32];
	int rc = 1;

	if (us_keys_load_pair(cfg->secret_key, &icfg.keys, err, sizeof(err)) < 0) {
		us_error("coordinator key: %s (create one with: understudy keygen --out DIR coordinator)", err);
		goto cleanup;
	}
	if (mkdir(cfg->data_dir, 0750) < 0 && errno != EEXIST) {
		us_error("data directory %s: %s", cfg->data_dir, strerror(errno));
		goto cleanup;
	}
	snprintf(db_path, sizeof(db_path), "%s/understudy.db", cfg->data_dir);
	store = us_store_open(db_path, &sopt, err, sizeof(err));
	if (!store) {
		us_error("%s", err);
		goto cleanup;
	}
	ctx = zmq_ctx_new();
	auth = us_auth_open(ctx, cfg->agents_dir, err, sizeof(err));
	if (!auth) {
		us_error("%s", err);
		goto cleanup;
	}
	ingest = us_ingest_open(ctx, &icfg, store, auth, err, sizeof(err));
	if (!ingest) {
		us_error("%s", err);
		goto cleanup;
	}
	/* after the store exists: the API reads it through its own connection */
	api = us_api_server_start(&(struct us_api_server_config){
		.socket_path = cfg->api.socket, .tcp_listen = cfg->api.tcp_listen,
		.tls_cert = cfg->api.tls_cert, .tls_key = cfg->api.tls_key,
		.token_file = cfg->api.token_file, .db_path = db_path,
		.workloads_dir = cfg->controller.workloads_dir,
		.policies_path = cfg->controller.policies,
		.catalog_path = cfg->provider.local.catalog }, err, sizeof(err));
	if (!api) {
		us_error("%s", err);
		goto cleanup;
	}
	us_info("API on unix:%s%s%s", cfg->api.socket, cfg->api.tcp_listen[0] ? " and TLS " : "",
		cfg->api.tcp_listen);
	/* its own connection and thread: rollups never delay an ack */
	us_rollup_config_defaults(&rcfg);
	rcfg.raw_retention_ns = cfg->retention.raw_ns;
	rcfg.minute_retention_ns = cfg->retention.minute_ns;
	rcfg.hour_retention_ns = cfg->retention.hour_ns;
	rcfg.requests_retention_ns = cfg->retention.requests_ns;
	rollup = us_rollup_start(db_path, &rcfg, err, sizeof(err));
	if (!rollup) {
		us_error("%s", err);
		goto cleanup;
	}
	/* its own thread and read-only connection: a scrape never delays an ack */
	if (cfg->metrics.listen[0]) {
		metrics = us_metrics_http_start(&(struct us_metrics_http_config){
			.listen = cfg->metrics.listen, .db_path = db_path,
			.read_timeout_ns = cfg->metrics.read_timeout_ns }, err, sizeof(err));
		if (!metrics) {
			us_error("%s", err);
			goto cleanup;
		}
		us_info("metrics on http://%s/metrics (port %u)", cfg->metrics.listen,
			us_metrics_http_port(metrics));
	}
	/* its own thread and connection: provider calls never delay an ack */
	controller = us_controller_start(&(struct us_controller_config){
		.db_path = db_path, .data_dir = cfg->data_dir,
		.workloads_dir = cfg->controller.workloads_dir,
		.policies_path = cfg->controller.policies, .agent = cfg->controller.agent,
		.agent_dropin_dir = cfg->controller.agent_dropin_dir,
		.interval_ns = cfg->controller.interval_ns,
		.plan_interval_ns = cfg->controller.plan_interval_ns, .provider = &cfg->provider },
		err, sizeof(err));
	if (!controller) {
		us_error("%s", err);
		goto cleanup;
	}
	us_info("understudy-coordinator %s listening on %s, store %s, %zu agent keys in %s",
		US_VERSION, cfg->listen, db_path, us_auth_key_count(auth), cfg->agents_dir);
	while (!stop_requested)
		if (us_ingest_run(ingest, 100) < 0 && !stop_requested) {
			us_error("ingest loop: %s", zmq_strerror(zmq_errno()));
			goto cleanup;
		}
	us_ingest_flush(ingest);
	{
		const struct us_ingest_stats *s = us_ingest_get_stats(ingest);

		us_info("stopping: %llu envelopes received, %llu stored, %llu duplicates, "
			"%llu commits", (unsigned long long)s->received,
			(unsigned long long)s->stored, (unsigned long long)s->duplicates,
			(unsigned long long)s->commits);
	}
	rc = 0;
cleanup:
	us_controller_stop(controller);
	us_metrics_http_stop(metrics);
	us_rollup_stop(rollup);
	us_api_server_stop(api);
	us_ingest_close(ingest);
	us_auth_close(auth);
	if (ctx)
		zmq_ctx_term(ctx);
	us_store_close(store);
	return rc;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "log-level", required_argument, NULL, 'l' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *config_path = "/etc/understudy/coordinator.yaml";
	const char *level = NULL;
	struct us_coord_config cfg;
	struct sigaction sa = { .sa_handler = on_signal };
	char err[1024];
	int c;

	while ((c = getopt_long(argc, argv, "c:l:Vh", opts, NULL)) != -1) {
		switch (c) {
		case 'c': config_path = optarg; break;
		case 'l': level = optarg; break;
		case 'V': printf("understudy-coordinator %s\n", US_VERSION); return 0;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	us_coord_config_defaults(&cfg);
	if (us_coord_config_load(config_path, &cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "understudy-coordinator: %s\n", err);
		return 2;
	}
	if (level && us_log_parse_level(level, &cfg.log_level) < 0) {
		fprintf(stderr, "understudy-coordinator: --log-level: expected debug, info, warn or error\n");
		return 2;
	}
	us_log_set_level(cfg.log_level);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	return run(&cfg);
}
