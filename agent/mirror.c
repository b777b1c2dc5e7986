/* The mirror thread: capture records in, production latency and replay out;
 * see mirror.h.
 *
 * Per captured connection it keeps two HTTP framers (lib/http_stream.h):
 * requests, fed the captured request bytes, and responses, fed the first
 * bytes of each response write and told how many bytes followed uncaptured
 * (a body of known length, e.g. sendfile). A request starts at the read that
 * brought its first byte and ends at the write that completed its response:
 * that is production's server-side latency. When responses cannot be framed
 * (a chunked body written in large pieces, not HTTP at all) the connection
 * falls back to bursts: a run of reads is a request, the run of writes that
 * follows its response, and the request ends at the last write before the
 * next read or the close.
 *
 * Each request's production figures wait in a join table for the shadow's
 * (replay reports every request copy's fate once); the pair becomes one
 * sample. A connection replay does not mirror (sampled out, or a workload
 * measured without a mirror: no replay at all) gives production-only
 * samples at once.
 *
 * Locking: everything is the thread's own except `out` (per-slot interval
 * figures and samples) and `pending` (specs from us_mirror_set), both under
 * `lock`. */
#include "mirror.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "../agent/agent_config.h"
#include "clock.h"
#include "hist.h"
#include "http_stream.h"
#include "log.h"

#define NBUCKETS 4096
#define MAX_PENDING 64
#define JOIN_MAX_AGE_NS (30ull * 1000000000ull)
#define SWEEP_EVERY_NS (1000000000ull)
#define POLL_MS 2

enum mirror_counter {
	MC_REQUESTS,             /* production requests completed */
	MC_REQUESTS_MIRRORED,    /* copies fully sent to a shadow */
	MC_SHADOW_RESPONSES,
	MC_SHADOW_FILTERED,
	MC_SHADOW_DROPPED,
	MC_SHADOW_GAP,
	MC_SHADOW_ERR_CONNECT,
	MC_SHADOW_ERR_RESET,
	MC_SHADOW_ERR_TIMEOUT,
	MC_SHADOW_ERR_PROTOCOL,
	MC_CONNS_OPENED,
	MC_CONNS_CLOSED,
	MC_CONNS_RAW_FALLBACK,
	MC_BYTES_READ,           /* request bytes the kernel returned (captured + lost) */
	MC_BYTES_CAPTURED,
	MC_BYTES_LOST,           /* over the cap, or the ring buffer was full */
	MC_BYTES_REPLAYED,       /* written to shadows */
	MC_PROD_5XX,
	MC_SHADOW_5XX,
	MC_NR,
};

/* shadow: about the replay, so only sent for an interval that had one */
static const struct {
	const char *name, *unit;
	int shadow;
} counter_names[MC_NR] = {
	[MC_REQUESTS] = { "requests", "1" },
	[MC_REQUESTS_MIRRORED] = { "mirror_requests_sent", "1", 1 },
	[MC_SHADOW_RESPONSES] = { "shadow_responses", "1", 1 },
	[MC_SHADOW_FILTERED] = { "mirror_filtered", "1", 1 },
	[MC_SHADOW_DROPPED] = { "mirror_dropped", "1", 1 },
	[MC_SHADOW_GAP] = { "mirror_capture_gaps", "1", 1 },
	[MC_SHADOW_ERR_CONNECT] = { "shadow_errors_connect", "1", 1 },
	[MC_SHADOW_ERR_RESET] = { "shadow_errors_reset", "1", 1 },
	[MC_SHADOW_ERR_TIMEOUT] = { "shadow_errors_timeout", "1", 1 },
	[MC_SHADOW_ERR_PROTOCOL] = { "shadow_errors_protocol", "1", 1 },
	[MC_CONNS_OPENED] = { "capture_conns_opened", "1" },
	[MC_CONNS_CLOSED] = { "capture_conns_closed", "1" },
	[MC_CONNS_RAW_FALLBACK] = { "capture_conns_unframed", "1" },
	[MC_BYTES_READ] = { "capture_bytes_read", "bytes" },
	[MC_BYTES_CAPTURED] = { "capture_bytes_captured", "bytes" },
	[MC_BYTES_LOST] = { "capture_bytes_lost", "bytes" },
	[MC_BYTES_REPLAYED] = { "mirror_bytes_replayed", "bytes", 1 },
	[MC_PROD_5XX] = { "responses_5xx", "1" },
	[MC_SHADOW_5XX] = { "shadow_responses_5xx", "1", 1 },
};

/* A production request waiting for its response. */
struct pending {
	uint64_t start_ts;
	uint64_t bytes_in;
	int method;
	int truncated;
};

struct pconn {
	uint64_t id;
	uint32_t slot;
	struct pconn *next;
	struct us_http_stream req, resp;
	int framed;                  /* HTTP framing still holds */
	int in_request;
	uint64_t req_start_ts;
	int req_truncated;
	struct pending q[MAX_PENDING];
	unsigned qh, qn;
	uint32_t next_index;         /* requests completed so far */
	uint64_t resp_bytes;
	/* bursts (raw mode, or framing lost) */
	int reading;
	uint64_t burst_start, burst_in, burst_out, last_write_ts;
	int burst_open;
};

struct join {
	uint64_t conn_id;
	uint32_t index;
	uint32_t slot;
	uint64_t born;
	int has_prod, has_shadow;
	struct us_mirror_sample s;
	struct join *next;
};

struct out_slot {
	struct us_hist prod_latency, shadow_latency;
	uint64_t c[MC_NR];
	struct us_mirror_sample *samples;
	size_t nsamples;
	uint64_t seen;               /* samples offered this interval (reservoir) */
	uint64_t conns_open;         /* gauge: captured connections now tracked */
	int mirrored;                /* the slot had a replay this interval */
};

struct slot {
	int active;
	struct us_mirror_spec spec;
	struct us_replay *replay;
	uint64_t replayed_seen;      /* replay's bytes_sent at the last fold */
	uint64_t sent_seen;          /* replay's requests_sent at the last fold */
};

/* The context replay results come with. */
struct result_ctx {
	struct us_mirror *m;
	uint32_t slot;
};

struct us_mirror {
	pthread_t thread;
	int started;
	int evfd, epfd;
	struct us_capture *cap;
	int64_t unix_minus_mono;
	uint64_t rng;
	struct pconn *conns[NBUCKETS];
	struct join *joins[NBUCKETS];
	struct slot slots[US_MAX_WORKLOADS];
	struct result_ctx rctx[US_MAX_WORKLOADS];
	uint64_t next_sweep;

	pthread_mutex_t lock;
	int stop;
	struct us_mirror_spec *pending[US_MAX_WORKLOADS];	/* under lock */
	int pending_set[US_MAX_WORKLOADS];			/* 1: apply pending[i] (NULL = stop) */
	int active_view[US_MAX_WORKLOADS];			/* under lock, for us_mirror_active */
	int replay_view[US_MAX_WORKLOADS];			/* under lock: slot has a replay */
	struct out_slot out[US_MAX_WORKLOADS];			/* under lock */
};

static uint64_t mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static int outcome_to_proto(enum us_replay_outcome o)
{
	switch (o) {
	case US_REPLAY_OK: return UNDERSTUDY__SHADOW_OUTCOME__SHADOW_OK;
	case US_REPLAY_FILTERED: return UNDERSTUDY__SHADOW_OUTCOME__SHADOW_FILTERED;
	case US_REPLAY_DROPPED: return UNDERSTUDY__SHADOW_OUTCOME__SHADOW_DROPPED;
	case US_REPLAY_CAPTURE_GAP: return UNDERSTUDY__SHADOW_OUTCOME__SHADOW_CAPTURE_GAP;
	case US_REPLAY_ERR_CONNECT: return UNDERSTUDY__SHADOW_OUTCOME__SHADOW_ERR_CONNECT;
	case US_REPLAY_ERR_RESET: return UNDERSTUDY__SHADOW_OUTCOME__SHADOW_ERR_RESET;
	case US_REPLAY_ERR_TIMEOUT: return UNDERSTUDY__SHADOW_OUTCOME__SHADOW_ERR_TIMEOUT;
	default: return UNDERSTUDY__SHADOW_OUTCOME__SHADOW_ERR_PROTOCOL;
	}
}

static enum mirror_counter outcome_counter(enum us_replay_outcome o)
{
	switch (o) {
	case US_REPLAY_OK: return MC_SHADOW_RESPONSES;
	case US_REPLAY_FILTERED: return MC_SHADOW_FILTERED;
	case US_REPLAY_DROPPED: return MC_SHADOW_DROPPED;
	case US_REPLAY_CAPTURE_GAP: return MC_SHADOW_GAP;
	case US_REPLAY_ERR_CONNECT: return MC_SHADOW_ERR_CONNECT;
	case US_REPLAY_ERR_RESET: return MC_SHADOW_ERR_RESET;
	case US_REPLAY_ERR_TIMEOUT: return MC_SHADOW_ERR_TIMEOUT;
	default: return MC_SHADOW_ERR_PROTOCOL;
	}
}

/* ---- interval output (under lock) ----------------------------------------- */

static void count(struct us_mirror *m, uint32_t slot, enum mirror_counter c, uint64_t n)
{
	pthread_mutex_lock(&m->lock);
	m->out[slot].c[c] += n;
	pthread_mutex_unlock(&m->lock);
}

/* Reservoir sampling (Algorithm R): every sample of the interval has the
 * same chance to be kept, so a busy interval is not biased to its start. */
static void offer_sample(struct us_mirror *m, uint32_t slot, const struct us_mirror_sample *s)
{
	struct out_slot *o;
	uint64_t j;

	pthread_mutex_lock(&m->lock);
	o = &m->out[slot];
	o->seen++;
	if (!o->samples)
		o->samples = malloc(US_MIRROR_MAX_SAMPLES * sizeof(*o->samples));
	if (o->samples) {
		if (o->nsamples < US_MIRROR_MAX_SAMPLES) {
			o->samples[o->nsamples++] = *s;
		} else {
			m->rng = mix(m->rng);
			j = m->rng % o->seen;
			if (j < US_MIRROR_MAX_SAMPLES)
				o->samples[j] = *s;
		}
	}
	if (s->latency_ns)
		us_hist_record(&o->prod_latency, s->latency_ns);
	o->c[MC_REQUESTS]++;
	if (s->status_code >= 500 && s->status_code < 600)
		o->c[MC_PROD_5XX]++;
	pthread_mutex_unlock(&m->lock);
}

/* ---- joining production and shadow ------------------------------------------ */

static struct join **join_head(struct us_mirror *m, uint64_t conn_id, uint32_t index)
{
	return &m->joins[mix(conn_id ^ ((uint64_t)index << 40)) % NBUCKETS];
}

static struct join *join_find(struct us_mirror *m, uint64_t conn_id, uint32_t index, int create)
{
	struct join **head = join_head(m, conn_id, index), *j;

	for (j = *head; j; j = j->next)
		if (j->conn_id == conn_id && j->index == index)
			return j;
	if (!create || !(j = calloc(1, sizeof(*j))))
		return NULL;
	j->conn_id = conn_id;
	j->index = index;
	j->born = us_mono_ns();
	j->next = *head;
	*head = j;
	return j;
}

static void join_remove(struct us_mirror *m, struct join *j)
{
	struct join **pp = join_head(m, j->conn_id, j->index);

	while (*pp && *pp != j)
		pp = &(*pp)->next;
	if (*pp)
		*pp = j->next;
	free(j);
}

static int slot_mirrors(const struct us_mirror *m, uint32_t slot, uint64_t conn_id)
{
	const struct slot *s = &m->slots[slot];

	return s->active && s->replay && us_replay_sampled(s->replay, conn_id);
}

static void production_done(struct us_mirror *m, struct pconn *pc, const struct pending *p,
			    uint64_t end_ts, unsigned status, uint64_t bytes_out)
{
	struct us_mirror_sample s = {
		.start_ns = p->start_ts + (uint64_t)m->unix_minus_mono,
		.end_ns = end_ts + (uint64_t)m->unix_minus_mono,
		.latency_ns = end_ts > p->start_ts ? end_ts - p->start_ts : 0,
		.status_code = status,
		.bytes_in = p->bytes_in,
		.bytes_out = bytes_out,
		.conn_id = pc->id,
		.request_index = pc->next_index++,
		.truncated = p->truncated,
		.method = p->method,
	};
	struct join *j;

	if (!slot_mirrors(m, pc->slot, pc->id)) {
		offer_sample(m, pc->slot, &s);
		return;
	}
	j = join_find(m, pc->id, s.request_index, 1);
	if (!j) {
		offer_sample(m, pc->slot, &s);
		return;
	}
	if (j->has_shadow) {
		s.shadow_outcome = j->s.shadow_outcome;
		s.shadow_latency_ns = j->s.shadow_latency_ns;
		s.shadow_status_code = j->s.shadow_status_code;
		s.shadow_bytes_out = j->s.shadow_bytes_out;
		offer_sample(m, pc->slot, &s);
		join_remove(m, j);
		return;
	}
	j->slot = pc->slot;
	j->has_prod = 1;
	j->s = s;
}

static void on_replay_result(void *arg, const struct us_replay_result *res)
{
	struct result_ctx *rc = arg;
	struct us_mirror *m = rc->m;
	uint64_t lat = res->done_ns > res->sent_ns && res->sent_ns ? res->done_ns - res->sent_ns : 0;
	struct join *j;

	pthread_mutex_lock(&m->lock);
	m->out[rc->slot].c[outcome_counter(res->outcome)]++;
	if (res->outcome == US_REPLAY_OK && lat)
		us_hist_record(&m->out[rc->slot].shadow_latency, lat);
	if (res->status_code >= 500 && res->status_code < 600)
		m->out[rc->slot].c[MC_SHADOW_5XX]++;
	pthread_mutex_unlock(&m->lock);
	if (res->copy != 0)
		return;
	j = join_find(m, res->conn_id, (uint32_t)res->request_index, 1);
	if (!j)
		return;
	j->slot = rc->slot;
	j->s.shadow_outcome = outcome_to_proto(res->outcome);
	j->s.shadow_latency_ns = lat;
	j->s.shadow_status_code = res->status_code;
	j->s.shadow_bytes_out = res->response_bytes;
	j->has_shadow = 1;
	if (j->has_prod) {
		offer_sample(m, j->slot, &j->s);
		join_remove(m, j);
	}
}

/* Pairs that waited too long: production-only samples still count;
 * shadow-only results (production's response never seen) are dropped. */
static void join_expire(struct us_mirror *m, uint64_t now)
{
	for (size_t b = 0; b < NBUCKETS; b++) {
		struct join **pp = &m->joins[b];

		while (*pp) {
			struct join *j = *pp;

			if (now - j->born < JOIN_MAX_AGE_NS) {
				pp = &j->next;
				continue;
			}
			if (j->has_prod)
				offer_sample(m, j->slot, &j->s);
			*pp = j->next;
			free(j);
		}
	}
}

/* ---- production connections ---------------------------------------------------- */

static struct pconn **conn_head(struct us_mirror *m, uint64_t id)
{
	return &m->conns[mix(id) % NBUCKETS];
}

static struct pconn *conn_find(struct us_mirror *m, uint64_t id)
{
	for (struct pconn *c = *conn_head(m, id); c; c = c->next)
		if (c->id == id)
			return c;
	return NULL;
}

static struct us_replay *replay_of(struct us_mirror *m, uint32_t slot)
{
	return slot < US_MAX_WORKLOADS && m->slots[slot].active ? m->slots[slot].replay : NULL;
}

static void conn_open(struct us_mirror *m, const struct us_cap_event *ev)
{
	struct pconn *c;
	struct pconn **head;

	if (ev->workload >= US_MAX_WORKLOADS || conn_find(m, ev->conn_id))
		return;
	c = calloc(1, sizeof(*c));
	if (!c)
		return;
	c->id = ev->conn_id;
	c->slot = ev->workload;
	c->framed = m->slots[c->slot].spec.replay.mode == US_REPLAY_HTTP;
	us_http_stream_init(&c->req, US_HTTP_STREAM_REQUESTS);
	us_http_stream_init(&c->resp, US_HTTP_STREAM_RESPONSES);
	head = conn_head(m, c->id);
	c->next = *head;
	*head = c;
	count(m, c->slot, MC_CONNS_OPENED, 1);
	pthread_mutex_lock(&m->lock);
	m->out[c->slot].conns_open++;
	pthread_mutex_unlock(&m->lock);
	if (replay_of(m, c->slot))
		us_replay_conn_open(replay_of(m, c->slot), c->id);
}

static void lose_framing(struct us_mirror *m, struct pconn *c)
{
	if (!c->framed)
		return;
	c->framed = 0;
	count(m, c->slot, MC_CONNS_RAW_FALLBACK, 1);
}

/* A burst of writes ended (next read, or close): in burst mode it answers
 * every request still waiting, or the burst itself in raw mode. */
static void burst_done(struct us_mirror *m, struct pconn *c)
{
	if (!c->burst_open)
		return;
	c->burst_open = 0;
	if (c->qn) {
		while (c->qn) {
			production_done(m, c, &c->q[c->qh], c->last_write_ts, 0, c->burst_out);
			c->qh = (c->qh + 1) % MAX_PENDING;
			c->qn--;
		}
	} else if (m->slots[c->slot].spec.replay.mode == US_REPLAY_RAW) {
		struct pending p = { .start_ts = c->burst_start, .bytes_in = c->burst_in,
				     .method = -1 };

		production_done(m, c, &p, c->last_write_ts, 0, c->burst_out);
	}
	c->burst_in = c->burst_out = 0;
}

static void push_pending(struct us_mirror *m, struct pconn *c)
{
	struct pending *p;

	if (c->qn == MAX_PENDING) {
		lose_framing(m, c);
		return;
	}
	p = &c->q[(c->qh + c->qn++) % MAX_PENDING];
	p->start_ts = c->req_start_ts;
	p->bytes_in = c->req.msg_bytes;
	p->method = (int)c->req.method;
	p->truncated = c->req_truncated;
	c->req_truncated = 0;
	if (us_http_stream_expect(&c->resp, c->req.method == HTTP_HEAD) < 0)
		lose_framing(m, c);
}

static void frame_requests(struct us_mirror *m, struct pconn *c, const uint8_t *p, size_t n,
			   uint64_t ts)
{
	while (n && c->framed) {
		size_t used;
		int done = 0;

		if (!c->in_request) {
			c->in_request = 1;
			c->req_start_ts = ts;
		}
		used = us_http_stream_feed(&c->req, (const char *)p, n, &done);
		if (c->req.state == US_HTTP_STREAM_ERROR) {
			lose_framing(m, c);
			break;
		}
		if (done) {
			c->in_request = 0;
			push_pending(m, c);
		}
		p += used;
		n -= used;
	}
}

static void on_read(struct us_mirror *m, const struct us_cap_event *ev, const uint8_t *data)
{
	struct pconn *c = conn_find(m, ev->conn_id);
	struct us_replay *r;

	if (!c)
		return;
	r = replay_of(m, c->slot);
	count(m, c->slot, MC_BYTES_READ, ev->gap + ev->captured);
	count(m, c->slot, MC_BYTES_CAPTURED, ev->captured);
	if (ev->gap) {
		int done = 0;

		count(m, c->slot, MC_BYTES_LOST, ev->gap);
		if (r)
			us_replay_conn_gap(r, c->id, ev->gap);
		c->req_truncated = 1;
		if (c->framed && us_http_stream_skip(&c->req, ev->gap, &done) < 0)
			lose_framing(m, c);
		else if (done) {
			c->in_request = 0;
			push_pending(m, c);
		}
	}
	if (!c->reading) {
		burst_done(m, c);
		c->reading = 1;
		c->burst_start = ev->ts_ns;
	}
	c->burst_in += ev->gap + ev->captured;
	if (r && ev->captured)
		us_replay_conn_data(r, c->id, data, ev->captured, ev->ts_ns);
	frame_requests(m, c, data, ev->captured, ev->ts_ns);
}

static void response_done(struct us_mirror *m, struct pconn *c, uint64_t ts)
{
	if (c->resp.interim) /* 1xx: the final response is still to come */
		return;
	if (!c->qn) {
		lose_framing(m, c); /* a response to nothing we saw */
		return;
	}
	production_done(m, c, &c->q[c->qh], ts, c->resp.status_code, c->resp.msg_bytes);
	c->qh = (c->qh + 1) % MAX_PENDING;
	c->qn--;
}

static void frame_response(struct us_mirror *m, struct pconn *c, const struct us_cap_event *ev,
			   const uint8_t *data)
{
	const char *p = (const char *)data;
	size_t n = ev->captured;
	uint64_t rest = ev->len > ev->captured ? ev->len - ev->captured : 0;

	while (n && c->framed) {
		int done = 0;
		size_t used = us_http_stream_feed(&c->resp, p, n, &done);

		if (c->resp.state == US_HTTP_STREAM_ERROR) {
			lose_framing(m, c);
			return;
		}
		if (done)
			response_done(m, c, ev->ts_ns);
		p += used;
		n -= used;
	}
	if (rest && c->framed) {
		int done = 0;

		if (us_http_stream_skip(&c->resp, rest, &done) < 0)
			lose_framing(m, c);
		else if (done)
			response_done(m, c, ev->ts_ns);
	}
}

static void on_write(struct us_mirror *m, const struct us_cap_event *ev, const uint8_t *data)
{
	struct pconn *c = conn_find(m, ev->conn_id);
	struct us_replay *r;

	if (!c)
		return;
	r = replay_of(m, c->slot);
	if (c->reading) {
		c->reading = 0;
		c->burst_open = 1;
		if (r)
			us_replay_conn_burst_end(r, c->id);
	}
	c->last_write_ts = ev->ts_ns;
	c->burst_out += ev->len;
	if (c->framed)
		frame_response(m, c, ev, data);
}

static void conn_free(struct us_mirror *m, struct pconn *c)
{
	struct pconn **pp = conn_head(m, c->id);

	while (*pp && *pp != c)
		pp = &(*pp)->next;
	if (*pp)
		*pp = c->next;
	free(c);
}

static void on_close(struct us_mirror *m, const struct us_cap_event *ev)
{
	struct pconn *c = conn_find(m, ev->conn_id);
	struct us_replay *r;

	if (!c)
		return;
	r = replay_of(m, c->slot);
	if (ev->gap) {
		count(m, c->slot, MC_BYTES_READ, ev->gap);
		count(m, c->slot, MC_BYTES_LOST, ev->gap);
		if (r)
			us_replay_conn_gap(r, c->id, ev->gap);
	}
	if (c->framed && us_http_stream_eof(&c->resp))
		response_done(m, c, c->last_write_ts);
	if (!c->framed || m->slots[c->slot].spec.replay.mode == US_REPLAY_RAW)
		burst_done(m, c);
	if (r)
		us_replay_conn_close(r, c->id);
	count(m, c->slot, MC_CONNS_CLOSED, 1);
	pthread_mutex_lock(&m->lock);
	m->out[c->slot].conns_open--;
	pthread_mutex_unlock(&m->lock);
	conn_free(m, c);
}

static void on_event(void *ctx, const struct us_cap_event *ev, const uint8_t *data)
{
	struct us_mirror *m = ctx;

	switch (ev->type) {
	case US_CAP_OPEN: conn_open(m, ev); break;
	case US_CAP_READ: on_read(m, ev, data); break;
	case US_CAP_WRITE: on_write(m, ev, data); break;
	case US_CAP_CLOSE: on_close(m, ev); break;
	default: break;
	}
}

/* ---- slots --------------------------------------------------------------------- */

static void slot_free_replay(struct us_mirror *m, struct slot *s)
{
	if (s->replay) {
		epoll_ctl(m->epfd, EPOLL_CTL_DEL, us_replay_fd(s->replay), NULL);
		us_replay_free(s->replay);
	}
	s->replay = NULL;
}

/* The capture maps a cgroup to one slot: when a cgroup passes from slot i
 * to another (a workload removed, another added for the same cgroup) the
 * other may have tracked it first, so it is tracked again for it. */
static void slot_untrack(struct us_mirror *m, size_t i)
{
	const struct slot *s = &m->slots[i];

	if (!m->cap || !s->spec.cgroup_id)
		return;
	us_capture_untrack(m->cap, s->spec.cgroup_id, (uint32_t)i);
	for (size_t j = 0; j < US_MAX_WORKLOADS; j++) {
		const struct slot *o = &m->slots[j];

		if (j != i && o->active && o->spec.cgroup_id == s->spec.cgroup_id &&
		    us_capture_track(m->cap, o->spec.cgroup_id, (uint32_t)j, o->spec.ports,
				     o->spec.nports) < 0)
			us_error("mirror: workload %s: cannot capture its cgroup", o->spec.workload);
	}
}

static void slot_stop(struct us_mirror *m, size_t i)
{
	struct slot *s = &m->slots[i];

	if (!s->active)
		return;
	slot_untrack(m, i);
	slot_free_replay(m, s);
	s->active = 0;
	us_info("mirror: workload %s: stopped", s->spec.workload);
}

/* A slot passing to another workload: what the last one left in it (a
 * tail the main thread did not collect) is not the new one's. */
static void out_discard(struct us_mirror *m, size_t i)
{
	struct out_slot *o = &m->out[i];

	pthread_mutex_lock(&m->lock);
	free(o->samples);
	o->samples = NULL;
	o->nsamples = 0;
	o->seen = 0;
	us_hist_reset(&o->prod_latency);
	us_hist_reset(&o->shadow_latency);
	memset(o->c, 0, sizeof(o->c));
	pthread_mutex_unlock(&m->lock);
}

static void slot_apply(struct us_mirror *m, size_t i, const struct us_mirror_spec *spec)
{
	struct slot *s = &m->slots[i];
	struct epoll_event ev = { .events = EPOLLIN };
	char err[512];

	if (strcmp(s->spec.workload, spec->workload))
		out_discard(m, i);
	if (s->active && s->spec.cgroup_id != spec->cgroup_id)
		slot_untrack(m, i);
	if (!spec->replay.endpoint[0]) {
		slot_free_replay(m, s); /* measure only */
	} else if (!s->active || !s->replay ||
		   memcmp(&s->spec.replay, &spec->replay, sizeof(spec->replay))) {
		struct us_replay *r;

		m->rctx[i].m = m;
		m->rctx[i].slot = (uint32_t)i;
		r = us_replay_new(&spec->replay, on_replay_result, &m->rctx[i], err, sizeof(err));
		if (!r) {
			us_error("mirror: workload %s: %s", spec->workload, err);
			return;
		}
		slot_free_replay(m, s);
		s->replay = r;
		s->replayed_seen = s->sent_seen = 0;
		ev.data.u64 = i + 1;
		epoll_ctl(m->epfd, EPOLL_CTL_ADD, us_replay_fd(r), &ev);
	}
	s->spec = *spec;
	s->active = 1;
	if (m->cap && spec->cgroup_id &&
	    us_capture_track(m->cap, spec->cgroup_id, (uint32_t)i, spec->ports, spec->nports) < 0)
		us_error("mirror: workload %s: cannot capture its cgroup", spec->workload);
	if (!s->replay) {
		us_info("mirror: workload %s: measuring requests (no mirror)", spec->workload);
		return;
	}
	us_info("mirror: workload %s -> %s (%s, sample %.3g, x%u%s)", spec->workload,
		spec->replay.endpoint, spec->replay.mode == US_REPLAY_HTTP ? "http" : "raw",
		spec->replay.sample, spec->replay.scale,
		spec->replay.allow_writes ? ", writes too" : "");
}

static void apply_pending(struct us_mirror *m)
{
	struct us_mirror_spec *specs[US_MAX_WORKLOADS];
	int set[US_MAX_WORKLOADS];

	pthread_mutex_lock(&m->lock);
	memcpy(specs, m->pending, sizeof(specs));
	memcpy(set, m->pending_set, sizeof(set));
	memset(m->pending, 0, sizeof(m->pending));
	memset(m->pending_set, 0, sizeof(m->pending_set));
	pthread_mutex_unlock(&m->lock);
	for (size_t i = 0; i < US_MAX_WORKLOADS; i++) {
		if (!set[i])
			continue;
		if (specs[i])
			slot_apply(m, i, specs[i]);
		else
			slot_stop(m, i);
		free(specs[i]);
		pthread_mutex_lock(&m->lock);
		m->active_view[i] = m->slots[i].active;
		m->replay_view[i] = m->slots[i].replay != NULL;
		if (m->replay_view[i])
			m->out[i].mirrored = 1;
		pthread_mutex_unlock(&m->lock);
	}
}

/* Replay's byte counter into the slot's interval figures. */
static void fold_replay_bytes(struct us_mirror *m)
{
	for (size_t i = 0; i < US_MAX_WORKLOADS; i++) {
		struct us_replay_stats st;

		if (!m->slots[i].replay)
			continue;
		us_replay_stats(m->slots[i].replay, &st);
		if (st.bytes_sent > m->slots[i].replayed_seen)
			count(m, (uint32_t)i, MC_BYTES_REPLAYED, st.bytes_sent - m->slots[i].replayed_seen);
		if (st.requests_sent > m->slots[i].sent_seen)
			count(m, (uint32_t)i, MC_REQUESTS_MIRRORED,
			      st.requests_sent - m->slots[i].sent_seen);
		m->slots[i].replayed_seen = st.bytes_sent;
		m->slots[i].sent_seen = st.requests_sent;
	}
}

static void *mirror_main(void *arg)
{
	struct us_mirror *m = arg;
	struct epoll_event evs[16];

	for (;;) {
		int n, stop;
		uint64_t now;

		pthread_mutex_lock(&m->lock);
		stop = m->stop;
		pthread_mutex_unlock(&m->lock);
		if (stop)
			break;
		/* the capture wakes us only when its ring fills up (see
		 * bpf/capture.bpf.c): poll it every POLL_MS */
		n = epoll_wait(m->epfd, evs, 16, POLL_MS);
		for (int i = 0; i < n; i++) {
			uint64_t tag = evs[i].data.u64;

			if (tag == 0) {
				uint64_t v;

				(void)!read(m->evfd, &v, sizeof(v));
				apply_pending(m);
			}
		}
		us_capture_poll(m->cap, 0);
		for (size_t i = 0; i < US_MAX_WORKLOADS; i++)
			if (m->slots[i].replay)
				us_replay_run(m->slots[i].replay, 0);
		now = us_mono_ns();
		if (now >= m->next_sweep) {
			m->next_sweep = now + SWEEP_EVERY_NS;
			us_capture_sweep(m->cap);
			join_expire(m, now);
			fold_replay_bytes(m);
		}
	}
	for (size_t i = 0; i < US_MAX_WORKLOADS; i++)
		slot_stop(m, i);
	return NULL;
}

/* ---- main-thread API ------------------------------------------------------------- */

int us_mirror_start(const struct us_capture_opts *copts, struct us_mirror **out, char *err,
		    size_t errlen)
{
	struct us_mirror *m = calloc(1, sizeof(*m));
	struct epoll_event ev = { .events = EPOLLIN };
	struct timespec mono, real;
	int rc = -ENOMEM;

	if (!m)
		goto fail;
	pthread_mutex_init(&m->lock, NULL);
	m->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	m->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (m->evfd < 0 || m->epfd < 0) {
		rc = -errno;
		goto fail;
	}
	rc = us_capture_open(copts, on_event, m, &m->cap, err, errlen);
	if (rc < 0)
		goto cleanup;
	ev.data.u64 = 0;
	epoll_ctl(m->epfd, EPOLL_CTL_ADD, m->evfd, &ev);
	ev.data.u64 = UINT64_MAX;
	epoll_ctl(m->epfd, EPOLL_CTL_ADD, us_capture_fd(m->cap), &ev);
	clock_gettime(CLOCK_MONOTONIC, &mono);
	clock_gettime(CLOCK_REALTIME, &real);
	m->unix_minus_mono = ((int64_t)real.tv_sec - (int64_t)mono.tv_sec) * 1000000000ll +
			     ((int64_t)real.tv_nsec - (int64_t)mono.tv_nsec);
	m->rng = (uint64_t)real.tv_nsec;
	rc = pthread_create(&m->thread, NULL, mirror_main, m);
	if (rc) {
		rc = -rc;
		snprintf(err, errlen, "mirror thread: %s", strerror(-rc));
		goto cleanup;
	}
	m->started = 1;
	*out = m;
	return 0;
fail:
	snprintf(err, errlen, "mirror: %s", strerror(-rc));
cleanup:
	us_mirror_stop(m);
	return rc;
}

void us_mirror_stop(struct us_mirror *m)
{
	uint64_t one = 1;

	if (!m)
		return;
	if (m->started) {
		pthread_mutex_lock(&m->lock);
		m->stop = 1;
		pthread_mutex_unlock(&m->lock);
		(void)!write(m->evfd, &one, sizeof(one));
		pthread_join(m->thread, NULL);
	}
	for (size_t b = 0; b < NBUCKETS; b++) {
		while (m->conns[b]) {
			struct pconn *c = m->conns[b];

			m->conns[b] = c->next;
			free(c);
		}
		while (m->joins[b]) {
			struct join *j = m->joins[b];

			m->joins[b] = j->next;
			free(j);
		}
	}
	for (size_t i = 0; i < US_MAX_WORKLOADS; i++) {
		free(m->pending[i]);
		free(m->out[i].samples);
	}
	us_capture_destroy(m->cap);
	if (m->evfd >= 0)
		close(m->evfd);
	if (m->epfd >= 0)
		close(m->epfd);
	pthread_mutex_destroy(&m->lock);
	free(m);
}

int us_mirror_set(struct us_mirror *m, size_t idx, const struct us_mirror_spec *spec,
		  char *err, size_t errlen)
{
	struct us_mirror_spec *copy = NULL;
	uint64_t one = 1;

	if (idx >= US_MAX_WORKLOADS) {
		snprintf(err, errlen, "workload slot %zu out of range", idx);
		return -EINVAL;
	}
	if (spec) {
		if (spec->replay.endpoint[0] && (spec->replay.sample <= 0 ||
		    spec->replay.sample > 1 || spec->replay.scale < 1)) {
			snprintf(err, errlen, "workload %s: mirror needs a sample in (0, 1] and "
				 "a scale >= 1", spec->workload);
			return -EINVAL;
		}
		if (!spec->nports) {
			snprintf(err, errlen, "workload %s: %s needs the service ports "
				 "(`ports:`) whose connections to capture", spec->workload,
				 spec->replay.endpoint[0] ? "mirroring" : "measuring requests");
			return -EINVAL;
		}
		copy = malloc(sizeof(*copy));
		if (!copy) {
			snprintf(err, errlen, "out of memory");
			return -ENOMEM;
		}
		*copy = *spec;
	}
	pthread_mutex_lock(&m->lock);
	free(m->pending[idx]);
	m->pending[idx] = copy;
	m->pending_set[idx] = 1;
	pthread_mutex_unlock(&m->lock);
	(void)!write(m->evfd, &one, sizeof(one));
	return 0;
}

int us_mirror_active(struct us_mirror *m, size_t idx)
{
	int a;

	if (!m || idx >= US_MAX_WORKLOADS)
		return 0;
	pthread_mutex_lock(&m->lock);
	a = m->active_view[idx] || (m->pending_set[idx] && m->pending[idx]);
	pthread_mutex_unlock(&m->lock);
	return a;
}

void us_mirror_add_figures(struct us_mirror *m, size_t idx, struct us_batch *b)
{
	struct out_slot *o;

	if (!m || idx >= US_MAX_WORKLOADS)
		return;
	pthread_mutex_lock(&m->lock);
	o = &m->out[idx];
	if (m->active_view[idx] || o->prod_latency.count || o->c[MC_CONNS_OPENED]) {
		us_batch_add_hist(b, "request_latency", "ns", &o->prod_latency);
		if (o->mirrored)
			us_batch_add_hist(b, "shadow_request_latency", "ns", &o->shadow_latency);
		for (int k = 0; k < MC_NR; k++)
			if (o->mirrored || !counter_names[k].shadow)
				us_batch_add_counter(b, counter_names[k].name, counter_names[k].unit,
						     o->c[k]);
		us_batch_add_gauge(b, "capture_conns_open", "1", (double)o->conns_open);
	}
	o->mirrored = m->replay_view[idx];
	us_hist_reset(&o->prod_latency);
	us_hist_reset(&o->shadow_latency);
	memset(o->c, 0, sizeof(o->c));
	pthread_mutex_unlock(&m->lock);
}

size_t us_mirror_take_samples(struct us_mirror *m, size_t idx, struct us_mirror_sample **out,
			      uint64_t *dropped)
{
	struct out_slot *o;
	size_t n;

	*out = NULL;
	*dropped = 0;
	if (!m || idx >= US_MAX_WORKLOADS)
		return 0;
	pthread_mutex_lock(&m->lock);
	o = &m->out[idx];
	n = o->nsamples;
	*out = o->samples;
	*dropped = o->seen > n ? o->seen - n : 0;
	o->samples = NULL;
	o->nsamples = 0;
	o->seen = 0;
	pthread_mutex_unlock(&m->lock);
	return n;
}

int us_mirror_capture_counters(struct us_mirror *m, uint64_t out[US_CAP_CNT_NR])
{
	return m && m->cap ? us_capture_counters(m->cap, out) : -ENOENT;
}

int us_mirror_prog_fds(struct us_mirror *m, int *fds, const char **names, int max)
{
	return m && m->cap ? us_capture_prog_fds(m->cap, fds, names, max) : 0;
}

int us_mirror_parse_sample(const char *s, double *out)
{
	char *end;
	double v = strtod(s, &end);

	if (end == s)
		return -1;
	if (*end == '%') {
		v /= 100;
		end++;
	}
	if (*end || !(v > 0 && v <= 1))
		return -1;
	*out = v;
	return 0;
}
