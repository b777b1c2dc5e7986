/* Growable byte buffer and pointer arrays. */
#include "buf.h"

#include <stdlib.h>
#include <string.h>

int us_buf_reserve(struct us_buf *b, size_t cap)
{
	uint8_t *p;
	size_t ncap = b->cap ? b->cap : 256;

	if (cap <= b->cap)
		return 0;
	while (ncap < cap)
		ncap *= 2;
	p = realloc(b->data, ncap);
	if (!p)
		return -1;
	b->data = p;
	b->cap = ncap;
	return 0;
}

int us_buf_append(struct us_buf *b, const void *p, size_t n)
{
	if (us_buf_reserve(b, b->len + n) < 0)
		return -1;
	memcpy(b->data + b->len, p, n);
	b->len += n;
	return 0;
}

void us_buf_clear(struct us_buf *b)
{
	b->len = 0;
}

void us_buf_free(struct us_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

int us_ptrs_push(void ***arr, size_t *n, void *item)
{
	void **grown = realloc(*arr, (*n + 1) * sizeof(**arr));

	if (!grown)
		return -1;
	grown[(*n)++] = item;
	*arr = grown;
	return 0;
}
