/* /metrics over HTTP/1.1: listening socket, connection state machine and
 * responses; the page itself comes from metrics_om.c, request parsing from
 * lib/http_request.c. One thread runs a poll loop over the listening
 * socket, a wake-up eventfd and up to US_METRICS_MAX_CONNS connections, each
 * non-blocking: read the head (until its deadline), write the answer (until
 * its deadline), then linger briefly. */
#include "metrics_http.h"

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "clock.h"
#include "http_request.h"
#include "log.h"
#include "metrics_om.h"

/* A client that does not read its answer within this is dropped. */
#define WRITE_TIMEOUT_NS (10 * US_NS_PER_SEC)
/* After the answer, unread request bytes (a POST body) are drained for this
 * long before closing: closing with unread data sends a reset, which can
 * destroy the answer before the client reads it. */
#define LINGER_NS (1 * US_NS_PER_SEC)
/* Out of descriptors: stop accepting for a while rather than spin. */
#define ACCEPT_PAUSE_NS (100 * US_NS_PER_MS)

enum conn_state { C_FREE, C_READ, C_WRITE, C_LINGER };

struct conn {
	int fd;
	enum conn_state state;
	uint64_t started_ns;
	uint64_t deadline_ns;
	struct us_buf out;
	size_t out_off;
	struct us_http_request req;
};

struct us_metrics_http {
	int listen_fd;
	int wake_fd;
	unsigned int port;
	pthread_t thread;
	int thread_started;
	uint64_t read_timeout_ns;
	uint64_t accept_paused_until_ns;
	char db_path[4200];
	sqlite3 *db;                    /* the thread's own, read-only, opened lazily */
	struct us_codec codec;
	struct us_buf page;
	struct us_ratelimit render_rl;
	struct conn conns[US_METRICS_MAX_CONNS];
};

/* ---- listening ---------------------------------------------------------- */

/* "host:port" or "[v6]:port" into its parts; an empty host means any. */
static int split_hostport(const char *s, char *host, size_t hostlen, char *port, size_t portlen)
{
	const char *colon = strrchr(s, ':');
	const char *h = s;
	size_t hl;

	if (!colon || !colon[1] || strlen(colon + 1) >= portlen)
		return -1;
	hl = (size_t)(colon - s);
	if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']')
		h++, hl -= 2;
	if (hl >= hostlen)
		return -1;
	memcpy(host, h, hl);
	host[hl] = '\0';
	snprintf(port, portlen, "%s", colon + 1);
	return 0;
}

static int bound_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		return 0;
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

static int open_listener(const char *addr, unsigned int *port, char *err, size_t errlen)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
	struct addrinfo *res = NULL;
	char host[256], serv[16];
	int fd = -1, one = 1, gai;

	if (split_hostport(addr, host, sizeof(host), serv, sizeof(serv)) < 0) {
		snprintf(err, errlen, "metrics.listen '%s': expected host:port", addr);
		goto cleanup;
	}
	gai = getaddrinfo(host[0] ? host : NULL, serv, &hints, &res);
	if (gai != 0) {
		snprintf(err, errlen, "metrics.listen '%s': %s", addr, gai_strerror(gai));
		goto cleanup;
	}
	fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, res->ai_addr, res->ai_addrlen) < 0 || listen(fd, 64) < 0) {
		snprintf(err, errlen, "metrics.listen '%s': %s", addr, strerror(errno));
		if (fd >= 0)
			close(fd);
		fd = -1;
		goto cleanup;
	}
	*port = (unsigned int)bound_port(fd);
cleanup:
	if (res)
		freeaddrinfo(res);
	return fd;
}

/* ---- connections -------------------------------------------------------- */

static void conn_close(struct conn *c)
{
	if (c->state == C_FREE)
		return;
	close(c->fd);
	c->fd = -1;
	c->state = C_FREE;
	us_buf_clear(&c->out);
}

static const char *reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 414: return "URI Too Long";
	case 431: return "Request Header Fields Too Large";
	default: return "Service Unavailable";
	}
}

/* Queues a complete answer and switches the connection to writing. */
static void conn_answer(struct conn *c, int status, const char *type, const void *body,
			size_t len, int head_only, uint64_t now)
{
	char hdr[512];
	int n = snprintf(hdr, sizeof(hdr),
			 "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
			 "%sCache-Control: no-store\r\nConnection: close\r\n\r\n",
			 status, reason(status), type, len,
			 status == 405 ? "Allow: GET, HEAD\r\n" : "");

	us_buf_clear(&c->out);
	c->out_off = 0;
	if (us_buf_append(&c->out, hdr, (size_t)n) < 0 ||
	    (!head_only && us_buf_append(&c->out, body, len) < 0)) {
		conn_close(c);
		return;
	}
	c->state = C_WRITE;
	c->deadline_ns = now + WRITE_TIMEOUT_NS;
}

static void conn_error(struct conn *c, int status, uint64_t now)
{
	char body[64];
	int n = snprintf(body, sizeof(body), "%d %s\n", status, reason(status));

	conn_answer(c, status, "text/plain; charset=utf-8", body, (size_t)n, 0, now);
}

static int render_page(struct us_metrics_http *m, char *err, size_t errlen)
{
	if (!m->db) {
		if (sqlite3_open_v2(m->db_path, &m->db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
			snprintf(err, errlen, "%s: %s", m->db_path,
				 m->db ? sqlite3_errmsg(m->db) : "out of memory");
			sqlite3_close(m->db);
			m->db = NULL;
			return -1;
		}
		/* ingest checkpoints now and then; wait for it rather than fail */
		sqlite3_busy_timeout(m->db, 2000);
	}
	return us_metrics_om_render(m->db, m->db_path, &m->codec, &m->page, err, errlen);
}

/* The head is in (or hopeless): decide the answer. */
static void conn_respond(struct us_metrics_http *m, struct conn *c, uint64_t now)
{
	const struct us_http_request *r = &c->req;
	int status = us_http_verdict_status(r->verdict);
	char err[4200 + 512];
	uint64_t suppressed;

	if (!status && strcmp(r->path, "/metrics") != 0)
		status = 404;
	else if (!status && r->method != HTTP_GET && r->method != HTTP_HEAD)
		status = 405;
	else if (!status && render_page(m, err, sizeof(err)) < 0) {
		if (us_ratelimit_allow(&m->render_rl, 60 * US_NS_PER_SEC, &suppressed))
			us_warn("%s (%llu more like it)", err, (unsigned long long)suppressed);
		status = 503;
	}
	if (status)
		conn_error(c, status, now);
	else
		conn_answer(c, 200, US_METRICS_OM_CONTENT_TYPE, m->page.data, m->page.len,
			    r->method == HTTP_HEAD, now);
}

static void conn_read(struct us_metrics_http *m, struct conn *c, uint64_t now)
{
	char buf[2048];
	ssize_t n = read(c->fd, buf, sizeof(buf));

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		conn_close(c);
		return;
	}
	if (c->state == C_LINGER)
		return;
	if (us_http_request_feed(&c->req, buf, (size_t)n) != US_HTTP_INCOMPLETE)
		conn_respond(m, c, now);
}

static void conn_write(struct conn *c, uint64_t now)
{
	while (c->out_off < c->out.len) {
		ssize_t n = send(c->fd, c->out.data + c->out_off, c->out.len - c->out_off,
				 MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0) {
			conn_close(c);
			return;
		}
		c->out_off += (size_t)n;
	}
	shutdown(c->fd, SHUT_WR);
	c->state = C_LINGER;
	c->deadline_ns = now + LINGER_NS;
}

static void conn_expire(struct conn *c, uint64_t now)
{
	if (c->state == C_FREE || now < c->deadline_ns)
		return;
	if (c->state == C_READ)
		conn_error(c, 408, now); /* one try to say why; the write deadline still holds */
	else
		conn_close(c);
}

/* A free slot, freeing the oldest connection when all are taken: a scraper
 * that arrives now matters more than a client that has had its chance. */
static struct conn *conn_slot(struct us_metrics_http *m)
{
	struct conn *oldest = &m->conns[0];

	for (size_t i = 0; i < US_METRICS_MAX_CONNS; i++) {
		if (m->conns[i].state == C_FREE)
			return &m->conns[i];
		if (m->conns[i].started_ns < oldest->started_ns)
			oldest = &m->conns[i];
	}
	conn_close(oldest);
	return oldest;
}

static void accept_all(struct us_metrics_http *m, uint64_t now)
{
	for (;;) {
		int fd = accept4(m->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct conn *c;

		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
				m->accept_paused_until_ns = now + ACCEPT_PAUSE_NS;
			return;
		}
		c = conn_slot(m);
		c->fd = fd;
		c->state = C_READ;
		c->started_ns = now;
		c->deadline_ns = now + m->read_timeout_ns;
		us_http_request_init(&c->req);
	}
}

/* ---- the thread ------------------------------------------------------- */

static int poll_timeout_ms(const struct us_metrics_http *m, uint64_t now)
{
	uint64_t next = UINT64_MAX;

	for (size_t i = 0; i < US_METRICS_MAX_CONNS; i++)
		if (m->conns[i].state != C_FREE && m->conns[i].deadline_ns < next)
			next = m->conns[i].deadline_ns;
	if (m->accept_paused_until_ns > now && m->accept_paused_until_ns < next)
		next = m->accept_paused_until_ns;
	if (next == UINT64_MAX)
		return -1;
	if (next <= now)
		return 0;
	return (int)((next - now + US_NS_PER_MS - 1) / US_NS_PER_MS);
}

static void *serve(void *arg)
{
	struct us_metrics_http *m = arg;
	struct pollfd pfd[2 + US_METRICS_MAX_CONNS];
	struct conn *owner[2 + US_METRICS_MAX_CONNS];

	for (;;) {
		uint64_t now = us_mono_ns();
		nfds_t n = 0;

		pfd[n++] = (struct pollfd){ .fd = m->wake_fd, .events = POLLIN };
		pfd[n++] = (struct pollfd){ .fd = now < m->accept_paused_until_ns ? -1 : m->listen_fd,
					    .events = POLLIN };
		for (size_t i = 0; i < US_METRICS_MAX_CONNS; i++) {
			struct conn *c = &m->conns[i];

			if (c->state == C_FREE)
				continue;
			owner[n] = c;
			pfd[n++] = (struct pollfd){ .fd = c->fd,
						    .events = c->state == C_WRITE ? POLLOUT : POLLIN };
		}
		if (poll(pfd, n, poll_timeout_ms(m, now)) < 0 && errno != EINTR) {
			us_error("metrics: poll: %s", strerror(errno));
			break;
		}
		if (pfd[0].revents)
			break;
		now = us_mono_ns();
		for (nfds_t i = 2; i < n; i++) {
			enum conn_state was = owner[i]->state;

			if (!pfd[i].revents)
				continue;
			if (was == C_WRITE)
				conn_write(owner[i], now);
			else
				conn_read(m, owner[i], now);
			/* an answer decided on read goes out now, without a poll round */
			if (was != C_WRITE && owner[i]->state == C_WRITE)
				conn_write(owner[i], now);
		}
		for (size_t i = 0; i < US_METRICS_MAX_CONNS; i++)
			conn_expire(&m->conns[i], now);
		if (pfd[1].revents)
			accept_all(m, now);
	}
	return NULL;
}

/* ---- lifecycle ---------------------------------------------------------- */

static void metrics_free(struct us_metrics_http *m)
{
	for (size_t i = 0; i < US_METRICS_MAX_CONNS; i++) {
		conn_close(&m->conns[i]);
		us_buf_free(&m->conns[i].out);
	}
	if (m->listen_fd >= 0)
		close(m->listen_fd);
	if (m->wake_fd >= 0)
		close(m->wake_fd);
	sqlite3_close(m->db);
	us_codec_free(&m->codec);
	us_buf_free(&m->page);
	free(m);
}

struct us_metrics_http *us_metrics_http_start(const struct us_metrics_http_config *cfg,
					      char *err, size_t errlen)
{
	struct us_metrics_http *m = calloc(1, sizeof(*m));
	int rc = -1, e;

	if (!m) {
		snprintf(err, errlen, "metrics: out of memory");
		return NULL;
	}
	m->listen_fd = m->wake_fd = -1;
	for (size_t i = 0; i < US_METRICS_MAX_CONNS; i++)
		m->conns[i].fd = -1;
	us_codec_init(&m->codec);
	snprintf(m->db_path, sizeof(m->db_path), "%s", cfg->db_path);
	m->read_timeout_ns = cfg->read_timeout_ns;
	m->listen_fd = open_listener(cfg->listen, &m->port, err, errlen);
	if (m->listen_fd < 0)
		goto cleanup;
	m->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (m->wake_fd < 0) {
		snprintf(err, errlen, "metrics: eventfd: %s", strerror(errno));
		goto cleanup;
	}
	e = pthread_create(&m->thread, NULL, serve, m);
	if (e != 0) {
		snprintf(err, errlen, "metrics: thread: %s", strerror(e));
		goto cleanup;
	}
	m->thread_started = 1;
	rc = 0;
cleanup:
	if (rc < 0) {
		metrics_free(m);
		m = NULL;
	}
	return m;
}

unsigned int us_metrics_http_port(const struct us_metrics_http *m)
{
	return m->port;
}

void us_metrics_http_stop(struct us_metrics_http *m)
{
	uint64_t one = 1;

	if (!m)
		return;
	if (m->thread_started) {
		/* an eventfd write of 1 cannot fail short of a counter overflow */
		if (write(m->wake_fd, &one, sizeof(one)) != sizeof(one))
			us_error("metrics: wake: %s", strerror(errno));
		pthread_join(m->thread, NULL);
	}
	metrics_free(m);
}
