/* Online anomaly detector: see anomaly.h and docs/anomalies.md.
 *
 * Per point, in O(window):
 *  1. baseline: median m and scale s of the last `window` values (kept as a
 *     ring and a sorted copy); s is 1.4826 MAD, floored by a fraction of the
 *     window's 1..99% spread so that a mostly-constant series (MAD 0) does not
 *     turn every blip into infinity sigma;
 *  2. deviations: z1 = (v - m) / s for the point, zk = (mean of the last K
 *     points - m) / s for a level shift;
 *  3. likelihood: each |z| is compressed (log1p) into a feature whose mean and
 *     deviation over the last `window` points are tracked; the average of the
 *     last few features is compared with that distribution and the Gaussian
 *     tail gives a likelihood in [0,1];
 *  4. seasonal expert (when the points per day are known): the spike
 *     likelihood is also computed for the distance from v to the range of
 *     yesterday's events within an hour of this time of day (points that
 *     were themselves 3 sigma off their baseline), and the smaller of the two
 *     is kept: a daily job is explained, noise yesterday explains nothing.
 * The score is the larger of the spike and the level-shift likelihoods.
 * An alert needs score >= threshold, the probation over, `suppress` points
 * since the last alert (NAB counts only the first detection in a window and
 * charges every other one as a false positive), and
 *  5. routine memory: a deviation (of the point, or of the level) beyond
 *     every deviation of the same sign that the series showed in the last
 *     week without alerting, kept as hourly extremes in units of the series.
 *     The Gaussian tail of step 3 fits the bulk of a calm week and calls its
 *     rare bursts impossible; what the series already did unremarked this
 *     week is no news however unlikely the bulk makes it. Alerted events
 *     are kept out, so a second incident of the same size alerts again, and
 *     so is what the seasonal expert explained (routine at its hour only).
 * LEVEL_K points after any alert, a level that held restarts the baseline
 * (and the routine memory, whose deviations were from the old level). */
#include "anomaly.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LEVEL_K 6       /* points averaged for a level shift (30 min at 5 min) */
#define SHORT_AVG 3     /* shift features averaged before the likelihood */
#define MIN_BASE 16     /* values before any deviation is measured */
#define MIN_FEAT 64     /* features before any likelihood */
#define EVENT_SPAN (LEVEL_K + SHORT_AVG)        /* points one event moves */
#define ROUTINE_BLOCKS 168      /* blocks of the routine memory: hours of a week */

struct feat {
	double *ring;           /* last `window` features */
	size_t head, n;
	double sum, sumsq;
	double recent[SHORT_AVG];
	size_t nrecent, navg;   /* navg: how many recent features are averaged */
	unsigned long since_resum;
};

/* The largest and smallest deviations of a stretch of points from the
 * baseline median of their time, in the series' units: unlike sigmas these
 * stay comparable when the scale jumps (a mostly-zero series has its scale
 * at the floor until its first burst). */
struct extremes {
	double d1_hi, d1_lo;    /* of the point */
	double dk_hi, dk_lo;    /* of the level */
};

/* What the series did in the last week (ROUTINE_BLOCKS blocks of points)
 * without alerting: a deviation within it is routine, however unlikely the
 * recent distribution makes it look. */
struct routine {
	struct extremes *blocks;        /* ring of cap complete blocks, oldest at head */
	size_t cap, head, nblocks;
	size_t block_len, in_block;     /* points per block; in the current one */
	struct extremes cur;
	struct {
		double d1, dk;
	} pending[EVENT_SPAN];          /* the last points, not yet in a block */
	size_t npending;                /* points pushed in all (index of the next) */
	size_t skip;                    /* next points of an alerted event: kept out */
};

struct us_anomaly {
	struct us_anomaly_params p;
	double *vals;           /* ring of the last `window` values, oldest at head */
	double *sorted;         /* the same values, ascending */
	size_t head, n;
	double level[LEVEL_K];
	size_t nlevel;
	double level_sum;
	struct feat spike, shift;
	double *hist;           /* ring of the last season + tol values, oldest at hhead */
	double *hz;             /* their deviations from the baseline of the time */
	size_t hhead, hn, tol;
	struct routine routine;
	uint64_t seen;
	uint64_t last_alert;    /* point index + 1 of the last alert, 0 for none */
	uint64_t check_at;      /* when to see whether a level shift held, 0 for never */
};

void us_anomaly_defaults(struct us_anomaly_params *p)
{
	p->window = 1024;
	p->probation = 750;
	p->suppress = 288;
	p->threshold = 0.9999;
	p->season = 0;
}

size_t us_anomaly_season(double step_s)
{
	double n = step_s > 0 ? 86400.0 / step_s : 0;

	/* why: with fewer than 24 points a day the one-hour tolerance of the
	 * seasonal expert is no point at all */
	return n >= 24 && n <= (double)(1u << 20) ? (size_t)(n + 0.5) : 0;
}

size_t us_anomaly_probation(size_t n)
{
	size_t p = (size_t)(0.15 * (double)n);

	return p < 750 ? p : 750;
}

static void routine_reset(struct routine *rt);

struct us_anomaly *us_anomaly_new(const struct us_anomaly_params *p)
{
	struct us_anomaly *a;
	size_t memory;

	if (p->window < MIN_BASE || p->window > (1u << 20) || !(p->threshold > 0) ||
	    !(p->threshold <= 1) || (p->season && (p->season < 24 || p->season > (1u << 20))))
		return NULL;
	if (!(a = calloc(1, sizeof(*a))))
		return NULL;
	a->p = *p;
	/* why: a spike is one point, averaging it with its neighbours would hide
	 * it; the level-shift deviation is already a mean, its short average
	 * only keeps one noisy mean from alerting (as Numenta's likelihood) */
	a->spike.navg = 1;
	a->shift.navg = SHORT_AVG;
	a->vals = malloc(p->window * sizeof(double));
	a->sorted = malloc(p->window * sizeof(double));
	a->spike.ring = malloc(p->window * sizeof(double));
	a->shift.ring = malloc(p->window * sizeof(double));
	a->tol = p->season / 24;
	/* why: a week is the longest cycle of most operational series (a
	 * weekly job, weekend traffic); without a known season, the window */
	memory = p->season ? 7 * p->season : p->window;
	a->routine.block_len = memory / ROUTINE_BLOCKS ? memory / ROUTINE_BLOCKS : 1;
	a->routine.cap = (memory + a->routine.block_len - 1) / a->routine.block_len;
	a->routine.blocks = malloc(a->routine.cap * sizeof(struct extremes));
	routine_reset(&a->routine);
	if (p->season) {
		a->hist = malloc((p->season + a->tol) * sizeof(double));
		a->hz = malloc((p->season + a->tol) * sizeof(double));
	}
	if (!a->vals || !a->sorted || !a->spike.ring || !a->shift.ring || !a->routine.blocks ||
	    (p->season && (!a->hist || !a->hz))) {
		us_anomaly_free(a);
		return NULL;
	}
	return a;
}

void us_anomaly_free(struct us_anomaly *a)
{
	if (!a)
		return;
	free(a->vals);
	free(a->sorted);
	free(a->spike.ring);
	free(a->shift.ring);
	free(a->hist);
	free(a->hz);
	free(a->routine.blocks);
	free(a);
}

/* ---- baseline ------------------------------------------------------------- */

/* First index in sorted[0..n) whose value is >= v. */
static size_t lower_bound(const double *sorted, size_t n, double v)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (sorted[mid] < v)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static void baseline_push(struct us_anomaly *a, double v)
{
	size_t w = a->p.window, i;

	if (a->n == w) {        /* drop the oldest from the sorted copy */
		double old = a->vals[a->head];

		i = lower_bound(a->sorted, a->n, old);
		memmove(a->sorted + i, a->sorted + i + 1, (a->n - i - 1) * sizeof(double));
		a->n--;
		a->vals[a->head] = v;
		a->head = (a->head + 1) % w;
	} else {
		a->vals[(a->head + a->n) % w] = v;
	}
	i = lower_bound(a->sorted, a->n, v);
	memmove(a->sorted + i + 1, a->sorted + i, (a->n - i) * sizeof(double));
	a->sorted[i] = v;
	a->n++;
}

/* Median absolute deviation from m: the k-th smallest |x - m| found by
 * walking outwards from m in the sorted values, O(n). */
static double mad(const double *s, size_t n, double m)
{
	size_t k = n / 2, r = lower_bound(s, n, m);
	size_t l = r;           /* candidates: s[l-1] going down, s[r] going up */
	double d = 0;

	for (size_t taken = 0; taken <= k; taken++) {
		double dl = l > 0 ? m - s[l - 1] : INFINITY;
		double dr = r < n ? s[r] - m : INFINITY;

		if (dl <= dr)
			d = dl, l--;
		else
			d = dr, r++;
	}
	return d;
}

static void baseline(const struct us_anomaly *a, double *m, double *s)
{
	const double *x = a->sorted;
	size_t n = a->n;
	double spread = x[(size_t)(0.99 * (double)(n - 1))] - x[(size_t)(0.01 * (double)(n - 1))];
	double floor_s = 0.02 * spread;

	*m = n % 2 ? x[n / 2] : 0.5 * (x[n / 2 - 1] + x[n / 2]);
	*s = 1.4826 * mad(x, n, *m);
	/* why: a series at one value most of the time has MAD 0; the spread of
	 * the window (and last of all a tiny absolute floor) keeps z finite */
	if (*s < floor_s)
		*s = floor_s;
	if (*s < 1e-9 * (fabs(*m) + 1))
		*s = 1e-9 * (fabs(*m) + 1);
}

/* ---- likelihood ----------------------------------------------------------- */

/* The likelihood that a feature average avg is not drawn from the long-term
 * distribution so far, in [0,1]; 0 while it has too few features. */
static double feat_like(const struct feat *ft, double avg)
{
	double mean, var, sd, like;

	if (ft->n < MIN_FEAT)
		return 0;
	mean = ft->sum / (double)ft->n;
	var = ft->sumsq / (double)ft->n - mean * mean;
	sd = sqrt(var > 0 ? var : 0);
	if (sd < 1e-3)
		sd = 1e-3;      /* features are log1p(|z|): 1e-3 is noise */
	like = 1.0 - 0.5 * erfc((avg - mean) / sd / M_SQRT2);
	return like < 0 ? 0 : like;
}

/* Adds feature f; returns the likelihood that the recent features are not
 * drawn from the long-term distribution (before f was added), in [0,1]. */
static double feat_push(struct feat *ft, size_t window, double f)
{
	double like, avg = 0;
	size_t k;

	ft->recent[ft->nrecent++ % ft->navg] = f;
	k = ft->nrecent < ft->navg ? ft->nrecent : ft->navg;
	for (size_t i = 0; i < k; i++)
		avg += ft->recent[i];
	like = feat_like(ft, avg / (double)k);
	if (ft->n == window) {
		double old = ft->ring[ft->head];

		ft->sum -= old;
		ft->sumsq -= old * old;
		ft->ring[ft->head] = f;
		ft->head = (ft->head + 1) % window;
	} else {
		ft->ring[(ft->head + ft->n) % window] = f;
		ft->n++;
	}
	ft->sum += f;
	ft->sumsq += f * f;
	/* why: add/subtract drifts; re-add from scratch once per window */
	if (++ft->since_resum >= window) {
		ft->sum = ft->sumsq = 0;
		for (size_t i = 0; i < ft->n; i++) {
			ft->sum += ft->ring[i];
			ft->sumsq += ft->ring[i] * ft->ring[i];
		}
		ft->since_resum = 0;
	}
	return like;
}

/* ---- seasonal expert ------------------------------------------------------ */

static void season_push(struct us_anomaly *a, double v, double z)
{
	size_t cap = a->p.season + a->tol, i;

	if (!a->p.season)
		return;
	if (a->hn == cap) {
		i = a->hhead;
		a->hhead = (a->hhead + 1) % cap;
	} else {
		i = (a->hhead + a->hn++) % cap;
	}
	a->hist[i] = v;
	a->hz[i] = z;
}

/* The distance from v to the range of the events one season ago, tol points
 * either side (0 inside it): the values that were themselves 3 sigma off
 * their baseline. -1 when there was none or less than a season is known:
 * ordinary noise yesterday explains nothing today. */
static double season_dist(const struct us_anomaly *a, double v)
{
	size_t cap = a->p.season + a->tol;
	double lo = INFINITY, hi = -INFINITY;

	if (!a->p.season || a->hn < cap)
		return -1;
	for (size_t j = 0; j <= 2 * a->tol; j++) {
		double x = a->hist[(a->hhead + j) % cap];

		if (fabs(a->hz[(a->hhead + j) % cap]) < 3)
			continue;
		lo = x < lo ? x : lo;
		hi = x > hi ? x : hi;
	}
	if (lo > hi)
		return -1;
	return v > hi ? v - hi : v < lo ? lo - v : 0;
}

/* ---- routine: the worst deviations of the last week ------------------------ */

static void extremes_reset(struct extremes *e)
{
	e->d1_hi = e->dk_hi = -INFINITY;
	e->d1_lo = e->dk_lo = INFINITY;
}

static void extremes_add(struct extremes *e, double d1, double dk)
{
	e->d1_hi = d1 > e->d1_hi ? d1 : e->d1_hi;
	e->d1_lo = d1 < e->d1_lo ? d1 : e->d1_lo;
	e->dk_hi = dk > e->dk_hi ? dk : e->dk_hi;
	e->dk_lo = dk < e->dk_lo ? dk : e->dk_lo;
}

/* Forgets every deviation, which a new baseline makes incomparable; the
 * rest of an alerted event is still kept out. */
static void routine_reset(struct routine *rt)
{
	rt->nblocks = rt->head = rt->in_block = rt->npending = 0;
	extremes_reset(&rt->cur);
}

/* Points reach the blocks EVENT_SPAN late: the last EVENT_SPAN points may
 * belong to the event being judged, which must not explain itself. */
static void routine_push(struct routine *rt, double d1, double dk)
{
	size_t i = rt->npending % EVENT_SPAN;

	if (rt->skip) {         /* the rest of an alerted event */
		rt->skip--;
		d1 = dk = 0;
	}
	if (rt->npending >= EVENT_SPAN) {
		extremes_add(&rt->cur, rt->pending[i].d1, rt->pending[i].dk);
		if (++rt->in_block == rt->block_len) {
			rt->blocks[(rt->head + rt->nblocks) % rt->cap] = rt->cur;
			if (rt->nblocks == rt->cap)
				rt->head = (rt->head + 1) % rt->cap;
			else
				rt->nblocks++;
			rt->in_block = 0;
			extremes_reset(&rt->cur);
		}
	}
	rt->pending[i].d1 = d1;
	rt->pending[i].dk = dk;
	rt->npending++;
}

/* An alerted event is no routine: the next incident of the same size must
 * alert again. Its points so far are still pending; so are the next ones. */
static void routine_forget_event(struct routine *rt)
{
	memset(rt->pending, 0, sizeof(rt->pending));
	rt->skip = EVENT_SPAN;
}

/* Whether deviation d goes beyond every deviation of the same kind and sign
 * in the memory: the point's (spike) or the level's (shift). */
static int routine_exceeded(const struct routine *rt, int spike, double d)
{
	struct extremes all = rt->cur;

	for (size_t j = 0; j < rt->nblocks; j++) {
		const struct extremes *b = &rt->blocks[(rt->head + j) % rt->cap];

		extremes_add(&all, b->d1_hi, b->dk_hi);
		extremes_add(&all, b->d1_lo, b->dk_lo);
	}
	if (spike)
		return d > 0 ? d > all.d1_hi : d < all.d1_lo;
	return d > 0 ? d > all.dk_hi : d < all.dk_lo;
}

/* ---- the step ------------------------------------------------------------- */

/* After a level shift the old values describe a level that is gone: start
 * the baseline again from the last LEVEL_K values and forget the deviations
 * measured against the old level, which would otherwise widen the feature
 * distribution and hide the next anomaly at the new level. */
static int cmp_double(const void *x, const void *y)
{
	double a = *(const double *)x, b = *(const double *)y;

	return (a > b) - (a < b);
}

/* LEVEL_K points after an alert (a spike may open a new level), the shift
 * is sustained when even the median of the last LEVEL_K values is off the
 * baseline by 3 sigma: a burst of a few points moves the mean of the level
 * window but not its median, and must not reset the baseline. */
static int sustained(const struct us_anomaly *a, double m, double s)
{
	double v[LEVEL_K];

	if (a->nlevel < LEVEL_K)
		return 0;
	memcpy(v, a->level, sizeof(v));
	qsort(v, LEVEL_K, sizeof(double), cmp_double);
	return fabs(0.5 * (v[LEVEL_K / 2 - 1] + v[LEVEL_K / 2]) - m) > 3 * s;
}

static void rebase(struct us_anomaly *a)
{
	size_t k = a->nlevel < LEVEL_K ? a->nlevel : LEVEL_K;

	a->n = a->head = 0;
	for (size_t i = a->nlevel - k; i < a->nlevel; i++)
		baseline_push(a, a->level[i % LEVEL_K]);
	a->spike.n = a->spike.head = a->spike.nrecent = a->spike.since_resum = 0;
	a->shift.n = a->shift.head = a->shift.nrecent = a->shift.since_resum = 0;
	a->spike.sum = a->spike.sumsq = a->shift.sum = a->shift.sumsq = 0;
	routine_reset(&a->routine);
}

void us_anomaly_step(struct us_anomaly *a, double v, struct us_anomaly_result *r)
{
	double m = v, s = 1, z1 = 0, zk = 0, l1 = 0, lk = 0;
	double ds, ls;
	int seasonal = 0;       /* an alert but for the same time yesterday */
	size_t nk;

	memset(r, 0, sizeof(*r));
	a->level_sum += v - (a->nlevel >= LEVEL_K ? a->level[a->nlevel % LEVEL_K] : 0);
	a->level[a->nlevel++ % LEVEL_K] = v;
	nk = a->nlevel < LEVEL_K ? a->nlevel : LEVEL_K;
	if (a->n >= MIN_BASE) {
		baseline(a, &m, &s);
		z1 = (v - m) / s;
		zk = (a->level_sum / (double)nk - m) / s;
		/* why: a point is a surprise only when neither the baseline nor the
		 * same time yesterday explains it (a daily job is not an anomaly);
		 * the seasonal deviation is judged by the same distribution */
		ds = season_dist(a, v);
		ls = ds >= 0 ? feat_like(&a->spike, log1p(ds / s)) : 1;
		l1 = feat_push(&a->spike, a->p.window, log1p(fabs(z1)));
		seasonal = l1 >= a->p.threshold && ls < a->p.threshold;
		l1 = ls < l1 ? ls : l1;
		lk = feat_push(&a->shift, a->p.window, log1p(fabs(zk)));
		/* why: a level the present point is not on is no shift, only the
		 * echo of a spike in the mean, and the spike was judged already */
		if (z1 * zk <= 0)
			lk = 0;
	}
	baseline_push(a, v);
	season_push(a, v, z1);
	a->seen++;

	r->baseline = m;
	if (l1 >= lk) {
		r->score = l1;
		r->sigma = z1;
		r->kind = z1 >= 0 ? US_ANOM_SPIKE_UP : US_ANOM_SPIKE_DOWN;
	} else {
		r->score = lk;
		r->sigma = zk;
		r->kind = zk >= 0 ? US_ANOM_SHIFT_UP : US_ANOM_SHIFT_DOWN;
	}
	if (a->n <= MIN_BASE)
		r->kind = US_ANOM_NONE;
	if (r->score >= a->p.threshold && a->seen > a->p.probation &&
	    (a->last_alert == 0 || a->seen - a->last_alert > a->p.suppress) &&
	    routine_exceeded(&a->routine, l1 >= lk, r->sigma * s)) {
		r->anomaly = 1;
		routine_forget_event(&a->routine);
		a->last_alert = a->seen;
		a->check_at = a->seen + LEVEL_K;
	} else if (a->check_at == a->seen) {
		a->check_at = 0;
		if (sustained(a, m, s))
			rebase(a);
	}
	/* why: what yesterday explains at this time of day is routine at this
	 * time of day only: the seasonal expert's, not the memory's */
	routine_push(&a->routine, seasonal ? 0 : z1 * s, seasonal ? 0 : zk * s);
}

void us_anomaly_reason(const struct us_anomaly_result *r, char *buf, size_t len)
{
	const char *dir = r->sigma >= 0 ? "above" : "below";

	switch (r->kind) {
	case US_ANOM_SPIKE_UP:
	case US_ANOM_SPIKE_DOWN:
		snprintf(buf, len, "spike: value %.1f sigma %s the baseline %.6g", fabs(r->sigma), dir,
			 r->baseline);
		break;
	case US_ANOM_SHIFT_UP:
	case US_ANOM_SHIFT_DOWN:
		snprintf(buf, len, "level shift: recent mean %.1f sigma %s the baseline %.6g",
			 fabs(r->sigma), dir, r->baseline);
		break;
	default:
		snprintf(buf, len, "learning");
	}
}
