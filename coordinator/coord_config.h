/* The coordinator's configuration file (/etc/understudy/coordinator.yaml):
 * what it holds, its defaults, and its validation. */
#ifndef US_COORD_CONFIG_H
#define US_COORD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "log.h"
#include "provider.h"

#define US_PATH_MAX 4096

struct us_coord_config {
	char listen[256];            /* agents connect here (ZeroMQ endpoint) */
	char data_dir[US_PATH_MAX];  /* store lives at data_dir/understudy.db */
	char secret_key[US_PATH_MAX];
	char agents_dir[US_PATH_MAX];
	uint64_t heartbeat_timeout_ns;
	uint32_t batch_max;
	bool store_sync_full;
	enum us_log_level log_level;
	struct {                     /* the gRPC API (coordinator/api_server.c) */
		char socket[US_PATH_MAX];    /* unix socket, mode 0660 */
		char tcp_listen[256];        /* host:port, "" = no TCP listener */
		char tls_cert[US_PATH_MAX];  /* PEM; required with tcp_listen */
		char tls_key[US_PATH_MAX];
		char token_file[US_PATH_MAX]; /* bearer token; required with tcp_listen */
	} api;
	struct {                     /* retention (coordinator/rollup.c) */
		uint64_t raw_ns;             /* raw points, default 48h */
		uint64_t minute_ns;          /* 1-minute rollups, default 35d */
		uint64_t hour_ns;            /* 1-hour rollups, default 400d */
		uint64_t requests_ns;        /* request_samples, default 7d */
	} retention;
	struct {                     /* OpenMetrics endpoint (coordinator/metrics_http.c) */
		char listen[256];            /* host:port, "" = off; default 127.0.0.1:9461 */
		uint64_t read_timeout_ns;    /* to send a request head, default 5s */
	} metrics;
	struct {                     /* the migration controller (coordinator/controller.c) */
		char workloads_dir[US_PATH_MAX]; /* workload definitions NAME.yaml */
		char policies[US_PATH_MAX];      /* policies file; missing = defaults */
		char agent[128];                 /* agent measuring local instances; "" = none */
		char agent_dropin_dir[US_PATH_MAX]; /* that agent's workloads_dir */
		uint64_t interval_ns;            /* between passes, default 500ms */
		uint64_t plan_interval_ns;       /* capacity plans recomputed, default 6h */
	} controller;
	struct us_provider_config provider;
};

void us_coord_config_defaults(struct us_coord_config *c);
int us_coord_config_load(const char *path, struct us_coord_config *c, char *err, size_t errlen);

#endif
