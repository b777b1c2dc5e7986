/* Pinned BPF attachments of cgroups (bpf_pin.h): the helpers steer.c and
 * egress.c share. No state: everything is in bpffs. */
#include "bpf_pin.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/magic.h>

/* Formats err and returns -1, errno left as it was. */
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	int saved = errno;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	errno = saved;
	return -1;
}

int us_pin_cgroup_id(const char *what, const char *cgroup, unsigned long long *id, char *err,
		     size_t errlen)
{
	struct statfs sfs;
	struct stat st;

	if (statfs(cgroup, &sfs) || stat(cgroup, &st))
		return fail(err, errlen, "%s: cgroup %s: %s", what, cgroup, strerror(errno));
	if (sfs.f_type != CGROUP2_SUPER_MAGIC || !S_ISDIR(st.st_mode)) {
		errno = ENOTDIR;
		return fail(err, errlen, "%s: cgroup %s: not a cgroup v2 directory", what, cgroup);
	}
	*id = (unsigned long long)st.st_ino;
	return 0;
}

static int mkdir_exist_ok(const char *path)
{
	return mkdir(path, 0700) && errno != EEXIST ? -1 : 0;
}

int us_pin_root_prepare(const char *what, const char *root, char *err, size_t errlen)
{
	struct statfs sfs;

	if (statfs(US_BPFFS, &sfs))
		return fail(err, errlen, "%s: bpffs: %s: %s", what, US_BPFFS, strerror(errno));
	if (sfs.f_type != BPF_FS_MAGIC &&
	    mount("bpf", US_BPFFS, "bpf", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=0700"))
		return fail(err, errlen, "%s: bpffs: mount -t bpf %s: %s", what, US_BPFFS,
			    strerror(errno));
	if (mkdir_exist_ok(US_BPFFS "/understudy") || mkdir_exist_ok(root))
		return fail(err, errlen, "%s: bpffs: mkdir -p %s: %s", what, root, strerror(errno));
	return 0;
}

int us_pin_root_lock(const char *what, const char *root, char *err, size_t errlen)
{
	int fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0 && errno == ENOENT)
		return -2;
	if (fd < 0)
		return fail(err, errlen, "%s: bpffs: open %s: %s", what, root, strerror(errno));
	if (flock(fd, LOCK_EX)) {
		fail(err, errlen, "%s: bpffs: flock %s: %s", what, root, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

int us_pin_open(const char *what, const char *path, char *err, size_t errlen)
{
	int fd = bpf_obj_get(path);

	if (fd < 0 && errno == ENOENT)
		return -2;
	if (fd < 0)
		return fail(err, errlen, "%s: opening %s: %s", what, path, strerror(errno));
	return fd;
}

int us_pin_detach_link(const char *what, const char *path, char *err, size_t errlen)
{
	int fd = bpf_obj_get(path), rc = 0;

	if (fd < 0 && errno != ENOENT)
		return fail(err, errlen, "%s: opening %s: %s", what, path, strerror(errno));
	if (fd >= 0 && bpf_link_detach(fd))
		rc = fail(err, errlen, "%s: detaching %s: %s", what, path, strerror(errno));
	if (fd >= 0)
		close(fd);
	return rc;
}

int us_pin_sum_counters(const char *what, const char *path, uint64_t *const *totals,
			uint32_t n, char *err, size_t errlen)
{
	uint64_t *percpu = NULL;
	int ncpus, fd = -1, rc = -1;

	for (uint32_t slot = 0; slot < n; slot++)
		*totals[slot] = 0;
	fd = bpf_obj_get(path);
	if (fd < 0) {
		if (errno == ENOENT)
			rc = 0;
		else
			fail(err, errlen, "%s: opening %s: %s", what, path, strerror(errno));
		goto cleanup;
	}
	ncpus = libbpf_num_possible_cpus();
	percpu = ncpus > 0 ? calloc((size_t)ncpus, sizeof(*percpu)) : NULL;
	if (!percpu) {
		fail(err, errlen, "%s: counters for %d CPUs: out of memory", what, ncpus);
		goto cleanup;
	}
	for (uint32_t slot = 0; slot < n; slot++) {
		if (bpf_map_lookup_elem(fd, &slot, percpu)) {
			fail(err, errlen, "%s: reading %s: %s", what, path, strerror(errno));
			goto cleanup;
		}
		for (int cpu = 0; cpu < ncpus; cpu++)
			*totals[slot] += percpu[cpu];
	}
	rc = 0;
cleanup:
	free(percpu);
	if (fd >= 0)
		close(fd);
	return rc;
}
