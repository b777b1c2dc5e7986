/* Incremental parsing of one HTTP/1.x request head, for the coordinator's
 * small HTTP endpoints (metrics). Wraps http-parser and adds the limits a
 * server facing untrusted peers needs: a bounded head, a bounded target, and
 * a verdict the server can turn directly into a status code. Only the
 * request line and the end of the headers matter to callers (no header
 * values are kept), and a body is never read: parsing stops at the end of
 * the head. Pure: no I/O, no allocation, so it can be fuzzed on a buffer. */
#ifndef US_HTTP_REQUEST_H
#define US_HTTP_REQUEST_H

#include <stddef.h>

#include <http_parser.h>

/* The whole head (request line and headers); Prometheus sends ~300 bytes. */
#define US_HTTP_MAX_HEAD 8192
#define US_HTTP_MAX_TARGET 2048

enum us_http_verdict {
	US_HTTP_INCOMPLETE,     /* need more bytes */
	US_HTTP_COMPLETE,       /* head parsed: method and path are set */
	US_HTTP_BAD,            /* not HTTP/1.x (answer 400) */
	US_HTTP_TOO_LARGE,      /* head over US_HTTP_MAX_HEAD (answer 431) */
	US_HTTP_URI_TOO_LONG,   /* well-formed head, target over US_HTTP_MAX_TARGET (414) */
};

struct us_http_request {
	http_parser parser;
	size_t head_len;                        /* bytes fed so far */
	size_t target_len;
	char target[US_HTTP_MAX_TARGET + 1];    /* request target as sent */
	char path[US_HTTP_MAX_TARGET + 1];      /* its path part, NUL-terminated */
	enum http_method method;
	int target_overflow;
	enum us_http_verdict verdict;
};

void us_http_request_init(struct us_http_request *r);
/* Feeds the next len bytes of the connection. Returns the verdict so far;
 * once it is anything but INCOMPLETE it no longer changes and further bytes
 * are ignored. */
enum us_http_verdict us_http_request_feed(struct us_http_request *r, const char *data,
					  size_t len);
/* The status code a server answers a final verdict with before looking at
 * method and path (0 for COMPLETE and INCOMPLETE). */
int us_http_verdict_status(enum us_http_verdict v);

#endif
