/* NAB (Numenta Anomaly Benchmark) scoring, re-implemented from the method of
 * numenta/NAB nab/sweeper.py and nab/runner.py (normalize): per series, each
 * labelled window scores the best (earliest) detection inside it through a
 * scaled sigmoid of its position, or -fn when it has none; each detection
 * outside a window scores fp times a sigmoid of its distance past the last
 * window (-fp when no window came before); rows of the probationary period
 * (the first min(floor(15% n), 750)) are ignored. The corpus score is
 * normalized as 100 * (raw - null) / (perfect - null), null being a detector
 * that never fires and perfect one detection at the start of every window. */
#ifndef US_NAB_H
#define US_NAB_H

#include <stddef.h>
#include <stdint.h>

struct nab_profile {
	double tp, fp, fn;      /* standard: 1.0, 0.11, 1.0 */
};

extern const struct nab_profile nab_standard;

struct nab_window {
	int64_t start_us, end_us;       /* inclusive */
};

struct nab_result {
	double raw;             /* the detector's score */
	double null_score;      /* a detector that never fires */
	double perfect;         /* one detection at each window's start */
	int windows, tp, fn, fp;
};

/* NAB's scaled sigmoid of a relative position (-1 = window start, 0 = end,
 * > 0 past the end): 2 / (1 + e^(5x)) - 1, and -1 from 3 on. */
double nab_scaled_sigmoid(double x);
size_t nab_probation(size_t n);

/* Scores one series: ts[n] strictly increasing, detect[i] != 0 where the
 * detector fired. A window starts at the first timestamp >= its start and
 * ends at the last <= its end (NAB's windows fall on data timestamps). */
void nab_score_series(const int64_t *ts, const unsigned char *detect, size_t n,
		      const struct nab_window *w, size_t nw, const struct nab_profile *p,
		      struct nab_result *r);
/* 100 * (raw - null) / (perfect - null) of a sum of results. */
double nab_normalized(const struct nab_result *r);
void nab_add(struct nab_result *sum, const struct nab_result *r);

/* windows.json: { "dir/file.csv": [["start", "end"], ...], ... } */
struct nab_labels {
	struct nab_label_file {
		char *name;     /* the key's base name, e.g. "file.csv" */
		struct nab_window *w;
		size_t nw;
	} *files;
	size_t nfiles;
};

/* Parses a windows.json file; -1 with err ("PATH: reason") on failure. */
int nab_labels_read(const char *path, struct nab_labels *l, char *err, size_t errlen);
/* The windows of the file whose base name matches path's, or NULL. */
const struct nab_label_file *nab_labels_find(const struct nab_labels *l, const char *path);
void nab_labels_free(struct nab_labels *l);

#endif
