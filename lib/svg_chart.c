/* Forecast and plan chart as a standalone SVG file (svg_chart.h).
 *
 * Safety rules, each in one place: caller text only through us_svg_escape();
 * numbers only through coord(), which never prints "nan" or "inf"; the only
 * URL-like string is the SVG namespace name in xmlns, which viewers match as
 * an identifier and never fetch. Write errors are sticky in stdio, so one
 * ferror() check at the end reports them. */
#include "svg_chart.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DEF_W 960
#define DEF_H 420
#define M_LEFT 72
#define M_RIGHT 64
#define M_TOP 44
#define M_BOTTOM 48

#define C_HIST "#3b3b3b"
#define C_MEAN "#08519c"
#define C_B80 "#9ecae1"
#define C_B95 "#deebf7"
#define C_CAP "#d95f02"
#define C_REQ "#1b9e77"
#define C_LATE "#d7301f"

struct frame {
	double x0, x1, y1;       /* data ranges (y from 0) */
	double left, top, w, h;  /* plot area in pixels */
};

void us_svg_escape(FILE *out, const char *s)
{
	for (; s && *s; s++) {
		switch (*s) {
		case '&': fputs("&amp;", out); break;
		case '<': fputs("&lt;", out); break;
		case '>': fputs("&gt;", out); break;
		case '"': fputs("&quot;", out); break;
		case '\'': fputs("&#39;", out); break;
		default:
			/* XML 1.0 forbids most control characters outright */
			if ((unsigned char)*s >= 0x20 || *s == '\t')
				fputc(*s, out);
		}
	}
}

static void coord(FILE *out, double v)
{
	fprintf(out, "%.1f", isfinite(v) ? v : 0.0);
}

static double px(const struct frame *f, double t)
{
	return f->left + (t - f->x0) / (f->x1 - f->x0) * f->w;
}

static double py(const struct frame *f, double v)
{
	double y = f->top + f->h - v / f->y1 * f->h;

	return y < f->top ? f->top : y;
}

static void grow(double *lo, double *hi, double v)
{
	if (!isfinite(v))
		return;
	if (v < *lo)
		*lo = v;
	if (v > *hi)
		*hi = v;
}

static double fc_t(const struct us_fc_bands *fc, size_t i)
{
	return (double)(fc->start + (int64_t)i * fc->step);
}

/* The data ranges; -1 when there is nothing to draw. */
static int ranges(const struct us_svg_chart *c, struct frame *f)
{
	double tlo = INFINITY, thi = -INFINITY, vlo = 0, vhi = 0;

	for (size_t i = 0; i < c->nhist; i++) {
		grow(&tlo, &thi, (double)c->hist_t[i]);
		grow(&vlo, &vhi, c->hist_v[i]);
	}
	for (size_t i = 0; c->fc && i < c->fc->n; i++) {
		grow(&tlo, &thi, fc_t(c->fc, i));
		grow(&vlo, &vhi, c->fc->mean[i]);
		if (c->fc->hi95)
			grow(&vlo, &vhi, c->fc->hi95[i]);
		if (c->fc->hi80)
			grow(&vlo, &vhi, c->fc->hi80[i]);
	}
	for (size_t i = 0; c->plan && i < c->plan->n; i++) {
		const struct us_plan_step *s = &c->plan->steps[i];

		grow(&tlo, &thi, (double)s->t);
		grow(&vlo, &vhi, s->required * c->plan->capacity);
		if (s->request)
			grow(&tlo, &thi, (double)s->request_at);
	}
	if (!isfinite(tlo))
		return -1;
	if (thi <= tlo)
		thi = tlo + 1;
	f->x0 = tlo;
	f->x1 = thi;
	f->y1 = vhi > 0 ? vhi * 1.05 : 1;
	return 0;
}

/* 1, 2 or 5 × 10^k: about n ticks over [0, hi]. */
static double nice_step(double hi, int n)
{
	double raw = hi / n, mag = pow(10, floor(log10(raw))), r = raw / mag;

	return (r <= 1 ? 1 : r <= 2 ? 2 : r <= 5 ? 5 : 10) * mag;
}

static void y_axis(FILE *out, const struct frame *f, const char *unit)
{
	double step = nice_step(f->y1, 5);

	for (double v = 0; v <= f->y1 + step * 1e-9; v += step) {
		fputs("<line class=\"grid\" x1=\"", out); coord(out, f->left);
		fputs("\" x2=\"", out); coord(out, f->left + f->w);
		fputs("\" y1=\"", out); coord(out, py(f, v));
		fputs("\" y2=\"", out); coord(out, py(f, v));
		fputs("\"/><text x=\"", out); coord(out, f->left - 6);
		fputs("\" y=\"", out); coord(out, py(f, v) + 4);
		fprintf(out, "\" text-anchor=\"end\">%.6g</text>\n", v);
	}
	if (unit) {
		fprintf(out, "<text x=\"14\" y=\"%.1f\" transform=\"rotate(-90 14 %.1f)\" "
			"text-anchor=\"middle\">", f->top + f->h / 2, f->top + f->h / 2);
		us_svg_escape(out, unit);
		fputs("</text>\n", out);
	}
}

/* Instance counts on the right: instance n sits at demand n × capacity. */
static void instance_axis(FILE *out, const struct frame *f, double capacity)
{
	double max_n = f->y1 / capacity, step = nice_step(max_n, 5);

	if (step < 1)
		step = 1;
	for (double n = 0; n <= max_n; n += step) {
		fputs("<text x=\"", out); coord(out, f->left + f->w + 6);
		fputs("\" y=\"", out); coord(out, py(f, n * capacity) + 4);
		fprintf(out, "\" fill=\"" C_CAP "\">%.0f</text>\n", n);
	}
	fprintf(out, "<text x=\"%.1f\" y=\"%.1f\" transform=\"rotate(90 %.1f %.1f)\" "
		"text-anchor=\"middle\" fill=\"" C_CAP "\">instances</text>\n",
		f->left + f->w + 48, f->top + f->h / 2, f->left + f->w + 48, f->top + f->h / 2);
}

static void x_axis(FILE *out, const struct frame *f)
{
	static const double steps[] = { 300, 900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600,
					 86400, 2 * 86400, 7 * 86400, 14 * 86400, 28 * 86400 };
	double span = f->x1 - f->x0, step = steps[0];
	size_t k = 0;

	while (k + 1 < sizeof(steps) / sizeof(steps[0]) && span / steps[k] > 8)
		k++;
	step = steps[k];
	for (double t = ceil(f->x0 / step) * step; t <= f->x1; t += step) {
		time_t tt = (time_t)t;
		struct tm tm;
		char label[32];

		gmtime_r(&tt, &tm);
		strftime(label, sizeof(label), step >= 86400 ? "%m-%d" : "%m-%d %H:%M", &tm);
		fputs("<line class=\"grid\" y1=\"", out); coord(out, f->top);
		fputs("\" y2=\"", out); coord(out, f->top + f->h);
		fputs("\" x1=\"", out); coord(out, px(f, t));
		fputs("\" x2=\"", out); coord(out, px(f, t));
		fputs("\"/><text text-anchor=\"middle\" x=\"", out); coord(out, px(f, t));
		fputs("\" y=\"", out); coord(out, f->top + f->h + 16);
		fprintf(out, "\">%s</text>\n", label);
	}
	fprintf(out, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">time (UTC)</text>\n",
		f->left + f->w / 2, f->top + f->h + 36);
}

/* A polyline through (t[i], v[i]), broken at non-finite values. */
static void line(FILE *out, const struct frame *f, const double *t, const double *v, size_t n,
		 const char *color, double width)
{
	int open = 0;

	for (size_t i = 0; i <= n; i++) {
		if (i == n || !isfinite(v[i])) {
			if (open)
				fprintf(out, "\" fill=\"none\" stroke=\"%s\" stroke-width=\"%.1f\"/>\n",
					color, width);
			open = 0;
			continue;
		}
		fputs(open ? " " : "<polyline points=\"", out);
		open = 1;
		coord(out, px(f, t[i]));
		fputc(',', out);
		coord(out, py(f, v[i]));
	}
}

static void band(FILE *out, const struct frame *f, const struct us_fc_bands *fc, const double *lo,
		 const double *hi, const char *color)
{
	if (!lo || !hi || fc->n == 0)
		return;
	fputs("<polygon points=\"", out);
	for (size_t i = 0; i < fc->n; i++) {
		coord(out, px(f, fc_t(fc, i)));
		fputc(',', out);
		coord(out, py(f, isfinite(hi[i]) ? hi[i] : 0));
		fputc(' ', out);
	}
	for (size_t i = fc->n; i-- > 0;) {
		coord(out, px(f, fc_t(fc, i)));
		fputc(',', out);
		coord(out, py(f, isfinite(lo[i]) ? lo[i] : 0));
		fputc(' ', out);
	}
	fprintf(out, "\" fill=\"%s\" stroke=\"none\"/>\n", color);
}

static void forecast(FILE *out, const struct frame *f, const struct us_fc_bands *fc)
{
	double *t = malloc(fc->n * sizeof(*t)), x = px(f, fc_t(fc, 0));

	band(out, f, fc, fc->lo95, fc->hi95, C_B95);
	band(out, f, fc, fc->lo80, fc->hi80, C_B80);
	if (t) {
		for (size_t i = 0; i < fc->n; i++)
			t[i] = fc_t(fc, i);
		line(out, f, t, fc->mean, fc->n, C_MEAN, 1.8);
		free(t);
	}
	/* "now": where the history ends and the forecast begins */
	fputs("<line x1=\"", out); coord(out, x);
	fputs("\" x2=\"", out); coord(out, x);
	fputs("\" y1=\"", out); coord(out, f->top);
	fputs("\" y2=\"", out); coord(out, f->top + f->h);
	fputs("\" stroke=\"#888\" stroke-dasharray=\"4 3\"/>\n", out);
}

static void plan(FILE *out, const struct frame *f, const struct us_plan *p)
{
	fputs("<polyline points=\"", out);
	for (size_t i = 0; i < p->n; i++) {
		double y = py(f, p->steps[i].required * p->capacity);
		double x0 = px(f, (double)p->steps[i].t);
		double x1 = px(f, (double)(p->steps[i].t + p->step_s));

		if (x1 > f->left + f->w)
			x1 = f->left + f->w;
		coord(out, x0); fputc(',', out); coord(out, y); fputc(' ', out);
		coord(out, x1); fputc(',', out); coord(out, y); fputc(' ', out);
	}
	fputs("\" fill=\"none\" stroke=\"" C_CAP "\" stroke-width=\"1.6\"/>\n", out);
	for (size_t i = 0; i < p->n; i++) {
		const struct us_plan_step *s = &p->steps[i];
		double x = px(f, (double)s->request_at), yb = f->top + f->h;

		if (!s->request)
			continue;
		fprintf(out, "<g fill=\"%s\" stroke=\"%s\"><title>request at least %u instances",
			s->late ? C_LATE : C_REQ, s->late ? C_LATE : C_REQ, s->required);
		fputs("</title><line stroke-dasharray=\"2 3\" x1=\"", out); coord(out, x);
		fputs("\" x2=\"", out); coord(out, x);
		fputs("\" y1=\"", out); coord(out, yb);
		fputs("\" y2=\"", out); coord(out, py(f, s->required * p->capacity));
		fputs("\"/><polygon points=\"", out);
		coord(out, x); fputc(',', out); coord(out, yb - 9); fputc(' ', out);
		coord(out, x - 5); fputc(',', out); coord(out, yb); fputc(' ', out);
		coord(out, x + 5); fputc(',', out); coord(out, yb);
		fputs("\"/></g>\n", out);
	}
}

static void legend(FILE *out, const struct us_svg_chart *c, const struct frame *f)
{
	static const struct { const char *color, *label; int need; } items[] = {
		{ C_HIST, "history", 0 }, { C_MEAN, "forecast", 1 }, { C_B80, "80%", 1 },
		{ C_B95, "95%", 1 }, { C_CAP, "required capacity", 2 },
		{ C_REQ, "pre-allocation request", 2 },
	};
	double x = f->left;

	for (size_t i = 0; i < sizeof(items) / sizeof(items[0]); i++) {
		if ((items[i].need == 0 && !c->nhist) || (items[i].need == 1 && !c->fc) ||
		    (items[i].need == 2 && !c->plan))
			continue;
		fprintf(out, "<rect x=\"%.1f\" y=\"%d\" width=\"12\" height=\"10\" fill=\"%s\" "
			"stroke=\"#999\" stroke-width=\"0.5\"/><text x=\"%.1f\" y=\"%d\">%s</text>\n",
			x, M_TOP - 18, items[i].color, x + 16, M_TOP - 9, items[i].label);
		x += 28 + 7 * strlen(items[i].label);
	}
}

int us_svg_forecast_chart(FILE *out, const struct us_svg_chart *c)
{
	struct frame f;
	int w = c->width > 0 ? c->width : DEF_W, h = c->height > 0 ? c->height : DEF_H;
	double *ht = NULL;

	if (ranges(c, &f) < 0)
		return -1;
	f.left = M_LEFT;
	f.top = M_TOP;
	f.w = w - M_LEFT - M_RIGHT;
	f.h = h - M_TOP - M_BOTTOM;
	fprintf(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		"<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 %d %d\" width=\"%d\" "
		"height=\"%d\" font-family=\"sans-serif\" font-size=\"11\">\n"
		"<style>.grid{stroke:#e6e9ed}text{fill:#39424c}</style>\n"
		"<rect width=\"100%%\" height=\"100%%\" fill=\"#fff\"/>\n", w, h, w, h);
	fputs("<text x=\"72\" y=\"16\" font-size=\"14\" font-weight=\"600\">", out);
	us_svg_escape(out, c->title ? c->title : "forecast");
	fputs("</text>\n", out);
	y_axis(out, &f, c->unit);
	x_axis(out, &f);
	if (c->fc)
		forecast(out, &f, c->fc);
	if (c->nhist && (ht = malloc(c->nhist * sizeof(*ht)))) {
		for (size_t i = 0; i < c->nhist; i++)
			ht[i] = (double)c->hist_t[i];
		line(out, &f, ht, c->hist_v, c->nhist, C_HIST, 1.2);
		free(ht);
	}
	if (c->plan && c->plan->capacity > 0) {
		plan(out, &f, c->plan);
		instance_axis(out, &f, c->plan->capacity);
	}
	legend(out, c, &f);
	fprintf(out, "<rect x=\"%d\" y=\"%d\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" "
		"stroke=\"#b8c0c8\"/>\n</svg>\n", M_LEFT, M_TOP, f.w, f.h);
	fflush(out);
	return ferror(out) ? -1 : 0;
}
