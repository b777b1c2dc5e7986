/* Envelope and Ack codec: protobuf-c (de)serialization inside frames, plus the
 * validation every received envelope passes before anything trusts it. */
#ifndef US_ENVELOPE_H
#define US_ENVELOPE_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "frame.h"
#include "understudy.pb-c.h"

#define US_SCHEMA_VERSION 1
#define US_AGENT_ID_MAX 128

/* Serializes env into a frame in out. */
int us_envelope_encode(struct us_codec *c, const Understudy__Envelope *env,
		       struct us_buf *out, char *err, size_t errlen);

/* Unpacks and validates one envelope frame. Returns NULL and the reason class
 * in *why (with text in err) when the frame is refused. Free the result with
 * us_envelope_free. */
Understudy__Envelope *us_envelope_decode(struct us_codec *c, const uint8_t *frame,
					 size_t len, enum us_frame_err *why,
					 char *err, size_t errlen);
void us_envelope_free(Understudy__Envelope *env);

/* Semantic checks of a decoded envelope (ids, seq, body, histograms). */
int us_envelope_validate(const Understudy__Envelope *env, char *err, size_t errlen);
/* A RequestBatch names its workload, and each sample ends no earlier than it
 * starts, with every 64-bit figure below 2^63 (the store's INTEGER). */
int us_request_batch_validate(const Understudy__RequestBatch *rb, char *err, size_t errlen);

/* An inclusive run of acked seqs. */
struct us_ack_range {
	uint64_t first;
	uint64_t last;
};

#define US_ACK_MAX_RANGES 4096

int us_ack_encode(struct us_codec *c, const char *agent_id, uint64_t seq,
		  struct us_buf *out);
int us_ack_encode_ranges(struct us_codec *c, const char *agent_id,
			 const struct us_ack_range *ranges, size_t n, struct us_buf *out);
/* Fills up to max ranges (a lone seq is a range of one) when frame is an Ack
 * for agent_id; refuses inverted ranges and more than max. */
int us_ack_decode_ranges(struct us_codec *c, const uint8_t *frame, size_t len,
			 const char *agent_id, struct us_ack_range *out, size_t max,
			 size_t *n, char *err, size_t errlen);
/* For an Ack of exactly one seq: returns 0 and fills seq. */
int us_ack_decode(struct us_codec *c, const uint8_t *frame, size_t len,
		  const char *agent_id, uint64_t *seq, char *err, size_t errlen);

int us_command_encode(struct us_codec *c, const Understudy__Command *cmd, struct us_buf *out,
		      char *err, size_t errlen);
/* The command in a COMMAND frame for agent_id, or NULL with a reason. Free
 * with understudy__command__free_unpacked(cmd, NULL). */
Understudy__Command *us_command_decode(struct us_codec *c, const uint8_t *frame, size_t len,
				       const char *agent_id, char *err, size_t errlen);

/* Valid agent ids: 1..128 of [A-Za-z0-9._-]; they name key files too. */
int us_agent_id_valid(const char *id);
int us_agent_id_valid_n(const char *id, size_t len);

#endif
