/* Logging to stderr with a level, and rate limiting so that a misbehaving
 * peer costs one line a minute, not a flood. The level is the log module's
 * own state, set once at start-up. */
#ifndef US_LOG_H
#define US_LOG_H

#include <stdbool.h>
#include <stdint.h>

enum us_log_level { US_LOG_DEBUG, US_LOG_INFO, US_LOG_WARN, US_LOG_ERROR };

void us_log_set_level(enum us_log_level level);
int us_log_parse_level(const char *name, enum us_log_level *out);
bool us_log_enabled(enum us_log_level level);
void us_log(enum us_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define us_debug(...) us_log(US_LOG_DEBUG, __VA_ARGS__)
#define us_info(...) us_log(US_LOG_INFO, __VA_ARGS__)
#define us_warn(...) us_log(US_LOG_WARN, __VA_ARGS__)
#define us_error(...) us_log(US_LOG_ERROR, __VA_ARGS__)

/* Allows one event per interval; counts what it suppressed in between so the
 * next allowed line can say how many were folded into it. */
struct us_ratelimit {
	uint64_t last_mono_ns;
	uint64_t suppressed;
};

bool us_ratelimit_allow(struct us_ratelimit *rl, uint64_t interval_ns,
			uint64_t *suppressed);

#endif
