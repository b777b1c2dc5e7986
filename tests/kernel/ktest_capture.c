/* Kernel test of bpf/capture.bpf.c through agent/capture.c: real programs on
 * the syscall tracepoints, a real server process in a test cgroup accepting
 * loopback connections and reading them with each of read, readv, recvfrom
 * and recvmsg, answering with write, writev, sendto and sendmsg. The bytes
 * the capture delivers must be the bytes the client sent, exactly, or be
 * accounted for as gaps. Needs root, BTF and cgroup v2; skips otherwise. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../agent/capture.h"
#include "lib/kcgroup.h"

#define MAX_CONNS 8
#define PAYLOAD (200 * 1024)
#define RESPONSE "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"

enum io_mode { MODE_READ, MODE_READV, MODE_RECVFROM, MODE_RECVMSG, MODE_NR };

/* What the capture delivered for one connection. */
struct seen {
	uint64_t conn_id;
	int opened, closed;
	uint8_t *bytes;			/* captured request bytes, at stream offsets */
	uint64_t stream;		/* bytes accounted: captured + gaps */
	uint64_t captured, gaps;
	uint64_t written;		/* response bytes (WRITE len) */
	char head[64];			/* first response bytes */
	uint16_t lport;
};

struct fixture {
	struct kcgroups k;
	struct us_capture *cap;
	struct seen seen[MAX_CONNS];
	int nseen;
	int foreign;			/* records of connections not in seen (overflow) */
};

static struct seen *seen_of(struct fixture *f, uint64_t id, bool create)
{
	for (int i = 0; i < f->nseen; i++)
		if (f->seen[i].conn_id == id)
			return &f->seen[i];
	if (!create || f->nseen == MAX_CONNS)
		return NULL;
	f->seen[f->nseen].conn_id = id;
	f->seen[f->nseen].bytes = calloc(1, 4 * PAYLOAD);
	return &f->seen[f->nseen++];
}

static void on_event(void *ctx, const struct us_cap_event *ev, const uint8_t *data)
{
	struct fixture *f = ctx;
	struct seen *s = seen_of(f, ev->conn_id, ev->type == US_CAP_OPEN);

	if (!s) {
		f->foreign++;
		return;
	}
	s->gaps += ev->gap;
	s->stream += ev->gap;
	switch (ev->type) {
	case US_CAP_OPEN:
		s->opened++;
		s->lport = ev->lport;
		break;
	case US_CAP_READ:
		if (s->stream + ev->captured <= 4 * PAYLOAD)
			memcpy(s->bytes + s->stream, data, ev->captured);
		s->stream += ev->captured;
		s->captured += ev->captured;
		break;
	case US_CAP_WRITE:
		if (!s->written)
			memcpy(s->head, data, ev->captured < sizeof(s->head) - 1 ?
			       ev->captured : sizeof(s->head) - 1);
		s->written += ev->len;
		break;
	case US_CAP_CLOSE:
		s->closed++;
		break;
	}
}

static int group_setup(void **state)
{
	static const char *const tps[] = {
		"syscalls/sys_exit_accept4", "syscalls/sys_enter_read", "syscalls/sys_exit_read",
		"syscalls/sys_enter_close", NULL,
	};
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	kcg_setup(&f->k, "us-ktest-capture-", 2, tps);
	*state = f;
	return 0;
}

static int group_teardown(void **state)
{
	struct fixture *f = *state;
	int rc = kcg_teardown(&f->k);

	for (int i = 0; i < f->nseen; i++)
		free(f->seen[i].bytes);
	free(f);
	return rc;
}

static int test_setup(void **state)
{
	struct fixture *f = *state;

	for (int i = 0; i < f->nseen; i++)
		free(f->seen[i].bytes);
	memset(f->seen, 0, sizeof(f->seen));
	f->nseen = 0;
	f->foreign = 0;
	f->cap = NULL;
	return 0;
}

static int test_teardown(void **state)
{
	struct fixture *f = *state;

	us_capture_destroy(f->cap);
	f->cap = NULL;
	return 0;
}

static void open_capture(struct fixture *f, const struct us_capture_opts *o)
{
	char err[512];
	int rc;

	if (f->k.skip_reason[0]) {
		print_message("SKIP: %s\n", f->k.skip_reason);
		skip();
	}
	rc = us_capture_open(o, on_event, f, &f->cap, err, sizeof(err));
	if (rc)
		fail_msg("%s", err);
}

static int listen_loopback(uint16_t *port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(fd, 16), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	*port = ntohs(a.sin_port);
	return fd;
}

static ssize_t server_read(int fd, enum io_mode m, char *buf, size_t len)
{
	struct iovec iov[2] = { { buf, len / 2 }, { buf + len / 2, len - len / 2 } };
	struct msghdr msg = { .msg_iov = iov, .msg_iovlen = 2 };

	switch (m) {
	case MODE_READ: return read(fd, buf, len);
	case MODE_READV: return readv(fd, iov, 2);
	case MODE_RECVFROM: return recvfrom(fd, buf, len, 0, NULL, NULL);
	default: return recvmsg(fd, &msg, 0);
	}
}

static ssize_t server_write(int fd, enum io_mode m)
{
	static const char head[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n";
	struct iovec iov[2] = { { (void *)head, sizeof(head) - 1 }, { (void *)"ok", 2 } };
	struct msghdr msg = { .msg_iov = iov, .msg_iovlen = 2 };

	switch (m) {
	case MODE_READ: return write(fd, RESPONSE, sizeof(RESPONSE) - 1);
	case MODE_READV: return writev(fd, iov, 2);
	case MODE_RECVFROM: return sendto(fd, RESPONSE, sizeof(RESPONSE) - 1, 0, NULL, 0);
	default: return sendmsg(fd, &msg, 0);
	}
}

/* The server child: joins cgroup `cg`, accepts `conns` connections, reads
 * `payload` bytes from each with mode (i % MODE_NR) in reads of at most
 * bufsize, answers, and closes unless keep_open (then exits holding it). */
static int serve(struct fixture *f, int cg, int lfd, int conns, size_t payload,
		 size_t bufsize, bool keep_open)
{
	char *buf = malloc(bufsize);

	if (!buf || kcg_enter(&f->k, cg, 0))
		return 3;
	for (int i = 0; i < conns; i++) {
		int c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		size_t got = 0;

		if (c < 0)
			return 4;
		while (got < payload) {
			ssize_t n = server_read(c, (enum io_mode)(i % MODE_NR), buf,
						payload - got < bufsize ? payload - got : bufsize);

			if (n <= 0)
				return 5;
			got += (size_t)n;
		}
		if (server_write(c, (enum io_mode)(i % MODE_NR)) != sizeof(RESPONSE) - 1)
			return 6;
		if (!keep_open)
			close(c);
	}
	free(buf);
	return 0;
}

static void fill_payload(uint8_t *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++) {
		seed = seed * 1103515245u + 12345u;
		p[i] = (uint8_t)(seed >> 16);
	}
}

/* The client side, in this process: connect, send the payload in uneven
 * pieces, read the response to its end. */
static void client(uint16_t port, const uint8_t *payload, size_t n)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	char resp[256];
	size_t off = 0, got = 0, piece = 1;

	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	while (off < n) {
		size_t k = piece < n - off ? piece : n - off;
		ssize_t w = write(fd, payload + off, k);

		assert_true(w > 0);
		off += (size_t)w;
		piece = piece * 7 % 30011 + 1; /* 1 B .. 30 KiB, uneven */
	}
	while (got < sizeof(RESPONSE) - 1) {
		ssize_t r = read(fd, resp + got, sizeof(resp) - got);

		assert_true(r > 0);
		got += (size_t)r;
	}
	close(fd);
}

static pid_t spawn_server(struct fixture *f, int cg, int lfd, int conns, size_t payload,
			  size_t bufsize, bool keep_open)
{
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		_exit(serve(f, cg, lfd, conns, payload, bufsize, keep_open));
	}
	return pid;
}

static void reap(pid_t pid)
{
	int status;

	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (!WIFEXITED(status) || WEXITSTATUS(status))
		fail_msg("server child: status %#x", status);
}

static void drain_events(struct fixture *f)
{
	while (us_capture_poll(f->cap, 50) > 0)
		;
}

/* Every mode of reading and writing: the captured stream is the sent one,
 * byte for byte, with no gap; one OPEN and one CLOSE per connection; the
 * response's length and first bytes; the kernel's counters agree. */
static void test_exact_stream(void **state)
{
	struct fixture *f = *state;
	const struct us_capture_opts o = { 0 };
	uint8_t *payload = malloc(PAYLOAD);
	uint64_t ctr[US_CAP_CNT_NR];
	uint16_t port;
	int lfd;
	pid_t pid;

	open_capture(f, &o);
	lfd = listen_loopback(&port);
	assert_int_equal(us_capture_track(f->cap, f->k.id[0], 7, &(uint32_t){ port }, 1), 0);
	pid = spawn_server(f, 0, lfd, MODE_NR, PAYLOAD, 16384, false);
	for (int i = 0; i < MODE_NR; i++) {
		fill_payload(payload, PAYLOAD, (unsigned)i + 1);
		client(port, payload, PAYLOAD);
	}
	reap(pid);
	close(lfd);
	drain_events(f);
	assert_int_equal(f->nseen, MODE_NR);
	for (int i = 0; i < MODE_NR; i++) {
		struct seen *s = &f->seen[i];

		print_message("conn %d (%s): captured %llu, gaps %llu, written %llu\n", i,
			      (const char *[]){ "read", "readv", "recvfrom", "recvmsg" }[i],
			      (unsigned long long)s->captured, (unsigned long long)s->gaps,
			      (unsigned long long)s->written);
		assert_int_equal(s->opened, 1);
		assert_int_equal(s->closed, 1);
		assert_int_equal(s->lport, port);
		assert_int_equal(s->gaps, 0);
		assert_int_equal(s->captured, PAYLOAD);
		fill_payload(payload, PAYLOAD, (unsigned)i + 1);
		assert_memory_equal(s->bytes, payload, PAYLOAD);
		assert_int_equal(s->written, sizeof(RESPONSE) - 1);
		assert_memory_equal(s->head, "HTTP/1.1 200 OK\r\n", 17);
	}
	assert_int_equal(us_capture_counters(f->cap, ctr), 0);
	assert_int_equal(ctr[US_CAP_CNT_READ_BYTES], (uint64_t)MODE_NR * PAYLOAD);
	assert_int_equal(ctr[US_CAP_CNT_CAPTURED_BYTES], (uint64_t)MODE_NR * PAYLOAD);
	assert_int_equal(ctr[US_CAP_CNT_RB_DROPPED], 0);
	assert_int_equal(ctr[US_CAP_CNT_CONNS_OPENED], MODE_NR);
	assert_int_equal(ctr[US_CAP_CNT_CONNS_CLOSED], MODE_NR);
	assert_int_equal(us_capture_conns(f->cap), 0);
	free(payload);
}

/* Reads bigger than the cap: what is over it is a gap at the right place,
 * and captured + gaps is the whole stream. */
static void test_cap_truncates(void **state)
{
	struct fixture *f = *state;
	const struct us_capture_opts o = { .cap_bytes = 1000 };
	uint8_t *payload = malloc(PAYLOAD);
	uint64_t ctr[US_CAP_CNT_NR], pos = 0;
	struct seen *s;
	uint16_t port;
	int lfd;
	pid_t pid;

	open_capture(f, &o);
	lfd = listen_loopback(&port);
	assert_int_equal(us_capture_track(f->cap, f->k.id[0], 1, &(uint32_t){ port }, 1), 0);
	pid = spawn_server(f, 0, lfd, 1, PAYLOAD, 65536, false);
	fill_payload(payload, PAYLOAD, 99);
	client(port, payload, PAYLOAD);
	reap(pid);
	close(lfd);
	drain_events(f);
	assert_int_equal(f->nseen, 1);
	s = &f->seen[0];
	print_message("captured %llu, gaps %llu\n", (unsigned long long)s->captured,
		      (unsigned long long)s->gaps);
	assert_int_equal(s->captured + s->gaps, PAYLOAD);
	assert_true(s->gaps > 0);
	assert_true(s->captured >= 1000);
	assert_int_equal(us_capture_counters(f->cap, ctr), 0);
	assert_int_equal(ctr[US_CAP_CNT_TRUNCATED_BYTES], s->gaps);
	/* each captured piece sits at its true offset: compare where non-zero
	 * runs were written (gaps stay zero in s->bytes) */
	for (pos = 0; pos < PAYLOAD; pos++)
		if (s->bytes[pos])
			assert_int_equal(s->bytes[pos], payload[pos]);
	free(payload);
}

/* Another cgroup, or another port of the tracked cgroup: nothing. */
static void test_untracked(void **state)
{
	struct fixture *f = *state;
	const struct us_capture_opts o = { 0 };
	uint8_t payload[4096];
	uint16_t port;
	int lfd;
	pid_t pid;

	open_capture(f, &o);
	lfd = listen_loopback(&port);
	fill_payload(payload, sizeof(payload), 3);
	assert_int_equal(us_capture_track(f->cap, f->k.id[0], 1,
					  &(uint32_t){ (uint32_t)port + 1 }, 1), 0);
	pid = spawn_server(f, 0, lfd, 1, sizeof(payload), 4096, false); /* wrong port */
	client(port, payload, sizeof(payload));
	reap(pid);
	pid = spawn_server(f, 1, lfd, 1, sizeof(payload), 4096, false); /* untracked cgroup */
	client(port, payload, sizeof(payload));
	reap(pid);
	close(lfd);
	drain_events(f);
	assert_int_equal(f->nseen, 0);
	assert_int_equal(f->foreign, 0);
	assert_int_equal(us_capture_conns(f->cap), 0);
}

/* A server that exits holding its connections never calls close(2): the
 * sweep finds them gone and reports their close; nothing stays tracked. */
static void test_exit_without_close(void **state)
{
	struct fixture *f = *state;
	const struct us_capture_opts o = { 0 };
	uint8_t payload[1000];
	uint16_t port;
	int lfd;
	pid_t pid;

	open_capture(f, &o);
	lfd = listen_loopback(&port);
	fill_payload(payload, sizeof(payload), 5);
	assert_int_equal(us_capture_track(f->cap, f->k.id[0], 2, &(uint32_t){ port }, 1), 0);
	pid = spawn_server(f, 0, lfd, 3, sizeof(payload), 4096, true);
	for (int i = 0; i < 3; i++)
		client(port, payload, sizeof(payload));
	reap(pid);
	close(lfd);
	drain_events(f);
	assert_int_equal(f->nseen, 3);
	assert_int_equal(us_capture_conns(f->cap), 3);
	for (int i = 0; i < 3; i++)
		assert_int_equal(f->seen[i].closed, 0);
	assert_int_equal(us_capture_sweep(f->cap), 3);
	assert_int_equal(us_capture_conns(f->cap), 0);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(f->seen[i].closed, 1);
		assert_int_equal(f->seen[i].captured, sizeof(payload));
	}
	assert_int_equal(us_capture_sweep(f->cap), 0);
}

/* A ring buffer too small for any chunk: every byte is accounted as lost
 * (gap), and the drops are counted. */
static void test_ring_full_is_counted(void **state)
{
	struct fixture *f = *state;
	const struct us_capture_opts o = { .ringbuf_bytes = 4096 };
	uint8_t *payload = malloc(PAYLOAD);
	uint64_t ctr[US_CAP_CNT_NR];
	struct seen *s;
	uint16_t port;
	int lfd;
	pid_t pid;

	open_capture(f, &o);
	lfd = listen_loopback(&port);
	assert_int_equal(us_capture_track(f->cap, f->k.id[0], 1, &(uint32_t){ port }, 1), 0);
	pid = spawn_server(f, 0, lfd, 1, PAYLOAD, 16384, false);
	fill_payload(payload, PAYLOAD, 11);
	client(port, payload, PAYLOAD);
	reap(pid);
	close(lfd);
	drain_events(f);
	assert_int_equal(us_capture_counters(f->cap, ctr), 0);
	print_message("read %llu, captured %llu, dropped %llu B in %llu records\n",
		      (unsigned long long)ctr[US_CAP_CNT_READ_BYTES],
		      (unsigned long long)ctr[US_CAP_CNT_CAPTURED_BYTES],
		      (unsigned long long)ctr[US_CAP_CNT_RB_DROPPED_BYTES],
		      (unsigned long long)ctr[US_CAP_CNT_RB_DROPPED]);
	assert_int_equal(ctr[US_CAP_CNT_READ_BYTES], PAYLOAD);
	assert_true(ctr[US_CAP_CNT_RB_DROPPED] > 0);
	assert_int_equal(ctr[US_CAP_CNT_CAPTURED_BYTES] + ctr[US_CAP_CNT_RB_DROPPED_BYTES],
			 PAYLOAD);
	assert_int_equal(f->nseen, 1);
	s = &f->seen[0];
	assert_int_equal(s->captured + s->gaps, PAYLOAD);
	assert_int_equal(s->gaps, ctr[US_CAP_CNT_RB_DROPPED_BYTES]);
	free(payload);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_exact_stream, test_setup, test_teardown),
		cmocka_unit_test_setup_teardown(test_cap_truncates, test_setup, test_teardown),
		cmocka_unit_test_setup_teardown(test_untracked, test_setup, test_teardown),
		cmocka_unit_test_setup_teardown(test_exit_without_close, test_setup,
						test_teardown),
		cmocka_unit_test_setup_teardown(test_ring_full_is_counted, test_setup,
						test_teardown),
	};

	return cmocka_run_group_tests_name("ktest_capture", tests, group_setup, group_teardown);
}
