/* YAML configuration reader: owns the libyaml event loop that builds the node
 * tree (with its limits and refusals), the per-document arena every node and
 * string lives in, the "FILE:LINE: KEY.PATH: problem" error format and the
 * typed conversions (strings, booleans, integers, sizes, durations). */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <yaml.h>

struct us_conf_node {
	enum us_conf_type type;
	bool null;
	unsigned int line, col;
	/* Paths are rebuilt from parent links when an error needs one instead of
	 * being stored per node: a stored path costs depth x key length per node,
	 * which a hostile 1 MiB file can turn into gigabytes. */
	const struct us_conf_node *parent;
	/* Under a mapping: the key node. A key node points at itself, so a key
	 * and its value share one path. */
	const struct us_conf_node *key;
	size_t index; /* position in a list; pair number for a key node */
	const char *str;
	size_t len;
	struct us_conf_node **items; /* mapping: key, value, key, value...; list: items */
	size_t n;		     /* pairs of a mapping, items of a list */
	/* Mapping keys sorted by text, for the duplicate check and so lookups
	 * stay O(log n) even on a hostile mapping with 100k keys. */
	const struct us_conf_node **sorted;
};

struct chunk {
	struct chunk *next;
	size_t used, cap;
	max_align_t data[];
};

struct us_conf_doc {
	struct chunk *chunks;
	const char *name;
	struct us_conf_node *root;
};

#define CHUNK_BYTES (64 * 1024)
#define ALIGN _Alignof(max_align_t)

/* One arena per document: the tree is immutable once built, so everything
 * dies together in us_conf_free and nothing needs its own free. */
static void *arena_alloc(struct us_conf_doc *doc, size_t size)
{
	struct chunk *c = doc->chunks;
	void *p;

	if (size > SIZE_MAX / 2)
		return NULL;
	size = size ? (size + ALIGN - 1) & ~(ALIGN - 1) : ALIGN;
	if (!c || c->cap - c->used < size) {
		bool big = size > CHUNK_BYTES / 4;
		size_t cap = big ? size : CHUNK_BYTES;

		c = malloc(sizeof(*c) + cap);
		if (!c)
			return NULL;
		c->cap = cap;
		c->used = 0;
		/* A big block goes behind the head so the head's free space is
		 * not abandoned. */
		if (big && doc->chunks) {
			c->next = doc->chunks->next;
			doc->chunks->next = c;
		} else {
			c->next = doc->chunks;
			doc->chunks = c;
		}
	}
	p = (unsigned char *)c->data + c->used;
	c->used += size;
	return p;
}

static char *arena_strndup(struct us_conf_doc *doc, const char *s, size_t len)
{
	char *p = arena_alloc(doc, len + 1);

	if (p) {
		memcpy(p, s, len);
		p[len] = '\0';
	}
	return p;
}

/* ---- messages -------------------------------------------------------- */

static size_t append(char *buf, size_t len, size_t off, const char *s, size_t n)
{
	if (off + 1 >= len)
		return off;
	if (n > len - 1 - off)
		n = len - 1 - off;
	memcpy(buf + off, s, n);
	off += n;
	buf[off] = '\0';
	return off;
}

/* Control bytes in keys and values would garble a terminal or a log line;
 * bytes >= 0x80 are kept so UTF-8 text stays readable. */
static size_t append_escaped(char *buf, size_t len, size_t off, const char *s, size_t n)
{
	char esc[8];

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c >= 0x20 && c != 0x7f) {
			off = append(buf, len, off, (const char *)&s[i], 1);
		} else {
			snprintf(esc, sizeof(esc), "\\x%02x", c);
			off = append(buf, len, off, esc, strlen(esc));
		}
	}
	return off;
}

const char *us_conf_path(const struct us_conf_node *node, char *buf, size_t len)
{
	const struct us_conf_node *chain[US_CONF_MAX_DEPTH + 2];
	size_t depth = 0, off = 0;
	char idx[32];

	if (!buf || !len)
		return buf;
	buf[0] = '\0';
	for (; node && node->parent && depth < sizeof(chain) / sizeof(chain[0]); node = node->parent)
		chain[depth++] = node;
	while (depth--) {
		const struct us_conf_node *c = chain[depth];

		if (c->parent->type == US_CONF_SEQ) {
			snprintf(idx, sizeof(idx), "[%zu]", c->index);
			off = append(buf, len, off, idx, strlen(idx));
		} else if (c->key) {
			if (off)
				off = append(buf, len, off, ".", 1);
			off = append_escaped(buf, len, off, c->key->str, c->key->len);
		}
	}
	return buf;
}

#define QUOTE_MAX 64

/* 'value' for messages, cut short so a huge scalar cannot flood a log. */
static const char *quote(const struct us_conf_node *n, char *buf, size_t len)
{
	size_t off = 0;

	buf[0] = '\0';
	off = append(buf, len, off, "'", 1);
	off = append_escaped(buf, len, off, n->str, n->len < QUOTE_MAX ? n->len : QUOTE_MAX);
	if (n->len > QUOTE_MAX)
		off = append(buf, len, off, "...", 3);
	append(buf, len, off, "'", 1);
	return buf;
}

static const char *describe(const struct us_conf_node *n, char *buf, size_t len)
{
	if (n->type == US_CONF_MAP)
		return "a mapping";
	if (n->type == US_CONF_SEQ)
		return "a list";
	if (n->null)
		return "nothing";
	return quote(n, buf, len);
}

/* The single place the message format lives. path_node gives the key path
 * (NULL or the top level: none), line the line (0: none). */
static int vfail(const char *name, const struct us_conf_node *path_node, unsigned int line,
		 char *err, size_t errlen, const char *fmt, va_list ap)
{
	char msg[1024], path[512];

	if (!err || !errlen)
		return -1;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	us_conf_path(path_node, path, sizeof(path));
	if (line && path[0])
		snprintf(err, errlen, "%s:%u: %s: %s", name, line, path, msg);
	else if (line)
		snprintf(err, errlen, "%s:%u: %s", name, line, msg);
	else if (path[0])
		snprintf(err, errlen, "%s: %s: %s", name, path, msg);
	else
		snprintf(err, errlen, "%s: %s", name, msg);
	return -1;
}

static int __attribute__((format(printf, 6, 7)))
fail_line(const char *name, const struct us_conf_node *path_node, unsigned int line,
	  char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfail(name, path_node, line, err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

int us_conf_errorf(const struct us_conf_doc *doc, const struct us_conf_node *node,
		   char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfail(doc ? doc->name : "<config>", node, node ? node->line : 0, err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

/* ---- building the tree ----------------------------------------------- */

struct frame {
	struct us_conf_node *node;
	size_t start;	 /* first pending slot belonging to this container */
	bool want_value; /* mapping: a key was read, its value not yet */
};

struct builder {
	struct us_conf_doc *doc;
	const unsigned char *data;
	size_t len;
	struct frame frames[US_CONF_MAX_DEPTH];
	size_t depth;
	/* Children of every open container, innermost last; a container's
	 * slice is copied into the arena at its end event, so the tree needs no
	 * growable arrays. */
	struct us_conf_node **pending;
	size_t npending, cap;
	unsigned int ndocs;
	char *err;
	size_t errlen;
};

static int __attribute__((format(printf, 3, 4)))
bfail(struct builder *b, const struct us_conf_node *at, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfail(b->doc->name, at, at ? at->line : 0, b->err, b->errlen, fmt, ap);
	va_end(ap);
	return -1;
}

static int oom(struct builder *b)
{
	return bfail(b, NULL, "out of memory");
}

static unsigned int mark_num(size_t v)
{
	return v >= UINT_MAX ? UINT_MAX : (unsigned int)v + 1;
}

static struct us_conf_node *new_node(struct builder *b, enum us_conf_type type,
				     const yaml_mark_t *mark)
{
	struct us_conf_node *n = arena_alloc(b->doc, sizeof(*n));

	if (!n)
		return NULL;
	memset(n, 0, sizeof(*n));
	n->type = type;
	n->line = mark_num(mark->line);
	n->col = mark_num(mark->column);
	return n;
}

/* Links n to where it will sit before it is added, so errors about n
 * already carry its path. */
static void place(struct builder *b, struct us_conf_node *n)
{
	struct frame *f;
	size_t count;

	if (!b->depth)
		return;
	f = &b->frames[b->depth - 1];
	count = b->npending - f->start;
	n->parent = f->node;
	if (f->node->type == US_CONF_SEQ) {
		n->index = count;
	} else if (!f->want_value) {
		n->key = n;
		n->index = count / 2;
	} else {
		n->key = b->pending[b->npending - 1];
	}
}

static bool expecting_key(const struct builder *b)
{
	const struct frame *f;

	if (!b->depth)
		return false;
	f = &b->frames[b->depth - 1];
	return f->node->type == US_CONF_MAP && !f->want_value;
}

static int push(struct builder *b, struct us_conf_node *n)
{
	struct frame *f = &b->frames[b->depth - 1];

	if (b->npending == b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 64;
		struct us_conf_node **p = realloc(b->pending, cap * sizeof(*p));

		if (!p)
			return oom(b);
		b->pending = p;
		b->cap = cap;
	}
	b->pending[b->npending++] = n;
	if (f->node->type == US_CONF_MAP)
		f->want_value = !f->want_value;
	return 0;
}

/* Anchors are refused with aliases because they only exist to be aliased,
 * and aliases allow "billion laughs" expansion. Tags would let a file
 * override how a value is typed behind the getters' back. */
static int check_props(struct builder *b, const struct us_conf_node *at,
		       const yaml_char_t *anchor, const yaml_char_t *tag)
{
	char buf[QUOTE_MAX + 8];

	if (anchor) {
		append_escaped(buf, sizeof(buf), 0, (const char *)anchor,
			       strnlen((const char *)anchor, QUOTE_MAX));
		return bfail(b, at, "anchors (&%s) are not supported", buf);
	}
	if (tag) {
		append_escaped(buf, sizeof(buf), 0, (const char *)tag,
			       strnlen((const char *)tag, QUOTE_MAX));
		return bfail(b, at, "tags (%s) are not supported; quote the value instead", buf);
	}
	return 0;
}

static bool is_null_text(const char *s, size_t len)
{
	return len == 0 || (len == 1 && s[0] == '~') ||
	       (len == 4 && (!memcmp(s, "null", 4) || !memcmp(s, "Null", 4) ||
			     !memcmp(s, "NULL", 4)));
}

static int cmp_key(const void *pa, const void *pb)
{
	const struct us_conf_node *a = *(const struct us_conf_node *const *)pa;
	const struct us_conf_node *b = *(const struct us_conf_node *const *)pb;
	size_t n = a->len < b->len ? a->len : b->len;
	int c = memcmp(a->str, b->str, n);

	if (c)
		return c;
	if (a->len != b->len)
		return a->len < b->len ? -1 : 1;
	return a->index < b->index ? -1 : a->index > b->index;
}

/* Sorting rather than comparing every pair keeps a mapping with 100k keys
 * from costing 10^10 comparisons, and the sorted index then serves lookups.
 * The duplicate reported is the earliest second occurrence in the file. */
static int index_keys(struct builder *b, struct us_conf_node *map)
{
	const struct us_conf_node **keys, *dup = NULL, *first = NULL;

	if (!map->n)
		return 0;
	keys = arena_alloc(b->doc, map->n * sizeof(*keys));
	if (!keys)
		return oom(b);
	for (size_t i = 0; i < map->n; i++)
		keys[i] = map->items[2 * i];
	qsort(keys, map->n, sizeof(*keys), cmp_key);
	for (size_t i = 1; i < map->n; i++) {
		const struct us_conf_node *a = keys[i - 1], *k = keys[i];

		if (a->len == k->len && !memcmp(a->str, k->str, k->len) &&
		    (!dup || k->index < dup->index)) {
			dup = k;
			first = a;
		}
	}
	if (dup)
		return bfail(b, dup, "duplicate key (first set at line %u)", first->line);
	map->sorted = keys;
	return 0;
}

static int check_key(struct builder *b, const struct us_conf_node *k)
{
	const struct us_conf_node *map = b->frames[b->depth - 1].node;

	/* Blamed on the mapping (at the key's line) so a 1 MiB key is not
	 * echoed back as its own path. */
	if (k->null)
		return fail_line(b->doc->name, map, k->line, b->err, b->errlen,
				 "empty mapping key");
	if (k->len > US_CONF_MAX_KEY)
		return fail_line(b->doc->name, map, k->line, b->err, b->errlen,
				 "mapping key longer than %d bytes", US_CONF_MAX_KEY);
	if (memchr(k->str, '\0', k->len))
		return fail_line(b->doc->name, map, k->line, b->err, b->errlen,
				 "mapping key contains a NUL character");
	return 0;
}

static int on_scalar(struct builder *b, const yaml_event_t *ev)
{
	struct us_conf_node *n = new_node(b, US_CONF_SCALAR, &ev->start_mark);
	const char *s = (const char *)ev->data.scalar.value;
	size_t len = ev->data.scalar.length;

	if (!n)
		return oom(b);
	place(b, n);
	if (check_props(b, n, ev->data.scalar.anchor, ev->data.scalar.tag))
		return -1;
	n->str = arena_strndup(b->doc, s, len);
	if (!n->str)
		return oom(b);
	n->len = len;
	n->null = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && is_null_text(s, len);
	if (!b->depth) {
		if (!n->null)
			return bfail(b, n, "the top level must be a mapping of keys to values, got %s",
				     "a single value");
		/* "---" alone: an empty file in effect, so blame line 1. */
		n->type = US_CONF_MAP;
		n->line = n->col = 1;
		n->str = NULL;
		n->len = 0;
		n->null = false;
		b->doc->root = n;
		return 0;
	}
	if (expecting_key(b) && check_key(b, n))
		return -1;
	return push(b, n);
}

static int on_start(struct builder *b, const yaml_event_t *ev, enum us_conf_type type)
{
	struct us_conf_node *n = new_node(b, type, &ev->start_mark);
	const yaml_char_t *anchor, *tag;

	if (!n)
		return oom(b);
	if (type == US_CONF_MAP) {
		anchor = ev->data.mapping_start.anchor;
		tag = ev->data.mapping_start.tag;
	} else {
		anchor = ev->data.sequence_start.anchor;
		tag = ev->data.sequence_start.tag;
	}
	if (expecting_key(b))
		return fail_line(b->doc->name, b->frames[b->depth - 1].node, n->line, b->err,
				 b->errlen, "mapping keys must be single values, not %s",
				 type == US_CONF_MAP ? "mappings" : "lists");
	place(b, n);
	if (check_props(b, n, anchor, tag))
		return -1;
	if (b->depth == US_CONF_MAX_DEPTH)
		return bfail(b, n, "nested more than %d levels deep", US_CONF_MAX_DEPTH);
	if (!b->depth) {
		if (type != US_CONF_MAP)
			return bfail(b, n, "the top level must be a mapping of keys to values, got %s",
				     "a list");
		b->doc->root = n;
	} else if (push(b, n)) {
		return -1;
	}
	b->frames[b->depth++] = (struct frame){ .node = n, .start = b->npending };
	return 0;
}

static int on_end(struct builder *b)
{
	struct frame *f = &b->frames[b->depth - 1];
	struct us_conf_node *n = f->node;
	size_t count = b->npending - f->start;

	if (count) {
		n->items = arena_alloc(b->doc, count * sizeof(*n->items));
		if (!n->items)
			return oom(b);
		memcpy(n->items, b->pending + f->start, count * sizeof(*n->items));
	}
	/* libyaml always pairs a key with a value (an empty scalar if need
	 * be), so count is even for a mapping. */
	n->n = n->type == US_CONF_MAP ? count / 2 : count;
	if (n->type == US_CONF_MAP && index_keys(b, n))
		return -1;
	b->npending = f->start;
	b->depth--;
	return 0;
}

static int on_event(struct builder *b, const yaml_event_t *ev)
{
	switch (ev->type) {
	case YAML_DOCUMENT_START_EVENT:
		/* A second document is almost always a stray "---" that would
		 * otherwise hide the rest of the file. */
		if (b->ndocs++)
			return fail_line(b->doc->name, NULL, mark_num(ev->start_mark.line), b->err,
					 b->errlen, "only one YAML document is allowed per file");
		return 0;
	case YAML_ALIAS_EVENT: {
		struct us_conf_node at = { .type = US_CONF_SCALAR,
					   .line = mark_num(ev->start_mark.line) };
		const struct us_conf_node *path = NULL;

		/* An alias used as a key is blamed on its mapping. */
		if (expecting_key(b)) {
			path = b->frames[b->depth - 1].node;
		} else if (b->depth) {
			place(b, &at);
			path = &at;
		}
		return fail_line(b->doc->name, path, at.line, b->err, b->errlen,
				 "aliases (*name) are not supported");
	}
	case YAML_SCALAR_EVENT:
		return on_scalar(b, ev);
	case YAML_SEQUENCE_START_EVENT:
		return on_start(b, ev, US_CONF_SEQ);
	case YAML_MAPPING_START_EVENT:
		return on_start(b, ev, US_CONF_MAP);
	case YAML_SEQUENCE_END_EVENT:
	case YAML_MAPPING_END_EVENT:
		return on_end(b);
	default:
		return 0;
	}
}

static void syntax_error(struct builder *b, const yaml_parser_t *p)
{
	size_t line = 1, col = 1;
	char extra[160] = "";

	if (p->error == YAML_MEMORY_ERROR) {
		oom(b);
		return;
	}
	if (p->error == YAML_READER_ERROR) {
		/* Encoding errors carry a byte offset, not a mark. */
		size_t end = p->problem_offset < b->len ? p->problem_offset : b->len;

		for (size_t i = 0; i < end; i++) {
			if (b->data[i] == '\n') {
				line++;
				col = 1;
			} else {
				col++;
			}
		}
		if (p->problem_value != -1)
			snprintf(extra, sizeof(extra), " (byte 0x%02x)", (unsigned int)p->problem_value & 0xffu);
	} else {
		line = p->problem_mark.line + 1;
		col = p->problem_mark.column + 1;
		if (p->context)
			snprintf(extra, sizeof(extra), " (%s at line %zu)", p->context,
				 p->context_mark.line + 1);
	}
	if (b->err && b->errlen)
		snprintf(b->err, b->errlen, "%s:%zu:%zu: YAML syntax error: %s%s", b->doc->name,
			 line, col, p->problem ? p->problem : "unknown problem", extra);
}

struct us_conf_doc *us_conf_load_buffer(const char *name, const void *data, size_t len,
					char *err, size_t errlen)
{
	struct builder b = { .err = err, .errlen = errlen };
	struct us_conf_doc *doc = NULL, *ret = NULL;
	yaml_parser_t parser;
	yaml_event_t ev;
	bool parser_ok = false, have_ev = false, done = false;

	if (err && errlen)
		err[0] = '\0';
	if (!name)
		name = "<config>";
	if (len > US_CONF_MAX_BYTES) {
		if (err && errlen)
			snprintf(err, errlen, "%s: file is too large (%zu bytes; the limit is %d)",
				 name, len, US_CONF_MAX_BYTES);
		goto cleanup;
	}
	doc = calloc(1, sizeof(*doc));
	if (!doc || !(doc->name = arena_strndup(doc, name, strlen(name)))) {
		if (err && errlen)
			snprintf(err, errlen, "%s: out of memory", name);
		goto cleanup;
	}
	b.doc = doc;
	b.data = data ? data : (const void *)"";
	b.len = data ? len : 0;
	if (!yaml_parser_initialize(&parser)) {
		oom(&b);
		goto cleanup;
	}
	parser_ok = true;
	yaml_parser_set_input_string(&parser, b.data, b.len);
	while (!done) {
		if (!yaml_parser_parse(&parser, &ev)) {
			syntax_error(&b, &parser);
			goto cleanup;
		}
		have_ev = true;
		if (on_event(&b, &ev))
			goto cleanup;
		done = ev.type == YAML_STREAM_END_EVENT;
		yaml_event_delete(&ev);
		have_ev = false;
	}
	if (!doc->root) {
		yaml_mark_t start = { 0 };

		doc->root = new_node(&b, US_CONF_MAP, &start);
		if (!doc->root) {
			oom(&b);
			goto cleanup;
		}
	}
	ret = doc;
	doc = NULL;
cleanup:
	if (have_ev)
		yaml_event_delete(&ev);
	if (parser_ok)
		yaml_parser_delete(&parser);
	free(b.pending);
	us_conf_free(doc);
	return ret;
}

struct us_conf_doc *us_conf_load_file(const char *path, char *err, size_t errlen)
{
	struct us_conf_doc *doc = NULL;
	char *buf = NULL;
	size_t len = 0;
	int fd;

	if (err && errlen)
		err[0] = '\0';
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (err && errlen)
			snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
		goto cleanup;
	}
	/* One byte over the limit tells "too large" from "exactly the limit"
	 * without trusting st_size (pipes, /proc files). */
	buf = malloc(US_CONF_MAX_BYTES + 1);
	if (!buf) {
		if (err && errlen)
			snprintf(err, errlen, "%s: out of memory", path);
		goto cleanup;
	}
	while (len < US_CONF_MAX_BYTES + 1) {
		ssize_t r = read(fd, buf + len, US_CONF_MAX_BYTES + 1 - len);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			if (err && errlen)
				snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
			goto cleanup;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	if (len > US_CONF_MAX_BYTES) {
		if (err && errlen)
			snprintf(err, errlen, "%s: file is too large (more than %d bytes)", path,
				 US_CONF_MAX_BYTES);
		goto cleanup;
	}
	doc = us_conf_load_buffer(path, buf, len, err, errlen);
cleanup:
	if (fd >= 0)
		close(fd);
	free(buf);
	return doc;
}

void us_conf_free(struct us_conf_doc *doc)
{
	struct chunk *c, *next;

	if (!doc)
		return;
	for (c = doc->chunks; c; c = next) {
		next = c->next;
		free(c);
	}
	free(doc);
}

/* ---- inspection ------------------------------------------------------ */

const char *us_conf_name(const struct us_conf_doc *doc)
{
	return doc->name;
}

const struct us_conf_node *us_conf_root(const struct us_conf_doc *doc)
{
	return doc->root;
}

enum us_conf_type us_conf_type(const struct us_conf_node *node)
{
	return node->type;
}

unsigned int us_conf_line(const struct us_conf_node *node)
{
	return node->line;
}

unsigned int us_conf_col(const struct us_conf_node *node)
{
	return node->col;
}

const char *us_conf_scalar(const struct us_conf_node *node, size_t *len)
{
	if (!node || node->type != US_CONF_SCALAR)
		return NULL;
	if (len)
		*len = node->len;
	return node->str;
}

bool us_conf_is_null(const struct us_conf_node *node)
{
	return node && node->null;
}

size_t us_conf_len(const struct us_conf_node *node)
{
	return node && node->type != US_CONF_SCALAR ? node->n : 0;
}

const struct us_conf_node *us_conf_seq_item(const struct us_conf_node *seq, size_t i)
{
	if (!seq || seq->type != US_CONF_SEQ || i >= seq->n)
		return NULL;
	return seq->items[i];
}

const char *us_conf_map_key(const struct us_conf_node *map, size_t i)
{
	if (!map || map->type != US_CONF_MAP || i >= map->n)
		return NULL;
	return map->items[2 * i]->str;
}

const struct us_conf_node *us_conf_map_value(const struct us_conf_node *map, size_t i)
{
	if (!map || map->type != US_CONF_MAP || i >= map->n)
		return NULL;
	return map->items[2 * i + 1];
}

const struct us_conf_node *us_conf_get(const struct us_conf_node *map, const char *key)
{
	size_t lo = 0, hi, klen;

	if (!map || map->type != US_CONF_MAP || !key || !map->sorted)
		return NULL;
	klen = strlen(key);
	hi = map->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct us_conf_node *k = map->sorted[mid];
		int c = memcmp(k->str, key, k->len < klen ? k->len : klen);

		if (!c && k->len == klen)
			return map->items[2 * k->index + 1];
		if (c < 0 || (!c && k->len < klen))
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* ---- conversions ----------------------------------------------------- */

static const char *doc_name(const struct us_conf_doc *doc)
{
	return doc ? doc->name : "<config>";
}

static int expected(const struct us_conf_doc *doc, const struct us_conf_node *n, const char *what,
		    char *err, size_t errlen)
{
	char q[QUOTE_MAX + 8];

	return us_conf_errorf(doc, n, err, errlen, "expected %s, got %s", what,
			      describe(n, q, sizeof(q)));
}

/* Common front of the as_* conversions: a present, non-null scalar. */
static int need_scalar(const struct us_conf_doc *doc, const struct us_conf_node *n,
		       const char *what, char *err, size_t errlen)
{
	if (!n)
		return fail_line(doc_name(doc), NULL, 0, err, errlen, "expected %s, got nothing", what);
	if (n->type != US_CONF_SCALAR || n->null)
		return expected(doc, n, what, err, errlen);
	return 0;
}

/* Common front of the get_* getters: 1 absent or null, 0 found, -1 when
 * map itself is not a mapping. */
static int lookup(const struct us_conf_doc *doc, const struct us_conf_node *map, const char *key,
		  const struct us_conf_node **out, char *err, size_t errlen)
{
	const struct us_conf_node *v;

	/* "spool:" with nothing under it is an absent section, not a type
	 * error, whether the caller got it from us_conf_get_map or us_conf_get. */
	if (!map || map->null)
		return 1;
	if (map->type != US_CONF_MAP)
		return expected(doc, map, "a mapping", err, errlen);
	v = us_conf_get(map, key);
	if (!v || v->null)
		return 1;
	*out = v;
	return 0;
}

int us_conf_as_string(const struct us_conf_doc *doc, const struct us_conf_node *node,
		      char *buf, size_t buflen, char *err, size_t errlen)
{
	if (need_scalar(doc, node, "a string", err, errlen))
		return -1;
	if (memchr(node->str, '\0', node->len))
		return us_conf_errorf(doc, node, err, errlen, "must not contain a NUL character");
	if (node->len >= buflen)
		return us_conf_errorf(doc, node, err, errlen, "is too long (%zu bytes; at most %zu)",
				      node->len, buflen ? buflen - 1 : 0);
	memcpy(buf, node->str, node->len + 1);
	return 0;
}

static bool word_is(const struct us_conf_node *n, const char *w)
{
	size_t len = strlen(w);

	return n->len == len && !strncasecmp(n->str, w, len);
}

int us_conf_as_bool(const struct us_conf_doc *doc, const struct us_conf_node *node, bool *out,
		    char *err, size_t errlen)
{
	static const char *const yes[] = { "true", "yes", "on" };
	static const char *const no[] = { "false", "no", "off" };

	if (need_scalar(doc, node, "true or false", err, errlen))
		return -1;
	for (size_t i = 0; i < 3; i++) {
		if (word_is(node, yes[i])) {
			*out = true;
			return 0;
		}
		if (word_is(node, no[i])) {
			*out = false;
			return 0;
		}
	}
	return expected(doc, node, "true or false", err, errlen);
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* 0 ok, -1 not an integer, 1 outside int64. Hand-written because strtoll
 * also accepts leading blanks, hex with base 0, and stops at NULs. */
static int parse_int64(const char *s, size_t len, int64_t *out)
{
	uint64_t mag = 0, limit = INT64_MAX;
	bool neg = false, over = false;
	size_t i = 0;

	if (i < len && (s[i] == '+' || s[i] == '-')) {
		neg = s[i] == '-';
		i++;
	}
	if (neg)
		limit = (uint64_t)INT64_MAX + 1;
	if (i == len)
		return -1;
	for (; i < len; i++) {
		unsigned int d;

		if (!is_digit(s[i]))
			return -1;
		d = (unsigned int)(s[i] - '0');
		if (mag > (limit - d) / 10)
			over = true;
		else
			mag = mag * 10 + d;
	}
	if (over)
		return 1;
	*out = neg ? (mag ? -(int64_t)(mag - 1) - 1 : 0) : (int64_t)mag;
	return 0;
}

int us_conf_as_int64(const struct us_conf_doc *doc, const struct us_conf_node *node,
		     int64_t min, int64_t max, int64_t *out, char *err, size_t errlen)
{
	char q[QUOTE_MAX + 8];
	int64_t v = 0;
	int rc;

	if (need_scalar(doc, node, "an integer", err, errlen))
		return -1;
	rc = parse_int64(node->str, node->len, &v);
	if (rc < 0)
		return expected(doc, node, "an integer", err, errlen);
	if (rc > 0 || v < min || v > max)
		return us_conf_errorf(doc, node, err, errlen,
				      "must be between %lld and %lld, got %s", (long long)min,
				      (long long)max, quote(node, q, sizeof(q)));
	*out = v;
	return 0;
}

struct unit {
	const char *name;
	uint64_t mult;
};

static const struct unit size_units[] = {
	{ "B", 1 },
	{ "KiB", 1ULL << 10 },
	{ "MiB", 1ULL << 20 },
	{ "GiB", 1ULL << 30 },
	{ "TiB", 1ULL << 40 },
	{ "KB", 1000ULL },
	{ "kB", 1000ULL },
	{ "MB", 1000000ULL },
	{ "GB", 1000000000ULL },
	{ "TB", 1000000000000ULL },
	{ NULL, 0 },
};

#define NS_PER_S 1000000000ULL

static const struct unit duration_units[] = {
	{ "ns", 1 },
	{ "us", 1000ULL },
	{ "ms", 1000000ULL },
	{ "s", NS_PER_S },
	{ "m", 60 * NS_PER_S },
	{ "h", 3600 * NS_PER_S },
	{ "d", 86400 * NS_PER_S },
	{ NULL, 0 },
};

enum scaled {
	SCALED_OK,
	SCALED_SYNTAX,
	SCALED_UNIT,
	SCALED_RANGE,
	SCALED_FRACTION,
};

#define MAX_FRACTION_DIGITS 9

/* "<digits>[.<digits>][ ]<unit>" times the unit, exactly: 128-bit
 * arithmetic (digits < 2^64, units < 2^47) cannot overflow before the final
 * range check, and a fraction must come out as a whole number. */
static enum scaled parse_scaled(const char *s, size_t len, const struct unit *units,
				uint64_t plain, uint64_t *out)
{
	unsigned __int128 ip = 0, frac = 0, scale = 1, v, f;
	uint64_t mult = 0;
	bool big = false;
	size_t i = 0;

	if (i == len || !is_digit(s[i]))
		return SCALED_SYNTAX;
	for (; i < len && is_digit(s[i]); i++) {
		if (ip > UINT64_MAX)
			big = true;
		else
			ip = ip * 10 + (unsigned int)(s[i] - '0');
	}
	if (i < len && s[i] == '.') {
		i++;
		if (i == len || !is_digit(s[i]))
			return SCALED_SYNTAX;
		for (; i < len && is_digit(s[i]); i++) {
			if (scale == 1000000000ULL)
				return SCALED_SYNTAX;
			frac = frac * 10 + (unsigned int)(s[i] - '0');
			scale *= 10;
		}
	}
	while (i < len && s[i] == ' ')
		i++;
	if (i == len) {
		mult = plain;
	} else {
		for (const struct unit *u = units; u->name; u++) {
			if (strlen(u->name) == len - i && !memcmp(u->name, s + i, len - i)) {
				mult = u->mult;
				break;
			}
		}
		if (!mult) {
			for (size_t j = i; j < len; j++)
				if (!((s[j] >= 'a' && s[j] <= 'z') || (s[j] >= 'A' && s[j] <= 'Z')))
					return SCALED_SYNTAX;
			return SCALED_UNIT;
		}
	}
	if (big || ip > UINT64_MAX)
		return SCALED_RANGE;
	v = ip * mult;
	f = frac * mult;
	if (f % scale)
		return SCALED_FRACTION;
	v += f / scale;
	if (v > UINT64_MAX)
		return SCALED_RANGE;
	*out = (uint64_t)v;
	return SCALED_OK;
}

static int scaled_error(const struct us_conf_doc *doc, const struct us_conf_node *node,
			enum scaled rc, const char *kind, const char *example, const char *units,
			const char *whole, char *err, size_t errlen)
{
	char q[QUOTE_MAX + 8];

	quote(node, q, sizeof(q));
	switch (rc) {
	case SCALED_UNIT:
		return us_conf_errorf(doc, node, err, errlen, "unknown %s unit in %s (use %s)",
				      kind, q, units);
	case SCALED_RANGE:
		return us_conf_errorf(doc, node, err, errlen, "%s is too large, got %s", kind, q);
	case SCALED_FRACTION:
		return us_conf_errorf(doc, node, err, errlen, "is not a whole number of %s, got %s",
				      whole, q);
	default:
		return us_conf_errorf(doc, node, err, errlen, "expected a %s such as %s, got %s",
				      kind, example, q);
	}
}

int us_conf_as_size(const struct us_conf_doc *doc, const struct us_conf_node *node,
		    uint64_t *out, char *err, size_t errlen)
{
	enum scaled rc;
	uint64_t v = 0;

	if (need_scalar(doc, node, "a size such as 256MiB", err, errlen))
		return -1;
	rc = parse_scaled(node->str, node->len, size_units, 1, &v);
	if (rc != SCALED_OK)
		return scaled_error(doc, node, rc, "size", "256MiB",
				    "B, KiB, MiB, GiB, TiB, KB, MB, GB or TB", "bytes", err, errlen);
	*out = v;
	return 0;
}

int us_conf_as_duration(const struct us_conf_doc *doc, const struct us_conf_node *node,
			uint64_t *out_ns, char *err, size_t errlen)
{
	enum scaled rc;
	uint64_t v = 0;

	if (need_scalar(doc, node, "a duration such as 5s or 250ms", err, errlen))
		return -1;
	rc = parse_scaled(node->str, node->len, duration_units, NS_PER_S, &v);
	if (rc != SCALED_OK)
		return scaled_error(doc, node, rc, "duration", "5s or 250ms",
				    "ns, us, ms, s, m, h or d", "nanoseconds", err, errlen);
	*out_ns = v;
	return 0;
}

/* ---- getters --------------------------------------------------------- */

int us_conf_get_string(const struct us_conf_doc *doc, const struct us_conf_node *map,
		       const char *key, char *buf, size_t buflen, char *err, size_t errlen)
{
	const struct us_conf_node *v = NULL;
	int rc = lookup(doc, map, key, &v, err, errlen);

	return rc ? rc : us_conf_as_string(doc, v, buf, buflen, err, errlen);
}

int us_conf_get_bool(const struct us_conf_doc *doc, const struct us_conf_node *map,
		     const char *key, bool *out, char *err, size_t errlen)
{
	const struct us_conf_node *v = NULL;
	int rc = lookup(doc, map, key, &v, err, errlen);

	return rc ? rc : us_conf_as_bool(doc, v, out, err, errlen);
}

int us_conf_get_int64(const struct us_conf_doc *doc, const struct us_conf_node *map,
		      const char *key, int64_t min, int64_t max, int64_t *out,
		      char *err, size_t errlen)
{
	const struct us_conf_node *v = NULL;
	int rc = lookup(doc, map, key, &v, err, errlen);

	return rc ? rc : us_conf_as_int64(doc, v, min, max, out, err, errlen);
}

int us_conf_get_size(const struct us_conf_doc *doc, const struct us_conf_node *map,
		     const char *key, uint64_t *out, char *err, size_t errlen)
{
	const struct us_conf_node *v = NULL;
	int rc = lookup(doc, map, key, &v, err, errlen);

	return rc ? rc : us_conf_as_size(doc, v, out, err, errlen);
}

int us_conf_get_duration(const struct us_conf_doc *doc, const struct us_conf_node *map,
			 const char *key, uint64_t *out_ns, char *err, size_t errlen)
{
	const struct us_conf_node *v = NULL;
	int rc = lookup(doc, map, key, &v, err, errlen);

	return rc ? rc : us_conf_as_duration(doc, v, out_ns, err, errlen);
}

static int get_container(const struct us_conf_doc *doc, const struct us_conf_node *map,
			 const char *key, enum us_conf_type type, const struct us_conf_node **out,
			 char *err, size_t errlen)
{
	const struct us_conf_node *v = NULL;
	int rc = lookup(doc, map, key, &v, err, errlen);

	if (rc)
		return rc;
	if (v->type != type)
		return expected(doc, v, type == US_CONF_MAP ? "a mapping" : "a list", err, errlen);
	*out = v;
	return 0;
}

int us_conf_get_map(const struct us_conf_doc *doc, const struct us_conf_node *map,
		    const char *key, const struct us_conf_node **out, char *err, size_t errlen)
{
	return get_container(doc, map, key, US_CONF_MAP, out, err, errlen);
}

int us_conf_get_seq(const struct us_conf_doc *doc, const struct us_conf_node *map,
		    const char *key, const struct us_conf_node **out, char *err, size_t errlen)
{
	return get_container(doc, map, key, US_CONF_SEQ, out, err, errlen);
}

/* ---- key checks ------------------------------------------------------ */

/* Optimal string alignment distance (a swap of neighbours counts once, the
 * commonest typo), or 3 when it is clearly more than 2. */
static unsigned int edit_distance(const char *a, size_t la, const char *b, size_t lb)
{
	unsigned short rows[3][US_CONF_MAX_KEY + 1];
	unsigned short *pp = rows[0], *p = rows[1], *c = rows[2], *t;

	if (la > US_CONF_MAX_KEY || lb > US_CONF_MAX_KEY || (la > lb ? la - lb : lb - la) > 2)
		return 3;
	for (size_t j = 0; j <= lb; j++)
		p[j] = (unsigned short)j;
	for (size_t i = 1; i <= la; i++) {
		c[0] = (unsigned short)i;
		for (size_t j = 1; j <= lb; j++) {
			unsigned int cost = a[i - 1] != b[j - 1];
			unsigned int best = p[j - 1] + cost;

			if (p[j] + 1u < best)
				best = p[j] + 1u;
			if (c[j - 1] + 1u < best)
				best = c[j - 1] + 1u;
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
			    pp[j - 2] + 1u < best)
				best = pp[j - 2] + 1u;
			c[j] = (unsigned short)best;
		}
		t = pp;
		pp = p;
		p = c;
		c = t;
	}
	return p[lb] > 3 ? 3 : p[lb];
}

int us_conf_check_keys(const struct us_conf_doc *doc, const struct us_conf_node *map,
		       const char *const allowed[], char *err, size_t errlen)
{
	if (!map || map->null)
		return 0;
	if (map->type != US_CONF_MAP)
		return expected(doc, map, "a mapping", err, errlen);
	for (size_t i = 0; i < map->n; i++) {
		const struct us_conf_node *k = map->items[2 * i];
		const char *suggest = NULL;
		unsigned int best = 3;
		bool known = false;

		for (size_t j = 0; allowed && allowed[j] && !known; j++)
			known = strlen(allowed[j]) == k->len && !memcmp(allowed[j], k->str, k->len);
		if (known)
			continue;
		for (size_t j = 0; allowed && allowed[j]; j++) {
			unsigned int d = edit_distance(k->str, k->len, allowed[j], strlen(allowed[j]));

			/* d < len keeps "ab" from suggesting any other two-letter key. */
			if (d < best && d < k->len) {
				best = d;
				suggest = allowed[j];
			}
		}
		if (suggest)
			return us_conf_errorf(doc, k, err, errlen, "unknown key; did you mean '%s'?",
					      suggest);
		return us_conf_errorf(doc, k, err, errlen, "unknown key");
	}
	return 0;
}

int us_conf_missing(const struct us_conf_doc *doc, const struct us_conf_node *map,
		    const char *key, char *err, size_t errlen)
{
	struct us_conf_node k = { .type = US_CONF_SCALAR, .str = key, .len = strlen(key) };
	struct us_conf_node at = { .type = US_CONF_SCALAR, .parent = map, .key = &k };
	const struct us_conf_node *v = us_conf_get(map, key);

	if (!map || map->type != US_CONF_MAP)
		return fail_line(doc_name(doc), NULL, 0, err, errlen,
				 "%s: required key is missing", key);
	if (v)
		return us_conf_errorf(doc, v, err, errlen, "a value is required");
	at.line = map->line;
	return us_conf_errorf(doc, &at, err, errlen, "required key is missing");
}
