/* Unit tests for lib/config: tree building, limits and refusals, every typed
 * getter, and the exact "FILE:LINE: KEY.PATH: problem" messages users see;
 * and the agent's workload keys read through it (requests, workloads_dir). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent_config.h"
#include "config.h"

#define NAME "test.yaml"

static char err[512];

static struct us_conf_doc *load(const char *yaml)
{
	struct us_conf_doc *doc = us_conf_load_buffer(NAME, yaml, strlen(yaml), err, sizeof(err));

	if (!doc)
		fail_msg("unexpected load error: %s", err);
	return doc;
}

/* Loading must fail, and the message must contain want. */
static void load_fails(const char *yaml, const char *want)
{
	struct us_conf_doc *doc;

	err[0] = '\0';
	doc = us_conf_load_buffer(NAME, yaml, strlen(yaml), err, sizeof(err));
	if (doc) {
		us_conf_free(doc);
		fail_msg("loaded but expected an error containing \"%s\"", want);
	}
	if (!strstr(err, want))
		fail_msg("error \"%s\" lacks \"%s\"", err, want);
}

static void has(const char *want)
{
	if (!strstr(err, want))
		fail_msg("error \"%s\" lacks \"%s\"", err, want);
}

/* ---- documents -------------------------------------------------------- */

static void test_empty_documents(void **state)
{
	const char *empties[] = { "", "\n\n", "# only a comment\n", "---\n", "---\n...\n", "~\n" };

	for (size_t i = 0; i < sizeof(empties) / sizeof(empties[0]); i++) {
		struct us_conf_doc *doc = load(empties[i]);
		const struct us_conf_node *root = us_conf_root(doc);

		assert_int_equal(us_conf_type(root), US_CONF_MAP);
		assert_int_equal(us_conf_len(root), 0);
		assert_int_equal(us_conf_line(root), 1);
		assert_null(us_conf_get(root, "anything"));
		us_conf_free(doc);
	}
	/* NULL data with length 0 is an empty document too. */
	struct us_conf_doc *doc = us_conf_load_buffer(NAME, NULL, 0, err, sizeof(err));
	assert_non_null(doc);
	assert_int_equal(us_conf_len(us_conf_root(doc)), 0);
	assert_string_equal(us_conf_name(doc), NAME);
	us_conf_free(doc);
}

static void test_top_level_must_be_mapping(void **state)
{
	load_fails("- a\n- b\n", NAME ":1: the top level must be a mapping of keys to values, got a list");
	load_fails("hello\n", NAME ":1: the top level must be a mapping of keys to values, got a single value");
	load_fails("'quoted'\n", "top level must be a mapping");
}

static void test_tree_shape_lines_and_paths(void **state)
{
	struct us_conf_doc *doc = load("agent:\n"
				       "  id: host-1\n"
				       "workloads:\n"
				       "  - name: api\n"
				       "    ports: [8080, 8443]\n"
				       "  - name: db\n");
	const struct us_conf_node *root = us_conf_root(doc), *w, *item, *ports, *p;
	char path[128];

	assert_int_equal(us_conf_len(root), 2);
	assert_string_equal(us_conf_map_key(root, 0), "agent");
	assert_string_equal(us_conf_map_key(root, 1), "workloads");
	assert_null(us_conf_map_key(root, 2));
	assert_null(us_conf_map_value(root, 2));
	assert_string_equal(us_conf_path(root, path, sizeof(path)), "");

	w = us_conf_map_value(root, 1);
	assert_int_equal(us_conf_type(w), US_CONF_SEQ);
	assert_int_equal(us_conf_len(w), 2);
	assert_int_equal(us_conf_line(w), 4);
	assert_null(us_conf_seq_item(w, 2));
	item = us_conf_seq_item(w, 0);
	assert_int_equal(us_conf_type(item), US_CONF_MAP);
	ports = us_conf_get(item, "ports");
	assert_non_null(ports);
	p = us_conf_seq_item(ports, 1);
	assert_int_equal(us_conf_line(p), 5);
	assert_int_equal(us_conf_col(p), 19);
	assert_string_equal(us_conf_scalar(p, NULL), "8443");
	assert_string_equal(us_conf_path(p, path, sizeof(path)), "workloads[0].ports[1]");
	assert_string_equal(us_conf_path(us_conf_get(us_conf_get(root, "agent"), "id"), path,
					 sizeof(path)),
			    "agent.id");
	/* A small buffer truncates instead of overflowing. */
	assert_string_equal(us_conf_path(p, path, 6), "workl");

	assert_null(us_conf_scalar(w, NULL));
	assert_int_equal(us_conf_len(p), 0);
	assert_null(us_conf_get(w, "name"));
	assert_null(us_conf_get(NULL, "name"));
	us_conf_free(doc);
}

static void test_null_values(void **state)
{
	struct us_conf_doc *doc = load("a:\nb: ~\nc: null\nd: ''\ne: \"null\"\n");
	const struct us_conf_node *root = us_conf_root(doc);

	assert_true(us_conf_is_null(us_conf_get(root, "a")));
	assert_true(us_conf_is_null(us_conf_get(root, "b")));
	assert_true(us_conf_is_null(us_conf_get(root, "c")));
	/* Quoted text is a value even when it spells null. */
	assert_false(us_conf_is_null(us_conf_get(root, "d")));
	assert_false(us_conf_is_null(us_conf_get(root, "e")));
	us_conf_free(doc);
}

static void test_lookup_many_keys(void **state)
{
	size_t cap = 64 * 1024, off = 0;
	char *yaml = malloc(cap), key[32];
	struct us_conf_doc *doc;
	int64_t v;

	assert_non_null(yaml);
	/* Keys out of order, of varying length, sharing prefixes. */
	for (int i = 2999; i >= 0; i--)
		off += (size_t)snprintf(yaml + off, cap - off, "k%d: %d\n", i, i);
	doc = load(yaml);
	assert_int_equal(us_conf_len(us_conf_root(doc)), 3000);
	for (int i = 0; i < 3000; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		assert_int_equal(us_conf_get_int64(doc, us_conf_root(doc), key, 0, 10000, &v, err,
						   sizeof(err)),
				 0);
		assert_int_equal(v, i);
	}
	assert_null(us_conf_get(us_conf_root(doc), "k"));
	assert_null(us_conf_get(us_conf_root(doc), "k3000"));
	assert_null(us_conf_get(us_conf_root(doc), "k29999"));
	assert_null(us_conf_get(us_conf_root(doc), ""));
	us_conf_free(doc);
	free(yaml);
}

/* ---- refusals and limits --------------------------------------------- */

static void test_syntax_errors(void **state)
{
	load_fails("a: 1\nb: [1, 2\nc: 3\n", NAME ":3:2: YAML syntax error: did not find expected ',' or ']' "
					     "(while parsing a flow sequence at line 2)");
	load_fails("a: 1\n  b: 2\n", NAME ":2:4: YAML syntax error: mapping values are not allowed in this context");
	load_fails("a: 'unterminated\n", NAME ":2:1: YAML syntax error: found unexpected end of stream");
	load_fails("a: 1\n\tb: 2\n", NAME ":2:1: YAML syntax error:");
	/* Invalid UTF-8 is a reader error located by byte offset. */
	load_fails("a: 1\nb: \xff\n", NAME ":2:4: YAML syntax error: invalid leading UTF-8 octet (byte 0xff)");
}

static void test_duplicate_keys(void **state)
{
	load_fails("a: 1\nb: 2\na: 3\n", NAME ":3: a: duplicate key (first set at line 1)");
	load_fails("spool:\n  dir: /x\n  max_bytes: 1\n  dir: /y\n",
		   NAME ":4: spool.dir: duplicate key (first set at line 2)");
	load_fails("m: {x: 1, y: 2, x: 3}\n", NAME ":1: m.x: duplicate key (first set at line 1)");
	/* The earliest repetition is reported, whatever the sort order. */
	load_fails("z: 1\na: 1\nz: 2\na: 2\n", NAME ":3: z: duplicate key (first set at line 1)");
	/* Same key in different mappings is fine. */
	us_conf_free(load("a: {x: 1}\nb: {x: 1}\nl: [{x: 1}, {x: 2}]\n"));
}

static void test_aliases_anchors_tags_refused(void **state)
{
	load_fails("a: &x 1\nb: *x\n", NAME ":1: a: anchors (&x) are not supported");
	load_fails("a: 1\nb: *x\n", NAME ":2: b: aliases (*name) are not supported");
	load_fails("l:\n  - 1\n  - *x\n", NAME ":3: l[1]: aliases (*name) are not supported");
	load_fails("a: !!str 5\n", NAME ":1: a: tags (tag:yaml.org,2002:str) are not supported");
	load_fails("a: !custom {x: 1}\n", "a: tags (!custom) are not supported");
	load_fails("a: [1]\n*x : 2\n", NAME ":2: aliases (*name) are not supported");
	/* The classic billion laughs stops at its first anchor. */
	load_fails("a: &a [\"lol\",\"lol\"]\nb: &b [*a,*a,*a]\nc: &c [*b,*b,*b]\n",
		   NAME ":1: a: anchors (&a) are not supported");
}

static void test_bad_keys(void **state)
{
	char yaml[600];

	load_fails("? [a, b]\n: 1\n", NAME ":1: mapping keys must be single values, not lists");
	load_fails("s:\n  ? {a: 1}\n  : 1\n", NAME ":2: s: mapping keys must be single values, not mappings");
	load_fails("s:\n  ? \n  : 1\n", NAME ":2: s: empty mapping key");
	load_fails("? \n: 1\n", NAME ":1: empty mapping key");
	snprintf(yaml, sizeof(yaml), "s:\n  %0300d: 1\n", 0);
	load_fails(yaml, NAME ":2: s: mapping key longer than 256 bytes");
	load_fails("\"a\\0b\": 1\n", NAME ":1: mapping key contains a NUL character");
}

static void test_second_document_refused(void **state)
{
	load_fails("a: 1\n---\nb: 2\n", NAME ":2: only one YAML document is allowed per file");
}

static void test_depth_limit(void **state)
{
	char yaml[512];
	size_t off;

	/* The root mapping is level 1: 63 nested lists fit, 64 do not. */
	off = (size_t)snprintf(yaml, sizeof(yaml), "a: ");
	for (int i = 0; i < US_CONF_MAX_DEPTH - 1; i++)
		yaml[off++] = '[';
	for (int i = 0; i < US_CONF_MAX_DEPTH - 1; i++)
		yaml[off++] = ']';
	yaml[off] = '\0';
	us_conf_free(load(yaml));

	off = (size_t)snprintf(yaml, sizeof(yaml), "a: ");
	for (int i = 0; i < US_CONF_MAX_DEPTH; i++)
		yaml[off++] = '[';
	yaml[off] = '\0';
	load_fails(yaml, NAME ":1: a[0][0]");
	load_fails(yaml, "nested more than 64 levels deep");
}

static void test_size_limit(void **state)
{
	size_t n = US_CONF_MAX_BYTES + 1;
	char *big = malloc(n);
	struct us_conf_doc *doc;

	assert_non_null(big);
	memset(big, '#', n);
	big[n - 1] = '\n';
	doc = us_conf_load_buffer(NAME, big, n, err, sizeof(err));
	assert_null(doc);
	has(NAME ": file is too large (1048577 bytes; the limit is 1048576)");
	/* Exactly the limit is accepted (all comment: an empty mapping). */
	doc = us_conf_load_buffer(NAME, big, n - 1, err, sizeof(err));
	assert_non_null(doc);
	us_conf_free(doc);
	free(big);
}

/* ---- getters ---------------------------------------------------------- */

static void test_get_string(void **state)
{
	struct us_conf_doc *doc = load("name: checkout-api\n"
				       "empty: ''\n"
				       "nothing:\n"
				       "num: 42\n"
				       "sect:\n  x: 1\n"
				       "list: [a]\n"
				       "nul: \"a\\0b\"\n");
	const struct us_conf_node *root = us_conf_root(doc);
	char buf[16] = "default";

	assert_int_equal(us_conf_get_string(doc, root, "name", buf, sizeof(buf), err, sizeof(err)), 0);
	assert_string_equal(buf, "checkout-api");
	assert_int_equal(us_conf_get_string(doc, root, "empty", buf, sizeof(buf), err, sizeof(err)), 0);
	assert_string_equal(buf, "");
	assert_int_equal(us_conf_get_string(doc, root, "num", buf, sizeof(buf), err, sizeof(err)), 0);
	assert_string_equal(buf, "42");

	strcpy(buf, "default");
	assert_int_equal(us_conf_get_string(doc, root, "absent", buf, sizeof(buf), err, sizeof(err)), 1);
	assert_string_equal(buf, "default");
	assert_int_equal(us_conf_get_string(doc, root, "nothing", buf, sizeof(buf), err, sizeof(err)), 1);
	assert_string_equal(buf, "default");

	assert_int_equal(us_conf_get_string(doc, root, "sect", buf, sizeof(buf), err, sizeof(err)), -1);
	has(NAME ":6: sect: expected a string, got a mapping");
	assert_int_equal(us_conf_get_string(doc, root, "list", buf, sizeof(buf), err, sizeof(err)), -1);
	has(NAME ":7: list: expected a string, got a list");
	assert_int_equal(us_conf_get_string(doc, root, "nul", buf, sizeof(buf), err, sizeof(err)), -1);
	has(NAME ":8: nul: must not contain a NUL character");
	/* Too long for the buffer: 12 bytes into 12 (one is the NUL). */
	assert_int_equal(us_conf_get_string(doc, root, "name", buf, 12, err, sizeof(err)), -1);
	has(NAME ":1: name: is too long (12 bytes; at most 11)");
	assert_string_equal(buf, "default");
	assert_int_equal(us_conf_get_string(doc, root, "name", buf, 13, err, sizeof(err)), 0);

	/* The map argument itself is type-checked. */
	assert_int_equal(us_conf_get_string(doc, us_conf_get(root, "list"), "x", buf, sizeof(buf),
					    err, sizeof(err)),
			 -1);
	has(NAME ":7: list: expected a mapping, got a list");
	us_conf_free(doc);
}

static void test_get_bool(void **state)
{
	struct us_conf_doc *doc = load("a: true\nb: False\nc: yes\nd: NO\ne: on\nf: off\n"
				       "g: maybe\nh: 1\ni: [true]\n");
	const struct us_conf_node *root = us_conf_root(doc);
	const char *keys = "abcdef";
	const bool want[] = { true, false, true, false, true, false };
	bool v;

	for (int i = 0; keys[i]; i++) {
		char key[2] = { keys[i], 0 };

		v = !want[i];
		assert_int_equal(us_conf_get_bool(doc, root, key, &v, err, sizeof(err)), 0);
		assert_int_equal(v, want[i]);
	}
	v = true;
	assert_int_equal(us_conf_get_bool(doc, root, "zz", &v, err, sizeof(err)), 1);
	assert_true(v);
	assert_int_equal(us_conf_get_bool(doc, root, "g", &v, err, sizeof(err)), -1);
	has(NAME ":7: g: expected true or false, got 'maybe'");
	assert_true(v);
	assert_int_equal(us_conf_get_bool(doc, root, "h", &v, err, sizeof(err)), -1);
	has(NAME ":8: h: expected true or false, got '1'");
	assert_int_equal(us_conf_get_bool(doc, root, "i", &v, err, sizeof(err)), -1);
	has(NAME ":9: i: expected true or false, got a list");
	us_conf_free(doc);
}

static void test_get_int64(void **state)
{
	struct us_conf_doc *doc = load("port: 8080\n"
				       "neg: -12\n"
				       "plus: +7\n"
				       "min: -9223372036854775808\n"
				       "max: 9223372036854775807\n"
				       "over: 9223372036854775808\n"
				       "under: -9223372036854775809\n"
				       "huge: 123456789012345678901234567890\n"
				       "text: 12x\n"
				       "hex: 0x10\n"
				       "float: 1.5\n"
				       "sign: '-'\n"
				       "big_port: 70000\n");
	const struct us_conf_node *root = us_conf_root(doc);
	int64_t v = 0;

	assert_int_equal(us_conf_get_int64(doc, root, "port", 1, 65535, &v, err, sizeof(err)), 0);
	assert_int_equal(v, 8080);
	assert_int_equal(us_conf_get_int64(doc, root, "neg", INT64_MIN, INT64_MAX, &v, err, sizeof(err)), 0);
	assert_int_equal(v, -12);
	assert_int_equal(us_conf_get_int64(doc, root, "plus", INT64_MIN, INT64_MAX, &v, err, sizeof(err)), 0);
	assert_int_equal(v, 7);
	assert_int_equal(us_conf_get_int64(doc, root, "min", INT64_MIN, INT64_MAX, &v, err, sizeof(err)), 0);
	assert_true(v == INT64_MIN);
	assert_int_equal(us_conf_get_int64(doc, root, "max", INT64_MIN, INT64_MAX, &v, err, sizeof(err)), 0);
	assert_true(v == INT64_MAX);

	v = 5;
	assert_int_equal(us_conf_get_int64(doc, root, "absent", 0, 10, &v, err, sizeof(err)), 1);
	assert_int_equal(v, 5);

	assert_int_equal(us_conf_get_int64(doc, root, "big_port", 1, 65535, &v, err, sizeof(err)), -1);
	has(NAME ":13: big_port: must be between 1 and 65535, got '70000'");
	assert_int_equal(us_conf_get_int64(doc, root, "neg", 0, 10, &v, err, sizeof(err)), -1);
	has(NAME ":2: neg: must be between 0 and 10, got '-12'");
	assert_int_equal(us_conf_get_int64(doc, root, "over", INT64_MIN, INT64_MAX, &v, err, sizeof(err)), -1);
	has(NAME ":6: over: must be between -9223372036854775808 and 9223372036854775807, got '9223372036854775808'");
	assert_int_equal(us_conf_get_int64(doc, root, "under", INT64_MIN, INT64_MAX, &v, err, sizeof(err)), -1);
	has(NAME ":7: under: must be between");
	assert_int_equal(us_conf_get_int64(doc, root, "huge", INT64_MIN, INT64_MAX, &v, err, sizeof(err)), -1);
	has(NAME ":8: huge: must be between");
	assert_int_equal(us_conf_get_int64(doc, root, "text", INT64_MIN, INT64_MAX, &v, err, sizeof(err)), -1);
	has(NAME ":9: text: expected an integer, got '12x'");
	assert_int_equal(us_conf_get_int64(doc, root, "hex", INT64_MIN, INT64_MAX, &v, err, sizeof(err)), -1);
	has(NAME ":10: hex: expected an integer, got '0x10'");
	assert_int_equal(us_conf_get_int64(doc, root, "float", INT64_MIN, INT64_MAX, &v, err, sizeof(err)), -1);
	has(NAME ":11: float: expected an integer, got '1.5'");
	assert_int_equal(us_conf_get_int64(doc, root, "sign", INT64_MIN, INT64_MAX, &v, err, sizeof(err)), -1);
	has(NAME ":12: sign: expected an integer, got '-'");
	assert_int_equal(v, 5);
	us_conf_free(doc);
}

static void test_get_size(void **state)
{
	static const struct {
		const char *text;
		uint64_t want;
	} ok[] = {
		{ "0", 0 },
		{ "4096", 4096 },
		{ "12B", 12 },
		{ "1KiB", 1024 },
		{ "256MiB", 256ULL << 20 },
		{ "256 MiB", 256ULL << 20 },
		{ "2GiB", 2ULL << 30 },
		{ "3TiB", 3ULL << 40 },
		{ "1KB", 1000 },
		{ "1kB", 1000 },
		{ "5MB", 5000000 },
		{ "7GB", 7000000000ULL },
		{ "2TB", 2000000000000ULL },
		{ "1.5GiB", 3ULL << 29 },
		{ "0.5KiB", 512 },
		{ "18446744073709551615", UINT64_MAX },
		{ "16777215TiB", 16777215ULL << 40 },
	};
	static const struct {
		const char *text, *want;
	} bad[] = {
		{ "lots", "expected a size such as 256MiB, got 'lots'" },
		{ "-1", "expected a size such as 256MiB, got '-1'" },
		{ "1.", "expected a size such as 256MiB, got '1.'" },
		{ ".5MiB", "expected a size such as 256MiB, got '.5MiB'" },
		{ "5 5", "expected a size such as 256MiB, got '5 5'" },
		{ "1.0000000001GiB", "expected a size such as 256MiB" },
		{ "256M", "unknown size unit in '256M' (use B, KiB, MiB, GiB, TiB, KB, MB, GB or TB)" },
		{ "1mib", "unknown size unit in '1mib'" },
		{ "18446744073709551616", "size is too large, got '18446744073709551616'" },
		{ "16777216TiB", "size is too large, got '16777216TiB'" },
		{ "99999999999999999999999999GiB", "size is too large" },
		{ "1.5B", "is not a whole number of bytes, got '1.5B'" },
	};
	char yaml[128];
	uint64_t v;

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		struct us_conf_doc *doc;

		snprintf(yaml, sizeof(yaml), "spool:\n  max_bytes: \"%s\"\n", ok[i].text);
		doc = load(yaml);
		const struct us_conf_node *spool = us_conf_get(us_conf_root(doc), "spool");
		v = 1;
		if (us_conf_get_size(doc, spool, "max_bytes", &v, err, sizeof(err)) != 0)
			fail_msg("%s: %s", ok[i].text, err);
		if (v != ok[i].want)
			fail_msg("%s gave %llu", ok[i].text, (unsigned long long)v);
		us_conf_free(doc);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct us_conf_doc *doc;

		snprintf(yaml, sizeof(yaml), "spool:\n  max_bytes: %s\n", bad[i].text);
		doc = load(yaml);
		const struct us_conf_node *spool = us_conf_get(us_conf_root(doc), "spool");
		v = 7;
		assert_int_equal(us_conf_get_size(doc, spool, "max_bytes", &v, err, sizeof(err)), -1);
		has(NAME ":2: spool.max_bytes: ");
		has(bad[i].want);
		assert_int_equal(v, 7);
		us_conf_free(doc);
	}

	/* Absent key, absent section, and a wrong type. */
	struct us_conf_doc *doc = load("spool:\n  dir: /var\nother: [1]\n");
	const struct us_conf_node *root = us_conf_root(doc);
	v = 99;
	assert_int_equal(us_conf_get_size(doc, us_conf_get(root, "spool"), "max_bytes", &v, err, sizeof(err)), 1);
	assert_int_equal(us_conf_get_size(doc, us_conf_get(root, "nope"), "max_bytes", &v, err, sizeof(err)), 1);
	assert_int_equal(v, 99);
	assert_int_equal(us_conf_get_size(doc, root, "other", &v, err, sizeof(err)), -1);
	has(NAME ":3: other: expected a size such as 256MiB, got a list");
	us_conf_free(doc);
}

static void test_get_duration(void **state)
{
	static const struct {
		const char *text;
		uint64_t want;
	} ok[] = {
		{ "250ms", 250000000ULL },
		{ "5s", 5000000000ULL },
		{ "2m", 120000000000ULL },
		{ "1h", 3600000000000ULL },
		{ "1d", 86400000000000ULL },
		{ "30", 30000000000ULL },
		{ "0", 0 },
		{ "1.5s", 1500000000ULL },
		{ "500us", 500000ULL },
		{ "7ns", 7 },
		{ "0.25 h", 900000000000ULL },
		{ "213503d", 213503ULL * 86400000000000ULL },
	};
	static const struct {
		const char *text, *want;
	} bad[] = {
		{ "soon", "expected a duration such as 5s or 250ms, got 'soon'" },
		{ "-5s", "expected a duration such as 5s or 250ms, got '-5s'" },
		{ "5 seconds", "unknown duration unit in '5 seconds' (use ns, us, ms, s, m, h or d)" },
		{ "1w", "unknown duration unit in '1w'" },
		{ "1h30m", "expected a duration such as 5s or 250ms, got '1h30m'" },
		{ "213504d", "duration is too large, got '213504d'" },
		{ "18446744074s", "duration is too large" },
		{ "99999999999999999999", "duration is too large" },
		{ "1.5ns", "is not a whole number of nanoseconds, got '1.5ns'" },
	};
	char yaml[128];
	uint64_t v;

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		struct us_conf_doc *doc;

		snprintf(yaml, sizeof(yaml), "interval: %s\n", ok[i].text);
		doc = load(yaml);
		v = 1;
		if (us_conf_get_duration(doc, us_conf_root(doc), "interval", &v, err, sizeof(err)) != 0)
			fail_msg("%s: %s", ok[i].text, err);
		if (v != ok[i].want)
			fail_msg("%s gave %llu", ok[i].text, (unsigned long long)v);
		us_conf_free(doc);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct us_conf_doc *doc;

		snprintf(yaml, sizeof(yaml), "x: 1\ninterval: %s\n", bad[i].text);
		doc = load(yaml);
		v = 7;
		assert_int_equal(us_conf_get_duration(doc, us_conf_root(doc), "interval", &v, err, sizeof(err)), -1);
		has(NAME ":2: interval: ");
		has(bad[i].want);
		assert_int_equal(v, 7);
		us_conf_free(doc);
	}
	struct us_conf_doc *doc = load("interval:\n");
	v = 3;
	assert_int_equal(us_conf_get_duration(doc, us_conf_root(doc), "interval", &v, err, sizeof(err)), 1);
	assert_int_equal(us_conf_get_duration(doc, us_conf_root(doc), "other", &v, err, sizeof(err)), 1);
	assert_int_equal(v, 3);
	us_conf_free(doc);
}

static void test_get_map_and_seq(void **state)
{
	struct us_conf_doc *doc = load("spool:\n"
				       "  limits:\n"
				       "    max_bytes: lots\n"
				       "workloads: [a, b]\n"
				       "scalar: 3\n"
				       "nothing:\n");
	const struct us_conf_node *root = us_conf_root(doc), *spool = NULL, *limits = NULL, *seq = NULL;
	uint64_t v = 0;

	assert_int_equal(us_conf_get_map(doc, root, "spool", &spool, err, sizeof(err)), 0);
	assert_int_equal(us_conf_get_map(doc, spool, "limits", &limits, err, sizeof(err)), 0);
	assert_int_equal(us_conf_get_size(doc, limits, "max_bytes", &v, err, sizeof(err)), -1);
	has(NAME ":3: spool.limits.max_bytes: expected a size such as 256MiB, got 'lots'");

	assert_int_equal(us_conf_get_seq(doc, root, "workloads", &seq, err, sizeof(err)), 0);
	assert_int_equal(us_conf_len(seq), 2);

	assert_int_equal(us_conf_get_map(doc, root, "workloads", &spool, err, sizeof(err)), -1);
	has(NAME ":4: workloads: expected a mapping, got a list");
	assert_int_equal(us_conf_get_seq(doc, root, "spool", &seq, err, sizeof(err)), -1);
	has(NAME ":2: spool: expected a list, got a mapping");
	assert_int_equal(us_conf_get_seq(doc, root, "scalar", &seq, err, sizeof(err)), -1);
	has(NAME ":5: scalar: expected a list, got '3'");

	/* Absent and null sections leave the output alone; chained getters on
	 * the resulting NULL report "absent" too. */
	const struct us_conf_node *opt = NULL;
	assert_int_equal(us_conf_get_map(doc, root, "missing", &opt, err, sizeof(err)), 1);
	assert_int_equal(us_conf_get_map(doc, root, "nothing", &opt, err, sizeof(err)), 1);
	assert_null(opt);
	assert_int_equal(us_conf_get_seq(doc, opt, "x", &seq, err, sizeof(err)), 1);
	assert_int_equal(us_conf_check_keys(doc, opt, (const char *const[]){ "a", NULL }, err, sizeof(err)), 0);
	/* Same for a null section fetched with the raw accessor. */
	opt = us_conf_get(root, "nothing");
	assert_non_null(opt);
	assert_int_equal(us_conf_get_size(doc, opt, "x", &v, err, sizeof(err)), 1);
	assert_int_equal(us_conf_check_keys(doc, opt, (const char *const[]){ "a", NULL }, err, sizeof(err)), 0);
	us_conf_free(doc);
}

static void test_sequence_items(void **state)
{
	struct us_conf_doc *doc = load("names: [api, db, cache, [x]]\n"
				       "workloads:\n"
				       "  - name: api\n"
				       "    ports: [80, 443, 99999]\n"
				       "    timeouts: [1s, 2s]\n"
				       "  -\n");
	const struct us_conf_node *root = us_conf_root(doc), *names = NULL, *wl = NULL, *ports = NULL;
	char buf[32];
	int64_t port;
	uint64_t ns;

	assert_int_equal(us_conf_get_seq(doc, root, "names", &names, err, sizeof(err)), 0);
	for (size_t i = 0; i < 3; i++)
		assert_int_equal(us_conf_as_string(doc, us_conf_seq_item(names, i), buf, sizeof(buf),
						   err, sizeof(err)),
				 0);
	assert_string_equal(buf, "cache");
	assert_int_equal(us_conf_as_string(doc, us_conf_seq_item(names, 3), buf, sizeof(buf), err,
					   sizeof(err)),
			 -1);
	has(NAME ":1: names[3]: expected a string, got a list");
	/* Past the end: the accessor gives NULL and the conversion refuses it. */
	assert_int_equal(us_conf_as_string(doc, us_conf_seq_item(names, 4), buf, sizeof(buf), err,
					   sizeof(err)),
			 -1);
	has(NAME ": expected a string, got nothing");

	assert_int_equal(us_conf_get_seq(doc, root, "workloads", &wl, err, sizeof(err)), 0);
	assert_int_equal(us_conf_len(wl), 2);
	assert_int_equal(us_conf_get_seq(doc, us_conf_seq_item(wl, 0), "ports", &ports, err, sizeof(err)), 0);
	assert_int_equal(us_conf_as_int64(doc, us_conf_seq_item(ports, 1), 1, 65535, &port, err, sizeof(err)), 0);
	assert_int_equal(port, 443);
	assert_int_equal(us_conf_as_int64(doc, us_conf_seq_item(ports, 2), 1, 65535, &port, err, sizeof(err)), -1);
	has(NAME ":4: workloads[0].ports[2]: must be between 1 and 65535, got '99999'");
	assert_int_equal(port, 443);

	const struct us_conf_node *t = us_conf_get(us_conf_seq_item(wl, 0), "timeouts");
	assert_int_equal(us_conf_as_duration(doc, us_conf_seq_item(t, 1), &ns, err, sizeof(err)), 0);
	assert_int_equal(ns, 2000000000ULL);
	assert_int_equal(us_conf_as_size(doc, us_conf_seq_item(t, 1), &ns, err, sizeof(err)), -1);
	has(NAME ":5: workloads[0].timeouts[1]: unknown size unit in '2s'");

	/* A null item is an error for the as_* conversions. */
	bool b;
	assert_int_equal(us_conf_as_bool(doc, us_conf_seq_item(wl, 1), &b, err, sizeof(err)), -1);
	has(NAME ":6: workloads[1]: expected true or false, got nothing");
	assert_int_equal(us_conf_as_size(doc, us_conf_seq_item(wl, 1), &ns, err, sizeof(err)), -1);
	has("workloads[1]: expected a size such as 256MiB, got nothing");
	us_conf_free(doc);
}

/* ---- key checks, missing keys, custom errors -------------------------- */

static const char *const spool_keys[] = { "dir", "max_bytes", "fsync", NULL };

static void test_check_keys(void **state)
{
	struct us_conf_doc *doc = load("spool:\n"
				       "  dir: /var/spool\n"
				       "  max_bytes: 1MiB\n"
				       "ok:\n"
				       "  fsync: true\n"
				       "  dir: /x\n"
				       "typo:\n"
				       "  max_byts: 1\n"
				       "swap:\n"
				       "  fysnc: on\n"
				       "far:\n"
				       "  dir: /x\n"
				       "  compression: zstd\n"
				       "short:\n"
				       "  ab: 1\n");
	const struct us_conf_node *root = us_conf_root(doc);

	assert_int_equal(us_conf_check_keys(doc, us_conf_get(root, "spool"), spool_keys, err, sizeof(err)), 0);
	assert_int_equal(us_conf_check_keys(doc, us_conf_get(root, "ok"), spool_keys, err, sizeof(err)), 0);
	assert_int_equal(us_conf_check_keys(doc, us_conf_get(root, "typo"), spool_keys, err, sizeof(err)), -1);
	has(NAME ":8: typo.max_byts: unknown key; did you mean 'max_bytes'?");
	/* A transposition is one edit. */
	assert_int_equal(us_conf_check_keys(doc, us_conf_get(root, "swap"), spool_keys, err, sizeof(err)), -1);
	has(NAME ":10: swap.fysnc: unknown key; did you mean 'fsync'?");
	assert_int_equal(us_conf_check_keys(doc, us_conf_get(root, "far"), spool_keys, err, sizeof(err)), -1);
	has(NAME ":13: far.compression: unknown key");
	assert_null(strstr(err, "did you mean"));
	assert_int_equal(us_conf_check_keys(doc, us_conf_get(root, "short"), spool_keys, err, sizeof(err)), -1);
	has(NAME ":15: short.ab: unknown key");
	assert_null(strstr(err, "did you mean"));

	static const char *const top[] = { "spool", "ok", "typo", "swap", "far", "short", NULL };
	assert_int_equal(us_conf_check_keys(doc, root, top, err, sizeof(err)), 0);
	static const char *const top_missing[] = { "spool", "ok", "typo", "swap", "far", "shorts", NULL };
	assert_int_equal(us_conf_check_keys(doc, root, top_missing, err, sizeof(err)), -1);
	has(NAME ":14: short: unknown key; did you mean 'shorts'?");
	assert_int_equal(us_conf_check_keys(doc, us_conf_get(us_conf_get(root, "ok"), "dir"), top, err, sizeof(err)), -1);
	has(NAME ":6: ok.dir: expected a mapping, got '/x'");
	us_conf_free(doc);
}

static void test_missing_and_errorf(void **state)
{
	struct us_conf_doc *doc = load("x: 1\n"
				       "coordinator:\n"
				       "  endpoint:\n"
				       "  port: 7000\n");
	const struct us_conf_node *root = us_conf_root(doc), *coord = us_conf_get(root, "coordinator");

	assert_int_equal(us_conf_missing(doc, coord, "server_key", err, sizeof(err)), -1);
	has(NAME ":3: coordinator.server_key: required key is missing");
	assert_int_equal(us_conf_missing(doc, coord, "endpoint", err, sizeof(err)), -1);
	has(NAME ":3: coordinator.endpoint: a value is required");
	assert_int_equal(us_conf_missing(doc, root, "agent", err, sizeof(err)), -1);
	has(NAME ":1: agent: required key is missing");
	assert_int_equal(us_conf_missing(doc, NULL, "agent", err, sizeof(err)), -1);
	has(NAME ": agent: required key is missing");

	assert_int_equal(us_conf_errorf(doc, us_conf_get(coord, "port"), err, sizeof(err),
					"port %d is reserved", 7000),
			 -1);
	assert_string_equal(err, NAME ":4: coordinator.port: port 7000 is reserved");
	assert_int_equal(us_conf_errorf(doc, root, err, sizeof(err), "no workloads"), -1);
	assert_string_equal(err, NAME ":1: no workloads");
	assert_int_equal(us_conf_errorf(doc, NULL, err, sizeof(err), "bad"), -1);
	assert_string_equal(err, NAME ": bad");
	/* A tiny or absent error buffer is not overrun. */
	char tiny[8];
	assert_int_equal(us_conf_errorf(doc, root, tiny, sizeof(tiny), "no workloads"), -1);
	assert_string_equal(tiny, "test.ya");
	assert_int_equal(us_conf_errorf(doc, root, NULL, 0, "no workloads"), -1);
	int64_t v;
	assert_int_equal(us_conf_get_int64(doc, root, "x", 5, 6, &v, NULL, 0), -1);
	us_conf_free(doc);
}

static void test_messages_escape_control_bytes(void **state)
{
	struct us_conf_doc *doc = load("\"k\\x1b[31m\": \"v\\n\\x07\"\n");
	const struct us_conf_node *root = us_conf_root(doc);
	bool b;

	assert_int_equal(us_conf_get_bool(doc, root, "k\x1b[31m", &b, err, sizeof(err)), -1);
	has(NAME ":1: k\\x1b[31m: expected true or false, got 'v\\x0a\\x07'");
	us_conf_free(doc);
}

static void test_long_value_quoted_short(void **state)
{
	char yaml[400] = "n: ";
	int64_t v;

	memset(yaml + 3, '9', 200);
	strcpy(yaml + 203, "\n");
	struct us_conf_doc *doc = load(yaml);
	assert_int_equal(us_conf_get_int64(doc, us_conf_root(doc), "n", 0, 10, &v, err, sizeof(err)), -1);
	has("must be between 0 and 10, got '9999999999999999999999999999999999999999999999999999999999999999...'");
	us_conf_free(doc);
}

/* ---- files ------------------------------------------------------------ */

static void test_load_file(void **state)
{
	char path[] = "/tmp/us_conf_test_XXXXXX";
	const char *yaml = "agent:\n  id: host-1\n  interval: 10s\nspool:\n  max_bytes: lots\n";
	int fd = mkstemp(path);
	struct us_conf_doc *doc;
	char want[128];
	uint64_t v;

	assert_true(fd >= 0);
	assert_int_equal(write(fd, yaml, strlen(yaml)), (ssize_t)strlen(yaml));
	close(fd);

	doc = us_conf_load_file(path, err, sizeof(err));
	assert_non_null(doc);
	assert_string_equal(us_conf_name(doc), path);
	assert_int_equal(us_conf_get_duration(doc, us_conf_get(us_conf_root(doc), "agent"), "interval",
					      &v, err, sizeof(err)),
			 0);
	assert_int_equal(v, 10000000000ULL);
	assert_int_equal(us_conf_get_size(doc, us_conf_get(us_conf_root(doc), "spool"), "max_bytes",
					  &v, err, sizeof(err)),
			 -1);
	snprintf(want, sizeof(want), "%s:5: spool.max_bytes: expected a size such as 256MiB, got 'lots'", path);
	assert_string_equal(err, want);
	us_conf_free(doc);

	/* Syntax errors name the real path too. */
	fd = open(path, O_WRONLY | O_TRUNC);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "a: [\n", 5), 5);
	close(fd);
	assert_null(us_conf_load_file(path, err, sizeof(err)));
	snprintf(want, sizeof(want), "%s:2:1: YAML syntax error: ", path);
	has(want);
	unlink(path);

	assert_null(us_conf_load_file(path, err, sizeof(err)));
	snprintf(want, sizeof(want), "%s: cannot open: %s", path, strerror(ENOENT));
	assert_string_equal(err, want);

	assert_null(us_conf_load_file("/tmp", err, sizeof(err)));
	snprintf(want, sizeof(want), "/tmp: cannot read: %s", strerror(EISDIR));
	assert_string_equal(err, want);
}

static void test_load_file_too_large(void **state)
{
	char path[] = "/tmp/us_conf_big_XXXXXX";
	int fd = mkstemp(path);
	char *big = malloc(US_CONF_MAX_BYTES + 10);

	assert_true(fd >= 0);
	assert_non_null(big);
	memset(big, '\n', US_CONF_MAX_BYTES + 10);
	assert_int_equal(write(fd, big, US_CONF_MAX_BYTES + 10), US_CONF_MAX_BYTES + 10);
	close(fd);
	free(big);
	assert_null(us_conf_load_file(path, err, sizeof(err)));
	has(path);
	has(": file is too large (more than 1048576 bytes)");
	unlink(path);
}

/* ---- agent workloads: requests, workloads_dir ------------------------ */

static void write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
}

/* Loads yaml as the agent config file dir/agent.yaml into c. */
static int agent_load(const char *dir, const char *yaml, struct us_agent_config *c)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/agent.yaml", dir);
	write_text(path, yaml);
	us_agent_config_defaults(c);
	err[0] = '\0';
	return us_agent_config_load(path, c, err, sizeof(err));
}

static void test_agent_requests_key(void **state)
{
	char dir[] = "/tmp/us_conf_req_XXXXXX", want[256];
	struct us_agent_config *c = malloc(sizeof(*c));

	(void)state;
	assert_non_null(c);
	assert_non_null(mkdtemp(dir));
	assert_int_equal(agent_load(dir, "workloads:\n"
				   "  - {name: a, cgroup: /sys/fs/cgroup/a, ports: [80]}\n"
				   "  - {name: b, cgroup: /sys/fs/cgroup/b, ports: [80], requests: true}\n"
				   "  - {name: c, cgroup: /sys/fs/cgroup/c, ports: [80], requests: no}\n"
				   "  - name: d\n    cgroup: /sys/fs/cgroup/d\n    ports: [80]\n"
				   "    mirror: {endpoint: '127.0.0.1:81'}\n", c), 0);
	assert_int_equal(c->nworkloads, 4);
	assert_false(c->workloads[0].requests);	/* default */
	assert_true(c->workloads[1].requests);
	assert_false(c->workloads[2].requests);
	/* a mirror measures requests by itself; the key stays as written */
	assert_true(c->workloads[3].mirror.enabled);
	assert_false(c->workloads[3].requests);
	assert_string_equal(c->workloads_dir, "");	/* default: no drop-ins */

	assert_int_equal(agent_load(dir, "workloads:\n  - name: a\n    cgroup: /sys/fs/cgroup/a\n"
				   "    requests: true\n", c), -1);
	snprintf(want, sizeof(want), "%s/agent.yaml:4: workloads[0].requests: measuring requests "
		 "needs the workload's service `ports:`", dir);
	has(want);
	assert_int_equal(agent_load(dir, "workloads:\n  - name: a\n    cgroup: /sys/fs/cgroup/a\n"
				   "    ports: [80]\n    requests: sometimes\n", c), -1);
	snprintf(want, sizeof(want), "%s/agent.yaml:5: workloads[0].requests: ", dir);
	has(want);
	has("sometimes");

	snprintf(want, sizeof(want), "%s/agent.yaml", dir);
	unlink(want);
	rmdir(dir);
	free(c);
}

static void test_agent_workloads_dir(void **state)
{
	char dir[] = "/tmp/us_conf_dropin_XXXXXX", wl[128], path[256], want[512], yaml[512];
	static const char *const files[] = {
		"a.yaml", "b.yaml", ".hidden.yaml", "notes.txt", "c.yaml.tmp", "z.yaml", "agent.yaml"
	};
	struct us_agent_config *c = malloc(sizeof(*c));

	(void)state;
	assert_non_null(c);
	assert_non_null(mkdtemp(dir));
	snprintf(wl, sizeof(wl), "%s/wl.d", dir);
	snprintf(yaml, sizeof(yaml), "workloads_dir: %s\nworkloads:\n"
		 "  - {name: api, cgroup: /sys/fs/cgroup/api}\n", wl);

	/* a directory that does not exist adds nothing */
	assert_int_equal(agent_load(dir, yaml, c), 0);
	assert_string_equal(c->workloads_dir, wl);
	assert_int_equal(c->nworkloads, 1);

	/* *.yaml files, by name, after the main file's; others ignored */
	assert_int_equal(mkdir(wl, 0700), 0);
#define DROP(name, text) \
	(snprintf(path, sizeof(path), "%s/%s", wl, name), write_text(path, text))
	DROP("b.yaml", "name: web2\nunit: web2\nrole: shadow\n");
	DROP("a.yaml", "# instance web\nname: web\ncgroup: /sys/fs/cgroup/web\nports: [8080]\n"
	     "requests: true\nlabels: {instance: a}\n");
	DROP(".hidden.yaml", "broken: [\n");
	DROP("notes.txt", "broken: [\n");
	DROP("c.yaml.tmp", "broken: [\n");
	assert_int_equal(agent_load(dir, yaml, c), 0);
	assert_int_equal(c->nworkloads, 3);
	assert_string_equal(c->workloads[0].name, "api");
	assert_string_equal(c->workloads[1].name, "web");
	assert_string_equal(c->workloads[1].cgroup, "/sys/fs/cgroup/web");
	assert_true(c->workloads[1].requests);
	assert_int_equal(c->workloads[1].nports, 1);
	assert_int_equal(c->workloads[1].ports[0], 8080);
	assert_string_equal(c->workloads[1].label_values[0], "a");
	assert_string_equal(c->workloads[2].name, "web2");
	assert_string_equal(c->workloads[2].unit, "web2");
	assert_false(c->workloads[2].requests);

	/* a broken drop-in fails the whole load, named FILE:LINE */
	DROP("z.yaml", "name: web3\ncgroup: /sys/fs/cgroup/web3\nprots: [80]\n");
	assert_int_equal(agent_load(dir, yaml, c), -1);
	snprintf(want, sizeof(want), "%s/z.yaml:3: prots: unknown key", wl);
	has(want);
	DROP("z.yaml", "name: web3\ncgroup: [\n");
	assert_int_equal(agent_load(dir, yaml, c), -1);
	snprintf(want, sizeof(want), "%s/z.yaml:", wl);
	has(want);
	has("YAML syntax error");
	DROP("z.yaml", "");
	assert_int_equal(agent_load(dir, yaml, c), -1);
	snprintf(want, sizeof(want), "%s/z.yaml", wl);
	has(want);
	has("name: required key is missing");

	/* one name once, across the file and every drop-in */
	DROP("z.yaml", "cgroup: /sys/fs/cgroup/x\nname: api\n");
	assert_int_equal(agent_load(dir, yaml, c), -1);
	snprintf(want, sizeof(want), "%s/z.yaml:2: name: workload 'api' is already defined in "
		 "%s/agent.yaml", wl, dir);
	has(want);
	DROP("z.yaml", "name: web\ncgroup: /sys/fs/cgroup/x\n");
	assert_int_equal(agent_load(dir, yaml, c), -1);
	snprintf(want, sizeof(want), "%s/z.yaml:1: name: workload 'web' is already defined in "
		 "%s/a.yaml", wl, wl);
	has(want);

	/* workloads_dir that is not a directory */
	snprintf(yaml, sizeof(yaml), "workloads: []\nworkloads_dir: %s/a.yaml\n", wl);
	assert_int_equal(agent_load(dir, yaml, c), -1);
	snprintf(want, sizeof(want), "%s/agent.yaml:2: workloads_dir: %s/a.yaml: %s", dir, wl,
		 strerror(ENOTDIR));
	has(want);
#undef DROP

	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", i + 1 < sizeof(files) / sizeof(files[0]) ?
			 wl : dir, files[i]);
		unlink(path);
	}
	assert_int_equal(rmdir(wl), 0);
	assert_int_equal(rmdir(dir), 0);
	free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty_documents),
		cmocka_unit_test(test_top_level_must_be_mapping),
		cmocka_unit_test(test_tree_shape_lines_and_paths),
		cmocka_unit_test(test_null_values),
		cmocka_unit_test(test_lookup_many_keys),
		cmocka_unit_test(test_syntax_errors),
		cmocka_unit_test(test_duplicate_keys),
		cmocka_unit_test(test_aliases_anchors_tags_refused),
		cmocka_unit_test(test_bad_keys),
		cmocka_unit_test(test_second_document_refused),
		cmocka_unit_test(test_depth_limit),
		cmocka_unit_test(test_size_limit),
		cmocka_unit_test(test_get_string),
		cmocka_unit_test(test_get_bool),
		cmocka_unit_test(test_get_int64),
		cmocka_unit_test(test_get_size),
		cmocka_unit_test(test_get_duration),
		cmocka_unit_test(test_get_map_and_seq),
		cmocka_unit_test(test_sequence_items),
		cmocka_unit_test(test_check_keys),
		cmocka_unit_test(test_missing_and_errorf),
		cmocka_unit_test(test_messages_escape_control_bytes),
		cmocka_unit_test(test_long_value_quoted_short),
		cmocka_unit_test(test_load_file),
		cmocka_unit_test(test_load_file_too_large),
		cmocka_unit_test(test_agent_requests_key),
		cmocka_unit_test(test_agent_workloads_dir),
	};

	return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
