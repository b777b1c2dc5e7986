/* Kernel test of bpf/tcp.bpf.c through agent/tcp_collector.c: real programs,
 * real cgroup v2 directories, real loopback TCP connections. Needs root,
 * kernel BTF, a cgroup v2 hierarchy and the tcp/sock tracepoints; when one
 * is missing every test prints why and skips.
 *
 * A child joins a cgroup, listens on 127.0.0.1, opens CONNS connections to
 * itself, exchanges ROUND_TRIPS one-byte ping-pongs on each and closes them,
 * then opens one more and aborts it (SO_LINGER 0: a RST). Both ends belong to
 * the child's cgroup (accepted sockets inherit the listener's), so a tracked
 * cgroup sees 2 x (CONNS + 1) opens. The group runs in a private mount
 * namespace; the cgroups it creates (us-ktest-tcp-<pid>-a/-b) are removed
 * in the group teardown, and leftovers of killed runs at the next start. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../../agent/bpf_env.h"
#include "hist.h"
#include "../../agent/tcp_collector.h"
#include "lib/kcgroup.h"

#define CG_PREFIX "us-ktest-tcp-"
#define CONNS 20
#define ROUND_TRIPS 50
#define NS_PER_S 1000000000ull

struct fixture {
	struct kcgroups k;		/* [0] = A (tracked), [1] = B (untracked) */
	struct us_tcp *tcp;
};

struct capture {
	const uint64_t *id;
	struct us_tcp_cgroup_stats *got[2];
	int visits;
};

static int group_setup(void **state)
{
	static const char *const events[] = {
		"tcp/tcp_probe", "tcp/tcp_retransmit_skb", "sock/inet_sock_set_state",
		"tcp/tcp_send_reset", "tcp/tcp_receive_reset", NULL,
	};
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	*state = f;
	kcg_setup(&f->k, CG_PREFIX, 2, events);
	if (f->k.skip_reason[0])
		return 0;
	print_message("cgroup v2 root %s, A=%s (id %llu), B=%s (id %llu)\n", f->k.root,
		      f->k.path[0], (unsigned long long)f->k.id[0], f->k.path[1],
		      (unsigned long long)f->k.id[1]);
	return 0;
}

static int group_teardown(void **state)
{
	struct fixture *f = *state;
	int rc = kcg_teardown(&f->k);

	free(f);
	return rc;
}

static int test_setup(void **state)
{
	struct fixture *f = *state;

	f->tcp = NULL;
	return 0;
}

static int test_teardown(void **state)
{
	struct fixture *f = *state;

	us_tcp_destroy(f->tcp);
	f->tcp = NULL;
	return 0;
}

static void skip_if_unsupported(struct fixture *f)
{
	if (f->k.skip_reason[0]) {
		print_message("SKIP: %s\n", f->k.skip_reason);
		skip();
	}
}

static void open_collector(struct fixture *f, const struct us_tcp_opts *o)
{
	char err[512];
	int rc = us_tcp_open(o, &f->tcp, err, sizeof(err));

	if (rc == -EPERM || rc == -ENOSYS || rc == -EOPNOTSUPP) {
		print_message("SKIP: %s\n", err);
		skip();
	}
	if (rc)
		fail_msg("%s", err);
	print_message("programs attached as %s%s%s\n", us_tcp_attach_mode(f->tcp),
		      us_tcp_fallback_reason(f->tcp)[0] ? ": " : "",
		      us_tcp_fallback_reason(f->tcp));
}

/* One connection to the listener: returns the client end, *srv the accepted
 * end, or -1. */
static int connect_pair(int lfd, const struct sockaddr_in *sa, int *srv)
{
	int one = 1, c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (c < 0)
		return -1;
	if (connect(c, (const struct sockaddr *)sa, sizeof(*sa)) ||
	    (*srv = accept4(lfd, NULL, NULL, SOCK_CLOEXEC)) < 0) {
		close(c);
		return -1;
	}
	setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(*srv, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return c;
}

/* The child's work (see the file comment); exit status 0 on success. */
static int tcp_workload(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t len = sizeof(sa);
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };
	int lfd, c, s;
	char b = 'x';

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) || listen(lfd, 64) ||
	    getsockname(lfd, (struct sockaddr *)&sa, &len))
		return 10;
	for (int i = 0; i < CONNS; i++) {
		c = connect_pair(lfd, &sa, &s);
		if (c < 0)
			return 11;
		for (int k = 0; k < ROUND_TRIPS; k++) {
			if (write(c, &b, 1) != 1 || read(s, &b, 1) != 1 ||
			    write(s, &b, 1) != 1 || read(c, &b, 1) != 1)
				return 12;
		}
		/* orderly close: client FIN first, server answers */
		close(c);
		if (read(s, &b, 1) != 0)
			return 13;
		close(s);
	}
	/* an aborted connection: close with SO_LINGER 0 sends a RST */
	c = connect_pair(lfd, &sa, &s);
	if (c < 0)
		return 14;
	if (setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)))
		return 15;
	close(c);
	(void)!read(s, &b, 1); /* ECONNRESET */
	close(s);
	close(lfd);
	usleep(50 * 1000); /* let the last ACKs be processed */
	return 0;
}

/* Run the workload in each cgroup of mask (bit 0 = A, bit 1 = B). */
static void run_workload(struct fixture *f, unsigned int mask)
{
	for (int cg = 0; cg < 2; cg++) {
		int status;
		pid_t pid;

		if (!(mask & (1u << cg)))
			continue;
		pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			if (kcg_enter(&f->k, cg, 0))
				_exit(3);
			_exit(tcp_workload());
		}
		assert_int_equal(waitpid(pid, &status, 0), pid);
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			fail_msg("workload child in %s: status %#x", f->k.path[cg], status);
	}
}

static int capture_visit(void *ctx, const struct us_tcp_cgroup_stats *st)
{
	struct capture *cap = ctx;

	cap->visits++;
	for (int i = 0; i < 2; i++) {
		if (st->cgroup_id != cap->id[i])
			continue;
		if (!cap->got[i])
			cap->got[i] = malloc(sizeof(*st));
		if (!cap->got[i])
			return -ENOMEM;
		*cap->got[i] = *st;
	}
	return 0;
}

static void drain(struct fixture *f, struct capture *cap)
{
	memset(cap, 0, sizeof(*cap));
	cap->id = f->k.id;
	assert_int_equal(us_tcp_drain(f->tcp, capture_visit, cap), 0);
}

static void capture_free(struct capture *cap)
{
	free(cap->got[0]);
	free(cap->got[1]);
	cap->got[0] = cap->got[1] = NULL;
}

static void print_stats(const char *what, const struct us_tcp_cgroup_stats *st)
{
	const struct us_hist *r = &st->rtt_ns, *l = &st->lifetime_ns;

	print_message("%s: rtt n=%llu p50=%.0fns p99=%.0fns; lifetime n=%llu p50=%.0fns "
		      "p99=%.0fns; opened=%llu closed=%llu resets=%llu retransmits=%llu\n",
		      what, (unsigned long long)r->count, us_hist_quantile(r, 0.5),
		      us_hist_quantile(r, 0.99), (unsigned long long)l->count,
		      us_hist_quantile(l, 0.5), us_hist_quantile(l, 0.99),
		      (unsigned long long)st->conns_opened, (unsigned long long)st->conns_closed,
		      (unsigned long long)st->resets, (unsigned long long)st->retransmits);
}

static void check_hist(const struct us_hist *h, uint64_t min_count, double max_ns)
{
	uint64_t buckets = 0;
	double p50 = us_hist_quantile(h, 0.5), p99 = us_hist_quantile(h, 0.99);

	for (unsigned int i = 0; i < US_HIST_BUCKETS; i++)
		buckets += h->buckets[i];
	assert_int_equal(buckets, h->count);
	assert_true(h->count >= min_count);
	assert_true(p50 > 0.0);
	assert_true(p50 <= p99);
	assert_true(p99 <= max_ns);
}

/* The figures of a cgroup that ran tcp_workload() once. */
static void check_workload(const struct us_tcp_cgroup_stats *st)
{
	const uint64_t conns = CONNS + 1;

	/* both ends of every connection belong to the cgroup, and nothing
	 * else does: the counts are exact */
	assert_int_equal(st->conns_opened, 2 * conns);
	assert_int_equal(st->conns_closed, 2 * conns);
	assert_int_equal(st->lifetime_ns.count, 2 * conns);
	/* the reset connection: received by the server, and sent by the
	 * client where tcp_send_reset also traces active resets (newer kernels) */
	assert_true(st->resets >= 1 && st->resets <= 2);
	/* each round trip makes each end receive a segment with an RTT */
	check_hist(&st->rtt_ns, (uint64_t)CONNS * ROUND_TRIPS, 1e9);
	check_hist(&st->lifetime_ns, 2 * conns, 10e9);
}

static void check_counters(struct fixture *f)
{
	struct us_tcp_counters c;

	assert_int_equal(us_tcp_counters(f->tcp, &c), 0);
	print_message("counters: start_map_full=%llu hist_map_full=%llu hist_key_missing=%llu\n",
		      (unsigned long long)c.start_map_full, (unsigned long long)c.hist_map_full,
		      (unsigned long long)c.hist_key_missing);
	assert_int_equal(c.start_map_full, 0);
	assert_int_equal(c.hist_map_full, 0);
	assert_int_equal(c.hist_key_missing, 0);
}

/* A tracked and B untracked run the same connections: A's figures match
 * them, B is never reported, and a second drain with no activity is empty. */
static void test_tracked_vs_untracked(void **state)
{
	struct fixture *f = *state;
	const struct us_tcp_opts o = { 0 };
	struct capture cap;

	skip_if_unsupported(f);
	open_collector(f, &o);
	assert_int_equal(us_tcp_track(f->tcp, f->k.id[0]), 0);
	assert_int_equal(us_tcp_track(f->tcp, f->k.id[0]), 0); /* idempotent */
	run_workload(f, 3);

	drain(f, &cap);
	assert_non_null(cap.got[0]);
	print_stats("A (tracked)", cap.got[0]);
	assert_true(cap.got[0]->tracked);
	check_workload(cap.got[0]);
	assert_null(cap.got[1]);
	assert_int_equal(cap.visits, 1);
	capture_free(&cap);

	drain(f, &cap);
	assert_non_null(cap.got[0]);
	assert_int_equal(cap.got[0]->rtt_ns.count, 0);
	assert_int_equal(cap.got[0]->lifetime_ns.count, 0);
	assert_int_equal(cap.got[0]->conns_opened, 0);
	assert_int_equal(cap.got[0]->conns_closed, 0);
	assert_int_equal(cap.got[0]->resets, 0);
	capture_free(&cap);
	check_counters(f);
}

/* The raw_tp twins measure the same thing. */
static void test_raw_tp_fallback(void **state)
{
	struct fixture *f = *state;
	const struct us_tcp_opts o = { .force_raw_tp = true };
	struct capture cap;

	skip_if_unsupported(f);
	open_collector(f, &o);
	assert_string_equal(us_tcp_attach_mode(f->tcp), "raw_tp");
	assert_int_equal(us_tcp_track(f->tcp, f->k.id[0]), 0);
	run_workload(f, 1);
	drain(f, &cap);
	assert_non_null(cap.got[0]);
	print_stats("A (raw_tp)", cap.got[0]);
	check_workload(cap.got[0]);
	capture_free(&cap);
	check_counters(f);
}

/* With track_all the untracked cgroup B is reported: the filter, not a
 * blind spot, is what kept it out of test_tracked_vs_untracked. */
static void test_track_all_sees_untracked(void **state)
{
	struct fixture *f = *state;
	const struct us_tcp_opts o = { .track_all = true };
	struct capture cap;

	skip_if_unsupported(f);
	open_collector(f, &o);
	run_workload(f, 2);
	drain(f, &cap);
	assert_non_null(cap.got[1]);
	print_stats("B (track_all)", cap.got[1]);
	assert_false(cap.got[1]->tracked);
	check_workload(cap.got[1]);
	assert_null(cap.got[0]); /* A had no socket, so no key */
	capture_free(&cap);
	check_counters(f);
}

/* After untrack, a cgroup's connections are neither recorded nor reported. */
static void test_untrack(void **state)
{
	struct fixture *f = *state;
	const struct us_tcp_opts o = { 0 };
	struct capture cap;

	skip_if_unsupported(f);
	open_collector(f, &o);
	assert_int_equal(us_tcp_track(f->tcp, f->k.id[0]), 0);
	assert_int_equal(us_tcp_untrack(f->tcp, f->k.id[0]), 0);
	assert_int_equal(us_tcp_untrack(f->tcp, f->k.id[0]), 0); /* idempotent */
	assert_int_equal(us_tcp_track(f->tcp, 0), -EINVAL);
	run_workload(f, 1);
	drain(f, &cap);
	assert_null(cap.got[0]);
	assert_int_equal(cap.visits, 0);
	capture_free(&cap);
	check_counters(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_tracked_vs_untracked, test_setup,
						test_teardown),
		cmocka_unit_test_setup_teardown(test_raw_tp_fallback, test_setup, test_teardown),
		cmocka_unit_test_setup_teardown(test_track_all_sees_untracked, test_setup,
						test_teardown),
		cmocka_unit_test_setup_teardown(test_untrack, test_setup, test_teardown),
	};

	return cmocka_run_group_tests_name("ktest_tcp", tests, group_setup, group_teardown);
}
