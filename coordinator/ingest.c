/* ROUTER receive loop, batched durable writes, acks after commit. */
#include "ingest.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "clock.h"
#include "envelope.h"
#include "log.h"
#include "scan.h"

#define ROUTING_ID_MAX 255
#define AGENT_BUCKETS 1024

struct agent {
	struct agent *next;
	char name[US_AGENT_ID_MAX + 1];
	int64_t store_id;
	uint64_t last_seen_mono_ns;
	int stale;
	uint64_t spool_dropped_total;  /* as last reported */
	uint8_t routing_id[ROUTING_ID_MAX];  /* its connection, for commands */
	uint8_t routing_len;
	bool reconnected;               /* resend pending commands now */
	struct us_ratelimit bad_input_log;
};

struct pending_ack {
	uint8_t routing_id[ROUTING_ID_MAX];
	uint8_t routing_len;
	struct agent *agent;
	uint64_t seq;
	uint64_t received_mono_ns;
};

struct us_ingest {
	struct us_ingest_config cfg;
	struct us_store *store;
	struct us_auth *auth;
	void *sock;
	struct agent *agents[AGENT_BUCKETS];
	struct pending_ack *pending;
	struct pending_ack **order;     /* pending, sorted to fold acks */
	struct us_ack_range *ranges;
	uint32_t npending;
	uint64_t batch_stored, batch_duplicates;
	int in_txn;
	uint64_t next_housekeeping_ns;
	struct us_codec codec;
	struct us_buf ack_frame;
	struct us_ingest_stats stats;
	struct us_ratelimit anon_log;
};

static uint32_t hash_name(const char *s)
{
	uint32_t h = 2166136261u;

	while (*s)
		h = (h ^ (uint8_t)*s++) * 16777619u;
	return h % AGENT_BUCKETS;
}

static struct agent *find_agent(struct us_ingest *in, const char *name)
{
	for (struct agent *a = in->agents[hash_name(name)]; a; a = a->next)
		if (strcmp(a->name, name) == 0)
			return a;
	return NULL;
}

static struct agent *get_agent(struct us_ingest *in, const char *name)
{
	struct agent *a = find_agent(in, name);
	uint32_t h;

	if (a)
		return a;
	a = calloc(1, sizeof(*a));
	if (!a)
		return NULL;
	snprintf(a->name, sizeof(a->name), "%s", name);
	a->store_id = -1;
	h = hash_name(name);
	a->next = in->agents[h];
	in->agents[h] = a;
	return a;
}

/* Agents known from earlier runs start their liveness clock now: one that
 * never comes back is marked stale after heartbeat_timeout, like any other. */
static void adopt_agent(void *ctx, int64_t id, const char *name, const char *state)
{
	struct us_ingest *in = ctx;
	struct agent *a = get_agent(in, name);

	if (!a)
		return;
	a->store_id = id;
	a->last_seen_mono_ns = us_mono_ns();
	a->stale = strcmp(state, "stale") == 0;
}

struct us_ingest *us_ingest_open(void *zmq_ctx, const struct us_ingest_config *cfg,
				 struct us_store *store, struct us_auth *auth,
				 char *err, size_t errlen)
{
	struct us_ingest *in = calloc(1, sizeof(*in));
	int one = 1, linger = 0, hwm = 10000;
	int64_t maxmsg = 2 * (int64_t)(US_FRAME_MAX + US_FRAME_HDR);

	if (!in)
		goto oom;
	in->cfg = *cfg;
	us_codec_init(&in->codec);
	in->store = store;
	in->auth = auth;
	in->pending = calloc(cfg->batch_max, sizeof(*in->pending));
	in->order = calloc(cfg->batch_max, sizeof(*in->order));
	in->ranges = calloc(cfg->batch_max < US_ACK_MAX_RANGES ? cfg->batch_max : US_ACK_MAX_RANGES,
			    sizeof(*in->ranges));
	if (!in->pending || !in->order || !in->ranges)
		goto oom;
	in->sock = zmq_socket(zmq_ctx, ZMQ_ROUTER);
	/* zmq drops a peer's connection beyond maxmsg; between US_FRAME_MAX and
	 * it we take the frame and refuse it ourselves, so it is counted */
	if (!in->sock ||
	    zmq_setsockopt(in->sock, ZMQ_CURVE_SERVER, &one, sizeof(one)) ||
	    zmq_setsockopt(in->sock, ZMQ_CURVE_SECRETKEY, cfg->keys.secret_key, US_Z85_KEY_LEN) ||
	    zmq_setsockopt(in->sock, ZMQ_ZAP_DOMAIN, "understudy", 10) ||
	    zmq_setsockopt(in->sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof(maxmsg)) ||
	    zmq_setsockopt(in->sock, ZMQ_LINGER, &linger, sizeof(linger)) ||
	    zmq_setsockopt(in->sock, ZMQ_RCVHWM, &hwm, sizeof(hwm)) ||
	    zmq_setsockopt(in->sock, ZMQ_SNDHWM, &hwm, sizeof(hwm))) {
		snprintf(err, errlen, "ROUTER socket: %s", zmq_strerror(zmq_errno()));
		goto fail;
	}
	if (zmq_bind(in->sock, cfg->listen) != 0) {
		snprintf(err, errlen, "cannot listen on %s: %s", cfg->listen,
			 zmq_strerror(zmq_errno()));
		goto fail;
	}
	if (us_store_each_agent(store, adopt_agent, in) < 0) {
		snprintf(err, errlen, "reading known agents from the store failed");
		goto fail;
	}
	in->next_housekeeping_ns = us_mono_ns() + US_NS_PER_SEC;
	return in;
oom:
	snprintf(err, errlen, "out of memory");
fail:
	us_ingest_close(in);
	return NULL;
}

void us_ingest_close(struct us_ingest *in)
{
	if (!in)
		return;
	if (in->sock)
		zmq_close(in->sock);
	for (int i = 0; i < AGENT_BUCKETS; i++) {
		struct agent *a = in->agents[i];

		while (a) {
			struct agent *next = a->next;

			free(a);
			a = next;
		}
	}
	us_codec_free(&in->codec);
	us_buf_free(&in->ack_frame);
	free(in->pending);
	free(in->order);
	free(in->ranges);
	free(in);
}

/* Logs bad input once a minute per agent (or per unauthenticated peer). */
static void log_refusal(struct us_ingest *in, struct agent *a, const char *user,
			const char *what, const char *detail)
{
	struct us_ratelimit *rl = a ? &a->bad_input_log : &in->anon_log;
	uint64_t suppressed;

	if (us_ratelimit_allow(rl, 60 * US_NS_PER_SEC, &suppressed))
		us_warn("refused envelope from agent %s: %s: %s (%llu similar refusals folded)",
			user, what, detail, (unsigned long long)suppressed);
}

static int ensure_txn(struct us_ingest *in)
{
	char err[512];

	if (in->in_txn)
		return 0;
	if (us_store_begin(in->store, err, sizeof(err)) < 0) {
		us_error("%s", err);
		return -1;
	}
	in->in_txn = 1;
	return 0;
}

/* Loss on the agent's side is never silent: each rise of its spool's drop
 * count (carried by every Heartbeat) is logged here too. */
static void note_heartbeat(struct agent *a, const struct us_envelope_view *env)
{
	Understudy__Heartbeat *hb = understudy__heartbeat__unpack(NULL, env->body_len, env->body);

	if (!hb)
		return;
	if (hb->spool_dropped_total > a->spool_dropped_total)
		us_warn("agent %s dropped %llu envelopes from its full spool (%llu in all): "
			"data from that agent is missing", a->name,
			(unsigned long long)(hb->spool_dropped_total - a->spool_dropped_total),
			(unsigned long long)hb->spool_dropped_total);
	a->spool_dropped_total = hb->spool_dropped_total;
	understudy__heartbeat__free_unpacked(hb, NULL);
}

static void mark_seen(struct us_ingest *in, struct agent *a)
{
	a->last_seen_mono_ns = us_mono_ns();
	if (a->stale) {
		a->stale = 0;
		us_info("agent %s is back", a->name);
		us_store_set_agent_state(in->store, a->store_id, "live", us_now_ns());
	}
}

/* Undoes the open transaction and forgets its acks: a batch is stored whole
 * or not at all, and what is not acked is resent. */
static void abort_batch(struct us_ingest *in)
{
	us_store_rollback(in->store);
	in->in_txn = 0;
	in->npending = 0;
	in->batch_stored = in->batch_duplicates = 0;
}

static void accept_envelope(struct us_ingest *in, zmq_msg_t *rid, const char *user,
			    const uint8_t *frame, size_t len)
{
	struct us_envelope_view env;
	enum us_frame_type type;
	enum us_frame_err why;
	struct agent *a = get_agent(in, user);
	struct pending_ack *p;
	const uint8_t *body;
	size_t body_len;
	char err[512];
	uint64_t now_us = us_now_ns() / 1000;

	why = us_frame_unpack(&in->codec, frame, len, &type, &body, &body_len, err, sizeof(err));
	if (why == US_FRAME_OK && type != US_FRAME_ENVELOPE) {
		snprintf(err, sizeof(err), "frame type %d where an envelope was expected", type);
		why = US_FRAME_ERR_GARBAGE;
	}
	if (why == US_FRAME_OK)
		why = us_scan_envelope(body, body_len, &env, err, sizeof(err));
	if (why != US_FRAME_OK) {
		in->stats.refused[why]++;
		log_refusal(in, a, user, us_frame_err_name(why), err);
		return;
	}
	if (env.agent_id_len != strlen(user) || memcmp(env.agent_id, user, env.agent_id_len) != 0) {
		in->stats.refused_identity++;
		snprintf(err, sizeof(err), "envelope claims agent '%.*s' but the key is '%s'",
			 (int)env.agent_id_len, env.agent_id, user);
		log_refusal(in, a, user, "identity mismatch", err);
		return;
	}
	if (env.seq > now_us + in->cfg.future_slack_ns / 1000) {
		in->stats.refused_future_seq++;
		snprintf(err, sizeof(err), "seq %llu is ahead of the clock (%llu us)",
			 (unsigned long long)env.seq, (unsigned long long)now_us);
		log_refusal(in, a, user, "seq from the future", err);
		return;
	}
	if (!a || ensure_txn(in) < 0)
		return;
	if (a->store_id < 0 &&
	    us_store_agent_id(in->store, a->name, NULL, &a->store_id, err, sizeof(err)) < 0) {
		us_error("%s", err);
		return;
	}
	switch (us_store_put_envelope(in->store, a->store_id, &env, frame, len, us_now_ns(),
				      err, sizeof(err))) {
	case US_STORE_NEW:
		in->batch_stored++;
		if (env.body_case == UNDERSTUDY__ENVELOPE__BODY_HEARTBEAT)
			note_heartbeat(a, &env);
		break;
	case US_STORE_DUPLICATE:
		in->batch_duplicates++;
		break;
	case US_STORE_ERROR:
		in->stats.store_errors++;
		us_error("%s; %u envelopes of this batch not acked, agents will resend", err,
			 in->npending);
		abort_batch(in);
		return;
	}
	mark_seen(in, a);
	if (a->routing_len != zmq_msg_size(rid) ||
	    memcmp(a->routing_id, zmq_msg_data(rid), a->routing_len) != 0) {
		a->routing_len = (uint8_t)zmq_msg_size(rid);
		memcpy(a->routing_id, zmq_msg_data(rid), a->routing_len);
		a->reconnected = true;
	}
	p = &in->pending[in->npending++];
	p->routing_len = (uint8_t)zmq_msg_size(rid);
	memcpy(p->routing_id, zmq_msg_data(rid), p->routing_len);
	p->agent = a;
	p->seq = env.seq;
	p->received_mono_ns = us_mono_ns();
}

/* Reads one message: [routing id][frame]; anything else is garbage. */
static int receive_one(struct us_ingest *in)
{
	zmq_msg_t rid, body;
	const char *user;
	int rc = 0;

	zmq_msg_init(&rid);
	zmq_msg_init(&body);
	if (zmq_msg_recv(&rid, in->sock, ZMQ_DONTWAIT) < 0) {
		rc = -1;
		goto cleanup;
	}
	in->stats.received++;
	if (!zmq_msg_more(&rid) || zmq_msg_recv(&body, in->sock, 0) < 0) {
		in->stats.refused[US_FRAME_ERR_GARBAGE]++;
		goto cleanup;
	}
	if (zmq_msg_more(&body) || zmq_msg_size(&rid) > ROUTING_ID_MAX) {
		zmq_msg_t extra;

		in->stats.refused[US_FRAME_ERR_GARBAGE]++;
		while (zmq_msg_more(&body)) {
			zmq_msg_init(&extra);
			zmq_msg_recv(&extra, in->sock, 0);
			zmq_msg_close(&body);
			body = extra;
		}
		goto cleanup;
	}
	user = zmq_msg_gets(&body, "User-Id");
	if (!user || !*user) {
		in->stats.refused[US_FRAME_ERR_GARBAGE]++;
		log_refusal(in, NULL, "?", "unauthenticated", "no CURVE user id");
		goto cleanup;
	}
	accept_envelope(in, &rid, user, zmq_msg_data(&body), zmq_msg_size(&body));
cleanup:
	zmq_msg_close(&rid);
	zmq_msg_close(&body);
	return rc;
}

static void save_self_metrics(struct us_ingest *in)
{
	const struct us_ingest_stats *s = &in->stats;

	us_store_put_self_metric(in->store, "envelopes_received", s->received);
	us_store_put_self_metric(in->store, "envelopes_stored", s->stored);
	us_store_put_self_metric(in->store, "envelopes_duplicate", s->duplicates);
	for (int i = 1; i < US_FRAME_ERR_COUNT; i++) {
		char name[64];

		snprintf(name, sizeof(name), "refused_%s", us_frame_err_name((enum us_frame_err)i));
		us_store_put_self_metric(in->store, name, s->refused[i]);
	}
	us_store_put_self_metric(in->store, "refused_future_seq", s->refused_future_seq);
	us_store_put_self_metric(in->store, "refused_identity", s->refused_identity);
	us_store_put_self_metric(in->store, "refused_auth", us_auth_refused(in->auth));
	us_store_put_self_metric(in->store, "store_errors", s->store_errors);
	us_store_put_self_metric(in->store, "acks_sent", s->acks_sent);
	us_store_put_self_metric(in->store, "commits", s->commits);
	us_store_put_self_metric(in->store, "agents_stale", s->agents_stale);
	us_store_put_self_metric(in->store, "commands_sent", s->commands_sent);
	us_store_put_self_metric(in->store, "ack_latency_p99_ns",
				 (uint64_t)us_hist_quantile(&s->ack_latency_ns, 0.99));
}

static int pending_order(const void *a, const void *b)
{
	const struct pending_ack *x = *(const struct pending_ack *const *)a;
	const struct pending_ack *y = *(const struct pending_ack *const *)b;
	int c;

	if (x->agent != y->agent)
		return x->agent < y->agent ? -1 : 1;
	if (x->routing_len != y->routing_len)
		return x->routing_len < y->routing_len ? -1 : 1;
	c = memcmp(x->routing_id, y->routing_id, x->routing_len);
	if (c)
		return c;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int same_peer(const struct pending_ack *x, const struct pending_ack *y)
{
	return x->agent == y->agent && x->routing_len == y->routing_len &&
	       memcmp(x->routing_id, y->routing_id, x->routing_len) == 0;
}

/* Sends one Ack of seq ranges to one connection; a peer gone since is fine:
 * it resends and the store de-duplicates. */
static void send_ranges(struct us_ingest *in, const struct pending_ack *p,
			const struct us_ack_range *ranges, size_t n)
{
	if (us_ack_encode_ranges(&in->codec, p->agent->name, ranges, n, &in->ack_frame) < 0)
		return;
	if (zmq_send(in->sock, p->routing_id, p->routing_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 ||
	    zmq_send(in->sock, in->ack_frame.data, in->ack_frame.len, ZMQ_DONTWAIT) < 0)
		return;
	in->stats.acks_sent++;
}

/* One Ack per connection per batch, its seqs folded into ranges. */
static void send_acks(struct us_ingest *in)
{
	uint64_t now = us_mono_ns();
	size_t nranges = 0;

	for (uint32_t i = 0; i < in->npending; i++) {
		in->order[i] = &in->pending[i];
		us_hist_record(&in->stats.ack_latency_ns, now - in->pending[i].received_mono_ns);
	}
	qsort(in->order, in->npending, sizeof(in->order[0]), pending_order);
	for (uint32_t i = 0; i < in->npending; i++) {
		const struct pending_ack *p = in->order[i];

		if (nranges && p->seq <= in->ranges[nranges - 1].last + 1)
			in->ranges[nranges - 1].last = p->seq > in->ranges[nranges - 1].last ?
						       p->seq : in->ranges[nranges - 1].last;
		else
			in->ranges[nranges++] = (struct us_ack_range){ p->seq, p->seq };
		if (i + 1 == in->npending || !same_peer(p, in->order[i + 1]) ||
		    nranges == US_ACK_MAX_RANGES) {
			send_ranges(in, p, in->ranges, nranges);
			nranges = 0;
		}
	}
	in->npending = 0;
}

static void commit_batch(struct us_ingest *in)
{
	char err[512];

	if (!in->in_txn)
		return;
	in->in_txn = 0;
	if (us_store_commit(in->store, err, sizeof(err)) < 0) {
		/* nothing of this batch is acked: the agents keep and resend it */
		us_error("%s; %u envelopes not acked, agents will resend", err, in->npending);
		in->stats.store_errors++;
		abort_batch(in);
		return;
	}
	in->stats.commits++;
	in->stats.stored += in->batch_stored;
	in->stats.duplicates += in->batch_duplicates;
	in->batch_stored = in->batch_duplicates = 0;
	send_acks(in);
}

static void check_stale(struct us_ingest *in)
{
	uint64_t now = us_mono_ns();

	for (int i = 0; i < AGENT_BUCKETS; i++) {
		for (struct agent *a = in->agents[i]; a; a = a->next) {
			if (a->stale || a->store_id < 0 ||
			    now - a->last_seen_mono_ns < in->cfg.heartbeat_timeout_ns)
				continue;
			a->stale = 1;
			in->stats.agents_stale++;
			us_warn("agent %s is stale: nothing for %llu s", a->name,
				(unsigned long long)((now - a->last_seen_mono_ns) / US_NS_PER_SEC));
			if (ensure_txn(in) == 0)
				us_store_set_agent_state(in->store, a->store_id, "stale", 0);
		}
	}
}

struct command_send {
	struct us_ingest *in;
	struct agent *agent;
};

static void send_command(void *ctx, const struct us_store_command *c)
{
	struct command_send *cs = ctx;
	struct us_ingest *in = cs->in;
	Understudy__Command cmd = UNDERSTUDY__COMMAND__INIT;
	Understudy__StartMirror start = UNDERSTUDY__START_MIRROR__INIT;
	Understudy__StopMirror stop = UNDERSTUDY__STOP_MIRROR__INIT;
	Understudy__ReloadConfig reload = UNDERSTUDY__RELOAD_CONFIG__INIT;
	Understudy__ReportNow report = UNDERSTUDY__REPORT_NOW__INIT;
	char err[256];

	cmd.agent_id = (char *)c->agent;
	cmd.id = (uint64_t)c->id;
	cmd.expires_unix_ns = c->expires_ns;
	if (strcmp(c->action, "start_mirror") == 0) {
		start.workload = (char *)(c->workload ? c->workload : "");
		start.endpoint = (char *)(c->endpoint ? c->endpoint : "");
		start.sample = c->sample;
		start.scale = c->scale;
		cmd.action_case = UNDERSTUDY__COMMAND__ACTION_START_MIRROR;
		cmd.start_mirror = &start;
	} else if (strcmp(c->action, "stop_mirror") == 0) {
		stop.workload = (char *)(c->workload ? c->workload : "");
		cmd.action_case = UNDERSTUDY__COMMAND__ACTION_STOP_MIRROR;
		cmd.stop_mirror = &stop;
	} else if (strcmp(c->action, "reload_config") == 0) {
		cmd.action_case = UNDERSTUDY__COMMAND__ACTION_RELOAD_CONFIG;
		cmd.reload_config = &reload;
	} else {
		cmd.action_case = UNDERSTUDY__COMMAND__ACTION_REPORT_NOW;
		cmd.report_now = &report;
	}
	if (us_command_encode(&in->codec, &cmd, &in->ack_frame, err, sizeof(err)) < 0) {
		us_error("command %lld for %s: %s", (long long)c->id, c->agent, err);
		return;
	}
	/* an agent gone since gets it again after the retry interval */
	if (zmq_send(in->sock, cs->agent->routing_id, cs->agent->routing_len,
		     ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 ||
	    zmq_send(in->sock, in->ack_frame.data, in->ack_frame.len, ZMQ_DONTWAIT) < 0)
		return;
	in->stats.commands_sent++;
	us_debug("sent command %lld (%s) to %s", (long long)c->id, c->action, c->agent);
}

/* Sends each connected agent its pending commands: at once after it
 * (re)connects, else those unanswered for command_retry. */
static void dispatch_commands(struct us_ingest *in)
{
	uint64_t now = us_now_ns();
	int expired = us_store_commands_expire(in->store, now);

	if (expired > 0)
		us_warn("%d agent commands expired without a result", expired);
	for (int i = 0; i < AGENT_BUCKETS; i++) {
		for (struct agent *a = in->agents[i]; a; a = a->next) {
			struct command_send cs = { in, a };

			if (!a->routing_len || a->stale)
				continue;
			us_store_commands_due(in->store, a->name, now,
					      a->reconnected ? 0 : in->cfg.command_retry_ns,
					      send_command, &cs);
			a->reconnected = false;
		}
	}
}

static void housekeeping(struct us_ingest *in)
{
	uint64_t now = us_mono_ns();

	if (now < in->next_housekeeping_ns)
		return;
	in->next_housekeeping_ns = now + US_NS_PER_SEC;
	check_stale(in);
	if (ensure_txn(in) == 0) {
		dispatch_commands(in);
		save_self_metrics(in);
	}
}

int us_ingest_run(struct us_ingest *in, int timeout_ms)
{
	zmq_pollitem_t items[2] = {
		{ .socket = in->sock, .events = ZMQ_POLLIN },
		{ .socket = us_auth_socket(in->auth), .events = ZMQ_POLLIN },
	};

	if (zmq_poll(items, 2, timeout_ms) < 0)
		return zmq_errno() == EINTR ? 0 : -1;
	if (items[1].revents & ZMQ_POLLIN)
		us_auth_handle(in->auth);
	/* take what is queued, up to a batch, then make it durable and ack:
	 * at low rates each envelope commits alone, at high rates they share */
	while (in->npending < in->cfg.batch_max && receive_one(in) == 0)
		;
	housekeeping(in);
	commit_batch(in);
	return 0;
}

void us_ingest_flush(struct us_ingest *in)
{
	if (ensure_txn(in) == 0)
		save_self_metrics(in);
	commit_batch(in);
}

const struct us_ingest_stats *us_ingest_get_stats(const struct us_ingest *in)
{
	return &in->stats;
}
