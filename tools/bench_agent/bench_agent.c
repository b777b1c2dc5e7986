/* us-bench-agent: the loads tools/bench-agent (make bench-agent) measures
 * the agent under. One binary, one subcommand per load; each prints one JSON
 * line. Every loop is bounded by a count and by time, and every child dies
 * with its parent (PR_SET_PDEATHSIG).
 *
 *   pingpong --rounds N [--cpu C]   two processes bounce one byte over two
 *                                   pipes, pinned to one CPU: every round
 *                                   trip is two context switches; prints
 *                                   ns per round trip
 *   storm --seconds S [--pairs P]   P such pairs, pair i pinned to CPU
 *                                   i % ncpu: a context-switch storm
 *   io --dir D --seconds S          O_DIRECT 4 KiB writes and reads at random
 *                                   offsets of a 64 MiB file in D, while a
 *                                   client and server exchange 1 KiB
 *                                   requests over loopback TCP, 200 per
 *                                   connection
 *   tick --seconds S [--period-us P] wakes every P us and works ~20 us
 *   floor --seconds S               the storm, with trivial programs on
 *                                   sched_switch: the platform's floor
 *                                   (floor.c)
 *
 * With --cgroup DIR the process joins that cgroup v2 directory first, so
 * everything it starts is the workload's. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_agent.h"
#include "clock.h"

#define WARMUP_ROUNDS 10000
#define MAX_SECONDS 600		/* hard cap on any run */
#define IO_BLOCK 4096
#define IO_FILL (1u << 20)
#define IO_FILE_BYTES (64u << 20)
#define TCP_MSG 1024
#define TCP_PER_CONN 200
#define MAX_PAIRS 64

/* ---- helpers -------------------------------------------------------------- */

static int join_cgroup(const char *dir)
{
	char path[4096];
	int fd, rc = -1;

	snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		goto cleanup;
	if (write(fd, "0", 1) != 1)
		goto cleanup;
	rc = 0;
cleanup:
	if (rc)
		fprintf(stderr, "us-bench-agent: join %s: %s\n", path, strerror(errno));
	if (fd >= 0)
		close(fd);
	return rc;
}

static int pin_cpu(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set) < 0) {
		fprintf(stderr, "us-bench-agent: pin to cpu %d: %s\n", cpu, strerror(errno));
		return -1;
	}
	return 0;
}

static int read_full(int fd, void *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = read(fd, (char *)buf + got, len - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n == 0 && got == 0 ? 0 : -1;
		got += (size_t)n;
	}
	return 1;
}

static int write_full(int fd, const void *buf, size_t len)
{
	size_t put = 0;

	while (put < len) {
		ssize_t n = write(fd, (const char *)buf + put, len - put);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		put += (size_t)n;
	}
	return 0;
}

/* Fork a child that runs fn(arg) and exits; it is killed if we die. */
static pid_t spawn(void (*fn)(void *), void *arg)
{
	pid_t pid = fork();

	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		fn(arg);
		_exit(0);
	}
	if (pid < 0)
		perror("us-bench-agent: fork");
	return pid;
}

static void reap(pid_t pid)
{
	if (pid > 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
}

/* ---- ping-pong ------------------------------------------------------------ */

struct pipes {
	int to[2], from[2];	/* parent -> echo, echo -> parent */
};

/* The echo side: returns each byte until the parent closes its end. */
static void echo_loop(void *arg)
{
	struct pipes *p = arg;
	char c;

	close(p->to[1]);
	close(p->from[0]);
	while (read_full(p->to[0], &c, 1) == 1)
		if (write_full(p->from[1], &c, 1) < 0)
			break;
}

static int pipes_open(struct pipes *p, pid_t *echo)
{
	if (pipe2(p->to, O_CLOEXEC) < 0 || pipe2(p->from, O_CLOEXEC) < 0) {
		perror("us-bench-agent: pipe");
		return -1;
	}
	*echo = spawn(echo_loop, p);
	if (*echo < 0)
		return -1;
	close(p->to[0]);
	close(p->from[1]);
	p->to[0] = p->from[1] = -1;
	return 0;
}

/* Closing our ends makes the echo side read EOF and exit. */
static void pipes_close(struct pipes *p, pid_t echo)
{
	for (int i = 0; i < 2; i++) {
		if (p->to[i] >= 0)
			close(p->to[i]);
		if (p->from[i] >= 0)
			close(p->from[i]);
	}
	if (echo > 0)
		waitpid(echo, NULL, 0);
}

/* Up to `rounds` round trips, stopping at deadline (checked every 1024).
 * Returns the round trips done, or -1. */
static long bounce(struct pipes *p, long rounds, uint64_t deadline)
{
	char c = 'x';
	long i;

	for (i = 0; i < rounds; i++) {
		if ((i & 1023) == 0 && us_mono_ns() > deadline)
			break;
		if (write_full(p->to[1], &c, 1) < 0 || read_full(p->from[0], &c, 1) != 1)
			return -1;
	}
	return i;
}

static int cmd_pingpong(const struct opts *o)
{
	struct pipes p = { { -1, -1 }, { -1, -1 } };
	pid_t echo = -1;
	uint64_t t0, t1, deadline = us_mono_ns() + (uint64_t)o->seconds * US_NS_PER_SEC;
	long done;
	int rc = -1;

	if (o->rounds <= 0) {
		fprintf(stderr, "us-bench-agent: pingpong needs --rounds N\n");
		return -1;
	}
	if (o->cpu >= 0 && pin_cpu(o->cpu) < 0)
		return -1;
	if (pipes_open(&p, &echo) < 0)
		goto cleanup;
	if (bounce(&p, WARMUP_ROUNDS, deadline) < 0)
		goto cleanup;
	t0 = us_mono_ns();
	done = bounce(&p, o->rounds, deadline);
	t1 = us_mono_ns();
	if (done <= 0)
		goto cleanup;
	printf("{\"rounds\":%ld,\"seconds\":%.3f,\"ns_per_round_trip\":%.1f}\n", done,
	       (double)(t1 - t0) / 1e9, (double)(t1 - t0) / (double)done);
	rc = 0;
cleanup:
	pipes_close(&p, echo);
	return rc;
}

/* ---- context-switch storm ------------------------------------------------- */

struct storm_pair {
	int cpu, result_fd;
	uint64_t deadline;
};

/* One pinned ping-pong pair until the deadline; reports its round trips. */
static void storm_pair(void *arg)
{
	struct storm_pair *sp = arg;
	struct pipes p = { { -1, -1 }, { -1, -1 } };
	pid_t echo = -1;
	long done = -1;

	if (pin_cpu(sp->cpu) == 0 && pipes_open(&p, &echo) == 0)
		done = bounce(&p, 1L << 40, sp->deadline);
	pipes_close(&p, echo);
	write_full(sp->result_fd, &done, sizeof(done));
}

int cmd_storm(const struct opts *o)
{
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN), total = 0, n;
	long pairs = o->pairs > 0 ? o->pairs : 2 * ncpu;
	pid_t kids[MAX_PAIRS];
	int res[2] = { -1, -1 }, rc = -1;
	long started = 0;
	double secs;
	uint64_t t0 = us_mono_ns();
	struct storm_pair sp = { .deadline = t0 + (uint64_t)o->seconds * US_NS_PER_SEC };

	if (pairs > MAX_PAIRS)
		pairs = MAX_PAIRS;
	if (pipe2(res, O_CLOEXEC) < 0) {
		perror("us-bench-agent: pipe");
		goto cleanup;
	}
	sp.result_fd = res[1];
	for (; started < pairs; started++) {
		sp.cpu = (int)(started % ncpu);
		kids[started] = spawn(storm_pair, &sp);
		if (kids[started] < 0)
			goto cleanup;
	}
	for (long i = 0; i < pairs; i++) {
		if (read_full(res[0], &n, sizeof(n)) != 1 || n < 0)
			goto cleanup;
		total += n;
	}
	secs = (double)(us_mono_ns() - t0) / 1e9;
	printf("{\"pairs\":%ld,\"seconds\":%.3f,\"round_trips\":%ld,\"switches_per_s\":%.0f}\n",
	       pairs, secs, total, 2.0 * (double)total / secs);
	rc = 0;
cleanup:
	for (long i = 0; i < started; i++)
		reap(kids[i]);
	if (res[0] >= 0)
		close(res[0]);
	if (res[1] >= 0)
		close(res[1]);
	return rc;
}

/* ---- I/O: O_DIRECT disk and loopback TCP ---------------------------------- */

struct disk_job {
	const char *dir;
	uint64_t deadline;
	int result_fd;
};

static uint64_t xorshift(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* Write the whole file once, so later writes overwrite allocated blocks and
 * go straight to the device (no extent conversion in the journal). */
static int disk_fill(int fd, char *buf)
{
	for (off_t off = 0; off < IO_FILE_BYTES; off += IO_FILL)
		if (pwrite(fd, buf, IO_FILL, off) != IO_FILL)
			return -1;
	return fdatasync(fd);
}

static void disk_worker(void *arg)
{
	struct disk_job *j = arg;
	char path[4096];
	char *buf = aligned_alloc(IO_BLOCK, IO_FILL);
	uint64_t rng = 0x9e3779b97f4a7c15ull;
	long ops = -1;
	int fd = -1;

	snprintf(path, sizeof(path), "%s/us-bench-io.dat", j->dir);
	if (!buf)
		goto cleanup;
	memset(buf, 0xa5, IO_FILL);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_DIRECT | O_CLOEXEC, 0600);
	if (fd < 0 || disk_fill(fd, buf) < 0) {
		fprintf(stderr, "us-bench-agent: %s: %s\n", path, strerror(errno));
		goto cleanup;
	}
	for (ops = 0; ops < (1L << 40); ops += 2) {
		off_t w = (off_t)(xorshift(&rng) % (IO_FILE_BYTES / IO_BLOCK)) * IO_BLOCK;
		off_t r = (off_t)(xorshift(&rng) % (IO_FILE_BYTES / IO_BLOCK)) * IO_BLOCK;

		if ((ops & 63) == 0 && us_mono_ns() > j->deadline)
			break;
		if (pwrite(fd, buf, IO_BLOCK, w) != IO_BLOCK || pread(fd, buf, IO_BLOCK, r) != IO_BLOCK) {
			fprintf(stderr, "us-bench-agent: %s: %s\n", path, strerror(errno));
			ops = -1;
			break;
		}
	}
cleanup:
	if (fd >= 0)
		close(fd);
	unlink(path);
	free(buf);
	write_full(j->result_fd, &ops, sizeof(ops));
}

/* Serve connections one at a time: echo TCP_PER_CONN requests, then close
 * first (the server holds TIME_WAIT, so the client never runs out of ports). */
static void tcp_server(void *arg)
{
	int lfd = *(int *)arg;
	char buf[TCP_MSG];

	for (;;) {
		int c = accept(lfd, NULL, NULL);

		if (c < 0)
			break;
		for (int i = 0; i < TCP_PER_CONN; i++)
			if (read_full(c, buf, sizeof(buf)) != 1 || write_full(c, buf, sizeof(buf)) < 0)
				break;
		close(c);
	}
}

static int tcp_listen(struct sockaddr_in *addr)
{
	socklen_t len = sizeof(*addr);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	memset(addr, 0, sizeof(*addr));
	addr->sin_family = AF_INET;
	addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || bind(fd, (struct sockaddr *)addr, sizeof(*addr)) < 0 || listen(fd, 16) < 0 ||
	    getsockname(fd, (struct sockaddr *)addr, &len) < 0) {
		perror("us-bench-agent: tcp listen");
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

/* One connection's worth of requests; returns round trips or -1. */
static long tcp_conn(const struct sockaddr_in *addr, uint64_t deadline)
{
	char buf[TCP_MSG];
	int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	long i = -1;

	memset(buf, 'q', sizeof(buf));
	if (fd < 0 || connect(fd, (const struct sockaddr *)addr, sizeof(*addr)) < 0)
		goto cleanup;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	for (i = 0; i < TCP_PER_CONN; i++) {
		if ((i & 15) == 0 && us_mono_ns() > deadline)
			break;
		if (write_full(fd, buf, sizeof(buf)) < 0 || read_full(fd, buf, sizeof(buf)) != 1) {
			i = -1;
			break;
		}
	}
cleanup:
	if (i < 0)
		perror("us-bench-agent: tcp client");
	if (fd >= 0)
		close(fd);
	return i;
}

static int cmd_io(const struct opts *o)
{
	struct sockaddr_in addr;
	struct disk_job dj = { .dir = o->dir };
	pid_t disk = -1, server = -1;
	int res[2] = { -1, -1 }, lfd = -1, rc = -1;
	long disk_ops = -1, rts = 0, conns = 0, n;
	uint64_t t0 = us_mono_ns();

	if (!o->dir) {
		fprintf(stderr, "us-bench-agent: io needs --dir D\n");
		return -1;
	}
	dj.deadline = t0 + (uint64_t)o->seconds * US_NS_PER_SEC;
	if (pipe2(res, O_CLOEXEC) < 0 || (lfd = tcp_listen(&addr)) < 0)
		goto cleanup;
	dj.result_fd = res[1];
	if ((disk = spawn(disk_worker, &dj)) < 0 || (server = spawn(tcp_server, &lfd)) < 0)
		goto cleanup;
	while (us_mono_ns() < dj.deadline && conns < 1000000) {
		if ((n = tcp_conn(&addr, dj.deadline)) < 0)
			goto cleanup;
		rts += n;
		conns++;
	}
	if (read_full(res[0], &disk_ops, sizeof(disk_ops)) != 1 || disk_ops < 0)
		goto cleanup;
	printf("{\"seconds\":%.3f,\"disk_ops\":%ld,\"tcp_round_trips\":%ld,\"tcp_conns\":%ld}\n",
	       (double)(us_mono_ns() - t0) / 1e9, disk_ops, rts, conns);
	rc = 0;
cleanup:
	reap(server);
	reap(disk);
	if (lfd >= 0)
		close(lfd);
	if (res[0] >= 0)
		close(res[0]);
	if (res[1] >= 0)
		close(res[1]);
	return rc;
}

/* ---- tick: a light steady workload ---------------------------------------- */

static int cmd_tick(const struct opts *o)
{
	uint64_t deadline = us_mono_ns() + (uint64_t)o->seconds * US_NS_PER_SEC;
	struct timespec ts = { .tv_nsec = o->period_us * 1000 };
	volatile uint64_t sink = 0;
	long ticks;

	for (ticks = 0; ticks < (1L << 40) && us_mono_ns() < deadline; ticks++) {
		uint64_t until = us_mono_ns() + 20000;

		while (us_mono_ns() < until)
			sink++;
		nanosleep(&ts, NULL);
	}
	printf("{\"ticks\":%ld}\n", ticks);
	return 0;
}

/* ---- main ----------------------------------------------------------------- */

static void usage(void)
{
	fprintf(stderr,
		"usage: us-bench-agent pingpong --rounds N [--cpu C] [--cgroup DIR]\n"
		"       us-bench-agent storm --seconds S [--pairs P] [--cgroup DIR]\n"
		"       us-bench-agent io --dir D --seconds S [--cgroup DIR]\n"
		"       us-bench-agent tick --seconds S [--period-us P] [--cgroup DIR]\n"
		"       us-bench-agent floor --seconds S [--pairs P]\n");
}

static int parse(int argc, char **argv, struct opts *o)
{
	static const struct option longopts[] = {
		{ "rounds", required_argument, NULL, 'r' },
		{ "cpu", required_argument, NULL, 'c' },
		{ "cgroup", required_argument, NULL, 'g' },
		{ "seconds", required_argument, NULL, 's' },
		{ "pairs", required_argument, NULL, 'p' },
		{ "dir", required_argument, NULL, 'd' },
		{ "period-us", required_argument, NULL, 'P' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	*o = (struct opts){ .seconds = 60, .cpu = -1, .period_us = 2000 };
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'r': o->rounds = strtol(optarg, NULL, 10); break;
		case 'c': o->cpu = (int)strtol(optarg, NULL, 10); break;
		case 'g': o->cgroup = optarg; break;
		case 's': o->seconds = strtol(optarg, NULL, 10); break;
		case 'p': o->pairs = strtol(optarg, NULL, 10); break;
		case 'd': o->dir = optarg; break;
		case 'P': o->period_us = strtol(optarg, NULL, 10); break;
		default: return -1;
		}
	}
	if (o->seconds <= 0 || o->seconds > MAX_SECONDS || o->period_us <= 0 ||
	    o->period_us >= 1000000) {
		fprintf(stderr, "us-bench-agent: --seconds is 1..%d, --period-us 1..999999\n",
			MAX_SECONDS);
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*fn)(const struct opts *);
	} cmds[] = {
		{ "pingpong", cmd_pingpong }, { "storm", cmd_storm },
		{ "io", cmd_io }, { "tick", cmd_tick }, { "floor", cmd_floor },
	};
	struct opts o;

	if (argc < 2)
		goto usage;
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		if (strcmp(argv[1], cmds[i].name) != 0)
			continue;
		if (parse(argc - 1, argv + 1, &o) < 0)
			goto usage;
		if (o.cgroup && join_cgroup(o.cgroup) < 0)
			return 1;
		setvbuf(stdout, NULL, _IOLBF, 0);
		return cmds[i].fn(&o) < 0 ? 1 : 0;
	}
usage:
	usage();
	return 2;
}
