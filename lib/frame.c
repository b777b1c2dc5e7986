/* Frame header and zlib compression with hard size limits. */
#include "frame.h"

#include <libdeflate.h>
#include <stdio.h>
#include <string.h>

const char *us_frame_err_name(enum us_frame_err e)
{
	static const char *const names[US_FRAME_ERR_COUNT] = {
		[US_FRAME_OK] = "ok",
		[US_FRAME_ERR_GARBAGE] = "garbage",
		[US_FRAME_ERR_OVERSIZE] = "oversize",
		[US_FRAME_ERR_ZLIB] = "bad_zlib",
		[US_FRAME_ERR_PROTO] = "bad_protobuf",
		[US_FRAME_ERR_SCHEMA] = "bad_schema_version",
		[US_FRAME_ERR_INVALID] = "invalid",
	};
	return (unsigned)e < US_FRAME_ERR_COUNT ? names[e] : "unknown";
}

void us_codec_init(struct us_codec *c)
{
	memset(c, 0, sizeof(*c));
}

void us_codec_free(struct us_codec *c)
{
	if (c->compressor)
		libdeflate_free_compressor(c->compressor);
	if (c->decompressor)
		libdeflate_free_decompressor(c->decompressor);
	us_buf_free(&c->plain);
	us_buf_free(&c->inflated);
	memset(c, 0, sizeof(*c));
}

static int compress_into(struct us_codec *c, const uint8_t *body, size_t len,
			 struct us_buf *out)
{
	size_t bound, n;

	/* level 1: the link is not the bottleneck, the agent's CPU is */
	if (!c->compressor && !(c->compressor = libdeflate_alloc_compressor(1)))
		return -1;
	bound = libdeflate_zlib_compress_bound(c->compressor, len);
	if (us_buf_reserve(out, US_FRAME_HDR + bound) < 0)
		return -1;
	n = libdeflate_zlib_compress(c->compressor, body, len, out->data + US_FRAME_HDR, bound);
	if (n == 0)
		return -1;
	out->len = US_FRAME_HDR + n;
	return 0;
}

int us_frame_pack(struct us_codec *c, enum us_frame_type type, const uint8_t *body,
		  size_t len, struct us_buf *out, char *err, size_t errlen)
{
	uint8_t flags = 0;

	us_buf_clear(out);
	if (len > US_FRAME_MAX) {
		snprintf(err, errlen, "message of %zu bytes exceeds the %u-byte limit",
			 len, US_FRAME_MAX);
		return -1;
	}
	if (len > US_FRAME_COMPRESS_MIN) {
		if (compress_into(c, body, len, out) < 0) {
			snprintf(err, errlen, "zlib compression failed (%zu bytes)", len);
			return -1;
		}
		flags |= US_FRAME_FLAG_ZLIB;
	} else {
		if (us_buf_reserve(out, US_FRAME_HDR + len) < 0) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		if (len)
			memcpy(out->data + US_FRAME_HDR, body, len);
		out->len = US_FRAME_HDR + len;
	}
	out->data[0] = US_FRAME_MAGIC;
	out->data[1] = (uint8_t)type;
	out->data[2] = flags;
	out->data[3] = 0;
	return 0;
}

static enum us_frame_err inflate_into(struct us_codec *c, const uint8_t *in, size_t len,
				      char *err, size_t errlen)
{
	size_t used_in = 0, produced = 0;

	if (!c->decompressor && !(c->decompressor = libdeflate_alloc_decompressor())) {
		snprintf(err, errlen, "out of memory for the decompressor");
		return US_FRAME_ERR_ZLIB;
	}
	/* the whole limit, once: pages are touched only as far as bodies go */
	if (us_buf_reserve(&c->inflated, US_FRAME_MAX) < 0) {
		snprintf(err, errlen, "out of memory inflating");
		return US_FRAME_ERR_ZLIB;
	}
	switch (libdeflate_zlib_decompress_ex(c->decompressor, in, len, c->inflated.data,
					      US_FRAME_MAX, &used_in, &produced)) {
	case LIBDEFLATE_SUCCESS:
		break;
	case LIBDEFLATE_INSUFFICIENT_SPACE:
		snprintf(err, errlen, "inflates beyond the %u-byte limit", US_FRAME_MAX);
		return US_FRAME_ERR_OVERSIZE;
	default:
		snprintf(err, errlen, "zlib: corrupt or truncated stream (%zu bytes)", len);
		return US_FRAME_ERR_ZLIB;
	}
	if (used_in != len) {
		snprintf(err, errlen, "zlib: %zu trailing bytes after the stream", len - used_in);
		return US_FRAME_ERR_ZLIB;
	}
	c->inflated.len = produced;
	return US_FRAME_OK;
}

enum us_frame_err us_frame_unpack(struct us_codec *c, const uint8_t *frame, size_t len,
				  enum us_frame_type *type, const uint8_t **body,
				  size_t *body_len, char *err, size_t errlen)
{
	enum us_frame_err rc;

	if (len > US_FRAME_HDR + (size_t)US_FRAME_MAX) {
		snprintf(err, errlen, "frame of %zu bytes exceeds the limit", len);
		return US_FRAME_ERR_OVERSIZE;
	}
	if (len < US_FRAME_HDR || frame[0] != US_FRAME_MAGIC || frame[3] != 0 ||
	    (frame[2] & ~US_FRAME_FLAG_ZLIB) ||
	    frame[1] < US_FRAME_ENVELOPE || frame[1] > US_FRAME_COMMAND) {
		snprintf(err, errlen, "not an understudy frame (%zu bytes, header %02x %02x %02x %02x)",
			 len, len > 0 ? frame[0] : 0, len > 1 ? frame[1] : 0,
			 len > 2 ? frame[2] : 0, len > 3 ? frame[3] : 0);
		return US_FRAME_ERR_GARBAGE;
	}
	*type = (enum us_frame_type)frame[1];
	if (!(frame[2] & US_FRAME_FLAG_ZLIB)) {
		*body = frame + US_FRAME_HDR;
		*body_len = len - US_FRAME_HDR;
		return US_FRAME_OK;
	}
	rc = inflate_into(c, frame + US_FRAME_HDR, len - US_FRAME_HDR, err, errlen);
	if (rc != US_FRAME_OK)
		return rc;
	*body = c->inflated.data;
	*body_len = c->inflated.len;
	return US_FRAME_OK;
}
