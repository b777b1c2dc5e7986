/* Message framing of one direction of an HTTP/1.x connection, for mirroring.
 * The capture sees a connection as an ordered byte stream; replay needs to
 * know where each request (or response) begins and ends so that it forwards
 * or drops whole messages, never halves, and so that latency can be taken
 * from the first byte of a request to the last byte of its response.
 *
 * Wraps http-parser. Handles pipelining (several messages in one feed),
 * keep-alive, Content-Length and chunked bodies of any size (bodies are
 * never buffered, only counted), responses without a body (HEAD, 1xx, 204,
 * 304) and responses delimited by connection close. Pure: no I/O, no
 * allocation, so it can be fuzzed on a buffer. */
#ifndef US_HTTP_STREAM_H
#define US_HTTP_STREAM_H

#include <stddef.h>
#include <stdint.h>

#include <http_parser.h>

#define US_HTTP_STREAM_MAX_HEAD 16384   /* request/status line + headers */
#define US_HTTP_STREAM_MAX_PIPELINE 64  /* HEAD flags queued for responses */

enum us_http_stream_kind {
	US_HTTP_STREAM_REQUESTS,
	US_HTTP_STREAM_RESPONSES,
};

enum us_http_stream_state {
	US_HTTP_STREAM_IDLE,      /* between messages */
	US_HTTP_STREAM_HEAD,      /* inside a head */
	US_HTTP_STREAM_BODY,      /* head complete, inside the body */
	US_HTTP_STREAM_ERROR,     /* not HTTP/1.x; sticky until re-init */
};

struct us_http_stream {
	http_parser parser;
	http_parser_settings settings;
	enum us_http_stream_kind kind;
	enum us_http_stream_state state;
	uint64_t index;             /* 0-based index of the current/next message */
	uint64_t msg_bytes;         /* bytes of the current message so far,
				     * blank lines before it included */
	size_t head_bytes;          /* of those, the head's (exact once done) */
	/* Of the current message once its head is complete: */
	enum http_method method;    /* requests */
	unsigned status_code;       /* responses */
	int64_t content_length;     /* -1 when absent; the header's figure
				     * even when the response has no body */
	int chunked;
	int keep_alive;             /* http_should_keep_alive() at head end */
	int upgrade;                /* CONNECT or Upgrade: stream is no longer HTTP */
	/* Responses: whether the n-th pending response answers a HEAD request
	 * (no body whatever its headers say). A ring of flags. */
	uint8_t head_req[US_HTTP_STREAM_MAX_PIPELINE];
	unsigned head_req_first, head_req_count;
	int msg_done;               /* set by the parser callback, read by feed */
	int interim;                /* the message is a 1xx other than 101 */
	int head_paused;            /* parser paused at the end of a head */
	const char *cb_error;       /* reason a callback failed, for error */
	const char *error;          /* static text when state is ERROR */
};

void us_http_stream_init(struct us_http_stream *s, enum us_http_stream_kind kind);

/* Consumes bytes from data, stopping right after the end of a message, if
 * one ends within len. Returns the bytes consumed (<= len) and sets *done to
 * 1 when a message ended exactly there (its figures stay readable in *s
 * until the next feed), 0 otherwise. Call again with the rest. On malformed
 * input returns what was consumed before the fault and enters ERROR; further
 * feeds consume nothing. A head longer than US_HTTP_STREAM_MAX_HEAD is an
 * error. Feeding zero bytes changes nothing (figures stay).
 *
 * A 1xx response other than 101 (100 Continue, 103 Early Hints) is a message
 * of its own (done, index advances, interim=1) but does not answer a request:
 * it takes no HEAD flag from the expect() queue, its final response does.
 * A message with upgrade=1 (CONNECT, an Upgrade request, a 101 response)
 * ends the stream: the next non-empty feed enters ERROR with the reason
 * "upgraded" and consumes nothing. keep_alive=0 is only reported: bytes
 * after such a message are framed as usual. */
size_t us_http_stream_feed(struct us_http_stream *s, const char *data, size_t len,
			   int *done);

/* Bytes of the current message that are known but were not captured (body
 * bytes past a capture cap). Valid only inside a body of known length with
 * at least n bytes left; returns 0 and advances, or -1 (nothing changed).
 * Exactly as if n body bytes were fed: msg_bytes grows by n and *done is set
 * when they were the last of the body. Refused in chunked and close-delimited
 * bodies, whose end only their bytes tell. */
int us_http_stream_skip(struct us_http_stream *s, uint64_t n, int *done);

/* The connection closed: ends a response delimited by close. Returns 1 if
 * that completed a message (its figures readable as after a feed), 0
 * otherwise; a message cut short stays incomplete and the state unchanged. */
int us_http_stream_eof(struct us_http_stream *s);

/* Responses only: the next unanswered request was HEAD (is_head=1) or not.
 * Call once per request, in request order, before feeding its response.
 * Returns -1 if more than US_HTTP_STREAM_MAX_PIPELINE are outstanding. A
 * response with no flag queued is taken as answering a request not HEAD. */
int us_http_stream_expect(struct us_http_stream *s, int is_head);

/* Whether a request method changes server state (everything but GET, HEAD,
 * OPTIONS and TRACE); mirroring drops these unless allow_writes. */
int us_http_method_is_write(enum http_method m);

#endif
