/* Kernel test of bpf/steer.bpf.c through coordinator/steer.c: the real
 * program attached to a real cgroup v2 directory, real TCP listeners on
 * loopback (127.0.0.2:P and 127.0.0.3:P, the backends) and clients forked
 * into the cgroup that connect to the service address 127.0.0.99:P, where
 * nothing listens. Needs root and a cgroup v2 hierarchy; when one is
 * missing every test prints why and skips.
 *
 * Pins go to the host's bpffs when one is mounted at /sys/fs/bpf; every
 * test clears its services and the group teardown removes any pin left for
 * the test cgroup (us-ktest-steer-<pid>-a under the v2 root), which it then
 * removes, as kcg_setup removes leftovers of killed runs. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "../../coordinator/steer.h"
#include "lib/kcgroup.h"

#define CG_PREFIX "us-ktest-steer-"
#define SERVICE "127.0.0.99"
#define SERVICE2 "127.0.0.98"
#define TIMEOUT_MS 30000

/* exit codes of a client child */
enum { ALL_CONNECTED = 0, ALL_REFUSED = 1, MIXED = 2, SETUP_FAILED = 3 };

struct fixture {
	struct kcgroups k;		/* [0]: the clients' cgroup */
	const char *cg;
	int lfd[2];			/* listeners on 127.0.0.2:port, 127.0.0.3:port */
	uint16_t port;
	char pin_dir[128];		/* where steer.c must pin for the cgroup */
	pid_t kid;
};

static const char *const backend_ip[2] = { "127.0.0.2", "127.0.0.3" };

static int listen_on(const char *ip, uint16_t port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	inet_pton(AF_INET, ip, &a.sin_addr);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) || listen(fd, 4096)) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

static uint16_t local_port(int fd)
{
	struct sockaddr_in a;
	socklen_t len = sizeof(a);

	return getsockname(fd, (struct sockaddr *)&a, &len) ? 0 : ntohs(a.sin_port);
}

/* Both backends on one port P (the service's too): 127.0.0.2:P is an
 * ephemeral port, 127.0.0.3:P may be taken, then another P is tried. */
static int open_listeners(struct fixture *f)
{
	for (int attempt = 0; attempt < 20; attempt++) {
		f->lfd[0] = listen_on(backend_ip[0], 0);
		f->port = f->lfd[0] >= 0 ? local_port(f->lfd[0]) : 0;
		f->lfd[1] = f->port ? listen_on(backend_ip[1], f->port) : -1;
		if (f->lfd[1] >= 0)
			return 0;
		if (f->lfd[0] >= 0)
			close(f->lfd[0]);
		f->lfd[0] = -1;
	}
	return -1;
}

static void remove_pin_dir(const char *dir)
{
	static const char *const names[] = { "services", "counters", "link4", "link6" };
	char path[256];

	for (size_t i = 0; i < 4; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		unlink(path);
	}
	rmdir(dir);
}

static int group_setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	*state = f;
	f->lfd[0] = f->lfd[1] = -1;
	kcg_setup(&f->k, CG_PREFIX, 1, NULL);
	if (f->k.skip_reason[0])
		return 0;
	f->cg = f->k.path[0];
	snprintf(f->pin_dir, sizeof(f->pin_dir), US_STEER_PIN_ROOT "/%llu",
		 (unsigned long long)f->k.id[0]);
	if (open_listeners(f)) {
		snprintf(f->k.skip_reason, sizeof(f->k.skip_reason),
			 "cannot listen on %s and %s on one port: %s", backend_ip[0],
			 backend_ip[1], strerror(errno));
		return 0;
	}
	print_message("clients cgroup %s (id %llu), backends %s:%u %s:%u, service %s:%u\n",
		      f->cg, (unsigned long long)f->k.id[0], backend_ip[0], f->port,
		      backend_ip[1], f->port, SERVICE, f->port);
	return 0;
}

static void reap_kid(struct fixture *f)
{
	if (f->kid > 0) {
		kill(f->kid, SIGKILL);
		waitpid(f->kid, NULL, 0);
	}
	f->kid = 0;
}

static int group_teardown(void **state)
{
	struct fixture *f = *state;
	int rc;

	reap_kid(f);
	if (f->pin_dir[0])
		remove_pin_dir(f->pin_dir);	/* a failed test may have left it */
	for (int i = 0; i < 2; i++)
		if (f->lfd[i] >= 0)
			close(f->lfd[i]);
	rc = kcg_teardown(&f->k);
	free(f);
	return rc;
}

static int test_setup(void **state)
{
	struct fixture *f = *state;

	f->kid = 0;
	return 0;
}

static int test_teardown(void **state)
{
	struct fixture *f = *state;
	char err[512];

	reap_kid(f);
	if (!f->k.skip_reason[0] &&
	    (us_steer_clear(f->cg, SERVICE, f->port, err, sizeof(err)) ||
	     us_steer_clear(f->cg, SERVICE2, f->port, err, sizeof(err)))) {
		fprintf(stderr, "%s\n", err);
		return -1;
	}
	return 0;
}

static void skip_if_unsupported(struct fixture *f)
{
	if (f->k.skip_reason[0]) {
		print_message("SKIP: %s\n", f->k.skip_reason);
		skip();
	}
}

static void set_weights(struct fixture *f, const char *service, uint32_t w0, uint32_t w1)
{
	struct us_backend b[2] = { { .port = f->port, .weight = w0 },
				   { .port = f->port, .weight = w1 } };
	char err[512];

	snprintf(b[0].address, sizeof(b[0].address), "%s", backend_ip[0]);
	snprintf(b[1].address, sizeof(b[1].address), "%s", backend_ip[1]);
	if (us_steer_set(f->cg, service, f->port, b, 2, err, sizeof(err)))
		fail_msg("%s", err);
}

static struct us_steer_counts counts_of(struct fixture *f)
{
	struct us_steer_counts c;
	char err[512];

	if (us_steer_counts(f->cg, &c, err, sizeof(err)))
		fail_msg("%s", err);
	return c;
}

/* A blocking connect to service:port (an AF_INET6 socket when service is
 * an IPv6 address, e.g. IPv4-mapped); the fd, or -1 with errno. */
static int connect_to(const char *service, uint16_t port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
	struct sockaddr_in6 a6 = { .sin6_family = AF_INET6, .sin6_port = htons(port) };
	bool v6 = strchr(service, ':') != NULL;
	int fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct timeval tv = { .tv_sec = 10 };

	if (fd < 0)
		return -1;
	if (v6)
		inet_pton(AF_INET6, service, &a6.sin6_addr);
	else
		inet_pton(AF_INET, service, &a.sin_addr);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (v6 ? connect(fd, (struct sockaddr *)&a6, sizeof(a6)) :
		 connect(fd, (struct sockaddr *)&a, sizeof(a))) {
		int e = errno;

		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

/* Forks a child that joins the clients' cgroup and connects n times to
 * service:port, closing each connection; it exits with ALL_CONNECTED,
 * ALL_REFUSED or MIXED. */
static void spawn_clients(struct fixture *f, const char *service, int n)
{
	f->kid = fork();
	assert_true(f->kid >= 0);
	if (f->kid == 0) {
		int ok = 0;

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (kcg_enter(&f->k, 0, 0))
			_exit(SETUP_FAILED);
		for (int i = 0; i < n; i++) {
			int fd = connect_to(service, f->port);

			if (fd >= 0) {
				ok++;
				close(fd);
			} else if (errno != ECONNREFUSED) {
				_exit(SETUP_FAILED);
			}
		}
		_exit(ok == n ? ALL_CONNECTED : ok == 0 ? ALL_REFUSED : MIXED);
	}
}

static int accept_all(int lfd)
{
	int n = 0, c;

	while ((c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC)) >= 0) {
		close(c);
		n++;
	}
	return n;
}

/* Accepts on both backends (closing at once) until the client child has
 * exited and `expect` connections arrived, or the timeout; the child's
 * exit code. got[i] counts backend i. */
static int serve_until_done(struct fixture *f, int expect, int got[2])
{
	struct pollfd p[2] = { { .fd = f->lfd[0], .events = POLLIN },
			       { .fd = f->lfd[1], .events = POLLIN } };
	int status = -1;

	got[0] = got[1] = 0;
	for (int waited = 0; waited < TIMEOUT_MS; waited += 10) {
		poll(p, 2, 10);
		got[0] += accept_all(f->lfd[0]);
		got[1] += accept_all(f->lfd[1]);
		if (f->kid > 0 && waitpid(f->kid, &status, WNOHANG) == f->kid)
			f->kid = 0;
		if (f->kid == 0 && got[0] + got[1] >= expect)
			break;
	}
	/* the late ones, if any, are counted too */
	poll(p, 2, 50);
	got[0] += accept_all(f->lfd[0]);
	got[1] += accept_all(f->lfd[1]);
	assert_int_equal(f->kid, 0);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* How many programs of attach type `type` the clients' cgroup has. */
static unsigned attached_programs(struct fixture *f, enum bpf_attach_type type)
{
	__u32 ids[8], cnt = 8;
	int fd = open(f->cg, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	assert_true(fd >= 0);
	assert_int_equal(bpf_prog_query(fd, type, 0, NULL, ids, &cnt), 0);
	close(fd);
	return cnt;
}

static bool steer_root_empty(void)
{
	DIR *d = opendir(US_STEER_PIN_ROOT);
	struct dirent *de;
	bool empty = true;

	if (!d)
		return errno == ENOENT;
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			empty = false;
	closedir(d);
	return empty;
}

static void test_weighted_split(void **state)
{
	struct fixture *f = *state;
	struct us_steer_counts before, after;
	const int n = 2000;
	int got[2];
	double share;

	skip_if_unsupported(f);
	set_weights(f, SERVICE, 1, 3);
	before = counts_of(f);
	spawn_clients(f, SERVICE, n);
	assert_int_equal(serve_until_done(f, n, got), ALL_CONNECTED);
	after = counts_of(f);
	share = (double)got[0] / n;
	print_message("weights 1:3 over %d connects: %d / %d (%.1f%% / %.1f%%)\n", n, got[0],
		      got[1], 100 * share, 100 * (1 - share));
	assert_int_equal(got[0] + got[1], n);
	assert_true(share >= 0.20 && share <= 0.30);
	assert_int_equal(after.steered - before.steered, n);
	assert_int_equal(after.failed, before.failed);
}

static void test_weight_zero(void **state)
{
	struct fixture *f = *state;
	struct us_steer_counts before, after;
	int got[2];

	skip_if_unsupported(f);
	set_weights(f, SERVICE, 0, 1);
	spawn_clients(f, SERVICE, 500);
	assert_int_equal(serve_until_done(f, 500, got), ALL_CONNECTED);
	assert_int_equal(got[0], 0);
	assert_int_equal(got[1], 500);

	/* all weights 0: connects are left alone (nothing listens on the
	 * service address) and counted as failures */
	set_weights(f, SERVICE, 0, 0);
	before = counts_of(f);
	spawn_clients(f, SERVICE, 10);
	assert_int_equal(serve_until_done(f, 0, got), ALL_REFUSED);
	after = counts_of(f);
	assert_int_equal(got[0] + got[1], 0);
	assert_int_equal(after.failed - before.failed, 10);
	assert_int_equal(after.steered, before.steered);
}

/* Weights flipped between 1:0 and 0:1 as fast as user space can while a
 * client connects: a connect that read half of one set and half of the
 * other would find weights 0:0 (a failure) or 1:1. Every connect must be
 * steered, none fail. */
static void test_update_never_mixed(void **state)
{
	struct fixture *f = *state;
	struct us_steer_counts before, after;
	const int n = 2000;
	int got[2] = { 0, 0 }, rest[2], status = -1, flips = 0;

	skip_if_unsupported(f);
	set_weights(f, SERVICE, 1, 0);
	before = counts_of(f);
	spawn_clients(f, SERVICE, n);
	while (f->kid > 0 && flips < 1000000) {
		flips++;
		set_weights(f, SERVICE, flips & 1, !(flips & 1));
		got[0] += accept_all(f->lfd[0]);
		got[1] += accept_all(f->lfd[1]);
		if (waitpid(f->kid, &status, WNOHANG) == f->kid)
			f->kid = 0;
	}
	assert_int_equal(f->kid, 0);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), ALL_CONNECTED);
	after = counts_of(f);
	print_message("%d weight flips during %d connects (%d / %d)\n", flips, n, got[0],
		      got[1]);
	assert_int_equal(after.steered - before.steered, n);
	assert_int_equal(after.failed, before.failed);
	assert_int_equal(after.passthrough, before.passthrough);
	serve_until_done(f, n - got[0] - got[1], rest);	/* the queued rest */
	assert_int_equal(got[0] + got[1] + rest[0] + rest[1], n);
}

/* An AF_INET6 socket connecting to the IPv4-mapped service address (what
 * dual-stack clients do) is steered like an AF_INET one. */
static void test_v4_mapped(void **state)
{
	struct fixture *f = *state;
	struct us_steer_counts before, after;
	int got[2];

	skip_if_unsupported(f);
	set_weights(f, SERVICE, 0, 1);
	before = counts_of(f);
	spawn_clients(f, "::ffff:" SERVICE, 50);
	assert_int_equal(serve_until_done(f, 50, got), ALL_CONNECTED);
	after = counts_of(f);
	assert_int_equal(got[0], 0);
	assert_int_equal(got[1], 50);
	assert_int_equal(after.steered - before.steered, 50);
}

static int read_byte(int fd, int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	unsigned char c;

	if (poll(&p, 1, timeout_ms) != 1 || read(fd, &c, 1) != 1)
		return -1;
	return c;
}

static int accept_within(int lfd, int timeout_ms)
{
	struct pollfd p = { .fd = lfd, .events = POLLIN };

	if (poll(&p, 1, timeout_ms) != 1)
		return -1;
	return accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
}

/* The client of the drain test: one connection that sends 'a', waits for
 * the go, sends 'b' and expects 'c' back on the same connection; then a
 * new connection that sends 'd'. Exit 0 when all of it worked. */
static void drain_client(struct fixture *f, int go)
{
	int fd, fd2;
	char c;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (kcg_enter(&f->k, 0, 0))
		_exit(SETUP_FAILED);
	fd = connect_to(SERVICE, f->port);
	if (fd < 0 || write(fd, "a", 1) != 1)
		_exit(10);
	if (read(go, &c, 1) != 1)
		_exit(11);
	if (write(fd, "b", 1) != 1 || read(fd, &c, 1) != 1 || c != 'c')
		_exit(12);
	fd2 = connect_to(SERVICE, f->port);
	if (fd2 < 0 || write(fd2, "d", 1) != 1)
		_exit(13);
	close(fd2);
	close(fd);
	_exit(0);
}

static void test_drain(void **state)
{
	struct fixture *f = *state;
	int go[2], conn = -1, conn2 = -1, status = -1;

	skip_if_unsupported(f);
	set_weights(f, SERVICE, 1, 0);
	assert_int_equal(pipe2(go, O_CLOEXEC), 0);
	f->kid = fork();
	assert_true(f->kid >= 0);
	if (f->kid == 0) {
		close(go[1]);
		drain_client(f, go[0]);
	}
	close(go[0]);
	conn = accept_within(f->lfd[0], TIMEOUT_MS);
	assert_true(conn >= 0);
	assert_int_equal(read_byte(conn, TIMEOUT_MS), 'a');

	set_weights(f, SERVICE, 0, 1);
	assert_int_equal(write(go[1], "g", 1), 1);
	/* the old connection still talks to backend 0 */
	assert_int_equal(read_byte(conn, TIMEOUT_MS), 'b');
	assert_int_equal(write(conn, "c", 1), 1);
	/* the new one goes to backend 1 */
	conn2 = accept_within(f->lfd[1], TIMEOUT_MS);
	assert_true(conn2 >= 0);
	assert_int_equal(read_byte(conn2, TIMEOUT_MS), 'd');
	assert_int_equal(waitpid(f->kid, &status, 0), f->kid);
	f->kid = 0;
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(accept_all(f->lfd[0]), 0);
	close(go[1]);
	close(conn);
	close(conn2);
}

static void test_outside_cgroup_not_steered(void **state)
{
	struct fixture *f = *state;
	struct us_steer_counts before, after;
	int fd;

	skip_if_unsupported(f);
	set_weights(f, SERVICE, 1, 1);
	before = counts_of(f);
	fd = connect_to(SERVICE, f->port);	/* this process is not in the cgroup */
	assert_int_equal(fd, -1);
	assert_int_equal(errno, ECONNREFUSED);
	after = counts_of(f);
	assert_int_equal(accept_all(f->lfd[0]) + accept_all(f->lfd[1]), 0);
	assert_memory_equal(&before, &after, sizeof(before));
}

static void test_survives_exit(void **state)
{
	struct fixture *f = *state;
	struct us_backend b[US_MAX_BACKENDS];
	char err[512];
	size_t n;
	int got[2], status = -1;
	pid_t pid;

	skip_if_unsupported(f);
	assert_int_equal(access(f->pin_dir, F_OK), -1);
	/* a "coordinator" that sets the weights and exits */
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct us_backend set[2] = { { .port = f->port, .weight = 2 },
					     { .port = f->port, .weight = 5 } };

		snprintf(set[0].address, sizeof(set[0].address), "%s", backend_ip[0]);
		snprintf(set[1].address, sizeof(set[1].address), "%s", backend_ip[1]);
		if (us_steer_set(f->cg, SERVICE, f->port, set, 2, err, sizeof(err))) {
			fprintf(stderr, "%s\n", err);
			_exit(1);
		}
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);

	assert_int_equal(access(f->pin_dir, F_OK), 0);
	if (us_steer_get(f->cg, SERVICE, f->port, b, US_MAX_BACKENDS, &n, err, sizeof(err)))
		fail_msg("%s", err);
	assert_int_equal(n, 2);
	assert_string_equal(b[0].address, backend_ip[0]);
	assert_string_equal(b[1].address, backend_ip[1]);
	assert_int_equal(b[0].port, f->port);
	assert_int_equal(b[1].port, f->port);
	assert_int_equal(b[0].weight, 2);
	assert_int_equal(b[1].weight, 5);
	assert_int_equal(attached_programs(f, BPF_CGROUP_INET4_CONNECT), 1);
	assert_int_equal(attached_programs(f, BPF_CGROUP_INET6_CONNECT), 1);

	spawn_clients(f, SERVICE, 300);
	assert_int_equal(serve_until_done(f, 300, got), ALL_CONNECTED);
	print_message("after the setter exited, weights 2:5 over 300: %d / %d\n", got[0],
		      got[1]);
	assert_int_equal(got[0] + got[1], 300);
	assert_true(got[0] > 0 && got[1] > got[0]);

	/* setting again reuses the attachment */
	set_weights(f, SERVICE, 1, 1);
	assert_int_equal(attached_programs(f, BPF_CGROUP_INET4_CONNECT), 1);
	assert_int_equal(attached_programs(f, BPF_CGROUP_INET6_CONNECT), 1);
	/* a service never set reads as no backends */
	if (us_steer_get(f->cg, SERVICE2, f->port, b, US_MAX_BACKENDS, &n, err, sizeof(err)))
		fail_msg("%s", err);
	assert_int_equal(n, 0);
}

static void test_clear_unpins(void **state)
{
	struct fixture *f = *state;
	char err[512];
	int got[2];

	skip_if_unsupported(f);
	set_weights(f, SERVICE, 1, 0);
	set_weights(f, SERVICE2, 0, 1);
	assert_int_equal(us_steer_clear(f->cg, SERVICE, f->port, err, sizeof(err)), 0);
	/* one service left: still attached, still steering it */
	assert_int_equal(access(f->pin_dir, F_OK), 0);
	spawn_clients(f, SERVICE2, 5);
	assert_int_equal(serve_until_done(f, 5, got), ALL_CONNECTED);
	assert_int_equal(got[1], 5);
	spawn_clients(f, SERVICE, 1);
	assert_int_equal(serve_until_done(f, 0, got), ALL_REFUSED);

	assert_int_equal(us_steer_clear(f->cg, SERVICE2, f->port, err, sizeof(err)), 0);
	assert_int_equal(access(f->pin_dir, F_OK), -1);
	assert_int_equal(errno, ENOENT);
	assert_true(steer_root_empty());
	assert_int_equal(attached_programs(f, BPF_CGROUP_INET4_CONNECT), 0);
	assert_int_equal(attached_programs(f, BPF_CGROUP_INET6_CONNECT), 0);
	spawn_clients(f, SERVICE2, 1);
	assert_int_equal(serve_until_done(f, 0, got), ALL_REFUSED);
	/* clearing what is not there succeeds */
	assert_int_equal(us_steer_clear(f->cg, SERVICE2, f->port, err, sizeof(err)), 0);
}

static void expect_error(int rc, const char *err, const char *want)
{
	print_message("error: %s\n", err);
	assert_int_equal(rc, -1);
	if (!strstr(err, want))
		fail_msg("error \"%s\" does not say \"%s\"", err, want);
}

static void test_bad_input(void **state)
{
	struct fixture *f = *state;
	struct us_backend b[9];
	char err[512];
	size_t n;

	skip_if_unsupported(f);
	for (int i = 0; i < 9; i++) {
		snprintf(b[i].address, sizeof(b[i].address), "127.0.0.%d", 10 + i);
		b[i].port = f->port;
		b[i].weight = 1;
	}
	expect_error(us_steer_set(f->cg, SERVICE, f->port, b, 9, err, sizeof(err)), err,
		     "steer: too many backends (9 > 8)");
	expect_error(us_steer_set(f->cg, "127.0.0.256", f->port, b, 2, err, sizeof(err)), err,
		     "steer: service \"127.0.0.256\": not an IPv4 address");
	snprintf(b[1].address, sizeof(b[1].address), "localhost");
	expect_error(us_steer_set(f->cg, SERVICE, f->port, b, 2, err, sizeof(err)), err,
		     "steer: backend 2 \"localhost\": not an IPv4 address");
	expect_error(us_steer_set("/tmp", SERVICE, f->port, b, 1, err, sizeof(err)), err,
		     "steer: cgroup /tmp: not a cgroup v2 directory");
	expect_error(us_steer_get("/nonexistent-us-steer", SERVICE, f->port, b, 9, &n, err,
				  sizeof(err)), err,
		     "steer: cgroup /nonexistent-us-steer: No such file or directory");
	expect_error(us_steer_clear(f->k.root, "::1", f->port, err, sizeof(err)), err,
		     "steer: service \"::1\": not an IPv4 address");
	/* nothing was attached by any of them */
	assert_int_equal(access(f->pin_dir, F_OK), -1);
	assert_int_equal(attached_programs(f, BPF_CGROUP_INET4_CONNECT), 0);
	assert_int_equal(attached_programs(f, BPF_CGROUP_INET6_CONNECT), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_bad_input, test_setup, test_teardown),
		cmocka_unit_test_setup_teardown(test_weighted_split, test_setup, test_teardown),
		cmocka_unit_test_setup_teardown(test_weight_zero, test_setup, test_teardown),
		cmocka_unit_test_setup_teardown(test_update_never_mixed, test_setup,
						test_teardown),
		cmocka_unit_test_setup_teardown(test_v4_mapped, test_setup, test_teardown),
		cmocka_unit_test_setup_teardown(test_drain, test_setup, test_teardown),
		cmocka_unit_test_setup_teardown(test_outside_cgroup_not_steered, test_setup,
						test_teardown),
		cmocka_unit_test_setup_teardown(test_survives_exit, test_setup, test_teardown),
		cmocka_unit_test_setup_teardown(test_clear_unpins, test_setup, test_teardown),
	};

	return cmocka_run_group_tests_name("ktest_steer", tests, group_setup, group_teardown);
}
