/* Kernel test of bpf/block.bpf.c through agent/block_collector.c and
 * agent/bpf_env.c: real programs, real cgroup v2 directories, real block I/O
 * (O_DIRECT writes and reads of a file on a disk filesystem). Needs root,
 * kernel BTF, a cgroup v2 hierarchy and a directory on a block device; when
 * one is missing every test prints why and skips.
 *
 * The group runs in a private mount namespace, so the tracefs and bpffs
 * mounts that us_bpf_env_prepare() makes vanish with the test. The cgroups
 * (us-ktest-block-<pid>-a/-b under the v2 root) and the data files
 * (.us-ktest-block-<pid>-* in the data directory) are removed in the group
 * teardown; stale cgroups of killed runs at the next start. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../agent/bpf_env.h"
#include "hist.h"
#include "../../agent/block_collector.h"
#include "lib/kcgroup.h"

#define CG_PREFIX "us-ktest-block-"
#define MIB (1024ull * 1024ull)
#define CHUNK (1 * MIB)
#define TMPFS_MAGIC_ 0x01021994
#define OVERLAYFS_MAGIC_ 0x794c7630
#define RAMFS_MAGIC_ 0x858458f6

struct fixture {
	struct kcgroups k;		/* [0] = A (tracked), [1] = B (untracked) */
	char datadir[PATH_MAX];
	struct us_block *block;
};

struct capture {
	const uint64_t *id;		/* fixture ids [2] */
	struct us_block_cgroup_stats got[2];
	bool seen[2];
	bool b_tracked;
};

/* A directory whose filesystem sits on a block device: the cwd, else
 * /var/tmp. 0, or -1 with the reason in f->k.skip_reason. */
static int pick_datadir(struct fixture *f)
{
	const char *cands[2] = { ".", "/var/tmp" };
	char why[2][512];

	for (int i = 0; i < 2; i++) {
		struct statfs sfs;
		struct stat st;

		if (statfs(cands[i], &sfs) || stat(cands[i], &st)) {
			snprintf(why[i], sizeof(why[i]), "%s: %s", cands[i], strerror(errno));
			continue;
		}
		if (sfs.f_type == TMPFS_MAGIC_ || sfs.f_type == RAMFS_MAGIC_ ||
		    sfs.f_type == OVERLAYFS_MAGIC_ || major(st.st_dev) == 0) {
			snprintf(why[i], sizeof(why[i]),
				 "%s: no block device (fs magic 0x%lx, dev %u:%u)", cands[i],
				 (unsigned long)sfs.f_type, major(st.st_dev), minor(st.st_dev));
			continue;
		}
		if (!realpath(cands[i], f->datadir))
			continue;
		return 0;
	}
	snprintf(f->k.skip_reason, sizeof(f->k.skip_reason),
		 "no disk filesystem for data: %s; %s", why[0], why[1]);
	return -1;
}

static int group_setup(void **state)
{
	static const char *const tps[] = {
		"block/block_rq_issue", "block/block_rq_complete", NULL,
	};
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	*state = f;
	kcg_setup(&f->k, CG_PREFIX, 2, tps);
	if (f->k.skip_reason[0] || pick_datadir(f))
		return 0;
	print_message("cgroup v2 root %s, A id %llu, B id %llu, data in %s\n", f->k.root,
		      (unsigned long long)f->k.id[0], (unsigned long long)f->k.id[1], f->datadir);
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

	f->block = NULL;
	return 0;
}

static int test_teardown(void **state)
{
	struct fixture *f = *state;

	us_block_destroy(f->block);
	f->block = NULL;
	return 0;
}

static void skip_if_unsupported(struct fixture *f)
{
	if (f->k.skip_reason[0]) {
		print_message("SKIP: %s\n", f->k.skip_reason);
		skip();
	}
}

static void open_collector(struct fixture *f, const struct us_block_opts *o)
{
	char err[512];
	int rc = us_block_open(o, &f->block, err, sizeof(err));

	if (rc == -EPERM || rc == -ENOSYS || rc == -EOPNOTSUPP) {
		print_message("SKIP: %s\n", err);
		skip();
	}
	if (rc)
		fail_msg("%s", err);
	print_message("programs attached as %s%s%s\n", us_block_attach_mode(f->block),
		      us_block_fallback_reason(f->block)[0] ? ": " : "",
		      us_block_fallback_reason(f->block));
}

/* In the child: write `bytes` with O_DIRECT in CHUNK requests, fdatasync,
 * then read them back with O_DIRECT. Exit status 0 on success. */
static int do_io(const char *file, uint64_t bytes)
{
	void *buf;
	int fd;

	if (posix_memalign(&buf, 4096, CHUNK))
		return 10;
	memset(buf, 0xa5, CHUNK);
	fd = open(file, O_CREAT | O_TRUNC | O_RDWR | O_DIRECT | O_CLOEXEC, 0600);
	if (fd < 0)
		return 11;
	for (uint64_t off = 0; off < bytes; off += CHUNK)
		if (pwrite(fd, buf, CHUNK, (off_t)off) != (ssize_t)CHUNK)
			return 12;
	if (fdatasync(fd))
		return 13;
	posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
	for (uint64_t off = 0; off < bytes; off += CHUNK)
		if (pread(fd, buf, CHUNK, (off_t)off) != (ssize_t)CHUNK)
			return 14;
	close(fd);
	free(buf);
	return 0;
}

/* Run do_io() in a child that first joins cgroup `which`; the file is removed. */
static void io_in_cgroup(struct fixture *f, int which, uint64_t bytes)
{
	char file[PATH_MAX + 64];
	int status;
	pid_t pid;

	snprintf(file, sizeof(file), "%s/.us-ktest-block-%d-%c", f->datadir, (int)getpid(),
		 "ab"[which]);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		if (kcg_enter(&f->k, which, 0))
			_exit(9);
		_exit(do_io(file, bytes));
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	unlink(file);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fail_msg("I/O child in %s failed (status 0x%x)", f->k.path[which], status);
}

static int capture_fn(void *ctx, const struct us_block_cgroup_stats *st)
{
	struct capture *c = ctx;

	for (int i = 0; i < 2; i++) {
		if (st->cgroup_id != c->id[i])
			continue;
		c->got[i] = *st;
		c->seen[i] = true;
	}
	return 0;
}

static void drain(struct fixture *f, struct capture *c)
{
	memset(c, 0, sizeof(*c));
	c->id = f->k.id;
	assert_int_equal(us_block_drain(f->block, capture_fn, c), 0);
}

static void print_stats(const char *name, const struct us_block_cgroup_stats *s)
{
	print_message("%s: read %llu B / %llu ops (lat n=%llu mean %.0f us), "
		      "write %llu B / %llu ops (lat n=%llu mean %.0f us)\n", name,
		      (unsigned long long)s->read_bytes, (unsigned long long)s->read_ops,
		      (unsigned long long)s->read_latency_ns.count,
		      s->read_latency_ns.count ?
		      (double)s->read_latency_ns.sum / (double)s->read_latency_ns.count / 1e3 : 0,
		      (unsigned long long)s->write_bytes, (unsigned long long)s->write_ops,
		      (unsigned long long)s->write_latency_ns.count,
		      s->write_latency_ns.count ?
		      (double)s->write_latency_ns.sum / (double)s->write_latency_ns.count / 1e3 : 0);
}

/* A tracked cgroup gets at least the bytes and requests it wrote and read
 * (each O_DIRECT request of CHUNK bytes is at least one block request; the
 * fs may add metadata writes), with a latency sample per op. Requests that
 * kblockd dispatches (a busy queue) still count: they were inserted by the
 * submitter. */
static void check_io(const struct us_block_cgroup_stats *s, uint64_t bytes)
{
	assert_true(s->write_bytes >= bytes);
	assert_true(s->read_bytes >= bytes);
	assert_true(s->write_ops >= bytes / CHUNK);
	assert_true(s->read_ops >= bytes / CHUNK);
	assert_int_equal(s->write_latency_ns.count, s->write_ops);
	assert_int_equal(s->read_latency_ns.count, s->read_ops);
	assert_true(s->write_latency_ns.sum > 0);
	assert_true(s->read_latency_ns.sum > 0);
}

static void check_no_leak(struct fixture *f)
{
	struct us_block_counters c;

	assert_int_equal(us_block_counters(f->block, &c), 0);
	print_message("counters: start_full %llu hist_full %llu key_missing %llu\n",
		      (unsigned long long)c.start_map_full, (unsigned long long)c.hist_map_full,
		      (unsigned long long)c.hist_key_missing);
	assert_int_equal(c.start_map_full, 0);
	assert_int_equal(c.hist_map_full, 0);
}

static void run_tracked_vs_untracked(struct fixture *f, bool raw)
{
	struct us_block_opts o = { .force_raw_tp = raw };
	const uint64_t bytes = raw ? 16 * MIB : 64 * MIB;
	struct capture c;

	skip_if_unsupported(f);
	open_collector(f, &o);
	assert_int_equal(us_block_track(f->block, f->k.id[0]), 0);
	drain(f, &c);
	io_in_cgroup(f, 0, bytes);
	io_in_cgroup(f, 1, 8 * MIB);
	drain(f, &c);
	assert_true(c.seen[0]);
	print_stats("A (tracked)", &c.got[0]);
	check_io(&c.got[0], bytes);
	/* the untracked cgroup is not measured at all */
	assert_false(c.seen[1]);
	check_no_leak(f);
	/* nothing new: the next interval is empty */
	drain(f, &c);
	assert_true(c.seen[0]);
	assert_true(c.got[0].read_bytes + c.got[0].read_ops < bytes);
}

static void test_tracked_vs_untracked(void **state)
{
	run_tracked_vs_untracked(*state, false);
	assert_string_equal(us_block_attach_mode(((struct fixture *)*state)->block), "tp_btf");
}

static void test_raw_tp_fallback(void **state)
{
	run_tracked_vs_untracked(*state, true);
	assert_string_equal(us_block_attach_mode(((struct fixture *)*state)->block), "raw_tp");
}

static void test_track_all_sees_untracked(void **state)
{
	struct fixture *f = *state;
	struct us_block_opts o = { .track_all = true };
	struct capture c;

	skip_if_unsupported(f);
	open_collector(f, &o);
	drain(f, &c);
	io_in_cgroup(f, 1, 8 * MIB);
	drain(f, &c);
	assert_true(c.seen[1]);
	assert_false(c.got[1].tracked);
	print_stats("B (track_all)", &c.got[1]);
	check_io(&c.got[1], 8 * MIB);
}

static void test_untrack(void **state)
{
	struct fixture *f = *state;
	struct capture c;

	skip_if_unsupported(f);
	open_collector(f, NULL);
	assert_int_equal(us_block_track(f->block, f->k.id[0]), 0);
	assert_int_equal(us_block_track(f->block, f->k.id[0]), 0); /* idempotent */
	assert_int_equal(us_block_untrack(f->block, f->k.id[0]), 0);
	io_in_cgroup(f, 0, 4 * MIB);
	drain(f, &c);
	assert_false(c.seen[0]);
	assert_false(c.seen[1]);
	assert_int_equal(us_block_track(f->block, 0), -EINVAL);
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

	return cmocka_run_group_tests_name("ktest_block", tests, group_setup, group_teardown);
}
