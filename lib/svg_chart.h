/* A self-contained SVG line chart of a forecast and its capacity plan: the
 * history, the forecast mean, its 80% and 95% bands, the planned capacity
 * (instances × per-instance capacity, as steps, with the instance count on
 * the right axis) and a marker at each pre-allocation request (red when the
 * request is already late). No scripts, no external fonts or URLs; every
 * piece of text is XML-escaped, so a hostile workload name stays text. */
#ifndef US_SVG_CHART_H
#define US_SVG_CHART_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "fc_events.h"
#include "plan.h"

struct us_svg_chart {
	const char *title;               /* may be NULL */
	const char *unit;                /* y axis label, e.g. "req/s"; may be NULL */
	const int64_t *hist_t;           /* history, unix seconds; nhist may be 0 */
	const double *hist_v;
	size_t nhist;
	const struct us_fc_bands *fc;    /* may be NULL */
	const struct us_plan *plan;      /* may be NULL */
	int width, height;               /* pixels; 0 = 960 × 420 */
};

/* Writes the chart to out. Returns 0, or -1 when nothing is plottable or the
 * stream reports an error. */
int us_svg_forecast_chart(FILE *out, const struct us_svg_chart *c);

/* Writes s with &, <, >, " and ' escaped (and control characters dropped). */
void us_svg_escape(FILE *out, const char *s);

#endif
