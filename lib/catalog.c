/* Instance catalog: CSV parsing with per-field validation, lookup, and the
 * default file's location. The catalog decides what the recommendation may
 * propose, so a silently misread row (a price of 0, a vcpu of "four") would
 * turn into a wrong recommendation; every field is therefore checked and the
 * first bad one is reported with its file and line instead. */
#include "catalog.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "csvline.h"

enum col { C_TYPE, C_FAMILY, C_ARCH, C_VCPU, C_MEM, C_NET, C_BASE, C_PRICE, C_COUNT };

static const struct {
	const char *name;
	int required;
} cols[C_COUNT] = {
	[C_TYPE] = { "type", 1 }, [C_FAMILY] = { "family", 0 }, [C_ARCH] = { "arch", 1 },
	[C_VCPU] = { "vcpu", 1 }, [C_MEM] = { "memory_gib", 1 },
	[C_NET] = { "network_gbps_peak", 0 }, [C_BASE] = { "baseline_cpu_pct", 0 },
	[C_PRICE] = { "usd_per_hour", 1 },
};

struct parse {
	const char *name;
	struct us_csv r;
	int pos[C_COUNT];          /* column index of each known column, or -1 */
	int nfields;               /* of the header */
	char *err;
	size_t errlen;
};

static int fail(struct parse *p, const char *field, const char *fmt, const char *arg)
{
	int n = snprintf(p->err, p->errlen, "%s:%u: %s: ", p->name, p->r.line, field);

	if (n >= 0 && (size_t)n < p->errlen)
		snprintf(p->err + n, p->errlen - (size_t)n, fmt, arg);
	return -1;
}

static int header(struct parse *p, int n)
{
	for (int c = 0; c < C_COUNT; c++)
		p->pos[c] = -1;
	for (int i = 0; i < n; i++)
		for (int c = 0; c < C_COUNT; c++)
			if (strcmp(p->r.field[i], cols[c].name) == 0) {
				if (p->pos[c] >= 0)
					return fail(p, "header", "column '%s' appears twice",
						    cols[c].name);
				p->pos[c] = i;
			}
	for (int c = 0; c < C_COUNT; c++)
		if (cols[c].required && p->pos[c] < 0)
			return fail(p, "header", "missing column '%s' (expected type,family,arch,"
				    "vcpu,memory_gib,network_gbps_peak,baseline_cpu_pct,usd_per_hour)",
				    cols[c].name);
	p->nfields = n;
	return 0;
}

static const char *field(const struct parse *p, enum col c, const char *dflt)
{
	return p->pos[c] < 0 ? dflt : p->r.field[p->pos[c]];
}

/* A number in (lo, hi] (lo excluded unless lo_ok). */
static int number(struct parse *p, enum col c, const char *dflt, double lo, int lo_ok,
		  double hi, double *out)
{
	const char *s = field(p, c, dflt);

	if (us_csv_number(s, out) < 0)
		return fail(p, cols[c].name, "expected a number, got '%.40s'", s);
	if (*out < lo || (*out == lo && !lo_ok) || *out > hi) {
		char range[64];

		snprintf(range, sizeof(range), "%s %g and at most %g", lo_ok ? "at least" :
			 "more than", lo, hi);
		return fail(p, cols[c].name, "must be %s", range);
	}
	return 0;
}

static int text(struct parse *p, enum col c, const char *dflt, char *out, size_t len)
{
	const char *s = field(p, c, dflt);

	if (!*s)
		return fail(p, cols[c].name, "%sempty", "");
	if (strlen(s) >= len)
		return fail(p, cols[c].name, "longer than the limit: '%.40s'", s);
	memcpy(out, s, strlen(s) + 1);
	return 0;
}

static int row(struct parse *p, int n, const struct us_catalog *c, struct us_itype *t)
{
	const struct us_itype *dup;
	char nfields[16];

	if (n != p->nfields) {
		snprintf(nfields, sizeof(nfields), "%d", p->nfields);
		return fail(p, "row", "expected %s comma-separated fields like the header", nfields);
	}
	memset(t, 0, sizeof(*t));
	t->line = p->r.line;
	if (text(p, C_TYPE, "", t->type, sizeof(t->type)) < 0)
		return -1;
	if ((dup = us_catalog_find(c, t->type)) != NULL)
		return fail(p, "type", "'%s' is listed twice", t->type);
	if (p->pos[C_FAMILY] >= 0) {
		if (text(p, C_FAMILY, "", t->family, sizeof(t->family)) < 0)
			return -1;
	} else {
		snprintf(t->family, sizeof(t->family), "%.*s", (int)strcspn(t->type, "."), t->type);
	}
	if (text(p, C_ARCH, "", t->arch, sizeof(t->arch)) < 0)
		return -1;
	if (strcmp(t->arch, "x86_64") != 0 && strcmp(t->arch, "arm64") != 0)
		return fail(p, "arch", "expected x86_64 or arm64, got '%.40s'", t->arch);
	if (number(p, C_VCPU, "", 0, 0, 1e5, &t->vcpu) < 0 ||
	    number(p, C_MEM, "", 0, 0, 1e6, &t->memory_gib) < 0 ||
	    number(p, C_NET, "0", 0, 1, 1e5, &t->network_gbps) < 0 ||
	    number(p, C_BASE, "100", 0, 0, 100, &t->baseline_cpu_pct) < 0 ||
	    number(p, C_PRICE, "", 0, 0, 1e6, &t->usd_per_hour) < 0)
		return -1;
	return 0;
}

static int push(struct us_catalog *c, const struct us_itype *t)
{
	struct us_itype *grown = realloc(c->types, (c->n + 1) * sizeof(*grown));

	if (!grown)
		return -1;
	grown[c->n++] = *t;
	c->types = grown;
	return 0;
}

int us_catalog_parse(const char *data, size_t len, const char *name, struct us_catalog *c,
		     char *err, size_t errlen)
{
	struct parse *p = calloc(1, sizeof(*p));
	struct us_itype t;
	int n, rc = -1;

	c->types = NULL;
	c->n = 0;
	if (!p) {
		snprintf(err, errlen, "%s: out of memory", name);
		return -1;
	}
	p->name = name;
	p->err = err;
	p->errlen = errlen;
	us_csv_init(&p->r, data, len);
	n = us_csv_next(&p->r);
	if (n == 0) {
		p->r.line = p->r.line ? p->r.line : 1;
		fail(p, "header", "%sempty file (expected a header line type,family,arch,...)", "");
		goto cleanup;
	}
	if (n < 0) {
		fail(p, "header", "%sline too long or too many fields", "");
		goto cleanup;
	}
	if (header(p, n) < 0)
		goto cleanup;
	while ((n = us_csv_next(&p->r)) != 0) {
		if (n < 0) {
			fail(p, "row", "%sline too long or too many fields", "");
			goto cleanup;
		}
		if (row(p, n, c, &t) < 0)
			goto cleanup;
		if (push(c, &t) < 0) {
			fail(p, "row", "%sout of memory", "");
			goto cleanup;
		}
	}
	if (c->n == 0) {
		fail(p, "row", "%sno instance types after the header", "");
		goto cleanup;
	}
	rc = 0;
cleanup:
	if (rc < 0)
		us_catalog_free(c);
	free(p);
	return rc;
}

int us_catalog_load(const char *path, struct us_catalog *c, char *err, size_t errlen)
{
	char *data;
	size_t len;
	int rc;

	c->types = NULL;
	c->n = 0;
	if (us_csv_slurp(path, US_CATALOG_MAX_BYTES, &data, &len, err, errlen) < 0)
		return -1;
	rc = us_catalog_parse(data, len, path, c, err, errlen);
	free(data);
	return rc;
}

void us_catalog_free(struct us_catalog *c)
{
	free(c->types);
	c->types = NULL;
	c->n = 0;
}

const struct us_itype *us_catalog_find(const struct us_catalog *c, const char *type)
{
	for (size_t i = 0; i < c->n; i++)
		if (strcmp(c->types[i].type, type) == 0)
			return &c->types[i];
	return NULL;
}

double us_itype_cpu_cores(const struct us_itype *t)
{
	return t->vcpu * t->baseline_cpu_pct / 100.0;
}

const char *us_catalog_default_path(char *buf, size_t len)
{
	static const char *const rel[] = {
		"../share/understudy/catalog/aws-ec2.csv",   /* PREFIX/bin -> PREFIX/share */
		"../../data/catalog/aws-ec2.csv",            /* build/bin */
		"../../../data/catalog/aws-ec2.csv",         /* build/asan/bin */
	};
	const char *env = getenv("UNDERSTUDY_CATALOG");
	char exe[US_CATALOG_PATH_MAX];
	ssize_t n;
	char *slash;

	if (env && *env) {
		snprintf(buf, len, "%s", env);
		return buf;
	}
	snprintf(buf, len, "%s", US_CATALOG_INSTALLED);
	if (access(US_CATALOG_INSTALLED, R_OK) == 0)
		return buf;
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0)
		return buf;
	exe[n] = '\0';
	slash = strrchr(exe, '/');
	if (!slash)
		return buf;
	slash[1] = '\0';
	for (size_t i = 0; i < sizeof(rel) / sizeof(rel[0]); i++) {
		char cand[US_CATALOG_PATH_MAX + 64];

		snprintf(cand, sizeof(cand), "%s%s", exe, rel[i]);
		if (access(cand, R_OK) == 0) {
			snprintf(buf, len, "%s", cand);
			return buf;
		}
	}
	snprintf(buf, len, "%s", US_CATALOG_INSTALLED);
	return buf;
}
