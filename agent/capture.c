/* Owns the capture BPF skeleton: loading it with the sizes and rodata user
 * space chooses, the cgroup and port maps, the ring buffer consumer and the
 * sweep of connections whose close(2) the programs could not see. */
#include "capture.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "bpf_collector.h"
#include "capture.skel.h"

#define MAX_WORKLOAD_PORTS 64

struct port_set {
	uint32_t workload;
	uint32_t ports[MAX_WORKLOAD_PORTS];
	size_t n;
	int used;
};

struct us_capture {
	struct capture_bpf *skel;
	struct ring_buffer *rb;
	us_capture_fn fn;
	void *ctx;
	int ncpus;
	struct port_set sets[US_CAP_MAX_CGROUPS];
	/* workloads untracked since the last sweep: their connections go */
	uint32_t gone[US_CAP_MAX_CGROUPS];
	size_t ngone;
};

static int on_record(void *ctx, void *data, size_t size)
{
	struct us_capture *c = ctx;
	const struct us_cap_event *ev = data;

	if (size < sizeof(*ev) || sizeof(*ev) + ev->captured > size)
		return 0; /* cannot happen with our programs; never trust sizes */
	c->fn(c->ctx, ev, (const uint8_t *)data + sizeof(*ev));
	return 0;
}

static uint64_t wall_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static int load(struct us_capture *c, const struct us_capture_opts *o)
{
	uint32_t rb = o->ringbuf_bytes ? o->ringbuf_bytes : US_CAP_RINGBUF;
	int rc;

	c->skel = capture_bpf__open();
	if (!c->skel)
		return errno ? -errno : -EINVAL;
	c->skel->rodata->cap_bytes = o->cap_bytes ? o->cap_bytes : 65536;
	if (c->skel->rodata->cap_bytes > US_CAP_CHUNK * US_CAP_MAX_CHUNKS)
		c->skel->rodata->cap_bytes = US_CAP_CHUNK * US_CAP_MAX_CHUNKS;
	/* ids unique across agent restarts: start time in the high bits */
	c->skel->rodata->conn_id_base = wall_us() << 20;
	rc = bpf_map__set_max_entries(c->skel->maps.scratch_area, (uint32_t)c->ncpus);
	if (!rc)
		rc = bpf_map__set_max_entries(c->skel->maps.events, rb);
	if (!rc && o->max_conns)
		rc = bpf_map__set_max_entries(c->skel->maps.conns, o->max_conns);
	if (rc)
		return rc;
	rc = capture_bpf__load(c->skel);
	if (rc)
		return rc;
	return capture_bpf__attach(c->skel);
}

int us_capture_open(const struct us_capture_opts *o, us_capture_fn fn, void *ctx,
		    struct us_capture **out, char *err, size_t errlen)
{
	struct us_capture *c = calloc(1, sizeof(*c));
	int rc = -ENOMEM;

	if (!c)
		goto fail;
	c->fn = fn;
	c->ctx = ctx;
	c->ncpus = libbpf_num_possible_cpus();
	if (c->ncpus <= 0) {
		rc = c->ncpus ? c->ncpus : -EINVAL;
		goto fail;
	}
	rc = load(c, o);
	if (rc) {
		snprintf(err, errlen, "capture programs: load/attach failed: %s", strerror(-rc));
		goto cleanup;
	}
	c->rb = ring_buffer__new(bpf_map__fd(c->skel->maps.events), on_record, c, NULL);
	if (!c->rb) {
		rc = errno ? -errno : -ENOMEM;
		snprintf(err, errlen, "capture ring buffer: %s", strerror(-rc));
		goto cleanup;
	}
	*out = c;
	return 0;
fail:
	snprintf(err, errlen, "capture: %s", strerror(-rc));
cleanup:
	us_capture_destroy(c);
	return rc;
}

void us_capture_destroy(struct us_capture *c)
{
	if (!c)
		return;
	ring_buffer__free(c->rb);
	capture_bpf__destroy(c->skel);
	free(c);
}

static struct port_set *set_of(struct us_capture *c, uint32_t workload, int create)
{
	struct port_set *free_slot = NULL;

	for (size_t i = 0; i < US_CAP_MAX_CGROUPS; i++) {
		if (c->sets[i].used && c->sets[i].workload == workload)
			return &c->sets[i];
		if (!c->sets[i].used && !free_slot)
			free_slot = &c->sets[i];
	}
	if (!create || !free_slot)
		return NULL;
	memset(free_slot, 0, sizeof(*free_slot));
	free_slot->used = 1;
	free_slot->workload = workload;
	return free_slot;
}

static void delete_ports(struct us_capture *c, struct port_set *s)
{
	int fd = bpf_map__fd(c->skel->maps.ports);

	for (size_t i = 0; i < s->n; i++) {
		struct us_cap_port_key k = { .workload = s->workload, .port = s->ports[i] };

		bpf_map_delete_elem(fd, &k);
	}
	s->n = 0;
}

int us_capture_track(struct us_capture *c, uint64_t cgroup_id, uint32_t workload,
		     const uint32_t *ports, size_t nports)
{
	struct port_set *s = set_of(c, workload, 1);
	uint8_t one = 1;
	int rc;

	if (!s || nports > MAX_WORKLOAD_PORTS || !cgroup_id)
		return -EINVAL;
	delete_ports(c, s);
	for (size_t i = 0; i < nports; i++) {
		struct us_cap_port_key k = { .workload = workload, .port = ports[i] };

		rc = bpf_map_update_elem(bpf_map__fd(c->skel->maps.ports), &k, &one, BPF_ANY);
		if (rc)
			return -errno;
		s->ports[s->n++] = ports[i];
	}
	rc = bpf_map_update_elem(bpf_map__fd(c->skel->maps.tracked_cgroups), &cgroup_id,
				 &workload, BPF_ANY);
	return rc ? -errno : 0;
}

int us_capture_untrack(struct us_capture *c, uint64_t cgroup_id, uint32_t workload)
{
	struct port_set *s = set_of(c, workload, 0);

	bpf_map_delete_elem(bpf_map__fd(c->skel->maps.tracked_cgroups), &cgroup_id);
	if (s) {
		delete_ports(c, s);
		s->used = 0;
	}
	if (c->ngone < US_CAP_MAX_CGROUPS)
		c->gone[c->ngone++] = workload;
	return 0;
}

int us_capture_fd(const struct us_capture *c)
{
	return ring_buffer__epoll_fd(c->rb);
}

int us_capture_poll(struct us_capture *c, int timeout_ms)
{
	int n = 0, more;

	/* the programs wake us only when the ring is filling up (see
	 * bpf/capture.bpf.c), so a wait ends in a consume either way */
	if (timeout_ms) {
		n = ring_buffer__poll(c->rb, timeout_ms);
		if (n < 0 && n != -EINTR)
			return n;
		if (n < 0)
			n = 0;
	}
	more = ring_buffer__consume(c->rb);
	if (more < 0)
		return more == -EINTR ? n : more;
	return n + more;
}

/* Whether /proc/TGID/fd/FD is still the socket with this inode. */
static int still_open(const struct us_cap_conn_key *k, uint64_t inode)
{
	char path[64];
	struct stat st;

	snprintf(path, sizeof(path), "/proc/%u/fd/%u", k->tgid, k->fd);
	if (stat(path, &st) < 0)
		return 0;
	return S_ISSOCK(st.st_mode) && (uint64_t)st.st_ino == inode;
}

static int workload_gone(const struct us_capture *c, uint32_t workload)
{
	for (size_t i = 0; i < c->ngone; i++)
		if (c->gone[i] == workload)
			return 1;
	return 0;
}

int us_capture_sweep(struct us_capture *c)
{
	int fd = bpf_map__fd(c->skel->maps.conns);
	struct us_cap_conn_key key, next, *prev = NULL;
	int closed = 0;

	while (bpf_map_get_next_key(fd, prev, &next) == 0) {
		struct us_cap_conn v;

		key = next;
		prev = &key;
		if (bpf_map_lookup_elem(fd, &key, &v) < 0)
			continue;
		if (still_open(&key, v.inode) && !workload_gone(c, v.workload))
			continue;
		/* a close racing with us deletes first: only the deleter reports */
		if (bpf_map_delete_elem(fd, &key) < 0)
			continue;
		{
			struct us_cap_event ev = {
				.conn_id = v.conn_id, .type = US_CAP_CLOSE, .workload = v.workload,
				.gap = v.lost, .tgid = key.tgid, .fd = key.fd, .flags = US_CAP_F_LAST,
			};
			struct timespec ts;

			clock_gettime(CLOCK_MONOTONIC, &ts);
			ev.ts_ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
			c->fn(c->ctx, &ev, NULL);
		}
		closed++;
	}
	c->ngone = 0;
	return closed;
}

size_t us_capture_conns(const struct us_capture *c)
{
	int fd = bpf_map__fd(c->skel->maps.conns);
	struct us_cap_conn_key key, next, *prev = NULL;
	size_t n = 0;

	while (bpf_map_get_next_key(fd, prev, &next) == 0) {
		key = next;
		prev = &key;
		n++;
	}
	return n;
}

int us_capture_counters(const struct us_capture *c, uint64_t out[US_CAP_CNT_NR])
{
	uint64_t *vals = calloc((size_t)c->ncpus, sizeof(*vals));
	int fd = bpf_map__fd(c->skel->maps.counters), rc = 0;

	if (!vals)
		return -ENOMEM;
	for (uint32_t slot = 0; slot < US_CAP_CNT_NR; slot++) {
		out[slot] = 0;
		if (bpf_map_lookup_elem(fd, &slot, vals) < 0) {
			rc = -errno;
			break;
		}
		for (int cpu = 0; cpu < c->ncpus; cpu++)
			out[slot] += vals[cpu];
	}
	free(vals);
	return rc;
}

int us_capture_prog_fds(const struct us_capture *c, int *fds, const char **names, int max)
{
	return us_collector_prog_fds(c->skel->obj, fds, names, max);
}
