/* The capture collector: loads bpf/capture.bpf.c, says which workloads'
 * connections to capture (cgroup + service ports), and hands the ring
 * buffer's records to a callback, in the order the kernel produced them.
 *
 * Not thread-safe: one owner (the mirror thread). Call
 * us_bpf_env_prepare() first. */
#ifndef US_CAPTURE_H
#define US_CAPTURE_H

#include <stddef.h>
#include <stdint.h>

#include <linux/types.h>

#include "../bpf/capture.h"

struct us_capture;

struct us_capture_opts {
	uint32_t cap_bytes;        /* request bytes copied per syscall; 0 = 64 KiB */
	uint32_t ringbuf_bytes;    /* power of two; 0 = US_CAP_RINGBUF */
	uint32_t max_conns;        /* 0 = US_CAP_MAX_CONNS */
};

/* One record: the header, and `captured` bytes at data. */
typedef void (*us_capture_fn)(void *ctx, const struct us_cap_event *ev, const uint8_t *data);

int us_capture_open(const struct us_capture_opts *o, us_capture_fn fn, void *ctx,
		    struct us_capture **out, char *err, size_t errlen);
void us_capture_destroy(struct us_capture *c);

/* Capture connections accepted by tasks of cgroup_id on these local ports,
 * reported under `workload`. Replaces the workload's previous ports. */
int us_capture_track(struct us_capture *c, uint64_t cgroup_id, uint32_t workload,
		     const uint32_t *ports, size_t nports);
/* Stops new captures for the cgroup; its open connections are closed (a
 * US_CAP_CLOSE record each) at the next us_capture_sweep(). */
int us_capture_untrack(struct us_capture *c, uint64_t cgroup_id, uint32_t workload);

/* The ring buffer's fd, readable when records wait. */
int us_capture_fd(const struct us_capture *c);
/* Delivers waiting records, after waiting at most timeout_ms for a wakeup
 * (0: no wait). The programs wake the consumer only when the ring is a
 * quarter full, so callers poll this every few milliseconds. Returns the
 * number delivered or a negative errno. */
int us_capture_poll(struct us_capture *c, int timeout_ms);

/* Forgets tracked connections whose process is gone, whose fd now holds
 * another file (closed without close(2): close_range, exec), or whose
 * workload was untracked; delivers a synthesized US_CAP_CLOSE for each.
 * Returns how many. */
int us_capture_sweep(struct us_capture *c);
/* Tracked connections now (entries in the kernel map). */
size_t us_capture_conns(const struct us_capture *c);

/* Kernel counter totals (enum us_cap_counter), summed over CPUs. */
int us_capture_counters(const struct us_capture *c, uint64_t out[US_CAP_CNT_NR]);
/* Loaded programs, for self-telemetry. */
int us_capture_prog_fds(const struct us_capture *c, int *fds, const char **names, int max);

#endif
