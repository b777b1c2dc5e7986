/* Connect-time traffic steering for the local provider (bpf/steer.bpf.c):
 * cgroup/connect4 and connect6 programs on the clients' cgroup rewrite a
 * connect to the service address (IPv4, or IPv4-mapped on an AF_INET6
 * socket) into a connect to one backend, chosen by weight. Links and maps
 * are pinned in /sys/fs/bpf/understudy/steer/<cgroup id>/ (`link4`, `link6`,
 * `services`, `counters`), so the programs stay attached and the weights
 * survive a coordinator restart, and a restarted coordinator finds them
 * again. Existing connections are never
 * touched: a weight change applies to new connects only (drain). Every
 * function returns 0 or -1 with a message in err. */
#ifndef US_STEER_H
#define US_STEER_H

#include <stddef.h>
#include <stdint.h>

#include "provider.h"

#define US_STEER_PIN_ROOT "/sys/fs/bpf/understudy/steer"

/* Attaches the programs to the cgroup v2 directory (idempotent: an existing
 * pinned attachment for it is reused) and sets the service's backends and
 * weights in one map update, so a connect sees the old set or the new one,
 * never a mix. service is IPv4 "a.b.c.d". */
int us_steer_set(const char *clients_cgroup, const char *service, uint16_t port,
		 const struct us_backend *b, size_t n, char *err, size_t errlen);
/* The service's current backends (n ≤ max); 0 backends when none are set. */
int us_steer_get(const char *clients_cgroup, const char *service, uint16_t port,
		 struct us_backend *b, size_t max, size_t *n, char *err, size_t errlen);
/* Removes the service's entry; detaches and unpins when no service is left. */
int us_steer_clear(const char *clients_cgroup, const char *service, uint16_t port,
		   char *err, size_t errlen);

/* What the attached program did with the cgroup's connects, summed over
 * CPUs since it was attached; all 0 when the cgroup has no attachment. */
struct us_steer_counts {
	uint64_t steered;       /* rewritten to a backend */
	uint64_t passthrough;   /* not to a service address: left alone */
	uint64_t failed;        /* to a service whose weights are all 0: left alone */
};
int us_steer_counts(const char *clients_cgroup, struct us_steer_counts *out,
		    char *err, size_t errlen);

#endif
