/* The `local` provider (DESIGN.md, Providers): an instance is a network
 * namespace reached from the host through a veth pair on its own /30, and a
 * cgroup whose CPU quota and memory limit are the instance type's vCPUs and
 * GiB times a scale factor. The cgroup always has a v2 directory (agents and
 * the steering program key on v2 cgroup ids); the limits go to cpu.max and
 * memory.max there when v2 has those controllers, else to v1 cpu and memory
 * directories at the same relative path (hybrid hosts), with a v1 cpuacct
 * directory beside them where cpuacct is mounted apart (the agent reads CPU
 * usage there). The workload joins all of them.
 *
 * Every name is derived from the instance id (netns PREFIX+ID, veth
 * "usv"+hash, cgroup understudy/PREFIX+ID), so decommission finds them even
 * without a state file. The state file (STATE_DIR/ID/instance.state,
 * key=value lines) keeps what cannot be derived: the type, the /30 it was
 * given, the provisioning time and the workload's pid; beside it are the
 * instance directory (root/: deployed files and data, the workload's default
 * working directory) and workload.log (its stdout and stderr). The workload
 * is double-forked and setsid'd, so it outlives the coordinator; describe()
 * trusts the
 * system over the file: a namespace that is gone is an absent instance, a
 * pid that is dead or not in the cgroup is a stopped workload.
 *
 * Every instance is guarded (egress.h): before its workload runs, BPF
 * programs on its v2 cgroup refuse connects and sends to anything but
 * loopback, the instance's own address and the definition's
 * allow_destinations, so a shadow reaches neither the host (the veth
 * peer) nor production unless told to. Decommission removes the guard. */
#include "provider.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "catalog.h"
#include "egress.h"
#include "steer.h"

#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif

#define CPU_PERIOD_US 100000
#define CPU_QUOTA_MIN_US 1000         /* the kernel's floor for a quota */
#define CG_PARENT "understudy"
#define NCG 4                         /* cgroup directories: v2, v1 cpu, memory, cpuacct */
#define STATE_FILE "instance.state"
#define NETNS_DIR "/run/netns"
#define POLL_NS (50ull * 1000000ull)
#define KILL_WAIT_NS (5ull * 1000000000ull)
/* decommission has no workload definition: SIGTERM, then SIGKILL after this */
#define DECOMMISSION_GRACE_NS (2ull * 1000000000ull)
#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

extern char **environ;

enum cg_mode { CG_NONE, CG_V2, CG_HYBRID };

struct local {
	double scale;
	uint32_t net;                 /* address_range, host byte order */
	unsigned plen;
	char prefix[16];
	char state_dir[3072];
	char catalog_path[US_CATALOG_PATH_MAX];
	struct us_catalog catalog;
	enum cg_mode cg;
	char cg_v2[256], cg_cpu[256], cg_mem[256];   /* mount points ("" = none) */
	/* v1 cpuacct when mounted apart from cpu: the agent reads CPU usage
	 * there on hybrid hosts, so the instance needs its own */
	char cg_acct[256];
	char cg_problem[512];                        /* why cg is CG_NONE */
};

/* Everything named after an instance id. */
struct names {
	char netns[96];
	char veth[IF_NAMESIZE];       /* host side; the namespace side is eth0 */
	char dir[PATH_MAX];           /* STATE_DIR/ID */
	char root[PATH_MAX];          /* STATE_DIR/ID/root: the instance directory */
	char state[PATH_MAX];
	char log[PATH_MAX];
	char cg_v2[512], cg_cpu[512], cg_mem[512], cg_acct[512];   /* "" = not used */
	char cg_rel[128];             /* "/understudy/PREFIXID", as /proc/PID/cgroup says */
};

/* The state file. */
struct record {
	char type[64];
	long subnet;                  /* index of the /30 in address_range; -1 none */
	double provision_s;
	int64_t provisioned_at;       /* unix seconds */
	int pid;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void sleep_ns(uint64_t ns)
{
	struct timespec ts = { .tv_sec = (time_t)(ns / 1000000000ull),
			       .tv_nsec = (long)(ns % 1000000000ull) };

	nanosleep(&ts, NULL);
}

/* snprintf that reports truncation (-1) instead of hiding it. */
static int fmt(char *out, size_t len, const char *f, ...) __attribute__((format(printf, 3, 4)));
static int fmt(char *out, size_t len, const char *f, ...)
{
	va_list ap;
	int n;

	va_start(ap, f);
	n = vsnprintf(out, len, f, ap);
	va_end(ap);
	return n < 0 || (size_t)n >= len ? -1 : 0;
}

static struct local *impl(struct us_provider *p)
{
	return p->impl;
}

/* ---- names ---------------------------------------------------------------- */

static int valid_name(const char *s, size_t max)
{
	size_t n = strlen(s);

	if (n == 0 || n > max)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
			return 0;
	return 1;
}

static int check_id(const char *id, char *err, size_t errlen)
{
	if (valid_name(id, US_INSTANCE_ID_MAX - 1))
		return 0;
	snprintf(err, errlen, "instance id \"%s\": must be 1-%d characters of [a-z0-9-]", id,
		 US_INSTANCE_ID_MAX - 1);
	return -1;
}

/* FNV-1a: a short name that is stable for an id, since interface names
 * have at most 15 characters. */
static uint32_t name_hash(const char *a, const char *b)
{
	uint32_t h = 2166136261u;

	for (const char *s = a; *s; s++)
		h = (h ^ (uint8_t)*s) * 16777619u;
	for (const char *s = b; *s; s++)
		h = (h ^ (uint8_t)*s) * 16777619u;
	return h;
}

static int names_of(const struct local *l, const char *id, struct names *n, char *err,
		    size_t errlen)
{
	memset(n, 0, sizeof(*n));
	if (check_id(id, err, errlen))
		return -1;
	if (fmt(n->netns, sizeof(n->netns), "%s%s", l->prefix, id) ||
	    fmt(n->veth, sizeof(n->veth), "usv%08xh", name_hash(l->prefix, id)) ||
	    fmt(n->dir, sizeof(n->dir), "%s/%s", l->state_dir, id) ||
	    fmt(n->root, sizeof(n->root), "%s/root", n->dir) ||
	    fmt(n->state, sizeof(n->state), "%s/" STATE_FILE, n->dir) ||
	    fmt(n->log, sizeof(n->log), "%s/workload.log", n->dir) ||
	    fmt(n->cg_rel, sizeof(n->cg_rel), "/" CG_PARENT "/%s", n->netns) ||
	    (l->cg_v2[0] && fmt(n->cg_v2, sizeof(n->cg_v2), "%s%s", l->cg_v2, n->cg_rel)) ||
	    (l->cg == CG_HYBRID &&
	     (fmt(n->cg_cpu, sizeof(n->cg_cpu), "%s%s", l->cg_cpu, n->cg_rel) ||
	      fmt(n->cg_mem, sizeof(n->cg_mem), "%s%s", l->cg_mem, n->cg_rel) ||
	      (l->cg_acct[0] &&
	       fmt(n->cg_acct, sizeof(n->cg_acct), "%s%s", l->cg_acct, n->cg_rel))))) {
		snprintf(err, errlen, "instance %s: a path is too long", id);
		return -1;
	}
	return 0;
}

static void subnet_addrs(const struct local *l, long subnet, char *host, char *inst)
{
	struct in_addr a;

	a.s_addr = htonl(l->net + 4u * (uint32_t)subnet + 1u);
	inet_ntop(AF_INET, &a, host, INET_ADDRSTRLEN);
	a.s_addr = htonl(l->net + 4u * (uint32_t)subnet + 2u);
	inet_ntop(AF_INET, &a, inst, INET_ADDRSTRLEN);
}

/* ---- files ------------------------------------------------------------- */

static int write_file(const char *path, const char *text, char *err, size_t errlen)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	size_t len = strlen(text);
	int rc = -1;

	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (write(fd, text, len) != (ssize_t)len) {
		snprintf(err, errlen, "writing \"%s\" to %s: %s", text, path, strerror(errno));
		goto cleanup;
	}
	rc = 0;
cleanup:
	close(fd);
	return rc;
}

static int mkdir_p(const char *path, char *err, size_t errlen)
{
	char buf[PATH_MAX];

	if (fmt(buf, sizeof(buf), "%s", path)) {
		snprintf(err, errlen, "%s: path too long", path);
		return -1;
	}
	for (char *s = buf + 1;; s++) {
		if (*s != '/' && *s != '\0')
			continue;
		char c = *s;

		*s = '\0';
		if (mkdir(buf, 0755) && errno != EEXIST) {
			snprintf(err, errlen, "mkdir %s: %s", buf, strerror(errno));
			return -1;
		}
		*s = c;
		if (!c)
			return 0;
	}
}

/* Removes a file or a whole tree; a missing path is not an error. */
static int rm_rf(const char *path, char *err, size_t errlen)
{
	struct stat st;
	struct dirent *e;
	DIR *d;
	int rc = -1;

	if (lstat(path, &st))
		return errno == ENOENT ? 0 : (snprintf(err, errlen, "%s: %s", path, strerror(errno)), -1);
	if (!S_ISDIR(st.st_mode)) {
		if (unlink(path) && errno != ENOENT) {
			snprintf(err, errlen, "rm %s: %s", path, strerror(errno));
			return -1;
		}
		return 0;
	}
	d = opendir(path);
	if (!d) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	while ((e = readdir(d))) {
		char child[PATH_MAX];

		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (fmt(child, sizeof(child), "%s/%s", path, e->d_name)) {
			snprintf(err, errlen, "%s/%s: path too long", path, e->d_name);
			goto cleanup;
		}
		if (rm_rf(child, err, errlen))
			goto cleanup;
	}
	if (rmdir(path) && errno != ENOENT) {
		snprintf(err, errlen, "rmdir %s: %s", path, strerror(errno));
		goto cleanup;
	}
	rc = 0;
cleanup:
	closedir(d);
	return rc;
}

/* base name without trailing slashes: "/srv/data/" -> "data" */
static int base_name(const char *path, char *out, size_t len)
{
	size_t end = strlen(path), start;

	while (end > 1 && path[end - 1] == '/')
		end--;
	start = end;
	while (start > 0 && path[start - 1] != '/')
		start--;
	if (end == start || end - start >= len || (end - start == 1 && path[start] == '/'))
		return -1;
	memcpy(out, path + start, end - start);
	out[end - start] = '\0';
	return !strcmp(out, ".") || !strcmp(out, "..") ? -1 : 0;
}

/* ---- the state file ---------------------------------------------------- */

static int record_write(const struct local *l, const char *id, const struct names *n,
			const struct record *r, char *err, size_t errlen)
{
	char tmp[PATH_MAX + 8], host[INET_ADDRSTRLEN] = "", inst[INET_ADDRSTRLEN] = "";
	FILE *f;
	int rc = -1;

	if (r->subnet >= 0)
		subnet_addrs(l, r->subnet, host, inst);
	snprintf(tmp, sizeof(tmp), "%s.tmp", n->state);
	f = fopen(tmp, "we");
	if (!f) {
		snprintf(err, errlen, "instance %s: %s: %s", id, tmp, strerror(errno));
		return -1;
	}
	fprintf(f, "id=%s\ntype=%s\nsubnet=%ld\naddress=%s\nhost_address=%s\n"
		"provision_s=%.6f\nprovisioned_at=%" PRId64 "\npid=%d\nnetns=%s\nveth=%s\n"
		"cgroup=%s\ncgroup_cpu=%s\ncgroup_memory=%s\ncgroup_cpuacct=%s\n",
		id, r->type, r->subnet, inst, host, r->provision_s, r->provisioned_at, r->pid,
		n->netns, n->veth, n->cg_v2, n->cg_cpu, n->cg_mem, n->cg_acct);
	if (fflush(f) || fsync(fileno(f))) {
		snprintf(err, errlen, "instance %s: writing %s: %s", id, tmp, strerror(errno));
		fclose(f);
		goto cleanup;
	}
	if (fclose(f) || rename(tmp, n->state)) {
		snprintf(err, errlen, "instance %s: saving %s: %s", id, n->state, strerror(errno));
		goto cleanup;
	}
	rc = 0;
cleanup:
	if (rc)
		unlink(tmp);
	return rc;
}

/* 0 read, 1 no state file, -1 error. */
static int record_read(const char *path, struct record *r, char *err, size_t errlen)
{
	FILE *f = fopen(path, "re");
	char line[1024];
	unsigned lineno = 0;
	int rc = -1;

	memset(r, 0, sizeof(*r));
	r->subnet = -1;
	if (!f) {
		if (errno == ENOENT)
			return 1;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), f)) {
		char *eq = strchr(line, '='), *end;
		const char *v;

		lineno++;
		line[strcspn(line, "\n")] = '\0';
		if (!eq)
			goto bad;
		*eq = '\0';
		v = eq + 1;
		errno = 0;
		if (!strcmp(line, "type")) {
			if (fmt(r->type, sizeof(r->type), "%s", v))
				goto bad;
		} else if (!strcmp(line, "subnet")) {
			r->subnet = strtol(v, &end, 10);
			if (*end || errno || r->subnet < -1)
				goto bad;
		} else if (!strcmp(line, "provision_s")) {
			r->provision_s = strtod(v, &end);
			if (*end)
				goto bad;
		} else if (!strcmp(line, "provisioned_at")) {
			r->provisioned_at = strtoll(v, &end, 10);
			if (*end || errno)
				goto bad;
		} else if (!strcmp(line, "pid")) {
			long pid = strtol(v, &end, 10);

			if (*end || errno || pid < 0 || pid > INT_MAX)
				goto bad;
			r->pid = (int)pid;
		}
	}
	rc = 0;
	goto cleanup;
bad:
	snprintf(err, errlen, "%s:%u: %s: malformed", path, lineno, line);
cleanup:
	fclose(f);
	return rc;
}

/* The lowest /30 that no instance under state_dir holds. */
static int subnet_allocate(const struct local *l, long *out, char *err, size_t errlen)
{
	long count = 1L << (30 - l->plen), *used = NULL, nused = 0, cap = 0, pick = -1;
	DIR *d = opendir(l->state_dir);
	struct dirent *e;
	int rc = -1;

	if (!d) {
		snprintf(err, errlen, "%s: %s", l->state_dir, strerror(errno));
		return -1;
	}
	while ((e = readdir(d))) {
		char path[PATH_MAX];
		struct record r;

		if (e->d_name[0] == '.' ||
		    fmt(path, sizeof(path), "%s/%s/" STATE_FILE, l->state_dir, e->d_name) ||
		    record_read(path, &r, err, errlen) != 0 || r.subnet < 0)
			continue;
		if (nused == cap) {
			long ncap = cap ? 2 * cap : 16;
			long *grown = realloc(used, (size_t)ncap * sizeof(*grown));

			if (!grown) {
				snprintf(err, errlen, "out of memory");
				goto cleanup;
			}
			used = grown;
			cap = ncap;
		}
		used[nused++] = r.subnet;
	}
	for (long s = 0; s < count && pick < 0; s++) {
		long i = 0;

		while (i < nused && used[i] != s)
			i++;
		if (i == nused)
			pick = s;
	}
	if (pick < 0) {
		snprintf(err, errlen, "address range exhausted: all %ld /30 subnets are in use", count);
		goto cleanup;
	}
	*out = pick;
	rc = 0;
cleanup:
	free(used);
	closedir(d);
	return rc;
}

/* ---- commands ------------------------------------------------------------ */

/* cmd as execve wants it: a path, or the first executable of that name in PATH */
static int resolve_exe(const char *cmd, char *out, size_t len)
{
	const char *path = getenv("PATH");
	char dirs[4096];

	if (strchr(cmd, '/'))
		return fmt(out, len, "%s", cmd);
	if (fmt(dirs, sizeof(dirs), "%s", path && *path ? path : DEFAULT_PATH))
		return -1;
	for (char *save, *dir = strtok_r(dirs, ":", &save); dir; dir = strtok_r(NULL, ":", &save))
		if (!fmt(out, len, "%s/%s", dir, cmd) && access(out, X_OK) == 0)
			return 0;
	return -1;
}

/* Runs argv (no shell) with envp (NULL: ours) in cwd (NULL: ours) and waits;
 * a failure's message is the command's stderr. */
static int run(char *const argv[], char *const envp[], const char *cwd, char *err, size_t errlen)
{
	char exe[PATH_MAX], out[512] = "", cmd[256] = "";
	int pfd[2], status, rc = -1;
	size_t got = 0;
	ssize_t n;
	pid_t pid;

	for (size_t i = 0; argv[i]; i++)
		snprintf(cmd + strlen(cmd), sizeof(cmd) - strlen(cmd), "%s%s", i ? " " : "", argv[i]);
	if (resolve_exe(argv[0], exe, sizeof(exe))) {
		snprintf(err, errlen, "%s: command not found", argv[0]);
		return -1;
	}
	if (pipe2(pfd, O_CLOEXEC)) {
		snprintf(err, errlen, "%s: pipe: %s", cmd, strerror(errno));
		return -1;
	}
	pid = fork();
	if (pid < 0) {
		snprintf(err, errlen, "%s: fork: %s", cmd, strerror(errno));
		close(pfd[0]);
		close(pfd[1]);
		return -1;
	}
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR);

		if (null < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0 || dup2(pfd[1], 2) < 0 ||
		    (cwd && chdir(cwd)))
			_exit(126);
		execve(exe, argv, envp ? envp : environ);
		_exit(127);
	}
	close(pfd[1]);
	while ((n = read(pfd[0], out + got, sizeof(out) - 1 - got)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			break;
		got += (size_t)n;
		if (got == sizeof(out) - 1) {   /* keep the start; drain the rest */
			char sink[256];

			while (read(pfd[0], sink, sizeof(sink)) > 0)
				;
			break;
		}
	}
	out[got] = '\0';
	out[strcspn(out, "\n")] = '\0';
	close(pfd[0]);
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR) {
			snprintf(err, errlen, "%s: waitpid: %s", cmd, strerror(errno));
			return -1;
		}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		rc = 0;
	else if (WIFEXITED(status))
		snprintf(err, errlen, "%s: exit status %d%s%s", cmd, WEXITSTATUS(status),
			 out[0] ? ": " : "", out);
	else
		snprintf(err, errlen, "%s: killed by signal %d", cmd,
			 WIFSIGNALED(status) ? WTERMSIG(status) : 0);
	return rc;
}

#define IP(err, errlen, ...) run((char *const[]){ "ip", __VA_ARGS__, NULL }, NULL, NULL, err, errlen)

/* ---- network --------------------------------------------------------------- */

static int netns_exists(const struct names *n)
{
	char path[sizeof(NETNS_DIR) + sizeof(n->netns)];

	snprintf(path, sizeof(path), NETNS_DIR "/%s", n->netns);
	return access(path, F_OK) == 0;
}

/* Namespace, veth pair, the /30's two addresses, links up. Each step checks
 * or replaces, so a provision cut short can simply run again. No route is
 * added: the host reaches the instance over the /30's connected route. */
static int net_up(const struct local *l, const struct names *n, long subnet, char *err,
		  size_t errlen)
{
	char host[INET_ADDRSTRLEN + 3], inst[INET_ADDRSTRLEN + 3];
	char h[INET_ADDRSTRLEN], i[INET_ADDRSTRLEN];
	char *ns = (char *)n->netns, *veth = (char *)n->veth;

	subnet_addrs(l, subnet, h, i);
	snprintf(host, sizeof(host), "%s/30", h);
	snprintf(inst, sizeof(inst), "%s/30", i);
	int fresh = !netns_exists(n);

	if (fresh && IP(err, errlen, "netns", "add", ns))
		return -1;
	/* a host side left from a deleted namespace (the kernel tears those
	 * down asynchronously) has no peer here: replace it */
	if (fresh && if_nametoindex(veth) && IP(err, errlen, "link", "del", veth) &&
	    if_nametoindex(veth))
		return -1;
	if (!if_nametoindex(veth) &&
	    IP(err, errlen, "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns))
		return -1;
	return IP(err, errlen, "addr", "replace", host, "dev", veth) ||
	       IP(err, errlen, "link", "set", veth, "up") ||
	       IP(err, errlen, "-n", ns, "addr", "replace", inst, "dev", "eth0") ||
	       IP(err, errlen, "-n", ns, "link", "set", "eth0", "up") ||
	       IP(err, errlen, "-n", ns, "link", "set", "lo", "up") ? -1 : 0;
}

static int net_down(const struct names *n, char *err, size_t errlen)
{
	if (if_nametoindex(n->veth) && IP(err, errlen, "link", "del", (char *)n->veth))
		return -1;
	if (netns_exists(n) && IP(err, errlen, "netns", "del", (char *)n->netns))
		return -1;
	return 0;
}

/* ---- cgroups ------------------------------------------------------------- */

static int is_cgroup2(const char *path)
{
	struct statfs sf;

	return statfs(path, &sf) == 0 && (unsigned long)sf.f_type == CGROUP2_SUPER_MAGIC;
}

static int has_word(const char *list, const char *word, const char *seps)
{
	size_t wl = strlen(word);

	for (const char *s = list; *s;) {
		size_t n = strcspn(s, seps);

		if (n == wl && !strncmp(s, word, wl))
			return 1;
		s += n;
		s += strspn(s, seps);
	}
	return 0;
}

/* Mount points of the v2 hierarchy and of the v1 cpu and memory
 * controllers, from /proc/self/mountinfo. */
static void cgroup_mounts(struct local *l)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char *line = NULL;
	size_t cap = 0;

	if (!f)
		return;
	while (getline(&line, &cap, f) > 0) {
		char mnt[256], fstype[32], opts[512];
		const char *sep = strstr(line, " - ");

		/* id parent maj:min root mountpoint ... - fstype source superopts */
		if (!sep || sscanf(line, "%*s %*s %*s %*s %255s", mnt) != 1 ||
		    sscanf(sep + 3, "%31s %*s %511s", fstype, opts) != 2)
			continue;
		if (!strcmp(fstype, "cgroup2") && !l->cg_v2[0])
			snprintf(l->cg_v2, sizeof(l->cg_v2), "%s", mnt);
		if (strcmp(fstype, "cgroup"))
			continue;
		if (has_word(opts, "cpu", ",") && !l->cg_cpu[0])
			snprintf(l->cg_cpu, sizeof(l->cg_cpu), "%s", mnt);
		if (has_word(opts, "memory", ",") && !l->cg_mem[0])
			snprintf(l->cg_mem, sizeof(l->cg_mem), "%s", mnt);
		if (has_word(opts, "cpuacct", ",") && !l->cg_acct[0])
			snprintf(l->cg_acct, sizeof(l->cg_acct), "%s", mnt);
	}
	if (!strcmp(l->cg_acct, l->cg_cpu))
		l->cg_acct[0] = '\0';
	free(line);
	fclose(f);
}

static void cgroup_detect(struct local *l)
{
	char path[300], ctl[256] = "";
	FILE *f;

	if (is_cgroup2("/sys/fs/cgroup"))
		snprintf(l->cg_v2, sizeof(l->cg_v2), "/sys/fs/cgroup");
	else if (is_cgroup2("/sys/fs/cgroup/unified"))
		snprintf(l->cg_v2, sizeof(l->cg_v2), "/sys/fs/cgroup/unified");
	cgroup_mounts(l);
	if (!l->cg_v2[0]) {
		snprintf(l->cg_problem, sizeof(l->cg_problem),
			 "no cgroup v2 hierarchy is mounted (the instance's identity is its v2 cgroup)");
		return;
	}
	snprintf(path, sizeof(path), "%s/cgroup.controllers", l->cg_v2);
	f = fopen(path, "re");
	if (f) {
		if (!fgets(ctl, sizeof(ctl), f))
			ctl[0] = '\0';
		fclose(f);
	}
	if (has_word(ctl, "cpu", " \n") && has_word(ctl, "memory", " \n"))
		l->cg = CG_V2;
	else if (l->cg_cpu[0] && l->cg_mem[0])
		l->cg = CG_HYBRID;
	else
		snprintf(l->cg_problem, sizeof(l->cg_problem),
			 "no cpu and memory controllers: not in %s (cgroup v2) and not mounted as "
			 "cgroup v1", path);
}

static int cg_write(const char *dir, const char *file, const char *text, char *err, size_t errlen)
{
	char path[PATH_MAX + 64];

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	return write_file(path, text, err, errlen);
}

/* Directories and limits: quota = vCPUs × scale of a CPU_PERIOD_US period,
 * memory = GiB × scale, whole pages. */
static int cgroup_make(const struct local *l, const struct names *n, const struct us_itype *t,
		       char *err, size_t errlen)
{
	double cores = t->vcpu * l->scale;
	long long period = CPU_PERIOD_US, quota = llround(cores * (double)period);
	uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
	uint64_t mem = (uint64_t)(t->memory_gib * l->scale * 1073741824.0) / page * page;
	char parent[PATH_MAX], v[64];

	/* under 1% of a core the quota would fall below the kernel's floor:
	 * a longer period (up to 1 s) keeps the share exact down to 0.1% */
	while (quota < CPU_QUOTA_MIN_US && period < 1000000) {
		period *= 10;
		quota = llround(cores * (double)period);
	}
	if (quota < CPU_QUOTA_MIN_US)
		quota = CPU_QUOTA_MIN_US;
	snprintf(parent, sizeof(parent), "%s/" CG_PARENT, l->cg_v2);
	if (mkdir_p(parent, err, errlen))
		return -1;
	if (l->cg == CG_V2) {
		/* the limits need the controllers delegated down to the instance */
		if (cg_write(l->cg_v2, "cgroup.subtree_control", "+cpu +memory", err, errlen) ||
		    cg_write(parent, "cgroup.subtree_control", "+cpu +memory", err, errlen) ||
		    mkdir_p(n->cg_v2, err, errlen))
			return -1;
		snprintf(v, sizeof(v), "%lld %lld", quota, period);
		if (cg_write(n->cg_v2, "cpu.max", v, err, errlen))
			return -1;
		snprintf(v, sizeof(v), "%" PRIu64, mem);
		return cg_write(n->cg_v2, "memory.max", v, err, errlen);
	}
	if (mkdir_p(n->cg_v2, err, errlen) || mkdir_p(n->cg_cpu, err, errlen) ||
	    mkdir_p(n->cg_mem, err, errlen) || (n->cg_acct[0] && mkdir_p(n->cg_acct, err, errlen)))
		return -1;
	snprintf(v, sizeof(v), "%lld", period);
	if (cg_write(n->cg_cpu, "cpu.cfs_period_us", v, err, errlen))
		return -1;
	snprintf(v, sizeof(v), "%lld", quota);
	if (cg_write(n->cg_cpu, "cpu.cfs_quota_us", v, err, errlen))
		return -1;
	snprintf(v, sizeof(v), "%" PRIu64, mem);
	return cg_write(n->cg_mem, "memory.limit_in_bytes", v, err, errlen);
}

/* Whether pid is a live (not zombie) process in the instance's v2 cgroup. */
static int pid_in_cgroup(int pid, const struct names *n)
{
	char path[64], line[512], stat[512];
	int found = 0;
	const char *paren;
	FILE *f;

	if (pid <= 0)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	f = fopen(path, "re");
	if (!f)
		return 0;
	if (!fgets(stat, sizeof(stat), f))
		stat[0] = '\0';
	fclose(f);
	paren = strrchr(stat, ')');
	if (!paren || paren[1] != ' ' || paren[2] == 'Z' || paren[2] == 'X')
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/cgroup", pid);
	f = fopen(path, "re");
	if (!f)
		return 0;
	while (!found && fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		found = !strncmp(line, "0::", 3) && !strcmp(line + 3, n->cg_rel);
	}
	fclose(f);
	return found;
}

/* Signals every process in the instance's cgroup directories; returns how
 * many there were. */
static int cgroup_signal(const struct names *n, int sig)
{
	const char *dirs[] = { n->cg_v2, n->cg_cpu, n->cg_mem, n->cg_acct };
	int count = 0;

	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		char path[PATH_MAX + 16];
		long pid;
		FILE *f;

		if (!dirs[i][0])
			continue;
		snprintf(path, sizeof(path), "%s/cgroup.procs", dirs[i]);
		f = fopen(path, "re");
		if (!f)
			continue;
		while (fscanf(f, "%ld", &pid) == 1) {
			if (pid > 0 && kill((pid_t)pid, sig) == 0)
				count++;
		}
		fclose(f);
	}
	return count;
}

/* Whether anything is left to stop: the main pid or anyone in the cgroups. */
static int processes_left(const struct names *n, int pid)
{
	return pid_in_cgroup(pid, n) || cgroup_signal(n, 0) > 0;
}

static int wait_gone(const struct names *n, int pid, uint64_t within_ns)
{
	uint64_t deadline = now_ns() + within_ns;

	while (processes_left(n, pid)) {
		if (now_ns() >= deadline)
			return -1;
		sleep_ns(POLL_NS);
	}
	return 0;
}

/* sig to the workload's process group and every process in the cgroups,
 * SIGKILL after grace. */
static int stop_processes(const char *id, const struct names *n, int pid, int sig,
			  uint64_t grace_ns, char *err, size_t errlen)
{
	/* the group only while pid is ours: a recycled pid is someone else's */
	int group = pid_in_cgroup(pid, n) && getpgid(pid) == pid;

	if (!processes_left(n, pid))
		return 0;
	if (group)
		kill(-pid, sig);
	cgroup_signal(n, sig);
	if (wait_gone(n, pid, grace_ns) == 0)
		return 0;
	if (group)
		kill(-pid, SIGKILL);
	cgroup_signal(n, SIGKILL);
	if (wait_gone(n, pid, KILL_WAIT_NS) == 0)
		return 0;
	snprintf(err, errlen, "instance %s: processes in %s survived SIGKILL", id, n->cg_v2);
	return -1;
}

/* rmdir that waits out the moment a just-killed process still holds it */
static int cgroup_remove(const char *dir, char *err, size_t errlen)
{
	uint64_t deadline = now_ns() + KILL_WAIT_NS;

	if (!dir[0])
		return 0;
	while (rmdir(dir)) {
		if (errno == ENOENT)
			return 0;
		if (errno != EBUSY || now_ns() >= deadline) {
			snprintf(err, errlen, "rmdir %s: %s", dir, strerror(errno));
			return -1;
		}
		sleep_ns(POLL_NS);
	}
	return 0;
}

/* ---- describe, provision ------------------------------------------------- */

static int local_describe(struct us_provider *p, const char *id, struct us_instance *out,
			  char *err, size_t errlen)
{
	struct local *l = impl(p);
	char host[INET_ADDRSTRLEN];
	struct names n;
	struct record r;
	int rc;

	memset(out, 0, sizeof(*out));
	if (names_of(l, id, &n, err, errlen))
		return -1;
	snprintf(out->id, sizeof(out->id), "%s", id);
	out->state = US_INSTANCE_ABSENT;
	rc = record_read(n.state, &r, err, errlen);
	if (rc)
		return rc < 0 ? -1 : 0;
	snprintf(out->type, sizeof(out->type), "%s", r.type);
	if (r.subnet >= 0)
		subnet_addrs(l, r.subnet, host, out->address);
	out->provision_s = r.provision_s;
	snprintf(out->cgroup, sizeof(out->cgroup), "%s", n.cg_v2);
	/* a provision cut short, or an instance torn down behind our back */
	if (r.provisioned_at == 0 || !netns_exists(&n) || !if_nametoindex(n.veth) ||
	    access(n.cg_v2, F_OK))
		return 0;
	out->state = US_INSTANCE_PROVISIONED;
	if (pid_in_cgroup(r.pid, &n)) {
		out->state = US_INSTANCE_RUNNING;
		out->pid = r.pid;
	}
	return 0;
}

static int local_provision(struct us_provider *p, const char *id, const char *type,
			   struct us_instance *out, char *err, size_t errlen)
{
	struct local *l = impl(p);
	uint64_t t0 = now_ns();
	const struct us_itype *t;
	struct names n;
	struct record r;
	int rc;

	if (local_describe(p, id, out, err, errlen))
		return -1;
	if (out->state != US_INSTANCE_ABSENT)
		return 0;
	if (names_of(l, id, &n, err, errlen))
		return -1;
	t = us_catalog_find(&l->catalog, type);
	if (!t) {
		snprintf(err, errlen, "instance %s: unknown instance type \"%s\" (not in the catalog %s)",
			 id, type, l->catalog_path);
		return -1;
	}
	if (l->cg == CG_NONE) {
		snprintf(err, errlen, "instance %s: %s", id, l->cg_problem);
		return -1;
	}
	if (mkdir_p(l->state_dir, err, errlen))
		return -1;
	rc = record_read(n.state, &r, err, errlen);
	if (rc < 0)
		return -1;
	/* a retried provision keeps the /30 it had reserved */
	if ((rc == 1 || r.subnet < 0) && subnet_allocate(l, &r.subnet, err, errlen))
		return -1;
	snprintf(r.type, sizeof(r.type), "%s", type);
	r.provisioned_at = 0;
	r.pid = 0;
	/* the reservation is saved before anything exists, so a crash in
	 * between cannot hand the same /30 to another instance */
	if (mkdir_p(n.dir, err, errlen) || record_write(l, id, &n, &r, err, errlen))
		return -1;
	if (cgroup_make(l, &n, t, err, errlen) || net_up(l, &n, r.subnet, err, errlen)) {
		char msg[1024];

		snprintf(msg, sizeof(msg), "%s", err);
		snprintf(err, errlen, "instance %s: %s", id, msg);
		return -1;
	}
	r.provision_s = (double)(now_ns() - t0) / 1e9;
	r.provisioned_at = (int64_t)time(NULL);
	if (record_write(l, id, &n, &r, err, errlen))
		return -1;
	return local_describe(p, id, out, err, errlen);
}

/* Names and state of an instance an operation needs to exist. */
static int need_instance(struct us_provider *p, const char *id, struct names *n,
			 struct us_instance *now, char *err, size_t errlen)
{
	if (local_describe(p, id, now, err, errlen) || names_of(impl(p), id, n, err, errlen))
		return -1;
	if (now->state == US_INSTANCE_ABSENT) {
		snprintf(err, errlen, "instance %s is not provisioned", id);
		return -1;
	}
	return 0;
}

/* ---- deploy --------------------------------------------------------------- */

/* src copied to dir/basename(src) with cp -a, replacing what was there */
static int copy_into(const char *src, const char *dir, char *err, size_t errlen)
{
	char base[NAME_MAX + 1], dst[PATH_MAX];

	if (base_name(src, base, sizeof(base)) || fmt(dst, sizeof(dst), "%s/%s", dir, base)) {
		snprintf(err, errlen, "%s: cannot name its copy in %s", src, dir);
		return -1;
	}
	if (rm_rf(dst, err, errlen))
		return -1;
	return run((char *const[]){ "cp", "-a", "--", (char *)src, dst, NULL }, NULL, NULL, err,
		   errlen);
}

struct data_file {
	char *src, *rel;              /* rel: under the instance directory */
	uint64_t size;
};

struct data_list {
	struct data_file *v;
	size_t n, cap;
	uint64_t total;
};

static void data_list_free(struct data_list *d)
{
	for (size_t i = 0; i < d->n; i++) {
		free(d->v[i].src);
		free(d->v[i].rel);
	}
	free(d->v);
}

/* Every regular file under src (itself when it is one), rel naming it
 * under the instance directory. */
static int data_collect(const char *src, const char *rel, struct data_list *d, char *err,
			size_t errlen)
{
	struct stat st;
	struct dirent *e;
	DIR *dir;
	int rc = -1;

	if (lstat(src, &st)) {
		snprintf(err, errlen, "%s: %s", src, strerror(errno));
		return -1;
	}
	if (S_ISREG(st.st_mode)) {
		if (d->n == d->cap) {
			size_t ncap = d->cap ? 2 * d->cap : 64;
			struct data_file *grown = realloc(d->v, ncap * sizeof(*grown));

			if (!grown)
				goto oom;
			d->v = grown;
			d->cap = ncap;
		}
		d->v[d->n].src = strdup(src);
		d->v[d->n].rel = strdup(rel);
		d->v[d->n].size = (uint64_t)st.st_size;
		if (!d->v[d->n].src || !d->v[d->n].rel) {
			free(d->v[d->n].src);
			free(d->v[d->n].rel);
			goto oom;
		}
		d->n++;
		d->total += (uint64_t)st.st_size;
		return 0;
	}
	if (!S_ISDIR(st.st_mode))
		return 0;       /* links, devices, sockets: not data */
	dir = opendir(src);
	if (!dir) {
		snprintf(err, errlen, "%s: %s", src, strerror(errno));
		return -1;
	}
	while ((e = readdir(dir))) {
		char s[PATH_MAX], r[PATH_MAX];

		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (fmt(s, sizeof(s), "%s/%s", src, e->d_name) ||
		    fmt(r, sizeof(r), "%s/%s", rel, e->d_name)) {
			snprintf(err, errlen, "%s/%s: path too long", src, e->d_name);
			goto cleanup;
		}
		if (data_collect(s, r, d, err, errlen))
			goto cleanup;
	}
	rc = 0;
cleanup:
	closedir(dir);
	return rc;
oom:
	snprintf(err, errlen, "out of memory listing %s", src);
	return -1;
}

static int data_file_cmp(const void *a, const void *b)
{
	return strcmp(((const struct data_file *)a)->rel, ((const struct data_file *)b)->rel);
}

/* One file's bytes, mode and times. */
static int copy_file(const char *src, const char *dst, char *err, size_t errlen)
{
	int in = open(src, O_RDONLY | O_CLOEXEC), out = -1, rc = -1;
	char buf[65536];
	struct stat st;
	ssize_t n;

	if (in < 0 || fstat(in, &st)) {
		snprintf(err, errlen, "%s: %s", src, strerror(errno));
		goto cleanup;
	}
	out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, st.st_mode & 07777);
	if (out < 0) {
		snprintf(err, errlen, "%s: %s", dst, strerror(errno));
		goto cleanup;
	}
	while ((n = read(in, buf, sizeof(buf))) > 0) {
		if (write(out, buf, (size_t)n) != n) {
			snprintf(err, errlen, "writing %s: %s", dst, strerror(errno));
			goto cleanup;
		}
	}
	if (n < 0) {
		snprintf(err, errlen, "reading %s: %s", src, strerror(errno));
		goto cleanup;
	}
	if (fchmod(out, st.st_mode & 07777) ||
	    futimens(out, (struct timespec[]){ st.st_atim, st.st_mtim })) {
		snprintf(err, errlen, "%s: %s", dst, strerror(errno));
		goto cleanup;
	}
	rc = 0;
cleanup:
	if (in >= 0)
		close(in);
	if (out >= 0)
		close(out);
	return rc;
}

/* The built-in subset: the data directories' files in sorted order while
 * they fit in the sample fraction of their bytes (or the byte budget): a
 * budget is a limit, never exceeded. */
static int subset_copy(const struct us_workload_def *w, double sample, const char *root,
		       char *err, size_t errlen)
{
	struct data_list d = { 0 };
	uint64_t target, copied = 0;
	int rc = -1;

	for (size_t i = 0; i < w->ndata; i++) {
		char base[NAME_MAX + 1];

		if (base_name(w->data[i], base, sizeof(base))) {
			snprintf(err, errlen, "data %s: cannot name its copy", w->data[i]);
			goto cleanup;
		}
		if (data_collect(w->data[i], base, &d, err, errlen))
			goto cleanup;
	}
	qsort(d.v, d.n, sizeof(*d.v), data_file_cmp);
	target = sample > 0 ? (uint64_t)(sample * (double)d.total) : w->subset_budget_bytes;
	for (size_t i = 0; i < d.n && copied + d.v[i].size <= target; i++) {
		char dst[PATH_MAX], *slash;

		if (fmt(dst, sizeof(dst), "%s/%s", root, d.v[i].rel)) {
			snprintf(err, errlen, "%s/%s: path too long", root, d.v[i].rel);
			goto cleanup;
		}
		slash = strrchr(dst, '/');
		*slash = '\0';
		if (mkdir_p(dst, err, errlen))
			goto cleanup;
		*slash = '/';
		if (copy_file(d.v[i].src, dst, err, errlen))
			goto cleanup;
		copied += d.v[i].size;
	}
	rc = 0;
cleanup:
	data_list_free(&d);
	return rc;
}

/* The workload's own subset command: sh -c HOOK in the instance directory,
 * told where to write (INSTANCE_DIR), how much (SAMPLE, BUDGET bytes) and
 * from where (DATA_DIRS, colon-separated). */
static int subset_hook(const struct us_workload_def *w, double sample, const char *root,
		       char *err, size_t errlen)
{
	size_t nenv = 0, n = 0;
	char **envp = NULL, *vars[4] = { NULL };
	char data[US_WD_MAX_PATHS * (US_WD_STR + 1)] = "";
	int rc = -1;

	for (size_t i = 0; i < w->ndata; i++)
		snprintf(data + strlen(data), sizeof(data) - strlen(data), "%s%s", i ? ":" : "",
			 w->data[i]);
	while (environ[nenv])
		nenv++;
	envp = calloc(nenv + 5, sizeof(*envp));
	if (!envp || asprintf(&vars[0], "INSTANCE_DIR=%s", root) < 0 ||
	    asprintf(&vars[1], "SAMPLE=%g", sample) < 0 ||
	    asprintf(&vars[2], "BUDGET=%" PRIu64, w->subset_budget_bytes) < 0 ||
	    asprintf(&vars[3], "DATA_DIRS=%s", data) < 0) {
		snprintf(err, errlen, "out of memory");
		goto cleanup;
	}
	for (size_t i = 0; i < nenv; i++)
		if (strncmp(environ[i], "INSTANCE_DIR=", 13) && strncmp(environ[i], "SAMPLE=", 7) &&
		    strncmp(environ[i], "BUDGET=", 7) && strncmp(environ[i], "DATA_DIRS=", 10))
			envp[n++] = environ[i];
	for (size_t i = 0; i < 4; i++)
		envp[n++] = vars[i];
	if (run((char *const[]){ "/bin/sh", "-c", (char *)w->subset_hook, NULL }, envp, root, err,
		errlen)) {
		char msg[1024];

		snprintf(msg, sizeof(msg), "%s", err);
		snprintf(err, errlen, "subset hook of %s: %s", w->name, msg);
		goto cleanup;
	}
	rc = 0;
cleanup:
	for (size_t i = 0; i < 4; i++)
		free(vars[i]);
	free(envp);
	return rc;
}

static int local_deploy(struct us_provider *p, const struct us_instance *in,
			const struct us_workload_def *w, const struct us_deploy_opts *o,
			char *err, size_t errlen)
{
	struct us_instance now;
	struct names n;
	char msg[1024];

	if (need_instance(p, in->id, &n, &now, err, errlen))
		return -1;
	if (o->sample < 0 || o->sample > 1) {
		snprintf(err, errlen, "instance %s: sample %g is not in (0, 1]", in->id, o->sample);
		return -1;
	}
	if (mkdir_p(n.root, err, errlen))
		goto fail;
	for (size_t i = 0; i < w->nfiles; i++)
		if (copy_into(w->files[i], n.root, err, errlen))
			goto fail;
	/* an earlier deploy's data goes, whichever mode made it, so a deploy
	 * leaves what its own mode says and nothing more */
	for (size_t i = 0; i < w->ndata; i++) {
		char base[NAME_MAX + 1], dst[PATH_MAX];

		if (base_name(w->data[i], base, sizeof(base)) ||
		    fmt(dst, sizeof(dst), "%s/%s", n.root, base)) {
			snprintf(err, errlen, "data %s: cannot name its copy", w->data[i]);
			goto fail;
		}
		if (rm_rf(dst, err, errlen))
			goto fail;
	}
	switch (o->mode) {
	case US_REPL_MIRROR:
		return 0;
	case US_REPL_CLONE:
		for (size_t i = 0; i < w->ndata; i++)
			if (copy_into(w->data[i], n.root, err, errlen))
				goto fail;
		return 0;
	case US_REPL_SUBSET:
		if (w->subset_hook[0] ? subset_hook(w, o->sample, n.root, err, errlen) :
					subset_copy(w, o->sample, n.root, err, errlen))
			goto fail;
		return 0;
	}
	snprintf(err, errlen, "unknown replication mode %d", (int)o->mode);
fail:
	snprintf(msg, sizeof(msg), "%s", err);
	snprintf(err, errlen, "instance %s: deploy %s (%s): %s", in->id, w->name,
		 us_repl_mode_name(o->mode), msg);
	return -1;
}

/* ---- start, stop ----------------------------------------------------------- */

/* What the workload's child reports when it cannot exec. */
struct start_failure {
	int step;
	int err;
};

static const char *const start_steps[] = {
	"setsid", "joining the cgroup", "entering the network namespace",
	"changing to the working directory", "redirecting output", "exec",
};

/* argv, envp and workdir of the workload, with ${...} expanded; freed by
 * launch_free */
struct launch {
	char exe[PATH_MAX];
	char workdir[US_WD_STR];
	char **argv, **envp;
	size_t nargv, nown;           /* envp[0..nown) are ours to free */
};

static void launch_free(struct launch *x)
{
	if (x->argv)
		for (size_t i = 0; i < x->nargv; i++)
			free(x->argv[i]);
	if (x->envp)
		for (size_t i = 0; i < x->nown; i++)
			free(x->envp[i]);
	free(x->argv);
	free(x->envp);
}

static int launch_prepare(const struct us_workload_def *w, const struct us_wd_vars *vars,
			  struct launch *x, char *err, size_t errlen)
{
	size_t nenv = 0;

	memset(x, 0, sizeof(*x));
	if (resolve_exe(w->command, x->exe, sizeof(x->exe)) || access(x->exe, X_OK)) {
		snprintf(err, errlen, "command %s: not found or not executable", w->command);
		return -1;
	}
	if (us_workload_expand(w->workdir[0] ? w->workdir : "${INSTANCE_DIR}", vars, x->workdir,
			       sizeof(x->workdir), err, errlen))
		return -1;
	while (environ[nenv])
		nenv++;
	x->argv = calloc(w->nargs + 2, sizeof(*x->argv));
	x->envp = calloc(nenv + w->nenv + 1, sizeof(*x->envp));
	if (!x->argv || !x->envp)
		goto oom;
	x->argv[x->nargv++] = strdup(w->command);
	if (!x->argv[0])
		goto oom;
	for (size_t i = 0; i < w->nargs; i++) {
		char *a = malloc(US_WD_STR * 2);

		if (!a)
			goto oom;
		x->argv[x->nargv++] = a;
		if (us_workload_expand(w->args[i], vars, a, US_WD_STR * 2, err, errlen))
			return -1;
	}
	for (size_t i = 0; i < w->nenv; i++) {
		size_t kl = strlen(w->env_keys[i]);
		char *kv = malloc(kl + 1 + US_WD_STR * 2);

		if (!kv)
			goto oom;
		x->envp[x->nown++] = kv;
		memcpy(kv, w->env_keys[i], kl);
		kv[kl] = '=';
		if (us_workload_expand(w->env_values[i], vars, kv + kl + 1, US_WD_STR * 2, err, errlen))
			return -1;
	}
	/* then ours, minus what the workload sets */
	for (size_t i = 0, k = x->nown; i < nenv; i++) {
		size_t j = 0, kl = strcspn(environ[i], "=");

		while (j < w->nenv && (strlen(w->env_keys[j]) != kl ||
				       strncmp(w->env_keys[j], environ[i], kl)))
			j++;
		if (j == w->nenv)
			x->envp[k++] = environ[i];
	}
	return 0;
oom:
	snprintf(err, errlen, "out of memory");
	return -1;
}

/* In the workload's process, after fork: only async-signal-safe calls.
 * Reports its pid, then either execs (the close-on-exec pipe reaches EOF)
 * or reports the step that failed. */
static void launch_child(const struct launch *x, const int cg_fds[NCG], int ns_fd, int log_fd,
			 int null_fd, int report)
{
	struct start_failure f = { 0, 0 };
	int pid = getpid();

	struct sigaction dfl = { .sa_handler = SIG_DFL };
	sigset_t none;

	if (write(report, &pid, sizeof(pid)) != sizeof(pid))
		_exit(127);
	/* the coordinator's blocked and ignored signals are not the workload's:
	 * a blocked SIGTERM would turn every stop into a SIGKILL */
	for (int sig = 1; sig < NSIG; sig++)
		sigaction(sig, &dfl, NULL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	if (setsid() < 0)
		goto fail;
	f.step = 1;
	for (int i = 0; i < NCG; i++)
		if (cg_fds[i] >= 0 && write(cg_fds[i], "0", 1) != 1)
			goto fail;
	f.step = 2;
	if (setns(ns_fd, CLONE_NEWNET))
		goto fail;
	f.step = 3;
	if (chdir(x->workdir))
		goto fail;
	f.step = 4;
	/* nor its descriptors: a workload holding the coordinator's listening
	 * socket would keep a restarted coordinator from binding it */
	if (dup2(null_fd, 0) < 0 || dup2(log_fd, 1) < 0 || dup2(log_fd, 2) < 0 ||
	    close_range(3, ~0u, CLOSE_RANGE_CLOEXEC))
		goto fail;
	f.step = 5;
	execve(x->exe, x->argv, x->envp);
fail:
	f.err = errno;
	if (write(report, &f, sizeof(f)) != sizeof(f))
		_exit(127);
	_exit(127);
}

/* The egress guard on the instance's v2 cgroup with the definition's
 * allowed destinations plus the instance's own address (a workload talking
 * to itself reaches nothing else). */
static int guard_egress(const struct names *n, const struct us_instance *now,
			const struct us_workload_def *w, char *err, size_t errlen)
{
	struct us_wd_dest allow[US_WD_MAX_ALLOW + 1];

	memcpy(allow, w->allow, w->nallow * sizeof(allow[0]));
	memset(&allow[w->nallow], 0, sizeof(allow[0]));
	if (fmt(allow[w->nallow].address, sizeof(allow[0].address), "%s", now->address)) {
		snprintf(err, errlen, "address \"%s\" is not IPv4", now->address);
		return -1;
	}
	return us_egress_attach(n->cg_v2, allow, w->nallow + 1, err, errlen);
}

/* Double fork: the workload is re-parented away from the coordinator, so it
 * outlives it and never becomes our zombie. */
static int launch(const struct launch *x, const int cg_fds[NCG], int ns_fd, int log_fd,
		  int null_fd, int *pid_out, char *err, size_t errlen)
{
	struct start_failure f;
	int pfd[2], status, pid = 0, rc = -1;
	pid_t mid;
	ssize_t n;

	if (pipe2(pfd, O_CLOEXEC)) {
		snprintf(err, errlen, "pipe: %s", strerror(errno));
		return -1;
	}
	mid = fork();
	if (mid < 0) {
		snprintf(err, errlen, "fork: %s", strerror(errno));
		close(pfd[0]);
		close(pfd[1]);
		return -1;
	}
	if (mid == 0) {
		pid_t child = fork();

		if (child == 0)
			launch_child(x, cg_fds, ns_fd, log_fd, null_fd, pfd[1]);
		_exit(child < 0 ? 1 : 0);
	}
	close(pfd[1]);
	while (waitpid(mid, &status, 0) < 0 && errno == EINTR)
		;
	if (read(pfd[0], &pid, sizeof(pid)) != sizeof(pid)) {
		snprintf(err, errlen, "fork: the workload process did not start");
		goto cleanup;
	}
	while ((n = read(pfd[0], &f, sizeof(f))) < 0 && errno == EINTR)
		;
	if (n == sizeof(f)) {
		snprintf(err, errlen, "%s: %s", start_steps[f.step], strerror(f.err));
		goto cleanup;
	}
	*pid_out = pid;
	rc = 0;
cleanup:
	close(pfd[0]);
	return rc;
}

static int local_start(struct us_provider *p, const struct us_instance *in,
		       const struct us_workload_def *w, char *err, size_t errlen)
{
	struct local *l = impl(p);
	struct us_instance now;
	struct launch x = { 0 };
	struct names n;
	struct record r;
	int cg_fds[NCG] = { -1, -1, -1, -1 }, ns_fd = -1, log_fd = -1, null_fd = -1, rc = -1;
	char path[PATH_MAX + 32], msg[1024];
	struct us_wd_vars vars = { .instance_dir = n.root, .instance_id = in->id,
				   .address = now.address, .port = w->port };
	const char *cgs[NCG] = { n.cg_v2, n.cg_cpu, n.cg_mem, n.cg_acct };

	if (need_instance(p, in->id, &n, &now, err, errlen))
		return -1;
	if (now.state == US_INSTANCE_RUNNING)
		return 0;
	if (record_read(n.state, &r, err, errlen))
		return -1;
	if (launch_prepare(w, &vars, &x, err, errlen) || guard_egress(&n, &now, w, err, errlen))
		goto fail;
	for (int i = 0; i < NCG; i++) {
		if (!cgs[i][0])
			continue;
		snprintf(path, sizeof(path), "%s/cgroup.procs", cgs[i]);
		cg_fds[i] = open(path, O_WRONLY | O_CLOEXEC);
		if (cg_fds[i] < 0) {
			snprintf(err, errlen, "%s: %s", path, strerror(errno));
			goto fail;
		}
	}
	snprintf(path, sizeof(path), NETNS_DIR "/%s", n.netns);
	ns_fd = open(path, O_RDONLY | O_CLOEXEC);
	log_fd = open(n.log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (ns_fd < 0 || log_fd < 0 || null_fd < 0) {
		snprintf(err, errlen, "%s: %s", ns_fd < 0 ? path : log_fd < 0 ? n.log : "/dev/null",
			 strerror(errno));
		goto fail;
	}
	if (launch(&x, cg_fds, ns_fd, log_fd, null_fd, &r.pid, err, errlen))
		goto fail;
	rc = record_write(l, in->id, &n, &r, err, errlen);
	goto cleanup;
fail:
	snprintf(msg, sizeof(msg), "%s", err);
	snprintf(err, errlen, "instance %s: start %s: %s", in->id, w->name, msg);
cleanup:
	for (int i = 0; i < NCG; i++)
		if (cg_fds[i] >= 0)
			close(cg_fds[i]);
	if (ns_fd >= 0)
		close(ns_fd);
	if (log_fd >= 0)
		close(log_fd);
	if (null_fd >= 0)
		close(null_fd);
	launch_free(&x);
	return rc;
}

static int local_stop(struct us_provider *p, const struct us_instance *in,
		      const struct us_workload_def *w, char *err, size_t errlen)
{
	struct local *l = impl(p);
	struct names n;
	struct record r;
	int rc;

	if (names_of(l, in->id, &n, err, errlen))
		return -1;
	rc = record_read(n.state, &r, err, errlen);
	if (rc)
		return rc < 0 ? -1 : 0;
	if (stop_processes(in->id, &n, r.pid, w->stop.signal, w->stop.grace_ns, err, errlen))
		return -1;
	if (!r.pid)
		return 0;
	r.pid = 0;
	return record_write(l, in->id, &n, &r, err, errlen);
}

/* ---- health, traffic ----------------------------------------------------- */

/* 0 connected (fd set), 1 not (reason in err), -1 error */
static int tcp_connect(const char *addr, uint16_t port, int timeout_ms, int *fd_out, char *err,
		       size_t errlen)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
	struct pollfd pfd;
	socklen_t sl = sizeof(int);
	int fd, soerr = 0, r;

	if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1) {
		snprintf(err, errlen, "address \"%s\" is not IPv4", addr);
		return -1;
	}
	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -1;
	}
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) && errno != EINPROGRESS) {
		soerr = errno;
		goto refused;
	}
	pfd = (struct pollfd){ .fd = fd, .events = POLLOUT };
	r = poll(&pfd, 1, timeout_ms);
	if (r == 0) {
		snprintf(err, errlen, "connect to %s:%u: no answer within %d ms", addr, port,
			 timeout_ms);
		close(fd);
		return 1;
	}
	if (r < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) || soerr)
		goto refused;
	*fd_out = fd;
	return 0;
refused:
	snprintf(err, errlen, "connect to %s:%u: %s", addr, port, strerror(soerr ? soerr : errno));
	close(fd);
	return 1;
}

/* GET path; healthy on a 2xx or 3xx status line within the deadline. */
static int http_check(int fd, const char *addr, uint16_t port, const char *path, int timeout_ms,
		      char *err, size_t errlen)
{
	char req[512], resp[256];
	uint64_t deadline = now_ns() + (uint64_t)timeout_ms * 1000000ull;
	size_t got = 0;
	int status;

	snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\nHost: %s:%u\r\nConnection: close\r\n\r\n",
		 path, addr, port);
	if (send(fd, req, strlen(req), MSG_NOSIGNAL) != (ssize_t)strlen(req)) {
		snprintf(err, errlen, "GET http://%s:%u%s: send: %s", addr, port, path,
			 strerror(errno));
		return 1;
	}
	while (got < sizeof(resp) - 1 && !memchr(resp, '\n', got)) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		uint64_t now = now_ns();
		ssize_t n;

		if (now >= deadline || poll(&pfd, 1, (int)((deadline - now) / 1000000ull) + 1) <= 0) {
			snprintf(err, errlen, "GET http://%s:%u%s: no response within %d ms", addr,
				 port, path, timeout_ms);
			return 1;
		}
		n = recv(fd, resp + got, sizeof(resp) - 1 - got, 0);
		if (n <= 0) {
			snprintf(err, errlen, "GET http://%s:%u%s: connection closed before a status",
				 addr, port, path);
			return 1;
		}
		got += (size_t)n;
	}
	resp[got] = '\0';
	if (sscanf(resp, "HTTP/%*d.%*d %d", &status) != 1) {
		snprintf(err, errlen, "GET http://%s:%u%s: not an HTTP response", addr, port, path);
		return 1;
	}
	if (status >= 200 && status < 400)
		return 0;
	snprintf(err, errlen, "GET http://%s:%u%s: status %d", addr, port, path, status);
	return 1;
}

static int local_health(struct us_provider *p, const struct us_instance *in,
			const struct us_workload_def *w, char *err, size_t errlen)
{
	int timeout_ms = (int)(w->health.timeout_ns / 1000000ull), fd = -1, rc;
	char msg[1024];

	if (timeout_ms <= 0)
		timeout_ms = 1;
	if (!in->address[0]) {
		snprintf(err, errlen, "instance %s has no address", in->id);
		return -1;
	}
	rc = tcp_connect(in->address, w->port, timeout_ms, &fd, err, errlen);
	if (rc == 0 && (w->health.kind == US_HEALTH_HTTP || w->health.path[0]))
		rc = http_check(fd, in->address, w->port, w->health.path[0] ? w->health.path : "/",
				timeout_ms, err, errlen);
	if (fd >= 0)
		close(fd);
	if (rc) {
		snprintf(msg, sizeof(msg), "%s", err);
		snprintf(err, errlen, "instance %s: %s", in->id, msg);
	}
	return rc;
}

static int local_shift_traffic(struct us_provider *p, const struct us_workload_def *w,
			       const struct us_backend *b, size_t n, char *err, size_t errlen)
{
	if (!w->service.address[0] || !w->service.clients_cgroup[0]) {
		snprintf(err, errlen, "workload %s: traffic shift needs service.address and "
			 "service.clients_cgroup", w->name);
		return -1;
	}
	return us_steer_set(w->service.clients_cgroup, w->service.address,
			    w->service.port ? w->service.port : w->port, b, n, err, errlen) ? -1 : 0;
}

/* ---- decommission -------------------------------------------------------- */

static int local_decommission(struct us_provider *p, const char *id, char *err, size_t errlen)
{
	struct local *l = impl(p);
	struct names n;
	struct record r;
	char msg[1024], parent[300];
	/* the shared parents go with the last instance (busy otherwise) */
	const char *roots[NCG] = { l->cg_v2, l->cg == CG_HYBRID ? l->cg_cpu : "",
				   l->cg == CG_HYBRID ? l->cg_mem : "",
				   l->cg == CG_HYBRID ? l->cg_acct : "" };
	int rc;

	if (names_of(l, id, &n, err, errlen))
		return -1;
	rc = record_read(n.state, &r, err, errlen);
	if (rc < 0)
		return -1;
	if (stop_processes(id, &n, rc == 0 ? r.pid : 0, SIGTERM, DECOMMISSION_GRACE_NS, err,
			   errlen))
		return -1;
	if (us_egress_detach(n.cg_v2, err, errlen) ||
	    cgroup_remove(n.cg_v2, err, errlen) || cgroup_remove(n.cg_cpu, err, errlen) ||
	    cgroup_remove(n.cg_mem, err, errlen) || cgroup_remove(n.cg_acct, err, errlen) ||
	    net_down(&n, err, errlen) ||
	    rm_rf(n.dir, err, errlen)) {
		snprintf(msg, sizeof(msg), "%s", err);
		snprintf(err, errlen, "instance %s: decommission: %s", id, msg);
		return -1;
	}
	for (int i = 0; i < NCG; i++)
		if (roots[i][0] && !fmt(parent, sizeof(parent), "%s/" CG_PARENT, roots[i]))
			rmdir(parent);
	return 0;
}

static void local_free(struct us_provider *p)
{
	struct local *l = impl(p);

	us_catalog_free(&l->catalog);
	free(l);
	free(p);
}

static const struct us_provider_ops local_ops = {
	.name = "local",
	.provision = local_provision,
	.deploy = local_deploy,
	.start = local_start,
	.stop = local_stop,
	.health = local_health,
	.shift_traffic = local_shift_traffic,
	.decommission = local_decommission,
	.describe = local_describe,
	.free = local_free,
};

/* ---- open -------------------------------------------------------------------- */

static int parse_range(const char *s, uint32_t *net, unsigned *plen, char *err, size_t errlen)
{
	char addr[INET_ADDRSTRLEN];
	const char *slash = strchr(s, '/');
	struct in_addr a;
	char *end;
	long bits;

	if (!slash || (size_t)(slash - s) >= sizeof(addr))
		goto bad;
	memcpy(addr, s, (size_t)(slash - s));
	addr[slash - s] = '\0';
	errno = 0;
	bits = strtol(slash + 1, &end, 10);
	if (inet_pton(AF_INET, addr, &a) != 1 || end == slash + 1 || *end || errno ||
	    bits < 0 || bits > 32)
		goto bad;
	if (bits > 28) {
		snprintf(err, errlen, "provider.local.address_range: \"%s\" is too small: "
			 "at most /28 (instances get a /30 each)", s);
		return -1;
	}
	*net = ntohl(a.s_addr);
	*plen = (unsigned)bits;
	if (bits < 32 && (*net & (bits ? 0xffffffffu >> bits : 0xffffffffu))) {
		snprintf(err, errlen, "provider.local.address_range: \"%s\" has host bits set", s);
		return -1;
	}
	return 0;
bad:
	snprintf(err, errlen, "provider.local.address_range: \"%s\" is not an IPv4 CIDR "
		 "(a.b.c.d/N)", s);
	return -1;
}

int us_provider_local_open(const struct us_provider_config *c, const char *data_dir,
			   struct us_provider **out, char *err, size_t errlen)
{
	struct us_provider *p = calloc(1, sizeof(*p));
	struct local *l = calloc(1, sizeof(*l));
	char cat[US_CATALOG_PATH_MAX], msg[1024];

	*out = NULL;
	if (!p || !l) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	if (!(c->local.scale > 0) || !isfinite(c->local.scale)) {
		snprintf(err, errlen, "provider.local.scale: must be a number > 0 (got %g)",
			 c->local.scale);
		goto fail;
	}
	l->scale = c->local.scale;
	if (parse_range(c->local.address_range, &l->net, &l->plen, err, errlen))
		goto fail;
	if (!valid_name(c->local.prefix, sizeof(l->prefix) - 1)) {
		snprintf(err, errlen, "provider.local.prefix: \"%s\" must be 1-%zu characters of "
			 "[a-z0-9-]", c->local.prefix, sizeof(l->prefix) - 1);
		goto fail;
	}
	snprintf(l->prefix, sizeof(l->prefix), "%s", c->local.prefix);
	if (c->local.state_dir[0] ?
		    fmt(l->state_dir, sizeof(l->state_dir), "%s", c->local.state_dir) :
		    !data_dir || !data_dir[0] ||
			    fmt(l->state_dir, sizeof(l->state_dir), "%s/instances", data_dir)) {
		snprintf(err, errlen, "provider.local.state_dir: %s",
			 c->local.state_dir[0] || (data_dir && data_dir[0]) ? "path too long" :
			 "not set and no data directory to default to");
		goto fail;
	}
	snprintf(l->catalog_path, sizeof(l->catalog_path), "%s",
		 c->local.catalog[0] ? c->local.catalog : us_catalog_default_path(cat, sizeof(cat)));
	if (us_catalog_load(l->catalog_path, &l->catalog, err, errlen)) {
		snprintf(msg, sizeof(msg), "%s", err);
		snprintf(err, errlen, "provider.local.catalog: %s", msg);
		goto fail;
	}
	cgroup_detect(l);
	p->ops = &local_ops;
	p->impl = l;
	*out = p;
	return 0;
fail:
	free(l);
	free(p);
	return -1;
}
