/* Envelope/Ack codec and validation. */
#include "envelope.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hist.h"

int us_agent_id_valid(const char *id)
{
	return us_agent_id_valid_n(id, strlen(id));
}

int us_agent_id_valid_n(const char *id, size_t n)
{
	if (n == 0 || n > US_AGENT_ID_MAX)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = id[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
			return 0;
	}
	return id[0] != '.';
}

int us_envelope_encode(struct us_codec *c, const Understudy__Envelope *env,
		       struct us_buf *out, char *err, size_t errlen)
{
	size_t n = understudy__envelope__get_packed_size(env);

	if (n > US_FRAME_MAX) {
		snprintf(err, errlen, "envelope seq %llu is %zu bytes, over the %u-byte limit",
			 (unsigned long long)env->seq, n, US_FRAME_MAX);
		return -1;
	}
	if (us_buf_reserve(&c->plain, n ? n : 1) < 0) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	c->plain.len = understudy__envelope__pack(env, c->plain.data);
	return us_frame_pack(c, US_FRAME_ENVELOPE, c->plain.data, c->plain.len, out, err, errlen);
}

static int validate_metric_batch(const Understudy__MetricBatch *mb, char *err, size_t errlen)
{
	if (!mb->workload || !*mb->workload) {
		snprintf(err, errlen, "metric_batch: empty workload name");
		return -1;
	}
	if (mb->interval_end_ns < mb->interval_start_ns) {
		snprintf(err, errlen, "metric_batch %s: interval ends before it starts",
			 mb->workload);
		return -1;
	}
	for (size_t i = 0; i < mb->n_histograms; i++)
		if (us_hist_proto_validate(mb->histograms[i], err, errlen) < 0)
			return -1;
	return 0;
}

/* The store keeps these as SQLite INTEGERs (signed 64-bit): a larger value
 * would come back negative, and no clock, latency or byte count gets there. */
#define FITS_I64(v) ((v) <= (uint64_t)INT64_MAX)

int us_request_batch_validate(const Understudy__RequestBatch *rb, char *err, size_t errlen)
{
	if (!rb->workload || !*rb->workload) {
		snprintf(err, errlen, "request_batch: empty workload name");
		return -1;
	}
	for (size_t i = 0; i < rb->n_samples; i++) {
		const Understudy__RequestSample *s = rb->samples[i];

		if (s->end_ns < s->start_ns) {
			snprintf(err, errlen, "request_batch %s: sample %zu ends before it starts",
				 rb->workload, i);
			return -1;
		}
		if (!FITS_I64(s->end_ns) || !FITS_I64(s->latency_ns) || !FITS_I64(s->bytes_in) ||
		    !FITS_I64(s->bytes_out) || !FITS_I64(s->connection_id) ||
		    !FITS_I64(s->shadow_latency_ns) || !FITS_I64(s->shadow_bytes_out)) {
			snprintf(err, errlen, "request_batch %s: sample %zu has a value past 2^63",
				 rb->workload, i);
			return -1;
		}
	}
	return 0;
}

int us_envelope_validate(const Understudy__Envelope *env, char *err, size_t errlen)
{
	if (!us_agent_id_valid(env->agent_id)) {
		snprintf(err, errlen, "invalid agent_id (1-%d of [A-Za-z0-9._-])", US_AGENT_ID_MAX);
		return -1;
	}
	if (env->seq == 0) {
		snprintf(err, errlen, "seq 0 is reserved");
		return -1;
	}
	switch (env->body_case) {
	case UNDERSTUDY__ENVELOPE__BODY_HELLO:
	case UNDERSTUDY__ENVELOPE__BODY_HEARTBEAT:
		return 0;
	case UNDERSTUDY__ENVELOPE__BODY_REQUEST_BATCH:
		return us_request_batch_validate(env->request_batch, err, errlen);
	case UNDERSTUDY__ENVELOPE__BODY_COMMAND_RESULT:
		if (env->command_result->command_id == 0) {
			snprintf(err, errlen, "command_result: command_id 0");
			return -1;
		}
		return 0;
	case UNDERSTUDY__ENVELOPE__BODY_METRIC_BATCH:
		return validate_metric_batch(env->metric_batch, err, errlen);
	default:
		snprintf(err, errlen, "envelope seq %llu has no body",
			 (unsigned long long)env->seq);
		return -1;
	}
}

/* protobuf-c refuses a field number 0 written as the byte 0x00 but keeps
 * one written in a longer varint as an unknown field; refuse those too,
 * in every message of the tree. */
static int has_field_zero(const ProtobufCMessage *m)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;

	for (unsigned int i = 0; i < m->n_unknown_fields; i++)
		if (m->unknown_fields[i].tag == 0)
			return 1;
	for (unsigned int i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		const char *base = (const char *)m;

		if (f->type != PROTOBUF_C_TYPE_MESSAGE)
			continue;
		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			size_t n = *(const size_t *)(base + f->quantifier_offset);
			ProtobufCMessage *const *items = *(ProtobufCMessage *const *const *)(base + f->offset);

			for (size_t j = 0; j < n; j++)
				if (items[j] && has_field_zero(items[j]))
					return 1;
			continue;
		}
		if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
		    *(const uint32_t *)(base + f->quantifier_offset) != f->id)
			continue;
		if (*(ProtobufCMessage *const *)(base + f->offset) &&
		    has_field_zero(*(ProtobufCMessage *const *)(base + f->offset)))
			return 1;
	}
	return 0;
}

Understudy__Envelope *us_envelope_decode(struct us_codec *c, const uint8_t *frame,
					 size_t len, enum us_frame_err *why,
					 char *err, size_t errlen)
{
	Understudy__Envelope *env = NULL;
	enum us_frame_type type;
	const uint8_t *body;
	size_t body_len;

	*why = us_frame_unpack(c, frame, len, &type, &body, &body_len, err, errlen);
	if (*why != US_FRAME_OK)
		return NULL;
	if (type != US_FRAME_ENVELOPE) {
		snprintf(err, errlen, "frame type %d where an envelope was expected", type);
		*why = US_FRAME_ERR_GARBAGE;
		return NULL;
	}
	env = understudy__envelope__unpack(NULL, body_len, body);
	if (env && has_field_zero(&env->base)) {
		understudy__envelope__free_unpacked(env, NULL);
		env = NULL;
	}
	if (!env) {
		snprintf(err, errlen, "body of %zu bytes is not a valid Envelope (truncated or corrupt)",
			 body_len);
		*why = US_FRAME_ERR_PROTO;
		return NULL;
	}
	if (env->schema_version != US_SCHEMA_VERSION) {
		snprintf(err, errlen, "schema version %u, this build speaks %u",
			 env->schema_version, US_SCHEMA_VERSION);
		*why = US_FRAME_ERR_SCHEMA;
		goto refuse;
	}
	if (us_envelope_validate(env, err, errlen) < 0) {
		*why = US_FRAME_ERR_INVALID;
		goto refuse;
	}
	return env;
refuse:
	understudy__envelope__free_unpacked(env, NULL);
	return NULL;
}

void us_envelope_free(Understudy__Envelope *env)
{
	if (env)
		understudy__envelope__free_unpacked(env, NULL);
}

int us_ack_encode(struct us_codec *c, const char *agent_id, uint64_t seq,
		  struct us_buf *out)
{
	Understudy__Ack ack = UNDERSTUDY__ACK__INIT;
	uint8_t body[US_AGENT_ID_MAX + 32];
	size_t n;
	char err[64];

	ack.agent_id = (char *)agent_id;
	ack.seq = seq;
	n = understudy__ack__get_packed_size(&ack);
	if (n > sizeof(body))
		return -1;
	n = understudy__ack__pack(&ack, body);
	return us_frame_pack(c, US_FRAME_ACK, body, n, out, err, sizeof(err));
}

int us_ack_encode_ranges(struct us_codec *c, const char *agent_id,
			 const struct us_ack_range *ranges, size_t n, struct us_buf *out)
{
	Understudy__Ack ack = UNDERSTUDY__ACK__INIT;
	char err[64];
	int rc = -1;

	if (n == 0 || n > US_ACK_MAX_RANGES || strlen(agent_id) > US_AGENT_ID_MAX)
		return -1;
	ack.agent_id = (char *)agent_id;
	ack.n_ranges = 2 * n;
	ack.ranges = malloc(ack.n_ranges * sizeof(*ack.ranges));
	if (!ack.ranges)
		return -1;
	for (size_t i = 0; i < n; i++) {
		ack.ranges[2 * i] = ranges[i].first;
		ack.ranges[2 * i + 1] = ranges[i].last;
	}
	if (us_buf_reserve(&c->plain, understudy__ack__get_packed_size(&ack)) == 0) {
		c->plain.len = understudy__ack__pack(&ack, c->plain.data);
		rc = us_frame_pack(c, US_FRAME_ACK, c->plain.data, c->plain.len, out, err, sizeof(err));
	}
	free(ack.ranges);
	return rc;
}

int us_ack_decode_ranges(struct us_codec *c, const uint8_t *frame, size_t len,
			 const char *agent_id, struct us_ack_range *out, size_t max,
			 size_t *n, char *err, size_t errlen)
{
	Understudy__Ack *ack = NULL;
	enum us_frame_type type;
	const uint8_t *body;
	size_t body_len;
	int rc = -1;

	*n = 0;
	if (us_frame_unpack(c, frame, len, &type, &body, &body_len, err, errlen) != US_FRAME_OK)
		goto cleanup;
	if (type != US_FRAME_ACK) {
		snprintf(err, errlen, "frame type %d where an ack was expected", type);
		goto cleanup;
	}
	ack = understudy__ack__unpack(NULL, body_len, body);
	if (!ack) {
		snprintf(err, errlen, "corrupt Ack");
		goto cleanup;
	}
	if (strcmp(ack->agent_id, agent_id) != 0) {
		snprintf(err, errlen, "ack for agent '%s', we are '%s'", ack->agent_id, agent_id);
		goto cleanup;
	}
	if (ack->n_ranges % 2 || (ack->seq != 0) + ack->n_ranges / 2 > max) {
		snprintf(err, errlen, "ack with %zu range bounds (at most %zu ranges)",
			 ack->n_ranges, max);
		goto cleanup;
	}
	if (ack->seq != 0)
		out[(*n)++] = (struct us_ack_range){ ack->seq, ack->seq };
	for (size_t i = 0; i < ack->n_ranges; i += 2) {
		if (ack->ranges[i] == 0 || ack->ranges[i] > ack->ranges[i + 1]) {
			snprintf(err, errlen, "ack range %llu..%llu is empty or starts at 0",
				 (unsigned long long)ack->ranges[i],
				 (unsigned long long)ack->ranges[i + 1]);
			*n = 0;
			goto cleanup;
		}
		out[(*n)++] = (struct us_ack_range){ ack->ranges[i], ack->ranges[i + 1] };
	}
	if (*n == 0) {
		snprintf(err, errlen, "ack acknowledges nothing");
		goto cleanup;
	}
	rc = 0;
cleanup:
	if (ack)
		understudy__ack__free_unpacked(ack, NULL);
	return rc;
}

int us_ack_decode(struct us_codec *c, const uint8_t *frame, size_t len,
		  const char *agent_id, uint64_t *seq, char *err, size_t errlen)
{
	struct us_ack_range r[2];
	size_t n;

	if (us_ack_decode_ranges(c, frame, len, agent_id, r, 2, &n, err, errlen) < 0)
		return -1;
	if (n != 1 || r[0].first != r[0].last) {
		snprintf(err, errlen, "ack covers more than one seq");
		return -1;
	}
	*seq = r[0].first;
	return 0;
}

int us_command_encode(struct us_codec *c, const Understudy__Command *cmd, struct us_buf *out,
		      char *err, size_t errlen)
{
	size_t n = understudy__command__get_packed_size(cmd);

	if (us_buf_reserve(&c->plain, n ? n : 1) < 0) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	c->plain.len = understudy__command__pack(cmd, c->plain.data);
	return us_frame_pack(c, US_FRAME_COMMAND, c->plain.data, c->plain.len, out, err, errlen);
}

Understudy__Command *us_command_decode(struct us_codec *c, const uint8_t *frame, size_t len,
				       const char *agent_id, char *err, size_t errlen)
{
	Understudy__Command *cmd;
	enum us_frame_type type;
	const uint8_t *body;
	size_t body_len;

	if (us_frame_unpack(c, frame, len, &type, &body, &body_len, err, errlen) != US_FRAME_OK)
		return NULL;
	if (type != US_FRAME_COMMAND) {
		snprintf(err, errlen, "frame type %d where a command was expected", type);
		return NULL;
	}
	cmd = understudy__command__unpack(NULL, body_len, body);
	if (cmd && has_field_zero(&cmd->base)) {
		understudy__command__free_unpacked(cmd, NULL);
		cmd = NULL;
	}
	if (!cmd) {
		snprintf(err, errlen, "corrupt Command");
		return NULL;
	}
	if (strcmp(cmd->agent_id, agent_id) != 0 || cmd->id == 0 ||
	    cmd->action_case == UNDERSTUDY__COMMAND__ACTION__NOT_SET) {
		snprintf(err, errlen, "command %llu for '%s' (we are '%s') or without an action",
			 (unsigned long long)cmd->id, cmd->agent_id, agent_id);
		understudy__command__free_unpacked(cmd, NULL);
		return NULL;
	}
	return cmd;
}
