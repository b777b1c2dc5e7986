/* In-place protobuf wire-format validation of Envelopes (see scan.h). */
#include "scan.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "envelope.h"
#include "hist_scheme.h"

enum wire_type { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2, WT_I32 = 5 };

struct cursor {
	const uint8_t *p;
	const uint8_t *end;
};

/* Scan state: a malformed wire format stops the scan at once (PROTO); a
 * semantic fault is remembered and reported only if the structure is sound
 * and the schema version right, so refusals are classified as protobuf-c
 * plus us_envelope_validate would classify them. */
struct scan {
	char *err;
	size_t errlen;
	bool invalid;
};

struct field {
	uint32_t number;
	enum wire_type type;
	uint64_t varint;        /* WT_VARINT */
	struct cursor span;     /* WT_LEN */
};

static int malformed(struct scan *s, const char *what)
{
	snprintf(s->err, s->errlen, "malformed protobuf: %s", what);
	return -1;
}

static void invalid(struct scan *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Keeps the first semantic fault; the scan goes on checking structure. */
static void invalid(struct scan *s, const char *fmt, ...)
{
	va_list ap;

	if (s->invalid)
		return;
	s->invalid = true;
	va_start(ap, fmt);
	vsnprintf(s->err, s->errlen, fmt, ap);
	va_end(ap);
}

static int read_varint_slow(struct cursor *c, uint64_t *out)
{
	uint64_t v = 0;

	for (unsigned int shift = 0; shift < 64; shift += 7) {
		uint8_t b;

		if (c->p >= c->end)
			return -1;
		b = *c->p++;
		if (shift == 63 && b > 1)
			return -1;
		v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			*out = v;
			return 0;
		}
	}
	return -1;
}

/* Most varints here are one or two bytes (delta-coded indices, counts):
 * those take no loop and, away from the end of the buffer, no bounds check. */
static inline int read_varint(struct cursor *c, uint64_t *out)
{
	const uint8_t *p = c->p;
	uint64_t v;

	if (c->end - p >= 3) {
		if (p[0] < 0x80) {
			*out = p[0];
			c->p = p + 1;
			return 0;
		}
		v = p[0] & 0x7f;
		if (p[1] < 0x80) {
			*out = v | (uint64_t)p[1] << 7;
			c->p = p + 2;
			return 0;
		}
		if (p[2] < 0x80) {
			*out = v | (uint64_t)(p[1] & 0x7f) << 7 | (uint64_t)p[2] << 14;
			c->p = p + 3;
			return 0;
		}
	}
	return read_varint_slow(c, out);
}

/* Reads the next field; 1 at the end of the message, -1 when malformed. */
static int next_field(struct scan *s, struct cursor *c, struct field *f)
{
	uint64_t tag, len;

	const uint8_t *start = c->p;

	if (c->p == c->end)
		return 1;
	if (read_varint(c, &tag) < 0)
		return malformed(s, "truncated tag");
	if (c->p - start > 5)
		return malformed(s, "tag longer than 5 bytes");
	f->number = (uint32_t)(tag >> 3);
	f->type = (enum wire_type)(tag & 7);
	/* protobuf-c reads tags as 32 bits and keeps unknown fields even past
	 * the 2^29 field numbers protobuf allows; match it, refuse only wider */
	if (tag >> 3 == 0 || tag > UINT32_MAX)
		return malformed(s, "field number out of range");
	switch (f->type) {
	case WT_VARINT:
		if (read_varint(c, &f->varint) < 0)
			return malformed(s, "truncated varint");
		return 0;
	case WT_I64:
	case WT_I32: {
		size_t n = f->type == WT_I64 ? 8 : 4;

		if ((size_t)(c->end - c->p) < n)
			return malformed(s, "truncated fixed-width field");
		c->p += n;
		return 0;
	}
	case WT_LEN:
		start = c->p;
		if (read_varint(c, &len) < 0 || c->p - start > 5 ||
		    len > (uint64_t)(c->end - c->p))
			return malformed(s, "length runs past the message");
		f->span.p = c->p;
		f->span.end = c->p + len;
		c->p += len;
		return 0;
	default:
		return malformed(s, "unsupported wire type");
	}
}

/* Known field with the wrong wire type: protobuf-c refuses these too. */
static int expect(struct scan *s, const struct field *f, enum wire_type t)
{
	return f->type == t ? 0 : malformed(s, "field with the wrong wire type");
}

/* Singular fields may appear once; protobuf-c would let the last win. */
static int once(struct scan *s, uint32_t *seen, const struct field *f)
{
	uint32_t bit = 1u << (f->number & 31);

	if (*seen & bit)
		return malformed(s, "singular field repeated");
	*seen |= bit;
	return 0;
}

static int string_field(struct scan *s, const struct field *f, const char **str, size_t *len)
{
	if (expect(s, f, WT_LEN) < 0)
		return -1;
	*len = (size_t)(f->span.end - f->span.p);
	if (memchr(f->span.p, 0, *len))
		return malformed(s, "NUL byte in a string");
	*str = (const char *)f->span.p;
	return 0;
}

static int u32_field(struct scan *s, const struct field *f, uint32_t *out)
{
	if (expect(s, f, WT_VARINT) < 0)
		return -1;
	if (f->varint > UINT32_MAX)
		return malformed(s, "varint wider than its 32-bit field");
	*out = (uint32_t)f->varint;
	return 0;
}

static int u64_field(struct scan *s, const struct field *f, uint64_t *out)
{
	if (expect(s, f, WT_VARINT) < 0)
		return -1;
	*out = f->varint;
	return 0;
}

struct hist_check {
	size_t n_index, n_count;
	uint64_t index;          /* running absolute index */
	uint64_t total;
	bool unsorted, out_of_range, overflow;
};

static inline void take_index(struct hist_check *h, uint64_t delta)
{
	if (h->n_index > 0 && delta == 0)
		h->unsorted = true;
	h->index += delta;
	if (h->index >= US_HIST_BUCKETS)
		h->out_of_range = true;
	h->n_index++;
}

static inline void take_count(struct hist_check *h, uint64_t count)
{
	if (__builtin_add_overflow(h->total, count, &h->total))
		h->overflow = true;
	h->n_count++;
}

/* bucket_index (indices) or bucket_count, packed (WT_LEN) or not
 * (WT_VARINT), as protobuf allows both. The hot loop of ingest. */
static int bucket_field(struct scan *s, const struct field *f, struct hist_check *h,
			bool indices)
{
	uint64_t max = indices ? UINT32_MAX : UINT64_MAX;
	struct cursor c = f->span;
	uint64_t v;

	if (f->type == WT_VARINT) {
		if (f->varint > max)
			return malformed(s, "varint wider than its field");
		if (indices)
			take_index(h, f->varint);
		else
			take_count(h, f->varint);
		return 0;
	}
	if (f->type != WT_LEN)
		return malformed(s, "field with the wrong wire type");
	while (c.p < c.end) {
		if (read_varint(&c, &v) < 0)
			return malformed(s, "truncated packed varint");
		if (indices) {
			if (v > max)
				return malformed(s, "varint wider than its field");
			take_index(h, v);
		} else {
			take_count(h, v);
		}
	}
	return 0;
}

static int scan_histogram(struct scan *s, struct cursor c)
{
	struct hist_check h = { 0 };
	struct field f;
	const char *metric = "", *unit;
	size_t metric_len = 0, unit_len;
	uint32_t seen = 0, bits = 0;
	uint64_t count = 0, sum;
	int rc;

	while ((rc = next_field(s, &c, &f)) == 0) {
		switch (f.number) {
		case 1: rc = once(s, &seen, &f) ?: string_field(s, &f, &metric, &metric_len); break;
		case 2: rc = once(s, &seen, &f) ?: string_field(s, &f, &unit, &unit_len); break;
		case 3: rc = once(s, &seen, &f) ?: u32_field(s, &f, &bits); break;
		case 4: rc = bucket_field(s, &f, &h, true); break;
		case 5: rc = bucket_field(s, &f, &h, false); break;
		case 6: rc = once(s, &seen, &f) ?: u64_field(s, &f, &count); break;
		case 7: rc = once(s, &seen, &f) ?: u64_field(s, &f, &sum); break;
		default: rc = 0; break;
		}
		if (rc < 0)
			return -1;
	}
	if (rc < 0)
		return -1;
	if (bits != US_HIST_SUB_BITS)
		invalid(s, "histogram %.*s: sub_bucket_bits %u, expected %u", (int)metric_len, metric,
			bits, US_HIST_SUB_BITS);
	else if (h.n_index != h.n_count)
		invalid(s, "histogram %.*s: %zu bucket indices but %zu counts", (int)metric_len,
			metric, h.n_index, h.n_count);
	else if (h.unsorted)
		invalid(s, "histogram %.*s: bucket indices not ascending", (int)metric_len, metric);
	else if (h.out_of_range)
		invalid(s, "histogram %.*s: bucket index %llu out of range", (int)metric_len, metric,
			(unsigned long long)h.index);
	else if (h.overflow)
		invalid(s, "histogram %.*s: bucket counts overflow", (int)metric_len, metric);
	else if (h.total != count)
		invalid(s, "histogram %.*s: buckets add up to %llu, count says %llu", (int)metric_len,
			metric, (unsigned long long)h.total, (unsigned long long)count);
	return 0;
}

/* Counter {1 metric, 2 unit, 3 value} and Gauge {.., 3 double}: structure only. */
static int scan_named_value(struct scan *s, struct cursor c, enum wire_type value_type)
{
	struct field f;
	const char *str;
	size_t len;
	uint32_t seen = 0;
	int rc;

	while ((rc = next_field(s, &c, &f)) == 0) {
		switch (f.number) {
		case 1:
		case 2: rc = once(s, &seen, &f) ?: string_field(s, &f, &str, &len); break;
		case 3: rc = once(s, &seen, &f) ?: expect(s, &f, value_type); break;
		default: rc = 0; break;
		}
		if (rc < 0)
			return -1;
	}
	return rc < 0 ? -1 : 0;
}

static int scan_metric_batch(struct scan *s, struct cursor c, struct us_envelope_view *v)
{
	struct field f;
	uint32_t seen = 0;
	uint64_t role = 0;
	int rc;

	v->workload = "";
	v->workload_len = 0;
	while ((rc = next_field(s, &c, &f)) == 0) {
		switch (f.number) {
		case 1: rc = once(s, &seen, &f) ?: string_field(s, &f, &v->workload, &v->workload_len); break;
		case 2: rc = once(s, &seen, &f) ?: u64_field(s, &f, &role); break;
		case 3: rc = once(s, &seen, &f) ?: u64_field(s, &f, &v->interval_start_ns); break;
		case 4: rc = once(s, &seen, &f) ?: u64_field(s, &f, &v->interval_end_ns); break;
		case 5:
			rc = expect(s, &f, WT_LEN) ?: scan_histogram(s, f.span);
			v->n_histograms++;
			break;
		case 6: rc = expect(s, &f, WT_LEN) ?: scan_named_value(s, f.span, WT_VARINT); break;
		case 7: rc = expect(s, &f, WT_LEN) ?: scan_named_value(s, f.span, WT_I64); break;
		default: rc = 0; break;
		}
		if (rc < 0)
			return -1;
	}
	if (rc < 0)
		return -1;
	/* enums are int32 on the wire, negative ones sign-extended to 64 bits */
	v->role = (int32_t)(uint32_t)role;
	if (v->workload_len == 0)
		invalid(s, "metric_batch: empty workload name");
	else if (v->interval_end_ns < v->interval_start_ns)
		invalid(s, "metric_batch %.*s: interval ends before it starts", (int)v->workload_len,
			v->workload);
	return 0;
}

/* Bodies other than MetricBatch: protobuf-c is the reference; they are
 * small and rare (Hello, Heartbeat), or (RequestBatch) checked with the very
 * function the reference uses and decoded again by the store, which needs
 * every field anyway. */
static int check_other_body(struct scan *s, const struct us_envelope_view *v)
{
	const ProtobufCMessageDescriptor *d;
	ProtobufCMessage *m;

	switch (v->body_case) {
	case UNDERSTUDY__ENVELOPE__BODY_HELLO: d = &understudy__hello__descriptor; break;
	case UNDERSTUDY__ENVELOPE__BODY_REQUEST_BATCH: d = &understudy__request_batch__descriptor; break;
	case UNDERSTUDY__ENVELOPE__BODY_HEARTBEAT: d = &understudy__heartbeat__descriptor; break;
	case UNDERSTUDY__ENVELOPE__BODY_COMMAND_RESULT:
		d = &understudy__command_result__descriptor;
		break;
	default: return 0;
	}
	m = protobuf_c_message_unpack(d, NULL, v->body_len, v->body);
	if (!m)
		return malformed(s, "body does not decode");
	if (v->body_case == UNDERSTUDY__ENVELOPE__BODY_COMMAND_RESULT &&
	    ((Understudy__CommandResult *)m)->command_id == 0)
		invalid(s, "command_result: command_id 0");
	if (v->body_case == UNDERSTUDY__ENVELOPE__BODY_REQUEST_BATCH) {
		char why[256];

		if (us_request_batch_validate((Understudy__RequestBatch *)m, why, sizeof(why)) < 0)
			invalid(s, "%s", why);
	}
	protobuf_c_message_free_unpacked(m, NULL);
	return 0;
}

enum us_frame_err us_scan_envelope(const uint8_t *buf, size_t len, struct us_envelope_view *v,
				   char *err, size_t errlen)
{
	struct scan s = { .err = err, .errlen = errlen };
	struct cursor c = { buf, buf + len }, body;
	struct field f;
	uint32_t seen = 0;
	int rc;

	memset(v, 0, sizeof(*v));
	v->agent_id = "";
	while ((rc = next_field(&s, &c, &f)) == 0) {
		switch (f.number) {
		case 1: rc = once(&s, &seen, &f) ?: string_field(&s, &f, &v->agent_id, &v->agent_id_len); break;
		case 2: rc = once(&s, &seen, &f) ?: u64_field(&s, &f, &v->seq); break;
		case 3: rc = once(&s, &seen, &f) ?: u64_field(&s, &f, &v->sent_unix_ns); break;
		case 4: rc = once(&s, &seen, &f) ?: u32_field(&s, &f, &v->schema_version); break;
		case 10: case 11: case 12: case 13: case 14:
			if (v->body_case) {
				rc = malformed(&s, "more than one body");
				break;
			}
			rc = expect(&s, &f, WT_LEN);
			v->body_case = (Understudy__Envelope__BodyCase)f.number;
			v->body = f.span.p;
			v->body_len = (size_t)(f.span.end - f.span.p);
			break;
		default: rc = 0; break;
		}
		if (rc < 0)
			return US_FRAME_ERR_PROTO;
	}
	if (rc < 0)
		return US_FRAME_ERR_PROTO;
	/* the checks us_envelope_validate makes first */
	if (!us_agent_id_valid_n(v->agent_id, v->agent_id_len))
		invalid(&s, "invalid agent_id (1-%d of [A-Za-z0-9._-])", US_AGENT_ID_MAX);
	else if (v->seq == 0)
		invalid(&s, "seq 0 is reserved");
	else if (!v->body_case)
		invalid(&s, "envelope seq %llu has no body", (unsigned long long)v->seq);
	if (v->body_case == UNDERSTUDY__ENVELOPE__BODY_METRIC_BATCH) {
		body = (struct cursor){ v->body, v->body + v->body_len };
		if (scan_metric_batch(&s, body, v) < 0)
			return US_FRAME_ERR_PROTO;
	} else if (check_other_body(&s, v) < 0) {
		return US_FRAME_ERR_PROTO;
	}
	if (v->schema_version != US_SCHEMA_VERSION) {
		snprintf(err, errlen, "schema version %u, this build speaks %u", v->schema_version,
			 US_SCHEMA_VERSION);
		return US_FRAME_ERR_SCHEMA;
	}
	if (s.invalid)
		return US_FRAME_ERR_INVALID;
	return US_FRAME_OK;
}
