/* Incremental HTTP/1.x request-head parser over http-parser, with limits. */
#include "http_request.h"

#include <string.h>

static int on_url(http_parser *p, const char *at, size_t len)
{
	struct us_http_request *r = p->data;

	/* Too long: keep parsing, keep nothing. Stopping here would make the
	 * verdict depend on how the bytes were split into reads (http-parser
	 * reports a bad URL character before the callback when the target
	 * arrives whole, after it when in pieces); the head limit bounds the
	 * work either way. */
	if (r->target_overflow || len > US_HTTP_MAX_TARGET - r->target_len) {
		r->target_overflow = 1;
		return 0;
	}
	memcpy(r->target + r->target_len, at, len);
	r->target_len += len;
	r->target[r->target_len] = '\0';
	return 0;
}

static int on_headers_complete(http_parser *p)
{
	/* The head is all we want: pause so a body or a pipelined request in
	 * the same read is neither parsed nor judged. */
	http_parser_pause(p, 1);
	return 0;
}

static const http_parser_settings settings = {
	.on_url = on_url,
	.on_headers_complete = on_headers_complete,
};

void us_http_request_init(struct us_http_request *r)
{
	memset(r, 0, sizeof(*r));
	http_parser_init(&r->parser, HTTP_REQUEST);
	r->parser.data = r;
	r->verdict = US_HTTP_INCOMPLETE;
}

/* Splits the target into its path; an absolute-form target
 * ("http://host/metrics") has one too. */
static enum us_http_verdict finish(struct us_http_request *r)
{
	struct http_parser_url u;

	r->method = (enum http_method)r->parser.method;
	http_parser_url_init(&u);
	if (r->target_len == 0 ||
	    http_parser_parse_url(r->target, r->target_len, r->method == HTTP_CONNECT, &u) != 0)
		return US_HTTP_BAD;
	if (u.field_set & (1 << UF_PATH)) {
		memcpy(r->path, r->target + u.field_data[UF_PATH].off, u.field_data[UF_PATH].len);
		r->path[u.field_data[UF_PATH].len] = '\0';
	}
	return US_HTTP_COMPLETE;
}

enum us_http_verdict us_http_request_feed(struct us_http_request *r, const char *data,
					  size_t len)
{
	size_t room = US_HTTP_MAX_HEAD - r->head_len;
	size_t n = len < room ? len : room;
	enum http_errno e;

	if (r->verdict != US_HTTP_INCOMPLETE || len == 0)
		return r->verdict;
	if (n > 0)
		http_parser_execute(&r->parser, &settings, data, n);
	e = HTTP_PARSER_ERRNO(&r->parser);
	if (e == HPE_PAUSED) {
		r->verdict = r->target_overflow ? US_HTTP_URI_TOO_LONG : finish(r);
		return r->verdict;
	}
	if (e != HPE_OK) {
		r->verdict = US_HTTP_BAD;
		return r->verdict;
	}
	r->head_len += n;
	/* http-parser has its own 80 KiB header limit; ours is tighter */
	if (r->head_len >= US_HTTP_MAX_HEAD)
		r->verdict = US_HTTP_TOO_LARGE;
	return r->verdict;
}

int us_http_verdict_status(enum us_http_verdict v)
{
	switch (v) {
	case US_HTTP_BAD: return 400;
	case US_HTTP_TOO_LARGE: return 431;
	case US_HTTP_URI_TOO_LONG: return 414;
	default: return 0;
	}
}
