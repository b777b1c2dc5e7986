/* Time sources: wall clock for timestamps that leave the host, monotonic
 * clock for every timeout and interval. */
#ifndef US_CLOCK_H
#define US_CLOCK_H

#include <stdint.h>

#define US_NS_PER_MS 1000000ull
#define US_NS_PER_SEC 1000000000ull

uint64_t us_now_ns(void);  /* CLOCK_REALTIME */
uint64_t us_mono_ns(void); /* CLOCK_MONOTONIC */

#endif
