/* Frame header and zlib compression with hard size limits. */
#include "frame.h"

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
	if (c->deflate_ready)
		deflateEnd(&c->deflate);
	if (c->inflate_ready)
		inflateEnd(&c->inflate);
	us_buf_free(&c->plain);
	us_buf_free(&c->inflated);
	memset(c, 0, sizeof(*c));
}

static int compress_into(struct us_codec *c, const uint8_t *body, size_t len,
			 struct us_buf *out)
{
	uLong bound;

	if (!c->deflate_ready) {
		/* level 1: the link is not the bottleneck, the agent's CPU is */
		if (deflateInit(&c->deflate, 1) != Z_OK)
			return -1;
		c->deflate_ready = 1;
	} else if (deflateReset(&c->deflate) != Z_OK) {
		return -1;
	}
	bound = deflateBound(&c->deflate, len);
	if (us_buf_reserve(out, US_FRAME_HDR + bound) < 0)
		return -1;
	c->deflate.next_in = (Bytef *)body;
	c->deflate.avail_in = (uInt)len;
	c->deflate.next_out = out->data + US_FRAME_HDR;
	c->deflate.avail_out = (uInt)bound;
	if (deflate(&c->deflate, Z_FINISH) != Z_STREAM_END)
		return -1;
	out->len = US_FRAME_HDR + (bound - c->deflate.avail_out);
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
	z_stream *zs = &c->inflate;
	struct us_buf *out = &c->inflated;
	int zrc;

	if (!c->inflate_ready) {
		if (inflateInit(zs) != Z_OK) {
			snprintf(err, errlen, "zlib init failed");
			return US_FRAME_ERR_ZLIB;
		}
		c->inflate_ready = 1;
	} else if (inflateReset(zs) != Z_OK) {
		snprintf(err, errlen, "zlib reset failed");
		return US_FRAME_ERR_ZLIB;
	}
	us_buf_clear(out);
	zs->next_in = (Bytef *)in;
	zs->avail_in = (uInt)len;
	do {
		size_t room;

		if (out->len > US_FRAME_MAX) {
			snprintf(err, errlen, "inflates beyond the %u-byte limit", US_FRAME_MAX);
			return US_FRAME_ERR_OVERSIZE;
		}
		if (us_buf_reserve(out, out->len + 65536) < 0) {
			snprintf(err, errlen, "out of memory inflating");
			return US_FRAME_ERR_ZLIB;
		}
		room = out->cap - out->len;
		if (room > US_FRAME_MAX + 1 - out->len)
			room = US_FRAME_MAX + 1 - out->len;
		zs->next_out = out->data + out->len;
		zs->avail_out = (uInt)room;
		zrc = inflate(zs, Z_NO_FLUSH);
		out->len += room - zs->avail_out;
		if (zrc != Z_OK && zrc != Z_STREAM_END) {
			snprintf(err, errlen, "zlib: %s", zs->msg ? zs->msg : "corrupt stream");
			return US_FRAME_ERR_ZLIB;
		}
		if (zrc == Z_OK && zs->avail_in == 0 && zs->avail_out != 0) {
			snprintf(err, errlen, "zlib: truncated stream");
			return US_FRAME_ERR_ZLIB;
		}
	} while (zrc != Z_STREAM_END);
	if (out->len > US_FRAME_MAX) {
		snprintf(err, errlen, "inflates beyond the %u-byte limit", US_FRAME_MAX);
		return US_FRAME_ERR_OVERSIZE;
	}
	if (zs->avail_in != 0) {
		snprintf(err, errlen, "zlib: %u trailing bytes after the stream", zs->avail_in);
		return US_FRAME_ERR_ZLIB;
	}
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
	    (frame[1] != US_FRAME_ENVELOPE && frame[1] != US_FRAME_ACK)) {
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
