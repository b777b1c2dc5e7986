/* us-nab-score: NAB scoring (standard profile) of anomaly detections.
 *
 *   us-nab-score WINDOWS.json RESULT.csv...
 *       scores result files as written by `understudy anomalies -o csv`
 *       (header with `timestamp` and `anomaly` columns), matched to the
 *       windows by file name;
 *   us-nab-score --detect WINDOWS.json DATA.csv...
 *       runs the detector itself on NAB data files and also reports its cost
 *       in microseconds per point.
 * Prints one line per series and the normalized corpus score; with
 * --min SCORE exits 1 when the corpus score is below SCORE. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "anomaly.h"
#include "nab.h"
#include "tscsv.h"

struct series {
	int64_t *ts;
	unsigned char *det;
	size_t n;
};

static double now_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Runs the detector over a data file; adds its time to *secs. */
static int detect_file(const char *path, struct series *out, double *secs)
{
	struct us_anomaly_params p;
	struct us_anomaly_result r;
	struct us_ts_series s;
	struct us_anomaly *a;
	char err[512];
	double t0;

	if (us_tscsv_read(path, US_TSCSV_DUP_OK, &s, err, sizeof(err)) < 0) {
		fprintf(stderr, "us-nab-score: %s\n", err);
		return -1;
	}
	us_anomaly_defaults(&p);
	p.probation = us_anomaly_probation(s.n);
	if (s.n > 1)
		p.season = us_anomaly_season((double)(s.p[s.n - 1].t_us - s.p[0].t_us) / 1e6 /
					     (double)(s.n - 1));
	out->n = s.n;
	out->ts = malloc(s.n * sizeof(*out->ts));
	out->det = calloc(s.n, 1);
	if (!out->ts || !out->det || !(a = us_anomaly_new(&p))) {
		us_tscsv_free(&s);
		return -1;
	}
	t0 = now_s();
	for (size_t i = 0; i < s.n; i++) {
		us_anomaly_step(a, s.p[i].v, &r);
		out->det[i] = (unsigned char)r.anomaly;
	}
	*secs += now_s() - t0;
	for (size_t i = 0; i < s.n; i++)
		out->ts[i] = s.p[i].t_us;
	us_anomaly_free(a);
	us_tscsv_free(&s);
	return 0;
}

/* Index of column name in a CSV header line, or -1. */
static int column(const char *hdr, const char *name)
{
	size_t nl = strlen(name);
	int col = 0;

	for (const char *c = hdr; *c; col++) {
		size_t l = strcspn(c, ",\r\n");

		if (l == nl && strncmp(c, name, l) == 0)
			return col;
		if (c[l] != ',')
			break;
		c += l + 1;
	}
	return -1;
}

/* The field col of line (no quoting in result files), or NULL. */
static const char *field(char *line, int col, size_t *len)
{
	char *c = line;

	for (int i = 0; i < col; i++) {
		if (!(c = strchr(c, ',')))
			return NULL;
		c++;
	}
	*len = strcspn(c, ",\r\n");
	return c;
}

static int read_results(const char *path, struct series *out)
{
	FILE *f = fopen(path, "r");
	char line[4096];
	size_t cap = 0, lineno = 1;
	int tc, ac, rc = -1;

	memset(out, 0, sizeof(*out));
	if (!f || !fgets(line, sizeof(line), f) || (tc = column(line, "timestamp")) < 0 ||
	    (ac = column(line, "anomaly")) < 0) {
		fprintf(stderr, "us-nab-score: %s: no header with timestamp and anomaly\n", path);
		goto cleanup;
	}
	while (fgets(line, sizeof(line), f)) {
		const char *t, *an;
		size_t tl, al;
		int dt;

		lineno++;
		if (out->n == cap) {
			cap = cap ? 2 * cap : 4096;
			out->ts = realloc(out->ts, cap * sizeof(*out->ts));
			out->det = realloc(out->det, cap);
			if (!out->ts || !out->det)
				goto cleanup;
		}
		if (!(t = field(line, tc, &tl)) || !(an = field(line, ac, &al)) ||
		    us_tscsv_parse_time(t, tl, &out->ts[out->n], &dt) < 0 || al != 1 ||
		    (an[0] != '0' && an[0] != '1')) {
			fprintf(stderr, "us-nab-score: %s:%zu: bad row\n", path, lineno);
			goto cleanup;
		}
		out->det[out->n++] = an[0] == '1';
	}
	rc = 0;
cleanup:
	if (f)
		fclose(f);
	return rc;
}

int main(int argc, char **argv)
{
	struct nab_result total = { 0 };
	struct nab_labels labels;
	double min = -1e9, secs = 0;
	size_t points = 0;
	int detect = 0, i = 1;
	char err[512];

	for (; i < argc && argv[i][0] == '-'; i++) {
		if (strcmp(argv[i], "--detect") == 0)
			detect = 1;
		else if (strcmp(argv[i], "--min") == 0 && i + 1 < argc)
			min = atof(argv[++i]);
		else
			break;
	}
	if (argc - i < 2) {
		fprintf(stderr, "usage: us-nab-score [--detect] [--min SCORE] WINDOWS.json FILE.csv...\n");
		return 2;
	}
	if (nab_labels_read(argv[i], &labels, err, sizeof(err)) < 0) {
		fprintf(stderr, "us-nab-score: %s\n", err);
		return 2;
	}
	printf("%-36s %6s %8s %4s %4s %4s %8s\n", "series", "points", "raw", "tp", "fn", "fp",
	       "score");
	for (i++; i < argc; i++) {
		const struct nab_label_file *lf = nab_labels_find(&labels, argv[i]);
		struct series s;
		struct nab_result r;

		if (!lf) {
			fprintf(stderr, "us-nab-score: %s: not in the windows file\n", argv[i]);
			return 2;
		}
		if ((detect ? detect_file(argv[i], &s, &secs) : read_results(argv[i], &s)) < 0)
			return 2;
		nab_score_series(s.ts, s.det, s.n, lf->w, lf->nw, &nab_standard, &r);
		nab_add(&total, &r);
		points += s.n;
		printf("%-36s %6zu %8.3f %4d %4d %4d %8.1f\n", lf->name, s.n, r.raw, r.tp, r.fn,
		       r.fp, nab_normalized(&r));
		free(s.ts);
		free(s.det);
	}
	printf("%-36s %6zu %8.3f %4d %4d %4d %8.1f\n", "total (normalized, standard profile)",
	       points, total.raw, total.tp, total.fn, total.fp, nab_normalized(&total));
	if (detect)
		printf("detector cost: %.3f us per point (%zu points, %.1f ms)\n",
		       secs * 1e6 / (double)points, points, secs * 1e3);
	nab_labels_free(&labels);
	return nab_normalized(&total) < min ? 1 : 0;
}
