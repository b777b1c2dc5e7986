/* libFuzzer target for lib/config: parses the input as a config file, then
 * runs every getter and conversion on every node it finds. Beyond "no crash,
 * no leak" it checks that every failure leaves a message in the common
 * format, since users depend on that. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

#define FUZZ_NAME "fuzz.yaml"

static const char *const fuzz_known_keys[] = {
	"agent", "id", "interval", "spool", "dir", "max_bytes", "workloads", "name",
	"ports", "role", "enabled", NULL,
};

static void fuzz_check_err(int rc, const char *err)
{
	if (rc < 0 && strncmp(err, FUZZ_NAME ":", sizeof(FUZZ_NAME)) != 0)
		abort();
	if (rc < -1 || rc > 1)
		abort();
}

static void fuzz_scalar(const struct us_conf_doc *doc, const struct us_conf_node *n)
{
	char err[256], small[8], big[512];
	int64_t i64;
	uint64_t u64;
	bool b;

	err[0] = '\0';
	fuzz_check_err(us_conf_as_string(doc, n, small, sizeof(small), err, sizeof(err)), err);
	fuzz_check_err(us_conf_as_string(doc, n, big, sizeof(big), err, sizeof(err)), err);
	fuzz_check_err(us_conf_as_bool(doc, n, &b, err, sizeof(err)), err);
	fuzz_check_err(us_conf_as_int64(doc, n, INT64_MIN, INT64_MAX, &i64, err, sizeof(err)), err);
	fuzz_check_err(us_conf_as_int64(doc, n, -5, 70000, &i64, err, sizeof(err)), err);
	fuzz_check_err(us_conf_as_size(doc, n, &u64, err, sizeof(err)), err);
	fuzz_check_err(us_conf_as_duration(doc, n, &u64, err, sizeof(err)), err);
	/* A tiny error buffer must be truncated, never overrun. */
	us_conf_as_size(doc, n, &u64, small, sizeof(small));
	us_conf_errorf(doc, n, err, sizeof(err), "fuzz %d", 1);
}

static void fuzz_getters(const struct us_conf_doc *doc, const struct us_conf_node *map,
			 const char *key)
{
	const struct us_conf_node *child;
	char err[256], buf[64];
	int64_t i64;
	uint64_t u64;
	bool b;

	err[0] = '\0';
	fuzz_check_err(us_conf_get_string(doc, map, key, buf, sizeof(buf), err, sizeof(err)), err);
	fuzz_check_err(us_conf_get_bool(doc, map, key, &b, err, sizeof(err)), err);
	fuzz_check_err(us_conf_get_int64(doc, map, key, 0, 65535, &i64, err, sizeof(err)), err);
	fuzz_check_err(us_conf_get_size(doc, map, key, &u64, err, sizeof(err)), err);
	fuzz_check_err(us_conf_get_duration(doc, map, key, &u64, err, sizeof(err)), err);
	fuzz_check_err(us_conf_get_map(doc, map, key, &child, err, sizeof(err)), err);
	fuzz_check_err(us_conf_get_seq(doc, map, key, &child, err, sizeof(err)), err);
	fuzz_check_err(us_conf_missing(doc, map, key, err, sizeof(err)), err);
}

static void fuzz_walk(const struct us_conf_doc *doc, const struct us_conf_node *n)
{
	char err[256], path[128];

	us_conf_path(n, path, sizeof(path));
	(void)us_conf_line(n);
	(void)us_conf_col(n);
	switch (us_conf_type(n)) {
	case US_CONF_MAP:
		err[0] = '\0';
		fuzz_check_err(us_conf_check_keys(doc, n, fuzz_known_keys, err, sizeof(err)), err);
		for (size_t i = 0; i < us_conf_len(n); i++) {
			const char *key = us_conf_map_key(n, i);

			if (!key || us_conf_get(n, key) == NULL)
				abort();
			fuzz_getters(doc, n, key);
			fuzz_walk(doc, us_conf_map_value(n, i));
		}
		for (size_t i = 0; fuzz_known_keys[i]; i++)
			fuzz_getters(doc, n, fuzz_known_keys[i]);
		break;
	case US_CONF_SEQ:
		fuzz_getters(doc, n, "x"); /* a list passed as a mapping */
		for (size_t i = 0; i < us_conf_len(n); i++)
			fuzz_walk(doc, us_conf_seq_item(n, i));
		if (us_conf_seq_item(n, us_conf_len(n)) != NULL)
			abort();
		break;
	case US_CONF_SCALAR:
		fuzz_scalar(doc, n);
		break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[256] = "";
	struct us_conf_doc *doc = us_conf_load_buffer(FUZZ_NAME, data, size, err, sizeof(err));

	if (!doc) {
		fuzz_check_err(-1, err);
		return 0;
	}
	if (us_conf_type(us_conf_root(doc)) != US_CONF_MAP)
		abort();
	fuzz_walk(doc, us_conf_root(doc));
	us_conf_free(doc);
	return 0;
}
