/* Replay against a real shadow: a tiny HTTP/1.1 server on 127.0.0.1 in a
 * thread, which parses what it receives (so a request cut in half shows),
 * records the bytes and answers 200. Covers ordering and pipelining,
 * keep-alive, chunked and 10 MiB bodies, the write filter, Host rewrite,
 * sampling, scale, connect failure and backoff, resets, drops under a slow
 * shadow, capture gaps, raw mode and raw fallback, and that closing
 * everything leaves no connection tracked and no fd open. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <http_parser.h>

#include "buf.h"
#include "clock.h"
#include "replay.h"

/* ---- the shadow server ---------------------------------------------------- */

#define MAX_SCONN 16

struct sconn {
	int fd;
	http_parser p;
	struct us_buf rx;
	unsigned requests;
	int in_msg;         /* inside a request */
	int partial;        /* closed inside a request */
	int bad;            /* not HTTP */
	int close_now;
	struct server *srv;
};

struct server {
	int lfd;
	uint16_t port;
	pthread_t th;
	int stop;
	pthread_mutex_t mu;
	int paused;         /* stop reading */
	int close_mid;      /* answer half a response, then close */
	struct sconn c[MAX_SCONN];
	int n;
	unsigned requests;
};

static const char ok_response[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
static const char half_response[] = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npart";

static int srv_on_begin(http_parser *p)
{
	((struct sconn *)p->data)->in_msg = 1;
	return 0;
}

static int srv_on_complete(http_parser *p)
{
	struct sconn *sc = p->data;
	const char *resp = sc->srv->close_mid ? half_response : ok_response;
	size_t len = strlen(resp);

	sc->in_msg = 0;
	sc->requests++;
	sc->srv->requests++;
	if (send(sc->fd, resp, len, MSG_NOSIGNAL) != (ssize_t)len)
		sc->close_now = 1;
	if (sc->srv->close_mid)
		sc->close_now = 1;
	return 0;
}

static const http_parser_settings srv_settings = {
	.on_message_begin = srv_on_begin,
	.on_message_complete = srv_on_complete,
};

static void srv_close_conn(struct sconn *sc)
{
	if (sc->in_msg)
		sc->partial = 1;
	close(sc->fd);
	sc->fd = -1;
}

static void srv_read(struct sconn *sc)
{
	char buf[65536];
	ssize_t n = recv(sc->fd, buf, sizeof(buf), MSG_DONTWAIT);
	size_t got;

	if (n < 0 && errno == EAGAIN)
		return;
	if (n <= 0) {
		srv_close_conn(sc);
		return;
	}
	us_buf_append(&sc->rx, buf, (size_t)n);
	if (sc->bad)
		return;
	got = http_parser_execute(&sc->p, &srv_settings, buf, (size_t)n);
	if (HTTP_PARSER_ERRNO(&sc->p) != HPE_OK || got != (size_t)n) {
		sc->bad = 1;
		srv_close_conn(sc);
		return;
	}
	if (sc->close_now)
		srv_close_conn(sc);
}

static void srv_accept(struct server *s)
{
	int fd = accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC);
	struct sconn *sc;

	if (fd < 0)
		return;
	if (s->n == MAX_SCONN) {
		close(fd);
		return;
	}
	sc = &s->c[s->n++];
	memset(sc, 0, sizeof(*sc));
	sc->fd = fd;
	sc->srv = s;
	http_parser_init(&sc->p, HTTP_REQUEST);
	sc->p.data = sc;
}

static void *srv_main(void *arg)
{
	struct server *s = arg;

	while (!__atomic_load_n(&s->stop, __ATOMIC_ACQUIRE)) {
		struct pollfd pf[MAX_SCONN + 1];
		int idx[MAX_SCONN + 1], k = 1, i;

		pthread_mutex_lock(&s->mu);
		pf[0] = (struct pollfd){ .fd = s->lfd, .events = POLLIN };
		for (i = 0; i < s->n; i++) {
			if (s->c[i].fd < 0 || s->paused)
				continue;
			pf[k] = (struct pollfd){ .fd = s->c[i].fd, .events = POLLIN };
			idx[k++] = i;
		}
		pthread_mutex_unlock(&s->mu);
		if (poll(pf, (nfds_t)k, 5) <= 0)
			continue;
		pthread_mutex_lock(&s->mu);
		if (pf[0].revents & POLLIN)
			srv_accept(s);
		for (i = 1; i < k; i++)
			if (pf[i].revents && s->c[idx[i]].fd >= 0)
				srv_read(&s->c[idx[i]]);
		pthread_mutex_unlock(&s->mu);
	}
	return NULL;
}

/* port 0: any; rcvbuf 0: the default */
static struct server *srv_start(uint16_t port, int rcvbuf)
{
	struct server *s = calloc(1, sizeof(*s));
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(port) };
	socklen_t len = sizeof(sin);
	int one = 1;

	assert_non_null(s);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(s->lfd >= 0);
	setsockopt(s->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (rcvbuf)
		setsockopt(s->lfd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	assert_int_equal(bind(s->lfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(s->lfd, 64), 0);
	assert_int_equal(getsockname(s->lfd, (struct sockaddr *)&sin, &len), 0);
	s->port = ntohs(sin.sin_port);
	pthread_mutex_init(&s->mu, NULL);
	assert_int_equal(pthread_create(&s->th, NULL, srv_main, s), 0);
	return s;
}

static void srv_stop(struct server *s)
{
	int i;

	__atomic_store_n(&s->stop, 1, __ATOMIC_RELEASE);
	pthread_join(s->th, NULL);
	for (i = 0; i < s->n; i++) {
		if (s->c[i].fd >= 0)
			close(s->c[i].fd);
		us_buf_free(&s->c[i].rx);
	}
	close(s->lfd);
	pthread_mutex_destroy(&s->mu);
	free(s);
}

static void srv_set(struct server *s, int *field, int v)
{
	pthread_mutex_lock(&s->mu);
	*field = v;
	pthread_mutex_unlock(&s->mu);
}

static void srv_wait_closed(struct server *s, int c)
{
	uint64_t end = us_mono_ns() + 5 * US_NS_PER_SEC;
	int open = 1;

	while (open && us_mono_ns() < end) {
		pthread_mutex_lock(&s->mu);
		open = s->c[c].fd >= 0;
		pthread_mutex_unlock(&s->mu);
		if (open)
			usleep(1000);
	}
	assert_false(open);
}

/* A port nothing listens on (for now). */
static uint16_t free_port(void)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	close(fd);
	return ntohs(sin.sin_port);
}

/* ---- the replay side ---------------------------------------------------- */

#define MAX_RESULTS 8192

struct results {
	struct us_replay_result r[MAX_RESULTS];
	size_t n;
};

static void collect(void *arg, const struct us_replay_result *res)
{
	struct results *rs = arg;

	assert_true(rs->n < MAX_RESULTS);
	rs->r[rs->n++] = *res;
}

static size_t count_outcome(const struct results *rs, enum us_replay_outcome o)
{
	size_t i, n = 0;

	for (i = 0; i < rs->n; i++)
		n += rs->r[i].outcome == o;
	return n;
}

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

static void base_config(struct us_replay_config *cfg, uint16_t port)
{
	us_replay_config_defaults(cfg);
	snprintf(cfg->endpoint, sizeof(cfg->endpoint), "127.0.0.1:%u", port);
	cfg->response_timeout_ms = 3000;
}

static struct us_replay *new_replay(const struct us_replay_config *cfg, struct results *rs)
{
	char err[256] = "";
	struct us_replay *r = us_replay_new(cfg, collect, rs, err, sizeof(err));

	if (!r)
		fail_msg("us_replay_new: %s", err);
	return r;
}

/* Runs replay until n results are in (or 5 s pass). */
static void run_until_results(struct us_replay *r, const struct results *rs, size_t n)
{
	uint64_t end = us_mono_ns() + 5 * US_NS_PER_SEC;

	while (rs->n < n && us_mono_ns() < end)
		us_replay_run(r, 5);
	assert_int_equal(rs->n, n);
}

static void run_for(struct us_replay *r, unsigned ms)
{
	uint64_t end = us_mono_ns() + ms * US_NS_PER_MS;

	while (us_mono_ns() < end)
		us_replay_run(r, 5);
}

/* Closes conn ids [first, first+n) and checks that replay lets go of all. */
static void close_all(struct us_replay *r, uint64_t first, unsigned n)
{
	struct us_replay_stats st;
	uint64_t end = us_mono_ns() + 5 * US_NS_PER_SEC;
	unsigned i;

	for (i = 0; i < n; i++)
		us_replay_conn_close(r, first + i);
	do {
		us_replay_run(r, 5);
		us_replay_stats(r, &st);
	} while ((st.conns_active || st.shadow_conns_open) && us_mono_ns() < end);
	assert_int_equal(st.conns_active, 0);
	assert_int_equal(st.shadow_conns_open, 0);
	assert_int_equal(st.buffered_bytes, 0);
}

static void feed(struct us_replay *r, uint64_t id, const char *s)
{
	us_replay_conn_data(r, id, s, strlen(s), us_mono_ns());
}

static const char get1[] = "GET /a HTTP/1.1\r\nHost: prod\r\n\r\n";
static const char get2[] = "GET /b?x=1 HTTP/1.1\r\nHost: prod\r\nX-Trace: 2\r\n\r\n";
static const char get3[] = "GET /c HTTP/1.1\r\nHost: prod\r\nAccept: */*\r\n\r\n";

/* ---- tests ----------------------------------------------------------------- */

static void test_pipelined_in_order(void **state)
{
	int fds = count_fds();
	struct server *s = srv_start(0, 0);
	struct results *rs = calloc(1, sizeof(*rs));
	struct us_replay_config cfg;
	struct us_replay *r;
	char all[512];
	size_t i, len;

	(void)state;
	base_config(&cfg, s->port);
	r = new_replay(&cfg, rs);
	snprintf(all, sizeof(all), "%s%s%s%s", get1, get2, get3, get1);
	len = strlen(all);
	us_replay_conn_open(r, 1);
	/* pipelined, and cut at awkward places */
	for (i = 0; i < len; i += 7)
		us_replay_conn_data(r, 1, all + i, len - i < 7 ? len - i : 7, us_mono_ns());
	run_until_results(r, rs, 4);
	for (i = 0; i < 4; i++) {
		assert_int_equal(rs->r[i].outcome, US_REPLAY_OK);
		assert_int_equal(rs->r[i].request_index, i);
		assert_int_equal(rs->r[i].status_code, 200);
		assert_int_equal(rs->r[i].method, HTTP_GET);
		assert_int_equal(rs->r[i].response_bytes, strlen(ok_response));
		assert_true(rs->r[i].done_ns >= rs->r[i].sent_ns && rs->r[i].sent_ns);
	}
	assert_int_equal(rs->r[1].request_bytes, strlen(get2));
	close_all(r, 1, 1);
	us_replay_free(r);
	pthread_mutex_lock(&s->mu);
	assert_int_equal(s->n, 1);
	assert_int_equal(s->c[0].requests, 4);
	assert_int_equal(s->c[0].rx.len, len);
	assert_memory_equal(s->c[0].rx.data, all, len);
	pthread_mutex_unlock(&s->mu);
	srv_stop(s);
	free(rs);
	assert_int_equal(count_fds(), fds);
}

/* Each request waits for the previous answer: one shadow connection. */
static void test_keep_alive(void **state)
{
	struct server *s = srv_start(0, 0);
	struct results *rs = calloc(1, sizeof(*rs));
	struct us_replay_config cfg;
	struct us_replay *r;
	int i;

	(void)state;
	base_config(&cfg, s->port);
	r = new_replay(&cfg, rs);
	us_replay_conn_open(r, 7);
	for (i = 0; i < 3; i++) {
		feed(r, 7, get2);
		run_until_results(r, rs, (size_t)i + 1);
		assert_int_equal(rs->r[i].outcome, US_REPLAY_OK);
	}
	close_all(r, 7, 1);
	us_replay_free(r);
	pthread_mutex_lock(&s->mu);
	assert_int_equal(s->n, 1);
	assert_int_equal(s->c[0].requests, 3);
	pthread_mutex_unlock(&s->mu);
	srv_stop(s);
	free(rs);
}

/* A chunked POST, then a 10 MiB POST fed in 64 KiB pieces, arrive whole. */
static void test_bodies(void **state)
{
	static const char chunked[] =
		"POST /up HTTP/1.1\r\nHost: prod\r\nTransfer-Encoding: chunked\r\n\r\n"
		"5\r\nhello\r\n1a\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\n\r\n";
	const size_t body = 10u << 20, piece = 64u << 10;
	struct server *s = srv_start(0, 0);
	struct results *rs = calloc(1, sizeof(*rs));
	struct us_replay_config cfg;
	struct us_replay *r;
	char head[128];
	char *big, *all;
	size_t hlen, total, off;

	(void)state;
	base_config(&cfg, s->port);
	cfg.allow_writes = 1;
	r = new_replay(&cfg, rs);
	hlen = (size_t)snprintf(head, sizeof(head),
				"POST /big HTTP/1.1\r\nHost: prod\r\nContent-Length: %zu\r\n\r\n", body);
	big = malloc(hlen + body);
	memcpy(big, head, hlen);
	for (off = 0; off < body; off++)
		big[hlen + off] = (char)('a' + off % 26);
	us_replay_conn_open(r, 2);
	feed(r, 2, chunked);
	for (off = 0; off < hlen + body; off += piece) {
		size_t n = hlen + body - off < piece ? hlen + body - off : piece;

		us_replay_conn_data(r, 2, big + off, n, us_mono_ns());
		us_replay_run(r, 0);
	}
	run_until_results(r, rs, 2);
	assert_int_equal(rs->r[0].outcome, US_REPLAY_OK);
	assert_int_equal(rs->r[0].method, HTTP_POST);
	assert_int_equal(rs->r[0].request_bytes, strlen(chunked));
	assert_int_equal(rs->r[1].outcome, US_REPLAY_OK);
	assert_int_equal(rs->r[1].request_bytes, hlen + body);
	close_all(r, 2, 1);
	us_replay_free(r);

	total = strlen(chunked) + hlen + body;
	all = malloc(total);
	memcpy(all, chunked, strlen(chunked));
	memcpy(all + strlen(chunked), big, hlen + body);
	pthread_mutex_lock(&s->mu);
	assert_int_equal(s->n, 1);
	assert_int_equal(s->c[0].requests, 2);
	assert_int_equal(s->c[0].rx.len, total);
	assert_memory_equal(s->c[0].rx.data, all, total);
	pthread_mutex_unlock(&s->mu);
	srv_stop(s);
	free(all);
	free(big);
	free(rs);
}

/* Writes are not mirrored by default; the GETs around one still are. */
static void test_write_filtered(void **state)
{
	static const char post[] =
		"POST /x HTTP/1.1\r\nHost: prod\r\nContent-Length: 3\r\n\r\nabc";
	struct server *s = srv_start(0, 0);
	struct results *rs = calloc(1, sizeof(*rs));
	struct us_replay_config cfg;
	struct us_replay *r;
	char want[256];

	(void)state;
	base_config(&cfg, s->port);
	r = new_replay(&cfg, rs);
	us_replay_conn_open(r, 3);
	feed(r, 3, get1);
	feed(r, 3, post);
	feed(r, 3, get3);
	run_until_results(r, rs, 3);
	/* the filtered one is reported at its end, before the first answer */
	assert_int_equal(rs->r[0].outcome, US_REPLAY_FILTERED);
	assert_int_equal(rs->r[0].request_index, 1);
	assert_int_equal(rs->r[0].method, HTTP_POST);
	assert_int_equal(rs->r[0].request_bytes, strlen(post));
	assert_int_equal(count_outcome(rs, US_REPLAY_OK), 2);
	close_all(r, 3, 1);
	us_replay_free(r);
	snprintf(want, sizeof(want), "%s%s", get1, get3);
	pthread_mutex_lock(&s->mu);
	assert_int_equal(s->requests, 2);
	assert_int_equal(s->c[0].rx.len, strlen(want));
	assert_memory_equal(s->c[0].rx.data, want, strlen(want));
	pthread_mutex_unlock(&s->mu);
	srv_stop(s);
	free(rs);
}

static void test_host_rewrite(void **state)
{
	static const char req[] =
		"GET /h HTTP/1.1\r\nUser-Agent: t\r\nhost:  prod.example.com \r\nX-A: b\r\n\r\n";
	static const char want[] =
		"GET /h HTTP/1.1\r\nUser-Agent: t\r\nhost:  shadow.internal:8080 \r\nX-A: b\r\n\r\n";
	struct server *s = srv_start(0, 0);
	struct results *rs = calloc(1, sizeof(*rs));
	struct us_replay_config cfg;
	struct us_replay *r;

	(void)state;
	base_config(&cfg, s->port);
	strcpy(cfg.host_rewrite, "shadow.internal:8080");
	r = new_replay(&cfg, rs);
	us_replay_conn_open(r, 4);
	feed(r, 4, req);
	run_until_results(r, rs, 1);
	assert_int_equal(rs->r[0].outcome, US_REPLAY_OK);
	close_all(r, 4, 1);
	us_replay_free(r);
	pthread_mutex_lock(&s->mu);
	assert_int_equal(s->c[0].rx.len, strlen(want));
	assert_memory_equal(s->c[0].rx.data, want, strlen(want));
	pthread_mutex_unlock(&s->mu);
	srv_stop(s);
	free(rs);
}

static void test_sampling(void **state)
{
	struct us_replay_config cfg;
	struct us_replay *a, *b;
	struct us_replay_stats st;
	unsigned n = 0;
	uint64_t id;

	(void)state;
	base_config(&cfg, 9);
	cfg.sample = 0.2;
	a = new_replay(&cfg, NULL);
	b = new_replay(&cfg, NULL);
	for (id = 1; id <= 10000; id++) {
		int in = us_replay_sampled(a, id);

		n += (unsigned)in;
		assert_int_equal(in, us_replay_sampled(a, id));
		assert_int_equal(in, us_replay_sampled(b, id));
	}
	assert_in_range(n, 1800, 2200);
	/* sampled-out connections are not tracked */
	for (id = 1; id <= 100; id++)
		us_replay_conn_open(a, id);
	us_replay_stats(a, &st);
	assert_int_equal(st.conns_seen, 100);
	assert_int_equal(st.conns_active, st.conns_mirrored);
	assert_in_range(st.conns_mirrored, 5, 40);
	us_replay_free(a);
	us_replay_free(b);
}

/* scale 3: three shadow connections, each with every request. */
static void test_scale(void **state)
{
	struct server *s = srv_start(0, 0);
	struct results *rs = calloc(1, sizeof(*rs));
	struct us_replay_config cfg;
	struct us_replay *r;
	unsigned copies[3] = { 0 };
	size_t i;
	int c;

	(void)state;
	base_config(&cfg, s->port);
	cfg.scale = 3;
	r = new_replay(&cfg, rs);
	us_replay_conn_open(r, 5);
	feed(r, 5, get1);
	feed(r, 5, get2);
	run_until_results(r, rs, 6);
	for (i = 0; i < 6; i++) {
		assert_int_equal(rs->r[i].outcome, US_REPLAY_OK);
		copies[rs->r[i].copy]++;
	}
	assert_int_equal(copies[0], 2);
	assert_int_equal(copies[1], 2);
	assert_int_equal(copies[2], 2);
	close_all(r, 5, 1);
	us_replay_free(r);
	pthread_mutex_lock(&s->mu);
	assert_int_equal(s->n, 3);
	for (c = 0; c < 3; c++)
		assert_int_equal(s->c[c].requests, 2);
	pthread_mutex_unlock(&s->mu);
	srv_stop(s);
	free(rs);
}

/* Nobody listening: ERR_CONNECT, then backoff; once a listener is there a
 * later request gets through on a fresh connection. */
static void test_connect_backoff(void **state)
{
	uint16_t port = free_port();
	struct results *rs = calloc(1, sizeof(*rs));
	struct us_replay_config cfg;
	struct us_replay *r;
	struct server *s = NULL;
	uint64_t end;
	int i;

	(void)state;
	base_config(&cfg, port);
	r = new_replay(&cfg, rs);
	us_replay_conn_open(r, 6);
	feed(r, 6, get1);
	run_until_results(r, rs, 1);
	assert_int_equal(rs->r[0].outcome, US_REPLAY_ERR_CONNECT);
	/* within the backoff: refused at admission without trying */
	feed(r, 6, get1);
	assert_int_equal(rs->n, 2);
	assert_int_equal(rs->r[1].outcome, US_REPLAY_ERR_CONNECT);
	s = srv_start(port, 0);
	end = us_mono_ns() + 3 * US_NS_PER_SEC;
	for (i = 0; !count_outcome(rs, US_REPLAY_OK) && us_mono_ns() < end; i++) {
		feed(r, 6, get2);
		run_for(r, 50);
	}
	assert_int_equal(count_outcome(rs, US_REPLAY_OK), 1);
	assert_int_equal(count_outcome(rs, US_REPLAY_ERR_CONNECT) + 1, rs->n);
	close_all(r, 6, 1);
	us_replay_free(r);
	srv_stop(s);
	free(rs);
}

/* The shadow closes in the middle of a response. */
static void test_reset_mid_response(void **state)
{
	struct server *s = srv_start(0, 0);
	struct results *rs = calloc(1, sizeof(*rs));
	struct us_replay_config cfg;
	struct us_replay *r;

	(void)state;
	srv_set(s, &s->close_mid, 1);
	base_config(&cfg, s->port);
	r = new_replay(&cfg, rs);
	us_replay_conn_open(r, 8);
	feed(r, 8, get1);
	feed(r, 8, get2);
	run_until_results(r, rs, 2);
	assert_int_equal(rs->r[0].outcome, US_REPLAY_ERR_RESET);
	assert_int_equal(rs->r[1].outcome, US_REPLAY_ERR_RESET);
	/* the next request gets a new connection */
	srv_set(s, &s->close_mid, 0);
	feed(r, 8, get3);
	run_until_results(r, rs, 3);
	assert_int_equal(rs->r[2].outcome, US_REPLAY_OK);
	close_all(r, 8, 1);
	us_replay_free(r);
	srv_stop(s);
	free(rs);
}

/* A shadow that stops reading, small limits: whole requests are dropped,
 * and every request the shadow did get is whole. */
static void test_slow_shadow_drops_whole(void **state)
{
	const size_t body = 16u << 10;
	const int nreq = 400;
	struct server *s = srv_start(0, 4096);
	struct results *rs = calloc(1, sizeof(*rs));
	struct us_replay_config cfg;
	struct us_replay_stats st;
	struct us_replay *r;
	char head[128], *req;
	size_t hlen, ok, i;
	uint64_t ok_bytes = 0, rx = 0;
	int n, c;

	(void)state;
	srv_set(s, &s->paused, 1);
	base_config(&cfg, s->port);
	cfg.allow_writes = 1;
	cfg.conn_buffer_max = 64u << 10;
	cfg.total_buffer_max = 256u << 10;
	cfg.response_timeout_ms = 5000;
	r = new_replay(&cfg, rs);
	hlen = (size_t)snprintf(head, sizeof(head),
				"PUT /k HTTP/1.1\r\nHost: prod\r\nContent-Length: %zu\r\n\r\n", body);
	req = malloc(hlen + body);
	memcpy(req, head, hlen);
	memset(req + hlen, 'z', body);
	us_replay_conn_open(r, 10);
	us_replay_conn_open(r, 11);
	for (n = 0; n < nreq; n++) {
		/* the body arrives in pieces, as it would from a capture */
		us_replay_conn_data(r, 10 + (uint64_t)(n & 1), req, hlen + 1000, us_mono_ns());
		us_replay_conn_data(r, 10 + (uint64_t)(n & 1), req + hlen + 1000, body - 1000,
				    us_mono_ns());
		us_replay_run(r, 0);
		us_replay_stats(r, &st);
		assert_true(st.buffered_bytes <= 2 * cfg.total_buffer_max);
	}
	assert_true(count_outcome(rs, US_REPLAY_DROPPED) > 0);
	srv_set(s, &s->paused, 0);
	run_until_results(r, rs, (size_t)nreq);
	ok = count_outcome(rs, US_REPLAY_OK);
	assert_true(ok > 0);
	assert_int_equal(ok + count_outcome(rs, US_REPLAY_DROPPED), (size_t)nreq);
	for (i = 0; i < rs->n; i++)
		if (rs->r[i].outcome == US_REPLAY_OK)
			ok_bytes += rs->r[i].request_bytes;
	close_all(r, 10, 2);
	us_replay_free(r);
	pthread_mutex_lock(&s->mu);
	assert_int_equal(s->requests, ok);
	for (c = 0; c < s->n; c++) {
		assert_false(s->c[c].partial);
		assert_false(s->c[c].bad);
		rx += s->c[c].rx.len;
	}
	assert_int_equal(rx, ok_bytes);
	pthread_mutex_unlock(&s->mu);
	srv_stop(s);
	free(req);
	free(rs);
}

/* A request already streaming that outgrows twice the limit is abandoned
 * with its connection: the shadow sees it unfinished, then EOF, and the
 * next request goes out on a new connection. */
static void test_abandon_mid_request(void **state)
{
	const size_t body = 8u << 20, piece = 64u << 10;
	struct server *s = srv_start(0, 4096);
	struct results *rs = calloc(1, sizeof(*rs));
	struct us_replay_config cfg;
	struct us_replay_stats st;
	struct us_replay *r;
	char head[128], *chunk;
	size_t hlen, off;

	(void)state;
	srv_set(s, &s->paused, 1);
	base_config(&cfg, s->port);
	cfg.allow_writes = 1;
	cfg.conn_buffer_max = 64u << 10;
	r = new_replay(&cfg, rs);
	hlen = (size_t)snprintf(head, sizeof(head),
				"POST /big HTTP/1.1\r\nHost: prod\r\nContent-Length: %zu\r\n\r\n", body);
	chunk = malloc(piece);
	memset(chunk, 'q', piece);
	us_replay_conn_open(r, 15);
	us_replay_conn_data(r, 15, head, hlen, us_mono_ns());
	for (off = 0; off < body; off += piece) {
		us_replay_conn_data(r, 15, chunk, piece, us_mono_ns());
		us_replay_run(r, 0);
		us_replay_stats(r, &st);
		assert_true(st.buffered_bytes <= 2 * cfg.conn_buffer_max);
	}
	assert_int_equal(rs->n, 1);
	assert_int_equal(rs->r[0].outcome, US_REPLAY_DROPPED);
	srv_set(s, &s->paused, 0);
	feed(r, 15, get1);
	run_until_results(r, rs, 2);
	assert_int_equal(rs->r[1].outcome, US_REPLAY_OK);
	close_all(r, 15, 1);
	us_replay_free(r);
	/* the server still has to read up to the EOF */
	srv_wait_closed(s, 0);
	pthread_mutex_lock(&s->mu);
	assert_int_equal(s->n, 2);
	assert_int_equal(s->requests, 1);
	assert_true(s->c[0].partial);
	assert_int_equal(s->c[0].requests, 0);
	assert_int_equal(s->c[1].requests, 1);
	pthread_mutex_unlock(&s->mu);
	srv_stop(s);
	free(chunk);
	free(rs);
}

/* A gap inside a known-length body loses that request only; a gap in a
 * head makes the connection unmirrorable. */
static void test_capture_gap(void **state)
{
	static const char head[] = "PUT /g HTTP/1.1\r\nHost: prod\r\nContent-Length: 1000\r\n\r\n";
	char body[1000];
	struct server *s = srv_start(0, 0);
	struct results *rs = calloc(1, sizeof(*rs));
	struct us_replay_config cfg;
	struct us_replay_stats st;
	struct us_replay *r;

	(void)state;
	memset(body, 'g', sizeof(body));
	base_config(&cfg, s->port);
	cfg.allow_writes = 1;
	r = new_replay(&cfg, rs);
	us_replay_conn_open(r, 12);
	feed(r, 12, head);
	us_replay_conn_data(r, 12, body, 100, us_mono_ns());
	run_for(r, 20);  /* the shadow has the head and 100 bytes */
	us_replay_conn_gap(r, 12, 500);
	us_replay_conn_data(r, 12, body, 400, us_mono_ns());
	feed(r, 12, get1);
	run_until_results(r, rs, 2);
	assert_int_equal(rs->r[0].outcome, US_REPLAY_CAPTURE_GAP);
	assert_int_equal(rs->r[0].request_index, 0);
	assert_int_equal(rs->r[1].outcome, US_REPLAY_OK);
	assert_int_equal(rs->r[1].request_index, 1);
	/* in a head: nothing after it is mirrored */
	us_replay_conn_data(r, 12, get2, 10, us_mono_ns());
	us_replay_conn_gap(r, 12, 5);
	feed(r, 12, get3);
	run_for(r, 50);
	assert_int_equal(rs->n, 3);
	assert_int_equal(rs->r[2].outcome, US_REPLAY_CAPTURE_GAP);
	us_replay_stats(r, &st);
	assert_int_equal(st.conns_unmirrorable, 1);
	close_all(r, 12, 1);
	us_replay_free(r);
	/* the shadow got the first PUT unfinished, then EOF */
	srv_wait_closed(s, 0);
	pthread_mutex_lock(&s->mu);
	assert_int_equal(s->requests, 1);
	assert_true(s->c[0].partial);
	assert_int_equal(s->c[0].requests, 0);
	assert_int_equal(s->c[1].requests, 1);
	pthread_mutex_unlock(&s->mu);
	srv_stop(s);
	free(rs);
}

/* Not HTTP on an HTTP connection: it is replayed raw, burst by burst. */
static void test_malformed_falls_back_to_raw(void **state)
{
	static const char junk[] = "\x16\x03\x01 not http at all\r\n\r\n";
	struct server *s = srv_start(0, 0);
	struct results *rs = calloc(1, sizeof(*rs));
	struct us_replay_config cfg;
	struct us_replay_stats st;
	struct us_replay *r;

	(void)state;
	base_config(&cfg, s->port);
	r = new_replay(&cfg, rs);
	us_replay_conn_open(r, 13);
	us_replay_conn_data(r, 13, junk, 5, us_mono_ns());
	us_replay_conn_data(r, 13, junk + 5, sizeof(junk) - 1 - 5, us_mono_ns());
	us_replay_conn_burst_end(r, 13);
	/* the test server closes on what it cannot parse */
	run_until_results(r, rs, 1);
	assert_int_equal(rs->r[0].method, -1);
	assert_int_equal(rs->r[0].request_bytes, sizeof(junk) - 1);
	us_replay_stats(r, &st);
	assert_int_equal(st.conns_raw_fallback, 1);
	assert_int_equal(st.requests_seen, 1);
	close_all(r, 13, 1);
	us_replay_free(r);
	pthread_mutex_lock(&s->mu);
	assert_true(s->c[0].bad);
	assert_int_equal(s->c[0].rx.len, sizeof(junk) - 1);
	assert_memory_equal(s->c[0].rx.data, junk, sizeof(junk) - 1);
	pthread_mutex_unlock(&s->mu);
	srv_stop(s);
	free(rs);
}

static void test_raw_bursts(void **state)
{
	struct server *s = srv_start(0, 0);
	struct results *rs = calloc(1, sizeof(*rs));
	struct us_replay_config cfg;
	struct us_replay_stats st;
	struct us_replay *r;
	char want[256];
	size_t i;

	(void)state;
	base_config(&cfg, s->port);
	cfg.mode = US_REPLAY_RAW;
	cfg.allow_writes = 0;  /* no meaning in raw mode */
	r = new_replay(&cfg, rs);
	us_replay_conn_open(r, 14);
	us_replay_conn_data(r, 14, get1, 10, us_mono_ns());
	us_replay_conn_data(r, 14, get1 + 10, strlen(get1) - 10, us_mono_ns());
	us_replay_conn_burst_end(r, 14);
	run_for(r, 20);
	feed(r, 14, get2);
	us_replay_conn_burst_end(r, 14);
	us_replay_conn_close(r, 14);
	/* the first burst's window ends when the second is sent, the last's
	 * when the shadow goes quiet */
	run_until_results(r, rs, 2);
	for (i = 0; i < 2; i++) {
		assert_int_equal(rs->r[i].outcome, US_REPLAY_OK);
		assert_int_equal(rs->r[i].request_index, i);
		assert_int_equal(rs->r[i].method, -1);
		assert_int_equal(rs->r[i].status_code, 0);
		assert_int_equal(rs->r[i].response_bytes, strlen(ok_response));
	}
	assert_int_equal(rs->r[0].request_bytes, strlen(get1));
	us_replay_stats(r, &st);
	assert_int_equal(st.requests_seen, 2);
	assert_int_equal(st.requests_sent, 2);
	close_all(r, 14, 1);
	us_replay_free(r);
	snprintf(want, sizeof(want), "%s%s", get1, get2);
	pthread_mutex_lock(&s->mu);
	assert_int_equal(s->c[0].rx.len, strlen(want));
	assert_memory_equal(s->c[0].rx.data, want, strlen(want));
	pthread_mutex_unlock(&s->mu);
	srv_stop(s);
	free(rs);
}

/* max_conns bounds the shadow connections; many connections come and go
 * and leave nothing behind. */
static void test_limits_and_cleanup(void **state)
{
	int fds = count_fds();
	struct server *s = srv_start(0, 0);
	struct results *rs = calloc(1, sizeof(*rs));
	struct us_replay_config cfg;
	struct us_replay_stats st;
	struct us_replay *r;
	uint64_t id;

	(void)state;
	base_config(&cfg, s->port);
	cfg.max_conns = 8;
	r = new_replay(&cfg, rs);
	for (id = 100; id < 110; id++)
		us_replay_conn_open(r, id);
	us_replay_stats(r, &st);
	assert_int_equal(st.conns_mirrored, 8);
	assert_int_equal(st.conns_over_limit, 2);
	for (id = 100; id < 110; id++)
		feed(r, id, get1);
	run_until_results(r, rs, 8);
	assert_int_equal(count_outcome(rs, US_REPLAY_OK), 8);
	close_all(r, 100, 10);
	/* and a request cut short by the production close is not replayed */
	us_replay_conn_open(r, 200);
	us_replay_conn_data(r, 200, get1, 12, us_mono_ns());
	close_all(r, 200, 1);
	assert_int_equal(rs->n, 9);
	assert_int_equal(rs->r[8].outcome, US_REPLAY_CAPTURE_GAP);
	us_replay_free(r);
	srv_stop(s);
	free(rs);
	assert_int_equal(count_fds(), fds);
}

static void test_endpoint_errors(void **state)
{
	struct us_replay_config cfg;
	struct us_replay *r;
	char err[256];

	(void)state;
	us_replay_config_defaults(&cfg);
	strcpy(cfg.endpoint, "no-such-host.invalid:80");
	assert_null(us_replay_new(&cfg, NULL, NULL, err, sizeof(err)));
	assert_non_null(strstr(err, "no-such-host.invalid:80"));
	strcpy(cfg.endpoint, "::1:80");
	assert_null(us_replay_new(&cfg, NULL, NULL, err, sizeof(err)));
	assert_non_null(strstr(err, "::1:80"));
	strcpy(cfg.endpoint, "[::1]:8080");
	r = us_replay_new(&cfg, NULL, NULL, err, sizeof(err));
	assert_non_null(r);
	us_replay_free(r);
	strcpy(cfg.endpoint, "localhost:8080");
	r = us_replay_new(&cfg, NULL, NULL, err, sizeof(err));
	assert_non_null(r);
	us_replay_free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pipelined_in_order),
		cmocka_unit_test(test_keep_alive),
		cmocka_unit_test(test_bodies),
		cmocka_unit_test(test_write_filtered),
		cmocka_unit_test(test_host_rewrite),
		cmocka_unit_test(test_sampling),
		cmocka_unit_test(test_scale),
		cmocka_unit_test(test_connect_backoff),
		cmocka_unit_test(test_reset_mid_response),
		cmocka_unit_test(test_slow_shadow_drops_whole),
		cmocka_unit_test(test_abandon_mid_request),
		cmocka_unit_test(test_capture_gap),
		cmocka_unit_test(test_malformed_falls_back_to_raw),
		cmocka_unit_test(test_raw_bursts),
		cmocka_unit_test(test_limits_and_cleanup),
		cmocka_unit_test(test_endpoint_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
