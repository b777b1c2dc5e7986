/* Test cgroups for kernel tests; see kcgroup.h. */
#include "kcgroup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../../agent/bpf_env.h"

static int rmdir_retry(const char *path)
{
	for (int i = 0; i < 200; i++) {
		if (rmdir(path) == 0 || errno == ENOENT)
			return 0;
		if (errno != EBUSY)
			break;
		usleep(10000); /* exiting tasks leave the cgroup asynchronously */
	}
	return -errno;
}

static void remove_stale(const char *root, const char *prefix)
{
	DIR *d = opendir(root);
	struct dirent *de;

	if (!d)
		return;
	while ((de = readdir(d))) {
		char path[PATH_MAX];
		int pid;

		if (strncmp(de->d_name, prefix, strlen(prefix)) ||
		    sscanf(de->d_name + strlen(prefix), "%d-", &pid) != 1 ||
		    (kill(pid, 0) == 0 || errno != ESRCH))
			continue;
		snprintf(path, sizeof(path), "%s/%s", root, de->d_name);
		if (rmdir(path) == 0)
			printf("removed stale cgroup %s\n", path);
	}
	closedir(d);
}

static int check_host(struct kcgroups *k, const char *const *tracepoints)
{
	char err[512];

	if (geteuid() != 0) {
		snprintf(k->skip_reason, sizeof(k->skip_reason), "not root");
		return -1;
	}
	/* tracefs and bpffs mounts made below vanish with the test */
	if (unshare(CLONE_NEWNS) || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL))
		printf("note: no private mount namespace (%s); mounts stay\n", strerror(errno));
	if (us_bpf_env_prepare(false, err, sizeof(err))) {
		snprintf(k->skip_reason, sizeof(k->skip_reason), "environment: %s", err);
		return -1;
	}
	if (!us_bpf_env_has_kernel_btf()) {
		snprintf(k->skip_reason, sizeof(k->skip_reason),
			 "kernel has no BTF (/sys/kernel/btf/vmlinux), CO-RE cannot relocate");
		return -1;
	}
	for (size_t i = 0; tracepoints && tracepoints[i]; i++) {
		char path[256];

		snprintf(path, sizeof(path), US_BPF_ENV_TRACEFS "/events/%s", tracepoints[i]);
		if (access(path, F_OK)) {
			snprintf(k->skip_reason, sizeof(k->skip_reason), "tracepoint %s missing (%s)",
				 tracepoints[i], strerror(errno));
			return -1;
		}
	}
	if (us_bpf_env_cgroup2_root(k->root, sizeof(k->root), err, sizeof(err))) {
		snprintf(k->skip_reason, sizeof(k->skip_reason), "%s", err);
		return -1;
	}
	return 0;
}

void kcg_setup(struct kcgroups *k, const char *prefix, int n, const char *const *tracepoints)
{
	char err[512];

	memset(k, 0, sizeof(*k));
	if (n > KCG_MAX || check_host(k, tracepoints) < 0)
		return;
	remove_stale(k->root, prefix);
	for (int i = 0; i < n; i++) {
		snprintf(k->path[i], sizeof(k->path[i]), "%s/%s%d-%c", k->root, prefix,
			 (int)getpid(), 'a' + i);
		if (mkdir(k->path[i], 0755)) {
			snprintf(k->skip_reason, sizeof(k->skip_reason), "mkdir %s: %s", k->path[i],
				 strerror(errno));
			return;
		}
		k->made[i] = true;
		k->n = i + 1;
		if (us_bpf_env_cgroup_id(k->path[i], &k->id[i], err, sizeof(err))) {
			snprintf(k->skip_reason, sizeof(k->skip_reason), "%s", err);
			return;
		}
	}
}

int kcg_teardown(struct kcgroups *k)
{
	int rc = 0;

	for (int i = 0; i < k->n; i++)
		if (k->made[i] && rmdir_retry(k->path[i])) {
			fprintf(stderr, "cannot remove %s: %s\n", k->path[i], strerror(errno));
			rc = -1;
		}
	return rc;
}

int kcg_enter(const struct kcgroups *k, int i, pid_t pid)
{
	char procs[PATH_MAX + 16], buf[32];
	int fd, n, rc = 0;

	snprintf(procs, sizeof(procs), "%s/cgroup.procs", k->path[i]);
	n = snprintf(buf, sizeof(buf), "%d\n", pid ? (int)pid : (int)getpid());
	fd = open(procs, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (write(fd, buf, (size_t)n) != n)
		rc = -errno;
	close(fd);
	return rc;
}
