/* TCP RTT, retransmits and connection lifetimes per cgroup v2, from
 * bpf/tcp.bpf.c. Events are attributed to the cgroup of the socket (the
 * creator's cgroup; an accepted socket inherits its listener's), not to the
 * task current when a softirq fires.
 *
 * us_tcp_open() loads and attaches the programs (tp_btf, or their raw_tp
 * twins when tp_btf does not load); us_tcp_track() starts measuring a
 * cgroup; us_tcp_drain() hands every measured cgroup's figures since the
 * previous drain (or since it was tracked) to a visitor. Call
 * us_bpf_env_prepare() first. Not thread-safe: one owner per collector.
 * Functions return 0 or a negative errno. */
#ifndef US_TCP_COLLECTOR_H
#define US_TCP_COLLECTOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hist.h"

struct us_tcp;

struct us_tcp_opts {
	bool track_all;		/* measure every cgroup, not only tracked ones (tests) */
	bool force_raw_tp;	/* do not try tp_btf (tests of the fallback) */
	/* cgroups measured at once; 0 = 64. The histogram map is preallocated:
	 * 2 x 15 KiB per cgroup per possible CPU */
	uint32_t max_cgroups;
	uint32_t max_conns;	/* open connections of tracked cgroups; 0 = 65536 */
};

struct us_tcp_cgroup_stats {
	uint64_t cgroup_id;
	bool tracked;			/* false: seen only because of track_all */
	struct us_hist rtt_ns;		/* smoothed RTT at each received segment */
	struct us_hist lifetime_ns;	/* ESTABLISHED -> CLOSE, of closed connections */
	uint64_t retransmits;		/* segments retransmitted */
	uint64_t conns_opened;		/* connections established (active or passive) */
	uint64_t conns_closed;		/* established connections closed */
	uint64_t resets;		/* RSTs sent or received on its sockets */
};

/* Failed map operations in the BPF programs, cumulative since open. */
struct us_tcp_counters {
	uint64_t start_map_full;	/* a connection's open time was dropped */
	uint64_t hist_map_full;		/* track_all: a cgroup's keys could not be created */
	uint64_t hist_key_missing;	/* event for a cgroup being (un)tracked, dropped */
};

/* Called once per measured cgroup; st is valid only during the call.
 * A non-zero return stops the drain and is returned by us_tcp_drain(). */
typedef int (*us_tcp_visit_fn)(void *ctx, const struct us_tcp_cgroup_stats *st);

int us_tcp_open(const struct us_tcp_opts *opts, struct us_tcp **out, char *err,
		size_t errlen);
/* "tp_btf" or "raw_tp" */
const char *us_tcp_attach_mode(const struct us_tcp *t);
/* why tp_btf is not in use, "" when it is */
const char *us_tcp_fallback_reason(const struct us_tcp *t);
/* -E2BIG when max_cgroups are already tracked */
int us_tcp_track(struct us_tcp *t, uint64_t cgroup_id);
/* figures since the last drain are discarded; drain first to keep them */
int us_tcp_untrack(struct us_tcp *t, uint64_t cgroup_id);
int us_tcp_drain(struct us_tcp *t, us_tcp_visit_fn fn, void *ctx);
int us_tcp_counters(struct us_tcp *t, struct us_tcp_counters *out);
/* Loaded programs' fds and names (valid while t lives), up to max;
 * returns how many, for run-count/run-time stats (self_telemetry.c). */
int us_tcp_prog_fds(const struct us_tcp *t, int *fds, const char **names, int max);
void us_tcp_destroy(struct us_tcp *t);

#endif
