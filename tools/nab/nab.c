/* NAB scoring (standard profile by default): see nab.h. Written from the
 * description and code of numenta/NAB (MIT); only the method is reused. */
#include "nab.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tscsv.h"

const struct nab_profile nab_standard = { 1.0, 0.11, 1.0 };

double nab_scaled_sigmoid(double x)
{
	if (x >= 3.0)
		return -1.0;
	return 2.0 / (1.0 + exp(5.0 * x)) - 1.0;
}

size_t nab_probation(size_t n)
{
	size_t p = (size_t)floor(0.15 * (double)n);

	return p < 750 ? p : 750;
}

/* Index range [*l, *r] of window w in ts, or -1 when no timestamp is in it. */
static int window_span(const int64_t *ts, size_t n, const struct nab_window *w, size_t *l,
		       size_t *r)
{
	size_t i = 0;

	while (i < n && ts[i] < w->start_us)
		i++;
	if (i == n || ts[i] > w->end_us)
		return -1;
	*l = i;
	while (i + 1 < n && ts[i + 1] <= w->end_us)
		i++;
	*r = i;
	return 0;
}

void nab_score_series(const int64_t *ts, const unsigned char *detect, size_t n,
		      const struct nab_window *w, size_t nw, const struct nab_profile *p,
		      struct nab_result *r)
{
	const double max_tp = nab_scaled_sigmoid(-1.0);
	size_t prob = nab_probation(n), k = 0, l = 0, rt = 0, cur_rt = 0, prev_right = 0;
	double width = 0, prev_width = 0, fp_sum = 0, tp_sum = 0, best = 0;
	int in_window = 0, have_prev = 0, counted = 0, have_next;

	memset(r, 0, sizeof(*r));
	/* the next window with data in it (windows are in time order, disjoint);
	 * one without data could not be labelled by NAB either */
	while (k < nw && window_span(ts, n, &w[k], &l, &rt) < 0)
		k++;
	have_next = k < nw;
	for (size_t i = 0; i < n; i++) {
		double sweep;

		if (!in_window && have_next && i == l) {
			in_window = 1;
			cur_rt = rt;
			width = (double)(rt - l + 1);
			counted = rt >= prob;   /* a window wholly probationary is not scored */
			best = -p->fn;
			for (k++; k < nw && window_span(ts, n, &w[k], &l, &rt) < 0; k++)
				;
			have_next = k < nw;
		}
		if (in_window) {
			sweep = nab_scaled_sigmoid(-(double)(cur_rt - i + 1) / width) * p->tp / max_tp;
		} else {
			double pos = 3.0;

			if (have_prev && prev_width > 1)
				pos = fabs((double)i - (double)prev_right) / (prev_width - 1);
			sweep = nab_scaled_sigmoid(pos) * p->fp;
		}
		if (i >= prob && detect[i]) {
			if (in_window) {
				best = sweep > best ? sweep : best;
			} else {
				fp_sum += sweep;
				r->fp++;
			}
		}
		if (in_window && i == cur_rt) {
			if (counted) {
				r->windows++;
				tp_sum += best;
				if (best > -p->fn)
					r->tp++;
				else
					r->fn++;
			}
			in_window = 0;
			have_prev = 1;
			prev_right = i;
			prev_width = width;
		}
	}
	r->raw = tp_sum + fp_sum;
	r->null_score = -p->fn * r->windows;
	r->perfect = p->tp * r->windows;
}

void nab_add(struct nab_result *sum, const struct nab_result *r)
{
	sum->raw += r->raw;
	sum->null_score += r->null_score;
	sum->perfect += r->perfect;
	sum->windows += r->windows;
	sum->tp += r->tp;
	sum->fn += r->fn;
	sum->fp += r->fp;
}

double nab_normalized(const struct nab_result *r)
{
	if (r->perfect == r->null_score)
		return 100.0;   /* no window: nothing to find, nothing missed */
	return 100.0 * (r->raw - r->null_score) / (r->perfect - r->null_score);
}

/* ---- windows.json --------------------------------------------------------- */

struct json_in {
	const char *s, *end;
};

static void skip_ws(struct json_in *in)
{
	while (in->s < in->end && strchr(" \t\r\n", *in->s))
		in->s++;
}

static int expect(struct json_in *in, char c)
{
	skip_ws(in);
	if (in->s == in->end || *in->s != c)
		return -1;
	in->s++;
	return 0;
}

/* Peeks the next significant character (0 at the end). */
static char peek(struct json_in *in)
{
	skip_ws(in);
	return in->s < in->end ? *in->s : 0;
}

/* A JSON string into buf (escapes kept literally but for \" and \\). */
static int json_string(struct json_in *in, char *buf, size_t len)
{
	size_t o = 0;

	if (expect(in, '"') < 0)
		return -1;
	while (in->s < in->end && *in->s != '"') {
		if (*in->s == '\\' && in->s + 1 < in->end)
			in->s++;
		if (o + 1 >= len)
			return -1;
		buf[o++] = *in->s++;
	}
	buf[o] = '\0';
	return expect(in, '"');
}

static int parse_window(struct json_in *in, struct nab_window *w)
{
	char a[64], b[64];
	int dt;

	if (expect(in, '[') < 0 || json_string(in, a, sizeof(a)) < 0 || expect(in, ',') < 0 ||
	    json_string(in, b, sizeof(b)) < 0 || expect(in, ']') < 0)
		return -1;
	if (us_tscsv_parse_time(a, strlen(a), &w->start_us, &dt) < 0 ||
	    us_tscsv_parse_time(b, strlen(b), &w->end_us, &dt) < 0 || w->end_us < w->start_us)
		return -1;
	return 0;
}

static int parse_file_entry(struct json_in *in, struct nab_label_file *f)
{
	char key[1024];
	const char *base;
	size_t cap = 0;

	if (json_string(in, key, sizeof(key)) < 0 || expect(in, ':') < 0 || expect(in, '[') < 0)
		return -1;
	base = strrchr(key, '/') ? strrchr(key, '/') + 1 : key;
	if (!(f->name = strdup(base)))
		return -1;
	if (peek(in) == ']')
		return expect(in, ']');
	do {
		if (f->nw == cap) {
			struct nab_window *nw = realloc(f->w, (cap = cap ? 2 * cap : 4) * sizeof(*nw));

			if (!nw)
				return -1;
			f->w = nw;
		}
		if (parse_window(in, &f->w[f->nw++]) < 0)
			return -1;
	} while (peek(in) == ',' && expect(in, ',') == 0);
	return expect(in, ']');
}

static int parse_labels(struct json_in *in, struct nab_labels *l)
{
	size_t cap = 0;

	if (expect(in, '{') < 0)
		return -1;
	if (peek(in) == '}')
		return expect(in, '}');
	do {
		if (l->nfiles == cap) {
			struct nab_label_file *nf = realloc(l->files, (cap = cap ? 2 * cap : 8) * sizeof(*nf));

			if (!nf)
				return -1;
			l->files = nf;
		}
		memset(&l->files[l->nfiles], 0, sizeof(l->files[0]));
		if (parse_file_entry(in, &l->files[l->nfiles++]) < 0)
			return -1;
	} while (peek(in) == ',' && expect(in, ',') == 0);
	return expect(in, '}');
}

int nab_labels_read(const char *path, struct nab_labels *l, char *err, size_t errlen)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long len;
	int rc = -1;

	memset(l, 0, sizeof(*l));
	if (!f) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (fseek(f, 0, SEEK_END) < 0 || (len = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) < 0 ||
	    !(buf = malloc((size_t)len + 1)) || fread(buf, 1, (size_t)len, f) != (size_t)len) {
		snprintf(err, errlen, "%s: cannot read", path);
		goto cleanup;
	}
	struct json_in in = { buf, buf + len };

	if (parse_labels(&in, l) < 0) {
		snprintf(err, errlen, "%s: not a NAB windows file near byte %ld", path,
			 (long)(in.s - buf));
		nab_labels_free(l);
		goto cleanup;
	}
	rc = 0;
cleanup:
	free(buf);
	fclose(f);
	return rc;
}

const struct nab_label_file *nab_labels_find(const struct nab_labels *l, const char *path)
{
	const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;

	for (size_t i = 0; i < l->nfiles; i++)
		if (strcmp(l->files[i].name, base) == 0)
			return &l->files[i];
	return NULL;
}

void nab_labels_free(struct nab_labels *l)
{
	for (size_t i = 0; i < l->nfiles; i++) {
		free(l->files[i].name);
		free(l->files[i].w);
	}
	free(l->files);
	memset(l, 0, sizeof(*l));
}
