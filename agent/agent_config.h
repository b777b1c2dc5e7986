/* The agent's configuration file (/etc/understudy/agent.yaml): identity,
 * coordinator, spool, intervals and the workloads it observes. */
#ifndef US_AGENT_CONFIG_H
#define US_AGENT_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "envelope.h"
#include "log.h"

#define US_PATH_MAX 4096
#define US_MAX_WORKLOADS 256
#define US_MAX_PORTS 16
#define US_MAX_LABELS 16
#define US_MAX_SELECT 32

/* `mirror:` of a workload (agent/mirror.h, agent/replay.h). */
struct us_mirror_config {
	bool enabled;
	char endpoint[256];          /* shadow host:port */
	bool raw;                    /* mode: raw (TCP bursts) instead of http */
	double sample;               /* fraction of connections, (0, 1] */
	uint32_t scale;              /* copies of each request */
	bool allow_writes;
	char host[256];              /* Host header rewrite */
	uint64_t conn_buffer;        /* bytes queued per shadow connection */
	uint64_t total_buffer;       /* bytes queued over the workload's shadow connections */
	uint64_t response_timeout_ns;
};

struct us_workload_config {
	char name[128];
	int role;                    /* UNDERSTUDY__ROLE__PRODUCTION or __SHADOW */
	char cgroup[US_PATH_MAX];    /* cgroup v2 directory (from unit when set) */
	char unit[256];              /* systemd unit; "" when cgroup was given */
	uint32_t ports[US_MAX_PORTS];
	size_t nports;
	char label_keys[US_MAX_LABELS][64];
	char label_values[US_MAX_LABELS][128];
	size_t nlabels;
	/* application metrics (agent/scrape.h); empty url: none */
	char metrics_url[512];
	char metrics_select[US_MAX_SELECT][128];	/* "name" or "prefix*" */
	size_t nselect;
	/* capture the service ports and report each request's production
	 * latency and status (agent/mirror.h), without replay; a mirror
	 * implies it */
	bool requests;
	struct us_mirror_config mirror;
};

struct us_agent_config {
	char agent_id[US_AGENT_ID_MAX + 1];
	char key[US_PATH_MAX];
	char endpoint[256];
	char coordinator_key[US_PATH_MAX];
	char spool_dir[US_PATH_MAX];
	uint64_t spool_max_bytes;
	uint64_t interval_ns;
	uint64_t heartbeat_ns;
	uint64_t ack_timeout_ns;
	uint32_t window;
	uint64_t window_bytes;
	enum us_log_level log_level;
	/* drop-in workloads: one `workloads:` item per *.yaml file, by name
	 * order, after the main file's; "" none */
	char workloads_dir[US_PATH_MAX];
	struct us_workload_config workloads[US_MAX_WORKLOADS];
	size_t nworkloads;
	/* capture: (bpf/capture.bpf.c), used when a workload is mirrored */
	uint64_t capture_cap_bytes;      /* request bytes copied per syscall */
	uint64_t capture_ring_bytes;     /* ring buffer size, a power of two */
};

void us_agent_config_defaults(struct us_agent_config *c);
/* The file, then its workloads_dir: an error anywhere (named FILE:LINE)
 * fails the whole load; a workloads_dir that does not exist adds nothing. */
int us_agent_config_load(const char *path, struct us_agent_config *c, char *err, size_t errlen);

#endif
