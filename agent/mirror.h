/* Traffic mirroring for the agent: a thread that owns the capture collector
 * (agent/capture.h) and one replay engine per mirrored workload
 * (agent/replay.h). It frames production requests and responses to measure
 * production's server-side latency per request, hands the request bytes to
 * replay, pairs each request's production and shadow figures, and keeps
 * per-interval histograms, coverage counters and request samples that the
 * agent's main thread collects each interval. A workload measured without
 * a mirror (`requests: true`) is captured and framed the same way, with no
 * replay: production-only samples and no shadow figures.
 *
 * The thread never blocks production: the capture is a ring buffer that the
 * kernel never waits on, and replay drops whole requests when a shadow is
 * slow. The main thread talks to it only through the functions below. */
#ifndef US_MIRROR_H
#define US_MIRROR_H

#include <stddef.h>
#include <stdint.h>

#include "batch.h"
#include "capture.h"
#include "replay.h"
#include "understudy.pb-c.h"

struct us_mirror;

/* One workload's mirroring, as configured or commanded. */
struct us_mirror_spec {
	char workload[128];
	int role;
	uint64_t cgroup_id;          /* 0: not resolved yet (no capture) */
	uint32_t ports[16];          /* service ports whose accepted connections are captured */
	size_t nports;
	struct us_replay_config replay;  /* endpoint "": measure only, no replay */
};

/* One request as the agent reports it (RequestSample on the wire). */
struct us_mirror_sample {
	uint64_t start_ns, end_ns;   /* unix ns */
	uint64_t latency_ns;
	unsigned status_code;
	uint64_t bytes_in, bytes_out;
	uint64_t conn_id;
	uint32_t request_index;
	int truncated;
	int method;                  /* enum http_method, -1 raw */
	int shadow_outcome;          /* UNDERSTUDY__SHADOW_OUTCOME__* */
	uint64_t shadow_latency_ns;
	unsigned shadow_status_code;
	uint64_t shadow_bytes_out;
};

/* Samples kept per workload and interval; beyond, a uniform reservoir. */
#define US_MIRROR_MAX_SAMPLES 20000

int us_mirror_start(const struct us_capture_opts *copts, struct us_mirror **out, char *err,
		    size_t errlen);
void us_mirror_stop(struct us_mirror *m);

/* Starts, changes (spec) or stops (spec NULL) capture and mirroring of
 * workload slot idx (the workload's index in the agent config). Applied by
 * the thread before its next event; err says what is wrong with the spec. */
int us_mirror_set(struct us_mirror *m, size_t idx, const struct us_mirror_spec *spec,
		  char *err, size_t errlen);
int us_mirror_active(struct us_mirror *m, size_t idx);

/* Adds slot idx's figures since the last call to b and resets them. */
void us_mirror_add_figures(struct us_mirror *m, size_t idx, struct us_batch *b);
/* Moves slot idx's samples out (malloc'd array, caller frees); *dropped
 * says how many the reservoir left out. */
size_t us_mirror_take_samples(struct us_mirror *m, size_t idx, struct us_mirror_sample **out,
			      uint64_t *dropped);

/* For self-telemetry: the capture collector (its programs and counters),
 * NULL while no workload is mirrored. Only valid on the main thread
 * between us_mirror_start and us_mirror_stop. */
int us_mirror_capture_counters(struct us_mirror *m, uint64_t out[US_CAP_CNT_NR]);
int us_mirror_prog_fds(struct us_mirror *m, int *fds, const char **names, int max);

/* Parses "20%" or "0.2" into (0, 1]. */
int us_mirror_parse_sample(const char *s, double *out);

#endif
