/* A growable byte buffer, for frames and encodings built in pieces, and
 * growable arrays of pointers, for repeated protobuf fields built row by row. */
#ifndef US_BUF_H
#define US_BUF_H

#include <stddef.h>
#include <stdint.h>

struct us_buf {
	uint8_t *data;
	size_t len;
	size_t cap;
};

int us_buf_reserve(struct us_buf *b, size_t cap);
int us_buf_append(struct us_buf *b, const void *p, size_t n);
void us_buf_clear(struct us_buf *b);
void us_buf_free(struct us_buf *b);

/* Appends item to the malloc'd array *arr of *n pointers; -1 when out of
 * memory (the array is then unchanged). */
int us_ptrs_push(void ***arr, size_t *n, void *item);

#endif
