/* libFuzzer target for lib/frame and lib/envelope: arbitrary bytes as an
 * envelope frame (one codec reused across inputs, as in the coordinator's
 * ingest thread) and as an ack frame. Beyond "no crash, no leak, no UB" it
 * checks that every refusal has a class and a reason, that an accepted
 * envelope re-encodes to a frame that decodes to the same envelope, and that
 * accepted histograms convert losslessly. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "envelope.h"
#include "frame.h"
#include "hist.h"

#define FUZZ_AGENT "agent-1" /* the id the seed corpus uses */

static struct us_codec fuzz_codec;
static struct us_buf fuzz_out;
static struct us_hist fuzz_hist;
static int fuzz_ready;

#define FUZZ_CHECK(cond, ...)                                          \
	do {                                                           \
		if (!(cond)) {                                         \
			fprintf(stderr, "fuzz_envelope: " __VA_ARGS__); \
			fputc('\n', stderr);                           \
			abort();                                       \
		}                                                      \
	} while (0)

static void fuzz_histograms(const Understudy__MetricBatch *mb)
{
	char err[256];

	for (size_t i = 0; i < mb->n_histograms; i++) {
		uint64_t total = 0;

		/* decode validated it, so the conversion cannot fail */
		FUZZ_CHECK(us_hist_from_proto(mb->histograms[i], &fuzz_hist, err, sizeof(err)) == 0,
			   "validated histogram refused by from_proto: %s", err);
		for (unsigned int b = 0; b < US_HIST_BUCKETS; b++)
			total += fuzz_hist.buckets[b];
		FUZZ_CHECK(total == fuzz_hist.count, "bucket total %llu != count %llu",
			   (unsigned long long)total, (unsigned long long)fuzz_hist.count);
		(void)us_hist_quantile(&fuzz_hist, 0.5);
		(void)us_hist_quantile(&fuzz_hist, 0.99);
		(void)us_hist_mean(&fuzz_hist);
	}
}

static void fuzz_reencode(const Understudy__Envelope *env)
{
	Understudy__Envelope *again;
	enum us_frame_err why = US_FRAME_ERR_COUNT;
	char err[512] = "";

	if (us_envelope_encode(&fuzz_codec, env, &fuzz_out, err, sizeof(err)) < 0) {
		/* only an envelope over the limit may be refused */
		FUZZ_CHECK(understudy__envelope__get_packed_size(env) > US_FRAME_MAX,
			   "re-encode failed: %s", err);
		return;
	}
	again = us_envelope_decode(&fuzz_codec, fuzz_out.data, fuzz_out.len, &why, err,
				   sizeof(err));
	FUZZ_CHECK(again, "re-encoded envelope refused (%s): %s", us_frame_err_name(why), err);
	FUZZ_CHECK(why == US_FRAME_OK, "accepted with class %d", why);
	FUZZ_CHECK(strcmp(again->agent_id, env->agent_id) == 0, "agent_id changed: '%s' -> '%s'",
		   env->agent_id, again->agent_id);
	FUZZ_CHECK(again->seq == env->seq, "seq changed");
	FUZZ_CHECK(again->body_case == env->body_case, "body_case changed: %d -> %d",
		   env->body_case, again->body_case);
	FUZZ_CHECK(again->sent_unix_ns == env->sent_unix_ns, "sent_unix_ns changed");
	FUZZ_CHECK(again->schema_version == env->schema_version, "schema_version changed");
	/* the compressed flag follows the size rule */
	FUZZ_CHECK((fuzz_out.data[2] == US_FRAME_FLAG_ZLIB) ==
			   (understudy__envelope__get_packed_size(env) > US_FRAME_COMPRESS_MIN),
		   "compression flag does not follow the size rule");
	us_envelope_free(again);
}

static void fuzz_ack(const uint8_t *data, size_t size)
{
	char err[512] = "";
	uint64_t seq = 0, seq2 = 0;

	if (us_ack_decode(&fuzz_codec, data, size, FUZZ_AGENT, &seq, err, sizeof(err)) < 0) {
		FUZZ_CHECK(err[0], "ack refused without a reason");
		return;
	}
	FUZZ_CHECK(us_ack_encode(&fuzz_codec, FUZZ_AGENT, seq, &fuzz_out) == 0, "ack re-encode");
	FUZZ_CHECK(us_ack_decode(&fuzz_codec, fuzz_out.data, fuzz_out.len, FUZZ_AGENT, &seq2, err,
				 sizeof(err)) == 0, "re-encoded ack refused: %s", err);
	FUZZ_CHECK(seq2 == seq, "ack seq changed");
	/* an ack for us is never an ack for someone else */
	FUZZ_CHECK(us_ack_decode(&fuzz_codec, data, size, FUZZ_AGENT "x", &seq2, err,
				 sizeof(err)) < 0, "ack accepted for two agent ids");
}

/* The agent's side of the control channel: a command it accepts is for it,
 * has an id and an action, and survives re-encoding. */
static void fuzz_command(const uint8_t *data, size_t size)
{
	Understudy__Command *cmd, *again;
	char err[512] = "";

	cmd = us_command_decode(&fuzz_codec, data, size, FUZZ_AGENT, err, sizeof(err));
	if (!cmd) {
		FUZZ_CHECK(err[0], "command refused without a reason");
		return;
	}
	FUZZ_CHECK(strcmp(cmd->agent_id, FUZZ_AGENT) == 0 && cmd->id != 0 &&
			   cmd->action_case != UNDERSTUDY__COMMAND__ACTION__NOT_SET,
		   "accepted a command that is not ours or has no action");
	FUZZ_CHECK(us_command_encode(&fuzz_codec, cmd, &fuzz_out, err, sizeof(err)) == 0,
		   "command re-encode: %s", err);
	again = us_command_decode(&fuzz_codec, fuzz_out.data, fuzz_out.len, FUZZ_AGENT, err,
				  sizeof(err));
	FUZZ_CHECK(again && again->id == cmd->id && again->action_case == cmd->action_case,
		   "command round trip: %s", err);
	understudy__command__free_unpacked(again, NULL);
	understudy__command__free_unpacked(cmd, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	Understudy__Envelope *env;
	enum us_frame_err why = US_FRAME_ERR_COUNT;
	char err[512] = "";

	if (!fuzz_ready) {
		us_codec_init(&fuzz_codec);
		fuzz_ready = 1;
	}
	env = us_envelope_decode(&fuzz_codec, data, size, &why, err, sizeof(err));
	if (!env) {
		FUZZ_CHECK(why > US_FRAME_OK && why < US_FRAME_ERR_COUNT, "refused with class %d", why);
		FUZZ_CHECK(err[0], "refused (%s) without a reason", us_frame_err_name(why));
	} else {
		FUZZ_CHECK(why == US_FRAME_OK, "accepted with class %d", why);
		FUZZ_CHECK(us_agent_id_valid(env->agent_id) && env->seq != 0 &&
				   env->schema_version == US_SCHEMA_VERSION,
			   "accepted an envelope that does not validate");
		if (env->body_case == UNDERSTUDY__ENVELOPE__BODY_METRIC_BATCH)
			fuzz_histograms(env->metric_batch);
		fuzz_reencode(env);
		us_envelope_free(env);
	}
	fuzz_ack(data, size);
	fuzz_command(data, size);
	return 0;
}
