/* Unit tests for lib/http_stream: message boundaries of pipelined and
 * keep-alive requests, Content-Length and chunked bodies fed whole, byte by
 * byte and in large pieces, responses without a body (HEAD, 1xx, 204, 304)
 * or delimited by close, skip(), upgrade, errors and the head limit, and
 * that boundaries do not depend on how the bytes are split. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "http_stream.h"

#define MAX_MSGS 32

/* What a run over a buffer saw: where each message ended, and its figures. */
struct seen {
	size_t consumed;
	int nmsg;
	size_t end[MAX_MSGS];           /* offset just past each message */
	uint64_t bytes[MAX_MSGS];       /* msg_bytes at its end */
	size_t head[MAX_MSGS];
	uint64_t index[MAX_MSGS];
	int method[MAX_MSGS];
	unsigned status[MAX_MSGS];
	int64_t clen[MAX_MSGS];
	int chunked[MAX_MSGS], keep_alive[MAX_MSGS], upgrade[MAX_MSGS];
};

static struct us_http_stream stream;     /* static: assertions longjmp */
static struct seen seen_a, seen_b;

static void note_end(struct seen *r, const struct us_http_stream *s)
{
	int i = r->nmsg++;

	assert_true(i < MAX_MSGS);
	r->end[i] = r->consumed;
	r->bytes[i] = s->msg_bytes;
	r->head[i] = s->head_bytes;
	r->index[i] = s->index;
	r->method[i] = s->method;
	r->status[i] = s->status_code;
	r->clen[i] = s->content_length;
	r->chunked[i] = s->chunked;
	r->keep_alive[i] = s->keep_alive;
	r->upgrade[i] = s->upgrade;
}

/* Feeds len bytes in pieces of at most piece bytes (first piece first_len
 * if nonzero), each piece until used up or the stream stops. */
static void run_split(struct us_http_stream *s, struct seen *r, const char *data, size_t len,
		      size_t first_len, size_t piece)
{
	size_t off = 0;

	memset(r, 0, sizeof(*r));
	while (off < len) {
		size_t n = first_len && off == 0 ? first_len : piece;
		size_t end = off + n < len ? off + n : len;

		while (off < end) {
			int done;
			size_t got = us_http_stream_feed(s, data + off, end - off, &done);

			assert_true(got <= end - off);
			off += got;
			r->consumed += got;
			if (done)
				note_end(r, s);
			else if (off < end)
				break;   /* error or upgrade: nothing more */
		}
		if (off < end)
			return;   /* stopped: error or upgrade */
	}
}

static void run_whole(struct us_http_stream *s, struct seen *r, const char *data, size_t len)
{
	run_split(s, r, data, len, 0, len ? len : 1);
}

static void assert_same(const struct seen *a, const struct seen *b)
{
	assert_int_equal(a->consumed, b->consumed);
	assert_int_equal(a->nmsg, b->nmsg);
	assert_memory_equal(a, b, sizeof(*a));
}

/* ---- requests ---------------------------------------------------------- */

#define GET_A "GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
#define GET_B "GET /b?q=1 HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n"
#define HEAD_C "HEAD /c HTTP/1.1\r\nHost: x\r\n\r\n"
#define POST_5 "POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
#define CHUNKED_REQ "POST /u HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" \
	"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Sum: abc\r\nX-More: 1\r\n\r\n"

static void test_pipelined_gets(void **state)
{
	static const char buf[] = GET_A GET_B HEAD_C;

	(void)state;
	us_http_stream_init(&stream, US_HTTP_STREAM_REQUESTS);
	run_whole(&stream, &seen_a, buf, sizeof(buf) - 1);
	assert_int_equal(seen_a.nmsg, 3);
	assert_int_equal(seen_a.end[0], strlen(GET_A));
	assert_int_equal(seen_a.end[1], strlen(GET_A GET_B));
	assert_int_equal(seen_a.end[2], sizeof(buf) - 1);
	assert_int_equal(seen_a.bytes[1], strlen(GET_B));
	assert_int_equal(seen_a.head[1], strlen(GET_B));
	assert_int_equal(seen_a.index[0], 0);
	assert_int_equal(seen_a.index[2], 2);
	assert_int_equal(seen_a.method[0], HTTP_GET);
	assert_int_equal(seen_a.method[2], HTTP_HEAD);
	assert_int_equal(seen_a.clen[0], -1);
	assert_int_equal(stream.state, US_HTTP_STREAM_IDLE);
}

static void test_keep_alive_sequence(void **state)
{
	static const char *msgs[] = {
		"GET /1 HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /2 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
		"GET /3 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
	};
	static const int alive[] = { 1, 1, 0 };
	int done;

	(void)state;
	us_http_stream_init(&stream, US_HTTP_STREAM_REQUESTS);
	for (int i = 0; i < 3; i++) {
		size_t n = strlen(msgs[i]);

		assert_int_equal(us_http_stream_feed(&stream, msgs[i], n, &done), n);
		assert_int_equal(done, 1);
		assert_int_equal(stream.index, (uint64_t)i);
		assert_int_equal(stream.keep_alive, alive[i]);
		assert_int_equal(stream.msg_bytes, n);
	}
	/* figures stay until the next feed; zero bytes are not a feed */
	assert_int_equal(us_http_stream_feed(&stream, "", 0, &done), 0);
	assert_int_equal(done, 0);
	assert_int_equal(stream.keep_alive, 0);
	/* keep_alive=0 is only reported: what follows is still framed */
	assert_int_equal(us_http_stream_feed(&stream, GET_A, strlen(GET_A), &done), strlen(GET_A));
	assert_int_equal(done, 1);
	assert_int_equal(stream.index, 3);
	assert_int_equal(stream.keep_alive, 1);
}

static void test_post_byte_by_byte(void **state)
{
	static const char buf[] = POST_5 GET_A;
	size_t head = strlen(POST_5) - 5, i;
	int done;

	(void)state;
	us_http_stream_init(&stream, US_HTTP_STREAM_REQUESTS);
	for (i = 0; i < strlen(POST_5); i++) {
		assert_int_equal(us_http_stream_feed(&stream, buf + i, 1, &done), 1);
		assert_int_equal(done, i == strlen(POST_5) - 1);
		if (i == head - 2)
			assert_int_equal(stream.state, US_HTTP_STREAM_HEAD);
		if (i >= head - 1 && !done) {
			assert_int_equal(stream.state, US_HTTP_STREAM_BODY);
			assert_int_equal(stream.content_length, 5);
			assert_int_equal(stream.method, HTTP_POST);
		}
	}
	assert_int_equal(stream.msg_bytes, strlen(POST_5));
	assert_int_equal(stream.head_bytes, head);
	assert_true(us_http_method_is_write(stream.method));

	us_http_stream_init(&stream, US_HTTP_STREAM_REQUESTS);
	run_whole(&stream, &seen_a, buf, sizeof(buf) - 1);
	assert_int_equal(seen_a.nmsg, 2);
	assert_int_equal(seen_a.end[0], strlen(POST_5));
	assert_int_equal(seen_a.head[0], head);
	assert_int_equal(seen_a.clen[0], 5);
	assert_int_equal(seen_a.end[1], sizeof(buf) - 1);
}

static void test_chunked_with_trailers(void **state)
{
	static const char buf[] = CHUNKED_REQ GET_A;

	(void)state;
	us_http_stream_init(&stream, US_HTTP_STREAM_REQUESTS);
	run_whole(&stream, &seen_a, buf, sizeof(buf) - 1);
	assert_int_equal(seen_a.nmsg, 2);
	assert_int_equal(seen_a.end[0], strlen(CHUNKED_REQ));
	assert_int_equal(seen_a.chunked[0], 1);
	assert_int_equal(seen_a.clen[0], -1);
	assert_int_equal(seen_a.bytes[0], strlen(CHUNKED_REQ));
	assert_int_equal(seen_a.chunked[1], 0);
	us_http_stream_init(&stream, US_HTTP_STREAM_REQUESTS);
	run_split(&stream, &seen_b, buf, sizeof(buf) - 1, 0, 1);
	assert_same(&seen_a, &seen_b);
}

static void test_huge_body_counted(void **state)
{
	static const char head[] = "PUT /big HTTP/1.1\r\nContent-Length: 10485760\r\n\r\n";
	static char piece[65536];
	int done;

	(void)state;
	us_http_stream_init(&stream, US_HTTP_STREAM_REQUESTS);
	assert_int_equal(us_http_stream_feed(&stream, head, sizeof(head) - 1, &done),
			 sizeof(head) - 1);
	assert_int_equal(done, 0);
	assert_int_equal(stream.content_length, 10485760);
	for (int i = 0; i < 160; i++) {
		assert_int_equal(us_http_stream_feed(&stream, piece, sizeof(piece), &done),
				 sizeof(piece));
		assert_int_equal(done, i == 159);
	}
	assert_int_equal(stream.msg_bytes, sizeof(head) - 1 + 10485760ull);
	assert_int_equal(stream.head_bytes, sizeof(head) - 1);
	assert_int_equal(stream.state, US_HTTP_STREAM_IDLE);
}

static void test_upgrade_and_connect(void **state)
{
	static const char ws[] = "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
				 "Connection: Upgrade\r\n\r\n\x81\x05hello";
	static const char sw[] = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
				 "Connection: Upgrade\r\n\r\n\x81\x00";
	static const char conn[] = "CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n\x16\x03\x01";
	int done;
	size_t n;

	(void)state;
	us_http_stream_init(&stream, US_HTTP_STREAM_REQUESTS);
	n = us_http_stream_feed(&stream, ws, sizeof(ws) - 1, &done);
	assert_int_equal(n, sizeof(ws) - 1 - 7);
	assert_int_equal(done, 1);
	assert_int_equal(stream.upgrade, 1);
	assert_int_equal(us_http_stream_feed(&stream, ws + n, 7, &done), 0);
	assert_int_equal(stream.state, US_HTTP_STREAM_ERROR);
	assert_string_equal(stream.error, "upgraded");

	us_http_stream_init(&stream, US_HTTP_STREAM_REQUESTS);
	n = us_http_stream_feed(&stream, conn, sizeof(conn) - 1, &done);
	assert_int_equal(n, sizeof(conn) - 1 - 3);
	assert_int_equal(done, 1);
	assert_int_equal(stream.upgrade, 1);
	assert_int_equal(stream.method, HTTP_CONNECT);
	assert_true(us_http_method_is_write(stream.method));

	/* the answer to an Upgrade: 101 ends the HTTP part of the responses */
	us_http_stream_init(&stream, US_HTTP_STREAM_RESPONSES);
	us_http_stream_expect(&stream, 0);
	n = us_http_stream_feed(&stream, sw, sizeof(sw) - 1, &done);
	assert_int_equal(n, sizeof(sw) - 1 - 2);
	assert_int_equal(done, 1);
	assert_int_equal(stream.status_code, 101);
	assert_int_equal(stream.upgrade, 1);
	assert_int_equal(stream.interim, 0);
	assert_int_equal(stream.head_req_count, 0);
	assert_int_equal(us_http_stream_feed(&stream, sw + n, 2, &done), 0);
	assert_string_equal(stream.error, "upgraded");
}

/* ---- responses --------------------------------------------------------- */

#define RES_CL "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"
#define RES_CHUNKED "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" \
	"3\r\nabc\r\n0\r\n\r\n"
#define RES_HEAD "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n"
#define RES_204 "HTTP/1.1 204 No Content\r\n\r\n"
#define RES_304 "HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\nETag: \"x\"\r\n\r\n"
#define RES_100 "HTTP/1.1 100 Continue\r\n\r\n"
#define RES_103 "HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\n"

static void test_responses_framed(void **state)
{
	static const char buf[] = RES_CL RES_CHUNKED RES_HEAD RES_204 RES_304 RES_CL;
	static const size_t ends[] = {
		sizeof(RES_CL) - 1,
		sizeof(RES_CL RES_CHUNKED) - 1,
		sizeof(RES_CL RES_CHUNKED RES_HEAD) - 1,
		sizeof(RES_CL RES_CHUNKED RES_HEAD RES_204) - 1,
		sizeof(RES_CL RES_CHUNKED RES_HEAD RES_204 RES_304) - 1,
		sizeof(buf) - 1,
	};
	static const int is_head[] = { 0, 0, 1, 0, 0, 0 };

	(void)state;
	us_http_stream_init(&stream, US_HTTP_STREAM_RESPONSES);
	for (int i = 0; i < 6; i++)
		assert_int_equal(us_http_stream_expect(&stream, is_head[i]), 0);
	run_whole(&stream, &seen_a, buf, sizeof(buf) - 1);
	assert_int_equal(seen_a.nmsg, 6);
	for (int i = 0; i < 6; i++) {
		assert_int_equal(seen_a.end[i], ends[i]);
		assert_int_equal(seen_a.keep_alive[i], 1);
	}
	assert_int_equal(seen_a.status[0], 200);
	assert_int_equal(seen_a.chunked[1], 1);
	assert_int_equal(seen_a.clen[2], 100);   /* the header's, not the body's */
	assert_int_equal(seen_a.status[3], 204);
	assert_int_equal(seen_a.status[4], 304);
	assert_int_equal(seen_a.clen[4], 10);
	assert_int_equal(stream.head_req_count, 0);

	/* byte by byte: same boundaries */
	us_http_stream_init(&stream, US_HTTP_STREAM_RESPONSES);
	for (int i = 0; i < 6; i++)
		us_http_stream_expect(&stream, is_head[i]);
	run_split(&stream, &seen_b, buf, sizeof(buf) - 1, 0, 1);
	assert_same(&seen_a, &seen_b);
}

static void test_interim_keeps_head_flag(void **state)
{
	static const char buf[] = RES_100 RES_103 RES_HEAD RES_CL;
	int done;

	(void)state;
	us_http_stream_init(&stream, US_HTTP_STREAM_RESPONSES);
	us_http_stream_expect(&stream, 1);
	us_http_stream_expect(&stream, 0);
	run_whole(&stream, &seen_a, buf, sizeof(buf) - 1);
	assert_int_equal(seen_a.nmsg, 4);
	assert_int_equal(seen_a.status[0], 100);
	assert_int_equal(seen_a.status[1], 103);
	assert_int_equal(seen_a.end[2], sizeof(RES_100 RES_103 RES_HEAD) - 1);
	assert_int_equal(seen_a.end[3], sizeof(buf) - 1);
	assert_int_equal(stream.head_req_count, 0);

	us_http_stream_init(&stream, US_HTTP_STREAM_RESPONSES);
	assert_int_equal(us_http_stream_feed(&stream, RES_100, sizeof(RES_100) - 1, &done),
			 sizeof(RES_100) - 1);
	assert_int_equal(done, 1);
	assert_int_equal(stream.interim, 1);
	assert_int_equal(stream.keep_alive, 1);
}

static void test_close_delimited(void **state)
{
	static const char res[] = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end";
	int done;

	(void)state;
	us_http_stream_init(&stream, US_HTTP_STREAM_RESPONSES);
	assert_int_equal(us_http_stream_feed(&stream, res, sizeof(res) - 1, &done), sizeof(res) - 1);
	assert_int_equal(done, 0);
	assert_int_equal(stream.state, US_HTTP_STREAM_BODY);
	assert_int_equal(stream.content_length, -1);
	assert_int_equal(stream.keep_alive, 0);
	assert_int_equal(us_http_stream_skip(&stream, 1, &done), -1);
	assert_int_equal(us_http_stream_eof(&stream), 1);
	assert_int_equal(stream.msg_bytes, sizeof(res) - 1);
	assert_int_equal(stream.state, US_HTTP_STREAM_IDLE);
	assert_int_equal(us_http_stream_eof(&stream), 0);

	/* a message with a length cut short is not ended by close */
	us_http_stream_init(&stream, US_HTTP_STREAM_RESPONSES);
	assert_int_equal(us_http_stream_feed(&stream, RES_CL, sizeof(RES_CL) - 2, &done),
			 sizeof(RES_CL) - 2);
	assert_int_equal(us_http_stream_eof(&stream), 0);
	assert_int_equal(stream.state, US_HTTP_STREAM_BODY);
	us_http_stream_init(&stream, US_HTTP_STREAM_RESPONSES);
	assert_int_equal(us_http_stream_eof(&stream), 0);
}

/* ---- skip, errors, limits ---------------------------------------------- */

static void test_skip(void **state)
{
	static const char head[] = "POST /s HTTP/1.1\r\nContent-Length: 100\r\n\r\n";
	static const char body[10];
	int done;

	(void)state;
	us_http_stream_init(&stream, US_HTTP_STREAM_REQUESTS);
	assert_int_equal(us_http_stream_skip(&stream, 1, &done), -1);     /* idle */
	us_http_stream_feed(&stream, head, 10, &done);
	assert_int_equal(us_http_stream_skip(&stream, 1, &done), -1);     /* in head */
	us_http_stream_feed(&stream, head + 10, sizeof(head) - 11, &done);
	us_http_stream_feed(&stream, body, sizeof(body), &done);
	assert_int_equal(stream.msg_bytes, sizeof(head) - 1 + 10);
	assert_int_equal(us_http_stream_skip(&stream, 91, &done), -1);    /* 90 left */
	assert_int_equal(stream.msg_bytes, sizeof(head) - 1 + 10);
	assert_int_equal(us_http_stream_skip(&stream, 0, &done), 0);
	assert_int_equal(us_http_stream_skip(&stream, 50, &done), 0);
	assert_int_equal(done, 0);
	assert_int_equal(stream.msg_bytes, sizeof(head) - 1 + 60);
	assert_int_equal(us_http_stream_skip(&stream, 40, &done), 0);
	assert_int_equal(done, 1);
	assert_int_equal(stream.msg_bytes, sizeof(head) - 1 + 100);
	assert_int_equal(stream.state, US_HTTP_STREAM_IDLE);
	assert_int_equal(us_http_stream_skip(&stream, 1, &done), -1);     /* between */
	assert_int_equal(us_http_stream_feed(&stream, GET_A, strlen(GET_A), &done), strlen(GET_A));
	assert_int_equal(done, 1);
	assert_int_equal(stream.index, 1);

	/* chunked: the end is only in the bytes */
	us_http_stream_init(&stream, US_HTTP_STREAM_REQUESTS);
	us_http_stream_feed(&stream, CHUNKED_REQ, 80, &done);
	assert_int_equal(stream.state, US_HTTP_STREAM_BODY);
	assert_int_equal(us_http_stream_skip(&stream, 1, &done), -1);
}

static void test_malformed_sticky(void **state)
{
	static const char bad[] = GET_A "GET / HTTP/1.1\r\nHost x\r\n\r\n";
	int done;
	size_t n;

	(void)state;
	us_http_stream_init(&stream, US_HTTP_STREAM_REQUESTS);
	run_whole(&stream, &seen_a, bad, sizeof(bad) - 1);
	assert_int_equal(seen_a.nmsg, 1);
	assert_int_equal(stream.state, US_HTTP_STREAM_ERROR);
	assert_non_null(stream.error);
	assert_true(seen_a.consumed < sizeof(bad) - 1);
	n = us_http_stream_feed(&stream, GET_A, strlen(GET_A), &done);
	assert_int_equal(n, 0);
	assert_int_equal(done, 0);
	assert_int_equal(us_http_stream_eof(&stream), 0);
	assert_int_equal(us_http_stream_skip(&stream, 0, &done), -1);

	us_http_stream_init(&stream, US_HTTP_STREAM_REQUESTS);
	assert_int_equal(us_http_stream_feed(&stream, "\x16\x03\x01", 3, &done), 0);
	assert_int_equal(stream.state, US_HTTP_STREAM_ERROR);

	us_http_stream_init(&stream, US_HTTP_STREAM_RESPONSES);
	us_http_stream_feed(&stream, "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n",
			    58, &done);
	assert_int_equal(stream.state, US_HTTP_STREAM_ERROR);
	us_http_stream_init(&stream, US_HTTP_STREAM_RESPONSES);
	us_http_stream_feed(&stream, "HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551000\r\n\r\n",
			    58, &done);
	assert_int_equal(stream.state, US_HTTP_STREAM_ERROR);
	assert_string_equal(stream.error, "Content-Length out of range");
}

static void test_head_limit(void **state)
{
	static char buf[US_HTTP_STREAM_MAX_HEAD + 100];
	static const char start[] = "GET / HTTP/1.1\r\nX: ";
	size_t n;
	int done;

	(void)state;
	/* exactly the limit: fine */
	memset(buf, 'a', sizeof(buf));
	memcpy(buf, start, sizeof(start) - 1);
	memcpy(buf + US_HTTP_STREAM_MAX_HEAD - 4, "\r\n\r\n", 4);
	us_http_stream_init(&stream, US_HTTP_STREAM_REQUESTS);
	n = us_http_stream_feed(&stream, buf, US_HTTP_STREAM_MAX_HEAD, &done);
	assert_int_equal(n, US_HTTP_STREAM_MAX_HEAD);
	assert_int_equal(done, 1);
	assert_int_equal(stream.head_bytes, US_HTTP_STREAM_MAX_HEAD);

	/* one more: error, whatever the split */
	memcpy(buf + US_HTTP_STREAM_MAX_HEAD - 4, "a\r\n\r\n", 5);
	us_http_stream_init(&stream, US_HTTP_STREAM_REQUESTS);
	n = us_http_stream_feed(&stream, buf, US_HTTP_STREAM_MAX_HEAD + 1, &done);
	assert_int_equal(n, US_HTTP_STREAM_MAX_HEAD);
	assert_int_equal(done, 0);
	assert_int_equal(stream.state, US_HTTP_STREAM_ERROR);
	assert_string_equal(stream.error, "head too large");
	us_http_stream_init(&stream, US_HTTP_STREAM_REQUESTS);
	run_split(&stream, &seen_a, buf, US_HTTP_STREAM_MAX_HEAD + 1, 0, 1000);
	assert_int_equal(seen_a.consumed, US_HTTP_STREAM_MAX_HEAD);
	assert_int_equal(stream.state, US_HTTP_STREAM_ERROR);
}

static void check_split_invariance(enum us_http_stream_kind kind, const char *buf, size_t len,
				   const int *heads, int nheads)
{
	us_http_stream_init(&stream, kind);
	for (int i = 0; i < nheads; i++)
		us_http_stream_expect(&stream, heads[i]);
	run_whole(&stream, &seen_a, buf, len);
	assert_int_equal(seen_a.consumed, len);
	for (size_t first = 1; first <= len; first++) {
		/* two pieces cut at first, and pieces of size first */
		for (int mode = 0; mode < 2; mode++) {
			us_http_stream_init(&stream, kind);
			for (int i = 0; i < nheads; i++)
				us_http_stream_expect(&stream, heads[i]);
			if (mode == 0)
				run_split(&stream, &seen_b, buf, len, first, len);
			else
				run_split(&stream, &seen_b, buf, len, 0, first);
			assert_same(&seen_a, &seen_b);
		}
	}
}

static void test_split_invariance(void **state)
{
	static const char reqs[] = GET_A "\r\n" POST_5 CHUNKED_REQ HEAD_C;
	static const char ress[] = RES_100 RES_CL RES_HEAD RES_CHUNKED RES_304;
	static const int heads[] = { 0, 1, 0, 0 };

	(void)state;
	check_split_invariance(US_HTTP_STREAM_REQUESTS, reqs, sizeof(reqs) - 1, NULL, 0);
	assert_int_equal(seen_a.nmsg, 4);
	/* the blank line between messages belongs to the next one */
	assert_int_equal(seen_a.bytes[1], strlen(POST_5) + 2);
	check_split_invariance(US_HTTP_STREAM_RESPONSES, ress, sizeof(ress) - 1, heads, 4);
	assert_int_equal(seen_a.nmsg, 5);
}

static void test_write_methods(void **state)
{
	(void)state;
	assert_false(us_http_method_is_write(HTTP_GET));
	assert_false(us_http_method_is_write(HTTP_HEAD));
	assert_false(us_http_method_is_write(HTTP_OPTIONS));
	assert_false(us_http_method_is_write(HTTP_TRACE));
	assert_true(us_http_method_is_write(HTTP_POST));
	assert_true(us_http_method_is_write(HTTP_PUT));
	assert_true(us_http_method_is_write(HTTP_DELETE));
	assert_true(us_http_method_is_write(HTTP_PATCH));
	assert_true(us_http_method_is_write(HTTP_CONNECT));
}

static void test_expect_queue_full(void **state)
{
	(void)state;
	us_http_stream_init(&stream, US_HTTP_STREAM_RESPONSES);
	for (int i = 0; i < US_HTTP_STREAM_MAX_PIPELINE; i++)
		assert_int_equal(us_http_stream_expect(&stream, i & 1), 0);
	assert_int_equal(us_http_stream_expect(&stream, 0), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pipelined_gets),
		cmocka_unit_test(test_keep_alive_sequence),
		cmocka_unit_test(test_post_byte_by_byte),
		cmocka_unit_test(test_chunked_with_trailers),
		cmocka_unit_test(test_huge_body_counted),
		cmocka_unit_test(test_upgrade_and_connect),
		cmocka_unit_test(test_responses_framed),
		cmocka_unit_test(test_interim_keeps_head_flag),
		cmocka_unit_test(test_close_delimited),
		cmocka_unit_test(test_skip),
		cmocka_unit_test(test_malformed_sticky),
		cmocka_unit_test(test_head_limit),
		cmocka_unit_test(test_split_invariance),
		cmocka_unit_test(test_write_methods),
		cmocka_unit_test(test_expect_queue_full),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
