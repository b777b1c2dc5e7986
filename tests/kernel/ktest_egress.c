/* Kernel test of bpf/egress.bpf.c through coordinator/egress.c: the real
 * programs attached to a real cgroup v2 directory, and children forked into
 * it that connect and send to real listeners. The test runs in a network
 * namespace of its own (unshared at setup, gone with the process) where the
 * lo interface also holds the non-loopback addresses DEST_A, DEST_B and
 * DEST_V6 (the guard judges addresses, not interfaces; no dummy module
 * needed); listeners there and on 127.0.0.1 and ::1 take the connects. Needs root,
 * a cgroup v2 hierarchy and ip(8); when one is missing every test prints
 * why and skips.
 *
 * Pins go to the host's bpffs at /sys/fs/bpf; every test detaches, and the
 * group teardown removes any pin left for the test cgroup
 * (us-ktest-egress-<pid>-a under the v2 root), which it then removes. */
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
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "../../coordinator/egress.h"
#include "lib/kcgroup.h"

#define CG_PREFIX "us-ktest-egress-"
#define DEST_A "10.254.77.1"
#define DEST_B "10.254.77.2"
#define DEST_V6 "fd00:77::1"
#define CHILD_TIMEOUT_S 10

enum { NLISTEN = 6 };
/* TCP listeners, all on one port P except [1] (DEST_A, another port Q) */
static const char *const listen_ip[NLISTEN] = { DEST_A, DEST_A, DEST_B, "127.0.0.1", "::1",
						 DEST_V6 };

enum op { TCP_CONNECT, UDP_SENDTO, UDP_CONNECT };

struct fixture {
	struct kcgroups k;		/* [0]: the instance's cgroup */
	const char *cg;
	int lfd[NLISTEN];
	int ufd;			/* UDP on DEST_A:P */
	uint16_t port, port2;		/* P, Q */
	char pin_dir[128];		/* where egress.c must pin for the cgroup */
};

static const char *const pin_names[] = { "allow", "counters", "connect4", "connect6",
					 "sendmsg4", "sendmsg6" };

static int family_of(const char *ip)
{
	return strchr(ip, ':') ? AF_INET6 : AF_INET;
}

static socklen_t sockaddr_of(const char *ip, uint16_t port, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (family_of(ip) == AF_INET6) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;

		a->sin6_family = AF_INET6;
		a->sin6_port = htons(port);
		inet_pton(AF_INET6, ip, &a->sin6_addr);
		return sizeof(*a);
	}
	struct sockaddr_in *a = (struct sockaddr_in *)ss;

	a->sin_family = AF_INET;
	a->sin_port = htons(port);
	inet_pton(AF_INET, ip, &a->sin_addr);
	return sizeof(*a);
}

static int bound(const char *ip, uint16_t port, int type)
{
	struct sockaddr_storage ss;
	socklen_t len = sockaddr_of(ip, port, &ss);
	int fd = socket(family_of(ip), type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0 || bind(fd, (struct sockaddr *)&ss, len) ||
	    (type == SOCK_STREAM && listen(fd, 64))) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

static uint16_t local_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &len))
		return 0;
	return ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port :
						((struct sockaddr_in *)&ss)->sin_port);
}

/* A private network namespace with DEST_A, DEST_B and DEST_V6 on lo; why
 * when it cannot be had. */
static void make_network(char *why, size_t len)
{
	if (unshare(CLONE_NEWNET)) {
		snprintf(why, len, "unshare(CLONE_NEWNET): %s", strerror(errno));
		return;
	}
	if (system("ip link set lo up && ip addr add " DEST_A "/32 dev lo && "
		   "ip addr add " DEST_B "/32 dev lo && "
		   "ip addr add " DEST_V6 "/128 dev lo") != 0)
		snprintf(why, len, "cannot add addresses to lo with ip(8)");
}

static int open_listeners(struct fixture *f)
{
	f->lfd[0] = bound(listen_ip[0], 0, SOCK_STREAM);
	f->port = f->lfd[0] >= 0 ? local_port(f->lfd[0]) : 0;
	f->lfd[1] = bound(listen_ip[1], 0, SOCK_STREAM);
	f->port2 = f->lfd[1] >= 0 ? local_port(f->lfd[1]) : 0;
	for (int i = 2; i < NLISTEN; i++)
		f->lfd[i] = f->port ? bound(listen_ip[i], f->port, SOCK_STREAM) : -1;
	f->ufd = f->port ? bound(DEST_A, f->port, SOCK_DGRAM) : -1;
	for (int i = 0; i < NLISTEN; i++)
		if (f->lfd[i] < 0)
			return -1;
	return f->ufd < 0 ? -1 : 0;
}

static void remove_pin_dir(const char *dir)
{
	char path[256];

	for (size_t i = 0; i < sizeof(pin_names) / sizeof(pin_names[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, pin_names[i]);
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
	for (int i = 0; i < NLISTEN; i++)
		f->lfd[i] = -1;
	f->ufd = -1;
	kcg_setup(&f->k, CG_PREFIX, 1, NULL);
	if (f->k.skip_reason[0])
		return 0;
	f->cg = f->k.path[0];
	snprintf(f->pin_dir, sizeof(f->pin_dir), US_EGRESS_PIN_ROOT "/%llu",
		 (unsigned long long)f->k.id[0]);
	make_network(f->k.skip_reason, sizeof(f->k.skip_reason));
	if (f->k.skip_reason[0])
		return 0;
	if (open_listeners(f)) {
		snprintf(f->k.skip_reason, sizeof(f->k.skip_reason), "cannot listen: %s",
			 strerror(errno));
		return 0;
	}
	print_message("instance cgroup %s (id %llu), destinations %s:%u %s:%u %s:%u [%s]:%u\n",
		      f->cg, (unsigned long long)f->k.id[0], DEST_A, f->port, DEST_A, f->port2,
		      DEST_B, f->port, DEST_V6, f->port);
	return 0;
}

static int group_teardown(void **state)
{
	struct fixture *f = *state;
	int rc;

	if (f->pin_dir[0])
		remove_pin_dir(f->pin_dir);	/* a failed test may have left it */
	for (int i = 0; i < NLISTEN; i++)
		if (f->lfd[i] >= 0)
			close(f->lfd[i]);
	if (f->ufd >= 0)
		close(f->ufd);
	rc = kcg_teardown(&f->k);
	free(f);
	return rc;
}

static void drain(struct fixture *f)
{
	char buf[64];
	int c;

	for (int i = 0; i < NLISTEN; i++)
		while ((c = accept4(f->lfd[i], NULL, NULL, SOCK_CLOEXEC)) >= 0)
			close(c);
	while (recv(f->ufd, buf, sizeof(buf), 0) >= 0)
		;
}

static int test_teardown(void **state)
{
	struct fixture *f = *state;
	char err[512];

	if (f->k.skip_reason[0])
		return 0;
	drain(f);
	if (us_egress_detach(f->cg, err, sizeof(err))) {
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

/* op on ip:port, 0 or the errno */
static int do_op(enum op op, const char *ip, uint16_t port)
{
	struct sockaddr_storage ss;
	socklen_t len = sockaddr_of(ip, port, &ss);
	int fd = socket(family_of(ip), (op == TCP_CONNECT ? SOCK_STREAM : SOCK_DGRAM) | SOCK_CLOEXEC,
			0), rc = 0;

	if (fd < 0)
		return errno;
	if (op == UDP_SENDTO ? sendto(fd, "x", 1, 0, (struct sockaddr *)&ss, len) != 1 :
			       connect(fd, (struct sockaddr *)&ss, len) != 0)
		rc = errno;
	close(fd);
	return rc;
}

/* op done by a child in the instance's cgroup (in_cgroup) or outside it:
 * 0 or the errno it got. */
static int try_op(struct fixture *f, bool in_cgroup, enum op op, const char *ip, uint16_t port)
{
	int status = -1;
	pid_t kid = fork();

	assert_true(kid >= 0);
	if (kid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		alarm(CHILD_TIMEOUT_S);
		if (in_cgroup && kcg_enter(&f->k, 0, 0))
			_exit(255);
		_exit(do_op(op, ip, port) & 0xff);
	}
	assert_int_equal(waitpid(kid, &status, 0), kid);
	assert_true(WIFEXITED(status));
	assert_int_not_equal(WEXITSTATUS(status), 255);
	return WEXITSTATUS(status);
}

static void guard(struct fixture *f, const struct us_wd_dest *allow, size_t n)
{
	char err[512];

	if (us_egress_attach(f->cg, allow, n, err, sizeof(err)))
		fail_msg("%s", err);
}

static struct us_egress_counts counts_of(struct fixture *f)
{
	struct us_egress_counts c;
	char err[512];

	if (us_egress_counts(f->cg, &c, err, sizeof(err)))
		fail_msg("%s", err);
	return c;
}

/* How many programs of attach type `type` the cgroup has. */
static unsigned attached_programs(struct fixture *f, enum bpf_attach_type type)
{
	__u32 ids[8], cnt = 8;
	int fd = open(f->cg, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	assert_true(fd >= 0);
	assert_int_equal(bpf_prog_query(fd, type, 0, NULL, ids, &cnt), 0);
	close(fd);
	return cnt;
}

static const enum bpf_attach_type hook_types[] = {
	BPF_CGROUP_INET4_CONNECT, BPF_CGROUP_INET6_CONNECT, BPF_CGROUP_UDP4_SENDMSG,
	BPF_CGROUP_UDP6_SENDMSG,
};

static void assert_attached(struct fixture *f, unsigned want)
{
	for (size_t i = 0; i < sizeof(hook_types) / sizeof(hook_types[0]); i++)
		assert_int_equal(attached_programs(f, hook_types[i]), want);
}

static void test_denied_by_default(void **state)
{
	struct fixture *f = *state;
	struct us_egress_counts before, after;

	skip_if_unsupported(f);
	/* the destinations work before the guard */
	assert_int_equal(try_op(f, true, TCP_CONNECT, DEST_A, f->port), 0);
	assert_int_equal(try_op(f, true, TCP_CONNECT, DEST_V6, f->port), 0);
	guard(f, NULL, 0);
	before = counts_of(f);
	assert_int_equal(try_op(f, true, TCP_CONNECT, DEST_A, f->port), EPERM);
	assert_int_equal(try_op(f, true, TCP_CONNECT, DEST_B, f->port), EPERM);
	assert_int_equal(try_op(f, true, TCP_CONNECT, "::ffff:" DEST_A, f->port), EPERM);
	assert_int_equal(try_op(f, true, TCP_CONNECT, DEST_V6, f->port), EPERM);
	assert_int_equal(try_op(f, true, TCP_CONNECT, "0.0.0.0", f->port), EPERM);
	after = counts_of(f);
	assert_int_equal(after.denied - before.denied, 5);
	assert_int_equal(after.allowed, before.allowed);
	assert_int_equal(after.loopback, before.loopback);
}

static void test_loopback_allowed(void **state)
{
	struct fixture *f = *state;
	struct us_egress_counts before, after;

	skip_if_unsupported(f);
	guard(f, NULL, 0);
	before = counts_of(f);
	assert_int_equal(try_op(f, true, TCP_CONNECT, "127.0.0.1", f->port), 0);
	assert_int_equal(try_op(f, true, TCP_CONNECT, "::1", f->port), 0);
	assert_int_equal(try_op(f, true, TCP_CONNECT, "::ffff:127.0.0.1", f->port), 0);
	/* elsewhere in 127/8: allowed, refused by the stack (nothing listens) */
	assert_int_equal(try_op(f, true, TCP_CONNECT, "127.0.0.2", f->port), ECONNREFUSED);
	assert_int_equal(try_op(f, true, UDP_SENDTO, "127.0.0.1", f->port), 0);
	after = counts_of(f);
	assert_int_equal(after.loopback - before.loopback, 5);
	assert_int_equal(after.denied, before.denied);
}

static void test_allowed_when_listed(void **state)
{
	struct fixture *f = *state;
	struct us_wd_dest allow[2] = { { DEST_A, f->port }, { "10.254.77.99", 0 } };
	struct us_egress_counts before, after;

	skip_if_unsupported(f);
	guard(f, allow, 2);
	before = counts_of(f);
	assert_int_equal(try_op(f, true, TCP_CONNECT, DEST_A, f->port), 0);
	assert_int_equal(try_op(f, true, TCP_CONNECT, "::ffff:" DEST_A, f->port), 0);
	assert_int_equal(try_op(f, true, TCP_CONNECT, DEST_A, f->port2), EPERM);  /* other port */
	assert_int_equal(try_op(f, true, TCP_CONNECT, DEST_B, f->port), EPERM);
	after = counts_of(f);
	assert_int_equal(after.allowed - before.allowed, 2);
	assert_int_equal(after.denied - before.denied, 2);

	/* without a port: every port; the list is replaced, not added to */
	allow[0].port = 0;
	guard(f, allow, 1);
	assert_int_equal(try_op(f, true, TCP_CONNECT, DEST_A, f->port), 0);
	assert_int_equal(try_op(f, true, TCP_CONNECT, DEST_A, f->port2), 0);
	assert_int_equal(try_op(f, true, TCP_CONNECT, DEST_B, f->port), EPERM);
	allow[0] = (struct us_wd_dest){ DEST_B, 0 };
	guard(f, allow, 1);
	assert_int_equal(try_op(f, true, TCP_CONNECT, DEST_B, f->port), 0);
	assert_int_equal(try_op(f, true, TCP_CONNECT, DEST_A, f->port), EPERM);
	/* native IPv6 is never listed */
	assert_int_equal(try_op(f, true, TCP_CONNECT, DEST_V6, f->port), EPERM);
}

static void test_udp(void **state)
{
	struct fixture *f = *state;
	struct us_wd_dest allow = { DEST_A, f->port };
	char buf[8];

	skip_if_unsupported(f);
	guard(f, NULL, 0);
	assert_int_equal(try_op(f, true, UDP_SENDTO, DEST_A, f->port), EPERM);
	assert_int_equal(try_op(f, true, UDP_SENDTO, "::ffff:" DEST_A, f->port), EPERM);
	assert_int_equal(try_op(f, true, UDP_CONNECT, DEST_A, f->port), EPERM);
	assert_int_equal(try_op(f, true, UDP_SENDTO, DEST_V6, f->port), EPERM);
	assert_int_equal(recv(f->ufd, buf, sizeof(buf), 0), -1);	/* nothing arrived */
	guard(f, &allow, 1);
	assert_int_equal(try_op(f, true, UDP_SENDTO, DEST_A, f->port), 0);
	assert_int_equal(recv(f->ufd, buf, sizeof(buf), 0), 1);
	assert_int_equal(buf[0], 'x');
	assert_int_equal(try_op(f, true, UDP_CONNECT, DEST_A, f->port), 0);
	assert_int_equal(try_op(f, true, UDP_SENDTO, DEST_B, f->port), EPERM);
}

static void test_outside_cgroup_unaffected(void **state)
{
	struct fixture *f = *state;
	struct us_egress_counts before, after;

	skip_if_unsupported(f);
	guard(f, NULL, 0);
	before = counts_of(f);
	assert_int_equal(try_op(f, false, TCP_CONNECT, DEST_A, f->port), 0);
	assert_int_equal(try_op(f, false, TCP_CONNECT, DEST_V6, f->port), 0);
	assert_int_equal(try_op(f, false, UDP_SENDTO, DEST_B, f->port), 0);
	after = counts_of(f);
	assert_memory_equal(&before, &after, sizeof(before));
}

static bool pin_root_has(const char *name)
{
	DIR *d = opendir(US_EGRESS_PIN_ROOT);
	struct dirent *de;
	bool found = false;

	if (!d)
		return false;
	while ((de = readdir(d)))
		if (!strcmp(de->d_name, name))
			found = true;
	closedir(d);
	return found;
}

static void test_survives_exit_and_detach(void **state)
{
	struct fixture *f = *state;
	struct us_wd_dest allow = { DEST_B, 0 };
	char err[512], path[256];
	int status = -1;
	pid_t pid;

	skip_if_unsupported(f);
	assert_int_equal(access(f->pin_dir, F_OK), -1);
	assert_attached(f, 0);
	/* a "coordinator" that guards the cgroup and exits */
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		if (us_egress_attach(f->cg, &allow, 1, err, sizeof(err))) {
			fprintf(stderr, "%s\n", err);
			_exit(1);
		}
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	for (size_t i = 0; i < sizeof(pin_names) / sizeof(pin_names[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", f->pin_dir, pin_names[i]);
		assert_int_equal(access(path, F_OK), 0);
	}
	assert_attached(f, 1);
	assert_int_equal(try_op(f, true, TCP_CONNECT, DEST_A, f->port), EPERM);
	assert_int_equal(try_op(f, true, TCP_CONNECT, DEST_B, f->port), 0);

	/* attaching again reuses the attachment */
	guard(f, &allow, 1);
	assert_attached(f, 1);
	assert_int_equal(try_op(f, true, TCP_CONNECT, DEST_B, f->port), 0);

	assert_int_equal(us_egress_detach(f->cg, err, sizeof(err)), 0);
	assert_int_equal(access(f->pin_dir, F_OK), -1);
	assert_int_equal(errno, ENOENT);
	assert_false(pin_root_has(strrchr(f->pin_dir, '/') + 1));
	assert_attached(f, 0);
	assert_int_equal(try_op(f, true, TCP_CONNECT, DEST_A, f->port), 0);
	/* detaching what is not there, or from a cgroup that is gone, succeeds */
	assert_int_equal(us_egress_detach(f->cg, err, sizeof(err)), 0);
	assert_int_equal(us_egress_detach("/sys/fs/cgroup/no-such-us-egress", err, sizeof(err)),
			 0);
}

/* A guarded cgroup removed without a detach (a crashed coordinator, a
 * manual cleanup) leaves pins whose links the kernel detached; the next
 * attach, for any cgroup, removes them. */
static void test_orphans_swept(void **state)
{
	struct fixture *f = *state;
	char orphan[sizeof(f->k.path[0]) + 8], pins[128], err[512];
	struct stat st;
	bool gone = false;

	skip_if_unsupported(f);
	snprintf(orphan, sizeof(orphan), "%s-orphan", f->cg);
	assert_int_equal(mkdir(orphan, 0755), 0);
	assert_int_equal(stat(orphan, &st), 0);
	snprintf(pins, sizeof(pins), US_EGRESS_PIN_ROOT "/%llu", (unsigned long long)st.st_ino);
	if (us_egress_attach(orphan, NULL, 0, err, sizeof(err))) {
		rmdir(orphan);
		fail_msg("%s", err);
	}
	assert_int_equal(access(pins, F_OK), 0);
	assert_int_equal(rmdir(orphan), 0);
	/* the kernel frees the cgroup, and detaches its links, asynchronously */
	for (int i = 0; i < 100 && !gone; i++) {
		guard(f, NULL, 0);
		gone = access(pins, F_OK) != 0;
		if (!gone)
			usleep(50000);
	}
	if (!gone)
		remove_pin_dir(pins);
	assert_true(gone);
	assert_int_equal(access(f->pin_dir, F_OK), 0);	/* the live guard stays */
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
	struct us_wd_dest many[65], bad = { "localhost", 0 };
	char err[512];

	skip_if_unsupported(f);
	for (int i = 0; i < 65; i++)
		many[i] = (struct us_wd_dest){ "10.254.78.1", (uint16_t)(i + 1) };
	expect_error(us_egress_attach(f->cg, many, 65, err, sizeof(err)), err,
		     "egress: too many allowed destinations (65 > 64)");
	expect_error(us_egress_attach(f->cg, &bad, 1, err, sizeof(err)), err,
		     "egress: destination 1 \"localhost\": not an IPv4 address");
	expect_error(us_egress_attach("/tmp", NULL, 0, err, sizeof(err)), err,
		     "egress: cgroup /tmp: not a cgroup v2 directory");
	expect_error(us_egress_attach("/nonexistent-us-egress", NULL, 0, err, sizeof(err)), err,
		     "egress: cgroup /nonexistent-us-egress: No such file or directory");
	/* nothing was attached by any of them */
	assert_int_equal(access(f->pin_dir, F_OK), -1);
	assert_attached(f, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_bad_input, test_teardown),
		cmocka_unit_test_teardown(test_denied_by_default, test_teardown),
		cmocka_unit_test_teardown(test_loopback_allowed, test_teardown),
		cmocka_unit_test_teardown(test_allowed_when_listed, test_teardown),
		cmocka_unit_test_teardown(test_udp, test_teardown),
		cmocka_unit_test_teardown(test_outside_cgroup_unaffected, test_teardown),
		cmocka_unit_test_teardown(test_survives_exit_and_detach, test_teardown),
		cmocka_unit_test_teardown(test_orphans_swept, test_teardown),
	};

	return cmocka_run_group_tests_name("ktest_egress", tests, group_setup, group_teardown);
}
