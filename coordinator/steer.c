/* Connect-time traffic steering (steer.h): checking the request, the pin
 * directory of a clients' cgroup under US_STEER_PIN_ROOT, loading and
 * attaching bpf/steer.bpf.c the first time, and the services map updates.
 * Keeps no state of its own: everything lives in the pinned links and maps,
 * so any process (a restarted coordinator) finds the attachment again.
 * Changes to a pin directory are serialized between processes by an flock
 * on US_STEER_PIN_ROOT (bpf_pin.h). */
#include "steer.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "../bpf/steer.h"
#include "bpf_pin.h"
#include "steer.skel.h"

_Static_assert(US_STEER_MAX_BACKENDS == US_MAX_BACKENDS,
	       "the BPF map value must hold US_MAX_BACKENDS backends");

/* The pins of one cgroup's attachment. `services` is pinned last and
 * removed first: when it exists, the attachment is complete. */
struct pins {
	char dir[64];		/* US_STEER_PIN_ROOT "/<20 digits at most>" */
	char link4[80];		/* cgroup/connect4 link */
	char link6[80];		/* cgroup/connect6 link */
	char counters[80];
	char services[80];
};

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

/* The pin paths of a cgroup v2 directory, named by its cgroup id. */
static int pins_of(const char *cgroup, struct pins *p, char *err, size_t errlen)
{
	unsigned long long id;

	if (us_pin_cgroup_id("steer", cgroup, &id, err, errlen))
		return -1;
	snprintf(p->dir, sizeof(p->dir), US_STEER_PIN_ROOT "/%llu", id);
	snprintf(p->link4, sizeof(p->link4), US_STEER_PIN_ROOT "/%llu/link4", id);
	snprintf(p->link6, sizeof(p->link6), US_STEER_PIN_ROOT "/%llu/link6", id);
	snprintf(p->counters, sizeof(p->counters), US_STEER_PIN_ROOT "/%llu/counters", id);
	snprintf(p->services, sizeof(p->services), US_STEER_PIN_ROOT "/%llu/services", id);
	return 0;
}

static int parse_ipv4(const char *s, uint32_t *addr)
{
	struct in_addr a;

	if (inet_pton(AF_INET, s, &a) != 1)
		return -1;
	*addr = a.s_addr;
	return 0;
}

static int service_key(const char *service, uint16_t port, struct us_steer_key *key,
		       char *err, size_t errlen)
{
	memset(key, 0, sizeof(*key));
	if (parse_ipv4(service, &key->addr))
		return fail(err, errlen, "steer: service \"%s\": not an IPv4 address", service);
	if (!port)
		return fail(err, errlen, "steer: service %s: port 0", service);
	key->port = htons(port);
	return 0;
}

static int backend_set(const struct us_backend *b, size_t n, struct us_steer_value *v,
		       char *err, size_t errlen)
{
	uint64_t total = 0;

	memset(v, 0, sizeof(*v));
	if (n > US_STEER_MAX_BACKENDS)
		return fail(err, errlen, "steer: too many backends (%zu > %d)", n,
			    US_STEER_MAX_BACKENDS);
	for (size_t i = 0; i < n; i++) {
		if (parse_ipv4(b[i].address, &v->b[i].addr))
			return fail(err, errlen, "steer: backend %zu \"%s\": not an IPv4 address",
				    i + 1, b[i].address);
		if (!b[i].port)
			return fail(err, errlen, "steer: backend %zu %s: port 0", i + 1,
				    b[i].address);
		v->b[i].port = htons(b[i].port);
		v->b[i].weight = b[i].weight;
		total += b[i].weight;
	}
	if (total > UINT32_MAX)
		return fail(err, errlen, "steer: weights sum to %llu, more than %u",
			    (unsigned long long)total, UINT32_MAX);
	v->n = (uint32_t)n;
	v->total = (uint32_t)total;
	return 0;
}

/* Detaches the programs, then removes the pins, services first. Missing
 * pins are fine. */
static int remove_pins(const struct pins *p, char *err, size_t errlen)
{
	const char *files[] = { p->services, p->counters, p->link4, p->link6 };

	if (us_pin_detach_link("steer", p->link4, err, errlen) ||
	    us_pin_detach_link("steer", p->link6, err, errlen))
		return -1;
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
		if (unlink(files[i]) && errno != ENOENT)
			return fail(err, errlen, "steer: unpin %s: %s", files[i], strerror(errno));
	if (rmdir(p->dir) && errno != ENOENT)
		return fail(err, errlen, "steer: rmdir %s: %s", p->dir, strerror(errno));
	return 0;
}

/* Loads the programs, attaches them to the cgroup and pins links and maps.
 * Pins of an attachment left half made (a crash while pinning) are
 * removed first. Our link fds are closed by steer_bpf__destroy: the pins
 * keep the programs attached. */
static int attach(const char *cgroup, const struct pins *p, char *err, size_t errlen)
{
	struct steer_bpf *skel = NULL;
	int cgfd = -1, rc = -1;

	if (remove_pins(p, err, errlen))
		goto cleanup;
	skel = steer_bpf__open_and_load();
	if (!skel) {
		fail(err, errlen, "steer: loading bpf/steer.bpf.c: %s", strerror(errno));
		goto cleanup;
	}
	cgfd = open(cgroup, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cgfd < 0) {
		fail(err, errlen, "steer: cgroup %s: %s", cgroup, strerror(errno));
		goto cleanup;
	}
	skel->links.steer_connect4 = bpf_program__attach_cgroup(skel->progs.steer_connect4, cgfd);
	if (skel->links.steer_connect4)
		skel->links.steer_connect6 =
			bpf_program__attach_cgroup(skel->progs.steer_connect6, cgfd);
	if (!skel->links.steer_connect4 || !skel->links.steer_connect6) {
		fail(err, errlen, "steer: attaching cgroup/connect%d to %s: %s",
		     skel->links.steer_connect4 ? 6 : 4, cgroup, strerror(errno));
		goto cleanup;
	}
	if (mkdir(p->dir, 0700) && errno != EEXIST) {
		fail(err, errlen, "steer: bpffs: mkdir %s: %s", p->dir, strerror(errno));
		goto cleanup;
	}
	if ((rc = bpf_link__pin(skel->links.steer_connect4, p->link4)) ||
	    (rc = bpf_link__pin(skel->links.steer_connect6, p->link6)) ||
	    (rc = bpf_obj_pin(bpf_map__fd(skel->maps.counters), p->counters)) ||
	    (rc = bpf_obj_pin(bpf_map__fd(skel->maps.services), p->services))) {
		char undo[256] = "";

		remove_pins(p, undo, sizeof(undo));
		fail(err, errlen, "steer: bpffs: pinning in %s: %s%s%s", p->dir, strerror(-rc),
		     undo[0] ? "; " : "", undo);
		rc = -1;
	}
cleanup:
	if (cgfd >= 0)
		close(cgfd);
	steer_bpf__destroy(skel);
	return rc;
}

int us_steer_set(const char *clients_cgroup, const char *service, uint16_t port,
		 const struct us_backend *b, size_t n, char *err, size_t errlen)
{
	struct us_steer_key key;
	struct us_steer_value v;
	struct pins p;
	int lock = -1, fd = -1, rc = -1;

	if (pins_of(clients_cgroup, &p, err, errlen) ||
	    service_key(service, port, &key, err, errlen) ||
	    backend_set(b, n, &v, err, errlen) ||
	    us_pin_root_prepare("steer", US_STEER_PIN_ROOT, err, errlen))
		goto cleanup;
	lock = us_pin_root_lock("steer", US_STEER_PIN_ROOT, err, errlen);
	if (lock == -2)
		fail(err, errlen, "steer: bpffs: %s vanished", US_STEER_PIN_ROOT);
	if (lock < 0)
		goto cleanup;
	fd = us_pin_open("steer", p.services, err, errlen);
	if (fd == -2) {
		if (attach(clients_cgroup, &p, err, errlen))
			goto cleanup;
		fd = us_pin_open("steer", p.services, err, errlen);
		if (fd == -2)
			fail(err, errlen, "steer: %s missing right after pinning", p.services);
	}
	if (fd < 0)
		goto cleanup;
	/* the whole set in one update under the element's lock: a connect
	 * sees the old set or the new one (steer.bpf.c) */
	v.key = key;
	if (bpf_map_update_elem(fd, &key, &v, BPF_F_LOCK)) {
		fail(err, errlen, "steer: updating %s for %s:%u: %s", p.services, service,
		     port, strerror(errno));
		goto cleanup;
	}
	rc = 0;
cleanup:
	if (fd >= 0)
		close(fd);
	if (lock >= 0)
		close(lock);
	return rc;
}

int us_steer_get(const char *clients_cgroup, const char *service, uint16_t port,
		 struct us_backend *b, size_t max, size_t *n, char *err, size_t errlen)
{
	struct us_steer_key key;
	struct us_steer_value v;
	struct pins p;
	int fd = -1, rc = -1;

	*n = 0;
	if (pins_of(clients_cgroup, &p, err, errlen) ||
	    service_key(service, port, &key, err, errlen))
		goto cleanup;
	fd = us_pin_open("steer", p.services, err, errlen);
	if (fd == -2)
		rc = 0;
	if (fd < 0)
		goto cleanup;
	if (bpf_map_lookup_elem_flags(fd, &key, &v, BPF_F_LOCK)) {
		if (errno == ENOENT)
			rc = 0;
		else
			fail(err, errlen, "steer: reading %s: %s", p.services, strerror(errno));
		goto cleanup;
	}
	if (v.n > max || v.n > US_STEER_MAX_BACKENDS) {
		fail(err, errlen, "steer: %s:%u has %u backends, room for %zu", service, port,
		     v.n, max);
		goto cleanup;
	}
	for (uint32_t i = 0; i < v.n; i++) {
		struct in_addr a = { .s_addr = v.b[i].addr };

		memset(&b[i], 0, sizeof(b[i]));
		inet_ntop(AF_INET, &a, b[i].address, sizeof(b[i].address));
		b[i].port = ntohs(v.b[i].port);
		b[i].weight = v.b[i].weight;
	}
	*n = v.n;
	rc = 0;
cleanup:
	if (fd >= 0)
		close(fd);
	return rc;
}

static int map_is_empty(int fd)
{
	struct us_steer_key next;

	return bpf_map_get_next_key(fd, NULL, &next) && errno == ENOENT;
}

int us_steer_clear(const char *clients_cgroup, const char *service, uint16_t port,
		   char *err, size_t errlen)
{
	struct us_steer_key key;
	struct pins p;
	int lock = -1, fd = -1, rc = -1;

	if (pins_of(clients_cgroup, &p, err, errlen) ||
	    service_key(service, port, &key, err, errlen))
		goto cleanup;
	lock = us_pin_root_lock("steer", US_STEER_PIN_ROOT, err, errlen);
	if (lock == -2)
		rc = 0;
	if (lock < 0)
		goto cleanup;
	fd = us_pin_open("steer", p.services, err, errlen);
	if (fd == -2)
		rc = 0;
	if (fd < 0)
		goto cleanup;
	if (bpf_map_delete_elem(fd, &key) && errno != ENOENT) {
		fail(err, errlen, "steer: removing %s:%u from %s: %s", service, port, p.services,
		     strerror(errno));
		goto cleanup;
	}
	if (map_is_empty(fd) && remove_pins(&p, err, errlen))
		goto cleanup;
	rc = 0;
cleanup:
	if (fd >= 0)
		close(fd);
	if (lock >= 0)
		close(lock);
	return rc;
}

int us_steer_counts(const char *clients_cgroup, struct us_steer_counts *out, char *err,
		    size_t errlen)
{
	uint64_t *const total[US_STEER_CNT_NR] = { &out->steered, &out->passthrough,
						   &out->failed };
	struct pins p;

	memset(out, 0, sizeof(*out));
	if (pins_of(clients_cgroup, &p, err, errlen))
		return -1;
	return us_pin_sum_counters("steer", p.counters, total, US_STEER_CNT_NR, err, errlen);
}
