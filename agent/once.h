/* `understudy-agent --once --json`: measure for one interval without a
 * coordinator or config file and print the MetricBatch figures as JSON. */
#ifndef US_ONCE_H
#define US_ONCE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct us_once_opts {
	uint64_t interval_ns;
	const char *cgroup;	/* a cgroup v2 directory; NULL: every cgroup (track_all) */
};

/* "2s", "500ms", "1m", "250000us"; a plain number means seconds, as in the
 * config. Between 1 ms and 1 h. Returns 0 or -EINVAL with a reason. */
int us_once_parse_interval(const char *s, uint64_t *ns, char *err, size_t errlen);

/* Prints a JSON array with one object per measured cgroup to out. Returns 0;
 * -EINVAL when o->cgroup is not a cgroup v2 directory (a usage error); another
 * negative errno when the collector cannot run. err says why. */
int us_once_run(const struct us_once_opts *o, FILE *out, char *err, size_t errlen);

#endif
