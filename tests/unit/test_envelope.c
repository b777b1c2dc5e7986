/* Unit tests for lib/frame and lib/envelope: round trips of every body type,
 * when bodies are compressed, codec reuse, every refusal class of
 * us_envelope_decode (with the size limits at their exact boundaries), the
 * Ack codec and agent id rules. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "envelope.h"
#include "frame.h"
#include "hist.h"

#define AGENT "agent-7.prod_eu-1"

/* Per-test state, released in teardown so that a failing assertion (which
 * longjmps out of the test) leaks nothing. */
static struct us_codec codec;
static struct us_buf frame, frame2;
static Understudy__Envelope *dec;
static uint8_t *big;
static char err[512];

static int setup(void **state)
{
	us_codec_init(&codec);
	memset(&frame, 0, sizeof(frame));
	memset(&frame2, 0, sizeof(frame2));
	dec = NULL;
	big = NULL;
	err[0] = '\0';
	return 0;
}

static int teardown(void **state)
{
	us_envelope_free(dec);
	dec = NULL;
	us_codec_free(&codec);
	us_buf_free(&frame);
	us_buf_free(&frame2);
	free(big);
	big = NULL;
	return 0;
}

#define TEST(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

/* ---- fixtures ---------------------------------------------------------- */

static void env_init(Understudy__Envelope *e, uint64_t seq)
{
	understudy__envelope__init(e);
	e->agent_id = AGENT;
	e->seq = seq;
	e->sent_unix_ns = 1700000000123456789ull;
	e->schema_version = US_SCHEMA_VERSION;
}

struct hello_fx {
	Understudy__Envelope env;
	Understudy__Hello hello;
	Understudy__Workload w[2];
	Understudy__Workload *wp[2];
	Understudy__Label l[3];
	Understudy__Label *lp[3];
	uint32_t ports[3];
};

static void hello_fx(struct hello_fx *f, uint64_t seq)
{
	static const uint32_t ports[3] = { 8080, 8443, 65535 };

	env_init(&f->env, seq);
	understudy__hello__init(&f->hello);
	f->hello.hostname = "db-1.example.com";
	f->hello.kernel_release = "6.1.0-18-amd64";
	f->hello.agent_version = "0.1.0";
	f->hello.boot_id = "6e0f3a38-8f0c-4d8e-9d1b-6a5c7e2f9b10";
	for (int i = 0; i < 3; i++) {
		understudy__label__init(&f->l[i]);
		f->lp[i] = &f->l[i];
	}
	f->l[0].key = "team";
	f->l[0].value = "payments";
	f->l[1].key = "tier";
	f->l[1].value = "web";
	f->l[2].key = "note";
	f->l[2].value = ""; /* empty value survives as empty */
	memcpy(f->ports, ports, sizeof(ports));
	for (int i = 0; i < 2; i++) {
		understudy__workload__init(&f->w[i]);
		f->wp[i] = &f->w[i];
	}
	f->w[0].name = "checkout-api";
	f->w[0].role = UNDERSTUDY__ROLE__PRODUCTION;
	f->w[0].cgroup_id = 0x123456789abcull;
	f->w[0].cgroup_path = "/sys/fs/cgroup/system.slice/checkout.service";
	f->w[0].n_ports = 3;
	f->w[0].ports = f->ports;
	f->w[0].n_labels = 3;
	f->w[0].labels = f->lp;
	f->w[1].name = "checkout-api-shadow";
	f->w[1].role = UNDERSTUDY__ROLE__SHADOW;
	f->w[1].cgroup_id = 1;
	f->hello.n_workloads = 2;
	f->hello.workloads = f->wp;
	f->env.body_case = UNDERSTUDY__ENVELOPE__BODY_HELLO;
	f->env.hello = &f->hello;
}

#define NHIST 3
struct metric_fx {
	Understudy__Envelope env;
	Understudy__MetricBatch mb;
	struct us_hist src[NHIST];
	Understudy__Histogram h[NHIST];
	Understudy__Histogram *hp[NHIST];
	uint32_t idx[NHIST][US_HIST_BUCKETS];
	uint64_t cnt[NHIST][US_HIST_BUCKETS];
	Understudy__Counter c[3];
	Understudy__Counter *cp[3];
	Understudy__Gauge g[2];
	Understudy__Gauge *gp[2];
};

/* Sparse form written by hand (static arrays), independent of to_proto:
 * non-empty buckets, indices delta-coded as proto/understudy.proto says. */
static void fill_hist(struct metric_fx *f, int k, const char *metric)
{
	size_t n = 0;
	unsigned int prev = 0;

	understudy__histogram__init(&f->h[k]);
	f->h[k].metric = (char *)metric;
	f->h[k].unit = "ns";
	f->h[k].sub_bucket_bits = US_HIST_SUB_BITS;
	for (unsigned int i = 0; i < US_HIST_BUCKETS; i++) {
		if (!f->src[k].buckets[i])
			continue;
		f->idx[k][n] = i - prev;
		prev = i;
		f->cnt[k][n] = f->src[k].buckets[i];
		n++;
	}
	f->h[k].n_bucket_index = f->h[k].n_bucket_count = n;
	f->h[k].bucket_index = f->idx[k];
	f->h[k].bucket_count = f->cnt[k];
	f->h[k].count = f->src[k].count;
	f->h[k].sum = f->src[k].sum;
	f->hp[k] = &f->h[k];
}

static void metric_fx(struct metric_fx *f, uint64_t seq, unsigned int samples)
{
	uint64_t x = 88172645463325252ull;

	env_init(&f->env, seq);
	understudy__metric_batch__init(&f->mb);
	f->mb.workload = "checkout-api";
	f->mb.role = UNDERSTUDY__ROLE__SHADOW;
	f->mb.interval_start_ns = 1700000000000000000ull;
	f->mb.interval_end_ns = 1700000010000000000ull;
	for (int k = 0; k < NHIST; k++)
		us_hist_reset(&f->src[k]);
	for (unsigned int i = 0; i < samples; i++) {
		x ^= x << 13; x ^= x >> 7; x ^= x << 17;
		us_hist_record(&f->src[0], 1000 + x % 5000000);
		us_hist_record(&f->src[1], x >> (x % 64));
	}
	/* src[2] stays empty: an empty histogram is valid */
	fill_hist(f, 0, "request_latency_ns");
	fill_hist(f, 1, "runq_latency_ns");
	fill_hist(f, 2, "block_io_bytes");
	f->mb.n_histograms = NHIST;
	f->mb.histograms = f->hp;
	for (int i = 0; i < 3; i++) {
		understudy__counter__init(&f->c[i]);
		f->cp[i] = &f->c[i];
	}
	f->c[0].metric = "tcp_retransmits";
	f->c[0].unit = "packets";
	f->c[0].value = 17;
	f->c[1].metric = "bytes_out";
	f->c[1].unit = "bytes";
	f->c[1].value = UINT64_MAX;
	f->c[2].metric = "zero";
	f->c[2].value = 0;
	f->mb.n_counters = 3;
	f->mb.counters = f->cp;
	for (int i = 0; i < 2; i++) {
		understudy__gauge__init(&f->g[i]);
		f->gp[i] = &f->g[i];
	}
	f->g[0].metric = "cpu_utilization";
	f->g[0].unit = "ratio";
	f->g[0].value = 0.734375;
	f->g[1].metric = "temperature";
	f->g[1].unit = "celsius";
	f->g[1].value = -17.25e-3;
	f->mb.n_gauges = 2;
	f->mb.gauges = f->gp;
	f->env.body_case = UNDERSTUDY__ENVELOPE__BODY_METRIC_BATCH;
	f->env.metric_batch = &f->mb;
}

#define MAXSAMPLES 400
struct request_fx {
	Understudy__Envelope env;
	Understudy__RequestBatch rb;
	Understudy__RequestSample s[MAXSAMPLES];
	Understudy__RequestSample *sp[MAXSAMPLES];
};

static void request_fx(struct request_fx *f, uint64_t seq, unsigned int n)
{
	assert_true(n <= MAXSAMPLES);
	env_init(&f->env, seq);
	understudy__request_batch__init(&f->rb);
	f->rb.workload = "checkout-api";
	f->rb.role = UNDERSTUDY__ROLE__PRODUCTION;
	for (unsigned int i = 0; i < n; i++) {
		Understudy__RequestSample *s = &f->s[i];

		understudy__request_sample__init(s);
		s->start_ns = 1700000000000000000ull + i * 1000003ull;
		s->latency_ns = 150000 + (i * 7919) % 100000;
		s->end_ns = s->start_ns + s->latency_ns;
		s->status_class = (Understudy__StatusClass)(i % 7);
		s->status_code = i % 7 == 6 ? 0 : 100 * (i % 6) + 0;
		s->bytes_in = 300 + i;
		s->bytes_out = 1 + i * 4096;
		s->connection_id = 1000 + i / 10;
		s->request_index = i % 10;
		s->truncated = i % 13 == 0;
		f->sp[i] = s;
	}
	f->rb.n_samples = n;
	f->rb.samples = f->sp;
	f->env.body_case = UNDERSTUDY__ENVELOPE__BODY_REQUEST_BATCH;
	f->env.request_batch = &f->rb;
}

struct heartbeat_fx {
	Understudy__Envelope env;
	Understudy__Heartbeat hb;
};

static void heartbeat_fx(struct heartbeat_fx *f, uint64_t seq)
{
	env_init(&f->env, seq);
	understudy__heartbeat__init(&f->hb);
	f->hb.spool_dropped_total = 3;
	f->hb.spool_bytes = 1ull << 40;
	f->hb.spool_envelopes = 0;
	f->hb.uptime_ns = UINT64_MAX;
	f->env.body_case = UNDERSTUDY__ENVELOPE__BODY_HEARTBEAT;
	f->env.heartbeat = &f->hb;
}

/* ---- comparisons --------------------------------------------------------- */

static void same_header(const Understudy__Envelope *a, const Understudy__Envelope *b)
{
	assert_string_equal(a->agent_id, b->agent_id);
	assert_true(a->seq == b->seq);
	assert_true(a->sent_unix_ns == b->sent_unix_ns);
	assert_int_equal(a->schema_version, b->schema_version);
	assert_int_equal(a->body_case, b->body_case);
}

static void same_hello(const Understudy__Hello *a, const Understudy__Hello *b)
{
	assert_string_equal(a->hostname, b->hostname);
	assert_string_equal(a->kernel_release, b->kernel_release);
	assert_string_equal(a->agent_version, b->agent_version);
	assert_string_equal(a->boot_id, b->boot_id);
	assert_int_equal(a->n_workloads, b->n_workloads);
	for (size_t i = 0; i < a->n_workloads; i++) {
		const Understudy__Workload *x = a->workloads[i], *y = b->workloads[i];

		assert_string_equal(x->name, y->name);
		assert_int_equal(x->role, y->role);
		assert_true(x->cgroup_id == y->cgroup_id);
		assert_string_equal(x->cgroup_path, y->cgroup_path);
		assert_int_equal(x->n_ports, y->n_ports);
		if (x->n_ports)
			assert_memory_equal(x->ports, y->ports, x->n_ports * sizeof(*x->ports));
		assert_int_equal(x->n_labels, y->n_labels);
		for (size_t j = 0; j < x->n_labels; j++) {
			assert_string_equal(x->labels[j]->key, y->labels[j]->key);
			assert_string_equal(x->labels[j]->value, y->labels[j]->value);
		}
	}
}

static void same_metrics(const struct metric_fx *f, const Understudy__MetricBatch *b)
{
	static struct us_hist back;
	const Understudy__MetricBatch *a = &f->mb;

	assert_string_equal(a->workload, b->workload);
	assert_int_equal(a->role, b->role);
	assert_true(a->interval_start_ns == b->interval_start_ns);
	assert_true(a->interval_end_ns == b->interval_end_ns);
	assert_int_equal(a->n_histograms, b->n_histograms);
	for (size_t i = 0; i < a->n_histograms; i++) {
		assert_string_equal(a->histograms[i]->metric, b->histograms[i]->metric);
		assert_string_equal(a->histograms[i]->unit, b->histograms[i]->unit);
		if (us_hist_from_proto(b->histograms[i], &back, err, sizeof(err)) < 0)
			fail_msg("decoded histogram refused: %s", err);
		assert_memory_equal(&back, &f->src[i], sizeof(back));
	}
	assert_int_equal(a->n_counters, b->n_counters);
	for (size_t i = 0; i < a->n_counters; i++) {
		assert_string_equal(a->counters[i]->metric, b->counters[i]->metric);
		assert_string_equal(a->counters[i]->unit, b->counters[i]->unit);
		assert_true(a->counters[i]->value == b->counters[i]->value);
	}
	assert_int_equal(a->n_gauges, b->n_gauges);
	for (size_t i = 0; i < a->n_gauges; i++) {
		assert_string_equal(a->gauges[i]->metric, b->gauges[i]->metric);
		assert_string_equal(a->gauges[i]->unit, b->gauges[i]->unit);
		assert_memory_equal(&a->gauges[i]->value, &b->gauges[i]->value, sizeof(double));
	}
}

static void same_requests(const Understudy__RequestBatch *a, const Understudy__RequestBatch *b)
{
	assert_string_equal(a->workload, b->workload);
	assert_int_equal(a->role, b->role);
	assert_int_equal(a->n_samples, b->n_samples);
	for (size_t i = 0; i < a->n_samples; i++) {
		const Understudy__RequestSample *x = a->samples[i], *y = b->samples[i];

		assert_true(x->start_ns == y->start_ns);
		assert_true(x->end_ns == y->end_ns);
		assert_true(x->latency_ns == y->latency_ns);
		assert_int_equal(x->status_class, y->status_class);
		assert_int_equal(x->status_code, y->status_code);
		assert_true(x->bytes_in == y->bytes_in);
		assert_true(x->bytes_out == y->bytes_out);
		assert_true(x->connection_id == y->connection_id);
		assert_int_equal(x->request_index, y->request_index);
		assert_int_equal(!!x->truncated, !!y->truncated);
	}
}

static void same_heartbeat(const Understudy__Heartbeat *a, const Understudy__Heartbeat *b)
{
	assert_true(a->spool_dropped_total == b->spool_dropped_total);
	assert_true(a->spool_bytes == b->spool_bytes);
	assert_true(a->spool_envelopes == b->spool_envelopes);
	assert_true(a->uptime_ns == b->uptime_ns);
}

/* ---- helpers ------------------------------------------------------------- */

static void encode_ok(struct us_codec *c, const Understudy__Envelope *e, struct us_buf *out)
{
	if (us_envelope_encode(c, e, out, err, sizeof(err)) < 0)
		fail_msg("encode failed: %s", err);
}

/* Decodes into the global dec (freed in teardown). */
static const Understudy__Envelope *decode_ok(struct us_codec *c, const uint8_t *f, size_t len)
{
	enum us_frame_err why = US_FRAME_ERR_COUNT;

	us_envelope_free(dec);
	err[0] = '\0';
	dec = us_envelope_decode(c, f, len, &why, err, sizeof(err));
	if (!dec)
		fail_msg("decode refused (%s): %s", us_frame_err_name(why), err);
	assert_int_equal(why, US_FRAME_OK);
	return dec;
}

static void refused(struct us_codec *c, const uint8_t *f, size_t len, enum us_frame_err want,
		    const char *want_text)
{
	enum us_frame_err why = US_FRAME_OK;
	Understudy__Envelope *e;

	err[0] = '\0';
	e = us_envelope_decode(c, f, len, &why, err, sizeof(err));
	if (e) {
		us_envelope_free(e);
		fail_msg("accepted, expected %s", us_frame_err_name(want));
	}
	if (why != want)
		fail_msg("refused as %s (%s), expected %s", us_frame_err_name(why), err,
			 us_frame_err_name(want));
	if (!err[0])
		fail_msg("refused as %s without a reason", us_frame_err_name(why));
	if (want_text && !strstr(err, want_text))
		fail_msg("error \"%s\" lacks \"%s\"", err, want_text);
}

static void refused_env(const Understudy__Envelope *e, enum us_frame_err want,
			const char *want_text)
{
	encode_ok(&codec, e, &frame);
	refused(&codec, frame.data, frame.len, want, want_text);
}

/* Encodes e and checks the body is sent plain/compressed as its size says. */
static void check_wire_form(const Understudy__Envelope *e, const struct us_buf *f)
{
	size_t n = understudy__envelope__get_packed_size(e);

	assert_true(f->len >= US_FRAME_HDR);
	assert_int_equal(f->data[0], US_FRAME_MAGIC);
	assert_int_equal(f->data[1], US_FRAME_ENVELOPE);
	assert_int_equal(f->data[3], 0);
	if (n <= US_FRAME_COMPRESS_MIN) {
		assert_int_equal(f->data[2], 0);
		assert_int_equal(f->len, US_FRAME_HDR + n);
	} else {
		assert_int_equal(f->data[2], US_FRAME_FLAG_ZLIB);
		if (f->len >= US_FRAME_HDR + n)
			fail_msg("compressed frame of %zu bytes not smaller than the %zu-byte body",
				 f->len, n);
	}
}

/* ---- round trips --------------------------------------------------------- */

static void test_roundtrip_hello(void **state)
{
	static struct hello_fx f;
	const Understudy__Envelope *d;

	hello_fx(&f, 1);
	encode_ok(&codec, &f.env, &frame);
	check_wire_form(&f.env, &frame);
	d = decode_ok(&codec, frame.data, frame.len);
	same_header(&f.env, d);
	same_hello(&f.hello, d->hello);
	assert_int_equal(d->hello->workloads[1]->n_labels, 0);
	assert_int_equal(d->hello->workloads[0]->ports[2], 65535);
}

static void test_roundtrip_metric_batch(void **state)
{
	static struct metric_fx f;
	const Understudy__Envelope *d;

	for (unsigned int samples = 0; samples <= 100000; samples = samples * 10 + 1) {
		metric_fx(&f, 1000 + samples, samples);
		encode_ok(&codec, &f.env, &frame);
		check_wire_form(&f.env, &frame);
		d = decode_ok(&codec, frame.data, frame.len);
		same_header(&f.env, d);
		same_metrics(&f, d->metric_batch);
	}
	assert_int_equal(frame.data[2], US_FRAME_FLAG_ZLIB); /* the large ones compress */
}

static void test_roundtrip_request_batch(void **state)
{
	static struct request_fx f;
	const Understudy__Envelope *d;
	static const unsigned int sizes[] = { 0, 1, 5, 50, MAXSAMPLES };

	for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		request_fx(&f, UINT64_MAX - k, sizes[k]);
		encode_ok(&codec, &f.env, &frame);
		check_wire_form(&f.env, &frame);
		d = decode_ok(&codec, frame.data, frame.len);
		same_header(&f.env, d);
		same_requests(&f.rb, d->request_batch);
	}
}

static void test_roundtrip_heartbeat(void **state)
{
	static struct heartbeat_fx f;
	const Understudy__Envelope *d;

	heartbeat_fx(&f, 7);
	encode_ok(&codec, &f.env, &frame);
	check_wire_form(&f.env, &frame);
	d = decode_ok(&codec, frame.data, frame.len);
	same_header(&f.env, d);
	same_heartbeat(&f.hb, d->heartbeat);

	/* an all-default heartbeat has an empty body message: still a body */
	understudy__heartbeat__init(&f.hb);
	encode_ok(&codec, &f.env, &frame);
	d = decode_ok(&codec, frame.data, frame.len);
	assert_int_equal(d->body_case, UNDERSTUDY__ENVELOPE__BODY_HEARTBEAT);
	assert_non_null(d->heartbeat);
	assert_true(d->heartbeat->uptime_ns == 0);
}

/* ---- compression ------------------------------------------------------- */

static char host[8192];

/* A Hello envelope whose serialized size is exactly n bytes. */
static void hello_of_size(struct hello_fx *f, size_t n)
{
	size_t len;

	hello_fx(f, 99);
	f->hello.n_workloads = 0;
	f->hello.hostname = host;
	for (len = 0; len < sizeof(host) - 1; len++) {
		memset(host, 'h', len);
		host[len] = '\0';
		if (understudy__envelope__get_packed_size(&f->env) == n)
			return;
	}
	fail_msg("no hostname length gives a %zu-byte envelope", n);
}

static void test_compression_threshold(void **state)
{
	static struct hello_fx f;
	const Understudy__Envelope *d;

	hello_of_size(&f, US_FRAME_COMPRESS_MIN);
	encode_ok(&codec, &f.env, &frame);
	assert_int_equal(frame.data[2], 0);
	assert_int_equal(frame.len, US_FRAME_HDR + US_FRAME_COMPRESS_MIN);
	d = decode_ok(&codec, frame.data, frame.len);
	assert_string_equal(d->hello->hostname, host);

	hello_of_size(&f, US_FRAME_COMPRESS_MIN + 1);
	encode_ok(&codec, &f.env, &frame);
	assert_int_equal(frame.data[2], US_FRAME_FLAG_ZLIB);
	assert_true(frame.len < US_FRAME_HDR + US_FRAME_COMPRESS_MIN + 1);
	d = decode_ok(&codec, frame.data, frame.len);
	assert_string_equal(d->hello->hostname, host);

	/* small ones of every type are plain */
	static struct heartbeat_fx hb;
	heartbeat_fx(&hb, 1);
	encode_ok(&codec, &hb.env, &frame);
	assert_int_equal(frame.data[2], 0);
}

/* One codec for many encodes and decodes, mixing plain, compressed and
 * refused frames, must produce exactly what fresh codecs produce. */
static void test_codec_reuse(void **state)
{
	static struct request_fx rf;
	static struct metric_fx mf;
	static struct hello_fx hf;
	static struct heartbeat_fx bf;
	struct us_codec fresh_enc, fresh_dec;
	struct us_buf *fresh_frame = &frame2;
	static const uint8_t bad_zlib[] = { 'U', 1, 1, 0, 0x78, 0x01, 0xde, 0xad, 0xbe, 0xef };
	const Understudy__Envelope *e;

	for (unsigned int i = 0; i < 240; i++) {
		switch (i % 4) {
		case 0:
			request_fx(&rf, i + 1, (i * 37) % MAXSAMPLES);
			e = &rf.env;
			break;
		case 1:
			metric_fx(&mf, i + 1, (i * 131) % 3000);
			e = &mf.env;
			break;
		case 2:
			hello_fx(&hf, i + 1);
			e = &hf.env;
			break;
		default:
			heartbeat_fx(&bf, i + 1);
			bf.hb.uptime_ns = i;
			e = &bf.env;
			break;
		}
		encode_ok(&codec, e, &frame);
		check_wire_form(e, &frame);

		us_codec_init(&fresh_enc);
		us_codec_init(&fresh_dec);
		if (us_envelope_encode(&fresh_enc, e, fresh_frame, err, sizeof(err)) < 0) {
			us_codec_free(&fresh_enc);
			us_codec_free(&fresh_dec);
			fail_msg("fresh encode: %s", err);
		}
		/* deflate is deterministic: reuse must not change a byte */
		int same = fresh_frame->len == frame.len &&
			   memcmp(fresh_frame->data, frame.data, frame.len) == 0;
		enum us_frame_err why;
		Understudy__Envelope *d2 = us_envelope_decode(&fresh_dec, fresh_frame->data,
							      fresh_frame->len, &why, err, sizeof(err));
		int ok2 = d2 && d2->seq == e->seq && d2->body_case == e->body_case;

		us_envelope_free(d2);
		us_codec_free(&fresh_enc);
		us_codec_free(&fresh_dec);
		if (!same)
			fail_msg("iteration %u: reused codec's frame differs from a fresh codec's", i);
		if (!ok2)
			fail_msg("iteration %u: fresh codec decode failed", i);

		/* decode with the reused codec, interleaved with refusals */
		if (i % 5 == 0)
			refused(&codec, bad_zlib, sizeof(bad_zlib), US_FRAME_ERR_ZLIB, NULL);
		e = decode_ok(&codec, frame.data, frame.len);
		assert_true(dec->seq == i + 1);
		if (i % 4 == 0)
			same_requests(&rf.rb, dec->request_batch);
		else if (i % 4 == 1)
			same_metrics(&mf, dec->metric_batch);
		else if (i % 4 == 2)
			same_hello(&hf.hello, dec->hello);
		else
			same_heartbeat(&bf.hb, dec->heartbeat);
		if (i % 7 == 0) { /* a truncated stream leaves inflate mid-stream */
			if (frame.data[2])
				refused(&codec, frame.data, frame.len - 3, US_FRAME_ERR_ZLIB, NULL);
		}
	}
}

/* ---- refusals -------------------------------------------------------- */

static void test_refuse_garbage_header(void **state)
{
	static struct heartbeat_fx f;
	uint8_t buf[256];
	size_t n;

	refused(&codec, (const uint8_t *)"", 0, US_FRAME_ERR_GARBAGE, "not an understudy frame");
	refused(&codec, (const uint8_t *)"U", 1, US_FRAME_ERR_GARBAGE, NULL);
	refused(&codec, (const uint8_t *)"U\x01\x00", 3, US_FRAME_ERR_GARBAGE, NULL);

	heartbeat_fx(&f, 5);
	encode_ok(&codec, &f.env, &frame);
	assert_true(frame.len <= sizeof(buf));
	n = frame.len;
#define MUTATED(pos, val, ...)                                   \
	do {                                                     \
		memcpy(buf, frame.data, n);                      \
		buf[pos] = (val);                                \
		refused(&codec, buf, n, US_FRAME_ERR_GARBAGE, __VA_ARGS__); \
	} while (0)
	MUTATED(0, 'u', "header 75 01 00 00");  /* bad magic */
	MUTATED(0, 0, NULL);
	MUTATED(1, 0, "header 55 00 00 00");    /* unknown type */
	MUTATED(1, 3, NULL);
	MUTATED(1, 0xff, NULL);
	MUTATED(2, 0x02, "header 55 01 02 00"); /* unknown flag bits */
	MUTATED(2, 0x80, NULL);
	MUTATED(2, 0x03, NULL);                 /* zlib plus an unknown bit */
	MUTATED(3, 1, "header 55 01 00 01");    /* reserved byte */
	MUTATED(3, 0xff, NULL);
#undef MUTATED
	/* the untouched frame is fine */
	decode_ok(&codec, frame.data, frame.len);
}

static void test_refuse_ack_frame(void **state)
{
	assert_int_equal(us_ack_encode(&codec, AGENT, 12, &frame), 0);
	refused(&codec, frame.data, frame.len, US_FRAME_ERR_GARBAGE, "where an envelope was expected");
}

static void test_refuse_bad_protobuf(void **state)
{
	static struct hello_fx f;
	static const uint8_t junk[] = { 'U', 1, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
	static const uint8_t field0[] = { 'U', 1, 0, 0, 0x00, 0x01 };
	static const uint8_t wiretype7[] = { 'U', 1, 0, 0, 0x0f, 0x01 };
	size_t hello_len;

	hello_fx(&f, 3);
	encode_ok(&codec, &f.env, &frame);
	assert_int_equal(frame.data[2], 0); /* plain, so a cut cuts the protobuf */
	hello_len = understudy__hello__get_packed_size(&f.hello);
	/* every cut inside the trailing Hello submessage */
	for (size_t cut = 1; cut <= hello_len; cut++)
		refused(&codec, frame.data, frame.len - cut, US_FRAME_ERR_PROTO, "not a valid Envelope");
	refused(&codec, junk, sizeof(junk), US_FRAME_ERR_PROTO, NULL);
	refused(&codec, field0, sizeof(field0), US_FRAME_ERR_PROTO, NULL);
	refused(&codec, wiretype7, sizeof(wiretype7), US_FRAME_ERR_PROTO, NULL);

	/* a compressed body that inflates to a truncated protobuf */
	static struct request_fx r;
	uLongf zlen = compressBound(200000);

	request_fx(&r, 3, MAXSAMPLES);
	encode_ok(&codec, &r.env, &frame);
	size_t plain = understudy__envelope__get_packed_size(&r.env);
	big = malloc(US_FRAME_HDR + zlen + plain);
	assert_non_null(big);
	uint8_t *pb = big + US_FRAME_HDR + zlen;
	understudy__envelope__pack(&r.env, pb);
	assert_int_equal(compress2(big + US_FRAME_HDR, &zlen, pb, plain - 10, 1), Z_OK);
	memcpy(big, "U\x01\x01\x00", 4);
	refused(&codec, big, US_FRAME_HDR + zlen, US_FRAME_ERR_PROTO, NULL);
}

/* Field number 0 is invalid in every protobuf encoding. protobuf-c 1.4.1
 * refuses it as the single-byte tag 0x0N, but parse_tag_and_wiretype only
 * checks the first byte, so the same tag written as an overlong varint
 * (0x80 0x00) is accepted and kept as an unknown field with tag 0. Re-packing
 * that envelope writes the tag as 0x00, which unpack then refuses: an
 * accepted envelope that does not survive a re-encode. us_envelope_decode
 * should classify both spellings as US_FRAME_ERR_PROTO. Found by
 * tests/fuzz/fuzz_envelope. */
static void test_refuse_field_number_zero(void **state)
{
	static struct heartbeat_fx f;
	enum us_frame_err why = US_FRAME_OK, why2 = US_FRAME_OK;
	Understudy__Envelope *again;
	uint8_t buf[128];
	size_t n;

	heartbeat_fx(&f, 5);
	encode_ok(&codec, &f.env, &frame);
	assert_int_equal(frame.data[2], 0);
	n = frame.len;
	assert_true(n + 3 <= sizeof(buf));
	memcpy(buf, frame.data, n);
	memcpy(buf + n, "\x00\x00", 2); /* field 0, varint, value 0 */
	refused(&codec, buf, n + 2, US_FRAME_ERR_PROTO, NULL);
	memcpy(buf + n, "\x80\x00\x00", 3); /* the same, tag as a 2-byte varint */
	dec = us_envelope_decode(&codec, buf, n + 3, &why, err, sizeof(err));
	if (dec) {
		encode_ok(&codec, dec, &frame2);
		again = us_envelope_decode(&codec, frame2.data, frame2.len, &why2, err, sizeof(err));
		int ok = again != NULL;

		us_envelope_free(again);
		fail_msg("field number 0 (tag bytes 80 00) accepted; its re-encoding is %s%s",
			 ok ? "accepted" : "refused as ", ok ? "" : us_frame_err_name(why2));
	}
	assert_int_equal(why, US_FRAME_ERR_PROTO);
}

static void test_refuse_bad_zlib(void **state)
{
	static struct request_fx f;
	uint8_t *buf;
	size_t n;

	request_fx(&f, 11, MAXSAMPLES);
	encode_ok(&codec, &f.env, &frame);
	assert_int_equal(frame.data[2], US_FRAME_FLAG_ZLIB);
	n = frame.len;
	big = buf = malloc(n + 64);
	assert_non_null(buf);

	/* corrupt zlib header */
	memcpy(buf, frame.data, n);
	buf[US_FRAME_HDR] ^= 0xff;
	refused(&codec, buf, n, US_FRAME_ERR_ZLIB, "zlib");
	/* corrupt deflate data in the middle */
	memcpy(buf, frame.data, n);
	for (size_t i = n / 2; i < n / 2 + 16; i++)
		buf[i] ^= 0x5a;
	refused(&codec, buf, n, US_FRAME_ERR_ZLIB, "zlib");
	/* corrupt adler32 trailer */
	memcpy(buf, frame.data, n);
	buf[n - 1] ^= 1;
	refused(&codec, buf, n, US_FRAME_ERR_ZLIB, "zlib");
	/* flag set on a plain body */
	memcpy(buf, frame.data, n);
	refused(&codec, (const uint8_t *)"U\x01\x01\x00hello", 9, US_FRAME_ERR_ZLIB, "zlib");

	/* truncated streams, at every length */
	for (size_t cut = 1; cut < n - US_FRAME_HDR; cut += (cut < 64 ? 1 : 97))
		refused(&codec, frame.data, n - cut, US_FRAME_ERR_ZLIB, "zlib");
	refused(&codec, frame.data, US_FRAME_HDR, US_FRAME_ERR_ZLIB, "zlib"); /* empty */
	refused(&codec, frame.data, US_FRAME_HDR + 1, US_FRAME_ERR_ZLIB, "truncated");

	/* trailing bytes after the end of the stream */
	memcpy(buf, frame.data, n);
	memcpy(buf + n, "xyz", 3);
	refused(&codec, buf, n + 3, US_FRAME_ERR_ZLIB, "3 trailing bytes");
	memcpy(buf + n, frame.data + US_FRAME_HDR, 40); /* a second stream's start */
	refused(&codec, buf, n + 40, US_FRAME_ERR_ZLIB, "trailing");
	buf[n] = 0;
	refused(&codec, buf, n + 1, US_FRAME_ERR_ZLIB, "1 trailing byte");

	/* and the codec still works */
	decode_ok(&codec, frame.data, frame.len);
	same_requests(&f.rb, dec->request_batch);
}

/* A zlib frame whose body inflates to n bytes of zeros. */
static size_t zero_bomb(size_t n)
{
	uint8_t *zeros = calloc(1, n);
	uLongf zlen = compressBound(n);

	assert_non_null(zeros);
	free(big);
	big = malloc(US_FRAME_HDR + zlen);
	if (!big || compress2(big + US_FRAME_HDR, &zlen, zeros, n, 9) != Z_OK) {
		free(zeros);
		fail_msg("compress2 failed");
	}
	free(zeros);
	memcpy(big, "U\x01\x01\x00", 4);
	return US_FRAME_HDR + zlen;
}

static void test_refuse_oversize(void **state)
{
	enum us_frame_type type;
	const uint8_t *body;
	size_t body_len, n;

	/* on the wire: one byte over the limit, before the header is even read */
	big = calloc(1, US_FRAME_HDR + US_FRAME_MAX + 1);
	assert_non_null(big);
	memcpy(big, "U\x01\x00\x00", 4);
	refused(&codec, big, US_FRAME_HDR + US_FRAME_MAX + 1, US_FRAME_ERR_OVERSIZE, "exceeds");
	refused(&codec, big, SIZE_MAX, US_FRAME_ERR_OVERSIZE, NULL); /* length only */
	/* exactly at the limit passes the size check (zeros are no Envelope) */
	refused(&codec, big, US_FRAME_HDR + US_FRAME_MAX, US_FRAME_ERR_PROTO, NULL);
	assert_int_equal(us_frame_unpack(&codec, big, US_FRAME_HDR + US_FRAME_MAX, &type, &body,
					 &body_len, err, sizeof(err)), US_FRAME_OK);
	assert_int_equal(body_len, US_FRAME_MAX);

	/* inflated: a few KiB that inflate to one byte over the limit */
	n = zero_bomb(US_FRAME_MAX + 1);
	assert_true(n < 16384);
	refused(&codec, big, n, US_FRAME_ERR_OVERSIZE, "inflates beyond");
	n = zero_bomb(16u << 20);
	refused(&codec, big, n, US_FRAME_ERR_OVERSIZE, "inflates beyond");
	/* inflating to exactly the limit is fine */
	n = zero_bomb(US_FRAME_MAX);
	assert_int_equal(us_frame_unpack(&codec, big, n, &type, &body, &body_len, err, sizeof(err)),
			 US_FRAME_OK);
	assert_int_equal(type, US_FRAME_ENVELOPE);
	assert_int_equal(body_len, US_FRAME_MAX);
	refused(&codec, big, n, US_FRAME_ERR_PROTO, NULL);
	n = zero_bomb(US_FRAME_MAX - 1);
	assert_int_equal(us_frame_unpack(&codec, big, n, &type, &body, &body_len, err, sizeof(err)),
			 US_FRAME_OK);
	assert_int_equal(body_len, US_FRAME_MAX - 1);
}

/* The largest envelope allowed goes through, compressed or plain. */
static void test_limit_envelope_roundtrip(void **state)
{
	static Understudy__Envelope e;
	Understudy__Hello hello = UNDERSTUDY__HELLO__INIT;
	size_t n;
	const Understudy__Envelope *d;

	big = malloc(US_FRAME_MAX + 1);
	assert_non_null(big);
	env_init(&e, 1);
	e.body_case = UNDERSTUDY__ENVELOPE__BODY_HELLO;
	e.hello = &hello;
	hello.hostname = (char *)big;
	/* find the hostname length that makes the envelope exactly US_FRAME_MAX */
	n = US_FRAME_MAX - 64;
	memset(big, 'a', US_FRAME_MAX);
	for (;; n++) {
		big[n] = '\0';
		if (understudy__envelope__get_packed_size(&e) >= US_FRAME_MAX)
			break;
		big[n] = 'a';
	}
	assert_int_equal(understudy__envelope__get_packed_size(&e), US_FRAME_MAX);
	encode_ok(&codec, &e, &frame);
	assert_int_equal(frame.data[2], US_FRAME_FLAG_ZLIB);
	d = decode_ok(&codec, frame.data, frame.len);
	assert_int_equal(strlen(d->hello->hostname), n);

	/* one byte more and the encoder refuses */
	big[n] = 'a';
	big[n + 1] = '\0';
	assert_int_equal(understudy__envelope__get_packed_size(&e), US_FRAME_MAX + 1);
	assert_int_equal(us_envelope_encode(&codec, &e, &frame, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "over the 4194304-byte limit"));
}

static void test_frame_pack_limits(void **state)
{
	enum us_frame_type type;
	const uint8_t *body;
	size_t body_len;

	big = calloc(1, US_FRAME_MAX + 1);
	assert_non_null(big);
	assert_int_equal(us_frame_pack(&codec, US_FRAME_ENVELOPE, big, US_FRAME_MAX + 1, &frame,
				       err, sizeof(err)), -1);
	assert_non_null(strstr(err, "exceeds"));
	assert_int_equal(frame.len, 0);
	/* at the limit it packs, and compressed, unpacks to the same bytes */
	big[12345] = 7;
	assert_int_equal(us_frame_pack(&codec, US_FRAME_ENVELOPE, big, US_FRAME_MAX, &frame,
				       err, sizeof(err)), 0);
	assert_int_equal(frame.data[2], US_FRAME_FLAG_ZLIB);
	assert_int_equal(us_frame_unpack(&codec, frame.data, frame.len, &type, &body, &body_len,
					 err, sizeof(err)), US_FRAME_OK);
	assert_int_equal(body_len, US_FRAME_MAX);
	assert_memory_equal(body, big, US_FRAME_MAX);
	/* an empty body is a 4-byte frame */
	assert_int_equal(us_frame_pack(&codec, US_FRAME_ACK, NULL, 0, &frame, err, sizeof(err)), 0);
	assert_int_equal(frame.len, US_FRAME_HDR);
	assert_memory_equal(frame.data, "U\x02\x00\x00", 4);
	assert_int_equal(us_frame_unpack(&codec, frame.data, frame.len, &type, &body, &body_len,
					 err, sizeof(err)), US_FRAME_OK);
	assert_int_equal(type, US_FRAME_ACK);
	assert_int_equal(body_len, 0);
	/* names of the refusal classes */
	assert_string_equal(us_frame_err_name(US_FRAME_OK), "ok");
	assert_string_equal(us_frame_err_name(US_FRAME_ERR_ZLIB), "bad_zlib");
	assert_string_equal(us_frame_err_name(US_FRAME_ERR_COUNT), "unknown");
	assert_string_equal(us_frame_err_name((enum us_frame_err)-1), "unknown");
}

static void test_refuse_schema(void **state)
{
	static struct heartbeat_fx f;

	heartbeat_fx(&f, 1);
	f.env.schema_version = 2;
	refused_env(&f.env, US_FRAME_ERR_SCHEMA, "schema version 2");
	f.env.schema_version = 0;
	refused_env(&f.env, US_FRAME_ERR_SCHEMA, "schema version 0");
	f.env.schema_version = UINT32_MAX;
	refused_env(&f.env, US_FRAME_ERR_SCHEMA, NULL);
	/* schema is checked before the rest: seq 0 with a bad schema is SCHEMA */
	f.env.seq = 0;
	refused_env(&f.env, US_FRAME_ERR_SCHEMA, NULL);
	/* an empty plain frame is an envelope with schema 0 */
	refused(&codec, (const uint8_t *)"U\x01\x00\x00", 4, US_FRAME_ERR_SCHEMA, NULL);
}

static void test_refuse_invalid(void **state)
{
	static struct heartbeat_fx f;
	static struct metric_fx m;
	static char long_id[US_AGENT_ID_MAX + 2];
	static const char *const bad_ids[] = { "", "a/b", "../etc", ".hidden", "a b", "a\\b",
					       "caf\xc3\xa9", "x:y" };

	heartbeat_fx(&f, 1);
	f.env.seq = 0;
	refused_env(&f.env, US_FRAME_ERR_INVALID, "seq 0");
	f.env.seq = 1;

	for (size_t i = 0; i < sizeof(bad_ids) / sizeof(bad_ids[0]); i++) {
		f.env.agent_id = (char *)bad_ids[i];
		refused_env(&f.env, US_FRAME_ERR_INVALID, "invalid agent_id");
	}
	memset(long_id, 'a', US_AGENT_ID_MAX + 1);
	f.env.agent_id = long_id;
	refused_env(&f.env, US_FRAME_ERR_INVALID, "invalid agent_id");
	long_id[US_AGENT_ID_MAX] = '\0';
	encode_ok(&codec, &f.env, &frame);
	decode_ok(&codec, frame.data, frame.len);
	assert_int_equal(strlen(dec->agent_id), US_AGENT_ID_MAX);
	f.env.agent_id = AGENT;

	f.env.body_case = UNDERSTUDY__ENVELOPE__BODY__NOT_SET;
	refused_env(&f.env, US_FRAME_ERR_INVALID, "no body");

	metric_fx(&m, 9, 100);
	m.mb.workload = "";
	refused_env(&m.env, US_FRAME_ERR_INVALID, "empty workload");
	m.mb.workload = "checkout-api";
	m.mb.interval_end_ns = m.mb.interval_start_ns - 1;
	refused_env(&m.env, US_FRAME_ERR_INVALID, "interval ends before it starts");
	m.mb.interval_end_ns = m.mb.interval_start_ns; /* an empty interval is fine */
	encode_ok(&codec, &m.env, &frame);
	decode_ok(&codec, frame.data, frame.len);

	/* invalid histograms: the error names the metric */
	metric_fx(&m, 9, 100);
	m.h[1].count++;
	refused_env(&m.env, US_FRAME_ERR_INVALID, "histogram runq_latency_ns: buckets add up");
	metric_fx(&m, 9, 100);
	m.h[0].sub_bucket_bits = 4;
	refused_env(&m.env, US_FRAME_ERR_INVALID, "histogram request_latency_ns: sub_bucket_bits");
	metric_fx(&m, 9, 100);
	{ /* move the last bucket one past the end */
		size_t last = m.h[1].n_bucket_index - 1, before = 0;

		for (size_t i = 0; i < last; i++)
			before += m.idx[1][i];
		m.idx[1][last] = (uint32_t)(US_HIST_BUCKETS - before);
	}
	refused_env(&m.env, US_FRAME_ERR_INVALID, "runq_latency_ns: bucket index 1920 out of range");
	metric_fx(&m, 9, 100);
	m.idx[0][1] = 0; /* the second index repeats the first */
	refused_env(&m.env, US_FRAME_ERR_INVALID, "request_latency_ns: bucket indices not ascending");
	metric_fx(&m, 9, 100);
	m.h[0].n_bucket_count--;
	refused_env(&m.env, US_FRAME_ERR_INVALID, "request_latency_ns");
	/* the empty third histogram with a count but no buckets */
	metric_fx(&m, 9, 100);
	m.h[2].count = 1;
	refused_env(&m.env, US_FRAME_ERR_INVALID, "block_io_bytes");
}

/* ---- ack --------------------------------------------------------------- */

/* Range acks: one message acknowledges runs of seqs; inverted or zero
 * ranges are refused, and more ranges than the reader takes. */
static void test_ack_ranges(void **state)
{
	const struct us_ack_range in[3] = { { 5, 9 }, { 11, 11 }, { 100, 1099 } };
	struct us_ack_range out[4];
	size_t n;

	(void)state;
	assert_int_equal(us_ack_encode_ranges(&codec, AGENT, in, 3, &frame), 0);
	assert_int_equal(us_ack_decode_ranges(&codec, frame.data, frame.len, AGENT, out, 4, &n,
					      err, sizeof(err)), 0);
	assert_int_equal(n, 3);
	assert_memory_equal(out, in, sizeof(in));
	assert_int_equal(us_ack_decode_ranges(&codec, frame.data, frame.len, AGENT, out, 2, &n,
					      err, sizeof(err)), -1);
	assert_int_equal(us_ack_decode_ranges(&codec, frame.data, frame.len, "other", out, 4, &n,
					      err, sizeof(err)), -1);
	{
		const struct us_ack_range inverted = { 9, 5 }, zero = { 0, 3 };

		assert_int_equal(us_ack_encode_ranges(&codec, AGENT, &inverted, 1, &frame), 0);
		assert_int_equal(us_ack_decode_ranges(&codec, frame.data, frame.len, AGENT, out, 4,
						      &n, err, sizeof(err)), -1);
		assert_int_equal(us_ack_encode_ranges(&codec, AGENT, &zero, 1, &frame), 0);
		assert_int_equal(us_ack_decode_ranges(&codec, frame.data, frame.len, AGENT, out, 4,
						      &n, err, sizeof(err)), -1);
	}
	/* a range ack is not a single-seq ack */
	assert_int_equal(us_ack_encode_ranges(&codec, AGENT, in, 1, &frame), 0);
	assert_int_equal(us_ack_decode(&codec, frame.data, frame.len, AGENT, &n, err, sizeof(err)), -1);
	assert_int_equal(us_ack_encode_ranges(&codec, AGENT, in, 0, &frame), -1);
}

static void test_ack_roundtrip(void **state)
{
	static const uint64_t seqs[] = { 1, 127, 128, 1ull << 32, UINT64_MAX };
	static char long_id[US_AGENT_ID_MAX + 1];
	uint64_t seq;

	for (size_t i = 0; i < sizeof(seqs) / sizeof(seqs[0]); i++) {
		assert_int_equal(us_ack_encode(&codec, AGENT, seqs[i], &frame), 0);
		assert_memory_equal(frame.data, "U\x02\x00\x00", 4);
		seq = 12345;
		if (us_ack_decode(&codec, frame.data, frame.len, AGENT, &seq, err, sizeof(err)) < 0)
			fail_msg("ack decode: %s", err);
		assert_true(seq == seqs[i]);
	}
	/* seq 0 is reserved: an ack of it acknowledges nothing */
	assert_int_equal(us_ack_encode(&codec, AGENT, 0, &frame), 0);
	assert_int_equal(us_ack_decode(&codec, frame.data, frame.len, AGENT, &seq, err,
				       sizeof(err)), -1);
	assert_non_null(strstr(err, "acknowledges nothing"));
	memset(long_id, 'z', US_AGENT_ID_MAX);
	assert_int_equal(us_ack_encode(&codec, long_id, UINT64_MAX, &frame), 0);
	assert_int_equal(us_ack_decode(&codec, frame.data, frame.len, long_id, &seq, err,
				       sizeof(err)), 0);
	assert_true(seq == UINT64_MAX);
}

static void test_ack_refusals(void **state)
{
	static struct heartbeat_fx f;
	static char huge_id[300];
	uint64_t seq = 777;
	uint8_t buf[64];

	assert_int_equal(us_ack_encode(&codec, "agent-1", 5, &frame), 0);
	assert_int_equal(us_ack_decode(&codec, frame.data, frame.len, "agent-2", &seq, err,
				       sizeof(err)), -1);
	assert_non_null(strstr(err, "agent-1"));
	assert_non_null(strstr(err, "agent-2"));
	assert_int_equal(us_ack_decode(&codec, frame.data, frame.len, "agent-10", &seq, err,
				       sizeof(err)), -1);
	assert_int_equal(us_ack_decode(&codec, frame.data, frame.len, "agent-", &seq, err,
				       sizeof(err)), -1);
	assert_int_equal(us_ack_decode(&codec, frame.data, frame.len, "", &seq, err,
				       sizeof(err)), -1);
	assert_true(seq == 777);

	/* truncated Ack body */
	assert_true(frame.len <= sizeof(buf));
	memcpy(buf, frame.data, frame.len);
	assert_int_equal(us_ack_decode(&codec, buf, frame.len - 1, "agent-1", &seq, err,
				       sizeof(err)), -1);
	assert_non_null(strstr(err, "corrupt Ack"));
	/* header damage */
	buf[3] = 1;
	assert_int_equal(us_ack_decode(&codec, buf, frame.len, "agent-1", &seq, err,
				       sizeof(err)), -1);
	assert_non_null(strstr(err, "not an understudy frame"));
	assert_true(seq == 777);

	/* an envelope frame is not an ack */
	heartbeat_fx(&f, 5);
	encode_ok(&codec, &f.env, &frame);
	assert_int_equal(us_ack_decode(&codec, frame.data, frame.len, AGENT, &seq, err,
				       sizeof(err)), -1);
	assert_non_null(strstr(err, "where an ack was expected"));

	/* garbage */
	assert_int_equal(us_ack_decode(&codec, (const uint8_t *)"", 0, AGENT, &seq, err,
				       sizeof(err)), -1);
	assert_int_equal(us_ack_decode(&codec, (const uint8_t *)"\xff\xff\xff\xff\xff", 5, AGENT,
				       &seq, err, sizeof(err)), -1);
	assert_int_equal(us_ack_decode(&codec, (const uint8_t *)"U\x02\x00\x00\xff\xff\xff", 7,
				       AGENT, &seq, err, sizeof(err)), -1);
	assert_int_equal(us_ack_decode(&codec, (const uint8_t *)"U\x02\x01\x00\x78\x9c", 6,
				       AGENT, &seq, err, sizeof(err)), -1);
	/* an empty ack body names agent "" */
	assert_int_equal(us_ack_decode(&codec, (const uint8_t *)"U\x02\x00\x00", 4, AGENT, &seq,
				       err, sizeof(err)), -1);
	assert_true(seq == 777);

	/* an id too long for the ack buffer is refused by the encoder */
	memset(huge_id, 'q', sizeof(huge_id) - 1);
	assert_int_equal(us_ack_encode(&codec, huge_id, 1, &frame), -1);
}

static void test_agent_id_valid(void **state)
{
	static const char *const good[] = { "a", "Z", "0", "agent-1", "host.example.com",
					    "a_b", "_a", "a-", "a.", "a..b", "A1.b-c_D" };
	static const char *const bad[] = { "", ".", "..", ".a", "...", "/", "a/b", "/a", "a/",
					   "a b", " a", "a ", "a\tb", "a\n", "a\\b", "a:b",
					   "a*", "caf\xc3\xa9", "\x7f", "a\x01" };
	char id[US_AGENT_ID_MAX + 2];

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		if (!us_agent_id_valid(good[i]))
			fail_msg("\"%s\" refused", good[i]);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (us_agent_id_valid(bad[i]))
			fail_msg("\"%s\" accepted", bad[i]);
	memset(id, 'x', sizeof(id));
	id[US_AGENT_ID_MAX] = '\0';
	assert_true(us_agent_id_valid(id));  /* 128 */
	id[US_AGENT_ID_MAX] = 'x';
	id[US_AGENT_ID_MAX + 1] = '\0';
	assert_false(us_agent_id_valid(id)); /* 129 */
	id[0] = '.';
	id[US_AGENT_ID_MAX] = '\0';
	assert_false(us_agent_id_valid(id)); /* leading '.' at full length */
	/* every single byte */
	for (int c = 1; c < 256; c++) {
		char one[2] = { (char)c, '\0' };
		int want = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			   (c >= '0' && c <= '9') || c == '_' || c == '-';

		if (us_agent_id_valid(one) != want)
			fail_msg("byte 0x%02x: valid=%d, expected %d", c, !want, want);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		TEST(test_roundtrip_hello),
		TEST(test_roundtrip_metric_batch),
		TEST(test_roundtrip_request_batch),
		TEST(test_roundtrip_heartbeat),
		TEST(test_compression_threshold),
		TEST(test_codec_reuse),
		TEST(test_refuse_garbage_header),
		TEST(test_refuse_ack_frame),
		TEST(test_refuse_bad_protobuf),
		TEST(test_refuse_field_number_zero),
		TEST(test_refuse_bad_zlib),
		TEST(test_refuse_oversize),
		TEST(test_limit_envelope_roundtrip),
		TEST(test_frame_pack_limits),
		TEST(test_refuse_schema),
		TEST(test_refuse_invalid),
		TEST(test_ack_roundtrip),
		TEST(test_ack_ranges),
		TEST(test_ack_refusals),
		TEST(test_agent_id_valid),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
