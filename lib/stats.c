/* Two-sample statistics; see stats.h.
 *
 * Order statistics of pairwise values without materialising them. The
 * differences y_j - x_i (x, y sorted) form a matrix whose rows are sorted,
 * and so do the Walsh averages (d_i + d_j)/2, i <= j. For any threshold t
 * the elements of a row below t are a contiguous run whose end moves
 * monotonically from one row to the next, so "how many values lie in
 * (a, b)" is one O(n + m) two-pointer pass. The k-th value is found by
 * randomised pivoting (a pivot drawn uniformly among the values still in
 * play, as in Monahan's algorithm for the Hodges-Lehmann estimator): each
 * round costs two passes and discards a constant fraction on average, so
 * about log(nm) rounds; once at most n + m candidates remain they are
 * copied out and selected directly. Comparisons use the same floating-point
 * expression everywhere (y - x, (a + b) * 0.5), which is monotone under
 * rounding, so counts stay consistent with the values they describe. */
#include "stats.h"

#include <gsl/gsl_cdf.h>
#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- small helpers -------------------------------------------------------- */

double us_stats_z(double confidence)
{
	if (!(confidence > 0.0))
		return 0.0;
	if (confidence >= 1.0)
		confidence = 1.0 - 1e-12;
	return gsl_cdf_ugaussian_Pinv(0.5 + confidence / 2.0);
}

double us_stats_phi(double z)
{
	return gsl_cdf_ugaussian_P(z);
}

static uint64_t splitmix64(uint64_t *s)
{
	uint64_t z = (*s += 0x9E3779B97F4A7C15ull);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Doubles as unsigned keys that sort in the same order. */
static inline uint64_t dkey(double v)
{
	uint64_t u;

	memcpy(&u, &v, sizeof(u));
	return (u & 0x8000000000000000ull) ? ~u : (u | 0x8000000000000000ull);
}

/* LSD radix sort, 16-bit digits: a million doubles in a few ms where qsort
 * takes ~100 ms. Falls back to qsort for small inputs or without memory. */
void us_stats_sort(double *v, size_t n)
{
	enum { BITS = 16, NB = 1 << BITS };
	double *tmp;
	size_t *cnt;

	if (n < 4096 || !(tmp = malloc(n * sizeof(*tmp)))) {
		qsort(v, n, sizeof(*v), cmp_double);
		return;
	}
	if (!(cnt = malloc(NB * sizeof(*cnt)))) {
		free(tmp);
		qsort(v, n, sizeof(*v), cmp_double);
		return;
	}
	double *src = v, *dst = tmp;

	for (unsigned shift = 0; shift < 64; shift += BITS) {
		size_t sum = 0;

		memset(cnt, 0, NB * sizeof(*cnt));
		for (size_t i = 0; i < n; i++)
			cnt[(dkey(src[i]) >> shift) & (NB - 1)]++;
		if (cnt[(dkey(src[0]) >> shift) & (NB - 1)] == n)
			continue; /* every key shares this digit: the pass would be a copy */
		for (size_t b = 0; b < NB; b++) {
			size_t c = cnt[b];

			cnt[b] = sum;
			sum += c;
		}
		for (size_t i = 0; i < n; i++)
			dst[cnt[(dkey(src[i]) >> shift) & (NB - 1)]++] = src[i];
		double *t = src;
		src = dst;
		dst = t;
	}
	if (src != v)
		memcpy(v, src, n * sizeof(*v));
	free(cnt);
	free(tmp);
}

/* k-th smallest (0-based) of v[0..n), reordering v (Hoare partition). */
static double nth_element(double *v, size_t n, size_t k)
{
	size_t lo = 0, hi = n - 1;

	while (lo < hi) {
		double piv = v[lo + (hi - lo) / 2];
		size_t i = lo, j = hi;

		while (i <= j) {
			while (v[i] < piv)
				i++;
			while (v[j] > piv)
				j--;
			if (i <= j) {
				double t = v[i];

				v[i] = v[j];
				v[j] = t;
				i++;
				if (j == 0)
					break;
				j--;
			}
		}
		if (k <= j)
			hi = j;
		else if (k >= i)
			lo = i;
		else
			return v[k];
	}
	return v[k];
}

/* ---- pairwise order statistics -------------------------------------------- */

enum pkind { P_DIFF, P_WALSH };

struct pmat {
	enum pkind kind;
	const double *x, *y;  /* P_DIFF: y_j - x_i; P_WALSH: x is d */
	size_t n, m;
};

/* What a walk does with the values strictly inside (a, b). */
struct walk {
	double *out;           /* copy them all here, or */
	const uint64_t *picks; /* store those of these ranks (0-based, ascending) */
	size_t npicks, next;
	double *picked;
};

static inline double pval(const struct pmat *p, size_t row, size_t col)
{
	return p->kind == P_DIFF ? p->y[row] - p->x[col] : (p->x[row] + p->x[col]) * 0.5;
}

/* Takes a row's run [from, from + cnt); true when the walk can stop. */
static inline bool walk_take(struct walk *w, uint64_t *c, size_t cnt, const struct pmat *p,
			     size_t row, size_t from)
{
	if (w->out) {
		for (size_t k = 0; k < cnt; k++)
			w->out[*c + k] = pval(p, row, from + k);
	} else {
		while (w->next < w->npicks && w->picks[w->next] < *c + cnt) {
			w->picked[w->next] = pval(p, row, from + (size_t)(w->picks[w->next] - *c));
			w->next++;
		}
		if (w->next == w->npicks)
			return true;
	}
	*c += cnt;
	return false;
}

/* Row j holds y_j - x_i, decreasing in i; the run inside (a, b) is
 * [first i with value < b, first i with value <= a). */
static uint64_t diff_walk(const struct pmat *p, double a, double b, struct walk *w)
{
	size_t ia = 0, ib = 0;
	uint64_t c = 0;

	for (size_t j = 0; j < p->m; j++) {
		double yj = p->y[j];

		while (ia < p->n && yj - p->x[ia] > a)
			ia++;
		while (ib < p->n && !(yj - p->x[ib] < b))
			ib++;
		if (ia <= ib)
			continue;
		if (!w)
			c += ia - ib;
		else if (walk_take(w, &c, ia - ib, p, j, ib))
			return c;
	}
	return c;
}

/* Row i holds (d_i + d_j)/2 for j >= i, increasing in j; the run inside
 * (a, b) is [first j with value > a, first j with value >= b). Both ends
 * only move down as i grows (and never below i). */
static uint64_t walsh_walk(const struct pmat *p, double a, double b, struct walk *w)
{
	const double *d = p->x;
	size_t ea = p->n, fb = p->n;
	uint64_t c = 0;

	for (size_t i = 0; i < p->n; i++) {
		if (ea < i)
			ea = i;
		if (fb < i)
			fb = i;
		while (ea > i && (d[i] + d[ea - 1]) * 0.5 > a)
			ea--;
		while (fb > i && (d[i] + d[fb - 1]) * 0.5 >= b)
			fb--;
		if (fb <= ea)
			continue;
		if (!w)
			c += fb - ea;
		else if (walk_take(w, &c, fb - ea, p, i, ea))
			return c;
	}
	return c;
}

static uint64_t pwalk(const struct pmat *p, double a, double b, struct walk *w)
{
	return p->kind == P_DIFF ? diff_walk(p, a, b, w) : walsh_walk(p, a, b, w);
}

/* How many values are <= t and < t, in one pass. */
static void count2(const struct pmat *p, double t, uint64_t *le, uint64_t *lt)
{
	uint64_t cle = 0, clt = 0;

	if (p->kind == P_DIFF) {
		size_t ie = 0, il = 0;

		for (size_t j = 0; j < p->m; j++) {
			while (ie < p->n && p->y[j] - p->x[ie] > t)
				ie++;
			while (il < p->n && p->y[j] - p->x[il] >= t)
				il++;
			cle += p->n - ie;
			clt += p->n - il;
		}
	} else {
		const double *d = p->x;
		size_t e = p->n, f = p->n;

		for (size_t i = 0; i < p->n; i++) {
			if (e < i)
				e = i;
			if (f < i)
				f = i;
			while (e > i && (d[i] + d[e - 1]) * 0.5 > t)
				e--;
			while (f > i && (d[i] + d[f - 1]) * 0.5 >= t)
				f--;
			cle += e - i;
			clt += f - i;
		}
	}
	*le = cle;
	*lt = clt;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

/* Copies out the values in (a, b) and selects the j-th (0-based); NAN
 * when out of memory. */
static double select_inside(const struct pmat *p, double a, double b, uint64_t inside,
			    uint64_t j)
{
	double *buf = malloc((inside ? inside : 1) * sizeof(*buf)), v;
	struct walk w = { .out = buf };

	if (!buf)
		return NAN;
	pwalk(p, a, b, &w);
	v = nth_element(buf, inside, j);
	free(buf);
	return v;
}

/* The k-th smallest value, 1 <= k <= total, Floyd-Rivest style: each round
 * draws SAMPLE values uniformly from those still in play (one pass), takes
 * two sample quantiles just either side of where the k-th should fall and
 * counts at both (one pass each); the k-th lies between them with high
 * probability, so a round keeps ~5% of the candidates, and a miss still
 * shrinks the range. Invariant: fewer than k values are <= a (le_a of
 * them), at least k are <= b, lt_b are < b. */
static double pair_select(const struct pmat *p, uint64_t total, uint64_t k)
{
	enum { SAMPLE = 4096 };
	uint64_t le_a = 0, lt_b = total, seed = 0x5EEDull ^ k, le, lt;
	uint64_t limit = p->n + p->m < 65536 ? 65536 : p->n + p->m;
	uint64_t *ranks = malloc(SAMPLE * sizeof(*ranks));
	double *vals = malloc(SAMPLE * sizeof(*vals)), a = -INFINITY, b = INFINITY, r = NAN;

	while (ranks && vals) {
		uint64_t inside = lt_b - le_a;
		struct walk w = { .picks = ranks, .npicks = SAMPLE, .picked = vals };
		double f, margin, lo, hi;
		long ilo, ihi;

		if (k > lt_b) {
			r = b; /* fewer than k below b, at least k at or below: b itself */
			break;
		}
		if (inside <= limit) {
			r = select_inside(p, a, b, inside, k - le_a - 1);
			break;
		}
		for (size_t i = 0; i < SAMPLE; i++)
			ranks[i] = splitmix64(&seed) % inside;
		qsort(ranks, SAMPLE, sizeof(*ranks), cmp_u64);
		pwalk(p, a, b, &w);
		qsort(vals, SAMPLE, sizeof(*vals), cmp_double);
		f = (double)(k - le_a) / (double)inside;
		margin = 3.0 * sqrt(SAMPLE * f * (1.0 - f)) + 2.0;
		ilo = (long)floor(f * SAMPLE - margin);
		ihi = (long)ceil(f * SAMPLE + margin);
		lo = ilo >= 0 ? vals[ilo] : a;
		hi = ihi < SAMPLE ? vals[ihi] : b;
		if (lo != a) {
			count2(p, lo, &le, &lt);
			if (le >= k) {
				b = lo;
				lt_b = lt;
				continue;
			}
			a = lo;
			le_a = le;
		}
		if (hi != b && hi > a) {
			count2(p, hi, &le, &lt);
			if (le < k) {
				a = hi;
				le_a = le;
				continue;
			}
			b = hi;
			lt_b = lt;
		}
	}
	free(ranks);
	free(vals);
	return r;
}

/* The smallest value above t (the (k+1)-th once the k-th is known). */
static double min_above(const struct pmat *p, double t)
{
	double best = INFINITY;

	if (p->kind == P_DIFF) {
		size_t ia = 0;

		for (size_t j = 0; j < p->m; j++) {
			while (ia < p->n && p->y[j] - p->x[ia] > t)
				ia++;
			if (ia > 0 && p->y[j] - p->x[ia - 1] < best)
				best = p->y[j] - p->x[ia - 1];
		}
	} else {
		const double *d = p->x;
		size_t ea = p->n;

		for (size_t i = 0; i < p->n; i++) {
			if (ea < i)
				ea = i;
			while (ea > i && (d[i] + d[ea - 1]) * 0.5 > t)
				ea--;
			if (ea < p->n && (d[i] + d[ea]) * 0.5 < best)
				best = (d[i] + d[ea]) * 0.5;
		}
	}
	return best;
}

static double pmedian(const struct pmat *p, uint64_t total)
{
	double lo;

	if (total % 2)
		return pair_select(p, total, total / 2 + 1);
	uint64_t le, lt;

	lo = pair_select(p, total, total / 2);
	count2(p, lo, &le, &lt);
	if (le > total / 2)
		return lo; /* ties: the next value is the same */
	return (lo + min_above(p, lo)) * 0.5;
}

/* Order statistics k and total+1-k around the median, at confidence, for
 * a rank statistic whose null standard deviation is sd. */
static void pinterval(const struct pmat *p, uint64_t total, double sd, double confidence,
		      double *lo, double *hi)
{
	double kf = floor((double)total / 2.0 - us_stats_z(confidence) * sd);
	uint64_t k = kf < 1.0 ? 1 : (uint64_t)kf;

	if (k > (total + 1) / 2)
		k = (total + 1) / 2;
	*lo = pair_select(p, total, k);
	*hi = pair_select(p, total, total + 1 - k);
}

double us_stats_diff_kth(const double *x, size_t n, const double *y, size_t m, uint64_t k)
{
	struct pmat p = { P_DIFF, x, y, n, m };

	return pair_select(&p, (uint64_t)n * m, k);
}

double us_stats_walsh_kth(const double *d, size_t n, uint64_t k)
{
	struct pmat p = { P_WALSH, d, NULL, n, 0 };

	return pair_select(&p, (uint64_t)n * (n + 1) / 2, k);
}

/* ---- rank tests ----------------------------------------------------------- */

static void normal_test(double stat, double mu, double var, struct us_shift *r)
{
	double dev = stat - mu;

	if (!(var > 0.0)) {
		r->z = 0.0; /* everything tied: no evidence either way */
		r->p_value = 1.0;
		return;
	}
	/* continuity correction towards the mean, never across it */
	dev = dev > 0.5 ? dev - 0.5 : dev < -0.5 ? dev + 0.5 : 0.0;
	r->z = dev / sqrt(var);
	r->p_value = erfc(fabs(r->z) / M_SQRT2);
}

/* U statistic of y with midranks, and the tie term sum(t^3 - t). */
static double mwu_u(const double *x, size_t n, const double *y, size_t m, double *ties)
{
	double rank = 0.0, ry = 0.0;
	size_t i = 0, j = 0;

	*ties = 0.0;
	while (i < n || j < m) {
		double v = j >= m || (i < n && x[i] < y[j]) ? x[i] : y[j];
		double cx = 0, cy = 0, t;

		while (i < n && x[i] == v)
			i++, cx++;
		while (j < m && y[j] == v)
			j++, cy++;
		t = cx + cy;
		ry += cy * (rank + (t + 1.0) / 2.0);
		rank += t;
		*ties += t * t * t - t;
	}
	return ry - (double)m * ((double)m + 1.0) / 2.0;
}

struct us_shift us_mwu_hl(const double *x, size_t n, const double *y, size_t m,
			  double confidence)
{
	struct us_shift r = { 0 };
	struct pmat p = { P_DIFF, x, y, n, m };
	double nm = (double)n * (double)m, N = (double)n + (double)m, ties, u;
	uint64_t total = (uint64_t)n * m;

	if (n == 0 || m == 0) {
		r.p_value = 1.0;
		return r;
	}
	u = mwu_u(x, n, y, m, &ties);
	normal_test(u, nm / 2.0,
		    N > 1 ? nm / 12.0 * ((N + 1.0) - ties / (N * (N - 1.0))) : 0.0, &r);
	r.estimate = pmedian(&p, total);
	pinterval(&p, total, sqrt(nm * (N + 1.0) / 12.0), confidence, &r.lo, &r.hi);
	r.valid = true;
	return r;
}

/* Signed-rank statistic T+ over the nonzero differences of sorted d, ranked
 * by |d| (negatives read backwards merge with positives: no second sort). */
static double signed_rank(const double *d, size_t n, size_t *nonzero, double *ties)
{
	size_t neg = 0, pos, zero_end;
	double rank = 0.0, tplus = 0.0;

	while (neg < n && d[neg] < 0)
		neg++;
	zero_end = neg;
	while (zero_end < n && d[zero_end] == 0)
		zero_end++;
	pos = zero_end;
	*nonzero = neg + (n - zero_end);
	*ties = 0.0;
	size_t i = neg; /* next negative is d[i - 1] */

	while (i > 0 || pos < n) {
		double v = pos >= n || (i > 0 && -d[i - 1] < d[pos]) ? -d[i - 1] : d[pos];
		double cn = 0, cp = 0, t;

		while (i > 0 && -d[i - 1] == v)
			i--, cn++;
		while (pos < n && d[pos] == v)
			pos++, cp++;
		t = cn + cp;
		tplus += cp * (rank + (t + 1.0) / 2.0);
		rank += t;
		*ties += t * t * t - t;
	}
	return tplus;
}

struct us_shift us_wilcoxon(double *d, size_t n, double confidence)
{
	struct us_shift r = { 0 };
	struct pmat p = { P_WALSH, d, NULL, n, 0 };
	uint64_t total = (uint64_t)n * (n + 1) / 2;
	double nz, ties, t, fn = (double)n;
	size_t nonzero;

	if (n == 0) {
		r.p_value = 1.0;
		return r;
	}
	us_stats_sort(d, n);
	t = signed_rank(d, n, &nonzero, &ties);
	nz = (double)nonzero;
	normal_test(t, nz * (nz + 1.0) / 4.0,
		    nz * (nz + 1.0) * (2.0 * nz + 1.0) / 24.0 - ties / 48.0, &r);
	r.estimate = pmedian(&p, total);
	pinterval(&p, total, sqrt(fn * (fn + 1.0) * (2.0 * fn + 1.0) / 24.0), confidence, &r.lo,
		  &r.hi);
	r.valid = true;
	return r;
}

/* ---- order-statistic samples and the quantile bootstrap ------------------- */

int us_osample_from_sorted(struct us_osample *s, const double *sorted, size_t n)
{
	memset(s, 0, sizeof(*s));
	s->sorted = sorted;
	s->n = n;
	return 0;
}

int us_osample_from_hist(struct us_osample *s, const struct us_hist *h)
{
	uint64_t sum = 0;

	memset(s, 0, sizeof(*s));
	s->hist = h;
	s->cum = malloc(US_HIST_BUCKETS * sizeof(*s->cum));
	s->mid = malloc(US_HIST_BUCKETS * sizeof(*s->mid));
	if (!s->cum || !s->mid) {
		us_osample_free(s);
		return -1;
	}
	for (unsigned i = 0; i < US_HIST_BUCKETS; i++) {
		if (!h->buckets[i])
			continue;
		sum += h->buckets[i];
		s->cum[s->nb] = sum;
		s->mid[s->nb++] = ((double)us_hist_bucket_lower(i) +
				   (double)us_hist_bucket_upper(i)) / 2.0;
	}
	s->n = (size_t)sum;
	return 0;
}

void us_osample_free(struct us_osample *s)
{
	free(s->cum);
	free(s->mid);
	s->cum = NULL;
	s->mid = NULL;
}

uint64_t us_osample_count(const struct us_osample *s)
{
	return s->n;
}

/* X_(j), 1 <= j <= n. */
static double osample_at(const struct us_osample *s, uint64_t j)
{
	size_t lo = 0, hi;

	if (s->sorted)
		return s->sorted[j - 1];
	hi = s->nb - 1;
	while (lo < hi) { /* first bucket whose cumulative count reaches j */
		size_t mid = lo + (hi - lo) / 2;

		if (s->cum[mid] >= j)
			hi = mid;
		else
			lo = mid + 1;
	}
	return s->mid[lo];
}

static uint64_t quantile_rank(uint64_t n, double p)
{
	double r = ceil(p * (double)n);

	return r < 1.0 ? 1 : r > (double)n ? n : (uint64_t)r;
}

double us_osample_quantile(const struct us_osample *s, double p)
{
	return s->n ? osample_at(s, quantile_rank(s->n, p)) : 0.0;
}

/* One bootstrap replicate of X_(r): the r-th order statistic of n draws
 * with replacement is X_(ceil(n*U_(r))) with U_(r) ~ Beta(r, n - r + 1),
 * exactly, because X_(ceil(nU)) is one such draw and the map is monotone.
 * So a resample of a million values costs one Beta variate. */
static double boot_quantile(const struct us_osample *s, uint64_t r, gsl_rng *rng)
{
	double u = gsl_ran_beta(rng, (double)r, (double)(s->n - r + 1));
	double j = ceil((double)s->n * u);

	return osample_at(s, j < 1.0 ? 1 : j > (double)s->n ? s->n : (uint64_t)j);
}

static double ratio(double num, double den)
{
	if (den > 0.0)
		return num / den;
	return num > 0.0 ? INFINITY : 1.0; /* both 0: equal */
}

struct us_qratio us_quantile_ratio(const struct us_osample *prod, const struct us_osample *shadow,
				   double p, double confidence, unsigned resamples, double limit,
				   uint64_t seed)
{
	struct us_qratio q = { 0 };
	uint64_t rp, rs;
	double qp, *draws = NULL, alpha = 1.0 - confidence;
	gsl_rng *rng = NULL;
	size_t below = 0, ilo, ihi;

	if (!prod->n || !shadow->n)
		return q;
	qp = us_osample_quantile(prod, p);
	if (!(qp > 0.0))
		return q;
	if (resamples < 1000)
		resamples = 1000;
	rng = gsl_rng_alloc(gsl_rng_mt19937);
	draws = malloc(resamples * sizeof(*draws));
	if (!rng || !draws)
		goto cleanup;
	gsl_rng_set(rng, (unsigned long)seed);
	rp = quantile_rank(prod->n, p);
	rs = quantile_rank(shadow->n, p);
	for (unsigned b = 0; b < resamples; b++) {
		double bp = boot_quantile(prod, rp, rng);

		draws[b] = ratio(boot_quantile(shadow, rs, rng), bp);
		below += draws[b] <= limit;
	}
	us_stats_sort(draws, resamples);
	ilo = (size_t)floor(alpha / 2.0 * resamples);
	ihi = (size_t)ceil((1.0 - alpha / 2.0) * resamples);
	q.estimate = us_osample_quantile(shadow, p) / qp;
	q.lo = draws[ilo < resamples ? ilo : resamples - 1];
	q.hi = draws[ihi >= 1 ? (ihi <= resamples ? ihi - 1 : resamples - 1) : 0];
	q.share_below_limit = (double)below / resamples;
	q.valid = true;
cleanup:
	free(draws);
	if (rng)
		gsl_rng_free(rng);
	return q;
}

/* ---- proportions ---------------------------------------------------------- */

size_t us_quantile_low_rank(size_t n, double q, double confidence)
{
	size_t r = (size_t)ceil(q * (double)n);

	while (r > 1 && gsl_cdf_binomial_P((unsigned)(r - 1), q, (unsigned)n) > 1.0 - confidence)
		r--;
	return r ? r : 1;
}

double us_binom_p_at_least(uint64_t k, uint64_t n, double p)
{
	if (k == 0)
		return 1.0;
	if (k > n)
		return 0.0;
	/* why: Q(k - 1) = P(X > k - 1) = P(X >= k) */
	return gsl_cdf_binomial_Q((unsigned)(k - 1), p, (unsigned)n);
}

void us_wilson(uint64_t k, uint64_t n, double confidence, double *lo, double *hi)
{
	double z = us_stats_z(confidence), fn = (double)n, p, den, centre, half;

	if (n == 0) {
		*lo = 0.0;
		*hi = 1.0;
		return;
	}
	p = (double)k / fn;
	den = 1.0 + z * z / fn;
	centre = (p + z * z / (2.0 * fn)) / den;
	half = z * sqrt(p * (1.0 - p) / fn + z * z / (4.0 * fn * fn)) / den;
	/* exact at the ends: rounding must not put 0/n above 0 */
	*lo = k == 0 ? 0.0 : fmax(0.0, centre - half);
	*hi = k == n ? 1.0 : fmin(1.0, centre + half);
}

void us_newcombe_diff(uint64_t k1, uint64_t n1, uint64_t k2, uint64_t n2, double confidence,
		      double *est, double *lo, double *hi)
{
	double p1, p2, l1, u1, l2, u2;

	if (n1 == 0 || n2 == 0) {
		*est = 0.0;
		*lo = -1.0;
		*hi = 1.0;
		return;
	}
	p1 = (double)k1 / (double)n1;
	p2 = (double)k2 / (double)n2;
	us_wilson(k1, n1, confidence, &l1, &u1);
	us_wilson(k2, n2, confidence, &l2, &u2);
	*est = p2 - p1;
	*lo = *est - sqrt((p2 - l2) * (p2 - l2) + (u1 - p1) * (u1 - p1));
	*hi = *est + sqrt((u2 - p2) * (u2 - p2) + (p1 - l1) * (p1 - l1));
}

double us_prob_within(double est, double lo, double hi, double confidence, double limit,
		      bool upper)
{
	double z = us_stats_z(confidence), se = z > 0 ? (hi - lo) / (2.0 * z) : 0.0;

	if (!(se > 0.0) || !isfinite(se))
		return (upper ? est <= limit : est >= limit) ? 1.0 : 0.0;
	return us_stats_phi(upper ? (limit - est) / se : (est - limit) / se);
}
