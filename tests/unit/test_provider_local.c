/* The local provider on the real kernel (root): two instances (netns, veth,
 * /30, cgroup with the type's scaled CPU quota and memory limit), idempotent
 * provision, a real nginx deployed, started inside the instance (its cgroup,
 * its namespace), healthy and answering 200 from the host, surviving a
 * reopened provider, stopped and started again; decommission leaving no
 * namespace, link, cgroup, process or state behind; deploy modes (clone,
 * mirror, subset by sample and by hook); the egress guard (a workload in an
 * instance cannot connect to the host's veth address unless the definition
 * lists it, and decommission unpins the guard); and the configuration and
 * type errors. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bpf_env.h"
#include "catalog.h"
#include "egress.h"
#include "provider.h"

#define RANGE "10.252.0.0/24"       /* clear of the e2e labs' 10.200-249 */
#define PREFIX "ust-"
#define PORT 8080
#define NGINX "/usr/sbin/nginx"

struct fixture {
	char dir[64];                   /* everything the test writes */
	char catalog[4096];
	struct us_provider_config cfg;
	struct us_provider *p;
	struct us_catalog cat;
	char cg2_root[256];
	struct us_workload_def w;       /* the test's workload, refilled by each test */
};

static const char *const ids[] = { "t-prod", "t-cand", "t-guard" };

static void sleep_ms(int ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static int exists(const char *path)
{
	return access(path, F_OK) == 0;
}

static void write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_true(fputs(text, f) >= 0);
	assert_int_equal(fclose(f), 0);
}

static int read_text(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "r");
	size_t n;

	if (!f)
		return -1;
	n = fread(buf, 1, len - 1, f);
	buf[n] = '\0';
	fclose(f);
	return 0;
}

static long long read_number(const char *path)
{
	char buf[128];

	if (read_text(path, buf, sizeof(buf)))
		fail_msg("cannot read %s: %s", path, strerror(errno));
	return atoll(buf);
}

/* a key of the instance's state file ("" when absent) */
static void state_value(const struct fixture *f, const char *id, const char *key, char *out,
			size_t len)
{
	char path[256], buf[8192], pat[64];
	const char *s;

	out[0] = '\0';
	snprintf(path, sizeof(path), "%s/instances/%s/instance.state", f->dir, id);
	snprintf(pat, sizeof(pat), "\n%s=", key);
	if (read_text(path, buf + 1, sizeof(buf) - 1))
		return;
	buf[0] = '\n';
	s = strstr(buf, pat);
	if (s)
		snprintf(out, len, "%.*s", (int)strcspn(s + strlen(pat), "\n"), s + strlen(pat));
}

static int open_provider(struct fixture *f)
{
	char err[1024];

	if (us_provider_open(&f->cfg, f->dir, &f->p, err, sizeof(err))) {
		fprintf(stderr, "open: %s\n", err);
		return -1;
	}
	return 0;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char err[1024];

	snprintf(f->dir, sizeof(f->dir), "/tmp/us-test-provider-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	if (exists("data/catalog/aws-ec2.csv"))
		snprintf(f->catalog, sizeof(f->catalog), "data/catalog/aws-ec2.csv");
	else
		us_catalog_default_path(f->catalog, sizeof(f->catalog));
	if (us_catalog_load(f->catalog, &f->cat, err, sizeof(err))) {
		fprintf(stderr, "%s\n", err);
		return -1;
	}
	us_provider_config_defaults(&f->cfg);
	snprintf(f->cfg.local.address_range, sizeof(f->cfg.local.address_range), RANGE);
	snprintf(f->cfg.local.prefix, sizeof(f->cfg.local.prefix), PREFIX);
	snprintf(f->cfg.local.catalog, sizeof(f->cfg.local.catalog), "%s", f->catalog);
	if (us_bpf_env_cgroup2_root(f->cg2_root, sizeof(f->cg2_root), err, sizeof(err)))
		f->cg2_root[0] = '\0';
	*state = f;
	return open_provider(f);
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char err[1024], cmd[128];
	int rc = 0;

	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++)
		if (geteuid() == 0 && f->p->ops->decommission(f->p, ids[i], err, sizeof(err))) {
			fprintf(stderr, "teardown: %s\n", err);
			rc = -1;
		}
	us_provider_free(f->p);
	us_catalog_free(&f->cat);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
	if (system(cmd) != 0)
		rc = -1;
	free(f);
	return rc;
}

static void need_root(const struct fixture *f)
{
	if (geteuid() != 0) {
		fprintf(stderr, "SKIP: needs root (network namespaces, cgroups)\n");
		skip();
	}
	if (!f->cg2_root[0]) {
		fprintf(stderr, "SKIP: no cgroup v2 hierarchy\n");
		skip();
	}
}

static void provision(struct fixture *f, const char *id, const char *type, struct us_instance *in)
{
	char err[1024];

	if (f->p->ops->provision(f->p, id, type, in, err, sizeof(err)))
		fail_msg("provision %s: %s", id, err);
}

/* 1 when a TCP connect gets an answer (accepted or refused: either way the
 * address is reachable), 0 when it times out or the network says no */
static int reachable(const char *addr, uint16_t port, int *accepted)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
	struct timeval tv = { .tv_sec = 2 };
	int fd = socket(AF_INET, SOCK_STREAM, 0), rc, e;

	assert_true(fd >= 0);
	assert_int_equal(inet_pton(AF_INET, addr, &sa.sin_addr), 1);
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	e = errno;
	close(fd);
	if (accepted)
		*accepted = rc == 0;
	return rc == 0 || e == ECONNREFUSED;
}

/* status code of GET / from the host; -1 when there is no HTTP answer */
static int http_get(const char *addr, uint16_t port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
	struct timeval tv = { .tv_sec = 2 };
	char req[128], resp[512];
	int fd = socket(AF_INET, SOCK_STREAM, 0), status = -1;
	ssize_t n;

	assert_true(fd >= 0);
	inet_pton(AF_INET, addr, &sa.sin_addr);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	snprintf(req, sizeof(req), "GET / HTTP/1.0\r\nHost: %s\r\n\r\n", addr);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
	    write(fd, req, strlen(req)) == (ssize_t)strlen(req) &&
	    (n = read(fd, resp, sizeof(resp) - 1)) > 0) {
		resp[n] = '\0';
		if (sscanf(resp, "HTTP/%*d.%*d %d", &status) != 1)
			status = -1;
	}
	close(fd);
	return status;
}

/* the v1 (hybrid) or v2 file holding a cgroup limit of the instance */
static void limit_paths(const struct fixture *f, const struct us_instance *in, char *cpu,
			char *mem, size_t len, int *v2)
{
	char ctl[256] = "", path[512];
	const char *rel = in->cgroup + strlen(f->cg2_root);

	snprintf(path, sizeof(path), "%s/cgroup.controllers", f->cg2_root);
	read_text(path, ctl, sizeof(ctl));
	*v2 = strstr(ctl, "cpu") && strstr(ctl, "memory");
	if (*v2) {
		snprintf(cpu, len, "%s/cpu.max", in->cgroup);
		snprintf(mem, len, "%s/memory.max", in->cgroup);
	} else {
		snprintf(cpu, len, "/sys/fs/cgroup/cpu%s", rel);
		snprintf(mem, len, "/sys/fs/cgroup/memory%s", rel);
	}
}

static void check_limits(const struct fixture *f, const struct us_instance *in)
{
	const struct us_itype *t = us_catalog_find(&f->cat, in->type);
	char cpu[600], mem[600], path[700], buf[128];
	long long quota, period, limit;
	int v2;

	assert_non_null(t);
	limit_paths(f, in, cpu, mem, sizeof(cpu), &v2);
	if (v2) {
		snprintf(path, sizeof(path), "%s", cpu);
		assert_int_equal(read_text(path, buf, sizeof(buf)), 0);
		assert_int_equal(sscanf(buf, "%lld %lld", &quota, &period), 2);
		snprintf(path, sizeof(path), "%s", mem);
		limit = read_number(path);
	} else {
		snprintf(path, sizeof(path), "%s/cpu.cfs_quota_us", cpu);
		quota = read_number(path);
		snprintf(path, sizeof(path), "%s/cpu.cfs_period_us", cpu);
		period = read_number(path);
		snprintf(path, sizeof(path), "%s/memory.limit_in_bytes", mem);
		limit = read_number(path);
	}
	assert_int_equal(quota, llround(t->vcpu * f->cfg.local.scale * (double)period));
	assert_int_equal(limit, (long long)(t->memory_gib * f->cfg.local.scale * 1073741824.0));
}

static void netns_path(const char *id, char *out, size_t len)
{
	snprintf(out, len, "/run/netns/" PREFIX "%s", id);
}

/* ---- provision ---------------------------------------------------------- */

static void test_provision(void **state)
{
	struct fixture *f = *state;
	struct us_instance a, b;
	char ns[128];

	need_root(f);
	provision(f, ids[0], "m5.xlarge", &a);
	provision(f, ids[1], "m5.large", &b);
	assert_int_equal(a.state, US_INSTANCE_PROVISIONED);
	assert_int_equal(b.state, US_INSTANCE_PROVISIONED);
	assert_string_equal(a.type, "m5.xlarge");
	assert_true(a.provision_s > 0 && a.provision_s < 30);
	for (size_t i = 0; i < 2; i++) {
		netns_path(ids[i], ns, sizeof(ns));
		assert_true(exists(ns));
	}
	assert_string_not_equal(a.address, b.address);
	/* the lowest /30s of the range, instance side .2 */
	assert_string_equal(a.address, "10.252.0.2");
	assert_string_equal(b.address, "10.252.0.6");
	/* nothing listens: a refusal proves the host reaches the namespace */
	assert_true(reachable(a.address, 9, NULL));
	assert_true(reachable(b.address, 9, NULL));
	assert_true(exists(a.cgroup));
	assert_true(strncmp(a.cgroup, f->cg2_root, strlen(f->cg2_root)) == 0);
	assert_non_null(strstr(a.cgroup, "/understudy/" PREFIX "t-prod"));
	check_limits(f, &a);
	check_limits(f, &b);
}

static void test_provision_idempotent(void **state)
{
	struct fixture *f = *state;
	struct us_instance a, again;

	need_root(f);
	provision(f, ids[0], "m5.xlarge", &a);
	provision(f, ids[0], "m5.xlarge", &again);
	assert_int_equal(again.state, US_INSTANCE_PROVISIONED);
	assert_string_equal(again.address, a.address);
	assert_string_equal(again.cgroup, a.cgroup);
	assert_true(again.provision_s == a.provision_s);   /* not provisioned twice */
}

/* The system is the truth: a namespace deleted behind the provider's back
 * makes the instance absent, and provisioning it again rebuilds it on the
 * /30 it had. */
static void test_describe_follows_system(void **state)
{
	struct fixture *f = *state;
	struct us_instance b, d;
	char err[1024], ns[128];

	need_root(f);
	provision(f, ids[1], "m5.large", &b);
	assert_int_equal(system("ip netns del " PREFIX "t-cand"), 0);
	assert_int_equal(f->p->ops->describe(f->p, ids[1], &d, err, sizeof(err)), 0);
	assert_int_equal(d.state, US_INSTANCE_ABSENT);
	provision(f, ids[1], "m5.large", &d);
	assert_int_equal(d.state, US_INSTANCE_PROVISIONED);
	assert_string_equal(d.address, b.address);
	netns_path(ids[1], ns, sizeof(ns));
	assert_true(exists(ns));
	assert_true(reachable(d.address, 9, NULL));
}

static void test_unknown_type(void **state)
{
	struct fixture *f = *state;
	struct us_instance in;
	char err[1024] = "";

	assert_int_equal(f->p->ops->provision(f->p, "t-bogus", "m9.huge", &in, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "\"m9.huge\""));
	assert_non_null(strstr(err, f->catalog));
	assert_int_equal(f->p->ops->describe(f->p, "t-bogus", &in, err, sizeof(err)), 0);
	assert_int_equal(in.state, US_INSTANCE_ABSENT);
	assert_int_equal(f->p->ops->provision(f->p, "Bad/Id", "m5.large", &in, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "Bad/Id"));
}

/* ---- nginx ------------------------------------------------------------- */

static void nginx_def(const struct fixture *f, struct us_workload_def *w)
{
	static const char conf[] =
		"daemon off;\nmaster_process off;\npid nginx.pid;\nerror_log stderr;\n"
		"events { worker_connections 64; }\n"
		"http {\n  access_log off;\n"
		"  client_body_temp_path body; proxy_temp_path proxy; fastcgi_temp_path fastcgi;\n"
		"  uwsgi_temp_path uwsgi; scgi_temp_path scgi;\n"
		"  server { listen 8080; location / { return 200 \"ok\\n\"; } }\n}\n";
	static const char *const args[] = { "-p", "${INSTANCE_DIR}/", "-e", "stderr", "-c",
					    "${INSTANCE_DIR}/nginx.conf" };
	char path[128];

	us_workload_def_defaults(w);
	snprintf(w->name, sizeof(w->name), "web");
	snprintf(w->command, sizeof(w->command), NGINX);
	for (size_t i = 0; i < sizeof(args) / sizeof(args[0]); i++)
		snprintf(w->args[w->nargs++], sizeof(w->args[0]), "%s", args[i]);
	snprintf(path, sizeof(path), "%s/files", f->dir);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/files/nginx.conf", f->dir);
	write_text(path, conf);
	snprintf(w->files[w->nfiles++], sizeof(w->files[0]), "%s", path);
	w->port = PORT;
	w->health.kind = US_HEALTH_HTTP;
	snprintf(w->health.path, sizeof(w->health.path), "/");
	w->health.timeout_ns = 1000000000ull;
	w->stop.grace_ns = 5000000000ull;
}

/* health until 0, at most 10 s */
static int wait_healthy(struct fixture *f, const struct us_instance *in,
			const struct us_workload_def *w, char *err, size_t errlen)
{
	int rc = 1;

	for (int i = 0; i < 100 && rc == 1; i++) {
		rc = f->p->ops->health(f->p, in, w, err, errlen);
		if (rc == 1)
			sleep_ms(100);
	}
	return rc;
}

static int pid_in_procs(const char *cgroup, int pid)
{
	char path[600], buf[4096];
	char *save;

	snprintf(path, sizeof(path), "%s/cgroup.procs", cgroup);
	if (read_text(path, buf, sizeof(buf)))
		return 0;
	for (char *t = strtok_r(buf, "\n", &save); t; t = strtok_r(NULL, "\n", &save))
		if (atoi(t) == pid)
			return 1;
	return 0;
}

/* a process that exists and is not a zombie */
static int alive(int pid)
{
	char path[64], buf[512];
	const char *paren;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	if (read_text(path, buf, sizeof(buf)))
		return 0;
	paren = strrchr(buf, ')');
	return paren && paren[1] == ' ' && paren[2] != 'Z' && paren[2] != 'X';
}

/* On a hybrid host, the v1 cpu, cpuacct and memory cgroups of pid are the
 * instance's too (the agent reads them); 1 when they are or there are none. */
static int v1_cgroups_match(int pid, const char *cgroup)
{
	char path[64], buf[4096];
	const char *rel = strstr(cgroup, "/understudy/");
	char *save;

	snprintf(path, sizeof(path), "/proc/%d/cgroup", pid);
	if (!rel || read_text(path, buf, sizeof(buf)))
		return 0;
	for (char *t = strtok_r(buf, "\n", &save); t; t = strtok_r(NULL, "\n", &save)) {
		char ctl[128], cg[512];

		if (sscanf(t, "%*[^:]:%127[^:]:%511s", ctl, cg) != 2)
			continue;
		for (char *s2, *c = strtok_r(ctl, ",", &s2); c; c = strtok_r(NULL, ",", &s2))
			if ((!strcmp(c, "cpu") || !strcmp(c, "cpuacct") || !strcmp(c, "memory")) &&
			    strcmp(cg, rel))
				return 0;
	}
	return 1;
}

static int same_netns(int pid, const char *id)
{
	char a[64], b[128];
	struct stat sa, sb;

	snprintf(a, sizeof(a), "/proc/%d/ns/net", pid);
	netns_path(id, b, sizeof(b));
	return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_ino == sb.st_ino &&
	       sa.st_dev == sb.st_dev;
}

static void test_nginx(void **state)
{
	struct fixture *f = *state;
	struct us_deploy_opts o = { .mode = US_REPL_MIRROR };
	struct us_workload_def *w = &f->w;
	struct us_instance in, d;
	char err[1024], path[256];
	int pid, leak, rc;
	sigset_t term;
	time_t t0;

	need_root(f);
	if (access(NGINX, X_OK)) {
		fprintf(stderr, "SKIP: %s is not installed (apt-get install nginx-light)\n", NGINX);
		skip();
	}
	nginx_def(f, w);
	provision(f, ids[0], "m5.xlarge", &in);
	if (f->p->ops->deploy(f->p, &in, w, &o, err, sizeof(err)))
		fail_msg("deploy: %s", err);
	snprintf(path, sizeof(path), "%s/instances/%s/root/nginx.conf", f->dir, ids[0]);
	assert_true(exists(path));
	/* not running yet */
	assert_int_equal(f->p->ops->health(f->p, &in, w, err, sizeof(err)), 1);
	/* the coordinator's blocked SIGTERM and open descriptors stay its own */
	sigemptyset(&term);
	sigaddset(&term, SIGTERM);
	sigprocmask(SIG_BLOCK, &term, NULL);
	leak = open("/dev/null", O_RDONLY);
	assert_true(leak >= 0);
	assert_int_equal(dup2(leak, 900), 900);  /* above anything nginx opens */
	close(leak);
	leak = 900;
	rc = f->p->ops->start(f->p, &in, w, err, sizeof(err));
	sigprocmask(SIG_UNBLOCK, &term, NULL);
	if (rc)
		fail_msg("start: %s", err);
	if (wait_healthy(f, &in, w, err, sizeof(err)))
		fail_msg("nginx never healthy: %s", err);
	assert_int_equal(http_get(in.address, PORT), 200);
	assert_int_equal(f->p->ops->describe(f->p, ids[0], &d, err, sizeof(err)), 0);
	assert_int_equal(d.state, US_INSTANCE_RUNNING);
	pid = d.pid;
	assert_true(pid > 0);
	assert_true(pid_in_procs(in.cgroup, pid));
	assert_true(v1_cgroups_match(pid, in.cgroup));
	assert_true(same_netns(pid, ids[0]));
	snprintf(path, sizeof(path), "/proc/%d/fd/%d", pid, leak);
	assert_false(exists(path));
	close(leak);
	/* start of a running workload does nothing */
	assert_int_equal(f->p->ops->start(f->p, &in, w, err, sizeof(err)), 0);
	assert_int_equal(f->p->ops->describe(f->p, ids[0], &d, err, sizeof(err)), 0);
	assert_int_equal(d.pid, pid);

	/* a restarted coordinator: the workload lives on and is found again */
	us_provider_free(f->p);
	f->p = NULL;
	assert_int_equal(open_provider(f), 0);
	assert_int_equal(f->p->ops->describe(f->p, ids[0], &d, err, sizeof(err)), 0);
	assert_int_equal(d.state, US_INSTANCE_RUNNING);
	assert_int_equal(d.pid, pid);
	assert_string_equal(d.address, in.address);
	assert_int_equal(http_get(in.address, PORT), 200);

	t0 = time(NULL);
	if (f->p->ops->stop(f->p, &in, w, err, sizeof(err)))
		fail_msg("stop: %s", err);
	assert_true(time(NULL) - t0 < 4);       /* SIGTERM did it, well before the grace */
	assert_int_equal(f->p->ops->health(f->p, &in, w, err, sizeof(err)), 1);
	assert_non_null(strstr(err, in.address));
	assert_int_equal(f->p->ops->describe(f->p, ids[0], &d, err, sizeof(err)), 0);
	assert_int_equal(d.state, US_INSTANCE_PROVISIONED);
	assert_int_equal(d.pid, 0);
	assert_false(pid_in_procs(in.cgroup, pid));
	assert_false(alive(pid));
	assert_int_equal(f->p->ops->stop(f->p, &in, w, err, sizeof(err)), 0);  /* idempotent */

	if (f->p->ops->start(f->p, &in, w, err, sizeof(err)))
		fail_msg("start again: %s", err);
	if (wait_healthy(f, &in, w, err, sizeof(err)))
		fail_msg("nginx never healthy after restart: %s", err);
	assert_int_equal(http_get(in.address, PORT), 200);
}

static void test_start_failure(void **state)
{
	struct fixture *f = *state;
	struct us_workload_def *w = &f->w;
	struct us_instance in;
	char err[1024];

	need_root(f);
	us_workload_def_defaults(w);
	snprintf(w->name, sizeof(w->name), "broken");
	snprintf(w->command, sizeof(w->command), "/bin/true");
	snprintf(w->workdir, sizeof(w->workdir), "${INSTANCE_DIR}/no/such/dir");
	provision(f, ids[1], "m5.large", &in);
	assert_int_equal(f->p->ops->start(f->p, &in, w, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "working directory"));
	snprintf(w->command, sizeof(w->command), "no-such-command-here");
	w->workdir[0] = '\0';
	assert_int_equal(f->p->ops->start(f->p, &in, w, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "no-such-command-here"));
}

/* ---- deploy modes ------------------------------------------------------- */

/* bytes and files under dir */
static void du(const char *dir, long long *bytes, int *files)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	*bytes = 0;
	*files = 0;
	if (!d)
		return;
	while ((e = readdir(d))) {
		char path[600];
		struct stat st;

		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
			*bytes += st.st_size;
			(*files)++;
		}
	}
	closedir(d);
}

static void test_deploy_modes(void **state)
{
	struct fixture *f = *state;
	struct us_workload_def *w = &f->w;
	struct us_deploy_opts o = { .mode = US_REPL_CLONE };
	struct us_instance in;
	char err[1024], data[128], path[300], copy[256], buf[64];
	long long total = 0, bytes, largest = 0;
	int files;

	need_root(f);
	us_workload_def_defaults(w);
	snprintf(w->name, sizeof(w->name), "db");
	snprintf(w->command, sizeof(w->command), "/bin/true");
	snprintf(data, sizeof(data), "%s/data", f->dir);
	assert_int_equal(mkdir(data, 0755), 0);
	for (int i = 0; i < 20; i++) {
		long long size = 1000 + 500 * i;
		char *blob = malloc((size_t)size + 1);

		memset(blob, 'a' + i, (size_t)size);
		blob[size] = '\0';
		snprintf(path, sizeof(path), "%s/part-%02d", data, i);
		write_text(path, blob);
		free(blob);
		total += size;
		largest = size;
	}
	snprintf(w->data[w->ndata++], sizeof(w->data[0]), "%s", data);
	snprintf(copy, sizeof(copy), "%s/instances/%s/root/data", f->dir, ids[1]);
	provision(f, ids[1], "m5.large", &in);

	if (f->p->ops->deploy(f->p, &in, w, &o, err, sizeof(err)))
		fail_msg("clone: %s", err);
	du(copy, &bytes, &files);
	assert_int_equal(files, 20);
	assert_int_equal(bytes, total);

	o = (struct us_deploy_opts){ .mode = US_REPL_SUBSET, .sample = 0.5 };
	if (f->p->ops->deploy(f->p, &in, w, &o, err, sizeof(err)))
		fail_msg("subset: %s", err);
	du(copy, &bytes, &files);
	/* files in order while they fit in half the bytes: short by less than one */
	assert_true(bytes <= total / 2 && bytes > total / 2 - largest);
	assert_true(files > 0 && files < 20);
	snprintf(path, sizeof(path), "%s/part-00", copy);
	assert_true(exists(path));              /* sorted order: the first ones */

	o = (struct us_deploy_opts){ .mode = US_REPL_SUBSET };
	w->subset_budget_bytes = 3000;
	if (f->p->ops->deploy(f->p, &in, w, &o, err, sizeof(err)))
		fail_msg("subset by budget: %s", err);
	du(copy, &bytes, &files);
	assert_int_equal(files, 2);             /* 1000 + 1500; 2000 more would exceed it */
	assert_int_equal(bytes, 1000 + 1500);

	o = (struct us_deploy_opts){ .mode = US_REPL_SUBSET, .sample = 0.25 };
	snprintf(w->subset_hook, sizeof(w->subset_hook),
		 "echo \"$SAMPLE $BUDGET $DATA_DIRS\" > \"$INSTANCE_DIR/hook.out\"");
	if (f->p->ops->deploy(f->p, &in, w, &o, err, sizeof(err)))
		fail_msg("subset hook: %s", err);
	du(copy, &bytes, &files);
	assert_int_equal(files, 0);             /* the hook decides, and wrote none */
	snprintf(path, sizeof(path), "%s/instances/%s/root/hook.out", f->dir, ids[1]);
	assert_int_equal(read_text(path, buf, sizeof(buf)), 0);
	snprintf(path, sizeof(path), "0.25 3000 %s\n", data);
	assert_string_equal(buf, path);
	snprintf(w->subset_hook, sizeof(w->subset_hook), "echo no space >&2; exit 3");
	assert_int_equal(f->p->ops->deploy(f->p, &in, w, &o, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "exit status 3"));
	assert_non_null(strstr(err, "no space"));

	o = (struct us_deploy_opts){ .mode = US_REPL_CLONE };
	assert_int_equal(f->p->ops->deploy(f->p, &in, w, &o, err, sizeof(err)), 0);
	o = (struct us_deploy_opts){ .mode = US_REPL_MIRROR };
	assert_int_equal(f->p->ops->deploy(f->p, &in, w, &o, err, sizeof(err)), 0);
	assert_false(exists(copy));             /* mirror: no data, not even an old copy */

	o = (struct us_deploy_opts){ .mode = US_REPL_CLONE };
	assert_int_equal(f->p->ops->deploy(f->p, &(struct us_instance){ .id = "t-none" }, w, &o, err,
					   sizeof(err)), -1);
	assert_non_null(strstr(err, "t-none is not provisioned"));
}

/* ---- egress guard -------------------------------------------------------- */

/* A TCP listener on addr, port chosen by the kernel; fd, port in *port. */
static int listen_any_port(const char *addr, uint16_t *port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	assert_int_equal(inet_pton(AF_INET, addr, &sa.sin_addr), 1);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fd, 16), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	*port = ntohs(sa.sin_port);
	return fd;
}

/* Whether the line of out starting with "PORT " says what. */
static int port_line_says(const char *out, unsigned port, const char *what)
{
	char start[16], line[256];
	const char *s = out;

	snprintf(start, sizeof(start), "%u ", port);
	for (; *s; s += strcspn(s, "\n") + (s[strcspn(s, "\n")] ? 1 : 0))
		if (!strncmp(s, start, strlen(start))) {
			snprintf(line, sizeof(line), "%.*s", (int)strcspn(s, "\n"), s);
			return strstr(line, what) != NULL;
		}
	return 0;
}

/* The workload tries bash's /dev/tcp to each "ADDR/PORT" and writes one
 * line per try ("PORT connected" or "PORT <bash's error>") to
 * ${INSTANCE_DIR}/egress.out, then "done". */
static void prober_def(struct us_workload_def *w, const char *host, uint16_t denied,
		       uint16_t listed, const char *self)
{
	us_workload_def_defaults(w);
	snprintf(w->name, sizeof(w->name), "prober");
	snprintf(w->command, sizeof(w->command), "/bin/bash");
	snprintf(w->args[w->nargs++], sizeof(w->args[0]), "-c");
	snprintf(w->args[w->nargs++], sizeof(w->args[0]),
		 "try() { if e=$( (exec 3<>/dev/tcp/$1/$2) 2>&1 ); then echo \"$2 connected\"; "
		 "else echo \"$2 $e\"; fi; }; "
		 "{ try %s %u; try %s %u; try %s 9; echo done; } > ${INSTANCE_DIR}/egress.out",
		 host, denied, host, listed, self);
	w->port = PORT;
	snprintf(w->allow[w->nallow].address, sizeof(w->allow[0].address), "%s", host);
	w->allow[w->nallow++].port = listed;
}

static void test_egress_guard(void **state)
{
	struct fixture *f = *state;
	struct us_workload_def *w = &f->w;
	struct us_deploy_opts o = { .mode = US_REPL_MIRROR };
	struct us_egress_counts c;
	struct us_instance in;
	struct in_addr a;
	struct stat st;
	char err[1024], host[INET_ADDRSTRLEN], out[1024], path[256], pins[128];
	uint16_t denied, listed;
	int lfd[2], done = 0;

	need_root(f);
	if (access("/bin/bash", X_OK)) {
		fprintf(stderr, "SKIP: /bin/bash is not installed (the prober uses /dev/tcp)\n");
		skip();
	}
	provision(f, ids[2], "m5.large", &in);
	/* the host side of the instance's /30: the address just below its own */
	assert_int_equal(inet_pton(AF_INET, in.address, &a), 1);
	a.s_addr = htonl(ntohl(a.s_addr) - 1);
	inet_ntop(AF_INET, &a, host, sizeof(host));
	lfd[0] = listen_any_port(host, &denied);
	lfd[1] = listen_any_port(host, &listed);
	prober_def(w, host, denied, listed, in.address);
	if (f->p->ops->deploy(f->p, &in, w, &o, err, sizeof(err)))
		fail_msg("deploy: %s", err);
	if (f->p->ops->start(f->p, &in, w, err, sizeof(err)))
		fail_msg("start: %s", err);
	snprintf(path, sizeof(path), "%s/instances/%s/root/egress.out", f->dir, ids[2]);
	for (int i = 0; i < 100 && !done; i++) {
		done = read_text(path, out, sizeof(out)) == 0 && strstr(out, "done\n");
		if (!done)
			sleep_ms(100);
	}
	print_message("%s", out);
	assert_true(done);
	/* the host's address: refused by the guard, nothing reached the listener */
	assert_true(port_line_says(out, denied, "connect: Operation not permitted"));
	assert_int_equal(accept4(lfd[0], NULL, NULL, SOCK_CLOEXEC), -1);
	assert_int_equal(errno, EAGAIN);
	/* the listed destination: connected */
	assert_true(port_line_says(out, listed, "connected"));
	/* its own address: allowed (refused by the stack, nothing listens on 9) */
	assert_true(port_line_says(out, 9, "connect: Connection refused"));
	assert_int_equal(us_egress_counts(in.cgroup, &c, err, sizeof(err)), 0);
	assert_int_equal(c.denied, 1);
	assert_int_equal(c.allowed, 2);
	close(lfd[0]);
	close(lfd[1]);

	/* decommission leaves no guard behind */
	assert_int_equal(stat(in.cgroup, &st), 0);
	snprintf(pins, sizeof(pins), US_EGRESS_PIN_ROOT "/%llu", (unsigned long long)st.st_ino);
	assert_true(exists(pins));
	if (f->p->ops->decommission(f->p, ids[2], err, sizeof(err)))
		fail_msg("decommission: %s", err);
	assert_false(exists(pins));
	assert_false(exists(in.cgroup));
}

/* ---- decommission -------------------------------------------------------- */

static void test_decommission(void **state)
{
	struct fixture *f = *state;
	struct us_instance in, d;
	char err[1024], veth[32], cg_cpu[512], cg_mem[512], cg_acct[512], ns[128], path[256];
	char netdev[64], netdev1[64];
	int pid;

	need_root(f);
	provision(f, ids[0], "m5.xlarge", &in);
	assert_int_equal(f->p->ops->describe(f->p, ids[0], &d, err, sizeof(err)), 0);
	pid = d.pid;            /* nginx from test_nginx, left running */
	if (access(NGINX, X_OK) == 0)
		assert_true(pid > 0);
	state_value(f, ids[0], "veth", veth, sizeof(veth));
	state_value(f, ids[0], "cgroup_cpu", cg_cpu, sizeof(cg_cpu));
	state_value(f, ids[0], "cgroup_memory", cg_mem, sizeof(cg_mem));
	state_value(f, ids[0], "cgroup_cpuacct", cg_acct, sizeof(cg_acct));
	assert_true(veth[0] != '\0');
	snprintf(netdev, sizeof(netdev), "/sys/class/net/%s", veth);
	assert_true(exists(netdev));
	/* names come from the id: a lost state file does not strand anything */
	state_value(f, ids[1], "veth", veth, sizeof(veth));
	snprintf(netdev1, sizeof(netdev1), "/sys/class/net/%s", veth);
	assert_true(exists(netdev1));
	snprintf(path, sizeof(path), "%s/instances/%s/instance.state", f->dir, ids[1]);
	assert_int_equal(unlink(path), 0);

	for (size_t i = 0; i < 2; i++)
		if (f->p->ops->decommission(f->p, ids[i], err, sizeof(err)))
			fail_msg("decommission %s: %s", ids[i], err);
	assert_int_equal(f->p->ops->describe(f->p, ids[0], &d, err, sizeof(err)), 0);
	assert_int_equal(d.state, US_INSTANCE_ABSENT);
	netns_path(ids[0], ns, sizeof(ns));
	assert_false(exists(ns));
	assert_false(exists(netdev));
	assert_false(exists(in.cgroup));
	if (cg_cpu[0])
		assert_false(exists(cg_cpu));
	if (cg_mem[0])
		assert_false(exists(cg_mem));
	if (cg_acct[0])
		assert_false(exists(cg_acct));
	if (pid > 0)
		assert_false(alive(pid));
	snprintf(path, sizeof(path), "%s/instances/%s", f->dir, ids[0]);
	assert_false(exists(path));
	netns_path(ids[1], ns, sizeof(ns));
	assert_false(exists(ns));
	assert_false(exists(netdev1));
	assert_int_equal(f->p->ops->decommission(f->p, ids[0], err, sizeof(err)), 0);
}

/* Steering itself is coordinator/steer.c's test; here, the provider refuses
 * a workload without the service address clients use. */
static void test_shift_needs_service(void **state)
{
	struct fixture *f = *state;
	struct us_backend b = { .address = "10.252.0.2", .port = PORT, .weight = 1 };
	char err[1024];

	us_workload_def_defaults(&f->w);
	snprintf(f->w.name, sizeof(f->w.name), "web");
	assert_int_equal(f->p->ops->shift_traffic(f->p, &f->w, &b, 1, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "service.address"));
}

/* ---- configuration -------------------------------------------------------- */

static void expect_open_error(const struct us_provider_config *c, const char *needle)
{
	struct us_provider *p = NULL;
	char err[1024] = "";

	assert_int_equal(us_provider_open(c, "/tmp", &p, err, sizeof(err)), -1);
	assert_null(p);
	if (!strstr(err, needle))
		fail_msg("error \"%s\" does not name \"%s\"", err, needle);
}

static void test_bad_config(void **state)
{
	struct fixture *f = *state;
	struct us_provider_config c = f->cfg;
	enum us_repl_mode m;

	c.local.scale = 0;
	expect_open_error(&c, "provider.local.scale");
	c.local.scale = -1;
	expect_open_error(&c, "provider.local.scale");
	c.local.scale = NAN;
	expect_open_error(&c, "provider.local.scale");
	c = f->cfg;
	snprintf(c.local.address_range, sizeof(c.local.address_range), "10.0.0.0/30");
	expect_open_error(&c, "at most /28");
	snprintf(c.local.address_range, sizeof(c.local.address_range), "10.0.0.0");
	expect_open_error(&c, "not an IPv4 CIDR");
	snprintf(c.local.address_range, sizeof(c.local.address_range), "300.0.0.0/16");
	expect_open_error(&c, "not an IPv4 CIDR");
	snprintf(c.local.address_range, sizeof(c.local.address_range), "10.0.0.1/16");
	expect_open_error(&c, "host bits");
	c = f->cfg;
	snprintf(c.local.prefix, sizeof(c.local.prefix), "Us_");
	expect_open_error(&c, "provider.local.prefix");
	c = f->cfg;
	snprintf(c.local.catalog, sizeof(c.local.catalog), "/nonexistent/catalog.csv");
	expect_open_error(&c, "/nonexistent/catalog.csv");
	c = f->cfg;
	snprintf(c.kind, sizeof(c.kind), "cloud9");
	expect_open_error(&c, "provider.kind");

	assert_string_equal(us_instance_state_name(US_INSTANCE_RUNNING), "running");
	assert_int_equal(us_repl_mode_parse("subset", &m), 0);
	assert_int_equal(m, US_REPL_SUBSET);
	assert_string_equal(us_repl_mode_name(m), "subset");
	assert_int_equal(us_repl_mode_parse("copy", &m), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bad_config),
		cmocka_unit_test(test_unknown_type),
		cmocka_unit_test(test_shift_needs_service),
		cmocka_unit_test(test_provision),
		cmocka_unit_test(test_provision_idempotent),
		cmocka_unit_test(test_describe_follows_system),
		cmocka_unit_test(test_nginx),
		cmocka_unit_test(test_start_failure),
		cmocka_unit_test(test_deploy_modes),
		cmocka_unit_test(test_egress_guard),
		cmocka_unit_test(test_decommission),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
