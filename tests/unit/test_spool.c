/* Agent spool: ordering, acks, persistence across restarts, seq monotonicity,
 * the size bound with counted drops, the single-owner lock, and a real full
 * disk (a tiny tmpfs) losing only what it reports. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clock.h"
#include "spool.h"

struct collected {
	uint64_t seqs[4096];
	size_t lens[4096];
	size_t n;
};

static int collect(void *ctx, uint64_t seq, const uint8_t *frame, size_t len)
{
	struct collected *c = ctx;

	(void)frame;
	c->seqs[c->n] = seq;
	c->lens[c->n] = len;
	c->n++;
	return 0;
}

static char *make_dir(void)
{
	char *d = strdup("/tmp/us-test-spool-XXXXXX");

	assert_non_null(mkdtemp(d));
	return d;
}

static void remove_dir(char *d)
{
	char cmd[256];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", d);
	assert_int_equal(system(cmd), 0);
	free(d);
}

static uint64_t append(struct us_spool *sp, size_t len, uint8_t fill)
{
	uint8_t buf[8192];
	char err[256];
	uint64_t seq = us_spool_next_seq(sp);

	memset(buf, fill, len);
	assert_int_equal(us_spool_append(sp, seq, buf, len, err, sizeof(err)), 0);
	return seq;
}

static void test_order_ack_and_stats(void **state)
{
	char *dir = make_dir(), err[256];
	struct us_spool *sp = us_spool_open(dir, 1 << 20, err, sizeof(err));
	struct collected *c = calloc(1, sizeof(*c));
	struct us_spool_stats st;
	uint64_t first, last = 0;

	(void)state;
	assert_non_null(sp);
	first = append(sp, 100, 1);
	for (int i = 0; i < 9; i++)
		last = append(sp, 100, 2);
	assert_int_equal(us_spool_commit(sp, err, sizeof(err)), 0);
	us_spool_get_stats(sp, &st);
	assert_int_equal(st.envelopes, 10);
	assert_int_equal(st.bytes, 1000);
	assert_int_equal(us_spool_scan(sp, 0, 100, collect, c), 10);
	for (size_t i = 1; i < c->n; i++)
		assert_true(c->seqs[i] == c->seqs[i - 1] + 1);
	assert_int_equal(c->seqs[0], first);
	assert_int_equal(c->seqs[9], last);
	/* scan after a cursor, with a limit */
	c->n = 0;
	assert_int_equal(us_spool_scan(sp, first + 4, 3, collect, c), 3);
	assert_int_equal(c->seqs[0], first + 5);
	/* acks, in any order; acking twice or an unknown seq is harmless */
	assert_int_equal(us_spool_ack(sp, first + 3), 0);
	assert_int_equal(us_spool_ack(sp, first), 0);
	assert_int_equal(us_spool_ack(sp, first), 0);
	assert_int_equal(us_spool_ack(sp, last + 100), 0);
	assert_int_equal(us_spool_commit(sp, err, sizeof(err)), 0);
	us_spool_get_stats(sp, &st);
	assert_int_equal(st.envelopes, 8);
	assert_int_equal(st.bytes, 800);
	assert_int_equal(us_spool_oldest(sp), first + 1);
	us_spool_close(sp);
	free(c);
	remove_dir(dir);
}

static void test_survives_restart(void **state)
{
	char *dir = make_dir(), err[256];
	struct us_spool *sp = us_spool_open(dir, 1 << 20, err, sizeof(err));
	struct collected *c = calloc(1, sizeof(*c));
	struct us_spool_stats st;
	uint64_t a, b, next;
	pid_t pid;

	(void)state;
	a = append(sp, 10, 1);
	b = append(sp, 20, 2);
	assert_int_equal(us_spool_commit(sp, err, sizeof(err)), 0);
	assert_int_equal(us_spool_ack(sp, a), 0);
	us_spool_close(sp);

	/* a process that dies mid-transaction: its appends were never
	 * committed, so never sent; the committed ones survive */
	pid = fork();
	if (pid == 0) {
		struct us_spool *child = us_spool_open(dir, 1 << 20, err, sizeof(err));

		if (!child)
			_exit(1);
		append(child, 30, 3);
		_exit(0);
	}
	assert_true(pid > 0);
	waitpid(pid, NULL, 0);

	sp = us_spool_open(dir, 1 << 20, err, sizeof(err));
	assert_non_null(sp);
	us_spool_get_stats(sp, &st);
	assert_int_equal(st.envelopes, 1);
	assert_int_equal(st.bytes, 20);
	assert_int_equal(us_spool_scan(sp, 0, 10, collect, c), 1);
	assert_int_equal(c->seqs[0], b);
	next = us_spool_next_seq(sp);
	assert_true(next > b);
	us_spool_close(sp);
	free(c);
	remove_dir(dir);
}

static void test_fresh_spool_starts_at_clock(void **state)
{
	char *dir = make_dir(), err[256];
	uint64_t before = us_now_ns() / 1000, seq1, seq2;
	struct us_spool *sp = us_spool_open(dir, 1 << 20, err, sizeof(err));

	(void)state;
	seq1 = append(sp, 10, 1);
	assert_true(seq1 > before);
	us_spool_close(sp);
	/* the spool is wiped (disk replaced, directory deleted): the agent
	 * must still never reuse a seq the coordinator may have stored */
	remove_dir(dir);
	dir = make_dir();
	usleep(2000);
	sp = us_spool_open(dir, 1 << 20, err, sizeof(err));
	seq2 = us_spool_next_seq(sp);
	assert_true(seq2 > seq1);
	us_spool_close(sp);
	remove_dir(dir);
}

static void test_full_drops_oldest_and_counts(void **state)
{
	char *dir = make_dir(), err[256];
	struct us_spool *sp = us_spool_open(dir, 10000, err, sizeof(err));
	struct collected *c = calloc(1, sizeof(*c));
	struct us_spool_stats st;
	uint64_t seqs[25];

	(void)state;
	for (int i = 0; i < 25; i++)
		seqs[i] = append(sp, 1000, (uint8_t)i);
	assert_int_equal(us_spool_commit(sp, err, sizeof(err)), 0);
	us_spool_get_stats(sp, &st);
	assert_int_equal(st.envelopes, 10);
	assert_int_equal(st.bytes, 10000);
	assert_int_equal(st.dropped_total, 15);
	assert_int_equal(us_spool_scan(sp, 0, 100, collect, c), 10);
	assert_int_equal(c->seqs[0], seqs[15]);
	assert_int_equal(c->seqs[9], seqs[24]);
	/* larger than the whole spool: refused, counted */
	{
		uint8_t *big = calloc(1, 20000);

		assert_int_equal(us_spool_append(sp, us_spool_next_seq(sp), big, 20000, err,
						 sizeof(err)), -1);
		assert_non_null(strstr(err, "larger than the whole spool"));
		free(big);
	}
	us_spool_close(sp);
	/* the drop count is cumulative across restarts: heartbeats carry it */
	sp = us_spool_open(dir, 10000, err, sizeof(err));
	us_spool_get_stats(sp, &st);
	assert_int_equal(st.dropped_total, 16);
	us_spool_close(sp);
	free(c);
	remove_dir(dir);
}

static void test_single_owner(void **state)
{
	char *dir = make_dir(), err[256];
	struct us_spool *a = us_spool_open(dir, 1 << 20, err, sizeof(err));
	struct us_spool *b;

	(void)state;
	assert_non_null(a);
	b = us_spool_open(dir, 1 << 20, err, sizeof(err));
	assert_null(b);
	assert_non_null(strstr(err, "in use by another process"));
	us_spool_close(a);
	b = us_spool_open(dir, 1 << 20, err, sizeof(err));
	assert_non_null(b);
	us_spool_close(b);
	remove_dir(dir);
}

/* A real full disk: a 512 KiB tmpfs. Appends fail or the commit fails; what
 * was committed before stays, the loss is counted, the spool keeps working
 * once space is freed. */
static void test_disk_full(void **state)
{
	char *dir = make_dir(), err[256];
	struct us_spool *sp;
	struct us_spool_stats before, after;
	uint64_t kept;
	int failures = 0;

	(void)state;
	if (mount("tmpfs", dir, "tmpfs", 0, "size=512k") < 0) {
		print_message("SKIP: cannot mount a tmpfs to fill (%s); needs root\n", strerror(errno));
		remove_dir(dir);
		skip();
	}
	sp = us_spool_open(dir, 64 << 20, err, sizeof(err));
	assert_non_null(sp);
	kept = append(sp, 1000, 1);
	assert_int_equal(us_spool_commit(sp, err, sizeof(err)), 0);
	us_spool_get_stats(sp, &before);
	for (int i = 0; i < 2000 && failures == 0; i++) {
		uint8_t buf[4000];
		uint64_t seq = us_spool_next_seq(sp);

		memset(buf, i, sizeof(buf));
		if (us_spool_append(sp, seq, buf, sizeof(buf), err, sizeof(err)) < 0)
			failures++;
		else if (i % 10 == 9 && us_spool_commit(sp, err, sizeof(err)) < 0)
			failures++;
	}
	assert_int_equal(failures, 1);
	assert_true(strstr(err, "full") != NULL || strstr(err, "disk") != NULL);
	us_spool_get_stats(sp, &after);
	assert_true(after.dropped_total > before.dropped_total);
	/* what was committed before the disk filled is still there */
	{
		struct collected *c = calloc(1, sizeof(*c));

		assert_true(us_spool_scan(sp, 0, 1, collect, c) == 1);
		assert_int_equal(c->seqs[0], kept);
		free(c);
	}
	us_spool_close(sp);
	sp = us_spool_open(dir, 64 << 20, err, sizeof(err));
	if (sp) {
		struct us_spool_stats reopened;

		us_spool_get_stats(sp, &reopened);
		assert_true(reopened.envelopes >= 1);
		us_spool_close(sp);
	}
	assert_int_equal(umount(dir), 0);
	remove_dir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_order_ack_and_stats),
		cmocka_unit_test(test_survives_restart),
		cmocka_unit_test(test_fresh_spool_starts_at_clock),
		cmocka_unit_test(test_full_drops_oldest_and_counts),
		cmocka_unit_test(test_single_owner),
		cmocka_unit_test(test_disk_full),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
