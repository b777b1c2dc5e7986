/* Spool -> coordinator delivery with a bounded in-flight window. */
#include "sender.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "clock.h"
#include "envelope.h"
#include "log.h"

struct flight {
	uint64_t seq;
	uint64_t sent_mono_ns;
	uint32_t len;
	bool acked;
};

struct us_sender {
	struct us_sender_config cfg;
	struct us_spool *spool;
	void *sock;
	void *monitor;
	struct flight *ring;   /* in-flight envelopes in seq order */
	uint32_t head, count;
	uint64_t inflight_bytes;
	uint64_t cursor;       /* highest seq sent since the last rewind */
	uint64_t max_sent;     /* highest seq ever sent: below it, a send is a resend */
	uint64_t acked_resend_floor; /* acks at or below: resends, not timed */
	uint64_t next_heartbeat_ns;
	uint64_t started_mono_ns;
	bool send_blocked;
	struct us_codec codec;
	struct us_buf frame;
	char err[256];
	struct us_sender_stats stats;
	struct us_ratelimit auth_log;
	us_sender_command_fn on_command;
	void *on_command_ctx;
};

static int set_curve_options(void *sock, const struct us_sender_config *cfg)
{
	int one = 1, linger = 0, ivl = 2000, ttl = 10000, timeout = 6000;
	int64_t maxmsg = US_FRAME_MAX + US_FRAME_HDR;

	if (zmq_setsockopt(sock, ZMQ_CURVE_SERVERKEY, cfg->server_public_key, US_Z85_KEY_LEN) ||
	    zmq_setsockopt(sock, ZMQ_CURVE_PUBLICKEY, cfg->keys.public_key, US_Z85_KEY_LEN) ||
	    zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, cfg->keys.secret_key, US_Z85_KEY_LEN) ||
	    /* queue nothing on a pipe that is not connected: the spool is the queue */
	    zmq_setsockopt(sock, ZMQ_IMMEDIATE, &one, sizeof(one)) ||
	    zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof(linger)) ||
	    /* the 4 MiB frame limit holds for what the coordinator sends too */
	    zmq_setsockopt(sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof(maxmsg)) ||
	    zmq_setsockopt(sock, ZMQ_HEARTBEAT_IVL, &ivl, sizeof(ivl)) ||
	    zmq_setsockopt(sock, ZMQ_HEARTBEAT_TTL, &ttl, sizeof(ttl)) ||
	    zmq_setsockopt(sock, ZMQ_HEARTBEAT_TIMEOUT, &timeout, sizeof(timeout)))
		return -1;
	return 0;
}

struct us_sender *us_sender_open(void *zmq_ctx, const struct us_sender_config *cfg,
				 struct us_spool *spool, char *err, size_t errlen)
{
	struct us_sender *s = calloc(1, sizeof(*s));
	char mon_addr[64];

	if (!s)
		goto oom;
	s->cfg = *cfg;
	us_codec_init(&s->codec);
	s->spool = spool;
	s->ring = calloc(cfg->window, sizeof(*s->ring));
	if (!s->ring)
		goto oom;
	s->started_mono_ns = us_mono_ns();
	s->next_heartbeat_ns = s->started_mono_ns;
	s->sock = zmq_socket(zmq_ctx, ZMQ_DEALER);
	if (!s->sock || set_curve_options(s->sock, cfg) < 0) {
		snprintf(err, errlen, "DEALER socket: %s", zmq_strerror(zmq_errno()));
		goto fail;
	}
	snprintf(mon_addr, sizeof(mon_addr), "inproc://us-sender-monitor-%p", (void *)s);
	if (zmq_socket_monitor(s->sock, mon_addr, ZMQ_EVENT_HANDSHAKE_SUCCEEDED |
			       ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH |
			       ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
			       ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL) != 0) {
		snprintf(err, errlen, "socket monitor: %s", zmq_strerror(zmq_errno()));
		goto fail;
	}
	s->monitor = zmq_socket(zmq_ctx, ZMQ_PAIR);
	if (!s->monitor || zmq_connect(s->monitor, mon_addr) != 0) {
		snprintf(err, errlen, "socket monitor: %s", zmq_strerror(zmq_errno()));
		goto fail;
	}
	if (zmq_connect(s->sock, cfg->endpoint) != 0) {
		snprintf(err, errlen, "coordinator endpoint '%s': %s", cfg->endpoint,
			 zmq_strerror(zmq_errno()));
		goto fail;
	}
	s->cursor = us_spool_oldest(spool);
	s->cursor = s->cursor ? s->cursor - 1 : 0;
	return s;
oom:
	snprintf(err, errlen, "out of memory");
fail:
	us_sender_close(s);
	return NULL;
}

void us_sender_close(struct us_sender *s)
{
	if (!s)
		return;
	if (s->sock) {
		zmq_socket_monitor(s->sock, NULL, 0);
		zmq_close(s->sock);
	}
	if (s->monitor)
		zmq_close(s->monitor);
	us_buf_free(&s->frame);
	us_codec_free(&s->codec);
	free(s->ring);
	free(s);
}

int us_sender_submit(struct us_sender *s, Understudy__Envelope *env, char *err, size_t errlen)
{
	env->agent_id = (char *)s->cfg.agent_id;
	env->seq = us_spool_next_seq(s->spool);
	env->sent_unix_ns = us_now_ns();
	env->schema_version = US_SCHEMA_VERSION;
	if (us_envelope_encode(&s->codec, env, &s->frame, err, errlen) < 0)
		return -1;
	s->stats.bytes_plain += understudy__envelope__get_packed_size(env);
	s->stats.bytes_framed += s->frame.len;
	if (us_spool_append(s->spool, env->seq, s->frame.data, s->frame.len, err, errlen) < 0)
		return -1;
	s->stats.submitted++;
	return 0;
}

/* Forget what is in flight and send again from the oldest unacked. */
static void rewind_window(struct us_sender *s, const char *why)
{
	uint64_t oldest = us_spool_oldest(s->spool);

	if (s->count)
		us_debug("sender: resending %u unacked envelopes (%s)", s->count, why);
	s->stats.rewinds++;
	s->acked_resend_floor = s->max_sent;
	s->head = s->count = 0;
	s->inflight_bytes = 0;
	s->cursor = oldest ? oldest - 1 : s->cursor;
}

static int send_one(void *ctx, uint64_t seq, const uint8_t *frame, size_t len)
{
	struct us_sender *s = ctx;
	struct flight *f;

	if (s->count >= s->cfg.window || s->inflight_bytes + len > s->cfg.window_bytes)
		return 1;
	if (zmq_send(s->sock, frame, len, ZMQ_DONTWAIT) < 0) {
		s->send_blocked = true;
		return 1;
	}
	f = &s->ring[(s->head + s->count) % s->cfg.window];
	f->seq = seq;
	f->sent_mono_ns = us_mono_ns();
	f->len = (uint32_t)len;
	f->acked = false;
	s->count++;
	s->inflight_bytes += len;
	s->cursor = seq;
	s->stats.sent++;
	if (seq <= s->max_sent)
		s->stats.resent++;
	else
		s->max_sent = seq;
	return 0;
}

static void fill_window(struct us_sender *s)
{
	s->send_blocked = false;
	while (!s->send_blocked && s->count < s->cfg.window) {
		uint64_t before = s->cursor;
		size_t room = s->cfg.window - s->count;
		int n = us_spool_scan(s->spool, s->cursor, room < 256 ? room : 256, send_one, s);

		if (n <= 0 || s->cursor == before)
			break;
	}
}

/* First ring slot holding a seq >= seq (the ring holds increasing seqs). */
static uint32_t ring_lower_bound(const struct us_sender *s, uint64_t seq)
{
	uint32_t lo = 0, hi = s->count;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (s->ring[(s->head + mid) % s->cfg.window].seq < seq)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static void mark_acked(struct us_sender *s, uint64_t first, uint64_t last)
{
	uint64_t now = us_mono_ns();

	for (uint32_t i = ring_lower_bound(s, first); i < s->count; i++) {
		struct flight *f = &s->ring[(s->head + i) % s->cfg.window];

		if (f->seq > last)
			break;
		if (!f->acked) {
			if (f->seq > s->acked_resend_floor)
				us_hist_record(&s->stats.ack_latency_ns, now - f->sent_mono_ns);
			f->acked = true;
		}
	}
	while (s->count && s->ring[s->head].acked) {
		s->inflight_bytes -= s->ring[s->head].len;
		s->head = (s->head + 1) % s->cfg.window;
		s->count--;
	}
}

static void take_ack(struct us_sender *s, const uint8_t *frame, size_t len)
{
	struct us_ack_range ranges[64];
	char err[256];
	size_t n;

	if (us_ack_decode_ranges(&s->codec, frame, len, s->cfg.agent_id, ranges, 64, &n, err,
				 sizeof(err)) < 0) {
		us_warn("sender: ignoring a reply from the coordinator: %s", err);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		int removed = us_spool_ack_range(s->spool, ranges[i].first, ranges[i].last);

		if (removed > 0)
			s->stats.acked += (uint64_t)removed;
		mark_acked(s, ranges[i].first, ranges[i].last);
	}
}

static void take_command(struct us_sender *s, const uint8_t *frame, size_t len)
{
	Understudy__Command *cmd = us_command_decode(&s->codec, frame, len, s->cfg.agent_id,
						     s->err, sizeof(s->err));

	if (!cmd) {
		us_warn("sender: ignoring a command from the coordinator: %s", s->err);
		return;
	}
	s->stats.commands++;
	if (s->on_command)
		s->on_command(s->on_command_ctx, cmd);
	else if (us_sender_submit_result(s, cmd->id, false, "not supported by this agent",
					 s->err, sizeof(s->err)) < 0)
		us_warn("command %llu: %s", (unsigned long long)cmd->id, s->err);
	understudy__command__free_unpacked(cmd, NULL);
}

/* Acks and commands: the only frames the coordinator sends. */
static void take_replies(struct us_sender *s)
{
	for (;;) {
		zmq_msg_t msg;
		const uint8_t *data;
		size_t len;

		zmq_msg_init(&msg);
		if (zmq_msg_recv(&msg, s->sock, ZMQ_DONTWAIT) < 0) {
			zmq_msg_close(&msg);
			return;
		}
		data = zmq_msg_data(&msg);
		len = zmq_msg_size(&msg);
		if (len > US_FRAME_HDR && data[0] == US_FRAME_MAGIC && data[1] == US_FRAME_COMMAND)
			take_command(s, data, len);
		else
			take_ack(s, data, len);
		zmq_msg_close(&msg);
	}
}

static void take_monitor_events(struct us_sender *s)
{
	for (;;) {
		zmq_msg_t ev, addr;
		uint16_t event;
		uint64_t dropped;

		zmq_msg_init(&ev);
		if (zmq_msg_recv(&ev, s->monitor, ZMQ_DONTWAIT) < 0) {
			zmq_msg_close(&ev);
			return;
		}
		memcpy(&event, zmq_msg_data(&ev), sizeof(event));
		zmq_msg_close(&ev);
		zmq_msg_init(&addr);
		zmq_msg_recv(&addr, s->monitor, 0);
		zmq_msg_close(&addr);
		switch (event) {
		case ZMQ_EVENT_HANDSHAKE_SUCCEEDED:
			us_info("connected to coordinator %s", s->cfg.endpoint);
			s->stats.connected = true;
			rewind_window(s, "reconnected");
			break;
		case ZMQ_EVENT_DISCONNECTED:
			if (s->stats.connected)
				us_warn("lost coordinator %s; spooling", s->cfg.endpoint);
			s->stats.connected = false;
			break;
		default:
			s->stats.auth_failures++;
			if (us_ratelimit_allow(&s->auth_log, 60 * US_NS_PER_SEC, &dropped))
				us_error("coordinator %s refused this agent's CURVE key (public key %s): "
					 "add its .pub file to the coordinator's agents directory",
					 s->cfg.endpoint, s->cfg.keys.public_key);
			break;
		}
	}
}

static void maybe_heartbeat(struct us_sender *s)
{
	Understudy__Envelope env = UNDERSTUDY__ENVELOPE__INIT;
	Understudy__Heartbeat hb = UNDERSTUDY__HEARTBEAT__INIT;
	struct us_spool_stats st;
	uint64_t now = us_mono_ns();
	char err[256];

	if (now < s->next_heartbeat_ns)
		return;
	s->next_heartbeat_ns = now + s->cfg.heartbeat_interval_ns;
	us_spool_get_stats(s->spool, &st);
	hb.spool_dropped_total = st.dropped_total;
	hb.spool_bytes = st.bytes;
	hb.spool_envelopes = st.envelopes;
	hb.uptime_ns = now - s->started_mono_ns;
	env.body_case = UNDERSTUDY__ENVELOPE__BODY_HEARTBEAT;
	env.heartbeat = &hb;
	if (us_sender_submit(s, &env, err, sizeof(err)) < 0)
		us_warn("heartbeat: %s", err);
}

void us_sender_on_command(struct us_sender *s, us_sender_command_fn fn, void *ctx)
{
	s->on_command = fn;
	s->on_command_ctx = ctx;
}

int us_sender_submit_result(struct us_sender *s, uint64_t command_id, bool ok,
			    const char *message, char *err, size_t errlen)
{
	Understudy__Envelope env = UNDERSTUDY__ENVELOPE__INIT;
	Understudy__CommandResult res = UNDERSTUDY__COMMAND_RESULT__INIT;

	res.command_id = command_id;
	res.ok = ok;
	res.message = (char *)message;
	env.body_case = UNDERSTUDY__ENVELOPE__BODY_COMMAND_RESULT;
	env.command_result = &res;
	return us_sender_submit(s, &env, err, errlen);
}

int us_sender_run(struct us_sender *s, int timeout_ms)
{
	zmq_pollitem_t items[2] = {
		{ .socket = s->sock, .events = ZMQ_POLLIN },
		{ .socket = s->monitor, .events = ZMQ_POLLIN },
	};
	char err[256];
	uint64_t now;

	maybe_heartbeat(s);
	if (us_spool_commit(s->spool, err, sizeof(err)) < 0)
		us_error("%s", err);
	take_monitor_events(s);
	take_replies(s);
	now = us_mono_ns();
	if (s->count && now - s->ring[s->head].sent_mono_ns > s->cfg.ack_timeout_ns)
		rewind_window(s, "ack timeout");
	fill_window(s);
	if (zmq_poll(items, 2, timeout_ms) < 0 && zmq_errno() != EINTR)
		return -1;
	take_monitor_events(s);
	take_replies(s);
	s->stats.in_flight = s->count;
	return 0;
}

int us_sender_drain(struct us_sender *s, int timeout_ms)
{
	uint64_t deadline = us_mono_ns() + (uint64_t)timeout_ms * US_NS_PER_MS;
	struct us_spool_stats st;

	for (;;) {
		us_sender_run(s, 10);
		us_spool_get_stats(s->spool, &st);
		if (st.envelopes == 0)
			return 0;
		if (us_mono_ns() > deadline)
			return -1;
	}
}

const struct us_sender_stats *us_sender_get_stats(const struct us_sender *s)
{
	return &s->stats;
}
