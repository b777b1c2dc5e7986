/* Kernel test of bpf/sched.bpf.c through agent/sched_collector.c and
 * agent/bpf_env.c: real programs, real cgroup v2 directories, real CPU
 * contention. Needs root, kernel BTF and a cgroup v2 hierarchy; when one is
 * missing every test prints why and skips.
 *
 * The group runs in a private mount namespace, so the tracefs and bpffs
 * mounts that us_bpf_env_prepare() makes vanish with the test. The cgroups
 * it creates (us-ktest-sched-<pid>-a/-b under the v2 root) are removed in
 * the group teardown, and leftovers of killed runs at the next start. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../../agent/bpf_env.h"
#include "hist.h"
#include "../../agent/sched_collector.h"
#include "lib/kcgroup.h"

#define CG_PREFIX "us-ktest-sched-"
#define MAX_KIDS 64
#define NS_PER_S 1000000000ull

struct fixture {
	struct kcgroups k;		/* [0] = A (tracked), [1] = B (untracked) */
	pid_t kids[2 * MAX_KIDS];
	int kid_cg[2 * MAX_KIDS];
	int nkids;
	uint64_t kid_cpu_ns[2];		/* rusage of reaped children, per cgroup */
	int pin_cpu;			/* >= 0: spinners share this one CPU */
	int spinners;			/* > 0: spinners per cgroup (default: more than CPUs) */
	uint64_t wall_ns;		/* release of the children to the last one reaped */
	struct us_sched *sched;
};

/* What a drain delivered for the two test cgroups. */
struct capture {
	const uint64_t *id;		/* fixture ids [2] */
	struct us_sched_cgroup_stats *got[2];
	int visits;
};

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}

static int group_setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	*state = f;
	kcg_setup(&f->k, CG_PREFIX, 2, NULL);
	if (f->k.skip_reason[0])
		return 0;
	print_message("cgroup v2 root %s, A=%s (id %llu), B=%s (id %llu)\n", f->k.root,
		      f->k.path[0], (unsigned long long)f->k.id[0], f->k.path[1],
		      (unsigned long long)f->k.id[1]);
	return 0;
}

static void kill_kids(struct fixture *f)
{
	for (int i = 0; i < f->nkids; i++) {
		kill(f->kids[i], SIGKILL);
		waitpid(f->kids[i], NULL, 0);
	}
	f->nkids = 0;
}

static int group_teardown(void **state)
{
	struct fixture *f = *state;
	int rc;

	kill_kids(f);
	rc = kcg_teardown(&f->k);
	free(f);
	return rc;
}

static int test_setup(void **state)
{
	struct fixture *f = *state;

	f->nkids = 0;
	f->kid_cpu_ns[0] = f->kid_cpu_ns[1] = 0;
	f->pin_cpu = -1;
	f->spinners = 0;
	f->wall_ns = 0;
	f->sched = NULL;
	return 0;
}

static int test_teardown(void **state)
{
	struct fixture *f = *state;

	kill_kids(f);
	us_sched_destroy(f->sched);
	f->sched = NULL;
	return 0;
}

static void skip_if_unsupported(struct fixture *f)
{
	if (f->k.skip_reason[0]) {
		print_message("SKIP: %s\n", f->k.skip_reason);
		skip();
	}
}

static void open_collector(struct fixture *f, const struct us_sched_opts *o)
{
	char err[512];
	int rc = us_sched_open(o, &f->sched, err, sizeof(err));

	/* a kernel without BPF or without the privilege skips; anything else
	 * (a verifier rejection, a CO-RE failure) is a real failure */
	if (rc == -EPERM || rc == -ENOSYS || rc == -EOPNOTSUPP) {
		print_message("SKIP: %s\n", err);
		skip();
	}
	if (rc)
		fail_msg("%s", err);
	print_message("programs attached as %s%s%s\n", us_sched_attach_mode(f->sched),
		      us_sched_fallback_reason(f->sched)[0] ? ": " : "",
		      us_sched_fallback_reason(f->sched));
}

/* In a child: run only on `cpu`, under SCHED_RR, so that the rest of a
 * shared machine (CFS tasks) cannot take a share of that CPU and the
 * spinners hold exactly one core; equal RR priorities still take turns
 * (100 ms quanta), so each waits in the run queue while the other runs. RT
 * throttling (sched_rt_runtime_us, 95% by default) leaves the remainder. */
static int pin_hard(int cpu)
{
	struct sched_param sp = { .sched_priority = 1 };
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set))
		return -1;
	return sched_setscheduler(0, SCHED_RR, &sp);
}

/* Children that join cgroup `which`, report ready, wait for `go` to close,
 * then burn CPU for spin_ns of wall time, or, when sleeps > 0, sleep 1 ms
 * that many times (each sleep ends with a wakeup). */
static void spawn(struct fixture *f, int which, int n, uint64_t spin_ns, int sleeps,
		  const int ready[2], const int go[2])
{
	for (int i = 0; i < n; i++) {
		pid_t pid = fork();

		assert_true(pid >= 0);
		if (pid == 0) {
			const struct timespec ms = { 0, 1000 * 1000 };
			uint64_t deadline;
			char c = 'r';
			volatile unsigned long x = 0;

			prctl(PR_SET_PDEATHSIG, SIGKILL);
			/* only the parent may hold these ends, or EOF never comes */
			close(ready[0]);
			close(go[1]);
			if (kcg_enter(&f->k, which, 0))
				_exit(3);
			if (f->pin_cpu >= 0 && pin_hard(f->pin_cpu))
				_exit(5);
			if (write(ready[1], &c, 1) != 1)
				_exit(4);
			(void)!read(go[0], &c, 1); /* returns 0 when the parent closes it */
			for (int k = 0; k < sleeps; k++)
				nanosleep(&ms, NULL);
			deadline = mono_ns() + (sleeps ? 0 : spin_ns);
			while (mono_ns() < deadline)
				for (int k = 0; k < 1000; k++)
					x += (unsigned long)k;
			_exit(0);
		}
		f->kids[f->nkids] = pid;
		f->kid_cg[f->nkids] = which;
		f->nkids++;
	}
}

static int kids_per_cgroup(void)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	long n = 2 * (cpus > 0 ? cpus : 1) + 1; /* more runnable tasks than CPUs */

	return n > MAX_KIDS ? MAX_KIDS : (int)n;
}

/* Run contending spinners in each cgroup of spin_mask (bit 0 = A, bit 1 =
 * B) for spin_ns, and one child sleeping `sleeps` times in each cgroup of
 * sleep_mask, all released at once; reap them and sum their CPU time. */
static void run_workload(struct fixture *f, unsigned int spin_mask, uint64_t spin_ns,
			 unsigned int sleep_mask, int sleeps)
{
	int ready[2], go[2], n = f->spinners > 0 ? f->spinners : kids_per_cgroup(), want = 0;
	uint64_t released;
	char c;

	assert_int_equal(pipe2(ready, O_CLOEXEC), 0);
	assert_int_equal(pipe2(go, O_CLOEXEC), 0);
	for (int cg = 0; cg < 2; cg++) {
		if (spin_mask & (1u << cg)) {
			spawn(f, cg, n, spin_ns, 0, ready, go);
			want += n;
		}
		if (sleep_mask & (1u << cg)) {
			spawn(f, cg, 1, 0, sleeps, ready, go);
			want++;
		}
	}
	close(ready[1]);
	close(go[0]);
	for (int got = 0; got < want; got++)
		assert_int_equal(read(ready[0], &c, 1), 1); /* EOF: a child failed to join */
	close(ready[0]);
	close(go[1]); /* release them all */
	released = mono_ns();
	for (int i = 0; i < f->nkids; i++) {
		struct rusage ru;
		int status;

		assert_int_equal(wait4(f->kids[i], &status, 0, &ru), f->kids[i]);
		assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
		f->kid_cpu_ns[f->kid_cg[i]] +=
			((uint64_t)ru.ru_utime.tv_sec + (uint64_t)ru.ru_stime.tv_sec) * NS_PER_S +
			((uint64_t)ru.ru_utime.tv_usec + (uint64_t)ru.ru_stime.tv_usec) * 1000;
	}
	f->wall_ns = mono_ns() - released;
	f->nkids = 0;
}

static int capture_visit(void *ctx, const struct us_sched_cgroup_stats *st)
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
	assert_int_equal(us_sched_drain(f->sched, capture_visit, cap), 0);
}

static void capture_free(struct capture *cap)
{
	free(cap->got[0]);
	free(cap->got[1]);
	cap->got[0] = cap->got[1] = NULL;
}

static void print_stats(const char *what, const struct us_sched_cgroup_stats *st,
			uint64_t kid_cpu_ns)
{
	const struct us_hist *h = &st->runq_latency_ns;

	print_message("%s: runq n=%llu p50=%.0fns p99=%.0fns sum=%.3fs; on-CPU %.3fs in "
		      "%llu slices, children's rusage %.3fs\n", what,
		      (unsigned long long)h->count, us_hist_quantile(h, 0.5),
		      us_hist_quantile(h, 0.99), (double)h->sum / 1e9,
		      (double)st->oncpu_ns / 1e9, (unsigned long long)st->oncpu_slice_ns.count,
		      (double)kid_cpu_ns / 1e9);
}

/* The figures of a cgroup that ran n contending children for spin_ns. */
static void check_contended(const struct us_sched_cgroup_stats *st, uint64_t kid_cpu_ns,
			    int nkids, uint64_t spin_ns)
{
	const struct us_hist *h = &st->runq_latency_ns;
	double p50 = us_hist_quantile(h, 0.5), p99 = us_hist_quantile(h, 0.99);
	double ratio;
	uint64_t buckets = 0;

	for (unsigned int i = 0; i < US_HIST_BUCKETS; i++)
		buckets += h->buckets[i];
	assert_int_equal(buckets, h->count);
	/* every child was woken by the pipe and switched in at least once */
	assert_true(h->count >= (uint64_t)nkids);
	/* spinners only leave the CPU preempted, so (nearly) every slice
	 * began with a wait: preemption must start the clock, not just wakeups */
	assert_true(2 * h->count >= st->oncpu_slice_ns.count);
	assert_true(p50 > 0.0);
	assert_true(p50 <= p99);
	/* no single wait can outlast the workload (plus scheduling slack) */
	assert_true(p99 <= (double)(spin_ns + NS_PER_S));
	/* n runnable tasks on c CPUs wait (n - c)/c of the time they run;
	 * with n = 2c + 1 that is 1.5x, demand well over a third of it */
	assert_true((double)h->sum >= 0.5 * (double)st->oncpu_ns);

	assert_true(st->oncpu_slice_ns.count > 0);
	assert_int_equal(st->oncpu_ns, st->oncpu_slice_ns.sum);
	assert_true(kid_cpu_ns > 0);
	ratio = (double)st->oncpu_ns / (double)kid_cpu_ns;
	if (ratio < 0.75 || ratio > 1.25)
		fail_msg("on-CPU %.3fs vs children's rusage %.3fs: ratio %.3f outside 0.75..1.25",
			 (double)st->oncpu_ns / 1e9, (double)kid_cpu_ns / 1e9, ratio);
}

static void check_counters(struct fixture *f)
{
	struct us_sched_counters c;

	assert_int_equal(us_sched_counters(f->sched, &c), 0);
	print_message("counters: start_map_full=%llu hist_map_full=%llu hist_key_missing=%llu "
		      "stamp_refused=%llu\n",
		      (unsigned long long)c.start_map_full, (unsigned long long)c.hist_map_full,
		      (unsigned long long)c.hist_key_missing, (unsigned long long)c.stamp_refused);
	assert_int_equal(c.start_map_full, 0);
	assert_int_equal(c.hist_map_full, 0);
	assert_int_equal(c.hist_key_missing, 0);
	/* Task storage refuses a stamp only while its per-CPU guard is held,
	 * e.g. by one of our children preempted while its storage is freed at
	 * exit: seen once in ~250 waits in CI. A handful per test is that race;
	 * more means stamps are refused systematically. */
	assert_true(c.stamp_refused <= 3);
}

static void test_env(void **state)
{
	struct fixture *f = *state;
	char err[512];
	struct statfs sfs;
	struct stat st;
	uint64_t id;

	skip_if_unsupported(f);
	assert_int_equal(statfs(US_BPF_ENV_TRACEFS, &sfs), 0);
	assert_true((unsigned long)sfs.f_type == 0x74726163ul);	/* TRACEFS_MAGIC */
	assert_int_equal(statfs(US_BPF_ENV_BPFFS, &sfs), 0);
	assert_true((unsigned long)sfs.f_type == 0xcafe4a11ul);	/* BPF_FS_MAGIC */
	/* idempotent once mounted */
	assert_int_equal(us_bpf_env_prepare(false, err, sizeof(err)), 0);
	/* the root of the v2 hierarchy is cgroup 1; a child's id is its inode */
	assert_int_equal(us_bpf_env_cgroup_id(f->k.root, &id, err, sizeof(err)), 0);
	assert_int_equal(id, 1);
	assert_int_equal(stat(f->k.path[0], &st), 0);
	assert_int_equal(f->k.id[0], (uint64_t)st.st_ino);
	assert_true(f->k.id[0] != f->k.id[1]);
	/* a v1 or non-cgroup path is refused with a reason */
	assert_int_equal(us_bpf_env_cgroup_id("/proc", &id, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "/proc"));
}

/* A tracked and B untracked contend at the same time: A's run-queue
 * latency and on-CPU time match reality, B is never reported, and a second
 * drain with no activity is empty. */
static void test_tracked_vs_untracked(void **state)
{
	struct fixture *f = *state;
	const struct us_sched_opts o = { 0 };
	const uint64_t spin_ns = NS_PER_S;
	struct capture cap;

	skip_if_unsupported(f);
	open_collector(f, &o);
	assert_int_equal(us_sched_track(f->sched, f->k.id[0]), 0);
	assert_int_equal(us_sched_track(f->sched, f->k.id[0]), 0); /* idempotent */
	run_workload(f, 3, spin_ns, 0, 0);

	drain(f, &cap);
	assert_non_null(cap.got[0]);
	print_stats("A (tracked)", cap.got[0], f->kid_cpu_ns[0]);
	print_message("B (untracked): children's rusage %.3fs, %s\n",
		      (double)f->kid_cpu_ns[1] / 1e9, cap.got[1] ? "REPORTED" : "not reported");
	assert_true(cap.got[0]->tracked);
	check_contended(cap.got[0], f->kid_cpu_ns[0], kids_per_cgroup(), spin_ns);
	assert_null(cap.got[1]);
	assert_true(f->kid_cpu_ns[1] > 0); /* B did run: its absence means something */
	assert_int_equal(cap.visits, 1);
	capture_free(&cap);

	/* the interval restarts at every drain */
	drain(f, &cap);
	assert_non_null(cap.got[0]);
	assert_int_equal(cap.got[0]->runq_latency_ns.count, 0);
	assert_int_equal(cap.got[0]->runq_latency_ns.sum, 0);
	assert_int_equal(cap.got[0]->oncpu_slice_ns.count, 0);
	assert_int_equal(cap.got[0]->oncpu_ns, 0);
	capture_free(&cap);
	check_counters(f);
}

/* Two busy loops pinned to one CPU: the cgroup holds exactly one core for
 * the wall time they run, so on-CPU time is wall x 1 core (the issue's
 * +-15%), and each waits while the other runs, so there is run-queue
 * latency whose total is about the wall time too. */
static void test_pinned_contention(void **state)
{
	struct fixture *f = *state;
	const struct us_sched_opts o = { 0 };
	const uint64_t spin_ns = NS_PER_S;
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	struct capture cap;
	const struct us_hist *h;
	double cores, waited;

	skip_if_unsupported(f);
	open_collector(f, &o);
	assert_int_equal(us_sched_track(f->sched, f->k.id[0]), 0);
	f->pin_cpu = cpus > 1 ? (int)cpus - 1 : 0;
	f->spinners = 2;
	run_workload(f, 1, spin_ns, 0, 0);
	drain(f, &cap);
	assert_non_null(cap.got[0]);
	h = &cap.got[0]->runq_latency_ns;
	print_stats("A (2 spinners on one CPU)", cap.got[0], f->kid_cpu_ns[0]);
	cores = (double)cap.got[0]->oncpu_ns / (double)f->wall_ns;
	waited = (double)h->sum / (double)f->wall_ns;
	print_message("wall %.3fs: on-CPU = %.3f cores, run-queue wait = %.3f x wall\n",
		      (double)f->wall_ns / 1e9, cores, waited);
	assert_true(us_hist_quantile(h, 0.5) > 0.0);
	if (cores < 0.85 || cores > 1.15)
		fail_msg("on-CPU %.3f cores outside 1 +- 15%%", cores);
	/* with two tasks on one CPU one always waits: the waits add up to
	 * the wall time, less the moments the CPU had a third task */
	if (waited < 0.5 || waited > 1.15)
		fail_msg("run-queue wait %.3f x wall outside 0.5..1.15", waited);
	capture_free(&cap);
	check_counters(f);
}

/* Run-queue latency belongs to the task switched IN. A's only task sleeps
 * and wakes while B's spinners hold the CPUs, so almost every switch-in of
 * A's task follows a B task (or idle): each of its wakeups must be recorded
 * under A, none may be lost to the cgroup of the task switched out. */
static void test_latency_goes_to_next_task(void **state)
{
	struct fixture *f = *state;
	const struct us_sched_opts o = { 0 };
	const int sleeps = 200;
	struct capture cap;
	const struct us_hist *h;

	skip_if_unsupported(f);
	open_collector(f, &o);
	assert_int_equal(us_sched_track(f->sched, f->k.id[0]), 0);
	run_workload(f, 2, 600 * 1000 * 1000ull, 1, sleeps);
	drain(f, &cap);
	assert_non_null(cap.got[0]);
	assert_null(cap.got[1]);
	print_stats("A (sleeper among B's spinners)", cap.got[0], f->kid_cpu_ns[0]);
	h = &cap.got[0]->runq_latency_ns;
	/* one switch-in per wakeup: the release from `go` and each sleep; a
	 * sleep whose timer fires before the task has left the CPU never
	 * blocks, so allow a few short (seen: 198 of 200 on a loaded host) */
	assert_true(h->count >= (uint64_t)sleeps * 9 / 10);
	assert_true(h->count <= (uint64_t)(3 * sleeps));
	assert_true(us_hist_quantile(h, 0.5) <= us_hist_quantile(h, 0.99));
	assert_true(us_hist_quantile(h, 0.99) <= (double)NS_PER_S);
	assert_true(cap.got[0]->oncpu_slice_ns.count >= (uint64_t)sleeps * 9 / 10);
	assert_true(cap.got[0]->oncpu_ns > 0);
	assert_true(cap.got[0]->oncpu_ns <= 2 * f->kid_cpu_ns[0] + 10 * 1000 * 1000);
	capture_free(&cap);
	check_counters(f);
}

/* The raw_tp twins measure the same thing. */
static void test_raw_tp_fallback(void **state)
{
	struct fixture *f = *state;
	const struct us_sched_opts o = { .force_raw_tp = true };
	const uint64_t spin_ns = 600 * 1000 * 1000ull;
	struct capture cap;

	skip_if_unsupported(f);
	open_collector(f, &o);
	assert_string_equal(us_sched_attach_mode(f->sched), "raw_tp");
	assert_int_equal(us_sched_track(f->sched, f->k.id[0]), 0);
	run_workload(f, 1, spin_ns, 0, 0);
	drain(f, &cap);
	assert_non_null(cap.got[0]);
	print_stats("A (raw_tp)", cap.got[0], f->kid_cpu_ns[0]);
	check_contended(cap.got[0], f->kid_cpu_ns[0], kids_per_cgroup(), spin_ns);
	capture_free(&cap);
	check_counters(f);
}

/* With track_all, the untracked cgroup B is reported: the filter, not a
 * blind spot, is what kept it out of test_tracked_vs_untracked. */
static void test_track_all_sees_untracked(void **state)
{
	struct fixture *f = *state;
	const struct us_sched_opts o = { .track_all = true };
	const uint64_t spin_ns = 500 * 1000 * 1000ull;
	struct capture cap;

	skip_if_unsupported(f);
	open_collector(f, &o);
	run_workload(f, 2, spin_ns, 0, 0);
	drain(f, &cap);
	assert_non_null(cap.got[1]);
	print_stats("B (track_all)", cap.got[1], f->kid_cpu_ns[1]);
	assert_false(cap.got[1]->tracked);
	check_contended(cap.got[1], f->kid_cpu_ns[1], kids_per_cgroup(), spin_ns);
	assert_null(cap.got[0]); /* A had no task, so no key */
	capture_free(&cap);
	check_counters(f);
}

/* After untrack, a cgroup's activity is neither recorded nor reported. */
static void test_untrack(void **state)
{
	struct fixture *f = *state;
	const struct us_sched_opts o = { 0 };
	struct capture cap;

	skip_if_unsupported(f);
	open_collector(f, &o);
	assert_int_equal(us_sched_track(f->sched, f->k.id[0]), 0);
	assert_int_equal(us_sched_untrack(f->sched, f->k.id[0]), 0);
	assert_int_equal(us_sched_untrack(f->sched, f->k.id[0]), 0); /* idempotent */
	assert_int_equal(us_sched_track(f->sched, 0), -EINVAL);
	run_workload(f, 1, 300 * 1000 * 1000ull, 0, 0);
	drain(f, &cap);
	assert_null(cap.got[0]);
	assert_int_equal(cap.visits, 0);
	capture_free(&cap);
	check_counters(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_env, test_setup, test_teardown),
		cmocka_unit_test_setup_teardown(test_tracked_vs_untracked, test_setup,
						test_teardown),
		cmocka_unit_test_setup_teardown(test_pinned_contention, test_setup,
						test_teardown),
		cmocka_unit_test_setup_teardown(test_latency_goes_to_next_task, test_setup,
						test_teardown),
		cmocka_unit_test_setup_teardown(test_raw_tp_fallback, test_setup, test_teardown),
		cmocka_unit_test_setup_teardown(test_track_all_sees_untracked, test_setup,
						test_teardown),
		cmocka_unit_test_setup_teardown(test_untrack, test_setup, test_teardown),
	};

	return cmocka_run_group_tests_name("ktest_sched", tests, group_setup, group_teardown);
}
