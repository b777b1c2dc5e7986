/* The comparison report as one self-contained HTML5 file (see report_html.h).
 *
 * Everything is written straight to the caller's FILE in document order:
 * head and CSS, the verdict banner, how to read it, the KPI table with a
 * small SVG confidence-interval bar per row, the latency CDFs of both sides
 * on a log axis, and one timeline per KPI with its anomaly alerts. Charts
 * are plain SVG paths computed here; tooltips are SVG <title> elements,
 * which browsers show on hover without any script.
 *
 * Safety rules, each enforced in exactly one place:
 *  - every caller string goes through put_text() (HTML-escaped);
 *  - every number goes through fmt_num() or put_coord(), which never print
 *    "nan" or "inf";
 *  - class names in attributes come from fixed tables, never from input;
 *  - no URL is ever written (inline SVG needs no xmlns in HTML5), and a
 *    Content-Security-Policy forbids fetching anything, so even a
 *    rendering bug cannot make the file reach the network.
 * Write errors are not checked per call: stdio keeps them sticky, and the
 * single check after the final fflush() reports them. */
#include "report_html.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#ifndef US_VERSION
#define US_VERSION "0.0.0"
#endif

#define DASH "\xe2\x80\x93"             /* en dash: "no value" */

/* Chart geometry, in SVG user units (CSS pixels at 100%). */
#define CHART_W 1000
#define CDF_H 400
#define TL_H 220
#define M_LEFT 64
#define M_RIGHT 16
#define M_TOP 28
#define M_BOTTOM 40
#define CI_W 180
#define MAX_TICKS 12                    /* per axis; bounds every tick loop */
#define CI_H 20

#define COLOR_PROD "#1f5fb4"
#define COLOR_SHADOW "#e8710a"
#define COLOR_ALERT "#c62828"

struct xy {
	double x, y;
};

/* Maps data to SVG coordinates; x is log10 of the data when xlog. */
struct plot {
	double left, top, width, height;
	double x0, x1, y0, y1;
	int xlog;
};

/* Builds one <path d="..."> from points, breaking it at gaps. A segment of
 * one point gets a zero-length "h0" so round line caps show it as a dot
 * instead of nothing. */
struct pen {
	FILE *out;
	int down;
	size_t seg_len;
};

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* ---- text and numbers ---------------------------------------------------- */

/* HTML-escapes s for both text and attribute values. Control characters
 * other than tab and newline are replaced: they are parse errors in HTML
 * and could hide text in some viewers. */
static void put_text(FILE *out, const char *s)
{
	if (!s || !*s) {
		fputs(DASH, out);
		return;
	}
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		switch (c) {
		case '&': fputs("&amp;", out); break;
		case '<': fputs("&lt;", out); break;
		case '>': fputs("&gt;", out); break;
		case '"': fputs("&quot;", out); break;
		case '\'': fputs("&#39;", out); break;
		default:
			if ((c < 0x20 && c != '\t' && c != '\n') || c == 0x7f)
				fputs("&#xFFFD;", out);
			else
				fputc(c, out);
		}
	}
}

/* A value for people: 3 significant digits below 100, whole numbers
 * above (1234 ms reads better than 1.23e+03). */
static const char *fmt_num(char *buf, size_t len, double v)
{
	if (!isfinite(v))
		snprintf(buf, len, DASH);
	else if (fabs(v) >= 100)
		snprintf(buf, len, "%.0f", v);
	else
		snprintf(buf, len, "%.3g", v);
	return buf;
}

/* A relative shift with its sign, "+3.2%". */
static const char *fmt_shift(char *buf, size_t len, double v)
{
	if (!isfinite(v))
		snprintf(buf, len, DASH);
	else if (fabs(v) >= 100)
		snprintf(buf, len, "%+.0f%%", v);
	else
		snprintf(buf, len, "%+.3g%%", v);
	return buf;
}

static const char *fmt_time(char *buf, size_t len, double t, const char *fmt)
{
	struct tm tm;
	time_t tt;

	/* bounds keep the time_t conversion defined and gmtime_r happy */
	if (!isfinite(t) || t < 0 || t > 253402300799.0) {
		snprintf(buf, len, DASH);
		return buf;
	}
	tt = (time_t)t;
	if (!gmtime_r(&tt, &tm) || strftime(buf, len, fmt, &tm) == 0)
		snprintf(buf, len, DASH);
	return buf;
}

/* An SVG coordinate. Callers only pass mapped finite data, but a NaN here
 * would make the browser drop the whole path, so clamp rather than trust. */
static void put_coord(FILE *out, double v)
{
	if (!isfinite(v))
		v = 0;
	fprintf(out, "%.1f", v);
}

/* Fixed CSS class for a decision or KPI class; unknown input maps to a
 * neutral class instead of reaching the attribute. */
static const char *css_class(const char *s)
{
	static const char *const known[] = {
		"Pass", "Marginal", "Fail", "Inconclusive", "High", "Low", "NoData",
	};
	static const char *const css[] = {
		"pass", "marginal", "fail", "inconclusive", "high", "low", "nodata",
	};
	size_t i;

	for (i = 0; s && i < sizeof(known) / sizeof(known[0]); i++)
		if (strcasecmp(s, known[i]) == 0)
			return css[i];
	return "unknown";
}

/* ---- point preparation ----------------------------------------------------- */

static int cmp_xy(const void *a, const void *b)
{
	const struct xy *p = a, *q = b;

	if (p->x != q->x)
		return p->x < q->x ? -1 : 1;
	/* NaN y sorts first so the comparison stays a total order */
	if (isnan(p->y) || isnan(q->y))
		return isnan(q->y) - isnan(p->y);
	return (p->y > q->y) - (p->y < q->y);
}

/* CDF points that can be drawn on a log axis, sorted by value. *out is
 * NULL when none is left. Returns -1 only when out of memory. */
static int cdf_points(const struct us_report_cdf_point *in, size_t n,
		      struct xy **out, size_t *n_out)
{
	size_t i, k = 0;

	*out = NULL;
	*n_out = 0;
	if (n == 0)
		return 0;
	if (!(*out = malloc(n * sizeof(**out))))
		return -1;
	for (i = 0; i < n; i++) {
		double f = in[i].fraction;

		if (!isfinite(in[i].value_ms) || in[i].value_ms <= 0 || !isfinite(f))
			continue;
		(*out)[k].x = in[i].value_ms;
		(*out)[k++].y = f < 0 ? 0 : f > 1 ? 1 : f;
	}
	qsort(*out, k, sizeof(**out), cmp_xy);
	*n_out = k;
	return 0;
}

/* Timeline points sorted by time; points without a time are dropped, NaN
 * values are kept because they mark gaps. */
static int series_points(const struct us_report_point *in, size_t n,
			 struct xy **out, size_t *n_out)
{
	size_t i, k = 0;

	*out = NULL;
	*n_out = 0;
	if (n == 0)
		return 0;
	if (!(*out = malloc(n * sizeof(**out))))
		return -1;
	for (i = 0; i < n; i++) {
		if (!isfinite(in[i].t))
			continue;
		(*out)[k].x = in[i].t;
		(*out)[k++].y = isfinite(in[i].value) ? in[i].value : NAN;
	}
	qsort(*out, k, sizeof(**out), cmp_xy);
	*n_out = k;
	return 0;
}

/* ---- SVG helpers ------------------------------------------------------------ */

static double px(const struct plot *p, double x)
{
	if (p->xlog)
		x = log10(x);
	return p->left + (x - p->x0) / (p->x1 - p->x0) * p->width;
}

static double py(const struct plot *p, double y)
{
	return p->top + p->height - (y - p->y0) / (p->y1 - p->y0) * p->height;
}

static void pen_end_segment(struct pen *pen)
{
	if (pen->down && pen->seg_len == 1)
		fputs("h0", pen->out);
	pen->down = 0;
	pen->seg_len = 0;
}

static void pen_to(struct pen *pen, double x, double y)
{
	fputs(pen->down ? "L" : "M", pen->out);
	put_coord(pen->out, x);
	fputc(' ', pen->out);
	put_coord(pen->out, y);
	pen->down = 1;
	pen->seg_len++;
}

static void svg_open(FILE *out, int w, int h, const char *cls, const char *label)
{
	fprintf(out, "<svg class=\"%s\" viewBox=\"0 0 %d %d\" width=\"%d\" height=\"%d\" "
		"role=\"img\" aria-label=\"", cls, w, h, w, h);
	put_text(out, label);
	fputs("\">", out);
}

/* The frame of an empty chart, so the layout does not jump and the reader
 * sees that data is missing rather than a missing chart. */
static void svg_no_data(FILE *out, int h, const char *what)
{
	svg_open(out, CHART_W, h, "chart", what);
	fprintf(out, "<rect class=\"frame\" x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\"/>"
		"<text class=\"nodata\" x=\"%d\" y=\"%d\" text-anchor=\"middle\">No data</text></svg>\n",
		M_LEFT, M_TOP, CHART_W - M_LEFT - M_RIGHT, h - M_TOP - M_BOTTOM,
		CHART_W / 2, h / 2);
}

static void svg_legend(FILE *out, double x, double y)
{
	fprintf(out, "<g class=\"legend\">"
		"<line x1=\"%.0f\" y1=\"%.0f\" x2=\"%.0f\" y2=\"%.0f\" stroke=\"" COLOR_PROD "\" stroke-width=\"3\"/>"
		"<text x=\"%.0f\" y=\"%.0f\">production</text>"
		"<line x1=\"%.0f\" y1=\"%.0f\" x2=\"%.0f\" y2=\"%.0f\" stroke=\"" COLOR_SHADOW "\" stroke-width=\"3\"/>"
		"<text x=\"%.0f\" y=\"%.0f\">shadow</text></g>",
		x, y, x + 18, y, x + 22, y + 4,
		x + 110, y, x + 128, y, x + 132, y + 4);
}

static void svg_xtick(FILE *out, const struct plot *p, double x, const char *label)
{
	double sx = px(p, x);
	double bottom = p->top + p->height;

	fputs("<line class=\"grid\" x1=\"", out);
	put_coord(out, sx);
	fprintf(out, "\" y1=\"%.1f\" x2=\"", p->top);
	put_coord(out, sx);
	fprintf(out, "\" y2=\"%.1f\"/><text x=\"", bottom);
	put_coord(out, sx);
	fprintf(out, "\" y=\"%.1f\" text-anchor=\"middle\">", bottom + 16);
	put_text(out, label);
	fputs("</text>", out);
}

static void svg_ytick(FILE *out, const struct plot *p, double y, const char *label)
{
	double sy = py(p, y);

	fprintf(out, "<line class=\"grid\" x1=\"%.1f\" y1=\"", p->left);
	put_coord(out, sy);
	fprintf(out, "\" x2=\"%.1f\" y2=\"", p->left + p->width);
	put_coord(out, sy);
	fprintf(out, "\"/><text x=\"%.1f\" y=\"", p->left - 6);
	put_coord(out, sy + 4);
	fputs("\" text-anchor=\"end\">", out);
	put_text(out, label);
	fputs("</text>", out);
}

/* ---- head, banner, how-to ---------------------------------------------------- */

static const char css[] =
	":root{--pass:#1a7f37;--marginal:#b7791f;--fail:#c62828;--inconclusive:#5f6b7a}"
	"body{font:14px/1.45 system-ui,-apple-system,\"Segoe UI\",Roboto,sans-serif;"
	"color:#1d232a;background:#fff;margin:0;padding:24px}"
	"main{max-width:1100px;margin:0 auto}"
	"h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;"
	"border-bottom:1px solid #dde2e7;padding-bottom:4px}h3{font-size:14px;margin:18px 0 4px}"
	".meta{display:grid;grid-template-columns:max-content 1fr;gap:2px 14px;margin:8px 0 16px;color:#39424c}"
	".meta dt{font-weight:600}.meta dd{margin:0}"
	".banner{color:#fff;border-radius:8px;padding:18px 24px;display:flex;align-items:center;"
	"gap:32px;flex-wrap:wrap;background:var(--inconclusive)}"
	".banner.pass{background:var(--pass)}.banner.marginal{background:var(--marginal)}"
	".banner.fail{background:var(--fail)}"
	".verdict{font-size:40px;font-weight:700;letter-spacing:.5px}"
	".figs{display:flex;gap:28px;font-size:15px}.figs b{display:block;font-size:24px}"
	".howto{background:#f5f7f9;border-radius:6px;padding:8px 18px;margin-top:16px;color:#39424c}"
	".howto li{margin:3px 0}"
	"table{border-collapse:collapse;width:100%}th,td{padding:5px 8px;border-bottom:1px solid #e6e9ed;"
	"text-align:right;white-space:nowrap}th{background:#f5f7f9;font-weight:600}"
	"td.name,th.name{text-align:left;white-space:normal}td.bar{padding:2px 8px}"
	".badge{display:inline-block;border-radius:4px;padding:1px 7px;font-size:12px;"
	"font-weight:600;color:#fff;background:#5f6b7a}"
	".badge.pass{background:var(--pass)}.badge.high,.badge.low{background:var(--fail)}"
	".crit{font-size:11px;color:var(--fail);border:1px solid var(--fail);border-radius:3px;"
	"padding:0 4px;margin-left:6px}"
	"svg{display:block;max-width:100%;height:auto}svg text{font:11px system-ui,sans-serif;fill:#39424c}"
	"svg .frame{fill:none;stroke:#b8c0c8}svg .grid{stroke:#e6e9ed}"
	"svg .nodata{font-size:16px;fill:#8a949e}svg .title{font-size:13px;font-weight:600}"
	".alerts{margin:4px 0 0;padding-left:20px;color:#39424c;font-size:13px}"
	".note{color:#5f6b7a}footer{margin-top:32px;color:#8a949e;font-size:12px}";

static void write_head(FILE *out, const struct us_report *r)
{
	fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
	      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
	      /* nothing may be fetched or run, whatever ends up in the file */
	      "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
	      "style-src 'unsafe-inline'\">\n<title>", out);
	put_text(out, r->title ? r->title : "understudy comparison");
	fputs(": ", out);
	put_text(out, r->workload);
	fputs(" \xe2\x80\x94 ", out);
	put_text(out, r->decision);
	fprintf(out, "</title>\n<style>%s</style>\n</head>\n<body>\n<main>\n", css);
}

static void write_meta(FILE *out, const struct us_report *r)
{
	char a[64], b[64];
	double span = r->window_end - r->window_start;

	fputs("<h1>", out);
	put_text(out, r->title ? r->title : "understudy comparison");
	fputs("</h1>\n<dl class=\"meta\"><dt>Workload</dt><dd>", out);
	put_text(out, r->workload);
	fputs("</dd><dt>Production</dt><dd>", out);
	put_text(out, r->production_type);
	fputs("</dd><dt>Shadow</dt><dd>", out);
	put_text(out, r->shadow_type);
	fprintf(out, "</dd><dt>Window</dt><dd>%s \xe2\x86\x92 %s",
		fmt_time(a, sizeof(a), r->window_start, "%Y-%m-%d %H:%M:%S UTC"),
		fmt_time(b, sizeof(b), r->window_end, "%Y-%m-%d %H:%M:%S UTC"));
	if (isfinite(span) && span >= 0)
		fprintf(out, " (%s min)", fmt_num(a, sizeof(a), span / 60));
	fputs("</dd><dt>Mode</dt><dd>", out);
	put_text(out, r->mode);
	fputs("</dd></dl>\n", out);
}

/* The score on a 0-100 meter with the Marginal (75) and Pass (95) marks. */
static void write_score_meter(FILE *out, double score)
{
	double s = isfinite(score) ? (score < 0 ? 0 : score > 100 ? 100 : score) : 0;

	fputs("<svg viewBox=\"0 0 220 34\" width=\"220\" height=\"34\" role=\"img\" "
	      "aria-label=\"score meter\"><title>score 0-100; marks at 75 (Marginal) and 95 (Pass)</title>"
	      "<rect x=\"0\" y=\"6\" width=\"200\" height=\"12\" rx=\"6\" fill=\"#ffffff\" fill-opacity=\".3\"/>"
	      "<rect x=\"0\" y=\"6\" width=\"", out);
	put_coord(out, 2 * s);
	fputs("\" height=\"12\" rx=\"6\" fill=\"#ffffff\"/>"
	      "<line x1=\"150\" y1=\"2\" x2=\"150\" y2=\"22\" stroke=\"#fff\"/>"
	      "<line x1=\"190\" y1=\"2\" x2=\"190\" y2=\"22\" stroke=\"#fff\"/>"
	      "<text x=\"150\" y=\"32\" text-anchor=\"middle\" style=\"fill:#fff\">75</text>"
	      "<text x=\"190\" y=\"32\" text-anchor=\"middle\" style=\"fill:#fff\">95</text></svg>", out);
}

static void write_banner(FILE *out, const struct us_report *r)
{
	char a[32], b[32];

	fprintf(out, "<section class=\"banner %s\" id=\"verdict\"><div class=\"verdict\">",
		css_class(r->decision));
	put_text(out, r->decision);
	fprintf(out, "</div><div class=\"figs\"><div>Score<b>%s / 100</b></div>"
		"<div>Confidence<b>%s%s</b></div><div>Mode<b>",
		fmt_num(a, sizeof(a), isfinite(r->score) ? round(r->score) : NAN),
		fmt_num(b, sizeof(b), r->confidence * 100), isfinite(r->confidence) ? "%" : "");
	put_text(out, r->mode);
	fputs("</b></div></div>", out);
	write_score_meter(out, r->score);
	fputs("</section>\n", out);
}

static void write_howto(FILE *out)
{
	fputs("<section class=\"howto\"><h3>How to read this</h3><ul>"
	      "<li><b>Verdict</b>: Pass means the shadow instance type serves this workload "
	      "as well as production within the policy's tolerances; Marginal means most "
	      "KPIs hold but not all; Fail means a regression (any failing critical KPI fails "
	      "the whole comparison); Inconclusive means too few samples to judge.</li>"
	      "<li><b>Score</b> (0-100) is the weighted share of KPIs within tolerance: "
	      "95 or more passes, 75 or more is marginal.</li>"
	      "<li><b>Confidence</b> is the probability that every critical KPI is within "
	      "its tolerance, given the samples.</li>"
	      "<li><b>Shift</b> is the shadow's change relative to production (+10% = "
	      "10% higher). The bar shows its confidence interval, the dot the estimate and "
	      "the vertical line zero. An interval that excludes zero is a real difference; "
	      "whether it matters is decided against the tolerance (Pass / High / Low).</li>"
	      "<li><b>Latency CDF</b>: the fraction of requests at or below a latency. "
	      "A curve further right is slower; the gap at the top is the tail. The "
	      "latency axis is logarithmic.</li>"
	      "<li><b>Timelines</b>: each KPI over the window on both sides; red marks are "
	      "anomaly alerts (hover for score and reason).</li></ul></section>\n", out);
}

/* ---- KPI table -------------------------------------------------------------- */

/* The scale shared by all CI bars, so bars compare across rows: the widest
 * finite bound, at least 1% (a flat report still shows a readable bar) and
 * at most 100% (one wild KPI must not flatten all others; it is clipped). */
static double ci_scale(const struct us_report *r)
{
	double m = 1;
	size_t i;

	for (i = 0; i < r->n_kpis; i++) {
		const struct us_report_kpi *k = &r->kpis[i];
		double v[3] = { k->estimate, k->ci_low, k->ci_high };
		int j;

		for (j = 0; j < 3; j++)
			if (isfinite(v[j]) && fabs(v[j]) > m)
				m = fabs(v[j]);
	}
	return m > 100 ? 100 : m;
}

static double ci_x(double v, double scale)
{
	const double half = (CI_W - 12) / 2.0;

	if (v > scale)
		v = scale;
	if (v < -scale)
		v = -scale;
	return CI_W / 2.0 + v / scale * half;
}

static const char *ci_color(const char *cls)
{
	const char *c = css_class(cls);

	if (strcmp(c, "pass") == 0)
		return "#1a7f37";
	if (strcmp(c, "high") == 0 || strcmp(c, "low") == 0)
		return "#c62828";
	return "#5f6b7a";
}

static void write_ci_bar(FILE *out, const struct us_report_kpi *k, double scale)
{
	char a[32], b[32], c[32], d[32];
	int have_ci = isfinite(k->ci_low) && isfinite(k->ci_high);

	fprintf(out, "<svg class=\"ci\" viewBox=\"0 0 %d %d\" width=\"%d\" height=\"%d\" "
		"role=\"img\" aria-label=\"confidence interval\"><title>shift %s, CI %s to %s "
		"(bar scale \xc2\xb1%s%%)</title>",
		CI_W, CI_H, CI_W, CI_H,
		fmt_shift(a, sizeof(a), k->estimate), fmt_shift(b, sizeof(b), k->ci_low),
		fmt_shift(c, sizeof(c), k->ci_high), fmt_num(d, sizeof(d), scale));
	fprintf(out, "<line x1=\"%.1f\" y1=\"2\" x2=\"%.1f\" y2=\"%d\" stroke=\"#8a949e\"/>",
		CI_W / 2.0, CI_W / 2.0, CI_H - 2);
	if (have_ci) {
		double lo = ci_x(fmin(k->ci_low, k->ci_high), scale);
		double hi = ci_x(fmax(k->ci_low, k->ci_high), scale);

		fputs("<rect x=\"", out);
		put_coord(out, lo);
		fprintf(out, "\" y=\"%d\" width=\"", CI_H / 2 - 3);
		put_coord(out, fmax(hi - lo, 1));
		fprintf(out, "\" height=\"6\" rx=\"3\" fill=\"%s\" fill-opacity=\".45\"/>",
			ci_color(k->cls));
	}
	if (isfinite(k->estimate)) {
		fputs("<circle cx=\"", out);
		put_coord(out, ci_x(k->estimate, scale));
		fprintf(out, "\" cy=\"%d\" r=\"4\" fill=\"%s\"/>", CI_H / 2, ci_color(k->cls));
	}
	fputs("</svg>", out);
}

static void write_value(FILE *out, double v, const char *unit)
{
	char a[32];

	fputs(fmt_num(a, sizeof(a), v), out);
	if (isfinite(v) && unit && *unit) {
		fputs("\xc2\xa0", out);           /* no-break space: "12 ms" stays whole */
		put_text(out, unit);
	}
}

static void write_kpi_row(FILE *out, const struct us_report_kpi *k, double scale)
{
	char a[32], b[32], c[32];

	fputs("<tr><td class=\"name\">", out);
	put_text(out, k->name);
	if (k->critical)
		fputs("<span class=\"crit\">critical</span>", out);
	fputs("</td><td>", out);
	write_value(out, k->production, k->unit);
	fputs("</td><td>", out);
	write_value(out, k->shadow, k->unit);
	fprintf(out, "</td><td>%s</td><td>%s \xe2\x80\xa6 %s</td><td class=\"bar\">",
		fmt_shift(a, sizeof(a), k->estimate), fmt_shift(b, sizeof(b), k->ci_low),
		fmt_shift(c, sizeof(c), k->ci_high));
	write_ci_bar(out, k, scale);
	fprintf(out, "</td><td><span class=\"badge %s\">", css_class(k->cls));
	put_text(out, k->cls ? k->cls : "NoData");
	fprintf(out, "</span></td><td>%zu / %zu</td></tr>\n", k->n_production, k->n_shadow);
}

static void write_kpi_table(FILE *out, const struct us_report *r)
{
	double scale = ci_scale(r);
	size_t i;

	fputs("<h2>KPIs</h2>\n", out);
	if (r->n_kpis == 0) {
		fputs("<p class=\"note\">No KPI was measured (NoData).</p>\n", out);
		return;
	}
	fputs("<table id=\"kpis\"><thead><tr><th class=\"name\">KPI</th><th>Production</th>"
	      "<th>Shadow</th><th>Shift</th><th>Confidence interval</th><th>Interval</th>"
	      "<th>Result</th><th>n (prod / shadow)</th></tr></thead><tbody>\n", out);
	for (i = 0; i < r->n_kpis; i++)
		write_kpi_row(out, &r->kpis[i], scale);
	fputs("</tbody></table>\n", out);
}

/* ---- latency CDF ------------------------------------------------------------ */

/* Decade ticks with 2 and 5 in between when they fit, every integer
 * multiple when the range is narrower than a decade. */
static void cdf_xticks(FILE *out, const struct plot *p)
{
	static const int fine[] = { 1, 2, 3, 4, 5, 6, 7, 8, 9 };
	static const int medium[] = { 1, 2, 5 };
	static const int coarse[] = { 1 };
	const int *m;
	size_t nm;
	int e, i, lo = (int)floor(p->x0), hi = (int)ceil(p->x1);
	double span = p->x1 - p->x0;
	char label[32];

	if (span < 1) {
		m = fine;
		nm = 9;
	} else if (span < 3) {
		m = medium;
		nm = 3;
	} else {
		m = coarse;
		nm = 1;
	}
	for (e = lo; e <= hi; e++)
		for (i = 0; i < (int)nm; i++) {
			double v = m[i] * pow(10, e), lv = log10(v);

			if (lv < p->x0 || lv > p->x1)
				continue;
			svg_xtick(out, p, v, fmt_num(label, sizeof(label), v));
		}
}

static void cdf_path(FILE *out, const struct plot *p, const struct xy *v, size_t n,
		     const char *color, const char *name)
{
	struct pen pen = { out, 0, 0 };
	size_t i;

	if (n == 0)
		return;
	fprintf(out, "<path fill=\"none\" stroke=\"%s\" stroke-width=\"2\" stroke-linecap=\"round\" d=\"",
		color);
	/* an empirical CDF is a step function: right at the old level, then up */
	pen_to(&pen, px(p, v[0].x), py(p, 0));
	for (i = 0; i < n; i++) {
		if (i > 0)
			pen_to(&pen, px(p, v[i].x), py(p, v[i - 1].y));
		pen_to(&pen, px(p, v[i].x), py(p, v[i].y));
	}
	pen_end_segment(&pen);
	fprintf(out, "\"><title>%s latency CDF (%zu points)</title></path>", name, n);
}

static int write_cdf(FILE *out, const struct us_report *r, char *err, size_t errlen)
{
	struct xy *a = NULL, *b = NULL;
	size_t na, nb;
	struct plot p = { M_LEFT, M_TOP, CHART_W - M_LEFT - M_RIGHT, CDF_H - M_TOP - M_BOTTOM,
			  0, 0, 0, 1, 1 };
	double lo = INFINITY, hi = -INFINITY;
	static const double fy[] = { 0, 0.25, 0.5, 0.75, 0.9, 1 };
	size_t i;
	int rc = -1;

	if (cdf_points(r->cdf_production, r->n_cdf_production, &a, &na) < 0 ||
	    cdf_points(r->cdf_shadow, r->n_cdf_shadow, &b, &nb) < 0) {
		set_err(err, errlen, "report: out of memory for the latency CDF");
		goto cleanup;
	}
	fputs("<h2>Request latency, cumulative distribution</h2>\n", out);
	if (na + nb == 0) {
		svg_no_data(out, CDF_H, "latency CDF: no data");
		rc = 0;
		goto cleanup;
	}
	if (na) { lo = fmin(lo, a[0].x); hi = fmax(hi, a[na - 1].x); }
	if (nb) { lo = fmin(lo, b[0].x); hi = fmax(hi, b[nb - 1].x); }
	/* a little air on both sides; a single value still gets a range */
	p.x0 = log10(lo) - (hi > lo ? 0.05 * log10(hi / lo) : 0.3);
	p.x1 = log10(hi) + (hi > lo ? 0.05 * log10(hi / lo) : 0.3);

	svg_open(out, CHART_W, CDF_H, "chart cdf", "latency CDF of production and shadow");
	for (i = 0; i < sizeof(fy) / sizeof(fy[0]); i++) {
		char label[16];

		snprintf(label, sizeof(label), "%g", fy[i]);
		svg_ytick(out, &p, fy[i], label);
	}
	cdf_xticks(out, &p);
	fprintf(out, "<rect class=\"frame\" x=\"%.0f\" y=\"%.0f\" width=\"%.0f\" height=\"%.0f\"/>",
		p.left, p.top, p.width, p.height);
	cdf_path(out, &p, a, na, COLOR_PROD, "production");
	cdf_path(out, &p, b, nb, COLOR_SHADOW, "shadow");
	fprintf(out, "<text x=\"%.0f\" y=\"%d\" text-anchor=\"middle\">latency (ms, log scale)</text>"
		"<text x=\"14\" y=\"%.0f\" text-anchor=\"middle\" transform=\"rotate(-90 14 %.0f)\">"
		"fraction of requests</text>",
		p.left + p.width / 2, CDF_H - 6, p.top + p.height / 2, p.top + p.height / 2);
	svg_legend(out, p.left + 8, M_TOP - 12);
	fputs("</svg>\n", out);
	rc = 0;
cleanup:
	free(a);
	free(b);
	return rc;
}

/* ---- timelines ---------------------------------------------------------------- */

/* A tick step from 1-2-5 x 10^k giving about `want` intervals. */
static double nice_step(double range, int want)
{
	double raw = range / want, mag = pow(10, floor(log10(raw))), f = raw / mag;

	return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * mag;
}

/* Time ticks on round clock times: at most 6 per chart. */
static void time_xticks(FILE *out, const struct plot *p)
{
	static const double steps[] = {
		1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800,
		21600, 43200, 86400, 172800, 604800, 2592000, 31536000,
	};
	double range = p->x1 - p->x0, step = steps[sizeof(steps) / sizeof(steps[0]) - 1], t, t0;
	const char *fmt;
	char label[32];
	size_t i;
	int k;

	for (i = 0; i < sizeof(steps) / sizeof(steps[0]); i++)
		if (range / steps[i] <= 6) {
			step = steps[i];
			break;
		}
	if (range / step > 12)          /* beyond a year per tick: any round step */
		step = nice_step(range, 6);
	fmt = step >= 86400 ? "%m-%d" : range > 86400 ? "%m-%d %H:%M" : step < 60 ? "%H:%M:%S" : "%H:%M";
	/* counted, not t += step: with huge t the sum may never move */
	for (k = 0, t0 = ceil(p->x0 / step) * step; k <= MAX_TICKS; k++) {
		t = t0 + k * step;
		if (!(t <= p->x1))
			break;
		svg_xtick(out, p, t, fmt_time(label, sizeof(label), t, fmt));
	}
}

/* One series as a path. With more points than the chart has pixels, each
 * pixel column keeps only its minimum and maximum (in time order): the
 * line looks the same, spikes survive, and the file stays small. */
static void series_path(FILE *out, const struct plot *p, const struct xy *v, size_t n,
			const char *color, const char *name)
{
	struct pen pen = { out, 0, 0 };
	int decimate = n > (size_t)(2 * p->width);
	long col = -1;
	const struct xy *mn = NULL, *mx = NULL;
	int gap = 0;
	size_t i;

	if (n == 0)
		return;
	fprintf(out, "<path fill=\"none\" stroke=\"%s\" stroke-width=\"1.6\" stroke-linecap=\"round\" "
		"stroke-linejoin=\"round\" d=\"", color);
	for (i = 0; i <= n; i++) {
		long c = i < n ? (long)floor(px(p, v[i].x)) : LONG_MAX;

		if (!decimate) {
			if (i == n)
				break;
			if (isnan(v[i].y))
				pen_end_segment(&pen);
			else
				pen_to(&pen, px(p, v[i].x), py(p, v[i].y));
			continue;
		}
		if (c != col && col >= 0) {    /* flush the finished column */
			const struct xy *f = mn && mx && mx->x < mn->x ? mx : mn;
			const struct xy *s = f == mn ? mx : mn;

			if (f)
				pen_to(&pen, px(p, f->x), py(p, f->y));
			if (s && s != f)
				pen_to(&pen, px(p, s->x), py(p, s->y));
			if (gap)
				pen_end_segment(&pen);
			mn = mx = NULL;
			gap = 0;
		}
		if (i == n)
			break;
		col = c;
		if (isnan(v[i].y)) {
			gap = 1;
			continue;
		}
		if (!mn || v[i].y < mn->y)
			mn = &v[i];
		if (!mx || v[i].y > mx->y)
			mx = &v[i];
	}
	pen_end_segment(&pen);
	fprintf(out, "\"><title>%s (%zu points)</title></path>", name, n);
}

static void alert_marker(FILE *out, const struct plot *p, const struct us_report_alert *a)
{
	char t[32], s[32];
	double x = px(p, a->t);

	fprintf(out, "<g class=\"alert\"><title>alert %s UTC, score %s: ",
		fmt_time(t, sizeof(t), a->t, "%Y-%m-%d %H:%M:%S"), fmt_num(s, sizeof(s), a->score));
	put_text(out, a->reason);
	fputs("</title><line x1=\"", out);
	put_coord(out, x);
	fprintf(out, "\" y1=\"%.1f\" x2=\"", p->top);
	put_coord(out, x);
	fprintf(out, "\" y2=\"%.1f\" stroke=\"" COLOR_ALERT "\" stroke-dasharray=\"4 3\"/>"
		"<circle cx=\"", p->top + p->height);
	put_coord(out, x);
	fprintf(out, "\" cy=\"%.1f\" r=\"5\" fill=\"" COLOR_ALERT "\"/></g>", p->top);
}

/* The chart's ranges from every finite point and alert. Returns 0 when
 * there is nothing to draw. */
static int timeline_ranges(const struct us_report_timeline *tl, const struct xy *a, size_t na,
			   const struct xy *b, size_t nb, struct plot *p)
{
	double t0 = INFINITY, t1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY, pad;
	const struct xy *sides[2] = { a, b };
	size_t ns[2] = { na, nb }, i;
	int s;

	for (s = 0; s < 2; s++)
		for (i = 0; i < ns[s]; i++) {
			if (isnan(sides[s][i].y))
				continue;
			t0 = fmin(t0, sides[s][i].x);
			t1 = fmax(t1, sides[s][i].x);
			y0 = fmin(y0, sides[s][i].y);
			y1 = fmax(y1, sides[s][i].y);
		}
	if (!isfinite(y0))
		return 0;
	for (i = 0; i < tl->n_alerts; i++)
		if (isfinite(tl->alerts[i].t)) {
			t0 = fmin(t0, tl->alerts[i].t);
			t1 = fmax(t1, tl->alerts[i].t);
		}
	if (t1 <= t0) {
		t0 -= 30;
		t1 += 30;
	}
	/* a constant series still needs a range: centre it */
	pad = y1 > y0 ? 0.08 * (y1 - y0) : fmax(fabs(y0) * 0.1, 1);
	p->x0 = t0;
	p->x1 = t1;
	p->y0 = y0 - pad;
	p->y1 = y1 + pad;
	return 1;
}

static void write_alert_list(FILE *out, const struct us_report_timeline *tl)
{
	char t[32], s[32];
	size_t i, shown = tl->n_alerts < 20 ? tl->n_alerts : 20;

	if (tl->n_alerts == 0)
		return;
	fputs("<ul class=\"alerts\">", out);
	for (i = 0; i < shown; i++) {
		const struct us_report_alert *a = &tl->alerts[i];

		fprintf(out, "<li>%s UTC, score %s: ",
			fmt_time(t, sizeof(t), a->t, "%Y-%m-%d %H:%M:%S"),
			fmt_num(s, sizeof(s), a->score));
		put_text(out, a->reason);
		fputs("</li>", out);
	}
	if (tl->n_alerts > shown)
		fprintf(out, "<li>and %zu more</li>", tl->n_alerts - shown);
	fputs("</ul>\n", out);
}

static int write_timeline(FILE *out, const struct us_report_timeline *tl, char *err, size_t errlen)
{
	struct xy *a = NULL, *b = NULL;
	size_t na, nb, i;
	struct plot p = { M_LEFT, M_TOP, CHART_W - M_LEFT - M_RIGHT, TL_H - M_TOP - M_BOTTOM,
			  0, 1, 0, 1, 0 };
	double step, y, y0;
	int k, rc = -1;

	if (series_points(tl->production, tl->n_production, &a, &na) < 0 ||
	    series_points(tl->shadow, tl->n_shadow, &b, &nb) < 0) {
		set_err(err, errlen, "report: out of memory for a timeline");
		goto cleanup;
	}
	fputs("<h3>", out);
	put_text(out, tl->kpi);
	if (tl->unit && *tl->unit) {
		fputs(" (", out);
		put_text(out, tl->unit);
		fputs(")", out);
	}
	fputs("</h3>\n", out);
	if (!timeline_ranges(tl, a, na, b, nb, &p)) {
		svg_no_data(out, TL_H, "timeline: no data");
		write_alert_list(out, tl);
		rc = 0;
		goto cleanup;
	}
	svg_open(out, CHART_W, TL_H, "chart timeline", tl->kpi ? tl->kpi : "timeline");
	step = nice_step(p.y1 - p.y0, 4);
	/* counted, not y += step: near 1e17 a step of 1 does not move y */
	for (k = 0, y0 = ceil(p.y0 / step) * step; k <= MAX_TICKS; k++) {
		char label[32];

		y = y0 + k * step;
		if (!(y <= p.y1))
			break;
		/* -0 and 1e-17 from rounding both read as 0 */
		svg_ytick(out, &p, y, fmt_num(label, sizeof(label), fabs(y) < step / 1e6 ? 0 : y));
	}
	time_xticks(out, &p);
	fprintf(out, "<rect class=\"frame\" x=\"%.0f\" y=\"%.0f\" width=\"%.0f\" height=\"%.0f\"/>",
		p.left, p.top, p.width, p.height);
	series_path(out, &p, a, na, COLOR_PROD, "production");
	series_path(out, &p, b, nb, COLOR_SHADOW, "shadow");
	for (i = 0; i < tl->n_alerts; i++)
		if (isfinite(tl->alerts[i].t))
			alert_marker(out, &p, &tl->alerts[i]);
	fprintf(out, "<text x=\"%.0f\" y=\"%d\" text-anchor=\"middle\">time (UTC)</text>",
		p.left + p.width / 2, TL_H - 6);
	svg_legend(out, p.left + 8, M_TOP - 12);
	fputs("</svg>\n", out);
	write_alert_list(out, tl);
	rc = 0;
cleanup:
	free(a);
	free(b);
	return rc;
}

static int write_timelines(FILE *out, const struct us_report *r, char *err, size_t errlen)
{
	size_t i, n = r->n_timelines < US_REPORT_MAX_TIMELINES ? r->n_timelines : US_REPORT_MAX_TIMELINES;

	fputs("<h2>Timelines and alerts</h2>\n", out);
	if (r->n_timelines == 0)
		fputs("<p class=\"note\">No timeline data (NoData).</p>\n", out);
	for (i = 0; i < n; i++)
		if (write_timeline(out, &r->timelines[i], err, errlen) < 0)
			return -1;
	if (r->n_timelines > n)
		fprintf(out, "<p class=\"note\">%zu more timelines not shown.</p>\n", r->n_timelines - n);
	return 0;
}

/* ---- entry point -------------------------------------------------------------- */

/* A count with no array behind it is a caller bug; refuse it here rather
 * than read through NULL. */
static int check_input(const struct us_report *r, char *err, size_t errlen)
{
	size_t i;

	if ((r->n_kpis && !r->kpis) || (r->n_cdf_production && !r->cdf_production) ||
	    (r->n_cdf_shadow && !r->cdf_shadow) || (r->n_timelines && !r->timelines)) {
		set_err(err, errlen, "report: an array has a count but no elements");
		return -1;
	}
	for (i = 0; i < r->n_timelines; i++) {
		const struct us_report_timeline *tl = &r->timelines[i];

		if ((tl->n_production && !tl->production) || (tl->n_shadow && !tl->shadow) ||
		    (tl->n_alerts && !tl->alerts)) {
			set_err(err, errlen, "report: timeline %zu has a count but no elements", i);
			return -1;
		}
	}
	return 0;
}

int us_report_write_html(const struct us_report *r, FILE *out, char *err, size_t errlen)
{
	if (!r || !out) {
		set_err(err, errlen, "report: no report or no output");
		return -1;
	}
	if (check_input(r, err, errlen) < 0)
		return -1;
	write_head(out, r);
	write_meta(out, r);
	write_banner(out, r);
	write_howto(out);
	write_kpi_table(out, r);
	if (write_cdf(out, r, err, errlen) < 0 || write_timelines(out, r, err, errlen) < 0)
		return -1;
	fputs("<footer>understudy " US_VERSION ": self-contained report, no scripts, no network.</footer>\n"
	      "</main>\n</body>\n</html>\n", out);
	if (fflush(out) != 0 || ferror(out)) {
		set_err(err, errlen, "report: write failed: %s", strerror(errno));
		return -1;
	}
	return 0;
}
