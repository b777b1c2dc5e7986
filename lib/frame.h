/* The frame: the bytes of one ZeroMQ message on the agent <-> coordinator
 * link. A 4-byte header {'U', type, flags, 0} and a body that is zlib
 * compressed when it is larger than US_FRAME_COMPRESS_MIN. Both directions
 * refuse anything larger than US_FRAME_MAX, before and after inflation, so a
 * peer cannot make the other allocate without bound. */
#ifndef US_FRAME_H
#define US_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define US_FRAME_MAGIC 'U'
#define US_FRAME_HDR 4
#define US_FRAME_MAX (4u << 20)
#define US_FRAME_COMPRESS_MIN 1024
#define US_FRAME_FLAG_ZLIB 0x01

enum us_frame_type {
	US_FRAME_ENVELOPE = 1, /* agent -> coordinator */
	US_FRAME_ACK = 2,      /* coordinator -> agent */
	US_FRAME_COMMAND = 3,  /* coordinator -> agent */
};

/* Why a frame was refused; each has its own self-metric. */
enum us_frame_err {
	US_FRAME_OK = 0,
	US_FRAME_ERR_GARBAGE,    /* bad magic, unknown type or flags, short */
	US_FRAME_ERR_OVERSIZE,   /* over US_FRAME_MAX, wire or inflated */
	US_FRAME_ERR_ZLIB,       /* compressed body does not inflate */
	US_FRAME_ERR_PROTO,      /* body is not the message it claims */
	US_FRAME_ERR_SCHEMA,     /* schema version we do not speak */
	US_FRAME_ERR_INVALID,    /* well-formed but semantically wrong */
	US_FRAME_ERR_COUNT
};

const char *us_frame_err_name(enum us_frame_err e);

/* Reusable compression state and buffers, one per thread: compressor state
 * is hundreds of KiB, too much to set up for every frame. The zlib format is
 * written and read with libdeflate, which inflates 2-3x faster than zlib. */
struct us_codec {
	struct libdeflate_compressor *compressor;
	struct libdeflate_decompressor *decompressor;
	struct us_buf plain;     /* serialization, before compression */
	struct us_buf inflated;  /* received body after inflation */
};

void us_codec_init(struct us_codec *c);
void us_codec_free(struct us_codec *c);

/* Builds a frame around body into out (cleared first). */
int us_frame_pack(struct us_codec *c, enum us_frame_type type, const uint8_t *body,
		  size_t len, struct us_buf *out, char *err, size_t errlen);

/* Checks the header and, when compressed, inflates into c->inflated. On
 * success *body and *body_len point at the plain body (inside frame or c). */
enum us_frame_err us_frame_unpack(struct us_codec *c, const uint8_t *frame, size_t len,
				  enum us_frame_type *type, const uint8_t **body,
				  size_t *body_len, char *err, size_t errlen);

#endif
