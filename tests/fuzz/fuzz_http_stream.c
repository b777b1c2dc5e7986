/* Fuzzing of HTTP message framing (lib/http_stream.c). The first byte picks
 * a chunk size (low 6 bits), the direction (bit 6: responses) and whether
 * body bytes go through skip() where allowed (bit 7); the second byte says
 * which of the first 8 responses answer HEAD; the rest is the connection's
 * bytes. The stream is run twice, fed whole and in chunks, and checked:
 *  - no crash or sanitizer report; a feed consumes at most what it is given
 *    and a run never more than the input;
 *  - the same messages end at the same offsets with the same figures, and
 *    the run stops the same way, however the bytes are split and whether
 *    known body bytes are fed or skipped (a capture cut must not move a
 *    boundary);
 *  - each message's msg_bytes is exactly the distance from the previous
 *    boundary, and its head fits it and the head limit. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http_stream.h"

#define MAX_ENDS 4096

struct run {
	size_t consumed;
	size_t nmsg;
	int state;
	const char *error;
	struct end {
		size_t at;
		uint64_t index, msg_bytes;
		size_t head_bytes;
		int method;
		unsigned status;
		int64_t content_length;
		int chunked, keep_alive, upgrade, interim;
	} ends[MAX_ENDS];
};

static void note_end(struct run *r, const struct us_http_stream *s)
{
	struct end *e;
	uint64_t prev = r->nmsg ? r->ends[(r->nmsg - 1) % MAX_ENDS].at : 0;

	/* msg_bytes covers exactly the bytes since the previous boundary */
	if (s->msg_bytes != r->consumed - prev)
		abort();
	if (s->head_bytes > s->msg_bytes || s->head_bytes > US_HTTP_STREAM_MAX_HEAD)
		abort();
	if (s->index != r->nmsg || s->state != US_HTTP_STREAM_IDLE)
		abort();
	e = &r->ends[r->nmsg++ % MAX_ENDS];
	memset(e, 0, sizeof(*e));
	e->at = r->consumed;
	e->index = s->index;
	e->msg_bytes = s->msg_bytes;
	e->head_bytes = s->head_bytes;
	e->method = s->method;
	e->status = s->status_code;
	e->content_length = s->content_length;
	e->chunked = s->chunked;
	e->keep_alive = s->keep_alive;
	e->upgrade = s->upgrade;
	e->interim = s->interim;
}

/* Feeds one piece until it is used up; returns 0 if the stream stopped. */
static int feed_piece(struct us_http_stream *s, struct run *r, const char *data, size_t len,
		      int use_skip)
{
	size_t off = 0;

	while (off < len) {
		size_t got;
		int done;

		if (use_skip && us_http_stream_skip(s, len - off, &done) == 0) {
			got = len - off;
		} else {
			got = us_http_stream_feed(s, data + off, len - off, &done);
			if (got > len - off)
				abort();
		}
		off += got;
		r->consumed += got;
		if (done)
			note_end(r, s);
		else if (off < len)
			return 0;
	}
	return 1;
}

static void run(struct us_http_stream *s, struct run *r, enum us_http_stream_kind kind,
		unsigned heads, const char *data, size_t size, size_t chunk, int use_skip)
{
	us_http_stream_init(s, kind);
	for (int i = 0; i < 8; i++)
		us_http_stream_expect(s, (heads >> i) & 1);
	r->consumed = 0;
	r->nmsg = 0;
	for (size_t off = 0; off < size; off += chunk) {
		size_t n = size - off < chunk ? size - off : chunk;

		if (!feed_piece(s, r, data + off, n, use_skip))
			break;
	}
	if (r->consumed > size)
		abort();
	if (us_http_stream_eof(s))
		note_end(r, s);
	r->state = s->state;
	r->error = s->error;
	if ((s->state == US_HTTP_STREAM_ERROR) != (s->error != NULL))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct us_http_stream sw, sp;
	static struct run whole, pieces;
	enum us_http_stream_kind kind;
	size_t chunk;
	unsigned heads;
	const char *text;
	int use_skip;

	if (size < 2)
		return 0;
	chunk = (size_t)(data[0] & 0x3f) + 1;
	kind = data[0] & 0x40 ? US_HTTP_STREAM_RESPONSES : US_HTTP_STREAM_REQUESTS;
	use_skip = data[0] >> 7;
	heads = data[1];
	text = (const char *)data + 2;
	size -= 2;

	run(&sw, &whole, kind, heads, text, size, size ? size : 1, 0);
	run(&sp, &pieces, kind, heads, text, size, chunk, use_skip);
	if (whole.consumed != pieces.consumed || whole.nmsg != pieces.nmsg ||
	    whole.state != pieces.state || whole.error != pieces.error)
		abort();
	for (size_t i = 0; i < whole.nmsg && i < MAX_ENDS; i++)
		if (memcmp(&whole.ends[i], &pieces.ends[i], sizeof(whole.ends[i])) != 0)
			abort();
	if (sw.msg_bytes != sp.msg_bytes || sw.head_bytes != sp.head_bytes)
		abort();
	return 0;
}
