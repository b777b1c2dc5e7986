/* Replay: owns the shadow connections, the per-production-connection framing
 * state, the send queues with their admission and memory accounting, the
 * response timing, and the epoll set that drives all of it.
 *
 * Data model. A production connection (struct pconn) has a request framer
 * and scale shadow copies (struct shadow). Each shadow has one socket at a
 * time, an output queue (bytes admitted but not yet written) and a ring of
 * records, one per request copy in flight on that socket, in request order.
 * Queue offsets are counted from the socket's first byte (queued_total,
 * written_total), so a record knows it has been fully written when
 * written_total reaches its end_off.
 *
 * Admission is decided once per request and copy, when the request head is
 * complete (raw mode: at a burst's first byte); from then on the request's
 * bytes are streamed as they arrive. A request that cannot be finished on
 * its socket (hard memory cap, capture gap, reset) takes the socket down
 * with it, so the shadow sees an unfinished request followed by EOF, never a
 * shorter request that looks whole. The next request gets a new socket.
 *
 * Every request copy is reported exactly once through the result callback:
 * at the request's end when it was not admitted, otherwise when its response
 * ends or its socket goes away. */
#include "replay.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "buf.h"
#include "clock.h"
#include "http_stream.h"

#define RING US_HTTP_STREAM_MAX_PIPELINE   /* records per shadow socket */
#define BACKOFF_MIN_NS (100 * US_NS_PER_MS)
#define BACKOFF_MAX_NS (5 * US_NS_PER_SEC)
/* Raw mode: a burst's response is over once the shadow has been silent this
 * long after sending something (there is no framing to say so). */
#define RAW_QUIET_NS (100 * US_NS_PER_MS)
#define READ_CHUNK 65536
#define COMPACT_MIN 65536

/* Per copy of the current request: admitted and streaming, its fate already
 * reported (socket closed under it), not decided yet (HTTP head incomplete),
 * or else the us_replay_outcome to report when the request ends. */
#define COPY_STREAMING (-1)
#define COPY_REPORTED (-2)
#define COPY_UNDECIDED (-3)

struct record {
	uint64_t index;
	int method;
	int raw;
	int complete;           /* all its bytes are queued */
	uint64_t end_off;       /* queued_total just after its last byte */
	uint64_t request_bytes;
	uint64_t response_bytes;
	uint64_t sent_ns;       /* 0 until its last byte is written */
	uint64_t last_resp_ns;
};

enum shadow_state { SH_IDLE, SH_CONNECTING, SH_CONNECTED };

struct pconn;

struct shadow {
	struct pconn *pc;
	unsigned copy;
	int fd;
	enum shadow_state state;
	int want_out;               /* EPOLLOUT registered */
	uint64_t connect_deadline_ns;
	uint64_t backoff_ns;        /* 0 after a successful connect */
	uint64_t retry_ns;          /* no new connect before this */
	uint64_t progress_ns;       /* last byte moved either way */
	struct us_buf out;          /* queued bytes are out.data[out_off, out.len) */
	size_t out_off;
	uint64_t queued_total, written_total;
	struct record ring[RING];
	unsigned first, count;
	int streaming;              /* the newest record is still receiving bytes */
	struct us_http_stream resp;
};

enum pconn_mode { PC_HTTP, PC_RAW, PC_UNMIRRORABLE };

struct pconn {
	struct us_replay *r;
	struct pconn *next;         /* hash chain */
	uint64_t conn_id;
	enum pconn_mode mode;
	int closed;                 /* production side closed */
	struct us_http_stream req;
	struct us_buf head;         /* HTTP: the current head until complete */
	int head_done;
	int burst_gap;              /* raw: the current burst lost bytes */
	uint64_t index;             /* current request (or burst) */
	uint64_t req_bytes;         /* of the current request so far */
	int method;
	int *copy_state;            /* scale of them, see COPY_* */
	struct shadow *sh;          /* scale of them */
};

struct us_replay {
	struct us_replay_config cfg;
	us_replay_result_fn fn;
	void *arg;
	struct sockaddr_storage addr;
	socklen_t addrlen;
	int epfd;
	struct pconn **buckets;
	size_t nbuckets;
	size_t nconns;
	unsigned slots_used;        /* shadow copies reserved by tracked conns */
	int in_run;                 /* pconns are freed only by the sweep then */
	struct us_buf scratch;      /* rewritten heads, raw fallback bytes */
	uint8_t rbuf[READ_CHUNK];
	struct us_replay_stats stats;
};

static void shadow_close(struct shadow *sh, enum us_replay_outcome outcome);
static void raw_data(struct pconn *pc, const uint8_t *data, size_t len);

/* ---- small helpers ------------------------------------------------------- */

static uint64_t splitmix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static size_t out_len(const struct shadow *sh)
{
	return sh->out.len - sh->out_off;
}

static struct record *ring_at(struct shadow *sh, unsigned i)
{
	return &sh->ring[(sh->first + i) % RING];
}

static struct record *ring_back(struct shadow *sh)
{
	return ring_at(sh, sh->count - 1);
}

/* Reports one request copy and counts its outcome. */
static void emit(struct us_replay *r, const struct pconn *pc, unsigned copy,
		 const struct record *rec, enum us_replay_outcome outcome, unsigned status,
		 uint64_t done_ns)
{
	struct us_replay_result res = {
		.conn_id = pc->conn_id,
		.request_index = rec->index,
		.copy = copy,
		.outcome = outcome,
		.method = rec->method,
		.request_bytes = rec->request_bytes,
		.response_bytes = rec->response_bytes,
		.status_code = status,
		.sent_ns = rec->sent_ns,
		.done_ns = done_ns,
	};

	r->stats.outcome[outcome]++;
	if (outcome == US_REPLAY_OK)
		r->stats.responses++;
	if (r->fn)
		r->fn(r->arg, &res);
}

/* Reports a copy of the current request that never got on a socket. */
static void emit_unsent(struct pconn *pc, unsigned copy, enum us_replay_outcome outcome)
{
	struct record rec = {
		.index = pc->index,
		.method = pc->mode == PC_HTTP ? pc->method : -1,
		.raw = pc->mode != PC_HTTP,
		.request_bytes = pc->req_bytes,
	};

	emit(pc->r, pc, copy, &rec, outcome, 0, 0);
}

/* ---- shadow sockets ------------------------------------------------------ */

static void shadow_watch(struct shadow *sh, int want_out)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = sh };

	if (sh->fd < 0 || want_out == sh->want_out)
		return;
	if (want_out)
		ev.events |= EPOLLOUT;
	if (epoll_ctl(sh->pc->r->epfd, EPOLL_CTL_MOD, sh->fd, &ev) == 0)
		sh->want_out = want_out;
}

/* Drops the socket: every record still on it is reported. A raw burst that
 * already has response bytes counts as answered, since in raw mode the end
 * of the connection is one of the ways a response window ends. */
static void shadow_close(struct shadow *sh, enum us_replay_outcome outcome)
{
	struct us_replay *r = sh->pc->r;
	uint64_t now = us_mono_ns();

	while (sh->count) {
		struct record rec = *ring_at(sh, 0);

		sh->first = (sh->first + 1) % RING;
		sh->count--;
		if (rec.raw && rec.sent_ns && rec.response_bytes)
			emit(r, sh->pc, sh->copy, &rec, US_REPLAY_OK, 0, rec.last_resp_ns);
		else
			emit(r, sh->pc, sh->copy, &rec, outcome, 0, outcome == US_REPLAY_OK ? now : 0);
	}
	if (sh->fd >= 0) {
		epoll_ctl(r->epfd, EPOLL_CTL_DEL, sh->fd, NULL);
		close(sh->fd);
		sh->fd = -1;
		r->stats.shadow_conns_open--;
	}
	r->stats.buffered_bytes -= out_len(sh);
	us_buf_free(&sh->out);
	sh->out_off = 0;
	sh->queued_total = sh->written_total = 0;
	sh->first = 0;
	sh->want_out = 0;
	sh->state = SH_IDLE;
	if (sh->streaming && sh->pc->copy_state[sh->copy] == COPY_STREAMING)
		sh->pc->copy_state[sh->copy] = COPY_REPORTED;
	sh->streaming = 0;
	us_http_stream_init(&sh->resp, US_HTTP_STREAM_RESPONSES);
}

static void shadow_connect_failed(struct shadow *sh)
{
	uint64_t b = sh->backoff_ns ? sh->backoff_ns * 2 : BACKOFF_MIN_NS;

	sh->backoff_ns = b > BACKOFF_MAX_NS ? BACKOFF_MAX_NS : b;
	sh->retry_ns = us_mono_ns() + sh->backoff_ns;
	shadow_close(sh, US_REPLAY_ERR_CONNECT);
}

/* Starts a non-blocking connect. Returns -1 (and backs off) if it failed
 * at once, as a refused loopback connect may. */
static int shadow_connect(struct shadow *sh)
{
	struct us_replay *r = sh->pc->r;
	struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT, .data.ptr = sh };
	int fd;

	fd = socket(r->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto fail;
	if (connect(fd, (struct sockaddr *)&r->addr, r->addrlen) < 0 && errno != EINPROGRESS)
		goto fail;
	if (epoll_ctl(r->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
		goto fail;
	sh->fd = fd;
	sh->want_out = 1;
	sh->state = SH_CONNECTING;
	sh->connect_deadline_ns = us_mono_ns() + r->cfg.connect_timeout_ms * US_NS_PER_MS;
	sh->progress_ns = us_mono_ns();
	r->stats.shadow_conns_open++;
	return 0;
fail:
	if (fd >= 0)
		close(fd);
	shadow_connect_failed(sh);
	return -1;
}

/* Pops the oldest record and reports it. */
static void finish_front(struct shadow *sh, enum us_replay_outcome outcome, unsigned status,
			 uint64_t done_ns)
{
	struct record rec = *ring_at(sh, 0);

	sh->first = (sh->first + 1) % RING;
	sh->count--;
	if (!sh->count)
		sh->streaming = 0;
	emit(sh->pc->r, sh->pc, sh->copy, &rec, outcome, status, done_ns);
}

/* Stamps the records whose last byte has now been written. In raw mode a
 * burst's response window closes when the next burst has been sent. */
static void mark_sent(struct shadow *sh)
{
	struct us_replay *r = sh->pc->r;
	uint64_t now = us_mono_ns();
	unsigned i;

	for (i = 0; i < sh->count; i++) {
		struct record *rec = ring_at(sh, i);

		if (rec->complete && !rec->sent_ns && rec->end_off <= sh->written_total) {
			rec->sent_ns = now;
			r->stats.requests_sent++;
		}
	}
	while (sh->count >= 2 && ring_at(sh, 0)->raw && ring_at(sh, 0)->sent_ns &&
	       ring_at(sh, 1)->sent_ns) {
		struct record *f = ring_at(sh, 0);

		finish_front(sh, US_REPLAY_OK, 0, f->response_bytes ? f->last_resp_ns : f->sent_ns);
	}
}

/* Writes what the socket takes. Returns -1 if the socket was closed. */
static int shadow_flush(struct shadow *sh)
{
	struct us_replay *r = sh->pc->r;

	if (sh->state != SH_CONNECTED)
		return 0;
	while (out_len(sh)) {
		ssize_t n = send(sh->fd, sh->out.data + sh->out_off, out_len(sh),
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n <= 0) {
			shadow_close(sh, US_REPLAY_ERR_RESET);
			return -1;
		}
		sh->out_off += (size_t)n;
		sh->written_total += (uint64_t)n;
		sh->progress_ns = us_mono_ns();
		r->stats.buffered_bytes -= (uint64_t)n;
		r->stats.bytes_sent += (uint64_t)n;
	}
	/* keep the queue's start near the buffer's start without moving
	 * megabytes on every partial write */
	if (sh->out_off == sh->out.len) {
		sh->out_off = 0;
		sh->out.len = 0;
	} else if (sh->out_off >= COMPACT_MIN && sh->out_off >= sh->out.len / 2) {
		memmove(sh->out.data, sh->out.data + sh->out_off, out_len(sh));
		sh->out.len -= sh->out_off;
		sh->out_off = 0;
	}
	mark_sent(sh);
	shadow_watch(sh, out_len(sh) > 0);
	return 0;
}

/* Queues bytes of the newest record and writes what the socket takes.
 * Returns -1 if the socket was closed (the copy was reported). */
static int shadow_send(struct shadow *sh, const void *data, size_t len)
{
	struct us_replay *r = sh->pc->r;

	if (us_buf_append(&sh->out, data, len) < 0) {
		shadow_close(sh, US_REPLAY_DROPPED);
		return -1;
	}
	sh->queued_total += len;
	r->stats.buffered_bytes += len;
	if (sh->streaming)
		ring_back(sh)->request_bytes += len;
	if (out_len(sh) > 2 * r->cfg.conn_buffer_max ||
	    r->stats.buffered_bytes > 2 * (uint64_t)r->cfg.total_buffer_max) {
		/* the shadow cannot keep up with a request already started:
		 * abandon it with its socket rather than send half of it */
		shadow_close(sh, US_REPLAY_DROPPED);
		return -1;
	}
	return shadow_flush(sh);
}

/* Decides whether a copy of the request that starts now goes out, and if
 * so opens its record. first/len: the bytes known so far (HTTP: the head).
 * Returns COPY_STREAMING or the outcome to report at the request's end. */
static int shadow_admit(struct shadow *sh, int raw, int is_head, const void *first, size_t len)
{
	struct us_replay *r = sh->pc->r;
	struct pconn *pc = sh->pc;
	struct record *rec;

	if (sh->state == SH_IDLE && us_mono_ns() < sh->retry_ns)
		return US_REPLAY_ERR_CONNECT;
	if (sh->count == RING || out_len(sh) + len > r->cfg.conn_buffer_max ||
	    r->stats.buffered_bytes + len > r->cfg.total_buffer_max)
		return US_REPLAY_DROPPED;
	if (sh->state == SH_IDLE && shadow_connect(sh) < 0)
		return US_REPLAY_ERR_CONNECT;
	if (!raw && us_http_stream_expect(&sh->resp, is_head) < 0)
		return US_REPLAY_DROPPED;
	rec = &sh->ring[(sh->first + sh->count) % RING];
	memset(rec, 0, sizeof(*rec));
	rec->index = pc->index;
	rec->method = raw ? -1 : pc->method;
	rec->raw = raw;
	sh->count++;
	sh->streaming = 1;
	if (len && shadow_send(sh, first, len) < 0)
		return COPY_REPORTED;
	return COPY_STREAMING;
}

/* The current request's last byte has been queued on this copy. */
static void shadow_request_done(struct shadow *sh)
{
	struct record *rec;

	if (!sh->streaming)
		return;  /* answered early; nothing left to stamp */
	rec = ring_back(sh);
	rec->complete = 1;
	rec->end_off = sh->queued_total;
	sh->streaming = 0;
	mark_sent(sh);
}

static void shadow_connected(struct shadow *sh)
{
	int err = 0;
	socklen_t len = sizeof(err);

	if (getsockopt(sh->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err) {
		shadow_connect_failed(sh);
		return;
	}
	sh->state = SH_CONNECTED;
	sh->backoff_ns = 0;
	sh->pc->r->stats.connects++;
	shadow_watch(sh, 1);
	shadow_flush(sh);
}

/* Attributes response bytes to the oldest record. Returns -1 if the socket
 * was closed. */
static int shadow_consume(struct shadow *sh, const uint8_t *p, size_t len)
{
	uint64_t now = us_mono_ns();

	while (len) {
		struct record *rec;
		size_t n;
		int done = 0;

		if (!sh->count) {
			/* bytes nobody asked for: the framing is lost, but no
			 * request is waiting, so closing costs nothing */
			shadow_close(sh, US_REPLAY_ERR_PROTOCOL);
			return -1;
		}
		rec = ring_at(sh, 0);
		rec->last_resp_ns = now;
		if (rec->raw) {
			rec->response_bytes += len;
			return 0;
		}
		n = us_http_stream_feed(&sh->resp, (const char *)p, len, &done);
		rec->response_bytes += n;
		if (sh->resp.state == US_HTTP_STREAM_ERROR || (!n && !done)) {
			shadow_close(sh, US_REPLAY_ERR_PROTOCOL);
			return -1;
		}
		/* a 100 Continue is not the answer; its final response is */
		if (done && !sh->resp.interim)
			finish_front(sh, US_REPLAY_OK, sh->resp.status_code, now);
		p += n;
		len -= n;
	}
	return 0;
}

/* The shadow closed its side: a response delimited by close ends here,
 * everything else outstanding was cut off. */
static void shadow_eof(struct shadow *sh)
{
	if (sh->count && !ring_at(sh, 0)->raw && us_http_stream_eof(&sh->resp))
		finish_front(sh, US_REPLAY_OK, sh->resp.status_code, us_mono_ns());
	shadow_close(sh, US_REPLAY_ERR_RESET);
}

static void shadow_readable(struct shadow *sh)
{
	struct us_replay *r = sh->pc->r;

	for (;;) {
		ssize_t n = recv(sh->fd, r->rbuf, sizeof(r->rbuf), MSG_DONTWAIT);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n < 0) {
			shadow_close(sh, US_REPLAY_ERR_RESET);
			return;
		}
		if (n == 0) {
			shadow_eof(sh);
			return;
		}
		sh->progress_ns = us_mono_ns();
		if (shadow_consume(sh, r->rbuf, (size_t)n) < 0)
			return;
	}
}

static void shadow_event(struct shadow *sh, uint32_t events)
{
	if (sh->fd < 0)
		return;  /* closed earlier in this batch */
	if (sh->state == SH_CONNECTING) {
		if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
			return;
		shadow_connected(sh);
		if (sh->state != SH_CONNECTED)
			return;
	}
	if (events & (EPOLLIN | EPOLLERR | EPOLLHUP))
		shadow_readable(sh);
	if (sh->fd >= 0 && (events & EPOLLOUT))
		shadow_flush(sh);
}

/* When the oldest record (or the connect) runs out of time, 0 if nothing
 * is pending. A record not yet fully written is timed from the socket's
 * last progress, so a shadow that stopped reading times out as well. */
static uint64_t shadow_deadline(const struct shadow *sh)
{
	const struct us_replay_config *cfg = &sh->pc->r->cfg;
	const struct record *f;
	uint64_t timeout = cfg->response_timeout_ms * US_NS_PER_MS;

	if (sh->state == SH_CONNECTING)
		return sh->connect_deadline_ns;
	if (sh->state != SH_CONNECTED || !sh->count)
		return 0;
	f = &sh->ring[sh->first];
	if (!f->sent_ns)
		return sh->progress_ns + timeout;
	if (f->raw && f->response_bytes)
		return f->last_resp_ns + RAW_QUIET_NS;
	return f->sent_ns + timeout;
}

static void shadow_timers(struct shadow *sh, uint64_t now)
{
	uint64_t d;

	while ((d = shadow_deadline(sh)) && now >= d) {
		const struct record *f = &sh->ring[sh->first];

		if (sh->state == SH_CONNECTING) {
			shadow_connect_failed(sh);
			return;
		}
		if (f->sent_ns && f->raw && f->response_bytes) {
			finish_front(sh, US_REPLAY_OK, 0, f->last_resp_ns);
			continue;
		}
		shadow_close(sh, US_REPLAY_ERR_TIMEOUT);
		return;
	}
	/* nothing more will come for a production connection that is over */
	if (sh->fd >= 0 && !sh->count && !out_len(sh) &&
	    (sh->pc->closed || sh->pc->mode == PC_UNMIRRORABLE))
		shadow_close(sh, US_REPLAY_OK);
}

/* ---- production connections: lookup ------------------------------------ */

static size_t bucket_of(const struct us_replay *r, uint64_t conn_id)
{
	return (size_t)(splitmix64(conn_id) & (r->nbuckets - 1));
}

static struct pconn *pconn_find(const struct us_replay *r, uint64_t conn_id)
{
	struct pconn *pc = r->buckets[bucket_of(r, conn_id)];

	while (pc && pc->conn_id != conn_id)
		pc = pc->next;
	return pc;
}

/* Doubles the table when it is as full as it is wide; a failed grow just
 * leaves longer chains. */
static void table_grow(struct us_replay *r)
{
	size_t n = r->nbuckets * 2, i;
	struct pconn **nb = calloc(n, sizeof(*nb));

	if (!nb)
		return;
	for (i = 0; i < r->nbuckets; i++) {
		struct pconn *pc = r->buckets[i], *next;

		for (; pc; pc = next) {
			size_t b = (size_t)(splitmix64(pc->conn_id) & (n - 1));

			next = pc->next;
			pc->next = nb[b];
			nb[b] = pc;
		}
	}
	free(r->buckets);
	r->buckets = nb;
	r->nbuckets = n;
}

static struct pconn *pconn_new(struct us_replay *r, uint64_t conn_id)
{
	unsigned scale = r->cfg.scale, c;
	struct pconn *pc = calloc(1, sizeof(*pc));
	size_t b;

	if (!pc)
		goto fail;
	pc->copy_state = calloc(scale, sizeof(*pc->copy_state));
	pc->sh = calloc(scale, sizeof(*pc->sh));
	if (!pc->copy_state || !pc->sh)
		goto fail;
	pc->r = r;
	pc->conn_id = conn_id;
	pc->mode = r->cfg.mode == US_REPLAY_RAW ? PC_RAW : PC_HTTP;
	pc->method = -1;
	us_http_stream_init(&pc->req, US_HTTP_STREAM_REQUESTS);
	for (c = 0; c < scale; c++) {
		pc->copy_state[c] = COPY_UNDECIDED;
		pc->sh[c].pc = pc;
		pc->sh[c].copy = c;
		pc->sh[c].fd = -1;
		us_http_stream_init(&pc->sh[c].resp, US_HTTP_STREAM_RESPONSES);
	}
	if (r->nconns >= r->nbuckets)
		table_grow(r);
	b = bucket_of(r, conn_id);
	pc->next = r->buckets[b];
	r->buckets[b] = pc;
	r->nconns++;
	r->slots_used += scale;
	r->stats.conns_active = r->nconns;
	return pc;
fail:
	if (pc) {
		free(pc->copy_state);
		free(pc->sh);
		free(pc);
	}
	return NULL;
}

/* Unlinks and frees; its sockets must be closed already. */
static void pconn_free(struct pconn *pc)
{
	struct us_replay *r = pc->r;
	struct pconn **pp = &r->buckets[bucket_of(r, pc->conn_id)];
	unsigned c;

	while (*pp != pc)
		pp = &(*pp)->next;
	*pp = pc->next;
	for (c = 0; c < r->cfg.scale; c++)
		us_buf_free(&pc->sh[c].out);
	us_buf_free(&pc->head);
	free(pc->copy_state);
	free(pc->sh);
	free(pc);
	r->nconns--;
	r->slots_used -= r->cfg.scale;
	r->stats.conns_active = r->nconns;
}

static int pconn_idle(const struct pconn *pc)
{
	unsigned c;

	for (c = 0; c < pc->r->cfg.scale; c++)
		if (pc->sh[c].fd >= 0)
			return 0;
	return 1;
}

/* ---- production connections: requests ----------------------------------- */

static void request_reset(struct pconn *pc)
{
	unsigned c;

	pc->index++;
	pc->req_bytes = 0;
	pc->head_done = 0;
	pc->burst_gap = 0;
	pc->method = -1;
	us_buf_clear(&pc->head);
	for (c = 0; c < pc->r->cfg.scale; c++)
		pc->copy_state[c] = COPY_UNDECIDED;
}

/* The current request ended whole in the capture. */
static void request_end(struct pconn *pc)
{
	unsigned c;

	pc->r->stats.requests_seen++;
	for (c = 0; c < pc->r->cfg.scale; c++) {
		int st = pc->copy_state[c];

		if (st == COPY_STREAMING && pc->sh[c].fd >= 0)
			shadow_request_done(&pc->sh[c]);
		else if (st >= 0)
			emit_unsent(pc, c, (enum us_replay_outcome)st);
	}
	request_reset(pc);
}

/* The current request will never be whole: copies on a socket take the
 * socket down with them (the shadow must not get the chance to take a
 * prefix for a request); copies not sent report what was decided, or
 * outcome if nothing was. */
static void request_abandon(struct pconn *pc, enum us_replay_outcome outcome)
{
	unsigned c;

	if (!pc->req_bytes && !pc->head_done)
		return;
	for (c = 0; c < pc->r->cfg.scale; c++) {
		int st = pc->copy_state[c];

		if (st == COPY_STREAMING && pc->sh[c].fd >= 0)
			shadow_close(&pc->sh[c], outcome);
		else if (st >= 0)
			emit_unsent(pc, c, (enum us_replay_outcome)st);
		else if (st == COPY_UNDECIDED)
			emit_unsent(pc, c, outcome);
	}
	request_reset(pc);
}

/* Queues bytes of the current request on every copy streaming it. */
static void request_stream(struct pconn *pc, const uint8_t *data, size_t len)
{
	unsigned c;

	for (c = 0; c < pc->r->cfg.scale && len; c++) {
		struct shadow *sh = &pc->sh[c];

		if (pc->copy_state[c] != COPY_STREAMING)
			continue;
		if (sh->fd < 0 || shadow_send(sh, data, len) < 0)
			pc->copy_state[c] = COPY_REPORTED;
	}
}

/* Replaces the first Host header's value; returns 0 and leaves out alone
 * when the head has none (HTTP/1.0 may omit it: nothing to rewrite). */
static int rewrite_host(const uint8_t *head, size_t len, const char *host, struct us_buf *out)
{
	const uint8_t *end = head + len;
	const uint8_t *p = memchr(head, '\n', len);

	for (p = p ? p + 1 : end; p < end;) {
		const uint8_t *eol = memchr(p, '\n', (size_t)(end - p));
		const uint8_t *v, *ve;

		if (!eol || eol == p || (eol == p + 1 && p[0] == '\r'))
			return 0;  /* end of the head */
		if (eol - p < 5 || strncasecmp((const char *)p, "host:", 5)) {
			p = eol + 1;
			continue;
		}
		for (v = p + 5; v < eol && (*v == ' ' || *v == '\t'); v++)
			;
		for (ve = eol; ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t'); ve--)
			;
		us_buf_clear(out);
		if (us_buf_append(out, head, (size_t)(v - head)) < 0 ||
		    us_buf_append(out, host, strlen(host)) < 0 ||
		    us_buf_append(out, ve, (size_t)(end - ve)) < 0)
			return 0;
		return 1;
	}
	return 0;
}

/* HTTP: the head is complete (it is all in pc->head): filter, rewrite,
 * admit per copy. */
static void http_head_done(struct pconn *pc)
{
	struct us_replay *r = pc->r;
	const uint8_t *head = pc->head.data;
	size_t len = pc->head.len;
	int filtered, is_head;
	unsigned c;

	pc->head_done = 1;
	pc->method = (int)pc->req.method;
	filtered = !r->cfg.allow_writes && us_http_method_is_write(pc->req.method);
	is_head = pc->req.method == HTTP_HEAD;
	if (!filtered && r->cfg.host_rewrite[0] &&
	    rewrite_host(head, len, r->cfg.host_rewrite, &r->scratch)) {
		head = r->scratch.data;
		len = r->scratch.len;
	}
	for (c = 0; c < r->cfg.scale; c++)
		pc->copy_state[c] = filtered ? US_REPLAY_FILTERED
					     : shadow_admit(&pc->sh[c], 0, is_head, head, len);
}

/* The capture is not HTTP (or stopped being: an upgrade): from here on the
 * connection is mirrored as raw bursts. The unforwarded start of the failed
 * request (pc->head) leads the first burst. */
static void fallback_raw(struct pconn *pc, const uint8_t *data, size_t len)
{
	struct us_buf head = pc->head;

	pc->r->stats.conns_raw_fallback++;
	memset(&pc->head, 0, sizeof(pc->head));
	if (pc->head_done) {
		us_buf_free(&head);
		request_abandon(pc, US_REPLAY_CAPTURE_GAP);
	} else {
		pc->req_bytes = 0;  /* recounted as raw */
	}
	pc->mode = PC_RAW;
	raw_data(pc, head.data, head.len);
	raw_data(pc, data, len);
	us_buf_free(&head);
}

static void http_data(struct pconn *pc, const uint8_t *data, size_t len)
{
	while (len && pc->mode == PC_HTTP) {
		int done = 0;
		size_t n = us_http_stream_feed(&pc->req, (const char *)data, len, &done);

		if (pc->req.state == US_HTTP_STREAM_ERROR) {
			/* a head gets replayed raw from its start; a body
			 * error loses the request, the rest goes raw */
			if (pc->head_done)
				fallback_raw(pc, data + n, len - n);
			else
				fallback_raw(pc, data, len);
			return;
		}
		if (!pc->head_done) {
			size_t body = 0;

			if (done || pc->req.state == US_HTTP_STREAM_BODY) {
				uint64_t b = pc->req.msg_bytes - pc->req.head_bytes;

				body = b < n ? (size_t)b : n;
			}
			if (us_buf_append(&pc->head, data, n - body) < 0) {
				fallback_raw(pc, data + n - body, len - (n - body));
				return;
			}
			pc->req_bytes += n - body;
			if (done || pc->req.state == US_HTTP_STREAM_BODY) {
				if (pc->req.upgrade) {
					fallback_raw(pc, data + n - body, len - (n - body));
					return;
				}
				http_head_done(pc);
				request_stream(pc, data + n - body, body);
				pc->req_bytes += body;
			}
		} else {
			request_stream(pc, data, n);
			pc->req_bytes += n;
		}
		if (done)
			request_end(pc);
		else if (!n)
			break;  /* the framer took nothing and ended nothing */
		data += n;
		len -= n;
	}
}

/* HTTP gap: survivable only inside a body of known length, and even then
 * this request cannot be replayed faithfully. Anywhere else the next
 * request's start is unknown, so the connection stops being mirrored. */
static void http_gap(struct pconn *pc, uint64_t n)
{
	unsigned c;
	int done = 0;

	if (pc->head_done && pc->req.state == US_HTTP_STREAM_BODY &&
	    us_http_stream_skip(&pc->req, n, &done) == 0) {
		pc->req_bytes += n;
		for (c = 0; c < pc->r->cfg.scale; c++) {
			if (pc->copy_state[c] == COPY_STREAMING && pc->sh[c].fd >= 0)
				shadow_close(&pc->sh[c], US_REPLAY_CAPTURE_GAP);
			if (pc->copy_state[c] == COPY_STREAMING)
				pc->copy_state[c] = COPY_REPORTED;
		}
		if (done)
			request_end(pc);
		return;
	}
	pc->req_bytes += n;
	request_abandon(pc, US_REPLAY_CAPTURE_GAP);
	pc->mode = PC_UNMIRRORABLE;
	pc->r->stats.conns_unmirrorable++;
	us_buf_free(&pc->head);
}

/* Raw: a burst is admitted at its first byte and streamed as it comes. */
static void raw_data(struct pconn *pc, const uint8_t *data, size_t len)
{
	unsigned c;

	if (!len)
		return;
	if (!pc->req_bytes)
		for (c = 0; c < pc->r->cfg.scale; c++)
			pc->copy_state[c] = shadow_admit(&pc->sh[c], 1, 0, NULL, 0);
	pc->req_bytes += len;
	request_stream(pc, data, len);
}

/* Raw gap: the burst is lost on every copy (a socket that carried part of
 * it goes down); the connection resumes with the next burst. */
static void raw_gap(struct pconn *pc, uint64_t n)
{
	unsigned c;

	for (c = 0; c < pc->r->cfg.scale; c++) {
		int st = pc->copy_state[c];

		if (st == COPY_STREAMING && pc->sh[c].fd >= 0)
			shadow_close(&pc->sh[c], US_REPLAY_CAPTURE_GAP);
		if (st == COPY_STREAMING || st == COPY_UNDECIDED)
			pc->copy_state[c] = st == COPY_UNDECIDED ? US_REPLAY_CAPTURE_GAP
								 : COPY_REPORTED;
	}
	pc->burst_gap = 1;
	pc->req_bytes += n;
}

/* ---- API ------------------------------------------------------------------ */

void us_replay_config_defaults(struct us_replay_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->mode = US_REPLAY_HTTP;
	cfg->sample = 1.0;
	cfg->scale = 1;
	cfg->conn_buffer_max = 16u << 20;
	cfg->total_buffer_max = 128u << 20;
	cfg->connect_timeout_ms = 1000;
	cfg->response_timeout_ms = 10000;
	cfg->max_conns = 1024;
}

/* "host:port" or "[v6]:port", resolved once: a name that stops resolving
 * later does not stop replay, and the hot path never waits on DNS. */
static int resolve_endpoint(struct us_replay *r, char *err, size_t errlen)
{
	const char *ep = r->cfg.endpoint, *colon;
	char host[256], port[32];
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
	struct addrinfo *res = NULL;
	size_t hlen;
	int rc;

	if (ep[0] == '[') {
		const char *close = strchr(ep, ']');

		if (!close || close[1] != ':')
			goto bad_syntax;
		hlen = (size_t)(close - ep - 1);
		ep++;
		colon = close + 1;
	} else {
		colon = strrchr(ep, ':');
		if (!colon || strchr(ep, ':') != colon)
			goto bad_syntax;  /* none, or an IPv6 literal without brackets */
		hlen = (size_t)(colon - ep);
	}
	if (!hlen || hlen >= sizeof(host) || !colon[1] || strlen(colon + 1) >= sizeof(port))
		goto bad_syntax;
	memcpy(host, ep, hlen);
	host[hlen] = '\0';
	strcpy(port, colon + 1);
	rc = getaddrinfo(host, port, &hints, &res);
	if (rc) {
		snprintf(err, errlen, "replay endpoint \"%s\" does not resolve: %s",
			 r->cfg.endpoint, rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
		return -1;
	}
	memcpy(&r->addr, res->ai_addr, res->ai_addrlen);
	r->addrlen = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
bad_syntax:
	snprintf(err, errlen, "replay endpoint \"%s\": expected host:port or [v6]:port",
		 r->cfg.endpoint);
	return -1;
}

static int check_config(const struct us_replay_config *cfg, char *err, size_t errlen)
{
	if (!(cfg->sample > 0 && cfg->sample <= 1))
		snprintf(err, errlen, "replay sample %g is not in (0, 1]", cfg->sample);
	else if (!cfg->scale)
		snprintf(err, errlen, "replay scale must be at least 1");
	else if (!cfg->conn_buffer_max || !cfg->total_buffer_max)
		snprintf(err, errlen, "replay buffer limits must be positive");
	else if (!cfg->max_conns)
		snprintf(err, errlen, "replay max_conns must be positive");
	else if (!memchr(cfg->endpoint, '\0', sizeof(cfg->endpoint)) ||
		 !memchr(cfg->host_rewrite, '\0', sizeof(cfg->host_rewrite)))
		snprintf(err, errlen, "replay endpoint or host rewrite not terminated");
	else
		return 0;
	return -1;
}

struct us_replay *us_replay_new(const struct us_replay_config *cfg, us_replay_result_fn fn,
				void *arg, char *err, size_t errlen)
{
	struct us_replay *r = NULL;

	if (check_config(cfg, err, errlen) < 0)
		goto fail;
	r = calloc(1, sizeof(*r));
	if (!r) {
		snprintf(err, errlen, "replay: out of memory");
		goto fail;
	}
	r->epfd = -1;
	r->cfg = *cfg;
	r->fn = fn;
	r->arg = arg;
	if (resolve_endpoint(r, err, errlen) < 0)
		goto fail;
	r->nbuckets = 64;
	r->buckets = calloc(r->nbuckets, sizeof(*r->buckets));
	if (!r->buckets) {
		snprintf(err, errlen, "replay: out of memory");
		goto fail;
	}
	r->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (r->epfd < 0) {
		snprintf(err, errlen, "replay: epoll_create1: %s", strerror(errno));
		goto fail;
	}
	return r;
fail:
	us_replay_free(r);
	return NULL;
}

/* Closes every socket without reporting: the caller is going away. */
void us_replay_free(struct us_replay *r)
{
	size_t i;
	unsigned c;

	if (!r)
		return;
	r->fn = NULL;
	for (i = 0; r->buckets && i < r->nbuckets; i++) {
		while (r->buckets[i]) {
			struct pconn *pc = r->buckets[i];

			for (c = 0; c < r->cfg.scale; c++)
				shadow_close(&pc->sh[c], US_REPLAY_ERR_RESET);
			pconn_free(pc);
		}
	}
	free(r->buckets);
	if (r->epfd >= 0)
		close(r->epfd);
	us_buf_free(&r->scratch);
	free(r);
}

int us_replay_sampled(const struct us_replay *r, uint64_t conn_id)
{
	/* top 53 bits of a good mix of the id, as a fraction of 1 */
	double u = (double)(splitmix64(conn_id) >> 11) * 0x1p-53;

	return u < r->cfg.sample;
}

void us_replay_conn_open(struct us_replay *r, uint64_t conn_id)
{
	r->stats.conns_seen++;
	if (!us_replay_sampled(r, conn_id) || pconn_find(r, conn_id))
		return;
	if (r->slots_used + r->cfg.scale > r->cfg.max_conns) {
		r->stats.conns_over_limit++;
		return;
	}
	if (pconn_new(r, conn_id))
		r->stats.conns_mirrored++;
}

void us_replay_conn_data(struct us_replay *r, uint64_t conn_id, const void *data, size_t len,
			 uint64_t ts_ns)
{
	struct pconn *pc = pconn_find(r, conn_id);

	(void)ts_ns;
	if (!pc || pc->closed)
		return;
	r->stats.bytes_in += len;
	if (pc->mode == PC_HTTP)
		http_data(pc, data, len);
	else if (pc->mode == PC_RAW && !pc->burst_gap)
		raw_data(pc, data, len);
	else if (pc->mode == PC_RAW)
		pc->req_bytes += len;  /* rest of a burst already lost */
}

void us_replay_conn_gap(struct us_replay *r, uint64_t conn_id, uint64_t n)
{
	struct pconn *pc = pconn_find(r, conn_id);

	if (!pc || pc->closed || !n)
		return;
	if (pc->mode == PC_HTTP)
		http_gap(pc, n);
	else if (pc->mode == PC_RAW)
		raw_gap(pc, n);
}

void us_replay_conn_burst_end(struct us_replay *r, uint64_t conn_id)
{
	struct pconn *pc = pconn_find(r, conn_id);

	if (!pc || pc->closed || pc->mode != PC_RAW || !pc->req_bytes)
		return;
	request_end(pc);
}

void us_replay_conn_close(struct us_replay *r, uint64_t conn_id)
{
	struct pconn *pc = pconn_find(r, conn_id);
	unsigned c;

	if (!pc || pc->closed)
		return;
	/* raw: the close ends the burst like an answer would; HTTP: a
	 * request cut short by the close is not replayed */
	if (pc->mode == PC_RAW && pc->req_bytes)
		request_end(pc);
	else
		request_abandon(pc, US_REPLAY_CAPTURE_GAP);
	pc->closed = 1;
	for (c = 0; c < r->cfg.scale; c++) {
		struct shadow *sh = &pc->sh[c];

		if (sh->fd >= 0 && !sh->count && !out_len(sh))
			shadow_close(sh, US_REPLAY_OK);  /* nothing in flight */
	}
	if (!r->in_run && pconn_idle(pc))
		pconn_free(pc);
}

int us_replay_fd(const struct us_replay *r)
{
	return r->epfd;
}

/* Earliest shadow deadline, 0 if none. */
static uint64_t next_deadline(const struct us_replay *r)
{
	uint64_t best = 0;
	size_t i;
	unsigned c;

	for (i = 0; i < r->nbuckets; i++) {
		const struct pconn *pc;

		for (pc = r->buckets[i]; pc; pc = pc->next)
			for (c = 0; c < r->cfg.scale; c++) {
				uint64_t d = shadow_deadline(&pc->sh[c]);

				if (d && (!best || d < best))
					best = d;
			}
	}
	return best;
}

/* Timers on every shadow, then frees the connections that are over. */
static void run_timers(struct us_replay *r)
{
	uint64_t now = us_mono_ns();
	size_t i;
	unsigned c;

	for (i = 0; i < r->nbuckets; i++) {
		struct pconn *pc, *next;

		for (pc = r->buckets[i]; pc; pc = pc->next)
			for (c = 0; c < r->cfg.scale; c++)
				shadow_timers(&pc->sh[c], now);
		for (pc = r->buckets[i]; pc; pc = next) {
			next = pc->next;
			if (pc->closed && pconn_idle(pc))
				pconn_free(pc);
		}
	}
}

void us_replay_run(struct us_replay *r, int timeout_ms)
{
	struct epoll_event evs[64];
	uint64_t d = next_deadline(r), now = us_mono_ns();
	int n, i;

	if (d) {
		uint64_t ms = d > now ? (d - now + US_NS_PER_MS - 1) / US_NS_PER_MS : 0;

		if (timeout_ms < 0 || ms < (uint64_t)timeout_ms)
			timeout_ms = (int)ms;
	}
	r->in_run = 1;
	n = epoll_wait(r->epfd, evs, 64, timeout_ms);
	for (i = 0; i < n; i++)
		shadow_event(evs[i].data.ptr, evs[i].events);
	r->in_run = 0;
	run_timers(r);
}

void us_replay_stats(const struct us_replay *r, struct us_replay_stats *st)
{
	*st = r->stats;
}
