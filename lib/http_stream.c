/* Message framing of one direction of an HTTP/1.x connection, over
 * http-parser: where each request or response begins and ends, and the
 * figures of its head. Owns nothing but the struct: bodies are counted,
 * never kept.
 *
 * The parser is paused in two callbacks so that feed() knows exact offsets
 * without data callbacks: at the end of a head (to count head bytes against
 * US_HTTP_STREAM_MAX_HEAD) and at the end of a message (to return right
 * after its last byte). Feed unpauses and, after a head, carries on. */
#include "http_stream.h"

#include <stddef.h>
#include <string.h>

static struct us_http_stream *stream_of(http_parser *p)
{
	/* Not parser.data: the struct may be copied or moved by its owner. */
	return (struct us_http_stream *)((char *)p - offsetof(struct us_http_stream, parser));
}

static void fail(struct us_http_stream *s, const char *why)
{
	s->state = US_HTTP_STREAM_ERROR;
	s->error = why;
}

/* The figures of a message start blank; content_length -1 means absent. */
static void clear_message(struct us_http_stream *s)
{
	s->state = US_HTTP_STREAM_IDLE;
	s->msg_bytes = 0;
	s->head_bytes = 0;
	s->method = (enum http_method)0;
	s->status_code = 0;
	s->content_length = -1;
	s->chunked = 0;
	s->keep_alive = 0;
	s->upgrade = 0;
	s->msg_done = 0;
	s->interim = 0;
}

static int on_message_begin(http_parser *p)
{
	stream_of(p)->state = US_HTTP_STREAM_HEAD;
	return 0;
}

/* Pops the HEAD flag of the request a final response answers. An interim
 * (1xx but 101) response answers nothing yet: the flag stays for the final
 * one. No flag queued means the caller did not say: assume not HEAD. */
static int answers_head(struct us_http_stream *s)
{
	int is_head;

	if (s->head_req_count == 0)
		return 0;
	is_head = s->head_req[s->head_req_first];
	s->head_req_first = (s->head_req_first + 1) % US_HTTP_STREAM_MAX_PIPELINE;
	s->head_req_count--;
	return is_head;
}

/* Whether a response has no body whatever its headers say (RFC 9112 6.3):
 * 1xx, 204 and 304, and any answer to HEAD. http-parser would read a body
 * on a 304 or 204 carrying Content-Length, which servers do send for 304. */
static int response_is_bodiless(struct us_http_stream *s, http_parser *p)
{
	unsigned st = p->status_code;

	if (st / 100 == 1 && st != 101) {
		s->interim = 1;
		return 1;
	}
	if (answers_head(s))
		return 1;
	return st / 100 == 1 || st == 204 || st == 304;
}

static int on_headers_complete(http_parser *p)
{
	struct us_http_stream *s = stream_of(p);
	int skip = 0;

	if (s->kind == US_HTTP_STREAM_RESPONSES)
		skip = response_is_bodiless(s, p);
	if ((p->flags & F_CONTENTLENGTH) && p->content_length > (uint64_t)INT64_MAX) {
		s->cb_error = "Content-Length out of range";
		return -1;
	}
	s->method = (enum http_method)p->method;
	s->status_code = p->status_code;
	s->content_length = (p->flags & F_CONTENTLENGTH) ? (int64_t)p->content_length : -1;
	s->chunked = !!(p->flags & F_CHUNKED);
	s->upgrade = p->upgrade;
	/* http-parser sets F_SKIPBODY itself when we return 1, but only after
	 * this returns; keep-alive depends on it (a HEAD answer without length
	 * does not end at close). */
	if (skip)
		p->flags |= F_SKIPBODY;
	s->keep_alive = http_should_keep_alive(p);
	s->state = US_HTTP_STREAM_BODY;
	s->head_paused = 1;
	http_parser_pause(p, 1);
	return skip;
}

static int on_message_complete(http_parser *p)
{
	struct us_http_stream *s = stream_of(p);

	/* An upgrade is only known for sure once the message is whole: a 101
	 * or CONNECT can be told at the head, an Upgrade request with a body
	 * only here. */
	s->upgrade = p->upgrade;
	s->state = US_HTTP_STREAM_IDLE;
	s->msg_done = 1;
	http_parser_pause(p, 1);
	return 0;
}

static const http_parser_settings settings = {
	.on_message_begin = on_message_begin,
	.on_headers_complete = on_headers_complete,
	.on_message_complete = on_message_complete,
};

static void reset_parser(struct us_http_stream *s)
{
	http_parser_init(&s->parser,
			 s->kind == US_HTTP_STREAM_REQUESTS ? HTTP_REQUEST : HTTP_RESPONSE);
}

void us_http_stream_init(struct us_http_stream *s, enum us_http_stream_kind kind)
{
	memset(s, 0, sizeof(*s));
	s->kind = kind;
	s->settings = settings;
	reset_parser(s);
	clear_message(s);
}

/* One http_parser_execute over at most len bytes, bounded so a head never
 * goes past the limit. Returns the bytes consumed; sets *stop when feed must
 * return (message end or error). */
static size_t step(struct us_http_stream *s, const char *data, size_t len, int *stop)
{
	int in_head = s->state == US_HTTP_STREAM_IDLE || s->state == US_HTTP_STREAM_HEAD;
	size_t n = len, got;
	enum http_errno e;

	*stop = 0;
	if (in_head) {
		size_t room = US_HTTP_STREAM_MAX_HEAD - s->head_bytes;

		if (room == 0) {
			fail(s, "head too large");
			*stop = 1;
			return 0;
		}
		if (n > room)
			n = room;
	}
	got = http_parser_execute(&s->parser, &s->settings, data, n);
	e = HTTP_PARSER_ERRNO(&s->parser);
	s->msg_bytes += got;
	if (e == HPE_PAUSED) {
		http_parser_pause(&s->parser, 0);
		if (s->head_paused) {
			/* Stopped on the head's last LF, not consumed: the next
			 * step starts with it, in BODY, so count it here. */
			s->head_paused = 0;
			s->head_bytes += got + 1;
		} else if (in_head) {
			s->head_bytes += got;
		}
		*stop = s->msg_done;
		return got;
	}
	if (in_head)
		s->head_bytes += got;
	if (e != HPE_OK) {
		fail(s, e == HPE_CB_headers_complete && s->cb_error ? s->cb_error
								      : http_errno_description(e));
		*stop = 1;
	} else if (got < n) {
		/* http-parser stops early only on error or pause. */
		fail(s, "parser stopped");
		*stop = 1;
	}
	return got;
}

size_t us_http_stream_feed(struct us_http_stream *s, const char *data, size_t len,
			   int *done)
{
	size_t off = 0;
	int stop = 0;

	*done = 0;
	if (s->state == US_HTTP_STREAM_ERROR || len == 0)
		return 0;
	if (s->msg_done) {
		/* After CONNECT or an accepted Upgrade the bytes belong to
		 * another protocol: nothing more to frame. */
		if (s->upgrade) {
			fail(s, "upgraded");
			return 0;
		}
		/* A fresh parser per message: whether http-parser refuses bytes
		 * after a "Connection: close" message depends on how it was
		 * built (HTTP_PARSER_STRICT); the mirror frames them either way. */
		reset_parser(s);
		clear_message(s);
		s->index++;
	}
	while (off < len && !stop)
		off += step(s, data + off, len - off, &stop);
	*done = s->msg_done;
	return off;
}

int us_http_stream_skip(struct us_http_stream *s, uint64_t n, int *done)
{
	static const char zero[1];
	int stop;

	*done = 0;
	/* Inside a Content-Length body http-parser sits in its identity-body
	 * state with parser.content_length holding the bytes left (>= 1). */
	if (s->state != US_HTTP_STREAM_BODY || s->chunked || s->content_length < 0 ||
	    n > s->parser.content_length)
		return -1;
	if (n == 0)
		return 0;
	/* Take all but one byte off the count, then feed one byte so that
	 * http-parser itself sees the body end when that was the last. */
	s->parser.content_length -= n - 1;
	s->msg_bytes += n - 1;
	step(s, zero, 1, &stop);
	*done = s->msg_done;
	return 0;
}

int us_http_stream_eof(struct us_http_stream *s)
{
	/* Only a body with neither length nor chunking ends at close; any
	 * other message cut short stays incomplete. */
	if (s->state != US_HTTP_STREAM_BODY || s->chunked || s->content_length >= 0 ||
	    s->kind != US_HTTP_STREAM_RESPONSES)
		return 0;
	http_parser_execute(&s->parser, &s->settings, "", 0);
	if (HTTP_PARSER_ERRNO(&s->parser) == HPE_PAUSED)
		http_parser_pause(&s->parser, 0);
	return s->msg_done;
}

int us_http_stream_expect(struct us_http_stream *s, int is_head)
{
	unsigned i;

	if (s->head_req_count >= US_HTTP_STREAM_MAX_PIPELINE)
		return -1;
	i = (s->head_req_first + s->head_req_count) % US_HTTP_STREAM_MAX_PIPELINE;
	s->head_req[i] = is_head != 0;
	s->head_req_count++;
	return 0;
}

int us_http_method_is_write(enum http_method m)
{
	switch (m) {
	case HTTP_GET:
	case HTTP_HEAD:
	case HTTP_OPTIONS:
	case HTTP_TRACE:
		return 0;
	default:
		return 1;
	}
}
