/* us-loadgen: drives the agent's real spool and sender with synthetic
 * MetricBatch (or, with --requests, RequestBatch) envelopes, for the
 * transport tests and `make bench-ingest`. It is an agent without
 * collectors: same spool, same sender, same wire. */
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "batch.h"
#include "clock.h"
#include "hist.h"
#include "keys.h"
#include "log.h"
#include "sender.h"
#include "spool.h"

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

struct options {
	const char *endpoint;
	const char *key;
	const char *server_key;
	const char *agent_id;
	const char *spool_dir;
	uint64_t spool_max;
	uint64_t count;
	double rate;              /* envelopes/s, 0 = as fast as the window allows */
	unsigned histograms;
	unsigned buckets;         /* non-empty buckets per histogram */
	uint32_t window;
	uint64_t heartbeat_ms;
	uint64_t ack_timeout_ms;
	uint64_t drain_ms;        /* wait for acks after the last submit */
	uint64_t max_backlog;     /* pause submitting above this many unacked */
	int prefill;              /* spool everything first, then deliver */
	unsigned requests;        /* > 0: RequestBatch envelopes of this many samples */
};

/* The RequestBatch body and its samples, reused envelope after envelope. */
struct requests {
	Understudy__RequestBatch rb;
	Understudy__RequestSample *s;
	Understudy__RequestSample **sp;
	uint64_t envelopes;       /* built so far: each sample's connection_id */
};

static void usage(FILE *out)
{
	fprintf(out,
		"usage: us-loadgen --endpoint EP --key FILE --server-key FILE --agent-id ID\n"
		"                  --spool DIR [--count N] [--rate R] [--histograms N]\n"
		"                  [--buckets N]\n"
		"                  [--window N] [--spool-max BYTES] [--heartbeat-ms MS]\n"
		"                  [--ack-timeout-ms MS] [--drain-ms MS] [--max-backlog N]\n"
		"                  [--prefill] [--requests N]\n"
		"\n"
		"Submits N MetricBatch envelopes of N histograms (of --buckets non-empty\n"
		"buckets, default 150) each through the agent's\n"
		"spool and sender, waits up to --drain-ms for every ack, and prints one JSON\n"
		"line of figures. Exit 0 when everything submitted was acked.\n"
		"--prefill spools all N first and times only the delivery: an agent\n"
		"catching up after a coordinator outage, and a load the generator's own\n"
		"encoding cannot throttle.\n"
		"--requests N sends RequestBatch envelopes of N samples each instead\n"
		"(workload loadgen, production; every field set; sample i of the k-th\n"
		"envelope has connection_id k and request_index i, so each is unique).\n");
}

static int parse_options(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
		{ "endpoint", required_argument, NULL, 'e' },
		{ "key", required_argument, NULL, 'k' },
		{ "server-key", required_argument, NULL, 's' },
		{ "agent-id", required_argument, NULL, 'a' },
		{ "spool", required_argument, NULL, 'p' },
		{ "spool-max", required_argument, NULL, 'M' },
		{ "count", required_argument, NULL, 'n' },
		{ "rate", required_argument, NULL, 'r' },
		{ "histograms", required_argument, NULL, 'H' },
		{ "buckets", required_argument, NULL, 'K' },
		{ "window", required_argument, NULL, 'w' },
		{ "heartbeat-ms", required_argument, NULL, 'b' },
		{ "ack-timeout-ms", required_argument, NULL, 't' },
		{ "drain-ms", required_argument, NULL, 'd' },
		{ "max-backlog", required_argument, NULL, 'B' },
		{ "prefill", no_argument, NULL, 'P' },
		{ "requests", required_argument, NULL, 'R' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	int c;

	*o = (struct options){ .spool_max = 256ull << 20, .histograms = 20, .buckets = 150, .window = 4096,
			       .heartbeat_ms = 5000, .ack_timeout_ms = 5000, .drain_ms = 60000,
			       .max_backlog = 100000 };
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'e': o->endpoint = optarg; break;
		case 'k': o->key = optarg; break;
		case 's': o->server_key = optarg; break;
		case 'a': o->agent_id = optarg; break;
		case 'p': o->spool_dir = optarg; break;
		case 'M': o->spool_max = strtoull(optarg, NULL, 10); break;
		case 'n': o->count = strtoull(optarg, NULL, 10); break;
		case 'r': o->rate = strtod(optarg, NULL); break;
		case 'H': o->histograms = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'K': o->buckets = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'w': o->window = (uint32_t)strtoul(optarg, NULL, 10); break;
		case 'b': o->heartbeat_ms = strtoull(optarg, NULL, 10); break;
		case 't': o->ack_timeout_ms = strtoull(optarg, NULL, 10); break;
		case 'd': o->drain_ms = strtoull(optarg, NULL, 10); break;
		case 'B': o->max_backlog = strtoull(optarg, NULL, 10); break;
		case 'P': o->prefill = 1; break;
		case 'R': o->requests = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'h': usage(stdout); exit(0);
		default: return -1;
		}
	}
	if (!o->endpoint || !o->key || !o->server_key || !o->agent_id || !o->spool_dir ||
	    o->window == 0 || o->histograms > US_BATCH_MAX_ITEMS || o->requests > 100000 ||
	    optind != argc)
		return -1;
	return 0;
}

/* A latency-like histogram with exactly `buckets` non-empty buckets, run
 * after run from a per-metric start, each with a random count. */
static void fill_hist(struct us_hist *h, uint64_t *rng, unsigned metric, unsigned buckets)
{
	unsigned first = us_hist_index(10000ull << (metric % 8));

	us_hist_reset(h);
	for (unsigned i = 0; i < buckets && first + 2 * i < US_HIST_BUCKETS; i++) {
		*rng ^= *rng << 13;
		*rng ^= *rng >> 7;
		*rng ^= *rng << 17;
		/* every other bucket: a sparse, realistic spread */
		us_hist_record_n(h, us_hist_bucket_lower(first + 2 * i), 1 + *rng % 1000);
	}
}

static int requests_init(struct requests *r, unsigned n)
{
	understudy__request_batch__init(&r->rb);
	r->rb.workload = "loadgen";
	r->rb.role = UNDERSTUDY__ROLE__PRODUCTION;
	r->s = calloc(n ? n : 1, sizeof(*r->s));
	r->sp = calloc(n ? n : 1, sizeof(*r->sp));
	if (!r->s || !r->sp)
		return -1;
	for (unsigned i = 0; i < n; i++) {
		understudy__request_sample__init(&r->s[i]);
		r->sp[i] = &r->s[i];
	}
	r->rb.samples = r->sp;
	r->rb.n_samples = n;
	return 0;
}

/* Samples spaced 1 ms apart over the last n ms, every field set; every
 * other one mirrored to a shadow that answered. */
static void requests_fill(struct requests *r, uint64_t now)
{
	static char *const methods[] = { "GET", "POST", "PUT", "" };
	uint64_t k = ++r->envelopes;

	for (size_t i = 0; i < r->rb.n_samples; i++) {
		Understudy__RequestSample *s = &r->s[i];
		uint64_t lat = 200000 + (k * 7919 + i * 104729) % 5000000;

		s->start_ns = now - (r->rb.n_samples - i) * US_NS_PER_MS - lat;
		s->latency_ns = lat;
		s->end_ns = s->start_ns + lat;
		s->status_class = i % 10 == 9 ? UNDERSTUDY__STATUS_CLASS__STATUS_5XX
					      : UNDERSTUDY__STATUS_CLASS__STATUS_2XX;
		s->status_code = i % 10 == 9 ? 503 : 200;
		s->bytes_in = 100 + i % 900;
		s->bytes_out = 1000 + (k + i) % 64000;
		s->connection_id = k;
		s->request_index = (uint32_t)i;
		s->truncated = i % 97 == 96;
		s->method = methods[i % 4];
		if (i % 2 == 0) {
			s->shadow_outcome = UNDERSTUDY__SHADOW_OUTCOME__SHADOW_OK;
			s->shadow_latency_ns = lat + lat / 8;
			s->shadow_status_code = s->status_code;
			s->shadow_status_class = s->status_class;
			s->shadow_bytes_out = s->bytes_out;
		} else {
			s->shadow_outcome = UNDERSTUDY__SHADOW_OUTCOME__SHADOW_NOT_MIRRORED;
			s->shadow_latency_ns = 0;
			s->shadow_status_code = 0;
			s->shadow_status_class = UNDERSTUDY__STATUS_CLASS__STATUS_UNKNOWN;
			s->shadow_bytes_out = 0;
		}
	}
}

static void requests_free(struct requests *r)
{
	free(r->s);
	free(r->sp);
}

/* The histograms are converted once; each envelope gets fresh times (and its
 * own seq from the sender), as an agent's would. With r, a RequestBatch. */
static int submit_one(struct us_sender *s, struct us_batch *b, struct requests *r)
{
	Understudy__Envelope env = UNDERSTUDY__ENVELOPE__INIT;
	uint64_t now = us_now_ns();
	char err[512];
	int rc;

	if (r) {
		requests_fill(r, now);
		env.body_case = UNDERSTUDY__ENVELOPE__BODY_REQUEST_BATCH;
		env.request_batch = &r->rb;
	} else {
		b->mb.interval_start_ns = now - 10 * US_NS_PER_SEC;
		b->mb.interval_end_ns = now;
		env.body_case = UNDERSTUDY__ENVELOPE__BODY_METRIC_BATCH;
		env.metric_batch = &b->mb;
	}
	rc = us_sender_submit(s, &env, err, sizeof(err));
	if (rc < 0)
		us_warn("submit: %s", err);
	return rc;
}

static void report(const struct options *o, struct us_spool *sp, const struct us_sender *s,
		   uint64_t elapsed_ns, int drained)
{
	const struct us_sender_stats *st = us_sender_get_stats(s);
	struct us_spool_stats sps;
	double secs = (double)elapsed_ns / 1e9;

	us_spool_get_stats(sp, &sps);
	printf("{\"agent_id\":\"%s\",\"submitted\":%" PRIu64 ",\"sent\":%" PRIu64
	       ",\"resent\":%" PRIu64 ",\"acked\":%" PRIu64 ",\"spooled\":%" PRIu64
	       ",\"spool_dropped_total\":%" PRIu64 ",\"elapsed_s\":%.3f"
	       ",\"acked_per_s\":%.0f,\"bytes_plain\":%" PRIu64 ",\"bytes_framed\":%" PRIu64
	       ",\"ack_latency_p50_us\":%.0f,\"ack_latency_p99_us\":%.0f,\"drained\":%s}\n",
	       o->agent_id, st->submitted, st->sent, st->resent, st->acked, sps.envelopes,
	       sps.dropped_total, secs, secs > 0 ? (double)st->acked / secs : 0.0,
	       st->bytes_plain, st->bytes_framed,
	       us_hist_quantile(&st->ack_latency_ns, 0.50) / 1000.0,
	       us_hist_quantile(&st->ack_latency_ns, 0.99) / 1000.0,
	       drained ? "true" : "false");
	fflush(stdout);
}

int main(int argc, char **argv)
{
	struct options o;
	struct us_sender_config scfg = { 0 };
	struct us_spool *spool = NULL;
	struct us_sender *sender = NULL;
	struct us_batch *batch = malloc(sizeof(*batch));
	struct us_hist *hists = calloc(US_BATCH_MAX_ITEMS, sizeof(*hists));
	char names[US_BATCH_MAX_ITEMS][32];
	struct sigaction sa = { .sa_handler = on_signal };
	struct requests reqs = { 0 }, *rq = NULL;
	void *zctx = NULL;
	char err[1024];
	uint64_t rng = 88172645463325252ull, start, submitted = 0;
	int rc = 2, drained = 0;

	if (!batch || !hists || parse_options(argc, argv, &o) < 0) {
		usage(stderr);
		goto cleanup;
	}
	if (o.requests) {
		if (requests_init(&reqs, o.requests) < 0) {
			fprintf(stderr, "us-loadgen: out of memory\n");
			goto cleanup;
		}
		rq = &reqs;
	}
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	us_batch_init(batch, "loadgen", UNDERSTUDY__ROLE__PRODUCTION, 0, 0);
	for (unsigned i = 0; i < o.histograms; i++) {
		snprintf(names[i], sizeof(names[i]), "synthetic_latency_%02u", i);
		fill_hist(&hists[i], &rng, i, o.buckets);
		us_batch_add_hist(batch, names[i], "ns", &hists[i]);
	}
	scfg.agent_id = o.agent_id;
	scfg.endpoint = o.endpoint;
	scfg.window = o.window;
	scfg.window_bytes = 64ull << 20;
	scfg.ack_timeout_ns = o.ack_timeout_ms * US_NS_PER_MS;
	scfg.heartbeat_interval_ns = o.heartbeat_ms * US_NS_PER_MS;
	if (us_keys_load_pair(o.key, &scfg.keys, err, sizeof(err)) < 0 ||
	    us_keys_load_public(o.server_key, scfg.server_public_key, err, sizeof(err)) < 0) {
		fprintf(stderr, "us-loadgen: %s\n", err);
		goto cleanup;
	}
	rc = 1;
	spool = us_spool_open(o.spool_dir, o.spool_max, err, sizeof(err));
	zctx = zmq_ctx_new();
	sender = spool ? us_sender_open(zctx, &scfg, spool, err, sizeof(err)) : NULL;
	if (!sender) {
		fprintf(stderr, "us-loadgen: %s\n", err);
		goto cleanup;
	}
	if (o.prefill) {
		while (!stop_requested && submitted < o.count) {
			submit_one(sender, batch, rq);
			if (++submitted % 1000 == 0 && us_spool_commit(spool, err, sizeof(err)) < 0)
				us_error("%s", err);
		}
		if (us_spool_commit(spool, err, sizeof(err)) < 0)
			us_error("%s", err);
	}
	start = us_mono_ns();
	while (!stop_requested && submitted < o.count) {
		uint64_t due = o.rate > 0 ? (uint64_t)((double)(us_mono_ns() - start) / 1e9 * o.rate) + 1
					  : submitted + 256;
		struct us_spool_stats sps;

		us_spool_get_stats(spool, &sps);
		while (submitted < o.count && submitted < due && sps.envelopes < o.max_backlog) {
			if (submit_one(sender, batch, rq) == 0)
				sps.envelopes++;
			submitted++;
		}
		us_sender_run(sender, submitted < due ? 0 : 1);
	}
	{
		uint64_t deadline = us_mono_ns() + o.drain_ms * US_NS_PER_MS;
		struct us_spool_stats sps;

		for (;;) {
			us_sender_run(sender, 5);
			us_spool_get_stats(spool, &sps);
			if (sps.envelopes == 0) {
				drained = 1;
				break;
			}
			if (stop_requested || us_mono_ns() > deadline)
				break;
		}
	}
	report(&o, spool, sender, us_mono_ns() - start, drained);
	rc = drained ? 0 : 1;
cleanup:
	us_sender_close(sender);
	us_spool_close(spool);
	if (zctx)
		zmq_ctx_term(zctx);
	if (batch)
		us_batch_free(batch);
	free(hists);
	free(batch);
	requests_free(&reqs);
	return rc;
}
