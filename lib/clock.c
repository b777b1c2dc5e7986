/* Clock readings. */
#include "clock.h"

#include <time.h>

static uint64_t read_clock(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * US_NS_PER_SEC + (uint64_t)ts.tv_nsec;
}

uint64_t us_now_ns(void)
{
	return read_clock(CLOCK_REALTIME);
}

uint64_t us_mono_ns(void)
{
	return read_clock(CLOCK_MONOTONIC);
}
