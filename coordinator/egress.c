/* Egress guard (egress.h): the pin directory of an instance cgroup under
 * US_EGRESS_PIN_ROOT, loading and attaching bpf/egress.bpf.c the first
 * time, and replacing the allow list. Keeps no state of its own:
 * everything lives in the pinned links and maps, so any process (a
 * restarted coordinator) finds the attachment again; the pins of a cgroup
 * removed without a detach are swept at the next attach. Changes to a pin
 * directory are serialized between processes by an flock on
 * US_EGRESS_PIN_ROOT; the pinning helpers are steer.c's too (bpf_pin.h). */
#include "egress.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "../bpf/egress.h"
#include "bpf_pin.h"
#include "egress.skel.h"

#define NLINKS 4

/* The pins of one cgroup's guard. `allow` is pinned last and removed
 * first: when it exists, the attachment is complete. */
struct pins {
	char dir[64];			/* US_EGRESS_PIN_ROOT "/<20 digits at most>" */
	char link[NLINKS][80];		/* connect4, connect6, sendmsg4, sendmsg6 */
	char counters[80];
	char allow[80];
};

static const char *const link_names[NLINKS] = { "connect4", "connect6", "sendmsg4",
						"sendmsg6" };

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

static void pins_of_id(unsigned long long id, struct pins *p)
{
	snprintf(p->dir, sizeof(p->dir), US_EGRESS_PIN_ROOT "/%llu", id);
	for (int i = 0; i < NLINKS; i++)
		snprintf(p->link[i], sizeof(p->link[i]), US_EGRESS_PIN_ROOT "/%llu/%s", id,
			 link_names[i]);
	snprintf(p->counters, sizeof(p->counters), US_EGRESS_PIN_ROOT "/%llu/counters", id);
	snprintf(p->allow, sizeof(p->allow), US_EGRESS_PIN_ROOT "/%llu/allow", id);
}

/* The pin paths of a cgroup v2 directory, named by its cgroup id (the
 * directory's inode number); 1 when the cgroup does not exist. */
static int pins_of(const char *cgroup, struct pins *p, char *err, size_t errlen)
{
	unsigned long long id;

	if (us_pin_cgroup_id("egress", cgroup, &id, err, errlen))
		return errno == ENOENT ? 1 : -1;
	pins_of_id(id, p);
	return 0;
}

/* The map keys of allow[0..n) into keys. */
static int allow_keys(const struct us_wd_dest *allow, size_t n, struct us_egress_key *keys,
		      char *err, size_t errlen)
{
	if (n > US_EGRESS_MAX_ALLOW)
		return fail(err, errlen, "egress: too many allowed destinations (%zu > %d)", n,
			    US_EGRESS_MAX_ALLOW);
	for (size_t i = 0; i < n; i++) {
		struct in_addr a;

		memset(&keys[i], 0, sizeof(keys[i]));
		if (inet_pton(AF_INET, allow[i].address, &a) != 1)
			return fail(err, errlen, "egress: destination %zu \"%s\": not an IPv4 address",
				    i + 1, allow[i].address);
		keys[i].addr = a.s_addr;
		keys[i].port = htons(allow[i].port);
	}
	return 0;
}

/* Detaches the programs, then removes the pins, allow first. Missing pins
 * are fine. */
static int remove_pins(const struct pins *p, char *err, size_t errlen)
{
	for (int i = 0; i < NLINKS; i++)
		if (us_pin_detach_link("egress", p->link[i], err, errlen))
			return -1;
	if (unlink(p->allow) && errno != ENOENT)
		return fail(err, errlen, "egress: unpin %s: %s", p->allow, strerror(errno));
	if (unlink(p->counters) && errno != ENOENT)
		return fail(err, errlen, "egress: unpin %s: %s", p->counters, strerror(errno));
	for (int i = 0; i < NLINKS; i++)
		if (unlink(p->link[i]) && errno != ENOENT)
			return fail(err, errlen, "egress: unpin %s: %s", p->link[i],
				    strerror(errno));
	if (rmdir(p->dir) && errno != ENOENT)
		return fail(err, errlen, "egress: rmdir %s: %s", p->dir, strerror(errno));
	return 0;
}

/* Whether the link pinned at path has lost its cgroup: the kernel detaches
 * a cgroup's links when the cgroup is freed. false when it cannot tell. */
static bool link_orphaned(const char *path)
{
	struct bpf_link_info info;
	__u32 len = sizeof(info);
	int fd = bpf_obj_get(path);
	bool orphaned;

	if (fd < 0)
		return false;
	memset(&info, 0, sizeof(info));
	orphaned = bpf_obj_get_info_by_fd(fd, &info, &len) == 0 &&
		   info.type == BPF_LINK_TYPE_CGROUP && info.cgroup.cgroup_id == 0;
	close(fd);
	return orphaned;
}

/* With the root locked: removes the pins of guards whose cgroup is gone
 * (removed without a detach: a crashed coordinator, a manual cleanup), so
 * they do not pile up. Best effort: what cannot be removed now is tried
 * again at the next attach. */
static void remove_orphans(void)
{
	DIR *d = opendir(US_EGRESS_PIN_ROOT);
	struct dirent *e;

	if (!d)
		return;
	while ((e = readdir(d))) {
		char ignored[256], *end;
		unsigned long long id;
		struct pins p;

		errno = 0;
		id = strtoull(e->d_name, &end, 10);
		if (e->d_name[0] < '0' || e->d_name[0] > '9' || *end || errno)
			continue;
		pins_of_id(id, &p);
		if (link_orphaned(p.link[0]))
			remove_pins(&p, ignored, sizeof(ignored));
	}
	closedir(d);
}

/* Loads the programs, attaches them to the cgroup and pins links and maps.
 * Pins of an attachment left half made (a crash while pinning) are
 * removed first. Our link fds are closed by egress_bpf__destroy: the pins
 * keep the programs attached. */
static int attach(const char *cgroup, const struct pins *p, char *err, size_t errlen)
{
	struct egress_bpf *skel = NULL;
	struct bpf_link **links[NLINKS];
	struct bpf_program *progs[NLINKS];
	int cgfd = -1, rc = -1;

	if (remove_pins(p, err, errlen))
		goto cleanup;
	skel = egress_bpf__open_and_load();
	if (!skel) {
		fail(err, errlen, "egress: loading bpf/egress.bpf.c: %s", strerror(errno));
		goto cleanup;
	}
	links[0] = &skel->links.egress_connect4;
	links[1] = &skel->links.egress_connect6;
	links[2] = &skel->links.egress_sendmsg4;
	links[3] = &skel->links.egress_sendmsg6;
	progs[0] = skel->progs.egress_connect4;
	progs[1] = skel->progs.egress_connect6;
	progs[2] = skel->progs.egress_sendmsg4;
	progs[3] = skel->progs.egress_sendmsg6;
	cgfd = open(cgroup, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cgfd < 0) {
		fail(err, errlen, "egress: cgroup %s: %s", cgroup, strerror(errno));
		goto cleanup;
	}
	for (int i = 0; i < NLINKS; i++) {
		*links[i] = bpf_program__attach_cgroup(progs[i], cgfd);
		if (!*links[i]) {
			fail(err, errlen, "egress: attaching cgroup/%s to %s: %s", link_names[i],
			     cgroup, strerror(errno));
			goto cleanup;
		}
	}
	if (mkdir(p->dir, 0700) && errno != EEXIST) {
		fail(err, errlen, "egress: bpffs: mkdir %s: %s", p->dir, strerror(errno));
		goto cleanup;
	}
	rc = 0;
	for (int i = 0; i < NLINKS && !rc; i++)
		rc = bpf_link__pin(*links[i], p->link[i]);
	if (!rc)
		rc = bpf_obj_pin(bpf_map__fd(skel->maps.counters), p->counters);
	if (!rc)
		rc = bpf_obj_pin(bpf_map__fd(skel->maps.allow), p->allow);
	if (rc) {
		char undo[256] = "";

		remove_pins(p, undo, sizeof(undo));
		fail(err, errlen, "egress: bpffs: pinning in %s: %s%s%s", p->dir, strerror(-rc),
		     undo[0] ? "; " : "", undo);
		rc = -1;
	}
cleanup:
	if (cgfd >= 0)
		close(cgfd);
	egress_bpf__destroy(skel);
	return rc;
}

static bool key_listed(const struct us_egress_key *k, const struct us_egress_key *keys,
		       size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (keys[i].addr == k->addr && keys[i].port == k->port)
			return true;
	return false;
}

/* Makes the map hold exactly keys[0..n): stale entries go first (they are
 * to be refused anyway), so the map never needs room for both sets. */
static int replace_allow(int fd, const char *path, const struct us_egress_key *keys, size_t n,
			 char *err, size_t errlen)
{
	struct us_egress_key cur, next, stale[US_EGRESS_MAX_ALLOW];
	size_t nstale = 0;
	const uint8_t one = 1;
	const void *prev = NULL;

	while (nstale < US_EGRESS_MAX_ALLOW && bpf_map_get_next_key(fd, prev, &next) == 0) {
		cur = next;
		prev = &cur;
		if (!key_listed(&cur, keys, n))
			stale[nstale++] = cur;
	}
	for (size_t i = 0; i < nstale; i++)
		if (bpf_map_delete_elem(fd, &stale[i]) && errno != ENOENT)
			return fail(err, errlen, "egress: removing from %s: %s", path,
				    strerror(errno));
	for (size_t i = 0; i < n; i++)
		if (bpf_map_update_elem(fd, &keys[i], &one, BPF_ANY))
			return fail(err, errlen, "egress: updating %s: %s", path, strerror(errno));
	return 0;
}

int us_egress_attach(const char *cgroup, const struct us_wd_dest *allow, size_t n, char *err,
		     size_t errlen)
{
	struct us_egress_key keys[US_EGRESS_MAX_ALLOW];
	struct pins p;
	int found = pins_of(cgroup, &p, err, errlen), lock = -1, fd = -1, rc = -1;

	if (found == 1)
		return fail(err, errlen, "egress: cgroup %s: %s", cgroup, strerror(ENOENT));
	if (found < 0 || allow_keys(allow, n, keys, err, errlen) ||
	    us_pin_root_prepare("egress", US_EGRESS_PIN_ROOT, err, errlen))
		goto cleanup;
	lock = us_pin_root_lock("egress", US_EGRESS_PIN_ROOT, err, errlen);
	if (lock == -2)
		fail(err, errlen, "egress: bpffs: %s vanished", US_EGRESS_PIN_ROOT);
	if (lock < 0)
		goto cleanup;
	remove_orphans();
	fd = us_pin_open("egress", p.allow, err, errlen);
	if (fd == -2) {
		if (attach(cgroup, &p, err, errlen))
			goto cleanup;
		fd = us_pin_open("egress", p.allow, err, errlen);
		if (fd == -2)
			fail(err, errlen, "egress: %s missing right after pinning", p.allow);
	}
	if (fd < 0 || replace_allow(fd, p.allow, keys, n, err, errlen))
		goto cleanup;
	rc = 0;
cleanup:
	if (fd >= 0)
		close(fd);
	if (lock >= 0)
		close(lock);
	return rc;
}

int us_egress_detach(const char *cgroup, char *err, size_t errlen)
{
	struct pins p;
	int found = pins_of(cgroup, &p, err, errlen), lock, rc;

	if (found)
		return found == 1 ? 0 : -1;
	lock = us_pin_root_lock("egress", US_EGRESS_PIN_ROOT, err, errlen);
	if (lock == -2)
		return 0;
	if (lock < 0)
		return -1;
	rc = remove_pins(&p, err, errlen);
	close(lock);
	return rc;
}

int us_egress_counts(const char *cgroup, struct us_egress_counts *out, char *err,
		     size_t errlen)
{
	uint64_t *const total[US_EGRESS_CNT_NR] = { &out->allowed, &out->loopback,
						    &out->denied };
	struct pins p;
	int found;

	memset(out, 0, sizeof(*out));
	found = pins_of(cgroup, &p, err, errlen);
	if (found)
		return found == 1 ? 0 : -1;
	return us_pin_sum_counters("egress", p.counters, total, US_EGRESS_CNT_NR, err, errlen);
}
