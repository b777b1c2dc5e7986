/* The instance catalog the recommendation chooses from: one row per instance
 * type with its architecture, capacity and hourly price, read from a CSV file
 * with the header
 *   type,family,arch,vcpu,memory_gib,network_gbps_peak,baseline_cpu_pct,usd_per_hour
 * (columns found by name, so their order is free and extra columns are
 * ignored; family, network_gbps_peak and baseline_cpu_pct may be absent).
 * A burstable type (baseline_cpu_pct < 100) sustains vcpu × baseline / 100
 * cores, which is what the recommendation counts as its CPU capacity.
 * Every error names "FILE:LINE: FIELD: what is wrong". */
#ifndef US_CATALOG_H
#define US_CATALOG_H

#include <stddef.h>

#define US_CATALOG_MAX_BYTES (4u << 20)
#define US_CATALOG_PATH_MAX 4096
/* Where an installed understudy keeps its default catalog. */
#define US_CATALOG_INSTALLED "/usr/share/understudy/catalog/aws-ec2.csv"

struct us_itype {
	char type[32];             /* "m6i.xlarge" */
	char family[32];           /* "m6i" (default: type up to the first '.') */
	char arch[16];             /* "x86_64" or "arm64" */
	double vcpu;
	double memory_gib;
	double network_gbps;       /* peak; 0 = unknown (never limits) */
	double baseline_cpu_pct;   /* (0, 100]; 100 unless burstable */
	double usd_per_hour;
	unsigned line;             /* in its file, for messages */
};

struct us_catalog {
	struct us_itype *types;
	size_t n;
};

/* Parses a catalog held in memory; name is the file name for messages.
 * Returns 0, or -1 with "NAME:LINE: FIELD: reason" in err (c left empty). */
int us_catalog_parse(const char *data, size_t len, const char *name, struct us_catalog *c,
		     char *err, size_t errlen);
int us_catalog_load(const char *path, struct us_catalog *c, char *err, size_t errlen);
void us_catalog_free(struct us_catalog *c);

const struct us_itype *us_catalog_find(const struct us_catalog *c, const char *type);

/* Sustained CPU capacity in cores: vcpu × baseline_cpu_pct / 100. */
double us_itype_cpu_cores(const struct us_itype *t);

/* The default catalog's path: $UNDERSTUDY_CATALOG when set, else
 * US_CATALOG_INSTALLED when readable, else the first readable of
 * BINDIR/../share/understudy/catalog/aws-ec2.csv (a /usr/local install) and
 * the source tree's data/catalog/aws-ec2.csv seen from build/bin or
 * build/asan/bin (development). Falls back to US_CATALOG_INSTALLED, so the
 * caller's "cannot open" names the installed path. */
const char *us_catalog_default_path(char *buf, size_t len);

#endif
