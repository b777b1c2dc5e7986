/* YAML configuration reader shared by the agent and the coordinator: loads a
 * file or buffer into a small read-only tree (mappings, lists, scalars) that
 * remembers where every value came from, and typed getters whose errors
 * always read "FILE:LINE: KEY.PATH: what is wrong". Callers own their config
 * structs and defaults; this module owns only the tree. */
#ifndef US_CONFIG_H
#define US_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Limits that keep a hostile or mistaken file from costing much: configs are
 * a few KiB and a dozen levels deep at most. */
#define US_CONF_MAX_BYTES (1024 * 1024)
#define US_CONF_MAX_DEPTH 64
#define US_CONF_MAX_KEY 256

enum us_conf_type {
	US_CONF_MAP,
	US_CONF_SEQ,
	US_CONF_SCALAR,
};

struct us_conf_doc;
struct us_conf_node;

/* Loading. On failure both return NULL and leave a message in err. The
 * buffer variant does not keep data; name is used in messages. Anchors,
 * aliases, tags, more than one document and a top level that is not a
 * mapping are refused. An empty document is an empty mapping. */
struct us_conf_doc *us_conf_load_file(const char *path, char *err, size_t errlen);
struct us_conf_doc *us_conf_load_buffer(const char *name, const void *data, size_t len,
					char *err, size_t errlen);
void us_conf_free(struct us_conf_doc *doc);

const char *us_conf_name(const struct us_conf_doc *doc);
const struct us_conf_node *us_conf_root(const struct us_conf_doc *doc);

/* Tree inspection. Nodes live as long as their doc. */
enum us_conf_type us_conf_type(const struct us_conf_node *node);
unsigned int us_conf_line(const struct us_conf_node *node); /* 1-based */
unsigned int us_conf_col(const struct us_conf_node *node);  /* 1-based */
/* Dotted path such as "workloads[2].ports" written into buf (truncated to
 * fit); the top level is "". Returns buf. */
const char *us_conf_path(const struct us_conf_node *node, char *buf, size_t len);
/* Scalar text (NUL-terminated; *len, if given, counts embedded NULs too), or
 * NULL for a mapping or list. */
const char *us_conf_scalar(const struct us_conf_node *node, size_t *len);
/* A plain "", "~" or "null": written as "key:" with nothing after it. */
bool us_conf_is_null(const struct us_conf_node *node);
/* Entries of a mapping or items of a list; 0 for a scalar or NULL. */
size_t us_conf_len(const struct us_conf_node *node);
const struct us_conf_node *us_conf_seq_item(const struct us_conf_node *seq, size_t i);
const char *us_conf_map_key(const struct us_conf_node *map, size_t i);
const struct us_conf_node *us_conf_map_value(const struct us_conf_node *map, size_t i);
/* The value under key, or NULL when map is NULL, not a mapping, or lacks it. */
const struct us_conf_node *us_conf_get(const struct us_conf_node *map, const char *key);

/* Typed getters on a mapping. All return 0 when the key is present and valid
 * (value written), 1 when it is absent or null (output untouched, so the
 * caller's default stays) and -1 on error (message in err, output
 * untouched). A NULL or null map means "section absent": every getter
 * returns 1, so an optional section can be read without checks.
 *
 * bool:     true/false, yes/no, on/off (any case).
 * int64:    decimal, optional sign; must lie in [min, max].
 * size:     bytes; a plain number, or a number (fractions allowed, e.g. 1.5GiB)
 *           with unit B, KiB, MiB, GiB, TiB (powers of 1024) or KB/kB, MB,
 *           GB, TB (powers of 1000). Bare K/M/G are refused as ambiguous.
 * duration: nanoseconds; a number with unit ns, us, ms, s, m, h or d; a plain
 *           number means seconds.
 * map/seq:  the child node, type-checked. */
int us_conf_get_string(const struct us_conf_doc *doc, const struct us_conf_node *map,
		       const char *key, char *buf, size_t buflen, char *err, size_t errlen);
int us_conf_get_bool(const struct us_conf_doc *doc, const struct us_conf_node *map,
		     const char *key, bool *out, char *err, size_t errlen);
int us_conf_get_int64(const struct us_conf_doc *doc, const struct us_conf_node *map,
		      const char *key, int64_t min, int64_t max, int64_t *out,
		      char *err, size_t errlen);
int us_conf_get_size(const struct us_conf_doc *doc, const struct us_conf_node *map,
		     const char *key, uint64_t *out, char *err, size_t errlen);
int us_conf_get_duration(const struct us_conf_doc *doc, const struct us_conf_node *map,
			 const char *key, uint64_t *out_ns, char *err, size_t errlen);
int us_conf_get_map(const struct us_conf_doc *doc, const struct us_conf_node *map,
		    const char *key, const struct us_conf_node **out, char *err, size_t errlen);
int us_conf_get_seq(const struct us_conf_doc *doc, const struct us_conf_node *map,
		    const char *key, const struct us_conf_node **out, char *err, size_t errlen);

/* The same conversions on a node already in hand, typically a list item from
 * us_conf_seq_item() (errors then name "key[3]"). These return 0 or -1: a
 * NULL or null node is an error ("expected ..., got nothing"). */
int us_conf_as_string(const struct us_conf_doc *doc, const struct us_conf_node *node,
		      char *buf, size_t buflen, char *err, size_t errlen);
int us_conf_as_bool(const struct us_conf_doc *doc, const struct us_conf_node *node,
		    bool *out, char *err, size_t errlen);
int us_conf_as_int64(const struct us_conf_doc *doc, const struct us_conf_node *node,
		     int64_t min, int64_t max, int64_t *out, char *err, size_t errlen);
int us_conf_as_size(const struct us_conf_doc *doc, const struct us_conf_node *node,
		    uint64_t *out, char *err, size_t errlen);
int us_conf_as_duration(const struct us_conf_doc *doc, const struct us_conf_node *node,
			uint64_t *out_ns, char *err, size_t errlen);

/* Every key of map must appear in allowed (NULL-terminated). The first
 * unknown key is an error naming it and its line, with a suggestion when an
 * allowed key is within edit distance 2. Returns 0 or -1; 0 for a NULL or
 * null map. */
int us_conf_check_keys(const struct us_conf_doc *doc, const struct us_conf_node *map,
		       const char *const allowed[], char *err, size_t errlen);

/* Errors in the common format for checks the getters cannot make (cross-field
 * rules, enumerations). errorf blames node (its line and path; NULL gives
 * just the file name). missing blames map.key: "required key is missing", or
 * "a value is required" when the key is there but null. Both return -1. */
int us_conf_errorf(const struct us_conf_doc *doc, const struct us_conf_node *node,
		   char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
int us_conf_missing(const struct us_conf_doc *doc, const struct us_conf_node *map,
		    const char *key, char *err, size_t errlen);

#endif /* US_CONFIG_H */
