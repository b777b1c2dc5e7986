/* Business inputs to a forecast: what the history cannot know. A YAML file
 * (docs/plan.md, tests/data/events-example.yaml) declares
 *
 *   growth:    percent per month from a date, compounding continuously:
 *              factor(t) = (1 + g)^(months since `from`), 1 before it; a month
 *              is 1/12 of a Gregorian year (30.436875 days);
 *   events:    time ranges [start, end) with a multiplier (`multiply: 1.8`)
 *              or an absolute addition (`add: 500`, in the metric's unit);
 *   calendar:  named lists of known days (holidays), each covering a whole
 *              UTC day, whose effect is learned from the history when the
 *              history holds some of them (ratio of actual to baseline) and
 *              otherwise taken from an optional `multiplier:`.
 *
 * Applied to a baseline forecast (plain arrays, so any model can feed it) in
 * a fixed order: growth × calendar × event multipliers, then event
 * additions; the mean and every interval bound get the same treatment, so a
 * band stays a band. Results never go below zero (demand cannot).
 *
 * Parsing reuses lib/config: every error reads "FILE:LINE: KEY.PATH: what". */
#ifndef US_FC_EVENTS_H
#define US_FC_EVENTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define US_FCEV_NAME_MAX 64
#define US_FCEV_MONTH_S 2629746 /* 365.2425 d / 12 */
#define US_FCEV_DAY_S 86400

/* A forecast as plain arrays: n steps, step i at start + i × step (unix
 * seconds). Any bound may be NULL; the mean may not. */
struct us_fc_bands {
	int64_t start;
	int64_t step;
	size_t n;
	double *mean, *lo80, *hi80, *lo95, *hi95;
};

enum us_fcev_kind { US_FCEV_MULTIPLY, US_FCEV_ADD };

struct us_fc_event {
	char name[US_FCEV_NAME_MAX];
	int64_t start, end;          /* [start, end), unix seconds */
	enum us_fcev_kind kind;
	double value;                /* the multiplier, or the addition */
	unsigned line;
};

struct us_fc_calendar {
	char name[US_FCEV_NAME_MAX];   /* the entry type: "christmas", "black-friday" */
	int64_t *days;               /* midnight UTC of each date, sorted */
	size_t ndays;
	double prior;                /* `multiplier:` from the file; NAN when absent */
	/* Filled by us_fc_learn_calendar(): */
	double learned;              /* NAN until learned */
	size_t learned_points;       /* history points the estimate used */
	size_t learned_days;         /* distinct past dates found in the history */
	unsigned line;
};

struct us_fc_events {
	bool has_growth;
	double growth;               /* fraction per month: 10% -> 0.10 */
	int64_t growth_from;
	struct us_fc_event *events;
	size_t nevents;
	struct us_fc_calendar *cal;
	size_t ncal;
};

/* Parsing. Both return 0, or -1 with "FILE:LINE: KEY: reason" in err (ev is
 * then empty; us_fc_events_free() is still safe). */
int us_fc_events_parse(const char *name, const void *data, size_t len, struct us_fc_events *ev,
		       char *err, size_t errlen);
int us_fc_events_load(const char *path, struct us_fc_events *ev, char *err, size_t errlen);
void us_fc_events_free(struct us_fc_events *ev);

/* "YYYY-MM-DD", "YYYY-MM-DD[T ]HH:MM[:SS][Z]" (UTC) or unix seconds. 0 or -1. */
int us_fc_parse_time(const char *s, int64_t *t);

/* The growth factor at time t (1 without growth or before its date). */
double us_fc_growth_factor(const struct us_fc_events *ev, int64_t t);

/* Learns each calendar entry's multiplier from a history of n points (t in
 * unix seconds, increasing): the ratio of the sum of actual values on that
 * entry's past dates to the sum of their baseline. The baseline is fitted[i]
 * (a model's in-sample fit) when fitted is not NULL; otherwise the median of
 * the values at the same time of day 7 and 14 days before and after (1 day
 * when the history holds no week-away point), skipping points that are
 * themselves on a calendar date: a holiday is compared with ordinary days
 * of the same weekday, which is what a weekly-seasonal model would predict.
 * Returns the number of entries learned. */
size_t us_fc_learn_calendar(struct us_fc_events *ev, const int64_t *t, const double *v,
			    const double *fitted, size_t n);

/* The multiplier a calendar entry applies: learned, else its prior, else 1. */
double us_fc_calendar_multiplier(const struct us_fc_calendar *c);

/* Combined effect at time t: *mul (growth × calendar × events) and *add. */
void us_fc_effect_at(const struct us_fc_events *ev, int64_t t, double *mul, double *add);

/* Applies ev to fc in place (mean and every non-NULL bound), clamped at 0.
 * A NULL ev leaves fc unchanged. */
void us_fc_apply_events(const struct us_fc_events *ev, struct us_fc_bands *fc);
/* The same, also multiplying sd[i] (a per-step standard error, may be NULL)
 * by the step's multiplier: a ×1.8 event widens the interval ×1.8, an
 * addition only shifts it. Lets a caller that derives other interval levels
 * from sd (forecast.h's us_fc_interval) stay consistent with the bands. */
void us_fc_apply_events_sd(const struct us_fc_events *ev, struct us_fc_bands *fc, double *sd);

#endif
