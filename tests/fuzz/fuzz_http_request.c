/* Fuzzing of the HTTP request-head parser (lib/http_request.c). The first
 * byte picks a chunk size; the rest is the connection's bytes. Checks:
 *  - no crash or sanitizer report on any input, fed whole or in pieces;
 *  - the verdict, method and path do not depend on how the bytes were split
 *    across reads (a slow client must get the same answer as a fast one);
 *  - a complete head has a NUL-terminated path no longer than its target,
 *    and the bytes judged never exceed the head limit. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http_request.h"

static void feed_chunked(struct us_http_request *r, const char *data, size_t size,
			 size_t chunk)
{
	us_http_request_init(r);
	for (size_t off = 0; off < size; off += chunk)
		us_http_request_feed(r, data + off, size - off < chunk ? size - off : chunk);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct us_http_request whole, pieces;
	size_t chunk;
	const char *text;

	if (size < 1)
		return 0;
	chunk = (size_t)data[0] % 64 + 1;
	text = (const char *)data + 1;
	size--;
	feed_chunked(&whole, text, size, size ? size : 1);
	feed_chunked(&pieces, text, size, chunk);
	if (whole.verdict != pieces.verdict)
		abort();
	if (whole.head_len > US_HTTP_MAX_HEAD || whole.target_len > US_HTTP_MAX_TARGET)
		abort();
	if (whole.verdict == US_HTTP_COMPLETE) {
		size_t n = strnlen(whole.path, sizeof(whole.path));

		if (n == sizeof(whole.path) || n > whole.target_len)
			abort();
		if (whole.method != pieces.method || strcmp(whole.path, pieces.path) != 0)
			abort();
	}
	if (whole.verdict == US_HTTP_INCOMPLETE && us_http_verdict_status(whole.verdict) != 0)
		abort();
	return 0;
}
