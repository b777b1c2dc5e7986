/* Owns the host preconditions of the BPF collectors: pseudo-filesystem
 * mounts (tracefs, bpffs), the memlock rlimit, libbpf's log routing, and
 * locating cgroup v2 and its ids. Keeps no state of its own. */
#include "bpf_env.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/magic.h>

#ifndef TRACEFS_MAGIC
#define TRACEFS_MAGIC 0x74726163
#endif
#ifndef BPF_FS_MAGIC
#define BPF_FS_MAGIC 0xcafe4a11
#endif
#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif

static int fs_is(const char *path, unsigned long magic)
{
	struct statfs st;

	if (statfs(path, &st))
		return -errno;
	return (unsigned long)st.f_type == magic;
}

static int ensure_mounted(const char *path, const char *fstype, unsigned long magic,
			  const char *data, char *err, size_t errlen)
{
	int is;

	is = fs_is(path, magic);
	if (is == 1)
		return 0;
	if (is < 0) {
		snprintf(err, errlen, "%s: %s (kernel built without %s?)", path,
			 strerror(-is), fstype);
		return is;
	}
	if (mount(fstype, path, fstype, MS_NOSUID | MS_NODEV | MS_NOEXEC, data)) {
		int e = errno;

		snprintf(err, errlen, "mount -t %s %s: %s%s", fstype, path, strerror(e),
			 e == EPERM ? " (needs CAP_SYS_ADMIN)" :
			 e == ENODEV ? " (filesystem type not supported by this kernel)" : "");
		return -e;
	}
	if (fs_is(path, magic) != 1) {
		snprintf(err, errlen, "mount -t %s %s succeeded but %s is not %s", fstype,
			 path, path, fstype);
		return -EIO;
	}
	return 0;
}

int us_bpf_env_mount_tracefs(char *err, size_t errlen)
{
	return ensure_mounted(US_BPF_ENV_TRACEFS, "tracefs", TRACEFS_MAGIC, NULL, err, errlen);
}

int us_bpf_env_mount_bpffs(char *err, size_t errlen)
{
	return ensure_mounted(US_BPF_ENV_BPFFS, "bpf", BPF_FS_MAGIC, "mode=0700", err, errlen);
}

/* Since v5.11 BPF memory is charged to the memory cgroup, not to
 * RLIMIT_MEMLOCK; bpf_ktime_get_coarse_ns arrived in the same release, and
 * libbpf uses the same probe for the same question. */
static bool kernel_charges_memcg(void)
{
	return libbpf_probe_bpf_helper(BPF_PROG_TYPE_SOCKET_FILTER,
				       BPF_FUNC_ktime_get_coarse_ns, NULL) == 1;
}

int us_bpf_env_bump_memlock(char *err, size_t errlen)
{
	struct rlimit rl;
	int rc = 0;

	if (getrlimit(RLIMIT_MEMLOCK, &rl)) {
		rc = -errno;
		snprintf(err, errlen, "getrlimit(RLIMIT_MEMLOCK): %s", strerror(-rc));
		goto cleanup;
	}
	if (rl.rlim_cur == RLIM_INFINITY || kernel_charges_memcg())
		goto cleanup;
	rl.rlim_cur = rl.rlim_max = RLIM_INFINITY;
	if (setrlimit(RLIMIT_MEMLOCK, &rl)) {
		rc = -errno;
		snprintf(err, errlen, "setrlimit(RLIMIT_MEMLOCK, unlimited): %s%s "
			 "(this kernel charges BPF maps to RLIMIT_MEMLOCK)", strerror(-rc),
			 rc == -EPERM ? " (needs CAP_SYS_RESOURCE)" : "");
	}
cleanup:
	return rc;
}

static int libbpf_print_debug(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	return vfprintf(stderr, fmt, ap);
}

static int libbpf_print_none(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	return 0;
}

void us_bpf_env_set_libbpf_debug(bool debug)
{
	libbpf_set_print(debug ? libbpf_print_debug : libbpf_print_none);
}

int us_bpf_env_prepare(bool debug, char *err, size_t errlen)
{
	int rc;

	us_bpf_env_set_libbpf_debug(debug);
	rc = us_bpf_env_mount_tracefs(err, errlen);
	if (rc)
		goto cleanup;
	rc = us_bpf_env_mount_bpffs(err, errlen);
	if (rc)
		goto cleanup;
	rc = us_bpf_env_bump_memlock(err, errlen);
cleanup:
	return rc;
}

bool us_bpf_env_has_kernel_btf(void)
{
	return access("/sys/kernel/btf/vmlinux", R_OK) == 0;
}

/* mountinfo escapes space, tab, newline and backslash as \ooo */
static void unescape_octal(char *s)
{
	char *w = s;

	for (char *r = s; *r; r++) {
		if (r[0] == '\\' && r[1] >= '0' && r[1] <= '7' && r[2] >= '0' && r[2] <= '7' &&
		    r[3] >= '0' && r[3] <= '7') {
			*w++ = (char)((r[1] - '0') * 64 + (r[2] - '0') * 8 + (r[3] - '0'));
			r += 3;
		} else {
			*w++ = *r;
		}
	}
	*w = '\0';
}

/* first cgroup2 mount point listed in /proc/self/mountinfo */
static int mountinfo_cgroup2(char *buf, size_t buflen)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char *line = NULL;
	size_t cap = 0;
	int rc = -ENOENT;

	if (!f)
		return -errno;
	while (getline(&line, &cap, f) > 0) {
		char mnt[4096], fstype[64];
		const char *sep = strstr(line, " - ");

		/* id parent maj:min root mountpoint ... - fstype source opts */
		if (!sep || sscanf(line, "%*s %*s %*s %*s %4095s", mnt) != 1 ||
		    sscanf(sep + 3, "%63s", fstype) != 1)
			continue;
		if (strcmp(fstype, "cgroup2"))
			continue;
		unescape_octal(mnt);
		if (strlen(mnt) >= buflen) {
			rc = -ENAMETOOLONG;
			goto cleanup;
		}
		strcpy(buf, mnt);
		rc = 0;
		goto cleanup;
	}
cleanup:
	free(line);
	fclose(f);
	return rc;
}

int us_bpf_env_cgroup2_root(char *buf, size_t buflen, char *err, size_t errlen)
{
	static const char *const candidates[] = { "/sys/fs/cgroup", "/sys/fs/cgroup/unified" };
	int rc;

	for (size_t i = 0; i < sizeof(candidates) / sizeof(candidates[0]); i++) {
		if (fs_is(candidates[i], CGROUP2_SUPER_MAGIC) != 1)
			continue;
		rc = (size_t)snprintf(buf, buflen, "%s", candidates[i]) >= buflen ?
			-ENAMETOOLONG : 0;
		goto cleanup;
	}
	rc = mountinfo_cgroup2(buf, buflen);
cleanup:
	if (rc)
		snprintf(err, errlen, "no cgroup v2 hierarchy: neither /sys/fs/cgroup nor "
			 "/sys/fs/cgroup/unified is cgroup2 and /proc/self/mountinfo lists "
			 "none (%s)", strerror(-rc));
	return rc;
}

int us_bpf_env_cgroup_id(const char *path, uint64_t *id, char *err, size_t errlen)
{
	union {
		struct file_handle fh;
		char buf[sizeof(struct file_handle) + 64];
	} h;
	struct stat st;
	int mount_id, is;

	is = fs_is(path, CGROUP2_SUPER_MAGIC);
	if (is != 1) {
		snprintf(err, errlen, "%s: %s", path,
			 is < 0 ? strerror(-is) : "not in a cgroup v2 hierarchy");
		return is < 0 ? is : -EINVAL;
	}
	/* kernfs hands out its 64-bit node id as an 8-byte file handle */
	memset(&h, 0, sizeof(h));
	h.fh.handle_bytes = sizeof(h.buf) - sizeof(struct file_handle);
	if (name_to_handle_at(AT_FDCWD, path, &h.fh, &mount_id, 0) == 0 &&
	    h.fh.handle_bytes == sizeof(uint64_t)) {
		memcpy(id, h.fh.f_handle, sizeof(uint64_t));
		return 0;
	}
	/* 64-bit kernels: the kernfs node id is the inode number */
	if (stat(path, &st)) {
		snprintf(err, errlen, "stat %s: %s", path, strerror(errno));
		return -errno;
	}
	*id = (uint64_t)st.st_ino;
	return 0;
}
