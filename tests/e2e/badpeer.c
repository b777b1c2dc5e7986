/* badpeer: an authenticated agent that misbehaves. Sends, over a real CURVE
 * DEALER connection, one of each kind of bad frame the coordinator must
 * refuse and survive (request batches included), then a valid envelope and its replay, and checks both
 * are acked on the same connection. Used by e2e_bad_input.sh, which checks
 * the coordinator's self-metrics and log. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zmq.h>

#include "clock.h"
#include "envelope.h"
#include "keys.h"

static void *sock;
static struct us_codec codec;

static void send_raw(const char *what, const void *data, size_t len)
{
	printf("sending %s (%zu bytes)\n", what, len);
	if (zmq_send(sock, data, len, 0) < 0) {
		fprintf(stderr, "send %s: %s\n", what, zmq_strerror(zmq_errno()));
		exit(1);
	}
}

static void send_frame(const char *what, enum us_frame_type type, uint8_t flags,
		       const void *body, size_t len)
{
	uint8_t *f = malloc(len + US_FRAME_HDR);

	f[0] = US_FRAME_MAGIC;
	f[1] = (uint8_t)type;
	f[2] = flags;
	f[3] = 0;
	memcpy(f + US_FRAME_HDR, body, len);
	send_raw(what, f, len + US_FRAME_HDR);
	free(f);
}

static void send_envelope(const char *what, Understudy__Envelope *env)
{
	struct us_buf b = { 0 };
	char err[256];

	if (us_envelope_encode(&codec, env, &b, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		exit(1);
	}
	send_raw(what, b.data, b.len);
	us_buf_free(&b);
}

static int wait_ack(const char *agent, uint64_t seq)
{
	zmq_pollitem_t it = { .socket = sock, .events = ZMQ_POLLIN };
	uint64_t deadline = us_mono_ns() + 10 * US_NS_PER_SEC;

	while (us_mono_ns() < deadline) {
		uint8_t buf[512];
		uint64_t got;
		char err[256];
		int n;

		if (zmq_poll(&it, 1, 100) <= 0)
			continue;
		n = zmq_recv(sock, buf, sizeof(buf), 0);
		if (n > 0 && us_ack_decode(&codec, buf, (size_t)n, agent, &got, err, sizeof(err)) == 0 &&
		    got == seq)
			return 0;
	}
	return -1;
}

int main(int argc, char **argv)
{
	Understudy__Envelope env = UNDERSTUDY__ENVELOPE__INIT;
	Understudy__Heartbeat hb = UNDERSTUDY__HEARTBEAT__INIT;
	Understudy__MetricBatch mb = UNDERSTUDY__METRIC_BATCH__INIT;
	Understudy__Histogram h = UNDERSTUDY__HISTOGRAM__INIT, *hp = &h;
	Understudy__RequestBatch rb = UNDERSTUDY__REQUEST_BATCH__INIT;
	Understudy__RequestSample rs = UNDERSTUDY__REQUEST_SAMPLE__INIT, *rsp = &rs;
	uint32_t idx[2] = { 5, 0 };  /* delta 0: the same bucket twice */
	uint64_t cnt[2] = { 1, 1 };
	struct us_keypair kp;
	char server[US_Z85_KEY_LEN + 1], err[512];
	void *ctx = zmq_ctx_new();
	uint64_t seq = us_now_ns() / 1000;
	struct us_buf good = { 0 };
	static uint8_t big[5u << 20];

	if (argc != 5) {
		fprintf(stderr, "usage: badpeer ENDPOINT KEY SERVER_PUB AGENT_ID\n");
		return 2;
	}
	if (us_keys_load_pair(argv[2], &kp, err, sizeof(err)) < 0 ||
	    us_keys_load_public(argv[3], server, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		return 2;
	}
	sock = zmq_socket(ctx, ZMQ_DEALER);
	zmq_setsockopt(sock, ZMQ_CURVE_SERVERKEY, server, US_Z85_KEY_LEN);
	zmq_setsockopt(sock, ZMQ_CURVE_PUBLICKEY, kp.public_key, US_Z85_KEY_LEN);
	zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, kp.secret_key, US_Z85_KEY_LEN);
	if (zmq_connect(sock, argv[1]) != 0)
		return 1;

	send_raw("garbage bytes", "\xde\xad\xbe\xef garbage", 13);
	send_frame("ack frame sent to the coordinator", US_FRAME_ACK, 0, "x", 1);
	send_frame("truncated protobuf", US_FRAME_ENVELOPE, 0, "\x0a\x40\x61\x62", 4);
	send_frame("corrupt zlib body", US_FRAME_ENVELOPE, US_FRAME_FLAG_ZLIB, "\x78\x9c\xff\xff\xff", 5);
	memset(big, 'a', sizeof(big));
	send_frame("oversized frame (5 MiB)", US_FRAME_ENVELOPE, 0, big, sizeof(big));
	{
		/* 5 MiB of zeros compress to a few KiB: a small frame that inflates too far */
		uLongf clen = compressBound(sizeof(big));
		uint8_t *z = malloc(clen);

		memset(big, 0, sizeof(big));
		compress2(z, &clen, big, sizeof(big), 9);
		send_frame("zlib bomb (inflates past 4 MiB)", US_FRAME_ENVELOPE, US_FRAME_FLAG_ZLIB, z, clen);
		free(z);
	}
	env.agent_id = argv[4];
	env.body_case = UNDERSTUDY__ENVELOPE__BODY_HEARTBEAT;
	env.heartbeat = &hb;
	env.sent_unix_ns = us_now_ns();

	env.schema_version = 99;
	env.seq = seq;
	send_envelope("wrong schema version", &env);
	env.schema_version = US_SCHEMA_VERSION;

	env.seq = seq + 10ull * 86400 * 1000000; /* ten days ahead of the clock */
	send_envelope("seq from the future", &env);

	env.agent_id = "someone-else";
	env.seq = seq;
	send_envelope("another agent's id", &env);
	env.agent_id = argv[4];

	h.metric = "lies";
	h.sub_bucket_bits = 5;
	h.bucket_index = idx;
	h.n_bucket_index = 2;
	h.bucket_count = cnt;
	h.n_bucket_count = 2;
	h.count = 2;
	mb.workload = "w";
	mb.histograms = &hp;
	mb.n_histograms = 1;
	env.body_case = UNDERSTUDY__ENVELOPE__BODY_METRIC_BATCH;
	env.metric_batch = &mb;
	send_envelope("histogram with unsorted buckets", &env);

	rs.start_ns = us_now_ns();
	rs.end_ns = rs.start_ns + 1000;
	rb.samples = &rsp;
	rb.n_samples = 1;
	rb.workload = "";
	env.body_case = UNDERSTUDY__ENVELOPE__BODY_REQUEST_BATCH;
	env.request_batch = &rb;
	send_envelope("request batch without a workload", &env);
	rb.workload = "w";
	rs.end_ns = rs.start_ns - 1;
	send_envelope("request sample ending before it starts", &env);

	/* body members share a union: point it back at the heartbeat */
	env.body_case = UNDERSTUDY__ENVELOPE__BODY_HEARTBEAT;
	env.heartbeat = &hb;
	env.seq = seq;
	if (us_envelope_encode(&codec, &env, &good, err, sizeof(err)) < 0)
		return 1;
	send_raw("valid heartbeat", good.data, good.len);
	if (wait_ack(argv[4], seq) < 0) {
		fprintf(stderr, "no ack for the valid envelope: the connection did not survive\n");
		return 1;
	}
	printf("valid envelope acked\n");
	send_raw("replay of the valid heartbeat", good.data, good.len);
	us_buf_free(&good);
	if (wait_ack(argv[4], seq) < 0) {
		fprintf(stderr, "no ack for the replay\n");
		return 1;
	}
	printf("replay acked (de-duplicated)\n");

	zmq_close(sock);
	zmq_ctx_term(ctx);
	us_codec_free(&codec);
	return 0;
}
