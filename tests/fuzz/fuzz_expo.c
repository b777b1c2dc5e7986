/* Fuzzing of the exposition parser (lib/expo.c). Checks:
 *  - no crash or sanitizer report on any input;
 *  - every sample handed out has a valid name, a key that starts with it and
 *    fits the key limit, and a family that the name extends by its suffix;
 *  - samples + errors never exceed the lines read. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "expo.h"

static int check(void *ctx, const struct us_expo_sample *s)
{
	size_t n = strlen(s->name), f = strlen(s->family);

	(void)ctx;
	if (n == 0 || n >= US_EXPO_MAX_NAME || strlen(s->key) >= US_EXPO_MAX_KEY)
		abort();
	if (strncmp(s->key, s->name, n) != 0 || (s->key[n] != '\0' && s->key[n] != '{'))
		abort();
	if (f > n || strncmp(s->name, s->family, f) != 0 || strcmp(s->name + f, s->suffix) != 0)
		abort();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct us_expo_stats st;

	us_expo_parse((const char *)data, size, check, NULL, &st);
	if (st.samples + st.errors > st.lines + 1)
		abort();
	if (st.errors && !st.first_error_line)
		abort();
	return 0;
}
