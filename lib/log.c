/* stderr logger and rate limiter. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "clock.h"

static enum us_log_level current_level = US_LOG_INFO;

void us_log_set_level(enum us_log_level level)
{
	current_level = level;
}

int us_log_parse_level(const char *name, enum us_log_level *out)
{
	static const char *const names[] = { "debug", "info", "warn", "error" };

	for (int i = 0; i < 4; i++) {
		if (strcmp(name, names[i]) == 0) {
			*out = (enum us_log_level)i;
			return 0;
		}
	}
	return -1;
}

bool us_log_enabled(enum us_log_level level)
{
	return level >= current_level;
}

void us_log(enum us_log_level level, const char *fmt, ...)
{
	static const char *const tags[] = { "debug", "info", "warn", "error" };
	char stamp[32];
	struct timespec ts;
	struct tm tm;
	va_list ap;

	if (!us_log_enabled(level))
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	fprintf(stderr, "%s.%03ldZ %-5s ", stamp, ts.tv_nsec / 1000000, tags[level]);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

bool us_ratelimit_allow(struct us_ratelimit *rl, uint64_t interval_ns,
			uint64_t *suppressed)
{
	uint64_t now = us_mono_ns();

	if (rl->last_mono_ns && now - rl->last_mono_ns < interval_ns) {
		rl->suppressed++;
		return false;
	}
	*suppressed = rl->suppressed;
	rl->suppressed = 0;
	rl->last_mono_ns = now;
	return true;
}
